//! mimi-e2e with real openmls: several clients in one process, each with its own on-disk
//! store, and the test moving the bytes between them (no hub: the test is the relay).

// Helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

#[path = "e2e/v06_mls_framing.rs"]
mod v06_mls_framing;

use std::path::Path;

use mimi_codec::mls_ids::DEFAULT_CIPHER_SUITE;
use mimi_codec::{
    BoundedVec, ClientId, JoinRule, ParticipantData, ParticipationState, ParticipationStateChange,
    RoomId, RoomPolicy, RoomState, SecurityConfig, Text, UserEvent, UserId,
};
use mimi_e2e::*;
use openmls::prelude::tls_codec::Serialize as _;
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;

fn cid(s: &str) -> ClientId {
    s.parse().unwrap()
}

fn uid(s: &str) -> UserId {
    s.parse().unwrap()
}

fn rid(s: &str) -> RoomId {
    s.parse().unwrap()
}

fn open(dir: &Path, name: &str, client: &str) -> MlsClient {
    MlsClient::open(&dir.join(name), cid(client)).unwrap()
}

fn state(room: &RoomId, joined: &[&str]) -> RoomState {
    RoomState {
        room_id: room.clone(),
        participants: BoundedVec::new(
            joined
                .iter()
                .enumerate()
                .map(|(i, u)| ParticipantData {
                    user_id: uid(u),
                    role: if i == 0 { "owner" } else { "member" }.parse().unwrap(),
                    state: ParticipationState::Join,
                })
                .collect(),
        )
        .unwrap(),
        policy: RoomPolicy {
            policy_id: Text::new("mimi.roles.v1").unwrap(),
            join_rule: JoinRule::MembersOnly,
            permissions: BoundedVec::default(),
        },
        security: SecurityConfig {
            protocol: Text::new("mls10").unwrap(),
            cipher_suite: DEFAULT_CIPHER_SUITE,
        },
    }
}

fn event(target: &str, change: ParticipationStateChange) -> UserEvent {
    UserEvent {
        target: uid(target),
        change,
        reason: Text::new("").unwrap(),
        follower_server_certificate: None,
        role: None,
    }
}

struct Hub {
    signer: SignatureKeyPair,
    sender: ExternalSender,
}

fn hub() -> Hub {
    let signer = SignatureKeyPair::new(CIPHERSUITE.signature_algorithm()).unwrap();
    let sender = external_sender(&"hub.a.example".parse().unwrap(), signer.public());
    Hub { signer, sender }
}

/// Alice creates `room` and adds Bob (one commit: join UserEvent + Add + new RoomState);
/// Bob joins from the Welcome.
fn room_with_alice_and_bob(
    alice: &mut MlsClient,
    bob: &mut MlsClient,
    room: &RoomId,
    hub: &Hub,
) -> RoomState {
    alice
        .create_room(&state(room, &["@alice:a.example"]), hub.sender.clone())
        .unwrap();
    let kp = bob.key_package(false).unwrap();
    let next = state(room, &["@alice:a.example", "@bob:b.example"]);
    let bundle = alice
        .commit(
            room,
            CommitPlan {
                user_events: vec![event("@bob:b.example", ParticipationStateChange::Join)],
                adds: vec![kp],
                new_room_state: Some(next.clone()),
                ..CommitPlan::default()
            },
        )
        .unwrap();
    alice.merge_pending_commit(room).unwrap();
    assert_eq!(bundle.welcomes.len(), 1);
    assert_eq!(
        bob.join_from_welcome(bundle.welcomes.as_slice()[0].as_slice())
            .unwrap(),
        *room
    );
    next
}

fn app(client: &mut MlsClient, room: &RoomId, message: &[u8]) -> Processed {
    client.process(room, message).unwrap()
}

fn plaintext(sender: &str, text: &[u8]) -> Processed {
    Processed::Application {
        sender: cid(sender),
        plaintext: text.to_vec(),
    }
}

#[test]
fn room_lifecycle_create_add_external_join_remove_user() {
    let dir = tempfile::tempdir().unwrap();
    let room = rid("!lifecycle:a.example");
    let hub = hub();
    let mut alice = open(dir.path(), "alice", "@alice:a.example#laptop");
    let mut bob = open(dir.path(), "bob", "@bob:b.example#phone");
    let mut bob2 = open(dir.path(), "bob2", "@bob:b.example#tablet");
    let mut cathy = open(dir.path(), "cathy", "@cathy:c.example#desk");

    // Creation: the RoomState extension and the hub as external sender.
    let initial = state(&room, &["@alice:a.example"]);
    let created = alice.create_room(&initial, hub.sender.clone()).unwrap();
    assert_eq!(
        room_state_of_group_info(&created.group_info).unwrap(),
        initial
    );
    assert_eq!(alice.room_state(&room).unwrap(), initial);
    assert_eq!(
        alice.external_senders(&room).unwrap(),
        vec![hub.sender.clone()]
    );
    assert_eq!(alice.epoch(&room).unwrap(), 0);
    assert!(!created.ratchet_tree.is_empty());

    // Alice adds Bob: Join UserEvent + Add + GroupContextExtensions in one commit.
    let with_bob = state(&room, &["@alice:a.example", "@bob:b.example"]);
    let join_bob = event("@bob:b.example", ParticipationStateChange::Join);
    let bundle = alice
        .commit(
            &room,
            CommitPlan {
                user_events: vec![join_bob.clone()],
                adds: vec![bob.key_package(false).unwrap()],
                new_room_state: Some(with_bob.clone()),
                ..CommitPlan::default()
            },
        )
        .unwrap();
    // The commit's GroupInfo (new epoch) carries exactly the RoomState passed in.
    assert_eq!(
        room_state_of_group_info(bundle.group_info.as_slice()).unwrap(),
        with_bob
    );
    // Not merged yet: still epoch 0 with the old state.
    assert_eq!(alice.room_state(&room).unwrap(), initial);
    alice.merge_pending_commit(&room).unwrap();
    assert_eq!(alice.epoch(&room).unwrap(), 1);
    assert_eq!(alice.room_state(&room).unwrap(), with_bob);
    assert_eq!(
        bob.join_from_welcome(bundle.welcomes.as_slice()[0].as_slice())
            .unwrap(),
        room
    );
    assert_eq!(bob.room_state(&room).unwrap(), with_bob);
    assert_eq!(bob.epoch(&room).unwrap(), 1);
    assert_eq!(
        bob.members(&room).unwrap(),
        vec![
            (0, cid("@alice:a.example#laptop")),
            (1, cid("@bob:b.example#phone"))
        ]
    );

    // Messages both ways.
    let m = alice.encrypt(&room, b"hi bob").unwrap();
    assert_eq!(
        app(&mut bob, &room, &m),
        plaintext("@alice:a.example#laptop", b"hi bob")
    );
    let m = bob.encrypt(&room, b"hi alice").unwrap();
    assert_eq!(
        app(&mut alice, &room, &m),
        plaintext("@bob:b.example#phone", b"hi alice")
    );

    // Bob's second client joins by external commit from Alice's GroupInfo and tree.
    let group_info = alice.group_info(&room).unwrap();
    let tree = alice.ratchet_tree(&room).unwrap();
    let (joined, ext) = bob2
        .join_by_external_commit(&group_info, Some(&tree))
        .unwrap();
    assert_eq!(joined, room);
    assert!(ext.welcomes.is_empty());
    assert_eq!(
        room_state_of_group_info(ext.group_info.as_slice()).unwrap(),
        with_bob
    );
    for member in [&mut alice, &mut bob] {
        match member.process(&room, ext.commit.as_slice()).unwrap() {
            Processed::Commit(c) => {
                assert_eq!(
                    c.committer,
                    MessageSender::NewMember(cid("@bob:b.example#tablet"))
                );
                assert_eq!(c.epoch, 2);
                assert_eq!(c.room_state, with_bob);
                assert!(c.user_events.is_empty());
                assert!(!c.self_removed);
            }
            other => panic!("expected a commit, got {other:?}"),
        }
    }
    assert_eq!(bob2.epoch(&room).unwrap(), 2);
    assert_eq!(
        alice.clients_of(&room, &uid("@bob:b.example")).unwrap(),
        vec![
            (1, cid("@bob:b.example#phone")),
            (2, cid("@bob:b.example#tablet"))
        ]
    );
    let m = bob2.encrypt(&room, b"from the tablet").unwrap();
    assert_eq!(
        app(&mut alice, &room, &m),
        plaintext("@bob:b.example#tablet", b"from the tablet")
    );
    assert_eq!(
        app(&mut bob, &room, &m),
        plaintext("@bob:b.example#tablet", b"from the tablet")
    );

    // Alice adds Cathy; the others see the UserEvent and the Add.
    let with_cathy = state(
        &room,
        &["@alice:a.example", "@bob:b.example", "@cathy:c.example"],
    );
    let join_cathy = event("@cathy:c.example", ParticipationStateChange::Join);
    let bundle = alice
        .commit(
            &room,
            CommitPlan {
                user_events: vec![join_cathy.clone()],
                adds: vec![cathy.key_package(false).unwrap()],
                new_room_state: Some(with_cathy.clone()),
                ..CommitPlan::default()
            },
        )
        .unwrap();
    alice.merge_pending_commit(&room).unwrap();
    for member in [&mut bob, &mut bob2] {
        assert_eq!(
            member.process(&room, bundle.commit.as_slice()).unwrap(),
            Processed::Commit(CommitSummary {
                committer: MessageSender::Member(cid("@alice:a.example#laptop")),
                epoch: 3,
                user_events: vec![join_cathy.clone()],
                added: vec![cid("@cathy:c.example#desk")],
                removed: vec![],
                room_state: with_cathy.clone(),
                self_removed: false,
            })
        );
    }
    cathy
        .join_from_welcome(bundle.welcomes.as_slice()[0].as_slice())
        .unwrap();
    assert_eq!(cathy.room_state(&room).unwrap(), with_cathy);

    // Alice removes all of Bob's clients with a leave UserEvent.
    let without_bob = state(&room, &["@alice:a.example", "@cathy:c.example"]);
    let bob_leaves = event("@bob:b.example", ParticipationStateChange::Leave);
    let bundle = alice
        .commit(
            &room,
            CommitPlan {
                user_events: vec![bob_leaves.clone()],
                removes: vec![RemoveTarget::AllClientsOf(uid("@bob:b.example"))],
                new_room_state: Some(without_bob.clone()),
                ..CommitPlan::default()
            },
        )
        .unwrap();
    alice.merge_pending_commit(&room).unwrap();
    let removed = vec![cid("@bob:b.example#phone"), cid("@bob:b.example#tablet")];
    for (member, self_removed) in [(&mut bob, true), (&mut bob2, true), (&mut cathy, false)] {
        assert_eq!(
            member.process(&room, bundle.commit.as_slice()).unwrap(),
            Processed::Commit(CommitSummary {
                committer: MessageSender::Member(cid("@alice:a.example#laptop")),
                epoch: 4,
                user_events: vec![bob_leaves.clone()],
                added: vec![],
                removed: removed.clone(),
                room_state: without_bob.clone(),
                self_removed,
            })
        );
    }
    assert_eq!(
        alice.members(&room).unwrap(),
        vec![
            (0, cid("@alice:a.example#laptop")),
            (3, cid("@cathy:c.example#desk"))
        ]
    );
    assert!(!bob.is_active(&room).unwrap());

    // New messages: Cathy reads them, Bob's clients cannot.
    let m = alice.encrypt(&room, b"bob is gone").unwrap();
    assert_eq!(
        app(&mut cathy, &room, &m),
        plaintext("@alice:a.example#laptop", b"bob is gone")
    );
    for removed in [&mut bob, &mut bob2] {
        assert!(matches!(removed.process(&room, &m), Err(E2eError::Evicted)));
        assert!(matches!(
            removed.encrypt(&room, b"still here?"),
            Err(E2eError::Evicted)
        ));
    }
    // Removing someone who is not there is refused before any MLS work.
    assert!(matches!(
        alice.commit(
            &room,
            CommitPlan {
                removes: vec![RemoveTarget::AllClientsOf(uid("@bob:b.example"))],
                ..CommitPlan::default()
            }
        ),
        Err(E2eError::NoClientsOf(u)) if u == uid("@bob:b.example")
    ));
}

#[test]
fn last_resort_key_package_is_reusable_one_time_is_consumed() {
    let dir = tempfile::tempdir().unwrap();
    let hub = hub();
    let mut alice = open(dir.path(), "alice", "@alice:a.example#laptop");
    let mut bob = open(dir.path(), "bob", "@bob:b.example#phone");
    let last_resort = bob.key_package(true).unwrap();
    assert!(parse_key_package(&last_resort).unwrap().last_resort());
    let one_time = bob.key_package(false).unwrap();
    assert!(!parse_key_package(&one_time).unwrap().last_resort());

    let mut join = |room: &str, kp: &[u8], alice: &mut MlsClient| {
        let room = rid(room);
        alice
            .create_room(&state(&room, &["@alice:a.example"]), hub.sender.clone())
            .unwrap();
        let bundle = alice
            .commit(
                &room,
                CommitPlan {
                    user_events: vec![event("@bob:b.example", ParticipationStateChange::Join)],
                    adds: vec![kp.to_vec()],
                    new_room_state: Some(state(&room, &["@alice:a.example", "@bob:b.example"])),
                    ..CommitPlan::default()
                },
            )
            .unwrap();
        alice.merge_pending_commit(&room).unwrap();
        bob.join_from_welcome(bundle.welcomes.as_slice()[0].as_slice())
    };

    // The last-resort key package serves two rooms and stays.
    assert_eq!(
        join("!lr1:a.example", &last_resort, &mut alice).unwrap(),
        rid("!lr1:a.example")
    );
    assert_eq!(
        join("!lr2:a.example", &last_resort, &mut alice).unwrap(),
        rid("!lr2:a.example")
    );
    // The one-time one serves one room; its private material is then gone.
    assert!(join("!ot1:a.example", &one_time, &mut alice).is_ok());
    assert!(matches!(
        join("!ot2:a.example", &one_time, &mut alice),
        Err(E2eError::NoMatchingKeyPackage)
    ));
    assert!(bob.holds_key_package(&last_resort).unwrap());
    assert!(!bob.holds_key_package(&one_time).unwrap());
}

#[test]
fn state_persists_across_restart() {
    let dir = tempfile::tempdir().unwrap();
    let room = rid("!persist:a.example");
    let hub = hub();
    let mut bob = open(dir.path(), "bob", "@bob:b.example#phone");
    let (with_bob, alice_key) = {
        let mut alice = open(dir.path(), "alice", "@alice:a.example#laptop");
        let s = room_with_alice_and_bob(&mut alice, &mut bob, &room, &hub);
        let m = alice.encrypt(&room, b"before restart").unwrap();
        assert_eq!(
            app(&mut bob, &room, &m),
            plaintext("@alice:a.example#laptop", b"before restart")
        );
        (s, alice.signature_public_key().to_vec())
    };
    // Same directory, another client ID: refused.
    assert!(matches!(
        MlsClient::open(&dir.path().join("alice"), cid("@mallory:a.example#x")),
        Err(E2eError::ClientMismatch { stored, .. }) if stored == cid("@alice:a.example#laptop")
    ));
    let mut alice = open(dir.path(), "alice", "@alice:a.example#laptop");
    assert_eq!(alice.signature_public_key(), alice_key.as_slice());
    assert_eq!(alice.room_state(&room).unwrap(), with_bob);
    assert_eq!(alice.epoch(&room).unwrap(), 1);
    let m = alice.encrypt(&room, b"after restart").unwrap();
    assert_eq!(
        app(&mut bob, &room, &m),
        plaintext("@alice:a.example#laptop", b"after restart")
    );
    let m = bob.encrypt(&room, b"welcome back").unwrap();
    assert_eq!(
        app(&mut alice, &room, &m),
        plaintext("@bob:b.example#phone", b"welcome back")
    );
    // And it can still commit.
    let bundle = alice
        .commit(
            &room,
            CommitPlan {
                user_events: vec![event("@bob:b.example", ParticipationStateChange::Leave)],
                removes: vec![RemoveTarget::Client(cid("@bob:b.example#phone"))],
                new_room_state: Some(state(&room, &["@alice:a.example"])),
                ..CommitPlan::default()
            },
        )
        .unwrap();
    drop(alice);
    // The pending commit survives a restart too.
    let mut alice = open(dir.path(), "alice", "@alice:a.example#laptop");
    alice.merge_pending_commit(&room).unwrap();
    assert_eq!(alice.epoch(&room).unwrap(), 2);
    assert!(matches!(
        bob.process(&room, bundle.commit.as_slice()).unwrap(),
        Processed::Commit(CommitSummary {
            self_removed: true,
            ..
        })
    ));
}

#[test]
fn key_package_without_mimi_capabilities_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let room = rid("!caps:a.example");
    let hub = hub();
    let mut alice = open(dir.path(), "alice", "@alice:a.example#laptop");
    alice
        .create_room(&state(&room, &["@alice:a.example"]), hub.sender.clone())
        .unwrap();
    // A key package of a client that does not advertise the MIMI types.
    let provider = OpenMlsRustCrypto::default();
    let signer = SignatureKeyPair::new(CIPHERSUITE.signature_algorithm()).unwrap();
    let plain = KeyPackage::builder()
        .build(
            CIPHERSUITE,
            &provider,
            &signer,
            CredentialWithKey {
                credential: credential_for(&cid("@dave:d.example#old")),
                signature_key: signer.public().into(),
            },
        )
        .unwrap();
    let plain = MlsMessageOut::from(plain.key_package().clone())
        .tls_serialize_detached()
        .unwrap();
    let result = alice.commit(
        &room,
        CommitPlan {
            adds: vec![plain],
            new_room_state: Some(state(&room, &["@alice:a.example", "@dave:d.example"])),
            ..CommitPlan::default()
        },
    );
    assert!(
        matches!(result, Err(E2eError::UnsupportedCapabilities)),
        "{result:?}"
    );
    // Nothing was staged: the group is unchanged and a valid commit still works.
    assert_eq!(alice.epoch(&room).unwrap(), 0);
    assert!(matches!(
        alice.merge_pending_commit(&room),
        Err(E2eError::PendingCommit)
    ));
}

#[test]
fn standalone_proposals_self_remove_and_hub_remove() {
    let dir = tempfile::tempdir().unwrap();
    let room = rid("!proposals:a.example");
    let hub = hub();
    let mut alice = open(dir.path(), "alice", "@alice:a.example#laptop");
    let mut bob = open(dir.path(), "bob", "@bob:b.example#phone");
    room_with_alice_and_bob(&mut alice, &mut bob, &room, &hub);

    // Bob proposes a UserEvent by reference; Alice stores it and commits it.
    let mut set_role = event("@bob:b.example", ParticipationStateChange::SetRole);
    set_role.role = Some("admin".parse().unwrap());
    let proposal = bob.propose_user_event(&room, &set_role).unwrap();
    assert_eq!(
        alice.process(&room, &proposal).unwrap(),
        Processed::Proposal {
            sender: MessageSender::Member(cid("@bob:b.example#phone")),
            proposal: ProposalSummary::UserEvent(set_role.clone()),
        }
    );
    let bundle = alice.commit(&room, CommitPlan::default()).unwrap();
    alice.merge_pending_commit(&room).unwrap();
    match bob.process(&room, bundle.commit.as_slice()).unwrap() {
        Processed::Commit(c) => assert_eq!(c.user_events, vec![set_role]),
        other => panic!("expected a commit, got {other:?}"),
    }

    // The hub (an external sender) proposes removing Bob; members store it.
    let hub_remove = ExternalProposal::new_remove::<OpenMlsRustCrypto>(
        LeafNodeIndex::new(1),
        GroupId::from_slice(room.as_str().as_bytes()),
        GroupEpoch::from(alice.epoch(&room).unwrap()),
        &hub.signer,
        SenderExtensionIndex::new(0),
    )
    .unwrap()
    .tls_serialize_detached()
    .unwrap();
    assert_eq!(
        alice.process(&room, &hub_remove).unwrap(),
        Processed::Proposal {
            sender: MessageSender::External(0),
            proposal: ProposalSummary::Remove(cid("@bob:b.example#phone")),
        }
    );
    alice.clear_pending_commit(&room).unwrap();

    // Bob's own Remove proposal for himself, by reference.
    let leave = bob.self_remove_proposal(&room).unwrap();
    assert_eq!(
        alice.process(&room, &leave).unwrap(),
        Processed::Proposal {
            sender: MessageSender::Member(cid("@bob:b.example#phone")),
            proposal: ProposalSummary::Remove(cid("@bob:b.example#phone")),
        }
    );
    let bundle = alice
        .commit(
            &room,
            CommitPlan {
                user_events: vec![event("@bob:b.example", ParticipationStateChange::Leave)],
                new_room_state: Some(state(&room, &["@alice:a.example"])),
                ..CommitPlan::default()
            },
        )
        .unwrap();
    alice.merge_pending_commit(&room).unwrap();
    assert_eq!(
        alice.members(&room).unwrap(),
        vec![(0, cid("@alice:a.example#laptop"))]
    );
    match bob.process(&room, bundle.commit.as_slice()).unwrap() {
        Processed::Commit(c) => {
            assert!(c.self_removed);
            assert_eq!(c.removed, vec![cid("@bob:b.example#phone")]);
        }
        other => panic!("expected a commit, got {other:?}"),
    }
}

#[test]
fn follower_certificate_joins_external_senders() {
    let dir = tempfile::tempdir().unwrap();
    let room = rid("!followers:a.example");
    let hub = hub();
    let mut alice = open(dir.path(), "alice", "@alice:a.example#laptop");
    let mut bob = open(dir.path(), "bob", "@bob:b.example#phone");
    alice
        .create_room(&state(&room, &["@alice:a.example"]), hub.sender.clone())
        .unwrap();
    let follower_key = SignatureKeyPair::new(CIPHERSUITE.signature_algorithm()).unwrap();
    let follower = external_sender(&"b.example".parse().unwrap(), follower_key.public());
    let mut join = event("@bob:b.example", ParticipationStateChange::Join);
    join.follower_server_certificate = Some(follower_certificate(&follower).unwrap());
    let bundle = alice
        .commit(
            &room,
            CommitPlan {
                user_events: vec![join],
                adds: vec![bob.key_package(false).unwrap()],
                new_room_state: Some(state(&room, &["@alice:a.example", "@bob:b.example"])),
                ..CommitPlan::default()
            },
        )
        .unwrap();
    alice.merge_pending_commit(&room).unwrap();
    bob.join_from_welcome(bundle.welcomes.as_slice()[0].as_slice())
        .unwrap();
    let expected = vec![hub.sender.clone(), follower.clone()];
    assert_eq!(alice.external_senders(&room).unwrap(), expected);
    assert_eq!(bob.external_senders(&room).unwrap(), expected);
    assert_eq!(
        server_of_external_sender(&expected[1]).unwrap().as_str(),
        "b.example"
    );

    // Removing the follower again: the caller passes the whole new list.
    let bundle = alice
        .commit(
            &room,
            CommitPlan {
                external_senders: Some(vec![hub.sender.clone()]),
                ..CommitPlan::default()
            },
        )
        .unwrap();
    alice.merge_pending_commit(&room).unwrap();
    bob.process(&room, bundle.commit.as_slice()).unwrap();
    assert_eq!(
        bob.external_senders(&room).unwrap(),
        vec![hub.sender.clone()]
    );
    // The RoomState extension was resent unchanged.
    assert_eq!(
        bob.room_state(&room).unwrap(),
        state(&room, &["@alice:a.example", "@bob:b.example"])
    );
}

#[test]
fn malformed_and_foreign_inputs_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut alice = open(dir.path(), "alice", "@alice:a.example#laptop");
    assert!(matches!(
        alice.join_from_welcome(&[0, 1, 2]),
        Err(E2eError::Malformed {
            object: MlsObject::Welcome,
            ..
        })
    ));
    let kp = alice.key_package(false).unwrap();
    assert!(matches!(
        alice.join_from_welcome(&kp),
        Err(E2eError::UnexpectedMessage {
            expected: MlsObject::Welcome
        })
    ));
    assert!(matches!(
        alice.encrypt(&rid("!nowhere:a.example"), b"x"),
        Err(E2eError::UnknownRoom(r)) if r == rid("!nowhere:a.example")
    ));
    assert_eq!(u16::from(CIPHERSUITE), DEFAULT_CIPHER_SUITE);
}

#[test]
fn withdrawn_own_proposals_are_not_committed_even_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let room = rid("!withdraw:a.example");
    let hub = hub();
    let mut alice = open(dir.path(), "alice", "@alice:a.example#laptop");
    let mut bob = open(dir.path(), "bob", "@bob:b.example#phone");
    room_with_alice_and_bob(&mut alice, &mut bob, &room, &hub);

    // Two proposals the hub refused (never fanned out), and one it accepted.
    let refused_invite = alice
        .propose_user_event_with_ref(
            &room,
            &event("@carol:c.example", ParticipationStateChange::Invite),
        )
        .unwrap();
    let refused_leave = bob.self_remove_proposal_with_ref(&room).unwrap();
    let kept = event("@dave:d.example", ParticipationStateChange::Invite);
    let kept_proposal = alice.propose_user_event_with_ref(&room, &kept).unwrap();
    assert!(bob.withdraw_proposal(&room, &refused_leave).unwrap());
    assert!(alice.withdraw_proposal(&room, &refused_invite).unwrap());
    // Already gone: nothing to withdraw.
    assert!(!alice.withdraw_proposal(&room, &refused_invite).unwrap());
    assert!(matches!(
        bob.process(&room, &kept_proposal.message).unwrap(),
        Processed::Proposal { .. }
    ));

    // The withdrawal is durable: after a restart Alice's commit carries the kept invite,
    // not the withdrawn one, and Bob (who withdrew his self-remove) can process it.
    drop(alice);
    let mut alice = open(dir.path(), "alice", "@alice:a.example#laptop");
    let bundle = alice.commit(&room, CommitPlan::default()).unwrap();
    alice.merge_pending_commit(&room).unwrap();
    match bob.process(&room, bundle.commit.as_slice()).unwrap() {
        Processed::Commit(c) => {
            assert_eq!(c.user_events, vec![kept]);
            assert_eq!(c.removed, Vec::<ClientId>::new());
            assert!(!c.self_removed);
        }
        other => panic!("expected a commit, got {other:?}"),
    }

    // Bob's own commit would not carry his withdrawn self-remove: a fresh pair shows it.
    let room2 = rid("!withdraw2:a.example");
    let mut alice2 = open(dir.path(), "alice2", "@alice:a.example#laptop");
    let mut bob2 = open(dir.path(), "bob2", "@bob:b.example#phone");
    room_with_alice_and_bob(&mut alice2, &mut bob2, &room2, &hub);
    let leave = bob2.self_remove_proposal_with_ref(&room2).unwrap();
    assert!(bob2.withdraw_proposal(&room2, &leave).unwrap());
    let bundle = bob2.commit(&room2, CommitPlan::default()).unwrap();
    bob2.merge_pending_commit(&room2).unwrap();
    match alice2.process(&room2, bundle.commit.as_slice()).unwrap() {
        Processed::Commit(c) => assert_eq!(c.removed, Vec::<ClientId>::new()),
        other => panic!("expected a commit, got {other:?}"),
    }
    assert_eq!(bob2.members(&room2).unwrap().len(), 2);
}

/// E2E-WF-1: every handshake message this client sends is a PublicMessage (the hub reads
/// and checks it), every application message a PrivateMessage; read from the bytes with the
/// codec's RFC 9420 scanner, not from openmls.
#[test]
fn handshakes_are_public_messages_and_application_messages_private() {
    use mimi_codec::mls_frame::{ContentType, MlsMessage, MlsMessageKind};
    let kind = |bytes: &[u8]| MlsMessage::from_bytes(bytes).unwrap().kind();
    let dir = tempfile::tempdir().unwrap();
    let mut alice = open(dir.path(), "alice", "@alice:a.example#phone");
    let mut bob = open(dir.path(), "bob", "@bob:b.example#laptop");
    let room = rid("!wf:a.example");
    let hub = hub();
    // A commit with an Add, its Welcome and GroupInfo.
    alice
        .create_room(&state(&room, &["@alice:a.example"]), hub.sender.clone())
        .unwrap();
    let kp = bob.key_package(false).unwrap();
    assert_eq!(kind(&kp), MlsMessageKind::KeyPackage);
    let next = state(&room, &["@alice:a.example", "@bob:b.example"]);
    let bundle = alice
        .commit(
            &room,
            CommitPlan {
                user_events: vec![event("@bob:b.example", ParticipationStateChange::Join)],
                adds: vec![kp],
                new_room_state: Some(next),
                ..CommitPlan::default()
            },
        )
        .unwrap();
    alice.merge_pending_commit(&room).unwrap();
    assert_eq!(
        kind(bundle.commit.as_slice()),
        MlsMessageKind::PublicMessage(ContentType::Commit)
    );
    assert_eq!(
        kind(bundle.group_info.as_slice()),
        MlsMessageKind::GroupInfo
    );
    assert_eq!(
        kind(bundle.welcomes.as_slice()[0].as_slice()),
        MlsMessageKind::Welcome
    );
    bob.join_from_welcome(bundle.welcomes.as_slice()[0].as_slice())
        .unwrap();
    // Standalone proposals.
    let proposal = bob
        .propose_user_event(
            &room,
            &event("@bob:b.example", ParticipationStateChange::Leave),
        )
        .unwrap();
    assert_eq!(
        kind(&proposal),
        MlsMessageKind::PublicMessage(ContentType::Proposal)
    );
    let remove = bob.self_remove_proposal(&room).unwrap();
    assert_eq!(
        kind(&remove),
        MlsMessageKind::PublicMessage(ContentType::Proposal)
    );
    // An application message.
    let ciphertext = alice.encrypt(&room, b"hello").unwrap();
    assert_eq!(
        kind(&ciphertext),
        MlsMessageKind::PrivateMessage(ContentType::Application)
    );
    // An external commit.
    let mut carol = open(dir.path(), "carol", "@carol:a.example#desk");
    let group_info = alice.group_info(&room).unwrap();
    let tree = alice.ratchet_tree(&room).unwrap();
    let (_, external) = carol
        .join_by_external_commit(&group_info, Some(&tree))
        .unwrap();
    assert_eq!(
        kind(external.commit.as_slice()),
        MlsMessageKind::PublicMessage(ContentType::Commit)
    );
}
