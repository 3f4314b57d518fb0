//! Small MLS helpers shared by the delivery service's checks: parsing MLS bytes and the
//! GroupInfo's parts, and the MIMI-on-MLS binding (`mimi-mls-binding`: identities in
//! credentials, the RoomState extension, the UserEvent proposal) with its errors as the
//! delivery service's refusals.

use mimi_codec::{ClientId, RoomState, ServerName, UserEvent};
use openmls::prelude::tls_codec::Deserialize as _;
use openmls::prelude::*;

use crate::error::{DsError, DsRule};

/// Parse bytes as one MLSMessage.
pub(crate) fn parse_mls_message(bytes: &[u8]) -> Result<MlsMessageBodyIn, DsError> {
    MlsMessageIn::tls_deserialize_exact(bytes)
        .map(MlsMessageIn::extract)
        .map_err(|e| DsError::refused(DsRule::Mls1, format!("not an MLSMessage: {e}")))
}

/// The MLS version (`mls10`) and wire format (`mls_group_info`) of an MLSMessage holding a
/// GroupInfo (RFC 9420 §6, §17.2).
const GROUP_INFO_MESSAGE_HEADER: [u8; 4] = [0x00, 0x01, 0x00, 0x04];

/// The label a GroupInfo is signed under (RFC 9420 §5.1.2, §12.4.3).
pub(crate) const GROUP_INFO_SIGN_LABEL: &[u8] = b"MLS 1.0 GroupInfoTBS";

/// A GroupInfo inside its MLSMessage, split into the parts the delivery service checks,
/// without decoding what its extensions hold: the ratchet tree there is the bulk of a
/// large group's GroupInfo, and the joiners, who use it, decode and verify it themselves.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawGroupInfo<'a> {
    /// The encoded GroupContext.
    pub group_context: &'a [u8],
    /// The encoded GroupInfoTBS (everything the signature covers).
    pub tbs: &'a [u8],
    /// The signature's bytes.
    pub signature: &'a [u8],
}

/// Take a variable-length vector's content off the front of `input`.
fn take_vl<'a>(input: &mut &'a [u8], what: &str) -> Result<&'a [u8], DsError> {
    let bad = |e: String| DsError::refused(DsRule::Gi1, format!("malformed GroupInfo {what}: {e}"));
    let (len, _) = tls_codec::vlen::read_length(input).map_err(|e| bad(e.to_string()))?;
    if len > input.len() {
        return Err(bad(format!("{len} bytes declared, {} left", input.len())));
    }
    let (content, rest) = input.split_at(len);
    *input = rest;
    Ok(content)
}

/// Take `n` fixed bytes off the front of `input`.
fn take<'a>(input: &mut &'a [u8], n: usize, what: &str) -> Result<&'a [u8], DsError> {
    if n > input.len() {
        return Err(DsError::refused(
            DsRule::Gi1,
            format!("malformed GroupInfo: {what} is cut short"),
        ));
    }
    let (content, rest) = input.split_at(n);
    *input = rest;
    Ok(content)
}

/// Split an MLSMessage holding a GroupInfo (RFC 9420 §12.4.3):
/// `group_context, extensions<V>, confirmation_tag<V>, uint32 signer, signature<V>`. Each
/// extension's frame (type and length) is checked, not its content; nothing may follow
/// the signature.
pub(crate) fn raw_group_info(bytes: &[u8]) -> Result<RawGroupInfo<'_>, DsError> {
    let body = bytes
        .strip_prefix(&GROUP_INFO_MESSAGE_HEADER[..])
        .ok_or_else(|| DsError::refused(DsRule::Gi1, "group_info is not an MLS 1.0 GroupInfo"))?;
    let mut input = body;
    // GroupContext: version, cipher_suite, group_id<V>, epoch, tree_hash<V>,
    // confirmed_transcript_hash<V>, extensions<V>.
    take(&mut input, 4, "the group context")?;
    take_vl(&mut input, "group ID")?;
    take(&mut input, 8, "the epoch")?;
    take_vl(&mut input, "tree hash")?;
    take_vl(&mut input, "confirmed transcript hash")?;
    take_vl(&mut input, "group context extensions")?;
    let group_context = &body[..body.len() - input.len()];
    let mut extensions = take_vl(&mut input, "extensions")?;
    while !extensions.is_empty() {
        take(&mut extensions, 2, "an extension type")?;
        take_vl(&mut extensions, "extension")?;
    }
    take_vl(&mut input, "confirmation tag")?;
    take(&mut input, 4, "the signer")?;
    let tbs = &body[..body.len() - input.len()];
    let signature = take_vl(&mut input, "signature")?;
    if !input.is_empty() {
        return Err(DsError::refused(
            DsRule::Gi1,
            format!(
                "malformed GroupInfo: {} bytes after the signature",
                input.len()
            ),
        ));
    }
    Ok(RawGroupInfo {
        group_context,
        tbs,
        signature,
    })
}

/// The client a credential names (the credential rule of `mimi-mls-binding`), as a DS-MLS-1
/// refusal when it names none.
pub(crate) fn client_id_from_credential(credential: &Credential) -> Result<ClientId, DsError> {
    mimi_mls_binding::client_id_from_credential(credential)
        .map_err(|e| DsError::refused(DsRule::Mls1, format!("credential names no client: {e}")))
}

/// The server an external sender names (`mimi-mls-binding`), as a DS-XS-1 refusal when it
/// names none.
pub(crate) fn server_from_external_sender(sender: &ExternalSender) -> Result<ServerName, DsError> {
    mimi_mls_binding::server_of_external_sender(sender)
        .map_err(|e| DsError::refused(DsRule::Xs1, format!("external sender names no server: {e}")))
}

/// The RoomState extension of a group context, decoded.
pub(crate) fn room_state_of(extensions: &Extensions<GroupContext>) -> Result<RoomState, DsError> {
    mimi_mls_binding::room_state_of(extensions)
        .map_err(|e| DsError::refused(DsRule::Rs1, e.to_string()))
}

/// The RoomState extension's bytes, not decoded.
pub(crate) fn room_state_bytes_of(extensions: &Extensions<GroupContext>) -> Result<&[u8], DsError> {
    mimi_mls_binding::room_state_bytes_of(extensions)
        .map_err(|e| DsError::refused(DsRule::Rs1, e.to_string()))
}

/// The UserEvent a proposal carries, if it is the MIMI UserEvent proposal.
pub(crate) fn user_event_of(proposal: &Proposal) -> Result<Option<UserEvent>, DsError> {
    match proposal {
        Proposal::Custom(custom) => {
            mimi_mls_binding::user_event_of(custom)
                .transpose()
                .map_err(|e| {
                    DsError::refused(DsRule::Mls1, format!("UserEvent proposal payload: {e}"))
                })
        }
        _ => Ok(None),
    }
}
