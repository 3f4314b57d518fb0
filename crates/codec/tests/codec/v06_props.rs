//! -06 property tests: values built from strategies round-trip through [`Wire`]; arbitrary
//! and mutated bytes never panic any -06 decoder, and whatever a decoder accepts re-encodes
//! to exactly the same bytes.

use std::fmt::Debug;

use mimi_codec::v06::*;
use mimi_codec::{BoundedVec, Opaque, Text, Wire};
use proptest::prelude::*;

use crate::v06_fixtures::*;
use crate::v06_malformed::{decode, v06_wire_vectors};

fn vl(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let n = bytes.len();
    if n < 64 {
        out.push(n as u8);
    } else {
        out.extend(((0x4000 | n) as u16).to_be_bytes());
    }
    out.extend(bytes);
    out
}

fn small_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..40)
}
fn opq<const N: usize>() -> impl Strategy<Value = Opaque<N>> {
    small_bytes().prop_map(|b| Opaque::new(b).unwrap())
}
fn text<const N: usize>() -> impl Strategy<Value = Text<N>> {
    "\\PC{0,12}".prop_map(|s| Text::new(s).unwrap())
}
fn bounded<S: Strategy, const N: usize>(item: S) -> impl Strategy<Value = BoundedVec<S::Value, N>>
where
    S::Value: Debug,
{
    prop::collection::vec(item, 0..3).prop_map(|v| BoundedVec::new(v).unwrap())
}
fn id_uri() -> impl Strategy<Value = IdentifierUri> {
    (
        "[a-z][a-z0-9-]{0,8}(\\.[a-z]{2,5})?",
        prop::sample::select(&["u", "d", "r", "g"][..]),
        "[A-Za-z0-9._~-]{1,10}",
    )
        .prop_map(|(host, kind, id)| format!("mimi://{host}/{kind}/{id}").parse().unwrap())
}
fn credential() -> impl Strategy<Value = Credential> {
    (1u16..4, opq()).prop_map(|(credential_type, content)| Credential {
        credential_type,
        content,
    })
}
fn dictionary() -> impl Strategy<Value = AppDataDictionary> {
    prop::collection::btree_map(any::<u16>(), opq(), 0..3).prop_map(|components| {
        AppDataDictionary::new(
            components
                .into_iter()
                .map(|(component_id, data)| ComponentData { component_id, data })
                .collect(),
        )
        .unwrap()
    })
}
fn frank() -> impl Strategy<Value = Frank> {
    (any::<[u8; 32]>(), any::<u16>(), opq()).prop_map(|(server_frank, suite, sig)| Frank {
        server_frank,
        franking_signature_ciphersuite: suite,
        franking_integrity_signature: sig,
    })
}

/// An application PrivateMessage with random fields.
fn private_app() -> impl Strategy<Value = MlsMessage> {
    (small_bytes(), any::<u64>(), small_bytes(), small_bytes()).prop_map(|(g, epoch, aad, ct)| {
        let mut b = hx("0001 0002");
        b.extend(vl(&g));
        b.extend(epoch.to_be_bytes());
        b.push(1);
        b.extend(vl(&aad));
        b.extend(vl(&[1, 2]));
        b.extend(vl(&ct));
        MlsMessage::from_bytes(&b).unwrap()
    })
}
/// A proposal PublicMessage (Remove, SelfRemove or a custom type) from a member or external
/// sender.
fn public_proposal() -> impl Strategy<Value = MlsMessage> {
    (small_bytes(), any::<bool>(), 0u8..3, small_bytes()).prop_map(|(g, member, kind, sig)| {
        let mut b = hx("0001 0001");
        b.extend(vl(&g));
        b.extend(5u64.to_be_bytes());
        b.extend(if member {
            hx("01 00000001")
        } else {
            hx("02 00000000")
        });
        b.extend(hx("00 02"));
        b.extend(match kind {
            0 => hx("0003 00000004"),
            1 => hx("000a"),
            _ => hx("f7a1 02 abcd"),
        });
        b.extend(vl(&sig));
        if member {
            b.extend(vl(&[0x3b; 4]));
        }
        MlsMessage::from_bytes(&b).unwrap()
    })
}
fn public_commit() -> impl Strategy<Value = MlsMessage> {
    (small_bytes(), small_bytes()).prop_map(|(g, proposals)| {
        let mut b = hx("0001 0001");
        b.extend(vl(&g));
        b.extend(5u64.to_be_bytes());
        b.extend(hx("01 00000000 00 03"));
        b.extend(vl(&proposals));
        b.extend(hx("00 02 5151 02 7c7c 02 3b3b"));
        MlsMessage::from_bytes(&b).unwrap()
    })
}
fn ratchet_tree_option() -> impl Strategy<Value = RatchetTreeOption> {
    prop_oneof![
        opq().prop_map(RatchetTreeOption::Full),
        Just(RatchetTreeOption::DistributionService),
    ]
}
fn proposals()
-> impl Strategy<Value = BoundedVec<MlsMessage, { mimi_codec::limits::MAX_MLS_MESSAGES }>> {
    bounded(public_proposal())
}

fn key_material_request() -> impl Strategy<Value = KeyMaterialRequest> {
    (
        id_uri(),
        id_uri(),
        prop::option::of(id_uri()),
        prop::collection::vec(any::<u16>(), 1..4),
        (
            bounded(any::<u16>()),
            bounded(any::<u16>()),
            bounded(any::<u16>()),
        ),
        opq(),
        credential(),
        opq(),
    )
        .prop_map(|(req, target, room, suites, (e, p, c), key, cred, sig)| {
            KeyMaterialRequest {
                tbs: KeyMaterialRequestTbs {
                    protocol: Protocol::Mls10,
                    requesting_user: req,
                    target_user: target,
                    room_id: OptionalUri(room),
                    acceptable_ciphersuites: BoundedVec::new(suites).unwrap(),
                    required_capabilities: RequiredCapabilities {
                        extension_types: e,
                        proposal_types: p,
                        credential_types: c,
                    },
                    requester_signature_key: key,
                    requester_credential: cred,
                },
                key_material_request_signature: sig,
            }
        })
}
fn key_material_response() -> impl Strategy<Value = KeyMaterialResponse> {
    let client =
        (id_uri(), 0u8..3, any::<bool>()).prop_map(|(client_uri, kind, caps)| ClientKeyMaterial {
            client_uri,
            material: match kind {
                0 => ClientMaterial::Success(key_package()),
                1 => ClientMaterial::KeyMaterialExhausted,
                _ => ClientMaterial::NothingCompatible(caps.then(Capabilities::default)),
            },
        });
    (
        prop::sample::select(KeyMaterialUserCode::ALL),
        id_uri(),
        bounded(client),
    )
        .prop_map(|(user_status, user_uri, clients)| KeyMaterialResponse {
            protocol: Protocol::Mls10,
            user_status,
            user_uri,
            clients: if user_status.allows_clients() {
                clients
            } else {
                BoundedVec::default()
            },
        })
}
fn update_request() -> impl Strategy<Value = UpdateRequest> {
    prop_oneof![
        (
            public_commit(),
            any::<bool>(),
            any::<bool>(),
            ratchet_tree_option()
        )
            .prop_map(|(commit, welcome, full, ratchet_tree_option)| {
                UpdateRequest::Commit {
                    commit,
                    welcome: welcome.then(|| Welcome::from_bytes(&hx(welcome_body_hex())).unwrap()),
                    group_info_option: if full {
                        GroupInfoOption::Full(group_info())
                    } else {
                        GroupInfoOption::Partial(PartialGroupInfo {
                            ratchet_tree_presence: RatchetTreePresence::Removed,
                            group_info_extensions: BoundedVec::default(),
                            signature: Opaque::default(),
                        })
                    },
                    ratchet_tree_option,
                }
            }),
        (public_proposal(), proposals()).prop_map(|(proposal, more_proposals)| {
            UpdateRequest::Proposal {
                proposal,
                more_proposals,
            }
        }),
    ]
}
fn update_response() -> impl Strategy<Value = UpdateResponse> {
    (
        text(),
        prop_oneof![
            any::<u64>().prop_map(|t| UpdateOutcome::Success {
                accepted_timestamp: t
            }),
            any::<u64>().prop_map(|e| UpdateOutcome::WrongEpoch { current_epoch: e }),
            Just(UpdateOutcome::NotAllowed),
            bounded(opq())
                .prop_map(|invalid_proposals| UpdateOutcome::InvalidProposal { invalid_proposals }),
        ],
    )
        .prop_map(|(error_description, outcome)| UpdateResponse {
            error_description,
            outcome,
        })
}
fn submit_response() -> impl Strategy<Value = SubmitMessageResponse> {
    prop_oneof![
        (any::<u64>(), prop::option::of(frank())).prop_map(|(t, frank)| SubmitOutcome::Accepted {
            accepted_timestamp: t,
            frank
        }),
        Just(SubmitOutcome::NotAllowed),
        any::<u64>().prop_map(|e| SubmitOutcome::EpochTooOld { current_epoch: e }),
    ]
    .prop_map(|outcome| SubmitMessageResponse {
        protocol: Protocol::Mls10,
        outcome,
    })
}
fn fanout_message() -> impl Strategy<Value = FanoutMessage> {
    (
        any::<u64>(),
        prop_oneof![
            (private_app(), prop::option::of(frank()))
                .prop_map(|(m, frank)| (m, FanoutExtra::Application { frank })),
            ratchet_tree_option().prop_map(|ratchet_tree_option| (
                welcome_msg(),
                FanoutExtra::Welcome {
                    ratchet_tree_option
                }
            )),
            (public_proposal(), proposals())
                .prop_map(|(m, more_proposals)| (m, FanoutExtra::Proposal { more_proposals })),
            (public_commit(), proposals()).prop_map(|(m, external_proposals)| (
                m,
                FanoutExtra::Commit { external_proposals }
            )),
        ],
    )
        .prop_map(|(timestamp, (message, extra))| FanoutMessage {
            timestamp,
            message,
            extra,
        })
}
fn group_info_request() -> impl Strategy<Value = GroupInfoRequest> {
    (any::<u16>(), opq(), credential(), opq(), opq(), opq()).prop_map(
        |(cipher_suite, key, cred, hpke, code, sig)| GroupInfoRequest {
            protocol: Protocol::Mls10,
            cipher_suite,
            requesting_signature_key: key,
            requesting_credential: cred,
            group_info_public_key: hpke,
            joining_code: code,
            signature: sig,
        },
    )
}
fn group_info_response() -> impl Strategy<Value = GroupInfoResponse> {
    (
        id_uri(),
        prop_oneof![
            (any::<u16>(), opq(), credential(), opq(), opq(), opq()).prop_map(
                |(cipher_suite, key, credential, kem, ct, sig)| Ok((
                    GroupInfoSuccess {
                        cipher_suite,
                        hub_sender: ExternalSender {
                            signature_key: key,
                            credential
                        },
                        encrypted_groupinfo_and_tree: HpkeCiphertext {
                            kem_output: kem,
                            ciphertext: ct
                        },
                    },
                    sig
                ))
            ),
            Just(Err(GroupInfoCode::NotAuthorized)),
            Just(Err(GroupInfoCode::NoSuchRoom)),
        ],
    )
        .prop_map(|(room_id, result)| GroupInfoResponse {
            version: Protocol::Mls10,
            room_id,
            result,
        })
}
fn consent_entry() -> impl Strategy<Value = ConsentEntry> {
    (
        prop::sample::select(ConsentOperation::ALL),
        id_uri(),
        id_uri(),
        prop::option::of(id_uri()),
        0usize..3,
        dictionary(),
    )
        .prop_map(
            |(operation, requester_uri, target_uri, room_id, kps, ext)| ConsentEntry {
                operation,
                requester_uri,
                target_uri,
                room_id,
                client_key_packages: if operation == ConsentOperation::Grant {
                    BoundedVec::new(vec![key_package(); kps]).unwrap()
                } else {
                    BoundedVec::default()
                },
                consent_extensions: ext,
            },
        )
}
fn identifier_request() -> impl Strategy<Value = IdentifierRequest> {
    let field = prop_oneof![
        Just(SearchField::Handle),
        Just(SearchField::Email),
        Just(SearchField::PartialName),
        text().prop_map(SearchField::OidcStdClaim),
        text().prop_map(SearchField::VcardField),
    ];
    (
        bounded(
            (field, text()).prop_map(|(field, search_value)| QueryElement {
                field,
                search_value,
            }),
        ),
        dictionary(),
    )
        .prop_map(
            |(query_elements, id_request_extensions)| IdentifierRequest {
                query_elements,
                id_request_extensions,
            },
        )
}
fn identifier_response() -> impl Strategy<Value = IdentifierResponse> {
    let field = (prop::sample::select(FieldSource::ALL), text(), opq()).prop_map(
        |(field_source, field_name, field_value)| ProfileField {
            field_source,
            field_name,
            field_value,
        },
    );
    (
        prop::sample::select(IdentifierQueryCode::ALL),
        bounded(id_uri()),
        bounded(
            (id_uri(), bounded(field))
                .prop_map(|(stable_uri, fields)| UserProfile { stable_uri, fields }),
        ),
        dictionary(),
    )
        .prop_map(
            |(response_code, uri, found_profiles, ext)| IdentifierResponse {
                response_code,
                uri,
                found_profiles,
                id_response_extensions: ext,
            },
        )
}
fn abuse_report() -> impl Strategy<Value = AbuseReport> {
    (
        prop::option::of(id_uri()),
        id_uri(),
        any::<u8>(),
        text(),
        bounded(
            (opq(), frank(), any::<u64>()).prop_map(|(c, frank, t)| AbusiveMessage {
                message_content: c,
                frank,
                accepted_timestamp: t,
            }),
        ),
        dictionary(),
    )
        .prop_map(|(rep, abuser, reason, note, messages, ext)| AbuseReport {
            reporting_user: OptionalUri(rep),
            alleged_abuser_uri: abuser,
            reason_code: AbuseType(reason),
            note,
            messages,
            abuse_extensions: ext,
        })
}
fn participant_list_update() -> impl Strategy<Value = ParticipantListUpdate> {
    let pair =
        (id_uri(), any::<u32>()).prop_map(|(user, role_index)| UserRolePair { user, role_index });
    (
        bounded(
            (any::<u32>(), any::<u32>()).prop_map(|(u, r)| UserIndexRolePair {
                user_index: u,
                role_index: r,
            }),
        ),
        bounded(any::<u32>()),
        bounded(pair),
    )
        .prop_map(|(c, r, a)| ParticipantListUpdate {
            changed_role_participants: c,
            removed_indices: r,
            added_participants: a,
        })
}
fn role_data() -> impl Strategy<Value = RoleData> {
    let role = (
        any::<u32>(),
        text(),
        text(),
        bounded(any::<u16>()),
        (any::<u32>(), prop::option::of(any::<u32>())),
        (any::<u32>(), prop::option::of(any::<u32>())),
        bounded((any::<u32>(), bounded(any::<u32>())).prop_map(|(f, t)| {
            SingleSourceRoleChangeTargets {
                from_role_index: f,
                target_role_indexes: t,
            }
        })),
    )
        .prop_map(|(i, n, d, caps, (min, max), (amin, amax), changes)| Role {
            role_index: i,
            role_name: n,
            role_description: d,
            role_capabilities: caps,
            minimum_participants_constraint: min,
            maximum_participants_constraint: max,
            minimum_active_participants_constraint: amin,
            maximum_active_participants_constraint: amax,
            authorized_role_changes: changes,
        });
    bounded(role).prop_map(|roles| RoleData { roles })
}
fn base_room_policy() -> impl Strategy<Value = BaseRoomPolicy> {
    (
        prop::collection::vec(any::<bool>(), 6),
        prop::option::of(id_uri()),
        prop::option::of(any::<u32>()),
        prop::option::of(any::<u32>()),
        bounded(any::<u16>()),
    )
        .prop_map(|(b, parent, max_clients, max_users, ids)| BaseRoomPolicy {
            fixed_membership: b[0].into(),
            parent_dependent: b[1].into(),
            parent_room: BoundedVec::new(parent.into_iter().collect()).unwrap(),
            multi_device: b[2].into(),
            max_clients,
            max_users,
            pseudonyms_allowed: b[3].into(),
            persistent_room: b[4].into(),
            discoverable: b[5].into(),
            policy_component_ids: ids,
        })
}

fn round_trip<T: Wire + PartialEq + Debug>(value: &T) -> Result<(), TestCaseError> {
    let bytes = value
        .encode()
        .map_err(|e| TestCaseError::fail(format!("{value:?}: {e}")))?;
    prop_assert_eq!(tls_codec::Size::tls_serialized_len(value), bytes.len());
    let back = T::decode(&bytes).map_err(|e| TestCaseError::fail(format!("{value:?}: {e}")))?;
    prop_assert_eq!(&back, value);
    Ok(())
}

fn accepted_is_canonical<W: Wire + Debug>(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(value) = W::decode(bytes) {
        let again = value.encode().map_err(|e| {
            TestCaseError::fail(format!("{value:?} decoded but not encodable: {e}"))
        })?;
        prop_assert_eq!(again.as_slice(), bytes);
    }
    Ok(())
}

/// Every -06 top-level decoder on the same bytes.
fn all_v06_decoders(bytes: &[u8]) -> Result<(), TestCaseError> {
    accepted_is_canonical::<KeyMaterialRequest>(bytes)?;
    accepted_is_canonical::<KeyMaterialResponse>(bytes)?;
    accepted_is_canonical::<UpdateRequest>(bytes)?;
    accepted_is_canonical::<UpdateResponse>(bytes)?;
    accepted_is_canonical::<SubmitMessageRequest>(bytes)?;
    accepted_is_canonical::<SubmitMessageResponse>(bytes)?;
    accepted_is_canonical::<NotifyBody>(bytes)?;
    accepted_is_canonical::<GroupInfoRequest>(bytes)?;
    accepted_is_canonical::<GroupInfoResponse>(bytes)?;
    accepted_is_canonical::<GroupInfoRatchetTreeTbe>(bytes)?;
    accepted_is_canonical::<ConsentEntry>(bytes)?;
    accepted_is_canonical::<IdentifierRequest>(bytes)?;
    accepted_is_canonical::<IdentifierResponse>(bytes)?;
    accepted_is_canonical::<AbuseReport>(bytes)?;
    accepted_is_canonical::<FrankingIntegrityTbs>(bytes)?;
    accepted_is_canonical::<FrankAad>(bytes)?;
    accepted_is_canonical::<FrankingAgentData>(bytes)?;
    accepted_is_canonical::<ServerFrankingContext>(bytes)?;
    accepted_is_canonical::<ParticipantListData>(bytes)?;
    accepted_is_canonical::<ParticipantListUpdate>(bytes)?;
    accepted_is_canonical::<RoomMetaData>(bytes)?;
    accepted_is_canonical::<RoleData>(bytes)?;
    accepted_is_canonical::<PreAuthData>(bytes)?;
    accepted_is_canonical::<BaseRoomPolicy>(bytes)?;
    accepted_is_canonical::<MlsMessage>(bytes)?;
    accepted_is_canonical::<KeyPackage>(bytes)?;
    accepted_is_canonical::<GroupInfo>(bytes)?;
    accepted_is_canonical::<Welcome>(bytes)?;
    Ok(())
}

proptest! {
    #[test]
    fn key_material_round_trips(req in key_material_request(), resp in key_material_response()) {
        round_trip(&req)?;
        round_trip(&req.tbs)?;
        round_trip(&resp)?;
    }

    #[test]
    fn update_round_trips(req in update_request(), resp in update_response()) {
        round_trip(&req)?;
        round_trip(&resp)?;
    }

    #[test]
    fn submit_and_notify_round_trip(
        app in private_app(),
        sender in id_uri(),
        resp in submit_response(),
        fanout in prop::collection::vec(fanout_message(), 1..4),
    ) {
        round_trip(&SubmitMessageRequest { protocol: Protocol::Mls10, app_message: app, sending_uri: sender })?;
        round_trip(&resp)?;
        for m in &fanout {
            round_trip(m)?;
        }
        round_trip(&NotifyBody { messages: fanout })?;
    }

    #[test]
    fn group_info_round_trips(req in group_info_request(), resp in group_info_response()) {
        round_trip(&req)?;
        round_trip(&req.tbs())?;
        round_trip(&resp)?;
        if let Some(tbs) = resp.tbs() {
            round_trip(&tbs)?;
        }
    }

    #[test]
    fn services_round_trip(
        consent in consent_entry(),
        idreq in identifier_request(),
        idresp in identifier_response(),
        abuse in abuse_report(),
        tag in any::<[u8; 32]>(),
        (sender, room, t) in (id_uri(), id_uri(), any::<u64>()),
        frank in frank(),
        (agent_key, agent_credential) in (opq(), credential()),
    ) {
        round_trip(&consent)?;
        round_trip(&consent.scope())?;
        round_trip(&idreq)?;
        round_trip(&idresp)?;
        round_trip(&abuse)?;
        round_trip(&FrankAad { franking_tag: tag })?;
        let context = ServerFrankingContext { sender_uri: sender, room_uri: room, accepted_timestamp: t };
        round_trip(&context)?;
        round_trip(&FrankingIntegrityTbs {
            server_frank: frank.server_frank,
            franking_signature_ciphersuite: frank.franking_signature_ciphersuite,
            context,
        })?;
        round_trip(&FrankingAgentData { franking_signature_key: agent_key, credential: agent_credential })?;
    }

    #[test]
    fn room_components_round_trip(
        update in participant_list_update(),
        roles in role_data(),
        base in base_room_policy(),
    ) {
        round_trip(&update)?;
        round_trip(&ParticipantListData { participants: update.added_participants.clone() })?;
        round_trip(&roles)?;
        round_trip(&base)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn arbitrary_bytes_never_panic_any_v06_decoder(
        bytes in prop::collection::vec(any::<u8>(), 0..256)
    ) {
        all_v06_decoders(&bytes)?;
    }

    #[test]
    fn arbitrary_bytes_after_an_mls_header_never_panic(
        wire_format in 1u8..6,
        tail in prop::collection::vec(any::<u8>(), 0..160),
    ) {
        let mut bytes = vec![0, 1, 0, wire_format];
        bytes.extend(&tail);
        all_v06_decoders(&bytes)?;
        let mut framed = vec![1];
        framed.extend(&bytes);
        all_v06_decoders(&framed)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn mutated_v06_vectors_never_panic_and_accepted_is_canonical(
        which in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(
            (any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..4),
    ) {
        let vectors = v06_wire_vectors();
        let (name, target) = vectors[which.index(vectors.len())];
        let mut bytes = v06_vector(name);
        for (at, byte, kind) in mutations {
            if bytes.is_empty() {
                break;
            }
            match kind {
                0 => { let i = at.index(bytes.len()); bytes[i] = byte; }
                1 => bytes.insert(at.index(bytes.len() + 1), byte),
                _ => { bytes.remove(at.index(bytes.len())); }
            }
        }
        // The vector's own decoder, then every decoder: no panic, canonical when accepted.
        let _ = decode(target, &bytes);
        all_v06_decoders(&bytes)?;
    }
}
