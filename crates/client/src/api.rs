//! The provider-internal client API (`docs/client-api.md`) with a client's credentials:
//! every request and answer is a `mimi-client-api` type, sent over [`Https`].

use mimi_client_api::{
    Endpoint, EndpointResponse, ResponseError, claim_key_packages, create_room, hub_removals,
    inbox, prepare_room, publish_key_packages, room_state, submit_event,
};
use mimi_codec::{Event, EventResponse, JoinRule, RoomId, RoomState, UserId};

pub use mimi_client_api::claim_key_packages::ClaimedKeyPackage;
pub use mimi_client_api::discover::Response as Discovered;
pub use mimi_client_api::inbox::Item as InboxItem;
pub use mimi_client_api::prepare_room::Response as PreparedRoom;
pub use mimi_client_api::register::{Request as RegisterRequest, Response as Registered};
pub use mimi_client_api::{DiscoveryCode, ErrorCode, percent_encode};

use crate::error::ClientError;
use crate::http::Https;

/// How many inbox items one `GET /v1/inbox` asks for.
pub const INBOX_PAGE: usize = 100;

impl From<ResponseError> for ClientError {
    fn from(e: ResponseError) -> Self {
        match e {
            ResponseError::Api(e) => ClientError::Api {
                status: e.status().as_u16(),
                code: e.code,
                detail: e.detail,
            },
            ResponseError::Status { status, body } => ClientError::Status {
                status: status.as_u16(),
                body,
            },
            ResponseError::Unexpected(what) => ClientError::UnexpectedResponse(what),
        }
    }
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

    /// Send one request of endpoint `E` and read its answer.
    pub async fn call<E: Endpoint>(&self, request: &E) -> Result<E::Response, ClientError> {
        let request = request.try_into_http_request(self.token.as_deref())?;
        let response = self.http.send(request).await?;
        Ok(E::Response::try_from_http_response(&response)?)
    }

    /// `POST /v1/register`.
    pub async fn register(&self, request: &RegisterRequest) -> Result<Registered, ClientError> {
        self.call(request).await
    }

    /// `POST /v1/key-packages`: returns how many were stored.
    pub async fn publish_key_packages(
        &self,
        key_packages: &[Vec<u8>],
    ) -> Result<usize, ClientError> {
        let request = publish_key_packages::Request {
            key_packages: key_packages.to_vec(),
        };
        Ok(self.call(&request).await?.stored)
    }

    /// `POST /v1/key-packages/claim` for all of `user`'s clients.
    pub async fn claim_key_packages(
        &self,
        room: &RoomId,
        user: &UserId,
    ) -> Result<Vec<ClaimedKeyPackage>, ClientError> {
        let request = claim_key_packages::Request {
            room_id: room.clone(),
            user_id: user.clone(),
            clients: Vec::new(),
        };
        Ok(self.call(&request).await?.key_packages)
    }

    /// `POST /v1/rooms/prepare`.
    pub async fn prepare_room(&self, join_rule: JoinRule) -> Result<PreparedRoom, ClientError> {
        let request = prepare_room::Request {
            join_rule: Some(join_rule),
        };
        self.call(&request).await
    }

    /// `POST /v1/rooms`: the group of a prepared room.
    pub async fn create_room(
        &self,
        room: &RoomId,
        join_rule: JoinRule,
        group_info: &[u8],
        ratchet_tree: &[u8],
    ) -> Result<(), ClientError> {
        let request = create_room::Request {
            room_id: room.clone(),
            join_rule: Some(join_rule),
            group_info: group_info.to_vec(),
            ratchet_tree: ratchet_tree.to_vec(),
        };
        self.call(&request).await.map(|_| ())
    }

    /// `GET /v1/rooms/{room}/state`: the state and the latest sequence number.
    pub async fn room_state_and_sequence(
        &self,
        room: &RoomId,
    ) -> Result<room_state::Response, ClientError> {
        self.call(&room_state::Request { room: room.clone() }).await
    }

    /// `GET /v1/rooms/{room}/state`.
    pub async fn room_state(&self, room: &RoomId) -> Result<RoomState, ClientError> {
        Ok(self.room_state_and_sequence(room).await?.room_state)
    }

    /// `POST /v1/rooms/{room}/events`: the hub's answer, an accepted response or
    /// [`ClientError::Refused`] with the hub's `EventError`.
    pub async fn submit(&self, room: &RoomId, event: &Event) -> Result<EventResponse, ClientError> {
        let request = submit_event::Request {
            room: room.clone(),
            event: event.clone(),
        };
        match self.call(&request).await?.response {
            EventResponse::Error(e) => Err(ClientError::Refused(e)),
            accepted => Ok(accepted),
        }
    }

    /// `POST /v1/rooms/{room}/hub-removals`: whether the hub proposed any removal.
    pub async fn hub_removals(&self, room: &RoomId) -> Result<bool, ClientError> {
        let request = hub_removals::Request { room: room.clone() };
        Ok(self.call(&request).await?.proposed)
    }

    /// `GET /v1/inbox?after=N&limit=M`.
    pub async fn inbox(&self, after: u64, limit: usize) -> Result<Vec<InboxItem>, ClientError> {
        let request = inbox::Request {
            after,
            limit: Some(limit),
            wait: None,
        };
        Ok(self.call(&request).await?.items)
    }

    /// `GET /v1/inbox?after=N&limit=M&wait_ms=W`: long polling; answers as soon as an item
    /// after `after` is there, or empty after `wait` (the server caps it at 25 s).
    pub async fn inbox_wait(
        &self,
        after: u64,
        limit: usize,
        wait: std::time::Duration,
    ) -> Result<Vec<InboxItem>, ClientError> {
        let request = inbox::Request {
            after,
            limit: Some(limit),
            wait: Some(wait),
        };
        Ok(self.call(&request).await?.items)
    }
}
