//! # mimi-content: the MIMI content format
//!
//! Owns what an end-to-end encrypted MIMI application message contains
//! (draft-ietf-mimi-content): the CBOR content container, message IDs, builders and a
//! reader for what users do (text, replies, edits, reactions, attachments, ...), and
//! delivery and read reports.
//!
//! Must not depend on: any other crate of the workspace, MLS, the network or storage.
