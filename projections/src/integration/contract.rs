//! The public contract: which stored events become which integration event,
//! and what each one says.
//!
//! Integration events are what other services may rely on. They are written
//! here, by hand, from the domain events, so a change of a domain event
//! changes this mapping and never the contract. Each is a CloudEvents 1.0
//! JSON envelope ([`CloudEvent`]) whose `data` is one of the types below.
//! Money is in minor units with its currency; no names, emails, phones or
//! addresses of people, only the customer's id.

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use domain::inventory::{InventoryEvent, InventoryItem};
use domain::order::{Order, OrderEvent};
use domain::product::{Product, ProductEvent};
use domain::values::Money;
use serde::Serialize;
use uuid::Uuid;

use crate::event_store::log::StoredEvent;

/// The CloudEvents version of every envelope.
pub const SPEC_VERSION: &str = "1.0";
/// The `source` of every integration event.
pub const SOURCE: &str = "/shop";
/// The `datacontenttype` of every integration event.
pub const DATA_CONTENT_TYPE: &str = "application/json";
/// Every type's name is `shop.` followed by the event's name.
pub const TYPE_PREFIX: &str = "shop.";

/// The names of the integration events (`type` is `shop.<name>`).
pub const NAMES: [&str; 11] = [
    "order.placed",
    "order.paid",
    "order.cancelled",
    "order.refunded",
    "order.shipped",
    "order.delivered",
    "invoice.issued",
    "product.created",
    "product.price_changed",
    "product.discontinued",
    "stock.availability_changed",
];

/// The first part of every name: the subjects the outbound stream holds.
pub const FAMILIES: [&str; 4] = ["order", "invoice", "product", "stock"];

/// The aggregate types whose events become integration events.
pub fn is_source(aggregate_type: &str) -> bool {
    aggregate_type == Order::TYPE
        || aggregate_type == Product::TYPE
        || aggregate_type == InventoryItem::TYPE
}

/// One integration event: a CloudEvents 1.0 envelope in its JSON form.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CloudEvent {
    /// Always `1.0`.
    #[cfg_attr(feature = "openapi", schema(example = "1.0"))]
    pub specversion: &'static str,
    /// Made from the stored event (aggregate type, id and sequence): the
    /// same on every delivery of the same fact, so receivers drop repeats by it.
    #[cfg_attr(
        feature = "openapi",
        schema(example = "Order:0b8e0c6e-1d4c-4a52-9a3e-52f8a0c4b2d1:1")
    )]
    pub id: String,
    /// Always `/shop`.
    #[cfg_attr(feature = "openapi", schema(example = "/shop"))]
    pub source: &'static str,
    /// `shop.<name>`, e.g. `shop.order.placed`.
    #[serde(rename = "type")]
    #[cfg_attr(feature = "openapi", schema(example = "shop.order.placed"))]
    pub event_type: String,
    /// The id of the order or product the event is about.
    pub subject: String,
    /// When the fact was recorded.
    pub time: DateTime<Utc>,
    /// Always `application/json`.
    #[cfg_attr(feature = "openapi", schema(example = "application/json"))]
    pub datacontenttype: &'static str,
    /// Extension attribute: the fact's global position in the shop's event
    /// log. Within one subject it only grows.
    pub position: i64,
    pub data: EventData,
}

impl CloudEvent {
    /// The name of the event (`order.placed`): `type` without `shop.`.
    pub fn name(&self) -> &str {
        self.event_type
            .strip_prefix(TYPE_PREFIX)
            .unwrap_or(&self.event_type)
    }
}

/// An amount of money: `amount` in the minor unit of `currency` (cents for USD).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = IntegrationMoney))]
pub struct Amount {
    pub amount: i64,
    /// ISO 4217 code.
    pub currency: String,
}

impl From<&Money> for Amount {
    fn from(money: &Money) -> Self {
        Amount {
            amount: money.minor,
            currency: money.currency.as_str().to_string(),
        }
    }
}

/// The `data` of an integration event: one of the types, named by `type`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum EventData {
    OrderPlaced(OrderPlaced),
    OrderPaid(OrderPaid),
    OrderCancelled(OrderCancelled),
    OrderRefunded(OrderRefunded),
    OrderShipped(OrderShipped),
    OrderDelivered(OrderDelivered),
    InvoiceIssued(InvoiceIssued),
    ProductCreated(ProductCreated),
    ProductPriceChanged(ProductPriceChanged),
    ProductDiscontinued(ProductDiscontinued),
    StockAvailabilityChanged(StockAvailabilityChanged),
}

/// `shop.order.placed`: a customer placed an order (stock and payment follow).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderPlaced {
    pub order_id: Uuid,
    pub customer_id: Uuid,
    pub lines: Vec<OrderLine>,
    pub subtotal: Amount,
    pub discount: Amount,
    pub total: Amount,
    pub placed_at: DateTime<Utc>,
}

/// One line of a placed order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = IntegrationOrderLine))]
pub struct OrderLine {
    pub product_id: Uuid,
    /// The product's name when the order was placed.
    pub name: String,
    pub quantity: u32,
    pub unit_price: Amount,
    pub line_total: Amount,
}

/// `shop.order.paid`: the order's payment was captured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderPaid {
    pub order_id: Uuid,
    pub customer_id: Uuid,
    pub amount: Amount,
}

/// `shop.order.cancelled`: the order will not be fulfilled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderCancelled {
    pub order_id: Uuid,
    pub customer_id: Uuid,
    /// `customer_request`, `out_of_stock`, `payment_failed`,
    /// `payment_timeout` or `admin`.
    pub reason: String,
    /// What is paid back because of the cancellation (zero when nothing was paid).
    pub refund_due: Amount,
}

/// `shop.order.refunded`: money went back to the customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderRefunded {
    pub order_id: Uuid,
    pub customer_id: Uuid,
    /// This refund.
    pub amount: Amount,
    /// Every refund of the order so far, this one included.
    pub total_refunded: Amount,
    /// Whether the whole order is now refunded.
    pub full: bool,
}

/// `shop.order.shipped`: the parcel left with the carrier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderShipped {
    pub order_id: Uuid,
    pub customer_id: Uuid,
    pub tracking_number: String,
    pub carrier: Option<String>,
}

/// `shop.order.delivered`: the parcel arrived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderDelivered {
    pub order_id: Uuid,
    pub customer_id: Uuid,
}

/// `shop.invoice.issued`: the paid order got its invoice number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InvoiceIssued {
    pub order_id: Uuid,
    pub customer_id: Uuid,
    pub invoice_number: String,
}

/// `shop.product.created`: a product is in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProductCreated {
    pub product_id: Uuid,
    pub name: String,
    pub sku: String,
    pub price: Amount,
    pub category_id: Uuid,
    pub shop_id: Option<Uuid>,
}

/// `shop.product.price_changed`: the catalog price changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProductPriceChanged {
    pub product_id: Uuid,
    pub old_price: Amount,
    pub new_price: Amount,
}

/// `shop.product.discontinued`: the product is no longer sold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProductDiscontinued {
    pub product_id: Uuid,
}

/// `shop.stock.availability_changed`: the product's stock after a change
/// (received, adjusted, held, released, sold).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StockAvailabilityChanged {
    pub product_id: Uuid,
    pub on_hand: i64,
    pub held: i64,
    /// `on_hand - held`, never below zero.
    pub available: i64,
}

/// Why a stored event could not be turned into its integration event.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the {event_type} event: {error}")]
pub struct MappingError {
    pub event_type: String,
    pub error: serde_json::Error,
}

/// The deterministic id of the integration event of `event`.
pub fn event_id(event: &StoredEvent) -> String {
    format!(
        "{}:{}:{}",
        event.aggregate_type, event.aggregate_id, event.sequence
    )
}

/// The integration event a stored event becomes, if any.
pub fn integration_event(event: &StoredEvent) -> Result<Option<CloudEvent>, MappingError> {
    let fail = |error| MappingError {
        event_type: event.event_type.clone(),
        error,
    };
    let mapped = if event.aggregate_type == Order::TYPE {
        if !matches!(
            event.event_type.as_str(),
            "OrderPlaced"
                | "PaymentCaptured"
                | "OrderCancelled"
                | "OrderRefunded"
                | "OrderShipped"
                | "OrderDelivered"
                | "InvoiceIssued"
        ) {
            return Ok(None);
        }
        order_event(event.decode().map_err(fail)?)
    } else if event.aggregate_type == Product::TYPE {
        if event.event_type == "ProductDetailsUpdated" {
            return Ok(None);
        }
        product_event(event.decode().map_err(fail)?)
    } else if event.aggregate_type == InventoryItem::TYPE {
        Some(stock_event(event.decode().map_err(fail)?))
    } else {
        None
    };
    Ok(mapped.map(|(name, data)| CloudEvent {
        specversion: SPEC_VERSION,
        id: event_id(event),
        source: SOURCE,
        event_type: format!("{TYPE_PREFIX}{name}"),
        subject: event.aggregate_id.clone(),
        time: event.recorded_at,
        datacontenttype: DATA_CONTENT_TYPE,
        position: event.global_position,
        data,
    }))
}

fn order_event(event: OrderEvent) -> Option<(&'static str, EventData)> {
    Some(match event {
        OrderEvent::OrderPlaced {
            order_id,
            customer_id,
            lines,
            subtotal,
            discount,
            total,
            placed_at,
            ..
        } => (
            "order.placed",
            EventData::OrderPlaced(OrderPlaced {
                order_id: order_id.0,
                customer_id: customer_id.0,
                lines: lines
                    .iter()
                    .map(|line| OrderLine {
                        product_id: line.product_id.0,
                        name: line.name.clone(),
                        quantity: line.quantity.get(),
                        unit_price: (&line.unit_price).into(),
                        line_total: (&line.line_total).into(),
                    })
                    .collect(),
                subtotal: (&subtotal).into(),
                discount: (&discount).into(),
                total: (&total).into(),
                placed_at,
            }),
        ),
        OrderEvent::PaymentCaptured {
            order_id,
            customer_id,
            amount,
            ..
        } => (
            "order.paid",
            EventData::OrderPaid(OrderPaid {
                order_id: order_id.0,
                customer_id: customer_id.0,
                amount: (&amount).into(),
            }),
        ),
        OrderEvent::OrderCancelled {
            order_id,
            customer_id,
            reason,
            refund_due,
            ..
        } => (
            "order.cancelled",
            EventData::OrderCancelled(OrderCancelled {
                order_id: order_id.0,
                customer_id: customer_id.0,
                reason: serde_json::to_value(reason)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                refund_due: (&refund_due).into(),
            }),
        ),
        OrderEvent::OrderRefunded {
            order_id,
            customer_id,
            amount,
            total_refunded,
            full,
            ..
        } => (
            "order.refunded",
            EventData::OrderRefunded(OrderRefunded {
                order_id: order_id.0,
                customer_id: customer_id.0,
                amount: (&amount).into(),
                total_refunded: (&total_refunded).into(),
                full,
            }),
        ),
        OrderEvent::OrderShipped {
            order_id,
            customer_id,
            tracking_number,
            carrier,
            ..
        } => (
            "order.shipped",
            EventData::OrderShipped(OrderShipped {
                order_id: order_id.0,
                customer_id: customer_id.0,
                tracking_number,
                carrier,
            }),
        ),
        OrderEvent::OrderDelivered {
            order_id,
            customer_id,
            ..
        } => (
            "order.delivered",
            EventData::OrderDelivered(OrderDelivered {
                order_id: order_id.0,
                customer_id: customer_id.0,
            }),
        ),
        OrderEvent::InvoiceIssued {
            order_id,
            customer_id,
            invoice_number,
            ..
        } => (
            "invoice.issued",
            EventData::InvoiceIssued(InvoiceIssued {
                order_id: order_id.0,
                customer_id: customer_id.0,
                invoice_number,
            }),
        ),
        OrderEvent::StockReserved { .. }
        | OrderEvent::PaymentAuthorized { .. }
        | OrderEvent::PaymentFailed { .. }
        | OrderEvent::OrderProcessingStarted { .. } => return None,
    })
}

fn product_event(event: ProductEvent) -> Option<(&'static str, EventData)> {
    Some(match event {
        ProductEvent::ProductCreated {
            product_id,
            name,
            price,
            sku,
            category_id,
            shop_id,
            ..
        } => (
            "product.created",
            EventData::ProductCreated(ProductCreated {
                product_id: product_id.0,
                name,
                sku: sku.as_str().to_string(),
                price: (&price).into(),
                category_id: category_id.0,
                shop_id: shop_id.map(|s| s.0),
            }),
        ),
        ProductEvent::ProductPriceChanged {
            product_id,
            old_price,
            new_price,
        } => (
            "product.price_changed",
            EventData::ProductPriceChanged(ProductPriceChanged {
                product_id: product_id.0,
                old_price: (&old_price).into(),
                new_price: (&new_price).into(),
            }),
        ),
        ProductEvent::ProductDiscontinued { product_id } => (
            "product.discontinued",
            EventData::ProductDiscontinued(ProductDiscontinued {
                product_id: product_id.0,
            }),
        ),
        ProductEvent::ProductDetailsUpdated { .. } => return None,
    })
}

fn stock_event(event: InventoryEvent) -> (&'static str, EventData) {
    let (product_id, on_hand, held) = match event {
        InventoryEvent::StockReceived {
            product_id,
            on_hand_after,
            held_after,
            ..
        }
        | InventoryEvent::StockAdjusted {
            product_id,
            on_hand_after,
            held_after,
            ..
        }
        | InventoryEvent::HoldPlaced {
            product_id,
            on_hand_after,
            held_after,
            ..
        }
        | InventoryEvent::HoldReleased {
            product_id,
            on_hand_after,
            held_after,
            ..
        }
        | InventoryEvent::HoldExpired {
            product_id,
            on_hand_after,
            held_after,
            ..
        }
        | InventoryEvent::HoldCommitted {
            product_id,
            on_hand_after,
            held_after,
            ..
        }
        | InventoryEvent::StockDecremented {
            product_id,
            on_hand_after,
            held_after,
            ..
        }
        | InventoryEvent::OrderStockReturned {
            product_id,
            on_hand_after,
            held_after,
            ..
        }
        | InventoryEvent::HoldsPlaced {
            product_id,
            on_hand_after,
            held_after,
            ..
        }
        | InventoryEvent::HoldsCommitted {
            product_id,
            on_hand_after,
            held_after,
            ..
        } => (product_id, on_hand_after, held_after),
    };
    (
        "stock.availability_changed",
        EventData::StockAvailabilityChanged(StockAvailabilityChanged {
            product_id: product_id.0,
            on_hand,
            held,
            available: (on_hand - held).max(0),
        }),
    )
}
