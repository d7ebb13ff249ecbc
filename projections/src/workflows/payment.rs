//! The fulfilment workflow's payment steps.
//!
//! - `StockReserved`: the order's total is taken. By card: a charge with the
//!   order's token, reference `order:<id>` (so a repeat is the same charge);
//!   its outcome arrives as a gateway callback (see [`crate::payments`]),
//!   which captures the payment or fails it. From the wallet: a debit with
//!   reference `order:<id>` (once per order), then `CapturePayment` at once;
//!   too small a balance fails the payment (`insufficient_funds`). An order
//!   whose total is zero is captured as it is.
//! - `OrderCancelled` with `refund_due > 0`: the order is refunded
//!   (`Refund` of everything captured), which records `OrderRefunded`.
//! - `OrderRefunded`: the amount goes back where it came from, once per
//!   refund (reference `refund:<order id>:<total refunded>`): to the card
//!   through the gateway, or to the wallet balance.

use std::sync::Arc;

use chrono::Utc;
use cqrs_es::{Aggregate, AggregateError};
use domain::order::{Order, OrderCommand, OrderEvent, PaymentMethodKind};
use domain::payment::{ChargeRequest, GatewayError, PaymentGateway, PaymentSource, RefundRequest};
use domain::values::{Money, OrderId};
use domain::wallet::{wallet_id, Wallet, WalletCommand, WalletError};
use sqlx::PgPool;

use super::{caused_by, infrastructure, FULFILMENT};
use crate::event_store::log::StoredEvent;
use crate::event_store::CommandBus;
use crate::payments::ChargeFor;
use crate::projector::ApplyError;

pub(crate) struct PaymentSteps {
    pool: PgPool,
    orders: CommandBus<Order>,
    wallets: CommandBus<Wallet>,
    gateway: Arc<dyn PaymentGateway>,
}

/// The gateway cannot be reached now: the step is tried again later.
fn gateway_down(error: GatewayError) -> ApplyError {
    ApplyError::Retry(error.to_string())
}

impl PaymentSteps {
    pub(crate) fn new(pool: PgPool, gateway: Arc<dyn PaymentGateway>) -> Self {
        Self {
            orders: CommandBus::new(pool.clone(), ()),
            wallets: CommandBus::new(pool.clone(), ()),
            gateway,
            pool,
        }
    }

    /// Sends `command` to the order; answers whether the order took it
    /// (`false`: the order refused it, e.g. it was cancelled meanwhile).
    async fn order_command(
        &self,
        event: &StoredEvent,
        order_id: OrderId,
        command: OrderCommand,
        name: &str,
    ) -> Result<bool, ApplyError> {
        let meta = caused_by(FULFILMENT, event, name);
        match self
            .orders
            .execute_with_retry(&order_id.to_string(), command, &meta)
            .await
        {
            Ok(_) => Ok(true),
            Err(AggregateError::UserError(e)) => {
                tracing::info!(%order_id, command = name, reason = %e, "the order refused a payment step");
                Ok(false)
            }
            Err(e) => Err(infrastructure(e)),
        }
    }

    async fn fail(
        &self,
        event: &StoredEvent,
        order_id: OrderId,
        reason: &str,
    ) -> Result<(), ApplyError> {
        let command = OrderCommand::FailPayment {
            reason: reason.to_string(),
            now: Utc::now(),
        };
        self.order_command(event, order_id, command, "FailPayment")
            .await
            .map(|_| ())
    }

    /// The card token the order was placed with (kept only in its
    /// `OrderPlaced` event).
    async fn card_token(&self, order_id: OrderId) -> Result<Option<String>, ApplyError> {
        let payload = crate::event_store::lookups::first_payload_of_type(
            &self.pool,
            Order::TYPE,
            &order_id.to_string(),
            "OrderPlaced",
        )
        .await
        .map_err(ApplyError::Database)?;
        let Some(payload) = payload else {
            return Ok(None);
        };
        let placed: OrderEvent = serde_json::from_value(payload)
            .map_err(|e| ApplyError::Poison(format!("cannot read OrderPlaced: {e}")))?;
        Ok(match placed {
            OrderEvent::OrderPlaced { payment_token, .. } => payment_token,
            _ => None,
        })
    }

    /// Takes the order's total (see the module doc). Safe to repeat.
    pub(crate) async fn take_payment(
        &self,
        event: &StoredEvent,
        order: &Order,
    ) -> Result<(), ApplyError> {
        let Some(order_id) = order.order_id() else {
            return Ok(());
        };
        if order.status() != domain::order::OrderStatus::Pending {
            // Cancelled (or paid) meanwhile: nothing to take.
            return Ok(());
        }
        let total = order.total().clone();
        if total.minor == 0 {
            let command = OrderCommand::CapturePayment {
                payment_id: PaymentSource::Free(order_id).to_string(),
                amount: total,
                now: Utc::now(),
            };
            return self
                .order_command(event, order_id, command, "CapturePayment")
                .await
                .map(|_| ());
        }
        match order.payment_method() {
            Some(PaymentMethodKind::Card) => {
                let Some(token) = self.card_token(order_id).await? else {
                    return self.fail(event, order_id, "payment_token_missing").await;
                };
                let request = ChargeRequest {
                    reference: ChargeFor::Order(order_id).reference(),
                    customer_id: order.customer_id(),
                    token,
                    amount: total,
                };
                match self.gateway.charge(request).await {
                    // The outcome comes back through the webhook.
                    Ok(charge_id) => {
                        tracing::info!(%order_id, %charge_id, "card charge requested");
                        Ok(())
                    }
                    Err(e @ GatewayError::Unavailable(_)) => Err(gateway_down(e)),
                    Err(e) => self.fail(event, order_id, &e.to_string()).await,
                }
            }
            Some(PaymentMethodKind::Wallet) => {
                let customer_id = order.customer_id();
                let command = WalletCommand::Debit {
                    customer_id,
                    reference: ChargeFor::Order(order_id).reference(),
                    amount: total.clone(),
                };
                let meta = caused_by(FULFILMENT, event, "DebitWallet");
                match self
                    .wallets
                    .execute_with_retry(&wallet_id(customer_id).to_string(), command, &meta)
                    .await
                {
                    Ok(_) => {}
                    Err(AggregateError::UserError(WalletError::InsufficientFunds { .. })) => {
                        return self.fail(event, order_id, "insufficient_funds").await;
                    }
                    Err(AggregateError::UserError(e)) => {
                        return self.fail(event, order_id, &e.to_string()).await;
                    }
                    Err(e) => return Err(infrastructure(e)),
                }
                let command = OrderCommand::CapturePayment {
                    payment_id: PaymentSource::Wallet(order_id).to_string(),
                    amount: total.clone(),
                    now: Utc::now(),
                };
                if !self
                    .order_command(event, order_id, command, "CapturePayment")
                    .await?
                {
                    // Debited, but the order moved on (cancelled before the
                    // capture): the money goes straight back.
                    self.credit_wallet(event, order, format!("void:order:{order_id}"), total)
                        .await?;
                }
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// A cancelled order with captured money is refunded in full; the
    /// refund's own event then returns the money.
    pub(crate) async fn refund_cancelled(
        &self,
        event: &StoredEvent,
        order_id: OrderId,
    ) -> Result<(), ApplyError> {
        let command = OrderCommand::Refund {
            amount: None,
            reason: "order cancelled after payment".to_string(),
            now: Utc::now(),
        };
        self.order_command(event, order_id, command, "Refund")
            .await
            .map(|_| ())
    }

    /// Returns a refund's `amount` to where the payment came from, once per
    /// refund event.
    pub(crate) async fn give_back(
        &self,
        event: &StoredEvent,
        order: &Order,
        amount: Money,
        total_refunded: &Money,
    ) -> Result<(), ApplyError> {
        let Some(order_id) = order.order_id() else {
            return Ok(());
        };
        if amount.minor <= 0 {
            return Ok(());
        }
        let reference = format!("refund:{order_id}:{}", total_refunded.minor);
        let paid_from_wallet = matches!(
            order.payment_id().map(str::parse),
            Some(Ok(PaymentSource::Wallet(_)))
        );
        match order.payment_method() {
            Some(PaymentMethodKind::Wallet) if paid_from_wallet => {
                self.credit_wallet(event, order, reference, amount).await
            }
            Some(PaymentMethodKind::Card) => {
                let request = RefundRequest {
                    reference,
                    charge_reference: ChargeFor::Order(order_id).reference(),
                    amount,
                };
                match self.gateway.refund(request).await {
                    Ok(refund_id) => {
                        tracing::info!(%order_id, %refund_id, "card refund made");
                        Ok(())
                    }
                    Err(e @ GatewayError::Unavailable(_)) => Err(gateway_down(e)),
                    Err(e) => {
                        // No charge of ours to refund (e.g. paid another
                        // way): an operator has to return this by hand.
                        tracing::error!(%order_id, reason = %e, "cannot refund the card");
                        Ok(())
                    }
                }
            }
            _ => {
                tracing::error!(%order_id, payment_id = ?order.payment_id(), "refunded, but not paid through the wallet or the gateway; returning the money needs an operator");
                Ok(())
            }
        }
    }

    async fn credit_wallet(
        &self,
        event: &StoredEvent,
        order: &Order,
        reference: String,
        amount: Money,
    ) -> Result<(), ApplyError> {
        let customer_id = order.customer_id();
        let command = WalletCommand::Credit {
            customer_id,
            reference,
            amount,
        };
        let meta = caused_by(FULFILMENT, event, "CreditWallet");
        match self
            .wallets
            .execute_with_retry(&wallet_id(customer_id).to_string(), command, &meta)
            .await
        {
            Ok(_) => Ok(()),
            Err(AggregateError::UserError(e)) => {
                tracing::error!(order_id = ?order.order_id(), reason = %e, "cannot credit the wallet");
                Ok(())
            }
            Err(e) => Err(infrastructure(e)),
        }
    }
}
