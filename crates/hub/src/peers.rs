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
//!
//! ## Connections kept
//! Each client keeps at least [`IDLE_CONNECTIONS_PER_PEER`] idle connections to a peer: as
//! many as the outbox has requests in flight to one destination. With fewer, every burst
//! beyond the bound closed its extra connections when they fell idle and opened them again
//! for the next (a TCP and mutual-TLS handshake each, on both sides): that churn cost the
//! hub about a third of its CPU per message and the followers more (docs/performance.md,
//! "Connections kept for the outbox").

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

/// Idle connections each client keeps to one peer, at least: the outbox's requests in
/// flight to one destination ([`crate::outbox::ROOMS_IN_FLIGHT`] rooms, each up to
/// [`crate::outbox::ROOM_WINDOW`] entries at once), so that its bursts reuse them.
pub const IDLE_CONNECTIONS_PER_PEER: usize =
    crate::outbox::ROOMS_IN_FLIGHT * crate::outbox::ROOM_WINDOW;

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
    /// Clients built from `config` that find servers through `resolver`, each keeping at
    /// least [`IDLE_CONNECTIONS_PER_PEER`] idle connections to a peer. Must be created
    /// inside a Tokio runtime's context.
    pub fn new(mut config: ClientConfig, resolver: Arc<dyn Resolver>) -> HttpsPeers {
        config.max_idle_per_server = config.max_idle_per_server.max(IDLE_CONNECTIONS_PER_PEER);
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

#[cfg(test)]
mod tests {
    use super::*;
    use mimi_transport::StaticResolver;

    /// Both clients keep as many idle connections to a peer as the outbox has requests in
    /// flight to it, whatever smaller bound the configuration asked for.
    #[tokio::test]
    async fn the_clients_keep_a_connection_for_each_request_the_outbox_has_in_flight() {
        let ca = mimi_transport::pki::CertificateAuthority::generate("test CA").expect("a CA");
        let roots = ca.roots().expect("its certificate");
        let tls = mimi_transport::tls::client_config(None, &roots).expect("a configuration");
        let mut config = ClientConfig::new(tls);
        config.max_idle_per_server = 2;
        let peers = HttpsPeers::new(config, Arc::new(StaticResolver::new()));
        for client in [&peers.retried, &peers.once] {
            assert_eq!(
                client.config().max_idle_per_server,
                IDLE_CONNECTIONS_PER_PEER
            );
        }
        assert_eq!(peers.once.config().retry.max_attempts, 1);
        const { assert!(IDLE_CONNECTIONS_PER_PEER >= 128) };
    }
}
