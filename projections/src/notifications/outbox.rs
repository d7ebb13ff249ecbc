//! The `notifications` projector: queues a message to the customer for every
//! stage of an order, in the outbox, in the same transaction as its
//! checkpoint, so each stage is queued exactly once.
//!
//! | event | stage | channel |
//! |---|---|---|
//! | `OrderPlaced` | placed | email |
//! | `PaymentCaptured` | paid | email |
//! | `PaymentFailed` | payment_failed | email |
//! | `OrderShipped` | shipped | sms |
//! | `OrderDelivered` | delivered | sms |
//! | `OrderCancelled` (payment timeout) | expired | email |
//! | `OrderCancelled` (other reasons but a failed payment) | cancelled | email |
//! | `OrderRefunded` | refunded | email |
//!
//! A failed payment is always followed by a cancellation with that reason;
//! its `payment_failed` message says so, so the cancellation adds none.
//! Where to send comes from the account's registration
//! (`notification_contacts`). Once a customer is forgotten
//! (`CustomerForgotten`), their contact details and the recipients of their
//! messages read `[erased]`, messages still pending are dropped (failed,
//! [`DROPPED`]) and none are queued for them any more.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use domain::customer::{Customer, CustomerEvent};
use domain::order::{CancellationReason, Order, OrderEvent};
use domain::personal::ERASED;
use domain::values::{CustomerId, Money, OrderId};
use sqlx::PgConnection;

use crate::event_store::log::StoredEvent;
use crate::projector::{ApplyError, Projector};

pub const NAME: &str = "notifications";

pub struct NotificationsProjector;

#[async_trait]
impl Projector for NotificationsProjector {
    fn name(&self) -> &'static str {
        NAME
    }

    /// None to swap: a rebuild would queue every message again.
    fn tables(&self) -> &'static [&'static str] {
        &[]
    }

    fn handles(&self, aggregate_type: &str) -> bool {
        aggregate_type == Customer::TYPE || aggregate_type == Order::TYPE
    }

    async fn apply(&self, conn: &mut PgConnection, event: &StoredEvent) -> Result<(), ApplyError> {
        if event.aggregate_type == Customer::TYPE {
            let decoded: CustomerEvent = event.decode()?;
            if let CustomerEvent::CustomerForgotten { customer_id } = decoded {
                return forget(conn, customer_id).await;
            }
            if let CustomerEvent::CustomerRegistered {
                customer_id,
                fullname,
                email,
                phone,
                ..
            } = decoded
            {
                sqlx::query(
                    "INSERT INTO notification_contacts (customer_id, fullname, email, phone)
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT (customer_id) DO UPDATE
                        SET fullname = EXCLUDED.fullname, email = EXCLUDED.email, phone = EXCLUDED.phone",
                )
                .bind(customer_id.as_uuid())
                .bind(fullname.as_str())
                .bind(email.as_str())
                .bind(phone.as_str())
                .execute(conn)
                .await?;
            }
            return Ok(());
        }
        let Some(message) = message(event.decode()?) else {
            return Ok(());
        };
        queue(conn, &message, event.global_position).await
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Channel {
    Email,
    Sms,
}

impl Channel {
    fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
        }
    }
}

/// A message about one stage of an order.
struct Message {
    customer_id: CustomerId,
    order_id: OrderId,
    stage: &'static str,
    channel: Channel,
    subject: String,
    body: String,
    at: DateTime<Utc>,
}

/// "12.34 USD" (two decimals: the currencies the shop takes have cents).
fn amount(money: &Money) -> String {
    let sign = if money.minor < 0 { "-" } else { "" };
    let minor = money.minor.unsigned_abs();
    format!(
        "{sign}{}.{:02} {}",
        minor / 100,
        minor % 100,
        money.currency.as_str()
    )
}

/// The first block of the order id: enough for a person to tell orders apart.
fn short(order_id: &OrderId) -> String {
    order_id.as_uuid().simple().to_string()[..8].to_string()
}

fn message(event: OrderEvent) -> Option<Message> {
    let email = |customer_id, order_id: OrderId, stage, subject: String, body: String, at| {
        Some(Message {
            customer_id,
            order_id,
            stage,
            channel: Channel::Email,
            subject,
            body,
            at,
        })
    };
    match event {
        OrderEvent::OrderPlaced {
            order_id,
            customer_id,
            lines,
            total,
            at,
            ..
        } => {
            let id = short(&order_id);
            let items: u32 = lines.iter().map(|l| l.quantity.get()).sum();
            email(
                customer_id,
                order_id,
                "placed",
                format!("We have your order {id}"),
                format!(
                    "Thank you. Your order {id} of {items} item(s), {} in all, is placed; we will tell you when it is paid and on its way.",
                    amount(&total)
                ),
                at,
            )
        }
        OrderEvent::PaymentCaptured {
            order_id,
            customer_id,
            amount: paid,
            at,
            ..
        } => {
            let id = short(&order_id);
            email(
                customer_id,
                order_id,
                "paid",
                format!("Order {id} is paid"),
                format!(
                    "We received {} for your order {id}. We are packing it now.",
                    amount(&paid)
                ),
                at,
            )
        }
        OrderEvent::PaymentFailed {
            order_id,
            customer_id,
            reason,
            at,
        } => {
            let id = short(&order_id);
            email(
                customer_id,
                order_id,
                "payment_failed",
                format!("Payment for order {id} failed"),
                format!(
                    "The payment for your order {id} did not go through ({reason}), so the order is cancelled and nothing was charged."
                ),
                at,
            )
        }
        OrderEvent::OrderShipped {
            order_id,
            customer_id,
            tracking_number,
            carrier,
            at,
        } => {
            let id = short(&order_id);
            let by = carrier.map(|c| format!(" with {c}")).unwrap_or_default();
            Some(Message {
                customer_id,
                order_id,
                stage: "shipped",
                channel: Channel::Sms,
                subject: format!("Order {id} shipped"),
                body: format!(
                    "Your order {id} is on its way{by}. Tracking number: {tracking_number}."
                ),
                at,
            })
        }
        OrderEvent::OrderDelivered {
            order_id,
            customer_id,
            at,
        } => {
            let id = short(&order_id);
            Some(Message {
                customer_id,
                order_id,
                stage: "delivered",
                channel: Channel::Sms,
                subject: format!("Order {id} delivered"),
                body: format!("Your order {id} was delivered. Enjoy!"),
                at,
            })
        }
        OrderEvent::OrderCancelled {
            reason: CancellationReason::PaymentFailed,
            ..
        } => None,
        OrderEvent::OrderCancelled {
            order_id,
            customer_id,
            reason: CancellationReason::PaymentTimeout,
            at,
            ..
        } => {
            let id = short(&order_id);
            email(
                customer_id,
                order_id,
                "expired",
                format!("Order {id} expired"),
                format!("Your order {id} was not paid in time, so it is cancelled and its items are released."),
                at,
            )
        }
        OrderEvent::OrderCancelled {
            order_id,
            customer_id,
            reason,
            refund_due,
            at,
            ..
        } => {
            let id = short(&order_id);
            let why = match reason {
                CancellationReason::CustomerRequest => "as you asked",
                CancellationReason::OutOfStock => "because an item is out of stock",
                _ => "by the shop",
            };
            let refund = if refund_due.minor > 0 {
                format!(" We are refunding {}.", amount(&refund_due))
            } else {
                String::new()
            };
            email(
                customer_id,
                order_id,
                "cancelled",
                format!("Order {id} is cancelled"),
                format!("Your order {id} is cancelled {why}.{refund}"),
                at,
            )
        }
        OrderEvent::OrderRefunded {
            order_id,
            customer_id,
            amount: refunded,
            at,
            ..
        } => {
            let id = short(&order_id);
            email(
                customer_id,
                order_id,
                "refunded",
                format!("Refund for order {id}"),
                format!(
                    "We refunded {} for your order {id}. It may take a few days to show.",
                    amount(&refunded)
                ),
                at,
            )
        }
        OrderEvent::StockReserved { .. }
        | OrderEvent::PaymentAuthorized { .. }
        | OrderEvent::OrderProcessingStarted { .. }
        | OrderEvent::InvoiceIssued { .. } => None,
    }
}

/// A forgotten customer: their contact details are erased, the messages
/// still waiting to be sent to them are dropped (marked failed), and the
/// recipient of every message sent to them is erased.
async fn forget(conn: &mut PgConnection, customer_id: CustomerId) -> Result<(), ApplyError> {
    sqlx::query(
        "UPDATE notification_contacts SET fullname = $2, email = $2, phone = $2
          WHERE customer_id = $1",
    )
    .bind(customer_id.as_uuid())
    .bind(ERASED)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE notifications
            SET recipient = $2,
                last_error = CASE WHEN status = 'pending' THEN $3 ELSE last_error END,
                status = CASE WHEN status = 'pending' THEN 'failed' ELSE status END
          WHERE customer_id = $1",
    )
    .bind(customer_id.as_uuid())
    .bind(ERASED)
    .bind(DROPPED)
    .execute(conn)
    .await?;
    Ok(())
}

/// Why a message to a forgotten customer was not sent.
pub const DROPPED: &str = "dropped: the customer was forgotten";

async fn queue(
    conn: &mut PgConnection,
    message: &Message,
    position: i64,
) -> Result<(), ApplyError> {
    let contact: Option<(String, String)> =
        sqlx::query_as("SELECT email, phone FROM notification_contacts WHERE customer_id = $1")
            .bind(message.customer_id.as_uuid())
            .fetch_optional(&mut *conn)
            .await?;
    let Some((email, phone)) = contact else {
        return Err(ApplyError::Poison(format!(
            "customer {} has no contact details",
            message.customer_id.as_uuid()
        )));
    };
    if email == ERASED {
        // The customer was forgotten: nobody to write to.
        return Ok(());
    }
    let recipient = match message.channel {
        Channel::Email => email,
        Channel::Sms => phone,
    };
    sqlx::query(
        "INSERT INTO notifications
             (customer_id, order_id, stage, channel, recipient, subject, body, event_position, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (event_position) DO NOTHING",
    )
    .bind(message.customer_id.as_uuid())
    .bind(message.order_id.as_uuid())
    .bind(message.stage)
    .bind(message.channel.as_str())
    .bind(recipient)
    .bind(&message.subject)
    .bind(&message.body)
    .bind(position)
    .bind(message.at)
    .execute(conn)
    .await?;
    Ok(())
}
