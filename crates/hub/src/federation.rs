//! The federation endpoints: the transport's [`Handler`] for this server, one function per
//! endpoint, each authenticating and routing a peer's request to the part that answers it
//! (`/send`: a limited event to the room engine's hub path, a fully-formed event to its
//! follower path, `ds.fetch_key_packages` to the accounts; `/check-invite` to check-invite;
//! `/identifierDiscovery` to the accounts' directory). It owns no state and holds no logic
//! beyond authentication and routing.

use async_trait::async_trait;
use mimi_codec::{
    CheckInviteRequest, ErrorCode, Event, EventError, EventResponse, IdentifierDiscoveryCode,
    IdentifierRequest, IdentifierResponse, MessageBody, MimiMessage, RoomId, Sender, ServerName,
    Text,
};
use mimi_transport::{CheckInviteReply, Handler, Reply};

use crate::provider::Provider;

fn err(code: ErrorCode, detail: impl Into<String>) -> EventError {
    EventError::new(code, detail)
}

/// Where a `/send` goes, once its sender is authenticated.
enum Route {
    /// `ds.fetch_key_packages` for one of this server's users.
    KeyPackages,
    /// A limited event for a room this server is the hub of.
    Hub,
    /// A fully-formed event from the hub of a room this server follows.
    Follower,
}

/// Authenticate and route a `/send` before anything else is looked at.
fn route(own: &ServerName, peer: &ServerName, message: &MimiMessage) -> Result<Route, EventError> {
    let room = &message.room_id;
    let hub = room.server();
    match &message.body {
        MessageBody::Event(Event::DsFetchKeyPackages(_)) => {
            if message.sender.server() == *peer {
                Ok(Route::KeyPackages)
            } else {
                Err(err(
                    ErrorCode::SenderMismatch,
                    "the sender is not of the TLS peer's server",
                ))
            }
        }
        // Main spec: a follower receiving an event from another follower MUST reject it
        // with 400; the hub checks that the sender's server is the TLS peer.
        MessageBody::Event(_) if hub != *own => Err(err(
            ErrorCode::NotHub,
            format!("{own} is not the hub of {room}; send to {hub}"),
        )),
        MessageBody::Event(_) => {
            mimi_transport::check_sender(peer, message, &hub).map(|()| Route::Hub)
        }
        // Fully-formed events of a room come from its hub only (TR-ROUTE-1).
        MessageBody::Fanout(_) => {
            mimi_transport::check_follower_source(own, &hub, peer).map(|()| Route::Follower)
        }
        MessageBody::Response(_) => Err(err(
            ErrorCode::UnsupportedEvent,
            "a response is not sent to /send",
        )),
    }
}

impl Provider {
    fn response(&self, room: &RoomId, response: EventResponse) -> MimiMessage {
        MimiMessage::new(
            room.clone(),
            Sender::Server(self.server_name().clone()),
            MessageBody::Response(response),
        )
    }

    /// `POST /send`.
    async fn on_send(&self, peer: &ServerName, message: MimiMessage) -> Reply {
        let room = message.room_id.clone();
        let result = match route(self.server_name(), peer, &message) {
            Err(e) => Err(e),
            Ok(route) => match (route, message.body) {
                (Route::KeyPackages, MessageBody::Event(Event::DsFetchKeyPackages(request))) => {
                    self.fetch_key_packages(peer, &room, request).await
                }
                (Route::Hub, MessageBody::Event(event)) => {
                    self.rooms().hub_event(&room, message.sender, event).await
                }
                (Route::Follower, MessageBody::Fanout(fanout)) => self
                    .rooms()
                    .follower_event(&room, message.sender, fanout)
                    .await
                    .map(|()| EventResponse::Ok),
                _ => Err(err(ErrorCode::UnsupportedEvent, "unexpected")),
            },
        };
        match result {
            Ok(response) => Reply::Accepted(Some(self.response(&room, response))),
            // The room engine's `Internal` is "try again" (a failed write, a gap).
            Err(e) if e.code == ErrorCode::Internal => Reply::Unavailable(e),
            Err(e) => Reply::Refused(self.response(&room, EventResponse::Error(e))),
        }
    }

    /// `ds.fetch_key_packages` from `peer`, within its rate limit (503 "retry later"
    /// past it, the seed's answer for a server that cannot process the request now), for
    /// a room that exists if it is one of this server's.
    ///
    /// Rule HUB-RATE-3 (docs/protocol-coverage.md).
    async fn fetch_key_packages(
        &self,
        peer: &ServerName,
        room: &RoomId,
        request: mimi_codec::KeyPackagesRequest,
    ) -> Result<EventResponse, EventError> {
        if let Err(limited) = self.limiter().claims_per_peer.take(peer) {
            return Err(err(
                ErrorCode::Internal,
                format!(
                    "too many key-package claims from {peer}; retry after {:?}",
                    limited.retry_after
                ),
            ));
        }
        if room.server() == *self.server_name() {
            let r = room.clone();
            let known = self
                .context()
                .blocking(move |s| s.room(&r))
                .await
                .map_err(|e| err(ErrorCode::Internal, e.to_string()))?;
            if known.is_none() {
                return Err(err(ErrorCode::UnknownRoom, format!("unknown room {room}")));
            }
        }
        self.accounts().key_packages_for(request).await
    }

    /// `POST /check-invite`.
    async fn on_check_invite(
        &self,
        peer: &ServerName,
        request: CheckInviteRequest,
    ) -> CheckInviteReply {
        if *peer != request.invite.room_id.server() {
            return CheckInviteReply::Refused(err(
                ErrorCode::NotHub,
                "check-invite comes from the room's hub",
            ));
        }
        self.invites().answer(&request).await
    }

    /// `GET /identifierDiscovery/{domain}`.
    async fn on_identifier_discovery(
        &self,
        domain: &ServerName,
        request: IdentifierRequest,
    ) -> Result<IdentifierResponse, EventError> {
        if domain != self.server_name() {
            return Ok(IdentifierResponse {
                code: IdentifierDiscoveryCode::NotFound,
                uri: Text::default(),
            });
        }
        self.accounts()
            .discover_locally(&request)
            .await
            .map_err(|e| EventError::new(ErrorCode::Internal, format!("identifier discovery: {e}")))
    }
}

#[async_trait]
impl Handler for Provider {
    async fn send(&self, peer: &ServerName, message: MimiMessage) -> Reply {
        let started = std::time::Instant::now();
        let reply = self.on_send(peer, message).await;
        self.metrics()
            .request("federation", "send", started.elapsed());
        reply
    }

    async fn check_invite(
        &self,
        peer: &ServerName,
        request: CheckInviteRequest,
    ) -> CheckInviteReply {
        let started = std::time::Instant::now();
        let reply = self.on_check_invite(peer, request).await;
        self.metrics()
            .request("federation", "check-invite", started.elapsed());
        reply
    }

    async fn identifier_discovery(
        &self,
        _peer: &ServerName,
        domain: &ServerName,
        request: IdentifierRequest,
    ) -> Result<IdentifierResponse, EventError> {
        let started = std::time::Instant::now();
        let response = self.on_identifier_discovery(domain, request).await;
        self.metrics()
            .request("federation", "identifier-discovery", started.elapsed());
        response
    }

    fn v06(&self) -> Option<&dyn mimi_transport::v06::Handler06> {
        Some(self)
    }
}
