//! # mimi-transport: HTTPS between MIMI providers
//!
//! Owns how providers meet on the network: a hyper 1 + rustls 0.23 server and client with
//! mutual TLS (and the same server, with server-authenticated TLS, for any other HTTP
//! service of a provider, such as its client API), mapping a TLS peer's certificate to its server name, the REST endpoints of
//! the main spec (`GET /.well-known/mimi/domain`, `POST /send`, `POST /check-invite`,
//! `GET /identifierDiscovery/{domain}`), server-name resolution (`.well-known` discovery or
//! a static map), connection reuse, timeouts and capped exponential backoff with jitter.
//!
//! Must not depend on: signaling, the delivery service, openmls or storage. It moves
//! TLS-encoded `mimi-codec` values between servers and hands decoded input to a handler
//! trait implemented by the layer above.
//!
//! Map:
//! - [`accept`]: [`serve_connections`], the one accept loop of every listener (connection
//!   caps in total and per IP address, accept back-off, handshake, idle, head, body and
//!   write deadlines, restricted certificate-less connections, graceful drain), serving any hyper
//!   service; [`serve_http`], a plain-TLS [`HttpService`] on it with the body limit.
//! - [`server`]: [`serve`], the [`Handler`] seam, routing and the status mapping.
//! - [`client`]: [`MimiClient`] (pooled, bounded, retrying).
//! - [`resolve`]: [`Resolver`], [`StaticResolver`], [`DnsResolver`], [`WellKnownResolver`].
//! - [`tls`]: PEM loading, rustls configs (always the `ring` provider, passed explicitly),
//!   peer certificate → server name.
//! - [`check`]: pure checks for the hub (sender on the TLS peer, follower sources).
//! - [`backoff`]: the pure backoff schedule.
//! - [`body`]: error bodies.
//! - [`v06`]: the second version (draft-ietf-mimi-protocol-06) on the same listener: its
//!   routes, the directory, `Host`/`From`, decoded bodies, the [`v06::Handler06`] seam.
//! - `pki` (feature `pki`): a CA and certificates for tests, the demo and local providers.

pub mod accept;
pub mod backoff;
pub mod body;
pub mod check;
pub mod client;
mod error;
mod io;
#[cfg(feature = "pki")]
pub mod pki;
pub mod resolve;
pub mod server;
pub mod tls;
pub mod v06;

pub use accept::{
    BodyRefusal, Connection, ConnectionLimits, ConnectionMode, HttpConfig, HttpService, LogLimiter,
    RemoteAddr, serve_connections, serve_http,
};
pub use backoff::{Jitter, RandomJitter, RetryPolicy};
pub use check::{check_follower_source, check_sender};
pub use client::{CheckInviteOutcome, ClientConfig, MimiClient, SendOutcome};
pub use error::{BoxError, TimeoutStage, TransportError};
pub use resolve::{
    DnsResolver, Endpoint, ResolveError, Resolver, StaticResolver, WellKnownResolver,
};
pub use server::{CheckInviteReply, Handler, Reply, ServerConfig, serve};
pub use tls::{Identity, PeerNameError, PeerNames, TlsConfigError};
