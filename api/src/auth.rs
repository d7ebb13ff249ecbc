//! Who is calling: the bearer token of a request (see `crate::tokens`), and
//! role checks.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use domain::metadata::{Actor, Role};
use uuid::Uuid;

use crate::app::state::AppState;
use crate::app::Forbidden;
use crate::error::ApiError;
use crate::tokens::TokenError;

pub use crate::tokens::{Claims, TokenKeys, Tokens};

impl From<TokenError> for ApiError {
    fn from(error: TokenError) -> Self {
        match error {
            TokenError::Signing(e) => ApiError::internal(e),
            e => unauthorized(&e.to_string()),
        }
    }
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        crate::error::codes::UNAUTHORIZED,
        message,
    )
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
            Err(Forbidden.into())
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
        let standing =
            crate::app::token_standing::standing(&state.standings, &state.customers, claims.sub)
                .await?;
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
