//! The MIMI content container (`mimiContent`) and its nested body parts.

use crate::cbor::{Decoder, Encoder, Value, check_key_order};
use crate::error::Error;
use crate::message_id::{MessageId, compute_message_id};
use crate::*;

/// Media type of plain text bodies (required by the draft).
pub const CONTENT_TYPE_PLAIN: &str = "text/plain;charset=utf-8";
/// Media type of GitHub Flavored Markdown for MIMI bodies (required by the draft).
pub const CONTENT_TYPE_MARKDOWN: &str = "text/markdown;variant=GFM-MIMI";
/// Media type of HTML bodies (recommended by the draft).
pub const CONTENT_TYPE_HTML: &str = "text/html;charset=utf-8";
/// Media type of the MIMI content container itself.
pub const MEDIA_TYPE: &str = "application/mimi-content";

/// Extension key of the sender URI.
pub const EXT_SENDER_URI: i64 = 1;
/// Extension key of the room URI.
pub const EXT_ROOM_URI: i64 = 2;

/// The 16-octet per-message random salt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Salt(pub [u8; SALT_LEN]);

impl Salt {
    /// The salt octets.
    pub fn as_bytes(&self) -> &[u8; SALT_LEN] {
        &self.0
    }
}

impl TryFrom<&[u8]> for Salt {
    type Error = Error;
    fn try_from(b: &[u8]) -> Result<Self, Error> {
        <[u8; SALT_LEN]>::try_from(b)
            .map(Salt)
            .map_err(|_| Error::InvalidLength {
                field: "salt",
                expected: SALT_LEN,
                found: b.len(),
            })
    }
}

/// When a message should be deleted by receivers (`Expiration`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Expiration {
    /// Delete at this many seconds after the UNIX epoch.
    Absolute(u32),
    /// Delete this many seconds after the receiving user read it.
    Relative(u32),
}

impl Expiration {
    /// Whether the time is relative (the CDDL `relative` flag).
    pub fn is_relative(&self) -> bool {
        matches!(self, Expiration::Relative(_))
    }

    /// The time value in seconds.
    pub fn seconds(&self) -> u32 {
        match self {
            Expiration::Absolute(s) | Expiration::Relative(s) => *s,
        }
    }
}

/// A key of the extensions map: an integer or a text string of 1..=255 octets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ExtensionKey {
    /// Integer key (positive: IANA registry; negative: private use).
    Int(i64),
    /// Text key (private use), 1..=255 octets.
    Text(String),
}

impl ExtensionKey {
    fn encoded(&self) -> Vec<u8> {
        let mut e = Encoder::default();
        match self {
            ExtensionKey::Int(i) => e.value(&Value::integer(*i)),
            ExtensionKey::Text(t) => e.text(t),
        }
        e.finish()
    }

    fn validate(&self) -> Result<(), Error> {
        match self {
            ExtensionKey::Int(0) => Err(Error::ReservedExtensionKey),
            ExtensionKey::Int(i) if i.unsigned_abs() > MAX_SAFE_INTEGER => {
                Err(Error::InvalidMapKey {
                    field: "extensions",
                })
            }
            ExtensionKey::Text(t) if t.is_empty() || t.len() > MAX_EXTENSION_KEY_LEN => {
                Err(Error::InvalidMapKey {
                    field: "extensions",
                })
            }
            _ => Ok(()),
        }
    }
}

/// The `mimiExtensions` map: the sender and room URIs plus any other extensions.
///
/// Other extensions are kept sorted in deterministic (encoded key) order, so a decoded
/// and a built map with the same entries compare equal.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Extensions {
    /// The sender as a MIMI participant URI (key 1).
    pub sender_uri: Option<String>,
    /// The MIMI room URI (key 2).
    pub room_uri: Option<String>,
    other: Vec<(ExtensionKey, Value)>,
}

impl Extensions {
    /// Extensions carrying the sender and room URIs.
    pub fn new(sender_uri: impl Into<String>, room_uri: impl Into<String>) -> Self {
        Extensions {
            sender_uri: Some(sender_uri.into()),
            room_uri: Some(room_uri.into()),
            other: Vec::new(),
        }
    }

    /// Adds or replaces an extension other than the sender/room URIs.
    ///
    /// Maps inside `value` are put in deterministic order (see [`Value::canonicalize`]).
    ///
    /// Keys 1 and 2 set the sender/room URI and must carry text; key 0 is reserved.
    pub fn insert(&mut self, key: ExtensionKey, mut value: Value) -> Result<(), Error> {
        key.validate()?;
        value.validate(2)?;
        value.canonicalize();
        match (&key, value) {
            (ExtensionKey::Int(EXT_SENDER_URI), Value::Text(t)) => self.sender_uri = Some(t),
            (ExtensionKey::Int(EXT_ROOM_URI), Value::Text(t)) => self.room_uri = Some(t),
            (ExtensionKey::Int(EXT_SENDER_URI | EXT_ROOM_URI), _) => {
                return Err(Error::UnexpectedType {
                    field: "extensions",
                    expected: "text string",
                });
            }
            (_, value) => {
                let enc = key.encoded();
                match self.other.binary_search_by(|(k, _)| k.encoded().cmp(&enc)) {
                    Ok(i) => self.other[i].1 = value,
                    Err(i) => self.other.insert(i, (key, value)),
                }
            }
        }
        Ok(())
    }

    /// The value of another extension, if present.
    pub fn get(&self, key: &ExtensionKey) -> Option<&Value> {
        self.other.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Extensions other than the sender and room URIs, in deterministic order.
    pub fn others(&self) -> impl Iterator<Item = (&ExtensionKey, &Value)> {
        self.other.iter().map(|(k, v)| (k, v))
    }

    /// Number of entries in the map.
    pub fn len(&self) -> usize {
        self.other.len()
            + usize::from(self.sender_uri.is_some())
            + usize::from(self.room_uri.is_some())
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn validate(&self) -> Result<(), Error> {
        if self.len() > MAX_EXTENSIONS {
            return Err(Error::LimitExceeded {
                field: "extensions",
                limit: MAX_EXTENSIONS as u64,
                found: self.len() as u64,
            });
        }
        for uri in [&self.sender_uri, &self.room_uri].into_iter().flatten() {
            check_len("uri", uri.len(), MAX_URI_LEN)?;
        }
        for (k, v) in &self.other {
            k.validate()?;
            if matches!(k, ExtensionKey::Int(EXT_SENDER_URI | EXT_ROOM_URI)) {
                return Err(Error::DuplicateMapKey {
                    field: "extensions",
                });
            }
            v.validate(2)?;
        }
        Ok(())
    }

    fn encode(&self, e: &mut Encoder) {
        let mut entries: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(self.len());
        for (key, uri) in [
            (EXT_SENDER_URI, &self.sender_uri),
            (EXT_ROOM_URI, &self.room_uri),
        ] {
            if let Some(uri) = uri {
                let mut ve = Encoder::default();
                ve.text(uri);
                entries.push((ExtensionKey::Int(key).encoded(), ve.finish()));
            }
        }
        for (k, v) in &self.other {
            let mut ve = Encoder::default();
            ve.value(v);
            entries.push((k.encoded(), ve.finish()));
        }
        entries.sort();
        e.map(entries.len());
        for (k, v) in entries {
            e.raw(&k);
            e.raw(&v);
        }
    }

    fn decode(d: &mut Decoder<'_>) -> Result<Self, Error> {
        const FIELD: &str = "extensions";
        let n = d.map(FIELD, MAX_EXTENSIONS)?;
        let mut ext = Extensions::default();
        let mut prev: Option<&[u8]> = None;
        for _ in 0..n {
            let start = d.position();
            let key = match d.value(2)? {
                Value::Unsigned(u) if u <= MAX_SAFE_INTEGER => ExtensionKey::Int(u as i64),
                Value::Negative(u) if u < MAX_SAFE_INTEGER => ExtensionKey::Int(-1 - u as i64),
                Value::Text(t) => ExtensionKey::Text(t),
                _ => return Err(Error::InvalidMapKey { field: FIELD }),
            };
            key.validate()?;
            let key_bytes = d.slice(start, d.position());
            check_key_order(prev, key_bytes, start, FIELD)?;
            prev = Some(key_bytes);
            match key {
                ExtensionKey::Int(EXT_SENDER_URI) => {
                    ext.sender_uri = Some(d.text("senderUri", MAX_URI_LEN)?.to_owned())
                }
                ExtensionKey::Int(EXT_ROOM_URI) => {
                    ext.room_uri = Some(d.text("roomUri", MAX_URI_LEN)?.to_owned())
                }
                key => {
                    let v = d.value(2)?;
                    ext.other.push((key, v));
                }
            }
        }
        Ok(ext)
    }
}

/// The disposition of a body part (MIMI Content Disposition registry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Disposition {
    /// 0: no disposition hint.
    Unspecified,
    /// 1: render according to local policy.
    Render,
    /// 2: a single reaction to another message.
    Reaction,
    /// 3: a profile of a participant or room.
    Profile,
    /// 4: render inline in the chat interface.
    Inline,
    /// 5: an icon such as an avatar.
    Icon,
    /// 6: to be downloaded rather than rendered immediately.
    Attachment,
    /// 7: a multimedia session description or join URI.
    Session,
    /// 8: a sender-generated preview.
    Preview,
    /// 9..=255: a value this crate does not know (treat as `Render`).
    /// Construct through [`Disposition::from_u8`] so known values stay canonical.
    Unknown(u8),
}

impl Disposition {
    /// Maps a registry value to a disposition.
    pub fn from_u8(v: u8) -> Self {
        match v {
            0 => Disposition::Unspecified,
            1 => Disposition::Render,
            2 => Disposition::Reaction,
            3 => Disposition::Profile,
            4 => Disposition::Inline,
            5 => Disposition::Icon,
            6 => Disposition::Attachment,
            7 => Disposition::Session,
            8 => Disposition::Preview,
            other => Disposition::Unknown(other),
        }
    }

    /// The registry value.
    pub fn to_u8(self) -> u8 {
        match self {
            Disposition::Unspecified => 0,
            Disposition::Render => 1,
            Disposition::Reaction => 2,
            Disposition::Profile => 3,
            Disposition::Inline => 4,
            Disposition::Icon => 5,
            Disposition::Attachment => 6,
            Disposition::Session => 7,
            Disposition::Preview => 8,
            Disposition::Unknown(v) => v,
        }
    }
}

/// How the parts of a MultiPart relate to each other.
#[doc(alias = "cardinality")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PartSemantics {
    /// 0: the receiver picks exactly one part (like `multipart/alternative`).
    #[doc(alias = "alternative")]
    ChooseOne,
    /// 1: all parts form a single unit (like `multipart/related`).
    #[doc(alias = "collection")]
    SingleUnit,
    /// 2: the receiver processes each part individually (like `multipart/mixed`).
    ProcessAll,
}

impl PartSemantics {
    fn from_u64(v: u64) -> Result<Self, Error> {
        match v {
            0 => Ok(PartSemantics::ChooseOne),
            1 => Ok(PartSemantics::SingleUnit),
            2 => Ok(PartSemantics::ProcessAll),
            other => Err(Error::UnknownPartSemantics(other)),
        }
    }

    fn to_u64(self) -> u64 {
        match self {
            PartSemantics::ChooseOne => 0,
            PartSemantics::SingleUnit => 1,
            PartSemantics::ProcessAll => 2,
        }
    }
}

/// An inline body part (`SinglePart`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SinglePart {
    /// IANA media type with parameters.
    pub content_type: String,
    /// The content octets.
    pub content: Vec<u8>,
}

/// A reference to external content (`ExternalPart`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ExternalPart {
    /// IANA media type of the external content (may be empty, e.g. for a session URL).
    pub content_type: String,
    /// Where the content can be fetched.
    pub url: String,
    /// Seconds since the UNIX epoch after which the content is invalid; 0 = never.
    pub expires: u32,
    /// Size of the content in octets; 0 = not provided.
    pub size: u64,
    /// IANA AEAD algorithm used to encrypt the content; 0 = not encrypted.
    pub enc_alg: u16,
    /// AEAD key.
    pub key: Vec<u8>,
    /// AEAD nonce.
    pub nonce: Vec<u8>,
    /// AEAD additional authenticated data.
    pub aad: Vec<u8>,
    /// IANA Named Information hash algorithm of `content_hash`; 0 = none.
    pub hash_alg: u8,
    /// Hash of the content at `url`.
    pub content_hash: Vec<u8>,
    /// Optional text description.
    pub description: String,
    /// Optional suggested file name.
    pub filename: String,
}

/// Nested body parts (`MultiPart`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MultiPart {
    /// How the parts relate.
    pub semantics: PartSemantics,
    /// At least two parts.
    pub parts: Vec<NestedPart>,
}

/// The four kinds of body (the NestedPart `cardinality`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PartBody {
    /// No content (delete, unreact).
    Null,
    /// Inline content.
    Single(SinglePart),
    /// External content.
    External(ExternalPart),
    /// Several nested parts.
    Multi(MultiPart),
}

/// A (possibly nested) body part.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NestedPart {
    /// Intended semantics of the part.
    pub disposition: Disposition,
    /// Empty, or a comma-separated list of language tags.
    pub language: String,
    /// The content.
    pub body: PartBody,
}

impl NestedPart {
    /// An empty body with the given disposition.
    pub fn null(disposition: Disposition) -> Self {
        NestedPart {
            disposition,
            language: String::new(),
            body: PartBody::Null,
        }
    }

    /// An inline part.
    pub fn single(
        disposition: Disposition,
        content_type: impl Into<String>,
        content: impl Into<Vec<u8>>,
    ) -> Self {
        NestedPart {
            disposition,
            language: String::new(),
            body: PartBody::Single(SinglePart {
                content_type: content_type.into(),
                content: content.into(),
            }),
        }
    }

    /// An external part.
    pub fn external(disposition: Disposition, part: ExternalPart) -> Self {
        NestedPart {
            disposition,
            language: String::new(),
            body: PartBody::External(part),
        }
    }

    /// A multipart; fails with [`Error::TooFewParts`] for fewer than two parts.
    pub fn multi(
        disposition: Disposition,
        semantics: PartSemantics,
        parts: Vec<NestedPart>,
    ) -> Result<Self, Error> {
        if parts.len() < 2 {
            return Err(Error::TooFewParts(parts.len()));
        }
        Ok(NestedPart {
            disposition,
            language: String::new(),
            body: PartBody::Multi(MultiPart { semantics, parts }),
        })
    }

    /// Sets the language (builder style).
    pub fn with_language(mut self, language: impl Into<String>) -> Self {
        self.language = language.into();
        self
    }

    /// All parts in depth-first order; the position in the result is the part index
    /// (`cid:<index>@local.invalid`). Index 0 is this part.
    pub fn parts_depth_first(&self) -> Vec<&NestedPart> {
        let mut out = Vec::new();
        let mut stack = vec![self];
        while let Some(p) = stack.pop() {
            out.push(p);
            if let PartBody::Multi(m) = &p.body {
                stack.extend(m.parts.iter().rev());
            }
        }
        out
    }

    /// The part with the given implied part index.
    pub fn part(&self, index: usize) -> Option<&NestedPart> {
        self.parts_depth_first().get(index).copied()
    }

    /// The index of `part` (compared by identity) in this tree.
    pub fn index_of(&self, part: &NestedPart) -> Option<usize> {
        self.parts_depth_first()
            .iter()
            .position(|p| std::ptr::eq(*p, part))
    }

    fn validate(&self, level: usize, count: &mut usize) -> Result<(), Error> {
        if level > MAX_PART_DEPTH {
            return Err(Error::TooDeep {
                field: "NestedPart",
                limit: MAX_PART_DEPTH,
            });
        }
        *count += 1;
        if *count > MAX_PARTS {
            return Err(Error::LimitExceeded {
                field: "body parts",
                limit: MAX_PARTS as u64,
                found: *count as u64,
            });
        }
        check_len("language", self.language.len(), MAX_SHORT_STRING_LEN)?;
        match &self.body {
            PartBody::Null => {}
            PartBody::Single(s) => {
                check_len("contentType", s.content_type.len(), MAX_SHORT_STRING_LEN)?;
                check_len("content", s.content.len(), MAX_CONTENT_LEN)?;
            }
            PartBody::External(x) => {
                check_len("contentType", x.content_type.len(), MAX_SHORT_STRING_LEN)?;
                check_len("url", x.url.len(), MAX_URI_LEN)?;
                for (f, b) in [
                    ("key", &x.key),
                    ("nonce", &x.nonce),
                    ("aad", &x.aad),
                    ("contentHash", &x.content_hash),
                ] {
                    check_len(f, b.len(), MAX_SHORT_STRING_LEN)?;
                }
                check_len("description", x.description.len(), MAX_CONTENT_LEN)?;
                check_len("filename", x.filename.len(), MAX_SHORT_STRING_LEN)?;
            }
            PartBody::Multi(m) => {
                if m.parts.len() < 2 {
                    return Err(Error::TooFewParts(m.parts.len()));
                }
                for p in &m.parts {
                    p.validate(level + 1, count)?;
                }
            }
        }
        Ok(())
    }

    fn encode(&self, e: &mut Encoder) {
        let fields = match &self.body {
            PartBody::Null => 3,
            PartBody::Single(_) => 5,
            PartBody::External(_) => 15,
            PartBody::Multi(_) => 5,
        };
        e.array(fields);
        e.uint(u64::from(self.disposition.to_u8()));
        e.text(&self.language);
        match &self.body {
            PartBody::Null => e.uint(CARDINALITY_NULL),
            PartBody::Single(s) => {
                e.uint(CARDINALITY_SINGLE);
                e.text(&s.content_type);
                e.bytes(&s.content);
            }
            PartBody::External(x) => {
                e.uint(CARDINALITY_EXTERNAL);
                e.text(&x.content_type);
                e.text(&x.url);
                e.uint(u64::from(x.expires));
                e.uint(x.size);
                e.uint(u64::from(x.enc_alg));
                e.bytes(&x.key);
                e.bytes(&x.nonce);
                e.bytes(&x.aad);
                e.uint(u64::from(x.hash_alg));
                e.bytes(&x.content_hash);
                e.text(&x.description);
                e.text(&x.filename);
            }
            PartBody::Multi(m) => {
                e.uint(CARDINALITY_MULTI);
                e.uint(m.semantics.to_u64());
                e.array(m.parts.len());
                for p in &m.parts {
                    p.encode(e);
                }
            }
        }
    }

    fn decode(d: &mut Decoder<'_>, level: usize, count: &mut usize) -> Result<Self, Error> {
        const FIELD: &str = "NestedPart";
        if level > MAX_PART_DEPTH {
            return Err(Error::TooDeep {
                field: FIELD,
                limit: MAX_PART_DEPTH,
            });
        }
        *count += 1;
        if *count > MAX_PARTS {
            return Err(Error::LimitExceeded {
                field: "body parts",
                limit: MAX_PARTS as u64,
                found: *count as u64,
            });
        }
        let n = d.array(FIELD, 15)?;
        if n < 3 {
            return Err(Error::WrongArrayLength {
                field: FIELD,
                expected: 3,
                found: n as u64,
            });
        }
        let disposition = d.uint("disposition")?;
        let disposition = u8::try_from(disposition)
            .map(Disposition::from_u8)
            .map_err(|_| Error::OutOfRange {
                field: "disposition",
                value: disposition,
            })?;
        let language = d.text("language", MAX_SHORT_STRING_LEN)?.to_owned();
        let cardinality = d.uint("cardinality")?;
        let expected = match cardinality {
            CARDINALITY_NULL => 3,
            CARDINALITY_SINGLE | CARDINALITY_MULTI => 5,
            CARDINALITY_EXTERNAL => 15,
            other => return Err(Error::UnknownCardinality(other)),
        };
        if n != expected {
            return Err(Error::WrongArrayLength {
                field: FIELD,
                expected,
                found: n as u64,
            });
        }
        let body = match cardinality {
            CARDINALITY_NULL => PartBody::Null,
            CARDINALITY_SINGLE => PartBody::Single(SinglePart {
                content_type: d.text("contentType", MAX_SHORT_STRING_LEN)?.to_owned(),
                content: d.bytes("content", MAX_CONTENT_LEN)?.to_vec(),
            }),
            CARDINALITY_EXTERNAL => PartBody::External(ExternalPart {
                content_type: d.text("contentType", MAX_SHORT_STRING_LEN)?.to_owned(),
                url: d.text("url", MAX_URI_LEN)?.to_owned(),
                expires: uint_in::<u32>(d, "expires")?,
                size: d.uint("size")?,
                enc_alg: uint_in::<u16>(d, "encAlg")?,
                key: d.bytes("key", MAX_SHORT_STRING_LEN)?.to_vec(),
                nonce: d.bytes("nonce", MAX_SHORT_STRING_LEN)?.to_vec(),
                aad: d.bytes("aad", MAX_SHORT_STRING_LEN)?.to_vec(),
                hash_alg: uint_in::<u8>(d, "hashAlg")?,
                content_hash: d.bytes("contentHash", MAX_SHORT_STRING_LEN)?.to_vec(),
                description: d.text("description", MAX_CONTENT_LEN)?.to_owned(),
                filename: d.text("filename", MAX_SHORT_STRING_LEN)?.to_owned(),
            }),
            _ => {
                let semantics = PartSemantics::from_u64(d.uint("partSemantics")?)?;
                let k = d.array("parts", MAX_PARTS)?;
                if k < 2 {
                    return Err(Error::TooFewParts(k));
                }
                let mut parts = Vec::with_capacity(k);
                for _ in 0..k {
                    parts.push(NestedPart::decode(d, level + 1, count)?);
                }
                PartBody::Multi(MultiPart { semantics, parts })
            }
        };
        Ok(NestedPart {
            disposition,
            language,
            body,
        })
    }
}

const CARDINALITY_NULL: u64 = 0;
const CARDINALITY_SINGLE: u64 = 1;
const CARDINALITY_EXTERNAL: u64 = 2;
const CARDINALITY_MULTI: u64 = 3;

fn uint_in<T: TryFrom<u64>>(d: &mut Decoder<'_>, field: &'static str) -> Result<T, Error> {
    let v = d.uint(field)?;
    T::try_from(v).map_err(|_| Error::OutOfRange { field, value: v })
}

fn check_len(field: &'static str, len: usize, limit: usize) -> Result<(), Error> {
    if len > limit {
        Err(Error::LimitExceeded {
            field,
            limit: limit as u64,
            found: len as u64,
        })
    } else {
        Ok(())
    }
}

pub(crate) fn read_message_id(
    d: &mut Decoder<'_>,
    field: &'static str,
) -> Result<MessageId, Error> {
    let b = d.bytes(field, usize::MAX)?;
    <[u8; MESSAGE_ID_LEN]>::try_from(b)
        .map(MessageId)
        .map_err(|_| Error::InvalidLength {
            field,
            expected: MESSAGE_ID_LEN,
            found: b.len(),
        })
}

/// A MIMI content message (`mimiContent`).
#[derive(Debug, Clone, PartialEq)]
pub struct MimiContent {
    /// Per-message random salt.
    pub salt: Salt,
    /// The message this one edits, deletes or un-reacts ({1}).
    pub replaces: Option<MessageId>,
    /// Logical grouping of messages; empty = none ({2}).
    pub topic_id: Vec<u8>,
    /// Expiration hint ({3}).
    pub expires: Option<Expiration>,
    /// The message this one replies or reacts to ({4}).
    pub in_reply_to: Option<MessageId>,
    /// Extensions, including the sender and room URIs ({6}).
    pub extensions: Extensions,
    /// The body ({7}).
    pub body: NestedPart,
}

impl MimiContent {
    /// Checks every limit and structural rule the decoder enforces.
    pub fn validate(&self) -> Result<(), Error> {
        check_len("topicId", self.topic_id.len(), MAX_TOPIC_ID_LEN)?;
        self.extensions.validate()?;
        let mut count = 0;
        self.body.validate(1, &mut count)
    }

    /// Encodes in deterministic CBOR after validating.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        self.validate()?;
        let mut e = Encoder::default();
        e.array(7);
        e.bytes(&self.salt.0);
        match &self.replaces {
            Some(id) => e.bytes(id.as_bytes()),
            None => e.null(),
        }
        e.bytes(&self.topic_id);
        match self.expires {
            Some(x) => {
                e.array(2);
                e.bool(x.is_relative());
                e.uint(u64::from(x.seconds()));
            }
            None => e.null(),
        }
        match &self.in_reply_to {
            Some(id) => e.bytes(id.as_bytes()),
            None => e.null(),
        }
        self.extensions.encode(&mut e);
        self.body.encode(&mut e);
        let out = e.finish();
        check_len("mimiContent", out.len(), MAX_MESSAGE_LEN)?;
        Ok(out)
    }

    /// Strictly decodes a received message.
    ///
    /// Rejects malformed or non-deterministic CBOR, wrong types, unknown or missing
    /// fields and anything beyond the crate's limits, always with a typed [`Error`].
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        check_len("mimiContent", bytes.len(), MAX_MESSAGE_LEN)?;
        let mut d = Decoder::new(bytes);
        d.array_exact("mimiContent", 7)?;
        let salt = Salt::try_from(d.bytes("salt", usize::MAX)?)?;
        let replaces = if d.null()? {
            None
        } else {
            Some(read_message_id(&mut d, "replaces")?)
        };
        let topic_id = d.bytes("topicId", MAX_TOPIC_ID_LEN)?.to_vec();
        let expires = if d.null()? {
            None
        } else {
            d.array_exact("expires", 2)?;
            let relative = d.bool("expires.relative")?;
            let time = uint_in::<u32>(&mut d, "expires.time")?;
            Some(if relative {
                Expiration::Relative(time)
            } else {
                Expiration::Absolute(time)
            })
        };
        let in_reply_to = if d.null()? {
            None
        } else {
            Some(read_message_id(&mut d, "inReplyTo")?)
        };
        let extensions = Extensions::decode(&mut d)?;
        let mut count = 0;
        let body = NestedPart::decode(&mut d, 1, &mut count)?;
        d.finish()?;
        Ok(MimiContent {
            salt,
            replaces,
            topic_id,
            expires,
            in_reply_to,
            extensions,
            body,
        })
    }

    /// The message ID, using the sender and room URIs of the extensions map.
    pub fn message_id(&self) -> Result<MessageId, Error> {
        let sender = self
            .extensions
            .sender_uri
            .as_deref()
            .ok_or(Error::MissingSenderUri)?;
        let room = self
            .extensions
            .room_uri
            .as_deref()
            .ok_or(Error::MissingRoomUri)?;
        self.message_id_with(sender, room)
    }

    /// The message ID for explicitly given sender and room URIs (e.g. derived from MLS).
    pub fn message_id_with(&self, sender_uri: &str, room_uri: &str) -> Result<MessageId, Error> {
        compute_message_id(sender_uri, room_uri, &self.encode()?, &self.salt)
    }
}
