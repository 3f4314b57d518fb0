//! The provider's MLS identity as a hub: the Ed25519 signature key pair it signs its own
//! proposals with (the hub-generated removes) and the `ExternalSender` every room it hubs
//! lists first in `external_senders`. Kept in a file beside the database so it survives
//! restarts: losing it would lock the hub out of every room's external proposals. Beside it,
//! the -06 franking keys ([`crate::v06::franking::HubFranking`], `<hub_key>.franking`).

use std::path::Path;
use std::sync::Arc;

use mimi_codec::ServerName;
use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::{ExternalSender, SignatureScheme};
use openmls_basic_credential::SignatureKeyPair;

use crate::v06::franking::{HubFranking, franking_key_path};

/// The file a key pair is stored in: `MIMI-HUB-KEY v1`, then the key pair's TLS encoding
/// (scheme, private and public key) in hex.
const HEADER: &str = "MIMI-HUB-KEY v1";

/// Why the identity could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Reading or writing the key file failed.
    #[error("hub key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The key file is not in the expected format.
    #[error("hub key file {0} is malformed")]
    Malformed(String),
    /// Key generation failed.
    #[error("cannot generate the hub key: {0}")]
    Generate(String),
}

/// The hub's MLS signing identity.
pub struct HubIdentity {
    signer: SignatureKeyPair,
    external_sender: ExternalSender,
    franking: Arc<HubFranking>,
}

impl std::fmt::Debug for HubIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubIdentity")
            .field("public", &hex::encode(self.signer.public()))
            .finish()
    }
}

impl HubIdentity {
    /// Load the key pair from `path`, or create it (with owner-only permissions) if the file
    /// does not exist; the franking keys likewise from `<path>.franking`.
    pub fn load_or_create(path: &Path, server: &ServerName) -> Result<Self, IdentityError> {
        let io = |source| IdentityError::Io {
            path: path.display().to_string(),
            source,
        };
        let signer = match std::fs::read_to_string(path) {
            Ok(text) => {
                parse(&text).ok_or_else(|| IdentityError::Malformed(path.display().to_string()))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let signer = SignatureKeyPair::new(SignatureScheme::ED25519)
                    .map_err(|e| IdentityError::Generate(format!("{e:?}")))?;
                let encoded = signer
                    .tls_serialize_detached()
                    .map_err(|e| IdentityError::Generate(e.to_string()))?;
                let text = format!("{HEADER}\n{}\n", hex::encode(encoded));
                write_private(path, &text).map_err(io)?;
                signer
            }
            Err(e) => return Err(io(e)),
        };
        let franking = HubFranking::load_or_create(&franking_key_path(path))?;
        Ok(Self::from_signer(signer, server, franking))
    }

    /// A fresh identity that is never stored (for tests and benchmarks).
    pub fn ephemeral(server: &ServerName) -> Result<Self, IdentityError> {
        let signer = SignatureKeyPair::new(SignatureScheme::ED25519)
            .map_err(|e| IdentityError::Generate(format!("{e:?}")))?;
        Ok(Self::from_signer(signer, server, HubFranking::generate()?))
    }

    fn from_signer(signer: SignatureKeyPair, server: &ServerName, franking: HubFranking) -> Self {
        let external_sender = mimi_mls_binding::external_sender(server, signer.public());
        HubIdentity {
            signer,
            external_sender,
            franking: Arc::new(franking),
        }
    }

    /// The -06 franking keys.
    pub fn franking(&self) -> &Arc<HubFranking> {
        &self.franking
    }

    /// The signer for the hub's own proposals.
    pub fn signer(&self) -> &SignatureKeyPair {
        &self.signer
    }

    /// The hub's entry in `external_senders`.
    pub fn external_sender(&self) -> &ExternalSender {
        &self.external_sender
    }

    /// The `ExternalSender`, TLS-encoded (as the client API hands it to room creators).
    pub fn external_sender_bytes(&self) -> Vec<u8> {
        // Invariant: an ExternalSender of a key and a short credential always encodes.
        self.external_sender
            .tls_serialize_detached()
            .unwrap_or_default()
    }
}

fn parse(text: &str) -> Option<SignatureKeyPair> {
    let mut lines = text.lines();
    if lines.next()? != HEADER {
        return None;
    }
    let bytes = hex::decode(lines.next()?.trim()).ok()?;
    SignatureKeyPair::tls_deserialize_exact(bytes.as_slice()).ok()
}

/// Write a new file only its owner may read (refused if it exists).
pub(crate) fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}
