//! Payments and the wallet: card tokens (the simulated gateway's
//! tokenizer), the gateway's signed webhook, the customer's wallet balance
//! and card top-ups.
//!
//! A top-up is answered 202: the card is charged, and the balance is
//! credited when the gateway's callback says the charge succeeded (once per
//! top-up). Poll `GET /v1/wallet` for the new balance.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use domain::metadata::Role;
use domain::payment::CardDetails;
use domain::values::CustomerId;
use domain::wallet::wallet_id;
use projections::payments::{
    handle_callback, signature, CallbackOutcome, GatewayCallback, WebhookError, SIGNATURE_HEADER,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::app::gateway::GatewayFailure;
use crate::app::refusals::{InvalidCallback, InvalidSignature, TooManyPaymentAttempts};
use crate::app::state::AppState;
use crate::app::tokenize_card::tokenize_card;
use crate::app::top_up_wallet::{top_up_wallet, TopUpError};
use crate::app::Forbidden;
use crate::auth::AuthUser;
use crate::commands::{command_error, IdempotencyKey, IdempotencyKeyHeader};
use crate::error::Answers;
use crate::error::OrTooMany;
use crate::error::{ApiError, Result};
use crate::extract::AppJson;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(tokenize))
        .routes(routes!(webhook))
        .routes(routes!(wallet))
        .routes(routes!(top_up))
}

/// Who has a wallet.
const CUSTOMERS: &[Role] = &[Role::Customer];

/// Card tokenizations and top-ups share one per-customer limit (cards
/// cannot be tested in bulk).
fn payment_limit(state: &AppState, user: &AuthUser) -> Result<(), ApiError> {
    state.customer_limits.payments.check(&user.id).or_too_many(
        TooManyPaymentAttempts::CODE,
        "Too many card payments or tokenizations; wait a minute.",
    )
}

/// A card as typed in. Never stored or logged.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CardBody {
    /// 12 to 19 digits; spaces and dashes are allowed. Test cards:
    /// 4242424242424242 approves, 4000000000000002 is declined,
    /// 4000000000009995 fails for insufficient funds.
    #[schema(
        pattern = r"^[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[ -]*([0-9][ -]*){12,19}[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$",
        example = "4242424242424242"
    )]
    card_number: String,
    /// `MM/YY` or `MM/YYYY`. A card past its expiry month is tokenized, but
    /// charging it fails (`expired_card`).
    #[schema(
        pattern = r"^[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(0{0,3}[1-9]|0{0,2}1[0-2])[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*/[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*([0-9]{2}|[0-9]{4})[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$",
        example = "12/30"
    )]
    expiry: String,
    /// 3 or 4 digits.
    #[schema(
        pattern = r"^[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[0-9]{3,4}[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$",
        example = "123"
    )]
    cvc: String,
}

/// A card token: all the shop keeps of a card.
#[derive(Debug, Serialize, ToSchema)]
struct TokenAnswer {
    token: String,
    brand: String,
    last4: String,
}

#[utoipa::path(
    post,
    path = "/v1/payments/tokens",
    tag = "payments",
    summary = "Tokenize a card",
    description = "Role: any signed-in account. The simulated gateway's tokenizer: the card number and CVC go no further; the answer is a token to pay with, and the card's brand and last four digits. The tokens `tok_visa` (approves), `tok_chargeDeclined` (declined) and `tok_insufficientFunds` (insufficient funds) work without tokenizing.",
    security(("bearer" = [])),
    request_body = CardBody,
    responses(
        (status = 201, description = "Tokenized.", body = TokenAnswer),
        Answers::<(GatewayFailure, TooManyPaymentAttempts)>,
    ),
)]
async fn tokenize(
    State(state): State<AppState>,
    user: AuthUser,
    AppJson(body): AppJson<CardBody>,
) -> Result<(StatusCode, Json<TokenAnswer>)> {
    payment_limit(&state, &user)?;
    let card = CardDetails {
        number: body.card_number,
        expiry: body.expiry,
        cvc: body.cvc,
    };
    let token = tokenize_card(&state, CustomerId(user.id), card).await?;
    Ok((
        StatusCode::CREATED,
        Json(TokenAnswer {
            token: token.token,
            brand: token.brand,
            last4: token.last4,
        }),
    ))
}

/// The answer to a gateway callback.
#[derive(Debug, Serialize, ToSchema)]
struct WebhookAnswer {
    received: bool,
    /// The callback was handled before; nothing was done again.
    duplicate: bool,
}

#[utoipa::path(
    post,
    path = "/v1/payments/webhook",
    tag = "payments",
    summary = "Payment gateway callback",
    description = "For the payment gateway: a charge's outcome `{id, type: \"charge.succeeded\" | \"charge.failed\", charge_id, reference, amount, currency, failure_reason}`, signed with HMAC-SHA256 over the raw body in the `X-Gateway-Signature: sha256=<hex>` header. A callback with the same `id` again has no second effect.",
    params(("X-Gateway-Signature" = String, Header, description = "`sha256=` and the hex HMAC-SHA256 of the raw body with the webhook secret.")),
    request_body(content = String, description = "The callback JSON, exactly as signed.", content_type = "application/json"),
    responses(
        (status = 200, description = "Handled (or handled before).", body = WebhookAnswer),
        Answers::<(InvalidSignature, InvalidCallback)>,
    ),
)]
async fn webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<WebhookAnswer>> {
    let signed = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|header| signature::verify(&state.payment_webhook_secret, &body, header));
    if !signed {
        return Err(InvalidSignature::new("The callback's signature is missing or wrong.").into());
    }
    let callback: GatewayCallback = serde_json::from_slice(&body)
        .map_err(|e| ApiError::from(InvalidCallback(format!("The callback is not valid: {e}"))))?;
    let outcome = handle_callback(
        &state.pool,
        &state.orders,
        &state.wallets,
        state.gateway.as_ref(),
        &callback,
    )
    .await
    .map_err(|e| match e {
        WebhookError::Malformed(message) => InvalidCallback(message).into(),
        WebhookError::Unavailable(e) => {
            tracing::warn!(error = %e, callback = %callback.id, "cannot handle a payment callback now");
            ApiError::unavailable()
        }
    })?;
    if let CallbackOutcome::Handled(outcome) = &outcome {
        tracing::info!(callback = %callback.id, reference = %callback.reference, %outcome, "payment callback handled");
    }
    Ok(Json(WebhookAnswer {
        received: true,
        duplicate: outcome == CallbackOutcome::Duplicate,
    }))
}

/// A wallet's balance, in minor units of `currency`.
#[derive(Debug, Serialize, ToSchema)]
struct WalletAnswer {
    balance: i64,
    currency: String,
}

#[utoipa::path(
    get,
    path = "/v1/wallet",
    tag = "payments",
    summary = "The customer's wallet",
    description = "Role: customer. The balance, in minor units; zero before the first top-up.",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The balance.", body = WalletAnswer),
        Answers::<Forbidden>,
    ),
)]
async fn wallet(State(state): State<AppState>, user: AuthUser) -> Result<Json<WalletAnswer>> {
    user.require(CUSTOMERS)?;
    let wallet = state
        .wallets
        .load(&wallet_id(CustomerId(user.id)).to_string())
        .await
        .map_err(command_error)?
        .unwrap_or_default();
    Ok(Json(WalletAnswer {
        balance: wallet.balance(),
        currency: wallet
            .currency()
            .unwrap_or(&state.currency)
            .as_str()
            .to_string(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
enum TopUpPayment {
    Card {
        /// A card token, e.g. the test token `tok_visa`.
        #[schema(format = "not-blank")]
        token: String,
    },
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TopUpBody {
    /// Minor units, 1 to 100000000.
    #[schema(minimum = 1, maximum = 100_000_000)]
    amount: i64,
    payment: TopUpPayment,
}

#[derive(Debug, Serialize, ToSchema)]
struct TopUpAnswer {
    top_up_id: Uuid,
    charge_id: String,
    /// `pending`: the balance is credited when the charge succeeds.
    status: String,
}

#[utoipa::path(
    post,
    path = "/v1/wallet/top-up",
    tag = "payments",
    summary = "Top up the wallet by card",
    description = "Role: customer. Charges the card; the balance is credited once the gateway reports the charge succeeded (a declined card credits nothing). The card token must be the customer's own (409 `card_token_not_owned`; nothing is charged). With `Idempotency-Key`, a repeat is the same top-up and charges once.",
    security(("bearer" = [])),
    params(IdempotencyKeyHeader),
    request_body = TopUpBody,
    responses(
        (status = 202, description = "The charge is on its way.", body = TopUpAnswer),
        Answers::<(Forbidden, TopUpError, TooManyPaymentAttempts)>,
    ),
)]
async fn top_up(
    State(state): State<AppState>,
    user: AuthUser,
    key: IdempotencyKey,
    AppJson(body): AppJson<TopUpBody>,
) -> Result<(StatusCode, Json<TopUpAnswer>)> {
    user.require(CUSTOMERS)?;
    payment_limit(&state, &user)?;
    let TopUpPayment::Card { token } = body.payment;
    let top_up_id = key.creation_id("topup", user.id);
    let top_up = top_up_wallet(&state, CustomerId(user.id), top_up_id, body.amount, &token).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(TopUpAnswer {
            top_up_id: top_up.top_up_id,
            charge_id: top_up.charge_id,
            status: "pending".to_string(),
        }),
    ))
}
