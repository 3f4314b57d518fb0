//! Franking with real keys: a frank made by the hub's functions verifies for the receiver and
//! for the hub's report check, and changing any one field of the message, the frank or the
//! context is refused with the error naming what broke.

use super::*;
use mimi_codec::v06::IdentifierUri;
use openmls::prelude::tls_codec::Serialize as _;
use openmls::prelude::{
    BasicCredential, CredentialWithKey, MlsGroup, MlsGroupCreateConfig, OpenMlsProvider as _,
    SignatureScheme,
};
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;

const SUITE: CipherSuite = 0x0001; // MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519
const HUB_KEY: [u8; HUB_KEY_LEN] = [0x42; HUB_KEY_LEN];
const SENDER: &str = "mimi://b.example/u/bob";
const ROOM: &str = "mimi://a.example/r/clubhouse";
const CONTENT: &[u8] = b"a MIMI content message, opaque here";
const SALT: [u8; FRANKING_SALT_LEN] = [7; FRANKING_SALT_LEN];
const T: u64 = 1_767_225_600_000;

fn uri(s: &str) -> IdentifierUri {
    s.parse().unwrap()
}

fn hub() -> ServerName {
    "a.example".parse().unwrap()
}

fn context() -> ServerFrankingContext {
    ServerFrankingContext {
        sender_uri: uri(SENDER),
        room_uri: uri(ROOM),
        accepted_timestamp: T,
    }
}

fn signer() -> SignatureKeyPair {
    SignatureKeyPair::new(SignatureScheme::ED25519).unwrap()
}

/// A frank for CONTENT/SALT from SENDER in ROOM at T.
fn franked(key: &SignatureKeyPair) -> (FrankingTag, Frank) {
    let tag = franking_tag(&SALT, CONTENT).unwrap();
    let frank = make_frank(&HUB_KEY, key, SUITE, &tag, &context()).unwrap();
    (tag, frank)
}

fn message<'a>(frank: &'a Frank) -> FrankedMessage<'a> {
    FrankedMessage {
        application_data: CONTENT,
        salt: &SALT,
        asserted_sender: SENDER,
        asserted_room: ROOM,
        accepted_timestamp: T,
        frank,
    }
}

#[test]
fn hmac_is_rfc_4231_hmac_sha256() {
    // RFC 4231 test case 1.
    let mac = hmac(&[0x0b; 20], &[b"Hi ", b"There"]).unwrap();
    assert_eq!(
        hex(&mac.finalize().into_bytes()),
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
    );
    // RFC 4231 test case 2 ("Jefe").
    let mac = hmac(b"Jefe", &[b"what do ya want for nothing?"]).unwrap();
    assert_eq!(
        hex(&mac.finalize().into_bytes()),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn the_server_frank_is_hmac_of_the_tag_and_the_encoded_context() {
    let tag = franking_tag(&SALT, CONTENT).unwrap();
    let mut input = tag.to_vec();
    input.extend(context().encode().unwrap());
    let expected: FrankingTag = hmac(&HUB_KEY, &[&input])
        .unwrap()
        .finalize()
        .into_bytes()
        .into();
    assert_eq!(server_frank(&HUB_KEY, &tag, &context()).unwrap(), expected);
    assert_ne!(tag, expected);
}

#[test]
fn a_frank_verifies_for_the_receiver_and_for_the_hub() {
    let key = signer();
    let (tag, frank) = franked(&key);
    assert_eq!(frank.franking_signature_ciphersuite, SUITE);
    assert_eq!(frank.franking_integrity_signature.as_slice().len(), 64);
    let agent = franking_agent(&hub(), key.public()).unwrap();
    let ctx = verify_received(&message(&frank), Some(&tag), &agent, SUITE, &uri(ROOM)).unwrap();
    assert_eq!(ctx, context());
    // A reporting provider has the content, not the AAD.
    verify_received(&message(&frank), None, &agent, SUITE, &uri(ROOM)).unwrap();
    assert_eq!(
        verify_reported(&message(&frank), &HUB_KEY, key.public()).unwrap(),
        context()
    );
}

#[test]
fn each_field_changed_is_refused() {
    let key = signer();
    let (tag, frank) = franked(&key);
    let agent = franking_agent(&hub(), key.public()).unwrap();
    let received =
        |m: &FrankedMessage<'_>| verify_received(m, Some(&tag), &agent, SUITE, &uri(ROOM));
    let reported = |m: &FrankedMessage<'_>| verify_reported(m, &HUB_KEY, key.public());

    // The server frank.
    let mut f = frank.clone();
    f.server_frank[0] ^= 1;
    assert_eq!(received(&message(&f)), Err(FrankingError::BadSignature));
    assert_eq!(
        reported(&message(&f)),
        Err(FrankingError::ServerFrankMismatch)
    );
    // The cipher suite (another Ed25519 suite: the signature covers it).
    let mut f = frank.clone();
    f.franking_signature_ciphersuite = 0x0003;
    assert_eq!(
        received(&message(&f)),
        Err(FrankingError::CiphersuiteMismatch { frank: 3, group: 1 })
    );
    assert_eq!(reported(&message(&f)), Err(FrankingError::BadSignature));
    // The signature.
    let mut f = frank.clone();
    let mut sig = f.franking_integrity_signature.as_slice().to_vec();
    sig[10] ^= 0x80;
    f.franking_integrity_signature = Opaque::new(sig).unwrap();
    assert_eq!(received(&message(&f)), Err(FrankingError::BadSignature));
    assert_eq!(reported(&message(&f)), Err(FrankingError::BadSignature));

    // The context: sender, room, timestamp.
    let m = FrankedMessage {
        asserted_sender: "mimi://b.example/u/mallory",
        ..message(&frank)
    };
    assert_eq!(received(&m), Err(FrankingError::BadSignature));
    assert_eq!(reported(&m), Err(FrankingError::ServerFrankMismatch));
    let other_room = "mimi://a.example/r/other";
    let m = FrankedMessage {
        asserted_room: other_room,
        ..message(&frank)
    };
    assert!(matches!(
        received(&m),
        Err(FrankingError::ContextMismatch {
            field: "room_uri",
            ..
        })
    ));
    assert_eq!(
        verify_received(&m, Some(&tag), &agent, SUITE, &uri(other_room)),
        Err(FrankingError::BadSignature)
    );
    assert_eq!(reported(&m), Err(FrankingError::ServerFrankMismatch));
    let m = FrankedMessage {
        accepted_timestamp: T + 1,
        ..message(&frank)
    };
    assert_eq!(received(&m), Err(FrankingError::BadSignature));
    assert_eq!(reported(&m), Err(FrankingError::ServerFrankMismatch));

    // The content and the salt.
    let m = FrankedMessage {
        application_data: b"something else",
        ..message(&frank)
    };
    assert_eq!(received(&m), Err(FrankingError::FrankingTagMismatch));
    assert_eq!(reported(&m), Err(FrankingError::ServerFrankMismatch));
    let salt = [8; FRANKING_SALT_LEN];
    let m = FrankedMessage {
        salt: &salt,
        ..message(&frank)
    };
    assert_eq!(received(&m), Err(FrankingError::FrankingTagMismatch));
    assert_eq!(reported(&m), Err(FrankingError::ServerFrankMismatch));
    let m = FrankedMessage {
        salt: &SALT[..15],
        ..message(&frank)
    };
    assert_eq!(reported(&m), Err(FrankingError::SaltLength(15)));

    // The keys: another hub key, another signature key.
    assert_eq!(
        verify_reported(&message(&frank), &[0x43; HUB_KEY_LEN], key.public()),
        Err(FrankingError::ServerFrankMismatch)
    );
    let other = signer();
    assert_eq!(
        verify_reported(&message(&frank), &HUB_KEY, other.public()),
        Err(FrankingError::BadSignature)
    );
    let other_agent = franking_agent(&hub(), other.public()).unwrap();
    assert_eq!(
        verify_received(
            &message(&frank),
            Some(&tag),
            &other_agent,
            SUITE,
            &uri(ROOM)
        ),
        Err(FrankingError::BadSignature)
    );
}

#[test]
fn the_agent_must_name_the_rooms_hub() {
    let key = signer();
    let (tag, frank) = franked(&key);
    let agent = franking_agent(&hub(), key.public()).unwrap();
    assert_eq!(
        std::str::from_utf8(agent.credential.content.as_slice()).unwrap(),
        "mimi://a.example"
    );
    assert_eq!(agent_key_for(&agent, &hub()).unwrap(), key.public());
    let elsewhere = franking_agent(&"b.example".parse().unwrap(), key.public()).unwrap();
    assert!(matches!(
        verify_received(&message(&frank), Some(&tag), &elsewhere, SUITE, &uri(ROOM)),
        Err(FrankingError::Agent(_))
    ));
    let mut x509 = agent.clone();
    x509.credential.credential_type = 2;
    assert!(matches!(
        agent_key_for(&x509, &hub()),
        Err(FrankingError::Agent(_))
    ));
    assert!(matches!(
        hub_of_room(&uri(SENDER)),
        Err(FrankingError::Malformed(_))
    ));
}

#[test]
fn the_suite_must_be_known_and_match_the_key() {
    let key = signer();
    let tag = franking_tag(&SALT, CONTENT).unwrap();
    // 0x0002 is P-256 ECDSA: not the Ed25519 key's scheme.
    assert_eq!(
        make_frank(&HUB_KEY, &key, 0x0002, &tag, &context()),
        Err(FrankingError::SchemeMismatch(2))
    );
    assert_eq!(
        make_frank(&HUB_KEY, &key, 0x7777, &tag, &context()),
        Err(FrankingError::UnknownCiphersuite(0x7777))
    );
    assert_eq!(
        franking_tag(&[0; 17], CONTENT),
        Err(FrankingError::SaltLength(17))
    );
}

#[test]
fn the_salt_is_fresh() {
    let a = fresh_salt().unwrap();
    assert_ne!(a, fresh_salt().unwrap());
}

#[test]
fn the_frank_aad_is_a_safe_aad_item() {
    let tag = [0xab; FRANK_LEN];
    let aad = franked_aad(&tag).unwrap();
    // SafeAAD: aad_items<V> (2 + 1 + 32 = 35 octets), one item: component 0x0020,
    // aad_item_data<V> (32 octets), the FrankAAD (franking_tag[32]).
    let mut expected = vec![35, 0x00, 0x20, 32];
    expected.extend([0xab; 32]);
    assert_eq!(aad, expected);
    assert_eq!(franking_tag_of_aad(&aad), Ok(Some(tag)));
    assert_eq!(franking_tag_of_aad(&[]), Ok(None));
    // Another component only: no tag.
    assert_eq!(franking_tag_of_aad(&[4, 0x00, 0x21, 1, 9]), Ok(None));
    // A frank_aad of 31 octets, a cut SafeAAD.
    let mut short = vec![34, 0x00, 0x20, 31];
    short.extend([0xab; 31]);
    assert!(matches!(
        franking_tag_of_aad(&short),
        Err(FrankingError::Malformed(_))
    ));
    assert!(matches!(
        franking_tag_of_aad(&aad[..20]),
        Err(FrankingError::Malformed(_))
    ));
}

#[test]
fn the_tag_is_read_from_a_real_private_message() {
    let provider = OpenMlsRustCrypto::default();
    let key = signer();
    key.store(provider.storage()).unwrap();
    let credential = CredentialWithKey {
        credential: BasicCredential::new(b"@bob:b.example#phone".to_vec()).into(),
        signature_key: key.public().into(),
    };
    let config = MlsGroupCreateConfig::builder()
        .ciphersuite(Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
        .build();
    let mut group = MlsGroup::new(&provider, &key, &config, credential).unwrap();
    let tag = franking_tag(&SALT, CONTENT).unwrap();
    group.set_aad(franked_aad(&tag).unwrap());
    let message = group.create_message(&provider, &key, CONTENT).unwrap();
    let bytes = message.tls_serialize_detached().unwrap();
    assert_eq!(franking_tag_of_message(&bytes), Ok(Some(tag)));
    // Without AAD: no tag.
    let plain = group.create_message(&provider, &key, CONTENT).unwrap();
    assert_eq!(
        franking_tag_of_message(&plain.tls_serialize_detached().unwrap()),
        Ok(None)
    );
    assert!(matches!(
        franking_tag_of_message(&bytes[..bytes.len() - 1]),
        Err(FrankingError::Malformed(_))
    ));
}
