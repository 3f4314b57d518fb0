//! What a provider checks before it serves: that its state is whole. The hub key (the
//! rooms' external sender) and the database belong together; one without the other is a
//! lost or misplaced file, and starting anyway would make a new, empty provider with an
//! old key (every token stops working, every room and its history are gone) or rooms whose
//! hub signs with a key their groups do not know. Both absent is a new provider.
//! `docs/spec-decisions.md` ("Starting on missing state") records the choice.

use std::path::{Path, PathBuf};

/// What exists of a provider's state before it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The hub key file.
    pub hub_key: PathBuf,
    /// Whether it exists.
    pub hub_key_exists: bool,
    /// The database, for people: the redb file, or "the PostgreSQL database".
    pub database: String,
    /// Whether it held a provider already (a non-empty redb file; a PostgreSQL database
    /// that had the schema).
    pub database_exists: bool,
}

/// How the provider starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Neither hub key nor database exists: a new provider is created.
    New,
    /// Both exist: the provider goes on.
    Existing,
}

/// Why a provider refuses to start on its state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// The hub key exists but the database is missing or empty.
    #[error(
        "the hub key {key} exists but {database} is missing or empty: restore the database, or remove the hub key to create a new provider on purpose"
    )]
    DatabaseMissing {
        /// The hub key.
        key: String,
        /// The database.
        database: String,
    },
    /// The database holds a provider but the hub key is missing.
    #[error(
        "{database} holds a provider but the hub key {key} is missing: restore the hub key (a new one would not be its rooms' external sender)"
    )]
    HubKeyMissing {
        /// The hub key.
        key: String,
        /// The database.
        database: String,
    },
}

/// Rule HUB-START-1 (docs/protocol-coverage.md): whether a provider may start on what
/// exists of its state.
pub fn check_state(found: &Found) -> Result<Start, StateError> {
    let key = found.hub_key.display().to_string();
    match (found.hub_key_exists, found.database_exists) {
        (true, true) => Ok(Start::Existing),
        (false, false) => Ok(Start::New),
        (true, false) => Err(StateError::DatabaseMissing {
            key,
            database: found.database.clone(),
        }),
        (false, true) => Err(StateError::HubKeyMissing {
            key,
            database: found.database.clone(),
        }),
    }
}

/// Whether a redb file holds a provider: it exists and is not empty. Asked before the file
/// is opened (opening creates it).
pub fn redb_file_exists(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.len() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(hub_key_exists: bool, database_exists: bool) -> Found {
        Found {
            hub_key: PathBuf::from("a.hub-key"),
            hub_key_exists,
            database: "a.redb".into(),
            database_exists,
        }
    }

    #[test]
    fn key_and_database_go_together() {
        assert_eq!(check_state(&found(true, true)), Ok(Start::Existing));
        assert_eq!(check_state(&found(false, false)), Ok(Start::New));
        let missing = check_state(&found(true, false)).unwrap_err();
        assert!(matches!(missing, StateError::DatabaseMissing { .. }));
        assert!(!missing.to_string().contains('\n'));
        assert!(matches!(
            check_state(&found(false, true)),
            Err(StateError::HubKeyMissing { .. })
        ));
    }
}
