//! The real `mimi` binary (`CARGO_BIN_EXE_mimi`, separate processes with their own state
//! folders) against three real providers in this process (`super::e2e::start`: real TLS,
//! the client API and federation on loopback): `listen`, `--json`, exit codes, the state
//! lock, the commit before a send, a closed standard output, file permissions.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::Command;

use super::e2e::{World, start};

/// How long `listen` may take to print a message sent from another provider.
const LISTEN_LATENCY: Duration = Duration::from_secs(1);
/// How long [`sync_until`] runs `mimi sync` before giving up. A bound in time, not in
/// attempts: each attempt is a process (and the event awaited may come from another
/// process, `mimi join`), which a loaded machine slows down; 200 attempts (about 5-7 s)
/// once ran out in CI while the awaited join was still on its way.
const SYNC_PATIENCE: Duration = Duration::from_secs(60);

fn mimi_command(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mimi"));
    command
        .arg("--dir")
        .arg(dir)
        .args(args)
        .env_remove("MIMI_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

async fn mimi(dir: &Path, args: &[&str]) -> Output {
    mimi_command(dir, args).output().await.unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Run and expect success; the standard output.
async fn ok(dir: &Path, args: &[&str]) -> String {
    let o = mimi(dir, args).await;
    assert!(
        o.status.success(),
        "mimi {args:?} failed ({}): {}{}",
        o.status,
        stderr(&o),
        stdout(&o)
    );
    stdout(&o)
}

/// Run with `--json` and expect success; every output line parsed.
async fn ok_json(dir: &Path, args: &[&str]) -> Vec<Value> {
    let mut full = vec!["--json"];
    full.extend_from_slice(args);
    ok(dir, &full)
        .await
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

/// Run and expect exit status `code`; the standard error.
async fn fails(dir: &Path, args: &[&str], code: i32) -> String {
    let o = mimi(dir, args).await;
    assert_eq!(
        o.status.code(),
        Some(code),
        "mimi {args:?}: {}{}",
        stderr(&o),
        stdout(&o)
    );
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    stderr(&o)
}

/// Register `user` on `provider` with the command line (key packages by default).
async fn register(world: &World, dir: &Path, provider: &str, user: &str) {
    let (_, addr) = world.apis.iter().find(|(n, _)| n == provider).unwrap();
    let out = ok_json(
        dir,
        &[
            "register",
            "--api",
            &format!("https://{provider}"),
            "--connect",
            &addr.to_string(),
            "--ca",
            world.ca.to_str().unwrap(),
            "--user",
            user,
            "--device",
            "d",
            "--handle",
            user,
        ],
    )
    .await;
    assert_eq!(out.len(), 1);
    assert_eq!(out[0]["type"], "registered");
    assert_eq!(out[0]["user_id"], format!("@{user}:{provider}"));
    // Five one-time key packages and a last-resort one, published at registration.
    assert_eq!(out[0]["key_packages"], 6);
}

/// Run `mimi sync --json` until an output line satisfies `done` (fan-out to another
/// provider is asynchronous); bounded.
async fn sync_until(dir: &Path, what: &str, done: impl Fn(&Value) -> bool) {
    let deadline = tokio::time::Instant::now() + SYNC_PATIENCE;
    while tokio::time::Instant::now() < deadline {
        if ok_json(dir, &["sync"]).await.iter().any(&done) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{}: never saw {what} in {SYNC_PATIENCE:?}", dir.display());
}

fn joined(v: &Value) -> bool {
    v["type"] == "event" && v["event"] == "joined"
}

/// Alice (a) creates a room and adds Bob (b) and Carol (c), who sync into the group.
async fn three_in_a_room(world: &World, root: &Path) -> (PathBuf, PathBuf, PathBuf, String) {
    let (alice, bob, carol) = (root.join("alice"), root.join("bob"), root.join("carol"));
    register(world, &alice, "a.example", "alice").await;
    register(world, &bob, "b.example", "bob").await;
    register(world, &carol, "c.example", "carol").await;
    let created = ok_json(&alice, &["create-room"]).await;
    assert_eq!(created[0]["type"], "created");
    assert_eq!(created[0]["join_rule"], "members_only");
    let room = created[0]["room"].as_str().unwrap().to_owned();
    for user in ["@bob:b.example", "@carol:c.example"] {
        let added = ok_json(&alice, &["add", &room, user]).await;
        assert_eq!(added[0]["type"], "done");
        assert_eq!(added[0]["action"], "add");
        assert_eq!(added[0]["user"], user);
    }
    sync_until(&bob, "the Welcome", joined).await;
    sync_until(&carol, "the Welcome", joined).await;
    (alice, bob, carol, room)
}

/// The texts of the room's messages in `show --json`, as (sender, text or null).
async fn shown_messages(dir: &Path, room: &str) -> Vec<(String, Value)> {
    ok_json(dir, &["show", room])
        .await
        .iter()
        .filter(|v| v["type"] == "message")
        .map(|v| (v["sender"].as_str().unwrap().to_owned(), v["text"].clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_json_concurrency_and_the_send_after_a_leave() {
    let tmp = tempfile::tempdir().unwrap();
    let world = start(tmp.path(), &["a.example", "b.example", "c.example"]).await;
    let (alice, bob, carol, room) = three_in_a_room(&world, tmp.path()).await;

    // Bob listens (JSON) to the room; Alice, on another provider, sends.
    let mut listener = mimi_command(&bob, &["--json", "listen", &room])
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(listener.stdout.take().unwrap()).lines();
    // While listen waits, another command on Bob's folder runs (the lock is free).
    let rooms = ok_json(&bob, &["rooms"]).await;
    assert_eq!(rooms[0]["room"], room.as_str());
    assert_eq!(rooms[0]["in_group"], true);

    let sent = ok_json(&alice, &["send", &room, "hello from a"]).await;
    let sent_at = Instant::now();
    assert_eq!(sent[0]["type"], "sent");
    let id = sent[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 64);
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("listen printed nothing")
        .unwrap()
        .unwrap();
    let latency = sent_at.elapsed();
    assert!(latency < LISTEN_LATENCY, "listen took {latency:?}");
    let message: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(message["type"], "message");
    assert_eq!(message["kind"], "message");
    assert_eq!(message["room"], room.as_str());
    assert_eq!(message["sender"], "@alice:a.example");
    assert_eq!(message["text"], "hello from a");
    assert_eq!(message["id"], id.as_str());
    assert!(message["cursor"].as_u64().unwrap() > 0);
    assert!(message["sequence"].as_u64().unwrap() > 0);
    let time = message["time"].as_str().unwrap();
    assert!(
        time.len() == 20 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
        "{time}"
    );

    // A reply, rendered with the quoted text, in text mode.
    let _ = ok(&alice, &["send", &room, "--reply-to", &id[..8], "a reply"]).await;
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("listen printed nothing")
        .unwrap()
        .unwrap();
    let reply: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(reply["in_reply_to"], id.as_str());
    listener.start_kill().unwrap();
    let _ = listener.wait().await;

    // Two commands at once on Alice's folder: the second waits for the first.
    let first = ["send", room.as_str(), "first at once"];
    let second = ["send", room.as_str(), "second at once"];
    let (one, two) = tokio::join!(mimi(&alice, &first), mimi(&alice, &second));
    for o in [&one, &two] {
        assert!(o.status.success(), "{}", stderr(o));
    }

    // Carol leaves; Alice's next send commits the leave by itself (no `mimi commit`).
    let left = ok_json(&carol, &["leave", &room]).await;
    assert_eq!(left[0]["action"], "leave");
    // Alice's group holds Carol's leave and self-remove proposals once she has them.
    let mut stored = 0;
    let deadline = tokio::time::Instant::now() + SYNC_PATIENCE;
    while tokio::time::Instant::now() < deadline {
        stored += ok_json(&alice, &["sync"])
            .await
            .iter()
            .filter(|v| v["event"] == "proposals_stored")
            .count();
        if stored >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(stored, 2, "Carol's proposals never reached Alice");
    let _ = ok(&alice, &["send", &room, "after carol left"]).await;
    let view = ok_json(&alice, &["show", &room]).await;
    let users: Vec<&str> = view[0]["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["user"].as_str().unwrap())
        .collect();
    assert_eq!(users, vec!["@alice:a.example", "@bob:b.example"]);
    sync_until(&bob, "the message after the leave", |v| {
        v["type"] == "message" && v["text"] == "after carol left"
    })
    .await;
    let texts: Vec<String> = shown_messages(&bob, &room)
        .await
        .into_iter()
        .filter_map(|(_, t)| t.as_str().map(str::to_owned))
        .collect();
    for expected in ["hello from a", "first at once", "second at once"] {
        assert!(texts.iter().any(|t| t == expected), "{texts:?}");
    }
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_local_checks_and_message_commands() {
    let tmp = tempfile::tempdir().unwrap();
    let world = start(tmp.path(), &["a.example", "b.example", "c.example"]).await;
    let (alice, bob, _carol, room) = three_in_a_room(&world, tmp.path()).await;

    // Usage: 2, with a short message, not the whole usage text.
    let err = fails(&alice, &["send", &room], 2).await;
    assert!(err.contains("required arguments"), "{err}");
    assert!(!err.contains("publish-key-packages"), "{err}");
    let _ = fails(&alice, &["fly"], 2).await;
    // Not found: 4 (an unknown room, a discovery that finds nobody, an unknown message).
    let err = fails(&alice, &["show", "!nowhere:a.example"], 4).await;
    assert!(err.contains("unknown room"), "{err}");
    let _ = fails(&alice, &["discover", "b.example", "handle", "nobody"], 4).await;
    let _ = fails(&alice, &["react", &room, "abcdef12", "👍"], 4).await;
    // Refused by the room's rules: 3 (a member may not ban the owner).
    let err = fails(&bob, &["ban", &room, "@alice:a.example"], 3).await;
    assert!(err.contains("refused locally"), "{err}");
    // Local state: 6 (no client registered in the folder).
    let err = fails(&tmp.path().join("nobody"), &["rooms"], 6).await;
    assert!(err.contains("mimi register"), "{err}");
    // Network: 5 (a provider address nobody listens on).
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap().to_string();
    drop(closed);
    let err = fails(
        &tmp.path().join("nowhere"),
        &[
            "--json",
            "register",
            "--api",
            "https://a.example",
            "--connect",
            &addr,
            "--ca",
            world.ca.to_str().unwrap(),
            "--user",
            "x",
            "--device",
            "d",
        ],
        5,
    )
    .await;
    // With --json the error is a JSON object on standard error.
    let error: Value = serde_json::from_str(err.trim()).unwrap();
    assert_eq!(error["type"], "error");
    assert_eq!(error["error"], "network");
    assert_eq!(error["exit_code"], 5);
    // Authentication: 7 (the operator revoked the client's token; the provider answers 401).
    let dan = tmp.path().join("dan");
    register(&world, &dan, "a.example", "dan").await;
    let _ = ok(&dan, &["sync"]).await;
    let client: mimi_codec::ClientId = "@dan:a.example#d".parse().unwrap();
    assert!(
        world
            .provider("a.example")
            .accounts()
            .revoke(&client)
            .await
            .unwrap()
    );
    let err = fails(&dan, &["--json", "sync"], 7).await;
    let error: Value = serde_json::from_str(err.trim()).unwrap();
    assert_eq!(error["error"], "unauthorized");
    assert_eq!(
        error["exit_code"],
        i64::from(mimi_client::EXIT_UNAUTHORIZED)
    );
    let err = fails(&dan, &["send", &room, "still here?"], 7).await;
    assert!(err.contains("unauthorized"), "{err}");

    // `discover` finds Bob; standard input as the message; a text starting with `--`.
    let found = ok_json(&alice, &["discover", "b.example", "handle", "bob"]).await;
    assert_eq!(found[0]["user_id"], "@bob:b.example");
    let mut send = mimi_command(&alice, &["--json", "send", &room, "-"]);
    let mut child = send.stdin(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"from standard input\n").await.unwrap();
    drop(stdin);
    let o = child.wait_with_output().await.unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let sent: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    let id = sent["id"].as_str().unwrap().to_owned();
    let _ = ok(&alice, &["send", &room, "--", "--dashes"]).await;
    sync_until(&bob, "Alice's messages", |v| v["text"] == "--dashes").await;
    assert_eq!(
        shown_messages(&bob, &room).await,
        vec![
            ("@alice:a.example".into(), "from standard input".into()),
            ("@alice:a.example".into(), "--dashes".into()),
        ]
    );

    // Bob may not edit or delete Alice's message: refused before sending (3).
    let err = fails(&bob, &["edit", &room, &id[..8], "forged"], 3).await;
    assert!(err.contains("only its sender can edit it"), "{err}");
    let _ = fails(&bob, &["delete", &room, &id[..8]], 3).await;
    // Bob reacts, then withdraws it; withdrawing again finds nothing (4).
    let _ = ok(&bob, &["react", &room, &id[..8], "👍"]).await;
    let _ = ok(&bob, &["unreact", &room, &id[..8], "👍"]).await;
    let _ = fails(&bob, &["unreact", &room, &id[..8], "👍"], 4).await;
    // Alice deletes her message; Bob sees it deleted, the reaction withdrawn, and no edit.
    let deleted = ok_json(&alice, &["delete", &room, &id[..8]]).await;
    assert_eq!(deleted[0]["action"], "deleted");
    sync_until(&bob, "the deletion", |v| v["kind"] == "delete").await;
    let text = ok(&bob, &["show", &room]).await;
    assert!(
        text.contains(&format!("[{}] @alice:a.example: (deleted)", &id[..8])),
        "{text}"
    );
    assert!(!text.contains("👍") && !text.contains("forged"), "{text}");
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_stdout_permissions_absolute_paths_and_completions() {
    let tmp = tempfile::tempdir().unwrap();
    let world = start(tmp.path(), &["a.example"]).await;
    // Registered from another working directory with a relative CA path.
    std::fs::copy(&world.ca, tmp.path().join("local-ca.pem")).unwrap();
    let alice = tmp.path().join("state").join("alice");
    let (_, addr) = &world.apis[0];
    let o = Command::new(env!("CARGO_BIN_EXE_mimi"))
        .current_dir(tmp.path())
        .env("MIMI_DIR", "state/alice")
        .args(["register", "--api", "https://a.example", "--connect"])
        .arg(addr.to_string())
        .args(["--ca", "local-ca.pem", "--user", "alice", "--device", "d"])
        .output()
        .await
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let config: Value =
        serde_json::from_slice(&std::fs::read(alice.join("client.json")).unwrap()).unwrap();
    assert_eq!(
        config["ca"].as_str().unwrap(),
        tmp.path().join("local-ca.pem").to_str().unwrap()
    );
    let created = ok_json(&alice, &["create-room"]).await;
    let room = created[0]["room"].as_str().unwrap().to_owned();
    for i in 0..20 {
        let _ = ok(&alice, &["send", &room, &format!("line {i}")]).await;
    }

    // The folder is the owner's only, and so is every file in it.
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&alice), 0o700);
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&alice).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
        files.push(path.file_name().unwrap().to_string_lossy().into_owned());
    }
    files.sort();
    assert_eq!(files, ["client.json", "lock", "mls.redb", "rooms.jsonl"]);

    // `show | head`: standard output closed before mimi writes; it ends quietly.
    let mut child = mimi_command(&alice, &["show", &room]).spawn().unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().await.unwrap();
    assert!(o.status.success(), "{}: {}", o.status, stderr(&o));
    assert_eq!(stderr(&o), "");

    // --version, per-command help, completions.
    let version = ok(&alice, &["--version"]).await;
    assert_eq!(
        version.trim(),
        format!("mimi {}", env!("CARGO_PKG_VERSION"))
    );
    let help = ok(&alice, &["listen", "--help"]).await;
    assert!(
        help.contains("Usage: mimi listen [OPTIONS] [ROOM]"),
        "{help}"
    );
    let script = ok(&alice, &["completions", "bash"]).await;
    assert!(script.contains("_mimi()"), "{script}");
    assert!(script.contains("unreact"), "{script}");
    world.stop().await;
}

/// In a knock room, Bob knocks, Alice invites him, and Bob's `join` is accepted but the
/// hub still holds Alice's invite proposal: Bob's join waits for a member's commit instead
/// of failing; Alice's next message commits it, and Bob's join completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_in_a_knock_room_waits_for_the_inviters_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let world = start(tmp.path(), &["a.example", "b.example"]).await;
    let (alice, bob) = (tmp.path().join("alice"), tmp.path().join("bob"));
    register(&world, &alice, "a.example", "alice").await;
    register(&world, &bob, "b.example", "bob").await;
    let created = ok_json(&alice, &["create-room", "--join-rule", "knock"]).await;
    let room = created[0]["room"].as_str().unwrap().to_owned();
    let _ = ok(&bob, &["knock", &room]).await;
    sync_until(&alice, "Bob's knock", |v| {
        v["event"] == "participation" && v["text"].as_str().is_some_and(|t| t.contains("Knock"))
    })
    .await;
    let _ = ok(&alice, &["invite", &room, "@bob:b.example"]).await;

    let joining = mimi_command(&bob, &["--json", "join", &room])
        .spawn()
        .unwrap();
    // Bob's unsigned join reaches Alice while his external join waits.
    sync_until(&alice, "Bob's join", |v| {
        v["event"] == "participation" && v["text"].as_str().is_some_and(|t| t.contains("Join"))
    })
    .await;
    let _ = ok(&alice, &["send", &room, "welcome in"]).await;
    let o = joining.wait_with_output().await.unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let joined: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(joined["action"], "join");
    assert!(joined["epoch"].as_u64().unwrap() >= 2, "{joined}");
    let _ = ok(&alice, &["send", &room, "after the join"]).await;
    sync_until(&bob, "Alice's message", |v| v["text"] == "after the join").await;
    world.stop().await;
}
