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

/// The `mimi-hub` binary with `[storage] kind = "postgres"`: it migrates the database,
/// serves, stops cleanly on SIGTERM (closing its connections off the async runtime), and
/// starts again on the same database.
#[test]
fn the_binary_runs_on_postgresql_and_stops_cleanly() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let Some(db) = pg::database() else { return };
    let dir = tempfile::tempdir().unwrap();
    let ca = mimi_transport::pki::CertificateAuthority::generate("mimi test CA").unwrap();
    let (ca_cert, _) = ca.write_pem_files(dir.path(), "ca").unwrap();
    let (cert, key) = ca
        .issue(&crate::world::name(A))
        .unwrap()
        .write_pem_files(dir.path(), "server")
        .unwrap();
    let config = dir.path().join("provider.toml");
    std::fs::write(
        &config,
        format!(
            "server_name = \"{A}\"\nlisten = \"127.0.0.1:0\"\napi_listen = \"127.0.0.1:0\"\n\
             certificate = {cert:?}\nprivate_key = {key:?}\nca = {ca_cert:?}\n\
             hub_key = \"a.hub-key\"\n\n[storage]\nkind = \"postgres\"\nurl = \"{}\"\n\
             pool_size = 2\n",
            db.url()
        ),
    )
    .unwrap();
    for start in 0..2 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mimi-hub"))
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(
            line.starts_with(&format!("mimi-hub {A} listening")),
            "start {start}: {line:?}"
        );
        assert_eq!(
            db.scalar("SELECT count(*) FROM schema_version"),
            i64::from(mimi_hub::storage::postgres::SCHEMA_VERSION)
        );
        // SIGTERM to this process only, by its ID.
        let term = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(term.success());
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "start {start}: {:?}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The MLS key stays a file, beside the configuration here.
    assert!(dir.path().join("a.hub-key").is_file());
}
