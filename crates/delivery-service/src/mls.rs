//! Small MLS helpers shared by the delivery service's checks: parsing MLS bytes, reading
//! MIMI identities out of credentials, and the group-context extensions MIMI uses.

use mimi_codec::mls_ids::{ROOM_STATE_EXTENSION_TYPE, USER_EVENT_PROPOSAL_TYPE};
use mimi_codec::{ClientId, RoomState, ServerName, UserEvent, Wire};
use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::*;

use crate::error::{DsError, DsRule};

/// Parse bytes as one MLSMessage.
pub(crate) fn parse_mls_message(bytes: &[u8]) -> Result<MlsMessageBodyIn, DsError> {
    MlsMessageIn::tls_deserialize_exact(bytes)
        .map(MlsMessageIn::extract)
        .map_err(|e| DsError::refused(DsRule::Mls1, format!("not an MLSMessage: {e}")))
}

/// The client a credential names: a BasicCredential whose identity is the client ID.
pub fn client_id_from_credential(credential: &Credential) -> Result<ClientId, DsError> {
    let basic = BasicCredential::try_from(credential.clone())
        .map_err(|_| DsError::refused(DsRule::Mls1, "credential is not a BasicCredential"))?;
    ClientId::try_from(basic.identity()).map_err(|e| {
        DsError::refused(
            DsRule::Mls1,
            format!("credential identity is not a client ID: {e}"),
        )
    })
}

/// The server an external sender's credential names: a BasicCredential whose identity is
/// the server name. (openmls keeps `ExternalSender`'s fields private, so the credential is
/// read back from the sender's TLS encoding: `SignaturePublicKey` then `Credential`.)
pub fn server_from_external_sender(sender: &ExternalSender) -> Result<ServerName, DsError> {
    let bad = |what: String| DsError::refused(DsRule::Xs1, what);
    let bytes = sender
        .tls_serialize_detached()
        .map_err(|e| bad(format!("external sender does not encode: {e}")))?;
    let mut reader = bytes.as_slice();
    VLBytes::tls_deserialize(&mut reader)
        .map_err(|e| bad(format!("external sender signature key: {e}")))?;
    let credential = Credential::tls_deserialize(&mut reader)
        .map_err(|e| bad(format!("external sender credential: {e}")))?;
    let basic = BasicCredential::try_from(credential)
        .map_err(|_| bad("external sender credential is not a BasicCredential".into()))?;
    ServerName::try_from(basic.identity()).map_err(|e| {
        bad(format!(
            "external sender identity is not a server name: {e}"
        ))
    })
}

/// The RoomState extension of a group context, decoded.
pub(crate) fn room_state_of(extensions: &Extensions<GroupContext>) -> Result<RoomState, DsError> {
    let ext = extensions
        .unknown(ROOM_STATE_EXTENSION_TYPE)
        .ok_or_else(|| DsError::refused(DsRule::Rs1, "group context has no RoomState extension"))?;
    RoomState::decode(&ext.0)
        .map_err(|e| DsError::refused(DsRule::Rs1, format!("RoomState extension: {e}")))
}

/// The UserEvent a custom proposal carries, if it is the MIMI UserEvent proposal.
pub(crate) fn user_event_of(proposal: &Proposal) -> Result<Option<UserEvent>, DsError> {
    match proposal {
        Proposal::Custom(custom) if custom.proposal_type() == USER_EVENT_PROPOSAL_TYPE => {
            UserEvent::decode(custom.payload()).map(Some).map_err(|e| {
                DsError::refused(DsRule::Mls1, format!("UserEvent proposal payload: {e}"))
            })
        }
        _ => Ok(None),
    }
}
