//! TLS material and configuration: PEM loading, rustls server and client configs with the
//! `ring` provider, and the mapping from a peer's certificate to its server name.
//!
//! The `ring` provider is passed explicitly to every builder; this crate never installs or
//! relies on a process-wide default provider.

use std::path::Path;
use std::sync::Arc;

use mimi_codec::{IdentifierError, ServerName};
use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

/// The ALPN protocol both sides offer: the endpoints are HTTP/1.1.
pub const ALPN_HTTP11: &[u8] = b"http/1.1";

/// Why TLS material could not be loaded or a TLS configuration built.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    /// A PEM file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The PEM text could not be parsed.
    #[error("invalid PEM: {0}")]
    Pem(#[source] std::io::Error),
    /// The PEM text holds no certificate.
    #[error("no certificate found in PEM")]
    NoCertificate,
    /// The PEM text holds no private key.
    #[error("no private key found in PEM")]
    NoPrivateKey,
    /// A root certificate was refused by the trust store.
    #[error("invalid trust anchor: {0}")]
    TrustAnchor(#[source] rustls::Error),
    /// No trust anchor was given.
    #[error("no trust anchor given")]
    NoTrustAnchor,
    /// rustls refused the configuration (for example a key that does not match the
    /// certificate).
    #[error("rustls refused the configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client certificate verifier could not be built.
    #[error("cannot build the client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// A certificate chain (end entity first) with its private key: who we are on the network,
/// as a TLS server and as a TLS client.
#[derive(Debug)]
pub struct Identity {
    /// The certificate chain, end-entity certificate first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The private key of the end-entity certificate.
    pub key: PrivateKeyDer<'static>,
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Identity {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl Identity {
    /// Parse a certificate chain and a private key from PEM text.
    pub fn from_pem(chain_pem: &[u8], key_pem: &[u8]) -> Result<Self, TlsConfigError> {
        Ok(Identity {
            chain: certificates_from_pem(chain_pem)?,
            key: private_key_from_pem(key_pem)?,
        })
    }

    /// Read a certificate chain and a private key from PEM files.
    pub fn from_pem_files(chain: &Path, key: &Path) -> Result<Self, TlsConfigError> {
        Identity::from_pem(&read_file(chain)?, &read_file(key)?)
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, TlsConfigError> {
    std::fs::read(path).map_err(|source| TlsConfigError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// Parse every certificate in PEM text (at least one).
pub fn certificates_from_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let mut reader = pem;
    let certs = rustls_pemfile::certs(&mut reader)
        .collect::<Result<Vec<_>, _>>()
        .map_err(TlsConfigError::Pem)?;
    if certs.is_empty() {
        return Err(TlsConfigError::NoCertificate);
    }
    Ok(certs)
}

/// Read every certificate of a PEM file (a CA bundle, or a chain).
pub fn certificates_from_pem_file(
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    certificates_from_pem(&read_file(path)?)
}

/// Parse the first private key (PKCS#8, PKCS#1 or SEC1) in PEM text.
pub fn private_key_from_pem(pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsConfigError> {
    let mut reader = pem;
    rustls_pemfile::private_key(&mut reader)
        .map_err(TlsConfigError::Pem)?
        .ok_or(TlsConfigError::NoPrivateKey)
}

/// The crypto provider of this crate: rustls's `ring` provider, always passed explicitly.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn root_store(roots: &[CertificateDer<'static>]) -> Result<RootCertStore, TlsConfigError> {
    if roots.is_empty() {
        return Err(TlsConfigError::NoTrustAnchor);
    }
    let mut store = RootCertStore::empty();
    for root in roots {
        store
            .add(root.clone())
            .map_err(TlsConfigError::TrustAnchor)?;
    }
    Ok(store)
}

/// A rustls server configuration for the MIMI endpoints.
///
/// Client certificates are verified against `client_roots` during the handshake; a
/// certificate from any other CA fails the handshake. A client may also present no
/// certificate at all (so that `GET /.well-known/mimi/domain` works without one); the
/// server then refuses every other endpoint on that connection with `403` (see
/// `docs/spec-decisions.md`).
///
/// Rules TR-MTLS-1, TR-MTLS-2, HUB-TLS-1 (docs/protocol-coverage.md).
pub fn server_config(
    identity: Identity,
    client_roots: &[CertificateDer<'static>],
) -> Result<Arc<rustls::ServerConfig>, TlsConfigError> {
    let provider = crypto_provider();
    let verifier = WebPkiClientVerifier::builder_with_provider(
        Arc::new(root_store(client_roots)?),
        provider.clone(),
    )
    .allow_unauthenticated()
    .build()?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(identity.chain, identity.key)?;
    config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
    Ok(Arc::new(config))
}

/// A rustls server configuration that requests no client certificate (server
/// authentication only), for a service whose clients authenticate otherwise (a provider's
/// client API, with bearer tokens).
///
/// Rule HUB-API-2 (docs/protocol-coverage.md).
pub fn server_config_without_client_auth(
    identity: Identity,
) -> Result<Arc<rustls::ServerConfig>, TlsConfigError> {
    let mut config = rustls::ServerConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(identity.chain, identity.key)?;
    config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
    Ok(Arc::new(config))
}

/// A rustls client configuration: servers are verified against `roots` (and their name
/// against the target's server name); `identity`, when given, is presented as the client
/// certificate.
///
/// Rule TR-MTLS-3 (docs/protocol-coverage.md).
pub fn client_config(
    identity: Option<Identity>,
    roots: &[CertificateDer<'static>],
) -> Result<Arc<rustls::ClientConfig>, TlsConfigError> {
    let builder = rustls::ClientConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(root_store(roots)?);
    let mut config = match identity {
        Some(identity) => builder.with_client_auth_cert(identity.chain, identity.key)?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
    Ok(Arc::new(config))
}

/// Why a verified peer certificate names no server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerNameError {
    /// The certificate could not be parsed as X.509.
    #[error("the certificate is not valid X.509")]
    BadCertificate,
    /// The certificate has no DNS subject alternative name.
    #[error("the certificate has no DNS subject alternative name")]
    NoDnsName,
    /// None of the certificate's DNS names is a server name (wildcards authenticate none;
    /// the error is the first name's).
    #[error("none of the certificate's DNS names is a server name: {0}")]
    InvalidServerName(#[from] IdentifierError),
}

/// The server names a peer's (already verified) end-entity certificate authenticates:
/// each of its DNS subject alternative names that is a server name, in canonical
/// (lowercase) form, in the certificate's order without repeats (rule TR-PEER-1, RFC 6125
/// §6.4 matching of DNS-ID reference identifiers). Never empty.
///
/// Wildcard names (`*.example.com`) authenticate no server: a MIMI server name identifies
/// one provider, and a wildcard would let one certificate speak for every provider under a
/// domain (RFC 9525 §6.3 leaves wildcards to the application protocol;
/// `docs/spec-decisions.md`). Names are compared without case (RFC 4343): certificate
/// names are lowercased into [`ServerName`]'s canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerNames {
    /// The certificate's first server name.
    first: ServerName,
    /// All of them, `first` included.
    names: Vec<ServerName>,
}

impl PeerNames {
    /// The names, in the certificate's order.
    pub fn names(&self) -> &[ServerName] {
        &self.names
    }

    /// Whether the certificate authenticates `server`.
    pub fn authenticates(&self, server: &ServerName) -> bool {
        self.names.contains(server)
    }

    /// The first of `claims` that the certificate authenticates, or else the certificate's
    /// first name: the name a request that claims to come from one of `claims` is
    /// authenticated as.
    pub fn speaking_for(&self, claims: &[ServerName]) -> &ServerName {
        claims
            .iter()
            .find_map(|c| self.names.iter().find(|n| *n == c))
            .unwrap_or(&self.first)
    }
}

impl std::fmt::Display for PeerNames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, name) in self.names.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(name.as_str())?;
        }
        Ok(())
    }
}

/// The server names a peer's end-entity certificate authenticates ([`PeerNames`]).
pub fn peer_names(cert: &CertificateDer<'_>) -> Result<PeerNames, PeerNameError> {
    use x509_parser::extensions::GeneralName;
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref())
        .map_err(|_| PeerNameError::BadCertificate)?;
    let san = parsed
        .subject_alternative_name()
        .map_err(|_| PeerNameError::BadCertificate)?
        .ok_or(PeerNameError::NoDnsName)?;
    let mut names: Vec<ServerName> = Vec::new();
    let mut first_error = None;
    for name in &san.value.general_names {
        let GeneralName::DNSName(dns) = name else {
            continue;
        };
        match ServerName::from_dns_name(dns) {
            Ok(server) if !names.contains(&server) => names.push(server),
            Ok(_) => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(first) = names.first().cloned() {
        return Ok(PeerNames { first, names });
    }
    Err(match first_error {
        Some(e) => PeerNameError::InvalidServerName(e),
        None => PeerNameError::NoDnsName,
    })
}
