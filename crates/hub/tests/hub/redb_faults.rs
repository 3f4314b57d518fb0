//! redb under disk faults (issue 17, fault C): a disk that fills up and is freed again.
//!
//! The database file is kept by redb's own `FileBackend` behind a wrapper whose writes,
//! length changes and syncs fail with `ENOSPC` while the test says the disk is full: the
//! same errors a full filesystem gives, at the same place (the file I/O under redb).

use std::ops::Bound;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use mimi_codec::RoomId;
use mimi_hub::storage::{
    Batch, GroupUpdate, LogEntry, RedbStorage, RoomRole, RoomUpdate, Storage, StorageError,
};
use redb::backends::FileBackend;
use redb::{BackendError, StorageBackend};

const ENOSPC: i32 = 28;
const EIO: i32 = 5;

fn full() -> std::io::Error {
    std::io::Error::from_raw_os_error(ENOSPC)
}

/// A file whose disk can be made full.
#[derive(Debug)]
struct Disk {
    file: FileBackend,
    full: Arc<AtomicBool>,
    /// Reads fail (EIO) while set.
    unreadable: Arc<AtomicBool>,
}

impl StorageBackend for Disk {
    fn len(&self) -> Result<u64, std::io::Error> {
        self.file.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        if self.unreadable.load(Ordering::SeqCst) {
            return Err(std::io::Error::from_raw_os_error(EIO));
        }
        self.file.read(offset, out)
    }
    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        if self.full.load(Ordering::SeqCst) && len > self.file.len()? {
            return Err(full());
        }
        self.file.set_len(len)
    }
    fn sync_data(&self) -> Result<(), std::io::Error> {
        if self.full.load(Ordering::SeqCst) {
            return Err(full());
        }
        self.file.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        if self.full.load(Ordering::SeqCst) {
            return Err(full());
        }
        self.file.write(offset, data)
    }
    fn close(&self) -> Result<(), std::io::Error> {
        self.file.close()
    }
    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.try_lock_range(start, end)
    }
    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.file.try_lock_shared_range(start, end)
    }
    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_range(start, end)
    }
    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_shared_range(start, end)
    }
    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.unlock_range(start, end)
    }
    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.query_lock_range(start, end)
    }
}

fn open(path: PathBuf, full: Arc<AtomicBool>) -> RedbStorage {
    open_faulty(path, full, Arc::new(AtomicBool::new(false)))
}

fn open_faulty(path: PathBuf, full: Arc<AtomicBool>, unreadable: Arc<AtomicBool>) -> RedbStorage {
    RedbStorage::open_with_backend(move || {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| StorageError::Backend(e.to_string()))?;
        Ok(Disk {
            file: FileBackend::new(file).map_err(|e| StorageError::Backend(e.to_string()))?,
            full: Arc::clone(&full),
            unreadable: Arc::clone(&unreadable),
        })
    })
    .unwrap()
}

fn event(room: &RoomId, seq: u64) -> Batch {
    let mut b = Batch::new(room.clone());
    b.expect_last_seq = Some(seq.checked_sub(1));
    b.room_update = Some(RoomUpdate {
        role: RoomRole::Hub,
        state: format!("state{seq}").into_bytes(),
        // Large enough that the write needs new pages.
        group: GroupUpdate::Replace(vec![seq as u8; 64 * 1024]),
    });
    b.log = Some(LogEntry {
        seq,
        entry: format!("event{seq}").into_bytes(),
    });
    b
}

fn logged(s: &impl Storage, room: &RoomId) -> Vec<Vec<u8>> {
    s.log_range(room, 0, 100)
        .unwrap()
        .into_iter()
        .map(|e| e.entry)
        .collect()
}

#[test]
fn a_full_disk_that_is_freed_needs_no_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hub.redb");
    let is_full = Arc::new(AtomicBool::new(false));
    let storage = open(path.clone(), Arc::clone(&is_full));
    let room: RoomId = "!faults:a.example".parse().unwrap();

    storage.commit(event(&room, 0)).unwrap();

    // The disk fills: writes fail with a typed, transient error, through the group-commit
    // writer and through the direct write path alike, and nothing of them is stored.
    is_full.store(true, Ordering::SeqCst);
    for _ in 0..3 {
        let e = storage.submit(event(&room, 1)).wait().unwrap_err();
        assert!(matches!(e, StorageError::Unavailable(_)), "{e:?}");
    }
    let e = storage.commit(event(&room, 1)).unwrap_err();
    assert!(matches!(e, StorageError::Unavailable(_)), "{e:?}");

    // Space is freed: the very next write goes through, without reopening by hand.
    is_full.store(false, Ordering::SeqCst);
    storage.submit(event(&room, 1)).wait().unwrap();
    storage.commit(event(&room, 2)).unwrap();
    assert_eq!(
        logged(&storage, &room),
        vec![b"event0".to_vec(), b"event1".to_vec(), b"event2".to_vec()]
    );

    // And what was acknowledged is on disk: the file opens on its own with all of it.
    drop(storage);
    let again = RedbStorage::open(&path).unwrap();
    assert_eq!(logged(&again, &room).len(), 3);
    assert_eq!(again.room(&room).unwrap().unwrap().last_seq, Some(2));
}

/// A backup that fails partway (the database cannot be read) leaves no file behind: the
/// path can be used again, and nobody mistakes a partial copy for a backup.
#[test]
fn a_backup_that_fails_partway_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hub.redb");
    let room: RoomId = "!faults:a.example".parse().unwrap();
    {
        let storage = open(path.clone(), Arc::new(AtomicBool::new(false)));
        for seq in 0..40 {
            storage.commit(event(&room, seq)).unwrap();
        }
    }
    let unreadable = Arc::new(AtomicBool::new(false));
    let storage = open_faulty(
        path.clone(),
        Arc::new(AtomicBool::new(false)),
        Arc::clone(&unreadable),
    );
    unreadable.store(true, Ordering::SeqCst);
    let out = dir.path().join("backup.redb");
    let e = storage.backup(&out).unwrap_err();
    assert!(!out.exists(), "a partial backup was left: {e:?}");
    // Readable again, the same path takes a whole backup.
    unreadable.store(false, Ordering::SeqCst);
    drop(storage);
    let storage = open(path, Arc::new(AtomicBool::new(false)));
    storage.backup(&out).unwrap();
    drop(storage);
    assert_eq!(logged(&RedbStorage::open(&out).unwrap(), &room).len(), 40);
}
