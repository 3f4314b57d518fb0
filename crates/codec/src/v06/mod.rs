//! # draft-ietf-mimi-protocol-06: the second wire version
//!
//! Rule CODEC06-7 (docs/protocol-coverage.md): every top-level -06 body is `Wire`.
//!
//! Every structure of draft-ietf-mimi-protocol-06 (with the components of
//! draft-ietf-mimi-room-policy-03 its room state refers to), strict and bounded like the first
//! version: `KeyMaterialRequest`/`Response`, `UpdateRequest` (`HandshakeBundle`)/`Response`,
//! `SubmitMessageRequest`/`Response` and `Frank`, `FanoutMessage` and the `notify` body of
//! several concatenated, `GroupInfoRequest`/`Response` and what they sign or encrypt,
//! `ConsentEntry`, `IdentifierRequest`/`Response`, `AbuseReport`, the franking structures,
//! the minimal-metadata credentials, the participant list, room metadata and policy
//! components, and the JSON directory.
//!
//! The two versions do not leak into each other: nothing here appears in a v1 structure and
//! no v1 structure appears here. Shared are the primitives (variable-length integers,
//! [`crate::BoundedVec`], [`crate::Opaque`], [`crate::Text`], the limits, [`crate::ServerName`]
//! inside MIMI URIs), the [`crate::Wire`] trait and [`crate::CodecError`], and the identifier
//! search enumerations both drafts define alike (`SearchIdentifierType` is
//! [`crate::IdentifierType`], `SearchField` is [`crate::IdentifierQuery`],
//! `IdentifierQueryCode` is [`crate::IdentifierDiscoveryCode`]; the structures around them
//! differ and stay apart). `docs/wire-format-06.md`
//! describes every structure, limit and framing decision.
//!
//! Protocol: every -06 body that has a `Protocol protocol` field carries [`Protocol`]; only
//! `mls10` (1) exists, anything else is [`CodecError::UnsupportedProtocol`]. The bodies
//! without one (`UpdateRequest`, `FanoutMessage`) are `mls10` by the room's protocol.

pub mod delivery;
pub mod directory;
pub mod labels;
pub mod limits;
pub mod mls;
pub mod room;
pub mod services;
pub mod uri;

use std::io::{Read, Write};

pub use delivery::*;
pub use directory::{Directory, DirectoryError, EndpointTemplate};
pub use mls::*;
pub use room::*;
pub use services::*;
pub use uri::{IdentifierUri, MimiUri, MimiUriKind, OptionalUri};

use crate::{CodecError, Wire};

/// `Protocol`: `enum { reserved(0), mls10(1), (255) }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Protocol {
    /// MLS 1.0 (RFC 9420).
    #[default]
    Mls10,
}

impl Protocol {
    /// The value on the wire.
    pub fn wire_value(self) -> u8 {
        1
    }
}

impl tls_codec::Size for Protocol {
    fn tls_serialized_len(&self) -> usize {
        1
    }
}

impl tls_codec::Serialize for Protocol {
    fn tls_serialize<W: Write>(&self, w: &mut W) -> Result<usize, tls_codec::Error> {
        tls_codec::Serialize::tls_serialize(&self.wire_value(), w)
    }
}

impl tls_codec::Deserialize for Protocol {
    /// Rule CODEC06-1 (docs/protocol-coverage.md).
    fn tls_deserialize<R: Read>(r: &mut R) -> Result<Self, tls_codec::Error> {
        match <u8 as tls_codec::Deserialize>::tls_deserialize(r)? {
            1 => Ok(Protocol::Mls10),
            other => Err(crate::error::park(CodecError::UnsupportedProtocol(other))),
        }
    }
}

impl Wire for KeyMaterialRequest {}
impl Wire for KeyMaterialRequestTbs {}
impl Wire for KeyMaterialResponse {}
impl Wire for UpdateRequest {}
impl Wire for UpdateResponse {}
impl Wire for SubmitMessageRequest {}
impl Wire for SubmitMessageResponse {}
impl Wire for FanoutMessage {}
impl Wire for NotifyBody {}
impl Wire for GroupInfoRequest {}
impl Wire for GroupInfoRequestTbs {}
impl Wire for GroupInfoResponse {}
impl Wire for GroupInfoResponseTbs {}
impl Wire for GroupInfoRatchetTreeTbe {}
impl Wire for ConsentEntry {}
impl Wire for ConsentScope {}
impl Wire for IdentifierRequest {}
impl Wire for IdentifierResponse {}
impl Wire for AbuseReport {}
impl Wire for Frank {}
impl Wire for FrankAad {}
impl Wire for FrankingAgentData {}
impl Wire for ServerFrankingContext {}
impl Wire for FrankingIntegrityTbs {}
impl Wire for PseudonymousCredential {}
impl Wire for PseudonymousCredentialTbs {}
impl Wire for IdentityLinkTbe {}
impl Wire for ParticipantListData {}
impl Wire for ParticipantListUpdate {}
impl Wire for RoomMetaData {}
impl Wire for RoleData {}
impl Wire for PreAuthData {}
impl Wire for BaseRoomPolicy {}
impl Wire for AppDataDictionary {}
impl Wire for MlsMessage {}
impl Wire for KeyPackage {}
impl Wire for Welcome {}
impl Wire for GroupInfo {}
