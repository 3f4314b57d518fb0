//! # mimi-e2e: the client's side of MLS
//!
//! Owns everything a MIMI client does with MLS (openmls): key packages (including last
//! resort ones), credentials binding a client to its user, creating a room's group with
//! the RoomState group-context extension and the hub as external sender, commits carrying
//! `m.room.user` proposals, Welcomes, external joins, and application messages.
//!
//! Must not depend on: the delivery service, transport, signaling's hub-side logic or the
//! hub. It produces and consumes the opaque MLS bytes that `mimi-codec` frames.
