//! # mimi-bench: throughput, latency and scale, against a ceiling measured in the same run
//!
//! Owns the benchmark harness of `cargo xtask bench`: a load generator of concurrent
//! HTTPS clients with mutual TLS ([`loadgen`]), the bare hyper + rustls server that sets
//! the ceiling ([`ceiling`]), servers run as real processes ([`process`]), the benchmark's
//! PKI and scratch files ([`setup`]), codec messages of realistic sizes ([`messages`]),
//! figures as medians with min and max over several runs and the table they are printed in
//! ([`figure`]), the machine description ([`machine`]), and the figures themselves with how
//! each is measured ([`suite`]). `docs/performance.md` explains every figure.
//!
//! This crate sits above everything it measures and nothing depends on it. It uses
//! `mimi-transport`'s TLS helpers and PKI, and `mimi-codec` for request bodies; it must not
//! reach into a crate's internals to measure it (servers are measured over the network as
//! processes, libraries through their public API), and it never changes what it measures.
//! Nothing here asserts on time: the figures are reported, and the targets printed beside
//! them.
//!
//! The hub and scale figures start three `mimi-hub` processes ([`hub`]) and talk to them
//! through the client API ([`api`]); the same hub figures run with the providers on a
//! private PostgreSQL server ([`pg`], run as processes: no database client here) and are
//! printed beside redb's ([`on_postgres`]); the MLS figure ([`mls`]) times `mimi-ds`'s commit
//! handling next to openmls `PublicGroup` in process. The -06 hub figure ([`hub06`],
//! `mimi-bench hub06 [--haven PATH]`) builds a -06 room with `mimi-client` and sends a
//! follower's `submitMessage` to the hub, and to Haven's `mimi-hubd` beside it (started
//! from a checkout, built with `mimi-interop`'s `haven` module). The Criterion
//! micro-benchmarks are `benches/codec.rs` and `benches/signaling.rs`.

pub mod api;
pub mod ceiling;
pub mod figure;
pub mod hub;
pub mod hub06;
pub mod loadgen;
pub mod machine;
pub mod messages;
pub mod mls;
pub mod on_postgres;
pub mod pg;
pub mod process;
pub mod setup;
pub mod suite;

pub use figure::{Figure, FigureError, Row, Table};
pub use loadgen::{LoadConfig, LoadReport, Pace, Stop, Workload};
pub use suite::{BenchError, Settings};
