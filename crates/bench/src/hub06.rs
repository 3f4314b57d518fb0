//! The -06 hub benchmark (`mimi-bench hub06 [--quick] [--haven PATH]`): a follower's
//! `submitMessage` (draft-ietf-mimi-protocol-06 §5.4) to the room's hub.
//!
//! Three `mimi-hub` processes on loopback (A, B, C); Alice at A creates a -06 room
//! (`mimi://a.bench.test/r/bench`) with our client library (real openmls), gets consent from
//! Bob at B and Carol at C and adds both; Bob joins from his Welcome. Bob's MLS client then
//! encrypts [`messages`] distinct franked PrivateMessages, each wrapped in a
//! `SubmitMessageRequest`: those bytes are the load. The load generator speaks as provider B
//! (B's client certificate, `From: mimi@b.bench.test`, `Host: a.bench.test`) to A's
//! federation listener, `POST /mimi/v06/submitMessage/{roomId}`; a request counts as accepted
//! only when the answer is `200` with a `SubmitMessageResponse` saying `accepted`.
//!
//! With `--haven PATH`, the same bytes go to Haven's `mimi-hubd` (built from that checkout,
//! given A's name and A's certificate from the same CA, the room made known to it through its
//! own JSON lane `POST /mimi/v1/addParticipant`), at `POST /mimi/pl/submitMessage/{roomId}`,
//! with the same client certificate and headers, in the same run.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HOST, HeaderName, HeaderValue};
use hyper::{Method, Request};
use mimi_client::api::RegisterRequest;
use mimi_client::{Client, Registration};
use mimi_codec::v06::{
    IdentifierUri, MlsMessage, Protocol, SubmitMessageRequest, SubmitMessageResponse, SubmitOutcome,
};
use mimi_codec::{ServerName, Wire};
use mimi_transport::v06::Endpoint06;

use crate::hub::{BENCH_RATE_LIMITS, HubBenchError, HubProcess, free_port, tls_name};
use crate::loadgen::{LoadConfig, LoadReport, Pace, Sender, Stop, Workload};
use crate::process::{PerUnit, Usage, usage};
use crate::setup::{BenchPki, CA_STEM, ScratchDir};
use crate::suite::{BenchError, Settings, Target};

/// The three providers: A (the room's hub), B and C (followers).
pub const PROVIDERS: [&str; 3] = ["a.bench.test", "b.bench.test", "c.bench.test"];
/// The room's local part.
pub const ROOM_ID: &str = "bench";
/// The size of each message's plaintext (its ciphertext is about 1 KiB).
pub const PLAINTEXT_LEN: usize = 960;
/// The salt length of a franked message (draft-ietf-mimi-protocol-06 §5.4.1.1).
const SALT_LEN: usize = 16;
/// Bound on one load request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the drainer waits before asking `mimi-hubd`'s empty queue again.
const DRAIN_POLL: Duration = Duration::from_millis(1);
/// How many connections take the messages `mimi-hubd` queued (its queue is bounded).
const HAVEN_DRAINERS: usize = 4;
/// How long `mimi-hubd` may take to accept connections.
const HAVEN_START: Duration = Duration::from_secs(30);

/// How many distinct messages are precomputed: every request of a run is one of them, and
/// the hub logs a byte-identical resend once, so there are more than a run sends at the
/// rates this machine reaches.
pub fn messages(settings: &Settings) -> usize {
    if settings.quick { 6_000 } else { 40_000 }
}

/// The precomputed `submitMessage` load: distinct request bodies, the path, and the
/// `From` header.
#[derive(Debug)]
pub struct SubmitWorkload {
    bodies: Vec<Bytes>,
    headers: Vec<(HeaderName, HeaderValue)>,
    next: AtomicU64,
}

impl SubmitWorkload {
    /// The load of `bodies`, sent as provider `from`.
    pub fn new(bodies: Vec<Bytes>, from: &str) -> Result<Self, HubBenchError> {
        let from = HeaderValue::from_str(&format!("mimi@{from}"))
            .map_err(|_| HubBenchError::Unexpected(format!("From for {from}")))?;
        Ok(SubmitWorkload {
            bodies,
            headers: vec![(HeaderName::from_static("from"), from)],
            next: AtomicU64::new(0),
        })
    }

    /// The bodies.
    pub fn bodies(&self) -> &[Bytes] {
        &self.bodies
    }
}

impl Workload for SubmitWorkload {
    /// The next precomputed body, over all clients (wrapping after the last).
    fn body(&self, _client: usize, _sequence: u64) -> Bytes {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let len = self.bodies.len().max(1) as u64;
        self.bodies
            .get(usize::try_from(n % len).unwrap_or(0))
            .cloned()
            .unwrap_or_default()
    }

    fn headers(&self) -> &[(HeaderName, HeaderValue)] {
        &self.headers
    }

    fn accepts(&self, body: &[u8]) -> bool {
        matches!(
            SubmitMessageResponse::decode(body).map(|r| r.outcome),
            Ok(SubmitOutcome::Accepted { .. })
        )
    }
}

/// Three providers, the room, and Bob's precomputed messages.
pub struct Room06 {
    /// A, B, C. Declared before the scratch directory: fields drop in order, and a
    /// provider writes its storage until it has stopped.
    pub processes: Vec<HubProcess>,
    dir: ScratchDir,
    pki: BenchPki,
    /// The room's URI.
    pub room: IdentifierUri,
    /// Bob's URI (the messages' `sendingUri`).
    pub bob: String,
    /// The `SubmitMessageRequest` bodies.
    pub bodies: Vec<Bytes>,
}

fn user(provider: &str, name: &str) -> String {
    format!("mimi://{provider}/u/{name}")
}

async fn client(
    dir: &Path,
    ca: &Path,
    name: &str,
    api: std::net::SocketAddr,
    localpart: &str,
) -> Result<Client, HubBenchError> {
    let registration = Registration {
        api: format!("https://{name}"),
        connect: Some(api.to_string()),
        ca: ca.to_owned(),
        request: RegisterRequest {
            localpart: localpart.into(),
            device: "bench".into(),
            handle: Some(localpart.into()),
            ..RegisterRequest::default()
        },
        ..Registration::default()
    };
    let mut client = Client::register(&dir.join(localpart), registration)
        .await
        .map_err(client_error)?;
    client
        .publish_key_packages(2, true)
        .await
        .map_err(client_error)?;
    Ok(client)
}

fn client_error(e: mimi_client::ClientError) -> HubBenchError {
    HubBenchError::Unexpected(format!("client: {e}"))
}

impl Room06 {
    /// Start A, B, C, make the room and encrypt `count` messages of Bob's.
    pub async fn start(binary: &Path, count: usize) -> Result<Room06, BenchError> {
        let pki = BenchPki::generate()?;
        let dir = ScratchDir::new("hub06")?;
        let ports = (0..PROVIDERS.len())
            .map(|_| free_port())
            .collect::<Result<Vec<_>, _>>()
            .map_err(HubBenchError::Io)?;
        let mut processes = Vec::with_capacity(PROVIDERS.len());
        for (i, name) in PROVIDERS.iter().enumerate() {
            let server: ServerName = name.parse().map_err(mimi_codec::CodecError::from)?;
            pki.write_server_files(dir.path(), &server)?;
            let mut config = format!(
                "server_name = \"{name}\"\nlisten = \"{}\"\napi_listen = \"127.0.0.1:0\"\n\
                 certificate = \"{name}.crt\"\nprivate_key = \"{name}.key\"\nca = \"{CA_STEM}.crt\"\n\
                 storage = \"{name}.redb\"\nopen_registration = true\n{BENCH_RATE_LIMITS}[peers]\n",
                ports[i]
            );
            for (j, peer) in PROVIDERS.iter().enumerate() {
                if j != i {
                    config.push_str(&format!("\"{peer}\" = \"{}\"\n", ports[j]));
                }
            }
            processes.push(HubProcess::start(binary, dir.path(), name, config)?);
        }
        let ca = dir.path().join(format!("{CA_STEM}.crt"));
        let clients = dir.path().join("clients");
        let mut alice = client(&clients, &ca, PROVIDERS[0], processes[0].api, "alice").await?;
        let mut bob = client(&clients, &ca, PROVIDERS[1], processes[1].api, "bob").await?;
        let mut carol = client(&clients, &ca, PROVIDERS[2], processes[2].api, "carol").await?;
        let room = alice
            .create_room06(ROOM_ID, "Bench")
            .await
            .map_err(client_error)?;
        let alice_uri = user(PROVIDERS[0], "alice");
        let bob_uri = user(PROVIDERS[1], "bob");
        let carol_uri = user(PROVIDERS[2], "carol");
        for (follower, uri) in [(&mut bob, &bob_uri), (&mut carol, &carol_uri)] {
            follower
                .consent06(&alice_uri, Some(room.as_str()), true)
                .await
                .map_err(client_error)?;
            // Role 2: a member who may send messages.
            alice
                .add06(room.as_str(), uri, 2)
                .await
                .map_err(client_error)?;
        }
        bob.read06(room.as_str()).await.map_err(client_error)?;
        carol.read06(room.as_str()).await.map_err(client_error)?;
        let sending_uri: IdentifierUri = bob_uri
            .parse()
            .map_err(|e| HubBenchError::Unexpected(format!("{bob_uri}: {e:?}")))?;
        let mut bodies = Vec::with_capacity(count);
        for i in 0..count {
            let mut salt = [0u8; SALT_LEN];
            salt[..8].copy_from_slice(&(i as u64).to_be_bytes());
            let mut plaintext = vec![0x42; PLAINTEXT_LEN];
            plaintext[..8].copy_from_slice(&(i as u64).to_be_bytes());
            let (message, _tag) = bob
                .mls()
                .encrypt06_franked(&room, &plaintext, &salt)
                .map_err(HubBenchError::E2e)?;
            let request = SubmitMessageRequest {
                protocol: Protocol::Mls10,
                app_message: MlsMessage::from_bytes(&message)?,
                sending_uri: sending_uri.clone(),
            };
            bodies.push(Bytes::from(request.encode()?));
        }
        // The hub logs a byte-identical resend once: the load must be distinct messages.
        let distinct: std::collections::HashSet<&Bytes> = bodies.iter().collect();
        if distinct.len() != bodies.len() {
            return Err(
                HubBenchError::Unexpected("two precomputed messages are equal".into()).into(),
            );
        }
        Ok(Room06 {
            dir,
            pki,
            processes,
            room,
            bob: bob_uri,
            bodies,
        })
    }

    /// B's client TLS configuration (B's certificate from the benchmark's CA).
    fn b_tls(&self) -> Result<Arc<rustls::ClientConfig>, BenchError> {
        let b: ServerName = PROVIDERS[1].parse().map_err(mimi_codec::CodecError::from)?;
        Ok(self.pki.client_config(&b)?)
    }

    /// The load against A's `submitMessage`.
    pub fn target(&self) -> Result<Target, BenchError> {
        Ok(Target {
            addr: self.processes[0].federation,
            server_name: tls_name(PROVIDERS[0])?,
            tls: self.b_tls()?,
            path: Endpoint06::SubmitMessage.path(self.room.as_str()),
            workload: Arc::new(SubmitWorkload::new(self.bodies.clone(), PROVIDERS[1])?),
            authorization: None,
            request_timeout: REQUEST_TIMEOUT,
        })
    }
}

/// One server's figures: accepted/s per run and its CPU and writes per message.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerFigures {
    /// Which server.
    pub label: String,
    /// Accepted messages per second of each saturation run.
    pub accepted: Vec<f64>,
    /// Requests answered otherwise (`200 notAllowed` or another status) over all runs.
    pub refused: u64,
    /// The server process's cost per accepted message over all runs.
    pub cost: PerUnit,
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// One closed-loop run against `target`: a refused request is counted, not an error (Haven
/// answers `notAllowed` when its queue is full), a request without an answer is an error.
async fn saturate(
    target: &Target,
    clients: usize,
    duration: Duration,
    phase: &str,
) -> Result<LoadReport, BenchError> {
    let report = target.run(clients, Pace::Saturate, duration).await?;
    if report.failed > 0 {
        return Err(HubBenchError::Unexpected(format!(
            "{phase}: {} requests got no answer (first: {:?})",
            report.failed, report.first_failure
        ))
        .into());
    }
    Ok(report)
}

/// Warm up, then `settings.runs` saturation runs of `settings.phase`, the process `pid`'s
/// counters read around the measured runs.
async fn measure(
    label: &str,
    target: &Target,
    pid: u32,
    settings: &Settings,
) -> Result<ServerFigures, BenchError> {
    saturate(
        target,
        settings.clients,
        settings.warmup,
        &format!("{label} warm-up"),
    )
    .await?;
    let before: Usage = usage(pid)?;
    let mut accepted = Vec::with_capacity(settings.runs);
    let mut total = 0u64;
    let mut refused = 0u64;
    for _ in 0..settings.runs {
        let report = saturate(
            target,
            settings.clients,
            settings.phase,
            &format!("{label} saturation"),
        )
        .await?;
        total += report.accepted;
        refused += report.refused;
        accepted.push(report.throughput());
    }
    let cost = usage(pid)?
        .since(&before)
        .per(total)
        .ok_or_else(|| HubBenchError::Unexpected(format!("{label}: nothing accepted")))?;
    Ok(ServerFigures {
        label: label.to_owned(),
        accepted,
        refused,
        cost,
    })
}

/// One request on `sender`: the status and the body.
async fn exchange(
    sender: &mut Sender,
    method: Method,
    path: &str,
) -> Result<(u16, Bytes), HubBenchError> {
    let fail = |e: &dyn std::fmt::Display| HubBenchError::Unexpected(format!("{path}: {e}"));
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header(HOST, HeaderValue::from_static("a.bench.test"))
        .body(Full::new(Bytes::new()))
        .map_err(|e| fail(&e))?;
    sender.ready().await.map_err(|e| fail(&e))?;
    let response = sender.send_request(request).await.map_err(|e| fail(&e))?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| fail(&e))?
        .to_bytes();
    Ok((status, body))
}

/// While `stop` is unset, take the messages `mimi-hubd` queued under the room (its JSON
/// lane's deliver-once `GET /mimi/v1/message?user=ROOM`, as a reader of that queue would),
/// so that its bounded queue (256 per key) does not refuse the load; how many it took.
async fn drain_haven(
    config: LoadConfig,
    room: String,
    stop: Arc<AtomicBool>,
) -> Result<u64, HubBenchError> {
    let mut sender = crate::loadgen::connect(&config)
        .await
        .map_err(|e| HubBenchError::Unexpected(format!("connect to mimi-hubd: {e}")))?;
    let path = format!("/mimi/v1/message?user={}", query(&room));
    let mut taken = 0u64;
    while !stop.load(Ordering::Acquire) {
        match exchange(&mut sender, Method::GET, &path).await?.0 {
            200 => taken += 1,
            // Empty: poll again shortly (a real process; nothing to be notified by).
            404 => tokio::time::sleep(DRAIN_POLL).await,
            other => {
                return Err(HubBenchError::Unexpected(format!(
                    "mimi-hubd {path}: {other}"
                )));
            }
        }
    }
    Ok(taken)
}

/// Haven's `mimi-hubd`, started from a checkout, stopped by its handle when dropped.
struct Haven {
    child: std::process::Child,
    addr: std::net::SocketAddr,
}

impl Drop for Haven {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `mimi-hubd` binary of `checkout`: `$MIMI_HUBD_BIN`, else `<checkout>/../target/
/// release/mimi-hubd` when built there, else built with `mimi_interop::haven::build` into
/// that directory.
fn haven_binary(checkout: &Path) -> Result<PathBuf, BenchError> {
    if let Some(path) = std::env::var_os("MIMI_HUBD_BIN") {
        return Ok(PathBuf::from(path));
    }
    let target = checkout
        .parent()
        .map_or_else(|| checkout.join("target"), |p| p.join("target"));
    let built = target.join("release").join("mimi-hubd");
    if built.exists() {
        return Ok(built);
    }
    mimi_interop::haven::build(checkout, &target)
        .map_err(|e| HubBenchError::Binary(format!("mimi-hubd: {e}")).into())
}

impl Room06 {
    /// Start `mimi-hubd` as provider A (A's certificate and key, the same CA), and make the
    /// room known to it with Bob and Carol as participants.
    async fn start_haven(&self, binary: &Path) -> Result<Haven, BenchError> {
        let addr = free_port().map_err(HubBenchError::Io)?;
        let root = self.dir.path();
        let log = std::fs::File::create(root.join("mimi-hubd.log")).map_err(HubBenchError::Io)?;
        let child = std::process::Command::new(binary)
            .env("MIMI_PROVIDER_DOMAIN", PROVIDERS[0])
            .env("MIMI_BIND_ADDR", addr.to_string())
            .env("MIMI_DB_PATH", root.join("haven.db"))
            .env(
                "MIMI_SERVER_CERT",
                root.join(format!("{}.crt", PROVIDERS[0])),
            )
            .env(
                "MIMI_SERVER_KEY",
                root.join(format!("{}.key", PROVIDERS[0])),
            )
            .env("MIMI_CLIENT_CA", root.join(format!("{CA_STEM}.crt")))
            .env("RUST_LOG", "warn")
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().map_err(HubBenchError::Io)?)
            .stderr(log)
            .spawn()
            .map_err(HubBenchError::Io)?;
        let mut haven = Haven { child, addr };
        // A real process: poll its port, bounded.
        let started = std::time::Instant::now();
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            if haven.child.try_wait().map_err(HubBenchError::Io)?.is_some()
                || started.elapsed() > HAVEN_START
            {
                return Err(HubBenchError::Binary(format!(
                    "mimi-hubd did not listen (log in {})",
                    root.display()
                ))
                .into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let config = LoadConfig::new(
            haven.addr,
            tls_name(PROVIDERS[0])?,
            self.b_tls()?,
            "/",
            1,
            Pace::Saturate,
            Stop::After(Duration::ZERO),
        );
        let mut sender = crate::loadgen::connect(&config)
            .await
            .map_err(|e| HubBenchError::Unexpected(format!("connect to mimi-hubd: {e}")))?;
        for member in [self.bob.clone(), user(PROVIDERS[2], "carol")] {
            let path = format!(
                "/mimi/v1/addParticipant?room={}&member={}",
                query(self.room.as_str()),
                query(&member)
            );
            let (status, body) = exchange(&mut sender, Method::POST, &path).await?;
            if status != 201 {
                return Err(HubBenchError::Unexpected(format!(
                    "mimi-hubd addParticipant: {status} {}",
                    String::from_utf8_lossy(&body)
                ))
                .into());
            }
        }
        Ok(haven)
    }

    /// The same load against `mimi-hubd`'s `submitMessage`.
    fn haven_target(&self, haven: &Haven) -> Result<Target, BenchError> {
        let mut target = self.target()?;
        target.addr = haven.addr;
        target.path = format!("/mimi/pl/submitMessage/{}", query(self.room.as_str()));
        Ok(target)
    }
}

/// `s` percent-encoded as one path segment or query value.
fn query(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Run the -06 benchmark (and Haven's beside it when `haven` is given); the printed table.
pub fn run(
    exe: &Path,
    settings: &Settings,
    haven: Option<&Path>,
    ceiling: Option<f64>,
) -> Result<String, BenchError> {
    let binary = crate::hub::hub_binary(exe)?;
    let haven_binary = haven.map(haven_binary).transpose()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(BenchError::Runtime)?;
    runtime.block_on(async {
        let room = Room06::start(&binary, messages(settings)).await?;
        let ours = measure(
            "mimi-rs mimi-hub",
            &room.target()?,
            room.processes[0].pid(),
            settings,
        )
        .await?;
        let mut rows = vec![ours];
        if let Some(binary) = haven_binary {
            let haven = room.start_haven(&binary).await?;
            let target = room.haven_target(&haven)?;
            let stop = Arc::new(AtomicBool::new(false));
            let config = LoadConfig::new(
                haven.addr,
                tls_name(PROVIDERS[0])?,
                room.b_tls()?,
                "/",
                1,
                Pace::Saturate,
                Stop::After(Duration::ZERO),
            );
            let drainers: Vec<_> = (0..HAVEN_DRAINERS)
                .map(|_| {
                    tokio::spawn(drain_haven(
                        config.clone(),
                        room.room.as_str().to_owned(),
                        stop.clone(),
                    ))
                })
                .collect();
            let figures = measure("Haven mimi-hubd", &target, haven.child.id(), settings).await;
            stop.store(true, Ordering::Release);
            for drainer in drainers {
                drainer
                    .await
                    .map_err(|e| HubBenchError::Unexpected(format!("drainer: {e}")))??;
            }
            rows.push(figures?);
            drop(haven);
        }
        Ok(table(&rows, room.bodies.len(), ceiling))
    })
}

/// The side-by-side table.
pub fn table(rows: &[ServerFigures], messages: usize, ceiling: Option<f64>) -> String {
    let mut out = format!(
        "### -06 submitMessage (a follower's message to the room's hub; {messages} distinct \
         SubmitMessageRequest bodies, same client certificate and headers)\n\n\
         | server | accepted/s (median) | min | max | refused | CPU µs/msg | bytes written/msg | throughput / ceiling |\n\
         |---|---|---|---|---|---|---|---|\n"
    );
    for row in rows {
        let min = row.accepted.iter().copied().fold(f64::INFINITY, f64::min);
        let max = row.accepted.iter().copied().fold(0.0, f64::max);
        let m = median(&row.accepted);
        let ratio = ceiling.map_or("-".to_owned(), |c| format!("{:.4}", m / c));
        out.push_str(&format!(
            "| {} | {m:.0} | {min:.0} | {max:.0} | {} | {:.0} | {:.0} | {ratio} |\n",
            row.label, row.refused, row.cost.cpu_micros, row.cost.write_bytes
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_an_accepted_submit_response() {
        let workload = SubmitWorkload::new(vec![Bytes::from_static(b"x")], "b.bench.test").unwrap();
        let answer = |outcome| {
            SubmitMessageResponse {
                protocol: Protocol::Mls10,
                outcome,
            }
            .encode()
            .unwrap()
        };
        assert!(workload.accepts(&answer(SubmitOutcome::Accepted {
            accepted_timestamp: 1,
            frank: None,
        })));
        assert!(!workload.accepts(&answer(SubmitOutcome::NotAllowed)));
        assert!(!workload.accepts(b""));
        assert_eq!(workload.headers()[0].0, "from");
        assert_eq!(workload.headers()[0].1, "mimi@b.bench.test");
    }

    #[test]
    fn bodies_are_sent_in_turn_over_all_clients() {
        let bodies: Vec<Bytes> = (0..3u8).map(|i| Bytes::from(vec![i])).collect();
        let workload = SubmitWorkload::new(bodies.clone(), "b.bench.test").unwrap();
        let sent: Vec<Bytes> = (0..6).map(|k| workload.body(k % 2, k as u64)).collect();
        assert_eq!(sent[..3], bodies[..]);
        assert_eq!(sent[3..], bodies[..]);
    }

    #[test]
    fn room_paths_are_one_percent_encoded_segment() {
        assert_eq!(
            query("mimi://a.bench.test/r/bench"),
            "mimi%3A%2F%2Fa.bench.test%2Fr%2Fbench"
        );
        assert_eq!(
            Endpoint06::SubmitMessage.path("mimi://a.bench.test/r/bench"),
            "/mimi/v06/submitMessage/mimi%3A%2F%2Fa.bench.test%2Fr%2Fbench"
        );
    }
}
