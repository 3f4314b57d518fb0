//! Property tests: strategies for every structure; encode-then-decode gives the value back;
//! decoding arbitrary or mutated bytes never panics, and whatever it accepts re-encodes to
//! exactly the same bytes (the encoding is canonical).

use std::fmt::Debug;

use mimi_codec::limits::*;
use mimi_codec::*;
use proptest::prelude::*;
use tls_codec::{Deserialize, Serialize, Size};

fn server_name() -> impl Strategy<Value = ServerName> {
    prop::collection::vec("[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?", 1..4)
        .prop_map(|labels| labels.join(".").parse().unwrap())
}
fn user_id() -> impl Strategy<Value = UserId> {
    ("[a-z0-9._=/+-]{1,12}", server_name())
        .prop_map(|(local, server)| UserId::new(&local, &server).unwrap())
}
fn room_id() -> impl Strategy<Value = RoomId> {
    ("[A-Za-z0-9._~-]{1,12}", server_name())
        .prop_map(|(local, server)| RoomId::new(&local, &server).unwrap())
}
fn client_id() -> impl Strategy<Value = ClientId> {
    (user_id(), "[A-Za-z0-9._~-]{1,8}")
        .prop_map(|(user, device)| ClientId::new(&user, &device).unwrap())
}
fn sender() -> impl Strategy<Value = Sender> {
    prop_oneof![
        user_id().prop_map(Sender::User),
        server_name().prop_map(Sender::Server)
    ]
}
fn opaque<const MAX: usize>() -> impl Strategy<Value = Opaque<MAX>> {
    prop::collection::vec(any::<u8>(), 0..80).prop_map(|b| Opaque::new(b).unwrap())
}
/// `opaque x<V>` bytes, prefix included, for building MLS messages.
fn vl(bytes: &[u8]) -> Vec<u8> {
    use tls_codec::Serialize as _;
    Opaque::<{ usize::MAX }>::new(bytes.to_vec())
        .unwrap()
        .tls_serialize_detached()
        .unwrap()
}
/// A well-framed MLSMessage (RFC 9420): an application PrivateMessage, a Remove proposal
/// from an external sender, or a Welcome, with arbitrary contents.
fn mls_message() -> impl Strategy<Value = MlsBytes> {
    let bytes = || prop::collection::vec(any::<u8>(), 0..40);
    (
        0..3u8,
        bytes(),
        any::<u64>(),
        bytes(),
        bytes(),
        any::<u32>(),
    )
        .prop_map(|(kind, group, epoch, aad, body, n)| {
            let mut b = vec![0, 1];
            match kind {
                0 => {
                    b.extend([0, 2]);
                    b.extend(vl(&group));
                    b.extend(epoch.to_be_bytes());
                    b.push(1);
                    b.extend(vl(&aad));
                    b.extend(vl(&[]));
                    b.extend(vl(&body));
                }
                1 => {
                    b.extend([0, 1]);
                    b.extend(vl(&group));
                    b.extend(epoch.to_be_bytes());
                    b.push(2);
                    b.extend(n.to_be_bytes());
                    b.extend(vl(&aad));
                    b.extend([2, 0, 3]);
                    b.extend(n.to_be_bytes());
                    b.extend(vl(&body));
                }
                _ => {
                    b.extend([0, 3, 0, 1]);
                    b.extend(vl(&aad));
                    b.extend(vl(&body));
                }
            }
            MlsBytes::new(b).unwrap()
        })
}
/// A ratchet tree with its one length prefix.
fn ratchet_tree() -> impl Strategy<Value = MlsBytes> {
    prop::collection::vec(any::<u8>(), 0..80).prop_map(|b| MlsBytes::new(vl(&b)).unwrap())
}
fn text<const MAX: usize>() -> impl Strategy<Value = Text<MAX>> {
    "\\PC{0,16}".prop_map(|s| Text::new(s).unwrap())
}
fn bounded<T: Debug, const MAX: usize>(
    item: impl Strategy<Value = T>,
    min: usize,
) -> impl Strategy<Value = BoundedVec<T, MAX>> {
    prop::collection::vec(item, min..4).prop_map(|v| BoundedVec::new(v).unwrap())
}
fn one_of<T: Copy + Debug + 'static>(all: &'static [T]) -> impl Strategy<Value = T> {
    prop::sample::select(all)
}
fn role() -> impl Strategy<Value = Role> {
    "[a-z0-9._-]{1,12}".prop_map(|s| s.parse().unwrap())
}

fn user_event() -> impl Strategy<Value = UserEvent> {
    (
        user_id(),
        one_of(ParticipationStateChange::ALL),
        text(),
        prop::option::of(opaque()),
        prop::option::of(role()),
    )
        .prop_map(
            |(target, change, reason, follower_server_certificate, role)| UserEvent {
                target,
                change,
                reason,
                follower_server_certificate,
                role,
            },
        )
}
fn participant() -> impl Strategy<Value = ParticipantData> {
    (user_id(), role(), one_of(ParticipationState::ALL)).prop_map(|(user_id, role, state)| {
        ParticipantData {
            user_id,
            role,
            state,
        }
    })
}
fn room_state() -> impl Strategy<Value = RoomState> {
    let permission = (one_of(PolicyAction::ALL), bounded(role(), 0))
        .prop_map(|(action, roles)| Permission { action, roles });
    let policy = (text(), one_of(JoinRule::ALL), bounded(permission, 0)).prop_map(
        |(policy_id, join_rule, permissions)| RoomPolicy {
            policy_id,
            join_rule,
            permissions,
        },
    );
    let security = (text(), any::<u16>()).prop_map(|(protocol, cipher_suite)| SecurityConfig {
        protocol,
        cipher_suite,
    });
    (room_id(), bounded(participant(), 0), policy, security).prop_map(
        |(room_id, participants, policy, security)| RoomState {
            room_id,
            participants,
            policy,
            security,
        },
    )
}
fn info_event() -> impl Strategy<Value = InfoEvent> {
    room_state().prop_map(|room_state| InfoEvent { room_state })
}
fn proposal_request() -> impl Strategy<Value = ProposalRequest> {
    bounded(mls_message(), 1).prop_map(|proposals| ProposalRequest { proposals })
}
fn commit_request() -> impl Strategy<Value = CommitRequest> {
    (mls_message(), mls_message(), bounded(mls_message(), 0)).prop_map(
        |(commit, group_info, welcomes)| CommitRequest {
            commit,
            group_info,
            welcomes,
        },
    )
}
fn key_packages_request() -> impl Strategy<Value = KeyPackagesRequest> {
    (any::<u16>(), user_id(), bounded(client_id(), 0)).prop_map(|(cipher_suite, user, clients)| {
        KeyPackagesRequest {
            cipher_suite,
            user,
            clients,
        }
    })
}
fn send_message_request() -> impl Strategy<Value = SendMessageRequest> {
    mls_message().prop_map(|application_message| SendMessageRequest {
        application_message,
    })
}
fn key_packages_response() -> impl Strategy<Value = KeyPackagesResponse> {
    let entry = (client_id(), one_of(KeyPackageType::ALL), mls_message()).prop_map(
        |(client, kind, key_package)| KeyPackageEntry {
            client,
            kind,
            key_package,
        },
    );
    bounded(entry, 0).prop_map(|key_packages| KeyPackagesResponse { key_packages })
}
fn group_info_response() -> impl Strategy<Value = GroupInfoResponse> {
    (mls_message(), ratchet_tree(), bounded(mls_message(), 0)).prop_map(
        |(group_info, ratchet_tree, pending_proposals)| GroupInfoResponse {
            group_info,
            ratchet_tree,
            pending_proposals,
        },
    )
}
fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        mls_message().prop_map(Event::RoomUser),
        user_event().prop_map(Event::RoomUserUnsigned),
        info_event().prop_map(Event::RoomInfo),
        proposal_request().prop_map(Event::DsProposal),
        commit_request().prop_map(Event::DsCommit),
        key_packages_request().prop_map(Event::DsFetchKeyPackages),
        Just(Event::DsFetchGroupInfo(GroupInfoRequest)),
        send_message_request().prop_map(Event::DsSendMessage),
        (mls_message(), ratchet_tree()).prop_map(|(group_info, ratchet_tree)| {
            Event::DsCreateGroup(CreateGroupRequest {
                group_info,
                ratchet_tree,
            })
        }),
    ]
}
fn event_response() -> impl Strategy<Value = EventResponse> {
    let error = (one_of(ErrorCode::ALL), "\\PC{0,16}")
        .prop_map(|(code, detail)| EventResponse::Error(EventError::new(code, detail)));
    prop_oneof![
        Just(EventResponse::Ok),
        key_packages_response().prop_map(EventResponse::KeyPackages),
        group_info_response().prop_map(EventResponse::GroupInfo),
        error,
    ]
}
fn fanout_event() -> impl Strategy<Value = FanoutEvent> {
    (
        any::<u64>(),
        prop::collection::vec(any::<u8>(), 0..=MAX_HASH_LEN),
        bounded(any::<u64>(), 0),
        event(),
    )
        .prop_map(|(sequence, hash, auth_events, event)| FanoutEvent {
            sequence,
            prev_hash: Opaque::new(hash).unwrap(),
            auth_events,
            event,
        })
}
fn mimi_message() -> impl Strategy<Value = MimiMessage> {
    let body = prop_oneof![
        event().prop_map(MessageBody::Event),
        event_response().prop_map(MessageBody::Response),
        fanout_event().prop_map(MessageBody::Fanout),
    ];
    (room_id(), sender(), body)
        .prop_map(|(room, sender, body)| MimiMessage::new(room, sender, body))
}
fn check_invite_request() -> impl Strategy<Value = CheckInviteRequest> {
    (mimi_message(), info_event())
        .prop_map(|(invite, room_info)| CheckInviteRequest { invite, room_info })
}
fn identifier_request() -> impl Strategy<Value = IdentifierRequest> {
    let query = prop_oneof![
        Just(IdentifierQuery::Handle),
        Just(IdentifierQuery::Nick),
        Just(IdentifierQuery::Email),
        Just(IdentifierQuery::Phone),
        Just(IdentifierQuery::PartialName),
        Just(IdentifierQuery::WholeProfile),
        text().prop_map(IdentifierQuery::OidcStdClaim),
        text().prop_map(IdentifierQuery::VcardField),
    ];
    (query, text()).prop_map(|(query, search_value)| IdentifierRequest {
        query,
        search_value,
    })
}
fn identifier_response() -> impl Strategy<Value = IdentifierResponse> {
    (one_of(IdentifierDiscoveryCode::ALL), text())
        .prop_map(|(code, uri)| IdentifierResponse { code, uri })
}

/// Encode, decode, compare; the length the encoder predicts is the length it writes.
fn round_trip<T: Wire + PartialEq + Debug>(value: &T) -> Result<(), TestCaseError> {
    let bytes = value
        .encode()
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(bytes.len(), value.tls_serialized_len());
    let decoded = T::decode(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&decoded, value);
    prop_assert_eq!(decoded.encode().ok(), Some(bytes));
    Ok(())
}

/// The same through the raw TLS traits, for the structures that are not top-level.
fn tls_round_trip<T>(value: &T) -> Result<(), TestCaseError>
where
    T: Serialize + Deserialize + Size + PartialEq + Debug,
{
    let mut bytes = Vec::new();
    let written = value
        .tls_serialize(&mut bytes)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(written, bytes.len());
    prop_assert_eq!(bytes.len(), value.tls_serialized_len());
    let mut reader = bytes.as_slice();
    let decoded =
        T::tls_deserialize(&mut reader).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert!(reader.is_empty());
    prop_assert_eq!(&decoded, value);
    Ok(())
}

/// Decode as `T`; if accepted, the value must re-encode to exactly `bytes`.
fn accepted_is_canonical<T: Wire + Debug>(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(value) = T::decode(bytes) {
        let again = value.encode().map_err(|e| {
            TestCaseError::fail(format!("{value:?} decoded but not encodable: {e}"))
        })?;
        prop_assert_eq!(again.as_slice(), bytes);
    }
    Ok(())
}

/// Every top-level decoder on the same bytes.
fn all_decoders(bytes: &[u8]) -> Result<(), TestCaseError> {
    accepted_is_canonical::<MimiMessage>(bytes)?;
    accepted_is_canonical::<CheckInviteRequest>(bytes)?;
    accepted_is_canonical::<IdentifierRequest>(bytes)?;
    accepted_is_canonical::<IdentifierResponse>(bytes)?;
    accepted_is_canonical::<UserEvent>(bytes)?;
    accepted_is_canonical::<RoomState>(bytes)?;
    accepted_is_canonical::<InfoEvent>(bytes)?;
    accepted_is_canonical::<Event>(bytes)?;
    accepted_is_canonical::<FanoutEvent>(bytes)?;
    Ok(())
}

/// A change to valid bytes: overwrite, insert or remove one byte.
#[derive(Debug, Clone)]
enum Mutation {
    Set(prop::sample::Index, u8),
    Insert(prop::sample::Index, u8),
    Remove(prop::sample::Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<prop::sample::Index>().prop_map(Mutation::Remove),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        if bytes.is_empty() {
            break;
        }
        match m {
            Mutation::Set(i, b) => {
                let i = i.index(bytes.len());
                bytes[i] = *b;
            }
            Mutation::Insert(i, b) => bytes.insert(i.index(bytes.len() + 1), *b),
            Mutation::Remove(i) => {
                bytes.remove(i.index(bytes.len()));
            }
        }
    }
    bytes
}

proptest! {
    #[test]
    fn mimi_message_round_trips(v in mimi_message()) { round_trip(&v)?; }

    /// The header read of a fanned-out event's sequence agrees with the whole decode, and
    /// reads nothing from other message types or from bytes cut inside the header.
    #[test]
    fn fanout_sequence_agrees_with_the_decode(v in mimi_message(), cut in 0usize..64) {
        let bytes = v.encode().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let expected = match &v.body {
            MessageBody::Fanout(f) => Some(f.sequence),
            _ => None,
        };
        prop_assert_eq!(message::fanout_sequence(&bytes), expected);
        // version, room, sender, message type, sequence
        let header = 2 + v.room_id.tls_serialized_len() + v.sender.tls_serialized_len() + 1 + 8;
        let cut = cut.min(header - 1).min(bytes.len());
        prop_assert_eq!(message::fanout_sequence(&bytes[..cut]), None);
    }

    #[test]
    fn check_invite_request_round_trips(v in check_invite_request()) { round_trip(&v)?; }

    #[test]
    fn identifier_request_round_trips(v in identifier_request()) { round_trip(&v)?; }

    #[test]
    fn identifier_response_round_trips(v in identifier_response()) { round_trip(&v)?; }

    #[test]
    fn user_event_round_trips(v in user_event()) { round_trip(&v)?; }

    #[test]
    fn room_state_and_info_event_round_trip(v in info_event()) {
        round_trip(&v.room_state)?;
        round_trip(&v)?;
    }

    #[test]
    fn event_and_fanout_event_round_trip(v in fanout_event()) {
        round_trip(&v.event)?;
        round_trip(&v)?;
    }

    #[test]
    fn inner_structures_round_trip(
        p in participant(),
        proposal in proposal_request(),
        commit in commit_request(),
        kp_req in key_packages_request(),
        send in send_message_request(),
        kp_resp in key_packages_response(),
        gi_resp in group_info_response(),
        response in event_response(),
    ) {
        tls_round_trip(&p)?;
        tls_round_trip(&proposal)?;
        tls_round_trip(&commit)?;
        tls_round_trip(&kp_req)?;
        tls_round_trip(&GroupInfoRequest)?;
        tls_round_trip(&send)?;
        tls_round_trip(&kp_resp)?;
        tls_round_trip(&gi_resp)?;
        tls_round_trip(&response)?;
    }

    #[test]
    fn identifiers_keep_their_text(c in client_id(), r in room_id(), s in sender()) {
        let user = c.user();
        prop_assert_eq!(c.as_str(), format!("{}#{}", user, c.device()));
        prop_assert_eq!(c.as_str().parse::<ClientId>().ok(), Some(c.clone()));
        prop_assert_eq!(r.as_str().parse::<RoomId>().ok(), Some(r.clone()));
        prop_assert_eq!(s.to_string().parse::<Sender>().ok(), Some(s.clone()));
        prop_assert_eq!(user.as_str(), format!("@{}:{}", user.localpart(), user.server()));
        let room_suffix = format!(":{}", r.server());
        prop_assert!(r.as_str().ends_with(&room_suffix));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn arbitrary_bytes_never_panic_and_accepted_is_canonical(
        bytes in prop::collection::vec(any::<u8>(), 0..256)
    ) {
        all_decoders(&bytes)?;
    }

    #[test]
    fn arbitrary_bytes_after_a_valid_header_never_panic(
        message_type in 0u8..5,
        ty in prop::sample::select(&[
            "m.room.user", "m.room.user.unsigned", "m.room.info", "ds.proposal", "ds.commit",
            "ds.fetch_key_packages", "ds.fetch_group_info", "ds.send_message",
        ][..]),
        tail in prop::collection::vec(any::<u8>(), 0..128),
    ) {
        let mut bytes = vec![0, 1, 13];
        bytes.extend_from_slice(b"!r1:a.example");
        bytes.push(9);
        bytes.extend_from_slice(b"a.example");
        bytes.push(message_type);
        if message_type == 1 {
            bytes.push(ty.len() as u8);
            bytes.extend_from_slice(ty.as_bytes());
            bytes.extend_from_slice(&[0, 1]);
        }
        bytes.extend_from_slice(&tail);
        accepted_is_canonical::<MimiMessage>(&bytes)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn mutated_encodings_never_panic_and_accepted_is_canonical(
        v in check_invite_request(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let bytes = v.encode().map_err(|e| TestCaseError::fail(e.to_string()))?;
        all_decoders(&mutate(bytes.clone(), &mutations))?;
        let inner = v.invite.encode().map_err(|e| TestCaseError::fail(e.to_string()))?;
        all_decoders(&mutate(inner, &mutations))?;
    }
}

#[test]
fn varint_prefix_boundaries() {
    for (len, prefix) in [
        (0usize, vec![0x00]),
        (63, vec![0x3f]),
        (64, vec![0x40, 0x40]),
        (16383, vec![0x7f, 0xff]),
        (16384, vec![0x80, 0x00, 0x40, 0x00]),
        (MAX_MLS_OBJECT_LEN, vec![0x80, 0x80, 0x00, 0x00]),
    ] {
        let value = MlsBytes::new(vec![7; len]).unwrap();
        let mut bytes = Vec::new();
        value.tls_serialize(&mut bytes).unwrap();
        assert_eq!(&bytes[..prefix.len()], prefix.as_slice(), "length {len}");
        assert_eq!(bytes.len(), prefix.len() + len);
        let mut reader = bytes.as_slice();
        assert_eq!(MlsBytes::tls_deserialize(&mut reader).unwrap(), value);
        assert!(reader.is_empty());
    }
}
