//! Rendering a room for people: participants with roles and states, participation notes,
//! and the messages with replies, edits, deletions and reactions shown as such.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use mimi_codec::ParticipationState;

use crate::client::RoomView;
use crate::store::{StoredKind, StoredMessage};

/// How many hex digits of a message ID are shown (any unique prefix is accepted back).
pub const SHORT_ID_LEN: usize = 8;

fn short(id: &str) -> &str {
    id.get(..SHORT_ID_LEN).unwrap_or(id)
}

fn state_name(state: ParticipationState) -> &'static str {
    match state {
        ParticipationState::Invite => "invited",
        ParticipationState::Join => "joined",
        ParticipationState::Ban => "banned",
        ParticipationState::Knock => "knocking",
    }
}

/// One message as shown: its latest text and what happened to it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Shown<'a> {
    message: &'a StoredMessage,
    text: Option<&'a str>,
    edited: bool,
    deleted: bool,
    reactions: BTreeMap<&'a str, Vec<&'a str>>,
}

/// Render a room (`mimi show`).
pub fn render_room(view: &RoomView) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Room {}", view.room);
    match view.epoch {
        Some(epoch) => {
            let _ = writeln!(out, "  this client is in the group (epoch {epoch})");
        }
        None => {
            let _ = writeln!(out, "  this client is not in the group");
        }
    }
    if let Some(state) = &view.state {
        let _ = writeln!(out, "  join rule: {:?}", state.policy.join_rule);
        let _ = writeln!(out, "Participants:");
        for p in &state.participants {
            let _ = writeln!(out, "  {}  {}  {}", p.user_id, p.role, state_name(p.state));
        }
    }
    if !view.notes.is_empty() {
        let _ = writeln!(out, "Events:");
        for (sequence, note) in &view.notes {
            let _ = writeln!(out, "  #{sequence} {note}");
        }
    }
    let _ = writeln!(out, "Messages:");
    for line in render_messages(&view.messages) {
        let _ = writeln!(out, "  {line}");
    }
    out
}

/// The message lines: each content message once, with its latest edit, deletion, reply
/// target and reactions (an edit or delete counts only from the original sender; a
/// withdrawn reaction is dropped).
pub fn render_messages(messages: &[StoredMessage]) -> Vec<String> {
    let by_id: BTreeMap<&str, &StoredMessage> =
        messages.iter().map(|m| (m.id.as_str(), m)).collect();
    let mut shown: Vec<Shown<'_>> = Vec::new();
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    for m in messages {
        if m.kind == StoredKind::Message {
            index.insert(m.id.as_str(), shown.len());
            shown.push(Shown {
                message: m,
                text: m.text.as_deref(),
                edited: false,
                deleted: false,
                reactions: BTreeMap::new(),
            });
        }
    }
    let withdrawn: Vec<&str> = messages
        .iter()
        .filter_map(|m| match &m.kind {
            StoredKind::Unreact { reaction } => by_id
                .get(reaction.as_str())
                .filter(|r| r.sender == m.sender)
                .map(|r| r.id.as_str()),
            _ => None,
        })
        .collect();
    for m in messages {
        match &m.kind {
            StoredKind::Edit { original } => {
                if let Some(s) = index.get(original.as_str()).and_then(|i| shown.get_mut(*i))
                    && s.message.sender == m.sender
                {
                    s.text = m.text.as_deref();
                    s.edited = true;
                }
            }
            StoredKind::Delete { original } => {
                if let Some(s) = index.get(original.as_str()).and_then(|i| shown.get_mut(*i))
                    && s.message.sender == m.sender
                {
                    s.text = None;
                    s.deleted = true;
                }
            }
            StoredKind::Reaction {
                target: Some(target),
            } if !withdrawn.contains(&m.id.as_str()) => {
                if let Some(s) = index.get(target.as_str()).and_then(|i| shown.get_mut(*i)) {
                    for r in &m.reactions {
                        s.reactions
                            .entry(r.as_str())
                            .or_default()
                            .push(m.sender.as_str());
                    }
                }
            }
            _ => {}
        }
    }
    let mut lines = Vec::new();
    for s in &shown {
        let m = s.message;
        let mut line = format!("[{}] {}", short(&m.id), m.sender);
        if let Some(target) = &m.in_reply_to {
            let quoted = by_id
                .get(target.as_str())
                .and_then(|t| t.text.as_deref())
                .map(|t| format!(" \"{t}\""))
                .unwrap_or_default();
            let _ = write!(line, " (reply to [{}]{quoted})", short(target));
        }
        match (s.deleted, s.text) {
            (true, _) => line.push_str(": (deleted)"),
            (false, Some(text)) => {
                let _ = write!(line, ": {text}");
                if s.edited {
                    line.push_str(" (edited)");
                }
            }
            (false, None) => line.push_str(": (no text)"),
        }
        lines.push(line);
        for (reaction, users) in &s.reactions {
            lines.push(format!("    {reaction} {}", users.join(", ")));
        }
    }
    lines
}
