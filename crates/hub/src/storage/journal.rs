//! The journal: an append-only segment log of the redb store's writes, beside its file
//! (issue 13, item 2: "an append-only segment log beside redb").
//!
//! This module knows records as bytes only; what a record holds is the redb store's
//! business (`storage::redb`). It owns the files: a directory of segments, each named by
//! its number (`0000000000000001.seg`), each a header then records:
//!
//! ```text
//! header: b"MIMIJNL1" | journal id (u64, little-endian)
//! record: length (u32 LE) | CRC-32 of the payload (u32 LE) | payload (length bytes)
//! ```
//!
//! A record appended with [`Flush::Now`] is durable when [`Journal::append`] returns: it
//! is written and `fdatasync`ed, and so is every record before it. One appended with
//! [`Flush::Later`] is only written: it becomes durable with the next synced append or
//! [`Journal::sync`]. A crash of the machine before then may lose it, and only it and the
//! unsynced records after it, never a record before the last sync.
//! A record cut short by a crash (or whose checksum fails) at the end of the last segment
//! was never acknowledged, and is cut off when the journal is opened; the same damage in
//! an earlier segment is corruption, and the journal refuses to open.
//!
//! The journal id ties the directory to one database: the redb file keeps it. A directory
//! whose segments carry another id (a database file restored from a backup, say, beside
//! the journal of the one it replaced) is moved aside whole, never replayed.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use super::StorageError;

/// The first bytes of every segment.
const MAGIC: &[u8; 8] = b"MIMIJNL1";
/// A segment's header: the magic and the journal id.
pub(crate) const HEADER_LEN: u64 = 16;
/// A record's frame before its payload: length and checksum.
const FRAME_LEN: usize = 8;
/// The largest payload a record may have (a group of writes, each bounded by the hub's
/// body limit, stays far below it).
pub const RECORD_MAX: usize = 1 << 30;
/// A segment longer than this is closed at the next checkpoint and a new one begun.
pub const SEGMENT_MAX: u64 = 64 << 20;

/// A place in the journal: a segment and a byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Position {
    /// The segment's number.
    pub segment: u64,
    /// The offset in the segment (at least [`HEADER_LEN`]).
    pub offset: u64,
}

/// Whether [`Journal::append`] makes its record durable before it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flush {
    /// Written and `fdatasync`ed (with every record before it).
    Now,
    /// Written only; durable with the next sync.
    Later,
}

/// An open journal, appended to at the end of its last segment.
#[derive(Debug)]
pub(crate) struct Journal {
    dir: PathBuf,
    id: u64,
    segment: u64,
    file: File,
    len: u64,
    /// How much of the last segment is known durable (`fdatasync`ed): `len` unless
    /// records were appended with [`Flush::Later`] since.
    synced: u64,
    /// How many times the journal synced a segment's data (for tests and measurements).
    syncs: u64,
    /// An append failed and could not be cut back off: nothing more is appended until the
    /// journal is opened again (and its tail checked).
    poisoned: bool,
}

fn io(what: &str, path: &Path, e: std::io::Error) -> StorageError {
    StorageError::Unavailable(format!("journal: {what} {}: {e}", path.display()))
}

fn segment_name(segment: u64) -> String {
    format!("{segment:016x}.seg")
}

/// The numbers of the segments in `dir`, in order.
fn segments(dir: &Path) -> Result<Vec<u64>, StorageError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io("reading", dir, e))? {
        let entry = entry.map_err(|e| io("reading", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(hex) = name.strip_suffix(".seg") else {
            continue;
        };
        if hex.len() == 16
            && let Ok(n) = u64::from_str_radix(hex, 16)
        {
            out.push(n);
        }
    }
    out.sort_unstable();
    Ok(out)
}

fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("syncing", dir, e))
}

/// The header of a segment of journal `id`.
fn header(id: u64) -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[..8].copy_from_slice(MAGIC);
    h[8..].copy_from_slice(&id.to_le_bytes());
    h
}

/// What reading one segment found.
struct Scan {
    /// The offset after its last whole record.
    end: u64,
    /// Whether bytes follow that are not a whole record.
    torn: bool,
}

/// Read the records of `bytes` (a whole segment) from `from`, handing each to `record`
/// with the position after it.
fn scan(
    segment: u64,
    bytes: &[u8],
    from: u64,
    record: &mut impl FnMut(Position, &[u8]) -> Result<(), StorageError>,
) -> Result<Scan, StorageError> {
    let mut at = usize::try_from(from).map_err(|_| corrupt(segment, "offset"))?;
    if at > bytes.len() {
        return Err(corrupt(segment, "the stored position is past its end"));
    }
    loop {
        let rest = &bytes[at..];
        if rest.is_empty() {
            return Ok(Scan {
                end: at as u64,
                torn: false,
            });
        }
        let torn = Ok(Scan {
            end: at as u64,
            torn: true,
        });
        let Some(frame) = rest.get(..FRAME_LEN) else {
            return torn;
        };
        let len = u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
        let crc = u32::from_le_bytes([frame[4], frame[5], frame[6], frame[7]]);
        if len == 0 || len > RECORD_MAX {
            return torn;
        }
        let Some(payload) = rest.get(FRAME_LEN..FRAME_LEN + len) else {
            return torn;
        };
        if crc32fast::hash(payload) != crc {
            return torn;
        }
        at += FRAME_LEN + len;
        record(
            Position {
                segment,
                offset: at as u64,
            },
            payload,
        )?;
    }
}

fn corrupt(segment: u64, what: &str) -> StorageError {
    StorageError::Corrupt(format!("journal segment {}: {what}", segment_name(segment)))
}

impl Journal {
    /// Open (or create) the journal in `dir` for the database whose journal id is `id`,
    /// handing `replay` every record after `from` (the position the database has applied
    /// up to; `None`: none applied), in order, with the position after each.
    ///
    /// Segments before `from`'s are removed; a torn tail is cut off; a directory of another
    /// journal is moved aside.
    pub(crate) fn open(
        dir: &Path,
        id: u64,
        from: Option<Position>,
        mut replay: impl FnMut(Position, &[u8]) -> Result<(), StorageError>,
    ) -> Result<Journal, StorageError> {
        create_dir(dir)?;
        let mut found = segments(dir)?;
        if let Some(&first) = found.first()
            && segment_id(&dir.join(segment_name(first)))? != Some(id)
        {
            let aside = aside_name(dir);
            tracing::warn!(
                journal = %dir.display(),
                moved_to = %aside.display(),
                "storage: the journal belongs to another database file; moved aside, not replayed"
            );
            std::fs::rename(dir, &aside).map_err(|e| io("moving aside", dir, e))?;
            create_dir(dir)?;
            found.clear();
        }
        let start = from.map_or(1, |p| p.segment);
        for &old in found.iter().filter(|&&n| n < start) {
            let path = dir.join(segment_name(old));
            std::fs::remove_file(&path).map_err(|e| io("removing", &path, e))?;
        }
        found.retain(|&n| n >= start);
        if let Some(&first) = found.first()
            && from.is_some()
            && first != start
        {
            return Err(corrupt(start, "missing, while later segments exist"));
        }
        for pair in found.windows(2) {
            if pair[1] != pair[0] + 1 {
                return Err(corrupt(pair[0] + 1, "missing between two others"));
            }
        }
        let Some(&last) = found.last() else {
            return Journal::create(dir, id, start.max(1));
        };
        let mut end = HEADER_LEN;
        for &n in &found {
            let path = dir.join(segment_name(n));
            let bytes = std::fs::read(&path).map_err(|e| io("reading", &path, e))?;
            if bytes.len() < HEADER_LEN as usize {
                if n == last {
                    // Created, then a crash before its header was synced: begin it again.
                    std::fs::remove_file(&path).map_err(|e| io("removing", &path, e))?;
                    return Journal::create(dir, id, n);
                }
                return Err(corrupt(n, "shorter than its header"));
            }
            if bytes[..HEADER_LEN as usize] != header(id) {
                return Err(corrupt(n, "its header is not this journal's"));
            }
            let from_offset = match from {
                Some(p) if p.segment == n => p.offset.max(HEADER_LEN),
                _ => HEADER_LEN,
            };
            let scan = scan(n, &bytes, from_offset, &mut replay)?;
            if scan.torn {
                if n != last {
                    return Err(corrupt(n, "a damaged record before the last segment"));
                }
                tracing::warn!(
                    segment = %path.display(),
                    at = scan.end,
                    cut = bytes.len() as u64 - scan.end,
                    "storage: the journal ends in a record cut short (never acknowledged); cut off"
                );
            }
            end = scan.end;
        }
        let path = dir.join(segment_name(last));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| io("opening", &path, e))?;
        file.set_len(end)
            .and_then(|()| file.sync_all())
            .map_err(|e| io("cutting", &path, e))?;
        Ok(Journal {
            dir: dir.to_path_buf(),
            id,
            segment: last,
            file,
            len: end,
            synced: end,
            syncs: 0,
            poisoned: false,
        })
    }

    /// Begin segment `segment` (which must not exist) as the journal's last.
    fn create(dir: &Path, id: u64, segment: u64) -> Result<Journal, StorageError> {
        let path = dir.join(segment_name(segment));
        let mut options = OpenOptions::new();
        options.read(true).write(true).create_new(true);
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            // The journal holds what the database holds: its owner's only.
            options.mode(0o600);
        }
        let mut file = options.open(&path).map_err(|e| io("creating", &path, e))?;
        file.write_all(&header(id))
            .and_then(|()| file.sync_all())
            .map_err(|e| io("writing", &path, e))?;
        sync_dir(dir)?;
        Ok(Journal {
            dir: dir.to_path_buf(),
            id,
            segment,
            file,
            len: HEADER_LEN,
            synced: HEADER_LEN,
            syncs: 0,
            poisoned: false,
        })
    }

    /// The position after the last record.
    pub(crate) fn end(&self) -> Position {
        Position {
            segment: self.segment,
            offset: self.len,
        }
    }

    /// How long the last segment is.
    pub(crate) fn segment_len(&self) -> u64 {
        self.len
    }

    /// Append one record, made durable now or with the next sync (`flush`); the position
    /// after it.
    pub(crate) fn append(
        &mut self,
        payload: &[u8],
        flush: Flush,
    ) -> Result<Position, StorageError> {
        if self.poisoned {
            return Err(StorageError::Unavailable(
                "journal: an earlier append failed and could not be undone".into(),
            ));
        }
        if payload.is_empty() || payload.len() > RECORD_MAX {
            return Err(StorageError::Invalid(format!(
                "a journal record of {} bytes (1 to {RECORD_MAX})",
                payload.len()
            )));
        }
        let mut frame = Vec::with_capacity(FRAME_LEN + payload.len());
        frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        frame.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        frame.extend_from_slice(payload);
        let written = self
            .file
            .write_all_at(&frame, self.len)
            .and_then(|()| match flush {
                Flush::Now => self.file.sync_data().map(|()| self.syncs += 1),
                Flush::Later => Ok(()),
            });
        if let Err(e) = written {
            self.undo_to(self.len);
            return Err(io("appending to", &self.path(), e));
        }
        self.len += frame.len() as u64;
        if flush == Flush::Now {
            self.synced = self.len;
        }
        Ok(self.end())
    }

    /// Make every record appended so far durable (nothing to do if they are).
    pub(crate) fn sync(&mut self) -> Result<(), StorageError> {
        if self.synced == self.len {
            return Ok(());
        }
        self.file
            .sync_data()
            .map_err(|e| io("syncing", &self.path(), e))?;
        self.syncs += 1;
        self.synced = self.len;
        Ok(())
    }

    /// How many times this journal (since it was opened) synced its data.
    pub(crate) fn syncs(&self) -> u64 {
        self.syncs
    }

    /// Cut the last segment back to `len` after a failed write, or after a record whose
    /// transaction did not commit; if even that fails, append nothing more.
    pub(crate) fn undo_to(&mut self, len: u64) {
        match self.file.set_len(len).and_then(|()| self.file.sync_data()) {
            Ok(()) => {
                self.len = len;
                self.synced = len;
                self.syncs += 1;
            }
            Err(e) => {
                tracing::error!(error = %e, "storage: the journal could not be cut back; appends stop until it is reopened");
                self.poisoned = true;
            }
        }
    }

    /// Begin a new segment after the last; the position of its first record.
    pub(crate) fn rotate(&mut self) -> Result<Position, StorageError> {
        self.sync()?;
        let next = Journal::create(&self.dir, self.id, self.segment + 1)?;
        *self = next;
        Ok(self.end())
    }

    /// Remove every segment before `segment` (their records are all in the database).
    pub(crate) fn remove_before(&self, segment: u64) -> Result<(), StorageError> {
        for old in segments(&self.dir)?.into_iter().filter(|&n| n < segment) {
            let path = self.dir.join(segment_name(old));
            std::fs::remove_file(&path).map_err(|e| io("removing", &path, e))?;
        }
        sync_dir(&self.dir)
    }

    fn path(&self) -> PathBuf {
        self.dir.join(segment_name(self.segment))
    }
}

fn create_dir(dir: &Path) -> Result<(), StorageError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|e| io("creating", dir, e))
}

/// The journal id in a segment's header, `None` if it has no whole header.
fn segment_id(path: &Path) -> Result<Option<u64>, StorageError> {
    let file = File::open(path).map_err(|e| io("opening", path, e))?;
    let mut h = [0u8; HEADER_LEN as usize];
    match file.read_exact_at(&mut h, 0) {
        Ok(()) if &h[..8] == MAGIC => {
            let mut id = [0u8; 8];
            id.copy_from_slice(&h[8..]);
            Ok(Some(u64::from_le_bytes(id)))
        }
        Ok(()) => Ok(Some(0)),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(io("reading", path, e)),
    }
}

/// A free name beside `dir` to move a foreign journal to.
fn aside_name(dir: &Path) -> PathBuf {
    let base = dir.as_os_str().to_string_lossy().into_owned();
    (1u32..)
        .map(|n| PathBuf::from(format!("{base}.foreign-{n}")))
        .find(|p| !p.exists())
        .unwrap_or_else(|| PathBuf::from(format!("{base}.foreign")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(dir: &Path, id: u64, from: Option<Position>) -> (Journal, Vec<(Position, Vec<u8>)>) {
        let mut seen = Vec::new();
        let j = Journal::open(dir, id, from, |p, r| {
            seen.push((p, r.to_vec()));
            Ok(())
        })
        .unwrap();
        (j, seen)
    }

    /// Records appended to sync later cost no sync of their own; the next synced append,
    /// or `sync`, makes them durable with it; all come back in order.
    #[test]
    fn records_appended_to_sync_later_are_synced_by_the_next_sync() {
        let dir = tempfile::tempdir().unwrap();
        let jdir = dir.path().join("j");
        let (mut j, _) = collect(&jdir, 7, None);
        let start = j.syncs();
        j.append(b"ack1", Flush::Later).unwrap();
        j.append(b"ack2", Flush::Later).unwrap();
        assert_eq!(j.syncs(), start);
        j.sync().unwrap();
        assert_eq!(j.syncs(), start + 1);
        j.sync().unwrap();
        assert_eq!(j.syncs(), start + 1, "nothing new to sync");
        j.append(b"ack3", Flush::Later).unwrap();
        let end = j.append(b"event", Flush::Now).unwrap();
        assert_eq!(
            j.syncs(),
            start + 2,
            "one sync for the record and the one before it"
        );
        drop(j);
        let (j, seen) = collect(&jdir, 7, None);
        let records: Vec<&[u8]> = seen.iter().map(|(_, r)| r.as_slice()).collect();
        assert_eq!(records, [&b"ack1"[..], b"ack2", b"ack3", b"event"]);
        assert_eq!(j.end(), end);
    }

    #[test]
    fn records_come_back_in_order_from_a_position() {
        let dir = tempfile::tempdir().unwrap();
        let jdir = dir.path().join("j");
        let (mut j, seen) = collect(&jdir, 7, None);
        assert!(seen.is_empty());
        let a = j.append(b"one", Flush::Now).unwrap();
        let b = j.append(b"two", Flush::Now).unwrap();
        drop(j);
        let (_, seen) = collect(&jdir, 7, None);
        assert_eq!(seen, vec![(a, b"one".to_vec()), (b, b"two".to_vec())]);
        // Readable by the owner only, in a directory of the owner's only.
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&jdir.join(segment_name(a.segment))), 0o600);
        assert_eq!(mode(&jdir), 0o700);
        let (_, seen) = collect(&jdir, 7, Some(a));
        assert_eq!(seen, vec![(b, b"two".to_vec())]);
        let (_, seen) = collect(&jdir, 7, Some(b));
        assert!(seen.is_empty());
    }

    #[test]
    fn a_torn_tail_is_cut_off_and_appending_goes_on_after_the_last_whole_record() {
        let dir = tempfile::tempdir().unwrap();
        let jdir = dir.path().join("j");
        let (mut j, _) = collect(&jdir, 7, None);
        let a = j.append(b"whole", Flush::Now).unwrap();
        let path = j.path();
        drop(j);
        // Half a record: a frame promising 100 bytes, and 3 of them.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&100u32.to_le_bytes()).unwrap();
        f.write_all(&[0, 0, 0, 0, 1, 2, 3]).unwrap();
        drop(f);
        let (mut j, seen) = collect(&jdir, 7, None);
        assert_eq!(seen, vec![(a, b"whole".to_vec())]);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), a.offset);
        let b = j.append(b"next", Flush::Now).unwrap();
        drop(j);
        let (_, seen) = collect(&jdir, 7, None);
        assert_eq!(seen, vec![(a, b"whole".to_vec()), (b, b"next".to_vec())]);
    }

    #[test]
    fn a_damaged_record_is_not_replayed_nor_anything_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let jdir = dir.path().join("j");
        let (mut j, _) = collect(&jdir, 7, None);
        let a = j.append(b"first", Flush::Now).unwrap();
        j.append(b"second", Flush::Now).unwrap();
        j.append(b"third", Flush::Now).unwrap();
        let path = j.path();
        drop(j);
        // One bit of the second record's payload flipped.
        let mut bytes = std::fs::read(&path).unwrap();
        let at = a.offset as usize + FRAME_LEN;
        bytes[at] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let (_, seen) = collect(&jdir, 7, None);
        assert_eq!(seen, vec![(a, b"first".to_vec())]);
    }

    #[test]
    fn rotated_segments_replay_in_order_and_old_ones_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let jdir = dir.path().join("j");
        let (mut j, _) = collect(&jdir, 7, None);
        let a = j.append(b"a", Flush::Now).unwrap();
        let second = j.rotate().unwrap();
        assert_eq!(second.segment, a.segment + 1);
        let b = j.append(b"b", Flush::Now).unwrap();
        drop(j);
        let (j, seen) = collect(&jdir, 7, None);
        assert_eq!(seen, vec![(a, b"a".to_vec()), (b, b"b".to_vec())]);
        j.remove_before(second.segment).unwrap();
        assert_eq!(segments(&jdir).unwrap(), vec![second.segment]);
        // Opening from a position in the second segment removes nothing it needs.
        let (_, seen) = collect(&jdir, 7, Some(second));
        assert_eq!(seen, vec![(b, b"b".to_vec())]);
        // A damaged record in a segment that is not the last is corruption.
        let (mut j, _) = collect(&jdir, 7, Some(second));
        j.rotate().unwrap();
        j.append(b"c", Flush::Now).unwrap();
        drop(j);
        let first = jdir.join(segment_name(second.segment));
        let mut bytes = std::fs::read(&first).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&first, &bytes).unwrap();
        let err = Journal::open(&jdir, 7, Some(second), |_, _| Ok(())).unwrap_err();
        assert!(matches!(err, StorageError::Corrupt(_)), "{err:?}");
    }

    #[test]
    fn another_databases_journal_is_moved_aside_not_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let jdir = dir.path().join("hub.redb.journal");
        let (mut j, _) = collect(&jdir, 7, None);
        j.append(b"theirs", Flush::Now).unwrap();
        drop(j);
        let (_, seen) = collect(&jdir, 8, None);
        assert!(seen.is_empty());
        let aside = dir.path().join("hub.redb.journal.foreign-1");
        assert_eq!(segments(&aside).unwrap().len(), 1);
        // Its records are still there, under its own id.
        let (_, seen) = collect(&aside, 7, None);
        assert_eq!(seen.len(), 1);
    }
}
