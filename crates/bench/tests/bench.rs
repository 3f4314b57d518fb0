//! The harness against real servers: the load generator drives the ceiling over mutual TLS
//! (in this process and as a child process), counts exactly, and refuses what it must.
//! Nothing here asserts on time.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use mimi_bench::loadgen::{self, ConnectError, FixedBody, LoadConfig, LoadError, Pace, Stop};
use mimi_bench::process::ChildServer;
use mimi_bench::setup::{BenchPki, ScratchDir};
use mimi_bench::suite::{self, CEILING_SERVER, LOADGEN_CLIENT, SEND_PATH, SERVE_CEILING_COMMAND};
use mimi_codec::ServerName;
use mimi_transport::tls;
use rustls::pki_types::ServerName as TlsServerName;
use tokio::sync::oneshot;

fn name(s: &str) -> ServerName {
    s.parse().unwrap()
}

fn tls_name() -> TlsServerName<'static> {
    TlsServerName::try_from(CEILING_SERVER.to_owned()).unwrap()
}

/// The ceiling on 127.0.0.1 port 0 in this process; stopped by sending on the handle.
async fn start_ceiling(
    pki: &BenchPki,
) -> (SocketAddr, oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let config = pki.server_config(&name(CEILING_SERVER)).unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(mimi_bench::ceiling::serve(
        listener,
        config,
        suite::ceiling_answer().unwrap(),
        async {
            let _ = stopped.await;
        },
    ));
    (addr, stop, server)
}

fn config(
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    clients: usize,
    pace: Pace,
    stop: Stop,
) -> Arc<LoadConfig> {
    Arc::new(LoadConfig::new(
        addr,
        tls_name(),
        tls,
        SEND_PATH,
        clients,
        pace,
        stop,
    ))
}

fn workload() -> Arc<FixedBody> {
    Arc::new(FixedBody(suite::ceiling_request().unwrap()))
}

#[tokio::test]
async fn closed_loop_count_run_answers_every_request_with_200() {
    let pki = BenchPki::generate().unwrap();
    let (addr, stop, server) = start_ceiling(&pki).await;
    let client = pki.client_config(&name(LOADGEN_CLIENT)).unwrap();
    let report = loadgen::run(
        config(addr, client, 4, Pace::Saturate, Stop::Count(200)),
        workload(),
    )
    .await
    .unwrap();
    assert_eq!(
        (report.accepted, report.refused, report.failed),
        (200, 0, 0)
    );
    assert_eq!(report.latency.len(), 200);
    assert!(report.first_failure.is_none());
    assert_eq!(report.first_refusal, None);
    stop.send(()).unwrap();
    server.await.unwrap();
}

#[tokio::test]
async fn open_loop_count_run_sends_exactly_the_count() {
    let pki = BenchPki::generate().unwrap();
    let (addr, stop, server) = start_ceiling(&pki).await;
    let client = pki.client_config(&name(LOADGEN_CLIENT)).unwrap();
    let report = loadgen::run(
        config(addr, client, 3, Pace::Rate(2000.0), Stop::Count(50)),
        workload(),
    )
    .await
    .unwrap();
    assert_eq!((report.accepted, report.refused, report.failed), (50, 0, 0));
    assert_eq!(report.latency.len(), 50);
    stop.send(()).unwrap();
    server.await.unwrap();
}

#[tokio::test]
async fn a_client_without_a_certificate_is_refused_with_403() {
    let pki = BenchPki::generate().unwrap();
    let (addr, stop, server) = start_ceiling(&pki).await;
    let anonymous = tls::client_config(None, pki.roots()).unwrap();
    let report = loadgen::run(
        config(addr, anonymous, 2, Pace::Saturate, Stop::Count(10)),
        workload(),
    )
    .await
    .unwrap();
    assert_eq!((report.accepted, report.refused, report.failed), (0, 10, 0));
    assert_eq!(report.first_refusal, Some(hyper::StatusCode::FORBIDDEN));
    assert_eq!(report.latency.len(), 0);
    stop.send(()).unwrap();
    server.await.unwrap();
}

#[tokio::test]
async fn a_server_from_another_ca_fails_the_handshake() {
    let pki = BenchPki::generate().unwrap();
    let (addr, stop, server) = start_ceiling(&pki).await;
    let stranger = BenchPki::generate().unwrap();
    let client = stranger.client_config(&name(LOADGEN_CLIENT)).unwrap();
    let error = loadgen::run(
        config(addr, client, 1, Pace::Saturate, Stop::Count(1)),
        workload(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            error,
            LoadError::Connect {
                source: ConnectError::Tls(_),
                ..
            }
        ),
        "{error:?}"
    );
    stop.send(()).unwrap();
    server.await.unwrap();
}

#[tokio::test]
async fn invalid_configurations_are_refused_before_connecting() {
    let pki = BenchPki::generate().unwrap();
    let client = pki.client_config(&name(LOADGEN_CLIENT)).unwrap();
    // Nothing listens here: a configuration error must come before any connection.
    let nowhere = SocketAddr::from(([127, 0, 0, 1], 9));
    for (clients, pace) in [
        (0, Pace::Saturate),
        (1, Pace::Rate(0.0)),
        (1, Pace::Rate(f64::NAN)),
    ] {
        let error = loadgen::run(
            config(nowhere, client.clone(), clients, pace, Stop::Count(1)),
            workload(),
        )
        .await
        .unwrap_err();
        assert!(matches!(error, LoadError::InvalidConfig(_)), "{error:?}");
    }
}

fn bench_exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_mimi-bench"))
}

#[test]
fn the_ceiling_process_serves_until_its_stdin_closes() {
    let pki = BenchPki::generate().unwrap();
    let dir = ScratchDir::new("test").unwrap();
    pki.write_server_files(dir.path(), &name(CEILING_SERVER))
        .unwrap();
    let mut command = Command::new(bench_exe());
    command
        .arg(SERVE_CEILING_COMMAND)
        .arg(dir.path())
        .arg(CEILING_SERVER);
    let server = ChildServer::spawn(command).unwrap();
    assert!(server.addr().ip().is_loopback());
    let client = pki.client_config(&name(LOADGEN_CLIENT)).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let report = runtime
        .block_on(loadgen::run(
            config(server.addr(), client, 2, Pace::Saturate, Stop::Count(100)),
            workload(),
        ))
        .unwrap();
    assert_eq!(
        (report.accepted, report.refused, report.failed),
        (100, 0, 0)
    );
    assert!(server.peak_rss_bytes().unwrap() > 0);
    assert!(server.stop().unwrap(), "the server did not exit on its own");
}

#[test]
fn a_missing_hub_binary_is_an_error_naming_it() {
    let output = Command::new(bench_exe())
        .args(["scale", "--quick"])
        .env("MIMI_HUB_BIN", "/nonexistent/mimi-hub")
        .env_remove("CARGO")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.starts_with("mimi-bench: server process: No such file or directory"),
        "{stderr}"
    );
}

#[test]
fn unknown_arguments_are_a_usage_error() {
    let output = Command::new(bench_exe()).arg("--fast").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.starts_with("mimi-bench: unknown argument \"--fast\"\nusage: mimi-bench"));
}
