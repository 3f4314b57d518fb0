//! What a provider refuses from other servers, over real mutual TLS: a sender that is not
//! on the TLS peer (HUB-AUTH-1), events between followers and fanout from a server that is
//! not the room's hub (HUB-ROUTE-1), oversize and malformed bodies, and connections without
//! a certificate of the federation's CA.

use mimi_codec::{
    ErrorCode, Event, IdentifierDiscoveryCode, IdentifierQuery, IdentifierRequest, MessageBody,
    MimiMessage, SendMessageRequest, Sender, Text, UserId, Wire,
};
use mimi_hub::rooms::persist::decode_event;
use mimi_transport::body::decode_error_body;
use mimi_transport::{TransportError, tls};

use crate::federation::two_party;
use crate::world::{A, B, C, Pki, World, log_of, name, post_send, raw_request};

/// The hub's limit on request bodies in this test.
const SMALL_BODY: usize = 16 * 1024;

fn not_mls(len: usize) -> MessageBody {
    MessageBody::Event(Event::DsSendMessage(SendMessageRequest {
        application_message: crate::world::private_message(0x5a, len),
    }))
}

fn refusal(result: Result<mimi_transport::SendOutcome, TransportError>) -> (u16, ErrorCode) {
    match result {
        Err(TransportError::Refused {
            status,
            error: Some(e),
        }) => (status, e.code),
        other => panic!("expected a refusal with an error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_refuses_what_its_tls_peer_may_not_send() {
    let world = World::start_with(&[A, B, C], &[(A, SMALL_BODY)]).await;
    let (room, mut alice, mut bob) = two_party(&world).await;
    let a = world.provider(A);
    let hub_log = log_of(&a, &room);
    // A client with b's certificate.
    let as_b = world.mimi_client(world.pki.client_tls(Some(B)));

    // HUB-AUTH-1: b relays an event of a user of c to the hub.
    let cathy: UserId = "@cathy:c.example".parse().unwrap();
    let forged = MimiMessage::new(room.clone(), Sender::User(cathy), not_mls(16));
    assert_eq!(
        refusal(as_b.send(&name(A), &forged).await),
        (400, ErrorCode::SenderMismatch)
    );

    // HUB-ROUTE-1: b sends an event of a's room to the follower c.
    let event = MimiMessage::new(room.clone(), Sender::User(bob.user()), not_mls(16));
    assert_eq!(
        refusal(as_b.send(&name(C), &event).await),
        (400, ErrorCode::NotHub)
    );
    // ... and fully-formed events of a's room, which only a may fan out.
    let stored = a.storage().log_range(&room, 0, 1).unwrap();
    let create = decode_event(&stored[0].entry).unwrap().message(&room);
    assert_eq!(
        refusal(as_b.send(&name(C), &create).await),
        (400, ErrorCode::NotHub)
    );
    assert_eq!(world.provider(C).storage().room(&room).unwrap(), None);

    // Over the hub's body limit: 413, and the hub still serves.
    let big = MimiMessage::new(room.clone(), Sender::User(bob.user()), not_mls(SMALL_BODY));
    assert!(matches!(
        as_b.send(&name(A), &big).await,
        Err(TransportError::TooLarge)
    ));

    // A body that does not decode: 400 with a decodable error.
    let tls_b = world.pki.client_tls(Some(B));
    let (status, body) = raw_request(world.addr(A), tls_b, A, post_send(vec![0, 1, 0xff]))
        .await
        .unwrap();
    assert_eq!(status, 400);
    assert_eq!(decode_error_body(&body).unwrap().code, ErrorCode::Malformed);

    // No client certificate: the connection is up, every MIMI endpoint refused with 403.
    let anonymous = world.pki.client_tls(None);
    let (status, body) = raw_request(world.addr(A), anonymous, A, post_send(vec![0, 1]))
        .await
        .unwrap();
    assert_eq!(status, 403);
    assert_eq!(
        decode_error_body(&body).unwrap().code,
        ErrorCode::SenderMismatch
    );

    // A certificate for b.example from another CA: no TLS session at all.
    let other = Pki::new("another CA");
    let foreign = tls::client_config(Some(other.identity(B)), world.pki.roots()).unwrap();
    let event = MimiMessage::new(room.clone(), Sender::User(bob.user()), not_mls(16));
    assert!(
        raw_request(
            world.addr(A),
            foreign,
            A,
            post_send(event.encode().unwrap())
        )
        .await
        .is_err()
    );

    // Nothing of the above reached the room, and the hub still serves: identifier
    // discovery, and Bob's message through b.
    assert_eq!(log_of(&a, &room), hub_log);
    let found = as_b
        .identifier_discovery(
            &name(A),
            &name(A),
            &IdentifierRequest {
                query: IdentifierQuery::Handle,
                search_value: Text::new("alice").unwrap(),
            },
        )
        .await
        .unwrap();
    assert_eq!(found.code, IdentifierDiscoveryCode::Success);
    bob.say(&world, &room, "still here").await;
    alice.sync(&a).await;
    assert_eq!(alice.texts(), ["still here"]);
    drop(a);
    world.shutdown().await;
}
