//! # mimi-signaling (being written)
