//! The catalogue of malformed input: each entry names the flaw, gives the bytes and the exact
//! error the decoder must return. Plus two sweeps over every vector: each proper prefix is
//! `EndOfInput` and one extra byte is `TrailingBytes`.

use mimi_codec::limits::*;
use mimi_codec::*;

use crate::fixtures::read_vector;

/// Which top-level decoder a case goes through.
#[derive(Debug, Clone, Copy)]
enum Target {
    Mimi,
    CheckInvite,
    IdRequest,
    IdResponse,
    UserEvent,
    RoomState,
    Fanout,
}

fn decode(target: Target, bytes: &[u8]) -> Result<(), CodecError> {
    match target {
        Target::Mimi => MimiMessage::decode(bytes).map(drop),
        Target::CheckInvite => CheckInviteRequest::decode(bytes).map(drop),
        Target::IdRequest => IdentifierRequest::decode(bytes).map(drop),
        Target::IdResponse => IdentifierResponse::decode(bytes).map(drop),
        Target::UserEvent => UserEvent::decode(bytes).map(drop),
        Target::RoomState => RoomState::decode(bytes).map(drop),
        Target::Fanout => FanoutEvent::decode(bytes).map(drop),
    }
}

/// A byte builder for hand-made input.
#[derive(Clone, Default)]
struct B(Vec<u8>);

impl B {
    fn u8(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }
    fn u16(mut self, v: u16) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn raw(mut self, bytes: &[u8]) -> Self {
        self.0.extend_from_slice(bytes);
        self
    }
    /// A minimal variable-length prefix.
    fn vl(self, len: usize) -> Self {
        match len {
            0..=63 => self.u8(len as u8),
            64..=16383 => self.u16(0x4000 | len as u16),
            _ => self.raw(&(0x8000_0000 | len as u32).to_be_bytes()),
        }
    }
    /// `opaque<V>` holding these bytes.
    fn b(self, bytes: &[u8]) -> Self {
        self.vl(bytes.len()).raw(bytes)
    }
    fn s(self, text: &str) -> Self {
        self.b(text.as_bytes())
    }
    /// A vector of `count` copies of `item`.
    fn repeat(self, item: &[u8], count: usize) -> Self {
        self.vl(item.len() * count).raw(&item.repeat(count))
    }
    fn done(self) -> Vec<u8> {
        self.0
    }
}

/// The smallest well-framed MLSMessage: a Welcome (mls10, wire format 3, cipher suite 1,
/// empty `secrets<V>` and `encrypted_group_info<V>`).
const WELCOME: [u8; 8] = [0, 1, 0, 3, 0, 1, 0, 0];
/// An application PrivateMessage up to its ciphertext's length prefix.
const PRIVATE_HEAD: [u8; 16] = [0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0];

const ROOM: &str = "!r1:a.example";
const ALICE: &str = "@alice:a.example";
const BOB: &str = "@bob:b.example";

fn head_with(room: &str, sender: &str, message_type: u8) -> B {
    B::default().u16(1).s(room).s(sender).u8(message_type)
}
fn event(ty: &str) -> B {
    head_with(ROOM, ALICE, 1).s(ty)
}
fn ds_event(ty: &str, request_type: u8) -> B {
    event(ty).u16(1).u8(request_type)
}
fn response(ty: u8) -> B {
    head_with(ROOM, "a.example", 2).u8(ty)
}
fn user_event(target: &str, change: u8) -> B {
    B::default().s(target).u8(change)
}
fn unknown(what: &'static str, value: u64) -> CodecError {
    CodecError::UnknownValue { what, value }
}
fn too_long(len: usize, max: usize) -> CodecError {
    CodecError::TooLong { len, max }
}
fn ident(e: IdentifierError) -> CodecError {
    CodecError::InvalidIdentifier(e)
}
/// A room state whose participant list and policy come from the caller.
fn room_state_with(participants: B, policy: B) -> Vec<u8> {
    let participants = participants.done();
    B::default()
        .s(ROOM)
        .raw(&participants)
        .raw(&policy.done())
        .s("mls10")
        .u16(1)
        .done()
}
fn one_participant() -> B {
    let p = B::default().s(ALICE).s("owner").u8(1).done();
    B::default().b(&p)
}
fn policy(join_rule: u8, permissions: B) -> B {
    B::default()
        .s("mimi.roles.v1")
        .u8(join_rule)
        .raw(&permissions.done())
}

const OPTION_2: &str =
    "Trying to decode Option<T> with 2 for option. It must be 0 for None and 1 for Some.";

fn catalogue() -> Vec<(&'static str, Target, Vec<u8>, CodecError)> {
    use IdentifierError as I;
    use IdentifierKind::*;
    use Target::*;
    vec![
        // Trailing bytes and truncation.
        (
            "trailing byte after ok response",
            Mimi,
            response(1).u8(0).done(),
            CodecError::TrailingBytes,
        ),
        ("empty input", Mimi, vec![], CodecError::EndOfInput),
        (
            "truncated in version",
            Mimi,
            vec![0x00],
            CodecError::EndOfInput,
        ),
        (
            "truncated in roomId",
            Mimi,
            B::default().u16(1).u8(13).raw(b"!r").done(),
            CodecError::EndOfInput,
        ),
        (
            "truncated before message_type",
            Mimi,
            B::default().u16(1).s(ROOM).s(ALICE).done(),
            CodecError::EndOfInput,
        ),
        (
            "truncated in DS header",
            Mimi,
            event("ds.commit").u16(1).done(),
            CodecError::EndOfInput,
        ),
        (
            "truncated before option presence",
            UserEvent,
            user_event(BOB, 0).s("").done(),
            CodecError::EndOfInput,
        ),
        (
            "vector length cuts an item",
            Fanout,
            B::default().u64(1).s("").vl(9).u64(0).u64(1).done(),
            CodecError::EndOfInput,
        ),
        // Versions.
        (
            "ProtocolVersion 2",
            Mimi,
            B::default().u16(2).s(ROOM).s(ALICE).u8(1).done(),
            CodecError::UnsupportedVersion(2),
        ),
        (
            "ProtocolVersion 0 (reserved)",
            Mimi,
            B::default().u16(0).s(ROOM).done(),
            CodecError::UnsupportedVersion(0),
        ),
        (
            "ProtocolVersion 0xffff, nothing after",
            Mimi,
            B::default().u16(0xffff).done(),
            CodecError::UnsupportedVersion(0xffff),
        ),
        (
            "invite framed with ProtocolVersion 2",
            CheckInvite,
            B::default().u16(2).done(),
            CodecError::UnsupportedVersion(2),
        ),
        (
            "DSProtocolVersion 2 in a request",
            Mimi,
            event("ds.send_message").u16(2).u8(3).b(&[1]).done(),
            CodecError::UnsupportedDsVersion(2),
        ),
        (
            "DSProtocolVersion 0 in a response",
            Mimi,
            response(2).u16(0).u8(6).vl(0).done(),
            CodecError::UnsupportedDsVersion(0),
        ),
        // Unknown enumeration values.
        (
            "MIMIMessageType 0",
            Mimi,
            head_with(ROOM, ALICE, 0).done(),
            unknown("MIMIMessageType", 0),
        ),
        (
            "MIMIMessageType 4",
            Mimi,
            head_with(ROOM, ALICE, 4).done(),
            unknown("MIMIMessageType", 4),
        ),
        (
            "EventResponseType 0",
            Mimi,
            response(0).done(),
            unknown("EventResponseType", 0),
        ),
        (
            "EventResponseType 5",
            Mimi,
            response(5).done(),
            unknown("EventResponseType", 5),
        ),
        (
            "EventErrorType 0",
            Mimi,
            response(4).u16(0).s("").done(),
            unknown("EventErrorType", 0),
        ),
        (
            "EventErrorType 21",
            Mimi,
            response(4).u16(21).s("").done(),
            unknown("EventErrorType", 21),
        ),
        (
            "DSRequestType 11",
            Mimi,
            ds_event("ds.commit", 11).done(),
            unknown("DSRequestType", 11),
        ),
        (
            "DSResponseType 5",
            Mimi,
            response(2).u16(1).u8(5).done(),
            unknown("DSResponseType", 5),
        ),
        (
            "DSKeyPackageType 1",
            Mimi,
            response(2)
                .u16(1)
                .u8(4)
                .vl(24)
                .s("@bob:b.example#phone")
                .u8(1)
                .b(&[1, 2])
                .done(),
            unknown("DSKeyPackageType", 1),
        ),
        (
            "ParticipationState 4",
            RoomState,
            room_state_with(
                B::default().b(&B::default().s(ALICE).s("owner").u8(4).done()),
                policy(0, B::default().vl(0)),
            ),
            unknown("ParticipationState", 4),
        ),
        (
            "ParticipationStateChange 6",
            UserEvent,
            user_event(BOB, 6).done(),
            unknown("ParticipationStateChange", 6),
        ),
        (
            "JoinRule 3",
            RoomState,
            room_state_with(one_participant(), policy(3, B::default().vl(0))),
            unknown("JoinRule", 3),
        ),
        (
            "PolicyAction 6",
            RoomState,
            room_state_with(one_participant(), policy(0, B::default().b(&[6, 0]))),
            unknown("PolicyAction", 6),
        ),
        (
            "IdentifierType 0 (reserved)",
            IdRequest,
            B::default().u8(0).s("bob").done(),
            unknown("IdentifierType", 0),
        ),
        (
            "IdentifierType 9",
            IdRequest,
            B::default().u8(9).s("bob").done(),
            unknown("IdentifierType", 9),
        ),
        (
            "IdentifierDiscoveryCode 5",
            IdResponse,
            B::default().u8(5).s("").done(),
            unknown("IdentifierDiscoveryCode", 5),
        ),
        // Event types.
        (
            "unknown event type",
            Mimi,
            event("m.room.nope").done(),
            CodecError::UnknownEventType("m.room.nope".into()),
        ),
        (
            "event types are case-sensitive",
            Mimi,
            event("M.ROOM.USER").b(&[1]).done(),
            CodecError::UnknownEventType("M.ROOM.USER".into()),
        ),
        (
            "empty event type",
            Mimi,
            event("").done(),
            CodecError::UnknownEventType(String::new()),
        ),
        (
            "event type is not UTF-8",
            Mimi,
            head_with(ROOM, ALICE, 1).b(&[0xc3, 0x28]).done(),
            CodecError::InvalidUtf8,
        ),
        // DS types that do not match the event or response.
        (
            "ds.proposal carrying a commit",
            Mimi,
            ds_event("ds.proposal", 2).done(),
            CodecError::BodyTypeMismatch {
                outer: "ds.proposal",
                found: 2,
            },
        ),
        (
            "ds.send_message carrying a proposal",
            Mimi,
            ds_event("ds.send_message", 1).done(),
            CodecError::BodyTypeMismatch {
                outer: "ds.send_message",
                found: 1,
            },
        ),
        (
            "ds.fetch_group_info carrying send_message",
            Mimi,
            ds_event("ds.fetch_group_info", 3).done(),
            CodecError::BodyTypeMismatch {
                outer: "ds.fetch_group_info",
                found: 3,
            },
        ),
        (
            "ds.fetch_key_packages carrying group_info",
            Mimi,
            ds_event("ds.fetch_key_packages", 5).done(),
            CodecError::BodyTypeMismatch {
                outer: "ds.fetch_key_packages",
                found: 5,
            },
        ),
        (
            "ds.commit carrying key_packages",
            Mimi,
            ds_event("ds.commit", 4).done(),
            CodecError::BodyTypeMismatch {
                outer: "ds.commit",
                found: 4,
            },
        ),
        (
            "key_package response carrying ExternalCommitInfo",
            Mimi,
            response(2).u16(1).u8(3).done(),
            CodecError::BodyTypeMismatch {
                outer: "key_package",
                found: 3,
            },
        ),
        (
            "group_info response carrying KeyPackages",
            Mimi,
            response(3).u16(1).u8(4).done(),
            CodecError::BodyTypeMismatch {
                outer: "group_info",
                found: 4,
            },
        ),
        // Variable-length prefixes.
        (
            "non-minimal 2-byte prefix",
            Mimi,
            B::default()
                .u16(1)
                .u16(0x4000 | 13)
                .raw(ROOM.as_bytes())
                .done(),
            CodecError::InvalidLength,
        ),
        (
            "non-minimal 4-byte prefix",
            Mimi,
            B::default()
                .u16(1)
                .raw(&[0x80, 0, 0, 13])
                .raw(ROOM.as_bytes())
                .done(),
            CodecError::InvalidLength,
        ),
        (
            "non-minimal 4-byte prefix for 64",
            Mimi,
            event("ds.send_message")
                .u16(1)
                .u8(3)
                .raw(&[0x80, 0, 0, 64])
                .raw(&[0; 64])
                .done(),
            CodecError::InvalidLength,
        ),
        (
            "0b11 (8-byte) prefix",
            Mimi,
            B::default()
                .u16(1)
                .raw(&[0xc0, 0, 0, 0, 0, 0, 0, 13])
                .done(),
            CodecError::InvalidLength,
        ),
        (
            "non-minimal vector prefix",
            Fanout,
            B::default().u64(1).s("").u16(0x4008).u64(0).done(),
            CodecError::InvalidLength,
        ),
        // Byte lengths over the limits, refused before anything is read or allocated.
        (
            "vector of MLS messages claiming 1 GiB, no data",
            Mimi,
            event("ds.send_message")
                .u16(1)
                .u8(3)
                .raw(&[0xbf, 0xff, 0xff, 0xff])
                .done(),
            too_long(MAX_VARINT, MAX_MESSAGE_LEN),
        ),
        (
            "ratchet tree claiming 1 GiB, no data",
            Mimi,
            ds_event("ds.create_group", 240)
                .raw(&WELCOME)
                .raw(&[0xbf, 0xff, 0xff, 0xff])
                .done(),
            too_long(MAX_VARINT + 4, MAX_MLS_OBJECT_LEN),
        ),
        (
            "bare MLS object one over the limit",
            Mimi,
            event("m.room.user")
                .raw(&PRIVATE_HEAD)
                .vl(MAX_MLS_OBJECT_LEN)
                .raw(&vec![0; MAX_MLS_OBJECT_LEN])
                .done(),
            too_long(MAX_MLS_OBJECT_LEN + 1, MAX_MLS_OBJECT_LEN),
        ),
        (
            "bare MLSMessage field claiming 1 GiB",
            Mimi,
            event("m.room.user")
                .raw(&PRIVATE_HEAD)
                .raw(&[0xbf, 0xff, 0xff, 0xff])
                .done(),
            too_long(MAX_VARINT, MAX_MLS_OBJECT_LEN),
        ),
        (
            "event type one over the limit",
            Mimi,
            head_with(ROOM, ALICE, 1).vl(MAX_EVENT_TYPE_LEN + 1).done(),
            too_long(256, MAX_EVENT_TYPE_LEN),
        ),
        (
            "reason one over the limit",
            UserEvent,
            user_event(BOB, 2).vl(MAX_REASON_LEN + 1).done(),
            too_long(1025, MAX_REASON_LEN),
        ),
        (
            "error detail one over the limit",
            Mimi,
            response(4).u16(1).vl(MAX_REASON_LEN + 1).done(),
            too_long(1025, MAX_REASON_LEN),
        ),
        (
            "certificate one over the limit",
            UserEvent,
            user_event(BOB, 0)
                .s("")
                .u8(1)
                .vl(MAX_CERTIFICATE_LEN + 1)
                .done(),
            too_long(16385, MAX_CERTIFICATE_LEN),
        ),
        (
            "role one over the limit",
            UserEvent,
            user_event(BOB, 0)
                .s("")
                .u8(0)
                .u8(1)
                .vl(MAX_ROLE_LEN + 1)
                .done(),
            too_long(65, MAX_ROLE_LEN),
        ),
        (
            "policy_id one over the limit",
            RoomState,
            B::default().s(ROOM).vl(0).vl(MAX_NAME_LEN + 1).done(),
            too_long(256, MAX_NAME_LEN),
        ),
        (
            "security protocol one over the limit",
            RoomState,
            B::default()
                .s(ROOM)
                .vl(0)
                .raw(&policy(0, B::default().vl(0)).done())
                .vl(MAX_NAME_LEN + 1)
                .done(),
            too_long(256, MAX_NAME_LEN),
        ),
        (
            "search value one over the limit",
            IdRequest,
            B::default().u8(1).vl(MAX_SEARCH_VALUE_LEN + 1).done(),
            too_long(1025, MAX_SEARCH_VALUE_LEN),
        ),
        (
            "claim name one over the limit",
            IdRequest,
            B::default()
                .u8(7)
                .s("bob")
                .vl(MAX_SEARCH_VALUE_LEN + 1)
                .done(),
            too_long(1025, MAX_SEARCH_VALUE_LEN),
        ),
        (
            "URI one over the limit",
            IdResponse,
            B::default().u8(0).vl(MAX_URI_LEN + 1).done(),
            too_long(1025, MAX_URI_LEN),
        ),
        (
            "prev_hash one over the limit",
            Fanout,
            B::default().u64(1).vl(MAX_HASH_LEN + 1).done(),
            too_long(65, MAX_HASH_LEN),
        ),
        (
            "whole message over MAX_MESSAGE_LEN",
            Mimi,
            vec![0; MAX_MESSAGE_LEN + 1],
            too_long(MAX_MESSAGE_LEN + 1, MAX_MESSAGE_LEN),
        ),
        // Item counts over the limits.
        (
            "auth_events: 257 items",
            Fanout,
            B::default()
                .u64(1)
                .s("")
                .repeat(&[0; 8], MAX_AUTH_EVENTS + 1)
                .done(),
            too_long(MAX_AUTH_EVENTS + 1, MAX_AUTH_EVENTS),
        ),
        (
            "ds.proposal: 1025 proposals",
            Mimi,
            ds_event("ds.proposal", 1)
                .repeat(&WELCOME, MAX_MLS_MESSAGES + 1)
                .done(),
            too_long(MAX_MLS_MESSAGES + 1, MAX_MLS_MESSAGES),
        ),
        (
            "ds.commit: 1025 welcomes",
            Mimi,
            ds_event("ds.commit", 2)
                .raw(&WELCOME)
                .raw(&WELCOME)
                .repeat(&WELCOME, MAX_MLS_MESSAGES + 1)
                .done(),
            too_long(MAX_MLS_MESSAGES + 1, MAX_MLS_MESSAGES),
        ),
        (
            "group info: 1025 pending proposals",
            Mimi,
            response(3)
                .u16(1)
                .u8(3)
                .raw(&WELCOME)
                .vl(0)
                .repeat(&WELCOME, MAX_MLS_MESSAGES + 1)
                .done(),
            too_long(MAX_MLS_MESSAGES + 1, MAX_MLS_MESSAGES),
        ),
        (
            "ds.fetch_key_packages: 1025 clients",
            Mimi,
            ds_event("ds.fetch_key_packages", 4)
                .u16(1)
                .s(BOB)
                .repeat(&B::default().s("@b:c#d").done(), MAX_KEY_PACKAGES + 1)
                .done(),
            too_long(MAX_KEY_PACKAGES + 1, MAX_KEY_PACKAGES),
        ),
        (
            "key packages: 1025 entries",
            Mimi,
            response(2)
                .u16(1)
                .u8(4)
                .repeat(
                    &B::default().s("@b:c#d").u8(0).raw(&WELCOME).done(),
                    MAX_KEY_PACKAGES + 1,
                )
                .done(),
            too_long(MAX_KEY_PACKAGES + 1, MAX_KEY_PACKAGES),
        ),
        (
            "permission: 17 roles",
            RoomState,
            room_state_with(
                B::default().vl(0),
                policy(
                    0,
                    B::default().b(&B::default()
                        .u8(0)
                        .repeat(&B::default().s("r").done(), MAX_ROLES_PER_PERMISSION + 1)
                        .done()),
                ),
            ),
            too_long(MAX_ROLES_PER_PERMISSION + 1, MAX_ROLES_PER_PERMISSION),
        ),
        (
            "policy: 65 permissions",
            RoomState,
            room_state_with(
                B::default().vl(0),
                policy(0, B::default().repeat(&[0, 0], MAX_PERMISSIONS + 1)),
            ),
            too_long(MAX_PERMISSIONS + 1, MAX_PERMISSIONS),
        ),
        (
            "room state: 100001 participants",
            RoomState,
            room_state_with(
                B::default().repeat(
                    &B::default().s("@a:b").s("m").u8(1).done(),
                    MAX_PARTICIPANTS + 1,
                ),
                policy(0, B::default().vl(0)),
            ),
            too_long(MAX_PARTICIPANTS + 1, MAX_PARTICIPANTS),
        ),
        // Identifiers, one entry per grammar rule.
        (
            "room ID without '!'",
            Mimi,
            head_with("r1:a.example", ALICE, 1).done(),
            ident(I::MissingSigil {
                kind: Room,
                sigil: '!',
            }),
        ),
        (
            "target user ID with '!'",
            UserEvent,
            user_event("!bob:b.example", 0).done(),
            ident(I::MissingSigil {
                kind: User,
                sigil: '@',
            }),
        ),
        (
            "room ID without ':'",
            Mimi,
            head_with("!r1a.example", ALICE, 1).done(),
            ident(I::MissingServer { kind: Room }),
        ),
        (
            "user ID without ':'",
            UserEvent,
            user_event("@bob", 0).done(),
            ident(I::MissingServer { kind: User }),
        ),
        (
            "room ID with empty localpart",
            Mimi,
            head_with("!:a.example", ALICE, 1).done(),
            ident(I::EmptyLocalpart { kind: Room }),
        ),
        (
            "user ID with empty localpart",
            UserEvent,
            user_event("@:b.example", 0).done(),
            ident(I::EmptyLocalpart { kind: User }),
        ),
        (
            "uppercase in user localpart",
            Mimi,
            head_with(ROOM, "@Alice:a.example", 1).done(),
            ident(I::InvalidChar {
                kind: User,
                found: 'A',
            }),
        ),
        (
            "'#' in room localpart",
            Mimi,
            head_with("!r#1:a.example", ALICE, 1).done(),
            ident(I::InvalidChar {
                kind: Room,
                found: '#',
            }),
        ),
        (
            "non-ASCII in user localpart",
            UserEvent,
            user_event("@b\u{f6}b:b.example", 0).done(),
            ident(I::InvalidChar {
                kind: User,
                found: '\u{f6}',
            }),
        ),
        (
            "empty server name",
            Mimi,
            head_with("!r1:", ALICE, 1).done(),
            ident(I::InvalidServerName("empty")),
        ),
        (
            "server name with an empty label",
            Mimi,
            head_with("!r1:a..example", ALICE, 1).done(),
            ident(I::InvalidServerName("empty label")),
        ),
        (
            "server name ending in '.'",
            Mimi,
            head_with(ROOM, "a.example.", 2).done(),
            ident(I::InvalidServerName("empty label")),
        ),
        (
            "server label starting with '-'",
            Mimi,
            head_with("!r1:-a.example", ALICE, 1).done(),
            ident(I::InvalidServerName(
                "a label must not start or end with '-'",
            )),
        ),
        (
            "server label with '_'",
            UserEvent,
            user_event("@bob:b_c.example", 0).done(),
            ident(I::InvalidServerName(
                "only letters, digits, '-' and '.' are allowed",
            )),
        ),
        (
            "server label of 64 characters",
            Mimi,
            head_with(&format!("!r1:{}.example", "a".repeat(64)), ALICE, 1).done(),
            ident(I::InvalidServerName("label longer than 63 characters")),
        ),
        (
            "server sender with a port",
            Mimi,
            head_with(ROOM, "a.example:8448", 2).done(),
            ident(I::InvalidServerName(
                "only letters, digits, '-' and '.' are allowed",
            )),
        ),
        (
            "client ID without '#'",
            Mimi,
            ds_event("ds.fetch_key_packages", 4)
                .u16(1)
                .s(BOB)
                .vl(15)
                .s(BOB)
                .done(),
            ident(I::MissingServer { kind: Client }),
        ),
        (
            "client ID with empty device",
            Mimi,
            ds_event("ds.fetch_key_packages", 4)
                .u16(1)
                .s(BOB)
                .vl(16)
                .s("@bob:b.example#")
                .done(),
            ident(I::EmptyLocalpart { kind: Client }),
        ),
        (
            "client ID device with ' '",
            Mimi,
            ds_event("ds.fetch_key_packages", 4)
                .u16(1)
                .s(BOB)
                .vl(19)
                .s("@bob:b.example#a b")
                .done(),
            ident(I::InvalidChar {
                kind: Client,
                found: ' ',
            }),
        ),
        (
            "room ID of 256 characters",
            Mimi,
            head_with(&format!("!{}:a.example", "r".repeat(245)), ALICE, 1).done(),
            ident(I::TooLong {
                kind: Room,
                len: 256,
            }),
        ),
        (
            "room ID claiming 1 GiB, no data",
            Mimi,
            B::default().u16(1).raw(&[0xbf, 0xff, 0xff, 0xff]).done(),
            ident(I::TooLong {
                kind: Room,
                len: MAX_VARINT,
            }),
        ),
        (
            "user sender of 256 characters",
            Mimi,
            head_with(ROOM, &format!("@{}:a.example", "u".repeat(245)), 1).done(),
            ident(I::TooLong {
                kind: User,
                len: 256,
            }),
        ),
        (
            "server sender of 256 characters",
            Mimi,
            head_with(ROOM, &format!("{}example1", "a.".repeat(124)), 1).done(),
            ident(I::TooLong {
                kind: Server,
                len: 256,
            }),
        ),
        (
            "room ID not UTF-8",
            Mimi,
            B::default().u16(1).b(b"!r\xff:a.example").done(),
            ident(I::NotUtf8 { kind: Room }),
        ),
        (
            "server sender not UTF-8",
            Mimi,
            B::default().u16(1).s(ROOM).b(b"a\xff.example").done(),
            ident(I::NotUtf8 { kind: Server }),
        ),
        (
            "user sender not UTF-8",
            Mimi,
            B::default().u16(1).s(ROOM).b(b"@a\xff:a.example").done(),
            ident(I::NotUtf8 { kind: User }),
        ),
        // Text.
        (
            "reason not UTF-8",
            UserEvent,
            user_event(BOB, 2).b(&[0xff]).done(),
            CodecError::InvalidUtf8,
        ),
        (
            "error detail not UTF-8",
            Mimi,
            response(4).u16(1).b(&[0xe2, 0x82]).done(),
            CodecError::InvalidUtf8,
        ),
        (
            "search value not UTF-8",
            IdRequest,
            B::default().u8(1).b(&[0x80]).done(),
            CodecError::InvalidUtf8,
        ),
        (
            "role not UTF-8",
            UserEvent,
            user_event(BOB, 0).s("").u8(0).u8(1).b(&[0xff]).done(),
            CodecError::InvalidUtf8,
        ),
        (
            "role with uppercase",
            UserEvent,
            user_event(BOB, 0).s("").u8(0).u8(1).s("Owner").done(),
            CodecError::Malformed("invalid role name \"Owner\"".into()),
        ),
        (
            "empty role",
            RoomState,
            room_state_with(
                B::default().b(&B::default().s(ALICE).s("").u8(1).done()),
                policy(0, B::default().vl(0)),
            ),
            CodecError::Empty("role"),
        ),
        // Optional values.
        (
            "certificate presence byte 2",
            UserEvent,
            user_event(BOB, 0).s("").u8(2).done(),
            CodecError::Malformed(OPTION_2.into()),
        ),
        (
            "role presence byte 2",
            UserEvent,
            user_event(BOB, 0).s("").u8(0).u8(2).done(),
            CodecError::Malformed(OPTION_2.into()),
        ),
        // Empty where something is required.
        (
            "ds.proposal without proposals",
            Mimi,
            ds_event("ds.proposal", 1).vl(0).done(),
            CodecError::Empty("ds.proposal proposals"),
        ),
        // MLS framing (RFC 9420) of bare MLSMessages.
        (
            "bare MLSMessage truncated at the end of the event",
            Mimi,
            event("m.room.user").raw(&WELCOME[..7]).done(),
            CodecError::EndOfInput,
        ),
        (
            "MLSMessage in a vector runs past the vector's end",
            Mimi,
            ds_event("ds.proposal", 1)
                .vl(7)
                .raw(&WELCOME[..7])
                .u8(0)
                .done(),
            CodecError::MlsFraming {
                what: "MLSMessage",
                reason: "a message in a vector runs past the vector's end",
            },
        ),
        (
            "bytes after the last MLSMessage inside a vector",
            Mimi,
            ds_event("ds.commit", 2)
                .raw(&WELCOME)
                .raw(&WELCOME)
                .vl(WELCOME.len() + 1)
                .raw(&WELCOME)
                .u8(0)
                .u8(0)
                .done(),
            CodecError::MlsFraming {
                what: "MLSMessage",
                reason: "a message in a vector runs past the vector's end",
            },
        ),
        (
            "MLSMessage with unknown wire format 6",
            Mimi,
            event("m.room.user").u16(1).u16(6).done(),
            unknown("WireFormat", 6),
        ),
        (
            "MLSMessage with protocol version 2",
            Mimi,
            event("m.room.user").u16(2).u16(3).done(),
            CodecError::MlsFraming {
                what: "MLSMessage",
                reason: "protocol version is not mls10",
            },
        ),
        (
            "send_message with two application messages",
            Mimi,
            ds_event("ds.send_message", 3)
                .vl(2 * WELCOME.len())
                .raw(&WELCOME)
                .raw(&WELCOME)
                .u8(0)
                .done(),
            CodecError::Malformed("application_message<V> must hold exactly one MLSMessage".into()),
        ),
        (
            "send_message with no application message",
            Mimi,
            ds_event("ds.send_message", 3).vl(0).u8(0).done(),
            CodecError::Malformed("application_message<V> must hold exactly one MLSMessage".into()),
        ),
        // DSAuthData.
        (
            "DSAuthData ClientSignature",
            Mimi,
            ds_event("ds.fetch_group_info", 5)
                .u8(1)
                .raw(&[0, 0, 0, 1])
                .u8(2)
                .raw(&[0xaa, 0xbb])
                .done(),
            CodecError::Malformed(
                "DSAuthData ClientSignature is not accepted: requests are authenticated by \
                 MLS signatures and mutual TLS"
                    .into(),
            ),
        ),
        (
            "DSAuthType 2",
            Mimi,
            ds_event("ds.fetch_group_info", 5).u8(2).done(),
            unknown("DSAuthType", 2),
        ),
        (
            "DSRequestType 0 (ds_delete_group, not an operation here)",
            Mimi,
            ds_event("ds.commit", 0).done(),
            unknown("DSRequestType", 0),
        ),
    ]
}

#[test]
fn malformed_input_gives_the_catalogued_error() {
    let mut failures = Vec::new();
    for (name, target, bytes, expected) in catalogue() {
        let got = decode(target, &bytes);
        if got != Err(expected.clone()) {
            failures.push(format!("{name}: expected Err({expected:?}), got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn catalogue_names_are_unique() {
    let mut names: Vec<_> = catalogue().into_iter().map(|c| c.0).collect();
    let n = names.len();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), n);
}

/// The top-level vectors with the decoder each goes through.
fn wire_vectors() -> Vec<(&'static str, Target)> {
    use Target::*;
    vec![
        ("mimi_message_event_room_user.hex", Mimi),
        ("mimi_message_event_room_user_unsigned.hex", Mimi),
        ("mimi_message_event_room_info.hex", Mimi),
        ("mimi_message_event_ds_proposal.hex", Mimi),
        ("mimi_message_event_ds_commit.hex", Mimi),
        ("mimi_message_event_ds_fetch_key_packages.hex", Mimi),
        ("mimi_message_event_ds_fetch_group_info.hex", Mimi),
        ("mimi_message_event_ds_send_message.hex", Mimi),
        ("mimi_message_event_ds_create_group.hex", Mimi),
        ("mimi_message_response_ok.hex", Mimi),
        ("mimi_message_response_key_package.hex", Mimi),
        ("mimi_message_response_group_info.hex", Mimi),
        ("mimi_message_response_error.hex", Mimi),
        ("mimi_message_fanout.hex", Mimi),
        ("fanout_event.hex", Fanout),
        ("check_invite_request.hex", CheckInvite),
        ("identifier_request_handle.hex", IdRequest),
        ("identifier_request_oidc_std_claim.hex", IdRequest),
        ("identifier_request_vcard_field.hex", IdRequest),
        ("identifier_response_success.hex", IdResponse),
        ("identifier_response_not_found.hex", IdResponse),
        ("user_event_full.hex", UserEvent),
        ("user_event_minimal.hex", UserEvent),
        ("user_event_set_role.hex", UserEvent),
        ("room_state.hex", RoomState),
    ]
}

#[test]
fn every_truncation_of_every_vector_is_end_of_input() {
    for (name, target) in wire_vectors() {
        let bytes = read_vector(name);
        assert_eq!(decode(target, &bytes), Ok(()), "{name}");
        for cut in 0..bytes.len() {
            assert_eq!(
                decode(target, &bytes[..cut]),
                Err(CodecError::EndOfInput),
                "{name} cut to {cut} bytes"
            );
        }
    }
}

#[test]
fn any_byte_after_a_vector_is_trailing() {
    for (name, target) in wire_vectors() {
        for extra in [0x00, 0x01, 0xff] {
            let mut bytes = read_vector(name);
            bytes.push(extra);
            assert_eq!(
                decode(target, &bytes),
                Err(CodecError::TrailingBytes),
                "{name} + {extra:#04x}"
            );
        }
    }
}

fn event_from(event: Event) -> MimiMessage {
    MimiMessage::new(
        "!r1:a.example".parse().unwrap(),
        Sender::User("@alice:a.example".parse().unwrap()),
        MessageBody::Event(event),
    )
}

#[test]
fn encoding_refuses_what_decoding_refuses() {
    let empty = MimiMessage::new(
        "!r1:a.example".parse().unwrap(),
        Sender::User("@alice:a.example".parse().unwrap()),
        MessageBody::Event(Event::DsProposal(ProposalRequest {
            proposals: BoundedVec::default(),
        })),
    );
    assert_eq!(
        empty.encode(),
        Err(CodecError::Empty("ds.proposal proposals"))
    );
    assert_eq!(
        MlsBytes::new(vec![0; MAX_MLS_OBJECT_LEN + 1]),
        Err(too_long(MAX_MLS_OBJECT_LEN + 1, MAX_MLS_OBJECT_LEN))
    );
    assert_eq!(
        Text::<MAX_REASON_LEN>::new("x".repeat(MAX_REASON_LEN + 1)),
        Err(too_long(MAX_REASON_LEN + 1, MAX_REASON_LEN))
    );
    assert_eq!(
        BoundedVec::<u64, MAX_AUTH_EVENTS>::new(vec![0; MAX_AUTH_EVENTS + 1]),
        Err(too_long(MAX_AUTH_EVENTS + 1, MAX_AUTH_EVENTS))
    );
    assert_eq!(
        "x".repeat(MAX_ROLE_LEN + 1).parse::<Role>(),
        Err(too_long(MAX_ROLE_LEN + 1, MAX_ROLE_LEN))
    );
    // A message over MAX_MESSAGE_LEN: two MLS objects at their own limit.
    let big = FanoutEvent {
        sequence: 0,
        prev_hash: Opaque::default(),
        auth_events: BoundedVec::default(),
        event: Event::DsCommit(CommitRequest {
            commit: MlsBytes::new(vec![0; MAX_MLS_OBJECT_LEN]).unwrap(),
            group_info: MlsBytes::new(vec![0; MAX_MLS_OBJECT_LEN]).unwrap(),
            welcomes: BoundedVec::default(),
        }),
    };
    // sequence, prev_hash, auth_events, event type, DS header, two bare objects, an empty
    // welcome_messages<V>, DSAuthData.
    let len = 8 + 1 + 1 + 10 + 3 + 2 * MAX_MLS_OBJECT_LEN + 1 + 1;
    assert_eq!(big.encode(), Err(too_long(len, MAX_MESSAGE_LEN)));
    // Bytes that are not one MLSMessage are not written bare.
    let not_mls = event_from(Event::RoomUser(MlsBytes::new(vec![0x5a; 8]).unwrap()));
    assert_eq!(
        not_mls.encode(),
        Err(CodecError::MlsFraming {
            what: "MLSMessage",
            reason: "protocol version is not mls10",
        })
    );
    let mut two = WELCOME.to_vec();
    two.extend(WELCOME);
    let two = event_from(Event::RoomUser(MlsBytes::new(two).unwrap()));
    assert_eq!(
        two.encode(),
        Err(CodecError::MlsFraming {
            what: "MLSMessage",
            reason: "bytes after the end of the message",
        })
    );
    let tree = event_from(Event::DsCreateGroup(CreateGroupRequest {
        group_info: MlsBytes::new(WELCOME.to_vec()).unwrap(),
        ratchet_tree: MlsBytes::new(vec![3, 0, 0]).unwrap(),
    }));
    assert_eq!(
        tree.encode(),
        Err(CodecError::MlsFraming {
            what: "RatchetTree",
            reason: "length prefix does not cover exactly the tree",
        })
    );
    // An EventError detail is cut at a character boundary, not refused.
    let cut = EventError::new(ErrorCode::Internal, "\u{e9}".repeat(MAX_REASON_LEN));
    assert_eq!(cut.detail.as_str(), "\u{e9}".repeat(MAX_REASON_LEN / 2));
}
