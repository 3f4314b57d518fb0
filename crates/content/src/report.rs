//! Delivery and read reports (`MessageStatusReport`, `delivery-report.cddl` of the draft
//! repository; since -07 the format lives in draft-mahy-mimi-message-status).

use crate::cbor::{Decoder, Encoder};
use crate::content::read_message_id;
use crate::error::Error;
use crate::message_id::MessageId;
use crate::{MAX_MESSAGE_LEN, MAX_REPORT_ENTRIES};

/// The status of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageStatus {
    /// 0: delivered but not read (or marked unread).
    Unread,
    /// 1: delivered.
    Delivered,
    /// 2: read.
    Read,
    /// 3: expired.
    Expired,
    /// 4: deleted.
    Deleted,
    /// 5: hidden.
    Hidden,
    /// 6: error.
    Error,
    /// 7..=255: unknown. Construct through [`MessageStatus::from_u8`].
    Unknown(u8),
}

impl MessageStatus {
    /// Maps a status value.
    pub fn from_u8(v: u8) -> Self {
        match v {
            0 => MessageStatus::Unread,
            1 => MessageStatus::Delivered,
            2 => MessageStatus::Read,
            3 => MessageStatus::Expired,
            4 => MessageStatus::Deleted,
            5 => MessageStatus::Hidden,
            6 => MessageStatus::Error,
            v => MessageStatus::Unknown(v),
        }
    }

    /// The status value.
    pub fn to_u8(self) -> u8 {
        match self {
            MessageStatus::Unread => 0,
            MessageStatus::Delivered => 1,
            MessageStatus::Read => 2,
            MessageStatus::Expired => 3,
            MessageStatus::Deleted => 4,
            MessageStatus::Hidden => 5,
            MessageStatus::Error => 6,
            MessageStatus::Unknown(v) => v,
        }
    }
}

/// The status of one message in a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PerMessageStatus {
    /// The message reported on.
    pub message_id: MessageId,
    /// Its status.
    pub status: MessageStatus,
}

/// A report on several messages of the same room.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct MessageStatusReport {
    /// The per-message statuses, in order.
    pub statuses: Vec<PerMessageStatus>,
}

impl MessageStatusReport {
    /// A report giving every listed message the same status.
    pub fn uniform(ids: &[MessageId], status: MessageStatus) -> Self {
        MessageStatusReport {
            statuses: ids
                .iter()
                .map(|&message_id| PerMessageStatus { message_id, status })
                .collect(),
        }
    }

    /// A delivery report for the listed messages.
    pub fn delivered(ids: &[MessageId]) -> Self {
        Self::uniform(ids, MessageStatus::Delivered)
    }

    /// A read report (read receipt) for the listed messages.
    pub fn read(ids: &[MessageId]) -> Self {
        Self::uniform(ids, MessageStatus::Read)
    }

    /// Appends a status (builder style).
    pub fn with(mut self, message_id: MessageId, status: MessageStatus) -> Self {
        self.statuses.push(PerMessageStatus { message_id, status });
        self
    }

    /// The status reported for a message, if any (the last one wins).
    pub fn status_of(&self, id: &MessageId) -> Option<MessageStatus> {
        self.statuses
            .iter()
            .rev()
            .find(|s| &s.message_id == id)
            .map(|s| s.status)
    }

    /// Encodes the report deterministically.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        if self.statuses.len() > MAX_REPORT_ENTRIES {
            return Err(Error::LimitExceeded {
                field: "statuses",
                limit: MAX_REPORT_ENTRIES as u64,
                found: self.statuses.len() as u64,
            });
        }
        let mut e = Encoder::default();
        e.array(self.statuses.len());
        for s in &self.statuses {
            e.array(2);
            e.bytes(s.message_id.as_bytes());
            e.uint(u64::from(s.status.to_u8()));
        }
        Ok(e.finish())
    }

    /// Strictly decodes a report.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() > MAX_MESSAGE_LEN {
            return Err(Error::LimitExceeded {
                field: "MessageStatusReport",
                limit: MAX_MESSAGE_LEN as u64,
                found: bytes.len() as u64,
            });
        }
        let mut d = Decoder::new(bytes);
        let n = d.array("MessageStatusReport", MAX_REPORT_ENTRIES)?;
        let mut statuses = Vec::with_capacity(n);
        for _ in 0..n {
            d.array_exact("PerMessageStatus", 2)?;
            let message_id = read_message_id(&mut d, "messageId")?;
            let v = d.uint("status")?;
            let status =
                u8::try_from(v)
                    .map(MessageStatus::from_u8)
                    .map_err(|_| Error::OutOfRange {
                        field: "status",
                        value: v,
                    })?;
            statuses.push(PerMessageStatus { message_id, status });
        }
        d.finish()?;
        Ok(MessageStatusReport { statuses })
    }
}
