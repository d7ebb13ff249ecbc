//! Discount coupons (admin).
//!
//! A coupon's id is derived from its code ([`coupon_id_for`]), so the code is
//! unique by the event store's key: a second coupon with a code is 409.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use domain::coupon::{coupon_id_for, Coupon, CouponCommand, CouponError, Discount};
use domain::metadata::REQUEST_HASH;
use domain::values::Money;
use projections::event_store::lookups;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::app::state::AppState;
use crate::app::Domain;
use crate::app::Forbidden;
use crate::app::StoreError;
use crate::auth::Admin;
use crate::commands::{
    command_error, domain_error, metadata, request_hash, CommandAnswer, IdempotencyKey,
    IdempotencyKeyHeader,
};
use crate::error::Answers;
use crate::error::{ApiError, Result};
use crate::extract::{AppJson, AppPath, RequestId};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_coupon))
        .routes(routes!(get_coupon))
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewCoupon {
    /// 3 to 32 letters, digits, `_` or `-` (stored upper case); unique.
    #[schema(
        pattern = r"^[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[A-Za-z0-9_-]{3,32}[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$",
        example = "SUMMER10"
    )]
    code: String,
    /// 1 to 100; exactly one of `percent_off` and `amount_off`.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100)]
    percent_off: Option<i64>,
    /// Minor units of the shop's currency: 1 to 10000000000.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 10_000_000_000_i64)]
    amount_off: Option<i64>,
    /// Default: now.
    #[serde(default)]
    valid_from: Option<DateTime<Utc>>,
    /// The coupon is redeemable from `valid_from` until this moment; a window
    /// that ends before it starts makes a coupon no one can redeem.
    valid_until: DateTime<Utc>,
    /// How many orders may use it: 1 to 4294967295; absent is no limit.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 4_294_967_295_i64)]
    usage_limit: Option<i64>,
}

fn invalid_discount() -> ApiError {
    domain_error(&CouponError::InvalidDiscount)
}

fn discount(state: &AppState, body: &NewCoupon) -> Result<Discount> {
    match (body.percent_off, body.amount_off) {
        (Some(percent), None) => u8::try_from(percent)
            .map(Discount::Percent)
            .map_err(|_| invalid_discount()),
        (None, Some(amount)) => Money::new(amount, state.currency.clone())
            .map(Discount::Fixed)
            .map_err(|_| invalid_discount()),
        _ => Err(ApiError::refusal(
            &CouponError::InvalidDiscount,
            "Give exactly one of `percent_off` and `amount_off`.",
        )),
    }
}

/// Creates a coupon. The id comes from the code, so the code is what makes a
/// create unique, with or without `Idempotency-Key`. With a key, a repeat of
/// the same request (same key, same body) answers 201 again and writes
/// nothing; any other create of an existing code is 409.
#[utoipa::path(
    post,
    path = "/v1/coupons",
    tag = "coupons",
    summary = "Create a coupon",
    description = "Role: admin. Creates a coupon; its code is unique (a second coupon with a code is 409). With `Idempotency-Key`, a repeat of the same request answers 201 again and writes nothing.",
    security(("bearer" = [])),
    params(IdempotencyKeyHeader),
    request_body = NewCoupon,
    responses(
        (status = 201, description = "Created: the coupon id and position.", body = CommandAnswer),
        Answers::<(Forbidden, Domain<CouponError>, StoreError)>,
    ),
)]
async fn create_coupon(
    State(state): State<AppState>,
    Admin(user): Admin,
    request_id: RequestId,
    key: IdempotencyKey,
    AppJson(body): AppJson<NewCoupon>,
) -> Result<(StatusCode, Json<CommandAnswer>)> {
    let discount = discount(&state, &body)?;
    let usage_limit = body
        .usage_limit
        .map(|n| u32::try_from(n).map_err(|_| domain_error(&CouponError::InvalidUsageLimit)))
        .transpose()?;
    let coupon_id = coupon_id_for(&body.code);
    let id = coupon_id.as_uuid();
    // The key is part of the hash: the same body under another key is a
    // second create of the code (409), not a replay.
    let hash = key.0.as_ref().map(|k| request_hash(&json!([k, &body])));
    if let Some(hash) = &hash {
        if let Some(position) = replay(&state, id, hash).await? {
            return Ok((StatusCode::CREATED, Json(CommandAnswer { id, position })));
        }
    }
    let mut meta = metadata(user.actor(), &request_id, "CreateCoupon");
    if let Some(hash) = &hash {
        meta = meta.with_request_hash(hash.clone());
    }
    let command = CouponCommand::Create {
        coupon_id,
        code: body.code.clone(),
        discount,
        valid_from: body.valid_from.unwrap_or_else(Utc::now),
        valid_until: body.valid_until,
        usage_limit,
    };
    match state.coupons.execute(&id.to_string(), command, &meta).await {
        Ok(committed) => Ok((
            StatusCode::CREATED,
            Json(CommandAnswer {
                id,
                position: committed.position,
            }),
        )),
        Err(e) => {
            // Lost a race: a replay of the winner's request answers like it,
            // anything else is the code already existing.
            if let Some(hash) = &hash {
                if let Some(position) = replay(&state, id, hash).await? {
                    return Ok((StatusCode::CREATED, Json(CommandAnswer { id, position })));
                }
            }
            match e {
                cqrs_es::AggregateError::AggregateConflict => {
                    Err(domain_error(&CouponError::AlreadyExists))
                }
                e => Err(command_error(e)),
            }
        }
    }
}

/// The position of the coupon's creation when it was made by a request with
/// this hash; `None` when there is no coupon or another request made it.
async fn replay(state: &AppState, id: Uuid, hash: &str) -> Result<Option<i64>> {
    let first = lookups::first_event(&state.pool, Coupon::TYPE, &id.to_string()).await?;
    Ok(first
        .filter(|f| f.metadata.get(REQUEST_HASH).and_then(|v| v.as_str()) == Some(hash))
        .map(|f| f.position))
}

#[derive(Debug, Serialize, ToSchema)]
struct CouponView {
    id: Uuid,
    code: String,
    percent_off: Option<u8>,
    amount_off: Option<i64>,
    currency: Option<String>,
    valid_from: Option<DateTime<Utc>>,
    valid_until: Option<DateTime<Utc>>,
    usage_limit: Option<u32>,
    times_used: u32,
    /// Whether an order could redeem it now.
    usable: bool,
}

#[utoipa::path(
    get,
    path = "/v1/coupons/{code}",
    tag = "coupons",
    summary = "One coupon",
    description = "Role: admin. The coupon with this code, its uses and whether an order could redeem it now.",
    security(("bearer" = [])),
    params(("code" = String, Path, description = "The coupon's code.")),
    responses(
        (status = 200, description = "The coupon.", body = CouponView),
        Answers::<(Forbidden, Domain<CouponError>)>,
    ),
)]
async fn get_coupon(
    State(state): State<AppState>,
    _admin: Admin,
    AppPath(code): AppPath<String>,
) -> Result<Json<CouponView>> {
    let coupon = state
        .coupons
        .load(&coupon_id_for(&code).to_string())
        .await
        .map_err(command_error::<CouponError>)?
        .filter(|c| c.coupon_id().is_some())
        .ok_or_else(|| ApiError::refusal(&CouponError::NotFound, "There is no such coupon."))?;
    Ok(Json(view(&coupon)))
}

fn view(coupon: &Coupon) -> CouponView {
    let (percent_off, amount_off, currency) = match coupon.discount() {
        Some(Discount::Percent(p)) => (Some(*p), None, None),
        Some(Discount::Fixed(m)) => (None, Some(m.minor), Some(m.currency.to_string())),
        None => (None, None, None),
    };
    CouponView {
        id: coupon.coupon_id().map(|c| c.as_uuid()).unwrap_or_default(),
        code: coupon.code().to_string(),
        percent_off,
        amount_off,
        currency,
        valid_from: coupon.valid_from(),
        valid_until: coupon.valid_until(),
        usage_limit: coupon.usage_limit(),
        times_used: coupon.times_used(),
        usable: crate::app::coupons::is_usable(coupon, Utc::now()),
    }
}
