//! Identifiers and their grammars.
//!
//! Each identifier type can only be obtained by parsing (`FromStr`, `TryFrom<&[u8]>` or
//! decoding), so holding one is proof that it follows its grammar. All keep case as given
//! and refuse more than [`MAX_IDENTIFIER_LEN`] characters. Server names (alone and inside
//! user, room and client IDs) have one canonical form, lowercase: DNS names compare without
//! case, so an uppercase letter is refused rather than kept (a name compared byte for byte
//! would otherwise differ from the same name in another case), and DNS names from outside
//! MIMI (certificates, `.well-known` answers) are lowercased first
//! ([`ServerName::from_dns_name`]).
//!
//! | type | grammar |
//! |---|---|
//! | [`ServerName`] | RFC 1123 §2.1 host name in lowercase: dot-separated labels of lowercase letters, digits and `-`, no label empty, longer than 63 or starting or ending with `-` |
//! | [`UserId`] | `"@" 1*(DIGIT / a-z / "-" / "." / "=" / "_" / "/" / "+") ":" server_name` (mimi-signaling) |
//! | [`RoomId`] | `"!" 1*(DIGIT / ALPHA / "-" / "." / "~" / "_") ":" server_name` (mimi-signaling) |
//! | [`ClientId`] | `user_id "#" 1*(DIGIT / ALPHA / "-" / "." / "~" / "_")` (this project's choice, see `docs/spec-decisions.md`) |

use std::fmt;
use std::str::FromStr;

use crate::limits::{MAX_IDENTIFIER_LEN, MAX_LABEL_LEN};

/// Which identifier failed to parse, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentifierError {
    /// Longer than [`MAX_IDENTIFIER_LEN`].
    #[error("{kind} is {len} characters long; the limit is 255")]
    TooLong {
        /// The identifier kind.
        kind: IdentifierKind,
        /// Its length.
        len: usize,
    },
    /// Does not start with the kind's sigil (`@` or `!`).
    #[error("{kind} must start with {sigil:?}")]
    MissingSigil {
        /// The identifier kind.
        kind: IdentifierKind,
        /// The expected sigil.
        sigil: char,
    },
    /// No `:` separates the localpart from the server name.
    #[error("{kind} has no ':' before its server name")]
    MissingServer {
        /// The identifier kind.
        kind: IdentifierKind,
    },
    /// The localpart (or device part) is empty.
    #[error("{kind} has an empty localpart")]
    EmptyLocalpart {
        /// The identifier kind.
        kind: IdentifierKind,
    },
    /// A character not allowed by the grammar.
    #[error("{kind} contains {found:?}, which its grammar does not allow")]
    InvalidChar {
        /// The identifier kind.
        kind: IdentifierKind,
        /// The offending character.
        found: char,
    },
    /// The server name is not an RFC 1123 host name.
    #[error("invalid server name: {0}")]
    InvalidServerName(&'static str),
    /// The bytes are not UTF-8.
    #[error("{kind} is not UTF-8")]
    NotUtf8 {
        /// The identifier kind.
        kind: IdentifierKind,
    },
}

/// The kinds of identifier, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentifierKind {
    /// A [`ServerName`].
    Server,
    /// A [`UserId`].
    User,
    /// A [`RoomId`].
    Room,
    /// A [`ClientId`].
    Client,
}

impl fmt::Display for IdentifierKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdentifierKind::Server => "server name",
            IdentifierKind::User => "user ID",
            IdentifierKind::Room => "room ID",
            IdentifierKind::Client => "client ID",
        })
    }
}

/// Rule CODEC-5 (docs/protocol-coverage.md).
fn check_len(kind: IdentifierKind, s: &str) -> Result<(), IdentifierError> {
    if s.len() > MAX_IDENTIFIER_LEN {
        return Err(IdentifierError::TooLong { kind, len: s.len() });
    }
    Ok(())
}

fn check_server_name(s: &str) -> Result<(), IdentifierError> {
    use IdentifierError::InvalidServerName as Bad;
    if s.is_empty() {
        return Err(Bad("empty"));
    }
    for label in s.split('.') {
        if label.is_empty() {
            return Err(Bad("empty label"));
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(Bad("label longer than 63 characters"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(Bad("only letters, digits, '-' and '.' are allowed"));
        }
        if label.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(Bad(
                "server names are lowercase (DNS names compare without case)",
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(Bad("a label must not start or end with '-'"));
        }
    }
    Ok(())
}

fn is_user_char(c: char) -> bool {
    c.is_ascii_digit() || c.is_ascii_lowercase() || matches!(c, '-' | '.' | '=' | '_' | '/' | '+')
}

fn is_opaque_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '~' | '_')
}

/// Split `sigil localpart ":" server`, checking the localpart's characters.
fn split_sigiled(
    kind: IdentifierKind,
    s: &str,
    sigil: char,
    allowed: fn(char) -> bool,
) -> Result<usize, IdentifierError> {
    check_len(kind, s)?;
    let rest = s
        .strip_prefix(sigil)
        .ok_or(IdentifierError::MissingSigil { kind, sigil })?;
    let colon = rest
        .find(':')
        .ok_or(IdentifierError::MissingServer { kind })?;
    let (local, server) = (&rest[..colon], &rest[colon + 1..]);
    if local.is_empty() {
        return Err(IdentifierError::EmptyLocalpart { kind });
    }
    if let Some(found) = local.chars().find(|c| !allowed(*c)) {
        return Err(IdentifierError::InvalidChar { kind, found });
    }
    check_server_name(server)?;
    Ok(1 + colon)
}

/// Read an identifier's `opaque<V>`. A length over [`MAX_IDENTIFIER_LEN`] is an
/// [`IdentifierError::TooLong`] of the kind `kind` names from the first byte (read only
/// then, one byte, to tell a sender's kind); nothing is allocated for it.
fn read_identifier_bytes<R: std::io::Read>(
    reader: &mut R,
    kind: fn(Option<u8>) -> IdentifierKind,
) -> Result<Vec<u8>, tls_codec::Error> {
    let len = crate::bounded::read_varint(reader)?;
    if len > MAX_IDENTIFIER_LEN {
        let mut first = [0u8; 1];
        let first = reader.read_exact(&mut first).ok().map(|()| first[0]);
        let kind = kind(first);
        return Err(crate::error::park(crate::CodecError::InvalidIdentifier(
            IdentifierError::TooLong { kind, len },
        )));
    }
    crate::bounded::read_exact_vec(reader, len)
}

/// A sender starting with `@` is a user; anything else must be a server name.
fn sender_kind(first: Option<u8>) -> IdentifierKind {
    if first == Some(b'@') {
        IdentifierKind::User
    } else {
        IdentifierKind::Server
    }
}

macro_rules! string_identifier {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// The identifier as a string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl TryFrom<&[u8]> for $name {
            type Error = IdentifierError;
            fn try_from(bytes: &[u8]) -> Result<Self, Self::Error> {
                let s = std::str::from_utf8(bytes)
                    .map_err(|_| IdentifierError::NotUtf8 { kind: $kind })?;
                s.parse()
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdentifierError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                s.parse()
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl tls_codec::Size for $name {
            fn tls_serialized_len(&self) -> usize {
                crate::bounded::vl_len(self.0.len())
            }
        }

        impl tls_codec::Serialize for $name {
            fn tls_serialize<W: std::io::Write>(
                &self,
                writer: &mut W,
            ) -> Result<usize, tls_codec::Error> {
                crate::bounded::write_vl_bytes(self.0.as_bytes(), writer)
            }
        }

        impl tls_codec::Deserialize for $name {
            fn tls_deserialize<R: std::io::Read>(bytes: &mut R) -> Result<Self, tls_codec::Error> {
                let raw = read_identifier_bytes(bytes, |_| $kind)?;
                $name::try_from(raw.as_slice())
                    .map_err(|e| crate::error::park(crate::CodecError::InvalidIdentifier(e)))
            }
        }
    };
}

string_identifier!(
    /// A server's name: an RFC 1123 host name such as `mimi.example.org`.
    ServerName,
    IdentifierKind::Server
);
string_identifier!(
    /// A user ID, `@localpart:server` (for example `@watch/for/slashes:example.org`).
    UserId,
    IdentifierKind::User
);
string_identifier!(
    /// A room ID, `!localpart:server` (for example `!cEXuEjziVcCzbxbqmN:example.org`). The
    /// server names the creating server, which is the room's first hub.
    RoomId,
    IdentifierKind::Room
);
string_identifier!(
    /// A client ID, `@localpart:server#device`: the user ID of the client's user, `#`, and a
    /// device part unique among that user's clients.
    ClientId,
    IdentifierKind::Client
);

impl FromStr for ServerName {
    type Err = IdentifierError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        check_len(IdentifierKind::Server, s)?;
        check_server_name(s)?;
        Ok(ServerName(s.to_owned()))
    }
}

impl ServerName {
    /// A DNS name from outside MIMI (a certificate's subject alternative name, a
    /// `.well-known` answer) as a server name: DNS names compare without case (RFC 4343),
    /// so it is lowercased (ASCII) into the canonical form first.
    pub fn from_dns_name(name: &str) -> Result<Self, IdentifierError> {
        name.to_ascii_lowercase().parse()
    }
}

impl FromStr for UserId {
    type Err = IdentifierError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        split_sigiled(IdentifierKind::User, s, '@', is_user_char)?;
        Ok(UserId(s.to_owned()))
    }
}

impl UserId {
    /// The localpart (between `@` and `:`).
    pub fn localpart(&self) -> &str {
        let colon = self.0.find(':').unwrap_or(self.0.len());
        &self.0[1..colon]
    }

    /// The server responsible for this user.
    pub fn server(&self) -> ServerName {
        // Invariant: the grammar was checked at construction, so the part after the first
        // ':' is a valid server name.
        let colon = self.0.find(':').unwrap_or(0);
        ServerName(self.0[colon + 1..].to_owned())
    }

    /// Build a user ID from a localpart and server, checking the grammar.
    pub fn new(localpart: &str, server: &ServerName) -> Result<Self, IdentifierError> {
        format!("@{localpart}:{server}").parse()
    }
}

impl FromStr for RoomId {
    type Err = IdentifierError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        split_sigiled(IdentifierKind::Room, s, '!', is_opaque_char)?;
        Ok(RoomId(s.to_owned()))
    }
}

impl RoomId {
    /// The creating server, named in the room ID.
    pub fn server(&self) -> ServerName {
        // Invariant: the grammar was checked at construction.
        let colon = self.0.find(':').unwrap_or(0);
        ServerName(self.0[colon + 1..].to_owned())
    }

    /// Build a room ID from a localpart and the creating server, checking the grammar.
    pub fn new(localpart: &str, server: &ServerName) -> Result<Self, IdentifierError> {
        format!("!{localpart}:{server}").parse()
    }
}

impl FromStr for ClientId {
    type Err = IdentifierError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let kind = IdentifierKind::Client;
        check_len(kind, s)?;
        let hash = s
            .rfind('#')
            .ok_or(IdentifierError::MissingServer { kind })?;
        let (user, device) = (&s[..hash], &s[hash + 1..]);
        user.parse::<UserId>()?;
        if device.is_empty() {
            return Err(IdentifierError::EmptyLocalpart { kind });
        }
        if let Some(found) = device.chars().find(|c| !is_opaque_char(*c)) {
            return Err(IdentifierError::InvalidChar { kind, found });
        }
        Ok(ClientId(s.to_owned()))
    }
}

impl ClientId {
    /// The user this client belongs to.
    pub fn user(&self) -> UserId {
        // Invariant: the grammar was checked at construction.
        let hash = self.0.rfind('#').unwrap_or(self.0.len());
        UserId(self.0[..hash].to_owned())
    }

    /// The device part (after `#`).
    pub fn device(&self) -> &str {
        let hash = self.0.rfind('#').map_or(self.0.len(), |h| h + 1);
        &self.0[hash..]
    }

    /// Build a client ID from a user ID and a device part, checking the grammar.
    pub fn new(user: &UserId, device: &str) -> Result<Self, IdentifierError> {
        format!("{user}#{device}").parse()
    }
}

/// Who sent a MIMI message: a user, or a server acting for itself (for example a hub fanning
/// out its own remove proposals, or a follower generating a join on its user's behalf).
///
/// On the wire this is the `opaque sender<V>` of `MIMIMessage`: a user ID starts with `@`,
/// anything else must be a server name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Sender {
    /// A user.
    User(UserId),
    /// A server.
    Server(ServerName),
}

impl Sender {
    /// The origin server of the event: the user's server, or the server itself.
    pub fn server(&self) -> ServerName {
        match self {
            Sender::User(u) => u.server(),
            Sender::Server(s) => s.clone(),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            Sender::User(u) => u.as_str(),
            Sender::Server(s) => s.as_str(),
        }
    }
}

impl fmt::Display for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Sender {
    type Err = IdentifierError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.starts_with('@') {
            Ok(Sender::User(s.parse()?))
        } else {
            Ok(Sender::Server(s.parse()?))
        }
    }
}

impl tls_codec::Size for Sender {
    fn tls_serialized_len(&self) -> usize {
        crate::bounded::vl_len(self.as_str().len())
    }
}

impl tls_codec::Serialize for Sender {
    fn tls_serialize<W: std::io::Write>(&self, writer: &mut W) -> Result<usize, tls_codec::Error> {
        crate::bounded::write_vl_bytes(self.as_str().as_bytes(), writer)
    }
}

impl tls_codec::Deserialize for Sender {
    fn tls_deserialize<R: std::io::Read>(bytes: &mut R) -> Result<Self, tls_codec::Error> {
        let raw = read_identifier_bytes(bytes, sender_kind)?;
        std::str::from_utf8(&raw)
            .map_err(|_| IdentifierError::NotUtf8 {
                kind: sender_kind(raw.first().copied()),
            })
            .and_then(str::parse)
            .map_err(|e| crate::error::park(crate::CodecError::InvalidIdentifier(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use IdentifierError as E;
    use IdentifierKind::*;

    #[test]
    fn server_names() {
        for ok in [
            "a",
            "example.org",
            "xn--bcher-kva.example",
            "1.2.3.4",
            "a-b.c-d.e",
            &format!("{}.example", "a".repeat(63)),
        ] {
            let name: ServerName = ok.parse().unwrap();
            assert_eq!(name.as_str(), ok, "case and text kept");
        }
        let refused = [
            ("", E::InvalidServerName("empty")),
            ("a..b", E::InvalidServerName("empty label")),
            (".a", E::InvalidServerName("empty label")),
            ("a.", E::InvalidServerName("empty label")),
            (
                "-a.b",
                E::InvalidServerName("a label must not start or end with '-'"),
            ),
            (
                "a-.b",
                E::InvalidServerName("a label must not start or end with '-'"),
            ),
            (
                "a_b.example",
                E::InvalidServerName("only letters, digits, '-' and '.' are allowed"),
            ),
            (
                "a.example:8448",
                E::InvalidServerName("only letters, digits, '-' and '.' are allowed"),
            ),
            (
                "b\u{fc}cher.example",
                E::InvalidServerName("only letters, digits, '-' and '.' are allowed"),
            ),
            (
                &format!("{}.example", "a".repeat(64)),
                E::InvalidServerName("label longer than 63 characters"),
            ),
        ];
        for (bad, expected) in refused {
            assert_eq!(bad.parse::<ServerName>(), Err(expected), "{bad:?}");
        }
    }

    #[test]
    fn server_names_are_lowercase() {
        let upper =
            E::InvalidServerName("server names are lowercase (DNS names compare without case)");
        for bad in ["Mimi.Example.ORG", "A", "example.Org"] {
            assert_eq!(bad.parse::<ServerName>(), Err(upper.clone()), "{bad:?}");
        }
        // Inside identifiers too: one canonical form everywhere.
        assert!("@alice:Example.org".parse::<UserId>().is_err());
        assert!("!room:EXAMPLE.org".parse::<RoomId>().is_err());
        assert!("@bob:B.example#phone".parse::<ClientId>().is_err());
        // A DNS name from outside MIMI is lowercased into the canonical form.
        let name = ServerName::from_dns_name("Mimi.Example.ORG").unwrap();
        assert_eq!(name.as_str(), "mimi.example.org");
        assert_eq!(name, "mimi.example.org".parse().unwrap());
        assert!(ServerName::from_dns_name("*.example.org").is_err());
    }

    #[test]
    fn user_ids() {
        for ok in [
            "@alice:example.org",
            "@watch/for/slashes:example.org",
            "@a.b_c=d-e+f/0:example.org",
            "@0:a",
        ] {
            let user: UserId = ok.parse().unwrap();
            assert_eq!(user.to_string(), ok);
        }
        let refused = [
            (
                "alice:example.org",
                E::MissingSigil {
                    kind: User,
                    sigil: '@',
                },
            ),
            (
                "!alice:example.org",
                E::MissingSigil {
                    kind: User,
                    sigil: '@',
                },
            ),
            ("@alice", E::MissingServer { kind: User }),
            ("@:example.org", E::EmptyLocalpart { kind: User }),
            (
                "@Alice:example.org",
                E::InvalidChar {
                    kind: User,
                    found: 'A',
                },
            ),
            (
                "@al ice:example.org",
                E::InvalidChar {
                    kind: User,
                    found: ' ',
                },
            ),
            (
                "@al#ice:example.org",
                E::InvalidChar {
                    kind: User,
                    found: '#',
                },
            ),
            ("@alice:", E::InvalidServerName("empty")),
            (
                "@alice:exa_mple.org",
                E::InvalidServerName("only letters, digits, '-' and '.' are allowed"),
            ),
        ];
        for (bad, expected) in refused {
            assert_eq!(bad.parse::<UserId>(), Err(expected), "{bad:?}");
        }
    }

    #[test]
    fn room_ids_keep_case() {
        let room: RoomId = "!cEXuEjziVcCzbxbqmN:example.org".parse().unwrap();
        assert_eq!(room.as_str(), "!cEXuEjziVcCzbxbqmN:example.org");
        assert_eq!(room.server().as_str(), "example.org");
        assert_eq!(
            "!a.b~c_d-E9:x".parse::<RoomId>().unwrap().as_str(),
            "!a.b~c_d-E9:x"
        );
        let refused = [
            (
                "@r:example.org",
                E::MissingSigil {
                    kind: Room,
                    sigil: '!',
                },
            ),
            ("!r", E::MissingServer { kind: Room }),
            ("!:example.org", E::EmptyLocalpart { kind: Room }),
            (
                "!r/1:example.org",
                E::InvalidChar {
                    kind: Room,
                    found: '/',
                },
            ),
            (
                "!r1:-example.org",
                E::InvalidServerName("a label must not start or end with '-'"),
            ),
        ];
        for (bad, expected) in refused {
            assert_eq!(bad.parse::<RoomId>(), Err(expected), "{bad:?}");
        }
    }

    #[test]
    fn client_ids_and_accessors() {
        let client: ClientId = "@bob:b.example#Phone-1".parse().unwrap();
        assert_eq!(client.user().as_str(), "@bob:b.example");
        assert_eq!(client.device(), "Phone-1");
        assert_eq!(client.user().server().as_str(), "b.example");
        assert_eq!(client.user().localpart(), "bob");
        let server: ServerName = "b.example".parse().unwrap();
        let user = UserId::new("bob", &server).unwrap();
        assert_eq!(ClientId::new(&user, "Phone-1").unwrap(), client);
        assert_eq!(
            ClientId::new(&user, ""),
            Err(E::EmptyLocalpart { kind: Client })
        );
        let refused = [
            ("@bob:b.example", E::MissingServer { kind: Client }),
            ("@bob:b.example#", E::EmptyLocalpart { kind: Client }),
            (
                "@bob:b.example#a#b",
                E::InvalidServerName("only letters, digits, '-' and '.' are allowed"),
            ),
            (
                "@bob:b.example#a b",
                E::InvalidChar {
                    kind: Client,
                    found: ' ',
                },
            ),
            (
                "@Bob:b.example#a",
                E::InvalidChar {
                    kind: User,
                    found: 'B',
                },
            ),
            (
                "bob:b.example#a",
                E::MissingSigil {
                    kind: User,
                    sigil: '@',
                },
            ),
        ];
        for (bad, expected) in refused {
            assert_eq!(bad.parse::<ClientId>(), Err(expected), "{bad:?}");
        }
    }

    #[test]
    fn senders() {
        assert_eq!(
            "@alice:a.example".parse::<Sender>().unwrap(),
            Sender::User("@alice:a.example".parse().unwrap())
        );
        let hub: Sender = "hub.a.example".parse().unwrap();
        assert_eq!(hub, Sender::Server("hub.a.example".parse().unwrap()));
        assert_eq!(hub.server().as_str(), "hub.a.example");
        assert_eq!(hub.to_string(), "hub.a.example");
        let user: Sender = "@alice:a.example".parse().unwrap();
        assert_eq!(user.server().as_str(), "a.example");
        assert_eq!(
            "!r:a.example".parse::<Sender>(),
            Err(E::InvalidServerName(
                "only letters, digits, '-' and '.' are allowed"
            ))
        );
    }

    #[test]
    fn the_limit_is_255_characters() {
        // Server: 63 + 1 + 63 + 1 + 63 + 1 + 63 = 255.
        let label = "a".repeat(63);
        let server255 = [label.as_str(); 4].join(".");
        assert_eq!(server255.len(), 255);
        assert!(server255.parse::<ServerName>().is_ok());
        let server256 = format!("b{server255}");
        assert_eq!(
            server256.parse::<ServerName>(),
            Err(E::TooLong {
                kind: Server,
                len: 256
            })
        );

        let user255 = format!("@{}:a.example", "u".repeat(244));
        assert_eq!(user255.len(), 255);
        assert_eq!(user255.parse::<UserId>().unwrap().as_str(), user255);
        let user256 = format!("@{}:a.example", "u".repeat(245));
        assert_eq!(
            user256.parse::<UserId>(),
            Err(E::TooLong {
                kind: User,
                len: 256
            })
        );

        let room255 = format!("!{}:a.example", "R".repeat(244));
        assert!(room255.parse::<RoomId>().is_ok());
        let room256 = format!("!{}:a.example", "R".repeat(245));
        assert_eq!(
            room256.parse::<RoomId>(),
            Err(E::TooLong {
                kind: Room,
                len: 256
            })
        );

        let client255 = format!("@u:a.example#{}", "d".repeat(242));
        assert_eq!(client255.len(), 255);
        assert_eq!(client255.parse::<ClientId>().unwrap().device().len(), 242);
        let client256 = format!("@u:a.example#{}", "d".repeat(243));
        assert_eq!(
            client256.parse::<ClientId>(),
            Err(E::TooLong {
                kind: Client,
                len: 256
            })
        );
    }

    #[test]
    fn bytes_must_be_utf8() {
        assert_eq!(
            UserId::try_from(&b"@a\xff:b"[..]),
            Err(E::NotUtf8 { kind: User })
        );
        assert_eq!(
            RoomId::try_from(&b"!r1:a.example"[..]).unwrap().as_str(),
            "!r1:a.example"
        );
        assert_eq!(
            ServerName::try_from(String::from("a.example"))
                .unwrap()
                .as_str(),
            "a.example"
        );
    }
}
