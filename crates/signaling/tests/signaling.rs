//! Tests of mimi-signaling: the rule table (one or more cases per rule, each asserting the
//! exact acceptance or the exact rule that refuses), room creation and wire state, the
//! client-removal obligation, fan-out, hub sequencing and follower verification, and
//! property tests of the invariants.

// Test helpers unwrap fixed, valid inputs.
#![allow(clippy::unwrap_used)]

#[path = "signaling/cases.rs"]
mod cases;
#[path = "signaling/history.rs"]
mod history;
#[path = "signaling/props.rs"]
mod props;
#[path = "signaling/room_state.rs"]
mod room_state;

use mimi_codec::{
    BoundedVec, FollowerCertificate, ParticipantData, ParticipationState, ParticipationStateChange,
    Reason, Role, RoomId, RoomState, SecurityConfig, Sender, Text, UserEvent, UserId,
};
use mimi_signaling::{Policy, Room, StandardRole};

/// A user ID.
pub fn user(s: &str) -> UserId {
    s.parse().unwrap()
}

/// A user sender.
pub fn by(s: &str) -> Sender {
    Sender::User(user(s))
}

/// A role.
pub fn role(s: &str) -> Role {
    s.parse().unwrap()
}

/// A `m.room.user` change.
pub fn event(target: &str, change: ParticipationStateChange, r: Option<&str>) -> UserEvent {
    UserEvent {
        target: user(target),
        change,
        reason: Reason::default(),
        follower_server_certificate: None,
        role: r.map(role),
    }
}

/// The change with a follower certificate.
pub fn with_cert(mut e: UserEvent) -> UserEvent {
    e.follower_server_certificate = Some(FollowerCertificate::new(vec![7; 40]).unwrap());
    e
}

/// MLS 1.0, the default cipher suite.
pub fn security() -> SecurityConfig {
    SecurityConfig {
        protocol: Text::new("mls10").unwrap(),
        cipher_suite: 1,
    }
}

/// A room in a given state, built through the wire form (so `from_room_state` is exercised).
pub fn room_of(policy: &Policy, people: &[(&str, StandardRole, ParticipationState)]) -> Room {
    let state = RoomState {
        room_id: "!room:a.example".parse::<RoomId>().unwrap(),
        participants: BoundedVec::new(
            people
                .iter()
                .map(|(u, r, s)| ParticipantData {
                    user_id: user(u),
                    role: r.to_role(),
                    state: *s,
                })
                .collect(),
        )
        .unwrap(),
        policy: policy.to_wire().clone(),
        security: security(),
    };
    Room::from_room_state(&state).unwrap()
}
