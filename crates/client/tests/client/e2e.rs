//! End to end against real providers (`mimi-hub`) in this process: real TLS with one test
//! CA and a certificate per provider, each provider's MIMI server (mTLS) and client API on
//! 127.0.0.1 port 0, a `StaticResolver` naming every provider's federation address, each
//! provider's outbox runner, in-memory hub storage, and clients with their own state
//! directories. Fan-out to another provider is asynchronous (the outbox), so a client
//! waits for what it expects with [`sync_until`] (bounded retries, no timing assertion).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bytes::Bytes;

use mimi_client::api::RegisterRequest;
use mimi_client::cli::{Command, run};
use mimi_client::messages::Compose;
use mimi_client::{Client, ClientError, Registration};
use mimi_codec::{JoinRule, ParticipationState, RoomId, UserId};
use mimi_hub::context::Settings;
use mimi_hub::identity::HubIdentity;
use mimi_hub::peers::HttpsPeers;
use mimi_hub::provider::{Provider, ProviderParts};
use mimi_hub::storage::MemoryStorage;
use mimi_transport::pki::CertificateAuthority;
use mimi_transport::tls::{client_config, server_config, server_config_without_client_auth};
use mimi_transport::{BodyRefusal, ClientConfig, HttpService, ServerConfig, StaticResolver};

/// Providers running in this process.
pub(super) struct World {
    pub(super) ca: PathBuf,
    /// (server name, client API address) of each provider.
    pub(super) apis: Vec<(String, SocketAddr)>,
    /// (server name, provider) of each provider.
    providers: Vec<(String, Arc<Provider>)>,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Start one provider per name: federation server, client API and outbox runner each.
pub(super) async fn start(dir: &Path, names: &[&str]) -> World {
    start_with(dir, names, None).await
}

/// What the first provider's client API does besides answering.
enum FirstApi {
    /// Lose answers to event submissions while above zero (each loss counts it down): the
    /// event is handled, and a gateway answers 502 in place of the answer, as a proxy
    /// whose upstream connection broke.
    Lose(Arc<AtomicUsize>),
    /// While set, flip one bit of the hub's integrity signature in the frank of every
    /// franked application message its `/v1/v06/messages` answers carry: everything else
    /// is the bytes the provider produced.
    TamperFranks(Arc<AtomicBool>),
}

/// The first provider's client API, doing what [`FirstApi`] says besides answering.
struct WrappedApi {
    inner: mimi_hub::api::ClientApi,
    first: FirstApi,
}

impl HttpService for WrappedApi {
    fn check_head(&self, head: &hyper::http::request::Parts) -> Option<hyper::Response<Bytes>> {
        self.inner.check_head(head)
    }

    fn call<'a, 'f>(
        &'a self,
        request: hyper::Request<Bytes>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = hyper::Response<Bytes>> + Send + 'f>>
    where
        'a: 'f,
        Self: 'f,
    {
        match &self.first {
            FirstApi::Lose(lose) => Box::pin(self.lose_answer(request, lose)),
            FirstApi::TamperFranks(tamper) => Box::pin(self.tamper_franks(request, tamper)),
        }
    }

    fn refuse(&self, refusal: BodyRefusal) -> hyper::Response<Bytes> {
        self.inner.refuse(refusal)
    }
}

impl WrappedApi {
    async fn lose_answer(
        &self,
        request: hyper::Request<Bytes>,
        lose: &AtomicUsize,
    ) -> hyper::Response<Bytes> {
        let event = request.uri().path().ends_with("/events");
        let answer = self.inner.call(request).await;
        let lost = event
            && lose
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
        if !lost {
            return answer;
        }
        let mut gateway = hyper::Response::new(Bytes::from_static(b"upstream connection lost"));
        *gateway.status_mut() = hyper::StatusCode::BAD_GATEWAY;
        gateway
    }

    async fn tamper_franks(
        &self,
        request: hyper::Request<Bytes>,
        tamper: &AtomicBool,
    ) -> hyper::Response<Bytes> {
        use mimi_client_api::EndpointResponse as _;
        use mimi_client_api::messages06;
        use mimi_codec::Wire as _;
        use mimi_codec::v06::{FanoutExtra, FanoutMessage};

        let read = request.uri().path() == messages06::METADATA.path;
        let answer = self.inner.call(request).await;
        if !read || !tamper.load(Ordering::SeqCst) || answer.status() != 200 {
            return answer;
        }
        let mut page = messages06::Response::try_from_http_response(&answer).unwrap();
        for bytes in &mut page.messages {
            let mut message = FanoutMessage::decode(bytes).unwrap();
            if let FanoutExtra::Application { frank: Some(frank) } = &mut message.extra {
                let mut signature = frank.franking_integrity_signature.as_slice().to_vec();
                signature[0] ^= 1;
                frank.franking_integrity_signature = mimi_codec::Opaque::new(signature).unwrap();
                *bytes = message.encode().unwrap();
            }
        }
        page.try_into_http_response().unwrap().map(Bytes::from)
    }
}

async fn start_with(dir: &Path, names: &[&str], mut first_api: Option<FirstApi>) -> World {
    let ca = CertificateAuthority::generate("test CA").unwrap();
    let (ca_pem, _) = ca.write_pem_files(dir, "ca").unwrap();
    let roots = ca.roots().unwrap();
    let mut resolver = StaticResolver::new();
    let mut bound = Vec::new();
    for name in names {
        let server_name: mimi_codec::ServerName = name.parse().unwrap();
        let federation = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        resolver.insert(server_name.clone(), federation.local_addr().unwrap());
        bound.push((server_name, federation, api));
    }
    let resolver = Arc::new(resolver);
    let (stop, rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let mut tasks = Vec::new();
    let mut apis = Vec::new();
    let mut providers = Vec::new();
    for (server_name, federation, api) in bound {
        let issued = ca.issue(&server_name).unwrap();
        let provider = Provider::new(ProviderParts {
            server_name: server_name.clone(),
            storage: Arc::new(MemoryStorage::new()),
            peers: Arc::new(HttpsPeers::new(
                ClientConfig::new(client_config(Some(issued.identity().unwrap()), &roots).unwrap()),
                resolver.clone(),
            )),
            identity: HubIdentity::load_or_create(
                &dir.join(format!("{server_name}.hub.key")),
                &server_name,
            )
            .unwrap(),
            settings: Settings {
                open_registration: true,
                ..Settings::default()
            },
        });
        apis.push((server_name.to_string(), api.local_addr().unwrap()));
        providers.push((server_name.to_string(), provider.clone()));
        tasks.push(tokio::spawn(mimi_transport::serve(
            federation,
            ServerConfig::new(
                server_config(issued.identity().unwrap(), &roots).unwrap(),
                server_name.clone(),
            ),
            provider.clone(),
            stopped(rx.clone()),
        )));
        let api_tls = server_config_without_client_auth(issued.identity().unwrap()).unwrap();
        let wrapped: Option<Arc<dyn HttpService>> = match first_api.take() {
            Some(first) if apis.len() == 1 => Some(Arc::new(WrappedApi {
                inner: mimi_hub::api::ClientApi::new(provider.clone()),
                first,
            })),
            other => {
                first_api = other;
                None
            }
        };
        match wrapped {
            Some(service) => {
                tasks.push(tokio::spawn(mimi_transport::serve_http(
                    api,
                    mimi_hub::api::config(api_tls),
                    service,
                    stopped(rx.clone()),
                )));
            }
            None => tasks.push(tokio::spawn(mimi_hub::api::serve(
                api,
                api_tls,
                provider.clone(),
                stopped(rx.clone()),
            ))),
        }
        tasks.push(tokio::spawn(mimi_hub::outbox::run(
            provider,
            stopped(rx.clone()),
        )));
    }
    World {
        ca: ca_pem,
        apis,
        providers,
        stop,
        tasks,
    }
}

impl World {
    fn registration(&self, provider: &str, user: &str, device: &str) -> Registration {
        let (_, addr) = self.apis.iter().find(|(n, _)| n == provider).unwrap();
        Registration {
            api: format!("https://{provider}"),
            connect: Some(addr.to_string()),
            ca: self.ca.clone(),
            request: RegisterRequest {
                localpart: user.into(),
                device: device.into(),
                handle: Some(user.into()),
                ..RegisterRequest::default()
            },
            ..Registration::default()
        }
    }

    /// Register `user` on `provider` in `dir/<user>-<device>` and publish key packages.
    async fn client(&self, dir: &Path, provider: &str, user: &str, device: &str) -> Client {
        let mut client = Client::register(
            &dir.join(format!("{user}-{device}")),
            self.registration(provider, user, device),
        )
        .await
        .unwrap();
        assert_eq!(client.publish_key_packages(2, true).await.unwrap(), 3);
        client
    }

    /// The provider named `name`.
    pub(super) fn provider(&self, name: &str) -> &Provider {
        &self.providers.iter().find(|(n, _)| n == name).unwrap().1
    }

    pub(super) async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            task.await.unwrap();
        }
    }
}

/// How many times [`sync_until`] syncs before giving up.
const SYNC_ATTEMPTS: usize = 400;

/// Sync until `done` holds (fan-out to another provider goes through its outbox).
async fn sync_until(client: &mut Client, what: &str, mut done: impl FnMut(&mut Client) -> bool) {
    for _ in 0..SYNC_ATTEMPTS {
        client.sync().await.unwrap();
        if done(client) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("{}: never saw {what}", client.user_id());
}

/// The room's participants as this client sees them: (user, role, state), sorted.
fn participants(client: &mut Client, room: &RoomId) -> Vec<(String, String, ParticipationState)> {
    let mut list: Vec<_> = client
        .room_view(room)
        .unwrap()
        .state
        .map(|s| {
            s.participants
                .iter()
                .map(|p| (p.user_id.to_string(), p.role.to_string(), p.state))
                .collect()
        })
        .unwrap_or_default();
    list.sort();
    list
}

fn p(user: &str, role: &str, state: ParticipationState) -> (String, String, ParticipationState) {
    (user.to_owned(), role.to_owned(), state)
}

/// The decrypted texts in the client's room log: (sender, text).
fn texts(client: &mut Client, room: &RoomId) -> Vec<(String, String)> {
    client
        .room_view(room)
        .unwrap()
        .messages
        .iter()
        .filter_map(|m| Some((m.sender.to_string(), m.text.clone()?)))
        .collect()
}

fn t(sender: &str, text: &str) -> (String, String) {
    (sender.to_owned(), text.to_owned())
}

fn epoch(client: &mut Client, room: &RoomId) -> Option<u64> {
    client.room_view(room).unwrap().epoch
}

async fn say(client: &mut Client, room: &RoomId, text: &str) {
    client
        .send(
            room,
            &Compose::Text {
                text: text.into(),
                reply_to: None,
            },
        )
        .await
        .unwrap();
}

fn uid(s: &str) -> UserId {
    s.parse().unwrap()
}

use ParticipationState::{Ban, Invite, Join, Knock};

const ALICE: &str = "@alice:a.example";
const BOB: &str = "@bob:b.example";
const CAROL: &str = "@carol:c.example";

#[tokio::test]
async fn alice_adds_bob_they_talk_and_bob_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let world = start(dir.path(), &["a.example"]).await;
    let mut alice = world
        .client(dir.path(), "a.example", "alice", "phone")
        .await;
    let bob_dir = dir.path().join("bob-laptop");
    let mut bob = world.client(dir.path(), "a.example", "bob", "laptop").await;
    assert_eq!(bob.user_id().as_str(), "@bob:a.example");
    let found = alice.discover("a.example", "handle", "bob").await.unwrap();
    assert_eq!(
        (found.code.as_str(), found.user_id.as_deref()),
        ("success", Some("@bob:a.example"))
    );

    let room = alice.create_room(JoinRule::MembersOnly).await.unwrap();
    assert_eq!(alice.add(&room, bob.user_id()).await.unwrap(), 1);
    bob.sync().await.unwrap();
    assert_eq!(bob.room_view(&room).unwrap().epoch, Some(1));

    let hello = alice
        .send(
            &room,
            &Compose::Text {
                text: "hello Bob".into(),
                reply_to: None,
            },
        )
        .await
        .unwrap();
    bob.sync().await.unwrap();
    // A member may not ban the owner: the hub is never asked, the rule is named.
    let err = bob.ban(&room, alice.user_id()).await.unwrap_err();
    assert!(matches!(err, ClientError::Rejected(_)), "{err:?}");
    drop(bob);

    // Bob restarts and replies through the command line.
    let out = run(mimi_client::cli::Cli {
        json: false,
        dir: bob_dir.clone(),
        command: Command::Send {
            room: room.clone(),
            text: "hi Alice".into(),
            reply_to: Some(hello.id[..8].to_owned()),
        },
    })
    .await
    .unwrap();
    assert!(out.starts_with("sent ["), "{out}");
    alice.sync().await.unwrap();
    let view = alice.room_view(&room).unwrap();
    let lines = mimi_client::view::render_messages(&view.messages);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(
        lines[0],
        format!("[{}] @alice:a.example: hello Bob", &hello.id[..8])
    );
    assert!(
        lines[1].ends_with(&format!(
            "@bob:a.example (reply to [{}] \"hello Bob\"): hi Alice",
            &hello.id[..8]
        )),
        "{}",
        lines[1]
    );
    world.stop().await;
}

/// Alice (a.example, the hub) adds Bob (b.example): the Welcome rides in the commit that
/// the hub fans out to b.example.
async fn alice_adds_bob(world: &World, dir: &Path) -> (Client, Client, RoomId) {
    let mut alice = world.client(dir, "a.example", "alice", "phone").await;
    let mut bob = world.client(dir, "b.example", "bob", "laptop").await;
    let found = alice.discover("b.example", "handle", "bob").await.unwrap();
    assert_eq!(found.user_id.as_deref(), Some(BOB));
    let room = alice.create_room(JoinRule::MembersOnly).await.unwrap();
    assert_eq!(alice.add(&room, &uid(BOB)).await.unwrap(), 1);
    sync_until(&mut bob, "the Welcome", |c| epoch(c, &room) == Some(1)).await;
    (alice, bob, room)
}

#[tokio::test]
async fn add_with_welcome_across_two_providers() {
    let dir = tempfile::tempdir().unwrap();
    let world = start(dir.path(), &["a.example", "b.example"]).await;
    let (mut alice, mut bob, room) = alice_adds_bob(&world, dir.path()).await;
    let expected = vec![p(ALICE, "owner", Join), p(BOB, "member", Join)];
    assert_eq!(participants(&mut alice, &room), expected);
    assert_eq!(participants(&mut bob, &room), expected);

    say(&mut alice, &room, "hello Bob").await;
    sync_until(&mut bob, "Alice's message", |c| texts(c, &room).len() == 1).await;
    say(&mut bob, &room, "hi Alice").await;
    alice.sync().await.unwrap();
    let both = vec![t(ALICE, "hello Bob"), t(BOB, "hi Alice")];
    assert_eq!(texts(&mut alice, &room), both);
    assert_eq!(texts(&mut bob, &room), both);
    world.stop().await;
}

#[tokio::test]
async fn invite_then_join_by_external_commit() {
    let dir = tempfile::tempdir().unwrap();
    let world = start(dir.path(), &["a.example", "b.example"]).await;
    let mut alice = world
        .client(dir.path(), "a.example", "alice", "phone")
        .await;
    let mut bob = world.client(dir.path(), "b.example", "bob", "laptop").await;
    let room = alice.create_room(JoinRule::MembersOnly).await.unwrap();
    // The hub asks b.example (check-invite) before accepting the invite proposal.
    alice.invite(&room, &uid(BOB)).await.unwrap();
    assert_eq!(alice.commit(&room).await.unwrap(), 1);
    assert_eq!(
        participants(&mut alice, &room),
        vec![p(ALICE, "owner", Join), p(BOB, "member", Invite)]
    );
    sync_until(&mut bob, "the invite", |c| {
        participants(c, &room).contains(&p(BOB, "member", Invite))
    })
    .await;
    assert_eq!(epoch(&mut bob, &room), None);

    assert_eq!(bob.join(&room).await.unwrap(), 2);
    let expected = vec![p(ALICE, "owner", Join), p(BOB, "member", Join)];
    assert_eq!(participants(&mut bob, &room), expected);
    alice.sync().await.unwrap();
    assert_eq!(epoch(&mut alice, &room), Some(2));
    assert_eq!(participants(&mut alice, &room), expected);

    say(&mut bob, &room, "joined").await;
    alice.sync().await.unwrap();
    say(&mut alice, &room, "welcome").await;
    sync_until(&mut bob, "Alice's message", |c| texts(c, &room).len() == 2).await;
    let both = vec![t(BOB, "joined"), t(ALICE, "welcome")];
    assert_eq!(texts(&mut alice, &room), both);
    assert_eq!(texts(&mut bob, &room), both);
    world.stop().await;
}

#[tokio::test]
async fn invitee_declines() {
    let dir = tempfile::tempdir().unwrap();
    let world = start(dir.path(), &["a.example", "b.example"]).await;
    let mut alice = world
        .client(dir.path(), "a.example", "alice", "phone")
        .await;
    let mut bob = world.client(dir.path(), "b.example", "bob", "laptop").await;
    let room = alice.create_room(JoinRule::MembersOnly).await.unwrap();
    alice.invite(&room, &uid(BOB)).await.unwrap();
    alice.commit(&room).await.unwrap();
    sync_until(&mut bob, "the invite", |c| {
        participants(c, &room).contains(&p(BOB, "member", Invite))
    })
    .await;
    // Not in the group: the leave is unsigned.
    bob.leave(&room).await.unwrap();
    alice.sync().await.unwrap();
    assert_eq!(
        participants(&mut alice, &room),
        vec![p(ALICE, "owner", Join)]
    );
    let notes = alice.room_view(&room).unwrap().notes;
    assert!(
        notes.iter().any(|(_, n)| n == &format!("{BOB} left")),
        "{notes:?}"
    );
    // The group is unchanged, and Bob, no longer invited, cannot join: the hub names the
    // rule.
    assert_eq!(epoch(&mut alice, &room), Some(1));
    let err = bob.join(&room).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "refused (ForbiddenByPolicy): SIG-JOIN-4: the room's join rule requires an invite before joining"
    );
    assert_eq!(epoch(&mut bob, &room), None);
    world.stop().await;
}

#[tokio::test]
async fn second_device_joins_by_external_commit() {
    let dir = tempfile::tempdir().unwrap();
    let world = start(dir.path(), &["a.example", "b.example"]).await;
    let (mut alice, mut bob, room) = alice_adds_bob(&world, dir.path()).await;
    let mut tablet = Client::register(
        &dir.path().join("bob-tablet"),
        Registration {
            token_from: Some(dir.path().join("bob-laptop")),
            ..world.registration("b.example", "bob", "tablet")
        },
    )
    .await
    .unwrap();
    assert_eq!(tablet.user_id().as_str(), BOB);
    assert_eq!(tablet.join(&room).await.unwrap(), 2);
    alice.sync().await.unwrap();
    sync_until(&mut bob, "the tablet's commit", |c| {
        epoch(c, &room) == Some(2)
    })
    .await;
    let members = |c: &mut Client| {
        let mut m: Vec<String> = c
            .mls()
            .members(&room)
            .unwrap()
            .into_iter()
            .map(|(_, c)| c.user().to_string())
            .collect();
        m.sort();
        m
    };
    let expected = vec![ALICE.to_owned(), BOB.to_owned(), BOB.to_owned()];
    assert_eq!(members(&mut alice), expected);
    assert_eq!(members(&mut bob), expected);
    assert_eq!(members(&mut tablet), expected);
    let list = vec![p(ALICE, "owner", Join), p(BOB, "member", Join)];
    assert_eq!(participants(&mut tablet, &room), list);

    say(&mut alice, &room, "to both of Bob's devices").await;
    sync_until(&mut bob, "the message", |c| texts(c, &room).len() == 1).await;
    sync_until(&mut tablet, "the message", |c| texts(c, &room).len() == 1).await;
    say(&mut tablet, &room, "from the tablet").await;
    alice.sync().await.unwrap();
    sync_until(&mut bob, "the tablet's message", |c| {
        texts(c, &room).len() == 2
    })
    .await;
    let all = vec![
        t(ALICE, "to both of Bob's devices"),
        t(BOB, "from the tablet"),
    ];
    assert_eq!(texts(&mut alice, &room), all);
    assert_eq!(texts(&mut bob, &room), all);
    assert_eq!(texts(&mut tablet, &room), all);
    world.stop().await;
}

#[tokio::test]
async fn leave_by_self_remove_then_another_member_commits() {
    let dir = tempfile::tempdir().unwrap();
    let world = start(dir.path(), &["a.example", "b.example"]).await;
    let (mut alice, mut bob, room) = alice_adds_bob(&world, dir.path()).await;
    bob.leave(&room).await.unwrap();
    // Bob is still in the group until a member commits his proposals.
    assert_eq!(epoch(&mut bob, &room), Some(1));
    assert_eq!(alice.commit(&room).await.unwrap(), 2);
    assert_eq!(
        participants(&mut alice, &room),
        vec![p(ALICE, "owner", Join)]
    );
    assert_eq!(alice.mls().members(&room).unwrap().len(), 1);
    sync_until(&mut bob, "his removal", |c| epoch(c, &room).is_none()).await;
    assert_eq!(participants(&mut bob, &room), vec![p(ALICE, "owner", Join)]);
    let notes = bob.room_view(&room).unwrap().notes;
    assert!(
        notes.iter().any(|(_, n)| n == "this client was removed"),
        "{notes:?}"
    );
    // Alice's next message is for her alone.
    say(&mut alice, &room, "alone").await;
    bob.sync().await.unwrap();
    assert_eq!(texts(&mut bob, &room), vec![]);
    world.stop().await;
}

#[tokio::test]
async fn kick() {
    let dir = tempfile::tempdir().unwrap();
    let world = start(dir.path(), &["a.example", "b.example"]).await;
    let (mut alice, mut bob, room) = alice_adds_bob(&world, dir.path()).await;
    assert_eq!(alice.kick(&room, &uid(BOB)).await.unwrap(), 2);
    assert_eq!(
        participants(&mut alice, &room),
        vec![p(ALICE, "owner", Join)]
    );
    assert_eq!(alice.mls().members(&room).unwrap().len(), 1);
    sync_until(&mut bob, "the kick", |c| epoch(c, &room).is_none()).await;
    assert_eq!(participants(&mut bob, &room), vec![p(ALICE, "owner", Join)]);
    let err = bob
        .send(
            &room,
            &Compose::Text {
                text: "still here?".into(),
                reply_to: None,
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::NotInRoom(r) if *r == room),
        "{err:?}"
    );
    world.stop().await;
}

#[tokio::test]
async fn ban_preemptive_ban_unban_and_reinvite() {
    let dir = tempfile::tempdir().unwrap();
    let world = start(dir.path(), &["a.example", "b.example", "c.example"]).await;
    let (mut alice, mut bob, room) = alice_adds_bob(&world, dir.path()).await;
    let mut carol = world
        .client(dir.path(), "c.example", "carol", "phone")
        .await;

    // Carol is not a participant: banning her only records the ban (an epoch all the same,
    // the room state changes).
    assert_eq!(alice.ban(&room, &uid(CAROL)).await.unwrap(), 2);
    assert_eq!(
        participants(&mut alice, &room),
        vec![
            p(ALICE, "owner", Join),
            p(BOB, "member", Join),
            p(CAROL, "member", Ban)
        ]
    );
    // A banned user joining is refused with the rule: by her own client if her provider
    // already has the ban (it was fanned out to c, the server the ban names), else by the
    // hub; which one depends only on how fast the ban reached c.
    let err = carol.join(&room).await.unwrap_err().to_string();
    assert!(
        [
            "refused locally: SIG-JOIN-1: a banned user cannot join",
            "refused (InvalidParticipationChange): SIG-JOIN-1: a banned user cannot join",
        ]
        .contains(&err.as_str()),
        "{err}"
    );
    assert_eq!(epoch(&mut carol, &room), None);

    // Banning a joined user removes his clients.
    assert_eq!(alice.ban(&room, &uid(BOB)).await.unwrap(), 3);
    assert_eq!(alice.mls().members(&room).unwrap().len(), 1);
    sync_until(&mut bob, "the ban", |c| epoch(c, &room).is_none()).await;
    assert!(participants(&mut bob, &room).contains(&p(BOB, "member", Ban)));

    // Unban Carol, invite her, she joins.
    assert_eq!(alice.unban(&room, &uid(CAROL)).await.unwrap(), 4);
    assert!(!participants(&mut alice, &room).iter().any(|x| x.0 == CAROL));
    alice.invite(&room, &uid(CAROL)).await.unwrap();
    assert_eq!(alice.commit(&room).await.unwrap(), 5);
    assert_eq!(carol.join(&room).await.unwrap(), 6);
    alice.sync().await.unwrap();
    let expected = vec![
        p(ALICE, "owner", Join),
        p(BOB, "member", Ban),
        p(CAROL, "member", Join),
    ];
    assert_eq!(participants(&mut alice, &room), expected);
    assert_eq!(participants(&mut carol, &room), expected);
    say(&mut carol, &room, "thanks").await;
    alice.sync().await.unwrap();
    assert_eq!(texts(&mut alice, &room), vec![t(CAROL, "thanks")]);
    world.stop().await;
}

#[tokio::test]
async fn knock_then_invite() {
    let dir = tempfile::tempdir().unwrap();
    let world = start(dir.path(), &["a.example", "b.example"]).await;
    let mut alice = world
        .client(dir.path(), "a.example", "alice", "phone")
        .await;
    let mut bob = world.client(dir.path(), "b.example", "bob", "laptop").await;
    let room = alice.create_room(JoinRule::Knock).await.unwrap();
    bob.knock(&room).await.unwrap();
    alice.sync().await.unwrap();
    assert_eq!(
        participants(&mut alice, &room),
        vec![p(ALICE, "owner", Join), p(BOB, "member", Knock)]
    );
    let notes = alice.room_view(&room).unwrap().notes;
    assert!(
        notes.iter().any(|(_, n)| n == &format!("{BOB} knocked")),
        "{notes:?}"
    );
    alice.invite(&room, &uid(BOB)).await.unwrap();
    assert_eq!(alice.commit(&room).await.unwrap(), 1);
    sync_until(&mut bob, "the invite", |c| {
        participants(c, &room).contains(&p(BOB, "member", Invite))
    })
    .await;
    assert_eq!(bob.join(&room).await.unwrap(), 2);
    alice.sync().await.unwrap();
    let expected = vec![p(ALICE, "owner", Join), p(BOB, "member", Join)];
    assert_eq!(participants(&mut alice, &room), expected);
    assert_eq!(participants(&mut bob, &room), expected);
    world.stop().await;
}

#[tokio::test]
async fn refusals_name_the_rule() {
    let dir = tempfile::tempdir().unwrap();
    let world = start(dir.path(), &["a.example", "b.example", "c.example"]).await;
    let (_alice, bob, room) = alice_adds_bob(&world, dir.path()).await;
    drop(bob);
    // A member without the admin role inviting, through the command line.
    let err = run(mimi_client::cli::Cli {
        json: false,
        dir: dir.path().join("bob-laptop"),
        command: Command::Invite {
            room: room.clone(),
            user: uid(CAROL),
        },
    })
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "refused locally: SIG-INV-3: the room's policy does not let the sender's role invite users"
    );
    world.stop().await;
}

/// The spec's "leave with hub-generated removes": Bob leaves with the `m.room.user` leave
/// only; Alice asks the hub for the removals (through the command line), then commits;
/// both of Bob's clients are out.
#[tokio::test]
async fn leave_with_hub_generated_removes() {
    let dir = tempfile::tempdir().unwrap();
    let world = start(dir.path(), &["a.example", "b.example"]).await;
    let (mut alice, mut bob, room) = alice_adds_bob(&world, dir.path()).await;
    let mut tablet = Client::register(
        &dir.path().join("bob-tablet"),
        Registration {
            token_from: Some(dir.path().join("bob-laptop")),
            ..world.registration("b.example", "bob", "tablet")
        },
    )
    .await
    .unwrap();
    assert_eq!(tablet.join(&room).await.unwrap(), 2);
    sync_until(&mut bob, "the tablet's commit", |c| {
        epoch(c, &room) == Some(2)
    })
    .await;
    // Nobody left yet: the hub has nothing to remove.
    assert!(!alice.request_hub_removals(&room).await.unwrap());

    bob.leave_without_self_remove(&room).await.unwrap();
    alice.sync().await.unwrap();
    assert_eq!(
        participants(&mut alice, &room),
        vec![p(ALICE, "owner", Join)]
    );
    assert_eq!(alice.mls().members(&room).unwrap().len(), 3);
    drop(alice);
    let out = run(mimi_client::cli::Cli {
        json: false,
        dir: dir.path().join("alice-phone"),
        command: Command::HubRemovals { room: room.clone() },
    })
    .await
    .unwrap();
    assert_eq!(
        out,
        format!("the hub of {room} proposed removals; a member's next commit includes them")
    );
    let mut alice = Client::open(&dir.path().join("alice-phone")).unwrap();
    // Queued already: asking again proposes nothing more.
    assert!(!alice.request_hub_removals(&room).await.unwrap());
    assert_eq!(alice.commit(&room).await.unwrap(), 3);
    let members: Vec<String> = alice
        .mls()
        .members(&room)
        .unwrap()
        .into_iter()
        .map(|(_, c)| c.user().to_string())
        .collect();
    assert_eq!(members, vec![ALICE.to_owned()]);
    sync_until(&mut bob, "his removal", |c| epoch(c, &room).is_none()).await;
    sync_until(&mut tablet, "its removal", |c| epoch(c, &room).is_none()).await;
    assert_eq!(
        participants(&mut tablet, &room),
        vec![p(ALICE, "owner", Join)]
    );
    // Bob is a participant no more: he may not ask the hub.
    let err = bob.request_hub_removals(&room).await.unwrap_err();
    assert!(
        matches!(
            &err,
            ClientError::Api {
                status: 403,
                code: mimi_client::api::ErrorCode::Forbidden,
                ..
            }
        ),
        "{err:?}"
    );
    world.stop().await;
}

/// The gap "a refused invite can block that client's next commit": the invitee's provider
/// refuses the invite (no such user), the client withdraws the proposal from its MLS
/// store, and its next commit (which would otherwise reference a proposal the hub never
/// accepted) goes through.
#[tokio::test]
async fn a_refused_invite_does_not_block_the_next_commit() {
    let dir = tempfile::tempdir().unwrap();
    let world = start(dir.path(), &["a.example", "b.example"]).await;
    let (mut alice, mut bob, room) = alice_adds_bob(&world, dir.path()).await;
    let err = alice
        .invite(&room, &uid("@nobody:b.example"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::Refused(e) if e.code == mimi_codec::ErrorCode::InviteRejected),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "refused (InviteRejected): b.example refused the invite: @nobody:b.example does not exist here"
    );
    // Same epoch: the next commit carries nothing the hub does not hold.
    assert_eq!(epoch(&mut alice, &room), Some(1));
    assert_eq!(alice.commit(&room).await.unwrap(), 2);
    sync_until(&mut bob, "Alice's commit", |c| epoch(c, &room) == Some(2)).await;
    let expected = vec![p(ALICE, "owner", Join), p(BOB, "member", Join)];
    assert_eq!(participants(&mut alice, &room), expected);
    assert_eq!(participants(&mut bob, &room), expected);
    world.stop().await;
}

/// Rule CL-ONCE-1: Alice's commit is applied but its answer is lost (twice): the client
/// sends it again, the hub recognises it and answers as the first time, and the client
/// merges it rather than being stranded on the old epoch; the room goes on. With every
/// resend's answer lost too, the commit stays pending and the next sync merges it from
/// the hub's fan-out.
#[tokio::test]
async fn a_commit_whose_answer_is_lost_is_merged() {
    let dir = tempfile::tempdir().unwrap();
    let lose = Arc::new(AtomicUsize::new(0));
    let world = start_with(
        dir.path(),
        &["a.example"],
        Some(FirstApi::Lose(lose.clone())),
    )
    .await;
    let mut alice = world
        .client(dir.path(), "a.example", "alice", "phone")
        .await;
    let mut bob = world.client(dir.path(), "a.example", "bob", "laptop").await;
    let room = alice.create_room(JoinRule::MembersOnly).await.unwrap();

    lose.store(2, Ordering::SeqCst);
    assert_eq!(alice.add(&room, bob.user_id()).await.unwrap(), 1);
    assert_eq!(lose.load(Ordering::SeqCst), 0, "two answers were lost");
    bob.sync().await.unwrap();
    assert_eq!(epoch(&mut bob, &room), Some(1));

    // Every answer lost: the call fails, but the commit was applied and is merged by the
    // next sync; the room goes on at the new epoch.
    lose.store(1 + mimi_client::COMMIT_RESENDS, Ordering::SeqCst);
    let err = alice.commit(&room).await.unwrap_err();
    assert!(mimi_client::answer_lost(&err), "{err:?}");
    alice.sync().await.unwrap();
    assert_eq!(epoch(&mut alice, &room), Some(2));
    say(&mut alice, &room, "still here").await;
    sync_until(&mut bob, "Alice's message", |c| !texts(c, &room).is_empty()).await;
    assert_eq!(texts(&mut bob, &room), [t(ALICE, "still here")]);
    assert_eq!(epoch(&mut bob, &room), Some(2));
    world.stop().await;
}

/// A -06 room with the client library: Alice (a.example, the hub) creates it, Bob
/// (b.example) grants her consent, she adds him (his key material through the hub, one
/// commit), Bob reads the room (joins from the Welcome b.example received with `notify`),
/// they talk with `submitMessage`; a guest may not add anyone.
#[tokio::test]
async fn a_06_room_alice_adds_bob_and_they_talk() {
    let dir = tempfile::tempdir().unwrap();
    let world = start(dir.path(), &["a.example", "b.example", "c.example"]).await;
    let mut alice = world
        .client(dir.path(), "a.example", "alice", "phone")
        .await;
    let mut bob = world.client(dir.path(), "b.example", "bob", "laptop").await;
    let carol = world.client(dir.path(), "c.example", "carol", "desk").await;
    let room = alice.create_room06("club", "Club").await.unwrap();
    assert_eq!(room.as_str(), "mimi://a.example/r/club");
    let room = room.as_str().to_owned();

    // Without Bob's consent there is no key material.
    let refused = alice
        .add06(&room, "mimi://b.example/u/bob", 2)
        .await
        .unwrap_err();
    assert!(matches!(refused, ClientError::Refused06(_)), "{refused}");
    bob.consent06("mimi://a.example/u/alice", Some(&room), true)
        .await
        .unwrap();
    assert_eq!(
        alice
            .add06(&room, "mimi://b.example/u/bob", 3)
            .await
            .unwrap(),
        1
    );
    assert!(bob.read06(&room).await.unwrap().is_empty());
    assert_eq!(bob.mls().epoch06(&room.parse().unwrap()).unwrap(), 1);

    alice.send06(&room, "hello Bob").await.unwrap();
    bob.send06(&room, "hi Alice").await.unwrap();
    let at_bob = bob.read06(&room).await.unwrap();
    let at_alice = alice.read06(&room).await.unwrap();
    assert_eq!(
        at_bob.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
        ["hello Bob"]
    );
    assert_eq!(
        at_alice.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
        ["hi Alice"]
    );
    assert_eq!(at_alice[0].sender.as_str(), "@bob:b.example#laptop");

    // The room names its hub's franking agent (the creator had it from a.example), so the
    // hub franked both messages; each frank verifies as a receiver checks it (§5.4.1.3), and
    // a frank moved to the other message does not.
    let room_uri: mimi_codec::v06::IdentifierUri = room.parse().unwrap();
    let (agent, suite) = bob.mls().franking_agent06(&room_uri).unwrap();
    let agent = agent.expect("the room's GroupContext has a franking_agent");
    let check = |m: &mimi_client::Message06, frank: &mimi_codec::v06::Frank| {
        let content = mimi_content::MimiContent::decode(&m.content).unwrap();
        let message = mimi_e2e::franking::FrankedMessage {
            application_data: &m.content,
            salt: &content.salt.0,
            asserted_sender: content.extensions.sender_uri.as_deref().unwrap(),
            asserted_room: content.extensions.room_uri.as_deref().unwrap(),
            accepted_timestamp: m.timestamp,
            frank,
        };
        mimi_e2e::franking::verify_received(&message, None, &agent, suite, &room_uri)
    };
    for m in at_bob.iter().chain(&at_alice) {
        assert_eq!(m.frank_refused, None, "the reader verified the frank");
        let frank = m.frank.as_ref().expect("the hub franked the message");
        check(m, frank).unwrap();
    }
    assert!(check(&at_bob[0], at_alice[0].frank.as_ref().unwrap()).is_err());

    // Bob is a guest (role 3): adding Carol is not allowed, and nothing changes.
    carol
        .consent06("mimi://b.example/u/bob", Some(&room), true)
        .await
        .unwrap();
    let refused = bob
        .add06(&room, "mimi://c.example/u/carol", 2)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("NotAllowed"), "{refused}");
    assert_eq!(bob.mls().epoch06(&room.parse().unwrap()).unwrap(), 1);

    // A user of the hub's own provider: the Welcome is in the hub's own log.
    let mut dave = world.client(dir.path(), "a.example", "dave", "pad").await;
    // Not a participant yet: the hub does not let him read the room.
    let refused = dave.read06(&room).await.unwrap_err();
    assert!(
        refused.to_string().contains("not a participant"),
        "{refused}"
    );
    dave.consent06("mimi://a.example/u/alice", None, true)
        .await
        .unwrap();
    assert_eq!(
        alice
            .add06(&room, "mimi://a.example/u/dave", 2)
            .await
            .unwrap(),
        2
    );
    dave.read06(&room).await.unwrap();
    assert_eq!(dave.mls().epoch06(&room.parse().unwrap()).unwrap(), 2);
    assert!(bob.read06(&room).await.unwrap().is_empty());
    assert_eq!(bob.mls().epoch06(&room.parse().unwrap()).unwrap(), 2);

    // The command line: Bob reads and answers; Carol creates a -06 room.
    drop(bob);
    drop(carol);
    alice.send06(&room, "are you there").await.unwrap();
    let cli = |dir: &str, args: &[&str]| {
        let mut argv = vec!["--dir".to_owned(), dir.to_owned()];
        argv.extend(args.iter().map(|a| (*a).to_owned()));
        mimi_client::cli::parse(&argv).unwrap()
    };
    let bob_dir = dir.path().join("bob-laptop");
    let bob_dir = bob_dir.to_str().unwrap();
    let out = run(cli(bob_dir, &["read06", &room])).await.unwrap();
    assert!(
        out.contains("@alice:a.example#phone: are you there"),
        "{out}"
    );
    assert!(out.contains("1 new message(s)"), "{out}");
    run(cli(bob_dir, &["send06", &room, "yes"])).await.unwrap();
    let read = alice.read06(&room).await.unwrap();
    assert_eq!(
        read.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
        ["yes"]
    );
    let carol_dir = dir.path().join("carol-desk");
    let out = run(cli(
        carol_dir.to_str().unwrap(),
        &[
            "create-room",
            "--protocol",
            "06",
            "--id",
            "garden",
            "--name",
            "Garden",
        ],
    ))
    .await
    .unwrap();
    assert_eq!(out.trim(), "created mimi://c.example/r/garden");
    world.stop().await;
}

/// Rule V06-FRANK-7's failing path end to end: Bob's message reaches Alice with the hub's
/// frank, but its integrity signature was altered on the way (one bit flipped in the bytes
/// a.example produced, by its client API). Alice's client keeps the message, drops the frank
/// (`frank` is `None`: it cannot be reported) and says why in `frank_refused`. The same
/// room's untouched message before it verifies.
#[tokio::test]
async fn a_06_message_whose_frank_does_not_verify_is_kept_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let tamper = Arc::new(AtomicBool::new(false));
    let world = start_with(
        dir.path(),
        &["a.example", "b.example"],
        Some(FirstApi::TamperFranks(tamper.clone())),
    )
    .await;
    let mut alice = world
        .client(dir.path(), "a.example", "alice", "phone")
        .await;
    let mut bob = world.client(dir.path(), "b.example", "bob", "laptop").await;
    let room = alice.create_room06("club", "Club").await.unwrap();
    let room = room.as_str().to_owned();
    bob.consent06("mimi://a.example/u/alice", Some(&room), true)
        .await
        .unwrap();
    assert_eq!(
        alice
            .add06(&room, "mimi://b.example/u/bob", 2)
            .await
            .unwrap(),
        1
    );
    assert!(bob.read06(&room).await.unwrap().is_empty());

    // Untouched: the frank verifies.
    bob.send06(&room, "as sent").await.unwrap();
    let read = alice.read06(&room).await.unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].frank_refused, None);
    assert!(read[0].frank.is_some(), "the hub franked the message");

    // Altered: the message is kept, its frank is not.
    tamper.store(true, Ordering::SeqCst);
    let accepted = bob.send06(&room, "franked, then tampered").await.unwrap();
    let read = alice.read06(&room).await.unwrap();
    let [m] = read.as_slice() else {
        panic!("one message expected: {read:?}");
    };
    assert_eq!(m.text, "franked, then tampered");
    assert_eq!(m.sender.as_str(), "@bob:b.example#laptop");
    assert_eq!(m.timestamp, accepted);
    assert_eq!(m.frank, None);
    assert_eq!(
        m.frank_refused.as_deref(),
        Some("the franking_integrity_signature does not verify")
    );
    // Without the frank the message cannot be reported.
    let refused = alice
        .report_abuse06(&room, &read, "spam")
        .await
        .unwrap_err();
    assert!(matches!(refused, ClientError::Usage(_)), "{refused:?}");
    world.stop().await;
}
