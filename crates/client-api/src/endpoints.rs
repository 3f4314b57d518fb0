//! The endpoints, one module each (as `docs/client-api.md` lists them): `METADATA`, a
//! `Request` and a `Response`.

/// Implement [`crate::Endpoint`] for a request whose whole content is its JSON body, at a
/// fixed path.
macro_rules! json_body_endpoint {
    ($request:ty, $response:ty) => {
        impl $crate::Endpoint for $request {
            const METADATA: $crate::Metadata = METADATA;
            type Response = $response;

            fn path_and_query(&self) -> String {
                METADATA.path.to_owned()
            }

            fn body(&self) -> Result<Vec<u8>, $crate::EncodeError> {
                $crate::endpoint::to_json(self)
            }

            fn from_parts(
                _params: &[String],
                _query: &$crate::Query,
                body: &[u8],
            ) -> Result<Self, $crate::Error> {
                $crate::endpoint::from_json(body)
            }
        }
    };
}

/// The `Request` of an endpoint that names only a room, in its path, and has no body.
macro_rules! room_request {
    ($response:ty) => {
        /// Which room.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct Request {
            /// The room.
            pub room: mimi_codec::RoomId,
        }

        impl $crate::Endpoint for Request {
            const METADATA: $crate::Metadata = METADATA;
            type Response = $response;

            fn path_and_query(&self) -> String {
                METADATA.room_path(&self.room)
            }

            fn body(&self) -> Result<Vec<u8>, $crate::EncodeError> {
                Ok(Vec::new())
            }

            fn from_parts(
                params: &[String],
                _query: &$crate::Query,
                _body: &[u8],
            ) -> Result<Self, $crate::Error> {
                Ok(Request {
                    room: super::room_param(params)?,
                })
            }
        }
    };
}

/// The room ID of a room path (its one parameter).
fn room_param(params: &[String]) -> Result<mimi_codec::RoomId, crate::Error> {
    let room = params
        .first()
        .ok_or_else(|| crate::Error::malformed("no room in the path"))?;
    room.parse()
        .map_err(|e| crate::Error::malformed(format!("room: {e}")))
}

/// `POST /v1/register`: a new user's first client, or a further client of an existing
/// user (with the bearer token of one of its clients).
pub mod register {
    use mimi_codec::{ClientId, UserId};
    use serde::{Deserialize, Serialize};

    use crate::encoding::as_string;
    use crate::endpoint::json_response;
    use crate::{Auth, EndpointId, ErrorCode, JSON, Metadata};

    /// The endpoint.
    pub const METADATA: Metadata = Metadata {
        id: EndpointId::Register,
        method: http::Method::POST,
        path: "/v1/register",
        auth: Auth::Optional,
        content_type: Some(JSON),
        errors: &[
            ErrorCode::Unauthorized,
            ErrorCode::Forbidden,
            ErrorCode::Conflict,
        ],
    };

    /// The registration.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Request {
        /// The user's localpart.
        pub localpart: String,
        /// The device name (the client ID's device part).
        pub device: String,
        /// A handle for discovery.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub handle: Option<String>,
        /// An email address for discovery.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub email: Option<String>,
        /// A phone number for discovery.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub phone: Option<String>,
        /// A display name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub display_name: Option<String>,
    }

    /// The new client.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Response {
        /// The user.
        #[serde(with = "as_string")]
        pub user_id: UserId,
        /// The new client.
        #[serde(with = "as_string")]
        pub client_id: ClientId,
        /// Its bearer token (shown once).
        pub token: String,
    }

    impl Request {
        /// Every field within its limit ([`crate::MAX_DISPLAY_NAME`], [`crate::MAX_HANDLE`],
        /// [`crate::MAX_EMAIL`], [`crate::MAX_PHONE`], [`crate::MAX_NAME_PART`]); `413`
        /// [`ErrorCode::TooLarge`] names the first one over.
        pub fn check_limits(&self) -> Result<(), crate::Error> {
            let fields = [
                ("localpart", Some(&self.localpart), crate::MAX_NAME_PART),
                ("device", Some(&self.device), crate::MAX_NAME_PART),
                ("handle", self.handle.as_ref(), crate::MAX_HANDLE),
                ("email", self.email.as_ref(), crate::MAX_EMAIL),
                ("phone", self.phone.as_ref(), crate::MAX_PHONE),
                (
                    "display_name",
                    self.display_name.as_ref(),
                    crate::MAX_DISPLAY_NAME,
                ),
            ];
            for (name, value, limit) in fields {
                if let Some(value) = value
                    && value.len() > limit
                {
                    return Err(crate::Error::new(
                        ErrorCode::TooLarge,
                        format!("{name} is over its limit of {limit} bytes"),
                    ));
                }
            }
            Ok(())
        }
    }

    json_body_endpoint!(Request, Response);
    json_response!(Response);
}

/// `POST /v1/key-packages`: publish the caller's key packages (each validated, DS-KP-1).
pub mod publish_key_packages {
    use serde::{Deserialize, Serialize};

    use crate::encoding::b64_list;
    use crate::endpoint::json_response;
    use crate::{Auth, EndpointId, ErrorCode, JSON, Metadata};

    /// The endpoint.
    pub const METADATA: Metadata = Metadata {
        id: EndpointId::PublishKeyPackages,
        method: http::Method::POST,
        path: "/v1/key-packages",
        auth: Auth::Required,
        content_type: Some(JSON),
        errors: &[ErrorCode::Unauthorized],
    };

    /// The key packages.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Request {
        /// Each a KeyPackage `MLSMessage`.
        #[serde(with = "b64_list")]
        pub key_packages: Vec<Vec<u8>>,
    }

    /// How many were stored.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Response {
        /// The count.
        pub stored: usize,
    }

    json_body_endpoint!(Request, Response);
    json_response!(Response);
}

/// `GET /v1/discover?domain=D&type=T&value=V`: identifier discovery at provider `D`.
pub mod discover {
    use mimi_codec::{IdentifierQuery, ServerName};
    use serde::{Deserialize, Serialize};

    use crate::encoding::{
        DiscoveryCode, identifier_query_name, parse_identifier_query, query_string,
    };
    use crate::endpoint::json_response;
    use crate::{Auth, EncodeError, EndpointId, Error, ErrorCode, Metadata, Query};

    /// The endpoint.
    pub const METADATA: Metadata = Metadata {
        id: EndpointId::Discover,
        method: http::Method::GET,
        path: "/v1/discover",
        auth: Auth::Required,
        content_type: None,
        errors: &[ErrorCode::Unauthorized, ErrorCode::Remote],
    };

    /// The query.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Request {
        /// The provider asked (`domain`).
        pub domain: ServerName,
        /// The identifier type (`type`; `handle` when absent).
        pub field: IdentifierQuery,
        /// The value searched (`value`).
        pub value: String,
    }

    /// The outcome.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Response {
        /// What the provider answered.
        pub code: DiscoveryCode,
        /// The user found, on success.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub user_id: Option<String>,
    }

    impl crate::Endpoint for Request {
        const METADATA: Metadata = METADATA;
        type Response = Response;

        fn path_and_query(&self) -> String {
            let query = query_string(&[
                ("domain", self.domain.to_string()),
                ("type", identifier_query_name(&self.field).to_owned()),
                ("value", self.value.clone()),
            ]);
            format!("{}{query}", METADATA.path)
        }

        fn body(&self) -> Result<Vec<u8>, EncodeError> {
            Ok(Vec::new())
        }

        fn from_parts(_params: &[String], query: &Query, _body: &[u8]) -> Result<Self, Error> {
            let domain = query
                .required("domain")?
                .parse()
                .map_err(|e| Error::malformed(format!("domain: {e}")))?;
            let field = match query.get("type") {
                None => IdentifierQuery::Handle,
                Some(name) => parse_identifier_query(name)
                    .ok_or_else(|| Error::malformed(format!("unknown identifier type {name:?}")))?,
            };
            Ok(Request {
                domain,
                field,
                value: query.required("value")?.to_owned(),
            })
        }
    }

    json_response!(Response);
}

/// `POST /v1/key-packages/claim`: `ds.fetch_key_packages` at the user's provider.
pub mod claim_key_packages {
    use mimi_codec::{ClientId, RoomId, UserId};
    use serde::{Deserialize, Serialize};

    use crate::encoding::{as_string, as_string_list, b64};
    use crate::endpoint::json_response;
    use crate::{Auth, EndpointId, ErrorCode, JSON, Metadata};

    /// The endpoint.
    pub const METADATA: Metadata = Metadata {
        id: EndpointId::ClaimKeyPackages,
        method: http::Method::POST,
        path: "/v1/key-packages/claim",
        auth: Auth::Required,
        content_type: Some(JSON),
        errors: &[
            ErrorCode::Unauthorized,
            ErrorCode::Forbidden,
            ErrorCode::NotFound,
            ErrorCode::Remote,
        ],
    };

    /// Whose key packages, for which room.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Request {
        /// The room the packages are for.
        #[serde(with = "as_string")]
        pub room_id: RoomId,
        /// The user.
        #[serde(with = "as_string")]
        pub user_id: UserId,
        /// Which of the user's clients (empty: all).
        #[serde(default, with = "as_string_list")]
        pub clients: Vec<ClientId>,
    }

    /// One claimed key package.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct ClaimedKeyPackage {
        /// The client it belongs to.
        #[serde(with = "as_string")]
        pub client_id: ClientId,
        /// The KeyPackage `MLSMessage`.
        #[serde(with = "b64")]
        pub key_package: Vec<u8>,
    }

    /// One package per client.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Response {
        /// The packages.
        pub key_packages: Vec<ClaimedKeyPackage>,
    }

    json_body_endpoint!(Request, Response);
    json_response!(Response);
}

/// `POST /v1/rooms/prepare`: a fresh room ID, its initial state and the hub's external
/// sender, for the client to create the group with.
pub mod prepare_room {
    use mimi_codec::{JoinRule, RoomId, RoomState};
    use serde::{Deserialize, Serialize};

    use crate::encoding::{as_string, b64, join_rule_opt, wire_b64};
    use crate::endpoint::{from_json, json_response, to_json};
    use crate::{Auth, EncodeError, EndpointId, Error, ErrorCode, JSON, Metadata, Query};

    /// The endpoint.
    pub const METADATA: Metadata = Metadata {
        id: EndpointId::PrepareRoom,
        method: http::Method::POST,
        path: "/v1/rooms/prepare",
        auth: Auth::Required,
        content_type: Some(JSON),
        errors: &[ErrorCode::Unauthorized],
    };

    /// The room's join rule (an empty body: members only).
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Request {
        /// The join rule (absent: members only).
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            with = "join_rule_opt"
        )]
        pub join_rule: Option<JoinRule>,
    }

    /// The prepared room.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Response {
        /// The new room's ID.
        #[serde(with = "as_string")]
        pub room_id: RoomId,
        /// Its initial state.
        #[serde(with = "wire_b64")]
        pub room_state: RoomState,
        /// The hub's `ExternalSender`, TLS-encoded.
        #[serde(with = "b64")]
        pub hub_external_sender: Vec<u8>,
        /// The hub's `FrankingAgentData` (draft-ietf-mimi-protocol-06 §5.4.1), TLS-encoded: a
        /// -06 room's creator puts it in the GroupContext so the hub franks its messages.
        /// Absent from a provider that does not frank.
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            with = "crate::encoding::opt_b64"
        )]
        pub franking_agent: Option<Vec<u8>>,
    }

    impl crate::Endpoint for Request {
        const METADATA: Metadata = METADATA;
        type Response = Response;

        fn path_and_query(&self) -> String {
            METADATA.path.to_owned()
        }

        fn body(&self) -> Result<Vec<u8>, EncodeError> {
            to_json(self)
        }

        fn from_parts(_params: &[String], _query: &Query, body: &[u8]) -> Result<Self, Error> {
            if body.is_empty() {
                return Ok(Request::default());
            }
            from_json(body)
        }
    }

    json_response!(Response);
}

/// `POST /v1/rooms`: the group of a prepared room (DS-CR-1).
pub mod create_room {
    use mimi_codec::{JoinRule, RoomId};
    use serde::{Deserialize, Serialize};

    use crate::encoding::{as_string, b64, join_rule_opt};
    use crate::endpoint::json_response;
    use crate::{Auth, EndpointId, ErrorCode, JSON, Metadata};

    /// The endpoint.
    pub const METADATA: Metadata = Metadata {
        id: EndpointId::CreateRoom,
        method: http::Method::POST,
        path: "/v1/rooms",
        auth: Auth::Required,
        content_type: Some(JSON),
        errors: &[
            ErrorCode::Unauthorized,
            ErrorCode::Forbidden,
            ErrorCode::Conflict,
        ],
    };

    /// The prepared room's group.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Request {
        /// The prepared room.
        #[serde(with = "as_string")]
        pub room_id: RoomId,
        /// Its join rule, as prepared (absent: members only).
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            with = "join_rule_opt"
        )]
        pub join_rule: Option<JoinRule>,
        /// The group's `GroupInfo`.
        #[serde(with = "b64")]
        pub group_info: Vec<u8>,
        /// The group's ratchet tree.
        #[serde(with = "b64")]
        pub ratchet_tree: Vec<u8>,
    }

    /// The room's log position after creation.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Response {
        /// The sequence number of `ds.create_group` (1).
        pub sequence: u64,
    }

    json_body_endpoint!(Request, Response);
    json_response!(Response);
}

/// `POST /v1/rooms/{room}/events`: a TLS-encoded MIMI `Event` from the caller's user, sent
/// to the room's hub; the answer is the hub's TLS-encoded `EventResponse` (`200` accepted,
/// `400` refused), or a JSON error when it could not be asked.
pub mod submit_event {
    use http::StatusCode;
    use mimi_codec::{Event, EventResponse, RoomId, Wire};

    use crate::endpoint::{is_content_type, with_status};
    use crate::error::error_of;
    use crate::{
        Auth, EncodeError, EndpointId, EndpointResponse, Error, ErrorCode, Metadata, OCTET_STREAM,
        Query, ResponseError,
    };

    /// The endpoint.
    pub const METADATA: Metadata = Metadata {
        id: EndpointId::SubmitEvent,
        method: http::Method::POST,
        path: "/v1/rooms/{room}/events",
        auth: Auth::Required,
        content_type: Some(OCTET_STREAM),
        errors: &[
            ErrorCode::Unauthorized,
            ErrorCode::Forbidden,
            ErrorCode::NotFound,
            ErrorCode::Remote,
        ],
    };

    /// The event.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Request {
        /// The room.
        pub room: RoomId,
        /// The event.
        pub event: Event,
    }

    /// The hub's answer.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Response {
        /// Accepted (any variant but `Error`, status `200`) or refused (`Error`, `400`).
        pub response: EventResponse,
    }

    impl crate::Endpoint for Request {
        const METADATA: Metadata = METADATA;
        type Response = Response;

        fn path_and_query(&self) -> String {
            METADATA.room_path(&self.room)
        }

        fn body(&self) -> Result<Vec<u8>, EncodeError> {
            self.event.encode().map_err(|e| EncodeError(e.to_string()))
        }

        fn from_parts(params: &[String], _query: &Query, body: &[u8]) -> Result<Self, Error> {
            let room = super::room_param(params)?;
            let event = Event::decode(body).map_err(|e| {
                let code = match e.error_code() {
                    mimi_codec::ErrorCode::TooLarge => ErrorCode::TooLarge,
                    _ => ErrorCode::Malformed,
                };
                Error::new(code, format!("event: {e}"))
            })?;
            Ok(Request { room, event })
        }
    }

    impl EndpointResponse for Response {
        fn try_into_http_response(&self) -> Result<http::Response<Vec<u8>>, EncodeError> {
            let status = match self.response {
                EventResponse::Error(_) => StatusCode::BAD_REQUEST,
                _ => StatusCode::OK,
            };
            let body = self
                .response
                .encode()
                .map_err(|e| EncodeError(e.to_string()))?;
            Ok(with_status(status, OCTET_STREAM, body))
        }

        fn try_from_http_response<B: AsRef<[u8]>>(
            response: &http::Response<B>,
        ) -> Result<Self, ResponseError> {
            let content_type = response.headers().get(http::header::CONTENT_TYPE);
            if !is_content_type(content_type, OCTET_STREAM) {
                return Err(error_of(response));
            }
            let decoded = EventResponse::decode(response.body().as_ref())
                .map_err(|_| ResponseError::Unexpected("EventResponse does not decode"))?;
            let refused = matches!(decoded, EventResponse::Error(_));
            match (response.status(), refused) {
                (StatusCode::OK, false) | (StatusCode::BAD_REQUEST, true) => {
                    Ok(Response { response: decoded })
                }
                _ => Err(ResponseError::Unexpected(
                    "the EventResponse does not match the status",
                )),
            }
        }
    }
}

/// `GET /v1/rooms/{room}/state`: this provider's copy of the room state.
pub mod room_state {
    use mimi_codec::RoomState;
    use serde::{Deserialize, Serialize};

    use crate::encoding::wire_b64;
    use crate::endpoint::json_response;
    use crate::{Auth, EndpointId, ErrorCode, Metadata};

    /// The endpoint.
    pub const METADATA: Metadata = Metadata {
        id: EndpointId::RoomState,
        method: http::Method::GET,
        path: "/v1/rooms/{room}/state",
        auth: Auth::Required,
        content_type: None,
        errors: &[
            ErrorCode::Unauthorized,
            ErrorCode::Forbidden,
            ErrorCode::NotFound,
        ],
    };

    /// The state.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Response {
        /// The room state.
        #[serde(with = "wire_b64")]
        pub room_state: RoomState,
        /// The latest sequence number of the room's log here.
        pub sequence: u64,
    }

    room_request!(Response);
    json_response!(Response);
}

/// `POST /v1/rooms/{room}/hub-removals`: at the room's hub, propose the removal of every
/// client of users who left or were removed.
pub mod hub_removals {
    use serde::{Deserialize, Serialize};

    use crate::endpoint::json_response;
    use crate::{Auth, EndpointId, ErrorCode, Metadata};

    /// The endpoint.
    pub const METADATA: Metadata = Metadata {
        id: EndpointId::HubRemovals,
        method: http::Method::POST,
        path: "/v1/rooms/{room}/hub-removals",
        auth: Auth::Required,
        content_type: None,
        errors: &[
            ErrorCode::Unauthorized,
            ErrorCode::Forbidden,
            ErrorCode::NotFound,
            ErrorCode::Conflict,
        ],
    };

    /// Whether anything was proposed.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Response {
        /// `true` when the hub proposed at least one removal.
        pub proposed: bool,
    }

    room_request!(Response);
    json_response!(Response);
}

/// `GET /v1/inbox?after=N&limit=M&wait_ms=W`: what was fanned out to the caller's client,
/// after cursor `N`, long polling up to `W` ms.
pub mod inbox {
    use std::time::Duration;

    use mimi_codec::{CodecError, MimiMessage, Wire};
    use serde::{Deserialize, Serialize};

    use crate::encoding::{b64, query_string};
    use crate::endpoint::json_response;
    use crate::{
        Auth, EncodeError, EndpointId, Error, ErrorCode, MAX_INBOX_PAGE, MAX_INBOX_WAIT, Metadata,
        Query,
    };

    /// The endpoint.
    pub const METADATA: Metadata = Metadata {
        id: EndpointId::Inbox,
        method: http::Method::GET,
        path: "/v1/inbox",
        auth: Auth::Required,
        content_type: None,
        errors: &[ErrorCode::Unauthorized],
    };

    /// Which page.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct Request {
        /// Items after this cursor (0: from the start).
        pub after: u64,
        /// At most this many (absent: [`MAX_INBOX_PAGE`]; more is cut to it).
        pub limit: Option<usize>,
        /// Wait this long for a first item (absent: answer at once; more than
        /// [`MAX_INBOX_WAIT`] is cut to it).
        pub wait: Option<Duration>,
    }

    impl Request {
        /// The page size the server serves.
        pub fn page_limit(&self) -> usize {
            self.limit.unwrap_or(MAX_INBOX_PAGE).min(MAX_INBOX_PAGE)
        }

        /// How long the server waits.
        pub fn wait_bound(&self) -> Duration {
            self.wait.unwrap_or(Duration::ZERO).min(MAX_INBOX_WAIT)
        }
    }

    /// One item.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Item {
        /// Its cursor.
        pub cursor: u64,
        /// The `MIMIMessage`, TLS-encoded.
        #[serde(with = "b64")]
        pub message: Vec<u8>,
    }

    impl Item {
        /// The message, decoded.
        pub fn decode_message(&self) -> Result<MimiMessage, CodecError> {
            MimiMessage::decode(&self.message)
        }
    }

    /// The page, in cursor order.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Response {
        /// The items.
        pub items: Vec<Item>,
    }

    impl crate::Endpoint for Request {
        const METADATA: Metadata = METADATA;
        type Response = Response;

        fn path_and_query(&self) -> String {
            let mut pairs = vec![("after", self.after.to_string())];
            if let Some(limit) = self.limit {
                pairs.push(("limit", limit.to_string()));
            }
            if let Some(wait) = self.wait {
                pairs.push(("wait_ms", wait.as_millis().to_string()));
            }
            format!("{}{}", METADATA.path, query_string(&pairs))
        }

        fn body(&self) -> Result<Vec<u8>, EncodeError> {
            Ok(Vec::new())
        }

        fn from_parts(_params: &[String], query: &Query, _body: &[u8]) -> Result<Self, Error> {
            Ok(Request {
                after: query.parsed("after")?.unwrap_or(0),
                limit: query.parsed("limit")?,
                wait: query.parsed::<u64>("wait_ms")?.map(Duration::from_millis),
            })
        }
    }

    json_response!(Response);
}

/// `POST /v1/report-abuse`: the caller reports messages of a -06 room (draft-ietf-mimi-
/// protocol-06 §5.9). The caller's provider checks each message's frank against the room's
/// `franking_agent` and sends the `AbuseReport` to the room's hub, which checks its own
/// `server_frank` and keeps the report.
pub mod report_abuse {
    use mimi_codec::v06::{Frank, FrankingAgentData, IdentifierUri};
    use serde::{Deserialize, Serialize};

    use crate::encoding::{as_string, b64, wire_b64};
    use crate::endpoint::json_response;
    use crate::{Auth, EndpointId, ErrorCode, JSON, Metadata};

    /// The endpoint.
    pub const METADATA: Metadata = Metadata {
        id: EndpointId::ReportAbuse,
        method: http::Method::POST,
        path: "/v1/report-abuse",
        auth: Auth::Required,
        content_type: Some(JSON),
        errors: &[
            ErrorCode::Unauthorized,
            ErrorCode::Forbidden,
            ErrorCode::Remote,
        ],
    };

    /// One reported message, as the reporter's client decrypted and stored it.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct ReportedMessage {
        /// The decrypted application data (a MIMI content message).
        #[serde(with = "b64")]
        pub content: Vec<u8>,
        /// The hub's acceptance time it came with (ms since the UNIX epoch).
        pub accepted_timestamp: u64,
        /// The hub's `Frank` it came with, TLS-encoded.
        #[serde(with = "wire_b64")]
        pub frank: Frank,
    }

    /// The report.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Request {
        /// The room (`mimi://<hub>/r/<id>`).
        #[serde(with = "as_string")]
        pub room: IdentifierUri,
        /// The alleged abuser (every message's sender).
        #[serde(with = "as_string")]
        pub alleged_abuser: IdentifierUri,
        /// `AbuseType` (the -06 registry has only `reserved(0)`).
        #[serde(default)]
        pub reason: u8,
        /// A human-readable note (may be empty).
        #[serde(default)]
        pub note: String,
        /// Leave `reportingUser` out of the report (the provider still knows the caller).
        #[serde(default)]
        pub anonymous: bool,
        /// The messages.
        pub messages: Vec<ReportedMessage>,
        /// The room's `franking_agent` GroupContext component, TLS-encoded, as the caller's
        /// client reads it from the group.
        #[serde(with = "wire_b64")]
        pub franking_agent: FrankingAgentData,
    }

    /// What the hub answered.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Response {
        /// How many messages the report carried.
        pub messages: usize,
    }

    json_body_endpoint!(Request, Response);
    json_response!(Response);
}

/// `POST /v1/v06/rooms`: create a -06 room (draft-ietf-mimi-protocol-06) whose hub is the
/// caller's provider, from the creator's MLS group (group ID = room URI).
pub mod create_room06 {
    use serde::{Deserialize, Serialize};

    use crate::encoding::b64;
    use crate::endpoint::json_response;
    use crate::{Auth, EndpointId, ErrorCode, JSON, Metadata};

    /// The endpoint.
    pub const METADATA: Metadata = Metadata {
        id: EndpointId::CreateRoom06,
        method: http::Method::POST,
        path: "/v1/v06/rooms",
        auth: Auth::Required,
        content_type: Some(JSON),
        errors: &[ErrorCode::Unauthorized, ErrorCode::Conflict],
    };

    /// The room and its group.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Request {
        /// The room URI (`mimi://<provider>/r/<id>`).
        pub room: String,
        /// The group's `GroupInfo` (an MLSMessage with the ratchet tree and ExternalPub).
        #[serde(with = "b64")]
        pub group_info: Vec<u8>,
        /// The group's ratchet tree.
        #[serde(with = "b64")]
        pub ratchet_tree: Vec<u8>,
    }

    /// The room's epoch after creation (0).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Response {
        /// The epoch.
        pub epoch: u64,
    }

    json_body_endpoint!(Request, Response);
    json_response!(Response);
}

/// `POST /v1/v06/relay`: a -06 request of the caller (`update`, `submitMessage` or
/// `keyMaterial`, its TLS-encoded body) that the caller's provider sends on as the source
/// provider: to the room's hub, or for `keyMaterial` without a room to the target's
/// provider. The answer is the peer's status and body.
pub mod relay06 {
    use serde::{Deserialize, Serialize};

    use crate::encoding::b64;
    use crate::endpoint::json_response;
    use crate::{Auth, EndpointId, ErrorCode, JSON, Metadata};

    /// The endpoint.
    pub const METADATA: Metadata = Metadata {
        id: EndpointId::Relay06,
        method: http::Method::POST,
        path: "/v1/v06/relay",
        auth: Auth::Required,
        content_type: Some(JSON),
        errors: &[
            ErrorCode::Unauthorized,
            ErrorCode::Forbidden,
            ErrorCode::Remote,
        ],
    };

    /// The request to send on.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Request {
        /// `update`, `submitMessage` or `keyMaterial`.
        pub endpoint: String,
        /// The path variable: the room URI, or the target user's URI for `keyMaterial`.
        pub variable: String,
        /// The TLS-encoded -06 body.
        #[serde(with = "b64")]
        pub body: Vec<u8>,
    }

    /// The peer's answer.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Response {
        /// Its HTTP status.
        pub status: u16,
        /// Its body.
        #[serde(with = "b64")]
        pub body: Vec<u8>,
    }

    json_body_endpoint!(Request, Response);
    json_response!(Response);
}

/// `POST /v1/v06/messages`: the -06 `FanoutMessage`s of a room that the caller's provider
/// holds (as the room's hub, or received with `notify`), after a position.
pub mod messages06 {
    use serde::{Deserialize, Serialize};

    use crate::encoding::b64_list;
    use crate::endpoint::json_response;
    use crate::{Auth, EndpointId, ErrorCode, JSON, Metadata};

    /// The endpoint.
    pub const METADATA: Metadata = Metadata {
        id: EndpointId::Messages06,
        method: http::Method::POST,
        path: "/v1/v06/messages",
        auth: Auth::Required,
        content_type: Some(JSON),
        errors: &[ErrorCode::Unauthorized],
    };

    /// Which room, from where.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Request {
        /// The room URI.
        pub room: String,
        /// Skip this many messages.
        pub after: u64,
    }

    /// The messages after `after`, in the hub's order.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Response {
        /// Each a TLS-encoded `FanoutMessage`.
        #[serde(with = "b64_list")]
        pub messages: Vec<Vec<u8>>,
    }

    json_body_endpoint!(Request, Response);
    json_response!(Response);
}
