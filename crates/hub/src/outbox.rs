//! Delivery of the durable outbox: one worker per destination server sends that server's
//! entries with `POST /send` and removes an entry only once the peer answered it. Entries
//! survive restarts because they are in storage until acknowledged.
//!
//! ## Order and concurrency
//! A room's entries go to a destination in the order they were committed (its history
//! order), up to [`ROOM_WINDOW`] at a time: they may arrive out of order on their separate
//! connections, and the follower holds an early one until the one before it is applied
//! (`rooms`, `FOLLOWER_GAP_WAIT`), so it applies them in order. Different rooms are
//! independent, so the worker keeps up to
//! [`ROOMS_IN_FLIGHT`] rooms' *chains* (a room's queued entries, in order) going at once and
//! starts the next room's chain as soon as one ends. It reads storage only for entries it
//! has not seen ([`Storage::outbox_after`]), holding at most [`OUTBOX_BATCH`] unsent
//! entries in memory, and it removes answered entries in the background, many per storage
//! write (which the storage's group commit shares with the events being accepted), while
//! it goes on sending. A destination that cannot be reached stops the chain that met it;
//! its entries go back to the front of their room's queue and no new chain starts until a
//! capped exponential backoff with full jitter has passed. An entry re-sent after a crash
//! between its answer and its removal is a duplicate the peer recognises by its sequence
//! number.
//!
//! ## Several instances
//! With a storage other instances of the provider write too ([`Storage::shared`]), each
//! destination is delivered by one instance at a time: its worker takes a lease on the
//! destination ([`Storage::outbox_lease`], [`OUTBOX_LEASE`]) and renews it while it
//! delivers; a worker without the lease sends nothing and tries again later. An instance
//! that dies leaves the lease to expire and another instance's worker takes it over and
//! reads the destination's entries from the first: those the dead one had sent but not
//! yet removed are sent again, and the peer recognises them by their sequence number
//! (the follower stores a room's event once). A worker stopping gives its leases up.
//!
//! ## One retry policy
//! This loop is the only one that retries a delivery: each send is attempted once by the
//! transport ([`Attempts::Once`]), and the backoff between a failed chain and the next
//! attempt is the `outbox_retry` setting's `RetryPolicy::delay` (`Settings`, from
//! `outbox_retry_base_ms`/`outbox_retry_cap_ms` in `provider.toml`), drawn by the settings'
//! jitter. Its delays are measured on tokio's clock, so paused time drives them in tests.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mimi_codec::message::fanout_sequence;
use mimi_codec::{RoomId, ServerName};
use mimi_transport::TransportError;
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};

use crate::peers::Attempts;
use crate::provider::Provider;
use crate::storage::{OutboxEntry, Storage};

/// Unsent entries one worker holds in memory, at most (it reads more as they are sent).
pub const OUTBOX_BATCH: usize = 512;
/// Rooms whose entries one worker sends to its destination at the same time.
pub const ROOMS_IN_FLIGHT: usize = 32;
/// A room's entries one worker has in flight to its destination at the same time (sent in
/// order; the follower applies them in order, holding one that arrives early).
pub const ROOM_WINDOW: usize = 4;
/// How often an idle worker looks at storage even without a notification.
pub const IDLE_POLL: Duration = Duration::from_secs(5);
/// How long an instance's lease on delivering a destination lasts without renewal (with
/// several instances on one storage): when an instance dies, another takes over its
/// destinations after at most this long.
///
/// Rule HUB-MULTI-2 (docs/protocol-coverage.md).
pub const OUTBOX_LEASE: Duration = Duration::from_secs(10);
/// How often a worker renews its lease (or, without it, tries to take it).
pub const OUTBOX_LEASE_RENEW: Duration = Duration::from_secs(3);
/// A destination unreachable for longer than this is logged at `warn` (once per outage).
///
/// Rule HUB-LOG-1 (docs/protocol-coverage.md).
pub const PEER_DOWN_WARN_AFTER: Duration = Duration::from_secs(300);

/// "Retry this destination now" signals from the admin interface: the destination's
/// worker drops its backoff and sends at once.
#[derive(Debug, Default)]
pub struct RetryNow {
    signals: std::sync::Mutex<HashMap<ServerName, Arc<Notify>>>,
}

impl RetryNow {
    /// The signal of `dest` (created on first use).
    pub fn signal(&self, dest: &ServerName) -> Arc<Notify> {
        let mut signals = self.signals.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(signals.entry(dest.clone()).or_default())
    }

    /// Ask the worker of `dest` to retry now (kept until it looks, if it is busy).
    pub fn retry(&self, dest: &ServerName) {
        self.signal(dest).notify_one();
    }
}

/// Runs the outbox workers of a provider until `shutdown` resolves.
pub async fn run(provider: Arc<Provider>, shutdown: impl std::future::Future<Output = ()>) {
    let notify = provider.outbox_notify();
    let mut workers: HashMap<ServerName, JoinHandle<()>> = HashMap::new();
    tokio::pin!(shutdown);
    loop {
        let notified = notify.notified();
        let storage = Arc::clone(provider.storage());
        let destinations = tokio::task::spawn_blocking(move || storage.outbox_destinations()).await;
        match destinations {
            Ok(Ok(dests)) => {
                for dest in dests {
                    let alive = workers.get(&dest).is_some_and(|h| !h.is_finished());
                    if !alive {
                        let p = Arc::clone(&provider);
                        let n = Arc::clone(&notify);
                        let d = dest.clone();
                        workers.insert(dest, tokio::spawn(async move { deliver(p, d, n).await }));
                    }
                }
            }
            Ok(Err(e)) => tracing::error!(error = %e, "outbox: cannot list destinations"),
            Err(e) => tracing::error!(error = %e, "outbox: storage task failed"),
        }
        tokio::select! {
            _ = &mut shutdown => break,
            _ = notified => {}
            _ = tokio::time::sleep(IDLE_POLL) => {}
        }
    }
    for (dest, handle) in workers {
        handle.abort();
        // Another instance takes the destination over at once.
        if provider.storage().shared() {
            let storage = Arc::clone(provider.storage());
            let released = tokio::task::spawn_blocking(move || storage.outbox_release(&dest)).await;
            if let Ok(Err(e)) = released {
                tracing::warn!(error = %e, "outbox: cannot give a lease up");
            }
        }
    }
}

/// Take or renew the lease on delivering `dest` (always held with a storage only this
/// process writes).
async fn lease(storage: &Arc<dyn Storage>, dest: &ServerName) -> bool {
    if !storage.shared() {
        return true;
    }
    let storage = Arc::clone(storage);
    let d = dest.clone();
    match tokio::task::spawn_blocking(move || storage.outbox_lease(&d, OUTBOX_LEASE)).await {
        Ok(Ok(held)) => held,
        Ok(Err(e)) => {
            tracing::warn!(%dest, error = %e, "outbox: cannot take or renew the lease");
            false
        }
        Err(e) => {
            tracing::error!(%dest, error = %e, "outbox: storage task failed");
            false
        }
    }
}

async fn read_after(
    storage: &Arc<dyn Storage>,
    dest: &ServerName,
    after: u64,
    limit: usize,
) -> Option<Vec<OutboxEntry>> {
    let d = dest.clone();
    match crate::storage::read(storage, move |s| s.outbox_after(&d, after, limit)).await {
        Ok(entries) => Some(entries),
        Err(e) => {
            tracing::error!(%dest, error = %e, "outbox: cannot read");
            None
        }
    }
}

/// The entries a worker has read and not sent yet, per room, and the rooms ready to send.
#[derive(Default)]
struct Queues {
    /// Unsent entries per room, in commit order.
    rooms: HashMap<RoomId, VecDeque<OutboxEntry>>,
    /// Rooms with unsent entries and no chain running, oldest first.
    ready: VecDeque<RoomId>,
    /// Rooms with a chain running.
    busy: HashSet<RoomId>,
    /// Unsent entries held, in all rooms.
    held: usize,
    /// The greatest id read from storage.
    read_up_to: u64,
}

impl Queues {
    fn push(&mut self, entry: OutboxEntry) {
        self.read_up_to = self.read_up_to.max(entry.id);
        self.held += 1;
        let room = entry.room.clone();
        let queue = self.rooms.entry(room.clone()).or_default();
        let was_empty = queue.is_empty();
        queue.push_back(entry);
        if was_empty && !self.busy.contains(&room) {
            self.ready.push_back(room);
        }
    }

    /// The next room's whole queue, marking the room busy.
    fn next_chain(&mut self) -> Option<(RoomId, Vec<OutboxEntry>)> {
        let room = self.ready.pop_front()?;
        let chain: Vec<OutboxEntry> = self.rooms.remove(&room).unwrap_or_default().into();
        self.held -= chain.len();
        self.busy.insert(room.clone());
        Some((room, chain))
    }

    /// A chain ended; `unsent` (in order) go back to the front of the room's queue.
    fn chain_done(&mut self, room: RoomId, unsent: Vec<OutboxEntry>) {
        self.busy.remove(&room);
        self.held += unsent.len();
        let queue = self.rooms.entry(room.clone()).or_default();
        for entry in unsent.into_iter().rev() {
            queue.push_front(entry);
        }
        if queue.is_empty() {
            self.rooms.remove(&room);
        } else {
            self.ready.push_back(room);
        }
    }
}

/// What a finished chain reports.
struct ChainDone {
    room: RoomId,
    answered: Vec<u64>,
    unsent: Vec<OutboxEntry>,
}

/// Deliver everything queued for `dest`, forever (until aborted).
async fn deliver(provider: Arc<Provider>, dest: ServerName, notify: Arc<Notify>) {
    let storage = Arc::clone(provider.storage());
    let mut queues = Queues::default();
    let mut chains: JoinSet<ChainDone> = JoinSet::new();
    // The room of each running chain, to free the room if its task fails.
    let mut chain_rooms: HashMap<tokio::task::Id, RoomId> = HashMap::new();
    let mut to_remove: Vec<u64> = Vec::new();
    let mut removing: Option<JoinHandle<(Vec<u64>, bool)>> = None;
    let mut failures = 0u32;
    let mut paused_until: Option<tokio::time::Instant> = None;
    let mut look = true;
    let retry_now = provider.retry_now().signal(&dest);
    // Since when the destination has been unreachable, and whether that was logged.
    let mut down_since: Option<(tokio::time::Instant, bool)> = None;
    // The lease on the destination (several instances): whether held, and when to renew
    // it (or try again to take it).
    let mut leased = false;
    let mut renew_at = tokio::time::Instant::now();
    // When an idle worker reads storage again although nobody told it of new entries. A
    // deadline kept across the loop's turns: a timer made afresh each turn would never
    // fire while another one (the lease's renewal, every 3 s) ends the turns sooner.
    let mut poll_at = tokio::time::Instant::now() + IDLE_POLL;
    // The wake-up for new entries: one that lives across the loop's turns, replaced when it
    // fired and before each read (which answers every wake-up before it). One made afresh
    // at each turn missed a notification sent between two turns (the storage's listener
    // thread sends them at any moment), or one that came with another branch of the
    // select, and nothing looked again until the idle poll.
    let notified = notify.notified();
    tokio::pin!(notified);
    loop {
        if tokio::time::Instant::now() >= renew_at {
            let held = lease(&storage, &dest).await;
            if leased && !held {
                tracing::warn!(%dest, "outbox: another instance took the destination over");
            }
            if held && !leased {
                // What another instance delivered meanwhile is gone from storage: read
                // the destination's entries again from the first.
                look = true;
            }
            leased = held;
            renew_at = tokio::time::Instant::now() + OUTBOX_LEASE_RENEW;
        }
        if !leased && chains.is_empty() {
            queues = Queues::default();
        }
        let paused = paused_until.is_some_and(|t| tokio::time::Instant::now() < t);
        if leased && !paused {
            paused_until = None;
            if look && queues.held < OUTBOX_BATCH {
                look = false;
                // This read answers every wake-up so far: arm for the ones after it.
                notified.set(notify.notified());
                let limit = OUTBOX_BATCH - queues.held;
                if let Some(entries) = read_after(&storage, &dest, queues.read_up_to, limit).await {
                    // A full read may have left more behind: read again once there is room.
                    look = entries.len() == limit;
                    for entry in entries {
                        queues.push(entry);
                    }
                }
                poll_at = tokio::time::Instant::now() + IDLE_POLL;
            }
            while chains.len() < ROOMS_IN_FLIGHT {
                let Some((room, chain)) = queues.next_chain() else {
                    break;
                };
                let p = Arc::clone(&provider);
                let d = dest.clone();
                let r = room.clone();
                let handle = chains.spawn(async move { deliver_chain(&p, &d, r, chain).await });
                chain_rooms.insert(handle.id(), room);
            }
        }
        if removing.is_none() && !to_remove.is_empty() {
            let ids = std::mem::take(&mut to_remove);
            let storage = Arc::clone(&storage);
            let d = dest.clone();
            removing = Some(tokio::task::spawn_blocking(move || {
                let result = storage.outbox_ack(&d, &ids);
                if let Err(e) = &result {
                    tracing::error!(dest = %d, count = ids.len(), error = %e, "outbox: cannot remove delivered entries");
                }
                (ids, result.is_ok())
            }));
        }
        let idle = chains.is_empty() && removing.is_none();
        tokio::select! {
            done = chains.join_next_with_id(), if !chains.is_empty() => {
                look = true;
                match done {
                    Some(Ok((id, done))) => {
                        chain_rooms.remove(&id);
                        to_remove.extend(done.answered);
                        if done.unsent.is_empty() {
                            failures = 0;
                            if down_since.take().is_some_and(|(_, warned)| warned) {
                                tracing::warn!(%dest, "destination reachable again");
                            }
                        } else {
                            let settings = &provider.context().settings;
                            let delay = settings.outbox_retry.delay(failures, settings.jitter.as_ref());
                            // The chain's unsent entries are back in the queues only below.
                            let backlog = queues.held + done.unsent.len();
                            let now = tokio::time::Instant::now();
                            let (since, warned) = down_since.get_or_insert((now, false));
                            if !*warned && now.duration_since(*since) >= PEER_DOWN_WARN_AFTER {
                                *warned = true;
                                tracing::warn!(%dest, down_for = ?now.duration_since(*since), backlog_at_least = backlog, "destination unreachable for long");
                            }
                            tracing::info!(%dest, ?delay, backlog_at_least = backlog, "destination unreachable; retrying");
                            paused_until = Some(tokio::time::Instant::now() + delay);
                            failures = failures.saturating_add(1);
                        }
                        queues.chain_done(done.room, done.unsent);
                    }
                    Some(Err(e)) => {
                        // The chain's entries are still in storage; they are read again
                        // after a restart. Free the room so that its later entries go on.
                        tracing::error!(%dest, error = %e, "outbox: delivery task failed");
                        if let Some(room) = chain_rooms.remove(&e.id()) {
                            queues.chain_done(room, Vec::new());
                        }
                    }
                    None => {}
                }
            }
            removed = async {
                match removing.as_mut() {
                    Some(handle) => handle.await,
                    None => std::future::pending().await,
                }
            }, if removing.is_some() => {
                removing = None;
                match removed {
                    // Entries that could not be removed are tried again with the next ones.
                    Ok((ids, false)) => to_remove.extend(ids),
                    Ok((_, true)) => {}
                    Err(e) => tracing::error!(%dest, error = %e, "outbox: storage task failed"),
                }
            }
            _ = &mut notified => {
                notified.set(notify.notified());
                look = true;
            }
            _ = retry_now.notified() => {
                paused_until = None;
                failures = 0;
                look = true;
            }
            _ = async {
                match paused_until {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            }, if paused => {}
            _ = tokio::time::sleep_until(poll_at), if idle => {
                look = true;
                poll_at = tokio::time::Instant::now() + IDLE_POLL;
            }
            _ = tokio::time::sleep_until(renew_at), if storage.shared() => {}
        }
    }
}

/// Send one room's entries in order, up to [`ROOM_WINDOW`] at a time (the follower puts
/// an event that arrives early in its place), until one cannot be delivered; report the
/// answered ids and the entries left unsent, in order.
async fn deliver_chain(
    provider: &Arc<Provider>,
    dest: &ServerName,
    room: RoomId,
    chain: Vec<OutboxEntry>,
) -> ChainDone {
    let mut answered = Vec::with_capacity(chain.len());
    let mut unsent = Vec::new();
    // Each entry in flight, its stored bytes (moved out of it into a shared buffer that the
    // send holds too: not copied), and its send.
    let mut window: VecDeque<(OutboxEntry, Bytes, JoinHandle<bool>)> = VecDeque::new();
    let mut entries = chain.into_iter();
    let mut failed = false;
    loop {
        while !failed && window.len() < ROOM_WINDOW {
            let Some(mut entry) = entries.next() else {
                break;
            };
            let body = Bytes::from(std::mem::take(&mut entry.message));
            let p = Arc::clone(provider);
            let d = dest.clone();
            let sent = Sent {
                id: entry.id,
                room: entry.room.clone(),
                seq: entry.seq,
                body: body.clone(),
            };
            window.push_back((
                entry,
                body,
                tokio::spawn(async move { deliver_one(&p, &d, sent).await }),
            ));
        }
        let Some((mut entry, body, sending)) = window.pop_front() else {
            break;
        };
        if sending.await.unwrap_or(false) {
            answered.push(entry.id);
        } else {
            // Stop sending; what is in flight still finishes, and whatever was not
            // answered goes back, in order, with its bytes (the send has let go of them,
            // so they are taken back without a copy).
            failed = true;
            entry.message = Vec::from(body);
            unsent.push(entry);
        }
    }
    unsent.extend(entries);
    ChainDone {
        room,
        answered,
        unsent,
    }
}

/// What one send of an outbox entry needs: the entry's stored bytes and what its log lines
/// say.
struct Sent {
    id: u64,
    room: RoomId,
    seq: Option<u64>,
    body: Bytes,
}

/// Send one entry's stored bytes as they are (never decoded here: a stored entry that is
/// not a message is the peer's `400`, an answer like any refusal). `true` once the peer
/// answered it, accepted or refused (a refusal is an answer: retrying it would block every
/// later entry of its room); `false` if the peer could not be reached, to be retried.
///
/// Rule HUB-OUT-5 (docs/protocol-coverage.md).
async fn deliver_one(provider: &Provider, dest: &ServerName, sent: Sent) -> bool {
    let Sent {
        id,
        room,
        seq,
        body,
    } = sent;
    // The event's own position in the room's history, read from the header (a batch may
    // queue a destination's backlog, so the entry's batch sequence is not always the
    // event's); the batch's for a message that does not read as a fanned-out event.
    let seq = fanout_sequence(&body).or(seq);
    match provider
        .context()
        .peers
        .send_encoded(dest, body, Attempts::Once)
        .await
    {
        Ok(_) => {
            provider.context().metrics.delivered(dest);
            tracing::debug!(%dest, %room, id, ?seq, "delivered");
            true
        }
        Err(
            e @ (TransportError::Refused { .. }
            | TransportError::TooLarge
            | TransportError::Decode(_)
            | TransportError::InvalidResponse(_)),
        ) => {
            provider.context().metrics.delivered(dest);
            tracing::warn!(%dest, %room, id, ?seq, error = %e, "outbox entry refused (by the peer, or too long to send); dropping it");
            true
        }
        Err(e) => {
            provider.context().metrics.delivery_failed(dest);
            tracing::info!(%dest, %room, id, ?seq, error = %e, "delivery failed");
            false
        }
    }
}
