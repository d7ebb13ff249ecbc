//! Authentication and authorisation: argon2id password hashes, short-lived
//! HS256 JWT bearer tokens, and role checks.

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use domain::metadata::{Actor, Role};
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::ApiError;
use crate::startup::AppState;

/// What a token says about its bearer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    pub role: Role,
    pub iat: i64,
    pub exp: i64,
}

/// Signs and checks tokens. Only HS256 is accepted: a token naming any other
/// algorithm (including `none`) is refused.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl TokenKeys {
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        let mut validation = Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.algorithms = vec![jsonwebtoken::Algorithm::HS256];
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl,
        }
    }

    /// A token for `user`, and when it expires.
    pub fn issue(&self, user: Uuid, role: Role) -> Result<(String, DateTime<Utc>), ApiError> {
        self.issue_with_ttl(user, role, self.ttl)
    }

    /// A token for `user` that lives `ttl` from now instead of the configured
    /// lifetime (a negative `ttl` makes an expired one, which tests need).
    pub fn issue_with_ttl(
        &self,
        user: Uuid,
        role: Role,
        ttl: Duration,
    ) -> Result<(String, DateTime<Utc>), ApiError> {
        let now = Utc::now();
        let expires_at = now + ttl;
        let claims = Claims {
            sub: user,
            role,
            iat: now.timestamp(),
            exp: expires_at.timestamp(),
        };
        let token = jsonwebtoken::encode(
            &Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &self.encoding,
        )
        .map_err(ApiError::internal)?;
        Ok((token, expires_at))
    }

    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                match e.kind() {
                    ErrorKind::ExpiredSignature => {
                        unauthorized("The token has expired; sign in again.")
                    }
                    _ => unauthorized("The token is not valid."),
                }
            })
    }
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
}

/// The signed-in caller. Extracting it answers 401 when there is no valid
/// bearer token.
#[derive(Debug, Clone, Copy)]
pub struct AuthUser {
    pub id: Uuid,
    pub role: Role,
}

impl AuthUser {
    /// 403 unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "Your role may not do this.",
            ))
        }
    }

    pub fn actor(&self) -> Actor {
        Actor::User {
            id: self.id,
            role: self.role,
        }
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| unauthorized("Sign in and send `Authorization: Bearer <token>`."))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| unauthorized("The Authorization header must be `Bearer <token>`."))?;
        let claims = state.tokens.verify(token)?;
        Ok(AuthUser {
            id: claims.sub,
            role: claims.role,
        })
    }
}

/// The caller, who must be an admin: checked before the body is read, so a
/// customer gets 403 whatever they sent.
#[derive(Debug, Clone, Copy)]
pub struct Admin(pub AuthUser);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let user =
            <AuthUser as FromRequestParts<AppState>>::from_request_parts(parts, state).await?;
        user.require(&[Role::Admin])?;
        Ok(Admin(user))
    }
}

/// An optional caller: no `Authorization` header is `None`; a header with a
/// bad token is still 401.
impl axum::extract::OptionalFromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, ApiError> {
        if parts
            .headers
            .contains_key(axum::http::header::AUTHORIZATION)
        {
            <AuthUser as FromRequestParts<AppState>>::from_request_parts(parts, state)
                .await
                .map(Some)
        } else {
            Ok(None)
        }
    }
}

/// argon2id with OWASP's recommended parameters (19 MiB, 2 passes, 1 lane).
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

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

    /// A slot, or 503 when `queue` requests wait for one already.
    async fn permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>, ApiError> {
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
            return Err(busy());
        }
        let permit = self.permits.acquire().await.map_err(ApiError::internal);
        drop(waiting);
        permit
    }
}

/// 503: too many passwords to check at this moment.
pub fn busy() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "busy",
        "The server is busy checking passwords; try again shortly.",
    )
}

/// Hashes a password off the async runtime (it takes tens of milliseconds).
pub async fn hash_password(
    hashing: &PasswordHashing,
    password: String,
) -> Result<String, ApiError> {
    let _permit = hashing.permit().await?;
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)
}

/// Checks a password against a stored hash, off the async runtime. With no
/// hash (unknown user) a dummy hash is checked, so the answer takes as long.
pub async fn verify_password(
    hashing: &PasswordHashing,
    password: String,
    hash: Option<String>,
) -> Result<bool, ApiError> {
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
    .map_err(ApiError::internal)
}

/// Shared handle to the token keys.
pub type Tokens = Arc<TokenKeys>;
