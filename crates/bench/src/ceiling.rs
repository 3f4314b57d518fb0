//! The ceiling: the fastest HTTPS server this machine runs with the same stack as the hub
//! (hyper 1, rustls 0.23 with `ring`, mutual TLS, HTTP/1.1 keep-alive) and no MIMI work.
//!
//! It does per connection what the MIMI transport does (the TLS handshake verifying the
//! client certificate, and reading the peer's server name from it), and per request only
//! what any server must: read the whole body and answer `200` with a small body (an
//! encoded `EventResponse` `ok`, the size of the hub's answer). A connection without a
//! client certificate that names one server gets `403` on every request, like the
//! transport. The hub's throughput is reported as a fraction of this server's.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use mimi_codec::limits::MAX_MESSAGE_LEN;
use mimi_transport::tls::peer_names;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::loadgen::OCTET_STREAM;

/// Serve the ceiling on `listener` until `shutdown` completes, answering every `POST` with
/// `200` and `answer`. Open connections are dropped at shutdown.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    answer: Bytes,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        while connections.try_join_next().is_some() {}
        let tcp = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                // Out of descriptors or a connection reset before accept: try the next.
                Err(_) => continue,
            },
        };
        let acceptor = acceptor.clone();
        let answer = answer.clone();
        connections.spawn(async move {
            // A failed handshake or connection only ends that connection.
            let _ = tcp.set_nodelay(true);
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let authenticated = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(<[_]>::first)
                .is_some_and(|end_entity| peer_names(end_entity).is_ok());
            let service = service_fn(move |request| {
                let answer = answer.clone();
                async move { Ok::<_, Infallible>(handle(request, authenticated, answer).await) }
            });
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
    connections.shutdown().await;
}

async fn handle(
    request: Request<Incoming>,
    authenticated: bool,
    answer: Bytes,
) -> Response<Full<Bytes>> {
    if !authenticated {
        return status(StatusCode::FORBIDDEN);
    }
    if request.method() != Method::POST {
        return status(StatusCode::METHOD_NOT_ALLOWED);
    }
    match Limited::new(request.into_body(), MAX_MESSAGE_LEN)
        .collect()
        .await
    {
        Ok(_) => {
            let mut response = Response::new(Full::new(answer));
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(OCTET_STREAM));
            response
        }
        Err(_) => status(StatusCode::BAD_REQUEST),
    }
}

fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = code;
    response
}
