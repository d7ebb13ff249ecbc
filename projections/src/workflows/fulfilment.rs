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
//!
//! Group commits: many buyers of one product meet at one inventory item, and
//! every paid order meets the year's invoice numbering. So reservations and
//! settlements go through group stages ([`Stage`]): each takes every request
//! waiting when it is free and handles them together.
//!
//! - Reservations are queued as the events are read, in commit order
//!   ([`Pass::admit`]), so the stage decides every order's holds in the
//!   order the orders were placed, on in-memory copies of the items (all
//!   lines or none, exactly as one order after the other would, never more
//!   than is on hand), then places each product's holds in one `PlaceHolds`
//!   command and one event. Each order's lane then confirms the reservation
//!   or cancels the order.
//! - Settlements are queued when an order's lane reaches `PaymentCaptured`:
//!   the stage commits each product's holds with one `CommitHolds` and gets
//!   the orders' invoice numbers with one `AllocateRun` per year; each lane
//!   then issues its order's invoice.
//!
//! A lane waits for its group's answer before it acts on its order's next
//! event, so each order's events are still acted on in order. Stock a
//! cancelled order gives back counts for the reservations decided after its
//! lane released it; a reservation never waits for another order's lane.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cqrs_es::{Aggregate, AggregateError};
use domain::inventory::{HoldRequest, InventoryCommand, InventoryError, InventoryItem};
use domain::invoice::{numbering_id, InvoiceNumbering, InvoiceNumberingCommand};
use domain::order::{CancellationReason, Order, OrderCommand, OrderError, OrderEvent, OrderLine};
use domain::payment::PaymentGateway;
use domain::values::OrderId;
use domain::values::{ProductId, Quantity};
use sqlx::{PgConnection, PgPool};

use super::deadlines::{self, PAYMENT_TIMEOUT};
use super::lanes::{Group, LaneConfig, Pass, Stage, Workflow};
use super::payment::PaymentSteps;
use super::{caused_by, infrastructure, stream_failure, WorkflowSettings};
use crate::event_store::log::StoredEvent;
use crate::event_store::{streams, CommandBus};
use crate::payments::SimulatedGateway;
use crate::projector::{ApplyError, Projector};

/// This workflow's name (see [`super::FULFILMENT`]).
pub use super::FULFILMENT as NAME;

pub struct Fulfilment {
    pool: PgPool,
    orders: CommandBus<Order>,
    inventory: CommandBus<InventoryItem>,
    invoice_numbers: CommandBus<InvoiceNumbering>,
    payments: PaymentSteps,
    settings: WorkflowSettings,
}

/// A placed order waiting for its stock.
struct Reservation {
    event: Arc<StoredEvent>,
    order_id: OrderId,
}

/// What the reservation stage decided for one order.
enum Reserved {
    /// Nothing to do: reserved before, or the order moved on (e.g.
    /// cancelled) meanwhile, and its own events take care of the stock.
    Nothing,
    /// Every line is held.
    Held,
    /// A line cannot be held: the order is to be cancelled, and whatever
    /// was held for it released.
    Short {
        product_id: ProductId,
        reason: String,
        lines: Vec<OrderLine>,
    },
}

/// A paid order waiting for its stock to be taken and its invoice number.
struct Settlement {
    event: Arc<StoredEvent>,
    order_id: OrderId,
    captured_at: DateTime<Utc>,
}

/// The key of an event's request in a stage.
fn key(event: &StoredEvent) -> u64 {
    event.global_position.unsigned_abs()
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
            invoice_numbers: CommandBus::new(pool.clone(), ()),
            settings,
            pool,
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

    /// Holds every line of each placed order or none, deciding the orders
    /// in the order of `placed` (the order they were placed in); answers
    /// what each order's lane is to do.
    async fn reserve(
        &self,
        placed: &[Reservation],
    ) -> Result<Vec<Result<Reserved, String>>, ApplyError> {
        let mut answers: Vec<Result<Reserved, String>> =
            placed.iter().map(|_| Ok(Reserved::Nothing)).collect();
        let mut orders = Vec::new();
        for (index, request) in placed.iter().enumerate() {
            match self.load_order(request.order_id).await {
                // Seen before, or the order moved on (e.g. cancelled)
                // meanwhile: its own events take care of the stock.
                Ok(order) => {
                    if order.status() == domain::order::OrderStatus::Pending
                        && !order.stock_reserved()
                    {
                        orders.push((index, request.event.as_ref(), request.order_id, order));
                    }
                }
                Err(ApplyError::Poison(reason)) => answers[index] = Err(reason),
                Err(e) => return Err(e),
            }
        }
        if orders.is_empty() {
            return Ok(answers);
        }
        let now = Utc::now();
        // Every item the orders need, once, knowing whether each of these
        // owners already took stock from it.
        let mut owners: BTreeMap<ProductId, Vec<String>> = BTreeMap::new();
        for (_, _, order_id, order) in &orders {
            for line in order.lines() {
                owners
                    .entry(line.product_id)
                    .or_default()
                    .push(domain::inventory::committed_key(order_id.as_uuid()));
            }
        }
        let mut items: BTreeMap<ProductId, Option<InventoryItem>> = BTreeMap::new();
        for (product_id, keys) in &owners {
            let loaded = streams::load::<InventoryItem>(
                self.inventory.pool(),
                &product_id.to_string(),
                keys,
            )
            .await
            .map_err(stream_failure)?;
            items.insert(*product_id, loaded.exists().then_some(loaded.aggregate));
        }
        // One order after the other, all lines or none, on copies.
        let mut requests: BTreeMap<ProductId, Vec<HoldRequest>> = BTreeMap::new();
        let mut outcomes = Vec::new();
        for (index, _, order_id, order) in &orders {
            let lines: Vec<(ProductId, Quantity)> = order
                .lines()
                .iter()
                .map(|line| (line.product_id, line.quantity))
                .collect();
            let decided = domain::inventory::hold_all(
                |p| items.get(&p).and_then(Option::as_ref),
                order_id.as_uuid(),
                &lines,
                now,
            )
            .await;
            let short = match decided {
                Ok(trial) => {
                    for (product_id, item) in trial {
                        items.insert(product_id, Some(item));
                    }
                    None
                }
                Err(short) => Some(short),
            };
            if short.is_none() {
                for line in order.lines() {
                    requests
                        .entry(line.product_id)
                        .or_default()
                        .push(HoldRequest {
                            owner_id: order_id.as_uuid(),
                            quantity: line.quantity,
                            expires_at: None,
                        });
                }
            }
            outcomes.push((*index, *order_id, order, short));
        }
        // Each product's holds in one command and one event.
        let group: Vec<&StoredEvent> = orders.iter().map(|(_, event, ..)| *event).collect();
        let mut held: BTreeMap<ProductId, InventoryItem> = BTreeMap::new();
        for (product_id, mut holds) in requests {
            // One request alone needs no group.
            let (command, name) = if holds.len() == 1 {
                let hold = holds.remove(0);
                let command = InventoryCommand::PlaceHold {
                    owner_id: hold.owner_id,
                    quantity: hold.quantity,
                    expires_at: hold.expires_at,
                    now,
                };
                (command, "PlaceHold")
            } else {
                (InventoryCommand::PlaceHolds { holds, now }, "PlaceHolds")
            };
            let meta = caused_by_group(&group, name);
            match self
                .inventory
                .execute_returning_with_retry(&product_id.to_string(), command, &meta)
                .await
            {
                Ok((_, item)) => {
                    held.insert(product_id, item);
                }
                // Taken meanwhile (the check below cancels the order).
                Err(AggregateError::UserError(
                    InventoryError::NotStocked | InventoryError::InsufficientStock { .. },
                )) => {}
                Err(e) => return Err(infrastructure(e)),
            }
        }
        for (index, order_id, order, short) in outcomes {
            // The item may have changed since it was read (a correction, say):
            // what counts is what is held now.
            let short = short.or_else(|| {
                order.lines().iter().find_map(|line| {
                    let holds = held.get(&line.product_id).is_some_and(|item| {
                        item.hold(order_id.as_uuid()).is_some()
                            || item.committed_quantity(order_id.as_uuid()).is_some()
                    });
                    (!holds).then_some((line.product_id, InventoryError::NotStocked))
                })
            });
            answers[index] = Ok(match short {
                Some((product_id, reason)) => Reserved::Short {
                    product_id,
                    reason: reason.to_string(),
                    lines: order.lines().to_vec(),
                },
                None => Reserved::Held,
            });
        }
        Ok(answers)
    }

    /// Acts on the reservation stage's answer for the order placed by
    /// `event`: confirms it, or releases what is held and cancels it.
    async fn reserved(
        &self,
        event: &StoredEvent,
        order_id: OrderId,
        reserved: Reserved,
    ) -> Result<(), ApplyError> {
        match reserved {
            Reserved::Nothing => Ok(()),
            Reserved::Held => {
                let command = OrderCommand::ConfirmStockReserved { now: Utc::now() };
                self.order_command(event, order_id, command, "ConfirmStockReserved")
                    .await
            }
            Reserved::Short {
                product_id,
                reason,
                lines,
            } => {
                tracing::info!(%order_id, %product_id, %reason, "cannot hold stock for the order; cancelling it");
                self.release(event, order_id, &lines).await?;
                let command = OrderCommand::Cancel {
                    reason: CancellationReason::OutOfStock,
                    now: Utc::now(),
                };
                self.order_command(event, order_id, command, "Cancel").await
            }
        }
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

    /// For paid orders without an invoice yet: commits each order's hold on
    /// every line (one `CommitHolds` per product), then gives each order the
    /// next invoice number of the year its payment was captured in (UTC; one
    /// `AllocateRun` per year). Answers each order's number (`None`: it has
    /// an invoice), which its lane then issues.
    ///
    /// The numbering remembers which order got which number: allocating
    /// again for an order (the event seen twice, or a crash between the
    /// steps) answers the same number, and the order accepts `IssueInvoice`
    /// for any captured payment, so a number once given always lands on its
    /// order: no gap, no reuse.
    async fn settle(
        &self,
        captured: &[Settlement],
    ) -> Result<Vec<Result<Option<String>, String>>, ApplyError> {
        let mut answers: Vec<Result<Option<String>, String>> = vec![Ok(None); captured.len()];
        let mut orders = Vec::new();
        for (index, request) in captured.iter().enumerate() {
            match self.load_order(request.order_id).await {
                Ok(order) => {
                    if order.invoice_number().is_none() {
                        orders.push((
                            request.event.as_ref(),
                            request.order_id,
                            request.captured_at,
                            order,
                        ));
                    }
                }
                Err(ApplyError::Poison(reason)) => answers[index] = Err(reason),
                Err(e) => return Err(e),
            }
        }
        if orders.is_empty() {
            return Ok(answers);
        }
        let group: Vec<&StoredEvent> = orders.iter().map(|(event, ..)| *event).collect();
        self.commit(&group, &orders).await?;
        let mut years: BTreeMap<i32, Vec<OrderId>> = BTreeMap::new();
        for (_, order_id, captured_at, _) in &orders {
            years
                .entry(chrono::Datelike::year(captured_at))
                .or_default()
                .push(*order_id);
        }
        let mut numbers: BTreeMap<OrderId, String> = BTreeMap::new();
        for (year, order_ids) in years {
            let command = match order_ids.as_slice() {
                [order_id] => InvoiceNumberingCommand::Allocate {
                    year,
                    order_id: *order_id,
                    now: Utc::now(),
                },
                _ => InvoiceNumberingCommand::AllocateRun {
                    year,
                    orders: order_ids.clone(),
                    now: Utc::now(),
                },
            };
            let meta = caused_by_group(&group, "AllocateInvoiceNumbers");
            let (_, numbering) = self
                .invoice_numbers
                .execute_returning_with_retry(&numbering_id(year).to_string(), command, &meta)
                .await
                .map_err(infrastructure)?;
            for order_id in order_ids {
                let number = numbering.invoice_number_of(order_id).ok_or_else(|| {
                    ApplyError::Poison(format!("no invoice number was recorded for {order_id}"))
                })?;
                numbers.insert(order_id, number);
            }
        }
        for (request, answer) in captured.iter().zip(answers.iter_mut()) {
            if answer.is_ok() {
                if let Some(number) = numbers.get(&request.order_id) {
                    *answer = Ok(Some(number.clone()));
                }
            }
        }
        Ok(answers)
    }

    /// Commits the orders' holds: for each product, the owners holding stock
    /// now in one `CommitHolds`. A line without a hold (committed before, or
    /// never reserved, e.g. an order placed before this workflow ran) goes
    /// through `CommitHold`, which knows a commit already made, and is
    /// otherwise decremented directly, once per order.
    async fn commit(
        &self,
        group: &[&StoredEvent],
        orders: &[(&StoredEvent, OrderId, DateTime<Utc>, Order)],
    ) -> Result<(), ApplyError> {
        let mut lines: BTreeMap<ProductId, Vec<(&StoredEvent, OrderId, &OrderLine)>> =
            BTreeMap::new();
        for (event, order_id, _, order) in orders {
            for line in order.lines() {
                lines
                    .entry(line.product_id)
                    .or_default()
                    .push((event, *order_id, line));
            }
        }
        for (product_id, lines) in lines {
            let product = product_id.to_string();
            let item = self
                .inventory
                .load(&product)
                .await
                .map_err(infrastructure)?;
            let (with_hold, without): (Vec<_>, Vec<_>) =
                lines.into_iter().partition(|(_, o, _)| {
                    item.as_ref()
                        .is_some_and(|item| item.hold(o.as_uuid()).is_some())
                });
            if with_hold.len() > 1 {
                let command = InventoryCommand::CommitHolds {
                    owner_ids: with_hold.iter().map(|(_, o, _)| o.as_uuid()).collect(),
                };
                let meta = caused_by_group(group, "CommitHolds");
                self.inventory
                    .execute_with_retry(&product, command, &meta)
                    .await
                    .map_err(infrastructure)?;
            }
            // One line alone needs no group.
            let single = (with_hold.len() == 1).then(|| with_hold[0]);
            for (event, order_id, line) in single.into_iter().chain(without) {
                self.commit_line(event, order_id, line).await?;
            }
        }
        Ok(())
    }

    /// Commits one line's hold, or decrements the stock for it when it has
    /// none (once per order).
    async fn commit_line(
        &self,
        event: &StoredEvent,
        order_id: OrderId,
        line: &OrderLine,
    ) -> Result<(), ApplyError> {
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
            Ok(_) => Ok(()),
            Err(AggregateError::UserError(e)) => {
                // Paid for but not in stock: an operator has to sort it out;
                // repeating the event would not help.
                tracing::error!(%order_id, product_id = %line.product_id, reason = %e, "cannot take the paid stock");
                Ok(())
            }
            Err(e) => Err(infrastructure(e)),
        }
    }

    /// Acts on one event that is not grouped.
    async fn handle_one(
        &self,
        event: &StoredEvent,
        order_event: OrderEvent,
    ) -> Result<(), ApplyError> {
        match order_event {
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
            _ => Ok(()),
        }
    }

    /// Schedules the payment timeout of a placed order, in a statement of
    /// its own (already scheduled: nothing changes).
    async fn schedule_timeout(
        &self,
        order_id: OrderId,
        placed_at: DateTime<Utc>,
    ) -> Result<(), ApplyError> {
        let timeout = chrono::Duration::from_std(self.settings.payment_timeout)
            .unwrap_or(chrono::Duration::MAX);
        let due_at = placed_at.checked_add_signed(timeout).unwrap_or(placed_at);
        deadlines::schedule(
            &self.pool,
            PAYMENT_TIMEOUT,
            &order_id.to_string(),
            due_at,
            &serde_json::json!({}),
        )
        .await
        .map_err(ApplyError::Database)
    }

    /// Acts on one order event. `stages`: the group stages of the pass in
    /// lanes; without them (one event alone) each group is of one.
    async fn act(
        &self,
        event: &Arc<StoredEvent>,
        stages: Option<&Lanes>,
    ) -> Result<(), ApplyError> {
        let order_event: OrderEvent = event.decode()?;
        match order_event {
            OrderEvent::OrderPlaced {
                order_id,
                placed_at,
                ..
            } => {
                self.schedule_timeout(order_id, placed_at).await?;
                let request = || Reservation {
                    event: event.clone(),
                    order_id,
                };
                let reserved = match stages {
                    Some(stages) => stages.reservations.answer(key(event), request).await?,
                    None => alone(self.reserve(&[request()]).await)?,
                };
                self.reserved(event, order_id, reserved).await
            }
            OrderEvent::PaymentCaptured { order_id, at, .. } => {
                let request = || Settlement {
                    event: event.clone(),
                    order_id,
                    captured_at: at,
                };
                let number = match stages {
                    Some(stages) => stages.settlements.answer(key(event), request).await?,
                    None => alone(self.settle(&[request()]).await)?,
                };
                let Some(invoice_number) = number else {
                    return Ok(());
                };
                let command = OrderCommand::IssueInvoice {
                    invoice_number,
                    now: Utc::now(),
                };
                self.order_command(event, order_id, command, "IssueInvoice")
                    .await
            }
            other => self.handle_one(event, other).await,
        }
    }
}

/// The answer of a group of one.
fn alone<A>(answers: Result<Vec<Result<A, String>>, ApplyError>) -> Result<A, ApplyError> {
    answers?
        .pop()
        .unwrap_or_else(|| Err("the group gave no answer".to_string()))
        .map_err(ApplyError::Poison)
}

/// Metadata of a command a workflow sends for a group of events: the first
/// event's correlation, and the group's positions as the cause.
fn caused_by_group(group: &[&StoredEvent], command: &str) -> domain::metadata::CommandMetadata {
    match group {
        [] => domain::metadata::CommandMetadata::new(
            domain::metadata::Actor::System(NAME.to_string()),
            format!("{NAME}-group"),
            command,
        ),
        [one] => caused_by(NAME, one, command),
        [first, .., last] => caused_by(NAME, first, command).caused_by(format!(
            "events-{}..{} ({} orders)",
            first.global_position,
            last.global_position,
            group.len()
        )),
    }
}

/// The reservation stage's work.
struct Reservations(Arc<Fulfilment>);

#[async_trait]
impl Group for Reservations {
    type Request = Reservation;
    type Answer = Reserved;

    async fn handle(
        &self,
        requests: &[Reservation],
    ) -> Result<Vec<Result<Reserved, String>>, ApplyError> {
        self.0.reserve(requests).await
    }
}

/// The settlement stage's work.
struct Settlements(Arc<Fulfilment>);

#[async_trait]
impl Group for Settlements {
    type Request = Settlement;
    type Answer = Option<String>;

    async fn handle(
        &self,
        requests: &[Settlement],
    ) -> Result<Vec<Result<Option<String>, String>>, ApplyError> {
        self.0.settle(requests).await
    }
}

/// One pass of the workflow in lanes: its group stages.
struct Lanes {
    workflow: Arc<Fulfilment>,
    reservations: Stage<Reservations>,
    settlements: Stage<Settlements>,
}

#[async_trait]
impl Pass for Lanes {
    /// Queues each placed order's reservation as the event is read, so the
    /// stage decides them in commit order.
    fn admit(&self, event: &Arc<StoredEvent>) {
        if event.event_type != "OrderPlaced" {
            return;
        }
        if let Ok(OrderEvent::OrderPlaced { order_id, .. }) = event.decode() {
            let request = Reservation {
                event: event.clone(),
                order_id,
            };
            self.reservations.enqueue(key(event), request);
        }
    }

    async fn act(&self, event: &Arc<StoredEvent>) -> Result<(), ApplyError> {
        self.workflow.act(event, Some(self)).await
    }
}

impl Workflow for Fulfilment {
    fn lane_config(&self) -> LaneConfig {
        LaneConfig {
            lanes: self.settings.lanes.max(1),
            ..LaneConfig::default()
        }
    }

    fn start(self: Arc<Self>) -> Arc<dyn Pass> {
        Arc::new(Lanes {
            reservations: Stage::new(Reservations(self.clone())),
            settlements: Stage::new(Settlements(self.clone())),
            workflow: self,
        })
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

    /// Acts on one event alone, with groups of one and nothing written in
    /// `conn`. The runtime runs the workflow in lanes
    /// ([`Projector::workflow`]); this is for a caller that steps it as a
    /// plain projector.
    async fn apply(&self, _conn: &mut PgConnection, event: &StoredEvent) -> Result<(), ApplyError> {
        self.act(&Arc::new(event.clone()), None).await
    }

    fn workflow(self: Arc<Self>) -> Option<Arc<dyn Workflow>> {
        Some(self)
    }
}
