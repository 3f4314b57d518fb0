//! The binding's rules, each against the openmls value it produces or reads.

// Helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use mimi_codec::{
    BoundedVec, ClientId, JoinRule, ParticipantData, ParticipationState, ParticipationStateChange,
    RoomPolicy, RoomState, SecurityConfig, ServerName, Text, UserEvent, Wire,
};
use mimi_mls_binding::{
    CredentialError, ROOM_STATE_EXTENSION_TYPE, RoomStateError, USER_EVENT_PROPOSAL_TYPE,
    client_id_from_credential, credential_for, external_sender, mimi_capabilities,
    mimi_required_capabilities, requires_mimi, room_state_bytes_of, room_state_extension,
    room_state_extension_from_bytes, room_state_of, server_of_external_sender, supports_mimi,
    user_event_of, user_event_proposal,
};
use openmls::prelude::tls_codec::Serialize as _;
use openmls::prelude::{
    BasicCredential, Capabilities, Credential, CredentialType, CustomProposal, Extension,
    ExtensionType, Extensions, GroupContext, ProposalType, RequiredCapabilitiesExtension,
};

fn room_state() -> RoomState {
    RoomState {
        room_id: "!lobby:hub.example".parse().unwrap(),
        participants: BoundedVec::new(vec![ParticipantData {
            user_id: "@alice:hub.example".parse().unwrap(),
            role: "owner".parse().unwrap(),
            state: ParticipationState::Join,
        }])
        .unwrap(),
        policy: RoomPolicy {
            policy_id: Text::new("mimi.roles.v1").unwrap(),
            join_rule: JoinRule::Knock,
            permissions: BoundedVec::new(Vec::new()).unwrap(),
        },
        security: SecurityConfig {
            protocol: Text::new("mls10").unwrap(),
            cipher_suite: 1,
        },
    }
}

fn invite_bob() -> UserEvent {
    UserEvent {
        target: "@bob:b.example".parse().unwrap(),
        change: ParticipationStateChange::Invite,
        reason: Text::default(),
        follower_server_certificate: None,
        role: None,
    }
}

#[test]
fn the_private_use_numbers_in_openmls_form() {
    assert_eq!(ROOM_STATE_EXTENSION_TYPE, ExtensionType::Unknown(0xF001));
    assert_eq!(USER_EVENT_PROPOSAL_TYPE, ProposalType::Custom(0xF002));
}

#[test]
fn credential_rule() {
    let client: ClientId = "@bob:b.example#phone".parse().unwrap();
    let credential = credential_for(&client);
    assert_eq!(credential.credential_type(), CredentialType::Basic);
    assert_eq!(client_id_from_credential(&credential).unwrap(), client);
    // The identity is exactly the client ID's UTF-8 bytes.
    let basic = BasicCredential::try_from(credential).unwrap();
    assert_eq!(basic.identity(), b"@bob:b.example#phone");

    // A user ID (no device) is not a client ID.
    let not_client: Credential = BasicCredential::new(b"@bob:b.example".to_vec()).into();
    assert!(matches!(
        client_id_from_credential(&not_client),
        Err(CredentialError::Identity(_))
    ));
    // Other credential types are refused.
    let x509 = Credential::new(CredentialType::X509, b"@bob:b.example#phone".to_vec());
    assert_eq!(
        client_id_from_credential(&x509),
        Err(CredentialError::NotBasic)
    );
}

#[test]
fn external_sender_names_its_server() {
    let server: ServerName = "hub.example".parse().unwrap();
    let sender = external_sender(&server, &[7u8; 32]);
    assert_eq!(server_of_external_sender(&sender).unwrap(), server);
    // The encoding is the signature key then the BasicCredential (RFC 9420 §12.1.8.1).
    let bytes = sender.tls_serialize_detached().unwrap();
    assert_eq!(&bytes[..33], &[&[32u8][..], &[7u8; 32][..]].concat()[..]);

    // A credential whose identity is not a server name is refused.
    let bad = openmls::prelude::ExternalSender::new(
        vec![7u8; 32].into(),
        BasicCredential::new(b"not a server".to_vec()).into(),
    );
    assert!(matches!(
        server_of_external_sender(&bad),
        Err(CredentialError::Identity(_))
    ));
}

#[test]
fn room_state_extension_round_trip() {
    let state = room_state();
    let extension = room_state_extension(&state).unwrap();
    assert_eq!(extension.extension_type(), ROOM_STATE_EXTENSION_TYPE);
    let extensions = Extensions::<GroupContext>::from_vec(vec![extension]).unwrap();
    assert_eq!(room_state_of(&extensions).unwrap(), state);
    assert_eq!(
        room_state_bytes_of(&extensions).unwrap(),
        state.encode().unwrap().as_slice()
    );

    let none = Extensions::<GroupContext>::from_vec(Vec::new()).unwrap();
    assert_eq!(room_state_of(&none), Err(RoomStateError::Missing));
    let garbage =
        Extensions::<GroupContext>::from_vec(vec![room_state_extension_from_bytes(vec![1, 2, 3])])
            .unwrap();
    assert!(matches!(
        room_state_of(&garbage),
        Err(RoomStateError::Malformed(_))
    ));
}

#[test]
fn user_event_proposal_round_trip() {
    let event = invite_bob();
    let proposal = user_event_proposal(&event).unwrap();
    assert_eq!(proposal.proposal_type(), 0xF002);
    assert_eq!(user_event_of(&proposal), Some(Ok(event)));
    // Another custom type is not a UserEvent; a UserEvent type with a bad payload is an error.
    assert_eq!(user_event_of(&CustomProposal::new(0xF0FF, vec![1])), None);
    assert!(matches!(
        user_event_of(&CustomProposal::new(0xF002, vec![0xFF])),
        Some(Err(_))
    ));
}

#[test]
fn capabilities_advertise_and_require_mimi() {
    let capabilities = mimi_capabilities();
    assert!(supports_mimi(&capabilities));
    assert!(
        capabilities
            .extensions()
            .contains(&ExtensionType::LastResort)
    );
    assert!(capabilities.credentials().contains(&CredentialType::Basic));
    assert!(!supports_mimi(&Capabilities::default()));
    let only_extension =
        Capabilities::new(None, None, Some(&[ROOM_STATE_EXTENSION_TYPE]), None, None);
    assert!(!supports_mimi(&only_extension));

    let required = mimi_required_capabilities();
    assert!(requires_mimi(&required));
    assert!(required.credential_types().contains(&CredentialType::Basic));
    let without_proposal =
        RequiredCapabilitiesExtension::new(&[ROOM_STATE_EXTENSION_TYPE], &[], &[]);
    assert!(!requires_mimi(&without_proposal));
    // The required-capabilities extension goes into a group context as it is.
    let extensions =
        Extensions::<GroupContext>::from_vec(vec![Extension::RequiredCapabilities(required)])
            .unwrap();
    assert!(extensions.required_capabilities().is_some());
}
