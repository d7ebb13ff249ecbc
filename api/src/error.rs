//! The one error shape of the HTTP API: `{"error": "<code>", "message": "..."}`.
//!
//! Handlers return `Result<T, ApiError>`. Infrastructure errors convert with
//! `?`; their details are logged, never sent to clients.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::app::{Class, Kind, StoreError, UseCaseError};

pub type Result<T, E = ApiError> = std::result::Result<T, E>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
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
        }
    }
    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub fn unprocessable(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn conflict(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }
    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            "The database is unavailable; try again shortly.",
        )
    }
    /// Text with the NUL character, which PostgreSQL cannot store.
    pub fn nul_in_text() -> Self {
        Self::bad_request(
            "invalid_text",
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
            Class::Refused { kind, code } => {
                let status = match kind {
                    Kind::BadInput => StatusCode::BAD_REQUEST,
                    Kind::Forbidden => StatusCode::FORBIDDEN,
                    Kind::Rule => StatusCode::UNPROCESSABLE_ENTITY,
                    Kind::Conflict => StatusCode::CONFLICT,
                    Kind::NotFound => StatusCode::NOT_FOUND,
                    Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
                };
                ApiError::new(status, code, error.to_string())
            }
            Class::Store(StoreError::Conflict) => {
                ApiError::conflict("concurrent_modification", StoreError::Conflict.to_string())
            }
            Class::Store(e @ StoreError::Unavailable(_)) => {
                tracing::warn!(error = %e, "database unavailable");
                ApiError::unavailable()
            }
            Class::Store(StoreError::NulInText) => ApiError::nul_in_text(),
            Class::Store(StoreError::Internal(e)) => ApiError::internal(e),
        }
    }
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
    crate::app::cancel_order::CancelOrderError,
    crate::app::coupons::OrderCouponError,
    crate::app::create_staff_user::CreateStaffError,
    crate::app::lock_stock::LockStockError,
    crate::app::orders::LoadOrderError,
    crate::app::place_order::PlaceOrderError,
    crate::app::pricing::CartPricingError,
    crate::app::pricing::PricingError,
    crate::app::products::ClaimSkuError,
    crate::app::products::FindProductError,
    crate::app::refund_order::RefundOrderError,
    crate::app::register::RegisterError,
    crate::app::revoke_tokens::RevokeTokensError,
    crate::app::set_order_status::SetOrderStatusError,
    crate::app::update_product::UpdateProductError,
);

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        use JsonRejection::*;
        match rejection {
            MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Send the body as JSON with `Content-Type: application/json`.",
            ),
            JsonDataError(e) => {
                ApiError::unprocessable("invalid_body", clean_serde_message(&e.body_text()))
            }
            JsonSyntaxError(e) => {
                ApiError::bad_request("malformed_json", clean_serde_message(&e.body_text()))
            }
            BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "The request body is larger than this endpoint accepts.",
            ),
            other => ApiError::bad_request("bad_request", other.body_text()),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::bad_request(
            "invalid_path",
            format!("A path parameter is invalid: {}", rejection.body_text()),
        )
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::bad_request(
            "invalid_query",
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
