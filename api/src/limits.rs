//! Rate limits keyed by who asks (an address, a username, a customer): one
//! small wrapper over governor used by every limited handler.

use std::hash::Hash;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::ApiError;

/// Allows each key a burst of `per_minute` requests, then one a minute: at
/// most `per_minute + 1` in any minute (`Quota::per_minute` would refill one
/// every 60/n seconds and let twice as many through).
pub struct Limiter<K: Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    pub fn per_minute(per_minute: u32) -> Self {
        let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: RateLimiter::keyed(
                Quota::with_period(Duration::from_secs(60))
                    .unwrap_or_else(|| Quota::per_minute(per_minute))
                    .allow_burst(per_minute),
            ),
        }
    }

    /// Counts one request of `key`: `Err` with how long to wait when it is
    /// over the limit.
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        // Forget keys whose allowance has all been refilled.
        if self.limiter.len() > 10_000 {
            self.limiter.retain_recent();
        }
        self.limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// [`Limiter::check`] as the answer: 429 with `code`, `message` and
    /// `Retry-After`.
    pub fn check_or_429(&self, key: &K, code: &str, message: &str) -> Result<(), ApiError> {
        self.check(key)
            .map_err(|wait| ApiError::too_many(code, message, wait))
    }
}

/// Counts failures per key (wrong passwords for a username): a burst of
/// `per_minute`, then one a minute. A key past its allowance is locked until
/// the next failure would be allowed, and every attempt meanwhile is refused
/// before it is tried, right or wrong: while locked, a right password must
/// not answer differently from a wrong one.
pub struct FailureLimiter<K: Hash + Eq + Clone> {
    failures: Limiter<K>,
    locked: std::sync::Mutex<std::collections::HashMap<K, std::time::Instant>>,
}

impl<K: Hash + Eq + Clone> FailureLimiter<K> {
    pub fn per_minute(per_minute: u32) -> Self {
        Self {
            failures: Limiter::per_minute(per_minute),
            locked: Default::default(),
        }
    }

    /// `Err` with how long to wait while `key` is locked.
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        let mut locked = self
            .locked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = std::time::Instant::now();
        match locked.get(key) {
            Some(until) if *until > now => Err(*until - now),
            Some(_) => {
                locked.remove(key);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Counts a failure of `key`; past the allowance, locks it.
    pub fn failed(&self, key: &K) {
        if let Err(wait) = self.failures.check(key) {
            let mut locked = self
                .locked
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let now = std::time::Instant::now();
            if locked.len() > 10_000 {
                locked.retain(|_, until| *until > now);
            }
            locked.insert(key.clone(), now + wait);
        }
    }
}
