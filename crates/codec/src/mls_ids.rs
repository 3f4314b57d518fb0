//! Numbers this project registers in MLS's private-use ranges (RFC 9420 §17: extension and
//! proposal types 0xF000–0xFFFF are reserved for private use). They are constants here so
//! the client (`mimi-e2e`) and the hub (`mimi-ds`) agree without depending on each other.

/// GroupContext extension type carrying the TLS-encoded [`crate::RoomState`].
pub const ROOM_STATE_EXTENSION_TYPE: u16 = 0xF001;
/// Custom proposal type carrying a TLS-encoded [`crate::UserEvent`] (`m.room.user`).
pub const USER_EVENT_PROPOSAL_TYPE: u16 = 0xF002;
/// The security protocol name of MLS 1.0 in [`crate::SecurityConfig::protocol`].
pub const SECURITY_PROTOCOL_MLS10: &str = "mls10";
/// The MLS cipher suite MIMI rooms use by default:
/// MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519 (0x0001).
pub const DEFAULT_CIPHER_SUITE: u16 = 0x0001;
