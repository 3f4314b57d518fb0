//! A minimal caller of the provider's client API (`docs/client-api.md`): HTTPS/1.1 on one
//! kept-alive connection, JSON bodies, bearer tokens. Just what the hub benchmark needs to
//! register users, publish key packages, create rooms, submit events and read inboxes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName as TlsServerName;
use serde::de::DeserializeOwned;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Largest answer read (an inbox page of 256 items of about 1.5 KiB in base64 fits).
pub const MAX_ANSWER: usize = 16 * 1024 * 1024;
/// Bound on one exchange (connect if needed, request, answer).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// The content type of JSON bodies.
pub const JSON: &str = "application/json";

/// Why a call to the client API failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// TCP or TLS failed.
    #[error("connect to {addr}: {source}")]
    Connect {
        /// The provider's API address.
        addr: SocketAddr,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// HTTP failed.
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    /// The request could not be built.
    #[error("request: {0}")]
    Build(#[from] hyper::http::Error),
    /// The answer body could not be read or was too large.
    #[error("answer body unreadable or over {MAX_ANSWER} bytes")]
    Body,
    /// No answer in time.
    #[error("{path}: no answer within {CALL_TIMEOUT:?}")]
    Timeout {
        /// The request path.
        path: String,
    },
    /// The provider answered with an error status.
    #[error("{path}: status {status}: {body}")]
    Status {
        /// The request path.
        path: String,
        /// The status.
        status: StatusCode,
        /// The answer, as text.
        body: String,
    },
    /// The answer is not the JSON expected.
    #[error("{path}: unexpected JSON: {source}")]
    Json {
        /// The request path.
        path: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
}

/// One client-API connection to one provider.
pub struct ApiClient {
    addr: SocketAddr,
    name: TlsServerName<'static>,
    host: HeaderValue,
    tls: TlsConnector,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Clone for ApiClient {
    /// A client for the same provider, on its own connection (opened at first use).
    fn clone(&self) -> Self {
        ApiClient {
            addr: self.addr,
            name: self.name.clone(),
            host: self.host.clone(),
            tls: self.tls.clone(),
            sender: None,
        }
    }
}

impl ApiClient {
    /// A client for the provider whose API listens on `addr` with a certificate for
    /// `name` (`tls` trusts its CA).
    pub fn new(
        addr: SocketAddr,
        name: TlsServerName<'static>,
        host: HeaderValue,
        tls: Arc<rustls::ClientConfig>,
    ) -> Self {
        ApiClient {
            addr,
            name,
            host,
            tls: TlsConnector::from(tls),
            sender: None,
        }
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, ApiError> {
        let addr = self.addr;
        let io = |source| ApiError::Connect { addr, source };
        let tcp = TcpStream::connect(addr).await.map_err(io)?;
        tcp.set_nodelay(true).map_err(io)?;
        let tls = self.tls.connect(self.name.clone(), tcp).await.map_err(io)?;
        let (sender, connection) = http1::handshake(TokioIo::new(tls)).await?;
        tokio::spawn(async move {
            // Ends when the sender is dropped or the server closes the connection.
            let _ = connection.await;
        });
        Ok(sender)
    }

    /// One request; the answer's status and body. The connection is kept for the next
    /// call, and opened again after a failure.
    pub async fn call(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<(&'static str, Bytes)>,
    ) -> Result<(StatusCode, Bytes), ApiError> {
        let exchange = self.exchange(method, path, token, body);
        match tokio::time::timeout(CALL_TIMEOUT, exchange).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(error)) => {
                self.sender = None;
                Err(error)
            }
            Err(_) => {
                self.sender = None;
                Err(ApiError::Timeout {
                    path: path.to_owned(),
                })
            }
        }
    }

    async fn exchange(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<(&'static str, Bytes)>,
    ) -> Result<(StatusCode, Bytes), ApiError> {
        let mut sender = match self.sender.take() {
            Some(sender) if !sender.is_closed() => sender,
            _ => self.connect().await?,
        };
        sender.ready().await?;
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.host.clone());
        if let Some(token) = token {
            let value = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(hyper::http::Error::from)?;
            request = request.header(AUTHORIZATION, value);
        }
        let request = match body {
            Some((content_type, bytes)) => request
                .header(CONTENT_TYPE, content_type)
                .body(Full::new(bytes))?,
            None => request.body(Full::new(Bytes::new()))?,
        };
        let response = sender.send_request(request).await?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|_| ApiError::Body)?
            .to_bytes();
        self.sender = Some(sender);
        Ok((status, body))
    }

    /// A call that must answer `200` with JSON of type `T`.
    pub async fn json<T: DeserializeOwned>(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> Result<T, ApiError> {
        let body = body.map(|v| (JSON, Bytes::from(v.to_string())));
        let (status, answer) = self.call(method, path, token, body).await?;
        if status != StatusCode::OK {
            return Err(ApiError::Status {
                path: path.to_owned(),
                status,
                body: String::from_utf8_lossy(&answer).into_owned(),
            });
        }
        serde_json::from_slice(&answer).map_err(|source| ApiError::Json {
            path: path.to_owned(),
            source,
        })
    }
}

/// A room ID (or any path segment) percent-encoded for a URL path: everything but ASCII
/// letters, digits, `-`, `.` and `_`.
pub fn percent_encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len() * 3);
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_ids_are_percent_encoded() {
        assert_eq!(
            percent_encode("!a-b_c.d:x.example"),
            "%21a-b_c.d%3Ax.example"
        );
    }
}
