//! [`MlsClient`]: one MIMI client device's MLS state and operations.
//!
//! Every method is synchronous and does no network I/O: it takes MLS bytes and returns MLS
//! bytes (or a [`CommitRequest`] for the hub); the caller moves them. State changes are
//! written to the client's [`RedbStorage`] by openmls as they happen.
//!
//! Commits are two-phase, as the hub decides: [`MlsClient::commit`] stages a commit and
//! returns the bundle; after the hub accepts it call [`MlsClient::merge_pending_commit`],
//! after a refusal [`MlsClient::clear_pending_commit`]. A client never processes its own
//! commit.

use std::collections::HashMap;
use std::path::Path;

use mimi_codec::{
    BoundedVec, ClientId, CommitRequest, MlsBytes, RoomId, RoomState, UserEvent, UserId, Wire,
};
use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::RustCrypto;
use openmls_traits::OpenMlsProvider;
use openmls_traits::storage::StorageProvider as _;

mod v06;

pub use v06::{Commit06, Plan06, Processed06};

use crate::error::{E2eError, MlsObject, Operation};
use crate::identity::parse_follower_certificate;
use crate::storage::RedbStorage;
use mimi_mls_binding::{
    client_id_from_credential, credential_for, mimi_capabilities, mimi_required_capabilities,
    room_state_bytes_of, room_state_extension, room_state_extension_from_bytes,
    user_event_proposal,
};

/// The MLS cipher suite of MIMI rooms
/// (`mimi_codec::mls_ids::DEFAULT_CIPHER_SUITE`, MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519).
pub const CIPHERSUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

/// The name of the database file inside a client's directory.
pub const DB_FILE: &str = "mls.redb";

const RECORD_CLIENT_ID: &str = "client_id";
const RECORD_SIGNATURE_KEY: &str = "signature_public_key";

/// Handshakes are PublicMessages (so the hub's public view of the group can validate every
/// commit and proposal) and only PublicMessage handshakes are accepted; application
/// messages are always PrivateMessages.
///
/// Rule E2E-WF-1 (docs/protocol-coverage.md).
const WIRE_FORMAT_POLICY: WireFormatPolicy = PURE_PLAINTEXT_WIRE_FORMAT_POLICY;

struct Provider {
    crypto: RustCrypto,
    storage: RedbStorage,
}

impl OpenMlsProvider for Provider {
    type CryptoProvider = RustCrypto;
    type RandProvider = RustCrypto;
    type StorageProvider = RedbStorage;

    fn storage(&self) -> &RedbStorage {
        &self.storage
    }

    fn crypto(&self) -> &RustCrypto {
        &self.crypto
    }

    fn rand(&self) -> &RustCrypto {
        &self.crypto
    }
}

/// What the hub needs to start its public view of a new room's group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedRoom {
    /// The GroupInfo of epoch 0 (an MLSMessage), signed by the creator, with the ratchet
    /// tree and ExternalPub extensions.
    pub group_info: Vec<u8>,
    /// The ratchet tree, TLS-encoded (`optional<Node> ratchet_tree<V>`).
    pub ratchet_tree: Vec<u8>,
}

/// Whom a commit removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoveTarget {
    /// One client.
    Client(ClientId),
    /// Every client of a user (a user leaving, kicked or banned).
    AllClientsOf(UserId),
}

/// What a commit does. The room-state rules are the layer above's (mimi-signaling): the
/// caller passes the new [`RoomState`] it computed.
#[derive(Debug, Clone, Default)]
pub struct CommitPlan {
    /// `m.room.user` events, each committed as a UserEvent custom proposal by value.
    pub user_events: Vec<UserEvent>,
    /// Key packages (MLSMessage bytes) of clients to add.
    pub adds: Vec<Vec<u8>>,
    /// Clients to remove.
    pub removes: Vec<RemoveTarget>,
    /// The room state after this commit, when it changes.
    pub new_room_state: Option<RoomState>,
    /// The complete new `external_senders` list, when it changes other than by adding the
    /// follower certificates that `user_events` carry (those are added automatically).
    pub external_senders: Option<Vec<ExternalSender>>,
}

/// A proposal this client made: the message for the hub and its reference, to withdraw it
/// from the local proposal store if the hub refuses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnProposal {
    /// The proposal as an MLSMessage (a PublicMessage).
    pub message: Vec<u8>,
    reference: openmls::prelude::hash_ref::ProposalRef,
}

/// Who sent a processed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageSender {
    /// A member of the group.
    Member(ClientId),
    /// An external sender (the hub or a follower), by its index in `external_senders`.
    External(u32),
    /// A client joining by external commit.
    NewMember(ClientId),
}

/// A standalone proposal, as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProposalSummary {
    /// An `m.room.user` UserEvent proposal.
    UserEvent(UserEvent),
    /// Add a client.
    Add(ClientId),
    /// Remove a client.
    Remove(ClientId),
    /// A proposal of another kind (Update, GroupContextExtensions, ...).
    Other,
}

/// A commit that was processed and merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitSummary {
    /// The committer.
    pub committer: MessageSender,
    /// The epoch the commit created.
    pub epoch: u64,
    /// The UserEvent proposals the commit carried (by value or by reference), in order.
    pub user_events: Vec<UserEvent>,
    /// Clients it added.
    pub added: Vec<ClientId>,
    /// Clients it removed, in leaf order.
    pub removed: Vec<ClientId>,
    /// The room state in the new epoch's group context.
    pub room_state: RoomState,
    /// Whether this client was removed (its group is now inactive).
    pub self_removed: bool,
}

/// The result of [`MlsClient::process`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Processed {
    /// An application message, decrypted.
    Application {
        /// Its sender.
        sender: ClientId,
        /// The plaintext.
        plaintext: Vec<u8>,
    },
    /// A standalone proposal, now stored for the next commit.
    Proposal {
        /// Its sender.
        sender: MessageSender,
        /// What it proposes.
        proposal: ProposalSummary,
    },
    /// A commit, merged: the group is in the new epoch.
    Commit(CommitSummary),
    /// This client's own pending commit, fanned back by the hub: it is now merged (the hub
    /// accepted it), and the group is in this epoch.
    OwnCommit {
        /// The new epoch.
        epoch: u64,
    },
    /// This client's own application message, fanned back: nothing to do (a sender cannot
    /// decrypt its own PrivateMessages).
    OwnMessage,
}

/// One MIMI client device: its identity, signature key and groups, persisted under a
/// directory.
pub struct MlsClient {
    id: ClientId,
    provider: Provider,
    signer: SignatureKeyPair,
    groups: HashMap<RoomId, MlsGroup>,
}

impl std::fmt::Debug for MlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MlsClient")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

fn to_bytes(message: &MlsMessageOut) -> Result<Vec<u8>, E2eError> {
    message
        .tls_serialize_detached()
        .map_err(E2eError::malformed(MlsObject::MlsMessage))
}

fn mls_bytes(message: &MlsMessageOut) -> Result<MlsBytes, E2eError> {
    Ok(MlsBytes::new(to_bytes(message)?)?)
}

fn parse_message(bytes: &[u8], object: MlsObject) -> Result<MlsMessageBodyIn, E2eError> {
    Ok(MlsMessageIn::tls_deserialize_exact(bytes)
        .map_err(E2eError::malformed(object))?
        .extract())
}

/// Parse and validate a key package given as an MLSMessage (or bare KeyPackage bytes).
pub fn parse_key_package(bytes: &[u8]) -> Result<KeyPackage, E2eError> {
    let key_package = match MlsMessageIn::tls_deserialize_exact(bytes) {
        Ok(message) => match message.extract() {
            MlsMessageBodyIn::KeyPackage(kp) => kp,
            _ => {
                return Err(E2eError::UnexpectedMessage {
                    expected: MlsObject::KeyPackage,
                });
            }
        },
        Err(_) => KeyPackageIn::tls_deserialize_exact(bytes)
            .map_err(E2eError::malformed(MlsObject::KeyPackage))?,
    };
    key_package
        .validate(&RustCrypto::default(), ProtocolVersion::Mls10)
        .map_err(E2eError::mls(Operation::KeyPackage))
}

/// The RoomState in a group context's extensions.
///
/// Rule E2E-GRP-1 (docs/protocol-coverage.md).
pub fn room_state_of(extensions: &Extensions<GroupContext>) -> Result<RoomState, E2eError> {
    mimi_mls_binding::room_state_of(extensions).map_err(|_| E2eError::NoRoomState)
}

/// The RoomState in the group context of a GroupInfo (an MLSMessage), as the hub checks it
/// after a commit. The GroupInfo's signature is not verified here.
pub fn room_state_of_group_info(group_info: &[u8]) -> Result<RoomState, E2eError> {
    match parse_message(group_info, MlsObject::GroupInfo)? {
        MlsMessageBodyIn::GroupInfo(gi) => room_state_of(gi.group_context().extensions()),
        _ => Err(E2eError::UnexpectedMessage {
            expected: MlsObject::GroupInfo,
        }),
    }
}

/// The UserEvent of a MIMI UserEvent proposal; `None` for other proposals and for a
/// payload that does not decode (the hub refused those already).
fn user_event_of(proposal: &CustomProposal) -> Option<UserEvent> {
    mimi_mls_binding::user_event_of(proposal).and_then(Result::ok)
}

fn room_of(group: &MlsGroup) -> Result<RoomId, E2eError> {
    RoomId::try_from(group.group_id().as_slice()).map_err(E2eError::GroupIdNotRoomId)
}

fn join_config() -> MlsGroupJoinConfig {
    MlsGroupJoinConfig::builder()
        .wire_format_policy(WIRE_FORMAT_POLICY)
        .use_ratchet_tree_extension(true)
        .build()
}

fn members_of(group: &MlsGroup) -> Vec<(u32, ClientId)> {
    group
        .members()
        .filter_map(|m| {
            client_id_from_credential(&m.credential)
                .ok()
                .map(|c| (m.index.u32(), c))
        })
        .collect()
}

/// Map openmls's commit-building errors: capability failures are a typed refusal.
///
/// Rule E2E-GRP-3 (docs/protocol-coverage.md).
fn commit_error(e: CreateCommitError) -> E2eError {
    match e {
        CreateCommitError::ProposalValidationError(
            ProposalValidationError::InsufficientCapabilities
            | ProposalValidationError::UnsupportedProposalType,
        ) => E2eError::UnsupportedCapabilities,
        e => E2eError::mls(Operation::Commit)(e),
    }
}

fn sender_of(sender: &Sender, credential: &Credential) -> Result<MessageSender, E2eError> {
    Ok(match sender {
        Sender::Member(_) => MessageSender::Member(client_id_from_credential(credential)?),
        Sender::External(index) => {
            // openmls keeps the index private; its TLS encoding is the u32.
            let bytes = index
                .tls_serialize_detached()
                .map_err(E2eError::malformed(MlsObject::ProtocolMessage))?;
            let be =
                <[u8; 4]>::try_from(bytes.as_slice()).map_err(|_| E2eError::UnexpectedMessage {
                    expected: MlsObject::ProtocolMessage,
                })?;
            MessageSender::External(u32::from_be_bytes(be))
        }
        Sender::NewMemberCommit | Sender::NewMemberProposal => {
            MessageSender::NewMember(client_id_from_credential(credential)?)
        }
    })
}

impl MlsClient {
    /// Open the client stored under the directory `path`, creating it (a new signature key
    /// pair and credential for `client_id`) if the directory holds none. Refuses a store
    /// that belongs to another client ([`E2eError::ClientMismatch`]).
    ///
    /// Rule E2E-STORE-1 (docs/protocol-coverage.md).
    pub fn open(path: &Path, client_id: ClientId) -> Result<Self, E2eError> {
        std::fs::create_dir_all(path)?;
        let storage = RedbStorage::open(&path.join(DB_FILE))?;
        let signer = match storage.client_record(RECORD_CLIENT_ID)? {
            Some(stored) => {
                let stored = ClientId::try_from(stored.as_slice())
                    .map_err(|e| E2eError::Credential(e.into()))?;
                if stored != client_id {
                    return Err(E2eError::ClientMismatch {
                        stored,
                        requested: client_id,
                    });
                }
                let public = storage
                    .client_record(RECORD_SIGNATURE_KEY)?
                    .ok_or(E2eError::MissingSignatureKey)?;
                SignatureKeyPair::read(&storage, &public, CIPHERSUITE.signature_algorithm())
                    .ok_or(E2eError::MissingSignatureKey)?
            }
            None => {
                let signer = SignatureKeyPair::new(CIPHERSUITE.signature_algorithm())
                    .map_err(E2eError::mls(Operation::SignatureKey))?;
                signer.store(&storage)?;
                storage.set_client_record(RECORD_SIGNATURE_KEY, signer.public())?;
                // Written last: a crash before this leaves no client, and the next open
                // starts over.
                storage.set_client_record(RECORD_CLIENT_ID, client_id.as_str().as_bytes())?;
                signer
            }
        };
        Ok(MlsClient {
            id: client_id,
            provider: Provider {
                crypto: RustCrypto::default(),
                storage,
            },
            signer,
            groups: HashMap::new(),
        })
    }

    /// This client's ID.
    pub fn client_id(&self) -> &ClientId {
        &self.id
    }

    /// This client's signature public key (the one in its leaves and key packages).
    pub fn signature_public_key(&self) -> &[u8] {
        self.signer.public()
    }

    /// The client's on-disk store (for inspection).
    pub fn storage(&self) -> &RedbStorage {
        &self.provider.storage
    }

    fn credential_with_key(&self) -> CredentialWithKey {
        CredentialWithKey {
            credential: credential_for(&self.id),
            signature_key: self.signer.public().into(),
        }
    }

    /// The group of `room` with the provider and signer, loading it from storage once.
    fn parts(
        &mut self,
        room: &RoomId,
    ) -> Result<(&mut MlsGroup, &Provider, &SignatureKeyPair), E2eError> {
        let MlsClient {
            provider,
            signer,
            groups,
            ..
        } = self;
        if !groups.contains_key(room) {
            let group = MlsGroup::load(
                provider.storage(),
                &GroupId::from_slice(room.as_str().as_bytes()),
            )
            .map_err(E2eError::mls(Operation::LoadGroup))?
            .ok_or_else(|| E2eError::UnknownRoom(room.clone()))?;
            groups.insert(room.clone(), group);
        }
        let group = groups
            .get_mut(room)
            .ok_or_else(|| E2eError::UnknownRoom(room.clone()))?;
        Ok((group, provider, signer))
    }

    fn group(&mut self, room: &RoomId) -> Result<&mut MlsGroup, E2eError> {
        Ok(self.parts(room)?.0)
    }

    /// Run one client operation with its storage writes grouped: openmls's writes during
    /// it are committed without `fsync`, and made durable together when it ends (whether it
    /// succeeded or not), so an operation costs one `fsync` and a crash leaves the state
    /// before or after it (`RedbStorage::begin_group`).
    fn grouped<T>(
        &mut self,
        operation: impl FnOnce(&mut Self) -> Result<T, E2eError>,
    ) -> Result<T, E2eError> {
        self.provider.storage.begin_group();
        let result = operation(self);
        let durable = self.provider.storage.end_group();
        let value = result?;
        durable?;
        Ok(value)
    }

    /// A new key package (an MLSMessage) advertising the MIMI capabilities. Its private
    /// keys stay in storage until a Welcome consumes them; a `last_resort` one is kept
    /// after use and may be used by several rooms.
    ///
    /// Rule E2E-KP-1 (docs/protocol-coverage.md).
    pub fn key_package(&mut self, last_resort: bool) -> Result<Vec<u8>, E2eError> {
        self.grouped(|c| c.key_package_ungrouped(last_resort))
    }

    fn key_package_ungrouped(&mut self, last_resort: bool) -> Result<Vec<u8>, E2eError> {
        let mut builder = KeyPackage::builder().leaf_node_capabilities(mimi_capabilities());
        if last_resort {
            builder = builder.mark_as_last_resort();
        }
        let bundle = builder
            .build(
                CIPHERSUITE,
                &self.provider,
                &self.signer,
                self.credential_with_key(),
            )
            .map_err(E2eError::mls(Operation::KeyPackage))?;
        to_bytes(&MlsMessageOut::from(bundle.key_package().clone()))
    }

    /// Whether this client still holds the private material of a key package it made.
    pub fn holds_key_package(&self, key_package: &[u8]) -> Result<bool, E2eError> {
        let kp = parse_key_package(key_package)?;
        let hash_ref = kp
            .hash_ref(&self.provider.crypto)
            .map_err(E2eError::mls(Operation::KeyPackage))?;
        let stored: Option<KeyPackageBundle> = self.provider.storage.key_package(&hash_ref)?;
        Ok(stored.is_some())
    }

    /// Create the MLS group of a new room: group ID = room ID, the RoomState, the hub as
    /// external sender and the MIMI required capabilities in the group context.
    ///
    /// Rules E2E-GRP-1, E2E-GRP-2 (docs/protocol-coverage.md).
    pub fn create_room(
        &mut self,
        room_state: &RoomState,
        hub: ExternalSender,
    ) -> Result<CreatedRoom, E2eError> {
        self.grouped(|c| c.create_room_ungrouped(room_state, hub))
    }

    fn create_room_ungrouped(
        &mut self,
        room_state: &RoomState,
        hub: ExternalSender,
    ) -> Result<CreatedRoom, E2eError> {
        let room = room_state.room_id.clone();
        let extensions = Extensions::from_vec(vec![
            room_state_extension(room_state)?,
            Extension::ExternalSenders(vec![hub]),
            Extension::RequiredCapabilities(mimi_required_capabilities()),
        ])
        .map_err(E2eError::mls(Operation::CreateGroup))?;
        let config = MlsGroupCreateConfig::builder()
            .ciphersuite(CIPHERSUITE)
            .wire_format_policy(WIRE_FORMAT_POLICY)
            .use_ratchet_tree_extension(true)
            .capabilities(mimi_capabilities())
            .with_group_context_extensions(extensions)
            .build();
        let credential = self.credential_with_key();
        let group = MlsGroup::new_with_group_id(
            &self.provider,
            &self.signer,
            &config,
            GroupId::from_slice(room.as_str().as_bytes()),
            credential,
        )
        .map_err(E2eError::mls(Operation::CreateGroup))?;
        self.groups.insert(room.clone(), group);
        Ok(CreatedRoom {
            group_info: self.group_info(&room)?,
            ratchet_tree: self.ratchet_tree(&room)?,
        })
    }

    /// A GroupInfo of the current epoch (an MLSMessage) with the ratchet tree and
    /// ExternalPub extensions, signed by this client.
    pub fn group_info(&mut self, room: &RoomId) -> Result<Vec<u8>, E2eError> {
        let (group, provider, signer) = self.parts(room)?;
        let gi = group
            .export_group_info(provider.crypto(), signer, true)
            .map_err(E2eError::mls(Operation::Export))?;
        to_bytes(&gi)
    }

    /// The room's ratchet tree, TLS-encoded.
    pub fn ratchet_tree(&mut self, room: &RoomId) -> Result<Vec<u8>, E2eError> {
        self.group(room)?
            .export_ratchet_tree()
            .tls_serialize_detached()
            .map_err(E2eError::malformed(MlsObject::RatchetTree))
    }

    /// The room state in the group's current context.
    pub fn room_state(&mut self, room: &RoomId) -> Result<RoomState, E2eError> {
        room_state_of(self.group(room)?.extensions())
    }

    /// The group's current `external_senders` (the hub first).
    pub fn external_senders(&mut self, room: &RoomId) -> Result<Vec<ExternalSender>, E2eError> {
        Ok(self
            .group(room)?
            .extensions()
            .external_senders()
            .cloned()
            .unwrap_or_default())
    }

    /// The group's current epoch.
    pub fn epoch(&mut self, room: &RoomId) -> Result<u64, E2eError> {
        Ok(self.group(room)?.epoch().as_u64())
    }

    /// The group's members: leaf index and client.
    pub fn members(&mut self, room: &RoomId) -> Result<Vec<(u32, ClientId)>, E2eError> {
        Ok(members_of(self.group(room)?))
    }

    /// The clients of `user` in the group, with their leaf indexes.
    pub fn clients_of(
        &mut self,
        room: &RoomId,
        user: &UserId,
    ) -> Result<Vec<(u32, ClientId)>, E2eError> {
        Ok(self
            .members(room)?
            .into_iter()
            .filter(|(_, c)| &c.user() == user)
            .collect())
    }

    /// Whether this client is still a member of the room's group (false once removed).
    pub fn is_active(&mut self, room: &RoomId) -> Result<bool, E2eError> {
        Ok(self.group(room)?.is_active())
    }

    /// How many proposals this client's group holds for its next commit (received or
    /// made this epoch). While any is pending, openmls refuses to encrypt an application
    /// message: a commit must come first.
    pub fn pending_proposal_count(&mut self, room: &RoomId) -> Result<usize, E2eError> {
        Ok(self.group(room)?.pending_proposals().count())
    }

    /// A standalone UserEvent proposal by reference (a PublicMessage), for `ds.proposal`.
    /// It is also stored locally, so this client's next commit includes it.
    pub fn propose_user_event(
        &mut self,
        room: &RoomId,
        event: &UserEvent,
    ) -> Result<Vec<u8>, E2eError> {
        Ok(self.propose_user_event_with_ref(room, event)?.message)
    }

    /// [`MlsClient::propose_user_event`], with the proposal's reference, so that the
    /// proposal can be withdrawn ([`MlsClient::withdraw_proposal`]) if the hub refuses it.
    pub fn propose_user_event_with_ref(
        &mut self,
        room: &RoomId,
        event: &UserEvent,
    ) -> Result<OwnProposal, E2eError> {
        let payload = user_event_proposal(event)?;
        let (group, provider, signer) = self.parts(room)?;
        let (message, reference) = group
            .propose_custom_proposal_by_reference(provider, signer, payload)
            .map_err(E2eError::mls(Operation::Propose))?;
        Ok(OwnProposal {
            message: to_bytes(&message)?,
            reference,
        })
    }

    /// A standalone Add proposal by reference (a PublicMessage) for the client of
    /// `key_package` (MLSMessage bytes), for `ds.proposal`. It is also stored locally.
    pub fn propose_add(&mut self, room: &RoomId, key_package: &[u8]) -> Result<Vec<u8>, E2eError> {
        let key_package = parse_key_package(key_package)?;
        let (group, provider, signer) = self.parts(room)?;
        let (message, _reference) = group
            .propose_add_member(provider, signer, &key_package)
            .map_err(E2eError::mls(Operation::Propose))?;
        to_bytes(&message)
    }

    /// A Remove proposal for this client itself, by reference (a PublicMessage): another
    /// member (or the hub's next commit) commits it. This is RFC 9420's Remove of the own
    /// leaf (openmls `leave_group`), which every MLS implementation and the hub's public
    /// group understand, rather than the extensions draft's SelfRemove.
    ///
    /// Rule E2E-REM-2 (docs/protocol-coverage.md).
    pub fn self_remove_proposal(&mut self, room: &RoomId) -> Result<Vec<u8>, E2eError> {
        Ok(self.self_remove_proposal_with_ref(room)?.message)
    }

    /// [`MlsClient::self_remove_proposal`], with the proposal's reference.
    pub fn self_remove_proposal_with_ref(
        &mut self,
        room: &RoomId,
    ) -> Result<OwnProposal, E2eError> {
        let (group, provider, signer) = self.parts(room)?;
        // The proposal `leave_group` makes (a member's Remove of its own leaf), with its
        // reference.
        let own = group.own_leaf_index();
        let (message, reference) = group
            .propose_remove_member(provider, signer, own)
            .map_err(E2eError::mls(Operation::Propose))?;
        Ok(OwnProposal {
            message: to_bytes(&message)?,
            reference,
        })
    }

    /// Drop a proposal of this client's from the room's pending proposals (for example one
    /// the hub refused), so that this client's next commit does not carry it. Returns
    /// whether the proposal was still pending (it is not once a commit moved the epoch on).
    pub fn withdraw_proposal(
        &mut self,
        room: &RoomId,
        proposal: &OwnProposal,
    ) -> Result<bool, E2eError> {
        let (group, provider, _) = self.parts(room)?;
        match group.remove_pending_proposal(provider.storage(), &proposal.reference) {
            Ok(()) => Ok(true),
            Err(RemoveProposalError::ProposalNotFound) => Ok(false),
            Err(RemoveProposalError::Storage(e)) => Err(E2eError::Storage(e)),
        }
    }

    /// Stage a commit carrying `plan` (and every proposal received and stored this epoch)
    /// and return the bundle for the hub. The GroupInfo in it is of the new epoch, with the
    /// ratchet tree and ExternalPub, so the hub can serve it to external joiners.
    ///
    /// When the room state or the external senders change, the commit carries a
    /// GroupContextExtensions proposal with the whole new list: RoomState, external_senders
    /// and required_capabilities.
    ///
    /// Rules E2E-GRP-4, E2E-COMMIT-1, E2E-COMMIT-2, E2E-REM-1 (docs/protocol-coverage.md).
    pub fn commit(&mut self, room: &RoomId, plan: CommitPlan) -> Result<CommitRequest, E2eError> {
        self.grouped(|c| c.commit_ungrouped(room, plan))
    }

    fn commit_ungrouped(
        &mut self,
        room: &RoomId,
        plan: CommitPlan,
    ) -> Result<CommitRequest, E2eError> {
        let CommitPlan {
            user_events,
            adds,
            removes,
            new_room_state,
            external_senders,
        } = plan;
        let key_packages = adds
            .iter()
            .map(|kp| parse_key_package(kp))
            .collect::<Result<Vec<_>, _>>()?;
        let mut custom = Vec::with_capacity(user_events.len());
        let mut followers = Vec::new();
        for event in &user_events {
            custom.push(Proposal::Custom(Box::new(user_event_proposal(event)?)));
            if let Some(cert) = &event.follower_server_certificate {
                followers.push(parse_follower_certificate(cert)?.1);
            }
        }

        let (group, provider, signer) = self.parts(room)?;
        let members = members_of(group);
        let mut leaves = Vec::new();
        for target in &removes {
            let before = leaves.len();
            match target {
                RemoveTarget::Client(client) => {
                    leaves.extend(members.iter().filter(|(_, c)| c == client).map(|(i, _)| *i))
                }
                RemoveTarget::AllClientsOf(user) => leaves.extend(
                    members
                        .iter()
                        .filter(|(_, c)| &c.user() == user)
                        .map(|(i, _)| *i),
                ),
            }
            if leaves.len() == before {
                return Err(match target {
                    RemoveTarget::Client(c) => E2eError::NotInRoom(c.clone()),
                    RemoveTarget::AllClientsOf(u) => E2eError::NoClientsOf(u.clone()),
                });
            }
        }
        leaves.sort_unstable();
        leaves.dedup();

        let current = group.extensions();
        let current_senders = current.external_senders().cloned().unwrap_or_default();
        let mut senders = external_senders.unwrap_or_else(|| current_senders.clone());
        for follower in followers {
            if !senders.contains(&follower) {
                senders.push(follower);
            }
        }
        let gce = if new_room_state.is_some() || senders != current_senders {
            let room_state = match &new_room_state {
                Some(state) => state.encode()?,
                None => room_state_bytes_of(current)
                    .map_err(|_| E2eError::NoRoomState)?
                    .to_vec(),
            };
            let required = current
                .required_capabilities()
                .cloned()
                .unwrap_or_else(mimi_required_capabilities);
            Some(
                Extensions::from_vec(vec![
                    room_state_extension_from_bytes(room_state),
                    Extension::ExternalSenders(senders),
                    Extension::RequiredCapabilities(required),
                ])
                .map_err(E2eError::mls(Operation::Commit))?,
            )
        } else {
            None
        };

        let mut builder = group
            .commit_builder()
            .propose_adds(key_packages)
            .propose_removals(leaves.into_iter().map(LeafNodeIndex::new))
            .add_proposals(custom);
        if let Some(extensions) = gce {
            builder = builder
                .propose_group_context_extensions(extensions)
                .map_err(commit_error)?;
        }
        let bundle = builder
            .load_psks(provider.storage())
            .map_err(commit_error)?
            .build(provider.rand(), provider.crypto(), signer, |_| true)
            .map_err(commit_error)?
            .stage_commit(provider)
            .map_err(E2eError::mls(Operation::Commit))?;
        let (commit, welcome, group_info) = bundle.into_messages();
        let group_info = group_info.ok_or(E2eError::Mls {
            operation: Operation::Commit,
            source: "openmls made no GroupInfo for the commit".into(),
        })?;
        let welcomes = welcome
            .iter()
            .map(mls_bytes)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CommitRequest {
            commit: mls_bytes(&commit)?,
            group_info: mls_bytes(&group_info)?,
            welcomes: BoundedVec::new(welcomes)?,
        })
    }

    /// Apply the staged commit (the hub accepted it).
    pub fn merge_pending_commit(&mut self, room: &RoomId) -> Result<(), E2eError> {
        self.grouped(|c| c.merge_pending_commit_ungrouped(room))
    }

    fn merge_pending_commit_ungrouped(&mut self, room: &RoomId) -> Result<(), E2eError> {
        let (group, provider, _) = self.parts(room)?;
        if group.pending_commit().is_none() {
            return Err(E2eError::PendingCommit);
        }
        group
            .merge_pending_commit(provider)
            .map_err(E2eError::mls(Operation::MergeCommit))
    }

    /// Discard the staged commit (the hub refused it); the proposals it carried by
    /// reference stay stored.
    pub fn clear_pending_commit(&mut self, room: &RoomId) -> Result<(), E2eError> {
        let (group, provider, _) = self.parts(room)?;
        group
            .clear_pending_commit(provider.storage())
            .map_err(E2eError::mls(Operation::MergeCommit))
    }

    /// Process an incoming MLSMessage of the room: decrypt an application message, store a
    /// proposal for the next commit, or verify and merge a commit.
    ///
    /// Rules E2E-GRP-2, E2E-COMMIT-1 (docs/protocol-coverage.md).
    pub fn process(&mut self, room: &RoomId, message: &[u8]) -> Result<Processed, E2eError> {
        self.grouped(|c| c.process_ungrouped(room, message))
    }

    fn process_ungrouped(&mut self, room: &RoomId, message: &[u8]) -> Result<Processed, E2eError> {
        let protocol = MlsMessageIn::tls_deserialize_exact(message)
            .map_err(E2eError::malformed(MlsObject::ProtocolMessage))?
            .try_into_protocol_message()
            .map_err(|_| E2eError::UnexpectedMessage {
                expected: MlsObject::ProtocolMessage,
            })?;
        let (group, provider, _) = self.parts(room)?;
        let processed = group
            .process_message(provider, protocol)
            .map_err(process_error)?;
        let sender = sender_of(processed.sender(), processed.credential())?;
        match processed.into_content() {
            ProcessedMessageContent::ApplicationMessage(m) => match sender {
                MessageSender::Member(sender) => Ok(Processed::Application {
                    sender,
                    plaintext: m.into_bytes(),
                }),
                _ => Err(E2eError::UnexpectedMessage {
                    expected: MlsObject::ProtocolMessage,
                }),
            },
            ProcessedMessageContent::ProposalMessage(qp)
            | ProcessedMessageContent::ExternalJoinProposalMessage(qp) => {
                let proposal = match qp.proposal() {
                    Proposal::Custom(c) => {
                        user_event_of(c).map_or(ProposalSummary::Other, ProposalSummary::UserEvent)
                    }
                    Proposal::Add(a) => ProposalSummary::Add(client_id_from_credential(
                        a.key_package().leaf_node().credential(),
                    )?),
                    Proposal::Remove(r) => match group.member(r.removed()) {
                        Some(c) => ProposalSummary::Remove(client_id_from_credential(c)?),
                        None => ProposalSummary::Other,
                    },
                    _ => ProposalSummary::Other,
                };
                group
                    .store_pending_proposal(provider.storage(), *qp)
                    .map_err(E2eError::mls(Operation::Process))?;
                Ok(Processed::Proposal { sender, proposal })
            }
            ProcessedMessageContent::OwnPendingCommit => {
                group
                    .merge_pending_commit(provider)
                    .map_err(E2eError::mls(Operation::MergeCommit))?;
                Ok(Processed::OwnCommit {
                    epoch: group.epoch().as_u64(),
                })
            }
            ProcessedMessageContent::OwnPrivateMessage => Ok(Processed::OwnMessage),
            // A first-version room has no app_data_dictionary to update.
            ProcessedMessageContent::UnresolvedAppDataCommit(_) => {
                Err(E2eError::UnexpectedMessage {
                    expected: MlsObject::ProtocolMessage,
                })
            }
            ProcessedMessageContent::StagedCommitMessage(staged) => {
                let mut user_events = Vec::new();
                for qp in staged.queued_proposals() {
                    if let Proposal::Custom(c) = qp.proposal()
                        && let Some(event) = user_event_of(c)
                    {
                        user_events.push(event);
                    }
                }
                let added = staged
                    .add_proposals()
                    .map(|a| {
                        client_id_from_credential(
                            a.add_proposal().key_package().leaf_node().credential(),
                        )
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let mut removed_leaves: Vec<LeafNodeIndex> = staged
                    .remove_proposals()
                    .map(|r| r.remove_proposal().removed())
                    .collect();
                removed_leaves.sort_unstable();
                let removed = removed_leaves
                    .into_iter()
                    .filter_map(|leaf| group.member(leaf))
                    .map(client_id_from_credential)
                    .collect::<Result<Vec<_>, _>>()?;
                let room_state = room_state_of(staged.group_context().extensions())?;
                let epoch = staged.group_context().epoch().as_u64();
                let self_removed = staged.self_removed();
                group
                    .merge_staged_commit(provider, *staged)
                    .map_err(E2eError::mls(Operation::MergeCommit))?;
                Ok(Processed::Commit(CommitSummary {
                    committer: sender,
                    epoch,
                    user_events,
                    added,
                    removed,
                    room_state,
                    self_removed,
                }))
            }
        }
    }

    /// Join a room from a Welcome (an MLSMessage); the ratchet tree comes from its
    /// extension. Returns the room.
    ///
    /// Rule E2E-JOIN-1 (docs/protocol-coverage.md).
    pub fn join_from_welcome(&mut self, welcome: &[u8]) -> Result<RoomId, E2eError> {
        self.grouped(|c| c.join_from_welcome_ungrouped(welcome))
    }

    fn join_from_welcome_ungrouped(&mut self, welcome: &[u8]) -> Result<RoomId, E2eError> {
        let welcome = match parse_message(welcome, MlsObject::Welcome)? {
            MlsMessageBodyIn::Welcome(w) => w,
            _ => {
                return Err(E2eError::UnexpectedMessage {
                    expected: MlsObject::Welcome,
                });
            }
        };
        let group = StagedWelcome::new_from_welcome(&self.provider, &join_config(), welcome, None)
            .map_err(welcome_error)?
            .into_group(&self.provider)
            .map_err(E2eError::mls(Operation::JoinFromWelcome))?;
        let room = room_of(&group)?;
        self.groups.insert(room.clone(), group);
        Ok(room)
    }

    /// Join a room by external commit from a GroupInfo (an MLSMessage, with ExternalPub)
    /// and, when the GroupInfo has no ratchet tree extension, the TLS-encoded tree.
    ///
    /// openmls merges an external commit at once: if the hub refuses it, call
    /// [`MlsClient::forget_room`]. An external commit cannot carry custom proposals, so the
    /// user's `m.room.user` event travels separately.
    pub fn join_by_external_commit(
        &mut self,
        group_info: &[u8],
        ratchet_tree: Option<&[u8]>,
    ) -> Result<(RoomId, CommitRequest), E2eError> {
        let group_info = match parse_message(group_info, MlsObject::GroupInfo)? {
            MlsMessageBodyIn::GroupInfo(gi) => gi,
            _ => {
                return Err(E2eError::UnexpectedMessage {
                    expected: MlsObject::GroupInfo,
                });
            }
        };
        let mut builder = MlsGroup::external_commit_builder().with_config(join_config());
        if let Some(tree) = ratchet_tree {
            builder = builder.with_ratchet_tree(
                RatchetTreeIn::tls_deserialize_exact(tree)
                    .map_err(E2eError::malformed(MlsObject::RatchetTree))?,
            );
        }
        let (group, bundle) = self.finish_external_join(builder, group_info)?;
        let room = room_of(&group)?;
        self.groups.insert(room.clone(), group);
        let (commit, _welcome, group_info) = bundle.into_messages();
        let group_info = group_info.ok_or(E2eError::Mls {
            operation: Operation::ExternalJoin,
            source: "openmls made no GroupInfo for the external commit".into(),
        })?;
        Ok((
            room,
            CommitRequest {
                commit: mls_bytes(&commit)?,
                group_info: mls_bytes(&group_info)?,
                welcomes: BoundedVec::default(),
            },
        ))
    }

    /// Encrypt an application message (a PrivateMessage) for the room.
    pub fn encrypt(&mut self, room: &RoomId, plaintext: &[u8]) -> Result<Vec<u8>, E2eError> {
        self.grouped(|c| c.encrypt_ungrouped(room, plaintext))
    }

    fn encrypt_ungrouped(&mut self, room: &RoomId, plaintext: &[u8]) -> Result<Vec<u8>, E2eError> {
        let (group, provider, signer) = self.parts(room)?;
        let message = group
            .create_message(provider, signer, plaintext)
            .map_err(|e| match e {
                CreateMessageError::GroupStateError(MlsGroupStateError::UseAfterEviction) => {
                    E2eError::Evicted
                }
                e => E2eError::mls(Operation::Encrypt)(e),
            })?;
        to_bytes(&message)
    }

    /// Encrypt a franked application message (draft-ietf-mimi-protocol-06 §5.4.1.1): its
    /// `franking_tag = HMAC_SHA256(salt, application_data)` goes in the PrivateMessage's
    /// AAD as the `frank_aad` Safe AAD component, where the hub reads it to frank the message.
    /// `salt` is the one the content carries (MIMI content's 16 octets). Returns the
    /// PrivateMessage and the tag.
    pub fn encrypt_franked(
        &mut self,
        room: &RoomId,
        application_data: &[u8],
        salt: &[u8],
    ) -> Result<(Vec<u8>, mimi_mls_binding::franking::FrankingTag), E2eError> {
        let (tag, aad) = franked_aad_of(application_data, salt)?;
        let (group, _, _) = self.parts(room)?;
        group.set_aad(aad);
        Ok((self.encrypt(room, application_data)?, tag))
    }

    /// Delete the room's group state (after being removed, or when the hub refused an
    /// external join).
    pub fn forget_room(&mut self, room: &RoomId) -> Result<(), E2eError> {
        let (group, provider, _) = self.parts(room)?;
        group
            .delete(provider.storage())
            .map_err(E2eError::mls(Operation::Delete))?;
        self.groups.remove(room);
        Ok(())
    }
}

impl MlsClient {
    /// Finish an external join from `builder` (its configuration and ratchet tree set):
    /// this client's credential and MIMI capabilities, every proposal taken, the group
    /// stored. One place for both versions' external joins.
    pub(crate) fn finish_external_join(
        &self,
        builder: ExternalCommitBuilder,
        group_info: openmls::messages::group_info::VerifiableGroupInfo,
    ) -> Result<(MlsGroup, CommitMessageBundle), E2eError> {
        builder
            .build_group(&self.provider, group_info, self.credential_with_key())
            .map_err(E2eError::mls(Operation::ExternalJoin))?
            .leaf_node_parameters(
                LeafNodeParameters::builder()
                    .with_capabilities(mimi_capabilities())
                    .build(),
            )
            .load_psks(self.provider.storage())
            .map_err(E2eError::mls(Operation::ExternalJoin))?
            .build(
                self.provider.rand(),
                self.provider.crypto(),
                &self.signer,
                |_| true,
            )
            .map_err(E2eError::mls(Operation::ExternalJoin))?
            .finalize(&self.provider)
            .map_err(E2eError::mls(Operation::ExternalJoin))
    }
}

/// The `franking_tag` of `application_data` (whose salt is `salt`) and the PrivateMessage AAD
/// that carries it in `frank_aad` (draft-ietf-mimi-protocol-06 §5.4.1.1).
pub(crate) fn franked_aad_of(
    application_data: &[u8],
    salt: &[u8],
) -> Result<(mimi_mls_binding::franking::FrankingTag, Vec<u8>), E2eError> {
    use mimi_mls_binding::franking;
    let tag = franking::franking_tag(salt, application_data)?;
    let aad = franking::franked_aad(&tag)?;
    Ok((tag, aad))
}

/// Rule E2E-REM-1 (docs/protocol-coverage.md).
fn process_error(e: ProcessMessageError<crate::storage::StorageError>) -> E2eError {
    match e {
        ProcessMessageError::GroupStateError(MlsGroupStateError::UseAfterEviction) => {
            E2eError::Evicted
        }
        ProcessMessageError::ValidationError(ValidationError::WrongEpoch) => E2eError::WrongEpoch,
        e => E2eError::mls(Operation::Process)(e),
    }
}

fn welcome_error(e: WelcomeError<crate::storage::StorageError>) -> E2eError {
    match e {
        WelcomeError::NoMatchingKeyPackage => E2eError::NoMatchingKeyPackage,
        e => E2eError::mls(Operation::JoinFromWelcome)(e),
    }
}
