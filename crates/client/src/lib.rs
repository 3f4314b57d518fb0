//! # mimi-client: a MIMI client library and the `mimi` command line
//!
//! Owns a client device's side of the provider-internal client API
//! (`docs/client-api.md`): registration, key packages, discovery, rooms, participation
//! changes, messages and the inbox, driving the MLS group with `mimi-e2e`, computing room
//! states with `mimi-signaling`'s rules and encoding message bodies with `mimi-content`.
//! `docs/client.md` describes the `mimi` command line.
//!
//! It is the top of the stack beside the hub: it depends on mimi-codec, mimi-e2e,
//! mimi-signaling, mimi-content and mimi-transport (only its TLS helpers); nothing in the
//! workspace may depend on it. It must not depend on the hub or the delivery service.
//!
//! ## Code map
//! - [`Client`] (`client.rs`): one registered device and every flow (create, add, invite,
//!   join, leave, kick, ban, unban, knock, commit, send, sync).
//! - [`inbox`]: processing fanned-out events, sans I/O.
//! - [`plan`]: what a commit carries (room state after the change, departed clients), sans
//!   I/O.
//! - [`messages`]: `mimi-content` bodies and MIMI URIs.
//! - [`store`]: the local room log (`rooms.jsonl`); [`config`]: `client.json`.
//! - [`api`] and [`http`]: the provider API over HTTPS (hyper 1, rustls, server-auth only).
//! - [`view`]: rendering a room; [`cli`]: the `mimi` command line (clap, text or JSON
//!   lines, exit codes by [`ErrorKind`]).
//! - [`folder`]: the state folder's default location, permissions and lock.
//! - `client/settle.rs`: what the room needs before a send (a commit of pending
//!   proposals) or an external join (a member's commit).
//! - `peek.rs`: the epoch of an MLS message without processing it.
//!
//! ## State directory
//! `client.json` ([`ClientConfig`]), `mls.redb` (the `MlsClient` store), `rooms.jsonl`
//! ([`Store`]), and `lock` ([`folder::StateLock`]); the folder is 0700, its files 0600.
//! A client can be stopped and started again at any point: the inbox cursor is
//! saved after each processed item.

pub mod api;
pub mod cli;
mod client;
pub mod config;
mod error;
pub mod folder;
pub mod http;
pub mod inbox;
pub mod messages;
mod peek;
pub mod plan;
pub mod store;
pub mod view;

pub use client::{
    COMMIT_RESENDS, Client, JOIN_COMMIT_WAIT, LISTEN_WAIT, MAX_KEY_PACKAGES_PER_PUBLISH, Message06,
    Registration, RoomView, SyncReport, answer_lost,
};
pub use config::ClientConfig;
pub use error::{ClientError, EXIT_UNAUTHORIZED, ErrorKind};
pub use peek::epoch_of;
pub use store::Store;
