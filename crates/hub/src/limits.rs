//! Rate limits: a token bucket per key (a client, a user, a peer server, a source address,
//! the provider as a whole), on tokio's clock (so tests run them on paused time). Each kind of request has
//! its own [`Rate`] in [`RateLimits`] (`[rate_limits]` in provider.toml; defaults below);
//! a refused request is told when a token is back.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use mimi_codec::{ClientId, ServerName, UserId};
use serde::Deserialize;
use tokio::time::Instant;

/// Most keys a [`Buckets`] tracks; beyond it, the buckets that have refilled (they would
/// start full again anyway) are dropped.
pub const MAX_TRACKED_KEYS: usize = 65_536;

/// A token bucket's shape: up to `burst` requests at once, then one more every `refill_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    /// Requests allowed at once.
    pub burst: u32,
    /// Milliseconds until one more is allowed.
    pub refill_ms: u64,
}

impl Rate {
    const fn new(burst: u32, refill: Duration) -> Rate {
        Rate {
            burst,
            refill_ms: refill.as_millis() as u64,
        }
    }

    fn refill(&self) -> Duration {
        Duration::from_millis(self.refill_ms.max(1))
    }
}

/// Default: key-package claims per client (client API): 10 at once, one more every 6 s.
pub const DEFAULT_CLAIMS_PER_CLIENT: Rate = Rate::new(10, Duration::from_secs(6));
/// Default: `ds.fetch_key_packages` per peer server: 100 at once, one more every 100 ms.
pub const DEFAULT_CLAIMS_PER_PEER: Rate = Rate::new(100, Duration::from_millis(100));
/// Default: registrations of the provider as a whole: 20 at once, one more every 3 s.
pub const DEFAULT_REGISTRATIONS: Rate = Rate::new(20, Duration::from_secs(3));
/// Default: failed token checks per claimed client (the token's client part): 10 at once,
/// one more every 6 s. While exhausted, the token is not even checked.
pub const DEFAULT_FAILED_AUTH: Rate = Rate::new(10, Duration::from_secs(6));
/// Default: registrations per source address (client API): 10 at once, one more every
/// 30 s, so that one address cannot take the whole provider's registrations.
pub const DEFAULT_REGISTRATIONS_PER_SOURCE: Rate = Rate::new(10, Duration::from_secs(30));
/// Default: failed token checks per source address (client API), whatever client the
/// tokens name: 30 at once, one more every 2 s. While exhausted, tokens from the address
/// are not even checked.
pub const DEFAULT_FAILED_AUTH_PER_SOURCE: Rate = Rate::new(30, Duration::from_secs(2));
/// Default: identifier discoveries per user: 30 at once, one more every 2 s.
pub const DEFAULT_DISCOVERIES_PER_USER: Rate = Rate::new(30, Duration::from_secs(2));
/// How often a source whose token checks fail is logged, at most.
pub const FAILED_AUTH_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// Every rate limit of a provider (`[rate_limits]` in provider.toml).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimits {
    /// Key-package claims per client.
    pub claims_per_client: Rate,
    /// `ds.fetch_key_packages` per peer server.
    pub claims_per_peer: Rate,
    /// Registrations, for the provider as a whole.
    pub registrations: Rate,
    /// Registrations per source address.
    pub registrations_per_source: Rate,
    /// Failed token checks per claimed client.
    pub failed_auth: Rate,
    /// Failed token checks per source address.
    pub failed_auth_per_source: Rate,
    /// Identifier discoveries per user.
    pub discoveries_per_user: Rate,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            claims_per_client: DEFAULT_CLAIMS_PER_CLIENT,
            claims_per_peer: DEFAULT_CLAIMS_PER_PEER,
            registrations: DEFAULT_REGISTRATIONS,
            registrations_per_source: DEFAULT_REGISTRATIONS_PER_SOURCE,
            failed_auth: DEFAULT_FAILED_AUTH,
            failed_auth_per_source: DEFAULT_FAILED_AUTH_PER_SOURCE,
            discoveries_per_user: DEFAULT_DISCOVERIES_PER_USER,
        }
    }
}

/// A refused request: a token is back after `retry_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    /// When to retry.
    pub retry_after: Duration,
}

/// Token buckets of one [`Rate`], one per key.
#[derive(Debug)]
pub struct Buckets<K> {
    rate: Rate,
    buckets: Mutex<HashMap<K, (f64, Instant)>>,
}

impl<K: Eq + Hash + Clone> Buckets<K> {
    /// Buckets of `rate`.
    pub fn new(rate: Rate) -> Self {
        Buckets {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Take a token of `key`'s bucket, or say when one is back.
    pub fn take(&self, key: &K) -> Result<(), Limited> {
        let now = Instant::now();
        let burst = f64::from(self.rate.burst.max(1));
        let refill = self.rate.refill().as_secs_f64();
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= MAX_TRACKED_KEYS && !buckets.contains_key(key) {
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() / refill < burst
            });
        }
        let (tokens, at) = buckets.entry(key.clone()).or_insert((burst, now));
        let available = (*tokens + now.duration_since(*at).as_secs_f64() / refill).min(burst);
        *at = now;
        if available >= 1.0 {
            *tokens = available - 1.0;
            Ok(())
        } else {
            *tokens = available;
            Err(Limited {
                retry_after: Duration::from_secs_f64((1.0 - available) * refill),
            })
        }
    }
}

impl<K: Eq + Hash + Clone> Buckets<K> {
    /// Whether `key`'s bucket has a token now (`Err`: when one is back), without taking it.
    pub fn peek(&self, key: &K) -> Result<(), Limited> {
        let now = Instant::now();
        let burst = f64::from(self.rate.burst.max(1));
        let refill = self.rate.refill().as_secs_f64();
        let buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some((tokens, at)) = buckets.get(key) else {
            return Ok(());
        };
        let available = (*tokens + now.duration_since(*at).as_secs_f64() / refill).min(burst);
        if available >= 1.0 {
            Ok(())
        } else {
            Err(Limited {
                retry_after: Duration::from_secs_f64((1.0 - available) * refill),
            })
        }
    }
}

/// The provider's buckets.
#[derive(Debug)]
pub struct Limiter {
    /// Key-package claims per client.
    pub claims_per_client: Buckets<ClientId>,
    /// `ds.fetch_key_packages` per peer server.
    pub claims_per_peer: Buckets<ServerName>,
    /// Registrations (one key: the provider).
    pub registrations: Buckets<()>,
    /// Registrations per source address.
    pub registrations_per_source: Buckets<IpAddr>,
    /// Failed token checks per claimed client (the token's part before its `.`).
    pub failed_auth: Buckets<String>,
    /// Failed token checks per source address.
    pub failed_auth_per_source: Buckets<IpAddr>,
    /// When each failing source was last logged.
    pub failed_auth_log: Buckets<String>,
    /// Identifier discoveries per user.
    pub discoveries_per_user: Buckets<UserId>,
}

impl Limiter {
    /// Buckets of `limits`.
    pub fn new(limits: &RateLimits) -> Self {
        Limiter {
            claims_per_client: Buckets::new(limits.claims_per_client),
            claims_per_peer: Buckets::new(limits.claims_per_peer),
            registrations: Buckets::new(limits.registrations),
            registrations_per_source: Buckets::new(limits.registrations_per_source),
            failed_auth: Buckets::new(limits.failed_auth),
            failed_auth_per_source: Buckets::new(limits.failed_auth_per_source),
            failed_auth_log: Buckets::new(Rate::new(1, FAILED_AUTH_LOG_INTERVAL)),
            discoveries_per_user: Buckets::new(limits.discoveries_per_user),
        }
    }

    /// Whether a source address over its failed-token-check limit: `Err` (when to retry)
    /// while it is, without using a token (a request of it is not even checked).
    pub fn source_locked_out(&self, source: IpAddr) -> Result<(), Limited> {
        self.failed_auth_per_source.peek(&source)
    }

    /// Whether a failed token check of `source` may be logged now (one line per source per
    /// [`FAILED_AUTH_LOG_INTERVAL`]).
    pub fn log_failed_auth(&self, source: &str) -> bool {
        self.failed_auth_log.take(&source.to_owned()).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_bucket_allows_its_burst_then_one_per_refill() {
        let b = Buckets::new(Rate::new(3, Duration::from_secs(2)));
        for _ in 0..3 {
            assert!(b.take(&"a").is_ok());
        }
        let refused = b.take(&"a").unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_secs(2));
        assert!(b.take(&"b").is_ok(), "another key has its own bucket");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(
            b.take(&"a").unwrap_err().retry_after,
            Duration::from_secs(1)
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(b.take(&"a").is_ok());
        assert!(b.take(&"a").is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn peeking_takes_no_token() {
        let b = Buckets::new(Rate::new(1, Duration::from_secs(4)));
        assert!(b.peek(&"a").is_ok(), "an unknown key has a full bucket");
        assert!(b.peek(&"a").is_ok());
        assert!(b.take(&"a").is_ok(), "peeking left the token");
        assert_eq!(
            b.peek(&"a").unwrap_err().retry_after,
            Duration::from_secs(4)
        );
        tokio::time::advance(Duration::from_secs(4)).await;
        assert!(b.peek(&"a").is_ok());
    }
}
