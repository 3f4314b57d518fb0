//! # mimi-transport: HTTPS between MIMI providers
//!
//! Owns how providers meet on the network: a hyper 1 + rustls 0.23 server and client with
//! mutual TLS, mapping a TLS peer's certificate to its server name, the REST endpoints of
//! the main spec (`GET /.well-known/mimi/domain`, `POST /send`, `POST /check-invite`,
//! `GET /identifierDiscovery/{domain}`), server-name resolution (`.well-known` discovery or
//! a static map), connection reuse, timeouts and capped exponential backoff with jitter.
//!
//! Must not depend on: signaling, the delivery service, openmls or storage. It moves
//! TLS-encoded `mimi-codec` values between servers and hands decoded input to a handler
//! trait implemented by the layer above.
