//! The -06 room and delivery endpoints: `keyMaterial` (§5.2), `update` (§5.3),
//! `submitMessage` (§5.4) with franking's `Frank`, `notify` (§5.5, `FanoutMessage`) and
//! `groupInfo` (§5.6).

use std::io::{Read, Write};

use tls_codec::{Deserialize, Serialize, Size, TlsDeserialize, TlsSerialize, TlsSize};

use super::Protocol;
use super::limits::*;
use super::mls::*;
use super::uri::{IdentifierUri, OptionalUri};
use crate::CodecError;
use crate::bounded::{BoundedVec, Opaque, Text};
use crate::enums::wire_enum;
use crate::error::park;
use crate::limits::{MAX_KEY_PACKAGES, MAX_MLS_MESSAGES, MAX_REASON_LEN};

/// A signature (`opaque signature<V>`).
pub type Signature = Opaque<MAX_KEY_LEN>;

fn wrong(field: &'static str, expected: &'static str, found: MlsMessageKind) -> tls_codec::Error {
    park(CodecError::WrongMlsMessage {
        field,
        expected,
        found: found.name(),
    })
}

// ---------------------------------------------------------------- keyMaterial (§5.2)

/// `KeyMaterialRequestTBS`: what `key_material_request_signature` signs (with the label
/// `"KeyMaterialRequestTBS"`).
#[derive(Debug, Clone, PartialEq, Eq, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct KeyMaterialRequestTbs {
    /// `mls10`.
    pub protocol: Protocol,
    /// The user on whose behalf key material is claimed.
    pub requesting_user: IdentifierUri,
    /// The user whose clients' key material is claimed.
    pub target_user: IdentifierUri,
    /// The room the key packages are for (an empty URI outside a room's context).
    pub room_id: OptionalUri,
    /// `CipherSuite acceptableCiphersuites<V>` (never empty).
    pub acceptable_ciphersuites: BoundedVec<CipherSuite, MAX_CIPHER_SUITES>,
    /// What the key packages must support.
    pub required_capabilities: RequiredCapabilities,
    /// The requester's signature key.
    pub requester_signature_key: SignaturePublicKey,
    /// The requester's credential.
    pub requester_credential: Credential,
}

/// `KeyMaterialRequest`, the body of `POST /keyMaterial/{targetUser}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMaterialRequest {
    /// Everything the signature covers.
    pub tbs: KeyMaterialRequestTbs,
    /// `SignWithLabel(requesterSignatureKey, "KeyMaterialRequestTBS", tbs)`.
    pub key_material_request_signature: Signature,
}

impl Size for KeyMaterialRequest {
    fn tls_serialized_len(&self) -> usize {
        self.tbs.tls_serialized_len() + self.key_material_request_signature.tls_serialized_len()
    }
}

impl Serialize for KeyMaterialRequest {
    fn tls_serialize<W: Write>(&self, w: &mut W) -> Result<usize, tls_codec::Error> {
        if self.tbs.acceptable_ciphersuites.is_empty() {
            return Err(park(CodecError::Empty("acceptableCiphersuites")));
        }
        Ok(self.tbs.tls_serialize(w)? + self.key_material_request_signature.tls_serialize(w)?)
    }
}

impl Deserialize for KeyMaterialRequest {
    fn tls_deserialize<R: Read>(r: &mut R) -> Result<Self, tls_codec::Error> {
        let tbs = KeyMaterialRequestTbs::tls_deserialize(r)?;
        if tbs.acceptable_ciphersuites.is_empty() {
            return Err(park(CodecError::Empty("acceptableCiphersuites")));
        }
        Ok(KeyMaterialRequest {
            tbs,
            key_material_request_signature: Signature::tls_deserialize(r)?,
        })
    }
}

wire_enum! {
    /// `KeyMaterialUserCode`.
    pub enum KeyMaterialUserCode: u8, "KeyMaterialUserCode" {
        /// Key material for every client.
        Success = 0,
        /// Key material for some clients.
        PartialSuccess = 1,
        /// The protocol is not supported.
        IncompatibleProtocol = 2,
        /// No client has material matching `requiredCapabilities`.
        NoCompatibleMaterial = 3,
        /// The user is not known.
        UserUnknown = 4,
        /// The requester has no consent.
        NoConsent = 5,
        /// The requester has no consent for this room.
        NoConsentForThisRoom = 6,
        /// The user was deleted.
        UserDeleted = 7,
    }
}

impl KeyMaterialUserCode {
    /// Whether the `clients` list may be populated with this code (§5.2: success,
    /// partialSuccess and noCompatibleMaterial; for any other code it MUST NOT be).
    ///
    /// Rule CODEC06-5 (docs/protocol-coverage.md).
    pub fn allows_clients(self) -> bool {
        matches!(
            self,
            KeyMaterialUserCode::Success
                | KeyMaterialUserCode::PartialSuccess
                | KeyMaterialUserCode::NoCompatibleMaterial
        )
    }
}

wire_enum! {
    /// `KeyMaterialClientCode`.
    pub enum KeyMaterialClientCode: u8, "KeyMaterialClientCode" {
        /// A key package follows.
        Success = 0,
        /// The client has no key material left.
        KeyMaterialExhausted = 1,
        /// Nothing matched `requiredCapabilities`; the client's capabilities may follow.
        NothingCompatible = 2,
    }
}

/// What one client's entry carries after its status (`select (clientStatus)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMaterial {
    /// `success`: a KeyPackage (bare, as -06 writes it).
    Success(KeyPackage),
    /// `keyMaterialExhausted`: nothing.
    KeyMaterialExhausted,
    /// `nothingCompatible`: `optional<Capabilities>` (omitted for privacy when `None`).
    NothingCompatible(Option<Capabilities>),
}

/// `ClientKeyMaterial`: one client's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientKeyMaterial {
    /// The client.
    pub client_uri: IdentifierUri,
    /// Its status and material.
    pub material: ClientMaterial,
}

impl ClientKeyMaterial {
    /// The `KeyMaterialClientCode` on the wire.
    pub fn client_status(&self) -> KeyMaterialClientCode {
        match self.material {
            ClientMaterial::Success(_) => KeyMaterialClientCode::Success,
            ClientMaterial::KeyMaterialExhausted => KeyMaterialClientCode::KeyMaterialExhausted,
            ClientMaterial::NothingCompatible(_) => KeyMaterialClientCode::NothingCompatible,
        }
    }
}

impl Size for ClientKeyMaterial {
    fn tls_serialized_len(&self) -> usize {
        1 + self.client_uri.tls_serialized_len()
            + match &self.material {
                ClientMaterial::Success(kp) => kp.tls_serialized_len(),
                ClientMaterial::KeyMaterialExhausted => 0,
                ClientMaterial::NothingCompatible(c) => c.tls_serialized_len(),
            }
    }
}

impl Serialize for ClientKeyMaterial {
    fn tls_serialize<W: Write>(&self, w: &mut W) -> Result<usize, tls_codec::Error> {
        let mut n = self.client_status().tls_serialize(w)?;
        n += self.client_uri.tls_serialize(w)?;
        n += match &self.material {
            ClientMaterial::Success(kp) => kp.tls_serialize(w)?,
            ClientMaterial::KeyMaterialExhausted => 0,
            ClientMaterial::NothingCompatible(c) => c.tls_serialize(w)?,
        };
        Ok(n)
    }
}

impl Deserialize for ClientKeyMaterial {
    fn tls_deserialize<R: Read>(r: &mut R) -> Result<Self, tls_codec::Error> {
        let status = KeyMaterialClientCode::tls_deserialize(r)?;
        let client_uri = IdentifierUri::tls_deserialize(r)?;
        let material = match status {
            KeyMaterialClientCode::Success => {
                ClientMaterial::Success(KeyPackage::tls_deserialize(r)?)
            }
            KeyMaterialClientCode::KeyMaterialExhausted => ClientMaterial::KeyMaterialExhausted,
            KeyMaterialClientCode::NothingCompatible => {
                ClientMaterial::NothingCompatible(Option::<Capabilities>::tls_deserialize(r)?)
            }
        };
        Ok(ClientKeyMaterial {
            client_uri,
            material,
        })
    }
}

/// `KeyMaterialResponse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMaterialResponse {
    /// `mls10`.
    pub protocol: Protocol,
    /// The user-level outcome.
    pub user_status: KeyMaterialUserCode,
    /// The target user.
    pub user_uri: IdentifierUri,
    /// Per-client results (empty unless [`KeyMaterialUserCode::allows_clients`]).
    pub clients: BoundedVec<ClientKeyMaterial, MAX_KEY_PACKAGES>,
}

fn check_clients(code: KeyMaterialUserCode, n: usize) -> Result<(), tls_codec::Error> {
    if n > 0 && !code.allows_clients() {
        return Err(park(CodecError::Malformed(format!(
            "KeyMaterialResponse with user code {code:?} must not list clients"
        ))));
    }
    Ok(())
}

impl Size for KeyMaterialResponse {
    fn tls_serialized_len(&self) -> usize {
        1 + 1 + self.user_uri.tls_serialized_len() + self.clients.tls_serialized_len()
    }
}

impl Serialize for KeyMaterialResponse {
    fn tls_serialize<W: Write>(&self, w: &mut W) -> Result<usize, tls_codec::Error> {
        check_clients(self.user_status, self.clients.len())?;
        Ok(self.protocol.tls_serialize(w)?
            + self.user_status.tls_serialize(w)?
            + self.user_uri.tls_serialize(w)?
            + self.clients.tls_serialize(w)?)
    }
}

impl Deserialize for KeyMaterialResponse {
    fn tls_deserialize<R: Read>(r: &mut R) -> Result<Self, tls_codec::Error> {
        let protocol = Protocol::tls_deserialize(r)?;
        let user_status = KeyMaterialUserCode::tls_deserialize(r)?;
        let user_uri = IdentifierUri::tls_deserialize(r)?;
        let clients = BoundedVec::tls_deserialize(r)?;
        check_clients(user_status, clients.len())?;
        Ok(KeyMaterialResponse {
            protocol,
            user_status,
            user_uri,
            clients,
        })
    }
}

// ---------------------------------------------------------------- update (§5.3)

wire_enum! {
    /// `GroupInfoRepresentation`.
    pub enum GroupInfoRepresentation: u8, "GroupInfoRepresentation" {
        /// The whole GroupInfo.
        Full = 1,
        /// A `PartialGroupInfo`; the hub rebuilds the GroupInfo.
        Partial = 2,
    }
}

/// `GroupInfoOption`: the GroupInfo of the epoch a commit creates, whole or partial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupInfoOption {
    /// `full`: a bare GroupInfo (without its ratchet_tree extension).
    Full(GroupInfo),
    /// `partial`.
    Partial(PartialGroupInfo),
}

impl Size for GroupInfoOption {
    fn tls_serialized_len(&self) -> usize {
        1 + match self {
            GroupInfoOption::Full(g) => g.tls_serialized_len(),
            GroupInfoOption::Partial(p) => p.tls_serialized_len(),
        }
    }
}

impl Serialize for GroupInfoOption {
    fn tls_serialize<W: Write>(&self, w: &mut W) -> Result<usize, tls_codec::Error> {
        Ok(match self {
            GroupInfoOption::Full(g) => {
                GroupInfoRepresentation::Full.tls_serialize(w)? + g.tls_serialize(w)?
            }
            GroupInfoOption::Partial(p) => {
                GroupInfoRepresentation::Partial.tls_serialize(w)? + p.tls_serialize(w)?
            }
        })
    }
}

impl Deserialize for GroupInfoOption {
    fn tls_deserialize<R: Read>(r: &mut R) -> Result<Self, tls_codec::Error> {
        Ok(match GroupInfoRepresentation::tls_deserialize(r)? {
            GroupInfoRepresentation::Full => GroupInfoOption::Full(GroupInfo::tls_deserialize(r)?),
            GroupInfoRepresentation::Partial => {
                GroupInfoOption::Partial(PartialGroupInfo::tls_deserialize(r)?)
            }
        })
    }
}

/// MLS messages bundled after a proposal (`MLSMessage moreProposals<V>`): each a proposal
/// PublicMessage.
pub type MoreProposals = BoundedVec<MlsMessage, MAX_MLS_MESSAGES>;

fn check_proposals(field: &'static str, list: &MoreProposals) -> Result<(), tls_codec::Error> {
    for m in list {
        if m.kind() != MlsMessageKind::PublicMessage(ContentType::Proposal) {
            return Err(wrong(field, "a proposal PublicMessage", m.kind()));
        }
    }
    Ok(())
}

/// `HandshakeBundle` (the whole `UpdateRequest` for `mls10`: the request has no protocol
/// field of its own, the room's protocol selects it).
///
/// The `proposalOrCommit` must be a PublicMessage (`SemiPrivateMessage` has no wire format
/// value yet); its content type selects the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateRequest {
    /// A commit with what the hub needs to serve joiners.
    Commit {
        /// The commit (a PublicMessage).
        commit: MlsMessage,
        /// `optional<Welcome>`, bare, without the ratchet tree.
        welcome: Option<Welcome>,
        /// The new epoch's GroupInfo.
        group_info_option: GroupInfoOption,
        /// How the ratchet tree is conveyed.
        ratchet_tree_option: RatchetTreeOption,
    },
    /// One or more proposals.
    Proposal {
        /// The first proposal (a PublicMessage).
        proposal: MlsMessage,
        /// The others.
        more_proposals: MoreProposals,
    },
}

impl Size for UpdateRequest {
    fn tls_serialized_len(&self) -> usize {
        match self {
            UpdateRequest::Commit {
                commit,
                welcome,
                group_info_option,
                ratchet_tree_option,
            } => {
                commit.tls_serialized_len()
                    + welcome.tls_serialized_len()
                    + group_info_option.tls_serialized_len()
                    + ratchet_tree_option.tls_serialized_len()
            }
            UpdateRequest::Proposal {
                proposal,
                more_proposals,
            } => proposal.tls_serialized_len() + more_proposals.tls_serialized_len(),
        }
    }
}

impl Serialize for UpdateRequest {
    fn tls_serialize<W: Write>(&self, w: &mut W) -> Result<usize, tls_codec::Error> {
        match self {
            UpdateRequest::Commit {
                commit,
                welcome,
                group_info_option,
                ratchet_tree_option,
            } => {
                if commit.kind() != MlsMessageKind::PublicMessage(ContentType::Commit) {
                    return Err(wrong(
                        "proposalOrCommit",
                        "a commit PublicMessage",
                        commit.kind(),
                    ));
                }
                Ok(commit.tls_serialize(w)?
                    + welcome.tls_serialize(w)?
                    + group_info_option.tls_serialize(w)?
                    + ratchet_tree_option.tls_serialize(w)?)
            }
            UpdateRequest::Proposal {
                proposal,
                more_proposals,
            } => {
                if proposal.kind() != MlsMessageKind::PublicMessage(ContentType::Proposal) {
                    return Err(wrong(
                        "proposalOrCommit",
                        "a proposal PublicMessage",
                        proposal.kind(),
                    ));
                }
                check_proposals("moreProposals", more_proposals)?;
                Ok(proposal.tls_serialize(w)? + more_proposals.tls_serialize(w)?)
            }
        }
    }
}

impl Deserialize for UpdateRequest {
    fn tls_deserialize<R: Read>(r: &mut R) -> Result<Self, tls_codec::Error> {
        let first = MlsMessage::tls_deserialize(r)?;
        match first.kind() {
            MlsMessageKind::PublicMessage(ContentType::Commit) => Ok(UpdateRequest::Commit {
                commit: first,
                welcome: Option::<Welcome>::tls_deserialize(r)?,
                group_info_option: GroupInfoOption::tls_deserialize(r)?,
                ratchet_tree_option: RatchetTreeOption::tls_deserialize(r)?,
            }),
            MlsMessageKind::PublicMessage(ContentType::Proposal) => {
                let more_proposals = MoreProposals::tls_deserialize(r)?;
                check_proposals("moreProposals", &more_proposals)?;
                Ok(UpdateRequest::Proposal {
                    proposal: first,
                    more_proposals,
                })
            }
            other => Err(wrong(
                "proposalOrCommit",
                "a proposal or commit PublicMessage",
                other,
            )),
        }
    }
}

wire_enum! {
    /// `UpdateResponseCode`.
    pub enum UpdateResponseCode: u8, "UpdateResponseCode" {
        /// Accepted; it will be distributed.
        Success = 0,
        /// The hub is at another epoch.
        WrongEpoch = 1,
        /// Policy or authorization refused it.
        NotAllowed = 2,
        /// At least one proposal is invalid.
        InvalidProposal = 3,
    }
}

/// What an `UpdateRoomResponse` carries after its description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// `success` with the hub's acceptance time (ms since the UNIX epoch).
    Success {
        /// `accepted_timestamp`.
        accepted_timestamp: u64,
    },
    /// `wrongEpoch` with the group's current epoch.
    WrongEpoch {
        /// `currentEpoch`.
        current_epoch: u64,
    },
    /// `notAllowed`.
    NotAllowed,
    /// `invalidProposal` with the refs of the invalid proposals.
    InvalidProposal {
        /// `ProposalRef invalidProposals<V>`.
        invalid_proposals: BoundedVec<ProposalRef, MAX_MLS_MESSAGES>,
    },
}

/// `UpdateRoomResponse` (the -06 text also calls it `UpdateResponse`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateResponse {
    /// `string errorDescription` (UTF-8 in `opaque<V>`; empty on success).
    pub error_description: Text<MAX_REASON_LEN>,
    /// The code and what it carries.
    pub outcome: UpdateOutcome,
}

impl UpdateResponse {
    /// The `UpdateResponseCode` on the wire.
    pub fn response_code(&self) -> UpdateResponseCode {
        match self.outcome {
            UpdateOutcome::Success { .. } => UpdateResponseCode::Success,
            UpdateOutcome::WrongEpoch { .. } => UpdateResponseCode::WrongEpoch,
            UpdateOutcome::NotAllowed => UpdateResponseCode::NotAllowed,
            UpdateOutcome::InvalidProposal { .. } => UpdateResponseCode::InvalidProposal,
        }
    }
}

impl Size for UpdateResponse {
    fn tls_serialized_len(&self) -> usize {
        1 + self.error_description.tls_serialized_len()
            + match &self.outcome {
                UpdateOutcome::Success { .. } | UpdateOutcome::WrongEpoch { .. } => 8,
                UpdateOutcome::NotAllowed => 0,
                UpdateOutcome::InvalidProposal { invalid_proposals } => {
                    invalid_proposals.tls_serialized_len()
                }
            }
    }
}

impl Serialize for UpdateResponse {
    fn tls_serialize<W: Write>(&self, w: &mut W) -> Result<usize, tls_codec::Error> {
        let mut n = self.response_code().tls_serialize(w)?;
        n += self.error_description.tls_serialize(w)?;
        n += match &self.outcome {
            UpdateOutcome::Success { accepted_timestamp } => accepted_timestamp.tls_serialize(w)?,
            UpdateOutcome::WrongEpoch { current_epoch } => current_epoch.tls_serialize(w)?,
            UpdateOutcome::NotAllowed => 0,
            UpdateOutcome::InvalidProposal { invalid_proposals } => {
                invalid_proposals.tls_serialize(w)?
            }
        };
        Ok(n)
    }
}

impl Deserialize for UpdateResponse {
    fn tls_deserialize<R: Read>(r: &mut R) -> Result<Self, tls_codec::Error> {
        let code = UpdateResponseCode::tls_deserialize(r)?;
        let error_description = Text::tls_deserialize(r)?;
        let outcome = match code {
            UpdateResponseCode::Success => UpdateOutcome::Success {
                accepted_timestamp: u64::tls_deserialize(r)?,
            },
            UpdateResponseCode::WrongEpoch => UpdateOutcome::WrongEpoch {
                current_epoch: u64::tls_deserialize(r)?,
            },
            UpdateResponseCode::NotAllowed => UpdateOutcome::NotAllowed,
            UpdateResponseCode::InvalidProposal => UpdateOutcome::InvalidProposal {
                invalid_proposals: BoundedVec::tls_deserialize(r)?,
            },
        };
        Ok(UpdateResponse {
            error_description,
            outcome,
        })
    }
}

// ---------------------------------------------------------------- submitMessage (§5.4)

/// `SubmitMessageRequest`, the body of `POST /submitMessage/{roomId}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitMessageRequest {
    /// `mls10`.
    pub protocol: Protocol,
    /// An application PrivateMessage (bare `MLSMessage`).
    pub app_message: MlsMessage,
    /// The sender's URI (a participant of the room).
    pub sending_uri: IdentifierUri,
}

/// Rule CODEC06-4 (docs/protocol-coverage.md).
fn check_application(field: &'static str, m: &MlsMessage) -> Result<(), tls_codec::Error> {
    if m.kind() != MlsMessageKind::PrivateMessage(ContentType::Application) {
        return Err(wrong(field, "an application PrivateMessage", m.kind()));
    }
    Ok(())
}

impl Size for SubmitMessageRequest {
    fn tls_serialized_len(&self) -> usize {
        1 + self.app_message.tls_serialized_len() + self.sending_uri.tls_serialized_len()
    }
}

impl Serialize for SubmitMessageRequest {
    fn tls_serialize<W: Write>(&self, w: &mut W) -> Result<usize, tls_codec::Error> {
        check_application("appMessage", &self.app_message)?;
        Ok(self.protocol.tls_serialize(w)?
            + self.app_message.tls_serialize(w)?
            + self.sending_uri.tls_serialize(w)?)
    }
}

impl Deserialize for SubmitMessageRequest {
    fn tls_deserialize<R: Read>(r: &mut R) -> Result<Self, tls_codec::Error> {
        let protocol = Protocol::tls_deserialize(r)?;
        let app_message = MlsMessage::tls_deserialize(r)?;
        check_application("appMessage", &app_message)?;
        Ok(SubmitMessageRequest {
            protocol,
            app_message,
            sending_uri: IdentifierUri::tls_deserialize(r)?,
        })
    }
}

/// `Frank`: the hub's stamp on an accepted application message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct Frank {
    /// `uint8 server_frank[32]`.
    pub server_frank: [u8; 32],
    /// The MLS cipher suite whose signature algorithm signed it.
    pub franking_signature_ciphersuite: CipherSuite,
    /// `SignWithLabel(franking_private_key, "FrankingIntegrityTBS", FrankingIntegrityTBS)`.
    pub franking_integrity_signature: Signature,
}

wire_enum! {
    /// `SubmitResponseCode`.
    pub enum SubmitResponseCode: u8, "SubmitResponseCode" {
        /// Accepted; it will be distributed (the text's `select` calls it `success`).
        Accepted = 0,
        /// Policy or authorization refused it.
        NotAllowed = 1,
        /// The message's epoch is older than the hub's.
        EpochTooOld = 2,
    }
}

/// What a `SubmitMessageResponse` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitOutcome {
    /// `accepted` with the acceptance time and, when the message was franked, the frank.
    Accepted {
        /// `accepted_timestamp` (ms since the UNIX epoch).
        accepted_timestamp: u64,
        /// `optional Frank frank`.
        frank: Option<Frank>,
    },
    /// `notAllowed`.
    NotAllowed,
    /// `epochTooOld` with the group's current epoch.
    EpochTooOld {
        /// `currentEpoch`.
        current_epoch: u64,
    },
}

/// `SubmitMessageResponse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitMessageResponse {
    /// `mls10`.
    pub protocol: Protocol,
    /// The outcome.
    pub outcome: SubmitOutcome,
}

impl SubmitMessageResponse {
    /// The `SubmitResponseCode` on the wire.
    pub fn status_code(&self) -> SubmitResponseCode {
        match self.outcome {
            SubmitOutcome::Accepted { .. } => SubmitResponseCode::Accepted,
            SubmitOutcome::NotAllowed => SubmitResponseCode::NotAllowed,
            SubmitOutcome::EpochTooOld { .. } => SubmitResponseCode::EpochTooOld,
        }
    }
}

impl Size for SubmitMessageResponse {
    fn tls_serialized_len(&self) -> usize {
        2 + match &self.outcome {
            SubmitOutcome::Accepted { frank, .. } => 8 + frank.tls_serialized_len(),
            SubmitOutcome::NotAllowed => 0,
            SubmitOutcome::EpochTooOld { .. } => 8,
        }
    }
}

impl Serialize for SubmitMessageResponse {
    fn tls_serialize<W: Write>(&self, w: &mut W) -> Result<usize, tls_codec::Error> {
        let mut n = self.protocol.tls_serialize(w)? + self.status_code().tls_serialize(w)?;
        n += match &self.outcome {
            SubmitOutcome::Accepted {
                accepted_timestamp,
                frank,
            } => accepted_timestamp.tls_serialize(w)? + frank.tls_serialize(w)?,
            SubmitOutcome::NotAllowed => 0,
            SubmitOutcome::EpochTooOld { current_epoch } => current_epoch.tls_serialize(w)?,
        };
        Ok(n)
    }
}

impl Deserialize for SubmitMessageResponse {
    fn tls_deserialize<R: Read>(r: &mut R) -> Result<Self, tls_codec::Error> {
        let protocol = Protocol::tls_deserialize(r)?;
        let outcome = match SubmitResponseCode::tls_deserialize(r)? {
            SubmitResponseCode::Accepted => SubmitOutcome::Accepted {
                accepted_timestamp: u64::tls_deserialize(r)?,
                frank: Option::<Frank>::tls_deserialize(r)?,
            },
            SubmitResponseCode::NotAllowed => SubmitOutcome::NotAllowed,
            SubmitResponseCode::EpochTooOld => SubmitOutcome::EpochTooOld {
                current_epoch: u64::tls_deserialize(r)?,
            },
        };
        Ok(SubmitMessageResponse { protocol, outcome })
    }
}

// ---------------------------------------------------------------- notify (§5.5)

/// What a `FanoutMessage` carries after its `message`, selected by the message's kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FanoutExtra {
    /// After an application PrivateMessage: `optional Frank frank`.
    Application {
        /// The hub's frank, if the message was franked.
        frank: Option<Frank>,
    },
    /// After a Welcome (an `MLSMessage` of wire format `mls_welcome`): `RatchetTreeOption`.
    Welcome {
        /// How the joiner gets the ratchet tree.
        ratchet_tree_option: RatchetTreeOption,
    },
    /// After a proposal PublicMessage: `MLSMessage moreProposals<V>`.
    Proposal {
        /// The other proposals of the same `update`.
        more_proposals: MoreProposals,
    },
    /// After a commit PublicMessage: `MLSMessage externalProposals<V>`.
    Commit {
        /// The hub's replacement proposals stapled to an external commit.
        external_proposals: MoreProposals,
    },
}

/// `FanoutMessage`: one message fanned out by the hub. The -06 struct has no `protocol`
/// field before its `select (protocol)`: this codec follows the struct as written (the
/// timestamp first, `mls10` implied by the room, see `docs/spec-decisions.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FanoutMessage {
    /// The hub's acceptance time (ms since the UNIX epoch).
    pub timestamp: u64,
    /// The message.
    pub message: MlsMessage,
    /// What follows it.
    pub extra: FanoutExtra,
}

fn check_fanout(m: &MlsMessage, extra: &FanoutExtra) -> Result<(), tls_codec::Error> {
    let ok = match (m.kind(), extra) {
        (
            MlsMessageKind::PrivateMessage(ContentType::Application),
            FanoutExtra::Application { .. },
        ) => true,
        (MlsMessageKind::Welcome, FanoutExtra::Welcome { .. }) => true,
        (
            MlsMessageKind::PublicMessage(ContentType::Proposal),
            FanoutExtra::Proposal { more_proposals },
        ) => {
            check_proposals("moreProposals", more_proposals)?;
            true
        }
        (
            MlsMessageKind::PublicMessage(ContentType::Commit),
            FanoutExtra::Commit { external_proposals },
        ) => {
            check_proposals("externalProposals", external_proposals)?;
            true
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(wrong(
            "FanoutMessage.message",
            "the kind its extra fields are for",
            m.kind(),
        ))
    }
}

impl Size for FanoutMessage {
    fn tls_serialized_len(&self) -> usize {
        8 + self.message.tls_serialized_len()
            + match &self.extra {
                FanoutExtra::Application { frank } => frank.tls_serialized_len(),
                FanoutExtra::Welcome {
                    ratchet_tree_option,
                } => ratchet_tree_option.tls_serialized_len(),
                FanoutExtra::Proposal { more_proposals: p }
                | FanoutExtra::Commit {
                    external_proposals: p,
                } => p.tls_serialized_len(),
            }
    }
}

impl Serialize for FanoutMessage {
    fn tls_serialize<W: Write>(&self, w: &mut W) -> Result<usize, tls_codec::Error> {
        check_fanout(&self.message, &self.extra)?;
        let mut n = self.timestamp.tls_serialize(w)? + self.message.tls_serialize(w)?;
        n += match &self.extra {
            FanoutExtra::Application { frank } => frank.tls_serialize(w)?,
            FanoutExtra::Welcome {
                ratchet_tree_option,
            } => ratchet_tree_option.tls_serialize(w)?,
            FanoutExtra::Proposal { more_proposals: p }
            | FanoutExtra::Commit {
                external_proposals: p,
            } => p.tls_serialize(w)?,
        };
        Ok(n)
    }
}

impl Deserialize for FanoutMessage {
    fn tls_deserialize<R: Read>(r: &mut R) -> Result<Self, tls_codec::Error> {
        let timestamp = u64::tls_deserialize(r)?;
        let message = MlsMessage::tls_deserialize(r)?;
        let extra = match message.kind() {
            MlsMessageKind::PrivateMessage(ContentType::Application) => FanoutExtra::Application {
                frank: Option::<Frank>::tls_deserialize(r)?,
            },
            MlsMessageKind::Welcome => FanoutExtra::Welcome {
                ratchet_tree_option: RatchetTreeOption::tls_deserialize(r)?,
            },
            MlsMessageKind::PublicMessage(ContentType::Proposal) => FanoutExtra::Proposal {
                more_proposals: MoreProposals::tls_deserialize(r)?,
            },
            MlsMessageKind::PublicMessage(ContentType::Commit) => FanoutExtra::Commit {
                external_proposals: MoreProposals::tls_deserialize(r)?,
            },
            other => {
                return Err(wrong(
                    "FanoutMessage.message",
                    "an application PrivateMessage, a Welcome, or a proposal or commit PublicMessage",
                    other,
                ));
            }
        };
        check_fanout(&message, &extra)?;
        Ok(FanoutMessage {
            timestamp,
            message,
            extra,
        })
    }
}

/// The body of `POST /notify/{roomId}`: one or more `FanoutMessage`s concatenated (at most
/// [`MAX_FANOUT_MESSAGES`]). Decoding reads messages until the input ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyBody {
    /// The messages, in the hub's order.
    pub messages: Vec<FanoutMessage>,
}

impl Size for NotifyBody {
    fn tls_serialized_len(&self) -> usize {
        self.messages.iter().map(Size::tls_serialized_len).sum()
    }
}

impl Serialize for NotifyBody {
    fn tls_serialize<W: Write>(&self, w: &mut W) -> Result<usize, tls_codec::Error> {
        if self.messages.is_empty() {
            return Err(park(CodecError::Empty("notify body")));
        }
        if self.messages.len() > MAX_FANOUT_MESSAGES {
            return Err(park(CodecError::TooLong {
                len: self.messages.len(),
                max: MAX_FANOUT_MESSAGES,
            }));
        }
        let mut n = 0;
        for m in &self.messages {
            n += m.tls_serialize(w)?;
        }
        Ok(n)
    }
}

/// Rule CODEC06-6 (docs/protocol-coverage.md).
impl Deserialize for NotifyBody {
    fn tls_deserialize<R: Read>(r: &mut R) -> Result<Self, tls_codec::Error> {
        let mut messages = Vec::new();
        loop {
            let mut first = [0u8; 1];
            if r.read(&mut first)? == 0 {
                break;
            }
            if messages.len() == MAX_FANOUT_MESSAGES {
                return Err(park(CodecError::TooLong {
                    len: MAX_FANOUT_MESSAGES + 1,
                    max: MAX_FANOUT_MESSAGES,
                }));
            }
            let mut chained = (&first[..]).chain(&mut *r);
            messages.push(FanoutMessage::tls_deserialize(&mut chained)?);
        }
        if messages.is_empty() {
            return Err(park(CodecError::Empty("notify body")));
        }
        Ok(NotifyBody { messages })
    }
}

// ---------------------------------------------------------------- groupInfo (§5.6)

/// `GroupInfoRequestTBS`: what the request's signature covers (label
/// `"GroupInfoRequestTBS"`). The joining code is `optional` here; see
/// [`GroupInfoRequest::tbs`].
#[derive(Debug, Clone, PartialEq, Eq, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct GroupInfoRequestTbs {
    /// `mls10`.
    pub protocol: Protocol,
    /// A cipher suite in common with the hub (for the request's and response's signatures).
    pub cipher_suite: CipherSuite,
    /// The requester's signature key.
    pub requesting_signature_key: SignaturePublicKey,
    /// The requester's credential.
    pub requesting_credential: Credential,
    /// The key the hub encrypts the GroupInfo and tree to.
    pub group_info_public_key: HpkePublicKey,
    /// `optional opaque joiningCode<V>`.
    pub joining_code: Option<Opaque<MAX_JOINING_CODE_LEN>>,
}

/// `GroupInfoRequest`, the body of `POST /groupInfo/{roomId}`. On the wire the joining code
/// is `opaque joiningCode<V>` (empty when there is none).
#[derive(Debug, Clone, PartialEq, Eq, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct GroupInfoRequest {
    /// `mls10`.
    pub protocol: Protocol,
    /// A cipher suite in common with the hub.
    pub cipher_suite: CipherSuite,
    /// The requester's signature key.
    pub requesting_signature_key: SignaturePublicKey,
    /// The requester's credential.
    pub requesting_credential: Credential,
    /// The key the hub encrypts the GroupInfo and tree to.
    pub group_info_public_key: HpkePublicKey,
    /// The joining code, empty when none.
    pub joining_code: Opaque<MAX_JOINING_CODE_LEN>,
    /// `SignWithLabel(requestingSignatureKey, "GroupInfoRequestTBS", GroupInfoRequestTBS)`.
    pub signature: Signature,
}

impl GroupInfoRequest {
    /// The TBS this request's signature covers: the joining code present exactly when the
    /// request's is not empty.
    pub fn tbs(&self) -> GroupInfoRequestTbs {
        GroupInfoRequestTbs {
            protocol: self.protocol,
            cipher_suite: self.cipher_suite,
            requesting_signature_key: self.requesting_signature_key.clone(),
            requesting_credential: self.requesting_credential.clone(),
            group_info_public_key: self.group_info_public_key.clone(),
            joining_code: (!self.joining_code.is_empty()).then(|| self.joining_code.clone()),
        }
    }
}

wire_enum! {
    /// `GroupInfoCode`.
    pub enum GroupInfoCode: u8, "GroupInfoCode" {
        /// The GroupInfo and tree follow.
        Success = 1,
        /// The requester may not have them.
        NotAuthorized = 2,
        /// No such room.
        NoSuchRoom = 3,
    }
}

/// `PendingProposal`: a proposal the hub accepted this epoch, with its acceptance time.
#[derive(Debug, Clone, PartialEq, Eq, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct PendingProposal {
    /// The proposal.
    pub proposal: MlsMessage,
    /// When the hub accepted it (ms since the UNIX epoch).
    pub hub_accepted_time: u64,
}

/// `GroupInfoRatchetTreeTBE`: what the hub encrypts to `groupInfoPublicKey` (label
/// `"GroupInfo and ratchet_tree encryption"`, context the room ID).
#[derive(Debug, Clone, PartialEq, Eq, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct GroupInfoRatchetTreeTbe {
    /// The GroupInfo, without an embedded ratchet tree.
    pub group_info: GroupInfo,
    /// How to get the ratchet tree.
    pub ratchet_tree_option: RatchetTreeOption,
    /// The valid proposals the hub accepted in the current epoch.
    pub pending_proposals: BoundedVec<PendingProposal, MAX_MLS_MESSAGES>,
}

/// The `mls10` part of a successful `GroupInfoResponse` before its signature.
#[derive(Debug, Clone, PartialEq, Eq, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct GroupInfoSuccess {
    /// The cipher suite of the request.
    pub cipher_suite: CipherSuite,
    /// The hub's external sender (its signature key signs the response).
    pub hub_sender: ExternalSender,
    /// `EncryptWithLabel(groupInfoPublicKey, ..., GroupInfoRatchetTreeTBE)`.
    pub encrypted_groupinfo_and_tree: HpkeCiphertext,
}

/// `GroupInfoResponseTBS` (label `"GroupInfoResponseTBS"`): the success fields with the
/// header.
#[derive(Debug, Clone, PartialEq, Eq, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct GroupInfoResponseTbs {
    /// `mls10`.
    pub version: Protocol,
    /// The room.
    pub room_id: IdentifierUri,
    /// `success`.
    pub status: GroupInfoCode,
    /// The signed fields.
    pub body: GroupInfoSuccess,
}

/// `GroupInfoResponse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfoResponse {
    /// `mls10` (the text names the field `version`).
    pub version: Protocol,
    /// The room (`opaque room_id<V>`, a room URI).
    pub room_id: IdentifierUri,
    /// The outcome: `Ok` with the signed success fields, or the failure code.
    pub result: Result<(GroupInfoSuccess, Signature), GroupInfoCode>,
}

impl GroupInfoResponse {
    /// The status code on the wire.
    pub fn status(&self) -> GroupInfoCode {
        match &self.result {
            Ok(_) => GroupInfoCode::Success,
            Err(code) => *code,
        }
    }

    /// What the hub signs, for a success.
    pub fn tbs(&self) -> Option<GroupInfoResponseTbs> {
        self.result
            .as_ref()
            .ok()
            .map(|(body, _)| GroupInfoResponseTbs {
                version: self.version,
                room_id: self.room_id.clone(),
                status: GroupInfoCode::Success,
                body: body.clone(),
            })
    }
}

impl Size for GroupInfoResponse {
    fn tls_serialized_len(&self) -> usize {
        1 + self.room_id.tls_serialized_len()
            + 1
            + match &self.result {
                Ok((body, sig)) => body.tls_serialized_len() + sig.tls_serialized_len(),
                Err(_) => 0,
            }
    }
}

impl Serialize for GroupInfoResponse {
    fn tls_serialize<W: Write>(&self, w: &mut W) -> Result<usize, tls_codec::Error> {
        if self.result == Err(GroupInfoCode::Success) {
            return Err(park(CodecError::Malformed(
                "a success GroupInfoResponse needs its body".into(),
            )));
        }
        let mut n = self.version.tls_serialize(w)?
            + self.room_id.tls_serialize(w)?
            + self.status().tls_serialize(w)?;
        if let Ok((body, sig)) = &self.result {
            n += body.tls_serialize(w)? + sig.tls_serialize(w)?;
        }
        Ok(n)
    }
}

impl Deserialize for GroupInfoResponse {
    fn tls_deserialize<R: Read>(r: &mut R) -> Result<Self, tls_codec::Error> {
        let version = Protocol::tls_deserialize(r)?;
        let room_id = IdentifierUri::tls_deserialize(r)?;
        let result = match GroupInfoCode::tls_deserialize(r)? {
            GroupInfoCode::Success => Ok((
                GroupInfoSuccess::tls_deserialize(r)?,
                Signature::tls_deserialize(r)?,
            )),
            other => Err(other),
        };
        Ok(GroupInfoResponse {
            version,
            room_id,
            result,
        })
    }
}
