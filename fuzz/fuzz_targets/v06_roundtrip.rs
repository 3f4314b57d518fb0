//! Decode-encode-decode for every top-level -06 structure: whatever a decoder accepts must
//! encode again, to exactly the input bytes (the encoding is canonical), and decode to an
//! equal value.
#![no_main]

use std::fmt::Debug;

use libfuzzer_sys::fuzz_target;
use mimi_codec::Wire;
use mimi_codec::v06::*;

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
    round_trip::<KeyMaterialRequest>(data);
    round_trip::<KeyMaterialResponse>(data);
    round_trip::<UpdateRequest>(data);
    round_trip::<UpdateResponse>(data);
    round_trip::<SubmitMessageRequest>(data);
    round_trip::<SubmitMessageResponse>(data);
    round_trip::<NotifyBody>(data);
    round_trip::<FanoutMessage>(data);
    round_trip::<GroupInfoRequest>(data);
    round_trip::<GroupInfoResponse>(data);
    round_trip::<GroupInfoRatchetTreeTbe>(data);
    round_trip::<ConsentEntry>(data);
    round_trip::<IdentifierRequest>(data);
    round_trip::<IdentifierResponse>(data);
    round_trip::<AbuseReport>(data);
    round_trip::<FrankingIntegrityTbs>(data);
    round_trip::<ParticipantListData>(data);
    round_trip::<ParticipantListUpdate>(data);
    round_trip::<RoomMetaData>(data);
    round_trip::<RoleData>(data);
    round_trip::<PreAuthData>(data);
    round_trip::<BaseRoomPolicy>(data);
    round_trip::<MlsMessage>(data);
    round_trip::<KeyPackage>(data);
    round_trip::<GroupInfo>(data);
    round_trip::<Welcome>(data);
});
