//! # mimi-hub: one provider's MIMI server
//!
//! Composes the layers into a provider's server: per room it is the hub (rooms created on
//! it) or a follower; it routes each event, stores rooms, event logs, group state, key
//! packages, users and the fan-out outbox in redb, delivers the outbox with retries, and
//! serves the provider-internal API of its own clients.
//!
//! Every other crate of the workspace may be used here; nothing in the workspace depends on
//! this crate.
//!
//! ## Code map
//! - [`engine::Provider`]: the MIMI logic (hub and follower roles, the transport
//!   `Handler`, the operations of the client API), with one lock per room.
//! - [`api`]: the client API, one handler per `mimi-client-api` endpoint, served by
//!   `mimi_transport::serve_http`.
//! - [`outbox`]: delivery of the durable outbox to other servers.
//! - [`storage`]: the storage trait and its redb and in-memory implementations.
//! - [`persist`]: how log entries and room metadata are encoded for storage.
//! - [`identity`]: the hub's MLS signing identity.

pub mod api;
pub mod config;
pub mod engine;
pub mod identity;
pub mod outbox;
pub mod persist;
pub mod storage;
