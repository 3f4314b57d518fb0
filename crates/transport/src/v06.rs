//! The second version's endpoints (draft-ietf-mimi-protocol-06) on the federation listener.
//!
//! A provider serves both versions on one mutual-TLS listener: [`crate::server::serve`]
//! hands a path this module recognises ([`route06`]) to [`handle06`]; everything else stays
//! with the first version. This module owns the -06 transport section (§4.1 of the draft):
//!
//! - the directory, `GET /.well-known/mimi-protocol-directory` (JSON, `v06::Directory`), whose
//!   templates name this server's -06 endpoints under [`V06_PREFIX`];
//! - `Host`: the target provider; its host part (the port is ignored) must be this server's
//!   name, else `421 Misdirected Request`;
//! - `From`: `mimi@<source provider>`, required on every -06 `POST`; the domain must be one of
//!   the names the client certificate authenticates (RFC 6125), else `403`;
//! - each endpoint's body decoded with `mimi_codec::v06` ([`Body06`]); a body that does not
//!   decode is a typed `400` (`413` for a field over its limit) and the connection stays up.
//!
//! Refusals carry `text/plain` `<kind>: <detail>` ([`Refusal06`]): the draft defines no error
//! body for these cases (`docs/spec-decisions.md`, "-06 error bodies").

use async_trait::async_trait;
use bytes::Bytes;
use hyper::{HeaderMap, Method, StatusCode};
use mimi_codec::v06::{
    AbuseReport, ConsentEntry, GroupInfoRequest, IdentifierRequest, KeyMaterialRequest, NotifyBody,
    SubmitMessageRequest, UpdateRequest,
};
use mimi_codec::{CodecError, ServerName, Wire};

use crate::tls::PeerNames;

/// Path of the -06 directory (§5.1).
pub const DIRECTORY_PATH: &str = "/.well-known/mimi-protocol-directory";
/// Path prefix of this server's -06 endpoints (`/mimi/v06/<endpoint>/<variable>`).
pub const V06_PREFIX: &str = "/mimi/v06";
/// The fixed local part of the `From` header (`mimi@a.example`).
pub const FROM_LOCAL_PART: &str = "mimi";
/// The content type of the directory.
pub const JSON: &str = "application/json";
/// Longest path variable accepted, after percent-decoding (a URI is at most 1024 bytes).
pub const MAX_PATH_VARIABLE_LEN: usize = 1024;

/// A -06 endpoint (each `POST /<name>/{variable}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint06 {
    /// `keyMaterial/{targetUser}`.
    KeyMaterial,
    /// `update/{roomId}`.
    Update,
    /// `notify/{roomId}`.
    Notify,
    /// `submitMessage/{roomId}`.
    SubmitMessage,
    /// `groupInfo/{roomId}`.
    GroupInfo,
    /// `requestConsent/{targetDomain}`.
    RequestConsent,
    /// `updateConsent/{requesterDomain}`.
    UpdateConsent,
    /// `identifierQuery/{domain}`.
    IdentifierQuery,
    /// `reportAbuse/{roomId}`.
    ReportAbuse,
}

impl Endpoint06 {
    /// Every endpoint.
    pub const ALL: [Endpoint06; 9] = [
        Endpoint06::KeyMaterial,
        Endpoint06::Update,
        Endpoint06::Notify,
        Endpoint06::SubmitMessage,
        Endpoint06::GroupInfo,
        Endpoint06::RequestConsent,
        Endpoint06::UpdateConsent,
        Endpoint06::IdentifierQuery,
        Endpoint06::ReportAbuse,
    ];

    /// The endpoint's name in paths and in the directory.
    pub fn name(self) -> &'static str {
        match self {
            Endpoint06::KeyMaterial => "keyMaterial",
            Endpoint06::Update => "update",
            Endpoint06::Notify => "notify",
            Endpoint06::SubmitMessage => "submitMessage",
            Endpoint06::GroupInfo => "groupInfo",
            Endpoint06::RequestConsent => "requestConsent",
            Endpoint06::UpdateConsent => "updateConsent",
            Endpoint06::IdentifierQuery => "identifierQuery",
            Endpoint06::ReportAbuse => "reportAbuse",
        }
    }

    /// This server's path of the endpoint for `variable` (percent-encoded as one segment).
    pub fn path(self, variable: &str) -> String {
        let mut out = format!("{V06_PREFIX}/{}/", self.name());
        for b in variable.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    }
}

/// A -06 route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route06 {
    /// `GET /.well-known/mimi-protocol-directory`.
    Directory,
    /// `POST <V06_PREFIX>/<endpoint>/<variable>`, the variable percent-decoded.
    Endpoint(Endpoint06, String),
}

/// Why a -06 request was refused before its handler saw it, or by its handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal06 {
    /// The HTTP status.
    pub status: StatusCode,
    /// A short machine-readable kind (`malformed`, `too_large`, `unsupported_protocol`,
    /// `misdirected`, `from`, `not_found`, `not_allowed`, `unavailable`, …).
    pub kind: &'static str,
    /// Human-readable detail.
    pub detail: String,
    /// For a `405`: the method the resource takes (the `Allow` header).
    pub allow: Option<&'static str>,
}

impl Refusal06 {
    /// A refusal.
    pub fn new(status: StatusCode, kind: &'static str, detail: impl Into<String>) -> Self {
        Refusal06 {
            status,
            kind,
            detail: detail.into(),
            allow: None,
        }
    }

    /// A `405`: the resource takes only `allow`.
    pub fn method(allow: &'static str, detail: impl Into<String>) -> Self {
        Refusal06 {
            allow: Some(allow),
            ..Refusal06::new(StatusCode::METHOD_NOT_ALLOWED, "method", detail)
        }
    }

    /// The `text/plain` body: `<kind>: <detail>`.
    pub fn body(&self) -> Vec<u8> {
        format!("{}: {}", self.kind, self.detail).into_bytes()
    }

    /// Parse a refusal body (the client side).
    pub fn kind_of(body: &[u8]) -> Option<&str> {
        std::str::from_utf8(body).ok()?.split(':').next()
    }

    /// A body that does not decode: 413 for a field over its limit, else 400 (the kind
    /// says `unsupported_protocol` for a `Protocol` other than `mls10`).
    ///
    /// Rule V06-TR-3 (docs/protocol-coverage.md).
    pub fn malformed(e: &CodecError) -> Self {
        match e {
            CodecError::TooLong { .. } => Refusal06::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("body does not decode: {e}"),
            ),
            CodecError::UnsupportedProtocol(_) => Refusal06::new(
                StatusCode::BAD_REQUEST,
                "unsupported_protocol",
                format!("body does not decode: {e}"),
            ),
            _ => Refusal06::new(
                StatusCode::BAD_REQUEST,
                "malformed",
                format!("body does not decode: {e}"),
            ),
        }
    }
}

/// Match a method and path to a -06 route. `None`: not a -06 path (the first version's
/// routes apply).
///
/// Rule V06-TR-1 (docs/protocol-coverage.md).
pub fn route06(method: &Method, path: &str) -> Option<Result<Route06, Refusal06>> {
    if path == DIRECTORY_PATH {
        return Some(if method == Method::GET {
            Ok(Route06::Directory)
        } else {
            Err(Refusal06::method("GET", "the directory is read with GET"))
        });
    }
    let rest = path.strip_prefix(V06_PREFIX)?.strip_prefix('/')?;
    let not_found = || {
        Some(Err(Refusal06::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such -06 endpoint",
        )))
    };
    let Some((name, variable)) = rest.split_once('/') else {
        return not_found();
    };
    let Some(endpoint) = Endpoint06::ALL.into_iter().find(|e| e.name() == name) else {
        return not_found();
    };
    if variable.is_empty() || variable.contains('/') {
        return not_found();
    }
    if method != Method::POST {
        return Some(Err(Refusal06::method("POST", "-06 endpoints are POST")));
    }
    Some(match percent_decode(variable) {
        Some(v) => Ok(Route06::Endpoint(endpoint, v)),
        None => Err(Refusal06::new(
            StatusCode::BAD_REQUEST,
            "malformed",
            "the path variable is not a percent-encoded UTF-8 string",
        )),
    })
}

/// Percent-decode one path segment (RFC 3986); `None` for a bad escape, non-UTF-8 or a
/// result over [`MAX_PATH_VARIABLE_LEN`].
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
        if out.len() > MAX_PATH_VARIABLE_LEN {
            return None;
        }
    }
    String::from_utf8(out).ok()
}

/// Check `Host` (the target provider, port ignored) against this server's name.
///
/// Rule V06-TR-2 (docs/protocol-coverage.md).
pub fn check_host(headers: &HeaderMap, own: &ServerName) -> Result<(), Refusal06> {
    let host = headers
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .ok_or_else(|| Refusal06::new(StatusCode::BAD_REQUEST, "host", "no Host header"))?;
    // A host name has no ':'; an IP-literal is not a provider name.
    let name = host.rsplit_once(':').map_or(host, |(name, _port)| name);
    if name.eq_ignore_ascii_case(own.as_str()) {
        Ok(())
    } else {
        Err(Refusal06::new(
            StatusCode::MISDIRECTED_REQUEST,
            "misdirected",
            format!("Host {host} is not {own}"),
        ))
    }
}

/// The source provider named by `From: mimi@<domain>`, which must be one of the names the
/// client certificate authenticates.
///
/// Rule V06-TR-2 (docs/protocol-coverage.md).
pub fn check_from(headers: &HeaderMap, peer: &PeerNames) -> Result<ServerName, Refusal06> {
    let refuse = |detail: String| Refusal06::new(StatusCode::FORBIDDEN, "from", detail);
    let from = headers
        .get(hyper::header::FROM)
        .and_then(|h| h.to_str().ok())
        .ok_or_else(|| refuse("a From header mimi@<provider> is required".into()))?;
    let (local, domain) = from
        .trim()
        .split_once('@')
        .ok_or_else(|| refuse(format!("From {from:?} is not an addr-spec")))?;
    if local != FROM_LOCAL_PART {
        return Err(refuse(format!(
            "From's local part must be {FROM_LOCAL_PART}"
        )));
    }
    let domain: ServerName = domain
        .parse()
        .map_err(|e| refuse(format!("From's domain: {e}")))?;
    if peer.authenticates(&domain) {
        Ok(domain)
    } else {
        Err(refuse(format!(
            "From names {domain}, which the client certificate does not authenticate"
        )))
    }
}

/// A decoded -06 request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body06 {
    /// `keyMaterial`.
    KeyMaterial(KeyMaterialRequest),
    /// `update`.
    Update(UpdateRequest),
    /// `notify`: one or more `FanoutMessage`s.
    Notify(NotifyBody),
    /// `submitMessage`.
    SubmitMessage(SubmitMessageRequest),
    /// `groupInfo`.
    GroupInfo(GroupInfoRequest),
    /// `requestConsent` / `updateConsent`.
    Consent(ConsentEntry),
    /// `identifierQuery`.
    IdentifierQuery(IdentifierRequest),
    /// `reportAbuse`.
    ReportAbuse(AbuseReport),
}

impl Body06 {
    /// Decode the body of `endpoint`, strictly.
    ///
    /// Rule V06-TR-3 (docs/protocol-coverage.md).
    pub fn decode(endpoint: Endpoint06, bytes: &[u8]) -> Result<Body06, CodecError> {
        Ok(match endpoint {
            Endpoint06::KeyMaterial => Body06::KeyMaterial(KeyMaterialRequest::decode(bytes)?),
            Endpoint06::Update => Body06::Update(UpdateRequest::decode(bytes)?),
            Endpoint06::Notify => Body06::Notify(NotifyBody::decode(bytes)?),
            Endpoint06::SubmitMessage => {
                Body06::SubmitMessage(SubmitMessageRequest::decode(bytes)?)
            }
            Endpoint06::GroupInfo => Body06::GroupInfo(GroupInfoRequest::decode(bytes)?),
            Endpoint06::RequestConsent | Endpoint06::UpdateConsent => {
                Body06::Consent(ConsentEntry::decode(bytes)?)
            }
            Endpoint06::IdentifierQuery => {
                Body06::IdentifierQuery(IdentifierRequest::decode(bytes)?)
            }
            Endpoint06::ReportAbuse => Body06::ReportAbuse(AbuseReport::decode(bytes)?),
        })
    }
}

/// An authenticated, decoded -06 request.
#[derive(Debug, Clone)]
pub struct Request06 {
    /// The endpoint.
    pub endpoint: Endpoint06,
    /// The path variable, percent-decoded (a user or room URI, or a domain).
    pub variable: String,
    /// The source provider (`From`, authenticated by the client certificate).
    pub from: ServerName,
    /// The decoded body.
    pub body: Body06,
    /// The body's bytes as received.
    pub raw: Bytes,
}

/// A -06 handler's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply06 {
    /// `200` with this TLS-encoded response body.
    Ok(Vec<u8>),
    /// `201 Accepted`-style receipt (the draft's "201 Accepted"), empty body.
    Created,
    /// A refusal.
    Refused(Refusal06),
}

/// What the layer above does with -06 requests.
#[async_trait]
pub trait Handler06: Send + Sync {
    /// Whether this server serves `endpoint` (the directory lists only those).
    fn serves(&self, endpoint: Endpoint06) -> bool;
    /// One authenticated, decoded -06 request.
    async fn handle06(&self, request: Request06) -> Reply06;
}

/// Where the -06 endpoints of `server` are: the directory this server publishes, listing
/// the endpoints for which `serves` is true.
///
/// Rule V06-TR-1 (docs/protocol-coverage.md).
pub fn directory_for(
    server: &ServerName,
    serves: impl Fn(Endpoint06) -> bool,
) -> mimi_codec::v06::Directory {
    let keep = |e: Endpoint06, t: &mut Option<mimi_codec::v06::EndpointTemplate>| {
        if !serves(e) {
            *t = None;
        }
    };
    let mut dir = full_directory(server);
    keep(Endpoint06::KeyMaterial, &mut dir.key_material);
    keep(Endpoint06::Update, &mut dir.update);
    keep(Endpoint06::Notify, &mut dir.notify);
    keep(Endpoint06::SubmitMessage, &mut dir.submit_message);
    keep(Endpoint06::GroupInfo, &mut dir.group_info);
    keep(Endpoint06::RequestConsent, &mut dir.request_consent);
    keep(Endpoint06::UpdateConsent, &mut dir.update_consent);
    keep(Endpoint06::IdentifierQuery, &mut dir.identifier_query);
    keep(Endpoint06::ReportAbuse, &mut dir.report_abuse);
    dir
}

fn full_directory(server: &ServerName) -> mimi_codec::v06::Directory {
    // Invariant: a server name and the fixed prefix always form valid templates; were it
    // not so, nothing would be offered.
    mimi_codec::v06::Directory::for_base(&format!("https://{server}{V06_PREFIX}")).unwrap_or(
        mimi_codec::v06::Directory {
            key_material: None,
            update: None,
            notify: None,
            submit_message: None,
            group_info: None,
            request_consent: None,
            update_consent: None,
            identifier_query: None,
            report_abuse: None,
            proxy_download: None,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_the_directory_and_every_endpoint() {
        assert_eq!(
            route06(&Method::GET, DIRECTORY_PATH),
            Some(Ok(Route06::Directory))
        );
        for e in Endpoint06::ALL {
            let path = e.path("mimi://a.example/r/club house");
            assert_eq!(
                route06(&Method::POST, &path),
                Some(Ok(Route06::Endpoint(
                    e,
                    "mimi://a.example/r/club house".into()
                ))),
                "{path}"
            );
            let refusal = route06(&Method::GET, &path).unwrap().unwrap_err();
            assert_eq!(
                (refusal.status, refusal.allow),
                (StatusCode::METHOD_NOT_ALLOWED, Some("POST"))
            );
        }
        assert_eq!(
            route06(&Method::POST, DIRECTORY_PATH)
                .unwrap()
                .unwrap_err()
                .allow,
            Some("GET")
        );
        assert_eq!(route06(&Method::POST, "/send"), None);
        for bad in [
            "/mimi/v06/nope/x",
            "/mimi/v06/notify/",
            "/mimi/v06/notify/a/b",
        ] {
            assert_eq!(
                route06(&Method::POST, bad).unwrap().unwrap_err().status,
                StatusCode::NOT_FOUND,
                "{bad}"
            );
        }
        assert_eq!(
            route06(&Method::POST, "/mimi/v06/notify/%zz")
                .unwrap()
                .unwrap_err()
                .kind,
            "malformed"
        );
    }

    #[test]
    fn the_directory_points_at_the_prefix() {
        let dir = directory_for(&"a.example".parse().unwrap(), |_| true);
        assert!(
            directory_for(&"a.example".parse().unwrap(), |_| false)
                .key_material
                .is_none()
        );
        let t = dir.key_material.unwrap();
        assert_eq!(
            t.expand("mimi://a.example/u/alice"),
            "https://a.example/mimi/v06/keyMaterial/mimi%3A%2F%2Fa.example%2Fu%2Falice"
        );
        assert_eq!(
            route06(
                &Method::POST,
                "/mimi/v06/keyMaterial/mimi%3A%2F%2Fa.example%2Fu%2Falice"
            ),
            Some(Ok(Route06::Endpoint(
                Endpoint06::KeyMaterial,
                "mimi://a.example/u/alice".into()
            )))
        );
    }

    #[test]
    fn host_and_from() {
        let own: ServerName = "a.example".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert(hyper::header::HOST, "a.example:8443".parse().unwrap());
        assert!(check_host(&h, &own).is_ok());
        h.insert(hyper::header::HOST, "b.example".parse().unwrap());
        assert_eq!(
            check_host(&h, &own).unwrap_err().status,
            StatusCode::MISDIRECTED_REQUEST
        );
    }
}
