//! Turns a received [`MimiContent`] back into the user-level concepts the builders create.

use crate::content::*;
use crate::message_id::MessageId;

/// What a received message does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// New content: text, rich text, attachment or multipart (possibly a reply).
    Message,
    /// Replaces the content of `original`.
    Edit {
        /// ID of the first version of the edited message.
        original: MessageId,
    },
    /// Retracts `original`.
    Delete {
        /// ID of the deleted message.
        original: MessageId,
    },
    /// A reaction to `target`.
    Reaction {
        /// The message reacted to, if given.
        target: Option<MessageId>,
    },
    /// Removes the reaction sent in message `reaction`.
    Unreact {
        /// The message that carried the reaction.
        reaction: MessageId,
    },
}

/// A textual body part selected for display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextBody<'a> {
    /// Its media type.
    pub content_type: &'a str,
    /// The text.
    pub text: &'a str,
    /// Its language tag(s), possibly empty.
    pub language: &'a str,
    /// Its implied part index.
    pub part_index: usize,
}

/// A mention of a user or room found in a text body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mention {
    /// The display text the sender suggested (a rendering hint only).
    pub display: String,
    /// The mentioned URI.
    pub uri: String,
}

/// The user-level view of a received message.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadMessage<'a> {
    /// What the message does.
    pub kind: MessageKind,
    /// Sender URI from the extensions, if present.
    pub sender_uri: Option<&'a str>,
    /// Room URI from the extensions, if present.
    pub room_uri: Option<&'a str>,
    /// The message replied or reacted to.
    pub in_reply_to: Option<MessageId>,
    /// Topic / thread ID (empty = none).
    pub topic_id: &'a [u8],
    /// Expiration hint.
    pub expires: Option<Expiration>,
    /// The text to show, chosen among alternatives (first understood alternative).
    pub text: Option<TextBody<'a>>,
    /// Text reactions (for [`MessageKind::Reaction`]).
    pub reactions: Vec<&'a str>,
    /// External parts (attachments, inline media, sessions) with their part index.
    pub external: Vec<(usize, Disposition, &'a ExternalPart)>,
    /// Mentions found in the selected text.
    pub mentions: Vec<Mention>,
}

fn is_text_type(ct: &str) -> bool {
    let base = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    matches!(base.as_str(), "text/plain" | "text/markdown" | "text/html")
}

/// Whether a part contains anything this reader understands.
fn understood(p: &NestedPart) -> bool {
    match &p.body {
        PartBody::Null => false,
        PartBody::Single(s) => {
            is_text_type(&s.content_type) && std::str::from_utf8(&s.content).is_ok()
        }
        PartBody::External(_) => true,
        PartBody::Multi(m) => m.parts.iter().any(understood),
    }
}

/// Parts to process after resolving chooseOne alternatives (first understood one).
fn selected<'a>(p: &'a NestedPart, out: &mut Vec<&'a NestedPart>) {
    match &p.body {
        PartBody::Multi(m) if m.semantics == PartSemantics::ChooseOne => {
            if let Some(choice) = m.parts.iter().find(|c| understood(c)).or(m.parts.first()) {
                selected(choice, out);
            }
        }
        PartBody::Multi(m) => m.parts.iter().for_each(|c| selected(c, out)),
        _ => out.push(p),
    }
}

/// Interprets a received message.
pub fn read(content: &MimiContent) -> ReadMessage<'_> {
    let body = &content.body;
    let kind = match (content.replaces, &body.body) {
        (Some(r), PartBody::Null) if body.disposition == Disposition::Reaction => {
            MessageKind::Unreact { reaction: r }
        }
        (Some(original), PartBody::Null) => MessageKind::Delete { original },
        (Some(original), _) => MessageKind::Edit { original },
        (None, _) if body.disposition == Disposition::Reaction => MessageKind::Reaction {
            target: content.in_reply_to,
        },
        (None, _) => MessageKind::Message,
    };
    let all = body.parts_depth_first();
    let index = |p: &NestedPart| all.iter().position(|q| std::ptr::eq(*q, p)).unwrap_or(0);
    let mut leaves = Vec::new();
    selected(body, &mut leaves);
    let mut text = None;
    let mut reactions = Vec::new();
    let mut external = Vec::new();
    for leaf in leaves {
        match &leaf.body {
            PartBody::Single(s) if is_text_type(&s.content_type) => {
                let Ok(t) = std::str::from_utf8(&s.content) else {
                    continue;
                };
                if leaf.disposition == Disposition::Reaction {
                    reactions.push(t);
                } else if text.is_none() {
                    text = Some(TextBody {
                        content_type: &s.content_type,
                        text: t,
                        language: &leaf.language,
                        part_index: index(leaf),
                    });
                }
            }
            PartBody::External(x) => external.push((index(leaf), leaf.disposition, x)),
            _ => {}
        }
    }
    let mentions = text
        .map(|t| extract_mentions(t.content_type, t.text))
        .unwrap_or_default();
    ReadMessage {
        kind,
        sender_uri: content.extensions.sender_uri.as_deref(),
        room_uri: content.extensions.room_uri.as_deref(),
        in_reply_to: content.in_reply_to,
        topic_id: &content.topic_id,
        expires: content.expires,
        text,
        reactions,
        external,
        mentions,
    }
}

fn is_mention_uri(uri: &str) -> bool {
    let lower = uri.to_ascii_lowercase();
    lower.starts_with("mimi:") || lower.starts_with("im:")
}

/// Finds links to `mimi:` or `im:` URIs in Markdown (`[text](uri)`) or HTML
/// (`<a href="uri">text</a>`) text. Other content types yield no mentions.
pub fn extract_mentions(content_type: &str, text: &str) -> Vec<Mention> {
    let base = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match base.as_str() {
        "text/markdown" => markdown_links(text),
        "text/html" => html_links(text),
        _ => Vec::new(),
    }
    .into_iter()
    .filter(|m| is_mention_uri(&m.uri))
    .collect()
}

fn markdown_links(text: &str) -> Vec<Mention> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        // Display text up to the matching unescaped ']'.
        let mut display = String::new();
        let mut end = None;
        let mut chars = after.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        display.push(n);
                    }
                }
                ']' => {
                    end = Some(i);
                    break;
                }
                '[' => break,
                _ => display.push(c),
            }
        }
        let Some(close) = end else {
            rest = after;
            continue;
        };
        let tail = &after[close + 1..];
        if let Some(target) = tail.strip_prefix('(')
            && let Some(paren) = target.find(')')
        {
            out.push(Mention {
                display,
                uri: target[..paren].trim().to_owned(),
            });
            rest = &target[paren + 1..];
        } else {
            rest = tail;
        }
    }
    out
}

fn html_links(text: &str) -> Vec<Mention> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("<a ") {
        let tag = &rest[start..];
        let Some(tag_end) = tag.find('>') else { break };
        let attrs = &tag[..tag_end];
        let after = &tag[tag_end + 1..];
        let Some(close) = after.find("</a>") else {
            break;
        };
        if let Some(h) = attrs.find("href=") {
            let v = &attrs[h + 5..];
            if let Some(q) = v.chars().next().filter(|c| *c == '"' || *c == '\'')
                && let Some(len) = v[1..].find(q)
            {
                out.push(Mention {
                    display: after[..close].to_owned(),
                    uri: v[1..1 + len].to_owned(),
                });
            }
        }
        rest = &after[close + 4..];
    }
    out
}

/// The content ID URI referring to a part index: `cid:<index>@local.invalid`.
pub fn cid_uri(part_index: usize) -> String {
    format!("cid:{part_index}@local.invalid")
}

/// Parses `cid:<index>@local.invalid` back into a part index.
pub fn parse_cid_uri(uri: &str) -> Option<usize> {
    let digits = uri.strip_prefix("cid:")?.strip_suffix("@local.invalid")?;
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || (digits.len() > 1 && digits.starts_with('0'))
    {
        return None;
    }
    digits.parse().ok()
}
