//! Conformance vectors for other implementations: `conformance/v1/*.json`, one file per
//! structure, each with the structure's name, a description, its encoding in hex and its
//! fields as JSON (`docs/wire-format.md` §11).
//!
//! The files are generated from the values below by this codec: run the test with
//! `MIMI_WRITE_CONFORMANCE=1` (or `cargo xtask vectors`) to write them. Without it the test
//! reads every file, decodes its bytes with the decoder its `structure` names, re-encodes
//! them, and compares the bytes and the decoded fields with the file; it also checks that the
//! folder holds exactly the generated files, with the generated content.

use mimi_codec::*;
use serde_json::{Value, json};
use tls_codec::{Deserialize, Serialize};

use crate::fixtures::*;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../conformance/v1");

fn mls_hex(m: &MlsBytes) -> Value {
    json!(hex::encode(m.as_slice()))
}

fn mls_list(v: &BoundedVec<MlsBytes, { limits::MAX_MLS_MESSAGES }>) -> Value {
    Value::Array(v.iter().map(mls_hex).collect())
}

fn user_event_fields(u: &UserEvent) -> Value {
    json!({
        "target": u.target.as_str(),
        "change": u.change.wire_value(),
        "reason": u.reason.as_str(),
        "follower_server_certificate":
            u.follower_server_certificate.as_ref().map(|c| hex::encode(c.as_slice())),
        "role": u.role.as_ref().map(|r| r.as_str()),
    })
}

fn room_state_fields(r: &RoomState) -> Value {
    json!({
        "room_id": r.room_id.as_str(),
        "participants": r.participants.iter().map(|p| json!({
            "user_id": p.user_id.as_str(),
            "role": p.role.as_str(),
            "state": p.state.wire_value(),
        })).collect::<Vec<_>>(),
        "policy": {
            "policy_id": r.policy.policy_id.as_str(),
            "join_rule": r.policy.join_rule.wire_value(),
            "permissions": r.policy.permissions.iter().map(|p| json!({
                "action": p.action.wire_value(),
                "roles": p.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        },
        "security": {
            "protocol": r.security.protocol.as_str(),
            "cipher_suite": r.security.cipher_suite,
        },
    })
}

fn create_group_fields(b: &CreateGroupRequest) -> Value {
    json!({ "group_info": mls_hex(&b.group_info), "ratchet_tree": mls_hex(&b.ratchet_tree) })
}
fn proposal_fields(b: &ProposalRequest) -> Value {
    json!({ "proposals": mls_list(&b.proposals) })
}
fn commit_fields(b: &CommitRequest) -> Value {
    json!({
        "commit": mls_hex(&b.commit),
        "group_info": mls_hex(&b.group_info),
        "welcome_messages": mls_list(&b.welcomes),
    })
}
fn key_packages_request_fields(b: &KeyPackagesRequest) -> Value {
    json!({
        "cipher_suite": b.cipher_suite,
        "user": b.user.as_str(),
        "clients": b.clients.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
    })
}
fn send_message_fields(b: &SendMessageRequest) -> Value {
    json!({ "application_message": [mls_hex(&b.application_message)] })
}
fn key_packages_response_fields(b: &KeyPackagesResponse) -> Value {
    json!({
        "key_packages": b.key_packages.iter().map(|e| json!({
            "client": e.client.as_str(),
            "kind": e.kind.wire_value(),
            "key_package": mls_hex(&e.key_package),
        })).collect::<Vec<_>>(),
    })
}
fn group_info_response_fields(b: &GroupInfoResponse) -> Value {
    json!({
        "group_info": mls_hex(&b.group_info),
        "ratchet_tree": mls_hex(&b.ratchet_tree),
        "pending_proposals": mls_list(&b.pending_proposals),
    })
}

fn ds_request(t: DsRequestType, body: Value) -> Value {
    json!({
        "ds_protocol_version": DsProtocolVersion::MimiDs10.wire_value(),
        "ds_request_type": t.wire_value(),
        "body": body,
        "ds_auth_type": DsAuthType::Unauthenticated.wire_value(),
    })
}

fn event_fields(e: &Event) -> Value {
    let content = match e {
        Event::RoomUser(m) => json!({ "user_event_proposal": mls_hex(m) }),
        Event::RoomUserUnsigned(u) => json!({ "user_event": user_event_fields(u) }),
        Event::RoomInfo(i) => json!({ "room_state": room_state_fields(&i.room_state) }),
        Event::DsCreateGroup(b) => ds_request(DsRequestType::CreateGroup, create_group_fields(b)),
        Event::DsProposal(b) => ds_request(DsRequestType::Proposal, proposal_fields(b)),
        Event::DsCommit(b) => ds_request(DsRequestType::Commit, commit_fields(b)),
        Event::DsFetchKeyPackages(b) => {
            ds_request(DsRequestType::KeyPackages, key_packages_request_fields(b))
        }
        Event::DsFetchGroupInfo(_) => ds_request(DsRequestType::GroupInfo, json!({})),
        Event::DsSendMessage(b) => ds_request(DsRequestType::SendMessage, send_message_fields(b)),
    };
    json!({ "type": e.event_type(), "content": content })
}

fn event_error_fields(e: &EventError) -> Value {
    json!({ "code": e.code.wire_value(), "detail": e.detail.as_str() })
}

fn response_fields(r: &EventResponse) -> Value {
    let ds = |t: DsResponseType, body: Value| {
        json!({
            "ds_protocol_version": DsProtocolVersion::MimiDs10.wire_value(),
            "ds_response_type": t.wire_value(),
            "body": body,
        })
    };
    match r {
        EventResponse::Ok => json!({ "type": EventResponseType::Ok.wire_value() }),
        EventResponse::KeyPackages(b) => json!({
            "type": EventResponseType::KeyPackage.wire_value(),
            "key_package": ds(DsResponseType::KeyPackages, key_packages_response_fields(b)),
        }),
        EventResponse::GroupInfo(b) => json!({
            "type": EventResponseType::GroupInfo.wire_value(),
            "group_info": ds(DsResponseType::ExternalCommitInfo, group_info_response_fields(b)),
        }),
        EventResponse::Error(e) => json!({
            "type": EventResponseType::Error.wire_value(),
            "error": event_error_fields(e),
        }),
    }
}

fn fanout_fields(f: &FanoutEvent) -> Value {
    json!({
        "sequence": f.sequence,
        "prev_hash": hex::encode(f.prev_hash.as_slice()),
        "auth_events": f.auth_events.as_slice(),
        "event": event_fields(&f.event),
    })
}

fn mimi_fields(m: &MimiMessage) -> Value {
    let (message_type, body) = match &m.body {
        MessageBody::Event(e) => (MimiMessageType::Event, ("event", event_fields(e))),
        MessageBody::Response(r) => (
            MimiMessageType::EventResponse,
            ("response", response_fields(r)),
        ),
        MessageBody::Fanout(f) => (MimiMessageType::Fanout, ("fanout", fanout_fields(f))),
    };
    let mut v = json!({
        "version": m.version.wire_value(),
        "room_id": m.room_id.as_str(),
        "sender": m.sender.to_string(),
        "message_type": message_type.wire_value(),
    });
    v[body.0] = body.1;
    v
}

fn identifier_request_fields(r: &IdentifierRequest) -> Value {
    let mut v = json!({
        "type": r.query.identifier_type().wire_value(),
        "search_value": r.search_value.as_str(),
    });
    match &r.query {
        IdentifierQuery::OidcStdClaim(n) => v["claim_name"] = json!(n.as_str()),
        IdentifierQuery::VcardField(n) => v["field_name"] = json!(n.as_str()),
        _ => {}
    }
    v
}

/// One vector: its file name, structure, description, bytes and fields.
struct Vector {
    name: String,
    structure: &'static str,
    description: String,
    bytes: Vec<u8>,
    fields: Value,
}

fn tls<T: Serialize>(v: &T) -> Vec<u8> {
    v.tls_serialize_detached().unwrap()
}

fn vectors() -> Vec<Vector> {
    let mut out = Vec::new();
    let mut mimi = |name: &str, description: &str, m: MimiMessage| {
        out.push(Vector {
            name: format!("mimi_message_{name}"),
            structure: "MIMIMessage",
            description: description.to_owned(),
            bytes: m.encode().unwrap(),
            fields: mimi_fields(&m),
        });
    };
    mimi(
        "event_room_user",
        "m.room.user: the bare MLSMessage (a proposal PublicMessage)",
        event_from_alice(room_user_event()),
    );
    mimi(
        "event_room_user_unsigned",
        "m.room.user.unsigned (this project's): a UserEvent authenticated by the transport",
        event_from_alice(Event::RoomUserUnsigned(user_event_minimal())),
    );
    mimi(
        "event_room_info",
        "m.room.info: the room's state",
        event_from_alice(Event::RoomInfo(InfoEvent {
            room_state: room_state(),
        })),
    );
    mimi(
        "event_ds_create_group",
        "ds.create_group: DSRequest with private type 240, GroupInfo and ratchet tree",
        event_from_alice(Event::DsCreateGroup(CreateGroupRequest {
            group_info: group_info_msg(),
            ratchet_tree: ratchet_tree(),
        })),
    );
    mimi(
        "event_ds_proposal",
        "ds.proposal: DSRequest ds_proposals(1) with two proposals",
        event_from_alice(Event::DsProposal(proposal_request())),
    );
    mimi(
        "event_ds_commit",
        "ds.commit: DSRequest ds_commits(2), a commit, its GroupInfo and one Welcome",
        event_from_alice(Event::DsCommit(commit_request())),
    );
    mimi(
        "event_ds_fetch_key_packages",
        "ds.fetch_key_packages: DSRequest ds_key_packages(4) naming one client",
        event_from_alice(Event::DsFetchKeyPackages(key_packages_request(vec![
            phone(),
        ]))),
    );
    mimi(
        "event_ds_fetch_group_info",
        "ds.fetch_group_info: DSRequest ds_group_info(5), empty body",
        event_from_alice(Event::DsFetchGroupInfo(GroupInfoRequest)),
    );
    mimi(
        "event_ds_send_message",
        "ds.send_message: DSRequest ds_send_message(3), one application PrivateMessage",
        event_from_alice(Event::DsSendMessage(SendMessageRequest {
            application_message: private_app(&[0x5a, 0x5b]),
        })),
    );
    mimi(
        "response_ok",
        "event_response ok",
        msg(
            server("b.example"),
            MessageBody::Response(EventResponse::Ok),
        ),
    );
    mimi(
        "response_key_package",
        "event_response key_package: DSResponse KeyPackages(4)",
        msg(
            server("b.example"),
            MessageBody::Response(EventResponse::KeyPackages(key_packages_response())),
        ),
    );
    mimi(
        "response_group_info",
        "event_response group_info: DSResponse ExternalCommitInfo(3)",
        msg(
            server("a.example"),
            MessageBody::Response(EventResponse::GroupInfo(group_info_response())),
        ),
    );
    mimi(
        "response_error",
        "event_response error (this project's EventErrorType codes)",
        msg(
            server("a.example"),
            MessageBody::Response(EventResponse::Error(EventError::new(
                ErrorCode::StaleEpoch,
                "epoch 3 is not the current epoch 4",
            ))),
        ),
    );
    mimi(
        "fanout",
        "fanout (this project's message type 3): a fully-formed event from the hub",
        msg(server("a.example"), MessageBody::Fanout(fanout_event())),
    );
    let mut plain = |name: &str, structure: &'static str, description: &str, bytes, fields| {
        out.push(Vector {
            name: name.to_owned(),
            structure,
            description: description.to_owned(),
            bytes,
            fields,
        });
    };
    let f = fanout_event();
    plain(
        "fanout_event",
        "FanoutEvent",
        "a fully-formed event on its own",
        f.encode().unwrap(),
        fanout_fields(&f),
    );
    for (name, u) in [
        ("user_event_full", user_event_full()),
        ("user_event_minimal", user_event_minimal()),
        ("user_event_set_role", user_event_set_role()),
    ] {
        plain(
            name,
            "UserEvent",
            "UserEvent (the payload of an m.room.user proposal)",
            u.encode().unwrap(),
            user_event_fields(&u),
        );
    }
    let r = room_state();
    plain(
        "room_state",
        "RoomState",
        "RoomState (the room's state, also the MLS group's RoomState extension)",
        r.encode().unwrap(),
        room_state_fields(&r),
    );
    let i = InfoEvent { room_state: r };
    plain(
        "info_event",
        "InfoEvent",
        "InfoEvent",
        i.encode().unwrap(),
        json!({ "room_state": room_state_fields(&i.room_state) }),
    );
    let c = check_invite_request();
    plain(
        "check_invite_request",
        "CheckInviteRequest",
        "POST /check-invite body: the invite framed as a MIMIMessage, then the InfoEvent",
        c.encode().unwrap(),
        json!({
            "invite": mimi_fields(&c.invite),
            "room_info": { "room_state": room_state_fields(&c.room_info.room_state) },
        }),
    );
    for (name, query, value) in [
        ("handle", IdentifierQuery::Handle, "bob"),
        ("email", IdentifierQuery::Email, "bob@b.example"),
        (
            "oidc_std_claim",
            IdentifierQuery::OidcStdClaim(search("email")),
            "bob@b.example",
        ),
        (
            "vcard_field",
            IdentifierQuery::VcardField(search("fn")),
            "Bob",
        ),
    ] {
        let q = IdentifierRequest {
            query,
            search_value: search(value),
        };
        plain(
            &format!("identifier_request_{name}"),
            "IdentifierRequest",
            "POST /identifierQuery body",
            q.encode().unwrap(),
            identifier_request_fields(&q),
        );
    }
    for (name, code, uri) in [
        (
            "success",
            IdentifierDiscoveryCode::Success,
            "@bob:b.example",
        ),
        ("not_found", IdentifierDiscoveryCode::NotFound, ""),
    ] {
        let r = IdentifierResponse {
            code,
            uri: Text::new(uri).unwrap(),
        };
        plain(
            &format!("identifier_response_{name}"),
            "IdentifierResponse",
            "identifier discovery answer",
            r.encode().unwrap(),
            json!({ "response_code": r.code.wire_value(), "uri": r.uri.as_str() }),
        );
    }
    let cg = CreateGroupRequest {
        group_info: group_info_msg(),
        ratchet_tree: ratchet_tree(),
    };
    plain(
        "ds_create_group_request",
        "CreateGroupRequest",
        "DS body of ds.create_group (without the DSRequest around it)",
        tls(&cg),
        create_group_fields(&cg),
    );
    let p = proposal_request();
    plain(
        "ds_proposal_request",
        "ProposalRequest",
        "DS body of ds.proposal",
        tls(&p),
        proposal_fields(&p),
    );
    let c = commit_request();
    plain(
        "ds_commit_request",
        "CommitRequest",
        "DS body of ds.commit",
        tls(&c),
        commit_fields(&c),
    );
    let k = key_packages_request(vec![phone()]);
    plain(
        "ds_key_packages_request",
        "KeyPackagesRequest",
        "DS body of ds.fetch_key_packages",
        tls(&k),
        key_packages_request_fields(&k),
    );
    let s = SendMessageRequest {
        application_message: private_app(&[0x5a, 0x5b]),
    };
    plain(
        "ds_send_message_request",
        "SendMessageRequest",
        "DS body of ds.send_message",
        tls(&s),
        send_message_fields(&s),
    );
    let kr = key_packages_response();
    plain(
        "ds_key_packages_response",
        "KeyPackagesResponse",
        "DS response body KeyPackages",
        tls(&kr),
        key_packages_response_fields(&kr),
    );
    let gr = group_info_response();
    plain(
        "ds_group_info_response",
        "GroupInfoResponse",
        "DS response body ExternalCommitInfo",
        tls(&gr),
        group_info_response_fields(&gr),
    );
    out
}

fn exact<T: Deserialize + Serialize>(bytes: &[u8]) -> (Vec<u8>, T) {
    let mut r = bytes;
    let v = T::tls_deserialize(&mut r).unwrap();
    assert!(r.is_empty(), "bytes left over");
    (tls(&v), v)
}

/// Decode with the decoder `structure` names; the re-encoding and the decoded fields.
fn decode(structure: &str, bytes: &[u8]) -> (Vec<u8>, Value) {
    match structure {
        "MIMIMessage" => {
            let m = MimiMessage::decode(bytes).unwrap();
            (m.encode().unwrap(), mimi_fields(&m))
        }
        "FanoutEvent" => {
            let f = FanoutEvent::decode(bytes).unwrap();
            (f.encode().unwrap(), fanout_fields(&f))
        }
        "UserEvent" => {
            let u = UserEvent::decode(bytes).unwrap();
            (u.encode().unwrap(), user_event_fields(&u))
        }
        "RoomState" => {
            let r = RoomState::decode(bytes).unwrap();
            (r.encode().unwrap(), room_state_fields(&r))
        }
        "InfoEvent" => {
            let i = InfoEvent::decode(bytes).unwrap();
            let f = json!({ "room_state": room_state_fields(&i.room_state) });
            (i.encode().unwrap(), f)
        }
        "CheckInviteRequest" => {
            let c = CheckInviteRequest::decode(bytes).unwrap();
            let f = json!({
                "invite": mimi_fields(&c.invite),
                "room_info": { "room_state": room_state_fields(&c.room_info.room_state) },
            });
            (c.encode().unwrap(), f)
        }
        "IdentifierRequest" => {
            let q = IdentifierRequest::decode(bytes).unwrap();
            (q.encode().unwrap(), identifier_request_fields(&q))
        }
        "IdentifierResponse" => {
            let r = IdentifierResponse::decode(bytes).unwrap();
            let f = json!({ "response_code": r.code.wire_value(), "uri": r.uri.as_str() });
            (r.encode().unwrap(), f)
        }
        "CreateGroupRequest" => {
            let (b, v) = exact::<CreateGroupRequest>(bytes);
            (b, create_group_fields(&v))
        }
        "ProposalRequest" => {
            let (b, v) = exact::<ProposalRequest>(bytes);
            (b, proposal_fields(&v))
        }
        "CommitRequest" => {
            let (b, v) = exact::<CommitRequest>(bytes);
            (b, commit_fields(&v))
        }
        "KeyPackagesRequest" => {
            let (b, v) = exact::<KeyPackagesRequest>(bytes);
            (b, key_packages_request_fields(&v))
        }
        "SendMessageRequest" => {
            let (b, v) = exact::<SendMessageRequest>(bytes);
            (b, send_message_fields(&v))
        }
        "KeyPackagesResponse" => {
            let (b, v) = exact::<KeyPackagesResponse>(bytes);
            (b, key_packages_response_fields(&v))
        }
        "GroupInfoResponse" => {
            let (b, v) = exact::<GroupInfoResponse>(bytes);
            (b, group_info_response_fields(&v))
        }
        other => panic!("unknown structure {other}"),
    }
}

fn file_text(v: &Vector) -> String {
    let doc = json!({
        "structure": v.structure,
        "description": v.description,
        "encoded": hex::encode(&v.bytes),
        "fields": v.fields,
    });
    serde_json::to_string_pretty(&doc).unwrap() + "\n"
}

#[test]
fn conformance_vectors_decode_re_encode_and_match_their_fields() {
    let generated = vectors();
    if std::env::var_os("MIMI_WRITE_CONFORMANCE").is_some() {
        std::fs::create_dir_all(DIR).unwrap();
        for v in &generated {
            std::fs::write(format!("{DIR}/{}.json", v.name), file_text(v)).unwrap();
        }
    }
    let mut on_disk: Vec<String> = std::fs::read_dir(DIR)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    on_disk.sort();
    let mut expected: Vec<String> = generated
        .iter()
        .map(|v| format!("{}.json", v.name))
        .collect();
    expected.sort();
    assert_eq!(
        on_disk, expected,
        "conformance/v1 and the generator disagree"
    );
    for v in &generated {
        let path = format!("{DIR}/{}.json", v.name);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            file_text(v),
            "{path} is stale: run `cargo xtask vectors`"
        );
        let doc: Value = serde_json::from_str(&text).unwrap();
        let bytes = hex::decode(doc["encoded"].as_str().unwrap()).unwrap();
        let (again, fields) = decode(doc["structure"].as_str().unwrap(), &bytes);
        assert_eq!(
            hex::encode(&again),
            hex::encode(&bytes),
            "{path}: re-encoding"
        );
        assert_eq!(fields, doc["fields"], "{path}: decoded fields");
    }
}
