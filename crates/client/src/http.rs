//! One HTTPS request at a time to the provider's client API: TCP, a rustls handshake that
//! verifies the provider's certificate against the configured CA (no client certificate),
//! and an HTTP/1.1 exchange with hyper. A command-line client makes a handful of requests
//! per run, so there is no pool.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;
use hyper::header::{HOST, HeaderValue};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::error::ClientError;

/// Largest response body accepted (an inbox page of large commits fits).
pub const MAX_RESPONSE_LEN: usize = 64 * 1024 * 1024;
/// Time allowed for one whole exchange (connect, handshake, request, response).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// The default HTTPS port.
pub const DEFAULT_PORT: u16 = 443;

/// Where the provider's API is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The host (the TLS server name).
    pub host: String,
    /// The port.
    pub port: u16,
    /// The `host:port` to connect to (the URL's unless overridden).
    pub connect: String,
}

impl Endpoint {
    /// Parse `https://host[:port][/]`; `connect` overrides the address dialled.
    pub fn parse(url: &str, connect: Option<&str>) -> Result<Self, ClientError> {
        let bad = || ClientError::BadUrl(url.to_owned());
        let rest = url.strip_prefix("https://").ok_or_else(bad)?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
            return Err(bad());
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, p.parse::<u16>().map_err(|_| bad())?),
            Some(_) => return Err(bad()),
            None => (rest, DEFAULT_PORT),
        };
        if host.is_empty() {
            return Err(bad());
        }
        Ok(Endpoint {
            host: host.to_owned(),
            port,
            connect: connect.map_or_else(|| format!("{host}:{port}"), str::to_owned),
        })
    }
}

/// An HTTPS client for one provider.
#[derive(Clone)]
pub struct Https {
    endpoint: Endpoint,
    tls: TlsConnector,
}

impl std::fmt::Debug for Https {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Https")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl Https {
    /// A client for `endpoint` trusting the CA certificates of the PEM file `ca`.
    pub fn new(endpoint: Endpoint, ca: &std::path::Path) -> Result<Self, ClientError> {
        let roots = mimi_transport::tls::certificates_from_pem_file(ca)?;
        let config: Arc<rustls::ClientConfig> = mimi_transport::tls::client_config(None, &roots)?;
        Ok(Https {
            endpoint,
            tls: TlsConnector::from(config),
        })
    }

    /// Send one request (its path and query, headers and body as `mimi-client-api` built
    /// them); the answer with its body read.
    pub async fn send(
        &self,
        request: hyper::http::Request<Vec<u8>>,
    ) -> Result<hyper::http::Response<Bytes>, ClientError> {
        tokio::time::timeout(REQUEST_TIMEOUT, self.exchange(request))
            .await
            .map_err(|_| ClientError::Connect {
                addr: self.endpoint.connect.clone(),
                source: std::io::Error::new(std::io::ErrorKind::TimedOut, "request timed out"),
            })?
    }

    async fn exchange(
        &self,
        request: hyper::http::Request<Vec<u8>>,
    ) -> Result<hyper::http::Response<Bytes>, ClientError> {
        let addr = &self.endpoint.connect;
        let connect_error = |source| ClientError::Connect {
            addr: addr.clone(),
            source,
        };
        let tcp = TcpStream::connect(addr).await.map_err(connect_error)?;
        let name = ServerName::try_from(self.endpoint.host.clone()).map_err(|_| {
            ClientError::BadUrl(format!(
                "https://{}:{}",
                self.endpoint.host, self.endpoint.port
            ))
        })?;
        let tls = self.tls.connect(name, tcp).await.map_err(connect_error)?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
        let driver = tokio::spawn(connection);

        let host = if self.endpoint.port == DEFAULT_PORT {
            self.endpoint.host.clone()
        } else {
            format!("{}:{}", self.endpoint.host, self.endpoint.port)
        };
        let (mut head, body) = request.into_parts();
        head.headers.insert(
            HOST,
            HeaderValue::try_from(host).map_err(hyper::http::Error::from)?,
        );
        let request = Request::from_parts(head, Full::new(Bytes::from(body)));
        let response = sender.send_request(request).await?;
        let (head, body) = response.into_parts();
        let body = Limited::new(body, MAX_RESPONSE_LEN)
            .collect()
            .await
            .map_err(|_| ClientError::UnexpectedResponse("response body unreadable or too large"))?
            .to_bytes();
        driver.abort();
        Ok(hyper::http::Response::from_parts(head, body))
    }
}
