//! Three real `mimi-hub` processes on loopback: a private CA and one certificate per
//! provider, pre-picked loopback ports (every provider must know its peers' federation
//! addresses before it starts), one `provider.toml` and one redb database per provider in a
//! temporary folder, and child processes that are stopped (SIGTERM, then a bounded wait,
//! then SIGKILL) and restarted on the same ports and storage by handle.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use mimi_codec::ServerName;
use mimi_transport::pki::{CertificateAuthority, PkiError};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The three providers of every run, in the order the scenarios name them (A, B, C).
pub const PROVIDER_NAMES: [&str; 3] = ["a.mimi.test", "b.mimi.test", "c.mimi.test"];
/// How long a starting `mimi-hub` may take to print its listening line.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a `mimi-hub` may take to exit after SIGTERM before it is killed.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How many lines of a provider's log a failure report shows.
pub const LOG_TAIL_LINES: usize = 30;
/// The environment variable that names the `mimi-hub` binary explicitly.
pub const HUB_BINARY_ENV: &str = "MIMI_HUB_BIN";
/// The binary's file name.
pub const HUB_BINARY_NAME: &str = "mimi-hub";

/// Why the harness could not set up, start or stop the providers.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// A file or folder could not be created, written or read.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The CA or a certificate could not be generated or written.
    #[error("certificates: {0}")]
    Pki(#[from] PkiError),
    /// A loopback port could not be reserved.
    #[error("cannot reserve a loopback port: {0}")]
    Port(#[source] std::io::Error),
    /// The `mimi-hub` binary was not found.
    #[error(
        "the mimi-hub binary was not found (looked at {0}); build it with `cargo build -p mimi-hub` or set {HUB_BINARY_ENV}"
    )]
    HubBinaryMissing(PathBuf),
    /// A provider name of the harness is not a valid server name.
    #[error("invalid server name {0:?}")]
    ServerName(String),
    /// The named provider is not part of this network.
    #[error("no provider {0} in this network")]
    UnknownProvider(String),
    /// The process could not be spawned.
    #[error("cannot start mimi-hub for {server}: {source}")]
    Spawn {
        /// The provider.
        server: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The process exited or stayed silent instead of printing its listening line.
    #[error("mimi-hub for {server} did not start: {reason}\n--- last lines of {log} ---\n{tail}")]
    NotStarted {
        /// The provider.
        server: String,
        /// What happened.
        reason: String,
        /// Its log file.
        log: PathBuf,
        /// The log's last lines.
        tail: String,
    },
    /// The process is already running (start) or not running (stop).
    #[error("mimi-hub for {server} is {state}")]
    WrongState {
        /// The provider.
        server: String,
        /// `running` or `stopped`.
        state: &'static str,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> HarnessError + '_ {
    move |source| HarnessError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Where the `mimi-hub` binary is: `$MIMI_HUB_BIN`, else beside the running executable
/// (`target/debug/mimi-interop`), else one folder up (`target/debug/deps/<test>`, the
/// integration test's executable).
pub fn locate_hub_binary() -> Result<PathBuf, HarnessError> {
    if let Some(explicit) = std::env::var_os(HUB_BINARY_ENV) {
        let path = PathBuf::from(explicit);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(HarnessError::HubBinaryMissing(path))
        };
    }
    let exe = std::env::current_exe().map_err(|source| HarnessError::Io {
        path: PathBuf::from("current executable"),
        source,
    })?;
    let name = format!("{HUB_BINARY_NAME}{}", std::env::consts::EXE_SUFFIX);
    let beside = exe.parent().map(|d| d.join(&name));
    let above = exe.parent().and_then(Path::parent).map(|d| d.join(&name));
    for candidate in [&beside, &above].into_iter().flatten() {
        if candidate.is_file() {
            return Ok(candidate.clone());
        }
    }
    Err(HarnessError::HubBinaryMissing(
        beside.unwrap_or_else(|| PathBuf::from(name)),
    ))
}

/// Escape a string as a TOML basic string (with its quotes).
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Reserve `n` distinct free loopback ports: all are bound at once (so they differ), read,
/// and released. A port could be taken by another program before the provider binds it;
/// the start then fails with the provider's own bind error in its log.
fn reserve_ports(n: usize) -> Result<Vec<u16>, HarnessError> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(HarnessError::Port))
        .collect::<Result<Vec<_>, _>>()?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()).map_err(HarnessError::Port))
        .collect()
}

/// One provider of the network: its files and addresses, and its process while it runs.
#[derive(Debug)]
pub struct ProviderProcess {
    name: ServerName,
    federation: SocketAddr,
    api: SocketAddr,
    config: PathBuf,
    storage: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    starts: u32,
}

impl ProviderProcess {
    /// The provider's server name.
    pub fn name(&self) -> &ServerName {
        &self.name
    }

    /// Its MIMI (federation) address.
    pub fn federation_addr(&self) -> SocketAddr {
        self.federation
    }

    /// Its client API address.
    pub fn api_addr(&self) -> SocketAddr {
        self.api
    }

    /// The client API URL (`https://<server name>:<port>`; connect to [`Self::api_addr`]).
    pub fn api_url(&self) -> String {
        format!("https://{}:{}", self.name, self.api.port())
    }

    /// Its redb database file.
    pub fn storage_path(&self) -> &Path {
        &self.storage
    }

    /// Its log file (the process's stderr, appended across restarts).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Whether its process is running (started by this harness and not stopped).
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// How many times this provider has been started.
    pub fn starts(&self) -> u32 {
        self.starts
    }

    /// The last [`LOG_TAIL_LINES`] lines of its log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(LOG_TAIL_LINES);
        lines[from..].join("\n")
    }

    fn not_started(&self, reason: String) -> HarnessError {
        HarnessError::NotStarted {
            server: self.name.to_string(),
            reason,
            log: self.log.clone(),
            tail: self.log_tail(),
        }
    }

    /// Start the process and wait for its listening line.
    pub async fn start(&mut self, binary: &Path) -> Result<(), HarnessError> {
        if self.is_running() {
            return Err(HarnessError::WrongState {
                server: self.name.to_string(),
                state: "running",
            });
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(io(&self.log))?;
        let mut child = Command::new(binary)
            .arg("--config")
            .arg(&self.config)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info,mimi_hub=debug".into()),
            )
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| HarnessError::Spawn {
                server: self.name.to_string(),
                source,
            })?;
        self.starts += 1;
        let Some(stdout) = child.stdout.take() else {
            self.child = Some(child);
            return Err(self.not_started("no stdout pipe".into()));
        };
        let mut lines = BufReader::new(stdout).lines();
        let expected = format!(
            "mimi-hub {} listening federation={} api={}",
            self.name, self.federation, self.api
        );
        let waited = tokio::time::timeout(START_TIMEOUT, async {
            loop {
                match lines.next_line().await {
                    Ok(Some(line)) if line.starts_with("mimi-hub ") => return Ok(line),
                    Ok(Some(_)) => continue,
                    Ok(None) => return Err("it exited before listening".to_owned()),
                    Err(e) => return Err(format!("reading its stdout: {e}")),
                }
            }
        })
        .await;
        let outcome = match waited {
            Ok(Ok(line)) if line == expected => Ok(()),
            Ok(Ok(line)) => Err(format!(
                "unexpected listening line {line:?}, wanted {expected:?}"
            )),
            Ok(Err(reason)) => Err(reason),
            Err(_) => Err(format!("no listening line within {START_TIMEOUT:?}")),
        };
        if let Err(reason) = outcome {
            let _ = child.kill().await;
            return Err(self.not_started(reason));
        }
        // Keep reading stdout so that the process never writes into a closed pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        self.child = Some(child);
        Ok(())
    }

    /// Stop the process: SIGTERM to its own process ID, wait up to [`STOP_TIMEOUT`], then
    /// SIGKILL. Returns whether it exited on SIGTERM with success.
    pub async fn stop(&mut self) -> Result<bool, HarnessError> {
        let Some(mut child) = self.child.take() else {
            return Err(HarnessError::WrongState {
                server: self.name.to_string(),
                state: "stopped",
            });
        };
        if let Ok(Some(status)) = child.try_wait() {
            return Ok(status.success());
        }
        if let Some(pid) = child.id() {
            // Only this process, by its ID: `kill -TERM <pid>`.
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .await;
        }
        match tokio::time::timeout(STOP_TIMEOUT, child.wait()).await {
            Ok(Ok(status)) => Ok(status.success()),
            Ok(Err(e)) => Err(io(&self.log)(e)),
            Err(_) => {
                let _ = child.kill().await;
                Ok(false)
            }
        }
    }

    /// Kill the process at once (SIGKILL), as a crash would end it.
    pub async fn kill(&mut self) -> Result<(), HarnessError> {
        let Some(mut child) = self.child.take() else {
            return Err(HarnessError::WrongState {
                server: self.name.to_string(),
                state: "stopped",
            });
        };
        child.kill().await.map_err(io(&self.log))
    }
}

/// How a [`Network`] deviates from the plain one.
#[derive(Debug, Clone, Default)]
pub struct NetworkOptions {
    /// `(provider, peer) -> address`: the provider's `[peers]` entry for the peer names
    /// this address instead of the peer's own (a proxy in front of the peer).
    pub peer_addresses: BTreeMap<(String, String), SocketAddr>,
    /// `provider -> folder`: where the provider's database (and hub key) live instead of
    /// its own folder (say, a small filesystem that can fill up).
    pub storage_dirs: BTreeMap<String, PathBuf>,
}

/// Three providers on loopback with their CA, in a temporary folder that is removed when
/// the network is dropped (every process still running is killed then, too).
#[derive(Debug)]
pub struct Network {
    dir: tempfile::TempDir,
    binary: PathBuf,
    ca: PathBuf,
    providers: Vec<ProviderProcess>,
}

impl Network {
    /// Set up the CA, certificates, configurations and storage folders of the three
    /// providers of [`PROVIDER_NAMES`], and start them.
    pub async fn start(binary: &Path) -> Result<Network, HarnessError> {
        Self::start_with(binary, &NetworkOptions::default()).await
    }

    /// [`Self::start`] with `options` (say, one provider reaching a peer through a proxy).
    pub async fn start_with(
        binary: &Path,
        options: &NetworkOptions,
    ) -> Result<Network, HarnessError> {
        if !binary.is_file() {
            return Err(HarnessError::HubBinaryMissing(binary.to_owned()));
        }
        let dir = tempfile::Builder::new()
            .prefix("mimi-interop-")
            .tempdir()
            .map_err(io(Path::new("temporary folder")))?;
        let root = dir.path().to_owned();
        let ca = CertificateAuthority::generate("mimi interop CA")?;
        let (ca_cert, _) = ca.write_pem_files(&root, "ca")?;

        let ports = reserve_ports(PROVIDER_NAMES.len() * 2)?;
        let mut names = Vec::new();
        for (i, name) in PROVIDER_NAMES.iter().enumerate() {
            let server: ServerName = name
                .parse()
                .map_err(|_| HarnessError::ServerName((*name).to_owned()))?;
            let federation = SocketAddr::from((Ipv4Addr::LOCALHOST, ports[2 * i]));
            let api = SocketAddr::from((Ipv4Addr::LOCALHOST, ports[2 * i + 1]));
            names.push((server, federation, api));
        }
        let peers: BTreeMap<String, SocketAddr> =
            names.iter().map(|(n, f, _)| (n.to_string(), *f)).collect();

        let mut providers = Vec::new();
        for (server, federation, api) in names {
            let folder = root.join(server.as_str());
            std::fs::create_dir_all(&folder).map_err(io(&folder))?;
            let (cert, key) = ca.issue(&server)?.write_pem_files(&folder, "server")?;
            let storage = options
                .storage_dirs
                .get(server.as_str())
                .unwrap_or(&folder)
                .join("provider.redb");
            let config = folder.join("provider.toml");
            let mut text = format!(
                "server_name = {}\nlisten = \"{federation}\"\napi_listen = \"{api}\"\n\
                 certificate = {}\nprivate_key = {}\nca = {}\nstorage = {}\n\
                 open_registration = true\n\n[peers]\n",
                toml_string(server.as_str()),
                toml_string(&cert.display().to_string()),
                toml_string(&key.display().to_string()),
                toml_string(&ca_cert.display().to_string()),
                toml_string(&storage.display().to_string()),
            );
            for (peer, addr) in &peers {
                if peer != server.as_str() {
                    let addr = options
                        .peer_addresses
                        .get(&(server.to_string(), peer.clone()))
                        .unwrap_or(addr);
                    text.push_str(&format!("{} = \"{addr}\"\n", toml_string(peer)));
                }
            }
            std::fs::write(&config, text).map_err(io(&config))?;
            providers.push(ProviderProcess {
                name: server,
                federation,
                api,
                config,
                storage,
                log: folder.join("mimi-hub.log"),
                child: None,
                starts: 0,
            });
        }
        let mut network = Network {
            dir,
            binary: binary.to_owned(),
            ca: ca_cert,
            providers,
        };
        for i in 0..network.providers.len() {
            let binary = network.binary.clone();
            network.providers[i].start(&binary).await?;
        }
        Ok(network)
    }

    /// The temporary folder holding everything of this run.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The CA certificate (PEM) every provider and client trusts.
    pub fn ca_path(&self) -> &Path {
        &self.ca
    }

    /// The providers, in [`PROVIDER_NAMES`] order.
    pub fn providers(&self) -> &[ProviderProcess] {
        &self.providers
    }

    fn index(&self, name: &str) -> Result<usize, HarnessError> {
        self.providers
            .iter()
            .position(|p| p.name.as_str() == name)
            .ok_or_else(|| HarnessError::UnknownProvider(name.to_owned()))
    }

    /// The provider named `name`.
    pub fn provider(&self, name: &str) -> Result<&ProviderProcess, HarnessError> {
        Ok(&self.providers[self.index(name)?])
    }

    /// Stop the provider named `name` (SIGTERM); returns whether it exited cleanly.
    pub async fn stop(&mut self, name: &str) -> Result<bool, HarnessError> {
        let i = self.index(name)?;
        self.providers[i].stop().await
    }

    /// Kill the provider named `name` (SIGKILL).
    pub async fn kill(&mut self, name: &str) -> Result<(), HarnessError> {
        let i = self.index(name)?;
        self.providers[i].kill().await
    }

    /// Start the provider named `name` again, on the same ports and storage.
    pub async fn restart(&mut self, name: &str) -> Result<(), HarnessError> {
        let i = self.index(name)?;
        let binary = self.binary.clone();
        self.providers[i].start(&binary).await
    }

    /// The log tails of every provider, for a failure report.
    pub fn log_tails(&self) -> String {
        self.providers
            .iter()
            .map(|p| format!("--- {} ({}) ---\n{}", p.name, p.log.display(), p.log_tail()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Stop every running provider (SIGTERM, bounded wait, SIGKILL); returns the names of
    /// those that did not exit cleanly.
    pub async fn shutdown(mut self) -> Vec<ServerName> {
        let mut unclean = Vec::new();
        for p in &mut self.providers {
            if p.child.is_some() && !matches!(p.stop().await, Ok(true)) {
                unclean.push(p.name.clone());
            }
        }
        unclean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_strings_are_escaped() {
        assert_eq!(toml_string(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(toml_string("/tmp/x"), "\"/tmp/x\"");
    }

    #[test]
    fn reserved_ports_are_distinct_and_nonzero() {
        let ports = reserve_ports(6).unwrap();
        let distinct: std::collections::BTreeSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), 6);
        assert!(!distinct.contains(&0));
    }
}
