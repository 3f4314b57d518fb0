//! The provider-internal client API (`docs/client-api.md`), typed: JSON bodies with base64
//! binary values, and the TLS-encoded `Event` / `EventResponse` exchange of
//! `POST /v1/rooms/{room}/events`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hyper::Method;
use mimi_codec::{
    ClientId, Event, EventResponse, JoinRule, MimiMessage, RoomId, RoomState, UserId, Wire,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tls_codec::Deserialize as _;

use crate::error::ClientError;
use crate::http::{Https, Response};
use crate::store::as_string;

const JSON: &str = "application/json";
const OCTETS: &str = "application/octet-stream";

/// How many inbox items one `GET /v1/inbox` asks for.
pub const INBOX_PAGE: u32 = 100;

/// Percent-encode everything but RFC 3986 unreserved characters (room IDs in paths, query
/// values).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The wire name of a join rule in the JSON API.
pub fn join_rule_name(rule: JoinRule) -> &'static str {
    match rule {
        JoinRule::MembersOnly => "members_only",
        JoinRule::Knock => "knock",
        JoinRule::Public => "public",
    }
}

/// `POST /v1/register` body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RegisterRequest {
    /// The user's localpart.
    pub localpart: String,
    /// The device name.
    pub device: String,
    /// A handle for discovery.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handle: Option<String>,
    /// An email address for discovery.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// A phone number for discovery.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// A display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// `POST /v1/register` answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Registered {
    /// The user.
    #[serde(with = "as_string")]
    pub user_id: UserId,
    /// The new client.
    #[serde(with = "as_string")]
    pub client_id: ClientId,
    /// Its bearer token.
    pub token: String,
}

/// `GET /v1/discover` answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Discovered {
    /// `success`, `not_found`, `ambiguous`, `forbidden` or `unsupported_field`.
    pub code: String,
    /// The user, on success.
    #[serde(default)]
    pub user_id: Option<String>,
}

/// A room prepared by the provider (`POST /v1/rooms/prepare`).
#[derive(Debug, Clone)]
pub struct PreparedRoom {
    /// The new room's ID.
    pub room_id: RoomId,
    /// Its initial state.
    pub room_state: RoomState,
    /// The hub's `ExternalSender`, TLS-encoded.
    pub hub_external_sender: Vec<u8>,
}

/// One claimed key package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedKeyPackage {
    /// The client it belongs to.
    pub client_id: ClientId,
    /// The KeyPackage MLSMessage.
    pub key_package: Vec<u8>,
}

/// One inbox item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxItem {
    /// Its cursor.
    pub cursor: u64,
    /// The message.
    pub message: MimiMessage,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
    #[serde(default)]
    detail: String,
}

#[derive(Deserialize)]
struct PreparedWire {
    room_id: String,
    room_state: String,
    hub_external_sender: String,
}

#[derive(Deserialize)]
struct ClaimedWire {
    key_packages: Vec<ClaimedEntryWire>,
}

#[derive(Deserialize)]
struct ClaimedEntryWire {
    client_id: String,
    key_package: String,
}

#[derive(Deserialize)]
struct StateWire {
    room_state: String,
}

#[derive(Deserialize)]
struct InboxWire {
    items: Vec<InboxItemWire>,
}

#[derive(Deserialize)]
struct InboxItemWire {
    cursor: u64,
    message: String,
}

#[derive(Deserialize)]
struct ProposedWire {
    proposed: bool,
}

#[derive(Deserialize)]
struct StoredWire {
    stored: usize,
}

fn b64(s: &str, what: &'static str) -> Result<Vec<u8>, ClientError> {
    B64.decode(s)
        .map_err(|_| ClientError::UnexpectedResponse(what))
}

fn error_of(response: &Response) -> ClientError {
    match serde_json::from_slice::<ErrorBody>(&response.body) {
        Ok(e) => ClientError::Api {
            status: response.status,
            code: e.error,
            detail: e.detail,
        },
        Err(_) => ClientError::Api {
            status: response.status,
            code: "unknown".to_owned(),
            detail: String::from_utf8_lossy(&response.body).into_owned(),
        },
    }
}

fn json<T: DeserializeOwned>(response: Response) -> Result<T, ClientError> {
    if !(200..300).contains(&response.status) {
        return Err(error_of(&response));
    }
    serde_json::from_slice(&response.body)
        .map_err(|_| ClientError::UnexpectedResponse("JSON body does not match the API"))
}

/// The provider API with a client's credentials.
#[derive(Debug, Clone)]
pub struct Api {
    http: Https,
    token: Option<String>,
}

impl Api {
    /// The API over `http`, authenticating with `token` (none for a first registration).
    pub fn new(http: Https, token: Option<String>) -> Self {
        Api { http, token }
    }

    async fn post_json<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let bytes = serde_json::to_vec(body)
            .map_err(|_| ClientError::UnexpectedResponse("request does not serialize"))?;
        let response = self
            .http
            .request(
                Method::POST,
                path,
                self.token.as_deref(),
                Some((JSON, bytes)),
            )
            .await?;
        json(response)
    }

    async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let response = self
            .http
            .request(Method::GET, path, self.token.as_deref(), None)
            .await?;
        json(response)
    }

    /// `POST /v1/register`.
    pub async fn register(&self, request: &RegisterRequest) -> Result<Registered, ClientError> {
        self.post_json("/v1/register", request).await
    }

    /// `POST /v1/key-packages`: returns how many were stored.
    pub async fn publish_key_packages(
        &self,
        key_packages: &[Vec<u8>],
    ) -> Result<usize, ClientError> {
        let body = serde_json::json!({
            "key_packages": key_packages.iter().map(|k| B64.encode(k)).collect::<Vec<_>>(),
        });
        let stored: StoredWire = self.post_json("/v1/key-packages", &body).await?;
        Ok(stored.stored)
    }

    /// `GET /v1/discover`.
    pub async fn discover(
        &self,
        domain: &str,
        field: &str,
        value: &str,
    ) -> Result<Discovered, ClientError> {
        let path = format!(
            "/v1/discover?domain={}&type={}&value={}",
            percent_encode(domain),
            percent_encode(field),
            percent_encode(value)
        );
        self.get_json(&path).await
    }

    /// `POST /v1/key-packages/claim` for all of `user`'s clients.
    pub async fn claim_key_packages(
        &self,
        room: &RoomId,
        user: &UserId,
    ) -> Result<Vec<ClaimedKeyPackage>, ClientError> {
        let body = serde_json::json!({
            "room_id": room.as_str(),
            "user_id": user.as_str(),
            "clients": [],
        });
        let claimed: ClaimedWire = self.post_json("/v1/key-packages/claim", &body).await?;
        claimed
            .key_packages
            .into_iter()
            .map(|e| {
                Ok(ClaimedKeyPackage {
                    client_id: e
                        .client_id
                        .parse()
                        .map_err(|_| ClientError::UnexpectedResponse("claimed client_id"))?,
                    key_package: b64(&e.key_package, "claimed key_package is not base64")?,
                })
            })
            .collect()
    }

    /// `POST /v1/rooms/prepare`.
    pub async fn prepare_room(&self, join_rule: JoinRule) -> Result<PreparedRoom, ClientError> {
        let body = serde_json::json!({ "join_rule": join_rule_name(join_rule) });
        let wire: PreparedWire = self.post_json("/v1/rooms/prepare", &body).await?;
        Ok(PreparedRoom {
            room_id: wire
                .room_id
                .parse()
                .map_err(|_| ClientError::UnexpectedResponse("prepared room_id"))?,
            room_state: RoomState::decode(&b64(&wire.room_state, "room_state is not base64")?)?,
            hub_external_sender: b64(
                &wire.hub_external_sender,
                "hub_external_sender is not base64",
            )?,
        })
    }

    /// `POST /v1/rooms`: the group of a prepared room.
    pub async fn create_room(
        &self,
        room: &RoomId,
        join_rule: JoinRule,
        group_info: &[u8],
        ratchet_tree: &[u8],
    ) -> Result<(), ClientError> {
        let body = serde_json::json!({
            "room_id": room.as_str(),
            "join_rule": join_rule_name(join_rule),
            "group_info": B64.encode(group_info),
            "ratchet_tree": B64.encode(ratchet_tree),
        });
        let _: serde_json::Value = self.post_json("/v1/rooms", &body).await?;
        Ok(())
    }

    /// `GET /v1/rooms/{room}/state`.
    pub async fn room_state(&self, room: &RoomId) -> Result<RoomState, ClientError> {
        let wire: StateWire = self
            .get_json(&format!(
                "/v1/rooms/{}/state",
                percent_encode(room.as_str())
            ))
            .await?;
        Ok(RoomState::decode(&b64(
            &wire.room_state,
            "room_state is not base64",
        )?)?)
    }

    /// `POST /v1/rooms/{room}/events`: the hub's answer, an accepted response or
    /// [`ClientError::Refused`] with the hub's `EventError`.
    pub async fn submit(&self, room: &RoomId, event: &Event) -> Result<EventResponse, ClientError> {
        let response = self
            .http
            .request(
                Method::POST,
                &format!("/v1/rooms/{}/events", percent_encode(room.as_str())),
                self.token.as_deref(),
                Some((OCTETS, event.encode()?)),
            )
            .await?;
        let is_octets = response
            .content_type
            .as_deref()
            .is_some_and(|c| c.starts_with(OCTETS));
        if !is_octets {
            return Err(error_of(&response));
        }
        if response.body.len() > mimi_codec::limits::MAX_MESSAGE_LEN {
            return Err(ClientError::UnexpectedResponse(
                "EventResponse over the size limit",
            ));
        }
        let decoded = EventResponse::tls_deserialize_exact(&response.body)
            .map_err(|_| ClientError::UnexpectedResponse("EventResponse does not decode"))?;
        match decoded {
            EventResponse::Error(e) => Err(ClientError::Refused(e)),
            accepted if response.status == 200 => Ok(accepted),
            _ => Err(ClientError::UnexpectedResponse(
                "an accepted EventResponse with a non-200 status",
            )),
        }
    }

    /// `POST /v1/rooms/{room}/hub-removals`: whether the hub proposed any removal.
    pub async fn hub_removals(&self, room: &RoomId) -> Result<bool, ClientError> {
        let wire: ProposedWire = self
            .post_json(
                &format!("/v1/rooms/{}/hub-removals", percent_encode(room.as_str())),
                &serde_json::json!({}),
            )
            .await?;
        Ok(wire.proposed)
    }

    /// `GET /v1/inbox?after=N&limit=M`.
    pub async fn inbox(&self, after: u64, limit: u32) -> Result<Vec<InboxItem>, ClientError> {
        let wire: InboxWire = self
            .get_json(&format!("/v1/inbox?after={after}&limit={limit}"))
            .await?;
        wire.items
            .into_iter()
            .map(|i| {
                Ok(InboxItem {
                    cursor: i.cursor,
                    message: MimiMessage::decode(&b64(&i.message, "inbox message is not base64")?)?,
                })
            })
            .collect()
    }
}
