//! The room state components -06 keeps in the MLS `app_data_dictionary` (§7.5 participant
//! list, §7.6 room metadata) and the room-policy-03 components the room's policy is made of
//! (roles, preauthorization, base policy).

use std::fmt;
use std::io::{Read, Write};

use tls_codec::{Deserialize, Serialize, Size, TlsDeserialize, TlsSerialize, TlsSize};

use super::limits::*;
use super::mls::ComponentId;
use super::uri::{IdentifierUri, OptionalUri};
use crate::CodecError;
use crate::bounded::{BoundedVec, Opaque, Text};
use crate::enums::wire_enum;
use crate::error::park;
use crate::limits::MAX_PARTICIPANTS;

/// The MLS application component IDs of -06 §9 and room-policy-03 §10 (the latter are the
/// draft's suggested values).
pub mod component {
    use super::ComponentId;
    /// `frank_aad` (Safe AAD).
    pub const FRANK_AAD: ComponentId = 0x0020;
    /// `franking_signature_key`, the `franking_agent` component (GroupContext).
    pub const FRANKING_AGENT: ComponentId = 0x0021;
    /// `participant_list` (GroupContext).
    pub const PARTICIPANT_LIST: ComponentId = 0x0022;
    /// `room_metadata` (GroupContext).
    pub const ROOM_METADATA: ComponentId = 0x0023;
    /// `mls_operational_policy`.
    pub const MLS_OPERATIONAL_POLICY: ComponentId = 0x0024;
    /// `roles_list`.
    pub const ROLES_LIST: ComponentId = 0x0025;
    /// `preauth_list`.
    pub const PREAUTH_LIST: ComponentId = 0x0026;
    /// `base_room_policy`.
    pub const BASE_ROOM_POLICY: ComponentId = 0x0027;
}

/// A role index (`uint32 role_index`). 0 is reserved for "not in the participant list".
pub type RoleIndex = u32;

/// `UserRolePair`: a participant and its role.
#[derive(Debug, Clone, PartialEq, Eq, Hash, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct UserRolePair {
    /// `opaque user<V>`: the user's URI.
    pub user: IdentifierUri,
    /// The role.
    pub role_index: RoleIndex,
}

/// `ParticipantListData`: the `participant_list` component's data.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct ParticipantListData {
    /// `UserRolePair participants<V>`.
    pub participants: BoundedVec<UserRolePair, MAX_PARTICIPANTS>,
}

/// `UserindexRolePair`: a role change by index into the current list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct UserIndexRolePair {
    /// Index into `ParticipantListData.participants`.
    pub user_index: u32,
    /// The new role.
    pub role_index: RoleIndex,
}

/// `ParticipantListUpdate`: the `update` of an `AppDataUpdate` proposal for the participant
/// list. Applied in order: role changes, removals, then additions appended at the end.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct ParticipantListUpdate {
    /// `UserindexRolePair changedRoleParticipants<V>`.
    pub changed_role_participants: BoundedVec<UserIndexRolePair, MAX_PARTICIPANTS>,
    /// `uint32 removedIndices<V>`.
    pub removed_indices: BoundedVec<u32, MAX_PARTICIPANTS>,
    /// `UserRolePair addedParticipants<V>`.
    pub added_participants: BoundedVec<UserRolePair, MAX_PARTICIPANTS>,
}

/// Why a `ParticipantListUpdate` cannot be applied to a participant list (-06 §7.5).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParticipantListError {
    /// A `user_index` or removed index is not an index of the current list.
    #[error("index {index} is outside the participant list of {len}")]
    IndexOutOfRange {
        /// The index.
        index: u32,
        /// The list's length.
        len: usize,
    },
    /// The update touches one user more than once (changes, removes or adds it twice, or adds
    /// a user already in the list).
    #[error("the update touches {0} more than once")]
    UserTwice(IdentifierUri),
    /// The list would have more than [`MAX_PARTICIPANTS`] participants.
    #[error("{0} participants is over the limit of {MAX_PARTICIPANTS}")]
    TooManyParticipants(usize),
    /// A participant would get role 0, which room-policy reserves for "not in the list".
    #[error("role 0 is reserved for users not in the participant list ({0})")]
    ReservedRole(IdentifierUri),
}

impl ParticipantListData {
    /// The list after `update`: role changes by index into this list, then removals by index
    /// into this list, then additions appended in order (-06 §7.5). An update that touches a
    /// user twice, names an index outside the list, adds a user already listed or gives role 0
    /// is refused. Whether the sender may make each change is the room policy's question.
    ///
    /// Rule CODEC06-10 (docs/protocol-coverage.md).
    pub fn apply(
        &self,
        update: &ParticipantListUpdate,
    ) -> Result<ParticipantListData, ParticipantListError> {
        let current = self.participants.as_slice();
        let len = current.len();
        let index = |i: u32| {
            usize::try_from(i)
                .ok()
                .filter(|i| *i < len)
                .ok_or(ParticipantListError::IndexOutOfRange { index: i, len })
        };
        let mut touched = vec![false; len];
        let mut roles: Vec<RoleIndex> = current.iter().map(|p| p.role_index).collect();
        for change in update.changed_role_participants.iter() {
            let i = index(change.user_index)?;
            if std::mem::replace(&mut touched[i], true) {
                return Err(ParticipantListError::UserTwice(current[i].user.clone()));
            }
            if change.role_index == 0 {
                return Err(ParticipantListError::ReservedRole(current[i].user.clone()));
            }
            roles[i] = change.role_index;
        }
        let mut removed = vec![false; len];
        for &r in update.removed_indices.iter() {
            let i = index(r)?;
            if std::mem::replace(&mut touched[i], true) {
                return Err(ParticipantListError::UserTwice(current[i].user.clone()));
            }
            removed[i] = true;
        }
        let mut out: Vec<UserRolePair> = current
            .iter()
            .zip(roles)
            .zip(&removed)
            .filter(|(_, gone)| !**gone)
            .map(|((p, role_index), _)| UserRolePair {
                user: p.user.clone(),
                role_index,
            })
            .collect();
        for added in update.added_participants.iter() {
            if added.role_index == 0 {
                return Err(ParticipantListError::ReservedRole(added.user.clone()));
            }
            if current
                .iter()
                .chain(out.iter())
                .any(|p| p.user == added.user)
            {
                return Err(ParticipantListError::UserTwice(added.user.clone()));
            }
            out.push(added.clone());
        }
        let count = out.len();
        let participants =
            BoundedVec::new(out).map_err(|_| ParticipantListError::TooManyParticipants(count))?;
        Ok(ParticipantListData { participants })
    }
}

/// `UTF8String`: "a sequence of valid UTF8 without nulls" in `opaque string<V>`.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Utf8String(Text<MAX_SHORT_TEXT_LEN>);

impl Utf8String {
    /// Wrap text, refusing NUL characters and more than [`MAX_SHORT_TEXT_LEN`] bytes.
    pub fn new(text: impl Into<String>) -> Result<Self, CodecError> {
        let text = text.into();
        if text.contains('\0') {
            return Err(CodecError::Malformed("UTF8String contains NUL".into()));
        }
        Ok(Utf8String(Text::new(text)?))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Debug for Utf8String {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0.as_str(), f)
    }
}

impl Size for Utf8String {
    fn tls_serialized_len(&self) -> usize {
        self.0.tls_serialized_len()
    }
}

impl Serialize for Utf8String {
    fn tls_serialize<W: Write>(&self, w: &mut W) -> Result<usize, tls_codec::Error> {
        self.0.tls_serialize(w)
    }
}

impl Deserialize for Utf8String {
    fn tls_deserialize<R: Read>(r: &mut R) -> Result<Self, tls_codec::Error> {
        let text = Text::<MAX_SHORT_TEXT_LEN>::tls_deserialize(r)?;
        if text.as_str().contains('\0') {
            return Err(park(CodecError::Malformed(
                "UTF8String contains NUL".into(),
            )));
        }
        Ok(Utf8String(text))
    }
}

/// `RichDescription`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct RichDescription {
    /// `opaque media_type<V>`; empty means `text/plain;charset=utf-8`.
    pub media_type: Text<MAX_SHORT_TEXT_LEN>,
    /// `opaque language_tag<V>`.
    pub language_tag: Text<MAX_SHORT_TEXT_LEN>,
    /// `opaque description_content<V>`.
    pub description_content: Opaque<MAX_DESCRIPTION_LEN>,
}

/// `RoomMetaData` (also `RoomMetaUpdate`): the `room_metadata` component's data.
#[derive(Debug, Clone, PartialEq, Eq, Hash, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct RoomMetaData {
    /// `Uri room_uri`.
    pub room_uri: IdentifierUri,
    /// The room's name.
    pub room_name: Utf8String,
    /// `RichDescription room_descriptions<V>`.
    pub room_descriptions: BoundedVec<RichDescription, MAX_DESCRIPTIONS>,
    /// `Uri room_avatar`: an https URI, or empty for none.
    pub room_avatar: OptionalUri,
    /// The subject.
    pub room_subject: Utf8String,
    /// The mood.
    pub room_mood: Utf8String,
}

wire_enum! {
    /// room-policy's `bool` (`enum { false(0), true(1) }`); any other value is refused.
    pub enum Bool: u8, "bool" {
        /// false.
        False = 0,
        /// true.
        True = 1,
    }
}

impl From<bool> for Bool {
    fn from(b: bool) -> Self {
        if b { Bool::True } else { Bool::False }
    }
}

impl From<Bool> for bool {
    fn from(b: Bool) -> Self {
        b == Bool::True
    }
}

/// `CapabilityType` (a `uint16` of the MIMI Role Capabilities registry); see [`capability`].
pub type CapabilityType = u16;

/// Role capabilities of room-policy-03 §11.2 used by -06's flows.
pub mod capability {
    use super::CapabilityType;
    /// `canAddParticipant`.
    pub const CAN_ADD_PARTICIPANT: CapabilityType = 0x0000;
    /// `canRemoveParticipant`.
    pub const CAN_REMOVE_PARTICIPANT: CapabilityType = 0x0001;
    /// `canAddOwnClient`.
    pub const CAN_ADD_OWN_CLIENT: CapabilityType = 0x0002;
    /// `canRemoveOwnClient`.
    pub const CAN_REMOVE_OWN_CLIENT: CapabilityType = 0x0003;
    /// `canOpenJoin`.
    pub const CAN_OPEN_JOIN: CapabilityType = 0x0004;
    /// `canJoinIfPreauthorized`.
    pub const CAN_JOIN_IF_PREAUTHORIZED: CapabilityType = 0x0005;
    /// `canRemoveSelf`.
    pub const CAN_REMOVE_SELF: CapabilityType = 0x0006;
    /// `canUseJoinCode`.
    pub const CAN_USE_JOIN_CODE: CapabilityType = 0x0009;
    /// `canBan`.
    pub const CAN_BAN: CapabilityType = 0x000a;
    /// `canUnBan`.
    pub const CAN_UNBAN: CapabilityType = 0x000b;
    /// `canKick`.
    pub const CAN_KICK: CapabilityType = 0x000c;
    /// `canChangeUserRole`.
    pub const CAN_CHANGE_USER_ROLE: CapabilityType = 0x000f;
    /// `canChangeOwnRole`.
    pub const CAN_CHANGE_OWN_ROLE: CapabilityType = 0x0010;
    /// `canSendMessage`.
    pub const CAN_SEND_MESSAGE: CapabilityType = 0x0100;
    /// `canReceiveMessage`.
    pub const CAN_RECEIVE_MESSAGE: CapabilityType = 0x0101;
    /// `canReportAbuse`.
    pub const CAN_REPORT_ABUSE: CapabilityType = 0x0103;
    /// `canChangeRoomName`.
    pub const CAN_CHANGE_ROOM_NAME: CapabilityType = 0x0300;
    /// `canChangeRoleDefinitions`.
    pub const CAN_CHANGE_ROLE_DEFINITIONS: CapabilityType = 0x0503;
    /// `canChangePreauthorizedUserList`.
    pub const CAN_CHANGE_PREAUTHORIZED_USER_LIST: CapabilityType = 0x0504;
}

/// `SingleSourceRoleChangeTargets`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct SingleSourceRoleChangeTargets {
    /// The role a participant moves from.
    pub from_role_index: RoleIndex,
    /// `uint32 target_role_indexes<V>`: the roles it may be moved to.
    pub target_role_indexes: BoundedVec<RoleIndex, MAX_ROLE_CHANGES>,
}

/// `Role` (room-policy-03 §3).
#[derive(Debug, Clone, PartialEq, Eq, Hash, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct Role {
    /// The index other structures refer to.
    pub role_index: RoleIndex,
    /// `opaque role_name<V>` (UTF-8).
    pub role_name: Text<MAX_SHORT_TEXT_LEN>,
    /// `opaque role_description<V>` (UTF-8, may be empty).
    pub role_description: Text<MAX_DESCRIPTION_LEN>,
    /// `CapabilityType role_capabilities<V>`.
    pub role_capabilities: BoundedVec<CapabilityType, MAX_ROLE_CAPABILITIES>,
    /// Minimum number of participants with this role.
    pub minimum_participants_constraint: u32,
    /// `optional uint32` maximum.
    pub maximum_participants_constraint: Option<u32>,
    /// Minimum number of active participants.
    pub minimum_active_participants_constraint: u32,
    /// `optional uint32` maximum of active participants.
    pub maximum_active_participants_constraint: Option<u32>,
    /// `SingleSourceRoleChangeTargets authorized_role_changes<V>`.
    pub authorized_role_changes: BoundedVec<SingleSourceRoleChangeTargets, MAX_ROLE_CHANGES>,
}

/// `RoleData` (also `RoleUpdate`): the `roles_list` component's data.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct RoleData {
    /// `Role roles<V>`.
    pub roles: BoundedVec<Role, MAX_ROLES>,
}

/// `ClaimId`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct ClaimId {
    /// The MLS `CredentialType` the claim is in.
    pub credential_type: u16,
    /// `opaque id<V>`.
    pub id: Opaque<MAX_CLAIM_LEN>,
}

/// `Claim`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct Claim {
    /// Which claim.
    pub claim_id: ClaimId,
    /// `opaque claim_value<V>`.
    pub claim_value: Opaque<MAX_CLAIM_LEN>,
}

/// `PreAuthRoleEntry`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct PreAuthRoleEntry {
    /// `Claim claimset<V>`: all must match.
    pub claimset: BoundedVec<Claim, MAX_PREAUTH_ENTRIES>,
    /// The role granted.
    pub target_role: Role,
}

/// `PreAuthData` (also `PreAuthUpdate`): the `preauth_list` component's data.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct PreAuthData {
    /// `PreAuthRoleEntry preauthorized_entries<V>`.
    pub preauthorized_entries: BoundedVec<PreAuthRoleEntry, MAX_PREAUTH_ENTRIES>,
}

/// `BaseRoomPolicy` (also `BaseRoomData`, `BaseRoomUpdate`): the `base_room_policy`
/// component's data.
#[derive(Debug, Clone, PartialEq, Eq, Hash, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct BaseRoomPolicy {
    /// Participants fixed at creation.
    pub fixed_membership: Bool,
    /// Participants must be a subset of the parent room's (`parent_dependant`).
    pub parent_dependent: Bool,
    /// `Uri parent_room<V>`: the parent room when parent-dependent, otherwise empty (at most
    /// one).
    pub parent_room: BoundedVec<IdentifierUri, 1>,
    /// Several clients per user may be members.
    pub multi_device: Bool,
    /// `optional uint32 max_clients`.
    pub max_clients: Option<u32>,
    /// `optional uint32 max_users`.
    pub max_users: Option<u32>,
    /// Pseudonymous credentials allowed.
    pub pseudonyms_allowed: Bool,
    /// The room outlives its MLS group.
    pub persistent_room: Bool,
    /// The room is searchable.
    pub discoverable: Bool,
    /// `Component policy_component_ids<V>`: the other policy components in force.
    pub policy_component_ids: BoundedVec<ComponentId, MAX_COMPONENTS>,
}
