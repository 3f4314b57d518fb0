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

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONNECTION, CONTENT_LENGTH, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::{Service, service_fn};
use hyper::{HeaderMap, Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::pki_types::CertificateDer;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::io::{Activity, ReadActivity, WriteDeadline};

/// Default bound on the TLS handshake of an accepted connection.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Default bound on receiving a request's head, from its first byte.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time a connection may wait for a request (after its handshake, and between
/// requests on a kept-alive connection) before it is closed. Above the client's
/// `DEFAULT_POOL_IDLE_TIMEOUT`, so a pool drops its idle connections first.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default bound on receiving a request's whole body.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// Default bound on a write to a peer that has stopped reading.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time in-flight requests get to finish after shutdown starts.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Default number of connections served at once; a connection over it is closed at once.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Default number of connections served at once from one IP address; a connection over
/// it is closed at once, before its TLS handshake. Above the outbox's concurrency towards one
/// destination (32 rooms × 4 events in flight, over two pooled clients): a peer provider
/// delivering at full speed must never meet it.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 512;
/// Default bound on the whole of a restricted connection ([`ConnectionMode::OneRequest`]:
/// on the federation port, one without a valid client certificate): its one request head
/// and answer.
pub const DEFAULT_ANONYMOUS_TIMEOUT: Duration = Duration::from_secs(2);
/// First pause after a failed `accept` (for example out of file descriptors, `EMFILE`);
/// it doubles with each further failure up to [`ACCEPT_BACKOFF_MAX`].
pub const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
/// Longest pause after failed `accept`s in a row.
pub const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// At most one log line per this interval for failed `accept`s, and one for connections
/// refused over a cap (each line counts the ones not logged).
pub const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The limits of the accept loop and of each connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Bound on the TLS handshake.
    pub handshake_timeout: Duration,
    /// Bound on receiving a request head, from its first byte.
    pub header_timeout: Duration,
    /// Time a connection may wait for a request before it is closed.
    pub idle_timeout: Duration,
    /// Bound on a write that makes no progress (a peer that stopped reading).
    pub write_timeout: Duration,
    /// Time in-flight requests get after shutdown starts.
    pub shutdown_grace: Duration,
    /// Connections served at once; one over it is closed right after `accept`.
    pub max_connections: usize,
    /// Connections served at once from one IP address; one over it is closed right after
    /// `accept`, before its handshake.
    pub max_connections_per_ip: usize,
    /// Bound on the whole of a [`ConnectionMode::OneRequest`] connection after its
    /// handshake.
    pub anonymous_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            anonymous_timeout: DEFAULT_ANONYMOUS_TIMEOUT,
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

/// How a connection is served, as the service maker decides from its [`Connection`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionMode {
    /// Requests one after another, kept alive within the idle timeout.
    KeepAlive,
    /// One request, no keep-alive, the whole within
    /// [`ConnectionLimits::anonymous_timeout`]; then the connection is closed.
    OneRequest,
}

/// The body type of every answer.
pub type ResponseBody = Full<Bytes>;

/// At most one log line per interval; the line counts the events not logged before it.
#[derive(Debug)]
pub struct LogLimiter {
    interval: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl LogLimiter {
    /// A limiter allowing one line per `interval`.
    pub fn new(interval: Duration) -> Self {
        LogLimiter {
            interval,
            last: None,
            suppressed: 0,
        }
    }

    /// An event at `now`: `Some(n)` when a line is to be written (`n` events went unlogged
    /// since the last line), `None` when it is counted only.
    pub fn event(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.saturating_duration_since(last) < self.interval => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

/// The count of connections per IP address, and the cap on it.
struct PerIp {
    max: usize,
    counts: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's place in [`PerIp`], given back on drop.
struct IpSlot {
    per_ip: Arc<PerIp>,
    ip: IpAddr,
}

impl PerIp {
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(ip).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(IpSlot {
            per_ip: self.clone(),
            ip,
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut counts = self
            .per_ip
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// Serve HTTP/1.1 over TLS on `listener` until `shutdown` completes: each connection gets
/// the service `make_service` makes for it, served in the mode it names.
///
/// Right after `accept`, before the TLS handshake, a connection over
/// [`ConnectionLimits::max_connections`] or over
/// [`ConnectionLimits::max_connections_per_ip`] from its address is closed (a
/// rate-limited log line counts them). A failed `accept` (`EMFILE`, `ENFILE`) pauses the
/// loop with a doubling back-off from [`ACCEPT_BACKOFF_MIN`] to [`ACCEPT_BACKOFF_MAX`] and
/// logs at most one line per [`REFUSAL_LOG_INTERVAL`]. Each connection then has its
/// handshake, idle, head and write deadlines ([`ConnectionLimits`]). On shutdown the
/// listener is closed at once, idle connections are closed, and requests in flight get
/// [`ConnectionLimits::shutdown_grace`] to finish before their connections are dropped.
/// Returns when every connection is gone.
///
/// Rule TR-LIMIT-1 (docs/protocol-coverage.md).
pub async fn serve_connections<M, S>(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    limits: ConnectionLimits,
    make_service: M,
    shutdown: impl Future<Output = ()>,
) where
    M: Fn(&Connection<'_>) -> (S, ConnectionMode) + Send + Sync + 'static,
    S: Service<Request<Incoming>, Response = Response<ResponseBody>, Error = Infallible>
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let acceptor = TlsAcceptor::from(tls);
    let cap = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let per_ip = Arc::new(PerIp {
        max: limits.max_connections_per_ip.max(1),
        counts: Mutex::new(HashMap::new()),
    });
    let make_service = Arc::new(make_service);
    let (stop_tx, stop_rx) = watch::channel(());
    let mut connections = JoinSet::new();
    let mut accept_log = LogLimiter::new(REFUSAL_LOG_INTERVAL);
    let mut refusal_log = LogLimiter::new(REFUSAL_LOG_INTERVAL);
    let mut backoff = ACCEPT_BACKOFF_MIN;
    tokio::pin!(shutdown);

    loop {
        while connections.try_join_next().is_some() {}
        let (tcp, remote) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => {
                    backoff = ACCEPT_BACKOFF_MIN;
                    accepted
                }
                Err(error) => {
                    if let Some(unlogged) = accept_log.event(Instant::now()) {
                        tracing::warn!(
                            %error,
                            unlogged,
                            pause_ms = backoff.as_millis() as u64,
                            "accept failed; pausing the listener"
                        );
                    }
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                    continue;
                }
            },
        };
        let Ok(permit) = cap.clone().try_acquire_owned() else {
            if let Some(unlogged) = refusal_log.event(Instant::now()) {
                tracing::warn!(%remote, unlogged, "connection refused: at the connection cap");
            }
            drop(tcp);
            continue;
        };
        let Some(slot) = per_ip.admit(remote.ip()) else {
            if let Some(unlogged) = refusal_log.event(Instant::now()) {
                tracing::warn!(%remote, unlogged, "connection refused: at the per-address cap");
            }
            drop(tcp);
            continue;
        };
        tracing::debug!(%remote, "connection accepted");
        let acceptor = acceptor.clone();
        let make_service = make_service.clone();
        let stop = stop_rx.clone();
        connections.spawn(async move {
            serve_connection(tcp, remote, acceptor, limits, &*make_service, stop).await;
            drop(slot);
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

/// A service that tells the connection's [`Activity`] when a request starts and ends.
struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

/// Ends a request in its [`Activity`] when dropped (answered or abandoned).
struct RequestGuard(Arc<Activity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.request_ended();
    }
}

impl<S> Service<Request<Incoming>> for Tracked<S>
where
    S: Service<Request<Incoming>, Response = Response<ResponseBody>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        self.activity.request_started();
        let guard = RequestGuard(self.activity.clone());
        let answer = self.inner.call(request);
        Box::pin(async move {
            let answer = answer.await;
            drop(guard);
            answer
        })
    }
}

/// Which deadline a connection is under, from its activity.
enum Watch {
    /// Waiting for a request: closed gracefully when the idle timeout passes.
    Idle,
    /// Receiving a head: dropped when the head timeout passes.
    Head,
    /// Serving: the body and write deadlines apply, no connection-level one.
    Busy,
}

/// Rules TR-TIME-1, TR-LIMIT-1 (docs/protocol-coverage.md).
async fn serve_connection<M, S>(
    tcp: tokio::net::TcpStream,
    remote: SocketAddr,
    acceptor: TlsAcceptor,
    limits: ConnectionLimits,
    make_service: &M,
    mut stop: watch::Receiver<()>,
) where
    M: Fn(&Connection<'_>) -> (S, ConnectionMode),
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
    let (service, mode) = make_service(&Connection {
        remote,
        peer_certificates: tls.get_ref().1.peer_certificates(),
    });
    let activity = Arc::new(Activity::default());
    let service = Tracked {
        inner: service,
        activity: activity.clone(),
    };
    let io = WriteDeadline::new(
        ReadActivity::new(tls, activity.clone()),
        limits.write_timeout,
    );
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        // The head deadline is the watchdog's below (hyper's would also count idle time).
        .header_read_timeout(None)
        .keep_alive(mode == ConnectionMode::KeepAlive)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    let whole = tokio::time::sleep(limits.anonymous_timeout);
    tokio::pin!(whole);
    let restricted = mode == ConnectionMode::OneRequest;
    loop {
        let changed = activity.changed();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let (watch, deadline) = match activity.phase() {
            Activity::IDLE => (Watch::Idle, Some(limits.idle_timeout)),
            Activity::HEAD => (Watch::Head, Some(limits.header_timeout)),
            _ => (Watch::Busy, None),
        };
        let expiry = tokio::time::sleep(deadline.unwrap_or(Duration::MAX / 4));
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%remote, %error, "connection ended with an error");
                }
                return;
            }
            _ = stop.changed() => break,
            () = &mut changed => continue,
            () = &mut whole, if restricted => {
                tracing::debug!(%remote, "restricted connection over its deadline; closed");
                return;
            }
            () = expiry, if deadline.is_some() => match watch {
                Watch::Idle => {
                    tracing::debug!(%remote, "idle connection closed");
                    break;
                }
                _ => {
                    tracing::debug!(%remote, "request head not received in time; closed");
                    return;
                }
            },
        }
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

/// The remote address of the connection a request came on: [`serve_http`] puts it in every
/// request's extensions, for services that limit per source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteAddr(pub SocketAddr);

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
/// [`HttpService::refuse`] answers), then [`HttpService::call`] answers. Each request
/// carries its connection's [`RemoteAddr`] in its extensions.
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
    let make_service = move |connection: &Connection<'_>| {
        let service = service.clone();
        let remote = RemoteAddr(connection.remote);
        let served = service_fn(move |mut request: Request<Incoming>| {
            let service = service.clone();
            request.extensions_mut().insert(remote);
            async move {
                let answer = answer(&*service, request, max_body, body_timeout).await;
                Ok::<_, Infallible>(answer.map(Full::new))
            }
        });
        (served, ConnectionMode::KeepAlive)
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
        Err(refusal) => close_after(service.refuse(refusal)),
    }
}

/// Mark an answer as the connection's last: after a body that was not read (too large,
/// too slow, broken) the connection is closed rather than kept alive.
pub(crate) fn close_after<B>(mut response: Response<B>) -> Response<B> {
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A burst of failed `accept`s (2,066 in issue 17) gives one line per interval, and the
    /// next line counts the ones not logged.
    #[test]
    fn the_log_limiter_writes_one_line_per_interval_and_counts_the_rest() {
        let mut limiter = LogLimiter::new(Duration::from_secs(10));
        let start = Instant::now();
        assert_eq!(limiter.event(start), Some(0));
        let logged = (1..2066u64)
            .filter(|ms| limiter.event(start + Duration::from_millis(*ms)).is_some())
            .count();
        assert_eq!(logged, 0);
        assert_eq!(limiter.event(start + Duration::from_secs(10)), Some(2065));
        assert_eq!(limiter.event(start + Duration::from_secs(11)), None);
        assert_eq!(limiter.event(start + Duration::from_secs(20)), Some(1));
    }

    #[test]
    fn per_ip_slots_are_capped_and_given_back() {
        let per_ip = Arc::new(PerIp {
            max: 2,
            counts: Mutex::new(HashMap::new()),
        });
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = per_ip.admit(a).unwrap();
        let _second = per_ip.admit(a).unwrap();
        assert!(per_ip.admit(a).is_none());
        assert!(per_ip.admit(b).is_some());
        drop(first);
        assert!(per_ip.admit(a).is_some());
    }
}
