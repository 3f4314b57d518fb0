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

use std::collections::HashMap;
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

/// The request keys whose event is accepted and whose write is not settled yet, with the
/// event's sequence number (see the module documentation).
///
/// Rule HUB-ONCE-2 (docs/protocol-coverage.md).
#[derive(Debug, Default)]
pub struct InFlight {
    keys: Arc<Mutex<HashMap<RequestKey, u64>>>,
}

impl InFlight {
    fn lock(
        keys: &Mutex<HashMap<RequestKey, u64>>,
    ) -> std::sync::MutexGuard<'_, HashMap<RequestKey, u64>> {
        keys.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The sequence number of the in-flight event of `key`, if any.
    pub fn get(&self, key: &RequestKey) -> Option<u64> {
        Self::lock(&self.keys).get(key).copied()
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
        Self::lock(&self.keys).insert(key, seq);
        Settling {
            keys: Arc::clone(&self.keys),
            key,
            room,
            storage,
            settled: false,
        }
    }
}

/// An in-flight key's hold (see [`InFlight::insert`]).
pub struct Settling {
    keys: Arc<Mutex<HashMap<RequestKey, u64>>>,
    key: RequestKey,
    room: mimi_codec::RoomId,
    storage: Arc<dyn Storage>,
    settled: bool,
}

impl Settling {
    /// The write settled (durable or failed): storage is the truth from now on.
    pub fn settled(mut self) {
        self.settled = true;
    }
}

impl Drop for Settling {
    fn drop(&mut self) {
        if self.settled {
            InFlight::lock(&self.keys).remove(&self.key);
            return;
        }
        // Abandoned while the write is in flight: keep the key until it settles.
        let (keys, key, room, storage) = (
            Arc::clone(&self.keys),
            self.key,
            self.room.clone(),
            Arc::clone(&self.storage),
        );
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    let _ = storage.submit(Batch::new(room)).durable().await;
                    InFlight::lock(&keys).remove(&key);
                });
            }
            Err(_) => {
                InFlight::lock(&keys).remove(&key);
            }
        }
    }
}
