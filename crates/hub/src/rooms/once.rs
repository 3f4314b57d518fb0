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

use mimi_codec::{Event, RoomId, Sender, Wire};
use sha2::{Digest, Sha256};

use crate::storage::RequestKey;

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
