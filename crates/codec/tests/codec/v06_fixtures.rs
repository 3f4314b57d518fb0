//! -06 values the vector files in `tests/vectors/v06/` describe, built in Rust. MLS objects
//! are opaque to the codec: their bytes are written here by hand (RFC 9420 field by field),
//! independently of the vector files.

use mimi_codec::v06::*;
use mimi_codec::{BoundedVec, Opaque, Text};

/// Read a -06 vector file.
pub fn v06_vector(name: &str) -> Vec<u8> {
    crate::fixtures::read_vector(&format!("v06/{name}"))
}

/// Hex with spaces, and `<text>` for the UTF-8 of `text` (with its own length prefix when
/// written `<<text>>`).
pub fn hx(spec: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = spec;
    while let Some(open) = rest.find('<') {
        out.extend(hex::decode(rest[..open].replace(' ', "")).unwrap());
        let prefixed = rest[open..].starts_with("<<");
        let start = open + if prefixed { 2 } else { 1 };
        let close = rest[start..].find('>').unwrap() + start;
        let text = &rest[start..close];
        if prefixed {
            assert!(text.len() < 64);
            out.push(text.len() as u8);
        }
        out.extend(text.as_bytes());
        rest = &rest[close + if prefixed { 2 } else { 1 }..];
    }
    out.extend(hex::decode(rest.replace(' ', "")).unwrap());
    out
}

pub const ALICE: &str = "mimi://a.example/u/alice";
pub const BOB: &str = "mimi://b.example/u/bob";
pub const CATHY: &str = "mimi://c.example/u/cathy";
pub const ROOM: &str = "mimi://a.example/r/clubhouse";
pub const PHONE: &str = "mimi://b.example/d/BobPhone";
pub const T0: u64 = 1_767_225_600_000;

pub fn uri(s: &str) -> IdentifierUri {
    s.parse().unwrap()
}
pub fn op<const N: usize>(bytes: &[u8]) -> Opaque<N> {
    Opaque::new(bytes.to_vec()).unwrap()
}
pub fn txt<const N: usize>(s: &str) -> Text<N> {
    Text::new(s).unwrap()
}
pub fn bv<T, const N: usize>(items: Vec<T>) -> BoundedVec<T, N> {
    BoundedVec::new(items).unwrap()
}
pub fn basic(identity: &str) -> Credential {
    Credential {
        credential_type: 1,
        content: op(identity.as_bytes()),
    }
}

/// An application PrivateMessage (RFC 9420 §6.3).
pub fn private_app() -> MlsMessage {
    MlsMessage::from_bytes(&hx(
        "0001 0002 02 6731 0000000000000005 01 00 03 aabbcc 04 01020304",
    ))
    .unwrap()
}

/// A commit PublicMessage from leaf 0, no proposals, no path.
pub fn public_commit() -> MlsMessage {
    MlsMessage::from_bytes(&hx(
        "0001 0001 02 6731 0000000000000005 01 00000000 00 03 00 00 02 5151 02 7c7c 02 3b3b",
    ))
    .unwrap()
}

/// The ParticipantListUpdate adding Cathy with role 2, TLS-encoded.
pub fn plu_add_cathy_bytes() -> Vec<u8> {
    hx(&format!("00 00 1d <<{CATHY}>> 00000002"))
}

/// An AppDataUpdate proposal PublicMessage (participant list: add Cathy), from member leaf 1
/// (`external` false) or external sender 0.
pub fn public_adu(external: bool) -> MlsMessage {
    let sender = if external {
        "02 00000000"
    } else {
        "01 00000001"
    };
    let tag = if external { "" } else { "02 3b3b" };
    let mut b = hx(&format!(
        "0001 0001 02 6731 0000000000000005 {sender} 00 02 0008 0022 01 20"
    ));
    b.extend(plu_add_cathy_bytes());
    b.extend(hx(&format!("02 5151 {tag}")));
    MlsMessage::from_bytes(&b).unwrap()
}

/// A Remove proposal PublicMessage from the hub (external sender 0).
pub fn public_remove() -> MlsMessage {
    MlsMessage::from_bytes(&hx(
        "0001 0001 02 6731 0000000000000006 02 00000000 00 02 0003 00000003 02 5151",
    ))
    .unwrap()
}

pub fn welcome_body_hex() -> &'static str {
    "0001 02 5c5c 02 e9e9"
}

pub fn welcome_msg() -> MlsMessage {
    MlsMessage::from_bytes(&hx(&format!("0001 0003 {}", welcome_body_hex()))).unwrap()
}

/// Bob's KeyPackage (bare).
pub fn key_package() -> KeyPackage {
    KeyPackage::from_bytes(&hx(&format!(
        "0001 0001 03 111111 \
         03 e1e1e1 03 515151 0001 <<{BOB}>> \
         02 0001 02 0001 00 00 00 \
         01 0000000000000001 0000000000000002 00 02 5a5a \
         00 02 4b50"
    )))
    .unwrap()
}

pub fn group_info() -> GroupInfo {
    GroupInfo::from_bytes(&hx(
        "0001 0001 02 6731 0000000000000006 02 7474 02 6363 00 00 02 7c7c 00000000 02 5e5e",
    ))
    .unwrap()
}

pub fn ratchet_full() -> RatchetTreeOption {
    RatchetTreeOption::Full(op(&[0x01, 0x99, 0x98]))
}

pub fn frank() -> Frank {
    let mut server_frank = [0u8; 32];
    for (i, b) in server_frank.iter_mut().enumerate() {
        *b = i as u8;
    }
    Frank {
        server_frank,
        franking_signature_ciphersuite: 1,
        franking_integrity_signature: op(&[0xf5; 3]),
    }
}

pub fn key_material_request_tbs() -> KeyMaterialRequestTbs {
    KeyMaterialRequestTbs {
        protocol: Protocol::Mls10,
        requesting_user: uri(ALICE),
        target_user: uri(BOB),
        room_id: uri(ROOM).into(),
        acceptable_ciphersuites: bv(vec![1, 3]),
        required_capabilities: RequiredCapabilities {
            extension_types: bv(vec![0xf001]),
            proposal_types: bv(vec![8]),
            credential_types: bv(vec![1]),
        },
        requester_signature_key: op(&[0x51; 4]),
        requester_credential: basic(ALICE),
    }
}

pub fn key_material_request() -> KeyMaterialRequest {
    KeyMaterialRequest {
        tbs: key_material_request_tbs(),
        key_material_request_signature: op(&[0x5e; 4]),
    }
}

pub fn key_material_response() -> KeyMaterialResponse {
    KeyMaterialResponse {
        protocol: Protocol::Mls10,
        user_status: KeyMaterialUserCode::PartialSuccess,
        user_uri: uri(BOB),
        clients: bv(vec![
            ClientKeyMaterial {
                client_uri: uri(PHONE),
                material: ClientMaterial::Success(key_package()),
            },
            ClientKeyMaterial {
                client_uri: uri("mimi://b.example/d/BobLaptop"),
                material: ClientMaterial::KeyMaterialExhausted,
            },
            ClientKeyMaterial {
                client_uri: uri("mimi://b.example/d/BobTablet"),
                material: ClientMaterial::NothingCompatible(Some(Capabilities {
                    versions: bv(vec![1]),
                    cipher_suites: bv(vec![3]),
                    extensions: bv(vec![]),
                    proposals: bv(vec![]),
                    credentials: bv(vec![2]),
                })),
            },
            ClientKeyMaterial {
                client_uri: uri("mimi://b.example/d/BobWatch"),
                material: ClientMaterial::NothingCompatible(None),
            },
        ]),
    }
}

pub fn update_commit() -> UpdateRequest {
    UpdateRequest::Commit {
        commit: public_commit(),
        welcome: Some(Welcome::from_bytes(&hx(welcome_body_hex())).unwrap()),
        group_info_option: GroupInfoOption::Full(group_info()),
        ratchet_tree_option: ratchet_full(),
    }
}

pub fn update_commit_partial() -> UpdateRequest {
    UpdateRequest::Commit {
        commit: public_commit(),
        welcome: None,
        group_info_option: GroupInfoOption::Partial(PartialGroupInfo {
            ratchet_tree_presence: RatchetTreePresence::Present,
            group_info_extensions: bv(vec![Extension {
                extension_type: 5,
                extension_data: op(&[0xee, 0xee]),
            }]),
            signature: op(&[0x5e; 2]),
        }),
        ratchet_tree_option: RatchetTreeOption::DistributionService,
    }
}

pub fn update_proposal() -> UpdateRequest {
    UpdateRequest::Proposal {
        proposal: public_adu(false),
        more_proposals: bv(vec![public_remove()]),
    }
}

pub fn submit_request() -> SubmitMessageRequest {
    SubmitMessageRequest {
        protocol: Protocol::Mls10,
        app_message: private_app(),
        sending_uri: uri(CATHY),
    }
}

pub fn notify_body() -> NotifyBody {
    NotifyBody {
        messages: vec![
            FanoutMessage {
                timestamp: T0,
                message: private_app(),
                extra: FanoutExtra::Application {
                    frank: Some(frank()),
                },
            },
            FanoutMessage {
                timestamp: T0 + 1,
                message: welcome_msg(),
                extra: FanoutExtra::Welcome {
                    ratchet_tree_option: ratchet_full(),
                },
            },
            FanoutMessage {
                timestamp: T0 + 2,
                message: public_commit(),
                extra: FanoutExtra::Commit {
                    external_proposals: bv(vec![public_remove()]),
                },
            },
            FanoutMessage {
                timestamp: T0 + 3,
                message: public_adu(true),
                extra: FanoutExtra::Proposal {
                    more_proposals: bv(vec![]),
                },
            },
        ],
    }
}

pub fn group_info_request() -> GroupInfoRequest {
    GroupInfoRequest {
        protocol: Protocol::Mls10,
        cipher_suite: 1,
        requesting_signature_key: op(&[0x51; 4]),
        requesting_credential: basic("mimi://c.example/d/CathyNew"),
        group_info_public_key: op(&[0x48; 4]),
        joining_code: op(b"join-42"),
        signature: op(&[0x5e; 4]),
    }
}

pub fn group_info_success() -> GroupInfoSuccess {
    GroupInfoSuccess {
        cipher_suite: 1,
        hub_sender: ExternalSender {
            signature_key: op(&[0x55; 4]),
            credential: basic("mimi://a.example"),
        },
        encrypted_groupinfo_and_tree: HpkeCiphertext {
            kem_output: op(&[0x6b; 3]),
            ciphertext: op(&[0xc7; 5]),
        },
    }
}

pub fn group_info_response() -> GroupInfoResponse {
    GroupInfoResponse {
        version: Protocol::Mls10,
        room_id: uri(ROOM),
        result: Ok((group_info_success(), op(&[0x5e; 4]))),
    }
}

pub fn consent_grant() -> ConsentEntry {
    ConsentEntry {
        operation: ConsentOperation::Grant,
        requester_uri: uri(ALICE),
        target_uri: uri(BOB),
        room_id: Some(uri(ROOM)),
        client_key_packages: bv(vec![key_package()]),
        consent_extensions: AppDataDictionary {
            component_data: bv(vec![ComponentData {
                component_id: 0xf0f0,
                data: op(b"hi"),
            }]),
        },
    }
}

pub fn identifier_request() -> IdentifierRequest {
    IdentifierRequest {
        query_elements: bv(vec![
            QueryElement {
                field: SearchField::OidcStdClaim(txt("given_name")),
                search_value: txt("Xavier"),
            },
            QueryElement {
                field: SearchField::Handle,
                search_value: txt("im:xavier@xyz.example"),
            },
        ]),
        id_request_extensions: AppDataDictionary::default(),
    }
}

pub fn identifier_response() -> IdentifierResponse {
    let xavier = uri("mimi://xyz.example/u/xavier");
    IdentifierResponse {
        response_code: IdentifierQueryCode::Success,
        uri: bv(vec![xavier.clone()]),
        found_profiles: bv(vec![UserProfile {
            stable_uri: xavier,
            fields: bv(vec![ProfileField {
                field_source: FieldSource::OidcStdClaim,
                field_name: txt("given_name"),
                field_value: op(b"Xavier"),
            }]),
        }]),
        id_response_extensions: AppDataDictionary::default(),
    }
}

pub fn abuse_report() -> AbuseReport {
    AbuseReport {
        reporting_user: uri(BOB).into(),
        alleged_abuser_uri: uri(CATHY),
        reason_code: AbuseType(0),
        note: txt("spam"),
        messages: bv(vec![AbusiveMessage {
            message_content: op(&[0xa2, 0x00, 0x01]),
            frank: frank(),
            accepted_timestamp: T0,
        }]),
        abuse_extensions: AppDataDictionary::default(),
    }
}

pub fn participant_list() -> ParticipantListData {
    ParticipantListData {
        participants: bv(vec![
            UserRolePair {
                user: uri(ALICE),
                role_index: 4,
            },
            UserRolePair {
                user: uri(BOB),
                role_index: 2,
            },
        ]),
    }
}

pub fn participant_list_update() -> ParticipantListUpdate {
    ParticipantListUpdate {
        changed_role_participants: bv(vec![UserIndexRolePair {
            user_index: 1,
            role_index: 3,
        }]),
        removed_indices: bv(vec![0]),
        added_participants: bv(vec![UserRolePair {
            user: uri(CATHY),
            role_index: 2,
        }]),
    }
}

pub fn room_metadata() -> RoomMetaData {
    RoomMetaData {
        room_uri: uri(ROOM),
        room_name: Utf8String::new("Clubhouse").unwrap(),
        room_descriptions: bv(vec![RichDescription {
            media_type: txt(""),
            language_tag: txt("en"),
            description_content: op(b"Our club"),
        }]),
        room_avatar: OptionalUri::NONE,
        room_subject: Utf8String::new("Friday").unwrap(),
        room_mood: Utf8String::new("").unwrap(),
    }
}

pub fn role_data() -> RoleData {
    RoleData {
        roles: bv(vec![Role {
            role_index: 4,
            role_name: txt("admin"),
            role_description: txt(""),
            role_capabilities: bv(vec![
                capability::CAN_ADD_PARTICIPANT,
                capability::CAN_REMOVE_PARTICIPANT,
                capability::CAN_CHANGE_USER_ROLE,
            ]),
            minimum_participants_constraint: 1,
            maximum_participants_constraint: None,
            minimum_active_participants_constraint: 0,
            maximum_active_participants_constraint: Some(10),
            authorized_role_changes: bv(vec![SingleSourceRoleChangeTargets {
                from_role_index: 2,
                target_role_indexes: bv(vec![3, 4]),
            }]),
        }]),
    }
}

pub fn base_room_policy() -> BaseRoomPolicy {
    BaseRoomPolicy {
        fixed_membership: Bool::False,
        parent_dependent: Bool::False,
        parent_room: bv(vec![]),
        multi_device: Bool::True,
        max_clients: Some(100),
        max_users: None,
        pseudonyms_allowed: Bool::False,
        persistent_room: Bool::True,
        discoverable: Bool::False,
        policy_component_ids: bv(vec![component::ROLES_LIST, component::PARTICIPANT_LIST]),
    }
}
