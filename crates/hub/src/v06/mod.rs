//! The second version (draft-ietf-mimi-protocol-06): this provider's -06 endpoints, the
//! transport's [`Handler06`] for it. The first version's parts are untouched; -06 state
//! lives in its own records ([`crate::storage::Storage::v06_record`], keys written by
//! [`state`]).
//!
//! Served: `keyMaterial` (the target provider's side: the request's signature verified,
//! consent checked, one key package per client handed out once), `requestConsent` and
//! `updateConsent` (the consent state per requester, target and room), `identifierQuery`
//! (this provider's directory), the rooms ([`rooms`]): `update`, `submitMessage` and
//! `notify`, `groupInfo`, and `reportAbuse` (the room's hub: franks checked, the report
//! kept; [`abuse`]). Franking keys and the hub's `frank`: [`franking`]. See
//! `docs/protocol-coverage.md` ("-06").

pub mod abuse;
pub mod franking;
pub mod rooms;
pub mod state;

use async_trait::async_trait;
use hyper::StatusCode;
use mimi_codec::v06::labels::{KEY_MATERIAL_REQUEST_TBS, sign_content};
use mimi_codec::v06::{
    ClientKeyMaterial, ClientMaterial, ConsentEntry, ConsentOperation, IdentifierQueryCode,
    IdentifierRequest, IdentifierResponse, IdentifierUri, KeyMaterialRequest, KeyMaterialResponse,
    KeyMaterialUserCode, KeyPackage, MimiUri, MimiUriKind, Protocol, SearchField,
};
use mimi_codec::{BoundedVec, ClientId, ServerName, UserId, Wire};
use mimi_transport::v06::{Body06, Endpoint06, Handler06, Refusal06, Reply06, Request06};

use crate::error::ApiError;
use crate::provider::Provider;
use crate::storage::DirectoryField;
use state::{ConsentState, Consents};

/// The cipher suites whose signature scheme (Ed25519) this provider verifies
/// (`MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519`, `…CHACHA20POLY1305_SHA256_Ed25519`).
pub const ED25519_SUITES: [u16; 2] = [0x0001, 0x0003];

/// The endpoints this provider serves in -06 (the directory lists only these).
pub const SERVED: [Endpoint06; 9] = [
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

fn refuse(status: StatusCode, kind: &'static str, detail: impl Into<String>) -> Reply06 {
    Reply06::Refused(Refusal06::new(status, kind, detail))
}

fn unavailable(e: impl std::fmt::Display) -> Reply06 {
    refuse(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        e.to_string(),
    )
}

fn encoded(value: &impl Wire) -> Reply06 {
    match value.encode() {
        Ok(bytes) => Reply06::Ok(bytes),
        Err(e) => refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("response cannot be encoded: {e}"),
        ),
    }
}

/// The first version's user behind a -06 user URI of this provider
/// (`mimi://a.example/u/alice` ↔ `@alice:a.example`).
pub fn local_user(uri: &IdentifierUri, own: &ServerName) -> Option<UserId> {
    let uri = uri.mimi().ok()?;
    if uri.kind() != MimiUriKind::User || uri.provider() != own {
        return None;
    }
    UserId::new(uri.id(), own).ok()
}

/// The -06 URI of a user of this provider.
pub fn user_uri(user: &UserId) -> Option<IdentifierUri> {
    MimiUri::new(&user.server(), MimiUriKind::User, user.localpart())
        .ok()
        .map(|u| IdentifierUri::from(&u))
}

/// The -06 URI of a client: `mimi://<provider>/d/<localpart>%23<device>` (the first
/// version's `#` between user and device, escaped).
pub fn client_uri(client: &ClientId) -> Option<IdentifierUri> {
    let user = client.user();
    let id = format!("{}%23{}", user.localpart(), client.device());
    MimiUri::new(&user.server(), MimiUriKind::Client, &id)
        .ok()
        .map(|u| IdentifierUri::from(&u))
}

/// The first version's client behind a -06 client URI of `provider` (the inverse of
/// [`client_uri`]).
pub fn client_of_uri(uri: &IdentifierUri, provider: &ServerName) -> Option<ClientId> {
    let uri = uri.mimi().ok()?;
    if uri.kind() != MimiUriKind::Client || uri.provider() != provider {
        return None;
    }
    let (localpart, device) = uri.id().split_once("%23")?;
    ClientId::new(&UserId::new(localpart, provider).ok()?, device).ok()
}

/// A stored key package as -06 writes it: the bare `KeyPackage` (the first version keeps
/// the `MLSMessage` framing, four bytes of version and wire format, in front of it).
fn bare_key_package(bytes: &[u8]) -> Option<KeyPackage> {
    KeyPackage::from_bytes(bytes)
        .ok()
        .or_else(|| KeyPackage::from_bytes(bytes.get(4..)?).ok())
}

/// Verify `key_material_request_signature`: `SignWithLabel(requesterSignatureKey,
/// "KeyMaterialRequestTBS", tbs)` with Ed25519.
///
/// Rule V06-KM-1 (docs/protocol-coverage.md).
pub fn verify_key_material_request(request: &KeyMaterialRequest) -> Result<(), String> {
    let suites = request.tbs.acceptable_ciphersuites.as_slice();
    if !suites.iter().any(|s| ED25519_SUITES.contains(s)) {
        return Err(format!(
            "no acceptable cipher suite with a signature scheme this provider verifies: {suites:?}"
        ));
    }
    let key: [u8; 32] = request
        .tbs
        .requester_signature_key
        .as_slice()
        .try_into()
        .map_err(|_| "requesterSignatureKey is not an Ed25519 key".to_owned())?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(&key)
        .map_err(|e| format!("requesterSignatureKey: {e}"))?;
    let signature =
        ed25519_dalek::Signature::from_slice(request.key_material_request_signature.as_slice())
            .map_err(|e| format!("key_material_request_signature: {e}"))?;
    let tbs = request.tbs.encode().map_err(|e| e.to_string())?;
    let content = sign_content(KEY_MATERIAL_REQUEST_TBS, &tbs).map_err(|e| e.to_string())?;
    key.verify_strict(&content, &signature)
        .map_err(|_| "key_material_request_signature does not verify".to_owned())
}

impl Provider {
    /// The -06 consent records of this provider.
    pub fn consents(&self) -> Consents<'_> {
        Consents::new(self.context())
    }

    /// `POST /keyMaterial/{targetUser}` at the target user's provider.
    ///
    /// Rules V06-KM-1, V06-KM-2, V06-CONSENT-2 (docs/protocol-coverage.md).
    pub async fn key_material06(
        &self,
        variable: &str,
        request: KeyMaterialRequest,
        raw: &[u8],
    ) -> Reply06 {
        let own = self.server_name();
        let tbs = &request.tbs;
        if tbs.target_user.as_str() != variable {
            return refuse(
                StatusCode::BAD_REQUEST,
                "malformed",
                "the path's targetUser is not the body's",
            );
        }
        if let Err(e) = verify_key_material_request(&request) {
            return refuse(StatusCode::FORBIDDEN, "signature", e);
        }
        let target_provider = tbs.target_user.mimi().ok().map(|u| u.provider().clone());
        if let Some(target_provider) = target_provider.filter(|p| p != own) {
            return self
                .relay_key_material06(&request, raw, &target_provider)
                .await;
        }
        let answer = |user_status, clients: Vec<ClientKeyMaterial>| match BoundedVec::new(clients) {
            Ok(clients) => encoded(&KeyMaterialResponse {
                protocol: Protocol::Mls10,
                user_status,
                user_uri: tbs.target_user.clone(),
                clients,
            }),
            Err(e) => unavailable(e),
        };
        let Some(user) = local_user(&tbs.target_user, own) else {
            return answer(KeyMaterialUserCode::UserUnknown, Vec::new());
        };
        let u = user.clone();
        let known = match self.context().blocking(move |s| s.user(&u)).await {
            Ok(known) => known,
            Err(e) => return unavailable(e),
        };
        if known.is_none() {
            return answer(KeyMaterialUserCode::UserUnknown, Vec::new());
        }
        // Consent: the target's grant for this requester, for this room or for any room. A
        // user asking for its own clients' material (to add a device) needs none.
        let room = tbs.room_id.get().cloned();
        let consent = if tbs.requesting_user == tbs.target_user {
            Ok(ConsentState::Granted)
        } else {
            self.consents()
                .granted(&tbs.requesting_user, &tbs.target_user, room.as_ref())
                .await
        };
        match consent {
            Ok(ConsentState::Granted) => {}
            Ok(_) => return answer(KeyMaterialUserCode::NoConsent, Vec::new()),
            Err(e) => return unavailable(e),
        }
        let Some(&suite) = tbs
            .acceptable_ciphersuites
            .as_slice()
            .iter()
            .find(|s| ED25519_SUITES.contains(s))
        else {
            return answer(KeyMaterialUserCode::IncompatibleProtocol, Vec::new());
        };
        let u = user.clone();
        let clients = match self.context().blocking(move |s| s.clients_of(&u)).await {
            Ok(clients) => clients,
            Err(e) => return unavailable(e),
        };
        let (u, cs) = (user.clone(), clients.clone());
        let claimed = match self
            .context()
            .blocking(move |s| s.claim_key_packages(&u, &cs, suite))
            .await
        {
            Ok(claimed) => claimed,
            Err(e) => return unavailable(e),
        };
        let mut out = Vec::new();
        let mut served = 0usize;
        for client in &clients {
            let Some(uri) = client_uri(client) else {
                continue;
            };
            let material = claimed
                .iter()
                .find(|(c, _)| c == client)
                .and_then(|(_, bytes)| bare_key_package(bytes));
            let material = match material {
                Some(kp) => {
                    served += 1;
                    ClientMaterial::Success(kp)
                }
                None => ClientMaterial::KeyMaterialExhausted,
            };
            out.push(ClientKeyMaterial {
                client_uri: uri,
                material,
            });
        }
        let code = if served == 0 {
            // No client had anything: the user code that may still list the clients.
            KeyMaterialUserCode::NoCompatibleMaterial
        } else if served == clients.len() {
            KeyMaterialUserCode::Success
        } else {
            KeyMaterialUserCode::PartialSuccess
        };
        answer(code, out)
    }

    /// `keyMaterial` for a user of another provider, asked of this provider as the hub of
    /// the request's room (the draft's "Bob adds Cathy": ServerB → ServerA → ServerC): the
    /// signed request goes unchanged to the target's provider; each key package of the
    /// answer is validated (it belongs to the client it is listed for) and its
    /// KeyPackageRef recorded with the provider it came from, so that a Welcome for it goes
    /// there ([`state::KeyPackageSources`]); the answer is passed back.
    ///
    /// Rule V06-KM-3 (docs/protocol-coverage.md).
    pub async fn relay_key_material06(
        &self,
        request: &KeyMaterialRequest,
        raw: &[u8],
        target_provider: &ServerName,
    ) -> Reply06 {
        let own = self.server_name();
        let room = request
            .tbs
            .room_id
            .get()
            .and_then(|r| r.mimi().ok())
            .filter(|r| r.kind() == MimiUriKind::Room);
        if room.as_ref().map(MimiUri::provider) != Some(own) {
            return refuse(
                StatusCode::MISDIRECTED_REQUEST,
                "misdirected",
                format!(
                    "{} is not a user of {own}, and the request names no room {own} is the hub of",
                    request.tbs.target_user
                ),
            );
        }
        let path = Endpoint06::KeyMaterial.path(request.tbs.target_user.as_str());
        let answer = self
            .context()
            .peers
            .post06(target_provider, own, path, raw.to_vec())
            .await;
        let body = match answer {
            Ok((200, body)) => body,
            Ok((status, body)) => {
                return refuse(
                    StatusCode::BAD_GATEWAY,
                    "peer",
                    format!(
                        "{target_provider} answered {status}: {}",
                        String::from_utf8_lossy(&body)
                    ),
                );
            }
            Err(e) => {
                return refuse(
                    StatusCode::BAD_GATEWAY,
                    "peer",
                    format!("{target_provider}: {e}"),
                );
            }
        };
        let response = match KeyMaterialResponse::decode(&body) {
            Ok(response) => response,
            Err(e) => {
                return refuse(
                    StatusCode::BAD_GATEWAY,
                    "peer",
                    format!("{target_provider}'s answer does not decode: {e}"),
                );
            }
        };
        let mut refs = Vec::new();
        for client in response.clients.as_slice() {
            let ClientMaterial::Success(kp) = &client.material else {
                continue;
            };
            let owner = client_of_uri(&client.client_uri, target_provider);
            let validated = owner
                .ok_or_else(|| "not a client URI of that provider".to_owned())
                .and_then(|owner| {
                    mimi_ds::validate_key_package(kp.as_bytes(), &owner).map_err(|e| e.to_string())
                });
            match validated {
                Ok(v) => refs.push(v.hash_ref),
                Err(e) => {
                    return refuse(
                        StatusCode::BAD_GATEWAY,
                        "peer",
                        format!(
                            "{target_provider} listed an invalid key package for {}: {e}",
                            client.client_uri
                        ),
                    );
                }
            }
        }
        let sources = state::KeyPackageSources::new(self.context());
        for hash_ref in refs {
            if let Err(e) = sources.record(&hash_ref, target_provider).await {
                return unavailable(e);
            }
        }
        Reply06::Ok(body)
    }

    /// `POST /requestConsent/{targetDomain}` (a `request` or `cancel` from the requester's
    /// provider) and `POST /updateConsent/{requesterDomain}` (a `grant` or `revoke` from the
    /// target's provider).
    ///
    /// Rule V06-CONSENT-1 (docs/protocol-coverage.md).
    pub async fn consent06(
        &self,
        endpoint: Endpoint06,
        from: &ServerName,
        variable: &str,
        entry: ConsentEntry,
    ) -> Reply06 {
        let own = self.server_name();
        if variable != own.as_str() {
            return refuse(
                StatusCode::MISDIRECTED_REQUEST,
                "misdirected",
                format!("{variable} is not {own}"),
            );
        }
        let provider_of = |uri: &IdentifierUri| uri.mimi().ok().map(|u| u.provider().clone());
        // requestConsent: the target is ours, the requester the sender's;
        // updateConsent: the requester is ours, the target the sender's.
        let (ours, theirs, allowed) = match endpoint {
            Endpoint06::RequestConsent => (
                &entry.target_uri,
                &entry.requester_uri,
                matches!(
                    entry.operation,
                    ConsentOperation::Request | ConsentOperation::Cancel
                ),
            ),
            _ => (
                &entry.requester_uri,
                &entry.target_uri,
                matches!(
                    entry.operation,
                    ConsentOperation::Grant | ConsentOperation::Revoke
                ),
            ),
        };
        if !allowed {
            return refuse(
                StatusCode::BAD_REQUEST,
                "malformed",
                format!("{:?} is not sent to {}", entry.operation, endpoint.name()),
            );
        }
        if provider_of(theirs).as_ref() != Some(from) {
            return refuse(
                StatusCode::FORBIDDEN,
                "not_allowed",
                format!("{theirs} is not a user of the sending provider {from}"),
            );
        }
        if provider_of(ours).as_ref() != Some(own) {
            return refuse(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("{ours} is not a user of {own}"),
            );
        }
        match self.consents().record(&entry).await {
            Ok(()) => Reply06::Created,
            Err(e) => unavailable(e),
        }
    }

    /// Send a `ConsentEntry` of one of this provider's users to the provider `to`
    /// (`requestConsent/{to}` for `request`/`cancel`, `updateConsent/{to}` for
    /// `grant`/`revoke`), after recording it here: the outgoing side of §5.7.
    ///
    /// Rule V06-CONSENT-3 (docs/protocol-coverage.md).
    pub async fn send_consent06(&self, entry: &ConsentEntry) -> Result<(), ApiError> {
        let own = self.server_name();
        let provider_of = |uri: &IdentifierUri| uri.mimi().ok().map(|u| u.provider().clone());
        let (ours, theirs, endpoint) = match entry.operation {
            ConsentOperation::Request | ConsentOperation::Cancel => (
                &entry.requester_uri,
                &entry.target_uri,
                Endpoint06::RequestConsent,
            ),
            ConsentOperation::Grant | ConsentOperation::Revoke => (
                &entry.target_uri,
                &entry.requester_uri,
                Endpoint06::UpdateConsent,
            ),
        };
        if provider_of(ours).as_ref() != Some(own) {
            return Err(ApiError::Malformed(format!(
                "{ours} is not a user of {own}"
            )));
        }
        let to = provider_of(theirs)
            .ok_or_else(|| ApiError::Malformed(format!("{theirs} is not a MIMI URI")))?;
        if endpoint == Endpoint06::UpdateConsent {
            // This provider's user decided: it holds for key material asked of us.
            self.consents().record(entry).await?;
        }
        if to == *own {
            return Ok(());
        }
        let body = entry
            .encode()
            .map_err(|e| ApiError::Malformed(format!("consent entry: {e}")))?;
        match self
            .context()
            .peers
            .post06(&to, own, endpoint.path(to.as_str()), body)
            .await
        {
            Ok((201 | 200, _)) => Ok(()),
            Ok((_, _)) => Err(ApiError::PeerAnswer {
                server: to,
                what: "a refusal of the consent entry",
            }),
            Err(e) => Err(ApiError::peer(&to, e)),
        }
    }

    /// `POST /identifierQuery/{domain}`: this provider's directory in -06 terms.
    ///
    /// Rule V06-ID-1 (docs/protocol-coverage.md).
    pub async fn identifier_query06(&self, variable: &str, request: IdentifierRequest) -> Reply06 {
        let own = self.server_name().clone();
        let respond = |code, uris: Vec<IdentifierUri>| match BoundedVec::new(uris) {
            Ok(uri) => encoded(&IdentifierResponse {
                response_code: code,
                uri,
                found_profiles: BoundedVec::default(),
                id_response_extensions: Default::default(),
            }),
            Err(e) => unavailable(e),
        };
        if variable != own.as_str() {
            return respond(IdentifierQueryCode::NotFound, Vec::new());
        }
        // Every element must match (an AND of the query elements).
        let mut found: Option<Vec<UserId>> = None;
        for element in request.query_elements.as_slice() {
            let field = match element.field {
                SearchField::Handle => DirectoryField::Handle,
                SearchField::Email => DirectoryField::Email,
                SearchField::Phone => DirectoryField::Phone,
                SearchField::Nick => DirectoryField::DisplayName,
                _ => return respond(IdentifierQueryCode::UnsupportedField, Vec::new()),
            };
            let value = element.search_value.as_str().to_owned();
            let users = match self
                .context()
                .blocking(move |s| s.find_users(field, &value))
                .await
            {
                Ok(users) => users,
                Err(e) => return unavailable(e),
            };
            found = Some(match found {
                None => users,
                Some(before) => before.into_iter().filter(|u| users.contains(u)).collect(),
            });
        }
        let users = found.unwrap_or_default();
        match users.as_slice() {
            [] => respond(IdentifierQueryCode::NotFound, Vec::new()),
            [one] => respond(
                IdentifierQueryCode::Success,
                user_uri(one).into_iter().collect(),
            ),
            _ => respond(IdentifierQueryCode::Ambiguous, Vec::new()),
        }
    }
}

#[async_trait]
impl Handler06 for Provider {
    fn serves(&self, endpoint: Endpoint06) -> bool {
        SERVED.contains(&endpoint)
    }

    async fn handle06(&self, request: Request06) -> Reply06 {
        let Request06 {
            endpoint,
            variable,
            from,
            body,
            raw: request_raw,
        } = request;
        match body {
            Body06::KeyMaterial(r) => self.key_material06(&variable, r, &request_raw).await,
            Body06::Consent(entry) => self.consent06(endpoint, &from, &variable, entry).await,
            Body06::IdentifierQuery(r) => self.identifier_query06(&variable, r).await,
            Body06::ReportAbuse(r) => self.report_abuse06(&from, &variable, r, &request_raw).await,
            Body06::Update(r) => self.update06(&from, &variable, r).await,
            Body06::SubmitMessage(r) => self.submit06(&from, &variable, r).await,
            Body06::GroupInfo(r) => self.group_info06(&from, &variable, r).await,
            Body06::Notify(body) => self.notify06(&from, &variable, body, &request_raw).await,
        }
    }
}
