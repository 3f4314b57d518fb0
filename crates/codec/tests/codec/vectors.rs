//! Fixed-byte vectors: the Rust value encodes to exactly the file's bytes and the file's
//! bytes decode to exactly the value.

use std::fmt::Debug;

use mimi_codec::*;
use tls_codec::{Deserialize, Serialize, Size};

use crate::fixtures::*;

/// Every file in `tests/vectors/`; a test below checks each, and
/// `every_vector_file_is_listed` keeps this list and the folder in step.
const VECTOR_FILES: &[&str] = &[
    "check_invite_request.hex",
    "ds_commit_request.hex",
    "ds_group_info_request.hex",
    "ds_group_info_response.hex",
    "ds_key_packages_request.hex",
    "ds_key_packages_response.hex",
    "ds_proposal_request.hex",
    "ds_send_message_request.hex",
    "enum_ds_key_package_type.hex",
    "enum_ds_protocol_version.hex",
    "enum_ds_request_type.hex",
    "enum_ds_response_type.hex",
    "enum_event_error_type.hex",
    "enum_event_response_type.hex",
    "enum_identifier_discovery_code.hex",
    "enum_identifier_type.hex",
    "enum_join_rule.hex",
    "enum_mimi_message_type.hex",
    "enum_participation_state.hex",
    "enum_participation_state_change.hex",
    "enum_policy_action.hex",
    "enum_protocol_version.hex",
    "event_error.hex",
    "fanout_event.hex",
    "identifier_request_email.hex",
    "identifier_request_handle.hex",
    "identifier_request_nick.hex",
    "identifier_request_oidc_std_claim.hex",
    "identifier_request_partial_name.hex",
    "identifier_request_phone.hex",
    "identifier_request_vcard_field.hex",
    "identifier_request_whole_profile.hex",
    "identifier_response_not_found.hex",
    "identifier_response_success.hex",
    "info_event.hex",
    "mimi_message_event_ds_commit.hex",
    "mimi_message_event_ds_fetch_group_info.hex",
    "mimi_message_event_ds_fetch_key_packages.hex",
    "mimi_message_event_ds_proposal.hex",
    "mimi_message_event_ds_create_group.hex",
    "mimi_message_event_ds_send_message.hex",
    "mimi_message_event_room_info.hex",
    "mimi_message_event_room_user.hex",
    "mimi_message_event_room_user_unsigned.hex",
    "mimi_message_fanout.hex",
    "mimi_message_response_error.hex",
    "mimi_message_response_group_info.hex",
    "mimi_message_response_key_package.hex",
    "mimi_message_response_ok.hex",
    "participant_data.hex",
    "room_state.hex",
    "user_event_full.hex",
    "user_event_minimal.hex",
    "user_event_set_role.hex",
];

/// The file's bytes, after checking that the file is listed.
fn vector(name: &str) -> Vec<u8> {
    assert!(
        VECTOR_FILES.contains(&name),
        "{name} is not in VECTOR_FILES"
    );
    read_vector(name)
}

/// Check a structure through the raw TLS traits: exact bytes, exact length, exact decode.
fn check_tls<T>(name: &str, value: &T)
where
    T: Serialize + Deserialize + Size + PartialEq + Debug,
{
    let bytes = vector(name);
    let mut out = Vec::new();
    let written = value.tls_serialize(&mut out).unwrap();
    assert_eq!(hex::encode(&out), hex::encode(&bytes), "{name}: encoding");
    assert_eq!(written, bytes.len(), "{name}: bytes written");
    assert_eq!(value.tls_serialized_len(), bytes.len(), "{name}: length");
    let mut reader = bytes.as_slice();
    let decoded = T::tls_deserialize(&mut reader).unwrap();
    assert!(reader.is_empty(), "{name}: bytes left over");
    assert_eq!(&decoded, value, "{name}: decoding");
}

/// Check a top-level structure through [`Wire`] as well.
fn check_wire<T>(name: &str, value: &T)
where
    T: Wire + PartialEq + Debug,
{
    check_tls(name, value);
    let bytes = vector(name);
    assert_eq!(
        hex::encode(value.encode().unwrap()),
        hex::encode(&bytes),
        "{name}: Wire::encode"
    );
    assert_eq!(&T::decode(&bytes).unwrap(), value, "{name}: Wire::decode");
}

/// An enum file lists every value in order.
fn check_enum<T>(name: &str, all: &[T])
where
    T: Serialize + Deserialize + Size + PartialEq + Debug,
{
    let bytes = vector(name);
    let mut out = Vec::new();
    for v in all {
        v.tls_serialize(&mut out).unwrap();
    }
    assert_eq!(hex::encode(&out), hex::encode(&bytes), "{name}: encoding");
    let mut reader = bytes.as_slice();
    let mut decoded = Vec::new();
    while !reader.is_empty() {
        decoded.push(T::tls_deserialize(&mut reader).unwrap());
    }
    assert_eq!(decoded, all, "{name}: decoding");
}

#[test]
fn every_vector_file_is_listed() {
    let dir = format!("{}/tests/vectors", env!("CARGO_MANIFEST_DIR"));
    let mut found: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    found.sort();
    let mut listed: Vec<String> = VECTOR_FILES.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(found, listed);
}

#[test]
fn enums() {
    check_enum("enum_protocol_version.hex", ProtocolVersion::ALL);
    check_enum("enum_mimi_message_type.hex", MimiMessageType::ALL);
    check_enum("enum_event_response_type.hex", EventResponseType::ALL);
    check_enum("enum_event_error_type.hex", ErrorCode::ALL);
    check_enum("enum_ds_protocol_version.hex", DsProtocolVersion::ALL);
    check_enum("enum_ds_request_type.hex", DsRequestType::ALL);
    check_enum("enum_ds_response_type.hex", DsResponseType::ALL);
    check_enum("enum_ds_key_package_type.hex", KeyPackageType::ALL);
    check_enum("enum_participation_state.hex", ParticipationState::ALL);
    check_enum(
        "enum_participation_state_change.hex",
        ParticipationStateChange::ALL,
    );
    check_enum("enum_join_rule.hex", JoinRule::ALL);
    check_enum("enum_policy_action.hex", PolicyAction::ALL);
    check_enum("enum_identifier_type.hex", IdentifierType::ALL);
    check_enum(
        "enum_identifier_discovery_code.hex",
        IdentifierDiscoveryCode::ALL,
    );
}

#[test]
fn error_code_values_are_the_documented_ones() {
    assert_eq!(ErrorCode::ALL.len(), 20);
    assert_eq!(ErrorCode::Malformed.wire_value(), 1);
    assert_eq!(ErrorCode::StaleEpoch.wire_value(), 8);
    assert_eq!(ErrorCode::TooLarge.wire_value(), 19);
    assert_eq!(ErrorCode::Internal.wire_value(), 20);
    assert_eq!(ErrorCode::from_wire(0), None);
    assert_eq!(ErrorCode::from_wire(21), None);
}

#[test]
fn mimi_message_event_room_user() {
    check_wire(
        "mimi_message_event_room_user.hex",
        &event_from_alice(room_user_event()),
    );
}

#[test]
fn mimi_message_event_room_user_unsigned() {
    let join = UserEvent {
        target: alice(),
        change: ParticipationStateChange::Join,
        reason: Text::default(),
        follower_server_certificate: None,
        role: None,
    };
    check_wire(
        "mimi_message_event_room_user_unsigned.hex",
        &event_from_alice(Event::RoomUserUnsigned(join)),
    );
}

#[test]
fn mimi_message_event_room_info() {
    let info = Event::RoomInfo(InfoEvent {
        room_state: room_state(),
    });
    check_wire(
        "mimi_message_event_room_info.hex",
        &msg(server("a.example"), MessageBody::Event(info)),
    );
}

#[test]
fn mimi_message_event_ds_proposal() {
    check_wire(
        "mimi_message_event_ds_proposal.hex",
        &event_from_alice(Event::DsProposal(proposal_request())),
    );
}

#[test]
fn mimi_message_event_ds_commit() {
    check_wire(
        "mimi_message_event_ds_commit.hex",
        &event_from_alice(Event::DsCommit(commit_request())),
    );
}

#[test]
fn mimi_message_event_ds_fetch_key_packages() {
    check_wire(
        "mimi_message_event_ds_fetch_key_packages.hex",
        &event_from_alice(Event::DsFetchKeyPackages(key_packages_request(vec![
            phone(),
        ]))),
    );
}

#[test]
fn mimi_message_event_ds_fetch_group_info() {
    let value = event_from_alice(Event::DsFetchGroupInfo(GroupInfoRequest));
    check_wire("mimi_message_event_ds_fetch_group_info.hex", &value);
    // The same bytes, spelled out field by field.
    let mut expected = vec![0x00, 0x01, 13];
    expected.extend_from_slice(b"!r1:a.example");
    expected.push(16);
    expected.extend_from_slice(b"@alice:a.example");
    expected.push(0x01);
    expected.push(19);
    expected.extend_from_slice(b"ds.fetch_group_info");
    // DSProtocolVersion 1, ds_group_info (5), DSAuthData Unauthenticated (0).
    expected.extend_from_slice(&[0x00, 0x01, 5, 0]);
    assert_eq!(value.encode().unwrap(), expected);
}

#[test]
fn mimi_message_event_ds_send_message_uses_a_two_byte_prefix() {
    let value = event_from_alice(Event::DsSendMessage(SendMessageRequest {
        application_message: private_app(&[0xaa; 50]),
    }));
    check_wire("mimi_message_event_ds_send_message.hex", &value);
    // 69 bytes of message after a two-byte vector prefix, then DSAuthData.
    let bytes = value.encode().unwrap();
    assert_eq!(&bytes[bytes.len() - 72..bytes.len() - 70], &[0x40, 0x45]);
}

#[test]
fn mimi_message_event_ds_create_group() {
    let value = event_from_alice(Event::DsCreateGroup(CreateGroupRequest {
        group_info: group_info_msg(),
        ratchet_tree: ratchet_tree(),
    }));
    check_wire("mimi_message_event_ds_create_group.hex", &value);
}

#[test]
fn mimi_message_responses() {
    check_wire(
        "mimi_message_response_ok.hex",
        &msg(
            server("b.example"),
            MessageBody::Response(EventResponse::Ok),
        ),
    );
    check_wire(
        "mimi_message_response_key_package.hex",
        &msg(
            server("b.example"),
            MessageBody::Response(EventResponse::KeyPackages(key_packages_response())),
        ),
    );
    check_wire(
        "mimi_message_response_group_info.hex",
        &msg(
            server("a.example"),
            MessageBody::Response(EventResponse::GroupInfo(group_info_response())),
        ),
    );
    check_wire(
        "mimi_message_response_error.hex",
        &msg(
            server("a.example"),
            MessageBody::Response(EventResponse::Error(EventError::new(
                ErrorCode::StaleEpoch,
                "epoch 3 is stale",
            ))),
        ),
    );
}

#[test]
fn fanout() {
    check_wire(
        "mimi_message_fanout.hex",
        &msg(server("a.example"), MessageBody::Fanout(fanout_event())),
    );
    check_wire("fanout_event.hex", &fanout_event());
}

#[test]
fn user_events() {
    check_wire("user_event_full.hex", &user_event_full());
    check_wire("user_event_minimal.hex", &user_event_minimal());
    check_wire("user_event_set_role.hex", &user_event_set_role());
}

#[test]
fn room_state_participants_and_info_event() {
    check_tls(
        "participant_data.hex",
        &ParticipantData {
            user_id: alice(),
            role: role("owner"),
            state: ParticipationState::Join,
        },
    );
    check_wire("room_state.hex", &room_state());
    check_wire(
        "info_event.hex",
        &InfoEvent {
            room_state: room_state(),
        },
    );
}

#[test]
fn check_invite() {
    check_wire("check_invite_request.hex", &check_invite_request());
}

#[test]
fn identifier_requests_each_select_arm() {
    let cases = [
        ("handle", IdentifierQuery::Handle, "bob"),
        ("nick", IdentifierQuery::Nick, "bobby"),
        ("email", IdentifierQuery::Email, "bob@b.example"),
        ("phone", IdentifierQuery::Phone, "+15550100"),
        ("partial_name", IdentifierQuery::PartialName, "Bo"),
        (
            "whole_profile",
            IdentifierQuery::WholeProfile,
            "Bob Example",
        ),
        (
            "oidc_std_claim",
            IdentifierQuery::OidcStdClaim(search("email")),
            "bob@b.example",
        ),
        (
            "vcard_field",
            IdentifierQuery::VcardField(search("fn")),
            "Bob",
        ),
    ];
    for (name, query, value) in cases {
        check_wire(
            &format!("identifier_request_{name}.hex"),
            &IdentifierRequest {
                query,
                search_value: search(value),
            },
        );
    }
}

#[test]
fn identifier_responses() {
    check_wire(
        "identifier_response_success.hex",
        &IdentifierResponse {
            code: IdentifierDiscoveryCode::Success,
            uri: Text::new("@bob:b.example").unwrap(),
        },
    );
    check_wire(
        "identifier_response_not_found.hex",
        &IdentifierResponse {
            code: IdentifierDiscoveryCode::NotFound,
            uri: Text::default(),
        },
    );
}

#[test]
fn ds_bodies() {
    check_tls("ds_proposal_request.hex", &proposal_request());
    check_tls("ds_commit_request.hex", &commit_request());
    check_tls("ds_key_packages_request.hex", &key_packages_request(vec![]));
    check_tls("ds_group_info_request.hex", &GroupInfoRequest);
    check_tls(
        "ds_send_message_request.hex",
        &SendMessageRequest {
            application_message: private_app(&[0x5a, 0x5b]),
        },
    );
    check_tls("ds_key_packages_response.hex", &key_packages_response());
    check_tls("ds_group_info_response.hex", &group_info_response());
    check_tls("event_error.hex", &EventError::new(ErrorCode::TooLarge, ""));
}

#[test]
fn error_codes_map_to_http_statuses() {
    let statuses: Vec<(u16, u16)> = ErrorCode::ALL
        .iter()
        .map(|c| (c.wire_value(), c.http_status()))
        .collect();
    assert_eq!(
        statuses,
        vec![
            (1, 400),
            (2, 400),
            (3, 404),
            (4, 421),
            (5, 403),
            (6, 403),
            (7, 400),
            (8, 409),
            (9, 409),
            (10, 400),
            (11, 404),
            (12, 404),
            (13, 403),
            (14, 400),
            (15, 400),
            (16, 409),
            (17, 409),
            (18, 400),
            (19, 413),
            (20, 500),
        ]
    );
}

#[test]
fn decode_errors_map_to_error_codes() {
    let cases = [
        (
            CodecError::UnsupportedVersion(2),
            ErrorCode::UnsupportedVersion,
        ),
        (
            CodecError::UnsupportedDsVersion(2),
            ErrorCode::UnsupportedVersion,
        ),
        (
            CodecError::UnknownEventType("x".into()),
            ErrorCode::UnsupportedEvent,
        ),
        (CodecError::TooLong { len: 2, max: 1 }, ErrorCode::TooLarge),
        (CodecError::EndOfInput, ErrorCode::Malformed),
        (CodecError::TrailingBytes, ErrorCode::Malformed),
        (CodecError::InvalidLength, ErrorCode::Malformed),
        (CodecError::InvalidUtf8, ErrorCode::Malformed),
        (CodecError::Empty("x"), ErrorCode::Malformed),
        (
            CodecError::UnknownValue {
                what: "MIMIMessageType",
                value: 9,
            },
            ErrorCode::Malformed,
        ),
        (
            CodecError::BodyTypeMismatch {
                outer: "ds.commit",
                found: 10,
            },
            ErrorCode::Malformed,
        ),
        (
            CodecError::InvalidIdentifier(IdentifierError::InvalidServerName("empty")),
            ErrorCode::Malformed,
        ),
    ];
    for (error, code) in cases {
        assert_eq!(error.error_code(), code, "{error:?}");
    }
}
