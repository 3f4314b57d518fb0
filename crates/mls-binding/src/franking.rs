//! Message franking (draft-ietf-mimi-protocol-06 §5.4.1) and the checks of reported messages
//! (§5.9), sans-IO, for every side: the sending client (salt, `franking_tag`, the `frank_aad`
//! Safe AAD component), the hub (`server_frank` and `franking_integrity_signature` for an
//! accepted application message; the re-computation of its own `server_frank` when a message
//! is reported), and a receiver or reporting provider (the integrity signature against the
//! `franking_agent`'s key, the `franking_tag` against the content).
//!
//! The message content format (where the salt, `sender_uri` and `room_uri` are written) is not
//! this module's business: callers parse it (for MIMI content, `mimi-content`) and hand the
//! values in.

use hmac::{Hmac, Mac as _};
use mimi_codec::v06::labels::{FRANKING_INTEGRITY_TBS, sign_content};
use mimi_codec::v06::{
    AppDataDictionary, CipherSuite, ComponentData, Credential, Frank, FrankAad, FrankingAgentData,
    FrankingIntegrityTbs, MimiUri, MimiUriKind, ServerFrankingContext, component,
};
use mimi_codec::{CodecError, Opaque, ServerName, Wire};
use openmls::prelude::tls_codec::Deserialize as _;
use openmls::prelude::{
    Ciphersuite, MlsMessageBodyIn, MlsMessageIn, OpenMlsCrypto as _, OpenMlsRand as _,
};
use openmls_traits::signatures::Signer;
use sha2::Sha256;

/// The length of the sender's salt: MIMI content's 128-bit salt.
pub const FRANKING_SALT_LEN: usize = 16;
/// The length of a `franking_tag` and of a `server_frank` (HMAC-SHA256).
pub const FRANK_LEN: usize = 32;
/// The length of the hub's HMAC key (`hub_key`).
pub const HUB_KEY_LEN: usize = 32;
/// The MLS credential type the `franking_agent`'s credential must have (basic).
pub const BASIC_CREDENTIAL: u16 = 1;

/// `HMAC_SHA256(salt, application_data)`, or `HMAC_SHA256(hub_key, franking_tag || context)`.
pub type FrankingTag = [u8; FRANK_LEN];

/// Why franking, or the verification of a frank, failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrankingError {
    /// The salt is not 16 octets.
    #[error("the salt is {0} octets, not {FRANKING_SALT_LEN}")]
    SaltLength(usize),
    /// The cipher suite is not one this implementation knows.
    #[error("unknown cipher suite {0:#06x}")]
    UnknownCiphersuite(CipherSuite),
    /// The frank's cipher suite is not the group's.
    #[error("the frank's cipher suite {frank:#06x} is not the group's {group:#06x}")]
    CiphersuiteMismatch {
        /// The frank's `franking_signature_ciphersuite`.
        frank: CipherSuite,
        /// The group's cipher suite.
        group: CipherSuite,
    },
    /// The signer's signature scheme is not the cipher suite's.
    #[error("the franking key signs with another scheme than cipher suite {0:#06x}")]
    SchemeMismatch(CipherSuite),
    /// `franking_tag` does not match the content and its salt.
    #[error("the franking_tag does not match the message content")]
    FrankingTagMismatch,
    /// `server_frank` is not the hub's HMAC of the tag and context.
    #[error("the server_frank does not match the message and its context")]
    ServerFrankMismatch,
    /// `franking_integrity_signature` does not verify.
    #[error("the franking_integrity_signature does not verify")]
    BadSignature,
    /// The `franking_agent` does not name the room's hub.
    #[error("the franking_agent: {0}")]
    Agent(String),
    /// A value the content asserts is not what the frank's context says.
    #[error("the content's {field} {asserted} is not the context's {context}")]
    ContextMismatch {
        /// Which value (`sender_uri`, `room_uri`).
        field: &'static str,
        /// What the content asserts.
        asserted: String,
        /// What the context (or the received message) says.
        context: String,
    },
    /// The AAD or the MLS message is malformed.
    #[error("malformed: {0}")]
    Malformed(String),
    /// A value could not be encoded (over a limit).
    #[error("encoding: {0}")]
    Encode(#[from] CodecError),
    /// The signer failed.
    #[error("signing: {0}")]
    Sign(String),
    /// No randomness for a salt.
    #[error("randomness: {0}")]
    Random(String),
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> Result<Hmac<Sha256>, FrankingError> {
    let mut mac = <Hmac<Sha256>>::new_from_slice(key)
        .map_err(|e| FrankingError::Malformed(format!("HMAC key: {e}")))?;
    for part in parts {
        mac.update(part);
    }
    Ok(mac)
}

fn salt_ok(salt: &[u8]) -> Result<(), FrankingError> {
    if salt.len() == FRANKING_SALT_LEN {
        Ok(())
    } else {
        Err(FrankingError::SaltLength(salt.len()))
    }
}

/// A fresh random salt (for a format whose builder does not make one).
pub fn fresh_salt() -> Result<[u8; FRANKING_SALT_LEN], FrankingError> {
    openmls_rust_crypto::RustCrypto::default()
        .random_array()
        .map_err(|e| FrankingError::Random(format!("{e:?}")))
}

/// The sender's `franking_tag = HMAC_SHA256(salt, application_data)`.
///
/// Rule V06-FRANK-1 (docs/protocol-coverage.md).
pub fn franking_tag(salt: &[u8], application_data: &[u8]) -> Result<FrankingTag, FrankingError> {
    salt_ok(salt)?;
    Ok(hmac(salt, &[application_data])?
        .finalize()
        .into_bytes()
        .into())
}

/// Check, in constant time, that `tag` is `HMAC_SHA256(salt, application_data)`.
pub fn verify_franking_tag(
    salt: &[u8],
    application_data: &[u8],
    tag: &FrankingTag,
) -> Result<(), FrankingError> {
    salt_ok(salt)?;
    hmac(salt, &[application_data])?
        .verify_slice(tag)
        .map_err(|_| FrankingError::FrankingTagMismatch)
}

/// The `frank_aad` Safe AAD item carrying `tag`.
pub fn frank_aad_item(tag: &FrankingTag) -> Result<ComponentData, FrankingError> {
    Ok(ComponentData {
        component_id: component::FRANK_AAD,
        data: Opaque::new(FrankAad { franking_tag: *tag }.encode()?)?,
    })
}

/// The `authenticated_data` of a franked PrivateMessage: a `SafeAAD` (draft-ietf-mls-extensions
/// §4.9: `SafeAADItem aad_items<V>`, each a component ID and `opaque aad_item_data<V>`, sorted
/// by ID; the same framing as an `AppDataDictionary`) whose one item is `frank_aad`.
pub fn franked_aad(tag: &FrankingTag) -> Result<Vec<u8>, FrankingError> {
    Ok(AppDataDictionary::new(vec![frank_aad_item(tag)?])?.encode()?)
}

/// The `franking_tag` a PrivateMessage's `authenticated_data` carries in its `frank_aad`
/// component, if any. Empty AAD has none; AAD that is not a well-formed `SafeAAD`, or a
/// `frank_aad` that is not a `FrankAAD`, is malformed.
pub fn franking_tag_of_aad(aad: &[u8]) -> Result<Option<FrankingTag>, FrankingError> {
    if aad.is_empty() {
        return Ok(None);
    }
    let items = AppDataDictionary::decode(aad)
        .map_err(|e| FrankingError::Malformed(format!("SafeAAD: {e}")))?;
    items
        .get(component::FRANK_AAD)
        .map(|data| {
            FrankAad::decode(data)
                .map(|a| a.franking_tag)
                .map_err(|e| FrankingError::Malformed(format!("frank_aad: {e}")))
        })
        .transpose()
}

/// The `franking_tag` of an `MLSMessage` holding a PrivateMessage (what `submitMessage`
/// carries), if its AAD has one. Any other message is malformed.
pub fn franking_tag_of_message(mls_message: &[u8]) -> Result<Option<FrankingTag>, FrankingError> {
    let message = MlsMessageIn::tls_deserialize_exact(mls_message)
        .map_err(|e| FrankingError::Malformed(format!("MLSMessage: {e}")))?;
    match message.extract() {
        MlsMessageBodyIn::PrivateMessage(m) => franking_tag_of_aad(m.aad()),
        _ => Err(FrankingError::Malformed("not a PrivateMessage".to_owned())),
    }
}

/// `server_frank = HMAC_SHA256(hub_key, franking_tag || context)`, the context TLS-encoded.
///
/// Rule V06-FRANK-2 (docs/protocol-coverage.md).
pub fn server_frank(
    hub_key: &[u8],
    tag: &FrankingTag,
    context: &ServerFrankingContext,
) -> Result<FrankingTag, FrankingError> {
    let context = context.encode()?;
    Ok(hmac(hub_key, &[tag, &context])?
        .finalize()
        .into_bytes()
        .into())
}

/// Check, in constant time, that `frank` is the hub's `server_frank` of `tag` in `context`.
pub fn verify_server_frank(
    hub_key: &[u8],
    tag: &FrankingTag,
    context: &ServerFrankingContext,
    frank: &[u8; FRANK_LEN],
) -> Result<(), FrankingError> {
    let context = context.encode()?;
    hmac(hub_key, &[tag, &context])?
        .verify_slice(frank)
        .map_err(|_| FrankingError::ServerFrankMismatch)
}

fn ciphersuite(suite: CipherSuite) -> Result<Ciphersuite, FrankingError> {
    Ciphersuite::try_from(suite).map_err(|_| FrankingError::UnknownCiphersuite(suite))
}

/// The bytes `SignWithLabel(franking_private_key, "FrankingIntegrityTBS", …)` signs.
fn integrity_content(
    server_frank: &FrankingTag,
    suite: CipherSuite,
    context: &ServerFrankingContext,
) -> Result<Vec<u8>, FrankingError> {
    let tbs = FrankingIntegrityTbs {
        server_frank: *server_frank,
        franking_signature_ciphersuite: suite,
        context: context.clone(),
    };
    Ok(sign_content(FRANKING_INTEGRITY_TBS, &tbs.encode()?)?)
}

/// The hub's frank of an accepted application message: `server_frank` with `hub_key`, and
/// `franking_integrity_signature = SignWithLabel(franking_private_key, "FrankingIntegrityTBS",
/// FrankingIntegrityTBS)` with `signer` under the group's cipher suite `suite` (whose
/// signature scheme must be the signer's).
///
/// Rule V06-FRANK-3 (docs/protocol-coverage.md).
pub fn make_frank(
    hub_key: &[u8],
    signer: &impl Signer,
    suite: CipherSuite,
    tag: &FrankingTag,
    context: &ServerFrankingContext,
) -> Result<Frank, FrankingError> {
    if ciphersuite(suite)?.signature_algorithm() != signer.signature_scheme() {
        return Err(FrankingError::SchemeMismatch(suite));
    }
    let server_frank = server_frank(hub_key, tag, context)?;
    let content = integrity_content(&server_frank, suite, context)?;
    let signature = signer
        .sign(&content)
        .map_err(|e| FrankingError::Sign(format!("{e:?}")))?;
    Ok(Frank {
        server_frank,
        franking_signature_ciphersuite: suite,
        franking_integrity_signature: Opaque::new(signature)?,
    })
}

/// `VerifyWithLabel(franking_signature_key, "FrankingIntegrityTBS", FrankingIntegrityTBS,
/// franking_integrity_signature)` under the frank's cipher suite, which must be
/// `group_suite` (the receiver's group's; the hub's own when it checks a report).
///
/// Rule V06-FRANK-4 (docs/protocol-coverage.md).
pub fn verify_frank_integrity(
    franking_signature_key: &[u8],
    group_suite: CipherSuite,
    frank: &Frank,
    context: &ServerFrankingContext,
) -> Result<(), FrankingError> {
    let suite = frank.franking_signature_ciphersuite;
    if suite != group_suite {
        return Err(FrankingError::CiphersuiteMismatch {
            frank: suite,
            group: group_suite,
        });
    }
    let scheme = ciphersuite(suite)?.signature_algorithm();
    let content = integrity_content(&frank.server_frank, suite, context)?;
    openmls_rust_crypto::RustCrypto::default()
        .verify_signature(
            scheme,
            &content,
            franking_signature_key,
            frank.franking_integrity_signature.as_slice(),
        )
        .map_err(|_| FrankingError::BadSignature)
}

/// The provider URI a hub's `franking_agent` credential names: `mimi://<domain>`.
pub fn agent_identity(hub: &ServerName) -> String {
    format!("mimi://{hub}")
}

/// The `franking_agent` GroupContext component a room's creator puts in: the hub's franking
/// signature key and a BasicCredential naming the hub's domain (see [`agent_identity`]).
pub fn franking_agent(
    hub: &ServerName,
    franking_signature_key: &[u8],
) -> Result<FrankingAgentData, FrankingError> {
    Ok(FrankingAgentData {
        franking_signature_key: Opaque::new(franking_signature_key.to_vec())?,
        credential: Credential {
            credential_type: BASIC_CREDENTIAL,
            content: Opaque::new(agent_identity(hub).into_bytes())?,
        },
    })
}

/// Check that a `franking_agent` names `hub`, the domain of the room's hub (§5.4.1.3: "verifies
/// the domain name in the `franking_agent.credential` corresponds to the domain of the Hub"),
/// and give its signature key.
pub fn agent_key_for<'a>(
    agent: &'a FrankingAgentData,
    hub: &ServerName,
) -> Result<&'a [u8], FrankingError> {
    if agent.credential.credential_type != BASIC_CREDENTIAL {
        return Err(FrankingError::Agent(format!(
            "credential type {} is not basic",
            agent.credential.credential_type
        )));
    }
    let identity = std::str::from_utf8(agent.credential.content.as_slice())
        .map_err(|_| FrankingError::Agent("identity is not UTF-8".to_owned()))?;
    if identity != agent_identity(hub) {
        return Err(FrankingError::Agent(format!(
            "{identity} does not name the hub {hub}"
        )));
    }
    Ok(agent.franking_signature_key.as_slice())
}

/// The hub of a room URI (`mimi://<hub>/r/<id>`).
pub fn hub_of_room(room: &mimi_codec::v06::IdentifierUri) -> Result<ServerName, FrankingError> {
    let uri: MimiUri = room
        .mimi()
        .map_err(|e| FrankingError::Malformed(format!("room URI {room}: {e}")))?;
    if uri.kind() != MimiUriKind::Room {
        return Err(FrankingError::Malformed(format!(
            "{room} is not a room URI"
        )));
    }
    Ok(uri.provider().clone())
}

/// What a receiver (or a reporting provider) checks a franked message against.
#[derive(Debug, Clone)]
pub struct FrankedMessage<'a> {
    /// The decrypted application data (for MIMI content, the content's bytes).
    pub application_data: &'a [u8],
    /// The salt the content carries.
    pub salt: &'a [u8],
    /// The `sender_uri` the content asserts.
    pub asserted_sender: &'a str,
    /// The `room_uri` the content asserts.
    pub asserted_room: &'a str,
    /// The hub's acceptance time the message came with.
    pub accepted_timestamp: u64,
    /// The hub's frank.
    pub frank: &'a Frank,
}

impl FrankedMessage<'_> {
    /// The `ServerFrankingContext` the hub signed if this message is genuine: the content's
    /// sender and room, the acceptance time.
    pub fn context(&self) -> Result<ServerFrankingContext, FrankingError> {
        let parse = |field: &'static str, s: &str| {
            s.parse()
                .map_err(|e| FrankingError::Malformed(format!("{field} {s}: {e}")))
        };
        Ok(ServerFrankingContext {
            sender_uri: parse("sender_uri", self.asserted_sender)?,
            room_uri: parse("room_uri", self.asserted_room)?,
            accepted_timestamp: self.accepted_timestamp,
        })
    }
}

/// A receiver's checks of a franked message (§5.4.1.3) once decrypted: the frank's cipher
/// suite is the group's, the `franking_agent` names the room's hub, the integrity signature
/// verifies over the context rebuilt from the content, the `franking_tag` of the AAD (when the
/// caller has it) matches the content and salt, and the content's room is `room` (the room
/// the message arrived in). The sender's credential check is the caller's (it holds the
/// LeafNode). A reporting provider runs the same checks with `aad_tag` `None`: it has the
/// content, not the ciphertext.
///
/// Rule V06-FRANK-5 (docs/protocol-coverage.md).
pub fn verify_received(
    message: &FrankedMessage<'_>,
    aad_tag: Option<&FrankingTag>,
    agent: &FrankingAgentData,
    group_suite: CipherSuite,
    room: &mimi_codec::v06::IdentifierUri,
) -> Result<ServerFrankingContext, FrankingError> {
    let context = message.context()?;
    if context.room_uri != *room {
        return Err(FrankingError::ContextMismatch {
            field: "room_uri",
            asserted: context.room_uri.to_string(),
            context: room.to_string(),
        });
    }
    let key = agent_key_for(agent, &hub_of_room(room)?)?;
    verify_frank_integrity(key, group_suite, message.frank, &context)?;
    match aad_tag {
        Some(tag) => verify_franking_tag(message.salt, message.application_data, tag)?,
        None => salt_ok(message.salt)?,
    }
    Ok(context)
}

/// The hub's check of a reported message (§5.9): the frank's cipher suite is `hub_suite`'s
/// signature scheme family (the suite it franks under), the `franking_tag` recomputed from
/// the content and salt, the `server_frank` recomputed with `hub_key` over the context rebuilt
/// from the content, and its own integrity signature verified with its franking key.
///
/// Rule V06-ABUSE-2 (docs/protocol-coverage.md).
pub fn verify_reported(
    message: &FrankedMessage<'_>,
    hub_key: &[u8],
    franking_signature_key: &[u8],
) -> Result<ServerFrankingContext, FrankingError> {
    let context = message.context()?;
    let tag = franking_tag(message.salt, message.application_data)?;
    verify_server_frank(hub_key, &tag, &context, &message.frank.server_frank)?;
    verify_frank_integrity(
        franking_signature_key,
        message.frank.franking_signature_ciphersuite,
        message.frank,
        &context,
    )?;
    Ok(context)
}

#[cfg(test)]
mod tests;
