//! Shipping: the carrier that takes a parcel and gives a tracking number.
//!
//! An outside service, so only its trait lives here; the simulated carrier
//! is in `projections::shipping`.

use async_trait::async_trait;
use thiserror::Error;

use crate::order::ShippingAddress;
use crate::values::OrderId;

/// What the carrier is asked to carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShipmentRequest {
    pub order_id: OrderId,
    pub address: ShippingAddress,
}

/// A booked shipment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shipment {
    /// The carrier's name, recorded on `OrderShipped`.
    pub carrier: String,
    pub tracking_number: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CarrierError {
    /// The carrier did not answer; asking again later may work.
    #[error("the carrier is unavailable: {0}")]
    Unavailable(String),
    /// The carrier will not take this shipment (e.g. an address it cannot
    /// serve).
    #[error("the carrier refused the shipment: {0}")]
    Refused(String),
}

crate::error_codes!(CarrierError {
    Self::Unavailable(_) => Unavailable "carrier_unavailable",
    Self::Refused(_) => Rule "shipment_refused",
});

/// A carrier. Booking the same order again must answer the same shipment
/// (a retried request must not book a second parcel).
#[async_trait]
pub trait Carrier: Send + Sync {
    async fn book(&self, request: &ShipmentRequest) -> Result<Shipment, CarrierError>;
}
