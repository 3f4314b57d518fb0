//! [`Client`]: one registered device with its state directory, driving the protocol flows
//! over the provider API (`docs/client-api.md`) with MLS from `mimi-e2e`.
//!
//! Every operation that commits or proposes first syncs the inbox, so the group is at the
//! hub's epoch and holds the proposals the hub accepted (a commit must include them).

use std::path::{Path, PathBuf};

use mimi_codec::{
    ErrorCode, Event, EventResponse, GroupInfoRequest, JoinRule, MlsBytes, ParticipationState,
    ParticipationStateChange as Change, ProposalRequest, RoomId, RoomState, SendMessageRequest,
    UserEvent, UserId,
};
use mimi_e2e::{ExternalSender, MlsClient, OwnProposal};
use tls_codec::Deserialize as _;

use crate::api::{Api, Discovered, INBOX_PAGE, RegisterRequest};
use crate::config::ClientConfig;
use crate::error::ClientError;
use crate::http::{Endpoint, Https};
use crate::inbox::{self, Outcome, group_epoch};
use crate::messages::{self, Compose};
use crate::plan::{plan_commit, state_after, user_event};
use crate::store::{Store, StoredMessage};

mod settle;
mod v06;

pub use v06::Message06;

pub use settle::{JOIN_COMMIT_WAIT, LISTEN_WAIT};

/// Largest number of key packages published at once.
pub const MAX_KEY_PACKAGES_PER_PUBLISH: usize = 100;

/// How to register a client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registration {
    /// The provider API URL, `https://host[:port]`.
    pub api: String,
    /// Connect to this `host:port` instead of the URL's.
    pub connect: Option<String>,
    /// The CA certificate (PEM) of the provider.
    pub ca: PathBuf,
    /// What is registered: the localpart, the device and the discovery fields.
    pub request: RegisterRequest,
    /// The directory of one of the user's registered clients: its token authorizes this
    /// new device of the same user.
    pub token_from: Option<PathBuf>,
}

/// What a sync did: each processed item's cursor and outcome.
#[derive(Debug, Default)]
pub struct SyncReport {
    /// The items, in order.
    pub items: Vec<(u64, Outcome)>,
    /// The room of each item, in the same order.
    pub item_rooms: Vec<RoomId>,
}

/// A room as `mimi show` presents it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomView {
    /// The room.
    pub room: RoomId,
    /// The group's epoch, when this client is in the group.
    pub epoch: Option<u64>,
    /// The last known room state.
    pub state: Option<RoomState>,
    /// Participation notes: (sequence, text).
    pub notes: Vec<(u64, String)>,
    /// The messages, in order of arrival.
    pub messages: Vec<StoredMessage>,
}

/// One registered client device.
#[derive(Debug)]
pub struct Client {
    dir: PathBuf,
    config: ClientConfig,
    api: Api,
    mls: MlsClient,
    store: Store,
}

fn api_for(config: &ClientConfig, token: Option<String>) -> Result<Api, ClientError> {
    let endpoint = Endpoint::parse(&config.api, config.connect.as_deref())?;
    Ok(Api::new(Https::new(endpoint, &config.ca)?, token))
}

impl Client {
    /// Register a new client with the provider and create its state directory `dir`.
    pub async fn register(dir: &Path, registration: Registration) -> Result<Client, ClientError> {
        if ClientConfig::path(dir).exists() {
            return Err(ClientError::AlreadyRegistered(dir.to_owned()));
        }
        crate::folder::create(dir)?;
        // Stored absolute, so that the client works from any working directory.
        let ca = crate::folder::absolute(&registration.ca)?;
        let token = match &registration.token_from {
            Some(other) => Some(ClientConfig::load(other)?.token),
            None => None,
        };
        let endpoint = Endpoint::parse(&registration.api, registration.connect.as_deref())?;
        let api = Api::new(Https::new(endpoint, &ca)?, token);
        let registered = api.register(&registration.request).await?;
        let config = ClientConfig {
            api: registration.api,
            connect: registration.connect,
            ca,
            user_id: registered.user_id,
            client_id: registered.client_id,
            token: registered.token,
            cursor: 0,
        };
        // The MLS identity first: a failure leaves no client.json behind.
        let mls = MlsClient::open(dir, config.client_id.clone())?;
        let store = Store::open(dir)?;
        config.save(dir)?;
        crate::folder::restrict_files(dir)?;
        let api = api_for(&config, Some(config.token.clone()))?;
        Ok(Client {
            dir: dir.to_owned(),
            config,
            api,
            mls,
            store,
        })
    }

    /// Open the registered client in `dir`.
    pub fn open(dir: &Path) -> Result<Client, ClientError> {
        let config = ClientConfig::load(dir)?;
        let mls = MlsClient::open(dir, config.client_id.clone())?;
        let store = Store::open(dir)?;
        let api = api_for(&config, Some(config.token.clone()))?;
        Ok(Client {
            dir: dir.to_owned(),
            config,
            api,
            mls,
            store,
        })
    }

    /// The configuration (`client.json`).
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The user.
    pub fn user_id(&self) -> &UserId {
        &self.config.user_id
    }

    /// The room log.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The MLS client.
    pub fn mls(&mut self) -> &mut MlsClient {
        &mut self.mls
    }

    /// Make and publish `count` key packages (and a last-resort one if asked).
    pub async fn publish_key_packages(
        &mut self,
        count: usize,
        last_resort: bool,
    ) -> Result<usize, ClientError> {
        let count = count.min(MAX_KEY_PACKAGES_PER_PUBLISH);
        let mut key_packages = Vec::with_capacity(count + 1);
        for _ in 0..count {
            key_packages.push(self.mls.key_package(false)?);
        }
        if last_resort {
            key_packages.push(self.mls.key_package(true)?);
        }
        self.api.publish_key_packages(&key_packages).await
    }

    /// Find a user by an identifier at provider `domain`; `field` is an identifier type's
    /// API name (`handle`, `email`, ...).
    pub async fn discover(
        &self,
        domain: &str,
        field: &str,
        value: &str,
    ) -> Result<Discovered, ClientError> {
        let request = mimi_client_api::discover::Request {
            domain: domain
                .parse()
                .map_err(|e| ClientError::Usage(format!("domain {domain:?}: {e}")))?,
            field: mimi_client_api::parse_identifier_query(field)
                .ok_or_else(|| ClientError::Usage(format!("unknown identifier type {field:?}")))?,
            value: value.to_owned(),
        };
        self.api.call(&request).await
    }

    /// Create a room: prepare it at the provider, create its MLS group, register the group.
    pub async fn create_room(&mut self, join_rule: JoinRule) -> Result<RoomId, ClientError> {
        let prepared = self.api.prepare_room(join_rule).await?;
        let hub = ExternalSender::tls_deserialize_exact(&prepared.hub_external_sender)
            .map_err(|_| ClientError::UnexpectedResponse("hub_external_sender does not decode"))?;
        let room = prepared.room_id.clone();
        if prepared.room_state.room_id != room {
            return Err(ClientError::UnexpectedResponse(
                "the prepared room state is for another room",
            ));
        }
        let created = self.mls.create_room(&prepared.room_state, hub)?;
        if let Err(e) = self
            .api
            .create_room(&room, join_rule, &created.group_info, &created.ratchet_tree)
            .await
        {
            self.mls.forget_room(&room)?;
            return Err(e);
        }
        self.store.note_room(&room)?;
        self.store.set_state(&prepared.room_state)?;
        Ok(room)
    }

    /// Fetch and process the inbox until it is empty; the cursor is saved after each item.
    ///
    /// A client outside a room's group cannot read its handshakes (an invite proposal, the
    /// commit that adds a user by invite): for each room an item touched whose group this
    /// client is not in, the room state is then taken from the provider's copy.
    pub async fn sync(&mut self) -> Result<SyncReport, ClientError> {
        let mut report = SyncReport::default();
        let mut outside: Vec<RoomId> = Vec::new();
        loop {
            let items = self.api.inbox(self.config.cursor, INBOX_PAGE).await?;
            let full = items.len() >= INBOX_PAGE;
            for item in items {
                if item.cursor <= self.config.cursor {
                    return Err(ClientError::UnexpectedResponse(
                        "inbox cursor did not advance",
                    ));
                }
                let message = item.decode_message()?;
                let outcome = inbox::process(&mut self.mls, &mut self.store, &message)?;
                self.config.cursor = item.cursor;
                self.config.save(&self.dir)?;
                let room = &message.room_id;
                if !outside.contains(room) && group_epoch(&mut self.mls, room)?.is_none() {
                    outside.push(room.clone());
                }
                report.items.push((item.cursor, outcome));
                report.item_rooms.push(room.clone());
            }
            if !full {
                break;
            }
        }
        for room in outside {
            match self.api.room_state(&room).await {
                Ok(state) if state.room_id == room => self.store.set_state(&state)?,
                Ok(_) => {
                    return Err(ClientError::UnexpectedResponse(
                        "the provider's room state is for another room",
                    ));
                }
                // Not (or no longer) a participant: the last state seen stays.
                Err(ClientError::Api {
                    status: 403 | 404, ..
                }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(report)
    }

    async fn in_group(&mut self, room: &RoomId) -> Result<u64, ClientError> {
        self.sync().await?;
        group_epoch(&mut self.mls, room)?.ok_or_else(|| ClientError::NotInRoom(room.clone()))
    }

    /// Commit `changes` (and `adds`) with the pending proposals; merge on acceptance.
    async fn commit_changes(
        &mut self,
        room: &RoomId,
        changes: Vec<UserEvent>,
        adds: Vec<Vec<u8>>,
        epoch: u64,
    ) -> Result<u64, ClientError> {
        let hub_state = self.api.room_state(room).await?;
        let group_state = self.mls.room_state(room)?;
        let members = self.mls.members(room)?;
        let already = self
            .store
            .room(room)
            .map(|r| r.pending_removes(epoch))
            .unwrap_or_default();
        let plan = plan_commit(
            &hub_state,
            &group_state,
            &self.config.user_id,
            changes,
            adds,
            &members,
            &already,
        )?;
        // A commit left pending by an earlier attempt whose answer never came: the sync
        // before this call merged it if the hub had applied it (fanned back, it is this
        // client's own pending commit); one still pending was not applied.
        self.mls.clear_pending_commit(room)?;
        let request = self.mls.commit(room, plan)?;
        let commit = request.commit.as_slice().to_vec();
        let event = Event::DsCommit(request);
        let mut result = self.api.submit(room, &event).await;
        for _ in 0..COMMIT_RESENDS {
            match &result {
                Err(e) if answer_lost(e) => result = self.api.submit(room, &event).await,
                _ => break,
            }
        }
        match result {
            Ok(_) => {
                self.mls.merge_pending_commit(room)?;
                self.store.mark_submitted(&commit)?;
                let state = self.mls.room_state(room)?;
                self.store.set_state(&state)?;
                Ok(self.mls.epoch(room)?)
            }
            // Still no answer: the hub may have applied it. It stays pending, so that the
            // next sync merges it when the hub fans it back (`Processed::OwnCommit`).
            Err(e) if answer_lost(&e) => Err(e),
            Err(e) => {
                self.mls.clear_pending_commit(room)?;
                Err(e)
            }
        }
    }

    /// Add `user` (the spec's "Alice adds Bob"): one commit with the join UserEvent, an Add
    /// for each claimed key package and the new room state; the Welcome rides along.
    ///
    /// Rule CL-ADD-1 (docs/protocol-coverage.md).
    pub async fn add(&mut self, room: &RoomId, user: &UserId) -> Result<u64, ClientError> {
        let epoch = self.in_group(room).await?;
        let claimed = self.api.claim_key_packages(room, user).await?;
        if claimed.is_empty() {
            return Err(ClientError::NoKeyPackages(user.clone()));
        }
        let adds = claimed.into_iter().map(|k| k.key_package).collect();
        self.commit_changes(
            room,
            vec![user_event(user.clone(), Change::Join)],
            adds,
            epoch,
        )
        .await
    }

    /// Commit the proposals the hub holds (and remove clients of departed users).
    pub async fn commit(&mut self, room: &RoomId) -> Result<u64, ClientError> {
        let epoch = self.in_group(room).await?;
        self.commit_changes(room, Vec::new(), Vec::new(), epoch)
            .await
    }

    /// Kick a joined user: one commit with the leave UserEvent and the removal of all the
    /// user's clients.
    pub async fn kick(&mut self, room: &RoomId, user: &UserId) -> Result<u64, ClientError> {
        let epoch = self.in_group(room).await?;
        self.commit_changes(
            room,
            vec![user_event(user.clone(), Change::Leave)],
            Vec::new(),
            epoch,
        )
        .await
    }

    /// Ban a user (preemptively too): one commit with the ban UserEvent, removing the
    /// user's clients if any.
    pub async fn ban(&mut self, room: &RoomId, user: &UserId) -> Result<u64, ClientError> {
        let epoch = self.in_group(room).await?;
        self.commit_changes(
            room,
            vec![user_event(user.clone(), Change::Ban)],
            Vec::new(),
            epoch,
        )
        .await
    }

    /// Lift a ban: a commit with the leave UserEvent on the banned user.
    pub async fn unban(&mut self, room: &RoomId, user: &UserId) -> Result<u64, ClientError> {
        self.kick(room, user).await
    }

    /// Submit an MLS-signed `m.room.user` proposal (checked locally first).
    async fn propose(&mut self, room: &RoomId, event: UserEvent) -> Result<(), ClientError> {
        self.in_group(room).await?;
        let hub_state = self.api.room_state(room).await?;
        state_after(
            &hub_state,
            &self.config.user_id,
            std::slice::from_ref(&event),
        )?;
        let proposal = self.mls.propose_user_event_with_ref(room, &event)?;
        self.submit_proposal(
            room,
            Event::RoomUser(MlsBytes::new(proposal.message.clone())?),
            &proposal,
        )
        .await
    }

    /// Submit a proposal this client made. A proposal the hub refuses is withdrawn from the
    /// local MLS store, or this client's next commit in the epoch would carry it (and be
    /// refused for referencing a proposal the hub does not hold).
    async fn submit_proposal(
        &mut self,
        room: &RoomId,
        event: Event,
        proposal: &OwnProposal,
    ) -> Result<(), ClientError> {
        match self.api.submit(room, &event).await {
            Ok(_) => self.store.mark_submitted(&proposal.message),
            Err(e @ ClientError::Refused(_)) => {
                self.mls.withdraw_proposal(room, proposal)?;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// Invite `user`: an `m.room.user` invite proposal; a member's next commit includes it.
    pub async fn invite(&mut self, room: &RoomId, user: &UserId) -> Result<(), ClientError> {
        self.propose(room, user_event(user.clone(), Change::Invite))
            .await
    }

    /// Submit an `m.room.user.unsigned` change about this user.
    async fn unsigned(&mut self, room: &RoomId, change: Change) -> Result<(), ClientError> {
        let event = user_event(self.config.user_id.clone(), change);
        self.api
            .submit(room, &Event::RoomUserUnsigned(event))
            .await?;
        self.store.note_room(room)
    }

    /// Knock on a room.
    pub async fn knock(&mut self, room: &RoomId) -> Result<(), ClientError> {
        self.unsigned(room, Change::Knock).await
    }

    /// Leave the room. With a client in the group: an `m.room.user` leave proposal and a
    /// self-remove proposal (a remaining member's next commit includes them). Without
    /// (invited, knocking): an unsigned leave (decline, withdraw a knock).
    pub async fn leave(&mut self, room: &RoomId) -> Result<(), ClientError> {
        self.leave_with(room, true).await
    }

    /// Leave the room with the `m.room.user` leave proposal only (the spec's "leave with
    /// hub-generated removes"): the hub, asked by a participant
    /// ([`Client::request_hub_removals`]), proposes the removal of this user's clients, or
    /// a member's commit removes them. Without a client in the group: as [`Client::leave`].
    pub async fn leave_without_self_remove(&mut self, room: &RoomId) -> Result<(), ClientError> {
        self.leave_with(room, false).await
    }

    async fn leave_with(&mut self, room: &RoomId, self_remove: bool) -> Result<(), ClientError> {
        self.sync().await?;
        if group_epoch(&mut self.mls, room)?.is_none() {
            return self.unsigned(room, Change::Leave).await;
        }
        let me = self.config.user_id.clone();
        self.propose(room, user_event(me, Change::Leave)).await?;
        if !self_remove {
            return Ok(());
        }
        let remove = self.mls.self_remove_proposal_with_ref(room)?;
        let request = ProposalRequest {
            proposals: mimi_codec::BoundedVec::new(vec![MlsBytes::new(remove.message.clone())?])?,
        };
        self.submit_proposal(room, Event::DsProposal(request), &remove)
            .await
    }

    /// Ask the room's hub (`POST /v1/rooms/{room}/hub-removals`) to propose, as external
    /// sender, the removal of every client of users who left or were removed; returns
    /// whether it proposed any. A member's next [`Client::commit`] includes them. Only
    /// participants may ask.
    pub async fn request_hub_removals(&mut self, room: &RoomId) -> Result<bool, ClientError> {
        self.api.hub_removals(room).await
    }

    /// Join the room by external commit: after an invite (or in a public room) the user's
    /// unsigned join first; a further device of a joined user joins directly.
    pub async fn join(&mut self, room: &RoomId) -> Result<u64, ClientError> {
        self.sync().await?;
        if let Some(epoch) = group_epoch(&mut self.mls, room)? {
            return Ok(epoch);
        }
        let me = self.config.user_id.clone();
        let state = match self.api.room_state(room).await {
            Ok(state) => Some(state),
            // Unknown here, or not a participant (a follower knows only its users' rooms):
            // the hub decides.
            Err(ClientError::Api {
                status: 403 | 404, ..
            }) => None,
            Err(e) => return Err(e),
        };
        let joined = state.as_ref().is_some_and(|s| {
            s.participants
                .iter()
                .any(|p| p.user_id == me && p.state == ParticipationState::Join)
        });
        if !joined {
            // Not checked against this provider's copy of the room first: it may not have
            // the invite yet (fan-out from the hub is asynchronous), and the hub, which
            // holds the room's state, refuses a join the policy does not allow.
            self.unsigned(room, Change::Join).await?;
        }
        let info = match self
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
        let Some(info) = self.wait_for_pending_commit(room, info).await? else {
            // Added meanwhile (a member's commit carried a Welcome for this client).
            return Ok(self.mls.epoch(room)?);
        };
        let (joined_room, request) = self.mls.join_by_external_commit(
            info.group_info.as_slice(),
            Some(info.ratchet_tree.as_slice()),
        )?;
        if joined_room != *room {
            self.mls.forget_room(&joined_room)?;
            return Err(ClientError::UnexpectedResponse(
                "the hub's group info is for another room",
            ));
        }
        let commit = request.commit.as_slice().to_vec();
        if let Err(e) = self.api.submit(room, &Event::DsCommit(request)).await {
            self.mls.forget_room(room)?;
            return Err(e);
        }
        self.store.mark_submitted(&commit)?;
        self.store.note_room(room)?;
        // The group's RoomState lags after an external commit (it cannot carry a
        // GroupContextExtensions proposal): keep the hub's.
        match self.api.room_state(room).await {
            Ok(state) => self.store.set_state(&state)?,
            Err(_) => {
                let state = self.mls.room_state(room)?;
                self.store.set_state(&state)?;
            }
        }
        Ok(self.mls.epoch(room)?)
    }

    /// Send a message (text, reply, edit or reaction) with `mimi-content`.
    pub async fn send(
        &mut self,
        room: &RoomId,
        action: &Compose,
    ) -> Result<StoredMessage, ClientError> {
        let (body, stored) =
            messages::compose(&self.config.user_id, room, action, messages::fresh_salt())?;
        let mut stale_epochs = 0;
        loop {
            let epoch = self.in_group(room).await?;
            self.commit_pending(room, epoch).await?;
            let ciphertext = self.mls.encrypt(room, &body)?;
            let request = SendMessageRequest {
                application_message: MlsBytes::new(ciphertext.clone())?,
            };
            match self.api.submit(room, &Event::DsSendMessage(request)).await {
                // A commit (another member's, or a joiner's external commit) was accepted
                // between this client's sync and its message: catch up and encrypt the
                // same content again in the new epoch.
                Err(ClientError::Refused(e))
                    if e.code == ErrorCode::StaleEpoch && stale_epochs < STALE_EPOCH_RETRIES =>
                {
                    stale_epochs += 1;
                }
                Err(e) => return Err(e),
                Ok(_) => {
                    self.store.mark_submitted(&ciphertext)?;
                    self.store.add_message(room, stored.clone())?;
                    return Ok(stored);
                }
            }
        }
    }

    /// Resolve a message ID (full hex or unique prefix) in the room's log.
    pub fn find_message(
        &self,
        room: &RoomId,
        prefix: &str,
    ) -> Result<mimi_content::MessageId, ClientError> {
        self.store.find_message(room, prefix)
    }

    /// The rooms this client knows, with its group's epoch in each (if in it).
    pub fn rooms(&mut self) -> Result<Vec<(RoomId, Option<u64>)>, ClientError> {
        let rooms: Vec<RoomId> = self.store.rooms().map(|(r, _)| r.clone()).collect();
        rooms
            .into_iter()
            .map(|r| Ok((r.clone(), group_epoch(&mut self.mls, &r)?)))
            .collect()
    }

    /// A room's participants, notes and messages.
    pub fn room_view(&mut self, room: &RoomId) -> Result<RoomView, ClientError> {
        let epoch = group_epoch(&mut self.mls, room)?;
        let log = self.store.room(room).cloned().unwrap_or_default();
        let state = match (log.state, epoch) {
            (Some(s), _) => Some(s),
            (None, Some(_)) => Some(self.mls.room_state(room)?),
            (None, None) => None,
        };
        Ok(RoomView {
            room: room.clone(),
            epoch,
            state,
            notes: log.notes,
            messages: log.messages,
        })
    }
}

/// How many times a message refused for a stale epoch is encrypted again after a sync: a
/// commit can land between the sync and the message, rarely twice in a row.
///
/// Rule CL-SEND-1 (docs/protocol-coverage.md).
pub const STALE_EPOCH_RETRIES: u32 = 3;

/// How many times a commit whose answer was lost is sent again: the hub recognises the
/// resend and answers it as the first (HUB-ONCE-1), so the client learns whether it was
/// applied.
pub const COMMIT_RESENDS: usize = 2;

/// Rule CL-ONCE-1 (docs/protocol-coverage.md): whether a failed request may have been
/// applied by the hub though no answer says so: the exchange broke, or a gateway or the
/// provider answered "unavailable" (502, 503, 504) in place of the hub's answer.
pub fn answer_lost(e: &ClientError) -> bool {
    match e {
        ClientError::Http(_) => true,
        ClientError::Api { status, .. } | ClientError::Status { status, .. } => {
            matches!(status, 502..=504)
        }
        _ => false,
    }
}
