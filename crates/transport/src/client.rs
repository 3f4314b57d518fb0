//! The HTTPS client: [`MimiClient`] talks to other servers' endpoints.
//!
//! Connections are pooled per server name (hyper-util's client over a small rustls
//! connector that asks a [`Resolver`]) and kept alive for reuse. Every attempt is bounded
//! (connect + handshake, then request + response), the whole operation is bounded, and
//! transient failures (network errors, connect/request timeouts, `502`/`503`/`504`) are
//! retried with capped exponential backoff and full jitter ([`RetryPolicy`]). A refusal
//! (`400`, `403`, `413`, ...) is never retried.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use mimi_codec::{
    CheckInviteRequest, CodecError, EventError, IdentifierRequest, IdentifierResponse, MimiMessage,
    ServerName, Wire, limits::MAX_MESSAGE_LEN,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::backoff::{Jitter, RandomJitter, RetryPolicy};
use crate::body::decode_error_body;
use crate::error::{BoxError, TimeoutStage, TransportError};
use crate::resolve::{ResolveError, Resolver};
use crate::server::{
    CHECK_INVITE_PATH, IDENTIFIER_DISCOVERY_PREFIX, OCTET_STREAM, SEND_PATH, WELL_KNOWN_PATH,
};

/// Default bound on opening a connection (TCP connect and TLS handshake).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default bound on one request: sending it and receiving the whole response.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Default bound on a whole operation, retries and backoff included.
pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(120);
/// Default time an idle pooled connection is kept (below the server's default header
/// timeout, which closes idle connections, so the pool drops them first).
pub const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(20);
/// Default number of idle connections kept per server: up to this many concurrent requests
/// to one server (a hub delivering several rooms at once) reuse their connections.
pub const DEFAULT_MAX_IDLE_PER_SERVER: usize = 32;
/// Largest `.well-known` answer read (an FQDN is at most 255 bytes; some slack for
/// whitespace).
pub const MAX_WELL_KNOWN_LEN: usize = 1024;

/// The client's configuration.
#[derive(Clone)]
pub struct ClientConfig {
    /// The rustls configuration, with our client certificate (see
    /// [`crate::tls::client_config`]).
    pub tls: Arc<rustls::ClientConfig>,
    /// Bound on TCP connect plus TLS handshake.
    pub connect_timeout: Duration,
    /// Bound on one request and its response.
    pub request_timeout: Duration,
    /// Bound on a whole operation, retries included.
    pub operation_timeout: Duration,
    /// Retries of transient failures.
    pub retry: RetryPolicy,
    /// Largest response body read.
    pub max_response_body: usize,
    /// How long an idle connection stays in the pool.
    pub pool_idle_timeout: Duration,
    /// Idle connections kept per server.
    pub max_idle_per_server: usize,
    /// Draws the backoff delays.
    pub jitter: Arc<dyn Jitter>,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("operation_timeout", &self.operation_timeout)
            .field("retry", &self.retry)
            .field("max_response_body", &self.max_response_body)
            .field("pool_idle_timeout", &self.pool_idle_timeout)
            .field("max_idle_per_server", &self.max_idle_per_server)
            .finish_non_exhaustive()
    }
}

impl ClientConfig {
    /// A configuration with the default timeouts, retries and limits.
    pub fn new(tls: Arc<rustls::ClientConfig>) -> Self {
        ClientConfig {
            tls,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            operation_timeout: DEFAULT_OPERATION_TIMEOUT,
            retry: RetryPolicy::default(),
            max_response_body: MAX_MESSAGE_LEN,
            pool_idle_timeout: DEFAULT_POOL_IDLE_TIMEOUT,
            max_idle_per_server: DEFAULT_MAX_IDLE_PER_SERVER,
            jitter: Arc::new(RandomJitter),
        }
    }
}

/// An accepted `POST /send`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendOutcome {
    /// The response message, when the peer sent one (an empty `200` body gives `None`).
    pub response: Option<MimiMessage>,
    /// Attempts it took.
    pub attempts: u32,
}

/// The outcome of `POST /check-invite`: the status decides, not the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckInviteOutcome {
    /// `200`: the invitee's server will take part.
    Accepted,
    /// `400`: refused, with the error when the body carries one.
    Refused(Option<EventError>),
}

/// A client for other servers' MIMI endpoints.
#[derive(Clone)]
pub struct MimiClient {
    http: Client<Connector, Full<Bytes>>,
    config: ClientConfig,
    resolver: Arc<dyn Resolver>,
}

impl std::fmt::Debug for MimiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MimiClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A raw response: status and body.
struct Raw {
    status: StatusCode,
    content_type: Option<HeaderValue>,
    body: Bytes,
}

impl MimiClient {
    /// A client that finds servers through `resolver`. Must be created inside a Tokio
    /// runtime's context to be used.
    ///
    /// Rule TR-POOL-1 (docs/protocol-coverage.md).
    pub fn new(config: ClientConfig, resolver: Arc<dyn Resolver>) -> Self {
        let connector = Connector {
            resolver: resolver.clone(),
            tls: TlsConnector::from(config.tls.clone()),
            timeout: config.connect_timeout,
        };
        let http = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(config.pool_idle_timeout)
            .pool_max_idle_per_host(config.max_idle_per_server)
            .build(connector);
        MimiClient {
            http,
            config,
            resolver,
        }
    }

    /// The configuration this client was built with.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// `POST /send` to `server`. `Ok` for `200`; a `400` is
    /// [`TransportError::Refused`] with the peer's error.
    pub async fn send(
        &self,
        server: &ServerName,
        message: &MimiMessage,
    ) -> Result<SendOutcome, TransportError> {
        self.send_encoded(server, Bytes::from(message.encode()?))
            .await
    }

    /// `POST /send` to `server` of a MIMIMessage already encoded (an outbox entry as
    /// stored), handed to the request as it is, without a copy. Only its length is checked
    /// here (at most [`MAX_MESSAGE_LEN`], as [`Wire::encode`] would refuse, with the same
    /// error); the peer decodes it and answers as for [`MimiClient::send`], so bytes that are
    /// not a message are its `400` ([`TransportError::Refused`]).
    pub async fn send_encoded(
        &self,
        server: &ServerName,
        body: Bytes,
    ) -> Result<SendOutcome, TransportError> {
        if body.len() > MAX_MESSAGE_LEN {
            return Err(TransportError::Decode(CodecError::TooLong {
                len: body.len(),
                max: MAX_MESSAGE_LEN,
            }));
        }
        let (raw, attempts) = self
            .call(server, Method::POST, SEND_PATH.to_owned(), body)
            .await?;
        let raw = expect_ok(raw)?;
        let response = if raw.body.is_empty() {
            None
        } else {
            check_content_type(&raw, OCTET_STREAM)?;
            Some(MimiMessage::decode(&raw.body)?)
        };
        Ok(SendOutcome { response, attempts })
    }

    /// `POST /check-invite` to `server`.
    ///
    /// Rule TR-CHECK-1 (docs/protocol-coverage.md).
    pub async fn check_invite(
        &self,
        server: &ServerName,
        request: &CheckInviteRequest,
    ) -> Result<CheckInviteOutcome, TransportError> {
        let body = Bytes::from(request.encode()?);
        let (raw, _) = self
            .call(server, Method::POST, CHECK_INVITE_PATH.to_owned(), body)
            .await?;
        match expect_ok(raw) {
            Ok(_) => Ok(CheckInviteOutcome::Accepted),
            Err(TransportError::Refused { status: 400, error }) => {
                Ok(CheckInviteOutcome::Refused(error))
            }
            Err(e) => Err(e),
        }
    }

    /// `GET /identifierDiscovery/{domain}` on `server`.
    pub async fn identifier_discovery(
        &self,
        server: &ServerName,
        domain: &ServerName,
        request: &IdentifierRequest,
    ) -> Result<IdentifierResponse, TransportError> {
        let body = Bytes::from(request.encode()?);
        let path = format!("{IDENTIFIER_DISCOVERY_PREFIX}{domain}");
        let (raw, _) = self.call(server, Method::GET, path, body).await?;
        let raw = expect_ok(raw)?;
        check_content_type(&raw, OCTET_STREAM)?;
        Ok(IdentifierResponse::decode(&raw.body)?)
    }

    /// `GET /.well-known/mimi/domain` on `server`: the FQDN that serves its MIMI endpoints.
    ///
    /// Rule TR-WK-2 (docs/protocol-coverage.md).
    pub async fn well_known(&self, server: &ServerName) -> Result<ServerName, TransportError> {
        let (raw, _) = self
            .call(
                server,
                Method::GET,
                WELL_KNOWN_PATH.to_owned(),
                Bytes::new(),
            )
            .await?;
        let raw = expect_ok(raw)?;
        check_content_type(&raw, crate::server::TEXT_PLAIN)?;
        if raw.body.len() > MAX_WELL_KNOWN_LEN {
            return Err(TransportError::InvalidResponse(
                ".well-known body is too long",
            ));
        }
        std::str::from_utf8(&raw.body)
            .ok()
            .and_then(|text| ServerName::from_dns_name(text.trim()).ok())
            .ok_or(TransportError::InvalidResponse(
                ".well-known body is not a server name",
            ))
    }

    /// One operation: attempts with backoff, all within the operation timeout.
    async fn call(
        &self,
        server: &ServerName,
        method: Method,
        path: String,
        body: Bytes,
    ) -> Result<(Raw, u32), TransportError> {
        self.call_from(server, method, path, body, None).await
    }

    /// One -06 request: `POST` of `body` to `path` on `server` with `From: mimi@<from>`.
    /// Returns the status and body as received (every -06 status is the caller's to read).
    ///
    /// Rule V06-TR-2 (docs/protocol-coverage.md).
    pub async fn post06(
        &self,
        server: &ServerName,
        from: &ServerName,
        path: String,
        body: Vec<u8>,
    ) -> Result<(u16, Bytes), TransportError> {
        let from = HeaderValue::from_str(&format!("{}@{from}", crate::v06::FROM_LOCAL_PART))
            .map_err(|_| TransportError::InvalidResponse("server name does not form a header"))?;
        let (raw, _) = self
            .call_from(server, Method::POST, path, Bytes::from(body), Some(from))
            .await?;
        Ok((raw.status.as_u16(), raw.body))
    }

    /// A `GET` of `path` on `server` (no `From`): the status and body as received (the
    /// conformance probe reads a peer's directory this way, to show what did not parse).
    pub async fn get_raw(
        &self,
        server: &ServerName,
        path: String,
    ) -> Result<(u16, Bytes), TransportError> {
        let (raw, _) = self.call(server, Method::GET, path, Bytes::new()).await?;
        Ok((raw.status.as_u16(), raw.body))
    }

    /// `GET /.well-known/mimi-protocol-directory` on `server`.
    pub async fn directory06(
        &self,
        server: &ServerName,
    ) -> Result<mimi_codec::v06::Directory, TransportError> {
        let (raw, _) = self
            .call(
                server,
                Method::GET,
                crate::v06::DIRECTORY_PATH.to_owned(),
                Bytes::new(),
            )
            .await?;
        let raw = expect_ok(raw)?;
        mimi_codec::v06::Directory::from_json(&raw.body)
            .map_err(|_| TransportError::InvalidResponse("the -06 directory does not parse"))
    }

    async fn call_from(
        &self,
        server: &ServerName,
        method: Method,
        path: String,
        body: Bytes,
        from: Option<HeaderValue>,
    ) -> Result<(Raw, u32), TransportError> {
        let mut attempts = 0u32;
        let retries = tokio::time::timeout(
            self.config.operation_timeout,
            self.attempts(&method, server, &path, &body, from.as_ref(), &mut attempts),
        )
        .await;
        match retries {
            Ok(result) => result.map(|raw| (raw, attempts)),
            Err(_) => Err(TransportError::Timeout {
                attempts,
                stage: TimeoutStage::Operation,
            }),
        }
    }

    /// Rule TR-RETRY-1 (docs/protocol-coverage.md).
    async fn attempts(
        &self,
        method: &Method,
        server: &ServerName,
        path: &str,
        body: &Bytes,
        from: Option<&HeaderValue>,
        attempts: &mut u32,
    ) -> Result<Raw, TransportError> {
        let policy = self.config.retry;
        loop {
            *attempts += 1;
            let result = match self.target(server, path).await {
                Ok(uri) => self.attempt(method, &uri, body, from).await,
                Err(e) => Err(e),
            };
            let mut error = match result {
                Ok(raw) if matches!(raw.status.as_u16(), 502..=504) => server_error(&raw),
                Ok(raw) => return Ok(raw),
                Err(e) => e,
            };
            error.set_attempts(*attempts);
            if !error.is_transient() || *attempts >= policy.max_attempts {
                return Err(error);
            }
            let delay = policy.delay(*attempts - 1, self.config.jitter.as_ref());
            tracing::debug!(%server, path, attempt = *attempts, ?delay, %error, "retrying");
            tokio::time::sleep(delay).await;
        }
    }

    /// The target URI of a request for `server`: its service name (after `.well-known`
    /// delegation) and the path, so that the URI, the `Host` header hyper derives from it and
    /// the certificate TLS verifies all name the same server (RFC 9110 §7.2, §4.3.4;
    /// `docs/spec-decisions.md`).
    async fn target(&self, server: &ServerName, path: &str) -> Result<Uri, TransportError> {
        let service = self
            .resolver
            .service_name(server)
            .await
            .map_err(TransportError::Resolve)?;
        format!("https://{service}{path}")
            .parse()
            .map_err(|_| TransportError::InvalidResponse("server name does not form a URI"))
    }

    async fn attempt(
        &self,
        method: &Method,
        uri: &Uri,
        body: &Bytes,
        from: Option<&HeaderValue>,
    ) -> Result<Raw, TransportError> {
        let mut request = Request::new(Full::new(body.clone()));
        *request.method_mut() = method.clone();
        *request.uri_mut() = uri.clone();
        if let Some(from) = from {
            request
                .headers_mut()
                .insert(hyper::header::FROM, from.clone());
        }
        if !body.is_empty() {
            request
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(OCTET_STREAM));
        }
        let max = self.config.max_response_body;
        let exchange = async {
            let response = self.http.request(request).await.map_err(classify)?;
            let status = response.status();
            let content_type = response.headers().get(CONTENT_TYPE).cloned();
            let body = Limited::new(response.into_body(), max)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        TransportError::InvalidResponse("response body is over the limit")
                    } else {
                        classify_boxed(e)
                    }
                })?
                .to_bytes();
            Ok(Raw {
                status,
                content_type,
                body,
            })
        };
        match tokio::time::timeout(self.config.request_timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(TransportError::Timeout {
                attempts: 1,
                stage: TimeoutStage::Request,
            }),
        }
    }
}

fn server_error(raw: &Raw) -> TransportError {
    TransportError::ServerError {
        status: raw.status.as_u16(),
        attempts: 1,
        error: decode_error_body(&raw.body),
    }
}

/// `200` passes; anything else becomes the matching error.
fn expect_ok(raw: Raw) -> Result<Raw, TransportError> {
    match raw.status {
        StatusCode::OK => Ok(raw),
        StatusCode::PAYLOAD_TOO_LARGE => Err(TransportError::TooLarge),
        status if status.is_server_error() => Err(server_error(&raw)),
        status => Err(TransportError::Refused {
            status: status.as_u16(),
            error: decode_error_body(&raw.body),
        }),
    }
}

fn check_content_type(raw: &Raw, expected: &str) -> Result<(), TransportError> {
    let essence = raw
        .content_type
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    match essence {
        Some(essence) if essence.eq_ignore_ascii_case(expected) => Ok(()),
        _ => Err(TransportError::InvalidResponse("unexpected content type")),
    }
}

/// Find the most telling cause in an error chain: our connector's error, or a rustls error.
fn classify(error: hyper_util::client::legacy::Error) -> TransportError {
    classify_boxed(Box::new(error))
}

fn classify_boxed(error: BoxError) -> TransportError {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error.as_ref());
    while let Some(current) = cause {
        if let Some(connect) = current.downcast_ref::<ConnectError>() {
            match connect {
                ConnectError::Timeout => {
                    return TransportError::Timeout {
                        attempts: 1,
                        stage: TimeoutStage::Connect,
                    };
                }
                ConnectError::Resolve(e) => return TransportError::Resolve(e.clone()),
                ConnectError::NotAServerName | ConnectError::Tls(_) | ConnectError::Tcp { .. } => {}
            }
        }
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            return TransportError::Tls(tls.clone());
        }
        if let Some(io) = current.downcast_ref::<io::Error>()
            && let Some(tls) = io.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>())
        {
            return TransportError::Tls(tls.clone());
        }
        cause = current.source();
    }
    TransportError::Network {
        attempts: 1,
        source: error,
    }
}

/// Why a connection could not be opened.
#[derive(Debug, thiserror::Error)]
enum ConnectError {
    #[error("the URI host is not a server name")]
    NotAServerName,
    #[error(transparent)]
    Resolve(ResolveError),
    #[error("TCP connect to {address} failed: {source}")]
    Tcp {
        address: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("TLS handshake failed: {0}")]
    Tls(#[source] io::Error),
    #[error("connect timed out")]
    Timeout,
}

/// Opens TLS connections to server names through a resolver (the pool's connector).
///
/// Rule TR-MTLS-3 (docs/protocol-coverage.md).
#[derive(Clone)]
struct Connector {
    resolver: Arc<dyn Resolver>,
    tls: TlsConnector,
    timeout: Duration,
}

impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<TlsConnection>;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let server: ServerName = uri
                .host()
                .and_then(|h| ServerName::from_dns_name(h).ok())
                .ok_or(ConnectError::NotAServerName)?;
            let endpoint = this
                .resolver
                .resolve_service(&server)
                .await
                .map_err(ConnectError::Resolve)?;
            let tls_name = rustls::pki_types::ServerName::try_from(endpoint.tls_name.to_string())
                .map_err(|_| ConnectError::NotAServerName)?;
            let connect = async {
                let mut last = None;
                let mut tcp = None;
                for address in &endpoint.addresses {
                    match TcpStream::connect(address).await {
                        Ok(stream) => {
                            tcp = Some(stream);
                            break;
                        }
                        Err(source) => {
                            last = Some(ConnectError::Tcp {
                                address: *address,
                                source,
                            })
                        }
                    }
                }
                let tcp = match (tcp, last) {
                    (Some(tcp), _) => tcp,
                    (None, Some(error)) => return Err(error),
                    (None, None) => {
                        return Err(ConnectError::Resolve(ResolveError::NoAddress(server)));
                    }
                };
                tcp.set_nodelay(true).ok();
                let tls = this
                    .tls
                    .connect(tls_name, tcp)
                    .await
                    .map_err(ConnectError::Tls)?;
                Ok(TokioIo::new(TlsConnection(tls)))
            };
            tokio::time::timeout(this.timeout, connect)
                .await
                .map_err(|_| ConnectError::Timeout)?
        })
    }
}

/// A client TLS stream the pool can hold.
struct TlsConnection(TlsStream<TcpStream>);

impl Connection for TlsConnection {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl AsyncRead for TlsConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}
