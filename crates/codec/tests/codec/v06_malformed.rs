//! The -06 malformed-input catalogue: each case names the flaw, gives the bytes and the exact
//! typed error the decoder returns. Plus the sweeps over every -06 vector (each proper
//! prefix is `EndOfInput`, a byte more is `TrailingBytes`) and the encoder's refusals.

use mimi_codec::limits::*;
use mimi_codec::v06::limits::*;
use mimi_codec::v06::*;
use mimi_codec::{BoundedVec, CodecError, Wire};

use crate::v06_fixtures::*;

/// Which top-level -06 decoder a case goes through.
#[derive(Debug, Clone, Copy)]
pub enum T {
    KmReq,
    KmReqTbs,
    KmResp,
    Update,
    UpdateResp,
    Submit,
    SubmitResp,
    Notify,
    GiReq,
    GiReqTbs,
    GiResp,
    GiRespTbs,
    GiTbe,
    Consent,
    IdReq,
    IdResp,
    Abuse,
    FrankTbs,
    FrankAgent,
    FrankAad,
    FrankCtx,
    Plist,
    PlistUpdate,
    Meta,
    Roles,
    Base,
    Mls,
}

pub fn decode(target: T, bytes: &[u8]) -> Result<(), CodecError> {
    match target {
        T::KmReq => KeyMaterialRequest::decode(bytes).map(drop),
        T::KmReqTbs => KeyMaterialRequestTbs::decode(bytes).map(drop),
        T::KmResp => KeyMaterialResponse::decode(bytes).map(drop),
        T::Update => UpdateRequest::decode(bytes).map(drop),
        T::UpdateResp => UpdateResponse::decode(bytes).map(drop),
        T::Submit => SubmitMessageRequest::decode(bytes).map(drop),
        T::SubmitResp => SubmitMessageResponse::decode(bytes).map(drop),
        T::Notify => NotifyBody::decode(bytes).map(drop),
        T::GiReq => GroupInfoRequest::decode(bytes).map(drop),
        T::GiReqTbs => GroupInfoRequestTbs::decode(bytes).map(drop),
        T::GiResp => GroupInfoResponse::decode(bytes).map(drop),
        T::GiRespTbs => GroupInfoResponseTbs::decode(bytes).map(drop),
        T::GiTbe => GroupInfoRatchetTreeTbe::decode(bytes).map(drop),
        T::Consent => ConsentEntry::decode(bytes).map(drop),
        T::IdReq => IdentifierRequest::decode(bytes).map(drop),
        T::IdResp => IdentifierResponse::decode(bytes).map(drop),
        T::Abuse => AbuseReport::decode(bytes).map(drop),
        T::FrankTbs => FrankingIntegrityTbs::decode(bytes).map(drop),
        T::FrankAgent => FrankingAgentData::decode(bytes).map(drop),
        T::FrankAad => FrankAad::decode(bytes).map(drop),
        T::FrankCtx => ServerFrankingContext::decode(bytes).map(drop),
        T::Plist => ParticipantListData::decode(bytes).map(drop),
        T::PlistUpdate => ParticipantListUpdate::decode(bytes).map(drop),
        T::Meta => RoomMetaData::decode(bytes).map(drop),
        T::Roles => RoleData::decode(bytes).map(drop),
        T::Base => BaseRoomPolicy::decode(bytes).map(drop),
        T::Mls => MlsMessage::decode(bytes).map(drop),
    }
}

/// Every -06 vector with its decoder.
pub fn v06_wire_vectors() -> Vec<(&'static str, T)> {
    vec![
        ("abuse_report.hex", T::Abuse),
        ("base_room_policy.hex", T::Base),
        ("consent_entry_grant.hex", T::Consent),
        ("consent_entry_request.hex", T::Consent),
        ("frank_aad.hex", T::FrankAad),
        ("franking_agent_data.hex", T::FrankAgent),
        ("franking_integrity_tbs.hex", T::FrankTbs),
        ("group_info_ratchet_tree_tbe.hex", T::GiTbe),
        ("group_info_request.hex", T::GiReq),
        ("group_info_request_no_code.hex", T::GiReq),
        ("group_info_request_tbs.hex", T::GiReqTbs),
        ("group_info_response_not_authorized.hex", T::GiResp),
        ("group_info_response_success.hex", T::GiResp),
        ("group_info_response_tbs.hex", T::GiRespTbs),
        ("identifier_request.hex", T::IdReq),
        ("identifier_response.hex", T::IdResp),
        ("key_material_request.hex", T::KmReq),
        ("key_material_request_tbs.hex", T::KmReqTbs),
        ("key_material_response.hex", T::KmResp),
        ("key_material_response_no_consent.hex", T::KmResp),
        ("notify_body.hex", T::Notify),
        ("participant_list_data.hex", T::Plist),
        ("participant_list_update.hex", T::PlistUpdate),
        ("role_data.hex", T::Roles),
        ("room_metadata.hex", T::Meta),
        ("server_franking_context.hex", T::FrankCtx),
        ("submit_message_request.hex", T::Submit),
        ("submit_message_response_accepted.hex", T::SubmitResp),
        ("submit_message_response_epoch_too_old.hex", T::SubmitResp),
        ("update_request_commit.hex", T::Update),
        ("update_request_commit_partial.hex", T::Update),
        ("update_request_proposal.hex", T::Update),
        ("update_response_invalid_proposal.hex", T::UpdateResp),
        ("update_response_success.hex", T::UpdateResp),
        ("update_response_wrong_epoch.hex", T::UpdateResp),
    ]
}

#[test]
fn every_v06_vector_has_a_decoder_in_the_sweeps() {
    let mut names: Vec<&str> = v06_wire_vectors().iter().map(|(n, _)| *n).collect();
    names.sort();
    assert_eq!(names, crate::v06_vectors::V06_FILES);
}

fn framing(what: &'static str, reason: &'static str) -> CodecError {
    CodecError::MlsFraming { what, reason }
}
fn unknown(what: &'static str, value: u64) -> CodecError {
    CodecError::UnknownValue { what, value }
}
fn wrong(field: &'static str, expected: &'static str, found: &'static str) -> CodecError {
    CodecError::WrongMlsMessage {
        field,
        expected,
        found,
    }
}
fn too_long(len: usize, max: usize) -> CodecError {
    CodecError::TooLong { len, max }
}

/// `SubmitMessageRequest` bytes around an MLS message given as hex.
fn submit_with(mls: &str) -> Vec<u8> {
    hx(&format!("01 {mls} <<{CATHY}>>"))
}

/// A PublicMessage from an external sender with the given proposal (hex), then its
/// signature.
fn proposal_msg(proposal: &str) -> String {
    format!("0001 0001 02 6731 0000000000000005 02 00000000 00 02 {proposal} 02 5151")
}

const APP: &str = "0001 0002 02 6731 0000000000000005 01 00 03 aabbcc 04 01020304";
const COMMIT: &str =
    "0001 0001 02 6731 0000000000000005 01 00000000 00 03 00 00 02 5151 02 7c7c 02 3b3b";

/// The catalogue: (flaw, decoder, bytes, error).
fn cases() -> Vec<(&'static str, T, Vec<u8>, CodecError)> {
    let kmr = |protocol: &str, suites: &str, user: &str| {
        hx(&format!(
            "{protocol} {user} <<{BOB}>> <<{ROOM}>> {suites} 00 00 00 02 5151 0001 <<{ALICE}>> 02 5e5e"
        ))
    };
    let good_user = format!("18 {}", hex::encode(ALICE));
    let long_uri = format!("mimi://a.example/u/{}", "a".repeat(MAX_URI_LEN - 18));
    let mut long_uri_bytes = hx("01 4401");
    long_uri_bytes.extend(long_uri.as_bytes());
    vec![
        // ---- Protocol and URIs
        ("protocol reserved(0)", T::KmReq, kmr("00", "02 0001", &good_user), CodecError::UnsupportedProtocol(0)),
        ("protocol 2", T::KmReq, kmr("02", "02 0001", &good_user), CodecError::UnsupportedProtocol(2)),
        ("empty acceptableCiphersuites", T::KmReq, kmr("01", "00", &good_user), CodecError::Empty("acceptableCiphersuites")),
        ("cipher suite vector of odd length", T::KmReq, kmr("01", "01 00", &good_user), CodecError::EndOfInput),
        ("empty requestingUser", T::KmReq, kmr("01", "02 0001", "00"), CodecError::InvalidUri("empty")),
        ("requestingUser without a scheme", T::KmReq, kmr("01", "02 0001", "05 616c696365"), CodecError::InvalidUri("no scheme")),
        ("requestingUser with a space", T::KmReq, kmr("01", "02 0001", "05 613a2062"), CodecError::InvalidUri("a character outside RFC 3986")),
        ("requestingUser not UTF-8", T::KmReq, kmr("01", "02 0001", "03 613aff"), CodecError::InvalidUtf8),
        ("URI over MAX_URI_LEN", T::KmReq, long_uri_bytes, too_long(MAX_URI_LEN + 1, MAX_URI_LEN)),
        ("non-minimal length prefix", T::KmReq, kmr("01", "02 0001", &format!("4018 {}", hex::encode(ALICE))), CodecError::InvalidLength),
        ("8-byte length prefix", T::KmReq, kmr("01", "02 0001", "c000000000000018"), CodecError::InvalidLength),
        // ---- KeyMaterialResponse
        ("unknown user code 8", T::KmResp, hx(&format!("01 08 <<{BOB}>> 00")), unknown("KeyMaterialUserCode", 8)),
        ("clients with userUnknown", T::KmResp, hx(&format!("01 04 <<{BOB}>> 1d 01 <<{PHONE}>>")), CodecError::Malformed("KeyMaterialResponse with user code UserUnknown must not list clients".into())),
        ("unknown client code 3", T::KmResp, hx(&format!("01 01 <<{BOB}>> 1d 03 <<{PHONE}>>")), unknown("KeyMaterialClientCode", 3)),
        ("KeyPackage of version 2", T::KmResp, hx(&format!("01 00 <<{BOB}>> 20 00 <<{PHONE}>> 0002 0001 00")), framing("KeyPackage", "protocol version is not mls10")),
        ("LeafNode source 4", T::KmResp, hx(&format!("01 00 <<{BOB}>> 2d 00 <<{PHONE}>> 0001 0001 00 00 00 0001 00 00 00 00 00 00 04")), framing("LeafNode", "unknown leaf_node_source")),
        ("KeyPackage cut inside the clients vector", T::KmResp, hx(&format!("01 00 <<{BOB}>> 21 00 <<{PHONE}>> 0001 0001 03")), CodecError::EndOfInput),
        // ---- MLS framing
        ("SemiPrivateMessage (no wire format value)", T::Mls, hx("0001 0006 00"), unknown("WireFormat", 6)),
        ("MLSMessage version 2", T::Mls, hx("0002 0002"), framing("MLSMessage", "protocol version is not mls10")),
        ("unknown sender type", T::Mls, hx("0001 0001 02 6731 0000000000000005 05"), framing("Sender", "unknown sender_type")),
        ("unknown content type", T::Mls, hx("0001 0002 02 6731 0000000000000005 04"), unknown("ContentType", 4)),
        ("reserved proposal type 0", T::Mls, hx(&proposal_msg("0000")), framing("Proposal", "reserved proposal type 0")),
        ("unknown psktype", T::Mls, hx(&proposal_msg("0004 03")), framing("PreSharedKeyID", "unknown psktype")),
        ("unknown AppDataUpdate operation", T::Mls, hx(&proposal_msg("0008 0022 03")), framing("AppDataUpdate", "unknown operation")),
        ("commit path presence byte 2", T::Mls, hx("0001 0001 02 6731 0000000000000005 01 00000000 00 03 00 02"), framing("Commit", "invalid optional<UpdatePath> presence byte")),
        ("MLS field over MAX_MLS_OBJECT_LEN", T::Mls, hx("0001 0002 02 6731 0000000000000005 01 00 00 80800001"), too_long(MAX_MLS_OBJECT_LEN + 1, MAX_MLS_OBJECT_LEN)),
        // ---- update
        ("update with an application PrivateMessage", T::Update, hx(APP), wrong("proposalOrCommit", "a proposal or commit PublicMessage", "application PrivateMessage")),
        ("update with a Welcome", T::Update, hx("0001 0003 0001 00 00"), wrong("proposalOrCommit", "a proposal or commit PublicMessage", "Welcome")),
        ("commit without its GroupInfoOption", T::Update, hx(&format!("{COMMIT} 00")), CodecError::EndOfInput),
        ("GroupInfoRepresentation reserved(0)", T::Update, hx(&format!("{COMMIT} 00 00")), unknown("GroupInfoRepresentation", 0)),
        ("RatchetTreeRepresentation httpsUri (refused: the drafts disagree on its body)", T::Update, hx(&format!("{COMMIT} 00 02 01 00 02 5e5e 02")), unknown("RatchetTreeRepresentation", 2)),
        ("RatchetTreePresence 4", T::Update, hx(&format!("{COMMIT} 00 02 04")), unknown("RatchetTreePresence", 4)),
        ("welcome presence byte 2", T::Update, hx(&format!("{COMMIT} 02")), CodecError::Malformed("Trying to decode Option<T> with 2 for option. It must be 0 for None and 1 for Some.".into())),
        ("a commit among moreProposals", T::Update, { let mut b = hx(&proposal_msg("0003 00000001")); b.extend(hx(&format!("{:02x} {COMMIT}", hx(COMMIT).len()))); b }, wrong("moreProposals", "a proposal PublicMessage", "commit PublicMessage")),
        ("update response code 4", T::UpdateResp, hx("04 00"), unknown("UpdateResponseCode", 4)),
        ("errorDescription not UTF-8", T::UpdateResp, hx("02 01 ff"), CodecError::InvalidUtf8),
        ("errorDescription over MAX_REASON_LEN", T::UpdateResp, { let mut b = hx("02 4401"); b.extend(vec![b'x'; MAX_REASON_LEN + 1]); b }, too_long(MAX_REASON_LEN + 1, MAX_REASON_LEN)),
        // ---- submitMessage
        ("submit with a commit", T::Submit, submit_with(COMMIT), wrong("appMessage", "an application PrivateMessage", "commit PublicMessage")),
        ("submit with a proposal PrivateMessage", T::Submit, submit_with("0001 0002 02 6731 0000000000000005 02 00 00 00"), wrong("appMessage", "an application PrivateMessage", "proposal PrivateMessage")),
        ("submit without sendingUri", T::Submit, hx(&format!("01 {APP}")), CodecError::EndOfInput),
        ("submit protocol 7", T::Submit, hx(&format!("07 {APP}")), CodecError::UnsupportedProtocol(7)),
        ("submit response code 3", T::SubmitResp, hx("01 03"), unknown("SubmitResponseCode", 3)),
        ("accepted without the frank's presence byte", T::SubmitResp, hx("01 00 0000019b77f7e000"), CodecError::EndOfInput),
        // ---- notify
        ("empty notify body", T::Notify, vec![], CodecError::Empty("notify body")),
        ("fanout of a KeyPackage", T::Notify, { let mut b = hx("0000019b77f7e000 0001 0005"); b.extend(key_package().as_bytes()); b }, wrong("FanoutMessage.message", "an application PrivateMessage, a Welcome, or a proposal or commit PublicMessage", "KeyPackage")),
        ("fanout of a PublicMessage application", T::Notify, hx("0000019b77f7e000 0001 0001 02 6731 0000000000000005 02 00000000 00 01 00 02 5151"), wrong("FanoutMessage.message", "an application PrivateMessage, a Welcome, or a proposal or commit PublicMessage", "application PublicMessage")),
        ("a second fanout message cut short", T::Notify, { let mut b = v06_vector("notify_body.hex"); b.extend(hx("0000019b")); b }, CodecError::EndOfInput),
        ("more than MAX_FANOUT_MESSAGES", T::Notify, { let one = hx(&format!("0000019b77f7e000 {APP} 00")); one.repeat(MAX_FANOUT_MESSAGES + 1) }, too_long(MAX_FANOUT_MESSAGES + 1, MAX_FANOUT_MESSAGES)),
        // ---- groupInfo
        ("joining code over MAX_JOINING_CODE_LEN", T::GiReq, { let mut b = hx(&format!("01 0001 02 5151 0001 <<{ALICE}>> 02 4848 4401")); b.extend(vec![b'j'; MAX_JOINING_CODE_LEN + 1]); b }, too_long(MAX_JOINING_CODE_LEN + 1, MAX_JOINING_CODE_LEN)),
        ("GroupInfoCode reserved(0)", T::GiResp, hx(&format!("01 <<{ROOM}>> 00")), unknown("GroupInfoCode", 0)),
        ("success without its body", T::GiResp, hx(&format!("01 <<{ROOM}>> 01")), CodecError::EndOfInput),
        ("GroupInfo of version 2 in the TBE", T::GiTbe, hx("0002"), framing("GroupContext", "protocol version is not mls10")),
        // ---- consent
        ("consent operation 4", T::Consent, hx(&format!("04 <<{ALICE}>> <<{BOB}>> 00 00")), unknown("ConsentOperation", 4)),
        ("roomId presence byte 2", T::Consent, hx(&format!("01 <<{ALICE}>> <<{BOB}>> 02")), CodecError::Malformed("Trying to decode Option<T> with 2 for option. It must be 0 for None and 1 for Some.".into())),
        ("key packages after a request", T::Consent, hx(&format!("01 <<{ALICE}>> <<{BOB}>> 00 00 00")), CodecError::TrailingBytes),
        ("grant without its key package vector", T::Consent, hx(&format!("02 <<{ALICE}>> <<{BOB}>> 00")), CodecError::EndOfInput),
        ("extension components out of order", T::Consent, hx(&format!("00 <<{ALICE}>> <<{BOB}>> 00 06 0002 00 0001 00")), CodecError::Malformed("AppDataDictionary components must be sorted by ID, each at most once".into())),
        ("extension component twice", T::IdReq, hx("00 06 0022 00 0022 00"), CodecError::Malformed("AppDataDictionary components must be sorted by ID, each at most once".into())),
        ("extension component cut", T::Consent, hx(&format!("00 <<{ALICE}>> <<{BOB}>> 00 03 f0f0 05")), CodecError::EndOfInput),
        // ---- identifierQuery
        ("search type reserved(0)", T::IdReq, hx("03 00 01 61 00"), unknown("IdentifierType", 0)),
        ("searchValue not UTF-8", T::IdReq, hx("03 01 01 ff 00"), CodecError::InvalidUtf8),
        ("more than MAX_QUERY_ELEMENTS", T::IdReq, { let mut b = hx("33"); b.extend(hx("01 01 61").repeat(MAX_QUERY_ELEMENTS + 1)); b.push(0); b }, too_long(MAX_QUERY_ELEMENTS + 1, MAX_QUERY_ELEMENTS)),
        ("FieldSource reserved(0)", T::IdResp, hx(&format!("00 00 {:02x} <<{ALICE}>> 05 00 01 61 01 62 00", ALICE.len() + 8)), unknown("FieldSource", 0)),
        ("query code 5", T::IdResp, hx("05 00 00 00"), unknown("IdentifierDiscoveryCode", 5)),
        // ---- reportAbuse
        ("empty allegedAbuserUri", T::Abuse, hx(&format!("<<{BOB}>> 00 00 00 00 00")), CodecError::InvalidUri("empty")),
        ("frank cut short", T::Abuse, hx(&format!("00 <<{CATHY}>> 00 00 0a 00 0001020304")), CodecError::EndOfInput),
        // ---- franking
        ("franking_tag of 31 octets", T::FrankAad, hx(&"ab".repeat(31)), CodecError::EndOfInput),
        ("context without its timestamp", T::FrankCtx, hx(&format!("<<{CATHY}>> <<{ROOM}>> 0000019b")), CodecError::EndOfInput),
        ("context with an empty sender", T::FrankCtx, hx(&format!("00 <<{ROOM}>> 0000019b76daa800")), CodecError::InvalidUri("empty")),
        ("context sender not a URI", T::FrankCtx, hx(&format!("03 616263 <<{ROOM}>> 0000019b76daa800")), CodecError::InvalidUri("no scheme")),
        ("agent key vector cut", T::FrankAgent, hx("04 5555"), CodecError::EndOfInput),
        ("integrity TBS server_frank cut", T::FrankTbs, hx(&"00".repeat(20)), CodecError::EndOfInput),
        // ---- room components
        ("UTF8String with NUL", T::Meta, hx(&format!("<<{ROOM}>> 02 6100 00 00 00 00")), CodecError::Malformed("UTF8String contains NUL".into())),
        ("bool 2", T::Base, hx("02"), unknown("bool", 2)),
        ("two parent rooms", T::Base, hx(&format!("00 01 {:02x} <<{ROOM}>> <<{ROOM}>>", 2 * (ROOM.len() + 1))), too_long(2, 1)),
        ("role index truncated", T::Plist, hx(&format!("1c <<{ALICE}>> 0000")), CodecError::EndOfInput),
        ("removed index vector of 3 bytes", T::PlistUpdate, hx("00 03 000000"), CodecError::EndOfInput),
        ("optional max presence byte 2", T::Roles, hx("20 00000004 01 61 00 00 00000000 02"), CodecError::Malformed("Trying to decode Option<T> with 2 for option. It must be 0 for None and 1 for Some.".into())),
    ]
}

#[test]
fn malformed_v06_catalogue() {
    let cases = cases();
    assert!(cases.len() >= 60);
    for (flaw, target, bytes, expected) in cases {
        assert_eq!(decode(target, &bytes), Err(expected), "{flaw}");
    }
}

#[test]
fn every_truncation_of_every_v06_vector_is_end_of_input() {
    for (name, target) in v06_wire_vectors() {
        let bytes = v06_vector(name);
        assert_eq!(decode(target, &bytes), Ok(()), "{name}");
        // A notify body is a sequence: a cut between two messages is a shorter body.
        let boundaries: Vec<usize> = if matches!(target, T::Notify) {
            let mut at = 0;
            notify_body()
                .messages
                .iter()
                .map(|m| {
                    at += m.encode().unwrap().len();
                    at
                })
                .collect()
        } else {
            vec![]
        };
        for cut in 0..bytes.len() {
            let got = decode(target, &bytes[..cut]);
            if boundaries.contains(&cut) {
                assert_eq!(got, Ok(()), "{name} cut to {cut} bytes");
            } else if cut == 0 && matches!(target, T::Notify) {
                assert_eq!(got, Err(CodecError::Empty("notify body")));
            } else {
                assert_eq!(
                    got,
                    Err(CodecError::EndOfInput),
                    "{name} cut to {cut} bytes"
                );
            }
        }
    }
}

#[test]
fn any_byte_after_a_v06_vector_is_trailing() {
    for (name, target) in v06_wire_vectors() {
        for extra in [0x00, 0x01, 0xff] {
            let mut bytes = v06_vector(name);
            bytes.push(extra);
            // After a notify body, a byte starts another FanoutMessage.
            let expected = if matches!(target, T::Notify) {
                CodecError::EndOfInput
            } else {
                CodecError::TrailingBytes
            };
            assert_eq!(
                decode(target, &bytes),
                Err(expected),
                "{name} + {extra:#04x}"
            );
        }
    }
}

#[test]
fn encoding_refuses_what_decoding_refuses() {
    let mut request = key_material_request();
    request.tbs.acceptable_ciphersuites = BoundedVec::default();
    assert_eq!(
        request.encode(),
        Err(CodecError::Empty("acceptableCiphersuites"))
    );

    let refused = KeyMaterialResponse {
        user_status: KeyMaterialUserCode::NoConsent,
        ..key_material_response()
    };
    assert_eq!(
        refused.encode(),
        Err(CodecError::Malformed(
            "KeyMaterialResponse with user code NoConsent must not list clients".into()
        ))
    );

    let bad_commit = UpdateRequest::Commit {
        commit: public_adu(false),
        welcome: None,
        group_info_option: GroupInfoOption::Full(group_info()),
        ratchet_tree_option: RatchetTreeOption::DistributionService,
    };
    assert_eq!(
        bad_commit.encode(),
        Err(wrong(
            "proposalOrCommit",
            "a commit PublicMessage",
            "proposal PublicMessage"
        ))
    );
    let bad_more = UpdateRequest::Proposal {
        proposal: public_adu(false),
        more_proposals: bv(vec![public_commit()]),
    };
    assert_eq!(
        bad_more.encode(),
        Err(wrong(
            "moreProposals",
            "a proposal PublicMessage",
            "commit PublicMessage"
        ))
    );
    let bad_submit = SubmitMessageRequest {
        app_message: public_commit(),
        ..submit_request()
    };
    assert_eq!(
        bad_submit.encode(),
        Err(wrong(
            "appMessage",
            "an application PrivateMessage",
            "commit PublicMessage"
        ))
    );
    assert_eq!(
        NotifyBody { messages: vec![] }.encode(),
        Err(CodecError::Empty("notify body"))
    );
    let mismatched = FanoutMessage {
        timestamp: T0,
        message: welcome_msg(),
        extra: FanoutExtra::Application { frank: None },
    };
    assert_eq!(
        mismatched.encode(),
        Err(wrong(
            "FanoutMessage.message",
            "the kind its extra fields are for",
            "Welcome"
        ))
    );
    let mut request_with_kps = consent_grant();
    request_with_kps.operation = ConsentOperation::Request;
    assert_eq!(
        request_with_kps.encode(),
        Err(CodecError::Malformed(
            "only a grant carries clientKeyPackages".into()
        ))
    );
    let no_body = GroupInfoResponse {
        result: Err(GroupInfoCode::Success),
        ..group_info_response()
    };
    assert_eq!(
        no_body.encode(),
        Err(CodecError::Malformed(
            "a success GroupInfoResponse needs its body".into()
        ))
    );
    let component = |id| ComponentData {
        component_id: id,
        data: op(b""),
    };
    assert_eq!(
        AppDataDictionary::new(vec![component(7), component(7)]),
        Err(CodecError::Malformed(
            "AppDataDictionary components must be sorted by ID, each at most once".into()
        ))
    );
    let sorted = AppDataDictionary::new(vec![component(9), component(3)]).unwrap();
    assert_eq!(sorted.component_data.as_slice()[0].component_id, 3);
    assert_eq!(sorted.get(9), Some(&b""[..]));
    let unsorted = AppDataDictionary {
        component_data: bv(vec![component(9), component(3)]),
    };
    assert!(matches!(unsorted.encode(), Err(CodecError::Malformed(_))));
    assert_eq!(
        Utf8String::new("a\0b"),
        Err(CodecError::Malformed("UTF8String contains NUL".into()))
    );
    assert_eq!(
        MlsMessage::from_bytes(&hx(&format!("{APP} 00"))),
        Err(CodecError::TrailingBytes)
    );
}

#[test]
fn an_mls_object_over_its_limit_is_too_long() {
    // Two fields, each under the limit, whose sum is over it: the scanner stops at the limit.
    let half = MAX_MLS_OBJECT_LEN / 2;
    let mut b = hx("0001 0002 02 6731 0000000000000005 01 00");
    for _ in 0..2 {
        b.extend(((0x8000_0000u32) | half as u32).to_be_bytes());
        b.extend(vec![0u8; half]);
    }
    b.extend(hx("00"));
    assert_eq!(
        MlsMessage::decode(&b),
        Err(too_long(MAX_MLS_OBJECT_LEN + 1, MAX_MLS_OBJECT_LEN))
    );
}

#[test]
fn decode_errors_map_to_error_codes() {
    use mimi_codec::ErrorCode;
    assert_eq!(
        CodecError::UnsupportedProtocol(2).error_code(),
        ErrorCode::UnsupportedVersion
    );
    assert_eq!(
        CodecError::InvalidUri("empty").error_code(),
        ErrorCode::Malformed
    );
    assert_eq!(
        framing("LeafNode", "unknown leaf_node_source").error_code(),
        ErrorCode::Malformed
    );
}
