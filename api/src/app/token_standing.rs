//! Whether a token is still honoured: the account's current role and token
//! version, read from its aggregate and remembered for a few seconds.
//!
//! A token names the role and token version its account had when it was
//! issued. A role change, a password change and `shop users revoke` raise
//! the account's token version, so every token issued before stops working
//! once the servers' memory of the account has expired (at most the
//! configured cache time, `SHOP_TOKEN_CHECK_CACHE_SECONDS`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use domain::customer::Customer;
use domain::metadata::Role;
use uuid::Uuid;

use super::{load_error, StoreError};
use projections::event_store::CommandBus;

/// What a token must agree with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub role: Role,
    pub token_version: u32,
}

/// Accounts remembered at most this many at once; beyond, the expired ones
/// are forgotten, and all of them if that is not enough.
const MOST_REMEMBERED: usize = 50_000;

/// The standings read lately, each for `ttl` (zero: none are remembered).
#[derive(Debug)]
pub struct StandingCache {
    ttl: Duration,
    entries: Mutex<HashMap<Uuid, (Instant, Option<Standing>)>>,
}

impl StandingCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// How long a standing is remembered.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The remembered standing of `id` (`Some(None)`: no such account), if
    /// it is recent enough.
    fn recall(&self, id: Uuid) -> Option<Option<Standing>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(&id)
            .filter(|(read, _)| read.elapsed() < self.ttl)
            .map(|(_, standing)| *standing)
    }

    /// Reads the account `id` afresh next time.
    pub fn forget(&self, id: Uuid) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.remove(&id);
    }

    fn remember(&self, id: Uuid, standing: Option<Standing>) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MOST_REMEMBERED {
            entries.retain(|_, (read, _)| read.elapsed() < self.ttl);
            if entries.len() >= MOST_REMEMBERED {
                entries.clear();
            }
        }
        entries.insert(id, (Instant::now(), standing));
    }
}

/// The account `id`'s current role and token version; `None` when there is
/// no such account.
pub async fn standing(
    cache: &StandingCache,
    customers: &CommandBus<Customer>,
    id: Uuid,
) -> Result<Option<Standing>, StoreError> {
    if let Some(standing) = cache.recall(id) {
        return Ok(standing);
    }
    let customer = customers.load(&id.to_string()).await.map_err(load_error)?;
    let standing = customer.filter(Customer::is_registered).and_then(|c| {
        Some(Standing {
            role: c.role()?,
            token_version: c.token_version()?,
        })
    });
    cache.remember(id, standing);
    Ok(standing)
}
