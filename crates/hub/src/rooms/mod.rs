//! The room engine: every room this server knows, as its hub (rooms created here: check,
//! ask the invitee's server, accept, fan out; `hub.rs`) or as a follower (the hub's events
//! applied in order, an early one held until the one before it arrives; `follower.rs`).
//! It owns the room cache (each room's state in memory behind its own lock, loaded from
//! storage on first use, bounded: an unknown room leaves no entry behind and idle rooms
//! are dropped when the cache is full, `Settings::room_cache_max`) and makes each accepted event durable — log, room
//! and group state, outbox and inbox items in one storage batch — before it answers
//! (`persist.rs`). It calls check-invite and the inbox, never the other way round.

mod follower;
mod hub;
pub mod once;
pub mod persist;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use mimi_codec::mls_ids::{DEFAULT_CIPHER_SUITE, SECURITY_PROTOCOL_MLS10};
use mimi_codec::{
    ClientId, CreateGroupRequest, ErrorCode, Event, EventError, EventResponse, JoinRule,
    MessageBody, MimiMessage, PolicyAction, RoomId, RoomState, SecurityConfig, Sender, Text,
    UserId, Wire,
};
use mimi_ds::{FollowerRoom, HubGroup, HubRoom};
use mimi_signaling::{Follower, Hub, LoggedEvent, Policy, RoomIdSource, Snapshot, StandardRole};
use mimi_transport::TransportError;
use rand::RngCore;
use tokio::sync::Notify;

use crate::check_invite::CheckInvite;
use crate::context::Context;
use crate::error::ApiError;
use crate::identity::HubIdentity;
use crate::inbox::Inbox;
use crate::peers::Attempts;
use crate::storage::{
    Batch, GroupUpdate, LogEntry, MAX_READ_LIMIT, PendingCommit, RoomRole, RoomUpdate, StorageError,
};

use self::persist::{RoomMeta, decode_event, encode_event};

pub use self::follower::{FOLLOWER_GAP_WAIT, SHARED_GAP_POLL};
pub use self::hub::SEQUENCE_CONFLICT_RETRIES;

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

/// A room's state in the cache.
enum Slot {
    /// Not read from storage yet (or emptied after a failed write).
    Unloaded,
    /// Read: storage has no such room.
    Absent,
    /// This server is the room's hub.
    Hub(Box<HubRoom>, RoomMeta),
    /// This server follows the room.
    Follower(Box<FollowerRoom>),
}

type SlotRef = Arc<tokio::sync::Mutex<Slot>>;

/// The rooms in memory, each with the number of requests holding it (counted under the
/// map's lock, so "nobody holds it" is exact).
struct RoomCache {
    slots: Mutex<HashMap<RoomId, CacheEntry>>,
    /// Most rooms held; when a new room would exceed it, every idle room (no request holds
    /// it) is dropped and reloaded from storage on its next use (`Settings::room_cache_max`).
    max: usize,
}

struct CacheEntry {
    slot: SlotRef,
    holders: usize,
}

/// A request's hold on a room's slot; given back when dropped, which removes the slot if
/// it holds no room (an unknown room, or one emptied after a failed write) and nobody
/// else holds it.
struct SlotHandle<'a> {
    cache: &'a RoomCache,
    room: RoomId,
    slot: SlotRef,
}

impl SlotHandle<'_> {
    fn slot(&self) -> &tokio::sync::Mutex<Slot> {
        &self.slot
    }
}

impl Drop for SlotHandle<'_> {
    fn drop(&mut self) {
        let mut slots = self.cache.lock();
        let Some(entry) = slots.get_mut(&self.room) else {
            return;
        };
        if !Arc::ptr_eq(&entry.slot, &self.slot) {
            // Evicted meanwhile, and maybe held again since: not ours.
            return;
        }
        entry.holders = entry.holders.saturating_sub(1);
        // Nobody holds it, so nobody has it locked: `try_lock` only fails if a guard
        // outlives its handle, which the borrow checker forbids.
        let empty = entry.holders == 0
            && entry
                .slot
                .try_lock()
                .is_ok_and(|g| matches!(*g, Slot::Absent | Slot::Unloaded));
        if empty {
            slots.remove(&self.room);
        }
    }
}

impl RoomCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RoomId, CacheEntry>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hold `room`'s slot (an empty one if the room is not in memory).
    fn hold(&self, room: &RoomId) -> SlotHandle<'_> {
        let mut slots = self.lock();
        if !slots.contains_key(room) && slots.len() >= self.max {
            slots.retain(|_, e| e.holders > 0);
        }
        let entry = slots.entry(room.clone()).or_insert_with(|| CacheEntry {
            slot: Arc::new(tokio::sync::Mutex::new(Slot::Unloaded)),
            holders: 0,
        });
        entry.holders += 1;
        SlotHandle {
            cache: self,
            room: room.clone(),
            slot: Arc::clone(&entry.slot),
        }
    }

    /// Forget a room's in-memory state (after a failed write, so the next access reloads
    /// what is durable).
    fn evict(&self, room: &RoomId) {
        self.lock().remove(room);
    }
}

/// An accepted event whose write is submitted but maybe not yet durable.
struct Submitted {
    pending: PendingCommit,
    /// Whether the write queues fan-out (the outbox workers are woken once it is durable).
    has_outbox: bool,
    /// Whether it adds inbox items (long-polling readers are woken once it is durable).
    has_inbox: bool,
}

/// The room engine (see the module documentation).
pub struct Rooms {
    ctx: Arc<Context>,
    identity: HubIdentity,
    inbox: Arc<Inbox>,
    check_invite: Arc<CheckInvite>,
    cache: RoomCache,
    /// Notified whenever outbox entries become durable (the outbox workers wait for it).
    outbox: Arc<Notify>,
    /// Notified whenever a follower room applies an event (events that arrived before the
    /// one they follow wait for it).
    follower_progress: Notify,
    /// The request keys of accepted events whose write has not settled yet.
    in_flight: once::InFlight,
}

impl std::fmt::Debug for Rooms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rooms")
            .field("server", &self.ctx.server_name)
            .field("cached", &self.cached())
            .finish_non_exhaustive()
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
        protocol: Text::new(SECURITY_PROTOCOL_MLS10)?,
        cipher_suite: DEFAULT_CIPHER_SUITE,
    })
}

/// A failure the room engine answers peers with as "try again" (`ErrorCode::Internal`,
/// which the federation endpoint sends as `503`).
fn internal(e: impl std::fmt::Display) -> EventError {
    EventError::new(ErrorCode::Internal, e.to_string())
}

fn corrupt(e: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt(e.to_string())
}

/// The users with at least one client in the group.
fn group_users(group: &HubGroup) -> BTreeSet<UserId> {
    group.members().into_iter().map(|(_, c)| c.user()).collect()
}

impl Rooms {
    /// This provider's MLS identity as a hub.
    pub fn identity(&self) -> &HubIdentity {
        &self.identity
    }

    /// The room engine over the shared context; it wakes `outbox` when fan-out becomes
    /// durable and tells `inbox` when inbox items do.
    pub fn new(
        ctx: Arc<Context>,
        identity: HubIdentity,
        inbox: Arc<Inbox>,
        check_invite: Arc<CheckInvite>,
        outbox: Arc<Notify>,
    ) -> Rooms {
        Rooms {
            identity,
            inbox,
            check_invite,
            cache: RoomCache {
                slots: Mutex::new(HashMap::new()),
                max: ctx.settings.room_cache_max.max(1),
            },
            outbox,
            follower_progress: Notify::new(),
            in_flight: once::InFlight::default(),
            ctx,
        }
    }

    /// How many rooms the cache holds (loaded, or being looked at by a request).
    pub fn cached(&self) -> usize {
        self.cache.lock().len()
    }

    /// Load a room from storage into its slot (the slot is locked by the caller): from its
    /// latest snapshot, the create event and the events from the snapshot's window on
    /// (a number that does not grow with the room's history), or, for a room without a
    /// snapshot yet (younger than [`persist::SNAPSHOT_INTERVAL`] events), by replaying its
    /// log.
    ///
    /// Rule HUB-LOAD-1 (docs/protocol-coverage.md).
    async fn load(&self, room: &RoomId, slot: &mut Slot) -> Result<(), StorageError> {
        if !matches!(slot, Slot::Unloaded) {
            return Ok(());
        }
        // Writes submitted from now on build on what this reads (a shared storage stops
        // refusing the room's writes after a refused one).
        self.ctx.storage.reloading(room);
        let id = room.clone();
        let (record, snapshot) = self
            .ctx
            .blocking(move |s| Ok((s.room(&id)?, s.room_snapshot(&id)?)))
            .await?;
        let Some(record) = record else {
            *slot = Slot::Absent;
            return Ok(());
        };
        let snapshot = snapshot
            .as_deref()
            .map(Snapshot::decode)
            .transpose()
            .map_err(corrupt)?;
        let events = match &snapshot {
            Some(snapshot) => {
                let mut events = self.read_log(room, 0, Some(1)).await?;
                let window = snapshot.first_retained().max(1);
                events.extend(self.read_log(room, window, None).await?);
                events
            }
            None => self.read_log(room, 0, None).await?,
        };
        let group = record
            .group
            .as_deref()
            .map(HubGroup::from_bytes)
            .transpose()
            .map_err(corrupt)?;
        let server = self.ctx.server_name.clone();
        *slot = match record.role {
            RoomRole::Hub => {
                let hub = match &snapshot {
                    Some(snapshot) => {
                        Hub::from_snapshot(room, snapshot, &events).map_err(corrupt)?
                    }
                    None => Hub::restore(room, &events).map_err(corrupt)?,
                };
                let group = group.ok_or_else(|| corrupt("hub room without group state"))?;
                let meta = RoomMeta::decode(&record.state).map_err(corrupt)?;
                Slot::Hub(Box::new(HubRoom::from_parts(hub, group, server)), meta)
            }
            RoomRole::Follower => {
                let follower = match &snapshot {
                    Some(snapshot) => {
                        Follower::from_snapshot(room, snapshot, &events).map_err(corrupt)?
                    }
                    None => {
                        let (first, rest) = events
                            .split_first()
                            .ok_or_else(|| corrupt("follower room without events"))?;
                        let mut follower =
                            Follower::new(&first.sender, room, &first.fanout).map_err(corrupt)?;
                        for e in rest {
                            follower
                                .receive(&e.sender, &e.fanout, &e.changes)
                                .map_err(corrupt)?;
                        }
                        follower
                    }
                };
                Slot::Follower(Box::new(FollowerRoom::from_parts(
                    follower,
                    group,
                    room.server(),
                )))
            }
        };
        Ok(())
    }

    /// With a storage other instances of this provider write too ([`Storage::shared`]):
    /// read the room again if the stored log is ahead of the cached room (another instance
    /// accepted events of it), so that an event is checked against the room as it is.
    /// Writes this instance submitted and that are not durable yet put the cache ahead of
    /// the stored log, which is not "behind". A race with another instance between this
    /// look and the write is caught by the write's sequence check (the room is reloaded
    /// and the event checked again, `hub.rs`).
    ///
    /// Rule HUB-MULTI-1 (docs/protocol-coverage.md).
    ///
    /// [`Storage::shared`]: crate::storage::Storage::shared
    async fn refresh(&self, room: &RoomId, slot: &mut Slot) -> Result<(), StorageError> {
        if !self.ctx.storage.shared() {
            return Ok(());
        }
        let cached_next = match slot {
            Slot::Hub(h, _) => Some(h.hub().history().next_sequence()),
            Slot::Follower(f) => Some(f.follower().history().next_sequence()),
            Slot::Absent => None,
            Slot::Unloaded => return Ok(()),
        };
        let id = room.clone();
        let behind = match cached_next {
            Some(next) => {
                let stored = self.ctx.blocking(move |s| s.room_last_seq(&id)).await?;
                stored.is_some_and(|last| last >= next)
            }
            // Another instance may have created it since.
            None => self.ctx.blocking(move |s| s.room(&id)).await?.is_some(),
        };
        if behind {
            tracing::debug!(room = %room, ?cached_next, "another instance moved the room on; reloading it");
            *slot = Slot::Unloaded;
            self.load(room, slot).await?;
        }
        Ok(())
    }

    /// A room's stored events from sequence `from` on: up to `limit`, or to the end of the
    /// log.
    async fn read_log(
        &self,
        room: &RoomId,
        from: u64,
        limit: Option<usize>,
    ) -> Result<Vec<LoggedEvent>, StorageError> {
        let mut events = Vec::new();
        let mut from = from;
        loop {
            let id = room.clone();
            let want = limit.map_or(MAX_READ_LIMIT, |l| {
                l.saturating_sub(events.len()).min(MAX_READ_LIMIT)
            });
            if want == 0 {
                return Ok(events);
            }
            let page = self
                .ctx
                .blocking(move |s| s.log_range(&id, from, want))
                .await?;
            let done = page.len() < want;
            for entry in page {
                events.push(decode_event(&entry.entry).map_err(corrupt)?);
                from = entry.seq + 1;
            }
            if done {
                return Ok(events);
            }
        }
    }

    /// Wait until a submitted event is durable (outside the room's lock, so that the room's
    /// next event is checked and submitted meanwhile: its write is ordered after this one).
    /// If the write failed, the room's slot is emptied, so that the next event reloads it
    /// from storage instead of building on the lost one (the room's later writes, submitted
    /// on top of it, fail their sequence check).
    async fn settle(
        &self,
        room_id: &RoomId,
        handle: &SlotHandle<'_>,
        submitted: Submitted,
    ) -> Result<(), StorageError> {
        let started = std::time::Instant::now();
        match submitted.pending.durable().await {
            Ok(_) => {
                self.ctx.metrics.storage_commit(started.elapsed());
                if submitted.has_outbox {
                    self.outbox.notify_waiters();
                }
                if submitted.has_inbox {
                    self.inbox.items_added();
                }
                Ok(())
            }
            Err(e) => {
                tracing::error!(room = %room_id, error = %e, "an accepted event could not be stored; reloading the room");
                *handle.slot().lock().await = Slot::Unloaded;
                Err(e)
            }
        }
    }

    // ---- The client API's room operations ----

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
        )?;
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
        let name = &self.ctx.server_name;
        if room_id.server() != *name {
            return Err(ApiError::ForeignRoom {
                room: room_id.clone(),
                server: name.clone(),
            });
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
        )?;
        let handle = self.cache.hold(room_id);
        let mut guard = handle.slot().lock().await;
        self.load(room_id, &mut guard).await?;
        if !matches!(*guard, Slot::Absent) {
            return Err(ApiError::RoomExists(room_id.clone()));
        }
        let (hub_room, create_group) =
            HubRoom::create(hub, name.clone(), group, self.identity.external_sender())
                .map_err(|e| ApiError::Refused(e.to_event_error()))?;
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
        // Both batches are submitted before either is awaited (the second is chained on
        // the first: applied after it, refused if it is), so that they reach the disk in
        // one group commit when nothing else is waiting; the room is answered once both
        // are durable.
        let mut pending = Vec::with_capacity(2);
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
            pending.push(self.ctx.storage.submit_chained(batch));
        }
        for write in pending {
            if let Err(e) = write.durable().await {
                // What is durable of the room (maybe its create event) is read again.
                *guard = Slot::Unloaded;
                return Err(e.into());
            }
        }
        *guard = Slot::Hub(Box::new(hub_room), meta);
        tracing::info!(room = %room_id, sequence = create_group.fanout.sequence, %creator, "room created");
        Ok(create_group.fanout.sequence)
    }

    /// Submit an event to a room from one of this server's clients: to the hub (itself, or
    /// a peer). Returns whether it was accepted and the hub's response; an event the hub
    /// could not take now (its write failed, or the hub answered 503) is an error of class
    /// [`ErrorClass::Unavailable`](crate::error::ErrorClass): the client tries again.
    pub async fn submit(
        &self,
        client: &ClientId,
        room: &RoomId,
        event: Event,
    ) -> Result<(bool, EventResponse), ApiError> {
        if let Event::RoomUserUnsigned(change) = &event
            && change.target != client.user()
        {
            return Err(ApiError::UnsignedForOther);
        }
        let sender = Sender::User(client.user());
        let hub = room.server();
        if hub == self.ctx.server_name {
            return match self.hub_event(room, sender, event).await {
                Ok(r) => Ok((true, r)),
                Err(e) if e.code == ErrorCode::Internal => Err(ApiError::Refused(e)),
                Err(e) => Ok((false, EventResponse::Error(e))),
            };
        }
        let msg = MimiMessage::new(room.clone(), sender, MessageBody::Event(event));
        match self.ctx.peers.send(&hub, &msg, Attempts::Transport).await {
            Ok(out) => match out.response.map(|m| m.body) {
                Some(MessageBody::Response(r)) => Ok((!matches!(r, EventResponse::Error(_)), r)),
                None => Ok((true, EventResponse::Ok)),
                Some(_) => Err(ApiError::PeerAnswer {
                    server: hub,
                    what: "a non-response",
                }),
            },
            Err(TransportError::Refused { error: Some(e), .. }) => {
                Ok((false, EventResponse::Error(e)))
            }
            Err(TransportError::ServerError {
                status: 503,
                error: Some(e),
                ..
            }) if e.code == ErrorCode::Internal => Err(ApiError::Refused(e)),
            Err(e) => Err(ApiError::peer(&hub, e)),
        }
    }

    /// This server's copy of a room's state and its latest sequence number.
    pub async fn room_state(
        &self,
        client: &ClientId,
        room_id: &RoomId,
    ) -> Result<(RoomState, u64), ApiError> {
        let handle = self.cache.hold(room_id);
        let mut guard = handle.slot().lock().await;
        self.load(room_id, &mut guard).await?;
        self.refresh(room_id, &mut guard).await?;
        let (room, next) = match &*guard {
            Slot::Hub(h, _) => (h.hub().room(), h.hub().history().next_sequence()),
            Slot::Follower(f) => (f.follower().room(), f.follower().history().next_sequence()),
            _ => return Err(ApiError::UnknownRoom(room_id.clone())),
        };
        let user = client.user();
        let visible = may_see_state(room, &user);
        if !visible {
            return Err(ApiError::NotAMember {
                user,
                room: room_id.clone(),
            });
        }
        Ok((room.to_room_state(), next.saturating_sub(1)))
    }

    /// Propose the removal of departed users' clients as the hub (the alternative leave
    /// flow); returns whether anything was proposed.
    pub async fn propose_pending_removals(&self, room_id: &RoomId) -> Result<bool, ApiError> {
        let handle = self.cache.hold(room_id);
        let mut guard = handle.slot().lock().await;
        self.load(room_id, &mut guard).await?;
        let Slot::Hub(hub_room, meta) = &mut *guard else {
            return Err(ApiError::NotHub {
                room: room_id.clone(),
                server: self.ctx.server_name.clone(),
            });
        };
        // The hub is always the first external sender (DS-CR-1).
        let accepted = hub_room
            .propose_pending_removals(0, self.identity.signer())
            .map_err(|e| ApiError::Refused(e.to_event_error()))?;
        let Some(accepted) = accepted else {
            return Ok(false);
        };
        let in_group_before = group_users(hub_room.group());
        let written = self
            .persist_hub_event(
                room_id,
                hub_room,
                meta,
                &accepted,
                true,
                in_group_before,
                None,
            )
            .await;
        let submitted = match written {
            Ok(submitted) => submitted,
            Err(e) => {
                *guard = Slot::Unloaded;
                return Err(ApiError::Refused(e));
            }
        };
        drop(guard);
        self.settle(room_id, &handle, submitted).await?;
        Ok(true)
    }
}

/// Rule HUB-API-5 (docs/protocol-coverage.md): who may read a room's state (and ask for
/// `hub-removals`): a user on the participant list who is not banned, or anyone but a
/// banned user in a public room. A banned user is refused as a kicked one is (403), as
/// `ds.fetch_group_info` refuses them (DS-GI-2).
fn may_see_state(room: &mimi_signaling::Room, user: &mimi_codec::UserId) -> bool {
    match room.participant(user) {
        Some(p) => p.state != mimi_codec::ParticipationState::Ban,
        None => room.policy().join_rule() == JoinRule::Public,
    }
}
