//! The codec's tests: fixed-byte vectors, round trips, property tests and malformed input.
//!
//! One test binary; its parts live in `tests/codec/`. The vectors are hand-written hex
//! files in `tests/vectors/` (format: `#` starts a comment, hex may be split by spaces and
//! lines), following `docs/wire-format.md`; the draft-ietf-mimi-protocol-06 ones are in
//! `tests/vectors/v06/` (`docs/wire-format-06.md`), tested by the `v06_*` parts. The
//! conformance vectors for other implementations (`conformance/v1/*.json`) are generated and
//! checked by the `conformance` part.

// Helpers outside `#[test]` functions unwrap too; a failure there is a test failure.
#![allow(clippy::unwrap_used)]

#[path = "codec/conformance.rs"]
mod conformance;
#[path = "codec/fixtures.rs"]
mod fixtures;
#[path = "codec/malformed.rs"]
mod malformed;
#[path = "codec/props.rs"]
mod props;
#[path = "codec/v06_fixtures.rs"]
mod v06_fixtures;
#[path = "codec/v06_haven.rs"]
mod v06_haven;
#[path = "codec/v06_malformed.rs"]
mod v06_malformed;
#[path = "codec/v06_props.rs"]
mod v06_props;
#[path = "codec/v06_vectors.rs"]
mod v06_vectors;
#[path = "codec/vectors.rs"]
mod vectors;
