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
    /// The account's token version when the token was issued; the token is
    /// refused once the account's version has moved on (a role change, a
    /// password change, `shop users revoke`).
    #[serde(default)]
    pub ver: u32,
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

    /// A token for `user` at token version 0 (an account whose tokens were
    /// never revoked and whose role and password never changed), and when
    /// it expires.
    pub fn issue(&self, user: Uuid, role: Role) -> Result<(String, DateTime<Utc>), ApiError> {
        self.issue_versioned(user, role, 0)
    }

    /// A token for `user` whose account is at `token_version`, and when it
    /// expires.
    pub fn issue_versioned(
        &self,
        user: Uuid,
        role: Role,
        token_version: u32,
    ) -> Result<(String, DateTime<Utc>), ApiError> {
        self.issue_full(user, role, token_version, self.ttl)
    }

    /// A token for `user` that lives `ttl` from now instead of the configured
    /// lifetime (a negative `ttl` makes an expired one, which tests need).
    pub fn issue_with_ttl(
        &self,
        user: Uuid,
        role: Role,
        ttl: Duration,
    ) -> Result<(String, DateTime<Utc>), ApiError> {
        self.issue_full(user, role, 0, ttl)
    }

    fn issue_full(
        &self,
        user: Uuid,
        role: Role,
        token_version: u32,
        ttl: Duration,
    ) -> Result<(String, DateTime<Utc>), ApiError> {
        let now = Utc::now();
        let expires_at = now + ttl;
        let claims = Claims {
            sub: user,
            role,
            iat: now.timestamp(),
            exp: expires_at.timestamp(),
            ver: token_version,
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
/// bearer token, or when the token's account no longer has the token's role
/// and token version (see `crate::app::token_standing`).
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
        let standing = crate::app::token_standing::standing(state, claims.sub).await?;
        if !standing.is_some_and(|s| s.role == claims.role && s.token_version == claims.ver) {
            return Err(unauthorized(
                "The token is no longer valid (its account changed or its tokens were revoked); sign in again.",
            ));
        }
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

/// How many argon2 computations may run at once. Each takes 19 MiB and tens
/// of milliseconds of a core; without a bound, a burst of sign-ups (which are
/// not rate limited) or of sign-ins from many addresses would start one per
/// request on the blocking pool (up to 512 threads, ~10 GiB). Beyond the
/// bound, requests queue.
fn hashing_permits() -> &'static tokio::sync::Semaphore {
    static PERMITS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    PERMITS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(4, |n| n.get());
        tokio::sync::Semaphore::new(cores * 2)
    })
}

/// Hashes a password off the async runtime (it takes tens of milliseconds).
pub async fn hash_password(password: String) -> Result<String, ApiError> {
    let _permit = hashing_permits()
        .acquire()
        .await
        .map_err(ApiError::internal)?;
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
pub async fn verify_password(password: String, hash: Option<String>) -> Result<bool, ApiError> {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let _permit = hashing_permits()
        .acquire()
        .await
        .map_err(ApiError::internal)?;
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
