//! The codec's error type and its bridge to `tls_codec::Error`.
//!
//! `tls_codec`'s traits only carry `tls_codec::Error`. Where this crate's own decoders find a
//! problem that deserves a precise type (an identifier that breaks its grammar, a length over
//! a limit, an unsupported version), they park the typed [`CodecError`] in a thread-local slot
//! and return a marker `DecodingError`; [`from_tls`] takes it back out at the top of the
//! decode. Decoding is synchronous, so the slot is always read by the same call that filled
//! it.

use std::cell::RefCell;

use crate::ident::IdentifierError;

/// Why bytes could not be decoded into a MIMI structure, or a value could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The input ended before the structure was complete.
    #[error("input ended before the structure was complete")]
    EndOfInput,
    /// Bytes remained after a complete top-level structure.
    #[error("trailing bytes after a complete structure")]
    TrailingBytes,
    /// An enumeration carried a value this implementation does not define.
    #[error("unknown value {value} for {what}")]
    UnknownValue {
        /// Which enumeration.
        what: &'static str,
        /// The value found on the wire.
        value: u64,
    },
    /// The message names a protocol version this implementation does not speak.
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(u16),
    /// The DS request or response names a DS protocol version this implementation does not
    /// speak.
    #[error("unsupported MIMI DS protocol version {0}")]
    UnsupportedDsVersion(u16),
    /// The event type string is not one this implementation knows.
    #[error("unknown event type {0:?}")]
    UnknownEventType(String),
    /// The DS request or response type does not match the event or response type around it.
    #[error("{outer} carries a body of DS type {found}")]
    BodyTypeMismatch {
        /// The enclosing event or response type.
        outer: &'static str,
        /// The DS type value found.
        found: u8,
    },
    /// A length (bytes or items) is over its limit.
    #[error("length {len} is over the limit of {max}")]
    TooLong {
        /// The length found (or requested when encoding).
        len: usize,
        /// The limit (a constant of [`crate::limits`]).
        max: usize,
    },
    /// A field that must not be empty was empty.
    #[error("{0} must not be empty")]
    Empty(&'static str),
    /// A length prefix was not the minimal variable-length encoding, or exceeded 2^30.
    #[error("invalid variable-length prefix")]
    InvalidLength,
    /// An identifier broke its grammar.
    #[error("invalid identifier: {0}")]
    InvalidIdentifier(#[from] IdentifierError),
    /// A text field was not UTF-8.
    #[error("text is not valid UTF-8")]
    InvalidUtf8,
    /// A -06 body names a `Protocol` this implementation does not speak (only `mls10`).
    #[error("unsupported -06 protocol {0}")]
    UnsupportedProtocol(u8),
    /// A -06 URI (`IdentifierUri`, `Uri`) broke its grammar.
    #[error("invalid URI: {0}")]
    InvalidUri(&'static str),
    /// An MLS object inside a -06 body could not be delimited: its framing (RFC 9420) is
    /// broken or uses a value whose length this codec cannot know.
    #[error("MLS framing of {what}: {reason}")]
    MlsFraming {
        /// Which MLS structure.
        what: &'static str,
        /// What was wrong.
        reason: &'static str,
    },
    /// An MLS message of the wrong kind for its field (for example a PublicMessage where
    /// the text requires an application PrivateMessage).
    #[error("{field} must be {expected}, found {found}")]
    WrongMlsMessage {
        /// The field.
        field: &'static str,
        /// What the text requires.
        expected: &'static str,
        /// What was found.
        found: &'static str,
    },
    /// An optional value's presence byte was neither 0 nor 1, or another structural rule of
    /// the presentation language was broken.
    #[error("malformed: {0}")]
    Malformed(String),
}

thread_local! {
    static PARKED: RefCell<Option<CodecError>> = const { RefCell::new(None) };
}

const PARKED_MARKER: &str = "mimi-codec: typed error parked";

/// Park a typed error and return the `tls_codec::Error` that carries it up through derived
/// decoders.
pub(crate) fn park(error: CodecError) -> tls_codec::Error {
    PARKED.with(|slot| *slot.borrow_mut() = Some(error));
    tls_codec::Error::DecodingError(PARKED_MARKER.to_owned())
}

/// Forget any parked error (called before a top-level decode starts).
pub(crate) fn clear_parked() {
    PARKED.with(|slot| slot.borrow_mut().take());
}

/// Turn a `tls_codec::Error` into a [`CodecError`], recovering a parked typed error.
pub(crate) fn from_tls(error: tls_codec::Error) -> CodecError {
    let parked = PARKED.with(|slot| slot.borrow_mut().take());
    match error {
        tls_codec::Error::DecodingError(ref m) if m == PARKED_MARKER => {
            parked.unwrap_or_else(|| CodecError::Malformed("lost typed decoding error".into()))
        }
        tls_codec::Error::EndOfStream => CodecError::EndOfInput,
        tls_codec::Error::TrailingData => CodecError::TrailingBytes,
        tls_codec::Error::InvalidVectorLength => CodecError::InvalidLength,
        tls_codec::Error::UnknownValue(value) => CodecError::UnknownValue {
            what: "enumeration",
            value,
        },
        tls_codec::Error::DecodingError(m) | tls_codec::Error::EncodingError(m) => {
            CodecError::Malformed(m)
        }
        other => CodecError::Malformed(other.to_string()),
    }
}

impl From<tls_codec::Error> for CodecError {
    fn from(error: tls_codec::Error) -> Self {
        from_tls(error)
    }
}
