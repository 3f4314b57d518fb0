//! A [`Storage`] that fails chosen writes: it wraps any storage and answers a batch that a
//! rule picks with [`StorageError::Backend`] without passing it on, so nothing of it is
//! written. Tests use it to check that a failed write leaves nothing half-applied; it is
//! not meant for a running server. It can also hold submitted writes back
//! ([`FaultyStorage::hold_writes`]), as a slow disk would, until the test releases them.

use super::V06Record;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use mimi_codec::{ClientId, RoomId, ServerName, UserId};

use super::{
    Batch, ClientRecord, CommitOutcome, DirectoryField, KeyPackageCount, LogEntry, OutboxEntry,
    PendingCommit, RoomRecord, Storage, StorageError, StoredKeyPackage, UserRecord,
};

type Rule = Box<dyn FnMut(&Batch) -> bool + Send>;

type Answer = tokio::sync::oneshot::Sender<Result<CommitOutcome, StorageError>>;

/// Wraps a storage and fails the batches a rule picks (see the module documentation).
pub struct FaultyStorage {
    inner: Arc<dyn Storage>,
    rules: Mutex<Vec<Rule>>,
    failed: Mutex<Vec<Batch>>,
    directory_fails: std::sync::atomic::AtomicBool,
    unwritable: std::sync::atomic::AtomicBool,
    /// What [`Storage::shared`] answers (the inner storage's answer until set).
    shared: Mutex<Option<bool>>,
    /// Log entries returned by [`Storage::log_range`] so far.
    log_entries_read: AtomicU64,
    /// While holding: the submitted batches held back, in order.
    held: Mutex<Option<Vec<(Batch, Answer)>>>,
    /// Notified when a batch is held.
    held_changed: tokio::sync::Notify,
    /// Counts the writes passed on to the wrapped storage ([`FaultyStorage::writes`]).
    written: Arc<tokio::sync::watch::Sender<u64>>,
}

impl std::fmt::Debug for FaultyStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultyStorage").finish_non_exhaustive()
    }
}

impl FaultyStorage {
    /// `inner`, failing nothing yet.
    pub fn new(inner: Arc<dyn Storage>) -> FaultyStorage {
        FaultyStorage {
            inner,
            rules: Mutex::new(Vec::new()),
            failed: Mutex::new(Vec::new()),
            directory_fails: std::sync::atomic::AtomicBool::new(false),
            unwritable: std::sync::atomic::AtomicBool::new(false),
            shared: Mutex::new(None),
            log_entries_read: AtomicU64::new(0),
            held: Mutex::new(None),
            held_changed: tokio::sync::Notify::new(),
            written: Arc::new(tokio::sync::watch::Sender::new(0)),
        }
    }

    /// A receiver that sees a change after each write passed on to the wrapped storage and
    /// answered `Ok` from now on (a batch, an outbox acknowledgement): a test waits on it
    /// for a state the storage reaches, instead of polling. A submitted batch counts when
    /// the wrapped storage has taken it ([`MemoryStorage`](super::MemoryStorage) has then
    /// applied it) or, if it was held, when it is answered.
    pub fn writes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.written.subscribe()
    }

    fn wrote(&self) {
        count_write(&self.written);
    }

    /// From now on hold every submitted batch ([`Storage::submit`]) back, unanswered and
    /// unwritten, in order, until [`FaultyStorage::release_writes`]: a write in flight for
    /// as long as the test wants. Batches written with [`Storage::commit`] are not held.
    pub fn hold_writes(&self) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.get_or_insert_with(Vec::new);
    }

    /// Wait until at least `n` batches are held.
    pub async fn writes_held(&self, n: usize) {
        loop {
            let changed = self.held_changed.notified();
            let count = self
                .held
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
                .map_or(0, Vec::len);
            if count >= n {
                return;
            }
            changed.await;
        }
    }

    /// Stop holding: the held batches are submitted to the wrapped storage in the order
    /// they came, and each is answered when that storage answers it. Call it from within a
    /// tokio runtime.
    pub fn release_writes(&self) {
        let held = self
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .unwrap_or_default();
        for (batch, answer) in held {
            let pending = self.inner.submit(batch);
            let written = Arc::clone(&self.written);
            tokio::spawn(async move {
                let result = pending.durable().await;
                if result.is_ok() {
                    count_write(&written);
                }
                let _ = answer.send(result);
            });
        }
    }

    /// Fail (or stop failing) every directory search ([`Storage::find_users`]).
    pub fn fail_directory_reads(&self, fail: bool) {
        self.directory_fails
            .store(fail, std::sync::atomic::Ordering::SeqCst);
    }

    /// Fail every later batch (committed or submitted) for which `rule` answers `true`.
    pub fn fail_when(&self, rule: impl FnMut(&Batch) -> bool + Send + 'static) {
        self.rules
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Box::new(rule));
    }

    /// Fail the `n`th batch (1 for the next one) from now for which `rule` answers `true`,
    /// and only that one.
    pub fn fail_nth(&self, n: usize, mut rule: impl FnMut(&Batch) -> bool + Send + 'static) {
        let mut seen = 0usize;
        self.fail_when(move |batch| {
            if !rule(batch) {
                return false;
            }
            seen += 1;
            seen == n
        });
    }

    /// While `on`, every write (a batch, an outbox acknowledgement, a user or a client)
    /// fails with [`StorageError::Unavailable`], as on a full or read-only disk; reads go
    /// on.
    pub fn set_unwritable(&self, on: bool) {
        self.unwritable
            .store(on, std::sync::atomic::Ordering::SeqCst);
    }

    /// Answer [`Storage::shared`] with `on` from now on, as a storage other instances write
    /// too would: the outbox then leases its destinations and, without a notification of
    /// the others' writes, finds them only by looking again.
    pub fn set_shared(&self, on: bool) {
        *self.shared.lock().unwrap_or_else(|p| p.into_inner()) = Some(on);
    }

    fn unwritable(&self) -> Result<(), StorageError> {
        if self.unwritable.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StorageError::Unavailable(
                "injected: storage unwritable".into(),
            ));
        }
        Ok(())
    }

    /// How many log entries [`Storage::log_range`] has returned so far (what loading a
    /// room reads, for tests that it does not grow with the room's history).
    pub fn log_entries_read(&self) -> u64 {
        self.log_entries_read.load(Ordering::Relaxed)
    }

    /// Stop failing.
    pub fn heal(&self) {
        self.rules.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// The batches failed so far, in order.
    pub fn failed(&self) -> Vec<Batch> {
        self.failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether `batch` is to fail (every rule sees every batch).
    fn fails(&self, batch: &Batch) -> bool {
        let mut rules = self.rules.lock().unwrap_or_else(|p| p.into_inner());
        let mut fail = false;
        for rule in rules.iter_mut() {
            fail |= rule(batch);
        }
        if fail {
            self.failed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(batch.clone());
        }
        fail
    }
}

/// One more write seen by [`FaultyStorage::writes`]'s receivers.
fn count_write(written: &tokio::sync::watch::Sender<u64>) {
    written.send_modify(|n| *n += 1);
}

fn injected(batch: &Batch) -> StorageError {
    StorageError::Backend(format!("injected failure of a write to {}", batch.room))
}

impl Storage for FaultyStorage {
    fn shared(&self) -> bool {
        let set = *self.shared.lock().unwrap_or_else(|p| p.into_inner());
        set.unwrap_or_else(|| self.inner.shared())
    }

    fn room(&self, room: &RoomId) -> Result<Option<RoomRecord>, StorageError> {
        self.inner.room(room)
    }

    fn rooms(&self) -> Result<Vec<RoomId>, StorageError> {
        self.inner.rooms()
    }

    fn room_snapshot(&self, room: &RoomId) -> Result<Option<Vec<u8>>, StorageError> {
        self.inner.room_snapshot(room)
    }

    fn log_range(
        &self,
        room: &RoomId,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<LogEntry>, StorageError> {
        let entries = self.inner.log_range(room, from_seq, limit)?;
        self.log_entries_read
            .fetch_add(entries.len() as u64, Ordering::Relaxed);
        Ok(entries)
    }

    fn commit(&self, batch: Batch) -> Result<CommitOutcome, StorageError> {
        self.unwritable()?;
        if self.fails(&batch) {
            return Err(injected(&batch));
        }
        let outcome = self.inner.commit(batch)?;
        self.wrote();
        Ok(outcome)
    }

    fn submit(&self, batch: Batch) -> PendingCommit {
        if let Err(e) = self.unwritable() {
            return PendingCommit::ready(Err(e));
        }
        if self.fails(&batch) {
            return PendingCommit::ready(Err(injected(&batch)));
        }
        {
            let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(held) = held.as_mut() {
                let (answer, pending) = tokio::sync::oneshot::channel();
                held.push((batch, answer));
                self.held_changed.notify_waiters();
                return PendingCommit::queued(pending);
            }
        }
        let pending = self.inner.submit(batch);
        self.wrote();
        pending
    }

    fn request_seq(
        &self,
        room: &RoomId,
        request: &super::RequestKey,
    ) -> Result<Option<u64>, StorageError> {
        self.inner.request_seq(room, request)
    }

    fn outbox_destinations(&self) -> Result<Vec<ServerName>, StorageError> {
        self.inner.outbox_destinations()
    }

    fn outbox_after(
        &self,
        dest: &ServerName,
        after: u64,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StorageError> {
        self.inner.outbox_after(dest, after, limit)
    }

    fn outbox_ack(&self, dest: &ServerName, ids: &[u64]) -> Result<(), StorageError> {
        self.unwritable()?;
        self.inner.outbox_ack(dest, ids)?;
        self.wrote();
        Ok(())
    }

    fn publish_key_packages(
        &self,
        client: &ClientId,
        packages: Vec<StoredKeyPackage>,
    ) -> Result<(), StorageError> {
        self.inner.publish_key_packages(client, packages)
    }

    fn claim_key_packages(
        &self,
        user: &UserId,
        clients: &[ClientId],
        cipher_suite: u16,
    ) -> Result<Vec<(ClientId, Vec<u8>)>, StorageError> {
        self.inner.claim_key_packages(user, clients, cipher_suite)
    }

    fn key_package_count(
        &self,
        client: &ClientId,
        cipher_suite: u16,
    ) -> Result<KeyPackageCount, StorageError> {
        self.inner.key_package_count(client, cipher_suite)
    }

    fn put_user(&self, user: &UserRecord) -> Result<(), StorageError> {
        self.unwritable()?;
        self.inner.put_user(user)
    }

    fn user(&self, user: &UserId) -> Result<Option<UserRecord>, StorageError> {
        self.inner.user(user)
    }

    fn users(&self, after: Option<&UserId>, limit: usize) -> Result<Vec<UserId>, StorageError> {
        self.inner.users(after, limit)
    }

    fn find_users(&self, field: DirectoryField, value: &str) -> Result<Vec<UserId>, StorageError> {
        if self
            .directory_fails
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            return Err(StorageError::Backend(
                "injected failure of a directory search".into(),
            ));
        }
        self.inner.find_users(field, value)
    }

    fn put_client(&self, client: &ClientRecord) -> Result<(), StorageError> {
        self.unwritable()?;
        self.inner.put_client(client)
    }

    fn client(&self, client: &ClientId) -> Result<Option<ClientRecord>, StorageError> {
        self.inner.client(client)
    }

    fn clients_of(&self, user: &UserId) -> Result<Vec<ClientId>, StorageError> {
        self.inner.clients_of(user)
    }

    fn inbox_read(
        &self,
        client: &ClientId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StorageError> {
        self.inner.inbox_read(client, after, limit)
    }

    fn inbox_trim(&self, client: &ClientId, up_to: u64) -> Result<(), StorageError> {
        self.inner.inbox_trim(client, up_to)
    }

    fn backup(&self, out: &std::path::Path) -> Result<(), StorageError> {
        self.inner.backup(out)
    }

    fn v06_record(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.inner.v06_record(key)
    }

    fn put_v06_record(&self, key: &[u8], value: Option<&[u8]>) -> Result<(), StorageError> {
        self.inner.put_v06_record(key, value)
    }

    fn put_v06_records(&self, records: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<(), StorageError> {
        self.inner.put_v06_records(records)
    }

    fn v06_records_with_prefix(
        &self,
        prefix: &[u8],
        after: &[u8],
        limit: usize,
    ) -> Result<Vec<V06Record>, StorageError> {
        self.inner.v06_records_with_prefix(prefix, after, limit)
    }
}
