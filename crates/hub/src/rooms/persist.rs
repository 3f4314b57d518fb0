//! How the room engine makes an accepted event durable: the storage batch of a hub's event
//! (its log entry, room and group state, the fan-out to every destination — with the
//! events a destination has not been sent yet first — and the local inbox items) and of a
//! follower's, and how log entries and the room metadata are encoded: TLS-encoded with the
//! codec's own bounded types, so stored data is read back with the same strictness as peer
//! input.

use mimi_codec::limits::MAX_PARTICIPANTS;
use mimi_codec::{
    BoundedVec, CodecError, FanoutEvent, MessageBody, MimiMessage, RoomId, ServerName, UserEvent,
    Wire,
};
use std::collections::BTreeSet;

use mimi_codec::{EventError, UserId};
use mimi_ds::{FollowerRoom, HubAccepted, HubRoom};
use mimi_signaling::{LoggedEvent, MAX_CHANGES_PER_EVENT, event_hash};
use tls_codec::{TlsDeserialize, TlsSerialize, TlsSize};

use super::{Rooms, Submitted, internal};
use crate::storage::{
    Batch, GroupUpdate, LogEntry, MAX_READ_LIMIT, Payload, RequestKey, RoomRole, RoomUpdate,
};
use tls_codec::Size;

/// How often a room's signaling snapshot is stored: with every event whose sequence
/// number is a multiple of this. Loading a room then reads its create event, the
/// snapshot's window (about [`mimi_signaling::HISTORY_WINDOW`] events) and at most this
/// many events after the snapshot, whatever the length of its history; a snapshot (the
/// room state, a few hundred bytes for a small room) is written once per this many events.
///
/// Rule HUB-LOAD-1 (docs/protocol-coverage.md).
pub const SNAPSHOT_INTERVAL: u64 = 64;

/// The snapshot to store with the event `sequence`, if it is due.
fn snapshot_due(
    sequence: u64,
    snapshot: impl FnOnce() -> mimi_signaling::Snapshot,
) -> Result<Option<Vec<u8>>, EventError> {
    if sequence == 0 || !sequence.is_multiple_of(SNAPSHOT_INTERVAL) {
        return Ok(None);
    }
    snapshot().encode().map(Some).map_err(internal)
}

/// One log entry: the event as the hub fans it out, and its participation changes.
#[derive(Debug, Clone, PartialEq, Eq, TlsSize, TlsSerialize, TlsDeserialize)]
struct StoredEvent {
    message: MimiMessage,
    changes: BoundedVec<UserEvent, MAX_CHANGES_PER_EVENT>,
}

impl Wire for StoredEvent {}

/// Encode a logged event for the room log.
pub fn encode_event(room: &RoomId, event: &LoggedEvent) -> Result<Vec<u8>, CodecError> {
    encode_logged(room, event).map(|(entry, _)| entry)
}

/// Encode a logged event for the room log, with the length of the entry's prefix that is
/// the message as fanned out ([`LoggedEvent::message`]): the outbox and inbox entries of
/// the event point at that prefix ([`Payload::Logged`]) instead of holding copies.
///
/// Rule HUB-STORE-10 (docs/protocol-coverage.md).
pub fn encode_logged(room: &RoomId, event: &LoggedEvent) -> Result<(Vec<u8>, u32), CodecError> {
    let stored = StoredEvent {
        message: event.message(room),
        changes: BoundedVec::new(event.changes.clone())?,
    };
    let len = u32::try_from(stored.message.tls_serialized_len())
        .map_err(|_| CodecError::Malformed("a log entry longer than 4 GiB".into()))?;
    Ok((stored.encode()?, len))
}

/// Whether the message a destination gets for `event` ([`message_for`] with `welcomes`)
/// is the logged message itself, so that its queued entry can point into the log entry:
/// always, except for a `ds.commit` whose Welcomes for the destination are not the ones
/// logged with it.
fn is_logged_form(event: &LoggedEvent, welcomes: Option<&[mimi_codec::MlsBytes]>) -> bool {
    match &event.fanout.event {
        mimi_codec::Event::DsCommit(commit) => {
            commit.welcomes.as_slice() == welcomes.unwrap_or_default()
        }
        _ => true,
    }
}

/// What a destination's queued entry for `event` holds: a pointer to the first
/// `logged_len` bytes of its log entry if that is the destination's message, else the
/// message.
fn payload_for(
    room: &RoomId,
    event: &LoggedEvent,
    welcomes: Option<&[mimi_codec::MlsBytes]>,
    logged_len: u32,
) -> Result<Payload, CodecError> {
    if is_logged_form(event, welcomes) {
        Ok(Payload::Logged { len: logged_len })
    } else {
        message_for(room, event, welcomes)
            .encode()
            .map(Payload::Bytes)
    }
}

/// Decode a room-log entry back into a logged event (its hash recomputed).
pub fn decode_event(bytes: &[u8]) -> Result<LoggedEvent, CodecError> {
    let stored = StoredEvent::decode(bytes)?;
    let MessageBody::Fanout(fanout) = stored.message.body else {
        return Err(CodecError::Malformed("stored event is not a fanout".into()));
    };
    let hash = event_hash(&stored.message.room_id, &stored.message.sender, &fanout)?;
    Ok(LoggedEvent {
        sender: stored.message.sender,
        fanout,
        changes: stored.changes.into_vec(),
        hash,
    })
}

/// The message a destination gets for a logged event: the event with the Welcomes meant for
/// it (a `ds.commit`'s Welcomes go only to the servers of the clients they add).
pub fn message_for(
    room: &RoomId,
    event: &LoggedEvent,
    welcomes: Option<&[mimi_codec::MlsBytes]>,
) -> MimiMessage {
    let mut fanout: FanoutEvent = event.fanout.clone();
    if let mimi_codec::Event::DsCommit(commit) = &mut fanout.event {
        commit.welcomes = welcomes
            .and_then(|w| BoundedVec::new(w.to_vec()).ok())
            .unwrap_or_default();
    }
    MimiMessage::new(
        room.clone(),
        event.sender.clone(),
        MessageBody::Fanout(fanout),
    )
}

/// How far a destination server has been sent a room's history.
#[derive(Debug, Clone, PartialEq, Eq, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct Destination {
    /// The server.
    pub server: ServerName,
    /// The sequence number of the next event it has not been sent.
    pub next_seq: u64,
}

/// What the hub keeps beside a room's state: how far each destination has been sent the
/// room's history. A server that becomes a destination (again) first gets the events it
/// has not been sent, so that its replica has no gap (see `docs/spec-decisions.md`).
///
/// Rule HUB-OUT-2 (docs/protocol-coverage.md).
#[derive(Debug, Clone, Default, PartialEq, Eq, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct RoomMeta {
    /// The destinations so far.
    pub sent: BoundedVec<Destination, MAX_PARTICIPANTS>,
}

impl RoomMeta {
    /// The next sequence number `server` has not been sent (0 if never).
    pub fn next_seq(&self, server: &ServerName) -> u64 {
        self.sent
            .iter()
            .find(|d| &d.server == server)
            .map_or(0, |d| d.next_seq)
    }

    /// Record that `server` has been sent everything before `next_seq`.
    pub fn sent_up_to(&mut self, server: &ServerName, next_seq: u64) -> Result<(), CodecError> {
        let mut all = self.sent.as_slice().to_vec();
        match all.iter_mut().find(|d| &d.server == server) {
            Some(d) => d.next_seq = d.next_seq.max(next_seq),
            None => all.push(Destination {
                server: server.clone(),
                next_seq,
            }),
        }
        self.sent = BoundedVec::new(all)?;
        Ok(())
    }
}

impl Wire for RoomMeta {}

impl Rooms {
    /// Submit the write of an event the hub accepted (its log entry, room and group state,
    /// fan-out and inboxes) and return it pending: the caller releases the room's lock,
    /// then waits with `settle` before it answers. On failure the caller empties the
    /// room's slot so that memory does not run ahead of storage.
    ///
    /// Rules HUB-DUR-1, HUB-OUT-2 (docs/protocol-coverage.md).
    // The accepted event, its room and what it changed, each needed for the batch.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn persist_hub_event(
        &self,
        room_id: &RoomId,
        hub_room: &HubRoom,
        meta: &mut RoomMeta,
        accepted: &HubAccepted,
        group_changed: bool,
        in_group_before: BTreeSet<UserId>,
        request: Option<RequestKey>,
    ) -> Result<Submitted, EventError> {
        let name = &self.ctx.server_name;
        let logged = &accepted.logged;
        let seq = logged.fanout.sequence;
        let mut batch = Batch::new(room_id.clone());
        batch.request = request;
        batch.expect_last_seq = Some(seq.checked_sub(1));
        let (entry, logged_len) = encode_logged(room_id, logged).map_err(internal)?;
        batch.log = Some(LogEntry { seq, entry });
        let mut new_meta = meta.clone();
        let history = hub_room.hub().history();
        for dest in accepted.plan.destinations() {
            if dest == *name {
                continue;
            }
            // Events this destination has not been sent yet come first, without Welcomes:
            // from memory when it still holds them, else from the stored log.
            let from = meta.next_seq(&dest);
            let earlier: Vec<LoggedEvent> = match history.events_from(from) {
                Some(events) => events
                    .iter()
                    .take_while(|e| e.fanout.sequence < seq)
                    .cloned()
                    .collect(),
                None => self.stored_events(room_id, from, seq).await?,
            };
            for earlier in &earlier {
                let msg = message_for(room_id, earlier, None);
                batch
                    .outbox
                    .push((dest.clone(), msg.encode().map_err(internal)?.into()));
            }
            let welcomes = accepted.plan.welcomes_to.get(&dest).map(Vec::as_slice);
            let payload = payload_for(room_id, logged, welcomes, logged_len).map_err(internal)?;
            batch.outbox.push((dest.clone(), payload));
            new_meta.sent_up_to(&dest, seq + 1).map_err(internal)?;
        }
        let own_welcomes = accepted.plan.welcomes_to.get(name).map(Vec::as_slice);
        let own_msg = payload_for(room_id, logged, own_welcomes, logged_len).map_err(internal)?;
        self.inbox
            .queue_event(
                &mut batch,
                hub_room.hub().room(),
                logged,
                in_group_before,
                &own_msg,
            )
            .await
            .map_err(internal)?;
        batch.room_update = Some(RoomUpdate {
            role: RoomRole::Hub,
            state: new_meta.encode().map_err(internal)?,
            group: if group_changed {
                GroupUpdate::Replace(hub_room.group().to_bytes().map_err(internal)?)
            } else {
                GroupUpdate::Keep
            },
        });
        batch.snapshot = snapshot_due(seq, || hub_room.hub().snapshot())?;
        let has_outbox = !batch.outbox.is_empty();
        let has_inbox = !batch.inbox.is_empty();
        let pending = self.ctx.storage.submit_chained(batch);
        *meta = new_meta;
        Ok(Submitted {
            pending,
            has_outbox,
            has_inbox,
        })
    }

    /// The stored events of a room from sequence `from` up to (not including) `until`,
    /// once every write submitted before is durable (an empty batch, answered after all of
    /// them, is the barrier): the room's latest events may still be on their way to disk.
    ///
    /// Rule HUB-HIST-1 (docs/protocol-coverage.md).
    async fn stored_events(
        &self,
        room_id: &RoomId,
        from: u64,
        until: u64,
    ) -> Result<Vec<LoggedEvent>, EventError> {
        // Its own outcome does not matter (a room being created is not stored yet).
        let _ = self
            .ctx
            .storage
            .submit(Batch::new(room_id.clone()))
            .durable()
            .await;
        let mut events = Vec::new();
        let mut next = from;
        while next < until {
            let id = room_id.clone();
            let limit = usize::try_from(until - next).unwrap_or(MAX_READ_LIMIT);
            let page = self
                .ctx
                .read(move |s| s.log_range(&id, next, limit))
                .await
                .map_err(internal)?;
            if page.is_empty() {
                return Err(internal(format!(
                    "{room_id}: event {next} is missing from the stored log"
                )));
            }
            for entry in page {
                if entry.seq >= until {
                    break;
                }
                events.push(decode_event(&entry.entry).map_err(internal)?);
                next = entry.seq + 1;
            }
        }
        Ok(events)
    }

    /// Submit the write of an event a follower applied (its log entry, deduplicated, the
    /// room and group state, and the local inbox items).
    ///
    /// Rule HUB-REPL-1 (docs/protocol-coverage.md).
    pub(super) async fn persist_follower_event(
        &self,
        room_id: &RoomId,
        room: &FollowerRoom,
        sequence: u64,
        in_group_before: BTreeSet<UserId>,
        group_changed: bool,
    ) -> Result<Submitted, EventError> {
        let logged = room
            .follower()
            .history()
            .get(sequence)
            .cloned()
            .ok_or_else(|| internal("received event missing from the history"))?;
        let mut batch = Batch::new(room_id.clone());
        batch.dedup = true;
        let (entry, logged_len) = encode_logged(room_id, &logged).map_err(internal)?;
        batch.log = Some(LogEntry {
            seq: sequence,
            entry,
        });
        batch.room_update = Some(RoomUpdate {
            role: RoomRole::Follower,
            state: RoomMeta::default().encode().map_err(internal)?,
            // Application messages and unsigned participation events leave the group as it
            // is: rewriting its state for each of them would cost as much as the event.
            group: match room.group() {
                Some(g) if group_changed => GroupUpdate::Replace(g.to_bytes().map_err(internal)?),
                _ => GroupUpdate::Keep,
            },
        });
        // The message as received (with the Welcomes meant for this server) goes to the
        // local clients: the log entry's prefix.
        let msg = Payload::Logged { len: logged_len };
        self.inbox
            .queue_event(
                &mut batch,
                room.follower().room(),
                &logged,
                in_group_before,
                &msg,
            )
            .await
            .map_err(internal)?;
        // The replica is at `sequence` when this is written: the follower applies a room's
        // events one after another, each written before the next is applied.
        if room.follower().history().next_sequence() == sequence + 1 {
            batch.snapshot = snapshot_due(sequence, || room.follower().snapshot())?;
        }
        let has_inbox = !batch.inbox.is_empty();
        Ok(Submitted {
            pending: self.ctx.storage.submit_chained(batch),
            has_outbox: false,
            has_inbox,
        })
    }
}
