//! Message IDs (draft section 3.3).

use sha2::{Digest, Sha256};

use crate::content::Salt;
use crate::error::Error;
use crate::{MESSAGE_ID_LEN, MessageIdHex};

/// Hash algorithm identifier of SHA-256 in the IANA Named Information registry.
pub const HASH_ALG_SHA256: u8 = 1;

/// A 32-octet MIMI message ID: the hash algorithm octet followed by 31 octets of hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub [u8; MESSAGE_ID_LEN]);

impl MessageId {
    /// The ID octets.
    pub fn as_bytes(&self) -> &[u8; MESSAGE_ID_LEN] {
        &self.0
    }

    /// The hash algorithm identifier (first octet; 1 = SHA-256).
    pub fn hash_alg(&self) -> u8 {
        self.0[0]
    }
}

impl std::fmt::Debug for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MessageId({})", MessageIdHex(self))
    }
}

impl TryFrom<&[u8]> for MessageId {
    type Error = Error;
    fn try_from(b: &[u8]) -> Result<Self, Error> {
        <[u8; MESSAGE_ID_LEN]>::try_from(b)
            .map(MessageId)
            .map_err(|_| Error::InvalidLength {
                field: "messageId",
                expected: MESSAGE_ID_LEN,
                found: b.len(),
            })
    }
}

/// Computes a message ID exactly as draft-ietf-mimi-content-09 section 3.3 does:
///
/// ```text
/// hash_output = SHA-256( senderUriLength || senderUri ||
///                        roomUriLength   || roomUri   ||
///                        message         || salt )
/// messageId   = 0x01 || hash_output[0..30]
/// ```
///
/// where the lengths are big-endian `u16` octet counts and `message` is the encoded
/// MIMI content. Fails with [`Error::LimitExceeded`] if a URI is longer than 65535 octets.
pub fn compute_message_id(
    sender_uri: &str,
    room_uri: &str,
    message: &[u8],
    salt: &Salt,
) -> Result<MessageId, Error> {
    let len16 = |s: &str| {
        u16::try_from(s.len()).map_err(|_| Error::LimitExceeded {
            field: "uri",
            limit: u64::from(u16::MAX),
            found: s.len() as u64,
        })
    };
    let mut h = Sha256::new();
    h.update(len16(sender_uri)?.to_be_bytes());
    h.update(sender_uri.as_bytes());
    h.update(len16(room_uri)?.to_be_bytes());
    h.update(room_uri.as_bytes());
    h.update(message);
    h.update(salt.as_bytes());
    let out = h.finalize();
    let mut id = [0u8; MESSAGE_ID_LEN];
    id[0] = HASH_ALG_SHA256;
    id[1..].copy_from_slice(&out[..MESSAGE_ID_LEN - 1]);
    Ok(MessageId(id))
}
