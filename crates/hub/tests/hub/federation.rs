//! Three providers over real HTTPS: a room hubbed at `a.example` with users of `b.example`
//! and `c.example`; ordered, exactly-once delivery to every participating server, also
//! across a follower's and the hub's restart (HUB-OUT-1, HUB-DUR-1).

use mimi_codec::{
    Event, EventResponse, MessageBody, MlsBytes, ParticipationStateChange, RoomId,
    SendMessageRequest, ServerName,
};
use mimi_e2e::{CommitPlan, RemoveTarget};
use std::sync::atomic::Ordering;

use mimi_hub::rooms::persist::decode_event;
use mimi_transport::TransportError;

use crate::world::{
    A, B, C, Client, World, assert_gapless, assert_once_in_order, eventually, log_of, name,
    user_event,
};

/// Alice@a creates a room, adds Bob@b; messages both ways.
pub async fn two_party(world: &World) -> (RoomId, Client, Client) {
    let mut alice = world.client(A, "alice", Some("Alice")).await;
    let mut bob = world.client(B, "bob", Some("Bob")).await;
    bob.publish(world, 2, true).await;
    let room = alice.create_room(world).await;
    alice.add(world, &room, &bob.user()).await;
    bob.sync_until(world, "Bob to join from his Welcome", |c| c.in_room(&room))
        .await;
    assert_eq!(
        bob.mls.epoch(&room).unwrap(),
        alice.mls.epoch(&room).unwrap()
    );
    (room, alice, bob)
}

/// An application message that is not MLS.
fn garbage_message(len: usize) -> Event {
    Event::DsSendMessage(SendMessageRequest {
        application_message: crate::world::private_message(0x5a, len),
    })
}

/// The provider's log of the room has caught up with `len` entries.
async fn log_reaches(world: &World, server: &str, room: &RoomId, len: usize) {
    let provider = world.provider(server);
    eventually(&format!("{server} to log {len} events"), || {
        let n = log_of(&provider, room).len();
        async move { (n >= len).then_some(()) }
    })
    .await;
}

/// The hub's outbox for `dest` is empty.
async fn outbox_drains(world: &World, dest: &str) {
    let hub = world.provider(A);
    let dest: ServerName = name(dest);
    eventually("the hub's outbox to drain", || {
        let empty = hub.storage().outbox_peek(&dest, 16).unwrap().is_empty();
        async move { empty.then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_across_three_providers_has_one_log_everywhere() {
    let world = World::start(&[A, B, C]).await;
    let (room, mut alice, mut bob) = two_party(&world).await;
    let a = world.provider(A);

    alice.say(&world, &room, "hello Bob").await;
    bob.sync_until(&world, "Bob to read Alice", |c| !c.received.is_empty())
        .await;
    assert_eq!(bob.texts(), ["hello Bob"]);
    assert_eq!(bob.received[0].0, alice.id);

    // Bob's message goes through b to the hub a.
    bob.say(&world, &room, "hi Alice").await;
    alice.sync(&a).await;
    assert_eq!(alice.texts(), ["hi Alice"]);
    assert_eq!(alice.received[0].0, bob.id);

    let mut cathy = world.client(C, "cathy", Some("Cathy")).await;
    cathy.publish(&world, 1, true).await;
    alice.add(&world, &room, &cathy.user()).await;
    cathy
        .sync_until(&world, "Cathy to join", |c| c.in_room(&room))
        .await;
    let epoch = alice.mls.epoch(&room).unwrap();
    bob.sync_until(&world, "Bob to process Cathy's add", |c| {
        c.mls.epoch(&room).unwrap() == epoch
    })
    .await;

    cathy.say(&world, &room, "hello from c").await;
    alice.sync(&a).await;
    bob.sync_until(&world, "Bob to read Cathy", |c| c.received.len() == 2)
        .await;
    assert_eq!(alice.texts(), ["hi Alice", "hello from c"]);
    assert_eq!(bob.texts(), ["hello Bob", "hello from c"]);
    assert_eq!(cathy.texts(), Vec::<String>::new());

    // Every server's log: the same events, in the same order, each once.
    let hub_log = log_of(&a, &room);
    // create, ds.create_group, add Bob, 2 messages, add Cathy, 1 message.
    assert_eq!(hub_log.len(), 7);
    assert_gapless(&hub_log);
    for follower in [B, C] {
        log_reaches(&world, follower, &room, hub_log.len()).await;
        assert_eq!(
            log_of(&world.provider(follower), &room),
            hub_log,
            "{follower}"
        );
    }
    // The followers' copies of the room state are the hub's.
    let at_hub = a.rooms().room_state(&alice.id, &room).await.unwrap();
    assert_eq!(at_hub.1, 6);
    assert_eq!(
        world
            .provider(B)
            .rooms()
            .room_state(&bob.id, &room)
            .await
            .unwrap(),
        at_hub
    );
    assert_eq!(
        world
            .provider(C)
            .rooms()
            .room_state(&cathy.id, &room)
            .await
            .unwrap(),
        at_hub
    );
    // Inboxes: nothing twice, in order. Cathy's starts with the commit that added her.
    cathy
        .sync_until(&world, "Cathy's own message", |c| {
            c.seen.last().map(|s| s.1) == Some(6)
        })
        .await;
    for client in [&alice, &bob, &cathy] {
        assert_once_in_order(&client.seen);
    }
    let seqs = |c: &Client| c.seen.iter().map(|s| s.1).collect::<Vec<_>>();
    // The creator's inbox starts after the two events her own room creation logged.
    assert_eq!(seqs(&alice), [2, 3, 4, 5, 6]);
    assert_eq!(seqs(&bob), [2, 3, 4, 5, 6]);
    assert_eq!(seqs(&cathy), [5, 6]);
    outbox_drains(&world, B).await;
    outbox_drains(&world, C).await;

    // At-least-once delivery: the hub sending an event again (as after a crash before the
    // peer's answer reached it) is answered 200 and changes nothing at the follower.
    let as_hub = world.mimi_client(world.pki.client_tls(Some(A)));
    let stored = a.storage().log_range(&room, 3, 1).unwrap();
    let again = decode_event(&stored[0].entry).unwrap().message(&room);
    let b = world.provider(B);
    let bob_inbox = b.inbox().read(&bob.id, 0, 100).await.unwrap();
    let outcome = as_hub.send(&name(B), &again).await.unwrap();
    assert_eq!(
        outcome.response.map(|m| m.body),
        Some(MessageBody::Response(EventResponse::Ok))
    );
    assert_eq!(log_of(&b, &room), hub_log);
    assert_eq!(b.inbox().read(&bob.id, 0, 100).await.unwrap(), bob_inbox);
    // A different event under a sequence number the follower has is refused.
    let mut forged = again.clone();
    if let MessageBody::Fanout(f) = &mut forged.body {
        f.event = garbage_message(8);
    }
    match as_hub.send(&name(B), &forged).await {
        Err(TransportError::Refused { status: 400, .. }) => {}
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(log_of(&b, &room), hub_log);
    drop((a, b));
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_that_was_down_gets_every_event_once_in_order() {
    let mut world = World::start(&[A, B, C]).await;
    let (room, mut alice, mut bob) = two_party(&world).await;
    let mut cathy = world.client(C, "cathy", None).await;
    cathy.publish(&world, 1, false).await;
    alice.add(&world, &room, &cathy.user()).await;
    cathy
        .sync_until(&world, "Cathy to join", |c| c.in_room(&room))
        .await;
    let before = log_of(&world.provider(A), &room).len();
    log_reaches(&world, C, &room, before).await;

    let mut dan = world.client(B, "dan", None).await;
    dan.publish(&world, 1, false).await;

    world.stop(C).await;
    // Messages and a commit (Dan@b joins) while c is down.
    let sent = ["one", "two", "three"];
    alice.say(&world, &room, sent[0]).await;
    alice.add(&world, &room, &dan.user()).await;
    alice.say(&world, &room, sent[1]).await;
    alice.say(&world, &room, sent[2]).await;
    // b is up and gets them while c is down.
    bob.sync_until(&world, "Bob's messages", |c| c.received.len() == 3)
        .await;
    dan.sync_until(&world, "Dan's messages", |c| c.received.len() == 2)
        .await;
    assert_eq!(dan.texts(), sent[1..]);
    let queued = world
        .provider(A)
        .storage()
        .outbox_peek(&name(C), 16)
        .unwrap();
    assert!(
        !queued.is_empty(),
        "the hub keeps c's events while c is down"
    );

    world.restart(C).await;
    let hub_log = log_of(&world.provider(A), &room);
    assert_eq!(hub_log.len(), before + 4);
    log_reaches(&world, C, &room, hub_log.len()).await;
    assert_eq!(log_of(&world.provider(C), &room), hub_log);
    cathy
        .sync_until(&world, "Cathy's messages", |c| c.received.len() == 3)
        .await;
    assert_eq!(cathy.texts(), sent);
    assert_eq!(bob.texts(), sent);
    assert_once_in_order(&cathy.seen);
    let seqs: Vec<u64> = cathy.seen.iter().map(|s| s.1).collect();
    let expected: Vec<u64> = (before as u64 - 1..before as u64 + 4).collect();
    assert_eq!(seqs, expected);
    outbox_drains(&world, C).await;
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_the_hub_answered_survives_its_restart_and_is_delivered() {
    let mut world = World::start(&[A, B]).await;
    let (room, mut alice, mut bob) = two_party(&world).await;
    let before = log_of(&world.provider(A), &room);
    log_reaches(&world, B, &room, before.len()).await;

    world.stop(B).await;
    alice.say(&world, &room, "kept").await;
    let after = log_of(&world.provider(A), &room);
    assert_eq!(after.len(), before.len() + 1);
    let queued = world
        .provider(A)
        .storage()
        .outbox_peek(&name(B), 16)
        .unwrap();
    assert_eq!(
        queued.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [Some(after.len() as u64 - 1)]
    );

    // The hub goes away right after its 200 and comes back from its file.
    world.stop(A).await;
    world.restart(A).await;
    assert_eq!(log_of(&world.provider(A), &room), after);
    // The restarted hub tries b, which is still unreachable, and keeps the entry: a
    // third connection means a whole send (two attempts, see `World::mimi_client`) failed
    // and the outbox tried again.
    let (hole, attempts) = world.black_hole(B).await;
    eventually("the restarted hub to retry b", || {
        let n = attempts.load(Ordering::SeqCst);
        async move { (n >= 3).then_some(()) }
    })
    .await;
    hole.abort();
    let _ = hole.await;
    assert_eq!(
        world
            .provider(A)
            .storage()
            .outbox_peek(&name(B), 16)
            .unwrap(),
        queued
    );
    world.restart(B).await;
    log_reaches(&world, B, &room, after.len()).await;
    assert_eq!(log_of(&world.provider(B), &room), after);
    bob.sync_until(&world, "Bob to read the kept message", |c| {
        !c.received.is_empty()
    })
    .await;
    assert_eq!(bob.texts(), ["kept"]);

    // The restarted hub still runs the room: Bob's reply is accepted and reaches Alice, and
    // so is a commit against the group state it reloaded.
    bob.say(&world, &room, "got it").await;
    alice.sync(&world.provider(A)).await;
    assert_eq!(alice.texts(), ["got it"]);
    let mut dan = world.client(B, "dan", None).await;
    dan.publish(&world, 1, false).await;
    alice.add(&world, &room, &dan.user()).await;
    dan.sync_until(&world, "Dan to join", |c| c.in_room(&room))
        .await;
    alice.say(&world, &room, "welcome Dan").await;
    dan.sync_until(&world, "Dan's message", |c| !c.received.is_empty())
        .await;
    assert_eq!(dan.texts(), ["welcome Dan"]);
    assert_once_in_order(&bob.seen);
    assert_once_in_order(&alice.seen);
    outbox_drains(&world, B).await;
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_stopped_participating_catches_up_when_it_takes_part_again() {
    let world = World::start(&[A, B]).await;
    let (room, mut alice, mut bob) = two_party(&world).await;
    let a = world.provider(A);

    // Alice removes Bob: b has no user in the room any more.
    let kick = user_event(&bob.user(), ParticipationStateChange::Leave);
    let state = alice
        .state_after(&world, &room, std::slice::from_ref(&kick))
        .await;
    let epoch = alice.mls.epoch(&room).unwrap();
    let commit = alice
        .mls
        .commit(
            &room,
            CommitPlan {
                user_events: vec![kick],
                removes: vec![RemoveTarget::AllClientsOf(bob.user())],
                new_room_state: Some(state),
                ..CommitPlan::default()
            },
        )
        .unwrap();
    assert_eq!(
        alice.submit(&world, &room, Event::DsCommit(commit)).await,
        (true, EventResponse::Ok)
    );
    alice
        .sync_until(&world, "Alice's removal of Bob", |c| {
            c.mls.epoch(&room).unwrap() == epoch + 1
        })
        .await;
    bob.sync_until(&world, "Bob to learn he is out", |c| {
        !c.mls.is_active(&room).unwrap()
    })
    .await;
    let kicked = log_of(&a, &room).len();
    log_reaches(&world, B, &room, kicked).await;

    // The room goes on without b.
    alice.say(&world, &room, "between").await;

    // Bob is invited again: b answers check-invite and must get the room's history from
    // where it left off, in order, to verify the invite.
    let invite = user_event(&bob.user(), ParticipationStateChange::Invite);
    let state = alice
        .state_after(&world, &room, std::slice::from_ref(&invite))
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
    assert_eq!(
        alice.submit(&world, &room, Event::DsCommit(commit)).await,
        (true, EventResponse::Ok)
    );
    let hub_log = log_of(&a, &room);
    assert_eq!(hub_log.len(), kicked + 2);
    log_reaches(&world, B, &room, hub_log.len()).await;
    assert_eq!(log_of(&world.provider(B), &room), hub_log);
    let at_hub = a.rooms().room_state(&alice.id, &room).await.unwrap();
    assert_eq!(
        world
            .provider(B)
            .rooms()
            .room_state(&bob.id, &room)
            .await
            .unwrap(),
        at_hub
    );
    outbox_drains(&world, B).await;
    drop(a);
    world.shutdown().await;
}

/// Events of several rooms submitted at the same time reach each follower complete, once
/// and in each room's order: the outbox sends rooms concurrently and each room in order
/// (a follower refuses an event out of its room's order, so a reordering would leave a
/// gap), and the hub's group commit keeps every room's log gapless.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_rooms_reach_followers_complete_and_in_order() {
    const ROOMS: usize = 4;
    const PER_ROOM: usize = 25;
    let world = World::start(&[A, B, C]).await;
    let mut alice = world.client(A, "alice", None).await;
    let mut bob = world.client(B, "bob", None).await;
    let mut cathy = world.client(C, "cathy", None).await;
    bob.publish(&world, 1, true).await;
    cathy.publish(&world, 1, true).await;
    let mut rooms = Vec::new();
    for _ in 0..ROOMS {
        let room = alice.create_room(&world).await;
        alice.add(&world, &room, &bob.user()).await;
        alice.add(&world, &room, &cathy.user()).await;
        rooms.push(room);
    }
    // Encrypt first (one MLS client), then submit every room's events at once.
    let mut events = Vec::new();
    for room in &rooms {
        let mut room_events = Vec::new();
        for i in 0..PER_ROOM {
            let ciphertext = alice.mls.encrypt(room, format!("m{i}").as_bytes()).unwrap();
            room_events.push(Event::DsSendMessage(SendMessageRequest {
                application_message: MlsBytes::new(ciphertext).unwrap(),
            }));
        }
        events.push(room_events);
    }
    {
        let alice = &alice;
        let world = &world;
        let mut pending: Vec<_> = rooms
            .iter()
            .zip(events)
            .map(|(room, room_events)| {
                Box::pin(async move {
                    for event in room_events {
                        assert_eq!(
                            alice.submit(world, room, event).await,
                            (true, EventResponse::Ok)
                        );
                    }
                })
            })
            .collect();
        // Poll every room's submitter together.
        std::future::poll_fn(|cx| {
            pending.retain_mut(|f| f.as_mut().poll(cx).is_pending());
            if pending.is_empty() {
                std::task::Poll::Ready(())
            } else {
                std::task::Poll::Pending
            }
        })
        .await;
    }
    let hub = world.provider(A);
    for room in &rooms {
        let hub_log = log_of(&hub, room);
        assert_gapless(&hub_log);
        for follower in [B, C] {
            log_reaches(&world, follower, room, hub_log.len()).await;
            assert_eq!(log_of(&world.provider(follower), room), hub_log);
        }
    }
    for follower in [B, C] {
        outbox_drains(&world, follower).await;
    }
    bob.sync_until(&world, "Bob to read every message", |c| {
        c.received.len() == ROOMS * PER_ROOM
    })
    .await;
    assert_once_in_order(&bob.seen);
    world.shutdown().await;
}

/// A long-polling inbox read waits for the first item and answers as soon as one is
/// durable, at the hub's and at a follower's client alike; with nothing coming it answers
/// empty when its wait is over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_polling_inbox_read_answers_when_an_item_arrives() {
    use std::time::Duration;
    let world = World::start(&[A, B]).await;
    let (room, mut alice, mut bob) = two_party(&world).await;
    alice.sync(&world.provider(A)).await;
    bob.sync(&world.provider(B)).await;
    let empty = world
        .provider(B)
        .inbox()
        .wait(&bob.id, bob.cursor, 16, Duration::from_millis(50))
        .await
        .unwrap();
    assert!(empty.is_empty());
    // Both wait far longer than delivery takes; a read that were not woken would only
    // answer when its 20 s are over, and the 10 s bound would fail the test.
    let waiting = |server: &'static str, client: mimi_codec::ClientId, cursor: u64| {
        let provider = world.provider(server);
        tokio::spawn(async move {
            tokio::time::timeout(
                Duration::from_secs(10),
                provider
                    .inbox()
                    .wait(&client, cursor, 16, Duration::from_secs(20)),
            )
            .await
        })
    };
    let at_follower = waiting(B, bob.id.clone(), bob.cursor);
    let at_hub = waiting(A, alice.id.clone(), alice.cursor);
    alice.say(&world, &room, "wake up").await;
    for waiter in [at_follower, at_hub] {
        let items = waiter
            .await
            .unwrap()
            .expect("the read was woken before its wait was over")
            .unwrap();
        assert_eq!(items.len(), 1);
    }
    world.shutdown().await;
}

/// Authentication keeps verified token hashes in memory: a second request with the token
/// is still accepted, a wrong secret for the same (cached) client or a token of another
/// client's ID is refused, and the cache survives nothing a restart would not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_authentication_still_refuses_wrong_tokens() {
    use mimi_hub::accounts::Registration;
    use mimi_hub::error::ApiError;
    let mut world = World::start(&[A]).await;
    let register = |localpart: &str| Registration {
        localpart: localpart.into(),
        device: "laptop".into(),
        ..Registration::default()
    };
    let a = world.provider(A);
    let first = a.accounts().register(register("erin"), None).await.unwrap();
    let second = a
        .accounts()
        .register(register("frank"), None)
        .await
        .unwrap();
    for _ in 0..2 {
        assert_eq!(
            a.accounts().authenticate(&first.token).await.unwrap(),
            first.client_id
        );
    }
    let (id, secret) = first.token.rsplit_once('.').unwrap();
    let wrong = format!("{id}.{}", "0".repeat(secret.len()));
    assert!(matches!(
        a.accounts().authenticate(&wrong).await,
        Err(ApiError::Unauthorized)
    ));
    let (_, other_secret) = second.token.rsplit_once('.').unwrap();
    let swapped = format!("{id}.{other_secret}");
    assert!(matches!(
        a.accounts().authenticate(&swapped).await,
        Err(ApiError::Unauthorized)
    ));
    // Registering the same client again is refused and changes nothing cached.
    assert!(matches!(
        a.accounts().register(register("erin"), None).await,
        Err(ApiError::UserExists(_))
    ));
    assert_eq!(
        a.accounts().authenticate(&first.token).await.unwrap(),
        first.client_id
    );
    drop(a);
    world.stop(A).await;
    world.restart(A).await;
    let a = world.provider(A);
    assert_eq!(
        a.accounts().authenticate(&first.token).await.unwrap(),
        first.client_id
    );
    assert!(matches!(
        a.accounts().authenticate(&wrong).await,
        Err(ApiError::Unauthorized)
    ));
    drop(a);
    world.shutdown().await;
}

/// A server that joins a room whose early events are no longer in the hub's memory
/// (`HISTORY_WINDOW`) is sent the whole history from the hub's stored log, and its copy is
/// the hub's, event for event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_server_gets_the_history_memory_no_longer_holds() {
    let world = World::start(&[A, B, C]).await;
    let (room, mut alice, _bob) = two_party(&world).await;
    for i in 0..(mimi_signaling::HISTORY_WINDOW + 10) {
        alice.say(&world, &room, &format!("before Cathy {i}")).await;
    }
    let a = world.provider(A);
    assert!(log_of(&a, &room).len() > mimi_signaling::HISTORY_WINDOW + 10);
    let mut cathy = world.client(C, "cathy", None).await;
    cathy.publish(&world, 1, false).await;
    alice.add(&world, &room, &cathy.user()).await;
    let hub_log = log_of(&a, &room);
    assert_gapless(&hub_log);
    log_reaches(&world, C, &room, hub_log.len()).await;
    assert_eq!(log_of(&world.provider(C), &room), hub_log);
    cathy
        .sync_until(&world, "Cathy to join", |c| c.in_room(&room))
        .await;
    alice.say(&world, &room, "welcome Cathy").await;
    cathy
        .sync_until(&world, "Cathy's first message", |c| !c.received.is_empty())
        .await;
    assert_eq!(cathy.texts(), ["welcome Cathy"]);
    drop(a);
    world.shutdown().await;
}
