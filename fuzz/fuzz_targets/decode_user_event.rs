//! Decode-only: decoding arbitrary bytes as a `UserEvent` (the `m.room.user` MLS proposal payload) must return a value or a typed
//! `CodecError`, never panic, hang or allocate beyond the limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mimi_codec::{UserEvent, Wire};

fuzz_target!(|data: &[u8]| {
    let _ = UserEvent::decode(data);
});
