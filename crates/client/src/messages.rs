//! Message bodies with `mimi-content` (rule CL-CONTENT-1, docs/protocol-coverage.md): the
//! builders for what `mimi` sends, the reader for what it shows, and the MIMI URIs of users
//! and rooms that the message ID covers.
//!
//! The content's sender and room URIs are checked against what MLS authenticated (the
//! sender's client credential and the group): a message claiming another sender or room is
//! refused ([`ClientError::ForgedContent`]).

use mimi_codec::{RoomId, UserId};
use mimi_content::{ContentBuilder, MessageId, MessageKind, MimiContent, Salt, read};

use crate::api::percent_encode;
use crate::error::ClientError;
use crate::store::{StoredKind, StoredMessage, message_id_hex};

/// The MIMI URI of a user: `mimi://{server}/u/{localpart}`.
pub fn user_uri(user: &UserId) -> String {
    format!(
        "mimi://{}/u/{}",
        user.server(),
        percent_encode(user.localpart())
    )
}

/// The MIMI URI of a room: `mimi://{server}/r/{localpart}`.
pub fn room_uri(room: &RoomId) -> String {
    let id = room.as_str();
    let localpart = id
        .strip_prefix('!')
        .and_then(|rest| rest.split_once(':'))
        .map_or(id, |(local, _)| local);
    format!("mimi://{}/r/{}", room.server(), percent_encode(localpart))
}

/// What a user sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compose {
    /// A plain text message, possibly a reply.
    Text {
        /// The text.
        text: String,
        /// The message replied to.
        reply_to: Option<MessageId>,
    },
    /// A new text for an earlier message of the same sender.
    Edit {
        /// The first version of the edited message.
        original: MessageId,
        /// The new text.
        text: String,
    },
    /// A reaction.
    React {
        /// The message reacted to.
        target: MessageId,
        /// The reaction (an emoji).
        reaction: String,
    },
    /// Retracts an earlier message of the same sender.
    Delete {
        /// The first version of the deleted message.
        original: MessageId,
    },
    /// Withdraws a reaction this sender sent.
    Unreact {
        /// The message that carried the reaction.
        reaction: MessageId,
        /// The message it reacted to.
        reacted_to: Option<MessageId>,
    },
}

/// A fresh random salt (draft-ietf-mimi-content §9.2).
pub fn fresh_salt() -> Salt {
    Salt(rand::random())
}

/// Build the content of `action` by `me` in `room`: the encoded body and how the log
/// keeps it.
pub fn compose(
    me: &UserId,
    room: &RoomId,
    action: &Compose,
    salt: Salt,
) -> Result<(Vec<u8>, StoredMessage), ClientError> {
    let builder = ContentBuilder::new(salt)
        .sender(user_uri(me))
        .room(room_uri(room));
    let content = match action {
        Compose::Text { text, reply_to } => {
            let builder = builder.plain_text(text);
            match reply_to {
                Some(target) => builder.reply_to(*target),
                None => builder,
            }
        }
        Compose::Edit { original, text } => builder.edit(
            *original,
            mimi_content::NestedPart::single(
                mimi_content::Disposition::Render,
                mimi_content::CONTENT_TYPE_PLAIN,
                text.as_str(),
            ),
        ),
        Compose::React { target, reaction } => builder.reaction(*target, reaction),
        Compose::Delete { original } => builder.delete(*original),
        Compose::Unreact {
            reaction,
            reacted_to,
        } => builder.unreact(*reaction, *reacted_to),
    }
    .build()?;
    let bytes = content.encode()?;
    let stored = stored(&content, content.message_id()?, me.clone(), None);
    Ok((bytes, stored))
}

fn stored(
    content: &MimiContent,
    id: MessageId,
    sender: UserId,
    sequence: Option<u64>,
) -> StoredMessage {
    let view = read(content);
    let kind = match view.kind {
        MessageKind::Message => StoredKind::Message,
        MessageKind::Edit { original } => StoredKind::Edit {
            original: message_id_hex(&original),
        },
        MessageKind::Delete { original } => StoredKind::Delete {
            original: message_id_hex(&original),
        },
        MessageKind::Reaction { target } => StoredKind::Reaction {
            target: target.as_ref().map(message_id_hex),
        },
        MessageKind::Unreact { reaction } => StoredKind::Unreact {
            reaction: message_id_hex(&reaction),
        },
    };
    StoredMessage {
        id: message_id_hex(&id),
        sender,
        sequence,
        kind,
        text: view.text.map(|t| t.text.to_owned()),
        in_reply_to: match view.kind {
            MessageKind::Message => view.in_reply_to.as_ref().map(message_id_hex),
            _ => None,
        },
        reactions: view.reactions.iter().map(|r| (*r).to_owned()).collect(),
    }
}

/// Read a decrypted message body sent by `sender` (authenticated by MLS) in `room`.
pub fn receive(
    room: &RoomId,
    sender: &UserId,
    plaintext: &[u8],
    sequence: Option<u64>,
) -> Result<StoredMessage, ClientError> {
    let content = MimiContent::decode(plaintext)?;
    let sender_uri = user_uri(sender);
    let room_uri = room_uri(room);
    if content
        .extensions
        .sender_uri
        .as_deref()
        .is_some_and(|u| u != sender_uri)
        || content
            .extensions
            .room_uri
            .as_deref()
            .is_some_and(|u| u != room_uri)
    {
        return Err(ClientError::ForgedContent(sender.clone()));
    }
    let id = content.message_id_with(&sender_uri, &room_uri)?;
    Ok(stored(&content, id, sender.clone(), sequence))
}
