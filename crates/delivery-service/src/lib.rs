//! # mimi-ds: the hub's MLS delivery service
//!
//! Owns the hub's view of each room's MLS group as an openmls `PublicGroup` (no private
//! keys): processing proposals and commits, the per-epoch queue of accepted proposals that
//! the next commit must include, GroupInfo for joiners, external senders, key-package
//! validation, and the fan-out plan of each accepted message.
//!
//! Must not depend on: sockets, HTTP, clocks or a storage engine. It takes decoded
//! `mimi-codec` values and `mimi-signaling` rooms and returns decisions; the hub stores the
//! group state as bytes ([`HubGroup::to_bytes`]).

mod error;
mod fanout;
mod group;
mod keypackage;
mod mls;
mod service;
pub mod v06;

pub use error::{DsError, DsRule};
pub use fanout::FanoutPlan;
pub use group::{
    CommitProposal, HubGroup, HubSender, MAX_PAST_EPOCHS, MlsSender, ProposalKind,
    StagedCommitInfo, StagedProposal, welcome_recipients,
};
pub use keypackage::{ValidatedKeyPackage, validate_key_package};
pub use service::{
    CheckedEvent, FollowerError, FollowerOutcome, FollowerRoom, HubAccepted, HubRoom,
};
