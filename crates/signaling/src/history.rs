//! The room's linear history: the hub turns limited events into fully-formed ones
//! ([`Hub`]), followers verify what the hub sends ([`Follower`]).
//!
//! A fully-formed event is a [`FanoutEvent`]: its sequence number (the create event is 0),
//! the hash of the previous fully-formed event, and the sequence numbers of its auth events.
//! Exact definitions (also in `docs/spec-decisions.md`):
//!
//! * **Event hash**: SHA-256 of the `Wire` encoding of
//!   `MimiMessage { version: mimi10, room_id, sender, body: Fanout(e) }`, where `e` is the
//!   fully-formed event with, for a `ds.commit`, its `welcomes` emptied ([`hash_form`]):
//!   the hub gives Welcomes only to the servers of the clients they add, so every other
//!   server hashes the commit without them.
//! * **Auth events** of an event sent by `sender` making changes to users `T1..Tn`: the
//!   create event (0), and the latest earlier event that changed the participation or role
//!   of the sender and of each `Ti`, when there is one; sorted, without repeats. The create
//!   event itself has none. Membership and role events are the only state events, so these
//!   are exactly the events that permit this one.
//! * **Changes** ([`UserEvent`]s) of an event: the body of `m.room.user.unsigned`, the
//!   proposal of `m.room.user`, the `m.room.user` proposals of a `ds.proposal` or proposed
//!   by value in a `ds.commit` (the caller decodes MLS; this crate never parses it).

use std::collections::{BTreeMap, BTreeSet};

use mimi_codec::limits::MAX_PARTICIPANTS;
use mimi_codec::{
    BoundedVec, CodecError, ErrorCode, Event, FanoutEvent, MessageBody, MimiMessage,
    ParticipationState, ParticipationStateChange, RoomId, RoomState, SecurityConfig, Sender,
    ServerName, UserEvent, UserId, Wire, WireHash,
};
use sha2::{Digest, Sha256};
use tls_codec::{TlsDeserialize, TlsSerialize, TlsSize};

use crate::policy::{Policy, StandardRole};
use crate::room::{ClientsNotRemoved, CreateError, Room, RoomIdSource, StateError, Transition};
use crate::rules::{Rejection, RuleId};

/// Length of an event hash (SHA-256).
pub const EVENT_HASH_LEN: usize = 32;

/// Most participation changes one event may carry, so that its auth events (the create
/// event, the sender's and each target's latest membership event) fit the wire limit
/// `MAX_AUTH_EVENTS` (256).
pub const MAX_CHANGES_PER_EVENT: usize = 254;

/// An event hash.
pub type EventHash = [u8; EVENT_HASH_LEN];

/// The form of a fully-formed event that is hashed: a `ds.commit` without its Welcomes.
pub fn hash_form(event: &FanoutEvent) -> FanoutEvent {
    let mut form = event.clone();
    if let Event::DsCommit(commit) = &mut form.event {
        commit.welcomes = BoundedVec::default();
    }
    form
}

/// The hash of a fully-formed event (see the module documentation).
pub fn event_hash(
    room_id: &RoomId,
    sender: &Sender,
    event: &FanoutEvent,
) -> Result<EventHash, CodecError> {
    let message = MimiMessage::new(
        room_id.clone(),
        sender.clone(),
        MessageBody::Fanout(hash_form(event)),
    );
    Ok(Sha256::digest(message.encode()?).into())
}

/// One event of the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedEvent {
    /// Who sent it.
    pub sender: Sender,
    /// The fully-formed event.
    pub fanout: FanoutEvent,
    /// Its participation changes.
    pub changes: Vec<UserEvent>,
    /// Its hash.
    pub hash: EventHash,
}

impl LoggedEvent {
    /// The message the hub fans out for this event.
    pub fn message(&self, room_id: &RoomId) -> MimiMessage {
        MimiMessage::new(
            room_id.clone(),
            self.sender.clone(),
            MessageBody::Fanout(self.fanout.clone()),
        )
    }
}

/// How many of the latest events a [`History`] keeps in memory besides the create event.
/// The history itself is complete in the hub's and the followers' storage; memory holds
/// what the protocol needs: the create event, the latest event's hash (the next event's
/// `prev_hash`), each user's latest membership event number (auth events), and the recent
/// events a follower may be sent again (at-least-once delivery) or a server that fell
/// a little behind is sent. Older events are dropped a few at a time, so that memory per
/// room stays flat however long the room lives.
pub const HISTORY_WINDOW: usize = 16;

/// A room's linear history, the same at the hub and at each follower: the create event and
/// the latest [`HISTORY_WINDOW`] (or a few more) events in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History {
    room_id: RoomId,
    /// The create event (sequence 0), then the retained latest events, in order.
    events: Vec<LoggedEvent>,
    /// The sequence number of `events[1]` (1 while nothing has been dropped).
    first_retained: u64,
    /// The sequence number the next event gets.
    next: u64,
    /// Each user's latest membership (participation or role) event.
    latest_membership: BTreeMap<UserId, u64>,
}

impl History {
    fn empty(room_id: RoomId) -> History {
        History {
            room_id,
            events: Vec::new(),
            first_retained: 1,
            next: 0,
            latest_membership: BTreeMap::new(),
        }
    }

    /// The events held in memory, in order: the create event, then the latest ones. While
    /// the history has at most [`HISTORY_WINDOW`] + 1 events these are all of them, and an
    /// event's index is its sequence number.
    pub fn events(&self) -> &[LoggedEvent] {
        &self.events
    }

    /// Whether every event of the history is still in memory.
    pub fn is_whole(&self) -> bool {
        self.first_retained == 1
    }

    /// The event with this sequence number, if it is in memory (see [`History::events`]).
    pub fn get(&self, sequence: u64) -> Option<&LoggedEvent> {
        if sequence == 0 {
            return self.events.first();
        }
        if sequence < self.first_retained || sequence >= self.next {
            return None;
        }
        usize::try_from(sequence - self.first_retained)
            .ok()
            .and_then(|i| self.events.get(i + 1))
    }

    /// The events from `sequence` on (the backlog for a server that newly receives the
    /// room's events), or `None` if some of them are no longer in memory: the caller then
    /// reads them from storage.
    pub fn events_from(&self, sequence: u64) -> Option<&[LoggedEvent]> {
        if sequence >= self.next {
            return Some(&[]);
        }
        let start = if sequence == 0 {
            if !self.is_whole() {
                return None;
            }
            0
        } else if sequence >= self.first_retained {
            usize::try_from(sequence - self.first_retained).ok()? + 1
        } else {
            return None;
        };
        self.events.get(start..)
    }

    /// The sequence number the next event gets.
    pub fn next_sequence(&self) -> u64 {
        self.next
    }

    /// The hash of the latest event.
    pub fn last_hash(&self) -> Option<EventHash> {
        self.events.last().map(|e| e.hash)
    }

    /// The auth events of an event `sender` sends with these changes, at the current end of
    /// the history (see the module documentation).
    pub fn auth_events_for(&self, sender: &Sender, changes: &[UserEvent]) -> Vec<u64> {
        let mut auth = BTreeSet::from([0]);
        let users = std::iter::once(match sender {
            Sender::User(u) => Some(u),
            Sender::Server(_) => None,
        })
        .flatten()
        .chain(changes.iter().map(|c| &c.target));
        for user in users {
            if let Some(seq) = self.latest_membership.get(user) {
                auth.insert(*seq);
            }
        }
        auth.into_iter().collect()
    }

    /// The auth chain of an event: its auth events, theirs, and so on (the event itself
    /// excluded). `None` if there is no such event in memory, or if an event of its chain
    /// is no longer in memory.
    pub fn auth_chain(&self, sequence: u64) -> Option<BTreeSet<u64>> {
        let start = self.get(sequence)?;
        let mut chain = BTreeSet::new();
        let mut todo: Vec<u64> = start.fanout.auth_events.iter().copied().collect();
        while let Some(seq) = todo.pop() {
            if chain.insert(seq) {
                todo.extend(self.get(seq)?.fanout.auth_events.iter().copied());
            }
        }
        Some(chain)
    }

    fn push(&mut self, event: LoggedEvent) {
        let seq = self.next;
        for change in &event.changes {
            self.latest_membership.insert(change.target.clone(), seq);
        }
        if let (0, Sender::User(creator)) = (seq, &event.sender) {
            self.latest_membership.insert(creator.clone(), 0);
        }
        self.events.push(event);
        self.next = seq.saturating_add(1);
        // Drop the oldest retained events a quarter window at a time (the create event
        // stays).
        let retained = self.events.len() - 1;
        if retained >= HISTORY_WINDOW + HISTORY_WINDOW / 4 {
            let drop = retained - HISTORY_WINDOW;
            self.events.drain(1..=drop);
            self.first_retained += drop as u64;
        }
    }

    /// The fully-formed event that would come next for this limited event.
    fn form(&self, sender: &Sender, event: Event, changes: &[UserEvent]) -> FanoutEvent {
        let prev_hash = self
            .last_hash()
            .and_then(|h| WireHash::new(h.to_vec()).ok())
            .unwrap_or_default();
        FanoutEvent {
            sequence: self.next_sequence(),
            prev_hash,
            // The create event has no auth events; every later one names it. The count is
            // within the limit (SIG-HIST-4), so the fallback is never taken.
            auth_events: if self.events.is_empty() {
                BoundedVec::default()
            } else {
                BoundedVec::new(self.auth_events_for(sender, changes)).unwrap_or_default()
            },
            event,
        }
    }
}

/// SIG-HIST-1..4 and SIG-UNSIGNED-1: the event fits in the history after creation, and its
/// changes match it.
fn check_shape(event: &Event, sender: &Sender, changes: &[UserEvent]) -> Result<(), Rejection> {
    use ParticipationStateChange as C;
    match event {
        Event::RoomInfo(_) => return Err(RuleId::Hist1.into()),
        Event::DsFetchKeyPackages(_) | Event::DsFetchGroupInfo(_) => {
            return Err(RuleId::Hist2.into());
        }
        Event::RoomUser(_) if changes.len() != 1 => return Err(RuleId::Hist3.into()),
        Event::DsSendMessage(_) if !changes.is_empty() => return Err(RuleId::Hist3.into()),
        Event::RoomUserUnsigned(body) => {
            if changes != std::slice::from_ref(body) {
                return Err(RuleId::Hist3.into());
            }
            let about_self = matches!(sender, Sender::User(u) if *u == body.target);
            if !about_self || !matches!(body.change, C::Join | C::Knock | C::Leave) {
                return Err(RuleId::Unsigned1.into());
            }
        }
        _ => {}
    }
    if changes.len() > MAX_CHANGES_PER_EVENT {
        return Err(RuleId::Hist4.into());
    }
    Ok(())
}

/// SIG-LEAVE-2 for a commit making `changes` by value (see [`Hub::check_commit`]).
fn check_commit(
    room: &Room,
    sender: &Sender,
    changes: &[UserEvent],
    users_with_clients: &BTreeSet<UserId>,
) -> Result<Vec<Transition>, HubError> {
    if changes.len() > MAX_CHANGES_PER_EVENT {
        return Err(Rejection::new(RuleId::Hist4).into());
    }
    let transitions = room.check_all(sender, changes)?;
    let mut pending = room.pending_client_removals().clone();
    pending.extend(
        transitions
            .iter()
            .filter(|t| t.removes_clients())
            .map(|t| t.target().clone()),
    );
    let users: Vec<UserId> = pending.intersection(users_with_clients).cloned().collect();
    if users.is_empty() {
        Ok(transitions)
    } else {
        Err(ClientsNotRemoved { users }.into())
    }
}

/// Why the hub refused an event. The room and history are unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HubError {
    /// A rule refused it.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// The fully-formed event cannot be encoded (over the size limit).
    #[error("cannot encode the fully-formed event: {0}")]
    Encode(CodecError),
    /// The commit leaves clients of departed users in the group (SIG-LEAVE-2).
    #[error(transparent)]
    ClientsNotRemoved(#[from] ClientsNotRemoved),
}

impl HubError {
    /// The wire `EventError` for the sender.
    pub fn to_event_error(&self) -> mimi_codec::EventError {
        match self {
            HubError::Rejected(r) => r.to_event_error(),
            HubError::Encode(e) => mimi_codec::EventError::new(e.error_code(), self.to_string()),
            HubError::ClientsNotRemoved(_) => {
                mimi_codec::EventError::new(ErrorCode::ClientsNotRemoved, self.to_string())
            }
        }
    }
}

/// An event the hub accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The fully-formed event.
    pub fanout: FanoutEvent,
    /// The participation changes it made, in order.
    pub transitions: Vec<Transition>,
    /// Where it goes: the participating servers after it, plus each change's extra server
    /// ([`Transition::fanout_targets`]). The hub leaves out itself.
    pub targets: BTreeSet<ServerName>,
}

/// The hub's view of one room: its state and history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hub {
    room: Room,
    history: History,
}

impl Hub {
    /// Create a room ([`Room::create`]) and its create event, sequence 0: `m.room.info` with
    /// the initial state, sent by the creator.
    pub fn create(
        creator: UserId,
        id: RoomIdSource,
        policy: Policy,
        security: SecurityConfig,
    ) -> Result<Hub, CreateError> {
        let room = Room::create(creator.clone(), id, policy, security)?;
        let mut history = History::empty(room.id().clone());
        let sender = Sender::User(creator);
        let fanout = history.form(&sender, Event::RoomInfo(room.info_event()), &[]);
        // A one-participant state is far below the message limit; the fallback hash is
        // never used.
        let hash = event_hash(room.id(), &sender, &fanout).unwrap_or_default();
        history.push(LoggedEvent {
            sender,
            fanout,
            changes: Vec::new(),
            hash,
        });
        Ok(Hub { room, history })
    }

    /// The room.
    pub fn room(&self) -> &Room {
        &self.room
    }

    /// The history.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// The create event (sequence 0).
    pub fn create_event(&self) -> Option<&LoggedEvent> {
        self.history.get(0)
    }

    /// Check a limited event without changing anything: what [`Hub::accept`] would do.
    pub fn check(
        &self,
        sender: &Sender,
        event: &Event,
        changes: &[UserEvent],
    ) -> Result<Vec<Transition>, Rejection> {
        check_shape(event, sender, changes)?;
        self.room.check_all(sender, changes)
    }

    /// Accept a limited event: check it, apply its changes, and append it to the history
    /// as a fully-formed event. A `ds.commit` then clears the pending client removals:
    /// call [`Hub::check_commit`] first. Atomic: on error nothing changes.
    pub fn accept(
        &mut self,
        sender: Sender,
        event: Event,
        changes: Vec<UserEvent>,
    ) -> Result<Accepted, HubError> {
        check_shape(&event, &sender, &changes)?;
        let fanout = self.history.form(&sender, event, &changes);
        let hash = event_hash(self.room.id(), &sender, &fanout).map_err(HubError::Encode)?;
        let transitions = self.room.accept_all(&sender, &changes)?;
        if matches!(fanout.event, Event::DsCommit(_)) {
            self.room.clear_pending_removals();
        }
        let mut targets = self.room.participating_servers();
        targets.extend(transitions.iter().map(|t| t.target().server()));
        self.history.push(LoggedEvent {
            sender,
            fanout: fanout.clone(),
            changes,
            hash,
        });
        Ok(Accepted {
            fanout,
            transitions,
            targets,
        })
    }

    /// Check a `ds.commit` before accepting it: its `m.room.user` changes by value, and
    /// SIG-LEAVE-2: `users_with_clients` (the users with at least one client in the group
    /// after the commit) contains no user whose clients must go, counting those the
    /// commit's own changes remove. [`Hub::accept`] of the commit then clears the pending
    /// removals.
    pub fn check_commit(
        &self,
        sender: &Sender,
        changes: &[UserEvent],
        users_with_clients: &BTreeSet<UserId>,
    ) -> Result<Vec<Transition>, HubError> {
        check_commit(&self.room, sender, changes, users_with_clients)
    }

    /// Rebuild a hub from its stored history, verifying every event as a follower would
    /// (for example after a restart). Removals recorded with [`Hub::clients_removed`] are
    /// not in the log: the delivery service records them again from its group state.
    pub fn restore(room_id: &RoomId, events: &[LoggedEvent]) -> Result<Hub, VerifyError> {
        let Some((create, rest)) = events.split_first() else {
            return Err(RuleId::Hist1.into());
        };
        let mut follower = Follower::new(&create.sender, room_id, &create.fanout)?;
        for e in rest {
            follower.receive(&e.sender, &e.fanout, &e.changes)?;
        }
        Ok(Hub {
            room: follower.room,
            history: follower.history,
        })
    }

    /// Record that all of `user`'s clients are out of the group ([`Room::clients_removed`]).
    pub fn clients_removed(&mut self, user: &UserId) -> bool {
        self.room.clients_removed(user)
    }
}

/// Why a follower refused an event from the hub. The replica is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// An event already received, identical: drop it (delivery is at least once).
    #[error("duplicate of event {sequence}")]
    Duplicate {
        /// Its sequence number.
        sequence: u64,
    },
    /// A different event with a sequence number already used: the hub equivocates.
    #[error("event {sequence} conflicts with the one already received")]
    Conflict {
        /// The sequence number.
        sequence: u64,
    },
    /// Events are missing before this one.
    #[error("expected event {expected}, got {got}")]
    Gap {
        /// The next sequence number expected.
        expected: u64,
        /// The one received.
        got: u64,
    },
    /// `prev_hash` is not the hash of the previous event.
    #[error("event {sequence}: prev_hash does not match the previous event")]
    PrevHash {
        /// The sequence number.
        sequence: u64,
    },
    /// `auth_events` are not the ones the rules select.
    #[error("event {sequence}: auth events {got:?}, expected {expected:?}")]
    AuthEvents {
        /// The sequence number.
        sequence: u64,
        /// The auth events recomputed here.
        expected: Vec<u64>,
        /// The auth events the hub sent.
        got: Vec<u64>,
    },
    /// The create event's room state is refused (SIG-CREATE-3).
    #[error("create event: {0}")]
    InvalidCreate(StateError),
    /// A rule refused the event.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// The event cannot be encoded to be hashed.
    #[error("cannot encode the event: {0}")]
    Encode(CodecError),
}

impl From<RuleId> for VerifyError {
    fn from(rule: RuleId) -> Self {
        VerifyError::Rejected(Rejection::new(rule))
    }
}

impl VerifyError {
    /// The rule the event broke (`None` for a duplicate, which is no fault).
    pub fn rule(&self) -> Option<RuleId> {
        match self {
            VerifyError::Duplicate { .. } => None,
            VerifyError::Conflict { .. } | VerifyError::Gap { .. } => Some(RuleId::Seq1),
            VerifyError::PrevHash { .. } => Some(RuleId::Hash1),
            VerifyError::AuthEvents { .. } => Some(RuleId::Auth1),
            VerifyError::InvalidCreate(_) => Some(RuleId::Create3),
            VerifyError::Rejected(r) => Some(r.rule),
            VerifyError::Encode(_) => Some(RuleId::Hash1),
        }
    }
}

/// What a follower accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The event's sequence number.
    pub sequence: u64,
    /// The participation changes it made.
    pub transitions: Vec<Transition>,
}

/// A follower's replica of one room, built by replaying the hub's events from the create
/// event on and checking each with the hub's own rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Follower {
    room: Room,
    history: History,
}

impl Follower {
    /// Start from the create event (sequence 0), checking SIG-CREATE-1..4 and SIG-HIST-1.
    pub fn new(
        sender: &Sender,
        room_id: &RoomId,
        create: &FanoutEvent,
    ) -> Result<Follower, VerifyError> {
        if create.sequence != 0 {
            return Err(VerifyError::Gap {
                expected: 0,
                got: create.sequence,
            });
        }
        if !create.prev_hash.is_empty() || !create.auth_events.is_empty() {
            return Err(RuleId::Create4.into());
        }
        let Event::RoomInfo(info) = &create.event else {
            return Err(RuleId::Hist1.into());
        };
        let state = &info.room_state;
        let creator = match sender {
            Sender::User(u)
                if u.server() == state.room_id.server() && state.room_id == *room_id =>
            {
                u
            }
            _ => return Err(RuleId::Create1.into()),
        };
        let room = Room::from_room_state(state).map_err(VerifyError::InvalidCreate)?;
        let only_creator = room.participants().map(|(u, p)| (u.clone(), p)).eq([(
            creator.clone(),
            crate::room::Participant {
                role: StandardRole::Owner,
                state: ParticipationState::Join,
            },
        )]);
        if !only_creator {
            return Err(RuleId::Create2.into());
        }
        let hash = event_hash(room_id, sender, create).map_err(VerifyError::Encode)?;
        let mut history = History::empty(room_id.clone());
        history.push(LoggedEvent {
            sender: sender.clone(),
            fanout: create.clone(),
            changes: Vec::new(),
            hash,
        });
        Ok(Follower { room, history })
    }

    /// The replica of the room.
    pub fn room(&self) -> &Room {
        &self.room
    }

    /// The replica of the history.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// The follower's side of SIG-LEAVE-2 ([`Hub::check_commit`]): its delivery service
    /// checks a commit from the hub against the replica before [`Follower::receive`].
    pub fn check_commit(
        &self,
        sender: &Sender,
        changes: &[UserEvent],
        users_with_clients: &BTreeSet<UserId>,
    ) -> Result<Vec<Transition>, HubError> {
        check_commit(&self.room, sender, changes, users_with_clients)
    }

    /// Verify and apply the next event from the hub: its sequence number (SIG-SEQ-1),
    /// `prev_hash` (SIG-HASH-1), `auth_events` (SIG-AUTH-1), its shape and every
    /// participation rule against this replica. `changes` are the event's `m.room.user`
    /// changes, decoded by the caller. A `ds.commit` clears the pending client removals, as
    /// at the hub. Atomic: on error nothing changes.
    pub fn receive(
        &mut self,
        sender: &Sender,
        fanout: &FanoutEvent,
        changes: &[UserEvent],
    ) -> Result<Received, VerifyError> {
        let expected = self.history.next_sequence();
        let sequence = fanout.sequence;
        if sequence < expected {
            // An event older than those in memory was applied long ago; a second copy
            // changes nothing, so it is a duplicate without a comparison.
            let Some(known) = self.history.get(sequence).map(|e| e.hash) else {
                return Err(VerifyError::Duplicate { sequence });
            };
            let hash =
                event_hash(&self.history.room_id, sender, fanout).map_err(VerifyError::Encode)?;
            return Err(if known == hash {
                VerifyError::Duplicate { sequence }
            } else {
                VerifyError::Conflict { sequence }
            });
        }
        if sequence > expected {
            return Err(VerifyError::Gap {
                expected,
                got: sequence,
            });
        }
        if self.history.last_hash().as_ref().map(|h| &h[..]) != Some(fanout.prev_hash.as_slice()) {
            return Err(VerifyError::PrevHash { sequence });
        }
        check_shape(&fanout.event, sender, changes)?;
        let auth = self.history.auth_events_for(sender, changes);
        if fanout.auth_events.as_slice() != auth.as_slice() {
            return Err(VerifyError::AuthEvents {
                sequence,
                expected: auth,
                got: fanout.auth_events.iter().copied().collect(),
            });
        }
        let hash =
            event_hash(&self.history.room_id, sender, fanout).map_err(VerifyError::Encode)?;
        let transitions = self.room.accept_all(sender, changes)?;
        if matches!(fanout.event, Event::DsCommit(_)) {
            self.room.clear_pending_removals();
        }
        self.history.push(LoggedEvent {
            sender: sender.clone(),
            fanout: fanout.clone(),
            changes: changes.to_vec(),
            hash,
        });
        Ok(Received {
            sequence,
            transitions,
        })
    }

    /// Record that all of `user`'s clients are out of the group ([`Room::clients_removed`]).
    pub fn clients_removed(&mut self, user: &UserId) -> bool {
        self.room.clients_removed(user)
    }
}

/// A user's latest membership event, as a [`Snapshot`] stores it.
#[derive(Debug, Clone, PartialEq, Eq, TlsSize, TlsSerialize, TlsDeserialize)]
struct SnapshotMembership {
    user: UserId,
    sequence: u64,
}

/// The wire form of a [`Snapshot`].
#[derive(Debug, Clone, PartialEq, Eq, TlsSize, TlsSerialize, TlsDeserialize)]
struct SnapshotWire {
    room_state: RoomState,
    pending_removals: BoundedVec<UserId, MAX_PARTICIPANTS>,
    latest_membership: BoundedVec<SnapshotMembership, MAX_PARTICIPANTS>,
    first_retained: u64,
    next: u64,
}

impl Wire for SnapshotWire {}

/// A room's signaling state at one point of its history, without the events: the room
/// (participants, policy, security, pending client removals), each user's latest
/// membership event, and which events the in-memory window held. With the create event
/// and the window's events (read from the stored log) it rebuilds the same [`Hub`] or
/// [`Follower`] that replaying the whole history would ([`Hub::from_snapshot`],
/// [`Follower::from_snapshot`]), so that loading a room costs the same however long its
/// history is. Its size grows with the participants, never with the events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    room_state: RoomState,
    pending_removals: BTreeSet<UserId>,
    latest_membership: BTreeMap<UserId, u64>,
    first_retained: u64,
    next: u64,
}

/// Why a snapshot and the events given with it do not rebuild a room.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// The snapshot's room state is refused.
    #[error("snapshot room state: {0}")]
    State(StateError),
    /// The snapshot is of another room.
    #[error("the snapshot is of room {0}")]
    OtherRoom(RoomId),
    /// Its window is impossible (first retained event after the end of the history).
    #[error("snapshot window {first_retained}..{next} is impossible")]
    Window {
        /// The first retained event's sequence number.
        first_retained: u64,
        /// The next sequence number.
        next: u64,
    },
    /// The events given are not the create event then the window's events, in order.
    #[error("expected event {expected} with the snapshot, got {got:?}")]
    Events {
        /// The sequence number expected.
        expected: u64,
        /// The one given (`None`: missing).
        got: Option<u64>,
    },
    /// An event of the window does not chain to the one before it.
    #[error("event {0} of the snapshot's window does not follow the one before it")]
    Chain(u64),
    /// An event after the snapshot is refused as a follower refuses it.
    #[error(transparent)]
    Verify(#[from] VerifyError),
}

impl Snapshot {
    fn of(room: &Room, history: &History) -> Snapshot {
        Snapshot {
            room_state: room.to_room_state(),
            pending_removals: room.pending_client_removals().clone(),
            latest_membership: history.latest_membership.clone(),
            first_retained: history.first_retained,
            next: history.next,
        }
    }

    /// The sequence number of the first event after the snapshot.
    pub fn next_sequence(&self) -> u64 {
        self.next
    }

    /// The sequence number of the first event of the window the snapshot was taken with:
    /// the events to give back with it are the create event (0), then every event from
    /// `max(1, first_retained())` up to (not including) [`Snapshot::next_sequence`].
    pub fn first_retained(&self) -> u64 {
        self.first_retained
    }

    /// The snapshot's bytes (TLS-encoded with the codec's bounded types).
    pub fn encode(&self) -> Result<Vec<u8>, CodecError> {
        SnapshotWire {
            room_state: self.room_state.clone(),
            pending_removals: BoundedVec::new(self.pending_removals.iter().cloned().collect())?,
            latest_membership: BoundedVec::new(
                self.latest_membership
                    .iter()
                    .map(|(user, sequence)| SnapshotMembership {
                        user: user.clone(),
                        sequence: *sequence,
                    })
                    .collect(),
            )?,
            first_retained: self.first_retained,
            next: self.next,
        }
        .encode()
    }

    /// Read a snapshot back, as strictly as peer input.
    pub fn decode(bytes: &[u8]) -> Result<Snapshot, CodecError> {
        let wire = SnapshotWire::decode(bytes)?;
        Ok(Snapshot {
            room_state: wire.room_state,
            pending_removals: wire.pending_removals.into_vec().into_iter().collect(),
            latest_membership: wire
                .latest_membership
                .into_vec()
                .into_iter()
                .map(|m| (m.user, m.sequence))
                .collect(),
            first_retained: wire.first_retained,
            next: wire.next,
        })
    }

    /// The room and history the snapshot and `events` rebuild: `events` are the create
    /// event, the window's events (see [`Snapshot::first_retained`]), then any later
    /// events, which are verified as a follower verifies them. The create event and the
    /// window are checked for order and hash chaining, not against the rules again: they
    /// were when they were first accepted.
    fn restore(&self, room_id: &RoomId, events: &[LoggedEvent]) -> Result<Follower, SnapshotError> {
        if self.room_state.room_id != *room_id {
            return Err(SnapshotError::OtherRoom(self.room_state.room_id.clone()));
        }
        let window_start = self.first_retained.max(1);
        if self.next == 0 || window_start > self.next {
            return Err(SnapshotError::Window {
                first_retained: self.first_retained,
                next: self.next,
            });
        }
        let room = Room::restore(&self.room_state, self.pending_removals.clone())
            .map_err(SnapshotError::State)?;
        let mut given = events.iter();
        let create = given.next().ok_or(SnapshotError::Events {
            expected: 0,
            got: None,
        })?;
        if create.fanout.sequence != 0 {
            return Err(SnapshotError::Events {
                expected: 0,
                got: Some(create.fanout.sequence),
            });
        }
        let mut history = History {
            room_id: room_id.clone(),
            events: vec![create.clone()],
            first_retained: self.first_retained,
            next: self.next,
            latest_membership: self.latest_membership.clone(),
        };
        let mut previous = create.hash;
        for expected in window_start..self.next {
            let event = given.next().ok_or(SnapshotError::Events {
                expected,
                got: None,
            })?;
            if event.fanout.sequence != expected {
                return Err(SnapshotError::Events {
                    expected,
                    got: Some(event.fanout.sequence),
                });
            }
            // The first event of a window that no longer starts at 1 follows one that is
            // not in memory: only the events inside the window are chained.
            let chained = expected == window_start && window_start > 1
                || event.fanout.prev_hash.as_slice() == previous.as_slice();
            if !chained {
                return Err(SnapshotError::Chain(expected));
            }
            previous = event.hash;
            history.events.push(event.clone());
        }
        let mut follower = Follower { room, history };
        for event in given {
            follower.receive(&event.sender, &event.fanout, &event.changes)?;
        }
        Ok(follower)
    }
}

impl Hub {
    /// The hub's state now, without the events (see [`Snapshot`]).
    pub fn snapshot(&self) -> Snapshot {
        Snapshot::of(&self.room, &self.history)
    }

    /// Rebuild a hub from a snapshot, the create event, the snapshot's window and the
    /// events after it ([`Snapshot::first_retained`]): the same hub as
    /// [`Hub::restore`] of the whole history, reading a number of events that does not
    /// grow with the history.
    pub fn from_snapshot(
        room_id: &RoomId,
        snapshot: &Snapshot,
        events: &[LoggedEvent],
    ) -> Result<Hub, SnapshotError> {
        let follower = snapshot.restore(room_id, events)?;
        Ok(Hub {
            room: follower.room,
            history: follower.history,
        })
    }
}

impl Follower {
    /// The replica's state now, without the events (see [`Snapshot`]).
    pub fn snapshot(&self) -> Snapshot {
        Snapshot::of(&self.room, &self.history)
    }

    /// Rebuild a replica from a snapshot, as [`Hub::from_snapshot`] does.
    pub fn from_snapshot(
        room_id: &RoomId,
        snapshot: &Snapshot,
        events: &[LoggedEvent],
    ) -> Result<Follower, SnapshotError> {
        snapshot.restore(room_id, events)
    }
}
