//! [`PostgresStorage`]: the storage in a PostgreSQL database, for a provider that outgrows
//! one machine, and for several `mimi-hub` instances sharing one database.
//!
//! ## Client library
//! The synchronous `postgres` crate (the blocking face of `tokio-postgres`, the same
//! protocol implementation) with an `r2d2` pool: the [`Storage`] trait is synchronous and is
//! called from `spawn_blocking` threads, so a blocking client is the natural fit, and no
//! call has to enter an async runtime. `docs/operations.md` gives the full reasons.
//!
//! Each client blocks on a small runtime of its own, which tokio refuses on a thread that
//! drives async tasks: like [`RedbStorage::commit`](super::RedbStorage), every method must
//! be called off the async runtime (the trait's rule). Dropping the storage is safe
//! anywhere: its connections are closed on a thread of their own.
//!
//! ## Schema (version [`SCHEMA_VERSION`])
//! The tables follow the trait, one per kind of record, as redb's do. Identifiers are
//! `text COLLATE "C"` so that PostgreSQL orders them bytewise, as Rust orders strings (the
//! trait promises identifier order). Unsigned numbers (sequence numbers, outbox ids, inbox
//! cursors) are `bigint`: a sequence number above `i64::MAX` cannot be stored and is
//! refused as [`StorageError::SequenceExhausted`]; a read bound above it reads as `i64::MAX`.
//!
//! | table | key | columns |
//! |---|---|---|
//! | `schema_version` | version | applied at |
//! | `rooms` | room | role, state, last seq? |
//! | `group_states` | room | the delivery service's group state |
//! | `room_snapshots` | room | the room's latest signaling snapshot (since version 4) |
//! | `log` | (room, seq) | entry |
//! | `counters` | name | next outbox id / next inbox cursor |
//! | `outbox` | (dest, id) | room, seq?, message? or logged len? (the first bytes of the log entry (room, seq); migration 6) |
//! | `inbox` | (client, cursor) | message? or room, seq and logged len (migration 6) |
//! | `key_packages` | ref | client, suite, last resort, package |
//! | `users` | user | handle?, email?, phone?, display name? |
//! | `directory` | (field, value, user) | (unique per (field, value) for unique fields) |
//! | `clients` | client | user, token hash |
//! | `requests` | (room, key) | seq (the request keys of the room's latest entries) |
//! | `v06_records` | key | value (the second version's records; migration 3) |
//! | `outbox_leases` | dest | holder instance, expiry (migration 5) |
//!
//! Migrations are numbered and applied at start, in one transaction under an advisory lock
//! (so instances starting together do not race); a database whose `schema_version` is
//! newer than this build's is refused.
//!
//! ## Writes
//! Every connection runs with `synchronous_commit = on`: a write is durable (flushed to the
//! server's write-ahead log) when the call returns `Ok`, except a group of outbox
//! acknowledgements only, which sets it `off` for its transaction (rule HUB-STORE-14).
//! [`Storage::commit`] and [`Storage::outbox_ack`] go to one writer thread with its own
//! connection and prepared statements. Like redb's writer it takes every write that is waiting (up to
//! [`GROUP_COMMIT_MAX`]) and commits them in one transaction: one WAL flush for the group.
//! The transaction costs three round trips whatever the group's size: the rows of the
//! group's rooms are locked (`SELECT ... FOR UPDATE`, in name order, so writers elsewhere
//! on the same database are serialised per room); each batch is checked in Rust against
//! the rooms as the batches before it left them (exactly as if each were committed alone,
//! in order; a refused one writes nothing and stops nothing); the ids of the accepted
//! batches' outbox and inbox entries are taken from `counters` in one update; and one
//! statement writes every row, a column array per table. If a write fails before the
//! commit, the transaction is rolled back and each write runs again alone (and once more on
//! a new connection if the old one broke); if the `COMMIT` itself fails, the group's
//! outcome is unknown (the connection may have died after the server committed), so every
//! write of the group is answered with the error and none is run again.
//!
//! ## Several instances
//! [`Storage::shared`] is `true`: the room's row lock and the expected last sequence
//! number serialise a room's events across instances; the writer refuses a room's
//! chained batches after a refused one until [`Storage::reloading`]; outbox leases
//! (`outbox_leases`) name one delivering instance per destination; a write with outbox or
//! inbox entries, and a client's token written, `NOTIFY` the channel `mimi_changes` in
//! their transaction, on which each instance's listener thread (a connection of its own)
//! waits and calls the [`Storage::watch`] hook.
//!
//! The other writes (key packages, users, clients, inbox trimming) run in their own
//! transaction on a pooled connection. Claims of one-time key packages lock the package
//! they take with `FOR UPDATE SKIP LOCKED` and delete it in the same statement, so two
//! concurrent claims never hand out one package twice.

use super::V06Record;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::Duration;

use mimi_codec::{ClientId, RoomId, ServerName, UserId};
use r2d2_postgres::PostgresConnectionManager;
use r2d2_postgres::postgres as pg;
use r2d2_postgres::r2d2;
use tokio::sync::oneshot;

use pg::error::SqlState;
use pg::types::{FromSql, Type};
use pg::{Client, Config, NoTls, Row, Statement, Transaction};

use super::{
    Batch, Change, ChangeHook, ClientRecord, CommitOutcome, Conflict, DirectoryField, GroupUpdate,
    KeyPackageCount, LogEntry, OutboxEntry, Payload, PendingCommit, Plan, REQUEST_WINDOW,
    RequestKey, RoomRecord, RoomRole, Storage, StorageError, StoredKeyPackage, UserRecord,
    check_batch, parse_stored, read_limit, writer_gone,
};

/// The schema this build reads and writes: the number of its last migration.
pub const SCHEMA_VERSION: i32 = 6;

/// The pool size when the configuration names none.
pub const DEFAULT_POOL_SIZE: u32 = 16;

/// The largest pool size the configuration accepts.
pub const MAX_POOL_SIZE: u32 = 1024;

/// How long a read waits for a pooled connection before it fails.
pub const POOL_WAIT: Duration = Duration::from_secs(30);

/// How long opening a connection may take, unless the URL sets `connect_timeout`.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The most writes the writer thread commits in one transaction.
pub const GROUP_COMMIT_MAX: usize = 512;

/// The advisory lock held while migrating ("mimihub1" in ASCII).
const MIGRATION_LOCK: i64 = 0x6d69_6d69_6875_6231;

/// What every connection sets before its first use.
const SESSION: &str = "SET synchronous_commit = on; \
     SET default_transaction_isolation = 'read committed'; \
     SET application_name = 'mimi-hub'";

/// The migrations, in order: (version, SQL). Never edit a released one; add the next.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, SCHEMA_1),
    (2, SCHEMA_2),
    (3, SCHEMA_3_V06),
    (4, SCHEMA_4),
    (5, SCHEMA_5),
    (6, SCHEMA_6),
];

/// Version 6: an outbox or inbox entry may point into the room's log instead of holding a
/// copy of its message ([`Payload::Logged`]): exactly one of `message` and `logged_len`.
const SCHEMA_6: &str = r#"
ALTER TABLE outbox
    ALTER COLUMN message DROP NOT NULL,
    ADD COLUMN logged_len integer CHECK (logged_len >= 0),
    ADD CONSTRAINT outbox_one_payload CHECK (
        (message IS NULL) = (logged_len IS NOT NULL) AND (logged_len IS NULL OR seq IS NOT NULL));
ALTER TABLE inbox
    ALTER COLUMN message DROP NOT NULL,
    ADD COLUMN room text COLLATE "C",
    ADD COLUMN seq bigint,
    ADD COLUMN logged_len integer CHECK (logged_len >= 0),
    ADD CONSTRAINT inbox_one_payload CHECK (
        (message IS NULL) = (logged_len IS NOT NULL)
        AND (logged_len IS NULL OR (room IS NOT NULL AND seq IS NOT NULL)));
"#;

/// Version 5: which instance delivers each destination's outbox entries, until when
/// ([`Storage::outbox_lease`]).
const SCHEMA_5: &str = r#"
CREATE TABLE outbox_leases (
    dest text COLLATE "C" PRIMARY KEY,
    holder text NOT NULL,
    expires timestamptz NOT NULL
);
"#;

/// The channel on which writers announce durable outbox and inbox entries to the other
/// instances (`NOTIFY`, delivered at commit).
const CHANGES_CHANNEL: &str = "mimi_changes";

/// How often the listener thread looks whether the storage is closing.
const LISTEN_TICK: Duration = Duration::from_millis(250);

/// How long the listener waits before it connects again after losing its connection.
const LISTEN_RETRY: Duration = Duration::from_secs(1);

/// Version 2: the request keys of the latest log entries ([`Storage::request_seq`]).
const SCHEMA_2: &str = r#"
CREATE TABLE requests (
    room text COLLATE "C" NOT NULL,
    key bytea NOT NULL,
    seq bigint NOT NULL CHECK (seq >= 0),
    PRIMARY KEY (room, key)
);
CREATE INDEX requests_by_seq ON requests (room, seq);
"#;

/// Version 3: the second version's records (`Storage::v06_record`).
const SCHEMA_3_V06: &str = r#"
CREATE TABLE v06_records (
    key bytea PRIMARY KEY,
    value bytea NOT NULL
);
"#;

/// Version 4: each room's latest signaling snapshot (`Batch::snapshot`), so that loading a
/// room reads a bounded number of events.
const SCHEMA_4: &str = r#"
CREATE TABLE room_snapshots (
    room text COLLATE "C" PRIMARY KEY,
    snapshot bytea NOT NULL
);
"#;

/// Version 1: the tables of the trait as of redb's schema 2.
const SCHEMA_1: &str = r#"
CREATE TABLE rooms (
    room text COLLATE "C" PRIMARY KEY,
    role smallint NOT NULL CHECK (role IN (0, 1)),
    state bytea NOT NULL,
    last_seq bigint CHECK (last_seq >= 0)
);
CREATE TABLE group_states (
    room text COLLATE "C" PRIMARY KEY,
    state bytea NOT NULL
);
CREATE TABLE log (
    room text COLLATE "C" NOT NULL,
    seq bigint NOT NULL CHECK (seq >= 0),
    entry bytea NOT NULL,
    PRIMARY KEY (room, seq)
);
CREATE TABLE counters (
    name text PRIMARY KEY,
    next bigint NOT NULL CHECK (next >= 1)
);
INSERT INTO counters (name, next) VALUES ('outbox', 1), ('inbox', 1);
CREATE TABLE outbox (
    dest text COLLATE "C" NOT NULL,
    id bigint NOT NULL,
    room text COLLATE "C" NOT NULL,
    seq bigint,
    message bytea NOT NULL,
    PRIMARY KEY (dest, id)
);
CREATE TABLE inbox (
    client text COLLATE "C" NOT NULL,
    cursor bigint NOT NULL,
    message bytea NOT NULL,
    PRIMARY KEY (client, cursor)
);
CREATE TABLE users (
    user_id text COLLATE "C" PRIMARY KEY,
    handle text,
    email text,
    phone text,
    display_name text
);
-- field: 1 handle, 2 email, 3 phone (unique), 4 display name (shared).
CREATE TABLE directory (
    field smallint NOT NULL,
    value text COLLATE "C" NOT NULL,
    user_id text COLLATE "C" NOT NULL,
    PRIMARY KEY (field, value, user_id)
);
CREATE UNIQUE INDEX directory_unique_values ON directory (field, value) WHERE field <> 4;
CREATE INDEX directory_by_user ON directory (user_id);
CREATE TABLE clients (
    client_id text COLLATE "C" PRIMARY KEY,
    user_id text COLLATE "C" NOT NULL REFERENCES users (user_id),
    token_hash bytea NOT NULL CHECK (length(token_hash) = 32)
);
CREATE INDEX clients_by_user ON clients (user_id, client_id);
CREATE TABLE key_packages (
    hash_ref bytea PRIMARY KEY,
    client_id text COLLATE "C" NOT NULL,
    cipher_suite integer NOT NULL,
    last_resort boolean NOT NULL,
    package bytea NOT NULL
);
CREATE INDEX key_packages_by_client
    ON key_packages (client_id, cipher_suite, last_resort, hash_ref);
CREATE UNIQUE INDEX key_packages_one_last_resort
    ON key_packages (client_id, cipher_suite) WHERE last_resort;
"#;

/// The unique index of key package references.
const KEY_PACKAGE_REF_KEY: &str = "key_packages_pkey";

type Pool = r2d2::Pool<PostgresConnectionManager<NoTls>>;

/// Storage in a PostgreSQL database. Cloning is not offered: share it behind an `Arc`.
pub struct PostgresStorage {
    /// `None` only while dropping.
    pool: Option<Pool>,
    /// The writer's queue (`None` only while dropping); unbounded for the reason given on
    /// [`RedbStorage`](super::RedbStorage).
    writes: Option<Sender<Queued>>,
    writer: Option<JoinHandle<()>>,
    /// Whether [`PostgresStorage::connect`] created the schema.
    created: bool,
    /// This process's name among the instances sharing the database: the holder of its
    /// outbox leases, and the sender of its change notifications.
    instance: String,
    config: Config,
    /// The thread listening for the other instances' changes ([`Storage::watch`]).
    listener: std::sync::Mutex<Option<(Arc<AtomicBool>, JoinHandle<()>)>>,
}

impl std::fmt::Debug for PostgresStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the URL: it may hold a password.
        f.debug_struct("PostgresStorage").finish_non_exhaustive()
    }
}

impl Drop for PostgresStorage {
    fn drop(&mut self) {
        let listener = self
            .listener
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some((stop, thread)) = listener {
            stop.store(true, Ordering::SeqCst);
            // The hook may hold the last handle of the storage's owner, and drop it on the
            // listener thread itself, which ends by itself once it sees `stop`.
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
        // Closing the queue ends the writer once it has answered what it holds.
        self.writes = None;
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
        // A client closes its connection by blocking on its own runtime, which panics on a
        // thread that drives async tasks; the last handle of the storage may be dropped on
        // one, so the pool's connections are closed on a thread of their own.
        if let Some(pool) = self.pool.take() {
            let closing = std::thread::Builder::new()
                .name("postgres-close".into())
                .spawn(move || drop(pool));
            if let Ok(closing) = closing {
                let _ = closing.join();
            }
        }
    }
}

/// A write for the writer thread.
enum Write {
    /// A batch, and whether it is chained ([`Storage::submit_chained`]).
    Commit(Batch, bool),
    Ack(ServerName, Vec<u64>),
    /// The room is being read again: its writes submitted from now on are not refused as
    /// [`Conflict::Superseded`] ([`Storage::reloading`]).
    Reload(RoomId),
}

/// What a [`Write`] returns.
enum Written {
    Commit(CommitOutcome),
    Ack,
    Nothing,
}

impl Written {
    /// Whether the write changed anything.
    fn wrote(&self) -> bool {
        !matches!(
            self,
            Written::Commit(CommitOutcome::Duplicate) | Written::Nothing
        )
    }
}

/// Where a write's result goes.
enum Reply {
    Commit(oneshot::Sender<Result<CommitOutcome, StorageError>>),
    Ack(oneshot::Sender<Result<(), StorageError>>),
    Nothing,
}

impl Reply {
    /// Answer the caller (one that stopped waiting does not need its answer).
    fn send(self, result: Result<Written, StorageError>) {
        match self {
            Reply::Commit(tx) => {
                let _ = tx.send(result.and_then(|written| match written {
                    Written::Commit(outcome) => Ok(outcome),
                    Written::Ack | Written::Nothing => Err(StorageError::Backend(
                        "invariant: a commit answered as another write".into(),
                    )),
                }));
            }
            Reply::Ack(tx) => {
                let _ = tx.send(result.map(|_| ()));
            }
            Reply::Nothing => {}
        }
    }
}

/// A write and where its result goes.
struct Queued {
    write: Write,
    reply: Reply,
}

/// A PostgreSQL error as text, with its causes (the server's message is one of them).
fn backend(e: pg::Error) -> StorageError {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    StorageError::Backend(text)
}

/// Whether `e` is a violation of a unique key, and of which constraint.
fn unique_violation(e: &pg::Error) -> Option<&str> {
    match e.as_db_error() {
        Some(db) if *db.code() == SqlState::UNIQUE_VIOLATION => Some(db.constraint().unwrap_or("")),
        _ => None,
    }
}

/// How a batch's outbox or inbox entry is stored: (message, logged length), one of them.
fn stored_payload(payload: &Payload) -> Result<(Option<&[u8]>, Option<i32>), StorageError> {
    Ok(match payload {
        Payload::Bytes(b) => (Some(b.as_slice()), None),
        Payload::Logged { len } => {
            (
                None,
                Some(i32::try_from(*len).map_err(|_| {
                    StorageError::Invalid(format!("a logged length of {len} bytes"))
                })?),
            )
        }
    })
}

/// The message of a queued entry read with its columns (message, logged len, the log
/// entry's prefix) from `first` on: the message, or the prefix of the log entry it points
/// into (which must be there, and that long).
fn resolved(row: &Row, first: usize) -> Result<Vec<u8>, StorageError> {
    let message: Option<Vec<u8>> = col(row, first)?;
    let len: Option<i32> = col(row, first + 1)?;
    let prefix: Option<Vec<u8>> = col(row, first + 2)?;
    match (message, len) {
        (Some(message), None) => Ok(message),
        (None, Some(len)) => {
            let len =
                u32::try_from(len).map_err(|_| StorageError::Corrupt("logged length".into()))?;
            super::resolve_logged(prefix.as_deref(), len).map(<[u8]>::to_vec)
        }
        _ => Err(StorageError::Corrupt(
            "a queued entry has both or neither of a message and a logged length".into(),
        )),
    }
}

/// A column of `row`, a type mismatch being corruption.
fn col<'a, T: FromSql<'a>>(row: &'a Row, idx: usize) -> Result<T, StorageError> {
    row.try_get(idx)
        .map_err(|e| StorageError::Corrupt(format!("column {idx}: {e}")))
}

/// A stored unsigned number.
fn unsigned(n: i64, what: &str) -> Result<u64, StorageError> {
    u64::try_from(n).map_err(|_| StorageError::Corrupt(format!("stored {what} {n} is negative")))
}

/// A read bound as a `bigint`: nothing stored is above `i64::MAX`.
fn bound(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A read limit as a `bigint`.
fn limit_of(limit: usize) -> i64 {
    i64::try_from(read_limit(limit)).unwrap_or(i64::MAX)
}

/// Check that `url` is a PostgreSQL connection string this backend can use (a URL
/// `postgresql://user:password@host:port/database?...` or `key=value` pairs).
pub fn check_url(url: &str) -> Result<(), String> {
    url.parse::<Config>().map(|_| ()).map_err(|e| e.to_string())
}

/// Whether `client`'s connection is broken: known closed, or not answering an empty query.
/// Only asked after an error, so it costs nothing on the way of a success.
fn lost(client: &mut Client) -> bool {
    client.is_closed() || client.simple_query("").is_err()
}

/// Open a connection and prepare its session.
fn connect(config: &Config) -> Result<Client, StorageError> {
    let mut client = config.connect(NoTls).map_err(backend)?;
    client.batch_execute(SESSION).map_err(backend)?;
    Ok(client)
}

/// Prepares every pooled connection's session.
#[derive(Debug)]
struct Session;

impl r2d2::CustomizeConnection<Client, pg::Error> for Session {
    fn on_acquire(&self, conn: &mut Client) -> Result<(), pg::Error> {
        conn.batch_execute(SESSION)
    }
}

/// Bring the database to [`SCHEMA_VERSION`], or refuse a newer one; `true` when the
/// database had no schema yet (this call created it).
fn migrate(client: &mut Client) -> Result<bool, StorageError> {
    let mut txn = client.transaction().map_err(backend)?;
    txn.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(backend)?;
    txn.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_version (
             version integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .map_err(backend)?;
    let row = txn
        .query_one("SELECT max(version) FROM schema_version", &[])
        .map_err(backend)?;
    let current: Option<i32> = col(&row, 0)?;
    let current = current.unwrap_or(0);
    if current > SCHEMA_VERSION {
        return Err(StorageError::Corrupt(format!(
            "schema version {current}; this build reads versions up to {SCHEMA_VERSION}"
        )));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        txn.batch_execute(sql).map_err(backend)?;
        txn.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[version],
        )
        .map_err(backend)?;
    }
    txn.commit().map_err(backend)?;
    Ok(current == 0)
}

impl PostgresStorage {
    /// Connect to the database at `url` (see [`check_url`]) with a pool of `pool_size`
    /// connections for reads and other writes (and one more for the writer thread),
    /// applying the migrations it lacks. A database of a newer schema is refused.
    pub fn connect(url: &str, pool_size: u32) -> Result<Self, StorageError> {
        let mut config: Config = url
            .parse()
            .map_err(|e| StorageError::Backend(format!("invalid PostgreSQL URL: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let mut client = connect(&config)?;
        let created = migrate(&mut client)?;
        let statements = Statements::prepare(&mut client)?;
        let pool = r2d2::Pool::builder()
            .max_size(pool_size.max(1))
            .min_idle(Some(1))
            .connection_timeout(POOL_WAIT)
            .test_on_check_out(false)
            .connection_customizer(Box::new(Session))
            .build(PostgresConnectionManager::new(config.clone(), NoTls))
            .map_err(|e| StorageError::Backend(format!("connection pool: {e}")))?;
        let (writes, queue) = channel();
        let instance = format!("{}-{:016x}", std::process::id(), rand::random::<u64>());
        let mut writer = Writer {
            config: config.clone(),
            conn: Some((client, statements)),
            fenced: HashSet::new(),
            instance: instance.clone(),
        };
        let writer = std::thread::Builder::new()
            .name("postgres-group-commit".into())
            .spawn(move || group_writer(&mut writer, &queue))
            .map_err(|e| StorageError::Backend(format!("cannot start the writer thread: {e}")))?;
        Ok(PostgresStorage {
            pool: Some(pool),
            writes: Some(writes),
            writer: Some(writer),
            created,
            instance,
            config,
            listener: std::sync::Mutex::new(None),
        })
    }

    /// This process's name among the instances sharing the database (the holder of its
    /// outbox leases).
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Whether this connection created the schema: the database held no provider before.
    pub fn created(&self) -> bool {
        self.created
    }

    /// A pooled connection.
    fn conn(
        &self,
    ) -> Result<r2d2::PooledConnection<PostgresConnectionManager<NoTls>>, StorageError> {
        match &self.pool {
            Some(pool) => pool
                .get()
                .map_err(|e| StorageError::Backend(format!("no database connection: {e}"))),
            None => Err(StorageError::Backend("the storage is closing".into())),
        }
    }

    /// A pooled connection that answers, after one was found broken: the others opened at
    /// the same time are likely broken too. The pool drops a broken connection when it
    /// comes back, so after at most the pool's size of them a new one is opened.
    fn working_conn(
        &self,
    ) -> Result<r2d2::PooledConnection<PostgresConnectionManager<NoTls>>, StorageError> {
        let tries = self.pool.as_ref().map_or(0, |p| p.max_size());
        for _ in 0..=tries {
            let mut conn = self.conn()?;
            if !lost(&mut conn) {
                return Ok(conn);
            }
        }
        Err(StorageError::Backend(
            "no pooled database connection answers".into(),
        ))
    }

    /// Run `f` on a pooled connection. If it fails and the connection turns out to be
    /// broken (the server restarted, or ended the session), run it once more on another:
    /// `f` must be a read or a write that can be repeated.
    fn read<T>(
        &self,
        f: impl Fn(&mut Client) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let mut conn = self.conn()?;
        match f(&mut conn) {
            Err(e) if lost(&mut conn) => {
                tracing::warn!(error = %e, "a database connection broke; trying another");
                drop(conn);
                f(&mut *self.working_conn()?)
            }
            other => other,
        }
    }

    /// Run `f` in a transaction of its own on a pooled connection: committed if it returns
    /// `Ok`, rolled back otherwise. A connection found broken before the commit is replaced
    /// and `f` run once more (nothing of the first attempt was written).
    fn transaction<T>(
        &self,
        f: impl Fn(&mut Transaction<'_>) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let attempt = |conn: &mut Client| -> Result<Result<T, StorageError>, StorageError> {
            let mut txn = conn.transaction().map_err(backend)?;
            let value = f(&mut txn)?;
            // The outer error: the commit failed, and whether it happened is unknown.
            Ok(txn.commit().map_err(backend).map(|()| value))
        };
        let mut conn = self.conn()?;
        let first = match attempt(&mut conn) {
            Err(e) if lost(&mut conn) => e,
            Ok(result) => return result,
            Err(e) => return Err(e),
        };
        tracing::warn!(error = %first, "a database connection broke; trying another");
        drop(conn);
        attempt(&mut *self.working_conn()?).and_then(|result| result)
    }

    /// [`Storage::put_user`], or with `create_only` [`Storage::create_user`] (`false`: the
    /// user was stored already, and nothing was written).
    fn write_user(&self, user: &UserRecord, create_only: bool) -> Result<bool, StorageError> {
        let id = user.user_id.as_str();
        let keys = user.directory_keys();
        self.transaction(|txn| {
            // Created first: a concurrent creation of the same user waits for this
            // transaction, then finds the row and writes nothing.
            if create_only {
                let created = txn
                    .query_typed_opt(
                        "INSERT INTO users (user_id, handle, email, phone, display_name)
                         VALUES ($1, $2, $3, $4, $5)
                         ON CONFLICT (user_id) DO NOTHING RETURNING 1",
                        &[
                            (&id, Type::TEXT),
                            (&user.handle.as_deref(), Type::TEXT),
                            (&user.email.as_deref(), Type::TEXT),
                            (&user.phone.as_deref(), Type::TEXT),
                            (&user.display_name.as_deref(), Type::TEXT),
                        ],
                    )
                    .map_err(backend)?;
                if created.is_none() {
                    return Ok(false);
                }
            }
            for (field, value) in keys.iter().filter(|(f, _)| f.is_unique()) {
                let taken = txn
                    .query_typed_opt(
                        "SELECT 1 FROM directory WHERE field = $1 AND value = $2 AND user_id <> $3",
                        &[
                            (&i16::from(field.to_byte()), Type::INT2),
                            (&value.as_str(), Type::TEXT),
                            (&id, Type::TEXT),
                        ],
                    )
                    .map_err(backend)?;
                if taken.is_some() {
                    return Err(StorageError::Conflict(Conflict::DirectoryTaken {
                        field: *field,
                    }));
                }
            }
            txn.execute_typed(
                "DELETE FROM directory WHERE user_id = $1",
                &[(&id, Type::TEXT)],
            )
            .map_err(backend)?;
            for (field, value) in &keys {
                let inserted = txn.execute_typed(
                    "INSERT INTO directory (field, value, user_id) VALUES ($1, $2, $3)",
                    &[
                        (&i16::from(field.to_byte()), Type::INT2),
                        (&value.as_str(), Type::TEXT),
                        (&id, Type::TEXT),
                    ],
                );
                match inserted {
                    Ok(_) => {}
                    // Another user took the value concurrently.
                    Err(e) if unique_violation(&e).is_some() => {
                        return Err(StorageError::Conflict(Conflict::DirectoryTaken {
                            field: *field,
                        }));
                    }
                    Err(e) => return Err(backend(e)),
                }
            }
            txn.execute_typed(
                "INSERT INTO users (user_id, handle, email, phone, display_name)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (user_id) DO UPDATE SET handle = excluded.handle,
                     email = excluded.email, phone = excluded.phone,
                     display_name = excluded.display_name",
                &[
                    (&id, Type::TEXT),
                    (&user.handle.as_deref(), Type::TEXT),
                    (&user.email.as_deref(), Type::TEXT),
                    (&user.phone.as_deref(), Type::TEXT),
                    (&user.display_name.as_deref(), Type::TEXT),
                ],
            )
            .map_err(backend)?;
            Ok(true)
        })
    }

    /// Hand `write` to the writer; if it has stopped, answer `reply` with the error at once.
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
}

/// The writer's prepared statements: a group of writes costs three round trips (lock the
/// rooms, take the ids, write everything) besides `BEGIN` and `COMMIT`, however many
/// events it holds.
struct Statements {
    lock_rooms: Statement,
    take_ids: Statement,
    write_group: Statement,
}

impl Statements {
    fn prepare(client: &mut Client) -> Result<Self, StorageError> {
        let mut prepare = |sql: &str| client.prepare(sql).map_err(backend);
        Ok(Statements {
            // In name order, so that writers elsewhere lock in the same order.
            lock_rooms: prepare(
                "SELECT room, role, last_seq FROM rooms WHERE room = ANY($1::text[])
                 ORDER BY room FOR UPDATE",
            )?,
            // The first of `$1` outbox ids and of `$2` inbox cursors.
            take_ids: prepare(
                "UPDATE counters
                 SET next = next + CASE name WHEN 'outbox' THEN $1::bigint ELSE $2::bigint END
                 WHERE name IN ('outbox', 'inbox')
                 RETURNING name, next - CASE name WHEN 'outbox' THEN $1::bigint ELSE $2::bigint END",
            )?,
            // Every row the group writes, one array per column. The parts touch disjoint
            // rows (one row per room, per group state; acknowledged entries are old ones),
            // as statements sharing one snapshot must.
            write_group: prepare(
                "WITH put_rooms AS (
                     INSERT INTO rooms (room, role, state, last_seq)
                     SELECT * FROM unnest($1::text[], $2::int2[], $3::bytea[], $4::int8[])
                     ON CONFLICT (room) DO UPDATE SET role = excluded.role,
                         state = excluded.state, last_seq = excluded.last_seq
                 ), advance_rooms AS (
                     UPDATE rooms SET last_seq = u.last
                     FROM unnest($5::text[], $6::int8[]) AS u(room, last)
                     WHERE rooms.room = u.room
                 ), put_groups AS (
                     INSERT INTO group_states (room, state)
                     SELECT * FROM unnest($7::text[], $8::bytea[])
                     ON CONFLICT (room) DO UPDATE SET state = excluded.state
                 ), remove_groups AS (
                     DELETE FROM group_states WHERE room = ANY($9::text[])
                 ), append_log AS (
                     INSERT INTO log (room, seq, entry)
                     SELECT * FROM unnest($10::text[], $11::int8[], $12::bytea[])
                 ), queue_outbox AS (
                     INSERT INTO outbox (dest, id, room, seq, message, logged_len)
                     SELECT * FROM unnest($13::text[], $14::int8[], $15::text[], $16::int8[],
                                          $17::bytea[], $31::int4[])
                 ), queue_inbox AS (
                     INSERT INTO inbox (client, cursor, message, room, seq, logged_len)
                     SELECT * FROM unnest($18::text[], $19::int8[], $20::bytea[], $32::text[],
                                          $33::int8[], $34::int4[])
                 ), ack AS (
                     DELETE FROM outbox o USING unnest($21::text[], $22::int8[]) AS a(dest, id)
                     WHERE o.dest = a.dest AND o.id = a.id
                 ), record_requests AS (
                     INSERT INTO requests (room, key, seq)
                     SELECT * FROM unnest($23::text[], $24::bytea[], $25::int8[])
                     ON CONFLICT (room, key) DO NOTHING
                 ), forget_requests AS (
                     DELETE FROM requests r USING unnest($26::text[], $27::int8[]) AS f(room, below)
                     WHERE r.room = f.room AND r.seq < f.below
                 ), put_snapshots AS (
                     INSERT INTO room_snapshots (room, snapshot)
                     SELECT * FROM unnest($28::text[], $29::bytea[])
                     ON CONFLICT (room) DO UPDATE SET snapshot = excluded.snapshot
                 )
                 SELECT count(pg_notify('mimi_changes', n)) FROM unnest($30::text[]) AS n",
            )?,
        })
    }
}

/// The writer thread's connection, opened again after it breaks.
struct Writer {
    config: Config,
    conn: Option<(Client, Statements)>,
    /// The rooms one of whose chained writes ([`Storage::submit_chained`]) was refused (or whose commit's outcome is unknown):
    /// their later writes are refused as [`Conflict::Superseded`] until a
    /// [`Write::Reload`]. Another instance may have moved such a room on, and a write this
    /// process submitted on top of the refused one would pass the sequence check on the
    /// other instance's entry and fork the room's history.
    fenced: HashSet<String>,
    /// The instance's name, in its change notifications.
    instance: String,
}

impl Writer {
    /// Whether the connection is broken (or was never opened again).
    fn lost(&mut self) -> bool {
        self.conn.as_mut().is_none_or(|(client, _)| lost(client))
    }

    fn connection(&mut self) -> Result<(&mut Client, &Statements), StorageError> {
        if matches!(&self.conn, Some((client, _)) if client.is_closed()) {
            self.conn = None;
        }
        if self.conn.is_none() {
            let mut client = connect(&self.config)?;
            let statements = Statements::prepare(&mut client)?;
            self.conn = Some((client, statements));
        }
        match &mut self.conn {
            Some((client, statements)) => Ok((client, statements)),
            None => Err(StorageError::Backend(
                "invariant: the writer's connection was just opened".into(),
            )),
        }
    }
}

/// The writer: until the queue closes, take every waiting write, commit them together and
/// answer each.
fn group_writer(writer: &mut Writer, queue: &Receiver<Queued>) {
    while let Ok(first) = queue.recv() {
        let mut group = vec![first];
        while group.len() < GROUP_COMMIT_MAX {
            match queue.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        let (writes, replies): (Vec<Write>, Vec<Reply>) =
            group.into_iter().map(|q| (q.write, q.reply)).unzip();
        let results = commit_group(writer, &writes);
        for (reply, result) in replies.into_iter().zip(results) {
            reply.send(result);
        }
    }
}

/// Why a group transaction did not commit.
enum GroupFailure {
    /// Before the commit: nothing was written; each write may run again alone.
    BeforeCommit,
    /// The commit failed: whether it happened is unknown.
    Commit(StorageError),
}

/// Commit `writes` in one transaction, falling back to one transaction each if any of them
/// fails before the commit; one result per write, in order.
fn commit_group(writer: &mut Writer, writes: &[Write]) -> Vec<Result<Written, StorageError>> {
    if writes.len() > 1 {
        match run_group(writer, writes) {
            Ok(results) => return results,
            Err(GroupFailure::Commit(e)) => {
                fence_all(writer, writes);
                return writes.iter().map(|_| Err(e.clone())).collect();
            }
            Err(GroupFailure::BeforeCommit) => {}
        }
    }
    writes.iter().map(|w| run_one(writer, w)).collect()
}

/// After a commit whose outcome is unknown: fence every room it logged an event of.
fn fence_all(writer: &mut Writer, writes: &[Write]) {
    for write in writes {
        if let Write::Commit(batch, true) = write
            && batch.log.is_some()
        {
            writer.fenced.insert(batch.room.as_str().to_owned());
        }
    }
}

fn run_group(
    writer: &mut Writer,
    writes: &[Write],
) -> Result<Vec<Result<Written, StorageError>>, GroupFailure> {
    // The fences as the group leaves them; kept only if the group commits.
    let mut fenced = writer.fenced.clone();
    let instance = writer.instance.clone();
    let (client, statements) = writer
        .connection()
        .map_err(|_| GroupFailure::BeforeCommit)?;
    let mut txn = client
        .transaction()
        .map_err(|_| GroupFailure::BeforeCommit)?;
    sync_later_if_acks_only(&mut txn, writes).map_err(|_| GroupFailure::BeforeCommit)?;
    // An error drops the transaction, which rolls it back.
    let results = apply_writes(&mut txn, statements, writes, &mut fenced, &instance)
        .map_err(|_| GroupFailure::BeforeCommit)?;
    if results.iter().any(|r| matches!(r, Ok(w) if w.wrote())) {
        txn.commit().map_err(|e| GroupFailure::Commit(backend(e)))?;
    } else {
        // Committing a group in which nothing was written costs a commit for nothing.
        let _ = txn.rollback();
    }
    writer.fenced = fenced;
    Ok(results)
}

/// A transaction of outbox acknowledgements only commits without waiting for its WAL
/// flush (rule HUB-STORE-14, [`Storage::outbox_ack`]): the WAL writer flushes it within
/// `wal_writer_delay`s, and any later synchronous commit flushes it with its own, as the
/// WAL is written in order.
fn sync_later_if_acks_only(
    txn: &mut Transaction<'_>,
    writes: &[Write],
) -> Result<(), StorageError> {
    if writes.iter().all(|w| matches!(w, Write::Ack(..))) {
        txn.batch_execute("SET LOCAL synchronous_commit = off")
            .map_err(backend)?;
    }
    Ok(())
}

/// One write in its own transaction. A connection found broken before the commit (the
/// server restarted, or ended the session) is opened again and the write tried once more:
/// nothing of it was written.
fn run_one(writer: &mut Writer, write: &Write) -> Result<Written, StorageError> {
    match try_one(writer, write) {
        Ok(result) => result,
        Err(Attempt::BeforeCommit(e)) if writer.lost() => {
            tracing::warn!(error = %e, "the database connection broke; writing again");
            try_one(writer, write).unwrap_or_else(|a| Err(a.into_error()))
        }
        Err(a) => Err(a.into_error()),
    }
}

/// How one attempt at a write failed.
enum Attempt {
    /// Before the commit: nothing was written.
    BeforeCommit(StorageError),
    /// The commit failed: whether it happened is unknown.
    Commit(StorageError),
}

impl Attempt {
    fn into_error(self) -> StorageError {
        match self {
            Attempt::BeforeCommit(e) | Attempt::Commit(e) => e,
        }
    }
}

/// One attempt: the write's own result (a refusal included), or how the attempt failed.
fn try_one(writer: &mut Writer, write: &Write) -> Result<Result<Written, StorageError>, Attempt> {
    let mut fenced = writer.fenced.clone();
    let instance = writer.instance.clone();
    let (client, statements) = writer.connection().map_err(Attempt::BeforeCommit)?;
    let mut txn = client
        .transaction()
        .map_err(|e| Attempt::BeforeCommit(backend(e)))?;
    sync_later_if_acks_only(&mut txn, std::slice::from_ref(write))
        .map_err(Attempt::BeforeCommit)?;
    let result = apply_writes(
        &mut txn,
        statements,
        std::slice::from_ref(write),
        &mut fenced,
        &instance,
    )
    .map_err(Attempt::BeforeCommit)?
    .pop()
    .unwrap_or_else(|| {
        Err(StorageError::Backend(
            "invariant: one write, one result".into(),
        ))
    });
    match &result {
        Ok(w) if w.wrote() => {
            if let Err(e) = txn.commit() {
                fence_all(writer, std::slice::from_ref(write));
                return Err(Attempt::Commit(backend(e)));
            }
        }
        // A refusal or a duplicate wrote nothing: its answer stands whatever the rollback.
        _ => {
            let _ = txn.rollback();
        }
    }
    writer.fenced = fenced;
    Ok(result)
}

/// What the group does to one room's row: its last record (if a batch replaced it) and
/// its last sequence number.
struct RoomWrite<'a> {
    record: Option<(RoomRole, &'a [u8])>,
    last: Option<i64>,
}

/// What one write of a group comes to, before the ids are known.
enum Planned {
    Refused(StorageError),
    Duplicate,
    Committed { outbox: usize, inbox: usize },
    Ack,
    Nothing,
}

/// Apply `writes` inside the writer's transaction: each batch checked against the rooms
/// as the batches before it in the group left them (exactly as if each were committed
/// alone, in order), then everything the accepted ones write in one statement. One result
/// per write (a refusal wrote nothing); the outer error means the transaction is unusable.
fn apply_writes(
    txn: &mut Transaction<'_>,
    s: &Statements,
    writes: &[Write],
    fenced: &mut HashSet<String>,
    instance: &str,
) -> Result<Vec<Result<Written, StorageError>>, StorageError> {
    let mut names: Vec<&str> = writes
        .iter()
        .filter_map(|w| match w {
            Write::Commit(batch, _) => Some(batch.room.as_str()),
            Write::Ack(..) | Write::Reload(_) => None,
        })
        .collect();
    names.sort_unstable();
    names.dedup();
    // Each room's role and last sequence number, as the group goes on.
    let mut current: HashMap<String, (RoomRole, Option<u64>)> = HashMap::new();
    if !names.is_empty() {
        for row in txn.query(&s.lock_rooms, &[&names]).map_err(backend)? {
            let role: i16 = col(&row, 1)?;
            let role = u8::try_from(role)
                .map_err(|_| StorageError::Corrupt(format!("room role {role}")))
                .and_then(RoomRole::from_byte)?;
            let last: Option<i64> = col(&row, 2)?;
            let last = last.map(|l| unsigned(l, "sequence number")).transpose()?;
            current.insert(col::<String>(&row, 0)?, (role, last));
        }
    }

    let mut rooms: BTreeMap<&str, RoomWrite<'_>> = BTreeMap::new();
    let mut groups: BTreeMap<&str, Option<&[u8]>> = BTreeMap::new();
    // The latest snapshot of each room in the group (one row per room per statement).
    let mut snapshots: BTreeMap<&str, &[u8]> = BTreeMap::new();
    let (mut log_rooms, mut log_seqs, mut log_entries) = (Vec::new(), Vec::new(), Vec::new());
    let (mut out_dests, mut out_rooms, mut out_seqs, mut out_messages) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut in_clients, mut in_messages) = (Vec::new(), Vec::new());
    let (mut out_lens, mut in_rooms, mut in_seqs, mut in_lens) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut ack_dests, mut ack_ids) = (Vec::new(), Vec::new());
    let (mut req_rooms, mut req_keys, mut req_seqs) = (Vec::new(), Vec::new(), Vec::new());
    let (mut forget_rooms, mut forget_below) = (Vec::new(), Vec::new());
    let mut planned = Vec::with_capacity(writes.len());
    for write in writes {
        let (batch, chained) = match write {
            Write::Commit(batch, chained) => (batch, *chained),
            Write::Ack(dest, ids) => {
                // An id beyond a bigint was never stored.
                for id in ids.iter().filter_map(|id| i64::try_from(*id).ok()) {
                    ack_dests.push(dest.as_str());
                    ack_ids.push(id);
                }
                planned.push(Planned::Ack);
                continue;
            }
            Write::Reload(room) => {
                fenced.remove(room.as_str());
                planned.push(Planned::Nothing);
                continue;
            }
        };
        let room = batch.room.as_str();
        let stored = current.get(room).copied();
        if chained && batch.log.is_some() && fenced.contains(room) {
            planned.push(Planned::Refused(StorageError::Conflict(
                Conflict::Superseded,
            )));
            continue;
        }
        match check_batch(stored, batch) {
            Err(refused) => {
                if chained && batch.log.is_some() {
                    fenced.insert(room.to_owned());
                }
                planned.push(Planned::Refused(refused));
                continue;
            }
            Ok(Plan::Duplicate) => {
                planned.push(Planned::Duplicate);
                continue;
            }
            Ok(Plan::Apply) => {}
        }
        let seq = match batch.log.as_ref().map(|e| i64::try_from(e.seq)) {
            None => None,
            Some(Ok(seq)) => Some(seq),
            Some(Err(_)) => {
                planned.push(Planned::Refused(StorageError::SequenceExhausted));
                continue;
            }
        };
        // check_batch refused a batch for a room neither stored nor created.
        let role = match (&batch.room_update, stored) {
            (Some(update), _) => update.role,
            (None, Some((role, _))) => role,
            (None, None) => {
                planned.push(Planned::Refused(StorageError::UnknownRoom(
                    batch.room.clone(),
                )));
                continue;
            }
        };
        let stored_last = stored.and_then(|(_, last)| last);
        let last = match seq {
            Some(seq) => Some(seq),
            // Stored numbers came from a bigint: they fit.
            None => stored_last.map(bound),
        };
        // `last` is a sequence number: never negative.
        current.insert(room.to_owned(), (role, last.map(i64::unsigned_abs)));
        if let Some(update) = &batch.room_update {
            rooms.insert(
                room,
                RoomWrite {
                    record: Some((update.role, update.state.as_slice())),
                    last,
                },
            );
            match &update.group {
                GroupUpdate::Keep => {}
                GroupUpdate::Replace(group) => {
                    groups.insert(room, Some(group.as_slice()));
                }
                GroupUpdate::Remove => {
                    groups.insert(room, None);
                }
            }
        } else if seq.is_some() {
            rooms
                .entry(room)
                .or_insert(RoomWrite { record: None, last })
                .last = last;
        }
        if let Some(snapshot) = &batch.snapshot {
            snapshots.insert(room, snapshot.as_slice());
        }
        if let (Some(entry), Some(seq)) = (&batch.log, seq) {
            log_rooms.push(room);
            log_seqs.push(seq);
            log_entries.push(entry.entry.as_slice());
            if let Some(key) = &batch.request {
                req_rooms.push(room);
                req_keys.push(key.as_slice());
                req_seqs.push(seq);
            }
            // Keys of entries at or before `seq - REQUEST_WINDOW` leave the window (the
            // window is far below a bigint).
            let window = i64::try_from(REQUEST_WINDOW).unwrap_or(i64::MAX);
            if let Some(below) = seq.checked_sub(window - 1).filter(|b| *b > 0) {
                forget_rooms.push(room);
                forget_below.push(below);
            }
        }
        for (dest, message) in &batch.outbox {
            out_dests.push(dest.as_str());
            out_rooms.push(room);
            out_seqs.push(seq);
            let (bytes, len) = stored_payload(message)?;
            out_messages.push(bytes);
            out_lens.push(len);
        }
        for (client, message) in &batch.inbox {
            let (bytes, len) = stored_payload(message)?;
            in_clients.push(client.as_str());
            in_messages.push(bytes);
            in_rooms.push(room);
            in_seqs.push(seq);
            in_lens.push(len);
        }
        planned.push(Planned::Committed {
            outbox: batch.outbox.len(),
            inbox: batch.inbox.len(),
        });
    }
    let writes_something = planned
        .iter()
        .any(|p| matches!(p, Planned::Committed { .. } | Planned::Ack));
    if writes_something {
        let count = |n: usize| i64::try_from(n).map_err(|_| StorageError::Corrupt("count".into()));
        let (mut next_out, mut next_in) = (0i64, 0i64);
        if !out_dests.is_empty() || !in_clients.is_empty() {
            let taken = txn
                .query(
                    &s.take_ids,
                    &[&count(out_dests.len())?, &count(in_clients.len())?],
                )
                .map_err(backend)?;
            for row in taken {
                match col::<&str>(&row, 0)? {
                    "outbox" => next_out = col(&row, 1)?,
                    _ => next_in = col(&row, 1)?,
                }
            }
        }
        let out_ids: Vec<i64> = (next_out..).take(out_dests.len()).collect();
        let in_cursors: Vec<i64> = (next_in..).take(in_clients.len()).collect();
        let (mut put_names, mut put_roles, mut put_states, mut put_lasts) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut advance_names, mut advance_lasts) = (Vec::new(), Vec::new());
        for (room, write) in &rooms {
            match write.record {
                Some((role, state)) => {
                    put_names.push(*room);
                    put_roles.push(i16::from(role.to_byte()));
                    put_states.push(state);
                    put_lasts.push(write.last);
                }
                None => {
                    advance_names.push(*room);
                    advance_lasts.push(write.last);
                }
            }
        }
        // The other instances wake their outbox workers and long-polling reads.
        let mut notes: Vec<String> = Vec::new();
        if !out_dests.is_empty() {
            notes.push(format!("outbox {instance}"));
        }
        if !in_clients.is_empty() {
            notes.push(format!("inbox {instance}"));
        }
        let (mut put_groups, mut group_states, mut remove_groups) =
            (Vec::new(), Vec::new(), Vec::new());
        for (room, group) in &groups {
            match group {
                Some(state) => {
                    put_groups.push(*room);
                    group_states.push(*state);
                }
                None => remove_groups.push(*room),
            }
        }
        txn.execute(
            &s.write_group,
            &[
                &put_names,
                &put_roles,
                &put_states,
                &put_lasts,
                &advance_names,
                &advance_lasts,
                &put_groups,
                &group_states,
                &remove_groups,
                &log_rooms,
                &log_seqs,
                &log_entries,
                &out_dests,
                &out_ids,
                &out_rooms,
                &out_seqs,
                &out_messages,
                &in_clients,
                &in_cursors,
                &in_messages,
                &ack_dests,
                &ack_ids,
                &req_rooms,
                &req_keys,
                &req_seqs,
                &forget_rooms,
                &forget_below,
                &snapshots.keys().copied().collect::<Vec<&str>>(),
                &snapshots.values().copied().collect::<Vec<&[u8]>>(),
                &notes,
                &out_lens,
                &in_rooms,
                &in_seqs,
                &in_lens,
            ],
        )
        .map_err(backend)?;
        let (mut out_ids, mut in_cursors) = (out_ids.into_iter(), in_cursors.into_iter());
        let take =
            |ids: &mut std::vec::IntoIter<i64>, n: usize| -> Result<Vec<u64>, StorageError> {
                ids.by_ref().take(n).map(|id| unsigned(id, "id")).collect()
            };
        return planned
            .into_iter()
            .map(|p| {
                Ok(match p {
                    Planned::Refused(e) => Err(e),
                    Planned::Duplicate => Ok(Written::Commit(CommitOutcome::Duplicate)),
                    Planned::Ack => Ok(Written::Ack),
                    Planned::Nothing => Ok(Written::Nothing),
                    Planned::Committed { outbox, inbox } => {
                        Ok(Written::Commit(CommitOutcome::Committed {
                            outbox_ids: take(&mut out_ids, outbox)?,
                            inbox_cursors: take(&mut in_cursors, inbox)?,
                        }))
                    }
                })
            })
            .collect();
    }
    Ok(planned
        .into_iter()
        .map(|p| match p {
            Planned::Refused(e) => Err(e),
            Planned::Duplicate => Ok(Written::Commit(CommitOutcome::Duplicate)),
            Planned::Nothing => Ok(Written::Nothing),
            // Not reached: a committed batch or an ack writes something.
            Planned::Ack | Planned::Committed { .. } => Err(StorageError::Backend(
                "invariant: a write planned but not written".into(),
            )),
        })
        .collect())
}

/// The listener thread: `LISTEN` for the other instances' changes and call `hook` for
/// each, until `stop`. Each time it starts listening (at start, and again after a lost
/// connection) it calls `hook` for every kind of change: anything written before was not
/// announced to it.
fn listen(config: &Config, instance: &str, hook: &ChangeHook, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        let mut client = match connect(config).and_then(|mut c| {
            c.batch_execute(&format!("LISTEN {CHANGES_CHANNEL}"))
                .map(|()| c)
                .map_err(backend)
        }) {
            Ok(client) => client,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for the other instances' changes; trying again");
                let until = std::time::Instant::now() + LISTEN_RETRY;
                while std::time::Instant::now() < until && !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(LISTEN_TICK);
                }
                continue;
            }
        };
        // Anything written before this connection listened (at start, or while it was
        // lost) was not announced to it.
        hook(Change::Outbox);
        hook(Change::Inbox);
        hook(Change::Clients);
        while !stop.load(Ordering::SeqCst) {
            let next = {
                let mut notifications = client.notifications();
                pg::fallible_iterator::FallibleIterator::next(
                    &mut notifications.timeout_iter(LISTEN_TICK),
                )
            };
            match next {
                Ok(Some(note)) => {
                    let mut words = note.payload().split(' ');
                    let kind = match words.next() {
                        Some("outbox") => Change::Outbox,
                        Some("inbox") => Change::Inbox,
                        Some("clients") => Change::Clients,
                        _ => continue,
                    };
                    // This instance woke its own parts already.
                    if words.next() != Some(instance) {
                        hook(kind);
                    }
                }
                Ok(None) if client.is_closed() => break,
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "lost the connection listening for the other instances' changes");
                    break;
                }
            }
        }
    }
}

/// The registered clients of `user`, in identifier order.
fn clients_of(
    conn: &mut impl pg::GenericClient,
    user: &UserId,
) -> Result<Vec<ClientId>, StorageError> {
    let rows = conn
        .query_typed(
            "SELECT client_id FROM clients WHERE user_id = $1 ORDER BY client_id",
            &[(&user.as_str(), Type::TEXT)],
        )
        .map_err(backend)?;
    rows.iter()
        .map(|row| parse_stored(col::<&str>(row, 0)?, "client ID"))
        .collect()
}

fn decode_user(user_id: UserId, row: &Row) -> Result<UserRecord, StorageError> {
    Ok(UserRecord {
        user_id,
        handle: col(row, 0)?,
        email: col(row, 1)?,
        phone: col(row, 2)?,
        display_name: col(row, 3)?,
    })
}

impl Storage for PostgresStorage {
    fn room(&self, room: &RoomId) -> Result<Option<RoomRecord>, StorageError> {
        self.read(|conn| {
            let row = conn
                .query_typed_opt(
                    "SELECT r.role, r.state, g.state, r.last_seq
                 FROM rooms r LEFT JOIN group_states g ON g.room = r.room
                 WHERE r.room = $1",
                    &[(&room.as_str(), Type::TEXT)],
                )
                .map_err(backend)?;
            let Some(row) = row else { return Ok(None) };
            let role: i16 = col(&row, 0)?;
            let role = u8::try_from(role)
                .map_err(|_| StorageError::Corrupt(format!("room role {role}")))
                .and_then(RoomRole::from_byte)?;
            let last: Option<i64> = col(&row, 3)?;
            Ok(Some(RoomRecord {
                role,
                state: col(&row, 1)?,
                group: col(&row, 2)?,
                last_seq: last.map(|l| unsigned(l, "sequence number")).transpose()?,
            }))
        })
    }

    fn room_snapshot(&self, room: &RoomId) -> Result<Option<Vec<u8>>, StorageError> {
        self.read(|conn| {
            let row = conn
                .query_typed_opt(
                    "SELECT snapshot FROM room_snapshots WHERE room = $1",
                    &[(&room.as_str(), Type::TEXT)],
                )
                .map_err(backend)?;
            row.map(|row| col(&row, 0)).transpose()
        })
    }

    fn rooms(&self) -> Result<Vec<RoomId>, StorageError> {
        self.read(|conn| {
            let rows = conn
                .query_typed("SELECT room FROM rooms ORDER BY room", &[])
                .map_err(backend)?;
            rows.iter()
                .map(|row| parse_stored(col::<&str>(row, 0)?, "room ID"))
                .collect()
        })
    }

    fn request_seq(
        &self,
        room: &RoomId,
        request: &RequestKey,
    ) -> Result<Option<u64>, StorageError> {
        self.read(|conn| {
            let row = conn
                .query_opt(
                    "SELECT seq FROM requests WHERE room = $1 AND key = $2",
                    &[&room.as_str(), &request.as_slice()],
                )
                .map_err(backend)?;
            row.map(|row| unsigned(col(&row, 0)?, "sequence number"))
                .transpose()
        })
    }

    fn log_range(
        &self,
        room: &RoomId,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<LogEntry>, StorageError> {
        // Nothing is stored beyond a bigint.
        let Ok(from_seq) = i64::try_from(from_seq) else {
            return Ok(Vec::new());
        };
        self.read(|conn| {
            let rows = conn
            .query_typed(
                "SELECT seq, entry FROM log WHERE room = $1 AND seq >= $2 ORDER BY seq LIMIT $3",
                &[
                    (&room.as_str(), Type::TEXT),
                    (&from_seq, Type::INT8),
                    (&limit_of(limit), Type::INT8),
                ],
            )
            .map_err(backend)?;
            rows.iter()
                .map(|row| {
                    Ok(LogEntry {
                        seq: unsigned(col(row, 0)?, "sequence number")?,
                        entry: col(row, 1)?,
                    })
                })
                .collect()
        })
    }

    fn commit(&self, batch: Batch) -> Result<CommitOutcome, StorageError> {
        self.submit(batch).wait()
    }

    fn submit(&self, batch: Batch) -> PendingCommit {
        let (tx, rx) = oneshot::channel();
        self.enqueue(Write::Commit(batch, false), Reply::Commit(tx));
        PendingCommit::queued(rx)
    }

    fn submit_chained(&self, batch: Batch) -> PendingCommit {
        let (tx, rx) = oneshot::channel();
        self.enqueue(Write::Commit(batch, true), Reply::Commit(tx));
        PendingCommit::queued(rx)
    }

    fn outbox_destinations(&self) -> Result<Vec<ServerName>, StorageError> {
        self.read(|conn| {
            // Skip from one destination to the next through the primary key instead of
            // reading every entry.
            let rows = conn
                .query_typed(
                    "WITH RECURSIVE d(dest) AS (
                     (SELECT dest FROM outbox ORDER BY dest LIMIT 1)
                     UNION ALL
                     SELECT (SELECT o.dest FROM outbox o WHERE o.dest > d.dest
                             ORDER BY o.dest LIMIT 1)
                     FROM d WHERE d.dest IS NOT NULL
                 )
                 SELECT dest FROM d WHERE dest IS NOT NULL",
                    &[],
                )
                .map_err(backend)?;
            rows.iter()
                .map(|row| parse_stored(col::<&str>(row, 0)?, "server name"))
                .collect()
        })
    }

    fn outbox_after(
        &self,
        dest: &ServerName,
        after: u64,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StorageError> {
        self.read(|conn| {
            let rows = conn
                .query_typed(
                    "SELECT o.id, o.room, o.seq, o.message, o.logged_len,
                        substring(l.entry FROM 1 FOR o.logged_len)
                     FROM outbox o LEFT JOIN log l
                         ON o.logged_len IS NOT NULL AND l.room = o.room AND l.seq = o.seq
                     WHERE o.dest = $1 AND o.id > $2 ORDER BY o.id LIMIT $3",
                    &[
                        (&dest.as_str(), Type::TEXT),
                        (&bound(after), Type::INT8),
                        (&limit_of(limit), Type::INT8),
                    ],
                )
                .map_err(backend)?;
            rows.iter()
                .map(|row| {
                    let seq: Option<i64> = col(row, 2)?;
                    Ok(OutboxEntry {
                        id: unsigned(col(row, 0)?, "outbox id")?,
                        dest: dest.clone(),
                        room: parse_stored(col::<&str>(row, 1)?, "room ID")?,
                        seq: seq.map(|s| unsigned(s, "sequence number")).transpose()?,
                        message: resolved(row, 3)?,
                    })
                })
                .collect()
        })
    }

    fn outbox_ack(&self, dest: &ServerName, ids: &[u64]) -> Result<(), StorageError> {
        if ids.is_empty() {
            return Ok(());
        }
        let (tx, rx) = oneshot::channel();
        self.enqueue(Write::Ack(dest.clone(), ids.to_vec()), Reply::Ack(tx));
        rx.blocking_recv().unwrap_or_else(|_| Err(writer_gone()))
    }

    fn publish_key_packages(
        &self,
        client: &ClientId,
        packages: Vec<StoredKeyPackage>,
    ) -> Result<(), StorageError> {
        self.transaction(|txn| {
            let registered = txn
                .query_typed_opt(
                    "SELECT 1 FROM clients WHERE client_id = $1",
                    &[(&client.as_str(), Type::TEXT)],
                )
                .map_err(backend)?;
            if registered.is_none() {
                return Err(StorageError::UnknownClient(client.clone()));
            }
            let refs: Vec<&[u8]> = packages.iter().map(|p| p.hash_ref.as_slice()).collect();
            let foreign = txn
                .query_typed_opt(
                    "SELECT 1 FROM key_packages WHERE hash_ref = ANY($1) AND client_id <> $2
                     LIMIT 1",
                    &[
                        (&refs, Type::BYTEA_ARRAY),
                        (&client.as_str(), Type::TEXT),
                    ],
                )
                .map_err(backend)?;
            if foreign.is_some() {
                return Err(StorageError::Conflict(Conflict::KeyPackageRef));
            }
            for package in &packages {
                let suite = i32::from(package.cipher_suite);
                txn.execute_typed(
                    "DELETE FROM key_packages WHERE hash_ref = $1",
                    &[(&package.hash_ref.as_slice(), Type::BYTEA)],
                )
                .map_err(backend)?;
                if package.last_resort {
                    txn.execute_typed(
                        "DELETE FROM key_packages
                         WHERE client_id = $1 AND cipher_suite = $2 AND last_resort",
                        &[(&client.as_str(), Type::TEXT), (&suite, Type::INT4)],
                    )
                    .map_err(backend)?;
                }
                let inserted = txn.execute_typed(
                    "INSERT INTO key_packages (hash_ref, client_id, cipher_suite, last_resort, package)
                     VALUES ($1, $2, $3, $4, $5)",
                    &[
                        (&package.hash_ref.as_slice(), Type::BYTEA),
                        (&client.as_str(), Type::TEXT),
                        (&suite, Type::INT4),
                        (&package.last_resort, Type::BOOL),
                        (&package.bytes.as_slice(), Type::BYTEA),
                    ],
                );
                match inserted {
                    Ok(_) => {}
                    // Another client published the same reference concurrently.
                    Err(e) if unique_violation(&e) == Some(KEY_PACKAGE_REF_KEY) => {
                        return Err(StorageError::Conflict(Conflict::KeyPackageRef));
                    }
                    Err(e) => return Err(backend(e)),
                }
            }
            Ok(())
        })
    }

    fn claim_key_packages(
        &self,
        user: &UserId,
        clients: &[ClientId],
        cipher_suite: u16,
    ) -> Result<Vec<(ClientId, Vec<u8>)>, StorageError> {
        let suite = i32::from(cipher_suite);
        self.transaction(|txn| {
            let registered = clients_of(txn, user)?;
            let candidates: Vec<ClientId> = if clients.is_empty() {
                registered
            } else {
                let mut out: Vec<ClientId> = Vec::new();
                for c in clients {
                    if registered.contains(c) && !out.contains(c) {
                        out.push(c.clone());
                    }
                }
                out
            };
            let mut claimed = Vec::new();
            for client in candidates {
                // The first one-time package nobody else is claiming, taken in one
                // statement; then the last-resort one, which stays.
                let one_time = txn
                    .query_typed_opt(
                        "DELETE FROM key_packages WHERE hash_ref = (
                             SELECT hash_ref FROM key_packages
                             WHERE client_id = $1 AND cipher_suite = $2 AND NOT last_resort
                             ORDER BY hash_ref LIMIT 1
                             FOR UPDATE SKIP LOCKED
                         )
                         RETURNING package",
                        &[(&client.as_str(), Type::TEXT), (&suite, Type::INT4)],
                    )
                    .map_err(backend)?;
                let package = match one_time {
                    Some(row) => Some(row),
                    None => txn
                        .query_typed_opt(
                            "SELECT package FROM key_packages
                             WHERE client_id = $1 AND cipher_suite = $2 AND last_resort",
                            &[(&client.as_str(), Type::TEXT), (&suite, Type::INT4)],
                        )
                        .map_err(backend)?,
                };
                if let Some(row) = package {
                    claimed.push((client, col(&row, 0)?));
                }
            }
            Ok(claimed)
        })
    }

    fn key_package_count(
        &self,
        client: &ClientId,
        cipher_suite: u16,
    ) -> Result<KeyPackageCount, StorageError> {
        self.read(|conn| {
            let row = conn
            .query_typed_one(
                "SELECT count(*) FILTER (WHERE NOT last_resort), count(*) FILTER (WHERE last_resort)
                 FROM key_packages WHERE client_id = $1 AND cipher_suite = $2",
                &[
                    (&client.as_str(), Type::TEXT),
                    (&i32::from(cipher_suite), Type::INT4),
                ],
            )
            .map_err(backend)?;
            let count = |idx| -> Result<usize, StorageError> {
                let n: i64 = col(&row, idx)?;
                usize::try_from(n).map_err(|_| StorageError::Corrupt(format!("count {n}")))
            };
            Ok(KeyPackageCount {
                one_time: count(0)?,
                last_resort: count(1)?,
            })
        })
    }

    fn put_user(&self, user: &UserRecord) -> Result<(), StorageError> {
        self.write_user(user, false).map(|_| ())
    }

    fn create_user(&self, user: &UserRecord) -> Result<bool, StorageError> {
        self.write_user(user, true)
    }

    fn create_client(&self, client: &ClientRecord) -> Result<bool, StorageError> {
        let user = client.client_id.user();
        self.read(|conn| {
            let written = conn.execute_typed(
                "INSERT INTO clients (client_id, user_id, token_hash) VALUES ($1, $2, $3)
                 ON CONFLICT (client_id) DO NOTHING",
                &[
                    (&client.client_id.as_str(), Type::TEXT),
                    (&user.as_str(), Type::TEXT),
                    (&client.token_hash.as_slice(), Type::BYTEA),
                ],
            );
            match written {
                Ok(n) => Ok(n == 1),
                Err(e)
                    if e.as_db_error()
                        .is_some_and(|db| *db.code() == SqlState::FOREIGN_KEY_VIOLATION) =>
                {
                    Err(StorageError::UnknownUser(user.clone()))
                }
                Err(e) => Err(backend(e)),
            }
        })
    }
    fn user(&self, user: &UserId) -> Result<Option<UserRecord>, StorageError> {
        self.read(|conn| {
            let row = conn
                .query_typed_opt(
                    "SELECT handle, email, phone, display_name FROM users WHERE user_id = $1",
                    &[(&user.as_str(), Type::TEXT)],
                )
                .map_err(backend)?;
            row.map(|row| decode_user(user.clone(), &row)).transpose()
        })
    }

    fn users(&self, after: Option<&UserId>, limit: usize) -> Result<Vec<UserId>, StorageError> {
        self.read(|conn| {
            let rows = conn
                .query_typed(
                    "SELECT user_id FROM users WHERE user_id > $1 ORDER BY user_id LIMIT $2",
                    &[
                        (&after.map_or("", |a| a.as_str()), Type::TEXT),
                        (&limit_of(limit), Type::INT8),
                    ],
                )
                .map_err(backend)?;
            rows.iter()
                .map(|row| parse_stored(col::<&str>(row, 0)?, "user ID"))
                .collect()
        })
    }

    fn find_users(&self, field: DirectoryField, value: &str) -> Result<Vec<UserId>, StorageError> {
        let value = field.normalize(value);
        if value.is_empty() {
            return Ok(Vec::new());
        }
        self.read(|conn| {
            let rows = conn
            .query_typed(
                "SELECT user_id FROM directory WHERE field = $1 AND value = $2 ORDER BY user_id",
                &[
                    (&i16::from(field.to_byte()), Type::INT2),
                    (&value.as_str(), Type::TEXT),
                ],
            )
            .map_err(backend)?;
            rows.iter()
                .map(|row| parse_stored(col::<&str>(row, 0)?, "user ID"))
                .collect()
        })
    }

    fn put_client(&self, client: &ClientRecord) -> Result<(), StorageError> {
        let user = client.client_id.user();
        let note = format!("clients {}", self.instance);
        self.read(|conn| {
            let written = conn.execute_typed(
                "INSERT INTO clients (client_id, user_id, token_hash) VALUES ($1, $2, $3)
             ON CONFLICT (client_id) DO UPDATE SET token_hash = excluded.token_hash",
                &[
                    (&client.client_id.as_str(), Type::TEXT),
                    (&user.as_str(), Type::TEXT),
                    (&client.token_hash.as_slice(), Type::BYTEA),
                ],
            );
            match written {
                // The other instances forget the client's cached token (a revocation).
                Ok(_) => conn
                    .execute("SELECT pg_notify($1, $2)", &[&CHANGES_CHANNEL, &note])
                    .map(|_| ())
                    .map_err(backend),
                Err(e)
                    if e.as_db_error()
                        .is_some_and(|db| *db.code() == SqlState::FOREIGN_KEY_VIOLATION) =>
                {
                    Err(StorageError::UnknownUser(user.clone()))
                }
                Err(e) => Err(backend(e)),
            }
        })
    }

    fn client(&self, client: &ClientId) -> Result<Option<ClientRecord>, StorageError> {
        self.read(|conn| {
            let row = conn
                .query_typed_opt(
                    "SELECT token_hash FROM clients WHERE client_id = $1",
                    &[(&client.as_str(), Type::TEXT)],
                )
                .map_err(backend)?;
            let Some(row) = row else { return Ok(None) };
            let hash: &[u8] = col(&row, 0)?;
            let token_hash = <[u8; 32]>::try_from(hash).map_err(|_| {
                StorageError::Corrupt(format!("token hash of {} bytes", hash.len()))
            })?;
            Ok(Some(ClientRecord {
                client_id: client.clone(),
                token_hash,
            }))
        })
    }

    fn clients_of(&self, user: &UserId) -> Result<Vec<ClientId>, StorageError> {
        self.read(|conn| clients_of(&mut *conn, user))
    }

    fn inbox_read(
        &self,
        client: &ClientId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StorageError> {
        self.read(|conn| {
            let rows = conn
                .query_typed(
                    "SELECT i.cursor, i.message, i.logged_len,
                        substring(l.entry FROM 1 FOR i.logged_len)
                     FROM inbox i LEFT JOIN log l
                         ON i.logged_len IS NOT NULL AND l.room = i.room AND l.seq = i.seq
                     WHERE i.client = $1 AND i.cursor > $2 ORDER BY i.cursor LIMIT $3",
                    &[
                        (&client.as_str(), Type::TEXT),
                        (&bound(after), Type::INT8),
                        (&limit_of(limit), Type::INT8),
                    ],
                )
                .map_err(backend)?;
            rows.iter()
                .map(|row| Ok((unsigned(col(row, 0)?, "inbox cursor")?, resolved(row, 1)?)))
                .collect()
        })
    }

    fn inbox_trim(&self, client: &ClientId, up_to: u64) -> Result<(), StorageError> {
        self.read(|conn| {
            conn.execute_typed(
                "DELETE FROM inbox WHERE client = $1 AND cursor <= $2",
                &[(&client.as_str(), Type::TEXT), (&bound(up_to), Type::INT8)],
            )
            .map_err(backend)?;
            Ok(())
        })
    }

    fn v06_record(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.read(|conn| {
            let row = conn
                .query_typed_opt(
                    "SELECT value FROM v06_records WHERE key = $1",
                    &[(&key, Type::BYTEA)],
                )
                .map_err(backend)?;
            row.map(|row| col::<Vec<u8>>(&row, 0)).transpose()
        })
    }

    fn put_v06_record(&self, key: &[u8], value: Option<&[u8]>) -> Result<(), StorageError> {
        self.read(|conn| {
            match value {
                Some(v) => conn.execute_typed(
                    "INSERT INTO v06_records (key, value) VALUES ($1, $2)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    &[(&key, Type::BYTEA), (&v, Type::BYTEA)],
                ),
                None => conn.execute_typed(
                    "DELETE FROM v06_records WHERE key = $1",
                    &[(&key, Type::BYTEA)],
                ),
            }
            .map_err(backend)?;
            Ok(())
        })
    }

    fn v06_records_with_prefix(
        &self,
        prefix: &[u8],
        after: &[u8],
        limit: usize,
    ) -> Result<Vec<V06Record>, StorageError> {
        let start = [prefix, after].concat();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let op = if after.is_empty() { ">=" } else { ">" };
        self.read(|conn| {
            let rows = conn
                .query_typed(
                    &format!(
                        "SELECT key, value FROM v06_records WHERE key {op} $1 \
                         AND substring(key from 1 for $2) = $3 ORDER BY key LIMIT $4"
                    ),
                    &[
                        (&start, Type::BYTEA),
                        (&i32::try_from(prefix.len()).unwrap_or(i32::MAX), Type::INT4),
                        (&prefix, Type::BYTEA),
                        (&limit, Type::INT8),
                    ],
                )
                .map_err(backend)?;
            rows.iter()
                .map(|row| Ok((col::<Vec<u8>>(row, 0)?, col::<Vec<u8>>(row, 1)?)))
                .collect()
        })
    }
    fn shared(&self) -> bool {
        true
    }

    fn room_last_seq(&self, room: &RoomId) -> Result<Option<u64>, StorageError> {
        self.read(|conn| {
            let row = conn
                .query_typed_opt(
                    "SELECT last_seq FROM rooms WHERE room = $1",
                    &[(&room.as_str(), Type::TEXT)],
                )
                .map_err(backend)?;
            let last: Option<i64> = match row {
                Some(row) => col(&row, 0)?,
                None => None,
            };
            last.map(|l| unsigned(l, "sequence number")).transpose()
        })
    }

    fn reloading(&self, room: &RoomId) {
        self.enqueue(Write::Reload(room.clone()), Reply::Nothing);
    }

    fn outbox_lease(&self, dest: &ServerName, ttl: Duration) -> Result<bool, StorageError> {
        let ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        // The database's clock decides for every instance (theirs may disagree).
        self.read(|conn| {
            let row = conn
                .query_typed_opt(
                    "INSERT INTO outbox_leases (dest, holder, expires)
                     VALUES ($1, $2, clock_timestamp() + $3 * interval '1 millisecond')
                     ON CONFLICT (dest) DO UPDATE
                     SET holder = excluded.holder, expires = excluded.expires
                     WHERE outbox_leases.holder = excluded.holder
                        OR outbox_leases.expires < clock_timestamp()
                     RETURNING 1",
                    &[
                        (&dest.as_str(), Type::TEXT),
                        (&self.instance.as_str(), Type::TEXT),
                        (&ms, Type::INT8),
                    ],
                )
                .map_err(backend)?;
            Ok(row.is_some())
        })
    }

    fn outbox_release(&self, dest: &ServerName) -> Result<(), StorageError> {
        self.read(|conn| {
            conn.execute_typed(
                "DELETE FROM outbox_leases WHERE dest = $1 AND holder = $2",
                &[
                    (&dest.as_str(), Type::TEXT),
                    (&self.instance.as_str(), Type::TEXT),
                ],
            )
            .map_err(backend)?;
            Ok(())
        })
    }

    fn watch(&self, hook: ChangeHook) {
        let mut listener = self.listener.lock().unwrap_or_else(|p| p.into_inner());
        if listener.is_some() {
            tracing::error!("the storage is watched already; a second hook is ignored");
            return;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (config, instance, flag) = (
            self.config.clone(),
            self.instance.clone(),
            Arc::clone(&stop),
        );
        let thread = std::thread::Builder::new()
            .name("postgres-listen".into())
            .spawn(move || listen(&config, &instance, &hook, &flag));
        match thread {
            Ok(thread) => *listener = Some((stop, thread)),
            Err(e) => tracing::error!(error = %e, "cannot start the listener thread"),
        }
    }
}
