//! A provider whose state is in PostgreSQL, in the federation world: the hub of a room on
//! PostgreSQL accepts events, fans them out to a follower on redb, and after a restart
//! from the same database runs the room on from where it was.
//!
//! The test reads the hub's storage off the runtime ([`pg::off_runtime`]), as the provider
//! itself does (`spawn_blocking`).

use crate::federation::two_party;
use crate::pg;
use crate::world::{A, B, World, assert_gapless, assert_once_in_order, log_of};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_on_postgresql_keeps_its_rooms_across_a_restart() {
    let Some(db) = pg::database() else { return };
    let mut world = World::start_on_postgres(&[A, B], &[(A, db.url())]).await;
    let (room, mut alice, mut bob) = two_party(&world).await;
    alice.say(&world, &room, "kept in PostgreSQL").await;
    bob.sync_until(&world, "Bob to read Alice's message", |c| {
        !c.received.is_empty()
    })
    .await;
    assert_eq!(bob.texts(), ["kept in PostgreSQL"]);
    let hub = world.provider(A);
    let before = pg::off_runtime(|| log_of(&hub, &room));
    drop(hub);
    assert_gapless(&before);
    // The hub's log is the database's.
    let stored = db.scalar(&format!("SELECT count(*) FROM log WHERE room = '{room}'"));
    assert_eq!(usize::try_from(stored).unwrap(), before.len());

    world.stop(A).await;
    world.restart(A).await;
    let hub = world.provider(A);
    assert_eq!(pg::off_runtime(|| log_of(&hub, &room)), before);
    // The restarted hub runs the room from its database: Bob's reply (a new event,
    // checked against the reloaded room and group state) is accepted and reaches Alice.
    bob.say(&world, &room, "and back").await;
    alice
        .sync_until(&world, "Alice to read Bob's reply", |c| {
            !c.received.is_empty()
        })
        .await;
    assert_eq!(alice.texts(), ["and back"]);
    let after = pg::off_runtime(|| log_of(&hub, &room));
    drop(hub);
    assert_eq!(after.len(), before.len() + 1);
    assert_eq!(after[..before.len()], before[..]);
    assert_gapless(&after);
    assert_once_in_order(&alice.seen);
    assert_once_in_order(&bob.seen);
    world.shutdown().await;
}
