//! Room state and participation: `ParticipationState`, `ParticipationStateChange`,
//! `UserEvent` (the payload of the `m.room.user` MLS proposal), `ParticipantData`,
//! `RoomState` (the GroupContext extension that anchors the room in its MLS group) and
//! `InfoEvent` (`m.room.info`).
//!
//! Beyond the draft (see `docs/spec-decisions.md`): `RoomState` also carries the room's
//! [`RoomPolicy`] and [`SecurityConfig`] (the draft's "TODO: Add any remaining room data"),
//! `ParticipationStateChange` has a `set_role` value and `UserEvent` an optional role (the
//! draft's "change a participant's role?" TODO).

use std::fmt;
use std::str::FromStr;

use tls_codec::{TlsDeserialize, TlsSerialize, TlsSize};

use crate::CodecError;
use crate::bounded::{BoundedVec, Opaque, Text};
use crate::enums::wire_enum;
use crate::error::park;
use crate::ident::{RoomId, UserId};
use crate::limits::*;

wire_enum! {
    /// A user's participation state (`enum { invite, join, ban, knock } ParticipationState`).
    pub enum ParticipationState: u8, "ParticipationState" {
        /// Invited: on the participant list, clients not yet in the group.
        Invite = 0,
        /// Joined: a participant whose clients may be in the group.
        Join = 1,
        /// Banned: stays on the list and may not join.
        Ban = 2,
        /// Knocking: asking to be invited.
        Knock = 3,
    }
}

wire_enum! {
    /// The change an `m.room.user` event makes (`ParticipationStateChange`).
    pub enum ParticipationStateChange: u8, "ParticipationStateChange" {
        /// Invite the target.
        Invite = 0,
        /// Join (sender is target) or add (sender is not the target).
        Join = 1,
        /// Leave, decline, kick or unban: removes the target from the list.
        Leave = 2,
        /// Ban the target (preemptively too).
        Ban = 3,
        /// Knock: ask to be invited.
        Knock = 4,
        /// Change the target's role (this project's extension; the role is in
        /// `UserEvent::role`).
        SetRole = 5,
    }
}

wire_enum! {
    /// Who may join a room without being added or invited first.
    pub enum JoinRule: u8, "JoinRule" {
        /// Only users who were added or invited may join; knocks are refused.
        MembersOnly = 0,
        /// Like members-only, but users may knock to ask for an invite.
        Knock = 1,
        /// Anyone who is not banned may join.
        Public = 2,
    }
}

wire_enum! {
    /// Room operations that a policy grants to roles.
    pub enum PolicyAction: u8, "PolicyAction" {
        /// Invite a user.
        Invite = 0,
        /// Add a user directly in the join state.
        Add = 1,
        /// Remove another joined user.
        Kick = 2,
        /// Ban a user.
        Ban = 3,
        /// Lift a ban.
        Unban = 4,
        /// Change another participant's role.
        ChangeRole = 5,
    }
}

/// A role name (`opaque role` of `ParticipantData`): 1 to [`MAX_ROLE_LEN`] characters of
/// `a-z`, `0-9`, `.`, `_` and `-`, for example `owner`, `admin`, `member`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Role(String);

impl Role {
    /// The role name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Role({:?})", self.0)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Role {
    type Err = CodecError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(CodecError::Empty("role"));
        }
        if s.len() > MAX_ROLE_LEN {
            return Err(CodecError::TooLong {
                len: s.len(),
                max: MAX_ROLE_LEN,
            });
        }
        if !s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        }) {
            return Err(CodecError::Malformed(format!("invalid role name {s:?}")));
        }
        Ok(Role(s.to_owned()))
    }
}

impl tls_codec::Size for Role {
    fn tls_serialized_len(&self) -> usize {
        crate::bounded::vl_len(self.0.len())
    }
}

impl tls_codec::Serialize for Role {
    fn tls_serialize<W: std::io::Write>(&self, writer: &mut W) -> Result<usize, tls_codec::Error> {
        crate::bounded::write_vl_bytes(self.0.as_bytes(), writer)
    }
}

impl tls_codec::Deserialize for Role {
    fn tls_deserialize<R: std::io::Read>(bytes: &mut R) -> Result<Self, tls_codec::Error> {
        let raw = crate::bounded::read_vl_bytes(bytes, MAX_ROLE_LEN)?;
        let s = std::str::from_utf8(&raw).map_err(|_| park(CodecError::InvalidUtf8))?;
        s.parse().map_err(park)
    }
}

/// The follower server's certificate a `UserEvent` may carry: a TLS-encoded MLS
/// `ExternalSender` (signature key and credential) that the commit adds to the group's
/// `external_senders` extension.
pub type FollowerCertificate = Opaque<MAX_CERTIFICATE_LEN>;

/// A human-readable reason (UTF-8, at most [`MAX_REASON_LEN`] bytes; empty means none).
pub type Reason = Text<MAX_REASON_LEN>;

/// The `m.room.user` event: the payload of the UserEvent MLS custom proposal.
///
/// ```text
/// struct {
///   opaque targetUserId<V>;
///   ParticipationStateChange state;
///   opaque reason<V>;
///   optional<Certificate> follower_server_certificate;
///   optional<opaque role<V>>;            // this project's extension
/// } UserEvent;
/// ```
#[derive(Debug, Clone, PartialEq, Eq, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct UserEvent {
    /// The user whose participation changes.
    pub target: UserId,
    /// The change.
    pub change: ParticipationStateChange,
    /// Optional reason (empty when none).
    pub reason: Reason,
    /// The follower server's certificate, when this adds its first user.
    pub follower_server_certificate: Option<FollowerCertificate>,
    /// The role given with an invite or join, or the new role of a `set_role` change.
    pub role: Option<Role>,
}

/// One participant of a room (`ParticipantData`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct ParticipantData {
    /// The participant.
    pub user_id: UserId,
    /// The participant's role.
    pub role: Role,
    /// The participant's state.
    pub state: ParticipationState,
}

/// Which roles may perform an action.
#[derive(Debug, Clone, PartialEq, Eq, Hash, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct Permission {
    /// The action.
    pub action: PolicyAction,
    /// The roles allowed to perform it.
    pub roles: BoundedVec<Role, MAX_ROLES_PER_PERMISSION>,
}

/// A room's policy, fixed at creation (the signaling draft: "once the policy is set, it
/// cannot have rules added or removed").
#[derive(Debug, Clone, PartialEq, Eq, Hash, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct RoomPolicy {
    /// Names the policy set this room follows (for example `mimi.roles.v1`). A server that
    /// does not know it must refuse to participate.
    pub policy_id: Text<MAX_NAME_LEN>,
    /// Who may join or knock.
    pub join_rule: JoinRule,
    /// Which roles may do what.
    pub permissions: BoundedVec<Permission, MAX_PERMISSIONS>,
}

/// The room's end-to-end security configuration.
#[derive(Debug, Clone, PartialEq, Eq, Hash, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct SecurityConfig {
    /// The security protocol (`mls10` for MLS 1.0, RFC 9420).
    pub protocol: Text<MAX_NAME_LEN>,
    /// The MLS cipher suite of the room's group.
    pub cipher_suite: u16,
}

/// The room state mirrored in the MLS GroupContext extension.
///
/// ```text
/// struct {
///   opaque room_id<V>;
///   ParticipantData participants<V>;
///   RoomPolicy policy;          // this project's extension
///   SecurityConfig security;    // this project's extension
/// } RoomState;
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct RoomState {
    /// The room.
    pub room_id: RoomId,
    /// The participant list.
    pub participants: BoundedVec<ParticipantData, MAX_PARTICIPANTS>,
    /// The policy.
    pub policy: RoomPolicy,
    /// The security configuration.
    pub security: SecurityConfig,
}

/// The `m.room.info` event: the current room state, used to bootstrap servers (for example
/// in a check-invite request).
#[derive(Debug, Clone, PartialEq, Eq, Hash, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct InfoEvent {
    /// The room state.
    pub room_state: RoomState,
}
