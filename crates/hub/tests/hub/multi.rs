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
use crate::world::{A, B, Client, World, assert_gapless, assert_once_in_order, eventually, log_of};

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
    // Carol reads every message; if she does not in time, the failure says where the
    // messages stopped. It failed about one run in 20 under load: the instance holding
    // B's lease missed the wake-up for the other instance's last entry (sent between two
    // turns of its worker's loop, when no wake-up was armed), and its idle poll never
    // fired (a timer made afresh at each wait, which the lease's renewal every 3 s cut
    // short). Both are mended (`outbox.rs` `deliver`).
    let b = world.provider(B);
    let deadline = tokio::time::Instant::now() + crate::world::PATIENCE;
    while carol.received.len() < 2 * EACH {
        carol.sync(&b).await;
        if tokio::time::Instant::now() >= deadline {
            let hub = world.provider(A);
            let pending: Vec<(u64, Option<u64>)> = pg::off_runtime(|| {
                hub.storage()
                    .outbox_peek(&crate::world::name(B), 1024)
                    .unwrap()
                    .into_iter()
                    .map(|e| (e.id, e.seq))
                    .collect()
            });
            let follower_log = log_of(&b, &room).len();
            panic!(
                "Carol read {} of {} messages; B's log of the room has {follower_log} of {} \
                 entries; A's outbox for B holds (id, seq) {pending:?}; Carol saw {:?}",
                carol.received.len(),
                2 * EACH,
                log.len(),
                carol.seen
            );
        }
        // Until B has a new item for Carol (long polling), or a second has passed.
        let _ = b
            .inbox()
            .wait(
                &carol.id,
                carol.cursor,
                1,
                std::time::Duration::from_secs(1),
            )
            .await;
    }
    drop(b);
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

/// A `mimi-hub` process, killed (SIGKILL, by its own ID) when dropped if still running.
struct HubProcess {
    child: std::process::Child,
}

impl HubProcess {
    /// Start `mimi-hub --config <config>` and wait for its "listening" line.
    fn start(config: &std::path::Path, log: &std::path::Path) -> HubProcess {
        use std::io::{BufRead, BufReader};
        use std::process::{Command, Stdio};
        let mut child = Command::new(env!("CARGO_BIN_EXE_mimi-hub"))
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(
            line.starts_with(&format!("mimi-hub {A} listening")),
            "{line:?}: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        HubProcess { child }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no chance to give its leases up.
    fn kill(&mut self) {
        let status = std::process::Command::new("kill")
            .args(["-KILL", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        self.child.wait().unwrap();
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The holder of the outbox lease on `dest`, if any.
fn lease_holder(db: &pg::PgDatabase, dest: &str) -> Option<String> {
    pg::off_runtime(|| {
        let mut client =
            r2d2_postgres::postgres::Client::connect(db.url(), r2d2_postgres::postgres::NoTls)
                .unwrap();
        client
            .query_opt("SELECT holder FROM outbox_leases WHERE dest = $1", &[&dest])
            .unwrap()
            .map(|row| row.get(0))
    })
}

/// Two `mimi-hub` processes of A on one database: the one delivering to B (which drops
/// every connection meanwhile) is killed with SIGKILL mid-delivery; the other takes its
/// lease over once it expires and delivers every event A accepted, once each and in
/// order (B's log is A's, and Carol reads each message once).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_instance_leaves_its_deliveries_to_the_other() {
    let Some(db) = pg::database() else { return };
    let mut world = World::start_on_postgres(&[A, B], &[(A, db.url())]).await;
    let mut alice = world.client(A, "alice", Some("Alice")).await;
    let mut carol = world.client(B, "carol", Some("Carol")).await;
    carol.publish(&world, 2, true).await;
    let room = alice.create_room(&world).await;
    alice.add(&world, &room, &carol.user()).await;
    carol
        .sync_until(&world, "Carol to join", |c| c.in_room(&room))
        .await;
    // B goes away; what A accepts now waits in its outbox.
    world.stop(B).await;
    let (black_hole, attempts) = world.black_hole(B).await;
    const SENT: usize = 30;
    for i in 0..SENT {
        alice.say(&world, &room, &format!("message {i}")).await;
    }
    // A's in-process instance stops (giving its leases up); two processes take over.
    world.stop(A).await;
    let dir = tempfile::tempdir().unwrap();
    let [ca, cert, key] = world.pki.write_files(dir.path(), A);
    let hub_key = world.dir.path().join(format!("{A}.hubkey"));
    let config = dir.path().join("provider.toml");
    std::fs::write(
        &config,
        format!(
            "server_name = \"{A}\"\nlisten = \"127.0.0.1:0\"\napi_listen = \"127.0.0.1:0\"\n\
             certificate = {cert:?}\nprivate_key = {key:?}\nca = {ca:?}\n\
             hub_key = {hub_key:?}\noutbox_retry_base_ms = 50\noutbox_retry_cap_ms = 300\n\n\
             [storage]\nkind = \"postgres\"\nurl = \"{}\"\npool_size = 2\n\n\
             [peers]\n\"{B}\" = \"{}\"\n",
            db.url(),
            world.addr(B)
        ),
    )
    .unwrap();
    let mut first = HubProcess::start(&config, &dir.path().join("first.log"));
    let first_pid = first.pid().to_string();
    // The first process holds the lease and is delivering (B drops its connections).
    let tried_before = attempts.load(std::sync::atomic::Ordering::SeqCst);
    eventually("the first process to deliver to B", || {
        let held = lease_holder(&db, B).is_some_and(|h| h.starts_with(&format!("{first_pid}-")));
        let tried = attempts.load(std::sync::atomic::Ordering::SeqCst);
        async move { (held && tried > tried_before).then_some(()) }
    })
    .await;
    let second = HubProcess::start(&config, &dir.path().join("second.log"));
    let second_pid = second.pid().to_string();
    first.kill();
    black_hole.abort();
    let _ = black_hole.await;
    world.restart(B).await;
    carol
        .sync_until(&world, "Carol to read every message", |c| {
            c.received.len() >= SENT
        })
        .await;
    let expected: Vec<String> = (0..SENT).map(|i| format!("message {i}")).collect();
    assert_eq!(carol.texts(), expected, "each message once, in order");
    assert_once_in_order(&carol.seen);
    assert!(
        lease_holder(&db, B).is_some_and(|h| h.starts_with(&format!("{second_pid}-"))),
        "the second process took the lease over"
    );
    let stored = db.storage();
    let hub_log = pg::off_runtime(|| {
        stored
            .log_range(&room, 0, 1024)
            .unwrap()
            .into_iter()
            .map(|e| e.seq)
            .collect::<Vec<u64>>()
    });
    let follower = world.provider(B);
    let copy: Vec<u64> = pg::off_runtime(|| log_of(&follower, &room))
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    drop(follower);
    assert_eq!(copy, hub_log, "B's copy is A's log");
    eventually("A's outbox to empty", || {
        let left = db.scalar("SELECT count(*) FROM outbox");
        async move { (left == 0).then_some(()) }
    })
    .await;
    drop(second);
    pg::off_runtime(|| drop(stored));
    world.shutdown().await;
}

/// A long-polling inbox read on instance 2 is woken by an event instance 1 writes
/// (`LISTEN/NOTIFY`), well before its wait ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_long_poll_on_one_instance_wakes_for_an_event_written_by_the_other() {
    let Some(db) = pg::database() else { return };
    let mut world = World::start_on_postgres(&[A, B], &[(A, db.url())]).await;
    world.start_instance(A2, A).await;
    let (room, mut alice, mut bob, _carol) = room_across_instances(&world).await;
    bob.sync(&world.provider(A2)).await;
    let (bob_id, cursor) = (bob.id.clone(), bob.cursor);
    let second = world.provider(A2);
    // Far longer than the bound below: only a wake-up ends it in time.
    const WAIT: std::time::Duration = std::time::Duration::from_secs(120);
    const BOUND: std::time::Duration = std::time::Duration::from_secs(20);
    let poll = tokio::spawn(async move {
        second
            .inbox()
            .wait(&bob_id, cursor, 16, WAIT)
            .await
            .unwrap()
    });
    // The read is waiting (nothing to return yet) before Alice speaks through instance 1.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert!(!poll.is_finished());
    alice.say(&world, &room, "through instance one").await;
    let items = tokio::time::timeout(BOUND, poll)
        .await
        .expect("the long poll on instance 2 was not woken")
        .unwrap();
    assert!(!items.is_empty());
    bob.sync_until(&world, "Bob to read Alice", |c| !c.received.is_empty())
        .await;
    assert_eq!(bob.texts(), ["through instance one"]);
    world.shutdown().await;
}

/// Registration, key-package claims and check-invite through two instances at once:
/// one registration of a name wins (its token works on both instances, and a revocation
/// through one is refused by the other), each one-time
/// key package is handed out once, and an invitee registered through one instance is
/// checked and added through the other, whose cached room was behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn registration_claims_and_check_invite_stay_correct_across_instances() {
    use mimi_hub::accounts::Registration;

    let Some(db) = pg::database() else { return };
    let mut world = World::start_on_postgres(&[A, B], &[(A, db.url())]).await;
    world.start_instance(A2, A).await;
    let instances = [world.provider(A), world.provider(A2)];

    // Eight registrations of one name at once, four through each instance.
    let mut registrations = tokio::task::JoinSet::new();
    for i in 0..8 {
        let provider = std::sync::Arc::clone(&instances[i % 2]);
        registrations.spawn(async move {
            provider
                .accounts()
                .register(
                    Registration {
                        localpart: "dave".into(),
                        device: "phone".into(),
                        ..Registration::default()
                    },
                    None,
                )
                .await
        });
    }
    let results = registrations.join_all().await;
    let won: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(won.len(), 1, "{results:?}");
    for provider in &instances {
        assert_eq!(
            provider
                .accounts()
                .authenticate(&won[0].token)
                .await
                .unwrap(),
            won[0].client_id
        );
    }

    // Revoked through instance 1, the token is refused by instance 2 too, which had its
    // hash cached (instance 1's write tells it to forget).
    let dave = won[0].clone();
    assert!(
        instances[0]
            .accounts()
            .revoke(&dave.client_id)
            .await
            .unwrap()
    );
    let second = std::sync::Arc::clone(&instances[1]);
    eventually("instance 2 to refuse the revoked token", || {
        let (second, token) = (std::sync::Arc::clone(&second), dave.token.clone());
        async move {
            second
                .accounts()
                .authenticate(&token)
                .await
                .is_err()
                .then_some(())
        }
    })
    .await;

    // Twenty-four claims of Bob's twelve one-time packages at once, through both.
    let (room, mut alice, mut bob, _carol) = room_across_instances(&world).await;
    let published = bob.publish(&world, 12, true).await;
    let (one_time, last_resort) = published.split_at(12);
    let mut claims = tokio::task::JoinSet::new();
    for i in 0..24 {
        let provider = std::sync::Arc::clone(&instances[i % 2]);
        let (alice_id, room, bob_user) = (alice.id.clone(), room.clone(), bob.user());
        claims.spawn(async move {
            provider
                .accounts()
                .claim_key_packages(&alice_id, &room, &bob_user, vec![])
                .await
                .unwrap()
        });
    }
    let claimed: Vec<Vec<u8>> = claims
        .join_all()
        .await
        .into_iter()
        .flat_map(|entries| {
            entries
                .into_iter()
                .map(|e| e.key_package.as_slice().to_vec())
        })
        .collect();
    assert_eq!(claimed.len(), 24);
    // Bob had one one-time package left from joining the room, and twelve new ones: each
    // of the thirteen handed out once, then the last-resort package.
    let one_time_claims: Vec<&Vec<u8>> = claimed.iter().filter(|k| **k != last_resort[0]).collect();
    let distinct: BTreeSet<&Vec<u8>> = one_time_claims.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        one_time_claims.len(),
        "a package handed out twice"
    );
    assert_eq!(one_time_claims.len(), 13);
    assert!(one_time.iter().all(|k| distinct.contains(k)));
    // Bob speaks through instance 2, so instance 1's copy of the room falls behind; then
    // Alice, through instance 1, adds Erin, registered through instance 2 (instance 1
    // answers the check-invite for her from the shared database).
    for i in 0..3 {
        bob.say(&world, &room, &format!("bob {i}")).await;
    }
    let mut erin = world.client(A2, "erin", Some("Erin")).await;
    erin.publish(&world, 1, true).await;
    alice.add(&world, &room, &erin.user()).await;
    erin.sync_until(&world, "Erin to join", |c| c.in_room(&room))
        .await;
    alice.say(&world, &room, "welcome, Erin").await;
    // Bob, in the epoch Erin's addition began, speaks through instance 2, whose cached
    // room is still in the epoch before: refused against the cache, the message is
    // checked again against the stored room and accepted.
    let epoch = alice.mls.epoch(&room).unwrap();
    bob.sync_until(&world, "Bob to process Erin's addition", |c| {
        c.mls.epoch(&room).unwrap() == epoch
    })
    .await;
    bob.say(&world, &room, "hello, Erin").await;
    erin.sync_until(&world, "Erin to read Alice and Bob", |c| {
        c.received.len() >= 2
    })
    .await;
    assert_eq!(erin.texts(), ["welcome, Erin", "hello, Erin"]);
    let hub = world.provider(A);
    let log = pg::off_runtime(|| log_of(&hub, &room));
    drop(hub);
    assert_gapless(&log);
    drop(instances);
    world.shutdown().await;
}
