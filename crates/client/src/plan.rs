//! What a commit must carry, computed without I/O: the room state after the user's
//! changes (with mimi-signaling's rules, from the hub's current state) and the clients of
//! departed users still in the group.

use std::collections::BTreeSet;

use mimi_codec::{
    ClientId, ParticipationStateChange, Reason, RoomState, Sender, UserEvent, UserId,
};
use mimi_e2e::{CommitPlan, RemoveTarget};
use mimi_signaling::Room;

use crate::error::ClientError;

/// An `m.room.user` event without reason, certificate or role.
pub fn user_event(target: UserId, change: ParticipationStateChange) -> UserEvent {
    UserEvent {
        target,
        change,
        reason: Reason::default(),
        follower_server_certificate: None,
        role: None,
    }
}

/// The room state after `me` makes `changes`, checked by every participation rule:
/// `Room::from_room_state(current)`, `accept_all`, `to_room_state`. A refusal is
/// [`ClientError::Rejected`] naming the rule, before anything is sent.
///
/// Rules CL-RS-1, CL-SIG-1 (docs/protocol-coverage.md).
pub fn state_after(
    current: &RoomState,
    me: &UserId,
    changes: &[UserEvent],
) -> Result<RoomState, ClientError> {
    let mut room = Room::from_room_state(current)?;
    room.accept_all(&Sender::User(me.clone()), changes)?;
    Ok(room.to_room_state())
}

/// The group's clients whose users are not joined in `state` (they left, were kicked or
/// banned), except those a received Remove proposal already removes.
///
/// Rule CL-LEAVE-1 (docs/protocol-coverage.md).
pub fn departed_clients(
    state: &RoomState,
    members: &[(u32, ClientId)],
    already_removed: &BTreeSet<ClientId>,
) -> Vec<ClientId> {
    let joined: BTreeSet<&UserId> = state
        .participants
        .iter()
        .filter(|p| p.state == mimi_codec::ParticipationState::Join)
        .map(|p| &p.user_id)
        .collect();
    members
        .iter()
        .map(|(_, c)| c)
        .filter(|c| !joined.contains(&c.user()) && !already_removed.contains(*c))
        .cloned()
        .collect()
}

/// The commit of `changes` by `me`: the UserEvents by value, the Adds, a Remove of every
/// client of a user who is not joined afterwards (unless a pending Remove proposal already
/// covers it), and the new room state when it differs from the group's.
///
/// `hub_state` is the hub's current room state (which already includes the changes of
/// proposals it accepted this epoch, committed by reference); `group_state` is the state
/// in the group's context now.
///
/// Rules CL-ADD-1, CL-LEAVE-1 (docs/protocol-coverage.md).
pub fn plan_commit(
    hub_state: &RoomState,
    group_state: &RoomState,
    me: &UserId,
    changes: Vec<UserEvent>,
    adds: Vec<Vec<u8>>,
    members: &[(u32, ClientId)],
    already_removed: &BTreeSet<ClientId>,
) -> Result<CommitPlan, ClientError> {
    let after = state_after(hub_state, me, &changes)?;
    let removes = departed_clients(&after, members, already_removed)
        .into_iter()
        .map(RemoveTarget::Client)
        .collect();
    Ok(CommitPlan {
        user_events: changes,
        adds,
        removes,
        new_room_state: (after != *group_state).then_some(after),
        external_senders: None,
    })
}
