//! Cross-checks with the fixed-byte tests of another -06 implementation: Haven's
//! (havenmessenger/interop at c4c004a, `src/protocol_wire.rs` and `src/participant_list.rs`).
//! For each value those tests encode, our encoder encodes the same value here and the bytes
//! are compared with bytes written in this file from the -06 TLS presentation language
//! (field by field, the comments name them). Where Haven's bytes differ from ours, the test
//! states our bytes and `docs/interop.md` ("Codec cross-checks") gives the reason.

use mimi_codec::Wire;
use mimi_codec::v06::*;

use crate::v06_fixtures::*;

const A_ALICE: &str = "mimi://a.example/u/alice"; // 24 bytes
const B_BOB: &str = "mimi://b.example/u/bob"; // 22 bytes
const A_TEAM: &str = "mimi://a.example/r/team"; // 23 bytes

fn same<T: Wire + PartialEq + std::fmt::Debug>(value: &T, want: &[u8]) {
    assert_eq!(hex::encode(value.encode().unwrap()), hex::encode(want));
    assert_eq!(&T::decode(want).unwrap(), value);
}

/// Haven `consent_entry_kat_request_no_room`: agreement.
#[test]
fn consent_request_without_room() {
    let entry = ConsentEntry {
        operation: ConsentOperation::Request,
        requester_uri: uri(A_ALICE),
        target_uri: uri(B_BOB),
        room_id: None,
        client_key_packages: Default::default(),
        consent_extensions: Default::default(),
    };
    // operation=request, requesterUri<V>, targetUri<V>, optional<RoomId> absent,
    // (clientKeyPackages only with grant), consent_extensions (empty AppDataDictionary).
    same(&entry, &hx(&format!("01 <<{A_ALICE}>> <<{B_BOB}>> 00 00")));
}

/// Haven `consent_entry_kat_grant_with_room_and_kp`: agreement (one outer length around the
/// bare KeyPackage bytes).
#[test]
fn consent_grant_with_room_and_key_package() {
    let kp = key_package();
    let entry = ConsentEntry {
        operation: ConsentOperation::Grant,
        requester_uri: uri(A_ALICE),
        target_uri: uri(B_BOB),
        room_id: Some(uri(A_TEAM)),
        client_key_packages: bv(vec![kp.clone()]),
        consent_extensions: Default::default(),
    };
    let kp_len = kp.as_bytes().len();
    assert!((64..16384).contains(&kp_len), "a two-byte varint length");
    let mut want = hx(&format!("02 <<{A_ALICE}>> <<{B_BOB}>> 01 <<{A_TEAM}>>"));
    want.extend(u16::try_from(kp_len | 0x4000).unwrap().to_be_bytes());
    want.extend(kp.as_bytes());
    want.push(0x00);
    same(&entry, &want);
}

/// Haven `submit_response_kat_accepted`, `_not_allowed`, `_epoch_too_old`: agreement.
#[test]
fn submit_message_responses() {
    let accepted = SubmitMessageResponse {
        protocol: Protocol::Mls10,
        outcome: SubmitOutcome::Accepted {
            accepted_timestamp: 0x0102030405060708,
            frank: None,
        },
    };
    // protocol mls10, statusCode accepted, accepted_timestamp, optional<Frank> absent.
    same(&accepted, &hx("01 00 0102030405060708 00"));
    let not_allowed = SubmitMessageResponse {
        protocol: Protocol::Mls10,
        outcome: SubmitOutcome::NotAllowed,
    };
    same(&not_allowed, &hx("01 01"));
    let too_old = SubmitMessageResponse {
        protocol: Protocol::Mls10,
        outcome: SubmitOutcome::EpochTooOld { current_epoch: 42 },
    };
    same(&too_old, &hx("01 02 000000000000002a"));
}

/// Haven `key_material_response_exhausted_kat`: agreement.
#[test]
fn key_material_response_exhausted() {
    let response = KeyMaterialResponse {
        protocol: Protocol::Mls10,
        user_status: KeyMaterialUserCode::PartialSuccess,
        user_uri: uri(B_BOB),
        clients: bv(vec![ClientKeyMaterial {
            client_uri: uri(B_BOB),
            material: ClientMaterial::KeyMaterialExhausted,
        }]),
    };
    // protocol, userStatus partialSuccess, userUri<V>, clients<V> of 24 bytes:
    // clientStatus keyMaterialExhausted, clientUri<V>.
    same(
        &response,
        &hx(&format!("01 01 <<{B_BOB}>> 18 01 <<{B_BOB}>>")),
    );
}

/// Haven `update_room_response_kat_success`: agreement.
#[test]
fn update_response_success() {
    let response = UpdateResponse {
        error_description: txt(""),
        outcome: UpdateOutcome::Success {
            accepted_timestamp: 0x0102030405060708,
        },
    };
    // responseCode success, errorDescription<V> empty, accepted_timestamp.
    same(&response, &hx("00 00 0102030405060708"));
}

/// Haven `identifier_response_encode_kat_not_found` and `_success_single_match`: agreement.
#[test]
fn identifier_responses() {
    let not_found = IdentifierResponse {
        response_code: IdentifierQueryCode::NotFound,
        uri: Default::default(),
        found_profiles: Default::default(),
        id_response_extensions: Default::default(),
    };
    // responseCode notFound, uri<V> empty, foundProfiles<V> empty, extensions empty.
    same(&not_found, &hx("01 00 00 00"));
    let found = IdentifierResponse {
        response_code: IdentifierQueryCode::Success,
        uri: bv(vec![uri(A_ALICE)]),
        ..not_found
    };
    // uri<V>: 25 bytes holding one IdentifierUri<V> of 24.
    same(&found, &hx(&format!("00 19 <<{A_ALICE}>> 00 00")));
}

/// Haven `fanout_message_kat_no_leading_protocol_byte`: agreement that no protocol byte
/// leads (the timestamp comes first). A difference after the message: Haven's value ends with
/// the PrivateMessage; §5.5 follows an application message with `optional Frank frank`, so our
/// encoding ends with its presence byte (`00`, absent). Haven's decoder keeps the tail opaque
/// and takes both (its hub answered our notify body with 201).
#[test]
fn fanout_message_application() {
    let message = FanoutMessage {
        timestamp: 0x0102030405060708,
        message: private_app(),
        extra: FanoutExtra::Application { frank: None },
    };
    let mut want = hx("0102030405060708");
    want.extend(private_app().as_bytes());
    let haven = want.clone();
    want.push(0x00); // optional<Frank> absent
    same(&message, &want);
    // Haven's bytes (no presence byte) are, for us, a FanoutMessage cut short.
    assert!(FanoutMessage::decode(&haven).is_err());
}

/// Haven `tls_kat` (participant_list.rs): agreement on the three updates.
#[test]
fn participant_list_updates() {
    let user = "mimi://h/u/a"; // 12 bytes
    let add = ParticipantListUpdate {
        added_participants: bv(vec![UserRolePair {
            user: uri(user),
            role_index: 2,
        }]),
        ..Default::default()
    };
    // changedRoleParticipants<V> empty, removedIndices<V> empty, addedParticipants<V> of 17
    // bytes: user<V>, role_index uint32.
    same(&add, &hx(&format!("00 00 11 <<{user}>> 00000002")));
    let remove = ParticipantListUpdate {
        removed_indices: bv(vec![0]),
        ..Default::default()
    };
    same(&remove, &hx("00 04 00000000 00"));
    let set_role = ParticipantListUpdate {
        changed_role_participants: bv(vec![UserIndexRolePair {
            user_index: 0,
            role_index: 3,
        }]),
        ..Default::default()
    };
    same(&set_role, &hx("08 00000000 00000003 00 00"));
}
