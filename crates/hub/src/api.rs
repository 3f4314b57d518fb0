//! The provider-internal client API (`docs/client-api.md`): HTTPS with bearer tokens,
//! JSON bodies, and TLS-encoded MIMI `Event`s for room events. A thin shell over
//! the [`Provider`]'s parts (rooms, accounts, inbox): parse, authenticate, call, encode.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use mimi_codec::{
    ClientId, CreateGroupRequest, Event, EventResponse, IdentifierQuery, IdentifierRequest,
    JoinRule, MlsBytes, RoomId, ServerName, Text, UserId, Wire,
};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::accounts::Registration;
use crate::error::ApiError;
use crate::provider::Provider;

/// Largest request body the API reads (an MLS commit bundle of the largest size, in base64
/// inside JSON, fits).
pub const MAX_API_BODY: usize = mimi_codec::limits::MAX_MESSAGE_LEN * 3 / 2;
/// Most inbox items one request returns.
pub const MAX_INBOX_PAGE: usize = 256;
/// Longest an inbox read waits for a first item (`wait_ms`); below the server's header
/// timeout, so a kept-alive connection outlives the wait.
pub const MAX_INBOX_WAIT: Duration = Duration::from_secs(25);
/// How long a TLS handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

type ApiResponse = Response<Full<Bytes>>;

/// Serve the client API on `listener` with `tls` (server authentication only) until
/// `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    provider: Arc<Provider>,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "client API: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let provider = Arc::clone(&provider);
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "client API: TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let service = hyper::service::service_fn(move |req| {
                let provider = Arc::clone(&provider);
                async move { Ok::<_, Infallible>(handle(&provider, req).await) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(30))
                .serve_connection(TokioIo::new(tls), service)
                .await
            {
                tracing::debug!(%peer, error = %e, "client API: connection ended");
            }
        });
    }
}

fn json_response<T: Serialize>(status: StatusCode, value: &T) -> ApiResponse {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    detail: String,
}

fn error_response(e: &ApiError) -> ApiResponse {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(
        status,
        &ErrorBody {
            error: e.code(),
            detail: e.to_string(),
        },
    )
}

fn binary_response(status: StatusCode, body: Vec<u8>) -> ApiResponse {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/octet-stream"),
    );
    response
}

async fn handle(provider: &Provider, req: Request<Incoming>) -> ApiResponse {
    match route(provider, req).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    }
}

async fn body_bytes(req: Request<Incoming>) -> Result<Bytes, ApiError> {
    Limited::new(req.into_body(), MAX_API_BODY)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| ApiError::Malformed(format!("body: {e}")))
}

async fn json_body<T: for<'de> Deserialize<'de>>(req: Request<Incoming>) -> Result<T, ApiError> {
    let bytes = body_bytes(req).await?;
    serde_json::from_slice(&bytes).map_err(|e| ApiError::Malformed(format!("JSON: {e}")))
}

async fn authenticate(provider: &Provider, req: &Request<Incoming>) -> Result<ClientId, ApiError> {
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(ApiError::Unauthorized)?;
    let token = header
        .strip_prefix("Bearer ")
        .ok_or(ApiError::Unauthorized)?;
    provider.accounts().authenticate(token.trim()).await
}

fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

fn unb64(text: &str, what: &str) -> Result<Vec<u8>, ApiError> {
    B64.decode(text)
        .map_err(|e| ApiError::Malformed(format!("{what}: not base64: {e}")))
}

/// Percent-decode a path segment (room IDs are sent as `%21…%3A…`).
fn percent_decode(s: &str) -> Result<String, ApiError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| ApiError::Malformed("bad percent-encoding".into()))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ApiError::Malformed("path is not UTF-8".into()))
}

fn query_param(req: &Request<Incoming>, name: &str) -> Result<Option<String>, ApiError> {
    let Some(query) = req.uri().query() else {
        return Ok(None);
    };
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k == name {
            return percent_decode(&v.replace('+', " ")).map(Some);
        }
    }
    Ok(None)
}

fn parse_join_rule(value: Option<&str>) -> Result<JoinRule, ApiError> {
    match value.unwrap_or("members_only") {
        "members_only" => Ok(JoinRule::MembersOnly),
        "knock" => Ok(JoinRule::Knock),
        "public" => Ok(JoinRule::Public),
        other => Err(ApiError::Malformed(format!("unknown join rule {other:?}"))),
    }
}

fn parse<T: std::str::FromStr>(value: &str, what: &str) -> Result<T, ApiError>
where
    T::Err: std::fmt::Display,
{
    value
        .parse()
        .map_err(|e| ApiError::Malformed(format!("{what}: {e}")))
}

#[derive(Deserialize)]
struct RegisterBody {
    localpart: String,
    device: String,
    handle: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    display_name: Option<String>,
}

#[derive(Serialize)]
struct RegisteredBody {
    user_id: String,
    client_id: String,
    token: String,
}

#[derive(Deserialize)]
struct KeyPackagesBody {
    key_packages: Vec<String>,
}

#[derive(Serialize)]
struct StoredBody {
    stored: usize,
}

#[derive(Serialize)]
struct DiscoverBody {
    code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<String>,
}

#[derive(Deserialize)]
struct ClaimBody {
    room_id: String,
    user_id: String,
    #[serde(default)]
    clients: Vec<String>,
}

#[derive(Serialize)]
struct ClaimedEntry {
    client_id: String,
    key_package: String,
}

#[derive(Serialize)]
struct ClaimedBody {
    key_packages: Vec<ClaimedEntry>,
}

#[derive(Deserialize, Default)]
struct PrepareBody {
    join_rule: Option<String>,
}

#[derive(Serialize)]
struct PreparedBody {
    room_id: String,
    room_state: String,
    hub_external_sender: String,
}

#[derive(Deserialize)]
struct CreateBody {
    room_id: String,
    join_rule: Option<String>,
    group_info: String,
    ratchet_tree: String,
}

#[derive(Serialize)]
struct SequenceBody {
    sequence: u64,
}

#[derive(Serialize)]
struct StateBody {
    room_state: String,
    sequence: u64,
}

#[derive(Serialize)]
struct InboxItem {
    cursor: u64,
    message: String,
}

#[derive(Serialize)]
struct InboxBody {
    items: Vec<InboxItem>,
}

#[derive(Serialize)]
struct ProposedBody {
    proposed: bool,
}

fn discovery_code(code: mimi_codec::IdentifierDiscoveryCode) -> &'static str {
    use mimi_codec::IdentifierDiscoveryCode as C;
    match code {
        C::Success => "success",
        C::NotFound => "not_found",
        C::Ambiguous => "ambiguous",
        C::Forbidden => "forbidden",
        C::UnsupportedField => "unsupported_field",
    }
}

fn identifier_query(kind: &str) -> Result<IdentifierQuery, ApiError> {
    Ok(match kind {
        "handle" => IdentifierQuery::Handle,
        "nick" => IdentifierQuery::Nick,
        "email" => IdentifierQuery::Email,
        "phone" => IdentifierQuery::Phone,
        "partial_name" => IdentifierQuery::PartialName,
        "whole_profile" => IdentifierQuery::WholeProfile,
        other => {
            return Err(ApiError::Malformed(format!(
                "unknown identifier type {other:?}"
            )));
        }
    })
}

async fn route(provider: &Provider, req: Request<Incoming>) -> Result<ApiResponse, ApiError> {
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let method = req.method().clone();
    match (method, segments.as_slice()) {
        (Method::POST, ["v1", "register"]) => {
            let by = match req.headers().get(AUTHORIZATION) {
                Some(_) => Some(authenticate(provider, &req).await?),
                None => None,
            };
            let body: RegisterBody = json_body(req).await?;
            let registered = provider
                .accounts()
                .register(
                    Registration {
                        localpart: body.localpart,
                        device: body.device,
                        handle: body.handle,
                        email: body.email,
                        phone: body.phone,
                        display_name: body.display_name,
                    },
                    by,
                )
                .await?;
            Ok(json_response(
                StatusCode::OK,
                &RegisteredBody {
                    user_id: registered.user_id.to_string(),
                    client_id: registered.client_id.to_string(),
                    token: registered.token,
                },
            ))
        }
        (Method::POST, ["v1", "key-packages"]) => {
            let client = authenticate(provider, &req).await?;
            let body: KeyPackagesBody = json_body(req).await?;
            let packages = body
                .key_packages
                .iter()
                .map(|k| unb64(k, "key package"))
                .collect::<Result<Vec<_>, _>>()?;
            let stored = provider
                .accounts()
                .publish_key_packages(&client, packages)
                .await?;
            Ok(json_response(StatusCode::OK, &StoredBody { stored }))
        }
        (Method::GET, ["v1", "discover"]) => {
            authenticate(provider, &req).await?;
            let domain: ServerName = parse(
                &query_param(&req, "domain")?
                    .ok_or_else(|| ApiError::Malformed("domain is required".into()))?,
                "domain",
            )?;
            let kind = query_param(&req, "type")?.unwrap_or_else(|| "handle".into());
            let value = query_param(&req, "value")?
                .ok_or_else(|| ApiError::Malformed("value is required".into()))?;
            let request = IdentifierRequest {
                query: identifier_query(&kind)?,
                search_value: Text::new(value).map_err(|e| ApiError::Malformed(e.to_string()))?,
            };
            let response = provider.accounts().discover(&domain, request).await?;
            let code = discovery_code(response.code);
            let user_id = (!response.uri.is_empty()).then(|| response.uri.to_string());
            Ok(json_response(
                StatusCode::OK,
                &DiscoverBody { code, user_id },
            ))
        }
        (Method::POST, ["v1", "key-packages", "claim"]) => {
            let client = authenticate(provider, &req).await?;
            let body: ClaimBody = json_body(req).await?;
            let room: RoomId = parse(&body.room_id, "room_id")?;
            let user: UserId = parse(&body.user_id, "user_id")?;
            let clients = body
                .clients
                .iter()
                .map(|c| parse::<ClientId>(c, "client"))
                .collect::<Result<Vec<_>, _>>()?;
            let entries = provider
                .accounts()
                .claim_key_packages(&client, &room, &user, clients)
                .await?;
            Ok(json_response(
                StatusCode::OK,
                &ClaimedBody {
                    key_packages: entries
                        .iter()
                        .map(|e| ClaimedEntry {
                            client_id: e.client.to_string(),
                            key_package: b64(e.key_package.as_slice()),
                        })
                        .collect(),
                },
            ))
        }
        (Method::POST, ["v1", "rooms", "prepare"]) => {
            let client = authenticate(provider, &req).await?;
            let bytes = body_bytes(req).await?;
            let body: PrepareBody = if bytes.is_empty() {
                PrepareBody::default()
            } else {
                serde_json::from_slice(&bytes)
                    .map_err(|e| ApiError::Malformed(format!("JSON: {e}")))?
            };
            let prepared = provider
                .rooms()
                .prepare_room(&client, parse_join_rule(body.join_rule.as_deref())?)?;
            Ok(json_response(
                StatusCode::OK,
                &PreparedBody {
                    room_id: prepared.room_id.to_string(),
                    room_state: b64(&prepared
                        .room_state
                        .encode()
                        .map_err(|e| ApiError::Internal(e.to_string()))?),
                    hub_external_sender: b64(&prepared.hub_external_sender),
                },
            ))
        }
        (Method::POST, ["v1", "rooms"]) => {
            let client = authenticate(provider, &req).await?;
            let body: CreateBody = json_body(req).await?;
            let room: RoomId = parse(&body.room_id, "room_id")?;
            let group = CreateGroupRequest {
                group_info: MlsBytes::new(unb64(&body.group_info, "group_info")?)
                    .map_err(|e| ApiError::Malformed(e.to_string()))?,
                ratchet_tree: MlsBytes::new(unb64(&body.ratchet_tree, "ratchet_tree")?)
                    .map_err(|e| ApiError::Malformed(e.to_string()))?,
            };
            let sequence = provider
                .rooms()
                .create_room(
                    &client,
                    &room,
                    parse_join_rule(body.join_rule.as_deref())?,
                    group,
                )
                .await?;
            Ok(json_response(StatusCode::OK, &SequenceBody { sequence }))
        }
        (Method::POST, ["v1", "rooms", room, "events"]) => {
            let room: RoomId = parse(&percent_decode(room)?, "room")?;
            let client = authenticate(provider, &req).await?;
            let bytes = body_bytes(req).await?;
            let event =
                Event::decode(&bytes).map_err(|e| ApiError::Malformed(format!("event: {e}")))?;
            let (accepted, response) = provider.rooms().submit(&client, &room, event).await?;
            let body = encode_response(&response)?;
            let status = if accepted {
                StatusCode::OK
            } else {
                StatusCode::BAD_REQUEST
            };
            Ok(binary_response(status, body))
        }
        (Method::GET, ["v1", "rooms", room, "state"]) => {
            let room: RoomId = parse(&percent_decode(room)?, "room")?;
            let client = authenticate(provider, &req).await?;
            let (state, sequence) = provider.rooms().room_state(&client, &room).await?;
            Ok(json_response(
                StatusCode::OK,
                &StateBody {
                    room_state: b64(&state
                        .encode()
                        .map_err(|e| ApiError::Internal(e.to_string()))?),
                    sequence,
                },
            ))
        }
        (Method::POST, ["v1", "rooms", room, "hub-removals"]) => {
            let room: RoomId = parse(&percent_decode(room)?, "room")?;
            let client = authenticate(provider, &req).await?;
            let (state, _) = provider.rooms().room_state(&client, &room).await?;
            if !state
                .participants
                .iter()
                .any(|p| p.user_id == client.user())
            {
                return Err(ApiError::NotAMember {
                    user: client.user(),
                    room,
                });
            }
            let proposed = provider.rooms().propose_pending_removals(&room).await?;
            Ok(json_response(StatusCode::OK, &ProposedBody { proposed }))
        }
        (Method::GET, ["v1", "inbox"]) => {
            let client = authenticate(provider, &req).await?;
            let after = query_param(&req, "after")?
                .map(|a| parse::<u64>(&a, "after"))
                .transpose()?
                .unwrap_or(0);
            let limit = query_param(&req, "limit")?
                .map(|l| parse::<usize>(&l, "limit"))
                .transpose()?
                .unwrap_or(MAX_INBOX_PAGE)
                .min(MAX_INBOX_PAGE);
            let wait = query_param(&req, "wait_ms")?
                .map(|w| parse::<u64>(&w, "wait_ms"))
                .transpose()?
                .map_or(Duration::ZERO, Duration::from_millis)
                .min(MAX_INBOX_WAIT);
            let items = provider.inbox().wait(&client, after, limit, wait).await?;
            Ok(json_response(
                StatusCode::OK,
                &InboxBody {
                    items: items
                        .into_iter()
                        .map(|(cursor, message)| InboxItem {
                            cursor,
                            message: b64(&message),
                        })
                        .collect(),
                },
            ))
        }
        (_, ["v1", ..]) => Err(ApiError::NoEndpoint(path)),
        _ => Err(ApiError::NoEndpoint(path)),
    }
}

fn encode_response(response: &EventResponse) -> Result<Vec<u8>, ApiError> {
    use tls_codec::Serialize as _;
    response
        .tls_serialize_detached()
        .map_err(|e| ApiError::Internal(e.to_string()))
}
