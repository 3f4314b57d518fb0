//! Decode-encode-decode for every top-level MIMI structure: whatever a decoder accepts must
//! encode again, to exactly the input bytes (the encoding is canonical), and decode to an
//! equal value.
#![no_main]

use std::fmt::Debug;

use libfuzzer_sys::fuzz_target;
use mimi_codec::{
    CheckInviteRequest, Event, FanoutEvent, IdentifierRequest, IdentifierResponse, InfoEvent,
    MimiMessage, RoomState, UserEvent, Wire,
};

fn round_trip<T: Wire + PartialEq + Debug>(data: &[u8]) {
    let Ok(value) = T::decode(data) else {
        return;
    };
    let encoded = match value.encode() {
        Ok(encoded) => encoded,
        Err(e) => panic!("{value:?} was decoded but does not encode: {e}"),
    };
    assert_eq!(encoded, data, "accepted input must be canonical");
    match T::decode(&encoded) {
        Ok(again) => assert_eq!(again, value),
        Err(e) => panic!("re-encoded {value:?} does not decode: {e}"),
    }
}

fuzz_target!(|data: &[u8]| {
    round_trip::<MimiMessage>(data);
    round_trip::<CheckInviteRequest>(data);
    round_trip::<IdentifierRequest>(data);
    round_trip::<IdentifierResponse>(data);
    round_trip::<UserEvent>(data);
    round_trip::<RoomState>(data);
    round_trip::<InfoEvent>(data);
    round_trip::<Event>(data);
    round_trip::<FanoutEvent>(data);
});
