//! Decode-only: decoding arbitrary bytes as a `MIMIMessage` (every event, response and fanout body) must return a value or a typed
//! `CodecError`, never panic, hang or allocate beyond the limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mimi_codec::{MimiMessage, Wire};

fuzz_target!(|data: &[u8]| {
    let _ = MimiMessage::decode(data);
});
