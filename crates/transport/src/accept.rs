//! The one accept loop of every HTTPS listener, and the plain-TLS HTTP service entry point.
//!
//! [`serve_connections`] accepts TCP connections up to a cap, runs each TLS handshake
//! within a deadline, serves HTTP/1.1 with a header deadline and a write deadline, and on
//! shutdown stops accepting, closes idle connections and gives requests in flight a grace
//! period. It serves any hyper service, made per connection from what the connection is
//! ([`Connection`]: the remote address and the verified client certificates). The MIMI
//! endpoints ([`crate::serve`], mutual TLS) and [`serve_http`] (server-authenticated TLS,
//! for a provider's client API) both run on it.
//!
//! [`serve_http`] adds what every request of an [`HttpService`] gets before the service
//! sees it: a look at the head ([`HttpService::check_head`], say `415` for a content type
//! the endpoint does not take), and the body read within [`HttpConfig::max_body`] (`413`)
//! and [`HttpConfig::body_timeout`]; the service words the refusals
//! ([`HttpService::refuse`]).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::CONTENT_LENGTH;
use hyper::server::conn::http1;
use hyper::service::{Service, service_fn};
use hyper::{HeaderMap, Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::pki_types::CertificateDer;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::io::WriteDeadline;

/// Default bound on the TLS handshake of an accepted connection.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default bound on receiving a request's headers (also bounds an idle kept-alive
/// connection).
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// Default bound on receiving a request's body.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(60);
/// Default bound on a write to a peer that has stopped reading.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time in-flight requests get to finish after shutdown starts.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Default number of connections served at once; further connections wait in the
/// listener's backlog.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Pause after a failed `accept` (for example when out of file descriptors).
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// The limits of the accept loop and of each connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Bound on the TLS handshake.
    pub handshake_timeout: Duration,
    /// Bound on receiving request headers (and on an idle kept-alive connection).
    pub header_timeout: Duration,
    /// Bound on a write that makes no progress (a peer that stopped reading).
    pub write_timeout: Duration,
    /// Time in-flight requests get after shutdown starts.
    pub shutdown_grace: Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// What a connection is, once its TLS handshake is done.
#[derive(Debug, Clone, Copy)]
pub struct Connection<'a> {
    /// The remote address.
    pub remote: SocketAddr,
    /// The client's certificate chain (verified by the TLS configuration), if it sent one.
    pub peer_certificates: Option<&'a [CertificateDer<'static>]>,
}

/// The body type of every answer.
pub type ResponseBody = Full<Bytes>;

/// Serve HTTP/1.1 over TLS on `listener` until `shutdown` completes: each connection gets
/// the service `make_service` makes for it.
///
/// At most [`ConnectionLimits::max_connections`] connections are served at once (further
/// ones wait in the listener's backlog). On shutdown the listener is closed at once, idle
/// connections are closed, and requests in flight get [`ConnectionLimits::shutdown_grace`]
/// to finish before their connections are dropped. Returns when every connection is gone.
pub async fn serve_connections<M, S>(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    limits: ConnectionLimits,
    make_service: M,
    shutdown: impl Future<Output = ()>,
) where
    M: Fn(&Connection<'_>) -> S + Send + Sync + 'static,
    S: Service<Request<Incoming>, Response = Response<ResponseBody>, Error = Infallible>
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let acceptor = TlsAcceptor::from(tls);
    let cap = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let make_service = Arc::new(make_service);
    let (stop_tx, stop_rx) = watch::channel(());
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);

    loop {
        while connections.try_join_next().is_some() {}
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = cap.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (tcp, remote) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
        };
        tracing::debug!(%remote, "connection accepted");
        let acceptor = acceptor.clone();
        let make_service = make_service.clone();
        let stop = stop_rx.clone();
        connections.spawn(async move {
            serve_connection(tcp, remote, acceptor, limits, &*make_service, stop).await;
            drop(permit);
        });
    }

    drop(listener);
    drop(stop_tx);
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("shutdown grace expired; dropping connections still open");
        connections.shutdown().await;
    }
}

/// Rule TR-TIME-1 (docs/protocol-coverage.md).
async fn serve_connection<M, S>(
    tcp: tokio::net::TcpStream,
    remote: SocketAddr,
    acceptor: TlsAcceptor,
    limits: ConnectionLimits,
    make_service: &M,
    mut stop: watch::Receiver<()>,
) where
    M: Fn(&Connection<'_>) -> S,
    S: Service<Request<Incoming>, Response = Response<ResponseBody>, Error = Infallible>,
    S::Future: Send + 'static,
{
    let handshake = tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp));
    let tls = tokio::select! {
        result = handshake => match result {
            Ok(Ok(tls)) => tls,
            Ok(Err(error)) => {
                tracing::debug!(%remote, %error, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%remote, "TLS handshake timed out");
                return;
            }
        },
        _ = stop.changed() => return,
    };
    let service = make_service(&Connection {
        remote,
        peer_certificates: tls.get_ref().1.peer_certificates(),
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true)
        .serve_connection(
            TokioIo::new(WriteDeadline::new(tls, limits.write_timeout)),
            service,
        );
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%remote, %error, "connection ended with an error");
            }
            return;
        }
        _ = stop.changed() => {}
    }
    connection.as_mut().graceful_shutdown();
    if let Err(error) = connection.await {
        tracing::debug!(%remote, %error, "connection ended with an error during shutdown");
    }
}

/// Why a request's body was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyRefusal {
    /// Over the limit (declared in `Content-Length`, or found while reading): `413`.
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// Not received within the body timeout: `408`.
    Timeout,
    /// The body could not be read (a broken chunked encoding, a reset): `400`.
    Broken,
}

/// Read a request body within `max` bytes and `timeout`.
///
/// Rules TR-BODY-2, HUB-LIMIT-1 (docs/protocol-coverage.md).
pub(crate) async fn read_body(
    headers: &HeaderMap,
    body: Incoming,
    max: usize,
    timeout: Duration,
) -> Result<Bytes, BodyRefusal> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = BodyRefusal::TooLarge { limit: max };
    if declared.is_some_and(|len| len > max as u64) {
        return Err(too_large);
    }
    let limited = Limited::new(body, max);
    match tokio::time::timeout(timeout, limited.collect()).await {
        Err(_) => Err(BodyRefusal::Timeout),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large),
        Ok(Err(_)) => Err(BodyRefusal::Broken),
    }
}

/// An HTTP service behind [`serve_http`]: it sees requests whose head it accepted and whose
/// body was read within the limits.
#[async_trait]
pub trait HttpService: Send + Sync {
    /// Look at a request's head before its body is read; `Some` is the answer, given at
    /// once (an unknown path, a content type the endpoint does not take).
    fn check_head(&self, head: &hyper::http::request::Parts) -> Option<Response<Bytes>>;
    /// Answer a request.
    async fn call(&self, request: Request<Bytes>) -> Response<Bytes>;
    /// The answer to a request whose body was not read.
    fn refuse(&self, refusal: BodyRefusal) -> Response<Bytes>;
}

/// The configuration of [`serve_http`].
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// The rustls configuration; for a service that takes no client certificate, one that
    /// requests none (see [`crate::tls::server_config_without_client_auth`]).
    pub tls: Arc<rustls::ServerConfig>,
    /// Largest request body read; a larger one is refused with [`BodyRefusal::TooLarge`].
    pub max_body: usize,
    /// Bound on receiving a request body.
    pub body_timeout: Duration,
    /// The accept loop's and connections' limits.
    pub limits: ConnectionLimits,
}

impl HttpConfig {
    /// A configuration with the default limits and a body limit of `max_body` bytes.
    pub fn new(tls: Arc<rustls::ServerConfig>, max_body: usize) -> Self {
        HttpConfig {
            tls,
            max_body,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            limits: ConnectionLimits::default(),
        }
    }
}

/// Serve `service` over TLS on `listener` until `shutdown` completes, on the accept loop of
/// [`serve_connections`] (its connection cap, timeouts and graceful drain): each request's
/// head goes to [`HttpService::check_head`], its body is read within
/// [`HttpConfig::max_body`] and [`HttpConfig::body_timeout`] (else
/// [`HttpService::refuse`] answers), then [`HttpService::call`] answers.
///
/// Rule HUB-API-2 (docs/protocol-coverage.md).
pub async fn serve_http(
    listener: TcpListener,
    config: HttpConfig,
    service: Arc<dyn HttpService>,
    shutdown: impl Future<Output = ()>,
) {
    let max_body = config.max_body;
    let body_timeout = config.body_timeout;
    let make_service = move |_: &Connection<'_>| {
        let service = service.clone();
        service_fn(move |request: Request<Incoming>| {
            let service = service.clone();
            async move {
                let answer = answer(&*service, request, max_body, body_timeout).await;
                Ok::<_, Infallible>(answer.map(Full::new))
            }
        })
    };
    serve_connections(listener, config.tls, config.limits, make_service, shutdown).await;
}

async fn answer(
    service: &dyn HttpService,
    request: Request<Incoming>,
    max_body: usize,
    body_timeout: Duration,
) -> Response<Bytes> {
    let (head, body) = request.into_parts();
    if let Some(response) = service.check_head(&head) {
        return response;
    }
    match read_body(&head.headers, body, max_body, body_timeout).await {
        Ok(bytes) => service.call(Request::from_parts(head, bytes)).await,
        Err(refusal) => service.refuse(refusal),
    }
}
