//! The integration tests of `mimi-hub`, one binary: each area is a module under `tests/hub/`.

#![allow(clippy::unwrap_used)]

#[path = "hub/pg.rs"]
mod pg;

#[path = "hub/storage_suite.rs"]
mod storage_suite;

#[path = "hub/world.rs"]
mod world;

#[path = "hub/federation.rs"]
mod federation;

#[path = "hub/peer_checks.rs"]
mod peer_checks;

#[path = "hub/directory.rs"]
mod directory;

#[path = "hub/sim.rs"]
mod sim;

#[path = "hub/paused.rs"]
mod paused;

#[path = "hub/client_api.rs"]
mod client_api;

#[path = "hub/postgres_provider.rs"]
mod postgres_provider;

#[path = "hub/redb_faults.rs"]
mod redb_faults;

#[path = "hub/ops.rs"]
mod ops;

#[path = "hub/abuse.rs"]
mod abuse;

#[path = "hub/startup_state.rs"]
mod startup_state;

#[path = "hub/exactly_once.rs"]
mod exactly_once;

#[path = "hub/v06.rs"]
mod v06;

#[path = "hub/multi.rs"]
mod multi;
