//! The rule table: each case is one participation change in a fixed room and its exact
//! outcome. Accepted cases check the operation, the target's new entry and the server
//! change, and that `accept` applied exactly that; refused cases check the rule and that the
//! room did not change.

use mimi_codec::{
    ErrorCode, JoinRule, ParticipationState, ParticipationStateChange as C, PolicyAction, Sender,
    ServerName, UserEvent,
};
use mimi_signaling::{
    Operation, Participant, Policy, Rejection, Room, RuleId, ServerChange, StandardRole,
};

use super::{by, event, room_of, user, with_cert};
use ParticipationState::{Ban, Invite, Join, Knock};
use StandardRole::{Admin, Member, Owner};

#[derive(Clone, Copy, Debug)]
enum Setup {
    /// Members-only, default policy (only admins and owners act).
    Base,
    /// Base plus a second joined owner, `@otto:f.example`.
    TwoOwners,
    /// Base with a public join rule.
    Public,
    /// Base with the knock join rule.
    KnockRoom,
    /// Members-only, every role may invite; nothing else changes.
    MembersInvite,
}

const BASE: &[(&str, StandardRole, ParticipationState)] = &[
    ("@alice:a.example", Owner, Join),
    ("@adam:a.example", Admin, Join),
    ("@ada:a.example", Admin, Join),
    ("@mia:b.example", Member, Join),
    ("@ivan:c.example", Member, Invite),
    ("@ines:c.example", Admin, Invite),
    ("@bill:d.example", Member, Ban),
    ("@kim:e.example", Member, Knock),
];

fn staff_policy(join_rule: JoinRule) -> Policy {
    let staff: &[StandardRole] = &[Owner, Admin];
    let grants: Vec<(PolicyAction, &[StandardRole])> =
        PolicyAction::ALL.iter().map(|a| (*a, staff)).collect();
    Policy::new(join_rule, &grants)
}

fn setup(s: Setup) -> Room {
    match s {
        Setup::Base => room_of(&Policy::default(), BASE),
        Setup::TwoOwners => {
            let mut people = BASE.to_vec();
            people.push(("@otto:f.example", Owner, Join));
            room_of(&Policy::default(), &people)
        }
        Setup::Public => room_of(&staff_policy(JoinRule::Public), BASE),
        Setup::KnockRoom => room_of(&staff_policy(JoinRule::Knock), BASE),
        Setup::MembersInvite => {
            let all: &[StandardRole] = &[Owner, Admin, Member];
            let staff: &[StandardRole] = &[Owner, Admin];
            let mut grants: Vec<(PolicyAction, &[StandardRole])> =
                PolicyAction::ALL.iter().map(|a| (*a, staff)).collect();
            grants.push((PolicyAction::Invite, all));
            room_of(&Policy::new(JoinRule::MembersOnly, &grants), BASE)
        }
    }
}

type Outcome = Result<
    (
        Operation,
        Option<(StandardRole, ParticipationState)>,
        Option<ServerChange>,
    ),
    RuleId,
>;

struct Case {
    name: &'static str,
    setup: Setup,
    sender: Sender,
    event: UserEvent,
    expect: Outcome,
}

fn first(server: &str) -> Option<ServerChange> {
    Some(ServerChange::FirstUserJoined(
        server.parse::<ServerName>().unwrap(),
    ))
}

fn last(server: &str) -> Option<ServerChange> {
    Some(ServerChange::LastUserLeft(
        server.parse::<ServerName>().unwrap(),
    ))
}

fn ok(
    op: Operation,
    after: Option<(StandardRole, ParticipationState)>,
    sc: Option<ServerChange>,
) -> Outcome {
    Ok((op, after, sc))
}

fn case(name: &'static str, setup: Setup, sender: &str, event: UserEvent, expect: Outcome) -> Case {
    Case {
        name,
        setup,
        sender: by(sender),
        event,
        expect,
    }
}

#[rustfmt::skip]
fn table() -> Vec<Case> {
    use Operation as O;
    use Setup::*;
    let alice = "@alice:a.example";
    let adam = "@adam:a.example";
    let mia = "@mia:b.example";
    let ivan = "@ivan:c.example";
    let bill = "@bill:d.example";
    let kim = "@kim:e.example";
    let bob = "@bob:b.example";
    let zed = "@zed:z.example";
    let e = event;
    vec![
        // SIG-SENDER-1
        Case { name: "server sender refused", setup: Base, sender: Sender::Server("a.example".parse().unwrap()),
               event: e(bob, C::Invite, None), expect: Err(RuleId::Sender1) },
        // SIG-EVENT-1
        case("self join with a role", Base, ivan, e(ivan, C::Join, Some("member")), Err(RuleId::Event1)),
        case("leave with a role", Base, mia, e(mia, C::Leave, Some("member")), Err(RuleId::Event1)),
        case("ban with a role", Base, adam, e(bob, C::Ban, Some("member")), Err(RuleId::Event1)),
        case("knock with a role", KnockRoom, bob, e(bob, C::Knock, Some("member")), Err(RuleId::Event1)),
        case("set_role without a role", Base, alice, e(mia, C::SetRole, None), Err(RuleId::Event1)),
        // SIG-EVENT-2
        case("invite with unknown role", Base, alice, e(bob, C::Invite, Some("guest")), Err(RuleId::Event2)),
        case("set_role to unknown role", Base, alice, e(mia, C::SetRole, Some("root")), Err(RuleId::Event2)),
        // SIG-CERT-1
        case("certificate on an invite", Base, alice, with_cert(e(zed, C::Invite, None)), Err(RuleId::Cert1)),
        case("certificate on an add to a participating server", Base, alice, with_cert(e(bob, C::Join, None)), Err(RuleId::Cert1)),
        case("certificate on a leave", Base, mia, with_cert(e(mia, C::Leave, None)), Err(RuleId::Cert1)),
        case("certificate with the first user of a server", Base, ivan, with_cert(e(ivan, C::Join, None)),
             ok(O::Join, Some((Member, Join)), first("c.example"))),
        case("certificate on an add of a new server's user", Base, adam, with_cert(e(zed, C::Join, None)),
             ok(O::Add, Some((Member, Join)), first("z.example"))),
        // Adds
        case("owner adds an absent user", Base, alice, e(bob, C::Join, None), ok(O::Add, Some((Member, Join)), None)),
        case("admin adds with the admin role", Base, adam, e(zed, C::Join, Some("admin")),
             ok(O::Add, Some((Admin, Join)), first("z.example"))),
        case("add an invited user", Base, alice, e(ivan, C::Join, None), ok(O::Add, Some((Member, Join)), first("c.example"))),
        case("add a knocking user", Base, alice, e(kim, C::Join, None), ok(O::Add, Some((Member, Join)), first("e.example"))),
        case("SIG-ADD-1 add a joined user", Base, alice, e(mia, C::Join, None), Err(RuleId::Add1)),
        case("SIG-ADD-1 add a banned user", Base, alice, e(bill, C::Join, None), Err(RuleId::Add1)),
        case("SIG-ADD-2 invited sender adds", Base, ivan, e(bob, C::Join, None), Err(RuleId::Add2)),
        case("SIG-ADD-2 absent sender adds", Base, zed, e(bob, C::Join, None), Err(RuleId::Add2)),
        case("SIG-ADD-3 member adds", Base, mia, e(bob, C::Join, None), Err(RuleId::Add3)),
        case("SIG-ADD-3 members may invite but not add", MembersInvite, mia, e(bob, C::Join, None), Err(RuleId::Add3)),
        case("SIG-RANK-2 admin adds an owner", Base, adam, e(bob, C::Join, Some("owner")), Err(RuleId::Rank2)),
        case("SIG-RANK-1 admin adds an invited admin as member", Base, adam, e("@ines:c.example", C::Join, Some("member")), Err(RuleId::Rank1)),
        // Invites
        case("owner invites an absent user", Base, alice, e(bob, C::Invite, None), ok(O::Invite, Some((Member, Invite)), None)),
        case("owner invites as owner", Base, alice, e(zed, C::Invite, Some("owner")), ok(O::Invite, Some((Owner, Invite)), None)),
        case("invite answers a knock", KnockRoom, adam, e(kim, C::Invite, None), ok(O::Invite, Some((Member, Invite)), None)),
        case("re-invite an invited user", Base, adam, e(ivan, C::Invite, None), ok(O::Invite, Some((Member, Invite)), None)),
        case("member invites when the policy allows", MembersInvite, mia, e(bob, C::Invite, None), ok(O::Invite, Some((Member, Invite)), None)),
        case("SIG-INV-1 invite a joined user", Base, alice, e(mia, C::Invite, None), Err(RuleId::Inv1)),
        case("SIG-INV-1 invite a banned user", Base, alice, e(bill, C::Invite, None), Err(RuleId::Inv1)),
        case("SIG-INV-1 invite oneself", Base, alice, e(alice, C::Invite, None), Err(RuleId::Inv1)),
        case("SIG-INV-2 knocking sender invites", Base, kim, e(bob, C::Invite, None), Err(RuleId::Inv2)),
        case("SIG-INV-2 banned sender invites", Base, bill, e(bob, C::Invite, None), Err(RuleId::Inv2)),
        case("SIG-INV-3 member invites", Base, mia, e(bob, C::Invite, None), Err(RuleId::Inv3)),
        case("SIG-RANK-2 member invites as admin", MembersInvite, mia, e(bob, C::Invite, Some("admin")), Err(RuleId::Rank2)),
        // Joins
        case("invited user joins", Base, ivan, e(ivan, C::Join, None), ok(O::Join, Some((Member, Join)), first("c.example"))),
        case("invited admin joins with the invite's role", Base, "@ines:c.example", e("@ines:c.example", C::Join, None),
             ok(O::Join, Some((Admin, Join)), first("c.example"))),
        case("anyone joins a public room", Public, bob, e(bob, C::Join, None), ok(O::Join, Some((Member, Join)), None)),
        case("knocker joins a public room", Public, kim, e(kim, C::Join, None), ok(O::Join, Some((Member, Join)), first("e.example"))),
        case("SIG-JOIN-1 banned user joins", Base, bill, e(bill, C::Join, None), Err(RuleId::Join1)),
        case("SIG-JOIN-1 banned user joins a public room", Public, bill, e(bill, C::Join, None), Err(RuleId::Join1)),
        case("SIG-JOIN-2 a join for someone else is an add", Base, ivan, e(bob, C::Join, None), Err(RuleId::Add2)),
        case("SIG-JOIN-3 joined user joins", Base, mia, e(mia, C::Join, None), Err(RuleId::Join3)),
        case("SIG-JOIN-4 uninvited user joins", Base, bob, e(bob, C::Join, None), Err(RuleId::Join4)),
        case("SIG-JOIN-4 knocker joins without invite", KnockRoom, kim, e(kim, C::Join, None), Err(RuleId::Join4)),
        // Leaves and declines
        case("member leaves, last of its server", Base, mia, e(mia, C::Leave, None), ok(O::Leave, None, last("b.example"))),
        case("admin leaves", Base, adam, e(adam, C::Leave, None), ok(O::Leave, None, None)),
        case("invited user declines", Base, ivan, e(ivan, C::Leave, None), ok(O::Decline, None, None)),
        case("knocker withdraws", Base, kim, e(kim, C::Leave, None), ok(O::Leave, None, None)),
        case("owner leaves when another owner remains", TwoOwners, alice, e(alice, C::Leave, None), ok(O::Leave, None, None)),
        case("SIG-LEAVE-1 banned user leaves", Base, bill, e(bill, C::Leave, None), Err(RuleId::Leave1)),
        case("SIG-LEAVE-1 absent user leaves", Base, bob, e(bob, C::Leave, None), Err(RuleId::Leave1)),
        case("SIG-OWNER-1 last owner leaves", Base, alice, e(alice, C::Leave, None), Err(RuleId::Owner1)),
        // Kicks
        case("admin kicks a member", Base, adam, e(mia, C::Leave, None), ok(O::Kick, None, last("b.example"))),
        case("owner kicks an admin", Base, alice, e(adam, C::Leave, None), ok(O::Kick, None, None)),
        case("owner kicks an owner", TwoOwners, alice, e("@otto:f.example", C::Leave, None), ok(O::Kick, None, last("f.example"))),
        case("SIG-KICK-1 kick an invited user", Base, adam, e(ivan, C::Leave, None), Err(RuleId::Kick1)),
        case("SIG-KICK-1 kick a knocker", Base, adam, e(kim, C::Leave, None), Err(RuleId::Kick1)),
        case("SIG-KICK-1 kick an absent user", Base, adam, e(bob, C::Leave, None), Err(RuleId::Kick1)),
        case("SIG-KICK-2 invited sender kicks", Base, "@ines:c.example", e(mia, C::Leave, None), Err(RuleId::Kick2)),
        case("SIG-KICK-3 member kicks", Base, mia, e(adam, C::Leave, None), Err(RuleId::Kick3)),
        case("SIG-RANK-1 admin kicks an admin", Base, adam, e("@ada:a.example", C::Leave, None), Err(RuleId::Rank1)),
        case("SIG-RANK-1 admin kicks the owner", Base, adam, e(alice, C::Leave, None), Err(RuleId::Rank1)),
        // Bans
        case("preemptive ban of a user who never joined", Base, adam, e(bob, C::Ban, None), ok(O::Ban, Some((Member, Ban)), None)),
        case("ban a joined member", Base, adam, e(mia, C::Ban, None), ok(O::Ban, Some((Member, Ban)), last("b.example"))),
        case("ban an invited user", Base, adam, e(ivan, C::Ban, None), ok(O::Ban, Some((Member, Ban)), None)),
        case("ban a knocker", Base, adam, e(kim, C::Ban, None), ok(O::Ban, Some((Member, Ban)), None)),
        case("owner bans an admin, who keeps the role", Base, alice, e(adam, C::Ban, None), ok(O::Ban, Some((Admin, Ban)), None)),
        case("SIG-BAN-1 invited sender bans", Base, ivan, e(bob, C::Ban, None), Err(RuleId::Ban1)),
        case("SIG-BAN-2 ban a banned user", Base, adam, e(bill, C::Ban, None), Err(RuleId::Ban2)),
        case("SIG-BAN-3 member bans", Base, mia, e(bob, C::Ban, None), Err(RuleId::Ban3)),
        case("SIG-BAN-4 ban oneself", Base, adam, e(adam, C::Ban, None), Err(RuleId::Ban4)),
        case("SIG-RANK-1 admin bans the owner", Base, adam, e(alice, C::Ban, None), Err(RuleId::Rank1)),
        case("SIG-RANK-1 admin bans an invited admin", Base, adam, e("@ines:c.example", C::Ban, None), Err(RuleId::Rank1)),
        // Unbans
        case("admin unbans", Base, adam, e(bill, C::Leave, None), ok(O::Unban, None, None)),
        case("SIG-UNBAN-1 invited sender unbans", Base, ivan, e(bill, C::Leave, None), Err(RuleId::Unban1)),
        case("SIG-UNBAN-2 member unbans", Base, mia, e(bill, C::Leave, None), Err(RuleId::Unban2)),
        // Knocks
        case("knock in a knock room", KnockRoom, bob, e(bob, C::Knock, None), ok(O::Knock, Some((Member, Knock)), None)),
        case("SIG-KNOCK-1 knock for someone else", KnockRoom, alice, e(bob, C::Knock, None), Err(RuleId::Knock1)),
        case("SIG-KNOCK-2 invited user knocks", KnockRoom, ivan, e(ivan, C::Knock, None), Err(RuleId::Knock2)),
        case("SIG-KNOCK-2 banned user knocks", KnockRoom, bill, e(bill, C::Knock, None), Err(RuleId::Knock2)),
        case("SIG-KNOCK-2 knocker knocks again", KnockRoom, kim, e(kim, C::Knock, None), Err(RuleId::Knock2)),
        case("SIG-KNOCK-3 knock in a members-only room", Base, bob, e(bob, C::Knock, None), Err(RuleId::Knock3)),
        case("SIG-KNOCK-3 knock in a public room", Public, bob, e(bob, C::Knock, None), Err(RuleId::Knock3)),
        // Role changes
        case("owner promotes a member to admin", Base, alice, e(mia, C::SetRole, Some("admin")), ok(O::SetRole, Some((Admin, Join)), None)),
        case("owner makes an admin owner", Base, alice, e(adam, C::SetRole, Some("owner")), ok(O::SetRole, Some((Owner, Join)), None)),
        case("role change of an invited user", Base, alice, e(ivan, C::SetRole, Some("admin")), ok(O::SetRole, Some((Admin, Invite)), None)),
        case("admin demotes itself", Base, adam, e(adam, C::SetRole, Some("member")), ok(O::SetRole, Some((Member, Join)), None)),
        case("owner demotes itself when another owner remains", TwoOwners, alice, e(alice, C::SetRole, Some("admin")),
             ok(O::SetRole, Some((Admin, Join)), None)),
        case("owner demotes another owner", TwoOwners, alice, e("@otto:f.example", C::SetRole, Some("member")),
             ok(O::SetRole, Some((Member, Join)), None)),
        case("SIG-ROLE-1 role of an absent user", Base, alice, e(bob, C::SetRole, Some("admin")), Err(RuleId::Role1)),
        case("SIG-ROLE-1 role of a knocker", Base, alice, e(kim, C::SetRole, Some("admin")), Err(RuleId::Role1)),
        case("SIG-ROLE-1 role of a banned user", Base, alice, e(bill, C::SetRole, Some("admin")), Err(RuleId::Role1)),
        case("SIG-ROLE-2 invited sender changes a role", Base, "@ines:c.example", e(mia, C::SetRole, Some("admin")), Err(RuleId::Role2)),
        case("SIG-ROLE-4 member sets an unchanged role", Base, mia, e(ivan, C::SetRole, Some("member")), Err(RuleId::Role4)),
        case("SIG-ROLE-3 member demotes an admin", Base, mia, e(adam, C::SetRole, Some("member")), Err(RuleId::Role3)),
        case("SIG-ROLE-4 same role", Base, alice, e(mia, C::SetRole, Some("member")), Err(RuleId::Role4)),
        case("SIG-RANK-1 admin demotes an admin", Base, adam, e("@ada:a.example", C::SetRole, Some("member")), Err(RuleId::Rank1)),
        case("SIG-RANK-1 admin demotes the owner", Base, adam, e(alice, C::SetRole, Some("admin")), Err(RuleId::Rank1)),
        case("SIG-RANK-2 admin grants owner", Base, adam, e(mia, C::SetRole, Some("owner")), Err(RuleId::Rank2)),
        case("SIG-RANK-2 admin promotes itself", Base, adam, e(adam, C::SetRole, Some("owner")), Err(RuleId::Rank2)),
        case("SIG-RANK-2 member promotes itself", Base, mia, e(mia, C::SetRole, Some("admin")), Err(RuleId::Rank2)),
        case("SIG-OWNER-1 last owner demotes itself", Base, alice, e(alice, C::SetRole, Some("admin")), Err(RuleId::Owner1)),
    ]
}

#[test]
fn rule_table() {
    let mut failures = Vec::new();
    for c in table() {
        let mut room = setup(c.setup);
        let before = room.clone();
        let checked = room.check(&c.sender, &c.event);
        let accepted = room.accept(&c.sender, &c.event);
        assert_eq!(checked, accepted, "{}: check and accept disagree", c.name);
        let got: Outcome = accepted
            .as_ref()
            .map(|t| {
                (
                    t.operation(),
                    t.after().map(|p| (p.role, p.state)),
                    t.server_change().cloned(),
                )
            })
            .map_err(|r| r.rule);
        if got != c.expect {
            failures.push(format!(
                "{}: expected {:?}, got {:?}",
                c.name, c.expect, got
            ));
            continue;
        }
        match accepted {
            Ok(t) => {
                assert_eq!(
                    t.before(),
                    before.participant(&c.event.target),
                    "{}",
                    c.name
                );
                assert_eq!(room.participant(&c.event.target), t.after(), "{}", c.name);
                assert_eq!(
                    room.participating_servers(),
                    *t.participating_after(),
                    "{}",
                    c.name
                );
                let removes = t.removes_clients();
                assert_eq!(
                    room.pending_client_removals().contains(&c.event.target),
                    removes,
                    "{}",
                    c.name
                );
                // Nothing else moved.
                for (u, p) in before.participants() {
                    if *u != c.event.target {
                        assert_eq!(room.participant(u), Some(p), "{}", c.name);
                    }
                }
            }
            Err(_) => assert_eq!(
                room, before,
                "{}: a refused change altered the room",
                c.name
            ),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_participation_rule_has_a_case() {
    let covered: std::collections::BTreeSet<RuleId> = table()
        .iter()
        .filter_map(|c| c.expect.as_ref().err().copied())
        .collect();
    let participation_rules = RuleId::ALL.iter().filter(|r| {
        !matches!(
            r,
            // Covered elsewhere: history, creation, obligations and limits.
            RuleId::Join2
                | RuleId::Pend1
                | RuleId::Limit1
                | RuleId::Unsigned1
                | RuleId::Leave2
                | RuleId::Create1
                | RuleId::Create2
                | RuleId::Create3
                | RuleId::Create4
                | RuleId::Hist1
                | RuleId::Hist2
                | RuleId::Hist3
                | RuleId::Hist4
                | RuleId::Seq1
                | RuleId::Hash1
                | RuleId::Auth1
        )
    });
    let missing: Vec<_> = participation_rules
        .filter(|r| !covered.contains(r))
        .collect();
    assert!(
        missing.is_empty(),
        "rules without a refusing case: {missing:?}"
    );
}

#[test]
fn rule_ids_are_unique_and_map_to_error_codes() {
    let ids: std::collections::BTreeSet<&str> = RuleId::ALL.iter().map(|r| r.id()).collect();
    assert_eq!(ids.len(), RuleId::ALL.len());
    assert!(RuleId::ALL.iter().all(|r| r.id().starts_with("SIG-")));
    assert_eq!(RuleId::Add1.to_string(), "SIG-ADD-1");

    let add1 = Rejection::new(RuleId::Add1);
    assert_eq!(add1.error_code(), ErrorCode::InvalidParticipationChange);
    let err = add1.to_event_error();
    assert_eq!(err.code, ErrorCode::InvalidParticipationChange);
    assert_eq!(
        err.detail.as_str(),
        "SIG-ADD-1: the target of an add must not be banned or joined"
    );

    let add3 = Rejection::new(RuleId::Add3).to_event_error();
    assert_eq!(add3.code, ErrorCode::ForbiddenByPolicy);
    assert!(add3.detail.as_str().starts_with("SIG-ADD-3: "));
    for policy_rule in [
        RuleId::Inv3,
        RuleId::Join4,
        RuleId::Kick3,
        RuleId::Ban3,
        RuleId::Unban2,
        RuleId::Knock3,
        RuleId::Role3,
        RuleId::Rank1,
        RuleId::Rank2,
    ] {
        assert_eq!(
            Rejection::new(policy_rule).error_code(),
            ErrorCode::ForbiddenByPolicy,
            "{policy_rule}"
        );
    }
    assert_eq!(
        Rejection::new(RuleId::Owner1).error_code(),
        ErrorCode::InvalidParticipationChange
    );
}

#[test]
fn pending_removals_block_rejoin_until_the_commit() {
    let mut room = setup(Setup::Public);
    let mia = user("@mia:b.example");
    let adam = user("@adam:a.example");
    let t = room
        .accept(
            &by("@mia:b.example"),
            &event("@mia:b.example", C::Leave, None),
        )
        .unwrap();
    assert!(t.removes_clients());
    assert_eq!(
        room.pending_client_removals().iter().collect::<Vec<_>>(),
        vec![&mia]
    );
    assert!(!room.may_have_clients(&mia));

    // SIG-PEND-1: neither a join nor an add before the commit removes mia's clients.
    let before = room.clone();
    let join = room.accept(
        &by("@mia:b.example"),
        &event("@mia:b.example", C::Join, None),
    );
    assert_eq!(join.unwrap_err().rule, RuleId::Pend1);
    let add = room.accept(
        &by("@alice:a.example"),
        &event("@mia:b.example", C::Join, None),
    );
    assert_eq!(add.unwrap_err().rule, RuleId::Pend1);
    assert_eq!(room, before);
    // An invite is no membership: allowed.
    room.accept(
        &by("@alice:a.example"),
        &event("@mia:b.example", C::Invite, None),
    )
    .unwrap();

    // A second departure: one commit must remove both.
    room.accept(
        &by("@alice:a.example"),
        &event("@adam:a.example", C::Leave, None),
    )
    .unwrap();
    let both: std::collections::BTreeSet<_> = [adam.clone(), mia.clone()].into();
    assert_eq!(room.pending_client_removals(), &both);
    let still = [mia.clone(), user("@alice:a.example")].into();
    let before = room.clone();
    assert_eq!(
        room.commit_applied(&still).unwrap_err().users,
        vec![mia.clone()]
    );
    assert_eq!(room, before);
    room.commit_applied(&[user("@alice:a.example")].into())
        .unwrap();
    assert!(room.pending_client_removals().is_empty());

    // Now the invited mia may join again.
    let t = room
        .accept(
            &by("@mia:b.example"),
            &event("@mia:b.example", C::Join, None),
        )
        .unwrap();
    assert_eq!(
        t.after(),
        Some(Participant {
            role: Member,
            state: Join
        })
    );
    assert!(room.may_have_clients(&mia));
}

#[test]
fn clients_removed_clears_one_user() {
    let mut room = setup(Setup::Base);
    room.accept(
        &by("@adam:a.example"),
        &event("@mia:b.example", C::Ban, None),
    )
    .unwrap();
    room.accept(
        &by("@adam:a.example"),
        &event("@ada:a.example", C::Leave, None),
    )
    .unwrap_err();
    room.accept(
        &by("@ada:a.example"),
        &event("@ada:a.example", C::Leave, None),
    )
    .unwrap();
    assert!(room.clients_removed(&user("@mia:b.example")));
    assert!(!room.clients_removed(&user("@mia:b.example")));
    assert_eq!(
        room.pending_client_removals().iter().collect::<Vec<_>>(),
        vec![&user("@ada:a.example")]
    );
    // A decline or a knock withdrawal leaves no clients to remove.
    let t = room
        .accept(
            &by("@ivan:c.example"),
            &event("@ivan:c.example", C::Leave, None),
        )
        .unwrap();
    assert!(!t.removes_clients());
}

#[test]
fn fanout_targets_add_the_named_server() {
    let room = setup(Setup::Base);
    let servers = |list: &[&str]| {
        list.iter()
            .map(|s| s.parse::<ServerName>().unwrap())
            .collect()
    };
    let participating: std::collections::BTreeSet<ServerName> =
        servers(&["a.example", "b.example"]);
    assert_eq!(room.participating_servers(), participating);

    let invite = room
        .check(
            &by("@alice:a.example"),
            &event("@zed:z.example", C::Invite, None),
        )
        .unwrap();
    assert_eq!(
        invite.fanout_targets(),
        servers(&["a.example", "b.example", "z.example"])
    );
    let join = room
        .check(
            &by("@ivan:c.example"),
            &event("@ivan:c.example", C::Join, None),
        )
        .unwrap();
    assert_eq!(
        join.fanout_targets(),
        servers(&["a.example", "b.example", "c.example"])
    );
    let kick = room
        .check(
            &by("@adam:a.example"),
            &event("@mia:b.example", C::Leave, None),
        )
        .unwrap();
    assert_eq!(kick.participating_after(), &servers(&["a.example"]));
    assert_eq!(kick.fanout_targets(), servers(&["a.example", "b.example"]));
    let ban = room
        .check(
            &by("@adam:a.example"),
            &event("@bill:d.example", C::Leave, None),
        )
        .unwrap();
    assert_eq!(
        ban.fanout_targets(),
        servers(&["a.example", "b.example", "d.example"])
    );
    let preemptive = room
        .check(&by("@adam:a.example"), &event("@x:x.example", C::Ban, None))
        .unwrap();
    assert_eq!(
        preemptive.fanout_targets(),
        servers(&["a.example", "b.example", "x.example"])
    );
}
