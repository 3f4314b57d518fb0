//! The -06 provider-to-provider services outside a room's delivery: consent (§5.7),
//! identifier query (§5.8), abuse reports (§5.9), franking's own structures (§5.4.1) and the
//! minimal-metadata credentials (§6).

use std::io::{Read, Write};

use tls_codec::{Deserialize, Serialize, Size, TlsDeserialize, TlsSerialize, TlsSize};

use super::delivery::{Frank, Signature};
use super::limits::*;
use super::mls::*;
use super::uri::{IdentifierUri, OptionalUri};
use crate::CodecError;
use crate::bounded::{BoundedVec, Opaque, Text};
use crate::enums::wire_enum;
use crate::error::park;
use crate::limits::{MAX_KEY_PACKAGES, MAX_NAME_LEN, MAX_REASON_LEN};

// ---------------------------------------------------------------- consent (§5.7)

wire_enum! {
    /// `ConsentOperation`.
    pub enum ConsentOperation: u8, "ConsentOperation" {
        /// Cancel an earlier request (`requestConsent`).
        Cancel = 0,
        /// Ask for consent (`requestConsent`).
        Request = 1,
        /// Consent granted (`updateConsent`).
        Grant = 2,
        /// Consent revoked or denied in advance (`updateConsent`).
        Revoke = 3,
    }
}

/// `ConsentEntry`, the body of `requestConsent` and `updateConsent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentEntry {
    /// The operation.
    pub operation: ConsentOperation,
    /// The user who will later request key material.
    pub requester_uri: IdentifierUri,
    /// The user whose consent it is.
    pub target_uri: IdentifierUri,
    /// `optional<RoomId>`: the one room the consent is for, if any.
    pub room_id: Option<IdentifierUri>,
    /// With `grant` only: `KeyPackage clientKeyPackages<V>` (may be empty); empty otherwise.
    pub client_key_packages: BoundedVec<KeyPackage, MAX_KEY_PACKAGES>,
    /// The extension point.
    pub consent_extensions: AppDataDictionary,
}

impl ConsentEntry {
    /// The `ConsentScope` of this entry.
    pub fn scope(&self) -> ConsentScope {
        ConsentScope {
            requester_uri: self.requester_uri.clone(),
            target_uri: self.target_uri.clone(),
            room_id: self.room_id.clone(),
        }
    }
}

impl Size for ConsentEntry {
    fn tls_serialized_len(&self) -> usize {
        1 + self.requester_uri.tls_serialized_len()
            + self.target_uri.tls_serialized_len()
            + self.room_id.tls_serialized_len()
            + if self.operation == ConsentOperation::Grant {
                self.client_key_packages.tls_serialized_len()
            } else {
                0
            }
            + self.consent_extensions.tls_serialized_len()
    }
}

impl Serialize for ConsentEntry {
    fn tls_serialize<W: Write>(&self, w: &mut W) -> Result<usize, tls_codec::Error> {
        let mut n = self.operation.tls_serialize(w)?
            + self.requester_uri.tls_serialize(w)?
            + self.target_uri.tls_serialize(w)?
            + self.room_id.tls_serialize(w)?;
        if self.operation == ConsentOperation::Grant {
            n += self.client_key_packages.tls_serialize(w)?;
        } else if !self.client_key_packages.is_empty() {
            return Err(park(CodecError::Malformed(
                "only a grant carries clientKeyPackages".into(),
            )));
        }
        Ok(n + self.consent_extensions.tls_serialize(w)?)
    }
}

impl Deserialize for ConsentEntry {
    fn tls_deserialize<R: Read>(r: &mut R) -> Result<Self, tls_codec::Error> {
        let operation = ConsentOperation::tls_deserialize(r)?;
        let requester_uri = IdentifierUri::tls_deserialize(r)?;
        let target_uri = IdentifierUri::tls_deserialize(r)?;
        let room_id = Option::<IdentifierUri>::tls_deserialize(r)?;
        let client_key_packages = if operation == ConsentOperation::Grant {
            BoundedVec::tls_deserialize(r)?
        } else {
            BoundedVec::default()
        };
        Ok(ConsentEntry {
            operation,
            requester_uri,
            target_uri,
            room_id,
            client_key_packages,
            consent_extensions: AppDataDictionary::tls_deserialize(r)?,
        })
    }
}

/// `ConsentScope`: what a consent applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct ConsentScope {
    /// The requester.
    pub requester_uri: IdentifierUri,
    /// The target.
    pub target_uri: IdentifierUri,
    /// The room, if the consent is for one room.
    pub room_id: Option<IdentifierUri>,
}

// ---------------------------------------------------------------- identifierQuery (§5.8)

pub use crate::discovery::{
    IdentifierDiscoveryCode as IdentifierQueryCode, IdentifierQuery as SearchField,
    IdentifierType as SearchIdentifierType, SearchText,
};

/// ```text
/// struct {
///   SearchIdentifierType searchType;
///   select(type) { case oidcStdClaim: opaque claimName<V>; case vcardField: opaque propertyName<V>; };
///   opaque searchValue<V>;
/// } QueryElement;
/// ```
/// The first version's `IdentifierRequest` has the same fields with the name after the
/// value; the enumerations are shared ([`SearchField`] is [`crate::IdentifierQuery`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryElement {
    /// What to search.
    pub field: SearchField,
    /// The value (UTF-8).
    pub search_value: SearchText,
}

impl Size for QueryElement {
    fn tls_serialized_len(&self) -> usize {
        1 + self.field.field_name_len() + self.search_value.tls_serialized_len()
    }
}

impl Serialize for QueryElement {
    fn tls_serialize<W: Write>(&self, w: &mut W) -> Result<usize, tls_codec::Error> {
        Ok(self.field.identifier_type().tls_serialize(w)?
            + self.field.write_field_name(w)?
            + self.search_value.tls_serialize(w)?)
    }
}

impl Deserialize for QueryElement {
    fn tls_deserialize<R: Read>(r: &mut R) -> Result<Self, tls_codec::Error> {
        let ty = SearchIdentifierType::tls_deserialize(r)?;
        Ok(QueryElement {
            field: SearchField::read_for_type(ty, r)?,
            search_value: SearchText::tls_deserialize(r)?,
        })
    }
}

/// `IdentifierRequest`, the body of `POST /identifierQuery/{domain}`: every element must
/// match (AND).
#[derive(Debug, Clone, PartialEq, Eq, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct IdentifierRequest {
    /// `QueryElement query_elements<V>`.
    pub query_elements: BoundedVec<QueryElement, MAX_QUERY_ELEMENTS>,
    /// The extension point.
    pub id_request_extensions: AppDataDictionary,
}

wire_enum! {
    /// `FieldSource` of a profile field (`reserved(0)` is refused).
    pub enum FieldSource: u8, "FieldSource" {
        /// An OIDC standard claim.
        OidcStdClaim = 7,
        /// A vCard property.
        VcardField = 8,
    }
}

/// `ProfileField`.
#[derive(Debug, Clone, PartialEq, Eq, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct ProfileField {
    /// Where the field's name comes from.
    pub field_source: FieldSource,
    /// `string fieldName` (UTF-8 in `opaque<V>`).
    pub field_name: Text<MAX_NAME_LEN>,
    /// `opaque fieldValue<V>`.
    pub field_value: Opaque<MAX_PROFILE_VALUE_LEN>,
}

/// `UserProfile`.
#[derive(Debug, Clone, PartialEq, Eq, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct UserProfile {
    /// The user's stable URI.
    pub stable_uri: IdentifierUri,
    /// `ProfileField fields<V>`.
    pub fields: BoundedVec<ProfileField, MAX_PROFILE_FIELDS>,
}

/// `IdentifierResponse`.
#[derive(Debug, Clone, PartialEq, Eq, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct IdentifierResponse {
    /// The outcome.
    pub response_code: IdentifierQueryCode,
    /// `IdentifierUri uri<V>`: a vector of URIs (each its own `opaque uri<V>`).
    pub uri: BoundedVec<IdentifierUri, MAX_IDENTIFIER_RESULTS>,
    /// `UserProfile foundProfiles<V>`.
    pub found_profiles: BoundedVec<UserProfile, MAX_IDENTIFIER_RESULTS>,
    /// The extension point.
    pub id_response_extensions: AppDataDictionary,
}

// ---------------------------------------------------------------- reportAbuse (§5.9)

/// `AbuseType`. The -06 registry has only `reserved(0)` (a TODO asks for a taxonomy), so the
/// value is carried as a raw `uint8`; 0 means unspecified.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, TlsSize, TlsSerialize, TlsDeserialize,
)]
pub struct AbuseType(pub u8);

/// `AbusiveMessage`: one reported message with its frank.
#[derive(Debug, Clone, PartialEq, Eq, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct AbusiveMessage {
    /// The decrypted content (for example a MIMI content message).
    pub message_content: Opaque<MAX_MESSAGE_CONTENT_LEN>,
    /// The frank the hub returned for it.
    pub frank: Frank,
    /// When the hub accepted it (ms since the UNIX epoch).
    pub accepted_timestamp: u64,
}

/// `AbuseReport`, the body of `POST /reportAbuse/{roomId}`.
#[derive(Debug, Clone, PartialEq, Eq, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct AbuseReport {
    /// The reporting user; the text makes it optional, so an empty URI means anonymous.
    pub reporting_user: OptionalUri,
    /// The alleged abuser.
    pub alleged_abuser_uri: IdentifierUri,
    /// The reason.
    pub reason_code: AbuseType,
    /// `opaque note<V>`: UTF-8, may be empty.
    pub note: Text<MAX_REASON_LEN>,
    /// `AbusiveMessage messages<V>`.
    pub messages: BoundedVec<AbusiveMessage, MAX_ABUSIVE_MESSAGES>,
    /// The extension point.
    pub abuse_extensions: AppDataDictionary,
}

// ---------------------------------------------------------------- franking (§5.4.1)

/// `FrankAAD`: the `frank_aad` Safe AAD component (ID [`super::component::FRANK_AAD`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct FrankAad {
    /// `HMAC_SHA256(salt, application_data)`.
    pub franking_tag: [u8; 32],
}

/// `FrankingAgentData` (also `FrankingAgentUpdate`): the `franking_agent` GroupContext
/// component (ID [`super::component::FRANKING_AGENT`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct FrankingAgentData {
    /// The hub's franking signature key.
    pub franking_signature_key: SignaturePublicKey,
    /// Its credential (naming the hub's domain).
    pub credential: Credential,
}

/// `ServerFrankingContext`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct ServerFrankingContext {
    /// The sender's URI as asserted to the hub.
    pub sender_uri: IdentifierUri,
    /// The room.
    pub room_uri: IdentifierUri,
    /// The hub's acceptance time.
    pub accepted_timestamp: u64,
}

/// `FrankingIntegrityTBS`: what `franking_integrity_signature` signs (label
/// `"FrankingIntegrityTBS"`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct FrankingIntegrityTbs {
    /// `opaque server_frank[32]`.
    pub server_frank: [u8; 32],
    /// The cipher suite in use when franked.
    pub franking_signature_ciphersuite: CipherSuite,
    /// The context.
    pub context: ServerFrankingContext,
}

// ---------------------------------------------------------------- minimal metadata (§6)

/// `PseudonymousCredential`. The text writes `opaque signature_public_key;` without a
/// length; this codec reads it as `opaque signature_public_key<V>` (an MLS
/// `SignaturePublicKey`), the only framing that can be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Hash, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct PseudonymousCredential {
    /// The client's pseudonym.
    pub client_pseudonym: IdentifierUri,
    /// The user's pseudonym.
    pub user_pseudonym: IdentifierUri,
    /// The signature key.
    pub signature_public_key: SignaturePublicKey,
    /// The encrypted `IdentityLinkTBE`.
    pub identity_link_ciphertext: Opaque<{ crate::limits::MAX_CERTIFICATE_LEN }>,
}

/// `PseudonymousCredentialTBS`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct PseudonymousCredentialTbs {
    /// The client's pseudonym.
    pub client_pseudonym: IdentifierUri,
    /// The user's pseudonym.
    pub user_pseudonym: IdentifierUri,
    /// The signature key.
    pub signature_public_key: SignaturePublicKey,
}

/// `IdentityLinkTBE`: the real credential, linked to the pseudonym by a signature.
#[derive(Debug, Clone, PartialEq, Eq, Hash, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct IdentityLinkTbe {
    /// `SignWithLabel(., "PseudonymousCredentialTBS", PseudonymousCredentialTBS)`.
    pub pseudonymous_credential_signature: Signature,
    /// The client's real credential.
    pub client_credential: Credential,
}
