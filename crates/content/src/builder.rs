//! Builders for what users do: text, replies, edits, deletes, reactions, mentions,
//! expiring messages, attachments and multipart messages.

use crate::content::*;
use crate::error::Error;
use crate::message_id::MessageId;

/// Builds a [`MimiContent`] for a user action.
///
/// The salt must be fresh and cryptographically random for every message (draft
/// section 9.2); it is a parameter so that callers own the randomness source and tests
/// can reproduce the draft's examples.
#[derive(Debug, Clone)]
pub struct ContentBuilder {
    salt: Salt,
    replaces: Option<MessageId>,
    topic_id: Vec<u8>,
    expires: Option<Expiration>,
    in_reply_to: Option<MessageId>,
    extensions: Extensions,
    body: Option<NestedPart>,
}

impl ContentBuilder {
    /// Starts a message with the given salt.
    pub fn new(salt: Salt) -> Self {
        ContentBuilder {
            salt,
            replaces: None,
            topic_id: Vec::new(),
            expires: None,
            in_reply_to: None,
            extensions: Extensions::default(),
            body: None,
        }
    }

    /// Sets the sender URI (extension 1).
    pub fn sender(mut self, uri: impl Into<String>) -> Self {
        self.extensions.sender_uri = Some(uri.into());
        self
    }

    /// Sets the room URI (extension 2).
    pub fn room(mut self, uri: impl Into<String>) -> Self {
        self.extensions.room_uri = Some(uri.into());
        self
    }

    /// Adds another extension; errors surface from [`ContentBuilder::build`].
    pub fn extension(mut self, key: ExtensionKey, value: crate::Value) -> Result<Self, Error> {
        self.extensions.insert(key, value)?;
        Ok(self)
    }

    /// Puts the message in a topic / thread.
    pub fn topic(mut self, topic_id: impl Into<Vec<u8>>) -> Self {
        self.topic_id = topic_id.into();
        self
    }

    /// Makes the message expire ([`Expiration::Absolute`] or [`Expiration::Relative`]).
    pub fn expires(mut self, expiration: Expiration) -> Self {
        self.expires = Some(expiration);
        self
    }

    /// Marks the message as a reply to `target`.
    pub fn reply_to(mut self, target: MessageId) -> Self {
        self.in_reply_to = Some(target);
        self
    }

    /// Sets any body.
    pub fn body(mut self, body: NestedPart) -> Self {
        self.body = Some(body);
        self
    }

    /// A plain text body (`text/plain;charset=utf-8`, disposition render).
    pub fn plain_text(self, text: &str) -> Self {
        self.body(NestedPart::single(
            Disposition::Render,
            CONTENT_TYPE_PLAIN,
            text,
        ))
    }

    /// A rich text body in GFM-MIMI Markdown (disposition render).
    pub fn markdown(self, text: &str) -> Self {
        self.body(NestedPart::single(
            Disposition::Render,
            CONTENT_TYPE_MARKDOWN,
            text,
        ))
    }

    /// A rich text body in HTML (disposition render).
    pub fn html(self, text: &str) -> Self {
        self.body(NestedPart::single(
            Disposition::Render,
            CONTENT_TYPE_HTML,
            text,
        ))
    }

    /// Edits `original` (the ID of the first version of the message) with a new body.
    pub fn edit(mut self, original: MessageId, new_body: NestedPart) -> Self {
        self.replaces = Some(original);
        self.body(new_body)
    }

    /// Deletes (retracts) `original`: `replaces` plus an empty body.
    pub fn delete(mut self, original: MessageId) -> Self {
        self.replaces = Some(original);
        self.body(NestedPart::null(Disposition::Render))
    }

    /// Reacts to `target` with a text reaction such as an emoji.
    pub fn reaction(mut self, target: MessageId, reaction: &str) -> Self {
        self.in_reply_to = Some(target);
        self.body(NestedPart::single(
            Disposition::Reaction,
            CONTENT_TYPE_PLAIN,
            reaction,
        ))
    }

    /// Reacts to `target` with several independent text reactions (a processAll
    /// MultiPart of reaction parts; a single reaction falls back to [`Self::reaction`]).
    pub fn reactions(mut self, target: MessageId, reactions: &[&str]) -> Result<Self, Error> {
        if let [one] = reactions {
            return Ok(self.reaction(target, one));
        }
        let parts = reactions
            .iter()
            .map(|r| NestedPart::single(Disposition::Reaction, CONTENT_TYPE_PLAIN, *r))
            .collect();
        self.in_reply_to = Some(target);
        Ok(self.body(NestedPart::multi(
            Disposition::Reaction,
            PartSemantics::ProcessAll,
            parts,
        )?))
    }

    /// Removes the reaction sent in message `reaction`, which reacted to `reacted_to`.
    pub fn unreact(mut self, reaction: MessageId, reacted_to: Option<MessageId>) -> Self {
        self.replaces = Some(reaction);
        self.in_reply_to = reacted_to;
        self.body(NestedPart::null(Disposition::Reaction))
    }

    /// Sends external content as an attachment (disposition attachment).
    pub fn attachment(self, part: ExternalPart, language: &str) -> Self {
        self.body(NestedPart::external(Disposition::Attachment, part).with_language(language))
    }

    /// A multipart body.
    pub fn multipart(
        self,
        disposition: Disposition,
        semantics: PartSemantics,
        parts: Vec<NestedPart>,
    ) -> Result<Self, Error> {
        Ok(self.body(NestedPart::multi(disposition, semantics, parts)?))
    }

    /// Finishes the message; fails without a body or if any limit is exceeded.
    pub fn build(self) -> Result<MimiContent, Error> {
        let content = MimiContent {
            salt: self.salt,
            replaces: self.replaces,
            topic_id: self.topic_id,
            expires: self.expires,
            in_reply_to: self.in_reply_to,
            extensions: self.extensions,
            body: self.body.ok_or(Error::MissingBody)?,
        };
        content.validate()?;
        Ok(content)
    }
}

/// A Markdown mention of a user or room: `[display](uri)`, e.g.
/// `[@Alice Smith](mimi://example.com/u/alice-smith)`.
///
/// Square brackets and backslashes in `display` are escaped, and angle brackets
/// are replaced as GFM-MIMI's "No HTML" rule requires.
pub fn markdown_mention(display: &str, uri: &str) -> String {
    let mut out = String::with_capacity(display.len() + uri.len() + 4);
    out.push('[');
    for c in display.chars() {
        match c {
            '[' | ']' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            _ => out.push(c),
        }
    }
    out.push_str("](");
    for c in uri.chars() {
        match c {
            '(' => out.push_str("%28"),
            ')' => out.push_str("%29"),
            ' ' => out.push_str("%20"),
            _ => out.push(c),
        }
    }
    out.push(')');
    out
}
