//! How values are written in the API: binary values in standard padded base64, identifiers
//! as their text, MIMI structures TLS-encoded then base64, path segments and query values
//! percent-encoded, and the names of join rules, identifier types and discovery codes.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mimi_codec::{IdentifierDiscoveryCode, IdentifierQuery, JoinRule};
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Standard padded base64 of `bytes`.
pub fn b64_encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decode standard padded base64; `what` names the field in the error.
pub fn b64_decode(text: &str, what: &str) -> Result<Vec<u8>, Error> {
    STANDARD
        .decode(text)
        .map_err(|e| Error::malformed(format!("{what}: not base64: {e}")))
}

/// Serde: bytes as base64 text.
pub mod b64 {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    /// Serialize.
    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::b64_encode(bytes))
    }

    /// Deserialize.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        super::STANDARD
            .decode(text.as_bytes())
            .map_err(D::Error::custom)
    }
}

/// Serde: optional bytes as base64 text (absent or `null` for `None`).
pub mod opt_b64 {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialize.
    pub fn serialize<S: Serializer>(bytes: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(b) => s.serialize_some(&super::b64_encode(b)),
            None => s.serialize_none(),
        }
    }

    /// Deserialize.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        #[derive(Deserialize)]
        struct Wrapped(#[serde(with = "super::b64")] Vec<u8>);
        Ok(Option::<Wrapped>::deserialize(d)?.map(|Wrapped(b)| b))
    }
}

/// Serde: a list of byte strings as a list of base64 texts.
pub mod b64_list {
    use serde::ser::SerializeSeq;
    use serde::{Deserialize, Deserializer, Serializer};

    #[derive(serde::Serialize, Deserialize)]
    #[serde(transparent)]
    struct One(#[serde(with = "super::b64")] Vec<u8>);

    /// Serialize.
    pub fn serialize<S: Serializer>(list: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(list.len()))?;
        for bytes in list {
            seq.serialize_element(&super::b64_encode(bytes))?;
        }
        seq.end()
    }

    /// Deserialize.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        let list = Vec::<One>::deserialize(d)?;
        Ok(list.into_iter().map(|o| o.0).collect())
    }
}

/// Serde: a MIMI structure, TLS-encoded, as base64 text.
pub mod wire_b64 {
    use base64::Engine as _;
    use mimi_codec::Wire;
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _, ser::Error as _};

    /// Serialize (fails for a value over its codec limits).
    pub fn serialize<T: Wire, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
        let bytes = value.encode().map_err(S::Error::custom)?;
        s.serialize_str(&super::b64_encode(&bytes))
    }

    /// Deserialize.
    pub fn deserialize<'de, T: Wire, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let bytes = super::STANDARD
            .decode(text.as_bytes())
            .map_err(D::Error::custom)?;
        T::decode(&bytes).map_err(D::Error::custom)
    }
}

/// Serde: an identifier (or anything `Display` + `FromStr`) as its text.
pub mod as_string {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    /// Serialize.
    pub fn serialize<T: Display, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(value)
    }

    /// Deserialize.
    pub fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
    where
        T: FromStr,
        T::Err: Display,
        D: Deserializer<'de>,
    {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(D::Error::custom)
    }
}

/// Serde: a list of identifiers as a list of texts.
pub mod as_string_list {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::ser::SerializeSeq;
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    /// Serialize.
    pub fn serialize<T: Display, S: Serializer>(list: &[T], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(list.len()))?;
        for value in list {
            seq.serialize_element(&value.to_string())?;
        }
        seq.end()
    }

    /// Deserialize.
    pub fn deserialize<'de, T, D>(d: D) -> Result<Vec<T>, D::Error>
    where
        T: FromStr,
        T::Err: Display,
        D: Deserializer<'de>,
    {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|s| s.parse().map_err(D::Error::custom))
            .collect()
    }
}

/// Percent-encode everything but the RFC 3986 unreserved characters (room IDs in paths,
/// query values): `!r:a.example` becomes `%21r%3Aa.example`.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
    }
    out
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Decode a percent-encoded path segment or query value (`+` is a space in a query value:
/// pass `plus_is_space`).
pub fn percent_decode(text: &str, plus_is_space: bool) -> Result<String, Error> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        match byte {
            b'%' => {
                let value = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| Error::malformed("bad percent-encoding"))?;
                out.push(value);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| Error::malformed("percent-encoded text is not UTF-8"))
}

/// A parsed query string (`a=1&b=x`), values decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query(Vec<(String, String)>);

impl Query {
    /// Parse `query` (without the `?`).
    pub fn parse(query: Option<&str>) -> Result<Query, Error> {
        let mut pairs = Vec::new();
        for pair in query
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
        {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            pairs.push((percent_decode(key, true)?, percent_decode(value, true)?));
        }
        Ok(Query(pairs))
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `name`, parsed; `None` when absent.
    pub fn parsed<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, Error>
    where
        T::Err: fmt::Display,
    {
        self.get(name)
            .map(|v| {
                v.parse()
                    .map_err(|e| Error::malformed(format!("{name}: {e}")))
            })
            .transpose()
    }

    /// The value of `name`, which must be present.
    pub fn required(&self, name: &str) -> Result<&str, Error> {
        self.get(name)
            .ok_or_else(|| Error::malformed(format!("{name} is required")))
    }
}

/// Build a query string from pairs (values percent-encoded), with its `?`; empty for none.
pub fn query_string(pairs: &[(&str, String)]) -> String {
    let mut out = String::new();
    for (i, (key, value)) in pairs.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(key);
        out.push('=');
        out.push_str(&percent_encode(value));
    }
    out
}

/// Every join rule with its name in the API.
pub const JOIN_RULES: [(JoinRule, &str); 3] = [
    (JoinRule::MembersOnly, "members_only"),
    (JoinRule::Knock, "knock"),
    (JoinRule::Public, "public"),
];

/// The API's name of a join rule.
pub fn join_rule_name(rule: JoinRule) -> &'static str {
    JOIN_RULES
        .iter()
        .find(|(r, _)| *r == rule)
        .map_or("members_only", |(_, name)| name)
}

/// The join rule of an API name.
pub fn parse_join_rule(name: &str) -> Option<JoinRule> {
    JOIN_RULES
        .iter()
        .find(|(_, n)| *n == name)
        .map(|(rule, _)| *rule)
}

/// Serde: an optional join rule as its name (absent = members only, the default).
pub mod join_rule_opt {
    use mimi_codec::JoinRule;
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    /// Serialize (only called when present).
    pub fn serialize<S: Serializer>(rule: &Option<JoinRule>, s: S) -> Result<S::Ok, S::Error> {
        match rule {
            Some(rule) => s.serialize_some(super::join_rule_name(*rule)),
            None => s.serialize_none(),
        }
    }

    /// Deserialize.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<JoinRule>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(name) => super::parse_join_rule(&name)
                .map(Some)
                .ok_or_else(|| D::Error::custom(format!("unknown join rule {name:?}"))),
        }
    }
}

/// Every identifier type of discovery with its name in the API (the `type` query value).
pub const IDENTIFIER_QUERIES: [(IdentifierQuery, &str); 6] = [
    (IdentifierQuery::Handle, "handle"),
    (IdentifierQuery::Nick, "nick"),
    (IdentifierQuery::Email, "email"),
    (IdentifierQuery::Phone, "phone"),
    (IdentifierQuery::PartialName, "partial_name"),
    (IdentifierQuery::WholeProfile, "whole_profile"),
];

/// The API's name of an identifier type.
pub fn identifier_query_name(query: &IdentifierQuery) -> &'static str {
    IDENTIFIER_QUERIES
        .iter()
        .find(|(q, _)| q == query)
        .map_or("handle", |(_, name)| name)
}

/// The identifier type of an API name.
pub fn parse_identifier_query(name: &str) -> Option<IdentifierQuery> {
    IDENTIFIER_QUERIES
        .iter()
        .find(|(_, n)| *n == name)
        .map(|(query, _)| query.clone())
}

/// The outcome of a discovery, by its name in the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscoveryCode {
    /// Exactly one user matched.
    Success,
    /// No user matched.
    NotFound,
    /// More than one user matched.
    Ambiguous,
    /// The requester may not search.
    Forbidden,
    /// The provider does not search by that field.
    UnsupportedField,
}

impl DiscoveryCode {
    /// The name (`"not_found"`).
    pub fn as_str(self) -> &'static str {
        match self {
            DiscoveryCode::Success => "success",
            DiscoveryCode::NotFound => "not_found",
            DiscoveryCode::Ambiguous => "ambiguous",
            DiscoveryCode::Forbidden => "forbidden",
            DiscoveryCode::UnsupportedField => "unsupported_field",
        }
    }
}

impl From<IdentifierDiscoveryCode> for DiscoveryCode {
    fn from(code: IdentifierDiscoveryCode) -> Self {
        match code {
            IdentifierDiscoveryCode::Success => DiscoveryCode::Success,
            IdentifierDiscoveryCode::NotFound => DiscoveryCode::NotFound,
            IdentifierDiscoveryCode::Ambiguous => DiscoveryCode::Ambiguous,
            IdentifierDiscoveryCode::Forbidden => DiscoveryCode::Forbidden,
            IdentifierDiscoveryCode::UnsupportedField => DiscoveryCode::UnsupportedField,
        }
    }
}

impl fmt::Display for DiscoveryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
