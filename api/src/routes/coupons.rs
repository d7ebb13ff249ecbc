//! Discount coupons (admin).
//!
//! Creating one is `crate::app::create_coupon`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use domain::coupon::{coupon_id_for, Coupon, CouponError, Discount};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::app::create_coupon::{self, CreateCouponError};
use crate::app::state::AppState;
use crate::app::Domain;
use crate::app::Forbidden;
use crate::auth::Admin;
use crate::commands::{
    caller, command_error, request_hash, CommandAnswer, IdempotencyKey, IdempotencyKeyHeader,
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
        Answers::<(Forbidden, CreateCouponError)>,
    ),
)]
async fn create_coupon(
    State(state): State<AppState>,
    Admin(user): Admin,
    request_id: RequestId,
    key: IdempotencyKey,
    AppJson(body): AppJson<NewCoupon>,
) -> Result<(StatusCode, Json<CommandAnswer>)> {
    // The key is part of the hash: the same body under another key is a
    // second create of the code (409), not a replay.
    let request_hash = key.0.as_ref().map(|k| request_hash(&json!([k, &body])));
    let new = create_coupon::NewCoupon {
        code: body.code,
        percent_off: body.percent_off,
        amount_off: body.amount_off,
        valid_from: body.valid_from,
        valid_until: body.valid_until,
        usage_limit: body.usage_limit,
        request_hash,
    };
    let created = create_coupon::create_coupon(&state, &caller(&user, &request_id), new).await?;
    Ok((
        StatusCode::CREATED,
        Json(CommandAnswer {
            id: created.id,
            position: created.position,
        }),
    ))
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
