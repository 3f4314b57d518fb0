//! Decode-only: decoding arbitrary bytes as an `IdentifierRequest` must return a value or a typed
//! `CodecError`, never panic, hang or allocate beyond the limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mimi_codec::{IdentifierRequest, Wire};

fuzz_target!(|data: &[u8]| {
    let _ = IdentifierRequest::decode(data);
});
