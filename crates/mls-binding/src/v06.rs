//! MIMI-on-MLS for the second version (draft-ietf-mimi-protocol-06): a -06 room is an MLS
//! group whose GroupContext carries the `app_data_dictionary` (draft-ietf-mls-extensions)
//! with the room's components (`mimi_codec::v06::room`): the participant list, the room
//! metadata and the roles list of room-policy-03. The participant list changes only by
//! `AppDataUpdate` proposals carrying a `ParticipantListUpdate`; both the client that
//! commits and the hub that checks the commit compute the new list here
//! ([`resolve_app_data_updates`]), so they cannot disagree.
//!
//! The MLS group ID of a -06 room is its room URI (`mimi://a.example/r/club`, UTF-8). A
//! participant's user URI follows from its clients' credentials ([`user_uri_of_client`]).

use mimi_codec::v06::room::{
    CapabilityType, ParticipantListData, ParticipantListError, ParticipantListUpdate, RoleData,
    RoleIndex, RoomMetaData, component,
};
use mimi_codec::v06::{IdentifierUri, MimiUri, MimiUriKind};
use mimi_codec::{ClientId, CodecError, Wire};
use openmls::component::{ComponentData, ComponentId};
use openmls::group::AppDataDictionaryUpdater;
use openmls::prelude::{
    AppDataDictionary, AppDataDictionaryExtension, AppDataUpdateOperation, AppDataUpdateProposal,
    Capabilities, CredentialType, Extension, ExtensionType, Extensions, ExternalSender,
    GroupContext, Proposal, ProposalType, RequiredCapabilitiesExtension,
};

/// Why a -06 room's components cannot be read or changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Room06Error {
    /// The group context has no `app_data_dictionary`, or it lacks a component a room needs.
    #[error("the group context has no {0} component")]
    Missing(&'static str),
    /// A component's data does not decode.
    #[error("{what}: {source}")]
    Malformed {
        /// Which component.
        what: &'static str,
        /// Why.
        source: CodecError,
    },
    /// A `ParticipantListUpdate` does not apply to the list.
    #[error("participant list update: {0}")]
    ParticipantList(#[from] ParticipantListError),
    /// An `AppDataUpdate` for a component a room does not change that way (or a removal).
    #[error("AppDataUpdate of component {0:#06x} is not allowed in a MIMI room")]
    Component(ComponentId),
}

/// What a -06 room's dictionary holds at creation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Room06Components {
    /// `participant_list`.
    pub participants: ParticipantListData,
    /// `roles_list`.
    pub roles: RoleData,
    /// `room_metadata`.
    pub metadata: RoomMetaData,
    /// `franking_agent` (draft-ietf-mimi-protocol-06 §5.4.1): the hub's franking signature key,
    /// when the hub franks; absent, messages of the room are not franked.
    pub franking_agent: Option<mimi_codec::v06::FrankingAgentData>,
}

/// The capabilities every -06 leaf advertises beyond [`crate::mimi_capabilities`]: the
/// `app_data_dictionary` extension and the `AppDataUpdate` proposal. [`crate::mimi_capabilities`]
/// includes them, so one key package serves rooms of both versions.
pub fn app_data_capabilities() -> Capabilities {
    crate::mimi_capabilities()
}

/// The `required_capabilities` of a -06 room: the `app_data_dictionary` extension, the
/// `AppDataUpdate` proposal and BasicCredentials.
pub fn required_capabilities06() -> RequiredCapabilitiesExtension {
    RequiredCapabilitiesExtension::new(
        &[ExtensionType::AppDataDictionary],
        &[ProposalType::AppDataUpdate],
        &[CredentialType::Basic],
    )
}

/// Whether a leaf can be a member of a -06 room.
pub fn supports06(capabilities: &Capabilities) -> bool {
    capabilities
        .extensions()
        .contains(&ExtensionType::AppDataDictionary)
        && capabilities
            .proposals()
            .contains(&ProposalType::AppDataUpdate)
}

/// Whether a group's `required_capabilities` make it a -06 room.
pub fn requires06(required: &RequiredCapabilitiesExtension) -> bool {
    required
        .extension_types()
        .contains(&ExtensionType::AppDataDictionary)
        && required
            .proposal_types()
            .contains(&ProposalType::AppDataUpdate)
}

fn encoded(what: &'static str, value: &impl Wire) -> Result<Vec<u8>, Room06Error> {
    value
        .encode()
        .map_err(|source| Room06Error::Malformed { what, source })
}

/// The GroupContext extensions of a new -06 room: the `app_data_dictionary` with the
/// participant list, room metadata and roles list, the hub as the one external sender, and
/// [`required_capabilities06`].
///
/// Rule V06-MLS-1 (docs/protocol-coverage.md).
pub fn room06_extensions(
    components: &Room06Components,
    hub: ExternalSender,
) -> Result<Extensions<GroupContext>, Room06Error> {
    let mut dictionary = AppDataDictionary::new();
    for (id, bytes) in [
        (
            component::PARTICIPANT_LIST,
            encoded("participant_list", &components.participants)?,
        ),
        (
            component::ROOM_METADATA,
            encoded("room_metadata", &components.metadata)?,
        ),
        (
            component::ROLES_LIST,
            encoded("roles_list", &components.roles)?,
        ),
    ] {
        let _ = dictionary.insert(id, bytes);
    }
    if let Some(agent) = &components.franking_agent {
        let _ = dictionary.insert(component::FRANKING_AGENT, encoded("franking_agent", agent)?);
    }
    Extensions::from_vec(vec![
        Extension::AppDataDictionary(AppDataDictionaryExtension::new(dictionary)),
        Extension::ExternalSenders(vec![hub]),
        Extension::RequiredCapabilities(required_capabilities06()),
    ])
    .map_err(|_| Room06Error::Missing("valid extension list"))
}

fn component_of(
    extensions: &Extensions<GroupContext>,
    id: ComponentId,
    what: &'static str,
) -> Result<Vec<u8>, Room06Error> {
    extensions
        .app_data_dictionary()
        .and_then(|d| d.dictionary().get(&id))
        .map(<[u8]>::to_vec)
        .ok_or(Room06Error::Missing(what))
}

fn decoded<T: Wire>(bytes: &[u8], what: &'static str) -> Result<T, Room06Error> {
    T::decode(bytes).map_err(|source| Room06Error::Malformed { what, source })
}

/// The participant list in a group context.
pub fn participant_list_of(
    extensions: &Extensions<GroupContext>,
) -> Result<ParticipantListData, Room06Error> {
    let bytes = component_of(extensions, component::PARTICIPANT_LIST, "participant_list")?;
    decoded(&bytes, "participant_list")
}

/// The `franking_agent` in a group context, if the room has one.
pub fn franking_agent_of(
    extensions: &Extensions<GroupContext>,
) -> Result<Option<mimi_codec::v06::FrankingAgentData>, Room06Error> {
    match component_of(extensions, component::FRANKING_AGENT, "franking_agent") {
        Ok(bytes) => decoded(&bytes, "franking_agent").map(Some),
        Err(Room06Error::Missing(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The roles list in a group context.
pub fn roles_of(extensions: &Extensions<GroupContext>) -> Result<RoleData, Room06Error> {
    let bytes = component_of(extensions, component::ROLES_LIST, "roles_list")?;
    decoded(&bytes, "roles_list")
}

/// The room metadata in a group context.
pub fn room_metadata_of(
    extensions: &Extensions<GroupContext>,
) -> Result<RoomMetaData, Room06Error> {
    let bytes = component_of(extensions, component::ROOM_METADATA, "room_metadata")?;
    decoded(&bytes, "room_metadata")
}

/// The `AppDataUpdate` proposal (committed by value) carrying a participant list update.
pub fn participant_list_update_proposal(
    update: &ParticipantListUpdate,
) -> Result<Proposal, Room06Error> {
    Ok(Proposal::AppDataUpdate(Box::new(
        AppDataUpdateProposal::update(
            component::PARTICIPANT_LIST,
            encoded("ParticipantListUpdate", update)?,
        ),
    )))
}

/// Interpret a commit's `AppDataUpdate` proposals (in the order openmls gives them): each
/// participant-list update is applied in turn to the list, the result set in `updater`.
/// Any other component, or a removal, is refused. Returns the updates in order (the hub
/// checks each against the room policy).
///
/// Rule V06-MLS-2 (docs/protocol-coverage.md).
pub fn resolve_app_data_updates<'a>(
    updater: &mut AppDataDictionaryUpdater<'_>,
    proposals: impl Iterator<Item = &'a AppDataUpdateProposal>,
) -> Result<Vec<ParticipantListUpdate>, Room06Error> {
    let mut list: Option<ParticipantListData> = None;
    let mut updates = Vec::new();
    for proposal in proposals {
        let id = proposal.component_id();
        let AppDataUpdateOperation::Update(data) = proposal.operation() else {
            return Err(Room06Error::Component(id));
        };
        if id != component::PARTICIPANT_LIST {
            return Err(Room06Error::Component(id));
        }
        let update: ParticipantListUpdate = decoded(data.as_slice(), "ParticipantListUpdate")?;
        let current = match list.take() {
            Some(current) => current,
            None => decoded(
                updater
                    .old_value(component::PARTICIPANT_LIST)
                    .ok_or(Room06Error::Missing("participant_list"))?,
                "participant_list",
            )?,
        };
        list = Some(current.apply(&update)?);
        updates.push(update);
    }
    if let Some(list) = list {
        updater.set(ComponentData::from_parts(
            component::PARTICIPANT_LIST,
            encoded("participant_list", &list)?.into(),
        ));
    }
    Ok(updates)
}

/// The -06 user URI of a client: `mimi://<provider>/u/<localpart>` for `@localpart:provider#d`.
pub fn user_uri_of_client(client: &ClientId) -> Option<IdentifierUri> {
    let user = client.user();
    MimiUri::new(&user.server(), MimiUriKind::User, user.localpart())
        .ok()
        .map(|u| IdentifierUri::from(&u))
}

/// The role of `user` in a participant list (`None`: not a participant, room-policy's
/// role 0).
pub fn role_of(list: &ParticipantListData, user: &IdentifierUri) -> Option<RoleIndex> {
    list.participants
        .iter()
        .find(|p| &p.user == user)
        .map(|p| p.role_index)
}

/// Whether `role` has `capability` in the roles list.
pub fn role_can(roles: &RoleData, role: RoleIndex, capability: CapabilityType) -> bool {
    roles
        .roles
        .iter()
        .find(|r| r.role_index == role)
        .is_some_and(|r| r.role_capabilities.iter().any(|c| *c == capability))
}

/// Whether a GroupContext belongs to a -06 room (has an `app_data_dictionary` and no
/// first-version RoomState).
pub fn is_room06(extensions: &Extensions<GroupContext>) -> bool {
    extensions.app_data_dictionary().is_some()
        && extensions
            .unknown(mimi_codec::mls_ids::ROOM_STATE_EXTENSION_TYPE)
            .is_none()
}

/// The roles this implementation gives a new -06 room ([`default_roles`]).
pub mod roles {
    use mimi_codec::v06::room::RoleIndex;
    /// Every capability of the flows: adds, removes, role changes, messages.
    pub const OWNER: RoleIndex = 1;
    /// Adds participants and its own clients, leaves, sends and receives.
    pub const MEMBER: RoleIndex = 2;
    /// Sends, receives and leaves; adds no one.
    pub const GUEST: RoleIndex = 3;
}

/// The roles list of a new -06 room: [`roles::OWNER`], [`roles::MEMBER`], [`roles::GUEST`]
/// (room-policy-03 §3; `docs/spec-decisions.md`, "-06 default roles").
pub fn default_roles() -> Result<RoleData, CodecError> {
    use mimi_codec::v06::room::Role;
    use mimi_codec::v06::room::capability::*;
    use mimi_codec::{BoundedVec, Text};
    let role =
        |index: RoleIndex, name: &str, caps: &[CapabilityType]| -> Result<Role, CodecError> {
            Ok(Role {
                role_index: index,
                role_name: Text::new(name)?,
                role_description: Text::new("")?,
                role_capabilities: BoundedVec::new(caps.to_vec())?,
                minimum_participants_constraint: 0,
                maximum_participants_constraint: None,
                minimum_active_participants_constraint: 0,
                maximum_active_participants_constraint: None,
                authorized_role_changes: BoundedVec::default(),
            })
        };
    let messages = [CAN_SEND_MESSAGE, CAN_RECEIVE_MESSAGE, CAN_REPORT_ABUSE];
    let member: Vec<CapabilityType> = [
        CAN_ADD_PARTICIPANT,
        CAN_ADD_OWN_CLIENT,
        CAN_REMOVE_OWN_CLIENT,
        CAN_REMOVE_SELF,
    ]
    .into_iter()
    .chain(messages)
    .collect();
    let owner: Vec<CapabilityType> = member
        .iter()
        .copied()
        .chain([
            CAN_REMOVE_PARTICIPANT,
            CAN_KICK,
            CAN_CHANGE_USER_ROLE,
            CAN_CHANGE_OWN_ROLE,
            CAN_CHANGE_ROOM_NAME,
        ])
        .collect();
    let guest: Vec<CapabilityType> = [CAN_REMOVE_SELF].into_iter().chain(messages).collect();
    Ok(RoleData {
        roles: BoundedVec::new(vec![
            role(roles::OWNER, "owner", &owner)?,
            role(roles::MEMBER, "member", &member)?,
            role(roles::GUEST, "guest", &guest)?,
        ])?,
    })
}

/// The components of a new -06 room `room` named `name`, created by `creator` (an
/// [`roles::OWNER`]), with [`default_roles`].
pub fn new_room_components(
    room: &IdentifierUri,
    name: &str,
    creator: &IdentifierUri,
) -> Result<Room06Components, CodecError> {
    use mimi_codec::BoundedVec;
    use mimi_codec::v06::OptionalUri;
    use mimi_codec::v06::room::{UserRolePair, Utf8String};
    Ok(Room06Components {
        participants: ParticipantListData {
            participants: BoundedVec::new(vec![UserRolePair {
                user: creator.clone(),
                role_index: roles::OWNER,
            }])?,
        },
        roles: default_roles()?,
        metadata: RoomMetaData {
            room_uri: room.clone(),
            room_name: Utf8String::new(name)?,
            room_descriptions: BoundedVec::default(),
            room_avatar: OptionalUri::NONE,
            room_subject: Utf8String::new("")?,
            room_mood: Utf8String::new("")?,
        },
        franking_agent: None,
    })
}
