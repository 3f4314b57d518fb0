//! A minimal caller of the provider's client API (`docs/client-api.md`): HTTPS/1.1 on one
//! kept-alive connection; requests and answers are `mimi-client-api` types. Just what the
//! hub benchmark needs to register users, publish key packages, create rooms, submit events
//! and read inboxes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HOST, HeaderValue};
use hyper_util::rt::TokioIo;
use mimi_client_api::{EncodeError, Endpoint, EndpointResponse, ResponseError};
use rustls::pki_types::ServerName as TlsServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Largest answer read (an inbox page of 256 items of about 1.5 KiB in base64 fits).
pub const MAX_ANSWER: usize = 16 * 1024 * 1024;
/// Bound on one exchange (connect if needed, request, answer).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);

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
    /// The request could not be encoded.
    #[error("request: {0}")]
    Encode(#[from] EncodeError),
    /// The answer body could not be read or was too large.
    #[error("answer body unreadable or over {MAX_ANSWER} bytes")]
    Body,
    /// No answer in time.
    #[error("{path}: no answer within {CALL_TIMEOUT:?}")]
    Timeout {
        /// The request path.
        path: String,
    },
    /// The provider's answer is an error, or not the endpoint's answer.
    #[error("{path}: {source}")]
    Answer {
        /// The request path.
        path: String,
        /// What was wrong.
        #[source]
        source: ResponseError,
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

    /// One request (as `mimi-client-api` built it); the answer with its body read. The
    /// connection is kept for the next call, and opened again after a failure.
    pub async fn send(
        &mut self,
        request: hyper::http::Request<Bytes>,
    ) -> Result<hyper::http::Response<Bytes>, ApiError> {
        let path = request.uri().path().to_owned();
        let exchange = self.exchange(request);
        match tokio::time::timeout(CALL_TIMEOUT, exchange).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(error)) => {
                self.sender = None;
                Err(error)
            }
            Err(_) => {
                self.sender = None;
                Err(ApiError::Timeout { path })
            }
        }
    }

    async fn exchange(
        &mut self,
        request: hyper::http::Request<Bytes>,
    ) -> Result<hyper::http::Response<Bytes>, ApiError> {
        let mut sender = match self.sender.take() {
            Some(sender) if !sender.is_closed() => sender,
            _ => self.connect().await?,
        };
        sender.ready().await?;
        let (mut head, body) = request.into_parts();
        head.headers.insert(HOST, self.host.clone());
        let response = sender
            .send_request(Request::from_parts(head, Full::new(body)))
            .await?;
        let (head, body) = response.into_parts();
        let body = Limited::new(body, MAX_ANSWER)
            .collect()
            .await
            .map_err(|_| ApiError::Body)?
            .to_bytes();
        self.sender = Some(sender);
        Ok(hyper::http::Response::from_parts(head, body))
    }

    /// One request of endpoint `E` with `token`; its answer.
    pub async fn call<E: Endpoint>(
        &mut self,
        request: &E,
        token: Option<&str>,
    ) -> Result<E::Response, ApiError> {
        let request = request.try_into_http_request(token)?.map(Bytes::from);
        let path = request.uri().path().to_owned();
        let answer = self.send(request).await?;
        E::Response::try_from_http_response(&answer)
            .map_err(|source| ApiError::Answer { path, source })
    }
}
