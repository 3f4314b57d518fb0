//! Capped exponential backoff with full jitter, as pure functions.
//!
//! The delay before retry `n` (0 for the first retry) is drawn uniformly from
//! `[0, min(cap, base * 2^n)]` ("full jitter"). The ceiling is computed by
//! [`backoff_ceiling`]; the draw is behind the [`Jitter`] trait so tests can fix it.

use std::time::Duration;

/// Default number of attempts of one operation (the first try plus retries).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 6;
/// Default base delay of the backoff.
pub const DEFAULT_BACKOFF_BASE: Duration = Duration::from_millis(200);
/// Default cap of the backoff delay.
pub const DEFAULT_BACKOFF_CAP: Duration = Duration::from_secs(10);

/// When and how often to retry an operation that failed with a network error or timeout.
///
/// Rule TR-RETRY-1 (docs/protocol-coverage.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included; at least 1 is always made.
    pub max_attempts: u32,
    /// Ceiling of the first retry's delay.
    pub base: Duration,
    /// Largest delay ever waited.
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            base: DEFAULT_BACKOFF_BASE,
            cap: DEFAULT_BACKOFF_CAP,
        }
    }
}

impl RetryPolicy {
    /// The delay before retry `retry` (0-based), drawn by `jitter`.
    pub fn delay(&self, retry: u32, jitter: &dyn Jitter) -> Duration {
        let ceiling = backoff_ceiling(self.base, self.cap, retry);
        jitter.pick(ceiling).min(ceiling)
    }
}

/// `min(cap, base * 2^retry)`, without overflow for any `retry`.
pub fn backoff_ceiling(base: Duration, cap: Duration, retry: u32) -> Duration {
    let factor = 1u32.checked_shl(retry).unwrap_or(0);
    if factor == 0 {
        return cap;
    }
    base.checked_mul(factor).map_or(cap, |d| d.min(cap))
}

/// Draws a delay in `[0, ceiling]`.
pub trait Jitter: Send + Sync {
    /// A delay in `[0, ceiling]`.
    fn pick(&self, ceiling: Duration) -> Duration;
}

/// Full jitter from the thread-local RNG of `rand`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomJitter;

impl Jitter for RandomJitter {
    fn pick(&self, ceiling: Duration) -> Duration {
        use rand::Rng;
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rand::thread_rng().gen_range(0..=nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn ceiling_doubles_from_base_until_the_cap() {
        let base = 100 * MS;
        let cap = 1000 * MS;
        let got: Vec<Duration> = (0..7).map(|n| backoff_ceiling(base, cap, n)).collect();
        assert_eq!(
            got,
            vec![
                100 * MS,
                200 * MS,
                400 * MS,
                800 * MS,
                1000 * MS,
                1000 * MS,
                1000 * MS
            ]
        );
    }

    #[test]
    fn ceiling_never_overflows() {
        let cap = Duration::from_secs(30);
        assert_eq!(backoff_ceiling(Duration::from_secs(1), cap, 31), cap);
        assert_eq!(backoff_ceiling(Duration::from_secs(1), cap, 32), cap);
        assert_eq!(backoff_ceiling(Duration::from_secs(1), cap, u32::MAX), cap);
        assert_eq!(backoff_ceiling(Duration::MAX, cap, 1), cap);
    }

    struct Fixed(Duration);
    impl Jitter for Fixed {
        fn pick(&self, _ceiling: Duration) -> Duration {
            self.0
        }
    }

    #[test]
    fn delay_is_clamped_to_the_ceiling() {
        let policy = RetryPolicy {
            max_attempts: 3,
            base: 10 * MS,
            cap: 50 * MS,
        };
        assert_eq!(policy.delay(0, &Fixed(Duration::from_secs(9))), 10 * MS);
        assert_eq!(policy.delay(2, &Fixed(Duration::from_secs(9))), 40 * MS);
        assert_eq!(policy.delay(5, &Fixed(Duration::from_secs(9))), 50 * MS);
        assert_eq!(policy.delay(5, &Fixed(3 * MS)), 3 * MS);
    }

    #[test]
    fn random_jitter_stays_within_bounds() {
        let ceiling = 7 * MS;
        for _ in 0..1000 {
            assert!(RandomJitter.pick(ceiling) <= ceiling);
        }
        assert_eq!(RandomJitter.pick(Duration::ZERO), Duration::ZERO);
    }
}
