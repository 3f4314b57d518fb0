//! The admin listener: plain HTTP/1.1 on an address of the operator's choice (`[admin]
//! listen`, a loopback address: it is off the federation and client ports and carries no
//! TLS; see `docs/operator.md`, "Admin listener"), and its client for `mimi-hub admin`.
//!
//! - `GET /healthz`: 200 while the process serves.
//! - `GET /readyz`: 200 once storage answers a real read and a real write (an outbox
//!   acknowledgement of an id never assigned: a write transaction that changes nothing);
//!   503 with the reason otherwise.
//! - `GET /metrics`: every metric of [`crate::metrics`] in the OpenMetrics text format.
//! - `/admin/...`: the operator's commands, with `Authorization: Bearer <admin token>` (the
//!   token of `[admin] token_file`; without one they answer 404): create a user (even with
//!   registration closed), list users, list rooms (role, last sequence number), list the
//!   -06 abuse reports kept as a hub, revoke a client, show the outbox per destination,
//!   retry a destination now, back up storage.
//!
//! Answers are JSON. Nothing here logs a token or a message body.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use mimi_codec::{ClientId, ServerName, UserId};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::accounts::Registration;
use crate::provider::Provider;
use crate::storage::{MAX_READ_LIMIT, RoomRole, StorageError};

/// Largest admin request body.
pub const MAX_ADMIN_BODY: usize = 64 * 1024;
/// Bound on receiving an admin request's headers.
pub const ADMIN_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on each storage probe of `/readyz`.
pub const READY_PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Shortest admin token accepted in `[admin] token_file`.
pub const MIN_ADMIN_TOKEN_LEN: usize = 16;
/// The destination an outbox acknowledgement probe names (`.invalid` is never a peer).
const PROBE_DESTINATION: &str = "readyz.invalid";

/// What the admin listener serves.
pub struct AdminState {
    provider: Arc<Provider>,
    token_hash: Option<[u8; 32]>,
    /// The provider's listeners whose established connections `/metrics` counts.
    listeners: Vec<(&'static str, u16)>,
}

impl std::fmt::Debug for AdminState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminState")
            .field("listeners", &self.listeners)
            .finish_non_exhaustive()
    }
}

/// Why an admin token could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The file could not be read.
    #[error("cannot read the admin token file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The token is too short.
    #[error("the admin token in {0} is shorter than {MIN_ADMIN_TOKEN_LEN} characters")]
    TooShort(String),
}

/// Read the admin token from `path` (its first line, trimmed).
pub fn read_token(path: &std::path::Path) -> Result<String, TokenError> {
    let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let token = text.lines().next().unwrap_or("").trim().to_string();
    if token.len() < MIN_ADMIN_TOKEN_LEN {
        return Err(TokenError::TooShort(path.display().to_string()));
    }
    Ok(token)
}

impl AdminState {
    /// The admin interface of `provider`; `token` enables the `/admin/` commands;
    /// `listeners` are the provider's (name, port) whose connections `/metrics` counts.
    pub fn new(
        provider: Arc<Provider>,
        token: Option<&str>,
        listeners: Vec<(&'static str, u16)>,
    ) -> Arc<AdminState> {
        Arc::new(AdminState {
            provider,
            token_hash: token.map(|t| Sha256::digest(t.as_bytes()).into()),
            listeners,
        })
    }
}

/// Serve the admin interface on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AdminState>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "admin: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let state = Arc::clone(&state);
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let state = Arc::clone(&state);
                async move { Ok::<_, Infallible>(state.answer(request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(ADMIN_HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn reply((status, body): Reply) -> Response<Full<Bytes>> {
    respond(status, body)
}

fn respond(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

/// A status and a JSON body.
type Reply = (StatusCode, Value);

fn problem(status: StatusCode, detail: impl std::fmt::Display) -> Reply {
    (status, json!({ "error": detail.to_string() }))
}

fn storage_problem(e: &StorageError) -> Reply {
    problem(StatusCode::SERVICE_UNAVAILABLE, e)
}

impl AdminState {
    async fn answer(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let (head, body) = request.into_parts();
        let path = head.uri.path().to_string();
        match (&head.method, path.as_str()) {
            (&Method::GET, "/healthz") => return respond(StatusCode::OK, json!({"status": "ok"})),
            (&Method::GET, "/readyz") => return self.readyz().await,
            (&Method::GET, "/metrics") => return self.metrics().await,
            _ => {}
        }
        let Some(rest) = path.strip_prefix("/admin/") else {
            return reply(problem(StatusCode::NOT_FOUND, "no such path"));
        };
        let Some(expected) = self.token_hash else {
            return reply(problem(
                StatusCode::NOT_FOUND,
                "the admin commands are off (no [admin] token_file)",
            ));
        };
        let given = head
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| -> [u8; 32] { Sha256::digest(t.trim().as_bytes()).into() });
        let authorized = given.is_some_and(|g| {
            g.iter()
                .zip(expected.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
        });
        if !authorized {
            return reply(problem(
                StatusCode::UNAUTHORIZED,
                "a valid admin token is required",
            ));
        }
        let body = match Limited::new(body, MAX_ADMIN_BODY).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => return reply(problem(StatusCode::PAYLOAD_TOO_LARGE, "body too large")),
        };
        let json_body = || -> Result<Value, Reply> {
            if body.is_empty() {
                return Ok(Value::Null);
            }
            serde_json::from_slice(&body)
                .map_err(|e| problem(StatusCode::BAD_REQUEST, format!("body: {e}")))
        };
        let segments: Vec<&str> = rest.split('/').collect();
        let result = match (&head.method, segments.as_slice()) {
            (&Method::POST, ["users"]) => match json_body() {
                Ok(v) => self.create_user(v).await,
                Err(r) => return reply(r),
            },
            (&Method::GET, ["users"]) => self.list_users(head.uri.query()).await,
            (&Method::GET, ["rooms"]) => self.list_rooms().await,
            (&Method::GET, ["abuse-reports"]) => self.list_abuse_reports(head.uri.query()).await,
            (&Method::POST, ["clients", client, "revoke"]) => self.revoke(client).await,
            (&Method::GET, ["outbox"]) => self.outbox().await,
            (&Method::POST, ["outbox", dest, "retry"]) => self.retry(dest),
            (&Method::POST, ["backup"]) => match json_body() {
                Ok(v) => self.backup(v).await,
                Err(r) => return reply(r),
            },
            _ => Err(problem(StatusCode::NOT_FOUND, "no such admin command")),
        };
        reply(result.unwrap_or_else(|r| r))
    }

    /// Rule HUB-ADMIN-1 (docs/protocol-coverage.md).
    async fn readyz(&self) -> Response<Full<Bytes>> {
        match self.probe().await {
            Ok(()) => respond(StatusCode::OK, json!({"status": "ready"})),
            Err(reason) => {
                tracing::warn!(%reason, "not ready");
                respond(
                    StatusCode::SERVICE_UNAVAILABLE,
                    json!({"status": "not ready", "error": reason}),
                )
            }
        }
    }

    /// A real read and a real write of storage, each within [`READY_PROBE_TIMEOUT`].
    async fn probe(&self) -> Result<(), String> {
        let ctx = self.provider.context();
        let probe_user =
            UserId::new("readyz", &ctx.server_name).map_err(|e| format!("probe user: {e}"))?;
        let read = ctx.blocking(move |s| s.user(&probe_user).map(|_| ()));
        match tokio::time::timeout(READY_PROBE_TIMEOUT, read).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(format!("storage read: {e}")),
            Err(_) => return Err("storage read: timed out".into()),
        }
        let dest: ServerName = PROBE_DESTINATION
            .parse()
            .map_err(|e| format!("probe destination: {e}"))?;
        // Id 0 is never assigned (`storage::FIRST_ID`): the write removes nothing. It goes
        // through the writer and the journal the events use, but, like every
        // acknowledgement, waits for no sync of its own (rule HUB-STORE-14).
        let write = ctx.blocking(move |s| s.outbox_ack(&dest, &[0]));
        match tokio::time::timeout(READY_PROBE_TIMEOUT, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("storage write: {e}")),
            Err(_) => Err("storage write: timed out".into()),
        }
    }

    async fn metrics(&self) -> Response<Full<Bytes>> {
        let metrics = Arc::clone(self.provider.metrics());
        let m = Arc::clone(&metrics);
        let outbox = match self.provider.context().blocking(move |s| m.outbox(s)).await {
            Ok(outbox) => outbox,
            Err(e) => {
                tracing::warn!(error = %e, "metrics: cannot read the outbox");
                Vec::new()
            }
        };
        let connections: Vec<(&'static str, Option<u64>)> = self
            .listeners
            .iter()
            .map(|(name, port)| (*name, crate::metrics::established_connections(*port)))
            .collect();
        let text = metrics.encode(&outbox, self.provider.rooms().cached(), &connections);
        let mut response = Response::new(Full::new(Bytes::from(text)));
        response.headers_mut().insert(
            CONTENT_TYPE,
            hyper::header::HeaderValue::from_static(
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            ),
        );
        response
    }

    async fn create_user(&self, body: Value) -> Result<Reply, Reply> {
        let field = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_string);
        let (Some(localpart), Some(device)) = (field("localpart"), field("device")) else {
            return Err(problem(
                StatusCode::BAD_REQUEST,
                "localpart and device are required",
            ));
        };
        let registration = Registration {
            localpart,
            device,
            display_name: field("display_name"),
            ..Registration::default()
        };
        match self.provider.accounts().create_user(registration).await {
            Ok(r) => {
                tracing::info!(client = %r.client_id, "admin: user created");
                Ok((
                    StatusCode::OK,
                    json!({"user_id": r.user_id.as_str(), "client_id": r.client_id.as_str(), "token": r.token}),
                ))
            }
            Err(e) => Err(problem(StatusCode::CONFLICT, e)),
        }
    }

    async fn list_users(&self, query: Option<&str>) -> Result<Reply, Reply> {
        let after = match query.and_then(|q| q.strip_prefix("after=")) {
            Some(a) => Some(
                a.parse::<UserId>()
                    .map_err(|e| problem(StatusCode::BAD_REQUEST, format!("after: {e}")))?,
            ),
            None => None,
        };
        let users = self
            .provider
            .context()
            .blocking(move |s| s.users(after.as_ref(), MAX_READ_LIMIT))
            .await
            .map_err(|e| storage_problem(&e))?;
        let mut out = Vec::new();
        for user in &users {
            let u = user.clone();
            let clients = self
                .provider
                .context()
                .blocking(move |s| s.clients_of(&u))
                .await
                .map_err(|e| storage_problem(&e))?;
            out.push(json!({
                "user_id": user.as_str(),
                "clients": clients.iter().map(|c| c.as_str().to_string()).collect::<Vec<_>>(),
            }));
        }
        let next = (users.len() == MAX_READ_LIMIT)
            .then(|| users.last().map(|u| u.as_str().to_string()))
            .flatten();
        Ok((StatusCode::OK, json!({"users": out, "next": next})))
    }

    async fn list_rooms(&self) -> Result<Reply, Reply> {
        let rooms = self
            .provider
            .context()
            .blocking(|s| {
                let mut out = Vec::new();
                for room in s.rooms()? {
                    if let Some(record) = s.room(&room)? {
                        out.push((room, record.role, record.last_seq));
                    }
                }
                Ok(out)
            })
            .await
            .map_err(|e| storage_problem(&e))?;
        let rooms: Vec<Value> = rooms
            .into_iter()
            .map(|(room, role, last_seq)| {
                json!({
                    "room": room.as_str(),
                    "role": match role { RoomRole::Hub => "hub", RoomRole::Follower => "follower" },
                    "last_seq": last_seq,
                })
            })
            .collect();
        Ok((StatusCode::OK, json!({"rooms": rooms})))
    }

    /// The -06 abuse reports this provider keeps as a hub, oldest first, a page at a time
    /// (`?after=<id>` for the next).
    async fn list_abuse_reports(&self, query: Option<&str>) -> Result<Reply, Reply> {
        use crate::v06::abuse::MAX_REPORT_PAGE;
        let after = query.and_then(|q| q.strip_prefix("after="));
        if after.is_some_and(|a| hex::decode(a).is_err()) {
            return Err(problem(StatusCode::BAD_REQUEST, "after: not a report id"));
        }
        let reports = self
            .provider
            .abuse_reports()
            .list(after, MAX_REPORT_PAGE)
            .await
            .map_err(|e| storage_problem(&e))?;
        let out: Vec<Value> = reports
            .iter()
            .map(|r| {
                let messages: Vec<Value> = r
                    .report
                    .messages
                    .as_slice()
                    .iter()
                    .map(|m| {
                        json!({
                            "accepted_timestamp": m.accepted_timestamp,
                            "content": mimi_client_api::b64_encode(m.message_content.as_slice()),
                        })
                    })
                    .collect();
                json!({
                    "id": r.id,
                    "from": r.from,
                    "room": r.room,
                    "received_at": r.received_at,
                    "reporting_user": r.report.reporting_user.get().map(|u| u.as_str().to_owned()),
                    "alleged_abuser": r.report.alleged_abuser_uri.as_str(),
                    "reason": r.report.reason_code.0,
                    "note": r.report.note.as_str(),
                    "messages": messages,
                })
            })
            .collect();
        let next = (reports.len() == MAX_REPORT_PAGE)
            .then(|| reports.last().map(|r| r.id.clone()))
            .flatten();
        Ok((StatusCode::OK, json!({"reports": out, "next": next})))
    }

    async fn revoke(&self, client: &str) -> Result<Reply, Reply> {
        let client: ClientId = percent_decode(client)
            .parse()
            .map_err(|e| problem(StatusCode::BAD_REQUEST, format!("client: {e}")))?;
        match self.provider.accounts().revoke(&client).await {
            Ok(true) => Ok((StatusCode::OK, json!({"revoked": client.as_str()}))),
            Ok(false) => Err(problem(
                StatusCode::NOT_FOUND,
                format!("no client {client}"),
            )),
            Err(e) => Err(problem(StatusCode::SERVICE_UNAVAILABLE, e)),
        }
    }

    async fn outbox(&self) -> Result<Reply, Reply> {
        let metrics = Arc::clone(self.provider.metrics());
        let outbox = self
            .provider
            .context()
            .blocking(move |s| metrics.outbox(s))
            .await
            .map_err(|e| storage_problem(&e))?;
        let list: Vec<Value> = outbox
            .iter()
            .map(|o| {
                json!({
                    "destination": o.destination.as_str(),
                    "depth": o.depth,
                    "oldest_id": o.oldest_id,
                    "oldest_age_seconds": o.oldest_age.as_secs_f64(),
                })
            })
            .collect();
        Ok((StatusCode::OK, json!({"outbox": list})))
    }

    fn retry(&self, dest: &str) -> Result<Reply, Reply> {
        let dest: ServerName = dest
            .parse()
            .map_err(|e| problem(StatusCode::BAD_REQUEST, format!("destination: {e}")))?;
        self.provider.retry_now().retry(&dest);
        tracing::info!(%dest, "admin: retry now");
        Ok((StatusCode::OK, json!({"retrying": dest.as_str()})))
    }

    async fn backup(&self, body: Value) -> Result<Reply, Reply> {
        let Some(out) = body.get("out").and_then(Value::as_str).map(PathBuf::from) else {
            return Err(problem(
                StatusCode::BAD_REQUEST,
                "out (a file path) is required",
            ));
        };
        if !out.is_absolute() {
            return Err(problem(
                StatusCode::BAD_REQUEST,
                "out must be an absolute path",
            ));
        }
        let o = out.clone();
        self.provider
            .context()
            .blocking(move |s| s.backup(&o))
            .await
            .map_err(|e| problem(StatusCode::INTERNAL_SERVER_ERROR, e))?;
        tracing::info!(out = %out.display(), "admin: backup written");
        Ok((StatusCode::OK, json!({"backup": out.display().to_string()})))
    }
}

/// Decode `%XX` escapes (client identifiers hold `@`, `:` and `#`; `#` must be escaped in
/// a URL path).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Escape what a path segment cannot hold as it is.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@:!$&'()*+,;=".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Why an admin request failed on the client side.
#[derive(Debug, thiserror::Error)]
pub enum AdminClientError {
    /// The admin listener could not be reached.
    #[error("cannot reach the admin listener at {addr}: {source}")]
    Connect {
        /// Its address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// HTTP failed.
    #[error("admin request failed: {0}")]
    Http(String),
    /// The answer was not JSON.
    #[error("the admin listener answered {status} with a body that is not JSON")]
    NotJson {
        /// Its status.
        status: u16,
    },
}

/// One request to an admin listener: `(status, JSON body)`.
pub async fn request(
    addr: SocketAddr,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Result<(u16, Value), AdminClientError> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|source| AdminClientError::Connect { addr, source })?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| AdminClientError::Http(e.to_string()))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    if let Some(token) = token {
        builder = builder.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    let bytes = match body {
        Some(v) => {
            builder = builder.header(CONTENT_TYPE, "application/json");
            Bytes::from(v.to_string())
        }
        None => Bytes::new(),
    };
    let request = builder
        .body(Full::new(bytes))
        .map_err(|e| AdminClientError::Http(e.to_string()))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| AdminClientError::Http(e.to_string()))?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| AdminClientError::Http(e.to_string()))?
        .to_bytes();
    let value = if body.is_empty() {
        Value::Null
    } else if let Ok(v) = serde_json::from_slice(&body) {
        v
    } else {
        // /metrics is text.
        Value::String(
            String::from_utf8(body.to_vec()).map_err(|_| AdminClientError::NotJson { status })?,
        )
    };
    Ok((status, value))
}
