//! `provider.toml`: what one provider's server needs to run.
//!
//! ```toml
//! server_name = "a.example"            # this provider's MIMI server name
//! listen = "127.0.0.1:8443"            # MIMI endpoints (mutual TLS); port 0 picks one
//! api_listen = "127.0.0.1:8444"        # the client API (server TLS, bearer tokens)
//! certificate = "a.example.crt"        # PEM chain, DNS SAN = server_name
//! private_key = "a.example.key"        # PEM private key
//! ca = "ca.crt"                        # PEM roots trusted for peers' certificates
//! storage = "a.example.redb"           # the redb database file (see below)
//! hub_key = "a.example.hub-key"        # default: beside the redb file
//! open_registration = true             # optional; default false
//! check_invite_timeout_ms = 3000       # optional; how long the hub waits for an invitee's
//!                                      # server (one attempt; no answer in time refuses)
//! outbox_retry_base_ms = 200           # optional; the outbox's backoff: it sends each entry
//! outbox_retry_cap_ms = 30000          # once per attempt and alone decides when to retry
//! room_cache_max = 262144              # optional; rooms kept in memory at most
//!
//! [rate_limits]                        # optional; each { burst, refill_ms }, defaults in
//! claims_per_client = { burst = 10, refill_ms = 6000 }   # `limits` (docs/operations.md)
//!
//! [peers]                              # optional static map; without it, .well-known + DNS
//! "b.example" = "127.0.0.1:9443"
//!
//! [limits]                             # optional; each listener (federation and client
//! max_connections = 1024               # API) on its own; defaults shown; see
//! max_connections_per_ip = 128         # docs/operations.md, "Limits"
//! handshake_timeout_ms = 5000
//! header_timeout_ms = 10000
//! idle_timeout_ms = 30000
//! body_timeout_ms = 30000
//! write_timeout_ms = 30000
//! anonymous_timeout_ms = 2000
//! ```
//! Relative paths are relative to the configuration file's folder.
//!
//! `storage` is either the path of a redb file, as above, or a table choosing the backend:
//! ```toml
//! [storage]
//! kind = "redb"                        # the default: one file, one machine
//! path = "a.example.redb"
//! journal = true                       # optional; the default: the event path's writes
//!                                      # go to a journal beside the file (a.example.redb.journal/)
//!                                      # and into the file at a checkpoint every second
//! checkpoint_ms = 1000                 # optional; that interval (10 to 60,000)
//! ```
//! ```toml
//! [storage]
//! kind = "postgres"                    # a PostgreSQL database
//! url = "postgresql://mimi:secret@db.internal:5432/mimi"   # or "host=... user=..." pairs
//! pool_size = 16                       # optional; connections for reads (1 to 1024)
//! ```
//! With PostgreSQL, `hub_key` is required: there is no file for it to sit beside, and every
//! instance of the provider must use the same key.
//!
//! The optional `[admin]` table: the admin listener (plain HTTP, keep it on loopback) and
//! the log format; see `docs/operator.md`.
//! ```toml
//! [admin]
//! listen = "127.0.0.1:8445"            # /healthz, /readyz, /metrics, /admin/...
//! token_file = "admin.token"           # optional; without it the /admin/ commands are off
//! log_format = "json"                  # optional; "text" (the default) or "json"
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mimi_codec::ServerName;
use mimi_transport::accept::DEFAULT_BODY_TIMEOUT;
use mimi_transport::{ConnectionLimits, HttpConfig, RandomJitter, RetryPolicy, ServerConfig};
use serde::Deserialize;

use crate::context::{
    DEFAULT_CHECK_INVITE_TIMEOUT, DEFAULT_OUTBOX_RETRY_BASE, DEFAULT_OUTBOX_RETRY_CAP,
    DEFAULT_ROOM_CACHE_MAX, Settings,
};
use crate::limits::RateLimits;
use crate::storage::postgres::{DEFAULT_POOL_SIZE, MAX_POOL_SIZE, check_url};

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    server_name: String,
    listen: SocketAddr,
    api_listen: SocketAddr,
    certificate: PathBuf,
    private_key: PathBuf,
    ca: PathBuf,
    storage: toml::Value,
    hub_key: Option<PathBuf>,
    #[serde(default)]
    open_registration: bool,
    check_invite_timeout_ms: Option<u64>,
    outbox_retry_base_ms: Option<u64>,
    outbox_retry_cap_ms: Option<u64>,
    room_cache_max: Option<usize>,
    #[serde(default)]
    peers: BTreeMap<String, SocketAddr>,
    admin: Option<RawAdmin>,
    limits: Option<RawLimits>,
    #[serde(default)]
    rate_limits: RateLimits,
}

/// The `[admin]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    listen: Option<SocketAddr>,
    token_file: Option<PathBuf>,
    log_format: Option<LogFormat>,
}

/// How the server writes its log (to stderr).
#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Debug, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (colours only on a terminal).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The `[admin]` table, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdminConfig {
    /// Where the admin listener binds (plain HTTP: a loopback address); none without it.
    pub listen: Option<SocketAddr>,
    /// The file holding the admin token; the `/admin/` commands are off without it.
    pub token_file: Option<PathBuf>,
    /// The log format.
    pub log_format: LogFormat,
}

/// The `[limits]` table.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_connections: Option<usize>,
    max_connections_per_ip: Option<usize>,
    handshake_timeout_ms: Option<u64>,
    header_timeout_ms: Option<u64>,
    idle_timeout_ms: Option<u64>,
    body_timeout_ms: Option<u64>,
    write_timeout_ms: Option<u64>,
    anonymous_timeout_ms: Option<u64>,
}

/// The limits of both listeners (`[limits]`): each listener has them on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerLimits {
    /// The accept loop's and each connection's limits.
    pub connections: ConnectionLimits,
    /// Bound on receiving a request's whole body.
    pub body_timeout: Duration,
}

impl Default for ListenerLimits {
    fn default() -> Self {
        ListenerLimits {
            connections: ConnectionLimits::default(),
            body_timeout: DEFAULT_BODY_TIMEOUT,
        }
    }
}

impl ListenerLimits {
    fn parse(raw: RawLimits) -> Result<Self, String> {
        let d = ListenerLimits::default();
        let count = |v: Option<usize>, default: usize, key: &str| match v {
            Some(0) => Err(format!("limits.{key}: must be at least 1")),
            Some(v) => Ok(v),
            None => Ok(default),
        };
        let ms = |v: Option<u64>, default: Duration, key: &str| match v {
            Some(0) => Err(format!("limits.{key}: must be positive")),
            Some(v) => Ok(Duration::from_millis(v)),
            None => Ok(default),
        };
        let c = d.connections;
        Ok(ListenerLimits {
            connections: ConnectionLimits {
                max_connections: count(raw.max_connections, c.max_connections, "max_connections")?,
                max_connections_per_ip: count(
                    raw.max_connections_per_ip,
                    c.max_connections_per_ip,
                    "max_connections_per_ip",
                )?,
                handshake_timeout: ms(
                    raw.handshake_timeout_ms,
                    c.handshake_timeout,
                    "handshake_timeout_ms",
                )?,
                header_timeout: ms(raw.header_timeout_ms, c.header_timeout, "header_timeout_ms")?,
                idle_timeout: ms(raw.idle_timeout_ms, c.idle_timeout, "idle_timeout_ms")?,
                write_timeout: ms(raw.write_timeout_ms, c.write_timeout, "write_timeout_ms")?,
                anonymous_timeout: ms(
                    raw.anonymous_timeout_ms,
                    c.anonymous_timeout,
                    "anonymous_timeout_ms",
                )?,
                shutdown_grace: c.shutdown_grace,
            },
            body_timeout: ms(raw.body_timeout_ms, d.body_timeout, "body_timeout_ms")?,
        })
    }

    /// The federation listener's configuration with these limits.
    pub fn federation(&self, tls: Arc<rustls::ServerConfig>, name: ServerName) -> ServerConfig {
        let c = self.connections;
        let mut config = ServerConfig::new(tls, name);
        config.handshake_timeout = c.handshake_timeout;
        config.header_timeout = c.header_timeout;
        config.idle_timeout = c.idle_timeout;
        config.body_timeout = self.body_timeout;
        config.write_timeout = c.write_timeout;
        config.shutdown_grace = c.shutdown_grace;
        config.max_connections = c.max_connections;
        config.max_connections_per_ip = c.max_connections_per_ip;
        config.anonymous_timeout = c.anonymous_timeout;
        config
    }

    /// The client API listener's configuration with these limits.
    pub fn api(&self, tls: Arc<rustls::ServerConfig>) -> HttpConfig {
        let mut config = crate::api::config(tls);
        config.limits = self.connections;
        config.body_timeout = self.body_timeout;
        config
    }
}

/// The `[storage]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    kind: Option<StorageKind>,
    path: Option<PathBuf>,
    url: Option<String>,
    pool_size: Option<u32>,
    journal: Option<bool>,
    checkpoint_ms: Option<u64>,
}

/// The shortest and longest checkpoint intervals `checkpoint_ms` accepts (milliseconds).
pub const CHECKPOINT_MS_RANGE: std::ops::RangeInclusive<u64> = 10..=60_000;

#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "lowercase")]
enum StorageKind {
    Redb,
    Postgres,
}

/// Where the provider keeps its state.
#[derive(Clone, PartialEq, Eq)]
pub enum StorageConfig {
    /// A redb file (one machine).
    Redb {
        /// The file.
        path: PathBuf,
        /// Whether the event path's writes are journaled beside the file (`journal`,
        /// default `true`; `false` commits each group durably in redb, the layout before
        /// the journal, kept to measure one against the other: docs/performance.md).
        journal: bool,
        /// How often the journal is checkpointed into the file while writes come
        /// (`checkpoint_ms`, default 1,000): shorter bounds the stall a checkpoint causes
        /// at many rooms, at the cost of throughput and bytes written (docs/performance.md,
        /// "A shorter interval, measured").
        checkpoint: Duration,
    },
    /// A PostgreSQL database.
    Postgres {
        /// The connection string (a URL or `key=value` pairs); it may hold a password.
        url: String,
        /// The most pooled connections for reads and other writes (the writer has one
        /// more of its own).
        pool_size: u32,
    },
}

impl std::fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StorageConfig::Redb {
                path,
                journal,
                checkpoint,
            } => f
                .debug_struct("Redb")
                .field("path", path)
                .field("journal", journal)
                .field("checkpoint", checkpoint)
                .finish(),
            // Not the URL: it may hold a password.
            StorageConfig::Postgres { pool_size, .. } => f
                .debug_struct("Postgres")
                .field("pool_size", pool_size)
                .finish_non_exhaustive(),
        }
    }
}

impl StorageConfig {
    /// The `storage` value: a path (redb) or a `[storage]` table.
    fn parse(value: toml::Value, abs: impl Fn(PathBuf) -> PathBuf) -> Result<Self, String> {
        let raw: RawStorage = match value {
            toml::Value::String(path) => {
                return Ok(StorageConfig::Redb {
                    path: abs(PathBuf::from(path)),
                    journal: true,
                    checkpoint: crate::storage::CHECKPOINT_INTERVAL,
                });
            }
            table @ toml::Value::Table(_) => {
                table.try_into().map_err(|e| format!("storage: {e}"))?
            }
            _ => return Err("storage: a path or a [storage] table".into()),
        };
        match raw.kind.unwrap_or(StorageKind::Redb) {
            StorageKind::Redb => {
                if raw.url.is_some() || raw.pool_size.is_some() {
                    return Err(
                        "storage: url and pool_size are for kind = \"postgres\" only".into(),
                    );
                }
                let path = raw.path.ok_or("storage: kind = \"redb\" needs a path")?;
                let checkpoint = match raw.checkpoint_ms {
                    None => crate::storage::CHECKPOINT_INTERVAL,
                    Some(ms) if CHECKPOINT_MS_RANGE.contains(&ms) => Duration::from_millis(ms),
                    Some(ms) => {
                        return Err(format!(
                            "storage.checkpoint_ms: {ms} is not between {} and {}",
                            CHECKPOINT_MS_RANGE.start(),
                            CHECKPOINT_MS_RANGE.end()
                        ));
                    }
                };
                Ok(StorageConfig::Redb {
                    path: abs(path),
                    journal: raw.journal.unwrap_or(true),
                    checkpoint,
                })
            }
            StorageKind::Postgres => {
                if raw.path.is_some() || raw.journal.is_some() || raw.checkpoint_ms.is_some() {
                    return Err(
                        "storage: path, journal and checkpoint_ms are for kind = \"redb\" only"
                            .into(),
                    );
                }
                let url = raw.url.ok_or("storage: kind = \"postgres\" needs a url")?;
                check_url(&url).map_err(|e| format!("storage.url: {e}"))?;
                let pool_size = raw.pool_size.unwrap_or(DEFAULT_POOL_SIZE);
                if !(1..=MAX_POOL_SIZE).contains(&pool_size) {
                    return Err(format!(
                        "storage.pool_size: {pool_size} is not between 1 and {MAX_POOL_SIZE}"
                    ));
                }
                Ok(StorageConfig::Postgres { url, pool_size })
            }
        }
    }
}

/// A provider's configuration, validated, with absolute paths.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// This provider's server name.
    pub server_name: ServerName,
    /// Where the MIMI endpoints listen.
    pub listen: SocketAddr,
    /// Where the client API listens.
    pub api_listen: SocketAddr,
    /// PEM certificate chain.
    pub certificate: PathBuf,
    /// PEM private key.
    pub private_key: PathBuf,
    /// PEM trusted roots.
    pub ca: PathBuf,
    /// Where the provider keeps its state.
    pub storage: StorageConfig,
    /// The hub's MLS key file (shared by every instance of the provider).
    pub hub_key: PathBuf,
    /// Whether anyone may register.
    pub open_registration: bool,
    /// How long the hub waits for an invitee's server to answer a check-invite.
    pub check_invite_timeout: Duration,
    /// The outbox's first retry delay.
    pub outbox_retry_base: Duration,
    /// The outbox's longest retry delay.
    pub outbox_retry_cap: Duration,
    /// Most rooms kept in memory.
    pub room_cache_max: usize,
    /// Static addresses of peers.
    pub peers: BTreeMap<ServerName, SocketAddr>,
    /// The admin listener and the log format.
    pub admin: AdminConfig,
    /// The limits of each listener (`[limits]`).
    pub limits: ListenerLimits,
    /// The rate limits (`[rate_limits]`).
    pub rate_limits: RateLimits,
}

impl ProviderConfig {
    /// Load and validate `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base).map_err(|message| ConfigError::Parse {
            path: path.display().to_string(),
            message,
        })
    }

    /// Parse configuration text; relative paths are taken relative to `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Self, String> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        let server_name: ServerName = raw
            .server_name
            .parse()
            .map_err(|e| format!("server_name: {e}"))?;
        let abs = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        let storage = StorageConfig::parse(raw.storage, abs)?;
        let hub_key = match (raw.hub_key, &storage) {
            (Some(path), _) => abs(path),
            (None, StorageConfig::Redb { path, .. }) => path.with_extension("hub-key"),
            (None, StorageConfig::Postgres { .. }) => {
                return Err(
                    "hub_key: required with kind = \"postgres\" (every instance shares the key)"
                        .into(),
                );
            }
        };
        let peers = raw
            .peers
            .into_iter()
            .map(|(name, addr)| {
                name.parse::<ServerName>()
                    .map(|n| (n, addr))
                    .map_err(|e| format!("peers.{name}: {e}"))
            })
            .collect::<Result<_, _>>()?;
        let ms = |v: Option<u64>, default: Duration| v.map_or(default, Duration::from_millis);
        let outbox_retry_base = ms(raw.outbox_retry_base_ms, DEFAULT_OUTBOX_RETRY_BASE);
        let outbox_retry_cap = ms(raw.outbox_retry_cap_ms, DEFAULT_OUTBOX_RETRY_CAP);
        if outbox_retry_base.is_zero() || outbox_retry_cap < outbox_retry_base {
            return Err(
                "outbox_retry_base_ms must be positive and at most outbox_retry_cap_ms".into(),
            );
        }
        let admin = match raw.admin {
            None => AdminConfig::default(),
            Some(a) => AdminConfig {
                listen: a.listen,
                token_file: a.token_file.map(abs),
                log_format: a.log_format.unwrap_or_default(),
            },
        };
        Ok(ProviderConfig {
            admin,
            server_name,
            listen: raw.listen,
            api_listen: raw.api_listen,
            certificate: abs(raw.certificate),
            private_key: abs(raw.private_key),
            ca: abs(raw.ca),
            storage,
            hub_key,
            open_registration: raw.open_registration,
            check_invite_timeout: ms(raw.check_invite_timeout_ms, DEFAULT_CHECK_INVITE_TIMEOUT),
            outbox_retry_base,
            outbox_retry_cap,
            room_cache_max: raw.room_cache_max.unwrap_or(DEFAULT_ROOM_CACHE_MAX).max(1),
            peers,
            limits: ListenerLimits::parse(raw.limits.unwrap_or_default())?,
            rate_limits: raw.rate_limits,
        })
    }

    /// The provider's settings this configuration gives.
    pub fn settings(&self) -> Settings {
        Settings {
            open_registration: self.open_registration,
            check_invite_timeout: self.check_invite_timeout,
            outbox_retry: RetryPolicy {
                max_attempts: u32::MAX,
                base: self.outbox_retry_base,
                cap: self.outbox_retry_cap,
            },
            jitter: Arc::new(RandomJitter),
            room_cache_max: self.room_cache_max,
            rate_limits: self.rate_limits,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        server_name = "a.example"
        listen = "127.0.0.1:0"
        api_listen = "127.0.0.1:0"
        certificate = "a.crt"
        private_key = "a.key"
        ca = "ca.crt"
        storage = "a.redb"
    "#;

    #[test]
    fn limits_default_to_the_transport_constants_and_are_configurable() {
        let c = ProviderConfig::parse(MINIMAL, Path::new("/etc/mimi")).unwrap();
        assert_eq!(c.limits, ListenerLimits::default());
        assert_eq!(
            c.limits.connections.max_connections_per_ip,
            mimi_transport::accept::DEFAULT_MAX_CONNECTIONS_PER_IP
        );
        let text = format!(
            "{MINIMAL}\n[limits]\nmax_connections = 10\nmax_connections_per_ip = 2\n\
             handshake_timeout_ms = 1000\nheader_timeout_ms = 2000\nidle_timeout_ms = 3000\n\
             body_timeout_ms = 4000\nwrite_timeout_ms = 5000\nanonymous_timeout_ms = 600\n"
        );
        let c = ProviderConfig::parse(&text, Path::new("/etc/mimi")).unwrap();
        let l = c.limits;
        assert_eq!(l.connections.max_connections, 10);
        assert_eq!(l.connections.max_connections_per_ip, 2);
        assert_eq!(l.connections.handshake_timeout, Duration::from_secs(1));
        assert_eq!(l.connections.header_timeout, Duration::from_secs(2));
        assert_eq!(l.connections.idle_timeout, Duration::from_secs(3));
        assert_eq!(l.body_timeout, Duration::from_secs(4));
        assert_eq!(l.connections.write_timeout, Duration::from_secs(5));
        assert_eq!(l.connections.anonymous_timeout, Duration::from_millis(600));
        for bad in [
            "max_connections = 0",
            "idle_timeout_ms = 0",
            "unknown_limit = 3",
        ] {
            let text = format!("{MINIMAL}\n[limits]\n{bad}\n");
            assert!(
                ProviderConfig::parse(&text, Path::new("/")).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn parses_a_full_configuration_with_relative_paths() {
        let text = r#"
            server_name = "a.example"
            listen = "127.0.0.1:0"
            api_listen = "127.0.0.1:0"
            certificate = "a.crt"
            private_key = "a.key"
            ca = "ca.crt"
            storage = "a.redb"
            open_registration = true
            check_invite_timeout_ms = 1500
            outbox_retry_cap_ms = 5000
            [peers]
            "b.example" = "127.0.0.1:9443"
        "#;
        let c = ProviderConfig::parse(text, Path::new("/etc/mimi")).unwrap();
        assert_eq!(c.server_name.as_str(), "a.example");
        assert_eq!(c.admin, AdminConfig::default());
        assert_eq!(c.certificate, PathBuf::from("/etc/mimi/a.crt"));
        assert_eq!(c.hub_key, PathBuf::from("/etc/mimi/a.hub-key"));
        assert!(c.open_registration);
        assert_eq!(c.peers.len(), 1);
        let settings = c.settings();
        assert_eq!(settings.check_invite_timeout, Duration::from_millis(1500));
        assert_eq!(settings.outbox_retry.base, DEFAULT_OUTBOX_RETRY_BASE);
        assert_eq!(settings.outbox_retry.cap, Duration::from_secs(5));
    }

    #[test]
    fn the_admin_table() {
        let c = with_storage(
            "storage = \"a.redb\"\n[admin]\nlisten = \"127.0.0.1:8445\"\n\
             token_file = \"admin.token\"\nlog_format = \"json\"\n",
        )
        .unwrap();
        assert_eq!(c.admin.listen, Some("127.0.0.1:8445".parse().unwrap()));
        assert_eq!(
            c.admin.token_file,
            Some(PathBuf::from("/etc/mimi/admin.token"))
        );
        assert_eq!(c.admin.log_format, LogFormat::Json);
        assert!(
            with_storage("storage = \"a\"\n[admin]\nlog_format = \"xml\"\n")
                .unwrap_err()
                .contains("xml")
        );
    }

    #[test]
    fn refuses_bad_names_and_unknown_fields() {
        let base = "listen = \"127.0.0.1:0\"\napi_listen = \"127.0.0.1:0\"\ncertificate = \"a\"\nprivate_key = \"a\"\nca = \"a\"\nstorage = \"a\"\n";
        let bad_name = format!("server_name = \"not a name\"\n{base}");
        assert!(
            ProviderConfig::parse(&bad_name, Path::new("/"))
                .unwrap_err()
                .contains("server_name")
        );
        let unknown = format!("server_name = \"a.example\"\n{base}colour = 1\n");
        assert!(
            ProviderConfig::parse(&unknown, Path::new("/"))
                .unwrap_err()
                .contains("colour")
        );
    }

    /// The keys every configuration has, without `storage` and `hub_key`.
    const COMMON: &str = "server_name = \"a.example\"\nlisten = \"127.0.0.1:0\"\n\
        api_listen = \"127.0.0.1:0\"\ncertificate = \"a\"\nprivate_key = \"a\"\nca = \"a\"\n";

    fn with_storage(rest: &str) -> Result<ProviderConfig, String> {
        ProviderConfig::parse(&format!("{COMMON}{rest}"), Path::new("/etc/mimi"))
    }

    #[test]
    fn rate_limits_default_and_are_set_one_by_one() {
        let c = with_storage("storage = \"a.redb\"\n").unwrap();
        assert_eq!(c.settings().rate_limits, RateLimits::default());
        let c = with_storage(
            "storage = \"a.redb\"\n[rate_limits]\nregistrations = { burst = 3, refill_ms = 500 }\n",
        )
        .unwrap();
        let limits = c.settings().rate_limits;
        assert_eq!(limits.registrations.burst, 3);
        assert_eq!(limits.registrations.refill_ms, 500);
        assert_eq!(
            limits.claims_per_client,
            RateLimits::default().claims_per_client
        );
        let unknown = with_storage(
            "storage = \"a.redb\"\n[rate_limits]\nlogins = { burst = 3, refill_ms = 5 }\n",
        );
        assert!(unknown.unwrap_err().contains("logins"));
    }

    #[test]
    fn a_storage_table_chooses_redb_by_default() {
        let c = with_storage("[storage]\npath = \"state/a.redb\"\n").unwrap();
        assert_eq!(
            c.storage,
            StorageConfig::Redb {
                path: PathBuf::from("/etc/mimi/state/a.redb"),
                journal: true,
                checkpoint: Duration::from_secs(1),
            }
        );
        assert_eq!(c.hub_key, PathBuf::from("/etc/mimi/state/a.hub-key"));
        let c =
            with_storage("[storage]\nkind = \"redb\"\npath = \"/var/a.redb\"\njournal = false\ncheckpoint_ms = 250\n")
                .unwrap();
        assert_eq!(
            c.storage,
            StorageConfig::Redb {
                path: PathBuf::from("/var/a.redb"),
                journal: false,
                checkpoint: Duration::from_millis(250),
            }
        );
    }

    #[test]
    fn postgres_takes_a_url_a_pool_size_and_a_hub_key() {
        let c = with_storage(
            "hub_key = \"a.hub-key\"\n[storage]\nkind = \"postgres\"\n\
             url = \"postgresql://mimi:secret@db.internal:5432/mimi\"\n",
        )
        .unwrap();
        assert_eq!(
            c.storage,
            StorageConfig::Postgres {
                url: "postgresql://mimi:secret@db.internal:5432/mimi".into(),
                pool_size: DEFAULT_POOL_SIZE
            }
        );
        assert_eq!(c.hub_key, PathBuf::from("/etc/mimi/a.hub-key"));
        // The password stays out of debug output.
        assert!(!format!("{c:?}").contains("secret"));
        let c = with_storage(
            "hub_key = \"k\"\n[storage]\nkind = \"postgres\"\n\
             url = \"host=/var/run/postgresql dbname=mimi\"\npool_size = 4\n",
        )
        .unwrap();
        assert!(matches!(
            c.storage,
            StorageConfig::Postgres { pool_size: 4, .. }
        ));
    }

    #[test]
    fn refuses_storage_tables_that_do_not_fit() {
        let refused = |rest: &str, needle: &str| {
            let e = with_storage(rest).unwrap_err();
            assert!(e.contains(needle), "{rest:?}: {e}");
        };
        let pg = "[storage]\nkind = \"postgres\"\nurl = \"postgresql://h/db\"\n";
        refused(pg, "hub_key");
        let pg = format!("hub_key = \"k\"\n{pg}");
        refused(&format!("{pg}pool_size = 0\n"), "pool_size");
        refused(&format!("{pg}pool_size = 5000\n"), "pool_size");
        refused(&format!("{pg}path = \"a.redb\"\n"), "path");
        refused(&format!("{pg}colour = 1\n"), "colour");
        refused("hub_key = \"k\"\n[storage]\nkind = \"postgres\"\n", "url");
        refused(
            "hub_key = \"k\"\n[storage]\nkind = \"postgres\"\nurl = \"postgresql://h:notaport/db\"\n",
            "storage.url",
        );
        refused("[storage]\nkind = \"mysql\"\npath = \"a\"\n", "mysql");
        refused("[storage]\nkind = \"redb\"\n", "path");
        refused(
            "[storage]\npath = \"a.redb\"\nurl = \"postgresql://h/db\"\n",
            "url",
        );
        refused("storage = 5\n", "storage");
        refused(
            "[storage]\npath = \"a.redb\"\ncheckpoint_ms = 0\n",
            "checkpoint_ms",
        );
        refused(
            "[storage]\npath = \"a.redb\"\ncheckpoint_ms = 60001\n",
            "checkpoint_ms",
        );
        refused(&format!("{pg}checkpoint_ms = 500\n"), "checkpoint_ms");
    }
}
