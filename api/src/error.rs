//! The one error shape of the HTTP API: `{"error": "<code>", "message": "..."}`.
//!
//! Handlers return `Result<T, ApiError>`. Infrastructure errors convert with
//! `?`; their details are logged, never sent to clients.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::refusals;
use crate::app::{Class, Kind, Refusals, StoreError, UseCaseError, CONCURRENT_MODIFICATION};

/// Every error answer of the API: a stable snake_case code and a sentence
/// for people. Some answers add fields (e.g. `details`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"error": "not_found", "message": "There is no such product."}))]
pub struct ErrorBody {
    /// Stable, snake_case: what clients branch on.
    pub error: String,
    /// A human sentence; may change between versions.
    pub message: String,
}

/// The codes of the answers the shared extractors and the HTTP layer give,
/// which `crate::openapi` documents for every operation that can get them.
pub mod codes {
    pub const MALFORMED_JSON: &str = "malformed_json";
    pub const INVALID_TEXT: &str = "invalid_text";
    pub const INVALID_BODY: &str = "invalid_body";
    pub const INVALID_PATH: &str = "invalid_path";
    pub const INVALID_QUERY: &str = "invalid_query";
    pub const PAYLOAD_TOO_LARGE: &str = "payload_too_large";
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "unsupported_media_type";
    pub const DATABASE_UNAVAILABLE: &str = "database_unavailable";
    pub const UNAUTHORIZED: &str = "unauthorized";
    pub const OVERLOADED: &str = "overloaded";
    pub const REQUEST_TIMEOUT: &str = "request_timeout";
}

pub type Result<T, E = ApiError> = std::result::Result<T, E>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    /// `Retry-After` of a 429, in seconds (a 503 always says
    /// [`RETRY_AFTER_SECONDS`]).
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    message: &'a str,
}

impl ApiError {
    pub fn new(status: StatusCode, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
            retry_after: None,
        }
    }
    /// 429: too many requests of this kind; try again in `wait` (rounded up
    /// to whole seconds, at least one).
    pub fn too_many(code: &str, message: impl Into<String>, wait: std::time::Duration) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, code, message).retry_in(Some(wait))
    }
    /// With `Retry-After: wait` (rounded up to whole seconds, at least one)
    /// when there is a wait.
    pub fn retry_in(self, wait: Option<std::time::Duration>) -> Self {
        let Some(wait) = wait else {
            return self;
        };
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        Self {
            retry_after: Some(seconds.max(1)),
            ..self
        }
    }
    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub fn unprocessable(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, refusals::NotFound::CODE, message)
    }
    pub fn conflict(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }
    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            codes::DATABASE_UNAVAILABLE,
            "The database is unavailable; try again shortly.",
        )
    }
    /// A domain refusal (its kind's status, its code) with a message of its
    /// own.
    pub fn refusal(error: &impl domain::error::DomainError, message: impl Into<String>) -> Self {
        Self::new(status(error.kind().into()), error.code(), message)
    }
    /// Text with the NUL character, which PostgreSQL cannot store.
    pub fn nul_in_text() -> Self {
        Self::bad_request(
            codes::INVALID_TEXT,
            "Text may not contain the NUL character (U+0000).",
        )
    }
    /// An unexpected failure: logged in full, answered without details.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(error = %error, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Something went wrong on our side; it has been logged.",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = printable(&self.message);
        let body = Body {
            error: &self.code,
            message: &message,
        };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            // Something the request needs is down, not the request wrong:
            // come back shortly.
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static(RETRY_AFTER_SECONDS),
            );
        }
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(seconds),
            );
        }
        response
    }
}

/// What a 503 answer's `Retry-After` says, in seconds.
pub const RETRY_AFTER_SECONDS: &str = "1";

/// The message with control characters (say, from echoed input) written as
/// `\u{..}` escapes.
fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return text.into();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        ApiError::from(StoreError::from(error))
    }
}

pub use crate::app::is_nul_in_text;

/// The one place where a use case's failure becomes the HTTP error shape:
/// its kind gives the status, its code and message are its own; trouble
/// with the store is 409 (a concurrent change), 503 (the database is
/// down), 400 (NUL in text) or a logged 500.
impl ApiError {
    pub fn from_use_case(error: &(impl UseCaseError + ?Sized)) -> Self {
        match error.class() {
            Class::Refused { kind, code } => ApiError::new(status(kind), code, error.to_string()),
            Class::Store(StoreError::Conflict) => {
                ApiError::conflict(CONCURRENT_MODIFICATION, StoreError::Conflict.to_string())
            }
            Class::Store(e @ StoreError::Unavailable(_)) => {
                tracing::warn!(error = %e, "database unavailable");
                ApiError::unavailable()
            }
            Class::Store(StoreError::NulInText) => ApiError::nul_in_text(),
            Class::Store(StoreError::Busy(message)) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                crate::app::passwords::BUSY,
                message.clone(),
            ),
            Class::Store(StoreError::Internal(e)) => ApiError::internal(e),
        }
    }
}

/// A rate limiter's answer as the API's: 429 with `Retry-After` when it
/// says to wait.
pub trait OrTooMany {
    fn or_too_many(self, code: &str, message: &str) -> Result<(), ApiError>;
}

impl OrTooMany for Result<(), std::time::Duration> {
    fn or_too_many(self, code: &str, message: &str) -> Result<(), ApiError> {
        self.map_err(|wait| ApiError::too_many(code, message, wait))
    }
}

/// The status of a refusal of that kind.
pub fn status(kind: Kind) -> StatusCode {
    match kind {
        Kind::BadInput => StatusCode::BAD_REQUEST,
        Kind::Forbidden => StatusCode::FORBIDDEN,
        Kind::Rule => StatusCode::UNPROCESSABLE_ENTITY,
        Kind::Conflict => StatusCode::CONFLICT,
        Kind::NotFound => StatusCode::NOT_FOUND,
        Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Kind::Unauthorized => StatusCode::UNAUTHORIZED,
        Kind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
    }
}

/// What a refusal of that kind means, as the document says it.
fn meaning(kind: Kind) -> &'static str {
    match kind {
        Kind::BadInput => "Malformed",
        Kind::Forbidden => "The caller's role may not do this",
        Kind::Rule => "Breaks a rule",
        Kind::Conflict => "Refused as things are now",
        Kind::NotFound => "Names something that does not exist",
        Kind::Unavailable => "A service this needs did not answer; try again shortly",
        Kind::Unauthorized => "Not signed as required",
        Kind::TooManyRequests => "Too many requests; wait as `Retry-After` says",
    }
}

/// The error answers of an operation whose refusals are `T`'s (a use
/// case's error, or a tuple of them), for its document entry:
/// `responses(..., Answers::<PlaceOrderError>)`. One answer per status,
/// listing every code it can carry, all in the one error shape.
pub struct Answers<T>(std::marker::PhantomData<T>);

impl<T: Refusals> utoipa::IntoResponses for Answers<T> {
    fn responses() -> std::collections::BTreeMap<
        String,
        utoipa::openapi::RefOr<utoipa::openapi::response::Response>,
    > {
        let mut refusals = Vec::new();
        T::refusals(&mut refusals);
        let mut by_status: std::collections::BTreeMap<u16, (Kind, Vec<&str>)> = Default::default();
        for (kind, code) in refusals {
            let (_, codes) = by_status
                .entry(status(kind).as_u16())
                .or_insert((kind, Vec::new()));
            if !codes.contains(&code) {
                codes.push(code);
            }
        }
        by_status
            .into_iter()
            .map(|(status, (kind, codes))| {
                let codes = codes
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let description = format!("{}: {codes}.", meaning(kind));
                (status.to_string(), error_answer(&description))
            })
            .collect()
    }
}

/// An answer in the one error shape, for the document.
pub fn error_answer(
    description: &str,
) -> utoipa::openapi::RefOr<utoipa::openapi::response::Response> {
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(RefOr::Ref(Ref::from_schema_name("ErrorBody"))))
                    .build(),
            )
            .build(),
    )
}

/// `From` for each use case's error, all through [`ApiError::from_use_case`].
macro_rules! from_use_case {
    ($($error:ty),* $(,)?) => {
        $(impl From<$error> for ApiError {
            fn from(error: $error) -> Self {
                ApiError::from_use_case(&error)
            }
        })*
    };
}

from_use_case!(
    StoreError,
    crate::app::KeyReused,
    crate::app::Forbidden,
    crate::app::cancel_order::CancelOrderError,
    crate::app::create_coupon::CreateCouponError,
    crate::app::create_product::CreateProductError,
    crate::app::coupons::OrderCouponError,
    crate::app::create_staff_user::CreateStaffError,
    crate::app::event_feed::FeedPageError,
    crate::app::export_customer::ExportCustomerError,
    crate::app::forget_customer::ForgetCustomerError,
    crate::app::gateway::GatewayFailure,
    crate::app::lock_stock::LockStockError,
    crate::app::orders::LoadOrderError,
    crate::app::place_order::PlaceOrderError,
    crate::app::pricing::CartPricingError,
    crate::app::pricing::PricingError,
    crate::app::products::ClaimSkuError,
    crate::app::products::FindProductError,
    crate::app::readiness::NotReady,
    crate::app::refund_order::RefundOrderError,
    crate::app::register::RegisterError,
    crate::app::revoke_tokens::RevokeTokensError,
    crate::app::set_order_status::SetOrderStatusError,
    crate::app::sign_in::SignInError,
    crate::app::stock::StockError,
    crate::app::top_up_wallet::TopUpError,
    crate::app::update_category::UpdateCategoryError,
    crate::app::update_product::UpdateProductError,
    refusals::InvalidQuantity,
    refusals::InvalidTtl,
    refusals::InvalidAmount,
    refusals::InvalidSearch,
    refusals::InvalidVersion,
    refusals::InvalidLimit,
    refusals::InvalidMinPosition,
    refusals::InvalidIdempotencyKey,
    refusals::CursorNotFound,
    refusals::PositionNotFound,
    refusals::InvalidFeedPosition,
    refusals::NotFound,
    refusals::InvalidCallback,
    refusals::InvalidSignature,
    refusals::InvalidCredentials,
    refusals::TooManyAttempts,
    refusals::ReadModelBehind,
    refusals::InvoiceNotIssued,
    refusals::RebuildRunning,
    refusals::NotRebuildable,
    refusals::CardTokenNotOwned,
);

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        use JsonRejection::*;
        match rejection {
            MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                codes::UNSUPPORTED_MEDIA_TYPE,
                "Send the body as JSON with `Content-Type: application/json`.",
            ),
            JsonDataError(e) => {
                ApiError::unprocessable(codes::INVALID_BODY, clean_serde_message(&e.body_text()))
            }
            JsonSyntaxError(e) => {
                ApiError::bad_request(codes::MALFORMED_JSON, clean_serde_message(&e.body_text()))
            }
            BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                codes::PAYLOAD_TOO_LARGE,
                "The request body is larger than this endpoint accepts.",
            ),
            other => ApiError::bad_request("bad_request", other.body_text()),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::bad_request(
            codes::INVALID_PATH,
            format!("A path parameter is invalid: {}", rejection.body_text()),
        )
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::bad_request(
            codes::INVALID_QUERY,
            format!("A query parameter is invalid: {}", rejection.body_text()),
        )
    }
}

/// serde's messages are good but start with axum's prefix; keep the useful part.
fn clean_serde_message(text: &str) -> String {
    text.strip_prefix("Failed to deserialize the JSON body into the target type: ")
        .or_else(|| text.strip_prefix("Failed to parse the request body as JSON: "))
        .unwrap_or(text)
        .to_string()
}

/// 404 in the one error shape for paths that do not exist.
pub async fn fallback() -> ApiError {
    ApiError::not_found("There is no such endpoint.")
}

/// 405 in the one error shape for a path that exists but does not take the
/// method (axum still adds the `Allow` header).
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "This endpoint does not take this method; see the Allow header.",
    )
}
