//! # mimi-signaling: rooms, participation and policy as a sans-IO core
//!
//! Owns the signaling layer of MIMI (draft-ralston-mimi-protocol, "Room state", "User
//! Participation and Client Membership", "Creation", "Fanout"; draft-ralston-mimi-signaling
//! for the room model and history), for hub and follower alike:
//!
//! * [`Room`]: the room ID, its [`Policy`] (fixed at creation) and the participant list
//!   (user, role, participation state), with canonical conversion to and from the wire
//!   `RoomState`.
//! * Every participation rule, each with a [`RuleId`] (`SIG-…`): [`Room::check`] is pure,
//!   [`Room::accept`] applies atomically; a refusal is a [`Rejection`] naming the rule.
//! * Obligations for the MLS layer: whose clients the next commit must remove
//!   ([`Room::pending_client_removals`]) and which follower servers enter or leave
//!   `external_senders` ([`ServerChange`]).
//! * Fan-out targets ([`Room::participating_servers`], [`Transition::fanout_targets`]).
//! * The linear history: [`Hub`] turns limited events into fully-formed ones (sequence,
//!   hash link, auth events), [`Follower`] verifies them with the same rules.
//!
//! Decoded events in, decisions out. Must not depend on: openmls (the caller decodes
//! `m.room.user` proposals from MLS messages), sockets, disk, clocks or randomness (room ID
//! uniqueness comes in from the caller), or any workspace crate but `mimi-codec`.

mod history;
mod policy;
mod room;
mod rules;

pub use history::{
    Accepted, EVENT_HASH_LEN, EventHash, Follower, HISTORY_WINDOW, History, Hub, HubError,
    LoggedEvent, MAX_CHANGES_PER_EVENT, Received, Snapshot, SnapshotError, VerifyError, event_hash,
    hash_form,
};
pub use policy::{POLICY_ID, Policy, PolicyError, StandardRole};
pub use room::{
    ClientsNotRemoved, CreateError, Operation, Participant, ROOM_ID_RANDOM_LEN, Room, RoomIdSource,
    ServerChange, StateError, Transition,
};
pub use rules::{Rejection, RuleId};
