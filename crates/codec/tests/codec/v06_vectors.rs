//! -06 fixed-byte vectors (`tests/vectors/v06/`): each value encodes to exactly the file's
//! bytes and the file decodes to exactly the value. The files were written field by field
//! from the TLS presentation language of draft-ietf-mimi-protocol-06 (each line's comment
//! names its field), not produced by this encoder.

use std::fmt::Debug;

use mimi_codec::Wire;
use mimi_codec::v06::*;

use crate::v06_fixtures::*;

/// Every file in `tests/vectors/v06/`.
pub const V06_FILES: &[&str] = &[
    "abuse_report.hex",
    "base_room_policy.hex",
    "consent_entry_grant.hex",
    "consent_entry_request.hex",
    "frank_aad.hex",
    "franking_agent_data.hex",
    "franking_integrity_tbs.hex",
    "group_info_ratchet_tree_tbe.hex",
    "group_info_request.hex",
    "group_info_request_no_code.hex",
    "group_info_request_tbs.hex",
    "group_info_response_not_authorized.hex",
    "group_info_response_success.hex",
    "group_info_response_tbs.hex",
    "identifier_request.hex",
    "identifier_response.hex",
    "key_material_request.hex",
    "key_material_request_tbs.hex",
    "key_material_response.hex",
    "key_material_response_no_consent.hex",
    "notify_body.hex",
    "participant_list_data.hex",
    "participant_list_update.hex",
    "role_data.hex",
    "room_metadata.hex",
    "server_franking_context.hex",
    "submit_message_request.hex",
    "submit_message_response_accepted.hex",
    "submit_message_response_epoch_too_old.hex",
    "update_request_commit.hex",
    "update_request_commit_partial.hex",
    "update_request_proposal.hex",
    "update_response_invalid_proposal.hex",
    "update_response_success.hex",
    "update_response_wrong_epoch.hex",
];

fn check<T: Wire + PartialEq + Debug>(name: &str, value: &T) {
    assert!(V06_FILES.contains(&name), "{name} is not in V06_FILES");
    let bytes = v06_vector(name);
    assert_eq!(
        hex::encode(value.encode().unwrap()),
        hex::encode(&bytes),
        "{name}: encoding"
    );
    assert_eq!(
        tls_codec::Size::tls_serialized_len(value),
        bytes.len(),
        "{name}: length"
    );
    assert_eq!(&T::decode(&bytes).unwrap(), value, "{name}: decoding");
}

#[test]
fn every_v06_vector_file_is_listed() {
    let dir = format!("{}/tests/vectors/v06", env!("CARGO_MANIFEST_DIR"));
    let mut found: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    found.sort();
    let listed: Vec<String> = V06_FILES.iter().map(|s| s.to_string()).collect();
    assert_eq!(found, listed);
}

#[test]
fn key_material() {
    check("key_material_request.hex", &key_material_request());
    check("key_material_request_tbs.hex", &key_material_request_tbs());
    check("key_material_response.hex", &key_material_response());
    check(
        "key_material_response_no_consent.hex",
        &KeyMaterialResponse {
            protocol: Protocol::Mls10,
            user_status: KeyMaterialUserCode::NoConsent,
            user_uri: uri(BOB),
            clients: bv(vec![]),
        },
    );
    // The TBS is the request without its signature.
    let request = v06_vector("key_material_request.hex");
    let tbs = v06_vector("key_material_request_tbs.hex");
    assert_eq!(&request[..tbs.len()], tbs.as_slice());
}

#[test]
fn update() {
    check("update_request_commit.hex", &update_commit());
    check(
        "update_request_commit_partial.hex",
        &update_commit_partial(),
    );
    check("update_request_proposal.hex", &update_proposal());
    check(
        "update_response_success.hex",
        &UpdateResponse {
            error_description: txt(""),
            outcome: UpdateOutcome::Success {
                accepted_timestamp: T0,
            },
        },
    );
    check(
        "update_response_invalid_proposal.hex",
        &UpdateResponse {
            error_description: txt("bad add"),
            outcome: UpdateOutcome::InvalidProposal {
                invalid_proposals: bv(vec![op(&[0xa1; 4]), op(&[0xa2; 2])]),
            },
        },
    );
    check(
        "update_response_wrong_epoch.hex",
        &UpdateResponse {
            error_description: txt("epoch 7"),
            outcome: UpdateOutcome::WrongEpoch { current_epoch: 7 },
        },
    );
}

#[test]
fn submit_message() {
    check("submit_message_request.hex", &submit_request());
    check(
        "submit_message_response_accepted.hex",
        &SubmitMessageResponse {
            protocol: Protocol::Mls10,
            outcome: SubmitOutcome::Accepted {
                accepted_timestamp: T0,
                frank: Some(frank()),
            },
        },
    );
    check(
        "submit_message_response_epoch_too_old.hex",
        &SubmitMessageResponse {
            protocol: Protocol::Mls10,
            outcome: SubmitOutcome::EpochTooOld { current_epoch: 9 },
        },
    );
}

#[test]
fn notify() {
    let body = notify_body();
    check("notify_body.hex", &body);
    // Each message on its own is a FanoutMessage, and their concatenation is the body.
    let mut joined = Vec::new();
    for m in &body.messages {
        let one = m.encode().unwrap();
        assert_eq!(&FanoutMessage::decode(&one).unwrap(), m);
        joined.extend(one);
    }
    assert_eq!(joined, v06_vector("notify_body.hex"));
}

#[test]
fn group_info() {
    let request = group_info_request();
    check("group_info_request.hex", &request);
    check("group_info_request_tbs.hex", &request.tbs());
    let no_code = GroupInfoRequest {
        joining_code: op(b""),
        ..group_info_request()
    };
    check("group_info_request_no_code.hex", &no_code);
    assert_eq!(no_code.tbs().joining_code, None);
    let response = group_info_response();
    check("group_info_response_success.hex", &response);
    check("group_info_response_tbs.hex", &response.tbs().unwrap());
    let refused = GroupInfoResponse {
        version: Protocol::Mls10,
        room_id: uri(ROOM),
        result: Err(GroupInfoCode::NotAuthorized),
    };
    check("group_info_response_not_authorized.hex", &refused);
    assert_eq!(refused.tbs(), None);
    check(
        "group_info_ratchet_tree_tbe.hex",
        &GroupInfoRatchetTreeTbe {
            group_info: mimi_codec::v06::GroupInfo::from_bytes(
                group_info_bytes_for_tbe().as_slice(),
            )
            .unwrap(),
            ratchet_tree_option: ratchet_full(),
            pending_proposals: bv(vec![PendingProposal {
                proposal: public_remove(),
                hub_accepted_time: T0 + 5,
            }]),
        },
    );
}

fn group_info_bytes_for_tbe() -> Vec<u8> {
    crate::v06_fixtures::group_info().into_bytes()
}

#[test]
fn consent() {
    check(
        "consent_entry_request.hex",
        &ConsentEntry {
            operation: ConsentOperation::Request,
            requester_uri: uri(ALICE),
            target_uri: uri(BOB),
            room_id: None,
            client_key_packages: bv(vec![]),
            consent_extensions: AppDataDictionary::default(),
        },
    );
    let grant = consent_grant();
    check("consent_entry_grant.hex", &grant);
    assert_eq!(grant.scope().room_id, Some(uri(ROOM)));
}

#[test]
fn identifier_query() {
    check("identifier_request.hex", &identifier_request());
    check("identifier_response.hex", &identifier_response());
}

#[test]
fn abuse_and_franking() {
    check("abuse_report.hex", &abuse_report());
    check(
        "franking_integrity_tbs.hex",
        &FrankingIntegrityTbs {
            server_frank: frank().server_frank,
            franking_signature_ciphersuite: 1,
            context: ServerFrankingContext {
                sender_uri: uri(CATHY),
                room_uri: uri(ROOM),
                accepted_timestamp: T0,
            },
        },
    );
    let mut tag = [0u8; 32];
    for (i, b) in tag.iter_mut().enumerate() {
        *b = 0xa0 + i as u8;
    }
    check("frank_aad.hex", &FrankAad { franking_tag: tag });
    check(
        "server_franking_context.hex",
        &ServerFrankingContext {
            sender_uri: uri(CATHY),
            room_uri: uri(ROOM),
            accepted_timestamp: T0,
        },
    );
    check(
        "franking_agent_data.hex",
        &FrankingAgentData {
            franking_signature_key: op(&[0x55; 4]),
            credential: basic("mimi://a.example"),
        },
    );
}

#[test]
fn room_components() {
    check("participant_list_data.hex", &participant_list());
    check("participant_list_update.hex", &participant_list_update());
    check("room_metadata.hex", &room_metadata());
    check("role_data.hex", &role_data());
    check("base_room_policy.hex", &base_room_policy());
    // The AppDataUpdate proposal of the vectors carries this very update.
    assert_eq!(
        ParticipantListUpdate::decode(&plu_add_cathy_bytes()).unwrap(),
        ParticipantListUpdate {
            changed_role_participants: bv(vec![]),
            removed_indices: bv(vec![]),
            added_participants: bv(vec![UserRolePair {
                user: uri(CATHY),
                role_index: 2,
            }]),
        }
    );
}

#[test]
fn mls_scanner_finds_kinds_and_ends() {
    assert_eq!(
        private_app().kind(),
        MlsMessageKind::PrivateMessage(ContentType::Application)
    );
    assert_eq!(
        public_commit().kind(),
        MlsMessageKind::PublicMessage(ContentType::Commit)
    );
    assert_eq!(
        public_adu(true).kind(),
        MlsMessageKind::PublicMessage(ContentType::Proposal)
    );
    assert_eq!(welcome_msg().kind(), MlsMessageKind::Welcome);
    // A KeyPackage and a GroupInfo wrapped as MLSMessages.
    let mut kp = hx("0001 0005");
    kp.extend(key_package().as_bytes());
    assert_eq!(
        MlsMessage::from_bytes(&kp).unwrap().kind(),
        MlsMessageKind::KeyPackage
    );
    let mut gi = hx("0001 0004");
    gi.extend(crate::v06_fixtures::group_info().as_bytes());
    assert_eq!(
        MlsMessage::from_bytes(&gi).unwrap().kind(),
        MlsMessageKind::GroupInfo
    );
    // Every proposal type RFC 9420 and the extensions draft define, in one commit's
    // PublicMessage each: the scanner reaches the signature after each.
    let leaf = format!("03 e1e1e1 03 515151 0001 <<{BOB}>> 02 0001 02 0001 00 00 00 02 00 02 5a5a");
    let proposals = [
        hx(&format!("0001 {}", hex::encode(key_package().as_bytes()))),
        hx(&format!("0002 {leaf}")),
        hx("0003 00000002"),
        hx("0004 01 02 aaaa 02 bbbb"),
        hx("0004 02 01 02 aaaa 0000000000000001 02 bbbb"),
        hx("0005 02 6732 0001 0001 00"),
        hx("0006 02 aaaa"),
        hx("0007 00"),
        hx("0008 0023 02"),
        hx("0009 0020 02 aaaa"),
        hx("000a"),
        hx("f7a0 03 010203"),
    ];
    for p in proposals {
        let mut b = hx("0001 0001 02 6731 0000000000000005 02 00000000 00 02");
        b.extend(&p);
        b.extend(hx("02 5151"));
        let m = MlsMessage::from_bytes(&b).unwrap_or_else(|e| panic!("{}: {e}", hex::encode(&p)));
        assert_eq!(m.as_bytes(), b.as_slice());
    }
    // A commit with an UpdatePath (leaf_node_source commit) and a new-member sender.
    let b = hx(&format!(
        "0001 0001 02 6731 0000000000000005 04 00 03 00 01 \
         03 e1e1e1 03 515151 0001 <<{BOB}>> 02 0001 02 0001 00 00 00 03 02 7070 00 02 5a5a \
         00 02 5151 02 7c7c"
    ));
    assert_eq!(
        MlsMessage::from_bytes(&b).unwrap().kind(),
        MlsMessageKind::PublicMessage(ContentType::Commit)
    );
}

#[test]
fn directory_json() {
    let dir = Directory::for_base("https://mimi.a.example/v06/").unwrap();
    let json = dir.to_json();
    let back = Directory::from_json(json.as_bytes()).unwrap();
    assert_eq!(back, dir);
    let notify = dir.notify.as_ref().unwrap();
    assert_eq!(
        notify.as_str(),
        "https://mimi.a.example/v06/notify/{roomId}"
    );
    assert_eq!(notify.variable(), "roomId");
    assert_eq!(
        notify.expand(ROOM),
        "https://mimi.a.example/v06/notify/mimi%3A%2F%2Fa.example%2Fr%2Fclubhouse"
    );
    assert_eq!(
        dir.request_consent.as_ref().unwrap().variable(),
        "targetDomain"
    );
    assert_eq!(
        dir.update_consent.as_ref().unwrap().variable(),
        "requesterDomain"
    );
    assert_eq!(dir.proxy_download, None);

    // The draft's example, with its two typos fixed (the colon after "proxyDownload" and the
    // slash in "update/{roomId}"): accepted, including its {targetUser}/{requesterUser}
    // consent variables.
    let draft = br#"{
      "keyMaterial": "https://mimi.example.com/v1/keyMaterial/{targetUser}",
      "update": "https://mimi.example.com/v1/update/{roomId}",
      "notify": "https://mimi.example.com/v1/notify/{roomId}",
      "submitMessage": "https://mimi.example.com/v1/submitMessage/{roomId}",
      "groupInfo": "https://mimi.example.com/v1/groupInfo/{roomId}",
      "requestConsent": "https://mimi.example.com/v1/requestConsent/{targetUser}",
      "updateConsent": "https://mimi.example.com/v1/updateConsent/{requesterUser}",
      "identifierQuery": "https://mimi.example.com/v1/identifierQuery/{domain}",
      "reportAbuse": "https://mimi.example.com/v1/reportAbuse/{roomId}",
      "proxyDownload": "https://mimi.example.com/v1/proxyDownload/{downloadUrl}"
    }"#;
    let parsed = Directory::from_json(draft).unwrap();
    assert_eq!(
        parsed.request_consent.as_ref().unwrap().variable(),
        "targetUser"
    );
    // The draft's text as written is refused: invalid JSON.
    let broken = String::from_utf8(draft.to_vec())
        .unwrap()
        .replace("\"proxyDownload\":", "\"proxyDownload\"");
    assert!(matches!(
        Directory::from_json(broken.as_bytes()),
        Err(DirectoryError::Json(_))
    ));
    // ... and its `update{roomId}` has no slash before the variable.
    let no_slash = String::from_utf8(draft.to_vec())
        .unwrap()
        .replace("update/{roomId}", "update{roomId}");
    assert_eq!(
        Directory::from_json(no_slash.as_bytes()),
        Err(DirectoryError::Template { endpoint: "update" })
    );
    for (json, err) in [
        (
            r#"{"notify": "http://a.example/notify/{roomId}"}"#,
            DirectoryError::NotHttps { endpoint: "notify" },
        ),
        (
            r#"{"notify": "https://a.example/notify/{room}"}"#,
            DirectoryError::Variable {
                endpoint: "notify",
                found: "room".into(),
            },
        ),
        (
            r#"{"notify": "https://a.example/notify/{roomId}/x"}"#,
            DirectoryError::Template { endpoint: "notify" },
        ),
        (
            r#"{"notify": "https://a.example/notify/"}"#,
            DirectoryError::Template { endpoint: "notify" },
        ),
    ] {
        assert_eq!(Directory::from_json(json.as_bytes()), Err(err), "{json}");
    }
    // A template read without validation never panics its accessors.
    let raw: Directory =
        serde_json::from_str(r#"{"notify": "https://x/{\u00e9", "update": "https://x/"}"#).unwrap();
    assert_eq!(raw.notify.as_ref().unwrap().variable(), "\u{e9}");
    assert_eq!(raw.update.as_ref().unwrap().variable(), "");
    assert_eq!(raw.update.as_ref().unwrap().expand("r"), "https://x/r");
    // Unknown members are ignored (the directory may grow).
    assert!(Directory::from_json(br#"{"meta": {"x": 1}}"#).is_ok());
}

/// havenmessenger/interop (`src/protocol_wire.rs`) has hand-computed byte tests of some -06
/// structures. Their bytes, for the same values, against this encoder
/// (`docs/wire-format-06.md` §10 records agreement and differences).
#[test]
fn havens_fixed_byte_tests_agree_where_the_structures_agree() {
    // ConsentEntry: request, no room, empty consent_extensions.
    let request = ConsentEntry {
        operation: ConsentOperation::Request,
        requester_uri: uri(ALICE),
        target_uri: uri(BOB),
        room_id: None,
        client_key_packages: bv(vec![]),
        consent_extensions: AppDataDictionary::default(),
    };
    assert_eq!(
        request.encode().unwrap(),
        hx(&format!("01 <<{ALICE}>> <<{BOB}>> 00 00"))
    );
    // SubmitMessageResponse: accepted (timestamp 0x0102030405060708, no frank), notAllowed,
    // epochTooOld(42).
    let accepted = SubmitMessageResponse {
        protocol: Protocol::Mls10,
        outcome: SubmitOutcome::Accepted {
            accepted_timestamp: 0x0102_0304_0506_0708,
            frank: None,
        },
    };
    assert_eq!(accepted.encode().unwrap(), hx("0100010203040506070800"));
    let not_allowed = SubmitMessageResponse {
        protocol: Protocol::Mls10,
        outcome: SubmitOutcome::NotAllowed,
    };
    assert_eq!(not_allowed.encode().unwrap(), hx("0101"));
    let too_old = SubmitMessageResponse {
        protocol: Protocol::Mls10,
        outcome: SubmitOutcome::EpochTooOld { current_epoch: 42 },
    };
    assert_eq!(too_old.encode().unwrap(), hx("0102000000000000002a"));
    // Haven refuses the accepted response without its frank presence byte; so does this codec.
    assert_eq!(
        SubmitMessageResponse::decode(&hx("01000102030405060708")),
        Err(mimi_codec::CodecError::EndOfInput)
    );
    // KeyMaterialResponse: partialSuccess, one client (the user's URI) keyMaterialExhausted.
    let exhausted = KeyMaterialResponse {
        protocol: Protocol::Mls10,
        user_status: KeyMaterialUserCode::PartialSuccess,
        user_uri: uri(BOB),
        clients: bv(vec![ClientKeyMaterial {
            client_uri: uri(BOB),
            material: ClientMaterial::KeyMaterialExhausted,
        }]),
    };
    assert_eq!(
        exhausted.encode().unwrap(),
        hx(&format!("01 01 <<{BOB}>> 18 01 <<{BOB}>>"))
    );
    // UpdateRoomResponse: success, empty description.
    let success = UpdateResponse {
        error_description: txt(""),
        outcome: UpdateOutcome::Success {
            accepted_timestamp: 0x0102_0304_0506_0708,
        },
    };
    assert_eq!(success.encode().unwrap(), hx("00000102030405060708"));
    // IdentifierResponse: notFound with nothing else. Equal bytes, but only because the list is
    // empty: Haven writes `uri` as one IdentifierUri, the draft (and this codec) as a vector.
    let not_found = IdentifierResponse {
        response_code: IdentifierQueryCode::NotFound,
        uri: bv(vec![]),
        found_profiles: bv(vec![]),
        id_response_extensions: AppDataDictionary::default(),
    };
    assert_eq!(not_found.encode().unwrap(), hx("01000000"));
    // FanoutMessage: Haven's test has the timestamp then an application message and nothing
    // after it; the draft's `optional Frank frank` presence byte is missing, so this codec
    // reads it as cut short.
    let mut haven_fanout = 0x0102_0304_0506_0708u64.to_be_bytes().to_vec();
    haven_fanout.extend(private_app().as_bytes());
    assert_eq!(
        FanoutMessage::decode(&haven_fanout),
        Err(mimi_codec::CodecError::EndOfInput)
    );
    haven_fanout.push(0);
    assert!(FanoutMessage::decode(&haven_fanout).is_ok());
}

#[test]
fn a_participant_list_update_applies_in_the_order_of_the_text() {
    // Alice (4), Bob (2); update: index 1 -> role 3, remove index 0, add Cathy (2).
    let list = participant_list();
    let after = list.apply(&participant_list_update()).unwrap();
    assert_eq!(
        after.participants.as_slice(),
        &[
            UserRolePair {
                user: uri(BOB),
                role_index: 3
            },
            UserRolePair {
                user: uri(CATHY),
                role_index: 2
            },
        ]
    );
    let update = |changed: Vec<(u32, u32)>, removed: Vec<u32>, added: Vec<(&str, u32)>| {
        ParticipantListUpdate {
            changed_role_participants: bv(changed
                .into_iter()
                .map(|(user_index, role_index)| UserIndexRolePair {
                    user_index,
                    role_index,
                })
                .collect()),
            removed_indices: bv(removed),
            added_participants: bv(added
                .into_iter()
                .map(|(u, role_index)| UserRolePair {
                    user: uri(u),
                    role_index,
                })
                .collect()),
        }
    };
    for (bad, err) in [
        (
            update(vec![(2, 1)], vec![], vec![]),
            ParticipantListError::IndexOutOfRange { index: 2, len: 2 },
        ),
        (
            update(vec![], vec![7], vec![]),
            ParticipantListError::IndexOutOfRange { index: 7, len: 2 },
        ),
        (
            update(vec![(0, 1)], vec![0], vec![]),
            ParticipantListError::UserTwice(uri(ALICE)),
        ),
        (
            update(vec![(1, 1), (1, 3)], vec![], vec![]),
            ParticipantListError::UserTwice(uri(BOB)),
        ),
        (
            update(vec![], vec![1, 1], vec![]),
            ParticipantListError::UserTwice(uri(BOB)),
        ),
        (
            update(vec![], vec![0], vec![(ALICE, 2)]),
            ParticipantListError::UserTwice(uri(ALICE)),
        ),
        (
            update(vec![], vec![], vec![(CATHY, 2), (CATHY, 3)]),
            ParticipantListError::UserTwice(uri(CATHY)),
        ),
        (
            update(vec![(0, 0)], vec![], vec![]),
            ParticipantListError::ReservedRole(uri(ALICE)),
        ),
        (
            update(vec![], vec![], vec![(CATHY, 0)]),
            ParticipantListError::ReservedRole(uri(CATHY)),
        ),
    ] {
        assert_eq!(list.apply(&bad), Err(err.clone()), "{err}");
    }
    // An empty update changes nothing.
    assert_eq!(list.apply(&ParticipantListUpdate::default()).unwrap(), list);
}

#[test]
fn labelled_signing_and_encryption_contexts() {
    use mimi_codec::v06::labels::*;
    // RFC 9420 §5.1.2: label<V> = "MLS 1.0 KeyMaterialRequestTBS" (29 bytes), content<V>.
    assert_eq!(
        sign_content(KEY_MATERIAL_REQUEST_TBS, &[1, 2, 3]).unwrap(),
        hx("1d <MLS 1.0 KeyMaterialRequestTBS> 03 010203")
    );
    // §5.1.3 with the room ID as context: label<V> (45 bytes), context<V>.
    assert_eq!(
        encrypt_context(GROUP_INFO_ENCRYPTION, ROOM.as_bytes()).unwrap(),
        hx(&format!(
            "2d <MLS 1.0 GroupInfo and ratchet_tree encryption> <<{ROOM}>>"
        ))
    );
    // What a requester signs for the vector's request: the TBS vector under its label.
    let tbs = v06_vector("key_material_request_tbs.hex");
    let signed = sign_content(KEY_MATERIAL_REQUEST_TBS, &tbs).unwrap();
    assert_eq!(&signed[signed.len() - tbs.len()..], tbs.as_slice());
}
