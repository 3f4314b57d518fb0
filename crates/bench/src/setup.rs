//! What a benchmark sets up around the servers it measures: a private PKI with one
//! certificate per server name, PEM files for servers run as separate processes, and a
//! scratch directory that is removed afterwards.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use mimi_codec::ServerName;
use mimi_transport::pki::{CertificateAuthority, IssuedCertificate, PkiError};
use mimi_transport::tls::{self, Identity, TlsConfigError};
use rustls::pki_types::CertificateDer;

/// File name (stem) of the CA certificate in a server's directory.
pub const CA_STEM: &str = "ca";

/// Why the benchmark's setup failed.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A certificate could not be created or written.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// TLS material could not be loaded or a configuration built.
    #[error(transparent)]
    Tls(#[from] TlsConfigError),
    /// The scratch directory could not be created.
    #[error("cannot create {path}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// A CA, and certificates it issues for the benchmark's servers and load generator.
#[derive(Debug)]
pub struct BenchPki {
    ca: CertificateAuthority,
    roots: Vec<CertificateDer<'static>>,
}

impl BenchPki {
    /// A new CA.
    pub fn generate() -> Result<Self, SetupError> {
        let ca = CertificateAuthority::generate("mimi-bench CA")?;
        let roots = ca.roots()?;
        Ok(BenchPki { ca, roots })
    }

    /// The trust anchors (the CA certificate).
    pub fn roots(&self) -> &[CertificateDer<'static>] {
        &self.roots
    }

    /// A certificate for `name`, for server and client authentication.
    pub fn issue(&self, name: &ServerName) -> Result<IssuedCertificate, SetupError> {
        Ok(self.ca.issue(name)?)
    }

    /// A client TLS configuration presenting a fresh certificate for `name`.
    pub fn client_config(
        &self,
        name: &ServerName,
    ) -> Result<Arc<rustls::ClientConfig>, SetupError> {
        let identity = self.issue(name)?.identity()?;
        Ok(tls::client_config(Some(identity), &self.roots)?)
    }

    /// A server TLS configuration for `name` that verifies client certificates.
    pub fn server_config(
        &self,
        name: &ServerName,
    ) -> Result<Arc<rustls::ServerConfig>, SetupError> {
        let identity = self.issue(name)?.identity()?;
        Ok(tls::server_config(identity, &self.roots)?)
    }

    /// Write what a server process for `name` loads with [`load_server_config`]: the CA
    /// certificate and the server's certificate and key.
    pub fn write_server_files(&self, dir: &Path, name: &ServerName) -> Result<(), SetupError> {
        self.ca.write_pem_files(dir, CA_STEM)?;
        self.issue(name)?.write_pem_files(dir, name.as_str())?;
        Ok(())
    }
}

/// The server TLS configuration for `name` from the files [`BenchPki::write_server_files`]
/// wrote into `dir`.
pub fn load_server_config(
    dir: &Path,
    name: &ServerName,
) -> Result<Arc<rustls::ServerConfig>, SetupError> {
    let identity = Identity::from_pem_files(
        &dir.join(format!("{name}.crt")),
        &dir.join(format!("{name}.key")),
    )?;
    let roots = tls::certificates_from_pem_file(&dir.join(format!("{CA_STEM}.crt")))?;
    Ok(tls::server_config(identity, &roots)?)
}

/// A directory under the system's temporary directory, removed (with its contents) when
/// dropped.
#[derive(Debug)]
pub struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    /// Create `mimi-bench-<pid>-<n>-<label>`.
    pub fn new(label: &str) -> Result<Self, SetupError> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("mimi-bench-{}-{n}-{label}", std::process::id()));
        std::fs::create_dir_all(&path).map_err(|source| SetupError::Dir {
            path: path.clone(),
            source,
        })?;
        Ok(ScratchDir { path })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        // Best effort: a leftover directory in the temporary directory is harmless.
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
