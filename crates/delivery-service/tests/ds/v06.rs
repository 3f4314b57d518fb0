//! -06 rooms at library level: real openmls clients (mimi-e2e) and the hub's
//! `Room06Group`, every message through bytes: a room created with its participant list in
//! the `app_data_dictionary`, a participant added by an `AppDataUpdate` commit, the Welcome
//! joined, an application message read, and a commit by a role without the capability
//! refused.

use mimi_codec::BoundedVec;
use mimi_codec::v06::IdentifierUri;
use mimi_codec::v06::room::{ParticipantListUpdate, UserRolePair};
use mimi_ds::v06::{Refused06, Room06Group};
use mimi_e2e::binding06::{new_room_components, roles};
use mimi_e2e::{MlsClient, Plan06, Processed06};
use openmls::prelude::SignatureScheme;
use openmls_basic_credential::SignatureKeyPair;

fn cid(s: &str) -> mimi_codec::ClientId {
    s.parse().unwrap()
}

fn uri(s: &str) -> IdentifierUri {
    s.parse().unwrap()
}

fn add(user: &str, role: u32) -> ParticipantListUpdate {
    ParticipantListUpdate {
        added_participants: BoundedVec::new(vec![UserRolePair {
            user: uri(user),
            role_index: role,
        }])
        .unwrap(),
        ..Default::default()
    }
}

#[test]
fn a_06_room_adds_a_participant_and_refuses_a_guest_adding() {
    let dir = tempfile::tempdir().unwrap();
    let room = uri("mimi://a.example/r/club");
    let hub_key = SignatureKeyPair::new(SignatureScheme::ED25519).unwrap();
    let hub = mimi_e2e::external_sender(&"a.example".parse().unwrap(), hub_key.public());
    let mut alice = MlsClient::open(&dir.path().join("a"), cid("@alice:a.example#laptop")).unwrap();
    let mut bob = MlsClient::open(&dir.path().join("b"), cid("@bob:b.example#phone")).unwrap();
    let mut cathy = MlsClient::open(&dir.path().join("c"), cid("@cathy:c.example#desk")).unwrap();
    let components = new_room_components(&room, "Club", &uri("mimi://a.example/u/alice")).unwrap();
    let created = alice
        .create_room06(&room, &components, hub.clone())
        .unwrap();
    let mut group =
        Room06Group::create(&created.group_info, &created.ratchet_tree, &room, &hub).unwrap();
    // Stored and loaded back, as the hub does.
    group = Room06Group::from_bytes(&group.to_bytes().unwrap()).unwrap();

    // Alice adds Bob as a guest: participant list and MLS add in one commit.
    let kp = bob.key_package(false).unwrap();
    let commit = alice
        .commit06(
            &room,
            Plan06 {
                adds: vec![kp],
                participants: Some(add("mimi://b.example/u/bob", roles::GUEST)),
                ..Default::default()
            },
        )
        .unwrap();
    let staged = group.stage_commit(&commit.commit).unwrap();
    assert_eq!(staged.added_refs.len(), 1);
    assert_eq!(staged.participants_after.participants.len(), 2);
    group.merge(staged, commit.group_info.clone()).unwrap();
    alice.merge_pending06(&room).unwrap();
    assert_eq!(
        bob.join_from_welcome06(commit.welcome.as_ref().unwrap(), None)
            .unwrap(),
        room
    );
    assert_eq!(
        bob.participants06(&room).unwrap(),
        group.participants().unwrap()
    );

    // Bob sends; the hub checks it; Alice reads it.
    let message = bob.encrypt06(&room, b"hi").unwrap();
    group
        .check_application(&message, &uri("mimi://b.example/u/bob"))
        .unwrap();
    assert_eq!(
        group.check_application(&message, &uri("mimi://c.example/u/cathy")),
        Err(Refused06::NotAllowed(
            "mimi://c.example/u/cathy may not send".into()
        ))
    );
    match alice.process06(&room, &message).unwrap() {
        Processed06::Application { plaintext, .. } => assert_eq!(plaintext, b"hi"),
        other => panic!("{other:?}"),
    }

    // Bob, a guest, may not add Cathy: notAllowed, and nothing changed.
    let kp = cathy.key_package(false).unwrap();
    let commit = bob
        .commit06(
            &room,
            Plan06 {
                adds: vec![kp],
                participants: Some(add("mimi://c.example/u/cathy", roles::MEMBER)),
                ..Default::default()
            },
        )
        .unwrap();
    match group.stage_commit(&commit.commit) {
        Err(Refused06::NotAllowed(why)) => assert!(why.contains("add a participant"), "{why}"),
        other => panic!("{other:?}"),
    }
    bob.clear_pending06(&room).unwrap();
    assert_eq!(group.epoch(), 1);

    // A commit for an old epoch is wrongEpoch.
    let commit = alice.commit06(&room, Plan06::default()).unwrap();
    let staged = group.stage_commit(&commit.commit).unwrap();
    group.merge(staged, commit.group_info).unwrap();
    alice.merge_pending06(&room).unwrap();
    let stale = bob.commit06(&room, Plan06::default()).unwrap();
    assert_eq!(
        group.stage_commit(&stale.commit).unwrap_err(),
        Refused06::WrongEpoch { current: 2 }
    );
}
