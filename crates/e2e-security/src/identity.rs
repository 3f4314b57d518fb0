//! Identities in MLS on the client's side: follower certificates. The credential rule,
//! external senders, the MIMI capabilities and the private-use types are
//! `mimi-mls-binding`'s, shared with the hub (`mimi-ds`), and re-exported from this crate.

use mimi_codec::{FollowerCertificate, ServerName};
use mimi_mls_binding::server_of_external_sender;
use openmls::prelude::ExternalSender;
use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};

use crate::error::{E2eError, MlsObject};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CredentialError;
    use mimi_codec::ClientId;
    use mimi_mls_binding::{client_id_from_credential, credential_for, external_sender};
    use openmls::prelude::{BasicCredential, Credential};

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
