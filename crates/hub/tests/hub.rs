//! The integration tests of `mimi-hub`, one binary: each area is a module under `tests/hub/`.

#![allow(clippy::unwrap_used)]

#[path = "hub/storage_suite.rs"]
mod storage_suite;
