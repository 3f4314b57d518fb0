//! A test world of providers in one process: each provider serves MIMI over real HTTPS with
//! mutual TLS (certificates from one private CA) on 127.0.0.1, keeps its state in a redb file
//! (or in a PostgreSQL database, see [`World::start_on_postgres`]) and runs its outbox, and can be stopped and started again on the same port with the same
//! storage. Clients are real `MlsClient`s in temporary directories, driven through the
//! provider's client-API methods.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use mimi_codec::{
    ClientId, CreateGroupRequest, Event, EventResponse, JoinRule, MessageBody, MimiMessage,
    MlsBytes, ParticipationStateChange, RoomId, RoomState, SendMessageRequest, Sender, ServerName,
    UserEvent, UserId, Wire,
};
use mimi_e2e::{CommitPlan, ExternalSender, MlsClient, Processed};
use mimi_hub::accounts::Registration;
use mimi_hub::context::Settings;
use mimi_hub::identity::HubIdentity;
use mimi_hub::peers::HttpsPeers;
use mimi_hub::provider::{Provider, ProviderParts};
use mimi_hub::rooms::persist::decode_event;
use mimi_hub::storage::{MAX_READ_LIMIT, PostgresStorage, RedbStorage, Storage};
use mimi_signaling::{EventHash, Room};
use mimi_transport::pki::CertificateAuthority;
use mimi_transport::{
    ClientConfig, Handler, Identity, MimiClient, RetryPolicy, ServerConfig, StaticResolver, tls,
};
use openmls::prelude::tls_codec::Deserialize as _;
use rustls::pki_types::CertificateDer;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The three providers of most tests.
pub const A: &str = "a.example";
/// A follower.
pub const B: &str = "b.example";
/// Another follower.
pub const C: &str = "c.example";

/// How long a test waits for something that happens in the background (outbox delivery
/// to a provider that came back). A bound, not an expectation of speed.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Parse a server name.
pub fn name(s: &str) -> ServerName {
    s.parse().unwrap()
}

/// Poll `check` until it returns `Some`, for at most [`PATIENCE`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The private PKI of a world.
pub struct Pki {
    ca: CertificateAuthority,
    roots: Vec<CertificateDer<'static>>,
}

impl Pki {
    /// A fresh CA.
    pub fn new(common_name: &str) -> Self {
        let ca = CertificateAuthority::generate(common_name).unwrap();
        let roots = ca.roots().unwrap();
        Pki { ca, roots }
    }

    /// A certificate and key for `server`, as WebPKI certificates often are: several DNS
    /// names (another host name of the provider first, then the server name in uppercase).
    /// Every federation test thus authenticates peers by RFC 6125 matching (TR-PEER-1): the
    /// sender's server is one of the names, compared without case.
    pub fn identity(&self, server: &str) -> Identity {
        let names = vec![format!("www.{server}"), server.to_ascii_uppercase()];
        self.ca
            .issue_for_dns_names(names)
            .unwrap()
            .identity()
            .unwrap()
    }

    /// PEM files for a `mimi-hub` process of `server` in `dir`: (CA roots, certificate,
    /// private key).
    pub fn write_files(&self, dir: &std::path::Path, server: &str) -> [PathBuf; 3] {
        let (ca, _) = self.ca.write_pem_files(dir, "ca").unwrap();
        let (cert, key) = self
            .ca
            .issue(&name(server))
            .unwrap()
            .write_pem_files(dir, server)
            .unwrap();
        [ca, cert, key]
    }

    /// The trust anchors.
    pub fn roots(&self) -> &[CertificateDer<'static>] {
        &self.roots
    }

    /// A rustls client configuration presenting `server`'s certificate (or none).
    pub fn client_tls(&self, server: Option<&str>) -> Arc<rustls::ClientConfig> {
        tls::client_config(server.map(|s| self.identity(s)), &self.roots).unwrap()
    }
}

/// A running provider.
pub struct Node {
    /// Its logic.
    pub provider: Arc<Provider>,
    stop_server: oneshot::Sender<()>,
    stop_outbox: oneshot::Sender<()>,
    server: JoinHandle<()>,
    outbox: JoinHandle<()>,
}

/// Providers, their addresses and storage directories.
pub struct World {
    /// Temporary directory of every provider's and client's files.
    pub dir: tempfile::TempDir,
    /// The CA every provider trusts.
    pub pki: Pki,
    addrs: HashMap<String, SocketAddr>,
    nodes: HashMap<String, Node>,
    max_body: HashMap<String, usize>,
    /// The PostgreSQL URL of the providers that keep their state there.
    postgres: HashMap<String, String>,
    /// Further instances of a provider (on its database, with its hub key): their key
    /// among the nodes → the provider's name.
    instances: HashMap<String, String>,
}

impl World {
    /// Start a provider for each name, each on its own 127.0.0.1 port.
    pub async fn start(names: &[&str]) -> World {
        World::start_with(names, &[]).await
    }

    /// Like [`World::start`], with a `max_body` for some providers' MIMI server.
    pub async fn start_with(names: &[&str], max_body: &[(&str, usize)]) -> World {
        World::start_full(names, max_body, &[]).await
    }

    /// Like [`World::start`], with some providers on PostgreSQL: `(name, database URL)`.
    pub async fn start_on_postgres(names: &[&str], postgres: &[(&str, &str)]) -> World {
        World::start_full(names, &[], postgres).await
    }

    async fn start_full(
        names: &[&str],
        max_body: &[(&str, usize)],
        postgres: &[(&str, &str)],
    ) -> World {
        let mut listeners = Vec::new();
        let mut addrs = HashMap::new();
        for n in names {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            addrs.insert(n.to_string(), listener.local_addr().unwrap());
            listeners.push((n.to_string(), listener));
        }
        let mut world = World {
            dir: tempfile::tempdir().unwrap(),
            pki: Pki::new("MIMI test CA"),
            addrs,
            nodes: HashMap::new(),
            max_body: max_body.iter().map(|(n, m)| (n.to_string(), *m)).collect(),
            postgres: postgres
                .iter()
                .map(|(n, url)| (n.to_string(), url.to_string()))
                .collect(),
            instances: HashMap::new(),
        };
        for (n, listener) in listeners {
            let node = world.node(&n, listener);
            world.nodes.insert(n, node);
        }
        world
    }

    /// The address of a provider's MIMI server.
    pub fn addr(&self, server: &str) -> SocketAddr {
        self.addrs[server]
    }

    /// A resolver of every provider of the world.
    pub fn resolver(&self) -> StaticResolver {
        let mut resolver = StaticResolver::new();
        for (n, addr) in &self.addrs {
            // The other instances of a provider are reached through the first one's name.
            if !self.instances.contains_key(n) {
                resolver.insert(name(n), *addr);
            }
        }
        resolver
    }

    /// A MIMI client presenting `server`'s certificate, with quick retries.
    pub fn mimi_client(&self, tls: Arc<rustls::ClientConfig>) -> MimiClient {
        MimiClient::new(Self::client_config(tls), Arc::new(self.resolver()))
    }

    /// A MIMI client presenting `server`'s certificate, as the provider `server` does.
    pub fn client_of(&self, server: &str) -> MimiClient {
        self.mimi_client(self.pki.client_tls(Some(server)))
    }

    /// The transport client configuration of the world: quick retries.
    fn client_config(tls: Arc<rustls::ClientConfig>) -> ClientConfig {
        let mut config = ClientConfig::new(tls);
        config.retry = RetryPolicy {
            max_attempts: 2,
            base: Duration::from_millis(50),
            cap: Duration::from_millis(200),
        };
        config.connect_timeout = Duration::from_secs(5);
        config.request_timeout = Duration::from_secs(20);
        config.operation_timeout = Duration::from_secs(30);
        config
    }

    fn storage_path(&self, server: &str) -> PathBuf {
        self.dir.path().join(format!("{server}.redb"))
    }

    /// Start another instance of the provider `server` (on PostgreSQL) on its database and
    /// with its hub key, under the node name `key` (which [`World::provider`] and a
    /// [`Client`]'s `server` take). Peers reach the provider through its first instance.
    pub async fn start_instance(&mut self, key: &str, server: &str) {
        assert!(
            self.postgres.contains_key(server),
            "{server} is not on PostgreSQL"
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        self.addrs
            .insert(key.to_string(), listener.local_addr().unwrap());
        self.instances.insert(key.to_string(), server.to_string());
        let node = self.node(key, listener);
        self.nodes.insert(key.to_string(), node);
    }

    fn node(&self, key: &str, listener: TcpListener) -> Node {
        let server = self.instances.get(key).map_or(key, String::as_str);
        let server_name = name(server);
        let storage: Arc<dyn Storage> = match self.postgres.get(server) {
            // Connecting blocks, which the client refuses on the runtime's threads.
            Some(url) => Arc::new(crate::pg::off_runtime(|| {
                PostgresStorage::connect(url, crate::pg::TEST_POOL_SIZE).unwrap()
            })),
            None => Arc::new(RedbStorage::open(self.storage_path(server)).unwrap()),
        };
        let identity = HubIdentity::load_or_create(
            &self.dir.path().join(format!("{server}.hubkey")),
            &server_name,
        )
        .unwrap();
        let peers = HttpsPeers::new(
            Self::client_config(self.pki.client_tls(Some(server))),
            Arc::new(self.resolver()),
        );
        let provider = Provider::new(ProviderParts {
            server_name: server_name.clone(),
            storage,
            peers: Arc::new(peers),
            identity,
            settings: Settings {
                open_registration: true,
                // Under the whole suite's load a follower may answer 503 while an early
                // event waits for its predecessor (`FOLLOWER_GAP_WAIT`), a few times in a
                // row; with the default cap (30 s) the outbox's backoff could then outlast
                // `PATIENCE` although every event is delivered in the end. Tests keep the
                // backoff short; its exact schedule is tested on paused time
                // (`paused::the_outbox_backs_off_exactly_as_configured`).
                outbox_retry: RetryPolicy {
                    max_attempts: u32::MAX,
                    base: Duration::from_millis(100),
                    cap: Duration::from_secs(2),
                },
                ..Settings::default()
            },
        });
        let tls = tls::server_config(self.pki.identity(server), self.pki.roots()).unwrap();
        let mut config = ServerConfig::new(tls, server_name);
        config.shutdown_grace = Duration::from_secs(2);
        if let Some(max) = self.max_body.get(server) {
            config.max_body = *max;
        }
        let (stop_server, server_rx) = oneshot::channel::<()>();
        let (stop_outbox, outbox_rx) = oneshot::channel::<()>();
        let handler: Arc<dyn Handler> = provider.clone();
        let server = tokio::spawn(mimi_transport::serve(listener, config, handler, async {
            let _ = server_rx.await;
        }));
        let outbox = tokio::spawn(mimi_hub::outbox::run(provider.clone(), async {
            let _ = outbox_rx.await;
        }));
        Node {
            provider,
            stop_server,
            stop_outbox,
            server,
            outbox,
        }
    }

    /// The running provider `server`.
    pub fn provider(&self, server: &str) -> Arc<Provider> {
        Arc::clone(&self.nodes[server].provider)
    }

    /// Stop `server`'s MIMI server and outbox; returns its provider.
    async fn halt(&mut self, server: &str) -> Arc<Provider> {
        let node = self.nodes.remove(server).expect("running");
        let _ = node.stop_server.send(());
        let _ = node.stop_outbox.send(());
        node.server.await.unwrap();
        node.outbox.await.unwrap();
        node.provider
    }

    /// Stop `server`: its MIMI server and outbox end, and everything it held in memory is
    /// dropped (its storage file is closed). The test must hold no handle to it.
    pub async fn stop(&mut self, server: &str) {
        let provider = self.halt(server).await;
        // Aborted outbox workers and finished storage tasks let go of the provider shortly.
        eventually("the stopped provider to be released", || {
            let free =
                Arc::strong_count(&provider) == 1 && Arc::strong_count(provider.storage()) == 1;
            async move { free.then_some(()) }
        })
        .await;
        drop(provider);
    }

    /// Start `server` again on its port, from its storage file (or database).
    pub async fn restart(&mut self, server: &str) {
        assert!(!self.nodes.contains_key(server), "{server} is running");
        let listener = TcpListener::bind(self.addrs[server]).await.unwrap();
        let node = self.node(server, listener);
        self.nodes.insert(server.to_string(), node);
    }

    /// While `server` is stopped: listen on its port and drop every connection, counting
    /// them, so a test sees that others tried to reach it. Abort the task to free the port.
    pub async fn black_hole(&self, server: &str) -> (JoinHandle<()>, Arc<AtomicUsize>) {
        assert!(!self.nodes.contains_key(server), "{server} is running");
        let listener = TcpListener::bind(self.addrs[server]).await.unwrap();
        let count = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&count);
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                seen.fetch_add(1, Ordering::SeqCst);
                drop(tcp);
            }
        });
        (task, count)
    }

    /// Register a user (with one device) at `server` and open its MLS client.
    pub async fn client(&self, server: &str, localpart: &str, display: Option<&str>) -> Client {
        new_client(self, self.dir.path(), server, localpart, display).await
    }

    /// Stop every running provider.
    pub async fn shutdown(mut self) {
        let names: Vec<String> = self.nodes.keys().cloned().collect();
        for n in names {
            self.halt(&n).await;
        }
    }
}

/// Where a test finds a provider by name (the HTTPS world, or the in-process one).
pub trait Providers {
    /// The running provider `server`.
    fn provider(&self, server: &str) -> Arc<Provider>;
}

impl Providers for World {
    fn provider(&self, server: &str) -> Arc<Provider> {
        World::provider(self, server)
    }
}

/// Register a user (with one device) at `server` and open its MLS client in `dir`.
pub async fn new_client(
    world: &impl Providers,
    dir: &std::path::Path,
    server: &str,
    localpart: &str,
    display: Option<&str>,
) -> Client {
    {
        let provider = world.provider(server);
        let registered = provider
            .accounts()
            .register(
                Registration {
                    localpart: localpart.into(),
                    device: "phone".into(),
                    handle: Some(localpart.into()),
                    display_name: display.map(str::to_owned),
                    ..Registration::default()
                },
                None,
            )
            .await
            .unwrap();
        let dir = dir.join(format!("client-{localpart}-{server}"));
        let mls = MlsClient::open(&dir, registered.client_id.clone()).unwrap();
        Client {
            server: server.to_string(),
            id: registered.client_id,
            mls,
            cursor: 0,
            received: Vec::new(),
            seen: Vec::new(),
        }
    }
}

/// One client device of a user.
pub struct Client {
    /// Its provider.
    pub server: String,
    /// Its ID.
    pub id: ClientId,
    /// Its MLS state.
    pub mls: MlsClient,
    /// Inbox cursor.
    pub cursor: u64,
    /// Decrypted application messages, in order: (sender, plaintext).
    pub received: Vec<(ClientId, Vec<u8>)>,
    /// Every (room, sequence number) read from the inbox, in order.
    pub seen: Vec<(RoomId, u64)>,
}

impl Client {
    /// The user.
    pub fn user(&self) -> UserId {
        self.id.user()
    }

    /// Publish `one_time` one-time key packages and a last-resort one (if `last_resort`);
    /// returns them in that order.
    pub async fn publish(
        &mut self,
        world: &impl Providers,
        one_time: usize,
        last_resort: bool,
    ) -> Vec<Vec<u8>> {
        let mut packages = Vec::new();
        for _ in 0..one_time {
            packages.push(self.mls.key_package(false).unwrap());
        }
        if last_resort {
            packages.push(self.mls.key_package(true).unwrap());
        }
        let stored = world
            .provider(&self.server)
            .accounts()
            .publish_key_packages(&self.id, packages.clone())
            .await
            .unwrap();
        assert_eq!(stored, packages.len());
        packages
    }

    /// Whether the client is in the room's group.
    pub fn in_room(&mut self, room: &RoomId) -> bool {
        self.mls.epoch(room).is_ok()
    }

    /// Read and process the inbox: join from Welcomes, process commits and proposals,
    /// decrypt application messages.
    pub async fn sync(&mut self, provider: &Provider) {
        let items = provider
            .inbox()
            .read(&self.id, self.cursor, MAX_READ_LIMIT)
            .await
            .unwrap();
        for (cursor, bytes) in items {
            assert!(cursor > self.cursor, "inbox cursors increase");
            self.cursor = cursor;
            let message = MimiMessage::decode(&bytes).unwrap();
            let room = message.room_id.clone();
            let MessageBody::Fanout(fanout) = message.body else {
                panic!("an inbox holds fully-formed events");
            };
            self.seen.push((room.clone(), fanout.sequence));
            match fanout.event {
                Event::DsCommit(commit) if !self.in_room(&room) => {
                    for welcome in &commit.welcomes {
                        if self.mls.join_from_welcome(welcome.as_slice()).is_ok() {
                            break;
                        }
                    }
                }
                Event::DsCommit(commit) => {
                    match self.mls.process(&room, commit.commit.as_slice()).unwrap() {
                        Processed::Commit(_) | Processed::OwnCommit { .. } => {}
                        other => panic!("a commit processed as {other:?}"),
                    }
                }
                Event::DsSendMessage(m) if self.in_room(&room) => {
                    match self
                        .mls
                        .process(&room, m.application_message.as_slice())
                        .unwrap()
                    {
                        Processed::Application { sender, plaintext } => {
                            self.received.push((sender, plaintext))
                        }
                        Processed::OwnMessage => {}
                        other => panic!("an application message processed as {other:?}"),
                    }
                }
                _ => {}
            }
        }
    }

    /// Sync until `done` holds (the client's provider delivers in the background).
    pub async fn sync_until(
        &mut self,
        world: &impl Providers,
        what: &str,
        mut done: impl FnMut(&mut Client) -> bool,
    ) {
        let provider = world.provider(&self.server);
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            self.sync(&provider).await;
            if done(self) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "gave up waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Create a members-only room hubbed at this client's provider.
    pub async fn create_room(&mut self, world: &impl Providers) -> RoomId {
        let provider = world.provider(&self.server);
        let prepared = provider
            .rooms()
            .prepare_room(&self.id, JoinRule::MembersOnly)
            .unwrap();
        let hub =
            ExternalSender::tls_deserialize_exact(prepared.hub_external_sender.as_slice()).unwrap();
        let created = self.mls.create_room(&prepared.room_state, hub).unwrap();
        let sequence = provider
            .rooms()
            .create_room(
                &self.id,
                &prepared.room_id,
                JoinRule::MembersOnly,
                CreateGroupRequest {
                    group_info: MlsBytes::new(created.group_info).unwrap(),
                    ratchet_tree: MlsBytes::new(created.ratchet_tree).unwrap(),
                },
            )
            .await
            .unwrap();
        assert_eq!(sequence, 1);
        prepared.room_id
    }

    /// The room state after this client's `changes`, from its provider's copy.
    pub async fn state_after(
        &self,
        world: &impl Providers,
        room: &RoomId,
        changes: &[UserEvent],
    ) -> RoomState {
        let (state, _) = world
            .provider(&self.server)
            .rooms()
            .room_state(&self.id, room)
            .await
            .unwrap();
        let mut after = Room::from_room_state(&state).unwrap();
        after
            .accept_all(&Sender::User(self.user()), changes)
            .unwrap();
        after.to_room_state()
    }

    /// Submit an event through this client's provider.
    pub async fn submit(
        &self,
        world: &impl Providers,
        room: &RoomId,
        event: Event,
    ) -> (bool, EventResponse) {
        world
            .provider(&self.server)
            .rooms()
            .submit(&self.id, room, event)
            .await
            .unwrap()
    }

    /// Add `user` (joined, with all the clients it has key packages for) in one commit; the
    /// commit must be accepted. The client then processes its own commit.
    pub async fn add(&mut self, world: &impl Providers, room: &RoomId, user: &UserId) {
        let provider = world.provider(&self.server);
        let key_packages = provider
            .accounts()
            .claim_key_packages(&self.id, room, user, vec![])
            .await
            .unwrap();
        assert!(!key_packages.is_empty());
        let epoch = self.mls.epoch(room).unwrap();
        let change = user_event(user, ParticipationStateChange::Join);
        let state = self
            .state_after(world, room, std::slice::from_ref(&change))
            .await;
        let commit = self
            .mls
            .commit(
                room,
                CommitPlan {
                    user_events: vec![change],
                    adds: key_packages
                        .iter()
                        .map(|k| k.key_package.as_slice().to_vec())
                        .collect(),
                    new_room_state: Some(state),
                    ..CommitPlan::default()
                },
            )
            .unwrap();
        let answer = self.submit(world, room, Event::DsCommit(commit)).await;
        assert_eq!(answer, (true, EventResponse::Ok));
        self.sync_until(world, "the own commit", |c| {
            c.mls.epoch(room).unwrap() == epoch + 1
        })
        .await;
    }

    /// Encrypt and send an application message; it must be accepted.
    pub async fn say(&mut self, world: &impl Providers, room: &RoomId, text: &str) {
        let ciphertext = self.mls.encrypt(room, text.as_bytes()).unwrap();
        let event = Event::DsSendMessage(SendMessageRequest {
            application_message: MlsBytes::new(ciphertext).unwrap(),
        });
        assert_eq!(
            self.submit(world, room, event).await,
            (true, EventResponse::Ok)
        );
    }

    /// The plaintexts received, as text.
    pub fn texts(&self) -> Vec<String> {
        self.received
            .iter()
            .map(|(_, p)| String::from_utf8(p.clone()).unwrap())
            .collect()
    }
}

/// A participation change without reason, certificate or role.
pub fn user_event(target: &UserId, change: ParticipationStateChange) -> UserEvent {
    UserEvent {
        target: target.clone(),
        change,
        reason: Default::default(),
        follower_server_certificate: None,
        role: None,
    }
}

/// A provider's log of a room: (sequence number, event hash) of every entry, in order.
pub fn log_of(provider: &Provider, room: &RoomId) -> Vec<(u64, EventHash)> {
    provider
        .storage()
        .log_range(room, 0, MAX_READ_LIMIT)
        .unwrap()
        .into_iter()
        .map(|e| {
            let event = decode_event(&e.entry).unwrap();
            assert_eq!(event.fanout.sequence, e.seq);
            (e.seq, event.hash)
        })
        .collect()
}

/// Assert that a log holds each sequence number from 0 once, in order.
pub fn assert_gapless(log: &[(u64, EventHash)]) {
    let seqs: Vec<u64> = log.iter().map(|(s, _)| *s).collect();
    let expected: Vec<u64> = (0..log.len() as u64).collect();
    assert_eq!(seqs, expected);
}

/// Assert that an inbox read never delivered the same event twice, and that each room's
/// events came in increasing order.
pub fn assert_once_in_order(seen: &[(RoomId, u64)]) {
    let unique: BTreeSet<&(RoomId, u64)> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "an event was delivered twice");
    let mut last: HashMap<&RoomId, u64> = HashMap::new();
    for (room, seq) in seen {
        if let Some(prev) = last.insert(room, *seq) {
            assert!(*seq > prev, "{room}: {seq} after {prev}");
        }
    }
}

/// One HTTPS request on a fresh connection, for bodies and peers the typed client never
/// produces. `Err` when the connection or the TLS handshake fails.
pub async fn raw_request(
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    server: &str,
    request: Request<Full<Bytes>>,
) -> Result<(StatusCode, Bytes), String> {
    raw_request_from(None, addr, tls, server, request).await
}

/// [`raw_request`] from the local address `source` (another loopback address, such as
/// 127.0.0.2, is another source to the server).
pub async fn raw_request_from(
    source: Option<std::net::IpAddr>,
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    server: &str,
    request: Request<Full<Bytes>>,
) -> Result<(StatusCode, Bytes), String> {
    let tcp = match source {
        None => TcpStream::connect(addr).await.map_err(|e| e.to_string())?,
        Some(ip) => {
            let socket = tokio::net::TcpSocket::new_v4().map_err(|e| e.to_string())?;
            socket
                .bind(SocketAddr::new(ip, 0))
                .map_err(|e| e.to_string())?;
            socket.connect(addr).await.map_err(|e| e.to_string())?
        }
    };
    let tls_name = rustls::pki_types::ServerName::try_from(server.to_string()).unwrap();
    let stream = tokio_rustls::TlsConnector::from(tls)
        .connect(tls_name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, body))
}

/// `POST /send` with a raw body.
pub fn post_send(body: Vec<u8>) -> Request<Full<Bytes>> {
    Request::builder()
        .method(hyper::Method::POST)
        .uri("/send")
        .header(hyper::header::CONTENT_TYPE, "application/octet-stream")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

/// A well-framed application PrivateMessage (RFC 9420 §6.3) that is not of any group: its
/// ciphertext is `len` copies of `tag`.
pub fn private_message(tag: u8, len: usize) -> MlsBytes {
    let mut b = vec![0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0];
    // The ciphertext's variable-length prefix (RFC 9420 §2.1.2).
    let n = u32::try_from(len).unwrap();
    match len {
        0..=63 => b.push(n as u8),
        64..=16383 => b.extend((0x4000 | n as u16).to_be_bytes()),
        _ => b.extend((0x8000_0000 | n).to_be_bytes()),
    }
    b.extend(vec![tag; len]);
    MlsBytes::new(b).unwrap()
}
