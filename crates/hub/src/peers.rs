//! Every call this server makes to another provider, behind one trait ([`Peers`]): sending a
//! MIMI message (`/send`; the outbox sends its stored bytes as they are,
//! [`Peers::send_encoded`]), asking about an invite (`/check-invite`), identifier
//! discovery, and the second version's requests (`post06`).
//! [`HttpsPeers`] implements it over the transport's HTTPS client with mutual TLS; tests
//! implement it in process (routing to other in-process providers, or failing and never
//! answering on demand) so that the hub is tested without sockets and with paused time.
//!
//! ## Who retries
//! A call made for a client waiting on an answer ([`Attempts::Transport`]) is retried by the
//! transport client with its own [`mimi_transport::RetryPolicy`]. A call of the outbox
//! ([`Attempts::Once`]) is made once: the outbox keeps the entry and retries it with its own
//! policy (`outbox`), so that exactly one loop decides when a delivery is tried again.
//! Check-invite is made once too, bounded by the hub's `check_invite_timeout`.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use mimi_codec::{
    CheckInviteRequest, IdentifierRequest, IdentifierResponse, MimiMessage, ServerName, Wire,
};
use mimi_transport::{
    CheckInviteOutcome, ClientConfig, MimiClient, Resolver, RetryPolicy, SendOutcome,
    TransportError,
};

/// How many times a call is attempted by the transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempts {
    /// As the transport client's retry policy says (a client is waiting for the answer).
    Transport,
    /// Once: the caller owns the retries (the outbox).
    Once,
}

/// The calls this server makes to other providers.
#[async_trait]
pub trait Peers: Send + Sync + std::fmt::Debug {
    /// `POST /send` of `message` to `server`. A `400` is [`TransportError::Refused`].
    /// Encodes the message and sends it as [`Peers::send_encoded`] does.
    async fn send(
        &self,
        server: &ServerName,
        message: &MimiMessage,
        attempts: Attempts,
    ) -> Result<SendOutcome, TransportError> {
        let body = Bytes::from(message.encode()?);
        self.send_encoded(server, body, attempts).await
    }

    /// `POST /send` to `server` of a MIMIMessage already encoded (the outbox sends its
    /// entries as stored), handed over without a copy. Only the length is checked before
    /// it goes; the peer decodes it, and bytes that are not a message are its `400`
    /// ([`TransportError::Refused`]), or its `413` ([`TransportError::TooLarge`]) for a
    /// field over its limit.
    async fn send_encoded(
        &self,
        server: &ServerName,
        body: Bytes,
        attempts: Attempts,
    ) -> Result<SendOutcome, TransportError>;

    /// `POST /check-invite` to `server`, attempted once (the caller bounds it in time).
    async fn check_invite(
        &self,
        server: &ServerName,
        request: &CheckInviteRequest,
    ) -> Result<CheckInviteOutcome, TransportError>;

    /// `GET /identifierDiscovery/{domain}` on `server`.
    async fn identifier_discovery(
        &self,
        server: &ServerName,
        domain: &ServerName,
        request: &IdentifierRequest,
    ) -> Result<IdentifierResponse, TransportError>;

    /// A -06 request from `from` (this server, sent as `From`): `POST` of `body` to `path`
    /// (`mimi_transport::v06::Endpoint06::path`) on `server`; the status and body as
    /// answered, whatever the status (the -06 caller reads each). Retried by the transport.
    async fn post06(
        &self,
        server: &ServerName,
        from: &ServerName,
        path: String,
        body: Vec<u8>,
    ) -> Result<(u16, Vec<u8>), TransportError>;
}

/// [`Peers`] over HTTPS with mutual TLS: two transport clients over one configuration, one
/// with the configuration's retries and one that attempts each call once.
#[derive(Debug, Clone)]
pub struct HttpsPeers {
    retried: MimiClient,
    once: MimiClient,
}

impl HttpsPeers {
    /// Clients built from `config` that find servers through `resolver`. Must be created
    /// inside a Tokio runtime's context.
    pub fn new(config: ClientConfig, resolver: Arc<dyn Resolver>) -> HttpsPeers {
        let mut single = config.clone();
        single.retry = RetryPolicy {
            max_attempts: 1,
            ..config.retry
        };
        // One attempt, so the operation is bounded by the request's own timeouts.
        HttpsPeers {
            retried: MimiClient::new(config, Arc::clone(&resolver)),
            once: MimiClient::new(single, resolver),
        }
    }
}

#[async_trait]
impl Peers for HttpsPeers {
    async fn send_encoded(
        &self,
        server: &ServerName,
        body: Bytes,
        attempts: Attempts,
    ) -> Result<SendOutcome, TransportError> {
        match attempts {
            Attempts::Transport => self.retried.send_encoded(server, body).await,
            Attempts::Once => self.once.send_encoded(server, body).await,
        }
    }

    async fn check_invite(
        &self,
        server: &ServerName,
        request: &CheckInviteRequest,
    ) -> Result<CheckInviteOutcome, TransportError> {
        self.once.check_invite(server, request).await
    }

    async fn identifier_discovery(
        &self,
        server: &ServerName,
        domain: &ServerName,
        request: &IdentifierRequest,
    ) -> Result<IdentifierResponse, TransportError> {
        self.retried
            .identifier_discovery(server, domain, request)
            .await
    }

    async fn post06(
        &self,
        server: &ServerName,
        from: &ServerName,
        path: String,
        body: Vec<u8>,
    ) -> Result<(u16, Vec<u8>), TransportError> {
        let (status, body) = self.retried.post06(server, from, path, body).await?;
        Ok((status, body.to_vec()))
    }
}
