//! The simulated gateway's callbacks: each charge's outcome, posted signed to
//! the shop's webhook over HTTP until it is answered 2xx.
//!
//! A callback is claimed in a statement of its own (its next attempt moves
//! [`CLAIM`] ahead, so no other process posts it meanwhile) and posted with
//! no transaction open: projectors read only below the oldest open
//! transaction, so a slow post must not hold one. A process that dies
//! between posting and recording posts it again once the claim runs out;
//! the webhook answers a repeated callback as a duplicate.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::signature::{sign, SIGNATURE_HEADER};
use super::GatewayCallback;
use crate::runtime::BackgroundTask;

/// Callbacks claimed per poll before the task looks at shutdown again.
const BATCH: usize = 64;

/// Callbacks posted at once.
const IN_FLIGHT: usize = 16;

/// How long a claimed callback is kept from other processes: longer than a
/// post may take.
const CLAIM: Duration = Duration::from_secs(15);

/// Delivers charge outcomes to `url`, signed with `secret`.
pub struct CallbackDelivery {
    pool: PgPool,
    client: reqwest::Client,
    url: String,
    secret: String,
    interval: Duration,
}

impl CallbackDelivery {
    pub fn new(pool: PgPool, url: String, secret: String, interval: Duration) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Self {
            pool,
            client,
            url,
            secret,
            interval,
        }
    }

    /// Claims up to [`BATCH`] callbacks due now in one statement (see the
    /// module doc) and posts them, up to [`IN_FLIGHT`] at once: each charge's
    /// callback stands alone, so their order does not matter. Answers how
    /// many were attempted.
    pub async fn deliver_due(&self) -> Result<usize, sqlx::Error> {
        let due: Vec<GatewayCallbackRow> = sqlx::query_as(
            "UPDATE gateway_charges
                SET callback_next_at = now() + make_interval(secs => $1)
              WHERE id IN (SELECT id FROM gateway_charges
                            WHERE callback_delivered_at IS NULL AND callback_next_at <= now()
                            ORDER BY callback_next_at
                            LIMIT $2
                            FOR UPDATE SKIP LOCKED)
             RETURNING id, reference, amount, currency, outcome, failure_reason, callback_attempts",
        )
        .bind(CLAIM.as_secs_f64())
        .bind(BATCH as i64)
        .fetch_all(&self.pool)
        .await?;
        let attempted = due.len();
        let results: Vec<Result<(), sqlx::Error>> = futures::stream::iter(due)
            .map(|row| self.deliver(row))
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        results.into_iter().collect::<Result<Vec<()>, _>>()?;
        Ok(attempted)
    }

    /// Posts one claimed callback and records the outcome.
    async fn deliver(&self, row: GatewayCallbackRow) -> Result<(), sqlx::Error> {
        let callback = GatewayCallback {
            id: format!("evt_{}", row.id),
            event_type: if row.outcome == "succeeded" {
                "charge.succeeded".to_string()
            } else {
                "charge.failed".to_string()
            },
            charge_id: row.id.clone(),
            reference: row.reference,
            amount: row.amount,
            currency: row.currency,
            failure_reason: row.failure_reason,
        };
        match self.post(&callback).await {
            Ok(()) => {
                sqlx::query(
                    "UPDATE gateway_charges
                        SET callback_delivered_at = now(), callback_attempts = callback_attempts + 1,
                            callback_last_error = NULL
                      WHERE id = $1",
                )
                .bind(&row.id)
                .execute(&self.pool)
                .await?;
            }
            Err(error) => {
                let attempts = row.callback_attempts + 1;
                // 0.2 s, 0.4 s, ... at most a minute.
                let backoff_ms = 200_i64
                    .saturating_mul(1 << attempts.clamp(0, 9))
                    .min(60_000);
                tracing::warn!(charge_id = %row.id, attempts, %error, "payment callback not delivered; will retry");
                sqlx::query(
                    "UPDATE gateway_charges
                        SET callback_attempts = $2, callback_last_error = $3,
                            callback_next_at = now() + make_interval(secs => $4::double precision / 1000)
                      WHERE id = $1",
                )
                .bind(&row.id)
                .bind(attempts)
                .bind(&error)
                .bind(backoff_ms as f64)
                .execute(&self.pool)
                .await?;
            }
        }
        Ok(())
    }

    async fn post(&self, callback: &GatewayCallback) -> Result<(), String> {
        let body = serde_json::to_vec(callback).map_err(|e| e.to_string())?;
        let response = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, sign(&self.secret, &body))
            .body(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("the webhook answered {}", response.status()))
        }
    }
}

#[derive(sqlx::FromRow)]
struct GatewayCallbackRow {
    id: String,
    reference: String,
    amount: i64,
    currency: String,
    outcome: String,
    failure_reason: Option<String>,
    callback_attempts: i32,
}

#[async_trait]
impl BackgroundTask for CallbackDelivery {
    async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            let wait = match self.deliver_due().await {
                Ok(n) if n >= BATCH => Duration::ZERO,
                Ok(_) => self.interval,
                Err(e) => {
                    tracing::warn!(error = %e, "payment callback delivery hit a database error; retrying");
                    self.interval.max(Duration::from_secs(1))
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}
