//! Decode-only (-06): decoding arbitrary bytes as a `ParticipantListUpdate` must return a value or a typed
//! `CodecError`, never panic, hang or allocate beyond the limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mimi_codec::Wire;
use mimi_codec::v06::ParticipantListUpdate;

fuzz_target!(|data: &[u8]| {
    let _ = ParticipantListUpdate::decode(data);
});
