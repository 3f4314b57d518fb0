//! Provider-to-provider exchanges about users: check-invite before an invite is accepted
//! (HUB-INV-1), key packages handed out once (`ds.fetch_key_packages`), and identifier
//! discovery at a peer.

use mimi_codec::mls_ids::DEFAULT_CIPHER_SUITE;
use mimi_codec::{
    BoundedVec, ErrorCode, Event, EventResponse, IdentifierDiscoveryCode, IdentifierQuery,
    IdentifierRequest, IdentifierResponse, KeyPackagesRequest, MessageBody, MimiMessage,
    ParticipationState, ParticipationStateChange, RoomId, Sender, Text, UserId,
};
use mimi_e2e::CommitPlan;
use mimi_hub::error::{ApiError, ErrorClass};
use mimi_hub::storage::KeyPackageCount;
use mimi_transport::TransportError;

use crate::world::{A, B, C, Client, World, eventually, log_of, name, user_event};

/// Alice invites `invitee` in a commit; returns the hub's answer. A refused commit is
/// discarded, an accepted one processed.
async fn invite(
    world: &World,
    alice: &mut Client,
    room: &RoomId,
    invitee: &UserId,
) -> (bool, EventResponse) {
    let change = user_event(invitee, ParticipationStateChange::Invite);
    let state = alice
        .state_after(world, room, std::slice::from_ref(&change))
        .await;
    let epoch = alice.mls.epoch(room).unwrap();
    let commit = alice
        .mls
        .commit(
            room,
            CommitPlan {
                user_events: vec![change],
                new_room_state: Some(state),
                ..CommitPlan::default()
            },
        )
        .unwrap();
    let answer = alice.submit(world, room, Event::DsCommit(commit)).await;
    if answer.0 {
        alice
            .sync_until(world, "Alice's invite", |c| {
                c.mls.epoch(room).unwrap() == epoch + 1
            })
            .await;
    } else {
        alice.mls.clear_pending_commit(room).unwrap();
    }
    answer
}

fn refused_with(answer: (bool, EventResponse)) -> ErrorCode {
    match answer {
        (false, EventResponse::Error(e)) => e.code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_needs_the_invitees_server_to_agree() {
    let mut world = World::start(&[A, B, C]).await;
    let mut alice = world.client(A, "alice", None).await;
    let mut cathy = world.client(C, "cathy", None).await;
    let bob = world.client(B, "bob", None).await;
    let room = alice.create_room(&world).await;
    let a = world.provider(A);
    let initial = a.rooms().room_state(&alice.id, &room).await.unwrap();

    // c has no such user: c refuses, so the hub refuses the invite.
    let nobody: UserId = "@nobody:c.example".parse().unwrap();
    let answer = invite(&world, &mut alice, &room, &nobody).await;
    assert_eq!(refused_with(answer), ErrorCode::InviteRejected);
    assert_eq!(
        a.rooms().room_state(&alice.id, &room).await.unwrap(),
        initial
    );
    assert_eq!(world.provider(C).storage().room(&room).unwrap(), None);

    // b cannot be reached: a network error counts as a refusal.
    drop(a);
    world.stop(B).await;
    let answer = invite(&world, &mut alice, &room, &bob.user()).await;
    assert_eq!(refused_with(answer), ErrorCode::InviteRejected);
    let a = world.provider(A);
    assert_eq!(
        a.rooms().room_state(&alice.id, &room).await.unwrap(),
        initial
    );
    assert!(a.storage().outbox_peek(&name(B), 16).unwrap().is_empty());

    // A user c knows: accepted, fanned out to c, and in Cathy's inbox.
    let answer = invite(&world, &mut alice, &room, &cathy.user()).await;
    assert_eq!(answer, (true, EventResponse::Ok));
    let at_hub = a.rooms().room_state(&alice.id, &room).await.unwrap();
    assert_eq!(at_hub.1, 2);
    let invited = at_hub
        .0
        .participants
        .iter()
        .find(|p| p.user_id == cathy.user())
        .map(|p| p.state);
    assert_eq!(invited, Some(ParticipationState::Invite));
    let c = world.provider(C);
    eventually("c to follow the room", || {
        let n = log_of(&c, &room).len();
        async move { (n == 3).then_some(()) }
    })
    .await;
    assert_eq!(log_of(&c, &room), log_of(&a, &room));
    assert_eq!(
        c.rooms().room_state(&cathy.id, &room).await.unwrap(),
        at_hub
    );
    cathy
        .sync_until(&world, "Cathy's invite", |c| !c.seen.is_empty())
        .await;
    assert_eq!(cathy.seen, [(room.clone(), 2)]);

    // b is back: the same invite to Bob is now accepted.
    world.restart(B).await;
    let answer = invite(&world, &mut alice, &room, &bob.user()).await;
    assert_eq!(answer, (true, EventResponse::Ok));
    drop((a, c));
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_time_key_package_is_handed_out_once() {
    let world = World::start(&[A, B]).await;
    let mut alice = world.client(A, "alice", None).await;
    let mut bob = world.client(B, "bob", None).await;
    let mut dan = world.client(B, "dan", None).await;
    let bob_packages = bob.publish(&world, 1, true).await;
    let dan_packages = dan.publish(&world, 1, false).await;
    let room = alice.create_room(&world).await;
    let a = world.provider(A);

    let claim = |user: UserId| {
        let a = a.clone();
        let alice = alice.id.clone();
        let room = room.clone();
        async move {
            a.accounts()
                .claim_key_packages(&alice, &room, &user, vec![])
                .await
                .map(|kps| {
                    kps.into_iter()
                        .map(|k| (k.client, k.key_package.as_slice().to_vec()))
                        .collect::<Vec<_>>()
                })
        }
    };
    // Bob: the one-time package once, then the last-resort one, which stays.
    assert_eq!(
        claim(bob.user()).await.unwrap(),
        [(bob.id.clone(), bob_packages[0].clone())]
    );
    for _ in 0..2 {
        assert_eq!(
            claim(bob.user()).await.unwrap(),
            [(bob.id.clone(), bob_packages[1].clone())]
        );
    }
    assert_eq!(
        world
            .provider(B)
            .storage()
            .key_package_count(&bob.id, DEFAULT_CIPHER_SUITE)
            .unwrap(),
        KeyPackageCount {
            one_time: 0,
            last_resort: 1
        }
    );

    // Dan: one package, then none. b answers NoKeyPackages, which the claim reports as
    // not found, as a local claim does.
    assert_eq!(
        claim(dan.user()).await.unwrap(),
        [(dan.id.clone(), dan_packages[0].clone())]
    );
    match claim(dan.user()).await {
        Err(e @ ApiError::Refused(_)) => {
            assert_eq!(e.class(), ErrorClass::NotFound);
            assert!(e.to_string().contains("no key packages"), "{e}");
        }
        other => panic!("expected not found, got {other:?}"),
    }
    let fetch = |sender: &str| {
        MimiMessage::new(
            room.clone(),
            sender.parse::<Sender>().unwrap(),
            MessageBody::Event(Event::DsFetchKeyPackages(KeyPackagesRequest {
                cipher_suite: DEFAULT_CIPHER_SUITE,
                user: dan.user(),
                clients: BoundedVec::default(),
            })),
        )
    };
    let refusal = world
        .client_of(A)
        .send(&name(B), &fetch("@alice:a.example"))
        .await;
    match refusal {
        Err(TransportError::Refused {
            status: 400,
            error: Some(e),
        }) => assert_eq!(e.code, ErrorCode::NoKeyPackages),
        other => panic!("expected NoKeyPackages, got {other:?}"),
    }
    // A fetch must come from a user of the TLS peer.
    match world
        .client_of(A)
        .send(&name(B), &fetch("@eve:c.example"))
        .await
    {
        Err(TransportError::Refused {
            status: 400,
            error: Some(e),
        }) => assert_eq!(e.code, ErrorCode::SenderMismatch),
        other => panic!("expected SenderMismatch, got {other:?}"),
    }
    drop(a);
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identifier_discovery_at_a_peer() {
    let world = World::start(&[A, B]).await;
    let alice = world.client(A, "alice", Some("Alice")).await;
    let _bob = world.client(B, "bob", Some("Bob")).await;
    let _bobby = world.client(B, "bobby", Some("bob")).await;
    let _carol = world.client(B, "carol", Some("Carol")).await;
    let a = world.provider(A);
    let ask = |query: IdentifierQuery, value: &str| {
        let a = a.clone();
        let request = IdentifierRequest {
            query,
            search_value: Text::new(value).unwrap(),
        };
        async move { a.accounts().discover(&name(B), request).await.unwrap() }
    };
    let answer = |code, uri: &str| IdentifierResponse {
        code,
        uri: Text::new(uri).unwrap(),
    };
    assert_eq!(
        ask(IdentifierQuery::Handle, "bob").await,
        answer(IdentifierDiscoveryCode::Success, "@bob:b.example")
    );
    assert_eq!(
        ask(IdentifierQuery::Nick, "Carol").await,
        answer(IdentifierDiscoveryCode::Success, "@carol:b.example")
    );
    assert_eq!(
        ask(IdentifierQuery::Handle, "nobody").await,
        answer(IdentifierDiscoveryCode::NotFound, "")
    );
    assert_eq!(
        ask(IdentifierQuery::Nick, "BOB").await,
        answer(IdentifierDiscoveryCode::Ambiguous, "")
    );
    assert_eq!(
        ask(IdentifierQuery::PartialName, "bo").await,
        answer(IdentifierDiscoveryCode::UnsupportedField, "")
    );
    // Alice's own provider answers for itself without the network.
    let local = a
        .accounts()
        .discover(
            &name(A),
            IdentifierRequest {
                query: IdentifierQuery::Nick,
                search_value: Text::new("alice").unwrap(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        local,
        answer(IdentifierDiscoveryCode::Success, alice.user().as_str())
    );
    drop(a);
    world.shutdown().await;
}
