//! Running commands from HTTP requests: metadata, error mapping, the answer
//! `{id, position}`, and `Idempotency-Key` for creating POSTs.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use cqrs_es::AggregateError;
use domain::error::DomainError;
use domain::metadata::{Actor, CommandMetadata};
use domain::stored::StoredAggregate;
use projections::event_store::CommandBus;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use crate::app::refusals::InvalidIdempotencyKey;
use crate::app::{self, Caller, Class, StoreError, UseCaseError};
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::RequestId;

/// The answer of a command: the affected id and the global position of its
/// last event (pass it as `min_position` to read your own write).
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct CommandAnswer {
    pub id: Uuid,
    pub position: i64,
}

/// The metadata every event of this request's command carries.
pub fn metadata(actor: Actor, request: &RequestId, command: &str) -> CommandMetadata {
    CommandMetadata::new(actor, request.correlation_id.clone(), command)
        .with_client_request_id(request.client_request_id.clone())
}

/// Maps a failed command to the one error shape: rule 422, state 409,
/// missing 404, database trouble 503; internals are logged, not returned.
pub fn command_error<E: DomainError>(error: AggregateError<E>) -> ApiError {
    match StoreError::split(error) {
        Ok(e) => domain_error(&e),
        Err(e) => ApiError::from(e),
    }
}

/// The caller of a use case: the signed-in user in this request.
pub fn caller(user: &AuthUser, request: &RequestId) -> Caller {
    Caller::new(user.actor(), request.correlation_id.clone())
        .with_client_request_id(request.client_request_id.clone())
}

/// A rejected command's error in the one error shape.
pub fn domain_error<E: DomainError>(e: &E) -> ApiError {
    struct Refusal<'a, E>(&'a E);
    impl<E: DomainError> std::fmt::Display for Refusal<'_, E> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            std::fmt::Display::fmt(self.0, f)
        }
    }
    impl<E: DomainError> UseCaseError for Refusal<'_, E> {
        fn class(&self) -> Class<'_> {
            Class::domain(self.0)
        }
    }
    ApiError::from_use_case(&Refusal(e))
}

/// The `Idempotency-Key` header as the API document shows it.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct IdempotencyKeyHeader {
    /// 1 to 255 visible ASCII characters. A repeat of the same request with
    /// the same key answers the first answer and writes nothing; another
    /// body under the key is 422 `idempotency_key_reused`.
    #[param(
        rename = "Idempotency-Key",
        max_length = 255,
        pattern = r"^[\t -~]*[!-~][\t -~]*$"
    )]
    idempotency_key: Option<String>,
}

/// The optional `Idempotency-Key` header of a creating POST.
#[derive(Debug, Clone)]
pub struct IdempotencyKey(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get("idempotency-key") else {
            return Ok(IdempotencyKey(None));
        };
        let key = value
            .to_str()
            .ok()
            .filter(|k| k.len() <= 255)
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                InvalidIdempotencyKey::new(
                    "Idempotency-Key must be 1 to 255 visible ASCII characters.",
                )
            })?;
        Ok(IdempotencyKey(Some(key.to_string())))
    }
}

impl IdempotencyKey {
    /// The id of the thing a POST creates: with a key, derived from the
    /// caller and the key, so a retry (even a racing one) lands on the same
    /// aggregate and loses at sequence 1; without one, a new random id.
    pub fn creation_id(&self, kind: &str, caller: Uuid) -> Uuid {
        match &self.0 {
            Some(key) => domain::values::derived_id(kind, &format!("{caller}:{key}")),
            None => Uuid::new_v4(),
        }
    }
}

/// A stable hash of a request body, kept in the metadata of the events it
/// caused, to tell a replay from a different body under the same key.
pub fn request_hash(body: &impl Serialize) -> String {
    // serde_json sorts object keys, so equal bodies hash equally.
    let canonical = serde_json::to_value(body)
        .and_then(|v| serde_json::to_vec(&v))
        .unwrap_or_default();
    hex::encode(Sha256::digest(canonical))
}

/// For a creating POST with an `Idempotency-Key`: when the aggregate already
/// exists, the first request's position if it had the same body, 422 if it
/// had another, `None` when nothing exists yet.
pub async fn replayed_creation(
    pool: &PgPool,
    aggregate_type: &str,
    id: Uuid,
    hash: &str,
) -> Result<Option<i64>, ApiError> {
    Ok(app::replayed_creation(pool, aggregate_type, id, hash)
        .await?
        .transpose()?)
}

/// Runs a creating command with `Idempotency-Key` semantics on the aggregate
/// `id` (from [`IdempotencyKey::creation_id`]): a repeat with the same body answers
/// the first result and writes nothing; another body under the key is 422.
pub async fn create<A>(
    bus: &CommandBus<A>,
    key: &IdempotencyKey,
    id: Uuid,
    body: &impl Serialize,
    mut meta: CommandMetadata,
    command: impl FnOnce(Uuid) -> A::Command,
) -> Result<CommandAnswer, ApiError>
where
    A: StoredAggregate,
    A::Error: DomainError,
{
    let hash = request_hash(body);
    if key.0.is_some() {
        if let Some(position) = replayed_creation(bus.pool(), A::TYPE, id, &hash).await? {
            return Ok(CommandAnswer { id, position });
        }
        meta = meta.with_request_hash(hash.clone());
    }
    match bus.execute(&id.to_string(), command(id), &meta).await {
        Ok(committed) => Ok(CommandAnswer {
            id,
            position: committed.position,
        }),
        // Lost a race against the same key: answer like a replay.
        Err(e) if key.0.is_some() => {
            match replayed_creation(bus.pool(), A::TYPE, id, &hash).await? {
                Some(position) => Ok(CommandAnswer { id, position }),
                None => Err(command_error(e)),
            }
        }
        Err(e) => Err(command_error(e)),
    }
}

/// Deserialises a field that may be absent (`None`), `null` (`Some(None)`)
/// or a value (`Some(Some(v))`), for partial updates that can clear a field.
pub fn double_option<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}
