//! The -06 conformance probe: every request draft-ietf-mimi-protocol-06 lets one provider send
//! another, sent to a peer over mutual TLS, each answer judged against the draft.
//!
//! The probe speaks as provider `--our-domain` (its client certificate must authenticate that
//! name) to the peer named by `--peer https://HOST:PORT`. It reads the peer's directory
//! (§5.1) first; each endpoint's path comes from `--prefix P` (`P/<endpoint>/<variable>`, the
//! draft's paths under the peer's prefix) when given, else from the directory's template.
//! Every body is made with our codec (`mimi_codec::v06`) and carries real MLS objects
//! ([`mls::MlsObjects`], openmls). The verdicts:
//!
//! - **passed**: the status the draft gives for the request, with a body that decodes as the
//!   draft's response structure (or the empty body the draft says);
//! - **unsupported**: `501`, or `404`/`405` from a peer whose directory does not name the
//!   endpoint (the peer says it does not serve it);
//! - **failed**: anything else, with the reason (status, body, decoding error).
//!
//! Two more checks of §4.1: a request without a client certificate must be refused ("The TLS
//! connection underlying the HTTPS connection MUST be mutually authenticated", `mutualTls`),
//! and so must a request whose `From` names a provider the client certificate does not
//! authenticate ("The certificates presented in the TLS handshake MUST authenticate the
//! source and target provider domains", `fromAuthenticated`).

pub mod mls;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use mimi_codec::v06::labels::{GROUP_INFO_REQUEST_TBS, KEY_MATERIAL_REQUEST_TBS, sign_content};
use mimi_codec::v06::{
    AbuseReport, AbuseType, ConsentEntry, ConsentOperation, Credential, Directory, FanoutExtra,
    FanoutMessage, GroupInfo, GroupInfoOption, GroupInfoRequest, GroupInfoRequestTbs,
    GroupInfoResponse, IdentifierRequest, IdentifierResponse, IdentifierUri, KeyMaterialRequest,
    KeyMaterialRequestTbs, KeyMaterialResponse, KeyPackage, MlsMessage, NotifyBody, OptionalUri,
    Protocol, QueryElement, RatchetTreeOption, SearchField, SubmitMessageRequest,
    SubmitMessageResponse, UpdateRequest, UpdateResponse, Welcome,
};
use mimi_codec::{BoundedVec, CodecError, Opaque, ServerName, Text, Wire};
use mimi_transport::tls::{Identity, certificates_from_pem_file, client_config};
use mimi_transport::{ClientConfig, MimiClient, RetryPolicy, StaticResolver, TransportError};

use self::mls::{MlsError, MlsObjects};

/// The credential type of the probe's credentials (`basic`, RFC 9420 §17.5).
const BASIC_CREDENTIAL: u16 = 1;
/// The directory's path (§5.1).
const DIRECTORY_PATH: &str = "/.well-known/mimi-protocol-directory";
/// The source provider the `fromAuthenticated` check names in `From`, which no probe
/// certificate authenticates.
const UNAUTHENTICATED_SOURCE: &str = "not-the-certificate.example";
/// Longest answer body printed (as text or hex); the rest is elided.
const MAX_PRINTED_BODY: usize = 512;

/// What to probe and as whom.
#[derive(Debug, Clone)]
pub struct ProbeConfig {
    /// The peer provider's name (the `HOST` of `--peer`; `Host` and TLS name it).
    pub peer: ServerName,
    /// Where to connect (`HOST:PORT` resolved, or `--connect`).
    pub address: SocketAddr,
    /// `--prefix`: the peer's path prefix of the -06 endpoints, overriding its directory.
    pub prefix: Option<String>,
    /// The CA (PEM) the peer's certificate chains to.
    pub ca: PathBuf,
    /// Our client certificate (PEM), authenticating [`Self::our_domain`].
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
    /// Our provider name (`From: mimi@<our_domain>`).
    pub our_domain: ServerName,
    /// Print every request's bytes in hex.
    pub hex: bool,
}

/// Why the probe could not run at all (a request that fails is a verdict, not an error).
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The certificates did not load.
    #[error("TLS configuration: {0}")]
    Tls(#[from] mimi_transport::TlsConfigError),
    /// A request body could not be built.
    #[error("building a request: {0}")]
    Codec(#[from] CodecError),
    /// The MLS objects could not be made.
    #[error(transparent)]
    Mls(#[from] MlsError),
    /// A command-line argument is wrong.
    #[error("{0}")]
    Usage(String),
}

/// A request's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Answered as the draft says.
    Passed,
    /// Answered otherwise: why.
    Failed(String),
    /// The peer does not serve it: how it said so.
    Unsupported(String),
}

impl Verdict {
    fn label(&self) -> &'static str {
        match self {
            Verdict::Passed => "passed",
            Verdict::Failed(_) => "failed",
            Verdict::Unsupported(_) => "unsupported",
        }
    }
}

/// One probed request and its answer.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The request's name (`keyMaterial`, ..., `mutualTls`).
    pub request: &'static str,
    /// The path requested.
    pub path: String,
    /// The body sent.
    pub sent: Vec<u8>,
    /// The status, when an answer came.
    pub status: Option<u16>,
    /// The decoded answer, or why it did not decode.
    pub answer: String,
    /// The verdict.
    pub verdict: Verdict,
}

/// The counts of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Passed.
    pub passed: usize,
    /// Failed.
    pub failed: usize,
    /// Unsupported.
    pub unsupported: usize,
}

/// A whole run.
#[derive(Debug, Clone)]
pub struct Report {
    /// Every request in order.
    pub outcomes: Vec<Outcome>,
}

impl Report {
    /// The counts.
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for o in &self.outcomes {
            match o.verdict {
                Verdict::Passed => c.passed += 1,
                Verdict::Failed(_) => c.failed += 1,
                Verdict::Unsupported(_) => c.unsupported += 1,
            }
        }
        c
    }

    /// The outcome of `request`.
    pub fn outcome(&self, request: &str) -> Option<&Outcome> {
        self.outcomes.iter().find(|o| o.request == request)
    }

    /// The verdict of `request`.
    pub fn verdict(&self, request: &str) -> Option<&Verdict> {
        self.outcomes
            .iter()
            .find(|o| o.request == request)
            .map(|o| &o.verdict)
    }

    /// The report as text: a block per request, then `N passed, N failed, N unsupported`.
    pub fn render(&self, hex: bool) -> String {
        let mut out = String::new();
        for o in &self.outcomes {
            let _ = writeln!(out, "== {} {}", o.request, o.path);
            if hex && !o.sent.is_empty() {
                let _ = writeln!(out, "   sent ({} bytes): {}", o.sent.len(), to_hex(&o.sent));
            }
            let status = o.status.map_or("no answer".to_owned(), |s| s.to_string());
            let _ = writeln!(out, "   status: {status}");
            let _ = writeln!(out, "   answer: {}", o.answer);
            let reason = match &o.verdict {
                Verdict::Passed => String::new(),
                Verdict::Failed(r) | Verdict::Unsupported(r) => format!(" ({r})"),
            };
            let _ = writeln!(out, "   verdict: {}{reason}", o.verdict.label());
        }
        let c = self.counts();
        let _ = writeln!(
            out,
            "{} passed, {} failed, {} unsupported",
            c.passed, c.failed, c.unsupported
        );
        out
    }
}

fn to_hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn show_body(body: &[u8]) -> String {
    if body.is_empty() {
        return "(empty body)".into();
    }
    let shown = &body[..body.len().min(MAX_PRINTED_BODY)];
    let more = if body.len() > shown.len() { "…" } else { "" };
    match std::str::from_utf8(shown) {
        Ok(text) if !text.chars().any(|c| c.is_control() && c != '\n') => {
            format!("{:?}{more}", text)
        }
        _ => format!("{} bytes: {}{more}", body.len(), to_hex(shown)),
    }
}

/// Percent-encode `value` as one path segment (RFC 3986: all but unreserved escaped).
fn segment(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The peer's directory: parsed as the draft's, and as loose JSON (to tell which endpoints
/// the peer names even when its document does not follow the draft).
struct PeerDirectory {
    parsed: Option<Directory>,
    keys: Vec<(String, String)>,
}

impl PeerDirectory {
    fn names(&self, endpoint: &str) -> Option<&str> {
        self.keys
            .iter()
            .find(|(k, _)| k == endpoint)
            .map(|(_, v)| v.as_str())
    }

    /// The path prefix of the -06 endpoints, from any entry of the directory that names an
    /// endpoint as `https://host<prefix>/<endpoint>[/{variable}]`.
    fn inferred_prefix(&self) -> Option<String> {
        self.keys.iter().find_map(|(name, url)| {
            if !mimi_transport::v06::Endpoint06::ALL
                .iter()
                .any(|e| e.name() == name)
            {
                return None;
            }
            let path = url_path(url);
            let path = match path.rfind("/{") {
                Some(i) => &path[..i],
                None => path,
            };
            path.strip_suffix(&format!("/{name}")).map(str::to_owned)
        })
    }

    fn template(&self, endpoint: &str) -> Option<&mimi_codec::v06::EndpointTemplate> {
        let d = self.parsed.as_ref()?;
        match endpoint {
            "keyMaterial" => d.key_material.as_ref(),
            "update" => d.update.as_ref(),
            "notify" => d.notify.as_ref(),
            "submitMessage" => d.submit_message.as_ref(),
            "groupInfo" => d.group_info.as_ref(),
            "requestConsent" => d.request_consent.as_ref(),
            "updateConsent" => d.update_consent.as_ref(),
            "identifierQuery" => d.identifier_query.as_ref(),
            "reportAbuse" => d.report_abuse.as_ref(),
            _ => None,
        }
    }
}

/// How an answer is judged.
enum Expect {
    /// `200` and the body decodes as this response (the closure describes it).
    Ok200(fn(&[u8]) -> Result<String, CodecError>),
    /// One of these statuses with an empty body.
    Empty(&'static [u16], &'static str),
}

fn describe_key_material(b: &[u8]) -> Result<String, CodecError> {
    let r = KeyMaterialResponse::decode(b)?;
    Ok(format!(
        "KeyMaterialResponse {{ userStatus: {:?}, userUri: {}, clients: {} }}",
        r.user_status,
        r.user_uri,
        r.clients.as_slice().len()
    ))
}

fn describe_identifier(b: &[u8]) -> Result<String, CodecError> {
    let r = IdentifierResponse::decode(b)?;
    Ok(format!(
        "IdentifierResponse {{ responseCode: {:?}, uri: {}, foundProfiles: {} }}",
        r.response_code,
        r.uri.as_slice().len(),
        r.found_profiles.as_slice().len()
    ))
}

fn describe_submit(b: &[u8]) -> Result<String, CodecError> {
    let r = SubmitMessageResponse::decode(b)?;
    Ok(format!("SubmitMessageResponse {{ {:?} }}", r.outcome))
}

fn describe_update(b: &[u8]) -> Result<String, CodecError> {
    let r = UpdateResponse::decode(b)?;
    Ok(format!(
        "UpdateResponse {{ {:?}, errorDescription: {:?} }}",
        r.outcome,
        r.error_description.as_str()
    ))
}

fn describe_group_info(b: &[u8]) -> Result<String, CodecError> {
    let r = GroupInfoResponse::decode(b)?;
    Ok(match r.result {
        Ok(_) => format!("GroupInfoResponse {{ roomId: {}, success }}", r.room_id),
        Err(code) => format!("GroupInfoResponse {{ roomId: {}, {code:?} }}", r.room_id),
    })
}

/// One request to probe.
struct Probe {
    name: &'static str,
    variable: String,
    body: Vec<u8>,
    expect: Expect,
}

/// Parse `https://HOST[:PORT]` into the peer's name and port.
pub fn parse_peer(url: &str) -> Result<(ServerName, u16), ProbeError> {
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| ProbeError::Usage(format!("--peer {url}: not an https:// URL")))?;
    let rest = rest.trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse::<u16>()
                .map_err(|_| ProbeError::Usage(format!("--peer {url}: bad port")))?,
        ),
        None => (rest, 443),
    };
    let name = host.parse::<ServerName>().map_err(|e| {
        ProbeError::Usage(format!("--peer {url}: {host} is not a server name: {e}"))
    })?;
    Ok((name, port))
}

fn client(config: &ProbeConfig, with_cert: bool) -> Result<MimiClient, ProbeError> {
    let roots = certificates_from_pem_file(&config.ca)?;
    let identity = if with_cert {
        Some(Identity::from_pem_files(&config.cert, &config.key)?)
    } else {
        None
    };
    let mut cc = ClientConfig::new(client_config(identity, &roots)?);
    // A probe reports what one request got: no retries.
    cc.retry = RetryPolicy {
        max_attempts: 1,
        ..RetryPolicy::default()
    };
    let resolver = StaticResolver::new().with(config.peer.clone(), config.address);
    Ok(MimiClient::new(cc, Arc::new(resolver)))
}

fn uri(s: &str) -> Result<IdentifierUri, ProbeError> {
    s.parse()
        .map_err(|e| ProbeError::Usage(format!("{s} is not a MIMI URI: {e}")))
}

/// Build every request's body.
fn probes(config: &ProbeConfig, objects: &MlsObjects) -> Result<Vec<Probe>, ProbeError> {
    let peer = config.peer.as_str();
    let ours = config.our_domain.as_str();
    let our_user = uri(&format!("mimi://{ours}/u/probe"))?;
    let peer_user = uri(&format!("mimi://{peer}/u/probe"))?;
    let room = uri(&format!("mimi://{peer}/r/probe"))?;
    // `notify` comes from a room's hub to a follower: the probe notifies as the hub of a
    // room of its own domain (§5.5).
    let our_room = uri(&format!("mimi://{ours}/r/probe"))?;
    let credential = Credential {
        credential_type: BASIC_CREDENTIAL,
        content: Opaque::new(our_user.to_string().into_bytes())?,
    };
    let signature_key = Opaque::new(objects.signature_key().to_vec())?;

    let km_tbs = KeyMaterialRequestTbs {
        protocol: Protocol::Mls10,
        requesting_user: our_user.clone(),
        target_user: peer_user.clone(),
        room_id: OptionalUri::from(room.clone()),
        acceptable_ciphersuites: BoundedVec::new(vec![mls::SUITE.into()])?,
        required_capabilities: Default::default(),
        requester_signature_key: signature_key.clone(),
        requester_credential: credential.clone(),
    };
    let km_sig = objects.sign(&sign_content(KEY_MATERIAL_REQUEST_TBS, &km_tbs.encode()?)?)?;
    let key_material = KeyMaterialRequest {
        tbs: km_tbs,
        key_material_request_signature: Opaque::new(km_sig)?,
    };

    let identifier = IdentifierRequest {
        query_elements: BoundedVec::new(vec![QueryElement {
            field: SearchField::Handle,
            search_value: Text::new(peer_user.to_string())?,
        }])?,
        id_request_extensions: Default::default(),
    };
    let request_consent = ConsentEntry {
        operation: ConsentOperation::Request,
        requester_uri: our_user.clone(),
        target_uri: peer_user.clone(),
        room_id: Some(room.clone()),
        client_key_packages: BoundedVec::default(),
        consent_extensions: Default::default(),
    };
    // Our user grants the peer's user consent (sent to the requester's provider, the peer).
    let update_consent = ConsentEntry {
        operation: ConsentOperation::Grant,
        requester_uri: peer_user.clone(),
        target_uri: our_user.clone(),
        room_id: Some(room.clone()),
        client_key_packages: BoundedVec::new(vec![KeyPackage::from_bytes(&objects.key_package)?])?,
        consent_extensions: Default::default(),
    };
    let app_message = MlsMessage::from_bytes(&objects.app_message)?;
    let submit = SubmitMessageRequest {
        protocol: Protocol::Mls10,
        app_message: app_message.clone(),
        sending_uri: our_user.clone(),
    };
    let notify = NotifyBody {
        messages: vec![FanoutMessage {
            timestamp: now_ms(),
            message: app_message,
            extra: FanoutExtra::Application { frank: None },
        }],
    };
    let report = AbuseReport {
        reporting_user: OptionalUri::from(our_user.clone()),
        alleged_abuser_uri: peer_user.clone(),
        reason_code: AbuseType(0),
        note: Text::new("mimi-rs -06 conformance probe")?,
        messages: BoundedVec::default(),
        abuse_extensions: Default::default(),
    };
    let update = UpdateRequest::Commit {
        commit: MlsMessage::from_bytes(&objects.commit)?,
        welcome: Some(Welcome::from_bytes(&objects.welcome)?),
        group_info_option: GroupInfoOption::Full(GroupInfo::from_bytes(&objects.group_info)?),
        ratchet_tree_option: RatchetTreeOption::DistributionService,
    };
    let gi_tbs = GroupInfoRequestTbs {
        protocol: Protocol::Mls10,
        cipher_suite: mls::SUITE.into(),
        requesting_signature_key: signature_key,
        requesting_credential: credential,
        group_info_public_key: Opaque::new(objects.hpke_public_key.clone())?,
        joining_code: None,
    };
    let gi_sig = objects.sign(&sign_content(GROUP_INFO_REQUEST_TBS, &gi_tbs.encode()?)?)?;
    let group_info = GroupInfoRequest {
        protocol: gi_tbs.protocol,
        cipher_suite: gi_tbs.cipher_suite,
        requesting_signature_key: gi_tbs.requesting_signature_key,
        requesting_credential: gi_tbs.requesting_credential,
        group_info_public_key: gi_tbs.group_info_public_key,
        joining_code: Opaque::default(),
        signature: Opaque::new(gi_sig)?,
    };

    let consent_statuses: &'static [u16] = &[201, 404];
    Ok(vec![
        Probe {
            name: "keyMaterial",
            variable: peer_user.to_string(),
            body: key_material.encode()?,
            expect: Expect::Ok200(describe_key_material),
        },
        Probe {
            name: "identifierQuery",
            variable: peer.to_owned(),
            body: identifier.encode()?,
            expect: Expect::Ok200(describe_identifier),
        },
        Probe {
            name: "requestConsent",
            variable: peer.to_owned(),
            body: request_consent.encode()?,
            expect: Expect::Empty(consent_statuses, "§5.7: 201 Accepted, optionally 404"),
        },
        Probe {
            name: "updateConsent",
            variable: peer.to_owned(),
            body: update_consent.encode()?,
            expect: Expect::Empty(consent_statuses, "§5.7: 201 Accepted, optionally 404"),
        },
        Probe {
            name: "submitMessage",
            variable: room.to_string(),
            body: submit.encode()?,
            expect: Expect::Ok200(describe_submit),
        },
        Probe {
            name: "notify",
            variable: our_room.to_string(),
            body: notify.encode()?,
            expect: Expect::Empty(&[201], "§5.5: 201 Accepted, no body"),
        },
        Probe {
            name: "reportAbuse",
            variable: room.to_string(),
            body: report.encode()?,
            expect: Expect::Empty(
                &[200, 201, 202, 204],
                "§5.9: no response body, the code says whether it was accepted",
            ),
        },
        Probe {
            name: "update",
            variable: room.to_string(),
            body: update.encode()?,
            expect: Expect::Ok200(describe_update),
        },
        Probe {
            name: "groupInfo",
            variable: room.to_string(),
            body: group_info.encode()?,
            expect: Expect::Ok200(describe_group_info),
        },
    ])
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The path of `probe` at the peer, or why there is none: under `--prefix` when given, else
/// the directory's template, else under the prefix the directory's other entries show.
fn path_of(config: &ProbeConfig, dir: &PeerDirectory, probe: &Probe) -> Result<String, String> {
    let under = |prefix: &str| {
        format!(
            "{}/{}/{}",
            prefix.trim_end_matches('/'),
            probe.name,
            segment(&probe.variable)
        )
    };
    if let Some(prefix) = &config.prefix {
        return Ok(under(prefix));
    }
    if let Some(template) = dir.template(probe.name) {
        return Ok(url_path(&template.expand(&probe.variable)).to_owned());
    }
    dir.inferred_prefix().map(|p| under(&p)).ok_or_else(|| {
        format!(
            "no --prefix, and the peer's directory shows no path for {}",
            probe.name
        )
    })
}

/// The path of an `https://host/path` URL.
fn url_path(url: &str) -> &str {
    let rest = url.strip_prefix("https://").unwrap_or(url);
    rest.find('/').map_or("/", |i| &rest[i..])
}

fn judge(probe: &Probe, dir: &PeerDirectory, status: u16, body: &[u8]) -> (String, Verdict) {
    let listed = dir.names(probe.name);
    if status == 501 {
        return (
            show_body(body),
            Verdict::Unsupported("501 Not Implemented".into()),
        );
    }
    if matches!(status, 404 | 405) && listed.is_none() {
        return (
            show_body(body),
            Verdict::Unsupported(format!(
                "{status}, and the peer's directory does not name {}",
                probe.name
            )),
        );
    }
    let listed_note = listed
        .map(|l| format!("; the peer's directory names {l}"))
        .unwrap_or_default();
    match &probe.expect {
        Expect::Ok200(describe) => {
            if status != 200 {
                return (
                    show_body(body),
                    Verdict::Failed(format!(
                        "status {status}, the draft answers 200 with a body{listed_note}"
                    )),
                );
            }
            match describe(body) {
                Ok(text) => (text, Verdict::Passed),
                Err(e) => (
                    format!("does not decode: {e} ({})", show_body(body)),
                    Verdict::Failed(format!("the 200 body does not decode: {e}")),
                ),
            }
        }
        Expect::Empty(statuses, rule) => {
            if !statuses.contains(&status) {
                return (
                    show_body(body),
                    Verdict::Failed(format!("status {status} ({rule}){listed_note}")),
                );
            }
            if !body.is_empty() {
                return (
                    show_body(body),
                    Verdict::Failed(format!("a body where the draft has none ({rule})")),
                );
            }
            ("(empty body)".into(), Verdict::Passed)
        }
    }
}

/// Run the probe.
pub async fn run(config: &ProbeConfig) -> Result<Report, ProbeError> {
    let mut outcomes = Vec::new();

    let peer = client(config, true)?;
    // The directory.
    let (dir, outcome) = match peer.get_raw(&config.peer, DIRECTORY_PATH.to_owned()).await {
        Ok((status, body)) => {
            let keys = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.as_object().cloned())
                .map(|o| {
                    o.into_iter()
                        .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_owned())))
                        .collect()
                })
                .unwrap_or_default();
            let parsed = Directory::from_json(&body);
            let (answer, verdict) = match (&parsed, status) {
                (Ok(d), 200) => {
                    let named: Vec<&str> = mimi_transport::v06::Endpoint06::ALL
                        .iter()
                        .map(|e| e.name())
                        .filter(|n| {
                            PeerDirectory {
                                parsed: Some(d.clone()),
                                keys: Vec::new(),
                            }
                            .template(n)
                            .is_some()
                        })
                        .collect();
                    (
                        format!("Directory naming {}", named.join(", ")),
                        Verdict::Passed,
                    )
                }
                (Ok(_), s) => (show_body(&body), Verdict::Failed(format!("status {s}"))),
                (Err(e), s) => (
                    format!("does not parse: {e}"),
                    Verdict::Failed(format!("status {s}; §5.1 directory does not parse: {e}")),
                ),
            };
            (
                PeerDirectory {
                    parsed: parsed.ok(),
                    keys,
                },
                Outcome {
                    request: "directory",
                    path: DIRECTORY_PATH.to_owned(),
                    sent: Vec::new(),
                    status: Some(status),
                    answer,
                    verdict,
                },
            )
        }
        Err(e) => (
            PeerDirectory {
                parsed: None,
                keys: Vec::new(),
            },
            Outcome {
                request: "directory",
                path: DIRECTORY_PATH.to_owned(),
                sent: Vec::new(),
                status: None,
                answer: e.to_string(),
                verdict: Verdict::Failed(format!("no answer: {e}")),
            },
        ),
    };
    outcomes.push(outcome);

    let peer_user = format!("mimi://{}/u/probe", config.peer);
    let our_user = format!("mimi://{}/u/probe", config.our_domain);
    let room = format!("mimi://{}/r/probe", config.peer);
    let objects = MlsObjects::make(&room, &our_user, &peer_user)?;
    let probes = probes(config, &objects)?;
    // Mutual TLS (§4.1): a -06 request without a client certificate is refused (the first
    // probe's request, sent anonymously).
    let anonymous = client(config, false)?;
    let first = probes.first();
    let path = first.map(|p| path_of(config, &dir, p));
    let verdict = match (first, path) {
        (Some(first), Some(Ok(path))) => {
            let answer = anonymous
                .post06(
                    &config.peer,
                    &config.our_domain,
                    path.clone(),
                    first.body.clone(),
                )
                .await;
            let (status, answer, verdict) = match answer {
                Ok((status, body)) if matches!(status, 401 | 403) => {
                    (Some(status), show_body(&body), Verdict::Passed)
                }
                Ok((status, body)) => (
                    Some(status),
                    show_body(&body),
                    Verdict::Failed(format!(
                        "answered {status} without a client certificate (§4.1: the TLS connection MUST be mutually authenticated)"
                    )),
                ),
                Err(e @ (TransportError::Tls(_) | TransportError::Network { .. })) => {
                    (None, format!("refused: {e}"), Verdict::Passed)
                }
                Err(e) => (
                    None,
                    e.to_string(),
                    Verdict::Failed(format!("unexpected: {e}")),
                ),
            };
            Outcome {
                request: "mutualTls",
                path,
                sent: first.body.clone(),
                status,
                answer,
                verdict,
            }
        }
        _ => Outcome {
            request: "mutualTls",
            path: String::new(),
            sent: Vec::new(),
            status: None,
            answer: String::new(),
            verdict: Verdict::Failed("no path to send a request to".into()),
        },
    };
    outcomes.push(verdict);

    // §4.1: the certificates "MUST authenticate the source and target provider domains": a
    // request whose From names a provider our certificate does not authenticate is refused.
    let other: Option<ServerName> = UNAUTHENTICATED_SOURCE.parse().ok();
    let outcome = match (probes.first(), other) {
        (Some(first), Some(other)) => match path_of(config, &dir, first) {
            Ok(path) => {
                let answer = peer
                    .post06(&config.peer, &other, path.clone(), first.body.clone())
                    .await;
                let (status, answer, verdict) = match answer {
                    Ok((status, body)) if (400..500).contains(&status) => {
                        (Some(status), show_body(&body), Verdict::Passed)
                    }
                    Ok((status, body)) => (
                        Some(status),
                        show_body(&body),
                        Verdict::Failed(format!(
                            "answered {status} to From: mimi@{UNAUTHENTICATED_SOURCE}, a provider the client certificate does not authenticate (§4.1)"
                        )),
                    ),
                    Err(e) => (
                        None,
                        e.to_string(),
                        Verdict::Failed(format!("no answer: {e}")),
                    ),
                };
                Outcome {
                    request: "fromAuthenticated",
                    path,
                    sent: first.body.clone(),
                    status,
                    answer,
                    verdict,
                }
            }
            Err(reason) => Outcome {
                request: "fromAuthenticated",
                path: String::new(),
                sent: Vec::new(),
                status: None,
                answer: String::new(),
                verdict: Verdict::Failed(reason),
            },
        },
        _ => Outcome {
            request: "fromAuthenticated",
            path: String::new(),
            sent: Vec::new(),
            status: None,
            answer: String::new(),
            verdict: Verdict::Failed("no request to send".into()),
        },
    };
    outcomes.push(outcome);

    for probe in probes {
        let path = match path_of(config, &dir, &probe) {
            Ok(p) => p,
            Err(reason) => {
                outcomes.push(Outcome {
                    request: probe.name,
                    path: String::new(),
                    sent: probe.body,
                    status: None,
                    answer: String::new(),
                    verdict: Verdict::Failed(reason),
                });
                continue;
            }
        };
        let answer = peer
            .post06(
                &config.peer,
                &config.our_domain,
                path.clone(),
                probe.body.clone(),
            )
            .await;
        let (status, answer, verdict) = match answer {
            Ok((status, body)) => {
                let (a, v) = judge(&probe, &dir, status, &body);
                (Some(status), a, v)
            }
            Err(e) => (
                None,
                e.to_string(),
                Verdict::Failed(format!("no answer: {e}")),
            ),
        };
        outcomes.push(Outcome {
            request: probe.name,
            path,
            sent: probe.body,
            status,
            answer,
            verdict,
        });
    }
    Ok(Report { outcomes })
}

fn need<T>(v: Option<T>, what: &str) -> Result<T, ProbeError> {
    v.ok_or_else(|| ProbeError::Usage(format!("{what} is required")))
}

/// Parse the probe's command line: `--peer https://HOST:PORT [--connect ADDR] [--prefix P]
/// --ca CA --cert CERT --key KEY --our-domain D [--hex]`.
pub async fn parse_args(args: &[String]) -> Result<ProbeConfig, ProbeError> {
    let mut peer = None;
    let mut connect = None;
    let mut prefix = None;
    let mut ca = None;
    let mut cert = None;
    let mut key = None;
    let mut our = None;
    let mut hex = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| ProbeError::Usage(format!("{a} needs a value")))
        };
        match a.as_str() {
            "--peer" => peer = Some(value()?),
            "--connect" => connect = Some(value()?),
            "--prefix" => prefix = Some(value()?),
            "--ca" => ca = Some(PathBuf::from(value()?)),
            "--cert" => cert = Some(PathBuf::from(value()?)),
            "--key" => key = Some(PathBuf::from(value()?)),
            "--our-domain" => our = Some(value()?),
            "--hex" => hex = true,
            other => return Err(ProbeError::Usage(format!("unknown argument {other}"))),
        }
    }
    let peer_url: String = need(peer, "--peer")?;
    let (name, port) = parse_peer(&peer_url)?;
    let address = match connect {
        Some(c) => c
            .parse::<SocketAddr>()
            .map_err(|_| ProbeError::Usage(format!("--connect {c}: not an IP:PORT")))?,
        None => tokio::net::lookup_host((name.as_str(), port))
            .await
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| {
                ProbeError::Usage(format!("{name} does not resolve; give --connect IP:PORT"))
            })?,
    };
    let our: String = need(our, "--our-domain")?;
    Ok(ProbeConfig {
        peer: name,
        address,
        prefix,
        ca: need(ca, "--ca")?,
        cert: need(cert, "--cert")?,
        key: need(key, "--key")?,
        our_domain: our
            .parse()
            .map_err(|e| ProbeError::Usage(format!("--our-domain {our}: {e}")))?,
        hex,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loose(json: &str) -> PeerDirectory {
        let body = json.as_bytes();
        PeerDirectory {
            parsed: Directory::from_json(body).ok(),
            keys: serde_json::from_slice::<serde_json::Value>(body)
                .unwrap()
                .as_object()
                .unwrap()
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                .collect(),
        }
    }

    fn config(prefix: Option<&str>) -> ProbeConfig {
        ProbeConfig {
            peer: "b.example".parse().unwrap(),
            address: "127.0.0.1:1".parse().unwrap(),
            prefix: prefix.map(str::to_owned),
            ca: PathBuf::new(),
            cert: PathBuf::new(),
            key: PathBuf::new(),
            our_domain: "a.example".parse().unwrap(),
            hex: false,
        }
    }

    fn probe(name: &'static str, expect: Expect) -> Probe {
        Probe {
            name,
            variable: "mimi://b.example/r/x".into(),
            body: Vec::new(),
            expect,
        }
    }

    #[test]
    fn paths_come_from_the_prefix_the_template_or_the_directory_s_other_entries() {
        // A directory in the draft's shape naming keyMaterial only.
        let ours = loose(r#"{"keyMaterial": "https://b.example/m/keyMaterial/{targetUser}"}"#);
        let km = probe("keyMaterial", Expect::Ok200(describe_key_material));
        let notify = probe("notify", Expect::Empty(&[201], "x"));
        assert_eq!(
            path_of(&config(None), &ours, &km).unwrap(),
            "/m/keyMaterial/mimi%3A%2F%2Fb.example%2Fr%2Fx"
        );
        assert_eq!(
            path_of(&config(None), &ours, &notify).unwrap(),
            "/m/notify/mimi%3A%2F%2Fb.example%2Fr%2Fx"
        );
        assert_eq!(
            path_of(&config(Some("/p/")), &ours, &km).unwrap(),
            "/p/keyMaterial/mimi%3A%2F%2Fb.example%2Fr%2Fx"
        );
        // A document that does not parse as the draft's (an entry without its variable):
        // the draft's paths under the prefix its entries show.
        let other =
            loose(r#"{"notify": "https://b.example/pl/notify", "wireEndpoints": {"x": "y"}}"#);
        assert!(other.parsed.is_none());
        assert_eq!(
            path_of(&config(None), &other, &notify).unwrap(),
            "/pl/notify/mimi%3A%2F%2Fb.example%2Fr%2Fx"
        );
        assert!(path_of(&config(None), &loose("{}"), &notify).is_err());
    }

    #[test]
    fn verdicts_follow_the_draft() {
        let named = loose(r#"{"notify": "https://b.example/pl/notify/{roomId}"}"#);
        let unnamed = loose("{}");
        let notify = probe("notify", Expect::Empty(&[201], "x"));
        let submit = probe("submitMessage", Expect::Ok200(describe_submit));
        assert_eq!(judge(&notify, &named, 201, b"").1, Verdict::Passed);
        assert!(matches!(
            judge(&notify, &named, 201, b"x").1,
            Verdict::Failed(_)
        ));
        assert!(matches!(
            judge(&notify, &named, 404, b"").1,
            Verdict::Failed(_)
        ));
        assert!(matches!(
            judge(&notify, &unnamed, 404, b"").1,
            Verdict::Unsupported(_)
        ));
        assert!(matches!(
            judge(&notify, &named, 501, b"").1,
            Verdict::Unsupported(_)
        ));
        // SubmitMessageResponse { mls10, notAllowed } is an answer; a body that does not
        // decode, or another status, is not.
        assert_eq!(judge(&submit, &named, 200, &[1, 1]).1, Verdict::Passed);
        assert!(matches!(
            judge(&submit, &named, 200, &[1]).1,
            Verdict::Failed(_)
        ));
        assert!(matches!(
            judge(&submit, &named, 400, b"").1,
            Verdict::Failed(_)
        ));
    }

    #[test]
    fn the_peer_url_names_the_provider_and_port() {
        let (name, port) = parse_peer("https://b.example:8443/").unwrap();
        assert_eq!((name.as_str(), port), ("b.example", 8443));
        assert_eq!(parse_peer("https://b.example").unwrap().1, 443);
        assert!(parse_peer("http://b.example").is_err());
        assert!(parse_peer("https://b.example:x").is_err());
    }
}
