//! # mimi-hub: one provider's MIMI server
//!
//! Composes the layers into a provider's server: per room it is the hub (rooms created on
//! it) or a follower; it routes each event, stores rooms, event logs, group state, key
//! packages, users and the fan-out outbox in redb, delivers the outbox with retries, and
//! serves the provider-internal API of its own clients.
//!
//! Every other crate of the workspace may be used here; nothing in the workspace depends on
//! this crate.

pub mod storage;
