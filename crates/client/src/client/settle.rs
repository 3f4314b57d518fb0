//! What the room needs before this client's step, done by the client itself where the
//! protocol allows (issue 16, item 3; `docs/client.md`, "What `mimi` does by itself"):
//!
//! - Before a message: openmls refuses to encrypt while the group holds proposals (a
//!   leave and self-remove, an invite, the hub's removals); the client commits them first,
//!   as `mimi commit ROOM` would. If that commit fails, the error says which command a
//!   member must run.
//! - Before an external join: an external commit cannot include proposals, so while the
//!   hub holds some (typically the invite in a knock room, which a member has not committed
//!   yet), the joiner waits for a member's commit, up to [`JOIN_COMMIT_WAIT`], following
//!   its inbox with long polls; if none comes, the error names the command to run.

use std::time::{Duration, Instant};

use mimi_codec::{Event, EventResponse, GroupInfoRequest, GroupInfoResponse, RoomId};

use super::Client;
use crate::error::{ClientError, ErrorKind};
use crate::inbox::group_epoch;

/// How long `join` waits for a member to commit the proposals the hub holds.
pub const JOIN_COMMIT_WAIT: Duration = Duration::from_secs(15);
/// How long one long poll of the inbox waits (below the API's 25 s cap).
pub const LISTEN_WAIT: Duration = Duration::from_secs(20);

impl Client {
    /// Commit the proposals the group holds, if any, before an application message.
    ///
    /// Rule CL-COMMIT-1 (docs/protocol-coverage.md).
    pub(super) async fn commit_pending(
        &mut self,
        room: &RoomId,
        epoch: u64,
    ) -> Result<(), ClientError> {
        let count = self.mls.pending_proposal_count(room)?;
        if count == 0 {
            return Ok(());
        }
        match self
            .commit_changes(room, Vec::new(), Vec::new(), epoch)
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::Network | ErrorKind::LocalState | ErrorKind::Unauthorized
                ) =>
            {
                Err(e)
            }
            Err(e) => Err(ClientError::CommitNeeded {
                room: room.clone(),
                count,
                source: Box::new(e),
            }),
        }
    }

    /// The hub's group info once it holds no pending proposals, waiting for a member's
    /// commit (up to [`JOIN_COMMIT_WAIT`]); `None` when this client was added to the group
    /// meanwhile (a Welcome in its inbox).
    ///
    /// Rule CL-COMMIT-1 (docs/protocol-coverage.md).
    pub(super) async fn wait_for_pending_commit(
        &mut self,
        room: &RoomId,
        mut info: GroupInfoResponse,
    ) -> Result<Option<GroupInfoResponse>, ClientError> {
        let start = Instant::now();
        while !info.pending_proposals.is_empty() {
            let left = JOIN_COMMIT_WAIT.saturating_sub(start.elapsed());
            if left.is_zero() {
                return Err(ClientError::PendingProposals(info.pending_proposals.len()));
            }
            // Wait for anything new in the inbox (a commit fanned out to this user), then
            // process it and ask the hub again.
            self.api
                .inbox_wait(self.config.cursor, 1, left.min(LISTEN_WAIT))
                .await?;
            self.sync().await?;
            if group_epoch(&mut self.mls, room)?.is_some() {
                return Ok(None);
            }
            info = match self
                .api
                .submit(room, &Event::DsFetchGroupInfo(GroupInfoRequest))
                .await?
            {
                EventResponse::GroupInfo(info) => info,
                _ => {
                    return Err(ClientError::UnexpectedResponse(
                        "ds.fetch_group_info answered without group info",
                    ));
                }
            };
        }
        Ok(Some(info))
    }
}
