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
use serde_json::{json, Value};
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
Lists use keyset pagination: `limit` (1 to 100, default 20) and `cursor`; answers carry `next_cursor` (null on the last page). \
Every answer carries `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY` and `Referrer-Policy: no-referrer`; \
answers are `Cache-Control: no-store` unless they say otherwise (the Redoc script of `/docs` is cached for a week), \
and carry `Content-Security-Policy: default-src 'none'; frame-ancestors 'none'; ...` unless they are a page with its own policy \
(`/docs`; the printable invoice allows its inline style only).\n\n\
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
    let takes_cursor = params.iter().any(|p| p.name == "cursor");
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
            causes.push("a query parameter is invalid or unknown (`invalid_query`, `invalid_limit`, `invalid_min_position`, ...)");
        }
        add("400", &format!("Malformed request: {}.", causes.join("; ")));
    }
    if takes_cursor {
        add(
            "404",
            "The cursor is not one this list gave out (`cursor_not_found`).",
        );
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

/// (schema, keyword, value) added to a component schema: rules that span
/// fields or say "not", which utoipa's schema types cannot hold.
fn extra_rules() -> [(&'static str, &'static str, Value); 2] {
    [
        // An adjustment changes the stock.
        ("Adjust/properties/delta", "not", json!({"const": 0})),
        // A coupon takes exactly one kind of discount.
        (
            "NewCoupon",
            "oneOf",
            json!([
                {"required": ["percent_off"], "properties": {"percent_off": {"type": "integer"}}},
                {"required": ["amount_off"], "properties": {"amount_off": {"type": "integer"}}},
            ]),
        ),
    ]
}

/// Where a link puts the created thing's id.
#[derive(Clone, Copy)]
enum Fill {
    /// A path parameter of that name.
    Path(&'static str),
    /// A field of that name in the request body (the rest is generated).
    Body(&'static str),
}

/// What a created thing's id opens: (path, method, status, where the
/// answer's `id` goes, the operations that take it). Served as OpenAPI
/// links, so a client or a fuzzer can follow them.
const LINKS: [(&str, &str, &str, Fill, &[&str]); 7] = [
    (
        "/v1/categories",
        "post",
        "201",
        Fill::Path("id"),
        &["get_category", "update_category"],
    ),
    (
        "/v1/categories",
        "post",
        "201",
        Fill::Body("category_id"),
        &["create_product"],
    ),
    (
        "/v1/shops",
        "post",
        "201",
        Fill::Path("id"),
        &["get_shop", "update_shop"],
    ),
    (
        "/v1/shops",
        "post",
        "201",
        Fill::Body("shop_id"),
        &["create_product"],
    ),
    (
        "/v1/products",
        "post",
        "201",
        Fill::Path("id"),
        &["get_product", "update_product", "discontinue_product"],
    ),
    (
        "/v1/products",
        "post",
        "201",
        Fill::Path("product_id"),
        &[
            "availability",
            "receive",
            "adjust",
            "place_hold",
            "decrement",
        ],
    ),
    (
        "/v1/orders",
        "post",
        "201",
        Fill::Path("id"),
        &[
            "get_order",
            "cancel_order",
            "order_history",
            "get_invoice",
            "refund_order",
            "change_status",
        ],
    ),
];

/// The tagged request enums: like every request struct, their variants
/// refuse unknown fields.
const CLOSED_VARIANTS: [&str; 2] = ["PaymentBody", "TopUpPayment"];

const NO_NUL: &str = "^[^\\u0000]*$";

/// Text never holds the NUL character (PostgreSQL cannot store it; such a
/// request is 400 `invalid_text`): every free-form string schema, one with no
/// `format`, `enum`, `const` or `pattern` of its own, says so as a pattern.
fn forbid_nul(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            let is_string = match fields.get("type") {
                Some(Value::String(t)) => t == "string",
                Some(Value::Array(types)) => types.iter().any(|t| t == "string"),
                _ => false,
            };
            let constrained = ["format", "enum", "const", "pattern"]
                .iter()
                .any(|key| fields.contains_key(*key));
            if is_string && !constrained {
                fields.insert("pattern".to_string(), Value::from(NO_NUL));
            }
            fields.values_mut().for_each(forbid_nul);
        }
        Value::Array(items) => items.iter_mut().for_each(forbid_nul),
        _ => {}
    }
}

/// The document as served, built once: what the derive makes, plus the rules
/// it cannot state (see [`forbid_nul`], [`CLOSED_VARIANTS`],
/// [`extra_rules`]).
pub fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut value = serde_json::to_value(ApiDoc::openapi()).unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot serialize the OpenAPI document");
            json!({})
        });
        forbid_nul(&mut value);
        for name in CLOSED_VARIANTS {
            let variants = value
                .pointer_mut(&format!("/components/schemas/{name}/oneOf"))
                .and_then(Value::as_array_mut);
            for variant in variants.into_iter().flatten() {
                if let Some(fields) = variant.as_object_mut() {
                    fields.insert("additionalProperties".to_string(), false.into());
                }
            }
        }
        for (schema, keyword, rule) in extra_rules() {
            let target = value
                .pointer_mut(&format!("/components/schemas/{schema}"))
                .and_then(Value::as_object_mut);
            if let Some(target) = target {
                target.insert(keyword.to_string(), rule);
            }
        }
        for (path, method, status, fill, targets) in LINKS {
            let pointer = format!(
                "/paths/{}/{method}/responses/{status}",
                path.replace('/', "~1")
            );
            let links = value
                .pointer_mut(&pointer)
                .and_then(Value::as_object_mut)
                .map(|answer| answer.entry("links").or_insert_with(|| json!({})))
                .and_then(Value::as_object_mut);
            let Some(links) = links else { continue };
            for target in targets {
                let link = match fill {
                    Fill::Path(name) => json!({
                        "operationId": target,
                        "parameters": {name: "$response.body#/id"},
                    }),
                    Fill::Body(field) => json!({
                        "operationId": target,
                        "requestBody": {field: "$response.body#/id"},
                    }),
                };
                links.insert(target.to_string(), link);
            }
        }
        value
    })
}

/// The document as JSON, serialized once.
fn document_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| document().to_string())
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
    fn every_link_names_an_operation_and_what_it_takes() {
        let document = document();
        let mut operations = std::collections::HashMap::new();
        for item in document["paths"].as_object().unwrap().values() {
            for operation in item.as_object().unwrap().values() {
                if let Some(id) = operation["operationId"].as_str() {
                    operations.insert(id.to_string(), operation.clone());
                }
            }
        }
        let mut count = 0;
        for (path, method, status, fill, targets) in LINKS {
            let answer = &document["paths"][path][method]["responses"][status];
            for target in targets {
                let link = &answer["links"][*target];
                let operation = operations.get(*target).expect("the target exists");
                assert_eq!(link["operationId"], *target);
                match fill {
                    Fill::Path(name) => {
                        let takes = operation["parameters"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|p| p["name"] == name && p["in"] == "path");
                        assert!(takes, "{target} takes the path parameter {name}");
                    }
                    Fill::Body(field) => {
                        let body = operation["requestBody"]["content"]["application/json"]
                            ["schema"]["$ref"]
                            .as_str()
                            .expect("a body schema");
                        let schema = document
                            .pointer(&body.replace("#/", "/"))
                            .expect("the body schema exists");
                        assert!(
                            schema["properties"][field].is_object(),
                            "{target} takes the body field {field}"
                        );
                    }
                }
                count += 1;
            }
        }
        assert!(count >= 20, "{count} links");
    }

    #[test]
    fn the_docs_page_loads_nothing_from_another_origin() {
        assert!(!DOCS_HTML.contains("http://") && !DOCS_HTML.contains("https://"));
        assert!(DOCS_HTML.contains("src=\"/docs/redoc.standalone.js\""));
    }
}

/// The hand-written patterns, held to the rules they state.
#[cfg(test)]
mod schema_rules {
    use domain::customer::{Email, Fullname, Password, Phone, Username};
    use domain::order::ShippingAddress;
    use domain::payment::{validate_card, CardDetails};
    use domain::values::{optional_text, required_text, Sku};

    use super::*;

    /// One property's schema in the served document.
    fn property(schema: &str, field: &str) -> Value {
        let found = document()
            .pointer(&format!("/components/schemas/{schema}/properties/{field}"))
            .cloned()
            .unwrap_or(Value::Null);
        assert!(found.is_object(), "{schema}.{field} is in the document");
        found
    }

    /// Whether `value` fits a string schema: its pattern and lengths.
    fn fits(schema: &Value, value: &str) -> bool {
        let length = value.chars().count() as u64;
        let pattern_ok = schema["pattern"]
            .as_str()
            .is_none_or(|p| regex::Regex::new(p).unwrap().is_match(value));
        pattern_ok
            && schema["minLength"].as_u64().is_none_or(|min| length >= min)
            && schema["maxLength"].as_u64().is_none_or(|max| length <= max)
    }

    /// A valid value with every interesting character put at its start, in
    /// its middle and at its end, plus the edges of the length rules.
    fn samples(valid: &str, longest: usize) -> Vec<String> {
        let odd = (0u32..=0xa1)
            .chain([
                0x1680, 0x2000, 0x200a, 0x200b, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000, 0xfeff,
            ])
            .filter_map(char::from_u32)
            .chain("@.+-_/ äé".chars());
        let mut out = vec![String::new(), valid.to_string()];
        let middle = valid
            .char_indices()
            .nth(valid.chars().count() / 2)
            .unwrap()
            .0;
        let (head, tail) = valid.split_at(middle);
        for c in odd {
            out.push(format!("{c}{valid}"));
            out.push(format!("{head}{c}{tail}"));
            out.push(format!("{valid}{c}"));
            out.push(format!("{c}{c}"));
        }
        for n in [
            1,
            2,
            3,
            4,
            5,
            6,
            7,
            8,
            12,
            15,
            16,
            19,
            20,
            longest - 1,
            longest,
            longest + 1,
        ] {
            for unit in ["a", "7", "A-"] {
                let text = unit.repeat(n).chars().take(n).collect::<String>();
                out.push(text.clone());
                out.push(format!(" {text}"));
                out.push(format!("{text}\n"));
            }
        }
        for pad in [longest.saturating_sub(12), longest.saturating_sub(11)] {
            out.push(format!("{}@example.com", "a".repeat(pad)));
            out.push(format!(" {}@example.com", "a".repeat(pad)));
        }
        out.extend(
            [
                "12/30", "1/2030", "00/30", "13/30", "012/30", "0012/30", "00012/30", "12/3",
                "12/030",
            ]
            .map(String::from),
        );
        out
    }

    /// Holds a field's schema to the rule the server applies: the same
    /// values fit the one and pass the other. Text that is stored must also
    /// be free of NUL, which PostgreSQL refuses.
    fn agree(schema: &str, field: &str, valid: &str, longest: usize, rule: impl Fn(&str) -> bool) {
        let property = property(schema, field);
        assert!(fits(&property, valid), "{schema}.{field}: {valid:?} fits");
        for value in samples(valid, longest) {
            assert_eq!(
                fits(&property, &value),
                rule(&value),
                "{schema}.{field}: the schema and the rule disagree on {value:?}"
            );
        }
    }

    fn stored(ok: bool, value: &str) -> bool {
        ok && !value.contains('\0')
    }

    fn address(country: &str) -> ShippingAddress {
        ShippingAddress {
            name: "Ada".into(),
            line1: "1 Road".into(),
            line2: None,
            city: "London".into(),
            postal_code: "N1".into(),
            country: country.into(),
        }
    }

    fn card(number: &str, expiry: &str, cvc: &str) -> bool {
        let card = CardDetails {
            number: number.into(),
            expiry: expiry.into(),
            cvc: cvc.into(),
        };
        validate_card(&card).is_ok()
    }

    #[test]
    fn the_schema_states_the_account_rules_exactly() {
        agree("RegisterRequest", "username", "ann.b-1", 32, |s| {
            Username::parse(s).is_ok()
        });
        agree("RegisterRequest", "password", "correct horse", 128, |s| {
            Password::parse(s).is_ok()
        });
        agree("RegisterRequest", "fullname", "Ann Smith", 100, |s| {
            Fullname::parse(s).is_ok()
        });
        agree("RegisterRequest", "email", "ann@example.com", 254, |s| {
            Email::parse(s).is_ok()
        });
        agree("RegisterRequest", "phone", "+44 20-7946 0958", 16, |s| {
            Phone::parse(s).is_ok()
        });
    }

    #[test]
    fn the_schema_states_the_catalog_and_inventory_rules_exactly() {
        use domain::product::{parse_description, parse_image_url, parse_name};
        agree("NewProduct", "name", "Mug", 200, |s| {
            stored(parse_name(s).is_ok(), s)
        });
        agree("NewProduct", "description", "A mug", 5000, |s| {
            stored(parse_description(s).is_ok(), s)
        });
        agree("NewProduct", "sku", "MUG-01", 64, |s| {
            stored(Sku::parse(s).is_ok(), s)
        });
        agree(
            "NewProduct",
            "image_url",
            "https://img.example/a.png",
            2048,
            |s| stored(parse_image_url(s).is_ok(), s),
        );
        for schema in ["NewCategory", "NewShop"] {
            agree(schema, "name", "Tools", 100, |s| {
                stored(required_text("name", s, 100).is_ok(), s)
            });
        }
        agree("NewShop", "address", "1 Road", 500, |s| {
            stored(optional_text("address", Some(s), 500).is_ok(), s)
        });
        agree("Adjust", "reason", "count", 500, |s| {
            stored(required_text("reason", s, 500).is_ok(), s)
        });
        agree("Receive", "reason", "delivery", 500, |s| {
            stored(optional_text("reason", Some(s), 500).is_ok(), s)
        });
        agree("NewCoupon", "code", "SUMMER10", 32, |s| {
            stored(domain::coupon::parse_code(s).is_ok(), s)
        });
    }

    #[test]
    fn the_schema_states_the_address_and_card_rules_exactly() {
        for (field, max) in [
            ("name", 200),
            ("line1", 200),
            ("city", 100),
            ("postal_code", 20),
        ] {
            agree("AddressBody", field, "Ada", max, |s| {
                stored(required_text("field", s, max).is_ok(), s)
            });
        }
        agree("AddressBody", "line2", "Flat 2", 200, |s| {
            stored(optional_text("line2", Some(s), 200).is_ok(), s)
        });
        agree("AddressBody", "country", "GB", 3, |s| {
            address(s).normalized().is_ok()
        });
        agree("CardBody", "card_number", "4242 4242 4242 4242", 19, |s| {
            card(s, "12/30", "123")
        });
        agree("CardBody", "expiry", "12/30", 7, |s| {
            card("4242424242424242", s, "123")
        });
        agree("CardBody", "cvc", "123", 4, |s| {
            card("4242424242424242", "12/30", s)
        });
    }
}
