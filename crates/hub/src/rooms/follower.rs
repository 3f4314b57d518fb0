//! The follower path: a fully-formed event from a room's hub, applied in order. The hub
//! may have several of a room's events in flight at once (`outbox`), so an event can
//! arrive before the one it follows: it waits (without the room's lock) up to
//! [`FOLLOWER_GAP_WAIT`] for the earlier ones, then is answered "unavailable" (`503`) for
//! the hub to send it again.

use std::collections::BTreeSet;
use std::time::Duration;

use mimi_codec::{ErrorCode, Event, EventError, FanoutEvent, RoomId, Sender};
use mimi_ds::{FollowerError, FollowerOutcome, FollowerRoom};

use super::{Rooms, Slot, group_users, internal};

/// Longest a follower holds an event that arrived before the one it follows (the hub
/// sends a room's events several at a time); then it answers `503` and the hub sends it
/// again.
pub const FOLLOWER_GAP_WAIT: Duration = Duration::from_secs(2);

/// With a storage other instances of this provider write too, how often a follower
/// holding an early event looks whether another instance stored the ones before it.
pub const SHARED_GAP_POLL: Duration = Duration::from_millis(50);

fn follower_error(e: FollowerError) -> EventError {
    match e {
        FollowerError::Ds(d) => d.to_event_error(),
        FollowerError::History(h) => {
            let code = match h.rule() {
                Some(r) => mimi_signaling::Rejection::new(r).error_code(),
                None => ErrorCode::InvalidParticipationChange,
            };
            EventError::new(code, format!("refusing the hub's event: {h}"))
        }
    }
}

impl Rooms {
    /// A follower's handling of a fully-formed event from the hub. The event is applied and
    /// its write submitted under the room's lock; the answer waits for the write to be
    /// durable outside it, so that the room's next event is checked meanwhile.
    ///
    /// Rules HUB-REPL-1, HUB-OUT-3 (docs/protocol-coverage.md).
    pub(crate) async fn follower_event(
        &self,
        room_id: &RoomId,
        sender: Sender,
        fanout: FanoutEvent,
    ) -> Result<(), EventError> {
        let deadline = tokio::time::Instant::now() + FOLLOWER_GAP_WAIT;
        let handle = self.cache.hold(room_id);
        let mut guard = loop {
            let progressed = self.follower_progress.notified();
            let mut guard = handle.slot().lock().await;
            self.load(room_id, &mut guard).await.map_err(internal)?;
            self.refresh(room_id, &mut guard).await.map_err(internal)?;
            let next = match &*guard {
                Slot::Follower(room) => room.follower().history().next_sequence(),
                Slot::Absent | Slot::Unloaded => 0,
                Slot::Hub(..) => {
                    return Err(EventError::new(
                        ErrorCode::NotHub,
                        "this server is the room's hub; it does not take fanout for it",
                    ));
                }
            };
            if fanout.sequence <= next {
                break guard;
            }
            drop(guard);
            if tokio::time::Instant::now() >= deadline {
                return Err(EventError::new(
                    ErrorCode::Internal,
                    format!(
                        "event {} arrived before event {next} of {room_id}; send it again",
                        fanout.sequence
                    ),
                ));
            }
            let wake = if self.ctx.storage.shared() {
                deadline.min(tokio::time::Instant::now() + SHARED_GAP_POLL)
            } else {
                deadline
            };
            tokio::select! {
                _ = progressed => {}
                _ = tokio::time::sleep_until(wake) => {}
            }
        };
        let in_group_before = match &*guard {
            Slot::Follower(room) => room.group().map(group_users).unwrap_or_default(),
            _ => BTreeSet::new(),
        };
        let group_changed = !matches!(
            fanout.event,
            Event::DsSendMessage(_) | Event::RoomUserUnsigned(_)
        );
        let outcome = match &mut *guard {
            // The wait above returned for a hub slot, and the lock has been held since.
            Slot::Hub(..) => return Err(internal("a follower's slot became a hub's")),
            Slot::Absent | Slot::Unloaded => {
                let room = FollowerRoom::new(&sender, &fanout).map_err(follower_error)?;
                *guard = Slot::Follower(Box::new(room));
                FollowerOutcome::Applied { sequence: 0 }
            }
            Slot::Follower(room) => room.receive(&sender, &fanout).map_err(follower_error)?,
        };
        let FollowerOutcome::Applied { sequence } = outcome else {
            return Ok(());
        };
        let Slot::Follower(room) = &*guard else {
            return Err(internal("follower slot vanished"));
        };
        let submitted = match self
            .persist_follower_event(room_id, room, sequence, in_group_before, group_changed)
            .await
        {
            Ok(submitted) => submitted,
            Err(e) => {
                *guard = Slot::Unloaded;
                drop(guard);
                self.cache.evict(room_id);
                return Err(e);
            }
        };
        drop(guard);
        self.follower_progress.notify_waiters();
        self.settle(room_id, &handle, submitted)
            .await
            .map_err(internal)
    }
}
