//! The hub's franking keys and the frank of an accepted -06 application message
//! (draft-ietf-mimi-protocol-06 §5.4.1.2): a per-provider HMAC key (`hub_key`) and an Ed25519
//! franking signature key, generated once and kept in a file beside the hub key
//! ([`franking_key_path`]: `<hub_key>.franking`, owner-only), so that a frank made before a
//! restart still verifies after it. The crypto is `mimi_mls_binding::franking`'s.

use std::path::{Path, PathBuf};

use mimi_codec::ServerName;
use mimi_codec::v06::{
    CipherSuite, Frank, FrankingAgentData, IdentifierUri, MlsMessage, ServerFrankingContext,
};
use mimi_mls_binding::franking::{self, FrankedMessage, FrankingError, FrankingTag, HUB_KEY_LEN};
use openmls::prelude::SignatureScheme;
use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls_basic_credential::SignatureKeyPair;

use crate::identity::IdentityError;

/// The first line of a franking key file; then the hub key in hex, then the signature key
/// pair's TLS encoding (scheme, private and public key) in hex.
const HEADER: &str = "MIMI-FRANKING-KEY v1";

/// The franking key file of the provider whose hub key is `hub_key`: `<hub_key>.franking`.
pub fn franking_key_path(hub_key: &Path) -> PathBuf {
    let mut name = hub_key.as_os_str().to_owned();
    name.push(".franking");
    PathBuf::from(name)
}

/// The hub's franking keys: `hub_key` (HMAC-SHA256) and the franking signature key (Ed25519,
/// so it franks rooms of the Ed25519 cipher suites).
pub struct HubFranking {
    hub_key: [u8; HUB_KEY_LEN],
    signer: SignatureKeyPair,
}

impl std::fmt::Debug for HubFranking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubFranking")
            .field("signature_key", &hex::encode(self.signer.public()))
            .finish_non_exhaustive()
    }
}

impl HubFranking {
    /// Fresh keys (never stored; for tests and benchmarks).
    pub fn generate() -> Result<Self, IdentityError> {
        let signer = SignatureKeyPair::new(SignatureScheme::ED25519)
            .map_err(|e| IdentityError::Generate(format!("{e:?}")))?;
        let mut hub_key = [0u8; HUB_KEY_LEN];
        rand::RngCore::try_fill_bytes(&mut rand::rngs::OsRng, &mut hub_key)
            .map_err(|e| IdentityError::Generate(e.to_string()))?;
        Ok(HubFranking { hub_key, signer })
    }

    /// Load the keys from `path`, or generate and store them (owner-only) if the file does
    /// not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, IdentityError> {
        let shown = || path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => parse(&text).ok_or_else(|| IdentityError::Malformed(shown())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let keys = Self::generate()?;
                let pair = keys
                    .signer
                    .tls_serialize_detached()
                    .map_err(|e| IdentityError::Generate(e.to_string()))?;
                let text = format!(
                    "{HEADER}\n{}\n{}\n",
                    hex::encode(keys.hub_key),
                    hex::encode(pair)
                );
                crate::identity::write_private(path, &text).map_err(|source| {
                    IdentityError::Io {
                        path: shown(),
                        source,
                    }
                })?;
                Ok(keys)
            }
            Err(source) => Err(IdentityError::Io {
                path: shown(),
                source,
            }),
        }
    }

    /// The franking signature public key.
    pub fn signature_key(&self) -> &[u8] {
        self.signer.public()
    }

    /// The `franking_agent` GroupContext component a room creator puts in a room `hub` is
    /// the hub of (the key, and a BasicCredential naming `mimi://<hub>`).
    pub fn agent(&self, hub: &ServerName) -> Result<FrankingAgentData, FrankingError> {
        franking::franking_agent(hub, self.signer.public())
    }

    /// Frank an accepted application message: `server_frank = HMAC_SHA256(hub_key,
    /// franking_tag || context)` and its `franking_integrity_signature` under `suite`, the
    /// room's cipher suite (an Ed25519 suite: `0x0001` or `0x0003`).
    ///
    /// Rule V06-FRANK-3 (docs/protocol-coverage.md).
    pub fn frank(
        &self,
        suite: CipherSuite,
        franking_tag: &FrankingTag,
        context: &ServerFrankingContext,
    ) -> Result<Frank, FrankingError> {
        franking::make_frank(&self.hub_key, &self.signer, suite, franking_tag, context)
    }

    /// `submitMessage`'s franking in one call: the `franking_tag` of `app_message`'s
    /// `frank_aad` (none: the message is not franked, `Ok(None)`), franked in the context of
    /// `sending_uri`, `room_uri` and `accepted_timestamp`. A malformed AAD is an error.
    pub fn frank_message(
        &self,
        suite: CipherSuite,
        app_message: &MlsMessage,
        sending_uri: &IdentifierUri,
        room_uri: &IdentifierUri,
        accepted_timestamp: u64,
    ) -> Result<Option<Frank>, FrankingError> {
        let Some(tag) = franking::franking_tag_of_message(app_message.as_bytes())? else {
            return Ok(None);
        };
        let context = ServerFrankingContext {
            sender_uri: sending_uri.clone(),
            room_uri: room_uri.clone(),
            accepted_timestamp,
        };
        self.frank(suite, &tag, &context).map(Some)
    }

    /// Check a reported message's frank: this hub's `server_frank` recomputed with its
    /// `hub_key`, its integrity signature verified with its franking key.
    pub fn verify_reported(
        &self,
        message: &FrankedMessage<'_>,
    ) -> Result<ServerFrankingContext, FrankingError> {
        franking::verify_reported(message, &self.hub_key, self.signer.public())
    }
}

fn parse(text: &str) -> Option<HubFranking> {
    let mut lines = text.lines();
    if lines.next()? != HEADER {
        return None;
    }
    let hub_key = hex::decode(lines.next()?.trim()).ok()?.try_into().ok()?;
    let pair = hex::decode(lines.next()?.trim()).ok()?;
    let signer = SignatureKeyPair::tls_deserialize_exact(pair.as_slice()).ok()?;
    (signer.signature_scheme() == SignatureScheme::ED25519)
        .then_some(HubFranking { hub_key, signer })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keys_survive_a_reload_and_a_bad_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = franking_key_path(&dir.path().join("a.hub-key"));
        assert_eq!(path.file_name().unwrap(), "a.hub-key.franking");
        let first = HubFranking::load_or_create(&path).unwrap();
        let again = HubFranking::load_or_create(&path).unwrap();
        assert_eq!(first.hub_key, again.hub_key);
        assert_eq!(first.signature_key(), again.signature_key());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "MIMI-FRANKING-KEY v1\nzz\n").unwrap();
        assert!(matches!(
            HubFranking::load_or_create(&path),
            Err(IdentityError::Malformed(_))
        ));
    }
}
