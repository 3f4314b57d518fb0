//! Abuse reports (draft-ietf-mimi-protocol-06 §5.9), both sides:
//!
//! - the room's hub: `POST /reportAbuse/{roomId}` ([`Provider::report_abuse06`]) checks every
//!   reported message's frank against its own keys, keeps the report durably (-06 records
//!   under `abuse/`, listed by [`AbuseReports::list`] and the admin command
//!   `GET /admin/abuse-reports`) and answers `201` without a body;
//! - the reporting user's provider: the client API's `POST /v1/report-abuse`
//!   ([`Provider::report_abuse`]) checks each frank's integrity signature against the room's
//!   `franking_agent` before it sends the `AbuseReport` to the room's hub.
//!
//! Reported messages are MIMI content (`mimi-content`): the salt, the sender URI and the room
//! URI the frank is checked against are read from it.

use std::sync::Arc;

use hyper::StatusCode;
use mimi_client_api::report_abuse;
use mimi_codec::v06::{
    AbuseReport, AbuseType, AbusiveMessage, FrankingAgentData, IdentifierUri, MimiUriKind,
    OptionalUri,
};
use mimi_codec::{BoundedVec, Opaque, ServerName, Text, UserId, Wire};
use mimi_mls_binding::franking::{self, FrankedMessage, FrankingError};
use mimi_transport::v06::{Endpoint06, Reply06};
use sha2::{Digest, Sha256};
use tls_codec::{TlsDeserialize, TlsSerialize, TlsSize, VLBytes};

use super::{refuse, unavailable, user_uri};
use crate::context::Context;
use crate::error::ApiError;
use crate::provider::Provider;
use crate::storage::StorageError;

/// The -06 record prefix of kept reports: `abuse/` + received time (ms, big-endian) + the
/// first 8 octets of the report's SHA-256.
const ABUSE: &[u8] = b"abuse/";
/// The record of a report already kept: `abuse-seen/` + the report's SHA-256 → its key.
const SEEN: &[u8] = b"abuse-seen/";
/// Most reports one listing page returns.
pub const MAX_REPORT_PAGE: usize = 100;

/// A kept report, as stored: who sent it, for which room, when, and the `AbuseReport` as
/// received.
#[derive(Debug, Clone, PartialEq, Eq, TlsSize, TlsSerialize, TlsDeserialize)]
struct Stored {
    from: VLBytes,
    room: VLBytes,
    received_at: u64,
    report: VLBytes,
}

/// A kept report, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptReport {
    /// Its key's suffix, in hex: the cursor of the next page.
    pub id: String,
    /// The provider that sent it.
    pub from: String,
    /// The room.
    pub room: String,
    /// When this hub received it (ms since the UNIX epoch).
    pub received_at: u64,
    /// The report.
    pub report: AbuseReport,
}

/// The kept reports, over the shared context.
#[derive(Debug)]
pub struct AbuseReports<'a> {
    ctx: &'a Arc<Context>,
}

impl<'a> AbuseReports<'a> {
    /// The records over `ctx`.
    pub fn new(ctx: &'a Arc<Context>) -> Self {
        AbuseReports { ctx }
    }

    /// Keep `raw` (an `AbuseReport` that passed the checks) from `from` about `room`, once:
    /// a resend of the same bytes is recognised and kept no second time.
    ///
    /// Rule V06-ABUSE-3 (docs/protocol-coverage.md).
    pub async fn keep(
        &self,
        from: &ServerName,
        room: &IdentifierUri,
        raw: &[u8],
        received_at: u64,
    ) -> Result<(), StorageError> {
        let digest: [u8; 32] = Sha256::digest(raw).into();
        let seen = [SEEN, &digest].concat();
        let s = seen.clone();
        if self
            .ctx
            .blocking(move |st| st.v06_record(&s))
            .await?
            .is_some()
        {
            return Ok(());
        }
        let key = [ABUSE, &received_at.to_be_bytes(), &digest[..8]].concat();
        let value = Stored {
            from: from.as_str().as_bytes().into(),
            room: room.as_str().as_bytes().into(),
            received_at,
            report: raw.into(),
        };
        let value = tls_codec::Serialize::tls_serialize_detached(&value)
            .map_err(|e| StorageError::Corrupt(format!("an abuse report: {e}")))?;
        let k = key.clone();
        self.ctx
            .blocking(move |st| st.put_v06_record(&k, Some(&value)))
            .await?;
        self.ctx
            .blocking(move |st| st.put_v06_record(&seen, Some(&key)))
            .await
    }

    /// The kept reports in the order received, after the one whose `id` is `after` (from
    /// the first when `None`), at most `limit` (at most [`MAX_REPORT_PAGE`]).
    pub async fn list(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<KeptReport>, StorageError> {
        let after = match after {
            Some(id) => hex::decode(id)
                .map_err(|_| StorageError::Corrupt(format!("report id {id} is not hex")))?,
            None => Vec::new(),
        };
        let limit = limit.min(MAX_REPORT_PAGE);
        let rows = self
            .ctx
            .blocking(move |st| st.v06_records_with_prefix(ABUSE, &after, limit))
            .await?;
        rows.into_iter()
            .map(|(key, value)| {
                let corrupt = |what: &str| StorageError::Corrupt(format!("abuse report: {what}"));
                let stored: Stored =
                    tls_codec::Deserialize::tls_deserialize_exact(value.as_slice())
                        .map_err(|_| corrupt("record"))?;
                let text = |b: &VLBytes| {
                    String::from_utf8(b.as_slice().to_vec()).map_err(|_| corrupt("text"))
                };
                Ok(KeptReport {
                    id: hex::encode(&key[ABUSE.len()..]),
                    from: text(&stored.from)?,
                    room: text(&stored.room)?,
                    received_at: stored.received_at,
                    report: AbuseReport::decode(stored.report.as_slice())
                        .map_err(|_| corrupt("report"))?,
                })
            })
            .collect()
    }
}

/// The salt, sender and room a reported MIMI content message asserts.
struct Asserted {
    salt: [u8; 16],
    sender: String,
    room: String,
}

fn asserted(content: &[u8]) -> Result<Asserted, String> {
    let content = mimi_content::MimiContent::decode(content)
        .map_err(|e| format!("the message_content is not MIMI content: {e}"))?;
    let sender = content
        .extensions
        .sender_uri
        .ok_or("the content asserts no sender_uri")?;
    let room = content
        .extensions
        .room_uri
        .ok_or("the content asserts no room_uri")?;
    Ok(Asserted {
        salt: content.salt.0,
        sender,
        room,
    })
}

/// Why a report's messages are refused, before any frank is checked or after.
#[derive(Debug)]
enum MessageProblem {
    /// The content is not what a report of this room and abuser carries (400).
    Malformed(String),
    /// The frank does not verify (403).
    Frank(String),
}

/// Check every message of `report` (about `room`) with `check`: its content asserts a salt,
/// a sender that is the alleged abuser and this room; then `check` verifies its frank.
fn check_messages(
    report: &AbuseReport,
    room: &IdentifierUri,
    check: impl Fn(&FrankedMessage<'_>) -> Result<(), FrankingError>,
) -> Result<(), MessageProblem> {
    for (i, m) in report.messages.as_slice().iter().enumerate() {
        let content = m.message_content.as_slice();
        let a = asserted(content)
            .map_err(|e| MessageProblem::Malformed(format!("message {i}: {e}")))?;
        if a.room != room.as_str() {
            return Err(MessageProblem::Malformed(format!(
                "message {i} is of room {}, not {room}",
                a.room
            )));
        }
        if a.sender != report.alleged_abuser_uri.as_str() {
            return Err(MessageProblem::Malformed(format!(
                "message {i} is from {}, not the alleged abuser {}",
                a.sender, report.alleged_abuser_uri
            )));
        }
        let franked = FrankedMessage {
            application_data: content,
            salt: &a.salt,
            asserted_sender: &a.sender,
            asserted_room: &a.room,
            accepted_timestamp: m.accepted_timestamp,
            frank: &m.frank,
        };
        check(&franked).map_err(|e| match e {
            FrankingError::Malformed(e) => MessageProblem::Malformed(format!("message {i}: {e}")),
            e => MessageProblem::Frank(format!("message {i}: {e}")),
        })?;
    }
    Ok(())
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Provider {
    /// The abuse reports this provider keeps as a hub.
    pub fn abuse_reports(&self) -> AbuseReports<'_> {
        AbuseReports::new(self.context())
    }

    /// `POST /reportAbuse/{roomId}` at the room's hub: the room is one of this provider's,
    /// `reportingUser` (if given) is a user of the sending provider, every message is MIMI
    /// content of this room from the alleged abuser whose frank this hub made (its
    /// `server_frank` recomputed with `hub_key`, its integrity signature verified); then the
    /// report is kept and answered `201`.
    ///
    /// Rules V06-ABUSE-1, V06-ABUSE-2 (docs/protocol-coverage.md).
    pub async fn report_abuse06(
        &self,
        from: &ServerName,
        variable: &str,
        report: AbuseReport,
        raw: &[u8],
    ) -> Reply06 {
        let own = self.server_name();
        let room: IdentifierUri = match variable.parse() {
            Ok(room) => room,
            Err(e) => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    "malformed",
                    format!("roomId {variable}: {e}"),
                );
            }
        };
        match room.mimi() {
            Ok(uri) if uri.kind() == MimiUriKind::Room => {
                if uri.provider() != own {
                    return refuse(
                        StatusCode::MISDIRECTED_REQUEST,
                        "misdirected",
                        format!("{own} is not the hub of {room}"),
                    );
                }
            }
            _ => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    "malformed",
                    format!("{room} is not a room URI"),
                );
            }
        }
        if let Some(reporter) = report.reporting_user.get() {
            let provider = reporter.mimi().ok().map(|u| u.provider().clone());
            if provider.as_ref() != Some(from) {
                return refuse(
                    StatusCode::FORBIDDEN,
                    "not_allowed",
                    format!("{reporter} is not a user of the sending provider {from}"),
                );
            }
        }
        let keys = self.franking();
        match check_messages(&report, &room, |m| keys.verify_reported(m).map(drop)) {
            Ok(()) => {}
            Err(MessageProblem::Malformed(e)) => {
                return refuse(StatusCode::BAD_REQUEST, "malformed", e);
            }
            Err(MessageProblem::Frank(e)) => return refuse(StatusCode::FORBIDDEN, "frank", e),
        }
        match self.abuse_reports().keep(from, &room, raw, now_ms()).await {
            Ok(()) => Reply06::Created,
            Err(e) => unavailable(e),
        }
    }

    /// The client API's `POST /v1/report-abuse` for `user`: check each message's frank
    /// against the room's `franking_agent` (which must name the room's hub), build the
    /// `AbuseReport` (`reportingUser` the caller unless anonymous) and send it to the hub
    /// (this provider's own handler when it is the hub).
    ///
    /// Rule V06-ABUSE-4 (docs/protocol-coverage.md).
    pub async fn report_abuse(
        &self,
        user: &UserId,
        request: report_abuse::Request,
    ) -> Result<report_abuse::Response, ApiError> {
        let own = self.server_name();
        let hub =
            franking::hub_of_room(&request.room).map_err(|e| ApiError::Malformed(e.to_string()))?;
        let agent: &FrankingAgentData = &request.franking_agent;
        let key =
            franking::agent_key_for(agent, &hub).map_err(|e| ApiError::Frank(e.to_string()))?;
        let reporting_user = match request.anonymous {
            true => OptionalUri::NONE,
            false => user_uri(user)
                .ok_or_else(|| ApiError::Internal(format!("{user} has no -06 URI")))?
                .into(),
        };
        let messages = request
            .messages
            .iter()
            .map(|m| {
                Ok(AbusiveMessage {
                    message_content: Opaque::new(m.content.clone())?,
                    frank: m.frank.clone(),
                    accepted_timestamp: m.accepted_timestamp,
                })
            })
            .collect::<Result<Vec<_>, mimi_codec::CodecError>>()?;
        let report = AbuseReport {
            reporting_user,
            alleged_abuser_uri: request.alleged_abuser.clone(),
            reason_code: AbuseType(request.reason),
            note: Text::new(request.note.clone())?,
            messages: BoundedVec::new(messages)?,
            abuse_extensions: Default::default(),
        };
        let room = &request.room;
        check_messages(&report, room, |m| {
            franking::verify_frank_integrity(
                key,
                m.frank.franking_signature_ciphersuite,
                m.frank,
                &m.context()?,
            )
        })
        .map_err(|p| match p {
            MessageProblem::Malformed(e) => ApiError::Malformed(e),
            MessageProblem::Frank(e) => ApiError::Frank(e),
        })?;
        let count = report.messages.as_slice().len();
        let body = report.encode()?;
        let path = Endpoint06::ReportAbuse.path(room.as_str());
        let (status, answer) = if hub == *own {
            match self.report_abuse06(own, room.as_str(), report, &body).await {
                Reply06::Created | Reply06::Ok(_) => (201, Vec::new()),
                Reply06::Refused(r) => (r.status.as_u16(), r.detail.into_bytes()),
            }
        } else {
            self.context()
                .peers
                .post06(&hub, own, path, body)
                .await
                .map_err(|e| ApiError::peer(&hub, e))?
        };
        match status {
            200 | 201 => Ok(report_abuse::Response { messages: count }),
            403 => Err(ApiError::Frank(format!(
                "the hub {hub} refused the report: {}",
                String::from_utf8_lossy(&answer)
            ))),
            _ => Err(ApiError::PeerAnswer {
                server: hub,
                what: "a refusal of the abuse report",
            }),
        }
    }
}
