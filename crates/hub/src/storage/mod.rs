//! # Storage: everything a provider keeps across restarts
//!
//! One trait, [`Storage`], with three implementations run by one shared test suite:
//! [`RedbStorage`] (a redb file on disk, what a provider runs by default),
//! [`PostgresStorage`] (a PostgreSQL database, see `docs/operations.md`) and
//! [`MemoryStorage`] (the same semantics in a mutex-guarded map, for tests of the layers
//! above). [`FaultyStorage`] wraps any of them and fails chosen writes, for tests of what a
//! failed write leaves behind.
//!
//! What is stored: rooms (their role on this server, the signaling room state and the
//! delivery service's group state), each room's event log by sequence number, the fan-out
//! outbox to other servers, the inboxes of this provider's own clients, key packages, and
//! the provider's users, their clients and the directory that identifier discovery reads.
//!
//! ## Boundaries
//! Storage knows the identifier types of `mimi-codec` (they are its keys) and nothing of
//! signaling, MLS or HTTP: room state, group state, log entries and queued messages are
//! opaque bytes encoded by the layer that owns them. There is deliberately no generic
//! "put bytes at a key" operation; every write is one of the operations below.
//!
//! ## Invariants (held by the shared suite in `tests/storage_suite.rs`)
//! - [`Storage::commit`] is the only write of room data and is atomic and durable: when it
//!   returns `Ok`, the log entry, room and group state, outbox and inbox entries are all on
//!   disk; when it returns `Err`, nothing of the batch was written.
//! - A room's log sequence numbers have no gaps: each entry is the previous one plus one.
//!   A hub's log starts at 0; a follower's copy starts at the first event it received.
//! - Outbox entry ids and inbox cursors come from counters that only grow, across restarts
//!   and trimming, so the order of ids is the order of commits.
//! - Directory indexes change in the same transaction as the user record they index.
//!
//! ## Concurrency
//! The trait is synchronous (redb is); async callers use `tokio::task::spawn_blocking`,
//! except for [`Storage::submit`], which only queues a batch and returns a
//! [`PendingCommit`] to await. Writes are serialised (redb has one writer at a time, and
//! [`RedbStorage`] commits the writes waiting for it together, one `fdatasync` per group;
//! [`PostgresStorage`] does the same on one connection and locks the room's row;
//! [`MemoryStorage`] has a mutex), so [`Batch::expect_last_seq`] is enough for optimistic
//! concurrency between two writers. Several processes on one PostgreSQL database are
//! covered by the methods at the end of the trait ([`Storage::shared`]).

mod faulty;
mod journal;
mod memory;
pub mod postgres;
mod redb;

use std::collections::BTreeSet;
use std::sync::Arc;

use mimi_codec::{ClientId, RoomId, ServerName, UserId};

pub use self::faulty::FaultyStorage;
pub use self::memory::MemoryStorage;
pub use self::postgres::PostgresStorage;
pub use self::redb::{CHECKPOINT_INTERVAL, Checkpoints, RedbStorage};

/// The most entries one read ([`Storage::log_range`], [`Storage::outbox_peek`],
/// [`Storage::inbox_read`]) returns, whatever limit the caller asks for: one read never
/// loads an unbounded log into memory.
pub const MAX_READ_LIMIT: usize = 1024;

/// The first outbox entry id and the first inbox cursor. `0` is never assigned, so
/// `inbox_read(client, 0, n)` reads an inbox from its start.
pub const FIRST_ID: u64 = 1;

/// What can go wrong in storage. Backend errors carry the backend's message as text, so
/// that no backend type appears in this API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// The backend failed (I/O, a file that is not a database, a lock held elsewhere).
    #[error("storage backend failed: {0}")]
    Backend(String),
    /// The backend cannot read or write now (an I/O error such as a full disk); the write
    /// did not happen. Transient: the storage recovers by itself (redb reopens its file)
    /// and the caller may try again later.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Stored data does not decode or breaks an invariant of this module.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The write conflicts with what is stored; nothing was written.
    #[error("conflict: {0}")]
    Conflict(Conflict),
    /// A log entry's sequence number is not the next one of its room; nothing was written.
    #[error("log sequence number {got} is out of order, expected {expected}")]
    OutOfOrder {
        /// The sequence number the room's log needs next.
        expected: u64,
        /// The sequence number of the batch.
        got: u64,
    },
    /// A room's sequence numbers are used up (its last entry has sequence number `u64::MAX`).
    #[error("the room's log sequence numbers are exhausted")]
    SequenceExhausted,
    /// A batch that cannot be written as it is (an entry pointing into a log entry the
    /// batch does not have, or past its end); nothing was written.
    #[error("invalid batch: {0}")]
    Invalid(String),
    /// A batch for a room that is not stored and that the batch does not create.
    #[error("unknown room {0}")]
    UnknownRoom(RoomId),
    /// A client registered for a user that is not stored.
    #[error("unknown user {0}")]
    UnknownUser(UserId),
    /// Key packages published for a client that is not registered.
    #[error("unknown client {0}")]
    UnknownClient(ClientId),
}

/// Why a write conflicts with stored data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    /// [`Batch::expect_last_seq`] did not match the room's last sequence number (another
    /// writer committed first).
    #[error("the room's last sequence number is {actual:?}, the batch expected {expected:?}")]
    LastSeq {
        /// What the batch expected.
        expected: Option<u64>,
        /// What is stored.
        actual: Option<u64>,
    },
    /// A unique directory value (handle, email, phone) belongs to another user.
    #[error("that {field:?} belongs to another user")]
    DirectoryTaken {
        /// Which field.
        field: DirectoryField,
    },
    /// A key package reference is already stored for another client.
    #[error("that key package reference belongs to another client")]
    KeyPackageRef,
    /// The batch was chained ([`Storage::submit_chained`]) after an earlier chained batch
    /// of the same room (from this process) was refused: it builds on a write that did
    /// not happen, so it is refused too, until the room is reloaded
    /// ([`Storage::reloading`]). Only a storage shared with other processes
    /// ([`Storage::shared`]) refuses this way.
    #[error("an earlier write of the room was refused; the room must be reloaded")]
    Superseded,
}

impl StorageError {
    /// Whether the write was refused because another writer moved the room on (or
    /// because it built on such a refused write): nothing was written, and the event may
    /// be checked again against the reloaded room.
    pub fn is_sequence_conflict(&self) -> bool {
        matches!(
            self,
            StorageError::Conflict(Conflict::LastSeq { .. } | Conflict::Superseded)
                | StorageError::OutOfOrder { .. }
        )
    }
}

/// What another process sharing the storage wrote ([`Storage::watch`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Change {
    /// Outbox entries became durable.
    Outbox,
    /// Inbox entries became durable.
    Inbox,
    /// A client's token was written (registered or revoked): cached token hashes may be
    /// stale.
    Clients,
}

/// What [`Storage::watch`] calls, from a thread of the storage's own.
pub type ChangeHook = Box<dyn Fn(Change) + Send + Sync>;

/// Which role this server plays for a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoomRole {
    /// This server is the room's hub: it sequences the log and holds the group state.
    Hub,
    /// This server follows the hub and keeps the room for its own users' clients.
    Follower,
}

impl RoomRole {
    /// The byte a role is stored as.
    pub(crate) fn to_byte(self) -> u8 {
        match self {
            RoomRole::Hub => 0,
            RoomRole::Follower => 1,
        }
    }

    /// The role a stored byte names.
    pub(crate) fn from_byte(b: u8) -> Result<Self, StorageError> {
        match b {
            0 => Ok(RoomRole::Hub),
            1 => Ok(RoomRole::Follower),
            other => Err(StorageError::Corrupt(format!("room role byte {other}"))),
        }
    }
}

/// The identity of a request that logs an event, by which a resend of it is recognised
/// (`rooms::request_key`: a hash of the room, the sender and the event's bytes).
pub type RequestKey = [u8; 32];

/// How many of a room's latest log entries keep their [`RequestKey`]: a resend of an event
/// older than that is not recognised (`docs/spec-decisions.md`, "Exactly once").
pub const REQUEST_WINDOW: u64 = 4096;

/// A stored room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomRecord {
    /// This server's role for the room.
    pub role: RoomRole,
    /// The signaling room state, encoded by the signaling layer.
    pub state: Vec<u8>,
    /// The delivery service's group state (hub only), encoded by the delivery service.
    pub group: Option<Vec<u8>>,
    /// The sequence number of the room's last log entry; `None` before the first one.
    pub last_seq: Option<u64>,
}

/// What a batch does to the group state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupUpdate {
    /// Leave it as stored.
    Keep,
    /// Store this group state.
    Replace(Vec<u8>),
    /// Remove it (a hub handing the room over, for example).
    Remove,
}

/// The new room record a batch writes (creating the room if it is not stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomUpdate {
    /// This server's role for the room from now on.
    pub role: RoomRole,
    /// The new signaling room state.
    pub state: Vec<u8>,
    /// What happens to the group state.
    pub group: GroupUpdate,
}

/// One log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Its sequence number in the room's log.
    pub seq: u64,
    /// The event, encoded by the caller.
    pub entry: Vec<u8>,
}

/// What one outbox or inbox entry of a [`Batch`] delivers: its own bytes, or a reference
/// into the batch's log entry, so that an event fanned out to several servers and clients
/// is stored once (issue 13: "store each event once").
///
/// A reader gets the same bytes either way ([`OutboxEntry::message`],
/// [`Storage::inbox_read`]): a reference is resolved from the room's log, which is never
/// trimmed, when the entry is read.
///
/// Rule HUB-STORE-10 (docs/protocol-coverage.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// These bytes.
    Bytes(Vec<u8>),
    /// The first `len` bytes of the batch's own log entry ([`Batch::log`]): the room
    /// engine's log entry begins with the message as it is fanned out. A batch without a
    /// log entry, or whose entry is shorter, is refused ([`StorageError::Invalid`]).
    Logged {
        /// How many bytes of the log entry.
        len: u32,
    },
}

impl From<Vec<u8>> for Payload {
    fn from(bytes: Vec<u8>) -> Self {
        Payload::Bytes(bytes)
    }
}

impl Payload {
    /// The bytes this payload delivers, given the log entry it may point into.
    pub(crate) fn resolve<'a>(
        &'a self,
        log_entry: Option<&'a [u8]>,
    ) -> Result<&'a [u8], StorageError> {
        match self {
            Payload::Bytes(b) => Ok(b),
            Payload::Logged { len } => resolve_logged(log_entry, *len),
        }
    }
}

/// The first `len` bytes of a log entry an entry points into; a missing or shorter entry
/// is corruption when read, a refused batch when written.
pub(crate) fn resolve_logged(log_entry: Option<&[u8]>, len: u32) -> Result<&[u8], StorageError> {
    let len = usize::try_from(len).map_err(|_| StorageError::Corrupt("payload length".into()))?;
    log_entry.and_then(|e| e.get(..len)).ok_or_else(|| {
        StorageError::Corrupt(format!(
            "a queued entry points past its log entry ({len} bytes)"
        ))
    })
}

/// Everything accepting (or, on a follower, receiving) one event writes, committed in one
/// transaction by [`Storage::commit`].
///
/// Checks, in this order, before anything is written:
/// 1. the room must be stored or created by `room_update` ([`StorageError::UnknownRoom`]);
/// 2. with `dedup`, a log entry whose `seq` is at most the room's last sequence number
///    makes the whole batch a no-op ([`CommitOutcome::Duplicate`]);
/// 3. `expect_last_seq` ([`Conflict::LastSeq`]);
/// 4. the log entry's `seq` must be the room's last plus one; a room without entries
///    takes `0` if it is (or becomes) a hub room, and any number if it is a follower's copy,
///    which starts where this server started following ([`StorageError::OutOfOrder`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The room.
    pub room: RoomId,
    /// The new room record, if the room changes (or is created).
    pub room_update: Option<RoomUpdate>,
    /// The entry appended to the room's log.
    pub log: Option<LogEntry>,
    /// Messages for other servers, in order; each becomes one outbox entry carrying the
    /// room and the sequence number of `log`.
    pub outbox: Vec<(ServerName, Payload)>,
    /// Deliveries to this provider's own clients, in order; each becomes one inbox entry.
    pub inbox: Vec<(ClientId, Payload)>,
    /// Optimistic concurrency: `Some(x)` fails with [`Conflict::LastSeq`] unless the
    /// room's last sequence number is `x` (`Some(None)`: the room has no log entry or is not
    /// stored).
    pub expect_last_seq: Option<Option<u64>>,
    /// A follower receiving from the hub: an entry it already has is a duplicate, not an
    /// error.
    pub dedup: bool,
    /// The identity of the request whose event `log` holds: recorded with the entry's
    /// sequence number, in the same transaction ([`Storage::request_seq`]), and forgotten
    /// once the room's log is [`REQUEST_WINDOW`] entries further on. Ignored without `log`.
    pub request: Option<RequestKey>,
    /// A new snapshot of the room's signaling state, replacing the stored one
    /// ([`Storage::room_snapshot`]); `None` leaves it as stored. Written every so many
    /// events, not with each, so that loading a room reads a bounded number of events.
    pub snapshot: Option<Vec<u8>>,
}

impl Batch {
    /// An empty batch for `room`: no changes, no checks.
    pub fn new(room: RoomId) -> Self {
        Batch {
            room,
            room_update: None,
            log: None,
            outbox: Vec::new(),
            inbox: Vec::new(),
            expect_last_seq: None,
            dedup: false,
            request: None,
            snapshot: None,
        }
    }
}

/// A batch handed to [`Storage::submit`]: resolves once it is durable or refused.
#[derive(Debug)]
pub struct PendingCommit(Pending);

#[derive(Debug)]
enum Pending {
    Ready(Result<CommitOutcome, StorageError>),
    Queued(tokio::sync::oneshot::Receiver<Result<CommitOutcome, StorageError>>),
}

impl PendingCommit {
    /// A commit that already happened.
    pub fn ready(result: Result<CommitOutcome, StorageError>) -> Self {
        PendingCommit(Pending::Ready(result))
    }

    /// A commit a writer will answer on `answer`.
    pub fn queued(
        answer: tokio::sync::oneshot::Receiver<Result<CommitOutcome, StorageError>>,
    ) -> Self {
        PendingCommit(Pending::Queued(answer))
    }

    /// Wait, without blocking a thread, until the batch is durable or refused.
    pub async fn durable(self) -> Result<CommitOutcome, StorageError> {
        match self.0 {
            Pending::Ready(result) => result,
            Pending::Queued(answer) => answer.await.unwrap_or_else(|_| Err(writer_gone())),
        }
    }

    /// Block the calling thread (never an async task's) until the batch is durable or
    /// refused.
    pub fn wait(self) -> Result<CommitOutcome, StorageError> {
        match self.0 {
            Pending::Ready(result) => result,
            Pending::Queued(answer) => answer
                .blocking_recv()
                .unwrap_or_else(|_| Err(writer_gone())),
        }
    }
}

/// The error of a write whose writer stopped before answering.
pub(crate) fn writer_gone() -> StorageError {
    StorageError::Backend("the storage writer stopped before answering".into())
}

/// What [`Storage::commit`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOutcome {
    /// The batch is durable.
    Committed {
        /// The ids of the new outbox entries, in the batch's order.
        outbox_ids: Vec<u64>,
        /// The cursors of the new inbox entries, in the batch's order.
        inbox_cursors: Vec<u64>,
    },
    /// The batch (with [`Batch::dedup`]) carried a log entry already stored; nothing was
    /// written.
    Duplicate,
}

/// A message waiting in the outbox for delivery to another server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Its id: unique, and increasing in commit order, across restarts.
    pub id: u64,
    /// The server it goes to.
    pub dest: ServerName,
    /// The room it belongs to.
    pub room: RoomId,
    /// The sequence number of the log entry committed with it, by which the receiver drops
    /// duplicates; `None` if its batch appended no log entry.
    pub seq: Option<u64>,
    /// The message, encoded by the caller.
    pub message: Vec<u8>,
}

/// A key package as stored by [`Storage::publish_key_packages`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKeyPackage {
    /// Its MLS cipher suite.
    pub cipher_suite: u16,
    /// A last-resort package is handed out again when no one-time package is left.
    pub last_resort: bool,
    /// Its unique reference (the MLS `KeyPackageRef`), computed by the caller.
    pub hash_ref: Vec<u8>,
    /// The encoded key package.
    pub bytes: Vec<u8>,
}

/// How many key packages a client has stored for one cipher suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyPackageCount {
    /// One-time packages left.
    pub one_time: usize,
    /// Last-resort packages (at most one per cipher suite).
    pub last_resort: usize,
}

/// One of the provider's users, with what identifier discovery can find them by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// The user.
    pub user_id: UserId,
    /// A handle, unique among the provider's users (case-insensitively).
    pub handle: Option<String>,
    /// An email address, unique among the provider's users (case-insensitively).
    pub email: Option<String>,
    /// A phone number, unique among the provider's users (compared on its digits and `+`).
    pub phone: Option<String>,
    /// A display name; several users may share one.
    pub display_name: Option<String>,
}

/// A field of the user directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DirectoryField {
    /// [`UserRecord::handle`] (unique).
    Handle,
    /// [`UserRecord::email`] (unique).
    Email,
    /// [`UserRecord::phone`] (unique).
    Phone,
    /// [`UserRecord::display_name`] (shared).
    DisplayName,
}

impl DirectoryField {
    /// Every field, in a fixed order.
    pub const ALL: [DirectoryField; 4] = [
        DirectoryField::Handle,
        DirectoryField::Email,
        DirectoryField::Phone,
        DirectoryField::DisplayName,
    ];

    /// Whether at most one user may hold a value of this field.
    pub fn is_unique(self) -> bool {
        !matches!(self, DirectoryField::DisplayName)
    }

    /// The form a value of this field is indexed and searched by: surrounding whitespace
    /// removed; handles, emails and display names lowercased; phone numbers reduced to their
    /// digits and `+`. An empty result is not indexed and matches nobody.
    pub fn normalize(self, value: &str) -> String {
        match self {
            DirectoryField::Phone => value
                .chars()
                .filter(|c| c.is_ascii_digit() || *c == '+')
                .collect(),
            DirectoryField::Handle | DirectoryField::Email | DirectoryField::DisplayName => {
                value.trim().to_lowercase()
            }
        }
    }

    /// The byte a field is stored as.
    pub(crate) fn to_byte(self) -> u8 {
        match self {
            DirectoryField::Handle => 1,
            DirectoryField::Email => 2,
            DirectoryField::Phone => 3,
            DirectoryField::DisplayName => 4,
        }
    }
}

impl UserRecord {
    /// The record's value of `field`, as given.
    pub fn field(&self, field: DirectoryField) -> Option<&str> {
        match field {
            DirectoryField::Handle => self.handle.as_deref(),
            DirectoryField::Email => self.email.as_deref(),
            DirectoryField::Phone => self.phone.as_deref(),
            DirectoryField::DisplayName => self.display_name.as_deref(),
        }
    }

    /// The directory entries of this record: each present field with its normalized,
    /// non-empty value.
    pub(crate) fn directory_keys(&self) -> BTreeSet<(DirectoryField, String)> {
        DirectoryField::ALL
            .into_iter()
            .filter_map(|f| {
                let v = f.normalize(self.field(f)?);
                (!v.is_empty()).then_some((f, v))
            })
            .collect()
    }
}

/// A client of one of the provider's users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRecord {
    /// The client.
    pub client_id: ClientId,
    /// The hash of the token the client authenticates to the provider-internal API with.
    pub token_hash: [u8; 32],
}

/// A provider's persistent state. See the module documentation for the invariants every
/// implementation keeps.
pub trait Storage: Send + Sync + 'static {
    /// The stored room, if any.
    fn room(&self, room: &RoomId) -> Result<Option<RoomRecord>, StorageError>;

    /// Every stored room, in identifier order.
    fn rooms(&self) -> Result<Vec<RoomId>, StorageError>;

    /// The room's latest snapshot ([`Batch::snapshot`]), encoded by the signaling layer;
    /// `None` if no batch carried one (or the room is not stored).
    ///
    /// Rule HUB-SNAP-1 (docs/protocol-coverage.md).
    fn room_snapshot(&self, room: &RoomId) -> Result<Option<Vec<u8>>, StorageError>;

    /// Up to `limit` (at most [`MAX_READ_LIMIT`]) log entries of `room` from sequence
    /// number `from_seq` on, in order. Empty for an unknown room.
    fn log_range(
        &self,
        room: &RoomId,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<LogEntry>, StorageError>;

    /// Write `batch` atomically and durably; see [`Batch`] for the checks. On `Err`
    /// nothing was written.
    ///
    /// Rule HUB-STORE-1 (docs/protocol-coverage.md).
    fn commit(&self, batch: Batch) -> Result<CommitOutcome, StorageError>;

    /// The sequence number of the room's log entry that was committed with `request`
    /// ([`Batch::request`]), while it is among the room's last [`REQUEST_WINDOW`] entries.
    ///
    /// Rule HUB-ONCE-1 (docs/protocol-coverage.md).
    fn request_seq(&self, room: &RoomId, request: &RequestKey)
    -> Result<Option<u64>, StorageError>;

    /// Queue `batch` for [`commit`](Storage::commit) and return at once; the returned
    /// [`PendingCommit`] resolves when it is durable (or refused). Batches are applied in
    /// the order they were submitted, so a caller may submit a room's next batch (checked
    /// with [`Batch::expect_last_seq`]) before the previous one is durable, and answer
    /// nobody before its own batch resolves. The default commits before returning.
    fn submit(&self, batch: Batch) -> PendingCommit {
        PendingCommit::ready(self.commit(batch))
    }

    /// Like [`submit`](Storage::submit), for a batch built on the room's batches submitted
    /// before it (the room engine checks a room's next event while the previous one is
    /// on its way to disk): with a storage other processes write too
    /// ([`Storage::shared`]), once a chained batch of a room is refused (or its commit's
    /// outcome is unknown), the room's later chained batches are refused as
    /// [`Conflict::Superseded`] until [`Storage::reloading`]. Another process may have
    /// moved the room on, and a batch built on the refused one could pass the sequence
    /// check on that process's entry and fork the room's history. The default (only this
    /// process writes, so the later batches fail their own sequence check): `submit`.
    ///
    /// Rule HUB-MULTI-1 (docs/protocol-coverage.md).
    fn submit_chained(&self, batch: Batch) -> PendingCommit {
        self.submit(batch)
    }

    /// The servers with undelivered outbox entries, in name order.
    fn outbox_destinations(&self) -> Result<Vec<ServerName>, StorageError>;

    /// The oldest `limit` (at most [`MAX_READ_LIMIT`]) entries waiting for `dest`, in
    /// commit order (so in log order per room).
    ///
    /// Rule HUB-STORE-4 (docs/protocol-coverage.md).
    fn outbox_peek(
        &self,
        dest: &ServerName,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StorageError> {
        self.outbox_after(dest, 0, limit)
    }

    /// The oldest `limit` (at most [`MAX_READ_LIMIT`]) entries waiting for `dest` whose id
    /// is greater than `after`, in commit order: what a delivery worker that has read up
    /// to `after` has not seen yet.
    fn outbox_after(
        &self,
        dest: &ServerName,
        after: u64,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StorageError>;

    /// Remove the entries `ids` for `dest` once the peer acknowledged them. Removing an
    /// entry that is not there (acknowledged before) is not an error.
    ///
    /// Readers see the entries gone when this returns, but the removal need not be
    /// durable yet: it is at the latest with the next durable write after it, or within
    /// about a second ([`RedbStorage`]'s checkpoint, [`PostgresStorage`]'s WAL writer). A crash
    /// of the machine before then brings the entries back, and the outbox sends them
    /// again; the peer recognises each by its sequence number or request key. Nothing else
    /// is lost with it: a write that was durable before it stays so, and one after it that
    /// is durable makes it durable too (rule HUB-STORE-14).
    fn outbox_ack(&self, dest: &ServerName, ids: &[u64]) -> Result<(), StorageError>;

    /// Store key packages of a registered client. A package whose `hash_ref` is stored for
    /// the same client replaces it; one stored for another client is a
    /// [`Conflict::KeyPackageRef`]. A new last-resort package replaces the client's
    /// last-resort package of its cipher suite. All or nothing.
    fn publish_key_packages(
        &self,
        client: &ClientId,
        packages: Vec<StoredKeyPackage>,
    ) -> Result<(), StorageError>;

    /// Claim one key package of `cipher_suite` per client of `user` (`clients` names them;
    /// empty means every registered client; clients not registered for `user` are
    /// ignored). A one-time package is preferred and removed; otherwise the last-resort one
    /// is returned and kept. Clients without a package are absent from the result, which
    /// follows the order of `clients` (or of client identifiers). Atomic.
    ///
    /// Rule HUB-STORE-5 (docs/protocol-coverage.md).
    fn claim_key_packages(
        &self,
        user: &UserId,
        clients: &[ClientId],
        cipher_suite: u16,
    ) -> Result<Vec<(ClientId, Vec<u8>)>, StorageError>;

    /// How many key packages `client` has stored for `cipher_suite`.
    fn key_package_count(
        &self,
        client: &ClientId,
        cipher_suite: u16,
    ) -> Result<KeyPackageCount, StorageError>;

    /// Create or replace a user and its directory entries, in one transaction. A unique
    /// value held by another user is a [`Conflict::DirectoryTaken`] and writes nothing.
    ///
    /// Rule HUB-STORE-6 (docs/protocol-coverage.md).
    fn put_user(&self, user: &UserRecord) -> Result<(), StorageError>;

    /// The stored user, if any.
    fn user(&self, user: &UserId) -> Result<Option<UserRecord>, StorageError>;

    /// Up to `limit` (at most [`MAX_READ_LIMIT`]) stored users whose identifier sorts after
    /// `after` (all of them from the start with `None`), in identifier order: a page of
    /// the provider's users, for its operator.
    fn users(&self, after: Option<&UserId>, limit: usize) -> Result<Vec<UserId>, StorageError>;

    /// The users whose `field` equals `value` after [`DirectoryField::normalize`], in
    /// identifier order.
    fn find_users(&self, field: DirectoryField, value: &str) -> Result<Vec<UserId>, StorageError>;

    /// Register or replace a client of a stored user ([`StorageError::UnknownUser`]
    /// otherwise).
    fn put_client(&self, client: &ClientRecord) -> Result<(), StorageError>;

    /// Create a user as [`put_user`](Storage::put_user) does, unless one with its
    /// identifier is stored: `false` then, and nothing is written. Registration uses it, so
    /// that two registrations of one name at the same time (on two instances) create it
    /// once. The default looks, then writes (atomic only within the process that
    /// serialises registrations, `accounts.rs`); PostgreSQL does both in one transaction.
    ///
    /// Rule HUB-MULTI-4 (docs/protocol-coverage.md).
    fn create_user(&self, user: &UserRecord) -> Result<bool, StorageError> {
        if self.user(&user.user_id)?.is_some() {
            return Ok(false);
        }
        self.put_user(user)?;
        Ok(true)
    }

    /// Register a client as [`put_client`](Storage::put_client) does, unless it is
    /// registered: `false` then, and nothing is written (the token of the client that
    /// registered first stays valid). Atomic as [`create_user`](Storage::create_user) is.
    fn create_client(&self, client: &ClientRecord) -> Result<bool, StorageError> {
        if self.client(&client.client_id)?.is_some() {
            return Ok(false);
        }
        self.put_client(client)?;
        Ok(true)
    }

    /// The registered client, if any.
    fn client(&self, client: &ClientId) -> Result<Option<ClientRecord>, StorageError>;

    /// The registered clients of `user`, in identifier order.
    fn clients_of(&self, user: &UserId) -> Result<Vec<ClientId>, StorageError>;

    /// Up to `limit` (at most [`MAX_READ_LIMIT`]) inbox entries of `client` with a cursor
    /// greater than `after`, in order, as `(cursor, message)`.
    ///
    /// Rule HUB-STORE-7 (docs/protocol-coverage.md).
    fn inbox_read(
        &self,
        client: &ClientId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StorageError>;

    /// Remove the inbox entries of `client` with a cursor up to `up_to` (the client has
    /// them). Their cursors are never reused.
    fn inbox_trim(&self, client: &ClientId, up_to: u64) -> Result<(), StorageError>;

    /// Write a consistent copy of everything stored to a new file at `out`, while the
    /// provider runs (`mimi-hub backup`). Only a backend kept in one file can; the default
    /// says to use the backend's own tools (PostgreSQL: `pg_dump`).
    fn backup(&self, out: &std::path::Path) -> Result<(), StorageError> {
        let _ = out;
        Err(StorageError::Backend(
            "this storage backend is backed up with its own tools (PostgreSQL: pg_dump)".into(),
        ))
    }

    /// The second version's (draft-ietf-mimi-protocol-06) record under `key`: consent
    /// states, which provider each handed-out KeyPackageRef went to. Keys are namespaced by
    /// their writer (`crate::v06::state`); the first version's records never use this.
    ///
    /// Rule V06-STORE-1 (docs/protocol-coverage.md).
    fn v06_record(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError>;

    /// Write (`Some`) or delete (`None`) the -06 record under `key`, durably.
    fn put_v06_record(&self, key: &[u8], value: Option<&[u8]>) -> Result<(), StorageError>;

    /// Write (or, with `None`, delete) several -06 records, in order; durable when it
    /// returns. A backend that can writes them in one transaction (redb); the default writes
    /// them one at a time, so a caller that needs a consistent view writes the record that
    /// makes the others visible last (the -06 log's count).
    fn put_v06_records(&self, records: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<(), StorageError> {
        for (key, value) in records {
            self.put_v06_record(key, value.as_deref())?;
        }
        Ok(())
    }

    /// The -06 records whose key starts with `prefix`, in key order, from the first key at or
    /// after `prefix ++ after` (exclusive of `after` itself when it is not empty), at most
    /// `limit` of them: one page of a listing (the abuse reports). A backend without it
    /// answers `Backend`.
    fn v06_records_with_prefix(
        &self,
        prefix: &[u8],
        after: &[u8],
        limit: usize,
    ) -> Result<Vec<V06Record>, StorageError> {
        let _ = (prefix, after, limit);
        Err(StorageError::Backend(
            "this storage backend cannot list -06 records".into(),
        ))
    }

    /// Whether reads are answered in microseconds, from this process's memory or a local
    /// file's page cache (redb): the server then runs the reads on an event's path on the
    /// async runtime itself ([`read`]) instead of handing each to a blocking thread, a hand-off
    /// of two thread switches that cost more than such a read (issue 13, item 3). A
    /// storage that reads over a network (PostgreSQL) says no, the default. Writes always go
    /// off the runtime.
    ///
    /// Rule HUB-STORE-12 (docs/protocol-coverage.md).
    fn quick_reads(&self) -> bool {
        false
    }

    // ---- Several processes on one storage (PostgreSQL; docs/operations.md) ----

    /// Whether other processes (other `mimi-hub` instances of the provider) may write this
    /// storage too. If so, the room engine checks [`Storage::room_last_seq`] before it
    /// checks an event against its cached room, the outbox leases each destination
    /// ([`Storage::outbox_lease`]), and the writer refuses a room's writes that build on a
    /// refused one ([`Conflict::Superseded`]). The default: only this process.
    fn shared(&self) -> bool {
        false
    }

    /// The sequence number of the room's last stored log entry (`None`: no entry, or no
    /// such room).
    ///
    /// Rule HUB-MULTI-1 (docs/protocol-coverage.md).
    fn room_last_seq(&self, room: &RoomId) -> Result<Option<u64>, StorageError> {
        Ok(self.room(room)?.and_then(|r| r.last_seq))
    }

    /// The room engine is about to read `room` again (after a refused write, or because
    /// another process moved it on): the room's writes submitted from now on build on what
    /// is stored, so a shared storage stops refusing them as [`Conflict::Superseded`].
    /// Ordered with [`Storage::submit`]: writes submitted before are still refused.
    fn reloading(&self, room: &RoomId) {
        let _ = room;
    }

    /// Take or keep the lease on delivering `dest`'s outbox entries for `ttl`: `true` if
    /// this process holds it now. Only one process at a time holds a destination's lease;
    /// one that dies leaves it to the others when `ttl` has passed. The default (a storage
    /// only this process writes): always held.
    ///
    /// Rule HUB-MULTI-2 (docs/protocol-coverage.md).
    fn outbox_lease(
        &self,
        dest: &ServerName,
        ttl: std::time::Duration,
    ) -> Result<bool, StorageError> {
        let _ = (dest, ttl);
        Ok(true)
    }

    /// Give up the lease on `dest` (a worker stopping), so that another process takes it
    /// over at once.
    fn outbox_release(&self, dest: &ServerName) -> Result<(), StorageError> {
        let _ = dest;
        Ok(())
    }

    /// Call `hook` whenever another process sharing the storage makes outbox or inbox
    /// entries durable or writes a client's token (and once for each kind whenever the
    /// notification channel starts listening, at start and after it was lost, as anything
    /// may have been written before), so
    /// that this process's outbox workers and long-polling reads wake and its token cache
    /// forgets what a revocation elsewhere changed. The default (no other process): never called.
    ///
    /// Rule HUB-MULTI-3 (docs/protocol-coverage.md).
    fn watch(&self, hook: ChangeHook) {
        let _ = hook;
    }
}

/// One -06 record: its key and its value.
pub type V06Record = (Vec<u8>, Vec<u8>);

/// The decision of [`check_batch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Write nothing; the log entry is stored already.
    Duplicate,
    /// Write the batch.
    Apply,
}

/// Run the storage call `f` on a blocking thread, off the async runtime.
pub async fn blocking<T: Send + 'static>(
    storage: &Arc<dyn Storage>,
    f: impl FnOnce(&dyn Storage) -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    let storage = Arc::clone(storage);
    tokio::task::spawn_blocking(move || f(storage.as_ref()))
        .await
        .map_err(|e| StorageError::Backend(format!("storage task failed: {e}")))?
}

/// Run the read `f` on `storage`: in place if its reads are quick
/// ([`Storage::quick_reads`]), on a blocking thread ([`blocking`]) otherwise.
pub async fn read<T: Send + 'static>(
    storage: &Arc<dyn Storage>,
    f: impl FnOnce(&dyn Storage) -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    if storage.quick_reads() {
        return f(storage.as_ref());
    }
    blocking(storage, f).await
}

/// The checks of [`Batch`], shared by every backend so that they agree. `current` is the
/// stored room's role and last sequence number.
///
/// Rules HUB-STORE-1, HUB-STORE-2, HUB-STORE-3 (docs/protocol-coverage.md).
pub(crate) fn check_batch(
    current: Option<(RoomRole, Option<u64>)>,
    batch: &Batch,
) -> Result<Plan, StorageError> {
    let role = match (&batch.room_update, current) {
        (Some(update), _) => update.role,
        (None, Some((role, _))) => role,
        (None, None) => return Err(StorageError::UnknownRoom(batch.room.clone())),
    };
    let last = current.and_then(|(_, last)| last);
    if let (true, Some(entry), Some(last)) = (batch.dedup, &batch.log, last)
        && entry.seq <= last
    {
        return Ok(Plan::Duplicate);
    }
    if let Some(expected) = batch.expect_last_seq
        && expected != last
    {
        return Err(StorageError::Conflict(Conflict::LastSeq {
            expected,
            actual: last,
        }));
    }
    let logged_len = batch.log.as_ref().map(|e| e.entry.len());
    for payload in batch
        .outbox
        .iter()
        .map(|(_, p)| p)
        .chain(batch.inbox.iter().map(|(_, p)| p))
    {
        if let Payload::Logged { len } = payload
            && !logged_len.is_some_and(|l| usize::try_from(*len).is_ok_and(|len| len <= l))
        {
            return Err(StorageError::Invalid(format!(
                "an entry points at {len} bytes of a log entry of {logged_len:?} bytes"
            )));
        }
    }
    if let Some(entry) = &batch.log {
        let expected = match (last, role) {
            (Some(last), _) => last.checked_add(1).ok_or(StorageError::SequenceExhausted)?,
            (None, RoomRole::Hub) => 0,
            (None, RoomRole::Follower) => entry.seq,
        };
        if entry.seq != expected {
            return Err(StorageError::OutOfOrder {
                expected,
                got: entry.seq,
            });
        }
    }
    Ok(Plan::Apply)
}

/// The room record after `update`, from the stored one.
pub(crate) fn updated_room(
    stored: Option<RoomRecord>,
    update: Option<RoomUpdate>,
    new_last: Option<u64>,
) -> Option<RoomRecord> {
    let mut record = match (stored, update) {
        (stored, Some(update)) => {
            let group = match update.group {
                GroupUpdate::Keep => stored.as_ref().and_then(|r| r.group.clone()),
                GroupUpdate::Replace(g) => Some(g),
                GroupUpdate::Remove => None,
            };
            RoomRecord {
                role: update.role,
                state: update.state,
                group,
                last_seq: stored.and_then(|r| r.last_seq),
            }
        }
        (Some(stored), None) => stored,
        (None, None) => return None,
    };
    if new_last.is_some() {
        record.last_seq = new_last;
    }
    Some(record)
}

/// The effective limit of one read.
pub(crate) fn read_limit(limit: usize) -> usize {
    limit.min(MAX_READ_LIMIT)
}

/// Parse a stored identifier, reporting failure as corruption.
pub(crate) fn parse_stored<T: std::str::FromStr>(s: &str, what: &str) -> Result<T, StorageError> {
    s.parse()
        .map_err(|_| StorageError::Corrupt(format!("stored {what} {s:?} does not parse")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room() -> RoomId {
        "!r:hub.example".parse().unwrap()
    }

    fn batch(log: Option<u64>, role: Option<RoomRole>) -> Batch {
        let mut b = Batch::new(room());
        b.log = log.map(|seq| LogEntry { seq, entry: vec![] });
        b.room_update = role.map(|role| RoomUpdate {
            role,
            state: vec![],
            group: GroupUpdate::Keep,
        });
        b
    }

    #[test]
    fn hub_logs_start_at_zero_follower_logs_anywhere() {
        assert_eq!(
            check_batch(None, &batch(Some(0), Some(RoomRole::Hub))),
            Ok(Plan::Apply)
        );
        assert_eq!(
            check_batch(None, &batch(Some(3), Some(RoomRole::Hub))),
            Err(StorageError::OutOfOrder {
                expected: 0,
                got: 3
            })
        );
        assert_eq!(
            check_batch(None, &batch(Some(3), Some(RoomRole::Follower))),
            Ok(Plan::Apply)
        );
        assert_eq!(
            check_batch(Some((RoomRole::Follower, Some(3))), &batch(Some(5), None)),
            Err(StorageError::OutOfOrder {
                expected: 4,
                got: 5
            })
        );
        assert_eq!(
            check_batch(None, &batch(Some(0), None)),
            Err(StorageError::UnknownRoom(room()))
        );
    }

    #[test]
    fn the_last_sequence_number_is_never_reused() {
        assert_eq!(
            check_batch(Some((RoomRole::Hub, Some(u64::MAX))), &batch(Some(0), None)),
            Err(StorageError::SequenceExhausted)
        );
    }

    #[test]
    fn normalization() {
        assert_eq!(DirectoryField::Handle.normalize(" Alice "), "alice");
        assert_eq!(
            DirectoryField::Email.normalize("Alice@Example.ORG"),
            "alice@example.org"
        );
        assert_eq!(
            DirectoryField::Phone.normalize("+1 (555) 010-0000"),
            "+15550100000"
        );
        let record = UserRecord {
            user_id: "@a:p.example".parse().unwrap(),
            handle: Some("  ".into()),
            email: None,
            phone: Some("+1 555".into()),
            display_name: Some("A".into()),
        };
        assert_eq!(
            record.directory_keys().into_iter().collect::<Vec<_>>(),
            vec![
                (DirectoryField::Phone, "+1555".to_owned()),
                (DirectoryField::DisplayName, "a".to_owned())
            ]
        );
    }
}
