//! The OpenAPI 3.1 document of the HTTP API: what is not an operation (the
//! description, tags, shared schemas, the bearer scheme), and what is added
//! to every operation once the routes have registered theirs
//! (`crate::routes::api`; served by `crate::routes::docs`).
//!
//! Handlers declare their success answers and the errors their own logic
//! gives (404, 409, 422, ...). The errors every handler gets from the shared
//! extractors are added here by [`ErrorAnswers`], from what the operation
//! takes: a body (400, 413, 415, 422), path or query parameters (400), a
//! bearer token (401), and the database (503). So the document cannot forget
//! them, and they all reference the one error schema,
//! [`crate::error::ErrorBody`].

use serde_json::{json, Value};
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{HeaderBuilder, ObjectBuilder, OpenApi as Document, RefOr, Required, Type};
use utoipa::{Modify, OpenApi};

use crate::app::refusals::{CursorNotFound, InvalidLimit, InvalidMinPosition};
use crate::error::codes::{
    DATABASE_UNAVAILABLE, INVALID_BODY, INVALID_PATH, INVALID_QUERY, INVALID_TEXT, MALFORMED_JSON,
    OVERLOADED, PAYLOAD_TOO_LARGE, REQUEST_TIMEOUT, UNAUTHORIZED, UNSUPPORTED_MEDIA_TYPE,
};
use crate::error::error_answer;

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
    components(schemas(
        crate::error::ErrorBody,
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
    modifiers(&BearerScheme),
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
        (name = "integration", description = "The shop's integration events for other services (also published to NATS JetStream)."),
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

    // An answer the operation documents already (from its refusals) gets
    // the shared causes added to its description.
    let mut add =
        |status: &str, description: &str| match operation.responses.responses.get_mut(status) {
            Some(RefOr::T(answer)) if !answer.description.contains(description) => {
                answer.description = format!("{} {description}", answer.description);
            }
            Some(_) => {}
            None => {
                operation
                    .responses
                    .responses
                    .insert(status.to_string(), error_answer(description));
            }
        };
    if takes_body || takes_path || takes_query {
        let mut causes = Vec::new();
        if takes_body {
            causes.push(format!(
                "the body is not well-formed JSON (`{MALFORMED_JSON}`)"
            ));
            causes.push(format!("a text holds the NUL character (`{INVALID_TEXT}`)"));
        }
        if takes_path {
            causes.push(format!(
                "a path parameter is invalid, e.g. not a UUID (`{INVALID_PATH}`)"
            ));
        }
        if takes_query {
            causes.push(format!(
                "a query parameter is invalid or unknown (`{INVALID_QUERY}`, `{}`, `{}`, ...)",
                InvalidLimit::CODE,
                InvalidMinPosition::CODE
            ));
        }
        add("400", &format!("Malformed request: {}.", causes.join("; ")));
    }
    if takes_cursor {
        add(
            "404",
            &format!(
                "The cursor is not one this list gave out (`{}`).",
                CursorNotFound::CODE
            ),
        );
    }
    if takes_token {
        add(
            "401",
            &format!("No valid bearer token (`{UNAUTHORIZED}`): missing, malformed, expired or not signed by this server."),
        );
    }
    if takes_body {
        add(
            "413",
            &format!("The body is larger than the server accepts (`{PAYLOAD_TOO_LARGE}`)."),
        );
        add(
            "415",
            &format!("The body is not sent as `Content-Type: application/json` (`{UNSUPPORTED_MEDIA_TYPE}`)."),
        );
        add(
            "422",
            &format!("The JSON does not fit the schema: a missing, unknown or mistyped field (`{INVALID_BODY}`)."),
        );
    }
    if uses_database {
        add(
            "503",
            &format!("The database is unavailable (`{DATABASE_UNAVAILABLE}`); try again shortly."),
        );
    }
    // The bounds at the edge of the server apply to every operation.
    add(
        "408",
        &format!(
            "The request took longer than the server allows (`{REQUEST_TIMEOUT}`); send it again."
        ),
    );
    add(
        "503",
        &format!("The server is serving as many requests as it can (`{OVERLOADED}`); try again after `Retry-After`."),
    );
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
pub(crate) enum Fill {
    /// A path parameter of that name.
    Path(&'static str),
    /// A field of that name in the request body (the rest is generated).
    Body(&'static str),
}

/// What a created thing's id opens: (path, method, status, where the
/// answer's `id` goes, the operations that take it). Served as OpenAPI
/// links, so a client or a fuzzer can follow them.
pub(crate) const LINKS: [(&str, &str, &str, Fill, &[&str]); 7] = [
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

/// The `format` that marks a text as "not blank" in the request types
/// (`#[schema(format = "not-blank")]`); [`served`] replaces it by
/// [`NOT_BLANK`].
const NOT_BLANK_FORMAT: &str = "not-blank";

/// Text that holds a character other than white space, and no NUL.
const NOT_BLANK: &str =
    r"^[^\x00]*[^\x00\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00]*$";

/// Every schema marked [`NOT_BLANK_FORMAT`] gets the [`NOT_BLANK`] pattern
/// instead.
fn not_blank(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            if fields.get("format").and_then(Value::as_str) == Some(NOT_BLANK_FORMAT) {
                fields.remove("format");
                fields.insert("pattern".to_string(), Value::from(NOT_BLANK));
            }
            fields.values_mut().for_each(not_blank);
        }
        Value::Array(items) => items.iter_mut().for_each(not_blank),
        _ => {}
    }
}

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

/// The document as served: what the router's `#[utoipa::path]` entries and
/// [`ApiDoc`] make, the error answers every operation gets from the shared
/// extractors ([`ErrorAnswers`]), plus the rules the derive cannot state
/// (see [`forbid_nul`], [`CLOSED_VARIANTS`], [`extra_rules`]) and the links.
pub fn served(mut api: Document) -> Value {
    ErrorAnswers.modify(&mut api);
    {
        let mut value = serde_json::to_value(api).unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot serialize the OpenAPI document");
            json!({})
        });
        not_blank(&mut value);
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
    }
}
