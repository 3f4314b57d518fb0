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
        "the hub holds {0} pending proposal(s) that an external join cannot include, and no member committed them in time: a member must run `mimi commit ROOM`, then run `mimi join ROOM` again"
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
    /// This client knows no room of that ID (never created, joined, invited or knocked).
    #[error("unknown room {0} (`mimi rooms` lists the rooms this client knows)")]
    UnknownRoom(RoomId),
    /// The hub of a -06 room refused a request (`notAllowed`, `wrongEpoch`, ...), or a -06
    /// request could not be made.
    #[error("-06: {0}")]
    Refused06(String),
    /// The provider asked found nobody (`discover` answered `not_found`), or another
    /// discovery code that is not a match.
    #[error("{0}")]
    NotFound(String),
    /// Another `mimi` command holds the state folder's lock for longer than the wait.
    #[error(
        "another mimi command is using {dir} (waited {waited_secs} s for it to finish); try again when it is done, or stop `mimi listen` on that folder"
    )]
    StateLocked {
        /// The state folder.
        dir: PathBuf,
        /// How long this command waited.
        waited_secs: u64,
    },
    /// Only the sender of a message may edit or delete it: every receiver ignores such a
    /// change from anyone else, so it is not sent.
    #[error("refused locally: message {id} is by {sender}; only its sender can {what} it")]
    NotOwnMessage {
        /// The message (short ID).
        id: String,
        /// Its sender.
        sender: UserId,
        /// `edit` or `delete`.
        what: &'static str,
    },
    /// This user sent no such reaction to the message (nothing to withdraw).
    #[error("you have not reacted {reaction} to message {id}")]
    NoSuchReaction {
        /// The message (short ID).
        id: String,
        /// The reaction.
        reaction: String,
    },
    /// The group holds proposals that must be committed before this client can send, and
    /// committing them here failed.
    #[error(
        "the room holds {count} pending proposal(s) and this client could not commit them ({source}); a member who may commit must run `mimi commit {room}`"
    )]
    CommitNeeded {
        /// The room.
        room: RoomId,
        /// How many proposals are pending.
        count: usize,
        /// Why the commit failed.
        #[source]
        source: Box<ClientError>,
    },
    /// Standard output was closed (`mimi show ROOM | head`): the command ends quietly.
    #[error("standard output closed")]
    OutputClosed,
    /// Bad command-line usage.
    #[error("usage: {0}")]
    Usage(String),
}

impl From<Rejection> for ClientError {
    fn from(r: Rejection) -> Self {
        ClientError::Rejected(r)
    }
}

/// The exit status of an authentication failure: the provider answered 401 `unauthorized`
/// (a revoked or unknown token). Kept apart from a refusal (3) so that a script can tell
/// "register again or get a new token" from "not allowed".
pub const EXIT_UNAUTHORIZED: u8 = 7;

/// What kind of failure an error is, for the command line's exit status
/// (`docs/client.md`, "Exit codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Anything else (an MLS or protocol failure, an unexpected answer): exit 1.
    Other,
    /// Bad command-line usage: exit 2.
    Usage,
    /// Refused by the room's rules (by its hub, or locally before sending) or by the
    /// provider (`forbidden`, `conflict`): exit 3.
    Refused,
    /// Something named does not exist (a room, a message, a user, a key package): exit 4.
    NotFound,
    /// The provider or a peer could not be reached or failed (`remote`, `unavailable`,
    /// `internal`, `rate_limited`, connection errors, timeouts): exit 5.
    Network,
    /// The local state folder: not registered, unreadable, corrupt, or locked: exit 6.
    LocalState,
    /// The provider did not authenticate this client (`unauthorized`, 401: a revoked or
    /// unknown token): exit 7.
    Unauthorized,
}

impl ErrorKind {
    /// The process exit status for this kind.
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::Other => 1,
            ErrorKind::Usage => 2,
            ErrorKind::Refused => 3,
            ErrorKind::NotFound => 4,
            ErrorKind::Network => 5,
            ErrorKind::LocalState => 6,
            ErrorKind::Unauthorized => EXIT_UNAUTHORIZED,
        }
    }

    /// The kind's name in `--json` error objects.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Other => "other",
            ErrorKind::Usage => "usage",
            ErrorKind::Refused => "refused",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Network => "network",
            ErrorKind::LocalState => "local_state",
            ErrorKind::Unauthorized => "unauthorized",
        }
    }
}

impl ClientError {
    /// The kind of this error (its exit status).
    pub fn kind(&self) -> ErrorKind {
        use mimi_client_api::ErrorCode as Code;
        match self {
            ClientError::Usage(_) | ClientError::BadUrl(_) => ErrorKind::Usage,
            ClientError::Refused(_)
            | ClientError::Refused06(_)
            | ClientError::Rejected(_)
            | ClientError::NotOwnMessage { .. }
            | ClientError::PendingProposals(_)
            | ClientError::CommitNeeded { .. } => ErrorKind::Refused,
            ClientError::UnknownRoom(_)
            | ClientError::NotFound(_)
            | ClientError::NotInRoom(_)
            | ClientError::NoClients(_)
            | ClientError::NoKeyPackages(_)
            | ClientError::UnknownMessage(_)
            | ClientError::AmbiguousMessage(_)
            | ClientError::NoSuchReaction { .. } => ErrorKind::NotFound,
            ClientError::Api { code, .. } => match code {
                Code::Unauthorized => ErrorKind::Unauthorized,
                Code::Forbidden | Code::Conflict => ErrorKind::Refused,
                Code::NotFound => ErrorKind::NotFound,
                Code::Remote | Code::Unavailable | Code::Internal | Code::RateLimited => {
                    ErrorKind::Network
                }
                _ => ErrorKind::Other,
            },
            ClientError::Connect { .. } | ClientError::Http(_) | ClientError::Status { .. } => {
                ErrorKind::Network
            }
            ClientError::Io { .. }
            | ClientError::StateFile { .. }
            | ClientError::CorruptState { .. }
            | ClientError::NotRegistered(_)
            | ClientError::AlreadyRegistered(_)
            | ClientError::StateLocked { .. }
            | ClientError::Tls(_) => ErrorKind::LocalState,
            ClientError::E2e(E2eError::Storage(_) | E2eError::Io(_)) => ErrorKind::LocalState,
            _ => ErrorKind::Other,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> ClientError {
        let path = path.into();
        move |source| ClientError::Io { path, source }
    }
}
