//! A small private PKI for tests, the demo and local providers (feature `pki`): a CA, and
//! certificates for server names usable for both server and client authentication, with
//! PEM output. Production deployments load their own PEM files with [`crate::tls`].

use std::path::{Path, PathBuf};

use mimi_codec::ServerName;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::CertificateDer;

use crate::tls::{Identity, TlsConfigError, certificates_from_pem};

/// Why a certificate could not be created or written.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// rcgen failed.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// A PEM file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The generated PEM did not load back.
    #[error(transparent)]
    Load(#[from] TlsConfigError),
}

/// A certificate authority that issues certificates for server names.
pub struct CertificateAuthority {
    certificate: rcgen::Certificate,
    key: KeyPair,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .finish_non_exhaustive()
    }
}

/// A certificate with its private key, in PEM.
#[derive(Debug, Clone)]
pub struct IssuedCertificate {
    /// The certificate (PEM).
    pub cert_pem: String,
    /// The private key (PKCS#8 PEM).
    pub key_pem: String,
}

impl IssuedCertificate {
    /// The certificate and key as a TLS [`Identity`].
    pub fn identity(&self) -> Result<Identity, TlsConfigError> {
        Identity::from_pem(self.cert_pem.as_bytes(), self.key_pem.as_bytes())
    }

    /// Write `{stem}.crt` and `{stem}.key` into `dir`; returns their paths.
    pub fn write_pem_files(&self, dir: &Path, stem: &str) -> Result<(PathBuf, PathBuf), PkiError> {
        let cert = dir.join(format!("{stem}.crt"));
        let key = dir.join(format!("{stem}.key"));
        write(&cert, &self.cert_pem)?;
        write(&key, &self.key_pem)?;
        Ok((cert, key))
    }
}

fn write(path: &Path, text: &str) -> Result<(), PkiError> {
    std::fs::write(path, text).map_err(|source| PkiError::Write {
        path: path.to_owned(),
        source,
    })
}

impl CertificateAuthority {
    /// A new self-signed CA with this common name.
    pub fn generate(common_name: &str) -> Result<Self, PkiError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate()?;
        let certificate = params.self_signed(&key)?;
        Ok(CertificateAuthority { certificate, key })
    }

    /// A CA loaded from its certificate and key PEM (to issue more certificates later).
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, PkiError> {
        let key = KeyPair::from_pem(key_pem)?;
        let params = CertificateParams::from_ca_cert_pem(cert_pem)?;
        let certificate = params.self_signed(&key)?;
        Ok(CertificateAuthority { certificate, key })
    }

    /// The CA certificate (PEM), the trust anchor to give peers.
    pub fn cert_pem(&self) -> String {
        self.certificate.pem()
    }

    /// The CA's private key (PKCS#8 PEM).
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// The CA certificate as a trust anchor list.
    pub fn roots(&self) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
        certificates_from_pem(self.cert_pem().as_bytes())
    }

    /// Write `{stem}.crt` and `{stem}.key` for the CA into `dir`.
    pub fn write_pem_files(&self, dir: &Path, stem: &str) -> Result<(PathBuf, PathBuf), PkiError> {
        IssuedCertificate {
            cert_pem: self.cert_pem(),
            key_pem: self.key_pem(),
        }
        .write_pem_files(dir, stem)
    }

    /// A certificate for `server`: its one DNS subject alternative name is the server name,
    /// usable for TLS server and client authentication.
    pub fn issue(&self, server: &ServerName) -> Result<IssuedCertificate, PkiError> {
        self.issue_for_dns_names(vec![server.to_string()])
    }

    /// A certificate with these DNS subject alternative names (any number; for tests of the
    /// exactly-one-name rule).
    pub fn issue_for_dns_names(&self, names: Vec<String>) -> Result<IssuedCertificate, PkiError> {
        let mut params = CertificateParams::new(names.clone())?;
        let mut dn = DistinguishedName::new();
        if let Some(first) = names.first() {
            dn.push(DnType::CommonName, first.as_str());
        }
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate()?;
        let certificate = params.signed_by(&key, &self.certificate, &self.key)?;
        Ok(IssuedCertificate {
            cert_pem: certificate.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}
