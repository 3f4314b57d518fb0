//! The hub's view of a -06 room's MLS group (draft-ietf-mimi-protocol-06): an openmls
//! `PublicGroup` whose GroupContext carries the `app_data_dictionary` with the participant
//! list and roles (`mimi_mls_binding::v06`). [`Room06Group::stage_commit`] verifies a
//! follower's commit as MLS, resolves its `AppDataUpdate` proposals with the binding's
//! rules, and checks every participant-list change and every add or remove of a client
//! against the room policy's roles and capabilities (room-policy-03). Sans-IO: bytes in,
//! decisions out; the hub stores the state as bytes ([`Room06Group::to_bytes`]).

use std::collections::BTreeMap;

use mimi_codec::ClientId;
use mimi_codec::v06::IdentifierUri;
use mimi_codec::v06::room::capability::{
    CAN_ADD_OWN_CLIENT, CAN_ADD_PARTICIPANT, CAN_CHANGE_OWN_ROLE, CAN_CHANGE_USER_ROLE,
    CAN_REMOVE_OWN_CLIENT, CAN_REMOVE_PARTICIPANT, CAN_REMOVE_SELF, CAN_SEND_MESSAGE,
};
use mimi_codec::v06::room::{CapabilityType, ParticipantListData, RoleData};
use mimi_mls_binding::client_id_from_credential;
use mimi_mls_binding::v06::{
    participant_list_of, requires06, resolve_app_data_updates, role_can, role_of, roles_of,
    user_uri_of_client,
};
use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::*;
use openmls_memory_storage::MemoryStorage;
use openmls_rust_crypto::RustCrypto;
use tls_codec::{TlsDeserialize, TlsSerialize, TlsSize, VLBytes};

use crate::mls::parse_mls_message;

/// Why the hub refuses a -06 update or message, in the terms of the -06 answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused06 {
    /// `wrongEpoch` / `epochTooOld`: the message is for another epoch.
    #[error("the group is at epoch {current}")]
    WrongEpoch {
        /// The group's epoch.
        current: u64,
    },
    /// `notAllowed`: the room policy refuses it.
    #[error("not allowed: {0}")]
    NotAllowed(String),
    /// `invalidProposal`: MLS validation or the participant list refuses it.
    #[error("invalid: {0}")]
    Invalid(String),
    /// The stored state cannot be used (not the sender's fault).
    #[error("group state: {0}")]
    State(String),
}

fn invalid(e: impl std::fmt::Display) -> Refused06 {
    Refused06::Invalid(e.to_string())
}

fn state(e: impl std::fmt::Display) -> Refused06 {
    Refused06::State(e.to_string())
}

/// A verified, policy-checked commit, not yet applied.
#[derive(Debug)]
pub struct Staged06 {
    staged: Box<StagedCommit>,
    /// The committing client.
    pub committer: ClientId,
    /// The KeyPackageRefs of the added clients (where their Welcomes go).
    pub added_refs: Vec<Vec<u8>>,
    /// The participant list after the commit.
    pub participants_after: ParticipantListData,
    /// The epoch the commit creates.
    pub new_epoch: u64,
}

/// The hub's state of one -06 room's MLS group.
pub struct Room06Group {
    crypto: RustCrypto,
    storage: MemoryStorage,
    group: PublicGroup,
    /// The latest GroupInfo (bare), from the room's creator or last committer.
    group_info: Vec<u8>,
}

impl std::fmt::Debug for Room06Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Room06Group")
            .field("epoch", &self.epoch())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, TlsSerialize, TlsDeserialize, TlsSize)]
struct Entry {
    key: VLBytes,
    value: VLBytes,
}

#[derive(Debug, TlsSerialize, TlsDeserialize, TlsSize)]
struct Stored {
    version: u16,
    group_id: VLBytes,
    entries: Vec<Entry>,
    group_info: VLBytes,
}

const STORED_VERSION: u16 = 1;

impl Room06Group {
    /// Start the hub's view of a new -06 room from its creator's GroupInfo (an MLSMessage,
    /// with the ratchet tree extension or with `ratchet_tree` given).
    ///
    /// Checks: the group ID is `room`, epoch 0, `hub` is an external sender, the group
    /// requires the -06 capabilities, the participant list and roles are present, and every
    /// member's user is a participant.
    ///
    /// Rule V06-ROOM-1 (docs/protocol-coverage.md).
    pub fn create(
        group_info: &[u8],
        ratchet_tree: &[u8],
        room: &IdentifierUri,
        hub: &ExternalSender,
    ) -> Result<Room06Group, Refused06> {
        let crypto = RustCrypto::default();
        let storage = MemoryStorage::default();
        let verifiable = match parse_mls_message(group_info).map_err(invalid)? {
            MlsMessageBodyIn::GroupInfo(gi) => gi,
            _ => return Err(invalid("expected a GroupInfo")),
        };
        let tree = RatchetTreeIn::tls_deserialize_exact(ratchet_tree)
            .map_err(|e| invalid(format!("ratchet tree: {e}")))?;
        let (group, gi) =
            PublicGroup::from_external(&crypto, &storage, tree, verifiable, ProposalStore::new())
                .map_err(|e| invalid(format!("group: {e}")))?;
        if group.group_id().as_slice() != room.as_str().as_bytes() {
            return Err(invalid("the MLS group ID must be the room URI"));
        }
        if group.group_context().epoch().as_u64() != 0 {
            return Err(invalid("the group must be handed to the hub at epoch 0"));
        }
        let extensions = group.group_context().extensions();
        if !extensions
            .external_senders()
            .is_some_and(|s| s.contains(hub))
        {
            return Err(invalid("external_senders does not contain the hub"));
        }
        if !group.required_capabilities().is_some_and(requires06) {
            return Err(invalid(
                "required_capabilities must include app_data_dictionary and AppDataUpdate",
            ));
        }
        let participants = participant_list_of(extensions).map_err(invalid)?;
        roles_of(extensions).map_err(invalid)?;
        for member in group.members() {
            let client = client_id_from_credential(&member.credential).map_err(invalid)?;
            let user =
                user_uri_of_client(&client).ok_or_else(|| invalid("a member's user has no URI"))?;
            if role_of(&participants, &user).is_none() {
                return Err(Refused06::NotAllowed(format!(
                    "{user} is a member but not a participant"
                )));
            }
        }
        let group_info = gi
            .tls_serialize_detached()
            .map_err(|e| state(format!("GroupInfo: {e}")))?;
        Ok(Room06Group {
            crypto,
            storage,
            group,
            group_info,
        })
    }

    /// The current epoch.
    pub fn epoch(&self) -> u64 {
        self.group.group_context().epoch().as_u64()
    }

    /// The participant list of the current epoch.
    pub fn participants(&self) -> Result<ParticipantListData, Refused06> {
        participant_list_of(self.group.group_context().extensions()).map_err(state)
    }

    /// The room's `franking_agent` (draft-ietf-mimi-protocol-06 §5.4.1), if it has one.
    pub fn franking_agent(&self) -> Result<Option<mimi_codec::v06::FrankingAgentData>, Refused06> {
        mimi_mls_binding::v06::franking_agent_of(self.group.group_context().extensions())
            .map_err(state)
    }

    fn roles(&self) -> Result<RoleData, Refused06> {
        roles_of(self.group.group_context().extensions()).map_err(state)
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

    /// The ratchet tree of the current epoch, TLS-encoded.
    pub fn ratchet_tree(&self) -> Result<Vec<u8>, Refused06> {
        self.group
            .export_ratchet_tree()
            .tls_serialize_detached()
            .map_err(state)
    }

    /// The latest GroupInfo (bare).
    pub fn group_info(&self) -> &[u8] {
        &self.group_info
    }

    /// Whether `user` may do what `capability` allows, by its role in the current list.
    pub fn user_can(&self, user: &IdentifierUri, capability: CapabilityType) -> bool {
        let (Ok(list), Ok(roles)) = (self.participants(), self.roles()) else {
            return false;
        };
        role_of(&list, user).is_some_and(|role| role_can(&roles, role, capability))
    }

    /// Verify a commit (an MLSMessage PublicMessage) for the current epoch and check it
    /// against the room policy: each participant-list change (`canAddParticipant`,
    /// `canRemoveParticipant` or `canRemoveSelf`, `canChangeUserRole` or
    /// `canChangeOwnRole`), each add of a client (`canAddOwnClient` for the committer's own
    /// user, else the user must be a participant after the commit and the committer may
    /// `canAddParticipant`), each remove (`canRemoveOwnClient` or `canRemoveParticipant`),
    /// and that no client of a user who is no longer a participant stays. Nothing changes
    /// until [`Room06Group::merge`].
    ///
    /// Rules V06-UPD-1, V06-UPD-2 (docs/protocol-coverage.md).
    pub fn stage_commit(&self, commit: &[u8]) -> Result<Staged06, Refused06> {
        let message = MlsMessageIn::tls_deserialize_exact(commit)
            .map_err(|e| invalid(format!("not an MLSMessage: {e}")))?
            .try_into_protocol_message()
            .map_err(|_| invalid("not a PublicMessage"))?;
        if message.group_id().as_slice() != self.group.group_id().as_slice() {
            return Err(invalid("the commit is for another group"));
        }
        if message.epoch().as_u64() != self.epoch() {
            return Err(Refused06::WrongEpoch {
                current: self.epoch(),
            });
        }
        if message.content_type() != ContentType::Commit {
            return Err(invalid("expected a commit"));
        }
        let processed = self
            .group
            .process_message(&self.crypto, message)
            .map_err(invalid)?;
        let committer = match processed.sender() {
            Sender::Member(_) => {
                client_id_from_credential(processed.credential()).map_err(invalid)?
            }
            _ => {
                return Err(Refused06::NotAllowed(
                    "only members commit in this hub's -06 rooms".into(),
                ));
            }
        };
        let mut participant_updates = Vec::new();
        let staged = match processed.into_content() {
            ProcessedMessageContent::StagedCommitMessage(sc) => *sc,
            ProcessedMessageContent::UnresolvedAppDataCommit(unresolved) => {
                let mut updater = self.group.app_data_dictionary_updater();
                participant_updates =
                    resolve_app_data_updates(&mut updater, unresolved.app_data_update_proposals())
                        .map_err(invalid)?;
                let changes = updater.changes();
                self.group
                    .stage_app_data_commit(&self.crypto, *unresolved, changes)
                    .map_err(invalid)?
            }
            _ => return Err(invalid("expected a commit")),
        };

        let before = self.participants()?;
        let roles = self.roles()?;
        let me = user_uri_of_client(&committer)
            .ok_or_else(|| invalid("the committer's user has no URI"))?;
        let my_role = role_of(&before, &me).ok_or_else(|| {
            Refused06::NotAllowed(format!("the committer {me} is not a participant"))
        })?;
        let need = |capability: CapabilityType, what: &str| {
            if role_can(&roles, my_role, capability) {
                Ok(())
            } else {
                Err(Refused06::NotAllowed(format!(
                    "role {my_role} of {me} may not {what}"
                )))
            }
        };
        let mut list = before.clone();
        for update in &participant_updates {
            for change in update.changed_role_participants.iter() {
                let target = list.participants.as_slice().get(change.user_index as usize);
                if target.is_some_and(|p| p.user == me) {
                    need(CAN_CHANGE_OWN_ROLE, "change its own role")?;
                } else {
                    need(CAN_CHANGE_USER_ROLE, "change a participant's role")?;
                }
            }
            for &index in update.removed_indices.iter() {
                let target = list.participants.as_slice().get(index as usize);
                if target.is_some_and(|p| p.user == me) {
                    need(CAN_REMOVE_SELF, "leave")?;
                } else {
                    need(CAN_REMOVE_PARTICIPANT, "remove a participant")?;
                }
            }
            if !update.added_participants.is_empty() {
                need(CAN_ADD_PARTICIPANT, "add a participant")?;
            }
            list = list.apply(update).map_err(invalid)?;
        }
        let after = participant_list_of(staged.group_context().extensions()).map_err(invalid)?;
        if after != list {
            return Err(invalid(
                "the new participant list is not the updates' result",
            ));
        }

        let mut added_refs = Vec::new();
        for add in staged.add_proposals() {
            let kp = add.add_proposal().key_package();
            let client = client_id_from_credential(kp.leaf_node().credential()).map_err(invalid)?;
            let user = user_uri_of_client(&client).ok_or_else(|| invalid("no user URI"))?;
            if role_of(&after, &user).is_none() {
                return Err(Refused06::NotAllowed(format!(
                    "{client} is added but {user} is not a participant"
                )));
            }
            if user == me {
                need(CAN_ADD_OWN_CLIENT, "add its own client")?;
            } else if role_of(&before, &user).is_some() {
                need(CAN_ADD_PARTICIPANT, "add a participant's client")?;
            }
            added_refs.push(
                kp.hash_ref(&self.crypto)
                    .map_err(invalid)?
                    .as_slice()
                    .to_vec(),
            );
        }
        let members: BTreeMap<u32, ClientId> = self.members().into_iter().collect();
        let mut removed = Vec::new();
        for remove in staged.remove_proposals() {
            let leaf = remove.remove_proposal().removed().u32();
            let client = members
                .get(&leaf)
                .ok_or_else(|| invalid("removes an empty leaf"))?;
            removed.push(leaf);
            let user = user_uri_of_client(client).ok_or_else(|| invalid("no user URI"))?;
            if role_of(&after, &user).is_none() {
                continue; // the participant's removal was checked above
            }
            if user == me {
                need(CAN_REMOVE_OWN_CLIENT, "remove its own client")?;
            } else {
                need(CAN_REMOVE_PARTICIPANT, "remove a participant's client")?;
            }
        }
        for (leaf, client) in &members {
            let user = user_uri_of_client(client).ok_or_else(|| invalid("no user URI"))?;
            if !removed.contains(leaf) && role_of(&after, &user).is_none() {
                return Err(Refused06::NotAllowed(format!(
                    "{user} is no longer a participant but its client {client} stays"
                )));
            }
        }
        let new_epoch = staged.group_context().epoch().as_u64();
        Ok(Staged06 {
            staged: Box::new(staged),
            committer,
            added_refs,
            participants_after: after,
            new_epoch,
        })
    }

    /// Apply a staged commit; `group_info` (bare) is the new epoch's GroupInfo from the
    /// committer.
    pub fn merge(&mut self, staged: Staged06, group_info: Vec<u8>) -> Result<(), Refused06> {
        self.group
            .merge_commit(&self.storage, *staged.staged)
            .map_err(state)?;
        self.group_info = group_info;
        Ok(())
    }

    /// Check an application message (an MLSMessage PrivateMessage) for this room: the group
    /// and the current epoch, and that the sending user may send.
    ///
    /// Rule V06-SUB-1 (docs/protocol-coverage.md).
    pub fn check_application(
        &self,
        message: &[u8],
        sender: &IdentifierUri,
    ) -> Result<(), Refused06> {
        let protocol = MlsMessageIn::tls_deserialize_exact(message)
            .map_err(|e| invalid(format!("not an MLSMessage: {e}")))?
            .try_into_protocol_message()
            .map_err(|_| invalid("not a PrivateMessage"))?;
        if protocol.group_id().as_slice() != self.group.group_id().as_slice() {
            return Err(invalid("the message is for another group"));
        }
        if protocol.content_type() != ContentType::Application {
            return Err(invalid("expected an application message"));
        }
        if protocol.epoch().as_u64() != self.epoch() {
            return Err(Refused06::WrongEpoch {
                current: self.epoch(),
            });
        }
        if !self.user_can(sender, CAN_SEND_MESSAGE) {
            return Err(Refused06::NotAllowed(format!("{sender} may not send")));
        }
        Ok(())
    }

    /// The current GroupInfo and ratchet tree (`full`) with the proposals pending this
    /// epoch (none: this hub takes commits only), TLS-encoded as `GroupInfoRatchetTreeTBE`
    /// and sealed with `EncryptWithLabel(recipient, "GroupInfo and ratchet_tree
    /// encryption", room_id, ...)` (RFC 9420 §5.1.3: HPKE base mode, the info the
    /// `EncryptContext`, no AAD) in the room's cipher suite.
    ///
    /// Rule V06-GI-1 (docs/protocol-coverage.md).
    pub fn sealed_group_info(
        &self,
        recipient: &[u8],
        room: &IdentifierUri,
    ) -> Result<mimi_codec::v06::HpkeCiphertext, Refused06> {
        use mimi_codec::v06::labels::{GROUP_INFO_ENCRYPTION, encrypt_context};
        use mimi_codec::v06::{GroupInfo, GroupInfoRatchetTreeTbe, RatchetTreeOption};
        use mimi_codec::{Opaque, Wire};
        use openmls_traits::crypto::OpenMlsCrypto as _;
        let tbe = GroupInfoRatchetTreeTbe {
            group_info: GroupInfo::from_bytes(&self.group_info).map_err(state)?,
            ratchet_tree_option: RatchetTreeOption::Full(
                Opaque::new(self.ratchet_tree()?).map_err(state)?,
            ),
            pending_proposals: mimi_codec::BoundedVec::default(),
        };
        let info =
            encrypt_context(GROUP_INFO_ENCRYPTION, room.as_str().as_bytes()).map_err(state)?;
        let sealed = self
            .crypto
            .hpke_seal(
                self.group.ciphersuite().hpke_config(),
                recipient,
                &info,
                &[],
                &tbe.encode().map_err(state)?,
            )
            .map_err(|e| invalid(format!("groupInfoPublicKey: {e:?}")))?;
        Ok(mimi_codec::v06::HpkeCiphertext {
            kem_output: Opaque::new(sealed.kem_output.as_slice().to_vec()).map_err(state)?,
            ciphertext: Opaque::new(sealed.ciphertext.as_slice().to_vec()).map_err(state)?,
        })
    }

    /// The cipher suite of the room's group (its `u16`).
    pub fn cipher_suite(&self) -> u16 {
        u16::from(self.group.ciphersuite())
    }

    /// The state as bytes, for the hub's storage.
    pub fn to_bytes(&self) -> Result<Vec<u8>, Refused06> {
        let values = self
            .storage
            .values
            .read()
            .map_err(|_| state("storage lock poisoned"))?;
        let mut entries: Vec<Entry> = values
            .iter()
            .map(|(k, v)| Entry {
                key: VLBytes::new(k.clone()),
                value: VLBytes::new(v.clone()),
            })
            .collect();
        entries.sort_by(|a, b| a.key.as_slice().cmp(b.key.as_slice()));
        Stored {
            version: STORED_VERSION,
            group_id: VLBytes::new(self.group.group_id().as_slice().to_vec()),
            entries,
            group_info: VLBytes::new(self.group_info.clone()),
        }
        .tls_serialize_detached()
        .map_err(state)
    }

    /// Load a state written by [`Room06Group::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Room06Group, Refused06> {
        let stored = Stored::tls_deserialize_exact(bytes).map_err(state)?;
        if stored.version != STORED_VERSION {
            return Err(state(format!("unknown version {}", stored.version)));
        }
        let storage = MemoryStorage::default();
        {
            let mut values = storage
                .values
                .write()
                .map_err(|_| state("storage lock poisoned"))?;
            for e in stored.entries {
                values.insert(e.key.as_slice().to_vec(), e.value.as_slice().to_vec());
            }
        }
        let group = PublicGroup::load(&storage, &GroupId::from_slice(stored.group_id.as_slice()))
            .map_err(state)?
            .ok_or_else(|| state("no group in the stored state"))?;
        Ok(Room06Group {
            crypto: RustCrypto::default(),
            storage,
            group,
            group_info: stored.group_info.as_slice().to_vec(),
        })
    }
}
