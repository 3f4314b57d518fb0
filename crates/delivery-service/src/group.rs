//! [`HubGroup`]: the hub's public view of one room's MLS group — an openmls
//! [`PublicGroup`] without private keys, its proposal queue, the latest GroupInfo, and a
//! byte encoding of all of it for the hub's storage.
//!
//! This module only speaks MLS. The MIMI rules that need the room's participant list live in
//! [`crate::service`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};

use mimi_codec::{
    ClientId, CommitRequest, GroupInfoResponse, MlsBytes, RoomState, ServerName, UserEvent,
};
use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::*;
use openmls_memory_storage::MemoryStorage;
use openmls_rust_crypto::RustCrypto;
use tls_codec::{TlsDeserialize, TlsSerialize, TlsSize, VLBytes};

use crate::error::{DsError, DsRule};
use crate::mls::{
    GROUP_INFO_SIGN_LABEL, client_id_from_credential, parse_mls_message, raw_group_info,
    room_state_bytes_of, room_state_of, server_from_external_sender, user_event_of,
};

/// How many epochs back an application message may be: none. Clients keep no past epoch
/// secrets (openmls' default, and `mimi-client` skips messages of epochs its group has
/// left), so a message for an epoch the group has left can be read by nobody; refusing it
/// (`StaleEpoch`, DS-MLS-3) tells its sender to catch up and send it again
/// (`docs/spec-decisions.md`, "Application messages of a past epoch").
pub const MAX_PAST_EPOCHS: u64 = 0;

/// How [`HubGroup::create`] recognises the hub among the group's external senders.
#[derive(Debug, Clone, Copy)]
pub enum HubSender<'a> {
    /// The hub itself checks for its own external sender (signature key and credential).
    Exactly(&'a ExternalSender),
    /// A follower, which does not know the hub's key, checks for the hub's server name.
    Server(&'a ServerName),
}

/// Who sent an MLS handshake message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MlsSender {
    /// A member client.
    Member(ClientId),
    /// A server in `external_senders` (the hub or a follower).
    External(ServerName),
    /// A client joining by external commit.
    NewMember(ClientId),
}

/// What one proposal does, in MIMI terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProposalKind {
    /// An `m.room.user` UserEvent.
    UserEvent(UserEvent),
    /// Adds a client.
    Add(ClientId),
    /// Removes the client at a leaf.
    Remove {
        /// The leaf.
        leaf: u32,
        /// The client at that leaf.
        client: ClientId,
    },
    /// Replaces the group context extensions (carries the new RoomState).
    GroupContextExtensions,
    /// Anything else MLS allows (Update, PSK, ExternalInit, ...).
    Other,
}

/// A proposal the hub has verified as MLS but not yet accepted into its queue.
#[derive(Debug)]
pub struct StagedProposal {
    queued: QueuedProposal,
    bytes: Vec<u8>,
    /// Who sent it.
    pub sender: MlsSender,
    /// What it does.
    pub kind: ProposalKind,
}

/// One proposal a commit applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitProposal {
    /// Who proposed it (for an inline proposal: the committer).
    pub proposer: MlsSender,
    /// What it does.
    pub kind: ProposalKind,
    /// Whether the commit references it (it was queued before) rather than carrying it.
    pub by_reference: bool,
}

/// A commit the hub has verified as MLS, with what it does, not yet merged.
#[derive(Debug)]
pub struct StagedCommitInfo {
    staged: StagedCommit,
    group_info: Vec<u8>,
    /// Who committed.
    pub committer: MlsSender,
    /// Every proposal it applies, in order (inline and by reference).
    pub proposals: Vec<CommitProposal>,
    /// Clients it adds, with the KeyPackageRef of each (for routing Welcomes).
    pub added: Vec<(ClientId, Vec<u8>)>,
    /// Clients it removes.
    pub removed: Vec<ClientId>,
    /// The RoomState extension in the group context after the commit, as its bytes: the
    /// hub compares them with its own encoding of the room state after the event (TLS
    /// encoding is canonical), which costs an encoding instead of decoding and checking
    /// every participant's identifier.
    pub room_state_after: Vec<u8>,
    /// The servers in `external_senders` after the commit (the hub included).
    pub external_senders_after: Vec<ServerName>,
    /// The epoch the commit creates.
    pub new_epoch: u64,
}

/// The hub's state of one room's MLS group.
pub struct HubGroup {
    crypto: RustCrypto,
    storage: MemoryStorage,
    group: PublicGroup,
    /// The GroupInfo (MLSMessage bytes) of the current epoch, from the last committer.
    group_info: Vec<u8>,
    /// The original MLSMessage bytes of each queued proposal, by proposal reference.
    queued_bytes: BTreeMap<Vec<u8>, Vec<u8>>,
    /// How many handshake messages this value has verified with openmls (see
    /// [`HubGroup::messages_verified`]).
    verified: AtomicU64,
}

impl std::fmt::Debug for HubGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubGroup")
            .field("group_id", &self.group.group_id())
            .field("epoch", &self.group.group_context().epoch().as_u64())
            .field("members", &self.group.members().count())
            .field("queued", &self.queued_bytes.len())
            .finish()
    }
}

#[derive(Debug, TlsSerialize, TlsDeserialize, TlsSize)]
struct StoredEntry {
    key: VLBytes,
    value: VLBytes,
}

#[derive(Debug, TlsSerialize, TlsDeserialize, TlsSize)]
struct StoredGroup {
    version: u16,
    group_id: VLBytes,
    entries: Vec<StoredEntry>,
    group_info: VLBytes,
    queued: Vec<StoredEntry>,
}

const STORED_GROUP_VERSION: u16 = 1;

fn state_err(e: impl std::fmt::Display) -> DsError {
    DsError::State(e.to_string())
}

fn mls_err(e: impl std::fmt::Display) -> DsError {
    DsError::refused(DsRule::Mls1, e.to_string())
}

impl HubGroup {
    /// Start tracking a room's group from the creator's GroupInfo and ratchet tree.
    ///
    /// Checks DS-CR-1: the group is at epoch 0, every member's credential names a client,
    /// the group ID is the room ID, the group context carries the RoomState extension,
    /// `external_senders` contains `hub`, and the required capabilities include the MIMI
    /// extension and proposal types. (That the members are the creator's clients is checked
    /// by the caller, which knows the creator.)
    pub fn create(
        group_info: &[u8],
        ratchet_tree: &[u8],
        hub: HubSender<'_>,
    ) -> Result<(HubGroup, RoomState), DsError> {
        let crypto = RustCrypto::default();
        let storage = MemoryStorage::default();
        let verifiable = match parse_mls_message(group_info)? {
            MlsMessageBodyIn::GroupInfo(gi) => gi,
            _ => return Err(DsError::refused(DsRule::Cr1, "expected a GroupInfo")),
        };
        let tree = RatchetTreeIn::tls_deserialize_exact(ratchet_tree)
            .map_err(|e| DsError::refused(DsRule::Cr1, format!("ratchet tree: {e}")))?;
        let (group, _) =
            PublicGroup::from_external(&crypto, &storage, tree, verifiable, ProposalStore::new())
                .map_err(|e| DsError::refused(DsRule::Cr1, format!("group: {e}")))?;
        let extensions = group.group_context().extensions();
        let room_state = room_state_of(extensions)?;
        if group.group_id().as_slice() != room_state.room_id.as_str().as_bytes() {
            return Err(DsError::refused(
                DsRule::Cr1,
                "the MLS group ID must be the room ID",
            ));
        }
        let senders = extensions.external_senders().cloned().unwrap_or_default();
        let has_hub = match hub {
            HubSender::Exactly(hub) => senders.contains(hub),
            HubSender::Server(name) => senders
                .iter()
                .any(|s| server_from_external_sender(s).ok().as_ref() == Some(name)),
        };
        if !has_hub {
            return Err(DsError::refused(
                DsRule::Cr1,
                "external_senders does not contain the hub",
            ));
        }
        let required = group
            .required_capabilities()
            .ok_or_else(|| DsError::refused(DsRule::Cr1, "no required_capabilities extension"))?;
        if !mimi_mls_binding::requires_mimi(required) {
            return Err(DsError::refused(
                DsRule::Cr1,
                "required_capabilities must include the RoomState extension and UserEvent proposal types",
            ));
        }
        if group.group_context().epoch().as_u64() != 0 {
            return Err(DsError::refused(
                DsRule::Cr1,
                "the group must be handed to the hub at epoch 0",
            ));
        }
        for member in group.members() {
            client_id_from_credential(&member.credential).map_err(|_| {
                DsError::refused(DsRule::Cr1, "a member's credential names no client")
            })?;
        }
        let hub_group = HubGroup {
            crypto,
            storage,
            group,
            group_info: group_info.to_vec(),
            queued_bytes: BTreeMap::new(),
            verified: AtomicU64::new(0),
        };
        Ok((hub_group, room_state))
    }

    /// The current epoch.
    pub fn epoch(&self) -> u64 {
        self.group.group_context().epoch().as_u64()
    }

    /// The room state in the current group context.
    pub fn room_state(&self) -> Result<RoomState, DsError> {
        room_state_of(self.group.group_context().extensions())
    }

    /// The members: leaf index and client.
    pub fn members(&self) -> Vec<(u32, ClientId)> {
        self.group
            .members()
            .filter_map(|m| {
                client_id_from_credential(&m.credential)
                    .ok()
                    .map(|c| (m.index.u32(), c))
            })
            .collect()
    }

    /// The servers in `external_senders`, in order (index = `SenderExtensionIndex`).
    pub fn external_senders(&self) -> Vec<ServerName> {
        self.group
            .group_context()
            .extensions()
            .external_senders()
            .map(|s| {
                s.iter()
                    .filter_map(|x| server_from_external_sender(x).ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// How many handshake messages (proposals and commits) this value has run through
    /// openmls's `process_message` since it was created or loaded: the verification the
    /// hub pays for. Each accepted proposal or commit is verified once, when it is staged;
    /// queueing and merging do not verify again.
    pub fn messages_verified(&self) -> u64 {
        self.verified.load(Ordering::Relaxed)
    }

    /// Run a handshake message through openmls's verification (the only place this type
    /// does), counting it.
    fn process(
        &self,
        message: ProtocolMessage,
    ) -> Result<ProcessedMessage, PublicProcessMessageError> {
        self.verified.fetch_add(1, Ordering::Relaxed);
        self.group.process_message(&self.crypto, message)
    }

    /// How many proposals are queued for the next commit.
    pub fn queued_count(&self) -> usize {
        self.queued_bytes.len()
    }

    /// The leaves that a queued Remove proposal (from anyone) already removes.
    pub fn queued_removals(&self) -> Result<BTreeSet<u32>, DsError> {
        Ok(self
            .group
            .queued_proposals(&self.storage)
            .map_err(state_err)?
            .into_iter()
            .filter_map(|(_, q)| match q.proposal() {
                Proposal::Remove(r) => Some(r.removed().u32()),
                _ => None,
            })
            .collect())
    }

    fn sender_of(
        &self,
        sender: &Sender,
        credential: Option<&Credential>,
    ) -> Result<MlsSender, DsError> {
        match sender {
            Sender::Member(leaf) => {
                let leaf = self
                    .group
                    .leaf(*leaf)
                    .ok_or_else(|| mls_err("sender leaf is empty"))?;
                Ok(MlsSender::Member(client_id_from_credential(
                    leaf.credential(),
                )?))
            }
            Sender::External(index) => {
                let senders = self
                    .group
                    .group_context()
                    .extensions()
                    .external_senders()
                    .ok_or_else(|| mls_err("no external senders"))?;
                // openmls keeps the index private; its TLS encoding is the u32.
                let raw = index.tls_serialize_detached().map_err(mls_err)?;
                let i = u32::tls_deserialize_exact(raw.as_slice()).map_err(mls_err)? as usize;
                let s = senders
                    .get(i)
                    .ok_or_else(|| mls_err("unknown external sender"))?;
                Ok(MlsSender::External(server_from_external_sender(s)?))
            }
            Sender::NewMemberCommit | Sender::NewMemberProposal => {
                let credential =
                    credential.ok_or_else(|| mls_err("new member without credential"))?;
                Ok(MlsSender::NewMember(client_id_from_credential(credential)?))
            }
        }
    }

    fn classify(&self, proposal: &Proposal) -> Result<ProposalKind, DsError> {
        if let Some(event) = user_event_of(proposal)? {
            return Ok(ProposalKind::UserEvent(event));
        }
        Ok(match proposal {
            Proposal::Add(add) => ProposalKind::Add(client_id_from_credential(
                add.key_package().leaf_node().credential(),
            )?),
            Proposal::Remove(remove) => {
                let leaf = self
                    .group
                    .leaf(remove.removed())
                    .ok_or_else(|| mls_err("remove of an empty leaf"))?;
                ProposalKind::Remove {
                    leaf: remove.removed().u32(),
                    client: client_id_from_credential(leaf.credential())?,
                }
            }
            Proposal::GroupContextExtensions(_) => ProposalKind::GroupContextExtensions,
            _ => ProposalKind::Other,
        })
    }

    /// Parse a handshake message for this group's current epoch.
    fn protocol_message(&self, bytes: &[u8]) -> Result<ProtocolMessage, DsError> {
        let message = match parse_mls_message(bytes)? {
            MlsMessageBodyIn::PublicMessage(m) => ProtocolMessage::from(m),
            MlsMessageBodyIn::PrivateMessage(_) => {
                return Err(DsError::refused(
                    DsRule::Mls4,
                    "handshake messages must be PublicMessages",
                ));
            }
            _ => {
                return Err(DsError::refused(DsRule::Mls4, "expected a PublicMessage"));
            }
        };
        if message.group_id() != self.group.group_id() {
            return Err(DsError::refused(
                DsRule::Mls2,
                "message is for another group",
            ));
        }
        let epoch = message.epoch().as_u64();
        if epoch != self.epoch() {
            return Err(DsError::refused(
                DsRule::Mls3,
                format!(
                    "message is for epoch {epoch}, the group is at {}",
                    self.epoch()
                ),
            ));
        }
        Ok(message)
    }

    /// Verify a standalone proposal (MLS validation, DS-MLS-1..4) without queueing it.
    pub fn stage_proposal(&self, bytes: &[u8]) -> Result<StagedProposal, DsError> {
        let message = self.protocol_message(bytes)?;
        let processed = self.process(message).map_err(mls_err)?;
        let credential = processed.credential().clone();
        let sender = processed.sender().clone();
        let queued = match processed.into_content() {
            ProcessedMessageContent::ProposalMessage(q)
            | ProcessedMessageContent::ExternalJoinProposalMessage(q) => *q,
            _ => {
                return Err(DsError::refused(DsRule::Mls4, "expected a proposal"));
            }
        };
        let sender = self.sender_of(&sender, Some(&credential))?;
        let kind = self.classify(queued.proposal())?;
        Ok(StagedProposal {
            queued,
            bytes: bytes.to_vec(),
            sender,
            kind,
        })
    }

    /// Accept a staged proposal into the queue the next commit must include.
    pub fn queue(&mut self, proposal: StagedProposal) -> Result<(), DsError> {
        let reference = proposal.queued.proposal_reference_ref().as_slice().to_vec();
        self.group
            .add_proposal(&self.storage, proposal.queued)
            .map_err(state_err)?;
        self.queued_bytes.insert(reference, proposal.bytes);
        Ok(())
    }

    /// Verify a commit bundle as MLS (DS-MLS-1..4, DS-Q-1, DS-GI-1, DS-W-1) and describe what
    /// it does. Nothing changes until [`HubGroup::merge`].
    pub fn stage_commit(&self, request: &CommitRequest) -> Result<StagedCommitInfo, DsError> {
        let message = self.protocol_message(request.commit.as_slice())?;
        if message.content_type() != ContentType::Commit {
            return Err(DsError::refused(
                DsRule::Mls4,
                "ds.commit must carry a commit",
            ));
        }
        let processed = self.process(message).map_err(|e| match e {
            PublicProcessMessageError::InvalidCommit(StageCommitError::MissingProposal) => {
                DsError::refused(
                    DsRule::Q1,
                    "the commit references a proposal the hub did not accept",
                )
            }
            other => mls_err(other),
        })?;
        let credential = processed.credential().clone();
        let sender = processed.sender().clone();
        let staged = match processed.into_content() {
            ProcessedMessageContent::StagedCommitMessage(sc) => *sc,
            _ => return Err(DsError::refused(DsRule::Mls4, "expected a commit")),
        };
        let committer = self.sender_of(&sender, Some(&credential))?;

        // DS-Q-1: every queued proposal must be referenced.
        let referenced: BTreeSet<Vec<u8>> = staged
            .queued_proposals()
            .filter(|q| q.proposal_or_ref_type() == ProposalOrRefType::Reference)
            .map(|q| q.proposal_reference_ref().as_slice().to_vec())
            .collect();
        let missing = self
            .queued_bytes
            .keys()
            .filter(|r| !referenced.contains(*r))
            .count();
        if missing > 0 {
            return Err(DsError::refused(
                DsRule::Q1,
                format!("the commit omits {missing} proposal(s) the hub accepted this epoch"),
            ));
        }

        let mut proposals = Vec::new();
        for q in staged.queued_proposals() {
            let proposer = match q.sender() {
                Sender::NewMemberCommit => committer.clone(),
                s => self.sender_of(s, None)?,
            };
            proposals.push(CommitProposal {
                proposer,
                kind: self.classify(q.proposal())?,
                by_reference: q.proposal_or_ref_type() == ProposalOrRefType::Reference,
            });
        }
        let mut added = Vec::new();
        for add in staged.add_proposals() {
            let kp = add.add_proposal().key_package();
            let client = client_id_from_credential(kp.leaf_node().credential())?;
            let kp_ref = kp.hash_ref(&self.crypto).map_err(mls_err)?;
            added.push((client, kp_ref.as_slice().to_vec()));
        }
        let removed = proposals
            .iter()
            .filter_map(|p| match &p.kind {
                ProposalKind::Remove { client, .. } => Some(client.clone()),
                _ => None,
            })
            .collect();
        let context = staged.group_context();
        let room_state_after = room_state_bytes_of(context.extensions())?.to_vec();
        let external_senders_after = context
            .extensions()
            .external_senders()
            .map(|s| {
                s.iter()
                    .map(server_from_external_sender)
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();
        let new_epoch = context.epoch().as_u64();

        self.check_group_info(request.group_info.as_slice(), &staged, &committer)?;
        self.check_welcomes(&request.welcomes, &added)?;

        Ok(StagedCommitInfo {
            staged,
            group_info: request.group_info.as_slice().to_vec(),
            committer,
            proposals,
            added,
            removed,
            room_state_after,
            external_senders_after,
            new_epoch,
        })
    }

    /// DS-GI-1: the GroupInfo is for the new epoch of this group, signed by the committer.
    ///
    /// The GroupInfo is checked as bytes: its group context must encode exactly as the
    /// commit's new one (TLS encoding is canonical, so equal bytes are an equal context),
    /// and its signature is verified over the GroupInfoTBS bytes as they came. Decoding it
    /// with openmls would decode the ratchet tree extension and encode it again to verify
    /// the signature, work that grows with the group and that the joiners, who use the
    /// tree, do anyway (`docs/spec-decisions.md`).
    fn check_group_info(
        &self,
        bytes: &[u8],
        staged: &StagedCommit,
        committer: &MlsSender,
    ) -> Result<(), DsError> {
        let raw = raw_group_info(bytes)?;
        let context = staged.group_context();
        let expected = context.tls_serialize_detached().map_err(mls_err)?;
        if raw.group_context != expected.as_slice() {
            let same_epoch =
                GroupContext::tls_deserialize_exact(raw.group_context).is_ok_and(|gc| {
                    gc.group_id() == context.group_id() && gc.epoch() == context.epoch()
                });
            return Err(DsError::refused(
                DsRule::Gi1,
                if same_epoch {
                    "the GroupInfo's group context differs from the commit's"
                } else {
                    "the GroupInfo is not for the epoch the commit creates"
                },
            ));
        }
        // The signer is the committer's leaf in the new tree: its key is the one in the
        // commit's path leaf when there is one, else the committer's current leaf.
        let key = match (staged.update_path_leaf_node(), &committer) {
            (Some(leaf), _) => leaf.signature_key().clone(),
            (None, MlsSender::Member(client)) => self
                .group
                .members()
                .find(|m| client_id_from_credential(&m.credential).ok().as_ref() == Some(client))
                .map(|m| SignaturePublicKey::from(m.signature_key))
                .ok_or_else(|| DsError::refused(DsRule::Gi1, "committer not found"))?,
            (None, _) => {
                return Err(DsError::refused(
                    DsRule::Gi1,
                    "external commit without a path",
                ));
            }
        };
        let mut content = Vec::with_capacity(raw.tbs.len() + GROUP_INFO_SIGN_LABEL.len() + 8);
        tls_codec::VLByteSlice(GROUP_INFO_SIGN_LABEL)
            .tls_serialize(&mut content)
            .map_err(mls_err)?;
        tls_codec::VLByteSlice(raw.tbs)
            .tls_serialize(&mut content)
            .map_err(mls_err)?;
        let scheme = self.group.ciphersuite().signature_algorithm();
        self.crypto
            .verify_signature(scheme, &content, key.as_slice(), raw.signature)
            .map_err(|e| DsError::refused(DsRule::Gi1, format!("GroupInfo signature: {e:?}")))?;
        Ok(())
    }

    /// DS-W-1: every Welcome is for this group's new members only.
    fn check_welcomes(
        &self,
        welcomes: &mimi_codec::BoundedVec<MlsBytes, { mimi_codec::limits::MAX_MLS_MESSAGES }>,
        added: &[(ClientId, Vec<u8>)],
    ) -> Result<(), DsError> {
        let added_refs: BTreeSet<&[u8]> = added.iter().map(|(_, r)| r.as_slice()).collect();
        for welcome in welcomes {
            for secret_ref in welcome_recipients(welcome.as_slice())? {
                if !added_refs.contains(secret_ref.as_slice()) {
                    return Err(DsError::refused(
                        DsRule::W1,
                        "a Welcome is addressed to a key package the commit does not add",
                    ));
                }
            }
        }
        Ok(())
    }

    /// Merge a staged commit: the group advances, the queue empties, the commit's GroupInfo
    /// becomes the one served to joiners.
    pub fn merge(&mut self, info: StagedCommitInfo) -> Result<(), DsError> {
        self.group
            .merge_commit(&self.storage, info.staged)
            .map_err(state_err)?;
        self.group_info = info.group_info;
        self.queued_bytes.clear();
        Ok(())
    }

    /// What a joiner needs (`ds.fetch_group_info`): the latest GroupInfo, the ratchet tree
    /// and the proposals queued this epoch.
    pub fn group_info_response(&self) -> Result<GroupInfoResponse, DsError> {
        let tree = self
            .group
            .export_ratchet_tree()
            .tls_serialize_detached()
            .map_err(state_err)?;
        let pending = self
            .queued_bytes
            .values()
            .map(|b| MlsBytes::new(b.clone()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(state_err)?;
        Ok(GroupInfoResponse {
            group_info: MlsBytes::new(self.group_info.clone()).map_err(state_err)?,
            ratchet_tree: MlsBytes::new(tree).map_err(state_err)?,
            pending_proposals: mimi_codec::BoundedVec::new(pending).map_err(state_err)?,
        })
    }

    /// Remove proposals from the hub (as external sender `hub_index`) for the given leaves;
    /// each is verified and queued like any other proposal. Returns the MLSMessage bytes.
    pub fn hub_remove_proposals(
        &mut self,
        leaves: &[u32],
        hub_index: u32,
        signer: &impl openmls_traits::signatures::Signer,
    ) -> Result<Vec<Vec<u8>>, DsError> {
        let mut out = Vec::new();
        for leaf in leaves {
            let message = ExternalProposal::new_remove::<openmls_rust_crypto::OpenMlsRustCrypto>(
                LeafNodeIndex::new(*leaf),
                self.group.group_id().clone(),
                self.group.group_context().epoch(),
                signer,
                SenderExtensionIndex::new(hub_index),
            )
            .map_err(state_err)?;
            let bytes = message.tls_serialize_detached().map_err(state_err)?;
            let staged = self.stage_proposal(&bytes)?;
            self.queue(staged)?;
            out.push(bytes);
        }
        Ok(out)
    }

    /// Check an application message (DS-MLS-2..4): a PrivateMessage of content type
    /// application, for this group, at most [`MAX_PAST_EPOCHS`] old and not from the future.
    /// The hub cannot see the sender or decrypt it.
    pub fn check_application_message(&self, bytes: &[u8]) -> Result<(), DsError> {
        let message = match parse_mls_message(bytes)? {
            MlsMessageBodyIn::PrivateMessage(m) => m,
            _ => {
                return Err(DsError::refused(
                    DsRule::Mls4,
                    "application messages must be PrivateMessages",
                ));
            }
        };
        if message.group_id() != self.group.group_id() {
            return Err(DsError::refused(
                DsRule::Mls2,
                "message is for another group",
            ));
        }
        if message.content_type() != ContentType::Application {
            return Err(DsError::refused(
                DsRule::Mls4,
                "ds.send_message must carry an application message",
            ));
        }
        let epoch = message.epoch().as_u64();
        let current = self.epoch();
        if epoch > current || current - epoch > MAX_PAST_EPOCHS {
            return Err(DsError::refused(
                DsRule::Mls3,
                format!("application message for epoch {epoch}, the group is at {current}"),
            ));
        }
        Ok(())
    }

    /// Encode the whole state for storage.
    ///
    /// Rule DS-STORE-1 (docs/protocol-coverage.md).
    pub fn to_bytes(&self) -> Result<Vec<u8>, DsError> {
        let values = self
            .storage
            .values
            .read()
            .map_err(|_| DsError::State("storage lock poisoned".into()))?;
        let mut entries: Vec<StoredEntry> = values
            .iter()
            .map(|(k, v)| StoredEntry {
                key: VLBytes::new(k.clone()),
                value: VLBytes::new(v.clone()),
            })
            .collect();
        entries.sort_by(|a, b| a.key.as_slice().cmp(b.key.as_slice()));
        let stored = StoredGroup {
            version: STORED_GROUP_VERSION,
            group_id: VLBytes::new(self.group.group_id().as_slice().to_vec()),
            entries,
            group_info: VLBytes::new(self.group_info.clone()),
            queued: self
                .queued_bytes
                .iter()
                .map(|(k, v)| StoredEntry {
                    key: VLBytes::new(k.clone()),
                    value: VLBytes::new(v.clone()),
                })
                .collect(),
        };
        stored.tls_serialize_detached().map_err(state_err)
    }

    /// Load a state written by [`HubGroup::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<HubGroup, DsError> {
        let stored = StoredGroup::tls_deserialize_exact(bytes).map_err(state_err)?;
        if stored.version != STORED_GROUP_VERSION {
            return Err(DsError::State(format!(
                "unknown stored group version {}",
                stored.version
            )));
        }
        let storage = MemoryStorage::default();
        {
            let mut values = storage
                .values
                .write()
                .map_err(|_| DsError::State("storage lock poisoned".into()))?;
            for e in stored.entries {
                values.insert(e.key.as_slice().to_vec(), e.value.as_slice().to_vec());
            }
        }
        let group_id = GroupId::from_slice(stored.group_id.as_slice());
        let group = PublicGroup::load(&storage, &group_id)
            .map_err(state_err)?
            .ok_or_else(|| DsError::State("stored group is incomplete".into()))?;
        Ok(HubGroup {
            crypto: RustCrypto::default(),
            storage,
            group,
            group_info: stored.group_info.as_slice().to_vec(),
            queued_bytes: stored
                .queued
                .into_iter()
                .map(|e| (e.key.as_slice().to_vec(), e.value.as_slice().to_vec()))
                .collect(),
            verified: AtomicU64::new(0),
        })
    }
}

/// The KeyPackageRefs a Welcome is encrypted to (one per new member).
pub fn welcome_recipients(bytes: &[u8]) -> Result<Vec<Vec<u8>>, DsError> {
    match parse_mls_message(bytes)? {
        MlsMessageBodyIn::Welcome(w) => Ok(w
            .secrets()
            .iter()
            .map(|s| s.new_member().as_slice().to_vec())
            .collect()),
        _ => Err(DsError::refused(DsRule::W1, "not a Welcome")),
    }
}
