//! `mimi-hub --config provider.toml`: run one provider's MIMI server.
//!
//! Prints `mimi-hub <server name> listening federation=<addr> api=<addr>` on stdout once
//! both listeners are bound (so that tools starting it with port 0 learn the ports), logs
//! with `tracing` (filter with `RUST_LOG`), and stops cleanly on SIGTERM or Ctrl-C.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use mimi_hub::config::{ProviderConfig, StorageConfig};
use mimi_hub::engine::{Provider, ProviderParts};
use mimi_hub::identity::HubIdentity;
use mimi_hub::storage::{PostgresStorage, RedbStorage, Storage};
use mimi_transport::tls::{Identity, certificates_from_pem_file, client_config, server_config};
use mimi_transport::{
    ClientConfig, MimiClient, Resolver, ServerConfig, StaticResolver, WellKnownResolver,
};

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

async fn run(config_path: PathBuf) -> Result<(), String> {
    let config = ProviderConfig::load(&config_path).map_err(|e| e.to_string())?;
    let roots = certificates_from_pem_file(&config.ca).map_err(|e| e.to_string())?;
    let identity = || Identity::from_pem_files(&config.certificate, &config.private_key);
    let server_tls =
        server_config(identity().map_err(|e| e.to_string())?, &roots).map_err(|e| e.to_string())?;
    let api_tls =
        server_config(identity().map_err(|e| e.to_string())?, &roots).map_err(|e| e.to_string())?;
    let client_tls = client_config(Some(identity().map_err(|e| e.to_string())?), &roots)
        .map_err(|e| e.to_string())?;
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
    let storage = open_storage(config.storage.clone()).await?;
    let hub_identity = HubIdentity::load_or_create(&config.hub_key, &config.server_name)
        .map_err(|e| e.to_string())?;
    let provider = Provider::new(ProviderParts {
        server_name: config.server_name.clone(),
        storage,
        client: MimiClient::new(ClientConfig::new(client_tls), resolver),
        identity: hub_identity,
        open_registration: config.open_registration,
    });

    let federation = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("bind {}: {e}", config.listen))?;
    let api = tokio::net::TcpListener::bind(config.api_listen)
        .await
        .map_err(|e| format!("bind {}: {e}", config.api_listen))?;
    let federation_addr = federation.local_addr().map_err(|e| e.to_string())?;
    let api_addr = api.local_addr().map_err(|e| e.to_string())?;
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

/// Open the configured storage (on a blocking thread: opening checks a redb file whole, or
/// connects to PostgreSQL and migrates it).
async fn open_storage(config: StorageConfig) -> Result<Arc<dyn Storage>, String> {
    let opened = tokio::task::spawn_blocking(move || match &config {
        StorageConfig::Redb { path } => RedbStorage::open(path)
            .map(|s| Arc::new(s) as Arc<dyn Storage>)
            .map_err(|e| format!("storage {}: {e}", path.display())),
        // Not the URL in the message: it may hold a password.
        StorageConfig::Postgres { url, pool_size } => PostgresStorage::connect(url, *pool_size)
            .map(|s| Arc::new(s) as Arc<dyn Storage>)
            .map_err(|e| format!("storage (PostgreSQL): {e}")),
    });
    opened.await.map_err(|e| e.to_string())?
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
