//! The second version (draft-ietf-mimi-protocol-06) on the federation listener: the
//! directory, `Host`/`From` with mutual TLS, `keyMaterial` (signature, consent, one-time key
//! packages), `requestConsent`/`updateConsent`, `identifierQuery`, and malformed -06 bodies
//! answered with a typed 400 while the server stays up. Real servers over HTTPS on loopback.

use bytes::Bytes;
use ed25519_dalek::Signer as _;
use mimi_client_api::report_abuse::ReportedMessage;
use mimi_client_api::{Endpoint, EndpointResponse, ErrorCode, register, report_abuse};
use mimi_codec::v06::labels::{KEY_MATERIAL_REQUEST_TBS, sign_content};
use mimi_codec::v06::{
    AbuseReport, AbuseType, AbusiveMessage, ClientMaterial, ConsentEntry, ConsentOperation,
    Credential, IdentifierQueryCode, IdentifierRequest, IdentifierResponse, IdentifierUri,
    KeyMaterialRequest, KeyMaterialRequestTbs, KeyMaterialResponse, KeyMaterialUserCode,
    OptionalUri, Protocol, QueryElement, SearchField, ServerFrankingContext,
};
use mimi_codec::{BoundedVec, Opaque, Text, Wire};
use mimi_hub::v06::abuse::KeptReport;
use mimi_hub::v06::state::{ConsentState, KeyPackageSources};
use mimi_transport::v06::{Endpoint06, Refusal06};

use crate::client_api::{Api, error_body, to_hyper};
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

/// `from` posts `body` to `to`'s -06 `path`, answered 200; the answer decoded.
async fn post_ok<R: Wire>(world: &World, from: &str, to: &str, path: String, body: Vec<u8>) -> R {
    let (status, answer) = post(world, from, to, path, body).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    R::decode(&answer).unwrap()
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
    // The rooms' endpoints are offered, and reportAbuse.
    assert!(dir.update.is_some() && dir.notify.is_some() && dir.submit_message.is_some());
    assert!(dir.group_info.is_some() && dir.report_abuse.is_some());
    // A report of no message (the draft makes messages optional) is accepted, 201 without
    // a body.
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
    assert_eq!((status, body.len()), (201, 0));
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
        async move { post_ok::<KeyMaterialResponse>(world, B, A, path, body).await }
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
    let answer: KeyMaterialResponse =
        post_ok(&world, B, A, Endpoint06::KeyMaterial.path(cathy_uri), body).await;
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
    let answer: KeyMaterialResponse =
        post_ok(&world, B, A, Endpoint06::KeyMaterial.path(cathy_uri), body).await;
    assert_eq!(answer.user_status, KeyMaterialUserCode::NoConsent);
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
    let answer: IdentifierResponse = post_ok(&world, B, A, path.clone(), query("alice")).await;
    assert_eq!(answer.response_code, IdentifierQueryCode::Success);
    assert_eq!(answer.uri.as_slice(), &[uri(ALICE)]);
    let answer: IdentifierResponse = post_ok(&world, B, A, path, query("nobody")).await;
    assert_eq!(answer.response_code, IdentifierQueryCode::NotFound);
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

// ---------------------------------------------------------------- franking and reportAbuse

const ROOM: &str = "mimi://a.example/r/club";
const MALLORY: &str = "mimi://b.example/u/mallory";
const T: u64 = 1_767_225_600_000;
const SUITE: u16 = 0x0001;

/// A MIMI content message from `sender` in `room`, and its salt.
fn content(sender: &str, room: &str, text: &str) -> (Vec<u8>, [u8; 16]) {
    let salt = mimi_mls_binding::franking::fresh_salt().unwrap();
    let message = mimi_content::ContentBuilder::new(mimi_content::Salt(salt))
        .sender(sender)
        .room(room)
        .markdown(text)
        .build()
        .unwrap();
    (message.encode().unwrap(), salt)
}

/// What the hub's submitMessage path does for an accepted message: the client's
/// franking_tag, franked by the hub's `frank` in the context of sender, room and time.
fn franked(world: &World, sender: &str, room: &str, text: &str, at: u64) -> ReportedMessage {
    let (content, salt) = content(sender, room, text);
    let tag = mimi_mls_binding::franking::franking_tag(&salt, &content).unwrap();
    let context = ServerFrankingContext {
        sender_uri: uri(sender),
        room_uri: uri(room),
        accepted_timestamp: at,
    };
    let frank = world
        .provider(A)
        .franking()
        .frank(SUITE, &tag, &context)
        .unwrap();
    ReportedMessage {
        content,
        accepted_timestamp: at,
        frank,
    }
}

fn report_request(world: &World, messages: Vec<ReportedMessage>) -> report_abuse::Request {
    report_abuse::Request {
        room: uri(ROOM),
        alleged_abuser: uri(MALLORY),
        reason: 0,
        note: "spam".into(),
        anonymous: false,
        messages,
        franking_agent: world.provider(A).franking().agent(&name(A)).unwrap(),
    }
}

/// Register `localpart` at the API's provider; its bearer token.
async fn api_user(world: &World, api: &Api, localpart: &str) -> String {
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
    assert_eq!(status, 200);
    register::Response::try_from_http_response(&hyper::Response::new(body))
        .unwrap()
        .token
}

async fn report(
    world: &World,
    api: &Api,
    token: &str,
    request: &report_abuse::Request,
) -> (u16, Bytes) {
    let (status, body) = api
        .send(
            world,
            to_hyper(request.try_into_http_request(Some(token)).unwrap()),
        )
        .await;
    (status.as_u16(), body)
}

async fn kept(world: &World) -> Vec<KeptReport> {
    world
        .provider(A)
        .abuse_reports()
        .list(None, 100)
        .await
        .unwrap()
}

/// A message franked by the hub's `frank`, reported by Bob through his provider's client API:
/// his provider checks the frank against the room's franking_agent and sends the
/// AbuseReport to the hub, which recomputes its server_frank, checks its signature and keeps
/// the report, durably; the franking keys outlive a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_franked_message_is_reported_through_the_reporters_provider_and_kept() {
    let mut world = World::start(&[A, B]).await;
    let api = Api::start_for(&world, B).await;
    let token = api_user(&world, &api, "bob").await;
    let message = franked(&world, MALLORY, ROOM, "buy now", T);
    let request = report_request(&world, vec![message.clone()]);
    let (status, body) = report(&world, &api, &token, &request).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let answer =
        report_abuse::Response::try_from_http_response(&hyper::Response::new(body)).unwrap();
    assert_eq!(answer.messages, 1);

    let reports = kept(&world).await;
    assert_eq!(reports.len(), 1);
    let r = &reports[0];
    assert_eq!((r.from.as_str(), r.room.as_str()), (B, ROOM));
    assert_eq!(
        r.report.reporting_user.get().map(|u| u.as_str().to_owned()),
        Some("mimi://b.example/u/bob".to_owned())
    );
    assert_eq!(r.report.alleged_abuser_uri, uri(MALLORY));
    assert_eq!(r.report.note.as_str(), "spam");
    let m = &r.report.messages.as_slice()[0];
    assert_eq!(m.message_content.as_slice(), message.content.as_slice());
    assert_eq!(
        (m.frank.clone(), m.accepted_timestamp),
        (message.frank.clone(), T)
    );

    // The same report again is recognised: kept once.
    let (status, _) = report(&world, &api, &token, &request).await;
    assert_eq!(status, 200);
    assert_eq!(kept(&world).await.len(), 1);

    // An anonymous report leaves reportingUser out.
    let mut anonymous =
        report_request(&world, vec![franked(&world, MALLORY, ROOM, "again", T + 1)]);
    anonymous.anonymous = true;
    let (status, _) = report(&world, &api, &token, &anonymous).await;
    assert_eq!(status, 200);
    let reports = kept(&world).await;
    assert_eq!(reports.len(), 2);
    assert!(
        reports
            .iter()
            .any(|r| r.report.reporting_user.get().is_none())
    );

    // After a restart the hub still has the reports, and a frank made before it verifies.
    world.stop(A).await;
    world.restart(A).await;
    assert_eq!(kept(&world).await.len(), 2);
    let mut later = request.clone();
    later.note = "seen again after the restart".into();
    let (status, body) = report(&world, &api, &token, &later).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(kept(&world).await.len(), 3);

    // The operator lists them on the admin listener, oldest first.
    let token = "an-admin-token-of-some-length";
    let admin = crate::ops::admin_listener(world.provider(A), Some(token)).await;
    let (status, listed) = mimi_hub::admin::request(
        admin.addr,
        Some(token),
        hyper::Method::GET,
        "/admin/abuse-reports",
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{listed}");
    let reports = listed["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 3);
    // The first two may share a millisecond (then their order is their digests'); the one
    // after the restart is last.
    assert_eq!(reports[2]["note"], "seen again after the restart");
    let first = reports[..2]
        .iter()
        .find(|r| !r["reporting_user"].is_null())
        .unwrap();
    assert_eq!(first["from"], B);
    assert_eq!(first["room"], ROOM);
    assert_eq!(first["alleged_abuser"], MALLORY);
    assert_eq!(first["reporting_user"], "mimi://b.example/u/bob");
    assert_eq!(first["note"], "spam");
    assert_eq!(
        first["messages"][0]["content"],
        mimi_client_api::b64_encode(&message.content)
    );
    assert!(listed["next"].is_null());
    // The next page after the second report has the third only.
    let after = reports[1]["id"].as_str().unwrap();
    let (status, page) = mimi_hub::admin::request(
        admin.addr,
        Some(token),
        hyper::Method::GET,
        &format!("/admin/abuse-reports?after={after}"),
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    assert_eq!(page["reports"].as_array().unwrap().len(), 1);
    assert_eq!(page["reports"][0]["id"], reports[2]["id"]);
    api.shutdown().await;
    world.shutdown().await;
}

/// Tampered franks are refused: by the reporting provider (the integrity signature against
/// the room's franking_agent) with 403 `forbidden`, and by the hub itself (its server_frank,
/// its signature) with 403 `frank`; reports that are not about the room or the alleged
/// abuser, or from the wrong provider, get their own typed 4xx. Nothing is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_franks_and_misfit_reports_are_refused() {
    let world = World::start(&[A, B, C]).await;
    let api = Api::start_for(&world, B).await;
    let token = api_user(&world, &api, "bob").await;
    let good = franked(&world, MALLORY, ROOM, "buy now", T);

    // At the reporting provider.
    let mut flipped = good.clone();
    flipped.frank.server_frank[3] ^= 1;
    let mut later = good.clone();
    later.accepted_timestamp += 1;
    let mut other_content = good.clone();
    other_content.content = content(MALLORY, ROOM, "something else").0;
    for (what, message, code) in [
        ("server_frank", flipped.clone(), ErrorCode::Forbidden),
        ("accepted_timestamp", later.clone(), ErrorCode::Forbidden),
    ] {
        let (status, body) =
            report(&world, &api, &token, &report_request(&world, vec![message])).await;
        assert_eq!(
            (status, error_body(&body).error),
            (code.status().as_u16(), code),
            "{what}"
        );
    }
    // A franking_agent that does not name the room's hub.
    let mut elsewhere = report_request(&world, vec![good.clone()]);
    elsewhere.franking_agent = world.provider(A).franking().agent(&name(B)).unwrap();
    let (status, body) = report(&world, &api, &token, &elsewhere).await;
    assert_eq!(
        (status, error_body(&body).error),
        (403, ErrorCode::Forbidden)
    );
    // Content changed: the signature (over the context) still holds, so the reporting
    // provider passes it on; the hub's server_frank (over the content's franking_tag) does
    // not, and the refusal comes back as 403.
    let (status, body) = report(
        &world,
        &api,
        &token,
        &report_request(&world, vec![other_content.clone()]),
    )
    .await;
    assert_eq!(
        (status, error_body(&body).error),
        (403, ErrorCode::Forbidden)
    );
    assert!(
        error_body(&body).detail.contains("server_frank"),
        "{:?}",
        error_body(&body)
    );

    // At the hub, sent directly by provider B.
    let direct = |messages: Vec<ReportedMessage>, reporter: Option<&str>| AbuseReport {
        reporting_user: reporter.map_or(OptionalUri::NONE, |r| uri(r).into()),
        alleged_abuser_uri: uri(MALLORY),
        reason_code: AbuseType(0),
        note: Text::new("").unwrap(),
        messages: BoundedVec::new(
            messages
                .into_iter()
                .map(|m| AbusiveMessage {
                    message_content: Opaque::new(m.content).unwrap(),
                    frank: m.frank,
                    accepted_timestamp: m.accepted_timestamp,
                })
                .collect(),
        )
        .unwrap(),
        abuse_extensions: Default::default(),
    };
    let mut bad_signature = good.clone();
    let mut sig = bad_signature
        .frank
        .franking_integrity_signature
        .as_slice()
        .to_vec();
    sig[0] ^= 1;
    bad_signature.frank.franking_integrity_signature = Opaque::new(sig).unwrap();
    let mut other_suite = good.clone();
    other_suite.frank.franking_signature_ciphersuite = 0x0003;
    let mut not_mimi = good.clone();
    not_mimi.content = b"not CBOR".to_vec();
    let cases: Vec<(&str, &str, AbuseReport, u16, &str)> = vec![
        (
            "server_frank",
            ROOM,
            direct(vec![flipped], None),
            403,
            "frank",
        ),
        ("timestamp", ROOM, direct(vec![later], None), 403, "frank"),
        (
            "content",
            ROOM,
            direct(vec![other_content], None),
            403,
            "frank",
        ),
        (
            "signature",
            ROOM,
            direct(vec![bad_signature], None),
            403,
            "frank",
        ),
        (
            "cipher suite",
            ROOM,
            direct(vec![other_suite], None),
            403,
            "frank",
        ),
        (
            "another room's message",
            ROOM,
            direct(
                vec![franked(&world, MALLORY, "mimi://a.example/r/other", "x", T)],
                None,
            ),
            400,
            "malformed",
        ),
        (
            "someone else's message",
            ROOM,
            direct(vec![franked(&world, BOB, ROOM, "x", T)], None),
            400,
            "malformed",
        ),
        (
            "not MIMI content",
            ROOM,
            direct(vec![not_mimi], None),
            400,
            "malformed",
        ),
        (
            "a reporter of another provider",
            ROOM,
            direct(vec![good.clone()], Some("mimi://c.example/u/cathy")),
            403,
            "not_allowed",
        ),
        (
            "a room of another hub",
            "mimi://b.example/r/club",
            direct(vec![], None),
            421,
            "misdirected",
        ),
        ("not a room", ALICE, direct(vec![], None), 400, "malformed"),
    ];
    for (what, room, body, status, expected) in cases {
        let (got, answer) = post(
            &world,
            B,
            A,
            Endpoint06::ReportAbuse.path(room),
            body.encode().unwrap(),
        )
        .await;
        assert_eq!(
            (got, kind(&answer)),
            (status, expected),
            "{what}: {}",
            String::from_utf8_lossy(&answer)
        );
    }
    assert!(kept(&world).await.is_empty());
    // The untampered message, sent directly, is kept.
    let (got, _) = post(
        &world,
        B,
        A,
        Endpoint06::ReportAbuse.path(ROOM),
        direct(vec![good], Some("mimi://b.example/u/bob"))
            .encode()
            .unwrap(),
    )
    .await;
    assert_eq!(got, 201);
    assert_eq!(kept(&world).await.len(), 1);
    api.shutdown().await;
    world.shutdown().await;
}

/// The whole chain over a real MLS group: Bob's client franks his message
/// (`encrypt_franked`: the franking_tag in the frank_aad of the PrivateMessage's AAD), the
/// hub franks it as its submitMessage path will (`frank_message`), the message reaches Alice,
/// who verifies the frank as a receiver, then reports it through her provider (the hub
/// itself here), which keeps it. A message without frank_aad is not franked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_private_message_is_franked_verified_by_its_receiver_and_reported() {
    use mimi_codec::v06::MlsMessage;
    use mimi_codec::{Event, EventResponse, MlsBytes, SendMessageRequest};
    use mimi_mls_binding::franking::{self, FrankedMessage};

    let world = World::start(&[A, B]).await;
    let (room, mut alice, mut bob) = crate::federation::two_party(&world).await;
    let bob_uri = "mimi://b.example/u/bob";
    let (content, salt) = content(bob_uri, ROOM, "a franked hello");
    let (ciphertext, tag) = bob.mls.encrypt_franked(&room, &content, &salt).unwrap();
    let message = MlsMessage::from_bytes(&ciphertext).unwrap();
    let hub = world.provider(A);
    let frank = hub
        .franking()
        .frank_message(SUITE, &message, &uri(bob_uri), &uri(ROOM), T)
        .unwrap()
        .expect("the message carries a frank_aad");
    let event = Event::DsSendMessage(SendMessageRequest {
        application_message: MlsBytes::new(ciphertext.clone()).unwrap(),
    });
    assert_eq!(
        bob.submit(&world, &room, event).await,
        (true, EventResponse::Ok)
    );

    alice.sync(&hub).await;
    assert_eq!(alice.received.len(), 1);
    let received = alice.received[0].1.clone();
    assert_eq!(received, content);
    // Alice's checks: the tag of the (authenticated) AAD, the content's salt, sender and
    // room, the hub's signature with the room's franking_agent.
    let decoded = mimi_content::MimiContent::decode(&received).unwrap();
    let agent = hub.franking().agent(&name(A)).unwrap();
    let aad_tag = franking::franking_tag_of_message(&ciphertext)
        .unwrap()
        .unwrap();
    assert_eq!(aad_tag, tag);
    let checked = FrankedMessage {
        application_data: &received,
        salt: &decoded.salt.0,
        asserted_sender: decoded.extensions.sender_uri.as_deref().unwrap(),
        asserted_room: decoded.extensions.room_uri.as_deref().unwrap(),
        accepted_timestamp: T,
        frank: &frank,
    };
    let context =
        franking::verify_received(&checked, Some(&aad_tag), &agent, SUITE, &uri(ROOM)).unwrap();
    assert_eq!(context.sender_uri, uri(bob_uri));

    // Reported through Alice's provider, which is the hub: kept.
    let request = report_abuse::Request {
        alleged_abuser: uri(bob_uri),
        ..report_request(
            &world,
            vec![ReportedMessage {
                content: received,
                accepted_timestamp: T,
                frank,
            }],
        )
    };
    let answer = hub.report_abuse(&alice.user(), request).await.unwrap();
    assert_eq!(answer.messages, 1);
    let reports = kept(&world).await;
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].from, A);
    assert_eq!(
        reports[0]
            .report
            .reporting_user
            .get()
            .map(|u| u.as_str().to_owned()),
        Some("mimi://a.example/u/alice".to_owned())
    );

    // Without frank_aad the hub does not frank.
    let plain = MlsMessage::from_bytes(&bob.mls.encrypt(&room, b"plain").unwrap()).unwrap();
    assert_eq!(
        hub.franking()
            .frank_message(SUITE, &plain, &uri(bob_uri), &uri(ROOM), T)
            .unwrap(),
        None
    );
    world.shutdown().await;
}

// ---------------------------------------------------------------- -06 rooms

mod rooms {
    use mimi_codec::v06::room::{ParticipantListUpdate, UserRolePair};
    use mimi_codec::v06::{
        FanoutExtra, GroupInfo, GroupInfoOption, MlsMessage, NotifyBody, RatchetTreeOption,
        SubmitMessageRequest, SubmitMessageResponse, SubmitOutcome, UpdateOutcome, UpdateRequest,
        UpdateResponse, Welcome,
    };
    use mimi_e2e::binding06::{new_room_components, roles};
    use mimi_e2e::{Commit06, Plan06, Processed06};

    use super::*;

    const ROOM: &str = "mimi://a.example/r/club";

    fn add(user: &str, role: u32) -> ParticipantListUpdate {
        ParticipantListUpdate {
            added_participants: BoundedVec::new(vec![UserRolePair {
                user: uri(user),
                role_index: role,
            }])
            .unwrap(),
            ..Default::default()
        }
    }

    fn update_body(commit: &Commit06) -> Vec<u8> {
        UpdateRequest::Commit {
            commit: MlsMessage::from_bytes(&commit.commit).unwrap(),
            welcome: commit
                .welcome
                .as_ref()
                .map(|w| Welcome::from_bytes(w).unwrap()),
            group_info_option: GroupInfoOption::Full(
                GroupInfo::from_bytes(&commit.group_info).unwrap(),
            ),
            ratchet_tree_option: RatchetTreeOption::DistributionService,
        }
        .encode()
        .unwrap()
    }

    /// A client's request relayed by its provider (`POST /v1/v06/relay`'s handler).
    async fn relay(
        world: &World,
        client: &crate::world::Client,
        endpoint: &str,
        variable: &str,
        body: Vec<u8>,
    ) -> (u16, Vec<u8>) {
        world
            .provider(&client.server)
            .relay06(&client.id, endpoint, variable, body)
            .await
            .unwrap()
    }

    /// A client's request relayed by its provider, answered 200, the answer decoded.
    async fn relay_ok<R: Wire>(
        world: &World,
        client: &crate::world::Client,
        endpoint: &str,
        variable: &str,
        body: Vec<u8>,
    ) -> R {
        let (status, answer) = relay(world, client, endpoint, variable, body).await;
        assert_eq!(
            status,
            200,
            "{endpoint}: {}",
            String::from_utf8_lossy(&answer)
        );
        R::decode(&answer).unwrap()
    }

    /// The `submitMessage` body of `sender`'s application message `message`.
    fn submit_body(sender: &str, message: &[u8]) -> Vec<u8> {
        SubmitMessageRequest {
            protocol: Protocol::Mls10,
            app_message: MlsMessage::from_bytes(message).unwrap(),
            sending_uri: uri(sender),
        }
        .encode()
        .unwrap()
    }

    /// `client` (the user `sender`) submits `message` to the room through its provider.
    async fn submit(
        world: &World,
        client: &crate::world::Client,
        sender: &str,
        message: &[u8],
    ) -> SubmitMessageResponse {
        let body = submit_body(sender, message);
        relay_ok(world, client, "submitMessage", ROOM, body).await
    }

    /// `client`'s commit relayed by its provider to the room's hub.
    async fn relay_update(
        world: &World,
        client: &crate::world::Client,
        commit: &Commit06,
    ) -> UpdateResponse {
        relay_ok(world, client, "update", ROOM, update_body(commit)).await
    }

    /// `from`'s provider sends a commit to the hub a.example itself.
    async fn update(world: &World, from: &str, commit: &Commit06) -> UpdateResponse {
        post_ok(
            world,
            from,
            A,
            Endpoint06::Update.path(ROOM),
            update_body(commit),
        )
        .await
    }

    /// Alice (at a) creates the room through the client API; Bob (at b) gave her consent;
    /// she asks a for Bob's key material (a relays to b and remembers the package came
    /// from b) and adds him with `role`. Returns the world, Alice, Bob, and the commit.
    pub(super) async fn room_with_bob(
        role: u32,
    ) -> (World, crate::world::Client, crate::world::Client) {
        let world = World::start(&[A, B, C]).await;
        let mut alice = world.client(A, "alice", None).await;
        let mut bob = world.client(B, "bob", None).await;
        bob.publish(&world, 1, false).await;
        let a = world.provider(A);
        let room = uri(ROOM);
        let components = new_room_components(&room, "Club", &uri(ALICE)).unwrap();
        let hub = a.rooms().identity().external_sender().clone();
        let created = alice.mls.create_room06(&room, &components, hub).unwrap();
        let epoch = a
            .create_room06(&alice.id, &room, &created.group_info, &created.ratchet_tree)
            .await
            .unwrap();
        assert_eq!(epoch, 0);

        world
            .provider(B)
            .consents()
            .decide(&uri(ALICE), &uri(BOB), Some(&room), true)
            .await
            .unwrap();
        let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
        let body = alice_asks(&key, BOB, ROOM);
        let answer: KeyMaterialResponse = relay_ok(&world, &alice, "keyMaterial", BOB, body).await;
        let ClientMaterial::Success(kp) = &answer.clients.as_slice()[0].material else {
            panic!("a key package expected: {answer:?}");
        };
        let commit = alice
            .mls
            .commit06(
                &room,
                Plan06 {
                    adds: vec![kp.as_bytes().to_vec()],
                    participants: Some(add(BOB, role)),
                    ..Default::default()
                },
            )
            .unwrap();
        let answer = relay_update(&world, &alice, &commit).await;
        assert!(
            matches!(answer.outcome, UpdateOutcome::Success { .. }),
            "{answer:?}"
        );
        alice.mls.merge_pending06(&room).unwrap();

        // b got the commit and the Welcome (the package came from b) in one notify.
        let received = world.provider(B).messages06(&room).await.unwrap();
        let welcome = received
            .iter()
            .find_map(|m| match &m.extra {
                FanoutExtra::Welcome {
                    ratchet_tree_option: RatchetTreeOption::Full(tree),
                } => Some((m.message.as_bytes().to_vec(), tree.as_slice().to_vec())),
                _ => None,
            })
            .expect("a Welcome for b");
        assert_eq!(
            bob.mls
                .join_from_welcome06(&welcome.0, Some(&welcome.1))
                .unwrap(),
            room
        );
        assert_eq!(bob.mls.epoch06(&room).unwrap(), 1);
        (world, alice, bob)
    }

    /// Alice's signed request (at a) for `target`'s key material in `room`.
    fn alice_asks(key: &ed25519_dalek::SigningKey, target: &str, room: &str) -> Vec<u8> {
        let tbs = KeyMaterialRequestTbs {
            protocol: Protocol::Mls10,
            requesting_user: uri(ALICE),
            target_user: uri(target),
            room_id: uri(room).into(),
            acceptable_ciphersuites: BoundedVec::new(vec![1]).unwrap(),
            required_capabilities: Default::default(),
            requester_signature_key: Opaque::new(key.verifying_key().to_bytes().to_vec()).unwrap(),
            requester_credential: Credential {
                credential_type: 1,
                content: Opaque::new(ALICE.as_bytes().to_vec()).unwrap(),
            },
        };
        let content = sign_content(KEY_MATERIAL_REQUEST_TBS, &tbs.encode().unwrap()).unwrap();
        KeyMaterialRequest {
            key_material_request_signature: Opaque::new(key.sign(&content).to_bytes().to_vec())
                .unwrap(),
            tbs,
        }
        .encode()
        .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_user_of_b_joins_by_notify_and_sends_with_submit_message() {
        let (world, mut alice, mut bob) = room_with_bob(roles::MEMBER).await;
        let room = uri(ROOM);
        assert_eq!(
            bob.mls.participants06(&room).unwrap(),
            alice.mls.participants06(&room).unwrap()
        );

        // Bob's provider submits his message; the hub fans it out and Alice reads it.
        let message = bob.mls.encrypt06(&room, b"hello from b").unwrap();
        let answer = submit(&world, &bob, BOB, &message).await;
        assert!(
            matches!(answer.outcome, SubmitOutcome::Accepted { frank: None, .. }),
            "{answer:?}"
        );
        let held = world.provider(A).messages06(&room).await.unwrap();
        let last = held.last().unwrap();
        assert_eq!(last.message.as_bytes(), message.as_slice());
        match alice.mls.process06(&room, last.message.as_bytes()).unwrap() {
            Processed06::Application { sender, plaintext } => {
                assert_eq!(sender, bob.id);
                assert_eq!(plaintext, b"hello from b");
            }
            other => panic!("{other:?}"),
        }
        // b got it too (fanned out to every participant's provider).
        let at_b = world.provider(B).messages06(&room).await.unwrap();
        assert_eq!(at_b.last().unwrap().message.as_bytes(), message.as_slice());

        // A provider may not submit for another provider's user.
        let answer: SubmitMessageResponse = post_ok(
            &world,
            C,
            A,
            Endpoint06::SubmitMessage.path(ROOM),
            submit_body(BOB, &message),
        )
        .await;
        assert_eq!(answer.outcome, SubmitOutcome::NotAllowed);
        world.shutdown().await;
    }

    /// A follower that is down does not hold up the hub: Alice's two messages are accepted
    /// while b is stopped and wait in b's queue, in order; once b is back the queue delivers
    /// both, in the hub's order, and Bob decrypts them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_notify_to_a_provider_that_is_down_waits_in_its_queue_and_arrives_in_order() {
        let (mut world, mut alice, mut bob) = room_with_bob(roles::MEMBER).await;
        let room = uri(ROOM);
        let before = world.provider(B).messages06(&room).await.unwrap().len();
        world.stop(B).await;
        let mut sent = Vec::new();
        for text in [b"one".as_slice(), b"two"] {
            let message = alice.mls.encrypt06(&room, text).unwrap();
            assert!(matches!(
                submit(&world, &alice, ALICE, &message).await.outcome,
                SubmitOutcome::Accepted { .. }
            ));
            sent.push(message);
        }
        // Both wait for b (the first was not answered, the second queued behind it).
        assert_eq!(world.provider(A).notify_backlog06(&name(B)), 2);

        world.restart(B).await;
        // The queue ends once b has answered both (b stores a notify before its answer).
        tokio::time::timeout(
            std::time::Duration::from_secs(90),
            world.provider(A).notify_drained06(&name(B)),
        )
        .await
        .expect("b never got the queued notifies");
        let held = world.provider(B).messages06(&room).await.unwrap();
        assert_eq!(held.len(), before + 2, "each message once");
        let texts: Vec<Vec<u8>> = held[before..]
            .iter()
            .map(
                |m| match bob.mls.process06(&room, m.message.as_bytes()).unwrap() {
                    Processed06::Application { plaintext, .. } => plaintext,
                    other => panic!("{other:?}"),
                },
            )
            .collect();
        assert_eq!(texts, [b"one".to_vec(), b"two".to_vec()]);
        assert_eq!(
            held[before].message.as_bytes(),
            sent[0].as_slice(),
            "the hub's order"
        );
        world.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_commit_by_a_role_without_the_capability_is_not_allowed() {
        let (world, _alice, mut bob) = room_with_bob(roles::GUEST).await;
        let room = uri(ROOM);
        let mut cathy = world.client(C, "cathy", None).await;
        let kp = cathy.mls.key_package(false).unwrap();
        let commit = bob
            .mls
            .commit06(
                &room,
                Plan06 {
                    adds: vec![kp],
                    participants: Some(add("mimi://c.example/u/cathy", roles::MEMBER)),
                    ..Default::default()
                },
            )
            .unwrap();
        let answer = relay_update(&world, &bob, &commit).await;
        assert_eq!(answer.outcome, UpdateOutcome::NotAllowed, "{answer:?}");
        assert!(
            answer
                .error_description
                .as_str()
                .contains("add a participant"),
            "{answer:?}"
        );
        // Nothing was fanned out: b holds the first commit and the Welcome only.
        assert_eq!(world.provider(B).messages06(&room).await.unwrap().len(), 2);
        // The same commit sent by a provider that is not the committer's: notAllowed too.
        bob.mls.clear_pending06(&room).unwrap();
        let commit = bob.mls.commit06(&room, Plan06::default()).unwrap();
        let answer = update(&world, C, &commit).await;
        assert_eq!(answer.outcome, UpdateOutcome::NotAllowed, "{answer:?}");
        // A stale epoch is wrongEpoch with the current one.
        let answer = update(&world, B, &commit).await;
        assert!(
            matches!(answer.outcome, UpdateOutcome::Success { .. }),
            "{answer:?}"
        );
        let answer = update(&world, B, &commit).await;
        assert_eq!(
            answer.outcome,
            UpdateOutcome::WrongEpoch { current_epoch: 2 }
        );
        world.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_hubs_group_survives_a_restart() {
        let (mut world, mut alice, mut bob) = room_with_bob(roles::MEMBER).await;
        let room = uri(ROOM);
        world.stop(A).await;
        world.restart(A).await;
        // The hub reloads the room's group from its storage: a commit and a message of
        // the current epoch are accepted, a stale one is not.
        let commit = bob.mls.commit06(&room, Plan06::default()).unwrap();
        let answer = relay_update(&world, &bob, &commit).await;
        assert!(
            matches!(answer.outcome, UpdateOutcome::Success { .. }),
            "{answer:?}"
        );
        bob.mls.merge_pending06(&room).unwrap();
        let stale = alice.mls.encrypt06(&room, b"old epoch").unwrap();
        assert_eq!(
            submit(&world, &alice, ALICE, &stale).await.outcome,
            SubmitOutcome::EpochTooOld { current_epoch: 2 }
        );
        let held = world.provider(A).messages06(&room).await.unwrap();
        match alice
            .mls
            .process06(&room, held.last().unwrap().message.as_bytes())
            .unwrap()
        {
            Processed06::Commit { epoch, .. } => assert_eq!(epoch, 2),
            other => panic!("{other:?}"),
        }
        world.shutdown().await;
    }

    /// The -06 log is one record per message, read in pages: a follower keeps more than one
    /// notify body can carry (4,096) and more than a page (`LOG_PAGE`), in order, and reads
    /// from any position.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_06_log_keeps_more_messages_than_a_body_or_a_page_in_order() {
        let (world, _alice, _bob) = room_with_bob(roles::MEMBER).await;
        let room = uri(ROOM);
        let b = world.provider(B);
        let before = b.messages06(&room).await.unwrap().len() as u64;
        let held = world.provider(A).messages06(&room).await.unwrap();
        let mut sent = 0u64;
        for round in 0..2u64 {
            let mut messages = Vec::new();
            for i in 0..3_000u64 {
                let mut m = held[0].clone();
                m.timestamp = 1_000_000 * (round + 1) + i;
                messages.push(m);
            }
            let body = NotifyBody { messages }.encode().unwrap();
            let (status, _) = post(&world, A, B, Endpoint06::Notify.path(ROOM), body).await;
            assert_eq!(status, 201);
            sent += 3_000;
        }
        let all = b.messages06(&room).await.unwrap();
        assert_eq!(all.len() as u64, before + sent);
        let stamps: Vec<u64> = all[before as usize..].iter().map(|m| m.timestamp).collect();
        assert_eq!(stamps[0], 1_000_000);
        assert_eq!(stamps[2_999], 1_002_999);
        assert_eq!(stamps[3_000], 2_000_000);
        assert_eq!(*stamps.last().unwrap(), 2_002_999);
        // From a position: the rest, in order.
        let tail = b.messages06_after(&room, before + 5_990).await.unwrap();
        assert_eq!(
            tail.iter().map(|m| m.timestamp).collect::<Vec<_>>(),
            (2_002_990..2_003_000).collect::<Vec<u64>>()
        );
        assert!(
            b.messages06_after(&room, before + sent)
                .await
                .unwrap()
                .is_empty()
        );
        world.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_byte_identical_notify_is_processed_once() {
        let (world, _alice, _bob) = room_with_bob(roles::MEMBER).await;
        let room = uri(ROOM);
        let held = world.provider(B).messages06(&room).await.unwrap();
        let body = NotifyBody {
            messages: held[..1].to_vec(),
        }
        .encode()
        .unwrap();
        // a's first notify had the commit and the Welcome; this body is new, then repeated.
        for _ in 0..2 {
            let (status, _) = post(&world, A, B, Endpoint06::Notify.path(ROOM), body.clone()).await;
            assert_eq!(status, 201);
        }
        assert_eq!(
            world.provider(B).messages06(&room).await.unwrap().len(),
            held.len() + 1
        );
        // Only the room's hub may notify.
        let (status, answer) = post(&world, C, B, Endpoint06::Notify.path(ROOM), body).await;
        assert_eq!((status, kind(&answer)), (403, "not_allowed"));
        world.shutdown().await;
    }
}

mod group_info {
    use mimi_codec::v06::labels::{
        GROUP_INFO_ENCRYPTION, GROUP_INFO_REQUEST_TBS, GROUP_INFO_RESPONSE_TBS, encrypt_context,
    };
    use mimi_codec::v06::{
        GroupInfoCode, GroupInfoRatchetTreeTbe, GroupInfoRequest, GroupInfoResponse,
        RatchetTreeOption,
    };
    use mimi_e2e::binding06::roles;
    use openmls_rust_crypto::RustCrypto;
    use openmls_traits::crypto::OpenMlsCrypto as _;
    use openmls_traits::types::{Ciphersuite, HpkeCiphertext};

    use super::*;

    const ROOM: &str = "mimi://a.example/r/club";

    /// A signed request of `client` (its credential), with a fresh HPKE key pair.
    fn request(client: &str, key: &ed25519_dalek::SigningKey, hpke_public: &[u8]) -> Vec<u8> {
        let mut request = GroupInfoRequest {
            protocol: Protocol::Mls10,
            cipher_suite: 1,
            requesting_signature_key: Opaque::new(key.verifying_key().to_bytes().to_vec()).unwrap(),
            requesting_credential: Credential {
                credential_type: 1,
                content: Opaque::new(client.as_bytes().to_vec()).unwrap(),
            },
            group_info_public_key: Opaque::new(hpke_public.to_vec()).unwrap(),
            joining_code: Opaque::default(),
            signature: Opaque::default(),
        };
        let content =
            sign_content(GROUP_INFO_REQUEST_TBS, &request.tbs().encode().unwrap()).unwrap();
        request.signature = Opaque::new(key.sign(&content).to_bytes().to_vec()).unwrap();
        request.encode().unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn group_info_answers_a_signed_sealed_group_info_a_new_device_can_join_with() {
        let (world, _alice, _bob) = super::rooms::room_with_bob(roles::MEMBER).await;
        let crypto = RustCrypto::default();
        let config = || Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519.hpke_config();
        let hpke = crypto.derive_hpke_keypair(config(), &[3; 32]).unwrap();
        let key = ed25519_dalek::SigningKey::from_bytes(&[4; 32]);

        // Bob's new tablet (Bob is a participant) asks through b.
        let body = request("@bob:b.example#tablet", &key, &hpke.public);
        let response: GroupInfoResponse =
            post_ok(&world, B, A, Endpoint06::GroupInfo.path(ROOM), body).await;
        let tbs = response.tbs().expect("a success");
        let (success, signature) = response.result.unwrap();
        // Signed by the hub's external sender key.
        let hub_key: [u8; 32] = success
            .hub_sender
            .signature_key
            .as_slice()
            .try_into()
            .unwrap();
        let content = sign_content(GROUP_INFO_RESPONSE_TBS, &tbs.encode().unwrap()).unwrap();
        ed25519_dalek::VerifyingKey::from_bytes(&hub_key)
            .unwrap()
            .verify_strict(
                &content,
                &ed25519_dalek::Signature::from_slice(signature.as_slice()).unwrap(),
            )
            .unwrap();
        assert_eq!(
            success.hub_sender.signature_key.as_slice(),
            world.provider(A).rooms().identity().signer().public()
        );
        // Sealed to the request's key, with the room as context.
        let sealed = HpkeCiphertext {
            kem_output: success
                .encrypted_groupinfo_and_tree
                .kem_output
                .as_slice()
                .to_vec()
                .into(),
            ciphertext: success
                .encrypted_groupinfo_and_tree
                .ciphertext
                .as_slice()
                .to_vec()
                .into(),
        };
        let info = encrypt_context(GROUP_INFO_ENCRYPTION, ROOM.as_bytes()).unwrap();
        let opened = crypto
            .hpke_open(config(), &sealed, hpke.private.as_ref(), &info, &[])
            .unwrap();
        let tbe = GroupInfoRatchetTreeTbe::decode(&opened).unwrap();
        let RatchetTreeOption::Full(tree) = &tbe.ratchet_tree_option else {
            panic!("a full tree expected");
        };
        // The GroupInfo verifies: a new client of Bob's joins the group from it.
        let dir = tempfile::tempdir().unwrap();
        let mut tablet =
            mimi_e2e::MlsClient::open(dir.path(), "@bob:b.example#tablet".parse().unwrap())
                .unwrap();
        let (room, _commit) = tablet
            .join_by_external_commit06(tbe.group_info.as_bytes(), tree.as_slice())
            .unwrap();
        assert_eq!(room, uri(ROOM));
        assert_eq!(tablet.epoch06(&room).unwrap(), 2);

        // Cathy is no participant: notAuthorized. An unknown room: noSuchRoom.
        let body = request("@cathy:c.example#desk", &key, &hpke.public);
        let answer: GroupInfoResponse =
            post_ok(&world, C, A, Endpoint06::GroupInfo.path(ROOM), body).await;
        assert_eq!(answer.status(), GroupInfoCode::NotAuthorized);
        let body = request("@bob:b.example#tablet", &key, &hpke.public);
        let other = "mimi://a.example/r/none";
        let answer: GroupInfoResponse =
            post_ok(&world, B, A, Endpoint06::GroupInfo.path(other), body).await;
        assert_eq!(answer.status(), GroupInfoCode::NoSuchRoom);
        // A forged request signature: 403.
        let mut forged = request("@bob:b.example#tablet", &key, &hpke.public);
        let last = forged.len() - 1;
        forged[last] ^= 1;
        let (status, answer) = post(&world, B, A, Endpoint06::GroupInfo.path(ROOM), forged).await;
        assert_eq!((status, kind(&answer)), (403, "signature"));
        world.shutdown().await;
    }
}
