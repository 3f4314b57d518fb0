//! Room creation, the policy, and the canonical wire state.

use mimi_codec::{
    BoundedVec, JoinRule, ParticipantData, ParticipationState, Permission, PolicyAction, RoomId,
    RoomPolicy, RoomState, Text, Wire,
};
use mimi_signaling::{
    CreateError, POLICY_ID, Policy, PolicyError, Room, RoomIdSource, StandardRole, StateError,
};

use super::{role, room_of, security, user};
use ParticipationState::{Ban, Invite, Join, Knock};
use StandardRole::{Admin, Member, Owner};

#[test]
fn create_names_the_room_under_the_creators_server_and_makes_the_creator_owner() {
    let random: [u8; 16] = core::array::from_fn(|i| i as u8 * 17);
    let room = Room::create(
        user("@alice:a.example"),
        RoomIdSource::Random(random),
        Policy::default(),
        security(),
    )
    .unwrap();
    assert_eq!(
        room.id().as_str(),
        "!00112233445566778899aabbccddeeff:a.example"
    );
    let expected = RoomState {
        room_id: room.id().clone(),
        participants: BoundedVec::new(vec![ParticipantData {
            user_id: user("@alice:a.example"),
            role: role("owner"),
            state: Join,
        }])
        .unwrap(),
        policy: Policy::default().to_wire().clone(),
        security: security(),
    };
    assert_eq!(room.to_room_state(), expected);
    assert_eq!(room.info_event().room_state, expected);
    assert!(room.pending_client_removals().is_empty());

    let named = Room::create(
        user("@bob:b.example"),
        RoomIdSource::Localpart("lobby-1".into()),
        Policy::default(),
        security(),
    )
    .unwrap();
    assert_eq!(named.id().as_str(), "!lobby-1:b.example");
}

#[test]
fn create_refuses_bad_localparts_and_unknown_security() {
    let bad = Room::create(
        user("@alice:a.example"),
        RoomIdSource::Localpart("no:colon".into()),
        Policy::default(),
        security(),
    );
    assert!(matches!(bad, Err(CreateError::RoomId(_))), "{bad:?}");
    let empty = Room::create(
        user("@alice:a.example"),
        RoomIdSource::Localpart(String::new()),
        Policy::default(),
        security(),
    );
    assert!(matches!(empty, Err(CreateError::RoomId(_))), "{empty:?}");
    let mut sec = security();
    sec.protocol = Text::new("signal").unwrap();
    let unsupported = Room::create(
        user("@alice:a.example"),
        RoomIdSource::Localpart("r".into()),
        Policy::default(),
        sec,
    );
    assert_eq!(
        unsupported.unwrap_err(),
        CreateError::UnsupportedSecurity("signal".into())
    );
}

#[test]
fn default_policy_is_the_specs_example() {
    let p = Policy::default();
    assert_eq!(p.join_rule(), JoinRule::MembersOnly);
    for action in PolicyAction::ALL {
        assert!(p.allows(Owner, *action));
        assert!(p.allows(Admin, *action));
        assert!(!p.allows(Member, *action));
    }
    let staff = BoundedVec::new(vec![role("owner"), role("admin")]).unwrap();
    let expected = RoomPolicy {
        policy_id: Text::new(POLICY_ID).unwrap(),
        join_rule: JoinRule::MembersOnly,
        permissions: BoundedVec::new(
            PolicyAction::ALL
                .iter()
                .map(|a| Permission {
                    action: *a,
                    roles: staff.clone(),
                })
                .collect(),
        )
        .unwrap(),
    };
    assert_eq!(p.to_wire(), &expected);
    assert_eq!(POLICY_ID, "mimi.roles.v1");
    assert_eq!([Member.rank(), Admin.rank(), Owner.rank()], [0, 1, 2]);
}

#[test]
fn custom_policy_grants_only_what_it_lists() {
    let p = Policy::new(
        JoinRule::Knock,
        &[
            (PolicyAction::Invite, &[Member, Owner]),
            (PolicyAction::Invite, &[Admin]),
        ],
    );
    assert_eq!(p.join_rule(), JoinRule::Knock);
    assert!(p.allows(Member, PolicyAction::Invite) && p.allows(Admin, PolicyAction::Invite));
    assert!(!p.allows(Owner, PolicyAction::Kick));
    let wire = p.to_wire();
    assert_eq!(wire.permissions.len(), 1);
    assert_eq!(
        wire.permissions.as_slice()[0].roles.as_slice(),
        &[role("owner"), role("admin"), role("member")]
    );
    assert_eq!(Policy::from_wire(wire).unwrap(), p);
}

#[test]
fn from_wire_refuses_unknown_and_repeated_entries() {
    let base = Policy::default().to_wire().clone();
    let mut unknown = base.clone();
    unknown.policy_id = Text::new("example.other").unwrap();
    assert_eq!(
        Policy::from_wire(&unknown),
        Err(PolicyError::UnknownPolicy("example.other".into()))
    );

    let mut bad_role = base.clone();
    bad_role.permissions = BoundedVec::new(vec![Permission {
        action: PolicyAction::Kick,
        roles: BoundedVec::new(vec![role("moderator")]).unwrap(),
    }])
    .unwrap();
    assert_eq!(
        Policy::from_wire(&bad_role),
        Err(PolicyError::UnknownRole(role("moderator")))
    );

    let mut dup = base.clone();
    let mut perms = base.permissions.as_slice().to_vec();
    perms.push(perms[0].clone());
    dup.permissions = BoundedVec::new(perms).unwrap();
    assert_eq!(
        Policy::from_wire(&dup),
        Err(PolicyError::DuplicateAction(PolicyAction::Invite))
    );

    let mut dup_role = base;
    dup_role.permissions = BoundedVec::new(vec![Permission {
        action: PolicyAction::Ban,
        roles: BoundedVec::new(vec![role("admin"), role("admin")]).unwrap(),
    }])
    .unwrap();
    assert_eq!(
        Policy::from_wire(&dup_role),
        Err(PolicyError::DuplicateRole {
            action: PolicyAction::Ban,
            role: role("admin")
        })
    );
}

fn state(people: &[(&str, &str, ParticipationState)]) -> RoomState {
    RoomState {
        room_id: "!r:a.example".parse::<RoomId>().unwrap(),
        participants: BoundedVec::new(
            people
                .iter()
                .map(|(u, r, s)| ParticipantData {
                    user_id: user(u),
                    role: role(r),
                    state: *s,
                })
                .collect(),
        )
        .unwrap(),
        policy: Policy::default().to_wire().clone(),
        security: security(),
    }
}

#[test]
fn to_room_state_is_canonical_whatever_the_input_order() {
    let shuffled = state(&[
        ("@zoe:z.example", "member", Join),
        ("@alice:a.example", "owner", Join),
        ("@bob:b.example", "member", Invite),
        ("@mallory:m.example", "member", Ban),
        ("@ken:k.example", "member", Knock),
    ]);
    let room = Room::from_room_state(&shuffled).unwrap();
    let canonical = room.to_room_state();
    let order: Vec<&str> = canonical
        .participants
        .iter()
        .map(|p| p.user_id.as_str())
        .collect();
    assert_eq!(
        order,
        [
            "@alice:a.example",
            "@bob:b.example",
            "@ken:k.example",
            "@mallory:m.example",
            "@zoe:z.example"
        ]
    );
    // Same bytes from the canonical form, and from_room_state ∘ to_room_state is the identity.
    let again = Room::from_room_state(&canonical).unwrap();
    assert_eq!(
        again.to_room_state().encode().unwrap(),
        canonical.encode().unwrap()
    );
    assert_eq!(again, room);
}

#[test]
fn from_room_state_refuses_invalid_states() {
    let dup = state(&[
        ("@alice:a.example", "owner", Join),
        ("@alice:a.example", "member", Invite),
    ]);
    assert_eq!(
        Room::from_room_state(&dup),
        Err(StateError::DuplicateParticipant(user("@alice:a.example")))
    );
    let unknown = state(&[("@alice:a.example", "root", Join)]);
    assert_eq!(
        Room::from_room_state(&unknown),
        Err(StateError::UnknownRole {
            user: user("@alice:a.example"),
            role: role("root")
        })
    );
    let no_owner = state(&[
        ("@alice:a.example", "admin", Join),
        ("@olga:o.example", "owner", Invite),
    ]);
    assert_eq!(
        Room::from_room_state(&no_owner),
        Err(StateError::NoJoinedOwner)
    );
    // Nobody joined: no owner needed (an abandoned room).
    assert!(Room::from_room_state(&state(&[("@olga:o.example", "member", Ban)])).is_ok());
    let mut other_policy = state(&[("@alice:a.example", "owner", Join)]);
    other_policy.policy.policy_id = Text::new("x.y").unwrap();
    assert_eq!(
        Room::from_room_state(&other_policy),
        Err(StateError::Policy(PolicyError::UnknownPolicy("x.y".into())))
    );
    let mut other_security = state(&[("@alice:a.example", "owner", Join)]);
    other_security.security.protocol = Text::new("mls20").unwrap();
    assert_eq!(
        Room::from_room_state(&other_security),
        Err(StateError::UnsupportedSecurity("mls20".into()))
    );
}

#[test]
fn the_participant_list_has_a_limit() {
    use mimi_codec::ParticipationStateChange as C;
    use mimi_codec::limits::MAX_PARTICIPANTS;
    let mut people: Vec<(String, StandardRole, ParticipationState)> =
        vec![("@alice:a.example".to_owned(), Owner, Join)];
    people.extend((1..MAX_PARTICIPANTS).map(|i| (format!("@u{i}:b.example"), Member, Ban)));
    let refs: Vec<(&str, StandardRole, ParticipationState)> = people
        .iter()
        .map(|(u, r, s)| (u.as_str(), *r, *s))
        .collect();
    let mut room = room_of(&Policy::default(), &refs);
    let before = room.clone();
    let invite = room.accept(
        &super::by("@alice:a.example"),
        &super::event("@new:n.example", C::Invite, None),
    );
    assert_eq!(invite.unwrap_err().rule, mimi_signaling::RuleId::Limit1);
    assert_eq!(room, before);
    // Changing an entry already on the list is still possible.
    room.accept(
        &super::by("@alice:a.example"),
        &super::event("@u1:b.example", C::Leave, None),
    )
    .unwrap();
    room.accept(
        &super::by("@alice:a.example"),
        &super::event("@new:n.example", C::Invite, None),
    )
    .unwrap();
}
