//! MLS structures inside -06 bodies, with the framing the -06 text writes.
//!
//! Where -06 writes a bare MLS structure (`MLSMessage appMessage;`, `KeyPackage keyPackage;`,
//! `optional<Welcome>`, `GroupInfo groupInfo;`) there is no length prefix: the structure
//! delimits itself. The bounded RFC 9420 scanner that finds its end is shared with the first
//! version ([`crate::mls_frame`]); its types are re-exported here.

use std::io::{Read, Write};

use tls_codec::{Deserialize, Serialize, Size, TlsDeserialize, TlsSerialize, TlsSize};

use crate::CodecError;
use crate::bounded::{BoundedVec, Opaque};
use crate::enums::wire_enum;
use crate::error::park;
use crate::limits::MAX_MLS_OBJECT_LEN;
use crate::v06::limits::*;

pub use crate::mls_frame::{
    ContentType, GroupInfo, KeyPackage, MlsMessage, MlsMessageKind, Welcome,
};

/// `CipherSuite` (RFC 9420 §17.1): a `uint16` carried as is (unknown suites are the
/// receiver's decision, not a framing error).
pub type CipherSuite = u16;

/// `SignaturePublicKey`: `opaque signature_key<V>`.
pub type SignaturePublicKey = Opaque<MAX_KEY_LEN>;

/// `HPKEPublicKey`: `opaque hpke_public_key<V>`.
pub type HpkePublicKey = Opaque<MAX_KEY_LEN>;

/// `Credential` (RFC 9420 §5.3): a type and its content (`opaque identity<V>` for basic,
/// `Certificate certificates<V>` for x509, which is the same framing).
#[derive(Debug, Clone, PartialEq, Eq, Hash, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct Credential {
    /// `CredentialType` (1 basic, 2 x509).
    pub credential_type: u16,
    /// The content after the type, without its length prefix.
    pub content: Opaque<MAX_CREDENTIAL_LEN>,
}

/// `RequiredCapabilities` (RFC 9420 §11.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct RequiredCapabilities {
    /// `ExtensionType extension_types<V>`.
    pub extension_types: BoundedVec<u16, MAX_CAPABILITY_ITEMS>,
    /// `ProposalType proposal_types<V>`.
    pub proposal_types: BoundedVec<u16, MAX_CAPABILITY_ITEMS>,
    /// `CredentialType credential_types<V>`.
    pub credential_types: BoundedVec<u16, MAX_CAPABILITY_ITEMS>,
}

/// `Capabilities` (RFC 9420 §7.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct Capabilities {
    /// `ProtocolVersion versions<V>`.
    pub versions: BoundedVec<u16, MAX_CAPABILITY_ITEMS>,
    /// `CipherSuite cipher_suites<V>`.
    pub cipher_suites: BoundedVec<u16, MAX_CAPABILITY_ITEMS>,
    /// `ExtensionType extensions<V>`.
    pub extensions: BoundedVec<u16, MAX_CAPABILITY_ITEMS>,
    /// `ProposalType proposals<V>`.
    pub proposals: BoundedVec<u16, MAX_CAPABILITY_ITEMS>,
    /// `CredentialType credentials<V>`.
    pub credentials: BoundedVec<u16, MAX_CAPABILITY_ITEMS>,
}

/// `ExternalSender` (RFC 9420 §12.1.8.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct ExternalSender {
    /// Its signature key.
    pub signature_key: SignaturePublicKey,
    /// Its credential.
    pub credential: Credential,
}

/// `HPKECiphertext` (RFC 9420 §12.4.3.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct HpkeCiphertext {
    /// `opaque kem_output<V>`.
    pub kem_output: Opaque<MAX_KEY_LEN>,
    /// `opaque ciphertext<V>`.
    pub ciphertext: Opaque<MAX_MLS_OBJECT_LEN>,
}

/// `ProposalRef` (RFC 9420 §5.2, a `HashReference`: `opaque value<V>`).
pub type ProposalRef = Opaque<{ crate::limits::MAX_HASH_LEN }>;

/// `Extension` (RFC 9420 §13.4): a type and `opaque extension_data<V>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct Extension {
    /// `ExtensionType`.
    pub extension_type: u16,
    /// The data.
    pub extension_data: Opaque<MAX_MLS_OBJECT_LEN>,
}

/// `ComponentID` of draft-ietf-mls-extensions (a `uint16`).
pub type ComponentId = u16;

/// `ComponentData` (draft-ietf-mls-extensions §4.6).
#[derive(Debug, Clone, PartialEq, Eq, Hash, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct ComponentData {
    /// The component.
    pub component_id: ComponentId,
    /// Its data.
    pub data: Opaque<MAX_COMPONENT_LEN>,
}

/// `AppDataDictionary` (draft-ietf-mls-extensions §4.6: `ComponentData component_data<V>`,
/// sorted by `component_id` with at most one entry per component), also the -06 extension
/// points `consent_extensions`, `id_request_extensions`, `id_response_extensions` and
/// `abuse_extensions`. Unsorted or repeated components are `Malformed`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct AppDataDictionary {
    /// The components, in increasing `component_id` order.
    pub component_data: BoundedVec<ComponentData, MAX_COMPONENTS>,
}

impl AppDataDictionary {
    /// A dictionary of these components, sorted by ID; a repeated ID is refused.
    pub fn new(mut components: Vec<ComponentData>) -> Result<Self, CodecError> {
        components.sort_by_key(|c| c.component_id);
        let dict = AppDataDictionary {
            component_data: BoundedVec::new(components)?,
        };
        dict.check().map_err(crate::error::from_tls)?;
        Ok(dict)
    }

    /// The data of a component, if present.
    pub fn get(&self, id: ComponentId) -> Option<&[u8]> {
        self.component_data
            .iter()
            .find(|c| c.component_id == id)
            .map(|c| c.data.as_slice())
    }

    /// Rule CODEC06-8 (docs/protocol-coverage.md).
    fn check(&self) -> Result<(), tls_codec::Error> {
        let ids: Vec<ComponentId> = self.component_data.iter().map(|c| c.component_id).collect();
        if ids.windows(2).any(|w| w[0] >= w[1]) {
            return Err(park(CodecError::Malformed(
                "AppDataDictionary components must be sorted by ID, each at most once".into(),
            )));
        }
        Ok(())
    }
}

impl Size for AppDataDictionary {
    fn tls_serialized_len(&self) -> usize {
        self.component_data.tls_serialized_len()
    }
}

impl Serialize for AppDataDictionary {
    fn tls_serialize<W: Write>(&self, w: &mut W) -> Result<usize, tls_codec::Error> {
        self.check()?;
        self.component_data.tls_serialize(w)
    }
}

impl Deserialize for AppDataDictionary {
    fn tls_deserialize<R: Read>(r: &mut R) -> Result<Self, tls_codec::Error> {
        let dict = AppDataDictionary {
            component_data: BoundedVec::tls_deserialize(r)?,
        };
        dict.check()?;
        Ok(dict)
    }
}

/// A ratchet tree as RFC 9420 §12.4.3.3 writes it (`optional<Node> ratchet_tree<V>`),
/// carried as the bytes inside the vector.
pub type RatchetTreeBytes = Opaque<MAX_MLS_OBJECT_LEN>;

/// `RatchetTreeOption` (draft-mahy-mls-ratchet-tree-options): how a ratchet tree is conveyed.
///
/// Only the two representations every revision of that draft agrees on are read: `full` (1,
/// `Node ratchet_tree<V>`) and `distributionService` (4, nothing: the receiver asks the hub).
/// The revisions disagree on the bodies of `httpsUri` (2) and `outOfBand` (3) (with and
/// without a `tree_signature<V>`), so those are refused as unknown values
/// (`docs/spec-decisions.md`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RatchetTreeOption {
    /// `full`: the whole tree.
    Full(RatchetTreeBytes),
    /// `distributionService`: the hub provides the tree.
    DistributionService,
}

wire_enum! {
    /// `RatchetTreeRepresentation` (the values this codec reads).
    pub enum RatchetTreeRepresentation: u8, "RatchetTreeRepresentation" {
        /// The whole tree.
        Full = 1,
        /// The distribution service (hub) provides it.
        DistributionService = 4,
    }
}

impl Size for RatchetTreeOption {
    fn tls_serialized_len(&self) -> usize {
        1 + match self {
            RatchetTreeOption::Full(t) => t.tls_serialized_len(),
            RatchetTreeOption::DistributionService => 0,
        }
    }
}

impl Serialize for RatchetTreeOption {
    fn tls_serialize<W: Write>(&self, w: &mut W) -> Result<usize, tls_codec::Error> {
        Ok(match self {
            RatchetTreeOption::Full(t) => {
                RatchetTreeRepresentation::Full.tls_serialize(w)? + t.tls_serialize(w)?
            }
            RatchetTreeOption::DistributionService => {
                RatchetTreeRepresentation::DistributionService.tls_serialize(w)?
            }
        })
    }
}

impl Deserialize for RatchetTreeOption {
    fn tls_deserialize<R: Read>(r: &mut R) -> Result<Self, tls_codec::Error> {
        Ok(match RatchetTreeRepresentation::tls_deserialize(r)? {
            RatchetTreeRepresentation::Full => {
                RatchetTreeOption::Full(RatchetTreeBytes::tls_deserialize(r)?)
            }
            RatchetTreeRepresentation::DistributionService => {
                RatchetTreeOption::DistributionService
            }
        })
    }
}

wire_enum! {
    /// `RatchetTreePresence` of a `PartialGroupInfo` (draft-mahy-mls-ratchet-tree-options).
    pub enum RatchetTreePresence: u8, "RatchetTreePresence" {
        /// No `ratchet_tree` extension in the GroupInfo.
        NoRatchetTree = 0,
        /// The GroupInfo had one.
        Present = 1,
        /// It was removed.
        Removed = 2,
        /// It was added.
        Added = 3,
    }
}

/// `PartialGroupInfo` (draft-mahy-mls-ratchet-tree-options): the parts of a GroupInfo a
/// server cannot compute itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct PartialGroupInfo {
    /// Whether the GroupInfo carries a ratchet tree.
    pub ratchet_tree_presence: RatchetTreePresence,
    /// `Extension group_info_extensions<V>`.
    pub group_info_extensions: BoundedVec<Extension, MAX_COMPONENTS>,
    /// `opaque signature<V>`.
    pub signature: Opaque<MAX_KEY_LEN>,
}
