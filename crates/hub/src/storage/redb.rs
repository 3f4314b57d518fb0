//! [`RedbStorage`]: the storage a provider runs, one redb file on disk.
//!
//! ## Schema (version [`SCHEMA_VERSION`])
//! Identifiers are stored as their strings; composite keys are redb tuples, which order
//! field by field, so a range over `(room, seq)` is one room's log in order.
//!
//! | table | key | value |
//! |---|---|---|
//! | `meta` | name | `u64` (schema version, next outbox id, next inbox cursor) |
//! | `rooms` | room | (role, state, *unused*, last seq? of a file before version 4) |
//! | `groups` | room | the delivery service's group state |
//! | `snapshots` | room | the room's latest signaling snapshot (`Batch::snapshot`) |
//! | `log_index` | (room, seq) | the entry's id in `log_bodies` |
//! | `log_bodies` | id | entry (ids in commit order, whatever the room) |
//! | `outbox` | (destination, id) | (room, seq?, message) |
//! | `inbox` | (client, cursor) | message |
//! | `key_packages` | (client, suite, last resort, ref) | key package |
//! | `key_package_refs` | ref | (client, suite, last resort) |
//! | `users` | user | (handle?, email?, phone?, display name?) |
//! | `directory` (multimap) | (field, normalized value) | user |
//! | `clients` | client | token hash |
//! | `requests` | (room, request key) | seq (`Storage::request_seq`; one record per key, read only while in the room's last `REQUEST_WINDOW` entries, removed in bulk every `REQUEST_WINDOW` entries) |
//! | `v06` | key | the second version's records (`Storage::v06_record`); created by its first write, so a file of this schema version without it reads as empty |
//!
//! A room's log is two tables (since version 5; before, one table `log` keyed by (room,
//! seq) held the entries). The entries' bytes take ids in the order they are committed, so
//! each is appended at the right end of `log_bodies`, whose leaves redb then writes full
//! and once; keyed by (room, seq), every room's entries went into the middle of one tree,
//! where a full leaf splits into two half-full ones and each room's last leaf was written
//! again at every checkpoint (docs/performance.md, "The log in commit order"). `log_index`
//! maps (room, seq) to the id, a few dozen bytes per entry. Opening a version 4 file moves
//! its log, once.
//!
//! A room's last sequence number is its last `log_index` key (since version 4): the room's record
//! is written only when the room's role or state changes, not with every event (issue 13,
//! item 2; a large room's state is tens of kB). Records written before version 4 still hold
//! the last sequence number of their time, which the log can only have passed: the greater
//! of the two is the room's. Version 4 changes no data; it is a new number so that an older
//! build, which would take the record's stale number for the room's, refuses the file.
//!
//! The group state has its own table (since version 2; version 1 kept it in `rooms`, and
//! opening such a file moves it, once): most events leave the group as it is, and the
//! room's record changed with every event until version 4, so the group state (large for a
//! large group) is written only when it changes. The third field of `rooms` stays for the value type's
//! sake and is always empty. The `snapshots` table came later within version 2: a file
//! without it has no snapshots (reads find none; the first write of one creates it).
//!
//! Every write is on disk when the call returns `Ok` (but an outbox acknowledgement, which
//! is durable with the next write that is, below), and a failed check writes nothing of
//! it. The writes outside the event path (users, clients, key packages, acknowledged inbox
//! entries) are redb transactions with [`Durability::Immediate`]. The event path's
//! ([`Storage::commit`], [`Storage::outbox_ack`], and the -06 records of
//! [`Storage::put_v06_records`]) go to the group writer and are journaled, below.
//!
//! ## Journal
//! [`RedbStorage::open`] keeps a journal beside the file ([`RedbStorage::journal_dir`]:
//! `hub.redb.journal/`, an append-only segment log, `storage::journal`). The group writer
//! applies a group's writes in one redb transaction, appends them to the journal as one
//! record (`fdatasync`), and only then commits the transaction, without a sync of its own
//! ([`Durability::None`]), and answers. redb keeps those commits' pages in memory and writes
//! them at a checkpoint ([`Checkpoints`]: every second while writes come, after 200 ms
//! without any, and on close), a durable commit that records the journal position it
//! covers. Opening after a crash replays the records after that position. A group of
//! outbox acknowledgements only is journaled without a sync of its own (rule
//! HUB-STORE-14): the next synced group or checkpoint makes it durable, and a crash of the
//! machine before then only has the outbox send those entries again. So a message is
//! written about twice (journal, then its share of the checkpoint's pages), where a
//! durable commit per group wrote every touched B-tree page each time
//! (docs/performance.md, "The journal"). [`RedbStorage::open_with_backend`] has no journal:
//! every write is a durable commit, as before.
//!
//! ## Group commit
//! [`Storage::commit`] and [`Storage::outbox_ack`], the writes on the path of every event,
//! go to one writer thread. It takes every write that is waiting (up to
//! [`GROUP_COMMIT_MAX`]), applies them one after another in one transaction, each with its
//! own checks (a refused batch writes nothing and does not stop the others; a later batch
//! sees the earlier ones' writes, as if they had been committed one by one in that order),
//! and commits once: one `fdatasync` for the group instead of one per write. Callers are
//! answered only after that commit. While one group commits, the next one gathers, so the
//! group grows with the load and a lone write waits for nothing but its own commit. The
//! tables every event touches (`meta`, `rooms`, `log_index`, `log_bodies`, `requests`,
//! `outbox`, `inbox`) are opened once per group, not once per write. If a
//! write fails after it began writing (a backend error, a counter used up), the group is
//! aborted and each of its writes is run again in its own transaction, so one write's
//! failure is never another's.

use super::V06Record;
use std::ops::Bound;
use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::thread::JoinHandle;
use std::time::Instant;

use ::redb::{
    Builder, Database, Durability, MultimapTableDefinition, ReadTransaction, ReadableDatabase,
    ReadableMultimapTable, ReadableTable, TableDefinition, WriteTransaction,
};
use mimi_codec::{ClientId, RoomId, ServerName, UserId};
use tokio::sync::oneshot;

use super::{
    Batch, ClientRecord, CommitOutcome, Conflict, DirectoryField, FIRST_ID, GroupUpdate,
    KeyPackageCount, LogEntry, OutboxEntry, Payload, PendingCommit, Plan, REQUEST_WINDOW,
    RequestKey, RoomRecord, RoomRole, Storage, StorageError, StoredKeyPackage, UserRecord,
    check_batch, parse_stored, read_limit, writer_gone,
};

#[path = "redb_journaled.rs"]
mod journaled;
use journaled::Journaled;
pub use journaled::{CHECKPOINT_INTERVAL, Checkpoints};

/// The schema this build reads and writes; a file with another version is refused.
pub const SCHEMA_VERSION: u64 = 5;

const META_SCHEMA: &str = "schema_version";
const META_NEXT_OUTBOX: &str = "next_outbox_id";
const META_NEXT_INBOX: &str = "next_inbox_cursor";

/// (role, state, group, last seq).
type RoomValue = (u8, &'static [u8], Option<&'static [u8]>, Option<u64>);
/// (room, seq, message): the outbox of schema 2 and before.
type OldQueuedValue = (&'static str, Option<u64>, &'static [u8]);
/// An outbox or inbox entry: (room, seq of its batch's log entry, length of the prefix of
/// that log entry it delivers, bytes it delivers otherwise). With a length, the bytes are
/// empty and the message is read from `log` ([`Payload::Logged`]); inbox entries moved
/// from schema 2 have no room (`""`) and their bytes.
type QueuedValue = (&'static str, Option<u64>, Option<u32>, &'static [u8]);
/// (handle, email, phone, display name).
type UserValue = (
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
);

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const ROOMS: TableDefinition<&str, RoomValue> = TableDefinition::new("rooms");
const GROUPS: TableDefinition<&str, &[u8]> = TableDefinition::new("groups");
const SNAPSHOTS: TableDefinition<&str, &[u8]> = TableDefinition::new("snapshots");
/// A room's log (since version 5): (room, seq) → the id of the entry's bytes in
/// [`LOG_BODIES`].
const LOG_INDEX: TableDefinition<(&str, u64), u64> = TableDefinition::new("log_index");
/// The log entries' bytes by id (since version 5). Ids grow with every entry, whatever its
/// room, so each entry is appended at the right end of this tree, whose leaves are then
/// written full and once; keyed by (room, seq), an entry went into the middle of the tree,
/// where each full leaf splits in two halves and a room's last leaf is written again at
/// every checkpoint.
const LOG_BODIES: TableDefinition<u64, &[u8]> = TableDefinition::new("log_bodies");
/// The log of versions 1 to 4: (room, seq) → entry.
const OLD_LOG: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("log");
/// (dest, id) → entry.
const OUTBOX: TableDefinition<(&str, u64), QueuedValue> = TableDefinition::new("outbox3");
/// (client, cursor) → entry.
const INBOX: TableDefinition<(&str, u64), QueuedValue> = TableDefinition::new("inbox3");
/// The outbox and inbox of schema 2 and before, each entry a copy of its message; moved
/// into `outbox3` and `inbox3` when such a file is opened.
const OLD_OUTBOX: TableDefinition<(&str, u64), OldQueuedValue> = TableDefinition::new("outbox");
const OLD_INBOX: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("inbox");
const KEY_PACKAGES: TableDefinition<(&str, u16, bool, &[u8]), &[u8]> =
    TableDefinition::new("key_packages");
const KEY_PACKAGE_REFS: TableDefinition<&[u8], (&str, u16, bool)> =
    TableDefinition::new("key_package_refs");
const USERS: TableDefinition<&str, UserValue> = TableDefinition::new("users");
const DIRECTORY: MultimapTableDefinition<(u8, &str), &str> =
    MultimapTableDefinition::new("directory");
const CLIENTS: TableDefinition<&str, [u8; 32]> = TableDefinition::new("clients");
/// (room, request key) → sequence number of the entry logged for it: one record per key.
/// A key is read as forgotten once it leaves the window ([`Storage::request_seq`] compares
/// with the room's last sequence number) and removed in bulk every [`REQUEST_WINDOW`]
/// entries of its room ([`record_request`]).
const REQUESTS: TableDefinition<(&str, [u8; 32]), u64> = TableDefinition::new("requests");
/// An index from (room, sequence number) to request key that earlier builds wrote beside
/// `requests` (a second record per key); dropped when such a file is opened.
const REQUEST_SEQS: TableDefinition<(&str, u64), [u8; 32]> = TableDefinition::new("request_seqs");
const V06: TableDefinition<&[u8], &[u8]> = TableDefinition::new("v06");

const NO_BYTES: &[u8] = &[];

/// Opens the database (with the schema checked): how [`Reopening`] gets a fresh handle.
type Opener = Box<dyn Fn() -> Result<Database, StorageError> + Send + Sync>;

/// The open database, reopened after an I/O error (rule HUB-STORE-9,
/// docs/protocol-coverage.md).
///
/// redb refuses every write after an I/O error during a commit (a full disk, say) until
/// the database is closed and opened again ("Previous I/O error occurred"), although what
/// it committed before is intact on disk. So the handle that failed is dropped, and the
/// next operation opens the file again: a full disk that was freed needs no restart. The
/// failed write was not committed and its caller was told so (`Unavailable`); nothing
/// acknowledged is lost. While a reader or the writer thread still holds the old handle,
/// the file stays locked and reopening answers `Unavailable` again, until it is released.
struct Reopening {
    open: Opener,
    current: std::sync::RwLock<Option<Arc<Database>>>,
}

impl Reopening {
    /// The open database, opening it again if the last one failed.
    fn get(&self) -> Result<Arc<Database>, StorageError> {
        if let Some(db) = self
            .current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            return Ok(Arc::clone(db));
        }
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        if let Some(db) = current.as_ref() {
            return Ok(Arc::clone(db));
        }
        let db = Arc::new((self.open)().map_err(|e| match e {
            StorageError::Backend(why) => {
                StorageError::Unavailable(format!("reopening the database: {why}"))
            }
            other => other,
        })?);
        tracing::warn!("storage: the database was reopened after an I/O error");
        *current = Some(Arc::clone(&db));
        Ok(db)
    }

    /// Note the outcome of an operation on `db`: after an I/O error, drop the handle so
    /// that the next operation reopens the file.
    fn note<T>(&self, db: &Arc<Database>, result: &Result<T, StorageError>) {
        if let Err(StorageError::Unavailable(why)) = result {
            let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
            if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, db)) {
                tracing::error!(error = %why, "storage: I/O error; the database will be reopened");
                *current = None;
            }
        }
    }
}

/// The most writes the writer thread commits in one transaction.
pub const GROUP_COMMIT_MAX: usize = 512;

/// Storage in one redb file. Cloning is not offered: share it behind an `Arc`.
pub struct RedbStorage {
    db: Arc<Reopening>,
    /// The journal beside the file (`None`: every write is a durable redb commit).
    journal: Option<Arc<Journaled>>,
    /// The group-commit writer's queue (`None` only while dropping). It is not bounded
    /// here: every caller waits for its own write's answer, so what bounds the callers
    /// (the servers' connection limits) bounds the queue.
    writes: Option<Sender<Queued>>,
    writer: Option<JoinHandle<()>>,
}

/// A write for the group-commit writer.
enum Write {
    Commit(Batch),
    Ack(ServerName, Vec<u64>),
    /// The second version's records: each key's new value, or its removal.
    V06(Vec<(Vec<u8>, Option<Vec<u8>>)>),
}

/// What a [`Write`] returns.
enum Written {
    Commit(CommitOutcome),
    /// An acknowledgement or records written: nothing to return.
    Done,
}

/// Where a write's result goes.
enum Reply {
    Commit(oneshot::Sender<Result<CommitOutcome, StorageError>>),
    /// A write with nothing to return (an acknowledgement, -06 records), whose caller
    /// waits on a blocking thread.
    Done(std::sync::mpsc::SyncSender<Result<(), StorageError>>),
}

impl Reply {
    /// Answer the caller (one that stopped waiting does not need its answer).
    fn send(self, result: Result<Written, StorageError>) {
        match self {
            Reply::Commit(tx) => {
                let _ = tx.send(result.and_then(|written| match written {
                    Written::Commit(outcome) => Ok(outcome),
                    // `apply` answers a commit with a commit's result.
                    Written::Done => {
                        Err(StorageError::Backend("a commit answered as an ack".into()))
                    }
                }));
            }
            Reply::Done(tx) => {
                let _ = tx.send(result.map(|_| ()));
            }
        }
    }
}

/// A write and where its result goes.
struct Queued {
    write: Write,
    reply: Reply,
}

/// A write's result inside a group transaction: the outer error means the transaction can
/// no longer be trusted (something may have been half written); the inner one that this
/// write was refused before it wrote anything.
type Applied = Result<Result<Written, StorageError>, StorageError>;

impl Drop for RedbStorage {
    fn drop(&mut self) {
        // Closing the queue ends the writer once it has answered what it holds; joining it
        // releases its handle on the database before the file can be opened again.
        self.writes = None;
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl std::fmt::Debug for RedbStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStorage").finish_non_exhaustive()
    }
}

/// A redb error as a [`StorageError`], keeping redb's types out of the public API.
fn backend(e: impl Into<::redb::Error>) -> StorageError {
    match e.into() {
        ::redb::Error::Corrupted(what) => StorageError::Corrupt(what),
        // A failed disk write (ENOSPC, EIO) and every write after it until reopened.
        e @ (::redb::Error::Io(_) | ::redb::Error::PreviousIo) => {
            StorageError::Unavailable(e.to_string())
        }
        other => StorageError::Backend(other.to_string()),
    }
}

/// `?` for redb results.
trait OrBackend<T> {
    fn bk(self) -> Result<T, StorageError>;
}

impl<T, E: Into<::redb::Error>> OrBackend<T> for Result<T, E> {
    fn bk(self) -> Result<T, StorageError> {
        self.map_err(backend)
    }
}

/// Whether a write transaction's work is kept.
enum Finish<T> {
    /// Commit durably, then return the value.
    Commit(T),
    /// Nothing was written; abort and return the value.
    Abort(T),
}

fn decode_room(value: (u8, &[u8], Option<&[u8]>, Option<u64>)) -> Result<RoomRecord, StorageError> {
    let (role, state, group, last_seq) = value;
    Ok(RoomRecord {
        role: RoomRole::from_byte(role)?,
        state: state.to_vec(),
        group: group.map(<[u8]>::to_vec),
        last_seq,
    })
}

fn decode_user(
    user_id: UserId,
    value: (Option<&str>, Option<&str>, Option<&str>, Option<&str>),
) -> UserRecord {
    let (handle, email, phone, display_name) = value;
    UserRecord {
        user_id,
        handle: handle.map(str::to_owned),
        email: email.map(str::to_owned),
        phone: phone.map(str::to_owned),
        display_name: display_name.map(str::to_owned),
    }
}

/// Read a counter of `meta`.
fn counter(meta: &impl ReadableTable<&'static str, u64>, name: &str) -> Result<u64, StorageError> {
    Ok(meta.get(name).bk()?.map_or(FIRST_ID, |g| g.value()))
}

/// Take the next id of a counter.
fn next_id(counter: &mut u64) -> Result<u64, StorageError> {
    let id = *counter;
    *counter = id
        .checked_add(1)
        .ok_or_else(|| StorageError::Corrupt("id counter exhausted".into()))?;
    Ok(id)
}

/// The mode of a backup file: read and write for its owner only.
const BACKUP_MODE: u32 = 0o600;

impl RedbStorage {
    /// Open the database at `path`, creating it if the file does not exist or is empty.
    ///
    /// The whole file's integrity is checked on open, so a damaged file is refused with an
    /// error instead of being trusted; a file that is not a redb database, or a database of
    /// another schema version, is an error too.
    ///
    /// Rule HUB-STORE-8 (docs/protocol-coverage.md).
    ///
    /// The writes on the path of every event are journaled (module docs, "Journal"): the
    /// journal is the directory [`RedbStorage::journal_dir`] names beside the file, and
    /// opening replays what it holds that the file does not.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StorageError> {
        Self::open_with_checkpoints(path, Checkpoints::default())
    }

    /// [`RedbStorage::open`], checkpointing the journal as `checkpoints` says.
    pub fn open_with_checkpoints(
        path: impl AsRef<Path>,
        checkpoints: Checkpoints,
    ) -> Result<Self, StorageError> {
        let path = path.as_ref().to_path_buf();
        let journal = Arc::new(Journaled::new(Self::journal_dir(&path), checkpoints));
        Self::open_with(file_opener(path), Some(journal))
    }

    /// Open the database at `path` without a journal: every write is a durable redb
    /// commit (the layout before the journal; configuration `journal = false`). A journal
    /// left beside the file by a journaled run that did not stop cleanly is applied first.
    pub fn open_without_journal(path: impl AsRef<Path>) -> Result<Self, StorageError> {
        let path = path.as_ref().to_path_buf();
        if Self::journal_dir(&path).exists() {
            // Closing it checkpoints everything, so the journal holds nothing more.
            drop(Self::open(&path)?);
        }
        Self::open_with(file_opener(path), None)
    }

    /// The journal directory of the database file `path`: `path` with `.journal` added
    /// (`hub.redb` → `hub.redb.journal`).
    pub fn journal_dir(path: &Path) -> PathBuf {
        let mut dir = path.as_os_str().to_owned();
        dir.push(".journal");
        PathBuf::from(dir)
    }

    /// How many journal records the opens of this store applied because the file did not
    /// hold them yet: zero after a clean stop, more after a crash.
    pub fn journal_replayed(&self) -> u64 {
        self.journal.as_ref().map_or(0, |j| j.replayed())
    }

    /// How many times the journal synced its data since the store was opened (0 without
    /// a journal): for tests and measurements.
    pub fn journal_syncs(&self) -> u64 {
        self.journal.as_ref().map_or(0, |j| j.syncs())
    }

    /// Open a database kept by a redb [`StorageBackend`](::redb::StorageBackend) that
    /// `backend` makes (called again each time the database is reopened after an I/O
    /// error): for storage other than a plain file, and for tests that inject disk faults.
    pub fn open_with_backend<B: ::redb::StorageBackend>(
        backend: impl Fn() -> Result<B, StorageError> + Send + Sync + 'static,
    ) -> Result<Self, StorageError> {
        Self::open_with(
            Box::new(move || {
                Builder::new()
                    .set_check_integrity_on_open(true)
                    .create_with_backend(backend()?)
                    .bk()
            }),
            None,
        )
    }

    fn open_with(open: Opener, journal: Option<Arc<Journaled>>) -> Result<Self, StorageError> {
        let opener_journal = journal.clone();
        let open: Opener = Box::new(move || {
            let db = open()?;
            prepare(&db)?;
            if let Some(journal) = &opener_journal {
                journal.recover(&db)?;
            }
            Ok(db)
        });
        // At start an I/O error is no passing fault but a file that cannot be used (not a
        // database, unreadable): the caller refuses to start.
        let first = Arc::new(open().map_err(|e| match e {
            StorageError::Unavailable(why) => StorageError::Backend(why),
            other => other,
        })?);
        let db = Arc::new(Reopening {
            open,
            current: std::sync::RwLock::new(Some(first)),
        });
        let (writes, queue) = channel();
        let writer_db = Arc::clone(&db);
        let writer_journal = journal.clone();
        let writer = std::thread::Builder::new()
            .name("redb-group-commit".into())
            .spawn(move || group_writer(&writer_db, &queue, writer_journal.as_deref()))
            .map_err(|e| StorageError::Backend(format!("cannot start the writer thread: {e}")))?;
        Ok(RedbStorage {
            db,
            journal,
            writes: Some(writes),
            writer: Some(writer),
        })
    }

    /// Write a consistent copy of the whole database to a new redb file at `out` (which
    /// must not exist; created with mode 0600, the owner's only: it holds every client's
    /// token hash and the rooms' state): one read transaction (a snapshot; writers go on meanwhile) copied
    /// table by table into the new file, committed durably. The copy opens with
    /// [`RedbStorage::open`] like the original.
    pub fn backup_to(&self, out: &Path) -> Result<(), StorageError> {
        // Created empty, owner-only, and only if it does not exist; redb then initializes
        // the empty file as a database (keeping its mode).
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(BACKUP_MODE);
        }
        match options.open(out) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(StorageError::Backend(format!(
                    "{} exists; a backup is written to a new file",
                    out.display()
                )));
            }
            Err(e) => {
                return Err(StorageError::Backend(format!("{}: {e}", out.display())));
            }
        }
        // A copy that fails partway is no backup: its file goes, so that the path can be
        // used again and nobody mistakes it for one.
        let copied = self.copy_into(out);
        if copied.is_err()
            && let Err(e) = std::fs::remove_file(out)
        {
            tracing::error!(file = %out.display(), error = %e, "backup: the partial copy could not be removed");
        }
        copied
    }

    /// Copy every table into the new (empty) database file `out`.
    fn copy_into(&self, out: &Path) -> Result<(), StorageError> {
        let src = self.read()?;
        let copy = Builder::new().create(out).bk()?;
        let mut dst = copy.begin_write().bk()?;
        dst.set_durability(Durability::Immediate).bk()?;
        copy_table(&src, &dst, META)?;
        // The copy is whole without the journal (it is read from the latest state), and a
        // journal of its own begins when it is opened.
        journaled::forget_journal(&dst)?;
        copy_table(&src, &dst, ROOMS)?;
        copy_table(&src, &dst, GROUPS)?;
        copy_table(&src, &dst, SNAPSHOTS)?;
        copy_table(&src, &dst, LOG_INDEX)?;
        copy_table(&src, &dst, LOG_BODIES)?;
        copy_table(&src, &dst, OUTBOX)?;
        copy_table(&src, &dst, INBOX)?;
        copy_table(&src, &dst, REQUESTS)?;
        copy_table(&src, &dst, V06)?;
        copy_table(&src, &dst, KEY_PACKAGES)?;
        copy_table(&src, &dst, KEY_PACKAGE_REFS)?;
        copy_table(&src, &dst, USERS)?;
        copy_table(&src, &dst, CLIENTS)?;
        {
            let from = match src.open_multimap_table(DIRECTORY) {
                Ok(t) => Some(t),
                Err(::redb::TableError::TableDoesNotExist(_)) => None,
                Err(e) => return Err(StorageError::Backend(e.to_string())),
            };
            if let Some(from) = from {
                let mut to = dst.open_multimap_table(DIRECTORY).bk()?;
                for item in from.iter().bk()? {
                    let (key, values) = item.bk()?;
                    for value in values {
                        to.insert(key.value(), value.bk()?.value()).bk()?;
                    }
                }
            }
        }
        dst.commit().bk()?;
        Ok(())
    }

    fn read(&self) -> Result<ReadTransaction, StorageError> {
        let db = self.db.get()?;
        let txn = db.begin_read().bk();
        self.db.note(&db, &txn);
        txn
    }

    /// Run `f` in one write transaction of its own, committed durably if it says so,
    /// aborted if it fails or says so.
    fn write<T>(
        &self,
        f: impl FnOnce(&WriteTransaction) -> Result<Finish<T>, StorageError>,
    ) -> Result<T, StorageError> {
        let db = self.db.get()?;
        let result = write_txn(&db, f);
        self.db.note(&db, &result);
        result
    }

    /// Hand `write` to the group-commit writer; if it has stopped, answer `reply` with
    /// the error at once.
    fn enqueue(&self, write: Write, reply: Reply) {
        let queued = Queued { write, reply };
        let refused = match &self.writes {
            Some(writes) => writes.send(queued).err().map(|e| e.0),
            None => Some(queued),
        };
        if let Some(q) = refused {
            q.reply.send(Err(writer_gone()));
        }
    }

    /// Hand `write`, which has nothing to return, to the group writer and wait (on this
    /// blocking thread) until it is committed.
    fn write_and_wait(&self, write: Write) -> Result<(), StorageError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.enqueue(write, Reply::Done(tx));
        rx.recv().unwrap_or_else(|_| Err(writer_gone()))
    }
}

/// Opens the redb file at `path` (created if missing or empty), checked whole.
fn file_opener(path: PathBuf) -> Opener {
    Box::new(move || {
        Builder::new()
            .set_check_integrity_on_open(true)
            .create(&path)
            .bk()
    })
}

/// Create every table (so that reads never meet a missing one) and check the schema
/// version, upgrading a version 1 file.
fn prepare(db: &Database) -> Result<(), StorageError> {
    write_txn(db, |txn| {
        txn.open_table(ROOMS).bk()?;
        txn.open_table(GROUPS).bk()?;
        txn.open_table(SNAPSHOTS).bk()?;
        txn.open_table(LOG_INDEX).bk()?;
        txn.open_table(LOG_BODIES).bk()?;
        txn.open_table(OUTBOX).bk()?;
        txn.open_table(INBOX).bk()?;
        txn.open_table(KEY_PACKAGES).bk()?;
        txn.open_table(KEY_PACKAGE_REFS).bk()?;
        txn.open_table(USERS).bk()?;
        txn.open_multimap_table(DIRECTORY).bk()?;
        txn.open_table(CLIENTS).bk()?;
        txn.open_table(REQUESTS).bk()?;
        // A file written by an earlier build of this schema version has the second index
        // of request keys: its records are no longer needed (`requests` alone answers).
        let dropped_index = txn.delete_table(REQUEST_SEQS).bk()?;
        let mut meta = txn.open_table(META).bk()?;
        let version = meta.get(META_SCHEMA).bk()?.map(|g| g.value());
        match version {
            Some(SCHEMA_VERSION) if dropped_index => Ok(Finish::Commit(())),
            Some(SCHEMA_VERSION) => Ok(Finish::Abort(())),
            Some(old @ (1..=4)) => {
                if old == 1 {
                    move_groups_out_of_rooms(txn)?;
                }
                if old <= 2 {
                    move_queues_to_schema_3(txn)?;
                }
                move_log_to_schema_5(txn)?;
                meta.insert(META_SCHEMA, SCHEMA_VERSION).bk()?;
                Ok(Finish::Commit(()))
            }
            Some(other) => Err(StorageError::Corrupt(format!(
                "schema version {other}; this build reads version {SCHEMA_VERSION}"
            ))),
            None => {
                meta.insert(META_SCHEMA, SCHEMA_VERSION).bk()?;
                Ok(Finish::Commit(()))
            }
        }
    })
}

/// Run `f` in one write transaction, committed durably if it says so, aborted if it fails
/// or says so.
fn write_txn<T>(
    db: &Database,
    f: impl FnOnce(&WriteTransaction) -> Result<Finish<T>, StorageError>,
) -> Result<T, StorageError> {
    let mut txn = db.begin_write().bk()?;
    txn.set_durability(Durability::Immediate).bk()?;
    match f(&txn) {
        Ok(Finish::Commit(value)) => {
            txn.commit().bk()?;
            Ok(value)
        }
        Ok(Finish::Abort(value)) => {
            txn.abort().bk()?;
            Ok(value)
        }
        Err(e) => {
            // The batch's error is the one to report; an abort that fails as well
            // leaves nothing committed either.
            let _ = txn.abort();
            Err(e)
        }
    }
}

/// The group-commit writer: until the queue closes, take every waiting write, commit them
/// together and answer each. With a journal, checkpoint as its [`Checkpoints`] say, and
/// when the queue closes.
fn group_writer(db: &Reopening, queue: &Receiver<Queued>, journal: Option<&Journaled>) {
    // Journaled writes redb has not made durable yet, and when it last did.
    let mut behind = false;
    let mut checkpointed = Instant::now();
    let checkpoint = |journal: &Journaled| match db.get() {
        Ok(handle) => {
            let result = journal.checkpoint(&handle);
            if let Err(e) = &result {
                tracing::error!(error = %e, "storage: checkpoint failed; the journal keeps the writes");
            }
            db.note(&handle, &result);
        }
        Err(e) => {
            tracing::error!(error = %e, "storage: checkpoint failed; the journal keeps the writes")
        }
    };
    loop {
        let first = match journal {
            Some(j) if behind => match queue.recv_timeout(j.checkpoints.idle) {
                Ok(first) => first,
                Err(RecvTimeoutError::Timeout) => {
                    checkpoint(j);
                    behind = false;
                    checkpointed = Instant::now();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            },
            _ => match queue.recv() {
                Ok(first) => first,
                Err(_) => break,
            },
        };
        let mut group = vec![first];
        while group.len() < GROUP_COMMIT_MAX {
            match queue.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        let (writes, replies): (Vec<Write>, Vec<Reply>) =
            group.into_iter().map(|q| (q.write, q.reply)).unzip();
        let results = match db.get() {
            Ok(handle) => {
                let results = commit_group(&handle, journal, &writes);
                for result in &results {
                    db.note(&handle, result);
                }
                results
            }
            Err(e) => writes.iter().map(|_| Err(e.clone())).collect(),
        };
        for (reply, result) in replies.into_iter().zip(results) {
            reply.send(result);
        }
        if let Some(j) = journal {
            behind = true;
            if checkpointed.elapsed() >= j.checkpoints.interval {
                checkpoint(j);
                behind = false;
                checkpointed = Instant::now();
            }
        }
    }
    if let Some(j) = journal
        && behind
    {
        checkpoint(j);
    }
}

/// Commit `writes` in one transaction, falling back to one transaction each if any of them
/// fails after it began writing; one result per write, in order.
fn commit_group(
    db: &Database,
    journal: Option<&Journaled>,
    writes: &[Write],
) -> Vec<Result<Written, StorageError>> {
    let all: Vec<&Write> = writes.iter().collect();
    if all.len() > 1
        && let Ok(results) = commit_writes(db, journal, &all)
    {
        return results;
    }
    all.iter()
        .map(|w| {
            commit_writes(db, journal, &[*w]).and_then(|results| {
                results.into_iter().next().unwrap_or_else(|| {
                    Err(StorageError::Backend("a write without a result".into()))
                })
            })
        })
        .collect()
}

/// Apply `writes` in one transaction, committed (journaled, or durably without a journal)
/// if any of them wrote; one result per write. The outer error: nothing of them was kept.
fn commit_writes(
    db: &Database,
    journal: Option<&Journaled>,
    writes: &[&Write],
) -> Result<Vec<Result<Written, StorageError>>, StorageError> {
    if let Some(journal) = journal {
        return journal.commit(db, writes);
    }
    write_txn(db, |txn| {
        let mut results = Vec::with_capacity(writes.len());
        let mut tables = GroupTables::open(txn)?;
        for write in writes {
            results.push(apply(&mut tables, write)?);
        }
        drop(tables);
        // Committing a transaction in which nothing was written costs a commit for nothing.
        let wrote = results.iter().any(|r| matches!(r, Ok(w) if w.wrote()));
        Ok(if wrote {
            Finish::Commit(results)
        } else {
            Finish::Abort(results)
        })
    })
}

impl Written {
    /// Whether the write changed anything (an acknowledgement is committed even if the
    /// entries were gone: cheap, and it keeps the rule simple).
    fn wrote(&self) -> bool {
        !matches!(self, Written::Commit(CommitOutcome::Duplicate))
    }
}

/// The tables every event's write touches, opened once for a whole group of writes
/// rather than once per write (opening a table looks it up and checks its types, and
/// closing it records its root: issue 13, item 3). While they are open, nothing else in
/// the transaction may open them; the other tables are opened where they are needed.
struct GroupTables<'t> {
    txn: &'t WriteTransaction,
    meta: ::redb::Table<'t, &'static str, u64>,
    rooms: ::redb::Table<'t, &'static str, RoomValue>,
    log_index: ::redb::Table<'t, (&'static str, u64), u64>,
    log_bodies: ::redb::Table<'t, u64, &'static [u8]>,
    /// The id the next log entry's bytes take (read from `log_bodies` when first needed).
    next_body: Option<u64>,
    requests: ::redb::Table<'t, (&'static str, [u8; 32]), u64>,
    outbox: ::redb::Table<'t, (&'static str, u64), QueuedValue>,
    inbox: ::redb::Table<'t, (&'static str, u64), QueuedValue>,
}

impl<'t> GroupTables<'t> {
    fn open(txn: &'t WriteTransaction) -> Result<GroupTables<'t>, StorageError> {
        Ok(GroupTables {
            txn,
            meta: txn.open_table(META).bk()?,
            rooms: txn.open_table(ROOMS).bk()?,
            log_index: txn.open_table(LOG_INDEX).bk()?,
            log_bodies: txn.open_table(LOG_BODIES).bk()?,
            next_body: None,
            requests: txn.open_table(REQUESTS).bk()?,
            outbox: txn.open_table(OUTBOX).bk()?,
            inbox: txn.open_table(INBOX).bk()?,
        })
    }

    /// Store a log entry's bytes under the next id; its id.
    fn append_body(&mut self, entry: &[u8]) -> Result<u64, StorageError> {
        let mut next = match self.next_body {
            Some(next) => next,
            None => match self.log_bodies.last().bk()? {
                Some((last, _)) => last
                    .value()
                    .checked_add(1)
                    .ok_or_else(|| StorageError::Corrupt("log entry ids exhausted".into()))?,
                None => FIRST_ID,
            },
        };
        let id = next_id(&mut next)?;
        self.next_body = Some(next);
        self.log_bodies.insert(id, entry).bk()?;
        Ok(id)
    }
}

/// Apply one write inside a group transaction.
fn apply(tables: &mut GroupTables<'_>, write: &Write) -> Applied {
    match write {
        Write::Commit(batch) => Ok(apply_batch(tables, batch)?.map(Written::Commit)),
        Write::Ack(dest, ids) => {
            for id in ids {
                tables.outbox.remove((dest.as_str(), *id)).bk()?;
            }
            Ok(Ok(Written::Done))
        }
        Write::V06(records) => {
            let mut table = tables.txn.open_table(V06).bk()?;
            for (key, value) in records {
                match value {
                    Some(v) => {
                        table.insert(key.as_slice(), v.as_slice()).bk()?;
                    }
                    None => {
                        table.remove(key.as_slice()).bk()?;
                    }
                }
            }
            Ok(Ok(Written::Done))
        }
    }
}

/// Schema 2 → 3: the outbox and inbox entries move to the tables whose entries may point
/// into the log; each keeps its id or cursor and its bytes.
fn move_queues_to_schema_3(txn: &WriteTransaction) -> Result<(), StorageError> {
    {
        let old = txn.open_table(OLD_OUTBOX).bk()?;
        let mut new = txn.open_table(OUTBOX).bk()?;
        for item in old.iter().bk()? {
            let (key, value) = item.bk()?;
            let (room, seq, message) = value.value();
            new.insert(key.value(), (room, seq, None, message)).bk()?;
        }
    }
    {
        let old = txn.open_table(OLD_INBOX).bk()?;
        let mut new = txn.open_table(INBOX).bk()?;
        for item in old.iter().bk()? {
            let (key, message) = item.bk()?;
            new.insert(key.value(), ("", None, None, message.value()))
                .bk()?;
        }
    }
    txn.delete_table(OLD_OUTBOX).bk()?;
    txn.delete_table(OLD_INBOX).bk()?;
    Ok(())
}

/// Schema 4 → 5: every log entry moves from `log` to `log_bodies` and `log_index`; the
/// ids follow the old table's order (room by room, then by sequence number).
fn move_log_to_schema_5(txn: &WriteTransaction) -> Result<(), StorageError> {
    {
        let old = txn.open_table(OLD_LOG).bk()?;
        let mut index = txn.open_table(LOG_INDEX).bk()?;
        let mut bodies = txn.open_table(LOG_BODIES).bk()?;
        let mut next = FIRST_ID;
        let started = Instant::now();
        for item in old.iter().bk()? {
            let (key, entry) = item.bk()?;
            let id = next_id(&mut next)?;
            bodies.insert(id, entry.value()).bk()?;
            index.insert(key.value(), id).bk()?;
        }
        tracing::info!(
            entries = next - FIRST_ID,
            ms = started.elapsed().as_millis() as u64,
            "storage: moved the log to schema version 5 (log_index and log_bodies)"
        );
    }
    txn.delete_table(OLD_LOG).bk()?;
    Ok(())
}

/// A read transaction's log: its index and its entries' bytes.
struct LogTables {
    index: ::redb::ReadOnlyTable<(&'static str, u64), u64>,
    bodies: ::redb::ReadOnlyTable<u64, &'static [u8]>,
}

impl LogTables {
    fn open(txn: &ReadTransaction) -> Result<LogTables, StorageError> {
        Ok(LogTables {
            index: txn.open_table(LOG_INDEX).bk()?,
            bodies: txn.open_table(LOG_BODIES).bk()?,
        })
    }

    /// The entry `seq` of `room`, if it is logged.
    fn entry(
        &self,
        room: &str,
        seq: u64,
    ) -> Result<Option<::redb::AccessGuard<'_, &'static [u8]>>, StorageError> {
        let Some(id) = self.index.get((room, seq)).bk()?.map(|g| g.value()) else {
            return Ok(None);
        };
        body(&self.bodies, id).map(Some)
    }
}

/// The bytes of the log entry `id`, which the index names: missing, the file is damaged.
fn body<'a>(
    bodies: &'a impl ReadableTable<u64, &'static [u8]>,
    id: u64,
) -> Result<::redb::AccessGuard<'a, &'static [u8]>, StorageError> {
    bodies
        .get(id)
        .bk()?
        .ok_or_else(|| StorageError::Corrupt(format!("log entry {id} is indexed but missing")))
}

/// The bytes a stored outbox or inbox entry delivers, read from the log if it points there.
fn resolve(
    log: &LogTables,
    (room, seq, len, bytes): (&str, Option<u64>, Option<u32>, &[u8]),
) -> Result<Vec<u8>, StorageError> {
    match (len, seq) {
        (None, _) => Ok(bytes.to_vec()),
        (Some(len), Some(seq)) => {
            let entry = log.entry(room, seq)?;
            Ok(super::resolve_logged(entry.as_ref().map(|e| e.value()), len)?.to_vec())
        }
        (Some(_), None) => Err(StorageError::Corrupt(
            "a queued entry points into the log without a sequence number".into(),
        )),
    }
}

/// How a batch's outbox or inbox entry is stored: (prefix length, bytes).
fn stored_payload(payload: &Payload) -> (Option<u32>, &[u8]) {
    match payload {
        Payload::Bytes(b) => (None, b.as_slice()),
        Payload::Logged { len } => (Some(*len), NO_BYTES),
    }
}

/// Schema 1 → 2: every room's group state moves from `rooms` to `groups`.
fn move_groups_out_of_rooms(txn: &WriteTransaction) -> Result<(), StorageError> {
    let mut rooms = txn.open_table(ROOMS).bk()?;
    let mut groups = txn.open_table(GROUPS).bk()?;
    let mut moved = Vec::new();
    for item in rooms.iter().bk()? {
        let (key, value) = item.bk()?;
        let (role, state, group, last_seq) = value.value();
        if let Some(group) = group {
            moved.push((
                key.value().to_owned(),
                role,
                state.to_vec(),
                group.to_vec(),
                last_seq,
            ));
        }
    }
    for (room, role, state, group, last_seq) in &moved {
        groups.insert(room.as_str(), group.as_slice()).bk()?;
        rooms
            .insert(room.as_str(), (*role, state.as_slice(), None, *last_seq))
            .bk()?;
    }
    Ok(())
}

/// Check `batch` against what the transaction holds and, if it passes, write it.
fn apply_batch(
    tables: &mut GroupTables<'_>,
    batch: &Batch,
) -> Result<Result<CommitOutcome, StorageError>, StorageError> {
    let txn = tables.txn;
    // The room's record without its group state (that is in `groups`, read by nobody here).
    let stored = tables
        .rooms
        .get(batch.room.as_str())
        .bk()?
        .map(|g| decode_room(g.value()))
        .transpose()?;
    let stored_last = stored.as_ref().and_then(|r| r.last_seq);
    let current = stored
        .as_ref()
        .map(|r| {
            Ok((
                r.role,
                last_seq_of(&tables.log_index, &batch.room, stored_last)?,
            ))
        })
        .transpose()?;
    match check_batch(current, batch) {
        Err(refused) => return Ok(Err(refused)),
        Ok(Plan::Duplicate) => return Ok(Ok(CommitOutcome::Duplicate)),
        Ok(Plan::Apply) => {}
    }
    let Batch {
        room,
        room_update,
        log,
        outbox,
        inbox,
        snapshot,
        ..
    } = batch;
    let seq = log.as_ref().map(|l| l.seq);
    if let Some(snapshot) = snapshot {
        let mut table = txn.open_table(SNAPSHOTS).bk()?;
        table.insert(room.as_str(), snapshot.as_slice()).bk()?;
    }
    if let Some(update) = room_update {
        // The last sequence number is the log's; a pre-version-4 number is kept (it can
        // only be behind the log's).
        let value = (
            update.role.to_byte(),
            update.state.as_slice(),
            None,
            stored_last,
        );
        tables.rooms.insert(room.as_str(), value).bk()?;
        match &update.group {
            GroupUpdate::Keep => {}
            GroupUpdate::Replace(group) => {
                let mut groups = txn.open_table(GROUPS).bk()?;
                groups.insert(room.as_str(), group.as_slice()).bk()?;
            }
            GroupUpdate::Remove => {
                let mut groups = txn.open_table(GROUPS).bk()?;
                groups.remove(room.as_str()).bk()?;
            }
        }
    }
    // Otherwise nothing about the room's record changes (a room the batch does not create
    // is stored: check_batch refused the batch otherwise).
    if let Some(entry) = log {
        let id = tables.append_body(&entry.entry)?;
        tables
            .log_index
            .insert((room.as_str(), entry.seq), id)
            .bk()?;
        record_request(
            &mut tables.requests,
            room,
            entry.seq,
            batch.request.as_ref(),
        )?;
    }
    let mut outbox_ids = Vec::with_capacity(outbox.len());
    if !outbox.is_empty() {
        let mut next = counter(&tables.meta, META_NEXT_OUTBOX)?;
        for (dest, message) in outbox {
            let id = next_id(&mut next)?;
            let (len, bytes) = stored_payload(message);
            tables
                .outbox
                .insert((dest.as_str(), id), (room.as_str(), seq, len, bytes))
                .bk()?;
            outbox_ids.push(id);
        }
        tables.meta.insert(META_NEXT_OUTBOX, next).bk()?;
    }
    let mut inbox_cursors = Vec::with_capacity(inbox.len());
    if !inbox.is_empty() {
        let mut next = counter(&tables.meta, META_NEXT_INBOX)?;
        for (client, message) in inbox {
            let cursor = next_id(&mut next)?;
            let (len, bytes) = stored_payload(message);
            tables
                .inbox
                .insert((client.as_str(), cursor), (room.as_str(), seq, len, bytes))
                .bk()?;
            inbox_cursors.push(cursor);
        }
        tables.meta.insert(META_NEXT_INBOX, next).bk()?;
    }
    Ok(Ok(CommitOutcome::Committed {
        outbox_ids,
        inbox_cursors,
    }))
}

/// The room's last sequence number: its last `log_index` key, or `stored` (a record written
/// before schema version 4) if that is greater.
fn last_seq_of(
    log: &impl ReadableTable<(&'static str, u64), u64>,
    room: &RoomId,
    stored: Option<u64>,
) -> Result<Option<u64>, StorageError> {
    let logged = log
        .range((room.as_str(), 0)..=(room.as_str(), u64::MAX))
        .bk()?
        .next_back()
        .map(|item| item.bk().map(|(key, _)| key.value().1))
        .transpose()?;
    Ok(logged.max(stored))
}

/// Record the request key of the entry at `seq`; every [`REQUEST_WINDOW`] entries of the
/// room, remove the keys that left the window (reads ignore them before that, so a key is
/// stored for between one and two windows, and each key is one record).
fn record_request(
    requests: &mut ::redb::Table<'_, (&'static str, [u8; 32]), u64>,
    room: &RoomId,
    seq: u64,
    request: Option<&RequestKey>,
) -> Result<(), StorageError> {
    if let Some(key) = request {
        requests.insert((room.as_str(), *key), seq).bk()?;
    }
    if seq >= REQUEST_WINDOW && seq.is_multiple_of(REQUEST_WINDOW) {
        let mut forgotten = Vec::new();
        for item in requests
            .range((room.as_str(), [0u8; 32])..=(room.as_str(), [u8::MAX; 32]))
            .bk()?
        {
            let (k, v) = item.bk()?;
            if !in_window(v.value(), Some(seq)) {
                forgotten.push(k.value().1);
            }
        }
        for key in forgotten {
            requests.remove((room.as_str(), key)).bk()?;
        }
    }
    Ok(())
}

/// Whether the entry `seq` is among the last [`REQUEST_WINDOW`] entries of a log whose last
/// entry is `last`.
fn in_window(seq: u64, last: Option<u64>) -> bool {
    last.is_some_and(|last| seq.saturating_add(REQUEST_WINDOW) > last)
}

impl Storage for RedbStorage {
    /// Reads come from redb's cache of the file (or the OS's page cache).
    fn quick_reads(&self) -> bool {
        true
    }

    fn backup(&self, out: &Path) -> Result<(), StorageError> {
        self.backup_to(out)
    }

    fn request_seq(
        &self,
        room: &RoomId,
        request: &RequestKey,
    ) -> Result<Option<u64>, StorageError> {
        let txn = self.read()?;
        // A file no event was logged in since it was written by an older build has no
        // such table yet.
        let requests = match txn.open_table(REQUESTS) {
            Ok(t) => t,
            Err(::redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e).bk(),
        };
        let Some(seq) = requests
            .get((room.as_str(), *request))
            .bk()?
            .map(|g| g.value())
        else {
            return Ok(None);
        };
        let rooms = txn.open_table(ROOMS).bk()?;
        let stored = rooms.get(room.as_str()).bk()?.and_then(|g| g.value().3);
        let last = last_seq_of(&txn.open_table(LOG_INDEX).bk()?, room, stored)?;
        Ok(in_window(seq, last).then_some(seq))
    }

    fn room(&self, room: &RoomId) -> Result<Option<RoomRecord>, StorageError> {
        let txn = self.read()?;
        let rooms = txn.open_table(ROOMS).bk()?;
        let Some(mut record) = rooms
            .get(room.as_str())
            .bk()?
            .map(|g| decode_room(g.value()))
            .transpose()?
        else {
            return Ok(None);
        };
        let groups = txn.open_table(GROUPS).bk()?;
        record.group = groups.get(room.as_str()).bk()?.map(|g| g.value().to_vec());
        record.last_seq = last_seq_of(&txn.open_table(LOG_INDEX).bk()?, room, record.last_seq)?;
        Ok(Some(record))
    }

    fn room_snapshot(&self, room: &RoomId) -> Result<Option<Vec<u8>>, StorageError> {
        let txn = self.read()?;
        let table = match txn.open_table(SNAPSHOTS) {
            Ok(table) => table,
            // A version 2 file from before snapshots, not written to since it was opened.
            Err(::redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(backend(e)),
        };
        Ok(table.get(room.as_str()).bk()?.map(|g| g.value().to_vec()))
    }

    fn rooms(&self) -> Result<Vec<RoomId>, StorageError> {
        let txn = self.read()?;
        let rooms = txn.open_table(ROOMS).bk()?;
        let mut out = Vec::new();
        for item in rooms.iter().bk()? {
            let (key, _) = item.bk()?;
            out.push(parse_stored(key.value(), "room ID")?);
        }
        Ok(out)
    }

    fn log_range(
        &self,
        room: &RoomId,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<LogEntry>, StorageError> {
        let txn = self.read()?;
        let log = LogTables::open(&txn)?;
        let range = log
            .index
            .range((room.as_str(), from_seq)..=(room.as_str(), u64::MAX))
            .bk()?;
        let mut out = Vec::new();
        for item in range.take(read_limit(limit)) {
            let (key, id) = item.bk()?;
            out.push(LogEntry {
                seq: key.value().1,
                entry: body(&log.bodies, id.value())?.value().to_vec(),
            });
        }
        Ok(out)
    }

    fn commit(&self, batch: Batch) -> Result<CommitOutcome, StorageError> {
        self.submit(batch).wait()
    }

    fn submit(&self, batch: Batch) -> PendingCommit {
        let (tx, rx) = oneshot::channel();
        self.enqueue(Write::Commit(batch), Reply::Commit(tx));
        PendingCommit::queued(rx)
    }

    fn outbox_destinations(&self) -> Result<Vec<ServerName>, StorageError> {
        let txn = self.read()?;
        let outbox = txn.open_table(OUTBOX).bk()?;
        let mut out = Vec::new();
        // Skip from one destination to the next instead of reading every entry.
        let mut next = outbox
            .first()
            .bk()?
            .map(|(key, _)| key.value().0.to_owned());
        while let Some(dest) = next {
            let after = (Bound::Excluded((dest.as_str(), u64::MAX)), Bound::Unbounded);
            next = match outbox.range(after).bk()?.next() {
                Some(item) => Some(item.bk()?.0.value().0.to_owned()),
                None => None,
            };
            out.push(parse_stored(&dest, "server name")?);
        }
        Ok(out)
    }

    fn outbox_after(
        &self,
        dest: &ServerName,
        after: u64,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StorageError> {
        let Some(first) = after.checked_add(1) else {
            return Ok(Vec::new());
        };
        let txn = self.read()?;
        let outbox = txn.open_table(OUTBOX).bk()?;
        let log = LogTables::open(&txn)?;
        let range = outbox
            .range((dest.as_str(), first)..=(dest.as_str(), u64::MAX))
            .bk()?;
        let mut out = Vec::new();
        for item in range.take(read_limit(limit)) {
            let (key, value) = item.bk()?;
            let value = value.value();
            out.push(OutboxEntry {
                id: key.value().1,
                dest: dest.clone(),
                room: parse_stored(value.0, "room ID")?,
                seq: value.1,
                message: resolve(&log, value)?,
            });
        }
        Ok(out)
    }

    fn outbox_ack(&self, dest: &ServerName, ids: &[u64]) -> Result<(), StorageError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.write_and_wait(Write::Ack(dest.clone(), ids.to_vec()))
    }

    fn publish_key_packages(
        &self,
        client: &ClientId,
        packages: Vec<StoredKeyPackage>,
    ) -> Result<(), StorageError> {
        self.write(|txn| {
            if txn
                .open_table(CLIENTS)
                .bk()?
                .get(client.as_str())
                .bk()?
                .is_none()
            {
                return Err(StorageError::UnknownClient(client.clone()));
            }
            let mut kps = txn.open_table(KEY_PACKAGES).bk()?;
            let mut refs = txn.open_table(KEY_PACKAGE_REFS).bk()?;
            for package in &packages {
                if let Some(owner) = refs.get(package.hash_ref.as_slice()).bk()?
                    && owner.value().0 != client.as_str()
                {
                    return Err(StorageError::Conflict(Conflict::KeyPackageRef));
                }
            }
            for package in &packages {
                let old = refs.remove(package.hash_ref.as_slice()).bk()?.map(|g| {
                    let (_, suite, last_resort) = g.value();
                    (suite, last_resort)
                });
                if let Some((suite, last_resort)) = old {
                    // The owner is `client`: checked above.
                    let key = (client.as_str(), suite, last_resort);
                    kps.remove((key.0, key.1, key.2, package.hash_ref.as_slice()))
                        .bk()?;
                }
                if package.last_resort {
                    let mut previous = Vec::new();
                    let from = (client.as_str(), package.cipher_suite, true, NO_BYTES);
                    for item in kps.range(from..).bk()? {
                        let (k, _) = item.bk()?;
                        let (c, s, lr, r) = k.value();
                        if c != client.as_str() || s != package.cipher_suite || !lr {
                            break;
                        }
                        previous.push(r.to_vec());
                    }
                    for r in previous {
                        kps.remove((client.as_str(), package.cipher_suite, true, r.as_slice()))
                            .bk()?;
                        refs.remove(r.as_slice()).bk()?;
                    }
                }
                let key = (
                    client.as_str(),
                    package.cipher_suite,
                    package.last_resort,
                    package.hash_ref.as_slice(),
                );
                kps.insert(key, package.bytes.as_slice()).bk()?;
                refs.insert(
                    package.hash_ref.as_slice(),
                    (client.as_str(), package.cipher_suite, package.last_resort),
                )
                .bk()?;
            }
            Ok(Finish::Commit(()))
        })
    }

    fn claim_key_packages(
        &self,
        user: &UserId,
        clients: &[ClientId],
        cipher_suite: u16,
    ) -> Result<Vec<(ClientId, Vec<u8>)>, StorageError> {
        self.write(|txn| {
            let registered = txn.open_table(CLIENTS).bk()?;
            let candidates: Vec<ClientId> = if clients.is_empty() {
                clients_of(&registered, user)?
            } else {
                let mut out: Vec<ClientId> = Vec::new();
                for c in clients {
                    if c.user() == *user
                        && !out.contains(c)
                        && registered.get(c.as_str()).bk()?.is_some()
                    {
                        out.push(c.clone());
                    }
                }
                out
            };
            let mut kps = txn.open_table(KEY_PACKAGES).bk()?;
            let mut refs = txn.open_table(KEY_PACKAGE_REFS).bk()?;
            let mut claimed = Vec::new();
            let mut changed = false;
            for client in candidates {
                let from = (client.as_str(), cipher_suite, false, NO_BYTES);
                let found = match kps.range(from..).bk()?.next() {
                    Some(item) => {
                        let (k, v) = item.bk()?;
                        let (c, s, last_resort, r) = k.value();
                        (c == client.as_str() && s == cipher_suite)
                            .then(|| (last_resort, r.to_vec(), v.value().to_vec()))
                    }
                    None => None,
                };
                let Some((last_resort, hash_ref, bytes)) = found else {
                    continue;
                };
                if !last_resort {
                    kps.remove((client.as_str(), cipher_suite, false, hash_ref.as_slice()))
                        .bk()?;
                    refs.remove(hash_ref.as_slice()).bk()?;
                    changed = true;
                }
                claimed.push((client, bytes));
            }
            Ok(if changed {
                Finish::Commit(claimed)
            } else {
                Finish::Abort(claimed)
            })
        })
    }

    fn key_package_count(
        &self,
        client: &ClientId,
        cipher_suite: u16,
    ) -> Result<KeyPackageCount, StorageError> {
        let txn = self.read()?;
        let kps = txn.open_table(KEY_PACKAGES).bk()?;
        let mut count = KeyPackageCount::default();
        let from = (client.as_str(), cipher_suite, false, NO_BYTES);
        for item in kps.range(from..).bk()? {
            let (k, _) = item.bk()?;
            let (c, s, last_resort, _) = k.value();
            if c != client.as_str() || s != cipher_suite {
                break;
            }
            if last_resort {
                count.last_resort += 1;
            } else {
                count.one_time += 1;
            }
        }
        Ok(count)
    }

    fn put_user(&self, user: &UserRecord) -> Result<(), StorageError> {
        self.write(|txn| {
            let mut users = txn.open_table(USERS).bk()?;
            let mut directory = txn.open_multimap_table(DIRECTORY).bk()?;
            let id = user.user_id.as_str();
            let new_keys = user.directory_keys();
            for (field, value) in new_keys.iter().filter(|(f, _)| f.is_unique()) {
                for owner in directory.get((field.to_byte(), value.as_str())).bk()? {
                    if owner.bk()?.value() != id {
                        return Err(StorageError::Conflict(Conflict::DirectoryTaken {
                            field: *field,
                        }));
                    }
                }
            }
            let old = users
                .get(id)
                .bk()?
                .map(|g| decode_user(user.user_id.clone(), g.value()));
            if let Some(old) = old {
                for (field, value) in old.directory_keys() {
                    directory
                        .remove((field.to_byte(), value.as_str()), id)
                        .bk()?;
                }
            }
            for (field, value) in &new_keys {
                directory
                    .insert((field.to_byte(), value.as_str()), id)
                    .bk()?;
            }
            let value = (
                user.handle.as_deref(),
                user.email.as_deref(),
                user.phone.as_deref(),
                user.display_name.as_deref(),
            );
            users.insert(id, value).bk()?;
            Ok(Finish::Commit(()))
        })
    }

    fn user(&self, user: &UserId) -> Result<Option<UserRecord>, StorageError> {
        let txn = self.read()?;
        let users = txn.open_table(USERS).bk()?;
        let guard = users.get(user.as_str()).bk()?;
        Ok(guard.map(|g| decode_user(user.clone(), g.value())))
    }

    fn users(&self, after: Option<&UserId>, limit: usize) -> Result<Vec<UserId>, StorageError> {
        let txn = self.read()?;
        let users = txn.open_table(USERS).bk()?;
        let start = match after {
            Some(a) => Bound::Excluded(a.as_str()),
            None => Bound::Unbounded,
        };
        let mut out = Vec::new();
        for item in users
            .range::<&str>((start, Bound::Unbounded))
            .bk()?
            .take(read_limit(limit))
        {
            let (key, _) = item.bk()?;
            out.push(parse_stored(key.value(), "user ID")?);
        }
        Ok(out)
    }

    fn find_users(&self, field: DirectoryField, value: &str) -> Result<Vec<UserId>, StorageError> {
        let value = field.normalize(value);
        if value.is_empty() {
            return Ok(Vec::new());
        }
        let txn = self.read()?;
        let directory = txn.open_multimap_table(DIRECTORY).bk()?;
        let mut out = Vec::new();
        for owner in directory.get((field.to_byte(), value.as_str())).bk()? {
            out.push(parse_stored(owner.bk()?.value(), "user ID")?);
        }
        Ok(out)
    }

    fn put_client(&self, client: &ClientRecord) -> Result<(), StorageError> {
        self.write(|txn| {
            let user = client.client_id.user();
            if txn
                .open_table(USERS)
                .bk()?
                .get(user.as_str())
                .bk()?
                .is_none()
            {
                return Err(StorageError::UnknownUser(user));
            }
            let mut clients = txn.open_table(CLIENTS).bk()?;
            clients
                .insert(client.client_id.as_str(), client.token_hash)
                .bk()?;
            Ok(Finish::Commit(()))
        })
    }

    fn client(&self, client: &ClientId) -> Result<Option<ClientRecord>, StorageError> {
        let txn = self.read()?;
        let clients = txn.open_table(CLIENTS).bk()?;
        let guard = clients.get(client.as_str()).bk()?;
        Ok(guard.map(|g| ClientRecord {
            client_id: client.clone(),
            token_hash: g.value(),
        }))
    }

    fn clients_of(&self, user: &UserId) -> Result<Vec<ClientId>, StorageError> {
        let txn = self.read()?;
        let clients = txn.open_table(CLIENTS).bk()?;
        clients_of(&clients, user)
    }

    fn inbox_read(
        &self,
        client: &ClientId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StorageError> {
        let txn = self.read()?;
        let inbox = txn.open_table(INBOX).bk()?;
        let log = LogTables::open(&txn)?;
        let range = (
            Bound::Excluded((client.as_str(), after)),
            Bound::Included((client.as_str(), u64::MAX)),
        );
        let mut out = Vec::new();
        for item in inbox.range(range).bk()?.take(read_limit(limit)) {
            let (key, value) = item.bk()?;
            out.push((key.value().1, resolve(&log, value.value())?));
        }
        Ok(out)
    }

    fn inbox_trim(&self, client: &ClientId, up_to: u64) -> Result<(), StorageError> {
        self.write(|txn| {
            let mut inbox = txn.open_table(INBOX).bk()?;
            inbox
                .retain_in((client.as_str(), 0)..=(client.as_str(), up_to), |_, _| {
                    false
                })
                .bk()?;
            Ok(Finish::Commit(()))
        })
    }

    fn v06_record(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        let txn = self.read()?;
        let table = match txn.open_table(V06) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e).bk(),
        };
        let guard = table.get(key).bk()?;
        Ok(guard.map(|g| g.value().to_vec()))
    }

    fn put_v06_record(&self, key: &[u8], value: Option<&[u8]>) -> Result<(), StorageError> {
        self.put_v06_records(&[(key.to_vec(), value.map(<[u8]>::to_vec))])
    }

    /// Through the group writer (journaled, with the event path's writes): a -06 message
    /// writes its records with each event.
    fn put_v06_records(&self, records: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<(), StorageError> {
        if records.is_empty() {
            return Ok(());
        }
        self.write_and_wait(Write::V06(records.to_vec()))
    }

    fn v06_records_with_prefix(
        &self,
        prefix: &[u8],
        after: &[u8],
        limit: usize,
    ) -> Result<Vec<V06Record>, StorageError> {
        let start = [prefix, after].concat();
        let txn = self.read()?;
        let table = match txn.open_table(V06) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e).bk(),
        };
        let mut out = Vec::new();
        for entry in table.range(start.as_slice()..).bk()? {
            let (k, v) = entry.bk()?;
            let (k, v) = (k.value(), v.value());
            if !after.is_empty() && k == start.as_slice() {
                continue;
            }
            if !k.starts_with(prefix) || out.len() >= limit {
                break;
            }
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }
}

/// The registered clients of `user`: the keys that start with `user#` (`#` appears in no
/// user ID, so no other user's clients share the prefix).
/// Copy one table of a read snapshot into a write transaction (a table not created yet is
/// not copied).
fn copy_table<K: ::redb::Key + 'static, V: ::redb::Value + 'static>(
    src: &ReadTransaction,
    dst: &WriteTransaction,
    table: TableDefinition<K, V>,
) -> Result<(), StorageError> {
    let from = match src.open_table(table) {
        Ok(t) => t,
        Err(::redb::TableError::TableDoesNotExist(_)) => return Ok(()),
        Err(e) => return Err(StorageError::Backend(e.to_string())),
    };
    let mut to = dst.open_table(table).bk()?;
    for item in from.iter().bk()? {
        let (key, value) = item.bk()?;
        to.insert(key.value(), value.value()).bk()?;
    }
    Ok(())
}

fn clients_of(
    clients: &impl ReadableTable<&'static str, [u8; 32]>,
    user: &UserId,
) -> Result<Vec<ClientId>, StorageError> {
    let prefix = format!("{user}#");
    let mut out = Vec::new();
    for item in clients.range(prefix.as_str()..).bk()? {
        let (key, _) = item.bk()?;
        let key = key.value();
        if !key.starts_with(&prefix) {
            break;
        }
        out.push(parse_stored(key, "client ID")?);
    }
    Ok(out)
}
