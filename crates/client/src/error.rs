//! The crate's typed error.

use std::path::PathBuf;

use mimi_codec::{CodecError, EventError, RoomId, UserId};
use mimi_e2e::E2eError;
use mimi_signaling::{Rejection, StateError};

/// Everything that can go wrong in the client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// A file of the state directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file of the state directory holds invalid JSON.
    #[error("{path}: invalid JSON: {source}")]
    StateFile {
        /// The file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A stored value does not parse (an identifier, base64, a wire structure).
    #[error("{path}: corrupt record: {what}")]
    CorruptState {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        what: &'static str,
    },
    /// The directory holds no registered client (`mimi register` first).
    #[error("no client registered in {0} (run `mimi register` first)")]
    NotRegistered(PathBuf),
    /// The directory already holds a registered client.
    #[error("{0} already holds a registered client")]
    AlreadyRegistered(PathBuf),
    /// The provider API URL is not `https://host[:port]`.
    #[error("invalid provider API URL {0:?}: expected https://host[:port]")]
    BadUrl(String),
    /// TLS material (the CA file) could not be loaded.
    #[error("TLS: {0}")]
    Tls(#[from] mimi_transport::TlsConfigError),
    /// Connecting to the provider failed (TCP or TLS handshake).
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The address.
        addr: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP exchange failed.
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    /// An HTTP request could not be built (an invalid header value).
    #[error("HTTP request: {0}")]
    Request(#[from] hyper::http::Error),
    /// The provider answered with an API error (`{"error", "detail"}`).
    #[error("provider refused ({status} {code}): {detail}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The error code (`malformed`, `unauthorized`, `forbidden`, `not_found`, ...).
        code: mimi_client_api::ErrorCode,
        /// The detail.
        detail: String,
    },
    /// The provider (or something in front of it) answered an error status without the
    /// API's error body.
    #[error("provider answered status {status}: {body}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The body, as text.
        body: String,
    },
    /// A request could not be encoded (a value over a codec limit).
    #[error("request: {0}")]
    Encode(#[from] mimi_client_api::EncodeError),
    /// The provider's answer does not follow `docs/client-api.md`.
    #[error("unexpected answer from the provider: {0}")]
    UnexpectedResponse(&'static str),
    /// The room's hub refused an event; the detail names the rule.
    #[error("refused ({code:?}): {detail}", code = .0.code, detail = .0.detail.as_str())]
    Refused(EventError),
    /// A MIMI structure failed to encode or decode.
    #[error("MIMI codec: {0}")]
    Codec(#[from] CodecError),
    /// The MLS layer failed.
    #[error("MLS: {0}")]
    E2e(#[from] E2eError),
    /// A message body failed to build or parse.
    #[error("content: {0}")]
    Content(#[from] mimi_content::Error),
    /// A room state from the provider or the group does not validate.
    #[error("room state: {0}")]
    RoomState(#[from] StateError),
    /// The change is refused by the room's rules already here, before it is sent.
    #[error("refused locally: {0}")]
    Rejected(Rejection),
    /// The hub holds proposals that a member must commit before anyone can join by
    /// external commit.
    #[error(
        "the hub holds {0} pending proposal(s): a member of the room must commit them first (`mimi commit ROOM`)"
    )]
    PendingProposals(usize),
    /// This client is not in the room's MLS group.
    #[error("this client is not in room {0} (join it first)")]
    NotInRoom(RoomId),
    /// The user has no client in the room's group.
    #[error("{0} has no client in the room")]
    NoClients(UserId),
    /// The provider returned no key package for the user.
    #[error("no key packages available for {0}")]
    NoKeyPackages(UserId),
    /// No stored message of the room matches the given ID (or prefix).
    #[error("no message {0} in the room")]
    UnknownMessage(String),
    /// Several stored messages match the given ID prefix.
    #[error("message ID prefix {0} is ambiguous")]
    AmbiguousMessage(String),
    /// A message body claims another sender or room than MLS authenticated.
    #[error("a message from {0} claims another sender or room in its content")]
    ForgedContent(UserId),
    /// Bad command-line usage.
    #[error("usage: {0}")]
    Usage(String),
}

impl From<Rejection> for ClientError {
    fn from(r: Rejection) -> Self {
        ClientError::Rejected(r)
    }
}

impl ClientError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> ClientError {
        let path = path.into();
        move |source| ClientError::Io { path, source }
    }
}
