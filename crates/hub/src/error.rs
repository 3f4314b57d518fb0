//! The errors the provider's parts answer its own clients with, typed down to their cause,
//! and their classification ([`ErrorClass`]): the client API (`api.rs`) maps a class to a
//! `mimi_client_api::ErrorCode`, whose status is defined there, in one place. "Retry later" ([`ErrorClass::Unavailable`], 503: a storage write failed,
//! a peer or the room is busy) is apart from "this server is broken"
//! ([`ErrorClass::Internal`], 500: stored data that does not decode, a broken invariant).

use mimi_codec::{ClientId, ErrorCode, EventError, RoomId, ServerName, UserId};
use mimi_transport::TransportError;

use crate::storage::StorageError;

/// What kind of failure an [`ApiError`] is: the client API's status and error code follow
/// from it alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The request is malformed (400).
    Malformed,
    /// No or a wrong bearer token (401).
    Unauthorized,
    /// Not allowed (403).
    Forbidden,
    /// No such user, room, key package or endpoint (404).
    NotFound,
    /// Conflicts with what exists (409).
    Conflict,
    /// The request is too large (413).
    TooLarge,
    /// The peer provider refused or answered wrongly (502).
    Remote,
    /// Try again later: a write failed, a peer could not be reached in time (503).
    Unavailable,
    /// This server is broken (500).
    Internal,
}

impl ErrorClass {
    /// The class of a MIMI protocol error (an event the room engine or a peer refused).
    pub fn of_event_error(code: ErrorCode) -> ErrorClass {
        match code {
            ErrorCode::UnknownRoom | ErrorCode::UnknownUser | ErrorCode::NoKeyPackages => {
                ErrorClass::NotFound
            }
            ErrorCode::ForbiddenByPolicy
            | ErrorCode::ClientNotAllowed
            | ErrorCode::SenderMismatch
            | ErrorCode::InviteRejected => ErrorClass::Forbidden,
            ErrorCode::RoomExists | ErrorCode::StaleEpoch => ErrorClass::Conflict,
            ErrorCode::TooLarge => ErrorClass::TooLarge,
            // The room engine answers `Internal` for "try again" (a failed write, a gap
            // in a follower's history); see `rooms`.
            ErrorCode::Internal => ErrorClass::Unavailable,
            _ => ErrorClass::Malformed,
        }
    }
}

/// Errors of the provider's operations for its own clients (`docs/client-api.md`).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request does not parse (the client API's own checks).
    #[error("malformed: {0}")]
    Malformed(String),
    /// An identifier in the request is not valid.
    #[error("invalid identifier: {0}")]
    InvalidIdentifier(#[from] mimi_codec::IdentifierError),
    /// A value in the request is over a protocol limit or does not encode.
    #[error("invalid value: {0}")]
    InvalidValue(#[from] mimi_codec::CodecError),
    /// The room cannot be created as asked.
    #[error("room: {0}")]
    InvalidRoom(#[from] mimi_signaling::CreateError),
    /// A published key package is not valid (DS-KP-1).
    #[error("key package: {0}")]
    InvalidKeyPackage(mimi_ds::DsError),
    /// No or a wrong bearer token.
    #[error("unauthorized")]
    Unauthorized,
    /// Registration of new users is closed.
    #[error("registration is closed")]
    RegistrationClosed,
    /// The user exists; a device is added with the token of one of its clients.
    #[error("{0} exists; add a device with the token of one of its clients")]
    UserExists(UserId),
    /// The client exists.
    #[error("{0} exists")]
    ClientExists(ClientId),
    /// The room exists.
    #[error("{0} exists")]
    RoomExists(RoomId),
    /// The room is not one of this server's rooms (creation).
    #[error("{room} is not a room of {server}")]
    ForeignRoom {
        /// The room.
        room: RoomId,
        /// This server.
        server: ServerName,
    },
    /// The client API has no such endpoint.
    #[error("no endpoint {0}")]
    NoEndpoint(String),
    /// This server knows no such room.
    #[error("unknown room {0}")]
    UnknownRoom(RoomId),
    /// This server is not the room's hub.
    #[error("{server} is not the hub of {room}")]
    NotHub {
        /// The room.
        room: RoomId,
        /// This server.
        server: ServerName,
    },
    /// The user may not see or act on the room.
    #[error("{user} is not in {room}")]
    NotAMember {
        /// The user.
        user: UserId,
        /// The room.
        room: RoomId,
    },
    /// A reported message's frank does not verify (-06 franking), or the room's
    /// `franking_agent` does not name its hub.
    #[error("frank: {0}")]
    Frank(String),
    /// An unsigned `m.room.user` names someone other than its sender.
    #[error("an unsigned m.room.user is about the sender only")]
    UnsignedForOther,
    /// The room engine, the delivery service or a peer refused (a MIMI protocol error).
    #[error("refused: {:?}: {}", .0.code, .0.detail.as_str())]
    Refused(EventError),
    /// A peer provider could not be asked.
    #[error("{server}: {error}")]
    Peer {
        /// The peer.
        server: ServerName,
        /// What went wrong.
        error: TransportError,
    },
    /// A peer provider answered something that is not an answer to the request.
    #[error("{server} answered {what}")]
    PeerAnswer {
        /// The peer.
        server: ServerName,
        /// What it answered.
        what: &'static str,
    },
    /// Storage failed.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// This server failed.
    #[error("internal: {0}")]
    Internal(String),
}

impl ApiError {
    /// The kind of failure.
    pub fn class(&self) -> ErrorClass {
        match self {
            ApiError::Malformed(_)
            | ApiError::InvalidIdentifier(_)
            | ApiError::InvalidValue(_)
            | ApiError::InvalidRoom(_)
            | ApiError::InvalidKeyPackage(_) => ErrorClass::Malformed,
            ApiError::Unauthorized => ErrorClass::Unauthorized,
            ApiError::RegistrationClosed
            | ApiError::NotAMember { .. }
            | ApiError::Frank(_)
            | ApiError::UnsignedForOther => ErrorClass::Forbidden,
            ApiError::NoEndpoint(_) | ApiError::UnknownRoom(_) | ApiError::NotHub { .. } => {
                ErrorClass::NotFound
            }
            ApiError::UserExists(_) | ApiError::ClientExists(_) | ApiError::RoomExists(_) => {
                ErrorClass::Conflict
            }
            ApiError::ForeignRoom { .. } => ErrorClass::Malformed,
            ApiError::Refused(e) => ErrorClass::of_event_error(e.code),
            ApiError::Peer { .. } | ApiError::PeerAnswer { .. } => ErrorClass::Remote,
            ApiError::Storage(StorageError::Conflict(_)) => ErrorClass::Conflict,
            ApiError::Storage(StorageError::Corrupt(_)) => ErrorClass::Internal,
            ApiError::Storage(_) => ErrorClass::Unavailable,
            ApiError::Internal(_) => ErrorClass::Internal,
        }
    }

    /// An error of a peer call.
    pub fn peer(server: &ServerName, error: TransportError) -> ApiError {
        ApiError::Peer {
            server: server.clone(),
            error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_later_is_apart_from_internal() {
        let failed = ApiError::Storage(StorageError::Backend("disk full".into()));
        assert_eq!(failed.class(), ErrorClass::Unavailable);
        let corrupt = ApiError::Storage(StorageError::Corrupt("bad bytes".into()));
        assert_eq!(corrupt.class(), ErrorClass::Internal);
        assert_eq!(
            ApiError::Internal("bug".into()).class(),
            ErrorClass::Internal
        );
        let busy = ApiError::Refused(EventError::new(ErrorCode::Internal, "send it again"));
        assert_eq!(busy.class(), ErrorClass::Unavailable);
    }
}
