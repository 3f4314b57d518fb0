//! The hub path: a limited event for a room created on this server, from one of its own
//! clients or from a peer the transport authenticated. Check, ask the invitees' servers at once
//! (check-invite) with the room's lock released, check again if the room moved on
//! meanwhile, accept, submit the write, answer once it is durable.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use mimi_codec::{ErrorCode, Event, EventError, EventResponse, RoomId, Sender, UserId};
use mimi_ds::CheckedEvent;

use super::once::{Since, request_key};
use super::{Rooms, Slot, group_users, internal};
use crate::storage::RequestKey;

/// How many times an event is checked again after its write was refused because another
/// instance of this provider sequenced an event of the room first (the room is reloaded
/// each time); then it is answered "unavailable" (`503`) for its sender to try again.
///
/// Rule HUB-MULTI-1 (docs/protocol-coverage.md).
pub const SEQUENCE_CONFLICT_RETRIES: usize = 64;

/// The longest pause before an event is checked again after a lost race (a random pause
/// up to this, growing with the number of races lost), so that instances writing one room
/// at once fall out of step instead of refusing each other's writes in turn.
pub const SEQUENCE_CONFLICT_PAUSE_MAX: std::time::Duration = std::time::Duration::from_millis(20);

fn err(code: ErrorCode, detail: impl Into<String>) -> EventError {
    EventError::new(code, detail)
}

/// Run `futures` concurrently on the calling task; their outputs in their order.
async fn all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut running: Vec<Option<Pin<Box<F>>>> =
        futures.into_iter().map(|f| Some(Box::pin(f))).collect();
    let mut outputs: Vec<Option<F::Output>> = running.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, output) in running.iter_mut().zip(outputs.iter_mut()) {
            if let Some(future) = slot {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => {
                        *output = Some(value);
                        *slot = None;
                    }
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

impl Rooms {
    /// The hub's handling of a limited event from `sender` (already authenticated as coming
    /// from the sender's server, or from this server's own client).
    ///
    /// The check → (unlock, ask the invitees' servers, relock) → accept sequence is all
    /// here: while the room's lock is released its other events go on being accepted; on
    /// relocking the event is checked again if the room accepted anything meanwhile (else
    /// the staged check is still valid and is what `accept` consumes: a commit is verified
    /// once), and an invitee whose server answered keeps that answer (`docs/spec-decisions.md`, "Check-invite
    /// outside the room's lock"). An invitee the new check names for the first time is
    /// asked in turn.
    pub(crate) async fn hub_event(
        &self,
        room_id: &RoomId,
        sender: Sender,
        event: Event,
    ) -> Result<EventResponse, EventError> {
        let peer = sender.server();
        let event_type = event.event_type();
        let result = self.hub_event_checked(room_id, sender, event).await;
        if let Err(e) = &result {
            self.ctx.metrics.event_refused(&peer, e);
            tracing::info!(room = %room_id, %peer, r#type = event_type, rule = %crate::metrics::rule_label(e), code = ?e.code, "event refused");
        }
        result
    }

    async fn hub_event_checked(
        &self,
        room_id: &RoomId,
        sender: Sender,
        event: Event,
    ) -> Result<EventResponse, EventError> {
        let handle = self.cache.hold(room_id);
        let request = request_key(room_id, &sender, &event);
        let mut asked: BTreeSet<UserId> = BTreeSet::new();
        // The check made before the lock was released to ask an invitee's server.
        let mut staged: Option<CheckedEvent> = None;
        let mut conflicts = 0;
        // With storage this process alone writes, the durable check of a resend runs
        // before the room's lock; what it may have missed is asked of `in_flight` under it.
        let early = match request {
            Some(key) if !self.ctx.storage.shared() => {
                let mark = self.in_flight.mark();
                if self.resent(room_id, key).await? {
                    return Ok(EventResponse::Ok);
                }
                Some(mark)
            }
            _ => None,
        };
        loop {
            let mut guard = handle.slot().lock().await;
            self.load(room_id, &mut guard).await.map_err(internal)?;
            if let Some(key) = request
                && let Some(seq) = self.in_flight.get(&key)
            {
                drop(guard);
                return self.resent_in_flight(room_id, key, seq).await;
            }
            self.refresh(room_id, &mut guard).await.map_err(internal)?;
            let Slot::Hub(hub_room, meta) = &mut *guard else {
                return Err(match &*guard {
                    Slot::Follower(_) => err(
                        ErrorCode::NotHub,
                        format!("{} is not the hub of {room_id}", self.ctx.server_name),
                    ),
                    _ => err(ErrorCode::UnknownRoom, format!("unknown room {room_id}")),
                });
            };
            match &event {
                Event::DsFetchGroupInfo(_) => {
                    return hub_room.group_info(&sender).map_err(|e| e.to_event_error());
                }
                Event::RoomInfo(_) | Event::DsFetchKeyPackages(_) | Event::DsCreateGroup(_) => {
                    return Err(err(
                        ErrorCode::UnsupportedEvent,
                        format!("{} is not sent to a room's hub", event.event_type()),
                    ));
                }
                _ => {}
            }
            if let Some(key) = request {
                let durable = match early.map(|mark| self.in_flight.since(mark, &key)) {
                    Some(Since::Durable) => true,
                    Some(Since::Nothing) => false,
                    Some(Since::InFlight(seq)) => {
                        drop(guard);
                        return self.resent_in_flight(room_id, key, seq).await;
                    }
                    Some(Since::Unknown) | None => self.resent(room_id, key).await?,
                };
                if durable {
                    return Ok(EventResponse::Ok);
                }
            }
            let checked = match staged.take() {
                Some(checked) if hub_room.is_current(&checked) => checked,
                _ => hub_room
                    .check(sender.clone(), event.clone())
                    .map_err(|e| e.to_event_error())?,
            };
            let to_ask: Vec<UserId> = checked
                .invitees()
                .into_iter()
                .filter(|u| !asked.contains(u))
                .collect();
            if to_ask.is_empty() {
                let group_changed =
                    !matches!(event, Event::DsSendMessage(_) | Event::RoomUserUnsigned(_));
                let in_group_before = group_users(hub_room.group());
                let accepted = hub_room.accept(checked).map_err(|e| e.to_event_error())?;
                let sequence = accepted.logged.fanout.sequence;
                let written = self
                    .persist_hub_event(
                        room_id,
                        hub_room,
                        meta,
                        &accepted,
                        group_changed,
                        in_group_before,
                        request,
                    )
                    .await;
                let submitted = match written {
                    Ok(submitted) => submitted,
                    Err(e) => {
                        // Memory must not run ahead of storage: the next event reloads.
                        *guard = Slot::Unloaded;
                        return Err(e);
                    }
                };
                // A resend from now until the write settles waits for it.
                let in_flight = request.map(|key| {
                    self.in_flight.insert(
                        key,
                        sequence,
                        room_id.clone(),
                        std::sync::Arc::clone(&self.ctx.storage),
                    )
                });
                drop(guard);
                let settled = self.settle(room_id, &handle, submitted).await;
                if let Some(in_flight) = in_flight {
                    in_flight.settled(settled.is_ok());
                }
                match settled {
                    Ok(()) => {}
                    // Another instance sequenced an event of the room first: nothing was
                    // written; the room is reloaded and the event checked again.
                    Err(e) if e.is_sequence_conflict() && conflicts < SEQUENCE_CONFLICT_RETRIES => {
                        conflicts += 1;
                        tracing::debug!(room = %room_id, sequence, conflicts, "the room moved on meanwhile; checking the event again");
                        let ceiling = SEQUENCE_CONFLICT_PAUSE_MAX
                            .as_micros()
                            .min(500 * conflicts as u128);
                        let pause = rand::random::<u64>() % (ceiling as u64 + 1);
                        tokio::time::sleep(std::time::Duration::from_micros(pause)).await;
                        continue;
                    }
                    Err(e) => return Err(internal(e)),
                }
                self.ctx.metrics.event_accepted(&sender.server());
                tracing::info!(room = %room_id, sequence, r#type = event.event_type(), %sender, "event accepted");
                return Ok(EventResponse::Ok);
            }
            // The check-invite exchange (main spec, "Invites" step 4) before accepting,
            // about the state after the whole event, without the room's lock.
            let after = checked.room_state_after();
            drop(guard);
            // Every invitee's server is asked at once; the answers are read in the
            // invitees' order, so the first refusal in that order is the one returned.
            let answers = all(to_ask
                .iter()
                .map(|invitee| {
                    self.check_invite
                        .ask(room_id, &sender, &event, invitee, after.clone())
                })
                .collect())
            .await;
            for (invitee, answer) in to_ask.into_iter().zip(answers) {
                answer?;
                asked.insert(invitee);
            }
            staged = Some(checked);
        }
    }
}

impl Rooms {
    /// Whether the room's log already holds the event of `request` (a resend after a lost
    /// answer, or after a crash between the durable write and the answer): it is answered
    /// as the first was, `Ok`, and not sequenced again.
    ///
    /// Rule HUB-ONCE-1 (docs/protocol-coverage.md).
    async fn resent(&self, room_id: &RoomId, request: RequestKey) -> Result<bool, EventError> {
        let room = room_id.clone();
        let seq = self
            .ctx
            .read(move |s| s.request_seq(&room, &request))
            .await
            .map_err(internal)?;
        if let Some(seq) = seq {
            tracing::debug!(room = %room_id, seq, "a resent event, answered as the first");
        }
        Ok(seq.is_some())
    }

    /// A resend of the event `seq`, accepted and not yet durable: wait for its write (a
    /// barrier submitted behind it) and answer as the first copy was: `Ok` if storage now
    /// holds it, "try again" if its write failed (the room reloads what is durable, and the
    /// next copy is sequenced afresh).
    ///
    /// Rule HUB-ONCE-2 (docs/protocol-coverage.md).
    async fn resent_in_flight(
        &self,
        room_id: &RoomId,
        request: RequestKey,
        seq: u64,
    ) -> Result<EventResponse, EventError> {
        tracing::debug!(room = %room_id, seq, "a resent event whose first copy is being written");
        let _ = self
            .ctx
            .storage
            .submit(crate::storage::Batch::new(room_id.clone()))
            .durable()
            .await;
        if self.resent(room_id, request).await? {
            return Ok(EventResponse::Ok);
        }
        Err(internal(format!(
            "{room_id}: the first copy of this event (sequence {seq}) could not be stored; try again"
        )))
    }
}
