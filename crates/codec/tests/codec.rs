//! The codec's tests: fixed-byte vectors, round trips, property tests and malformed input.
//!
//! One test binary; its parts live in `tests/codec/`. The vectors are hand-written hex
//! files in `tests/vectors/` (format: `#` starts a comment, hex may be split by spaces and
//! lines), following `docs/wire-format.md`.

// Helpers outside `#[test]` functions unwrap too; a failure there is a test failure.
#![allow(clippy::unwrap_used)]

#[path = "codec/fixtures.rs"]
mod fixtures;
#[path = "codec/malformed.rs"]
mod malformed;
#[path = "codec/props.rs"]
mod props;
#[path = "codec/vectors.rs"]
mod vectors;
