//! Rate limits keyed by who asks (an address, a username, a customer): one
//! small wrapper over governor used by every limited handler.

use std::hash::Hash;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

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

/// Bounds at the edge of the HTTP server (see `config::LimitSettings`).
#[derive(Debug, Clone)]
pub struct EdgeLimits {
    /// Longest a request may take (beyond: 408).
    pub request_timeout: Duration,
    /// Requests served at once (beyond: 503 with `Retry-After`).
    pub max_concurrent_requests: usize,
    /// How long a connection may take to send a request's headers.
    pub header_read_timeout: Duration,
    /// Password checks that may wait for a hashing slot (beyond: 503).
    pub password_hash_queue: usize,
    /// Sign-ups per client address in a burst, then one a minute.
    pub register_attempts_per_minute: u32,
    /// Coupons a customer may try to apply in a burst, then one a minute.
    pub coupon_attempts_per_minute: u32,
    /// Card tokenizations and top-ups per customer in a burst, then one a
    /// minute.
    pub payment_attempts_per_minute: u32,
    /// Orders per customer in a burst, then one a minute.
    pub orders_per_minute: u32,
}

/// The per-customer limits of the business flows that could be abused:
/// guessing coupon codes, testing cards, placing orders in bulk.
pub struct CustomerLimits {
    pub coupons: Limiter<uuid::Uuid>,
    pub payments: Limiter<uuid::Uuid>,
    pub orders: Limiter<uuid::Uuid>,
}

impl CustomerLimits {
    pub fn new(limits: &EdgeLimits) -> Self {
        Self {
            coupons: Limiter::per_minute(limits.coupon_attempts_per_minute),
            payments: Limiter::per_minute(limits.payment_attempts_per_minute),
            orders: Limiter::per_minute(limits.orders_per_minute),
        }
    }
}
