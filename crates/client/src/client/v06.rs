//! -06 rooms (draft-ietf-mimi-protocol-06) for this client: create one at its provider,
//! grant consent, add a user (its key material through the room's hub, one commit with the
//! participant-list update), send, and read what the provider holds for the room (commits,
//! Welcomes, application messages), in order. Every -06 request goes through the client
//! API's relay (`POST /v1/v06/relay`): the provider sends it on as the source provider.
//!
//! The text of a -06 message is its UTF-8 plaintext (`docs/spec-decisions.md`).

use std::collections::BTreeMap;

use mimi_client_api::{create_room06, messages06, relay06, report_abuse};
use mimi_codec::v06::labels::{KEY_MATERIAL_REQUEST_TBS, sign_content};
use mimi_codec::v06::room::{ParticipantListUpdate, RoleIndex, UserRolePair};
use mimi_codec::v06::{
    ClientMaterial, ConsentEntry, ConsentOperation, Credential, FanoutExtra, FanoutMessage,
    GroupInfo, GroupInfoOption, IdentifierUri, KeyMaterialRequest, KeyMaterialRequestTbs,
    KeyMaterialResponse, MimiUri, MimiUriKind, MlsMessage, Protocol, RatchetTreeOption,
    SubmitMessageRequest, SubmitMessageResponse, SubmitOutcome, UpdateOutcome, UpdateRequest,
    UpdateResponse, Welcome,
};
use mimi_codec::{BoundedVec, ClientId, Opaque, Wire};
use mimi_e2e::binding06::new_room_components;
use mimi_e2e::{E2eError, Plan06, Processed06};

use super::Client;
use crate::error::ClientError;

/// The file of the -06 read positions (room URI → messages read).
const CURSORS: &str = "rooms06.json";

fn refused(what: impl Into<String>) -> ClientError {
    ClientError::Refused06(what.into())
}

fn uri(s: &str) -> Result<IdentifierUri, ClientError> {
    s.parse()
        .map_err(|e| ClientError::Usage(format!("{s:?} is not a URI: {e}")))
}

/// A message read from a -06 room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message06 {
    /// The sending client.
    pub sender: ClientId,
    /// The text.
    pub text: String,
    /// The hub's acceptance time (ms since the UNIX epoch).
    pub timestamp: u64,
    /// The decrypted application data (a MIMI content message).
    pub content: Vec<u8>,
    /// The hub's frank, when the room's hub franks (draft-ietf-mimi-protocol-06 §5.4.1)
    /// and it verified (§5.4.1.3).
    pub frank: Option<mimi_codec::v06::Frank>,
    /// Why the message's frank was dropped, when it came with one that did not verify.
    pub frank_refused: Option<String>,
}

/// The text of a -06 message: its MIMI content's text, or the bytes as UTF-8 when they are
/// not MIMI content (a client that sends plain text).
fn text_of(plaintext: &[u8]) -> String {
    match mimi_content::MimiContent::decode(plaintext) {
        Ok(content) => mimi_content::read(&content)
            .text
            .map(|t| t.text.to_owned())
            .unwrap_or_default(),
        Err(_) => String::from_utf8_lossy(plaintext).into_owned(),
    }
}

impl Client {
    /// This client's user as a -06 URI.
    pub fn user_uri06(&self) -> Result<IdentifierUri, ClientError> {
        let user = self.user_id();
        MimiUri::new(&user.server(), MimiUriKind::User, user.localpart())
            .map(|u| IdentifierUri::from(&u))
            .map_err(ClientError::Codec)
    }

    async fn relay(
        &self,
        endpoint: &str,
        variable: &str,
        body: Vec<u8>,
    ) -> Result<(u16, Vec<u8>), ClientError> {
        let answer = self
            .api
            .call(&relay06::Request {
                endpoint: endpoint.to_owned(),
                variable: variable.to_owned(),
                body,
            })
            .await?;
        Ok((answer.status, answer.body))
    }

    /// Create a -06 room `mimi://<this provider>/r/<id>` named `name`, with this client's
    /// user as its owner and this provider as its hub.
    ///
    /// Rule V06-CL-1 (docs/protocol-coverage.md).
    pub async fn create_room06(
        &mut self,
        id: &str,
        name: &str,
    ) -> Result<IdentifierUri, ClientError> {
        let server = self.user_id().server();
        let room = MimiUri::new(&server, MimiUriKind::Room, id)
            .map(|u| IdentifierUri::from(&u))
            .map_err(|e| ClientError::Usage(format!("room id {id:?}: {e}")))?;
        // The hub's external sender, as the first version's prepare hands it out.
        let prepared = self
            .api
            .prepare_room(mimi_codec::JoinRule::MembersOnly)
            .await?;
        let hub = <mimi_e2e::ExternalSender as tls_codec::Deserialize>::tls_deserialize_exact(
            prepared.hub_external_sender.as_slice(),
        )
        .map_err(|_| ClientError::UnexpectedResponse("hub_external_sender does not decode"))?;
        let mut components = new_room_components(&room, name, &self.user_uri06()?)?;
        // The hub franks the room's messages when its franking_agent is in the GroupContext.
        components.franking_agent =
            match &prepared.franking_agent {
                Some(bytes) => Some(mimi_codec::v06::FrankingAgentData::decode(bytes).map_err(
                    |_| ClientError::UnexpectedResponse("franking_agent does not decode"),
                )?),
                None => None,
            };
        let created = self.mls.create_room06(&room, &components, hub)?;
        self.api
            .call(&create_room06::Request {
                room: room.as_str().to_owned(),
                group_info: created.group_info,
                ratchet_tree: created.ratchet_tree,
            })
            .await?;
        Ok(room)
    }

    /// Grant (or revoke) `requester` consent to fetch this user's key material, for
    /// `room` or any room (`updateConsent` to the requester's provider).
    pub async fn consent06(
        &self,
        requester: &str,
        room: Option<&str>,
        grant: bool,
    ) -> Result<(), ClientError> {
        let entry = ConsentEntry {
            operation: if grant {
                ConsentOperation::Grant
            } else {
                ConsentOperation::Revoke
            },
            requester_uri: uri(requester)?,
            target_uri: self.user_uri06()?,
            room_id: room.map(uri).transpose()?,
            client_key_packages: BoundedVec::default(),
            consent_extensions: Default::default(),
        };
        let (status, body) = self
            .relay("updateConsent", requester, entry.encode()?)
            .await?;
        match status {
            200 | 201 => Ok(()),
            _ => Err(refused(format!(
                "consent: {status} {}",
                String::from_utf8_lossy(&body)
            ))),
        }
    }

    /// Add `user` (a user URI) to the -06 `room` with `role`: its key material through the
    /// room's hub, then one commit adding its clients and the participant. Returns the new
    /// epoch.
    pub async fn add06(
        &mut self,
        room: &str,
        user: &str,
        role: RoleIndex,
    ) -> Result<u64, ClientError> {
        let room_uri = uri(room)?;
        let target = uri(user)?;
        let answer = self.key_material06(&room_uri, &target).await?;
        let adds: Vec<Vec<u8>> = answer
            .clients
            .iter()
            .filter_map(|c| match &c.material {
                ClientMaterial::Success(kp) => Some(kp.as_bytes().to_vec()),
                _ => None,
            })
            .collect();
        if adds.is_empty() {
            return Err(refused(format!(
                "no key material for {target}: {:?}",
                answer.user_status
            )));
        }
        let update = ParticipantListUpdate {
            added_participants: BoundedVec::new(vec![UserRolePair {
                user: target,
                role_index: role,
            }])?,
            ..Default::default()
        };
        self.commit06(
            &room_uri,
            Plan06 {
                adds,
                participants: Some(update),
                ..Default::default()
            },
        )
        .await
    }

    /// Remove `user` (a user URI) from the -06 `room`: its participant entry and every
    /// client of it, in one commit (the committer's role needs `canRemoveParticipant`).
    /// Returns the new epoch.
    pub async fn remove06(&mut self, room: &str, user: &str) -> Result<u64, ClientError> {
        let room_uri = uri(room)?;
        let target = uri(user)?;
        let list = self.mls.participants06(&room_uri)?;
        let index = list
            .participants
            .iter()
            .position(|p| p.user == target)
            .and_then(|i| u32::try_from(i).ok())
            .ok_or_else(|| refused(format!("{target} is not a participant")))?;
        let removes: Vec<ClientId> = self
            .mls
            .members06(&room_uri)?
            .into_iter()
            .map(|(_, c)| c)
            .filter(|c| mimi_e2e::binding06::user_uri_of_client(c).as_ref() == Some(&target))
            .collect();
        let update = ParticipantListUpdate {
            removed_indices: BoundedVec::new(vec![index])?,
            ..Default::default()
        };
        self.commit06(
            &room_uri,
            Plan06 {
                removes,
                participants: Some(update),
                ..Default::default()
            },
        )
        .await
    }

    /// Add this user's other devices to the -06 `room` (their key material through the
    /// room's hub; the role needs `canAddOwnClient`). Returns the new epoch.
    pub async fn add_devices06(&mut self, room: &str) -> Result<u64, ClientError> {
        let room_uri = uri(room)?;
        let me = self.user_uri06()?;
        let members: Vec<ClientId> = self
            .mls
            .members06(&room_uri)?
            .into_iter()
            .map(|(_, c)| c)
            .collect();
        let answer = self.key_material06(&room_uri, &me).await?;
        let mut adds = Vec::new();
        for client in answer.clients.iter() {
            let ClientMaterial::Success(kp) = &client.material else {
                continue;
            };
            // The URI of a device is mimi://<provider>/d/<user>%23<device>.
            let known = members.iter().any(|m| {
                client.client_uri.as_str().ends_with(&format!(
                    "/d/{}%23{}",
                    m.user().localpart(),
                    m.device()
                ))
            });
            if !known {
                adds.push(kp.as_bytes().to_vec());
            }
        }
        if adds.is_empty() {
            return Err(refused(format!("no other device of {me} to add")));
        }
        self.commit06(
            &room_uri,
            Plan06 {
                adds,
                ..Default::default()
            },
        )
        .await
    }

    /// `keyMaterial` for `target` in `room`, signed by this client, through the hub.
    async fn key_material06(
        &self,
        room: &IdentifierUri,
        target: &IdentifierUri,
    ) -> Result<KeyMaterialResponse, ClientError> {
        let tbs = KeyMaterialRequestTbs {
            protocol: Protocol::Mls10,
            requesting_user: self.user_uri06()?,
            target_user: target.clone(),
            room_id: room.clone().into(),
            acceptable_ciphersuites: BoundedVec::new(vec![
                mimi_codec::mls_ids::DEFAULT_CIPHER_SUITE,
            ])?,
            required_capabilities: Default::default(),
            requester_signature_key: Opaque::new(self.mls.signature_public_key().to_vec())?,
            requester_credential: Credential {
                credential_type: 1,
                content: Opaque::new(self.config.client_id.as_str().as_bytes().to_vec())?,
            },
        };
        let content = sign_content(KEY_MATERIAL_REQUEST_TBS, &tbs.encode()?)?;
        let request = KeyMaterialRequest {
            key_material_request_signature: Opaque::new(self.mls.sign06(&content)?)?,
            tbs,
        };
        let (status, body) = self
            .relay("keyMaterial", target.as_str(), request.encode()?)
            .await?;
        if status != 200 {
            return Err(refused(format!(
                "keyMaterial: {status} {}",
                String::from_utf8_lossy(&body)
            )));
        }
        Ok(KeyMaterialResponse::decode(&body)?)
    }

    /// Commit `plan` in the -06 `room` through its hub; merged once accepted.
    async fn commit06(&mut self, room: &IdentifierUri, plan: Plan06) -> Result<u64, ClientError> {
        let commit = self.mls.commit06(room, plan)?;
        let request = UpdateRequest::Commit {
            commit: MlsMessage::from_bytes(&commit.commit)?,
            welcome: commit
                .welcome
                .as_deref()
                .map(Welcome::from_bytes)
                .transpose()?,
            group_info_option: GroupInfoOption::Full(GroupInfo::from_bytes(&commit.group_info)?),
            ratchet_tree_option: RatchetTreeOption::DistributionService,
        };
        let answer = self
            .relay("update", room.as_str(), request.encode()?)
            .await
            .and_then(|(status, body)| {
                if status == 200 {
                    Ok(UpdateResponse::decode(&body)?)
                } else {
                    Err(refused(format!(
                        "update: {status} {}",
                        String::from_utf8_lossy(&body)
                    )))
                }
            });
        match answer {
            Ok(UpdateResponse {
                outcome: UpdateOutcome::Success { .. },
                ..
            }) => {
                // Reading it back later is a commit of a past epoch, skipped.
                self.mls.merge_pending06(room)?;
                Ok(self.mls.epoch06(room)?)
            }
            Ok(other) => {
                self.mls.clear_pending06(room)?;
                Err(refused(format!(
                    "{:?}: {}",
                    other.response_code(),
                    other.error_description.as_str()
                )))
            }
            Err(e) => {
                self.mls.clear_pending06(room)?;
                Err(e)
            }
        }
    }

    /// Send `text` to the -06 `room` (`submitMessage` to its hub). Returns the hub's
    /// acceptance time. Read the room first ([`Client::read06`]): a message of a past
    /// epoch is refused (`epochTooOld`).
    pub async fn send06(&mut self, room: &str, text: &str) -> Result<u64, ClientError> {
        let room_uri = uri(room)?;
        // A MIMI content message (its salt makes it frankable), its franking_tag in the
        // frank_aad of the PrivateMessage's AAD (draft-ietf-mimi-protocol-06 §5.4.1.1).
        let salt = crate::messages::fresh_salt();
        let content = mimi_content::ContentBuilder::new(salt)
            .sender(self.user_uri06()?.as_str())
            .room(room_uri.as_str())
            .plain_text(text)
            .build()
            .and_then(|c| c.encode())
            .map_err(|e| ClientError::Usage(format!("message: {e}")))?;
        let (message, _tag) = self.mls.encrypt06_franked(&room_uri, &content, &salt.0)?;
        let request = SubmitMessageRequest {
            protocol: Protocol::Mls10,
            app_message: MlsMessage::from_bytes(&message)?,
            sending_uri: self.user_uri06()?,
        };
        let (status, body) = self.relay("submitMessage", room, request.encode()?).await?;
        if status != 200 {
            return Err(refused(format!(
                "submitMessage: {status} {}",
                String::from_utf8_lossy(&body)
            )));
        }
        match SubmitMessageResponse::decode(&body)?.outcome {
            SubmitOutcome::Accepted {
                accepted_timestamp, ..
            } => Ok(accepted_timestamp),
            other => Err(refused(format!("submitMessage: {other:?}"))),
        }
    }

    /// Ask the provider `domain` (draft-ietf-mimi-protocol-06 §5.8, through this user's
    /// provider) which user has `value` as `field`: every element must match.
    pub async fn identifier_query06(
        &mut self,
        domain: &str,
        field: mimi_codec::v06::SearchField,
        value: &str,
    ) -> Result<mimi_codec::v06::IdentifierResponse, ClientError> {
        let request = mimi_codec::v06::IdentifierRequest {
            query_elements: BoundedVec::new(vec![mimi_codec::v06::QueryElement {
                field,
                search_value: mimi_codec::Text::new(value.to_owned())?,
            }])?,
            id_request_extensions: Default::default(),
        };
        let (status, body) = self
            .relay("identifierQuery", domain, request.encode()?)
            .await?;
        if status != 200 {
            return Err(refused(format!(
                "identifierQuery: {status} {}",
                String::from_utf8_lossy(&body)
            )));
        }
        Ok(mimi_codec::v06::IdentifierResponse::decode(&body)?)
    }

    /// The hub's `frank` of a received message if it verifies as draft-ietf-mimi-protocol-06
    /// §5.4.1.3 says: the room names a `franking_agent` of its hub; the integrity signature
    /// over the content's sender and room and the acceptance time; the AAD's `franking_tag`
    /// from the content and its salt; the content's sender is the MLS sender's user. A frank
    /// that does not verify is dropped (the message is kept, but cannot be reported) with
    /// the reason in [`Message06::frank_refused`].
    ///
    /// Rule V06-FRANK-7 (docs/protocol-coverage.md).
    fn verified_frank06(
        &self,
        room: &IdentifierUri,
        message: &FanoutMessage,
        frank: &mimi_codec::v06::Frank,
        sender: &ClientId,
        plaintext: &[u8],
    ) -> Result<(), String> {
        use mimi_e2e::franking;
        {
            let (agent, suite) = self.mls.franking_agent06(room).map_err(|e| e.to_string())?;
            let agent = agent.ok_or("the room names no franking agent")?;
            let tag = franking::franking_tag_of_message(message.message.as_bytes())
                .map_err(|e| e.to_string())?
                .ok_or("the message carries no franking_tag")?;
            let content =
                mimi_content::MimiContent::decode(plaintext).map_err(|e| e.to_string())?;
            let asserted_sender = content
                .extensions
                .sender_uri
                .as_deref()
                .ok_or("the content asserts no sender")?;
            let sender_uri = mimi_e2e::binding06::user_uri_of_client(sender)
                .ok_or("the sender has no user URI")?;
            if asserted_sender != sender_uri.as_str() {
                return Err(format!(
                    "the content asserts {asserted_sender}, the MLS sender is {sender_uri}"
                ));
            }
            let franked = franking::FrankedMessage {
                application_data: plaintext,
                salt: &content.salt.0,
                asserted_sender,
                asserted_room: content
                    .extensions
                    .room_uri
                    .as_deref()
                    .ok_or("the content asserts no room")?,
                accepted_timestamp: message.timestamp,
                frank,
            };
            franking::verify_received(&franked, Some(&tag), &agent, suite, room)
                .map(drop)
                .map_err(|e| e.to_string())
        }
    }

    /// Report `messages` of the -06 `room` (all sent by one user, each with the hub's frank)
    /// to the room's hub through this user's provider (draft-ietf-mimi-protocol-06 §5.9): the
    /// provider checks each frank against the room's `franking_agent` and sends the
    /// `AbuseReport` on. Returns how many messages the report carried.
    pub async fn report_abuse06(
        &mut self,
        room: &str,
        messages: &[Message06],
        note: &str,
    ) -> Result<usize, ClientError> {
        let room_uri = uri(room)?;
        let (agent, _) = self.mls.franking_agent06(&room_uri)?;
        let agent = agent.ok_or_else(|| {
            ClientError::Usage(format!(
                "{room} has no franking agent: its messages are not franked"
            ))
        })?;
        let mut abuser: Option<IdentifierUri> = None;
        let mut reported = Vec::with_capacity(messages.len());
        for m in messages {
            let frank = m.frank.clone().ok_or_else(|| {
                ClientError::Usage("a message without the hub's frank cannot be reported".into())
            })?;
            let content = mimi_content::MimiContent::decode(&m.content)?;
            let sender =
                content.extensions.sender_uri.as_deref().ok_or_else(|| {
                    ClientError::Usage("a message without its sender's URI".into())
                })?;
            let sender = uri(sender)?;
            match &abuser {
                Some(a) if *a != sender => {
                    return Err(ClientError::Usage(
                        "a report is about the messages of one user".into(),
                    ));
                }
                _ => abuser = Some(sender),
            }
            reported.push(report_abuse::ReportedMessage {
                content: m.content.clone(),
                accepted_timestamp: m.timestamp,
                frank,
            });
        }
        let alleged_abuser =
            abuser.ok_or_else(|| ClientError::Usage("no message to report".into()))?;
        let answer = self
            .api
            .call(&report_abuse::Request {
                room: room_uri,
                alleged_abuser,
                reason: 0,
                note: note.to_owned(),
                anonymous: false,
                messages: reported,
                franking_agent: agent,
            })
            .await?;
        Ok(answer.messages)
    }

    /// Read what the provider holds for the -06 `room` since the last read: join from a
    /// Welcome for this client, process commits, decrypt messages. Returns the new messages.
    pub async fn read06(&mut self, room: &str) -> Result<Vec<Message06>, ClientError> {
        let room_uri = uri(room)?;
        let mut cursors = self.cursors06()?;
        let after = cursors.get(room).copied().unwrap_or(0);
        let page = self
            .api
            .call(&messages06::Request {
                room: room.to_owned(),
                after,
            })
            .await?;
        let mut out = Vec::new();
        let mut read = after;
        for bytes in &page.messages {
            read += 1;
            let message = FanoutMessage::decode(bytes)?;
            let in_room = self.mls.epoch06(&room_uri).is_ok();
            match &message.extra {
                FanoutExtra::Welcome {
                    ratchet_tree_option,
                } if !in_room => {
                    let tree = match ratchet_tree_option {
                        RatchetTreeOption::Full(t) => Some(t.as_slice()),
                        RatchetTreeOption::DistributionService => None,
                    };
                    match self
                        .mls
                        .join_from_welcome06(message.message.as_bytes(), tree)
                    {
                        Ok(_) | Err(E2eError::NoMatchingKeyPackage) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                FanoutExtra::Welcome { .. } => {}
                _ if !in_room => {}
                _ => match self.mls.process06(&room_uri, message.message.as_bytes()) {
                    Ok(Processed06::Application { sender, plaintext }) => {
                        let (frank, frank_refused) = match &message.extra {
                            FanoutExtra::Application { frank: Some(frank) } => match self
                                .verified_frank06(&room_uri, &message, frank, &sender, &plaintext)
                            {
                                Ok(()) => (Some(frank.clone()), None),
                                Err(why) => (None, Some(why)),
                            },
                            _ => (None, None),
                        };
                        out.push(Message06 {
                            sender,
                            text: text_of(&plaintext),
                            content: plaintext,
                            timestamp: message.timestamp,
                            frank,
                            frank_refused,
                        })
                    }
                    Ok(_) => {}
                    // A commit of an epoch this client joined after, or its own message.
                    Err(E2eError::WrongEpoch) => {}
                    Err(e) => return Err(e.into()),
                },
            }
        }
        cursors.insert(room.to_owned(), read);
        self.save_cursors06(&cursors)?;
        Ok(out)
    }

    fn cursors06(&self) -> Result<BTreeMap<String, u64>, ClientError> {
        let path = self.dir.join(CURSORS);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|source| ClientError::StateFile { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(source) => Err(ClientError::Io { path, source }),
        }
    }

    fn save_cursors06(&self, cursors: &BTreeMap<String, u64>) -> Result<(), ClientError> {
        let path = self.dir.join(CURSORS);
        let bytes = serde_json::to_vec(cursors).map_err(|source| ClientError::StateFile {
            path: path.clone(),
            source,
        })?;
        std::fs::write(&path, bytes).map_err(|source| ClientError::Io { path, source })?;
        crate::folder::restrict_files(&self.dir)
    }
}
