//! Identities in MLS: the credential rule, external senders, follower certificates and the
//! capabilities every MIMI leaf advertises.
//!
//! **The credential rule** (the hub applies the same one; `mimi-ds` reimplements these few
//! lines rather than depending on this crate): a MIMI client's MLS credential is a
//! BasicCredential whose identity is the UTF-8 client ID `@user:server#device`
//! ([`ClientId`]); the client's user is the part before `#`. A server acting as external
//! sender (the hub, a follower) has a BasicCredential whose identity is its server name.

use mimi_codec::mls_ids::{ROOM_STATE_EXTENSION_TYPE, USER_EVENT_PROPOSAL_TYPE};
use mimi_codec::{ClientId, FollowerCertificate, ServerName};
use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::*;

use crate::error::{CredentialError, E2eError, MlsObject};

/// The client a credential names: a BasicCredential whose identity is a valid client ID.
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

/// A follower server's certificate for `UserEvent::follower_server_certificate`: its
/// `ExternalSender`, TLS-encoded.
pub fn follower_certificate(sender: &ExternalSender) -> Result<FollowerCertificate, E2eError> {
    let bytes = sender
        .tls_serialize_detached()
        .map_err(E2eError::malformed(MlsObject::ExternalSender))?;
    Ok(FollowerCertificate::new(bytes)?)
}

/// Parse a follower certificate back into the `ExternalSender` it carries, checking that
/// its credential names a server.
pub fn parse_follower_certificate(
    certificate: &FollowerCertificate,
) -> Result<(ServerName, ExternalSender), E2eError> {
    let sender = ExternalSender::tls_deserialize_exact(certificate.as_slice())
        .map_err(E2eError::malformed(MlsObject::ExternalSender))?;
    let server = server_of_external_sender(&sender)?;
    Ok((server, sender))
}

/// The RoomState GroupContext extension type.
pub fn room_state_extension_type() -> ExtensionType {
    ExtensionType::Unknown(ROOM_STATE_EXTENSION_TYPE)
}

/// The `m.room.user` custom proposal type.
pub fn user_event_proposal_type() -> ProposalType {
    ProposalType::Custom(USER_EVENT_PROPOSAL_TYPE)
}

/// The capabilities every MIMI leaf advertises (creator, key packages, external joiners):
/// the RoomState extension, the UserEvent proposal and last-resort key packages, beyond
/// openmls's defaults.
pub fn mimi_capabilities() -> Capabilities {
    Capabilities::new(
        None,
        None,
        Some(&[room_state_extension_type(), ExtensionType::LastResort]),
        Some(&[user_event_proposal_type()]),
        Some(&[CredentialType::Basic]),
    )
}

/// The `required_capabilities` extension of a MIMI room: every member must support the
/// RoomState extension, the UserEvent proposal and BasicCredentials.
pub fn mimi_required_capabilities() -> RequiredCapabilitiesExtension {
    RequiredCapabilitiesExtension::new(
        &[room_state_extension_type()],
        &[user_event_proposal_type()],
        &[CredentialType::Basic],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_rule() {
        let client: ClientId = "@bob:b.example#phone".parse().unwrap();
        assert_eq!(
            client_id_from_credential(&credential_for(&client)).unwrap(),
            client
        );
        let not_client: Credential = BasicCredential::new(b"@bob:b.example".to_vec()).into();
        assert!(matches!(
            client_id_from_credential(&not_client),
            Err(CredentialError::Identity(_))
        ));
    }

    #[test]
    fn follower_certificate_round_trip() {
        let server: ServerName = "f.example".parse().unwrap();
        let sender = external_sender(&server, &[7u8; 32]);
        let cert = follower_certificate(&sender).unwrap();
        let (parsed_server, parsed) = parse_follower_certificate(&cert).unwrap();
        assert_eq!(parsed_server, server);
        assert_eq!(parsed, sender);
        let bad = FollowerCertificate::new(vec![1, 2, 3]).unwrap();
        assert!(matches!(
            parse_follower_certificate(&bad),
            Err(E2eError::Malformed {
                object: MlsObject::ExternalSender,
                ..
            })
        ));
    }
}
