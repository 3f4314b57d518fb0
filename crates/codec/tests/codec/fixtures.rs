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
        proposals: BoundedVec::new(vec![mls(&[0xa1, 0xa2]), mls(&[0xb1, 0xb2, 0xb3])]).unwrap(),
    }
}

pub fn commit_request() -> CommitRequest {
    CommitRequest {
        commit: mls(&[0xc0, 0x01]),
        group_info: mls(b"abc"),
        welcomes: BoundedVec::new(vec![mls(&[0x77, 0x01])]).unwrap(),
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
            key_package: mls(&[0xc0, 0xff, 0xee]),
        }])
        .unwrap(),
    }
}

pub fn group_info_response() -> GroupInfoResponse {
    GroupInfoResponse {
        group_info: mls(&[0x67, 0x69, 0x01]),
        ratchet_tree: mls(b"tr"),
        pending_proposals: BoundedVec::new(vec![mls(b"pp")]).unwrap(),
    }
}

pub fn fanout_event() -> FanoutEvent {
    FanoutEvent {
        sequence: 5,
        prev_hash: Opaque::new(vec![0x11; 32]).unwrap(),
        auth_events: BoundedVec::new(vec![0, 2]).unwrap(),
        event: Event::DsSendMessage(SendMessageRequest {
            application_message: mls(&[0x5a, 0x5b]),
        }),
    }
}

pub fn room_user_event() -> Event {
    Event::RoomUser(mls(&[0, 1, 0, 1]))
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
