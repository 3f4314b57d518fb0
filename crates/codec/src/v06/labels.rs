//! The labels -06 signs and encrypts under, and RFC 9420's labelled forms
//! (`SignWithLabel`'s `SignContent`, §5.1.2; `EncryptWithLabel`'s `EncryptContext`, §5.1.3),
//! so the hub and the clients sign exactly the same bytes.

use crate::CodecError;
use crate::bounded::write_vl_bytes;
use crate::limits::MAX_MESSAGE_LEN;

/// `SignWithLabel(requesterSignatureKey, "KeyMaterialRequestTBS", KeyMaterialRequestTBS)`.
pub const KEY_MATERIAL_REQUEST_TBS: &str = "KeyMaterialRequestTBS";
/// `SignWithLabel(requestingSignatureKey, "GroupInfoRequestTBS", GroupInfoRequestTBS)`.
pub const GROUP_INFO_REQUEST_TBS: &str = "GroupInfoRequestTBS";
/// `SignWithLabel(hub_sender.signature_key, "GroupInfoResponseTBS", GroupInfoResponseTBS)`.
pub const GROUP_INFO_RESPONSE_TBS: &str = "GroupInfoResponseTBS";
/// `SignWithLabel(franking_private_key, "FrankingIntegrityTBS", FrankingIntegrityTBS)`.
pub const FRANKING_INTEGRITY_TBS: &str = "FrankingIntegrityTBS";
/// `SignWithLabel(., "PseudonymousCredentialTBS", PseudonymousCredentialTBS)`.
pub const PSEUDONYMOUS_CREDENTIAL_TBS: &str = "PseudonymousCredentialTBS";
/// `EncryptWithLabel(groupInfoPublicKey, "GroupInfo and ratchet_tree encryption", room_id, …)`.
pub const GROUP_INFO_ENCRYPTION: &str = "GroupInfo and ratchet_tree encryption";

/// The prefix RFC 9420 puts before every label.
const MLS_LABEL_PREFIX: &str = "MLS 1.0 ";

fn labelled(label: &str, value: &[u8]) -> Result<Vec<u8>, CodecError> {
    let full = format!("{MLS_LABEL_PREFIX}{label}");
    let len = full.len() + value.len() + 8;
    if len > MAX_MESSAGE_LEN {
        return Err(CodecError::TooLong {
            len,
            max: MAX_MESSAGE_LEN,
        });
    }
    let mut out = Vec::with_capacity(len);
    write_vl_bytes(full.as_bytes(), &mut out).map_err(crate::error::from_tls)?;
    write_vl_bytes(value, &mut out).map_err(crate::error::from_tls)?;
    Ok(out)
}

/// The bytes `SignWithLabel(key, label, content)` signs: `struct { opaque label<V> = "MLS 1.0 "
/// + label; opaque content<V>; } SignContent` (RFC 9420 §5.1.2).
pub fn sign_content(label: &str, content: &[u8]) -> Result<Vec<u8>, CodecError> {
    labelled(label, content)
}

/// The `info` of `EncryptWithLabel(key, label, context, plaintext)`: `struct { opaque label<V>
/// = "MLS 1.0 " + label; opaque context<V>; } EncryptContext` (RFC 9420 §5.1.3).
pub fn encrypt_context(label: &str, context: &[u8]) -> Result<Vec<u8>, CodecError> {
    labelled(label, context)
}
