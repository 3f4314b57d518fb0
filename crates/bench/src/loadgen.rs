//! The load generator: N concurrent HTTPS/1.1 clients with mutual TLS, each on one
//! kept-alive connection with one request in flight.
//!
//! Two paces: [`Pace::Saturate`] (closed loop: each client sends its next request as soon
//! as the previous answer is read, which finds the server's saturation throughput) and
//! [`Pace::Rate`] (open loop: requests are due on a fixed schedule spread over the clients,
//! and a slow answer is also charged to the requests that fall due behind it — the
//! coordinated-omission correction of wrk2; see [`charged_latency`]). A run stops after a duration or a number of requests ([`Stop`]).
//!
//! Connections are opened (TCP, TLS handshake with a client certificate, HTTP/1.1) before
//! the clock starts, so a run measures the steady state of kept-alive connections. Every
//! answered request's latency goes into an HDR histogram (microsecond resolution, three
//! significant digits).
//!
//! What a request carries comes from a [`Workload`]: the ceiling sends one fixed body
//! ([`FixedBody`]); the hub benchmark will send `ds.send_message` events spread over its
//! rooms.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName as TlsServerName;
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

/// The content type of every request body (TLS-encoded MIMI structures).
pub const OCTET_STREAM: &str = "application/octet-stream";
/// Largest response body the load generator reads.
pub const MAX_RESPONSE_BODY: usize = 64 * 1024;
/// Default bound on opening one connection (TCP connect, TLS handshake, HTTP handshake).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default bound on one request and its whole response.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Lowest latency the histogram tracks, in microseconds.
const HISTOGRAM_LOW_US: u64 = 1;
/// Highest latency the histogram tracks, in microseconds (larger ones are clamped).
const HISTOGRAM_HIGH_US: u64 = 60_000_000;
/// Significant decimal digits the histogram keeps.
const HISTOGRAM_SIGFIG: u8 = 3;

/// How fast clients send.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// Closed loop: each client sends its next request as soon as it has the last answer.
    Saturate,
    /// Open loop: this many requests per second in total, spread evenly over the clients;
    /// latency counts from when each request was due.
    Rate(f64),
}

/// When a run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// After this long (requests in flight at the end still finish and count).
    After(Duration),
    /// After this many requests in total.
    Count(u64),
}

/// What each request carries.
pub trait Workload: Send + Sync {
    /// The body of request number `sequence` (counted per client) of client `client`.
    fn body(&self, client: usize, sequence: u64) -> Bytes;

    /// The path of that request, when it is not [`LoadConfig::path`] (for example one
    /// per room).
    fn path(&self, _client: usize, _sequence: u64) -> Option<&str> {
        None
    }

    /// The `Authorization` header of that request, when it is not
    /// [`LoadConfig::authorization`] (for example the token of each room's member).
    fn authorization(&self, _client: usize, _sequence: u64) -> Option<&HeaderValue> {
        None
    }

    /// More headers of every request (for example -06's `From: mimi@<provider>`).
    fn headers(&self) -> &[(HeaderName, HeaderValue)] {
        &[]
    }

    /// Whether a `200` answer with this body counts as accepted (a -06 `submitMessage`
    /// answers `200` with `notAllowed` too).
    fn accepts(&self, _body: &[u8]) -> bool {
        true
    }
}

/// The same body for every request.
#[derive(Debug, Clone)]
pub struct FixedBody(pub Bytes);

impl Workload for FixedBody {
    fn body(&self, _client: usize, _sequence: u64) -> Bytes {
        self.0.clone()
    }
}

/// Where and how to send load.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// The server's address.
    pub addr: SocketAddr,
    /// The name the server's certificate must carry.
    pub server_name: TlsServerName<'static>,
    /// The client TLS configuration, with the client certificate.
    pub tls: Arc<rustls::ClientConfig>,
    /// The request path, for example `/send`.
    pub path: String,
    /// Concurrent clients, one connection each.
    pub clients: usize,
    /// How fast to send.
    pub pace: Pace,
    /// When to stop.
    pub stop: Stop,
    /// Bound on opening a connection.
    pub connect_timeout: Duration,
    /// Bound on one request and its response.
    pub request_timeout: Duration,
    /// The `Authorization` header of every request, if any (the hub's client API wants a
    /// bearer token).
    pub authorization: Option<HeaderValue>,
}

impl LoadConfig {
    /// A configuration with the default timeouts.
    pub fn new(
        addr: SocketAddr,
        server_name: TlsServerName<'static>,
        tls: Arc<rustls::ClientConfig>,
        path: impl Into<String>,
        clients: usize,
        pace: Pace,
        stop: Stop,
    ) -> Self {
        LoadConfig {
            addr,
            server_name,
            tls,
            path: path.into(),
            clients,
            pace,
            stop,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            authorization: None,
        }
    }
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The configuration asks for no clients, or for a rate that is not a positive number.
    #[error("invalid load configuration: {0}")]
    InvalidConfig(&'static str),
    /// A connection could not be opened.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The server.
        addr: SocketAddr,
        /// What failed.
        #[source]
        source: ConnectError,
    },
    /// The latency histogram could not be created.
    #[error("cannot create the latency histogram: {0}")]
    Histogram(#[from] hdrhistogram::CreationError),
}

/// Why one connection could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// TCP connect failed.
    #[error("TCP: {0}")]
    Tcp(#[source] std::io::Error),
    /// The TLS handshake failed.
    #[error("TLS: {0}")]
    Tls(#[source] std::io::Error),
    /// The HTTP/1.1 handshake failed.
    #[error("HTTP: {0}")]
    Http(#[source] hyper::Error),
    /// Opening the connection took longer than the connect timeout.
    #[error("timed out")]
    Timeout,
}

/// Why one request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The request could not be built (the path or server name is not valid in HTTP).
    #[error("cannot build the request: {0}")]
    Build(#[from] hyper::http::Error),
    /// The connection failed.
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    /// The response body could not be read, or was over [`MAX_RESPONSE_BODY`].
    #[error("response body: {0}")]
    Body(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// No answer within the request timeout.
    #[error("timed out")]
    Timeout,
    /// The connection broke and could not be opened again.
    #[error("reconnect: {0}")]
    Reconnect(#[from] ConnectError),
}

/// Latency percentiles of the answered requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LatencySummary {
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// 99.9th percentile.
    pub p999: Duration,
    /// Largest.
    pub max: Duration,
}

impl LatencySummary {
    /// Percentiles of a histogram of microseconds.
    pub fn of(histogram: &Histogram<u64>) -> Self {
        let at = |q: f64| Duration::from_micros(histogram.value_at_quantile(q));
        LatencySummary {
            p50: at(0.5),
            p99: at(0.99),
            p999: at(0.999),
            max: Duration::from_micros(histogram.max()),
        }
    }
}

/// What a run measured.
#[derive(Debug)]
pub struct LoadReport {
    /// Requests answered with `200`.
    pub accepted: u64,
    /// Requests answered with another status.
    pub refused: u64,
    /// Requests that got no answer (connection error or timeout).
    pub failed: u64,
    /// The first failure, for diagnosis.
    pub first_failure: Option<RequestError>,
    /// The first status other than `200`, for diagnosis.
    pub first_refusal: Option<StatusCode>,
    /// From the start of the clock to the last answer.
    pub elapsed: Duration,
    /// Latency of the `200` answers, in microseconds.
    pub latency: Histogram<u64>,
}

impl LoadReport {
    /// Accepted requests per second.
    pub fn throughput(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            self.accepted as f64 / seconds
        } else {
            0.0
        }
    }

    /// Latency percentiles of the accepted requests.
    pub fn latency_summary(&self) -> LatencySummary {
        LatencySummary::of(&self.latency)
    }
}

/// A new latency histogram (microseconds, 1 µs to 60 s, three significant digits).
pub fn latency_histogram() -> Result<Histogram<u64>, hdrhistogram::CreationError> {
    Histogram::new_with_bounds(HISTOGRAM_LOW_US, HISTOGRAM_HIGH_US, HISTOGRAM_SIGFIG)
}

pub(crate) type Sender = SendRequest<Full<Bytes>>;

/// Open one kept-alive HTTPS/1.1 connection with the client certificate.
pub(crate) async fn connect(config: &LoadConfig) -> Result<Sender, ConnectError> {
    let open = async {
        let tcp = TcpStream::connect(config.addr)
            .await
            .map_err(ConnectError::Tcp)?;
        tcp.set_nodelay(true).map_err(ConnectError::Tcp)?;
        let tls = TlsConnector::from(config.tls.clone())
            .connect(config.server_name.clone(), tcp)
            .await
            .map_err(ConnectError::Tls)?;
        let (sender, connection) = http1::handshake(TokioIo::new(tls))
            .await
            .map_err(ConnectError::Http)?;
        tokio::spawn(async move {
            // The connection ends when the sender is dropped or the server closes it; the
            // request that was in flight then reports the error.
            let _ = connection.await;
        });
        Ok(sender)
    };
    tokio::time::timeout(config.connect_timeout, open)
        .await
        .map_err(|_| ConnectError::Timeout)?
}

/// Run load against a server and report what it measured.
pub async fn run(
    config: Arc<LoadConfig>,
    workload: Arc<dyn Workload>,
) -> Result<LoadReport, LoadError> {
    if config.clients == 0 {
        return Err(LoadError::InvalidConfig("no clients"));
    }
    if let Pace::Rate(rate) = config.pace
        && !(rate.is_finite() && rate > 0.0)
    {
        return Err(LoadError::InvalidConfig(
            "the rate must be a positive number",
        ));
    }
    let host = HeaderValue::from_str(&server_name_text(&config.server_name))
        .map_err(|_| LoadError::InvalidConfig("the server name is not a valid Host header"))?;

    let mut opening = JoinSet::new();
    for _ in 0..config.clients {
        let config = config.clone();
        opening.spawn(async move { connect(&config).await });
    }
    let mut senders = Vec::with_capacity(config.clients);
    while let Some(opened) = opening.join_next().await {
        match opened {
            Ok(Ok(sender)) => senders.push(sender),
            Ok(Err(source)) => {
                return Err(LoadError::Connect {
                    addr: config.addr,
                    source,
                });
            }
            Err(join) => {
                return Err(LoadError::Connect {
                    addr: config.addr,
                    source: ConnectError::Tcp(std::io::Error::other(join)),
                });
            }
        }
    }

    let start = Instant::now();
    let issued = Arc::new(AtomicU64::new(0));
    let mut clients = JoinSet::new();
    for (index, sender) in senders.into_iter().enumerate() {
        let client = Client {
            index,
            config: config.clone(),
            workload: workload.clone(),
            host: host.clone(),
            issued: issued.clone(),
            start,
            latency: latency_histogram()?,
            tally: Tally::default(),
        };
        clients.spawn(client.run(sender));
    }

    let mut report = LoadReport {
        accepted: 0,
        refused: 0,
        failed: 0,
        first_failure: None,
        first_refusal: None,
        elapsed: Duration::ZERO,
        latency: latency_histogram()?,
    };
    while let Some(done) = clients.join_next().await {
        let Ok((latency, tally)) = done else {
            // A client task panicked: its requests are lost, which the counts show.
            continue;
        };
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = report.latency.add(&latency);
        report.accepted += tally.accepted;
        report.refused += tally.refused;
        report.failed += tally.failed;
        report.first_failure = report.first_failure.or(tally.first_failure);
        report.first_refusal = report.first_refusal.or(tally.first_refusal);
    }
    report.elapsed = start.elapsed();
    Ok(report)
}

fn server_name_text(name: &TlsServerName<'_>) -> String {
    match name {
        TlsServerName::DnsName(dns) => dns.as_ref().to_owned(),
        TlsServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
        other => format!("{other:?}"),
    }
}

#[derive(Default)]
struct Tally {
    accepted: u64,
    refused: u64,
    failed: u64,
    first_failure: Option<RequestError>,
    first_refusal: Option<StatusCode>,
}

struct Client {
    index: usize,
    config: Arc<LoadConfig>,
    workload: Arc<dyn Workload>,
    host: HeaderValue,
    issued: Arc<AtomicU64>,
    start: Instant,
    latency: Histogram<u64>,
    tally: Tally,
}

enum Answer {
    Accepted,
    Refused(StatusCode),
}

/// The latency charged to one answered request, and when its connection becomes free on
/// the ideal schedule.
///
/// Closed loop (`due` is `None`): the time from sending to the answer (`service`).
///
/// Open loop: latency as if every request had been sent exactly when due, or when its
/// connection became free on that ideal schedule, with the service time measured. A slow
/// answer thus delays (and is charged to) the requests that fall due behind it — the
/// coordinated-omission correction of wrk2 — while the timer's wake-up lag (up to a
/// millisecond with tokio's timer) is charged to nobody: the server did not cause it.
pub fn charged_latency(
    due: Option<Instant>,
    ideal_free: Instant,
    service: Duration,
) -> (Duration, Instant) {
    match due {
        None => (service, ideal_free),
        Some(due) => {
            let ideal_start = due.max(ideal_free);
            let ideal_end = ideal_start + service;
            (ideal_end - due, ideal_end)
        }
    }
}

impl Client {
    /// The time request `sequence` of this client is due, for a paced run.
    fn due(&self, sequence: u64) -> Option<Instant> {
        let Pace::Rate(rate) = self.config.pace else {
            return None;
        };
        let interval = self.config.clients as f64 / rate;
        let offset = interval * self.index as f64 / self.config.clients as f64;
        Some(self.start + Duration::from_secs_f64(offset + interval * sequence as f64))
    }

    /// Whether the run has room for one more request (and claim it).
    fn claim(&self, now: Instant) -> bool {
        match self.config.stop {
            Stop::After(duration) => now < self.start + duration,
            Stop::Count(count) => self.issued.fetch_add(1, Ordering::Relaxed) < count,
        }
    }

    async fn run(mut self, mut sender: Sender) -> (Histogram<u64>, Tally) {
        let mut sequence = 0u64;
        // When the connection becomes free on the ideal schedule (see `charged_latency`).
        let mut ideal_free = self.start;
        loop {
            let due = self.due(sequence);
            if let Some(due) = due {
                if let Stop::After(duration) = self.config.stop
                    && due >= self.start + duration
                {
                    break;
                }
                tokio::time::sleep_until(due).await;
            }
            let sent = Instant::now();
            if !self.claim(sent) {
                break;
            }
            let body = self.workload.body(self.index, sequence);
            let path = self
                .workload
                .path(self.index, sequence)
                .unwrap_or(self.config.path.as_str())
                .to_owned();
            let authorization = self
                .workload
                .authorization(self.index, sequence)
                .or(self.config.authorization.as_ref())
                .cloned();
            sequence += 1;
            let answer = self.request(&mut sender, &path, authorization, body).await;
            let (latency, free) = charged_latency(due, ideal_free, sent.elapsed());
            ideal_free = free;
            match answer {
                Ok(Answer::Accepted) => {
                    let micros = latency.as_micros();
                    self.latency
                        .saturating_record(u64::try_from(micros).unwrap_or(u64::MAX));
                    self.tally.accepted += 1;
                }
                Ok(Answer::Refused(status)) => {
                    self.tally.refused += 1;
                    self.tally.first_refusal.get_or_insert(status);
                }
                Err(error) => {
                    self.tally.failed += 1;
                    self.tally.first_failure.get_or_insert(error);
                    match connect(&self.config).await {
                        Ok(fresh) => sender = fresh,
                        Err(error) => {
                            self.tally
                                .first_failure
                                .get_or_insert(RequestError::Reconnect(error));
                            break;
                        }
                    }
                }
            }
        }
        (self.latency, self.tally)
    }

    async fn request(
        &self,
        sender: &mut Sender,
        path: &str,
        authorization: Option<HeaderValue>,
        body: Bytes,
    ) -> Result<Answer, RequestError> {
        let exchange = async {
            sender.ready().await?;
            let mut request = Request::builder()
                .method(Method::POST)
                .uri(path)
                .header(HOST, self.host.clone())
                .header(CONTENT_TYPE, HeaderValue::from_static(OCTET_STREAM));
            if let Some(authorization) = authorization {
                request = request.header(AUTHORIZATION, authorization);
            }
            for (name, value) in self.workload.headers() {
                request = request.header(name, value);
            }
            let request = request.body(Full::new(body))?;
            let response = sender.send_request(request).await?;
            let status = response.status();
            let answer = Limited::new(response.into_body(), MAX_RESPONSE_BODY)
                .collect()
                .await
                .map_err(RequestError::Body)?
                .to_bytes();
            Ok(
                if status == StatusCode::OK && self.workload.accepts(&answer) {
                    Answer::Accepted
                } else {
                    Answer::Refused(status)
                },
            )
        };
        tokio::time::timeout(self.config.request_timeout, exchange)
            .await
            .map_err(|_| RequestError::Timeout)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_loop_latency_is_the_service_time() {
        let start = Instant::now();
        let service = Duration::from_micros(400);
        assert_eq!(charged_latency(None, start, service), (service, start));
    }

    #[test]
    fn timer_lag_is_not_charged_but_queueing_behind_a_slow_answer_is() {
        let start = Instant::now();
        let ms = Duration::from_millis;
        // Due at 10 ms, free since 0: charged its service time only, however late the
        // timer woke the client.
        let (latency, free) = charged_latency(Some(start + ms(10)), start, ms(1));
        assert_eq!((latency, free), (ms(1), start + ms(11)));
        // A slow answer (5 ms) to a request due at 20 ms keeps the connection until 25 ms;
        // the next request, due at 22 ms, waits 3 ms on the ideal schedule, then takes 1 ms.
        let (slow, free) = charged_latency(Some(start + ms(20)), free, ms(5));
        assert_eq!((slow, free), (ms(5), start + ms(25)));
        let (queued, free) = charged_latency(Some(start + ms(22)), free, ms(1));
        assert_eq!((queued, free), (ms(4), start + ms(26)));
    }
}
