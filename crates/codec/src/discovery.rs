//! Identifier discovery (`GET /identifierDiscovery/{domain}`): `IdentifierRequest` and
//! `IdentifierResponse`. The draft's `string` is `opaque<V>` holding UTF-8.

use std::io::{Read, Write};

use tls_codec::{Deserialize, Serialize, Size, TlsDeserialize, TlsSerialize, TlsSize};

use crate::bounded::Text;
use crate::enums::wire_enum;
use crate::limits::*;

wire_enum! {
    /// `IdentifierType`, which -06 calls `SearchIdentifierType` (the same values, 1 to 8;
    /// `reserved(0)` is refused): [`crate::v06::SearchIdentifierType`] is this type.
    pub enum IdentifierType: u8, "IdentifierType" {
        /// A handle (-06: the whole handle URI, exactly).
        Handle = 1,
        /// A nickname (-06: the nickname or the handle's user part, exactly).
        Nick = 2,
        /// An email address, exactly.
        Email = 3,
        /// A phone number (-06: international format, exactly).
        Phone = 4,
        /// Part of a name (-06: a case-insensitive substring).
        PartialName = 5,
        /// The whole profile (-06: a substring of any searchable field).
        WholeProfile = 6,
        /// An OpenID Connect standard claim (the request names the claim).
        OidcStdClaim = 7,
        /// A vCard field (the request names the field; -06: the property).
        VcardField = 8,
    }
}

/// A search string or a claim or field name (UTF-8 in `opaque<V>`: the first version's
/// `string`, -06's `opaque ...<V>`).
pub type SearchText = Text<MAX_SEARCH_VALUE_LEN>;

/// What to search by; the OIDC and vCard kinds name their claim or field. -06's
/// `QueryElement` searches the same way ([`crate::v06::SearchField`] is this type); the two
/// drafts differ only in where the name goes (after the search value here, before it in
/// -06).
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
    /// An OIDC standard claim, by name (`claimName`).
    OidcStdClaim(SearchText),
    /// A vCard field, by name (`fieldName`; -06: `propertyName`).
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

    /// The claim or field name the `select(type)` carries (OIDC and vCard only).
    pub fn field_name(&self) -> Option<&SearchText> {
        match self {
            IdentifierQuery::OidcStdClaim(name) | IdentifierQuery::VcardField(name) => Some(name),
            _ => None,
        }
    }

    /// The query of type `ty`, reading from `r` the name the `select(type)` carries for
    /// the OIDC and vCard kinds (nothing for the others).
    pub fn read_for_type<R: Read>(ty: IdentifierType, r: &mut R) -> Result<Self, tls_codec::Error> {
        Ok(match ty {
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
        })
    }

    /// The length of the `select(type)` part (the name, if any).
    pub fn field_name_len(&self) -> usize {
        self.field_name().map_or(0, Size::tls_serialized_len)
    }

    /// Write the `select(type)` part (the name, if any).
    pub fn write_field_name<W: Write>(&self, w: &mut W) -> Result<usize, tls_codec::Error> {
        match self.field_name() {
            Some(name) => name.tls_serialize(w),
            None => Ok(0),
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
        1 + self.search_value.tls_serialized_len() + self.query.field_name_len()
    }
}

impl Serialize for IdentifierRequest {
    fn tls_serialize<W: Write>(&self, w: &mut W) -> Result<usize, tls_codec::Error> {
        Ok(self.query.identifier_type().tls_serialize(w)?
            + self.search_value.tls_serialize(w)?
            + self.query.write_field_name(w)?)
    }
}

impl Deserialize for IdentifierRequest {
    fn tls_deserialize<R: Read>(r: &mut R) -> Result<Self, tls_codec::Error> {
        let ty = IdentifierType::tls_deserialize(r)?;
        let search_value = SearchText::tls_deserialize(r)?;
        Ok(IdentifierRequest {
            query: IdentifierQuery::read_for_type(ty, r)?,
            search_value,
        })
    }
}

wire_enum! {
    /// `IdentifierDiscoveryCode`, which -06 calls `IdentifierQueryCode` (the same values):
    /// [`crate::v06::IdentifierQueryCode`] is this type.
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
