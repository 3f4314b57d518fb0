//! The integration tests of `mimi-hub`, one binary: each area is a module under `tests/hub/`.

#![allow(clippy::unwrap_used)]

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

#[path = "hub/redb_faults.rs"]
mod redb_faults;
