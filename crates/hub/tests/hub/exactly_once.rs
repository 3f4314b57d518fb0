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
