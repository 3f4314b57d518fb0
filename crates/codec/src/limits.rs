//! Explicit size limits. Every length that a peer controls is checked against one of these
//! constants while decoding, and the same limits are enforced when encoding so that this
//! implementation never emits what it would refuse.

/// Maximum length in bytes of a room ID, user ID, client ID or server name (spec: "MUST NOT
/// exceed 255 characters"; identifiers are ASCII, so characters and bytes agree).
///
/// Rule CODEC-4 (docs/protocol-coverage.md).
pub const MAX_IDENTIFIER_LEN: usize = 255;
/// Maximum length of one DNS label of a server name (RFC 1123 / RFC 1035).
pub const MAX_LABEL_LEN: usize = 63;
/// Maximum length of a whole TLS-encoded `MIMIMessage` or `CheckInviteRequest` body.
pub const MAX_MESSAGE_LEN: usize = 16 * 1024 * 1024;
/// Maximum length of one MLS object (MLSMessage, KeyPackage, GroupInfo, Welcome, ratchet
/// tree) carried as opaque bytes. Sized for a GroupInfo with the ratchet tree of a group of
/// about 10,000 clients.
pub const MAX_MLS_OBJECT_LEN: usize = 8 * 1024 * 1024;
/// Maximum number of MLS messages in one request (proposals in a `ds.proposal`, Welcomes in
/// a commit bundle, pending proposals in a group-info response).
pub const MAX_MLS_MESSAGES: usize = 1024;
/// Maximum number of participants in a `RoomState`.
pub const MAX_PARTICIPANTS: usize = 100_000;
/// Maximum number of key packages in one response, and of clients named in one request.
pub const MAX_KEY_PACKAGES: usize = 1024;
/// Maximum length of an event type string such as `m.room.user`.
pub const MAX_EVENT_TYPE_LEN: usize = 255;
/// Maximum length of a human-readable reason or error detail (UTF-8 bytes).
pub const MAX_REASON_LEN: usize = 1024;
/// Maximum length of a role name.
pub const MAX_ROLE_LEN: usize = 64;
/// Maximum length of a follower server's certificate (a TLS-encoded MLS `ExternalSender`).
pub const MAX_CERTIFICATE_LEN: usize = 16 * 1024;
/// Maximum length of a policy ID or security protocol name.
pub const MAX_NAME_LEN: usize = 255;
/// Maximum number of permission entries in a room policy.
pub const MAX_PERMISSIONS: usize = 64;
/// Maximum number of roles named by one permission entry.
pub const MAX_ROLES_PER_PERMISSION: usize = 16;
/// Maximum length of an identifier-discovery search value, claim name or field name.
pub const MAX_SEARCH_VALUE_LEN: usize = 1024;
/// Maximum length of an identifier-discovery URI.
pub const MAX_URI_LEN: usize = 1024;
/// Maximum length of a hash carried on the wire (SHA-512 would fit).
pub const MAX_HASH_LEN: usize = 64;
/// Maximum number of auth events named by one fully-formed event.
pub const MAX_AUTH_EVENTS: usize = 256;
