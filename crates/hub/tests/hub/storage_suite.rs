//! One suite for every `Storage` implementation: each case in `cases` is generic over the
//! backend and `suite!` runs it against `MemoryStorage`, `RedbStorage` (a real redb file in
//! a temporary directory) and `PostgresStorage` (a database of its own on a real PostgreSQL
//! server started by `pg.rs`; skipped, loudly, where PostgreSQL is not installed). Cases
//! that only a file can have (reopening, a file that is not a database) are in `redb_only`;
//! those of a database server in `postgres_only`.
use mimi_codec::{ClientId, RoomId, ServerName, UserId};
use mimi_hub::storage::{
    Batch, ClientRecord, CommitOutcome, Conflict, DirectoryField, GroupUpdate, KeyPackageCount,
    LogEntry, MAX_READ_LIMIT, MemoryStorage, OutboxEntry, Payload, REQUEST_WINDOW, RedbStorage,
    RoomRecord, RoomRole, RoomUpdate, Storage, StorageError, StoredKeyPackage, UserRecord,
};

fn room(s: &str) -> RoomId {
    s.parse().unwrap()
}
fn server(s: &str) -> ServerName {
    s.parse().unwrap()
}
fn user(s: &str) -> UserId {
    s.parse().unwrap()
}
fn client(s: &str) -> ClientId {
    s.parse().unwrap()
}

fn update(role: RoomRole, state: &[u8], group: GroupUpdate) -> Option<RoomUpdate> {
    Some(RoomUpdate {
        role,
        state: state.to_vec(),
        group,
    })
}

fn entry(seq: u64, bytes: &[u8]) -> Option<LogEntry> {
    Some(LogEntry {
        seq,
        entry: bytes.to_vec(),
    })
}

/// A hub batch appending `seq` with `outbox` destinations and `inbox` clients, the message
/// bytes being `"<tag>-><dest or client>"`.
fn hub_batch(r: &RoomId, seq: u64, tag: &str, outbox: &[&str], inbox: &[&str]) -> Batch {
    let mut b = Batch::new(r.clone());
    b.room_update = update(
        RoomRole::Hub,
        format!("state{seq}").as_bytes(),
        GroupUpdate::Replace(format!("group{seq}").into_bytes()),
    );
    b.log = entry(seq, tag.as_bytes());
    b.outbox = outbox
        .iter()
        .map(|d| (server(d), format!("{tag}->{d}").into_bytes().into()))
        .collect();
    b.inbox = inbox
        .iter()
        .map(|c| (client(c), format!("{tag}->{c}").into_bytes().into()))
        .collect();
    b
}

/// The outbox ids a commit took; panics on any other outcome.
fn outbox_ids_of(outcome: Result<CommitOutcome, StorageError>) -> Vec<u64> {
    match outcome {
        Ok(CommitOutcome::Committed { outbox_ids, .. }) => outbox_ids,
        other => panic!("{other:?}"),
    }
}

fn committed(outbox_ids: Vec<u64>, inbox_cursors: Vec<u64>) -> CommitOutcome {
    CommitOutcome::Committed {
        outbox_ids,
        inbox_cursors,
    }
}

fn user_record(id: &str, handle: Option<&str>, email: Option<&str>) -> UserRecord {
    UserRecord {
        user_id: user(id),
        handle: handle.map(str::to_owned),
        email: email.map(str::to_owned),
        phone: None,
        display_name: None,
    }
}

fn register(s: &impl Storage, clients: &[&str]) {
    for c in clients {
        let c = client(c);
        if s.user(&c.user()).unwrap().is_none() {
            s.put_user(&user_record(c.user().as_str(), None, None))
                .unwrap();
        }
        s.put_client(&ClientRecord {
            client_id: c,
            token_hash: [7; 32],
        })
        .unwrap();
    }
}

fn kp(suite: u16, last_resort: bool, hash_ref: &[u8], bytes: &[u8]) -> StoredKeyPackage {
    StoredKeyPackage {
        cipher_suite: suite,
        last_resort,
        hash_ref: hash_ref.to_vec(),
        bytes: bytes.to_vec(),
    }
}

/// Rooms, logs, outbox queues and inboxes, in the order asked for.
type Snapshot = (
    Vec<Option<RoomRecord>>,
    Vec<Vec<LogEntry>>,
    Vec<Vec<OutboxEntry>>,
    Vec<Vec<(u64, Vec<u8>)>>,
);

/// Everything a batch can touch, to compare before and after a refused batch.
fn snapshot(s: &impl Storage, rooms: &[&RoomId], dests: &[&str], clients: &[&str]) -> Snapshot {
    (
        rooms.iter().map(|r| s.room(r).unwrap()).collect(),
        rooms
            .iter()
            .map(|r| s.log_range(r, 0, 100).unwrap())
            .collect(),
        dests
            .iter()
            .map(|d| s.outbox_peek(&server(d), 100).unwrap())
            .collect(),
        clients
            .iter()
            .map(|c| s.inbox_read(&client(c), 0, 100).unwrap())
            .collect(),
    )
}

mod cases {
    use super::*;

    pub fn commit_writes_room_log_outbox_and_inbox(s: &impl Storage) {
        let r = room("!r:hub.example");
        let out = s
            .commit(hub_batch(
                &r,
                0,
                "e0",
                &["b.example", "a.example"],
                &["@u:hub.example#phone"],
            ))
            .unwrap();
        assert_eq!(out, committed(vec![1, 2], vec![1]));
        assert_eq!(
            s.room(&r).unwrap(),
            Some(RoomRecord {
                role: RoomRole::Hub,
                state: b"state0".to_vec(),
                group: Some(b"group0".to_vec()),
                last_seq: Some(0),
            })
        );
        assert_eq!(s.rooms().unwrap(), vec![r.clone()]);
        assert_eq!(
            s.log_range(&r, 0, 10).unwrap(),
            vec![LogEntry {
                seq: 0,
                entry: b"e0".to_vec()
            }]
        );
        assert_eq!(
            s.outbox_destinations().unwrap(),
            vec![server("a.example"), server("b.example")]
        );
        assert_eq!(
            s.outbox_peek(&server("b.example"), 10).unwrap(),
            vec![OutboxEntry {
                id: 1,
                dest: server("b.example"),
                room: r.clone(),
                seq: Some(0),
                message: b"e0->b.example".to_vec(),
            }]
        );
        assert_eq!(
            s.inbox_read(&client("@u:hub.example#phone"), 0, 10)
                .unwrap(),
            vec![(1, b"e0->@u:hub.example#phone".to_vec())]
        );
        assert_eq!(s.room(&room("!other:hub.example")).unwrap(), None);
    }

    pub fn sequence_numbers_have_no_gaps(s: &impl Storage) {
        let r = room("!r:hub.example");
        assert_eq!(
            s.commit(hub_batch(&r, 1, "e1", &[], &[])),
            Err(StorageError::OutOfOrder {
                expected: 0,
                got: 1
            })
        );
        assert_eq!(s.room(&r).unwrap(), None);
        s.commit(hub_batch(&r, 0, "e0", &[], &[])).unwrap();
        assert_eq!(
            s.commit(hub_batch(&r, 2, "e2", &[], &[])),
            Err(StorageError::OutOfOrder {
                expected: 1,
                got: 2
            })
        );
        // Without dedup an old sequence number is an error, not a silent overwrite.
        assert_eq!(
            s.commit(hub_batch(&r, 0, "again", &[], &[])),
            Err(StorageError::OutOfOrder {
                expected: 1,
                got: 0
            })
        );
        s.commit(hub_batch(&r, 1, "e1", &[], &[])).unwrap();
        let seqs: Vec<u64> = s
            .log_range(&r, 0, 10)
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(seqs, vec![0, 1]);
        assert_eq!(s.log_range(&r, 0, 10).unwrap()[0].entry, b"e0".to_vec());
    }

    pub fn a_refused_batch_writes_nothing(s: &impl Storage) {
        let r = room("!r:hub.example");
        let c = "@u:hub.example#phone";
        s.commit(hub_batch(&r, 0, "e0", &["a.example"], &[c]))
            .unwrap();
        let before = snapshot(s, &[&r], &["a.example", "b.example"], &[c]);

        // Out of order, with a room update, outbox and inbox entries.
        let bad = hub_batch(&r, 5, "e5", &["a.example", "b.example"], &[c]);
        assert_eq!(
            s.commit(bad),
            Err(StorageError::OutOfOrder {
                expected: 1,
                got: 5
            })
        );
        assert_eq!(
            snapshot(s, &[&r], &["a.example", "b.example"], &[c]),
            before
        );

        // A stale expectation of the last sequence number.
        let mut stale = hub_batch(&r, 1, "e1", &["b.example"], &[c]);
        stale.expect_last_seq = Some(None);
        assert_eq!(
            s.commit(stale),
            Err(StorageError::Conflict(Conflict::LastSeq {
                expected: None,
                actual: Some(0)
            }))
        );
        assert_eq!(
            snapshot(s, &[&r], &["a.example", "b.example"], &[c]),
            before
        );
        assert_eq!(s.outbox_destinations().unwrap(), vec![server("a.example")]);

        // Refused batches consumed no ids: the next ones follow the last committed.
        let mut ok = hub_batch(&r, 1, "e1", &["b.example"], &[c]);
        ok.expect_last_seq = Some(Some(0));
        assert_eq!(s.commit(ok).unwrap(), committed(vec![2], vec![2]));
    }

    pub fn a_batch_for_an_unknown_room_is_refused(s: &impl Storage) {
        let r = room("!nowhere:hub.example");
        let mut b = Batch::new(r.clone());
        b.log = entry(0, b"e0");
        b.inbox = vec![(client("@u:hub.example#phone"), b"x".to_vec().into())];
        assert_eq!(s.commit(b), Err(StorageError::UnknownRoom(r.clone())));
        assert_eq!(s.rooms().unwrap(), Vec::<RoomId>::new());
        assert_eq!(
            s.inbox_read(&client("@u:hub.example#phone"), 0, 10)
                .unwrap(),
            vec![]
        );
    }

    pub fn followers_start_anywhere_and_drop_duplicates(s: &impl Storage) {
        let r = room("!r:hub.example");
        let c = "@f:follower.example#laptop";
        let follow = |seq: u64, tag: &str| {
            let mut b = Batch::new(r.clone());
            b.room_update = update(
                RoomRole::Follower,
                format!("state{seq}").as_bytes(),
                GroupUpdate::Keep,
            );
            b.log = entry(seq, tag.as_bytes());
            b.inbox = vec![(client(c), tag.as_bytes().to_vec().into())];
            b.dedup = true;
            b
        };
        // This server joined at event 5.
        assert_eq!(
            s.commit(follow(5, "e5")).unwrap(),
            committed(vec![], vec![1])
        );
        assert_eq!(
            s.commit(follow(5, "e5 again")),
            Ok(CommitOutcome::Duplicate)
        );
        assert_eq!(s.commit(follow(3, "older")), Ok(CommitOutcome::Duplicate));
        assert_eq!(
            s.commit(follow(7, "e7")),
            Err(StorageError::OutOfOrder {
                expected: 6,
                got: 7
            })
        );
        assert_eq!(
            s.commit(follow(6, "e6")).unwrap(),
            committed(vec![], vec![2])
        );
        assert_eq!(
            s.log_range(&r, 0, 10).unwrap(),
            vec![
                LogEntry {
                    seq: 5,
                    entry: b"e5".to_vec()
                },
                LogEntry {
                    seq: 6,
                    entry: b"e6".to_vec()
                }
            ]
        );
        assert_eq!(
            s.inbox_read(&client(c), 0, 10).unwrap(),
            vec![(1, b"e5".to_vec()), (2, b"e6".to_vec())]
        );
        assert_eq!(
            s.room(&r).unwrap(),
            Some(RoomRecord {
                role: RoomRole::Follower,
                state: b"state6".to_vec(),
                group: None,
                last_seq: Some(6),
            })
        );
    }

    pub fn room_and_group_updates(s: &impl Storage) {
        let r = room("!r:hub.example");
        s.commit(hub_batch(&r, 0, "e0", &[], &[])).unwrap();
        // A state change without a log entry keeps the group and the last sequence number.
        let mut keep = Batch::new(r.clone());
        keep.room_update = update(RoomRole::Hub, b"state-x", GroupUpdate::Keep);
        s.commit(keep).unwrap();
        assert_eq!(
            s.room(&r).unwrap(),
            Some(RoomRecord {
                role: RoomRole::Hub,
                state: b"state-x".to_vec(),
                group: Some(b"group0".to_vec()),
                last_seq: Some(0),
            })
        );
        // A log entry alone advances only the last sequence number.
        let mut log_only = Batch::new(r.clone());
        log_only.log = entry(1, b"e1");
        s.commit(log_only).unwrap();
        assert_eq!(s.room(&r).unwrap().unwrap().last_seq, Some(1));
        assert_eq!(s.room(&r).unwrap().unwrap().state, b"state-x".to_vec());
        // Handing the room over removes the group state.
        let mut handover = Batch::new(r.clone());
        handover.room_update = update(RoomRole::Follower, b"state-y", GroupUpdate::Remove);
        handover.log = entry(2, b"e2");
        s.commit(handover).unwrap();
        assert_eq!(
            s.room(&r).unwrap(),
            Some(RoomRecord {
                role: RoomRole::Follower,
                state: b"state-y".to_vec(),
                group: None,
                last_seq: Some(2),
            })
        );
    }

    /// A batch's snapshot replaces the room's stored one when, and only when, the batch is
    /// written; a batch without one keeps it.
    pub fn snapshots_are_replaced_with_their_batch(s: &impl Storage) {
        let r = room("!r:hub.example");
        assert_eq!(s.room_snapshot(&r).unwrap(), None);
        s.commit(hub_batch(&r, 0, "e0", &[], &[])).unwrap();
        assert_eq!(s.room_snapshot(&r).unwrap(), None);
        let with = |seq: u64, snapshot: &[u8]| {
            let mut b = hub_batch(&r, seq, &format!("e{seq}"), &[], &[]);
            b.snapshot = Some(snapshot.to_vec());
            b
        };
        s.commit(with(1, b"snap1")).unwrap();
        assert_eq!(s.room_snapshot(&r).unwrap(), Some(b"snap1".to_vec()));
        s.commit(hub_batch(&r, 2, "e2", &[], &[])).unwrap();
        assert_eq!(s.room_snapshot(&r).unwrap(), Some(b"snap1".to_vec()));
        // A refused batch leaves it.
        assert!(s.commit(with(7, b"refused")).is_err());
        assert_eq!(s.room_snapshot(&r).unwrap(), Some(b"snap1".to_vec()));
        // Several in one group commit: the last one is kept.
        let pending: Vec<_> = [with(3, b"snap3"), with(4, b"snap4")]
            .into_iter()
            .map(|b| s.submit(b))
            .collect();
        for p in pending {
            p.wait().unwrap();
        }
        assert_eq!(s.room_snapshot(&r).unwrap(), Some(b"snap4".to_vec()));
        // A follower's duplicate writes nothing, its snapshot included.
        let f = room("!f:other.example");
        let mut first = Batch::new(f.clone());
        first.room_update = update(RoomRole::Follower, b"f", GroupUpdate::Keep);
        first.log = entry(5, b"f5");
        first.dedup = true;
        first.snapshot = Some(b"f5".to_vec());
        s.commit(first.clone()).unwrap();
        first.snapshot = Some(b"duplicate".to_vec());
        assert_eq!(s.commit(first).unwrap(), CommitOutcome::Duplicate);
        assert_eq!(s.room_snapshot(&f).unwrap(), Some(b"f5".to_vec()));
        // Another room has its own, and an unknown room none.
        assert_eq!(s.room_snapshot(&r).unwrap(), Some(b"snap4".to_vec()));
        assert_eq!(s.room_snapshot(&room("!x:hub.example")).unwrap(), None);
    }

    pub fn log_ranges(s: &impl Storage) {
        // Room IDs where one is a prefix of the other must not mix.
        let a = room("!a:hub.example");
        let ab = room("!a:hub.example.org");
        for seq in 0..10 {
            s.commit(hub_batch(&a, seq, &format!("a{seq}"), &[], &[]))
                .unwrap();
            s.commit(hub_batch(&ab, seq, &format!("ab{seq}"), &[], &[]))
                .unwrap();
        }
        let range = |r: &RoomId, from, limit| -> Vec<(u64, Vec<u8>)> {
            s.log_range(r, from, limit)
                .unwrap()
                .into_iter()
                .map(|e| (e.seq, e.entry))
                .collect()
        };
        assert_eq!(
            range(&a, 3, 4),
            vec![
                (3, b"a3".to_vec()),
                (4, b"a4".to_vec()),
                (5, b"a5".to_vec()),
                (6, b"a6".to_vec())
            ]
        );
        assert_eq!(
            range(&ab, 8, 100),
            vec![(8, b"ab8".to_vec()), (9, b"ab9".to_vec())]
        );
        assert_eq!(range(&a, 10, 100), vec![]);
        assert_eq!(range(&a, 0, 0), vec![]);
        assert_eq!(range(&room("!none:hub.example"), 0, 10), vec![]);
        assert_eq!(s.rooms().unwrap(), vec![a, ab]);
    }

    pub fn outbox_keeps_commit_order_per_destination(s: &impl Storage) {
        let (a, b) = (room("!a:hub.example"), room("!b:hub.example"));
        let (d1, d2) = ("one.example", "two.example");
        s.commit(hub_batch(&a, 0, "a0", &[d1, d2], &[])).unwrap(); // ids 1, 2
        s.commit(hub_batch(&b, 0, "b0", &[d1], &[])).unwrap(); // 3
        s.commit(hub_batch(&a, 1, "a1", &[d1], &[])).unwrap(); // 4
        s.commit(hub_batch(&b, 1, "b1", &[d2], &[])).unwrap(); // 5
        let peek = |d: &str, limit| -> Vec<(u64, RoomId, Option<u64>, Vec<u8>)> {
            s.outbox_peek(&server(d), limit)
                .unwrap()
                .into_iter()
                .map(|e| {
                    assert_eq!(e.dest, server(d));
                    (e.id, e.room, e.seq, e.message)
                })
                .collect()
        };
        let msg = |tag: &str, d: &str| format!("{tag}->{d}").into_bytes();
        assert_eq!(
            peek(d1, 10),
            vec![
                (1, a.clone(), Some(0), msg("a0", d1)),
                (3, b.clone(), Some(0), msg("b0", d1)),
                (4, a.clone(), Some(1), msg("a1", d1)),
            ]
        );
        assert_eq!(
            peek(d2, 10),
            vec![
                (2, a.clone(), Some(0), msg("a0", d2)),
                (5, b.clone(), Some(1), msg("b1", d2)),
            ]
        );
        assert_eq!(peek(d1, 2).iter().map(|e| e.0).collect::<Vec<_>>(), [1, 3]);
        assert_eq!(peek("three.example", 10), vec![]);
        // Reading on after an id skips what was read; another destination's ids are not its.
        let after = |d: &str, after, limit| -> Vec<u64> {
            s.outbox_after(&server(d), after, limit)
                .unwrap()
                .into_iter()
                .map(|e| e.id)
                .collect()
        };
        assert_eq!(after(d1, 1, 10), [3, 4]);
        assert_eq!(after(d1, 3, 1), [4]);
        assert_eq!(after(d1, 4, 10), Vec::<u64>::new());
        assert_eq!(after(d2, 2, 10), [5]);
        assert_eq!(after(d1, u64::MAX, 10), Vec::<u64>::new());

        s.outbox_ack(&server(d1), &[3]).unwrap();
        assert_eq!(peek(d1, 10).iter().map(|e| e.0).collect::<Vec<_>>(), [1, 4]);
        s.outbox_ack(&server(d2), &[2]).unwrap();
        s.outbox_ack(&server(d2), &[5]).unwrap();
        assert_eq!(s.outbox_destinations().unwrap(), vec![server(d1)]);

        // A batch without a log entry queues messages without a sequence number.
        let mut notice = Batch::new(a.clone());
        notice.outbox = vec![(server(d2), b"notice".to_vec().into())];
        assert_eq!(s.commit(notice).unwrap(), committed(vec![6], vec![]));
        assert_eq!(peek(d2, 10), vec![(6, a.clone(), None, b"notice".to_vec())]);
    }

    pub fn outbox_ack_is_idempotent_and_exact(s: &impl Storage) {
        let r = room("!r:hub.example");
        s.commit(hub_batch(&r, 0, "e0", &["a.example", "b.example"], &[]))
            .unwrap();
        // The id of a.example's entry, acknowledged as b.example's: nothing happens.
        s.outbox_ack(&server("b.example"), &[1]).unwrap();
        assert_eq!(s.outbox_peek(&server("a.example"), 10).unwrap().len(), 1);
        assert_eq!(s.outbox_peek(&server("b.example"), 10).unwrap().len(), 1);
        s.outbox_ack(&server("a.example"), &[1]).unwrap();
        s.outbox_ack(&server("a.example"), &[1]).unwrap();
        s.outbox_ack(&server("a.example"), &[99]).unwrap();
        assert_eq!(s.outbox_peek(&server("a.example"), 10).unwrap(), vec![]);
        assert_eq!(
            s.outbox_peek(&server("b.example"), 10)
                .unwrap()
                .iter()
                .map(|e| e.id)
                .collect::<Vec<_>>(),
            [2]
        );
    }

    pub fn key_packages_one_time_then_last_resort(s: &impl Storage) {
        let (phone, laptop) = ("@u:p.example#phone", "@u:p.example#laptop");
        let u = user("@u:p.example");
        assert_eq!(
            s.publish_key_packages(&client(phone), vec![kp(1, false, b"x", b"x")]),
            Err(StorageError::UnknownClient(client(phone)))
        );
        register(s, &[phone, laptop, "@v:p.example#tab"]);
        s.publish_key_packages(
            &client(phone),
            vec![
                kp(1, false, b"p2", b"phone one-time 2"),
                kp(1, true, b"pl", b"phone last resort"),
                kp(1, false, b"p1", b"phone one-time 1"),
                kp(2, false, b"p-suite2", b"phone suite 2"),
            ],
        )
        .unwrap();
        s.publish_key_packages(
            &client(laptop),
            vec![kp(2, false, b"l-suite2", b"laptop suite 2")],
        )
        .unwrap();
        assert_eq!(
            s.key_package_count(&client(phone), 1).unwrap(),
            KeyPackageCount {
                one_time: 2,
                last_resort: 1
            }
        );
        let claim = |clients: &[&str], suite| {
            let clients: Vec<ClientId> = clients.iter().map(|c| client(c)).collect();
            s.claim_key_packages(&u, &clients, suite).unwrap()
        };
        let got = |c: &str, bytes: &[u8]| (client(c), bytes.to_vec());
        // One per client; the laptop has none of suite 1 and is absent.
        assert_eq!(claim(&[], 1), vec![got(phone, b"phone one-time 1")]);
        assert_eq!(claim(&[], 1), vec![got(phone, b"phone one-time 2")]);
        assert_eq!(claim(&[], 1), vec![got(phone, b"phone last resort")]);
        assert_eq!(claim(&[], 1), vec![got(phone, b"phone last resort")]);
        assert_eq!(
            s.key_package_count(&client(phone), 1).unwrap(),
            KeyPackageCount {
                one_time: 0,
                last_resort: 1
            }
        );
        // Only the requested suite, and the order of the named clients; clients of other
        // users and repeated names are ignored.
        assert_eq!(
            claim(&[laptop, "@v:p.example#tab", phone, laptop], 2),
            vec![got(laptop, b"laptop suite 2"), got(phone, b"phone suite 2")]
        );
        assert_eq!(claim(&[], 2), vec![]);
        assert_eq!(claim(&[], 3), vec![]);
        assert_eq!(
            s.key_package_count(&client(laptop), 2).unwrap(),
            KeyPackageCount::default()
        );
    }

    pub fn key_package_publication_rules(s: &impl Storage) {
        let (a, b) = ("@u:p.example#a", "@w:p.example#b");
        register(s, &[a, b]);
        s.publish_key_packages(&client(a), vec![kp(1, false, b"x", b"a's x")])
            .unwrap();
        // A reference held by another client: the whole publication is refused.
        assert_eq!(
            s.publish_key_packages(
                &client(b),
                vec![kp(1, false, b"y", b"b's y"), kp(1, false, b"x", b"b's x")]
            ),
            Err(StorageError::Conflict(Conflict::KeyPackageRef))
        );
        assert_eq!(
            s.key_package_count(&client(b), 1).unwrap(),
            KeyPackageCount::default()
        );
        // The same reference from its own client replaces the package.
        s.publish_key_packages(&client(a), vec![kp(1, false, b"x", b"a's x v2")])
            .unwrap();
        assert_eq!(
            s.key_package_count(&client(a), 1).unwrap(),
            KeyPackageCount {
                one_time: 1,
                last_resort: 0
            }
        );
        // A new last-resort package replaces the previous one of its suite.
        s.publish_key_packages(&client(a), vec![kp(1, true, b"lr1", b"old last resort")])
            .unwrap();
        s.publish_key_packages(&client(a), vec![kp(1, true, b"lr2", b"new last resort")])
            .unwrap();
        assert_eq!(
            s.key_package_count(&client(a), 1).unwrap(),
            KeyPackageCount {
                one_time: 1,
                last_resort: 1
            }
        );
        let u = user("@u:p.example");
        assert_eq!(
            s.claim_key_packages(&u, &[], 1).unwrap(),
            vec![(client(a), b"a's x v2".to_vec())]
        );
        assert_eq!(
            s.claim_key_packages(&u, &[], 1).unwrap(),
            vec![(client(a), b"new last resort".to_vec())]
        );
        // The replaced last-resort reference is free again; the claimed one-time one too.
        s.publish_key_packages(
            &client(b),
            vec![
                kp(1, false, b"lr1", b"b's lr1"),
                kp(1, false, b"x", b"b's x"),
            ],
        )
        .unwrap();
        assert_eq!(
            s.key_package_count(&client(b), 1).unwrap(),
            KeyPackageCount {
                one_time: 2,
                last_resort: 0
            }
        );
    }

    pub fn directory_stays_consistent(s: &impl Storage) {
        let alice = UserRecord {
            user_id: user("@alice:p.example"),
            handle: Some("Alice".into()),
            email: Some("Alice@Example.org".into()),
            phone: Some("+1 555 0100".into()),
            display_name: Some("Sam".into()),
        };
        s.put_user(&alice).unwrap();
        assert_eq!(s.user(&alice.user_id).unwrap(), Some(alice.clone()));
        let find = |f, v| s.find_users(f, v).unwrap();
        let alice_id = vec![alice.user_id.clone()];
        assert_eq!(find(DirectoryField::Handle, "alice"), alice_id);
        assert_eq!(find(DirectoryField::Email, "ALICE@example.ORG"), alice_id);
        assert_eq!(find(DirectoryField::Phone, "+1-555-0100"), alice_id);
        assert_eq!(find(DirectoryField::Handle, "alic"), vec![]);
        assert_eq!(find(DirectoryField::Email, "alice"), vec![]);
        assert_eq!(find(DirectoryField::Handle, ""), vec![]);

        // Bob asks for Alice's handle: refused, and nothing of Bob is stored.
        let mut bob = UserRecord {
            user_id: user("@bob:p.example"),
            handle: Some("ALICE".into()),
            email: Some("bob@example.org".into()),
            phone: None,
            display_name: Some("sam".into()),
        };
        assert_eq!(
            s.put_user(&bob),
            Err(StorageError::Conflict(Conflict::DirectoryTaken {
                field: DirectoryField::Handle
            }))
        );
        assert_eq!(s.user(&bob.user_id).unwrap(), None);
        assert_eq!(find(DirectoryField::Email, "bob@example.org"), vec![]);
        assert_eq!(find(DirectoryField::DisplayName, "Sam"), alice_id);

        // Alice changes her handle: the old one is free, the new one finds her.
        let alice2 = UserRecord {
            handle: Some("al".into()),
            ..alice.clone()
        };
        s.put_user(&alice2).unwrap();
        s.put_user(&alice2).unwrap(); // the same record again conflicts with nobody
        assert_eq!(find(DirectoryField::Handle, "alice"), vec![]);
        assert_eq!(find(DirectoryField::Handle, "AL"), alice_id);
        s.put_user(&bob).unwrap();
        assert_eq!(
            find(DirectoryField::Handle, "alice"),
            vec![bob.user_id.clone()]
        );
        // Display names are shared.
        assert_eq!(
            find(DirectoryField::DisplayName, "SAM"),
            vec![alice.user_id.clone(), bob.user_id.clone()]
        );
        // Dropping a field frees it.
        bob.email = None;
        s.put_user(&bob).unwrap();
        assert_eq!(find(DirectoryField::Email, "bob@example.org"), vec![]);
        // Alice's email is still hers.
        let mut carol = user_record("@carol:p.example", None, Some("alice@example.org"));
        assert_eq!(
            s.put_user(&carol),
            Err(StorageError::Conflict(Conflict::DirectoryTaken {
                field: DirectoryField::Email
            }))
        );
        carol.email = Some("carol@example.org".into());
        s.put_user(&carol).unwrap();
        assert_eq!(
            find(DirectoryField::Email, "carol@example.org"),
            vec![carol.user_id]
        );
    }

    pub fn users_are_listed_in_pages(s: &impl Storage) {
        assert_eq!(s.users(None, 10).unwrap(), vec![]);
        for id in ["@c:q.example", "@a:p.example", "@b:p.example"] {
            s.put_user(&user_record(id, None, None)).unwrap();
        }
        let all = vec![
            user("@a:p.example"),
            user("@b:p.example"),
            user("@c:q.example"),
        ];
        assert_eq!(s.users(None, 10).unwrap(), all);
        assert_eq!(s.users(None, 2).unwrap(), all[..2].to_vec());
        assert_eq!(s.users(Some(&all[1]), 10).unwrap(), all[2..].to_vec());
        assert_eq!(s.users(Some(&all[2]), 10).unwrap(), vec![]);
        // A cursor that is not a stored user still pages from where it sorts.
        assert_eq!(
            s.users(Some(&user("@aa:p.example")), 10).unwrap(),
            all[1..].to_vec()
        );
    }

    pub fn clients_belong_to_stored_users(s: &impl Storage) {
        let c = client("@a:p.example#phone");
        let record = ClientRecord {
            client_id: c.clone(),
            token_hash: [1; 32],
        };
        assert_eq!(
            s.put_client(&record),
            Err(StorageError::UnknownUser(user("@a:p.example")))
        );
        assert_eq!(s.client(&c).unwrap(), None);
        // A user whose ID is a prefix of another's must not see that one's clients.
        s.put_user(&user_record("@a:p.example", None, None))
            .unwrap();
        s.put_user(&user_record("@a:p.example.org", None, None))
            .unwrap();
        s.put_client(&record).unwrap();
        register(s, &["@a:p.example.org#x", "@a:p.example#laptop"]);
        assert_eq!(
            s.clients_of(&user("@a:p.example")).unwrap(),
            vec![client("@a:p.example#laptop"), c.clone()]
        );
        assert_eq!(
            s.clients_of(&user("@a:p.example.org")).unwrap(),
            vec![client("@a:p.example.org#x")]
        );
        assert_eq!(s.clients_of(&user("@b:p.example")).unwrap(), vec![]);
        // A new token replaces the old one.
        let rotated = ClientRecord {
            client_id: c.clone(),
            token_hash: [2; 32],
        };
        s.put_client(&rotated).unwrap();
        assert_eq!(s.client(&c).unwrap(), Some(rotated));
    }

    pub fn inbox_cursors_only_grow(s: &impl Storage) {
        let r = room("!r:hub.example");
        let (c1, c2) = ("@u:hub.example#one", "@u:hub.example#two");
        s.commit(hub_batch(&r, 0, "e0", &[], &[c1, c2])).unwrap(); // 1, 2
        s.commit(hub_batch(&r, 1, "e1", &[], &[c1])).unwrap(); // 3
        s.commit(hub_batch(&r, 2, "e2", &[], &[c2, c1])).unwrap(); // 4, 5
        let read = |c: &str, after| -> Vec<u64> {
            s.inbox_read(&client(c), after, 100)
                .unwrap()
                .into_iter()
                .map(|(cursor, _)| cursor)
                .collect()
        };
        assert_eq!(read(c1, 0), [1, 3, 5]);
        assert_eq!(read(c2, 0), [2, 4]);
        assert_eq!(read(c1, 3), [5]);
        assert_eq!(read(c1, 5), Vec::<u64>::new());
        assert_eq!(
            s.inbox_read(&client(c1), 1, 1).unwrap(),
            vec![(3, format!("e1->{c1}").into_bytes())]
        );
        s.inbox_trim(&client(c1), 3).unwrap();
        assert_eq!(read(c1, 0), [5]);
        assert_eq!(read(c2, 0), [2, 4]);
        s.inbox_trim(&client(c1), u64::MAX).unwrap();
        assert_eq!(read(c1, 0), Vec::<u64>::new());
        // Trimmed cursors are not reused.
        assert_eq!(
            s.commit(hub_batch(&r, 3, "e3", &[], &[c1])).unwrap(),
            committed(vec![], vec![6])
        );
        assert_eq!(read(c1, 0), [6]);
    }

    pub fn reads_are_bounded(s: &impl Storage) {
        let r = room("!r:hub.example");
        let c = "@u:hub.example#one";
        let mut b = hub_batch(&r, 0, "e0", &["a.example"], &[]);
        b.inbox = (0..=MAX_READ_LIMIT)
            .map(|i| (client(c), i.to_be_bytes().to_vec().into()))
            .collect();
        b.outbox = (0..=MAX_READ_LIMIT)
            .map(|i| (server("a.example"), i.to_be_bytes().to_vec().into()))
            .collect();
        s.commit(b).unwrap();
        let inbox = s.inbox_read(&client(c), 0, usize::MAX).unwrap();
        assert_eq!(inbox.len(), MAX_READ_LIMIT);
        assert_eq!(inbox[0], (1, 0usize.to_be_bytes().to_vec()));
        let outbox = s.outbox_peek(&server("a.example"), usize::MAX).unwrap();
        assert_eq!(outbox.len(), MAX_READ_LIMIT);
        assert_eq!(outbox[MAX_READ_LIMIT - 1].id, MAX_READ_LIMIT as u64);
    }

    /// Outbox and inbox entries that point into their batch's log entry
    /// ([`Payload::Logged`]) read as that entry's prefix, beside entries with their own
    /// bytes, in commit order; an entry pointing past the log entry, or a batch without one,
    /// is refused and writes nothing. Rule HUB-STORE-10.
    pub fn queued_entries_point_into_the_log(s: &impl Storage) {
        let r = room("!r:hub.example");
        let c = client("@u:hub.example#phone");
        register(s, &["@u:hub.example#phone"]);
        let mut b = hub_batch(&r, 0, "e0", &[], &[]);
        b.log = entry(0, b"message0|changes");
        b.outbox = vec![
            (server("b.example"), Payload::Logged { len: 8 }),
            (server("c.example"), b"own bytes".to_vec().into()),
        ];
        b.inbox = vec![(c.clone(), Payload::Logged { len: 8 })];
        s.commit(b).unwrap();
        let mut b = hub_batch(&r, 1, "e1", &[], &[]);
        b.log = entry(1, b"message-one|more changes");
        b.outbox = vec![(server("b.example"), Payload::Logged { len: 11 })];
        b.inbox = vec![
            (c.clone(), b"inline".to_vec().into()),
            (c.clone(), Payload::Logged { len: 0 }),
            (c.clone(), Payload::Logged { len: 24 }),
        ];
        s.commit(b).unwrap();
        let to_b: Vec<(Option<u64>, Vec<u8>)> = s
            .outbox_peek(&server("b.example"), 10)
            .unwrap()
            .into_iter()
            .map(|e| (e.seq, e.message))
            .collect();
        assert_eq!(
            to_b,
            vec![
                (Some(0), b"message0".to_vec()),
                (Some(1), b"message-one".to_vec())
            ]
        );
        assert_eq!(
            s.outbox_peek(&server("c.example"), 10).unwrap()[0].message,
            b"own bytes".to_vec()
        );
        let inbox: Vec<Vec<u8>> = s
            .inbox_read(&c, 0, 10)
            .unwrap()
            .into_iter()
            .map(|(_, m)| m)
            .collect();
        assert_eq!(
            inbox,
            vec![
                b"message0".to_vec(),
                b"inline".to_vec(),
                Vec::new(),
                b"message-one|more changes".to_vec()
            ]
        );
        // Past the end of the log entry, or without one: refused, nothing written.
        let mut b = hub_batch(&r, 2, "e2", &[], &[]);
        b.outbox = vec![(server("b.example"), Payload::Logged { len: 3 })];
        assert!(matches!(s.commit(b), Err(StorageError::Invalid(_))));
        let mut b = Batch::new(r.clone());
        b.inbox = vec![(c.clone(), Payload::Logged { len: 0 })];
        assert!(matches!(s.commit(b), Err(StorageError::Invalid(_))));
        assert_eq!(s.room(&r).unwrap().unwrap().last_seq, Some(1));
        assert_eq!(s.outbox_peek(&server("b.example"), 10).unwrap().len(), 2);
        assert_eq!(s.inbox_read(&c, 0, 10).unwrap().len(), 4);
        // An acknowledged entry goes; the log entry it pointed into stays, and so do the
        // entries pointing into it.
        s.outbox_ack(&server("b.example"), &[1]).unwrap();
        assert_eq!(s.log_range(&r, 0, 10).unwrap().len(), 2);
        assert_eq!(s.inbox_read(&c, 0, 1).unwrap()[0].1, b"message0".to_vec());
    }

    /// Batches submitted without waiting are applied in submission order, each checked
    /// on its own: a refused one in the middle writes nothing and stops nothing.
    pub fn submitted_batches_apply_in_order(s: &impl Storage) {
        let r = room("!r:hub.example");
        let mut pending = Vec::new();
        for seq in 0..40u64 {
            let mut b = hub_batch(&r, seq, &format!("e{seq}"), &["b.example"], &[]);
            b.expect_last_seq = Some(seq.checked_sub(1));
            pending.push(s.submit(b));
            if seq == 20 {
                // Out of order: refused, and the next batch still goes through.
                pending.push(s.submit(hub_batch(&r, 99, "bad", &["b.example"], &[])));
            }
        }
        let results: Vec<_> = pending.into_iter().map(|p| p.wait()).collect();
        assert_eq!(results.len(), 41);
        assert_eq!(
            results[21],
            Err(StorageError::OutOfOrder {
                expected: 21,
                got: 99
            })
        );
        let ids: Vec<u64> = results
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 21)
            .map(|(_, r)| match r {
                Ok(CommitOutcome::Committed { outbox_ids, .. }) => outbox_ids[0],
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids in order: {ids:?}");
        let log = s.log_range(&r, 0, 100).unwrap();
        assert_eq!(
            log.iter().map(|e| e.entry.clone()).collect::<Vec<_>>(),
            (0..40)
                .map(|i| format!("e{i}").into_bytes())
                .collect::<Vec<_>>()
        );
        assert_eq!(s.outbox_peek(&server("b.example"), 100).unwrap().len(), 40);
    }

    /// Batches of every shape submitted without waiting, for rooms interleaved (so that a
    /// backend committing in groups gets several of one room in one group), end exactly as
    /// if each had been committed alone: room records, group states, logs, ids.
    pub fn submitted_batches_of_every_shape_end_as_committed_one_by_one(s: &impl Storage) {
        const ROOMS: usize = 12;
        let c = "@u:hub.example#phone";
        let rooms: Vec<RoomId> = (0..ROOMS)
            .map(|i| room(&format!("!shape{i:02}:hub.example")))
            .collect();
        let mut pending = Vec::new();
        for step in 0..7 {
            for r in &rooms {
                let mut b = Batch::new(r.clone());
                match step {
                    // Created with a group state and a first entry.
                    0 => b = hub_batch(r, 0, "e0", &["b.example"], &[c]),
                    // An entry alone.
                    1 => b.log = entry(1, b"e1"),
                    // A new state, the group kept, no entry.
                    2 => b.room_update = update(RoomRole::Hub, b"state-2", GroupUpdate::Keep),
                    // A notice for another server, nothing else.
                    3 => b.outbox = vec![(server("c.example"), b"notice".to_vec().into())],
                    // Handed over: the group state goes, with an entry.
                    4 => {
                        b.room_update = update(RoomRole::Follower, b"state-4", GroupUpdate::Remove);
                        b.log = entry(2, b"e2");
                        b.inbox = vec![(client(c), b"e2".to_vec().into())];
                    }
                    // A duplicate, and then a refusal: neither writes.
                    5 => {
                        b.log = entry(2, b"again");
                        b.dedup = true;
                    }
                    _ => {
                        b.log = entry(9, b"gap");
                        b.outbox = vec![(server("b.example"), b"never".to_vec().into())];
                    }
                }
                pending.push(s.submit(b));
            }
        }
        let results: Vec<_> = pending.into_iter().map(|p| p.wait()).collect();
        let per_step = |step: usize| &results[step * ROOMS..(step + 1) * ROOMS];
        // Ids in submission order: step 0 takes outbox 1..=12 and inbox 1..=12, step 3
        // outbox 13..=24, step 4 inbox 13..=24.
        for (i, r) in per_step(0).iter().enumerate() {
            let id = i as u64 + 1;
            assert_eq!(r, &Ok(committed(vec![id], vec![id])));
        }
        assert!(
            per_step(1)
                .iter()
                .all(|r| r == &Ok(committed(vec![], vec![])))
        );
        assert!(
            per_step(2)
                .iter()
                .all(|r| r == &Ok(committed(vec![], vec![])))
        );
        for (i, r) in per_step(3).iter().enumerate() {
            assert_eq!(r, &Ok(committed(vec![13 + i as u64], vec![])));
        }
        for (i, r) in per_step(4).iter().enumerate() {
            assert_eq!(r, &Ok(committed(vec![], vec![13 + i as u64])));
        }
        assert!(
            per_step(5)
                .iter()
                .all(|r| r == &Ok(CommitOutcome::Duplicate))
        );
        assert!(per_step(6).iter().all(|r| r
            == &Err(StorageError::OutOfOrder {
                expected: 3,
                got: 9
            })));
        for r in &rooms {
            assert_eq!(
                s.room(r).unwrap(),
                Some(RoomRecord {
                    role: RoomRole::Follower,
                    state: b"state-4".to_vec(),
                    group: None,
                    last_seq: Some(2),
                })
            );
            let log: Vec<(u64, Vec<u8>)> = s
                .log_range(r, 0, 10)
                .unwrap()
                .into_iter()
                .map(|e| (e.seq, e.entry))
                .collect();
            assert_eq!(
                log,
                vec![
                    (0, b"e0".to_vec()),
                    (1, b"e1".to_vec()),
                    (2, b"e2".to_vec())
                ]
            );
        }
        let notices = s.outbox_peek(&server("c.example"), 100).unwrap();
        assert_eq!(
            notices.iter().map(|e| (e.id, e.seq)).collect::<Vec<_>>(),
            (13..=24).map(|id| (id, None)).collect::<Vec<_>>()
        );
        assert_eq!(
            s.outbox_peek(&server("b.example"), 100).unwrap().len(),
            ROOMS
        );
        assert_eq!(
            s.inbox_read(&client(c), 0, 100)
                .unwrap()
                .iter()
                .map(|(cursor, _)| *cursor)
                .collect::<Vec<_>>(),
            (1..=24).collect::<Vec<_>>()
        );
    }

    /// Many threads writing at once (as the hub's requests do) each get their own answer:
    /// every room's log is whole, ids are unique, and of two writers racing for the same
    /// sequence number exactly one wins.
    pub fn concurrent_writers_each_get_their_own_answer(s: &impl Storage) {
        let racing = room("!race:hub.example");
        let results = std::thread::scope(|scope| {
            let writers: Vec<_> = (0..8)
                .map(|t| {
                    scope.spawn(move || {
                        let r = room(&format!("!r{t}:hub.example"));
                        let mut ids = Vec::new();
                        for seq in 0..25u64 {
                            let b = hub_batch(&r, seq, &format!("t{t}e{seq}"), &["b.example"], &[]);
                            match s.commit(b) {
                                Ok(CommitOutcome::Committed { outbox_ids, .. }) => {
                                    ids.extend(outbox_ids)
                                }
                                other => panic!("writer {t} seq {seq}: {other:?}"),
                            }
                        }
                        ids
                    })
                })
                .collect();
            let racers: Vec<_> = (0..2)
                .map(|t| {
                    let r = racing.clone();
                    scope.spawn(move || {
                        let mut b = hub_batch(&r, 0, &format!("racer{t}"), &[], &[]);
                        b.expect_last_seq = Some(None);
                        s.commit(b)
                    })
                })
                .collect();
            let ids: Vec<Vec<u64>> = writers.into_iter().map(|w| w.join().unwrap()).collect();
            let raced: Vec<_> = racers.into_iter().map(|w| w.join().unwrap()).collect();
            (ids, raced)
        });
        let (ids, raced) = results;
        let mut all: Vec<u64> = ids.concat();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 8 * 25, "outbox ids are unique");
        for t in 0..8 {
            let log = s
                .log_range(&room(&format!("!r{t}:hub.example")), 0, 100)
                .unwrap();
            assert_eq!(log.len(), 25);
            assert!(log.iter().enumerate().all(|(i, e)| e.seq == i as u64));
        }
        assert_eq!(raced.iter().filter(|r| r.is_ok()).count(), 1, "{raced:?}");
        assert!(
            raced
                .iter()
                .any(|r| matches!(r, Err(StorageError::Conflict(Conflict::LastSeq { .. }))))
        );
        assert_eq!(s.log_range(&racing, 0, 10).unwrap().len(), 1);
    }

    /// Everything written is there after the storage is closed and opened again (`open`
    /// opens the same file or database each time), and counters go on where they were.
    /// The second version's records: absent until written, replaced, deleted, and apart
    /// from each other (keys that are prefixes of one another are distinct).
    pub fn v06_records_put_read_delete(s: &impl Storage) {
        assert_eq!(s.v06_record(b"consent/x").unwrap(), None);
        s.put_v06_record(b"consent/x", Some(&[2])).unwrap();
        s.put_v06_record(b"consent/xy", Some(&[3, 4])).unwrap();
        assert_eq!(s.v06_record(b"consent/x").unwrap(), Some(vec![2]));
        s.put_v06_record(b"consent/x", Some(&[3])).unwrap();
        assert_eq!(s.v06_record(b"consent/x").unwrap(), Some(vec![3]));
        s.put_v06_record(b"consent/x", None).unwrap();
        assert_eq!(s.v06_record(b"consent/x").unwrap(), None);
        // Deleting what is not there is no error.
        s.put_v06_record(b"consent/x", None).unwrap();
        assert_eq!(s.v06_record(b"consent/xy").unwrap(), Some(vec![3, 4]));
        // An empty value is a value.
        s.put_v06_record(b"k", Some(&[])).unwrap();
        assert_eq!(s.v06_record(b"k").unwrap(), Some(vec![]));
    }

    /// The -06 records under a prefix, in key order, a page at a time: none of another
    /// prefix (`abuse` vs `abusf`, `abus`), `after` exclusive, `limit` respected.
    pub fn v06_records_are_listed_by_prefix(s: &impl Storage) {
        assert!(
            s.v06_records_with_prefix(b"abuse/", b"", 10)
                .unwrap()
                .is_empty()
        );
        for (k, v) in [
            (&b"abuse/3"[..], 3u8),
            (b"abuse/1", 1),
            (b"abuse/2", 2),
            (b"abusf/0", 9),
            (b"abus", 8),
            (b"abuse0", 7),
        ] {
            s.put_v06_record(k, Some(&[v])).unwrap();
        }
        let all = s.v06_records_with_prefix(b"abuse/", b"", 10).unwrap();
        assert_eq!(
            all,
            vec![
                (b"abuse/1".to_vec(), vec![1]),
                (b"abuse/2".to_vec(), vec![2]),
                (b"abuse/3".to_vec(), vec![3]),
            ]
        );
        let page = s.v06_records_with_prefix(b"abuse/", b"", 2).unwrap();
        assert_eq!(page, all[..2].to_vec());
        let next = s.v06_records_with_prefix(b"abuse/", b"2", 2).unwrap();
        assert_eq!(next, all[2..].to_vec());
        assert!(
            s.v06_records_with_prefix(b"abuse/", b"3", 2)
                .unwrap()
                .is_empty()
        );
    }

    pub fn everything_survives_reopening<S: Storage>(open: impl Fn() -> S) {
        let r = room("!r:hub.example");
        let c = "@u:hub.example#phone";
        let alice = UserRecord {
            user_id: user("@u:hub.example"),
            handle: Some("u".into()),
            email: Some("u@example.org".into()),
            phone: Some("+15550100".into()),
            display_name: Some("You".into()),
        };
        {
            let s = open();
            s.put_user(&alice).unwrap();
            register(&s, &[c]);
            s.publish_key_packages(
                &client(c),
                vec![
                    kp(1, false, b"k1", b"one-time"),
                    kp(1, true, b"k2", b"last"),
                ],
            )
            .unwrap();
            let mut first = hub_batch(&r, 0, "e0", &["a.example", "b.example"], &[c]);
            first.snapshot = Some(b"snapshot0".to_vec());
            s.commit(first).unwrap(); // outbox 1, 2; inbox 1
            s.commit(hub_batch(&r, 1, "e1", &["a.example"], &[c]))
                .unwrap(); // outbox 3; inbox 2
            s.outbox_ack(&server("a.example"), &[1]).unwrap();
            s.inbox_trim(&client(c), 2).unwrap();
        }
        let s = open();
        assert_eq!(
            s.room(&r).unwrap(),
            Some(RoomRecord {
                role: RoomRole::Hub,
                state: b"state1".to_vec(),
                group: Some(b"group1".to_vec()),
                last_seq: Some(1),
            })
        );
        assert_eq!(
            s.log_range(&r, 0, 10)
                .unwrap()
                .into_iter()
                .map(|e| (e.seq, e.entry))
                .collect::<Vec<_>>(),
            vec![(0, b"e0".to_vec()), (1, b"e1".to_vec())]
        );
        // Pending outbox entries are still there, in order.
        assert_eq!(
            s.outbox_destinations().unwrap(),
            vec![server("a.example"), server("b.example")]
        );
        assert_eq!(
            s.outbox_peek(&server("a.example"), 10).unwrap(),
            vec![OutboxEntry {
                id: 3,
                dest: server("a.example"),
                room: r.clone(),
                seq: Some(1),
                message: b"e1->a.example".to_vec(),
            }]
        );
        assert_eq!(
            s.outbox_peek(&server("b.example"), 10)
                .unwrap()
                .iter()
                .map(|e| e.id)
                .collect::<Vec<_>>(),
            [2]
        );
        assert_eq!(s.user(&alice.user_id).unwrap(), Some(alice.clone()));
        assert_eq!(
            s.find_users(DirectoryField::Email, "U@example.org")
                .unwrap(),
            vec![alice.user_id.clone()]
        );
        assert_eq!(
            s.client(&client(c)).unwrap(),
            Some(ClientRecord {
                client_id: client(c),
                token_hash: [7; 32]
            })
        );
        assert_eq!(
            s.key_package_count(&client(c), 1).unwrap(),
            KeyPackageCount {
                one_time: 1,
                last_resort: 1
            }
        );
        assert_eq!(s.inbox_read(&client(c), 0, 10).unwrap(), vec![]);
        assert_eq!(s.room_snapshot(&r).unwrap(), Some(b"snapshot0".to_vec()));
        // The log continues where it stopped, and ids and cursors keep growing.
        assert_eq!(
            s.commit(hub_batch(&r, 1, "again", &[], &[])),
            Err(StorageError::OutOfOrder {
                expected: 2,
                got: 1
            })
        );
        assert_eq!(
            s.commit(hub_batch(&r, 2, "e2", &["b.example"], &[c]))
                .unwrap(),
            committed(vec![4], vec![3])
        );
    }

    /// Concurrent claims of one user's key packages, through `a` and `b` (one storage, or
    /// two on one database), hand out each one-time package once, and the last-resort one
    /// when none is left.
    pub fn concurrent_claims_hand_out_each_package_once(a: &impl Storage, b: &impl Storage) {
        const ONE_TIME: usize = 40;
        const THREADS: usize = 6;
        const CLAIMS: usize = 10;
        let c = "@u:p.example#phone";
        register(a, &[c]);
        let mut packages: Vec<StoredKeyPackage> = (0..ONE_TIME)
            .map(|i| {
                let name = format!("one-time {i:02}");
                kp(1, false, name.as_bytes(), name.as_bytes())
            })
            .collect();
        packages.push(kp(1, true, b"last", b"last resort"));
        a.publish_key_packages(&client(c), packages).unwrap();
        let u = user("@u:p.example");
        let claimed: Vec<Vec<u8>> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..THREADS)
                .map(|t| {
                    let u = u.clone();
                    scope.spawn(move || {
                        let s: &dyn Storage = if t % 2 == 0 { a } else { b };
                        (0..CLAIMS)
                            .map(|_| {
                                let mut got = s.claim_key_packages(&u, &[], 1).unwrap();
                                assert_eq!(got.len(), 1);
                                got.remove(0).1
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap())
                .collect()
        });
        let mut one_time: Vec<&Vec<u8>> = claimed
            .iter()
            .filter(|p| p.as_slice() != b"last resort")
            .collect();
        one_time.sort();
        one_time.dedup();
        assert_eq!(
            one_time.len(),
            ONE_TIME,
            "each one-time package exactly once"
        );
        assert_eq!(
            claimed.len() - ONE_TIME,
            THREADS * CLAIMS - ONE_TIME,
            "no package twice"
        );
        assert_eq!(
            a.key_package_count(&client(c), 1).unwrap(),
            KeyPackageCount {
                one_time: 0,
                last_resort: 1
            }
        );
    }

    /// A batch's request key is recorded with its log entry (not when the batch is
    /// refused), and forgotten once the room's log is `REQUEST_WINDOW` entries further on.
    pub fn request_keys_are_remembered_for_a_window(s: &impl Storage) {
        let r = room("!r:hub.example");
        let other = room("!o:hub.example");
        let key = |n: u64| {
            let mut k = [0u8; 32];
            k[..8].copy_from_slice(&n.to_be_bytes());
            k
        };
        let keyed = |r: &RoomId, seq: u64| {
            let mut b = hub_batch(r, seq, &format!("e{seq}"), &[], &[]);
            b.request = Some(key(seq));
            b
        };
        s.commit(keyed(&r, 0)).unwrap();
        assert_eq!(s.request_seq(&r, &key(0)).unwrap(), Some(0));
        // Per room: the same key in another room is another request.
        assert_eq!(s.request_seq(&other, &key(0)).unwrap(), None);
        // A refused batch records nothing.
        let mut refused = keyed(&r, 5);
        refused.expect_last_seq = Some(Some(4));
        assert!(s.commit(refused).is_err());
        assert_eq!(s.request_seq(&r, &key(5)).unwrap(), None);
        // An entry without a key records none.
        s.commit(hub_batch(&r, 1, "e1", &[], &[])).unwrap();
        assert_eq!(s.request_seq(&r, &key(1)).unwrap(), None);
        // The window: after entry REQUEST_WINDOW, entry 0's key is forgotten; entry 2's
        // (REQUEST_WINDOW - 1 entries back from the last but one) is kept.
        let pending: Vec<_> = (2..=REQUEST_WINDOW)
            .map(|seq| s.submit(keyed(&r, seq)))
            .collect();
        for p in pending {
            p.wait().unwrap();
        }
        assert_eq!(s.request_seq(&r, &key(0)).unwrap(), None);
        assert_eq!(s.request_seq(&r, &key(2)).unwrap(), Some(2));
        assert_eq!(
            s.request_seq(&r, &key(REQUEST_WINDOW)).unwrap(),
            Some(REQUEST_WINDOW)
        );
        s.commit(keyed(&r, REQUEST_WINDOW + 1)).unwrap();
        assert_eq!(s.request_seq(&r, &key(1)).unwrap(), None);
        assert_eq!(s.request_seq(&r, &key(2)).unwrap(), Some(2));
        s.commit(keyed(&r, REQUEST_WINDOW + 2)).unwrap();
        assert_eq!(s.request_seq(&r, &key(2)).unwrap(), None);
        assert_eq!(s.request_seq(&r, &key(3)).unwrap(), Some(3));
    }

    pub fn usable_as_a_trait_object(s: impl Storage) {
        let shared: std::sync::Arc<dyn Storage> = std::sync::Arc::new(s);
        let r = room("!r:hub.example");
        let worker = {
            let shared = shared.clone();
            let r = r.clone();
            std::thread::spawn(move || shared.commit(hub_batch(&r, 0, "e0", &[], &[])))
        };
        assert_eq!(worker.join().unwrap(), Ok(committed(vec![], vec![])));
        assert_eq!(shared.room(&r).unwrap().unwrap().last_seq, Some(0));
    }
}

/// Run every case of `cases` against one backend. `$make` returns the storage and a guard
/// that must outlive it (the temporary directory of a redb file, the database), or `None`
/// if the backend is not installed here (the test is then skipped, and says so).
macro_rules! suite {
    ($backend:ident, $make:expr) => {
        mod $backend {
            use super::*;
            suite!(@cases $make;
                commit_writes_room_log_outbox_and_inbox,
                sequence_numbers_have_no_gaps,
                a_refused_batch_writes_nothing,
                a_batch_for_an_unknown_room_is_refused,
                followers_start_anywhere_and_drop_duplicates,
                room_and_group_updates,
                snapshots_are_replaced_with_their_batch,
                log_ranges,
                outbox_keeps_commit_order_per_destination,
                outbox_ack_is_idempotent_and_exact,
                key_packages_one_time_then_last_resort,
                key_package_publication_rules,
                directory_stays_consistent,
                clients_belong_to_stored_users,
                users_are_listed_in_pages,
                inbox_cursors_only_grow,
                reads_are_bounded,
                queued_entries_point_into_the_log,
                submitted_batches_apply_in_order,
                submitted_batches_of_every_shape_end_as_committed_one_by_one,
                concurrent_writers_each_get_their_own_answer,
                request_keys_are_remembered_for_a_window,
                v06_records_put_read_delete,
                v06_records_are_listed_by_prefix
            );

            #[test]
            fn concurrent_claims_hand_out_each_package_once() {
                let Some((s, _guard)) = $make else { return };
                cases::concurrent_claims_hand_out_each_package_once(&s, &s);
                drop(s);
            }

            #[test]
            fn usable_as_a_trait_object() {
                let Some((s, _guard)) = $make else { return };
                cases::usable_as_a_trait_object(s);
            }
        }
    };
    (@cases $make:expr; $($case:ident),*) => {
        $(
            #[test]
            fn $case() {
                let Some((s, _guard)) = $make else { return };
                cases::$case(&s);
                // The storage closes before its guard goes.
                drop(s);
            }
        )*
    };
}

fn temp_redb() -> (RedbStorage, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let storage = RedbStorage::open(dir.path().join("hub.redb")).unwrap();
    (storage, dir)
}

suite!(memory, Some((MemoryStorage::new(), ())));
suite!(redb, Some(temp_redb()));
suite!(postgres, crate::pg::storage());

mod redb_only {
    use super::*;

    /// redb's reads run where they are asked (no hand-off to a blocking thread); a storage
    /// without quick reads still gets a blocking thread.
    ///
    /// Rule HUB-STORE-12 (docs/protocol-coverage.md).
    #[tokio::test]
    async fn quick_reads_run_in_place_and_others_on_a_blocking_thread() {
        use std::sync::Arc;
        let (redb, _dir) = temp_redb();
        let redb: Arc<dyn Storage> = Arc::new(redb);
        let here = std::thread::current().id();
        let read = |s: &dyn Storage| {
            s.rooms()?;
            Ok(std::thread::current().id())
        };
        assert_eq!(mimi_hub::storage::read(&redb, read).await.unwrap(), here);
        let memory: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
        assert_ne!(mimi_hub::storage::read(&memory, read).await.unwrap(), here);
    }

    #[test]
    fn a_backup_is_a_database_with_everything_and_the_original_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let s = RedbStorage::open(dir.path().join("hub.redb")).unwrap();
        let r = room("!r:hub.example");
        register(&s, &["@a:hub.example#phone"]);
        for seq in 0..3 {
            s.commit(hub_batch(
                &r,
                seq,
                &format!("e{seq}"),
                &["f.example"],
                &["@a:hub.example#phone"],
            ))
            .unwrap();
        }
        // The snapshot, a request key and a -06 record are in the backup too.
        let mut b = hub_batch(&r, 3, "e3", &[], &[]);
        b.snapshot = Some(b"snapshot3".to_vec());
        b.request = Some([7; 32]);
        s.commit(b).unwrap();
        s.put_v06_record(b"k06", Some(b"v06")).unwrap();
        let out = dir.path().join("backup.redb");
        s.backup(&out).unwrap();
        // Readable by its owner only (it holds the clients' token hashes).
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&out).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        // Not over an existing file, which stays as it was.
        let before = std::fs::read(&out).unwrap();
        assert!(s.backup(&out).is_err());
        assert_eq!(std::fs::read(&out).unwrap(), before);
        // The original goes on.
        s.commit(hub_batch(&r, 4, "e4", &[], &[])).unwrap();
        let copy = RedbStorage::open(&out).unwrap();
        assert_eq!(copy.room(&r).unwrap().unwrap().last_seq, Some(3));
        assert_eq!(copy.log_range(&r, 0, 10).unwrap().len(), 4);
        assert_eq!(copy.room_snapshot(&r).unwrap(), Some(b"snapshot3".to_vec()));
        assert_eq!(copy.request_seq(&r, &[7; 32]).unwrap(), Some(3));
        assert_eq!(copy.v06_record(b"k06").unwrap(), Some(b"v06".to_vec()));
        assert_eq!(copy.outbox_peek(&server("f.example"), 10).unwrap().len(), 3);
        assert_eq!(
            copy.inbox_read(&client("@a:hub.example#phone"), 0, 10)
                .unwrap()
                .len(),
            3
        );
        assert_eq!(copy.users(None, 10).unwrap(), vec![user("@a:hub.example")]);
        // Counters were copied: the copy's next outbox id follows the original's.
        let ids = outbox_ids_of(copy.commit(hub_batch(&r, 4, "e4", &["f.example"], &[])));
        assert_eq!(ids, vec![4]);
    }

    /// The child's part of `acknowledged_writes_survive_a_crash`: what it writes, each
    /// write answered before the next, before it aborts without closing anything.
    const CRASH_CHILD: &str = "MIMI_TEST_JOURNAL_CRASH_DIR";
    /// Checkpoints that never come while a test runs.
    const NO_CHECKPOINT: mimi_hub::storage::Checkpoints = mimi_hub::storage::Checkpoints {
        interval: std::time::Duration::from_secs(3600),
        idle: std::time::Duration::from_secs(3600),
    };
    const CRASH_EVENTS: u64 = 40;

    fn write_then_abort(dir: &std::path::Path) -> ! {
        // No checkpoint after opening: every write below lives in the journal only.
        let s = RedbStorage::open_with_checkpoints(dir.join("hub.redb"), NO_CHECKPOINT).unwrap();
        let r = room("!r:hub.example");
        register(&s, &["@a:hub.example#phone"]);
        // Half the events one by one, half submitted together (one group, one record).
        for seq in 0..CRASH_EVENTS / 2 {
            let mut b = hub_batch(&r, seq, &format!("e{seq}"), &["f.example"], &[]);
            b.request = Some([seq as u8; 32]);
            b.inbox = vec![(client("@a:hub.example#phone"), Payload::Logged { len: 2 })];
            s.commit(b).unwrap();
        }
        // A durable write outside the journal between them, and a journaled -06 record.
        register(&s, &["@b:hub.example#phone"]);
        s.put_v06_record(b"between", Some(b"yes")).unwrap();
        let pending: Vec<_> = (CRASH_EVENTS / 2..CRASH_EVENTS)
            .map(|seq| {
                let mut b = hub_batch(&r, seq, &format!("e{seq}"), &["f.example"], &[]);
                b.request = Some([seq as u8; 32]);
                s.submit(b)
            })
            .collect();
        for p in pending {
            p.wait().unwrap();
        }
        // The first ten deliveries acknowledged.
        s.outbox_ack(&server("f.example"), &(1..=10).collect::<Vec<_>>())
            .unwrap();
        println!("written");
        std::process::abort();
    }

    /// A directory where a child process wrote with the journal and aborted
    /// (`write_then_abort`).
    fn crash_a_writer() -> tempfile::TempDir {
        crash_child(
            "storage_suite::redb_only::acknowledged_writes_survive_a_crash",
            CRASH_CHILD,
        )
        .0
    }

    /// Run the test `test` of this binary as a child process with `env` naming a new
    /// directory, which the child writes in and then aborts; the directory and what the
    /// child printed.
    fn crash_child(test: &str, env: &str) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([test, "--exact", "--nocapture", "--test-threads=1"])
            .env(env, dir.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            !out.status.success() && stdout.contains("written"),
            "the child did not write and abort: {:?}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        (dir, stdout)
    }

    /// The journal's one segment in `dir` (a store that never rotated).
    fn only_segment(dir: &std::path::Path) -> std::path::PathBuf {
        let journal = RedbStorage::journal_dir(&dir.join("hub.redb"));
        let segments: Vec<_> = std::fs::read_dir(&journal)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "seg"))
            .collect();
        assert_eq!(segments.len(), 1, "{segments:?}");
        segments.into_iter().next().unwrap()
    }

    /// An acknowledgement alone costs no sync: the journal syncs for the events, not for
    /// the acknowledgements between them, which the next event's sync makes durable.
    ///
    /// Rule HUB-STORE-14 (docs/protocol-coverage.md).
    #[test]
    fn an_acknowledgement_is_synced_with_the_next_write_not_on_its_own() {
        let dir = tempfile::tempdir().unwrap();
        // No checkpoint while it runs: a checkpoint syncs what the journal holds.
        let s =
            RedbStorage::open_with_checkpoints(dir.path().join("hub.redb"), NO_CHECKPOINT).unwrap();
        let r = room("!r:hub.example");
        for seq in 0..3 {
            s.commit(hub_batch(&r, seq, &format!("e{seq}"), &["f.example"], &[]))
                .unwrap();
        }
        let synced = s.journal_syncs();
        s.outbox_ack(&server("f.example"), &[1]).unwrap();
        s.outbox_ack(&server("f.example"), &[2]).unwrap();
        assert_eq!(
            s.journal_syncs(),
            synced,
            "an acknowledgement synced on its own"
        );
        let ids: Vec<u64> = s
            .outbox_peek(&server("f.example"), 10)
            .unwrap()
            .iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(
            ids,
            vec![3],
            "readers see the acknowledged entries gone at once"
        );
        s.commit(hub_batch(&r, 3, "e3", &["f.example"], &[]))
            .unwrap();
        assert_eq!(s.journal_syncs(), synced + 1);
    }

    const ACK_LOSS_CHILD: &str = "MIMI_TEST_JOURNAL_ACK_LOSS_DIR";

    /// The child's part of `an_acknowledgement_lost_with_the_machine_only_sends_its_entries_again`.
    fn write_ack_then_abort(dir: &std::path::Path) -> ! {
        let s = RedbStorage::open_with_checkpoints(dir.join("hub.redb"), NO_CHECKPOINT).unwrap();
        let r = room("!r:hub.example");
        for seq in 0..5 {
            s.commit(hub_batch(&r, seq, &format!("e{seq}"), &["f.example"], &[]))
                .unwrap();
        }
        let synced = std::fs::metadata(only_segment(dir)).unwrap().len();
        println!("synced {synced}");
        s.outbox_ack(&server("f.example"), &[1, 2]).unwrap();
        // A durable redb commit outside the journal: it holds the acknowledgement before it.
        register(&s, &["@b:hub.example#phone"]);
        s.outbox_ack(&server("f.example"), &[3]).unwrap();
        println!("written");
        std::process::abort();
    }

    /// A crash of the machine may lose the journal's unsynced tail: here, the two
    /// acknowledgements' records, cut off as the crash could leave the segment. The
    /// entries whose acknowledgement only the journal held are back to be sent again;
    /// every event, the durable write between them and the acknowledgement that write
    /// made durable are kept, and the ids go on after the last.
    ///
    /// Rule HUB-STORE-14 (docs/protocol-coverage.md).
    #[test]
    fn an_acknowledgement_lost_with_the_machine_only_sends_its_entries_again() {
        if let Some(dir) = std::env::var_os(ACK_LOSS_CHILD) {
            write_ack_then_abort(std::path::Path::new(&dir));
        }
        let (dir, stdout) = crash_child(
            "storage_suite::redb_only::an_acknowledgement_lost_with_the_machine_only_sends_its_entries_again",
            ACK_LOSS_CHILD,
        );
        let synced: u64 = stdout
            .lines()
            .find_map(|l| l.split("synced ").nth(1))
            .and_then(|n| n.trim().parse().ok())
            .expect("the child printed the synced length");
        let segment = only_segment(dir.path());
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&segment)
            .unwrap();
        assert!(
            file.metadata().unwrap().len() > synced,
            "the acknowledgements were not journaled"
        );
        file.set_len(synced).unwrap();
        drop(file);

        let s = RedbStorage::open(dir.path().join("hub.redb")).unwrap();
        let r = room("!r:hub.example");
        assert_eq!(s.log_range(&r, 0, 100).unwrap().len(), 5);
        assert!(s.client(&client("@b:hub.example#phone")).unwrap().is_some());
        let waiting = s.outbox_peek(&server("f.example"), 100).unwrap();
        let ids: Vec<u64> = waiting.iter().map(|e| e.id).collect();
        assert_eq!(ids, vec![3, 4, 5]);
        assert_eq!(waiting[0].message, b"e2->f.example");
        let next = outbox_ids_of(s.commit(hub_batch(&r, 5, "e5", &["f.example"], &[])));
        assert_eq!(next, vec![6]);
    }

    /// A store opened without a journal (`journal = false`) after a journaled run that
    /// crashed applies the journal first: switching the journal off loses nothing.
    #[test]
    fn an_unjournaled_open_applies_a_crashed_runs_journal_first() {
        let dir = crash_a_writer();
        let s = RedbStorage::open_without_journal(dir.path().join("hub.redb")).unwrap();
        let r = room("!r:hub.example");
        assert_eq!(
            s.room(&r).unwrap().unwrap().last_seq,
            Some(CRASH_EVENTS - 1)
        );
        assert_eq!(s.log_range(&r, 0, 100).unwrap().len() as u64, CRASH_EVENTS);
        let ids: Vec<u64> = s
            .outbox_peek(&server("f.example"), 100)
            .unwrap()
            .iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(ids, (11..=CRASH_EVENTS).collect::<Vec<_>>());
        // Its own writes are durable redb commits: they survive without the journal.
        s.commit(hub_batch(&r, CRASH_EVENTS, "next", &[], &[]))
            .unwrap();
        drop(s);
        std::fs::remove_dir_all(RedbStorage::journal_dir(&dir.path().join("hub.redb"))).unwrap();
        let s = RedbStorage::open_without_journal(dir.path().join("hub.redb")).unwrap();
        assert_eq!(s.room(&r).unwrap().unwrap().last_seq, Some(CRASH_EVENTS));
    }

    /// Every write the journaled store answered survives a crash of the process: a real
    /// abort, with nothing closed, after which redb's file alone has none of the journaled
    /// writes (no checkpoint ran); opening the store applies them from the journal.
    ///
    /// Rule HUB-STORE-11 (docs/protocol-coverage.md).
    #[test]
    fn acknowledged_writes_survive_a_crash() {
        if let Some(dir) = std::env::var_os(CRASH_CHILD) {
            write_then_abort(std::path::Path::new(&dir));
        }
        let dir = crash_a_writer();
        let s = RedbStorage::open(dir.path().join("hub.redb")).unwrap();
        assert!(s.journal_replayed() > 0, "nothing was replayed");
        let r = room("!r:hub.example");
        assert_eq!(
            s.room(&r).unwrap().unwrap().last_seq,
            Some(CRASH_EVENTS - 1)
        );
        let log = s.log_range(&r, 0, 100).unwrap();
        assert_eq!(log.len() as u64, CRASH_EVENTS);
        for (seq, entry) in log.iter().enumerate() {
            assert_eq!(entry.seq, seq as u64);
            assert_eq!(entry.entry, format!("e{seq}").as_bytes());
        }
        for seq in 0..CRASH_EVENTS {
            assert_eq!(s.request_seq(&r, &[seq as u8; 32]).unwrap(), Some(seq));
        }
        assert_eq!(s.v06_record(b"between").unwrap(), Some(b"yes".to_vec()));
        assert!(s.client(&client("@b:hub.example#phone")).unwrap().is_some());
        // The acknowledged deliveries are gone, the others wait, in order.
        let waiting = s.outbox_peek(&server("f.example"), 100).unwrap();
        let ids: Vec<u64> = waiting.iter().map(|e| e.id).collect();
        assert_eq!(ids, (11..=CRASH_EVENTS).collect::<Vec<_>>());
        assert_eq!(waiting[0].message, b"e10->f.example");
        // Inbox entries pointing into the log resolve.
        let inbox = s
            .inbox_read(&client("@a:hub.example#phone"), 0, 100)
            .unwrap();
        assert_eq!(inbox.len() as u64, CRASH_EVENTS / 2);
        assert_eq!(inbox[3].1, b"e3");
        // The counters went on: the next outbox id follows the last.
        let next =
            outbox_ids_of(s.commit(hub_batch(&r, CRASH_EVENTS, "next", &["f.example"], &[])));
        assert_eq!(next, vec![CRASH_EVENTS + 1]);
        // Closed cleanly, the file holds everything: nothing is replayed again.
        drop(s);
        let s = RedbStorage::open(dir.path().join("hub.redb")).unwrap();
        assert_eq!(s.journal_replayed(), 0);
        assert_eq!(s.room(&r).unwrap().unwrap().last_seq, Some(CRASH_EVENTS));
    }

    #[test]
    fn everything_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.redb");
        cases::everything_survives_reopening(|| RedbStorage::open(&path).unwrap());
    }

    /// A request key is as durable as its log entry: a crash between the write and the
    /// answer still recognises the resend.
    #[test]
    fn request_keys_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.redb");
        let r = room("!r:hub.example");
        {
            let s = RedbStorage::open(&path).unwrap();
            let mut b = hub_batch(&r, 0, "e0", &[], &[]);
            b.request = Some([7; 32]);
            s.commit(b).unwrap();
        }
        let s = RedbStorage::open(&path).unwrap();
        assert_eq!(s.request_seq(&r, &[7; 32]).unwrap(), Some(0));
    }

    /// A file written by a build that kept a second index of request keys
    /// (`request_seqs`) opens: the index is dropped and the keys are still answered.
    #[test]
    fn request_keys_of_a_file_with_the_old_index_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.redb");
        let r = room("!r:hub.example");
        {
            let s = RedbStorage::open(&path).unwrap();
            let mut b = hub_batch(&r, 0, "e0", &[], &[]);
            b.request = Some([7; 32]);
            s.commit(b).unwrap();
        }
        let old_index: ::redb::TableDefinition<(&str, u64), [u8; 32]> =
            ::redb::TableDefinition::new("request_seqs");
        {
            let db = ::redb::Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(old_index)
                .unwrap()
                .insert((r.as_str(), 0), [7; 32])
                .unwrap();
            txn.commit().unwrap();
        }
        {
            let s = RedbStorage::open(&path).unwrap();
            assert_eq!(s.request_seq(&r, &[7; 32]).unwrap(), Some(0));
        }
        let db = ::redb::Database::create(&path).unwrap();
        let txn = ::redb::ReadableDatabase::begin_read(&db).unwrap();
        assert!(
            txn.open_table(old_index).is_err(),
            "the old index is dropped"
        );
    }

    #[test]
    fn v06_records_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.redb");
        {
            let s = RedbStorage::open(&path).unwrap();
            // A file without the table reads as empty.
            assert_eq!(s.v06_record(b"a").unwrap(), None);
            s.put_v06_record(b"a", Some(b"b")).unwrap();
        }
        let s = RedbStorage::open(&path).unwrap();
        assert_eq!(s.v06_record(b"a").unwrap(), Some(b"b".to_vec()));
    }

    #[test]
    fn a_file_that_is_not_a_database_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.txt");
        let text = b"these are my notes, not a database\n".repeat(500);
        std::fs::write(&path, &text).unwrap();
        assert!(matches!(
            RedbStorage::open(&path),
            Err(StorageError::Backend(_))
        ));
        // And it was left as it was.
        assert_eq!(std::fs::read(&path).unwrap(), text);
        // A directory is not a database either.
        assert!(matches!(
            RedbStorage::open(dir.path()),
            Err(StorageError::Backend(_))
        ));
    }

    #[test]
    fn a_truncated_database_is_refused_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.redb");
        {
            let s = RedbStorage::open(&path).unwrap();
            let r = room("!r:hub.example");
            for seq in 0..50 {
                s.commit(hub_batch(&r, seq, &"x".repeat(3000), &["a.example"], &[]))
                    .unwrap();
            }
        }
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        assert!(matches!(
            RedbStorage::open(&path),
            Err(StorageError::Corrupt(_))
        ));
    }

    type RawRoom = (u8, &'static [u8], Option<&'static [u8]>, Option<u64>);
    const RAW_ROOMS: ::redb::TableDefinition<&str, RawRoom> = ::redb::TableDefinition::new("rooms");
    const RAW_LOG: ::redb::TableDefinition<(&str, u64), &[u8]> =
        ::redb::TableDefinition::new("log");

    /// The room's record as stored: (role, state, last seq field).
    fn raw_room(path: &std::path::Path, r: &RoomId) -> (u8, Vec<u8>, Option<u64>) {
        use ::redb::ReadableDatabase as _;
        let db = ::redb::Database::open(path).unwrap();
        let txn = db.begin_read().unwrap();
        let rooms = txn.open_table(RAW_ROOMS).unwrap();
        let value = rooms.get(r.as_str()).unwrap().unwrap();
        let (role, state, _, last) = value.value();
        (role, state.to_vec(), last)
    }

    /// Write a database file of an earlier (or later) schema `version`: its `meta` table
    /// names the version, and `fill` writes the rest in the same transaction.
    fn old_file(
        path: &std::path::Path,
        version: u64,
        fill: impl FnOnce(&::redb::WriteTransaction),
    ) {
        let db = ::redb::Database::create(path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let meta: ::redb::TableDefinition<&str, u64> = ::redb::TableDefinition::new("meta");
            txn.open_table(meta)
                .unwrap()
                .insert("schema_version", version)
                .unwrap();
            fill(&txn);
        }
        txn.commit().unwrap();
    }

    /// An event that changes nothing about the room writes its log entry and leaves the
    /// room's record as it was: the last sequence number is the log's (schema version 4).
    ///
    /// Rule HUB-STORE-13 (docs/protocol-coverage.md).
    #[test]
    fn an_event_that_does_not_change_the_room_leaves_its_record_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.redb");
        let r = room("!r:hub.example");
        {
            let s = RedbStorage::open(&path).unwrap();
            s.commit(hub_batch(&r, 0, "e0", &[], &[])).unwrap();
            for seq in 1..=3 {
                let mut b = hub_batch(&r, seq, &format!("e{seq}"), &["b.example"], &[]);
                b.room_update = None;
                s.commit(b).unwrap();
            }
            assert_eq!(s.room(&r).unwrap().unwrap().last_seq, Some(3));
            // The next event must be 4, and 3 again is refused as out of order.
            let mut again = hub_batch(&r, 3, "e3 again", &[], &[]);
            again.room_update = None;
            assert_eq!(
                s.commit(again),
                Err(StorageError::OutOfOrder {
                    expected: 4,
                    got: 3
                })
            );
        }
        // The record is the one sequence 0 wrote, with no sequence number in it.
        assert_eq!(raw_room(&path, &r), (0, b"state0".to_vec(), None));
        let s = RedbStorage::open(&path).unwrap();
        assert_eq!(s.room(&r).unwrap().unwrap().last_seq, Some(3));
        assert_eq!(s.room_last_seq(&r).unwrap(), Some(3));
    }

    /// A version 3 file (the last sequence number kept in the room's record, rewritten with
    /// every event) opens as the current version with the same last sequence number (the
    /// record stops carrying it at version 4, the log moves at version 5), and goes on from
    /// it; a record's number behind its log (never the case in a file a build wrote) is
    /// passed by the log's.
    #[test]
    fn a_version_3_database_goes_on_from_its_last_sequence_number() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.redb");
        let (r, behind) = (room("!r:hub.example"), room("!behind:hub.example"));
        old_file(&path, 3, |txn| {
            let mut rooms = txn.open_table(RAW_ROOMS).unwrap();
            rooms
                .insert(r.as_str(), (0, &b"s"[..], None, Some(5)))
                .unwrap();
            rooms
                .insert(behind.as_str(), (0, &b"s"[..], None, Some(1)))
                .unwrap();
            let mut log = txn.open_table(RAW_LOG).unwrap();
            for seq in 0..=5 {
                log.insert((r.as_str(), seq), &b"e"[..]).unwrap();
                log.insert((behind.as_str(), seq), &b"e"[..]).unwrap();
            }
        });
        let s = RedbStorage::open(&path).unwrap();
        assert_eq!(s.room(&r).unwrap().unwrap().last_seq, Some(5));
        assert_eq!(s.room(&behind).unwrap().unwrap().last_seq, Some(5));
        let mut b = hub_batch(&r, 6, "e6", &[], &[]);
        b.room_update = None;
        assert!(matches!(s.commit(b), Ok(CommitOutcome::Committed { .. })));
        let mut dup = hub_batch(&r, 5, "e5", &[], &[]);
        dup.room_update = None;
        dup.dedup = true;
        assert_eq!(s.commit(dup), Ok(CommitOutcome::Duplicate));
        drop(s);
        let s = RedbStorage::open(&path).unwrap();
        assert_eq!(s.room(&r).unwrap().unwrap().last_seq, Some(6));
    }

    #[test]
    fn a_database_of_another_schema_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.redb");
        old_file(&path, 6, |_| {});
        assert_eq!(
            RedbStorage::open(&path).unwrap_err(),
            StorageError::Corrupt("schema version 6; this build reads version 5".into())
        );
    }

    const RAW_LOG_INDEX: ::redb::TableDefinition<(&str, u64), u64> =
        ::redb::TableDefinition::new("log_index");
    const RAW_LOG_BODIES: ::redb::TableDefinition<u64, &[u8]> =
        ::redb::TableDefinition::new("log_bodies");

    /// The log entries' (id, bytes) as stored, in id order.
    fn raw_bodies(path: &std::path::Path) -> Vec<(u64, Vec<u8>)> {
        use ::redb::{ReadableDatabase as _, ReadableTable as _};
        let db = ::redb::Database::open(path).unwrap();
        let txn = db.begin_read().unwrap();
        let bodies = txn.open_table(RAW_LOG_BODIES).unwrap();
        bodies
            .iter()
            .unwrap()
            .map(|item| {
                let (id, entry) = item.unwrap();
                (id.value(), entry.value().to_vec())
            })
            .collect()
    }

    /// Log entries are stored in the order they are committed, whatever their room: each
    /// takes the next id in `log_bodies` (appended at the right end of its tree, so its
    /// leaves are written full, once), and `log_index` maps (room, seq) to it (schema
    /// version 5).
    ///
    /// Rule HUB-STORE-15 (docs/protocol-coverage.md).
    #[test]
    fn log_entries_are_stored_in_commit_order_whatever_their_room() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.redb");
        let (r1, r2) = (room("!one:hub.example"), room("!two:hub.example"));
        {
            let s = RedbStorage::open(&path).unwrap();
            s.commit(hub_batch(&r2, 0, "two-0", &[], &[])).unwrap();
            s.commit(hub_batch(&r1, 0, "one-0", &["b.example"], &[]))
                .unwrap();
            // Submitted together: one group, one transaction.
            let pending = [
                s.submit(hub_batch(&r2, 1, "two-1", &[], &[])),
                s.submit(hub_batch(&r1, 1, "one-1", &[], &[])),
            ];
            for p in pending {
                p.wait().unwrap();
            }
            s.commit(hub_batch(&r2, 2, "two-2", &[], &[])).unwrap();
        }
        let bodies = raw_bodies(&path);
        let ids: Vec<u64> = bodies.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, vec![1, 2, 3, 4, 5]);
        let entries: Vec<&[u8]> = bodies.iter().map(|(_, e)| e.as_slice()).collect();
        assert_eq!(
            entries,
            [&b"two-0"[..], b"one-0", b"two-1", b"one-1", b"two-2"]
        );
        // Read back by room, in sequence order, and through the outbox.
        let s = RedbStorage::open(&path).unwrap();
        let log = |r: &RoomId| -> Vec<Vec<u8>> {
            s.log_range(r, 0, 10)
                .unwrap()
                .into_iter()
                .map(|e| e.entry)
                .collect()
        };
        assert_eq!(log(&r1), [b"one-0".to_vec(), b"one-1".to_vec()]);
        assert_eq!(log(&r2).len(), 3);
        assert_eq!(s.log_range(&r2, 2, 10).unwrap()[0].entry, b"two-2");
        assert_eq!(s.room(&r2).unwrap().unwrap().last_seq, Some(2));
        // A new group goes on from the last id.
        s.commit(hub_batch(&r1, 2, "one-2", &[], &[])).unwrap();
        drop(s);
        assert_eq!(raw_bodies(&path).last().unwrap(), &(6, b"one-2".to_vec()));
    }

    /// A version 4 file's log (one table keyed by room and sequence number) is moved to
    /// version 5's two tables on open: every entry reads back as it was, queued entries
    /// that point into the log still resolve, the old table is gone, and the rooms go on.
    ///
    /// Rule HUB-STORE-15 (docs/protocol-coverage.md).
    #[test]
    fn a_version_4_databases_log_is_moved_to_version_5() {
        type RawQueued = (&'static str, Option<u64>, Option<u32>, &'static [u8]);
        const RAW_OUTBOX: ::redb::TableDefinition<(&str, u64), RawQueued> =
            ::redb::TableDefinition::new("outbox3");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.redb");
        let (r1, r2) = (room("!one:hub.example"), room("!two:hub.example"));
        old_file(&path, 4, |txn| {
            let mut rooms = txn.open_table(RAW_ROOMS).unwrap();
            let mut log = txn.open_table(RAW_LOG).unwrap();
            for r in [&r1, &r2] {
                rooms
                    .insert(r.as_str(), (0, &b"state"[..], None, None))
                    .unwrap();
                for seq in 0..3u64 {
                    let entry = format!("{}-{seq}", r.as_str());
                    log.insert((r.as_str(), seq), entry.as_bytes()).unwrap();
                }
            }
            // Delivers the first 5 bytes of r2's entry 1.
            let mut outbox = txn.open_table(RAW_OUTBOX).unwrap();
            outbox
                .insert(("b.example", 1), (r2.as_str(), Some(1), Some(5), &b""[..]))
                .unwrap();
        });
        let s = RedbStorage::open(&path).unwrap();
        for r in [&r1, &r2] {
            let log = s.log_range(r, 0, 10).unwrap();
            assert_eq!(log.len(), 3);
            for (seq, e) in log.iter().enumerate() {
                assert_eq!(e.seq, seq as u64);
                assert_eq!(e.entry, format!("{}-{seq}", r.as_str()).as_bytes());
            }
            assert_eq!(s.room(r).unwrap().unwrap().last_seq, Some(2));
        }
        let queued = s.outbox_peek(&server("b.example"), 10).unwrap();
        assert_eq!(queued[0].message, b"!two:");
        let mut b = hub_batch(&r1, 3, "one-3", &[], &[]);
        b.room_update = None;
        s.commit(b).unwrap();
        drop(s);
        {
            use ::redb::ReadableDatabase as _;
            let db = ::redb::Database::open(&path).unwrap();
            let txn = db.begin_read().unwrap();
            assert!(
                matches!(
                    txn.open_table(RAW_LOG),
                    Err(::redb::TableError::TableDoesNotExist(_))
                ),
                "the old log table is still there"
            );
            let index = txn.open_table(RAW_LOG_INDEX).unwrap();
            assert_eq!(index.get((r1.as_str(), 3)).unwrap().unwrap().value(), 7);
        }
        let s = RedbStorage::open(&path).unwrap();
        assert_eq!(s.log_range(&r1, 3, 10).unwrap()[0].entry, b"one-3");
    }

    /// A version 1 file (the group state inside the room record) is moved to version 2
    /// (the group state in its own table) on open, keeping every room as it was.
    #[test]
    fn a_version_1_database_is_upgraded_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.redb");
        let (with_group, without) = (room("!g:hub.example"), room("!f:hub.example"));
        old_file(&path, 1, |txn| {
            let mut rooms = txn.open_table(RAW_ROOMS).unwrap();
            rooms
                .insert(
                    with_group.as_str(),
                    (0, &b"state"[..], Some(&b"group"[..]), Some(7)),
                )
                .unwrap();
            rooms
                .insert(without.as_str(), (1, &b"meta"[..], None, None))
                .unwrap();
        });
        let s = RedbStorage::open(&path).unwrap();
        assert_eq!(
            s.room(&with_group).unwrap(),
            Some(RoomRecord {
                role: RoomRole::Hub,
                state: b"state".to_vec(),
                group: Some(b"group".to_vec()),
                last_seq: Some(7),
            })
        );
        assert_eq!(
            s.room(&without).unwrap(),
            Some(RoomRecord {
                role: RoomRole::Follower,
                state: b"meta".to_vec(),
                group: None,
                last_seq: None,
            })
        );
        // The next event keeps the moved group state and replaces the room's record.
        let mut b = hub_batch(&with_group, 8, "e8", &[], &[]);
        b.room_update = update(RoomRole::Hub, b"state8", GroupUpdate::Keep);
        s.commit(b).unwrap();
        assert_eq!(
            s.room(&with_group).unwrap().unwrap().group,
            Some(b"group".to_vec())
        );
        drop(s);
        // Opened again, it is a file of the current version and stays as it is.
        let s = RedbStorage::open(&path).unwrap();
        assert_eq!(s.room(&with_group).unwrap().unwrap().last_seq, Some(8));
    }

    /// A version 2 file's outbox and inbox (each entry a copy of its message) move to
    /// version 3's tables on open: every entry keeps its id or cursor and its bytes, the
    /// counters go on, and new entries may point into the log.
    #[test]
    fn a_version_2_databases_queues_are_moved_to_version_3() {
        type Old = (&'static str, Option<u64>, &'static [u8]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.redb");
        let r = room("!r:hub.example");
        let c = client("@u:hub.example#phone");
        old_file(&path, 2, |txn| {
            let meta: ::redb::TableDefinition<&str, u64> = ::redb::TableDefinition::new("meta");
            let mut meta = txn.open_table(meta).unwrap();
            meta.insert("next_outbox_id", 8).unwrap();
            meta.insert("next_inbox_cursor", 5).unwrap();
            let outbox: ::redb::TableDefinition<(&str, u64), Old> =
                ::redb::TableDefinition::new("outbox");
            let mut outbox = txn.open_table(outbox).unwrap();
            outbox
                .insert(("b.example", 7), (r.as_str(), Some(3), &b"old seven"[..]))
                .unwrap();
            let inbox: ::redb::TableDefinition<(&str, u64), &[u8]> =
                ::redb::TableDefinition::new("inbox");
            txn.open_table(inbox)
                .unwrap()
                .insert((c.as_str(), 4), &b"old four"[..])
                .unwrap();
        });
        let s = RedbStorage::open(&path).unwrap();
        let out = s.outbox_peek(&server("b.example"), 10).unwrap();
        assert_eq!(
            out,
            vec![OutboxEntry {
                id: 7,
                dest: server("b.example"),
                room: r.clone(),
                seq: Some(3),
                message: b"old seven".to_vec()
            }]
        );
        assert_eq!(
            s.inbox_read(&c, 0, 10).unwrap(),
            vec![(4, b"old four".to_vec())]
        );
        drop(s);
        let s = RedbStorage::open(&path).unwrap();
        register(&s, &["@u:hub.example#phone"]);
        let mut b = hub_batch(&r, 0, "e0", &[], &[]);
        b.outbox = vec![(server("b.example"), Payload::Logged { len: 2 })];
        b.inbox = vec![(c.clone(), Payload::Logged { len: 1 })];
        match s.commit(b).unwrap() {
            CommitOutcome::Committed {
                outbox_ids,
                inbox_cursors,
            } => assert_eq!((outbox_ids, inbox_cursors), (vec![8], vec![5])),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            s.outbox_peek(&server("b.example"), 10).unwrap()[1].message,
            b"e0".to_vec()
        );
        assert_eq!(s.inbox_read(&c, 4, 10).unwrap(), vec![(5, b"e".to_vec())]);
    }

    /// A version 2 file from before snapshots (no `snapshots` table) has none, and takes
    /// its first one with the batch that carries it.
    #[test]
    fn a_version_2_database_without_snapshots_takes_its_first_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.redb");
        let r = room("!r:hub.example");
        old_file(&path, 2, |_| {});
        let s = RedbStorage::open(&path).unwrap();
        s.commit(hub_batch(&r, 0, "e0", &[], &[])).unwrap();
        assert_eq!(s.room_snapshot(&r).unwrap(), None);
        let mut b = hub_batch(&r, 1, "e1", &[], &[]);
        b.snapshot = Some(b"first".to_vec());
        s.commit(b).unwrap();
        assert_eq!(s.room_snapshot(&r).unwrap(), Some(b"first".to_vec()));
    }

    #[test]
    fn a_database_open_elsewhere_is_an_error() {
        let (_s, dir) = temp_redb();
        assert!(matches!(
            RedbStorage::open(dir.path().join("hub.redb")),
            Err(StorageError::Backend(_))
        ));
    }
}

mod postgres_only {
    use super::*;
    use crate::pg;
    use mimi_hub::storage::PostgresStorage;
    use mimi_hub::storage::postgres::SCHEMA_VERSION;

    #[test]
    fn everything_survives_reconnecting() {
        let Some(db) = pg::database() else { return };
        cases::everything_survives_reopening(|| db.storage());
    }

    /// Two storages on one database, as two instances of a provider would have: a claim
    /// through either never hands out a one-time package the other handed out.
    #[test]
    fn concurrent_claims_through_two_connections_hand_out_each_package_once() {
        let Some(db) = pg::database() else { return };
        let (a, b) = (db.storage(), db.storage());
        cases::concurrent_claims_hand_out_each_package_once(&a, &b);
    }

    #[test]
    fn a_database_of_a_newer_schema_is_refused() {
        let Some(db) = pg::database() else { return };
        drop(db.storage());
        db.execute(&format!(
            "INSERT INTO schema_version (version) VALUES ({})",
            SCHEMA_VERSION + 1
        ));
        assert_eq!(
            PostgresStorage::connect(db.url(), 1).unwrap_err(),
            StorageError::Corrupt(format!(
                "schema version {}; this build reads versions up to {SCHEMA_VERSION}",
                SCHEMA_VERSION + 1
            ))
        );
    }

    /// Instances starting together on an empty database: the migrations run once.
    #[test]
    fn instances_starting_together_migrate_once() {
        let Some(db) = pg::database() else { return };
        let opened: Vec<PostgresStorage> = std::thread::scope(|scope| {
            let starts: Vec<_> = (0..4).map(|_| scope.spawn(|| db.storage())).collect();
            starts.into_iter().map(|s| s.join().unwrap()).collect()
        });
        assert_eq!(
            db.scalar("SELECT count(*) FROM schema_version"),
            i64::from(SCHEMA_VERSION)
        );
        // They all work on the same data.
        let r = room("!r:hub.example");
        opened[0].commit(hub_batch(&r, 0, "e0", &[], &[])).unwrap();
        assert_eq!(opened[3].room(&r).unwrap().unwrap().last_seq, Some(0));
    }

    /// A sequence number beyond PostgreSQL's `bigint` cannot be stored: refused as
    /// exhausted, and nothing is written.
    #[test]
    fn a_sequence_number_beyond_bigint_is_refused() {
        let Some((s, _db)) = pg::storage() else {
            return;
        };
        let r = room("!r:hub.example");
        let mut b = Batch::new(r.clone());
        b.room_update = update(RoomRole::Follower, b"state", GroupUpdate::Keep);
        b.log = entry(1 << 63, b"e");
        b.inbox = vec![(client("@u:hub.example#phone"), b"x".to_vec().into())];
        b.dedup = true;
        assert_eq!(s.commit(b), Err(StorageError::SequenceExhausted));
        assert_eq!(s.room(&r).unwrap(), None);
        let mut b = Batch::new(r.clone());
        b.room_update = update(RoomRole::Follower, b"state", GroupUpdate::Keep);
        b.log = entry(i64::MAX as u64, b"last");
        s.commit(b).unwrap();
        assert_eq!(s.log_range(&r, u64::MAX, 10).unwrap(), vec![]);
        assert_eq!(
            s.log_range(&r, i64::MAX as u64, 10).unwrap(),
            vec![LogEntry {
                seq: i64::MAX as u64,
                entry: b"last".to_vec()
            }]
        );
    }

    /// The server ends every session of the storage (as a restart or a failover does): the
    /// next write, read and claim open new connections and succeed.
    #[test]
    fn broken_connections_are_replaced() {
        let Some((s, db)) = pg::storage() else { return };
        let r = room("!r:hub.example");
        let c = "@u:hub.example#phone";
        register(&s, &[c]);
        s.publish_key_packages(&client(c), vec![kp(1, false, b"k", b"package")])
            .unwrap();
        s.commit(hub_batch(&r, 0, "e0", &["b.example"], &[c]))
            .unwrap();
        assert_eq!(s.rooms().unwrap(), vec![r.clone()]);
        let ended = db.scalar(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name = 'mimi-hub' AND datname = current_database()",
        );
        assert!(ended >= 2, "the writer's and a pooled session: {ended}");
        s.commit(hub_batch(&r, 1, "e1", &["b.example"], &[c]))
            .unwrap();
        assert_eq!(s.log_range(&r, 0, 10).unwrap().len(), 2);
        assert_eq!(
            s.claim_key_packages(&user("@u:hub.example"), &[], 1)
                .unwrap(),
            vec![(client(c), b"package".to_vec())]
        );
        s.outbox_ack(&server("b.example"), &[1, 2]).unwrap();
        assert_eq!(s.outbox_destinations().unwrap(), Vec::<ServerName>::new());
    }

    #[test]
    fn an_unreachable_database_is_an_error() {
        // A port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("postgresql://mimi@127.0.0.1:{port}/mimi");
        assert!(matches!(
            PostgresStorage::connect(&url, 1),
            Err(StorageError::Backend(_))
        ));
        assert!(matches!(
            PostgresStorage::connect("postgresql://[not a url", 1),
            Err(StorageError::Backend(_))
        ));
    }
}
