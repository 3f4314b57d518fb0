//! The delivery service's refusals. Each names the rule that failed (`DS-…` IDs, listed in
//! `docs/protocol-coverage.md`) and maps to a wire [`ErrorCode`].

use mimi_codec::{ErrorCode, EventError};

/// The delivery-service rules, by ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DsRule {
    /// DS-MLS-1: an MLS message must parse and pass MLS validation against the group
    /// (signature, membership tag, structure) — RFC 9420 as implemented by openmls.
    Mls1,
    /// DS-MLS-2: an MLS message must be for this room's group.
    Mls2,
    /// DS-MLS-3: a handshake message must be for the current epoch.
    Mls3,
    /// DS-MLS-4: the message must have the wire format and content type the event expects
    /// (PublicMessage proposals for `ds.proposal` and `m.room.user`, a PublicMessage commit
    /// for `ds.commit`, a PrivateMessage application message for `ds.send_message`).
    Mls4,
    /// DS-SND-1: the MIMI sender of a member's message must be the user of the client that
    /// signed it; an external sender's message must come from that external sender's server.
    Snd1,
    /// DS-Q-1: a commit must include every proposal the hub accepted in the current epoch
    /// (main spec, "Cryptographically anchoring room state").
    Q1,
    /// DS-ADD-1: clients may only be added for users on the participant list in the join
    /// state (main spec, `ds.proposal` and `ds.commit` validation rules).
    Add1,
    /// DS-RM-1: after a leave, kick or ban, the next commit must remove all of the user's
    /// clients (main spec, "Leaves/Kicks").
    Rm1,
    /// DS-RM-2: a client may be removed by its own user, or by anyone once its user is no
    /// longer joined (the hub and the user's own server included); a joined user's clients
    /// cannot be removed by others without a kick first.
    Rm2,
    /// DS-RS-1: the RoomState GroupContext extension after a commit must equal the room state
    /// the hub holds.
    Rs1,
    /// DS-XS-1: `external_senders` must contain the hub, and follower servers only while
    /// they have a joined user; a follower whose last user left must be removed.
    Xs1,
    /// DS-GI-1: the GroupInfo in a commit bundle must be for the group and epoch the commit
    /// creates and be signed by the committer.
    Gi1,
    /// DS-GI-2: `ds.fetch_group_info` is answered for users in the join or invite state,
    /// users not on the list of a public room, and the room's follower servers; knockers
    /// (who have no access to the cryptographic state), banned users and anyone else are
    /// refused.
    Gi2,
    /// DS-W-1: Welcomes must be for clients the commit adds.
    W1,
    /// DS-KP-1: a published key package must be valid MLS, belong to the publishing client,
    /// and advertise the MIMI capabilities.
    Kp1,
    /// DS-CR-1: a room's group must be created with the RoomState extension, the hub as
    /// external sender and the MIMI required capabilities.
    Cr1,
    /// DS-CR-2: `ds.create_group` is the room's second event (sequence 1), from its creator,
    /// and appears nowhere else.
    Cr2,
    /// DS-SIG: a signaling rule refused the `m.room.user` event the message carries.
    Signaling,
}

impl DsRule {
    /// The rule's ID as written in docs and error details.
    pub fn id(self) -> &'static str {
        match self {
            DsRule::Mls1 => "DS-MLS-1",
            DsRule::Mls2 => "DS-MLS-2",
            DsRule::Mls3 => "DS-MLS-3",
            DsRule::Mls4 => "DS-MLS-4",
            DsRule::Snd1 => "DS-SND-1",
            DsRule::Q1 => "DS-Q-1",
            DsRule::Add1 => "DS-ADD-1",
            DsRule::Rm1 => "DS-RM-1",
            DsRule::Rm2 => "DS-RM-2",
            DsRule::Rs1 => "DS-RS-1",
            DsRule::Xs1 => "DS-XS-1",
            DsRule::Gi1 => "DS-GI-1",
            DsRule::Gi2 => "DS-GI-2",
            DsRule::W1 => "DS-W-1",
            DsRule::Kp1 => "DS-KP-1",
            DsRule::Cr1 => "DS-CR-1",
            DsRule::Cr2 => "DS-CR-2",
            DsRule::Signaling => "DS-SIG",
        }
    }

    /// The wire error code for a refusal under this rule.
    pub fn code(self) -> ErrorCode {
        match self {
            DsRule::Mls1 | DsRule::Mls2 | DsRule::Mls4 | DsRule::Gi1 | DsRule::W1 => {
                ErrorCode::InvalidMlsMessage
            }
            DsRule::Kp1 | DsRule::Cr1 | DsRule::Cr2 => ErrorCode::InvalidMlsMessage,
            DsRule::Mls3 => ErrorCode::StaleEpoch,
            DsRule::Snd1 => ErrorCode::SenderMismatch,
            DsRule::Q1 => ErrorCode::MissingProposals,
            DsRule::Add1 => ErrorCode::ClientNotAllowed,
            DsRule::Rm1 => ErrorCode::ClientsNotRemoved,
            DsRule::Rm2 | DsRule::Gi2 => ErrorCode::ForbiddenByPolicy,
            DsRule::Rs1 | DsRule::Xs1 => ErrorCode::RoomStateMismatch,
            DsRule::Signaling => ErrorCode::InvalidParticipationChange,
        }
    }
}

impl std::fmt::Display for DsRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

/// Why the delivery service refused a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DsError {
    /// A rule refused it.
    #[error("{rule}: {detail}")]
    Refused {
        /// The rule that failed.
        rule: DsRule,
        /// What exactly was wrong.
        detail: String,
    },
    /// A signaling rule refused the `m.room.user` change carried by the message.
    #[error("{0}")]
    Signaling(mimi_signaling::Rejection),
    /// The fully-formed event could not be encoded (over the message size limit).
    #[error("event too large: {0}")]
    TooLarge(String),
    /// The stored group state could not be read or written (a bug or corruption, not the
    /// peer's fault).
    #[error("group state: {0}")]
    State(String),
    /// A [`crate::CheckedEvent`] given to [`crate::HubRoom::accept`] was checked against
    /// another state of the room (an event was accepted since, or the room was reloaded).
    /// The caller checks it again; it never reaches a peer but as an internal error.
    #[error("the event was checked against a room state that has changed since")]
    Stale,
}

impl DsError {
    pub(crate) fn refused(rule: DsRule, detail: impl Into<String>) -> Self {
        DsError::Refused {
            rule,
            detail: detail.into(),
        }
    }

    /// The rule that failed, if a rule refused it.
    pub fn rule(&self) -> Option<DsRule> {
        match self {
            DsError::Refused { rule, .. } => Some(*rule),
            DsError::Signaling(_) => Some(DsRule::Signaling),
            DsError::State(_) | DsError::TooLarge(_) | DsError::Stale => None,
        }
    }

    /// The wire error for this refusal.
    pub fn to_event_error(&self) -> EventError {
        match self {
            DsError::Refused { rule, .. } => EventError::new(rule.code(), self.to_string()),
            DsError::Signaling(r) => r.to_event_error(),
            DsError::TooLarge(_) => EventError::new(ErrorCode::TooLarge, self.to_string()),
            DsError::State(_) | DsError::Stale => {
                EventError::new(ErrorCode::Internal, self.to_string())
            }
        }
    }
}
