//! `client.json`: who this client is and where its provider is (rule CL-STATE-1, with
//! `store.rs`; docs/protocol-coverage.md).

use std::path::{Path, PathBuf};

use mimi_codec::{ClientId, UserId};
use serde::{Deserialize, Serialize};

use crate::error::ClientError;
use crate::store::write_atomically;

/// The name of the configuration file in a client's directory.
pub const CONFIG_FILE: &str = "client.json";

/// A registered client's configuration and inbox position, persisted as `client.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientConfig {
    /// The provider's client API, `https://host[:port]`.
    pub api: String,
    /// Connect to this `host:port` instead of the URL's (the URL's host is still the TLS
    /// server name): for local providers without DNS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect: Option<String>,
    /// The PEM file of the CA that signs the provider's certificate.
    pub ca: PathBuf,
    /// The user.
    #[serde(with = "crate::store::as_string")]
    pub user_id: UserId,
    /// This client (device).
    #[serde(with = "crate::store::as_string")]
    pub client_id: ClientId,
    /// The bearer token for the provider API.
    pub token: String,
    /// The last inbox item processed (0: none).
    pub cursor: u64,
}

impl ClientConfig {
    /// The path of `client.json` in `dir`.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(CONFIG_FILE)
    }

    /// Load `client.json` from `dir`; [`ClientError::NotRegistered`] when absent.
    pub fn load(dir: &Path) -> Result<Self, ClientError> {
        let path = Self::path(dir);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ClientError::NotRegistered(dir.to_owned()));
            }
            Err(e) => return Err(ClientError::io(path)(e)),
        };
        serde_json::from_slice(&bytes).map_err(|source| ClientError::StateFile { path, source })
    }

    /// Write `client.json` into `dir` (atomically: a temporary file, then a rename).
    pub fn save(&self, dir: &Path) -> Result<(), ClientError> {
        let path = Self::path(dir);
        let json = serde_json::to_vec_pretty(self).map_err(|source| ClientError::StateFile {
            path: path.clone(),
            source,
        })?;
        write_atomically(&path, &json)
    }
}
