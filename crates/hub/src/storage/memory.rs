//! [`MemoryStorage`]: the storage semantics in memory, for tests of the layers above.

use super::V06Record;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard};

use mimi_codec::{ClientId, RoomId, ServerName, UserId};

use super::{
    Batch, ClientRecord, CommitOutcome, Conflict, DirectoryField, FIRST_ID, KeyPackageCount,
    LogEntry, OutboxEntry, Payload, Plan, REQUEST_WINDOW, RequestKey, RoomRecord, Storage,
    StorageError, StoredKeyPackage, UserRecord, check_batch, read_limit, updated_room,
};

/// A key package's place: (client, cipher suite, last resort, reference). One-time packages
/// sort before the last-resort one of the same suite.
type KeyPackageKey = (ClientId, u16, bool, Vec<u8>);

/// A queued outbox or inbox entry: (room, sequence number of its batch's log entry, what it
/// delivers; a [`Payload::Logged`] is resolved from the log when read).
type Queued = (RoomId, Option<u64>, Payload);

/// Storage in memory behind one mutex, with exactly the semantics of
/// [`RedbStorage`](super::RedbStorage) except that nothing survives the process.
#[derive(Debug, Default)]
pub struct MemoryStorage {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    rooms: BTreeMap<RoomId, RoomRecord>,
    snapshots: BTreeMap<RoomId, Vec<u8>>,
    log: BTreeMap<(RoomId, u64), Vec<u8>>,
    outbox: BTreeMap<(ServerName, u64), Queued>,
    next_outbox_id: u64,
    inbox: BTreeMap<(ClientId, u64), Queued>,
    next_inbox_cursor: u64,
    key_packages: BTreeMap<KeyPackageKey, Vec<u8>>,
    key_package_refs: BTreeMap<Vec<u8>, KeyPackageKey>,
    users: BTreeMap<UserId, UserRecord>,
    directory: BTreeMap<(DirectoryField, String), BTreeSet<UserId>>,
    clients: BTreeMap<ClientId, ClientRecord>,
    requests: BTreeMap<(RoomId, RequestKey), u64>,
    request_seqs: BTreeMap<(RoomId, u64), RequestKey>,
    v06: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl Inner {
    /// The bytes a queued entry delivers.
    fn resolve(&self, (room, seq, payload): &Queued) -> Result<Vec<u8>, StorageError> {
        let entry = seq.and_then(|seq| self.log.get(&(room.clone(), seq)));
        Ok(payload.resolve(entry.map(Vec::as_slice))?.to_vec())
    }
}

impl Default for Inner {
    fn default() -> Self {
        Inner {
            rooms: BTreeMap::new(),
            snapshots: BTreeMap::new(),
            log: BTreeMap::new(),
            outbox: BTreeMap::new(),
            next_outbox_id: FIRST_ID,
            inbox: BTreeMap::new(),
            next_inbox_cursor: FIRST_ID,
            key_packages: BTreeMap::new(),
            key_package_refs: BTreeMap::new(),
            users: BTreeMap::new(),
            v06: BTreeMap::new(),
            directory: BTreeMap::new(),
            clients: BTreeMap::new(),
            requests: BTreeMap::new(),
            request_seqs: BTreeMap::new(),
        }
    }
}

impl MemoryStorage {
    /// Empty storage.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<MutexGuard<'_, Inner>, StorageError> {
        // A poisoned lock means a writer panicked; its data is not trusted.
        self.inner
            .lock()
            .map_err(|_| StorageError::Backend("memory storage lock poisoned".into()))
    }
}

/// Take the next id of a counter.
fn next_id(counter: &mut u64) -> Result<u64, StorageError> {
    let id = *counter;
    *counter = id
        .checked_add(1)
        .ok_or_else(|| StorageError::Corrupt("id counter exhausted".into()))?;
    Ok(id)
}

impl Inner {
    fn is_registered(&self, user: &UserId, client: &ClientId) -> bool {
        client.user() == *user && self.clients.contains_key(client)
    }
}

impl Storage for MemoryStorage {
    fn room(&self, room: &RoomId) -> Result<Option<RoomRecord>, StorageError> {
        Ok(self.lock()?.rooms.get(room).cloned())
    }

    fn rooms(&self) -> Result<Vec<RoomId>, StorageError> {
        Ok(self.lock()?.rooms.keys().cloned().collect())
    }

    fn room_snapshot(&self, room: &RoomId) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.lock()?.snapshots.get(room).cloned())
    }

    fn log_range(
        &self,
        room: &RoomId,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<LogEntry>, StorageError> {
        let inner = self.lock()?;
        Ok(inner
            .log
            .range((room.clone(), from_seq)..)
            .take_while(|((r, _), _)| r == room)
            .take(read_limit(limit))
            .map(|((_, seq), entry)| LogEntry {
                seq: *seq,
                entry: entry.clone(),
            })
            .collect())
    }

    fn commit(&self, batch: Batch) -> Result<CommitOutcome, StorageError> {
        let mut inner = self.lock()?;
        let stored = inner.rooms.get(&batch.room).cloned();
        let current = stored.as_ref().map(|r| (r.role, r.last_seq));
        if check_batch(current, &batch)? == Plan::Duplicate {
            return Ok(CommitOutcome::Duplicate);
        }
        // Reserve every id before the first change, so a failure leaves nothing behind.
        let mut next_outbox = inner.next_outbox_id;
        let mut next_inbox = inner.next_inbox_cursor;
        let outbox_ids = batch
            .outbox
            .iter()
            .map(|_| next_id(&mut next_outbox))
            .collect::<Result<Vec<_>, _>>()?;
        let inbox_cursors = batch
            .inbox
            .iter()
            .map(|_| next_id(&mut next_inbox))
            .collect::<Result<Vec<_>, _>>()?;

        let Batch {
            room,
            room_update,
            log,
            outbox,
            inbox,
            request,
            snapshot,
            ..
        } = batch;
        let seq = log.as_ref().map(|l| l.seq);
        if let Some(record) = updated_room(stored, room_update, seq) {
            inner.rooms.insert(room.clone(), record);
        }
        if let (Some(key), Some(seq)) = (request, seq) {
            inner.requests.insert((room.clone(), key), seq);
            inner.request_seqs.insert((room.clone(), seq), key);
        }
        if let Some(old) = seq.and_then(|s| s.checked_sub(REQUEST_WINDOW)) {
            let forgotten: Vec<(u64, RequestKey)> = inner
                .request_seqs
                .range((room.clone(), 0)..=(room.clone(), old))
                .map(|((_, s), k)| (*s, *k))
                .collect();
            for (s, key) in forgotten {
                inner.request_seqs.remove(&(room.clone(), s));
                inner.requests.remove(&(room.clone(), key));
            }
        }
        if let Some(snapshot) = snapshot {
            inner.snapshots.insert(room.clone(), snapshot);
        }
        if let Some(LogEntry { seq, entry }) = log {
            inner.log.insert((room.clone(), seq), entry);
        }
        for (id, (dest, message)) in outbox_ids.iter().zip(outbox) {
            inner
                .outbox
                .insert((dest, *id), (room.clone(), seq, message));
        }
        for (cursor, (client, message)) in inbox_cursors.iter().zip(inbox) {
            inner
                .inbox
                .insert((client, *cursor), (room.clone(), seq, message));
        }
        inner.next_outbox_id = next_outbox;
        inner.next_inbox_cursor = next_inbox;
        Ok(CommitOutcome::Committed {
            outbox_ids,
            inbox_cursors,
        })
    }

    fn request_seq(
        &self,
        room: &RoomId,
        request: &RequestKey,
    ) -> Result<Option<u64>, StorageError> {
        let inner = self.lock()?;
        Ok(inner.requests.get(&(room.clone(), *request)).copied())
    }

    fn outbox_destinations(&self) -> Result<Vec<ServerName>, StorageError> {
        let inner = self.lock()?;
        let dests: BTreeSet<&ServerName> = inner.outbox.keys().map(|(d, _)| d).collect();
        Ok(dests.into_iter().cloned().collect())
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
        let inner = self.lock()?;
        inner
            .outbox
            .range((dest.clone(), first)..)
            .take_while(|((d, _), _)| d == dest)
            .take(read_limit(limit))
            .map(|((dest, id), queued)| {
                Ok(OutboxEntry {
                    id: *id,
                    dest: dest.clone(),
                    room: queued.0.clone(),
                    seq: queued.1,
                    message: inner.resolve(queued)?,
                })
            })
            .collect()
    }

    fn outbox_ack(&self, dest: &ServerName, ids: &[u64]) -> Result<(), StorageError> {
        let mut inner = self.lock()?;
        for id in ids {
            inner.outbox.remove(&(dest.clone(), *id));
        }
        Ok(())
    }

    fn publish_key_packages(
        &self,
        client: &ClientId,
        packages: Vec<StoredKeyPackage>,
    ) -> Result<(), StorageError> {
        let mut inner = self.lock()?;
        if !inner.clients.contains_key(client) {
            return Err(StorageError::UnknownClient(client.clone()));
        }
        for package in &packages {
            if let Some((owner, ..)) = inner.key_package_refs.get(&package.hash_ref)
                && owner != client
            {
                return Err(StorageError::Conflict(Conflict::KeyPackageRef));
            }
        }
        for package in packages {
            if let Some(old) = inner.key_package_refs.remove(&package.hash_ref) {
                inner.key_packages.remove(&old);
            }
            if package.last_resort {
                let lo = (client.clone(), package.cipher_suite, true, Vec::new());
                let previous: Vec<KeyPackageKey> = inner
                    .key_packages
                    .range(lo..)
                    .map(|(k, _)| k)
                    .take_while(|(c, s, lr, _)| c == client && *s == package.cipher_suite && *lr)
                    .cloned()
                    .collect();
                for key in previous {
                    inner.key_package_refs.remove(&key.3);
                    inner.key_packages.remove(&key);
                }
            }
            let key = (
                client.clone(),
                package.cipher_suite,
                package.last_resort,
                package.hash_ref.clone(),
            );
            inner.key_packages.insert(key.clone(), package.bytes);
            inner.key_package_refs.insert(package.hash_ref, key);
        }
        Ok(())
    }

    fn claim_key_packages(
        &self,
        user: &UserId,
        clients: &[ClientId],
        cipher_suite: u16,
    ) -> Result<Vec<(ClientId, Vec<u8>)>, StorageError> {
        let mut inner = self.lock()?;
        let candidates: Vec<ClientId> = if clients.is_empty() {
            inner
                .clients
                .keys()
                .filter(|c| c.user() == *user)
                .cloned()
                .collect()
        } else {
            let mut seen = BTreeSet::new();
            clients
                .iter()
                .filter(|c| inner.is_registered(user, c) && seen.insert(*c))
                .cloned()
                .collect()
        };
        let mut claimed = Vec::new();
        for client in candidates {
            let lo = (client.clone(), cipher_suite, false, Vec::new());
            let found = inner
                .key_packages
                .range(lo..)
                .next()
                .filter(|((c, s, _, _), _)| *c == client && *s == cipher_suite)
                .map(|(k, v)| (k.clone(), v.clone()));
            let Some((key, bytes)) = found else { continue };
            if !key.2 {
                inner.key_packages.remove(&key);
                inner.key_package_refs.remove(&key.3);
            }
            claimed.push((client, bytes));
        }
        Ok(claimed)
    }

    fn key_package_count(
        &self,
        client: &ClientId,
        cipher_suite: u16,
    ) -> Result<KeyPackageCount, StorageError> {
        let inner = self.lock()?;
        let lo = (client.clone(), cipher_suite, false, Vec::new());
        let mut count = KeyPackageCount::default();
        for ((_, _, last_resort, _), _) in inner
            .key_packages
            .range(lo..)
            .take_while(|((c, s, _, _), _)| c == client && *s == cipher_suite)
        {
            if *last_resort {
                count.last_resort += 1;
            } else {
                count.one_time += 1;
            }
        }
        Ok(count)
    }

    fn put_user(&self, user: &UserRecord) -> Result<(), StorageError> {
        let mut inner = self.lock()?;
        let new_keys = user.directory_keys();
        for (field, value) in new_keys.iter().filter(|(f, _)| f.is_unique()) {
            let taken = inner
                .directory
                .get(&(*field, value.clone()))
                .is_some_and(|owners| owners.iter().any(|o| *o != user.user_id));
            if taken {
                return Err(StorageError::Conflict(Conflict::DirectoryTaken {
                    field: *field,
                }));
            }
        }
        let old_keys = inner
            .users
            .get(&user.user_id)
            .map(UserRecord::directory_keys)
            .unwrap_or_default();
        for key in old_keys {
            if let Some(owners) = inner.directory.get_mut(&key) {
                owners.remove(&user.user_id);
                if owners.is_empty() {
                    inner.directory.remove(&key);
                }
            }
        }
        for key in new_keys {
            inner
                .directory
                .entry(key)
                .or_default()
                .insert(user.user_id.clone());
        }
        inner.users.insert(user.user_id.clone(), user.clone());
        Ok(())
    }

    fn user(&self, user: &UserId) -> Result<Option<UserRecord>, StorageError> {
        Ok(self.lock()?.users.get(user).cloned())
    }

    fn users(&self, after: Option<&UserId>, limit: usize) -> Result<Vec<UserId>, StorageError> {
        let inner = self.lock()?;
        let range = match after {
            Some(a) => inner
                .users
                .range::<UserId, _>((Bound::Excluded(a), Bound::Unbounded)),
            None => inner.users.range::<UserId, _>(..),
        };
        Ok(range
            .take(read_limit(limit))
            .map(|(u, _)| u.clone())
            .collect())
    }

    fn find_users(&self, field: DirectoryField, value: &str) -> Result<Vec<UserId>, StorageError> {
        let value = field.normalize(value);
        if value.is_empty() {
            return Ok(Vec::new());
        }
        let inner = self.lock()?;
        Ok(inner
            .directory
            .get(&(field, value))
            .map(|owners| owners.iter().cloned().collect())
            .unwrap_or_default())
    }

    fn put_client(&self, client: &ClientRecord) -> Result<(), StorageError> {
        let mut inner = self.lock()?;
        let user = client.client_id.user();
        if !inner.users.contains_key(&user) {
            return Err(StorageError::UnknownUser(user));
        }
        inner
            .clients
            .insert(client.client_id.clone(), client.clone());
        Ok(())
    }

    fn client(&self, client: &ClientId) -> Result<Option<ClientRecord>, StorageError> {
        Ok(self.lock()?.clients.get(client).cloned())
    }

    fn clients_of(&self, user: &UserId) -> Result<Vec<ClientId>, StorageError> {
        Ok(self
            .lock()?
            .clients
            .keys()
            .filter(|c| c.user() == *user)
            .cloned()
            .collect())
    }

    fn inbox_read(
        &self,
        client: &ClientId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StorageError> {
        let inner = self.lock()?;
        inner
            .inbox
            .range((Bound::Excluded((client.clone(), after)), Bound::Unbounded))
            .take_while(|((c, _), _)| c == client)
            .take(read_limit(limit))
            .map(|((_, cursor), queued)| Ok((*cursor, inner.resolve(queued)?)))
            .collect()
    }

    fn inbox_trim(&self, client: &ClientId, up_to: u64) -> Result<(), StorageError> {
        let mut inner = self.lock()?;
        let done: Vec<(ClientId, u64)> = inner
            .inbox
            .range((client.clone(), 0)..=(client.clone(), up_to))
            .map(|(k, _)| k.clone())
            .collect();
        for key in done {
            inner.inbox.remove(&key);
        }
        Ok(())
    }

    fn v06_record(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.lock()?.v06.get(key).cloned())
    }

    fn put_v06_record(&self, key: &[u8], value: Option<&[u8]>) -> Result<(), StorageError> {
        let mut inner = self.lock()?;
        match value {
            Some(v) => inner.v06.insert(key.to_vec(), v.to_vec()),
            None => inner.v06.remove(key),
        };
        Ok(())
    }

    fn v06_records_with_prefix(
        &self,
        prefix: &[u8],
        after: &[u8],
        limit: usize,
    ) -> Result<Vec<V06Record>, StorageError> {
        let start = [prefix, after].concat();
        let inner = self.lock()?;
        Ok(inner
            .v06
            .range(start.clone()..)
            .filter(|(k, _)| after.is_empty() || **k != start)
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
}
