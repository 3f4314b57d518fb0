//! The codec's tests: fixed-byte vectors, round trips, property tests and malformed input.

use mimi_codec::*;

fn room() -> RoomId {
    "!r1:a.example".parse().unwrap()
}

#[test]
fn fetch_group_info_event_has_the_documented_bytes() {
    let msg = MimiMessage::new(
        room(),
        Sender::User("@alice:a.example".parse().unwrap()),
        MessageBody::Event(Event::DsFetchGroupInfo(GroupInfoRequest)),
    );
    let bytes = msg.encode().unwrap();
    let mut expected = vec![0x00, 0x01, 13];
    expected.extend_from_slice(b"!r1:a.example");
    expected.push(16);
    expected.extend_from_slice(b"@alice:a.example");
    expected.push(0x01);
    expected.push(19);
    expected.extend_from_slice(b"ds.fetch_group_info");
    expected.extend_from_slice(&[0x00, 0x01, 16]);
    assert_eq!(hex::encode(&bytes), hex::encode(&expected));
    assert_eq!(MimiMessage::decode(&bytes).unwrap(), msg);
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert_eq!(MimiMessage::decode(&trailing), Err(CodecError::TrailingBytes));
    assert_eq!(
        MimiMessage::decode(&bytes[..bytes.len() - 1]),
        Err(CodecError::EndOfInput)
    );
}
