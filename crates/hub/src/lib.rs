//! # mimi-hub: one provider's MIMI server
//!
//! Composes the layers into a provider's server: per room it is the hub (rooms created on
//! it) or a follower; it routes each event, stores rooms, event logs, group state, key
//! packages, users and the fan-out outbox, delivers the outbox with retries, and serves the
//! provider-internal API of its own clients.
//!
//! Every other crate of the workspace may be used here; nothing in the workspace depends on
//! this crate.
//!
//! ## Code map (parts by role; see `docs/architecture.md`)
//! - [`provider::Provider`]: the composition root, holding the parts below over one
//!   shared [`context::Context`] (server name, storage, peers, settings).
//! - [`rooms`]: the room engine: hub path, follower path, the bounded room cache, the
//!   storage batches of accepted events ([`rooms::persist`]).
//! - [`accounts`]: registration, tokens, key packages, identifier discovery.
//! - [`inbox`]: delivery to this provider's own clients, long polling.
//! - [`check_invite`]: asking the invitee's server, answering such questions.
//! - [`federation`]: the transport's `Handler`, one function per MIMI endpoint.
//! - [`api`]: the client API, one handler per `mimi-client-api` endpoint, served by
//!   `mimi_transport::serve_http`.
//! - [`outbox`]: delivery of the durable outbox to other servers, the only retry loop.
//! - [`peers`]: every call to another provider, behind a trait.
//! - [`storage`]: the storage trait and its implementations.
//! - [`error`]: the typed errors and their classes (HTTP statuses).
//! - [`identity`]: the hub's MLS signing identity.
//! - [`metrics`]: what the provider measures (Prometheus text format).
//! - [`admin`]: the admin listener (`/healthz`, `/readyz`, `/metrics`, the admin
//!   commands) and its client.
//! - [`init`]: `mimi-hub init`, `issue-cert` and `check`: a provider's files and their
//!   validation.
//! - [`limits`]: rate limits (token buckets per client, user, peer server).
//! - [`startup`]: the checks before serving (hub key and database belong together).
//! - [`v06`]: the second version (draft-ietf-mimi-protocol-06) on the same listener: the
//!   transport's `Handler06` (keyMaterial, consent, identifierQuery, reportAbuse so far), its
//!   records, the franking keys and the hub's `frank` (`v06::franking`), abuse reports at the
//!   hub and from this provider's users (`v06::abuse`).

pub mod accounts;
pub mod admin;
pub mod api;
pub mod check_invite;
pub mod config;
pub mod context;
pub mod error;
pub mod federation;
pub mod identity;
pub mod inbox;
pub mod init;
pub mod limits;
pub mod metrics;
pub mod outbox;
pub mod peers;
pub mod provider;
pub mod rooms;
pub mod startup;
pub mod storage;
pub mod v06;
