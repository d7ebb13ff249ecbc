//! The simulated payment gateway.

use async_trait::async_trait;
use chrono::Utc;
use domain::payment::{
    validate_card, CardDetails, CardToken, ChargeRequest, GatewayError, PaymentGateway,
    RefundRequest, TokenOwner, TOKEN_NOT_OWNED,
};
use domain::values::CustomerId;
use sqlx::PgPool;
use uuid::Uuid;

use super::{Behaviour, TEST_TOKENS};

/// The default gateway: decides charges by the card's behaviour (the test
/// cards and tokens of the API contract; every other card approves) and
/// answers them through [`super::CallbackDelivery`].
#[derive(Clone)]
pub struct SimulatedGateway {
    pool: PgPool,
}

impl SimulatedGateway {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// What charging `token` does and whom it belongs to; `None` for a
    /// token the gateway never issued.
    async fn card(&self, token: &str) -> Result<Option<(Behaviour, TokenOwner)>, GatewayError> {
        if let Some((_, behaviour)) = TEST_TOKENS.iter().find(|(t, _)| *t == token) {
            return Ok(Some((*behaviour, TokenOwner::Anyone)));
        }
        let stored: Option<(String, Uuid)> =
            sqlx::query_as("SELECT behaviour, customer_id FROM gateway_cards WHERE token = $1")
                .bind(token)
                .fetch_optional(&self.pool)
                .await
                .map_err(unavailable)?;
        Ok(stored.and_then(|(behaviour, owner)| {
            let owner = TokenOwner::Customer(CustomerId(owner));
            Behaviour::parse(&behaviour).map(|behaviour| (behaviour, owner))
        }))
    }
}

fn unavailable(error: sqlx::Error) -> GatewayError {
    GatewayError::Unavailable(error.to_string())
}

#[async_trait]
impl PaymentGateway for SimulatedGateway {
    async fn tokenize(
        &self,
        customer_id: CustomerId,
        card: CardDetails,
    ) -> Result<CardToken, GatewayError> {
        let valid = validate_card(&card)?;
        let behaviour = Behaviour::of_card(&valid, Utc::now());
        let token = format!("tok_{}", Uuid::new_v4().simple());
        sqlx::query(
            "INSERT INTO gateway_cards (token, customer_id, brand, last4, behaviour)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&token)
        .bind(customer_id.as_uuid())
        .bind(&valid.brand)
        .bind(&valid.last4)
        .bind(behaviour.as_str())
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(CardToken {
            token,
            brand: valid.brand,
            last4: valid.last4,
        })
    }

    async fn token_owner(&self, token: &str) -> Result<TokenOwner, GatewayError> {
        Ok(self
            .card(token)
            .await?
            .map_or(TokenOwner::Unknown, |(_, owner)| owner))
    }

    async fn charge(&self, request: ChargeRequest) -> Result<String, GatewayError> {
        let (outcome, reason) = match self.card(&request.token).await? {
            // Decided without taking money: the card is someone else's.
            Some((_, owner)) if !owner.may_be_used_by(request.customer_id) => {
                ("failed", Some(TOKEN_NOT_OWNED))
            }
            Some((Behaviour::Approve, _)) => ("succeeded", None),
            Some((Behaviour::Decline, _)) => ("failed", Some("card_declined")),
            Some((Behaviour::InsufficientFunds, _)) => ("failed", Some("insufficient_funds")),
            Some((Behaviour::IncorrectNumber, _)) => ("failed", Some("incorrect_number")),
            Some((Behaviour::ExpiredCard, _)) => ("failed", Some("expired_card")),
            None => ("failed", Some("invalid_token")),
        };
        let id = format!("ch_{}", Uuid::new_v4().simple());
        sqlx::query(
            "INSERT INTO gateway_charges (id, reference, token, amount, currency, outcome, failure_reason)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (reference) DO NOTHING",
        )
        .bind(&id)
        .bind(&request.reference)
        .bind(&request.token)
        .bind(request.amount.minor)
        .bind(request.amount.currency.as_str())
        .bind(outcome)
        .bind(reason)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        // The charge of this reference: this one, or the one made before.
        sqlx::query_scalar("SELECT id FROM gateway_charges WHERE reference = $1")
            .bind(&request.reference)
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable)
    }

    async fn refund(&self, request: RefundRequest) -> Result<String, GatewayError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let charge: Option<(String, i64)> = sqlx::query_as(
            "SELECT id, amount FROM gateway_charges
              WHERE reference = $1 AND outcome = 'succeeded'
              FOR UPDATE",
        )
        .bind(&request.charge_reference)
        .fetch_optional(&mut *tx)
        .await
        .map_err(unavailable)?;
        let Some((charge_id, charged)) = charge else {
            return Err(GatewayError::NoSuchCharge(request.charge_reference));
        };
        let done: Option<String> =
            sqlx::query_scalar("SELECT id FROM gateway_refunds WHERE reference = $1")
                .bind(&request.reference)
                .fetch_optional(&mut *tx)
                .await
                .map_err(unavailable)?;
        if let Some(done) = done {
            return Ok(done);
        }
        let refunded: i64 = sqlx::query_scalar(
            "SELECT coalesce(sum(amount), 0)::bigint FROM gateway_refunds WHERE charge_id = $1",
        )
        .bind(&charge_id)
        .fetch_one(&mut *tx)
        .await
        .map_err(unavailable)?;
        if request.amount.minor <= 0 || refunded + request.amount.minor > charged {
            return Err(GatewayError::RefundTooLarge);
        }
        let id = format!("re_{}", Uuid::new_v4().simple());
        sqlx::query(
            "INSERT INTO gateway_refunds (id, reference, charge_id, amount, currency)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&id)
        .bind(&request.reference)
        .bind(&charge_id)
        .bind(request.amount.minor)
        .bind(request.amount.currency.as_str())
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        Ok(id)
    }
}
