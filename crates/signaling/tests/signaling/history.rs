//! Hub sequencing and follower verification.

use mimi_codec::{
    BoundedVec, CommitRequest, Event, FanoutEvent, GroupInfoRequest, MessageBody, MimiMessage,
    MlsBytes, ParticipationStateChange as C, SendMessageRequest, Sender, ServerName, UserEvent,
    Wire, WireHash,
};
use mimi_signaling::{
    Follower, Hub, HubError, Policy, Rejection, RoomIdSource, RuleId, VerifyError, event_hash,
};
use sha2::{Digest, Sha256};

use super::{by, event, security, user};

fn mls(tag: u8) -> MlsBytes {
    private_message(tag, 8)
}

/// A well-framed application PrivateMessage (RFC 9420 §6.3) whose ciphertext is `len`
/// copies of `tag`: the wire writes MLSMessages bare, so the bytes must frame as one.
fn private_message(tag: u8, len: usize) -> MlsBytes {
    let mut b = vec![0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0];
    // The ciphertext's variable-length prefix (RFC 9420 §2.1.2).
    let n = u32::try_from(len).unwrap();
    match len {
        0..=63 => b.push(n as u8),
        64..=16383 => b.extend((0x4000 | n as u16).to_be_bytes()),
        _ => b.extend((0x8000_0000 | n).to_be_bytes()),
    }
    b.extend(vec![tag; len]);
    MlsBytes::new(b).unwrap()
}

fn room_user(tag: u8) -> Event {
    Event::RoomUser(mls(tag))
}

fn message(tag: u8) -> Event {
    Event::DsSendMessage(SendMessageRequest {
        application_message: mls(tag),
    })
}

fn commit(welcomes: usize) -> Event {
    Event::DsCommit(CommitRequest {
        commit: mls(1),
        group_info: mls(2),
        welcomes: BoundedVec::new((0..welcomes).map(|i| mls(10 + i as u8)).collect()).unwrap(),
    })
}

fn new_hub() -> Hub {
    Hub::create(
        user("@alice:a.example"),
        RoomIdSource::Localpart("r1".into()),
        Policy::default(),
        security(),
    )
    .unwrap()
}

fn servers(list: &[&str]) -> std::collections::BTreeSet<ServerName> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

/// Alice invites Bob (1), Bob joins unsigned (2), Bob sends a message (3), Alice makes Bob
/// admin (4), Alice commits (5).
fn scripted() -> (Hub, Vec<(Sender, FanoutEvent, Vec<UserEvent>)>) {
    let mut hub = new_hub();
    let steps: Vec<(Sender, Event, Vec<UserEvent>)> = vec![
        (
            by("@alice:a.example"),
            room_user(1),
            vec![event("@bob:b.example", C::Invite, None)],
        ),
        (
            by("@bob:b.example"),
            Event::RoomUserUnsigned(event("@bob:b.example", C::Join, None)),
            vec![event("@bob:b.example", C::Join, None)],
        ),
        (by("@bob:b.example"), message(3), vec![]),
        (
            by("@alice:a.example"),
            room_user(4),
            vec![event("@bob:b.example", C::SetRole, Some("admin"))],
        ),
        (by("@alice:a.example"), commit(2), vec![]),
    ];
    let mut sent = Vec::new();
    for (sender, ev, changes) in steps {
        let accepted = hub.accept(sender.clone(), ev, changes.clone()).unwrap();
        sent.push((sender, accepted.fanout, changes));
    }
    (hub, sent)
}

#[test]
fn the_create_event_is_first_with_no_links() {
    let hub = new_hub();
    let create = hub.create_event().unwrap();
    assert_eq!(create.fanout.sequence, 0);
    assert!(create.fanout.prev_hash.is_empty());
    assert!(create.fanout.auth_events.is_empty());
    assert_eq!(
        create.fanout.event,
        Event::RoomInfo(hub.room().info_event())
    );
    assert_eq!(create.sender, by("@alice:a.example"));
    // The hash is SHA-256 over the framed fully-formed event.
    let framed = MimiMessage::new(
        hub.room().id().clone(),
        create.sender.clone(),
        MessageBody::Fanout(create.fanout.clone()),
    );
    let expected: [u8; 32] = Sha256::digest(framed.encode().unwrap()).into();
    assert_eq!(create.hash, expected);
    assert_eq!(hub.history().next_sequence(), 1);
}

#[test]
fn the_hub_sequences_links_and_authorizes() {
    let (hub, sent) = scripted();
    let h = hub.history();
    assert_eq!(h.next_sequence(), 6);
    for (i, (_, fanout, _)) in sent.iter().enumerate() {
        let seq = i as u64 + 1;
        assert_eq!(fanout.sequence, seq);
        assert_eq!(
            fanout.prev_hash.as_slice(),
            &h.get(seq - 1).unwrap().hash[..]
        );
    }
    let auth: Vec<Vec<u64>> = sent
        .iter()
        .map(|(_, f, _)| f.auth_events.iter().copied().collect())
        .collect();
    assert_eq!(
        auth,
        vec![vec![0], vec![0, 1], vec![0, 2], vec![0, 2], vec![0]]
    );
    assert_eq!(h.auth_chain(4).unwrap(), [0, 1, 2].into());
    assert_eq!(h.auth_chain(3).unwrap(), [0, 1, 2].into());
    assert_eq!(h.auth_chain(1).unwrap(), [0].into());
    assert_eq!(h.auth_chain(0).unwrap(), [].into());
    assert_eq!(h.auth_chain(6), None);
    // Every event names the create event.
    assert!(
        h.events()[1..]
            .iter()
            .all(|e| e.fanout.auth_events.as_slice().first() == Some(&0))
    );
    assert_eq!(h.events_from(4).unwrap().len(), 2);
    assert_eq!(h.events_from(99).unwrap().len(), 0);
}

#[test]
fn accepted_events_name_their_fanout_targets() {
    let mut hub = new_hub();
    let invite = hub
        .accept(
            by("@alice:a.example"),
            room_user(1),
            vec![event("@bob:b.example", C::Invite, None)],
        )
        .unwrap();
    assert_eq!(invite.targets, servers(&["a.example", "b.example"]));
    assert_eq!(invite.transitions.len(), 1);
    let msg = hub
        .accept(by("@alice:a.example"), message(2), vec![])
        .unwrap();
    assert_eq!(msg.targets, servers(&["a.example"]));
    assert!(msg.transitions.is_empty());
    // A commit adding two users of new servers, by value.
    let adds = vec![
        event("@carol:c.example", C::Join, None),
        event("@dan:d.example", C::Join, None),
    ];
    let both = hub.accept(by("@alice:a.example"), commit(2), adds).unwrap();
    assert_eq!(
        both.targets,
        servers(&["a.example", "c.example", "d.example"])
    );
    assert_eq!(both.fanout.auth_events.as_slice(), &[0]);
}

#[test]
fn refused_events_change_nothing() {
    let mut hub = new_hub();
    hub.accept(
        by("@alice:a.example"),
        room_user(1),
        vec![event("@bob:b.example", C::Invite, None)],
    )
    .unwrap();
    let before = hub.clone();
    let cases: Vec<(Sender, Event, Vec<UserEvent>, RuleId)> = vec![
        (
            by("@alice:a.example"),
            Event::RoomInfo(hub.room().info_event()),
            vec![],
            RuleId::Hist1,
        ),
        (
            by("@alice:a.example"),
            Event::DsFetchGroupInfo(GroupInfoRequest),
            vec![],
            RuleId::Hist2,
        ),
        (by("@alice:a.example"), room_user(2), vec![], RuleId::Hist3),
        (
            by("@alice:a.example"),
            room_user(2),
            vec![
                event("@x:x.example", C::Invite, None),
                event("@y:y.example", C::Invite, None),
            ],
            RuleId::Hist3,
        ),
        (
            by("@alice:a.example"),
            message(2),
            vec![event("@x:x.example", C::Invite, None)],
            RuleId::Hist3,
        ),
        (
            by("@bob:b.example"),
            Event::RoomUserUnsigned(event("@bob:b.example", C::Join, None)),
            vec![event("@bob:b.example", C::Knock, None)],
            RuleId::Hist3,
        ),
        (
            by("@alice:a.example"),
            Event::RoomUserUnsigned(event("@x:x.example", C::Invite, None)),
            vec![event("@x:x.example", C::Invite, None)],
            RuleId::Unsigned1,
        ),
        (
            by("@alice:a.example"),
            Event::RoomUserUnsigned(event("@alice:a.example", C::SetRole, Some("member"))),
            vec![event("@alice:a.example", C::SetRole, Some("member"))],
            RuleId::Unsigned1,
        ),
        (
            by("@alice:a.example"),
            commit(0),
            (0..255)
                .map(|i| event(&format!("@u{i}:x.example"), C::Invite, None))
                .collect(),
            RuleId::Hist4,
        ),
        // Atomic: the second change of the commit fails, so the first is not kept either.
        (
            by("@alice:a.example"),
            commit(0),
            vec![
                event("@x:x.example", C::Invite, None),
                event("@alice:a.example", C::Ban, None),
            ],
            RuleId::Ban4,
        ),
        (
            by("@carl:c.example"),
            room_user(2),
            vec![event("@carl:c.example", C::Join, None)],
            RuleId::Join4,
        ),
    ];
    for (sender, ev, changes, rule) in cases {
        let checked = hub.check(&sender, &ev, &changes).unwrap_err();
        let err = hub.accept(sender, ev, changes).unwrap_err();
        assert_eq!(err, HubError::Rejected(Rejection::new(rule)));
        assert_eq!(checked, Rejection::new(rule));
        assert_eq!(hub, before, "{rule} changed the hub");
    }
}

#[test]
fn commit_hash_ignores_welcomes() {
    let room = "!r:a.example".parse().unwrap();
    let f = |event| FanoutEvent {
        sequence: 3,
        prev_hash: WireHash::new(vec![1; 32]).unwrap(),
        auth_events: BoundedVec::default(),
        event,
    };
    let sender = by("@alice:a.example");
    let with = event_hash(&room, &sender, &f(commit(3))).unwrap();
    let without = event_hash(&room, &sender, &f(commit(0))).unwrap();
    assert_eq!(with, without);
    assert_ne!(
        event_hash(&room, &sender, &f(message(1))).unwrap(),
        event_hash(&room, &sender, &f(message(2))).unwrap()
    );
    assert_ne!(
        with,
        event_hash(&room, &by("@bob:b.example"), &f(commit(0))).unwrap()
    );
}

fn follower_of(hub: &Hub) -> Follower {
    let create = hub.create_event().unwrap();
    Follower::new(&create.sender, hub.room().id(), &create.fanout).unwrap()
}

#[test]
fn a_follower_replaying_the_hub_reaches_its_state() {
    let (hub, sent) = scripted();
    let mut follower = follower_of(&hub);
    for (sender, fanout, changes) in &sent {
        // Welcomes go only to the added clients' servers: this follower gets the commit without them.
        let mut received = fanout.clone();
        if let Event::DsCommit(c) = &mut received.event {
            c.welcomes = BoundedVec::default();
        }
        let r = follower.receive(sender, &received, changes).unwrap();
        assert_eq!(r.sequence, fanout.sequence);
    }
    assert_eq!(follower.room(), hub.room());
    let hashes =
        |h: &mimi_signaling::History| h.events().iter().map(|e| e.hash).collect::<Vec<_>>();
    assert_eq!(hashes(follower.history()), hashes(hub.history()));
}

#[test]
fn followers_drop_duplicates_and_report_gaps_and_conflicts() {
    let (hub, sent) = scripted();
    let mut follower = follower_of(&hub);
    let (s1, f1, c1) = &sent[0];
    follower.receive(s1, f1, c1).unwrap();
    let before = follower.clone();
    assert_eq!(
        follower.receive(s1, f1, c1),
        Err(VerifyError::Duplicate { sequence: 1 })
    );
    let mut forged = f1.clone();
    forged.event = room_user(99);
    assert_eq!(
        follower.receive(s1, &forged, c1),
        Err(VerifyError::Conflict { sequence: 1 })
    );
    let (s3, f3, c3) = &sent[2];
    assert_eq!(
        follower.receive(s3, f3, c3),
        Err(VerifyError::Gap {
            expected: 2,
            got: 3
        })
    );
    assert_eq!(
        VerifyError::Gap {
            expected: 2,
            got: 3
        }
        .rule(),
        Some(RuleId::Seq1)
    );
    assert_eq!(follower, before);
}

#[test]
fn a_lying_hub_is_detected() {
    let (hub, sent) = scripted();
    let mut follower = follower_of(&hub);
    let (s1, f1, c1) = &sent[0];
    follower.receive(s1, f1, c1).unwrap();
    let before = follower.clone();
    let (s2, f2, c2) = &sent[1];

    let mut bad_link = f2.clone();
    bad_link.prev_hash = WireHash::new(vec![0; 32]).unwrap();
    assert_eq!(
        follower.receive(s2, &bad_link, c2),
        Err(VerifyError::PrevHash { sequence: 2 })
    );

    let mut bad_auth = f2.clone();
    bad_auth.auth_events = BoundedVec::new(vec![0]).unwrap();
    assert_eq!(
        follower.receive(s2, &bad_auth, c2),
        Err(VerifyError::AuthEvents {
            sequence: 2,
            expected: vec![0, 1],
            got: vec![0]
        })
    );

    // A well-linked event that breaks a rule: Carl joins a members-only room uninvited.
    let carl = event("@carl:c.example", C::Join, None);
    let forged = FanoutEvent {
        sequence: 2,
        prev_hash: f2.prev_hash.clone(),
        auth_events: BoundedVec::new(vec![0]).unwrap(),
        event: Event::RoomUserUnsigned(carl.clone()),
    };
    let err = follower
        .receive(&by("@carl:c.example"), &forged, &[carl])
        .unwrap_err();
    assert_eq!(err, VerifyError::Rejected(Rejection::new(RuleId::Join4)));
    assert_eq!(err.rule(), Some(RuleId::Join4));
    // The hub claims an invite came from a server.
    let server_sender = Sender::Server("a.example".parse().unwrap());
    let mut by_server = f2.clone();
    by_server.auth_events = BoundedVec::new(vec![0, 1]).unwrap();
    by_server.event = room_user(7);
    let err = follower.receive(
        &server_sender,
        &by_server,
        &[event("@bob:b.example", C::Join, None)],
    );
    assert_eq!(
        err,
        Err(VerifyError::Rejected(Rejection::new(RuleId::Sender1)))
    );
    assert_eq!(follower, before);

    // The genuine event is still accepted afterwards.
    follower.receive(s2, f2, c2).unwrap();
}

#[test]
fn followers_check_the_create_event() {
    let hub = new_hub();
    let create = hub.create_event().unwrap();
    let id = hub.room().id();
    let alice = by("@alice:a.example");

    let mut late = create.fanout.clone();
    late.sequence = 5;
    assert_eq!(
        Follower::new(&alice, id, &late).unwrap_err(),
        VerifyError::Gap {
            expected: 0,
            got: 5
        }
    );

    let mut linked = create.fanout.clone();
    linked.auth_events = BoundedVec::new(vec![0]).unwrap();
    assert_eq!(
        Follower::new(&alice, id, &linked).unwrap_err().rule(),
        Some(RuleId::Create4)
    );

    let mut not_info = create.fanout.clone();
    not_info.event = message(1);
    assert_eq!(
        Follower::new(&alice, id, &not_info).unwrap_err().rule(),
        Some(RuleId::Hist1)
    );

    let mallory = by("@mallory:m.example");
    assert_eq!(
        Follower::new(&mallory, id, &create.fanout)
            .unwrap_err()
            .rule(),
        Some(RuleId::Create1)
    );
    let other_room = "!other:a.example".parse().unwrap();
    assert_eq!(
        Follower::new(&alice, &other_room, &create.fanout)
            .unwrap_err()
            .rule(),
        Some(RuleId::Create1)
    );

    let mut crowded = hub.room().info_event();
    let mut people = crowded.room_state.participants.as_slice().to_vec();
    people.push(mimi_codec::ParticipantData {
        user_id: user("@eve:a.example"),
        role: super::role("member"),
        state: mimi_codec::ParticipationState::Join,
    });
    crowded.room_state.participants = BoundedVec::new(people).unwrap();
    let mut two = create.fanout.clone();
    two.event = Event::RoomInfo(crowded);
    assert_eq!(
        Follower::new(&alice, id, &two).unwrap_err().rule(),
        Some(RuleId::Create2)
    );

    let mut unknown = hub.room().info_event();
    unknown.room_state.policy.policy_id = mimi_codec::Text::new("other.v9").unwrap();
    let mut bad_policy = create.fanout.clone();
    bad_policy.event = Event::RoomInfo(unknown);
    let err = Follower::new(&alice, id, &bad_policy).unwrap_err();
    assert!(matches!(err, VerifyError::InvalidCreate(_)), "{err:?}");
    assert_eq!(err.rule(), Some(RuleId::Create3));

    let follower = Follower::new(&alice, id, &create.fanout).unwrap();
    assert_eq!(follower.room(), hub.room());
}

#[test]
fn hub_errors_map_to_event_errors() {
    let mut hub = new_hub();
    let err = hub
        .accept(
            by("@bob:b.example"),
            room_user(1),
            vec![event("@bob:b.example", C::Join, None)],
        )
        .unwrap_err();
    let wire = err.to_event_error();
    assert_eq!(wire.code, mimi_codec::ErrorCode::ForbiddenByPolicy);
    assert!(
        wire.detail.as_str().starts_with("SIG-JOIN-4: "),
        "{}",
        wire.detail
    );
}

#[test]
fn a_commit_must_remove_departed_users_clients() {
    let mut hub = new_hub();
    let alice = by("@alice:a.example");
    hub.accept(
        alice.clone(),
        commit(1),
        vec![
            event("@bob:b.example", C::Join, None),
            event("@carl:c.example", C::Join, None),
        ],
    )
    .unwrap();
    hub.accept(
        by("@bob:b.example"),
        Event::RoomUserUnsigned(event("@bob:b.example", C::Leave, None)),
        vec![event("@bob:b.example", C::Leave, None)],
    )
    .unwrap();
    let pending: std::collections::BTreeSet<_> = [user("@bob:b.example")].into();
    assert_eq!(hub.room().pending_client_removals(), &pending);

    // The commit also kicks Carl by value: both must be gone afterwards.
    let kick = vec![event("@carl:c.example", C::Leave, None)];
    let still = [user("@alice:a.example"), user("@carl:c.example")].into();
    let err = hub.check_commit(&alice, &kick, &still).unwrap_err();
    assert_eq!(
        err,
        HubError::ClientsNotRemoved(mimi_signaling::ClientsNotRemoved {
            users: vec![user("@carl:c.example")]
        })
    );
    assert_eq!(
        err.to_event_error().code,
        mimi_codec::ErrorCode::ClientsNotRemoved
    );
    let mut follower = follower_of(&hub);
    for e in &hub.history().events()[1..] {
        follower.receive(&e.sender, &e.fanout, &e.changes).unwrap();
    }
    assert_eq!(
        follower.check_commit(&alice, &kick, &still).unwrap_err(),
        err
    );
    let only_alice = [user("@alice:a.example")].into();
    let transitions = hub.check_commit(&alice, &kick, &only_alice).unwrap();
    assert_eq!(transitions.len(), 1);
    assert!(transitions[0].removes_clients());

    // A follower replaying the log agrees at each step, and the commit clears the obligation.
    let accepted = hub.accept(alice.clone(), commit(0), kick.clone()).unwrap();
    assert!(hub.room().pending_client_removals().is_empty());
    assert_eq!(accepted.targets, servers(&["a.example", "c.example"]));
    let restored = Hub::restore(hub.room().id(), hub.history().events()).unwrap();
    assert_eq!(restored, hub);
    assert_eq!(
        Hub::restore(hub.room().id(), &[]).unwrap_err().rule(),
        Some(RuleId::Hist1)
    );
}

/// Memory keeps the create event and the latest `HISTORY_WINDOW` or so events: older ones
/// are gone from memory (the caller reads them from storage), the hash chain and auth
/// events go on, a follower replaying the whole history stays in step, and a copy of an
/// event older than those in memory is a duplicate.
#[test]
fn the_history_in_memory_is_a_window() {
    use mimi_signaling::HISTORY_WINDOW;
    let mut hub = new_hub();
    let mut follower = follower_of(&hub);
    let total = 4 * HISTORY_WINDOW as u64;
    let mut sent = Vec::new();
    for i in 1..=total {
        let accepted = hub
            .accept(by("@alice:a.example"), message(i as u8), Vec::new())
            .unwrap();
        assert_eq!(accepted.fanout.sequence, i);
        follower
            .receive(&by("@alice:a.example"), &accepted.fanout, &[])
            .unwrap();
        sent.push(accepted.fanout);
    }
    for h in [hub.history(), follower.history()] {
        assert_eq!(h.next_sequence(), total + 1);
        assert!(!h.is_whole());
        let held = h.events().len();
        assert!(held > HISTORY_WINDOW && held <= 1 + HISTORY_WINDOW + HISTORY_WINDOW / 4);
        assert_eq!(h.get(0).unwrap().fanout.sequence, 0);
        assert_eq!(h.get(total).unwrap().fanout.sequence, total);
        assert_eq!(
            h.get(total - HISTORY_WINDOW as u64 + 1)
                .unwrap()
                .fanout
                .sequence,
            total - HISTORY_WINDOW as u64 + 1
        );
        assert!(h.get(1).is_none());
        assert!(h.get(total + 1).is_none());
        assert!(h.events_from(0).is_none());
        assert!(h.events_from(1).is_none());
        let tail = h.events_from(total - 2).unwrap();
        assert_eq!(
            tail.iter().map(|e| e.fanout.sequence).collect::<Vec<_>>(),
            [total - 2, total - 1, total]
        );
        assert_eq!(h.events_from(total + 1).unwrap(), &[]);
    }
    assert_eq!(hub.history(), follower.history());
    // A copy of event 1, long gone from memory, changes nothing.
    let before = follower.clone();
    assert_eq!(
        follower.receive(&by("@alice:a.example"), &sent[0], &[]),
        Err(VerifyError::Duplicate { sequence: 1 })
    );
    assert_eq!(follower, before);
    // A copy of a recent one is compared, and a changed one is a conflict.
    let mut forged = sent[sent.len() - 1].clone();
    forged.event = message(0);
    assert_eq!(
        follower.receive(&by("@alice:a.example"), &forged, &[]),
        Err(VerifyError::Conflict { sequence: total })
    );
}

/// A snapshot taken after any event, with the create event, its window and the events
/// after it from the log, rebuilds exactly the hub (and follower) that replaying the whole
/// history does, pending client removals and latest membership included; the events it
/// needs are the window's, however long the history.
#[test]
fn a_snapshot_with_its_window_rebuilds_the_room_without_the_history() {
    use mimi_signaling::{HISTORY_WINDOW, LoggedEvent, Snapshot, SnapshotError};
    let alice = by("@alice:a.example");
    let bob = by("@bob:b.example");
    let mut hub = new_hub();
    let mut log: Vec<LoggedEvent> = hub.history().events().to_vec();
    let mut at = vec![(hub.clone(), hub.snapshot().encode().unwrap())];
    let total = 5 * HISTORY_WINDOW as u64;
    for i in 1..=total {
        let (sender, ev, changes) = match i % 23 {
            3 => (
                alice.clone(),
                room_user(i as u8),
                vec![event("@bob:b.example", C::Invite, None)],
            ),
            4 => (
                bob.clone(),
                Event::RoomUserUnsigned(event("@bob:b.example", C::Join, None)),
                vec![event("@bob:b.example", C::Join, None)],
            ),
            // Bob leaves: his clients' removal is pending until the commit at 17.
            9 => (
                bob.clone(),
                Event::RoomUserUnsigned(event("@bob:b.example", C::Leave, None)),
                vec![event("@bob:b.example", C::Leave, None)],
            ),
            17 => (alice.clone(), commit(0), vec![]),
            _ => (alice.clone(), message(i as u8), vec![]),
        };
        let accepted = hub.accept(sender.clone(), ev, changes.clone()).unwrap();
        let hash = event_hash(hub.room().id(), &sender, &accepted.fanout).unwrap();
        log.push(LoggedEvent {
            sender,
            fanout: accepted.fanout,
            changes,
            hash,
        });
        at.push((hub.clone(), hub.snapshot().encode().unwrap()));
    }
    assert!(
        at.iter()
            .any(|(h, _)| !h.room().pending_client_removals().is_empty())
    );
    let id = hub.room().id().clone();
    let replayed = Hub::restore(&id, &log).unwrap();
    assert_eq!(replayed, hub);
    for (k, (then, bytes)) in at.iter().enumerate() {
        let snapshot = Snapshot::decode(bytes).unwrap();
        assert_eq!(&snapshot, &then.snapshot());
        assert_eq!(snapshot.next_sequence(), k as u64 + 1);
        let window = snapshot.first_retained().max(1) as usize..snapshot.next_sequence() as usize;
        assert!(window.len() <= HISTORY_WINDOW + HISTORY_WINDOW / 4);
        let mut given = vec![log[0].clone()];
        given.extend_from_slice(&log[window.clone()]);
        // Exactly the room at that point, and with the later events, the room now.
        assert_eq!(&Hub::from_snapshot(&id, &snapshot, &given).unwrap(), then);
        given.extend_from_slice(&log[snapshot.next_sequence() as usize..]);
        assert_eq!(Hub::from_snapshot(&id, &snapshot, &given).unwrap(), hub);
        let follower = Follower::from_snapshot(&id, &snapshot, &given).unwrap();
        assert_eq!(follower.room(), hub.room());
        assert_eq!(follower.history(), hub.history());
    }

    // What does not fit is refused, not patched over.
    let (_, bytes) = &at[3 * HISTORY_WINDOW];
    let snapshot = Snapshot::decode(bytes).unwrap();
    let window = snapshot.first_retained() as usize..snapshot.next_sequence() as usize;
    let mut given = vec![log[0].clone()];
    given.extend_from_slice(&log[window.clone()]);
    let mut missing = given.clone();
    missing.remove(2);
    assert!(matches!(
        Hub::from_snapshot(&id, &snapshot, &missing),
        Err(SnapshotError::Events { .. })
    ));
    let mut forged = given.clone();
    forged[3].fanout.prev_hash = WireHash::new(vec![0; 32]).unwrap();
    assert_eq!(
        Hub::from_snapshot(&id, &snapshot, &forged).unwrap_err(),
        SnapshotError::Chain(forged[3].fanout.sequence)
    );
    let mut later = given.clone();
    let mut lie = log[window.end].clone();
    lie.fanout.sequence += 1;
    later.push(lie);
    assert!(matches!(
        Hub::from_snapshot(&id, &snapshot, &later),
        Err(SnapshotError::Verify(VerifyError::Gap { .. }))
    ));
    let other: mimi_codec::RoomId = "!other:a.example".parse().unwrap();
    assert_eq!(
        Hub::from_snapshot(&other, &snapshot, &given).unwrap_err(),
        SnapshotError::OtherRoom(id.clone())
    );
    assert!(Hub::from_snapshot(&id, &snapshot, &[]).is_err());
    assert!(Snapshot::decode(&bytes[..bytes.len() - 1]).is_err());
    assert!(Snapshot::decode(&[bytes.as_slice(), &[0]].concat()).is_err());
}
