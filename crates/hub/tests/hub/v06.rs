//! The second version (draft-ietf-mimi-protocol-06) on the federation listener: the
//! directory, `Host`/`From` with mutual TLS, `keyMaterial` (signature, consent, one-time key
//! packages), `requestConsent`/`updateConsent`, `identifierQuery`, and malformed -06 bodies
//! answered with a typed 400 while the server stays up. Real servers over HTTPS on loopback.

use ed25519_dalek::Signer as _;
use mimi_codec::v06::labels::{KEY_MATERIAL_REQUEST_TBS, sign_content};
use mimi_codec::v06::{
    AbuseReport, AbuseType, ClientMaterial, ConsentEntry, ConsentOperation, Credential,
    IdentifierQueryCode, IdentifierRequest, IdentifierResponse, IdentifierUri, KeyMaterialRequest,
    KeyMaterialRequestTbs, KeyMaterialResponse, KeyMaterialUserCode, OptionalUri, Protocol,
    QueryElement, SearchField,
};
use mimi_codec::{BoundedVec, Opaque, Text, Wire};
use mimi_hub::v06::state::{ConsentState, KeyPackageSources};
use mimi_transport::v06::{Endpoint06, Refusal06};

use crate::world::{A, B, C, World, name};

fn uri(s: &str) -> IdentifierUri {
    s.parse().unwrap()
}

const ALICE: &str = "mimi://a.example/u/alice";
const BOB: &str = "mimi://b.example/u/bob";

/// Bob's signed request for Alice's key material (in `room`, if any).
fn key_material_request(key: &ed25519_dalek::SigningKey, room: Option<&str>) -> Vec<u8> {
    key_material_request_for(key, ALICE, room)
}

/// Bob's signed request for `target`'s key material (in `room`, if any).
fn key_material_request_for(
    key: &ed25519_dalek::SigningKey,
    target: &str,
    room: Option<&str>,
) -> Vec<u8> {
    let tbs = KeyMaterialRequestTbs {
        protocol: Protocol::Mls10,
        requesting_user: uri(BOB),
        target_user: uri(target),
        room_id: room.map_or(OptionalUri::NONE, |r| uri(r).into()),
        acceptable_ciphersuites: BoundedVec::new(vec![1]).unwrap(),
        required_capabilities: Default::default(),
        requester_signature_key: Opaque::new(key.verifying_key().to_bytes().to_vec()).unwrap(),
        requester_credential: Credential {
            credential_type: 1,
            content: Opaque::new(BOB.as_bytes().to_vec()).unwrap(),
        },
    };
    let content = sign_content(KEY_MATERIAL_REQUEST_TBS, &tbs.encode().unwrap()).unwrap();
    let signature = key.sign(&content).to_bytes().to_vec();
    KeyMaterialRequest {
        tbs,
        key_material_request_signature: Opaque::new(signature).unwrap(),
    }
    .encode()
    .unwrap()
}

async fn post(world: &World, from: &str, to: &str, path: String, body: Vec<u8>) -> (u16, Vec<u8>) {
    let (status, body) = world
        .client_of(from)
        .post06(&name(to), &name(from), path, body)
        .await
        .unwrap();
    (status, body.to_vec())
}

fn kind(body: &[u8]) -> &str {
    Refusal06::kind_of(body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_directory_lists_what_is_served() {
    let world = World::start(&[A, B]).await;
    let dir = world.client_of(B).directory06(&name(A)).await.unwrap();
    assert_eq!(
        dir.key_material.unwrap().expand(ALICE),
        "https://a.example/mimi/v06/keyMaterial/mimi%3A%2F%2Fa.example%2Fu%2Falice"
    );
    assert!(dir.request_consent.is_some() && dir.identifier_query.is_some());
    // Not served yet, so not offered.
    assert!(dir.update.is_none() && dir.notify.is_none() && dir.report_abuse.is_none());
    // An endpoint not served answers a valid body with 501, not 404.
    let report = AbuseReport {
        reporting_user: OptionalUri::NONE,
        alleged_abuser_uri: uri(BOB),
        reason_code: AbuseType(0),
        note: Text::new("spam").unwrap(),
        messages: BoundedVec::default(),
        abuse_extensions: Default::default(),
    };
    let (status, body) = post(
        &world,
        B,
        A,
        Endpoint06::ReportAbuse.path("mimi://a.example/r/club"),
        report.encode().unwrap(),
    )
    .await;
    assert_eq!((status, kind(&body)), (501, "not_implemented"));
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_material_needs_consent_and_hands_each_key_package_out_once() {
    let world = World::start(&[A, B]).await;
    let mut alice = world.client(A, "alice", None).await;
    let packages = alice.publish(&world, 1, false).await;
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let path = Endpoint06::KeyMaterial.path(ALICE);
    let ask = |room: Option<&'static str>| {
        let body = key_material_request(&key, room);
        let world = &world;
        let path = path.clone();
        async move {
            let (status, body) = post(world, B, A, path, body).await;
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
            KeyMaterialResponse::decode(&body).unwrap()
        }
    };

    // No consent: nothing is handed out (and nothing claimed).
    let answer = ask(None).await;
    assert_eq!(answer.user_status, KeyMaterialUserCode::NoConsent);
    assert!(answer.clients.as_slice().is_empty());

    // Alice grants Bob consent for one room only: another room, or none, is still refused.
    let a = world.provider(A);
    let room = "mimi://a.example/r/club";
    a.consents()
        .decide(&uri(BOB), &uri(ALICE), Some(&uri(room)), true)
        .await
        .unwrap();
    assert_eq!(ask(None).await.user_status, KeyMaterialUserCode::NoConsent);
    let answer = ask(Some(room)).await;
    assert_eq!(answer.user_status, KeyMaterialUserCode::Success);
    let [client] = answer.clients.as_slice() else {
        panic!("one client expected: {answer:?}");
    };
    assert_eq!(
        client.client_uri.as_str(),
        "mimi://a.example/d/alice%23phone"
    );
    let ClientMaterial::Success(kp) = &client.material else {
        panic!("a key package expected: {client:?}");
    };
    // The bare KeyPackage of the one Alice published (its MLSMessage framing removed).
    assert_eq!(kp.as_bytes(), &packages[0][4..]);

    // One-time: the next request finds nothing left for that client.
    let answer = ask(Some(room)).await;
    assert_eq!(
        answer.user_status,
        KeyMaterialUserCode::NoCompatibleMaterial
    );
    assert!(matches!(
        answer.clients.as_slice()[0].material,
        ClientMaterial::KeyMaterialExhausted
    ));

    // Revoked for any room, granted for the room: the room's decision wins.
    a.consents()
        .decide(&uri(BOB), &uri(ALICE), None, false)
        .await
        .unwrap();
    assert_eq!(
        a.consents()
            .granted(&uri(BOB), &uri(ALICE), Some(&uri(room)))
            .await
            .unwrap(),
        ConsentState::Granted
    );

    // A signature that does not verify: 403, nothing claimed.
    let mut forged = key_material_request(&key, Some(room));
    let last = forged.len() - 1;
    forged[last] ^= 1;
    let (status, body) = post(&world, B, A, path.clone(), forged).await;
    assert_eq!((status, kind(&body)), (403, "signature"));

    // Unknown user.
    let body = key_material_request(&key, None);
    let (status, _) = post(
        &world,
        B,
        A,
        Endpoint06::KeyMaterial.path("mimi://a.example/u/nobody"),
        body,
    )
    .await;
    assert_eq!(status, 400, "the path's user is not the body's");
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rooms_hub_relays_key_material_and_remembers_where_each_package_came_from() {
    let world = World::start(&[A, B, C]).await;
    let mut cathy = world.client(C, "cathy", None).await;
    let packages = cathy.publish(&world, 1, false).await;
    let cathy_uri = "mimi://c.example/u/cathy";
    let room = "mimi://a.example/r/clubhouse";
    world
        .provider(C)
        .consents()
        .decide(&uri(BOB), &uri(cathy_uri), Some(&uri(room)), true)
        .await
        .unwrap();
    let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);

    // b asks a (the room's hub) for Cathy's key material; a asks c.
    let body = key_material_request_for(&key, cathy_uri, Some(room));
    let (status, answer) = post(&world, B, A, Endpoint06::KeyMaterial.path(cathy_uri), body).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    let answer = KeyMaterialResponse::decode(&answer).unwrap();
    assert_eq!(answer.user_status, KeyMaterialUserCode::Success);
    let ClientMaterial::Success(kp) = &answer.clients.as_slice()[0].material else {
        panic!("a key package expected: {answer:?}");
    };
    assert_eq!(kp.as_bytes(), &packages[0][4..]);

    // a remembers that this KeyPackageRef is c's; b (which only asked) does not.
    let hash_ref = mimi_ds::validate_key_package(&packages[0], &cathy.id)
        .unwrap()
        .hash_ref;
    let sources = |p: &str| {
        let provider = world.provider(p);
        let hash_ref = hash_ref.clone();
        async move {
            KeyPackageSources::new(provider.context())
                .source(&hash_ref)
                .await
                .unwrap()
        }
    };
    assert_eq!(sources(A).await, Some(name(C)));
    assert_eq!(sources(B).await, None);

    // A provider relays only for rooms it is the hub of.
    let body = key_material_request_for(&key, cathy_uri, Some("mimi://b.example/r/other"));
    let (status, answer) = post(&world, B, A, Endpoint06::KeyMaterial.path(cathy_uri), body).await;
    assert_eq!((status, kind(&answer)), (421, "misdirected"));
    // c's refusal (no consent without the room) comes back as c's answer.
    let body = key_material_request_for(&key, cathy_uri, Some("mimi://a.example/r/else"));
    let (status, answer) = post(&world, B, A, Endpoint06::KeyMaterial.path(cathy_uri), body).await;
    assert_eq!(status, 200);
    assert_eq!(
        KeyMaterialResponse::decode(&answer).unwrap().user_status,
        KeyMaterialUserCode::NoConsent
    );
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consent_round_trip_between_providers_is_recorded_at_both() {
    let world = World::start(&[A, B]).await;
    let _alice = world.client(A, "alice", None).await;
    let mut bob = world.client(B, "bob", None).await;
    bob.publish(&world, 1, false).await;
    let (a, b) = (world.provider(A), world.provider(B));
    let entry = |op| ConsentEntry::decode(&consent(op, ALICE, BOB)).unwrap();

    // Alice (at a) asks Bob (at b): b records the pending request.
    a.send_consent06(&entry(ConsentOperation::Request))
        .await
        .unwrap();
    assert!(
        b.consents()
            .requested(&uri(ALICE), &uri(BOB), None)
            .await
            .unwrap()
    );
    // Bob grants: b records his decision and tells a.
    b.send_consent06(&entry(ConsentOperation::Grant))
        .await
        .unwrap();
    assert!(
        !b.consents()
            .requested(&uri(ALICE), &uri(BOB), None)
            .await
            .unwrap()
    );
    for p in [&a, &b] {
        assert_eq!(
            p.consents()
                .state(&uri(ALICE), &uri(BOB), None)
                .await
                .unwrap(),
            ConsentState::Granted
        );
    }
    // A user of another provider cannot be the one deciding here.
    assert!(
        a.send_consent06(&entry(ConsentOperation::Grant))
            .await
            .is_err()
    );
    // Bob revokes: a hears it too.
    b.send_consent06(&entry(ConsentOperation::Revoke))
        .await
        .unwrap();
    assert_eq!(
        a.consents()
            .state(&uri(ALICE), &uri(BOB), None)
            .await
            .unwrap(),
        ConsentState::Revoked
    );
    world.shutdown().await;
}

fn consent(op: ConsentOperation, requester: &str, target: &str) -> Vec<u8> {
    ConsentEntry {
        operation: op,
        requester_uri: uri(requester),
        target_uri: uri(target),
        room_id: None,
        client_key_packages: BoundedVec::default(),
        consent_extensions: Default::default(),
    }
    .encode()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_requests_and_updates_are_recorded_per_scope() {
    let world = World::start(&[A, B, C]).await;
    let _alice = world.client(A, "alice", None).await;
    let a = world.provider(A);
    let to_a = |e: Endpoint06| e.path("a.example");

    // b asks for Bob's consent from Alice: recorded at a, answered 201.
    let body = consent(ConsentOperation::Request, BOB, ALICE);
    let (status, _) = post(&world, B, A, to_a(Endpoint06::RequestConsent), body.clone()).await;
    assert_eq!(status, 201);
    assert!(
        a.consents()
            .requested(&uri(BOB), &uri(ALICE), None)
            .await
            .unwrap()
    );
    // Cancelled.
    let cancel = consent(ConsentOperation::Cancel, BOB, ALICE);
    let (status, _) = post(&world, B, A, to_a(Endpoint06::RequestConsent), cancel).await;
    assert_eq!(status, 201);
    assert!(
        !a.consents()
            .requested(&uri(BOB), &uri(ALICE), None)
            .await
            .unwrap()
    );

    // c may not speak for Bob (a user of b).
    let (status, body_c) = post(&world, C, A, to_a(Endpoint06::RequestConsent), body).await;
    assert_eq!((status, kind(&body_c)), (403, "not_allowed"));
    // A grant is not sent to requestConsent.
    let grant_wrong = consent(ConsentOperation::Grant, BOB, ALICE);
    let (status, _) = post(&world, B, A, to_a(Endpoint06::RequestConsent), grant_wrong).await;
    assert_eq!(status, 400);

    // b tells a that Bob granted Alice consent: recorded at a (Alice is the requester).
    let grant = consent(ConsentOperation::Grant, ALICE, BOB);
    let (status, _) = post(&world, B, A, to_a(Endpoint06::UpdateConsent), grant).await;
    assert_eq!(status, 201);
    assert_eq!(
        a.consents()
            .state(&uri(ALICE), &uri(BOB), None)
            .await
            .unwrap(),
        ConsentState::Granted
    );
    let revoke = consent(ConsentOperation::Revoke, ALICE, BOB);
    let (status, _) = post(&world, B, A, to_a(Endpoint06::UpdateConsent), revoke).await;
    assert_eq!(status, 201);
    assert_eq!(
        a.consents()
            .state(&uri(ALICE), &uri(BOB), None)
            .await
            .unwrap(),
        ConsentState::Revoked
    );
    // The path's domain must be this provider.
    let grant = consent(ConsentOperation::Grant, ALICE, BOB);
    let (status, _) = post(
        &world,
        B,
        A,
        Endpoint06::UpdateConsent.path("c.example"),
        grant,
    )
    .await;
    assert_eq!(status, 421);
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identifier_query_finds_a_handle() {
    let world = World::start(&[A, B]).await;
    let _alice = world.client(A, "alice", None).await;
    let query = |value: &str| {
        IdentifierRequest {
            query_elements: BoundedVec::new(vec![QueryElement {
                field: SearchField::Handle,
                search_value: Text::new(value).unwrap(),
            }])
            .unwrap(),
            id_request_extensions: Default::default(),
        }
        .encode()
        .unwrap()
    };
    let path = Endpoint06::IdentifierQuery.path("a.example");
    let (status, body) = post(&world, B, A, path.clone(), query("alice")).await;
    assert_eq!(status, 200);
    let answer = IdentifierResponse::decode(&body).unwrap();
    assert_eq!(answer.response_code, IdentifierQueryCode::Success);
    assert_eq!(answer.uri.as_slice(), &[uri(ALICE)]);
    let (_, body) = post(&world, B, A, path, query("nobody")).await;
    assert_eq!(
        IdentifierResponse::decode(&body).unwrap().response_code,
        IdentifierQueryCode::NotFound
    );
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_06_bodies_are_typed_400s_and_the_server_stays_up() {
    let world = World::start(&[A, B, C]).await;
    let room = "mimi://a.example/r/club";
    let cases: Vec<(Endpoint06, &str, Vec<u8>, &str)> = vec![
        (Endpoint06::KeyMaterial, ALICE, vec![], "malformed"),
        (
            Endpoint06::KeyMaterial,
            ALICE,
            vec![2, 0],
            "unsupported_protocol",
        ),
        (Endpoint06::Update, room, vec![0, 1, 0, 1], "malformed"),
        (Endpoint06::Notify, room, vec![], "malformed"),
        (
            Endpoint06::SubmitMessage,
            room,
            vec![1, 0, 1, 0, 5],
            "malformed",
        ),
        (Endpoint06::GroupInfo, room, vec![1, 0], "malformed"),
        (
            Endpoint06::RequestConsent,
            "a.example",
            vec![9],
            "malformed",
        ),
        (
            Endpoint06::UpdateConsent,
            "a.example",
            vec![2, 0],
            "malformed",
        ),
        (
            Endpoint06::IdentifierQuery,
            "a.example",
            vec![0x40],
            "malformed",
        ),
        (Endpoint06::ReportAbuse, room, vec![0, 0], "malformed"),
    ];
    for (endpoint, variable, body, expected) in cases {
        let (status, answer) = post(&world, B, A, endpoint.path(variable), body).await;
        assert_eq!(
            (status, kind(&answer)),
            (400, expected),
            "{endpoint:?}: {}",
            String::from_utf8_lossy(&answer)
        );
    }
    // `From` must name a provider the client certificate authenticates.
    let (status, answer) = world
        .client_of(B)
        .post06(
            &name(A),
            &name(C),
            Endpoint06::IdentifierQuery.path("a.example"),
            vec![],
        )
        .await
        .unwrap();
    assert_eq!((status, kind(&answer)), (403, "from"));
    // Still up: the directory and the first version answer.
    assert!(world.client_of(C).directory06(&name(A)).await.is_ok());
    assert_eq!(
        world.client_of(C).well_known(&name(A)).await.unwrap(),
        name(A)
    );
    world.shutdown().await;
}
