//! A provider's files: `mimi-hub init` (a commented `provider.toml`, a private CA for local
//! testing or a shared one, the provider's certificate, an admin token), `mimi-hub
//! issue-cert` (further providers' certificates from the same CA) and `mimi-hub check`
//! (every problem of a configuration, one line each). The server itself refuses to start
//! on a certificate that does not name its `server_name` ([`certificate_names`]).
//!
//! `init` creates neither the database nor the hub key: the first start does, so a missing
//! database beside an existing hub key stays a sign of lost state.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use mimi_codec::ServerName;
use mimi_transport::pki::{CertificateAuthority, IssuedCertificate, PkiError};
use mimi_transport::tls::{
    Identity, certificates_from_pem_file, peer_names, server_config_without_client_auth,
};
use rand::RngCore;

use crate::config::{ProviderConfig, StorageConfig};

/// The CA's files in a CA folder.
pub const CA_CERT_FILE: &str = "ca.crt";
/// The CA's private key in a CA folder (keep it off production machines).
pub const CA_KEY_FILE: &str = "ca.key";
/// The configuration file `init` writes.
pub const CONFIG_FILE: &str = "provider.toml";
/// The admin token file `init` writes.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

/// What `mimi-hub init` makes.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// The folder the provider's files go to.
    pub dir: PathBuf,
    /// The provider's server name.
    pub server_name: ServerName,
    /// The federation listener.
    pub listen: SocketAddr,
    /// The client API listener.
    pub api_listen: SocketAddr,
    /// The admin listener.
    pub admin_listen: SocketAddr,
    /// The folder of the CA to use (created there if it has none); default `dir`.
    pub ca_dir: Option<PathBuf>,
    /// Static peer addresses for `[peers]`.
    pub peers: BTreeMap<ServerName, SocketAddr>,
    /// Whether anyone may register.
    pub open_registration: bool,
}

/// Why `init` or `issue-cert` failed.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// A file could not be written or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A file would be overwritten.
    #[error("{0} exists; init does not overwrite a provider's files")]
    Exists(String),
    /// Certificates could not be made.
    #[error(transparent)]
    Pki(#[from] PkiError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> InitError + '_ {
    move |source| InitError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Write a file readable by its owner only (keys, tokens).
fn write_private(path: &Path, text: &str) -> Result<(), InitError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io(path))?;
    file.write_all(text.as_bytes()).map_err(io(path))
}

fn write_public(path: &Path, text: &str) -> Result<(), InitError> {
    if path.exists() {
        return Err(InitError::Exists(path.display().to_string()));
    }
    std::fs::write(path, text).map_err(io(path))
}

/// The CA in `dir`, loaded, or created there if it has none. `true` if created.
pub fn load_or_create_ca(dir: &Path) -> Result<(CertificateAuthority, bool), InitError> {
    let cert = dir.join(CA_CERT_FILE);
    let key = dir.join(CA_KEY_FILE);
    if cert.exists() || key.exists() {
        let cert_pem = std::fs::read_to_string(&cert).map_err(io(&cert))?;
        let key_pem = std::fs::read_to_string(&key).map_err(io(&key))?;
        return Ok((CertificateAuthority::from_pem(&cert_pem, &key_pem)?, false));
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let ca = CertificateAuthority::generate("mimi-rs local CA")?;
    write_public(&cert, &ca.cert_pem())?;
    write_private(&key, &ca.key_pem())?;
    Ok((ca, true))
}

/// Issue a certificate for `server` from the CA in `ca_dir` (created if it has none) and
/// write `<server>.crt` and `<server>.key` into `out`; returns their paths.
pub fn issue_cert(
    ca_dir: &Path,
    server: &ServerName,
    out: &Path,
) -> Result<(PathBuf, PathBuf), InitError> {
    let (ca, _) = load_or_create_ca(ca_dir)?;
    std::fs::create_dir_all(out).map_err(io(out))?;
    write_issued(&ca.issue(server)?, out, server.as_str())
}

fn write_issued(
    issued: &IssuedCertificate,
    dir: &Path,
    stem: &str,
) -> Result<(PathBuf, PathBuf), InitError> {
    let cert = dir.join(format!("{stem}.crt"));
    let key = dir.join(format!("{stem}.key"));
    write_public(&cert, &issued.cert_pem)?;
    write_private(&key, &issued.key_pem)?;
    Ok((cert, key))
}

/// What `init` wrote.
#[derive(Debug, Clone)]
pub struct Initialized {
    /// The configuration file.
    pub config: PathBuf,
    /// The CA certificate (the trust anchor other providers need).
    pub ca_cert: PathBuf,
    /// Whether the CA was created now.
    pub ca_created: bool,
}

/// `mimi-hub init`: see the module documentation.
pub fn init(options: &InitOptions) -> Result<Initialized, InitError> {
    let dir = &options.dir;
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let config = dir.join(CONFIG_FILE);
    if config.exists() {
        return Err(InitError::Exists(config.display().to_string()));
    }
    let ca_dir = options.ca_dir.clone().unwrap_or_else(|| dir.clone());
    let (ca, ca_created) = load_or_create_ca(&ca_dir)?;
    let name = options.server_name.as_str();
    write_issued(&ca.issue(&options.server_name)?, dir, name)?;
    let mut token = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut token);
    write_private(&dir.join(ADMIN_TOKEN_FILE), &hex::encode(token))?;
    let ca_cert = std::path::absolute(ca_dir.join(CA_CERT_FILE)).map_err(io(&ca_dir))?;
    write_public(&config, &config_text(options, &ca_cert))?;
    Ok(Initialized {
        config,
        ca_cert,
        ca_created,
    })
}

/// The `provider.toml` of `init`, every key commented.
pub fn config_text(options: &InitOptions, ca_cert: &Path) -> String {
    let name = options.server_name.as_str();
    let peers = if options.peers.is_empty() {
        "# [peers]\n# \"b.example\" = \"127.0.0.1:9443\"\n".to_string()
    } else {
        let mut s = String::from("[peers]\n");
        for (peer, addr) in &options.peers {
            s.push_str(&format!("\"{peer}\" = \"{addr}\"\n"));
        }
        s
    };
    format!(
        r#"# provider.toml of {name}, written by `mimi-hub init`. Every key is described in
# docs/operator.md. Relative paths are relative to this file's folder.

# This provider's MIMI server name: the DNS name its certificate must name (a DNS
# subject alternative name, compared without regard to case).
server_name = "{name}"

# The MIMI endpoints (mutual TLS, other providers connect here). Port 0 picks a free one.
listen = "{listen}"

# The client API (server TLS, bearer tokens; this provider's own clients connect here).
api_listen = "{api_listen}"

# This provider's certificate chain (PEM, end entity first) and private key (PEM).
certificate = "{name}.crt"
private_key = "{name}.key"

# The roots trusted for other providers' certificates (PEM; here the local test CA).
ca = "{ca}"

# Where state is kept: a redb file (one machine) ...
storage = "{name}.redb"
# ... or a PostgreSQL database (then hub_key is required):
# [storage]
# kind = "postgres"
# url = "postgresql://mimi:secret@db.internal:5432/mimi"
# pool_size = 16

# The hub's MLS signing key; default: beside the redb file ("{name}.hub-key").
# hub_key = "{name}.hub-key"

# Whether anyone may register through the client API (default false: users are created
# with `mimi-hub admin create-user`).
open_registration = {open}

# How long the hub waits for an invitee's server to answer a check-invite (ms).
# check_invite_timeout_ms = 3000

# The outbox's retry backoff to unreachable peers: first and longest delay (ms).
# outbox_retry_base_ms = 200
# outbox_retry_cap_ms = 30000

# Most rooms kept in memory.
# room_cache_max = 262144

# Static addresses of peers (for names that do not resolve, e.g. on one machine);
# without this table peers are found by https://<name>/.well-known/mimi/domain and DNS.
{peers}
# The admin listener (plain HTTP: keep it on loopback): /healthz, /readyz, /metrics and
# the `mimi-hub admin` commands.
[admin]
listen = "{admin_listen}"
# The admin token (the `/admin/` commands are off without it).
token_file = "{token}"
# "text" (default) or "json" (one JSON object per line).
# log_format = "text"
"#,
        listen = options.listen,
        api_listen = options.api_listen,
        ca = ca_cert.display(),
        open = options.open_registration,
        admin_listen = options.admin_listen,
        token = ADMIN_TOKEN_FILE,
    )
}

/// Whether the certificate at `certificate` names `server` (any of its DNS subject
/// alternative names, without regard to case: RFC 6125); the reason if not.
///
/// Rule HUB-OPS-1 (docs/protocol-coverage.md).
pub fn certificate_names(certificate: &Path, server: &ServerName) -> Result<(), String> {
    let chain = certificates_from_pem_file(certificate).map_err(|e| format!("certificate: {e}"))?;
    let Some(leaf) = chain.first() else {
        return Err(format!(
            "certificate: {} holds no certificate",
            certificate.display()
        ));
    };
    let names =
        peer_names(leaf).map_err(|e| format!("certificate {}: {e}", certificate.display()))?;
    if names.authenticates(server) {
        Ok(())
    } else {
        Err(format!(
            "certificate {} names {names}, not server_name {server}",
            certificate.display()
        ))
    }
}

/// `mimi-hub check`: every problem of the configuration at `path`, one line each (empty:
/// none). Opens the storage (a redb file that does not exist yet is not created: its
/// folder must be writable).
pub fn check(path: &Path) -> Vec<String> {
    let config = match ProviderConfig::load(path) {
        Ok(c) => c,
        Err(e) => return vec![format!("configuration: {e}")],
    };
    let mut problems = Vec::new();
    if let Err(e) = certificate_names(&config.certificate, &config.server_name) {
        problems.push(e);
    }
    match Identity::from_pem_files(&config.certificate, &config.private_key) {
        Ok(identity) => {
            if let Err(e) = server_config_without_client_auth(identity) {
                problems.push(format!(
                    "key pair: {} does not go with {}: {e}",
                    config.private_key.display(),
                    config.certificate.display()
                ));
            }
        }
        Err(e) => problems.push(format!("key pair: {e}")),
    }
    if let Err(e) = certificates_from_pem_file(&config.ca) {
        problems.push(format!("ca: {e}"));
    }
    match &config.storage {
        StorageConfig::Redb { path, .. } if path.exists() => {
            if let Err(e) = crate::storage::RedbStorage::open(path) {
                problems.push(format!(
                    "storage {}: {e} (is the provider running? check it stopped)",
                    path.display()
                ));
            }
        }
        StorageConfig::Redb { path, .. } => {
            let folder = path.parent().unwrap_or(Path::new("."));
            if let Err(e) = writable(folder) {
                problems.push(format!(
                    "storage {}: not created yet and its folder is not writable: {e}",
                    path.display()
                ));
            }
        }
        StorageConfig::Postgres { url, pool_size } => {
            if let Err(e) = crate::storage::PostgresStorage::connect(url, *pool_size) {
                problems.push(format!("storage (PostgreSQL): {e}"));
            }
        }
    }
    if config.hub_key.exists()
        && let Err(e) =
            crate::identity::HubIdentity::load_or_create(&config.hub_key, &config.server_name)
    {
        problems.push(format!("hub_key {}: {e}", config.hub_key.display()));
    }
    if let Some(token) = &config.admin.token_file
        && let Err(e) = crate::admin::read_token(token)
    {
        problems.push(format!("admin: {e}"));
    }
    if config.admin.token_file.is_some() && config.admin.listen.is_none() {
        problems.push("admin: token_file is set but listen is not".into());
    }
    problems
}

/// Whether a file can be created in `folder`.
fn writable(folder: &Path) -> Result<(), std::io::Error> {
    let probe = folder.join(format!(".mimi-hub-check-{}", std::process::id()));
    std::fs::write(&probe, b"")?;
    std::fs::remove_file(&probe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_dns_name_of_the_certificate_names_the_server_without_regard_to_case() {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::generate("test CA").unwrap();
        let issued = ca
            .issue_for_dns_names(vec!["other.example".into(), "A.Example".into()])
            .unwrap();
        let (cert, _) = write_issued(&issued, dir.path(), "multi").unwrap();
        let a: ServerName = "a.example".parse().unwrap();
        assert_eq!(certificate_names(&cert, &a), Ok(()));
        let c: ServerName = "c.example".parse().unwrap();
        let refused = certificate_names(&cert, &c).unwrap_err();
        assert!(refused.contains("not server_name c.example"), "{refused}");
        let missing = certificate_names(&dir.path().join("none.crt"), &a).unwrap_err();
        assert!(missing.starts_with("certificate"), "{missing}");
    }
}
