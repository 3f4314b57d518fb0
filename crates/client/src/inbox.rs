//! Processing the inbox, one fully-formed event at a time, without I/O: the caller fetches
//! `GET /v1/inbox` and hands each decoded `MIMIMessage` to [`process`].
//!
//! | event | what happens |
//! |---|---|
//! | `ds.create_group`, `m.room.info` | the room is noted (with its state) |
//! | `m.room.user.unsigned` | a participation note |
//! | `m.room.user`, `ds.proposal` | each MLS proposal is processed and stored for the next commit |
//! | `ds.commit` | not in the group: join from a Welcome addressed to this client; in the group: process and merge |
//! | `ds.send_message` | decrypted, read with `mimi-content`, stored in the log |
//!
//! Skipped without error: this client's own submissions (recognised by hash; commits were
//! merged when the hub accepted them, and a sender cannot decrypt its own messages), MLS
//! messages of an epoch the group has left, and MLS messages of rooms whose group this
//! client is not in. A message that fails MLS or content checks is reported as
//! [`Outcome::Failed`] and the inbox moves on; only local storage failures stop it.

use mimi_codec::{
    Event, MessageBody, MimiMessage, ParticipationState, ParticipationStateChange as Change,
    RoomId, RoomState, Sender, UserEvent,
};
use mimi_e2e::{E2eError, MessageSender, MlsClient, Processed, ProposalSummary};

use crate::error::ClientError;
use crate::messages;
use crate::peek::epoch_of;
use crate::store::{Store, StoredMessage};

/// Why an inbox item was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// Not a fully-formed event.
    NotFanout,
    /// This client submitted it.
    Own,
    /// Its epoch is before the group's current epoch.
    PastEpoch {
        /// The message's epoch.
        message: u64,
        /// The group's epoch.
        group: u64,
    },
    /// This client is not in the room's group (and no Welcome is for it).
    NotInGroup,
    /// A request that is not room history.
    NotHistory,
}

/// What processing one inbox item did.
#[derive(Debug)]
pub enum Outcome {
    /// The room was noted (`ds.create_group`, `m.room.info`).
    RoomNoted,
    /// A participation change without MLS (`m.room.user.unsigned`).
    Participation(UserEvent),
    /// Proposals were stored for the next commit.
    ProposalsStored(usize),
    /// This client joined the room from a Welcome.
    Joined {
        /// The group's epoch.
        epoch: u64,
    },
    /// A commit was merged.
    CommitMerged {
        /// The new epoch.
        epoch: u64,
        /// Whether it removed this client.
        self_removed: bool,
    },
    /// A message was decrypted and stored.
    Message(StoredMessage),
    /// Nothing to do.
    Skipped(Skip),
    /// The item failed MLS or content checks; the inbox moves on.
    Failed(ClientError),
}

/// The group's epoch, or `None` when this client has no active group for the room.
pub fn group_epoch(mls: &mut MlsClient, room: &RoomId) -> Result<Option<u64>, ClientError> {
    match mls.is_active(room) {
        Ok(true) => Ok(Some(mls.epoch(room)?)),
        Ok(false) | Err(E2eError::UnknownRoom(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Per-item MLS failures are outcomes; storage failures stop the inbox.
fn failed(e: E2eError) -> Result<Outcome, ClientError> {
    match e {
        E2eError::Storage(_) | E2eError::Io(_) => Err(e.into()),
        e => Ok(Outcome::Failed(e.into())),
    }
}

/// A human-readable participation change by `sender`.
pub fn describe(sender: &Sender, event: &UserEvent) -> String {
    let target = &event.target;
    let by_self = matches!(sender, Sender::User(u) if u == target);
    let role = event
        .role
        .as_ref()
        .map(|r| format!(" as {r}"))
        .unwrap_or_default();
    match event.change {
        Change::Join if by_self => format!("{target} joined"),
        Change::Join => format!("{sender} added {target}{role}"),
        Change::Invite => format!("{sender} invited {target}{role}"),
        Change::Leave if by_self => format!("{target} left"),
        Change::Leave => format!("{sender} removed {target} (kick, unban or refusal)"),
        Change::Ban => format!("{sender} banned {target}"),
        Change::Knock => format!("{target} knocked"),
        Change::SetRole => format!("{sender} set the role of {target}{role}"),
    }
}

fn state_name(state: ParticipationState) -> &'static str {
    match state {
        ParticipationState::Invite => "invited",
        ParticipationState::Join => "joined",
        ParticipationState::Ban => "banned",
        ParticipationState::Knock => "knocking",
    }
}

/// Where a commit left each target of its user events.
fn commit_note(epoch: u64, events: &[UserEvent], state: &RoomState) -> Option<String> {
    if events.is_empty() {
        return None;
    }
    let parts: Vec<String> = events
        .iter()
        .map(
            |e| match state.participants.iter().find(|p| p.user_id == e.target) {
                Some(p) => format!("{} is {} ({})", e.target, state_name(p.state), p.role),
                None => format!("{} is not in the room", e.target),
            },
        )
        .collect();
    Some(format!("epoch {epoch}: {}", parts.join(", ")))
}

/// Process one inbox item (see the module documentation).
pub fn process(
    mls: &mut MlsClient,
    store: &mut Store,
    message: &MimiMessage,
) -> Result<Outcome, ClientError> {
    let MessageBody::Fanout(fanout) = &message.body else {
        return Ok(Outcome::Skipped(Skip::NotFanout));
    };
    let room = &message.room_id;
    let sequence = fanout.sequence;
    store.note_room(room)?;
    match &fanout.event {
        Event::DsCreateGroup(_) => Ok(Outcome::RoomNoted),
        Event::RoomInfo(info) => {
            store.set_state(&info.room_state)?;
            Ok(Outcome::RoomNoted)
        }
        Event::RoomUserUnsigned(event) => {
            store.add_note(room, sequence, describe(&message.sender, event))?;
            apply_change(store, room, &message.sender, event)?;
            Ok(Outcome::Participation(event.clone()))
        }
        Event::RoomUser(bytes) => handshakes(
            mls,
            store,
            room,
            sequence,
            &message.sender,
            &[bytes.as_slice()],
        ),
        Event::DsProposal(request) => {
            let proposals: Vec<&[u8]> = request.proposals.iter().map(|p| p.as_slice()).collect();
            handshakes(mls, store, room, sequence, &message.sender, &proposals)
        }
        Event::DsCommit(request) => {
            let commit = request.commit.as_slice();
            if store.is_submitted(commit) {
                return Ok(Outcome::Skipped(Skip::Own));
            }
            let Some(epoch) = group_epoch(mls, room)? else {
                return join_from_welcomes(mls, store, room, sequence, request);
            };
            if let Some(skip) = past_epoch(commit, epoch) {
                return Ok(Outcome::Skipped(skip));
            }
            match mls.process(room, commit) {
                Ok(Processed::Commit(summary)) => {
                    // An external commit cannot carry the new room state (its group context
                    // lags behind the hub's): the state the joiner's unsigned join left,
                    // already applied, stays.
                    let external = matches!(summary.committer, MessageSender::NewMember(_));
                    let known = store.room(room).is_some_and(|r| r.state.is_some());
                    if !(external && known) {
                        store.set_state(&summary.room_state)?;
                    }
                    if let Some(note) =
                        commit_note(summary.epoch, &summary.user_events, &summary.room_state)
                    {
                        store.add_note(room, sequence, note)?;
                    }
                    if summary.self_removed {
                        store.add_note(room, sequence, "this client was removed".to_owned())?;
                        mls.forget_room(room)?;
                    }
                    Ok(Outcome::CommitMerged {
                        epoch: summary.epoch,
                        self_removed: summary.self_removed,
                    })
                }
                Ok(Processed::OwnCommit { epoch }) => Ok(Outcome::CommitMerged {
                    epoch,
                    self_removed: false,
                }),
                Ok(_) => Ok(Outcome::Failed(ClientError::UnexpectedResponse(
                    "a ds.commit that is not a commit",
                ))),
                Err(e) => failed(e),
            }
        }
        Event::DsSendMessage(request) => {
            let bytes = request.application_message.as_slice();
            if store.is_submitted(bytes) {
                return Ok(Outcome::Skipped(Skip::Own));
            }
            let Some(epoch) = group_epoch(mls, room)? else {
                return Ok(Outcome::Skipped(Skip::NotInGroup));
            };
            if let Some(skip) = past_epoch(bytes, epoch) {
                return Ok(Outcome::Skipped(skip));
            }
            match mls.process(room, bytes) {
                Ok(Processed::Application { sender, plaintext }) => {
                    match messages::receive(room, &sender.user(), &plaintext, Some(sequence)) {
                        Ok(stored) => {
                            store.add_message(room, stored.clone())?;
                            Ok(Outcome::Message(stored))
                        }
                        Err(e) => Ok(Outcome::Failed(e)),
                    }
                }
                Ok(Processed::OwnMessage) => Ok(Outcome::Skipped(Skip::Own)),
                Ok(_) => Ok(Outcome::Failed(ClientError::UnexpectedResponse(
                    "a ds.send_message that is not an application message",
                ))),
                Err(e) => failed(e),
            }
        }
        Event::DsFetchKeyPackages(_) | Event::DsFetchGroupInfo(_) => {
            Ok(Outcome::Skipped(Skip::NotHistory))
        }
    }
}

/// Apply a participation change the hub accepted (an unsigned event, a proposal) to the
/// room's last known state, with the signaling rules. A change that does not apply (the
/// known state is behind) leaves the state alone: the next commit or provider state brings
/// it.
fn apply_change(
    store: &mut Store,
    room: &RoomId,
    sender: &Sender,
    event: &UserEvent,
) -> Result<(), ClientError> {
    let Some(current) = store.room(room).and_then(|r| r.state.clone()) else {
        return Ok(());
    };
    let Ok(mut replica) = mimi_signaling::Room::from_room_state(&current) else {
        return Ok(());
    };
    if replica
        .accept_all(sender, std::slice::from_ref(event))
        .is_ok()
    {
        store.set_state(&replica.to_room_state())?;
    }
    Ok(())
}

fn past_epoch(message: &[u8], group: u64) -> Option<Skip> {
    epoch_of(message)
        .filter(|e| *e < group)
        .map(|message| Skip::PastEpoch { message, group })
}

fn handshakes(
    mls: &mut MlsClient,
    store: &mut Store,
    room: &RoomId,
    sequence: u64,
    sender: &Sender,
    proposals: &[&[u8]],
) -> Result<Outcome, ClientError> {
    let mut stored = 0;
    let mut outcome = None;
    for bytes in proposals {
        if store.is_submitted(bytes) {
            outcome.get_or_insert(Outcome::Skipped(Skip::Own));
            continue;
        }
        let Some(epoch) = group_epoch(mls, room)? else {
            outcome.get_or_insert(Outcome::Skipped(Skip::NotInGroup));
            continue;
        };
        if let Some(skip) = past_epoch(bytes, epoch) {
            outcome.get_or_insert(Outcome::Skipped(skip));
            continue;
        }
        match mls.process(room, bytes) {
            Ok(Processed::Proposal {
                sender: from,
                proposal,
            }) => {
                stored += 1;
                match proposal {
                    ProposalSummary::Remove(client) => {
                        store.add_pending_remove(room, epoch, &client)?;
                    }
                    ProposalSummary::UserEvent(event) => {
                        let who = match from {
                            MessageSender::Member(c) | MessageSender::NewMember(c) => {
                                Sender::User(c.user())
                            }
                            MessageSender::External(_) => sender.clone(),
                        };
                        store.add_note(room, sequence, describe(&who, &event))?;
                        apply_change(store, room, &who, &event)?;
                    }
                    ProposalSummary::Add(_) | ProposalSummary::Other => {}
                }
            }
            Ok(_) => {
                outcome.get_or_insert(Outcome::Failed(ClientError::UnexpectedResponse(
                    "a proposal event that carries no proposal",
                )));
            }
            Err(e) => {
                let f = failed(e)?;
                outcome.get_or_insert(f);
            }
        }
    }
    Ok(match outcome {
        Some(Outcome::Failed(e)) => Outcome::Failed(e),
        _ if stored > 0 => Outcome::ProposalsStored(stored),
        Some(o) => o,
        None => Outcome::ProposalsStored(0),
    })
}

/// Rule CL-WEL-1 (docs/protocol-coverage.md).
fn join_from_welcomes(
    mls: &mut MlsClient,
    store: &mut Store,
    room: &RoomId,
    sequence: u64,
    request: &mimi_codec::CommitRequest,
) -> Result<Outcome, ClientError> {
    for welcome in &request.welcomes {
        match mls.join_from_welcome(welcome.as_slice()) {
            Ok(joined) if joined == *room => {
                let state = mls.room_state(room)?;
                store.set_state(&state)?;
                let epoch = mls.epoch(room)?;
                store.add_note(room, sequence, format!("joined the group at epoch {epoch}"))?;
                return Ok(Outcome::Joined { epoch });
            }
            Ok(_) => {
                return Ok(Outcome::Failed(ClientError::UnexpectedResponse(
                    "a Welcome for another room than the event's",
                )));
            }
            Err(E2eError::NoMatchingKeyPackage) => continue,
            Err(e) => return failed(e),
        }
    }
    Ok(Outcome::Skipped(Skip::NotInGroup))
}
