//! Key-package validation at the provider that stores and hands them out (DS-KP-1).
//!
//! The claim semantics themselves — a one-time key package is handed out once, a last-resort
//! one may be reused, one per client — are a property of the provider's key-package store
//! (`mimi-hub`'s storage), which keeps what this module validated.

use mimi_codec::ClientId;
use openmls::prelude::tls_codec::Deserialize as _;
use openmls::prelude::*;
use openmls_rust_crypto::RustCrypto;

use crate::error::{DsError, DsRule};
use crate::mls::{client_id_from_credential, parse_mls_message};

/// A key package that passed validation, with what the store needs to know of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedKeyPackage {
    /// The client it belongs to (from its credential).
    pub client: ClientId,
    /// Its MLS cipher suite.
    pub cipher_suite: u16,
    /// Whether it is a last-resort key package (may be handed out more than once).
    pub last_resort: bool,
    /// Its KeyPackageRef (unique per key package).
    pub hash_ref: Vec<u8>,
    /// The key package as MLSMessage bytes, as received.
    pub bytes: Vec<u8>,
}

/// Validate a key package that `publisher` publishes (DS-KP-1): it is an MLSMessage
/// carrying a valid KeyPackage (signature, lifetime, version), its credential names
/// `publisher`, and its leaf advertises the MIMI extension and proposal types, without
/// which it could not join a MIMI room.
pub fn validate_key_package(
    bytes: &[u8],
    publisher: &ClientId,
) -> Result<ValidatedKeyPackage, DsError> {
    let refuse = |d: String| DsError::refused(DsRule::Kp1, d);
    let kp_in = match parse_mls_message(bytes) {
        Ok(MlsMessageBodyIn::KeyPackage(kp)) => kp,
        Ok(_) => return Err(refuse("expected a KeyPackage MLSMessage".into())),
        Err(_) => KeyPackageIn::tls_deserialize_exact(bytes)
            .map_err(|e| refuse(format!("not a KeyPackage: {e}")))?,
    };
    let crypto = RustCrypto::default();
    let kp = kp_in
        .validate(&crypto, ProtocolVersion::Mls10)
        .map_err(|e| refuse(format!("invalid KeyPackage: {e}")))?;
    let client = client_id_from_credential(kp.leaf_node().credential())
        .map_err(|e| refuse(format!("the key package names no client: {e}")))?;
    if &client != publisher {
        return Err(refuse(format!(
            "the key package belongs to {client}, not to the publishing client {publisher}"
        )));
    }
    if !mimi_mls_binding::supports_mimi(kp.leaf_node().capabilities()) {
        return Err(refuse(
            "the key package does not advertise the MIMI RoomState extension and UserEvent proposal"
                .into(),
        ));
    }
    let hash_ref = kp
        .hash_ref(&crypto)
        .map_err(|e| refuse(format!("hash: {e}")))?
        .as_slice()
        .to_vec();
    Ok(ValidatedKeyPackage {
        client,
        cipher_suite: u16::from(kp.ciphersuite()),
        last_resort: kp.last_resort(),
        hash_ref,
        bytes: bytes.to_vec(),
    })
}
