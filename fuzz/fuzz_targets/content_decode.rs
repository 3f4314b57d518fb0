//! Fuzzes the strict MIMI content decoders: they must never panic, and whatever they
//! accept must re-encode to exactly the same bytes (deterministic CBOR).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mimi_content::{MessageDerivedValues, MessageStatusReport, MimiContent, read};

fuzz_target!(|data: &[u8]| {
    if let Ok(content) = MimiContent::decode(data) {
        let encoded = content.encode().expect("decoded content must re-encode");
        assert_eq!(encoded, data, "accepted MIMI content must be canonical");
        let _ = content.message_id();
        let _ = read(&content);
    }
    if let Ok(report) = MessageStatusReport::decode(data) {
        assert_eq!(report.encode().expect("re-encode"), data);
    }
    if let Ok(implied) = MessageDerivedValues::decode(data) {
        let _ = implied.encode();
    }
});
