//! What an endpoint is: its [`Metadata`] (method, path template, authentication, request
//! content type, error codes), a request type implementing [`Endpoint`] and a response type
//! implementing [`EndpointResponse`], both converting to and from `http` messages.

use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use http::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::JSON;
use crate::encoding::{Query, percent_decode};
use crate::error::{EncodeError, Error, ErrorCode, ResponseError, error_of};

/// Whether an endpoint needs `Authorization: Bearer <token>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// Always.
    Required,
    /// Only for some requests (registration: a new user needs none, a further device of
    /// an existing user needs the token of one of its clients).
    Optional,
}

/// Which endpoint (to dispatch on without comparing strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndpointId {
    /// `POST /v1/register`.
    Register,
    /// `POST /v1/key-packages`.
    PublishKeyPackages,
    /// `GET /v1/discover`.
    Discover,
    /// `POST /v1/key-packages/claim`.
    ClaimKeyPackages,
    /// `POST /v1/rooms/prepare`.
    PrepareRoom,
    /// `POST /v1/rooms`.
    CreateRoom,
    /// `POST /v1/rooms/{room}/events`.
    SubmitEvent,
    /// `GET /v1/rooms/{room}/state`.
    RoomState,
    /// `POST /v1/rooms/{room}/hub-removals`.
    HubRemovals,
    /// `GET /v1/inbox`.
    Inbox,
    /// `POST /v1/report-abuse`.
    ReportAbuse,
    /// `POST /v1/v06/rooms`.
    CreateRoom06,
    /// `POST /v1/v06/relay`.
    Relay06,
    /// `POST /v1/v06/messages`.
    Messages06,
}

/// Everything about an endpoint but its bodies.
#[derive(Debug, Clone)]
pub struct Metadata {
    /// Which endpoint.
    pub id: EndpointId,
    /// The method.
    pub method: Method,
    /// The path template; `{room}` is a percent-encoded room ID.
    pub path: &'static str,
    /// Whether a bearer token is needed.
    pub auth: Auth,
    /// The request body's content type (`None`: no body).
    pub content_type: Option<&'static str>,
    /// The error codes the endpoint may answer with (besides [`COMMON_ERRORS`]).
    pub errors: &'static [ErrorCode],
}

/// What any endpoint may answer: a malformed request, a body too large or of the wrong
/// type, too many requests, a failure of this server or a temporary one.
pub const COMMON_ERRORS: &[ErrorCode] = &[
    ErrorCode::Malformed,
    ErrorCode::TooLarge,
    ErrorCode::UnsupportedMediaType,
    ErrorCode::RateLimited,
    ErrorCode::Internal,
    ErrorCode::Unavailable,
];

impl Metadata {
    /// The path parameters (percent-decoded) when `path` matches the template, whatever
    /// the method.
    pub fn match_path(&self, path: &str) -> Option<Vec<String>> {
        let mut template = self.path.split('/');
        let mut actual = path.split('/');
        let mut params = Vec::new();
        loop {
            match (template.next(), actual.next()) {
                (None, None) => return Some(params),
                (Some(t), Some(a)) if t.starts_with('{') && t.ends_with('}') => {
                    if a.is_empty() {
                        return None;
                    }
                    params.push(a.to_owned());
                }
                (Some(t), Some(a)) if t == a => {}
                _ => return None,
            }
        }
    }

    /// The path of a room endpoint: the template with `{room}` percent-encoded.
    pub fn room_path(&self, room: &mimi_codec::RoomId) -> String {
        self.path
            .replace("{room}", &crate::encoding::percent_encode(room.as_str()))
    }

    /// The largest request body this endpoint reads: [`crate::MAX_REQUEST_BODY`] for a
    /// TLS-encoded body, [`crate::MAX_JSON_BODY`] for every other (bodyless ones included).
    pub fn body_limit(&self) -> usize {
        match self.content_type {
            Some(crate::OCTET_STREAM) => crate::MAX_REQUEST_BODY,
            _ => crate::MAX_JSON_BODY,
        }
    }

    /// Whether `code` is among the errors this endpoint may answer with.
    pub fn may_answer(&self, code: ErrorCode) -> bool {
        COMMON_ERRORS.contains(&code) || self.errors.contains(&code)
    }

    /// Whether a request's `Content-Type` header suits this endpoint: absent, or the
    /// endpoint's body type (any parameters, any case). An endpoint without a body takes
    /// a request with none, or with a JSON one (whose content it ignores).
    pub fn accepts_content_type(&self, value: Option<&HeaderValue>) -> bool {
        let Some(value) = value else { return true };
        let Ok(value) = value.to_str() else {
            return false;
        };
        let essence = value.split(';').next().unwrap_or_default().trim();
        essence.eq_ignore_ascii_case(self.content_type.unwrap_or(JSON))
    }
}

/// Every endpoint of the API.
pub const ENDPOINTS: [&Metadata; 14] = [
    &crate::register::METADATA,
    &crate::publish_key_packages::METADATA,
    &crate::discover::METADATA,
    &crate::claim_key_packages::METADATA,
    &crate::prepare_room::METADATA,
    &crate::create_room::METADATA,
    &crate::submit_event::METADATA,
    &crate::room_state::METADATA,
    &crate::hub_removals::METADATA,
    &crate::inbox::METADATA,
    &crate::report_abuse::METADATA,
    &crate::create_room06::METADATA,
    &crate::relay06::METADATA,
    &crate::messages06::METADATA,
];

/// The endpoint a request is for: `Err` with [`ErrorCode::NotFound`] when no endpoint has
/// this method and path.
pub fn find(method: &Method, path: &str) -> Result<&'static Metadata, Error> {
    ENDPOINTS
        .into_iter()
        .find(|m| m.method == *method && m.match_path(path).is_some())
        .ok_or_else(|| Error::new(ErrorCode::NotFound, format!("no endpoint {method} {path}")))
}

/// The bearer token of a request: `Ok(None)` without an `Authorization` header,
/// [`ErrorCode::Unauthorized`] for one that is not `Bearer <token>`.
pub fn bearer_token<B>(request: &http::Request<B>) -> Result<Option<&str>, Error> {
    let Some(value) = request.headers().get(AUTHORIZATION) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| Some(t.trim()))
        .ok_or_else(|| Error::new(ErrorCode::Unauthorized, "not a bearer token"))
}

/// A request of an endpoint.
pub trait Endpoint: Sized {
    /// The endpoint.
    const METADATA: Metadata;
    /// Its success answer.
    type Response: EndpointResponse;

    /// The path (template filled in, percent-encoded) and query of this request.
    fn path_and_query(&self) -> String;

    /// The request body (empty for an endpoint without one).
    fn body(&self) -> Result<Vec<u8>, EncodeError>;

    /// Decode a request from its path parameters (percent-decoded, in template order), its
    /// query and its body.
    fn from_parts(params: &[String], query: &Query, body: &[u8]) -> Result<Self, Error>;

    /// The HTTP request, with `Authorization: Bearer <token>` when a token is given.
    fn try_into_http_request(
        &self,
        token: Option<&str>,
    ) -> Result<http::Request<Vec<u8>>, EncodeError> {
        let metadata = Self::METADATA;
        let mut builder = http::Request::builder()
            .method(metadata.method)
            .uri(self.path_and_query());
        if let Some(token) = token {
            builder = builder.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        if let Some(content_type) = metadata.content_type {
            builder = builder.header(CONTENT_TYPE, content_type);
        }
        builder
            .body(self.body()?)
            .map_err(|e| EncodeError(e.to_string()))
    }

    /// Decode an HTTP request for this endpoint (the server side): the path must match.
    fn try_from_http_request<B: AsRef<[u8]>>(request: &http::Request<B>) -> Result<Self, Error> {
        let metadata = Self::METADATA;
        let raw = metadata
            .match_path(request.uri().path())
            .filter(|_| request.method() == metadata.method)
            .ok_or_else(|| Error::new(ErrorCode::NotFound, "no such endpoint"))?;
        let params = raw
            .iter()
            .map(|p| percent_decode(p, false))
            .collect::<Result<Vec<_>, _>>()?;
        let query = Query::parse(request.uri().query())?;
        Self::from_parts(&params, &query, request.body().as_ref())
    }
}

/// The success answer of an endpoint.
pub trait EndpointResponse: Sized {
    /// The HTTP answer.
    fn try_into_http_response(&self) -> Result<http::Response<Vec<u8>>, EncodeError>;

    /// Read an HTTP answer: an error status gives [`ResponseError::Api`] (or
    /// [`ResponseError::Status`] without the API's error body).
    fn try_from_http_response<B: AsRef<[u8]>>(
        response: &http::Response<B>,
    ) -> Result<Self, ResponseError>;
}

/// A `200` answer with `body` of `content_type`.
pub(crate) fn ok_response(content_type: &'static str, body: Vec<u8>) -> http::Response<Vec<u8>> {
    with_status(StatusCode::OK, content_type, body)
}

pub(crate) fn with_status(
    status: StatusCode,
    content_type: &'static str,
    body: Vec<u8>,
) -> http::Response<Vec<u8>> {
    let mut response = http::Response::new(body);
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Serialize a JSON body.
pub(crate) fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, EncodeError> {
    serde_json::to_vec(value).map_err(|e| EncodeError(e.to_string()))
}

/// Parse a JSON request body.
pub(crate) fn from_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|e| Error::malformed(format!("JSON: {e}")))
}

/// Read a `200` JSON answer.
pub(crate) fn json_answer<T: DeserializeOwned, B: AsRef<[u8]>>(
    response: &http::Response<B>,
) -> Result<T, ResponseError> {
    if !response.status().is_success() {
        return Err(error_of(response));
    }
    serde_json::from_slice(response.body().as_ref())
        .map_err(|_| ResponseError::Unexpected("JSON body does not match the API"))
}

/// Whether a header value's essence is `expected`.
pub(crate) fn is_content_type(value: Option<&HeaderValue>, expected: &str) -> bool {
    value
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(expected))
}

/// Implement [`EndpointResponse`] for a JSON response type.
macro_rules! json_response {
    ($ty:ty) => {
        impl $crate::EndpointResponse for $ty {
            fn try_into_http_response(
                &self,
            ) -> Result<http::Response<Vec<u8>>, $crate::EncodeError> {
                Ok($crate::endpoint::ok_response(
                    $crate::JSON,
                    $crate::endpoint::to_json(self)?,
                ))
            }

            fn try_from_http_response<B: AsRef<[u8]>>(
                response: &http::Response<B>,
            ) -> Result<Self, $crate::ResponseError> {
                $crate::endpoint::json_answer(response)
            }
        }
    };
}
pub(crate) use json_response;
