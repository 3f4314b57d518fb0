//! The crate's typed errors.
//!
//! Refusals a caller acts on (a key package or member lacking the room's capabilities, a
//! Welcome for a key package this client no longer holds, a message after this client was
//! removed, a message for another epoch) have their own variants. Other openmls failures
//! are [`E2eError::Mls`], naming the operation, with openmls's error as the source.

use std::fmt;

use mimi_codec::{ClientId, CodecError, IdentifierError, RoomId, UserId};

use crate::storage::StorageError;

pub use mimi_mls_binding::CredentialError;

/// The MLS objects this crate reads from bytes, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MlsObject {
    /// An MLSMessage (any kind).
    MlsMessage,
    /// An MLSMessage carrying a KeyPackage.
    KeyPackage,
    /// An MLSMessage carrying a Welcome.
    Welcome,
    /// An MLSMessage carrying a GroupInfo.
    GroupInfo,
    /// A protocol message (PublicMessage or PrivateMessage).
    ProtocolMessage,
    /// A TLS-encoded ratchet tree.
    RatchetTree,
    /// A TLS-encoded `ExternalSender` (a follower certificate).
    ExternalSender,
}

impl fmt::Display for MlsObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MlsObject::MlsMessage => "MLSMessage",
            MlsObject::KeyPackage => "KeyPackage",
            MlsObject::Welcome => "Welcome",
            MlsObject::GroupInfo => "GroupInfo",
            MlsObject::ProtocolMessage => "protocol message",
            MlsObject::RatchetTree => "ratchet tree",
            MlsObject::ExternalSender => "ExternalSender",
        })
    }
}

/// The client operation an [`E2eError::Mls`] happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Generating or loading the signature key pair.
    SignatureKey,
    /// Building a key package.
    KeyPackage,
    /// Creating a room's group.
    CreateGroup,
    /// Loading a group from storage.
    LoadGroup,
    /// Creating a standalone proposal.
    Propose,
    /// Building a commit.
    Commit,
    /// Merging or discarding a pending commit.
    MergeCommit,
    /// Processing an incoming message.
    Process,
    /// Joining from a Welcome.
    JoinFromWelcome,
    /// Joining by external commit.
    ExternalJoin,
    /// Encrypting an application message.
    Encrypt,
    /// Exporting the GroupInfo or ratchet tree.
    Export,
    /// Deleting a group's state.
    Delete,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// An error of [`crate::MlsClient`] or the helpers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum E2eError {
    /// The on-disk store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Creating the client's directory failed.
    #[error("client directory: {0}")]
    Io(#[from] std::io::Error),
    /// A credential does not name a MIMI client or server.
    #[error("credential: {0}")]
    Credential(#[from] CredentialError),
    /// A MIMI structure (RoomState, UserEvent, MLS bytes framing) failed to encode or decode.
    #[error("MIMI codec: {0}")]
    Codec(#[from] CodecError),
    /// Bytes that should be an MLS object are not.
    #[error("malformed {object}: {source}")]
    Malformed {
        /// What was expected.
        object: MlsObject,
        /// The decoding error.
        #[source]
        source: openmls::prelude::tls_codec::Error,
    },
    /// A well-formed MLSMessage of another kind than expected.
    #[error("expected {expected}, got another kind of MLSMessage")]
    UnexpectedMessage {
        /// What was expected.
        expected: MlsObject,
    },
    /// The store at this path belongs to another client.
    #[error("the state at this path belongs to {stored}, not {requested}")]
    ClientMismatch {
        /// The client whose state is stored.
        stored: ClientId,
        /// The client asked for.
        requested: ClientId,
    },
    /// The client record names a signature key that is not in the store.
    #[error("the client's signature key pair is missing from the store")]
    MissingSignatureKey,
    /// This client has no group for the room.
    #[error("this client is not in room {0}")]
    UnknownRoom(RoomId),
    /// A group ID that is not a room ID (MIMI's group ID is the room ID).
    #[error("group ID is not a room ID: {0}")]
    GroupIdNotRoomId(IdentifierError),
    /// The group context has no RoomState extension, or its payload does not decode.
    #[error("the group has no valid RoomState extension")]
    NoRoomState,
    /// A client to remove is not in the room.
    #[error("{0} is not in the room")]
    NotInRoom(ClientId),
    /// A user to remove has no client in the room.
    #[error("{0} has no client in the room")]
    NoClientsOf(UserId),
    /// A key package or member does not support what the room requires (the MIMI
    /// extension and proposal types, the credential type): refused by the group.
    #[error("unsupported capabilities: the room's required capabilities are not met")]
    UnsupportedCapabilities,
    /// No stored key package matches the Welcome (never made here, or a one-time key
    /// package already consumed).
    #[error("no stored key package matches this Welcome")]
    NoMatchingKeyPackage,
    /// This client was removed from the room; the group can no longer be used.
    #[error("this client was removed from the room")]
    Evicted,
    /// The message belongs to another epoch than the group's.
    #[error("message is for another epoch")]
    WrongEpoch,
    /// The operation needs no pending commit, or a pending commit that is absent.
    #[error("pending commit state does not allow this")]
    PendingCommit,
    /// The message could not be franked (draft-ietf-mimi-protocol-06 §5.4.1).
    #[error("franking: {0}")]
    Franking(#[from] mimi_mls_binding::franking::FrankingError),
    /// A -06 room's components cannot be read or changed.
    #[error(transparent)]
    Room06(#[from] mimi_mls_binding::v06::Room06Error),
    /// No -06 room with this URI is stored.
    #[error("unknown -06 room {0}")]
    UnknownRoom06(String),
    /// openmls refused or failed.
    #[error("MLS {operation} failed: {source}")]
    Mls {
        /// The operation.
        operation: Operation,
        /// openmls's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl E2eError {
    /// Wrap an openmls error of `operation`.
    pub(crate) fn mls<E: std::error::Error + Send + Sync + 'static>(
        operation: Operation,
    ) -> impl FnOnce(E) -> E2eError {
        move |e| E2eError::Mls {
            operation,
            source: Box::new(e),
        }
    }

    pub(crate) fn malformed(
        object: MlsObject,
    ) -> impl FnOnce(openmls::prelude::tls_codec::Error) -> E2eError {
        move |source| E2eError::Malformed { object, source }
    }
}
