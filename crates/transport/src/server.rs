//! The HTTPS server of the MIMI endpoints.
//!
//! [`serve`] takes a bound listener and a shutdown future (as mini-redis does): it accepts
//! TLS connections, maps each client certificate to the peer's server name, routes requests
//! ([`route`]), enforces the body limit and content type, decodes the TLS-encoded bodies and
//! hands them to a [`Handler`], then maps the handler's reply to an HTTP status.
//!
//! | situation | status | body |
//! |---|---|---|
//! | accepted | 200 | encoded response message, or empty |
//! | refused by the handler | 400 | the handler's `MIMIMessage` with an `EventResponse` error |
//! | body does not decode, or bad `{domain}` | 400 | bare `EventResponse` error, `Malformed` (or `UnsupportedVersion`, `UnsupportedEvent`) |
//! | a field over its limit inside the body | 413 | bare `EventResponse` error, `TooLarge` |
//! | no (valid) client certificate, any endpoint but `.well-known` | 403, then the connection is closed (one request per such connection, within `anonymous_timeout`) | bare `EventResponse` error, `SenderMismatch` |
//! | unknown path | 404 | empty |
//! | wrong method | 405 + `Allow` | empty |
//! | body not read in time | 408 | empty |
//! | body over `max_body` | 413 | bare `EventResponse` error, `TooLarge` |
//! | `Content-Type` other than `application/octet-stream` | 415 | empty |
//! | handler unavailable, or a response that cannot be encoded | 503 / 500 | bare `EventResponse` error, `Internal` |

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use mimi_codec::{
    CheckInviteRequest, CodecError, ErrorCode, EventError, EventResponse, IdentifierError,
    IdentifierRequest, IdentifierResponse, MessageBody, MimiMessage, Sender, ServerName, Wire,
    limits::MAX_MESSAGE_LEN,
};
use tokio::net::TcpListener;

use crate::accept::{
    BodyRefusal, Connection, ConnectionLimits, ConnectionMode, close_after, read_body,
    serve_connections,
};
pub use crate::accept::{
    DEFAULT_ANONYMOUS_TIMEOUT, DEFAULT_BODY_TIMEOUT, DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_HEADER_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_CONNECTIONS_PER_IP, DEFAULT_SHUTDOWN_GRACE, DEFAULT_WRITE_TIMEOUT,
};
use crate::body::encode_error_response;
use crate::tls::{PeerNameError, PeerNames, peer_names};
use crate::v06::{
    Body06, Handler06, JSON, Refusal06, Reply06, Request06, Route06, check_from, check_host,
    directory_for, route06,
};

/// Path of the endpoint discovery document.
pub const WELL_KNOWN_PATH: &str = "/.well-known/mimi/domain";
/// Path of Send Event.
pub const SEND_PATH: &str = "/send";
/// Path of Check Invite.
pub const CHECK_INVITE_PATH: &str = "/check-invite";
/// Path prefix of Identifier Discovery (`/identifierDiscovery/{domain}`).
pub const IDENTIFIER_DISCOVERY_PREFIX: &str = "/identifierDiscovery/";
/// The content type of every TLS-encoded body.
pub const OCTET_STREAM: &str = "application/octet-stream";
/// The content type of the `.well-known` answer.
pub const TEXT_PLAIN: &str = "text/plain";

/// The server's configuration.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The rustls configuration (see [`crate::tls::server_config`]).
    pub tls: Arc<rustls::ServerConfig>,
    /// This server's name: the sender of the refusals the transport frames itself.
    pub server_name: ServerName,
    /// The FQDN answered on `GET /.well-known/mimi/domain` (usually `server_name`).
    pub well_known_domain: ServerName,
    /// Largest request body accepted; larger ones get `413`.
    pub max_body: usize,
    /// Bound on the TLS handshake.
    pub handshake_timeout: Duration,
    /// Bound on receiving request headers.
    pub header_timeout: Duration,
    /// Bound on receiving a request body.
    pub body_timeout: Duration,
    /// Bound on a write that makes no progress (a peer that stopped reading).
    pub write_timeout: Duration,
    /// Time in-flight requests get after shutdown starts.
    pub shutdown_grace: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// Connections served at once from one IP address.
    pub max_connections_per_ip: usize,
    /// Time a connection may wait for a request before it is closed.
    pub idle_timeout: Duration,
    /// Bound on the whole of a connection without a valid client certificate (its one
    /// `.well-known` request).
    pub anonymous_timeout: Duration,
}

impl ServerConfig {
    /// A configuration with the default limits, answering `server_name` on `.well-known`.
    pub fn new(tls: Arc<rustls::ServerConfig>, server_name: ServerName) -> Self {
        ServerConfig {
            tls,
            well_known_domain: server_name.clone(),
            server_name,
            max_body: MAX_MESSAGE_LEN,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            anonymous_timeout: DEFAULT_ANONYMOUS_TIMEOUT,
        }
    }

    /// The limits of the accept loop and of each connection.
    pub fn connection_limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            handshake_timeout: self.handshake_timeout,
            header_timeout: self.header_timeout,
            write_timeout: self.write_timeout,
            shutdown_grace: self.shutdown_grace,
            max_connections: self.max_connections,
            max_connections_per_ip: self.max_connections_per_ip,
            idle_timeout: self.idle_timeout,
            anonymous_timeout: self.anonymous_timeout,
        }
    }
}

/// The handler's answer to `POST /send`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `200`, with the response message as the body, or an empty body.
    Accepted(Option<MimiMessage>),
    /// `400`, with this message (whose body should be an `EventResponse` error) as the body.
    Refused(MimiMessage),
    /// `503`: the server cannot process the event now (the sender retries later).
    Unavailable(EventError),
}

/// The handler's answer to `POST /check-invite`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckInviteReply {
    /// `200`, empty body.
    Accepted,
    /// `400`; the body is a `MIMIMessage` in the invite's room, sent by this server, with
    /// this error.
    Refused(EventError),
    /// `503`: the server cannot decide now.
    Unavailable(EventError),
}

/// What the layer above does with authenticated, decoded requests. `peer` is a server name
/// the connection's client certificate authenticates ([`PeerNames`]): of its names, the
/// one the request speaks for — for `/send` the sender's server, or else the room's hub
/// (which relays other servers' events); for `/check-invite` the room's hub; otherwise the
/// certificate's first name. It is never a name the certificate does not authenticate, so
/// the handler's "the sender's server is the TLS peer" (TR-SENDER-1) holds when the sender's
/// server is any of the peer's names.
#[async_trait]
pub trait Handler: Send + Sync {
    /// `POST /send`.
    async fn send(&self, peer: &ServerName, message: MimiMessage) -> Reply;
    /// `POST /check-invite`.
    async fn check_invite(
        &self,
        peer: &ServerName,
        request: CheckInviteRequest,
    ) -> CheckInviteReply;
    /// `GET /identifierDiscovery/{domain}`. An `Err` is this server's failure (the seed's
    /// `IdentifierDiscoveryCode` has no code for it): answered with the error's HTTP status
    /// (`internal` → 500) and the `EventError` as the body.
    async fn identifier_discovery(
        &self,
        peer: &ServerName,
        domain: &ServerName,
        request: IdentifierRequest,
    ) -> Result<IdentifierResponse, EventError>;
    /// The second version's endpoints (`crate::v06`), if this server serves them.
    fn v06(&self) -> Option<&dyn Handler06> {
        None
    }
}

/// An endpoint of the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /.well-known/mimi/domain`.
    WellKnown,
    /// `POST /send`.
    Send,
    /// `POST /check-invite`.
    CheckInvite,
    /// `GET /identifierDiscovery/{domain}`.
    IdentifierDiscovery(ServerName),
}

/// Why a request matches no endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// No endpoint has this path (`404`).
    NotFound,
    /// The path exists for another method (`405`, with this `Allow` value).
    MethodNotAllowed {
        /// The method the path allows.
        allow: &'static str,
    },
    /// The `{domain}` of identifier discovery is not a server name (`400`).
    BadDomain(IdentifierError),
}

/// Match a method and path to an endpoint (pure).
///
/// Rules TR-IDENT-1, TR-HTTP-1 (docs/protocol-coverage.md).
pub fn route(method: &Method, path: &str) -> Result<Route, RouteError> {
    let (route, allowed) = match path {
        WELL_KNOWN_PATH => (Route::WellKnown, Method::GET),
        SEND_PATH => (Route::Send, Method::POST),
        CHECK_INVITE_PATH => (Route::CheckInvite, Method::POST),
        _ => {
            let domain = path
                .strip_prefix(IDENTIFIER_DISCOVERY_PREFIX)
                .filter(|d| !d.is_empty() && !d.contains('/'))
                .ok_or(RouteError::NotFound)?;
            if method != Method::GET {
                return Err(RouteError::MethodNotAllowed { allow: "GET" });
            }
            let domain = domain.parse().map_err(RouteError::BadDomain)?;
            return Ok(Route::IdentifierDiscovery(domain));
        }
    };
    if method != allowed {
        let allow = if allowed == Method::GET {
            "GET"
        } else {
            "POST"
        };
        return Err(RouteError::MethodNotAllowed { allow });
    }
    Ok(route)
}

/// Who is on the other end of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PeerIdentity {
    /// No client certificate.
    Anonymous,
    /// A verified certificate naming these servers.
    Server(PeerNames),
    /// A verified certificate that names no server.
    Invalid(PeerNameError),
}

impl PeerIdentity {
    fn of(certificates: Option<&[rustls::pki_types::CertificateDer<'static>]>) -> Self {
        match certificates.and_then(<[_]>::first) {
            None => PeerIdentity::Anonymous,
            Some(end_entity) => match peer_names(end_entity) {
                Ok(names) => PeerIdentity::Server(names),
                Err(e) => PeerIdentity::Invalid(e),
            },
        }
    }
}

struct Context {
    config: ServerConfig,
    handler: Arc<dyn Handler>,
}

/// Serve the MIMI endpoints on `listener` until `shutdown` completes, on the accept loop of
/// [`serve_connections`] (with mutual TLS: each connection's client certificate names the
/// peer).
///
/// On shutdown the listener is closed at once, idle connections are closed, and requests in
/// flight get [`ServerConfig::shutdown_grace`] to finish before their connections are
/// dropped. Returns when every connection is gone.
///
/// Rule TR-SHUT-1 (docs/protocol-coverage.md).
pub async fn serve(
    listener: TcpListener,
    config: ServerConfig,
    handler: Arc<dyn Handler>,
    shutdown: impl Future<Output = ()>,
) {
    let tls = config.tls.clone();
    let limits = config.connection_limits();
    let context = Arc::new(Context { config, handler });
    let make_service = move |connection: &Connection<'_>| {
        let peer = Arc::new(PeerIdentity::of(connection.peer_certificates));
        // Rule TR-LIMIT-2: without a valid client certificate, one request (only
        // `.well-known` is answered) within the anonymous deadline, then closed.
        let mode = match *peer {
            PeerIdentity::Server(_) => ConnectionMode::KeepAlive,
            PeerIdentity::Anonymous | PeerIdentity::Invalid(_) => ConnectionMode::OneRequest,
        };
        let context = context.clone();
        let served = service_fn(move |request| {
            let context = context.clone();
            let peer = peer.clone();
            async move { Ok::<_, Infallible>(handle(request, &context, &peer).await) }
        });
        (served, mode)
    };
    serve_connections(listener, tls, limits, make_service, shutdown).await;
}

type Body = Full<Bytes>;

fn respond(
    status: StatusCode,
    content_type: Option<&'static str>,
    body: Vec<u8>,
) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Some(content_type) = content_type {
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    response
}

fn empty(status: StatusCode) -> Response<Body> {
    respond(status, None, Vec::new())
}

fn error(status: StatusCode, code: ErrorCode, detail: impl Into<String>) -> Response<Body> {
    let body = encode_error_response(&EventError::new(code, detail));
    respond(status, Some(OCTET_STREAM), body)
}

fn message(status: StatusCode, message: &MimiMessage) -> Response<Body> {
    match message.encode() {
        Ok(body) => respond(status, Some(OCTET_STREAM), body),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            format!("response cannot be encoded: {e}"),
        ),
    }
}

/// A body that does not decode: the code is `CodecError::error_code` and the status that
/// code's `http_status` (400, or 413 for a field over its limit), as `docs/wire-format.md`
/// §7 lays down.
///
/// Rules TR-BODY-3, HUB-LIMIT-1 (docs/protocol-coverage.md).
fn malformed(e: &CodecError) -> Response<Body> {
    let code = e.error_code();
    let status = StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    error(status, code, format!("body does not decode: {e}"))
}

/// Whether a request's `Content-Type` is acceptable: absent, or `application/octet-stream`
/// with any parameters.
///
/// Rule TR-BODY-1 (docs/protocol-coverage.md).
fn content_type_ok(value: Option<&HeaderValue>) -> bool {
    let Some(value) = value else { return true };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case(OCTET_STREAM)
}

/// Rules TR-SEND-1, TR-CHECK-1, TR-IDENT-1, TR-WK-1, HUB-TLS-1 (docs/protocol-coverage.md).
async fn handle(
    request: Request<Incoming>,
    context: &Context,
    peer: &PeerIdentity,
) -> Response<Body> {
    if let Some(route) = route06(request.method(), request.uri().path()) {
        return match handle06(request, route, context, peer).await {
            Ok(response) => response,
            Err(refusal) => refuse06(&refusal),
        };
    }
    let route = match route(request.method(), request.uri().path()) {
        Ok(route) => route,
        Err(RouteError::NotFound) => return empty(StatusCode::NOT_FOUND),
        Err(RouteError::MethodNotAllowed { allow }) => {
            let mut response = empty(StatusCode::METHOD_NOT_ALLOWED);
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static(allow));
            return response;
        }
        Err(RouteError::BadDomain(e)) => {
            return error(
                StatusCode::BAD_REQUEST,
                ErrorCode::Malformed,
                format!("invalid domain in path: {e}"),
            );
        }
    };
    if route == Route::WellKnown {
        let domain = context
            .config
            .well_known_domain
            .as_str()
            .as_bytes()
            .to_vec();
        return respond(StatusCode::OK, Some(TEXT_PLAIN), domain);
    }
    // Rule TR-MTLS-1: every endpoint but `.well-known` requires a client certificate.
    let peer = match peer {
        PeerIdentity::Server(name) => name,
        PeerIdentity::Anonymous => {
            return error(
                StatusCode::FORBIDDEN,
                ErrorCode::SenderMismatch,
                "a client certificate is required",
            );
        }
        PeerIdentity::Invalid(e) => {
            return error(
                StatusCode::FORBIDDEN,
                ErrorCode::SenderMismatch,
                format!("client certificate refused: {e}"),
            );
        }
    };
    if !content_type_ok(request.headers().get(CONTENT_TYPE)) {
        return empty(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
    let (head, body) = request.into_parts();
    let body = match read_body(
        &head.headers,
        body,
        context.config.max_body,
        context.config.body_timeout,
    )
    .await
    {
        Ok(body) => body,
        Err(BodyRefusal::TooLarge { .. }) => {
            return close_after(error(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::TooLarge,
                format!(
                    "body is over the limit of {} bytes",
                    context.config.max_body
                ),
            ));
        }
        Err(BodyRefusal::Timeout) => return close_after(empty(StatusCode::REQUEST_TIMEOUT)),
        Err(BodyRefusal::Broken) => {
            return close_after(error(
                StatusCode::BAD_REQUEST,
                ErrorCode::Malformed,
                "body could not be read",
            ));
        }
    };
    let handler = &context.handler;
    match route {
        Route::Send => {
            let decoded = match MimiMessage::decode(&body) {
                Ok(decoded) => decoded,
                Err(e) => return malformed(&e),
            };
            // Of the names the certificate authenticates, the one the request speaks for:
            // the sender's server, or else the room's hub (which relays other servers'
            // events). The handler checks that it is one of those (TR-SENDER-1).
            let claims = [decoded.sender.server(), decoded.room_id.server()];
            let peer = peer.speaking_for(&claims).clone();
            match handler.send(&peer, decoded).await {
                Reply::Accepted(None) => empty(StatusCode::OK),
                Reply::Accepted(Some(response)) => message(StatusCode::OK, &response),
                Reply::Refused(refusal) => message(StatusCode::BAD_REQUEST, &refusal),
                Reply::Unavailable(e) => unavailable(&e),
            }
        }
        Route::CheckInvite => {
            let decoded = match CheckInviteRequest::decode(&body) {
                Ok(decoded) => decoded,
                Err(e) => return malformed(&e),
            };
            let room_id = decoded.invite.room_id.clone();
            // A check-invite comes from the room's hub.
            let peer = peer.speaking_for(&[room_id.server()]).clone();
            match handler.check_invite(&peer, decoded).await {
                CheckInviteReply::Accepted => empty(StatusCode::OK),
                CheckInviteReply::Refused(e) => message(
                    StatusCode::BAD_REQUEST,
                    &MimiMessage::new(
                        room_id,
                        Sender::Server(context.config.server_name.clone()),
                        MessageBody::Response(EventResponse::Error(e)),
                    ),
                ),
                CheckInviteReply::Unavailable(e) => unavailable(&e),
            }
        }
        Route::IdentifierDiscovery(domain) => {
            let decoded = match IdentifierRequest::decode(&body) {
                Ok(decoded) => decoded,
                Err(e) => return malformed(&e),
            };
            let peer = peer.speaking_for(&[]);
            let response = match handler.identifier_discovery(peer, &domain, decoded).await {
                Ok(response) => response,
                Err(e) => {
                    let status = StatusCode::from_u16(e.code.http_status())
                        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                    return error(status, e.code, e.detail.as_str());
                }
            };
            match response.encode() {
                Ok(body) => respond(StatusCode::OK, Some(OCTET_STREAM), body),
                Err(e) => error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorCode::Internal,
                    format!("response cannot be encoded: {e}"),
                ),
            }
        }
        // Answered above.
        Route::WellKnown => empty(StatusCode::NOT_FOUND),
    }
}

fn refuse06(refusal: &Refusal06) -> Response<Body> {
    let mut response = respond(refusal.status, Some(TEXT_PLAIN), refusal.body());
    if let Some(allow) = refusal.allow {
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static(allow));
    }
    response
}

/// A -06 request (`crate::v06`): the directory without a client certificate, every endpoint
/// with one, `Host` and `From` checked, the body bounded, read and decoded, then the
/// handler's [`Handler06`].
///
/// Rules V06-TR-1, V06-TR-2, V06-TR-3 (docs/protocol-coverage.md).
async fn handle06(
    request: Request<Incoming>,
    route: Result<Route06, Refusal06>,
    context: &Context,
    peer: &PeerIdentity,
) -> Result<Response<Body>, Refusal06> {
    let route = route?;
    let Some(handler) = context.handler.v06() else {
        return Err(Refusal06::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "this server does not speak -06",
        ));
    };
    let (endpoint, variable) = match route {
        Route06::Directory => {
            let json = directory_for(&context.config.server_name, |e| handler.serves(e)).to_json();
            return Ok(respond(StatusCode::OK, Some(JSON), json.into_bytes()));
        }
        Route06::Endpoint(endpoint, variable) => (endpoint, variable),
    };
    let peer = match peer {
        PeerIdentity::Server(names) => names,
        PeerIdentity::Anonymous => {
            return Err(Refusal06::new(
                StatusCode::FORBIDDEN,
                "client_certificate",
                "a client certificate is required",
            ));
        }
        PeerIdentity::Invalid(e) => {
            return Err(Refusal06::new(
                StatusCode::FORBIDDEN,
                "client_certificate",
                format!("client certificate refused: {e}"),
            ));
        }
    };
    check_host(request.headers(), &context.config.server_name)?;
    let from = check_from(request.headers(), peer)?;
    if !content_type_ok(request.headers().get(CONTENT_TYPE)) {
        return Err(Refusal06::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content_type",
            format!("bodies are {OCTET_STREAM}"),
        ));
    }
    let (head, body) = request.into_parts();
    let raw = match read_body(
        &head.headers,
        body,
        context.config.max_body,
        context.config.body_timeout,
    )
    .await
    {
        Ok(body) => body,
        Err(BodyRefusal::TooLarge { .. }) => {
            return Err(Refusal06::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!(
                    "body is over the limit of {} bytes",
                    context.config.max_body
                ),
            ));
        }
        Err(BodyRefusal::Timeout) => return Ok(empty(StatusCode::REQUEST_TIMEOUT)),
        Err(BodyRefusal::Broken) => {
            return Err(Refusal06::new(
                StatusCode::BAD_REQUEST,
                "malformed",
                "body could not be read",
            ));
        }
    };
    let body = Body06::decode(endpoint, &raw).map_err(|e| Refusal06::malformed(&e))?;
    let request = Request06 {
        endpoint,
        variable,
        from,
        body,
        raw,
    };
    Ok(match handler.handle06(request).await {
        Reply06::Ok(body) => respond(StatusCode::OK, Some(OCTET_STREAM), body),
        Reply06::Created => empty(StatusCode::CREATED),
        Reply06::Refused(refusal) => refuse06(&refusal),
    })
}

fn unavailable(e: &EventError) -> Response<Body> {
    respond(
        StatusCode::SERVICE_UNAVAILABLE,
        Some(OCTET_STREAM),
        encode_error_response(e),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_every_endpoint() {
        assert_eq!(route(&Method::GET, WELL_KNOWN_PATH), Ok(Route::WellKnown));
        assert_eq!(route(&Method::POST, "/send"), Ok(Route::Send));
        assert_eq!(
            route(&Method::POST, "/check-invite"),
            Ok(Route::CheckInvite)
        );
        assert_eq!(
            route(&Method::GET, "/identifierDiscovery/b.example"),
            Ok(Route::IdentifierDiscovery("b.example".parse().unwrap()))
        );
    }

    #[test]
    fn wrong_methods_name_the_allowed_one() {
        assert_eq!(
            route(&Method::GET, "/send"),
            Err(RouteError::MethodNotAllowed { allow: "POST" })
        );
        assert_eq!(
            route(&Method::POST, WELL_KNOWN_PATH),
            Err(RouteError::MethodNotAllowed { allow: "GET" })
        );
        assert_eq!(
            route(&Method::POST, "/identifierDiscovery/b.example"),
            Err(RouteError::MethodNotAllowed { allow: "GET" })
        );
    }

    #[test]
    fn unknown_paths_are_not_found() {
        for path in [
            "/",
            "/sendx",
            "/send/",
            "/identifierDiscovery/",
            "/identifierDiscovery/a/b",
        ] {
            assert_eq!(
                route(&Method::GET, path),
                Err(RouteError::NotFound),
                "{path}"
            );
        }
    }

    #[test]
    fn bad_domain_is_refused() {
        assert!(matches!(
            route(&Method::GET, "/identifierDiscovery/-bad-"),
            Err(RouteError::BadDomain(_))
        ));
    }

    #[test]
    fn content_type_rules() {
        assert!(content_type_ok(None));
        assert!(content_type_ok(Some(&HeaderValue::from_static(
            "application/octet-stream"
        ))));
        assert!(content_type_ok(Some(&HeaderValue::from_static(
            "Application/Octet-Stream; q=1"
        ))));
        assert!(!content_type_ok(Some(&HeaderValue::from_static(
            "application/json"
        ))));
    }
}
