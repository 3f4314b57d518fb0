//! mimi-client without a server: the local state (config, room log) across reopen, the
//! room states each operation's commit carries, inbox processing with real `MlsClient`s
//! (the test plays the hub and moves fanned-out events), rendering and CLI parsing.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use mimi_client::cli::{Cli, Command, parse};
use mimi_client::inbox::{self, Outcome, Skip};
use mimi_client::messages::{Compose, compose, receive, room_uri, user_uri};
use mimi_client::plan::{departed_clients, plan_commit, state_after, user_event};
use mimi_client::store::{StoredKind, StoredMessage};
use mimi_client::view::render_messages;
use mimi_client::{ClientConfig, ClientError, Store, epoch_of};
use mimi_codec::mls_ids::DEFAULT_CIPHER_SUITE;
use mimi_codec::{
    BoundedVec, ClientId, CommitRequest, Event, FanoutEvent, JoinRule, MessageBody, MimiMessage,
    MlsBytes, ParticipationState, ParticipationStateChange as Change, PolicyAction, RoomId,
    RoomState, SecurityConfig, SendMessageRequest, Sender, Text, UserId,
};
use mimi_content::Salt;
use mimi_e2e::{CIPHERSUITE, MlsClient, RemoveTarget, external_sender};
use mimi_signaling::{Policy, Room, RoomIdSource, StandardRole};
use openmls_basic_credential::SignatureKeyPair;

fn uid(s: &str) -> UserId {
    s.parse().unwrap()
}

fn cid(s: &str) -> ClientId {
    s.parse().unwrap()
}

fn rid(s: &str) -> RoomId {
    s.parse().unwrap()
}

const ALICE: &str = "@alice:a.example";
const BOB: &str = "@bob:b.example";
const CAROL: &str = "@carol:a.example";

/// A new room created by Alice, as the hub prepares it.
fn initial_state(join_rule: JoinRule) -> RoomState {
    Room::create(
        uid(ALICE),
        RoomIdSource::Localpart("r1".into()),
        Policy::new(
            join_rule,
            &PolicyAction::ALL
                .iter()
                .map(|a| (*a, &[StandardRole::Owner, StandardRole::Admin][..]))
                .collect::<Vec<_>>(),
        ),
        SecurityConfig {
            protocol: Text::new("mls10").unwrap(),
            cipher_suite: DEFAULT_CIPHER_SUITE,
        },
    )
    .unwrap()
    .to_room_state()
}

fn participant(state: &RoomState, user: &str) -> Option<(String, ParticipationState)> {
    state
        .participants
        .iter()
        .find(|p| p.user_id == uid(user))
        .map(|p| (p.role.to_string(), p.state))
}

fn fanout(room: &RoomId, sender: &str, sequence: u64, event: Event) -> MimiMessage {
    MimiMessage::new(
        room.clone(),
        sender.parse::<Sender>().unwrap(),
        MessageBody::Fanout(FanoutEvent {
            sequence,
            prev_hash: Default::default(),
            auth_events: BoundedVec::default(),
            event,
        }),
    )
}

// ---------------------------------------------------------------------------------------
// Local state.

#[test]
fn config_survives_save_and_load() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        ClientConfig::load(dir.path()),
        Err(ClientError::NotRegistered(p)) if p == dir.path()
    ));
    let config = ClientConfig {
        api: "https://a.example:8443".into(),
        connect: Some("127.0.0.1:8443".into()),
        ca: PathBuf::from("/tmp/ca.pem"),
        user_id: uid(ALICE),
        client_id: cid("@alice:a.example#phone"),
        token: "@alice:a.example#phone.00ff".into(),
        cursor: 42,
    };
    config.save(dir.path()).unwrap();
    assert_eq!(ClientConfig::load(dir.path()).unwrap(), config);
}

fn message(id: &str, sender: &str, kind: StoredKind, text: Option<&str>) -> StoredMessage {
    StoredMessage {
        id: id.repeat(64 / id.len()),
        sender: uid(sender),
        sequence: None,
        kind,
        text: text.map(str::to_owned),
        in_reply_to: None,
        reactions: Vec::new(),
    }
}

#[test]
fn room_log_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let room = rid("!r1:a.example");
    let state = initial_state(JoinRule::Knock);
    {
        let mut store = Store::open(dir.path()).unwrap();
        store.note_room(&room).unwrap();
        store.set_state(&state).unwrap();
        store
            .add_note(&room, 3, "@bob:b.example knocked".into())
            .unwrap();
        store
            .add_message(&room, message("ab", ALICE, StoredKind::Message, Some("hi")))
            .unwrap();
        // The same message seen again in the inbox only fills in its sequence.
        let mut again = message("ab", ALICE, StoredKind::Message, Some("hi"));
        again.sequence = Some(7);
        store.add_message(&room, again).unwrap();
        store.mark_submitted(b"commit bytes").unwrap();
        store
            .add_pending_remove(&room, 4, &cid("@bob:b.example#laptop"))
            .unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let rooms: Vec<&RoomId> = store.rooms().map(|(r, _)| r).collect();
    assert_eq!(rooms, vec![&room]);
    let log = store.room(&room).unwrap();
    assert_eq!(log.state.as_ref(), Some(&state));
    assert_eq!(log.notes, vec![(3, "@bob:b.example knocked".to_owned())]);
    assert_eq!(log.messages.len(), 1);
    assert_eq!(log.messages[0].sequence, Some(7));
    assert!(store.is_submitted(b"commit bytes"));
    assert!(!store.is_submitted(b"other bytes"));
    assert_eq!(
        log.pending_removes(4),
        BTreeSet::from([cid("@bob:b.example#laptop")])
    );
    assert_eq!(log.pending_removes(5), BTreeSet::new());
    // Message IDs resolve by unique prefix.
    let id = store.find_message(&room, "abab").unwrap();
    assert_eq!(hex::encode(id.as_bytes()), "ab".repeat(32));
    assert!(matches!(
        store.find_message(&room, "cd"),
        Err(ClientError::UnknownMessage(p)) if p == "cd"
    ));
}

#[test]
fn corrupt_log_line_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rooms.jsonl"),
        b"{\"t\":\"submitted\",\"hash\":\"zz\"}\n",
    )
    .unwrap();
    assert!(matches!(
        Store::open(dir.path()),
        Err(ClientError::CorruptState {
            what: "submitted hash is not 32 hex bytes",
            ..
        })
    ));
}

// ---------------------------------------------------------------------------------------
// Room states computed for commits.

#[test]
fn add_puts_the_target_in_join_as_member() {
    let before = initial_state(JoinRule::MembersOnly);
    let after = state_after(&before, &uid(ALICE), &[user_event(uid(BOB), Change::Join)]).unwrap();
    assert_eq!(
        participant(&after, BOB),
        Some(("member".into(), ParticipationState::Join))
    );
    assert_eq!(
        participant(&after, ALICE),
        Some(("owner".into(), ParticipationState::Join))
    );
    // Canonical order: by user ID bytes.
    let users: Vec<&str> = after
        .participants
        .iter()
        .map(|p| p.user_id.as_str())
        .collect();
    assert_eq!(users, vec![ALICE, BOB]);
}

#[test]
fn a_member_may_not_ban_and_the_rule_is_named() {
    let before = initial_state(JoinRule::MembersOnly);
    let with_bob =
        state_after(&before, &uid(ALICE), &[user_event(uid(BOB), Change::Join)]).unwrap();
    let err =
        state_after(&with_bob, &uid(BOB), &[user_event(uid(ALICE), Change::Ban)]).unwrap_err();
    match err {
        ClientError::Rejected(r) => assert!(r.rule.is_policy(), "{r}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn knock_is_refused_in_a_members_only_room() {
    let before = initial_state(JoinRule::MembersOnly);
    let err = state_after(&before, &uid(BOB), &[user_event(uid(BOB), Change::Knock)]).unwrap_err();
    assert!(matches!(err, ClientError::Rejected(_)), "{err:?}");
    let knock = initial_state(JoinRule::Knock);
    let after = state_after(&knock, &uid(BOB), &[user_event(uid(BOB), Change::Knock)]).unwrap();
    assert_eq!(
        participant(&after, BOB).map(|p| p.1),
        Some(ParticipationState::Knock)
    );
}

fn members(list: &[&str]) -> Vec<(u32, ClientId)> {
    list.iter()
        .enumerate()
        .map(|(i, c)| (u32::try_from(i).unwrap(), cid(c)))
        .collect()
}

#[test]
fn kick_removes_every_client_of_the_target() {
    let start = initial_state(JoinRule::MembersOnly);
    let hub = state_after(&start, &uid(ALICE), &[user_event(uid(BOB), Change::Join)]).unwrap();
    let group = members(&["@alice:a.example#1", "@bob:b.example#1", "@bob:b.example#2"]);
    let plan = plan_commit(
        &hub,
        &hub,
        &uid(ALICE),
        vec![user_event(uid(BOB), Change::Leave)],
        Vec::new(),
        &group,
        &BTreeSet::new(),
    )
    .unwrap();
    assert_eq!(
        plan.removes,
        vec![
            RemoveTarget::Client(cid("@bob:b.example#1")),
            RemoveTarget::Client(cid("@bob:b.example#2"))
        ]
    );
    let next = plan.new_room_state.unwrap();
    assert_eq!(participant(&next, BOB), None);
    assert_eq!(plan.user_events, vec![user_event(uid(BOB), Change::Leave)]);
}

#[test]
fn ban_then_unban_of_a_non_participant_removes_nobody() {
    let hub = initial_state(JoinRule::MembersOnly);
    let group = members(&["@alice:a.example#1"]);
    let plan = plan_commit(
        &hub,
        &hub,
        &uid(ALICE),
        vec![user_event(uid(BOB), Change::Ban)],
        Vec::new(),
        &group,
        &BTreeSet::new(),
    )
    .unwrap();
    assert!(plan.removes.is_empty());
    let banned = plan.new_room_state.unwrap();
    assert_eq!(
        participant(&banned, BOB).map(|p| p.1),
        Some(ParticipationState::Ban)
    );
    let unban = plan_commit(
        &banned,
        &banned,
        &uid(ALICE),
        vec![user_event(uid(BOB), Change::Leave)],
        Vec::new(),
        &group,
        &BTreeSet::new(),
    )
    .unwrap();
    assert_eq!(
        participant(unban.new_room_state.as_ref().unwrap(), BOB),
        None
    );
}

#[test]
fn committing_pending_proposals_carries_the_hub_state_and_removes_the_leaver() {
    // Bob left with an m.room.user leave the hub accepted; Carol was invited. The group
    // still has Bob's clients; one of them already proposed its own removal.
    let start = initial_state(JoinRule::MembersOnly);
    let joined = state_after(&start, &uid(ALICE), &[user_event(uid(BOB), Change::Join)]).unwrap();
    let hub = state_after(
        &joined,
        &uid(ALICE),
        &[user_event(uid(CAROL), Change::Invite)],
    )
    .unwrap();
    let hub = state_after(&hub, &uid(BOB), &[user_event(uid(BOB), Change::Leave)]).unwrap();
    let group = members(&["@alice:a.example#1", "@bob:b.example#1", "@bob:b.example#2"]);
    let pending = BTreeSet::from([cid("@bob:b.example#1")]);
    assert_eq!(
        departed_clients(&hub, &group, &pending),
        vec![cid("@bob:b.example#2")]
    );
    let plan = plan_commit(
        &hub,
        &joined,
        &uid(ALICE),
        Vec::new(),
        Vec::new(),
        &group,
        &pending,
    )
    .unwrap();
    assert_eq!(
        plan.removes,
        vec![RemoveTarget::Client(cid("@bob:b.example#2"))]
    );
    assert_eq!(plan.new_room_state.as_ref(), Some(&hub));
    assert_eq!(
        participant(&hub, CAROL).map(|p| p.1),
        Some(ParticipationState::Invite)
    );
    // Nothing to change: no new room state.
    let idle = plan_commit(
        &joined,
        &joined,
        &uid(ALICE),
        Vec::new(),
        Vec::new(),
        &members(&["@alice:a.example#1", "@bob:b.example#1"]),
        &BTreeSet::new(),
    )
    .unwrap();
    assert_eq!(idle.new_room_state, None);
    assert!(idle.removes.is_empty());
}

// ---------------------------------------------------------------------------------------
// Inbox processing with real MLS clients.

struct Device {
    mls: MlsClient,
    store: Store,
}

fn device(dir: &Path, name: &str, client: &str) -> Device {
    let path = dir.join(name);
    Device {
        mls: MlsClient::open(&path, cid(client)).unwrap(),
        store: Store::open(&path).unwrap(),
    }
}

fn hub_sender() -> mimi_e2e::ExternalSender {
    let signer = SignatureKeyPair::new(CIPHERSUITE.signature_algorithm()).unwrap();
    external_sender(&"a.example".parse().unwrap(), signer.public())
}

/// Alice creates the room and adds Bob in one commit; returns the commit bundle and the
/// room.
fn alice_adds_bob(alice: &mut Device, bob: &mut Device) -> (RoomId, CommitRequest, RoomState) {
    let state = initial_state(JoinRule::MembersOnly);
    let room = state.room_id.clone();
    alice.mls.create_room(&state, hub_sender()).unwrap();
    let kp = bob.mls.key_package(false).unwrap();
    let members = alice.mls.members(&room).unwrap();
    let plan = plan_commit(
        &state,
        &state,
        &uid(ALICE),
        vec![user_event(uid(BOB), Change::Join)],
        vec![kp],
        &members,
        &BTreeSet::new(),
    )
    .unwrap();
    let next = plan.new_room_state.clone().unwrap();
    let bundle = alice.mls.commit(&room, plan).unwrap();
    alice.mls.merge_pending_commit(&room).unwrap();
    alice
        .store
        .mark_submitted(bundle.commit.as_slice())
        .unwrap();
    (room, bundle, next)
}

#[test]
fn added_client_joins_from_the_fanned_out_commit_and_reads_messages() {
    let dir = tempfile::tempdir().unwrap();
    let mut alice = device(dir.path(), "alice", "@alice:a.example#phone");
    let mut bob = device(dir.path(), "bob", "@bob:b.example#laptop");
    let (room, bundle, next) = alice_adds_bob(&mut alice, &mut bob);

    // Bob first hears of the room, then gets the commit with his Welcome.
    let create = fanout(
        &room,
        ALICE,
        1,
        Event::DsCreateGroup(mimi_codec::CreateGroupRequest {
            group_info: MlsBytes::new(vec![0]).unwrap(),
            ratchet_tree: MlsBytes::new(vec![0]).unwrap(),
        }),
    );
    assert!(matches!(
        inbox::process(&mut bob.mls, &mut bob.store, &create).unwrap(),
        Outcome::RoomNoted
    ));
    let commit = fanout(&room, ALICE, 2, Event::DsCommit(bundle.clone()));
    assert!(matches!(
        inbox::process(&mut bob.mls, &mut bob.store, &commit).unwrap(),
        Outcome::Joined { epoch: 1 }
    ));
    assert_eq!(bob.store.room(&room).unwrap().state.as_ref(), Some(&next));
    // The same commit again (a replay) is for an epoch Bob's group has passed.
    assert!(matches!(
        inbox::process(&mut bob.mls, &mut bob.store, &commit).unwrap(),
        Outcome::Skipped(Skip::PastEpoch {
            message: 0,
            group: 1
        })
    ));
    // Alice's own commit comes back to her: skipped, her group stays at epoch 1.
    assert!(matches!(
        inbox::process(&mut alice.mls, &mut alice.store, &commit).unwrap(),
        Outcome::Skipped(Skip::Own)
    ));
    assert_eq!(alice.mls.epoch(&room).unwrap(), 1);

    // Alice sends a text, Bob replies, reacts and Alice edits: each is a mimi-content body.
    let mut sequence = 3;
    let mut send = |from: &mut Device, to: &mut Device, sender: &str, action: Compose| {
        let (body, mine) =
            compose(&uid(sender), &room, &action, Salt([sequence as u8; 16])).unwrap();
        let ciphertext = from.mls.encrypt(&room, &body).unwrap();
        from.store.mark_submitted(&ciphertext).unwrap();
        from.store.add_message(&room, mine.clone()).unwrap();
        let event = fanout(
            &room,
            sender,
            sequence,
            Event::DsSendMessage(SendMessageRequest {
                application_message: MlsBytes::new(ciphertext).unwrap(),
            }),
        );
        sequence += 1;
        // The sender skips its own message; the other side decrypts it.
        assert!(matches!(
            inbox::process(&mut from.mls, &mut from.store, &event).unwrap(),
            Outcome::Skipped(Skip::Own)
        ));
        match inbox::process(&mut to.mls, &mut to.store, &event).unwrap() {
            Outcome::Message(received) => {
                let mut expected = mine;
                expected.sequence = Some(sequence - 1);
                assert_eq!(received, expected);
                received
            }
            other => panic!("{other:?}"),
        }
    };
    let hello = send(
        &mut alice,
        &mut bob,
        ALICE,
        Compose::Text {
            text: "hello Bob".into(),
            reply_to: None,
        },
    );
    let hello_id = bob.store.find_message(&room, &hello.id[..8]).unwrap();
    let reply = send(
        &mut bob,
        &mut alice,
        BOB,
        Compose::Text {
            text: "hi Alice".into(),
            reply_to: Some(hello_id),
        },
    );
    assert_eq!(reply.in_reply_to.as_deref(), Some(hello.id.as_str()));
    send(
        &mut bob,
        &mut alice,
        BOB,
        Compose::React {
            target: hello_id,
            reaction: "👍".into(),
        },
    );
    send(
        &mut alice,
        &mut bob,
        ALICE,
        Compose::Edit {
            original: hello_id,
            text: "hello Bob!".into(),
        },
    );
    // Both sides show the same conversation.
    let expected = vec![
        format!("[{}] {ALICE}: hello Bob! (edited)", &hello.id[..8]),
        format!("    👍 {BOB}"),
        format!(
            "[{}] {BOB} (reply to [{}] \"hello Bob\"): hi Alice",
            &reply.id[..8],
            &hello.id[..8]
        ),
    ];
    for side in [&alice, &bob] {
        let log = side.store.room(&room).unwrap();
        assert_eq!(render_messages(&log.messages), expected);
    }

    // After a restart Bob still has the room, its state and the messages.
    drop(bob);
    let mut bob = device(dir.path(), "bob", "@bob:b.example#laptop");
    assert_eq!(bob.mls.epoch(&room).unwrap(), 1);
    let log = bob.store.room(&room).unwrap();
    assert_eq!(render_messages(&log.messages), expected);
    assert_eq!(log.state.as_ref(), Some(&next));
}

#[test]
fn kick_commit_removes_the_target_who_forgets_the_room() {
    let dir = tempfile::tempdir().unwrap();
    let mut alice = device(dir.path(), "alice", "@alice:a.example#phone");
    let mut bob = device(dir.path(), "bob", "@bob:b.example#laptop");
    let (room, bundle, joined) = alice_adds_bob(&mut alice, &mut bob);
    let commit = fanout(&room, ALICE, 2, Event::DsCommit(bundle));
    inbox::process(&mut bob.mls, &mut bob.store, &commit).unwrap();

    let members = alice.mls.members(&room).unwrap();
    let plan = plan_commit(
        &joined,
        &joined,
        &uid(ALICE),
        vec![user_event(uid(BOB), Change::Leave)],
        Vec::new(),
        &members,
        &BTreeSet::new(),
    )
    .unwrap();
    let kick = alice.mls.commit(&room, plan).unwrap();
    alice.mls.merge_pending_commit(&room).unwrap();
    let event = fanout(&room, ALICE, 3, Event::DsCommit(kick));
    assert!(matches!(
        inbox::process(&mut bob.mls, &mut bob.store, &event).unwrap(),
        Outcome::CommitMerged {
            epoch: 2,
            self_removed: true
        }
    ));
    // Bob's group is gone; his log keeps the room and its last state.
    assert_eq!(inbox::group_epoch(&mut bob.mls, &room).unwrap(), None);
    let log = bob.store.room(&room).unwrap();
    assert_eq!(participant(log.state.as_ref().unwrap(), BOB), None);
    assert_eq!(
        log.notes.last().map(|(s, t)| (*s, t.as_str())),
        Some((3, "this client was removed"))
    );
    assert_eq!(
        log.notes[log.notes.len() - 2].1,
        format!("epoch 2: {BOB} is not in the room")
    );
}

#[test]
fn unsigned_events_become_notes_and_foreign_mls_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let mut carol = device(dir.path(), "carol", "@carol:a.example#1");
    let room = rid("!r1:a.example");
    let knock = fanout(
        &room,
        CAROL,
        5,
        Event::RoomUserUnsigned(user_event(uid(CAROL), Change::Knock)),
    );
    assert!(matches!(
        inbox::process(&mut carol.mls, &mut carol.store, &knock).unwrap(),
        Outcome::Participation(e) if e == user_event(uid(CAROL), Change::Knock)
    ));
    assert_eq!(
        carol.store.room(&room).unwrap().notes,
        vec![(5, format!("{CAROL} knocked"))]
    );
    // An application message of a room Carol's client is not in.
    let message = fanout(
        &room,
        ALICE,
        6,
        Event::DsSendMessage(SendMessageRequest {
            application_message: MlsBytes::new(vec![0, 1, 0, 2, 0]).unwrap(),
        }),
    );
    assert!(matches!(
        inbox::process(&mut carol.mls, &mut carol.store, &message).unwrap(),
        Outcome::Skipped(Skip::NotInGroup)
    ));
}

#[test]
fn a_welcome_for_someone_else_leaves_the_client_outside() {
    let dir = tempfile::tempdir().unwrap();
    let mut alice = device(dir.path(), "alice", "@alice:a.example#phone");
    let mut bob = device(dir.path(), "bob", "@bob:b.example#laptop");
    let mut bob2 = device(dir.path(), "bob2", "@bob:b.example#tablet");
    let (room, bundle, _) = alice_adds_bob(&mut alice, &mut bob);
    let commit = fanout(&room, ALICE, 2, Event::DsCommit(bundle));
    assert!(matches!(
        inbox::process(&mut bob2.mls, &mut bob2.store, &commit).unwrap(),
        Outcome::Skipped(Skip::NotInGroup)
    ));
}

#[test]
fn content_claiming_another_sender_is_refused() {
    let room = rid("!r1:a.example");
    let (body, _) = compose(
        &uid(ALICE),
        &room,
        &Compose::Text {
            text: "I am Bob".into(),
            reply_to: None,
        },
        Salt([1; 16]),
    )
    .unwrap();
    assert!(matches!(
        receive(&room, &uid(BOB), &body, Some(1)),
        Err(ClientError::ForgedContent(u)) if u == uid(BOB)
    ));
    assert_eq!(user_uri(&uid(ALICE)), "mimi://a.example/u/alice");
    assert_eq!(room_uri(&room), "mimi://a.example/r/r1");
}

#[test]
fn epoch_of_real_mls_messages() {
    let dir = tempfile::tempdir().unwrap();
    let mut alice = device(dir.path(), "alice", "@alice:a.example#phone");
    let mut bob = device(dir.path(), "bob", "@bob:b.example#laptop");
    let (room, bundle, _) = alice_adds_bob(&mut alice, &mut bob);
    assert_eq!(epoch_of(bundle.commit.as_slice()), Some(0));
    let message = alice.mls.encrypt(&room, b"x").unwrap();
    assert_eq!(epoch_of(&message), Some(1));
    assert_eq!(epoch_of(bundle.welcomes.as_slice()[0].as_slice()), None);
}

#[test]
fn render_drops_withdrawn_reactions_and_foreign_edits() {
    let base = message("aa", ALICE, StoredKind::Message, Some("original"));
    let mut reaction = message(
        "bb",
        BOB,
        StoredKind::Reaction {
            target: Some(base.id.clone()),
        },
        None,
    );
    reaction.reactions = vec!["🎉".into()];
    let unreact = message(
        "cc",
        BOB,
        StoredKind::Unreact {
            reaction: reaction.id.clone(),
        },
        None,
    );
    let foreign_edit = message(
        "dd",
        BOB,
        StoredKind::Edit {
            original: base.id.clone(),
        },
        Some("hacked"),
    );
    let delete_other = message("ee", ALICE, StoredKind::Message, Some("to delete"));
    let delete = message(
        "ff",
        ALICE,
        StoredKind::Delete {
            original: delete_other.id.clone(),
        },
        None,
    );
    let lines = render_messages(&[base, reaction, unreact, foreign_edit, delete_other, delete]);
    assert_eq!(
        lines,
        vec![
            format!("[aaaaaaaa] {ALICE}: original"),
            format!("[eeeeeeee] {ALICE}: (deleted)"),
        ]
    );
}

// ---------------------------------------------------------------------------------------
// Command line.

fn args(s: &[&str]) -> Vec<String> {
    s.iter().map(|a| (*a).to_owned()).collect()
}

#[test]
fn cli_parses_every_command() {
    let room = "!r1:a.example";
    let mut cases: Vec<(Vec<&str>, Command)> = vec![
        (
            vec![
                "register",
                "--api",
                "https://a.example:8443",
                "--ca",
                "ca.pem",
                "--user",
                "bob",
                "--device",
                "tablet",
                "--token-from",
                "d1",
                "--handle",
                "bobby",
            ],
            Command::Register {
                api: "https://a.example:8443".into(),
                ca: "ca.pem".into(),
                user: "bob".into(),
                device: "tablet".into(),
                handle: Some("bobby".into()),
                email: None,
                phone: None,
                token_from: Some("d1".into()),
                connect: None,
                key_packages: 5,
            },
        ),
        (
            vec![
                "register",
                "--api",
                "https://a.example",
                "--ca",
                "ca.pem",
                "--user",
                "al",
                "--device",
                "d",
                "--key-packages",
                "0",
            ],
            Command::Register {
                api: "https://a.example".into(),
                ca: "ca.pem".into(),
                user: "al".into(),
                device: "d".into(),
                handle: None,
                email: None,
                phone: None,
                token_from: None,
                connect: None,
                key_packages: 0,
            },
        ),
        (
            vec!["publish-key-packages", "--count", "3", "--last-resort"],
            Command::PublishKeyPackages {
                count: 3,
                last_resort: true,
            },
        ),
        (
            vec!["publish-key-packages"],
            Command::PublishKeyPackages {
                count: 5,
                last_resort: false,
            },
        ),
        (
            vec!["discover", "b.example", "handle", "bobby"],
            Command::Discover {
                domain: "b.example".into(),
                field: "handle".into(),
                value: "bobby".into(),
            },
        ),
        (
            vec!["create-room", "--join-rule", "knock"],
            Command::CreateRoom {
                join_rule: JoinRule::Knock,
                protocol: "1".into(),
                id: "room".into(),
                name: String::new(),
            },
        ),
        (
            vec!["create-room"],
            Command::CreateRoom {
                join_rule: JoinRule::MembersOnly,
                protocol: "1".into(),
                id: "room".into(),
                name: String::new(),
            },
        ),
        (vec!["join", room], Command::Join { room: rid(room) }),
        (
            vec!["leave", room],
            Command::Leave {
                room: rid(room),
                no_self_remove: false,
            },
        ),
        (
            vec!["leave", room, "--no-self-remove"],
            Command::Leave {
                room: rid(room),
                no_self_remove: true,
            },
        ),
        (
            vec!["hub-removals", room],
            Command::HubRemovals { room: rid(room) },
        ),
        (vec!["knock", room], Command::Knock { room: rid(room) }),
        (vec!["commit", room], Command::Commit { room: rid(room) }),
        (vec!["show", room], Command::Show { room: rid(room) }),
        (
            vec!["send", room, "hi there", "--reply-to", "ab12"],
            Command::Send {
                room: rid(room),
                text: "hi there".into(),
                reply_to: Some("ab12".into()),
            },
        ),
        (
            vec!["react", room, "ab12", "👍"],
            Command::React {
                room: rid(room),
                message: "ab12".into(),
                reaction: "👍".into(),
            },
        ),
        (
            vec!["edit", room, "ab12", "fixed"],
            Command::Edit {
                room: rid(room),
                message: "ab12".into(),
                text: "fixed".into(),
            },
        ),
        // A text starting with dashes after `--`; `-` stays `-` (standard input, read
        // when the command runs).
        (
            vec!["send", room, "--", "--not-a-flag"],
            Command::Send {
                room: rid(room),
                text: "--not-a-flag".into(),
                reply_to: None,
            },
        ),
        (
            vec!["send", room, "-"],
            Command::Send {
                room: rid(room),
                text: "-".into(),
                reply_to: None,
            },
        ),
        (
            vec!["delete", room, "ab12"],
            Command::Delete {
                room: rid(room),
                message: "ab12".into(),
            },
        ),
        (
            vec!["unreact", room, "ab12", "👍"],
            Command::Unreact {
                room: rid(room),
                message: "ab12".into(),
                reaction: "👍".into(),
            },
        ),
        (vec!["listen"], Command::Listen { room: None }),
        (
            vec!["listen", room],
            Command::Listen {
                room: Some(rid(room)),
            },
        ),
        (
            vec!["completions", "bash"],
            Command::Completions {
                shell: clap_complete::Shell::Bash,
            },
        ),
        (vec!["sync"], Command::Sync),
        (vec!["rooms"], Command::Rooms),
    ];
    // The commands on a room and a user.
    type RoomUser = fn(RoomId, UserId) -> Command;
    let room_user: [(&str, RoomUser); 5] = [
        ("add", |room, user| Command::Add { room, user }),
        ("invite", |room, user| Command::Invite { room, user }),
        ("kick", |room, user| Command::Kick { room, user }),
        ("ban", |room, user| Command::Ban { room, user }),
        ("unban", |room, user| Command::Unban { room, user }),
    ];
    cases.extend(room_user.map(|(verb, make)| (vec![verb, room, BOB], make(rid(room), uid(BOB)))));
    for (argv, command) in cases {
        // --dir anywhere on the line: first, or after the command's arguments.
        let mut first = vec!["--dir", "/tmp/alice"];
        first.extend(argv.iter());
        let mut last = argv.clone();
        last.extend(["--dir", "/tmp/alice"]);
        // After `--` everything is positional.
        let forms = if argv.contains(&"--") {
            vec![first]
        } else {
            vec![first, last]
        };
        for full in forms {
            assert_eq!(
                parse(&args(&full)).unwrap(),
                Cli {
                    dir: "/tmp/alice".into(),
                    json: false,
                    command: command.clone(),
                },
                "{full:?}"
            );
        }
    }
    // --json anywhere, and a relative --dir made absolute.
    let cli = parse(&args(&["rooms", "--json", "--dir", "rel"])).unwrap();
    assert!(cli.json);
    assert_eq!(cli.dir, std::env::current_dir().unwrap().join("rel"));
}

#[test]
fn cli_refuses_bad_usage() {
    for (argv, expected) in [
        (vec!["--dir", "d"], "Usage: mimi"),
        (vec!["--dir", "d", "fly"], "unrecognized subcommand 'fly'"),
        (
            vec!["--dir", "d", "add", "!r:a.example"],
            "the following required arguments were not provided",
        ),
        (
            vec!["--dir", "d", "sync", "--force", "x"],
            "unexpected argument '--force'",
        ),
        (vec!["--dir", "d", "join", "room"], "invalid value 'room'"),
        (
            vec!["--dir", "d", "create-room", "--join-rule", "open"],
            "unknown join rule \"open\" (members_only, knock or public)",
        ),
        (
            vec!["--dir", "d", "register", "--api", "https://x"],
            "--ca <FILE>",
        ),
        (
            vec!["--dir", "d", "send", "!r:a.example", "t", "--reply-to"],
            "a value is required for '--reply-to <MSG_ID>'",
        ),
        (
            vec!["--dir", "d", "publish-key-packages", "--count", "101"],
            "at most 100 at once",
        ),
    ] {
        match parse(&args(&argv)) {
            Err(e @ ClientError::Usage(_)) => {
                assert_eq!(e.kind().exit_code(), 2);
                let m = e.to_string();
                assert!(m.contains(expected), "{m:?} vs {expected:?}");
                // Not the whole usage text of every command after an error.
                assert!(!m.contains("publish-key-packages") || argv.len() < 3, "{m}");
            }
            other => panic!("{argv:?}: {other:?}"),
        }
    }
}

#[test]
fn rfc3339_times() {
    use mimi_client::cli::rfc3339;
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(rfc3339(1_796_000_154), "2026-11-30T00:55:54Z");
    assert_eq!(rfc3339(4_107_542_399), "2100-02-28T23:59:59Z");
}

/// A second holder waits for the folder's lock and gives up after the timeout with a
/// typed error (exit 6); once the first lets go, it gets it.
#[tokio::test]
async fn the_state_lock_waits_then_times_out() {
    use mimi_client::folder::StateLock;
    let dir = tempfile::tempdir().unwrap();
    let first = StateLock::acquire(dir.path(), std::time::Duration::ZERO, || {})
        .await
        .unwrap();
    let mut waited = false;
    let err = StateLock::acquire(dir.path(), std::time::Duration::from_millis(100), || {
        waited = true
    })
    .await
    .unwrap_err();
    assert!(waited);
    assert!(matches!(err, ClientError::StateLocked { .. }), "{err:?}");
    assert_eq!(err.kind().exit_code(), 6);
    drop(first);
    let _second = StateLock::acquire(dir.path(), std::time::Duration::ZERO, || {})
        .await
        .unwrap();
}

#[test]
fn api_url_parsing() {
    use mimi_client::http::Endpoint;
    let e = Endpoint::parse("https://a.example:8443/", None).unwrap();
    assert_eq!(
        (e.host.as_str(), e.port, e.connect.as_str()),
        ("a.example", 8443, "a.example:8443")
    );
    let e = Endpoint::parse("https://a.example", Some("127.0.0.1:9000")).unwrap();
    assert_eq!((e.port, e.connect.as_str()), (443, "127.0.0.1:9000"));
    for bad in [
        "http://a.example",
        "https://",
        "https://a.example/v1",
        "https://a.example:x",
    ] {
        assert!(matches!(Endpoint::parse(bad, None), Err(ClientError::BadUrl(u)) if u == bad));
    }
    assert_eq!(
        mimi_client::api::percent_encode("!r1:a.example"),
        "%21r1%3Aa.example"
    );
}

#[path = "client/e2e.rs"]
mod e2e;

#[path = "client/cli.rs"]
mod cli;
