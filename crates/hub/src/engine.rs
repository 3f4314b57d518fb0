//! The provider: one server's MIMI logic, hub of the rooms created on it and follower of
//! the others. It answers other servers (the transport's [`Handler`]) and its own clients
//! (the methods the client API calls), keeps every room's state in memory behind a per-room
//! lock, and makes each accepted event durable — log, room and group state, outbox and
//! inboxes in one storage transaction — before it answers.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use mimi_codec::mls_ids::{DEFAULT_CIPHER_SUITE, SECURITY_PROTOCOL_MLS10};
use mimi_codec::{
    BoundedVec, CheckInviteRequest, ClientId, CreateGroupRequest, ErrorCode, Event, EventError,
    EventResponse, FanoutEvent, IdentifierDiscoveryCode, IdentifierQuery, IdentifierRequest,
    IdentifierResponse, InfoEvent, JoinRule, KeyPackageEntry, KeyPackageType, KeyPackagesRequest,
    KeyPackagesResponse, MessageBody, MimiMessage, MlsBytes, ParticipationState, PolicyAction,
    RoomId, RoomState, SecurityConfig, Sender, ServerName, Text, UserId, Wire,
};
use mimi_ds::{FollowerError, FollowerOutcome, FollowerRoom, HubAccepted, HubGroup, HubRoom};
use mimi_signaling::{
    Follower, Hub, LoggedEvent, Operation, Policy, Room, RoomIdSource, StandardRole,
};
use mimi_transport::{
    CheckInviteOutcome, CheckInviteReply, Handler, MimiClient, Reply, TransportError,
};
use rand::RngCore;
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use crate::identity::HubIdentity;
use crate::persist::{RoomMeta, decode_event, encode_event, message_for};
use crate::storage::{
    Batch, ClientRecord, DirectoryField, GroupUpdate, LogEntry, MAX_READ_LIMIT, PendingCommit,
    RoomRole, RoomUpdate, Storage, StorageError, StoredKeyPackage, UserRecord,
};

/// Errors of the provider-internal API (`crate::api` maps each to a `mimi_client_api::ErrorCode`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed.
    #[error("malformed: {0}")]
    Malformed(String),
    /// No or a wrong bearer token.
    #[error("unauthorized")]
    Unauthorized,
    /// Not allowed.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// No such user, room or key package.
    #[error("not found: {0}")]
    NotFound(String),
    /// Conflicts with what exists.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The peer provider refused or could not be reached.
    #[error("remote: {0}")]
    Remote(String),
    /// This server failed.
    #[error("internal: {0}")]
    Internal(String),
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Conflict(c) => ApiError::Conflict(c.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// Everything the provider is made of.
pub struct ProviderParts {
    /// This server's name.
    pub server_name: ServerName,
    /// Its storage.
    pub storage: Arc<dyn Storage>,
    /// Its client for other servers.
    pub client: MimiClient,
    /// Its MLS identity as a hub.
    pub identity: HubIdentity,
    /// Whether anyone may register a new user through the client API.
    pub open_registration: bool,
}

/// A new client's registration (`POST /v1/register`).
#[derive(Debug, Clone, Default)]
pub struct Registration {
    /// The user's localpart.
    pub localpart: String,
    /// The device part of the client ID.
    pub device: String,
    /// Directory fields.
    pub handle: Option<String>,
    /// Email.
    pub email: Option<String>,
    /// Phone.
    pub phone: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
}

/// A registered client and its bearer token.
#[derive(Debug, Clone)]
pub struct Registered {
    /// The user.
    pub user_id: UserId,
    /// The client.
    pub client_id: ClientId,
    /// Its bearer token (shown once).
    pub token: String,
}

/// A room prepared for creation (`POST /v1/rooms/prepare`).
#[derive(Debug, Clone)]
pub struct PreparedRoom {
    /// The new room's ID.
    pub room_id: RoomId,
    /// The initial room state the group must carry.
    pub room_state: RoomState,
    /// The hub's ExternalSender, TLS-encoded.
    pub hub_external_sender: Vec<u8>,
}

enum Slot {
    Unloaded,
    Absent,
    Hub(Box<HubRoom>, RoomMeta),
    Follower(Box<FollowerRoom>),
}

type SlotRef = Arc<tokio::sync::Mutex<Slot>>;

/// An accepted event whose write is submitted but maybe not yet durable.
struct Submitted {
    pending: PendingCommit,
    /// Whether the write queues fan-out (the outbox workers are woken once it is durable).
    has_outbox: bool,
    /// Whether it adds inbox items (long-polling readers are woken once it is durable).
    has_inbox: bool,
}

/// One provider's server logic.
pub struct Provider {
    name: ServerName,
    storage: Arc<dyn Storage>,
    client: MimiClient,
    identity: HubIdentity,
    open_registration: bool,
    rooms: Mutex<HashMap<RoomId, SlotRef>>,
    outbox: Arc<Notify>,
    /// Notified whenever inbox items of local clients become durable (long-polling reads
    /// wait for it).
    inbox_added: Notify,
    /// Notified whenever a follower room applies an event (events that arrived before the
    /// one they follow wait for it).
    follower_progress: Notify,
    /// Token hashes of clients that authenticated, so that a request does not read storage
    /// to authenticate (see [`AuthCache`]).
    auth_cache: Mutex<AuthCache>,
}

/// Longest a follower holds an event that arrived before the one it follows (the hub
/// sends a room's events several at a time); then it answers `503` and the hub sends it
/// again.
pub const FOLLOWER_GAP_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Most clients whose token hash [`Provider::authenticate`] keeps in memory; beyond it the
/// cache starts again empty.
pub const AUTH_CACHE_MAX: usize = 100_000;

/// Token hashes read from storage. `generation` grows whenever a client's token is
/// written, so that a hash read before that write is never cached after it.
#[derive(Debug, Default)]
struct AuthCache {
    generation: u64,
    hashes: HashMap<ClientId, [u8; 32]>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("name", &self.name)
            .finish()
    }
}

/// The grants of every policy this provider creates: owners and admins may do everything
/// (the main spec's example: "only users who have the admin or owner role can add and
/// remove users").
fn policy_for(join_rule: JoinRule) -> Policy {
    let staff: &[StandardRole] = &[StandardRole::Owner, StandardRole::Admin];
    let grants: Vec<(PolicyAction, &[StandardRole])> =
        PolicyAction::ALL.iter().map(|a| (*a, staff)).collect();
    Policy::new(join_rule, &grants)
}

fn security() -> Result<SecurityConfig, ApiError> {
    Ok(SecurityConfig {
        protocol: Text::new(SECURITY_PROTOCOL_MLS10)
            .map_err(|e| ApiError::Internal(e.to_string()))?,
        cipher_suite: DEFAULT_CIPHER_SUITE,
    })
}

fn err(code: ErrorCode, detail: impl Into<String>) -> EventError {
    EventError::new(code, detail)
}

fn internal(e: impl std::fmt::Display) -> EventError {
    EventError::new(ErrorCode::Internal, e.to_string())
}

/// Run a storage call off the async runtime.
async fn blocking<T: Send + 'static>(
    storage: &Arc<dyn Storage>,
    f: impl FnOnce(&dyn Storage) -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    let storage = Arc::clone(storage);
    tokio::task::spawn_blocking(move || f(storage.as_ref()))
        .await
        .map_err(|e| StorageError::Backend(format!("storage task failed: {e}")))?
}

fn token_hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

impl Provider {
    /// A provider over its parts.
    pub fn new(parts: ProviderParts) -> Arc<Provider> {
        Arc::new(Provider {
            name: parts.server_name,
            storage: parts.storage,
            client: parts.client,
            identity: parts.identity,
            open_registration: parts.open_registration,
            rooms: Mutex::new(HashMap::new()),
            outbox: Arc::new(Notify::new()),
            inbox_added: Notify::new(),
            follower_progress: Notify::new(),
            auth_cache: Mutex::new(AuthCache::default()),
        })
    }

    /// This server's name.
    pub fn server_name(&self) -> &ServerName {
        &self.name
    }

    /// The storage.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// The client for other servers.
    pub fn client(&self) -> &MimiClient {
        &self.client
    }

    /// Notified whenever outbox entries are added.
    pub fn outbox_notify(&self) -> Arc<Notify> {
        Arc::clone(&self.outbox)
    }

    fn auth_cache(&self) -> std::sync::MutexGuard<'_, AuthCache> {
        self.auth_cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn slot(&self, room: &RoomId) -> SlotRef {
        let mut rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(
            rooms
                .entry(room.clone())
                .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(Slot::Unloaded))),
        )
    }

    /// Load a room from storage into its slot (the slot is locked by the caller).
    async fn load(&self, room: &RoomId, slot: &mut Slot) -> Result<(), EventError> {
        if !matches!(slot, Slot::Unloaded) {
            return Ok(());
        }
        let id = room.clone();
        let record = blocking(&self.storage, move |s| s.room(&id))
            .await
            .map_err(internal)?;
        let Some(record) = record else {
            *slot = Slot::Absent;
            return Ok(());
        };
        let mut events = Vec::new();
        let mut from = 0;
        loop {
            let id = room.clone();
            let page = blocking(&self.storage, move |s| {
                s.log_range(&id, from, MAX_READ_LIMIT)
            })
            .await
            .map_err(internal)?;
            let done = page.len() < MAX_READ_LIMIT;
            for entry in page {
                events.push(decode_event(&entry.entry).map_err(internal)?);
                from = entry.seq + 1;
            }
            if done {
                break;
            }
        }
        let group = record
            .group
            .as_deref()
            .map(HubGroup::from_bytes)
            .transpose()
            .map_err(internal)?;
        *slot = match record.role {
            RoomRole::Hub => {
                let hub = Hub::restore(room, &events).map_err(internal)?;
                let group = group.ok_or_else(|| internal("hub room without group state"))?;
                let meta = RoomMeta::decode(&record.state).map_err(internal)?;
                Slot::Hub(
                    Box::new(HubRoom::from_parts(hub, group, self.name.clone())),
                    meta,
                )
            }
            RoomRole::Follower => {
                let (first, rest) = events
                    .split_first()
                    .ok_or_else(|| internal("follower room without events"))?;
                let mut follower =
                    Follower::new(&first.sender, room, &first.fanout).map_err(internal)?;
                for e in rest {
                    follower
                        .receive(&e.sender, &e.fanout, &e.changes)
                        .map_err(internal)?;
                }
                Slot::Follower(Box::new(FollowerRoom::from_parts(
                    follower,
                    group,
                    room.server(),
                )))
            }
        };
        Ok(())
    }

    /// Forget a room's in-memory state (after a failed write, so the next access reloads
    /// what is durable).
    fn evict(&self, room: &RoomId) {
        let mut rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        rooms.remove(room);
    }

    /// The local clients that get an event: every client of this server's users who are on
    /// the participant list after it, or whom it concerns (including users with a client in
    /// the group before it: a commit removing a departed user's clients must reach them).
    async fn local_recipients(
        &self,
        room: &Room,
        concerned: impl Iterator<Item = UserId>,
    ) -> Result<Vec<ClientId>, EventError> {
        let mut users: BTreeSet<UserId> = room
            .participants()
            .map(|(u, _)| u.clone())
            .filter(|u| u.server() == self.name)
            .collect();
        users.extend(concerned.filter(|u| u.server() == self.name));
        if users.is_empty() {
            return Ok(Vec::new());
        }
        // One trip to the storage thread pool for all of them.
        blocking(&self.storage, move |s| {
            let mut clients = Vec::new();
            for user in &users {
                clients.extend(s.clients_of(user)?);
            }
            Ok(clients)
        })
        .await
        .map_err(internal)
    }

    /// Queue `message` for every local client the event concerns: this server's users on
    /// the participant list after it, the users it names (sender and targets), and those
    /// who had a client in the group before it (a commit removing them must reach them).
    async fn push_inbox(
        &self,
        batch: &mut Batch,
        room: &Room,
        logged: &LoggedEvent,
        in_group_before: BTreeSet<UserId>,
        message: &[u8],
    ) -> Result<(), EventError> {
        let concerned = logged
            .changes
            .iter()
            .map(|c| c.target.clone())
            .chain(match &logged.sender {
                Sender::User(u) => Some(u.clone()),
                Sender::Server(_) => None,
            })
            .chain(in_group_before);
        for client in self.local_recipients(room, concerned).await? {
            batch.inbox.push((client, message.to_vec()));
        }
        Ok(())
    }

    /// Submit the write of an event the hub accepted (its log entry, room and group state,
    /// fan-out and inboxes) and return it pending: the caller releases the room's lock,
    /// then waits with [`Provider::settle`] before it answers. On failure the room is
    /// evicted so that memory does not run ahead of storage.
    async fn persist_hub_event(
        &self,
        room_id: &RoomId,
        hub_room: &HubRoom,
        meta: &mut RoomMeta,
        accepted: &HubAccepted,
        group_changed: bool,
        in_group_before: BTreeSet<UserId>,
    ) -> Result<Submitted, EventError> {
        let result = self
            .persist_hub_event_inner(
                room_id,
                hub_room,
                meta,
                accepted,
                group_changed,
                in_group_before,
            )
            .await;
        if result.is_err() {
            self.evict(room_id);
        }
        result
    }

    /// The stored events of a room from sequence `from` up to (not including) `until`,
    /// once every write submitted before is durable (an empty batch, answered after all of
    /// them, is the barrier): the room's latest events may still be on their way to disk.
    async fn stored_events(
        &self,
        room_id: &RoomId,
        from: u64,
        until: u64,
    ) -> Result<Vec<LoggedEvent>, EventError> {
        // Its own outcome does not matter (a room being created is not stored yet).
        let _ = self
            .storage
            .submit(Batch::new(room_id.clone()))
            .durable()
            .await;
        let mut events = Vec::new();
        let mut next = from;
        while next < until {
            let id = room_id.clone();
            let limit = usize::try_from(until - next).unwrap_or(MAX_READ_LIMIT);
            let page = blocking(&self.storage, move |s| s.log_range(&id, next, limit))
                .await
                .map_err(internal)?;
            if page.is_empty() {
                return Err(internal(format!(
                    "{room_id}: event {next} is missing from the stored log"
                )));
            }
            for entry in page {
                if entry.seq >= until {
                    break;
                }
                events.push(decode_event(&entry.entry).map_err(internal)?);
                next = entry.seq + 1;
            }
        }
        Ok(events)
    }

    /// Wait until a submitted event is durable (outside the room's lock, so that the room's
    /// next event is checked and submitted meanwhile: its write is ordered after this one).
    /// If the write failed, the room's slot is emptied, so that the next event reloads it
    /// from storage instead of building on the lost one (the room's later writes, submitted
    /// on top of it, fail their sequence check).
    async fn settle(
        &self,
        room_id: &RoomId,
        slot: &SlotRef,
        submitted: Submitted,
    ) -> Result<(), EventError> {
        match submitted.pending.durable().await {
            Ok(_) => {
                if submitted.has_outbox {
                    self.outbox.notify_waiters();
                }
                if submitted.has_inbox {
                    self.inbox_added.notify_waiters();
                }
                Ok(())
            }
            Err(e) => {
                tracing::error!(room = %room_id, error = %e, "an accepted event could not be stored; reloading the room");
                *slot.lock().await = Slot::Unloaded;
                Err(internal(e))
            }
        }
    }

    async fn persist_hub_event_inner(
        &self,
        room_id: &RoomId,
        hub_room: &HubRoom,
        meta: &mut RoomMeta,
        accepted: &HubAccepted,
        group_changed: bool,
        in_group_before: BTreeSet<UserId>,
    ) -> Result<Submitted, EventError> {
        let logged = &accepted.logged;
        let seq = logged.fanout.sequence;
        let mut batch = Batch::new(room_id.clone());
        batch.expect_last_seq = Some(seq.checked_sub(1));
        batch.log = Some(LogEntry {
            seq,
            entry: encode_event(room_id, logged).map_err(internal)?,
        });
        let mut new_meta = meta.clone();
        let history = hub_room.hub().history();
        for dest in accepted.plan.destinations() {
            if dest == self.name {
                continue;
            }
            // Events this destination has not been sent yet come first, without Welcomes:
            // from memory when it still holds them, else from the stored log.
            let from = meta.next_seq(&dest);
            let earlier: Vec<LoggedEvent> = match history.events_from(from) {
                Some(events) => events
                    .iter()
                    .take_while(|e| e.fanout.sequence < seq)
                    .cloned()
                    .collect(),
                None => self.stored_events(room_id, from, seq).await?,
            };
            for earlier in &earlier {
                let msg = message_for(room_id, earlier, None);
                batch
                    .outbox
                    .push((dest.clone(), msg.encode().map_err(internal)?));
            }
            let welcomes = accepted.plan.welcomes_to.get(&dest).map(Vec::as_slice);
            let msg = message_for(room_id, logged, welcomes);
            batch
                .outbox
                .push((dest.clone(), msg.encode().map_err(internal)?));
            new_meta.sent_up_to(&dest, seq + 1).map_err(internal)?;
        }
        let own_welcomes = accepted.plan.welcomes_to.get(&self.name).map(Vec::as_slice);
        let own_msg = message_for(room_id, logged, own_welcomes)
            .encode()
            .map_err(internal)?;
        self.push_inbox(
            &mut batch,
            hub_room.hub().room(),
            logged,
            in_group_before,
            &own_msg,
        )
        .await?;
        batch.room_update = Some(RoomUpdate {
            role: RoomRole::Hub,
            state: new_meta.encode().map_err(internal)?,
            group: if group_changed {
                GroupUpdate::Replace(hub_room.group().to_bytes().map_err(internal)?)
            } else {
                GroupUpdate::Keep
            },
        });
        let has_outbox = !batch.outbox.is_empty();
        let has_inbox = !batch.inbox.is_empty();
        let pending = self.storage.submit(batch);
        *meta = new_meta;
        Ok(Submitted {
            pending,
            has_outbox,
            has_inbox,
        })
    }

    /// The hub's handling of a limited event from `sender` (already authenticated as coming
    /// from the sender's server, or from this server's own client).
    async fn hub_event(
        &self,
        room_id: &RoomId,
        sender: Sender,
        event: Event,
    ) -> Result<EventResponse, EventError> {
        let slot = self.slot(room_id);
        let mut guard = slot.lock().await;
        self.load(room_id, &mut guard).await?;
        let Slot::Hub(hub_room, meta) = &mut *guard else {
            return Err(match &*guard {
                Slot::Follower(_) => err(
                    ErrorCode::NotHub,
                    format!("{} is not the hub of {room_id}", self.name),
                ),
                _ => err(ErrorCode::UnknownRoom, format!("unknown room {room_id}")),
            });
        };
        match &event {
            Event::DsFetchGroupInfo(_) => {
                return hub_room.group_info(&sender).map_err(|e| e.to_event_error());
            }
            Event::RoomInfo(_) | Event::DsFetchKeyPackages(_) | Event::DsCreateGroup(_) => {
                return Err(err(
                    ErrorCode::UnsupportedEvent,
                    format!("{} is not sent to a room's hub", event.event_type()),
                ));
            }
            _ => {}
        }
        let transitions = hub_room
            .check(&sender, &event)
            .map_err(|e| e.to_event_error())?;
        // The check-invite exchange (main spec, "Invites" step 4) before accepting.
        for t in transitions
            .iter()
            .filter(|t| t.operation() == Operation::Invite)
        {
            let mut after = hub_room.hub().room().clone();
            after
                .accept_all(&sender, std::slice::from_ref(&invite_change(t)))
                .map_err(|r| r.to_event_error())?;
            self.check_invite_with(room_id, &sender, &event, t.target(), &after)
                .await?;
        }
        let group_changed = !matches!(event, Event::DsSendMessage(_) | Event::RoomUserUnsigned(_));
        let in_group_before = group_users(hub_room.group());
        let accepted = hub_room
            .accept(sender, event)
            .map_err(|e| e.to_event_error())?;
        let submitted = self
            .persist_hub_event(
                room_id,
                hub_room,
                meta,
                &accepted,
                group_changed,
                in_group_before,
            )
            .await?;
        drop(guard);
        self.settle(room_id, &slot, submitted).await?;
        Ok(EventResponse::Ok)
    }

    /// Ask the invitee's server whether it takes part (`POST /check-invite`); a network
    /// error counts as a refusal.
    async fn check_invite_with(
        &self,
        room_id: &RoomId,
        sender: &Sender,
        event: &Event,
        invitee: &UserId,
        room_after: &Room,
    ) -> Result<(), EventError> {
        let request = CheckInviteRequest {
            invite: MimiMessage::new(
                room_id.clone(),
                sender.clone(),
                MessageBody::Event(event.clone()),
            ),
            room_info: InfoEvent {
                room_state: room_after.to_room_state(),
            },
        };
        let server = invitee.server();
        if server == self.name {
            return match self.check_invite_locally(&request).await {
                CheckInviteReply::Accepted => Ok(()),
                CheckInviteReply::Refused(e) | CheckInviteReply::Unavailable(e) => Err(e),
            };
        }
        match self.client.check_invite(&server, &request).await {
            Ok(CheckInviteOutcome::Accepted) => Ok(()),
            Ok(CheckInviteOutcome::Refused(e)) => Err(err(
                ErrorCode::InviteRejected,
                format!(
                    "{server} refused the invite{}",
                    e.map(|e| format!(": {}", e.detail)).unwrap_or_default()
                ),
            )),
            Err(e) => Err(err(
                ErrorCode::InviteRejected,
                format!("{server} could not be asked about the invite: {e}"),
            )),
        }
    }

    /// This server's answer to a check-invite: it takes part in rooms whose policy and
    /// security configuration it understands, for invitees it has.
    async fn check_invite_locally(&self, request: &CheckInviteRequest) -> CheckInviteReply {
        let state = &request.room_info.room_state;
        if let Err(e) = Room::from_room_state(state) {
            return CheckInviteReply::Refused(err(
                ErrorCode::ForbiddenByPolicy,
                format!("room configuration not understood: {e}"),
            ));
        }
        if state.security.cipher_suite != DEFAULT_CIPHER_SUITE {
            return CheckInviteReply::Refused(err(
                ErrorCode::ForbiddenByPolicy,
                format!(
                    "cipher suite {:#06x} is not supported",
                    state.security.cipher_suite
                ),
            ));
        }
        if state.room_id != request.invite.room_id {
            return CheckInviteReply::Refused(err(ErrorCode::Malformed, "room IDs differ"));
        }
        let invitees: Vec<UserId> = state
            .participants
            .iter()
            .filter(|p| p.state == ParticipationState::Invite && p.user_id.server() == self.name)
            .map(|p| p.user_id.clone())
            .collect();
        if invitees.is_empty() {
            return CheckInviteReply::Refused(err(
                ErrorCode::UnknownUser,
                "the room invites none of this server's users",
            ));
        }
        for user in invitees {
            let u = user.clone();
            match blocking(&self.storage, move |s| s.user(&u)).await {
                Ok(Some(_)) => {}
                Ok(None) => {
                    return CheckInviteReply::Refused(err(
                        ErrorCode::UnknownUser,
                        format!("{user} does not exist here"),
                    ));
                }
                Err(e) => return CheckInviteReply::Unavailable(internal(e)),
            }
        }
        CheckInviteReply::Accepted
    }

    /// A follower's handling of a fully-formed event from the hub.
    ///
    /// The hub may have several of a room's events in flight at once (`outbox`), so an
    /// event can arrive before the one it follows: it waits (without the room's lock) up
    /// to [`FOLLOWER_GAP_WAIT`] for the earlier ones, then is answered `503` for the hub to
    /// send again. The event is applied and its write submitted under the room's lock; the
    /// answer waits for the write to be durable outside it, so that the room's next event
    /// is checked meanwhile.
    async fn follower_event(
        &self,
        room_id: &RoomId,
        sender: Sender,
        fanout: FanoutEvent,
    ) -> Result<(), EventError> {
        let deadline = tokio::time::Instant::now() + FOLLOWER_GAP_WAIT;
        let slot = self.slot(room_id);
        let mut guard = loop {
            let progressed = self.follower_progress.notified();
            let mut guard = slot.lock().await;
            self.load(room_id, &mut guard).await?;
            let next = match &*guard {
                Slot::Follower(room) => room.follower().history().next_sequence(),
                Slot::Absent | Slot::Unloaded => 0,
                Slot::Hub(..) => {
                    return Err(err(
                        ErrorCode::NotHub,
                        "this server is the room's hub; it does not take fanout for it",
                    ));
                }
            };
            if fanout.sequence <= next {
                break guard;
            }
            drop(guard);
            if tokio::time::Instant::now() >= deadline {
                return Err(err(
                    ErrorCode::Internal,
                    format!(
                        "event {} arrived before event {next} of {room_id}; send it again",
                        fanout.sequence
                    ),
                ));
            }
            tokio::select! {
                _ = progressed => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        };
        let in_group_before = match &*guard {
            Slot::Follower(room) => room.group().map(group_users).unwrap_or_default(),
            _ => BTreeSet::new(),
        };
        let group_changed = !matches!(
            fanout.event,
            Event::DsSendMessage(_) | Event::RoomUserUnsigned(_)
        );
        let outcome = match &mut *guard {
            // The wait above returned for a hub slot, and the lock has been held since.
            Slot::Hub(..) => return Err(internal("a follower's slot became a hub's")),
            Slot::Absent | Slot::Unloaded => {
                let room = FollowerRoom::new(&sender, &fanout).map_err(follower_error)?;
                *guard = Slot::Follower(Box::new(room));
                FollowerOutcome::Applied { sequence: 0 }
            }
            Slot::Follower(room) => room.receive(&sender, &fanout).map_err(follower_error)?,
        };
        let FollowerOutcome::Applied { sequence } = outcome else {
            return Ok(());
        };
        let Slot::Follower(room) = &*guard else {
            return Err(internal("follower slot vanished"));
        };
        let submitted = match self
            .persist_follower_event(room_id, room, sequence, in_group_before, group_changed)
            .await
        {
            Ok(submitted) => submitted,
            Err(e) => {
                drop(guard);
                self.evict(room_id);
                return Err(e);
            }
        };
        drop(guard);
        self.follower_progress.notify_waiters();
        self.settle(room_id, &slot, submitted).await
    }

    async fn persist_follower_event(
        &self,
        room_id: &RoomId,
        room: &FollowerRoom,
        sequence: u64,
        in_group_before: BTreeSet<UserId>,
        group_changed: bool,
    ) -> Result<Submitted, EventError> {
        let logged = room
            .follower()
            .history()
            .get(sequence)
            .cloned()
            .ok_or_else(|| internal("received event missing from the history"))?;
        let mut batch = Batch::new(room_id.clone());
        batch.dedup = true;
        batch.log = Some(LogEntry {
            seq: sequence,
            entry: encode_event(room_id, &logged).map_err(internal)?,
        });
        batch.room_update = Some(RoomUpdate {
            role: RoomRole::Follower,
            state: RoomMeta::default().encode().map_err(internal)?,
            // Application messages and unsigned participation events leave the group as it
            // is: rewriting its state for each of them would cost as much as the event.
            group: match room.group() {
                Some(g) if group_changed => GroupUpdate::Replace(g.to_bytes().map_err(internal)?),
                _ => GroupUpdate::Keep,
            },
        });
        // The message as received (with the Welcomes meant for this server) goes to the
        // local clients.
        let msg = logged.message(room_id).encode().map_err(internal)?;
        self.push_inbox(
            &mut batch,
            room.follower().room(),
            &logged,
            in_group_before,
            &msg,
        )
        .await?;
        let has_inbox = !batch.inbox.is_empty();
        Ok(Submitted {
            pending: self.storage.submit(batch),
            has_outbox: false,
            has_inbox,
        })
    }

    /// Answer `ds.fetch_key_packages` for one of this server's users.
    async fn key_packages_for(
        &self,
        request: KeyPackagesRequest,
    ) -> Result<EventResponse, EventError> {
        if request.user.server() != self.name {
            return Err(err(
                ErrorCode::UnknownUser,
                format!("{} is not a user of {}", request.user, self.name),
            ));
        }
        let user = request.user.clone();
        let known = blocking(&self.storage, move |s| s.user(&user))
            .await
            .map_err(internal)?;
        if known.is_none() {
            return Err(err(
                ErrorCode::UnknownUser,
                format!("no user {}", request.user),
            ));
        }
        let user = request.user.clone();
        let clients: Vec<ClientId> = request.clients.as_slice().to_vec();
        let suite = request.cipher_suite;
        let claimed = blocking(&self.storage, move |s| {
            s.claim_key_packages(&user, &clients, suite)
        })
        .await
        .map_err(internal)?;
        if claimed.is_empty() {
            return Err(err(
                ErrorCode::NoKeyPackages,
                format!("no key packages for {}", request.user),
            ));
        }
        let entries = claimed
            .into_iter()
            .map(|(client, bytes)| {
                Ok(KeyPackageEntry {
                    client,
                    kind: KeyPackageType::MlsKeyPackage,
                    key_package: MlsBytes::new(bytes)?,
                })
            })
            .collect::<Result<Vec<_>, mimi_codec::CodecError>>()
            .map_err(internal)?;
        Ok(EventResponse::KeyPackages(KeyPackagesResponse {
            key_packages: BoundedVec::new(entries).map_err(internal)?,
        }))
    }

    fn response(&self, room: &RoomId, response: EventResponse) -> MimiMessage {
        MimiMessage::new(
            room.clone(),
            Sender::Server(self.name.clone()),
            MessageBody::Response(response),
        )
    }

    // ---- The provider-internal client API ----

    /// Authenticate a bearer token (`<client id>.<secret>`).
    pub async fn authenticate(&self, token: &str) -> Result<ClientId, ApiError> {
        let (id, secret) = token.rsplit_once('.').ok_or(ApiError::Unauthorized)?;
        let client: ClientId = id.parse().map_err(|_| ApiError::Unauthorized)?;
        let (cached, generation) = {
            let cache = self.auth_cache();
            (cache.hashes.get(&client).copied(), cache.generation)
        };
        let stored = match cached {
            Some(hash) => hash,
            None => {
                let c = client.clone();
                let hash = blocking(&self.storage, move |s| s.client(&c))
                    .await?
                    .ok_or(ApiError::Unauthorized)?
                    .token_hash;
                let mut cache = self.auth_cache();
                if cache.generation == generation {
                    if cache.hashes.len() >= AUTH_CACHE_MAX {
                        cache.hashes.clear();
                    }
                    cache.hashes.insert(client.clone(), hash);
                }
                hash
            }
        };
        let given = token_hash(secret);
        // Constant-time comparison.
        let diff = given
            .iter()
            .zip(stored.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff == 0 {
            Ok(client)
        } else {
            Err(ApiError::Unauthorized)
        }
    }

    /// Register a client (and its user, if new). `by` is the authenticated client, needed to
    /// add a device to an existing user.
    pub async fn register(
        &self,
        registration: Registration,
        by: Option<ClientId>,
    ) -> Result<Registered, ApiError> {
        let user_id = UserId::new(&registration.localpart, &self.name)
            .map_err(|e| ApiError::Malformed(e.to_string()))?;
        let client_id = ClientId::new(&user_id, &registration.device)
            .map_err(|e| ApiError::Malformed(e.to_string()))?;
        let u = user_id.clone();
        let existing = blocking(&self.storage, move |s| s.user(&u)).await?;
        match (&existing, &by) {
            (Some(_), Some(by)) if by.user() == user_id => {}
            (Some(_), _) => {
                return Err(ApiError::Conflict(format!(
                    "{user_id} exists; add a device with the token of one of its clients"
                )));
            }
            (None, _) if !self.open_registration => {
                return Err(ApiError::Forbidden("registration is closed".into()));
            }
            (None, _) => {}
        }
        let c = client_id.clone();
        if blocking(&self.storage, move |s| s.client(&c))
            .await?
            .is_some()
        {
            return Err(ApiError::Conflict(format!("{client_id} exists")));
        }
        if existing.is_none() {
            let record = UserRecord {
                user_id: user_id.clone(),
                handle: registration.handle,
                email: registration.email,
                phone: registration.phone,
                display_name: registration.display_name,
            };
            blocking(&self.storage, move |s| s.put_user(&record)).await?;
        }
        let mut secret = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        let secret = hex::encode(secret);
        let record = ClientRecord {
            client_id: client_id.clone(),
            token_hash: token_hash(&secret),
        };
        let written = blocking(&self.storage, move |s| s.put_client(&record)).await;
        {
            // Whether or not the write went through, no earlier read of this client's
            // token may stay cached.
            let mut cache = self.auth_cache();
            cache.generation = cache.generation.wrapping_add(1);
            cache.hashes.remove(&client_id);
        }
        written?;
        Ok(Registered {
            token: format!("{client_id}.{secret}"),
            user_id,
            client_id,
        })
    }

    /// Publish key packages for `client` (DS-KP-1 on each).
    pub async fn publish_key_packages(
        &self,
        client: &ClientId,
        packages: Vec<Vec<u8>>,
    ) -> Result<usize, ApiError> {
        let mut stored = Vec::new();
        for bytes in packages {
            let kp = mimi_ds::validate_key_package(&bytes, client)
                .map_err(|e| ApiError::Malformed(e.to_string()))?;
            stored.push(StoredKeyPackage {
                cipher_suite: kp.cipher_suite,
                last_resort: kp.last_resort,
                hash_ref: kp.hash_ref,
                bytes: kp.bytes,
            });
        }
        let n = stored.len();
        let c = client.clone();
        blocking(&self.storage, move |s| s.publish_key_packages(&c, stored)).await?;
        Ok(n)
    }

    /// Identifier discovery at `domain` (this server, or a peer over MIMI).
    pub async fn discover(
        &self,
        domain: &ServerName,
        request: IdentifierRequest,
    ) -> Result<IdentifierResponse, ApiError> {
        if *domain == self.name {
            return Ok(self.discover_locally(&request).await);
        }
        self.client
            .identifier_discovery(domain, domain, &request)
            .await
            .map_err(|e| ApiError::Remote(format!("{domain}: {e}")))
    }

    async fn discover_locally(&self, request: &IdentifierRequest) -> IdentifierResponse {
        let field = match request.query {
            IdentifierQuery::Handle => Some(DirectoryField::Handle),
            IdentifierQuery::Email => Some(DirectoryField::Email),
            IdentifierQuery::Phone => Some(DirectoryField::Phone),
            IdentifierQuery::Nick => Some(DirectoryField::DisplayName),
            _ => None,
        };
        let response = |code, uri: &str| IdentifierResponse {
            code,
            uri: Text::new(uri).unwrap_or_default(),
        };
        let Some(field) = field else {
            return response(IdentifierDiscoveryCode::UnsupportedField, "");
        };
        let value = request.search_value.as_str().to_owned();
        match blocking(&self.storage, move |s| s.find_users(field, &value)).await {
            Ok(users) => match users.as_slice() {
                [] => response(IdentifierDiscoveryCode::NotFound, ""),
                [one] => response(IdentifierDiscoveryCode::Success, one.as_str()),
                _ => response(IdentifierDiscoveryCode::Ambiguous, ""),
            },
            Err(_) => response(IdentifierDiscoveryCode::Forbidden, ""),
        }
    }

    /// Claim key packages of `user`'s clients for use in `room` (locally, or at the user's
    /// server with `ds.fetch_key_packages`).
    pub async fn claim_key_packages(
        &self,
        requester: &ClientId,
        room: &RoomId,
        user: &UserId,
        clients: Vec<ClientId>,
    ) -> Result<Vec<KeyPackageEntry>, ApiError> {
        let request = KeyPackagesRequest {
            cipher_suite: DEFAULT_CIPHER_SUITE,
            user: user.clone(),
            clients: BoundedVec::new(clients).map_err(|e| ApiError::Malformed(e.to_string()))?,
        };
        let response = if user.server() == self.name {
            self.key_packages_for(request)
                .await
                .map_err(|e| ApiError::NotFound(e.detail.to_string()))?
        } else {
            let msg = MimiMessage::new(
                room.clone(),
                Sender::User(requester.user()),
                MessageBody::Event(Event::DsFetchKeyPackages(request)),
            );
            let server = user.server();
            match self.client.send(&server, &msg).await {
                Ok(out) => match out.response.map(|m| m.body) {
                    Some(MessageBody::Response(r)) => r,
                    _ => return Err(ApiError::Remote(format!("{server} sent no key packages"))),
                },
                Err(TransportError::Refused { error: Some(e), .. }) => EventResponse::Error(e),
                Err(e) => return Err(remote(&server, e)),
            }
        };
        match response {
            EventResponse::KeyPackages(k) => Ok(k.key_packages.into_vec()),
            EventResponse::Error(e) => Err(ApiError::NotFound(e.detail.to_string())),
            _ => Err(ApiError::Remote("unexpected response".into())),
        }
    }

    /// Prepare a room: a fresh room ID under this server and the initial state.
    pub fn prepare_room(
        &self,
        creator: &ClientId,
        join_rule: JoinRule,
    ) -> Result<PreparedRoom, ApiError> {
        let mut random = [0u8; mimi_signaling::ROOM_ID_RANDOM_LEN];
        rand::rngs::OsRng.fill_bytes(&mut random);
        let hub = Hub::create(
            creator.user(),
            RoomIdSource::Random(random),
            policy_for(join_rule),
            security()?,
        )
        .map_err(|e| ApiError::Malformed(e.to_string()))?;
        Ok(PreparedRoom {
            room_id: hub.room().id().clone(),
            room_state: hub.room().to_room_state(),
            hub_external_sender: self.identity.external_sender_bytes(),
        })
    }

    /// Create a prepared room from its creator's group (DS-CR-1): logs the create event and
    /// `ds.create_group`.
    pub async fn create_room(
        &self,
        creator: &ClientId,
        room_id: &RoomId,
        join_rule: JoinRule,
        group: CreateGroupRequest,
    ) -> Result<u64, ApiError> {
        if room_id.server() != self.name {
            return Err(ApiError::Malformed(format!(
                "{room_id} is not a room of {}",
                self.name
            )));
        }
        let localpart = room_id
            .as_str()
            .strip_prefix('!')
            .and_then(|r| r.split(':').next())
            .unwrap_or_default()
            .to_owned();
        let hub = Hub::create(
            creator.user(),
            RoomIdSource::Localpart(localpart),
            policy_for(join_rule),
            security()?,
        )
        .map_err(|e| ApiError::Malformed(e.to_string()))?;
        let slot = self.slot(room_id);
        let mut guard = slot.lock().await;
        self.load(room_id, &mut guard)
            .await
            .map_err(|e| ApiError::Internal(e.detail.to_string()))?;
        if !matches!(*guard, Slot::Absent) {
            return Err(ApiError::Conflict(format!("{room_id} exists")));
        }
        let (hub_room, create_group) = HubRoom::create(
            hub,
            self.name.clone(),
            group,
            self.identity.external_sender(),
        )
        .map_err(|e| ApiError::Malformed(e.to_string()))?;
        let create = hub_room
            .hub()
            .create_event()
            .cloned()
            .ok_or_else(|| ApiError::Internal("no create event".into()))?;
        let meta = RoomMeta::default();
        let state = meta
            .encode()
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let group_bytes = hub_room
            .group()
            .to_bytes()
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        for (logged, group) in [
            (&create, GroupUpdate::Keep),
            (&create_group, GroupUpdate::Replace(group_bytes)),
        ] {
            let mut batch = Batch::new(room_id.clone());
            batch.expect_last_seq = Some(logged.fanout.sequence.checked_sub(1));
            batch.log = Some(LogEntry {
                seq: logged.fanout.sequence,
                entry: encode_event(room_id, logged)
                    .map_err(|e| ApiError::Internal(e.to_string()))?,
            });
            batch.room_update = Some(RoomUpdate {
                role: RoomRole::Hub,
                state: state.clone(),
                group,
            });
            blocking(&self.storage, move |s| s.commit(batch)).await?;
        }
        *guard = Slot::Hub(Box::new(hub_room), meta);
        Ok(create_group.fanout.sequence)
    }

    /// Submit an event to a room from one of this server's clients: to the hub (itself, or
    /// a peer). Returns whether it was accepted and the hub's response.
    pub async fn submit(
        &self,
        client: &ClientId,
        room: &RoomId,
        event: Event,
    ) -> Result<(bool, EventResponse), ApiError> {
        if let Event::RoomUserUnsigned(change) = &event
            && change.target != client.user()
        {
            return Err(ApiError::Forbidden(
                "an unsigned m.room.user is about the sender only".into(),
            ));
        }
        let sender = Sender::User(client.user());
        let hub = room.server();
        if hub == self.name {
            return Ok(match self.hub_event(room, sender, event).await {
                Ok(r) => (true, r),
                Err(e) => (false, EventResponse::Error(e)),
            });
        }
        let msg = MimiMessage::new(room.clone(), sender, MessageBody::Event(event));
        match self.client.send(&hub, &msg).await {
            Ok(out) => match out.response.map(|m| m.body) {
                Some(MessageBody::Response(r)) => Ok((!matches!(r, EventResponse::Error(_)), r)),
                None => Ok((true, EventResponse::Ok)),
                Some(_) => Err(ApiError::Remote(format!(
                    "{hub} answered with a non-response"
                ))),
            },
            Err(TransportError::Refused { error: Some(e), .. }) => {
                Ok((false, EventResponse::Error(e)))
            }
            Err(e) => Err(remote(&hub, e)),
        }
    }

    /// This server's copy of a room's state and its latest sequence number.
    pub async fn room_state(
        &self,
        client: &ClientId,
        room_id: &RoomId,
    ) -> Result<(RoomState, u64), ApiError> {
        let slot = self.slot(room_id);
        let mut guard = slot.lock().await;
        self.load(room_id, &mut guard)
            .await
            .map_err(|e| ApiError::Internal(e.detail.to_string()))?;
        let (room, next) = match &*guard {
            Slot::Hub(h, _) => (h.hub().room(), h.hub().history().next_sequence()),
            Slot::Follower(f) => (f.follower().room(), f.follower().history().next_sequence()),
            _ => return Err(ApiError::NotFound(format!("unknown room {room_id}"))),
        };
        let user = client.user();
        let visible =
            room.participant(&user).is_some() || room.policy().join_rule() == JoinRule::Public;
        if !visible {
            return Err(ApiError::Forbidden(format!("{user} is not in {room_id}")));
        }
        Ok((room.to_room_state(), next.saturating_sub(1)))
    }

    /// A client's inbox after `after`.
    pub async fn inbox(
        &self,
        client: &ClientId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, ApiError> {
        let c = client.clone();
        Ok(blocking(&self.storage, move |s| s.inbox_read(&c, after, limit)).await?)
    }

    /// A client's inbox after `after`, waiting up to `wait` for the first item if there is
    /// none yet (long polling: the client learns of a new item as soon as it is durable,
    /// without asking again and again).
    pub async fn inbox_wait(
        &self,
        client: &ClientId,
        after: u64,
        limit: usize,
        wait: std::time::Duration,
    ) -> Result<Vec<(u64, Vec<u8>)>, ApiError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Registered before reading, so that an item committed after the read wakes it.
            let added = self.inbox_added.notified();
            let items = self.inbox(client, after, limit).await?;
            if !items.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(items);
            }
            tokio::select! {
                _ = added => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }

    /// Propose the removal of departed users' clients as the hub (the alternative leave
    /// flow); returns whether anything was proposed.
    pub async fn propose_pending_removals(&self, room_id: &RoomId) -> Result<bool, ApiError> {
        let slot = self.slot(room_id);
        let mut guard = slot.lock().await;
        self.load(room_id, &mut guard)
            .await
            .map_err(|e| ApiError::Internal(e.detail.to_string()))?;
        let Slot::Hub(hub_room, meta) = &mut *guard else {
            return Err(ApiError::NotFound(format!(
                "{} is not the hub of {room_id}",
                self.name
            )));
        };
        // The hub is always the first external sender (DS-CR-1).
        let accepted = hub_room
            .propose_pending_removals(0, self.identity.signer())
            .map_err(|e| ApiError::Conflict(e.to_string()))?;
        let Some(accepted) = accepted else {
            return Ok(false);
        };
        let in_group_before = group_users(hub_room.group());
        let submitted = self
            .persist_hub_event(room_id, hub_room, meta, &accepted, true, in_group_before)
            .await
            .map_err(|e| ApiError::Internal(e.detail.to_string()))?;
        drop(guard);
        self.settle(room_id, &slot, submitted)
            .await
            .map_err(|e| ApiError::Internal(e.detail.to_string()))?;
        Ok(true)
    }
}

/// The users with at least one client in the group.
fn group_users(group: &HubGroup) -> BTreeSet<UserId> {
    group.members().into_iter().map(|(_, c)| c.user()).collect()
}

/// The change a transition makes, as a UserEvent (to compute the state after an invite).
fn invite_change(t: &mimi_signaling::Transition) -> mimi_codec::UserEvent {
    mimi_codec::UserEvent {
        target: t.target().clone(),
        change: mimi_codec::ParticipationStateChange::Invite,
        reason: Default::default(),
        follower_server_certificate: None,
        role: t.after().map(|p| p.role.to_role()),
    }
}

fn follower_error(e: FollowerError) -> EventError {
    match e {
        FollowerError::Ds(d) => d.to_event_error(),
        FollowerError::History(h) => {
            let code = match h.rule() {
                Some(r) => mimi_signaling::Rejection::new(r).error_code(),
                None => ErrorCode::InvalidParticipationChange,
            };
            err(code, format!("refusing the hub's event: {h}"))
        }
    }
}

fn remote(server: &ServerName, e: TransportError) -> ApiError {
    ApiError::Remote(format!("{server}: {e}"))
}

#[async_trait]
impl Handler for Provider {
    async fn send(&self, peer: &ServerName, message: MimiMessage) -> Reply {
        let room = message.room_id.clone();
        let hub = room.server();
        // Authentication and routing, before anything is looked at.
        let checked = match &message.body {
            MessageBody::Event(Event::DsFetchKeyPackages(_)) => {
                if message.sender.server() == *peer {
                    Ok(())
                } else {
                    Err(err(
                        ErrorCode::SenderMismatch,
                        "the sender is not of the TLS peer's server",
                    ))
                }
            }
            // Main spec: a follower receiving an event from another follower MUST reject it
            // with 400; the hub checks that the sender's server is the TLS peer.
            MessageBody::Event(_) if hub != self.name => Err(err(
                ErrorCode::NotHub,
                format!("{} is not the hub of {room}; send to {hub}", self.name),
            )),
            MessageBody::Event(_) => mimi_transport::check_sender(peer, &message, &hub),
            MessageBody::Fanout(_) if *peer != hub => Err(err(
                ErrorCode::NotHub,
                format!("fully-formed events of {room} come from its hub {hub}, not {peer}"),
            )),
            MessageBody::Fanout(_) => Ok(()),
            MessageBody::Response(_) => Err(err(
                ErrorCode::UnsupportedEvent,
                "a response is not sent to /send",
            )),
        };
        let result = match checked {
            Err(e) => Err(e),
            Ok(()) => match message.body {
                MessageBody::Event(Event::DsFetchKeyPackages(request)) => {
                    self.key_packages_for(request).await
                }
                MessageBody::Event(event) => self.hub_event(&room, message.sender, event).await,
                MessageBody::Fanout(fanout) => self
                    .follower_event(&room, message.sender, fanout)
                    .await
                    .map(|()| EventResponse::Ok),
                MessageBody::Response(_) => Err(err(ErrorCode::UnsupportedEvent, "unexpected")),
            },
        };
        match result {
            Ok(response) => Reply::Accepted(Some(self.response(&room, response))),
            Err(e) if e.code == ErrorCode::Internal => Reply::Unavailable(e),
            Err(e) => Reply::Refused(self.response(&room, EventResponse::Error(e))),
        }
    }

    async fn check_invite(
        &self,
        peer: &ServerName,
        request: CheckInviteRequest,
    ) -> CheckInviteReply {
        if *peer != request.invite.room_id.server() {
            return CheckInviteReply::Refused(err(
                ErrorCode::NotHub,
                "check-invite comes from the room's hub",
            ));
        }
        self.check_invite_locally(&request).await
    }

    async fn identifier_discovery(
        &self,
        _peer: &ServerName,
        domain: &ServerName,
        request: IdentifierRequest,
    ) -> IdentifierResponse {
        if *domain != self.name {
            return IdentifierResponse {
                code: IdentifierDiscoveryCode::NotFound,
                uri: Text::default(),
            };
        }
        self.discover_locally(&request).await
    }
}
