//! # mimi-interop: the demo and the interop suite over real processes
//!
//! Owns the end-to-end checks of the whole system: [`harness`] starts three real
//! `mimi-hub` processes on loopback (a private CA, one certificate, `provider.toml` and redb
//! database per provider, in a temporary folder) and stops or restarts them by handle; the
//! scenarios drive real clients (the `mimi-client` library: real MLS state on disk, real
//! HTTPS to each provider's client API) through every flow of the specification and check
//! each outcome.
//!
//! [`chaos`] is the chaos suite: faults (killed, stopped and restarted processes, lost
//! answers, damaged databases) under load, counting every acknowledged message.
//!
//! Depends on the crates a deployment's clients and operators use (codec, client,
//! transport's PKI) and on the `mimi-hub` *binary*, never on the hub's library: what is
//! tested is what runs. Nothing in the workspace depends on this crate.

pub mod chaos;
pub mod harness;
pub mod haven;
pub mod probe06;
pub mod scenarios;
pub mod world;
