//! End to end against a real provider (`mimi-hub`) in this process: real TLS with a test
//! CA, the client API on 127.0.0.1 port 0, redb-free in-memory hub storage, and clients
//! with their own state directories. One provider, so no federation is involved.

use std::sync::Arc;

use mimi_client::cli::{Command, run};
use mimi_client::{Client, ClientError, Registration};
use mimi_hub::engine::{Provider, ProviderParts};
use mimi_hub::identity::HubIdentity;
use mimi_hub::storage::MemoryStorage;
use mimi_transport::pki::CertificateAuthority;
use mimi_transport::tls::{client_config, server_config};
use mimi_transport::{ClientConfig, MimiClient, StaticResolver};

struct Server {
    addr: std::net::SocketAddr,
    ca: std::path::PathBuf,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

async fn start(dir: &std::path::Path) -> Server {
    let server_name: mimi_codec::ServerName = "a.example".parse().unwrap();
    let ca = CertificateAuthority::generate("test CA").unwrap();
    let (ca_pem, _) = ca.write_pem_files(dir, "ca").unwrap();
    let issued = ca.issue(&server_name).unwrap();
    let roots = ca.roots().unwrap();
    let provider = Provider::new(ProviderParts {
        server_name: server_name.clone(),
        storage: Arc::new(MemoryStorage::new()),
        client: MimiClient::new(
            ClientConfig::new(client_config(Some(issued.identity().unwrap()), &roots).unwrap()),
            Arc::new(StaticResolver::new()),
        ),
        identity: HubIdentity::load_or_create(&dir.join("hub.key"), &server_name).unwrap(),
        open_registration: true,
    });
    let tls = server_config(issued.identity().unwrap(), &roots).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, mut rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(mimi_hub::api::serve(listener, tls, provider, async move {
        let _ = rx.wait_for(|s| *s).await;
    }));
    Server {
        addr,
        ca: ca_pem,
        stop,
        task,
    }
}

fn registration(server: &Server, user: &str, device: &str) -> Registration {
    Registration {
        api: "https://a.example".into(),
        connect: Some(server.addr.to_string()),
        ca: server.ca.clone(),
        localpart: user.into(),
        device: device.into(),
        handle: Some(user.into()),
        ..Registration::default()
    }
}

#[tokio::test]
async fn alice_adds_bob_they_talk_and_bob_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let (alice_dir, bob_dir) = (dir.path().join("alice"), dir.path().join("bob"));
    let mut alice = Client::register(&alice_dir, registration(&server, "alice", "phone"))
        .await
        .unwrap();
    let mut bob = Client::register(&bob_dir, registration(&server, "bob", "laptop"))
        .await
        .unwrap();
    assert_eq!(bob.user_id().as_str(), "@bob:a.example");
    assert_eq!(bob.publish_key_packages(2, true).await.unwrap(), 3);
    let found = alice.discover("a.example", "handle", "bob").await.unwrap();
    assert_eq!(
        (found.code.as_str(), found.user_id.as_deref()),
        ("success", Some("@bob:a.example"))
    );

    let room = alice
        .create_room(mimi_codec::JoinRule::MembersOnly)
        .await
        .unwrap();
    assert_eq!(alice.add(&room, bob.user_id()).await.unwrap(), 1);
    bob.sync().await.unwrap();
    assert_eq!(bob.room_view(&room).unwrap().epoch, Some(1));

    let hello = alice
        .send(
            &room,
            &mimi_client::messages::Compose::Text {
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
    let _ = server.stop.send(true);
    server.task.await.unwrap();
}
