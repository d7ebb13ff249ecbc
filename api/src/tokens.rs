//! Sign-in tokens: short-lived HS256 JWTs naming their bearer and role.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use domain::metadata::Role;
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Why a token was not accepted, or could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("The token has expired; sign in again.")]
    Expired,
    #[error("The token is not valid.")]
    Invalid,
    /// Signing failed (a bug, not the caller's doing).
    #[error("cannot sign a token: {0}")]
    Signing(String),
}

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
    pub fn issue(&self, user: Uuid, role: Role) -> Result<(String, DateTime<Utc>), TokenError> {
        self.issue_versioned(user, role, 0)
    }

    /// A token for `user` whose account is at `token_version`, and when it
    /// expires.
    pub fn issue_versioned(
        &self,
        user: Uuid,
        role: Role,
        token_version: u32,
    ) -> Result<(String, DateTime<Utc>), TokenError> {
        self.issue_full(user, role, token_version, self.ttl)
    }

    /// A token for `user` that lives `ttl` from now instead of the configured
    /// lifetime (a negative `ttl` makes an expired one, which tests need).
    pub fn issue_with_ttl(
        &self,
        user: Uuid,
        role: Role,
        ttl: Duration,
    ) -> Result<(String, DateTime<Utc>), TokenError> {
        self.issue_full(user, role, 0, ttl)
    }

    fn issue_full(
        &self,
        user: Uuid,
        role: Role,
        token_version: u32,
        ttl: Duration,
    ) -> Result<(String, DateTime<Utc>), TokenError> {
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
        .map_err(|e| TokenError::Signing(e.to_string()))?;
        Ok((token, expires_at))
    }

    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                match e.kind() {
                    ErrorKind::ExpiredSignature => TokenError::Expired,
                    _ => TokenError::Invalid,
                }
            })
    }
}

/// Shared handle to the token keys.
pub type Tokens = Arc<TokenKeys>;
