//! The small context every part of the provider shares, and nothing else: this server's
//! name, its storage, its peers (the calls to other providers), its settings and its
//! metrics. A part
//! holds an `Arc<Context>` beside the state it owns; no part reaches into another part's
//! state through it.

use std::sync::Arc;
use std::time::Duration;

use mimi_codec::ServerName;
use mimi_transport::{Jitter, RandomJitter, RetryPolicy};

use crate::peers::Peers;
use crate::storage::{Storage, StorageError};

/// Default bound on one check-invite exchange with the invitee's server.
pub const DEFAULT_CHECK_INVITE_TIMEOUT: Duration = Duration::from_secs(3);
/// Default bound on the rooms the room engine keeps in memory.
pub const DEFAULT_ROOM_CACHE_MAX: usize = 262_144;
/// Default first retry delay of the outbox.
pub const DEFAULT_OUTBOX_RETRY_BASE: Duration = Duration::from_millis(200);
/// Default longest retry delay of the outbox.
pub const DEFAULT_OUTBOX_RETRY_CAP: Duration = Duration::from_secs(30);

/// What the parts' behaviour depends on beyond the protocol.
#[derive(Clone)]
pub struct Settings {
    /// Whether anyone may register a new user through the client API.
    pub open_registration: bool,
    /// How long the hub waits for the invitee's server to answer a check-invite (one
    /// attempt); no answer in time is a refusal.
    pub check_invite_timeout: Duration,
    /// The outbox's retry backoff (its `max_attempts` is not used: an entry is durable and
    /// retried until the peer answers it). The outbox's sends are attempted once by the
    /// transport, so this is the only retry loop of a delivery.
    pub outbox_retry: RetryPolicy,
    /// Draws the outbox's backoff delays within their ceiling.
    pub jitter: Arc<dyn Jitter>,
    /// Most rooms the room engine keeps in memory; when a room would exceed it, every idle
    /// room is dropped from memory (and reloaded from storage on its next use).
    pub room_cache_max: usize,
    /// The rate limits.
    pub rate_limits: crate::limits::RateLimits,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("open_registration", &self.open_registration)
            .field("check_invite_timeout", &self.check_invite_timeout)
            .field("outbox_retry", &self.outbox_retry)
            .field("room_cache_max", &self.room_cache_max)
            .field("rate_limits", &self.rate_limits)
            .finish_non_exhaustive()
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            open_registration: false,
            check_invite_timeout: DEFAULT_CHECK_INVITE_TIMEOUT,
            outbox_retry: RetryPolicy {
                max_attempts: u32::MAX,
                base: DEFAULT_OUTBOX_RETRY_BASE,
                cap: DEFAULT_OUTBOX_RETRY_CAP,
            },
            jitter: Arc::new(RandomJitter),
            room_cache_max: DEFAULT_ROOM_CACHE_MAX,
            rate_limits: crate::limits::RateLimits::default(),
        }
    }
}

/// What the parts share.
pub struct Context {
    /// This server's name.
    pub server_name: ServerName,
    /// Its storage.
    pub storage: Arc<dyn Storage>,
    /// Its calls to other providers.
    pub peers: Arc<dyn Peers>,
    /// Its settings.
    pub settings: Settings,
    /// What it measures (every part records its events here; `metrics.rs`).
    pub metrics: Arc<crate::metrics::Metrics>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("server_name", &self.server_name)
            .field("peers", &self.peers)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// Run a storage read: in place where the storage's reads are quick
    /// ([`Storage::quick_reads`]), off the async runtime otherwise.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Storage) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        crate::storage::read(&self.storage, f).await
    }

    /// Run a storage call off the async runtime.
    pub async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Storage) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        crate::storage::blocking(&self.storage, f).await
    }
}
