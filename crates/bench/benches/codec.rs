//! Criterion micro-benchmarks of the codec: encode and decode of each top-level message.
//!
//! `cargo bench -p mimi-bench --bench codec`. Message sizes are those of
//! `mimi_bench::messages` (a 1 KiB application message, a commit bundle for a group of
//! about 1,000 clients, ...). The signaling validation benchmark is `benches/signaling.rs`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput};
use mimi_bench::messages;
use mimi_codec::{
    CheckInviteRequest, IdentifierRequest, IdentifierResponse, MimiMessage, RoomState, Wire,
};

/// Benchmark encoding and decoding of `value` under `group/name`.
fn encode_decode<T: Wire>(c: &mut Criterion, group: &str, name: &str, value: &T) {
    let bytes = value.encode().expect("benchmark message encodes");
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_with_input(BenchmarkId::new("encode", name), value, |b, v| {
        b.iter(|| black_box(v).encode())
    });
    g.bench_with_input(BenchmarkId::new("decode", name), &bytes, |b, bytes| {
        b.iter(|| T::decode(black_box(bytes)))
    });
    g.finish();
}

fn mimi_messages(c: &mut Criterion) {
    let events = messages::event_messages().expect("event fixtures");
    for (name, message) in &events {
        encode_decode::<MimiMessage>(c, "MIMIMessage event", name, message);
    }
    let responses = messages::response_messages().expect("response fixtures");
    for (name, message) in &responses {
        encode_decode::<MimiMessage>(c, "MIMIMessage response", name, message);
    }
    for added in [0, 100] {
        let commit = messages::commit_event(added).expect("commit fixture");
        encode_decode::<MimiMessage>(
            c,
            "ds.commit bundle",
            &format!("adds {added} clients"),
            &commit,
        );
    }
}

fn room_state(c: &mut Criterion) {
    for participants in [10, 1000] {
        let state: RoomState = messages::room_state(participants).expect("room state fixture");
        encode_decode(
            c,
            "RoomState",
            &format!("{participants} participants"),
            &state,
        );
    }
}

fn discovery(c: &mut Criterion) {
    let invite: CheckInviteRequest = messages::check_invite(10).expect("check-invite fixture");
    encode_decode(c, "CheckInviteRequest", "room of 10", &invite);
    let request: IdentifierRequest = messages::identifier_request().expect("fixture");
    encode_decode(c, "IdentifierRequest", "handle", &request);
    let response: IdentifierResponse = messages::identifier_response().expect("fixture");
    encode_decode(c, "IdentifierResponse", "success", &response);
}

/// Every codec benchmark (what `criterion_group!`/`criterion_main!` would generate).
fn main() {
    let mut c = Criterion::default().configure_from_args();
    mimi_messages(&mut c);
    room_state(&mut c);
    discovery(&mut c);
    c.final_summary();
}
