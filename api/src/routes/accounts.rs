//! Accounts: register, sign in, who am I.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use domain::customer::{Customer, CustomerError, Email, Fullname, Password, Phone, Username};
use domain::metadata::{Actor, Role};
use domain::values::CustomerId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::app::register::{self, NewAccount, RegisterError};
use crate::auth::{verify_password, AuthUser};
use crate::commands::{command_error, metadata};
use crate::error::{ApiError, Result};
use crate::extract::{AppJson, RequestId};
use crate::openapi::ErrorBody;
use crate::startup::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/register", post(register))
        .route("/v1/login", post(login))
        .route("/v1/me", get(me))
}

// The account rules of `domain::customer::values`, spelled as schema
// patterns (a test holds them to the rules). Surrounding whitespace is
// allowed and trimmed.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RegisterRequest {
    /// 3 to 32 letters, digits, `.`, `_` or `-`; unique in any letter case.
    #[schema(
        pattern = r"^[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[A-Za-z0-9._-]{3,32}[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$",
        example = "ann.smith"
    )]
    username: String,
    /// 8 to 128 characters.
    #[schema(
        min_length = 8,
        max_length = 128,
        format = Password,
        example = "correct horse battery"
    )]
    password: String,
    /// At most 100 characters, not blank, no control characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$",
        example = "Ann Smith"
    )]
    fullname: String,
    /// At most 254 characters: a local part, `@`, and a domain with a dot;
    /// no whitespace or control characters.
    #[schema(
        max_length = 254,
        pattern = r"^[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^@\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+@[^@.\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+(\.[^@.\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+)+[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$",
        example = "ann@example.com"
    )]
    email: String,
    /// An optional `+` and 7 to 15 digits; spaces and dashes may separate
    /// them.
    #[schema(
        pattern = r"^[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*\+?[ -]*([0-9][ -]*){7,15}[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$",
        example = "+44 20 7946 0958"
    )]
    phone: String,
}

#[derive(Debug, Serialize, ToSchema)]
struct Registered {
    customer_id: Uuid,
    #[schema(value_type = String, example = "Success")]
    status: &'static str,
    position: i64,
}

#[utoipa::path(
    post,
    path = "/v1/register",
    tag = "accounts",
    summary = "Register a customer account",
    description = "Anyone. Creates a `customer` account. A username taken in any letter case is 409.",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Registered.", body = Registered),
        (status = 409, description = "The username is taken.", body = ErrorBody),
        (status = 422, description = "A field breaks a rule (`invalid_account`), or the body does not fit the schema (`invalid_body`).", body = ErrorBody),
    ),
)]
async fn register(
    State(state): State<AppState>,
    request_id: RequestId,
    AppJson(body): AppJson<RegisterRequest>,
) -> Result<(StatusCode, Json<Registered>)> {
    let account = NewAccount {
        username: Username::parse(&body.username).map_err(RegisterError::from)?,
        password: Password::parse(&body.password).map_err(RegisterError::from)?,
        fullname: Fullname::parse(&body.fullname).map_err(RegisterError::from)?,
        email: Email::parse(&body.email).map_err(RegisterError::from)?,
        phone: Phone::parse(&body.phone).map_err(RegisterError::from)?,
        role: Role::Customer,
    };
    let meta = metadata(Actor::Anonymous, &request_id, "Register");
    let (customer_id, position) = register::register(&state, account, &meta).await?;
    Ok((
        StatusCode::CREATED,
        Json(Registered {
            customer_id: customer_id.as_uuid(),
            status: "Success",
            position,
        }),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    username: String,
    password: String,
}

#[derive(Debug, Serialize, ToSchema)]
struct LoginAnswer {
    token: String,
    expires_at: DateTime<Utc>,
    customer_id: Uuid,
    role: Role,
}

#[utoipa::path(
    post,
    path = "/v1/login",
    tag = "accounts",
    summary = "Sign in",
    description = "Anyone. Answers a short-lived bearer token (HS256 JWT) for `Authorization: Bearer <token>`. Sign-in attempts are rate limited per client address.",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in.", body = LoginAnswer),
        (status = 401, description = "The username or password is wrong (`invalid_credentials`).", body = ErrorBody),
        (status = 429, description = "Too many sign-in attempts from this address (`too_many_attempts`); wait a minute.", body = ErrorBody),
    ),
)]
async fn login(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    AppJson(body): AppJson<LoginRequest>,
) -> Result<Json<LoginAnswer>> {
    // Forget addresses whose attempts have all been refilled.
    if state.login_limiter.len() > 10_000 {
        state.login_limiter.retain_recent();
    }
    if state.login_limiter.check_key(&client.ip()).is_err() {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            "Too many sign-in attempts from this address; wait a minute.",
        ));
    }
    let wrong = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "The username or password is wrong.",
        )
    };
    let customer = match Username::parse(&body.username) {
        Ok(username) => register::find_account(&state, &username)
            .await?
            .map(|(_, customer)| customer),
        Err(_) => None,
    };
    let hash = customer
        .as_ref()
        .and_then(|c| c.password_hash())
        .map(str::to_string);
    if !verify_password(body.password, hash).await? {
        return Err(wrong());
    }
    let customer = customer.ok_or_else(wrong)?;
    let (Some(id), Some(role)) = (customer.customer_id(), customer.role()) else {
        return Err(wrong());
    };
    let version = customer.token_version().unwrap_or_default();
    let (token, expires_at) = state.tokens.issue_versioned(id.as_uuid(), role, version)?;
    Ok(Json(LoginAnswer {
        token,
        expires_at,
        customer_id: id.as_uuid(),
        role,
    }))
}

async fn load_customer(state: &AppState, id: CustomerId) -> Result<Option<Customer>> {
    let customer = state
        .customers
        .load(&id.to_string())
        .await
        .map_err(command_error::<CustomerError>)?;
    Ok(customer.filter(Customer::is_registered))
}

#[derive(Debug, Serialize, ToSchema)]
struct Me {
    customer_id: Uuid,
    username: String,
    fullname: String,
    email: String,
    phone: String,
    role: Role,
}

#[utoipa::path(
    get,
    path = "/v1/me",
    tag = "accounts",
    summary = "The signed-in account",
    description = "Role: any signed-in account. The account's profile and role.",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The account.", body = Me),
        (status = 404, description = "The token's account does not exist (`not_found`).", body = ErrorBody),
    ),
)]
async fn me(State(state): State<AppState>, user: AuthUser) -> Result<Json<Me>> {
    let customer = load_customer(&state, CustomerId(user.id))
        .await?
        .ok_or_else(|| ApiError::not_found("This account does not exist."))?;
    let text = |v: Option<&str>| v.unwrap_or_default().to_string();
    Ok(Json(Me {
        customer_id: user.id,
        username: text(customer.username().map(Username::as_str)),
        fullname: text(customer.fullname().map(Fullname::as_str)),
        email: text(customer.email().map(Email::as_str)),
        phone: text(customer.phone().map(Phone::as_str)),
        role: customer.role().unwrap_or(user.role),
    }))
}
