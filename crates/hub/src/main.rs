//! `mimi-hub --config provider.toml`: run one provider's MIMI server.
//!
//! Prints `mimi-hub <server name> listening federation=<addr> api=<addr>` on stdout once
//! both listeners are bound (so that tools starting it with port 0 learn the ports), logs
//! with `tracing` (filter with `RUST_LOG`), and stops cleanly on SIGTERM or Ctrl-C.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use mimi_hub::config::{ConfigError, ProviderConfig, StorageConfig};
use mimi_hub::identity::{HubIdentity, IdentityError};
use mimi_hub::peers::HttpsPeers;
use mimi_hub::provider::{Provider, ProviderParts};
use mimi_hub::startup;
use mimi_hub::storage::{PostgresStorage, RedbStorage, Storage, StorageError};
use mimi_transport::tls::{
    Identity, certificates_from_pem_file, client_config, server_config,
    server_config_without_client_auth,
};
use mimi_transport::{ClientConfig, Resolver, ServerConfig, StaticResolver, WellKnownResolver};

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
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let config_path = match (args.next().as_deref(), args.next()) {
        (Some("--config"), Some(path)) => PathBuf::from(path),
        _ => {
            eprintln!("usage: mimi-hub --config provider.toml");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mimi-hub: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config_path)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mimi-hub: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config_path: PathBuf) -> Result<(), StartError> {
    let config = ProviderConfig::load(&config_path)?;
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
    println!(
        "mimi-hub {} listening federation={federation_addr} api={api_addr}",
        config.server_name
    );
    tracing::info!(server = %config.server_name, %federation_addr, %api_addr, "started");

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let server = tokio::spawn(mimi_transport::serve(
        federation,
        ServerConfig::new(server_tls, config.server_name.clone()),
        provider.clone(),
        stopped(stop_rx.clone()),
    ));
    let api_server = tokio::spawn(mimi_hub::api::serve(
        api,
        api_tls,
        provider.clone(),
        stopped(stop_rx.clone()),
    ));
    let outbox = tokio::spawn(mimi_hub::outbox::run(provider, stopped(stop_rx)));

    shutdown_signal().await;
    tracing::info!("stopping");
    let _ = stop_tx.send(true);
    let _ = server.await;
    let _ = api_server.await;
    let _ = outbox.await;
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
        StorageConfig::Redb { path } => {
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
        StorageConfig::Redb { path } => RedbStorage::open(path)
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
