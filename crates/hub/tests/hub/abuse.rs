//! Hostile clients on the client API (issue 17): oversize bodies and profile fields (413),
//! banned users and non-members of a room (403, the same whether the room exists or not),
//! and the rate limits (429 with `Retry-After`).

use bytes::Bytes;
use hyper::StatusCode;
use mimi_client_api::{
    Endpoint, EndpointResponse, ErrorCode, MAX_DISPLAY_NAME, MAX_JSON_BODY, claim_key_packages,
    discover, hub_removals, register, room_state,
};
use mimi_codec::mls_ids::DEFAULT_CIPHER_SUITE;
use mimi_codec::{Event, EventResponse, IdentifierQuery, ParticipationStateChange, RoomId};
use mimi_e2e::{CommitPlan, MlsClient, RemoveTarget};
use mimi_hub::limits::{
    DEFAULT_CLAIMS_PER_CLIENT, DEFAULT_DISCOVERIES_PER_USER, DEFAULT_FAILED_AUTH,
    DEFAULT_FAILED_AUTH_PER_SOURCE, DEFAULT_REGISTRATIONS, DEFAULT_REGISTRATIONS_PER_SOURCE,
};

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

/// A `429 rate_limited` answer with a `Retry-After` of at least one second.
fn assert_rate_limited(status: StatusCode, body: &Bytes, what: &str) {
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{what}");
    assert_eq!(error_body(body).error, ErrorCode::RateLimited, "{what}");
}

#[tokio::test]
async fn key_packages_cannot_be_drained() {
    let world = World::start(&[A]).await;
    let api = Api::start(&world).await;
    let (mut alice, alice_token) = registered(&world, &api, "alice").await;
    let (mut bob, _) = registered(&world, &api, "bob").await;
    let (_, mallory_token) = registered(&world, &api, "mallory").await;
    let burst = DEFAULT_CLAIMS_PER_CLIENT.burst as usize;
    bob.publish(&world, burst + 5, true).await;
    let room = alice.create_room(&world).await;
    let claim = |room: &RoomId| claim_key_packages::Request {
        room_id: room.clone(),
        user_id: bob.user(),
        clients: vec![],
    };

    // A made-up room, and a room the claimer is not in: refused alike, nothing handed out.
    let made_up: RoomId = "!made-up:a.example".parse().unwrap();
    for room in [&made_up, &room] {
        let (status, _) = send(&world, &api, &claim(room), &mallory_token).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "claim for {room}");
    }
    // The room's member claims up to the limit, then is told to wait.
    for n in 0..burst {
        let (status, _) = send(&world, &api, &claim(&room), &alice_token).await;
        assert_eq!(status, StatusCode::OK, "claim {n}");
    }
    let (status, body) = send(&world, &api, &claim(&room), &alice_token).await;
    assert_rate_limited(status, &body, "the claim past the burst");
    // Bob keeps the one-time packages nobody claimed.
    let left = world
        .provider(A)
        .storage()
        .key_package_count(&bob.id, DEFAULT_CIPHER_SUITE)
        .unwrap();
    assert_eq!(left.one_time, 5);
    api.shutdown().await;
    world.shutdown().await;
}

#[tokio::test]
async fn registration_discovery_and_failed_tokens_are_rate_limited() {
    let world = World::start(&[A]).await;
    let api = Api::start(&world).await;
    // Registrations: an address's burst, then 429 for it (the provider's limit is not
    // reached yet: another address still registers).
    let per_source = DEFAULT_REGISTRATIONS_PER_SOURCE.burst as usize;
    let mut token = String::new();
    for n in 0..per_source {
        let (_, t) = registered(&world, &api, &format!("user{n}")).await;
        token = t;
    }
    let late = |localpart: &str| {
        to_hyper(
            register::Request {
                localpart: localpart.into(),
                device: "phone".into(),
                ..register::Request::default()
            }
            .try_into_http_request(None)
            .unwrap(),
        )
    };
    let (status, body) = api.send(&world, late("late")).await;
    assert_rate_limited(status, &body, "registration past the address's burst");
    // Another address registers until the provider's burst is used up; then a third is
    // refused too.
    let provider_burst = DEFAULT_REGISTRATIONS.burst as usize;
    for n in per_source..provider_burst {
        let (status, _) = api
            .send_from(&world, "127.0.0.2", late(&format!("user{n}")))
            .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "registration {n} from another address"
        );
    }
    let (status, body) = api.send_from(&world, "127.0.0.3", late("later")).await;
    assert_rate_limited(status, &body, "registration past the provider's burst");

    // Discovery, per user.
    let query = discover::Request {
        domain: "a.example".parse().unwrap(),
        field: IdentifierQuery::Handle,
        value: "user0".into(),
    };
    for n in 0..DEFAULT_DISCOVERIES_PER_USER.burst {
        let (status, _) = send(&world, &api, &query, &token).await;
        assert_eq!(status, StatusCode::OK, "discovery {n}");
    }
    let (status, body) = send(&world, &api, &query, &token).await;
    assert_rate_limited(status, &body, "discovery past the burst");

    // Failed token checks, per claimed client: 401, then 429; a right token of another
    // client still works.
    let wrong = "@user0:a.example/phone.0000";
    for n in 0..DEFAULT_FAILED_AUTH.burst {
        let (status, _) = send(
            &world,
            &api,
            &room_state::Request {
                room: "!r:a.example".parse().unwrap(),
            },
            wrong,
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "failed check {n}");
    }
    let (status, body) = send(
        &world,
        &api,
        &room_state::Request {
            room: "!r:a.example".parse().unwrap(),
        },
        wrong,
    )
    .await;
    assert_rate_limited(status, &body, "failed checks past the burst");
    let (_, user1) = (0, token);
    let (status, _) = send(
        &world,
        &api,
        &room_state::Request {
            room: "!r:a.example".parse().unwrap(),
        },
        &user1,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a valid token is still checked"
    );
    api.shutdown().await;
    world.shutdown().await;
}

/// `ds.fetch_key_packages` is limited per peer server (503, retry later: the claimer's
/// provider answers its client 502 `remote`), on tokio's clock: paused time refills it.
#[tokio::test(start_paused = true)]
async fn key_package_fetches_are_limited_per_peer_server() {
    use mimi_hub::context::Settings;
    use mimi_hub::error::ErrorClass;
    use mimi_hub::limits::{Rate, RateLimits};

    use crate::sim::Sim;
    use crate::world::{B, Providers};

    let settings = Settings {
        rate_limits: RateLimits {
            claims_per_peer: Rate {
                burst: 2,
                refill_ms: 10_000,
            },
            ..RateLimits::default()
        },
        ..Settings::default()
    };
    let sim = Sim::start(&[A, B], settings, false);
    let mut alice = sim.client(A, "alice").await;
    let mut bob = sim.client(B, "bob").await;
    bob.publish(&sim, 4, true).await;
    let room = alice.create_room(&sim).await;
    let a = sim.provider(A);
    let bob_user = bob.user();
    let claim = || {
        a.accounts()
            .claim_key_packages(&alice.id, &room, &bob_user, vec![])
    };
    for n in 0..2 {
        assert_eq!(claim().await.unwrap().len(), 1, "claim {n}");
    }
    let refused = claim().await.unwrap_err();
    assert_eq!(refused.class(), ErrorClass::Remote, "{refused}");
    assert!(refused.to_string().contains("503"), "{refused}");
    tokio::time::advance(std::time::Duration::from_secs(10)).await;
    assert_eq!(claim().await.unwrap().len(), 1, "refilled after 10 s");
}

/// Failed token checks are limited per source address too (issue 17): tokens naming a
/// different client each time do not escape it; past the burst the address is answered
/// 429 even with a valid token, while another address goes on.
#[tokio::test]
async fn failed_token_checks_are_limited_per_address() {
    let world = World::start(&[A]).await;
    let api = Api::start(&world).await;
    let (_, token) = registered(&world, &api, "alice").await;
    let state = |token: &str| {
        to_hyper(
            room_state::Request {
                room: "!r:a.example".parse().unwrap(),
            }
            .try_into_http_request(Some(token))
            .unwrap(),
        )
    };
    let mallory = "127.0.0.5";
    for n in 0..DEFAULT_FAILED_AUTH_PER_SOURCE.burst {
        let wrong = format!("@user{n}:a.example/phone.0000");
        let (status, _) = api.send_from(&world, mallory, state(&wrong)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "failed check {n}");
    }
    let (status, body) = api
        .send_from(&world, mallory, state("@someone:a.example/phone.0000"))
        .await;
    assert_rate_limited(
        status,
        &body,
        "failed checks from one address past the burst",
    );
    let (status, body) = api.send_from(&world, mallory, state(&token)).await;
    assert_rate_limited(status, &body, "a valid token from the locked-out address");
    // Another address, with the same valid token: checked as usual (403, not a member).
    let (status, _) = api.send_from(&world, "127.0.0.6", state(&token)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    api.shutdown().await;
    world.shutdown().await;
}
