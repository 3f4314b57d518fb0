//! Property tests: random sequences of participation changes, commits and messages at the
//! hub, checking the invariants after every step and a follower's replay at the end.

use std::collections::BTreeSet;

use mimi_codec::{
    BoundedVec, CommitRequest, Event, FanoutEvent, JoinRule, MlsBytes, ParticipationState,
    ParticipationStateChange as C, PolicyAction, Reason, SendMessageRequest, Sender, ServerName,
    UserEvent, UserId, Wire,
};
use mimi_signaling::{
    Follower, Hub, LoggedEvent, Operation, Policy, Room, RoomIdSource, StandardRole,
};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

use super::{security, user};

const USERS: [&str; 7] = [
    "@u0:s0.example",
    "@u1:s0.example",
    "@u2:s1.example",
    "@u3:s1.example",
    "@u4:s2.example",
    "@u5:s2.example",
    "@u6:s3.example",
];
const ROLES: [Option<&str>; 4] = [None, Some("member"), Some("admin"), Some("owner")];

#[derive(Debug, Clone)]
enum Step {
    Change {
        sender: usize,
        target: usize,
        change: usize,
        role: usize,
        unsigned: bool,
    },
    Commit,
    Message {
        sender: usize,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (0..USERS.len(), 0..USERS.len(), 0..C::ALL.len(), 0..ROLES.len(), any::<bool>())
            .prop_map(|(sender, target, change, role, unsigned)| Step::Change { sender, target, change, role, unsigned }),
        1 => Just(Step::Commit),
        1 => (0..USERS.len()).prop_map(|sender| Step::Message { sender }),
    ]
}

fn policy() -> impl Strategy<Value = Policy> {
    (0..JoinRule::ALL.len(), any::<bool>()).prop_map(|(rule, open)| {
        let roles: &[StandardRole] = if open {
            &[
                StandardRole::Owner,
                StandardRole::Admin,
                StandardRole::Member,
            ]
        } else {
            &[StandardRole::Owner, StandardRole::Admin]
        };
        let grants: Vec<(PolicyAction, &[StandardRole])> =
            PolicyAction::ALL.iter().map(|a| (*a, roles)).collect();
        Policy::new(JoinRule::ALL[rule], &grants)
    })
}

fn mls(tag: u8) -> MlsBytes {
    private_message(tag, 1)
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

fn check_invariants(room: &Room) -> Result<(), TestCaseError> {
    let state = room.to_room_state();
    let users: Vec<&UserId> = state.participants.iter().map(|p| &p.user_id).collect();
    // Every user has at most one state, and the list is sorted by user ID bytes.
    let mut sorted = users.clone();
    sorted.sort_by(|a, b| a.as_str().as_bytes().cmp(b.as_str().as_bytes()));
    sorted.dedup();
    prop_assert_eq!(&sorted, &users);
    // Participating servers are exactly the servers of joined users.
    let joined: BTreeSet<ServerName> = state
        .participants
        .iter()
        .filter(|p| p.state == ParticipationState::Join)
        .map(|p| p.user_id.server())
        .collect();
    prop_assert_eq!(room.participating_servers(), joined);
    // Whoever is joined, a joined owner is among them.
    let any_joined = state
        .participants
        .iter()
        .any(|p| p.state == ParticipationState::Join);
    let owner_joined = state
        .participants
        .iter()
        .any(|p| p.state == ParticipationState::Join && p.role.as_str() == "owner");
    prop_assert!(!any_joined || owner_joined);
    // A user whose clients must go is not joined.
    for u in room.pending_client_removals() {
        prop_assert!(!room.is_joined(u));
    }
    // The wire state round-trips exactly.
    let again = Room::from_room_state(&state).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(
        again.to_room_state().encode().unwrap(),
        state.encode().unwrap()
    );
    Ok(())
}

/// The regressions file beside this one is read and written by path: the default
/// (`SourceParallel`) looks for a `lib.rs` or `main.rs` above the test source and finds none
/// in an integration test's folder, so it would silently skip the recorded seeds.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/signaling/props.proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn invariants_hold_and_followers_agree(policy in policy(), steps in prop::collection::vec(step(), 1..60)) {
        let mut hub = Hub::create(user(USERS[0]), RoomIdSource::Localpart("p".into()), policy, security()).unwrap();
        let mut log: Vec<(Sender, FanoutEvent, Vec<UserEvent>, bool)> = Vec::new();
        let mut accepted_any_change = false;
        // Every event as logged, the whole history (memory keeps only a window of it).
        let mut stored: Vec<LoggedEvent> = vec![hub.create_event().unwrap().clone()];
        for s in steps {
            let before = hub.clone();
            // Before a commit, the delivery service checks that it removes the departed
            // users' clients; here the commit leaves no client of anyone.
            let (sender, ev, changes, is_commit) = match s {
                Step::Change { sender, target, change, role, unsigned } => {
                    let ue = UserEvent {
                        target: user(USERS[target]),
                        change: C::ALL[change],
                        reason: Reason::default(),
                        follower_server_certificate: None,
                        role: ROLES[role].map(|r| r.parse().unwrap()),
                    };
                    let ev = if unsigned { Event::RoomUserUnsigned(ue.clone()) } else { Event::RoomUser(mls(1)) };
                    (Sender::User(user(USERS[sender])), ev, vec![ue], false)
                }
                Step::Commit => {
                    let ev = Event::DsCommit(CommitRequest { commit: mls(2), group_info: mls(3), welcomes: BoundedVec::default() });
                    (Sender::User(user(USERS[0])), ev, vec![], true)
                }
                Step::Message { sender } => {
                    let ev = Event::DsSendMessage(SendMessageRequest { application_message: mls(4) });
                    (Sender::User(user(USERS[sender])), ev, vec![], false)
                }
            };
            match hub.accept(sender.clone(), ev, changes.clone()) {
                Ok(accepted) => {
                    for t in &accepted.transitions {
                        accepted_any_change = true;
                        // A banned user is never joined, except through an unban first.
                        let was_banned = t.before().is_some_and(|p| p.state == ParticipationState::Ban);
                        prop_assert!(!was_banned || t.operation() == Operation::Unban, "{:?}", t);
                        prop_assert_eq!(t.participating_after(), &hub.room().participating_servers());
                        prop_assert!(accepted.targets.contains(&t.target().server()));
                    }
                    prop_assert!(hub.room().participating_servers().is_subset(&accepted.targets));
                    if is_commit {
                        // The commit removed every departed user's clients.
                        prop_assert!(hub.room().pending_client_removals().is_empty());
                    }
                    stored.push(hub.history().get(accepted.fanout.sequence).unwrap().clone());
                    log.push((sender, accepted.fanout, changes, is_commit));
                }
                Err(_) => {
                    // A refused event leaves everything unchanged.
                    prop_assert_eq!(&hub, &before);
                }
            }
            check_invariants(hub.room())?;
        }
        let _ = accepted_any_change;

        let create = hub.create_event().unwrap();
        let mut follower = Follower::new(&create.sender, hub.room().id(), &create.fanout).unwrap();
        for (sender, fanout, changes, is_commit) in &log {
            let _ = is_commit;
            follower.receive(sender, fanout, changes).unwrap();
        }
        prop_assert_eq!(follower.room(), hub.room());
        prop_assert_eq!(follower.history().events(), hub.history().events());
        // A hub restores from the stored log, the whole history: the in-memory window alone
        // has a gap after the create event once the history outgrows it.
        let restored = Hub::restore(hub.room().id(), &stored).unwrap();
        prop_assert_eq!(&restored, &hub);
    }

    #[test]
    fn a_follower_refuses_a_tampered_event(steps in prop::collection::vec((0..USERS.len(), 0..C::ALL.len()), 1..20), which in any::<prop::sample::Index>(), bump in 1u64..4) {
        let mut hub = Hub::create(user(USERS[0]), RoomIdSource::Localpart("t".into()), Policy::default(), security()).unwrap();
        let mut log = Vec::new();
        for (target, change) in steps {
            let ue = UserEvent { target: user(USERS[target]), change: C::ALL[change], reason: Reason::default(), follower_server_certificate: None, role: None };
            let sender = Sender::User(user(USERS[0]));
            if let Ok(a) = hub.accept(sender.clone(), Event::RoomUser(mls(1)), vec![ue.clone()]) {
                log.push((sender, a.fanout, vec![ue]));
            }
        }
        prop_assume!(!log.is_empty());
        let i = which.index(log.len());
        let create = hub.create_event().unwrap();
        let mut follower = Follower::new(&create.sender, hub.room().id(), &create.fanout).unwrap();
        for (s, f, c) in &log[..i] {
            follower.receive(s, f, c).unwrap();
        }
        let (s, f, c) = &log[i];
        let mut tampered = f.clone();
        let mut auth: Vec<u64> = tampered.auth_events.iter().copied().collect();
        auth.push(f.sequence + bump);
        tampered.auth_events = BoundedVec::new(auth).unwrap();
        let before = follower.clone();
        prop_assert!(follower.receive(s, &tampered, c).is_err());
        prop_assert_eq!(&follower, &before);
        follower.receive(s, f, c).unwrap();
    }
}
