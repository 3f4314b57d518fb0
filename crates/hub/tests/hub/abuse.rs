//! Hostile clients on the client API (issue 17): oversize bodies and profile fields (413),
//! banned users and non-members of a room (403, the same whether the room exists or not),
//! and the rate limits (429 with `Retry-After`).

use bytes::Bytes;
use hyper::StatusCode;
use mimi_client_api::{
    Endpoint, EndpointResponse, ErrorCode, MAX_DISPLAY_NAME, MAX_JSON_BODY, hub_removals, register,
    room_state,
};
use mimi_codec::{Event, EventResponse, ParticipationStateChange, RoomId};
use mimi_e2e::{CommitPlan, MlsClient, RemoveTarget};

use crate::client_api::{Api, error_body, to_hyper};
use crate::world::{A, Client, World, user_event};

/// Register `localpart` through the API: its client (MLS state in the world's directory)
/// and its bearer token.
async fn registered(world: &World, api: &Api, localpart: &str) -> (Client, String) {
    let request = register::Request {
        localpart: localpart.into(),
        device: "phone".into(),
        ..register::Request::default()
    };
    let (status, body) = api
        .send(
            world,
            to_hyper(request.try_into_http_request(None).unwrap()),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let answer = register::Response::try_from_http_response(&hyper::Response::new(body)).unwrap();
    let dir = world.dir.path().join(format!("api-client-{localpart}"));
    let client = Client {
        server: A.to_string(),
        id: answer.client_id.clone(),
        mls: MlsClient::open(&dir, answer.client_id).unwrap(),
        cursor: 0,
        received: Vec::new(),
        seen: Vec::new(),
    };
    (client, answer.token)
}

async fn send<E: Endpoint>(
    world: &World,
    api: &Api,
    request: &E,
    token: &str,
) -> (StatusCode, Bytes) {
    api.send(
        world,
        to_hyper(request.try_into_http_request(Some(token)).unwrap()),
    )
    .await
}

#[tokio::test]
async fn an_oversize_profile_is_413() {
    let world = World::start(&[A]).await;
    let api = Api::start(&world).await;
    // A 23 MiB display name: within the transport's body limit, over the JSON body limit.
    let huge = register::Request {
        localpart: "mallory".into(),
        device: "phone".into(),
        display_name: Some("x".repeat(23 * 1024 * 1024)),
        ..register::Request::default()
    };
    let (status, body) = api
        .send(&world, to_hyper(huge.try_into_http_request(None).unwrap()))
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let error = error_body(&body);
    assert_eq!(error.error, ErrorCode::TooLarge);
    assert!(error.detail.contains(&MAX_JSON_BODY.to_string()));
    // A small body with one field over its own limit.
    for field in ["display_name", "handle", "email", "phone"] {
        let mut request = register::Request {
            localpart: "mallory".into(),
            device: "phone".into(),
            ..register::Request::default()
        };
        let long = Some("y".repeat(MAX_DISPLAY_NAME + 1));
        match field {
            "display_name" => request.display_name = long,
            "handle" => request.handle = long,
            "email" => request.email = long,
            _ => request.phone = long,
        }
        let (status, body) = api
            .send(
                &world,
                to_hyper(request.try_into_http_request(None).unwrap()),
            )
            .await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{field}");
        assert!(error_body(&body).detail.contains(field));
    }
    // Nothing of it was stored.
    let mallory = "@mallory:a.example".parse().unwrap();
    assert!(
        world
            .provider(A)
            .storage()
            .user(&mallory)
            .unwrap()
            .is_none()
    );
    // A profile within the limits is taken.
    let fine = register::Request {
        localpart: "mallory".into(),
        device: "phone".into(),
        display_name: Some("z".repeat(MAX_DISPLAY_NAME)),
        ..register::Request::default()
    };
    let (status, _) = api
        .send(&world, to_hyper(fine.try_into_http_request(None).unwrap()))
        .await;
    assert_eq!(status, StatusCode::OK);
    api.shutdown().await;
    world.shutdown().await;
}

#[tokio::test]
async fn banned_users_and_non_members_are_refused_alike() {
    let world = World::start(&[A]).await;
    let api = Api::start(&world).await;
    let (mut alice, _) = registered(&world, &api, "alice").await;
    let (mut bob, bob_token) = registered(&world, &api, "bob").await;
    let (_, carol_token) = registered(&world, &api, "carol").await;
    bob.publish(&world, 1, false).await;
    let room = alice.create_room(&world).await;
    alice.add(&world, &room, &bob.user()).await;
    let state = room_state::Request { room: room.clone() };
    let (status, _) = send(&world, &api, &state, &bob_token).await;
    assert_eq!(status, StatusCode::OK, "a member reads the state");

    // Alice bans Bob (and removes his clients).
    let ban = user_event(&bob.user(), ParticipationStateChange::Ban);
    let after = alice
        .state_after(&world, &room, std::slice::from_ref(&ban))
        .await;
    let commit = alice
        .mls
        .commit(
            &room,
            CommitPlan {
                user_events: vec![ban],
                removes: vec![RemoveTarget::AllClientsOf(bob.user())],
                new_room_state: Some(after),
                ..CommitPlan::default()
            },
        )
        .unwrap();
    assert_eq!(
        alice.submit(&world, &room, Event::DsCommit(commit)).await,
        (true, EventResponse::Ok)
    );

    // The banned user reads neither the state nor asks for hub removals.
    let (status, body) = send(&world, &api, &state, &bob_token).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "state, banned");
    assert_eq!(error_body(&body).error, ErrorCode::Forbidden);
    let removals = hub_removals::Request { room: room.clone() };
    let (status, _) = send(&world, &api, &removals, &bob_token).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "hub-removals, banned");

    // A non-member gets one answer whether the room exists or not.
    let unknown: RoomId = "!nothing:a.example".parse().unwrap();
    for room in [room.clone(), unknown] {
        let (status, body) = send(
            &world,
            &api,
            &room_state::Request { room: room.clone() },
            &carol_token,
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "state of {room}");
        assert_eq!(error_body(&body).error, ErrorCode::Forbidden);
        let (status, _) = send(
            &world,
            &api,
            &hub_removals::Request { room: room.clone() },
            &carol_token,
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "hub-removals of {room}");
    }
    api.shutdown().await;
    world.shutdown().await;
}
