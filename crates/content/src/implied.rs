//! Values a receiver derives rather than reads from the message
//! (`MessageDerivedValues`, draft section 4.6 and `implied.cddl`).

use crate::cbor::{Decoder, Encoder, Value};
use crate::content::read_message_id;
use crate::error::Error;
use crate::message_id::MessageId;
use crate::{MAX_MESSAGE_LEN, MAX_SHORT_STRING_LEN, MAX_URI_LEN};

/// CBOR tag of RFC 9581 extended time.
pub const TAG_EXTENDED_TIME: u64 = 1001;

/// The hub accepted timestamp.
#[derive(Debug, Clone, PartialEq)]
pub enum Timestamp {
    /// Milliseconds since the UNIX epoch.
    Millis(u64),
    /// RFC 9581 extended time (tag 1001) with its map entries.
    Extended(Vec<(Value, Value)>),
}

/// The derived values of a message.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageDerivedValues {
    /// The message ID.
    pub message_id: MessageId,
    /// When the hub accepted the message.
    pub hub_accepted_timestamp: Timestamp,
    /// The MLS group ID.
    pub mls_group_id: Vec<u8>,
    /// The sender's MLS leaf index.
    pub sender_leaf_index: u32,
    /// The sender's client URL.
    pub sender_client_url: String,
    /// The sender's user URL ("From").
    pub sender_user_url: String,
    /// The room URL ("To").
    pub room_url: String,
}

impl MessageDerivedValues {
    /// Encodes deterministically.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let mut e = Encoder::default();
        e.array(7);
        e.bytes(self.message_id.as_bytes());
        match &self.hub_accepted_timestamp {
            Timestamp::Millis(ms) => e.uint(*ms),
            Timestamp::Extended(entries) => {
                let v = Value::Tag(TAG_EXTENDED_TIME, Box::new(Value::Map(entries.clone())));
                v.validate(1)?;
                e.value(&v);
            }
        }
        e.bytes(&self.mls_group_id);
        e.uint(u64::from(self.sender_leaf_index));
        e.text(&self.sender_client_url);
        e.text(&self.sender_user_url);
        e.text(&self.room_url);
        Ok(e.finish())
    }

    /// Strictly decodes.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() > MAX_MESSAGE_LEN {
            return Err(Error::LimitExceeded {
                field: "MessageDerivedValues",
                limit: MAX_MESSAGE_LEN as u64,
                found: bytes.len() as u64,
            });
        }
        let mut d = Decoder::new(bytes);
        d.array_exact("MessageDerivedValues", 7)?;
        let message_id = read_message_id(&mut d, "messageId")?;
        let hub_accepted_timestamp = match d.value(1)? {
            Value::Unsigned(ms) => Timestamp::Millis(ms),
            Value::Tag(TAG_EXTENDED_TIME, inner) => match *inner {
                Value::Map(entries) => Timestamp::Extended(entries),
                _ => {
                    return Err(Error::UnexpectedType {
                        field: "hubAcceptedTimestamp",
                        expected: "map in tag 1001",
                    });
                }
            },
            _ => {
                return Err(Error::UnexpectedType {
                    field: "hubAcceptedTimestamp",
                    expected: "unsigned integer or tag 1001",
                });
            }
        };
        let mls_group_id = d.bytes("mlsGroupId", MAX_SHORT_STRING_LEN)?.to_vec();
        let leaf = d.uint("senderLeafIndex")?;
        let sender_leaf_index = u32::try_from(leaf).map_err(|_| Error::OutOfRange {
            field: "senderLeafIndex",
            value: leaf,
        })?;
        let sender_client_url = d.text("senderClientUrl", MAX_URI_LEN)?.to_owned();
        let sender_user_url = d.text("senderUserUrl", MAX_URI_LEN)?.to_owned();
        let room_url = d.text("roomUrl", MAX_URI_LEN)?.to_owned();
        d.finish()?;
        Ok(MessageDerivedValues {
            message_id,
            hub_accepted_timestamp,
            mls_group_id,
            sender_leaf_index,
            sender_client_url,
            sender_user_url,
            room_url,
        })
    }
}
