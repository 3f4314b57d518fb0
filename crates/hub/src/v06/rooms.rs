//! -06 rooms at this provider: as the hub of a room (its URI names this provider) it keeps
//! the room's `PublicGroup` ([`mimi_ds::v06::Room06Group`], durable in the -06 records),
//! answers `update` (a follower provider's commit, checked against the room policy) and
//! `submitMessage`, and fans each accepted message out with `notify`; as a follower it
//! takes `notify` from the room's hub (a byte-identical repeat is processed once) and keeps
//! what it received for its clients.
//!
//! Records (`Storage::v06_record`): `room06/<uri>` the group state; `log06/<uri>` every
//! `FanoutMessage` of the room this provider holds (the hub's own, or received), a
//! `NotifyBody` encoding; `seen06/<sha256 of a notify body>` a notify already processed.
//! Each provider handles one -06 room operation at a time ([`Rooms06`]), so the hub's
//! sequence of a room is the order in which it accepted its messages.

use std::time::{SystemTime, UNIX_EPOCH};

use hyper::StatusCode;
use mimi_codec::v06::labels::{GROUP_INFO_REQUEST_TBS, GROUP_INFO_RESPONSE_TBS, sign_content};
use mimi_codec::v06::{
    FanoutExtra, FanoutMessage, Frank, GroupInfoCode, GroupInfoOption, GroupInfoRequest,
    GroupInfoResponse, GroupInfoResponseTbs, GroupInfoSuccess, IdentifierUri, MimiUriKind,
    MlsMessage, NotifyBody, Protocol, RatchetTreeOption, SubmitMessageRequest,
    SubmitMessageResponse, SubmitOutcome, UpdateOutcome, UpdateRequest, UpdateResponse, Welcome,
};
use mimi_codec::{BoundedVec, ClientId, ServerName, Text, Wire};
use mimi_ds::v06::{Refused06, Room06Group};
use mimi_transport::v06::{Endpoint06, Reply06};
use sha2::{Digest, Sha256};

use super::state::KeyPackageSources;
use super::{encoded, refuse, unavailable};
use crate::error::ApiError;
use crate::provider::Provider;
use crate::storage::StorageError;

const ROOM: &[u8] = b"room06/";
const LOG: &[u8] = b"log06/";
const LOG_COUNT: &[u8] = b"log06n/";
/// Most -06 log entries read in one storage call.
pub const LOG_PAGE: usize = 1024;

/// The keys of a room's -06 log entries: its URI then a NUL (no URI holds one), so one
/// room's entries are never a prefix match of another's.
fn log_prefix(room: &IdentifierUri) -> Vec<u8> {
    [LOG, room.as_str().as_bytes(), b"\0"].concat()
}
const SEEN: &[u8] = b"seen06/";

/// The lock of this provider's -06 room operations, and its `notify` queues.
#[derive(Debug, Default)]
pub struct Rooms06 {
    lock: tokio::sync::Mutex<()>,
    backlog: NotifyBacklog,
}

/// How long the hub waits for a peer's answer to a `notify` before it answers its own caller
/// and leaves the delivery to the destination's queue.
pub const NOTIFY_INLINE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);
/// The first pause of a destination's queue after a failed `notify`; it doubles up to
/// [`NOTIFY_RETRY_MAX`].
pub const NOTIFY_RETRY_FIRST: std::time::Duration = std::time::Duration::from_millis(500);
/// The longest pause between two attempts of a destination's queue.
pub const NOTIFY_RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(60);
/// Most `notify` bodies waiting for one destination; past it the oldest is dropped (and
/// logged): the queue is in memory.
pub const MAX_NOTIFY_BACKLOG: usize = 10_000;

/// `notify` bodies waiting for a destination that did not answer, in the hub's order.
type Pending = std::collections::VecDeque<(String, Vec<u8>)>;

/// The destinations with a backlog: one delivery task each while it is not empty.
#[derive(Debug, Default, Clone)]
struct NotifyBacklog {
    queues: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<ServerName, Pending>>>,
    /// Woken whenever a destination's backlog ends.
    drained: std::sync::Arc<tokio::sync::Notify>,
}

impl NotifyBacklog {
    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<ServerName, Pending>> {
        self.queues
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queue `job` behind `dest`'s backlog when it has one. When it has none: with `start`,
    /// begin the backlog with `job` (the caller must start its delivery task); without,
    /// hand `job` back (the caller may send it at once).
    fn enqueue(&self, dest: &ServerName, job: (String, Vec<u8>), start: bool) -> Enqueued {
        let mut map = self.lock();
        if let Some(queue) = map.get_mut(dest) {
            push_bounded(dest, queue, job);
            Enqueued::Behind
        } else if start {
            map.insert(dest.clone(), Pending::from([job]));
            Enqueued::Started
        } else {
            Enqueued::NoBacklog(job)
        }
    }

    fn front(&self, dest: &ServerName) -> Option<(String, Vec<u8>)> {
        self.lock().get(dest).and_then(|q| q.front().cloned())
    }

    /// Drop the delivered (or finally refused) front; ends the backlog when it was the last.
    fn pop(&self, dest: &ServerName) {
        let mut map = self.lock();
        let empty = map.get_mut(dest).is_none_or(|q| {
            q.pop_front();
            q.is_empty()
        });
        if empty {
            map.remove(dest);
            drop(map);
            self.drained.notify_waiters();
        }
    }

    /// Wait until nothing waits for `dest`.
    async fn drained(&self, dest: &ServerName) {
        loop {
            let woken = self.drained.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if self.len(dest) == 0 {
                return;
            }
            woken.await;
        }
    }

    /// How many `notify` bodies wait for `dest`.
    fn len(&self, dest: &ServerName) -> usize {
        self.lock().get(dest).map_or(0, Pending::len)
    }
}

/// What [`NotifyBacklog::enqueue`] did with a job.
enum Enqueued {
    /// Queued behind the destination's backlog (its task delivers it).
    Behind,
    /// The destination's backlog begins with it: the caller starts the delivery task.
    Started,
    /// Not queued (the destination has no backlog): the job, back.
    NoBacklog((String, Vec<u8>)),
}

fn push_bounded(dest: &ServerName, queue: &mut Pending, job: (String, Vec<u8>)) {
    if queue.len() >= MAX_NOTIFY_BACKLOG {
        queue.pop_front();
        tracing::error!(%dest, "-06 notify backlog full: the oldest waiting notify was dropped");
    }
    queue.push_back(job);
}

/// Deliver `dest`'s backlog in order: each body until the peer answers 2xx (delivered) or
/// 4xx (a final refusal, logged), pausing after a failure; ends with the backlog.
///
/// Rule V06-NOT-3 (docs/protocol-coverage.md).
async fn drain_backlog(
    backlog: NotifyBacklog,
    peers: std::sync::Arc<dyn crate::peers::Peers>,
    own: ServerName,
    dest: ServerName,
) {
    let mut pause = NOTIFY_RETRY_FIRST;
    while let Some((path, body)) = backlog.front(&dest) {
        match peers.post06(&dest, &own, path, body).await {
            Ok((200..=299, _)) => {
                pause = NOTIFY_RETRY_FIRST;
                backlog.pop(&dest);
            }
            Ok((status @ 400..=499, answer)) => {
                tracing::warn!(%dest, status, answer = %String::from_utf8_lossy(&answer), "-06 notify refused");
                backlog.pop(&dest);
            }
            failed => {
                let why = match failed {
                    Ok((status, _)) => format!("status {status}"),
                    Err(e) => e.to_string(),
                };
                tracing::info!(%dest, waiting = backlog.len(&dest), error = %why, retry_in = ?pause, "-06 notify not delivered");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(NOTIFY_RETRY_MAX);
            }
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn key(prefix: &[u8], room: &IdentifierUri) -> Vec<u8> {
    [prefix, room.as_str().as_bytes()].concat()
}

/// The room a -06 path's `{roomId}` names, or the `400` for one that is not a URI.
fn room_of(variable: &str) -> Result<IdentifierUri, Reply06> {
    variable.parse::<IdentifierUri>().map_err(|_| {
        refuse(
            StatusCode::BAD_REQUEST,
            "malformed",
            "the roomId is not a URI",
        )
    })
}

fn update_answer(outcome: UpdateOutcome, description: &str) -> Reply06 {
    let mut text = description.to_owned();
    text.truncate(mimi_codec::limits::MAX_REASON_LEN);
    while Text::<{ mimi_codec::limits::MAX_REASON_LEN }>::new(text.clone()).is_err() {
        text.pop();
    }
    match Text::new(text) {
        Ok(error_description) => encoded(&UpdateResponse {
            error_description,
            outcome,
        }),
        Err(e) => unavailable(e),
    }
}

/// The provider of a MIMI URI.
fn provider_of(uri: &IdentifierUri) -> Option<ServerName> {
    uri.mimi().ok().map(|u| u.provider().clone())
}

impl Provider {
    async fn load06(&self, room: &IdentifierUri) -> Result<Option<Room06Group>, StorageError> {
        let k = key(ROOM, room);
        let bytes = self.context().blocking(move |s| s.v06_record(&k)).await?;
        bytes
            .map(|b| {
                Room06Group::from_bytes(&b)
                    .map_err(|e| StorageError::Corrupt(format!("-06 room state: {e}")))
            })
            .transpose()
    }

    async fn store06(&self, room: &IdentifierUri, group: &Room06Group) -> Result<(), StorageError> {
        let bytes = group
            .to_bytes()
            .map_err(|e| StorageError::Corrupt(format!("-06 room state: {e}")))?;
        let k = key(ROOM, room);
        self.context()
            .blocking(move |s| s.put_v06_record(&k, Some(&bytes)))
            .await
    }

    /// Whether `client` may read what this provider holds of the -06 `room`: at the room's
    /// hub, only a client of a participant (the participant list of the current epoch); at a
    /// follower, any client of this provider (a follower keeps no participant list; what it
    /// holds is ciphertext and Welcomes for its own users).
    ///
    /// Rule V06-API-2 (docs/protocol-coverage.md).
    pub async fn may_read06(
        &self,
        client: &ClientId,
        room: &IdentifierUri,
    ) -> Result<bool, StorageError> {
        if provider_of(room).as_ref() != Some(self.server_name()) {
            return Ok(true);
        }
        let Some(group) = self.load06(room).await? else {
            return Ok(true);
        };
        let Some(user) = mimi_mls_binding::v06::user_uri_of_client(client) else {
            return Ok(false);
        };
        Ok(group
            .participants()
            .map(|list| list.participants.iter().any(|p| p.user == user))
            .unwrap_or(false))
    }

    /// Every `FanoutMessage` of `room` this provider holds, in order (the hub's accepted
    /// messages, or those a follower received with `notify`).
    pub async fn messages06(
        &self,
        room: &IdentifierUri,
    ) -> Result<Vec<FanoutMessage>, StorageError> {
        self.messages06_after(room, 0).await
    }

    /// The `FanoutMessage`s of `room` after the first `after`, in order. Each is its own
    /// record (`log06/<room>\0<position>`), read in pages of [`LOG_PAGE`]; the count record
    /// (`log06n/<room>`) says how many are written.
    ///
    /// Rule V06-STORE-2 (docs/protocol-coverage.md).
    pub async fn messages06_after(
        &self,
        room: &IdentifierUri,
        after: u64,
    ) -> Result<Vec<FanoutMessage>, StorageError> {
        let count = self.log_count06(room).await?;
        let prefix = log_prefix(room);
        let mut cursor: Vec<u8> = match after.checked_sub(1) {
            Some(last) => last.to_be_bytes().to_vec(),
            None => Vec::new(),
        };
        let mut out = Vec::new();
        let mut position = after;
        while position < count {
            let (p, c) = (prefix.clone(), cursor.clone());
            let page = self
                .context()
                .blocking(move |s| s.v06_records_with_prefix(&p, &c, LOG_PAGE))
                .await?;
            let full = page.len() == LOG_PAGE;
            for (key, value) in page {
                let Some(at) = key
                    .get(prefix.len()..)
                    .and_then(|k| <[u8; 8]>::try_from(k).ok())
                    .map(u64::from_be_bytes)
                else {
                    return Err(StorageError::Corrupt(
                        "-06 log: a key without a position".into(),
                    ));
                };
                if at >= count {
                    // Written by an append that did not finish: not part of the log.
                    return Ok(out);
                }
                if at != position {
                    return Err(StorageError::Corrupt(format!(
                        "-06 log of {room}: entry {at} where {position} was expected"
                    )));
                }
                out.push(
                    FanoutMessage::decode(&value)
                        .map_err(|e| StorageError::Corrupt(format!("-06 log: {e}")))?,
                );
                cursor = key[prefix.len()..].to_vec();
                position += 1;
            }
            if !full {
                break;
            }
        }
        Ok(out)
    }

    async fn log_count06(&self, room: &IdentifierUri) -> Result<u64, StorageError> {
        let k = key(LOG_COUNT, room);
        match self.context().blocking(move |s| s.v06_record(&k)).await? {
            Some(bytes) => <[u8; 8]>::try_from(bytes.as_slice())
                .map(u64::from_be_bytes)
                .map_err(|_| StorageError::Corrupt("-06 log count".into())),
            None => Ok(0),
        }
    }

    /// Append to the room's -06 log: each message its own record, then the count (written
    /// last: an append cut short leaves entries past the count, which are not read and are
    /// written over by the next append). Callers hold the -06 lock.
    async fn append06(
        &self,
        room: &IdentifierUri,
        messages: &[FanoutMessage],
    ) -> Result<(), StorageError> {
        let count = self.log_count06(room).await?;
        let prefix = log_prefix(room);
        let mut records = Vec::with_capacity(messages.len());
        for (i, m) in (count..).zip(messages) {
            let bytes = m
                .encode()
                .map_err(|e| StorageError::Corrupt(format!("-06 log: {e}")))?;
            records.push(([prefix.as_slice(), &i.to_be_bytes()].concat(), Some(bytes)));
        }
        let total = count + records.len() as u64;
        records.push((key(LOG_COUNT, room), Some(total.to_be_bytes().to_vec())));
        self.context()
            .blocking(move |s| s.put_v06_records(&records))
            .await
    }

    /// Create a -06 room whose hub is this provider, for its client `client`: the creator's
    /// GroupInfo (an MLSMessage with ExternalPub) and ratchet tree. Returns the epoch (0).
    ///
    /// Rule V06-ROOM-1 (docs/protocol-coverage.md).
    pub async fn create_room06(
        &self,
        client: &ClientId,
        room: &IdentifierUri,
        group_info: &[u8],
        ratchet_tree: &[u8],
    ) -> Result<u64, ApiError> {
        let own = self.server_name();
        let uri = room
            .mimi()
            .map_err(|e| ApiError::Malformed(format!("room: {e}")))?;
        if uri.kind() != MimiUriKind::Room || uri.provider() != own {
            return Err(ApiError::Malformed(format!(
                "{room} is not a room URI of {own}"
            )));
        }
        let group = Room06Group::create(
            group_info,
            ratchet_tree,
            room,
            self.rooms().identity().external_sender(),
        )
        .map_err(|e| ApiError::Malformed(format!("the room's group: {e}")))?;
        if group.members().iter().any(|(_, c)| c != client) {
            return Err(ApiError::Malformed(
                "a new room's only member is its creator's client".into(),
            ));
        }
        let _guard = self.rooms06().lock.lock().await;
        if self.load06(room).await?.is_some() {
            return Err(ApiError::Malformed(format!("{room} exists")));
        }
        self.store06(room, &group).await?;
        Ok(group.epoch())
    }

    /// `POST /update/{roomId}` at the room's hub: a follower provider (or this provider for
    /// its own client) sends its client's commit. Verified as MLS and against the room
    /// policy (`Room06Group::stage_commit`), applied, answered per -06 (`success` with the
    /// acceptance time, `wrongEpoch`, `notAllowed`, `invalidProposal`), then fanned out with
    /// `notify`: the commit to every participant's provider, the Welcome to the provider each
    /// added KeyPackageRef came from.
    ///
    /// Rules V06-UPD-1, V06-UPD-2 (docs/protocol-coverage.md).
    pub async fn update06(
        &self,
        from: &ServerName,
        variable: &str,
        request: UpdateRequest,
    ) -> Reply06 {
        let room = match room_of(variable) {
            Ok(room) => room,
            Err(reply) => return reply,
        };
        let UpdateRequest::Commit {
            commit,
            welcome,
            group_info_option,
            ..
        } = request
        else {
            // Rule V06-UPD-3 (docs/protocol-coverage.md).
            return update_answer(
                UpdateOutcome::NotAllowed,
                "this hub takes commits; send proposals inside a commit",
            );
        };
        let guard = self.rooms06().lock.lock().await;
        let mut group = match self.load06(&room).await {
            Ok(Some(g)) => g,
            // The draft has no code for a room the hub does not have (docs/spec-decisions.md).
            Ok(None) => {
                return update_answer(UpdateOutcome::NotAllowed, &format!("no room {room}"));
            }
            Err(e) => return unavailable(e),
        };
        let staged = match group.stage_commit(commit.as_bytes()) {
            Ok(s) => s,
            Err(Refused06::WrongEpoch { current }) => {
                return update_answer(
                    UpdateOutcome::WrongEpoch {
                        current_epoch: current,
                    },
                    "the commit is for another epoch",
                );
            }
            Err(Refused06::NotAllowed(why)) => {
                return update_answer(UpdateOutcome::NotAllowed, &why);
            }
            Err(Refused06::Invalid(why)) => {
                return update_answer(
                    UpdateOutcome::InvalidProposal {
                        invalid_proposals: BoundedVec::default(),
                    },
                    &why,
                );
            }
            Err(Refused06::State(e)) => return unavailable(e),
        };
        // The sending provider speaks for the committer.
        if staged.committer.user().server() != *from {
            return update_answer(
                UpdateOutcome::NotAllowed,
                &format!("{} is not a client of {from}", staged.committer),
            );
        }
        let participants_before = group.participants().ok();
        let group_info = match group_info_option {
            GroupInfoOption::Full(g) => g.as_bytes().to_vec(),
            GroupInfoOption::Partial(_) => {
                return update_answer(
                    UpdateOutcome::InvalidProposal {
                        invalid_proposals: BoundedVec::default(),
                    },
                    "this hub needs the full GroupInfo",
                );
            }
        };
        // Where each added KeyPackageRef came from, before anything changes.
        let sources = KeyPackageSources::new(self.context());
        let mut welcome_dests: Vec<ServerName> = Vec::new();
        for r in &staged.added_refs {
            match sources.source(r).await {
                Ok(Some(p)) if !welcome_dests.contains(&p) => welcome_dests.push(p),
                Ok(_) => {}
                Err(e) => return unavailable(e),
            }
        }
        let after = staged.participants_after.clone();
        if let Err(e) = group.merge(staged, group_info) {
            return unavailable(e);
        }
        if let Err(e) = self.store06(&room, &group).await {
            return unavailable(e);
        }
        let accepted = now_ms();
        let commit_out = FanoutMessage {
            timestamp: accepted,
            message: commit,
            extra: FanoutExtra::Commit {
                external_proposals: BoundedVec::default(),
            },
        };
        // The Welcome (with the new epoch's full tree) goes to each provider an added
        // KeyPackageRef came from, and into this provider's own log (for its own clients,
        // whose key packages it handed out itself).
        let tree = group
            .ratchet_tree()
            .ok()
            .and_then(|t| mimi_codec::Opaque::new(t).ok());
        let welcome_out = match (welcome.as_ref().and_then(welcome_message), tree) {
            (Some(message), Some(tree)) => Some(FanoutMessage {
                timestamp: accepted,
                message,
                extra: FanoutExtra::Welcome {
                    ratchet_tree_option: RatchetTreeOption::Full(tree),
                },
            }),
            _ => None,
        };
        let welcomes: Vec<(ServerName, FanoutMessage)> = match &welcome_out {
            Some(w) => welcome_dests.into_iter().map(|d| (d, w.clone())).collect(),
            None => Vec::new(),
        };
        let mut own = vec![commit_out.clone()];
        own.extend(welcome_out);
        if let Err(e) = self.append06(&room, &own).await {
            return unavailable(e);
        }
        let mut dests: Vec<ServerName> = Vec::new();
        for p in participants_before
            .iter()
            .chain(std::iter::once(&after))
            .flat_map(|l| l.participants.iter())
            .filter_map(|p| provider_of(&p.user))
        {
            if p != *self.server_name() && !dests.contains(&p) {
                dests.push(p);
            }
        }
        drop(guard);
        for dest in &dests {
            let mut body = vec![commit_out.clone()];
            body.extend(
                welcomes
                    .iter()
                    .filter(|(d, _)| d == dest)
                    .map(|(_, m)| m.clone()),
            );
            self.notify_peer06(dest, &room, body).await;
        }
        for (dest, w) in &welcomes {
            if !dests.contains(dest) && dest != self.server_name() {
                self.notify_peer06(dest, &room, vec![w.clone()]).await;
            }
        }
        update_answer(
            UpdateOutcome::Success {
                accepted_timestamp: accepted,
            },
            "",
        )
    }

    /// Send one `notify` to `dest`: at once when nothing waits for it, answered within
    /// [`NOTIFY_INLINE_WAIT`]; else (or when it fails) through the destination's queue, which
    /// retries in order without holding up the caller. The messages carry the hub's frank when [`Provider::submit06`] made one.
    ///
    /// Rule V06-NOT-1 (docs/protocol-coverage.md).
    async fn notify_peer06(
        &self,
        dest: &ServerName,
        room: &IdentifierUri,
        messages: Vec<FanoutMessage>,
    ) {
        let body = match (NotifyBody { messages }).encode() {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(%dest, error = %e, "-06 notify body does not encode");
                return;
            }
        };
        let job = (Endpoint06::Notify.path(room.as_str()), body);
        let backlog = &self.rooms06().backlog;
        // Behind what already waits for this destination: the hub's order is kept.
        let Enqueued::NoBacklog(job) = backlog.enqueue(dest, job, false) else {
            return;
        };
        let peers = self.context().peers.clone();
        let sent = tokio::time::timeout(
            NOTIFY_INLINE_WAIT,
            peers.post06(dest, self.server_name(), job.0.clone(), job.1.clone()),
        )
        .await;
        match sent {
            Ok(Ok((200..=299, _))) => return,
            Ok(Ok((status @ 400..=499, answer))) => {
                tracing::warn!(%dest, status, answer = %String::from_utf8_lossy(&answer), "-06 notify refused");
                return;
            }
            _ => {}
        }
        // Not delivered (or not yet answered): the destination's queue sends the same bytes
        // again until the peer answers; a repeat it did receive is processed once (V06-NOT-2).
        if let Enqueued::Started = backlog.enqueue(dest, job, true) {
            tokio::spawn(drain_backlog(
                backlog.clone(),
                peers,
                self.server_name().clone(),
                dest.clone(),
            ));
        }
    }

    /// How many `notify` bodies wait for `dest` (a peer that did not answer).
    pub fn notify_backlog06(&self, dest: &ServerName) -> usize {
        self.rooms06().backlog.len(dest)
    }

    /// Wait until no `notify` body waits for `dest`: every one was answered (delivered, or
    /// finally refused).
    pub async fn notify_drained06(&self, dest: &ServerName) {
        self.rooms06().backlog.drained(dest).await;
    }

    /// `POST /submitMessage/{roomId}` at the room's hub: an application message of a
    /// participant of the sending provider, checked (epoch, `canSendMessage`) and fanned out
    /// with `notify`. The answer and the fan-out carry the hub's frank when the room has this hub's `franking_agent` (`frank06`).
    ///
    /// Rule V06-SUB-1 (docs/protocol-coverage.md).
    pub async fn submit06(
        &self,
        from: &ServerName,
        variable: &str,
        request: SubmitMessageRequest,
    ) -> Reply06 {
        let room = match room_of(variable) {
            Ok(room) => room,
            Err(reply) => return reply,
        };
        let answer = |outcome| {
            encoded(&SubmitMessageResponse {
                protocol: Protocol::Mls10,
                outcome,
            })
        };
        if provider_of(&request.sending_uri).as_ref() != Some(from) {
            return answer(SubmitOutcome::NotAllowed);
        }
        let guard = self.rooms06().lock.lock().await;
        let group = match self.load06(&room).await {
            Ok(Some(g)) => g,
            // The draft has no code for a room the hub does not have; the sending provider
            // is not allowed to submit to it (docs/spec-decisions.md).
            Ok(None) => return answer(SubmitOutcome::NotAllowed),
            Err(e) => return unavailable(e),
        };
        match group.check_application(request.app_message.as_bytes(), &request.sending_uri) {
            Ok(()) => {}
            Err(Refused06::WrongEpoch { current }) => {
                return answer(SubmitOutcome::EpochTooOld {
                    current_epoch: current,
                });
            }
            Err(Refused06::NotAllowed(_)) => return answer(SubmitOutcome::NotAllowed),
            Err(Refused06::Invalid(why)) => {
                return refuse(StatusCode::BAD_REQUEST, "malformed", why);
            }
            Err(Refused06::State(e)) => return unavailable(e),
        }
        let accepted = now_ms();
        let frank = match self.frank06(&group, &request, &room, accepted) {
            Ok(frank) => frank,
            Err(reply) => return reply,
        };
        let out = FanoutMessage {
            timestamp: accepted,
            message: request.app_message,
            extra: FanoutExtra::Application {
                frank: frank.clone(),
            },
        };
        if let Err(e) = self.append06(&room, std::slice::from_ref(&out)).await {
            return unavailable(e);
        }
        let mut dests: Vec<ServerName> = Vec::new();
        if let Ok(list) = group.participants() {
            for p in list
                .participants
                .iter()
                .filter_map(|p| provider_of(&p.user))
            {
                if p != *self.server_name() && !dests.contains(&p) {
                    dests.push(p);
                }
            }
        }
        drop(guard);
        for dest in &dests {
            self.notify_peer06(dest, &room, vec![out.clone()]).await;
        }
        answer(SubmitOutcome::Accepted {
            accepted_timestamp: accepted,
            frank,
        })
    }

    /// The hub's frank of an accepted application message (draft-ietf-mimi-protocol-06
    /// §5.4.1.2): made when the room's GroupContext names this hub's `franking_agent` and the
    /// message carries a `frank_aad`; none otherwise. A message whose AAD is not a `SafeAAD`
    /// (or whose `frank_aad` is not 32 octets) is refused, not passed on unfranked.
    ///
    /// Rule V06-FRANK-6 (docs/protocol-coverage.md).
    fn frank06(
        &self,
        group: &Room06Group,
        request: &SubmitMessageRequest,
        room: &IdentifierUri,
        accepted: u64,
    ) -> Result<Option<Frank>, Reply06> {
        let ours = self
            .franking()
            .agent(self.server_name())
            .map_err(|e| unavailable(format!("franking agent: {e}")))?;
        match group.franking_agent() {
            Ok(Some(agent)) if agent == ours => {}
            Ok(_) => return Ok(None),
            Err(Refused06::State(e)) => return Err(unavailable(e)),
            Err(e) => return Err(unavailable(format!("{e:?}"))),
        }
        self.franking()
            .frank_message(
                group.cipher_suite(),
                &request.app_message,
                &request.sending_uri,
                room,
                accepted,
            )
            .map_err(|e| match e {
                mimi_mls_binding::franking::FrankingError::Malformed(why) => refuse(
                    StatusCode::BAD_REQUEST,
                    "malformed",
                    format!("frank_aad: {why}"),
                ),
                e => unavailable(format!("franking: {e}")),
            })
    }

    /// `POST /notify/{roomId}` at a follower: only the room's hub may send it; the messages
    /// are kept for this provider's clients; a byte-identical repeat is answered 201 and
    /// not processed again.
    ///
    /// Rule V06-NOT-2 (docs/protocol-coverage.md).
    pub async fn notify06(
        &self,
        from: &ServerName,
        variable: &str,
        body: NotifyBody,
        raw: &[u8],
    ) -> Reply06 {
        let room = match room_of(variable) {
            Ok(room) => room,
            Err(reply) => return reply,
        };
        if provider_of(&room).as_ref() != Some(from) {
            return refuse(
                StatusCode::FORBIDDEN,
                "not_allowed",
                format!("{from} is not the hub of {room}"),
            );
        }
        let seen = [SEEN, Sha256::digest(raw).as_slice()].concat();
        let _guard = self.rooms06().lock.lock().await;
        let k = seen.clone();
        match self.context().blocking(move |s| s.v06_record(&k)).await {
            Ok(Some(_)) => return Reply06::Created,
            Ok(None) => {}
            Err(e) => return unavailable(e),
        }
        if let Err(e) = self.append06(&room, &body.messages).await {
            return unavailable(e);
        }
        match self
            .context()
            .blocking(move |s| s.put_v06_record(&seen, Some(&[1])))
            .await
        {
            Ok(()) => Reply06::Created,
            Err(e) => unavailable(e),
        }
    }
}

impl Provider {
    /// `POST /groupInfo/{roomId}` at the room's hub: the request's signature verified
    /// (`GroupInfoRequestTBS` under the requesting signature key); the requester authorized
    /// when its credential names a client of the sending provider whose user is a
    /// participant (joining codes are not offered: a request with one is `notAuthorized`);
    /// the GroupInfo, tree and pending proposals sealed to `groupInfoPublicKey`
    /// (`Room06Group::sealed_group_info`); the response signed by the hub's external
    /// sender key (`GroupInfoResponseTBS`).
    ///
    /// Rule V06-GI-1 (docs/protocol-coverage.md).
    pub async fn group_info06(
        &self,
        from: &ServerName,
        variable: &str,
        request: GroupInfoRequest,
    ) -> Reply06 {
        let room = match room_of(variable) {
            Ok(room) => room,
            Err(reply) => return reply,
        };
        let answer = |result| {
            encoded(&GroupInfoResponse {
                version: Protocol::Mls10,
                room_id: room.clone(),
                result,
            })
        };
        if let Err(e) = verify_group_info_request(&request) {
            return refuse(StatusCode::FORBIDDEN, "signature", e);
        }
        let group = match self.load06(&room).await {
            Ok(Some(g)) => g,
            Ok(None) => return answer(Err(GroupInfoCode::NoSuchRoom)),
            Err(e) => return unavailable(e),
        };
        let requester = (request.requesting_credential.credential_type == 1)
            .then(|| {
                std::str::from_utf8(request.requesting_credential.content.as_slice())
                    .ok()?
                    .parse::<ClientId>()
                    .ok()
            })
            .flatten();
        let authorized = request.joining_code.is_empty()
            && request.cipher_suite == group.cipher_suite()
            && requester.as_ref().is_some_and(|client| {
                client.user().server() == *from
                    && super::user_uri(&client.user()).is_some_and(|user| {
                        group
                            .participants()
                            .is_ok_and(|l| l.participants.iter().any(|p| p.user == user))
                    })
            });
        if !authorized {
            return answer(Err(GroupInfoCode::NotAuthorized));
        }
        let sealed = match group.sealed_group_info(request.group_info_public_key.as_slice(), &room)
        {
            Ok(s) => s,
            Err(Refused06::Invalid(why)) => {
                return refuse(StatusCode::BAD_REQUEST, "malformed", why);
            }
            Err(e) => return unavailable(e),
        };
        let identity = self.rooms().identity();
        let hub_sender =
            match <mimi_codec::v06::ExternalSender as tls_codec::Deserialize>::tls_deserialize_exact(
                identity.external_sender_bytes(),
            ) {
                Ok(s) => s,
                Err(e) => return unavailable(e),
            };
        let body = GroupInfoSuccess {
            cipher_suite: request.cipher_suite,
            hub_sender,
            encrypted_groupinfo_and_tree: sealed,
        };
        let tbs = GroupInfoResponseTbs {
            version: Protocol::Mls10,
            room_id: room.clone(),
            status: GroupInfoCode::Success,
            body: body.clone(),
        };
        let content = match tbs
            .encode()
            .and_then(|t| sign_content(GROUP_INFO_RESPONSE_TBS, &t))
        {
            Ok(c) => c,
            Err(e) => return unavailable(e),
        };
        let signature = match openmls_traits::signatures::Signer::sign(identity.signer(), &content)
            .map_err(|e| format!("{e:?}"))
            .and_then(|s| mimi_codec::Opaque::new(s).map_err(|e| e.to_string()))
        {
            Ok(s) => s,
            Err(e) => return unavailable(e),
        };
        answer(Ok((body, signature)))
    }

    /// A -06 request of this provider's client `client`, sent on as the source provider
    /// (`POST /v1/v06/relay`): `update` and `submitMessage` to the room's hub,
    /// `keyMaterial` to the room's hub when it names a room, else to the target's
    /// provider; `updateConsent` (the caller's grant or revoke) recorded and sent to the
    /// requester's provider; `identifierQuery` to the provider the path's `{domain}` names. A
    /// request to this provider itself is answered here. The body must speak
    /// for the caller's user (`sending_uri`, `requesting_user`); the hub checks a commit's
    /// committer against this provider.
    ///
    /// Rule V06-API-1 (docs/protocol-coverage.md).
    pub async fn relay06(
        &self,
        client: &ClientId,
        endpoint: &str,
        variable: &str,
        body: Vec<u8>,
    ) -> Result<(u16, Vec<u8>), ApiError> {
        let me = super::user_uri(&client.user())
            .ok_or_else(|| ApiError::Malformed("the caller has no user URI".into()))?;
        let endpoint = Endpoint06::ALL
            .into_iter()
            .find(|e| e.name() == endpoint)
            .filter(|e| {
                matches!(
                    e,
                    Endpoint06::Update
                        | Endpoint06::SubmitMessage
                        | Endpoint06::KeyMaterial
                        | Endpoint06::UpdateConsent
                        | Endpoint06::IdentifierQuery
                )
            })
            .ok_or_else(|| ApiError::Malformed(format!("{endpoint} is not relayed")))?;
        let decoded = mimi_transport::v06::Body06::decode(endpoint, &body)
            .map_err(|e| ApiError::Malformed(format!("body: {e}")))?;
        if let mimi_transport::v06::Body06::Consent(entry) = &decoded {
            // The caller's own decision: recorded here and sent to the requester's provider.
            if entry.target_uri != me {
                return Err(ApiError::Malformed("targetUri is not the caller".into()));
            }
            self.send_consent06(entry).await?;
            return Ok((201, Vec::new()));
        }
        let to = match &decoded {
            // The variable is the provider asked (§5.8: `identifierQuery/{domain}`).
            mimi_transport::v06::Body06::IdentifierQuery(_) => variable
                .parse::<ServerName>()
                .map_err(|e| ApiError::Malformed(format!("domain: {e}")))?,
            _ => self.relay_target06(&decoded, variable, &me)?,
        };
        self.relay_to06(to, endpoint, variable, decoded, body).await
    }

    /// Where a relayed -06 request goes: the room's hub, or the key material's target (the
    /// caller's own consent decision has been sent already and is not relayed further).
    fn relay_target06(
        &self,
        decoded: &mimi_transport::v06::Body06,
        variable: &str,
        me: &IdentifierUri,
    ) -> Result<ServerName, ApiError> {
        let target_of = |uri: &IdentifierUri| {
            provider_of(uri).ok_or_else(|| ApiError::Malformed(format!("{uri} is not a MIMI URI")))
        };
        let variable_uri: IdentifierUri = variable
            .parse()
            .map_err(|e| ApiError::Malformed(format!("variable: {e}")))?;
        let to = match decoded {
            mimi_transport::v06::Body06::SubmitMessage(r) => {
                if r.sending_uri != *me {
                    return Err(ApiError::Malformed("sendingUri is not the caller".into()));
                }
                target_of(&variable_uri)?
            }
            mimi_transport::v06::Body06::KeyMaterial(r) => {
                if r.tbs.requesting_user != *me {
                    return Err(ApiError::Malformed(
                        "requestingUser is not the caller".into(),
                    ));
                }
                match r.tbs.room_id.get() {
                    Some(room) => target_of(room)?,
                    None => target_of(&r.tbs.target_user)?,
                }
            }
            _ => target_of(&variable_uri)?,
        };
        Ok(to)
    }

    /// Send a relayed -06 request to `to`, or answer it here when `to` is this provider.
    async fn relay_to06(
        &self,
        to: ServerName,
        endpoint: Endpoint06,
        variable: &str,
        decoded: mimi_transport::v06::Body06,
        body: Vec<u8>,
    ) -> Result<(u16, Vec<u8>), ApiError> {
        let own = self.server_name().clone();
        if to == own {
            let request = mimi_transport::v06::Request06 {
                endpoint,
                variable: variable.to_owned(),
                from: own,
                body: decoded,
                raw: body.into(),
            };
            return Ok(
                match mimi_transport::v06::Handler06::handle06(self, request).await {
                    Reply06::Ok(b) => (200, b),
                    Reply06::Created => (201, Vec::new()),
                    Reply06::Refused(r) => (r.status.as_u16(), r.body()),
                },
            );
        }
        self.context()
            .peers
            .post06(&to, &own, endpoint.path(variable), body)
            .await
            .map_err(|e| ApiError::peer(&to, e))
    }
}

/// Verify a `GroupInfoRequest`'s signature (Ed25519).
fn verify_group_info_request(request: &GroupInfoRequest) -> Result<(), String> {
    let key: [u8; 32] = request
        .requesting_signature_key
        .as_slice()
        .try_into()
        .map_err(|_| "requestingSignatureKey is not an Ed25519 key".to_owned())?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(&key)
        .map_err(|e| format!("requestingSignatureKey: {e}"))?;
    let signature = ed25519_dalek::Signature::from_slice(request.signature.as_slice())
        .map_err(|e| format!("signature: {e}"))?;
    let tbs = request.tbs().encode().map_err(|e| e.to_string())?;
    let content = sign_content(GROUP_INFO_REQUEST_TBS, &tbs).map_err(|e| e.to_string())?;
    key.verify_strict(&content, &signature)
        .map_err(|_| "the GroupInfoRequest signature does not verify".to_owned())
}

/// A Welcome as the `MLSMessage` a `FanoutMessage` carries (version `mls10`, wire format
/// `mls_welcome`, then the bare Welcome).
fn welcome_message(welcome: &Welcome) -> Option<MlsMessage> {
    let mut bytes = vec![0x00, 0x01, 0x00, 0x03];
    bytes.extend_from_slice(welcome.as_bytes());
    MlsMessage::from_bytes(&bytes).ok()
}
