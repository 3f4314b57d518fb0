//! Reading the epoch of an MLS handshake or application message without processing it, so
//! that the inbox can skip messages of epochs this client has already left (its own
//! commits, merged when the hub accepted them; messages before it joined).
//!
//! RFC 9420 §6: `MLSMessage` = `ProtocolVersion version` (u16), `WireFormat wire_format`
//! (u16), then for `mls_public_message` (1) and `mls_private_message` (2): `opaque
//! group_id<V>` and `uint64 epoch`.

const WIRE_FORMAT_PUBLIC: u16 = 1;
const WIRE_FORMAT_PRIVATE: u16 = 2;

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

/// RFC 9420 §2.1.2 variable-length integer: (value, bytes used).
fn varint(bytes: &[u8]) -> Option<(usize, usize)> {
    let first = *bytes.first()?;
    let len = 1usize << (first >> 6);
    if len > 4 {
        return None;
    }
    let mut value = usize::from(first & 0x3f);
    for b in bytes.get(1..len)? {
        value = (value << 8) | usize::from(*b);
    }
    Some((value, len))
}

/// The epoch of a PublicMessage or PrivateMessage (`None` for other or malformed input).
///
/// Rule CL-EPOCH-1 (docs/protocol-coverage.md).
pub fn epoch_of(message: &[u8]) -> Option<u64> {
    let wire_format = u16_at(message, 2)?;
    if wire_format != WIRE_FORMAT_PUBLIC && wire_format != WIRE_FORMAT_PRIVATE {
        return None;
    }
    let rest = message.get(4..)?;
    let (group_id_len, used) = varint(rest)?;
    let at = used.checked_add(group_id_len)?;
    Some(u64::from_be_bytes(rest.get(at..at + 8)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_message_epoch() {
        // version 1, public, group id "ab", epoch 7, then anything.
        let msg = [0, 1, 0, 1, 2, b'a', b'b', 0, 0, 0, 0, 0, 0, 0, 7, 9, 9];
        assert_eq!(epoch_of(&msg), Some(7));
    }

    #[test]
    fn two_byte_length_and_other_formats() {
        let mut msg = vec![0, 1, 0, 2, 0x40, 3];
        msg.extend_from_slice(&[1, 2, 3]);
        msg.extend_from_slice(&258u64.to_be_bytes());
        assert_eq!(epoch_of(&msg), Some(258));
        // A Welcome (3) has no epoch here; truncated input has none either.
        assert_eq!(epoch_of(&[0, 1, 0, 3, 0]), None);
        assert_eq!(epoch_of(&msg[..msg.len() - 1]), None);
        assert_eq!(epoch_of(&[0, 1, 0, 1, 0xc0]), None);
    }
}
