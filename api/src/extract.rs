//! Extractors whose rejections use the one error shape, and the request id.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// JSON body; a rejection is an [`ApiError`] (400 malformed, 413, 415, 422).
/// Every body is a JSON object (serde would also read a struct from an
/// array of its fields). A whole number written with a fraction (`2.0`) is
/// an integer, as JSON Schema has it, so it fits an integer field.
#[derive(Debug, Clone, Copy, Default)]
pub struct AppJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for AppJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(mut value) =
            axum::Json::<serde_json::Value>::from_request(request, state).await?;
        if !value.is_object() {
            return Err(ApiError::unprocessable(
                crate::error::codes::INVALID_BODY,
                "The body must be a JSON object.",
            ));
        }
        whole_numbers_as_integers(&mut value);
        serde_path_to_error::deserialize(value)
            .map(AppJson)
            .map_err(|e| ApiError::unprocessable(crate::error::codes::INVALID_BODY, e.to_string()))
    }
}

/// Turns every whole-valued float in `value` that fits an `i64` into an
/// integer.
fn whole_numbers_as_integers(value: &mut serde_json::Value) {
    use serde_json::Value;
    // 2^63: the first float past i64::MAX.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    match value {
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|_| n.is_f64()) {
                if f.fract() == 0.0 && (-LIMIT..LIMIT).contains(&f) {
                    *n = serde_json::Number::from(f as i64);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(whole_numbers_as_integers),
        Value::Object(fields) => fields.values_mut().for_each(whole_numbers_as_integers),
        Value::Null | Value::Bool(_) | Value::String(_) => {}
    }
}

impl<T: serde::Serialize> axum::response::IntoResponse for AppJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Path parameters; a rejection (say, a non-UUID id) is a 400 [`ApiError`].
#[derive(Debug, Clone, Copy, Default, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct AppPath<T>(pub T);

/// Query parameters; a rejection is a 400 [`ApiError`].
#[derive(Debug, Clone, Copy, Default, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct AppQuery<T>(pub T);

pub const REQUEST_ID: &str = "x-request-id";
pub const CORRELATION_ID: &str = "x-correlation-id";

/// The ids of a request. The correlation id is the server's own (a new
/// UUID for every request): it is the `correlation_id` of every event the
/// request writes, so a client cannot file its events under another
/// request. The client's `X-Request-Id`, when it is a sensible token (1 to
/// 128 of letters, digits, `-_.:`), is kept beside it in the events'
/// metadata (`client_request_id`).
#[derive(Debug, Clone)]
pub struct RequestId {
    pub correlation_id: String,
    pub client_request_id: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<RequestId>()
            .cloned()
            .ok_or_else(|| ApiError::internal("request id middleware is not installed"))
    }
}

fn acceptable(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
}

/// Middleware (the outermost): makes the request's correlation id, for its
/// log span and its events' metadata, and keeps the client's
/// `X-Request-Id`. The answer carries `X-Correlation-Id` (the server's id,
/// to look the request's events up by) and `X-Request-Id`: the client's own
/// back, or the correlation id when it sent none.
pub async fn request_id(mut request: Request, next: Next) -> Response {
    let client_request_id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable(v))
        .map(str::to_string);
    let correlation_id = uuid::Uuid::new_v4().to_string();
    let echoed = client_request_id
        .clone()
        .unwrap_or_else(|| correlation_id.clone());
    request.extensions_mut().insert(RequestId {
        correlation_id: correlation_id.clone(),
        client_request_id,
    });
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(&correlation_id) {
        response.headers_mut().insert(CORRELATION_ID, value);
    }
    if let Ok(value) = HeaderValue::from_str(&echoed) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}
