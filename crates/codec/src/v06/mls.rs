//! MLS objects inside -06 bodies, with the framing the -06 text writes.
//!
//! Where -06 writes a bare MLS structure (`MLSMessage appMessage;`, `KeyPackage keyPackage;`,
//! `optional<Welcome>`, `GroupInfo groupInfo;`) there is no length prefix: the structure
//! delimits itself. This module finds its end with a bounded scanner over the wire format of
//! RFC 9420 (§6 `MLSMessage`, `PublicMessage`, `PrivateMessage`, §12 proposals and `Commit`,
//! §7.2 `LeafNode`, §10 `KeyPackage`, §12.4.3 `GroupInfo` and `Welcome`) and keeps the bytes
//! opaque: nothing is verified here (signatures and semantics are openmls's job above).
//!
//! Framing choices (`docs/wire-format-06.md`):
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

use std::io::{Read, Write};

use tls_codec::{Deserialize, Serialize, Size, TlsDeserialize, TlsSerialize, TlsSize};

use crate::CodecError;
use crate::bounded::{BoundedVec, Opaque, read_varint};
use crate::enums::wire_enum;
use crate::error::park;
use crate::limits::MAX_MLS_OBJECT_LEN;
use crate::v06::limits::*;

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

/// `CipherSuite` (RFC 9420 §17.1): a `uint16` carried as is (unknown suites are the
/// receiver's decision, not a framing error).
pub type CipherSuite = u16;

/// `SignaturePublicKey`: `opaque signature_key<V>`.
pub type SignaturePublicKey = Opaque<MAX_KEY_LEN>;

/// `HPKEPublicKey`: `opaque hpke_public_key<V>`.
pub type HpkePublicKey = Opaque<MAX_KEY_LEN>;

/// `Credential` (RFC 9420 §5.3): a type and its content (`opaque identity<V>` for basic,
/// `Certificate certificates<V>` for x509, which is the same framing).
#[derive(Debug, Clone, PartialEq, Eq, Hash, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct Credential {
    /// `CredentialType` (1 basic, 2 x509).
    pub credential_type: u16,
    /// The content after the type, without its length prefix.
    pub content: Opaque<MAX_CREDENTIAL_LEN>,
}

/// `RequiredCapabilities` (RFC 9420 §11.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct RequiredCapabilities {
    /// `ExtensionType extension_types<V>`.
    pub extension_types: BoundedVec<u16, MAX_CAPABILITY_ITEMS>,
    /// `ProposalType proposal_types<V>`.
    pub proposal_types: BoundedVec<u16, MAX_CAPABILITY_ITEMS>,
    /// `CredentialType credential_types<V>`.
    pub credential_types: BoundedVec<u16, MAX_CAPABILITY_ITEMS>,
}

/// `Capabilities` (RFC 9420 §7.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct Capabilities {
    /// `ProtocolVersion versions<V>`.
    pub versions: BoundedVec<u16, MAX_CAPABILITY_ITEMS>,
    /// `CipherSuite cipher_suites<V>`.
    pub cipher_suites: BoundedVec<u16, MAX_CAPABILITY_ITEMS>,
    /// `ExtensionType extensions<V>`.
    pub extensions: BoundedVec<u16, MAX_CAPABILITY_ITEMS>,
    /// `ProposalType proposals<V>`.
    pub proposals: BoundedVec<u16, MAX_CAPABILITY_ITEMS>,
    /// `CredentialType credentials<V>`.
    pub credentials: BoundedVec<u16, MAX_CAPABILITY_ITEMS>,
}

/// `ExternalSender` (RFC 9420 §12.1.8.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct ExternalSender {
    /// Its signature key.
    pub signature_key: SignaturePublicKey,
    /// Its credential.
    pub credential: Credential,
}

/// `HPKECiphertext` (RFC 9420 §12.4.3.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct HpkeCiphertext {
    /// `opaque kem_output<V>`.
    pub kem_output: Opaque<MAX_KEY_LEN>,
    /// `opaque ciphertext<V>`.
    pub ciphertext: Opaque<MAX_MLS_OBJECT_LEN>,
}

/// `ProposalRef` (RFC 9420 §5.2, a `HashReference`: `opaque value<V>`).
pub type ProposalRef = Opaque<{ crate::limits::MAX_HASH_LEN }>;

/// `Extension` (RFC 9420 §13.4): a type and `opaque extension_data<V>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct Extension {
    /// `ExtensionType`.
    pub extension_type: u16,
    /// The data.
    pub extension_data: Opaque<MAX_MLS_OBJECT_LEN>,
}

/// `ComponentID` of draft-ietf-mls-extensions (a `uint16`).
pub type ComponentId = u16;

/// `ComponentData` (draft-ietf-mls-extensions §4.6).
#[derive(Debug, Clone, PartialEq, Eq, Hash, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct ComponentData {
    /// The component.
    pub component_id: ComponentId,
    /// Its data.
    pub data: Opaque<MAX_COMPONENT_LEN>,
}

/// `AppDataDictionary` (draft-ietf-mls-extensions §4.6: `ComponentData component_data<V>`,
/// sorted by `component_id` with at most one entry per component), also the -06 extension
/// points `consent_extensions`, `id_request_extensions`, `id_response_extensions` and
/// `abuse_extensions`. Unsorted or repeated components are `Malformed`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct AppDataDictionary {
    /// The components, in increasing `component_id` order.
    pub component_data: BoundedVec<ComponentData, MAX_COMPONENTS>,
}

impl AppDataDictionary {
    /// A dictionary of these components, sorted by ID; a repeated ID is refused.
    pub fn new(mut components: Vec<ComponentData>) -> Result<Self, CodecError> {
        components.sort_by_key(|c| c.component_id);
        let dict = AppDataDictionary {
            component_data: BoundedVec::new(components)?,
        };
        dict.check().map_err(crate::error::from_tls)?;
        Ok(dict)
    }

    /// The data of a component, if present.
    pub fn get(&self, id: ComponentId) -> Option<&[u8]> {
        self.component_data
            .iter()
            .find(|c| c.component_id == id)
            .map(|c| c.data.as_slice())
    }

    /// Rule CODEC06-8 (docs/protocol-coverage.md).
    fn check(&self) -> Result<(), tls_codec::Error> {
        let ids: Vec<ComponentId> = self.component_data.iter().map(|c| c.component_id).collect();
        if ids.windows(2).any(|w| w[0] >= w[1]) {
            return Err(park(CodecError::Malformed(
                "AppDataDictionary components must be sorted by ID, each at most once".into(),
            )));
        }
        Ok(())
    }
}

impl Size for AppDataDictionary {
    fn tls_serialized_len(&self) -> usize {
        self.component_data.tls_serialized_len()
    }
}

impl Serialize for AppDataDictionary {
    fn tls_serialize<W: Write>(&self, w: &mut W) -> Result<usize, tls_codec::Error> {
        self.check()?;
        self.component_data.tls_serialize(w)
    }
}

impl Deserialize for AppDataDictionary {
    fn tls_deserialize<R: Read>(r: &mut R) -> Result<Self, tls_codec::Error> {
        let dict = AppDataDictionary {
            component_data: BoundedVec::tls_deserialize(r)?,
        };
        dict.check()?;
        Ok(dict)
    }
}

/// A ratchet tree as RFC 9420 §12.4.3.3 writes it (`optional<Node> ratchet_tree<V>`),
/// carried as the bytes inside the vector.
pub type RatchetTreeBytes = Opaque<MAX_MLS_OBJECT_LEN>;

/// `RatchetTreeOption` (draft-mahy-mls-ratchet-tree-options): how a ratchet tree is conveyed.
///
/// Only the two representations every revision of that draft agrees on are read: `full` (1,
/// `Node ratchet_tree<V>`) and `distributionService` (4, nothing: the receiver asks the hub).
/// The revisions disagree on the bodies of `httpsUri` (2) and `outOfBand` (3) (with and
/// without a `tree_signature<V>`), so those are refused as unknown values
/// (`docs/spec-decisions.md`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RatchetTreeOption {
    /// `full`: the whole tree.
    Full(RatchetTreeBytes),
    /// `distributionService`: the hub provides the tree.
    DistributionService,
}

wire_enum! {
    /// `RatchetTreeRepresentation` (the values this codec reads).
    pub enum RatchetTreeRepresentation: u8, "RatchetTreeRepresentation" {
        /// The whole tree.
        Full = 1,
        /// The distribution service (hub) provides it.
        DistributionService = 4,
    }
}

impl Size for RatchetTreeOption {
    fn tls_serialized_len(&self) -> usize {
        1 + match self {
            RatchetTreeOption::Full(t) => t.tls_serialized_len(),
            RatchetTreeOption::DistributionService => 0,
        }
    }
}

impl Serialize for RatchetTreeOption {
    fn tls_serialize<W: Write>(&self, w: &mut W) -> Result<usize, tls_codec::Error> {
        Ok(match self {
            RatchetTreeOption::Full(t) => {
                RatchetTreeRepresentation::Full.tls_serialize(w)? + t.tls_serialize(w)?
            }
            RatchetTreeOption::DistributionService => {
                RatchetTreeRepresentation::DistributionService.tls_serialize(w)?
            }
        })
    }
}

impl Deserialize for RatchetTreeOption {
    fn tls_deserialize<R: Read>(r: &mut R) -> Result<Self, tls_codec::Error> {
        Ok(match RatchetTreeRepresentation::tls_deserialize(r)? {
            RatchetTreeRepresentation::Full => {
                RatchetTreeOption::Full(RatchetTreeBytes::tls_deserialize(r)?)
            }
            RatchetTreeRepresentation::DistributionService => {
                RatchetTreeOption::DistributionService
            }
        })
    }
}

wire_enum! {
    /// `RatchetTreePresence` of a `PartialGroupInfo` (draft-mahy-mls-ratchet-tree-options).
    pub enum RatchetTreePresence: u8, "RatchetTreePresence" {
        /// No `ratchet_tree` extension in the GroupInfo.
        NoRatchetTree = 0,
        /// The GroupInfo had one.
        Present = 1,
        /// It was removed.
        Removed = 2,
        /// It was added.
        Added = 3,
    }
}

/// `PartialGroupInfo` (draft-mahy-mls-ratchet-tree-options): the parts of a GroupInfo a
/// server cannot compute itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct PartialGroupInfo {
    /// Whether the GroupInfo carries a ratchet tree.
    pub ratchet_tree_presence: RatchetTreePresence,
    /// `Extension group_info_extensions<V>`.
    pub group_info_extensions: BoundedVec<Extension, MAX_COMPONENTS>,
    /// `opaque signature<V>`.
    pub signature: Opaque<MAX_KEY_LEN>,
}
