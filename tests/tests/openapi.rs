//! The OpenAPI document at `/openapi.json` and the `/docs` page.
//!
//! Every route is registered together with its document entry
//! (`api::routes`), so the document's paths are the router's; these tests
//! hold the router to answering each documented operation, and the entries
//! to the conventions every client relies on.

use std::collections::BTreeSet;

use domain::metadata::Role;
use reqwest::Method;
use serde_json::Value;
use testkit::spawn_app;

const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];
const ERROR_SCHEMA: &str = "#/components/schemas/ErrorBody";

fn operations(document: &Value) -> Vec<(String, String, &Value)> {
    let mut out = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in METHODS {
            if let Some(operation) = item.get(method) {
                out.push((method.to_uppercase(), path.clone(), operation));
            }
        }
    }
    out
}

async fn fetch_document(app: &testkit::TestApp) -> Value {
    let response = app.get("/openapi.json").await;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_the_router_answers_every_operation_it_documents() {
    let app = spawn_app().await;
    let document = fetch_document(&app).await;
    assert!(
        document["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        document["openapi"]
    );
    assert!(
        operations(&document).len() > 40,
        "too few operations: {}",
        operations(&document).len()
    );

    // And the router really answers each documented operation: never with
    // the fallback's 404 or a 405.
    for (method, path, _) in operations(&document) {
        let concrete = path
            .split('/')
            .map(|segment| match segment {
                "{code}" => "SOMECODE",
                s if s.starts_with('{') => "00000000-0000-0000-0000-000000000000",
                s => s,
            })
            .collect::<Vec<_>>()
            .join("/");
        let response = app
            .request(
                Method::from_bytes(method.as_bytes()).unwrap(),
                &concrete,
                None,
            )
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_ne!(status, 405, "{method} {concrete}: {text}");
        assert!(
            !text.contains("There is no such endpoint."),
            "{method} {concrete} is not routed: {text}"
        );
    }
}

#[tokio::test]
async fn every_error_answer_uses_the_error_schema_and_every_secured_operation_names_its_role() {
    let app = spawn_app().await;
    let document = fetch_document(&app).await;

    let error = &document["components"]["schemas"]["ErrorBody"];
    let required: BTreeSet<&str> = error["required"]
        .as_array()
        .expect("ErrorBody.required")
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(required, BTreeSet::from(["error", "message"]));
    // The schema says what the server sends.
    let body: Value = app.get("/v1/nothing-here").await.json().await.unwrap();
    let sent: BTreeSet<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(sent, required);

    assert!(
        document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer",
        "{}",
        document["components"]["securitySchemes"]
    );

    let mut problems = Vec::new();
    for (method, path, operation) in operations(&document) {
        let name = format!("{method} {path}");
        let responses = operation["responses"].as_object().expect("responses");
        let error_answers: Vec<&String> = responses
            .keys()
            .filter(|status| status.starts_with('4') || status.starts_with('5'))
            .collect();
        for status in &error_answers {
            let schema = &responses[status.as_str()]["content"]["application/json"]["schema"];
            if schema["$ref"] != ERROR_SCHEMA {
                problems.push(format!(
                    "{name}: {status} does not reference ErrorBody: {schema}"
                ));
            }
        }
        let takes_input = operation.get("requestBody").is_some()
            || operation["parameters"]
                .as_array()
                .is_some_and(|p| !p.is_empty());
        if takes_input && !error_answers.iter().any(|s| s.starts_with('4')) {
            problems.push(format!("{name}: takes input but documents no 4xx"));
        }
        if operation.get("requestBody").is_some() {
            for status in ["400", "413", "415", "422"] {
                if !responses.contains_key(status) {
                    problems.push(format!("{name}: takes a body but documents no {status}"));
                }
            }
        }
        if !responses.keys().any(|s| s.starts_with('2')) {
            problems.push(format!("{name}: no success answer"));
        }
        let tags = operation["tags"].as_array().map(Vec::len).unwrap_or(0);
        if tags == 0 {
            problems.push(format!("{name}: no tag"));
        }
        let secured = operation["security"]
            .as_array()
            .is_some_and(|requirements| requirements.iter().any(|r| r.get("bearer").is_some()));
        if secured {
            if !responses.contains_key("401") {
                problems.push(format!("{name}: takes a token but documents no 401"));
            }
            let description = operation["description"].as_str().unwrap_or_default();
            if !description.to_lowercase().contains("role") {
                problems.push(format!("{name}: the description does not name the role"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// `ProjectorStatus` and `AuditEvent` come from the `projections` crate
/// (its `openapi` feature): their schemas list exactly the fields the server
/// sends.
#[tokio::test]
async fn the_operator_schemas_list_the_fields_the_server_sends() {
    let app = spawn_app().await;
    let document = fetch_document(&app).await;
    let properties = |name: &str| -> BTreeSet<String> {
        document["components"]["schemas"][name]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("schema {name}"))
            .keys()
            .cloned()
            .collect()
    };
    let operator = app.bootstrap_staff("ops", Role::Operator).await;
    app.wait_for_read_models(app.latest_position().await).await;

    let projectors: Value = app
        .get_as("/v1/admin/projections", Some(&operator.token))
        .await
        .json()
        .await
        .unwrap();
    let first = projectors
        .as_array()
        .and_then(|p| p.first())
        .expect("at least one projector");
    let sent: BTreeSet<String> = first.as_object().unwrap().keys().cloned().collect();
    assert_eq!(properties("ProjectorStatus"), sent);

    let page: Value = app
        .get_as("/v1/admin/events?limit=1", Some(&operator.token))
        .await
        .json()
        .await
        .unwrap();
    let event = page["events"][0].as_object().expect("an event");
    let sent: BTreeSet<String> = event.keys().cloned().collect();
    assert_eq!(properties("AuditEvent"), sent);
}

#[tokio::test]
async fn docs_is_a_page_that_loads_only_this_servers_script() {
    let app = spawn_app().await;
    let page = app.get("/docs").await;
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://") && !html.contains("//cdn"),
        "the page names another origin: {html}"
    );
    assert!(html.contains("/openapi.json"));

    // Every src/href is a path on this server.
    let mut scripts = Vec::new();
    for attribute in ["src=\"", "href=\"", "spec-url=\""] {
        for (at, _) in html.match_indices(attribute) {
            let value = &html[at + attribute.len()..];
            let value = &value[..value.find('"').unwrap()];
            assert!(
                value.starts_with('/') && !value.starts_with("//"),
                "{attribute}{value} is not a local path"
            );
            if attribute == "src=\"" {
                scripts.push(value.to_string());
            }
        }
    }
    assert!(!scripts.is_empty(), "the page loads no script");
    for script in scripts {
        let response = app.get(&script).await;
        assert_eq!(response.status(), 200, "{script}");
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            content_type.starts_with("text/javascript"),
            "{content_type}"
        );
        let cache = response.headers()["cache-control"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(cache.contains("max-age="), "{cache}");
        let body = response.text().await.unwrap();
        assert!(body.len() > 100_000, "{script} is not the Redoc bundle");
        assert!(body.contains("Redoc"), "{script} is not the Redoc bundle");
    }
}
