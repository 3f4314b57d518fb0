//! The MIMI rules that join a room's signaling state and its MLS group: what the hub does
//! with each event ([`HubRoom`]), and the same checks at a follower ([`FollowerRoom`]).
//!
//! Each event is first *staged*: its MLS content is verified against the group and turned
//! into the participation changes it carries, and every MIMI rule that needs both the room
//! and the group is checked. Only when everything passes do the signaling state, the history
//! and the group change, together.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};

use mimi_codec::{
    ClientId, CreateGroupRequest, Event, EventResponse, FanoutEvent, JoinRule, ParticipationState,
    RoomState, Sender, ServerName, UserEvent, UserId, Wire,
};
use mimi_signaling::{Follower, Hub, LoggedEvent, Operation, Room, Transition, VerifyError};
use openmls::prelude::ExternalSender;

use crate::error::{DsError, DsRule};
use crate::fanout::FanoutPlan;
use crate::group::{
    HubGroup, HubSender, MlsSender, ProposalKind, StagedCommitInfo, StagedProposal,
};

/// An event staged against a room: verified, not yet applied.
#[derive(Debug)]
enum Staged {
    /// Proposals to queue (`m.room.user`, `ds.proposal`).
    Proposals(Vec<StagedProposal>),
    /// A commit to merge.
    Commit(Box<StagedCommitInfo>),
    /// Nothing to do to the group (`m.room.user.unsigned`, `ds.send_message`).
    Nothing,
}

/// DS-SND-1: the MIMI sender must be who signed the MLS message.
fn check_mls_sender(sender: &Sender, mls: &MlsSender) -> Result<(), DsError> {
    let ok = match (sender, mls) {
        (Sender::User(u), MlsSender::Member(c) | MlsSender::NewMember(c)) => c.user() == *u,
        (Sender::Server(s), MlsSender::External(e)) => s == e,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(DsError::refused(
            DsRule::Snd1,
            format!("the event is sent by {sender} but the MLS message is signed by {mls:?}"),
        ))
    }
}

/// DS-ADD-1 and DS-RM-2 for one proposal, against `room` (the state after the event's own
/// participation changes). `hub` is the room's hub server.
fn check_membership_change(
    room: &Room,
    proposer: &MlsSender,
    kind: &ProposalKind,
    hub: &ServerName,
) -> Result<(), DsError> {
    match kind {
        ProposalKind::Add(client) => {
            let user = client.user();
            if !room.is_joined(&user) {
                return Err(DsError::refused(
                    DsRule::Add1,
                    format!("{client} is added but {user} is not in the join state"),
                ));
            }
            Ok(())
        }
        ProposalKind::Remove { client, .. } => {
            let user = client.user();
            let allowed = match proposer {
                // A user removes their own clients at will; anyone in the group removes the
                // clients of a user who is no longer joined.
                MlsSender::Member(p) | MlsSender::NewMember(p) => {
                    p.user() == user || !room.is_joined(&user)
                }
                // The hub removes departed users' clients; a follower, its own users'.
                MlsSender::External(server) => {
                    (server == hub && !room.is_joined(&user)) || *server == user.server()
                }
            };
            if allowed {
                Ok(())
            } else {
                Err(DsError::refused(
                    DsRule::Rm2,
                    format!("{proposer:?} may not remove {client}: {user} is still joined"),
                ))
            }
        }
        _ => Ok(()),
    }
}

/// What [`stage`] found: the group change, the participation changes, and the room after
/// them when staging had to compute it (`ds.proposal`, `ds.commit`).
type StageResult = (Staged, Vec<UserEvent>, Option<Room>);

/// Stage `event` from `sender` against `room` and `group`: verify its MLS content, collect
/// its participation changes, and check the rules that need both. Pure: nothing changes.
fn stage(
    room: &Room,
    group: &HubGroup,
    hub: &ServerName,
    sender: &Sender,
    event: &Event,
) -> Result<StageResult, DsError> {
    match event {
        Event::RoomUser(bytes) => {
            let staged = group.stage_proposal(bytes.as_slice())?;
            check_mls_sender(sender, &staged.sender)?;
            let ProposalKind::UserEvent(change) = &staged.kind else {
                return Err(DsError::refused(
                    DsRule::Mls4,
                    "m.room.user must carry a UserEvent proposal",
                ));
            };
            let change = change.clone();
            Ok((Staged::Proposals(vec![staged]), vec![change], None))
        }
        Event::RoomUserUnsigned(change) => Ok((Staged::Nothing, vec![change.clone()], None)),
        Event::DsProposal(request) => {
            let mut staged = Vec::new();
            let mut changes = Vec::new();
            for bytes in &request.proposals {
                let proposal = group.stage_proposal(bytes.as_slice())?;
                check_mls_sender(sender, &proposal.sender)?;
                if let ProposalKind::UserEvent(c) = &proposal.kind {
                    changes.push(c.clone());
                }
                staged.push(proposal);
            }
            let after = room_after(room, sender, &changes)?;
            for p in &staged {
                check_membership_change(&after, &p.sender, &p.kind, hub)?;
            }
            Ok((Staged::Proposals(staged), changes, Some(after)))
        }
        Event::DsCommit(request) => {
            let info = group.stage_commit(request)?;
            check_mls_sender(sender, &info.committer)?;
            // Changes carried by value; those by reference were accepted when proposed.
            let changes: Vec<UserEvent> = info
                .proposals
                .iter()
                .filter(|p| !p.by_reference)
                .filter_map(|p| match &p.kind {
                    ProposalKind::UserEvent(c) => Some(c.clone()),
                    _ => None,
                })
                .collect();
            let after = room_after(room, sender, &changes)?;
            if let MlsSender::NewMember(client) = &info.committer
                && !after.is_joined(&client.user())
            {
                return Err(DsError::refused(
                    DsRule::Add1,
                    format!("{client} joins by external commit but its user is not joined"),
                ));
            }
            for p in &info.proposals {
                check_membership_change(&after, &p.proposer, &p.kind, hub)?;
            }
            check_room_state(&after, &info, hub)?;
            Ok((Staged::Commit(Box::new(info)), changes, Some(after)))
        }
        Event::DsSendMessage(request) => {
            let Sender::User(user) = sender else {
                return Err(DsError::refused(DsRule::Snd1, "messages are sent by users"));
            };
            if !room.is_joined(user) {
                return Err(DsError::refused(
                    DsRule::Snd1,
                    format!("{user} is not joined and may not send messages"),
                ));
            }
            group.check_application_message(request.application_message.as_slice())?;
            Ok((Staged::Nothing, Vec::new(), None))
        }
        Event::DsCreateGroup(_) => Err(DsError::refused(
            DsRule::Cr2,
            "ds.create_group is the second event of a room and nowhere else",
        )),
        // Not room history: answered (fetches) or refused (m.room.info) by the caller, and
        // by signaling's SIG-HIST rules.
        Event::RoomInfo(_) | Event::DsFetchKeyPackages(_) | Event::DsFetchGroupInfo(_) => {
            Ok((Staged::Nothing, Vec::new(), None))
        }
    }
}

/// The room after `changes`, checked by signaling (a scratch copy).
fn room_after(room: &Room, sender: &Sender, changes: &[UserEvent]) -> Result<Room, DsError> {
    let mut after = room.clone();
    after
        .accept_all(sender, changes)
        .map_err(DsError::Signaling)?;
    Ok(after)
}

/// DS-RS-1 and DS-XS-1 for a commit.
fn check_room_state(
    after: &Room,
    info: &StagedCommitInfo,
    hub: &ServerName,
) -> Result<(), DsError> {
    // An external commit cannot carry a GroupContextExtensions proposal (RFC 9420
    // §12.4.3.2): the RoomState extension then lags until the next member commit.
    if matches!(info.committer, MlsSender::Member(_))
        && info.room_state_after
            != after
                .to_room_state()
                .encode()
                .map_err(|e| DsError::refused(DsRule::Rs1, format!("room state: {e}")))?
    {
        return Err(DsError::refused(
            DsRule::Rs1,
            "the RoomState extension after the commit differs from the room state at the hub",
        ));
    }
    if !info.external_senders_after.contains(hub) {
        return Err(DsError::refused(
            DsRule::Xs1,
            "the commit removes the hub from external_senders",
        ));
    }
    let participating = after.participating_servers();
    if let Some(s) = info
        .external_senders_after
        .iter()
        .find(|s| *s != hub && !participating.contains(*s))
    {
        return Err(DsError::refused(
            DsRule::Xs1,
            format!("{s} is in external_senders but has no joined user"),
        ));
    }
    Ok(())
}

/// The users with at least one client in the group after a commit.
fn users_after(group: &HubGroup, info: &StagedCommitInfo) -> BTreeSet<UserId> {
    let removed: BTreeSet<&ClientId> = info.removed.iter().collect();
    group
        .members()
        .into_iter()
        .map(|(_, c)| c)
        .filter(|c| !removed.contains(c))
        .chain(info.added.iter().map(|(c, _)| c.clone()))
        .chain(match &info.committer {
            MlsSender::NewMember(c) => Some(c.clone()),
            _ => None,
        })
        .map(|c| c.user())
        .collect()
}

/// Apply a staged event's group change.
fn apply(group: &mut HubGroup, staged: Staged) -> Result<(), DsError> {
    match staged {
        Staged::Proposals(ps) => {
            for p in ps {
                group.queue(p)?;
            }
            Ok(())
        }
        Staged::Commit(info) => group.merge(*info),
        Staged::Nothing => Ok(()),
    }
}

/// The servers of the group's clients. Every member must get its group's handshake
/// messages (proposals and commits) to stay in step — a departed user's clients included,
/// which learn from the commit that removes them that they are out — so these go to the
/// members' servers as well as to the participating ones.
///
/// Rule DS-FAN-1 (docs/protocol-coverage.md).
fn member_servers(group: &HubGroup) -> BTreeSet<ServerName> {
    group
        .members()
        .into_iter()
        .map(|(_, c)| c.user().server())
        .collect()
}

/// After changes are accepted: a departed user with no client in the group owes no removal.
fn settle_removals(
    group: &HubGroup,
    pending: &BTreeSet<UserId>,
    mut clients_removed: impl FnMut(&UserId),
) {
    let with_clients: BTreeSet<UserId> =
        group.members().into_iter().map(|(_, c)| c.user()).collect();
    for user in pending.iter().filter(|u| !with_clients.contains(*u)) {
        clients_removed(user);
    }
}

/// DS-CR-1 for the group a room starts with: only the creator's clients are in it (any
/// other client would be in the group without having been added as the rules require).
fn check_creator_group(group: &HubGroup, creator: &Sender) -> Result<(), DsError> {
    let Sender::User(creator) = creator else {
        return Err(DsError::refused(DsRule::Cr1, "rooms are created by users"));
    };
    match group
        .members()
        .into_iter()
        .find(|(_, c)| c.user() != *creator)
    {
        Some((_, client)) => Err(DsError::refused(
            DsRule::Cr1,
            format!("{client} is in the new group but is not a client of the creator {creator}"),
        )),
        None => Ok(()),
    }
}

/// What the hub did with an accepted event.
#[derive(Debug, Clone)]
pub struct HubAccepted {
    /// The event as logged (fully formed).
    pub logged: LoggedEvent,
    /// Where it goes, the hub's own server included when its users are concerned (the
    /// caller delivers that part to its own clients).
    pub plan: FanoutPlan,
}

/// Which state of which [`HubRoom`] an event was checked against: the room value (each
/// `HubRoom` built gets its own number, so a room reloaded from storage is another one)
/// and how many changes it had accepted by then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RoomVersion {
    instance: u64,
    accepted: u64,
}

/// Numbers the [`HubRoom`] values of this process.
static NEXT_ROOM_INSTANCE: AtomicU64 = AtomicU64::new(0);

/// An event [`HubRoom::check`] verified against the room as it was: every signaling and MLS
/// rule passed, its MLS content is staged (a commit as openmls's staged commit, proposals
/// as queued proposals), and [`HubRoom::accept`] applies it as it is, without verifying it
/// again, while the room has not changed since (see [`HubRoom::is_current`]).
#[derive(Debug)]
pub struct CheckedEvent {
    sender: Sender,
    event: Event,
    staged: Staged,
    changes: Vec<UserEvent>,
    transitions: Vec<Transition>,
    room_after: Room,
    checked_at: RoomVersion,
}

impl CheckedEvent {
    /// Who sent it.
    pub fn sender(&self) -> &Sender {
        &self.sender
    }

    /// The event.
    pub fn event(&self) -> &Event {
        &self.event
    }

    /// The participation changes it makes, in order.
    pub fn transitions(&self) -> &[Transition] {
        &self.transitions
    }

    /// The users it invites: their servers must answer check-invite (main spec, "Invites"
    /// step 4) before it is accepted.
    pub fn invitees(&self) -> Vec<UserId> {
        self.transitions
            .iter()
            .filter(|t| t.operation() == Operation::Invite)
            .map(|t| t.target().clone())
            .collect()
    }

    /// The room state after the whole event (all its participation changes), which the
    /// invitees' servers are asked about in check-invite.
    pub fn room_state_after(&self) -> RoomState {
        self.room_after.to_room_state()
    }

    /// Give back the sender and the event (for example to check it again after
    /// [`DsError::Stale`]).
    pub fn into_parts(self) -> (Sender, Event) {
        (self.sender, self.event)
    }
}

/// One room at its hub: the signaling state and history, and the public MLS group.
#[derive(Debug)]
pub struct HubRoom {
    hub: Hub,
    group: HubGroup,
    server: ServerName,
    version: RoomVersion,
}

impl HubRoom {
    /// Create a room from signaling's freshly created [`Hub`] (whose history holds the
    /// create event) and the creator's group (DS-CR-1: its RoomState must be the room's
    /// initial state). Logs the group as `ds.create_group`, sequence 1, and returns it.
    pub fn create(
        mut hub: Hub,
        server: ServerName,
        request: CreateGroupRequest,
        hub_sender: &ExternalSender,
    ) -> Result<(HubRoom, LoggedEvent), DsError> {
        let (group, state) = HubGroup::create(
            request.group_info.as_slice(),
            request.ratchet_tree.as_slice(),
            HubSender::Exactly(hub_sender),
        )?;
        if state != hub.room().to_room_state() {
            return Err(DsError::refused(
                DsRule::Cr1,
                "the group's RoomState is not the room's initial state",
            ));
        }
        let creator = hub
            .create_event()
            .map(|e| e.sender.clone())
            .ok_or_else(|| DsError::State("the hub has no create event".into()))?;
        check_creator_group(&group, &creator)?;
        let accepted = hub
            .accept(creator, Event::DsCreateGroup(request), Vec::new())
            .map_err(hub_error)?;
        let logged = hub
            .history()
            .get(accepted.fanout.sequence)
            .cloned()
            .ok_or_else(|| DsError::State("accepted event missing from the history".into()))?;
        Ok((HubRoom::new(hub, group, server), logged))
    }

    fn new(hub: Hub, group: HubGroup, server: ServerName) -> HubRoom {
        let version = RoomVersion {
            instance: NEXT_ROOM_INSTANCE.fetch_add(1, Ordering::Relaxed),
            accepted: 0,
        };
        HubRoom {
            hub,
            group,
            server,
            version,
        }
    }

    /// Rebuild from stored parts.
    pub fn from_parts(hub: Hub, group: HubGroup, server: ServerName) -> HubRoom {
        let mut room = HubRoom::new(hub, group, server);
        let pending = room.hub.room().pending_client_removals().clone();
        settle_removals(&room.group, &pending, |u| {
            room.hub.clients_removed(u);
        });
        room
    }

    /// The signaling state and history.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// The MLS group.
    pub fn group(&self) -> &HubGroup {
        &self.group
    }

    /// Check a limited event from `sender` (whose server the transport authenticated):
    /// every signaling and MLS rule, its MLS content verified and staged once. Nothing
    /// changes; [`HubRoom::accept`] applies the result. Its invitees' servers are asked
    /// (check-invite) in between.
    pub fn check(&self, sender: Sender, event: Event) -> Result<CheckedEvent, DsError> {
        let room = self.hub.room();
        let (staged, changes, after) = stage(room, &self.group, &self.server, &sender, &event)?;
        let transitions = if let Staged::Commit(info) = &staged {
            let users = users_after(&self.group, info);
            self.hub
                .check_commit(&sender, &changes, &users)
                .map_err(hub_error)?
        } else {
            self.hub
                .check(&sender, &event, &changes)
                .map_err(DsError::Signaling)?
        };
        let room_after = match after {
            Some(after) => after,
            None => room_after(room, &sender, &changes)?,
        };
        Ok(CheckedEvent {
            sender,
            event,
            staged,
            changes,
            transitions,
            room_after,
            checked_at: self.version,
        })
    }

    /// Whether `checked` was checked against this room as it is now: this very room value,
    /// with nothing accepted since. Only then may [`HubRoom::accept`] apply it.
    pub fn is_current(&self, checked: &CheckedEvent) -> bool {
        checked.checked_at == self.version
    }

    /// Accept a checked event: the room, history and group advance together, the group by
    /// merging the commit (or queueing the proposals) staged by [`HubRoom::check`], without
    /// verifying them again. Refuses with [`DsError::Stale`], changing nothing, an event
    /// that is not current ([`HubRoom::is_current`]); check it again then. Atomic: on error
    /// nothing changes.
    pub fn accept(&mut self, checked: CheckedEvent) -> Result<HubAccepted, DsError> {
        if !self.is_current(&checked) {
            return Err(DsError::Stale);
        }
        let CheckedEvent {
            sender,
            event,
            staged,
            changes,
            ..
        } = checked;
        let plan_commit = match (&staged, &event) {
            (Staged::Commit(info), Event::DsCommit(req)) => Some((req.clone(), info.added.clone())),
            _ => None,
        };
        let members = match &staged {
            Staged::Proposals(_) | Staged::Commit(_) => member_servers(&self.group),
            Staged::Nothing => BTreeSet::new(),
        };
        // Everything is checked. The history first (it refuses an event too large to
        // encode), then the group, whose steps fail only on an internal storage error.
        let accepted = self.hub.accept(sender, event, changes).map_err(hub_error)?;
        self.version.accepted += 1;
        apply(&mut self.group, staged)?;
        let pending = self.hub.room().pending_client_removals().clone();
        settle_removals(&self.group, &pending, |u| {
            self.hub.clients_removed(u);
        });
        let mut targets = accepted.targets;
        targets.extend(members);
        let plan = match plan_commit {
            Some((req, added)) => FanoutPlan::for_commit(targets, &req, &added)?,
            None => FanoutPlan::broadcast(targets),
        };
        let logged = self
            .hub
            .history()
            .get(accepted.fanout.sequence)
            .cloned()
            .ok_or_else(|| DsError::State("accepted event missing from the history".into()))?;
        Ok(HubAccepted { logged, plan })
    }

    /// `ds.fetch_group_info`: what a joiner needs (DS-GI-2). The seed lets group members
    /// and follower servers fetch it, and says knockers have no access to the room's
    /// cryptographic state. Allowed: users in the join or invite state (an invitee's
    /// clients join from it), users not on the participant list of a public room (they
    /// join and add their clients in one commit), and the room's follower servers (servers
    /// with a joined user, the hub excepted). Refused: knocking and banned users, anyone
    /// else, and other servers.
    pub fn group_info(&self, sender: &Sender) -> Result<EventResponse, DsError> {
        let room = self.hub.room();
        let allowed = match sender {
            Sender::User(user) => match room.participant(user) {
                Some(p) => matches!(
                    p.state,
                    ParticipationState::Join | ParticipationState::Invite
                ),
                None => room.policy().join_rule() == JoinRule::Public,
            },
            Sender::Server(server) => {
                *server != self.server && room.participating_servers().contains(server)
            }
        };
        if !allowed {
            return Err(DsError::refused(
                DsRule::Gi2,
                format!("{sender} may not fetch this room's group info"),
            ));
        }
        Ok(EventResponse::GroupInfo(self.group.group_info_response()?))
    }

    /// The alternative leave flow: the hub proposes the removal of every client of every
    /// departed user whose clients are still in the group, as external sender
    /// `hub_index`, and logs them as a `ds.proposal` from the hub that the next commit must
    /// include. Leaves whose removal is already queued (by the hub or a member) are left
    /// out: a commit cannot remove a leaf twice, so a second Remove would make every commit
    /// invalid. `None` if there is nothing to remove.
    pub fn propose_pending_removals(
        &mut self,
        hub_index: u32,
        signer: &impl openmls_traits::signatures::Signer,
    ) -> Result<Option<HubAccepted>, DsError> {
        let pending = self.hub.room().pending_client_removals().clone();
        let queued = self.group.queued_removals()?;
        let leaves: Vec<u32> = self
            .group
            .members()
            .into_iter()
            .filter(|(l, c)| pending.contains(&c.user()) && !queued.contains(l))
            .map(|(l, _)| l)
            .collect();
        if leaves.is_empty() {
            return Ok(None);
        }
        // Stage on a copy: the proposals are logged only if the history accepts them.
        let mut group = HubGroup::from_bytes(&self.group.to_bytes()?)?;
        let messages = group.hub_remove_proposals(&leaves, hub_index, signer)?;
        let proposals = messages
            .into_iter()
            .map(mimi_codec::MlsBytes::new)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| DsError::State(e.to_string()))?;
        let event = Event::DsProposal(mimi_codec::ProposalRequest {
            proposals: mimi_codec::BoundedVec::new(proposals)
                .map_err(|e| DsError::State(e.to_string()))?,
        });
        let sender = Sender::Server(self.server.clone());
        let accepted = self
            .hub
            .accept(sender, event, Vec::new())
            .map_err(hub_error)?;
        self.version.accepted += 1;
        let mut targets = accepted.targets;
        targets.extend(member_servers(&self.group));
        self.group = group;
        let logged = self
            .hub
            .history()
            .get(accepted.fanout.sequence)
            .cloned()
            .ok_or_else(|| DsError::State("accepted event missing from the history".into()))?;
        let plan = FanoutPlan::broadcast(targets);
        Ok(Some(HubAccepted { logged, plan }))
    }
}

fn hub_error(e: mimi_signaling::HubError) -> DsError {
    match e {
        mimi_signaling::HubError::ClientsNotRemoved(c) => {
            DsError::refused(DsRule::Rm1, c.to_string())
        }
        mimi_signaling::HubError::Rejected(r) => DsError::Signaling(r),
        mimi_signaling::HubError::Encode(e) => DsError::TooLarge(e.to_string()),
    }
}

/// What a follower did with an event from the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowerOutcome {
    /// Verified and applied.
    Applied {
        /// Its sequence number.
        sequence: u64,
    },
    /// Already received: dropped.
    Duplicate,
}

/// Why a follower refused an event from the hub.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FollowerError {
    /// The history checks (sequence, hash link, auth events, participation rules).
    #[error("history: {0}")]
    History(#[from] VerifyError),
    /// The MLS checks.
    #[error("delivery service: {0}")]
    Ds(#[from] DsError),
}

/// One room at a follower: a replica of the signaling state and history, and of the public
/// MLS group, each event checked with the hub's own rules so that a lying hub is detected.
#[derive(Debug)]
pub struct FollowerRoom {
    follower: Follower,
    /// `None` until the `ds.create_group` event (sequence 1) arrives.
    group: Option<HubGroup>,
    hub_server: ServerName,
}

impl FollowerRoom {
    /// Start from the create event (sequence 0).
    pub fn new(sender: &Sender, create: &FanoutEvent) -> Result<FollowerRoom, FollowerError> {
        let Event::RoomInfo(info) = &create.event else {
            return Err(VerifyError::from(mimi_signaling::RuleId::Hist1).into());
        };
        let room_id = info.room_state.room_id.clone();
        let follower = Follower::new(sender, &room_id, create)?;
        Ok(FollowerRoom {
            follower,
            group: None,
            hub_server: room_id.server(),
        })
    }

    /// Rebuild from stored parts.
    pub fn from_parts(follower: Follower, group: Option<HubGroup>, hub_server: ServerName) -> Self {
        FollowerRoom {
            follower,
            group,
            hub_server,
        }
    }

    /// The replica of the signaling state and history.
    pub fn follower(&self) -> &Follower {
        &self.follower
    }

    /// The replica of the MLS group, once created.
    pub fn group(&self) -> Option<&HubGroup> {
        self.group.as_ref()
    }

    /// Verify and apply the next event from the hub. Atomic: on error nothing changes.
    ///
    /// Rule DS-FOL-1 (docs/protocol-coverage.md).
    pub fn receive(
        &mut self,
        sender: &Sender,
        fanout: &FanoutEvent,
    ) -> Result<FollowerOutcome, FollowerError> {
        if let Some(known) = self.follower.history().get(fanout.sequence) {
            let hash = mimi_signaling::event_hash(self.follower.room().id(), sender, fanout)
                .map_err(VerifyError::Encode)?;
            return if known.hash == hash {
                Ok(FollowerOutcome::Duplicate)
            } else {
                Err(VerifyError::Conflict {
                    sequence: fanout.sequence,
                }
                .into())
            };
        }
        if fanout.sequence < self.follower.history().next_sequence() {
            // Applied long ago and no longer in memory: a second copy changes nothing.
            return Ok(FollowerOutcome::Duplicate);
        }
        let Some(group) = &self.group else {
            return self.receive_create_group(sender, fanout);
        };
        let (staged, changes, _) = stage(
            self.follower.room(),
            group,
            &self.hub_server,
            sender,
            &fanout.event,
        )?;
        if let Staged::Commit(info) = &staged {
            let users = users_after(group, info);
            self.follower
                .check_commit(sender, &changes, &users)
                .map_err(hub_error)?;
        }
        let received = self.follower.receive(sender, fanout, &changes)?;
        let group = self
            .group
            .as_mut()
            .ok_or_else(|| DsError::State("group vanished".into()))?;
        apply(group, staged)?;
        let pending = self.follower.room().pending_client_removals().clone();
        settle_removals(group, &pending, |u| {
            self.follower.clients_removed(u);
        });
        Ok(FollowerOutcome::Applied {
            sequence: received.sequence,
        })
    }

    /// DS-CR-2 at a follower: sequence 1 is the creator's `ds.create_group`.
    fn receive_create_group(
        &mut self,
        sender: &Sender,
        fanout: &FanoutEvent,
    ) -> Result<FollowerOutcome, FollowerError> {
        let creator = self.follower.history().get(0).map(|e| &e.sender);
        let Event::DsCreateGroup(request) = &fanout.event else {
            return Err(DsError::refused(
                DsRule::Cr2,
                "the event after the create event must be ds.create_group",
            )
            .into());
        };
        if creator != Some(sender) {
            return Err(DsError::refused(
                DsRule::Cr2,
                "ds.create_group must come from the creator",
            )
            .into());
        }
        let (group, state) = HubGroup::create(
            request.group_info.as_slice(),
            request.ratchet_tree.as_slice(),
            HubSender::Server(&self.hub_server),
        )?;
        if state != self.follower.room().to_room_state() {
            return Err(DsError::refused(
                DsRule::Cr1,
                "the group's RoomState is not the room's initial state",
            )
            .into());
        }
        check_creator_group(&group, sender)?;
        let received = self.follower.receive(sender, fanout, &[])?;
        self.group = Some(group);
        Ok(FollowerOutcome::Applied {
            sequence: received.sequence,
        })
    }
}
