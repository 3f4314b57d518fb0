//! Check-invite (main spec, "Invites" step 4), both sides: as a room's hub, asking the
//! invitee's server whether it takes part before an invite is accepted ([`CheckInvite::ask`],
//! one attempt bounded by the `check_invite_timeout` setting; no answer in time is a
//! refusal), with the room state after the whole event (`mimi_ds::CheckedEvent::room_state_after`); and as the
//! invitee's server, answering such a question ([`CheckInvite::answer`]). The room engine
//! calls `ask` without holding the room's lock. It owns no state.

use std::sync::Arc;

use mimi_codec::mls_ids::DEFAULT_CIPHER_SUITE;
use mimi_codec::{
    CheckInviteRequest, ErrorCode, Event, EventError, InfoEvent, MessageBody, MimiMessage,
    ParticipationState, RoomId, RoomState, Sender, UserId,
};
use mimi_signaling::Room;
use mimi_transport::{CheckInviteOutcome, CheckInviteReply};

use crate::context::Context;

fn err(code: ErrorCode, detail: impl Into<String>) -> EventError {
    EventError::new(code, detail)
}

/// The check-invite part (see the module documentation).
#[derive(Debug)]
pub struct CheckInvite {
    ctx: Arc<Context>,
}

impl CheckInvite {
    /// Check-invite over the shared context.
    pub fn new(ctx: Arc<Context>) -> CheckInvite {
        CheckInvite { ctx }
    }

    /// Ask the invitee's server whether it takes part (`POST /check-invite`, or this
    /// server's own answer for its own users). A refusal, an error and no answer within the
    /// `check_invite_timeout` setting are all `invite_rejected`.
    pub async fn ask(
        &self,
        room_id: &RoomId,
        sender: &Sender,
        event: &Event,
        invitee: &UserId,
        room_after: RoomState,
    ) -> Result<(), EventError> {
        let request = CheckInviteRequest {
            invite: MimiMessage::new(
                room_id.clone(),
                sender.clone(),
                MessageBody::Event(event.clone()),
            ),
            room_info: InfoEvent {
                room_state: room_after,
            },
        };
        let server = invitee.server();
        if server == self.ctx.server_name {
            return match self.answer(&request).await {
                CheckInviteReply::Accepted => Ok(()),
                CheckInviteReply::Refused(e) | CheckInviteReply::Unavailable(e) => Err(e),
            };
        }
        let timeout = self.ctx.settings.check_invite_timeout;
        let asked =
            tokio::time::timeout(timeout, self.ctx.peers.check_invite(&server, &request)).await;
        match asked {
            Ok(Ok(CheckInviteOutcome::Accepted)) => Ok(()),
            Ok(Ok(CheckInviteOutcome::Refused(e))) => Err(err(
                ErrorCode::InviteRejected,
                format!(
                    "{server} refused the invite{}",
                    e.map(|e| format!(": {}", e.detail)).unwrap_or_default()
                ),
            )),
            Ok(Err(e)) => Err(err(
                ErrorCode::InviteRejected,
                format!("{server} could not be asked about the invite: {e}"),
            )),
            Err(_) => Err(err(
                ErrorCode::InviteRejected,
                format!("{server} did not answer the check-invite within {timeout:?}"),
            )),
        }
    }

    /// This server's answer to a check-invite: it takes part in rooms whose policy and
    /// security configuration it understands, for invitees it has.
    pub async fn answer(&self, request: &CheckInviteRequest) -> CheckInviteReply {
        let state = &request.room_info.room_state;
        if let Err(e) = Room::from_room_state(state) {
            return CheckInviteReply::Refused(err(
                ErrorCode::ForbiddenByPolicy,
                format!("room configuration not understood: {e}"),
            ));
        }
        if state.security.cipher_suite != DEFAULT_CIPHER_SUITE {
            return CheckInviteReply::Refused(err(
                ErrorCode::ForbiddenByPolicy,
                format!(
                    "cipher suite {:#06x} is not supported",
                    state.security.cipher_suite
                ),
            ));
        }
        if state.room_id != request.invite.room_id {
            return CheckInviteReply::Refused(err(ErrorCode::Malformed, "room IDs differ"));
        }
        let name = &self.ctx.server_name;
        let invitees: Vec<UserId> = state
            .participants
            .iter()
            .filter(|p| p.state == ParticipationState::Invite && p.user_id.server() == *name)
            .map(|p| p.user_id.clone())
            .collect();
        if invitees.is_empty() {
            return CheckInviteReply::Refused(err(
                ErrorCode::UnknownUser,
                "the room invites none of this server's users",
            ));
        }
        for user in invitees {
            let u = user.clone();
            match self.ctx.blocking(move |s| s.user(&u)).await {
                Ok(Some(_)) => {}
                Ok(None) => {
                    return CheckInviteReply::Refused(err(
                        ErrorCode::UnknownUser,
                        format!("{user} does not exist here"),
                    ));
                }
                Err(e) => {
                    return CheckInviteReply::Unavailable(EventError::new(
                        ErrorCode::Internal,
                        e.to_string(),
                    ));
                }
            }
        }
        CheckInviteReply::Accepted
    }
}
