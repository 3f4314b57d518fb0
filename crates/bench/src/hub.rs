//! The hub benchmark: three providers as `mimi-hub` processes on loopback, rooms hubbed at
//! the first (`a.bench.test`) whose participants are one user at each provider, and
//! `ds.send_message` load on those rooms.
//!
//! What is measured, exactly:
//! - **accepted/s at the hub**: `200` answers per second to the load generator's
//!   `POST /v1/rooms/{room}/events` at provider A (the hub answers `200` only once the
//!   event is durable: log, outbox and inboxes committed in redb). Request `k` of client
//!   `c` goes to room `(c + k * clients) mod rooms`, so the load covers every room.
//! - **delivered/s at the followers**: each follower's user (Bob at B, Carol at C) has
//!   every room's events fanned out to its inbox by its provider once the hub's outbox
//!   delivered them (`POST /send` answered by the follower). A watcher per follower reads
//!   that inbox (`GET /v1/inbox`, pages of 256, long polling: a read that finds nothing
//!   waits for the next item) throughout the run until it holds as many
//!   new items as the hub accepted; delivered/s is that count over the time from the start
//!   of the run to the page that completed it (the slower follower's figure is reported).
//! - **latency submit → follower**: a probe, beside the load, sends one message at a
//!   time to a probe room whose followers' users are only in that room, and reads both
//!   followers' inboxes at once, long polling, until the message is in both; the latency
//!   is from submitting it to seeing it at the second follower. The follower writes the
//!   inbox item in the same transaction as it acknowledges the hub's `POST /send` and
//!   answers a waiting read as soon as that transaction is durable, so this is submit →
//!   follower acknowledgement, plus one inbox answer.
//!
//! Between runs the harness waits until the followers have everything (so a run starts
//! with empty outboxes).

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use hyper::header::{AUTHORIZATION, HeaderValue};
use mimi_client_api::{
    Endpoint, claim_key_packages, create_room, inbox, prepare_room, publish_key_packages, register,
    submit_event,
};
use mimi_codec::{
    Event, EventResponse, MlsBytes, ParticipationStateChange, Reason, SendMessageRequest, Sender,
    ServerName, UserEvent, UserId,
};
use mimi_e2e::{CommitPlan, E2eError, ExternalSender, MlsClient};
use openmls::prelude::tls_codec::Deserialize as _;
use rustls::pki_types::ServerName as TlsServerName;

use crate::api::{ApiClient, ApiError};
use crate::loadgen::{self, LatencySummary, Pace, Workload};
use crate::process::{PerUnit, ProcessError, Usage, peak_rss_bytes, usage};
use crate::setup::{BenchPki, CA_STEM, ScratchDir, SetupError};
use crate::suite::{BenchError, Settings, Target};

/// The three providers: the hub of every room, and two followers.
pub const PROVIDERS: [&str; 3] = ["a.bench.test", "b.bench.test", "c.bench.test"];
/// The size of the application message's plaintext (the ciphertext is about 1 KiB, as
/// the ceiling's request).
pub const PLAINTEXT_LEN: usize = 960;
/// How long one inbox read of the probe or a watcher waits for a first item (`wait_ms`:
/// the follower answers as soon as an item is durable, so this only bounds an idle read).
pub const INBOX_WAIT: Duration = Duration::from_millis(250);
/// How long the followers get to receive everything after a run.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(180);
/// How long a `mimi-hub` process gets to exit after SIGTERM.
pub const STOP_GRACE: Duration = Duration::from_secs(10);
/// Bound on one load request to the hub: a durable commit waits for `fdatasync`, which a
/// busy disk (other builds on a shared machine) can hold for seconds; a slow answer is a
/// latency to report, not a failed run.
pub const HUB_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// The inbox page size (the API's maximum).
pub const INBOX_PAGE: usize = 256;

/// Why the hub benchmark failed.
#[derive(Debug, thiserror::Error)]
pub enum HubBenchError {
    /// A client-API call failed.
    #[error("client API: {0}")]
    Api(#[from] ApiError),
    /// The client's MLS failed.
    #[error("MLS client: {0}")]
    E2e(#[from] E2eError),
    /// A MIMI value could not be built or read.
    #[error("codec: {0}")]
    Codec(#[from] mimi_codec::CodecError),
    /// The signaling rules refused the benchmark's own change.
    #[error("signaling: {0}")]
    Signaling(String),
    /// A provider answered something unexpected.
    #[error("unexpected answer: {0}")]
    Unexpected(String),
    /// The `mimi-hub` binary is missing or could not be built.
    #[error("mimi-hub binary: {0}")]
    Binary(String),
    /// The followers did not receive everything in time.
    #[error("follower {follower} has {delivered} of {expected} messages after {DRAIN_TIMEOUT:?}")]
    NotDrained {
        /// The follower.
        follower: String,
        /// Messages in its user's inbox.
        delivered: u64,
        /// Messages the hub accepted.
        expected: u64,
    },
    /// Files could not be written.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The PostgreSQL server could not be run (or is not installed).
    #[error(transparent)]
    Postgres(#[from] crate::pg::PgError),
}

/// A `mimi-hub` process, stopped with SIGTERM (and killed after [`STOP_GRACE`]) when
/// dropped.
#[derive(Debug)]
pub struct HubProcess {
    child: Child,
    /// Its federation address.
    pub federation: SocketAddr,
    /// Its client-API address.
    pub api: SocketAddr,
    /// Its storage file.
    pub storage: PathBuf,
}

impl HubProcess {
    /// Write `config` to `NAME.toml` in `dir` and start `mimi-hub` on it, with its storage
    /// at `NAME.redb` there.
    pub fn start(
        binary: &Path,
        dir: &Path,
        name: &dyn std::fmt::Display,
        config: String,
    ) -> Result<Self, BenchError> {
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, config).map_err(|source| SetupError::Dir {
            path: path.clone(),
            source,
        })?;
        Self::spawn(binary, &path, dir.join(format!("{name}.redb")))
    }

    /// Start `mimi-hub --config CONFIG` and read its `mimi-hub NAME listening
    /// federation=ADDR api=ADDR` line.
    pub fn spawn(binary: &Path, config: &Path, storage: PathBuf) -> Result<Self, BenchError> {
        use std::io::BufRead;
        let mut child = Command::new(binary)
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(ProcessError::Io)?;
        let mut line = String::new();
        if let Some(stdout) = child.stdout.take() {
            std::io::BufReader::new(stdout)
                .read_line(&mut line)
                .map_err(ProcessError::Io)?;
        }
        let mut process = HubProcess {
            child,
            federation: SocketAddr::from(([127, 0, 0, 1], 0)),
            api: SocketAddr::from(([127, 0, 0, 1], 0)),
            storage,
        };
        let line = line.trim_end();
        let field = |key: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(key))
                .and_then(|a| a.parse::<SocketAddr>().ok())
        };
        match (field("federation="), field("api=")) {
            (Some(federation), Some(api)) if line.starts_with("mimi-hub ") => {
                process.federation = federation;
                process.api = api;
                Ok(process)
            }
            _ if line.is_empty() => Err(ProcessError::NotListening.into()),
            _ => Err(ProcessError::BadAnnouncement(line.to_owned()).into()),
        }
    }

    /// The process's ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process's peak RSS so far, in bytes.
    pub fn peak_rss_bytes(&self) -> Result<u64, ProcessError> {
        peak_rss_bytes(self.child.id())
    }

    /// The process's CPU time and I/O counters so far.
    pub fn usage(&self) -> Result<Usage, ProcessError> {
        usage(self.child.id())
    }

    /// The storage file's size in bytes.
    pub fn storage_bytes(&self) -> Result<u64, std::io::Error> {
        let mut bytes = std::fs::metadata(&self.storage)?.len();
        // And its journal's segments, if it keeps one.
        let mut journal = self.storage.as_os_str().to_owned();
        journal.push(".journal");
        if let Ok(entries) = std::fs::read_dir(std::path::PathBuf::from(journal)) {
            for entry in entries {
                bytes += entry?.metadata()?.len();
            }
        }
        Ok(bytes)
    }

    fn terminate(&mut self) -> Result<(), std::io::Error> {
        if self.child.try_wait()?.is_some() {
            return Ok(());
        }
        // SIGTERM is the hub's clean shutdown; `kill` is given this process's own ID.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        // Best effort: the process is ours, and nothing is left to do on failure.
        let _ = self.terminate();
    }
}

/// The `mimi-hub` binary: `$MIMI_HUB_BIN`, else beside this executable. Under `cargo run`
/// (which sets `$CARGO`) it is built first with the same profile, so it is never stale.
pub fn hub_binary(exe: &Path) -> Result<PathBuf, HubBenchError> {
    if let Some(path) = std::env::var_os("MIMI_HUB_BIN") {
        return Ok(PathBuf::from(path));
    }
    let dir = exe
        .parent()
        .ok_or_else(|| HubBenchError::Binary("no directory for this executable".into()))?;
    if let Some(cargo) = std::env::var_os("CARGO") {
        let mut build = Command::new(cargo);
        build.args(["build", "-q", "-p", "mimi-hub", "--bin", "mimi-hub"]);
        if dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        let status = build.status()?;
        if !status.success() {
            return Err(HubBenchError::Binary(format!(
                "cargo build -p mimi-hub failed: {status}"
            )));
        }
    }
    let binary = dir.join("mimi-hub");
    if binary.exists() {
        Ok(binary)
    } else {
        Err(HubBenchError::Binary(format!(
            "{} is missing: build it with `cargo build --release -p mimi-hub` or set MIMI_HUB_BIN",
            binary.display()
        )))
    }
}

pub(crate) fn free_port() -> Result<SocketAddr, std::io::Error> {
    TcpListener::bind(("127.0.0.1", 0))?.local_addr()
}

/// A registered user's one client: its API connection, token and inbox cursor.
#[derive(Debug, Clone)]
pub struct Account {
    /// The user.
    pub user: UserId,
    /// The bearer token.
    pub token: String,
    /// Its provider's API.
    pub api: ApiClient,
    /// The last inbox cursor read.
    pub cursor: u64,
}

impl Account {
    async fn register(
        api: &ApiClient,
        localpart: &str,
        dir: &Path,
    ) -> Result<(Account, MlsClient), HubBenchError> {
        let mut api = api.clone();
        let request = register::Request {
            localpart: localpart.to_owned(),
            device: "bench".to_owned(),
            ..register::Request::default()
        };
        let registered = api.call(&request, None).await?;
        let client = registered.client_id;
        let mls = MlsClient::open(&dir.join(localpart), client.clone())?;
        Ok((
            Account {
                user: client.user(),
                token: registered.token,
                api,
                cursor: 0,
            },
            mls,
        ))
    }

    /// Publish a last-resort key package (it serves every room).
    async fn publish_last_resort(&mut self, mls: &mut MlsClient) -> Result<(), HubBenchError> {
        let request = publish_key_packages::Request {
            key_packages: vec![mls.key_package(true)?],
        };
        self.api.call(&request, Some(&self.token)).await?;
        Ok(())
    }

    /// One page of new inbox items: how many, and the cursor moves past them.
    async fn read_inbox(&mut self, limit: usize) -> Result<u64, HubBenchError> {
        self.read_inbox_waiting(limit, Duration::ZERO).await
    }

    /// One page of new inbox items, waiting up to `wait` for the first one.
    async fn read_inbox_waiting(
        &mut self,
        limit: usize,
        wait: Duration,
    ) -> Result<u64, HubBenchError> {
        let request = inbox::Request {
            after: self.cursor,
            limit: Some(limit),
            wait: Some(wait),
        };
        let inbox = self.api.call(&request, Some(&self.token)).await?;
        if let Some(last) = inbox.items.last() {
            self.cursor = last.cursor;
        }
        Ok(inbox.items.len() as u64)
    }

    /// Read the inbox to its end.
    async fn skip_inbox(&mut self) -> Result<u64, HubBenchError> {
        let mut total = 0;
        loop {
            let n = self.read_inbox(INBOX_PAGE).await?;
            total += n;
            if n == 0 {
                return Ok(total);
            }
        }
    }
}

/// A room under load: the `ds.send_message` request sent to it with the bearer token of
/// its creator (who sends it), and that request's path, body and `Authorization` header as
/// `mimi-client-api` encodes them (for the load generator).
#[derive(Debug, Clone)]
pub struct LoadRoom {
    /// The request.
    pub submit: submit_event::Request,
    /// The creator's token.
    pub token: String,
    /// `/v1/rooms/{room}/events`.
    pub path: String,
    /// The TLS-encoded `Event`.
    pub event: Bytes,
    /// `Bearer <creator's token>`.
    pub authorization: HeaderValue,
}

impl LoadRoom {
    /// The load of `submit`, sent with `token`.
    pub fn new(submit: submit_event::Request, token: &str) -> Result<Self, HubBenchError> {
        let request = submit
            .try_into_http_request(Some(token))
            .map_err(ApiError::from)?;
        let authorization = request
            .headers()
            .get(AUTHORIZATION)
            .cloned()
            .ok_or_else(|| HubBenchError::Unexpected("no Authorization header".into()))?;
        Ok(LoadRoom {
            path: request.uri().to_string(),
            authorization,
            event: Bytes::from(request.into_body()),
            submit,
            token: token.to_owned(),
        })
    }
}

/// The load over all rooms: request `k` of client `c` goes to room `(c + k * clients) mod
/// rooms`.
#[derive(Debug)]
pub struct RoomsWorkload {
    rooms: Vec<LoadRoom>,
    clients: usize,
}

impl RoomsWorkload {
    fn room(&self, client: usize, sequence: u64) -> Option<&LoadRoom> {
        if self.rooms.is_empty() {
            return None;
        }
        let n = self.rooms.len() as u64;
        let index = (client as u64 % n + (sequence % n) * (self.clients as u64 % n)) % n;
        self.rooms.get(usize::try_from(index).unwrap_or(0))
    }
}

/// Bytes at the end of an event's body that are not the application message: the
/// `DSAuthData` (its `Unauthenticated` case, one byte) that ends every DS request.
const AFTER_CIPHERTEXT: usize = 1;

/// The number of the next distinct message this process sends: every load request and
/// probe message of every run gets its own (a run's request numbers start again at 0, and
/// the hub remembers a room's latest requests across runs).
static NEXT_MESSAGE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn next_message() -> u64 {
    NEXT_MESSAGE.fetch_add(1, Ordering::Relaxed)
}

impl Workload for RoomsWorkload {
    /// The room's `ds.send_message`, its ciphertext's last 8 bytes replaced by a number no
    /// other message of this process has: the hub answers a byte-identical resend as the first and logs it once
    /// (exactly once, HUB-ONCE-1), so every request must be a distinct message. The framing
    /// stays valid and the hub cannot tell (it never decrypts); the watchers count messages
    /// without decrypting them. Encrypting each request anew would put the clients' MLS cost
    /// into the load generator's process, which shares the machine with the servers.
    fn body(&self, client: usize, sequence: u64) -> Bytes {
        let Some(room) = self.room(client, sequence) else {
            return Bytes::new();
        };
        let mut body = room.event.to_vec();
        let unique = next_message();
        if let Some(end) = body.len().checked_sub(AFTER_CIPHERTEXT)
            && let Some(start) = end.checked_sub(8)
        {
            body[start..end].copy_from_slice(&unique.to_be_bytes());
        }
        Bytes::from(body)
    }

    fn path(&self, client: usize, sequence: u64) -> Option<&str> {
        self.room(client, sequence).map(|r| r.path.as_str())
    }

    fn authorization(&self, client: usize, sequence: u64) -> Option<&HeaderValue> {
        self.room(client, sequence).map(|r| &r.authorization)
    }
}

/// A user at A who creates load rooms, with its MLS client.
struct Creator {
    account: Account,
    mls: MlsClient,
}

/// The benchmark claims key packages and registers users far faster than the
/// providers' default rate limits allow a client or a peer server (`docs/operations.md`,
/// "Limits"): its providers are configured without practical limits.
pub(crate) const BENCH_RATE_LIMITS: &str = "[rate_limits]\n\
     claims_per_client = { burst = 1000000, refill_ms = 1 }\n\
     claims_per_peer = { burst = 1000000, refill_ms = 1 }\n\
     registrations = { burst = 1000000, refill_ms = 1 }\n\
     registrations_per_source = { burst = 1000000, refill_ms = 1 }\n";

/// How many users create load rooms at the same time (each one room after another, with
/// its own MLS client; the hub sees that many room creations in flight). Sixteen rather
/// than eight: a room's creation is a chain of round trips, and with eight the 2 CPUs were
/// not kept busy (docs/performance.md, "Room creation (issue 13, item 5)").
pub const CREATORS: usize = 16;

/// Three providers and the benchmark's users.
pub struct Federation {
    /// A (the hub), B, C. Declared before the scratch directory: fields drop in order, and
    /// a provider writes its storage (the journal's last checkpoint) until it has stopped.
    pub processes: Vec<HubProcess>,
    _dir: ScratchDir,
    alice: Creator,
    /// The users at A who create the load rooms.
    creators: Vec<Creator>,
    /// Bob at B and Carol at C: in every load room.
    followers: [Account; 2],
    /// The probe's followers' users: only in the probe room.
    probe_followers: [Account; 2],
    probe: LoadRoom,
    /// The load rooms created so far.
    pub rooms: Vec<LoadRoom>,
    tls: Arc<rustls::ClientConfig>,
    /// The PostgreSQL server of the providers' databases, if they are on PostgreSQL
    /// (last: it stops after the processes).
    pub database: Option<crate::pg::PgServer>,
}

pub(crate) fn tls_name(name: &str) -> Result<TlsServerName<'static>, HubBenchError> {
    TlsServerName::try_from(name.to_owned())
        .map_err(|_| HubBenchError::Unexpected(format!("{name} is not a TLS name")))
}

fn host(name: &str) -> Result<HeaderValue, HubBenchError> {
    HeaderValue::from_str(name).map_err(|_| HubBenchError::Unexpected(name.to_owned()))
}

fn join(target: &UserId) -> UserEvent {
    UserEvent {
        target: target.clone(),
        change: ParticipationStateChange::Join,
        reason: Reason::default(),
        follower_server_certificate: None,
        role: None,
    }
}

/// The steps of one room's creation, in order, as [`CreationProfile`] names them.
pub const CREATION_STEPS: [&str; 7] = [
    "prepare_room",
    "MLS create",
    "create_room",
    "claims",
    "MLS commit",
    "ds.commit",
    "MLS merge+encrypt",
];

/// Set to print where room creation's time and CPU went ([`CreationProfile`]) after each
/// [`Federation::grow_to`], on standard error.
pub const CREATION_PROFILE_VAR: &str = "MIMI_BENCH_CREATION_PROFILE";

/// Wall time spent in each of [`CREATION_STEPS`], summed over the creators.
#[derive(Debug, Default)]
struct StepTimes([AtomicU64; CREATION_STEPS.len()]);

impl StepTimes {
    /// Add the time since `*mark` to step `step`; the mark moves to now.
    fn lap(&self, step: usize, mark: &mut Instant) {
        let micros = u64::try_from(mark.elapsed().as_micros()).unwrap_or(u64::MAX);
        if let Some(total) = self.0.get(step) {
            total.fetch_add(micros, Ordering::Relaxed);
        }
        *mark = Instant::now();
    }
}

/// Where the time and CPU of growing the rooms went: the mean wall time per room of each
/// step (per creator: [`CREATORS`] run at once), and CPU and bytes written per room of
/// the benchmark process (the creators' MLS clients) and of A, B and C.
#[derive(Debug, Clone)]
pub struct CreationProfile {
    /// Rooms created.
    pub rooms: usize,
    /// Seconds to create them and for the followers to have every event.
    pub seconds: f64,
    /// Mean milliseconds per room of each of [`CREATION_STEPS`].
    pub step_ms: [f64; CREATION_STEPS.len()],
    /// The benchmark process, then A, B, C: CPU and bytes written per room.
    pub costs: [PerUnit; 4],
}

impl std::fmt::Display for CreationProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "creation profile: {} rooms in {:.2} s ({:.1} rooms/s); ms per room per creator:",
            self.rooms,
            self.seconds,
            self.rooms as f64 / self.seconds.max(f64::MIN_POSITIVE)
        )?;
        for (name, ms) in CREATION_STEPS.iter().zip(self.step_ms) {
            write!(f, " {name} {ms:.2};")?;
        }
        write!(f, " CPU µs and kB written per room:")?;
        for (name, cost) in ["bench", "A", "B", "C"].iter().zip(&self.costs) {
            write!(
                f,
                " {name} {:.0} µs {:.1} kB;",
                cost.cpu_micros,
                cost.write_bytes / 1000.0
            )?;
        }
        Ok(())
    }
}

/// Run a creator's MLS operation (CPU, and the `fsync` of its client's state) without
/// holding up the other creators' requests: on a multi-threaded runtime the worker thread
/// hands its other tasks over first.
fn mls_work<T>(operation: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(operation),
        _ => operation(),
    }
}

fn usage_error(e: ProcessError) -> HubBenchError {
    HubBenchError::Unexpected(format!("process usage: {e}"))
}

/// Create a room at A, add `others` in one commit, and encrypt its load message.
async fn create_room(
    creator: &mut Creator,
    others: &[UserId],
    steps: &StepTimes,
) -> Result<LoadRoom, HubBenchError> {
    let mut mark = Instant::now();
    let token = creator.account.token.clone();
    let user = creator.account.user.clone();
    let api = &mut creator.account.api;
    let prepared = api
        .call(&prepare_room::Request::default(), Some(&token))
        .await?;
    let room_state = prepared.room_state;
    let hub = ExternalSender::tls_deserialize_exact(&prepared.hub_external_sender)
        .map_err(|e| HubBenchError::Unexpected(format!("hub external sender: {e}")))?;
    let room = prepared.room_id;
    steps.lap(0, &mut mark);
    let created = mls_work(|| creator.mls.create_room(&room_state, hub))?;
    steps.lap(1, &mut mark);
    let request = create_room::Request {
        room_id: room.clone(),
        join_rule: None,
        group_info: created.group_info,
        ratchet_tree: created.ratchet_tree,
    };
    api.call(&request, Some(&token)).await?;
    steps.lap(2, &mut mark);
    let mut adds = Vec::new();
    for user in others {
        let request = claim_key_packages::Request {
            room_id: room.clone(),
            user_id: user.clone(),
            clients: Vec::new(),
        };
        let claimed = api.call(&request, Some(&token)).await?;
        adds.extend(claimed.key_packages.into_iter().map(|e| e.key_package));
    }
    steps.lap(3, &mut mark);
    let changes: Vec<UserEvent> = others.iter().map(join).collect();
    let mut signaling = mimi_signaling::Room::from_room_state(&room_state)
        .map_err(|e| HubBenchError::Signaling(e.to_string()))?;
    signaling
        .accept_all(&Sender::User(user), &changes)
        .map_err(|e| HubBenchError::Signaling(format!("{e:?}")))?;
    let plan = CommitPlan {
        user_events: changes,
        adds,
        new_room_state: Some(signaling.to_room_state()),
        ..CommitPlan::default()
    };
    let request = mls_work(|| creator.mls.commit(&room, plan))?;
    let commit = submit_event::Request {
        room: room.clone(),
        event: Event::DsCommit(request),
    };
    steps.lap(4, &mut mark);
    let answer = api.call(&commit, Some(&token)).await;
    steps.lap(5, &mut mark);
    let refusal = match answer {
        Ok(submit_event::Response {
            response: EventResponse::Error(e),
        }) => Some(format!("{:?}: {}", e.code, e.detail.as_str())),
        Ok(_) => None,
        Err(e) => Some(e.to_string()),
    };
    if let Some(refusal) = refusal {
        creator.mls.clear_pending_commit(&room)?;
        return Err(HubBenchError::Unexpected(format!(
            "the commit adding {others:?} was answered: {refusal}"
        )));
    }
    let ciphertext = mls_work(|| {
        creator.mls.merge_pending_commit(&room)?;
        creator.mls.encrypt(&room, &[0x42; PLAINTEXT_LEN])
    })?;
    steps.lap(6, &mut mark);
    let event = Event::DsSendMessage(SendMessageRequest {
        application_message: MlsBytes::new(ciphertext)?,
    });
    LoadRoom::new(submit_event::Request { room, event }, &token)
}

/// Where the providers keep their state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchStorage {
    /// A redb file each, with its journal (the default).
    Redb,
    /// A redb file each without a journal (`journal = false`: every group of writes a
    /// durable redb commit, the layout before the journal).
    RedbUnjournaled,
    /// A database each on one private PostgreSQL server ([`crate::pg::PgServer`]).
    Postgres,
}

/// The database of provider `name` on the benchmark's PostgreSQL server: its first label
/// and `_bench` (`a_bench`).
pub fn database_name(name: &ServerName) -> String {
    let label = name.as_str().split('.').next().unwrap_or("provider");
    format!("{label}_bench")
}

/// The configuration file of provider `name` listening for federation on `listen`, with
/// `peers`; its storage a redb file beside the configuration, or the PostgreSQL database at
/// `postgres_url` (with the hub key beside the configuration); a redb file without a
/// journal if `journal` is false.
pub fn provider_config(
    name: &ServerName,
    listen: SocketAddr,
    peers: &[(&ServerName, SocketAddr)],
    postgres_url: Option<&str>,
    journal: bool,
) -> String {
    let mut config = format!(
        "server_name = \"{name}\"\nlisten = \"{listen}\"\napi_listen = \"127.0.0.1:0\"\n\
         certificate = \"{name}.crt\"\nprivate_key = \"{name}.key\"\nca = \"{CA_STEM}.crt\"\n\
         open_registration = true\n"
    );
    if postgres_url.is_some() {
        config.push_str(&format!("hub_key = \"{name}.hub-key\"\n"));
    }
    config.push_str(BENCH_RATE_LIMITS);
    config.push_str(&match postgres_url {
        Some(url) => format!("[storage]\nkind = \"postgres\"\nurl = \"{url}\"\n"),
        None => format!("[storage]\npath = \"{name}.redb\"\njournal = {journal}\n"),
    });
    config.push_str("[peers]\n");
    for (peer, addr) in peers {
        config.push_str(&format!("\"{peer}\" = \"{addr}\"\n"));
    }
    config
}

impl Federation {
    /// Write the configurations, start the three providers (and, on PostgreSQL, the server
    /// they share first), register the users.
    pub async fn start(binary: &Path, storage: BenchStorage) -> Result<Federation, BenchError> {
        let pki = BenchPki::generate()?;
        let names = PROVIDERS
            .iter()
            .map(|n| n.parse::<ServerName>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(mimi_codec::CodecError::from)?;
        // Declared before the processes: on an error they stop before the database does.
        let database = match storage {
            BenchStorage::Redb | BenchStorage::RedbUnjournaled => None,
            BenchStorage::Postgres => {
                let databases: Vec<String> = names.iter().map(database_name).collect();
                let databases: Vec<&str> = databases.iter().map(String::as_str).collect();
                Some(crate::pg::start(&databases).map_err(HubBenchError::Postgres)?)
            }
        };
        let dir = ScratchDir::new("hub")?;
        let ports = (0..names.len())
            .map(|_| free_port())
            .collect::<Result<Vec<_>, _>>()
            .map_err(HubBenchError::Io)?;
        let mut processes = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            pki.write_server_files(dir.path(), name)?;
            let peers: Vec<(&ServerName, SocketAddr)> = names
                .iter()
                .zip(&ports)
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, (peer, port))| (peer, *port))
                .collect();
            let url = database.as_ref().map(|db| db.url(&database_name(name)));
            let journal = storage != BenchStorage::RedbUnjournaled;
            let config = provider_config(name, ports[i], &peers, url.as_deref(), journal);
            processes.push(HubProcess::start(binary, dir.path(), name, config)?);
        }
        let tls = pki.client_config(
            &"loadgen.bench.test"
                .parse()
                .map_err(mimi_codec::CodecError::from)?,
        )?;
        let apis = names
            .iter()
            .zip(&processes)
            .map(|(name, p)| {
                Ok(ApiClient::new(
                    p.api,
                    tls_name(name.as_str())?,
                    host(name.as_str())?,
                    tls.clone(),
                ))
            })
            .collect::<Result<Vec<_>, HubBenchError>>()?;
        let clients = dir.path().join("clients");
        let (account, mls) = Account::register(&apis[0], "alice", &clients).await?;
        let mut alice = Creator { account, mls };
        let mut creators = Vec::with_capacity(CREATORS);
        for i in 0..CREATORS {
            let (account, mls) =
                Account::register(&apis[0], &format!("creator{i}"), &clients).await?;
            creators.push(Creator { account, mls });
        }
        let mut followers = Vec::new();
        for (api, localpart) in [
            (&apis[1], "bob"),
            (&apis[2], "carol"),
            (&apis[1], "probe-bob"),
            (&apis[2], "probe-carol"),
        ] {
            let (mut account, mut mls) = Account::register(api, localpart, &clients).await?;
            account.publish_last_resort(&mut mls).await?;
            followers.push(account);
        }
        let [bob, carol, probe_bob, probe_carol]: [Account; 4] = followers
            .try_into()
            .map_err(|_| HubBenchError::Unexpected("four accounts".into()))?;
        let probe_users = [probe_bob.user.clone(), probe_carol.user.clone()];
        let probe = create_room(&mut alice, &probe_users, &StepTimes::default()).await?;
        let mut federation = Federation {
            _dir: dir,
            processes,
            alice,
            creators,
            followers: [bob, carol],
            probe_followers: [probe_bob, probe_carol],
            probe,
            rooms: Vec::new(),
            tls,
            database,
        };
        for account in federation.probe_followers.iter_mut() {
            account.skip_inbox().await?;
        }
        Ok(federation)
    }

    /// Create load rooms (a creator at A, Bob at B, Carol at C) until there are `count`,
    /// [`CREATORS`] at a time; returns the seconds it took.
    pub async fn grow_to(&mut self, count: usize) -> Result<f64, HubBenchError> {
        let before = self.creation_usages().map_err(usage_error)?;
        let steps = Arc::new(StepTimes::default());
        let start = Instant::now();
        let others = [
            self.followers[0].user.clone(),
            self.followers[1].user.clone(),
        ];
        let missing = count.saturating_sub(self.rooms.len());
        let creators = std::mem::take(&mut self.creators);
        let n = creators.len().max(1);
        let mut tasks = tokio::task::JoinSet::new();
        for (i, mut creator) in creators.into_iter().enumerate() {
            let share = missing / n + usize::from(i < missing % n);
            let others = others.clone();
            let steps = Arc::clone(&steps);
            tasks.spawn(async move {
                let mut rooms = Vec::with_capacity(share);
                for _ in 0..share {
                    match create_room(&mut creator, &others, &steps).await {
                        Ok(room) => rooms.push(room),
                        Err(e) => return (creator, rooms, Some(e)),
                    }
                }
                (creator, rooms, None)
            });
        }
        let mut first_error = None;
        while let Some(done) = tasks.join_next().await {
            let (creator, rooms, error) =
                done.map_err(|e| HubBenchError::Unexpected(format!("room creator: {e}")))?;
            self.creators.push(creator);
            self.rooms.extend(rooms);
            if first_error.is_none() {
                first_error = error;
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        for account in self.followers.iter_mut() {
            account.skip_inbox().await?;
        }
        let seconds = start.elapsed().as_secs_f64();
        if missing > 0 && std::env::var_os(CREATION_PROFILE_VAR).is_some() {
            let after = self.creation_usages().map_err(usage_error)?;
            let mut costs = [PerUnit::default(); 4];
            for ((cost, after), before) in costs.iter_mut().zip(&after).zip(&before) {
                *cost = after.since(before).per(missing as u64).unwrap_or_default();
            }
            let step_ms = std::array::from_fn(|i| {
                steps.0[i].load(Ordering::Relaxed) as f64 / 1000.0 / missing as f64
            });
            let profile = CreationProfile {
                rooms: missing,
                seconds,
                step_ms,
                costs,
            };
            eprintln!("{profile}");
        }
        Ok(seconds)
    }

    /// The usage of this process (the creators' MLS clients), then of A, B and C.
    fn creation_usages(&self) -> Result<Vec<Usage>, ProcessError> {
        let mut out = vec![usage(std::process::id())?];
        for process in &self.processes {
            out.push(process.usage()?);
        }
        Ok(out)
    }

    /// The load generator's target: A's client API, Alice's token, every room.
    pub fn target(&self, clients: usize) -> Result<Target, HubBenchError> {
        Ok(Target {
            addr: self.processes[0].api,
            server_name: tls_name(PROVIDERS[0])?,
            tls: self.tls.clone(),
            path: String::new(),
            workload: Arc::new(RoomsWorkload {
                rooms: self.rooms.clone(),
                clients,
            }),
            // Each room's own creator's token (RoomsWorkload::authorization).
            authorization: None,
            request_timeout: HUB_REQUEST_TIMEOUT,
        })
    }
}

/// One run of the hub under one pace.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HubRun {
    /// Accepted messages per second at the hub.
    pub accepted: f64,
    /// Delivered messages per second at the slower follower.
    pub delivered: f64,
    /// Submit → follower latency of the probe messages.
    pub latency: LatencySummary,
    /// How many probe messages were timed.
    pub probes: u64,
    /// Messages the hub accepted in the run: the load's and the probe's.
    pub messages: u64,
}

/// Watch one follower's inbox until it holds `expected` new items (`expected` is set
/// once the load is over); the time from `start` to the page that completed it.
async fn watch(
    mut account: Account,
    expected: Arc<AtomicU64>,
    start: Instant,
) -> Result<(Account, u64, Duration), HubBenchError> {
    let mut delivered = 0u64;
    let mut last = start;
    loop {
        let n = account.read_inbox_waiting(INBOX_PAGE, INBOX_WAIT).await?;
        if n > 0 {
            delivered += n;
            last = Instant::now();
            continue;
        }
        let target = expected.load(Ordering::Acquire);
        if delivered >= target {
            return Ok((account, delivered, last - start));
        }
        if target != u64::MAX && start.elapsed() > DRAIN_TIMEOUT {
            return Err(HubBenchError::NotDrained {
                follower: account.user.to_string(),
                delivered,
                expected: target,
            });
        }
    }
}

/// One waiting inbox read of the probe, unless the message was seen there already.
async fn read_unless_seen(account: &mut Account, seen: bool) -> Result<u64, HubBenchError> {
    if seen {
        Ok(1)
    } else {
        account.read_inbox_waiting(1, INBOX_WAIT).await
    }
}

/// `submit` with its application message's last 8 bytes replaced by `unique`: a distinct
/// message each time (the hub logs a byte-identical resend once; see
/// [`RoomsWorkload::body`]).
fn distinct(
    submit: &submit_event::Request,
    unique: u64,
) -> Result<submit_event::Request, HubBenchError> {
    let mut submit = submit.clone();
    if let Event::DsSendMessage(message) = &mut submit.event {
        let mut bytes = message.application_message.as_slice().to_vec();
        if let Some(start) = bytes.len().checked_sub(8) {
            bytes[start..].copy_from_slice(&unique.to_be_bytes());
        }
        message.application_message =
            MlsBytes::new(bytes).map_err(|e| HubBenchError::Unexpected(e.to_string()))?;
    }
    Ok(submit)
}

/// Send probe messages one at a time until `until`; the latency of each, in µs.
async fn probe(
    mut sender: Account,
    room: LoadRoom,
    mut followers: [Account; 2],
    until: Instant,
) -> Result<(Account, [Account; 2], Histogram<u64>), HubBenchError> {
    let mut histogram = loadgen::latency_histogram()
        .map_err(|e| HubBenchError::Unexpected(format!("histogram: {e}")))?;
    while Instant::now() < until {
        let submit = distinct(&room.submit, next_message())?;
        let submitted = Instant::now();
        let answer = sender.api.call(&submit, Some(&room.token)).await?;
        if let EventResponse::Error(e) = answer.response {
            return Err(HubBenchError::Unexpected(format!(
                "probe refused: {:?}: {}",
                e.code,
                e.detail.as_str()
            )));
        }
        let mut seen = [false; 2];
        while !seen.iter().all(|s| *s) {
            let [first, second] = &mut followers;
            let (a, b) = tokio::join!(
                read_unless_seen(first, seen[0]),
                read_unless_seen(second, seen[1])
            );
            seen = [a? > 0, b? > 0];
            if submitted.elapsed() > DRAIN_TIMEOUT {
                return Err(HubBenchError::NotDrained {
                    follower: "probe".into(),
                    delivered: 0,
                    expected: 1,
                });
            }
        }
        let micros = u64::try_from(submitted.elapsed().as_micros()).unwrap_or(u64::MAX);
        histogram.saturating_record(micros);
    }
    Ok((sender, followers, histogram))
}

/// One run: the load at `pace` for `duration`, the probe beside it, and the followers
/// watched until they have everything.
pub async fn run(
    federation: &mut Federation,
    target: &Target,
    clients: usize,
    pace: Pace,
    duration: Duration,
    phase: &str,
) -> Result<HubRun, BenchError> {
    let start = Instant::now();
    let expected = Arc::new(AtomicU64::new(u64::MAX));
    let watchers: Vec<_> = federation
        .followers
        .iter()
        .map(|a| tokio::spawn(watch(a.clone(), expected.clone(), start)))
        .collect();
    let prober = tokio::spawn(probe(
        federation.alice.account.clone(),
        federation.probe.clone(),
        federation.probe_followers.clone(),
        start + duration,
    ));
    let report = crate::suite::load(target, clients, pace, duration, phase).await;
    let accepted = report.as_ref().map_or(0, |r| r.accepted);
    expected.store(accepted, Ordering::Release);
    let mut slowest = Duration::ZERO;
    let mut delivered = u64::MAX;
    for (i, watcher) in watchers.into_iter().enumerate() {
        let (account, count, took) = watcher
            .await
            .map_err(|e| HubBenchError::Unexpected(format!("watcher: {e}")))??;
        federation.followers[i].cursor = account.cursor;
        slowest = slowest.max(took);
        delivered = delivered.min(count);
    }
    let (_, probe_followers, histogram) = prober
        .await
        .map_err(|e| HubBenchError::Unexpected(format!("probe: {e}")))??;
    for (mine, theirs) in federation.probe_followers.iter_mut().zip(probe_followers) {
        mine.cursor = theirs.cursor;
    }
    let report = report?;
    Ok(HubRun {
        accepted: report.throughput(),
        delivered: delivered as f64 / slowest.as_secs_f64().max(f64::MIN_POSITIVE),
        latency: LatencySummary::of(&histogram),
        probes: histogram.len(),
        messages: report.accepted + histogram.len(),
    })
}

/// A saturation run and a half-load run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HubPoint {
    /// At saturation.
    pub saturation: HubRun,
    /// At half of the saturation run's accepted rate.
    pub half: HubRun,
    /// What each provider (A, B, C) spent per message over both runs, from the start of
    /// the saturation run to the followers having every message of the half-load run.
    pub costs: [PerUnit; 3],
    /// What the PostgreSQL server (all its processes, for the three providers' databases)
    /// spent per message over the same time, if the providers are on PostgreSQL.
    pub database: Option<PerUnit>,
}

fn usages(federation: &Federation) -> Result<Vec<Usage>, ProcessError> {
    federation.processes.iter().map(HubProcess::usage).collect()
}

fn database_usage(federation: &Federation) -> Result<Option<Usage>, HubBenchError> {
    Ok(federation
        .database
        .as_ref()
        .map(crate::pg::usage)
        .transpose()?)
}

/// Warm up, then measure `settings.runs` points against the rooms created so far.
pub async fn measure(
    federation: &mut Federation,
    settings: &Settings,
) -> Result<Vec<HubPoint>, BenchError> {
    let target = federation.target(settings.clients)?;
    run(
        federation,
        &target,
        settings.clients,
        Pace::Saturate,
        settings.warmup,
        "hub warm-up",
    )
    .await?;
    let mut points = Vec::with_capacity(settings.runs);
    for _ in 0..settings.runs {
        let before = usages(federation)?;
        let database_before = database_usage(federation)?;
        let saturation = run(
            federation,
            &target,
            settings.clients,
            Pace::Saturate,
            settings.phase,
            "hub saturation",
        )
        .await?;
        let half = run(
            federation,
            &target,
            settings.clients,
            Pace::Rate(saturation.accepted / 2.0),
            settings.phase,
            "hub half load",
        )
        .await?;
        let after = usages(federation)?;
        let database_after = database_usage(federation)?;
        let messages = saturation.messages + half.messages;
        let database = match (database_before, database_after) {
            (Some(before), Some(after)) => after.since(&before).per(messages),
            _ => None,
        };
        let mut costs = [PerUnit::default(); 3];
        for ((cost, after), before) in costs.iter_mut().zip(&after).zip(&before) {
            *cost = after
                .since(before)
                .per(messages)
                .ok_or_else(|| HubBenchError::Unexpected("no message was accepted".into()))?;
        }
        points.push(HubPoint {
            saturation,
            half,
            costs,
            database,
        });
    }
    Ok(points)
}

#[cfg(test)]
mod tests {
    use mimi_codec::Wire;

    use super::*;

    fn rooms(n: usize) -> RoomsWorkload {
        RoomsWorkload {
            rooms: (0..n)
                .map(|i| {
                    let submit = submit_event::Request {
                        room: format!("!r{i}:a.bench.test").parse().unwrap(),
                        event: Event::DsSendMessage(SendMessageRequest {
                            application_message: crate::messages::mls_filler(64, i as u8).unwrap(),
                        }),
                    };
                    LoadRoom::new(submit, &format!("t{i}")).unwrap()
                })
                .collect(),
            clients: 4,
        }
    }

    /// The configurations the benchmark writes load with the hub's own loader: on redb a
    /// file beside the configuration, on PostgreSQL the database URL with the hub key beside
    /// it, and the peers either way.
    #[test]
    fn provider_configs_load_with_the_hubs_loader() {
        use mimi_hub::config::{ProviderConfig, StorageConfig};
        let names: Vec<ServerName> = PROVIDERS.iter().map(|n| n.parse().unwrap()).collect();
        let listen: SocketAddr = "127.0.0.1:4001".parse().unwrap();
        let peers = [
            (&names[1], "127.0.0.1:4002".parse().unwrap()),
            (&names[2], "127.0.0.1:4003".parse().unwrap()),
        ];
        let base = Path::new("/tmp/bench");
        let url = "postgresql://postgres@127.0.0.1:5433/a_bench";
        assert_eq!(database_name(&names[0]), "a_bench");
        let pg = ProviderConfig::parse(
            &provider_config(&names[0], listen, &peers, Some(url), true),
            base,
        )
        .unwrap();
        match &pg.storage {
            StorageConfig::Postgres { url: got, .. } => assert_eq!(got, url),
            other => panic!("not PostgreSQL: {other:?}"),
        }
        assert_eq!(pg.hub_key, base.join("a.bench.test.hub-key"));
        assert_eq!(pg.server_name, names[0]);
        assert_eq!(pg.listen, listen);
        assert_eq!(pg.peers.len(), 2);
        assert_eq!(pg.peers[&names[2]], peers[1].1);
        let redb = ProviderConfig::parse(
            &provider_config(&names[0], listen, &peers, None, true),
            base,
        )
        .unwrap();
        match &redb.storage {
            StorageConfig::Redb { path, .. } => assert_eq!(path, &base.join("a.bench.test.redb")),
            other => panic!("not redb: {other:?}"),
        }
        assert_eq!(redb.peers, pg.peers);
        let unjournaled = ProviderConfig::parse(
            &provider_config(&names[0], listen, &peers, None, false),
            base,
        )
        .unwrap();
        assert_eq!(
            unjournaled.storage,
            StorageConfig::Redb {
                path: base.join("a.bench.test.redb"),
                journal: false,
                checkpoint: mimi_hub::storage::CHECKPOINT_INTERVAL,
            }
        );
        assert_eq!(unjournaled.hub_key, redb.hub_key);
    }

    /// Each lap adds to its own step (a step out of range adds to none), and the profile
    /// names every step and process with its per-room figure.
    #[test]
    fn creation_steps_add_up_and_the_profile_names_them() {
        let steps = StepTimes::default();
        let mut mark = Instant::now() - Duration::from_millis(5);
        steps.lap(1, &mut mark);
        assert!(steps.0[1].load(Ordering::Relaxed) >= 5_000);
        assert!(mark.elapsed() < Duration::from_secs(1));
        steps.lap(CREATION_STEPS.len(), &mut mark);
        for (i, step) in steps.0.iter().enumerate() {
            if i != 1 {
                assert_eq!(step.load(Ordering::Relaxed), 0);
            }
        }
        let cost = PerUnit {
            cpu_micros: 2150.0,
            write_bytes: 160_500.0,
            write_syscalls: 1.0,
        };
        let profile = CreationProfile {
            rooms: 400,
            seconds: 2.0,
            step_ms: [1.0; CREATION_STEPS.len()],
            costs: [cost; 4],
        };
        let text = profile.to_string();
        assert!(
            text.contains("400 rooms in 2.00 s (200.0 rooms/s)"),
            "{text}"
        );
        for name in CREATION_STEPS {
            assert!(text.contains(&format!("{name} 1.00;")), "{text}");
        }
        assert!(text.contains("A 2150 µs 160.5 kB;"), "{text}");
    }

    #[test]
    fn load_rooms_are_the_client_api_request() {
        let room = &rooms(1).rooms[0];
        assert_eq!(room.path, "/v1/rooms/%21r0%3Aa.bench.test/events");
        assert_eq!(room.authorization, "Bearer t0");
        assert_eq!(Event::decode(&room.event).unwrap(), room.submit.event);
    }

    #[test]
    fn the_load_covers_every_room() {
        let workload = rooms(10);
        let mut seen = std::collections::BTreeSet::new();
        let mut bodies = std::collections::BTreeSet::new();
        for client in 0..4 {
            for sequence in 0..10 {
                let path = workload.path(client, sequence).unwrap().to_owned();
                let index = workload.rooms.iter().position(|r| r.path == path).unwrap();
                // Each room's request carries that room's event (its ciphertext's last
                // bytes made unique, the framing intact) and creator's token.
                let body = workload.body(client, sequence);
                let event = &workload.rooms[index].event;
                assert_eq!(body.len(), event.len());
                assert_eq!(body[..body.len() - 9], event[..event.len() - 9]);
                assert!(matches!(Event::decode(&body), Ok(Event::DsSendMessage(_))));
                assert!(bodies.insert(body.to_vec()), "every request is distinct");
                assert_eq!(
                    workload.authorization(client, sequence).unwrap(),
                    &format!("Bearer t{index}")
                );
                seen.insert(index);
            }
        }
        assert_eq!(seen.len(), 10);
        let one = rooms(1);
        assert_eq!(one.path(3, 7), Some(one.rooms[0].path.as_str()));
    }
}
