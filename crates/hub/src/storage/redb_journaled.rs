//! The redb store's journaled writes: the group writer's transactions are recorded in the
//! [journal](super::super::journal) and committed to redb without a sync of their own; a
//! checkpoint now and then makes redb durable up to a journal position, and opening the
//! store replays what the journal holds after it.
//!
//! Why (issue 13, item 2, measured in docs/performance.md): a durable redb commit writes
//! every B-tree page its transaction touched, and with one room's log, request keys and
//! queues in trees of their own, that is about 8.6 pages of 4 KiB per message at 100 rooms,
//! and a `sync_data` per group. The journal writes each group once, as one record of the
//! writes it applied, and one `fdatasync`; redb writes its pages once per checkpoint, when
//! many messages of each room have landed in the same leaves.
//!
//! ## The contract kept
//! A write is answered only after its journal record is durable; it is visible to readers
//! (its redb transaction committed) only after that too, so nothing read from the store
//! can be lost by a crash. After a crash, redb opens at its last durable commit, which
//! records the journal position it covers (`meta`: `journal_segment`, `journal_offset`);
//! every record after it is applied again, in order, to the same state it was first
//! applied to, so each write has the same effect and the same ids. Writes outside the
//! group writer (users, clients, key packages, inbox trims) are durable redb commits, as
//! before: each persists the journaled commits before it too, and the position with them.
//!
//! Rule HUB-STORE-11 (docs/protocol-coverage.md).

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ::redb::{Database, Durability, ReadableDatabase, WriteTransaction};
use mimi_codec::{ClientId, RoomId, ServerName};

use super::{
    Applied, Finish, GroupTables, GroupUpdate, META, OrBackend as _, Write, Written, apply,
    write_txn,
};
use crate::storage::journal::{Flush, HEADER_LEN, Journal, Position, SEGMENT_MAX};
use crate::storage::{
    Batch, LogEntry, Payload, RequestKey, RoomRole, RoomUpdate, StorageError, parse_stored,
};

const META_JOURNAL_ID: &str = "journal_id";
const META_JOURNAL_SEGMENT: &str = "journal_segment";
const META_JOURNAL_OFFSET: &str = "journal_offset";

/// How long the journal may run ahead of redb's last durable commit while writes keep
/// coming; the longer, the fewer times a busy room's pages are written, and the more a
/// restart after a crash replays.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);
/// How long the writer waits for more writes before it checkpoints what it has.
pub const CHECKPOINT_IDLE: Duration = Duration::from_millis(200);

/// When the writer checkpoints a journaled store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoints {
    /// At most this long after the last checkpoint while writes keep coming.
    pub interval: Duration,
    /// After this long without a write.
    pub idle: Duration,
}

impl Default for Checkpoints {
    fn default() -> Self {
        Checkpoints {
            interval: CHECKPOINT_INTERVAL,
            idle: CHECKPOINT_IDLE,
        }
    }
}

/// The version byte that begins every record this build writes.
const RECORD_VERSION: u8 = 1;

/// The journal of one redb store, shared by the writer thread and the opener (which
/// replays it each time the database is opened again).
#[derive(Debug)]
pub(super) struct Journaled {
    dir: PathBuf,
    pub(super) checkpoints: Checkpoints,
    journal: Mutex<Option<Journal>>,
    /// How many records the opens so far replayed (for tests and the log).
    replayed: AtomicU64,
}

impl Journaled {
    pub(super) fn new(dir: PathBuf, checkpoints: Checkpoints) -> Journaled {
        Journaled {
            dir,
            checkpoints,
            journal: Mutex::new(None),
            replayed: AtomicU64::new(0),
        }
    }

    pub(super) fn replayed(&self) -> u64 {
        self.replayed.load(Ordering::Relaxed)
    }

    /// How many times the journal synced its data since the store was opened (0 if it
    /// is not open).
    pub(super) fn syncs(&self) -> u64 {
        self.lock().as_ref().map_or(0, Journal::syncs)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Journal>> {
        self.journal.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Open the journal for `db` (just opened, schema prepared), apply every record
    /// redb's durable state does not hold, and checkpoint.
    pub(super) fn recover(&self, db: &Database) -> Result<(), StorageError> {
        let (id, from) = {
            let txn = db.begin_read().bk()?;
            let meta = txn.open_table(META).bk()?;
            let get = |k: &str| -> Result<Option<u64>, StorageError> {
                Ok(meta.get(k).bk()?.map(|g| g.value()))
            };
            let from = match (get(META_JOURNAL_SEGMENT)?, get(META_JOURNAL_OFFSET)?) {
                (Some(segment), Some(offset)) => Some(Position { segment, offset }),
                _ => None,
            };
            (get(META_JOURNAL_ID)?, from)
        };
        let (id, from) = match id {
            Some(id) => (id, from),
            None => {
                // A new file, or one restored from a backup: a journal of its own.
                let id = loop {
                    let id = rand::random::<u64>();
                    if id != 0 {
                        break id;
                    }
                };
                write_txn(db, |txn| {
                    let mut meta = txn.open_table(META).bk()?;
                    meta.insert(META_JOURNAL_ID, id).bk()?;
                    meta.remove(META_JOURNAL_SEGMENT).bk()?;
                    meta.remove(META_JOURNAL_OFFSET).bk()?;
                    Ok(Finish::Commit(()))
                })?;
                (id, None)
            }
        };
        let mut replayed = 0u64;
        let mut journal = Journal::open(&self.dir, id, from, |end, payload| {
            replay(db, payload, end)?;
            replayed += 1;
            Ok(())
        })?;
        if replayed > 0 {
            tracing::warn!(
                records = replayed,
                "storage: applied the journal's records the database had not made durable (it was not closed cleanly)"
            );
        }
        self.replayed.fetch_add(replayed, Ordering::Relaxed);
        checkpoint_journal(db, &mut journal)?;
        *self.lock() = Some(journal);
        Ok(())
    }

    /// Make redb durable up to the journal's end (and begin a new segment if the last is
    /// long enough).
    pub(super) fn checkpoint(&self, db: &Database) -> Result<(), StorageError> {
        let mut guard = self.lock();
        match guard.as_mut() {
            Some(journal) => checkpoint_journal(db, journal),
            None => Ok(()),
        }
    }

    /// Apply `writes` in one redb transaction, journal those that wrote, and commit it
    /// without a sync of its own; one result per write. The outer error: nothing of them
    /// was kept.
    pub(super) fn commit(
        &self,
        db: &Database,
        writes: &[&Write],
    ) -> Result<Vec<Result<Written, StorageError>>, StorageError> {
        let mut txn = db.begin_write().bk()?;
        txn.set_durability(Durability::None).bk()?;
        let mut results = Vec::with_capacity(writes.len());
        let applied = GroupTables::open(&txn).and_then(|mut tables| {
            for write in writes {
                results.push(apply(&mut tables, write)?);
            }
            Ok(())
        });
        if let Err(e) = applied {
            let _ = txn.abort();
            return Err(e);
        }
        let kept: Vec<&Write> = writes
            .iter()
            .zip(&results)
            .filter(|(_, r)| matches!(r, Ok(w) if w.wrote()))
            .map(|(w, _)| *w)
            .collect();
        if kept.is_empty() {
            txn.abort().bk()?;
            return Ok(results);
        }
        // A group of acknowledgements only is not synced on its own (rule HUB-STORE-14):
        // the next group that is, or the next checkpoint, makes it durable. Lost in a
        // crash of the machine, it only has the outbox send those entries again. Its
        // transaction leaves the recorded position where it was, so a durable commit never
        // records a position past what the journal has synced; replayed over a state that
        // already holds it, an acknowledgement changes nothing.
        let flush = if kept.iter().all(|w| matches!(w, Write::Ack(..))) {
            Flush::Later
        } else {
            Flush::Now
        };
        let record = encode(&kept)?;
        let mut guard = self.lock();
        let Some(journal) = guard.as_mut() else {
            let _ = txn.abort();
            return Err(StorageError::Unavailable("the journal is not open".into()));
        };
        let before = journal.segment_len();
        let end = match journal.append(&record, flush) {
            Ok(end) => end,
            Err(e) => {
                let _ = txn.abort();
                return Err(e);
            }
        };
        if flush == Flush::Now
            && let Err(e) = set_position(&txn, end)
        {
            let _ = txn.abort();
            journal.undo_to(before);
            return Err(e);
        }
        if let Err(e) = txn.commit().bk() {
            journal.undo_to(before);
            return Err(e);
        }
        Ok(results)
    }
}

/// Remove the journal's id and position from a copy of the database (a backup): opened, it
/// begins a journal of its own.
pub(super) fn forget_journal(txn: &WriteTransaction) -> Result<(), StorageError> {
    let mut meta = txn.open_table(META).bk()?;
    for key in [META_JOURNAL_ID, META_JOURNAL_SEGMENT, META_JOURNAL_OFFSET] {
        meta.remove(key).bk()?;
    }
    Ok(())
}

/// Record in `txn` that redb holds the journal up to `at`.
fn set_position(txn: &WriteTransaction, at: Position) -> Result<(), StorageError> {
    let mut meta = txn.open_table(META).bk()?;
    meta.insert(META_JOURNAL_SEGMENT, at.segment).bk()?;
    meta.insert(META_JOURNAL_OFFSET, at.offset).bk()?;
    Ok(())
}

fn checkpoint_journal(db: &Database, journal: &mut Journal) -> Result<(), StorageError> {
    // The position recorded durably must be one the journal has synced.
    journal.sync()?;
    let end = journal.end();
    write_txn(db, |txn| {
        set_position(txn, end)?;
        Ok(Finish::Commit(()))
    })?;
    if journal.segment_len() > SEGMENT_MAX {
        let start = journal.rotate()?;
        debug_assert_eq!(start.offset, HEADER_LEN);
        write_txn(db, |txn| {
            set_position(txn, start)?;
            Ok(Finish::Commit(()))
        })?;
        journal.remove_before(start.segment)?;
    }
    Ok(())
}

/// Apply one journal record again, in a transaction of its own that records `end`.
fn replay(db: &Database, record: &[u8], end: Position) -> Result<(), StorageError> {
    let writes = decode(record)?;
    let mut txn = db.begin_write().bk()?;
    txn.set_durability(Durability::None).bk()?;
    let mut tables = GroupTables::open(&txn)?;
    for write in &writes {
        let applied: Applied = apply(&mut tables, write);
        match applied {
            Ok(Ok(_)) => {}
            Ok(Err(refused)) => {
                // It was kept when first applied, to this same state: a refusal now means
                // the state differs. Nothing of it is written; say so loudly.
                tracing::error!(error = %refused, ?end, "storage: a journaled write is refused on replay");
            }
            Err(e) => {
                drop(tables);
                let _ = txn.abort();
                return Err(e);
            }
        }
    }
    drop(tables);
    set_position(&txn, end)?;
    txn.commit().bk()
}

/// A journal record: the version, then the writes.
pub(super) fn encode(writes: &[&Write]) -> Result<Vec<u8>, StorageError> {
    let mut out = Out(Vec::with_capacity(256));
    out.u8(RECORD_VERSION);
    out.len(writes.len())?;
    for write in writes {
        match write {
            Write::Commit(batch) => {
                out.u8(1);
                encode_batch(&mut out, batch)?;
            }
            Write::Ack(dest, ids) => {
                out.u8(2);
                out.str(dest.as_str())?;
                out.len(ids.len())?;
                for id in ids {
                    out.u64(*id);
                }
            }
            Write::V06(records) => {
                out.u8(3);
                out.len(records.len())?;
                for (key, value) in records {
                    out.bytes(key)?;
                    match value {
                        None => out.u8(0),
                        Some(v) => {
                            out.u8(1);
                            out.bytes(v)?;
                        }
                    }
                }
            }
        }
    }
    Ok(out.0)
}

fn encode_batch(out: &mut Out, batch: &Batch) -> Result<(), StorageError> {
    let Batch {
        room,
        room_update,
        log,
        outbox,
        inbox,
        expect_last_seq,
        dedup,
        request,
        snapshot,
    } = batch;
    out.str(room.as_str())?;
    match room_update {
        None => out.u8(0),
        Some(update) => {
            out.u8(1);
            out.u8(update.role.to_byte());
            out.bytes(&update.state)?;
            match &update.group {
                GroupUpdate::Keep => out.u8(0),
                GroupUpdate::Replace(group) => {
                    out.u8(1);
                    out.bytes(group)?;
                }
                GroupUpdate::Remove => out.u8(2),
            }
        }
    }
    match log {
        None => out.u8(0),
        Some(entry) => {
            out.u8(1);
            out.u64(entry.seq);
            out.bytes(&entry.entry)?;
        }
    }
    out.len(outbox.len())?;
    for (dest, payload) in outbox {
        out.str(dest.as_str())?;
        out.payload(payload)?;
    }
    out.len(inbox.len())?;
    for (client, payload) in inbox {
        out.str(client.as_str())?;
        out.payload(payload)?;
    }
    match expect_last_seq {
        None => out.u8(0),
        Some(None) => out.u8(1),
        Some(Some(seq)) => {
            out.u8(2);
            out.u64(*seq);
        }
    }
    out.u8(u8::from(*dedup));
    match request {
        None => out.u8(0),
        Some(key) => {
            out.u8(1);
            out.0.extend_from_slice(key);
        }
    }
    match snapshot {
        None => out.u8(0),
        Some(s) => {
            out.u8(1);
            out.bytes(s)?;
        }
    }
    Ok(())
}

/// The writes of a journal record.
pub(super) fn decode(record: &[u8]) -> Result<Vec<Write>, StorageError> {
    let mut r = In(record);
    let version = r.u8()?;
    if version != RECORD_VERSION {
        return Err(bad(&format!("record version {version}")));
    }
    let n = r.len()?;
    let mut writes = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        writes.push(match r.u8()? {
            1 => Write::Commit(decode_batch(&mut r)?),
            2 => {
                let dest: ServerName = parse_stored(r.str()?, "server name")?;
                let count = r.len()?;
                let mut ids = Vec::with_capacity(count.min(1024));
                for _ in 0..count {
                    ids.push(r.u64()?);
                }
                Write::Ack(dest, ids)
            }
            3 => {
                let count = r.len()?;
                let mut records = Vec::with_capacity(count.min(1024));
                for _ in 0..count {
                    let key = r.bytes()?.to_vec();
                    let value = match r.u8()? {
                        0 => None,
                        1 => Some(r.bytes()?.to_vec()),
                        other => return Err(bad(&format!("-06 value tag {other}"))),
                    };
                    records.push((key, value));
                }
                Write::V06(records)
            }
            other => return Err(bad(&format!("write kind {other}"))),
        });
    }
    if !r.0.is_empty() {
        return Err(bad("bytes after the last write"));
    }
    Ok(writes)
}

fn decode_batch(r: &mut In<'_>) -> Result<Batch, StorageError> {
    let room: RoomId = parse_stored(r.str()?, "room ID")?;
    let room_update = match r.u8()? {
        0 => None,
        1 => {
            let role = RoomRole::from_byte(r.u8()?)?;
            let state = r.bytes()?.to_vec();
            let group = match r.u8()? {
                0 => GroupUpdate::Keep,
                1 => GroupUpdate::Replace(r.bytes()?.to_vec()),
                2 => GroupUpdate::Remove,
                other => return Err(bad(&format!("group update {other}"))),
            };
            Some(RoomUpdate { role, state, group })
        }
        other => return Err(bad(&format!("room update tag {other}"))),
    };
    let log = match r.u8()? {
        0 => None,
        1 => Some(LogEntry {
            seq: r.u64()?,
            entry: r.bytes()?.to_vec(),
        }),
        other => return Err(bad(&format!("log tag {other}"))),
    };
    let mut outbox = Vec::new();
    for _ in 0..r.len()? {
        let dest: ServerName = parse_stored(r.str()?, "server name")?;
        outbox.push((dest, r.payload()?));
    }
    let mut inbox = Vec::new();
    for _ in 0..r.len()? {
        let client: ClientId = parse_stored(r.str()?, "client ID")?;
        inbox.push((client, r.payload()?));
    }
    let expect_last_seq = match r.u8()? {
        0 => None,
        1 => Some(None),
        2 => Some(Some(r.u64()?)),
        other => return Err(bad(&format!("expected sequence tag {other}"))),
    };
    let dedup = match r.u8()? {
        0 => false,
        1 => true,
        other => return Err(bad(&format!("dedup flag {other}"))),
    };
    let request = match r.u8()? {
        0 => None,
        1 => {
            let key: RequestKey = r
                .take(32)?
                .try_into()
                .map_err(|_| bad("request key length"))?;
            Some(key)
        }
        other => return Err(bad(&format!("request tag {other}"))),
    };
    let snapshot = match r.u8()? {
        0 => None,
        1 => Some(r.bytes()?.to_vec()),
        other => return Err(bad(&format!("snapshot tag {other}"))),
    };
    Ok(Batch {
        room,
        room_update,
        log,
        outbox,
        inbox,
        expect_last_seq,
        dedup,
        request,
        snapshot,
    })
}

fn bad(what: &str) -> StorageError {
    StorageError::Corrupt(format!("journal record: {what}"))
}

/// A record being written.
struct Out(Vec<u8>);

impl Out {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn len(&mut self, n: usize) -> Result<(), StorageError> {
        let n = u32::try_from(n)
            .map_err(|_| StorageError::Invalid(format!("{n} items in one journaled write")))?;
        self.0.extend_from_slice(&n.to_le_bytes());
        Ok(())
    }
    fn bytes(&mut self, b: &[u8]) -> Result<(), StorageError> {
        self.len(b.len())?;
        self.0.extend_from_slice(b);
        Ok(())
    }
    fn str(&mut self, s: &str) -> Result<(), StorageError> {
        self.bytes(s.as_bytes())
    }
    fn payload(&mut self, p: &Payload) -> Result<(), StorageError> {
        match p {
            Payload::Bytes(b) => {
                self.u8(0);
                self.bytes(b)
            }
            Payload::Logged { len } => {
                self.u8(1);
                self.0.extend_from_slice(&len.to_le_bytes());
                Ok(())
            }
        }
    }
}

/// A record being read.
struct In<'a>(&'a [u8]);

impl<'a> In<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StorageError> {
        if self.0.len() < n {
            return Err(bad("cut short"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, StorageError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, StorageError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, StorageError> {
        let b: [u8; 8] = self.take(8)?.try_into().map_err(|_| bad("cut short"))?;
        Ok(u64::from_le_bytes(b))
    }
    fn len(&mut self) -> Result<usize, StorageError> {
        usize::try_from(self.u32()?).map_err(|_| bad("length"))
    }
    fn bytes(&mut self) -> Result<&'a [u8], StorageError> {
        let n = self.len()?;
        self.take(n)
    }
    fn str(&mut self) -> Result<&'a str, StorageError> {
        std::str::from_utf8(self.bytes()?).map_err(|_| bad("a string that is not UTF-8"))
    }
    fn payload(&mut self) -> Result<Payload, StorageError> {
        match self.u8()? {
            0 => Ok(Payload::Bytes(self.bytes()?.to_vec())),
            1 => Ok(Payload::Logged { len: self.u32()? }),
            other => Err(bad(&format!("payload tag {other}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room() -> RoomId {
        "!r:hub.example".parse().unwrap()
    }

    #[test]
    fn every_field_of_a_write_comes_back_from_its_record() {
        let full = Batch {
            room: room(),
            room_update: Some(RoomUpdate {
                role: RoomRole::Hub,
                state: vec![1, 2, 3],
                group: GroupUpdate::Replace(vec![4; 40]),
            }),
            log: Some(LogEntry {
                seq: 7,
                entry: vec![9; 1100],
            }),
            outbox: vec![
                ("b.example".parse().unwrap(), Payload::Logged { len: 1000 }),
                ("c.example".parse().unwrap(), Payload::Bytes(vec![5; 3])),
            ],
            inbox: vec![(
                "@u:hub.example#phone".parse().unwrap(),
                Payload::Logged { len: 12 },
            )],
            expect_last_seq: Some(Some(6)),
            dedup: true,
            request: Some([8; 32]),
            snapshot: Some(vec![6; 10]),
        };
        let mut bare = Batch::new(room());
        bare.expect_last_seq = Some(None);
        let mut removing = Batch::new(room());
        removing.room_update = Some(RoomUpdate {
            role: RoomRole::Follower,
            state: Vec::new(),
            group: GroupUpdate::Remove,
        });
        let records = vec![
            (b"consent/x".to_vec(), Some(vec![2])),
            (b"gone".to_vec(), None),
            (b"empty".to_vec(), Some(Vec::new())),
        ];
        let writes = [
            Write::Commit(full.clone()),
            Write::Ack("b.example".parse().unwrap(), vec![1, 2, u64::MAX]),
            Write::Commit(bare.clone()),
            Write::Commit(removing.clone()),
            Write::V06(records.clone()),
        ];
        let record = encode(&writes.iter().collect::<Vec<_>>()).unwrap();
        let back = decode(&record).unwrap();
        assert_eq!(back.len(), 5);
        match (&back[0], &back[1], &back[2], &back[3], &back[4]) {
            (
                Write::Commit(a),
                Write::Ack(dest, ids),
                Write::Commit(c),
                Write::Commit(d),
                Write::V06(v),
            ) => {
                assert_eq!(a, &full);
                assert_eq!(dest.as_str(), "b.example");
                assert_eq!(ids, &vec![1, 2, u64::MAX]);
                assert_eq!(c, &bare);
                assert_eq!(d, &removing);
                assert_eq!(v, &records);
            }
            _ => panic!("the writes came back as other kinds"),
        }
        // Every cut of the record is refused, never misread.
        for cut in 0..record.len() {
            assert!(decode(&record[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = record.clone();
        longer.push(0);
        assert!(decode(&longer).is_err());
    }
}
