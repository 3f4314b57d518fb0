//! The client's error type.

use mimi_codec::{CodecError, EventError};

use crate::resolve::ResolveError;

/// A boxed error from the HTTP or I/O layer, kept as the source of a [`TransportError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Which deadline expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutStage {
    /// Opening the TCP connection and completing the TLS handshake.
    Connect,
    /// One request: sending it and reading the whole response.
    Request,
    /// The whole operation, retries included.
    Operation,
}

/// Why a request to another server failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The peer could not be reached, or the connection broke (after `attempts` tries).
    #[error("network error after {attempts} attempt(s): {source}")]
    Network {
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        #[source]
        source: BoxError,
    },
    /// A deadline expired (after `attempts` tries).
    #[error("{stage:?} timeout after {attempts} attempt(s)")]
    Timeout {
        /// Attempts made.
        attempts: u32,
        /// Which deadline.
        stage: TimeoutStage,
    },
    /// The TLS handshake failed: the peer's certificate is not trusted or does not carry
    /// the expected name, or the peer refused ours. Not retried.
    #[error("TLS failure: {0}")]
    Tls(#[source] rustls::Error),
    /// The peer refused the request (`400`, `403` and other client errors but `413`).
    #[error("refused with HTTP {status}{}", .error.as_ref().map(|e| format!(": {:?} {}", e.code, e.detail.as_str())).unwrap_or_default())]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The error the peer sent, when its body decodes as one.
        error: Option<EventError>,
    },
    /// The peer answered `413`: the body is over its limit. Not retried.
    #[error("the peer refused the body as too large")]
    TooLarge,
    /// The peer failed with a server error (`5xx`), after `attempts` tries.
    #[error("server error HTTP {status} after {attempts} attempt(s)")]
    ServerError {
        /// The HTTP status.
        status: u16,
        /// Attempts made.
        attempts: u32,
        /// The error the peer sent, when its body decodes as one.
        error: Option<EventError>,
    },
    /// The response could not be decoded (or the request could not be encoded).
    #[error("codec error: {0}")]
    Decode(#[from] CodecError),
    /// The response broke the transport's rules (wrong content type, body over the limit,
    /// `.well-known` body that is not a server name).
    #[error("invalid response: {0}")]
    InvalidResponse(&'static str),
    /// The server name could not be resolved.
    #[error("cannot resolve: {0}")]
    Resolve(#[from] ResolveError),
}

impl TransportError {
    /// Whether another attempt may succeed: network errors, connect and request timeouts,
    /// `502`/`503`/`504`, and transient resolution failures. Never `400` or `413`.
    pub fn is_transient(&self) -> bool {
        match self {
            TransportError::Network { .. } => true,
            TransportError::Timeout { stage, .. } => *stage != TimeoutStage::Operation,
            TransportError::ServerError { status, .. } => matches!(status, 502..=504),
            TransportError::Resolve(e) => e.is_transient(),
            TransportError::Tls(_)
            | TransportError::Refused { .. }
            | TransportError::TooLarge
            | TransportError::Decode(_)
            | TransportError::InvalidResponse(_) => false,
        }
    }

    pub(crate) fn set_attempts(&mut self, n: u32) {
        match self {
            TransportError::Network { attempts, .. }
            | TransportError::Timeout { attempts, .. }
            | TransportError::ServerError { attempts, .. } => *attempts = n,
            _ => {}
        }
    }
}
