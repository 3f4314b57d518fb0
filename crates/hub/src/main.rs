//! `mimi-hub`: run one provider's MIMI server, and set it up and operate it.
//!
//! `mimi-hub --config provider.toml` (or `mimi-hub run --config ...`) runs the server: it
//! prints `mimi-hub <server name> listening federation=<addr> api=<addr>` (and
//! ` admin=<addr>` with an admin listener) on stdout once the listeners are bound (so that
//! tools starting it with port 0 learn the ports), logs with `tracing` to stderr (filter
//! with `RUST_LOG`; `--log-json` or `[admin] log_format = "json"` for JSON lines; colours
//! only on a terminal), and stops cleanly on SIGTERM or Ctrl-C. `init`, `issue-cert`,
//! `check`, `backup` and `admin` are described by `mimi-hub --help` and
//! `docs/operator.md`.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use mimi_codec::ServerName;
use mimi_hub::config::{ConfigError, LogFormat, ProviderConfig, StorageConfig};
use mimi_hub::identity::{HubIdentity, IdentityError};
use mimi_hub::peers::HttpsPeers;
use mimi_hub::provider::{Provider, ProviderParts};
use mimi_hub::startup;
use mimi_hub::storage::{PostgresStorage, RedbStorage, Storage, StorageError};
use mimi_transport::tls::{
    Identity, certificates_from_pem_file, client_config, server_config,
    server_config_without_client_auth,
};
use mimi_transport::{ClientConfig, Resolver, StaticResolver, WellKnownResolver};

/// A MIMI provider's server.
#[derive(Parser, Debug)]
#[command(name = "mimi-hub", version, about, long_about = None)]
struct Cli {
    /// Run the server with this configuration (the same as `mimi-hub run --config`).
    #[arg(long, global = false)]
    config: Option<PathBuf>,
    /// Log JSON lines (overrides `[admin] log_format`).
    #[arg(long)]
    log_json: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server.
    Run {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Write a new provider's files: provider.toml (every key commented), its certificate
    /// and key from a CA (created if the CA folder has none), an admin token.
    Init {
        /// The folder for the provider's files (created if missing).
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The provider's server name (its DNS name).
        #[arg(long)]
        server_name: ServerName,
        /// The federation listener.
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: SocketAddr,
        /// The client API listener.
        #[arg(long, default_value = "127.0.0.1:8444")]
        api_listen: SocketAddr,
        /// The admin listener (keep it on loopback).
        #[arg(long, default_value = "127.0.0.1:8445")]
        admin_listen: SocketAddr,
        /// The folder of the CA to issue from (ca.crt, ca.key); created there if missing.
        /// Default: the provider's folder. Give every local provider the same one.
        #[arg(long)]
        ca_dir: Option<PathBuf>,
        /// A peer's static address, `NAME=HOST:PORT` (repeat for each peer).
        #[arg(long = "peer", value_parser = parse_peer)]
        peers: Vec<(ServerName, SocketAddr)>,
        /// Let anyone register through the client API.
        #[arg(long)]
        open_registration: bool,
    },
    /// Issue a certificate for another provider from a CA folder.
    IssueCert {
        /// The CA folder (ca.crt, ca.key; created if missing).
        #[arg(long)]
        ca_dir: PathBuf,
        /// The provider's server name.
        #[arg(long)]
        server_name: ServerName,
        /// Where `<name>.crt` and `<name>.key` go.
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
    /// Check a configuration: the file, the certificate's names against server_name, the
    /// key pair, the CA, the storage, the admin token. One line per problem.
    Check {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Write a consistent copy of the storage to a new file (redb), through the running
    /// server's admin listener if it runs, else directly.
    Backup {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
        /// The new backup file (must not exist).
        #[arg(long)]
        out: PathBuf,
    },
    /// Operate a running server through its admin listener.
    Admin {
        /// The configuration file (for the admin listener and token).
        #[arg(long)]
        config: PathBuf,
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Subcommand, Debug)]
enum AdminCommand {
    /// Create a user and its first client (works with registration closed); prints the
    /// client's token once.
    CreateUser {
        /// The user's localpart (`alice` of `@alice:a.example`).
        localpart: String,
        /// The first client's device name.
        #[arg(long, default_value = "default")]
        device: String,
        /// A display name.
        #[arg(long)]
        display_name: Option<String>,
    },
    /// List users and their clients.
    ListUsers,
    /// List rooms with this server's role (hub or follower) and the last sequence number.
    ListRooms,
    /// Revoke a client's token (it stops working at once).
    Revoke {
        /// The client ID (`@alice:a.example#laptop`).
        client: String,
    },
    /// Show the outbox per destination.
    Outbox,
    /// Retry a destination now (skip the backoff).
    Retry {
        /// The destination server name.
        destination: ServerName,
    },
}

fn parse_peer(s: &str) -> Result<(ServerName, SocketAddr), String> {
    let (name, addr) = s.split_once('=').ok_or("expected NAME=HOST:PORT")?;
    Ok((
        name.parse().map_err(|e| format!("{name}: {e}"))?,
        addr.parse().map_err(|e| format!("{addr}: {e}"))?,
    ))
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
enum StartError {
    /// The configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Certificates, keys or TLS settings.
    #[error("TLS: {0}")]
    Tls(#[from] mimi_transport::TlsConfigError),
    /// The storage could not be opened.
    #[error("storage {what}: {source}")]
    Storage {
        /// The redb file, or "(PostgreSQL)" (never the URL: it may hold a password).
        what: String,
        /// Why.
        source: StorageError,
    },
    /// The hub key and the database do not belong together.
    #[error(transparent)]
    State(#[from] mimi_hub::startup::StateError),
    /// The hub's MLS identity could not be loaded or created.
    #[error("hub key: {0}")]
    HubKey(#[from] IdentityError),
    /// A listener could not be bound.
    #[error("bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A task of the runtime failed.
    #[error("startup task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The certificate does not name the server.
    #[error("{0}")]
    Certificate(String),
    /// The admin token.
    #[error(transparent)]
    AdminToken(#[from] mimi_hub::admin::TokenError),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        None => match cli.config {
            Some(config) => serve(config, cli.log_json),
            None => {
                eprintln!("usage: mimi-hub --config provider.toml (or mimi-hub --help)");
                ExitCode::from(2)
            }
        },
        Some(Command::Run { config }) => serve(config, cli.log_json),
        Some(Command::Init {
            dir,
            server_name,
            listen,
            api_listen,
            admin_listen,
            ca_dir,
            peers,
            open_registration,
        }) => {
            let options = mimi_hub::init::InitOptions {
                dir,
                server_name,
                listen,
                api_listen,
                admin_listen,
                ca_dir,
                peers: peers.into_iter().collect::<BTreeMap<_, _>>(),
                open_registration,
            };
            match mimi_hub::init::init(&options) {
                Ok(done) => {
                    println!("wrote {}", done.config.display());
                    if done.ca_created {
                        println!("created the CA {}", done.ca_cert.display());
                    }
                    println!(
                        "next: mimi-hub check --config {0} && mimi-hub --config {0}",
                        done.config.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        Some(Command::IssueCert {
            ca_dir,
            server_name,
            out,
        }) => match mimi_hub::init::issue_cert(&ca_dir, &server_name, &out) {
            Ok((cert, key)) => {
                println!("wrote {} and {}", cert.display(), key.display());
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        },
        Some(Command::Check { config }) => {
            let problems = mimi_hub::init::check(&config);
            if problems.is_empty() {
                println!("{}: ok", config.display());
                ExitCode::SUCCESS
            } else {
                for p in &problems {
                    println!("{p}");
                }
                ExitCode::FAILURE
            }
        }
        Some(Command::Backup { config, out }) => with_runtime(backup(config, out)),
        Some(Command::Admin { config, command }) => with_runtime(admin(config, command)),
    }
}

fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("mimi-hub: {e}");
    ExitCode::FAILURE
}

fn with_runtime(f: impl std::future::Future<Output = Result<(), String>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(format!("cannot start the runtime: {e}")),
    };
    match runtime.block_on(f) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn serve(config_path: PathBuf, log_json: bool) -> ExitCode {
    let config = match ProviderConfig::load(&config_path) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    init_logging(if log_json {
        LogFormat::Json
    } else {
        config.admin.log_format
    });
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(format!("cannot start the runtime: {e}")),
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

/// Rule HUB-OPS-1 (docs/protocol-coverage.md).
async fn run(config: ProviderConfig) -> Result<(), StartError> {
    mimi_hub::init::certificate_names(&config.certificate, &config.server_name)
        .map_err(|e| StartError::Certificate(format!("refusing to start: {e}")))?;
    let admin_token = config
        .admin
        .token_file
        .as_deref()
        .map(mimi_hub::admin::read_token)
        .transpose()?;
    let roots = certificates_from_pem_file(&config.ca)?;
    let identity = || Identity::from_pem_files(&config.certificate, &config.private_key);
    let server_tls = server_config(identity()?, &roots)?;
    let api_tls = server_config_without_client_auth(identity()?)?;
    let client_tls = client_config(Some(identity()?), &roots)?;
    let resolver: Arc<dyn Resolver> = if config.peers.is_empty() {
        Arc::new(WellKnownResolver::with_dns(ClientConfig::new(
            client_tls.clone(),
        )))
    } else {
        let mut r = StaticResolver::new();
        for (name, addr) in &config.peers {
            r.insert(name.clone(), *addr);
        }
        Arc::new(r)
    };
    let storage = open_checked(&config).await?;
    let hub_identity = HubIdentity::load_or_create(&config.hub_key, &config.server_name)?;
    let provider = Provider::new(ProviderParts {
        server_name: config.server_name.clone(),
        storage,
        peers: Arc::new(HttpsPeers::new(ClientConfig::new(client_tls), resolver)),
        identity: hub_identity,
        settings: config.settings(),
    });

    let bind = |addr| async move {
        tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })
    };
    let federation = bind(config.listen).await?;
    let api = bind(config.api_listen).await?;
    let local = |l: &tokio::net::TcpListener, addr| {
        l.local_addr()
            .map_err(|source| StartError::Bind { addr, source })
    };
    let federation_addr = local(&federation, config.listen)?;
    let api_addr = local(&api, config.api_listen)?;
    let admin = match config.admin.listen {
        Some(addr) => {
            let listener = bind(addr).await?;
            let bound = local(&listener, addr)?;
            Some((listener, bound))
        }
        None => None,
    };
    let admin_addr = admin.as_ref().map(|(_, a)| *a);
    let admin_note = admin_addr
        .map(|a| format!(" admin={a}"))
        .unwrap_or_default();
    println!(
        "mimi-hub {} listening federation={federation_addr} api={api_addr}{admin_note}",
        config.server_name
    );
    tracing::info!(server = %config.server_name, %federation_addr, %api_addr, admin_addr = ?admin_addr, "started");

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let server = tokio::spawn(mimi_transport::serve(
        federation,
        config
            .limits
            .federation(server_tls, config.server_name.clone()),
        provider.clone(),
        stopped(stop_rx.clone()),
    ));
    let api_server = tokio::spawn(mimi_hub::api::serve_with(
        api,
        config.limits.api(api_tls),
        provider.clone(),
        stopped(stop_rx.clone()),
    ));
    let admin_server = admin.map(|(listener, _)| {
        let state = mimi_hub::admin::AdminState::new(
            provider.clone(),
            admin_token.as_deref(),
            vec![
                ("federation", federation_addr.port()),
                ("api", api_addr.port()),
            ],
        );
        tokio::spawn(mimi_hub::admin::serve(
            listener,
            state,
            stopped(stop_rx.clone()),
        ))
    });
    let outbox = tokio::spawn(mimi_hub::outbox::run(provider, stopped(stop_rx)));

    shutdown_signal().await;
    tracing::info!("stopping");
    let _ = stop_tx.send(true);
    let _ = server.await;
    let _ = api_server.await;
    let _ = outbox.await;
    if let Some(admin_server) = admin_server {
        let _ = admin_server.await;
    }
    Ok(())
}

/// The admin listener's address and token of a configuration.
fn admin_of(config: &ProviderConfig) -> Result<(SocketAddr, String), String> {
    let addr = config
        .admin
        .listen
        .ok_or("the configuration has no [admin] listen")?;
    let token_file = config
        .admin
        .token_file
        .as_deref()
        .ok_or("the configuration has no [admin] token_file")?;
    let token = mimi_hub::admin::read_token(token_file).map_err(|e| e.to_string())?;
    Ok((addr, token))
}

async fn admin(config_path: PathBuf, command: AdminCommand) -> Result<(), String> {
    use hyper::Method;
    use mimi_hub::admin::percent_encode;
    let config = ProviderConfig::load(&config_path).map_err(|e| e.to_string())?;
    let (addr, token) = admin_of(&config)?;
    let (method, path, body) = match command {
        AdminCommand::CreateUser {
            localpart,
            device,
            display_name,
        } => (
            Method::POST,
            "/admin/users".to_string(),
            Some(
                serde_json::json!({"localpart": localpart, "device": device, "display_name": display_name}),
            ),
        ),
        AdminCommand::ListUsers => (Method::GET, "/admin/users".into(), None),
        AdminCommand::ListRooms => (Method::GET, "/admin/rooms".into(), None),
        AdminCommand::Revoke { client } => (
            Method::POST,
            format!("/admin/clients/{}/revoke", percent_encode(&client)),
            None,
        ),
        AdminCommand::Outbox => (Method::GET, "/admin/outbox".into(), None),
        AdminCommand::Retry { destination } => (
            Method::POST,
            format!(
                "/admin/outbox/{}/retry",
                percent_encode(destination.as_str())
            ),
            None,
        ),
    };
    let (status, value) = mimi_hub::admin::request(addr, Some(&token), method, &path, body)
        .await
        .map_err(|e| e.to_string())?;
    let text = serde_json::to_string_pretty(&value).unwrap_or_else(|_| value.to_string());
    if (200..300).contains(&status) {
        println!("{text}");
        Ok(())
    } else {
        Err(format!("admin listener answered {status}: {text}"))
    }
}

async fn backup(config_path: PathBuf, out: PathBuf) -> Result<(), String> {
    let config = ProviderConfig::load(&config_path).map_err(|e| e.to_string())?;
    let out = std::path::absolute(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    if out.exists() {
        return Err(format!(
            "{} exists; a backup goes to a new file",
            out.display()
        ));
    }
    if let StorageConfig::Postgres { .. } = config.storage {
        return Err("PostgreSQL storage: back it up with pg_dump (docs/operator.md)".into());
    }
    // Through the running server, which holds the database open.
    if let Ok((addr, token)) = admin_of(&config) {
        match mimi_hub::admin::request(
            addr,
            Some(&token),
            hyper::Method::POST,
            "/admin/backup",
            Some(serde_json::json!({"out": out.display().to_string()})),
        )
        .await
        {
            Ok((200, _)) => {
                println!("wrote {} (through the running server)", out.display());
                return Ok(());
            }
            Ok((status, value)) => {
                return Err(format!("admin listener answered {status}: {value}"));
            }
            Err(mimi_hub::admin::AdminClientError::Connect { .. }) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    // The server is not running: open the database directly.
    let storage = open_storage(config.storage.clone()).await.map_err(|e| {
        format!("{e} (if the server runs, give it an [admin] listener and token_file)")
    })?;
    let o = out.clone();
    tokio::task::spawn_blocking(move || storage.backup(&o))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    println!("wrote {}", out.display());
    Ok(())
}

/// Open the configured storage once [`startup::check_state`] allows it: a redb file is
/// judged before it is opened (opening creates it), a PostgreSQL database by whether the
/// connection had to create its schema.
async fn open_checked(config: &ProviderConfig) -> Result<Arc<dyn Storage>, StartError> {
    let hub_key_exists = config.hub_key.exists();
    let found = |database: String, database_exists| startup::Found {
        hub_key: config.hub_key.clone(),
        hub_key_exists,
        database,
        database_exists,
    };
    let start = match &config.storage {
        StorageConfig::Redb { path, .. } => {
            let found = found(path.display().to_string(), startup::redb_file_exists(path));
            let start = startup::check_state(&found)?;
            (start, open_storage(config.storage.clone()).await?)
        }
        StorageConfig::Postgres { url, pool_size } => {
            let (url, pool_size) = (url.clone(), *pool_size);
            let storage =
                tokio::task::spawn_blocking(move || PostgresStorage::connect(&url, pool_size))
                    .await?
                    .map_err(|source| StartError::Storage {
                        what: "(PostgreSQL)".into(),
                        source,
                    })?;
            let found = found("the PostgreSQL database".into(), !storage.created());
            let start = startup::check_state(&found)?;
            (start, Arc::new(storage) as Arc<dyn Storage>)
        }
    };
    if start.0 == startup::Start::New {
        tracing::info!(hub_key = %config.hub_key.display(), "no hub key and no database: creating a new provider");
    }
    Ok(start.1)
}

/// Open the configured storage (on a blocking thread: opening checks a redb file whole, or
/// connects to PostgreSQL and migrates it).
async fn open_storage(config: StorageConfig) -> Result<Arc<dyn Storage>, StartError> {
    tokio::task::spawn_blocking(move || match &config {
        StorageConfig::Redb {
            path,
            journal,
            checkpoint,
        } => if *journal {
            let checkpoints = mimi_hub::storage::Checkpoints {
                interval: *checkpoint,
                ..Default::default()
            };
            RedbStorage::open_with_checkpoints(path, checkpoints)
        } else {
            RedbStorage::open_without_journal(path)
        }
        .map(|s| Arc::new(s) as Arc<dyn Storage>)
        .map_err(|source| StartError::Storage {
            what: path.display().to_string(),
            source,
        }),
        StorageConfig::Postgres { url, pool_size } => PostgresStorage::connect(url, *pool_size)
            .map(|s| Arc::new(s) as Arc<dyn Storage>)
            .map_err(|source| StartError::Storage {
                what: "(PostgreSQL)".into(),
                source,
            }),
    })
    .await?
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
