//! The fulfilment workflow, first part: stock.
//!
//! - `OrderPlaced`: schedules the payment timeout, then holds stock for every
//!   line (owner: the order id). All held: `ConfirmStockReserved`. A line that
//!   cannot be held (not enough stock, or never stocked): the holds already
//!   made are released and the order is cancelled with `out_of_stock`.
//! - `OrderCancelled` (any reason, by anyone): every hold of the order is
//!   released, and stock a paid order had taken goes back on hand.
//! - `PaymentCaptured`: every line's hold is committed (a permanent
//!   decrement), then the invoice is issued (see [`Fulfilment::invoice`]).
//! - The payment timeout (see [`super::deadlines`]) expires an order still
//!   pending; its `OrderCancelled` then releases the holds.
//! - Payment (see [`super::payment`]): `StockReserved` takes the order's
//!   total by card or from the wallet; `OrderCancelled` with money captured
//!   refunds the order; `OrderRefunded` returns the money.
//!
//! Every step is safe to repeat: a hold of the same owner and quantity again,
//! a release without a hold and a commit already made change nothing, and
//! the order answers a repeated confirmation or cancellation with no event.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use cqrs_es::{Aggregate, AggregateError};
use domain::inventory::{InventoryCommand, InventoryError, InventoryItem};
use domain::invoice::{numbering_id, InvoiceNumbering, InvoiceNumberingCommand};
use domain::order::{CancellationReason, Order, OrderCommand, OrderError, OrderEvent, OrderLine};
use domain::payment::PaymentGateway;
use domain::values::OrderId;
use sqlx::{PgConnection, PgPool};

use super::deadlines::{self, PAYMENT_TIMEOUT};
use super::payment::PaymentSteps;
use super::{caused_by, infrastructure, WorkflowSettings};
use crate::event_store::log::StoredEvent;
use crate::event_store::CommandBus;
use crate::payments::SimulatedGateway;
use crate::read_models::decode;
use crate::runtime::{ApplyError, Projector};

pub const NAME: &str = "fulfilment";

pub struct Fulfilment {
    orders: CommandBus<Order>,
    inventory: CommandBus<InventoryItem>,
    invoice_numbers: CommandBus<InvoiceNumbering>,
    payments: PaymentSteps,
    settings: WorkflowSettings,
}

impl Fulfilment {
    /// The workflow with the simulated payment gateway.
    pub fn new(pool: PgPool, settings: WorkflowSettings) -> Self {
        let gateway = Arc::new(SimulatedGateway::new(pool.clone()));
        Self::with_gateway(pool, settings, gateway)
    }

    pub fn with_gateway(
        pool: PgPool,
        settings: WorkflowSettings,
        gateway: Arc<dyn PaymentGateway>,
    ) -> Self {
        Self {
            payments: PaymentSteps::new(pool.clone(), gateway),
            orders: CommandBus::new(pool.clone(), ()),
            inventory: CommandBus::new(pool.clone(), ()),
            invoice_numbers: CommandBus::new(pool, ()),
            settings,
        }
    }

    /// The order as its events say now.
    async fn load_order(&self, order_id: OrderId) -> Result<Order, ApplyError> {
        self.orders
            .load(&order_id.to_string())
            .await
            .map_err(infrastructure)?
            .ok_or_else(|| ApplyError::Poison(format!("order {order_id} has no events")))
    }

    /// Holds every line or none; then confirms the reservation or cancels
    /// the order with `out_of_stock`.
    async fn reserve(&self, event: &StoredEvent, order_id: OrderId) -> Result<(), ApplyError> {
        let order = self.load_order(order_id).await?;
        if order.status() != domain::order::OrderStatus::Pending || order.stock_reserved() {
            // Seen before, or the order moved on (e.g. cancelled) meanwhile;
            // its own events take care of the stock.
            return Ok(());
        }
        let lines = order.lines();
        let mut short = None;
        for line in lines {
            let command = InventoryCommand::PlaceHold {
                owner_id: order_id.as_uuid(),
                quantity: line.quantity,
                expires_at: None,
                now: Utc::now(),
            };
            let meta = caused_by(NAME, event, "PlaceHold");
            match self
                .inventory
                .execute_with_retry(&line.product_id.to_string(), command, &meta)
                .await
            {
                Ok(_) => {}
                Err(AggregateError::UserError(
                    e @ (InventoryError::InsufficientStock { .. } | InventoryError::NotStocked),
                )) => {
                    short = Some((line.product_id, e));
                    break;
                }
                Err(e) => return Err(infrastructure(e)),
            }
        }
        if let Some((product_id, reason)) = short {
            tracing::info!(%order_id, %product_id, %reason, "cannot hold stock for the order; cancelling it");
            self.release(event, order_id, lines).await?;
            let command = OrderCommand::Cancel {
                reason: CancellationReason::OutOfStock,
                now: Utc::now(),
            };
            return self.order_command(event, order_id, command, "Cancel").await;
        }
        let command = OrderCommand::ConfirmStockReserved { now: Utc::now() };
        self.order_command(event, order_id, command, "ConfirmStockReserved")
            .await
    }

    /// Sends `command` to the order. A refusal because the order moved on
    /// meanwhile (e.g. the customer cancelled it) is an outcome, not a fault:
    /// the order's later events are handled in turn.
    async fn order_command(
        &self,
        event: &StoredEvent,
        order_id: OrderId,
        command: OrderCommand,
        name: &str,
    ) -> Result<(), ApplyError> {
        let meta = caused_by(NAME, event, name);
        match self
            .orders
            .execute_with_retry(&order_id.to_string(), command, &meta)
            .await
        {
            Ok(_) => Ok(()),
            Err(AggregateError::UserError(
                e @ (OrderError::NotPending { .. } | OrderError::IllegalTransition { .. }),
            )) => {
                tracing::info!(%order_id, command = name, reason = %e, "the order moved on; nothing to do");
                Ok(())
            }
            Err(e) => Err(infrastructure(e)),
        }
    }

    /// Releases the order's hold on every line (no hold: nothing happens).
    async fn release(
        &self,
        event: &StoredEvent,
        order_id: OrderId,
        lines: &[OrderLine],
    ) -> Result<(), ApplyError> {
        for line in lines {
            let command = InventoryCommand::ReleaseHold {
                owner_id: order_id.as_uuid(),
            };
            let meta = caused_by(NAME, event, "ReleaseHold");
            self.inventory
                .execute_with_retry(&line.product_id.to_string(), command, &meta)
                .await
                .map_err(infrastructure)?;
        }
        Ok(())
    }

    /// Puts back on hand what a cancelled order had taken for good (after it
    /// was paid); a line that took nothing gives nothing back.
    async fn return_stock(
        &self,
        event: &StoredEvent,
        order_id: OrderId,
        lines: &[OrderLine],
    ) -> Result<(), ApplyError> {
        for line in lines {
            let command = InventoryCommand::ReturnOrderStock { order_id };
            let meta = caused_by(NAME, event, "ReturnOrderStock");
            self.inventory
                .execute_with_retry(&line.product_id.to_string(), command, &meta)
                .await
                .map_err(infrastructure)?;
        }
        Ok(())
    }

    /// Commits the order's hold on every line. A line without a hold (never
    /// reserved, e.g. an order placed before this workflow ran) is
    /// decremented directly, once per order.
    async fn commit(&self, event: &StoredEvent, order_id: OrderId) -> Result<(), ApplyError> {
        let order = self.load_order(order_id).await?;
        for line in order.lines() {
            let product = line.product_id.to_string();
            let command = InventoryCommand::CommitHold {
                owner_id: order_id.as_uuid(),
            };
            let meta = caused_by(NAME, event, "CommitHold");
            let result = match self
                .inventory
                .execute_with_retry(&product, command, &meta)
                .await
            {
                Err(AggregateError::UserError(InventoryError::NoSuchHold { .. })) => {
                    let command = InventoryCommand::Decrement {
                        order_id,
                        quantity: line.quantity,
                    };
                    let meta = caused_by(NAME, event, "Decrement");
                    self.inventory
                        .execute_with_retry(&product, command, &meta)
                        .await
                }
                other => other,
            };
            match result {
                Ok(_) => {}
                Err(AggregateError::UserError(e)) => {
                    // Paid for but not in stock: an operator has to sort it
                    // out; repeating the event would not help.
                    tracing::error!(%order_id, product_id = %line.product_id, reason = %e, "cannot take the paid stock");
                }
                Err(e) => return Err(infrastructure(e)),
            }
        }
        Ok(())
    }

    /// Issues the paid order's invoice with the next number of the year the
    /// payment was captured in (UTC).
    ///
    /// The number comes from that year's [`InvoiceNumbering`], which records
    /// the order it gave it to: allocating again for the same order (the
    /// event seen twice, or a crash between the two steps) answers the same
    /// number, and the order accepts `IssueInvoice` for any captured payment,
    /// so a number once given always lands on its order: no gap, no reuse.
    async fn invoice(
        &self,
        event: &StoredEvent,
        order_id: OrderId,
        captured_at: chrono::DateTime<Utc>,
    ) -> Result<(), ApplyError> {
        let order = self.load_order(order_id).await?;
        if order.invoice_number().is_some() {
            return Ok(());
        }
        let year = chrono::Datelike::year(&captured_at);
        let numbering = numbering_id(year).to_string();
        let command = InvoiceNumberingCommand::Allocate {
            year,
            order_id,
            now: Utc::now(),
        };
        let meta = caused_by(NAME, event, "AllocateInvoiceNumber");
        self.invoice_numbers
            .execute_with_retry(&numbering, command, &meta)
            .await
            .map_err(infrastructure)?;
        let invoice_number = self
            .invoice_numbers
            .load(&numbering)
            .await
            .map_err(infrastructure)?
            .and_then(|n| n.invoice_number_of(order_id))
            .ok_or_else(|| {
                ApplyError::Poison(format!("no invoice number was recorded for {order_id}"))
            })?;
        let command = OrderCommand::IssueInvoice {
            invoice_number,
            now: Utc::now(),
        };
        self.order_command(event, order_id, command, "IssueInvoice")
            .await
    }
}

#[async_trait]
impl Projector for Fulfilment {
    fn name(&self) -> &'static str {
        NAME
    }

    /// A workflow keeps no read model: never rebuilt.
    fn tables(&self) -> &'static [&'static str] {
        &[]
    }

    fn handles(&self, aggregate_type: &str) -> bool {
        aggregate_type == Order::TYPE
    }

    async fn apply(&self, conn: &mut PgConnection, event: &StoredEvent) -> Result<(), ApplyError> {
        let order_event: OrderEvent = decode(event)?;
        match order_event {
            OrderEvent::OrderPlaced {
                order_id,
                placed_at,
                ..
            } => {
                let timeout = chrono::Duration::from_std(self.settings.payment_timeout)
                    .unwrap_or(chrono::Duration::MAX);
                let due_at = placed_at.checked_add_signed(timeout).unwrap_or(placed_at);
                deadlines::schedule(
                    conn,
                    PAYMENT_TIMEOUT,
                    &order_id.to_string(),
                    due_at,
                    &serde_json::json!({}),
                )
                .await
                .map_err(ApplyError::Database)?;
                self.reserve(event, order_id).await
            }
            OrderEvent::OrderCancelled {
                order_id,
                refund_due,
                ..
            } => {
                let order = self.load_order(order_id).await?;
                self.release(event, order_id, order.lines()).await?;
                self.return_stock(event, order_id, order.lines()).await?;
                if refund_due.minor > 0 {
                    self.payments.refund_cancelled(event, order_id).await?;
                }
                Ok(())
            }
            OrderEvent::StockReserved { order_id, .. } => {
                let order = self.load_order(order_id).await?;
                self.payments.take_payment(event, &order).await
            }
            OrderEvent::OrderRefunded {
                order_id,
                amount,
                total_refunded,
                ..
            } => {
                let order = self.load_order(order_id).await?;
                self.payments
                    .give_back(event, &order, amount, &total_refunded)
                    .await
            }
            OrderEvent::PaymentCaptured { order_id, at, .. } => {
                self.commit(event, order_id).await?;
                self.invoice(event, order_id, at).await
            }
            _ => Ok(()),
        }
    }
}
