//! How the hub encodes what it stores: log entries (the fully-formed event with its sender
//! and the participation changes it made) and the room metadata beside the signaling and
//! group state. TLS-encoded with the codec's own bounded types, so stored data is read back
//! with the same strictness as peer input.

use mimi_codec::limits::MAX_PARTICIPANTS;
use mimi_codec::{
    BoundedVec, CodecError, FanoutEvent, MessageBody, MimiMessage, RoomId, ServerName, UserEvent,
    Wire,
};
use mimi_signaling::{LoggedEvent, MAX_CHANGES_PER_EVENT, event_hash};
use tls_codec::{TlsDeserialize, TlsSerialize, TlsSize};

/// One log entry: the event as the hub fans it out, and its participation changes.
#[derive(Debug, Clone, PartialEq, Eq, TlsSize, TlsSerialize, TlsDeserialize)]
struct StoredEvent {
    message: MimiMessage,
    changes: BoundedVec<UserEvent, MAX_CHANGES_PER_EVENT>,
}

impl Wire for StoredEvent {}

/// Encode a logged event for the room log.
pub fn encode_event(room: &RoomId, event: &LoggedEvent) -> Result<Vec<u8>, CodecError> {
    StoredEvent {
        message: event.message(room),
        changes: BoundedVec::new(event.changes.clone())?,
    }
    .encode()
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
