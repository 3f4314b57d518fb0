//! RFC 9420 framing of bare MLS objects, shared by both wire versions.
//!
//! Where a text writes a bare MLS structure (`MLSMessage commit;`, `KeyPackage keyPackage;`,
//! `GroupInfo groupInfo;`) there is no length prefix: the structure delimits itself. This
//! module finds its end with a bounded scanner over the wire format of RFC 9420 (§6
//! `MLSMessage`, `PublicMessage`, `PrivateMessage`, §12 proposals and `Commit`, §7.2
//! `LeafNode`, §10 `KeyPackage`, §12.4.3 `GroupInfo` and `Welcome`) and keeps the bytes
//! opaque: nothing is verified here (signatures and semantics are openmls's job above).
//!
//! Framing choices (`docs/wire-format.md`, `docs/wire-format-06.md`):
//! - `Credential` is `CredentialType credential_type; opaque content<V>;` for every type. For
//!   `basic` (`opaque identity<V>`) and `x509` (`Certificate certificates<V>`) this is exactly
//!   RFC 9420's encoding; other types are read the same way, as openmls does.
//! - Proposal types: RFC 9420's 1 to 7, and from draft-ietf-mls-extensions as openmls 0.9
//!   numbers them `app_data_update` (8), `app_ephemeral` (9) and `self_remove` (10). Any other
//!   type is read as `opaque payload<V>`, the framing openmls gives custom proposals.
//! - `SemiPrivateMessage` (draft-mahy-mls-semiprivatemessage) has no registered wire format
//!   value and is refused as an unknown `WireFormat`.
//! - Scanning is bounded by [`MAX_MLS_OBJECT_LEN`] bytes per object and is not recursive (a
//!   `Commit` holds an `UpdatePath` holding a `LeafNode`, no deeper), so it cannot be driven
//!   into deep recursion or large allocations: skipped vectors are never buffered twice.
//!
//! The first version ([`crate::message`], [`crate::ds`]) keeps its MLS objects as
//! [`crate::MlsBytes`] and writes them through the field codecs at the end of this module
//! ([`bare`], [`bare_vec`], [`one_in_vec`], [`ratchet_tree`]); -06 uses the typed
//! [`MlsMessage`], [`KeyPackage`], [`Welcome`] and [`GroupInfo`].

use std::io::{Read, Write};

use tls_codec::{Deserialize, Serialize, Size};

use crate::CodecError;
use crate::bounded::{BoundedVec, read_exact_vec, read_varint, varint_len, vl_len, write_varint};
use crate::ds::MlsBytes;
use crate::enums::wire_enum;
use crate::error::park;
use crate::limits::{MAX_MESSAGE_LEN, MAX_MLS_MESSAGES, MAX_MLS_OBJECT_LEN};

/// A reader that keeps every byte it hands out, up to a limit: the scanner reads through it,
/// so the bytes of the structure scanned are exactly what it recorded. Past the limit it
/// reports end of input and sets `over`.
struct Recorder<'a, R: Read> {
    inner: &'a mut R,
    bytes: Vec<u8>,
    max: usize,
    over: bool,
}

impl<R: Read> Read for Recorder<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let room = self.max - self.bytes.len();
        if room == 0 && !buf.is_empty() {
            self.over = true;
            return Ok(0);
        }
        let want = buf.len().min(room);
        let n = self.inner.read(&mut buf[..want])?;
        self.bytes.extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

fn framing(what: &'static str, reason: &'static str) -> tls_codec::Error {
    park(CodecError::MlsFraming { what, reason })
}

fn u8_of<R: Read>(r: &mut R) -> Result<u8, tls_codec::Error> {
    u8::tls_deserialize(r)
}

fn u16_of<R: Read>(r: &mut R) -> Result<u16, tls_codec::Error> {
    u16::tls_deserialize(r)
}

fn skip<R: Read>(r: &mut R, n: usize) -> Result<(), tls_codec::Error> {
    let copied = std::io::copy(&mut r.take(n as u64), &mut std::io::sink())?;
    if copied != n as u64 {
        return Err(tls_codec::Error::EndOfStream);
    }
    Ok(())
}

/// Skip an `opaque x<V>` (or any `T x<V>`: the prefix counts bytes).
fn skip_vl<R: Read>(r: &mut R) -> Result<(), tls_codec::Error> {
    let len = read_varint(r)?;
    if len > MAX_MLS_OBJECT_LEN {
        return Err(park(CodecError::TooLong {
            len,
            max: MAX_MLS_OBJECT_LEN,
        }));
    }
    skip(r, len)
}

/// `MLSMessage.version`: only `mls10` (1).
fn protocol_version<R: Read>(r: &mut R, what: &'static str) -> Result<(), tls_codec::Error> {
    match u16_of(r)? {
        1 => Ok(()),
        _ => Err(framing(what, "protocol version is not mls10")),
    }
}

fn credential<R: Read>(r: &mut R) -> Result<(), tls_codec::Error> {
    u16_of(r)?;
    skip_vl(r)
}

fn capabilities<R: Read>(r: &mut R) -> Result<(), tls_codec::Error> {
    for _ in 0..5 {
        skip_vl(r)?;
    }
    Ok(())
}

fn leaf_node<R: Read>(r: &mut R) -> Result<(), tls_codec::Error> {
    skip_vl(r)?; // encryption_key
    skip_vl(r)?; // signature_key
    credential(r)?;
    capabilities(r)?;
    match u8_of(r)? {
        1 => skip(r, 16)?, // key_package: Lifetime { uint64 not_before; uint64 not_after; }
        2 => {}            // update
        3 => skip_vl(r)?,  // commit: parent_hash
        _ => return Err(framing("LeafNode", "unknown leaf_node_source")),
    }
    skip_vl(r)?; // extensions
    skip_vl(r) // signature
}

fn key_package_body<R: Read>(r: &mut R) -> Result<(), tls_codec::Error> {
    protocol_version(r, "KeyPackage")?;
    u16_of(r)?; // cipher_suite
    skip_vl(r)?; // init_key
    leaf_node(r)?;
    skip_vl(r)?; // extensions
    skip_vl(r) // signature
}

fn group_info_body<R: Read>(r: &mut R) -> Result<(), tls_codec::Error> {
    // GroupContext
    protocol_version(r, "GroupContext")?;
    u16_of(r)?; // cipher_suite
    skip_vl(r)?; // group_id
    skip(r, 8)?; // epoch
    skip_vl(r)?; // tree_hash
    skip_vl(r)?; // confirmed_transcript_hash
    skip_vl(r)?; // extensions
    // GroupInfo
    skip_vl(r)?; // extensions
    skip_vl(r)?; // confirmation_tag
    skip(r, 4)?; // signer
    skip_vl(r) // signature
}

fn welcome_body<R: Read>(r: &mut R) -> Result<(), tls_codec::Error> {
    u16_of(r)?; // cipher_suite
    skip_vl(r)?; // secrets
    skip_vl(r) // encrypted_group_info
}

fn proposal<R: Read>(r: &mut R) -> Result<(), tls_codec::Error> {
    match u16_of(r)? {
        1 => key_package_body(r),
        2 => leaf_node(r),
        3 => skip(r, 4),
        4 => {
            match u8_of(r)? {
                1 => skip_vl(r)?, // external: psk_id
                2 => {
                    u8_of(r)?; // usage
                    skip_vl(r)?; // psk_group_id
                    skip(r, 8)?; // psk_epoch
                }
                _ => return Err(framing("PreSharedKeyID", "unknown psktype")),
            }
            skip_vl(r) // psk_nonce
        }
        5 => {
            skip_vl(r)?; // group_id
            u16_of(r)?; // version
            u16_of(r)?; // cipher_suite
            skip_vl(r) // extensions
        }
        6 | 7 => skip_vl(r), // kem_output; extensions
        8 => {
            u16_of(r)?; // component_id
            match u8_of(r)? {
                1 => skip_vl(r), // update
                2 => Ok(()),     // remove
                _ => Err(framing("AppDataUpdate", "unknown operation")),
            }
        }
        9 => {
            u16_of(r)?; // component_id
            skip_vl(r) // data
        }
        10 => Ok(()), // SelfRemove
        0 => Err(framing("Proposal", "reserved proposal type 0")),
        _ => skip_vl(r), // openmls's custom proposal framing: opaque payload<V>
    }
}

fn commit<R: Read>(r: &mut R) -> Result<(), tls_codec::Error> {
    skip_vl(r)?; // ProposalOrRef proposals<V>
    match u8_of(r)? {
        0 => Ok(()),
        1 => {
            leaf_node(r)?;
            skip_vl(r) // UpdatePathNode nodes<V>
        }
        _ => Err(framing(
            "Commit",
            "invalid optional<UpdatePath> presence byte",
        )),
    }
}

wire_enum! {
    /// `ContentType` of a framed MLS message (RFC 9420 §6).
    pub enum ContentType: u8, "ContentType" {
        /// An application message.
        Application = 1,
        /// A proposal.
        Proposal = 2,
        /// A commit.
        Commit = 3,
    }
}

/// What an [`MlsMessage`] carries, as far as -06's `select`s need to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MlsMessageKind {
    /// `mls_public_message` with its content type.
    PublicMessage(ContentType),
    /// `mls_private_message` with its (unencrypted) content type.
    PrivateMessage(ContentType),
    /// `mls_welcome`.
    Welcome,
    /// `mls_group_info`.
    GroupInfo,
    /// `mls_key_package`.
    KeyPackage,
}

impl MlsMessageKind {
    /// The content type of a framed message (None for Welcome, GroupInfo, KeyPackage).
    pub fn content_type(self) -> Option<ContentType> {
        match self {
            MlsMessageKind::PublicMessage(c) | MlsMessageKind::PrivateMessage(c) => Some(c),
            _ => None,
        }
    }

    /// A name for error messages.
    pub fn name(self) -> &'static str {
        match self {
            MlsMessageKind::PublicMessage(ContentType::Application) => "application PublicMessage",
            MlsMessageKind::PublicMessage(ContentType::Proposal) => "proposal PublicMessage",
            MlsMessageKind::PublicMessage(ContentType::Commit) => "commit PublicMessage",
            MlsMessageKind::PrivateMessage(ContentType::Application) => {
                "application PrivateMessage"
            }
            MlsMessageKind::PrivateMessage(ContentType::Proposal) => "proposal PrivateMessage",
            MlsMessageKind::PrivateMessage(ContentType::Commit) => "commit PrivateMessage",
            MlsMessageKind::Welcome => "Welcome",
            MlsMessageKind::GroupInfo => "GroupInfo",
            MlsMessageKind::KeyPackage => "KeyPackage",
        }
    }
}

fn content_type<R: Read>(r: &mut R) -> Result<ContentType, tls_codec::Error> {
    ContentType::tls_deserialize(r)
}

fn public_message<R: Read>(r: &mut R) -> Result<ContentType, tls_codec::Error> {
    skip_vl(r)?; // group_id
    skip(r, 8)?; // epoch
    let sender_type = u8_of(r)?;
    match sender_type {
        1 | 2 => skip(r, 4)?, // member leaf_index / external sender_index
        3 | 4 => {}           // new_member_proposal / new_member_commit
        _ => return Err(framing("Sender", "unknown sender_type")),
    }
    skip_vl(r)?; // authenticated_data
    let ct = content_type(r)?;
    match ct {
        ContentType::Application => skip_vl(r)?,
        ContentType::Proposal => proposal(r)?,
        ContentType::Commit => commit(r)?,
    }
    skip_vl(r)?; // signature
    if ct == ContentType::Commit {
        skip_vl(r)?; // confirmation_tag
    }
    if sender_type == 1 {
        skip_vl(r)?; // membership_tag
    }
    Ok(ct)
}

fn private_message<R: Read>(r: &mut R) -> Result<ContentType, tls_codec::Error> {
    skip_vl(r)?; // group_id
    skip(r, 8)?; // epoch
    let ct = content_type(r)?;
    skip_vl(r)?; // authenticated_data
    skip_vl(r)?; // encrypted_sender_data
    skip_vl(r)?; // ciphertext
    Ok(ct)
}

/// Rule CODEC06-3 (docs/protocol-coverage.md).
fn mls_message_body<R: Read>(r: &mut R) -> Result<MlsMessageKind, tls_codec::Error> {
    protocol_version(r, "MLSMessage")?;
    let wire_format = u16_of(r)?;
    Ok(match wire_format {
        1 => MlsMessageKind::PublicMessage(public_message(r)?),
        2 => MlsMessageKind::PrivateMessage(private_message(r)?),
        3 => {
            welcome_body(r)?;
            MlsMessageKind::Welcome
        }
        4 => {
            group_info_body(r)?;
            MlsMessageKind::GroupInfo
        }
        5 => {
            key_package_body(r)?;
            MlsMessageKind::KeyPackage
        }
        other => {
            return Err(park(CodecError::UnknownValue {
                what: "WireFormat",
                value: u64::from(other),
            }));
        }
    })
}

/// Run `scan` over `r`, returning what it found and the exact bytes it consumed.
fn record<R: Read, T>(
    r: &mut R,
    scan: fn(&mut Recorder<'_, R>) -> Result<T, tls_codec::Error>,
) -> Result<(T, Vec<u8>), tls_codec::Error> {
    let mut rec = Recorder {
        inner: r,
        bytes: Vec::new(),
        max: MAX_MLS_OBJECT_LEN,
        over: false,
    };
    match scan(&mut rec) {
        Ok(found) => Ok((found, rec.bytes)),
        Err(_) if rec.over => Err(park(CodecError::TooLong {
            len: MAX_MLS_OBJECT_LEN + 1,
            max: MAX_MLS_OBJECT_LEN,
        })),
        Err(e) => Err(e),
    }
}

/// Decode exactly one `T` from `bytes` (no trailing bytes), with typed errors.
fn exact<T: Deserialize>(bytes: &[u8]) -> Result<T, CodecError> {
    crate::error::clear_parked();
    let mut r = bytes;
    let value = T::tls_deserialize(&mut r).map_err(crate::error::from_tls)?;
    if !r.is_empty() {
        return Err(CodecError::TrailingBytes);
    }
    Ok(value)
}

/// An `MLSMessage` (RFC 9420 §6), kept as its exact bytes; written and read bare.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct MlsMessage {
    kind: MlsMessageKind,
    bytes: Vec<u8>,
}

impl MlsMessage {
    /// Check that `bytes` is exactly one well-framed `MLSMessage`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CodecError> {
        exact(bytes)
    }

    /// What it carries.
    pub fn kind(&self) -> MlsMessageKind {
        self.kind
    }

    /// Its bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Take the bytes out.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

impl std::fmt::Debug for MlsMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "MlsMessage({}, {} bytes)",
            self.kind.name(),
            self.bytes.len()
        )
    }
}

impl Size for MlsMessage {
    fn tls_serialized_len(&self) -> usize {
        self.bytes.len()
    }
}

impl Serialize for MlsMessage {
    fn tls_serialize<W: Write>(&self, w: &mut W) -> Result<usize, tls_codec::Error> {
        w.write_all(&self.bytes)?;
        Ok(self.bytes.len())
    }
}

impl Deserialize for MlsMessage {
    fn tls_deserialize<R: Read>(r: &mut R) -> Result<Self, tls_codec::Error> {
        let (kind, bytes) = record(r, |r| mls_message_body(r))?;
        Ok(MlsMessage { kind, bytes })
    }
}

macro_rules! bare_mls_struct {
    ($(#[$doc:meta])* $name:ident, $scan:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash)]
        pub struct $name(Vec<u8>);

        impl $name {
            /// Check that `bytes` is exactly one well-framed structure of this type.
            pub fn from_bytes(bytes: &[u8]) -> Result<Self, CodecError> {
                exact(bytes)
            }

            /// Its bytes.
            pub fn as_bytes(&self) -> &[u8] {
                &self.0
            }

            /// Take the bytes out.
            pub fn into_bytes(self) -> Vec<u8> {
                self.0
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({} bytes)", stringify!($name), self.0.len())
            }
        }

        impl Size for $name {
            fn tls_serialized_len(&self) -> usize {
                self.0.len()
            }
        }

        impl Serialize for $name {
            fn tls_serialize<W: Write>(&self, w: &mut W) -> Result<usize, tls_codec::Error> {
                w.write_all(&self.0)?;
                Ok(self.0.len())
            }
        }

        impl Deserialize for $name {
            fn tls_deserialize<R: Read>(r: &mut R) -> Result<Self, tls_codec::Error> {
                let ((), bytes) = record(r, |r| $scan(r))?;
                Ok($name(bytes))
            }
        }
    };
}

bare_mls_struct!(
    /// A bare `KeyPackage` (RFC 9420 §10), as `ClientKeyMaterial` and `ConsentEntry` carry it.
    KeyPackage,
    key_package_body
);
bare_mls_struct!(
    /// A bare `Welcome` (RFC 9420 §12.4.3.1), as `HandshakeBundle.welcome` carries it.
    Welcome,
    welcome_body
);
bare_mls_struct!(
    /// A bare `GroupInfo` (RFC 9420 §12.4.3), as `GroupInfoOption` and
    /// `GroupInfoRatchetTreeTBE` carry it.
    GroupInfo,
    group_info_body
);

/// Check that `bytes` is exactly one well-framed `MLSMessage`, without copying it.
fn scan_exact_message(bytes: &[u8]) -> Result<MlsMessageKind, tls_codec::Error> {
    let mut r = bytes;
    let kind = mls_message_body(&mut r)?;
    if !r.is_empty() {
        return Err(framing("MLSMessage", "bytes after the end of the message"));
    }
    Ok(kind)
}

/// Read one bare `MLSMessage` into [`MlsBytes`].
fn read_message<R: Read>(r: &mut R) -> Result<MlsBytes, tls_codec::Error> {
    let (_, bytes) = record(r, |r| mls_message_body(r))?;
    MlsBytes::new(bytes).map_err(park)
}

/// `MLSMessage x;`: the message itself, no length prefix (for a `#[tls_codec(with)]` field
/// of type [`MlsBytes`]). Encoding checks that the bytes are exactly one MLSMessage.
pub mod bare {
    use super::*;

    /// Its length on the wire: the message's own.
    pub fn tls_serialized_len(v: &MlsBytes) -> usize {
        v.as_slice().len()
    }

    /// Write the message.
    pub fn tls_serialize<W: Write>(v: &MlsBytes, w: &mut W) -> Result<usize, tls_codec::Error> {
        scan_exact_message(v.as_slice())?;
        w.write_all(v.as_slice())?;
        Ok(v.as_slice().len())
    }

    /// Read one message, delimited by its RFC 9420 framing.
    pub fn tls_deserialize<R: Read>(r: &mut R) -> Result<MlsBytes, tls_codec::Error> {
        read_message(r)
    }
}

/// `MLSMessage x<V>`: a vector of bare MLSMessages, one length prefix for the whole vector
/// (for a field of type `BoundedVec<MlsBytes, MAX_MLS_MESSAGES>`).
pub mod bare_vec {
    use super::*;

    /// Its length on the wire.
    pub fn tls_serialized_len(v: &BoundedVec<MlsBytes, MAX_MLS_MESSAGES>) -> usize {
        vl_len(v.iter().map(|m| m.as_slice().len()).sum())
    }

    /// Write the prefix, then each message.
    pub fn tls_serialize<W: Write>(
        v: &BoundedVec<MlsBytes, MAX_MLS_MESSAGES>,
        w: &mut W,
    ) -> Result<usize, tls_codec::Error> {
        for m in v {
            scan_exact_message(m.as_slice())?;
        }
        let content: usize = v.iter().map(|m| m.as_slice().len()).sum();
        let mut n = write_varint(content, w)?;
        for m in v {
            w.write_all(m.as_slice())?;
            n += m.as_slice().len();
        }
        Ok(n)
    }

    /// Read the prefix and the vector's bytes (at most [`MAX_MESSAGE_LEN`]), then the messages
    /// in them: input that ends before the vector does is [`CodecError::EndOfInput`]; a
    /// message that runs past the vector's end, or bytes after the last message that are not
    /// a whole message, are [`CodecError::MlsFraming`].
    pub fn tls_deserialize<R: Read>(
        r: &mut R,
    ) -> Result<BoundedVec<MlsBytes, MAX_MLS_MESSAGES>, tls_codec::Error> {
        let len = read_varint(r)?;
        if len > MAX_MESSAGE_LEN {
            return Err(park(CodecError::TooLong {
                len,
                max: MAX_MESSAGE_LEN,
            }));
        }
        let content = read_exact_vec(r, len)?;
        let mut rest = content.as_slice();
        let mut items = Vec::new();
        while !rest.is_empty() {
            if items.len() == MAX_MLS_MESSAGES {
                return Err(park(CodecError::TooLong {
                    len: items.len() + 1,
                    max: MAX_MLS_MESSAGES,
                }));
            }
            match read_message(&mut rest) {
                Ok(m) => items.push(m),
                Err(tls_codec::Error::EndOfStream) => {
                    return Err(framing(
                        "MLSMessage",
                        "a message in a vector runs past the vector's end",
                    ));
                }
                Err(e) => return Err(e),
            }
        }
        BoundedVec::new(items).map_err(park)
    }
}

/// `MLSMessage x<V>` where this project sends exactly one message (`ds.send_message`'s
/// `application_message<V>`), for a field of type [`MlsBytes`]: the vector is written with
/// its one message, and a vector with none or several is refused
/// (`docs/spec-decisions.md`).
pub mod one_in_vec {
    use super::*;

    /// Its length on the wire: prefix and message.
    pub fn tls_serialized_len(v: &MlsBytes) -> usize {
        vl_len(v.as_slice().len())
    }

    /// Write the vector of one message.
    pub fn tls_serialize<W: Write>(v: &MlsBytes, w: &mut W) -> Result<usize, tls_codec::Error> {
        scan_exact_message(v.as_slice())?;
        let n = write_varint(v.as_slice().len(), w)?;
        w.write_all(v.as_slice())?;
        Ok(n + v.as_slice().len())
    }

    /// Read the vector; it must hold exactly one message.
    pub fn tls_deserialize<R: Read>(r: &mut R) -> Result<MlsBytes, tls_codec::Error> {
        let mut items = bare_vec::tls_deserialize(r)?.into_vec();
        match (items.pop(), items.is_empty()) {
            (Some(one), true) => Ok(one),
            _ => Err(park(CodecError::Malformed(
                "application_message<V> must hold exactly one MLSMessage".into(),
            ))),
        }
    }
}

/// RFC 9420's `optional<Node> ratchet_tree<V>`, for a field of type [`MlsBytes`] that holds
/// the whole TLS-encoded tree, its one length prefix included (as openmls exports it). The
/// nodes themselves are not parsed here.
pub mod ratchet_tree {
    use super::*;

    /// Its length on the wire: the bytes as they are.
    pub fn tls_serialized_len(v: &MlsBytes) -> usize {
        v.as_slice().len()
    }

    /// Write the tree; the bytes must be exactly one length-prefixed vector.
    pub fn tls_serialize<W: Write>(v: &MlsBytes, w: &mut W) -> Result<usize, tls_codec::Error> {
        let mut r = v.as_slice();
        let len = read_varint(&mut r)
            .map_err(|_| framing("RatchetTree", "not a length-prefixed vector"))?;
        if r.len() != len {
            return Err(framing(
                "RatchetTree",
                "length prefix does not cover exactly the tree",
            ));
        }
        w.write_all(v.as_slice())?;
        Ok(v.as_slice().len())
    }

    /// Read the vector and keep it with its prefix.
    pub fn tls_deserialize<R: Read>(r: &mut R) -> Result<MlsBytes, tls_codec::Error> {
        let len = read_varint(r)?;
        if vl_len(len) > MAX_MLS_OBJECT_LEN {
            return Err(park(CodecError::TooLong {
                len: vl_len(len),
                max: MAX_MLS_OBJECT_LEN,
            }));
        }
        let mut bytes = Vec::with_capacity(varint_len(len));
        write_varint(len, &mut bytes)?;
        bytes.extend(read_exact_vec(r, len)?);
        MlsBytes::new(bytes).map_err(park)
    }
}
