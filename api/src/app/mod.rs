//! The application layer: one module per use case, no HTTP in it.
//!
//! A use case reads and checks what it needs, runs the domain's commands
//! through the store and answers a typed result. Its error is an enum of its
//! own whose variants say what went wrong (a domain refusal, a missing
//! product, the store failing); [`UseCaseError::class`] tells the outside
//! world how to classify each, and `crate::error` turns that into the one
//! HTTP error shape in one place.
//!
//! The HTTP handlers (`crate::routes`), the command line (`crate::cli`,
//! `crate::staff`) and the tests call these functions, never a route.

use std::fmt;

use cqrs_es::AggregateError;
use domain::error::{DomainError, ErrorKind};
use domain::metadata::{Actor, CommandMetadata, Role, COMMAND_ID, REQUEST_HASH};
use projections::event_store::{lookups, streams};
use sqlx::PgPool;
use uuid::Uuid;

pub mod account_ids;
pub mod cancel_order;
pub mod cart;
pub mod coupons;
pub mod create_coupon;
pub mod create_product;
pub mod create_staff_user;
pub mod event_feed;
pub mod export_customer;
pub mod forget_customer;
pub mod gateway;
pub mod inbound_facts;
pub mod lock_stock;
pub mod orders;
pub mod passwords;
pub mod place_order;
pub mod pricing;
pub mod products;
pub mod readiness;
pub mod refund_order;
pub mod refusals;
pub mod register;
pub mod revoke_tokens;
pub mod set_order_status;
pub mod sign_in;
pub mod state;
pub mod stock;
pub mod token_standing;
pub mod tokenize_card;
pub mod top_up_wallet;
pub mod update_category;
pub mod update_product;

/// Who asks, and in which request: what every command's metadata needs.
#[derive(Debug, Clone)]
pub struct Caller {
    pub actor: Actor,
    /// The correlation id of the request (or CLI run) the commands belong to.
    pub correlation: String,
    /// The client's own id of its request (`X-Request-Id`), if it sent one.
    pub client_request_id: Option<String>,
}

impl Caller {
    pub fn new(actor: Actor, correlation: impl Into<String>) -> Self {
        Self {
            actor,
            correlation: correlation.into(),
            client_request_id: None,
        }
    }

    /// Keeps the client's own id of the request in the commands' metadata.
    pub fn with_client_request_id(mut self, id: Option<String>) -> Self {
        self.client_request_id = id;
        self
    }

    /// The signed-in user's id, if the caller is one.
    pub fn user_id(&self) -> Option<Uuid> {
        match &self.actor {
            Actor::User { id, .. } => Some(*id),
            _ => None,
        }
    }

    /// The signed-in user's role, if the caller is one.
    pub fn role(&self) -> Option<Role> {
        match &self.actor {
            Actor::User { role, .. } => Some(*role),
            _ => None,
        }
    }

    /// The metadata of a command this caller runs.
    pub fn meta(&self, command: &str) -> CommandMetadata {
        CommandMetadata::new(self.actor.clone(), self.correlation.clone(), command)
            .with_client_request_id(self.client_request_id.clone())
    }
}

/// How a use case's failure is classed for the outside world.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The input is malformed (HTTP 400).
    BadInput,
    /// The caller's role may not do this (HTTP 403).
    Forbidden,
    /// Well-formed but breaks a rule (HTTP 422).
    Rule,
    /// Conflicts with the current state (HTTP 409).
    Conflict,
    /// Names something that does not exist (HTTP 404).
    NotFound,
    /// An outside service did not answer (HTTP 503).
    Unavailable,
    /// The caller is not who they say (HTTP 401).
    Unauthorized,
    /// The caller asked too often (HTTP 429).
    TooManyRequests,
}

impl From<ErrorKind> for Kind {
    fn from(kind: ErrorKind) -> Self {
        match kind {
            ErrorKind::Rule => Kind::Rule,
            ErrorKind::Conflict => Kind::Conflict,
            ErrorKind::NotFound => Kind::NotFound,
            ErrorKind::Unavailable => Kind::Unavailable,
        }
    }
}

/// What a failure is: a refusal with a kind and a stable code (its message
/// is the error's `Display`), or trouble with the store.
#[derive(Debug)]
pub enum Class<'a> {
    Refused { kind: Kind, code: String },
    Store(&'a StoreError),
}

impl Class<'_> {
    /// A domain error's class: its own kind and code.
    pub fn domain<E: DomainError>(e: &E) -> Self {
        Class::Refused {
            kind: e.kind().into(),
            code: e.code(),
        }
    }

    pub fn refused(kind: Kind, code: &str) -> Self {
        Class::Refused {
            kind,
            code: code.to_string(),
        }
    }
}

/// A use case's error: its message is its `Display`.
pub trait UseCaseError: fmt::Display {
    fn class(&self) -> Class<'_>;
}

/// One refusal an error can answer: its kind and its code.
pub type Refusal = (Kind, &'static str);

/// Every refusal an error type can answer (for the API document); trouble
/// with the store other than a concurrent change (the database down, NUL in
/// text) is documented for every operation at once.
pub trait Refusals {
    fn refusals(out: &mut Vec<Refusal>);
}

/// A domain error's refusals: its codes, each with its kind.
pub fn domain_refusals<E: domain::error::ErrorCodes>(out: &mut Vec<Refusal>) {
    out.extend(E::CODES.iter().map(|c| (Kind::from(c.kind), c.code)));
}

/// A domain error's refusals of one kind.
pub fn domain_refusals_of<E: domain::error::ErrorCodes>(out: &mut Vec<Refusal>, kind: Kind) {
    out.extend(
        E::CODES
            .iter()
            .map(|c| (Kind::from(c.kind), c.code))
            .filter(|(k, _)| *k == kind),
    );
}

/// A domain error's refusals, as a [`Refusals`] type.
pub struct Domain<E>(std::marker::PhantomData<E>);

impl<E: domain::error::ErrorCodes> Refusals for Domain<E> {
    fn refusals(out: &mut Vec<Refusal>) {
        domain_refusals::<E>(out);
    }
}

/// A tuple's refusals: each member's.
macro_rules! tuple_refusals {
    ($($member:ident),+) => {
        impl<$($member: Refusals),+> Refusals for ($($member,)+) {
            fn refusals(out: &mut Vec<Refusal>) {
                $($member::refusals(out);)+
            }
        }
    };
}
tuple_refusals!(A, B);
tuple_refusals!(A, B, C);
tuple_refusals!(A, B, C, D);
tuple_refusals!(A, B, C, D, E);

/// The code of a refusal because of the caller's role.
pub const FORBIDDEN: &str = "forbidden";

/// The caller's role may not do this.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("Your role may not do this.")]
pub struct Forbidden;

use_case_error!(Forbidden {
    Forbidden => refused(Forbidden, FORBIDDEN),
});

/// Implements [`UseCaseError`] and [`Refusals`] for a use case's error enum
/// from one table, so each variant's kind and code are written once. Each
/// variant is `refused(Kind, "code")`, `domain(e: DomainErrorType)` (the
/// domain's own kind and code; `domain(e: Type where Kind)` when only its
/// codes of that kind can occur) or `nested(e: UseCaseErrorType)`.
macro_rules! use_case_error {
    ($error:ty { $($pattern:pat => $how:ident $args:tt),+ $(,)? }) => {
        impl $crate::app::UseCaseError for $error {
            fn class(&self) -> $crate::app::Class<'_> {
                match self {
                    $($pattern => $crate::app::use_case_error!(@class $how $args),)+
                }
            }
        }

        impl $crate::app::Refusals for $error {
            fn refusals(out: &mut Vec<$crate::app::Refusal>) {
                $($crate::app::use_case_error!(@doc out $how $args);)+
            }
        }
    };
    (@class refused ($kind:ident, $code:expr)) => {
        $crate::app::Class::refused($crate::app::Kind::$kind, $code)
    };
    (@class domain ($e:ident : $ty:ty $(where $only:ident)?)) => {
        $crate::app::Class::domain($e)
    };
    (@class nested ($e:ident : $ty:ty)) => {
        $crate::app::UseCaseError::class($e)
    };
    (@doc $out:ident refused ($kind:ident, $code:expr)) => {
        $out.push(($crate::app::Kind::$kind, $code))
    };
    (@doc $out:ident domain ($e:ident : $ty:ty)) => {
        $crate::app::domain_refusals::<$ty>($out)
    };
    (@doc $out:ident domain ($e:ident : $ty:ty where $only:ident)) => {
        $crate::app::domain_refusals_of::<$ty>($out, $crate::app::Kind::$only)
    };
    (@doc $out:ident nested ($e:ident : $ty:ty)) => {
        <$ty as $crate::app::Refusals>::refusals($out)
    };
}
pub(crate) use use_case_error;

/// Decides `commands` one after the other on a copy of `aggregate` and
/// stores nothing. A use case made of several commands checks all of them
/// before it executes the first, so a refusal of a later one does not leave
/// the earlier ones done. (The real execution decides again on fresh state.)
pub async fn dry_run<A>(
    aggregate: &A,
    services: &A::Services,
    commands: impl IntoIterator<Item = A::Command>,
) -> Result<(), A::Error>
where
    A: cqrs_es::Aggregate + Clone,
{
    let mut copy = aggregate.clone();
    for command in commands {
        copy.handle(
            command,
            services,
            &cqrs_es::event_sink::EventSink::default(),
        )
        .await?;
    }
    Ok(())
}

/// The code of [`StoreError::Conflict`].
pub const CONCURRENT_MODIFICATION: &str = "concurrent_modification";

/// The store (or something under it) failed; nothing the caller did wrong,
/// except text with the NUL character, which PostgreSQL cannot store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Someone else changed the aggregate at the same moment.
    #[error("Someone else changed this at the same moment; try again.")]
    Conflict,
    /// The database did not answer.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Text with the NUL character (U+0000).
    #[error("Text may not contain the NUL character (U+0000).")]
    NulInText,
    /// Too much work is waiting already (e.g. password hashing); the
    /// message says what.
    #[error("{0}")]
    Busy(String),
    /// Anything else: a bug or corrupt data.
    #[error("{0}")]
    Internal(String),
}

impl StoreError {
    /// Splits a failed command into the domain's refusal (`Ok`) and trouble
    /// with the store (`Err`).
    pub fn split<E: std::error::Error>(error: AggregateError<E>) -> Result<E, StoreError> {
        Err(match error {
            AggregateError::UserError(e) => return Ok(e),
            AggregateError::AggregateConflict => StoreError::Conflict,
            AggregateError::DatabaseConnectionError(e) => StoreError::Unavailable(e.to_string()),
            AggregateError::DeserializationError(e) => StoreError::Internal(e.to_string()),
            AggregateError::UnexpectedError(e) if e.is::<streams::NulInText>() => {
                StoreError::NulInText
            }
            AggregateError::UnexpectedError(e) => match e.downcast_ref::<sqlx::Error>() {
                Some(sqlx_error)
                    if projections::event_store::is_connection_error(sqlx_error)
                        || is_cancelled(sqlx_error) =>
                {
                    StoreError::Unavailable(e.to_string())
                }
                Some(sqlx_error) if is_nul_in_text(sqlx_error) => StoreError::NulInText,
                _ => StoreError::Internal(e.to_string()),
            },
        })
    }
}

/// A failed load: loading decides nothing, so a domain error there is a bug.
pub fn load_error<E: std::error::Error>(error: AggregateError<E>) -> StoreError {
    match StoreError::split(error) {
        Ok(e) => StoreError::Internal(e.to_string()),
        Err(e) => e,
    }
}

/// Whether PostgreSQL cancelled the statement (57014), as it does past the
/// statement timeout: the database is too busy to answer in time.
pub fn is_cancelled(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(e) => e.code().as_deref() == Some("57014"),
        _ => false,
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        if projections::event_store::is_connection_error(&error) || is_cancelled(&error) {
            StoreError::Unavailable(error.to_string())
        } else if is_nul_in_text(&error) {
            StoreError::NulInText
        } else {
            StoreError::Internal(error.to_string())
        }
    }
}

impl From<streams::StreamError> for StoreError {
    fn from(error: streams::StreamError) -> Self {
        use streams::StreamError;
        match error {
            StreamError::Conflict => StoreError::Conflict,
            StreamError::Decode(e) => StoreError::Internal(e.to_string()),
            StreamError::NulInText(_) => StoreError::NulInText,
            StreamError::Database(e) => e.into(),
            StreamError::Keys(projections::keys::KeyError::Database(e)) => e.into(),
            StreamError::Keys(e) => StoreError::Internal(e.to_string()),
        }
    }
}

impl UseCaseError for StoreError {
    fn class(&self) -> Class<'_> {
        Class::Store(self)
    }
}

impl Refusals for StoreError {
    fn refusals(out: &mut Vec<Refusal>) {
        out.push((Kind::Conflict, CONCURRENT_MODIFICATION));
    }
}

/// Whether PostgreSQL refused a value because it holds the NUL character
/// (U+0000): as a text parameter (22021) or inside JSON stored as jsonb
/// (22P05). Only a client can have sent it, so it is bad input, not our
/// failure.
pub fn is_nul_in_text(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(e) => matches!(e.code().as_deref(), Some("22021" | "22P05")),
        _ => false,
    }
}

/// An `Idempotency-Key` used before with another request body.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("This Idempotency-Key was already used with a different request body.")]
pub struct KeyReused;

use_case_error!(KeyReused {
    KeyReused => refused(Rule, "idempotency_key_reused"),
});

/// For a creating command under an `Idempotency-Key`: when the aggregate
/// already exists, the first request's position if it had the same body
/// (`Some(Ok)`), `Some(Err)` if it had another, `None` when nothing exists
/// yet.
pub async fn replayed_creation(
    pool: &PgPool,
    aggregate_type: &str,
    id: Uuid,
    hash: &str,
) -> Result<Option<Result<i64, KeyReused>>, StoreError> {
    let Some(first) = lookups::first_event(pool, aggregate_type, &id.to_string()).await? else {
        return Ok(None);
    };
    let field = |key: &str| first.metadata.get(key).and_then(|v| v.as_str());
    if field(REQUEST_HASH) != Some(hash) {
        return Ok(Some(Err(KeyReused)));
    }
    let position = match field(COMMAND_ID) {
        Some(command_id) => {
            lookups::position_of_command(pool, aggregate_type, &id.to_string(), command_id).await?
        }
        None => None,
    };
    Ok(Some(Ok(position.unwrap_or(first.position))))
}
