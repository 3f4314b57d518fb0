//! The client API as served on the transport's server: real TLS on 127.0.0.1, the
//! `mimi-client-api` types on the wire, the body limit (413 `too_large`), the content-type
//! check (415) and server-only TLS (no client certificate asked for).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, StatusCode};
use mimi_client_api::{
    Endpoint, EndpointResponse, Error, ErrorBody, ErrorCode, MAX_JSON_BODY, MAX_REQUEST_BODY,
    register, room_state,
};
use mimi_transport::tls;
use rustls::client::ResolvesClientCert;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::world::{A, World, raw_request};

/// A provider's client API on its own port, stopped when dropped.
pub struct Api {
    pub addr: SocketAddr,
    server: &'static str,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Api {
    pub async fn start(world: &World) -> Api {
        Api::start_for(world, A).await
    }

    /// The client API of the provider `server` of the world.
    pub async fn start_for(world: &World, server: &'static str) -> Api {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let tls = tls::server_config_without_client_auth(world.pki.identity(server)).unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(mimi_hub::api::serve(
            listener,
            tls,
            world.provider(server),
            async {
                let _ = stopped.await;
            },
        ));
        Api {
            addr,
            server,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }

    pub async fn send(&self, world: &World, request: Request<Full<Bytes>>) -> (StatusCode, Bytes) {
        raw_request(self.addr, world.pki.client_tls(None), self.server, request)
            .await
            .unwrap()
    }

    /// [`Api::send`] from the loopback address `source` (e.g. `127.0.0.2`).
    pub async fn send_from(
        &self,
        world: &World,
        source: &str,
        request: Request<Full<Bytes>>,
    ) -> (StatusCode, Bytes) {
        crate::world::raw_request_from(
            Some(source.parse().unwrap()),
            self.addr,
            world.pki.client_tls(None),
            A,
            request,
        )
        .await
        .unwrap()
    }
}

pub fn to_hyper(request: hyper::http::Request<Vec<u8>>) -> Request<Full<Bytes>> {
    request.map(|body| Full::new(Bytes::from(body)))
}

pub fn error_body(body: &Bytes) -> ErrorBody {
    let error = Error::from_http_response(&hyper::Response::new(body)).unwrap();
    ErrorBody {
        error: error.code,
        detail: error.detail,
    }
}

#[tokio::test]
async fn typed_requests_are_answered_on_the_transport_server() {
    let world = World::start(&[A]).await;
    let api = Api::start(&world).await;
    let request = register::Request {
        localpart: "alice".into(),
        device: "laptop".into(),
        ..register::Request::default()
    };
    let (status, body) = api
        .send(
            &world,
            to_hyper(request.try_into_http_request(None).unwrap()),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let registered =
        register::Response::try_from_http_response(&hyper::Response::new(body)).unwrap();
    assert_eq!(registered.user_id.as_str(), "@alice:a.example");

    // Without a token: 401 with the error body.
    let unknown = room_state::Request {
        room: "!nothing:a.example".parse().unwrap(),
    };
    let (status, body) = api
        .send(
            &world,
            to_hyper(unknown.try_into_http_request(None).unwrap()),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_body(&body).error, ErrorCode::Unauthorized);
    // An unknown path: 404 not_found.
    let (status, body) = api
        .send(
            &world,
            Request::get("/v2/nothing")
                .header("host", A)
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_body(&body).error, ErrorCode::NotFound);
    api.shutdown().await;
    world.shutdown().await;
}

#[tokio::test]
async fn an_oversize_body_is_413_too_large() {
    let world = World::start(&[A]).await;
    let api = Api::start(&world).await;
    let oversize = vec![b' '; MAX_REQUEST_BODY + 1];
    let (status, body) = api
        .send(
            &world,
            Request::post("/v1/register")
                .header("host", A)
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(oversize)))
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let error = error_body(&body);
    assert_eq!(error.error, ErrorCode::TooLarge);
    assert!(error.detail.contains(&MAX_REQUEST_BODY.to_string()));
    // A TLS-encoded event of exactly the limit is read (and then judged: no token, 401).
    let at_limit = vec![0u8; MAX_REQUEST_BODY];
    let (status, body) = api
        .send(
            &world,
            Request::post("/v1/rooms/%21r%3Aa.example/events")
                .header("host", A)
                .header("content-type", "application/octet-stream")
                .body(Full::new(Bytes::from(at_limit)))
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_body(&body).error, ErrorCode::Unauthorized);
    // A JSON body is held to MAX_JSON_BODY: one of exactly that is read (and judged as
    // JSON: 400 malformed), one byte more is 413.
    for (len, expected) in [
        (MAX_JSON_BODY, StatusCode::BAD_REQUEST),
        (MAX_JSON_BODY + 1, StatusCode::PAYLOAD_TOO_LARGE),
    ] {
        let (status, _) = api
            .send(
                &world,
                Request::post("/v1/register")
                    .header("host", A)
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(vec![b' '; len])))
                    .unwrap(),
            )
            .await;
        assert_eq!(status, expected, "{len} bytes");
    }
    api.shutdown().await;
    world.shutdown().await;
}

#[tokio::test]
async fn a_wrong_content_type_is_415() {
    let world = World::start(&[A]).await;
    let api = Api::start(&world).await;
    for (path, content_type) in [
        ("/v1/register", "text/plain"),
        ("/v1/register", "application/octet-stream"),
        ("/v1/rooms/%21r%3Aa.example/events", "application/json"),
    ] {
        let (status, body) = api
            .send(
                &world,
                Request::post(path)
                    .header("host", A)
                    .header("content-type", content_type)
                    .body(Full::new(Bytes::from_static(b"{}")))
                    .unwrap(),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{path} {content_type}"
        );
        assert_eq!(error_body(&body).error, ErrorCode::UnsupportedMediaType);
    }
    api.shutdown().await;
    world.shutdown().await;
}

/// A client certificate resolver that records whether the server asked for a certificate
/// (rustls asks it only on a `CertificateRequest`) and offers none.
#[derive(Debug, Default)]
struct AskedForCertificate(AtomicBool);

impl ResolvesClientCert for AskedForCertificate {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.0.store(true, Ordering::SeqCst);
        None
    }

    fn has_certs(&self) -> bool {
        true
    }
}

async fn asks_for_a_certificate(world: &World, addr: SocketAddr) -> bool {
    let mut roots = rustls::RootCertStore::empty();
    for root in world.pki.roots() {
        roots.add(root.clone()).unwrap();
    }
    let recorder = Arc::new(AskedForCertificate::default());
    let config = rustls::ClientConfig::builder_with_provider(tls::crypto_provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_cert_resolver(recorder.clone());
    let request = Request::get("/v1/inbox")
        .header("host", A)
        .body(Full::new(Bytes::new()))
        .unwrap();
    raw_request(addr, Arc::new(config), A, request)
        .await
        .unwrap();
    recorder.0.load(Ordering::SeqCst)
}

#[tokio::test]
async fn the_client_api_asks_for_no_client_certificate() {
    let world = World::start(&[A]).await;
    let api = Api::start(&world).await;
    assert!(!asks_for_a_certificate(&world, api.addr).await);
    // The federation port does ask (so the recorder can tell).
    assert!(asks_for_a_certificate(&world, world.addr(A)).await);
    api.shutdown().await;
    world.shutdown().await;
}
