//! The simulated carrier: books every shipment at once, without IO.

use async_trait::async_trait;
use domain::shipping::{Carrier, CarrierError, Shipment, ShipmentRequest};

/// The carrier's name recorded on `OrderShipped`.
pub const SIMULATED_CARRIER: &str = "simulated";

/// Issues `SIM-` followed by the order id's 32 hex digits, upper case: unique
/// because order ids are, and deterministic, so booking an order again (a
/// retried request) answers the same tracking number instead of a second
/// parcel.
#[derive(Debug, Clone, Copy, Default)]
pub struct SimulatedCarrier;

impl SimulatedCarrier {
    pub fn tracking_number(request: &ShipmentRequest) -> String {
        format!(
            "SIM-{}",
            request
                .order_id
                .as_uuid()
                .simple()
                .to_string()
                .to_uppercase()
        )
    }
}

#[async_trait]
impl Carrier for SimulatedCarrier {
    async fn book(&self, request: &ShipmentRequest) -> Result<Shipment, CarrierError> {
        tracing::info!(order_id = %request.order_id, "simulated carrier: shipment booked");
        Ok(Shipment {
            carrier: SIMULATED_CARRIER.to_string(),
            tracking_number: Self::tracking_number(request),
        })
    }
}

#[cfg(test)]
mod tests {
    use domain::order::ShippingAddress;
    use domain::values::OrderId;
    use uuid::Uuid;

    use super::*;

    fn request(n: u128) -> ShipmentRequest {
        ShipmentRequest {
            order_id: OrderId(Uuid::from_u128(n)),
            address: ShippingAddress::default(),
        }
    }

    #[tokio::test]
    async fn the_same_order_gets_the_same_tracking_number_and_others_another() {
        let first = SimulatedCarrier.book(&request(1)).await.unwrap();
        let again = SimulatedCarrier.book(&request(1)).await.unwrap();
        let other = SimulatedCarrier.book(&request(2)).await.unwrap();
        assert_eq!(first, again);
        assert_ne!(first.tracking_number, other.tracking_number);
        assert_eq!(first.carrier, SIMULATED_CARRIER);
        assert_eq!(
            first.tracking_number,
            "SIM-00000000000000000000000000000001"
        );
    }
}
