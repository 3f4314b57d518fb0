//! Deterministic tests of the hub on paused tokio time: in-process providers (`sim`), a
//! storage that fails chosen writes, peers that fail or never answer. Nothing here sleeps
//! in real time; every instant asserted is exact. Rules: HUB-DUR-2, HUB-INV-2, HUB-OUT-4,
//! HUB-OUT-3 (the gap wait), HUB-OUT-5, HUB-CACHE-1, HUB-CACHE-2.

use std::sync::Arc;
use std::time::Duration;

use mimi_codec::{
    ErrorCode, Event, EventResponse, MessageBody, MimiMessage, MlsBytes, ParticipationState,
    ParticipationStateChange, RoomId, SendMessageRequest, Wire,
};
use mimi_e2e::CommitPlan;
use mimi_hub::context::Settings;
use mimi_hub::error::{ApiError, ErrorClass};
use mimi_hub::rooms::FOLLOWER_GAP_WAIT;
use mimi_hub::storage::{Batch, MAX_READ_LIMIT, OutboxEntry, Payload};
use mimi_transport::{Handler, Reply, RetryPolicy};
use tokio::time::Instant;

use crate::sim::{Answer, CeilingJitter, Endpoint, Sim};
use crate::world::{A, B, C, Client, Providers, assert_gapless, log_of, name, user_event};

const MS: Duration = Duration::from_millis(1);

fn message(ciphertext: Vec<u8>) -> Event {
    Event::DsSendMessage(SendMessageRequest {
        application_message: MlsBytes::new(ciphertext).unwrap(),
    })
}

fn refused_with(answer: (bool, EventResponse)) -> ErrorCode {
    match answer {
        (false, EventResponse::Error(e)) => e.code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// The sequence number of the event an outbox entry or inbox item carries.
fn sequence_of(bytes: &[u8]) -> u64 {
    match MimiMessage::decode(bytes).unwrap().body {
        MessageBody::Fanout(f) => f.sequence,
        other => panic!("not a fully-formed event: {other:?}"),
    }
}

/// Alice (at `A`) in a room she created, with Bob (at `B`) added: events 0 to 2.
pub(crate) async fn room_with_bob(sim: &Sim) -> (RoomId, Client, Client) {
    let mut alice = sim.client(A, "alice").await;
    let mut bob = sim.client(B, "bob").await;
    bob.publish(sim, 1, true).await;
    let room = alice.create_room(sim).await;
    alice.add(sim, &room, &bob.user()).await;
    (room, alice, bob)
}

pub(crate) fn outbox(sim: &Sim, server: &str, dest: &str) -> Vec<OutboxEntry> {
    sim.provider(server)
        .storage()
        .outbox_peek(&name(dest), MAX_READ_LIMIT)
        .unwrap()
}

/// Submit Alice's `commit` at `a` in its own task: the answer and when it came.
fn submit_commit(
    a: &std::sync::Arc<mimi_hub::provider::Provider>,
    id: &mimi_codec::ClientId,
    room: &RoomId,
    commit: mimi_codec::CommitRequest,
) -> tokio::task::JoinHandle<((bool, EventResponse), Instant)> {
    let (a, id, room) = (a.clone(), id.clone(), room.clone());
    tokio::spawn(async move {
        let answer = a
            .rooms()
            .submit(&id, &room, Event::DsCommit(commit))
            .await
            .unwrap();
        (answer, Instant::now())
    })
}

#[tokio::test(start_paused = true)]
async fn a_failed_write_leaves_nothing_and_the_next_event_starts_from_what_is_durable() {
    let sim = Sim::start(&[A, B], Settings::default(), false);
    let (room, mut alice, _bob) = room_with_bob(&sim).await;
    alice.say(&sim, &room, "kept").await;
    let a = sim.provider(A);
    let log_before = log_of(&a, &room);
    assert_eq!(log_before.len(), 4);
    let outbox_before = outbox(&sim, A, B);
    let inbox_before = a.inbox().read(&alice.id, 0, MAX_READ_LIMIT).await.unwrap();
    assert_eq!(a.rooms().cached(), 1);

    // The hub accepts the next event in memory; its write fails.
    let r = room.clone();
    sim.storage(A)
        .fail_nth(1, move |batch| batch.room == r && batch.log.is_some());
    let lost = alice.mls.encrypt(&room, b"lost").unwrap();
    match a.rooms().submit(&alice.id, &room, message(lost)).await {
        Err(e @ ApiError::Refused(_)) => {
            assert_eq!(e.class(), ErrorClass::Unavailable, "{e}");
        }
        other => panic!("expected try-again, got {other:?}"),
    }
    assert_eq!(sim.storage(A).failed().len(), 1);

    // Nothing of it is anywhere, and the room's slot is emptied.
    assert_eq!(log_of(&a, &room), log_before);
    assert_eq!(outbox(&sim, A, B), outbox_before);
    assert_eq!(
        a.inbox().read(&alice.id, 0, MAX_READ_LIMIT).await.unwrap(),
        inbox_before
    );
    assert_eq!(a.rooms().cached(), 0);

    // The next event is checked against what is durable and takes the next sequence
    // number, in the log, the outbox and the inbox alike.
    alice.say(&sim, &room, "after").await;
    let log = log_of(&a, &room);
    assert_gapless(&log);
    assert_eq!(log.len(), 5);
    assert_eq!(&log[..4], &log_before[..]);
    let outbox_after = outbox(&sim, A, B);
    assert_eq!(outbox_after.len(), outbox_before.len() + 1);
    assert_eq!(sequence_of(&outbox_after.last().unwrap().message), 4);
    let inbox = a.inbox().read(&alice.id, 0, MAX_READ_LIMIT).await.unwrap();
    assert_eq!(inbox.len(), inbox_before.len() + 1);
    assert_eq!(sequence_of(&inbox.last().unwrap().1), 4);
    assert_eq!(a.rooms().cached(), 1);
}

/// A commit inviting users of two servers asks both servers at once: neither answers, and
/// the invite is refused one timeout after both were asked (not two), naming the first
/// invitee's server.
#[tokio::test(start_paused = true)]
async fn the_invitees_servers_are_asked_at_once() {
    let timeout = Duration::from_secs(2);
    let settings = Settings {
        check_invite_timeout: timeout,
        ..Settings::default()
    };
    let sim = Sim::start(&[A, B, C], settings, false);
    sim.net.set(B, Endpoint::CheckInvite, Answer::Never);
    sim.net.set(C, Endpoint::CheckInvite, Answer::Never);
    let mut alice = sim.client(A, "alice").await;
    let bob = sim.client(B, "bob").await;
    let cathy = sim.client(C, "cathy").await;
    let room = alice.create_room(&sim).await;
    let invites = vec![
        user_event(&bob.user(), ParticipationStateChange::Invite),
        user_event(&cathy.user(), ParticipationStateChange::Invite),
    ];
    let state = alice.state_after(&sim, &room, &invites).await;
    let commit = alice
        .mls
        .commit(
            &room,
            CommitPlan {
                user_events: invites,
                new_room_state: Some(state),
                ..CommitPlan::default()
            },
        )
        .unwrap();
    let a = sim.provider(A);
    let inviting = submit_commit(&a, &alice.id, &room, commit);
    // One after the other, C would be asked only once B's exchange timed out.
    let both = sim.net.wait_for(|calls| {
        calls
            .iter()
            .filter(|c| c.endpoint == Endpoint::CheckInvite)
            .count()
            == 2
    });
    let calls = tokio::time::timeout(timeout / 2, both)
        .await
        .expect("both servers are asked before either exchange times out");
    let asked: Vec<_> = calls
        .iter()
        .filter(|c| c.endpoint == Endpoint::CheckInvite)
        .collect();
    let mut servers: Vec<_> = asked.iter().map(|c| c.to.clone()).collect();
    servers.sort();
    assert_eq!(servers, vec![name(B), name(C)]);
    assert_eq!(asked[0].at, asked[1].at);
    let (answer, refused_at) = inviting.await.unwrap();
    assert_eq!(refused_at - asked[0].at, timeout);
    match answer {
        (false, EventResponse::Error(e)) => {
            assert_eq!(e.code, ErrorCode::InviteRejected);
            assert!(e.detail.as_str().contains(B), "{}", e.detail.as_str());
        }
        other => panic!("not refused: {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_never_answers_check_invite_stalls_nothing_and_the_invite_is_refused_in_time() {
    let timeout = Duration::from_secs(2);
    let settings = Settings {
        check_invite_timeout: timeout,
        ..Settings::default()
    };
    let sim = Sim::start(&[A, B, C], settings, false);
    sim.net.set(C, Endpoint::CheckInvite, Answer::Never);
    let mut alice = sim.client(A, "alice").await;
    let cathy = sim.client(C, "cathy").await;
    let room = alice.create_room(&sim).await;
    let meanwhile = alice.mls.encrypt(&room, b"meanwhile").unwrap();
    let invite = user_event(&cathy.user(), ParticipationStateChange::Invite);
    let state = alice
        .state_after(&sim, &room, std::slice::from_ref(&invite))
        .await;
    let commit = alice
        .mls
        .commit(
            &room,
            CommitPlan {
                user_events: vec![invite],
                new_room_state: Some(state),
                ..CommitPlan::default()
            },
        )
        .unwrap();
    let a = sim.provider(A);
    let inviting = submit_commit(&a, &alice.id, &room, commit);
    let calls = sim
        .net
        .wait_for(|calls| calls.iter().any(|c| c.endpoint == Endpoint::CheckInvite))
        .await;
    let asked_at = calls[0].at;

    // While the hub waits for C, the same room accepts another event, and another room
    // is created and used.
    assert_eq!(
        alice.submit(&sim, &room, message(meanwhile)).await,
        (true, EventResponse::Ok)
    );
    let other = alice.create_room(&sim).await;
    alice.say(&sim, &other, "elsewhere").await;
    assert!(!inviting.is_finished());
    assert!(Instant::now() < asked_at + timeout);

    // The invite is refused when the timeout has passed, not before, not later.
    let (answer, refused_at) = inviting.await.unwrap();
    assert_eq!(refused_with(answer), ErrorCode::InviteRejected);
    assert_eq!(refused_at - asked_at, timeout);
    // Only the create events and the message are in the room's log.
    assert_eq!(log_of(&a, &room).len(), 3);
    alice.mls.clear_pending_commit(&room).unwrap();
    alice.say(&sim, &room, "still here").await;
    assert_eq!(log_of(&a, &room).len(), 4);
}

#[tokio::test(start_paused = true)]
async fn check_invite_is_asked_about_the_state_after_the_whole_event() {
    let sim = Sim::start(&[A, B, C], Settings::default(), false);
    let mut alice = sim.client(A, "alice").await;
    let mut bob = sim.client(B, "bob").await;
    let cathy = sim.client(C, "cathy").await;
    bob.publish(&sim, 1, false).await;
    let room = alice.create_room(&sim).await;
    let a = sim.provider(A);
    let key_packages = a
        .accounts()
        .claim_key_packages(&alice.id, &room, &bob.user(), vec![])
        .await
        .unwrap();
    // One commit adds Bob and invites Cathy.
    let changes = vec![
        user_event(&bob.user(), ParticipationStateChange::Join),
        user_event(&cathy.user(), ParticipationStateChange::Invite),
    ];
    let state = alice.state_after(&sim, &room, &changes).await;
    let commit = alice
        .mls
        .commit(
            &room,
            CommitPlan {
                user_events: changes,
                adds: key_packages
                    .iter()
                    .map(|k| k.key_package.as_slice().to_vec())
                    .collect(),
                new_room_state: Some(state.clone()),
                ..CommitPlan::default()
            },
        )
        .unwrap();
    assert_eq!(
        alice.submit(&sim, &room, Event::DsCommit(commit)).await,
        (true, EventResponse::Ok)
    );
    let asked: Vec<_> = sim
        .net
        .calls()
        .into_iter()
        .filter_map(|c| c.check_invite)
        .collect();
    assert_eq!(asked.len(), 1);
    let sent = &asked[0].room_info.room_state;
    // Bob is joined in it (the old code sent the state after the invite alone).
    let state_of = |user| {
        sent.participants
            .iter()
            .find(|p| p.user_id == user)
            .map(|p| p.state)
    };
    assert_eq!(state_of(bob.user()), Some(ParticipationState::Join));
    assert_eq!(state_of(cathy.user()), Some(ParticipationState::Invite));
    assert_eq!(sent, &state);
}

/// Wait until B's log of `room` holds `entries` entries and A's outbox for B is empty,
/// looking again after each write to A's or B's storage (no polling); fails if that takes
/// more than 10 s of paused time.
async fn until_b_has(sim: &Sim, room: &RoomId, entries: usize) {
    let b = sim.provider(B);
    // Subscribed before the first look: a write after it is seen by `changed`.
    let mut a_writes = sim.storage(A).writes();
    let mut b_writes = sim.storage(B).writes();
    let reached = async {
        loop {
            if log_of(&b, room).len() == entries && outbox(sim, A, B).is_empty() {
                return;
            }
            tokio::select! {
                changed = a_writes.changed() => changed.expect("A's storage is kept"),
                changed = b_writes.changed() => changed.expect("B's storage is kept"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), reached)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "B never held {entries} entries with A's outbox for it empty (it holds {}, {} waiting)",
                log_of(&b, room).len(),
                outbox(sim, A, B).len()
            )
        });
}

/// Whether `call` is a delivery from A's outbox to B.
fn delivers_a_to_b(call: &crate::sim::Call) -> bool {
    call.endpoint == Endpoint::Deliver && call.from == name(A) && call.to == name(B)
}

/// Settings whose outbox retries after 100 ms, doubling up to 400 ms, without jitter.
fn backoff_100_to_400_ms() -> Settings {
    Settings {
        outbox_retry: RetryPolicy {
            max_attempts: u32::MAX,
            base: 100 * MS,
            cap: 400 * MS,
        },
        jitter: Arc::new(CeilingJitter),
        ..Settings::default()
    }
}

#[tokio::test(start_paused = true)]
async fn the_outbox_backs_off_exactly_as_configured() {
    let sim = Sim::start(&[A, B], backoff_100_to_400_ms(), true);
    sim.net.set(B, Endpoint::Deliver, Answer::Fail);
    let (room, _alice, _bob) = room_with_bob(&sim).await;
    let attempts = |calls: &[crate::sim::Call]| {
        let mut instants: Vec<Instant> = calls
            .iter()
            .filter(|c| delivers_a_to_b(c))
            .map(|c| c.at)
            .collect();
        instants.dedup();
        instants
    };
    let calls = sim.net.wait_for(|calls| attempts(calls).len() >= 6).await;
    let instants = attempts(&calls);
    let gaps: Vec<Duration> = instants.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(
        gaps[..5],
        [100 * MS, 200 * MS, 400 * MS, 400 * MS, 400 * MS],
        "attempts at {instants:?}"
    );
    // Each attempt is one call per entry in flight: the transport does not retry.
    let first = calls
        .iter()
        .filter(|c| c.endpoint == Endpoint::Deliver && c.at == instants[0])
        .count();
    assert_eq!(first, 3, "events 0 to 2, one call each");

    // Once B answers, the next attempt delivers everything and the outbox empties.
    sim.net.set(B, Endpoint::Deliver, Answer::Route);
    let b = sim.provider(B);
    until_b_has(&sim, &room, 3).await;
    assert_eq!(log_of(&b, &room), log_of(&sim.provider(A), &room));
    assert!(outbox(&sim, A, B).is_empty());
}

/// The outbox sends its stored bytes as they are: a stored entry that is not a message goes
/// to the peer too, which refuses it with `400`; that is an answer, so the entry is removed
/// and the room's later entries go on (a refusal retried would block them for ever).
#[tokio::test(start_paused = true)]
async fn an_undecodable_outbox_entry_is_refused_by_the_peer_and_blocks_nothing() {
    let sim = Sim::start(&[A, B], backoff_100_to_400_ms(), true);
    sim.net.set(B, Endpoint::Deliver, Answer::Fail);
    let (room, mut alice, _bob) = room_with_bob(&sim).await;
    let a = sim.provider(A);
    // Between events 2 and 3, an entry for B whose bytes are not a MIMIMessage.
    let garbage = vec![0, 1, 0xff];
    let mut batch = Batch::new(room.clone());
    batch
        .outbox
        .push((name(B), Payload::Bytes(garbage.clone())));
    a.storage().commit(batch).unwrap();
    alice.say(&sim, &room, "after the garbage").await;
    let queued = outbox(&sim, A, B);
    let messages: Vec<&[u8]> = queued.iter().map(|e| e.message.as_slice()).collect();
    assert_eq!(messages.len(), 5, "events 0 to 2, the garbage, event 3");
    assert_eq!(messages[3], &garbage[..]);
    assert_eq!(sequence_of(messages[4]), 3);

    // The calls from here on (the test's runtime has one thread: nothing is recorded
    // between these two lines).
    let before = sim.net.calls().len();
    sim.net.set(B, Endpoint::Deliver, Answer::Route);
    let b = sim.provider(B);
    until_b_has(&sim, &room, 4).await;
    // Event 3, queued behind the garbage, reached B, and nothing is left to send.
    assert_eq!(log_of(&b, &room), log_of(&a, &room));
    assert_eq!(log_of(&b, &room).len(), 4);
    assert!(outbox(&sim, A, B).is_empty());
    // The garbage was offered to B (one call per entry once B answers), not dropped unsent.
    let delivered = sim.net.calls()[before..]
        .iter()
        .filter(|c| c.endpoint == Endpoint::Deliver && c.to == name(B))
        .count();
    assert_eq!(delivered, 5, "events 0 to 3 and the garbage, one call each");
}

/// On a storage other instances write too, an entry another instance queued (nobody in
/// this process tells the worker of it, and its notification may be lost) is found by the
/// idle worker's next look, within `IDLE_POLL`, although the lease's renewal every 3 s
/// ends the worker's waits sooner (a poll timer made afresh at each wait never fired).
#[tokio::test(start_paused = true)]
async fn a_shared_storages_idle_outbox_finds_another_instances_entry_within_its_poll() {
    let sim = Sim::start(&[A, B], backoff_100_to_400_ms(), true);
    sim.storage(A).set_shared(true);
    let (room, _alice, _bob) = room_with_bob(&sim).await;
    until_b_has(&sim, &room, 3).await;
    assert!(outbox(&sim, A, B).is_empty());
    let mut batch = Batch::new(room.clone());
    batch
        .outbox
        .push((name(B), Payload::Bytes(vec![0, 1, 0xff])));
    let to_b = |calls: &[crate::sim::Call]| calls.iter().filter(|c| delivers_a_to_b(c)).count();
    let before = to_b(&sim.net.calls());
    sim.provider(A).storage().commit(batch).unwrap();
    let written = Instant::now();
    // Wait for the send itself (the simulated network records it), for a bounded stretch
    // of paused time: the lease's renewal keeps a timer running, so a worker that never
    // looks again would keep the test waiting for ever.
    let calls = tokio::time::timeout(
        4 * mimi_hub::outbox::IDLE_POLL,
        sim.net.wait_for(|calls| to_b(calls) > before),
    )
    .await
    .expect("the entry was never sent");
    let sent = calls.iter().rfind(|c| delivers_a_to_b(c)).unwrap().at;
    assert!(
        sent - written <= mimi_hub::outbox::IDLE_POLL + 10 * MS,
        "sent {:?} after it was written",
        sent - written
    );
}

#[tokio::test(start_paused = true)]
async fn an_early_event_waits_for_the_gap_then_is_answered_unavailable() {
    let sim = Sim::start(&[A, B], Settings::default(), false);
    let (room, _alice, _bob) = room_with_bob(&sim).await;
    // A's outbox runner is off: the events for B wait in A's outbox.
    let entries: Vec<MimiMessage> = outbox(&sim, A, B)
        .iter()
        .map(|e| MimiMessage::decode(&e.message).unwrap())
        .collect();
    assert_eq!(entries.len(), 3);
    let b = sim.provider(B);
    let started = Instant::now();
    let reply = Handler::send(b.as_ref(), &name(A), entries[2].clone()).await;
    assert!(matches!(reply, Reply::Unavailable(_)), "{reply:?}");
    assert_eq!(Instant::now() - started, FOLLOWER_GAP_WAIT);
    assert_eq!(
        b.rooms().cached(),
        0,
        "the unknown room left nothing behind"
    );

    // An early event waits for the one before it, and is applied once it arrives.
    let early = tokio::spawn({
        let (b, last) = (b.clone(), entries[2].clone());
        async move { Handler::send(b.as_ref(), &name(A), last).await }
    });
    let started = Instant::now();
    for entry in &entries[..2] {
        let reply = Handler::send(b.as_ref(), &name(A), entry.clone()).await;
        assert!(matches!(reply, Reply::Accepted(_)), "{reply:?}");
    }
    assert!(matches!(early.await.unwrap(), Reply::Accepted(_)));
    assert!(Instant::now() - started < FOLLOWER_GAP_WAIT);
    assert_eq!(log_of(&b, &room), log_of(&sim.provider(A), &room));
}

#[tokio::test(start_paused = true)]
async fn looking_up_unknown_rooms_leaves_nothing_in_memory() {
    let sim = Sim::start(&[A, B], Settings::default(), false);
    let mut alice = sim.client(A, "alice").await;
    let a = sim.provider(A);
    let b = sim.provider(B);
    for i in 0..50 {
        let here: RoomId = format!("!unknown{i}:{A}").parse().unwrap();
        let there: RoomId = format!("!unknown{i}:{B}").parse().unwrap();
        assert!(matches!(
            a.rooms().room_state(&alice.id, &here).await,
            Err(ApiError::UnknownRoom(_))
        ));
        let answer = a
            .rooms()
            .submit(&alice.id, &here, message(vec![1, 2, 3]))
            .await
            .unwrap();
        assert_eq!(refused_with(answer), ErrorCode::UnknownRoom);
        assert!(matches!(
            a.rooms().propose_pending_removals(&here).await,
            Err(ApiError::NotHub { .. })
        ));
        // A room of B: A asks B, its hub (with a message that encodes, as it must to go
        // out).
        let framed = Event::DsSendMessage(SendMessageRequest {
            application_message: crate::world::private_message(1, 8),
        });
        let answer = a.rooms().submit(&alice.id, &there, framed).await.unwrap();
        assert_eq!(refused_with(answer), ErrorCode::UnknownRoom);
    }
    assert_eq!(a.rooms().cached(), 0);
    assert_eq!(b.rooms().cached(), 0);
    let room = alice.create_room(&sim).await;
    assert_eq!(a.rooms().cached(), 1);
    a.rooms().room_state(&alice.id, &room).await.unwrap();
    assert_eq!(a.rooms().cached(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_full_room_cache_drops_idle_rooms_and_reloads_them_from_storage() {
    let settings = Settings {
        room_cache_max: 2,
        ..Settings::default()
    };
    let sim = Sim::start(&[A], settings, false);
    let mut alice = sim.client(A, "alice").await;
    let a = sim.provider(A);
    let mut rooms = Vec::new();
    for _ in 0..5 {
        rooms.push(alice.create_room(&sim).await);
        assert!(
            a.rooms().cached() <= 2,
            "{} rooms cached",
            a.rooms().cached()
        );
    }
    // Every room still works, reloaded from storage where it was dropped.
    for (i, room) in rooms.iter().enumerate() {
        alice.say(&sim, room, &format!("room {i}")).await;
        assert!(a.rooms().cached() <= 2);
        assert_eq!(log_of(&a, room).len(), 3);
    }
}

/// A storage failure during identifier discovery is the answering server's internal error
/// (500 with an `internal` EventError), not one of the seed's discovery answers: `forbidden`
/// would tell the requester it may not search (`docs/spec-decisions.md`).
#[tokio::test(start_paused = true)]
async fn a_storage_failure_in_identifier_discovery_is_internal_not_forbidden() {
    let sim = Sim::start(&[A, B], Settings::default(), false);
    let _bob = sim.client(B, "bob").await;
    let request = mimi_codec::IdentifierRequest {
        query: mimi_codec::IdentifierQuery::Handle,
        search_value: mimi_codec::Text::new("bob").unwrap(),
    };
    let a = sim.provider(A);
    let found = a
        .accounts()
        .discover(&name(B), request.clone())
        .await
        .unwrap();
    assert_eq!(found.code, mimi_codec::IdentifierDiscoveryCode::Success);

    sim.storage(B).fail_directory_reads(true);
    match a.accounts().discover(&name(B), request.clone()).await {
        Err(ApiError::Peer {
            error:
                mimi_transport::TransportError::ServerError {
                    status: 500,
                    error: Some(e),
                    ..
                },
            ..
        }) => assert_eq!(e.code, ErrorCode::Internal),
        other => panic!("expected an internal error from b, got {other:?}"),
    }
    // b's own users asking b: the storage error itself (503, as every storage failure of
    // the client API), not an answer.
    let b = sim.provider(B);
    let local = b.accounts().discover(&name(B), request).await;
    assert!(
        matches!(&local, Err(e @ ApiError::Storage(_)) if e.class() == ErrorClass::Unavailable),
        "{local:?}"
    );
}

/// SIG-CREATE-3: the invitee's server refuses a check-invite whose room it does not
/// understand: an unknown policy or an unsupported cipher suite (the seed: "MUST reject").
#[tokio::test(start_paused = true)]
async fn check_invite_refuses_an_unknown_policy_or_cipher_suite() {
    let sim = Sim::start(&[A, B, C], Settings::default(), false);
    let mut alice = sim.client(A, "alice").await;
    let cathy = sim.client(C, "cathy").await;
    let room = alice.create_room(&sim).await;
    let invite = vec![user_event(&cathy.user(), ParticipationStateChange::Invite)];
    let state = alice.state_after(&sim, &room, &invite).await;
    let commit = alice
        .mls
        .commit(
            &room,
            CommitPlan {
                user_events: invite,
                new_room_state: Some(state),
                ..CommitPlan::default()
            },
        )
        .unwrap();
    assert_eq!(
        alice.submit(&sim, &room, Event::DsCommit(commit)).await,
        (true, EventResponse::Ok)
    );
    let asked: Vec<_> = sim
        .net
        .calls()
        .into_iter()
        .filter_map(|c| c.check_invite)
        .collect();
    assert_eq!(asked.len(), 1);
    let genuine = asked[0].clone();
    let c = sim.provider(C);
    let ask = |request: mimi_codec::CheckInviteRequest| {
        let c = c.clone();
        async move { Handler::check_invite(c.as_ref(), &name(A), request).await }
    };
    // The request the hub sent is accepted ...
    assert_eq!(
        ask(genuine.clone()).await,
        mimi_transport::CheckInviteReply::Accepted
    );
    let refused_by_policy = |reply: mimi_transport::CheckInviteReply| match reply {
        mimi_transport::CheckInviteReply::Refused(e) => {
            assert_eq!(e.code, ErrorCode::ForbiddenByPolicy, "{e:?}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    };
    // ... an unknown policy is not.
    let mut unknown_policy = genuine.clone();
    unknown_policy.room_info.room_state.policy.policy_id =
        mimi_codec::Text::new("x.unknown.policy.v9").unwrap();
    refused_by_policy(ask(unknown_policy).await);
    // ... nor an unsupported cipher suite.
    let mut unknown_suite = genuine;
    unknown_suite.room_info.room_state.security.cipher_suite = 0xfff0;
    refused_by_policy(ask(unknown_suite).await);
}

/// Rule HUB-LOAD-1: a room is loaded from its latest snapshot, its create event and the
/// events from the snapshot's window on, so loading a room of 10,000 events reads exactly
/// as many events from storage as loading one of 80 whose history ends at the same place
/// between two snapshots; and the room loaded so goes on exactly where it was.
#[tokio::test(start_paused = true)]
async fn loading_a_room_reads_the_same_events_whatever_the_length_of_its_history() {
    use mimi_hub::rooms::persist::SNAPSHOT_INTERVAL;
    use mimi_signaling::HISTORY_WINDOW;
    let settings = Settings {
        room_cache_max: 1,
        ..Settings::default()
    };
    let sim = Sim::start(&[A], settings, false);
    let mut alice = sim.client(A, "alice").await;
    let a = sim.provider(A);
    let long = alice.create_room(&sim).await;
    let short = alice.create_room(&sim).await;
    // Events 0 and 1 create each room. Each message is its own ciphertext: the hub
    // answers a byte-identical resend as the first and logs it once (HUB-ONCE-1).
    let long_messages = 9_998u64;
    let short_messages = long_messages % SNAPSHOT_INTERVAL + SNAPSHOT_INTERVAL;
    for (room, count) in [(&long, long_messages), (&short, short_messages)] {
        for i in 0..count {
            let ciphertext = alice.mls.encrypt(room, &i.to_be_bytes()).unwrap();
            let (accepted, _) = a
                .rooms()
                .submit(&alice.id, room, message(ciphertext.clone()))
                .await
                .unwrap();
            assert!(accepted);
        }
    }
    let storage = sim.storage(A);
    let mut read = Vec::new();
    for (room, count) in [(&long, long_messages), (&short, short_messages)] {
        // The other room was used last: this one is loaded from storage.
        let other = if room == &long { &short } else { &long };
        a.rooms().room_state(&alice.id, other).await.unwrap();
        let before = storage.log_entries_read();
        let (_, last) = a.rooms().room_state(&alice.id, room).await.unwrap();
        read.push(storage.log_entries_read() - before);
        assert_eq!(last, count + 1);
    }
    assert_eq!(read[0], read[1], "events read to load 10,000 and 80 events");
    let bound = 1 + (HISTORY_WINDOW + HISTORY_WINDOW / 4) as u64 + SNAPSHOT_INTERVAL;
    assert!(read[0] <= bound, "{} events read", read[0]);

    // The room loaded from its snapshot takes the next event where it stopped.
    alice.say(&sim, &long, "after the reload").await;
    let log = a.storage().log_range(&long, long_messages + 2, 10).unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].seq, long_messages + 2);
}

/// The sequence numbers in `client`'s inbox at `server`, once it holds `until` (waiting
/// on paused time while the outbox delivers).
async fn inbox_until(
    sim: &Sim,
    server: &str,
    client: &mimi_codec::ClientId,
    until: u64,
) -> Vec<u64> {
    let provider = sim.provider(server);
    let (mut cursor, mut seqs) = (0, Vec::new());
    // A bound on paused time: far beyond any delivery here, so a missing item fails.
    let give_up = Instant::now() + Duration::from_secs(120);
    while !seqs.contains(&until) {
        assert!(
            Instant::now() < give_up,
            "{client} at {server} never got event {until}; it got {seqs:?}"
        );
        // Answers as soon as an item after `cursor` is durable.
        for (c, m) in provider
            .inbox()
            .wait(client, cursor, MAX_READ_LIMIT, Duration::from_secs(5))
            .await
            .unwrap()
        {
            cursor = c;
            seqs.push(sequence_of(&m));
        }
    }
    seqs
}

/// Register a second device, "laptop", for the user of `client` at `server`.
async fn laptop(sim: &Sim, server: &str, client: &mimi_codec::ClientId) -> mimi_codec::ClientId {
    let registration = mimi_hub::accounts::Registration {
        localpart: client.user().localpart().to_owned(),
        device: "laptop".into(),
        ..Default::default()
    };
    sim.provider(server)
        .accounts()
        .register(registration, Some(client.clone()))
        .await
        .unwrap()
        .client_id
}

/// A device registered after its user's clients were read (and kept in memory by the
/// accounts) gets the next event in its inbox, at the hub and at a follower, and not the
/// events before it. Rule HUB-INBOX-2.
#[tokio::test(start_paused = true)]
async fn a_device_registered_after_its_users_clients_were_read_gets_the_next_event() {
    let sim = Sim::start(&[A, B], Settings::default(), true);
    let (room, mut alice, bob) = room_with_bob(&sim).await;
    alice.say(&sim, &room, "before").await;
    // Event 3 went into Alice's inbox at A and Bob's at B: both users' clients were read.
    assert!(inbox_until(&sim, A, &alice.id, 3).await.contains(&3));
    assert!(inbox_until(&sim, B, &bob.id, 3).await.contains(&3));
    let alice_laptop = laptop(&sim, A, &alice.id).await;
    let bob_laptop = laptop(&sim, B, &bob.id).await;
    alice.say(&sim, &room, "after").await;
    assert_eq!(inbox_until(&sim, A, &alice_laptop, 4).await, vec![4]);
    assert_eq!(inbox_until(&sim, B, &bob_laptop, 4).await, vec![4]);
}
