//! Integration tests of mimi-content against the published examples of
//! draft-ietf-mimi-content-09 (see tests/vectors/README.md).

// Test helpers outside `#[test]` functions unwrap too: a panic is a test failure here.
#![allow(clippy::unwrap_used)]

use mimi_content::*;
use proptest::prelude::*;

const ALICE: &str = "mimi://example.com/u/alice-smith";
const BOB: &str = "mimi://example.com/u/bob-jones";
const CATHY: &str = "mimi://example.com/u/cathy-washington";
const ROOM: &str = "mimi://example.com/r/engineering_team";

struct Vector {
    name: &'static str,
    edn: &'static str,
    hex: &'static str,
}

macro_rules! vector {
    ($name:literal) => {
        Vector {
            name: $name,
            edn: include_str!(concat!("vectors/", $name, ".edn")),
            hex: include_str!(concat!("vectors/", $name, ".hex")),
        }
    };
}

/// Every content example published with a message ID.
fn content_vectors() -> Vec<Vector> {
    vec![
        vector!("original"),
        vector!("reply"),
        vector!("reaction"),
        vector!("mention"),
        vector!("edit"),
        vector!("delete"),
        vector!("unlike"),
        vector!("expiring"),
        vector!("attachment"),
        vector!("conferencing"),
        vector!("multipart-1"),
        vector!("multipart-2"),
        vector!("multipart-3"),
    ]
}

fn bytes_of(v: &Vector) -> Vec<u8> {
    hex::decode(v.hex.trim()).unwrap()
}

/// The message ID from the `# message ID = h'...'` header comment of an EDN file.
fn published_id(edn: &str) -> MessageId {
    let start =
        edn.find("message ID = h'").expect("no message ID comment") + "message ID = h'".len();
    let hex: String = edn[start..]
        .chars()
        .take_while(|c| *c != '\'')
        .filter(|c| c.is_ascii_hexdigit())
        .collect();
    MessageId::try_from(hex::decode(hex).unwrap().as_slice()).unwrap()
}

fn id(hex_str: &str) -> MessageId {
    MessageId::try_from(hex::decode(hex_str).unwrap().as_slice()).unwrap()
}

fn salt(hex_str: &str) -> Salt {
    Salt::try_from(hex::decode(hex_str).unwrap().as_slice()).unwrap()
}

fn decode_vector(name: &str) -> (Vec<u8>, MimiContent) {
    let v = content_vectors()
        .into_iter()
        .find(|v| v.name == name)
        .unwrap();
    let bytes = bytes_of(&v);
    let content = MimiContent::decode(&bytes).unwrap();
    (bytes, content)
}

const ORIGINAL_ID: &str = "017ce54837404c3696e0c747b985cb172716d0ed0a3d249ca63ace7d82a096f4";
const REPLY_ID: &str = "015354973c2b65ca937bf1e035ae53a5ab80e947afa43d46920d4202e5cc0b27";
const REACTION_ID: &str = "0158c4288911e50a8f6be3f47746b6682f10fd91bc8c05557aa589a3157aff68";

// ---------------------------------------------------------------- published examples

#[test]
fn every_example_round_trips_byte_for_byte_with_its_published_id() {
    let vectors = content_vectors();
    assert_eq!(vectors.len(), 13);
    for v in vectors {
        let bytes = bytes_of(&v);
        let content = MimiContent::decode(&bytes).unwrap_or_else(|e| panic!("{}: {e}", v.name));
        assert_eq!(
            content.encode().unwrap(),
            bytes,
            "{}: re-encoding differs",
            v.name
        );
        assert_eq!(
            content.message_id().unwrap(),
            published_id(v.edn),
            "{}: message ID",
            v.name
        );
        let sender = content.extensions.sender_uri.clone().unwrap();
        assert_eq!(
            compute_message_id(&sender, ROOM, &bytes, &content.salt).unwrap(),
            published_id(v.edn),
            "{}",
            v.name
        );
    }
}

#[test]
fn mention_html_example_round_trips() {
    // The repository's mention-html.edn predates the -08 message ID change and still
    // references the old ID of the original message, so only its bytes are checked.
    let v = vector!("mention-html");
    let bytes = bytes_of(&v);
    let content = MimiContent::decode(&bytes).unwrap();
    assert_eq!(content.encode().unwrap(), bytes);
    let read = read(&content);
    assert_eq!(read.text.unwrap().content_type, CONTENT_TYPE_HTML);
    assert_eq!(
        read.mentions,
        vec![Mention {
            display: "@Alice Smith".into(),
            uri: ALICE.into()
        }]
    );
}

#[test]
fn original_fields_and_id() {
    let (_, c) = decode_vector("original");
    assert_eq!(c.salt, salt("5eed9406c2545547ab6f09f20a18b003"));
    assert_eq!(c.replaces, None);
    assert!(c.topic_id.is_empty());
    assert_eq!(c.expires, None);
    assert_eq!(c.in_reply_to, None);
    assert_eq!(c.extensions.sender_uri.as_deref(), Some(ALICE));
    assert_eq!(c.extensions.room_uri.as_deref(), Some(ROOM));
    assert_eq!(
        c.body,
        NestedPart::single(
            Disposition::Render,
            CONTENT_TYPE_MARKDOWN,
            "Hi everyone, we just shipped release 2.0. __Good  work__!"
        )
    );
    assert_eq!(c.message_id().unwrap(), id(ORIGINAL_ID));
    assert_eq!(c.message_id().unwrap().hash_alg(), HASH_ALG_SHA256);
}

#[test]
fn attachment_fields() {
    let (_, c) = decode_vector("attachment");
    assert_eq!(c.body.disposition, Disposition::Attachment);
    assert_eq!(c.body.language, "en");
    let PartBody::External(x) = &c.body.body else {
        panic!("not external")
    };
    assert_eq!(x.content_type, "video/mp4");
    assert_eq!(x.url, "https://example.com/storage/8ksB4bSrrRE.mp4");
    assert_eq!(x.expires, 0);
    assert_eq!(x.size, 708234961);
    assert_eq!(x.enc_alg, 1);
    assert_eq!(hex::encode(&x.key), "21399320958a6f4c745dde670d95e0d8");
    assert_eq!(hex::encode(&x.nonce), "c86cf2c33f21527d1dd76f5b");
    assert!(x.aad.is_empty());
    assert_eq!(x.hash_alg, 1);
    assert_eq!(
        hex::encode(&x.content_hash),
        "9ab17a8cf0890baaae7ee016c7312fcc080ba46498389458ee44f0276e783163"
    );
    assert_eq!(x.description, "2 hours of key signing video");
    assert_eq!(x.filename, "bigfile.mp4");
}

#[test]
fn multipart_3_part_indices() {
    let (_, c) = decode_vector("multipart-3");
    let parts = c.body.parts_depth_first();
    assert_eq!(parts.len(), 11);
    let describe = |i: usize| match &parts[i].body {
        PartBody::Single(s) => format!("{}:{}", s.content_type, parts[i].language),
        PartBody::Multi(m) => format!("{:?}", m.semantics),
        other => format!("{other:?}"),
    };
    let got: Vec<String> = (0..11).map(describe).collect();
    assert_eq!(
        got,
        [
            "ChooseOne",
            "ProcessAll",
            "ChooseOne",
            "text/html;charset=utf-8:en",
            "text/html;charset=utf-8:fr",
            "image/gif:",
            "ProcessAll",
            "ChooseOne",
            "text/html;charset=utf-8:en",
            "text/html;charset=utf-8:fr",
            "image/png:",
        ]
    );
    // The English HTML of the GIF branch references part 5 (the GIF) by content ID.
    let PartBody::Single(html) = &c.body.part(3).unwrap().body else {
        panic!()
    };
    assert!(
        std::str::from_utf8(&html.content)
            .unwrap()
            .contains(&cid_uri(5))
    );
    assert_eq!(parse_cid_uri("cid:10@local.invalid"), Some(10));
    assert_eq!(parse_cid_uri("cid:010@local.invalid"), None);
    assert_eq!(parse_cid_uri("cid:x@local.invalid"), None);
    assert_eq!(c.body.index_of(c.body.part(10).unwrap()), Some(10));
    assert_eq!(c.body.part(11), None);
}

// ---------------------------------------------------------------- builders

fn assert_builds(name: &str, built: MimiContent) {
    let (bytes, decoded) = decode_vector(name);
    assert_eq!(built, decoded, "{name}: structure");
    assert_eq!(
        hex::encode(built.encode().unwrap()),
        hex::encode(&bytes),
        "{name}: bytes"
    );
}

#[test]
fn builders_reproduce_text_examples() {
    let original = ContentBuilder::new(salt("5eed9406c2545547ab6f09f20a18b003"))
        .sender(ALICE)
        .room(ROOM)
        .markdown("Hi everyone, we just shipped release 2.0. __Good  work__!")
        .build()
        .unwrap();
    let original_id = original.message_id().unwrap();
    assert_eq!(original_id, id(ORIGINAL_ID));
    assert_builds("original", original);

    let reply = ContentBuilder::new(salt("11a458c73b8dd2cf404db4b378b8fe4d"))
        .sender(BOB)
        .room(ROOM)
        .reply_to(original_id)
        .markdown("Right on! _Congratulations_ 'all!")
        .build()
        .unwrap();
    assert_eq!(reply.message_id().unwrap(), id(REPLY_ID));
    assert_builds("reply", reply);

    let mention_text = format!(
        "Kudos to {} for making the release happen!",
        markdown_mention("@Alice Smith", ALICE)
    );
    let mention = ContentBuilder::new(salt("04f290e215d0f82d1750bfa8b7dc089d"))
        .sender(CATHY)
        .room(ROOM)
        .reply_to(original_id)
        .markdown(&mention_text)
        .build()
        .unwrap();
    assert_builds("mention", mention);

    let expiring = ContentBuilder::new(salt("33be993eb39f418f9295afc2ae160d2d"))
        .sender(ALICE)
        .room(ROOM)
        .expires(Expiration::Absolute(1644390004))
        .markdown(
            "__*VPN GOING DOWN*__ I'm rebooting the VPN in ten minutes unless anyone objects.",
        )
        .build()
        .unwrap();
    assert_builds("expiring", expiring);
}

#[test]
fn builders_reproduce_edit_delete_reaction_unlike() {
    let original = id(ORIGINAL_ID);
    let reply = id(REPLY_ID);
    let edit = ContentBuilder::new(salt("b8c2e6d8800ecf45df39be6c45f4c042"))
        .sender(BOB)
        .room(ROOM)
        .reply_to(original)
        .edit(
            reply,
            NestedPart::single(
                Disposition::Render,
                CONTENT_TYPE_MARKDOWN,
                "Right on! _Congratulations_ y'all!",
            ),
        )
        .build()
        .unwrap();
    assert_builds("edit", edit);

    let delete = ContentBuilder::new(salt("0a590d73b2c7761c39168be5ebf7f2e6"))
        .sender(BOB)
        .room(ROOM)
        .reply_to(original)
        .delete(reply)
        .build()
        .unwrap();
    assert_builds("delete", delete);

    let reaction = ContentBuilder::new(salt("d37bc0e6a8b4f04e9e6382375f587bf6"))
        .sender(CATHY)
        .room(ROOM)
        .reaction(original, "\u{2764}")
        .build()
        .unwrap();
    assert_eq!(reaction.message_id().unwrap(), id(REACTION_ID));
    assert_builds("reaction", reaction);

    let unlike = ContentBuilder::new(salt("c5ba86dc9fd272e58ca52ec805b79199"))
        .sender(CATHY)
        .room(ROOM)
        .unreact(id(REACTION_ID), Some(original))
        .build()
        .unwrap();
    assert_builds("unlike", unlike);
}

#[test]
fn builders_reproduce_external_examples() {
    let attachment = ContentBuilder::new(salt("18fac6371e4e53f1aeaf8a013155c166"))
        .sender(BOB)
        .room(ROOM)
        .attachment(
            ExternalPart {
                content_type: "video/mp4".into(),
                url: "https://example.com/storage/8ksB4bSrrRE.mp4".into(),
                expires: 0,
                size: 708234961,
                enc_alg: 1,
                key: hex::decode("21399320958a6f4c745dde670d95e0d8").unwrap(),
                nonce: hex::decode("c86cf2c33f21527d1dd76f5b").unwrap(),
                aad: vec![],
                hash_alg: 1,
                content_hash: hex::decode(
                    "9ab17a8cf0890baaae7ee016c7312fcc080ba46498389458ee44f0276e783163",
                )
                .unwrap(),
                description: "2 hours of key signing video".into(),
                filename: "bigfile.mp4".into(),
            },
            "en",
        )
        .build()
        .unwrap();
    assert_builds("attachment", attachment);

    let conferencing = ContentBuilder::new(salt("678ac6cd54de049c3e9665cd212470fa"))
        .sender(ALICE)
        .room(ROOM)
        .topic(*b"Foo 118")
        .body(NestedPart::external(
            Disposition::Session,
            ExternalPart {
                url: "https://example.com/join/12345".into(),
                description: "Join the Foo 118 conference".into(),
                ..ExternalPart::default()
            },
        ))
        .build()
        .unwrap();
    assert_builds("conferencing", conferencing);
}

#[test]
fn builders_reproduce_multipart_examples() {
    let m1 = ContentBuilder::new(salt("261c953e178af653fe3d42641b91d814"))
        .sender(ALICE)
        .room(ROOM)
        .multipart(
            Disposition::Render,
            PartSemantics::ChooseOne,
            vec![
                NestedPart::single(Disposition::Render, CONTENT_TYPE_MARKDOWN, "# Welcome!"),
                NestedPart::single(
                    Disposition::Render,
                    "application/vnd.examplevendor-fancy-im-message",
                    hex::decode("dc861ebaa718fd7c3ca159f71a2001").unwrap(),
                ),
            ],
        )
        .unwrap()
        .build()
        .unwrap();
    assert_builds("multipart-1", m1);

    // Multiple reactions (not in reply to anything in the published example).
    let mut m2 = ContentBuilder::new(salt("8528dc2d92e4f1944d62042907ab94d0"))
        .sender(ALICE)
        .room(ROOM)
        .reactions(id(ORIGINAL_ID), &["\u{2764}", "\u{1F973}", "\u{1F91E}"])
        .unwrap()
        .build()
        .unwrap();
    m2.in_reply_to = None;
    assert_builds("multipart-2", m2);

    let html = |lang: &str, title: &str, alt: &str, cid: usize| {
        NestedPart::single(
            Disposition::Render,
            CONTENT_TYPE_HTML,
            format!(
                "<html><body><h1>{title}</h1>\n<img src=\"{}\" alt=\"{alt}\"/>\n</body></html>",
                cid_uri(cid)
            ),
        )
        .with_language(lang)
    };
    let branch = |cid: usize, image: NestedPart| {
        NestedPart::multi(
            Disposition::Render,
            PartSemantics::ProcessAll,
            vec![
                NestedPart::multi(
                    Disposition::Render,
                    PartSemantics::ChooseOne,
                    vec![
                        html("en", "Welcome!", "Welcome image", cid),
                        html("fr", "Bienvenue!", "Image bienvenue", cid),
                    ],
                )
                .unwrap(),
                image,
            ],
        )
        .unwrap()
    };
    let gif = NestedPart::single(
        Disposition::Inline,
        "image/gif",
        hex::decode("dc861ebaa718fd7c3ca159f71a2001a7").unwrap(),
    );
    let png = NestedPart::single(
        Disposition::Inline,
        "image/png",
        hex::decode("fa444237451a05a72bb0f67037cc1669").unwrap(),
    );
    let m3 = ContentBuilder::new(salt("b8362793168d18c049b882d4642a2274"))
        .sender(ALICE)
        .room(ROOM)
        .multipart(
            Disposition::Render,
            PartSemantics::ChooseOne,
            vec![branch(5, gif), branch(10, png)],
        )
        .unwrap()
        .build()
        .unwrap();
    assert_builds("multipart-3", m3);
}

#[test]
fn builder_errors() {
    assert_eq!(
        ContentBuilder::new(Salt([0; 16])).build(),
        Err(Error::MissingBody)
    );
    assert_eq!(
        NestedPart::multi(
            Disposition::Render,
            PartSemantics::ChooseOne,
            vec![NestedPart::null(Disposition::Render)]
        ),
        Err(Error::TooFewParts(1))
    );
    let no_room = ContentBuilder::new(Salt([0; 16]))
        .sender(ALICE)
        .plain_text("x")
        .build()
        .unwrap();
    assert_eq!(no_room.message_id(), Err(Error::MissingRoomUri));
    let no_sender = ContentBuilder::new(Salt([0; 16]))
        .room(ROOM)
        .plain_text("x")
        .build()
        .unwrap();
    assert_eq!(no_sender.message_id(), Err(Error::MissingSenderUri));
    // With URIs derived from MLS instead, the ID is computable.
    assert_eq!(
        no_sender.message_id_with(ALICE, ROOM).unwrap(),
        compute_message_id(ALICE, ROOM, &no_sender.encode().unwrap(), &no_sender.salt).unwrap()
    );
    let long = "x".repeat(MAX_URI_LEN + 1);
    assert_eq!(
        compute_message_id(&long, ROOM, b"", &Salt([0; 16])),
        Err(Error::LimitExceeded {
            field: "uri",
            limit: 65535,
            found: 65536
        })
    );
    assert_eq!(
        markdown_mention("[x]", "mimi://a.example/u/b c"),
        "[\\[x\\]](mimi://a.example/u/b%20c)"
    );
}

// ---------------------------------------------------------------- reader

#[test]
fn reader_classifies_every_example() {
    let kind = |name: &str| read(&decode_vector(name).1).kind;
    assert_eq!(kind("original"), MessageKind::Message);
    assert_eq!(kind("reply"), MessageKind::Message);
    assert_eq!(
        kind("reaction"),
        MessageKind::Reaction {
            target: Some(id(ORIGINAL_ID))
        }
    );
    assert_eq!(
        kind("edit"),
        MessageKind::Edit {
            original: id(REPLY_ID)
        }
    );
    assert_eq!(
        kind("delete"),
        MessageKind::Delete {
            original: id(REPLY_ID)
        }
    );
    assert_eq!(
        kind("unlike"),
        MessageKind::Unreact {
            reaction: id(REACTION_ID)
        }
    );
    assert_eq!(kind("multipart-2"), MessageKind::Reaction { target: None });

    let (_, reply) = decode_vector("reply");
    let r = read(&reply);
    assert_eq!(r.in_reply_to, Some(id(ORIGINAL_ID)));
    assert_eq!(r.sender_uri, Some(BOB));
    assert_eq!(r.room_uri, Some(ROOM));
    assert_eq!(
        r.text,
        Some(TextBody {
            content_type: CONTENT_TYPE_MARKDOWN,
            text: "Right on! _Congratulations_ 'all!",
            language: "",
            part_index: 0
        })
    );

    let (_, m) = decode_vector("mention");
    assert_eq!(
        read(&m).mentions,
        vec![Mention {
            display: "@Alice Smith".into(),
            uri: ALICE.into()
        }]
    );

    let (_, e) = decode_vector("expiring");
    assert_eq!(read(&e).expires, Some(Expiration::Absolute(1644390004)));

    let (_, a) = decode_vector("attachment");
    let ra = read(&a);
    assert_eq!(ra.external.len(), 1);
    assert_eq!(ra.external[0].0, 0);
    assert_eq!(ra.external[0].1, Disposition::Attachment);
    assert_eq!(ra.external[0].2.filename, "bigfile.mp4");

    let (_, conf) = decode_vector("conferencing");
    let rc = read(&conf);
    assert_eq!(rc.topic_id, b"Foo 118");
    assert_eq!(rc.external[0].1, Disposition::Session);

    let (_, m2) = decode_vector("multipart-2");
    assert_eq!(
        read(&m2).reactions,
        vec!["\u{2764}", "\u{1F973}", "\u{1F91E}"]
    );

    // chooseOne: the reader takes the first alternative it understands.
    let (_, m1) = decode_vector("multipart-1");
    assert_eq!(read(&m1).text.unwrap().text, "# Welcome!");
    let (_, m3) = decode_vector("multipart-3");
    let t = read(&m3).text.unwrap();
    assert_eq!((t.language, t.part_index), ("en", 3));
}

// ---------------------------------------------------------------- reports and implied values

#[test]
fn report_example_round_trips() {
    let v = vector!("report");
    let bytes = bytes_of(&v);
    let report = MessageStatusReport::decode(&bytes).unwrap();
    assert_eq!(report.encode().unwrap(), bytes);
    let mention = id("018d825adf9f6be00dcafc5704c4102f5022e74219d0b603e4ba7622654042af");
    let expiring = id("01e59db8173939facc2c8a4a0f0ae8d0c7a11a81239626630c9464a8d6717a03");
    let built = MessageStatusReport::read(&[id(ORIGINAL_ID), id(REPLY_ID)])
        .with(mention, MessageStatus::Unread)
        .with(expiring, MessageStatus::Expired);
    assert_eq!(built, report);
    assert_eq!(report.status_of(&id(REPLY_ID)), Some(MessageStatus::Read));
    assert_eq!(report.status_of(&id(REACTION_ID)), None);

    let delivered = MessageStatusReport::delivered(&[id(REACTION_ID)]);
    let enc = delivered.encode().unwrap();
    assert_eq!(hex::encode(&enc), format!("81825820{REACTION_ID}01"));
    assert_eq!(MessageStatusReport::decode(&enc).unwrap(), delivered);
    // Unknown status values are kept; values beyond 255 are rejected.
    let unknown = hex::decode(format!("81825820{REACTION_ID}18c8")).unwrap();
    assert_eq!(
        MessageStatusReport::decode(&unknown).unwrap().statuses[0].status,
        MessageStatus::Unknown(200)
    );
    let too_big = hex::decode(format!("81825820{REACTION_ID}190100")).unwrap();
    assert_eq!(
        MessageStatusReport::decode(&too_big),
        Err(Error::OutOfRange {
            field: "status",
            value: 256
        })
    );
    assert_eq!(
        MessageStatusReport::decode(&hex::decode("81835820").unwrap()),
        Err(Error::WrongArrayLength {
            field: "PerMessageStatus",
            expected: 2,
            found: 3
        })
    );
}

#[test]
fn implied_values_round_trip() {
    let v = vector!("implied-original");
    let bytes = bytes_of(&v);
    let implied = MessageDerivedValues::decode(&bytes).unwrap();
    assert_eq!(implied.message_id, id(ORIGINAL_ID));
    assert_eq!(
        implied.hub_accepted_timestamp,
        Timestamp::Millis(1644387225019)
    );
    assert_eq!(implied.sender_leaf_index, 4);
    assert_eq!(
        implied.sender_client_url,
        "mimi://example.com/d/3b52249d-68f9-45ce-8bf5-c799f3cad7ec/0003"
    );
    assert_eq!(implied.sender_user_url, ALICE);
    assert_eq!(implied.room_url, ROOM);
    assert_eq!(implied.encode().unwrap(), bytes);
}

// ---------------------------------------------------------------- malformed input

/// The original example with `edit` applied to its bytes.
fn original_with(edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let (mut bytes, _) = decode_vector("original");
    edit(&mut bytes);
    bytes
}

fn splice(bytes: &mut Vec<u8>, find: &str, replace: &str) {
    let h = hex::encode(&*bytes);
    assert!(h.contains(find), "{find} not in vector");
    *bytes = hex::decode(h.replacen(find, replace, 1)).unwrap();
}

#[test]
fn malformed_inputs_are_typed_errors() {
    let cases: Vec<(&str, Vec<u8>, Error)> = vec![
        ("empty", vec![], Error::UnexpectedEnd { offset: 0 }),
        (
            "not an array",
            vec![0xa0],
            Error::UnexpectedType {
                field: "mimiContent",
                expected: "array",
            },
        ),
        (
            "extra field",
            original_with(|b| {
                b[0] = 0x88;
                b.push(0xf6)
            }),
            Error::WrongArrayLength {
                field: "mimiContent",
                expected: 7,
                found: 8,
            },
        ),
        (
            "trailing byte",
            original_with(|b| b.push(0x00)),
            Error::TrailingBytes { count: 1 },
        ),
        (
            "truncated",
            original_with(|b| {
                b.pop();
            }),
            Error::UnexpectedEnd { offset: 192 },
        ),
        (
            "short salt",
            original_with(|b| splice(b, "87505eed", "874f5eed")),
            Error::InvalidLength {
                field: "salt",
                expected: 16,
                found: 15,
            },
        ),
        (
            "salt is text",
            original_with(|b| splice(b, "87505eed", "87705eed")),
            Error::UnexpectedType {
                field: "salt",
                expected: "byte string",
            },
        ),
        (
            "replaces too short",
            original_with(|b| splice(b, "b003f640", "b00341aa40")),
            Error::InvalidLength {
                field: "replaces",
                expected: 32,
                found: 1,
            },
        ),
        (
            "non-shortest length",
            original_with(|b| splice(b, "b003f640", "b003f65800")),
            Error::NonDeterministic { offset: 19 },
        ),
        (
            "indefinite topic",
            original_with(|b| splice(b, "b003f640", "b003f65fff")),
            Error::IndefiniteLength { offset: 19 },
        ),
        (
            "expires wrong type",
            original_with(|b| splice(b, "f640f6f6a2", "f64001f6a2")),
            Error::UnexpectedType {
                field: "expires",
                expected: "array",
            },
        ),
        (
            "expires missing time",
            original_with(|b| splice(b, "f640f6f6a2", "f64081f4f6a2")),
            Error::WrongArrayLength {
                field: "expires",
                expected: 2,
                found: 1,
            },
        ),
        (
            "expires relative flag not bool",
            original_with(|b| splice(b, "f640f6f6a2", "f640820000f6a2")),
            Error::UnexpectedType {
                field: "expires.relative",
                expected: "boolean",
            },
        ),
        (
            "unsorted extension keys",
            original_with(|b| {
                let alice = hex::encode(ALICE);
                let room = hex::encode(ROOM);
                splice(
                    b,
                    &format!("017820{alice}027825{room}"),
                    &format!("027825{room}017820{alice}"),
                )
            }),
            Error::NonDeterministic { offset: 63 },
        ),
        (
            "duplicate extension key",
            original_with(|b| {
                let room = hex::encode(ROOM);
                splice(b, &format!("027825{room}"), &format!("017825{room}"))
            }),
            Error::DuplicateMapKey {
                field: "extensions",
            },
        ),
        (
            "sender URI not text",
            original_with(|b| splice(b, "a2017820", "a2015820")),
            Error::UnexpectedType {
                field: "senderUri",
                expected: "text string",
            },
        ),
        (
            "invalid utf-8",
            original_with(|b| splice(b, "7820", "6180")),
            Error::InvalidUtf8 { offset: 24 },
        ),
        (
            "unknown cardinality",
            original_with(|b| splice(b, "85016001", "85016004")),
            Error::UnknownCardinality(4),
        ),
        (
            "null part with extra field",
            original_with(|b| splice(b, "85016001", "85016000")),
            Error::WrongArrayLength {
                field: "NestedPart",
                expected: 3,
                found: 5,
            },
        ),
        (
            "disposition above 255",
            original_with(|b| splice(b, "85016001", "8519010060 01".replace(' ', "").as_str())),
            Error::OutOfRange {
                field: "disposition",
                value: 256,
            },
        ),
        ("break byte", vec![0xff], Error::Malformed { offset: 0 }),
        (
            "reserved additional info",
            vec![0x1c],
            Error::Malformed { offset: 0 },
        ),
    ];
    for (name, input, expected) in cases {
        assert_eq!(MimiContent::decode(&input), Err(expected), "{name}");
    }
}

/// Encodes a minimal message whose body is `body_hex`.
fn with_body(body_hex: &str) -> Vec<u8> {
    hex::decode(format!("8750{}f640f6f6a0{body_hex}", "00".repeat(16))).unwrap()
}

#[test]
fn structural_limits() {
    // A null body with an empty extension map is valid.
    let ok = MimiContent::decode(&with_body("830160 00".replace(' ', "").as_str())).unwrap();
    assert_eq!(ok.body, NestedPart::null(Disposition::Render));
    assert_eq!(
        MimiContent::decode(&with_body("850160030580")),
        Err(Error::UnknownPartSemantics(5))
    );
    assert_eq!(
        MimiContent::decode(&with_body(
            "850160030281830160 00".replace(' ', "").as_str()
        )),
        Err(Error::TooFewParts(1))
    );
    // Five levels of MultiPart nesting.
    let mut body = "83016000".to_string();
    for _ in 0..4 {
        body = format!("8501600302 82{body}83016000").replace(' ', "");
    }
    assert_eq!(
        MimiContent::decode(&with_body(&body)),
        Err(Error::TooDeep {
            field: "NestedPart",
            limit: 4
        })
    );
    // Four levels are fine.
    let mut body = "83016000".to_string();
    for _ in 0..3 {
        body = format!("850160030282{body}83016000");
    }
    assert!(MimiContent::decode(&with_body(&body)).is_ok());
    // Array count larger than the input: rejected before allocating.
    assert_eq!(
        MimiContent::decode(&with_body("85016003029affffffff")),
        Err(Error::LimitExceeded {
            field: "parts",
            limit: MAX_PARTS as u64,
            found: 0xffff_ffff
        })
    );
    assert_eq!(
        MimiContent::decode(&with_body("8501600302990300")),
        Err(Error::UnexpectedEnd { offset: 31 })
    );
    // Oversize topic ID.
    let mut big = hex::decode(format!("8750{}f6591001", "00".repeat(16))).unwrap();
    big.extend(vec![0; 4097]);
    assert_eq!(
        MimiContent::decode(&big),
        Err(Error::LimitExceeded {
            field: "topicId",
            limit: 4096,
            found: 4097
        })
    );
    let huge = vec![0u8; MAX_MESSAGE_LEN + 1];
    assert_eq!(
        MimiContent::decode(&huge),
        Err(Error::LimitExceeded {
            field: "mimiContent",
            limit: MAX_MESSAGE_LEN as u64,
            found: MAX_MESSAGE_LEN as u64 + 1
        })
    );
    // Expiration time beyond 32 bits.
    let exp = hex::decode(format!(
        "8750{}f64082f41b0000000100000000f6a083016000",
        "00".repeat(16)
    ))
    .unwrap();
    assert_eq!(
        MimiContent::decode(&exp),
        Err(Error::OutOfRange {
            field: "expires.time",
            value: 1 << 32
        })
    );
}

fn with_extensions(map_hex: &str) -> Vec<u8> {
    hex::decode(format!("8750{}f640f6f6{map_hex}83016000", "00".repeat(16))).unwrap()
}

#[test]
fn extension_rules() {
    // Private-use text and negative keys, nested values up to depth 4.
    let bytes = with_extensions(
        "a3 1901 00 81 81 d8 20 60 20 f5 61 78 f9 3c 00"
            .replace(' ', "")
            .as_str(),
    );
    let c = MimiContent::decode(&bytes).unwrap();
    assert_eq!(c.encode().unwrap(), bytes);
    assert_eq!(
        c.extensions.get(&ExtensionKey::Int(-1)),
        Some(&Value::Bool(true))
    );
    assert_eq!(
        c.extensions.get(&ExtensionKey::Text("x".into())),
        Some(&Value::Float(1.0))
    );
    assert_eq!(
        c.extensions.get(&ExtensionKey::Int(256)),
        Some(&Value::Array(vec![Value::Array(vec![Value::Tag(
            32,
            Box::new(Value::Text(String::new()))
        )])]))
    );
    // Depth 5 is rejected.
    assert_eq!(
        MimiContent::decode(&with_extensions("a1190100818181d82060")),
        Err(Error::TooDeep {
            field: "extension value",
            limit: 4
        })
    );
    assert_eq!(
        MimiContent::decode(&with_extensions("a100f6")),
        Err(Error::ReservedExtensionKey)
    );
    assert_eq!(
        MimiContent::decode(&with_extensions("a140f6")),
        Err(Error::InvalidMapKey {
            field: "extensions"
        })
    );
    assert_eq!(
        MimiContent::decode(&with_extensions("a160f6")),
        Err(Error::InvalidMapKey {
            field: "extensions"
        })
    );
    // 2^53 is not exactly representable as a double key.
    assert_eq!(
        MimiContent::decode(&with_extensions("a11b0020000000000000f6")),
        Err(Error::InvalidMapKey {
            field: "extensions"
        })
    );
    // Nested maps: keys must be int/text/bytes and sorted, floats shortest, NaN canonical.
    assert_eq!(
        MimiContent::decode(&with_extensions(
            "a11901 00 a1 f6 00".replace(' ', "").as_str()
        )),
        Err(Error::InvalidMapKey {
            field: "extension value"
        })
    );
    assert_eq!(
        MimiContent::decode(&with_extensions(
            "a11901 00 a2 02 00 01 00".replace(' ', "").as_str()
        )),
        Err(Error::NonDeterministic { offset: 29 })
    );
    assert_eq!(
        MimiContent::decode(&with_extensions("a1190100fa3f800000")),
        Err(Error::NonDeterministic { offset: 26 })
    );
    assert_eq!(
        MimiContent::decode(&with_extensions("a1190100fb7ff8000000000000")),
        Err(Error::Malformed { offset: 26 })
    );
    assert_eq!(
        MimiContent::decode(&with_extensions("a1190100f0")),
        Err(Error::Malformed { offset: 26 })
    );
    // Building: keys 1/2 must be text; the map stays sorted whatever the insertion order.
    let mut ext = Extensions::new(ALICE, ROOM);
    assert_eq!(
        ext.insert(ExtensionKey::Int(1), Value::Null),
        Err(Error::UnexpectedType {
            field: "extensions",
            expected: "text string"
        })
    );
    ext.insert(ExtensionKey::Text("z".into()), Value::Null)
        .unwrap();
    ext.insert(ExtensionKey::Int(-5), Value::Null).unwrap();
    ext.insert(
        ExtensionKey::Int(300),
        Value::Map(vec![
            (Value::Unsigned(2), Value::Null),
            (Value::Unsigned(1), Value::Null),
        ]),
    )
    .unwrap();
    let keys: Vec<_> = ext.others().map(|(k, _)| k.clone()).collect();
    assert_eq!(
        keys,
        [
            ExtensionKey::Int(300),
            ExtensionKey::Int(-5),
            ExtensionKey::Text("z".into())
        ]
    );
    let c = ContentBuilder::new(Salt([1; 16]))
        .body(NestedPart::null(Disposition::Render))
        .build()
        .map(|mut c| {
            c.extensions = ext.clone();
            c
        })
        .unwrap();
    let enc = c.encode().unwrap();
    let back = MimiContent::decode(&enc).unwrap();
    assert_eq!(back.encode().unwrap(), enc);
    assert_eq!(
        back.extensions.get(&ExtensionKey::Int(300)),
        Some(&Value::Map(vec![
            (Value::Unsigned(1), Value::Null),
            (Value::Unsigned(2), Value::Null)
        ]))
    );
    assert_eq!(
        ext.insert(
            ExtensionKey::Int(7),
            Value::Map(vec![
                (Value::Unsigned(1), Value::Null),
                (Value::Unsigned(1), Value::Null)
            ])
        ),
        Err(Error::DuplicateMapKey {
            field: "extension value"
        })
    );
}

#[test]
fn truncations_and_bit_flips_of_examples_never_panic() {
    for v in content_vectors() {
        let bytes = bytes_of(&v);
        for cut in 0..bytes.len() {
            assert!(
                MimiContent::decode(&bytes[..cut]).is_err(),
                "{} cut at {cut}",
                v.name
            );
        }
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[i] ^= 1 << bit;
                if let Ok(c) = MimiContent::decode(&b) {
                    assert_eq!(
                        c.encode().unwrap(),
                        b,
                        "{}: accepted input must be canonical",
                        v.name
                    );
                }
            }
        }
    }
}

// ---------------------------------------------------------------- properties

fn arb_value() -> impl Strategy<Value = mimi_content::Value> {
    let leaf = prop_oneof![
        any::<u64>().prop_map(mimi_content::Value::Unsigned),
        any::<u64>().prop_map(mimi_content::Value::Negative),
        proptest::collection::vec(any::<u8>(), 0..8).prop_map(mimi_content::Value::Bytes),
        ".{0,8}".prop_map(mimi_content::Value::Text),
        any::<bool>().prop_map(mimi_content::Value::Bool),
        Just(mimi_content::Value::Null),
        (-1.0e10f64..1.0e10).prop_map(mimi_content::Value::Float),
    ];
    // Extension values sit at level 2, so at most 3 nested containers.
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(mimi_content::Value::Array),
            proptest::collection::btree_map("[a-z]{0,4}", inner.clone(), 0..4).prop_map(|m| {
                mimi_content::Value::Map(
                    m.into_iter()
                        .map(|(k, v)| (mimi_content::Value::Text(k), v))
                        .collect(),
                )
            }),
            (0u64..1000, inner).prop_map(|(t, v)| mimi_content::Value::Tag(t, Box::new(v))),
        ]
    })
}

fn arb_part() -> impl Strategy<Value = NestedPart> {
    let dispo = any::<u8>().prop_map(Disposition::from_u8);
    let leaf = prop_oneof![
        Just(PartBody::Null),
        (".{0,12}", proptest::collection::vec(any::<u8>(), 0..32)).prop_map(
            |(content_type, content)| {
                PartBody::Single(SinglePart {
                    content_type,
                    content,
                })
            }
        ),
        (
            (
                ".{0,8}",
                ".{0,12}",
                any::<u32>(),
                any::<u64>(),
                any::<u16>()
            ),
            (
                proptest::collection::vec(any::<u8>(), 0..16),
                proptest::collection::vec(any::<u8>(), 0..12),
                any::<u8>(),
                ".{0,8}",
                ".{0,8}"
            )
        )
            .prop_map(
                |(
                    (content_type, url, expires, size, enc_alg),
                    (key, content_hash, hash_alg, description, filename),
                )| {
                    PartBody::External(ExternalPart {
                        content_type,
                        url,
                        expires,
                        size,
                        enc_alg,
                        nonce: key.iter().rev().copied().collect(),
                        key,
                        aad: vec![],
                        hash_alg,
                        content_hash,
                        description,
                        filename,
                    })
                }
            ),
    ];
    let leaf_part =
        (dispo.clone(), "[a-z]{0,5}", leaf).prop_map(|(disposition, language, body)| NestedPart {
            disposition,
            language,
            body,
        });
    // The body is level 1: at most three further levels.
    leaf_part.prop_recursive(3, 24, 4, move |inner| {
        (
            dispo.clone(),
            prop_oneof![
                Just(PartSemantics::ChooseOne),
                Just(PartSemantics::SingleUnit),
                Just(PartSemantics::ProcessAll)
            ],
            proptest::collection::vec(inner, 2..4),
        )
            .prop_map(|(disposition, semantics, parts)| NestedPart {
                disposition,
                language: String::new(),
                body: PartBody::Multi(MultiPart { semantics, parts }),
            })
    })
}

fn arb_content() -> impl Strategy<Value = MimiContent> {
    (
        any::<[u8; 16]>(),
        proptest::option::of(any::<[u8; 32]>()),
        proptest::collection::vec(any::<u8>(), 0..8),
        proptest::option::of((any::<bool>(), any::<u32>())),
        proptest::option::of(any::<[u8; 32]>()),
        (
            proptest::option::of(".{0,16}"),
            proptest::option::of(".{0,16}"),
            proptest::collection::vec(
                (
                    prop_oneof![
                        (3i64..1000).prop_map(ExtensionKey::Int),
                        (-1000i64..0).prop_map(ExtensionKey::Int),
                        "[a-z]{1,6}".prop_map(ExtensionKey::Text)
                    ],
                    arb_value(),
                ),
                0..4,
            ),
        ),
        arb_part(),
    )
        .prop_map(
            |(s, replaces, topic_id, expires, irt, (sender, room, others), body)| {
                let mut extensions = Extensions::default();
                extensions.sender_uri = sender;
                extensions.room_uri = room;
                for (k, v) in others {
                    extensions.insert(k, v).unwrap();
                }
                MimiContent {
                    salt: Salt(s),
                    replaces: replaces.map(MessageId),
                    topic_id,
                    expires: expires.map(|(rel, t)| {
                        if rel {
                            Expiration::Relative(t)
                        } else {
                            Expiration::Absolute(t)
                        }
                    }),
                    in_reply_to: irt.map(MessageId),
                    extensions,
                    body,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn encode_decode_round_trip(content in arb_content()) {
        let bytes = content.encode().unwrap();
        let back = MimiContent::decode(&bytes).unwrap();
        prop_assert_eq!(&back, &content);
        prop_assert_eq!(back.encode().unwrap(), bytes.clone());
        if let (Some(s), Some(r)) = (&content.extensions.sender_uri, &content.extensions.room_uri) {
            prop_assert_eq!(back.message_id().unwrap(), compute_message_id(s, r, &bytes, &content.salt).unwrap());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(c) = MimiContent::decode(&bytes) {
            prop_assert_eq!(c.encode().unwrap(), bytes.clone());
        }
        if let Ok(r) = MessageStatusReport::decode(&bytes) {
            prop_assert_eq!(r.encode().unwrap(), bytes.clone());
        }
        let _ = MessageDerivedValues::decode(&bytes);
    }

    #[test]
    fn report_round_trip(entries in proptest::collection::vec((any::<[u8; 32]>(), any::<u8>()), 0..16)) {
        let report = MessageStatusReport {
            statuses: entries
                .into_iter()
                .map(|(id, s)| PerMessageStatus { message_id: MessageId(id), status: MessageStatus::from_u8(s) })
                .collect(),
        };
        let bytes = report.encode().unwrap();
        prop_assert_eq!(MessageStatusReport::decode(&bytes).unwrap(), report);
    }
}
