//! Framing: `MIMIMessage`, `Event` with its per-type bodies, `EventResponse`, the
//! hub's fully-formed `FanoutEvent`, and `CheckInviteRequest`.
//!
//! `MIMIMessage` starts with its `ProtocolVersion`; [`MimiMessage`]'s decoder reads it
//! first and dispatches, so a second wire version can sit beside `mimi10` in this module
//! without changing the types the layers above use.

use std::io::{Read, Write};

use tls_codec::{Deserialize, Serialize, Size, TlsDeserialize, TlsSerialize, TlsSize};

use crate::CodecError;
use crate::bounded::{BoundedVec, Opaque, Text};
use crate::ds::*;
use crate::enums::wire_enum;
use crate::error::park;
use crate::ident::{RoomId, Sender};
use crate::limits::*;
use crate::room::{InfoEvent, UserEvent};

wire_enum! {
    /// `ProtocolVersion`.
    pub enum ProtocolVersion: u16, "ProtocolVersion" {
        /// MIMI 1.0: the consolidated draft-ralston-mimi-protocol of late 2023.
        Mimi10 = 1,
    }
}

wire_enum! {
    /// `MIMIMessageType`. `fanout` is this project's addition for the hub's fully-formed
    /// events (see `docs/spec-decisions.md`).
    pub enum MimiMessageType: u8, "MIMIMessageType" {
        /// An event (a limited event when a follower sends it to the hub).
        Event = 1,
        /// A response to an event.
        EventResponse = 2,
        /// A fully-formed event fanned out by the hub.
        Fanout = 3,
    }
}

/// The event type strings this implementation knows.
pub mod event_type {
    /// `m.room.user`.
    pub const ROOM_USER: &str = "m.room.user";
    /// `m.room.user.unsigned`: this project's transport-authenticated `m.room.user` for a
    /// user who has no client in the room's MLS group and so cannot sign an MLS proposal
    /// (a join after an invite, a knock, a decline). See `docs/spec-decisions.md`.
    pub const ROOM_USER_UNSIGNED: &str = "m.room.user.unsigned";
    /// `m.room.info`.
    pub const ROOM_INFO: &str = "m.room.info";
    /// `ds.create_group`.
    pub const DS_CREATE_GROUP: &str = "ds.create_group";
    /// `ds.proposal`.
    pub const DS_PROPOSAL: &str = "ds.proposal";
    /// `ds.commit`.
    pub const DS_COMMIT: &str = "ds.commit";
    /// `ds.fetch_key_packages`.
    pub const DS_FETCH_KEY_PACKAGES: &str = "ds.fetch_key_packages";
    /// `ds.fetch_group_info`.
    pub const DS_FETCH_GROUP_INFO: &str = "ds.fetch_group_info";
    /// `ds.send_message`.
    pub const DS_SEND_MESSAGE: &str = "ds.send_message";
}

/// An event (`struct { EventType type; select (type) { ... } } Event`). `EventType` is
/// `opaque type<V>` holding the type string; `ds.*` bodies are `DSRequest`s whose
/// `request_type` must match the event type.
#[derive(Debug, Clone, PartialEq, Eq)]
///
/// Rules CODEC-3, CODEC-8 (docs/protocol-coverage.md).
pub enum Event {
    /// `m.room.user`: an MLSMessage carrying a UserEvent proposal.
    RoomUser(MlsBytes),
    /// `m.room.user.unsigned`: a UserEvent about the sender itself, authenticated by the
    /// transport (the sender's server is the TLS peer) instead of an MLS signature.
    RoomUserUnsigned(UserEvent),
    /// `m.room.info`.
    RoomInfo(InfoEvent),
    /// `ds.create_group`.
    DsCreateGroup(CreateGroupRequest),
    /// `ds.proposal`.
    DsProposal(ProposalRequest),
    /// `ds.commit`.
    DsCommit(CommitRequest),
    /// `ds.fetch_key_packages`.
    DsFetchKeyPackages(KeyPackagesRequest),
    /// `ds.fetch_group_info`.
    DsFetchGroupInfo(GroupInfoRequest),
    /// `ds.send_message`.
    DsSendMessage(SendMessageRequest),
}

impl Event {
    /// The event type string.
    pub fn event_type(&self) -> &'static str {
        use event_type::*;
        match self {
            Event::RoomUser(_) => ROOM_USER,
            Event::RoomUserUnsigned(_) => ROOM_USER_UNSIGNED,
            Event::RoomInfo(_) => ROOM_INFO,
            Event::DsCreateGroup(_) => DS_CREATE_GROUP,
            Event::DsProposal(_) => DS_PROPOSAL,
            Event::DsCommit(_) => DS_COMMIT,
            Event::DsFetchKeyPackages(_) => DS_FETCH_KEY_PACKAGES,
            Event::DsFetchGroupInfo(_) => DS_FETCH_GROUP_INFO,
            Event::DsSendMessage(_) => DS_SEND_MESSAGE,
        }
    }

    fn ds_type(&self) -> Option<DsRequestType> {
        match self {
            Event::RoomUser(_) | Event::RoomUserUnsigned(_) | Event::RoomInfo(_) => None,
            Event::DsCreateGroup(_) => Some(DsRequestType::CreateGroup),
            Event::DsProposal(_) => Some(DsRequestType::Proposal),
            Event::DsCommit(_) => Some(DsRequestType::Commit),
            Event::DsFetchKeyPackages(_) => Some(DsRequestType::KeyPackages),
            Event::DsFetchGroupInfo(_) => Some(DsRequestType::GroupInfo),
            Event::DsSendMessage(_) => Some(DsRequestType::SendMessage),
        }
    }

    fn body_len(&self) -> usize {
        match self {
            Event::RoomUser(m) => crate::mls_frame::bare::tls_serialized_len(m),
            Event::RoomUserUnsigned(u) => u.tls_serialized_len(),
            Event::RoomInfo(i) => i.tls_serialized_len(),
            Event::DsCreateGroup(b) => b.tls_serialized_len(),
            Event::DsProposal(b) => b.tls_serialized_len(),
            Event::DsCommit(b) => b.tls_serialized_len(),
            Event::DsFetchKeyPackages(b) => b.tls_serialized_len(),
            Event::DsFetchGroupInfo(b) => b.tls_serialized_len(),
            Event::DsSendMessage(b) => b.tls_serialized_len(),
        }
    }
}

/// Length of the DS header (`DSProtocolVersion` u16 and the type u8).
const DS_HEADER_LEN: usize = 3;

/// Length of the `DSAuthData` this project writes (`Unauthenticated`: its type alone).
const DS_AUTH_LEN: usize = 1;

impl Size for Event {
    fn tls_serialized_len(&self) -> usize {
        let header = if self.ds_type().is_some() {
            DS_HEADER_LEN + DS_AUTH_LEN
        } else {
            0
        };
        crate::bounded::vl_len(self.event_type().len()) + header + self.body_len()
    }
}

impl Serialize for Event {
    fn tls_serialize<W: Write>(&self, w: &mut W) -> Result<usize, tls_codec::Error> {
        // Never emit what the decoder refuses.
        if let Event::DsProposal(b) = self
            && b.proposals.is_empty()
        {
            return Err(park(CodecError::Empty("ds.proposal proposals")));
        }
        let mut n = crate::bounded::write_vl_bytes(self.event_type().as_bytes(), w)?;
        if let Some(t) = self.ds_type() {
            n += DsProtocolVersion::MimiDs10.tls_serialize(w)?;
            n += t.tls_serialize(w)?;
        }
        n += match self {
            Event::RoomUser(m) => crate::mls_frame::bare::tls_serialize(m, w)?,
            Event::RoomUserUnsigned(u) => u.tls_serialize(w)?,
            Event::RoomInfo(i) => i.tls_serialize(w)?,
            Event::DsCreateGroup(b) => b.tls_serialize(w)?,
            Event::DsProposal(b) => b.tls_serialize(w)?,
            Event::DsCommit(b) => b.tls_serialize(w)?,
            Event::DsFetchKeyPackages(b) => b.tls_serialize(w)?,
            Event::DsFetchGroupInfo(b) => b.tls_serialize(w)?,
            Event::DsSendMessage(b) => b.tls_serialize(w)?,
        };
        if self.ds_type().is_some() {
            n += DsAuthType::Unauthenticated.tls_serialize(w)?;
        }
        Ok(n)
    }
}

/// Read the `DSAuthData` that ends a `DSRequest`: `Unauthenticated` is accepted;
/// `ClientSignature` is read to its end and refused, because this project authenticates
/// DS requests by their MLS signatures and the mutual TLS of the sending server and has no
/// key to check a DS-level signature against (`docs/spec-decisions.md`).
fn read_ds_auth_data<R: Read>(r: &mut R) -> Result<(), tls_codec::Error> {
    match DsAuthType::tls_deserialize(r)? {
        DsAuthType::Unauthenticated => Ok(()),
        DsAuthType::ClientSignature => {
            u32::tls_deserialize(r)?; // sender_index
            let len = u8::tls_deserialize(r)?; // opaque signature<0..255>
            crate::bounded::read_exact_vec(r, usize::from(len))?;
            Err(park(CodecError::Malformed(
                "DSAuthData ClientSignature is not accepted: requests are authenticated by \
                 MLS signatures and mutual TLS"
                    .into(),
            )))
        }
    }
}

/// Read the DS request header and check that its type is `expected`.
fn read_ds_request_header<R: Read>(
    r: &mut R,
    outer: &'static str,
    expected: DsRequestType,
) -> Result<(), tls_codec::Error> {
    let version = u16::tls_deserialize(r)?;
    if DsProtocolVersion::from_wire(version).is_none() {
        return Err(park(CodecError::UnsupportedDsVersion(version)));
    }
    let found = DsRequestType::tls_deserialize(r)?;
    if found != expected {
        return Err(park(CodecError::BodyTypeMismatch {
            outer,
            found: found.wire_value(),
        }));
    }
    Ok(())
}

impl Deserialize for Event {
    fn tls_deserialize<R: Read>(r: &mut R) -> Result<Self, tls_codec::Error> {
        use event_type::*;
        let ty = Text::<MAX_EVENT_TYPE_LEN>::tls_deserialize(r)?;
        let ty = ty.as_str();
        let event = match ty {
            ROOM_USER => Event::RoomUser(crate::mls_frame::bare::tls_deserialize(r)?),
            ROOM_USER_UNSIGNED => Event::RoomUserUnsigned(UserEvent::tls_deserialize(r)?),
            ROOM_INFO => Event::RoomInfo(InfoEvent::tls_deserialize(r)?),
            DS_CREATE_GROUP => {
                read_ds_request_header(r, DS_CREATE_GROUP, DsRequestType::CreateGroup)?;
                Event::DsCreateGroup(CreateGroupRequest::tls_deserialize(r)?)
            }
            DS_PROPOSAL => {
                read_ds_request_header(r, DS_PROPOSAL, DsRequestType::Proposal)?;
                let body = ProposalRequest::tls_deserialize(r)?;
                if body.proposals.is_empty() {
                    return Err(park(CodecError::Empty("ds.proposal proposals")));
                }
                Event::DsProposal(body)
            }
            DS_COMMIT => {
                read_ds_request_header(r, DS_COMMIT, DsRequestType::Commit)?;
                Event::DsCommit(CommitRequest::tls_deserialize(r)?)
            }
            DS_FETCH_KEY_PACKAGES => {
                read_ds_request_header(r, DS_FETCH_KEY_PACKAGES, DsRequestType::KeyPackages)?;
                Event::DsFetchKeyPackages(KeyPackagesRequest::tls_deserialize(r)?)
            }
            DS_FETCH_GROUP_INFO => {
                read_ds_request_header(r, DS_FETCH_GROUP_INFO, DsRequestType::GroupInfo)?;
                Event::DsFetchGroupInfo(GroupInfoRequest::tls_deserialize(r)?)
            }
            DS_SEND_MESSAGE => {
                read_ds_request_header(r, DS_SEND_MESSAGE, DsRequestType::SendMessage)?;
                Event::DsSendMessage(SendMessageRequest::tls_deserialize(r)?)
            }
            other => return Err(park(CodecError::UnknownEventType(other.to_owned()))),
        };
        if event.ds_type().is_some() {
            read_ds_auth_data(r)?;
        }
        Ok(event)
    }
}

wire_enum! {
    /// `EventErrorType`: the draft leaves it empty; these are this project's codes
    /// (`docs/wire-format.md` lists each with its HTTP status).
    pub enum ErrorCode: u16, "EventErrorType" {
        /// The body could not be decoded.
        Malformed = 1,
        /// The protocol version is not supported.
        UnsupportedVersion = 2,
        /// The room is not known to this server.
        UnknownRoom = 3,
        /// This server is not the room's hub (a follower received from a follower).
        NotHub = 4,
        /// The sender's server is not the TLS peer.
        SenderMismatch = 5,
        /// The room's policy forbids the action.
        ForbiddenByPolicy = 6,
        /// A participation rule refused the change.
        InvalidParticipationChange = 7,
        /// The MLS message is for an old epoch.
        StaleEpoch = 8,
        /// The commit does not include every proposal the hub accepted this epoch.
        MissingProposals = 9,
        /// The MLS message failed MLS validation (signature, membership, structure).
        InvalidMlsMessage = 10,
        /// The user is not known to this server.
        UnknownUser = 11,
        /// No key package is available for a requested client.
        NoKeyPackages = 12,
        /// The invitee's server refused the invite (or could not be reached).
        InviteRejected = 13,
        /// A client was added for a user who is not in the join state.
        ClientNotAllowed = 14,
        /// A leave, kick or ban was not followed by removal of all the user's clients.
        ClientsNotRemoved = 15,
        /// The RoomState extension after the commit differs from the hub's room state.
        RoomStateMismatch = 16,
        /// The room already exists.
        RoomExists = 17,
        /// The event type is not supported here.
        UnsupportedEvent = 18,
        /// The body is over the size limit.
        TooLarge = 19,
        /// The server failed internally; retrying may help.
        Internal = 20,
    }
}

impl ErrorCode {
    /// The HTTP status a server answers with when it refuses a request with this code
    /// (`docs/wire-format.md`): 400 malformed or refused by a rule, 403 forbidden, 404 not
    /// found, 409 conflicts with the room's current state, 413 too large, 421 sent to a
    /// server that is not the hub, 500 internal.
    pub fn http_status(self) -> u16 {
        use ErrorCode::*;
        match self {
            Malformed
            | UnsupportedVersion
            | InvalidParticipationChange
            | InvalidMlsMessage
            | ClientNotAllowed
            | ClientsNotRemoved
            | UnsupportedEvent => 400,
            SenderMismatch | ForbiddenByPolicy | InviteRejected => 403,
            UnknownRoom | UnknownUser | NoKeyPackages => 404,
            StaleEpoch | MissingProposals | RoomStateMismatch | RoomExists => 409,
            TooLarge => 413,
            NotHub => 421,
            Internal => 500,
        }
    }
}

impl CodecError {
    /// The `EventErrorType` a server reports when a request body fails to decode with this
    /// error: an unsupported version or event type names itself, a length over a limit is
    /// `too_large`, anything else is `malformed`.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            CodecError::UnsupportedVersion(_)
            | CodecError::UnsupportedDsVersion(_)
            | CodecError::UnsupportedProtocol(_) => ErrorCode::UnsupportedVersion,
            CodecError::UnknownEventType(_) => ErrorCode::UnsupportedEvent,
            CodecError::TooLong { .. } => ErrorCode::TooLarge,
            _ => ErrorCode::Malformed,
        }
    }
}

/// `EventError`: a code and a human-readable detail (which names the rule that failed).
#[derive(Debug, Clone, PartialEq, Eq, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct EventError {
    /// The error code.
    pub code: ErrorCode,
    /// What went wrong, for people and logs.
    pub detail: Text<MAX_REASON_LEN>,
}

impl EventError {
    /// An error with a detail, cut to [`MAX_REASON_LEN`] bytes at a character boundary.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        let mut detail = detail.into();
        if detail.len() > MAX_REASON_LEN {
            let mut end = MAX_REASON_LEN;
            while !detail.is_char_boundary(end) {
                end -= 1;
            }
            detail.truncate(end);
        }
        // Invariant: the detail was cut to the limit above.
        let detail = Text::new(detail).unwrap_or_default();
        EventError { code, detail }
    }
}

wire_enum! {
    /// `EventResponseType`.
    pub enum EventResponseType: u8, "EventResponseType" {
        /// Accepted.
        Ok = 1,
        /// Key packages.
        KeyPackage = 2,
        /// Group info.
        GroupInfo = 3,
        /// Refused.
        Error = 4,
    }
}

/// A response to an event (`EventResponse`). `key_package` and `group_info` carry a
/// `DSResponse` whose `response_type` must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventResponse {
    /// Accepted.
    Ok,
    /// Key packages (a `DSResponse` of type `KeyPackages`).
    KeyPackages(KeyPackagesResponse),
    /// Group info (a `DSResponse` of type `ExternalCommitInfo`).
    GroupInfo(GroupInfoResponse),
    /// Refused.
    Error(EventError),
}

impl EventResponse {
    fn response_type(&self) -> EventResponseType {
        match self {
            EventResponse::Ok => EventResponseType::Ok,
            EventResponse::KeyPackages(_) => EventResponseType::KeyPackage,
            EventResponse::GroupInfo(_) => EventResponseType::GroupInfo,
            EventResponse::Error(_) => EventResponseType::Error,
        }
    }
}

impl Size for EventResponse {
    fn tls_serialized_len(&self) -> usize {
        1 + match self {
            EventResponse::Ok => 0,
            EventResponse::KeyPackages(b) => DS_HEADER_LEN + b.tls_serialized_len(),
            EventResponse::GroupInfo(b) => DS_HEADER_LEN + b.tls_serialized_len(),
            EventResponse::Error(e) => e.tls_serialized_len(),
        }
    }
}

impl Serialize for EventResponse {
    fn tls_serialize<W: Write>(&self, w: &mut W) -> Result<usize, tls_codec::Error> {
        let mut n = self.response_type().tls_serialize(w)?;
        n += match self {
            EventResponse::Ok => 0,
            EventResponse::KeyPackages(b) => {
                DsProtocolVersion::MimiDs10.tls_serialize(w)?
                    + DsResponseType::KeyPackages.tls_serialize(w)?
                    + b.tls_serialize(w)?
            }
            EventResponse::GroupInfo(b) => {
                DsProtocolVersion::MimiDs10.tls_serialize(w)?
                    + DsResponseType::ExternalCommitInfo.tls_serialize(w)?
                    + b.tls_serialize(w)?
            }
            EventResponse::Error(e) => e.tls_serialize(w)?,
        };
        Ok(n)
    }
}

fn read_ds_response_header<R: Read>(
    r: &mut R,
    outer: &'static str,
    expected: DsResponseType,
) -> Result<(), tls_codec::Error> {
    let version = u16::tls_deserialize(r)?;
    if DsProtocolVersion::from_wire(version).is_none() {
        return Err(park(CodecError::UnsupportedDsVersion(version)));
    }
    let found = DsResponseType::tls_deserialize(r)?;
    if found != expected {
        return Err(park(CodecError::BodyTypeMismatch {
            outer,
            found: found.wire_value(),
        }));
    }
    Ok(())
}

impl Deserialize for EventResponse {
    fn tls_deserialize<R: Read>(r: &mut R) -> Result<Self, tls_codec::Error> {
        Ok(match EventResponseType::tls_deserialize(r)? {
            EventResponseType::Ok => EventResponse::Ok,
            EventResponseType::KeyPackage => {
                read_ds_response_header(r, "key_package", DsResponseType::KeyPackages)?;
                EventResponse::KeyPackages(KeyPackagesResponse::tls_deserialize(r)?)
            }
            EventResponseType::GroupInfo => {
                read_ds_response_header(r, "group_info", DsResponseType::ExternalCommitInfo)?;
                EventResponse::GroupInfo(GroupInfoResponse::tls_deserialize(r)?)
            }
            EventResponseType::Error => EventResponse::Error(EventError::tls_deserialize(r)?),
        })
    }
}

/// A hash carried on the wire (at most [`MAX_HASH_LEN`] bytes).
pub type WireHash = Opaque<MAX_HASH_LEN>;

/// A fully-formed event: the hub's ordering and authorization fields around an accepted
/// event (the signaling draft's "fully-formed event"; this project's wire form).
///
/// ```text
/// struct {
///   uint64 sequence;          // position in the room's linear history; the create event is 0
///   opaque prev_hash<V>;      // hash of the previous fully-formed event; empty for sequence 0
///   uint64 auth_events<V>;    // sequence numbers of the auth events that permit this one
///   Event event;
/// } FanoutEvent;
/// ```
#[derive(Debug, Clone, PartialEq, Eq, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct FanoutEvent {
    /// Position in the room's linear history.
    pub sequence: u64,
    /// Hash of the previous fully-formed event (empty for the create event).
    pub prev_hash: WireHash,
    /// Sequence numbers of the auth events.
    pub auth_events: BoundedVec<u64, MAX_AUTH_EVENTS>,
    /// The event.
    pub event: Event,
}

/// What a `MIMIMessage` carries after its `message_type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageBody {
    /// An event.
    Event(Event),
    /// A response.
    Response(EventResponse),
    /// A fully-formed event from the hub.
    Fanout(FanoutEvent),
}

impl MessageBody {
    fn message_type(&self) -> MimiMessageType {
        match self {
            MessageBody::Event(_) => MimiMessageType::Event,
            MessageBody::Response(_) => MimiMessageType::EventResponse,
            MessageBody::Fanout(_) => MimiMessageType::Fanout,
        }
    }
}

/// The frame of every MIMI protocol message (`MIMIMessage`).
///
/// ```text
/// struct {
///   ProtocolVersion version;      // uint16
///   opaque roomId<V>;
///   opaque sender<V>;
///   MIMIMessageType message_type; // uint8
///   select (message_type) { case event: Event; case event_response: EventResponse;
///                           case fanout: FanoutEvent; }
/// } MIMIMessage;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MimiMessage {
    /// The protocol version the message was created for.
    pub version: ProtocolVersion,
    /// The room the message is sent in context of.
    pub room_id: RoomId,
    /// Who or what sent it.
    pub sender: Sender,
    /// The event, response or fully-formed event.
    pub body: MessageBody,
}

impl MimiMessage {
    /// A MIMI 1.0 message.
    pub fn new(room_id: RoomId, sender: Sender, body: MessageBody) -> Self {
        MimiMessage {
            version: ProtocolVersion::Mimi10,
            room_id,
            sender,
            body,
        }
    }
}

impl Size for MimiMessage {
    fn tls_serialized_len(&self) -> usize {
        2 + self.room_id.tls_serialized_len()
            + self.sender.tls_serialized_len()
            + 1
            + match &self.body {
                MessageBody::Event(e) => e.tls_serialized_len(),
                MessageBody::Response(r) => r.tls_serialized_len(),
                MessageBody::Fanout(f) => f.tls_serialized_len(),
            }
    }
}

impl Serialize for MimiMessage {
    fn tls_serialize<W: Write>(&self, w: &mut W) -> Result<usize, tls_codec::Error> {
        let mut n = self.version.tls_serialize(w)?;
        n += self.room_id.tls_serialize(w)?;
        n += self.sender.tls_serialize(w)?;
        n += self.body.message_type().tls_serialize(w)?;
        n += match &self.body {
            MessageBody::Event(e) => e.tls_serialize(w)?,
            MessageBody::Response(r) => r.tls_serialize(w)?,
            MessageBody::Fanout(f) => f.tls_serialize(w)?,
        };
        Ok(n)
    }
}

impl Deserialize for MimiMessage {
    /// Rule CODEC-2 (docs/protocol-coverage.md): the protocol version is read first.
    fn tls_deserialize<R: Read>(r: &mut R) -> Result<Self, tls_codec::Error> {
        let version = u16::tls_deserialize(r)?;
        match ProtocolVersion::from_wire(version) {
            Some(ProtocolVersion::Mimi10) => mimi10_after_version(r),
            None => Err(park(CodecError::UnsupportedVersion(version))),
        }
    }
}

/// The rest of a `mimi10` MIMIMessage after its version.
fn mimi10_after_version<R: Read>(r: &mut R) -> Result<MimiMessage, tls_codec::Error> {
    let room_id = RoomId::tls_deserialize(r)?;
    let sender = Sender::tls_deserialize(r)?;
    let body = match MimiMessageType::tls_deserialize(r)? {
        MimiMessageType::Event => MessageBody::Event(Event::tls_deserialize(r)?),
        MimiMessageType::EventResponse => MessageBody::Response(EventResponse::tls_deserialize(r)?),
        MimiMessageType::Fanout => MessageBody::Fanout(FanoutEvent::tls_deserialize(r)?),
    };
    Ok(MimiMessage {
        version: ProtocolVersion::Mimi10,
        room_id,
        sender,
        body,
    })
}

/// The `sequence` of an encoded `mimi10` MIMIMessage carrying a fully-formed event, read
/// from its header without decoding the rest (no allocation): the version, the lengths of
/// the room and the sender (skipped), the message type, then the sequence. `None` if the
/// bytes do not start so (another message type, another version, a short or non-minimal
/// header). Only the header is read: the rest of the message is not checked.
pub fn fanout_sequence(bytes: &[u8]) -> Option<u64> {
    let mut r = bytes;
    let version = u16::tls_deserialize(&mut r).ok()?;
    if ProtocolVersion::from_wire(version) != Some(ProtocolVersion::Mimi10) {
        return None;
    }
    for _ in 0..2 {
        let len = crate::bounded::read_varint(&mut r).ok()?;
        r = r.get(len..)?;
    }
    if MimiMessageType::tls_deserialize(&mut r).ok()? != MimiMessageType::Fanout {
        return None;
    }
    u64::tls_deserialize(&mut r).ok()
}

/// The body of `POST /check-invite`.
///
/// ```text
/// struct {
///   MIMIMessage invite;   // the m.room.user invite, framed (version, room, inviter)
///   InfoEvent roomInfo;
/// } CheckInviteRequest;
/// ```
///
/// The draft has `Event invite` and a TODO asking for a protocol version; framing the
/// invite as a whole `MIMIMessage` gives the version, the room and the inviter at once.
#[derive(Debug, Clone, PartialEq, Eq, TlsSize, TlsSerialize, TlsDeserialize)]
pub struct CheckInviteRequest {
    /// The invite event.
    pub invite: MimiMessage,
    /// The room's current information.
    pub room_info: InfoEvent,
}
