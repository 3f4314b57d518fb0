//! The typed errors of the crate.

/// Everything that can go wrong when decoding, validating or encoding MIMI content.
///
/// Decoding never panics: every malformed or out-of-policy input maps to one of
/// these variants.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input ended in the middle of a CBOR data item.
    #[error("unexpected end of input at offset {offset}")]
    UnexpectedEnd {
        /// Byte offset at which more input was needed.
        offset: usize,
    },
    /// Bytes remain after the top-level data item.
    #[error("{count} trailing byte(s) after the top-level data item")]
    TrailingBytes {
        /// Number of unconsumed bytes.
        count: usize,
    },
    /// The CBOR is well formed but not in deterministic (RFC 8949 §4.2.1) form,
    /// e.g. a non-shortest integer or length, or unsorted map keys.
    #[error("non-deterministic CBOR encoding at offset {offset}")]
    NonDeterministic {
        /// Byte offset of the offending data item.
        offset: usize,
    },
    /// Indefinite-length strings, arrays or maps (forbidden in MIMI content).
    #[error("indefinite-length CBOR item at offset {offset}")]
    IndefiniteLength {
        /// Byte offset of the offending data item.
        offset: usize,
    },
    /// Malformed CBOR: reserved additional information, a stray break, an
    /// unassigned simple value, or a NaN other than the half-width quiet NaN.
    #[error("malformed or unsupported CBOR at offset {offset}")]
    Malformed {
        /// Byte offset of the offending data item.
        offset: usize,
    },
    /// A text string is not valid UTF-8.
    #[error("invalid UTF-8 in text string at offset {offset}")]
    InvalidUtf8 {
        /// Byte offset of the offending data item.
        offset: usize,
    },
    /// A field has the wrong CBOR type.
    #[error("field `{field}` has the wrong type (expected {expected})")]
    UnexpectedType {
        /// The field being decoded.
        field: &'static str,
        /// What the schema requires there.
        expected: &'static str,
    },
    /// A fixed-size array has the wrong number of elements (unknown or missing fields).
    #[error("`{field}` has {found} element(s), expected {expected}")]
    WrongArrayLength {
        /// The structure being decoded.
        field: &'static str,
        /// Number of elements the schema requires.
        expected: usize,
        /// Number of elements found.
        found: u64,
    },
    /// A byte string that has a fixed size (salt, message ID) has another size.
    #[error("`{field}` is {found} octets long, expected {expected}")]
    InvalidLength {
        /// The field being decoded.
        field: &'static str,
        /// Required length.
        expected: usize,
        /// Length found.
        found: usize,
    },
    /// A value exceeds one of the crate's explicit limits.
    #[error("`{field}` exceeds its limit of {limit} (found {found})")]
    LimitExceeded {
        /// The field or structure that is too large.
        field: &'static str,
        /// The limit (see the `MAX_*` constants).
        limit: u64,
        /// The offending size or count.
        found: u64,
    },
    /// An integer field is out of the range its CDDL allows.
    #[error("`{field}` is out of range: {value}")]
    OutOfRange {
        /// The field being decoded.
        field: &'static str,
        /// The offending value.
        value: u64,
    },
    /// The cardinality of a NestedPart is not nullpart, single, external or multi.
    #[error("unknown cardinality {0}")]
    UnknownCardinality(u64),
    /// The partSemantics of a MultiPart is not chooseOne, singleUnit or processAll.
    #[error("unknown part semantics {0}")]
    UnknownPartSemantics(u64),
    /// A MultiPart has fewer than two parts.
    #[error("a MultiPart needs at least 2 parts, found {0}")]
    TooFewParts(usize),
    /// NestedParts are nested deeper than [`crate::MAX_PART_DEPTH`], or an
    /// extension value deeper than [`crate::MAX_EXTENSION_DEPTH`].
    #[error("`{field}` nested deeper than {limit} levels")]
    TooDeep {
        /// What is nested too deeply.
        field: &'static str,
        /// The depth limit.
        limit: usize,
    },
    /// An extension map key is neither an integer nor a text string of 1..=255 octets,
    /// or a nested map key is not an integer, text or byte string, or an integer key is
    /// not exactly representable as a double.
    #[error("invalid map key in `{field}`")]
    InvalidMapKey {
        /// The map being decoded.
        field: &'static str,
    },
    /// The same map key appears twice.
    #[error("duplicate map key in `{field}`")]
    DuplicateMapKey {
        /// The map being decoded.
        field: &'static str,
    },
    /// The reserved extension key 0 is used.
    #[error("reserved extension key 0 used")]
    ReservedExtensionKey,
    /// A message ID cannot be computed because the sender URI is unknown.
    #[error("sender URI (extension 1) missing; needed for the message ID")]
    MissingSenderUri,
    /// A message ID cannot be computed because the room URI is unknown.
    #[error("room URI (extension 2) missing; needed for the message ID")]
    MissingRoomUri,
    /// A builder was asked to build a message without a body.
    #[error("no body was set on the builder")]
    MissingBody,
}
