//! The -06 codec (`mimi_codec::v06`) keeps MLS objects as bytes and finds where a bare one
//! ends with its own scanner over RFC 9420's framing. This test checks the scanner against
//! what openmls really writes: key packages, commits with and without an UpdatePath,
//! Update and Remove proposals, Welcomes, GroupInfos and application messages, as
//! PublicMessages and as PrivateMessages, and that -06 bodies carrying them decode back to
//! bytes openmls reads again.

#![allow(clippy::unwrap_used)]

use mimi_codec::Wire;
use mimi_codec::v06::{self, ContentType, MlsMessageKind};
use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;

const CS: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

struct Member {
    provider: OpenMlsRustCrypto,
    signer: SignatureKeyPair,
    credential: CredentialWithKey,
}

fn member(name: &str) -> Member {
    let provider = OpenMlsRustCrypto::default();
    let signer = SignatureKeyPair::new(CS.signature_algorithm()).unwrap();
    signer.store(provider.storage()).unwrap();
    let credential = CredentialWithKey {
        credential: BasicCredential::new(name.as_bytes().to_vec()).into(),
        signature_key: signer.public().into(),
    };
    Member {
        provider,
        signer,
        credential,
    }
}

fn key_package(m: &Member) -> KeyPackage {
    KeyPackage::builder()
        .build(CS, &m.provider, &m.signer, m.credential.clone())
        .unwrap()
        .key_package()
        .clone()
}

fn out_bytes(m: &MlsMessageOut) -> Vec<u8> {
    m.tls_serialize_detached().unwrap()
}

/// Scan `bytes` as an MLSMessage: exactly all of it, of the expected kind.
fn scan(bytes: &[u8], kind: MlsMessageKind) -> v06::MlsMessage {
    let m = v06::MlsMessage::from_bytes(bytes).unwrap();
    assert_eq!(m.kind(), kind);
    assert_eq!(m.as_bytes(), bytes);
    m
}

/// The body of an MLSMessage (after `version` and `wire_format`).
fn body(wrapped: &[u8]) -> &[u8] {
    &wrapped[4..]
}

/// The content of a `<V>` vector (without its length prefix).
fn vector_content(bytes: &[u8]) -> &[u8] {
    let prefix = match bytes[0] >> 6 {
        0 => 1,
        1 => 2,
        _ => 4,
    };
    &bytes[prefix..]
}

fn run(policy: WireFormatPolicy, framed: fn(ContentType) -> MlsMessageKind) {
    let alice = member("mimi://a.example/d/alice1");
    let bob = member("mimi://b.example/d/bob1");
    let bob_kp = key_package(&bob);

    // A key package, bare and as an MLSMessage.
    let kp_bare = bob_kp.tls_serialize_detached().unwrap();
    assert_eq!(
        v06::KeyPackage::from_bytes(&kp_bare).unwrap().as_bytes(),
        kp_bare
    );
    scan(
        &out_bytes(&MlsMessageOut::from(bob_kp.clone())),
        MlsMessageKind::KeyPackage,
    );

    let config = MlsGroupCreateConfig::builder()
        .ciphersuite(CS)
        .wire_format_policy(policy)
        .build();
    let mut group = MlsGroup::new(
        &alice.provider,
        &alice.signer,
        &config,
        alice.credential.clone(),
    )
    .unwrap();

    // Add Bob: a commit (with a path), a Welcome.
    let (commit, welcome, _) = group
        .add_members(
            &alice.provider,
            &alice.signer,
            std::slice::from_ref(&bob_kp),
        )
        .unwrap();
    let commit = scan(&out_bytes(&commit), framed(ContentType::Commit));
    let welcome_wrapped = out_bytes(&welcome);
    let welcome_msg = scan(&welcome_wrapped, MlsMessageKind::Welcome);
    let welcome_bare = v06::Welcome::from_bytes(body(&welcome_wrapped)).unwrap();
    group.merge_pending_commit(&alice.provider).unwrap();

    // GroupInfo and ratchet tree of the new epoch.
    let gi_wrapped = out_bytes(
        &group
            .export_group_info(alice.provider.crypto(), &alice.signer, false)
            .unwrap(),
    );
    scan(&gi_wrapped, MlsMessageKind::GroupInfo);
    let gi_bare = v06::GroupInfo::from_bytes(body(&gi_wrapped)).unwrap();
    let tree = group
        .export_ratchet_tree()
        .tls_serialize_detached()
        .unwrap();
    let tree = v06::RatchetTreeOption::Full(
        mimi_codec::Opaque::new(vector_content(&tree).to_vec()).unwrap(),
    );

    // Proposals: Update (a LeafNode of source update) and Remove.
    let (update, _) = group
        .propose_self_update(
            &alice.provider,
            &alice.signer,
            LeafNodeParameters::default(),
        )
        .unwrap();
    let update = scan(&out_bytes(&update), framed(ContentType::Proposal));
    let (remove, _) = group
        .propose_remove_member(&alice.provider, &alice.signer, LeafNodeIndex::new(1))
        .unwrap();
    let remove = scan(&out_bytes(&remove), framed(ContentType::Proposal));
    // A commit over them, with the committer's path.
    let bundle = group
        .self_update(
            &alice.provider,
            &alice.signer,
            LeafNodeParameters::default(),
        )
        .unwrap();
    let (path_commit, _, _) = bundle.into_messages();
    let path_commit = scan(&out_bytes(&path_commit), framed(ContentType::Commit));
    group.merge_pending_commit(&alice.provider).unwrap();
    // An application message (always a PrivateMessage).
    let app = group
        .create_message(&alice.provider, &alice.signer, b"hello")
        .unwrap();
    let app = scan(
        &out_bytes(&app),
        MlsMessageKind::PrivateMessage(ContentType::Application),
    );

    // -06 bodies carrying them.
    let mut fanout = vec![
        v06::FanoutMessage {
            timestamp: 1,
            message: app.clone(),
            extra: v06::FanoutExtra::Application { frank: None },
        },
        v06::FanoutMessage {
            timestamp: 2,
            message: welcome_msg,
            extra: v06::FanoutExtra::Welcome {
                ratchet_tree_option: tree.clone(),
            },
        },
    ];
    let submit = v06::SubmitMessageRequest {
        protocol: v06::Protocol::Mls10,
        app_message: app,
        sending_uri: "mimi://a.example/u/alice".parse().unwrap(),
    };
    assert_eq!(
        v06::SubmitMessageRequest::decode(&submit.encode().unwrap()).unwrap(),
        submit
    );
    if commit.kind() == MlsMessageKind::PublicMessage(ContentType::Commit) {
        for (c, w) in [
            (commit.clone(), Some(welcome_bare.clone())),
            (path_commit, None),
        ] {
            let request = v06::UpdateRequest::Commit {
                commit: c,
                welcome: w,
                group_info_option: v06::GroupInfoOption::Full(gi_bare.clone()),
                ratchet_tree_option: tree.clone(),
            };
            let decoded = v06::UpdateRequest::decode(&request.encode().unwrap()).unwrap();
            assert_eq!(decoded, request);
        }
        let request = v06::UpdateRequest::Proposal {
            proposal: update.clone(),
            more_proposals: mimi_codec::BoundedVec::new(vec![remove.clone()]).unwrap(),
        };
        assert_eq!(
            v06::UpdateRequest::decode(&request.encode().unwrap()).unwrap(),
            request
        );
        fanout.push(v06::FanoutMessage {
            timestamp: 3,
            message: commit,
            extra: v06::FanoutExtra::Commit {
                external_proposals: mimi_codec::BoundedVec::default(),
            },
        });
        fanout.push(v06::FanoutMessage {
            timestamp: 4,
            message: update,
            extra: v06::FanoutExtra::Proposal {
                more_proposals: mimi_codec::BoundedVec::new(vec![remove]).unwrap(),
            },
        });
    }
    let notify = v06::NotifyBody { messages: fanout };
    assert_eq!(
        v06::NotifyBody::decode(&notify.encode().unwrap()).unwrap(),
        notify
    );

    // What the -06 bodies hand back, openmls reads again.
    let response = v06::KeyMaterialResponse {
        protocol: v06::Protocol::Mls10,
        user_status: v06::KeyMaterialUserCode::Success,
        user_uri: "mimi://b.example/u/bob".parse().unwrap(),
        clients: mimi_codec::BoundedVec::new(vec![v06::ClientKeyMaterial {
            client_uri: "mimi://b.example/d/bob1".parse().unwrap(),
            material: v06::ClientMaterial::Success(v06::KeyPackage::from_bytes(&kp_bare).unwrap()),
        }])
        .unwrap(),
    };
    let decoded = v06::KeyMaterialResponse::decode(&response.encode().unwrap()).unwrap();
    let v06::ClientMaterial::Success(kp) = &decoded.clients.as_slice()[0].material else {
        panic!("not a success");
    };
    let kp_in = KeyPackageIn::tls_deserialize_exact(kp.as_bytes()).unwrap();
    kp_in
        .validate(bob.provider.crypto(), ProtocolVersion::Mls10)
        .unwrap();
    Welcome::tls_deserialize_exact(welcome_bare.as_bytes()).unwrap();
    openmls::messages::group_info::VerifiableGroupInfo::tls_deserialize_exact(gi_bare.as_bytes())
        .unwrap();
}

#[test]
fn the_scanner_delimits_public_messages_openmls_writes() {
    run(
        PURE_PLAINTEXT_WIRE_FORMAT_POLICY,
        MlsMessageKind::PublicMessage,
    );
}

#[test]
fn the_scanner_delimits_private_messages_openmls_writes() {
    run(
        PURE_CIPHERTEXT_WIRE_FORMAT_POLICY,
        MlsMessageKind::PrivateMessage,
    );
}
