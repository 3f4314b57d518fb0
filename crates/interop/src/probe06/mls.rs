//! The real MLS objects the probe's requests carry, made with openmls (suite 0x0001, the one
//! every -06 implementation must support): a group for the probe's room, created by the
//! probe's user with the handshake in plaintext (the -06 `update` takes PublicMessages), a
//! second client's key package, the commit adding it with its Welcome and the new epoch's
//! GroupInfo, and an application message (a PrivateMessage) in the new epoch.

use openmls::prelude::tls_codec::Serialize as _;
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;
use openmls_traits::signatures::Signer as _;

/// The cipher suite of every object (MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519).
pub const SUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
/// The MLSMessage header before a bare structure: `ProtocolVersion version; WireFormat
/// wire_format;` (RFC 9420 §6).
const MLS_MESSAGE_HEADER_LEN: usize = 4;
/// Length of the HPKE key material the groupInfo request's key is derived from.
const HPKE_IKM_LEN: usize = 32;

/// Why the MLS objects could not be made.
#[derive(Debug, thiserror::Error)]
#[error("openmls: {0}")]
pub struct MlsError(String);

fn mls(e: impl std::fmt::Display) -> MlsError {
    MlsError(e.to_string())
}

/// The probe's MLS objects, as bytes.
pub struct MlsObjects {
    /// The probe user's signature key pair (it signs the commit, the message and the
    /// keyMaterial and groupInfo requests).
    signer: SignatureKeyPair,
    /// A commit adding a second client (an MLSMessage, PublicMessage).
    pub commit: Vec<u8>,
    /// Its Welcome (bare, without the MLSMessage header).
    pub welcome: Vec<u8>,
    /// The new epoch's GroupInfo (bare), without the ratchet_tree extension.
    pub group_info: Vec<u8>,
    /// An application message of the new epoch (an MLSMessage, PrivateMessage).
    pub app_message: Vec<u8>,
    /// A key package of a third client (bare), for a consent grant.
    pub key_package: Vec<u8>,
    /// An HPKE public key for the groupInfo response's encryption.
    pub hpke_public_key: Vec<u8>,
}

impl std::fmt::Debug for MlsObjects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MlsObjects")
            .field("commit", &self.commit.len())
            .field("app_message", &self.app_message.len())
            .finish_non_exhaustive()
    }
}

fn bare(message: &MlsMessageOut) -> Result<Vec<u8>, MlsError> {
    let bytes = message.tls_serialize_detached().map_err(mls)?;
    bytes
        .get(MLS_MESSAGE_HEADER_LEN..)
        .map(<[u8]>::to_vec)
        .ok_or_else(|| MlsError("an MLSMessage shorter than its header".into()))
}

fn key_package(
    provider: &OpenMlsRustCrypto,
    identity: &str,
) -> Result<(KeyPackage, SignatureKeyPair), MlsError> {
    let signer = SignatureKeyPair::new(SUITE.signature_algorithm()).map_err(mls)?;
    let bundle = KeyPackage::builder()
        .build(
            SUITE,
            provider,
            &signer,
            CredentialWithKey {
                credential: BasicCredential::new(identity.as_bytes().to_vec()).into(),
                signature_key: signer.public().into(),
            },
        )
        .map_err(mls)?;
    Ok((bundle.key_package().clone(), signer))
}

impl MlsObjects {
    /// Make the objects for `room` (the group ID is the room URI), created by `user`.
    pub fn make(room: &str, user: &str, peer_user: &str) -> Result<Self, MlsError> {
        let provider = OpenMlsRustCrypto::default();
        let signer = SignatureKeyPair::new(SUITE.signature_algorithm()).map_err(mls)?;
        let config = MlsGroupCreateConfig::builder()
            .ciphersuite(SUITE)
            .wire_format_policy(PURE_PLAINTEXT_WIRE_FORMAT_POLICY)
            .use_ratchet_tree_extension(false)
            .build();
        let mut group = MlsGroup::new_with_group_id(
            &provider,
            &signer,
            &config,
            GroupId::from_slice(room.as_bytes()),
            CredentialWithKey {
                credential: BasicCredential::new(user.as_bytes().to_vec()).into(),
                signature_key: signer.public().into(),
            },
        )
        .map_err(mls)?;
        let (joiner, _) = key_package(&provider, peer_user)?;
        let (commit, welcome, _) = group
            .add_members(&provider, &signer, &[joiner])
            .map_err(mls)?;
        group.merge_pending_commit(&provider).map_err(mls)?;
        // The new epoch's GroupInfo, signed by the committer, without the ratchet tree.
        let group_info = group
            .export_group_info(provider.crypto(), &signer, false)
            .map_err(mls)?;
        let app_message = group
            .create_message(&provider, &signer, b"mimi-rs -06 conformance probe")
            .map_err(mls)?;
        let (grant, _) = key_package(&provider, user)?;
        let ikm = provider.rand().random_vec(HPKE_IKM_LEN).map_err(mls)?;
        let hpke = provider
            .crypto()
            .derive_hpke_keypair(SUITE.hpke_config(), &ikm)
            .map_err(mls)?;
        Ok(MlsObjects {
            commit: commit.tls_serialize_detached().map_err(mls)?,
            welcome: bare(&welcome)?,
            group_info: bare(&group_info)?,
            app_message: app_message.tls_serialize_detached().map_err(mls)?,
            key_package: grant.tls_serialize_detached().map_err(mls)?,
            hpke_public_key: hpke.public,
            signer,
        })
    }

    /// The probe user's signature public key.
    pub fn signature_key(&self) -> &[u8] {
        self.signer.public()
    }

    /// Sign `content` (already the labelled `SignContent`) with the probe user's key.
    pub fn sign(&self, content: &[u8]) -> Result<Vec<u8>, MlsError> {
        self.signer
            .sign(content)
            .map_err(|e| MlsError(format!("signing: {e:?}")))
    }
}
