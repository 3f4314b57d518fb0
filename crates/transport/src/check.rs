//! Pure checks the hub runs on what the transport hands it: is the sender's server the
//! authenticated TLS peer, and may this peer send to us for this room.

use mimi_codec::{ErrorCode, EventError, MimiMessage, ServerName};

/// Rule TR-SENDER-1: the sender's server must be the mutually authenticated TLS peer,
/// unless the peer is the room's hub (`room_hub`), which relays the events of every
/// participating server when it fans them out.
///
/// On refusal the error has [`ErrorCode::SenderMismatch`] (answered with `400`).
pub fn check_sender(
    peer: &ServerName,
    message: &MimiMessage,
    room_hub: &ServerName,
) -> Result<(), EventError> {
    let origin = message.sender.server();
    if &origin == peer || peer == room_hub {
        return Ok(());
    }
    Err(EventError::new(
        ErrorCode::SenderMismatch,
        format!("sender {} is not on the TLS peer {peer}", message.sender),
    ))
}

/// Rule TR-ROUTE-1: "Follower servers receiving an event from another follower server MUST
/// reject the request with a 400". When this server (`own`) is not the room's hub, only the
/// hub may send to it.
///
/// On refusal the error has [`ErrorCode::NotHub`] (answered with `400`).
pub fn check_follower_source(
    own: &ServerName,
    room_hub: &ServerName,
    peer: &ServerName,
) -> Result<(), EventError> {
    if own == room_hub || peer == room_hub {
        return Ok(());
    }
    Err(EventError::new(
        ErrorCode::NotHub,
        format!("{own} is a follower in this room; {peer} is not its hub {room_hub}"),
    ))
}

#[cfg(test)]
mod tests {
    use mimi_codec::{EventResponse, MessageBody, RoomId, Sender};

    use super::*;

    fn name(s: &str) -> ServerName {
        s.parse().unwrap()
    }

    fn message_from(sender: &str) -> MimiMessage {
        MimiMessage::new(
            RoomId::new("room", &name("hub.example")).unwrap(),
            sender.parse::<Sender>().unwrap(),
            MessageBody::Response(EventResponse::Ok),
        )
    }

    #[test]
    fn sender_on_the_peer_is_accepted() {
        let hub = name("hub.example");
        assert_eq!(
            check_sender(&name("b.example"), &message_from("@bob:b.example"), &hub),
            Ok(())
        );
        assert_eq!(
            check_sender(&name("b.example"), &message_from("b.example"), &hub),
            Ok(())
        );
    }

    #[test]
    fn sender_on_another_server_is_refused() {
        let hub = name("hub.example");
        let err =
            check_sender(&name("b.example"), &message_from("@carol:c.example"), &hub).unwrap_err();
        assert_eq!(err.code, ErrorCode::SenderMismatch);
    }

    #[test]
    fn the_hub_may_relay_any_sender() {
        let hub = name("hub.example");
        assert_eq!(
            check_sender(&hub, &message_from("@carol:c.example"), &hub),
            Ok(())
        );
    }

    #[test]
    fn follower_accepts_only_the_hub() {
        let hub = name("hub.example");
        let own = name("b.example");
        assert_eq!(check_follower_source(&own, &hub, &hub), Ok(()));
        let err = check_follower_source(&own, &hub, &name("c.example")).unwrap_err();
        assert_eq!(err.code, ErrorCode::NotHub);
        // The hub itself accepts from anyone (other rules apply there).
        assert_eq!(
            check_follower_source(&hub, &hub, &name("c.example")),
            Ok(())
        );
    }
}
