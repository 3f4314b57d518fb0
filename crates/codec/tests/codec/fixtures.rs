//! The values the vector files describe, built in Rust, and the vector-file reader.

use mimi_codec::*;

/// Read a vector file: `#` starts a comment; hex digits may be split by whitespace.
pub fn read_vector(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let hex: String = text
        .lines()
        .map(|line| line.split('#').next().unwrap_or(""))
        .flat_map(|data| data.chars().filter(|c| !c.is_whitespace()))
        .collect();
    hex::decode(&hex).unwrap_or_else(|e| panic!("{path}: bad hex: {e}"))
}

pub fn room() -> RoomId {
    "!r1:a.example".parse().unwrap()
}
pub fn alice() -> UserId {
    "@alice:a.example".parse().unwrap()
}
pub fn bob() -> UserId {
    "@bob:b.example".parse().unwrap()
}
pub fn phone() -> ClientId {
    "@bob:b.example#phone".parse().unwrap()
}
pub fn server(name: &str) -> Sender {
    Sender::Server(name.parse().unwrap())
}
pub fn role(name: &str) -> Role {
    name.parse().unwrap()
}
pub fn mls(bytes: &[u8]) -> MlsBytes {
    MlsBytes::new(bytes.to_vec()).unwrap()
}

/// Hex with spaces.
pub fn h(spec: &str) -> Vec<u8> {
    hex::decode(spec.replace(' ', "")).unwrap()
}

/// An application PrivateMessage (RFC 9420 §6.3) in group `g1`, epoch 1.
pub fn private_app(ciphertext: &[u8]) -> MlsBytes {
    let mut b = h("0001 0002 02 6731 0000000000000001 01 00 00");
    b.push(u8::try_from(ciphertext.len()).unwrap());
    b.extend_from_slice(ciphertext);
    mls(&b)
}

/// A Remove proposal PublicMessage from external sender 0.
pub fn remove_proposal(leaf: u8, sig: u8) -> MlsBytes {
    mls(&h(&format!(
        "0001 0001 02 6731 0000000000000001 02 00000000 00 02 0003 000000{leaf:02x} 02 {sig:02x}{sig:02x}"
    )))
}

/// A commit PublicMessage from leaf 0, no proposals, no path.
pub fn public_commit() -> MlsBytes {
    mls(&h(
        "0001 0001 02 6731 0000000000000001 01 00000000 00 03 00 00 02 5151 02 7c7c 02 3b3b",
    ))
}

/// A GroupInfo MLSMessage.
pub fn group_info_msg() -> MlsBytes {
    mls(&h(
        "0001 0004 0001 0001 02 6731 0000000000000001 02 7474 02 6363 00 00 02 7c7c 00000000 02 5e5e",
    ))
}

/// A Welcome MLSMessage.
pub fn welcome_msg() -> MlsBytes {
    mls(&h("0001 0003 0001 02 5c5c 02 e9e9"))
}

/// Bob's KeyPackage as an MLSMessage.
pub fn key_package_msg() -> MlsBytes {
    let mut b = h("0001 0005 0001 0001 03 111111 03 e1e1e1 03 515151 0001 0e");
    b.extend_from_slice(b"@bob:b.example");
    b.extend(h(
        "02 0001 02 0001 00 00 00 01 0000000000000001 0000000000000002 00 02 5a5a 00 02 4b50",
    ));
    mls(&b)
}

/// A ratchet tree with its one length prefix (`optional<Node> ratchet_tree<V>`).
pub fn ratchet_tree() -> MlsBytes {
    mls(&[0x03, 0x00, 0x00, 0x00])
}

pub fn msg(sender: Sender, body: MessageBody) -> MimiMessage {
    MimiMessage::new(room(), sender, body)
}
pub fn event_from_alice(event: Event) -> MimiMessage {
    msg(Sender::User(alice()), MessageBody::Event(event))
}

pub fn room_state() -> RoomState {
    RoomState {
        room_id: room(),
        participants: BoundedVec::new(vec![
            ParticipantData {
                user_id: alice(),
                role: role("owner"),
                state: ParticipationState::Join,
            },
            ParticipantData {
                user_id: bob(),
                role: role("member"),
                state: ParticipationState::Invite,
            },
        ])
        .unwrap(),
        policy: RoomPolicy {
            policy_id: Text::new("mimi.roles.v1").unwrap(),
            join_rule: JoinRule::Knock,
            permissions: BoundedVec::new(vec![
                Permission {
                    action: PolicyAction::Invite,
                    roles: BoundedVec::new(vec![role("owner"), role("admin")]).unwrap(),
                },
                Permission {
                    action: PolicyAction::Kick,
                    roles: BoundedVec::new(vec![role("owner")]).unwrap(),
                },
            ])
            .unwrap(),
        },
        security: SecurityConfig {
            protocol: Text::new("mls10").unwrap(),
            cipher_suite: 1,
        },
    }
}

pub fn user_event_full() -> UserEvent {
    UserEvent {
        target: bob(),
        change: ParticipationStateChange::Invite,
        reason: Text::new("welcome").unwrap(),
        follower_server_certificate: Some(Opaque::new(vec![1, 2, 3]).unwrap()),
        role: Some(role("member")),
    }
}

pub fn user_event_minimal() -> UserEvent {
    UserEvent {
        target: bob(),
        change: ParticipationStateChange::Leave,
        reason: Text::default(),
        follower_server_certificate: None,
        role: None,
    }
}

pub fn user_event_set_role() -> UserEvent {
    UserEvent {
        target: bob(),
        change: ParticipationStateChange::SetRole,
        reason: Text::default(),
        follower_server_certificate: None,
        role: Some(role("admin")),
    }
}

pub fn proposal_request() -> ProposalRequest {
    ProposalRequest {
        proposals: BoundedVec::new(vec![remove_proposal(1, 0x51), remove_proposal(2, 0x52)])
            .unwrap(),
    }
}

pub fn commit_request() -> CommitRequest {
    CommitRequest {
        commit: public_commit(),
        group_info: group_info_msg(),
        welcomes: BoundedVec::new(vec![welcome_msg()]).unwrap(),
    }
}

pub fn key_packages_request(clients: Vec<ClientId>) -> KeyPackagesRequest {
    KeyPackagesRequest {
        cipher_suite: 1,
        user: bob(),
        clients: BoundedVec::new(clients).unwrap(),
    }
}

pub fn key_packages_response() -> KeyPackagesResponse {
    KeyPackagesResponse {
        key_packages: BoundedVec::new(vec![KeyPackageEntry {
            client: phone(),
            kind: KeyPackageType::MlsKeyPackage,
            key_package: key_package_msg(),
        }])
        .unwrap(),
    }
}

pub fn group_info_response() -> GroupInfoResponse {
    GroupInfoResponse {
        group_info: group_info_msg(),
        ratchet_tree: ratchet_tree(),
        pending_proposals: BoundedVec::new(vec![remove_proposal(1, 0x51)]).unwrap(),
    }
}

pub fn fanout_event() -> FanoutEvent {
    FanoutEvent {
        sequence: 5,
        prev_hash: Opaque::new(vec![0x11; 32]).unwrap(),
        auth_events: BoundedVec::new(vec![0, 2]).unwrap(),
        event: Event::DsSendMessage(SendMessageRequest {
            application_message: private_app(&[0x5a, 0x5b]),
        }),
    }
}

pub fn room_user_event() -> Event {
    Event::RoomUser(remove_proposal(1, 0x51))
}

pub fn check_invite_request() -> CheckInviteRequest {
    CheckInviteRequest {
        invite: event_from_alice(room_user_event()),
        room_info: InfoEvent {
            room_state: room_state(),
        },
    }
}

pub fn search(text: &str) -> SearchText {
    Text::new(text).unwrap()
}
