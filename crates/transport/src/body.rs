//! Error bodies: what a `400`, `403` or `413` carries.
//!
//! A refusal of a decoded `/send` or `/check-invite` is a whole `MIMIMessage` whose body is
//! an `EventResponse` error (it has a room and a sender). When the transport refuses before
//! any message could be decoded there is no room to frame it in, so the body is a bare
//! TLS-encoded `EventResponse` of type `error` (see `docs/spec-decisions.md`). The two are
//! told apart by their first byte: a `MIMIMessage` starts with its `uint16` version
//! (`0x00 0x01`), a bare `EventResponse` with its type (`0x04`).

use mimi_codec::{CodecError, EventError, EventResponse, MessageBody, MimiMessage, Wire};
use tls_codec::{Deserialize, Serialize};

/// Encode a bare `EventResponse::Error`.
pub fn encode_error_response(error: &EventError) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail, and an EventError is bounded far below any limit.
    match EventResponse::Error(error.clone()).tls_serialize(&mut out) {
        Ok(_) => out,
        Err(_) => Vec::new(),
    }
}

/// Decode a bare `EventResponse`, exactly (no trailing bytes).
pub fn decode_event_response(bytes: &[u8]) -> Result<EventResponse, CodecError> {
    let mut reader = bytes;
    let response = EventResponse::tls_deserialize(&mut reader)?;
    if !reader.is_empty() {
        return Err(CodecError::TrailingBytes);
    }
    Ok(response)
}

/// The error carried by an error body: a `MIMIMessage` with an `EventResponse` error, or a
/// bare `EventResponse` error. `None` for anything else (including an empty body).
pub fn decode_error_body(bytes: &[u8]) -> Option<EventError> {
    if let Ok(MimiMessage {
        body: MessageBody::Response(EventResponse::Error(error)),
        ..
    }) = MimiMessage::decode(bytes)
    {
        return Some(error);
    }
    match decode_event_response(bytes) {
        Ok(EventResponse::Error(error)) => Some(error),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use mimi_codec::{ErrorCode, RoomId, Sender};

    use super::*;

    #[test]
    fn bare_error_round_trips_with_exact_bytes() {
        let error = EventError::new(ErrorCode::Malformed, "x");
        let bytes = encode_error_response(&error);
        // type error(4), code u16 = 1, detail <V> = 1 byte "x".
        assert_eq!(bytes, vec![4, 0, 1, 1, b'x']);
        assert_eq!(decode_error_body(&bytes), Some(error));
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(decode_error_body(&trailing), None);
    }

    #[test]
    fn framed_error_is_recognised() {
        let error = EventError::new(ErrorCode::NotHub, "not the hub");
        let message = MimiMessage::new(
            "!r:a.example".parse::<RoomId>().unwrap(),
            "a.example".parse::<Sender>().unwrap(),
            MessageBody::Response(EventResponse::Error(error.clone())),
        );
        assert_eq!(decode_error_body(&message.encode().unwrap()), Some(error));
        assert_eq!(decode_error_body(&[]), None);
        assert_eq!(decode_error_body(&[1]), None);
    }
}
