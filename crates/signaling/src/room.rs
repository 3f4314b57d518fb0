//! The room: its ID, policy, security configuration and participant list, every
//! participation rule ([`Room::check`]), and the obligations a state change leaves for the
//! MLS layer (which users' clients the next commit must remove, which follower servers
//! enter or leave `external_senders`).
//!
//! A change takes effect as soon as it is accepted ([`Room::accept`]), before any MLS
//! commit carries it (main spec, "Room state").

use std::collections::{BTreeMap, BTreeSet};

use mimi_codec::limits::MAX_PARTICIPANTS;
use mimi_codec::mls_ids::SECURITY_PROTOCOL_MLS10;
use mimi_codec::{
    BoundedVec, IdentifierError, InfoEvent, JoinRule, ParticipantData, ParticipationState,
    ParticipationStateChange as Change, PolicyAction, RoomId, RoomState, SecurityConfig, Sender,
    ServerName, UserEvent, UserId,
};

use crate::policy::{Policy, PolicyError, StandardRole};
use crate::rules::{Rejection, RuleId};

/// Length of the random value a room ID localpart is made from ([`RoomIdSource::Random`]).
pub const ROOM_ID_RANDOM_LEN: usize = 16;

/// A participant's role and participation state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Participant {
    /// The role.
    pub role: StandardRole,
    /// The participation state.
    pub state: ParticipationState,
}

/// What a participation change does, as the main spec names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Another user puts the target in the join state (`join`, sender ≠ target).
    Add,
    /// Another user puts the target in the invite state.
    Invite,
    /// The user joins (`join`, sender = target).
    Join,
    /// The user declines an invite (`leave` by self from invite).
    Decline,
    /// The user leaves, or withdraws a knock (`leave` by self from join or knock).
    Leave,
    /// Another user removes a joined target (`leave`, sender ≠ target).
    Kick,
    /// The target is banned (preemptively too).
    Ban,
    /// A ban is lifted (`leave`, sender ≠ target, target banned).
    Unban,
    /// The user asks to be invited.
    Knock,
    /// The target's role changes.
    SetRole,
}

/// A follower server that enters or leaves the room with this change: the MLS commit
/// carrying it must add (or remove) that server's certificate in `external_senders`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ServerChange {
    /// The server's first user joined: it is now participating.
    FirstUserJoined(ServerName),
    /// The server's last joined user left: it no longer participates.
    LastUserLeft(ServerName),
}

/// An accepted (or, from [`Room::check`], acceptable) participation change and its effects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    operation: Operation,
    sender: UserId,
    target: UserId,
    before: Option<Participant>,
    after: Option<Participant>,
    server_change: Option<ServerChange>,
    participating_after: BTreeSet<ServerName>,
}

impl Transition {
    /// What the change does.
    pub fn operation(&self) -> Operation {
        self.operation
    }

    /// Who made it.
    pub fn sender(&self) -> &UserId {
        &self.sender
    }

    /// Whose participation it changes.
    pub fn target(&self) -> &UserId {
        &self.target
    }

    /// The target's entry before the change (`None`: not on the list).
    pub fn before(&self) -> Option<Participant> {
        self.before
    }

    /// The target's entry after the change (`None`: removed from the list).
    pub fn after(&self) -> Option<Participant> {
        self.after
    }

    /// The follower server entering or leaving the room, if any.
    pub fn server_change(&self) -> Option<&ServerChange> {
        self.server_change.as_ref()
    }

    /// Whether the target was joined and no longer is: the next commit must remove all of
    /// the target's clients (main spec, "Leaves/Kicks").
    pub fn removes_clients(&self) -> bool {
        joined(self.before) && !joined(self.after)
    }

    /// The servers that participate after the change (at least one joined user).
    pub fn participating_after(&self) -> &BTreeSet<ServerName> {
        &self.participating_after
    }

    /// Where the event goes (main spec, "Fanout"): the servers participating after the
    /// change, plus the target's server (the invitee's, the joiner's, the added, kicked,
    /// banned, unbanned or departing user's; see `docs/spec-decisions.md`). The caller
    /// leaves out its own server.
    pub fn fanout_targets(&self) -> BTreeSet<ServerName> {
        let mut targets = self.participating_after.clone();
        targets.insert(self.target.server());
        targets
    }
}

fn joined(p: Option<Participant>) -> bool {
    p.is_some_and(|p| p.state == ParticipationState::Join)
}

/// Where the unique part of a new room ID comes from (the caller supplies uniqueness: this
/// crate has no randomness).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomIdSource {
    /// A localpart the caller chose and knows to be unused.
    Localpart(String),
    /// Random bytes, written as 32 lowercase hex digits.
    Random([u8; ROOM_ID_RANDOM_LEN]),
}

/// Why a room cannot be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreateError {
    /// The localpart does not give a valid room ID.
    #[error("invalid room ID: {0}")]
    RoomId(#[from] IdentifierError),
    /// The security configuration is not one this implementation supports.
    #[error("unsupported security protocol {0:?}")]
    UnsupportedSecurity(String),
}

/// Why a `RoomState` is refused ([`Room::from_room_state`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// The policy is unknown or malformed.
    #[error("policy: {0}")]
    Policy(#[from] PolicyError),
    /// A participant has a role the policy does not define.
    #[error("participant {user} has unknown role {role}")]
    UnknownRole {
        /// The participant.
        user: UserId,
        /// The role.
        role: mimi_codec::Role,
    },
    /// A user appears twice.
    #[error("participant {0} listed twice")]
    DuplicateParticipant(UserId),
    /// Users are joined but none of them is an owner.
    #[error("joined users but no joined owner")]
    NoJoinedOwner,
    /// The security protocol is not supported.
    #[error("unsupported security protocol {0:?}")]
    UnsupportedSecurity(String),
}

/// Pending client removals that a commit left in place ([`Room::commit_applied`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SIG-LEAVE-2: the commit leaves clients of departed users in the group: {users:?}")]
pub struct ClientsNotRemoved {
    /// The departed users who still have clients.
    pub users: Vec<UserId>,
}

/// A room's signaling state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Room {
    id: RoomId,
    policy: Policy,
    security: SecurityConfig,
    participants: BTreeMap<UserId, Participant>,
    /// Joined users per server (only servers with at least one).
    joined_per_server: BTreeMap<ServerName, usize>,
    joined_owners: usize,
    pending_removals: BTreeSet<UserId>,
}

impl Room {
    /// Create a room (main spec, "Creation"): the ID is the unique localpart under the
    /// creator's server, the creator is joined with the owner role.
    pub fn create(
        creator: UserId,
        id: RoomIdSource,
        policy: Policy,
        security: SecurityConfig,
    ) -> Result<Room, CreateError> {
        if security.protocol.as_str() != SECURITY_PROTOCOL_MLS10 {
            return Err(CreateError::UnsupportedSecurity(
                security.protocol.as_str().to_owned(),
            ));
        }
        let localpart = match id {
            RoomIdSource::Localpart(l) => l,
            RoomIdSource::Random(bytes) => bytes.iter().map(|b| format!("{b:02x}")).collect(),
        };
        let id = RoomId::new(&localpart, &creator.server())?;
        let mut room = Room {
            id,
            policy,
            security,
            participants: BTreeMap::new(),
            joined_per_server: BTreeMap::new(),
            joined_owners: 0,
            pending_removals: BTreeSet::new(),
        };
        room.set(
            &creator,
            Some(Participant {
                role: StandardRole::Owner,
                state: ParticipationState::Join,
            }),
        );
        Ok(room)
    }

    /// Rebuild a room from its wire state (an `m.room.info` event, a GroupContext
    /// extension), validating it. No client removals are pending in the result.
    pub fn from_room_state(state: &RoomState) -> Result<Room, StateError> {
        Room::from_state(state, true)
    }

    /// A room as a snapshot stored it ([`crate::Snapshot`]): its wire state, validated
    /// like [`Room::from_room_state`] except for the joined owner (a room the rules led
    /// to a state without one is still that room), and the client removals pending then.
    pub(crate) fn restore(
        state: &RoomState,
        pending_removals: BTreeSet<UserId>,
    ) -> Result<Room, StateError> {
        let mut room = Room::from_state(state, false)?;
        room.pending_removals = pending_removals;
        Ok(room)
    }

    fn from_state(state: &RoomState, check_owner: bool) -> Result<Room, StateError> {
        if state.security.protocol.as_str() != SECURITY_PROTOCOL_MLS10 {
            return Err(StateError::UnsupportedSecurity(
                state.security.protocol.as_str().to_owned(),
            ));
        }
        let policy = Policy::from_wire(&state.policy)?;
        let mut room = Room {
            id: state.room_id.clone(),
            policy,
            security: state.security.clone(),
            participants: BTreeMap::new(),
            joined_per_server: BTreeMap::new(),
            joined_owners: 0,
            pending_removals: BTreeSet::new(),
        };
        for p in &state.participants {
            let role = StandardRole::from_role(&p.role).ok_or_else(|| StateError::UnknownRole {
                user: p.user_id.clone(),
                role: p.role.clone(),
            })?;
            if room.participants.contains_key(&p.user_id) {
                return Err(StateError::DuplicateParticipant(p.user_id.clone()));
            }
            room.set(
                &p.user_id,
                Some(Participant {
                    role,
                    state: p.state,
                }),
            );
        }
        if check_owner && room.joined_total() > 0 && room.joined_owners == 0 {
            return Err(StateError::NoJoinedOwner);
        }
        Ok(room)
    }

    /// The wire state, canonical: participants sorted by user ID bytes, the policy as
    /// received or built. Hub and clients derive byte-identical GroupContext extensions
    /// from it.
    pub fn to_room_state(&self) -> RoomState {
        // BTreeMap over `UserId` (a String) iterates in byte order. SIG-LIMIT-1 and
        // `from_room_state` keep the list within `MAX_PARTICIPANTS`, so the fallback is
        // never taken.
        let participants = self
            .participants
            .iter()
            .map(|(user, p)| ParticipantData {
                user_id: user.clone(),
                role: p.role.to_role(),
                state: p.state,
            })
            .collect();
        RoomState {
            room_id: self.id.clone(),
            participants: BoundedVec::new(participants).unwrap_or_default(),
            policy: self.policy.to_wire().clone(),
            security: self.security.clone(),
        }
    }

    /// The `m.room.info` event for the current state.
    pub fn info_event(&self) -> InfoEvent {
        InfoEvent {
            room_state: self.to_room_state(),
        }
    }

    /// The room ID.
    pub fn id(&self) -> &RoomId {
        &self.id
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The security configuration.
    pub fn security(&self) -> &SecurityConfig {
        &self.security
    }

    /// A user's entry on the participant list.
    pub fn participant(&self, user: &UserId) -> Option<Participant> {
        self.participants.get(user).copied()
    }

    /// The participant list, in user ID order.
    pub fn participants(&self) -> impl Iterator<Item = (&UserId, Participant)> {
        self.participants.iter().map(|(u, p)| (u, *p))
    }

    /// Whether the user is joined.
    pub fn is_joined(&self, user: &UserId) -> bool {
        joined(self.participant(user))
    }

    /// Whether the user's clients may be in the MLS group: the user is joined. The delivery
    /// service refuses an Add of a client whose user is not (the second join flow checks
    /// the `m.room.user` join first, then the joiner's own Add).
    pub fn may_have_clients(&self, user: &UserId) -> bool {
        self.is_joined(user)
    }

    /// The participating servers: those with at least one joined user.
    pub fn participating_servers(&self) -> BTreeSet<ServerName> {
        self.joined_per_server.keys().cloned().collect()
    }

    /// Users who left, were kicked or were banned while joined, and whose clients the next
    /// commit must all remove.
    pub fn pending_client_removals(&self) -> &BTreeSet<UserId> {
        &self.pending_removals
    }

    /// Record that all of `user`'s clients are out of the group (for example the group
    /// never had any). Returns whether a removal was pending.
    pub fn clients_removed(&mut self, user: &UserId) -> bool {
        self.pending_removals.remove(user)
    }

    /// Check a commit against the pending removals: `users_with_clients` are the users who
    /// still have at least one client in the group after the commit. Every pending user must
    /// be absent from it (main spec: "the next `ds.commit` event MUST remove *all* of the
    /// target user's clients"; all departed users in the same operation).
    pub fn check_commit(
        &self,
        users_with_clients: &BTreeSet<UserId>,
    ) -> Result<(), ClientsNotRemoved> {
        let users: Vec<UserId> = self
            .pending_removals
            .intersection(users_with_clients)
            .cloned()
            .collect();
        if users.is_empty() {
            Ok(())
        } else {
            Err(ClientsNotRemoved { users })
        }
    }

    /// [`Room::check_commit`], then clear the pending removals. Unchanged on error.
    pub fn commit_applied(
        &mut self,
        users_with_clients: &BTreeSet<UserId>,
    ) -> Result<(), ClientsNotRemoved> {
        self.check_commit(users_with_clients)?;
        self.pending_removals.clear();
        Ok(())
    }

    /// A commit was accepted: it removed every departed user's clients.
    pub(crate) fn clear_pending_removals(&mut self) {
        self.pending_removals.clear();
    }

    fn joined_total(&self) -> usize {
        self.joined_per_server.values().sum()
    }

    /// Check a participation change sent by `sender` against every rule, without changing
    /// the room.
    pub fn check(&self, sender: &Sender, event: &UserEvent) -> Result<Transition, Rejection> {
        let Sender::User(sender) = sender else {
            return Err(RuleId::Sender1.into());
        };
        let target = &event.target;
        let is_self = sender == target;

        // SIG-EVENT-1: where a role may appear.
        let role_allowed = match event.change {
            Change::Invite | Change::SetRole => true,
            Change::Join => !is_self,
            Change::Leave | Change::Ban | Change::Knock => false,
        };
        if (event.role.is_some() && !role_allowed)
            || (event.change == Change::SetRole && event.role.is_none())
        {
            return Err(RuleId::Event1.into());
        }
        // SIG-EVENT-2: the role is the policy's.
        let given_role = match &event.role {
            Some(role) => Some(StandardRole::from_role(role).ok_or(RuleId::Event2)?),
            None => None,
        };

        let before = self.participant(target);
        let state_before = before.map(|p| p.state);
        let sender_p = self.participant(sender);
        let sender_joined = joined(sender_p);
        let sender_role = sender_p.map_or(StandardRole::Member, |p| p.role);
        let allows = |action| sender_joined && self.policy.allows(sender_role, action);
        use ParticipationState as S;

        let (operation, after) = match event.change {
            Change::Join if !is_self => {
                if matches!(state_before, Some(S::Ban | S::Join)) {
                    return Err(RuleId::Add1.into());
                }
                if !sender_joined {
                    return Err(RuleId::Add2.into());
                }
                self.check_not_pending(target)?;
                if !allows(PolicyAction::Add) {
                    return Err(RuleId::Add3.into());
                }
                let role = self.granted_role(sender_role, given_role, before)?;
                (
                    Operation::Add,
                    Some(Participant {
                        role,
                        state: S::Join,
                    }),
                )
            }
            Change::Join => {
                // SIG-JOIN-2 holds by construction: a join for another user is an add.
                if state_before == Some(S::Ban) {
                    return Err(RuleId::Join1.into());
                }
                if state_before == Some(S::Join) {
                    return Err(RuleId::Join3.into());
                }
                self.check_not_pending(target)?;
                if state_before != Some(S::Invite) && self.policy.join_rule() != JoinRule::Public {
                    return Err(RuleId::Join4.into());
                }
                let role = match before {
                    Some(p) if p.state == S::Invite => p.role,
                    _ => StandardRole::Member,
                };
                (
                    Operation::Join,
                    Some(Participant {
                        role,
                        state: S::Join,
                    }),
                )
            }
            Change::Invite => {
                if matches!(state_before, Some(S::Ban | S::Join)) {
                    return Err(RuleId::Inv1.into());
                }
                if !sender_joined {
                    return Err(RuleId::Inv2.into());
                }
                if !allows(PolicyAction::Invite) {
                    return Err(RuleId::Inv3.into());
                }
                let role = self.granted_role(sender_role, given_role, before)?;
                (
                    Operation::Invite,
                    Some(Participant {
                        role,
                        state: S::Invite,
                    }),
                )
            }
            Change::Leave if is_self => {
                let operation = match state_before {
                    Some(S::Invite) => Operation::Decline,
                    Some(S::Join | S::Knock) => Operation::Leave,
                    Some(S::Ban) | None => return Err(RuleId::Leave1.into()),
                };
                (operation, None)
            }
            Change::Leave if state_before == Some(S::Ban) => {
                if !sender_joined {
                    return Err(RuleId::Unban1.into());
                }
                if !allows(PolicyAction::Unban) {
                    return Err(RuleId::Unban2.into());
                }
                (Operation::Unban, None)
            }
            Change::Leave => {
                if state_before != Some(S::Join) {
                    return Err(RuleId::Kick1.into());
                }
                if !sender_joined {
                    return Err(RuleId::Kick2.into());
                }
                if !allows(PolicyAction::Kick) {
                    return Err(RuleId::Kick3.into());
                }
                check_rank(sender_role, before)?;
                (Operation::Kick, None)
            }
            Change::Ban => {
                if is_self {
                    return Err(RuleId::Ban4.into());
                }
                if !sender_joined {
                    return Err(RuleId::Ban1.into());
                }
                if state_before == Some(S::Ban) {
                    return Err(RuleId::Ban2.into());
                }
                if !allows(PolicyAction::Ban) {
                    return Err(RuleId::Ban3.into());
                }
                check_rank(sender_role, before)?;
                let role = before.map_or(StandardRole::Member, |p| p.role);
                (
                    Operation::Ban,
                    Some(Participant {
                        role,
                        state: S::Ban,
                    }),
                )
            }
            Change::Knock => {
                if !is_self {
                    return Err(RuleId::Knock1.into());
                }
                if before.is_some() {
                    return Err(RuleId::Knock2.into());
                }
                if self.policy.join_rule() != JoinRule::Knock {
                    return Err(RuleId::Knock3.into());
                }
                let role = StandardRole::Member;
                (
                    Operation::Knock,
                    Some(Participant {
                        role,
                        state: S::Knock,
                    }),
                )
            }
            Change::SetRole => {
                let Some(current) = before.filter(|p| matches!(p.state, S::Invite | S::Join))
                else {
                    return Err(RuleId::Role1.into());
                };
                if !sender_joined {
                    return Err(RuleId::Role2.into());
                }
                // Invariant: SIG-EVENT-1 made sure a set_role carries a role.
                let new_role = given_role.unwrap_or(current.role);
                if new_role == current.role {
                    return Err(RuleId::Role4.into());
                }
                if !is_self {
                    if !allows(PolicyAction::ChangeRole) {
                        return Err(RuleId::Role3.into());
                    }
                    check_rank(sender_role, before)?;
                }
                if new_role > sender_role {
                    return Err(RuleId::Rank2.into());
                }
                let after = Participant {
                    role: new_role,
                    state: current.state,
                };
                (Operation::SetRole, Some(after))
            }
        };

        // SIG-LIMIT-1: the list must stay encodable.
        if before.is_none() && after.is_some() && self.participants.len() >= MAX_PARTICIPANTS {
            return Err(RuleId::Limit1.into());
        }

        // SIG-OWNER-1: while anyone is joined, some joined owner remains.
        let owner =
            |p: Option<Participant>| joined(p) && p.is_some_and(|p| p.role == StandardRole::Owner);
        let owners_after =
            self.joined_owners + usize::from(owner(after)) - usize::from(owner(before));
        let joined_after =
            self.joined_total() + usize::from(joined(after)) - usize::from(joined(before));
        if joined_after > 0 && owners_after == 0 {
            return Err(RuleId::Owner1.into());
        }

        let server = target.server();
        let server_joined = self.joined_per_server.get(&server).copied().unwrap_or(0);
        let server_change = match (joined(before), joined(after)) {
            (false, true) if server_joined == 0 => Some(ServerChange::FirstUserJoined(server)),
            (true, false) if server_joined == 1 => Some(ServerChange::LastUserLeft(server)),
            _ => None,
        };
        // SIG-CERT-1: a follower certificate only with the server's first joined user.
        if event.follower_server_certificate.is_some()
            && !matches!(server_change, Some(ServerChange::FirstUserJoined(_)))
        {
            return Err(RuleId::Cert1.into());
        }
        let mut participating_after = self.participating_servers();
        match &server_change {
            Some(ServerChange::FirstUserJoined(s)) => {
                participating_after.insert(s.clone());
            }
            Some(ServerChange::LastUserLeft(s)) => {
                participating_after.remove(s);
            }
            None => {}
        }
        Ok(Transition {
            operation,
            sender: sender.clone(),
            target: target.clone(),
            before,
            after,
            server_change,
            participating_after,
        })
    }

    /// Check and apply one change atomically: on error the room is unchanged.
    pub fn accept(&mut self, sender: &Sender, event: &UserEvent) -> Result<Transition, Rejection> {
        let transition = self.check(sender, event)?;
        self.apply(&transition);
        Ok(transition)
    }

    /// Check several changes made by one event (for example the `m.room.user` proposals of
    /// one commit), each against the state the previous ones leave, without changing the
    /// room.
    pub fn check_all(
        &self,
        sender: &Sender,
        events: &[UserEvent],
    ) -> Result<Vec<Transition>, Rejection> {
        match events {
            [] => Ok(Vec::new()),
            [one] => Ok(vec![self.check(sender, one)?]),
            many => {
                let mut scratch = self.clone();
                many.iter().map(|e| scratch.accept(sender, e)).collect()
            }
        }
    }

    /// [`Room::check_all`], then apply them all; on error the room is unchanged.
    pub fn accept_all(
        &mut self,
        sender: &Sender,
        events: &[UserEvent],
    ) -> Result<Vec<Transition>, Rejection> {
        let transitions = self.check_all(sender, events)?;
        for t in &transitions {
            self.apply(t);
        }
        Ok(transitions)
    }

    fn apply(&mut self, t: &Transition) {
        self.set(&t.target, t.after);
        if t.removes_clients() {
            self.pending_removals.insert(t.target.clone());
        }
    }

    /// SIG-PEND-1.
    fn check_not_pending(&self, user: &UserId) -> Result<(), Rejection> {
        if self.pending_removals.contains(user) {
            Err(RuleId::Pend1.into())
        } else {
            Ok(())
        }
    }

    /// The role an invite or add gives: the one named (SIG-RANK-2: not above the sender's),
    /// else the target's current role, else member. Changing the role of someone already on
    /// the list is acting on them (SIG-RANK-1).
    fn granted_role(
        &self,
        sender_role: StandardRole,
        given: Option<StandardRole>,
        before: Option<Participant>,
    ) -> Result<StandardRole, Rejection> {
        let current = before.map(|p| p.role);
        let role = given.or(current).unwrap_or(StandardRole::Member);
        if given.is_some_and(|g| g > sender_role) {
            return Err(RuleId::Rank2.into());
        }
        if current.is_some_and(|c| c != role) {
            check_rank(sender_role, before)?;
        }
        Ok(role)
    }

    /// Replace a user's entry, keeping the counters in step.
    fn set(&mut self, user: &UserId, entry: Option<Participant>) {
        let old = match entry {
            Some(p) => self.participants.insert(user.clone(), p),
            None => self.participants.remove(user),
        };
        let is_owner =
            |p: Option<Participant>| joined(p) && p.is_some_and(|p| p.role == StandardRole::Owner);
        if is_owner(old) {
            self.joined_owners -= 1;
        }
        if is_owner(entry) {
            self.joined_owners += 1;
        }
        let server = user.server();
        if joined(old)
            && let Some(n) = self.joined_per_server.get_mut(&server)
        {
            *n -= 1;
            if *n == 0 {
                self.joined_per_server.remove(&server);
            }
        }
        if joined(entry) {
            *self.joined_per_server.entry(server).or_insert(0) += 1;
        }
    }
}

/// SIG-RANK-1: acting on a participant needs a strictly higher rank, except that owners may
/// act on owners. Users not on the list (a preemptive ban) have no rank.
fn check_rank(sender: StandardRole, target: Option<Participant>) -> Result<(), Rejection> {
    match target {
        Some(t)
            if t.role >= sender
                && !(sender == StandardRole::Owner && t.role == StandardRole::Owner) =>
        {
            Err(RuleId::Rank1.into())
        }
        _ => Ok(()),
    }
}
