#![allow(clippy::unwrap_used)]

use std::fmt::Debug;
use std::time::Duration;

use http::StatusCode;
use mimi_codec::{
    BoundedVec, ClientId, ErrorCode as EventErrorCode, Event, EventError, EventResponse,
    IdentifierQuery, JoinRule, MessageBody, MimiMessage, ParticipantData, ParticipationState,
    ParticipationStateChange, RoomId, RoomPolicy, RoomState, SecurityConfig, Sender, Text,
    UserEvent, UserId, Wire,
};

use super::*;

fn room() -> RoomId {
    "!r1:a.example".parse().unwrap()
}

fn alice() -> UserId {
    "@alice:a.example".parse().unwrap()
}

fn phone() -> ClientId {
    "@bob:b.example#phone".parse().unwrap()
}

fn room_state() -> RoomState {
    RoomState {
        room_id: room(),
        participants: BoundedVec::new(vec![ParticipantData {
            user_id: alice(),
            role: "owner".parse().unwrap(),
            state: ParticipationState::Join,
        }])
        .unwrap(),
        policy: RoomPolicy {
            policy_id: Text::new("mimi.roles.v1").unwrap(),
            join_rule: JoinRule::Knock,
            permissions: BoundedVec::new(vec![]).unwrap(),
        },
        security: SecurityConfig {
            protocol: Text::new("mls10").unwrap(),
            cipher_suite: 1,
        },
    }
}

fn join_event() -> Event {
    Event::RoomUserUnsigned(UserEvent {
        target: alice(),
        change: ParticipationStateChange::Join,
        reason: Text::default(),
        follower_server_certificate: None,
        role: None,
    })
}

/// Encode a request as a client would, check its method, path and headers, then decode it
/// as a server would and compare.
fn round_trip<E: Endpoint + Debug + PartialEq>(request: E, expected_path: &str) {
    let http_request = request.try_into_http_request(Some("c.secret")).unwrap();
    assert_eq!(http_request.method(), E::METADATA.method);
    assert_eq!(
        http_request.uri().to_string(),
        expected_path,
        "{:?}",
        E::METADATA.id
    );
    assert_eq!(bearer_token(&http_request).unwrap(), Some("c.secret"));
    let found = find(http_request.method(), http_request.uri().path()).unwrap();
    assert_eq!(found.id, E::METADATA.id);
    assert!(found.accepts_content_type(http_request.headers().get(http::header::CONTENT_TYPE)));
    assert_eq!(E::try_from_http_request(&http_request).unwrap(), request);
}

fn response_round_trip<R: EndpointResponse + Debug + PartialEq>(response: R) {
    let http_response = response.try_into_http_response().unwrap();
    assert_eq!(R::try_from_http_response(&http_response).unwrap(), response);
}

#[test]
fn every_request_round_trips() {
    round_trip(
        register::Request {
            localpart: "alice".into(),
            device: "laptop".into(),
            handle: Some("al".into()),
            display_name: Some("Alice Ä".into()),
            ..register::Request::default()
        },
        "/v1/register",
    );
    round_trip(
        publish_key_packages::Request {
            key_packages: vec![vec![1, 2, 3], vec![]],
        },
        "/v1/key-packages",
    );
    round_trip(
        discover::Request {
            domain: "b.example".parse().unwrap(),
            field: IdentifierQuery::PartialName,
            value: "Bo b&c=d".into(),
        },
        "/v1/discover?domain=b.example&type=partial_name&value=Bo%20b%26c%3Dd",
    );
    round_trip(
        claim_key_packages::Request {
            room_id: room(),
            user_id: alice(),
            clients: vec![phone()],
        },
        "/v1/key-packages/claim",
    );
    round_trip(
        prepare_room::Request {
            join_rule: Some(JoinRule::Public),
        },
        "/v1/rooms/prepare",
    );
    round_trip(
        prepare_room::Request { join_rule: None },
        "/v1/rooms/prepare",
    );
    round_trip(
        create_room::Request {
            room_id: room(),
            join_rule: Some(JoinRule::Knock),
            group_info: vec![9; 40],
            ratchet_tree: vec![7; 3],
        },
        "/v1/rooms",
    );
    round_trip(
        submit_event::Request {
            room: room(),
            event: join_event(),
        },
        "/v1/rooms/%21r1%3Aa.example/events",
    );
    round_trip(
        room_state::Request { room: room() },
        "/v1/rooms/%21r1%3Aa.example/state",
    );
    round_trip(
        hub_removals::Request { room: room() },
        "/v1/rooms/%21r1%3Aa.example/hub-removals",
    );
    round_trip(
        inbox::Request {
            after: 7,
            limit: Some(100),
            wait: Some(Duration::from_millis(250)),
        },
        "/v1/inbox?after=7&limit=100&wait_ms=250",
    );
    round_trip(inbox::Request::default(), "/v1/inbox?after=0");
    round_trip(report_request(), "/v1/report-abuse");
}

fn report_request() -> report_abuse::Request {
    use mimi_codec::Opaque;
    use mimi_codec::v06::{Credential, Frank, FrankingAgentData};
    report_abuse::Request {
        room: "mimi://a.example/r/club".parse().unwrap(),
        alleged_abuser: "mimi://b.example/u/mallory".parse().unwrap(),
        reason: 0,
        note: "spam".into(),
        anonymous: true,
        messages: vec![report_abuse::ReportedMessage {
            content: vec![0xa5, 1, 2],
            accepted_timestamp: 1_767_225_600_000,
            frank: Frank {
                server_frank: [3; 32],
                franking_signature_ciphersuite: 1,
                franking_integrity_signature: Opaque::new(vec![4; 64]).unwrap(),
            },
        }],
        franking_agent: FrankingAgentData {
            franking_signature_key: Opaque::new(vec![5; 32]).unwrap(),
            credential: Credential {
                credential_type: 1,
                content: Opaque::new(b"mimi://a.example".to_vec()).unwrap(),
            },
        },
    }
}

#[test]
fn a_report_with_a_frank_that_does_not_decode_is_malformed() {
    let request = report_request()
        .try_into_http_request(Some("c.secret"))
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(request.body()).unwrap();
    assert_eq!(json["room"], "mimi://a.example/r/club");
    assert_eq!(json["messages"][0]["content"], "pQEC");
    let mut broken = json.clone();
    broken["messages"][0]["frank"] = "AAAA".into();
    let request = http::Request::builder()
        .method(http::Method::POST)
        .uri("/v1/report-abuse")
        .header(http::header::CONTENT_TYPE, JSON)
        .body(serde_json::to_vec(&broken).unwrap())
        .unwrap();
    assert_eq!(
        report_abuse::Request::try_from_http_request(&request)
            .unwrap_err()
            .code,
        ErrorCode::Malformed
    );
}

#[test]
fn every_response_round_trips() {
    response_round_trip(register::Response {
        user_id: alice(),
        client_id: phone(),
        token: "t".into(),
    });
    response_round_trip(publish_key_packages::Response { stored: 3 });
    response_round_trip(report_abuse::Response { messages: 2 });
    response_round_trip(discover::Response {
        code: DiscoveryCode::Success,
        user_id: Some("@bob:b.example".into()),
    });
    response_round_trip(discover::Response {
        code: DiscoveryCode::UnsupportedField,
        user_id: None,
    });
    response_round_trip(claim_key_packages::Response {
        key_packages: vec![claim_key_packages::ClaimedKeyPackage {
            client_id: phone(),
            key_package: vec![1, 2],
        }],
    });
    response_round_trip(prepare_room::Response {
        room_id: room(),
        room_state: room_state(),
        hub_external_sender: vec![5; 10],
        franking_agent: None,
    });
    response_round_trip(prepare_room::Response {
        room_id: room(),
        room_state: room_state(),
        hub_external_sender: vec![5; 10],
        franking_agent: Some(vec![6; 4]),
    });
    response_round_trip(create_room::Response { sequence: 1 });
    response_round_trip(submit_event::Response {
        response: EventResponse::Ok,
    });
    response_round_trip(submit_event::Response {
        response: EventResponse::Error(EventError::new(EventErrorCode::StaleEpoch, "old")),
    });
    response_round_trip(room_state::Response {
        room_state: room_state(),
        sequence: 12,
    });
    response_round_trip(hub_removals::Response { proposed: true });
    let message = MimiMessage::new(
        room(),
        Sender::User(alice()),
        MessageBody::Event(join_event()),
    );
    let page = inbox::Response {
        items: vec![inbox::Item {
            cursor: 4,
            message: message.encode().unwrap(),
        }],
    };
    response_round_trip(page.clone());
    assert_eq!(page.items[0].decode_message().unwrap(), message);
}

#[test]
fn bodies_are_the_documented_json() {
    let body = claim_key_packages::Request {
        room_id: room(),
        user_id: alice(),
        clients: vec![],
    }
    .body()
    .unwrap();
    assert_eq!(
        String::from_utf8(body).unwrap(),
        r#"{"room_id":"!r1:a.example","user_id":"@alice:a.example","clients":[]}"#
    );
    let body = publish_key_packages::Request {
        key_packages: vec![vec![0xff, 0, 1]],
    }
    .body()
    .unwrap();
    assert_eq!(
        String::from_utf8(body).unwrap(),
        r#"{"key_packages":["/wAB"]}"#
    );
    // A missing optional join rule is left out, and an empty prepare body is allowed.
    let body = prepare_room::Request::default().body().unwrap();
    assert_eq!(body, b"{}");
    let empty = http::Request::post("/v1/rooms/prepare")
        .body(Vec::new())
        .unwrap();
    assert_eq!(
        prepare_room::Request::try_from_http_request(&empty).unwrap(),
        prepare_room::Request::default()
    );
}

#[test]
fn paths_percent_encode_and_decode() {
    assert_eq!(
        percent_encode("!a-b_c.d~e:x.example"),
        "%21a-b_c.d~e%3Ax.example"
    );
    assert_eq!(percent_encode("ä/ ?"), "%C3%A4%2F%20%3F");
    assert_eq!(percent_decode("%21a%3Ab", false).unwrap(), "!a:b");
    assert_eq!(percent_decode("a+b", true).unwrap(), "a b");
    assert_eq!(percent_decode("a+b", false).unwrap(), "a+b");
    for bad in ["%2", "%zz", "%ff"] {
        assert_eq!(
            percent_decode(bad, false).unwrap_err().code,
            ErrorCode::Malformed,
            "{bad}"
        );
    }
    // A room path whose segment is not a room ID is malformed, not a panic.
    let request = http::Request::get("/v1/rooms/nonsense/state")
        .body(Vec::new())
        .unwrap();
    assert_eq!(
        room_state::Request::try_from_http_request(&request)
            .unwrap_err()
            .code,
        ErrorCode::Malformed
    );
}

#[test]
fn routing_finds_each_endpoint_once() {
    for metadata in ENDPOINTS {
        let path = metadata.path.replace("{room}", "%21r%3Aa.example");
        assert_eq!(find(&metadata.method, &path).unwrap().id, metadata.id);
    }
    let ids: std::collections::HashSet<_> = ENDPOINTS.iter().map(|m| m.id).collect();
    assert_eq!(ids.len(), ENDPOINTS.len());
    for (method, path) in [
        (http::Method::GET, "/v1/register"),
        (http::Method::POST, "/v1/rooms//events"),
        (http::Method::POST, "/v1/rooms/x/events/y"),
        (http::Method::GET, "/"),
    ] {
        assert_eq!(find(&method, path).unwrap_err().code, ErrorCode::NotFound);
    }
}

#[test]
fn error_codes_map_to_their_statuses() {
    let expected = [
        (ErrorCode::Malformed, 400, "malformed"),
        (ErrorCode::Unauthorized, 401, "unauthorized"),
        (ErrorCode::Forbidden, 403, "forbidden"),
        (ErrorCode::NotFound, 404, "not_found"),
        (ErrorCode::Conflict, 409, "conflict"),
        (ErrorCode::TooLarge, 413, "too_large"),
        (
            ErrorCode::UnsupportedMediaType,
            415,
            "unsupported_media_type",
        ),
        (ErrorCode::RateLimited, 429, "rate_limited"),
        (ErrorCode::Internal, 500, "internal"),
        (ErrorCode::Remote, 502, "remote"),
        (ErrorCode::Unavailable, 503, "unavailable"),
    ];
    assert_eq!(expected.len(), ErrorCode::ALL.len());
    for (code, status, name) in expected {
        let error = Error::new(code, "why");
        let response = error.to_http_response();
        assert_eq!(response.status().as_u16(), status);
        assert_eq!(
            String::from_utf8(response.body().clone()).unwrap(),
            format!(r#"{{"error":"{name}","detail":"why"}}"#)
        );
        assert_eq!(code.as_str(), name);
        assert_eq!(Error::from_http_response(&response), Some(error.clone()));
        // A success type reading an error answer gets the API error.
        assert_eq!(
            create_room::Response::try_from_http_response(&response),
            Err(ResponseError::Api(error))
        );
    }
}

#[test]
fn retry_after_is_whole_seconds() {
    let error = Error {
        retry_after: Some(Duration::from_millis(1500)),
        ..Error::new(ErrorCode::RateLimited, "slow down")
    };
    let response = error.to_http_response();
    assert_eq!(response.headers()[http::header::RETRY_AFTER], "2");
    assert_eq!(
        Error::from_http_response(&response).unwrap().retry_after,
        Some(Duration::from_secs(2))
    );
}

#[test]
fn answers_that_do_not_follow_the_api_are_typed_errors() {
    let proxy = http::Response::builder()
        .status(StatusCode::BAD_GATEWAY)
        .body(b"<html>".to_vec())
        .unwrap();
    assert_eq!(
        room_state::Response::try_from_http_response(&proxy),
        Err(ResponseError::Status {
            status: StatusCode::BAD_GATEWAY,
            body: "<html>".into()
        })
    );
    let garbage = http::Response::new(b"{}".to_vec());
    assert!(matches!(
        room_state::Response::try_from_http_response(&garbage),
        Err(ResponseError::Unexpected(_))
    ));
    // An accepted EventResponse with a 400 status is not believed.
    let mut mixed = submit_event::Response {
        response: EventResponse::Ok,
    }
    .try_into_http_response()
    .unwrap();
    *mixed.status_mut() = StatusCode::BAD_REQUEST;
    assert!(matches!(
        submit_event::Response::try_from_http_response(&mixed),
        Err(ResponseError::Unexpected(_))
    ));
    // A JSON error on the events endpoint is an API error.
    let refused = Error::new(ErrorCode::Unauthorized, "no").to_http_response();
    assert!(matches!(
        submit_event::Response::try_from_http_response(&refused),
        Err(ResponseError::Api(Error {
            code: ErrorCode::Unauthorized,
            ..
        }))
    ));
}

#[test]
fn request_bodies_that_do_not_decode_are_malformed() {
    let bad_json = http::Request::post("/v1/register")
        .body(b"{\"localpart\":".to_vec())
        .unwrap();
    assert_eq!(
        register::Request::try_from_http_request(&bad_json)
            .unwrap_err()
            .code,
        ErrorCode::Malformed
    );
    let bad_rule = http::Request::post("/v1/rooms/prepare")
        .body(br#"{"join_rule":"everyone"}"#.to_vec())
        .unwrap();
    assert_eq!(
        prepare_room::Request::try_from_http_request(&bad_rule)
            .unwrap_err()
            .code,
        ErrorCode::Malformed
    );
    let bad_event = http::Request::post("/v1/rooms/%21r1%3Aa.example/events")
        .body(vec![0xff, 0xff])
        .unwrap();
    assert_eq!(
        submit_event::Request::try_from_http_request(&bad_event)
            .unwrap_err()
            .code,
        ErrorCode::Malformed
    );
    let bad_query = http::Request::get("/v1/inbox?after=x")
        .body(Vec::new())
        .unwrap();
    assert_eq!(
        inbox::Request::try_from_http_request(&bad_query)
            .unwrap_err()
            .code,
        ErrorCode::Malformed
    );
}

#[test]
fn content_types_and_tokens() {
    let json = http::HeaderValue::from_static("application/json; charset=utf-8");
    let octets = http::HeaderValue::from_static("application/octet-stream");
    assert!(register::METADATA.accepts_content_type(Some(&json)));
    assert!(register::METADATA.accepts_content_type(None));
    assert!(!register::METADATA.accepts_content_type(Some(&octets)));
    assert!(submit_event::METADATA.accepts_content_type(Some(&octets)));
    assert!(!submit_event::METADATA.accepts_content_type(Some(&json)));
    assert!(hub_removals::METADATA.accepts_content_type(Some(&json)));
    let basic = http::Request::get("/v1/inbox")
        .header(http::header::AUTHORIZATION, "Basic eA==")
        .body(())
        .unwrap();
    assert_eq!(
        bearer_token(&basic).unwrap_err().code,
        ErrorCode::Unauthorized
    );
}

#[test]
fn names_round_trip() {
    for (rule, name) in encoding::JOIN_RULES {
        assert_eq!(join_rule_name(rule), name);
        assert_eq!(parse_join_rule(name), Some(rule));
    }
    for (query, name) in encoding::IDENTIFIER_QUERIES {
        assert_eq!(identifier_query_name(&query), name);
        assert_eq!(parse_identifier_query(name), Some(query));
    }
    assert_eq!(parse_join_rule("everyone"), None);
    let limits = inbox::Request {
        after: 0,
        limit: Some(10_000),
        wait: Some(Duration::from_secs(3600)),
    };
    assert_eq!(limits.page_limit(), MAX_INBOX_PAGE);
    assert_eq!(limits.wait_bound(), MAX_INBOX_WAIT);
}

#[test]
fn metadata_declares_what_each_endpoint_may_answer() {
    for metadata in ENDPOINTS {
        for code in COMMON_ERRORS {
            assert!(metadata.may_answer(*code), "{:?} {code}", metadata.id);
        }
        if metadata.auth == Auth::Required {
            assert!(
                metadata.may_answer(ErrorCode::Unauthorized),
                "{:?}",
                metadata.id
            );
        }
        // Bodies are declared exactly for the methods that carry one.
        if metadata.method == http::Method::GET {
            assert_eq!(metadata.content_type, None, "{:?}", metadata.id);
        }
    }
    assert!(!inbox::METADATA.may_answer(ErrorCode::Conflict));
    assert!(register::METADATA.may_answer(ErrorCode::Conflict));
}
