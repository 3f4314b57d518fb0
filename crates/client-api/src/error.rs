//! The API's errors: the codes, each with its HTTP status (the one place a client-API status
//! is decided), the JSON error body, and what a caller makes of an answer it cannot use.

use std::fmt;
use std::time::Duration;

use http::StatusCode;
use http::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use serde::{Deserialize, Serialize};

use crate::JSON;

/// The `error` of an error body, each with its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// `400`: the request does not follow the API (bad JSON, base64, identifier, path).
    Malformed,
    /// `401`: no bearer token, or a wrong one.
    Unauthorized,
    /// `403`: authenticated, but not allowed.
    Forbidden,
    /// `404`: no such endpoint, user, room or key package.
    NotFound,
    /// `409`: conflicts with what exists (a taken localpart, handle or device).
    Conflict,
    /// `413`: the body is over [`crate::MAX_REQUEST_BODY`], or a field over its limit.
    TooLarge,
    /// `415`: a `Content-Type` the endpoint does not take.
    UnsupportedMediaType,
    /// `429`: too many requests; retry after the `Retry-After` header's seconds.
    RateLimited,
    /// `500`: this server failed.
    Internal,
    /// `502`: the peer provider refused or could not be reached (`detail` says which).
    Remote,
    /// `503`: this server cannot answer now; retry later (unlike `internal`).
    Unavailable,
}

impl ErrorCode {
    /// Every code, in status order.
    pub const ALL: [ErrorCode; 11] = [
        ErrorCode::Malformed,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::Conflict,
        ErrorCode::TooLarge,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::RateLimited,
        ErrorCode::Internal,
        ErrorCode::Remote,
        ErrorCode::Unavailable,
    ];

    /// The HTTP status of an answer with this code.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::Malformed => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Remote => StatusCode::BAD_GATEWAY,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The code's name in the error body (`"not_found"`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Malformed => "malformed",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Internal => "internal",
            ErrorCode::Remote => "remote",
            ErrorCode::Unavailable => "unavailable",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The JSON body of every error answer: `{"error": "<code>", "detail": "<text>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The code.
    pub error: ErrorCode,
    /// What went wrong, for people.
    #[serde(default)]
    pub detail: String,
}

/// An error answer of the API: what a server sends and a caller receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The code (and so the status).
    pub code: ErrorCode,
    /// What went wrong, for people.
    pub detail: String,
    /// With [`ErrorCode::RateLimited`] or [`ErrorCode::Unavailable`]: when to retry
    /// (`Retry-After`, whole seconds, rounded up).
    pub retry_after: Option<Duration>,
}

impl Error {
    /// An error with `code` and `detail`.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Error {
            code,
            detail: detail.into(),
            retry_after: None,
        }
    }

    /// A [`ErrorCode::Malformed`] error.
    pub fn malformed(detail: impl Into<String>) -> Self {
        Error::new(ErrorCode::Malformed, detail)
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    /// The HTTP answer: the code's status, the JSON error body, and `Retry-After` when set.
    pub fn to_http_response(&self) -> http::Response<Vec<u8>> {
        let body = ErrorBody {
            error: self.code,
            detail: self.detail.clone(),
        };
        // A struct of a unit enum and a string always serializes.
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let mut response = http::Response::new(bytes);
        *response.status_mut() = self.status();
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(JSON));
        if let Some(after) = self.retry_after {
            let seconds = after.as_secs() + u64::from(after.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }

    /// Read an error answer: `None` when the body is not the API's error body.
    pub fn from_http_response<B: AsRef<[u8]>>(response: &http::Response<B>) -> Option<Self> {
        let body: ErrorBody = serde_json::from_slice(response.body().as_ref()).ok()?;
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        Some(Error {
            code: body.error,
            detail: body.detail,
            retry_after,
        })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.status(), self.detail)
    }
}

impl std::error::Error for Error {}

/// Why an answer could not be read as the endpoint's response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseError {
    /// The server answered with an API error.
    Api(Error),
    /// An error status without the API's error body (a proxy's answer, say).
    Status {
        /// The status.
        status: StatusCode,
        /// The body, as text.
        body: String,
    },
    /// A success status whose body does not follow the API.
    Unexpected(&'static str),
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResponseError::Api(e) => write!(f, "{e}"),
            ResponseError::Status { status, body } => write!(f, "status {status}: {body}"),
            ResponseError::Unexpected(what) => write!(f, "unexpected answer: {what}"),
        }
    }
}

impl std::error::Error for ResponseError {}

/// A request or response that could not be encoded (a value over a codec limit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodeError(pub String);

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot encode: {}", self.0)
    }
}

impl std::error::Error for EncodeError {}

impl From<EncodeError> for Error {
    fn from(e: EncodeError) -> Self {
        Error::new(ErrorCode::Internal, e.to_string())
    }
}

/// The error answer of a response that failed: an API error, or a status without one.
pub(crate) fn error_of<B: AsRef<[u8]>>(response: &http::Response<B>) -> ResponseError {
    match Error::from_http_response(response) {
        Some(e) => ResponseError::Api(e),
        None => ResponseError::Status {
            status: response.status(),
            body: String::from_utf8_lossy(response.body().as_ref()).into_owned(),
        },
    }
}
