//! # mimi-ds: the hub's MLS delivery service
//!
//! Owns the hub's view of each room's MLS group as an openmls `PublicGroup` (no private
//! keys): processing proposals and commits, the per-epoch queue of accepted proposals that
//! the next commit must include, GroupInfo for joiners, external senders, key-package store
//! semantics (one-time versus last resort), and the fan-out plan of each accepted message.
//!
//! Must not depend on: sockets, HTTP, clocks or a storage engine. It takes decoded
//! `mimi-codec` values and `mimi-signaling` decisions and returns decisions.
