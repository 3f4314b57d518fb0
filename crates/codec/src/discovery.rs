//! Identifier discovery (`GET /identifierDiscovery/{domain}`): `IdentifierRequest` and
//! `IdentifierResponse`. The draft's `string` is `opaque<V>` holding UTF-8.

use std::io::{Read, Write};

use tls_codec::{Deserialize, Serialize, Size, TlsDeserialize, TlsSerialize, TlsSize};

use crate::bounded::Text;
use crate::enums::wire_enum;
use crate::limits::*;

wire_enum! {
    /// `IdentifierType`.
    pub enum IdentifierType: u8, "IdentifierType" {
        /// A handle.
        Handle = 1,
        /// A nickname.
        Nick = 2,
        /// An email address.
        Email = 3,
        /// A phone number.
        Phone = 4,
        /// Part of a name.
        PartialName = 5,
        /// The whole profile.
        WholeProfile = 6,
        /// An OpenID Connect standard claim (the request names the claim).
        OidcStdClaim = 7,
        /// A vCard field (the request names the field).
        VcardField = 8,
    }
}

/// A search string or a claim or field name.
pub type SearchText = Text<MAX_SEARCH_VALUE_LEN>;

/// What to search by; the OIDC and vCard kinds name their claim or field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentifierQuery {
    /// A handle.
    Handle,
    /// A nickname.
    Nick,
    /// An email address.
    Email,
    /// A phone number.
    Phone,
    /// Part of a name.
    PartialName,
    /// The whole profile.
    WholeProfile,
    /// An OIDC standard claim, by name.
    OidcStdClaim(SearchText),
    /// A vCard field, by name.
    VcardField(SearchText),
}

impl IdentifierQuery {
    /// The `IdentifierType` on the wire.
    pub fn identifier_type(&self) -> IdentifierType {
        match self {
            IdentifierQuery::Handle => IdentifierType::Handle,
            IdentifierQuery::Nick => IdentifierType::Nick,
            IdentifierQuery::Email => IdentifierType::Email,
            IdentifierQuery::Phone => IdentifierType::Phone,
            IdentifierQuery::PartialName => IdentifierType::PartialName,
            IdentifierQuery::WholeProfile => IdentifierType::WholeProfile,
            IdentifierQuery::OidcStdClaim(_) => IdentifierType::OidcStdClaim,
            IdentifierQuery::VcardField(_) => IdentifierType::VcardField,
        }
    }
}

/// ```text
/// struct {
///   IdentifierType type;
///   string searchValue;
///   select(type) { case oidcStdClaim: string claimName; case vcardField: string fieldName; };
/// } IdentifierRequest;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentifierRequest {
    /// What to search by.
    pub query: IdentifierQuery,
    /// The value searched for.
    pub search_value: SearchText,
}

impl Size for IdentifierRequest {
    fn tls_serialized_len(&self) -> usize {
        1 + self.search_value.tls_serialized_len()
            + match &self.query {
                IdentifierQuery::OidcStdClaim(n) | IdentifierQuery::VcardField(n) => {
                    n.tls_serialized_len()
                }
                _ => 0,
            }
    }
}

impl Serialize for IdentifierRequest {
    fn tls_serialize<W: Write>(&self, w: &mut W) -> Result<usize, tls_codec::Error> {
        let mut n = self.query.identifier_type().tls_serialize(w)?;
        n += self.search_value.tls_serialize(w)?;
        if let IdentifierQuery::OidcStdClaim(name) | IdentifierQuery::VcardField(name) = &self.query
        {
            n += name.tls_serialize(w)?;
        }
        Ok(n)
    }
}

impl Deserialize for IdentifierRequest {
    fn tls_deserialize<R: Read>(r: &mut R) -> Result<Self, tls_codec::Error> {
        let ty = IdentifierType::tls_deserialize(r)?;
        let search_value = SearchText::tls_deserialize(r)?;
        let query = match ty {
            IdentifierType::Handle => IdentifierQuery::Handle,
            IdentifierType::Nick => IdentifierQuery::Nick,
            IdentifierType::Email => IdentifierQuery::Email,
            IdentifierType::Phone => IdentifierQuery::Phone,
            IdentifierType::PartialName => IdentifierQuery::PartialName,
            IdentifierType::WholeProfile => IdentifierQuery::WholeProfile,
            IdentifierType::OidcStdClaim => {
                IdentifierQuery::OidcStdClaim(SearchText::tls_deserialize(r)?)
            }
            IdentifierType::VcardField => {
                IdentifierQuery::VcardField(SearchText::tls_deserialize(r)?)
            }
        };
        Ok(IdentifierRequest {
            query,
            search_value,
        })
    }
}

wire_enum! {
    /// `IdentifierDiscoveryCode`.
    pub enum IdentifierDiscoveryCode: u8, "IdentifierDiscoveryCode" {
        /// Exactly one user matched; `uri` names it.
        Success = 0,
        /// No user matched.
        NotFound = 1,
        /// More than one user matched.
        Ambiguous = 2,
        /// The requester may not search.
        Forbidden = 3,
        /// The server does not search by that field.
        UnsupportedField = 4,
    }
}

/// ```text
/// struct { IdentifierDiscoveryCode responseCode; IdentifierUri uri; } IdentifierResponse;
/// ```
/// `IdentifierUri` is `opaque<V>` holding the user ID (`@bob:example.com`) on success and
/// empty otherwise.
#[derive(Debug, Clone, PartialEq, Eq, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct IdentifierResponse {
    /// The outcome.
    pub code: IdentifierDiscoveryCode,
    /// The internal identifier found (empty unless `code` is success).
    pub uri: Text<MAX_URI_LEN>,
}
