//! The client side of -06 rooms (draft-ietf-mimi-protocol-06): an MLS group whose group ID
//! is the room URI and whose GroupContext carries the `app_data_dictionary` with the
//! participant list, metadata and roles (`mimi_mls_binding::v06`). Participant-list
//! changes are `AppDataUpdate` proposals committed by value; a received commit carrying them
//! is resolved with the same binding function the hub uses.

use mimi_codec::ClientId;
use mimi_codec::v06::IdentifierUri;
use mimi_codec::v06::room::{ParticipantListData, ParticipantListUpdate};
use mimi_mls_binding::v06::{
    Room06Components, participant_list_of, participant_list_update_proposal,
    resolve_app_data_updates, room06_extensions,
};
use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::*;

use super::{
    CIPHERSUITE, E2eError, MlsClient, MlsObject, Operation, WIRE_FORMAT_POLICY, commit_error,
    join_config, members_of, mimi_capabilities, parse_key_package, process_error, sender_of,
    to_bytes,
};
use crate::MessageSender;

/// A -06 commit, ready for an `UpdateRequest` (bare structures, as -06 writes them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit06 {
    /// The commit, an MLSMessage (PublicMessage).
    pub commit: Vec<u8>,
    /// The bare Welcome for the added clients, if any.
    pub welcome: Option<Vec<u8>>,
    /// The bare GroupInfo of the new epoch (without the ratchet tree extension).
    pub group_info: Vec<u8>,
    /// The new epoch's ratchet tree, TLS-encoded.
    pub ratchet_tree: Vec<u8>,
}

/// What a -06 commit does.
#[derive(Debug, Clone, Default)]
pub struct Plan06 {
    /// Key packages (MLSMessage or bare KeyPackage bytes) of clients to add.
    pub adds: Vec<Vec<u8>>,
    /// Clients to remove.
    pub removes: Vec<ClientId>,
    /// The participant-list change, committed as one `AppDataUpdate` proposal by value.
    pub participants: Option<ParticipantListUpdate>,
}

/// The result of [`MlsClient::process06`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Processed06 {
    /// An application message, decrypted.
    Application {
        /// Its sender.
        sender: ClientId,
        /// The plaintext.
        plaintext: Vec<u8>,
    },
    /// A commit, merged.
    Commit {
        /// The committer.
        committer: MessageSender,
        /// The new epoch.
        epoch: u64,
        /// The participant list in the new epoch.
        participants: ParticipantListData,
        /// Whether this client was removed.
        self_removed: bool,
    },
    /// This client's own commit, fanned back: merged now.
    OwnCommit {
        /// The new epoch.
        epoch: u64,
    },
    /// A standalone proposal, stored for the next commit.
    Proposal,
    /// This client's own application message, fanned back.
    OwnMessage,
}

fn group_id(room: &IdentifierUri) -> GroupId {
    GroupId::from_slice(room.as_str().as_bytes())
}

impl MlsClient {
    fn group06(&self, room: &IdentifierUri) -> Result<MlsGroup, E2eError> {
        MlsGroup::load(self.provider.storage(), &group_id(room))
            .map_err(E2eError::mls(Operation::LoadGroup))?
            .ok_or_else(|| E2eError::UnknownRoom06(room.as_str().to_owned()))
    }

    /// Create the MLS group of a new -06 room: group ID = room URI, the components in the
    /// `app_data_dictionary`, the hub as external sender. Returns the GroupInfo (an
    /// MLSMessage with the ratchet tree and ExternalPub) and the tree for the hub.
    ///
    /// Rule V06-MLS-1 (docs/protocol-coverage.md).
    pub fn create_room06(
        &mut self,
        room: &IdentifierUri,
        components: &Room06Components,
        hub: ExternalSender,
    ) -> Result<super::CreatedRoom, E2eError> {
        let config = MlsGroupCreateConfig::builder()
            .ciphersuite(CIPHERSUITE)
            .wire_format_policy(WIRE_FORMAT_POLICY)
            .use_ratchet_tree_extension(true)
            .capabilities(mimi_capabilities())
            .with_group_context_extensions(room06_extensions(components, hub)?)
            .build();
        let group = MlsGroup::new_with_group_id(
            &self.provider,
            &self.signer,
            &config,
            group_id(room),
            self.credential_with_key(),
        )
        .map_err(E2eError::mls(Operation::CreateGroup))?;
        let gi = group
            .export_group_info(self.provider.crypto(), &self.signer, true)
            .map_err(E2eError::mls(Operation::Export))?;
        let ratchet_tree = group
            .export_ratchet_tree()
            .tls_serialize_detached()
            .map_err(E2eError::malformed(MlsObject::RatchetTree))?;
        Ok(super::CreatedRoom {
            group_info: to_bytes(&gi)?,
            ratchet_tree,
        })
    }

    /// The participant list of a -06 room, as this client's group has it.
    pub fn participants06(&self, room: &IdentifierUri) -> Result<ParticipantListData, E2eError> {
        Ok(participant_list_of(self.group06(room)?.extensions())?)
    }

    /// The epoch of a -06 room.
    pub fn epoch06(&self, room: &IdentifierUri) -> Result<u64, E2eError> {
        Ok(self.group06(room)?.epoch().as_u64())
    }

    /// The members of a -06 room: leaf index and client.
    pub fn members06(&self, room: &IdentifierUri) -> Result<Vec<(u32, ClientId)>, E2eError> {
        Ok(members_of(&self.group06(room)?))
    }

    /// Stage a -06 commit carrying `plan`; merge it with [`MlsClient::merge_pending06`] once
    /// the hub accepted it, or drop it with [`MlsClient::clear_pending06`].
    ///
    /// Rule V06-MLS-2 (docs/protocol-coverage.md).
    pub fn commit06(&mut self, room: &IdentifierUri, plan: Plan06) -> Result<Commit06, E2eError> {
        let Plan06 {
            adds,
            removes,
            participants,
        } = plan;
        let key_packages = adds
            .iter()
            .map(|kp| parse_key_package(kp))
            .collect::<Result<Vec<_>, _>>()?;
        let mut group = self.group06(room)?;
        let members = members_of(&group);
        let mut leaves = Vec::new();
        for client in &removes {
            let leaf = members
                .iter()
                .find(|(_, c)| c == client)
                .map(|(i, _)| *i)
                .ok_or_else(|| E2eError::NotInRoom(client.clone()))?;
            leaves.push(LeafNodeIndex::new(leaf));
        }
        let proposals = participants
            .as_ref()
            .map(participant_list_update_proposal)
            .transpose()?;
        let provider = &self.provider;
        let mut stage = group
            .commit_builder()
            .propose_adds(key_packages)
            .propose_removals(leaves)
            .add_proposals(proposals)
            .load_psks(provider.storage())
            .map_err(commit_error)?;
        let mut updater = stage.app_data_dictionary_updater();
        resolve_app_data_updates(&mut updater, stage.app_data_update_proposals())?;
        let changes = updater.changes();
        stage.with_app_data_dictionary_updates(changes);
        let bundle = stage
            .build(provider.rand(), provider.crypto(), &self.signer, |_| true)
            .map_err(commit_error)?
            .stage_commit(provider)
            .map_err(E2eError::mls(Operation::Commit))?;
        let (commit, welcome, group_info) = bundle.into_contents();
        let group_info = group_info.ok_or(E2eError::Mls {
            operation: Operation::Commit,
            source: "openmls made no GroupInfo for the commit".into(),
        })?;
        let welcome = welcome
            .map(|w| w.tls_serialize_detached())
            .transpose()
            .map_err(E2eError::malformed(MlsObject::Welcome))?;
        let ratchet_tree = group
            .pending_commit()
            .map(|_| ())
            .ok_or(E2eError::PendingCommit)
            .and_then(|()| {
                // The tree of the new epoch: the one in the GroupInfo's extension.
                group_info
                    .extensions()
                    .ratchet_tree()
                    .map(|t| t.ratchet_tree().tls_serialize_detached())
                    .transpose()
                    .map_err(E2eError::malformed(MlsObject::RatchetTree))?
                    .ok_or(E2eError::Mls {
                        operation: Operation::Commit,
                        source: "the GroupInfo has no ratchet tree".into(),
                    })
            })?;
        Ok(Commit06 {
            commit: to_bytes(&commit)?,
            welcome,
            group_info: group_info
                .tls_serialize_detached()
                .map_err(E2eError::malformed(MlsObject::GroupInfo))?,
            ratchet_tree,
        })
    }

    /// Merge the staged -06 commit (the hub accepted it).
    pub fn merge_pending06(&mut self, room: &IdentifierUri) -> Result<(), E2eError> {
        let mut group = self.group06(room)?;
        if group.pending_commit().is_none() {
            return Err(E2eError::PendingCommit);
        }
        group
            .merge_pending_commit(&self.provider)
            .map_err(E2eError::mls(Operation::MergeCommit))
    }

    /// Discard the staged -06 commit (the hub refused it).
    pub fn clear_pending06(&mut self, room: &IdentifierUri) -> Result<(), E2eError> {
        let mut group = self.group06(room)?;
        group
            .clear_pending_commit(self.provider.storage())
            .map_err(E2eError::mls(Operation::MergeCommit))
    }

    /// Process an MLSMessage of a -06 room: decrypt an application message, or verify and
    /// merge a commit (its `AppDataUpdate` proposals resolved with the binding's rules).
    ///
    /// Rule V06-MLS-2 (docs/protocol-coverage.md).
    pub fn process06(
        &mut self,
        room: &IdentifierUri,
        message: &[u8],
    ) -> Result<Processed06, E2eError> {
        let protocol = MlsMessageIn::tls_deserialize_exact(message)
            .map_err(E2eError::malformed(MlsObject::ProtocolMessage))?
            .try_into_protocol_message()
            .map_err(|_| E2eError::UnexpectedMessage {
                expected: MlsObject::ProtocolMessage,
            })?;
        let mut group = self.group06(room)?;
        let provider = &self.provider;
        let processed = group
            .process_message(provider, protocol)
            .map_err(process_error)?;
        let sender = sender_of(processed.sender(), processed.credential())?;
        let staged = match processed.into_content() {
            ProcessedMessageContent::ApplicationMessage(m) => {
                return match sender {
                    MessageSender::Member(sender) => Ok(Processed06::Application {
                        sender,
                        plaintext: m.into_bytes(),
                    }),
                    _ => Err(E2eError::UnexpectedMessage {
                        expected: MlsObject::ProtocolMessage,
                    }),
                };
            }
            ProcessedMessageContent::ProposalMessage(qp)
            | ProcessedMessageContent::ExternalJoinProposalMessage(qp) => {
                group
                    .store_pending_proposal(provider.storage(), *qp)
                    .map_err(E2eError::mls(Operation::Process))?;
                return Ok(Processed06::Proposal);
            }
            ProcessedMessageContent::OwnPendingCommit => {
                group
                    .merge_pending_commit(provider)
                    .map_err(E2eError::mls(Operation::MergeCommit))?;
                return Ok(Processed06::OwnCommit {
                    epoch: group.epoch().as_u64(),
                });
            }
            ProcessedMessageContent::OwnPrivateMessage => return Ok(Processed06::OwnMessage),
            ProcessedMessageContent::StagedCommitMessage(staged) => *staged,
            ProcessedMessageContent::UnresolvedAppDataCommit(unresolved) => {
                let mut updater = group.app_data_dictionary_updater();
                resolve_app_data_updates(&mut updater, unresolved.app_data_update_proposals())?;
                let changes = updater.changes();
                group
                    .stage_app_data_commit(provider, *unresolved, changes)
                    .map_err(E2eError::mls(Operation::Process))?
            }
        };
        let participants = participant_list_of(staged.group_context().extensions())?;
        let epoch = staged.group_context().epoch().as_u64();
        let self_removed = staged.self_removed();
        group
            .merge_staged_commit(provider, staged)
            .map_err(E2eError::mls(Operation::MergeCommit))?;
        Ok(Processed06::Commit {
            committer: sender,
            epoch,
            participants,
            self_removed,
        })
    }

    /// Join a -06 room from a bare Welcome (or an MLSMessage Welcome) and, when the Welcome
    /// has no ratchet tree extension, the TLS-encoded tree. Returns the room URI.
    pub fn join_from_welcome06(
        &mut self,
        welcome: &[u8],
        ratchet_tree: Option<&[u8]>,
    ) -> Result<IdentifierUri, E2eError> {
        let welcome = match MlsMessageIn::tls_deserialize_exact(welcome) {
            Ok(m) => match m.extract() {
                MlsMessageBodyIn::Welcome(w) => w,
                _ => {
                    return Err(E2eError::UnexpectedMessage {
                        expected: MlsObject::Welcome,
                    });
                }
            },
            Err(_) => Welcome::tls_deserialize_exact(welcome)
                .map_err(E2eError::malformed(MlsObject::Welcome))?,
        };
        let tree = ratchet_tree
            .map(RatchetTreeIn::tls_deserialize_exact)
            .transpose()
            .map_err(E2eError::malformed(MlsObject::RatchetTree))?;
        let group = StagedWelcome::new_from_welcome(&self.provider, &join_config(), welcome, tree)
            .map_err(super::welcome_error)?
            .into_group(&self.provider)
            .map_err(E2eError::mls(Operation::JoinFromWelcome))?;
        let uri = std::str::from_utf8(group.group_id().as_slice())
            .ok()
            .and_then(|s| s.parse::<IdentifierUri>().ok())
            .ok_or_else(|| {
                E2eError::UnknownRoom06(format!("group id {:?}", group.group_id().as_slice()))
            })?;
        Ok(uri)
    }

    /// Join a -06 room by external commit from a bare GroupInfo (with ExternalPub, as the
    /// hub's `groupInfo` answer carries it) and the TLS-encoded ratchet tree. openmls
    /// verifies the GroupInfo's signature and tree; the group is merged at once (forget
    /// it if the hub refuses the commit). Returns the room and the commit (an MLSMessage).
    pub fn join_by_external_commit06(
        &mut self,
        group_info: &[u8],
        ratchet_tree: &[u8],
    ) -> Result<(IdentifierUri, Vec<u8>), E2eError> {
        // The MLSMessage framing of a GroupInfo (mls10, mls_group_info), then the bare one.
        let framed = [&[0x00, 0x01, 0x00, 0x04][..], group_info].concat();
        let group_info = match MlsMessageIn::tls_deserialize_exact(framed.as_slice())
            .map_err(E2eError::malformed(MlsObject::GroupInfo))?
            .extract()
        {
            MlsMessageBodyIn::GroupInfo(gi) => gi,
            _ => {
                return Err(E2eError::UnexpectedMessage {
                    expected: MlsObject::GroupInfo,
                });
            }
        };
        let tree = RatchetTreeIn::tls_deserialize_exact(ratchet_tree)
            .map_err(E2eError::malformed(MlsObject::RatchetTree))?;
        let builder = MlsGroup::external_commit_builder()
            .with_config(join_config())
            .with_ratchet_tree(tree);
        let (group, bundle) = self.finish_external_join(builder, group_info)?;
        let room = std::str::from_utf8(group.group_id().as_slice())
            .ok()
            .and_then(|s| s.parse::<IdentifierUri>().ok())
            .ok_or_else(|| E2eError::UnknownRoom06("group id is not a URI".into()))?;
        let (commit, _, _) = bundle.into_messages();
        Ok((room, to_bytes(&commit)?))
    }

    /// Sign `content` (already a `SignContent`, e.g. `mimi_codec::v06::labels::sign_content`)
    /// with this client's signature key: the -06 requests signed by the requester
    /// (`KeyMaterialRequest`, `GroupInfoRequest`).
    pub fn sign06(&self, content: &[u8]) -> Result<Vec<u8>, E2eError> {
        openmls_traits::signatures::Signer::sign(&self.signer, content).map_err(|e| E2eError::Mls {
            operation: Operation::Propose,
            source: format!("signing: {e:?}").into(),
        })
    }

    /// Encrypt an application message (a PrivateMessage MLSMessage) for a -06 room.
    pub fn encrypt06(
        &mut self,
        room: &IdentifierUri,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, E2eError> {
        let mut group = self.group06(room)?;
        let message = group
            .create_message(&self.provider, &self.signer, plaintext)
            .map_err(E2eError::mls(Operation::Encrypt))?;
        to_bytes(&message)
    }

    /// Encrypt `application_data` (a MIMI content message whose salt is `salt`) for the -06
    /// `room` with its `franking_tag` in the `frank_aad` Safe AAD component
    /// (draft-ietf-mimi-protocol-06 §5.4.1.1), so the hub franks it; the tag is returned.
    pub fn encrypt06_franked(
        &mut self,
        room: &IdentifierUri,
        application_data: &[u8],
        salt: &[u8],
    ) -> Result<(Vec<u8>, mimi_mls_binding::franking::FrankingTag), E2eError> {
        let (tag, aad) = super::franked_aad_of(application_data, salt)?;
        let mut group = self.group06(room)?;
        group.set_aad(aad);
        let message = group
            .create_message(&self.provider, &self.signer, application_data)
            .map_err(E2eError::mls(Operation::Encrypt))?;
        Ok((to_bytes(&message)?, tag))
    }

    /// The -06 `room`'s `franking_agent` and cipher suite, as this client's group has them.
    pub fn franking_agent06(
        &self,
        room: &IdentifierUri,
    ) -> Result<(Option<mimi_codec::v06::FrankingAgentData>, u16), E2eError> {
        let group = self.group06(room)?;
        let agent = mimi_mls_binding::v06::franking_agent_of(group.extensions())?;
        Ok((agent, u16::from(group.ciphersuite())))
    }
}
