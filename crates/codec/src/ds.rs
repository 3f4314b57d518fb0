//! The MIMI DS bodies that `ds.*` events and their responses carry, shaped after
//! draft-robert-mimi-delivery-service (`DSRequest`, `DSResponse`, `DSKeyPackage`,
//! `ExternalCommitInfo`), generalised to the main spec's proposal-commit model.
//!
//! Every request body travels inside a `DSRequest`: `DSProtocolVersion version;
//! DSRequestType request_type;`, the body, then `DSAuthData authentication_data` (always
//! `Unauthenticated` here); responses inside `DSProtocolVersion version; DSResponseType
//! response_type;`. [`crate::message`] writes both. MLS objects are kept as their bytes
//! ([`MlsBytes`]) and written as the texts write them: a bare `MLSMessage x;` with no prefix,
//! `MLSMessage x<V>` as one vector of bare messages, the ratchet tree as RFC 9420's one
//! `optional<Node> ratchet_tree<V>` ([`crate::mls_frame`]).

use tls_codec::{TlsDeserialize, TlsSerialize, TlsSize};

use crate::bounded::{BoundedVec, Opaque};
use crate::enums::wire_enum;
use crate::ident::{ClientId, UserId};
use crate::limits::*;

/// One serialized MLS object (MLSMessage, KeyPackage, GroupInfo, Welcome, ratchet tree).
pub type MlsBytes = Opaque<MAX_MLS_OBJECT_LEN>;

wire_enum! {
    /// The MIMI DS protocol version in every DS request and response.
    pub enum DsProtocolVersion: u16, "DSProtocolVersion" {
        /// MIMI DS 1.0.
        MimiDs10 = 1,
    }
}

wire_enum! {
    /// `DSRequestType`, numbered as the DS draft revision contemporaneous with the seed
    /// numbers it (draft-robert-mimi-delivery-service as of 2023-11-06: `ds_delete_group(0)`,
    /// `ds_proposals`, `ds_commits`, `ds_send_message`, `ds_key_packages`, `ds_group_info` in
    /// order). That revision has no group creation; `ds_create_group` takes a private number
    /// from the top of the range (`docs/spec-decisions.md`). `ds_delete_group` (0) is not an
    /// operation of this project and is refused as an unknown value.
    pub enum DsRequestType: u8, "DSRequestType" {
        /// `ds_proposals`: one or more proposals (`ds.proposal`).
        Proposal = 1,
        /// `ds_commits`: a commit bundle (`ds.commit`).
        Commit = 2,
        /// `ds_send_message` (`ds.send_message`).
        SendMessage = 3,
        /// `ds_key_packages` (`ds.fetch_key_packages`).
        KeyPackages = 4,
        /// `ds_group_info` (`ds.fetch_group_info`).
        GroupInfo = 5,
        /// `ds_create_group` (`ds.create_group`): this project's private number.
        CreateGroup = 240,
    }
}

wire_enum! {
    /// `DSResponseType` (`Ok`, `Error`, `WelcomeInfo`, `ExternalCommitInfo`, `KeyPackages`,
    /// numbered in order from 0 as the 2023-11-06 revision declares them; only the two a
    /// MIMI `EventResponse` carries are read).
    pub enum DsResponseType: u8, "DSResponseType" {
        /// `ExternalCommitInfo`: what a joiner needs.
        ExternalCommitInfo = 3,
        /// `KeyPackages`.
        KeyPackages = 4,
    }
}

wire_enum! {
    /// `DSAuthType` of the `DSAuthData` that ends every `DSRequest`.
    pub enum DsAuthType: u8, "DSAuthType" {
        /// `Unauthenticated`: what this project sends (MLS signatures and mutual TLS already
        /// authenticate every request; `docs/spec-decisions.md`).
        Unauthenticated = 0,
        /// `ClientSignature`: `uint32 sender_index; opaque signature<0..255>;` read and
        /// refused.
        ClientSignature = 1,
    }
}

wire_enum! {
    /// `DSKeyPackageType`.
    pub enum KeyPackageType: u8, "DSKeyPackageType" {
        /// An MLS KeyPackage.
        MlsKeyPackage = 0,
    }
}

/// `ds.create_group` (the DS draft's `CreateGroupRequest`, reduced to what a MIMI room
/// needs): the GroupInfo and ratchet tree of the room's group at epoch 0, as its creator
/// made it. The hub logs it right after the create event, so that every follower can
/// replay the group's public state from the start and check each later MLS message.
#[derive(Debug, Clone, PartialEq, Eq, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct CreateGroupRequest {
    /// The GroupInfo (an MLSMessage) of epoch 0.
    #[tls_codec(with = "crate::mls_frame::bare")]
    pub group_info: MlsBytes,
    /// The ratchet tree, TLS-encoded as in RFC 9420.
    #[tls_codec(with = "crate::mls_frame::ratchet_tree")]
    pub ratchet_tree: MlsBytes,
}

/// `ds.proposal`: one or more MLS proposals (MLSMessages) the sender asks the hub to queue
/// for the next commit.
#[derive(Debug, Clone, PartialEq, Eq, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct ProposalRequest {
    /// The proposals, each a PublicMessage.
    #[tls_codec(with = "crate::mls_frame::bare_vec")]
    pub proposals: BoundedVec<MlsBytes, MAX_MLS_MESSAGES>,
}

/// `ds.commit`: a commit and what the hub needs around it.
///
/// ```text
/// struct {
///   MLSMessage commit;
///   MLSMessage group_info;    // the GroupInfo of the new epoch, signed by the committer
///   MLSMessage welcomes<V>;   // Welcomes for the clients the commit adds
/// } CommitBundle;
/// ```
#[derive(Debug, Clone, PartialEq, Eq, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct CommitRequest {
    /// The commit (a PublicMessage).
    #[tls_codec(with = "crate::mls_frame::bare")]
    pub commit: MlsBytes,
    /// The GroupInfo of the epoch the commit creates: the hub serves it to joiners (the
    /// DS draft's full GroupInfo variant of `AssistedMLSMessage`).
    #[tls_codec(with = "crate::mls_frame::bare")]
    pub group_info: MlsBytes,
    /// Welcomes for added clients.
    #[tls_codec(with = "crate::mls_frame::bare_vec")]
    pub welcomes: BoundedVec<MlsBytes, MAX_MLS_MESSAGES>,
}

/// `ds.fetch_key_packages`: claim key packages of one user's clients at the user's server.
#[derive(Debug, Clone, PartialEq, Eq, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct KeyPackagesRequest {
    /// The MLS cipher suite the key packages must use.
    pub cipher_suite: u16,
    /// The user.
    pub user: UserId,
    /// Which of the user's clients; empty means all of them.
    pub clients: BoundedVec<ClientId, MAX_KEY_PACKAGES>,
}

/// `ds.fetch_group_info`: ask the hub for what a joiner needs. The room is the message's
/// room; the body is empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GroupInfoRequest;

impl tls_codec::Size for GroupInfoRequest {
    fn tls_serialized_len(&self) -> usize {
        0
    }
}

impl tls_codec::Serialize for GroupInfoRequest {
    fn tls_serialize<W: std::io::Write>(&self, _: &mut W) -> Result<usize, tls_codec::Error> {
        Ok(0)
    }
}

impl tls_codec::Deserialize for GroupInfoRequest {
    fn tls_deserialize<R: std::io::Read>(_: &mut R) -> Result<Self, tls_codec::Error> {
        Ok(GroupInfoRequest)
    }
}

/// `ds.send_message`: an application message (a PrivateMessage) for the room.
#[derive(Debug, Clone, PartialEq, Eq, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct SendMessageRequest {
    /// The application message.
    #[tls_codec(with = "crate::mls_frame::one_in_vec")]
    pub application_message: MlsBytes,
}

/// One claimed key package (`DSKeyPackage`, with the client it belongs to).
#[derive(Debug, Clone, PartialEq, Eq, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct KeyPackageEntry {
    /// The client.
    pub client: ClientId,
    /// The kind of key package.
    pub kind: KeyPackageType,
    /// The serialized KeyPackage (an MLSMessage of wire format mls_key_package).
    #[tls_codec(with = "crate::mls_frame::bare")]
    pub key_package: MlsBytes,
}

/// The `KeyPackages` DS response: one key package per requested client.
#[derive(Debug, Clone, PartialEq, Eq, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct KeyPackagesResponse {
    /// The key packages.
    pub key_packages: BoundedVec<KeyPackageEntry, MAX_KEY_PACKAGES>,
}

/// The `ExternalCommitInfo` DS response: the GroupInfo, the ratchet tree and the proposals
/// the hub has accepted in this epoch (the main spec: "the group info returned to the sender
/// includes any pending proposals").
#[derive(Debug, Clone, PartialEq, Eq, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct GroupInfoResponse {
    /// The GroupInfo (an MLSMessage), signed by the member who made the last commit.
    #[tls_codec(with = "crate::mls_frame::bare")]
    pub group_info: MlsBytes,
    /// The ratchet tree, TLS-encoded as in RFC 9420 (`optional<Node> ratchet_tree<V>`).
    #[tls_codec(with = "crate::mls_frame::ratchet_tree")]
    pub ratchet_tree: MlsBytes,
    /// Proposals accepted by the hub this epoch that the next commit must include.
    #[tls_codec(with = "crate::mls_frame::bare_vec")]
    pub pending_proposals: BoundedVec<MlsBytes, MAX_MLS_MESSAGES>,
}
