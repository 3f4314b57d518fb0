//! Several instances of one provider on one PostgreSQL database (docs/operations.md,
//! "Several instances"): any instance takes any request, and each room keeps one linear
//! log.

use std::collections::BTreeSet;

use mimi_codec::RoomId;
use mimi_hub::storage::{
    Batch, CommitOutcome, Conflict, GroupUpdate, LogEntry, RoomRole, RoomUpdate, Storage,
    StorageError,
};

use crate::pg;
use crate::world::{A, B, Client, World, assert_gapless, assert_once_in_order, log_of};

/// The node name of provider A's second instance.
pub const A2: &str = "a2.instance";

/// A room hubbed at A with Alice (on instance 1), Bob (on instance 2) and Carol at B.
async fn room_across_instances(world: &World) -> (RoomId, Client, Client, Client) {
    let mut alice = world.client(A, "alice", Some("Alice")).await;
    let mut bob = world.client(A2, "bob", Some("Bob")).await;
    let mut carol = world.client(B, "carol", Some("Carol")).await;
    bob.publish(world, 2, true).await;
    carol.publish(world, 2, true).await;
    let room = alice.create_room(world).await;
    alice.add(world, &room, &bob.user()).await;
    alice.add(world, &room, &carol.user()).await;
    for c in [&mut bob, &mut carol] {
        c.sync_until(world, "to join from the Welcome", |c| c.in_room(&room))
            .await;
    }
    (room, alice, bob, carol)
}

/// Messages sent at once through both instances: every one is accepted (a write that
/// lost the race to the other instance is checked again, never answered 5xx), the room's
/// log is gapless with each message once, and the follower B holds the same log.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_sequence_one_room_into_one_log() {
    let Some(db) = pg::database() else { return };
    let mut world = World::start_on_postgres(&[A, B], &[(A, db.url())]).await;
    world.start_instance(A2, A).await;
    let (room, mut alice, mut bob, mut carol) = room_across_instances(&world).await;
    const EACH: usize = 25;
    let (w, r) = (&world, &room);
    tokio::join!(
        async {
            for i in 0..EACH {
                alice.say(w, r, &format!("alice {i}")).await;
            }
        },
        async {
            for i in 0..EACH {
                bob.say(w, r, &format!("bob {i}")).await;
            }
        },
    );
    let hub = world.provider(A);
    let log = pg::off_runtime(|| log_of(&hub, &room));
    drop(hub);
    assert_gapless(&log);
    // The create event, ds.create_group, two adds, and each message once.
    assert_eq!(log.len(), 4 + 2 * EACH);
    let hashes: BTreeSet<_> = log.iter().map(|(_, h)| *h).collect();
    assert_eq!(hashes.len(), log.len());
    carol
        .sync_until(&world, "Carol to read every message", |c| {
            c.received.len() >= 2 * EACH
        })
        .await;
    let texts: BTreeSet<String> = carol.texts().into_iter().collect();
    assert_eq!(texts.len(), 2 * EACH, "each message once");
    assert_eq!(carol.received.len(), 2 * EACH);
    assert_once_in_order(&carol.seen);
    // Each sender's messages in the order it sent them.
    for who in ["alice", "bob"] {
        let mine: Vec<String> = carol
            .texts()
            .into_iter()
            .filter(|t| t.starts_with(who))
            .collect();
        let expected: Vec<String> = (0..EACH).map(|i| format!("{who} {i}")).collect();
        assert_eq!(mine, expected);
    }
    let follower = world.provider(B);
    let copy = pg::off_runtime(|| log_of(&follower, &room));
    drop(follower);
    assert_eq!(copy, log, "the follower's copy is the hub's log");
    world.shutdown().await;
}

fn hub_batch(room: &RoomId, seq: u64, tag: &str) -> Batch {
    let mut b = Batch::new(room.clone());
    b.room_update = Some(RoomUpdate {
        role: RoomRole::Hub,
        state: tag.as_bytes().to_vec(),
        group: GroupUpdate::Keep,
    });
    b.log = Some(LogEntry {
        seq,
        entry: tag.as_bytes().to_vec(),
    });
    b.expect_last_seq = Some(seq.checked_sub(1));
    b
}

/// Two storages on one database, as two instances have: once a chained write of a room
/// is refused because the other instance logged first, the writes chained after it are
/// refused too (they build on the refused one; the next would pass the sequence check on
/// the other instance's entry and fork the log), until the room is reloaded.
#[test]
fn a_write_chained_on_a_refused_one_is_refused_until_the_room_is_reloaded() {
    let Some(db) = pg::database() else { return };
    let (one, two) = (db.storage(), db.storage());
    let room: RoomId = "!multi:a.example".parse().unwrap();
    pg::off_runtime(|| {
        for seq in 0..2 {
            one.submit_chained(hub_batch(&room, seq, &format!("one {seq}")))
                .wait()
                .unwrap();
        }
        // The other instance logs 2 first.
        two.submit_chained(hub_batch(&room, 2, "two 2"))
            .wait()
            .unwrap();
        let x = one.submit_chained(hub_batch(&room, 2, "one 2"));
        let z = one.submit_chained(hub_batch(&room, 3, "one 3, after one 2"));
        assert!(matches!(
            x.wait(),
            Err(StorageError::Conflict(Conflict::LastSeq { .. }))
        ));
        assert_eq!(z.wait(), Err(StorageError::Conflict(Conflict::Superseded)));
        // Unchained writes are checked alone, as ever.
        assert!(one.submit(hub_batch(&room, 3, "probe")).wait().is_ok());
        one.reloading(&room);
        let w = one.submit_chained(hub_batch(&room, 4, "one 4, reloaded"));
        assert!(matches!(w.wait(), Ok(CommitOutcome::Committed { .. })));
        let log: Vec<Vec<u8>> = two
            .log_range(&room, 0, 10)
            .unwrap()
            .into_iter()
            .map(|e| e.entry)
            .collect();
        let expected: Vec<&[u8]> = vec![b"one 0", b"one 1", b"two 2", b"probe", b"one 4, reloaded"];
        assert_eq!(log, expected);
        assert_eq!(two.room_last_seq(&room).unwrap(), Some(4));
        assert!(one.shared());
    });
}
