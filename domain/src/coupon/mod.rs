//! Discount coupons.
//!
//! A coupon's aggregate id is derived from its code ([`coupon_id_for`]), so a
//! second coupon with the same code is a conflict on the event store's key.
//! Create the coupon with `coupon_id = coupon_id_for(code)` so that the id in
//! its events and its aggregate id are the same.
//!
//! A redemption belongs to an order: redeeming twice for the same order counts
//! once, and an order cancelled before payment gives its redemption back.
//! A coupon is valid from `valid_from` (inclusive) until `valid_until`
//! (exclusive).
//!
//! The state counts the redemptions held (`times_used`); which orders hold
//! one is remembered by key (see [`crate::stored`]): `redeemed:<order id>`
//! (value `true`) is set by `CouponRedeemed` and forgotten by
//! `CouponRedemptionReleased`; `Redeem` and `ReleaseRedemption` recall it.

mod commands;
mod error;
mod events;
#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::stored::{KeyedMemory, StoredAggregate};
use crate::values::{derived_id, CouponId, Money, OrderId, ValueError};

pub use commands::CouponCommand;
pub use error::CouponError;
pub use events::CouponEvent;

/// Shortest and longest code.
pub const CODE_MIN_LEN: usize = 3;
pub const CODE_MAX_LEN: usize = 32;

/// How much a coupon takes off an order's subtotal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Discount {
    /// A percentage of the subtotal, 1 to 100.
    Percent(u8),
    /// A fixed amount, in the shop's currency.
    Fixed(Money),
}

impl Discount {
    /// The discount on `subtotal`: never more than the subtotal. A percentage
    /// rounds down to whole minor units; a fixed amount in another currency
    /// is an error.
    pub fn apply(&self, subtotal: &Money) -> Result<Money, ValueError> {
        if subtotal.minor < 0 {
            return Err(ValueError::NegativeAmount(subtotal.minor));
        }
        match self {
            Discount::Percent(percent) => {
                let percent = i128::from((*percent).min(100));
                // i128 so that no subtotal can overflow; the result is at most
                // the subtotal, so it fits back into i64.
                let minor = i128::from(subtotal.minor) * percent / 100;
                let minor = i64::try_from(minor).map_err(|_| ValueError::Overflow)?;
                Money::new(minor, subtotal.currency.clone())
            }
            Discount::Fixed(amount) => {
                if amount.currency != subtotal.currency {
                    return Err(ValueError::CurrencyMismatch(
                        amount.currency.clone(),
                        subtotal.currency.clone(),
                    ));
                }
                if amount.minor < 0 {
                    return Err(ValueError::NegativeAmount(amount.minor));
                }
                Money::new(amount.minor.min(subtotal.minor), subtotal.currency.clone())
            }
        }
    }

    fn is_well_formed(&self) -> bool {
        match self {
            Discount::Percent(p) => (1..=100).contains(p),
            Discount::Fixed(m) => (1..=AMOUNT_OFF_MAX).contains(&m.minor),
        }
    }
}

/// The largest fixed discount, in minor units: the highest price a product
/// may have.
pub const AMOUNT_OFF_MAX: i64 = crate::product::PRICE_MAX;

/// A code as customers may type it: trimmed and upper-cased, not validated.
pub fn normalize_code(raw: &str) -> String {
    raw.trim().to_ascii_uppercase()
}

/// A valid code: 3 to 32 of `A-Z 0-9 - _` once normalised.
pub fn parse_code(raw: &str) -> Result<String, CouponError> {
    let code = normalize_code(raw);
    let ok = (CODE_MIN_LEN..=CODE_MAX_LEN).contains(&code.len())
        && code
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(code)
    } else {
        Err(CouponError::InvalidCode(raw.to_string()))
    }
}

/// The aggregate id (and coupon id) of the coupon with this code.
pub fn coupon_id_for(code: &str) -> CouponId {
    CouponId(derived_id("coupon", &normalize_code(code)))
}

/// Whether `now` lies in the validity window `[valid_from, valid_until)`.
pub fn within_validity(
    valid_from: DateTime<Utc>,
    valid_until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> bool {
    valid_from <= now && now < valid_until
}

/// Whether no redemption is left.
pub fn used_up(usage_limit: Option<u32>, times_used: u32) -> bool {
    usage_limit.is_some_and(|limit| times_used >= limit)
}

/// The keyed-memory key of `order_id`'s redemption.
pub fn redeemed_key(order_id: OrderId) -> String {
    format!("redeemed:{}", order_id.as_uuid())
}

/// A coupon's state. `coupon_id` is `None` until it is created. Equality and
/// the serialized form (the snapshot) leave the keyed memory out.
#[derive(Debug, Clone, Default, Eq, Serialize, Deserialize)]
pub struct Coupon {
    coupon_id: Option<CouponId>,
    code: String,
    discount: Option<Discount>,
    valid_from: Option<DateTime<Utc>>,
    valid_until: Option<DateTime<Utc>>,
    usage_limit: Option<u32>,
    /// How many orders hold a redemption now.
    times_used: u32,
    /// The orders holding a redemption, by key.
    #[serde(skip)]
    memory: KeyedMemory,
}

impl PartialEq for Coupon {
    fn eq(&self, other: &Self) -> bool {
        let Self {
            coupon_id,
            code,
            discount,
            valid_from,
            valid_until,
            usage_limit,
            times_used,
            memory: _,
        } = self;
        *coupon_id == other.coupon_id
            && *code == other.code
            && *discount == other.discount
            && *valid_from == other.valid_from
            && *valid_until == other.valid_until
            && *usage_limit == other.usage_limit
            && *times_used == other.times_used
    }
}

impl Coupon {
    pub fn coupon_id(&self) -> Option<CouponId> {
        self.coupon_id
    }
    pub fn code(&self) -> &str {
        &self.code
    }
    pub fn discount(&self) -> Option<&Discount> {
        self.discount.as_ref()
    }
    pub fn valid_from(&self) -> Option<DateTime<Utc>> {
        self.valid_from
    }
    pub fn valid_until(&self) -> Option<DateTime<Utc>> {
        self.valid_until
    }
    pub fn usage_limit(&self) -> Option<u32> {
        self.usage_limit
    }
    /// How many orders hold a redemption now.
    pub fn times_used(&self) -> u32 {
        self.times_used
    }
    /// Whether `order_id` holds a redemption. Read from keyed memory: a
    /// coupon rebuilt from all its events knows every order; one loaded from
    /// a snapshot knows only the orders recalled (`redeemed:<order>`) or
    /// redeemed by the events after the snapshot.
    pub fn is_redeemed_by(&self, order_id: OrderId) -> bool {
        self.memory.contains(&redeemed_key(order_id))
    }

    fn create(
        &self,
        coupon_id: CouponId,
        code: &str,
        discount: Discount,
        valid_from: DateTime<Utc>,
        valid_until: DateTime<Utc>,
        usage_limit: Option<u32>,
    ) -> Result<Vec<CouponEvent>, CouponError> {
        if self.coupon_id.is_some() {
            return Err(CouponError::AlreadyExists);
        }
        let code = parse_code(code)?;
        if !discount.is_well_formed() {
            return Err(CouponError::InvalidDiscount);
        }
        // A window that ends before it starts makes a coupon no one can
        // redeem, like one that has already ended: both are kept as given.
        if usage_limit == Some(0) {
            return Err(CouponError::InvalidUsageLimit);
        }
        Ok(vec![CouponEvent::CouponCreated {
            coupon_id,
            code,
            discount,
            valid_from,
            valid_until,
            usage_limit,
        }])
    }

    fn redeem(
        &self,
        order_id: OrderId,
        now: DateTime<Utc>,
    ) -> Result<Vec<CouponEvent>, CouponError> {
        let (Some(coupon_id), Some(valid_from), Some(valid_until)) =
            (self.coupon_id, self.valid_from, self.valid_until)
        else {
            return Err(CouponError::NotFound);
        };
        if self.is_redeemed_by(order_id) {
            return Ok(vec![]);
        }
        if !within_validity(valid_from, valid_until, now) {
            return Err(CouponError::Expired);
        }
        if used_up(self.usage_limit, self.times_used()) {
            return Err(CouponError::UsedUp);
        }
        Ok(vec![CouponEvent::CouponRedeemed {
            coupon_id,
            order_id,
            times_used: self.times_used().saturating_add(1),
        }])
    }

    fn release(&self, order_id: OrderId) -> Result<Vec<CouponEvent>, CouponError> {
        let coupon_id = self.coupon_id.ok_or(CouponError::NotFound)?;
        if !self.is_redeemed_by(order_id) {
            return Ok(vec![]);
        }
        Ok(vec![CouponEvent::CouponRedemptionReleased {
            coupon_id,
            order_id,
            times_used: self.times_used().saturating_sub(1),
        }])
    }
}

impl Aggregate for Coupon {
    const TYPE: &'static str = "Coupon";
    type Command = CouponCommand;
    type Event = CouponEvent;
    type Error = CouponError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let events = match command {
            CouponCommand::Create {
                coupon_id,
                code,
                discount,
                valid_from,
                valid_until,
                usage_limit,
            } => self.create(
                coupon_id,
                &code,
                discount,
                valid_from,
                valid_until,
                usage_limit,
            )?,
            CouponCommand::Redeem { order_id, now } => self.redeem(order_id, now)?,
            CouponCommand::ReleaseRedemption { order_id } => self.release(order_id)?,
        };
        for event in events {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        self.memory.write(Self::remembers(&event));
        match event {
            CouponEvent::CouponCreated {
                coupon_id,
                code,
                discount,
                valid_from,
                valid_until,
                usage_limit,
            } => {
                self.coupon_id = Some(coupon_id);
                self.code = code;
                self.discount = Some(discount);
                self.valid_from = Some(valid_from);
                self.valid_until = Some(valid_until);
                self.usage_limit = usage_limit;
            }
            CouponEvent::CouponRedeemed { times_used, .. }
            | CouponEvent::CouponRedemptionReleased { times_used, .. } => {
                self.times_used = times_used;
            }
        }
    }
}

/// Loaded from a snapshot plus its later events; the orders holding a
/// redemption are recalled by key (`redeemed:<order id>`).
impl StoredAggregate for Coupon {
    fn remembers(event: &CouponEvent) -> Vec<(String, Option<Value>)> {
        match event {
            CouponEvent::CouponCreated { .. } => Vec::new(),
            CouponEvent::CouponRedeemed { order_id, .. } => {
                vec![(redeemed_key(*order_id), Some(Value::Bool(true)))]
            }
            CouponEvent::CouponRedemptionReleased { order_id, .. } => {
                vec![(redeemed_key(*order_id), None)]
            }
        }
    }

    fn recall_keys(command: &CouponCommand) -> Vec<String> {
        match command {
            CouponCommand::Create { .. } => Vec::new(),
            CouponCommand::Redeem { order_id, .. }
            | CouponCommand::ReleaseRedemption { order_id } => vec![redeemed_key(*order_id)],
        }
    }

    fn recall(&mut self, entries: Vec<(String, Value)>) {
        self.memory.recall(entries);
    }
}
