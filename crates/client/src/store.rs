//! The local room log: an append-only JSON-lines file (`rooms.jsonl`) with the rooms this
//! client knows, their last known room state, participation notes, the decrypted messages
//! and the hashes of the MLS messages this client submitted. It is replayed into memory on
//! open, so `mimi` can show rooms and messages after a restart.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use mimi_codec::{ClientId, RoomId, RoomState, UserId, Wire};
use mimi_content::MessageId;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ClientError;

/// The name of the room log in a client's directory.
pub const LOG_FILE: &str = "rooms.jsonl";

/// Longest line the log reader accepts (a room state of many participants fits).
pub const MAX_LOG_LINE: usize = 16 * 1024 * 1024;

pub(crate) use mimi_client_api::encoding::as_string;

/// Write a file atomically: a temporary sibling (owner-only permissions), synced, then
/// renamed over the target.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), ClientError> {
    let tmp = path.with_extension("tmp");
    let mut file = crate::folder::private_file_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(ClientError::io(&tmp))?;
    file.write_all(bytes).map_err(ClientError::io(&tmp))?;
    file.sync_all().map_err(ClientError::io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(ClientError::io(path))
}

/// A message ID as lowercase hex (64 digits).
pub fn message_id_hex(id: &MessageId) -> String {
    hex::encode(id.as_bytes())
}

/// What a stored message does (the content reader's `MessageKind`, with IDs as hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StoredKind {
    /// New content (possibly a reply).
    Message,
    /// Replaces the text of `original`.
    Edit {
        /// The edited message.
        original: String,
    },
    /// Retracts `original`.
    Delete {
        /// The deleted message.
        original: String,
    },
    /// A reaction to `target`.
    Reaction {
        /// The message reacted to.
        target: Option<String>,
    },
    /// Withdraws the reaction sent in message `reaction`.
    Unreact {
        /// The message that carried the reaction.
        reaction: String,
    },
}

/// A decrypted (or sent) message as the log keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMessage {
    /// The message ID, hex.
    pub id: String,
    /// The sending user (authenticated by MLS).
    #[serde(with = "as_string")]
    pub sender: UserId,
    /// The room history position of the `ds.send_message` event (`None`: sent by this
    /// client, not yet seen in the inbox).
    pub sequence: Option<u64>,
    /// What it does.
    #[serde(flatten)]
    pub kind: StoredKind,
    /// The text to show, if any.
    pub text: Option<String>,
    /// The message replied to, hex.
    pub in_reply_to: Option<String>,
    /// Text reactions.
    pub reactions: Vec<String>,
}

/// One line of the log.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
enum Record {
    /// A room this client knows of.
    Room {
        #[serde(with = "as_string")]
        room: RoomId,
    },
    /// The room's last known state (TLS-encoded RoomState, base64).
    State {
        #[serde(with = "as_string")]
        room: RoomId,
        state: String,
    },
    /// A participation note (an `m.room.user.unsigned` event, a commit's user events).
    Note {
        #[serde(with = "as_string")]
        room: RoomId,
        sequence: u64,
        text: String,
    },
    /// A message.
    Message {
        #[serde(with = "as_string")]
        room: RoomId,
        message: StoredMessage,
    },
    /// A Remove proposal received in `epoch` (the next commit includes it by reference).
    PendingRemove {
        #[serde(with = "as_string")]
        room: RoomId,
        epoch: u64,
        #[serde(with = "as_string")]
        client: ClientId,
    },
    /// The SHA-256 of an MLS message this client submitted (hex).
    Submitted { hash: String },
}

/// What the log knows about one room.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomLog {
    /// The last room state seen (from the group, the provider or an `m.room.info`).
    pub state: Option<RoomState>,
    /// Participation notes, in order: (sequence, text).
    pub notes: Vec<(u64, String)>,
    /// Messages, in order of arrival.
    pub messages: Vec<StoredMessage>,
    /// Remove proposals received, by epoch.
    pending_removes: BTreeMap<u64, BTreeSet<ClientId>>,
}

impl RoomLog {
    /// The clients whose Remove proposals were received in `epoch`.
    pub fn pending_removes(&self, epoch: u64) -> BTreeSet<ClientId> {
        self.pending_removes
            .get(&epoch)
            .cloned()
            .unwrap_or_default()
    }
}

/// The room log, in memory and on disk.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    file: File,
    rooms: BTreeMap<RoomId, RoomLog>,
    submitted: HashSet<[u8; 32]>,
}

fn corrupt(path: &Path, what: &'static str) -> ClientError {
    ClientError::CorruptState {
        path: path.to_owned(),
        what,
    }
}

fn hash(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

impl Store {
    /// Open (or create) the log in `dir` and replay it.
    pub fn open(dir: &Path) -> Result<Self, ClientError> {
        let path = dir.join(LOG_FILE);
        let file = crate::folder::private_file_options()
            .create(true)
            .append(true)
            .read(true)
            .open(&path)
            .map_err(ClientError::io(&path))?;
        let mut store = Store {
            path: path.clone(),
            file,
            rooms: BTreeMap::new(),
            submitted: HashSet::new(),
        };
        let reader = BufReader::new(File::open(&path).map_err(ClientError::io(&path))?);
        for line in reader.split(b'\n') {
            let line = line.map_err(ClientError::io(&path))?;
            if line.len() > MAX_LOG_LINE {
                return Err(corrupt(&path, "line over the length limit"));
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let record: Record =
                serde_json::from_slice(&line).map_err(|source| ClientError::StateFile {
                    path: path.clone(),
                    source,
                })?;
            store.apply(record)?;
        }
        Ok(store)
    }

    fn apply(&mut self, record: Record) -> Result<(), ClientError> {
        match record {
            Record::Room { room } => {
                self.rooms.entry(room).or_default();
            }
            Record::State { room, state } => {
                let bytes = B64
                    .decode(state)
                    .map_err(|_| corrupt(&self.path, "room state is not base64"))?;
                let state = RoomState::decode(&bytes)
                    .map_err(|_| corrupt(&self.path, "room state does not decode"))?;
                self.rooms.entry(room).or_default().state = Some(state);
            }
            Record::Note {
                room,
                sequence,
                text,
            } => self
                .rooms
                .entry(room)
                .or_default()
                .notes
                .push((sequence, text)),
            Record::Message { room, message } => {
                let log = self.rooms.entry(room).or_default();
                // A message sent here and later seen in the inbox: keep one, with its
                // sequence.
                match log.messages.iter_mut().find(|m| m.id == message.id) {
                    Some(existing) => existing.sequence = existing.sequence.or(message.sequence),
                    None => log.messages.push(message),
                }
            }
            Record::PendingRemove {
                room,
                epoch,
                client,
            } => {
                let log = self.rooms.entry(room).or_default();
                // Only the current epoch's matter: drop older ones.
                log.pending_removes.retain(|e, _| *e >= epoch);
                log.pending_removes.entry(epoch).or_default().insert(client);
            }
            Record::Submitted { hash } => {
                let bytes = hex::decode(hash)
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .ok_or_else(|| corrupt(&self.path, "submitted hash is not 32 hex bytes"))?;
                self.submitted.insert(bytes);
            }
        }
        Ok(())
    }

    fn append(&mut self, record: Record) -> Result<(), ClientError> {
        let mut line = serde_json::to_vec(&record).map_err(|source| ClientError::StateFile {
            path: self.path.clone(),
            source,
        })?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .and_then(|()| self.file.sync_data())
            .map_err(ClientError::io(&self.path))?;
        self.apply(record)
    }

    /// The rooms this client knows, in room ID order.
    pub fn rooms(&self) -> impl Iterator<Item = (&RoomId, &RoomLog)> {
        self.rooms.iter()
    }

    /// One room's log.
    pub fn room(&self, room: &RoomId) -> Option<&RoomLog> {
        self.rooms.get(room)
    }

    /// Note a room (idempotent).
    pub fn note_room(&mut self, room: &RoomId) -> Result<(), ClientError> {
        if self.rooms.contains_key(room) {
            return Ok(());
        }
        self.append(Record::Room { room: room.clone() })
    }

    /// Record the room's latest known state (skipped when unchanged).
    pub fn set_state(&mut self, state: &RoomState) -> Result<(), ClientError> {
        let room = state.room_id.clone();
        if self.rooms.get(&room).and_then(|r| r.state.as_ref()) == Some(state) {
            return Ok(());
        }
        let encoded = B64.encode(state.encode()?);
        self.append(Record::State {
            room,
            state: encoded,
        })
    }

    /// Record a participation note.
    pub fn add_note(
        &mut self,
        room: &RoomId,
        sequence: u64,
        text: String,
    ) -> Result<(), ClientError> {
        self.append(Record::Note {
            room: room.clone(),
            sequence,
            text,
        })
    }

    /// Record a message (a second record with the same ID only fills in its sequence).
    pub fn add_message(
        &mut self,
        room: &RoomId,
        message: StoredMessage,
    ) -> Result<(), ClientError> {
        self.append(Record::Message {
            room: room.clone(),
            message,
        })
    }

    /// Record a Remove proposal received in `epoch`.
    pub fn add_pending_remove(
        &mut self,
        room: &RoomId,
        epoch: u64,
        client: &ClientId,
    ) -> Result<(), ClientError> {
        self.append(Record::PendingRemove {
            room: room.clone(),
            epoch,
            client: client.clone(),
        })
    }

    /// Record an MLS message this client submitted, so that its fan-out is recognised.
    pub fn mark_submitted(&mut self, mls_message: &[u8]) -> Result<(), ClientError> {
        let h = hash(mls_message);
        if self.submitted.contains(&h) {
            return Ok(());
        }
        self.append(Record::Submitted {
            hash: hex::encode(h),
        })
    }

    /// Whether this client submitted the MLS message.
    pub fn is_submitted(&self, mls_message: &[u8]) -> bool {
        self.submitted.contains(&hash(mls_message))
    }

    /// Find a message of the room by full hex ID or unique prefix.
    pub fn find_message(&self, room: &RoomId, prefix: &str) -> Result<MessageId, ClientError> {
        let prefix = prefix.to_ascii_lowercase();
        let mut ids: Vec<&str> = self
            .rooms
            .get(room)
            .map(|r| {
                r.messages
                    .iter()
                    .map(|m| m.id.as_str())
                    .filter(|id| !prefix.is_empty() && id.starts_with(&prefix))
                    .collect()
            })
            .unwrap_or_default();
        ids.dedup();
        match ids.as_slice() {
            [one] => {
                let bytes =
                    hex::decode(one).map_err(|_| ClientError::UnknownMessage(prefix.clone()))?;
                Ok(MessageId::try_from(bytes.as_slice())?)
            }
            [] => Err(ClientError::UnknownMessage(prefix)),
            _ => Err(ClientError::AmbiguousMessage(prefix)),
        }
    }
}
