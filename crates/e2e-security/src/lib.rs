//! # mimi-e2e: the client's side of MLS
//!
//! Owns everything a MIMI client does with MLS (openmls): key packages (including last
//! resort ones), credentials binding a client to its user, creating a room's group with
//! the RoomState group-context extension and the hub as external sender, commits carrying
//! `m.room.user` proposals, Welcomes, external joins, and application messages.
//!
//! Must not depend on: the delivery service, transport, signaling's hub-side logic or the
//! hub. It produces and consumes the opaque MLS bytes that `mimi-codec` frames.
//!
//! ## Code map
//! - [`MlsClient`] (`client.rs`): one client device; sans-IO, bytes in and bytes out.
//! - [`RedbStorage`] (`storage.rs`): openmls's storage provider on disk (redb), so a
//!   client's groups, keys and key packages survive restarts.
//! - `identity.rs`: follower certificates. The credential rule
//!   ([`client_id_from_credential`]), external senders, the RoomState extension, the
//!   UserEvent proposal and the MIMI capabilities are `mimi-mls-binding`'s (shared with the
//!   hub's `mimi-ds`), re-exported here.
//! - `error.rs`: [`E2eError`].
//!
//! ## MLS choices (see `docs/spec-decisions.md`, section mimi-e2e)
//! - Group ID = the room ID's UTF-8 bytes; cipher suite [`CIPHERSUITE`].
//! - Group context extensions: RoomState (type
//!   `mimi_codec::mls_ids::ROOM_STATE_EXTENSION_TYPE`, payload the encoded
//!   `mimi_codec::RoomState`), `external_senders` (the hub first, then followers) and
//!   `required_capabilities` (RoomState extension, UserEvent proposal, BasicCredential).
//! - `m.room.user` events are custom proposals of type
//!   `mimi_codec::mls_ids::USER_EVENT_PROPOSAL_TYPE` carrying the encoded `UserEvent`.
//! - Handshakes are PublicMessages (the hub validates them); application messages are
//!   PrivateMessages. GroupInfos and Welcomes carry the ratchet tree.
//! - Key packages travel as MLSMessages (wire format `mls_key_package`).

mod client;
mod error;
mod identity;
mod storage;

pub use client::{
    CIPHERSUITE, Commit06, CommitPlan, CommitSummary, CreatedRoom, DB_FILE, MessageSender,
    MlsClient, OwnProposal, Plan06, Processed, Processed06, ProposalSummary, RemoveTarget,
    parse_key_package, room_state_of, room_state_of_group_info,
};
pub use error::{CredentialError, E2eError, MlsObject, Operation};
pub use identity::{follower_certificate, parse_follower_certificate};
pub use mimi_mls_binding::franking;
pub use mimi_mls_binding::v06 as binding06;
pub use mimi_mls_binding::{
    client_id_from_credential, credential_for, external_sender, mimi_capabilities,
    mimi_required_capabilities, server_of_external_sender,
};
pub use openmls::prelude::ExternalSender;
pub use storage::{RedbStorage, StorageError};
