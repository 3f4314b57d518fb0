//! An in-process world of providers for deterministic tests: no sockets, in-memory storage
//! (each wrapped in a `FaultyStorage` the test can make fail), and a `Peers` double that
//! calls the other providers' federation handlers directly — or fails, or never answers,
//! per destination and endpoint, as the test says — and records every call with the
//! instant it was made (on tokio's clock, so paused time gives exact instants).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use mimi_codec::{
    CheckInviteRequest, EventError, EventResponse, IdentifierRequest, IdentifierResponse,
    MessageBody, MimiMessage, ServerName, Wire,
};
use mimi_hub::context::Settings;
use mimi_hub::identity::HubIdentity;
use mimi_hub::peers::{Attempts, Peers};
use mimi_hub::provider::{Provider, ProviderParts};
use mimi_hub::storage::{FaultyStorage, MemoryStorage, Storage};
use mimi_transport::{
    CheckInviteOutcome, CheckInviteReply, Handler, Jitter, Reply, SendOutcome, TransportError,
};
use tempfile::TempDir;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::world::{Client, Providers, name, new_client};

/// An endpoint of a peer, as the double tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `/send` for a waiting client (the transport retries).
    Send,
    /// `/send` from the outbox (one attempt).
    Deliver,
    /// `/check-invite`.
    CheckInvite,
    /// `/identifierDiscovery`.
    Discovery,
    /// A -06 endpoint.
    V06,
}

/// How a peer answers an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Its federation handler answers.
    Route,
    /// It cannot be reached.
    Fail,
    /// It never answers.
    Never,
    /// The request is delivered and handled, its answer lost; the sender's transport sends
    /// it again (`/send` for a waiting client: its retry), and that answer arrives.
    LostOnce,
}

/// One call a provider made to a peer.
#[derive(Debug, Clone)]
pub struct Call {
    /// The caller.
    pub from: ServerName,
    /// The peer.
    pub to: ServerName,
    /// The endpoint.
    pub endpoint: Endpoint,
    /// When it was made.
    pub at: Instant,
    /// The check-invite request, for check-invite calls.
    pub check_invite: Option<CheckInviteRequest>,
}

/// The network between the in-process providers.
#[derive(Default)]
pub struct Net {
    providers: Mutex<HashMap<ServerName, Weak<Provider>>>,
    answers: Mutex<HashMap<(ServerName, Endpoint), Answer>>,
    calls: Mutex<Vec<Call>>,
    called: Notify,
}

impl Net {
    /// From now on, `server` answers `endpoint` so.
    pub fn set(&self, server: &str, endpoint: Endpoint, answer: Answer) {
        self.answers
            .lock()
            .unwrap()
            .insert((name(server), endpoint), answer);
    }

    fn answer(&self, server: &ServerName, endpoint: Endpoint) -> Answer {
        self.answers
            .lock()
            .unwrap()
            .get(&(server.clone(), endpoint))
            .copied()
            .unwrap_or(Answer::Route)
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// Wait until `done` holds for the calls made so far.
    pub async fn wait_for(&self, mut done: impl FnMut(&[Call]) -> bool) -> Vec<Call> {
        loop {
            let called = self.called.notified();
            let calls = self.calls();
            if done(&calls) {
                return calls;
            }
            called.await;
        }
    }

    fn record(&self, call: Call) {
        self.calls.lock().unwrap().push(call);
        self.called.notify_waiters();
    }

    fn provider(&self, server: &ServerName) -> Option<Arc<Provider>> {
        self.providers
            .lock()
            .unwrap()
            .get(server)
            .and_then(Weak::upgrade)
    }
}

fn unreachable(server: &ServerName) -> TransportError {
    TransportError::Network {
        attempts: 1,
        source: format!("{server} is unreachable (test network)").into(),
    }
}

/// A provider's calls to its peers, through the [`Net`].
#[derive(Debug)]
pub struct InProcessPeers {
    from: ServerName,
    net: Arc<Net>,
}

impl std::fmt::Debug for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Net").finish_non_exhaustive()
    }
}

impl InProcessPeers {
    /// Record the call and decide how it goes: `Ok` with the peer to route to.
    async fn begin(
        &self,
        to: &ServerName,
        endpoint: Endpoint,
        check_invite: Option<CheckInviteRequest>,
    ) -> Result<Arc<Provider>, TransportError> {
        self.net.record(Call {
            from: self.from.clone(),
            to: to.clone(),
            endpoint,
            at: Instant::now(),
            check_invite,
        });
        match self.net.answer(to, endpoint) {
            Answer::Fail => Err(unreachable(to)),
            Answer::Never => std::future::pending().await,
            Answer::Route | Answer::LostOnce => {
                self.net.provider(to).ok_or_else(|| unreachable(to))
            }
        }
    }
}

#[async_trait]
impl Peers for InProcessPeers {
    /// The call is made (recorded, and failed or routed as the test says); then, as the
    /// peer's transport does, the bytes are decoded first, and bytes that are not a message
    /// are refused as it refuses them (`400`, or `413` for a field over its limit) before
    /// the peer's handler sees anything.
    async fn send_encoded(
        &self,
        server: &ServerName,
        body: Bytes,
        attempts: Attempts,
    ) -> Result<SendOutcome, TransportError> {
        let endpoint = match attempts {
            Attempts::Transport => Endpoint::Send,
            Attempts::Once => Endpoint::Deliver,
        };
        let lose_first = self.net.answer(server, endpoint) == Answer::LostOnce;
        let peer = self.begin(server, endpoint, None).await?;
        let message = match MimiMessage::decode(&body) {
            Ok(message) => message,
            Err(e) => {
                let code = e.error_code();
                return Err(match code.http_status() {
                    413 => TransportError::TooLarge,
                    status => TransportError::Refused {
                        status,
                        error: Some(EventError::new(code, format!("body does not decode: {e}"))),
                    },
                });
            }
        };
        if lose_first {
            // Handled, answer lost; the retry below is a second call.
            let _lost = Handler::send(peer.as_ref(), &self.from, message.clone()).await;
            self.begin(server, endpoint, None).await?;
        }
        match Handler::send(peer.as_ref(), &self.from, message).await {
            Reply::Accepted(response) => Ok(SendOutcome {
                response,
                attempts: 1,
            }),
            Reply::Refused(m) => Err(TransportError::Refused {
                status: 400,
                error: match m.body {
                    MessageBody::Response(EventResponse::Error(e)) => Some(e),
                    _ => None,
                },
            }),
            Reply::Unavailable(e) => Err(TransportError::ServerError {
                status: 503,
                attempts: 1,
                error: Some(e),
            }),
        }
    }

    async fn check_invite(
        &self,
        server: &ServerName,
        request: &CheckInviteRequest,
    ) -> Result<CheckInviteOutcome, TransportError> {
        let peer = self
            .begin(server, Endpoint::CheckInvite, Some(request.clone()))
            .await?;
        match Handler::check_invite(peer.as_ref(), &self.from, request.clone()).await {
            CheckInviteReply::Accepted => Ok(CheckInviteOutcome::Accepted),
            CheckInviteReply::Refused(e) => Ok(CheckInviteOutcome::Refused(Some(e))),
            CheckInviteReply::Unavailable(e) => Err(TransportError::ServerError {
                status: 503,
                attempts: 1,
                error: Some(e),
            }),
        }
    }

    async fn identifier_discovery(
        &self,
        server: &ServerName,
        domain: &ServerName,
        request: &IdentifierRequest,
    ) -> Result<IdentifierResponse, TransportError> {
        let peer = self.begin(server, Endpoint::Discovery, None).await?;
        Handler::identifier_discovery(peer.as_ref(), &self.from, domain, request.clone())
            .await
            .map_err(|e| TransportError::ServerError {
                status: e.code.http_status(),
                attempts: 1,
                error: Some(e),
            })
    }

    async fn post06(
        &self,
        server: &ServerName,
        from: &ServerName,
        path: String,
        body: Vec<u8>,
    ) -> Result<(u16, Vec<u8>), TransportError> {
        use mimi_transport::v06::{Body06, Handler06, Reply06, Request06, Route06, route06};
        let peer = self.begin(server, Endpoint::V06, None).await?;
        let refused = |r: mimi_transport::v06::Refusal06| Ok((r.status.as_u16(), r.body()));
        let (endpoint, variable) = match route06(&hyper::Method::POST, &path) {
            Some(Ok(Route06::Endpoint(e, v))) => (e, v),
            Some(Err(r)) => return refused(r),
            _ => return Ok((404, Vec::new())),
        };
        let decoded = match Body06::decode(endpoint, &body) {
            Ok(decoded) => decoded,
            Err(e) => return refused(mimi_transport::v06::Refusal06::malformed(&e)),
        };
        let request = Request06 {
            endpoint,
            variable,
            from: from.clone(),
            body: decoded,
            raw: body.into(),
        };
        match Handler06::handle06(peer.as_ref(), request).await {
            Reply06::Ok(body) => Ok((200, body)),
            Reply06::Created => Ok((201, Vec::new())),
            Reply06::Refused(r) => refused(r),
        }
    }
}

/// Full jitter pinned to its ceiling: the backoff delays are exactly `min(cap, base·2ⁿ)`.
#[derive(Debug)]
pub struct CeilingJitter;

impl Jitter for CeilingJitter {
    fn pick(&self, ceiling: Duration) -> Duration {
        ceiling
    }
}

/// In-process providers over one [`Net`].
pub struct Sim {
    dir: TempDir,
    /// The network.
    pub net: Arc<Net>,
    providers: HashMap<String, Arc<Provider>>,
    faulty: HashMap<String, Arc<FaultyStorage>>,
    outboxes: Vec<JoinHandle<()>>,
}

impl Providers for Sim {
    fn provider(&self, server: &str) -> Arc<Provider> {
        Arc::clone(&self.providers[server])
    }
}

impl Sim {
    /// A provider per name, each with `settings` (registration open), and, if `outbox`,
    /// each running its outbox.
    pub fn start(names: &[&str], settings: Settings, outbox: bool) -> Sim {
        let net = Arc::new(Net::default());
        let mut sim = Sim {
            dir: TempDir::new().unwrap(),
            net: Arc::clone(&net),
            providers: HashMap::new(),
            faulty: HashMap::new(),
            outboxes: Vec::new(),
        };
        for server in names {
            let server_name = name(server);
            let faulty = Arc::new(FaultyStorage::new(Arc::new(MemoryStorage::new())));
            let storage: Arc<dyn Storage> = faulty.clone();
            let provider = Provider::new(ProviderParts {
                server_name: server_name.clone(),
                storage,
                peers: Arc::new(InProcessPeers {
                    from: server_name.clone(),
                    net: Arc::clone(&net),
                }),
                identity: HubIdentity::ephemeral(&server_name).unwrap(),
                settings: Settings {
                    open_registration: true,
                    ..settings.clone()
                },
            });
            net.providers
                .lock()
                .unwrap()
                .insert(server_name, Arc::downgrade(&provider));
            if outbox {
                sim.outboxes.push(tokio::spawn(mimi_hub::outbox::run(
                    provider.clone(),
                    std::future::pending(),
                )));
            }
            sim.providers.insert(server.to_string(), provider);
            sim.faulty.insert(server.to_string(), faulty);
        }
        sim
    }

    /// The failing storage of `server`.
    pub fn storage(&self, server: &str) -> &Arc<FaultyStorage> {
        &self.faulty[server]
    }

    /// Register a user at `server` and open its MLS client.
    pub async fn client(&self, server: &str, localpart: &str) -> Client {
        new_client(self, self.dir.path(), server, localpart, None).await
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        for task in &self.outboxes {
            task.abort();
        }
    }
}
