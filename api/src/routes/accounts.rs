//! Accounts: register, sign in, who am I.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use domain::customer::{Customer, CustomerError, Email, Fullname, Password, Phone, Username};
use domain::metadata::{Actor, Role};
use domain::values::CustomerId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::app::forget_customer::{forget_myself, ForgetCustomerError};
use crate::app::refusals::{NotFound, PasswordCheckBusy, TooManyAttempts, TooManySignUps};
use crate::app::register::{self, NewAccount, RegisterError};
use crate::app::sign_in::{sign_in, SignInError};
use crate::app::state::AppState;
use crate::app::Forbidden;
use crate::auth::AuthUser;
use crate::client::ClientIp;
use crate::commands::{caller, command_error, metadata, CommandAnswer};
use crate::error::Answers;
use crate::error::OrTooMany;
use crate::error::{ApiError, Result};
use crate::extract::{AppJson, RequestId};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(me, forget_me))
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
        Answers::<(RegisterError, TooManySignUps, PasswordCheckBusy)>,
    ),
)]
async fn register(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    request_id: RequestId,
    AppJson(body): AppJson<RegisterRequest>,
) -> Result<(StatusCode, Json<Registered>)> {
    state.register_limiter.check(&client).or_too_many(
        TooManySignUps::CODE,
        "Too many sign-ups from this address; wait a minute.",
    )?;
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
    description = "Anyone. Answers a short-lived bearer token (HS256 JWT) for `Authorization: Bearer <token>`. Sign-in attempts are rate limited per client address (behind a trusted proxy, the address it forwards), and failed ones per account.",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in.", body = LoginAnswer),
        Answers::<(SignInError, TooManyAttempts, PasswordCheckBusy)>,
    ),
)]
async fn login(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    AppJson(body): AppJson<LoginRequest>,
) -> Result<Json<LoginAnswer>> {
    state.login_limiter.check(&client).or_too_many(
        TooManyAttempts::CODE,
        "Too many sign-in attempts from this address; wait a minute.",
    )?;
    let signed_in = sign_in(&state, &body.username, body.password)
        .await
        .map_err(|e| ApiError::from_use_case(&e).retry_in(e.retry_after()))?;
    Ok(Json(LoginAnswer {
        token: signed_in.token,
        expires_at: signed_in.expires_at,
        customer_id: signed_in.customer_id.as_uuid(),
        role: signed_in.role,
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
        Answers::<NotFound>,
    ),
)]
async fn me(State(state): State<AppState>, user: AuthUser) -> Result<Json<Me>> {
    let customer = load_customer(&state, CustomerId(user.id))
        .await?
        .ok_or_else(|| ApiError::from(NotFound::new("This account does not exist.")))?;
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

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ForgetMeRequest {
    /// The account's password, to confirm.
    password: String,
}

#[utoipa::path(
    delete,
    path = "/v1/me",
    tag = "accounts",
    summary = "Forget me",
    description = "Role: customer (their own account), with its password. Deletes the customer's personal data key and records `CustomerForgotten`: from then on their username, name, email, phone and shipping addresses read `[erased]` everywhere (orders keep their lines, amounts and dates), pending notifications to them are dropped, and the account can no longer sign in. Cannot be undone.",
    security(("bearer" = [])),
    request_body = ForgetMeRequest,
    responses(
        (status = 200, description = "Forgotten.", body = CommandAnswer),
        Answers::<(Forbidden, ForgetCustomerError, PasswordCheckBusy)>,
    ),
)]
async fn forget_me(
    State(state): State<AppState>,
    user: AuthUser,
    request_id: RequestId,
    AppJson(body): AppJson<ForgetMeRequest>,
) -> Result<Json<CommandAnswer>> {
    user.require(&[Role::Customer])?;
    let committed = forget_myself(&state, &caller(&user, &request_id), body.password).await?;
    Ok(Json(CommandAnswer {
        id: user.id,
        position: committed.position,
    }))
}
