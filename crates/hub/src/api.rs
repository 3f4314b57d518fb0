//! The provider-internal client API (`docs/client-api.md`), served on the transport's
//! server ([`mimi_transport::serve_http`]: its connection cap, timeouts and graceful drain,
//! server-authenticated TLS, the body limit) with the endpoints of `mimi-client-api`.
//!
//! A thin shell over [`Provider`]'s methods: one handler per endpoint decodes the
//! endpoint's request type, authenticates, calls the provider and returns the endpoint's
//! response type. Errors reach the client only as a `mimi_client_api::Error`, whose
//! [`ErrorCode`] decides the status.

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use hyper::header::CONTENT_TYPE;
use hyper::{Request, Response};
use mimi_client_api::{
    Endpoint, EndpointId, EndpointResponse, Error, ErrorCode, MAX_NAME_PART, MAX_REQUEST_BODY,
    Metadata, bearer_token, claim_key_packages, create_room, create_room06, discover, find,
    hub_removals, inbox, messages06, prepare_room, publish_key_packages, register, relay06,
    report_abuse, room_state, submit_event,
};
use mimi_codec::{
    ClientId, CreateGroupRequest, IdentifierRequest, JoinRule, MlsBytes, ParticipationState,
    RoomId, Text,
};
use mimi_transport::{BodyRefusal, HttpConfig, HttpService, RemoteAddr};
use tokio::net::TcpListener;

use crate::error::{ApiError, ErrorClass};
use crate::limits::Limited;
use crate::provider::Provider;

/// Serve the client API on `listener` until `shutdown` resolves. `tls` should request no
/// client certificate (`mimi_transport::tls::server_config_without_client_auth`).
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    provider: Arc<Provider>,
    shutdown: impl Future<Output = ()>,
) {
    serve_with(listener, config(tls), provider, shutdown).await;
}

/// The transport configuration of the client API: the default connection limits and
/// [`MAX_REQUEST_BODY`].
pub fn config(tls: Arc<rustls::ServerConfig>) -> HttpConfig {
    HttpConfig::new(tls, MAX_REQUEST_BODY)
}

/// Serve the client API with an explicit transport configuration.
pub async fn serve_with(
    listener: TcpListener,
    config: HttpConfig,
    provider: Arc<Provider>,
    shutdown: impl Future<Output = ()>,
) {
    let api: Arc<dyn HttpService> = Arc::new(ClientApi { provider });
    mimi_transport::serve_http(listener, config, api, shutdown).await;
}

/// The client API as the transport's [`HttpService`].
pub struct ClientApi {
    provider: Arc<Provider>,
}

impl ClientApi {
    /// The API of `provider`.
    pub fn new(provider: Arc<Provider>) -> Self {
        ClientApi { provider }
    }
}

fn to_hyper(response: hyper::Response<Vec<u8>>) -> Response<Bytes> {
    response.map(Bytes::from)
}

fn error_response(error: &Error) -> Response<Bytes> {
    to_hyper(error.to_http_response())
}

fn answer<R: EndpointResponse>(endpoint: &Metadata, result: Result<R, Error>) -> Response<Bytes> {
    match result.and_then(|r| r.try_into_http_response().map_err(Error::from)) {
        Ok(response) => to_hyper(response),
        Err(error) => {
            if !endpoint.may_answer(error.code) {
                tracing::warn!(
                    endpoint = ?endpoint.id,
                    code = %error.code,
                    "an error code the endpoint does not declare in mimi-client-api"
                );
            }
            error_response(&error)
        }
    }
}

/// The one mapping of the provider's errors to the API's codes.
fn api_error(e: ApiError) -> Error {
    let code = match e.class() {
        ErrorClass::Malformed => ErrorCode::Malformed,
        ErrorClass::Unauthorized => ErrorCode::Unauthorized,
        ErrorClass::Forbidden => ErrorCode::Forbidden,
        ErrorClass::NotFound => ErrorCode::NotFound,
        ErrorClass::Conflict => ErrorCode::Conflict,
        ErrorClass::TooLarge => ErrorCode::TooLarge,
        ErrorClass::Remote => ErrorCode::Remote,
        ErrorClass::Unavailable => ErrorCode::Unavailable,
        ErrorClass::Internal => ErrorCode::Internal,
    };
    Error::new(code, e.to_string())
}

/// Rule HUB-API-3 (docs/protocol-coverage.md): a body over the endpoint's own limit
/// ([`Metadata::body_limit`], below the transport's [`MAX_REQUEST_BODY`] for JSON bodies)
/// is refused `413` before it is parsed.
fn check_body_limit(endpoint: &Metadata, body: &[u8]) -> Result<(), Error> {
    let limit = endpoint.body_limit();
    if body.len() > limit {
        return Err(Error::new(
            ErrorCode::TooLarge,
            format!("the body is over the limit of {limit} bytes"),
        ));
    }
    Ok(())
}

/// The `429` answer of a request over its rate limit.
fn rate_limited(limited: Limited, what: &str) -> Error {
    let mut error = Error::new(
        ErrorCode::RateLimited,
        format!("too many {what}; retry after {:?}", limited.retry_after),
    );
    error.retry_after = Some(limited.retry_after);
    error
}

/// Rule HUB-API-4 (docs/protocol-coverage.md): a room a caller may not see is answered
/// as one that does not exist would be, `403`: the answer does not tell whether the room
/// exists (`docs/spec-decisions.md`).
fn hide_room(client: &ClientId, e: ApiError) -> ApiError {
    match e {
        ApiError::UnknownRoom(room) => ApiError::NotAMember {
            user: client.user(),
            room,
        },
        e => e,
    }
}

#[async_trait]
impl HttpService for ClientApi {
    /// Rule HUB-API-2 (docs/protocol-coverage.md).
    fn check_head(&self, head: &hyper::http::request::Parts) -> Option<Response<Bytes>> {
        let endpoint = match find(&head.method, head.uri.path()) {
            Ok(endpoint) => endpoint,
            Err(error) => return Some(error_response(&error)),
        };
        let content_type = head.headers.get(CONTENT_TYPE);
        if endpoint.accepts_content_type(content_type) {
            return None;
        }
        let error = Error::new(
            ErrorCode::UnsupportedMediaType,
            format!(
                "{} {} takes {}",
                endpoint.method,
                endpoint.path,
                endpoint.content_type.unwrap_or(mimi_client_api::JSON)
            ),
        );
        Some(error_response(&error))
    }

    async fn call(&self, request: Request<Bytes>) -> Response<Bytes> {
        let endpoint = match find(request.method(), request.uri().path()) {
            Ok(endpoint) => endpoint,
            Err(error) => return error_response(&error),
        };
        if let Err(error) = check_body_limit(endpoint, request.body()) {
            return error_response(&error);
        }
        let started = std::time::Instant::now();
        let response = match endpoint.id {
            EndpointId::Register => answer(endpoint, self.register(&request).await),
            EndpointId::PublishKeyPackages => {
                answer(endpoint, self.publish_key_packages(&request).await)
            }
            EndpointId::Discover => answer(endpoint, self.discover(&request).await),
            EndpointId::ClaimKeyPackages => {
                answer(endpoint, self.claim_key_packages(&request).await)
            }
            EndpointId::PrepareRoom => answer(endpoint, self.prepare_room(&request).await),
            EndpointId::CreateRoom => answer(endpoint, self.create_room(&request).await),
            EndpointId::SubmitEvent => answer(endpoint, self.submit_event(&request).await),
            EndpointId::RoomState => answer(endpoint, self.room_state(&request).await),
            EndpointId::HubRemovals => answer(endpoint, self.hub_removals(&request).await),
            EndpointId::Inbox => answer(endpoint, self.inbox(&request).await),
            EndpointId::ReportAbuse => answer(endpoint, self.report_abuse(&request).await),
            EndpointId::CreateRoom06 => answer(endpoint, self.create_room06(&request).await),
            EndpointId::Relay06 => answer(endpoint, self.relay06(&request).await),
            EndpointId::Messages06 => answer(endpoint, self.messages06(&request).await),
        };
        let name = format!("{:?}", endpoint.id);
        self.provider
            .metrics()
            .request("api", &name, started.elapsed());
        response
    }

    fn refuse(&self, refusal: BodyRefusal) -> Response<Bytes> {
        let error = match refusal {
            BodyRefusal::TooLarge { limit } => Error::new(
                ErrorCode::TooLarge,
                format!("the body is over the limit of {limit} bytes"),
            ),
            BodyRefusal::Timeout => Error::malformed("the body did not arrive in time"),
            BodyRefusal::Broken => Error::malformed("the body could not be read"),
        };
        error_response(&error)
    }
}

/// The address a request came from (the transport's [`RemoteAddr`]; `None` for a request
/// that did not come through [`mimi_transport::serve_http`]).
fn source_of(request: &Request<Bytes>) -> Option<std::net::IpAddr> {
    request
        .extensions()
        .get::<RemoteAddr>()
        .map(|remote| remote.0.ip())
}

impl ClientApi {
    /// The authenticated caller: the request must carry a valid bearer token. A source
    /// address over its failed-check limit is answered 429 without its token being checked.
    async fn caller(&self, request: &Request<Bytes>) -> Result<ClientId, Error> {
        let token = bearer_token(request)?
            .ok_or_else(|| Error::new(ErrorCode::Unauthorized, "a bearer token is required"))?;
        let source = source_of(request);
        if let Some(address) = source {
            self.provider
                .limiter()
                .source_locked_out(address)
                .map_err(|l| rate_limited(l, "failed token checks from this address"))?;
        }
        match self.provider.accounts().authenticate(token).await {
            Err(ApiError::Unauthorized) => Err(self.failed_auth(token, source)),
            other => other.map_err(api_error),
        }
    }

    /// Rule HUB-RATE-2 (docs/protocol-coverage.md): a failed token check counts against
    /// its source — the client the token names, and the address it came from; past either
    /// limit it is answered 429, and each source is logged at most once per
    /// `FAILED_AUTH_LOG_INTERVAL`.
    fn failed_auth(&self, token: &str, address: Option<std::net::IpAddr>) -> Error {
        let source: String = token
            .split('.')
            .next()
            .unwrap_or_default()
            .chars()
            .take(MAX_NAME_PART)
            .collect();
        let limiter = self.provider.limiter();
        if limiter.log_failed_auth(&source) {
            tracing::warn!(%source, address = ?address, "a failed token check (logged once a minute per source)");
        }
        let by_address = address.map(|a| limiter.failed_auth_per_source.take(&a));
        match (limiter.failed_auth.take(&source), by_address) {
            (Err(limited), _) => rate_limited(limited, "failed token checks"),
            (_, Some(Err(limited))) => {
                rate_limited(limited, "failed token checks from this address")
            }
            _ => Error::new(ErrorCode::Unauthorized, "unauthorized"),
        }
    }

    /// The caller and its decoded request.
    async fn accept<E: Endpoint>(&self, request: &Request<Bytes>) -> Result<(ClientId, E), Error> {
        let client = self.caller(request).await?;
        Ok((client, E::try_from_http_request(request)?))
    }

    async fn register(&self, request: &Request<Bytes>) -> Result<register::Response, Error> {
        let by = match bearer_token(request)? {
            Some(_) => Some(self.caller(request).await?),
            None => {
                // Rule HUB-RATE-1 (docs/protocol-coverage.md): new users, per source
                // address and for the whole provider.
                let limiter = self.provider.limiter();
                if let Some(address) = source_of(request) {
                    limiter
                        .registrations_per_source
                        .take(&address)
                        .map_err(|l| rate_limited(l, "registrations from this address"))?;
                }
                limiter
                    .registrations
                    .take(&())
                    .map_err(|l| rate_limited(l, "registrations"))?;
                None
            }
        };
        let body = register::Request::try_from_http_request(request)?;
        body.check_limits()?;
        self.provider
            .accounts()
            .register(body, by)
            .await
            .map_err(api_error)
    }

    async fn publish_key_packages(
        &self,
        request: &Request<Bytes>,
    ) -> Result<publish_key_packages::Response, Error> {
        let (client, body) = self
            .accept::<publish_key_packages::Request>(request)
            .await?;
        let stored = self
            .provider
            .accounts()
            .publish_key_packages(&client, body.key_packages)
            .await
            .map_err(api_error)?;
        Ok(publish_key_packages::Response { stored })
    }

    async fn report_abuse(
        &self,
        request: &Request<Bytes>,
    ) -> Result<report_abuse::Response, Error> {
        let (client, body) = self.accept::<report_abuse::Request>(request).await?;
        self.provider
            .report_abuse(&client.user(), body)
            .await
            .map_err(api_error)
    }

    async fn discover(&self, request: &Request<Bytes>) -> Result<discover::Response, Error> {
        let (client, query) = self.accept::<discover::Request>(request).await?;
        self.provider
            .limiter()
            .discoveries_per_user
            .take(&client.user())
            .map_err(|l| rate_limited(l, "discoveries"))?;
        let identifier = IdentifierRequest {
            query: query.field,
            search_value: Text::new(query.value)
                .map_err(|e| Error::malformed(format!("value: {e}")))?,
        };
        let found = self
            .provider
            .accounts()
            .discover(&query.domain, identifier)
            .await
            .map_err(api_error)?;
        Ok(discover::Response {
            code: found.code.into(),
            user_id: (!found.uri.is_empty()).then(|| found.uri.to_string()),
        })
    }

    async fn claim_key_packages(
        &self,
        request: &Request<Bytes>,
    ) -> Result<claim_key_packages::Response, Error> {
        let (client, body) = self.accept::<claim_key_packages::Request>(request).await?;
        self.provider
            .limiter()
            .claims_per_client
            .take(&client)
            .map_err(|l| rate_limited(l, "key-package claims"))?;
        self.check_claim_room(&client, &body.room_id).await?;
        let entries = self
            .provider
            .accounts()
            .claim_key_packages(&client, &body.room_id, &body.user_id, body.clients)
            .await
            .map_err(api_error)?;
        Ok(claim_key_packages::Response {
            key_packages: entries
                .into_iter()
                .map(|e| claim_key_packages::ClaimedKeyPackage {
                    client_id: e.client,
                    key_package: e.key_package.as_slice().to_vec(),
                })
                .collect(),
        })
    }

    /// Rule HUB-RATE-3 (docs/protocol-coverage.md): key packages are claimed for a room
    /// this provider has (as hub or follower) and the claimer has joined: not for a
    /// made-up room, nor one of another server this provider does not take part in.
    async fn check_claim_room(&self, client: &ClientId, room: &RoomId) -> Result<(), Error> {
        let (state, _) = self
            .provider
            .rooms()
            .room_state(client, room)
            .await
            .map_err(|e| api_error(hide_room(client, e)))?;
        let user = client.user();
        let joined = state
            .participants
            .iter()
            .any(|p| p.user_id == user && p.state == ParticipationState::Join);
        if !joined {
            return Err(Error::new(
                ErrorCode::Forbidden,
                "key packages are claimed for a room the claimer has joined",
            ));
        }
        Ok(())
    }

    async fn prepare_room(
        &self,
        request: &Request<Bytes>,
    ) -> Result<prepare_room::Response, Error> {
        let (client, body) = self.accept::<prepare_room::Request>(request).await?;
        let join_rule = body.join_rule.unwrap_or(JoinRule::MembersOnly);
        let prepared = self
            .provider
            .rooms()
            .prepare_room(&client, join_rule)
            .map_err(api_error)?;
        Ok(prepare_room::Response {
            room_id: prepared.room_id,
            room_state: prepared.room_state,
            hub_external_sender: prepared.hub_external_sender,
            franking_agent: self
                .provider
                .franking()
                .agent(self.provider.server_name())
                .ok()
                .and_then(|agent| mimi_codec::Wire::encode(&agent).ok()),
        })
    }

    async fn create_room(&self, request: &Request<Bytes>) -> Result<create_room::Response, Error> {
        let (client, body) = self.accept::<create_room::Request>(request).await?;
        let mls = |bytes: Vec<u8>, what: &str| {
            MlsBytes::new(bytes).map_err(|e| Error::malformed(format!("{what}: {e}")))
        };
        let group = CreateGroupRequest {
            group_info: mls(body.group_info, "group_info")?,
            ratchet_tree: mls(body.ratchet_tree, "ratchet_tree")?,
        };
        let join_rule = body.join_rule.unwrap_or(JoinRule::MembersOnly);
        let sequence = self
            .provider
            .rooms()
            .create_room(&client, &body.room_id, join_rule, group)
            .await
            .map_err(api_error)?;
        Ok(create_room::Response { sequence })
    }

    async fn create_room06(
        &self,
        request: &Request<Bytes>,
    ) -> Result<create_room06::Response, Error> {
        let (client, body) = self.accept::<create_room06::Request>(request).await?;
        let room = body
            .room
            .parse()
            .map_err(|e| Error::malformed(format!("room: {e}")))?;
        let epoch = self
            .provider
            .create_room06(&client, &room, &body.group_info, &body.ratchet_tree)
            .await
            .map_err(api_error)?;
        Ok(create_room06::Response { epoch })
    }

    async fn relay06(&self, request: &Request<Bytes>) -> Result<relay06::Response, Error> {
        let (client, body) = self.accept::<relay06::Request>(request).await?;
        let (status, body) = self
            .provider
            .relay06(&client, &body.endpoint, &body.variable, body.body)
            .await
            .map_err(api_error)?;
        Ok(relay06::Response { status, body })
    }

    async fn messages06(&self, request: &Request<Bytes>) -> Result<messages06::Response, Error> {
        let (client, body) = self.accept::<messages06::Request>(request).await?;
        let room = body
            .room
            .parse()
            .map_err(|e| Error::malformed(format!("room: {e}")))?;
        if !self
            .provider
            .may_read06(&client, &room)
            .await
            .map_err(|e| api_error(ApiError::Storage(e)))?
        {
            return Err(Error::new(
                ErrorCode::Forbidden,
                format!("{client} is not a participant of {room}"),
            ));
        }
        let messages = self
            .provider
            .messages06_after(&room, body.after)
            .await
            .map_err(|e| api_error(ApiError::Storage(e)))?;
        let mut out = Vec::new();
        for m in messages {
            out.push(
                mimi_codec::Wire::encode(&m)
                    .map_err(|e| Error::new(ErrorCode::Internal, e.to_string()))?,
            );
        }
        Ok(messages06::Response { messages: out })
    }

    async fn submit_event(
        &self,
        request: &Request<Bytes>,
    ) -> Result<submit_event::Response, Error> {
        let (client, body) = self.accept::<submit_event::Request>(request).await?;
        let (_, response) = self
            .provider
            .rooms()
            .submit(&client, &body.room, body.event)
            .await
            .map_err(api_error)?;
        Ok(submit_event::Response { response })
    }

    async fn room_state(&self, request: &Request<Bytes>) -> Result<room_state::Response, Error> {
        let (client, body) = self.accept::<room_state::Request>(request).await?;
        let (room_state, sequence) = self
            .provider
            .rooms()
            .room_state(&client, &body.room)
            .await
            .map_err(|e| api_error(hide_room(&client, e)))?;
        Ok(room_state::Response {
            room_state,
            sequence,
        })
    }

    async fn hub_removals(
        &self,
        request: &Request<Bytes>,
    ) -> Result<hub_removals::Response, Error> {
        let (client, body) = self.accept::<hub_removals::Request>(request).await?;
        let (state, _) = self
            .provider
            .rooms()
            .room_state(&client, &body.room)
            .await
            .map_err(|e| api_error(hide_room(&client, e)))?;
        if !state
            .participants
            .iter()
            .any(|p| p.user_id == client.user())
        {
            return Err(Error::new(
                ErrorCode::Forbidden,
                "only participants may ask",
            ));
        }
        let proposed = self
            .provider
            .rooms()
            .propose_pending_removals(&body.room)
            .await
            .map_err(api_error)?;
        Ok(hub_removals::Response { proposed })
    }

    async fn inbox(&self, request: &Request<Bytes>) -> Result<inbox::Response, Error> {
        let (client, query) = self.accept::<inbox::Request>(request).await?;
        let items = self
            .provider
            .inbox()
            .wait(&client, query.after, query.page_limit(), query.wait_bound())
            .await
            .map_err(api_error)?;
        Ok(inbox::Response {
            items: items
                .into_iter()
                .map(|(cursor, message)| inbox::Item { cursor, message })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_rate_limited_answer_is_429_with_retry_after() {
        let limited = Limited {
            retry_after: Duration::from_millis(5200),
        };
        let response = rate_limited(limited, "claims").to_http_response();
        assert_eq!(response.status(), hyper::StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[hyper::header::RETRY_AFTER], "6");
    }
}
