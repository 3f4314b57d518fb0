//! The `mimi` binary over three real `mimi-hub` processes (the harness's network): users
//! registered on two providers talk through the command line; `listen` on one provider
//! prints, as JSON, a message sent from another within a second.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use mimi_interop::harness::{Network, ProviderProcess};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::Command;

/// How long `listen` may take to print a message sent from another provider.
const LISTEN_LATENCY: Duration = Duration::from_secs(1);
/// How many times the test runs `mimi sync` while waiting for a fan-out.
const SYNC_ATTEMPTS: usize = 400;

/// `target/<profile>/mimi`, built beside `mimi-hub` by [`super::hub`].
fn mimi_binary() -> std::path::PathBuf {
    let hub = super::hub();
    let mimi = hub.with_file_name(format!("mimi{}", std::env::consts::EXE_SUFFIX));
    assert!(mimi.is_file(), "{} was not built", mimi.display());
    mimi
}

fn mimi_command(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(mimi_binary());
    command
        .arg("--json")
        .arg("--dir")
        .arg(dir)
        .args(args)
        .env_remove("MIMI_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Run with `--json`, expect success; the output lines parsed.
async fn ok(dir: &Path, args: &[&str]) -> Vec<Value> {
    let o: Output = mimi_command(dir, args).output().await.unwrap();
    assert!(
        o.status.success(),
        "mimi {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

async fn register(network: &Network, provider: &ProviderProcess, dir: &Path, user: &str) {
    let out = ok(
        dir,
        &[
            "register",
            "--api",
            &provider.api_url(),
            "--connect",
            &provider.api_addr().to_string(),
            "--ca",
            network.ca_path().to_str().unwrap(),
            "--user",
            user,
            "--device",
            "cli",
        ],
    )
    .await;
    assert_eq!(out[0]["type"], "registered");
}

#[test]
fn listen_over_real_providers_prints_a_message_from_another_provider_within_a_second() {
    let hub = super::hub();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let network = Network::start(hub).await.unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let (alice, bob) = (tmp.path().join("alice"), tmp.path().join("bob"));
        let [a, b, _] = network.providers() else {
            panic!("three providers")
        };
        register(&network, a, &alice, "alice").await;
        register(&network, b, &bob, "bob").await;
        let room = ok(&alice, &["create-room"]).await[0]["room"]
            .as_str()
            .unwrap()
            .to_owned();
        let bob_id = format!("@bob:{}", b.name());
        let _ = ok(&alice, &["add", &room, &bob_id]).await;
        let mut in_group = false;
        for _ in 0..SYNC_ATTEMPTS {
            let _ = ok(&bob, &["sync"]).await;
            let rooms = ok(&bob, &["rooms"]).await;
            if rooms
                .iter()
                .any(|r| r["room"] == room.as_str() && r["in_group"] == true)
            {
                in_group = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(in_group, "Bob never joined:\n{}", network.log_tails());

        let mut listener = mimi_command(&bob, &["listen"]).spawn().unwrap();
        let mut lines = BufReader::new(listener.stdout.take().unwrap()).lines();
        let _ = ok(&alice, &["send", &room, "over real processes"]).await;
        let sent_at = Instant::now();
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("listen printed nothing")
            .unwrap()
            .unwrap();
        let latency = sent_at.elapsed();
        assert!(latency < LISTEN_LATENCY, "listen took {latency:?}");
        let message: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(message["type"], "message");
        assert_eq!(message["room"], room.as_str());
        assert_eq!(message["sender"], format!("@alice:{}", a.name()));
        assert_eq!(message["text"], "over real processes");
        listener.start_kill().unwrap();
        let _ = listener.wait().await;
        assert!(network.shutdown().await.is_empty());
    });
}
