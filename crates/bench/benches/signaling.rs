//! Criterion micro-benchmarks of the signaling validation path: `Room::check` and
//! `Room::accept` of an add (join by the owner), an invite and a kick in rooms of 10 and
//! 1,000 participants, and `Hub::accept` sequencing a `ds.send_message` and an
//! `m.room.user` event.
//!
//! `cargo bench -p mimi-bench --bench signaling`. Every room is owned by Alice under the
//! default policy (only admins and owners add, invite and remove); the other participants
//! are joined members spread over ten servers.

use std::hint::black_box;

use criterion::{BatchSize, BenchmarkId, Criterion};
use mimi_codec::mls_ids::{DEFAULT_CIPHER_SUITE, SECURITY_PROTOCOL_MLS10};
use mimi_codec::{
    Event, MlsBytes, ParticipationStateChange as Change, Reason, SecurityConfig,
    SendMessageRequest, Sender, Text, UserEvent, UserId,
};
use mimi_signaling::{Hub, Policy, Room, RoomIdSource};

/// Participant counts of every benchmark.
const SIZES: [usize; 2] = [10, 1_000];

fn user(name: &str, server: usize) -> UserId {
    format!("@{name}:p{server}.bench.test")
        .parse()
        .expect("valid user ID")
}

fn alice() -> UserId {
    user("alice", 0)
}

fn change(target: UserId, change: Change) -> UserEvent {
    UserEvent {
        target,
        change,
        reason: Reason::default(),
        follower_server_certificate: None,
        role: None,
    }
}

/// A hub whose room has Alice (owner) and `size - 1` joined members.
fn hub(size: usize) -> Hub {
    let security = SecurityConfig {
        protocol: Text::new(SECURITY_PROTOCOL_MLS10).expect("valid protocol"),
        cipher_suite: DEFAULT_CIPHER_SUITE,
    };
    let mut hub = Hub::create(
        alice(),
        RoomIdSource::Localpart("bench".into()),
        Policy::default(),
        security,
    )
    .expect("room is created");
    let sender = Sender::User(alice());
    for i in 1..size {
        let add = change(user(&format!("user{i}"), i % 10), Change::Join);
        let event = Event::RoomUser(framed(0x01, 44));
        hub.accept(sender.clone(), event, vec![add])
            .expect("the owner adds a member");
    }
    hub
}

/// A well-framed application PrivateMessage (RFC 9420 §6.3) whose ciphertext is `len`
/// copies of `tag`: events carry bare MLSMessages, so the bytes must frame as one.
fn framed(tag: u8, len: usize) -> MlsBytes {
    let mut b = vec![0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0];
    let n = u16::try_from(len).expect("short");
    if len < 64 {
        b.push(n as u8);
    } else {
        b.extend((0x4000 | n).to_be_bytes());
    }
    b.extend(vec![tag; len]);
    MlsBytes::new(b).expect("small")
}

fn room_checks(c: &mut Criterion) {
    let sender = Sender::User(alice());
    let mut g = c.benchmark_group("Room");
    for size in SIZES {
        let room: Room = hub(size).room().clone();
        let cases = [
            ("add", change(user("newcomer", 3), Change::Join)),
            ("invite", change(user("newcomer", 3), Change::Invite)),
            ("kick", change(user("user1", 1), Change::Leave)),
        ];
        for (name, event) in cases {
            g.bench_with_input(
                BenchmarkId::new(format!("check/{name}"), size),
                &event,
                |b, event| b.iter(|| black_box(&room).check(&sender, black_box(event))),
            );
            g.bench_with_input(
                BenchmarkId::new(format!("accept/{name}"), size),
                &event,
                |b, event| {
                    b.iter_batched(
                        || room.clone(),
                        |mut room| room.accept(&sender, event).map(|_| room),
                        BatchSize::SmallInput,
                    )
                },
            );
        }
    }
    g.finish();
}

fn hub_accept(c: &mut Criterion) {
    let sender = Sender::User(alice());
    let message = Event::DsSendMessage(SendMessageRequest {
        application_message: framed(0x17, 1004),
    });
    let invite = Event::RoomUser(framed(0x01, 44));
    let mut g = c.benchmark_group("Hub::accept");
    for size in SIZES {
        let hub = hub(size);
        g.bench_function(BenchmarkId::new("ds.send_message", size), |b| {
            b.iter_batched(
                || hub.clone(),
                |mut hub| {
                    hub.accept(sender.clone(), message.clone(), Vec::new())
                        .map(|_| hub)
                },
                BatchSize::SmallInput,
            )
        });
        g.bench_function(BenchmarkId::new("m.room.user invite", size), |b| {
            b.iter_batched(
                || hub.clone(),
                |mut hub| {
                    hub.accept(
                        sender.clone(),
                        invite.clone(),
                        vec![change(user("newcomer", 3), Change::Invite)],
                    )
                    .map(|_| hub)
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

/// Every signaling benchmark (what `criterion_group!`/`criterion_main!` would generate).
fn main() {
    let mut c = Criterion::default().configure_from_args();
    room_checks(&mut c);
    hub_accept(&mut c);
    c.final_summary();
}
