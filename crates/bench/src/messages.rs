//! Codec messages of realistic sizes, for the load generator's request bodies and the
//! codec micro-benchmarks.
//!
//! The codec carries MLS objects as opaque bytes, so what matters for encoding, decoding
//! and the network is their size, not their content: the MLS objects here are filler bytes
//! of the sizes below. The sizes are those of the default cipher suite
//! (X25519, AES-128-GCM, SHA-256, Ed25519; RFC 9420).

use mimi_codec::{
    BoundedVec, ClientId, CodecError, CommitRequest, Event, EventError, EventResponse, FanoutEvent,
    GroupInfoRequest, GroupInfoResponse, IdentifierDiscoveryCode, IdentifierQuery,
    IdentifierRequest, IdentifierResponse, InfoEvent, JoinRule, KeyPackageEntry, KeyPackageType,
    KeyPackagesRequest, KeyPackagesResponse, MessageBody, MimiMessage, MlsBytes, Opaque,
    ParticipantData, ParticipationState, ParticipationStateChange, Permission, PolicyAction,
    ProposalRequest, Role, RoomId, RoomPolicy, RoomState, SecurityConfig, SendMessageRequest,
    Sender, ServerName, Text, UserEvent, UserId,
    mls_ids::{DEFAULT_CIPHER_SUITE, SECURITY_PROTOCOL_MLS10},
};
use mimi_codec::{CheckInviteRequest, ErrorCode};

/// Plaintext of the benchmark's application message: a short chat message in a MIMI
/// content container.
pub const APPLICATION_PLAINTEXT_LEN: usize = 900;
/// A PrivateMessage around [`APPLICATION_PLAINTEXT_LEN`] bytes: group ID (a room ID),
/// epoch, content type, authenticated data, the encrypted sender data (sender leaf,
/// generation, reuse guard, AEAD tag) and the AEAD-encrypted content with its signature
/// (64 bytes), padding and tag: about 1 KiB on the wire.
pub const APPLICATION_MESSAGE_LEN: usize = 1024;
/// A PublicMessage commit with an update path in a group of about 1,000 clients (ten
/// levels: per level an HPKE public key and one encrypted path secret), the committer's
/// new leaf node, signature, membership and confirmation tags.
pub const COMMIT_LEN: usize = 2 * 1024;
/// A GroupInfo (without the ratchet tree): the GroupContext with its extensions (the
/// RoomState of a small room among them), the confirmation tag and the signature.
pub const GROUP_INFO_LEN: usize = 1536;
/// A Welcome for one new client: one encrypted group secret and the encrypted GroupInfo.
pub const WELCOME_LEN: usize = 1800;
/// One KeyPackage: HPKE init key, leaf node with credential, capabilities and lifetime,
/// and two signatures.
pub const KEY_PACKAGE_LEN: usize = 320;
/// One encrypted group secret in a Welcome (key package reference and HPKE ciphertext).
pub const GROUP_SECRET_LEN: usize = 120;
/// A ratchet tree of a group of 100 clients (leaf nodes with credentials, parent nodes).
pub const RATCHET_TREE_100_LEN: usize = 100 * 260;
/// An `m.room.user` proposal (a PublicMessage holding a UserEvent custom proposal).
pub const USER_PROPOSAL_LEN: usize = 400;

/// The names every benchmark message uses.
#[derive(Debug, Clone)]
pub struct Names {
    /// The hub of the benchmark rooms.
    pub hub: ServerName,
    /// A follower.
    pub follower: ServerName,
    /// A user at the hub.
    pub alice: UserId,
    /// A user at the follower.
    pub bob: UserId,
}

/// Identifiers of the benchmark (`hub.bench.test`, `follower.bench.test`).
pub fn names() -> Result<Names, CodecError> {
    let hub: ServerName = parse("hub.bench.test")?;
    let follower: ServerName = parse("follower.bench.test")?;
    Ok(Names {
        alice: UserId::new("alice", &hub).map_err(CodecError::from)?,
        bob: UserId::new("bob", &follower).map_err(CodecError::from)?,
        hub,
        follower,
    })
}

fn parse<T: std::str::FromStr<Err = mimi_codec::IdentifierError>>(
    s: &str,
) -> Result<T, CodecError> {
    s.parse().map_err(CodecError::from)
}

/// The room of index `index` at `hub` (`!bench-<index>:<hub>`).
pub fn room(index: u64, hub: &ServerName) -> Result<RoomId, CodecError> {
    RoomId::new(&format!("bench-{index}"), hub).map_err(CodecError::from)
}

/// `len` bytes standing in for an MLS object: a well-framed application PrivateMessage
/// (RFC 9420 §6.3: version, wire format, empty group ID, epoch 0, empty AAD and sender
/// data) whose ciphertext is a repeating, non-zero pattern. Events carry bare MLSMessages,
/// which the codec delimits by their framing, so filler bytes must frame as one.
pub fn mls_filler(len: usize, tag: u8) -> Result<MlsBytes, CodecError> {
    const HEADER: [u8; 16] = [0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0];
    let body = len.saturating_sub(HEADER.len());
    // The ciphertext's varint prefix takes 1, 2 or 4 bytes (RFC 9420 §2.1.2).
    let n = if body <= 64 {
        body.saturating_sub(1)
    } else if body <= 16_385 {
        body - 2
    } else {
        body - 4
    };
    let mut bytes = HEADER.to_vec();
    match n {
        0..=63 => bytes.push(n as u8),
        64..=16_383 => bytes.extend((0x4000 | n as u16).to_be_bytes()),
        _ => bytes.extend((0x8000_0000 | n as u32).to_be_bytes()),
    }
    bytes.extend((0..n).map(|i| tag.wrapping_add(i as u8) | 1));
    Opaque::new(bytes)
}

/// `len` bytes standing in for a ratchet tree: a well-formed RFC 9420 `RatchetTree` vector
/// (one length prefix) of absent nodes, `optional<Node>` being one presence byte each.
pub fn tree_filler(len: usize) -> Result<MlsBytes, CodecError> {
    let n = if len <= 64 {
        len.saturating_sub(1)
    } else if len <= 16_385 {
        len - 2
    } else {
        len - 4
    };
    let mut bytes = Vec::with_capacity(len);
    match n {
        0..=63 => bytes.push(n as u8),
        64..=16_383 => bytes.extend((0x4000 | n as u16).to_be_bytes()),
        _ => bytes.extend((0x8000_0000 | n as u32).to_be_bytes()),
    }
    bytes.resize(bytes.len() + n, 0);
    Opaque::new(bytes)
}

/// A `ds.send_message` event from `sender` in `room` carrying a 1 KiB application message:
/// the request the hub carries most.
pub fn send_message(room: RoomId, sender: &UserId) -> Result<MimiMessage, CodecError> {
    let body = SendMessageRequest {
        application_message: mls_filler(APPLICATION_MESSAGE_LEN, 0x17)?,
    };
    Ok(event(room, sender, Event::DsSendMessage(body)))
}

/// The hub's `200` answer to an accepted event: an `EventResponse` `ok`.
pub fn accepted(room: RoomId, hub: &ServerName) -> MimiMessage {
    MimiMessage::new(
        room,
        Sender::Server(hub.clone()),
        MessageBody::Response(EventResponse::Ok),
    )
}

fn event(room: RoomId, sender: &UserId, event: Event) -> MimiMessage {
    MimiMessage::new(
        room,
        Sender::User(sender.clone()),
        MessageBody::Event(event),
    )
}

/// A commit bundle for a commit that adds `added` clients: the commit (an update path and
/// one Add proposal with a key package per added client), the new GroupInfo, and one
/// Welcome holding a group secret per added client (or no Welcome when nobody is added).
pub fn commit_bundle(added: usize) -> Result<CommitRequest, CodecError> {
    let commit = mls_filler(COMMIT_LEN + added * KEY_PACKAGE_LEN, 0x31)?;
    let welcomes = if added == 0 {
        Vec::new()
    } else {
        vec![mls_filler(WELCOME_LEN + added * GROUP_SECRET_LEN, 0x41)?]
    };
    Ok(CommitRequest {
        commit,
        group_info: mls_filler(GROUP_INFO_LEN, 0x51)?,
        welcomes: BoundedVec::new(welcomes)?,
    })
}

/// A `ds.commit` event carrying [`commit_bundle`]`(added)`.
pub fn commit_event(added: usize) -> Result<MimiMessage, CodecError> {
    let n = names()?;
    Ok(event(
        room(0, &n.hub)?,
        &n.alice,
        Event::DsCommit(commit_bundle(added)?),
    ))
}

/// The default room policy: owners and admins may do everything, members may invite.
pub fn policy() -> Result<RoomPolicy, CodecError> {
    let role = |s: &str| s.parse::<Role>();
    let admins = BoundedVec::new(vec![role("owner")?, role("admin")?])?;
    let everyone = BoundedVec::new(vec![role("owner")?, role("admin")?, role("member")?])?;
    let permission =
        |action, roles: &BoundedVec<Role, { mimi_codec::limits::MAX_ROLES_PER_PERMISSION }>| {
            Permission {
                action,
                roles: roles.clone(),
            }
        };
    Ok(RoomPolicy {
        policy_id: Text::new("mimi.roles.v1")?,
        join_rule: JoinRule::MembersOnly,
        permissions: BoundedVec::new(vec![
            permission(PolicyAction::Invite, &everyone),
            permission(PolicyAction::Add, &admins),
            permission(PolicyAction::Kick, &admins),
            permission(PolicyAction::Ban, &admins),
            permission(PolicyAction::Unban, &admins),
            permission(PolicyAction::ChangeRole, &admins),
        ])?,
    })
}

/// A room state with `participants` joined participants spread over ten servers.
pub fn room_state(participants: usize) -> Result<RoomState, CodecError> {
    let n = names()?;
    let member: Role = "member".parse()?;
    let servers = (0..10)
        .map(|i| parse::<ServerName>(&format!("p{i}.bench.test")))
        .collect::<Result<Vec<_>, _>>()?;
    let mut list = Vec::with_capacity(participants);
    for i in 0..participants {
        let server = &servers[i % servers.len()];
        list.push(ParticipantData {
            user_id: UserId::new(&format!("user{i}"), server).map_err(CodecError::from)?,
            role: member.clone(),
            state: ParticipationState::Join,
        });
    }
    Ok(RoomState {
        room_id: room(0, &n.hub)?,
        participants: BoundedVec::new(list)?,
        policy: policy()?,
        security: SecurityConfig {
            protocol: Text::new(SECURITY_PROTOCOL_MLS10)?,
            cipher_suite: DEFAULT_CIPHER_SUITE,
        },
    })
}

/// A `POST /check-invite` body: Alice invites Bob into a room of `participants`.
pub fn check_invite(participants: usize) -> Result<CheckInviteRequest, CodecError> {
    let n = names()?;
    Ok(CheckInviteRequest {
        invite: event(
            room(0, &n.hub)?,
            &n.alice,
            Event::RoomUser(mls_filler(USER_PROPOSAL_LEN, 0x61)?),
        ),
        room_info: InfoEvent {
            room_state: room_state(participants)?,
        },
    })
}

/// An identifier-discovery request by handle.
pub fn identifier_request() -> Result<IdentifierRequest, CodecError> {
    Ok(IdentifierRequest {
        query: IdentifierQuery::Handle,
        search_value: Text::new("bob")?,
    })
}

/// A successful identifier-discovery response.
pub fn identifier_response() -> Result<IdentifierResponse, CodecError> {
    Ok(IdentifierResponse {
        code: IdentifierDiscoveryCode::Success,
        uri: Text::new(names()?.bob.as_str())?,
    })
}

/// One `MIMIMessage` per event kind, named by its event type, with realistic sizes.
pub fn event_messages() -> Result<Vec<(&'static str, MimiMessage)>, CodecError> {
    let n = names()?;
    let room0 = room(0, &n.hub)?;
    let bob_phone = ClientId::new(&n.bob, "phone").map_err(CodecError::from)?;
    let events = vec![
        Event::RoomUser(mls_filler(USER_PROPOSAL_LEN, 0x61)?),
        Event::RoomUserUnsigned(UserEvent {
            target: n.bob.clone(),
            change: ParticipationStateChange::Join,
            reason: Text::new("")?,
            follower_server_certificate: None,
            role: None,
        }),
        Event::RoomInfo(InfoEvent {
            room_state: room_state(10)?,
        }),
        Event::DsProposal(ProposalRequest {
            proposals: BoundedVec::new(vec![mls_filler(USER_PROPOSAL_LEN, 0x71)?])?,
        }),
        Event::DsCommit(commit_bundle(1)?),
        Event::DsFetchKeyPackages(KeyPackagesRequest {
            cipher_suite: DEFAULT_CIPHER_SUITE,
            user: n.bob.clone(),
            clients: BoundedVec::new(vec![bob_phone])?,
        }),
        Event::DsFetchGroupInfo(GroupInfoRequest),
        Event::DsSendMessage(SendMessageRequest {
            application_message: mls_filler(APPLICATION_MESSAGE_LEN, 0x17)?,
        }),
    ];
    Ok(events
        .into_iter()
        .map(|e| (e.event_type(), event(room0.clone(), &n.alice, e)))
        .collect())
}

/// One `MIMIMessage` per response kind and a fanned-out event, named.
pub fn response_messages() -> Result<Vec<(&'static str, MimiMessage)>, CodecError> {
    let n = names()?;
    let room0 = room(0, &n.hub)?;
    let hub = Sender::Server(n.hub.clone());
    let bob_phone = ClientId::new(&n.bob, "phone").map_err(CodecError::from)?;
    let response = |r| MimiMessage::new(room0.clone(), hub.clone(), MessageBody::Response(r));
    Ok(vec![
        ("response ok", response(EventResponse::Ok)),
        (
            "response key_package",
            response(EventResponse::KeyPackages(KeyPackagesResponse {
                key_packages: BoundedVec::new(vec![KeyPackageEntry {
                    client: bob_phone,
                    kind: KeyPackageType::MlsKeyPackage,
                    key_package: mls_filler(KEY_PACKAGE_LEN, 0x81)?,
                }])?,
            })),
        ),
        (
            "response group_info (100 clients)",
            response(EventResponse::GroupInfo(GroupInfoResponse {
                group_info: mls_filler(GROUP_INFO_LEN, 0x51)?,
                ratchet_tree: tree_filler(RATCHET_TREE_100_LEN)?,
                pending_proposals: BoundedVec::new(vec![mls_filler(USER_PROPOSAL_LEN, 0x71)?])?,
            })),
        ),
        (
            "response error",
            response(EventResponse::Error(EventError::new(
                ErrorCode::StaleEpoch,
                "commit is for epoch 6; the room is at epoch 7",
            ))),
        ),
        (
            "fanout ds.send_message",
            MimiMessage::new(
                room0.clone(),
                Sender::User(n.alice.clone()),
                MessageBody::Fanout(FanoutEvent {
                    sequence: 1_000_000,
                    prev_hash: Opaque::new(vec![0xAB; 32])?,
                    auth_events: BoundedVec::new(vec![0, 1, 2])?,
                    event: Event::DsSendMessage(SendMessageRequest {
                        application_message: mls_filler(APPLICATION_MESSAGE_LEN, 0x17)?,
                    }),
                }),
            ),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use mimi_codec::Wire;

    use super::*;

    #[test]
    fn send_message_is_about_one_kib_and_round_trips() {
        let n = names().unwrap();
        let message = send_message(room(7, &n.hub).unwrap(), &n.alice).unwrap();
        let bytes = message.encode().unwrap();
        // version 2 + room (1 + 24) + sender (1 + 20) + type 1 + event type (1 + 15)
        // + DS header 3 + application message (a vector of one: 2 + 1024) + DSAuthData 1.
        assert_eq!(bytes.len(), 2 + 25 + 21 + 1 + 16 + 3 + 2 + 1024 + 1);
        assert_eq!(MimiMessage::decode(&bytes).unwrap(), message);
    }

    #[test]
    fn every_fixture_round_trips() {
        for (name, message) in event_messages()
            .unwrap()
            .into_iter()
            .chain(response_messages().unwrap())
        {
            let bytes = message.encode().unwrap();
            assert_eq!(MimiMessage::decode(&bytes).unwrap(), message, "{name}");
        }
        let request = check_invite(1000).unwrap();
        let bytes = request.encode().unwrap();
        assert_eq!(CheckInviteRequest::decode(&bytes).unwrap(), request);
    }

    #[test]
    fn event_fixtures_cover_every_event_type() {
        let names: Vec<&str> = event_messages()
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(
            names,
            [
                "m.room.user",
                "m.room.user.unsigned",
                "m.room.info",
                "ds.proposal",
                "ds.commit",
                "ds.fetch_key_packages",
                "ds.fetch_group_info",
                "ds.send_message",
            ]
        );
    }

    #[test]
    fn commit_bundle_grows_with_the_clients_it_adds() {
        let none = commit_bundle(0).unwrap();
        assert_eq!(none.commit.as_slice().len(), COMMIT_LEN);
        assert!(none.welcomes.is_empty());
        let hundred = commit_bundle(100).unwrap();
        assert_eq!(
            hundred.commit.as_slice().len(),
            COMMIT_LEN + 100 * KEY_PACKAGE_LEN
        );
        assert_eq!(
            hundred.welcomes.as_slice()[0].as_slice().len(),
            WELCOME_LEN + 100 * GROUP_SECRET_LEN
        );
    }

    #[test]
    fn room_state_has_the_asked_participants() {
        assert_eq!(room_state(1000).unwrap().participants.len(), 1000);
    }
}
