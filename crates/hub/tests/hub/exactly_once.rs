//! Exactly once across lost answers (issue 17, fault A): a follower forwards its user's
//! event to the hub, the hub handles it, the answer is lost and the follower's transport
//! sends it again. The resend is recognised by the event's own content and answered as
//! the first was: one log entry, no second sequence number; a resent commit is accepted
//! again rather than refused as stale (fault B, hub side). Paused time, in-process world.

use mimi_codec::{Event, EventResponse, MlsBytes, SendMessageRequest};
use mimi_e2e::CommitPlan;
use mimi_hub::context::Settings;

use crate::sim::{Answer, Endpoint, Sim};
use crate::world::{A, B, Providers, assert_gapless, log_of};

#[tokio::test(start_paused = true)]
async fn a_forward_whose_answer_is_lost_is_logged_once() {
    let sim = Sim::start(&[A, B], Settings::default(), true);
    let mut alice = sim.client(A, "alice").await;
    let mut bob = sim.client(B, "bob").await;
    bob.publish(&sim, 1, true).await;
    let room = alice.create_room(&sim).await;
    alice.add(&sim, &room, &bob.user()).await;
    bob.sync_until(&sim, "Bob to join", |c| c.in_room(&room))
        .await;
    let a = sim.provider(A);
    let before = log_of(&a, &room).len();

    // Every answer of the hub to b's forwards is lost once.
    sim.net.set(A, Endpoint::Send, Answer::LostOnce);
    let ciphertext = bob.mls.encrypt(&room, b"once").unwrap();
    let answer = bob
        .submit(
            &sim,
            &room,
            Event::DsSendMessage(SendMessageRequest {
                application_message: MlsBytes::new(ciphertext).unwrap(),
            }),
        )
        .await;
    assert_eq!(answer, (true, EventResponse::Ok));
    let sends = sim
        .net
        .calls()
        .iter()
        .filter(|c| c.endpoint == Endpoint::Send && c.to.as_str() == A)
        .count();
    assert_eq!(sends, 2, "the forward was sent twice");
    let log = log_of(&a, &room);
    assert_eq!(log.len(), before + 1, "the resend is not sequenced again");
    assert_gapless(&log);

    // A commit of Bob's, its answer lost: the resend is answered as the first was (not
    // refused as stale for the epoch it moved the group on from).
    let epoch = bob.mls.epoch(&room).unwrap();
    let commit = bob.mls.commit(&room, CommitPlan::default()).unwrap();
    let answer = bob.submit(&sim, &room, Event::DsCommit(commit)).await;
    assert_eq!(answer, (true, EventResponse::Ok));
    assert_eq!(log_of(&a, &room).len(), before + 2);
    bob.sync_until(&sim, "Bob's own commit", |c| {
        c.mls.epoch(&room).unwrap() == epoch + 1
    })
    .await;
    sim.net.set(A, Endpoint::Send, Answer::Route);
    // Alice reads the message once, and the room goes on.
    alice
        .sync_until(&sim, "Alice to read Bob's message", |c| {
            !c.received.is_empty()
        })
        .await;
    assert_eq!(alice.texts(), ["once"]);
    bob.say(&sim, &room, "after").await;
    alice
        .sync_until(&sim, "the next message", |c| c.received.len() == 2)
        .await;
    assert_eq!(alice.texts(), ["once", "after"]);
    assert_gapless(&log_of(&a, &room));
}

/// A resend that arrives while the first copy's write is still in flight (issue 17): the
/// hub has accepted the first in memory but storage does not hold it yet, so the durable
/// check alone would not see it. The resend waits for the first copy's write and is
/// answered as it was: one log entry, the same answer to both.
#[tokio::test(start_paused = true)]
async fn a_resend_while_the_first_write_is_in_flight_is_logged_once() {
    use mimi_codec::{MessageBody, MimiMessage, Sender};
    use mimi_transport::Handler;

    let sim = Sim::start(&[A, B], Settings::default(), true);
    let mut alice = sim.client(A, "alice").await;
    let mut bob = sim.client(B, "bob").await;
    bob.publish(&sim, 1, true).await;
    let room = alice.create_room(&sim).await;
    alice.add(&sim, &room, &bob.user()).await;
    bob.sync_until(&sim, "Bob to join", |c| c.in_room(&room))
        .await;
    let a = sim.provider(A);
    let before = log_of(&a, &room).len();

    let ciphertext = bob.mls.encrypt(&room, b"in flight").unwrap();
    let forward = MimiMessage::new(
        room.clone(),
        Sender::User(bob.user()),
        MessageBody::Event(Event::DsSendMessage(SendMessageRequest {
            application_message: MlsBytes::new(ciphertext).unwrap(),
        })),
    );
    let storage = sim.storage(A);
    storage.hold_writes();
    let first = tokio::spawn({
        let (a, forward) = (a.clone(), forward.clone());
        async move { Handler::send(a.as_ref(), &crate::world::name(B), forward).await }
    });
    // The first copy is accepted and its write submitted, not yet durable.
    storage.writes_held(1).await;
    let second = tokio::spawn({
        let (a, forward) = (a.clone(), forward.clone());
        async move { Handler::send(a.as_ref(), &crate::world::name(B), forward).await }
    });
    // The resend has reached storage too (its own write, or a wait behind the first).
    storage.writes_held(2).await;
    assert!(!first.is_finished(), "answered before its write is durable");
    storage.release_writes();
    let (first, second) = (first.await.unwrap(), second.await.unwrap());
    assert!(
        matches!(first, mimi_transport::Reply::Accepted(_)),
        "{first:?}"
    );
    assert_eq!(first, second, "the resend is answered as the first copy");
    let log = log_of(&a, &room);
    assert_eq!(log.len(), before + 1, "the resend is not sequenced again");
    assert_gapless(&log);
}

/// `create_room`'s two writes (the create event, `ds.create_group`) are both submitted
/// before either is awaited, so they can reach the disk together; the room is answered
/// only once both are durable.
#[tokio::test(start_paused = true)]
async fn a_new_rooms_two_writes_go_out_together_and_are_answered_once_durable() {
    use mimi_codec::{CreateGroupRequest, JoinRule};
    use mimi_e2e::ExternalSender;
    use openmls::prelude::tls_codec::Deserialize as _;

    let sim = Sim::start(&[A], Settings::default(), true);
    let mut alice = sim.client(A, "alice").await;
    let a = sim.provider(A);
    let prepared = a
        .rooms()
        .prepare_room(&alice.id, JoinRule::MembersOnly)
        .unwrap();
    let hub =
        ExternalSender::tls_deserialize_exact(prepared.hub_external_sender.as_slice()).unwrap();
    let created = alice.mls.create_room(&prepared.room_state, hub).unwrap();
    let storage = sim.storage(A);
    storage.hold_writes();
    let creating = tokio::spawn({
        let (a, id, room) = (a.clone(), alice.id.clone(), prepared.room_id.clone());
        async move {
            a.rooms()
                .create_room(
                    &id,
                    &room,
                    JoinRule::MembersOnly,
                    CreateGroupRequest {
                        group_info: MlsBytes::new(created.group_info).unwrap(),
                        ratchet_tree: MlsBytes::new(created.ratchet_tree).unwrap(),
                    },
                )
                .await
        }
    });
    // Both writes are in flight at once; one after the other, the second would wait for
    // the first to be durable.
    tokio::time::timeout(std::time::Duration::from_secs(1), storage.writes_held(2))
        .await
        .expect("both writes submitted before either is durable");
    assert!(
        !creating.is_finished(),
        "answered before its writes are durable"
    );
    storage.release_writes();
    assert_eq!(creating.await.unwrap().unwrap(), 1);
    let log = log_of(&a, &prepared.room_id);
    assert_eq!(log.len(), 2);
    assert_gapless(&log);
    let (state, sequence) = a
        .rooms()
        .room_state(&alice.id, &prepared.room_id)
        .await
        .unwrap();
    assert_eq!(sequence, 1);
    assert_eq!(state.room_id, prepared.room_id);
}
