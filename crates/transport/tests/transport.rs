//! Integration tests of mimi-transport: real HTTPS with mutual TLS on 127.0.0.1, real
//! certificates from a private CA, and a handler that records what it received.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use mimi_codec::{
    CheckInviteRequest, ErrorCode, Event, EventError, EventResponse, IdentifierDiscoveryCode,
    IdentifierQuery, IdentifierRequest, IdentifierResponse, InfoEvent, JoinRule, MessageBody,
    MimiMessage, Opaque, RoomId, RoomPolicy, RoomState, SecurityConfig, Sender, ServerName, Text,
    Wire,
};
use mimi_transport::body::decode_error_body;
use mimi_transport::pki::CertificateAuthority;
use mimi_transport::server::{OCTET_STREAM, WELL_KNOWN_PATH};
use mimi_transport::tls::{self, PeerNameError, peer_names};
use mimi_transport::{
    CheckInviteOutcome, CheckInviteReply, ClientConfig, Endpoint, Handler, MimiClient, Reply,
    ResolveError, Resolver, RetryPolicy, ServerConfig, StaticResolver, TimeoutStage,
    TransportError, WellKnownResolver, check_sender, serve,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, oneshot};
use tokio::task::JoinHandle;

const HUB: &str = "hub.example";
const B: &str = "b.example";
const C: &str = "c.example";
/// Bound on waiting for a server task to finish (a hang guard, not a timing assertion).
const TASK_BOUND: Duration = Duration::from_secs(20);

fn name(s: &str) -> ServerName {
    s.parse().unwrap()
}

// ---------------------------------------------------------------------------------------
// PKI

struct Pki {
    ca: CertificateAuthority,
    other: CertificateAuthority,
}

impl Pki {
    fn new() -> Self {
        Pki {
            ca: CertificateAuthority::generate("MIMI test CA").unwrap(),
            other: CertificateAuthority::generate("Another CA").unwrap(),
        }
    }

    fn server_tls(&self, server: &str) -> Arc<rustls::ServerConfig> {
        let identity = self.ca.issue(&name(server)).unwrap().identity().unwrap();
        tls::server_config(identity, &self.ca.roots().unwrap()).unwrap()
    }

    fn client_tls(&self, client: Option<&str>) -> Arc<rustls::ClientConfig> {
        let identity = client.map(|c| self.ca.issue(&name(c)).unwrap().identity().unwrap());
        tls::client_config(identity, &self.ca.roots().unwrap()).unwrap()
    }

    /// A client whose certificate comes from the other CA (it trusts our CA for servers).
    fn foreign_client_tls(&self, client: &str) -> Arc<rustls::ClientConfig> {
        let identity = self.other.issue(&name(client)).unwrap().identity().unwrap();
        tls::client_config(Some(identity), &self.ca.roots().unwrap()).unwrap()
    }

    fn client_tls_with_names(&self, names: &[&str]) -> Arc<rustls::ClientConfig> {
        let names = names.iter().map(|s| s.to_string()).collect();
        let identity = self
            .ca
            .issue_for_dns_names(names)
            .unwrap()
            .identity()
            .unwrap();
        tls::client_config(Some(identity), &self.ca.roots().unwrap()).unwrap()
    }
}

// ---------------------------------------------------------------------------------------
// A recording handler

#[derive(Default)]
struct Recorder {
    own: Option<ServerName>,
    room_hub: Option<ServerName>,
    sends: std::sync::Mutex<Vec<(ServerName, MimiMessage)>>,
    invites: std::sync::Mutex<Vec<(ServerName, CheckInviteRequest)>>,
    lookups: std::sync::Mutex<Vec<(ServerName, ServerName, IdentifierRequest)>>,
    /// When set, every send answers `503`.
    unavailable: std::sync::atomic::AtomicBool,
    /// When set, every accepted send answers `200` with an empty body.
    silent: std::sync::atomic::AtomicBool,
    /// When set, the next send signals `entered` and waits for `release`.
    gate: Mutex<Option<(oneshot::Sender<()>, oneshot::Receiver<()>)>>,
    /// When set, every send waits at it (so that a burst is in flight all at once).
    barrier: std::sync::Mutex<Option<Arc<tokio::sync::Barrier>>>,
}

impl Recorder {
    fn new(own: &str, room_hub: &str) -> Self {
        Recorder {
            own: Some(name(own)),
            room_hub: Some(name(room_hub)),
            ..Recorder::default()
        }
    }

    fn own(&self) -> ServerName {
        self.own.clone().unwrap()
    }

    fn sends(&self) -> Vec<(ServerName, MimiMessage)> {
        self.sends.lock().unwrap().clone()
    }
}

fn ack(room: &RoomId, from: &ServerName) -> MimiMessage {
    MimiMessage::new(
        room.clone(),
        Sender::Server(from.clone()),
        MessageBody::Response(EventResponse::Ok),
    )
}

#[async_trait]
impl Handler for Recorder {
    async fn send(&self, peer: &ServerName, message: MimiMessage) -> Reply {
        self.sends
            .lock()
            .unwrap()
            .push((peer.clone(), message.clone()));
        let gate = self.gate.lock().await.take();
        if let Some((entered, release)) = gate {
            entered.send(()).unwrap();
            release.await.unwrap();
        }
        let barrier = self.barrier.lock().unwrap().clone();
        if let Some(barrier) = barrier {
            barrier.wait().await;
        }
        if self.unavailable.load(Ordering::SeqCst) {
            return Reply::Unavailable(EventError::new(ErrorCode::Internal, "storage is down"));
        }
        let hub = self.room_hub.clone().unwrap();
        match check_sender(peer, &message, &hub) {
            Ok(()) if self.silent.load(Ordering::SeqCst) => Reply::Accepted(None),
            Ok(()) => Reply::Accepted(Some(ack(&message.room_id, &self.own()))),
            Err(error) => Reply::Refused(MimiMessage::new(
                message.room_id,
                Sender::Server(self.own()),
                MessageBody::Response(EventResponse::Error(error)),
            )),
        }
    }

    async fn check_invite(
        &self,
        peer: &ServerName,
        request: CheckInviteRequest,
    ) -> CheckInviteReply {
        self.invites
            .lock()
            .unwrap()
            .push((peer.clone(), request.clone()));
        if request.invite.sender.to_string().starts_with("@spammer:") {
            CheckInviteReply::Refused(EventError::new(ErrorCode::InviteRejected, "no spam"))
        } else {
            CheckInviteReply::Accepted
        }
    }

    async fn identifier_discovery(
        &self,
        peer: &ServerName,
        domain: &ServerName,
        request: IdentifierRequest,
    ) -> Result<IdentifierResponse, EventError> {
        self.lookups
            .lock()
            .unwrap()
            .push((peer.clone(), domain.clone(), request));
        Ok(IdentifierResponse {
            code: IdentifierDiscoveryCode::Success,
            uri: Text::new(format!("@bob:{domain}")).unwrap(),
        })
    }
}

// ---------------------------------------------------------------------------------------
// Servers

struct TestServer {
    addr: SocketAddr,
    handler: Arc<Recorder>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl TestServer {
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            stop.send(()).unwrap();
        }
        tokio::time::timeout(TASK_BOUND, self.task)
            .await
            .expect("server stops")
            .unwrap();
    }
}

async fn start_on(
    listener: TcpListener,
    pki: &Pki,
    server: &str,
    handler: Arc<Recorder>,
    tweak: impl FnOnce(&mut ServerConfig),
) -> TestServer {
    let addr = listener.local_addr().unwrap();
    let mut config = ServerConfig::new(pki.server_tls(server), name(server));
    tweak(&mut config);
    let (stop, stopped) = oneshot::channel::<()>();
    let dyn_handler: Arc<dyn Handler> = handler.clone();
    let task = tokio::spawn(serve(listener, config, dyn_handler, async {
        let _ = stopped.await;
    }));
    TestServer {
        addr,
        handler,
        stop: Some(stop),
        task,
    }
}

async fn start(pki: &Pki, server: &str, room_hub: &str) -> TestServer {
    start_with(pki, server, room_hub, |_| {}).await
}

async fn start_with(
    pki: &Pki,
    server: &str,
    room_hub: &str,
    tweak: impl FnOnce(&mut ServerConfig),
) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let handler = Arc::new(Recorder::new(server, room_hub));
    start_on(listener, pki, server, handler, tweak).await
}

// ---------------------------------------------------------------------------------------
// Clients

fn quick_config(tls: Arc<rustls::ClientConfig>) -> ClientConfig {
    let mut config = ClientConfig::new(tls);
    config.connect_timeout = Duration::from_secs(5);
    config.request_timeout = Duration::from_secs(10);
    config.operation_timeout = Duration::from_secs(60);
    config.retry = RetryPolicy {
        max_attempts: 3,
        base: Duration::from_millis(10),
        cap: Duration::from_millis(50),
    };
    config
}

fn resolver(entries: &[(&str, SocketAddr)]) -> Arc<dyn Resolver> {
    let mut map = StaticResolver::new();
    for (server, addr) in entries {
        map.insert(name(server), *addr);
    }
    Arc::new(map)
}

fn client_to(tls: Arc<rustls::ClientConfig>, entries: &[(&str, SocketAddr)]) -> MimiClient {
    MimiClient::new(quick_config(tls), resolver(entries))
}

fn room() -> RoomId {
    RoomId::new("room1", &name(HUB)).unwrap()
}

fn event_from(sender: &str, payload_len: usize) -> MimiMessage {
    MimiMessage::new(
        room(),
        sender.parse::<Sender>().unwrap(),
        MessageBody::Event(Event::RoomUser(private_message(payload_len))),
    )
}

/// A well-framed application PrivateMessage (RFC 9420 §6.3) whose ciphertext is
/// `payload_len` bytes: `m.room.user` carries a bare MLSMessage, so the bytes must frame.
fn private_message(payload_len: usize) -> mimi_codec::MlsBytes {
    use tls_codec::Serialize as _;
    let mut b = vec![0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0];
    b.extend(
        Opaque::<{ usize::MAX }>::new(vec![7u8; payload_len])
            .unwrap()
            .tls_serialize_detached()
            .unwrap(),
    );
    mimi_codec::MlsBytes::new(b).unwrap()
}

fn invite_from(sender: &str) -> CheckInviteRequest {
    CheckInviteRequest {
        invite: event_from(sender, 16),
        room_info: InfoEvent {
            room_state: RoomState {
                room_id: room(),
                participants: mimi_codec::BoundedVec::new(vec![]).unwrap(),
                policy: RoomPolicy {
                    policy_id: Text::new("default").unwrap(),
                    join_rule: JoinRule::MembersOnly,
                    permissions: mimi_codec::BoundedVec::new(vec![]).unwrap(),
                },
                security: SecurityConfig {
                    protocol: Text::new("mls10").unwrap(),
                    cipher_suite: 1,
                },
            },
        },
    }
}

/// One raw HTTPS request on a fresh connection (for bodies and methods the typed client
/// never sends).
async fn raw_request(
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    server: &str,
    request: Request<Full<Bytes>>,
) -> (StatusCode, hyper::HeaderMap, Bytes) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let tls_name = rustls::pki_types::ServerName::try_from(server.to_string()).unwrap();
    let stream = tokio_rustls::TlsConnector::from(tls)
        .connect(tls_name, tcp)
        .await
        .unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let response = sender.send_request(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, body)
}

fn post(path: &str, body: Vec<u8>) -> Request<Full<Bytes>> {
    Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(CONTENT_TYPE, OCTET_STREAM)
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

fn get(path: &str) -> Request<Full<Bytes>> {
    Request::builder()
        .method(Method::GET)
        .uri(path)
        .body(Full::new(Bytes::new()))
        .unwrap()
}

/// Append an RFC 9420 variable-length vector (1- or 2-byte length prefix).
fn push_vector(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = bytes.len();
    if len < 64 {
        out.push(len as u8);
    } else {
        assert!(len < 16384);
        out.push(0x40 | (len >> 8) as u8);
        out.push(len as u8);
    }
    out.extend_from_slice(bytes);
}

/// The bytes of a `mimi10` MIMIMessage event from `@bob:b.example` in the test room, up to
/// its event type.
fn frame_start() -> Vec<u8> {
    let mut out = vec![0, 1];
    push_vector(&mut out, room().as_str().as_bytes());
    push_vector(&mut out, b"@bob:b.example");
    out.push(1); // event
    out
}

fn error_code(body: &[u8]) -> ErrorCode {
    decode_error_body(body).expect("an error body").code
}

// ---------------------------------------------------------------------------------------
// Mutual TLS and the peer's name

#[tokio::test]
async fn client_without_certificate_gets_well_known_but_not_send() {
    let pki = Pki::new();
    let server = start(&pki, HUB, HUB).await;
    let anonymous = client_to(pki.client_tls(None), &[(HUB, server.addr)]);

    assert_eq!(anonymous.well_known(&name(HUB)).await.unwrap(), name(HUB));
    match anonymous
        .send(&name(HUB), &event_from("@bob:b.example", 8))
        .await
    {
        Err(TransportError::Refused { status: 403, error }) => {
            assert_eq!(error.unwrap().code, ErrorCode::SenderMismatch)
        }
        other => panic!("expected 403, got {other:?}"),
    }
    match anonymous
        .identifier_discovery(&name(HUB), &name(B), &handle_request("bob"))
        .await
    {
        Err(TransportError::Refused { status: 403, .. }) => {}
        other => panic!("expected 403, got {other:?}"),
    }
    assert!(server.handler.sends().is_empty());
    assert!(server.handler.lookups.lock().unwrap().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn client_certificate_from_another_ca_fails_the_handshake() {
    let pki = Pki::new();
    let server = start(&pki, HUB, HUB).await;
    let foreign = client_to(pki.foreign_client_tls(B), &[(HUB, server.addr)]);

    match foreign
        .send(&name(HUB), &event_from("@bob:b.example", 8))
        .await
    {
        Err(TransportError::Tls(rustls::Error::AlertReceived(_))) => {}
        other => panic!("expected a TLS alert, got {other:?}"),
    }
    // Not even .well-known: the handshake itself fails.
    assert!(matches!(
        foreign.well_known(&name(HUB)).await,
        Err(TransportError::Tls(_))
    ));
    assert!(server.handler.sends().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn server_certificate_must_carry_the_target_name_and_chain_to_our_ca() {
    let pki = Pki::new();
    let server = start(&pki, HUB, HUB).await;
    // We ask for c.example but reach a server whose certificate says hub.example.
    let misdirected = client_to(pki.client_tls(Some(B)), &[(C, server.addr)]);
    match misdirected
        .send(&name(C), &event_from("@bob:b.example", 8))
        .await
    {
        Err(TransportError::Tls(rustls::Error::InvalidCertificate(
            rustls::CertificateError::NotValidForNameContext { .. },
        ))) => {}
        other => panic!("expected a name mismatch, got {other:?}"),
    }
    // A client trusting only another CA refuses the server.
    let other_roots = pki.other.roots().unwrap();
    let distrustful = tls::client_config(None, &other_roots).unwrap();
    let distrustful = client_to(distrustful, &[(HUB, server.addr)]);
    match distrustful.well_known(&name(HUB)).await {
        Err(TransportError::Tls(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer,
        ))) => {}
        other => panic!("expected an unknown issuer, got {other:?}"),
    }
    assert!(server.handler.sends().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn handler_sees_the_peer_name_from_the_certificate() {
    let pki = Pki::new();
    let server = start(&pki, HUB, HUB).await;
    let client = client_to(pki.client_tls(Some(B)), &[(HUB, server.addr)]);
    let message = event_from("@bob:b.example", 32);

    let outcome = client.send(&name(HUB), &message).await.unwrap();

    assert_eq!(outcome.response, Some(ack(&room(), &name(HUB))));
    assert_eq!(outcome.attempts, 1);
    assert_eq!(server.handler.sends(), vec![(name(B), message)]);
    server.stop().await;
}

/// TR-SEND-1's other accepted form: `200` with an empty body (no response event).
#[tokio::test]
async fn an_accepted_send_may_answer_200_with_an_empty_body() {
    let pki = Pki::new();
    let server = start(&pki, HUB, HUB).await;
    server.handler.silent.store(true, Ordering::SeqCst);
    let message = event_from("@bob:b.example", 8);
    // On the wire: 200, nothing in the body.
    let (status, headers, body) = raw_request(
        server.addr,
        pki.client_tls(Some(B)),
        HUB,
        post("/send", message.encode().unwrap()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.is_empty(), "{body:?}");
    assert_eq!(headers.get(CONTENT_TYPE), None);
    // Through the client: accepted, no response.
    let client = client_to(pki.client_tls(Some(B)), &[(HUB, server.addr)]);
    let outcome = client.send(&name(HUB), &message).await.unwrap();
    assert_eq!(outcome.response, None);
    assert_eq!(server.handler.sends().len(), 2);
    server.stop().await;
}

#[tokio::test]
async fn a_certificate_with_several_names_authenticates_each() {
    let pki = Pki::new();
    let server = start(&pki, HUB, HUB).await;
    // One certificate for b.example and c.example (say, one host serving two providers),
    // with the second name in another case.
    let both = client_to(
        pki.client_tls_with_names(&["www.b.example", B, "C.Example"]),
        &[(HUB, server.addr)],
    );
    for sender in ["@bob:b.example", "@cathy:c.example"] {
        match both.send(&name(HUB), &event_from(sender, 8)).await {
            Ok(outcome) => assert!(outcome.response.is_some()),
            other => panic!("{sender}: expected 200, got {other:?}"),
        }
    }
    // The handler saw the name each request speaks for, in canonical form.
    let peers: Vec<ServerName> = server.handler.sends().into_iter().map(|(p, _)| p).collect();
    assert_eq!(peers, vec![name(B), name(C)]);
    // A sender on a server the certificate does not name is refused.
    match both
        .send(&name(HUB), &event_from("@dave:d.example", 8))
        .await
    {
        Err(TransportError::Refused { status: 400, error }) => {
            assert_eq!(error.unwrap().code, ErrorCode::SenderMismatch)
        }
        other => panic!("expected 400, got {other:?}"),
    }
    server.stop().await;
}

#[tokio::test]
async fn a_certificate_with_only_a_wildcard_name_is_refused() {
    let pki = Pki::new();
    let server = start(&pki, HUB, HUB).await;
    let wildcard = client_to(
        pki.client_tls_with_names(&["*.example"]),
        &[(HUB, server.addr)],
    );
    match wildcard
        .send(&name(HUB), &event_from("@bob:b.example", 8))
        .await
    {
        Err(TransportError::Refused { status: 403, error }) => {
            assert_eq!(error.unwrap().code, ErrorCode::SenderMismatch)
        }
        other => panic!("expected 403, got {other:?}"),
    }
    assert!(server.handler.sends().is_empty());
    server.stop().await;
}

#[test]
fn peer_names_are_the_certificates_dns_names_without_case_or_wildcards() {
    let pki = Pki::new();
    let der = |names: &[&str]| {
        let issued = pki
            .ca
            .issue_for_dns_names(names.iter().map(|s| s.to_string()).collect())
            .unwrap();
        issued.identity().unwrap().chain.remove(0)
    };
    let one = peer_names(&der(&[B])).unwrap();
    assert_eq!(one.names(), &[name(B)]);
    assert!(one.authenticates(&name(B)));
    assert!(!one.authenticates(&name(C)));

    // Several names: each is authenticated, in canonical (lowercase) form, once.
    let several = peer_names(&der(&["B.Example", C, "b.example", "*.example"])).unwrap();
    assert_eq!(several.names(), &[name(B), name(C)]);
    assert!(several.authenticates(&name(B)) && several.authenticates(&name(C)));
    assert_eq!(several.to_string(), "b.example, c.example");
    // The name a request speaks for: its first claim the certificate authenticates.
    assert_eq!(several.speaking_for(&[name(C), name(B)]), &name(C));
    assert_eq!(several.speaking_for(&[name(HUB), name(B)]), &name(B));
    assert_eq!(several.speaking_for(&[name(HUB)]), &name(B));
    assert_eq!(several.speaking_for(&[]), &name(B));

    // A wildcard authenticates no server (docs/spec-decisions.md).
    let wildcard = peer_names(&der(&["*.example"]));
    assert!(matches!(wildcard, Err(PeerNameError::InvalidServerName(_))));
    assert!(
        !peer_names(&der(&["*.example", B]))
            .unwrap()
            .authenticates(&name("x.example"))
    );
    assert_eq!(
        peer_names(&rustls::pki_types::CertificateDer::from(vec![1, 2, 3])),
        Err(PeerNameError::BadCertificate)
    );
}

// ---------------------------------------------------------------------------------------
// The sender's server must be the peer

#[tokio::test]
async fn sender_on_another_server_is_refused_once_with_400() {
    let pki = Pki::new();
    let server = start(&pki, HUB, HUB).await;
    let client = client_to(pki.client_tls(Some(B)), &[(HUB, server.addr)]);
    let forged = event_from("@carol:c.example", 8);

    match client.send(&name(HUB), &forged).await {
        Err(TransportError::Refused { status: 400, error }) => {
            assert_eq!(error.unwrap().code, ErrorCode::SenderMismatch)
        }
        other => panic!("expected 400, got {other:?}"),
    }
    // A 400 is never retried: the handler was called exactly once.
    assert_eq!(server.handler.sends(), vec![(name(B), forged)]);
    server.stop().await;
}

#[tokio::test]
async fn unavailable_is_503_and_retried_up_to_max_attempts() {
    let pki = Pki::new();
    let server = start(&pki, HUB, HUB).await;
    server.handler.unavailable.store(true, Ordering::SeqCst);
    let client = client_to(pki.client_tls(Some(B)), &[(HUB, server.addr)]);
    let message = event_from("@bob:b.example", 8);

    match client.send(&name(HUB), &message).await {
        Err(TransportError::ServerError {
            status,
            attempts,
            error,
        }) => {
            assert_eq!((status, attempts), (503, 3));
            assert_eq!(
                error,
                Some(EventError::new(ErrorCode::Internal, "storage is down"))
            );
        }
        other => panic!("expected 503, got {other:?}"),
    }
    assert_eq!(server.handler.sends(), vec![(name(B), message); 3]);
    server.stop().await;
}

#[tokio::test]
async fn follower_accepts_the_hub_relaying_another_servers_event() {
    let pki = Pki::new();
    // b.example is a follower in a room whose hub is hub.example.
    let follower = start(&pki, B, HUB).await;
    let hub = client_to(pki.client_tls(Some(HUB)), &[(B, follower.addr)]);
    let relayed = event_from("@carol:c.example", 8);

    let outcome = hub.send(&name(B), &relayed).await.unwrap();

    assert_eq!(outcome.response, Some(ack(&room(), &name(B))));
    assert_eq!(follower.handler.sends(), vec![(name(HUB), relayed)]);
    follower.stop().await;
}

/// An already-encoded message goes out as it is: the peer decodes it into the same message
/// and answers as for `send`; bytes that are not a message are the peer's `400` (an answer,
/// once, never retried); a body over the limit is refused before any connection is made.
#[tokio::test]
async fn send_encoded_posts_the_bytes_as_they_are() {
    let pki = Pki::new();
    let server = start(&pki, HUB, HUB).await;
    let (relay, accepted) = counting_relay(server.addr).await;
    let client = client_to(pki.client_tls(Some(B)), &[(HUB, relay)]);
    let message = event_from("@bob:b.example", 8);

    let too_long = Bytes::from(vec![0u8; mimi_codec::limits::MAX_MESSAGE_LEN + 1]);
    match client.send_encoded(&name(HUB), too_long).await {
        Err(TransportError::Decode(mimi_codec::CodecError::TooLong { len, max })) => {
            assert_eq!((len, max), (max + 1, mimi_codec::limits::MAX_MESSAGE_LEN));
        }
        other => panic!("expected the length to be refused, got {other:?}"),
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 0);

    let outcome = client
        .send_encoded(&name(HUB), Bytes::from(message.encode().unwrap()))
        .await
        .unwrap();
    assert_eq!(outcome.response, Some(ack(&room(), &name(HUB))));
    assert_eq!(outcome.attempts, 1);

    match client
        .send_encoded(&name(HUB), Bytes::from_static(&[0, 1, 0xff]))
        .await
    {
        Err(TransportError::Refused { status: 400, error }) => {
            assert_eq!(error.unwrap().code, ErrorCode::Malformed)
        }
        other => panic!("expected 400, got {other:?}"),
    }
    // The handler saw the one message; the garbage was refused before it.
    assert_eq!(server.handler.sends(), vec![(name(B), message)]);
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    server.stop().await;
}

// ---------------------------------------------------------------------------------------
// Bodies, statuses, routing

#[tokio::test]
async fn oversize_body_gets_413_and_the_server_stays_up() {
    let pki = Pki::new();
    let server = start_with(&pki, HUB, HUB, |c| c.max_body = 1024).await;
    let client = client_to(pki.client_tls(Some(B)), &[(HUB, server.addr)]);

    let big = event_from("@bob:b.example", 4096);
    assert!(matches!(
        client.send(&name(HUB), &big).await,
        Err(TransportError::TooLarge)
    ));
    let small = event_from("@bob:b.example", 16);
    let outcome = client.send(&name(HUB), &small).await.unwrap();
    assert_eq!(outcome.response, Some(ack(&room(), &name(HUB))));
    assert_eq!(server.handler.sends(), vec![(name(B), small)]);
    server.stop().await;
}

#[tokio::test]
async fn oversize_streamed_body_without_length_gets_413() {
    let pki = Pki::new();
    let server = start_with(&pki, HUB, HUB, |c| c.max_body = 1024).await;
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let tls_name = rustls::pki_types::ServerName::try_from(HUB.to_string()).unwrap();
    let stream = tokio_rustls::TlsConnector::from(pki.client_tls(Some(B)))
        .connect(tls_name, tcp)
        .await
        .unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let (mut tx, body) = http_body_util::channel::Channel::<Bytes>::new(4);
    tokio::spawn(async move {
        for _ in 0..8 {
            if tx.send_data(Bytes::from(vec![0u8; 512])).await.is_err() {
                break;
            }
        }
    });
    let request = Request::builder()
        .method(Method::POST)
        .uri("/send")
        .header(CONTENT_TYPE, OCTET_STREAM)
        .body(body)
        .unwrap();
    assert_eq!(request.headers().get(hyper::header::CONTENT_LENGTH), None);
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(error_code(&body), ErrorCode::TooLarge);
    assert!(server.handler.sends().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn malformed_bodies_get_400_with_an_error_body() {
    let pki = Pki::new();
    let server = start(&pki, HUB, HUB).await;
    let tls = pki.client_tls(Some(B));

    for path in ["/send", "/check-invite"] {
        let (status, headers, body) =
            raw_request(server.addr, tls.clone(), HUB, post(path, vec![0, 1, 0xff])).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(headers.get(CONTENT_TYPE).unwrap(), OCTET_STREAM);
        assert_eq!(error_code(&body), ErrorCode::Malformed, "{path}");
    }
    // A valid message followed by a trailing byte.
    let mut trailing = event_from("@bob:b.example", 8).encode().unwrap();
    trailing.push(0);
    let (status, _, body) =
        raw_request(server.addr, tls.clone(), HUB, post("/send", trailing)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), ErrorCode::Malformed);
    // An unknown protocol version.
    let (status, _, body) = raw_request(
        server.addr,
        tls.clone(),
        HUB,
        post("/send", vec![0, 9, 0, 0, 1]),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), ErrorCode::UnsupportedVersion);
    // An unknown event type.
    let mut unknown = frame_start();
    push_vector(&mut unknown, b"m.room.nope");
    let (status, _, body) =
        raw_request(server.addr, tls.clone(), HUB, post("/send", unknown)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), ErrorCode::UnsupportedEvent);
    // A field over its limit inside a body under the body limit: 413, too_large.
    let mut long_reason = frame_start();
    push_vector(&mut long_reason, b"m.room.user.unsigned");
    push_vector(&mut long_reason, b"@bob:b.example");
    long_reason.push(1); // join
    push_vector(&mut long_reason, &[b'x'; 2000]);
    let (status, _, body) =
        raw_request(server.addr, tls.clone(), HUB, post("/send", long_reason)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(&body), ErrorCode::TooLarge);
    // Identifier discovery with an undecodable request, and with a bad domain.
    let mut bad = get("/identifierDiscovery/b.example");
    *bad.body_mut() = Full::new(Bytes::from_static(&[99]));
    let (status, _, body) = raw_request(server.addr, tls.clone(), HUB, bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), ErrorCode::Malformed);
    let (status, _, body) = raw_request(
        server.addr,
        tls.clone(),
        HUB,
        get("/identifierDiscovery/-x-"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), ErrorCode::Malformed);

    assert!(server.handler.sends().is_empty());
    assert!(server.handler.invites.lock().unwrap().is_empty());
    assert!(server.handler.lookups.lock().unwrap().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn unknown_paths_get_404_wrong_methods_405_wrong_types_415() {
    let pki = Pki::new();
    let server = start(&pki, HUB, HUB).await;
    let tls = pki.client_tls(Some(B));

    let (status, _, body) = raw_request(server.addr, tls.clone(), HUB, get("/nothing")).await;
    assert_eq!((status, body.len()), (StatusCode::NOT_FOUND, 0));

    let (status, headers, _) = raw_request(server.addr, tls.clone(), HUB, get("/send")).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers.get(ALLOW).unwrap(), "POST");

    let (status, headers, _) =
        raw_request(server.addr, tls.clone(), HUB, post(WELL_KNOWN_PATH, vec![])).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers.get(ALLOW).unwrap(), "GET");

    let (status, headers, _) = raw_request(
        server.addr,
        tls.clone(),
        HUB,
        post("/identifierDiscovery/b.example", vec![]),
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers.get(ALLOW).unwrap(), "GET");

    let mut json = post("/send", event_from("@bob:b.example", 8).encode().unwrap());
    json.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let (status, _, _) = raw_request(server.addr, tls.clone(), HUB, json).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    assert!(server.handler.sends().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn well_known_answers_the_domain_as_text_plain() {
    let pki = Pki::new();
    let server = start_with(&pki, HUB, HUB, |c| {
        c.well_known_domain = name("mimi.hub.example")
    })
    .await;
    // No client certificate needed.
    let (status, headers, body) =
        raw_request(server.addr, pki.client_tls(None), HUB, get(WELL_KNOWN_PATH)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers.get(CONTENT_TYPE).unwrap(), "text/plain");
    assert_eq!(&body[..], b"mimi.hub.example");
    server.stop().await;
}

#[tokio::test]
async fn identifier_discovery_routes_the_domain_parameter() {
    let pki = Pki::new();
    let server = start(&pki, HUB, HUB).await;
    let client = client_to(pki.client_tls(Some(B)), &[(HUB, server.addr)]);
    let request = handle_request("bob");

    let response = client
        .identifier_discovery(&name(HUB), &name(C), &request)
        .await
        .unwrap();

    assert_eq!(response.code, IdentifierDiscoveryCode::Success);
    assert_eq!(response.uri.as_str(), "@bob:c.example");
    assert_eq!(
        *server.handler.lookups.lock().unwrap(),
        vec![(name(B), name(C), request)]
    );
    server.stop().await;
}

fn handle_request(handle: &str) -> IdentifierRequest {
    IdentifierRequest {
        query: IdentifierQuery::Handle,
        search_value: Text::new(handle).unwrap(),
    }
}

#[tokio::test]
async fn check_invite_accepts_and_refuses_by_status() {
    let pki = Pki::new();
    let server = start(&pki, B, HUB).await;
    let hub = client_to(pki.client_tls(Some(HUB)), &[(B, server.addr)]);

    let fine = invite_from("@alice:hub.example");
    assert_eq!(
        hub.check_invite(&name(B), &fine).await.unwrap(),
        CheckInviteOutcome::Accepted
    );
    let spam = invite_from("@spammer:hub.example");
    assert_eq!(
        hub.check_invite(&name(B), &spam).await.unwrap(),
        CheckInviteOutcome::Refused(Some(EventError::new(ErrorCode::InviteRejected, "no spam")))
    );
    assert_eq!(
        *server.handler.invites.lock().unwrap(),
        vec![(name(HUB), fine), (name(HUB), spam.clone())]
    );
    // The refusal body is a MIMIMessage in the invite's room, sent by the invitee's server.
    let (status, _, body) = raw_request(
        server.addr,
        pki.client_tls(Some(HUB)),
        B,
        post("/check-invite", spam.encode().unwrap()),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        MimiMessage::decode(&body).unwrap(),
        MimiMessage::new(
            room(),
            Sender::Server(name(B)),
            MessageBody::Response(EventResponse::Error(EventError::new(
                ErrorCode::InviteRejected,
                "no spam"
            ))),
        )
    );
    server.stop().await;
}

// ---------------------------------------------------------------------------------------
// Connections, retries, timeouts

/// A TCP relay in front of `target` that counts the connections it accepts.
async fn counting_relay(target: SocketAddr) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut outbound = TcpStream::connect(target).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            });
        }
    });
    (addr, count)
}

#[tokio::test]
async fn sequential_requests_reuse_one_connection() {
    let pki = Pki::new();
    let server = start(&pki, HUB, HUB).await;
    let (relay, accepted) = counting_relay(server.addr).await;
    let client = client_to(pki.client_tls(Some(B)), &[(HUB, relay)]);

    for i in 0..5 {
        let outcome = client
            .send(&name(HUB), &event_from("@bob:b.example", i))
            .await
            .unwrap();
        assert_eq!(outcome.attempts, 1);
    }
    client
        .identifier_discovery(&name(HUB), &name(B), &handle_request("x"))
        .await
        .unwrap();

    assert_eq!(server.handler.sends().len(), 5);
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    server.stop().await;
}

/// Two bursts of `burst` sends, each all in flight at once (the server holds every send
/// until the whole burst has arrived), from a client that keeps `idle` connections: how
/// many connections the server accepted.
async fn connections_for_two_bursts(burst: usize, idle: usize) -> usize {
    let pki = Pki::new();
    let server = start(&pki, HUB, HUB).await;
    let (relay, accepted) = counting_relay(server.addr).await;
    let mut config = quick_config(pki.client_tls(Some(B)));
    config.max_idle_per_server = idle;
    let client = MimiClient::new(config, resolver(&[(HUB, relay)]));
    *server.handler.barrier.lock().unwrap() = Some(Arc::new(tokio::sync::Barrier::new(burst)));
    for _ in 0..2 {
        let mut sends = tokio::task::JoinSet::new();
        for i in 0..burst {
            let client = client.clone();
            sends.spawn(async move {
                client
                    .send(&name(HUB), &event_from("@bob:b.example", i))
                    .await
            });
        }
        while let Some(outcome) = sends.join_next().await {
            assert_eq!(outcome.unwrap().unwrap().attempts, 1);
        }
    }
    assert_eq!(server.handler.sends().len(), 2 * burst);
    server.stop().await;
    accepted.load(Ordering::SeqCst)
}

/// A burst of concurrent requests up to `max_idle_per_server` keeps its connections for the
/// next burst; beyond it, the connections over the bound are closed and opened again (a
/// TLS handshake each): the bound a hub's outbox needs (Rule TR-POOL-1).
#[tokio::test]
async fn concurrent_requests_within_the_idle_bound_reuse_their_connections() {
    assert_eq!(connections_for_two_bursts(24, 24).await, 24);
    assert_eq!(connections_for_two_bursts(24, 8).await, 24 + 16);
}

/// A port that nothing listens on (bound, then released).
async fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

#[tokio::test]
async fn send_succeeds_after_retries_when_the_server_comes_up_late() {
    let pki = Arc::new(Pki::new());
    let addr = free_port().await;
    let mut config = quick_config(pki.client_tls(Some(B)));
    config.retry = RetryPolicy {
        max_attempts: 50,
        base: Duration::from_millis(20),
        cap: Duration::from_millis(100),
    };
    let client = MimiClient::new(config, resolver(&[(HUB, addr)]));
    let (up_tx, up_rx) = oneshot::channel();
    let late = {
        let pki = pki.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let listener = TcpListener::bind(addr).await.unwrap();
            let handler = Arc::new(Recorder::new(HUB, HUB));
            let server = start_on(listener, &pki, HUB, handler, |_| {}).await;
            up_tx.send(()).unwrap();
            server
        })
    };
    let message = event_from("@bob:b.example", 8);

    let outcome = client.send(&name(HUB), &message).await.unwrap();

    up_rx.await.unwrap();
    let server = late.await.unwrap();
    assert!(outcome.attempts > 1, "attempts: {}", outcome.attempts);
    assert_eq!(outcome.response, Some(ack(&room(), &name(HUB))));
    assert_eq!(server.handler.sends(), vec![(name(B), message)]);
    server.stop().await;
}

#[tokio::test]
async fn send_to_a_peer_that_never_comes_up_fails_with_network_after_max_attempts() {
    let pki = Pki::new();
    let addr = free_port().await;
    let mut config = quick_config(pki.client_tls(Some(B)));
    config.retry.max_attempts = 4;
    let client = MimiClient::new(config, resolver(&[(HUB, addr)]));

    match client
        .send(&name(HUB), &event_from("@bob:b.example", 8))
        .await
    {
        Err(TransportError::Network { attempts, .. }) => assert_eq!(attempts, 4),
        other => panic!("expected a network error, got {other:?}"),
    }
}

#[tokio::test]
async fn unknown_server_is_a_resolve_error() {
    let pki = Pki::new();
    let client = client_to(pki.client_tls(Some(B)), &[]);
    match client
        .send(&name(HUB), &event_from("@bob:b.example", 8))
        .await
    {
        Err(TransportError::Resolve(ResolveError::Unknown(server))) => {
            assert_eq!(server, name(HUB))
        }
        other => panic!("expected a resolve error, got {other:?}"),
    }
}

#[tokio::test]
async fn peer_that_accepts_tcp_but_never_answers_times_out() {
    let pki = Pki::new();
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            open.push(stream);
        }
    });
    let mut config = quick_config(pki.client_tls(Some(B)));
    config.connect_timeout = Duration::from_millis(200);
    config.retry.max_attempts = 2;
    let client = MimiClient::new(config, resolver(&[(HUB, addr)]));

    match client
        .send(&name(HUB), &event_from("@bob:b.example", 8))
        .await
    {
        Err(TransportError::Timeout { attempts, stage }) => {
            assert_eq!((attempts, stage), (2, TimeoutStage::Connect))
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    held.abort();
}

#[tokio::test]
async fn peer_that_completes_tls_but_never_responds_times_out() {
    let pki = Pki::new();
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(pki.server_tls(HUB));
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            if let Ok(tls) = acceptor.accept(stream).await {
                open.push(tls);
            }
        }
    });
    let mut config = quick_config(pki.client_tls(Some(B)));
    config.request_timeout = Duration::from_millis(300);
    config.retry.max_attempts = 2;
    let client = MimiClient::new(config, resolver(&[(HUB, addr)]));

    match client
        .send(&name(HUB), &event_from("@bob:b.example", 8))
        .await
    {
        Err(TransportError::Timeout { attempts, stage }) => {
            assert_eq!((attempts, stage), (2, TimeoutStage::Request))
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    held.abort();
}

#[tokio::test]
async fn whole_operation_timeout_bounds_the_retries() {
    let pki = Pki::new();
    let addr = free_port().await;
    let mut config = quick_config(pki.client_tls(Some(B)));
    config.operation_timeout = Duration::from_millis(300);
    config.retry = RetryPolicy {
        max_attempts: u32::MAX,
        base: Duration::from_millis(20),
        cap: Duration::from_millis(40),
    };
    let client = MimiClient::new(config, resolver(&[(HUB, addr)]));
    match client
        .send(&name(HUB), &event_from("@bob:b.example", 8))
        .await
    {
        Err(TransportError::Timeout {
            stage: TimeoutStage::Operation,
            attempts,
        }) => assert!(attempts >= 1),
        other => panic!("expected an operation timeout, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Shutdown

/// Wait until the listener at `addr` is closed (a connection is refused), without sleeping:
/// the test runtime has one thread, so yielding lets the server's tasks see their shutdown
/// signal and drop the listener; bounded by [`TASK_BOUND`].
async fn until_the_listener_closes(addr: SocketAddr) {
    let deadline = std::time::Instant::now() + TASK_BOUND;
    while TcpStream::connect(addr).await.is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "the listener should close on shutdown"
        );
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_requests_then_stops() {
    let pki = Pki::new();
    let server = start(&pki, HUB, HUB).await;
    let (entered_tx, entered_rx) = oneshot::channel();
    let (release_tx, release_rx) = oneshot::channel();
    *server.handler.gate.lock().await = Some((entered_tx, release_rx));
    let client = client_to(pki.client_tls(Some(B)), &[(HUB, server.addr)]);
    let addr = server.addr;
    let message = event_from("@bob:b.example", 8);

    let in_flight = {
        let client = client.clone();
        let message = message.clone();
        tokio::spawn(async move { client.send(&name(HUB), &message).await })
    };
    entered_rx.await.unwrap();
    let handler = server.handler.clone();
    let stopping = tokio::spawn(server.stop());
    // The listener closes while the request is still in the handler.
    until_the_listener_closes(addr).await;
    release_tx.send(()).unwrap();

    let outcome = in_flight.await.unwrap().unwrap();
    assert_eq!(outcome.response, Some(ack(&room(), &name(HUB))));
    tokio::time::timeout(TASK_BOUND, stopping)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(handler.sends(), vec![(name(B), message)]);

    let mut config = quick_config(pki.client_tls(Some(B)));
    config.retry.max_attempts = 1;
    let after = MimiClient::new(config, resolver(&[(HUB, addr)]));
    assert!(matches!(
        after
            .send(&name(HUB), &event_from("@bob:b.example", 8))
            .await,
        Err(TransportError::Network { attempts: 1, .. })
    ));
}

// ---------------------------------------------------------------------------------------
// Resolvers

#[tokio::test]
async fn static_resolver_maps_names_to_addresses() {
    let addr: SocketAddr = "127.0.0.1:4433".parse().unwrap();
    let resolver = StaticResolver::new().with(name(B), addr);
    assert_eq!(
        resolver.resolve(&name(B)).await.unwrap(),
        Endpoint {
            addresses: vec![addr],
            tls_name: name(B),
        }
    );
    assert!(matches!(
        resolver.resolve(&name(C)).await,
        Err(ResolveError::Unknown(n)) if n == name(C)
    ));
}

#[tokio::test]
async fn well_known_resolver_discovers_the_domain_over_https_and_caches_it() {
    let pki = Pki::new();
    // example.test's origin answers that its MIMI endpoints live on "localhost".
    let origin = start_with(&pki, "example.test", HUB, |c| {
        c.well_known_domain = name("localhost")
    })
    .await;
    let target = start(&pki, "localhost", "localhost").await;
    let origin_map = resolver(&[("example.test", origin.addr)]);
    let discovery = Arc::new(WellKnownResolver::new(
        quick_config(pki.client_tls(None)),
        origin_map.clone(),
        target.addr.port(),
        Duration::from_secs(3600),
    ));

    let endpoint = discovery.resolve(&name("example.test")).await.unwrap();
    assert_eq!(
        endpoint,
        Endpoint {
            addresses: vec![target.addr],
            tls_name: name("localhost"),
        }
    );
    // A client using discovery reaches the target, verified as "localhost".
    let client = MimiClient::new(quick_config(pki.client_tls(Some(B))), discovery.clone());
    let message = event_from("@bob:b.example", 8);
    let outcome = client.send(&name("example.test"), &message).await.unwrap();
    assert_eq!(outcome.response, Some(ack(&room(), &name("localhost"))));
    assert_eq!(target.handler.sends(), vec![(name(B), message)]);
    assert!(origin.handler.sends().is_empty());

    // The answer is cached: with the origin gone, resolution still works ...
    origin.stop().await;
    assert_eq!(
        discovery.resolve(&name("example.test")).await.unwrap(),
        endpoint
    );
    // ... but a resolver without a cache entry cannot discover any more.
    let fresh = WellKnownResolver::new(
        quick_config(pki.client_tls(None)),
        origin_map,
        target.addr.port(),
        Duration::from_secs(3600),
    );
    match fresh.resolve(&name("example.test")).await {
        Err(ResolveError::WellKnown { server, source }) => {
            assert_eq!(server, name("example.test"));
            assert!(
                matches!(*source, TransportError::Network { attempts: 3, .. }),
                "{source:?}"
            );
        }
        other => panic!("expected a discovery failure, got {other:?}"),
    }
    target.stop().await;
}

/// After `.well-known` delegation a request names the delegated server: its URI authority
/// and `Host` header are the name TLS verified, not the origin's (RFC 9110 §7.2, §4.3.4).
#[tokio::test]
async fn after_delegation_the_host_header_and_uri_name_the_delegated_server() {
    let pki = Pki::new();
    let origin = start_with(&pki, "example.test", HUB, |c| {
        c.well_known_domain = name("localhost")
    })
    .await;
    // The delegated server: a real TLS server for "localhost" that records what it is asked.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(pki.server_tls("localhost"));
    // (Host header, request target) of each request.
    type Seen = Vec<(Option<String>, String)>;
    let seen: Arc<std::sync::Mutex<Seen>> = Arc::default();
    let record = seen.clone();
    let answer = Bytes::from(ack(&room(), &name("localhost")).encode().unwrap());
    let target = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, record, answer) = (acceptor.clone(), record.clone(), answer.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let service = hyper::service::service_fn(move |request: Request<_>| {
                    let host = request
                        .headers()
                        .get(hyper::header::HOST)
                        .and_then(|h| h.to_str().ok())
                        .map(str::to_owned);
                    record
                        .lock()
                        .unwrap()
                        .push((host, request.uri().to_string()));
                    let mut response = hyper::Response::new(Full::new(answer.clone()));
                    response
                        .headers_mut()
                        .insert(CONTENT_TYPE, HeaderValue::from_static(OCTET_STREAM));
                    async move { Ok::<_, std::convert::Infallible>(response) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    let discovery = Arc::new(WellKnownResolver::new(
        quick_config(pki.client_tls(None)),
        resolver(&[("example.test", origin.addr)]),
        addr.port(),
        Duration::from_secs(3600),
    ));
    let client = MimiClient::new(quick_config(pki.client_tls(Some(B))), discovery);
    let outcome = client
        .send(&name("example.test"), &event_from("@bob:b.example", 8))
        .await
        .unwrap();
    assert_eq!(outcome.response, Some(ack(&room(), &name("localhost"))));
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let (host, uri) = &seen[0];
    assert_eq!(host.as_deref(), Some("localhost"), "Host header");
    assert!(
        uri == mimi_transport::server::SEND_PATH
            || uri == &format!("https://localhost{}", mimi_transport::server::SEND_PATH),
        "request target {uri}"
    );
    // The origin only answered discovery.
    assert!(origin.handler.sends().is_empty());
    target.abort();
    origin.stop().await;
}

#[tokio::test]
async fn well_known_answer_that_is_not_a_server_name_is_refused() {
    let pki = Pki::new();
    // A plain HTTPS origin (not a MIMI server) answering garbage on .well-known.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(pki.server_tls("example.test"));
    let origin = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let service = hyper::service::service_fn(|_request| async {
                    let mut response =
                        hyper::Response::new(Full::new(Bytes::from_static(b"not a name!\n")));
                    response
                        .headers_mut()
                        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
                    Ok::<_, std::convert::Infallible>(response)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    let discovery = WellKnownResolver::new(
        quick_config(pki.client_tls(None)),
        resolver(&[("example.test", addr)]),
        443,
        Duration::from_secs(3600),
    );
    match discovery.resolve(&name("example.test")).await {
        Err(ResolveError::WellKnown { source, .. }) => assert!(
            matches!(*source, TransportError::InvalidResponse(_)),
            "{source:?}"
        ),
        other => panic!("expected an invalid answer, got {other:?}"),
    }
    origin.abort();
}

// ---------------------------------------------------------------------------------------
// PEM files

#[tokio::test]
async fn configs_load_from_pem_files_and_a_reloaded_ca_still_issues_trusted_certificates() {
    let dir = std::env::temp_dir().join(format!("mimi-transport-pem-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = CertificateAuthority::generate("File CA").unwrap();
    let (ca_cert, ca_key) = ca.write_pem_files(&dir, "ca").unwrap();
    let (hub_cert, hub_key) = ca
        .issue(&name(HUB))
        .unwrap()
        .write_pem_files(&dir, "hub")
        .unwrap();
    assert_eq!(hub_cert, dir.join("hub.crt"));
    assert_eq!(hub_key, dir.join("hub.key"));

    // The hub's side: everything from files, nothing from the feature-gated PKI.
    let roots = tls::certificates_from_pem_file(&ca_cert).unwrap();
    let identity = mimi_transport::Identity::from_pem_files(&hub_cert, &hub_key).unwrap();
    let server_tls = tls::server_config(identity, &roots).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handler = Arc::new(Recorder::new(HUB, HUB));
    let (stop, stopped) = oneshot::channel::<()>();
    let dyn_handler: Arc<dyn Handler> = handler.clone();
    let task = tokio::spawn(serve(
        listener,
        ServerConfig::new(server_tls, name(HUB)),
        dyn_handler,
        async {
            let _ = stopped.await;
        },
    ));

    // A CA reloaded from its PEM files issues b.example's client certificate.
    let reloaded = CertificateAuthority::from_pem(
        &std::fs::read_to_string(&ca_cert).unwrap(),
        &std::fs::read_to_string(&ca_key).unwrap(),
    )
    .unwrap();
    let b_identity = reloaded.issue(&name(B)).unwrap().identity().unwrap();
    let client_tls = tls::client_config(Some(b_identity), &roots).unwrap();
    let client = client_to(client_tls, &[(HUB, addr)]);
    let message = event_from("@bob:b.example", 8);
    client.send(&name(HUB), &message).await.unwrap();
    assert_eq!(handler.sends(), vec![(name(B), message)]);

    stop.send(()).unwrap();
    tokio::time::timeout(TASK_BOUND, task)
        .await
        .unwrap()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn pem_parsing_errors_are_typed() {
    assert!(matches!(
        tls::certificates_from_pem(b"nothing here"),
        Err(mimi_transport::TlsConfigError::NoCertificate)
    ));
    assert!(matches!(
        tls::private_key_from_pem(b"nothing here"),
        Err(mimi_transport::TlsConfigError::NoPrivateKey)
    ));
    assert!(matches!(
        tls::client_config(None, &[]),
        Err(mimi_transport::TlsConfigError::NoTrustAnchor)
    ));
    assert!(matches!(
        mimi_transport::Identity::from_pem_files(
            std::path::Path::new("/nonexistent/cert.pem"),
            std::path::Path::new("/nonexistent/key.pem")
        ),
        Err(mimi_transport::TlsConfigError::Read { .. })
    ));
}

// ---------------------------------------------------------------------------------------
// serve_http: a plain-TLS HttpService on the same accept loop

/// Echoes the body of `POST /echo`; refuses the head of any other path with `415`; words
/// body refusals with their limit. `call` waits at the gate when one is set.
#[derive(Default)]
struct Echo {
    calls: AtomicUsize,
    gate: Mutex<Option<(oneshot::Sender<()>, oneshot::Receiver<()>)>>,
}

#[async_trait]
impl mimi_transport::HttpService for Echo {
    fn check_head(&self, head: &hyper::http::request::Parts) -> Option<hyper::Response<Bytes>> {
        if head.uri.path() == "/echo" {
            return None;
        }
        let mut refusal = hyper::Response::new(Bytes::from_static(b"wrong head"));
        *refusal.status_mut() = StatusCode::UNSUPPORTED_MEDIA_TYPE;
        Some(refusal)
    }

    async fn call(&self, request: Request<Bytes>) -> hyper::Response<Bytes> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let gate = self.gate.lock().await.take();
        if let Some((entered, release)) = gate {
            let _ = entered.send(());
            let _ = release.await;
        }
        hyper::Response::new(request.into_body())
    }

    fn refuse(&self, refusal: mimi_transport::BodyRefusal) -> hyper::Response<Bytes> {
        let (status, text) = match refusal {
            mimi_transport::BodyRefusal::TooLarge { limit } => {
                (StatusCode::PAYLOAD_TOO_LARGE, format!("over {limit}"))
            }
            mimi_transport::BodyRefusal::Timeout => (StatusCode::REQUEST_TIMEOUT, "late".into()),
            mimi_transport::BodyRefusal::Broken => (StatusCode::BAD_REQUEST, "broken".into()),
        };
        let mut response = hyper::Response::new(Bytes::from(text));
        *response.status_mut() = status;
        response
    }
}

struct EchoServer {
    addr: SocketAddr,
    echo: Arc<Echo>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

async fn start_echo(pki: &Pki, max_body: usize) -> EchoServer {
    start_echo_with(pki, max_body, |_| {}).await
}

async fn start_echo_with(
    pki: &Pki,
    max_body: usize,
    tweak: impl FnOnce(&mut mimi_transport::HttpConfig),
) -> EchoServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let identity = pki.ca.issue(&name(HUB)).unwrap().identity().unwrap();
    let tls = tls::server_config_without_client_auth(identity).unwrap();
    let mut config = mimi_transport::HttpConfig::new(tls, max_body);
    config.limits.shutdown_grace = Duration::from_secs(5);
    tweak(&mut config);
    let echo = Arc::new(Echo::default());
    let (stop, stopped) = oneshot::channel::<()>();
    let service: Arc<dyn mimi_transport::HttpService> = echo.clone();
    let task = tokio::spawn(mimi_transport::serve_http(
        listener,
        config,
        service,
        async {
            let _ = stopped.await;
        },
    ));
    EchoServer {
        addr,
        echo,
        stop,
        task,
    }
}

#[tokio::test]
async fn http_service_sees_checked_heads_and_bounded_bodies() {
    let pki = Pki::new();
    let server = start_echo(&pki, 1024).await;
    // Served without a client certificate.
    let (status, _, body) = raw_request(
        server.addr,
        pki.client_tls(None),
        HUB,
        post("/echo", b"hi".to_vec()),
    )
    .await;
    assert_eq!((status, body.as_ref()), (StatusCode::OK, &b"hi"[..]));
    // A refused head never reaches the service.
    let (status, _, body) = raw_request(
        server.addr,
        pki.client_tls(None),
        HUB,
        post("/other", b"hi".to_vec()),
    )
    .await;
    assert_eq!(
        (status, body.as_ref()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, &b"wrong head"[..])
    );
    // A declared length over the limit, and a body at the limit.
    let (status, _, body) = raw_request(
        server.addr,
        pki.client_tls(None),
        HUB,
        post("/echo", vec![1; 1025]),
    )
    .await;
    assert_eq!(
        (status, body.as_ref()),
        (StatusCode::PAYLOAD_TOO_LARGE, &b"over 1024"[..])
    );
    let (status, _, body) = raw_request(
        server.addr,
        pki.client_tls(None),
        HUB,
        post("/echo", vec![1; 1024]),
    )
    .await;
    assert_eq!((status, body.len()), (StatusCode::OK, 1024));
    // A streamed body without a length that goes over the limit.
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let tls_name = rustls::pki_types::ServerName::try_from(HUB.to_string()).unwrap();
    let stream = tokio_rustls::TlsConnector::from(pki.client_tls(None))
        .connect(tls_name, tcp)
        .await
        .unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let (mut tx, body) = http_body_util::channel::Channel::<Bytes>::new(4);
    tokio::spawn(async move {
        for _ in 0..8 {
            if tx.send_data(Bytes::from(vec![0u8; 512])).await.is_err() {
                break;
            }
        }
    });
    let request = Request::post("/echo").body(body).unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(server.echo.calls.load(Ordering::SeqCst), 2);
    let _ = server.stop.send(());
    tokio::time::timeout(TASK_BOUND, server.task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn http_service_drains_in_flight_requests_on_shutdown() {
    let pki = Pki::new();
    let server = start_echo(&pki, 1024).await;
    let (entered_tx, entered_rx) = oneshot::channel();
    let (release_tx, release_rx) = oneshot::channel();
    *server.echo.gate.lock().await = Some((entered_tx, release_rx));
    let addr = server.addr;
    let tls = pki.client_tls(None);
    let in_flight =
        tokio::spawn(
            async move { raw_request(addr, tls, HUB, post("/echo", b"late".to_vec())).await },
        );
    entered_rx.await.unwrap();
    let _ = server.stop.send(());
    until_the_listener_closes(addr).await;
    release_tx.send(()).unwrap();
    let (status, _, body) = in_flight.await.unwrap();
    assert_eq!((status, body.as_ref()), (StatusCode::OK, &b"late"[..]));
    tokio::time::timeout(TASK_BOUND, server.task)
        .await
        .unwrap()
        .unwrap();
}

// ---------------------------------------------------------------------------------------
// Limits on every listener (issue 17, item 1): slow bodies, idle connections, the per-IP
// cap and certificate-less connections on the federation port.

/// Attackers connect from this loopback address, the legitimate client from 127.0.0.1, so
/// the per-address cap keeps them apart.
const ATTACKER_IP: &str = "127.0.0.2";
/// Bound on waiting for a connection the server should close (a hang guard).
const CLOSE_BOUND: Duration = Duration::from_secs(15);

type Tls = tokio_rustls::client::TlsStream<TcpStream>;

/// A TCP connection from `source` (an IP address on the loopback).
async fn tcp_from(source: &str, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source.parse().unwrap(), 0))?;
    socket.connect(addr).await
}

/// A TLS connection from `source`; `Err` when the server closes it during the handshake.
async fn tls_from(
    source: &str,
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
) -> std::io::Result<Tls> {
    let tcp = tcp_from(source, addr).await?;
    let tls_name = rustls::pki_types::ServerName::try_from(HUB.to_string()).unwrap();
    tokio_rustls::TlsConnector::from(tls)
        .connect(tls_name, tcp)
        .await
}

/// Read until the server closes the connection (EOF or an error); what was read.
async fn read_until_closed<R: tokio::io::AsyncRead + Unpin>(reader: &mut R) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut all = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => return all,
            Ok(n) => all.extend_from_slice(&buf[..n]),
        }
    }
}

/// Send a request head announcing a 100,000-byte body, then one byte every second until
/// the server closes the connection; what the server answered and how long it took.
async fn slow_body(mut tls: Tls, path: &str) -> (Vec<u8>, Duration) {
    use tokio::io::AsyncWriteExt;
    let started = std::time::Instant::now();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {HUB}\r\ncontent-type: {OCTET_STREAM}\r\ncontent-length: 100000\r\n\r\n"
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    let (mut reader, mut writer) = tokio::io::split(tls);
    let dribble = tokio::spawn(async move {
        loop {
            if writer.write_all(b"x").await.is_err() || writer.flush().await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let answer = tokio::time::timeout(CLOSE_BOUND, read_until_closed(&mut reader))
        .await
        .expect("the server closes a slow sender's connection");
    dribble.abort();
    (answer, started.elapsed())
}

/// How long after `started` (taken before the connection's handshake began, so that the
/// server's timers all start after it however slow the machine) the server closes an idle
/// connection.
async fn idle_until_closed(mut tls: Tls, started: std::time::Instant) -> Duration {
    tokio::time::timeout(CLOSE_BOUND, read_until_closed(&mut tls))
        .await
        .expect("the server closes an idle connection");
    started.elapsed()
}

/// Legitimate requests from 127.0.0.1 while `attack` runs: each is answered, within a
/// second; returns how many were made.
async fn answered_throughout<F, Fut>(attack: tokio::task::JoinHandle<()>, legit: F) -> usize
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = StatusCode>,
{
    let mut made = 0;
    while !attack.is_finished() {
        let started = std::time::Instant::now();
        let status = tokio::time::timeout(Duration::from_secs(1), legit())
            .await
            .expect("a legitimate request is answered within a second during the attack");
        assert_eq!(status, StatusCode::OK);
        assert!(started.elapsed() < Duration::from_secs(1));
        made += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    attack.await.unwrap();
    made
}

/// Rule TR-LIMIT-1 (docs/protocol-coverage.md): on the federation listener, slow bodies
/// get `408` and are cut off at the body deadline, idle connections (TCP only, or after the
/// handshake) are closed at the idle deadline, and a certified peer is answered within a
/// second throughout.
#[tokio::test]
async fn federation_listener_cuts_off_slow_bodies_and_idle_connections() {
    let pki = Pki::new();
    let server = start_with(&pki, HUB, HUB, |config| {
        config.body_timeout = Duration::from_secs(3);
        config.idle_timeout = Duration::from_secs(2);
        config.header_timeout = Duration::from_secs(2);
        config.handshake_timeout = Duration::from_secs(2);
    })
    .await;
    let addr = server.addr;
    let certified = pki.client_tls(Some(B));
    let attack = {
        let certified = certified.clone();
        tokio::spawn(async move {
            let mut slow = Vec::new();
            let mut idle = Vec::new();
            for _ in 0..4 {
                let tls = tls_from(ATTACKER_IP, addr, certified.clone())
                    .await
                    .unwrap();
                slow.push(tokio::spawn(slow_body(tls, "/send")));
                let started = std::time::Instant::now();
                let tls = tls_from(ATTACKER_IP, addr, certified.clone())
                    .await
                    .unwrap();
                idle.push(tokio::spawn(idle_until_closed(tls, started)));
            }
            let tcp_only = tokio::spawn(async move {
                let mut tcp = tcp_from(ATTACKER_IP, addr).await.unwrap();
                let started = std::time::Instant::now();
                tokio::time::timeout(CLOSE_BOUND, read_until_closed(&mut tcp))
                    .await
                    .expect("a connection that never starts its handshake is closed");
                started.elapsed()
            });
            for task in slow {
                let (answer, took) = task.await.unwrap();
                let answer = String::from_utf8_lossy(&answer);
                assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
                assert!(took < Duration::from_secs(6), "cut off after {took:?}");
            }
            for task in idle {
                let took = task.await.unwrap();
                assert!(took >= Duration::from_millis(1500), "closed after {took:?}");
                assert!(took < Duration::from_secs(5), "closed after {took:?}");
            }
            let took = tcp_only.await.unwrap();
            assert!(took < Duration::from_secs(5), "closed after {took:?}");
        })
    };
    let legit = || {
        let tls = certified.clone();
        async move { raw_request(addr, tls, HUB, get(WELL_KNOWN_PATH)).await.0 }
    };
    let made = answered_throughout(attack, legit).await;
    assert!(made >= 5, "{made} legitimate requests during the attack");
    server.stop().await;
}

/// Rule TR-LIMIT-1 (docs/protocol-coverage.md): the same on a plain-TLS `serve_http`
/// listener (a provider's client API).
#[tokio::test]
async fn http_listener_cuts_off_slow_bodies_and_idle_connections() {
    let pki = Pki::new();
    let server = start_echo_with(&pki, 1 << 20, |config| {
        config.body_timeout = Duration::from_secs(3);
        config.limits.idle_timeout = Duration::from_secs(2);
        config.limits.header_timeout = Duration::from_secs(2);
    })
    .await;
    let addr = server.addr;
    let anonymous = pki.client_tls(None);
    let attack = {
        let anonymous = anonymous.clone();
        tokio::spawn(async move {
            let mut slow = Vec::new();
            let mut idle = Vec::new();
            for _ in 0..4 {
                let tls = tls_from(ATTACKER_IP, addr, anonymous.clone())
                    .await
                    .unwrap();
                slow.push(tokio::spawn(slow_body(tls, "/echo")));
                let started = std::time::Instant::now();
                let tls = tls_from(ATTACKER_IP, addr, anonymous.clone())
                    .await
                    .unwrap();
                idle.push(tokio::spawn(idle_until_closed(tls, started)));
            }
            for task in slow {
                let (answer, took) = task.await.unwrap();
                let answer = String::from_utf8_lossy(&answer);
                assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
                assert!(took < Duration::from_secs(6), "cut off after {took:?}");
            }
            for task in idle {
                let took = task.await.unwrap();
                assert!(took >= Duration::from_millis(1500), "closed after {took:?}");
                assert!(took < Duration::from_secs(5), "closed after {took:?}");
            }
        })
    };
    let legit = || {
        let tls = anonymous.clone();
        async move {
            raw_request(addr, tls, HUB, post("/echo", b"hello".to_vec()))
                .await
                .0
        }
    };
    let made = answered_throughout(attack, legit).await;
    assert!(made >= 5, "{made} legitimate requests during the attack");
    let _ = server.stop.send(());
    tokio::time::timeout(TASK_BOUND, server.task)
        .await
        .unwrap()
        .unwrap();
}

/// Rule TR-LIMIT-1 (docs/protocol-coverage.md): connections over the per-address cap are
/// closed before their handshake, other addresses are served, and a freed place is
/// usable again.
#[tokio::test]
async fn connections_over_the_per_address_cap_are_closed_before_the_handshake() {
    let pki = Pki::new();
    let server = start_with(&pki, HUB, HUB, |config| {
        config.max_connections_per_ip = 3;
    })
    .await;
    let certified = pki.client_tls(Some(B));
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(
            tls_from(ATTACKER_IP, server.addr, certified.clone())
                .await
                .unwrap(),
        );
    }
    for _ in 0..3 {
        assert!(
            tls_from(ATTACKER_IP, server.addr, certified.clone())
                .await
                .is_err(),
            "a fourth connection from one address is closed"
        );
    }
    let (status, _, _) =
        raw_request(server.addr, certified.clone(), HUB, get(WELL_KNOWN_PATH)).await;
    assert_eq!(status, StatusCode::OK, "another address is served");
    // Close one connection and wait until the server has closed its side: it gives the
    // address's place back in the same step (the test runtime has one thread, so that step
    // is over before this task reads the end of the stream).
    let mut closing = held.pop().unwrap();
    tokio::io::AsyncWriteExt::shutdown(&mut closing)
        .await
        .unwrap();
    tokio::time::timeout(CLOSE_BOUND, read_until_closed(&mut closing))
        .await
        .expect("the server closes its side");
    assert!(
        tls_from(ATTACKER_IP, server.addr, certified.clone())
            .await
            .is_ok(),
        "the freed place is usable"
    );
    server.stop().await;
}

/// Rule TR-LIMIT-2 (docs/protocol-coverage.md): on the federation port a connection
/// without a client certificate gets one `.well-known` answer and is closed; one that
/// sends nothing is closed at the anonymous deadline, while a certified idle connection
/// stays open.
#[tokio::test]
async fn certificate_less_federation_connections_are_closed_promptly() {
    use tokio::io::AsyncWriteExt;
    let pki = Pki::new();
    let server = start_with(&pki, HUB, HUB, |config| {
        config.anonymous_timeout = Duration::from_millis(500);
    })
    .await;
    let anonymous = pki.client_tls(None);

    // Silent: closed at the anonymous deadline, long before the idle one.
    let started = std::time::Instant::now();
    let silent = tls_from("127.0.0.1", server.addr, anonymous.clone())
        .await
        .unwrap();
    let took = idle_until_closed(silent, started).await;
    assert!(took < Duration::from_secs(3), "closed after {took:?}");

    // `.well-known` is answered, then the connection is closed (a second request on it
    // gets nothing).
    let mut tls = tls_from("127.0.0.1", server.addr, anonymous.clone())
        .await
        .unwrap();
    let request = format!("GET {WELL_KNOWN_PATH} HTTP/1.1\r\nhost: {HUB}\r\n\r\n");
    tls.write_all(format!("{request}{request}").as_bytes())
        .await
        .unwrap();
    let answer = tokio::time::timeout(CLOSE_BOUND, read_until_closed(&mut tls))
        .await
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(answer.matches("HTTP/1.1").count(), 1, "{answer}");
    assert!(answer.ends_with(HUB), "{answer}");

    // Any other endpoint: 403, then closed.
    let mut tls = tls_from("127.0.0.1", server.addr, anonymous.clone())
        .await
        .unwrap();
    tls.write_all(
        format!("POST /send HTTP/1.1\r\nhost: {HUB}\r\ncontent-length: 4\r\n\r\nabcd").as_bytes(),
    )
    .await
    .unwrap();
    let answer = tokio::time::timeout(CLOSE_BOUND, read_until_closed(&mut tls))
        .await
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");

    // A certified connection idle for longer than the anonymous deadline is still served.
    let certified = tls_from("127.0.0.1", server.addr, pki.client_tls(Some(B)))
        .await
        .unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(certified))
        .await
        .unwrap();
    tokio::spawn(connection);
    // Until the anonymous deadline has passed for the certified connection: a silent
    // anonymous connection opened after it is closed at that deadline.
    let started = std::time::Instant::now();
    let later = tls_from("127.0.0.1", server.addr, anonymous.clone())
        .await
        .unwrap();
    idle_until_closed(later, started).await;
    let response = sender.send_request(get(WELL_KNOWN_PATH)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    server.stop().await;
}

/// Rule TR-LIMIT-1 (docs/protocol-coverage.md): a kept-alive connection serves requests
/// one after another and is closed once it has waited `idle_timeout` for the next one.
#[tokio::test]
async fn kept_alive_connections_are_closed_after_the_idle_timeout() {
    let pki = Pki::new();
    let server = start_with(&pki, HUB, HUB, |config| {
        config.idle_timeout = Duration::from_secs(1);
    })
    .await;
    let tls = tls_from("127.0.0.1", server.addr, pki.client_tls(Some(B)))
        .await
        .unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    let mut last_sent = std::time::Instant::now();
    for i in 0..3 {
        if i > 0 {
            // Pauses shorter than the idle timeout keep the connection.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        // The server's idle wait starts after it answers this request, so after this
        // instant: however slow the machine, it cannot close sooner than the idle timeout
        // after it.
        last_sent = std::time::Instant::now();
        let response = sender.send_request(get(WELL_KNOWN_PATH)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.into_body().collect().await.unwrap();
    }
    tokio::time::timeout(CLOSE_BOUND, connection)
        .await
        .expect("the server closes the idle connection")
        .unwrap()
        .unwrap();
    let took = last_sent.elapsed();
    assert!(took >= Duration::from_secs(1), "closed after {took:?}");
    assert!(took < Duration::from_secs(4), "closed after {took:?}");
    server.stop().await;
}
