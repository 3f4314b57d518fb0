//! # mimi-content: the MIMI content format
//!
//! Owns what an end-to-end encrypted MIMI application message contains
//! (draft-ietf-mimi-content): the CBOR content container, message IDs, builders and a
//! reader for what users do (text, replies, edits, reactions, attachments, ...), and
//! delivery and read reports.
//!
//! Must not depend on: any other crate of the workspace, MLS, the network or storage.
//!
//! The crate follows **draft-ietf-mimi-content-09**. Encoding is deterministic CBOR
//! (RFC 8949 §4.2.1) produced by a small built-in codec; decoding is strict and bounded
//! by the `MAX_*` constants below.
//!
//! ```
//! use mimi_content::{ContentBuilder, MimiContent, Salt, read};
//!
//! let msg = ContentBuilder::new(Salt([7; 16]))
//!     .sender("mimi://example.com/u/alice-smith")
//!     .room("mimi://example.com/r/engineering_team")
//!     .markdown("Hi __everyone__!")
//!     .build()?;
//! let bytes = msg.encode()?;
//! let id = msg.message_id()?;
//! let received = MimiContent::decode(&bytes)?;
//! assert_eq!(received.message_id()?, id);
//! assert_eq!(read(&received).text.map(|t| t.text), Some("Hi __everyone__!"));
//! # Ok::<(), mimi_content::Error>(())
//! ```

mod builder;
mod cbor;
mod content;
mod error;
mod implied;
mod message_id;
mod reader;
mod report;

pub use builder::{ContentBuilder, markdown_mention};
pub use cbor::Value;
pub use content::{
    CONTENT_TYPE_HTML, CONTENT_TYPE_MARKDOWN, CONTENT_TYPE_PLAIN, Disposition, EXT_ROOM_URI,
    EXT_SENDER_URI, Expiration, ExtensionKey, Extensions, ExternalPart, MEDIA_TYPE, MimiContent,
    MultiPart, NestedPart, PartBody, PartSemantics, Salt, SinglePart,
};
pub use error::Error;
pub use implied::{MessageDerivedValues, Timestamp};
pub use message_id::{HASH_ALG_SHA256, MessageId, compute_message_id};
pub use reader::{
    Mention, MessageKind, ReadMessage, TextBody, cid_uri, extract_mentions, parse_cid_uri, read,
};
pub use report::{MessageStatus, MessageStatusReport, PerMessageStatus};

/// Length of the per-message salt in octets.
pub const SALT_LEN: usize = 16;
/// Length of a message ID in octets.
pub const MESSAGE_ID_LEN: usize = 32;
/// Largest encoded MIMI content message accepted or produced (local policy, 1 MiB;
/// large content belongs in an [`ExternalPart`]).
pub const MAX_MESSAGE_LEN: usize = 1 << 20;
/// Largest inline content or description (bounded by the message size anyway).
pub const MAX_CONTENT_LEN: usize = MAX_MESSAGE_LEN;
/// Longest topic ID (the draft calls longer ones malicious).
pub const MAX_TOPIC_ID_LEN: usize = 4096;
/// Longest URI (sender, room, external URL): the message ID encodes URI lengths as `u16`.
pub const MAX_URI_LEN: usize = u16::MAX as usize;
/// Longest short string or octet string: content types, languages, file names, keys,
/// nonces, AAD and hashes (local policy).
pub const MAX_SHORT_STRING_LEN: usize = 1024;
/// Largest number of body parts in one message (the draft calls more malicious).
pub const MAX_PARTS: usize = 1024;
/// Deepest NestedPart nesting; the top-level body is level 1 (draft section 6.3).
pub const MAX_PART_DEPTH: usize = 4;
/// Deepest nesting of maps, arrays and tags in extensions; the extensions map is
/// level 1 (draft section 6.3).
pub const MAX_EXTENSION_DEPTH: usize = 4;
/// Most entries in the extensions map (local policy).
pub const MAX_EXTENSIONS: usize = 256;
/// Longest text extension key in octets.
pub const MAX_EXTENSION_KEY_LEN: usize = 255;
/// Largest integer magnitude allowed as a map key (2^53 - 1, exact as a double).
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;
/// Most per-message statuses in one status report (local policy).
pub const MAX_REPORT_ENTRIES: usize = 4096;

/// Lowercase hex display of a message ID.
pub(crate) struct MessageIdHex<'a>(&'a MessageId);

impl std::fmt::Display for MessageIdHex<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0
            .as_bytes()
            .iter()
            .try_for_each(|b| write!(f, "{b:02x}"))
    }
}
