//! The OpenAPI 3.1 document of the HTTP API, generated from the handlers'
//! `#[utoipa::path]` annotations, served at `GET /openapi.json`, and `/docs`:
//! a page that renders it with a vendored copy of Redoc, so it works without
//! internet access.
//!
//! Handlers declare their success answers and the errors their own logic
//! gives (404, 409, 422, ...). The errors every handler gets from the shared
//! extractors are added here by [`ErrorAnswers`], from what the operation
//! takes: a body (400, 413, 415, 422), path or query parameters (400), a
//! bearer token (401), and the database (503). So the document cannot forget
//! them, and they all reference the one error schema, [`ErrorBody`].

use std::sync::OnceLock;

use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, ObjectBuilder, OpenApi as Document, RefOr, Required,
    ResponseBuilder, Type,
};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::routes;
use crate::startup::AppState;

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

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Shop API",
        description = "The HTTP API of the shop: accounts, catalog, inventory, cart, orders, coupons and operations.\n\n\
Conventions: JSON bodies; ids are UUIDs; money fields are integers in the minor unit of `currency`. \
Every error answers `{\"error\": \"<code>\", \"message\": \"...\"}`. \
Commands answer the affected `id` and `position` (the global position of their last event); \
queries accept `min_position` (or the `X-Min-Position` header) and wait, bounded, until the read model has reached it, \
answering `X-Read-Model-Position` and, when it had not caught up in time, `X-Read-Model-Stale: true`. \
Lists use keyset pagination: `limit` (1 to 100, default 20) and `cursor`; answers carry `next_cursor` (null on the last page).\n\n\
Sign in with `POST /v1/login` and send `Authorization: Bearer <token>`. Roles: `customer`, `admin`, `operator`, `auditor`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        routes::health::live,
        routes::health::ready,
        routes::accounts::register,
        routes::accounts::login,
        routes::accounts::me,
        routes::listings::list_products,
        routes::listings::search_products,
        routes::listings::get_product,
        routes::catalog::create_product,
        routes::catalog::update_product,
        routes::catalog::discontinue_product,
        routes::listings::list_categories,
        routes::listings::search_categories,
        routes::listings::get_category,
        routes::catalog::create_category,
        routes::catalog::update_category,
        routes::listings::list_shops,
        routes::listings::get_shop,
        routes::catalog::create_shop,
        routes::catalog::update_shop,
        routes::listings::availability,
        routes::inventory::receive,
        routes::inventory::adjust,
        routes::inventory::place_hold,
        routes::inventory::release_hold,
        routes::inventory::decrement,
        routes::inventory::lock,
        routes::cart::get_cart,
        routes::cart::empty_cart,
        routes::cart::add_item,
        routes::cart::change_quantity,
        routes::cart::remove_item,
        routes::cart::apply_coupon,
        routes::cart::remove_coupon,
        routes::coupons::create_coupon,
        routes::coupons::get_coupon,
        routes::orders::place_order,
        routes::orders::list_orders,
        routes::orders::change_status_legacy,
        routes::orders::get_order,
        routes::orders::order_history,
        routes::orders::change_status,
        routes::orders::cancel_order,
        routes::orders::refund_order,
        routes::invoices::get_invoice,
        routes::admin::projections,
        routes::admin::events,
        routes::notifications::list,
        routes::payments::tokenize,
        routes::payments::webhook,
        routes::payments::wallet,
        routes::payments::top_up,
        routes::rebuilds::start,
        routes::rebuilds::progress,
        crate::metrics::render,
        openapi_json,
        docs_page,
        docs_script,
    ),
    components(schemas(
        ErrorBody,
        projections::admin::ProjectorStatus,
        projections::audit::AuditEvent,
        projections::rebuild::RebuildStatus,
        crate::commands::CommandAnswer,
        domain::order::OrderView,
        domain::order::OrderItemView,
        domain::order::OrderStatus,
        domain::order::PaymentStatus,
        domain::order::CancellationReason,
        domain::order::PaymentMethodKind,
        domain::order::ShippingAddress,
        domain::metadata::Role,
    )),
    modifiers(&BearerScheme, &ErrorAnswers),
    tags(
        (name = "accounts", description = "Registering, signing in, the signed-in account."),
        (name = "catalog", description = "Products, categories and shops: reads for anyone, changes for admins."),
        (name = "inventory", description = "Stock: availability for anyone; arrivals, corrections, holds and order locks for admins."),
        (name = "cart", description = "The signed-in customer's cart."),
        (name = "orders", description = "Placing, reading and changing orders."),
        (name = "coupons", description = "Discount coupons (admin)."),
        (name = "payments", description = "Card tokens, the payment gateway's callback, the customer's wallet."),
        (name = "notifications", description = "The emails and SMS sent to a customer about their orders."),
        (name = "operations", description = "Projectors, the event log, metrics and this document."),
        (name = "health", description = "Liveness and readiness probes."),
    )
)]
pub struct ApiDoc;

/// The `bearer` security scheme: the HS256 JWT from `POST /v1/login`.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "The `token` of `POST /v1/login`, as `Authorization: Bearer <token>`.",
                    ))
                    .build(),
            ),
        );
    }
}

/// Operations that never touch the database, so never answer 503.
const WITHOUT_DATABASE: &[&str] = &["live", "render", "openapi_json", "docs_page", "docs_script"];

/// Adds the error answers that come from the shared extractors and the
/// database to every operation that can give them (see the module doc), and
/// the read-your-writes header and answer headers to the queries that take
/// `min_position`.
struct ErrorAnswers;

impl Modify for ErrorAnswers {
    fn modify(&self, openapi: &mut Document) {
        for item in openapi.paths.paths.values_mut() {
            for operation in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                add_error_answers(operation);
                add_freshness(operation);
            }
        }
    }
}

fn error_answer(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                        "ErrorBody",
                    ))))
                    .build(),
            )
            .build(),
    )
}

fn add_error_answers(operation: &mut Operation) {
    let params = operation.parameters.as_deref().unwrap_or_default();
    let takes_path = params.iter().any(|p| p.parameter_in == ParameterIn::Path);
    let takes_query = params.iter().any(|p| p.parameter_in == ParameterIn::Query);
    let takes_body = operation.request_body.is_some();
    let takes_token = operation.security.as_ref().is_some_and(|s| !s.is_empty());
    let uses_database = operation
        .operation_id
        .as_deref()
        .is_none_or(|id| !WITHOUT_DATABASE.contains(&id));

    let mut add = |status: &str, description: &str| {
        operation
            .responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| error_answer(description));
    };
    if takes_body || takes_path || takes_query {
        let mut causes = Vec::new();
        if takes_body {
            causes.push("the body is not well-formed JSON (`malformed_json`)");
            causes.push("a text holds the NUL character (`invalid_text`)");
        }
        if takes_path {
            causes.push("a path parameter is invalid, e.g. not a UUID (`invalid_path`)");
        }
        if takes_query {
            causes.push("a query parameter is invalid or unknown (`invalid_query`, `invalid_limit`, `invalid_cursor`, `invalid_min_position`, ...)");
        }
        add("400", &format!("Malformed request: {}.", causes.join("; ")));
    }
    if takes_token {
        add(
            "401",
            "No valid bearer token (`unauthorized`): missing, malformed, expired or not signed by this server.",
        );
    }
    if takes_body {
        add(
            "413",
            "The body is larger than the server accepts (`payload_too_large`).",
        );
        add(
            "415",
            "The body is not sent as `Content-Type: application/json` (`unsupported_media_type`).",
        );
        add(
            "422",
            "The JSON does not fit the schema: a missing, unknown or mistyped field (`invalid_body`), or a value that breaks a rule.",
        );
    }
    if uses_database {
        add(
            "503",
            "The database is unavailable (`database_unavailable`); try again shortly.",
        );
    }
}

/// Queries that take `min_position` also take it as the `X-Min-Position`
/// header, and answer with the read model's position (and staleness).
fn add_freshness(operation: &mut Operation) {
    let reads = operation.parameters.as_ref().is_some_and(|params| {
        params
            .iter()
            .any(|p| p.name == "min_position" && p.parameter_in == ParameterIn::Query)
    });
    if !reads {
        return;
    }
    if let Some(params) = operation.parameters.as_mut() {
        params.push(
            ParameterBuilder::new()
                .name("X-Min-Position")
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some("The same as the `min_position` query parameter (which wins when both are given)."))
                .schema(Some(ObjectBuilder::new().schema_type(Type::Integer).format(Some(
                    utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Int64),
                ))))
                .build(),
        );
    }
    if let Some(RefOr::T(ok)) = operation.responses.responses.get_mut("200") {
        ok.headers.insert(
            "X-Read-Model-Position".to_string(),
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(Type::Integer))
                .description(Some(
                    "The global position the read model had reached when it answered.",
                ))
                .build(),
        );
        ok.headers.insert(
            "X-Read-Model-Stale".to_string(),
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(Type::String))
                .description(Some("`true` when the read model had not reached `min_position` in time; absent otherwise."))
                .build(),
        );
    }
}

/// The document, built once.
pub fn document() -> &'static Document {
    static DOCUMENT: OnceLock<Document> = OnceLock::new();
    DOCUMENT.get_or_init(ApiDoc::openapi)
}

/// The document as JSON, serialized once.
fn document_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        serde_json::to_string(document()).unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot serialize the OpenAPI document");
            "{}".to_string()
        })
    })
}

/// Redoc's standalone bundle (MIT, see `api/assets/redoc.LICENSE`), vendored
/// so that `/docs` needs no internet access.
const REDOC_JS: &str = include_str!("../assets/redoc.standalone.js");

/// The page: Redoc reading `/openapi.json`. Nothing is loaded from another
/// origin (Redoc's default theme names its fonts but does not fetch them).
const DOCS_HTML: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Shop API</title>
<style>body { margin: 0; padding: 0; }</style>
</head>
<body>
<redoc spec-url="/openapi.json" hide-hostname="true" expand-responses="200,201"></redoc>
<script src="/docs/redoc.standalone.js"></script>
</body>
</html>
"#;

/// What the page may load: only from this server. Redoc styles itself
/// inline and runs its search index in a worker made from a blob; its
/// side-menu logo, which it would fetch from its CDN, is refused (and
/// hidden by Redoc when it fails to load).
const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; \
base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(openapi_json))
        .route("/docs", get(docs_page))
        .route("/docs/redoc.standalone.js", get(docs_script))
}

/// The OpenAPI 3.1 document of this API.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    summary = "This API's OpenAPI document",
    description = "Anyone. The OpenAPI 3.1 document of this API, generated from the code.",
    responses((status = 200, description = "The OpenAPI 3.1 document.", content_type = "application/json", body = Object)),
)]
pub(crate) async fn openapi_json() -> Response {
    ([(CONTENT_TYPE, "application/json")], document_json()).into_response()
}

/// A page that renders the document.
#[utoipa::path(
    get,
    path = "/docs",
    tag = "operations",
    summary = "The API reference, readable",
    description = "Anyone. An HTML page that renders `/openapi.json` with Redoc, served by this server: it works without internet access.",
    responses((status = 200, description = "The page.", content_type = "text/html", body = String)),
)]
pub(crate) async fn docs_page() -> Response {
    (
        [
            (CONTENT_TYPE, "text/html; charset=utf-8"),
            (CONTENT_SECURITY_POLICY, DOCS_CSP),
        ],
        DOCS_HTML,
    )
        .into_response()
}

/// The vendored Redoc bundle.
#[utoipa::path(
    get,
    path = "/docs/redoc.standalone.js",
    tag = "operations",
    summary = "The Redoc script /docs uses",
    description = "Anyone. Redoc's standalone bundle (MIT licence), vendored. Cached for a week.",
    responses((status = 200, description = "The script.", content_type = "text/javascript", body = String)),
)]
pub(crate) async fn docs_script() -> Response {
    (
        [
            (CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=604800"),
        ],
        REDOC_JS,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1() {
        let json: serde_json::Value = serde_json::from_str(document_json()).unwrap();
        assert!(json["openapi"].as_str().unwrap().starts_with("3.1"));
    }

    #[test]
    fn the_docs_page_loads_nothing_from_another_origin() {
        assert!(!DOCS_HTML.contains("http://") && !DOCS_HTML.contains("https://"));
        assert!(DOCS_HTML.contains("src=\"/docs/redoc.standalone.js\""));
    }
}
