//! # mimi-client-api: the provider-internal client API, defined once
//!
//! Owns the shape of the API a provider's own clients speak to it (`docs/client-api.md`):
//! for every endpoint a module with its [`Metadata`] (method, path template with
//! percent-encoded room IDs, whether a bearer token is needed, the request's content type,
//! the error codes it may answer), a `Request` implementing [`Endpoint`] and a `Response`
//! implementing [`EndpointResponse`], each converting to and from `http` messages; the
//! error codes with their HTTP statuses ([`ErrorCode::status`], the one place a client-API
//! status is decided) and the JSON error body; how values are written (base64, identifiers
//! as text, join-rule and identifier-type names); the API's limits. The server
//! (`mimi-hub`), the client library (`mimi-client`) and the benchmark (`mimi-bench`) all
//! build and read requests and answers only through these types, in the spirit of ruma's
//! `ruma-client-api`.
//!
//! Transport-agnostic and sans-IO: bytes in `http::Request`/`http::Response`, no sockets,
//! no TLS, no async. Depends on `mimi-codec` (identifiers, MIMI structures) and
//! serde/serde_json/base64/http only; must not depend on the transport, signaling, the
//! delivery service, MLS or storage.
//!
//! Map:
//! - [`endpoint`]: [`Metadata`], [`Endpoint`], [`EndpointResponse`], [`find`],
//!   [`bearer_token`].
//! - [`register`], [`publish_key_packages`], [`discover`], [`claim_key_packages`],
//!   [`prepare_room`], [`create_room`], [`submit_event`], [`room_state`], [`hub_removals`],
//!   [`inbox`]: the endpoints.
//! - [`error`]: [`ErrorCode`], [`ErrorBody`], [`Error`], [`ResponseError`].
//! - [`encoding`]: base64 and identifier serde helpers, percent-encoding, [`Query`], the
//!   names of join rules, identifier types and discovery codes.

use std::time::Duration;

pub mod encoding;
pub mod endpoint;
mod endpoints;
pub mod error;

pub use encoding::{
    DiscoveryCode, Query, b64_decode, b64_encode, identifier_query_name, join_rule_name,
    parse_identifier_query, parse_join_rule, percent_decode, percent_encode,
};
pub use endpoint::{
    Auth, COMMON_ERRORS, ENDPOINTS, Endpoint, EndpointId, EndpointResponse, Metadata, bearer_token,
    find,
};
pub use endpoints::{
    claim_key_packages, create_room, create_room06, discover, hub_removals, inbox, messages06,
    prepare_room, publish_key_packages, register, relay06, report_abuse, room_state, submit_event,
};
pub use error::{EncodeError, Error, ErrorBody, ErrorCode, ResponseError};

/// The content type of JSON bodies.
pub const JSON: &str = "application/json";
/// The content type of TLS-encoded bodies (`POST /v1/rooms/{room}/events`).
pub const OCTET_STREAM: &str = "application/octet-stream";
/// Largest request body a server reads (an MLS commit bundle of the largest size, in base64
/// inside JSON, fits); a larger one is answered `413` [`ErrorCode::TooLarge`].
pub const MAX_REQUEST_BODY: usize = mimi_codec::limits::MAX_MESSAGE_LEN * 3 / 2;
/// Largest JSON request body a server reads (every endpoint but
/// `POST /v1/rooms/{room}/events`, whose TLS-encoded event may reach
/// [`MAX_REQUEST_BODY`]): the key packages of a publication, a new room's GroupInfo and
/// one-leaf ratchet tree, a registration. A larger one is answered `413`
/// [`ErrorCode::TooLarge`]. See [`Metadata::body_limit`].
pub const MAX_JSON_BODY: usize = 1024 * 1024;
/// Longest `display_name` of a registration, in bytes.
pub const MAX_DISPLAY_NAME: usize = 256;
/// Longest `handle` of a registration, in bytes.
pub const MAX_HANDLE: usize = 256;
/// Longest `email` of a registration, in bytes (RFC 5321's path limit).
pub const MAX_EMAIL: usize = 254;
/// Longest `phone` of a registration, in bytes (E.164 has at most 15 digits; room for
/// formatting).
pub const MAX_PHONE: usize = 32;
/// Longest `localpart` or `device` of a registration, in bytes.
pub const MAX_NAME_PART: usize = 255;
/// Most inbox items one request returns.
pub const MAX_INBOX_PAGE: usize = 256;
/// Longest an inbox read waits for a first item (`wait_ms`); below a server's header
/// timeout, so a kept-alive connection outlives the wait.
pub const MAX_INBOX_WAIT: Duration = Duration::from_secs(25);

#[cfg(test)]
mod tests;
