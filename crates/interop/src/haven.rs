//! `interop-haven`: the -06 probe against Haven's `mimi-hubd` (the Apache-2.0 repository
//! havenmessenger/interop), built from a local checkout and run as a real process.
//!
//! Builds `mimi-hubd` in the checkout (`cargo build --release -p mimi-hubd --locked
//! --ignore-rust-version`, with its own target directory, never ours), makes a CA and two
//! certificates with our PKI (the hub's for [`HAVEN_DOMAIN`], ours for [`PROBE_DOMAIN`]),
//! starts the hub on a free loopback port with its documented environment variables, waits
//! until it accepts connections, runs [`crate::probe06`] and stops the hub by its handle. Not
//! part of CI: it needs the other repository.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use mimi_codec::ServerName;
use mimi_transport::pki::CertificateAuthority;

use crate::probe06::{ProbeConfig, Report};

/// The name Haven's hub is given.
pub const HAVEN_DOMAIN: &str = "haven.mimi.test";
/// The name the probe speaks as.
pub const PROBE_DOMAIN: &str = "probe.mimi.test";
/// How long the hub may take to accept connections.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How often its port is tried while it starts.
const START_POLL: Duration = Duration::from_millis(100);

/// Why the Haven run could not be made.
#[derive(Debug, thiserror::Error)]
pub enum HavenError {
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was attempted.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The build failed.
    #[error("cargo build of mimi-hubd in {0} failed")]
    Build(PathBuf),
    /// The hub exited or never listened.
    #[error("mimi-hubd did not start: {0}")]
    Start(String),
    /// Certificates.
    #[error(transparent)]
    Pki(#[from] mimi_transport::pki::PkiError),
    /// The probe could not run.
    #[error(transparent)]
    Probe(#[from] crate::probe06::ProbeError),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> HavenError {
    let what = what.into();
    move |source| HavenError::Io { what, source }
}

/// The commit checked out at `repo` (`git rev-parse --short HEAD`), if git knows it.
pub fn commit_of(repo: &Path) -> Option<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The toolchain Haven is built with: the one running us (`RUSTUP_TOOLCHAIN`, set by rustup
/// under `cargo xtask`), else our pinned channel. Haven pins a newer one that need not be
/// installed; `--ignore-rust-version` lets ours build it.
fn toolchain() -> Option<String> {
    if let Ok(t) = std::env::var("RUSTUP_TOOLCHAIN") {
        return Some(t);
    }
    let pin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rust-toolchain.toml");
    let text = std::fs::read_to_string(pin).ok()?;
    text.lines().find_map(|l| {
        let value = l.trim().strip_prefix("channel")?.trim().strip_prefix('=')?;
        Some(value.trim().trim_matches('"').to_owned())
    })
}

/// Build `mimi-hubd` in `checkout` into `target_dir`; the binary's path.
pub fn build(checkout: &Path, target_dir: &Path) -> Result<PathBuf, HavenError> {
    let mut cargo = std::process::Command::new("cargo");
    if let Some(t) = toolchain() {
        cargo.env("RUSTUP_TOOLCHAIN", t);
    }
    let status = cargo
        .current_dir(checkout)
        .env("CARGO_TARGET_DIR", target_dir)
        .args([
            "build",
            "--release",
            "-p",
            "mimi-hubd",
            "--locked",
            "--ignore-rust-version",
        ])
        .status()
        .map_err(io("running cargo build for mimi-hubd"))?;
    if !status.success() {
        return Err(HavenError::Build(checkout.to_owned()));
    }
    Ok(target_dir
        .join("release")
        .join(format!("mimi-hubd{}", std::env::consts::EXE_SUFFIX)))
}

fn free_port() -> Result<u16, HavenError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(io("reserving a port"))?;
    Ok(listener
        .local_addr()
        .map_err(io("reserving a port"))?
        .port())
}

/// Start `binary` (a built `mimi-hubd`), probe it, stop it; the probe's report.
pub async fn run(binary: &Path, hex: bool) -> Result<Report, HavenError> {
    let dir = tempfile::Builder::new()
        .prefix("mimi-haven-")
        .tempdir()
        .map_err(io("temporary folder"))?;
    let root = dir.path();
    let haven: ServerName = HAVEN_DOMAIN
        .parse()
        .map_err(|_| HavenError::Start("bad server name".into()))?;
    let probe: ServerName = PROBE_DOMAIN
        .parse()
        .map_err(|_| HavenError::Start("bad server name".into()))?;
    let ca = CertificateAuthority::generate("mimi-rs interop CA (Haven run)")?;
    let (ca_cert, _) = ca.write_pem_files(root, "ca")?;
    let (server_cert, server_key) = ca.issue(&haven)?.write_pem_files(root, "haven")?;
    let (client_cert, client_key) = ca.issue(&probe)?.write_pem_files(root, "probe")?;
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?));
    let log = root.join("mimi-hubd.log");
    let log_file = std::fs::File::create(&log).map_err(io("creating the hub's log"))?;
    let log_err = log_file.try_clone().map_err(io("creating the hub's log"))?;
    let mut child = tokio::process::Command::new(binary)
        .env("MIMI_PROVIDER_DOMAIN", HAVEN_DOMAIN)
        .env("MIMI_BIND_ADDR", address.to_string())
        .env("MIMI_DB_PATH", root.join("hub.db"))
        .env("MIMI_SERVER_CERT", &server_cert)
        .env("MIMI_SERVER_KEY", &server_key)
        .env("MIMI_CLIENT_CA", &ca_cert)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log_file))
        .stderr(Stdio::from(log_err))
        .kill_on_drop(true)
        .spawn()
        .map_err(io(format!("starting {}", binary.display())))?;
    let log_tail = || std::fs::read_to_string(&log).unwrap_or_default();

    // A real process: poll its port, bounded.
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().map_err(io("waiting for mimi-hubd"))? {
            return Err(HavenError::Start(format!(
                "exited {status}: {}",
                log_tail()
            )));
        }
        if tokio::net::TcpStream::connect(address).await.is_ok() {
            break;
        }
        if started.elapsed() > START_TIMEOUT {
            let _ = child.kill().await;
            return Err(HavenError::Start(format!(
                "not listening after {START_TIMEOUT:?}: {}",
                log_tail()
            )));
        }
        tokio::time::sleep(START_POLL).await;
    }

    let config = ProbeConfig {
        peer: haven,
        address,
        prefix: None,
        ca: ca_cert,
        cert: client_cert,
        key: client_key,
        our_domain: probe,
        hex,
    };
    let report = crate::probe06::run(&config).await;
    child.kill().await.map_err(io("stopping mimi-hubd"))?;
    Ok(report?)
}
