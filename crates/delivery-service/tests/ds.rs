//! mimi-ds at library level: the spec's example flow with real openmls clients (mimi-e2e)
//! for three users on three servers — a.example is the hub, b.example and c.example follow —
//! every request, response and fanned-out event going through its wire encoding, and the
//! refusals of each DS rule with its exact error.

// Helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use mimi_codec::mls_ids::DEFAULT_CIPHER_SUITE;
use mimi_codec::{
    BoundedVec, ClientId, CommitRequest, CreateGroupRequest, ErrorCode, Event, EventResponse,
    FanoutEvent, GroupInfoResponse, KeyPackageEntry, KeyPackageType, KeyPackagesResponse,
    MessageBody, MimiMessage, MlsBytes, ParticipationState, ParticipationStateChange,
    ProposalRequest, RoomId, RoomState, SecurityConfig, SendMessageRequest, Sender, ServerName,
    Text, UserEvent, UserId, Wire,
};
use mimi_ds::{
    DsError, DsRule, FollowerError, FollowerOutcome, FollowerRoom, HubAccepted, HubGroup, HubRoom,
    validate_key_package,
};
use mimi_e2e::{
    CommitPlan, E2eError, ExternalSender, MessageSender, MlsClient, Processed, ProposalSummary,
    RemoveTarget,
};
use mimi_signaling::{Hub, LoggedEvent, Policy, RoomIdSource, VerifyError, hash_form};
use openmls_basic_credential::SignatureKeyPair;

const HUB: &str = "a.example";
const ALICE: &str = "@alice:a.example";
const ALICE_LAPTOP: &str = "@alice:a.example#laptop";
const BOB: &str = "@bob:b.example";
const BOB_PHONE: &str = "@bob:b.example#phone";
const BOB_TABLET: &str = "@bob:b.example#tablet";
const CATHY: &str = "@cathy:c.example";
const CATHY_DESK: &str = "@cathy:c.example#desk";

fn cid(s: &str) -> ClientId {
    s.parse().unwrap()
}

fn uid(s: &str) -> UserId {
    s.parse().unwrap()
}

fn server(s: &str) -> ServerName {
    s.parse().unwrap()
}

fn user(s: &str) -> Sender {
    Sender::User(uid(s))
}

fn servers(names: &[&str]) -> BTreeSet<ServerName> {
    names.iter().map(|s| server(s)).collect()
}

fn mls(bytes: Vec<u8>) -> MlsBytes {
    MlsBytes::new(bytes).unwrap()
}

fn security() -> SecurityConfig {
    SecurityConfig {
        protocol: Text::new("mls10").unwrap(),
        cipher_suite: DEFAULT_CIPHER_SUITE,
    }
}

/// A server's MLS identity as external sender (the hub's, or a follower's certificate).
struct ServerKeys {
    signer: SignatureKeyPair,
    sender: ExternalSender,
}

fn server_keys(name: &str) -> ServerKeys {
    let signer = SignatureKeyPair::new(mimi_e2e::CIPHERSUITE.signature_algorithm()).unwrap();
    let sender = mimi_e2e::external_sender(&server(name), signer.public());
    ServerKeys { signer, sender }
}

fn user_event(
    target: &str,
    change: ParticipationStateChange,
    follower: Option<&ServerKeys>,
) -> UserEvent {
    UserEvent {
        target: uid(target),
        change,
        reason: Text::new("").unwrap(),
        follower_server_certificate: follower
            .map(|f| mimi_e2e::follower_certificate(&f.sender).unwrap()),
        role: None,
    }
}

/// A request as the hub receives it: framed, encoded, decoded.
fn request_via_wire(room: &RoomId, sender: &Sender, event: Event) -> Event {
    let message = MimiMessage::new(room.clone(), sender.clone(), MessageBody::Event(event));
    let decoded = MimiMessage::decode(&message.encode().unwrap()).unwrap();
    assert_eq!(decoded, message);
    match decoded.body {
        MessageBody::Event(e) => e,
        other => panic!("not an event: {other:?}"),
    }
}

/// A response as its requester receives it.
fn response_via_wire(room: &RoomId, response: EventResponse) -> EventResponse {
    let message = MimiMessage::new(
        room.clone(),
        Sender::Server(server(HUB)),
        MessageBody::Response(response),
    );
    match MimiMessage::decode(&message.encode().unwrap())
        .unwrap()
        .body
    {
        MessageBody::Response(r) => r,
        other => panic!("not a response: {other:?}"),
    }
}

/// A logged event as a follower receives it: with the Welcomes only if it gets them.
fn fanout_via_wire(room: &RoomId, logged: &LoggedEvent, welcomes: bool) -> (Sender, FanoutEvent) {
    let fanout = if welcomes {
        logged.fanout.clone()
    } else {
        hash_form(&logged.fanout)
    };
    let message = MimiMessage::new(
        room.clone(),
        logged.sender.clone(),
        MessageBody::Fanout(fanout),
    );
    let decoded = MimiMessage::decode(&message.encode().unwrap()).unwrap();
    match decoded.body {
        MessageBody::Fanout(f) => (decoded.sender, f),
        other => panic!("not a fanout: {other:?}"),
    }
}

fn commit_of(logged: &LoggedEvent) -> &CommitRequest {
    match &logged.fanout.event {
        Event::DsCommit(c) => c,
        other => panic!("not a commit: {other:?}"),
    }
}

fn assert_refused(err: &DsError, rule: DsRule, code: ErrorCode) {
    assert!(
        matches!(err, DsError::Refused { rule: r, .. } if *r == rule),
        "expected {rule}, got {err:?}"
    );
    assert_eq!(err.rule(), Some(rule));
    assert_eq!(err.to_event_error().code, code, "{err:?}");
    assert!(
        err.to_event_error().detail.as_str().starts_with(rule.id()),
        "{err}"
    );
}

/// Flip a byte inside the signature of a member's PublicMessage (a proposal, or a commit
/// with its confirmation tag): `signature<V> [confirmation_tag<V>] membership_tag<V>`, the
/// MACs 32 bytes and the Ed25519 signature 64.
fn forge_signature(message: &[u8], commit: bool) -> Vec<u8> {
    let mut bytes = message.to_vec();
    let len = bytes.len();
    let tags = if commit { 66 } else { 33 };
    assert_eq!(bytes[len - 33], 32, "membership tag length");
    if commit {
        assert_eq!(bytes[len - 66], 32, "confirmation tag length");
    }
    assert_eq!(bytes[len - tags - 65], 64, "signature length");
    bytes[len - tags - 10] ^= 0x01;
    bytes
}

/// The hub, the followers and every client of the example flow.
/// How many MLS handshake messages (proposals, commits) an event carries: what the hub
/// verifies with openmls.
fn handshake_messages(event: &Event) -> u64 {
    match event {
        Event::RoomUser(_) | Event::DsCommit(_) => 1,
        Event::DsProposal(request) => request.proposals.len() as u64,
        _ => 0,
    }
}

struct Flow {
    _dir: tempfile::TempDir,
    room_id: RoomId,
    hub_keys: ServerKeys,
    b_keys: ServerKeys,
    c_keys: ServerKeys,
    hub: HubRoom,
    followers: BTreeMap<ServerName, FollowerRoom>,
    alice: MlsClient,
    bob: MlsClient,
    bob2: MlsClient,
    cathy: MlsClient,
}

impl Flow {
    /// Alice creates the room at her server, the hub; the hub logs the group as sequence 1.
    fn new(localpart: &str) -> Flow {
        Flow::with_policy(localpart, Policy::default())
    }

    /// [`Flow::new`] with another room policy.
    fn with_policy(localpart: &str, policy: Policy) -> Flow {
        let dir = tempfile::tempdir().unwrap();
        let open = |name: &str, client: &str| MlsClient::open(&dir.path().join(name), cid(client));
        let mut alice = open("alice", ALICE_LAPTOP).unwrap();
        let bob = open("bob", BOB_PHONE).unwrap();
        let bob2 = open("bob2", BOB_TABLET).unwrap();
        let cathy = open("cathy", CATHY_DESK).unwrap();
        let hub_keys = server_keys(HUB);

        let hub = Hub::create(
            uid(ALICE),
            RoomIdSource::Localpart(localpart.into()),
            policy,
            security(),
        )
        .unwrap();
        let room_id = hub.room().id().clone();
        let initial = hub.room().to_room_state();
        let created = alice
            .create_room(&initial, hub_keys.sender.clone())
            .unwrap();
        let request = match request_via_wire(
            &room_id,
            &user(ALICE),
            Event::DsCreateGroup(CreateGroupRequest {
                group_info: mls(created.group_info),
                ratchet_tree: mls(created.ratchet_tree),
            }),
        ) {
            Event::DsCreateGroup(r) => r,
            other => panic!("{other:?}"),
        };
        let (hub, logged) =
            HubRoom::create(hub, server(HUB), request.clone(), &hub_keys.sender).unwrap();
        assert_eq!(logged.fanout.sequence, 1);
        assert_eq!(logged.sender, user(ALICE));
        assert_eq!(logged.fanout.event, Event::DsCreateGroup(request));
        assert_eq!(logged.fanout.auth_events.as_slice(), &[0]);
        assert_eq!(hub.hub().history().events().len(), 2);
        assert_eq!(hub.group().epoch(), 0);
        assert_eq!(hub.group().members(), vec![(0, cid(ALICE_LAPTOP))]);
        assert_eq!(hub.group().external_senders(), vec![server(HUB)]);
        assert_eq!(hub.group().room_state().unwrap(), initial);
        assert_eq!(hub.group().queued_count(), 0);

        Flow {
            _dir: dir,
            room_id,
            hub_keys,
            b_keys: server_keys("b.example"),
            c_keys: server_keys("c.example"),
            hub,
            followers: BTreeMap::new(),
            alice,
            bob,
            bob2,
            cathy,
        }
    }

    fn state(&self) -> RoomState {
        self.hub.hub().room().to_room_state()
    }

    /// The room state after `changes` from `sender`, as a client computes it for its
    /// commit's RoomState extension (with mimi-signaling).
    fn state_after(&self, sender: &str, changes: &[UserEvent]) -> RoomState {
        let mut room = self.hub.hub().room().clone();
        room.accept_all(&user(sender), changes).unwrap();
        room.to_room_state()
    }

    /// The group's external senders without `server`'s.
    fn senders_without(&mut self, gone: &str) -> Vec<ExternalSender> {
        self.alice
            .external_senders(&self.room_id)
            .unwrap()
            .into_iter()
            .filter(|s| mimi_e2e::server_of_external_sender(s).unwrap() != server(gone))
            .collect()
    }

    /// Everything the hub's state consists of, to show that a refusal changed nothing.
    fn snapshot(&self) -> (usize, Vec<u8>, RoomState, BTreeSet<UserId>, Vec<u8>) {
        let hub = self.hub.hub();
        (
            hub.history().events().len(),
            hub.history().last_hash().unwrap().to_vec(),
            hub.room().to_room_state(),
            hub.room().pending_client_removals().clone(),
            self.hub.group().to_bytes().unwrap(),
        )
    }

    /// Submit an event to the hub; on acceptance fan it out to the followers.
    fn submit(&mut self, sender: &str, event: Event) -> Result<HubAccepted, DsError> {
        let sender = user(sender);
        let event = request_via_wire(&self.room_id, &sender, event);
        let before = self.snapshot();
        let handshakes = handshake_messages(&event);
        let verified_before = self.hub.group().messages_verified();
        let result = match self.hub.check(sender, event) {
            Ok(checked) => {
                // The check changed nothing.
                assert_eq!(self.snapshot(), before, "a check changed the hub");
                assert!(self.hub.is_current(&checked));
                let state_after = checked.room_state_after();
                let transitions = checked.transitions().to_vec();
                self.hub.accept(checked).inspect(|accepted| {
                    // What the check announced is what accepting did.
                    assert_eq!(self.state(), state_after);
                    assert_eq!(accepted.logged.changes.len(), transitions.len());
                })
            }
            Err(e) => Err(e),
        };
        // Every handshake message of the event was verified by openmls exactly once (by
        // the check; accept merges or queues what the check staged).
        if result.is_ok() {
            assert_eq!(
                self.hub.group().messages_verified() - verified_before,
                handshakes,
                "each handshake message is verified once"
            );
        }
        match result {
            Ok(accepted) => {
                self.deliver(&accepted);
                Ok(accepted)
            }
            Err(e) => {
                assert_eq!(self.snapshot(), before, "a refusal changed the hub: {e}");
                Err(e)
            }
        }
    }

    fn accept(&mut self, sender: &str, event: Event) -> HubAccepted {
        self.submit(sender, event).unwrap()
    }

    fn refuse(&mut self, sender: &str, event: Event) -> DsError {
        self.submit(sender, event).unwrap_err()
    }

    fn commit(&mut self, sender: &str, bundle: &CommitRequest) -> Result<HubAccepted, DsError> {
        self.submit(sender, Event::DsCommit(bundle.clone()))
    }

    /// Fan an accepted event out to every follower server in its plan. A server that gets
    /// the room's events for the first time starts from the backlog (sequence 0).
    fn deliver(&mut self, accepted: &HubAccepted) {
        let sequence = accepted.logged.fanout.sequence;
        assert_eq!(
            self.hub.hub().history().get(sequence),
            Some(&accepted.logged)
        );
        for to in accepted.plan.destinations() {
            if to == server(HUB) {
                continue;
            }
            if !self.followers.contains_key(&to) {
                let events = self.hub.hub().history().events();
                let (sender, create) = fanout_via_wire(&self.room_id, &events[0], false);
                let mut follower = FollowerRoom::new(&sender, &create).unwrap();
                for e in &events[1..sequence as usize] {
                    let (sender, fanout) = fanout_via_wire(&self.room_id, e, false);
                    assert_eq!(
                        follower.receive(&sender, &fanout).unwrap(),
                        FollowerOutcome::Applied {
                            sequence: e.fanout.sequence
                        }
                    );
                }
                self.followers.insert(to.clone(), follower);
            }
            let welcomes = accepted.plan.welcomes_to.contains_key(&to);
            let (sender, fanout) = fanout_via_wire(&self.room_id, &accepted.logged, welcomes);
            let follower = self.followers.get_mut(&to).unwrap();
            assert_eq!(
                follower.receive(&sender, &fanout).unwrap(),
                FollowerOutcome::Applied { sequence }
            );
            // At-least-once delivery: the same event again is a duplicate.
            assert_eq!(
                follower.receive(&sender, &fanout).unwrap(),
                FollowerOutcome::Duplicate
            );
        }
        self.assert_replicas();
    }

    /// Every follower of a participating server holds the hub's room, history and group.
    fn assert_replicas(&self) {
        let hub = self.hub.hub();
        for (name, follower) in &self.followers {
            if !hub.room().participating_servers().contains(name) {
                continue;
            }
            let replica = follower.follower();
            assert_eq!(replica.room(), hub.room(), "room at {name}");
            assert_eq!(
                replica.history().last_hash(),
                hub.history().last_hash(),
                "history at {name}"
            );
            let group = follower.group().unwrap();
            assert_eq!(group.epoch(), self.hub.group().epoch(), "epoch at {name}");
            assert_eq!(group.members(), self.hub.group().members(), "{name}");
            assert_eq!(group.room_state(), self.hub.group().room_state(), "{name}");
            assert_eq!(
                group.external_senders(),
                self.hub.group().external_senders()
            );
            assert_eq!(group.queued_count(), self.hub.group().queued_count());
        }
    }

    fn follower(&self, name: &str) -> &FollowerRoom {
        &self.followers[&server(name)]
    }

    /// Bob's key package, published and validated at his server, then claimed by Alice
    /// (a `ds.fetch_key_packages` response through the wire).
    fn claim_key_package(&mut self, who: &str) -> Vec<u8> {
        let client = match who {
            BOB_PHONE => &mut self.bob,
            BOB_TABLET => &mut self.bob2,
            CATHY_DESK => &mut self.cathy,
            other => panic!("{other}"),
        };
        let kp = client.key_package(false).unwrap();
        let validated = validate_key_package(&kp, &cid(who)).unwrap();
        assert_eq!(validated.client, cid(who));
        assert_eq!(validated.cipher_suite, DEFAULT_CIPHER_SUITE);
        assert!(!validated.last_resort);
        assert_eq!(validated.bytes, kp);
        assert_eq!(validated.hash_ref.len(), 32);
        let response = response_via_wire(
            &self.room_id,
            EventResponse::KeyPackages(KeyPackagesResponse {
                key_packages: BoundedVec::new(vec![KeyPackageEntry {
                    client: cid(who),
                    kind: KeyPackageType::MlsKeyPackage,
                    key_package: mls(validated.bytes),
                }])
                .unwrap(),
            }),
        );
        match response {
            EventResponse::KeyPackages(r) => {
                r.key_packages.as_slice()[0].key_package.as_slice().to_vec()
            }
            other => panic!("{other:?}"),
        }
    }

    /// `ds.fetch_group_info` through the wire.
    fn fetch_group_info(&self, sender: &str) -> GroupInfoResponse {
        let request = request_via_wire(
            &self.room_id,
            &user(sender),
            Event::DsFetchGroupInfo(mimi_codec::GroupInfoRequest),
        );
        assert_eq!(
            request,
            Event::DsFetchGroupInfo(mimi_codec::GroupInfoRequest)
        );
        let response = self.hub.group_info(&user(sender)).unwrap();
        match response_via_wire(&self.room_id, response) {
            EventResponse::GroupInfo(r) => r,
            other => panic!("{other:?}"),
        }
    }

    /// Alice adds `target`'s client `client` in one commit: the add UserEvent (with the
    /// follower certificate of the target's server), the Add and the new RoomState.
    fn alice_adds(&mut self, target: &str, client: &str) -> (HubAccepted, CommitRequest) {
        let kp = self.claim_key_package(client);
        let keys = if target == BOB {
            &self.b_keys
        } else {
            &self.c_keys
        };
        let add = user_event(target, ParticipationStateChange::Join, Some(keys));
        let next = self.state_after(ALICE, std::slice::from_ref(&add));
        let bundle = self
            .alice
            .commit(
                &self.room_id,
                CommitPlan {
                    user_events: vec![add.clone()],
                    adds: vec![kp],
                    new_room_state: Some(next.clone()),
                    ..CommitPlan::default()
                },
            )
            .unwrap();
        assert_eq!(bundle.welcomes.len(), 1);
        let accepted = self.commit(ALICE, &bundle).unwrap();
        self.alice.merge_pending_commit(&self.room_id).unwrap();
        assert_eq!(accepted.logged.changes, vec![add]);
        assert_eq!(self.state(), next);
        assert_eq!(self.hub.group().room_state().unwrap(), next);
        assert_eq!(
            accepted.plan.welcomes_to,
            BTreeMap::from([(
                uid(target).server(),
                vec![bundle.welcomes.as_slice()[0].clone()]
            )])
        );
        (accepted, bundle)
    }

    /// A room with Alice and Bob (one client each), Bob joined from the Welcome.
    fn with_alice_and_bob(localpart: &str) -> Flow {
        let mut flow = Flow::new(localpart);
        let (_, bundle) = flow.alice_adds(BOB, BOB_PHONE);
        let room = flow
            .bob
            .join_from_welcome(bundle.welcomes.as_slice()[0].as_slice())
            .unwrap();
        assert_eq!(room, flow.room_id);
        flow
    }

    /// Bob's second client joins by external commit from the hub's group info.
    fn bob_adds_second_client(&mut self) -> HubAccepted {
        let info = self.fetch_group_info(BOB);
        assert!(info.pending_proposals.is_empty());
        let (room, bundle) = self
            .bob2
            .join_by_external_commit(
                info.group_info.as_slice(),
                Some(info.ratchet_tree.as_slice()),
            )
            .unwrap();
        assert_eq!(room, self.room_id);
        let accepted = self.commit(BOB, &bundle).unwrap();
        for client in [&mut self.alice, &mut self.bob] {
            match client.process(&room, bundle.commit.as_slice()).unwrap() {
                Processed::Commit(summary) => {
                    assert_eq!(summary.committer, MessageSender::NewMember(cid(BOB_TABLET)));
                    assert_eq!(summary.epoch, self.hub.group().epoch());
                    assert!(summary.added.is_empty());
                    assert!(summary.removed.is_empty());
                }
                other => panic!("{other:?}"),
            }
        }
        accepted
    }

    /// `sender` sends `text`; each of `readers` decrypts it. Returns the accepted event.
    fn message(&mut self, sender: &str, text: &[u8], readers: &[&str]) -> HubAccepted {
        let room = self.room_id.clone();
        let from = self.client(sender).client_id().clone();
        let ciphertext = self.client(sender).encrypt(&room, text).unwrap();
        let accepted = self.accept(
            from.user().as_ref(),
            Event::DsSendMessage(SendMessageRequest {
                application_message: mls(ciphertext.clone()),
            }),
        );
        assert!(accepted.logged.changes.is_empty());
        assert!(accepted.plan.welcomes_to.is_empty());
        for reader in readers {
            assert_eq!(
                self.client(reader).process(&room, &ciphertext).unwrap(),
                Processed::Application {
                    sender: from.clone(),
                    plaintext: text.to_vec()
                },
                "{reader}"
            );
        }
        accepted
    }

    fn client(&mut self, client: &str) -> &mut MlsClient {
        match client {
            ALICE_LAPTOP => &mut self.alice,
            BOB_PHONE => &mut self.bob,
            BOB_TABLET => &mut self.bob2,
            CATHY_DESK => &mut self.cathy,
            other => panic!("{other}"),
        }
    }

    /// `readers` process a commit from the hub; returns their summaries' epoch.
    fn process_commit(&mut self, bundle: &CommitRequest, readers: &[&str]) {
        let room = self.room_id.clone();
        let epoch = self.hub.group().epoch();
        for reader in readers {
            match self
                .client(reader)
                .process(&room, bundle.commit.as_slice())
                .unwrap()
            {
                Processed::Commit(summary) => {
                    assert_eq!(summary.epoch, epoch, "{reader}");
                    assert_eq!(
                        summary.room_state,
                        self.hub.group().room_state().unwrap(),
                        "{reader}"
                    );
                }
                other => panic!("{reader}: {other:?}"),
            }
        }
    }
}

#[test]
fn example_flow_create_add_message_external_join_add_remove() {
    let mut flow = Flow::new("flow");
    let room = flow.room_id.clone();

    // Alice adds Bob and his phone in one commit; Bob joins from the Welcome.
    let (accepted, bundle) = flow.alice_adds(BOB, BOB_PHONE);
    assert_eq!(accepted.logged.fanout.sequence, 2);
    assert_eq!(accepted.plan.event_to, servers(&[HUB, "b.example"]));
    assert!(flow.hub.hub().room().is_joined(&uid(BOB)));
    assert_eq!(flow.hub.group().epoch(), 1);
    assert_eq!(
        flow.hub.group().members(),
        vec![(0, cid(ALICE_LAPTOP)), (1, cid(BOB_PHONE))]
    );
    assert_eq!(
        flow.hub.group().external_senders(),
        vec![server(HUB), server("b.example")]
    );
    // b.example got the backlog from sequence 0 and the commit with its Welcome.
    assert_eq!(
        flow.follower("b.example")
            .follower()
            .history()
            .next_sequence(),
        3
    );
    assert_eq!(
        flow.bob
            .join_from_welcome(bundle.welcomes.as_slice()[0].as_slice())
            .unwrap(),
        room
    );
    assert_eq!(flow.bob.epoch(&room).unwrap(), 1);
    assert_eq!(flow.bob.room_state(&room).unwrap(), flow.state());

    // Messages both ways.
    let sent = flow.message(ALICE_LAPTOP, b"hi bob", &[BOB_PHONE]);
    assert_eq!(sent.plan.event_to, servers(&[HUB, "b.example"]));
    let sent = flow.message(BOB_PHONE, b"hi alice", &[ALICE_LAPTOP]);
    assert_eq!(sent.plan.event_to, servers(&[HUB, "b.example"]));

    // Bob's tablet joins by external commit from the hub's group info.
    let accepted = flow.bob_adds_second_client();
    assert_eq!(accepted.plan.event_to, servers(&[HUB, "b.example"]));
    assert!(accepted.plan.welcomes_to.is_empty());
    assert!(accepted.logged.changes.is_empty());
    assert_eq!(flow.hub.group().epoch(), 2);
    assert_eq!(
        flow.hub.group().members(),
        vec![
            (0, cid(ALICE_LAPTOP)),
            (1, cid(BOB_PHONE)),
            (2, cid(BOB_TABLET))
        ]
    );
    // The joiner's GroupInfo is what the hub now serves.
    assert_eq!(
        flow.fetch_group_info(ALICE).group_info,
        commit_of(&accepted.logged).group_info
    );
    flow.message(BOB_TABLET, b"from the tablet", &[ALICE_LAPTOP, BOB_PHONE]);

    // Alice adds Cathy; c.example starts from the backlog.
    let (accepted, bundle) = flow.alice_adds(CATHY, CATHY_DESK);
    assert_eq!(
        accepted.plan.event_to,
        servers(&[HUB, "b.example", "c.example"])
    );
    flow.process_commit(&bundle, &[BOB_PHONE, BOB_TABLET]);
    assert_eq!(
        flow.cathy
            .join_from_welcome(bundle.welcomes.as_slice()[0].as_slice())
            .unwrap(),
        room
    );
    assert_eq!(flow.hub.group().epoch(), 3);
    assert_eq!(
        flow.hub.group().members(),
        vec![
            (0, cid(ALICE_LAPTOP)),
            (1, cid(BOB_PHONE)),
            (2, cid(BOB_TABLET)),
            (3, cid(CATHY_DESK))
        ]
    );
    assert_eq!(
        flow.hub.group().external_senders(),
        vec![server(HUB), server("b.example"), server("c.example")]
    );
    assert_eq!(
        flow.follower("c.example")
            .follower()
            .history()
            .next_sequence(),
        flow.hub.hub().history().next_sequence()
    );
    let sent = flow.message(
        CATHY_DESK,
        b"hello all",
        &[ALICE_LAPTOP, BOB_PHONE, BOB_TABLET],
    );
    assert_eq!(
        sent.plan.event_to,
        servers(&[HUB, "b.example", "c.example"])
    );

    // Alice kicks Bob: the kick, the removal of both his clients, the new RoomState and
    // external_senders without b.example, in one commit.
    let kick = user_event(BOB, ParticipationStateChange::Leave, None);
    let next = flow.state_after(ALICE, std::slice::from_ref(&kick));
    let senders = flow.senders_without("b.example");
    let bundle = flow
        .alice
        .commit(
            &room,
            CommitPlan {
                user_events: vec![kick.clone()],
                removes: vec![RemoveTarget::AllClientsOf(uid(BOB))],
                new_room_state: Some(next.clone()),
                external_senders: Some(senders),
                ..CommitPlan::default()
            },
        )
        .unwrap();
    assert!(bundle.welcomes.is_empty());
    let accepted = flow.commit(ALICE, &bundle).unwrap();
    flow.alice.merge_pending_commit(&room).unwrap();
    // The kicked user's server gets the commit that removes him, and nothing after.
    assert_eq!(
        accepted.plan.event_to,
        servers(&[HUB, "b.example", "c.example"])
    );
    assert!(accepted.plan.welcomes_to.is_empty());
    assert_eq!(accepted.logged.changes, vec![kick]);
    assert_eq!(flow.state(), next);
    assert_eq!(flow.hub.hub().room().participant(&uid(BOB)), None);
    assert!(flow.hub.hub().room().pending_client_removals().is_empty());
    assert_eq!(flow.hub.group().epoch(), 4);
    assert_eq!(
        flow.hub.group().members(),
        vec![(0, cid(ALICE_LAPTOP)), (3, cid(CATHY_DESK))]
    );
    assert_eq!(
        flow.hub.group().external_senders(),
        vec![server(HUB), server("c.example")]
    );
    let b = flow.follower("b.example");
    assert_eq!(b.follower().room(), flow.hub.hub().room());
    assert_eq!(b.group().unwrap().epoch(), 4);
    assert_eq!(b.group().unwrap().members(), flow.hub.group().members());
    flow.process_commit(&bundle, &[CATHY_DESK]);
    for removed in [BOB_PHONE, BOB_TABLET] {
        match flow
            .client(removed)
            .process(&room, bundle.commit.as_slice())
            .unwrap()
        {
            Processed::Commit(summary) => {
                assert!(summary.self_removed, "{removed}");
                assert_eq!(summary.removed, vec![cid(BOB_PHONE), cid(BOB_TABLET)]);
            }
            other => panic!("{other:?}"),
        }
    }

    // New messages reach Cathy, not b.example, and Bob's clients cannot read them.
    let ciphertext = flow.alice.encrypt(&room, b"bob is gone").unwrap();
    let sent = flow.accept(
        ALICE,
        Event::DsSendMessage(SendMessageRequest {
            application_message: mls(ciphertext.clone()),
        }),
    );
    assert_eq!(sent.plan.event_to, servers(&[HUB, "c.example"]));
    assert_eq!(
        flow.cathy.process(&room, &ciphertext).unwrap(),
        Processed::Application {
            sender: cid(ALICE_LAPTOP),
            plaintext: b"bob is gone".to_vec()
        }
    );
    for removed in [BOB_PHONE, BOB_TABLET] {
        assert!(
            matches!(
                flow.client(removed).process(&room, &ciphertext),
                Err(E2eError::Evicted)
            ),
            "{removed}"
        );
    }
    // b.example stopped at the kick; c.example is in step with the hub.
    assert_eq!(
        flow.follower("b.example")
            .follower()
            .history()
            .next_sequence(),
        accepted.logged.fanout.sequence + 1
    );
    assert_eq!(
        flow.follower("c.example").follower().history().last_hash(),
        flow.hub.hub().history().last_hash()
    );
    // And Bob may no longer fetch the group info.
    assert_refused(
        &flow.hub.group_info(&user(BOB)).unwrap_err(),
        DsRule::Gi2,
        ErrorCode::ForbiddenByPolicy,
    );
}

#[test]
fn a_commit_must_include_every_queued_proposal_and_external_commits_wait() {
    let mut flow = Flow::with_alice_and_bob("queue");
    let room = flow.room_id.clone();

    // Alice invites Cathy by a standalone proposal: queued at the hub.
    let invite = user_event(CATHY, ParticipationStateChange::Invite, None);
    let proposal = flow.alice.propose_user_event(&room, &invite).unwrap();
    let accepted = flow.accept(
        ALICE,
        Event::DsProposal(ProposalRequest {
            proposals: BoundedVec::new(vec![mls(proposal.clone())]).unwrap(),
        }),
    );
    assert_eq!(accepted.logged.changes, vec![invite.clone()]);
    // The invitee's server gets the invite.
    assert_eq!(
        accepted.plan.event_to,
        servers(&[HUB, "b.example", "c.example"])
    );
    assert_eq!(flow.hub.group().queued_count(), 1);
    assert_eq!(
        flow.hub
            .hub()
            .room()
            .participant(&uid(CATHY))
            .unwrap()
            .state,
        ParticipationState::Invite
    );

    // Bob, who has not seen the proposal, commits without it: DS-Q-1.
    let state = flow.state();
    let bundle = flow
        .bob
        .commit(
            &room,
            CommitPlan {
                new_room_state: Some(state.clone()),
                ..CommitPlan::default()
            },
        )
        .unwrap();
    let err = flow.commit(BOB, &bundle).unwrap_err();
    assert_refused(&err, DsRule::Q1, ErrorCode::MissingProposals);
    flow.bob.clear_pending_commit(&room).unwrap();

    // An external commit cannot include it either: refused while it is pending.
    let info = flow.fetch_group_info(BOB);
    assert_eq!(info.pending_proposals.as_slice(), &[mls(proposal.clone())]);
    let (_, external) = flow
        .bob2
        .join_by_external_commit(
            info.group_info.as_slice(),
            Some(info.ratchet_tree.as_slice()),
        )
        .unwrap();
    let err = flow.commit(BOB, &external).unwrap_err();
    assert_refused(&err, DsRule::Q1, ErrorCode::MissingProposals);
    flow.bob2.forget_room(&room).unwrap();

    // Once Bob has the proposal, his commit includes it by reference and is accepted.
    match flow.bob.process(&room, &proposal).unwrap() {
        Processed::Proposal { sender, proposal } => {
            assert_eq!(sender, MessageSender::Member(cid(ALICE_LAPTOP)));
            assert_eq!(proposal, ProposalSummary::UserEvent(invite.clone()));
        }
        other => panic!("{other:?}"),
    }
    let bundle = flow
        .bob
        .commit(
            &room,
            CommitPlan {
                new_room_state: Some(state.clone()),
                ..CommitPlan::default()
            },
        )
        .unwrap();
    let accepted = flow.commit(BOB, &bundle).unwrap();
    flow.bob.merge_pending_commit(&room).unwrap();
    // The changes were logged with the proposal, not again with the commit.
    assert!(accepted.logged.changes.is_empty());
    assert_eq!(flow.hub.group().queued_count(), 0);
    assert_eq!(flow.hub.group().room_state().unwrap(), state);
    match flow.alice.process(&room, bundle.commit.as_slice()).unwrap() {
        Processed::Commit(summary) => {
            assert_eq!(summary.user_events, vec![invite]);
            assert_eq!(summary.room_state, state);
        }
        other => panic!("{other:?}"),
    }
    flow.message(ALICE_LAPTOP, b"after the commit", &[BOB_PHONE]);
}

#[test]
fn clients_are_added_only_for_joined_users_with_the_hubs_room_state() {
    let mut flow = Flow::new("adds");
    let room = flow.room_id.clone();

    // DS-ADD-1: an Add for Cathy, who is not joined.
    let kp = flow.claim_key_package(CATHY_DESK);
    let bundle = flow
        .alice
        .commit(
            &room,
            CommitPlan {
                adds: vec![kp.clone()],
                ..CommitPlan::default()
            },
        )
        .unwrap();
    let err = flow.commit(ALICE, &bundle).unwrap_err();
    assert_refused(&err, DsRule::Add1, ErrorCode::ClientNotAllowed);
    flow.alice.clear_pending_commit(&room).unwrap();

    // DS-RS-1: Bob added, but the RoomState extension leaves him out.
    let bob_kp = flow.claim_key_package(BOB_PHONE);
    let add = user_event(BOB, ParticipationStateChange::Join, None);
    let mut wrong = flow.state_after(ALICE, std::slice::from_ref(&add));
    wrong.participants = BoundedVec::new(
        wrong
            .participants
            .iter()
            .filter(|p| p.user_id != uid(BOB))
            .cloned()
            .collect(),
    )
    .unwrap();
    let bundle = flow
        .alice
        .commit(
            &room,
            CommitPlan {
                user_events: vec![add.clone()],
                adds: vec![bob_kp],
                new_room_state: Some(wrong),
                ..CommitPlan::default()
            },
        )
        .unwrap();
    let err = flow.commit(ALICE, &bundle).unwrap_err();
    assert_refused(&err, DsRule::Rs1, ErrorCode::RoomStateMismatch);
    flow.alice.clear_pending_commit(&room).unwrap();

    // A signaling rule carried by the commit: Alice, joined, cannot be invited.
    let state = flow.state();
    let bundle = flow
        .alice
        .commit(
            &room,
            CommitPlan {
                user_events: vec![user_event(ALICE, ParticipationStateChange::Invite, None)],
                new_room_state: Some(state),
                ..CommitPlan::default()
            },
        )
        .unwrap();
    let err = flow.commit(ALICE, &bundle).unwrap_err();
    match &err {
        DsError::Signaling(r) => assert_eq!(r.rule, mimi_signaling::RuleId::Inv1),
        other => panic!("{other:?}"),
    }
    assert_eq!(err.rule(), Some(DsRule::Signaling));
    assert_eq!(
        err.to_event_error().code,
        ErrorCode::InvalidParticipationChange
    );
    flow.alice.clear_pending_commit(&room).unwrap();

    // ds.create_group appears once, at sequence 1.
    let again = CreateGroupRequest {
        group_info: mls(flow.alice.group_info(&room).unwrap()),
        ratchet_tree: mls(flow.alice.ratchet_tree(&room).unwrap()),
    };
    let err = flow.refuse(ALICE, Event::DsCreateGroup(again));
    assert_refused(&err, DsRule::Cr2, ErrorCode::InvalidMlsMessage);

    // After all that, the right commit is accepted.
    let (_, bundle) = flow.alice_adds(BOB, BOB_PHONE);
    flow.bob
        .join_from_welcome(bundle.welcomes.as_slice()[0].as_slice())
        .unwrap();
    flow.message(BOB_PHONE, b"in", &[ALICE_LAPTOP]);
}

#[test]
fn stale_forged_and_misattributed_messages_are_refused() {
    let mut flow = Flow::with_alice_and_bob("refusals");
    let room = flow.room_id.clone();

    // DS-MLS-3: Alice and Bob both commit in epoch 1; Bob's comes second.
    let alice_commit = flow.alice.commit(&room, CommitPlan::default()).unwrap();
    let bob_commit = flow.bob.commit(&room, CommitPlan::default()).unwrap();
    flow.commit(ALICE, &alice_commit).unwrap();
    flow.alice.merge_pending_commit(&room).unwrap();
    let err = flow.commit(BOB, &bob_commit).unwrap_err();
    assert_refused(&err, DsRule::Mls3, ErrorCode::StaleEpoch);
    flow.bob.clear_pending_commit(&room).unwrap();
    // DS-MLS-3: an application message for the epoch the group has left, which nobody
    // could read.
    let late = flow.bob.encrypt(&room, b"too late").unwrap();
    let err = flow.refuse(
        BOB,
        Event::DsSendMessage(SendMessageRequest {
            application_message: mls(late),
        }),
    );
    assert_refused(&err, DsRule::Mls3, ErrorCode::StaleEpoch);
    flow.process_commit(&alice_commit, &[BOB_PHONE]);

    // DS-MLS-1: a forged signature, on a commit and on a proposal.
    let mut forged = flow.alice.commit(&room, CommitPlan::default()).unwrap();
    forged.commit = mls(forge_signature(forged.commit.as_slice(), true));
    let err = flow.commit(ALICE, &forged).unwrap_err();
    assert_refused(&err, DsRule::Mls1, ErrorCode::InvalidMlsMessage);
    flow.alice.clear_pending_commit(&room).unwrap();
    let invite = user_event(CATHY, ParticipationStateChange::Invite, None);
    let proposal = flow.alice.propose_user_event(&room, &invite).unwrap();
    let err = flow.refuse(
        ALICE,
        Event::RoomUser(mls(forge_signature(&proposal, false))),
    );
    assert_refused(&err, DsRule::Mls1, ErrorCode::InvalidMlsMessage);

    // DS-SND-1: Alice's signed proposal submitted as Bob's, Bob's commit as Alice's.
    let err = flow.refuse(BOB, Event::RoomUser(mls(proposal.clone())));
    assert_refused(&err, DsRule::Snd1, ErrorCode::SenderMismatch);
    let bundle = flow.bob.commit(&room, CommitPlan::default()).unwrap();
    let err = flow.commit(ALICE, &bundle).unwrap_err();
    assert_refused(&err, DsRule::Snd1, ErrorCode::SenderMismatch);
    flow.bob.clear_pending_commit(&room).unwrap();

    // DS-MLS-4: an application message is not an m.room.user proposal.
    let ciphertext = flow.bob.encrypt(&room, b"not a proposal").unwrap();
    let err = flow.refuse(BOB, Event::RoomUser(mls(ciphertext)));
    assert_refused(&err, DsRule::Mls4, ErrorCode::InvalidMlsMessage);

    // The genuine proposal goes through.
    let accepted = flow.accept(ALICE, Event::RoomUser(mls(proposal)));
    assert_eq!(accepted.logged.changes, vec![invite]);
    assert_eq!(flow.hub.group().queued_count(), 1);
}

#[test]
fn commit_bundles_are_checked_whole() {
    let mut flow = Flow::with_alice_and_bob("bundles");
    let room = flow.room_id.clone();

    // DS-RM-2: Bob removes Alice's client while she is joined.
    let bundle = flow
        .bob
        .commit(
            &room,
            CommitPlan {
                removes: vec![RemoveTarget::Client(cid(ALICE_LAPTOP))],
                ..CommitPlan::default()
            },
        )
        .unwrap();
    let err = flow.commit(BOB, &bundle).unwrap_err();
    assert_refused(&err, DsRule::Rm2, ErrorCode::ForbiddenByPolicy);
    flow.bob.clear_pending_commit(&room).unwrap();

    // DS-GI-1: the GroupInfo of the current epoch instead of the one the commit creates.
    let genuine = flow.alice.commit(&room, CommitPlan::default()).unwrap();
    let mut bundle = genuine.clone();
    bundle.group_info = mls(flow.bob.group_info(&room).unwrap());
    let err = flow.commit(ALICE, &bundle).unwrap_err();
    assert_refused(&err, DsRule::Gi1, ErrorCode::InvalidMlsMessage);

    // DS-W-1: a Welcome for a client the commit does not add (from another room).
    let mut other = Flow::with_alice_and_bob("elsewhere");
    let kp = other.claim_key_package(CATHY_DESK);
    let add = user_event(CATHY, ParticipationStateChange::Join, None);
    let next = other.state_after(ALICE, std::slice::from_ref(&add));
    let elsewhere = other
        .alice
        .commit(
            &other.room_id,
            CommitPlan {
                user_events: vec![add],
                adds: vec![kp],
                new_room_state: Some(next),
                ..CommitPlan::default()
            },
        )
        .unwrap();
    let mut bundle = genuine.clone();
    bundle.welcomes = elsewhere.welcomes.clone();
    let err = flow.commit(ALICE, &bundle).unwrap_err();
    assert_refused(&err, DsRule::W1, ErrorCode::InvalidMlsMessage);

    // DS-MLS-2: a commit and an application message of another room's group.
    let err = flow.commit(ALICE, &elsewhere).unwrap_err();
    assert_refused(&err, DsRule::Mls2, ErrorCode::InvalidMlsMessage);
    let foreign = other.bob.encrypt(&other.room_id, b"wrong room").unwrap();
    let err = flow.refuse(
        BOB,
        Event::DsSendMessage(SendMessageRequest {
            application_message: mls(foreign),
        }),
    );
    assert_refused(&err, DsRule::Mls2, ErrorCode::InvalidMlsMessage);

    // The genuine bundle is accepted.
    flow.commit(ALICE, &genuine).unwrap();
    flow.alice.merge_pending_commit(&room).unwrap();
    flow.process_commit(&genuine, &[BOB_PHONE]);
    flow.message(BOB_PHONE, b"still here", &[ALICE_LAPTOP]);
}

/// DS-GI-1 checks the GroupInfo as bytes (docs/spec-decisions.md): any change to the
/// committer's GroupInfo (its signature, a byte of its ratchet tree extension, a byte
/// after it, a cut) is refused, and the genuine one then goes through.
#[test]
fn a_group_info_must_be_the_committers_for_the_new_epoch_byte_for_byte() {
    let mut flow = Flow::with_alice_and_bob("group-info");
    let room = flow.room_id.clone();
    let genuine = flow.alice.commit(&room, CommitPlan::default()).unwrap();
    let gi = genuine.group_info.as_slice().to_vec();
    let mut signature = gi.clone();
    *signature.last_mut().unwrap() ^= 0x01;
    let mut inside = gi.clone();
    let middle = gi.len() * 2 / 3;
    inside[middle] ^= 0x01;
    let mut trailing = gi.clone();
    trailing.push(0);
    // A GroupInfo is a bare MLSMessage on the wire: bytes that do not frame as exactly one
    // cannot even be sent (the codec refuses to write them).
    for (what, bytes) in [
        ("a byte after the signature", trailing),
        ("a cut GroupInfo", gi[..gi.len() - 10].to_vec()),
    ] {
        let mut bundle = genuine.clone();
        bundle.group_info = mls(bytes);
        let message = MimiMessage::new(
            room.clone(),
            user(ALICE),
            MessageBody::Event(Event::DsCommit(bundle)),
        );
        assert!(
            matches!(
                message.encode(),
                Err(mimi_codec::CodecError::MlsFraming { .. } | mimi_codec::CodecError::EndOfInput)
            ),
            "{what} must not frame as one MLSMessage"
        );
    }
    let cases = [
        ("a changed signature", signature),
        ("a changed byte inside", inside),
        ("the commit instead", genuine.commit.as_slice().to_vec()),
    ];
    for (what, bytes) in cases {
        let mut bundle = genuine.clone();
        bundle.group_info = mls(bytes);
        let err = flow
            .commit(ALICE, &bundle)
            .expect_err(&format!("{what} must be refused"));
        assert_refused(&err, DsRule::Gi1, ErrorCode::InvalidMlsMessage);
    }
    flow.commit(ALICE, &genuine).unwrap();
}

#[test]
fn a_leave_requires_removing_every_client_and_the_hub_proposes_the_removals() {
    let mut flow = Flow::with_alice_and_bob("leave");
    let room = flow.room_id.clone();
    flow.bob_adds_second_client();
    assert_eq!(flow.hub.group().members().len(), 3);

    // Bob leaves with an m.room.user proposal from his phone.
    let leave = user_event(BOB, ParticipationStateChange::Leave, None);
    let proposal = flow.bob.propose_user_event(&room, &leave).unwrap();
    let accepted = flow.accept(BOB, Event::RoomUser(mls(proposal.clone())));
    assert_eq!(accepted.logged.changes, vec![leave.clone()]);
    assert_eq!(accepted.plan.event_to, servers(&[HUB, "b.example"]));
    assert_eq!(
        flow.hub.hub().room().pending_client_removals(),
        &BTreeSet::from([uid(BOB)])
    );
    assert_eq!(flow.hub.group().queued_count(), 1);
    for reader in [ALICE_LAPTOP, BOB_TABLET] {
        match flow.client(reader).process(&room, &proposal).unwrap() {
            Processed::Proposal { sender, proposal } => {
                assert_eq!(sender, MessageSender::Member(cid(BOB_PHONE)));
                assert_eq!(proposal, ProposalSummary::UserEvent(leave.clone()));
            }
            other => panic!("{other:?}"),
        }
    }

    // DS-RM-1: Alice commits the leave (and the new RoomState and external senders) but
    // leaves Bob's clients in.
    let state = flow.state();
    let senders = flow.senders_without("b.example");
    let plan = CommitPlan {
        new_room_state: Some(state.clone()),
        external_senders: Some(senders.clone()),
        ..CommitPlan::default()
    };
    let bundle = flow.alice.commit(&room, plan.clone()).unwrap();
    let err = flow.commit(ALICE, &bundle).unwrap_err();
    assert_refused(&err, DsRule::Rm1, ErrorCode::ClientsNotRemoved);
    flow.alice.clear_pending_commit(&room).unwrap();

    // DS-XS-1: removing the clients but keeping b.example as external sender.
    let bundle = flow
        .alice
        .commit(
            &room,
            CommitPlan {
                removes: vec![RemoveTarget::AllClientsOf(uid(BOB))],
                external_senders: None,
                ..plan.clone()
            },
        )
        .unwrap();
    let err = flow.commit(ALICE, &bundle).unwrap_err();
    assert_refused(&err, DsRule::Xs1, ErrorCode::RoomStateMismatch);
    flow.alice.clear_pending_commit(&room).unwrap();

    // The hub proposes the removals itself, as external sender 0.
    let accepted = flow
        .hub
        .propose_pending_removals(0, &flow.hub_keys.signer)
        .unwrap()
        .unwrap();
    flow.deliver(&accepted);
    assert_eq!(accepted.logged.sender, Sender::Server(server(HUB)));
    assert!(accepted.logged.changes.is_empty());
    // Bob's clients are still members: b.example gets the proposals that remove them.
    assert_eq!(accepted.plan.event_to, servers(&[HUB, "b.example"]));
    let removals = match &accepted.logged.fanout.event {
        Event::DsProposal(p) => p.proposals.as_slice().to_vec(),
        other => panic!("{other:?}"),
    };
    assert_eq!(removals.len(), 2);
    assert_eq!(flow.hub.group().queued_count(), 3);
    // Already proposed: nothing more to propose (a second Remove of the same leaf would
    // make every commit invalid).
    let before = flow.snapshot();
    assert!(
        flow.hub
            .propose_pending_removals(0, &flow.hub_keys.signer)
            .unwrap()
            .is_none()
    );
    assert_eq!(flow.snapshot(), before);

    // The hub's removals are now required: a commit that removes Bob's clients by value
    // instead of referencing them is refused (DS-Q-1).
    let bundle = flow
        .alice
        .commit(
            &room,
            CommitPlan {
                removes: vec![RemoveTarget::AllClientsOf(uid(BOB))],
                ..plan.clone()
            },
        )
        .unwrap();
    let err = flow.commit(ALICE, &bundle).unwrap_err();
    assert_refused(&err, DsRule::Q1, ErrorCode::MissingProposals);
    flow.alice.clear_pending_commit(&room).unwrap();

    // With the hub's proposals, Alice's commit removes both clients and is accepted.
    for reader in [ALICE_LAPTOP, BOB_PHONE, BOB_TABLET] {
        for (removal, client) in removals.iter().zip([BOB_PHONE, BOB_TABLET]) {
            match flow
                .client(reader)
                .process(&room, removal.as_slice())
                .unwrap()
            {
                Processed::Proposal { sender, proposal } => {
                    assert_eq!(sender, MessageSender::External(0));
                    assert_eq!(proposal, ProposalSummary::Remove(cid(client)));
                }
                other => panic!("{other:?}"),
            }
        }
    }
    let bundle = flow.alice.commit(&room, plan).unwrap();
    let accepted = flow.commit(ALICE, &bundle).unwrap();
    flow.alice.merge_pending_commit(&room).unwrap();
    // The commit that removes Bob's clients reaches them; b.example's replica follows it.
    assert_eq!(accepted.plan.event_to, servers(&[HUB, "b.example"]));
    let b = flow.follower("b.example");
    assert_eq!(b.follower().room(), flow.hub.hub().room());
    assert_eq!(b.group().unwrap().members(), flow.hub.group().members());
    assert_eq!(flow.hub.group().members(), vec![(0, cid(ALICE_LAPTOP))]);
    assert_eq!(flow.hub.group().external_senders(), vec![server(HUB)]);
    assert_eq!(flow.hub.group().room_state().unwrap(), state);
    assert!(flow.hub.hub().room().pending_client_removals().is_empty());
    assert_eq!(flow.hub.group().queued_count(), 0);
    for removed in [BOB_PHONE, BOB_TABLET] {
        match flow
            .client(removed)
            .process(&room, bundle.commit.as_slice())
            .unwrap()
        {
            Processed::Commit(summary) => assert!(summary.self_removed),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_follower_detects_a_lying_hub() {
    let mut flow = Flow::with_alice_and_bob("liar");
    let room = flow.room_id.clone();
    let b = server("b.example");

    // The next genuine event: an empty commit by Alice.
    let bundle = flow.alice.commit(&room, CommitPlan::default()).unwrap();
    // Accept at the hub without delivering, to tamper with what b.example gets.
    let checked = flow
        .hub
        .check(user(ALICE), Event::DsCommit(bundle.clone()))
        .unwrap();
    let accepted = flow.hub.accept(checked).unwrap();
    flow.alice.merge_pending_commit(&room).unwrap();
    let (sender, genuine) = fanout_via_wire(&room, &accepted.logged, false);
    let follower = flow.followers.get_mut(&b).unwrap();
    let before = (
        follower.follower().clone(),
        follower.group().unwrap().to_bytes().unwrap(),
    );

    // A commit whose signature the hub forged.
    let mut tampered = genuine.clone();
    let mut forged = bundle.clone();
    forged.commit = mls(forge_signature(bundle.commit.as_slice(), true));
    tampered.event = Event::DsCommit(forged);
    match follower.receive(&sender, &tampered).unwrap_err() {
        FollowerError::Ds(e) => assert_refused(&e, DsRule::Mls1, ErrorCode::InvalidMlsMessage),
        other => panic!("{other:?}"),
    }
    // The commit attributed to another user.
    match follower.receive(&user(BOB), &genuine).unwrap_err() {
        FollowerError::Ds(e) => assert_refused(&e, DsRule::Snd1, ErrorCode::SenderMismatch),
        other => panic!("{other:?}"),
    }
    // A broken hash chain.
    let mut tampered = genuine.clone();
    tampered.prev_hash = mimi_codec::WireHash::new(vec![0; 32]).unwrap();
    assert_eq!(
        follower.receive(&sender, &tampered).unwrap_err(),
        FollowerError::History(VerifyError::PrevHash {
            sequence: genuine.sequence
        })
    );
    // Auth events the rules do not select.
    let mut tampered = genuine.clone();
    tampered.auth_events = BoundedVec::new(vec![0, 1]).unwrap();
    assert!(matches!(
        follower.receive(&sender, &tampered).unwrap_err(),
        FollowerError::History(VerifyError::AuthEvents { .. })
    ));
    // A gap.
    let mut tampered = genuine.clone();
    tampered.sequence += 1;
    assert_eq!(
        follower.receive(&sender, &tampered).unwrap_err(),
        FollowerError::History(VerifyError::Gap {
            expected: genuine.sequence,
            got: genuine.sequence + 1
        })
    );
    // None of it changed the replica; the genuine event is then accepted.
    assert_eq!(follower.follower(), &before.0);
    assert_eq!(follower.group().unwrap().to_bytes().unwrap(), before.1);
    assert_eq!(
        follower.receive(&sender, &genuine).unwrap(),
        FollowerOutcome::Applied {
            sequence: genuine.sequence
        }
    );
    flow.assert_replicas();

    // Equivocation: another event under an already used sequence number.
    let mut tampered = genuine.clone();
    tampered.event = Event::DsSendMessage(SendMessageRequest {
        application_message: mls(flow.alice.encrypt(&room, b"x").unwrap()),
    });
    let follower = flow.followers.get_mut(&b).unwrap();
    assert_eq!(
        follower.receive(&sender, &tampered).unwrap_err(),
        FollowerError::History(VerifyError::Conflict {
            sequence: genuine.sequence
        })
    );

    // A room whose second event is not ds.create_group.
    let events = flow.hub.hub().history().events();
    let (s0, create) = fanout_via_wire(&room, &events[0], false);
    let mut fresh = FollowerRoom::new(&s0, &create).unwrap();
    let (s2, third) = fanout_via_wire(&room, &events[2], false);
    let mut shifted = third.clone();
    shifted.sequence = 1;
    shifted.prev_hash = events[1].fanout.prev_hash.clone();
    match fresh.receive(&s2, &shifted).unwrap_err() {
        FollowerError::Ds(e) => assert_refused(&e, DsRule::Cr2, ErrorCode::InvalidMlsMessage),
        other => panic!("{other:?}"),
    }
    // ds.create_group from someone other than the creator.
    let (_, second) = fanout_via_wire(&room, &events[1], false);
    match fresh.receive(&user(BOB), &second).unwrap_err() {
        FollowerError::Ds(e) => assert_refused(&e, DsRule::Cr2, ErrorCode::InvalidMlsMessage),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_room_starts_with_the_creators_group_at_epoch_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut alice = MlsClient::open(&dir.path().join("alice"), cid(ALICE_LAPTOP)).unwrap();
    let mut bob = MlsClient::open(&dir.path().join("bob"), cid(BOB_PHONE)).unwrap();
    let keys = server_keys(HUB);
    let new_hub = |localpart: &str| {
        Hub::create(
            uid(ALICE),
            RoomIdSource::Localpart(localpart.into()),
            Policy::default(),
            security(),
        )
        .unwrap()
    };
    let request = |created: mimi_e2e::CreatedRoom| CreateGroupRequest {
        group_info: mls(created.group_info),
        ratchet_tree: mls(created.ratchet_tree),
    };

    // Alice's group already holds Bob's client, added without the hub (epoch 1, the
    // RoomState still Alice alone): DS-ADD-1 would be bypassed.
    let hub = new_hub("early");
    let state = hub.room().to_room_state();
    alice.create_room(&state, keys.sender.clone()).unwrap();
    let kp = bob.key_package(false).unwrap();
    alice
        .commit(
            &state.room_id,
            CommitPlan {
                adds: vec![kp],
                ..CommitPlan::default()
            },
        )
        .unwrap();
    alice.merge_pending_commit(&state.room_id).unwrap();
    let created = mimi_e2e::CreatedRoom {
        group_info: alice.group_info(&state.room_id).unwrap(),
        ratchet_tree: alice.ratchet_tree(&state.room_id).unwrap(),
    };
    let err = HubRoom::create(hub, server(HUB), request(created), &keys.sender).unwrap_err();
    assert_refused(&err, DsRule::Cr1, ErrorCode::InvalidMlsMessage);
    assert!(err.to_string().contains("epoch 0"), "{err}");

    // A group made by someone other than the creator.
    let hub = new_hub("borrowed");
    let created = bob
        .create_room(&hub.room().to_room_state(), keys.sender.clone())
        .unwrap();
    let err = HubRoom::create(hub, server(HUB), request(created), &keys.sender).unwrap_err();
    assert_refused(&err, DsRule::Cr1, ErrorCode::InvalidMlsMessage);
    assert!(
        err.to_string().contains("not a client of the creator"),
        "{err}"
    );

    // A group without the hub as external sender, or for another room state.
    let hub = new_hub("nohub");
    let other = server_keys(HUB);
    let created = alice
        .create_room(&hub.room().to_room_state(), other.sender.clone())
        .unwrap();
    let err = HubRoom::create(hub, server(HUB), request(created), &keys.sender).unwrap_err();
    assert_refused(&err, DsRule::Cr1, ErrorCode::InvalidMlsMessage);
    let hub = new_hub("state");
    let mut state = hub.room().to_room_state();
    state.security.cipher_suite = 2;
    let created = alice.create_room(&state, keys.sender.clone()).unwrap();
    let err = HubRoom::create(hub, server(HUB), request(created), &keys.sender).unwrap_err();
    assert_refused(&err, DsRule::Cr1, ErrorCode::InvalidMlsMessage);
}

#[test]
fn key_packages_are_validated_for_their_publisher() {
    let dir = tempfile::tempdir().unwrap();
    let mut bob = MlsClient::open(&dir.path().join("bob"), cid(BOB_PHONE)).unwrap();

    let one_time = bob.key_package(false).unwrap();
    let validated = validate_key_package(&one_time, &cid(BOB_PHONE)).unwrap();
    assert_eq!(validated.client, cid(BOB_PHONE));
    assert_eq!(validated.cipher_suite, DEFAULT_CIPHER_SUITE);
    assert!(!validated.last_resort);
    assert_eq!(validated.bytes, one_time);
    let last_resort = bob.key_package(true).unwrap();
    let validated_lr = validate_key_package(&last_resort, &cid(BOB_PHONE)).unwrap();
    assert!(validated_lr.last_resort);
    assert_ne!(validated_lr.hash_ref, validated.hash_ref);
    // The same key package always has the same reference.
    assert_eq!(
        validate_key_package(&one_time, &cid(BOB_PHONE))
            .unwrap()
            .hash_ref,
        validated.hash_ref
    );

    // Published by another client (even of the same user).
    for publisher in [BOB_TABLET, CATHY_DESK] {
        let err = validate_key_package(&one_time, &cid(publisher)).unwrap_err();
        assert_refused(&err, DsRule::Kp1, ErrorCode::InvalidMlsMessage);
    }

    // Without the MIMI capabilities.
    use openmls::prelude::tls_codec::Serialize as _;
    use openmls::prelude::{BasicCredential, CredentialWithKey, KeyPackage, MlsMessageOut};
    let provider = openmls_rust_crypto::OpenMlsRustCrypto::default();
    let signer = SignatureKeyPair::new(mimi_e2e::CIPHERSUITE.signature_algorithm()).unwrap();
    let build = |credential| {
        let bundle = KeyPackage::builder()
            .build(
                mimi_e2e::CIPHERSUITE,
                &provider,
                &signer,
                CredentialWithKey {
                    credential,
                    signature_key: signer.public().into(),
                },
            )
            .unwrap();
        MlsMessageOut::from(bundle.key_package().clone())
            .tls_serialize_detached()
            .unwrap()
    };
    let plain = build(mimi_e2e::credential_for(&cid(BOB_TABLET)));
    let err = validate_key_package(&plain, &cid(BOB_TABLET)).unwrap_err();
    assert_refused(&err, DsRule::Kp1, ErrorCode::InvalidMlsMessage);
    // A credential that names no client.
    let nameless = build(BasicCredential::new(BOB.as_bytes().to_vec()).into());
    let err = validate_key_package(&nameless, &cid(BOB_TABLET)).unwrap_err();
    assert_refused(&err, DsRule::Kp1, ErrorCode::InvalidMlsMessage);

    // Not a key package at all, or a damaged one.
    let err = validate_key_package(b"not mls", &cid(BOB_PHONE)).unwrap_err();
    assert_refused(&err, DsRule::Kp1, ErrorCode::InvalidMlsMessage);
    let mut damaged = one_time.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 0x01;
    let err = validate_key_package(&damaged, &cid(BOB_PHONE)).unwrap_err();
    assert_refused(&err, DsRule::Kp1, ErrorCode::InvalidMlsMessage);
    let mut alice = MlsClient::open(&dir.path().join("alice"), cid(ALICE_LAPTOP)).unwrap();
    let hub = server_keys(HUB);
    let state = Hub::create(
        uid(ALICE),
        RoomIdSource::Localpart("kp".into()),
        Policy::default(),
        security(),
    )
    .unwrap()
    .room()
    .to_room_state();
    let created = alice.create_room(&state, hub.sender).unwrap();
    let err = validate_key_package(&created.group_info, &cid(ALICE_LAPTOP)).unwrap_err();
    assert_refused(&err, DsRule::Kp1, ErrorCode::InvalidMlsMessage);
}

#[test]
fn the_group_state_survives_a_reload_with_its_queue() {
    let mut flow = Flow::with_alice_and_bob("persist");
    let room = flow.room_id.clone();
    let invite = user_event(CATHY, ParticipationStateChange::Invite, None);
    let proposal = flow.alice.propose_user_event(&room, &invite).unwrap();
    flow.accept(ALICE, Event::RoomUser(mls(proposal.clone())));
    assert_eq!(flow.hub.group().queued_count(), 1);

    // Store and reload: group bytes and the history, as the hub's storage would.
    let bytes = flow.hub.group().to_bytes().unwrap();
    let group = HubGroup::from_bytes(&bytes).unwrap();
    assert_eq!(group.to_bytes().unwrap(), bytes);
    assert_eq!(group.epoch(), flow.hub.group().epoch());
    assert_eq!(group.members(), flow.hub.group().members());
    assert_eq!(group.room_state(), flow.hub.group().room_state());
    assert_eq!(
        group.external_senders(),
        flow.hub.group().external_senders()
    );
    assert_eq!(group.queued_count(), 1);
    let info_before = flow.fetch_group_info(BOB);
    let hub = Hub::restore(&room, flow.hub.hub().history().events()).unwrap();
    assert_eq!(&hub, flow.hub.hub());
    flow.hub = HubRoom::from_parts(hub, group, server(HUB));
    assert_eq!(flow.fetch_group_info(BOB), info_before);
    assert_eq!(
        info_before.pending_proposals.as_slice(),
        &[mls(proposal.clone())]
    );

    // The queue survived: a commit without the proposal is refused, one with it accepted.
    let state = flow.state();
    let bundle = flow
        .bob
        .commit(
            &room,
            CommitPlan {
                new_room_state: Some(state.clone()),
                ..CommitPlan::default()
            },
        )
        .unwrap();
    assert_refused(
        &flow.commit(BOB, &bundle).unwrap_err(),
        DsRule::Q1,
        ErrorCode::MissingProposals,
    );
    flow.bob.clear_pending_commit(&room).unwrap();
    flow.bob.process(&room, &proposal).unwrap();
    let bundle = flow
        .bob
        .commit(
            &room,
            CommitPlan {
                new_room_state: Some(state.clone()),
                ..CommitPlan::default()
            },
        )
        .unwrap();
    flow.commit(BOB, &bundle).unwrap();
    flow.bob.merge_pending_commit(&room).unwrap();
    flow.process_commit(&bundle, &[ALICE_LAPTOP]);
    assert_eq!(flow.hub.group().epoch(), 2);
    assert_eq!(flow.hub.group().queued_count(), 0);
    flow.message(ALICE_LAPTOP, b"after reload", &[BOB_PHONE]);

    // Garbage is a state error, not a panic.
    assert!(matches!(
        HubGroup::from_bytes(&bytes[..bytes.len() / 2]),
        Err(DsError::State(_))
    ));
}

/// Alice's empty commit (her own update), checked at the hub.
fn empty_commit(flow: &mut Flow) -> CommitRequest {
    let room = flow.room_id.clone();
    let state = flow.state();
    flow.alice
        .commit(
            &room,
            CommitPlan {
                new_room_state: Some(state),
                ..CommitPlan::default()
            },
        )
        .unwrap()
}

#[test]
fn a_checked_event_is_accepted_only_while_the_room_is_unchanged() {
    let mut flow = Flow::with_alice_and_bob("stale");
    let room = flow.room_id.clone();
    let bundle = empty_commit(&mut flow);
    let checked = flow
        .hub
        .check(user(ALICE), Event::DsCommit(bundle.clone()))
        .unwrap();
    assert!(flow.hub.is_current(&checked));
    assert!(checked.invitees().is_empty());

    // Bob's message is accepted in between: the checked commit is stale.
    flow.message(BOB_PHONE, b"meanwhile", &[ALICE_LAPTOP]);
    assert!(!flow.hub.is_current(&checked));
    let before = flow.snapshot();
    let epoch = flow.hub.group().epoch();
    let err = flow.hub.accept(checked).unwrap_err();
    assert_eq!(err, DsError::Stale);
    assert_eq!(err.to_event_error().code, ErrorCode::Internal);
    assert_eq!(flow.snapshot(), before, "a stale accept changed the hub");
    assert_eq!(flow.hub.group().epoch(), epoch);

    // Checked again against the room as it is now, the same commit is accepted.
    let checked = flow
        .hub
        .check(user(ALICE), Event::DsCommit(bundle.clone()))
        .unwrap();
    let (sender, event) = checked.into_parts();
    assert_eq!(sender, user(ALICE));
    assert_eq!(event, Event::DsCommit(bundle.clone()));
    let checked = flow.hub.check(sender, event).unwrap();
    let accepted = flow.hub.accept(checked).unwrap();
    flow.deliver(&accepted);
    flow.alice.merge_pending_commit(&room).unwrap();
    assert_eq!(flow.hub.group().epoch(), epoch + 1);

    // A room rebuilt from its stored parts is another room value: what was checked against
    // the old one is stale even though nothing was accepted.
    let bundle = empty_commit(&mut flow);
    let checked = flow
        .hub
        .check(user(ALICE), Event::DsCommit(bundle))
        .unwrap();
    let group = HubGroup::from_bytes(&flow.hub.group().to_bytes().unwrap()).unwrap();
    let hub = Hub::restore(&room, flow.hub.hub().history().events()).unwrap();
    flow.hub = HubRoom::from_parts(hub, group, server(HUB));
    assert!(!flow.hub.is_current(&checked));
    let before = flow.snapshot();
    assert_eq!(flow.hub.accept(checked).unwrap_err(), DsError::Stale);
    assert_eq!(flow.snapshot(), before);
}

#[test]
fn the_room_state_after_a_commit_is_after_all_its_changes() {
    let mut flow = Flow::with_alice_and_bob("after");
    let room = flow.room_id.clone();
    let invite = user_event(CATHY, ParticipationStateChange::Invite, None);
    let ban = user_event("@eve:e.example", ParticipationStateChange::Ban, None);
    let changes = vec![invite.clone(), ban.clone()];
    let after_both = flow.state_after(ALICE, &changes);
    let after_invite = flow.state_after(ALICE, std::slice::from_ref(&invite));
    assert_ne!(after_both, after_invite);
    let bundle = flow
        .alice
        .commit(
            &room,
            CommitPlan {
                user_events: changes.clone(),
                new_room_state: Some(after_both.clone()),
                ..CommitPlan::default()
            },
        )
        .unwrap();
    let checked = flow
        .hub
        .check(user(ALICE), Event::DsCommit(bundle))
        .unwrap();
    // The invitee's server is asked about the state after the invite AND the ban.
    assert_eq!(checked.invitees(), vec![uid(CATHY)]);
    assert_eq!(checked.room_state_after(), after_both);
    assert_eq!(checked.transitions().len(), 2);
    assert_eq!(checked.transitions()[0].target(), &uid(CATHY));
    assert_eq!(checked.transitions()[1].target(), &uid("@eve:e.example"));
    let accepted = flow.hub.accept(checked).unwrap();
    flow.deliver(&accepted);
    assert_eq!(accepted.logged.changes, changes);
    assert_eq!(flow.state(), after_both);
    assert_eq!(flow.hub.group().room_state().unwrap(), after_both);
}

#[test]
fn a_commit_is_verified_once_and_the_staged_commit_is_merged() {
    // What this shows: `HubGroup` runs every handshake message through openmls's
    // `process_message` in one place (`HubGroup::process`, counted by
    // `messages_verified`; the source check below fails if another call appears), and a
    // check followed by an accept goes through it once. What it cannot show: how long the
    // verification takes (the bench's `ds` figures do).
    let sources = [
        include_str!("../src/lib.rs"),
        include_str!("../src/error.rs"),
        include_str!("../src/fanout.rs"),
        include_str!("../src/group.rs"),
        include_str!("../src/keypackage.rs"),
        include_str!("../src/mls.rs"),
        include_str!("../src/service.rs"),
    ];
    let calls: usize = sources
        .iter()
        .map(|s| s.matches(".process_message(").count())
        .sum();
    assert_eq!(
        calls, 1,
        "process_message is called only by HubGroup::process"
    );

    let mut flow = Flow::with_alice_and_bob("once");
    let room = flow.room_id.clone();
    let bundle = empty_commit(&mut flow);
    let epoch = flow.hub.group().epoch();
    let verified = flow.hub.group().messages_verified();
    let checked = flow
        .hub
        .check(user(ALICE), Event::DsCommit(bundle.clone()))
        .unwrap();
    assert_eq!(flow.hub.group().messages_verified(), verified + 1);
    assert_eq!(flow.hub.group().epoch(), epoch, "checking merges nothing");
    let accepted = flow.hub.accept(checked).unwrap();
    assert_eq!(
        flow.hub.group().messages_verified(),
        verified + 1,
        "accepting does not verify again"
    );
    // The staged commit was merged: the group is at the commit's epoch, and the members
    // who process the same commit agree with the hub's group.
    assert_eq!(flow.hub.group().epoch(), epoch + 1);
    flow.deliver(&accepted);
    flow.alice.merge_pending_commit(&room).unwrap();
    flow.process_commit(&bundle, &[BOB_PHONE]);
    flow.message(BOB_PHONE, b"after the commit", &[ALICE_LAPTOP]);
    // A proposal is verified once too, and queued as staged.
    let proposal = flow
        .alice
        .propose_user_event(
            &room,
            &user_event(CATHY, ParticipationStateChange::Invite, None),
        )
        .unwrap();
    let verified = flow.hub.group().messages_verified();
    let checked = flow
        .hub
        .check(user(ALICE), Event::RoomUser(mls(proposal)))
        .unwrap();
    flow.hub.accept(checked).unwrap();
    assert_eq!(flow.hub.group().messages_verified(), verified + 1);
    assert_eq!(flow.hub.group().queued_count(), 1);
}

#[test]
fn group_info_is_for_members_invitees_and_followers_not_knockers() {
    use mimi_codec::{JoinRule, PolicyAction};
    use mimi_signaling::StandardRole;
    let staff = [StandardRole::Owner, StandardRole::Admin];
    let grants: Vec<(PolicyAction, &[StandardRole])> =
        PolicyAction::ALL.iter().map(|a| (*a, &staff[..])).collect();
    let mut flow = Flow::with_policy("knock", Policy::new(JoinRule::Knock, &grants));
    flow.alice_adds(BOB, BOB_PHONE);
    let room = flow.room_id.clone();
    let expected = flow.fetch_group_info(ALICE);
    let refused = |flow: &Flow, sender: Sender| {
        assert_refused(
            &flow.hub.group_info(&sender).unwrap_err(),
            DsRule::Gi2,
            ErrorCode::ForbiddenByPolicy,
        )
    };

    // Cathy knocks: she has no access to the room's cryptographic state.
    flow.accept(
        CATHY,
        Event::RoomUserUnsigned(user_event(CATHY, ParticipationStateChange::Knock, None)),
    );
    assert_eq!(
        flow.hub
            .hub()
            .room()
            .participant(&uid(CATHY))
            .unwrap()
            .state,
        ParticipationState::Knock
    );
    refused(&flow, user(CATHY));
    // Nor has her server, which has no joined user: it is not a follower.
    refused(&flow, Sender::Server(server("c.example")));
    // Nor anyone off the list of a room that is not public.
    refused(&flow, user("@dave:d.example"));
    // The hub does not fetch from itself.
    refused(&flow, Sender::Server(server(HUB)));

    // A follower server (b.example, where Bob is joined) gets what a member gets.
    match flow
        .hub
        .group_info(&Sender::Server(server("b.example")))
        .unwrap()
    {
        EventResponse::GroupInfo(info) => assert_eq!(info, expected),
        other => panic!("{other:?}"),
    }
    // Once invited, Cathy may fetch it (her clients join from it).
    let invite = user_event(CATHY, ParticipationStateChange::Invite, None);
    let proposal = flow.alice.propose_user_event(&room, &invite).unwrap();
    flow.accept(ALICE, Event::RoomUser(mls(proposal)));
    assert_eq!(
        flow.fetch_group_info(CATHY).pending_proposals.len(),
        1,
        "the invite's proposal is pending"
    );
}

/// DS-ADD-1 beyond a by-value Add in a member's commit: a standalone Add proposal
/// (`ds.proposal`) and an external join are refused for a user who is not joined.
#[test]
fn clients_are_added_only_for_joined_users_by_proposal_and_by_external_join() {
    let mut flow = Flow::with_alice_and_bob("adds-by-proposal");
    let room = flow.room_id.clone();

    // A standalone Add proposal for Cathy's client: Cathy is not in the room.
    let kp = flow.claim_key_package(CATHY_DESK);
    let proposal = flow.alice.propose_add(&room, &kp).unwrap();
    let err = flow.refuse(
        ALICE,
        Event::DsProposal(ProposalRequest {
            proposals: BoundedVec::new(vec![mls(proposal)]).unwrap(),
        }),
    );
    assert_refused(&err, DsRule::Add1, ErrorCode::ClientNotAllowed);
    assert_eq!(flow.hub.group().queued_count(), 0);

    // Cathy's client joins by external commit with the group's public state (as any member
    // could hand it over): refused, her user is not joined.
    let group_info = flow.alice.group_info(&room).unwrap();
    let tree = flow.alice.ratchet_tree(&room).unwrap();
    let (joined, bundle) = flow
        .cathy
        .join_by_external_commit(&group_info, Some(&tree))
        .unwrap();
    assert_eq!(joined, room);
    let err = flow.commit(CATHY, &bundle).unwrap_err();
    assert_refused(&err, DsRule::Add1, ErrorCode::ClientNotAllowed);
    flow.cathy.forget_room(&room).unwrap();
}

/// DS-XS-1: a commit that takes the hub out of `external_senders` is refused.
#[test]
fn a_commit_removing_the_hub_from_external_senders_is_refused() {
    let mut flow = Flow::with_alice_and_bob("xs-hub");
    let room = flow.room_id.clone();
    let senders = flow.alice.external_senders(&room).unwrap();
    assert!(!senders.is_empty());
    // The hub is first; keep the others.
    let without_hub = senders[1..].to_vec();
    let bundle = flow
        .alice
        .commit(
            &room,
            CommitPlan {
                external_senders: Some(without_hub),
                ..CommitPlan::default()
            },
        )
        .unwrap();
    let err = flow.commit(ALICE, &bundle).unwrap_err();
    assert_refused(&err, DsRule::Xs1, ErrorCode::RoomStateMismatch);
    flow.alice.clear_pending_commit(&room).unwrap();
    // The same commit keeping the hub is accepted.
    let bundle = flow
        .alice
        .commit(
            &room,
            CommitPlan {
                external_senders: Some(senders),
                ..CommitPlan::default()
            },
        )
        .unwrap();
    flow.commit(ALICE, &bundle).unwrap();
}

#[path = "ds/v06.rs"]
mod v06;
