//! Whether this server is ready for traffic: the database answers, every
//! migration is applied, and no projector is halted on a poison event (one
//! stopped, or with a dead letter no operator has resolved).

use sqlx::PgPool;

use super::{use_case_error, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    #[error("{missing} database migration(s) are not applied yet.")]
    MigrationsPending { missing: usize },
    /// Each as `name (state, n dead letter(s))`.
    #[error("Projector(s) need an operator: {}.", .halted.join(", "))]
    ProjectorHalted { halted: Vec<String> },
    #[error(transparent)]
    Store(#[from] StoreError),
}

use_case_error!(NotReady {
    Self::MigrationsPending { .. } => refused(Unavailable, "migrations_pending"),
    Self::ProjectorHalted { .. } => refused(Unavailable, "projector_halted"),
    Self::Store(e) => nested(e: StoreError),
});

/// A server ready for traffic.
#[derive(Debug, Clone, PartialEq)]
pub struct Ready {
    /// How far the integration event publisher is behind (events, seconds),
    /// when it runs. NATS being down does not make the shop unready
    /// (commands go on), but it shows here.
    pub integration_lag: Option<(i64, f64)>,
}

/// `Ok` when ready; otherwise the first cause found.
pub async fn check_ready(pool: &PgPool) -> Result<Ready, NotReady> {
    let applied: Vec<(i64,)> = sqlx::query_as("SELECT version FROM _sqlx_migrations WHERE success")
        .fetch_all(pool)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "readiness: database did not answer");
            StoreError::Unavailable(e.to_string())
        })?;
    let missing = projections::MIGRATOR
        .iter()
        .filter(|m| !applied.iter().any(|(v,)| *v == m.version))
        .count();
    if missing > 0 {
        return Err(NotReady::MigrationsPending { missing });
    }
    let halted: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT c.name, c.state,
                (SELECT count(*) FROM projector_dead_letters d
                  WHERE d.projector = c.name AND d.resolution IS NULL)
           FROM projector_checkpoints c
          WHERE c.state = 'stopped'
             OR EXISTS (SELECT 1 FROM projector_dead_letters d
                         WHERE d.projector = c.name AND d.resolution IS NULL)
          ORDER BY c.name",
    )
    .fetch_all(pool)
    .await
    .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    if !halted.is_empty() {
        return Err(NotReady::ProjectorHalted {
            halted: halted
                .iter()
                .map(|(name, state, dead)| format!("{name} ({state}, {dead} dead letter(s))"))
                .collect(),
        });
    }
    let publisher = projections::integration::publisher::NAME;
    let integration_lag = projections::admin::lag_of(pool, publisher)
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    Ok(Ready { integration_lag })
}
