//! Operating a provider (issue 15): `mimi-hub init` → `check` → a running server (the real
//! binary) with its admin listener; `/metrics` during a federation scenario; `/readyz` on
//! unwritable storage; admin create-user with registration closed; revocation; no secret
//! in a debug log.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, StatusCode};
use mimi_client_api::{Endpoint, EndpointResponse, register, room_state};
use mimi_codec::{Event, EventResponse, MlsBytes, SendMessageRequest};
use mimi_hub::admin::{self, AdminState};
use mimi_hub::context::Settings;
use mimi_hub::identity::HubIdentity;
use mimi_hub::peers::HttpsPeers;
use mimi_hub::provider::{Provider, ProviderParts};
use mimi_hub::storage::{FaultyStorage, MemoryStorage, Storage};
use mimi_transport::tls;
use mimi_transport::{ClientConfig, StaticResolver};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::world::{A, B, World, eventually, name, raw_request};

const HUB: &str = env!("CARGO_BIN_EXE_mimi-hub");

/// An admin listener of an in-process provider, stopped when dropped.
pub struct AdminListener {
    pub addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

pub async fn admin_listener(provider: Arc<Provider>, token: Option<&str>) -> AdminListener {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(admin::serve(
        listener,
        AdminState::new(provider, token, Vec::new()),
        async {
            let _ = stopped.await;
        },
    ));
    AdminListener { addr, _stop: stop }
}

/// Parse Prometheus/OpenMetrics text: every sample as `name{labels}` → value. Panics on a
/// line that is not a comment or a well-formed sample, or without the final `# EOF`.
fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    let mut samples = BTreeMap::new();
    assert_eq!(
        text.lines().last(),
        Some("# EOF"),
        "OpenMetrics ends with # EOF"
    );
    for line in text.lines() {
        if let Some(comment) = line.strip_prefix("# ") {
            let kind = comment.split_whitespace().next().unwrap();
            assert!(["HELP", "TYPE", "UNIT", "EOF"].contains(&kind), "{line}");
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        let metric = series.split('{').next().unwrap();
        assert!(
            !metric.is_empty()
                && metric
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "metric name in {line}"
        );
        if let Some(labels) = series.strip_prefix(metric)
            && !labels.is_empty()
        {
            assert!(labels.starts_with('{') && labels.ends_with('}'), "{line}");
            for pair in labels[1..labels.len() - 1].split("\",") {
                let (k, v) = pair.split_once('=').unwrap_or_else(|| panic!("{line}"));
                assert!(!k.is_empty() && v.starts_with('"'), "{line}");
            }
        }
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("value in {line}"));
        samples.insert(series.to_string(), value);
    }
    samples
}

async fn scrape(addr: SocketAddr) -> BTreeMap<String, f64> {
    let (status, body) = admin::request(addr, None, Method::GET, "/metrics", None)
        .await
        .unwrap();
    assert_eq!(status, 200);
    parse_metrics(body.as_str().unwrap())
}

fn sample(samples: &BTreeMap<String, f64>, series: &str) -> f64 {
    samples.get(series).copied().unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_accepted_and_refused_events_and_the_outbox_of_a_peer_that_is_down() {
    let mut world = World::start(&[A, B]).await;
    let (room, mut alice, mut bob) = crate::federation::two_party(&world).await;
    let admin = admin_listener(world.provider(A), None).await;
    let accepted = "mimi_events_accepted_total{peer=\"a.example\"}";
    let before = scrape(admin.addr).await;

    alice.say(&world, &room, "one").await;
    // Refused by a rule: an application message that is not an MLS message.
    let garbage = Event::DsSendMessage(SendMessageRequest {
        application_message: MlsBytes::new(vec![0xff; 8]).unwrap(),
    });
    let (_, answer) = alice.submit(&world, &room, garbage).await;
    let EventResponse::Error(refusal) = answer else {
        panic!("the garbage message was accepted: {answer:?}");
    };
    let rule = mimi_hub::metrics::rule_label(&refusal);
    let after = scrape(admin.addr).await;
    assert_eq!(sample(&after, accepted) - sample(&before, accepted), 1.0);
    let refused = format!("mimi_events_refused_total{{rule=\"{rule}\",peer=\"a.example\"}}");
    assert_eq!(sample(&after, &refused), 1.0, "{refused} in {after:?}");
    assert!(after.contains_key("mimi_storage_commit_duration_seconds_count"));
    assert!(sample(&after, "mimi_storage_commit_duration_seconds_count") >= 1.0);
    assert!(sample(&after, "mimi_rooms_loaded") >= 1.0);

    // B goes down once it has everything: what A accepts meanwhile waits in A's outbox.
    let depth = "mimi_outbox_depth{destination=\"b.example\"}";
    bob.sync_until(&world, "Bob to read one", |c| c.received.len() == 1)
        .await;
    eventually("the outbox to b.example to be empty", || async {
        let s = scrape(admin.addr).await;
        (sample(&s, depth) == 0.0).then_some(())
    })
    .await;
    world.stop(B).await;
    alice.say(&world, &room, "two").await;
    alice.say(&world, &room, "three").await;
    let down = scrape(admin.addr).await;
    assert_eq!(sample(&down, depth), 2.0, "{down:?}");
    eventually("a failed delivery to be counted", || async {
        let s = scrape(admin.addr).await;
        (sample(&s, "mimi_outbox_retries_total{destination=\"b.example\"}") >= 1.0).then_some(())
    })
    .await;
    // The admin view agrees.
    let (status, outbox) = admin::request(admin.addr, None, Method::GET, "/admin/outbox", None)
        .await
        .unwrap();
    assert_eq!(status, 404, "admin commands are off without a token");
    assert!(outbox["error"].is_string());

    // B returns; a retry now skips the backoff; the depth drops to zero.
    world.restart(B).await;
    world.provider(A).retry_now().retry(&name(B));
    eventually("the outbox to b.example to drain", || async {
        let s = scrape(admin.addr).await;
        (sample(&s, depth) == 0.0).then_some(s)
    })
    .await;
    bob.sync_until(&world, "Bob to read all three", |c| c.received.len() == 3)
        .await;
    let end = scrape(admin.addr).await;
    assert!(
        sample(
            &end,
            "mimi_outbox_deliveries_total{destination=\"b.example\"}"
        ) >= 3.0
    );
    world.shutdown().await;
}

/// A provider over a [`FaultyStorage`], for probes.
fn faulty_provider() -> (Arc<Provider>, Arc<FaultyStorage>) {
    let faulty = Arc::new(FaultyStorage::new(Arc::new(MemoryStorage::new())));
    let server = name(A);
    let tls_config = tls::client_config(
        None,
        &mimi_transport::pki::CertificateAuthority::generate("unused")
            .unwrap()
            .roots()
            .unwrap(),
    )
    .unwrap();
    let provider = Provider::new(ProviderParts {
        server_name: server.clone(),
        storage: Arc::clone(&faulty) as Arc<dyn Storage>,
        peers: Arc::new(HttpsPeers::new(
            ClientConfig::new(tls_config),
            Arc::new(StaticResolver::new()),
        )),
        identity: HubIdentity::ephemeral(&server).unwrap(),
        settings: Settings::default(),
    });
    (provider, faulty)
}

#[tokio::test]
async fn readyz_fails_while_storage_is_unwritable() {
    let (provider, faulty) = faulty_provider();
    let admin = admin_listener(provider, None).await;
    let get = |path: &'static str| admin::request(admin.addr, None, Method::GET, path, None);
    assert_eq!(get("/healthz").await.unwrap().0, 200);
    assert_eq!(get("/readyz").await.unwrap().0, 200);
    faulty.set_unwritable(true);
    let (status, body) = get("/readyz").await.unwrap();
    assert_eq!(status, 503);
    assert!(
        body["error"].as_str().unwrap().contains("storage write"),
        "{body}"
    );
    // Still alive, not ready.
    assert_eq!(get("/healthz").await.unwrap().0, 200);
    faulty.set_unwritable(false);
    assert_eq!(get("/readyz").await.unwrap().0, 200);
}

#[tokio::test]
async fn a_revoked_client_is_refused_at_once_despite_the_token_cache() {
    let (provider, _) = faulty_provider();
    let token = "an-admin-token-of-some-length";
    let admin = admin_listener(Arc::clone(&provider), Some(token)).await;
    let created = admin::request(
        admin.addr,
        Some(token),
        Method::POST,
        "/admin/users",
        Some(json!({"localpart": "alice", "device": "laptop"})),
    )
    .await
    .unwrap();
    assert_eq!(created.0, 200, "{}", created.1);
    let client_token = created.1["token"].as_str().unwrap().to_string();
    // Authenticated once: the hash is now cached.
    let client = provider
        .accounts()
        .authenticate(&client_token)
        .await
        .unwrap();
    // A wrong admin token is refused.
    let wrong = admin::request(
        admin.addr,
        Some("not-the-admin-token"),
        Method::POST,
        "/admin/clients/x/revoke",
        None,
    )
    .await
    .unwrap();
    assert_eq!(wrong.0, 401);
    let path = format!(
        "/admin/clients/{}/revoke",
        admin::percent_encode(client.as_str())
    );
    let revoked = admin::request(admin.addr, Some(token), Method::POST, &path, None)
        .await
        .unwrap();
    assert_eq!(revoked.0, 200, "{}", revoked.1);
    assert!(
        provider
            .accounts()
            .authenticate(&client_token)
            .await
            .is_err()
    );
    // Listing shows the user and its client.
    let (status, users) =
        admin::request(admin.addr, Some(token), Method::GET, "/admin/users", None)
            .await
            .unwrap();
    assert_eq!(status, 200);
    assert_eq!(users["users"][0]["user_id"], "@alice:a.example");
}

/// A `mimi-hub` process, killed when dropped; its stderr collected.
struct Hub {
    child: Child,
    federation: SocketAddr,
    api: SocketAddr,
    admin: SocketAddr,
    stderr: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Hub {
    fn start(config: &Path, rust_log: &str, json: bool) -> Hub {
        let mut command = Command::new(HUB);
        if json {
            command.arg("--log-json");
        }
        let mut child = command
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", rust_log)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let field = |key: &str| -> SocketAddr {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(key))
                .unwrap_or_else(|| panic!("{key} in {line:?}"))
                .parse()
                .unwrap()
        };
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        let mut pipe = child.stderr.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Hub {
            federation: field("federation="),
            api: field("api="),
            admin: field("admin="),
            child,
            stderr,
            reader: Some(reader),
        }
    }

    /// Stop with SIGTERM and wait; the collected stderr.
    fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
        // The reader thread ends at the pipe's end, once the process is gone.
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(HUB).args(args).output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

async fn api_call(
    api: SocketAddr,
    ca: &Path,
    request: hyper::http::Request<Vec<u8>>,
) -> (StatusCode, Bytes) {
    let roots = tls::certificates_from_pem_file(ca).unwrap();
    let client_tls = tls::client_config(None, &roots).unwrap();
    raw_request(
        api,
        client_tls,
        A,
        request.map(|b| Full::new(Bytes::from(b))),
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_makes_a_provider_that_passes_check_runs_and_is_operated_without_leaking_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let ca = dir.path().join("ca");
    let (ok, out) = run(&[
        "init",
        "--dir",
        a.to_str().unwrap(),
        "--server-name",
        A,
        "--ca-dir",
        ca.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--api-listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
    ]);
    assert!(ok, "{out}");
    let config = a.join("provider.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    for key in [
        "server_name",
        "listen",
        "api_listen",
        "certificate",
        "private_key",
        "ca",
        "storage",
        "hub_key",
        "open_registration",
        "check_invite_timeout_ms",
        "outbox_retry_base_ms",
        "outbox_retry_cap_ms",
        "room_cache_max",
        "[peers]",
        "[admin]",
        "token_file",
        "log_format",
    ] {
        assert!(
            text.contains(key),
            "{key} is not in the sample configuration"
        );
    }
    let (ok, out) = run(&["check", "--config", config.to_str().unwrap()]);
    assert!(ok, "{out}");
    assert!(out.contains(": ok"), "{out}");
    // Init refuses to overwrite; issue-cert makes B's certificate from the same CA.
    assert!(!run(&["init", "--dir", a.to_str().unwrap(), "--server-name", A]).0);
    let b = dir.path().join("b");
    let (ok, out) = run(&[
        "issue-cert",
        "--ca-dir",
        ca.to_str().unwrap(),
        "--server-name",
        B,
        "--out",
        b.to_str().unwrap(),
    ]);
    assert!(ok, "{out}");

    let hub = Hub::start(&config, "debug", false);
    let _ = hub.federation;
    let admin_token = std::fs::read_to_string(a.join("admin.token")).unwrap();
    let admin_token = admin_token.trim();
    let ca_cert = ca.join("ca.crt");

    // Registration is closed: a stranger cannot register.
    let stranger = register::Request {
        localpart: "mallory".into(),
        device: "laptop".into(),
        ..register::Request::default()
    };
    let (status, _) = api_call(
        hub.api,
        &ca_cert,
        stranger.try_into_http_request(None).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The operator creates Alice; Alice registers a second device with her token.
    let (status, created) = admin::request(
        hub.admin,
        Some(admin_token),
        Method::POST,
        "/admin/users",
        Some(json!({"localpart": "alice", "device": "laptop"})),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{created}");
    let laptop_token = created["token"].as_str().unwrap().to_string();
    let phone = register::Request {
        localpart: "alice".into(),
        device: "phone".into(),
        ..register::Request::default()
    };
    let (status, body) = api_call(
        hub.api,
        &ca_cert,
        phone.try_into_http_request(Some(&laptop_token)).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let phone_token = register::Response::try_from_http_response(&hyper::Response::new(body))
        .unwrap()
        .token;
    // An authenticated request works (404: no such room), then the laptop is revoked and
    // its next request is 401.
    let probe = room_state::Request {
        room: "!nothing:a.example".parse().unwrap(),
    };
    let (status, _) = api_call(
        hub.api,
        &ca_cert,
        probe.try_into_http_request(Some(&laptop_token)).unwrap(),
    )
    .await;
    assert_ne!(status, StatusCode::UNAUTHORIZED);
    // The configuration names admin port 0: point the CLI at the bound port instead.
    let bound = text.replace(
        "listen = \"127.0.0.1:0\"\n# The admin token",
        &format!("listen = \"{}\"\n# The admin token", hub.admin),
    );
    assert_ne!(bound, text, "the [admin] listen line");
    let cli_config = a.join("cli.toml");
    std::fs::write(&cli_config, bound).unwrap();
    let (ok, out) = run(&[
        "admin",
        "--config",
        cli_config.to_str().unwrap(),
        "revoke",
        "@alice:a.example#laptop",
    ]);
    assert!(ok, "{out}");
    let (status, _) = api_call(
        hub.api,
        &ca_cert,
        probe.try_into_http_request(Some(&laptop_token)).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = api_call(
        hub.api,
        &ca_cert,
        probe.try_into_http_request(Some(&phone_token)).unwrap(),
    )
    .await;
    assert_ne!(status, StatusCode::UNAUTHORIZED, "the phone keeps working");
    let (ok, out) = run(&[
        "admin",
        "--config",
        cli_config.to_str().unwrap(),
        "list-users",
    ]);
    assert!(ok && out.contains("@alice:a.example#phone"), "{out}");
    // A consistent backup while running, which opens as a database.
    let backup = dir.path().join("backup.redb");
    let (ok, out) = run(&[
        "backup",
        "--config",
        cli_config.to_str().unwrap(),
        "--out",
        backup.to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    // Written by the running server, readable by its owner only.
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&backup).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    let copy = mimi_hub::storage::RedbStorage::open(&backup).unwrap();
    let alice: mimi_codec::UserId = "@alice:a.example".parse().unwrap();
    assert_eq!(copy.clients_of(&alice).unwrap().len(), 2);
    drop(copy);

    let metrics = scrape(hub.admin).await;
    assert_eq!(
        sample(
            &metrics,
            "mimi_request_duration_seconds_count{listener=\"api\",endpoint=\"Register\"}"
        ),
        2.0,
        "{metrics:?}"
    );
    let log = hub.stop();
    assert!(
        log.contains("client registered"),
        "the debug log was captured"
    );
    assert!(!log.contains('\u{1b}'), "no colour codes off a terminal");

    let mut secrets: Vec<String> = vec![admin_token.to_string(), laptop_token, phone_token];
    // The secret halves of the tokens, and every private key's PEM lines.
    secrets.extend(
        secrets
            .clone()
            .iter()
            .filter_map(|t| t.rsplit_once('.').map(|(_, s)| s.to_string())),
    );
    for key in [a.join("a.example.key"), ca.join("ca.key")] {
        let pem = std::fs::read_to_string(key).unwrap();
        secrets.extend(
            pem.lines()
                .filter(|l| !l.starts_with("-----") && l.len() > 16)
                .map(str::to_string),
        );
    }
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "a secret is in the debug log"
        );
    }
}

#[test]
fn check_names_each_problem_and_the_server_refuses_a_certificate_for_another_name() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let (ok, out) = run(&[
        "init",
        "--dir",
        a.to_str().unwrap(),
        "--server-name",
        A,
        "--listen",
        "127.0.0.1:0",
        "--api-listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
    ]);
    assert!(ok, "{out}");
    // B's certificate in A's place (same CA), and a key that is not its.
    let (ok, out) = run(&[
        "issue-cert",
        "--ca-dir",
        a.to_str().unwrap(),
        "--server-name",
        B,
        "--out",
        a.to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    let config = a.join("provider.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace(
            "certificate = \"a.example.crt\"",
            "certificate = \"b.example.crt\"",
        ),
    )
    .unwrap();
    let (ok, out) = run(&["check", "--config", config.to_str().unwrap()]);
    assert!(!ok);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].contains("not server_name a.example"), "{out}");
    assert!(lines[1].starts_with("key pair:"), "{out}");
    let (ok, out) = run(&["--config", config.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        out.contains("refusing to start") && out.contains("not server_name a.example"),
        "{out}"
    );
    // --help and --version.
    let (ok, out) = run(&["--help"]);
    assert!(ok && out.contains("init") && out.contains("admin") && out.contains("backup"));
    let (ok, out) = run(&["--version"]);
    assert!(ok && out.starts_with("mimi-hub "), "{out}");
}

/// The federation scenario of
/// [`the_trace_log_of_a_federation_scenario_holds_no_message_body_or_token`], run in a
/// process of its own (the test binary again, with only this test) so that the global
/// subscriber sees every thread: logs at `trace` to stderr, prints its secrets to stdout.
#[test]
#[ignore = "run by the_trace_log_of_a_federation_scenario_holds_no_message_body_or_token"]
fn trace_scenario_child() {
    if std::env::var_os("MIMI_TRACE_CHILD").is_none() {
        return;
    }
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let world = World::start(&[A, B]).await;
        let (room, mut alice, mut bob) = crate::federation::two_party(&world).await;
        for text in PLAINTEXTS {
            alice.say(&world, &room, text).await;
        }
        bob.sync_until(&world, "Bob to read both", |c| c.received.len() == 2)
            .await;
        let registered = world
            .provider(A)
            .accounts()
            .register(
                mimi_hub::accounts::Registration {
                    localpart: "alice".into(),
                    device: "tablet".into(),
                    ..Default::default()
                },
                Some(alice.id.clone()),
            )
            .await
            .unwrap();
        world
            .provider(A)
            .accounts()
            .authenticate(&registered.token)
            .await
            .unwrap();
        println!("TOKEN={}", registered.token);
        world.shutdown().await;
    });
}

const PLAINTEXTS: [&str; 2] = [
    "first-secret-plaintext-6b1f",
    "second-secret-plaintext-93ce",
];

/// A federation scenario (two providers, a room, messages, a token used) logged at
/// `trace`: the log has the events and none of the message bodies or tokens.
#[test]
fn the_trace_log_of_a_federation_scenario_holds_no_message_body_or_token() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "ops::trace_scenario_child",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env("MIMI_TRACE_CHILD", "1")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}");
    let token = stdout
        .lines()
        .find_map(|l| l.strip_prefix("TOKEN="))
        .unwrap_or_else(|| panic!("{stdout}"))
        .to_string();
    assert!(log.contains("event accepted"), "the log was captured");
    assert!(log.contains("ds.send_message"));
    let secret = token.rsplit_once('.').unwrap().1;
    for needle in [PLAINTEXTS[0], PLAINTEXTS[1], token.as_str(), secret] {
        assert!(!log.contains(needle), "a secret is in the log");
    }
}

/// A destination down for longer than `PEER_DOWN_WARN_AFTER`, on paused time, in a process
/// of its own whose global subscriber writes `warn` and above to stderr.
#[test]
#[ignore = "run by a_peer_down_for_long_is_warned_about_once_and_its_return_too"]
fn peer_down_child() {
    use crate::sim::{Answer, Endpoint, Sim};
    use crate::world::Providers;
    use mimi_hub::outbox::PEER_DOWN_WARN_AFTER;
    if std::env::var_os("MIMI_PEER_DOWN_CHILD").is_none() {
        return;
    }
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async {
        let sim = Sim::start(&[A, B], Settings::default(), true);
        sim.net.set(B, Endpoint::Deliver, Answer::Fail);
        let start = tokio::time::Instant::now();
        let (_room, _alice, _bob) = crate::paused::room_with_bob(&sim).await;
        // Attempts go on until well past the threshold.
        sim.net
            .wait_for(|calls| {
                calls.iter().any(|c| {
                    c.endpoint == Endpoint::Deliver
                        && c.to == name(B)
                        && c.at > start + PEER_DOWN_WARN_AFTER + PEER_DOWN_WARN_AFTER / 2
                })
            })
            .await;
        sim.net.set(B, Endpoint::Deliver, Answer::Route);
        sim.provider(A).retry_now().retry(&name(B));
        while !crate::paused::outbox(&sim, A, B).is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        println!("DONE");
    });
}

#[test]
fn a_peer_down_for_long_is_warned_about_once_and_its_return_too() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "ops::peer_down_child",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env("MIMI_PEER_DOWN_CHILD", "1")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("DONE"),
        "{stdout}{log}"
    );
    let warned: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("destination unreachable for long"))
        .collect();
    assert_eq!(warned.len(), 1, "{log}");
    assert!(
        warned[0].contains("WARN") && warned[0].contains("dest=b.example"),
        "{log}"
    );
    // The backlog counts the entries of the chain that just failed (the add's fan-out
    // waits for b.example).
    assert!(
        warned[0].contains("backlog_at_least=") && !warned[0].contains("backlog_at_least=0"),
        "{log}"
    );
    assert_eq!(
        log.lines()
            .filter(|l| l.contains("destination reachable again") && l.contains("b.example"))
            .count(),
        1,
        "{log}"
    );
}
