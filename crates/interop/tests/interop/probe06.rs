//! The -06 conformance probe against one of our providers, a real `mimi-hub` process: what
//! we serve passes, what we do not yet serve is reported unsupported, nothing fails.

use mimi_interop::harness::Network;
use mimi_interop::probe06::{Counts, ProbeConfig, Verdict, run};

#[test]
fn the_probe_passes_against_our_provider() {
    let hub = super::hub();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let network = Network::start(hub).await.unwrap();
        let a = network.provider("a.mimi.test").unwrap();
        // We speak as b.mimi.test (a peer of a), with b's certificate from the same CA.
        let b_dir = network.dir().join("b.mimi.test");
        let config = ProbeConfig {
            peer: a.name().clone(),
            address: a.federation_addr(),
            prefix: None,
            ca: network.ca_path().to_owned(),
            cert: b_dir.join("server.crt"),
            key: b_dir.join("server.key"),
            our_domain: "b.mimi.test".parse().unwrap(),
            hex: true,
        };
        let report = run(&config).await.unwrap();
        let text = report.render(true);
        // `cargo test -p mimi-interop --test interop probe06 -- --nocapture` shows the report.
        eprintln!("{text}");
        for request in [
            "mutualTls",
            "fromAuthenticated",
            "directory",
            "keyMaterial",
            "identifierQuery",
            "requestConsent",
            "updateConsent",
        ] {
            assert_eq!(
                report.verdict(request),
                Some(&Verdict::Passed),
                "{request}\n{text}"
            );
        }
        // What our directory offers passes; what it does not offer answers 501 (this holds
        // as more endpoints are served: they join the directory and must then pass).
        let listed: Vec<String> = report
            .outcome("directory")
            .unwrap()
            .answer
            .strip_prefix("Directory naming ")
            .unwrap()
            .split(", ")
            .map(str::to_owned)
            .collect();
        let all = [
            "keyMaterial",
            "identifierQuery",
            "requestConsent",
            "updateConsent",
            "submitMessage",
            "notify",
            "reportAbuse",
            "update",
            "groupInfo",
        ];
        for request in all {
            let verdict = report.verdict(request).unwrap();
            if listed.iter().any(|l| l == request) {
                assert_eq!(verdict, &Verdict::Passed, "{request}\n{text}");
            } else {
                assert_eq!(
                    verdict,
                    &Verdict::Unsupported("501 Not Implemented".into()),
                    "{request}\n{text}"
                );
            }
        }
        let counts = Counts {
            passed: 3 + listed.len(),
            failed: 0,
            unsupported: all.len() - listed.len(),
        };
        assert_eq!(report.counts(), counts, "{text}");
        assert!(
            text.ends_with(&format!(
                "{} passed, 0 failed, {} unsupported\n",
                counts.passed, counts.unsupported
            )),
            "{text}"
        );
        // On this branch: the 4 served, 5 still 501.
        assert!(listed.len() >= 4, "{listed:?}");

        // Speaking as a provider the certificate does not authenticate is refused (403):
        // the probe reports it as a failure, not a pass.
        let lying = ProbeConfig {
            our_domain: "c.mimi.test".parse().unwrap(),
            ..config
        };
        let report = run(&lying).await.unwrap();
        assert!(
            matches!(report.verdict("keyMaterial"), Some(Verdict::Failed(r)) if r.contains("403")),
            "{}",
            report.render(false)
        );
        network.shutdown().await;
    });
}
