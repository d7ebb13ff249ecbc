//! The API's own document: `GET /openapi.json` (OpenAPI 3.1, built from the
//! routes as registered, see [`super::document`]) and `/docs`, a page that
//! renders it with a vendored copy of Redoc, so it works without internet
//! access.

use std::sync::OnceLock;

use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::document;
use crate::app::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(openapi_json))
        .routes(routes!(docs_page))
        .routes(routes!(docs_script))
}

/// The document as JSON, serialized once.
fn document_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| document().to_string())
}

/// Redoc's standalone bundle (MIT, see `api/assets/redoc.LICENSE`), vendored
/// so that `/docs` needs no internet access.
const REDOC_JS: &str = include_str!("../../assets/redoc.standalone.js");

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
    use crate::openapi::{Fill, LINKS};

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
    use serde_json::Value;

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
