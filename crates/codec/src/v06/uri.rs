//! -06 identifiers: `IdentifierUri` (`struct { opaque uri<V>; } IdentifierUri`) and the
//! room-policy `Uri`, both an RFC 3986 URI in an `opaque<V>`, and the MIMI URI forms of the
//! -06 example table (`mimi://a.example/u/alice`, `/d/` client, `/r/` room, `/g/` MLS group).
//!
//! The -06 text does not use the v1 sigil grammars (`@alice:a.example`); it has its own types
//! here. The provider part of a MIMI URI follows the same host-name grammar as v1's
//! [`ServerName`], which is reused.

use std::fmt;
use std::str::FromStr;

use crate::CodecError;
use crate::error::park;
use crate::ident::ServerName;
use crate::limits::MAX_URI_LEN;

/// Whether a byte may appear in a URI (RFC 3986 §2: unreserved, reserved and `%`).
fn is_uri_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b':'
                | b'/'
                | b'?'
                | b'#'
                | b'['
                | b']'
                | b'@'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b'%'
        )
}

/// Check a non-empty URI: `scheme ":" rest`, the scheme `ALPHA *(ALPHA / DIGIT / "+" / "-" /
/// ".")`, every byte a URI character, at most [`MAX_URI_LEN`] bytes.
///
/// Rule CODEC06-2 (docs/protocol-coverage.md).
fn check_uri(s: &str) -> Result<(), CodecError> {
    if s.is_empty() {
        return Err(CodecError::InvalidUri("empty"));
    }
    if s.len() > MAX_URI_LEN {
        return Err(CodecError::TooLong {
            len: s.len(),
            max: MAX_URI_LEN,
        });
    }
    if !s.bytes().all(is_uri_byte) {
        return Err(CodecError::InvalidUri("a character outside RFC 3986"));
    }
    let colon = s.find(':').ok_or(CodecError::InvalidUri("no scheme"))?;
    let scheme = &s[..colon];
    let mut bytes = scheme.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() => {}
        _ => {
            return Err(CodecError::InvalidUri(
                "the scheme must start with a letter",
            ));
        }
    }
    if !bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')) {
        return Err(CodecError::InvalidUri("invalid scheme"));
    }
    Ok(())
}

/// A URI naming a provider, user, client, room or MLS group (`IdentifierUri`; also the
/// room-policy `Uri`). Never empty; see [`OptionalUri`] where the text allows none.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdentifierUri(String);

impl IdentifierUri {
    /// The URI text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// This URI as a MIMI URI (`mimi://domain[/kind/id]`).
    pub fn mimi(&self) -> Result<MimiUri, CodecError> {
        self.0.parse()
    }
}

impl FromStr for IdentifierUri {
    type Err = CodecError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        check_uri(s)?;
        Ok(IdentifierUri(s.to_owned()))
    }
}

impl TryFrom<String> for IdentifierUri {
    type Error = CodecError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        check_uri(&s)?;
        Ok(IdentifierUri(s))
    }
}

impl From<&MimiUri> for IdentifierUri {
    fn from(uri: &MimiUri) -> Self {
        // Invariant: a MimiUri's text is a valid URI.
        IdentifierUri(uri.to_string())
    }
}

impl fmt::Display for IdentifierUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for IdentifierUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdentifierUri({:?})", self.0)
    }
}

/// Read the `opaque uri<V>` of a URI, refusing more than [`MAX_URI_LEN`] bytes before
/// allocating, and non-UTF-8.
fn read_uri_text<R: std::io::Read>(r: &mut R) -> Result<String, tls_codec::Error> {
    let raw = crate::bounded::read_vl_bytes(r, MAX_URI_LEN)?;
    String::from_utf8(raw).map_err(|_| park(CodecError::InvalidUtf8))
}

impl tls_codec::Size for IdentifierUri {
    fn tls_serialized_len(&self) -> usize {
        crate::bounded::vl_len(self.0.len())
    }
}

impl tls_codec::Serialize for IdentifierUri {
    fn tls_serialize<W: std::io::Write>(&self, w: &mut W) -> Result<usize, tls_codec::Error> {
        crate::bounded::write_vl_bytes(self.0.as_bytes(), w)
    }
}

impl tls_codec::Deserialize for IdentifierUri {
    fn tls_deserialize<R: std::io::Read>(r: &mut R) -> Result<Self, tls_codec::Error> {
        let text = read_uri_text(r)?;
        check_uri(&text).map_err(park)?;
        Ok(IdentifierUri(text))
    }
}

/// A URI field the text allows to be absent without an `optional<>` wrapper (the
/// `KeyMaterialRequest.roomId` outside a room's context, `RoomMetaData.room_avatar`): an
/// empty `opaque uri<V>` is `None`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct OptionalUri(pub Option<IdentifierUri>);

impl OptionalUri {
    /// No URI (encoded as a zero-length `opaque uri<V>`).
    pub const NONE: OptionalUri = OptionalUri(None);

    /// The URI, if any.
    pub fn get(&self) -> Option<&IdentifierUri> {
        self.0.as_ref()
    }
}

impl From<IdentifierUri> for OptionalUri {
    fn from(uri: IdentifierUri) -> Self {
        OptionalUri(Some(uri))
    }
}

impl tls_codec::Size for OptionalUri {
    fn tls_serialized_len(&self) -> usize {
        self.0
            .as_ref()
            .map_or(1, tls_codec::Size::tls_serialized_len)
    }
}

impl tls_codec::Serialize for OptionalUri {
    fn tls_serialize<W: std::io::Write>(&self, w: &mut W) -> Result<usize, tls_codec::Error> {
        match &self.0 {
            Some(uri) => uri.tls_serialize(w),
            None => crate::bounded::write_varint(0, w),
        }
    }
}

impl tls_codec::Deserialize for OptionalUri {
    fn tls_deserialize<R: std::io::Read>(r: &mut R) -> Result<Self, tls_codec::Error> {
        let text = read_uri_text(r)?;
        if text.is_empty() {
            return Ok(OptionalUri(None));
        }
        check_uri(&text).map_err(park)?;
        Ok(OptionalUri(Some(IdentifierUri(text))))
    }
}

/// What a MIMI URI names (the path segment after the provider: `u`, `d`, `r`, `g`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MimiUriKind {
    /// `mimi://a.example`: the provider itself.
    Provider,
    /// `mimi://a.example/u/alice`.
    User,
    /// `mimi://a.example/d/ClientA1`.
    Client,
    /// `mimi://a.example/r/clubhouse`.
    Room,
    /// `mimi://a.example/g/clubhouse`.
    Group,
}

/// A MIMI URI as in the -06 example table: `mimi://` provider [`/` kind `/` id].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MimiUri {
    provider: ServerName,
    kind: MimiUriKind,
    id: String,
}

impl MimiUri {
    /// A URI of the given kind at a provider; `id` must be a non-empty path segment of
    /// unreserved characters or percent-escapes (no `/`).
    pub fn new(provider: &ServerName, kind: MimiUriKind, id: &str) -> Result<Self, CodecError> {
        let uri = MimiUri {
            provider: provider.clone(),
            kind,
            id: id.to_owned(),
        };
        uri.to_string().parse()
    }

    /// The provider's domain.
    pub fn provider(&self) -> &ServerName {
        &self.provider
    }

    /// What the URI names.
    pub fn kind(&self) -> MimiUriKind {
        self.kind
    }

    /// The identifier after the kind (empty for a provider URI).
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl fmt::Display for MimiUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            MimiUriKind::Provider => return write!(f, "mimi://{}", self.provider),
            MimiUriKind::User => "u",
            MimiUriKind::Client => "d",
            MimiUriKind::Room => "r",
            MimiUriKind::Group => "g",
        };
        write!(f, "mimi://{}/{}/{}", self.provider, kind, self.id)
    }
}

impl FromStr for MimiUri {
    type Err = CodecError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        check_uri(s)?;
        let rest = s
            .strip_prefix("mimi://")
            .ok_or(CodecError::InvalidUri("not a mimi:// URI"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        let provider: ServerName = authority
            .parse()
            .map_err(|_| CodecError::InvalidUri("the provider is not a host name"))?;
        let Some(path) = path else {
            return Ok(MimiUri {
                provider,
                kind: MimiUriKind::Provider,
                id: String::new(),
            });
        };
        let (kind, id) = path
            .split_once('/')
            .ok_or(CodecError::InvalidUri("a MIMI URI path is kind/id"))?;
        let kind = match kind {
            "u" => MimiUriKind::User,
            "d" => MimiUriKind::Client,
            "r" => MimiUriKind::Room,
            "g" => MimiUriKind::Group,
            _ => return Err(CodecError::InvalidUri("unknown MIMI URI kind")),
        };
        if id.is_empty() {
            return Err(CodecError::InvalidUri("empty identifier"));
        }
        if !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'%'))
        {
            return Err(CodecError::InvalidUri(
                "a MIMI URI identifier is unreserved characters or percent-escapes",
            ));
        }
        Ok(MimiUri {
            provider,
            kind,
            id: id.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris() {
        for ok in [
            "mimi://a.example/u/alice",
            "mimi://a.example",
            "https://mimi.example.com/v1/x?y=1",
            "im:alice.smith@a.example",
        ] {
            assert_eq!(ok.parse::<IdentifierUri>().unwrap().as_str(), ok);
        }
        assert_eq!(
            "".parse::<IdentifierUri>(),
            Err(CodecError::InvalidUri("empty"))
        );
        assert_eq!(
            "alice".parse::<IdentifierUri>(),
            Err(CodecError::InvalidUri("no scheme"))
        );
        assert_eq!(
            "mimi://a b".parse::<IdentifierUri>(),
            Err(CodecError::InvalidUri("a character outside RFC 3986"))
        );
        assert_eq!(
            "1x:y".parse::<IdentifierUri>(),
            Err(CodecError::InvalidUri(
                "the scheme must start with a letter"
            ))
        );
    }

    #[test]
    fn mimi_uris() {
        let u: MimiUri = "mimi://a.example/u/alice".parse().unwrap();
        assert_eq!(u.kind(), MimiUriKind::User);
        assert_eq!(u.provider().as_str(), "a.example");
        assert_eq!(u.id(), "alice");
        assert_eq!(u.to_string(), "mimi://a.example/u/alice");
        let p: MimiUri = "mimi://a.example".parse().unwrap();
        assert_eq!(p.kind(), MimiUriKind::Provider);
        assert_eq!(p.to_string(), "mimi://a.example");
        for (bad, why) in [
            ("https://a.example/u/x", "not a mimi:// URI"),
            ("mimi://a.example/x/y", "unknown MIMI URI kind"),
            ("mimi://a.example/u/", "empty identifier"),
            ("mimi://a.example/u", "a MIMI URI path is kind/id"),
            ("mimi://a_b/u/x", "the provider is not a host name"),
            (
                "mimi://a.example/u/a/b",
                "a MIMI URI identifier is unreserved characters or percent-escapes",
            ),
        ] {
            assert_eq!(
                bad.parse::<MimiUri>(),
                Err(CodecError::InvalidUri(why)),
                "{bad}"
            );
        }
        let server: ServerName = "b.example".parse().unwrap();
        let room = MimiUri::new(&server, MimiUriKind::Room, "clubhouse").unwrap();
        assert_eq!(
            IdentifierUri::from(&room).as_str(),
            "mimi://b.example/r/clubhouse"
        );
    }
}
