//! The signaling rules, each with a stable ID (`SIG-…`) used in code, errors, docs and tests,
//! and [`Rejection`], the typed refusal that names the rule that failed.

use std::fmt;

use mimi_codec::{ErrorCode, EventError};

macro_rules! rules {
    ($( $(#[$doc:meta])* $variant:ident = $id:literal, $policy:literal, $text:literal; )+) => {
        /// A signaling rule. `Display` gives its ID (`SIG-ADD-1`); [`RuleId::description`]
        /// says what it requires.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum RuleId {
            $( $(#[$doc])* $variant, )+
        }

        impl RuleId {
            /// Every rule, in table order.
            pub const ALL: &'static [RuleId] = &[$(RuleId::$variant),+];

            /// The rule's ID, for example `SIG-ADD-1`.
            pub fn id(self) -> &'static str {
                match self { $( RuleId::$variant => $id, )+ }
            }

            /// What the rule requires.
            pub fn description(self) -> &'static str {
                match self { $( RuleId::$variant => $text, )+ }
            }

            /// Whether the rule comes from the room's authorization policy (roles, ranks,
            /// join rule) rather than from the participation state machine.
            pub fn is_policy(self) -> bool {
                match self { $( RuleId::$variant => $policy, )+ }
            }
        }
    };
}

rules! {
    /// Participation changes are sent by a user, never by a server.
    Sender1 = "SIG-SENDER-1", false, "a participation change must be sent by a user, not a server";
    /// A role rides only on an invite, an add or a role change, and a role change needs one.
    Event1 = "SIG-EVENT-1", false, "a role may be given only with an invite, an add or a role change, and a role change must give one";
    /// A role must be one the room's policy defines.
    Event2 = "SIG-EVENT-2", false, "the role is not defined by the room's policy";
    /// A follower certificate rides only on a change that brings its server's first joined user.
    Cert1 = "SIG-CERT-1", false, "a follower server certificate may only accompany a join or add that makes the target's server participating";
    /// Add: the target must not be banned or joined.
    Add1 = "SIG-ADD-1", false, "the target of an add must not be banned or joined";
    /// Add: the sender must be joined.
    Add2 = "SIG-ADD-2", false, "the sender of an add must be joined";
    /// Add: the policy must let the sender's role add.
    Add3 = "SIG-ADD-3", true, "the room's policy does not let the sender's role add users";
    /// Invite: the target must not be banned or joined.
    Inv1 = "SIG-INV-1", false, "the target of an invite must not be banned or joined";
    /// Invite: the sender must be joined.
    Inv2 = "SIG-INV-2", false, "the sender of an invite must be joined";
    /// Invite: the policy must let the sender's role invite.
    Inv3 = "SIG-INV-3", true, "the room's policy does not let the sender's role invite users";
    /// Join: the joiner must not be banned.
    Join1 = "SIG-JOIN-1", false, "a banned user cannot join";
    /// Join: sender and joiner are the same (a join for someone else is an add).
    Join2 = "SIG-JOIN-2", false, "the sender and the joining user must be the same";
    /// Join: the joiner must not already be joined.
    Join3 = "SIG-JOIN-3", false, "the user is already joined";
    /// Join: only an invited user may join, unless the room is public.
    Join4 = "SIG-JOIN-4", true, "the room's join rule requires an invite before joining";
    /// A user whose clients must still be removed cannot join or be added until a commit removes them.
    Pend1 = "SIG-PEND-1", false, "the user's clients have not yet been removed after their departure";
    /// Leave/decline: the user must be invited, joined or knocking.
    Leave1 = "SIG-LEAVE-1", false, "a user leaving must be invited, joined or knocking";
    /// The commit after a leave, kick or ban removes all of the departed users' clients.
    Leave2 = "SIG-LEAVE-2", false, "the next commit must remove all clients of every user who left, was kicked or was banned";
    /// Kick: the target must be joined.
    Kick1 = "SIG-KICK-1", false, "the target of a kick must be joined";
    /// Kick: the sender must be joined.
    Kick2 = "SIG-KICK-2", false, "the sender of a kick must be joined";
    /// Kick: the policy must let the sender's role kick.
    Kick3 = "SIG-KICK-3", true, "the room's policy does not let the sender's role kick users";
    /// Ban: the sender must be joined.
    Ban1 = "SIG-BAN-1", false, "the sender of a ban must be joined";
    /// Ban: the target must not already be banned.
    Ban2 = "SIG-BAN-2", false, "the target is already banned";
    /// Ban: the policy must let the sender's role ban.
    Ban3 = "SIG-BAN-3", true, "the room's policy does not let the sender's role ban users";
    /// Ban: a user cannot ban themselves.
    Ban4 = "SIG-BAN-4", false, "a user cannot ban themselves";
    /// Unban: the sender must be joined.
    Unban1 = "SIG-UNBAN-1", false, "the sender of an unban must be joined";
    /// Unban: the policy must let the sender's role unban.
    Unban2 = "SIG-UNBAN-2", true, "the room's policy does not let the sender's role unban users";
    /// Knock: the sender knocks for themselves.
    Knock1 = "SIG-KNOCK-1", false, "a knock must be sent by the knocking user";
    /// Knock: the knocker must not be on the participant list.
    Knock2 = "SIG-KNOCK-2", false, "a knocking user must not already be on the participant list";
    /// Knock: the room's join rule must allow knocking.
    Knock3 = "SIG-KNOCK-3", true, "the room's join rule does not allow knocking";
    /// Role change: the target must be invited or joined.
    Role1 = "SIG-ROLE-1", false, "the target of a role change must be invited or joined";
    /// Role change: the sender must be joined.
    Role2 = "SIG-ROLE-2", false, "the sender of a role change must be joined";
    /// Role change: the policy must let the sender's role change others' roles.
    Role3 = "SIG-ROLE-3", true, "the room's policy does not let the sender's role change roles";
    /// Role change: the new role must differ from the current one.
    Role4 = "SIG-ROLE-4", false, "the role change does not change the role";
    /// Acting on another participant needs a higher rank (owners may act on owners).
    Rank1 = "SIG-RANK-1", true, "the sender's role does not outrank the target's";
    /// A role given must not outrank the sender's own.
    Rank2 = "SIG-RANK-2", true, "the role given outranks the sender's own";
    /// While anyone is joined, a joined owner remains.
    Owner1 = "SIG-OWNER-1", false, "the change would leave the joined users without a joined owner";
    /// The participant list holds at most `MAX_PARTICIPANTS` users.
    Limit1 = "SIG-LIMIT-1", false, "the participant list is full";
    /// `m.room.user.unsigned` is a join, knock or leave by the sender about themselves.
    Unsigned1 = "SIG-UNSIGNED-1", false, "an unsigned m.room.user must be a join, knock or leave by the sender about themselves";
    /// Creation: the creator is a user of the server named in the room ID.
    Create1 = "SIG-CREATE-1", false, "the create event must be sent by a user of the server named in the room ID";
    /// Creation: the initial participant list is the creator alone, joined, as owner.
    Create2 = "SIG-CREATE-2", false, "the initial participant list must be the creator alone, joined, with the owner role";
    /// Creation: the room state is valid and its policy and security are understood.
    Create3 = "SIG-CREATE-3", false, "the initial room state is invalid or uses an unknown policy or security protocol";
    /// Creation: the create event has no previous event and no auth events.
    Create4 = "SIG-CREATE-4", false, "the create event must have sequence 0, no previous hash and no auth events";
    /// History: the create event (`m.room.info`) is first, and only first.
    Hist1 = "SIG-HIST-1", false, "m.room.info is the create event: first in the history and nowhere else";
    /// History: only fanned-out event types enter the history.
    Hist2 = "SIG-HIST-2", false, "this event type is not fanned out and has no place in the room history";
    /// History: the participation changes match the event.
    Hist3 = "SIG-HIST-3", false, "the participation changes do not match the event";
    /// History: at most `MAX_CHANGES_PER_EVENT` changes per event.
    Hist4 = "SIG-HIST-4", false, "the event carries too many participation changes";
    /// Follower: the sequence number is the next one.
    Seq1 = "SIG-SEQ-1", false, "the sequence number is not the next one in the room's history";
    /// Follower: `prev_hash` is the hash of the previous fully-formed event.
    Hash1 = "SIG-HASH-1", false, "prev_hash is not the hash of the previous event";
    /// Follower: `auth_events` are the ones the rules select.
    Auth1 = "SIG-AUTH-1", false, "auth_events are not the events that authorize this one";
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// A refused event: the rule that failed. The room is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("{rule}: {}", rule.description())]
pub struct Rejection {
    /// The rule that failed.
    pub rule: RuleId,
}

impl Rejection {
    /// A rejection by `rule`.
    pub fn new(rule: RuleId) -> Self {
        Rejection { rule }
    }

    /// The wire error code: `forbidden_by_policy` for policy rules, otherwise
    /// `invalid_participation_change`.
    pub fn error_code(&self) -> ErrorCode {
        if self.rule.is_policy() {
            ErrorCode::ForbiddenByPolicy
        } else {
            ErrorCode::InvalidParticipationChange
        }
    }

    /// The wire `EventError`; its detail starts with the rule ID.
    pub fn to_event_error(&self) -> EventError {
        EventError::new(self.error_code(), self.to_string())
    }
}

impl From<RuleId> for Rejection {
    fn from(rule: RuleId) -> Self {
        Rejection { rule }
    }
}
