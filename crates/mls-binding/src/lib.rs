//! # mimi-mls-binding: MIMI written in MLS terms
//!
//! Owns the one place where MIMI values meet openmls values, for both sides of a room: the
//! client (`mimi-e2e`) that builds groups, commits and key packages, and the hub and
//! followers (`mimi-ds`) that check them. Both read the same rules from here, so they
//! cannot drift apart:
//!
//! - **Credentials**: a client's MLS credential is a BasicCredential whose identity is the
//!   UTF-8 client ID `@user:server#device` ([`client_id_from_credential`],
//!   [`credential_for`]).
//! - **External senders**: a server acting as external sender (the hub, a follower) is an
//!   `ExternalSender` whose BasicCredential's identity is its server name
//!   ([`external_sender`], [`server_of_external_sender`]).
//! - **RoomState**: the room's state is a GroupContext extension of the private-use type
//!   [`ROOM_STATE_EXTENSION_TYPE`] holding the TLS-encoded `mimi_codec::RoomState`
//!   ([`room_state_extension`], [`room_state_of`], [`room_state_bytes_of`]).
//! - **`m.room.user`**: a custom proposal of the private-use type
//!   [`USER_EVENT_PROPOSAL_TYPE`] carrying the TLS-encoded `mimi_codec::UserEvent`
//!   ([`user_event_proposal`], [`user_event_of`]).
//! - **Capabilities**: what every MIMI leaf advertises ([`mimi_capabilities`]), what every
//!   MIMI room requires ([`mimi_required_capabilities`]), and the checks of both
//!   ([`supports_mimi`], [`requires_mimi`]).
//!
//! - **Franking** (draft-ietf-mimi-protocol-06 §5.4.1, §5.9): the sender's `franking_tag` and
//!   `frank_aad`, the hub's `server_frank` and integrity signature, the receiver's and the
//!   reporting checks ([`franking`]).
//!
//! The private-use numbers themselves are `mimi_codec::mls_ids`' (the codec knows no
//! openmls); this crate gives their openmls forms.
//!
//! Must not depend on: any workspace crate but `mimi-codec`; sockets, storage, clocks,
//! signaling rules or the delivery service's checks. It depends on `mimi-codec` and
//! openmls only (with its RustCrypto provider for signature verification and randomness,
//! `hmac`/`sha2` for HMAC-SHA256, and `thiserror` for its error types). Pure functions, no
//! state.

pub mod franking;

pub mod v06;

use mimi_codec::{ClientId, CodecError, IdentifierError, RoomState, ServerName, UserEvent, Wire};
use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::{
    BasicCredential, Capabilities, Credential, CredentialType, CustomProposal, Extension,
    ExtensionType, Extensions, ExternalSender, GroupContext, ProposalType,
    RequiredCapabilitiesExtension, SignaturePublicKey, UnknownExtension,
};

/// The RoomState GroupContext extension type, in openmls's form
/// (`mimi_codec::mls_ids::ROOM_STATE_EXTENSION_TYPE`).
pub const ROOM_STATE_EXTENSION_TYPE: ExtensionType =
    ExtensionType::Unknown(mimi_codec::mls_ids::ROOM_STATE_EXTENSION_TYPE);

/// The `m.room.user` custom proposal type, in openmls's form
/// (`mimi_codec::mls_ids::USER_EVENT_PROPOSAL_TYPE`).
pub const USER_EVENT_PROPOSAL_TYPE: ProposalType =
    ProposalType::Custom(mimi_codec::mls_ids::USER_EVENT_PROPOSAL_TYPE);

/// Why a credential (or external sender) does not name a MIMI client (or server).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// Not a BasicCredential: MIMI clients and servers use BasicCredentials.
    #[error("not a BasicCredential")]
    NotBasic,
    /// The identity is not a valid identifier of the expected kind.
    #[error("credential identity: {0}")]
    Identity(#[from] IdentifierError),
    /// The bytes of an `ExternalSender` could not be parsed.
    #[error("malformed ExternalSender")]
    MalformedExternalSender,
}

/// Why a group context's RoomState extension cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoomStateError {
    /// The group context has no RoomState extension.
    #[error("the group context has no RoomState extension")]
    Missing,
    /// The extension's payload is not a valid RoomState.
    #[error("RoomState extension: {0}")]
    Malformed(#[from] CodecError),
}

/// The client a credential names: a BasicCredential whose identity is a valid client ID.
///
/// Rule E2E-ID-1 (docs/protocol-coverage.md).
pub fn client_id_from_credential(credential: &Credential) -> Result<ClientId, CredentialError> {
    let basic =
        BasicCredential::try_from(credential.clone()).map_err(|_| CredentialError::NotBasic)?;
    Ok(ClientId::try_from(basic.identity())?)
}

/// The credential of a client: a BasicCredential with the client ID as identity.
pub fn credential_for(client: &ClientId) -> Credential {
    BasicCredential::new(client.as_str().as_bytes().to_vec()).into()
}

/// The `ExternalSender` of a server: its signature public key and a BasicCredential with
/// its server name as identity. The hub's goes into a new room's `external_senders`; a
/// follower's, TLS-encoded, is its certificate in a `UserEvent`.
pub fn external_sender(server: &ServerName, signature_public_key: &[u8]) -> ExternalSender {
    ExternalSender::new(
        signature_public_key.to_vec().into(),
        BasicCredential::new(server.as_str().as_bytes().to_vec()).into(),
    )
}

/// The server an `ExternalSender` names. openmls keeps its fields crate-private, so this
/// reads them back from its TLS encoding (`SignaturePublicKey`, then `Credential`).
pub fn server_of_external_sender(sender: &ExternalSender) -> Result<ServerName, CredentialError> {
    let bytes = sender
        .tls_serialize_detached()
        .map_err(|_| CredentialError::MalformedExternalSender)?;
    let mut reader = bytes.as_slice();
    SignaturePublicKey::tls_deserialize(&mut reader)
        .map_err(|_| CredentialError::MalformedExternalSender)?;
    let credential = Credential::tls_deserialize(&mut reader)
        .map_err(|_| CredentialError::MalformedExternalSender)?;
    let basic = BasicCredential::try_from(credential).map_err(|_| CredentialError::NotBasic)?;
    Ok(ServerName::try_from(basic.identity())?)
}

/// The RoomState GroupContext extension holding `state`.
pub fn room_state_extension(state: &RoomState) -> Result<Extension, CodecError> {
    Ok(room_state_extension_from_bytes(state.encode()?))
}

/// The RoomState GroupContext extension holding an already encoded RoomState (carried over
/// unchanged from the current group context).
pub fn room_state_extension_from_bytes(encoded: Vec<u8>) -> Extension {
    Extension::Unknown(
        mimi_codec::mls_ids::ROOM_STATE_EXTENSION_TYPE,
        UnknownExtension(encoded),
    )
}

/// The RoomState extension's bytes in a group context's extensions, not decoded.
pub fn room_state_bytes_of(extensions: &Extensions<GroupContext>) -> Result<&[u8], RoomStateError> {
    extensions
        .unknown(mimi_codec::mls_ids::ROOM_STATE_EXTENSION_TYPE)
        .map(|ext| ext.0.as_slice())
        .ok_or(RoomStateError::Missing)
}

/// The RoomState in a group context's extensions, decoded.
pub fn room_state_of(extensions: &Extensions<GroupContext>) -> Result<RoomState, RoomStateError> {
    Ok(RoomState::decode(room_state_bytes_of(extensions)?)?)
}

/// The custom proposal carrying an `m.room.user` UserEvent.
pub fn user_event_proposal(event: &UserEvent) -> Result<CustomProposal, CodecError> {
    Ok(CustomProposal::new(
        mimi_codec::mls_ids::USER_EVENT_PROPOSAL_TYPE,
        event.encode()?,
    ))
}

/// The UserEvent a custom proposal carries: `None` if it is not the MIMI UserEvent
/// proposal, `Some(Err(..))` if it is but its payload does not decode.
pub fn user_event_of(proposal: &CustomProposal) -> Option<Result<UserEvent, CodecError>> {
    (proposal.proposal_type() == mimi_codec::mls_ids::USER_EVENT_PROPOSAL_TYPE)
        .then(|| UserEvent::decode(proposal.payload()))
}

/// The capabilities every MIMI leaf advertises (creator, key packages, external joiners):
/// the RoomState extension, the UserEvent proposal and last-resort key packages, beyond
/// openmls's defaults, and BasicCredentials; and for -06 rooms ([`v06`]) the
/// `app_data_dictionary` extension and the `AppDataUpdate` proposal.
pub fn mimi_capabilities() -> Capabilities {
    Capabilities::new(
        None,
        None,
        Some(&[
            ROOM_STATE_EXTENSION_TYPE,
            ExtensionType::LastResort,
            ExtensionType::AppDataDictionary,
        ]),
        Some(&[USER_EVENT_PROPOSAL_TYPE, ProposalType::AppDataUpdate]),
        Some(&[CredentialType::Basic]),
    )
}

/// The `required_capabilities` extension of a MIMI room: every member must support the
/// RoomState extension, the UserEvent proposal and BasicCredentials.
pub fn mimi_required_capabilities() -> RequiredCapabilitiesExtension {
    RequiredCapabilitiesExtension::new(
        &[ROOM_STATE_EXTENSION_TYPE],
        &[USER_EVENT_PROPOSAL_TYPE],
        &[CredentialType::Basic],
    )
}

/// Whether a leaf's capabilities include the MIMI extension and proposal types, without
/// which it could not join a MIMI room.
pub fn supports_mimi(capabilities: &Capabilities) -> bool {
    capabilities
        .extensions()
        .contains(&ROOM_STATE_EXTENSION_TYPE)
        && capabilities.proposals().contains(&USER_EVENT_PROPOSAL_TYPE)
}

/// Whether a group's `required_capabilities` include the MIMI extension and proposal
/// types, so that every member must support them.
pub fn requires_mimi(required: &RequiredCapabilitiesExtension) -> bool {
    required
        .extension_types()
        .contains(&ROOM_STATE_EXTENSION_TYPE)
        && required
            .proposal_types()
            .contains(&USER_EVENT_PROPOSAL_TYPE)
}
