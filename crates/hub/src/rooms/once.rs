//! Exactly once across lost answers: a resent request is recognised by the event's own
//! content and answered as the first was, without a second sequence number.
//!
//! The key is SHA-256 over the room, the sender and the limited event's bytes, for the
//! events that carry an MLS message (`ds.commit`, `ds.proposal`, `ds.send_message`): an
//! MLS commit, proposal or application message is unique bytes (its signature or AEAD
//! covers a fresh epoch-bound nonce), so equal bytes are a resend, never a second event.
//! Unsigned `m.room.user` events are not keyed: the same change may legitimately be sent
//! again later (knock, leave, knock), and a resend of one already applied is refused by
//! the participation rules rather than logged twice. The key is stored with the log
//! entry in the same transaction ([`Batch::request`](crate::storage::Batch)), so a crash
//! between the durable write and the answer still recognises the resend, for the room's
//! last [`REQUEST_WINDOW`](crate::storage::REQUEST_WINDOW) entries.
//!
//! Between the room accepting an event (in memory, under the room's lock) and its write
//! becoming durable, storage does not know the key yet: a resend arriving then would pass
//! the durable check. [`InFlight`] holds the keys of the writes submitted and not yet
//! settled; a resend of one waits for that write (a barrier behind it) and is then answered
//! from storage: `Ok` if the first copy is durable, "try again" if its write failed (as the
//! first copy was answered).
//!
//! With a storage this process alone writes, the durable check runs *before* the room's
//! lock is taken, so that its storage read does not hold up the room's other events; under
//! the lock, what it could have missed is in memory: a key whose write settled since the
//! check began is among the recently settled keys [`InFlight`] keeps ([`InFlight::since`]).
//! If more settled meanwhile than it keeps, or a write was abandoned with an unknown
//! outcome, the check is made again under the lock. With a storage other instances write
//! too, the check is always made under the lock.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use mimi_codec::{Event, RoomId, Sender, Wire};
use sha2::{Digest, Sha256};

use crate::storage::{Batch, RequestKey, Storage};

/// Rule HUB-ONCE-1 (docs/protocol-coverage.md): the identity of a request that logs an
/// event, or `None` for an event whose bytes may legitimately repeat.
pub fn request_key(room: &RoomId, sender: &Sender, event: &Event) -> Option<RequestKey> {
    if !matches!(
        event,
        Event::DsCommit(_) | Event::DsProposal(_) | Event::DsSendMessage(_)
    ) {
        return None;
    }
    let mut hash = Sha256::new();
    hash.update(b"mimi-hub request key v1\0");
    for part in [
        room.as_str().as_bytes().to_vec(),
        sender.to_string().into_bytes(),
        event.encode().ok()?,
    ] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(&part);
    }
    Some(hash.finalize().into())
}

/// How many recently settled keys [`InFlight`] keeps for [`InFlight::since`].
pub const RECENTLY_SETTLED: usize = 4096;

/// The request keys whose event is accepted and whose write is not settled yet, with the
/// event's sequence number, and the keys settled recently (see the module documentation).
///
/// Rule HUB-ONCE-2 (docs/protocol-coverage.md).
#[derive(Debug, Default)]
pub struct InFlight {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    keys: HashMap<RequestKey, u64>,
    /// How many keys have settled (left `keys`) so far.
    settled: u64,
    /// How many of them were abandoned before their write settled: whether that write is
    /// durable is not known here.
    uncertain: u64,
    /// The latest settled keys, oldest first, each with whether its write is durable.
    recent: VecDeque<(RequestKey, bool)>,
}

impl State {
    /// `key` settled: durable, failed, or (`None`) abandoned with an unknown outcome, which
    /// is never a durable match.
    fn settle(&mut self, key: &RequestKey, durable: Option<bool>) {
        self.keys.remove(key);
        self.settled = self.settled.wrapping_add(1);
        if durable.is_none() {
            self.uncertain = self.uncertain.wrapping_add(1);
        }
        if self.recent.len() == RECENTLY_SETTLED {
            self.recent.pop_front();
        }
        self.recent.push_back((*key, durable.unwrap_or(false)));
    }
}

/// Where [`InFlight`] stood when a durable check began ([`InFlight::mark`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    settled: u64,
    uncertain: u64,
}

/// What [`InFlight::since`] knows of a key since a [`Mark`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// Its event is accepted and its write not settled: the event with this sequence number.
    InFlight(u64),
    /// Its write became durable since the mark.
    Durable,
    /// Nothing since the mark: what the durable check found stands.
    Nothing,
    /// Unknown (more keys settled than are kept, or a write's outcome is not known): check
    /// storage again.
    Unknown,
}

impl InFlight {
    fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
        state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The sequence number of the in-flight event of `key`, if any.
    pub fn get(&self, key: &RequestKey) -> Option<u64> {
        Self::lock(&self.state).keys.get(key).copied()
    }

    /// Where things stand: taken before a durable check that runs outside the room's lock.
    pub fn mark(&self) -> Mark {
        let state = Self::lock(&self.state);
        Mark {
            settled: state.settled,
            uncertain: state.uncertain,
        }
    }

    /// What happened to `key` since `mark` (under the room's lock, after a durable check
    /// begun after the mark found nothing).
    ///
    /// Rule HUB-ONCE-3 (docs/protocol-coverage.md).
    pub fn since(&self, mark: Mark, key: &RequestKey) -> Since {
        let state = Self::lock(&self.state);
        if let Some(seq) = state.keys.get(key) {
            return Since::InFlight(*seq);
        }
        if state.uncertain != mark.uncertain {
            return Since::Unknown;
        }
        let Ok(settled) = usize::try_from(state.settled.wrapping_sub(mark.settled)) else {
            return Since::Unknown;
        };
        if settled > state.recent.len() {
            return Since::Unknown;
        }
        let durable = state
            .recent
            .iter()
            .rev()
            .take(settled)
            .any(|(k, durable)| *durable && k == key);
        if durable {
            Since::Durable
        } else {
            Since::Nothing
        }
    }

    /// Record `key` as in flight with the event `seq` (under the room's lock, before it is
    /// released). The key is forgotten when the guard is dropped after [`Settling::settled`],
    /// or, if the request is abandoned before its write settled, once every write
    /// submitted so far has settled (a barrier batch on `storage`).
    pub fn insert(
        &self,
        key: RequestKey,
        seq: u64,
        room: mimi_codec::RoomId,
        storage: Arc<dyn Storage>,
    ) -> Settling {
        Self::lock(&self.state).keys.insert(key, seq);
        Settling {
            state: Arc::clone(&self.state),
            key,
            room,
            storage,
            settled: None,
        }
    }
}

/// An in-flight key's hold (see [`InFlight::insert`]).
pub struct Settling {
    state: Arc<Mutex<State>>,
    key: RequestKey,
    room: mimi_codec::RoomId,
    storage: Arc<dyn Storage>,
    /// Whether the write became durable, once it settled.
    settled: Option<bool>,
}

impl Settling {
    /// The write settled, durable or failed: storage is the truth from now on.
    pub fn settled(mut self, durable: bool) {
        self.settled = Some(durable);
    }
}

impl Drop for Settling {
    fn drop(&mut self) {
        if let Some(durable) = self.settled {
            InFlight::lock(&self.state).settle(&self.key, Some(durable));
            return;
        }
        // Abandoned while the write is in flight: keep the key until it settles; its
        // outcome is not known here.
        let (state, key, room, storage) = (
            Arc::clone(&self.state),
            self.key,
            self.room.clone(),
            Arc::clone(&self.storage),
        );
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    let _ = storage.submit(Batch::new(room)).durable().await;
                    InFlight::lock(&state).settle(&key, None);
                });
            }
            Err(_) => {
                InFlight::lock(&state).settle(&key, None);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryStorage;

    fn room() -> RoomId {
        "!r:hub.example".parse().unwrap()
    }

    fn storage() -> Arc<dyn Storage> {
        Arc::new(MemoryStorage::new())
    }

    #[test]
    fn since_a_mark_a_key_is_in_flight_durable_or_nothing() {
        let f = InFlight::default();
        let mark = f.mark();
        assert_eq!(f.since(mark, &[1; 32]), Since::Nothing);
        let hold = f.insert([1; 32], 7, room(), storage());
        assert_eq!(f.since(mark, &[1; 32]), Since::InFlight(7));
        hold.settled(true);
        assert_eq!(f.since(mark, &[1; 32]), Since::Durable);
        // A mark taken after it settled: the durable check (storage) found it already.
        assert_eq!(f.since(f.mark(), &[1; 32]), Since::Nothing);
        // A failed write is not durable.
        let mark = f.mark();
        f.insert([2; 32], 8, room(), storage()).settled(false);
        assert_eq!(f.since(mark, &[2; 32]), Since::Nothing);
    }

    #[test]
    fn more_settled_than_kept_or_an_abandoned_write_is_unknown() {
        let f = InFlight::default();
        let mark = f.mark();
        f.insert([1; 32], 0, room(), storage()).settled(true);
        for i in 0..RECENTLY_SETTLED {
            let mut key = [0; 32];
            key[..8].copy_from_slice(&(i as u64 + 10).to_be_bytes());
            f.insert(key, 1, room(), storage()).settled(true);
        }
        assert_eq!(f.since(mark, &[1; 32]), Since::Unknown);
        let mark = f.mark();
        // Dropped without settling, outside a runtime: settled with an unknown outcome.
        drop(f.insert([3; 32], 2, room(), storage()));
        assert_eq!(f.since(mark, &[3; 32]), Since::Unknown);
        assert_eq!(f.since(mark, &[4; 32]), Since::Unknown);
    }
}
