//! # mimi-codec: the MIMI wire format
//!
//! Owns every structure of the MIMI protocol (draft-ralston-mimi-protocol, late 2023) in
//! the TLS presentation language, encoded exactly, with the variable-length vectors of
//! RFC 9420 §2.1.2: `MIMIMessage` framing, events and responses, `UserEvent`, `RoomState`,
//! `InfoEvent`, `CheckInviteRequest`, identifier discovery and the MIMI DS bodies. It also
//! owns the identifiers (room, user, client, server name) with their grammars, and the size
//! limits ([`limits`]).
//!
//! Decoding is strict: trailing bytes, unknown enum values and event types, lengths over
//! the limits, non-minimal length prefixes and identifiers that break their grammar are
//! typed [`CodecError`]s, never panics. MLS objects are kept as their bytes; where a text writes
//! a bare `MLSMessage` the bounded RFC 9420 scanner [`mls_frame`] (shared by both versions)
//! finds where it ends, without verifying anything.
//!
//! The second wire version, draft-ietf-mimi-protocol-06, is the [`v06`] module tree: its own
//! structures over the same primitives, so that neither version's types appear in the other's
//! (`docs/wire-format-06.md`). Its directory document is JSON (serde).
//!
//! Must not depend on: openmls, HTTP, sockets, storage, or any other workspace crate. The
//! wire version is read first ([`ProtocolVersion`]) so that a later version can be added in
//! this crate without changing the layers above. `docs/wire-format.md` describes every
//! encoding choice.

mod bounded;
pub mod discovery;
pub mod ds;
mod enums;
mod error;
mod ident;
pub mod limits;
pub mod message;
pub mod mls_frame;
pub mod mls_ids;
pub mod room;
pub mod v06;

use std::io::Read;

pub use bounded::{BoundedVec, MAX_VARINT, Opaque, Text};
pub use discovery::*;
pub use ds::*;
pub use error::CodecError;
pub use ident::{ClientId, IdentifierError, IdentifierKind, RoomId, Sender, ServerName, UserId};
pub use message::*;
pub use room::*;

/// A top-level structure that travels on its own (an HTTP body, an MLS extension or
/// proposal payload): encoding checks the whole-message limit, decoding is exact.
pub trait Wire: Sized + tls_codec::Serialize + tls_codec::Deserialize {
    /// Encode, refusing output over [`limits::MAX_MESSAGE_LEN`] and anything the decoder
    /// would refuse (a `ds.proposal` without proposals gives [`CodecError::Empty`]).
    fn encode(&self) -> Result<Vec<u8>, CodecError> {
        let len = self.tls_serialized_len();
        if len > limits::MAX_MESSAGE_LEN {
            return Err(CodecError::TooLong {
                len,
                max: limits::MAX_MESSAGE_LEN,
            });
        }
        let mut out = Vec::with_capacity(len);
        error::clear_parked();
        self.tls_serialize(&mut out).map_err(error::from_tls)?;
        Ok(out)
    }

    /// Decode exactly: every byte must be consumed.
    ///
    /// Rules CODEC-6, CODEC-7 (docs/protocol-coverage.md).
    fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        if bytes.len() > limits::MAX_MESSAGE_LEN {
            return Err(CodecError::TooLong {
                len: bytes.len(),
                max: limits::MAX_MESSAGE_LEN,
            });
        }
        error::clear_parked();
        let mut reader = bytes;
        let value = Self::tls_deserialize(&mut reader).map_err(error::from_tls)?;
        let mut rest = [0u8; 1];
        match reader.read(&mut rest) {
            Ok(0) => Ok(value),
            _ => Err(CodecError::TrailingBytes),
        }
    }
}

impl Wire for MimiMessage {}
impl Wire for CheckInviteRequest {}
impl Wire for IdentifierRequest {}
impl Wire for IdentifierResponse {}
impl Wire for UserEvent {}
impl Wire for RoomState {}
impl Wire for InfoEvent {}
impl Wire for Event {}
impl Wire for FanoutEvent {}
impl Wire for EventResponse {}
