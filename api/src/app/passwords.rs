//! Password hashes: argon2id, computed off the async runtime and bounded,
//! so a burst of sign-ups or sign-ins cannot exhaust memory.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use super::StoreError;

fn internal(error: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(error.to_string())
}

/// argon2id with OWASP's recommended parameters (19 MiB, 2 passes, 1 lane).
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The code of a 503 because too many passwords wait to be checked.
pub const BUSY: &str = "busy";

/// The slots for argon2 computations. Each takes 19 MiB and tens of
/// milliseconds of a core; without a bound, a burst of sign-ups or of
/// sign-ins from many addresses would start one per request on the blocking
/// pool (up to 512 threads, ~10 GiB). Twice as many as there are cores run
/// at once; at most `queue` more wait for a slot, and beyond that a request
/// is answered 503 with `Retry-After` at once rather than waiting behind a
/// flood (so a flood of sign-ups cannot hold every sign-in for long).
pub struct PasswordHashing {
    permits: tokio::sync::Semaphore,
    waiting: std::sync::atomic::AtomicUsize,
    queue: usize,
}

impl PasswordHashing {
    pub fn new(queue: usize) -> Self {
        let cores = std::thread::available_parallelism().map_or(4, |n| n.get());
        Self {
            permits: tokio::sync::Semaphore::new(cores * 2),
            waiting: std::sync::atomic::AtomicUsize::new(0),
            queue,
        }
    }

    /// A slot, or [`StoreError::Busy`] when `queue` requests wait for one
    /// already.
    async fn permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>, StoreError> {
        use std::sync::atomic::Ordering;
        if let Ok(permit) = self.permits.try_acquire() {
            return Ok(permit);
        }
        /// Counts a waiter out even when its request is dropped (timed out).
        struct Waiting<'a>(&'a std::sync::atomic::AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let waiting = Waiting(&self.waiting);
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.queue {
            return Err(StoreError::Busy(
                "The server is busy checking passwords; try again shortly.".to_string(),
            ));
        }
        let permit = self.permits.acquire().await.map_err(internal);
        drop(waiting);
        permit
    }
}

/// Hashes a password off the async runtime (it takes tens of milliseconds).
pub async fn hash_password(
    hashing: &PasswordHashing,
    password: String,
) -> Result<String, StoreError> {
    let _permit = hashing.permit().await?;
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
    })
    .await
    .map_err(internal)?
    .map_err(internal)
}

/// Checks a password against a stored hash, off the async runtime. With no
/// hash (unknown user) a dummy hash is checked, so the answer takes as long.
pub async fn verify_password(
    hashing: &PasswordHashing,
    password: String,
    hash: Option<String>,
) -> Result<bool, StoreError> {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let _permit = hashing.permit().await?;
    tokio::task::spawn_blocking(move || {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| {
            DUMMY
                .get_or_init(|| {
                    let salt = SaltString::generate(&mut OsRng);
                    argon2()
                        .hash_password(b"not a password of anyone", &salt)
                        .map(|h| h.to_string())
                        .unwrap_or_default()
                })
                .clone()
        });
        let ok = PasswordHash::new(&hash)
            .map(|parsed| {
                argon2()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false);
        known && ok
    })
    .await
    .map_err(internal)
}
