//! Decode-only: decoding arbitrary bytes as a `RoomState` (the GroupContext extension) must return a value or a typed
//! `CodecError`, never panic, hang or allocate beyond the limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mimi_codec::{RoomState, Wire};

fuzz_target!(|data: &[u8]| {
    let _ = RoomState::decode(data);
});
