//! Creating a discount coupon (admin). A coupon's id is derived from its
//! code (`domain::coupon::coupon_id_for`), so the code is unique by the
//! event store's key: a second coupon with a code is refused
//! (`CouponError::AlreadyExists`). Under an `Idempotency-Key` a repeat of
//! the same request answers the first answer and writes nothing; the key is
//! part of the request's hash, so the same body under another key is a
//! second create of the code.

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use domain::coupon::{coupon_id_for, Coupon, CouponCommand, CouponError, Discount};
use domain::values::Money;
use uuid::Uuid;

use super::{replayed_creation, use_case_error, Caller, StoreError};
use crate::app::state::AppState;

/// What is asked for.
#[derive(Debug, Clone)]
pub struct NewCoupon {
    pub code: String,
    /// 1 to 100; exactly one of `percent_off` and `amount_off`.
    pub percent_off: Option<i64>,
    /// Minor units of the shop's currency.
    pub amount_off: Option<i64>,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_until: DateTime<Utc>,
    pub usage_limit: Option<i64>,
    /// The request's hash (key and body) when it came with an
    /// `Idempotency-Key`.
    pub request_hash: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateCouponError {
    /// Not exactly one of `percent_off` and `amount_off`.
    #[error("Give exactly one of `percent_off` and `amount_off`.")]
    DiscountMissing(CouponError),
    #[error(transparent)]
    Coupon(CouponError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

use_case_error!(CreateCouponError {
    Self::DiscountMissing(e) => domain(e: CouponError where Rule),
    Self::Coupon(e) => domain(e: CouponError),
    Self::Store(e) => nested(e: StoreError),
});

/// A coupon made (or made before by the same request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Created {
    pub id: Uuid,
    pub position: i64,
}

/// Creates the coupon.
pub async fn create_coupon(
    state: &AppState,
    caller: &Caller,
    new: NewCoupon,
) -> Result<Created, CreateCouponError> {
    let discount = discount(state, &new)?;
    let usage_limit = new
        .usage_limit
        .map(|n| {
            u32::try_from(n).map_err(|_| CreateCouponError::Coupon(CouponError::InvalidUsageLimit))
        })
        .transpose()?;
    let coupon_id = coupon_id_for(&new.code);
    let id = coupon_id.as_uuid();
    if let Some(position) = replayed(state, id, &new).await? {
        return Ok(Created { id, position });
    }
    let mut meta = caller.meta("CreateCoupon");
    if let Some(hash) = &new.request_hash {
        meta = meta.with_request_hash(hash.clone());
    }
    let command = CouponCommand::Create {
        coupon_id,
        code: new.code.clone(),
        discount,
        valid_from: new.valid_from.unwrap_or_else(Utc::now),
        valid_until: new.valid_until,
        usage_limit,
    };
    match state.coupons.execute(&id.to_string(), command, &meta).await {
        Ok(committed) => Ok(Created {
            id,
            position: committed.position,
        }),
        Err(e) => {
            // Lost a race: a replay of the winner's request answers like it,
            // anything else is the code already existing.
            if let Some(position) = replayed(state, id, &new).await? {
                return Ok(Created { id, position });
            }
            Err(match e {
                cqrs_es::AggregateError::AggregateConflict => {
                    CreateCouponError::Coupon(CouponError::AlreadyExists)
                }
                e => match StoreError::split(e) {
                    Ok(e) => CreateCouponError::Coupon(e),
                    Err(e) => CreateCouponError::Store(e),
                },
            })
        }
    }
}

fn discount(state: &AppState, new: &NewCoupon) -> Result<Discount, CreateCouponError> {
    let invalid = || CreateCouponError::Coupon(CouponError::InvalidDiscount);
    match (new.percent_off, new.amount_off) {
        (Some(percent), None) => u8::try_from(percent)
            .map(Discount::Percent)
            .map_err(|_| invalid()),
        (None, Some(amount)) => Money::new(amount, state.currency.clone())
            .map(Discount::Fixed)
            .map_err(|_| invalid()),
        _ => Err(CreateCouponError::DiscountMissing(
            CouponError::InvalidDiscount,
        )),
    }
}

/// The position of the coupon's creation when this very request (same key,
/// same body) made it; `None` when there is no coupon or another request
/// made it.
async fn replayed(
    state: &AppState,
    id: Uuid,
    new: &NewCoupon,
) -> Result<Option<i64>, CreateCouponError> {
    let Some(hash) = &new.request_hash else {
        return Ok(None);
    };
    let found = replayed_creation(&state.pool, Coupon::TYPE, id, hash).await?;
    Ok(found.and_then(Result::ok))
}
