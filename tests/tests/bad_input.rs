//! Whatever a client sends, the answer is a 4xx in the one error shape, never
//! a 5xx, and nothing is written.

use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, Response, StatusCode};
use serde_json::json;
use testkit::{expect_error, expect_json, spawn_app, Session, TestApp};
use uuid::Uuid;

/// An app with an admin and one product with 5 in stock.
async fn stocked_app() -> (TestApp, Session, Uuid) {
    let app = spawn_app().await;
    let admin = app.bootstrap_admin().await;
    let category = app.create_category(&admin.token, "Tools", None).await;
    let product = app
        .create_product(
            &admin.token,
            &json!({"name": "Hammer", "price": 2500, "sku": "HAMMER-1", "category_id": category}),
        )
        .await;
    expect_json(app.receive(&admin.token, product, 5).await, StatusCode::OK).await;
    (app, admin, product)
}

/// POST `body` as it is to `path`, declared as `content_type` when given.
async fn post_raw(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> Response {
    let mut request = app.request(Method::POST, path, token).body(body);
    if let Some(content_type) = content_type {
        request = request.header(CONTENT_TYPE, content_type);
    }
    request.send().await.expect("send request")
}

#[tokio::test]
async fn malformed_json_is_400_in_the_error_shape() {
    let (app, admin, product) = stocked_app().await;
    let events = app.event_count().await;
    let receive = format!("/v1/inventory/{product}/receive");
    for body in [
        r#"{"quantity": "#,
        "{quantity: 1}",
        r#"{"quantity": 1"#,
        "",
        "nul",
    ] {
        let response = post_raw(
            &app,
            &receive,
            Some(&admin.token),
            Some("application/json"),
            body,
        )
        .await;
        let error = expect_error(response, StatusCode::BAD_REQUEST).await;
        assert_eq!(error["error"], "malformed_json", "{body:?}");
    }
    let response = post_raw(
        &app,
        "/v1/register",
        None,
        Some("application/json"),
        r#"{"username": "x""#,
    )
    .await;
    expect_error(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(app.event_count().await, events);
    assert_eq!(app.availability(product).await, (5, 0, 5));
}

#[tokio::test]
async fn a_body_not_declared_as_json_is_415_in_the_error_shape() {
    let (app, admin, product) = stocked_app().await;
    let events = app.event_count().await;
    let receive = format!("/v1/inventory/{product}/receive");
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
    ] {
        let response = post_raw(
            &app,
            &receive,
            Some(&admin.token),
            content_type,
            r#"{"quantity": 1}"#,
        )
        .await;
        let error = expect_error(response, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
        assert_eq!(error["error"], "unsupported_media_type", "{content_type:?}");
    }
    assert_eq!(app.event_count().await, events);
    assert_eq!(app.availability(product).await, (5, 0, 5));
}

#[tokio::test]
async fn a_3_mb_body_is_413_in_the_error_shape() {
    let (app, admin, product) = stocked_app().await;
    let events = app.event_count().await;
    let huge = format!(
        r#"{{"quantity": 1, "reason": "{}"}}"#,
        "x".repeat(3 * 1024 * 1024)
    );
    let response = post_raw(
        &app,
        &format!("/v1/inventory/{product}/receive"),
        Some(&admin.token),
        Some("application/json"),
        huge.clone(),
    )
    .await;
    let error = expect_error(response, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert_eq!(error["error"], "payload_too_large");

    // Unauthenticated endpoints too.
    let response = post_raw(&app, "/v1/register", None, Some("application/json"), huge).await;
    expect_error(response, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert_eq!(app.event_count().await, events);
    assert_eq!(app.availability(product).await, (5, 0, 5));
}

#[tokio::test]
async fn a_quantity_that_is_not_a_positive_whole_number_in_range_is_422_in_the_error_shape() {
    let (app, admin, product) = stocked_app().await;
    let events = app.event_count().await;
    let receive = format!("/v1/inventory/{product}/receive");
    let post = |body: String| {
        post_raw(
            &app,
            &receive,
            Some(&admin.token),
            Some("application/json"),
            body,
        )
    };
    for quantity in [
        "0",
        "-1",
        "9223372036854775808",
        "-9223372036854775809",
        "18446744073709551616",
        "1.5",
        "1e7",
        r#""1""#,
        "null",
        "[1]",
        "1000001",
    ] {
        let response = post(format!(r#"{{"quantity": {quantity}}}"#)).await;
        let status = response.status();
        assert!(!status.is_server_error(), "quantity {quantity}: {status}");
        let error = expect_error(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert!(
            ["invalid_quantity", "invalid_body"].contains(&error["error"].as_str().unwrap()),
            "quantity {quantity}: {error}"
        );
    }
    // A body that is JSON but not an object (an array of the fields too),
    // or lacks the quantity.
    for body in [
        "[]",
        "[3]",
        r#"[3, "count"]"#,
        "1",
        r#""quantity""#,
        "{}",
        r#"{"reason": "count"}"#,
    ] {
        let response = post(body.to_string()).await;
        expect_error(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    assert_eq!(app.event_count().await, events);
    assert_eq!(app.availability(product).await, (5, 0, 5));

    // A whole number written with a fraction or an exponent is an integer,
    // as JSON Schema has it.
    for quantity in ["2.0", "1e1"] {
        let response = post(format!(r#"{{"quantity": {quantity}}}"#)).await;
        expect_json(response, StatusCode::OK).await;
    }
    assert_eq!(app.availability(product).await, (17, 0, 17));
}

#[tokio::test]
async fn an_id_in_the_path_that_is_not_a_uuid_is_400_in_the_error_shape() {
    let (app, admin, product) = stocked_app().await;
    let events = app.event_count().await;
    let token = Some(admin.token.as_str());
    let hold = json!({"quantity": 1, "owner_id": Uuid::new_v4()});
    let receive = json!({"quantity": 1});
    let cases = [
        (
            Method::GET,
            "/v1/inventory/not-a-uuid/availability".to_string(),
            None,
        ),
        (
            Method::POST,
            "/v1/inventory/123/receive".to_string(),
            Some(&receive),
        ),
        (
            Method::PUT,
            "/v1/inventory/%00/hold".to_string(),
            Some(&hold),
        ),
        (
            Method::DELETE,
            format!("/v1/inventory/{product}/hold/xyz"),
            None,
        ),
        (
            Method::GET,
            "/v1/products/1;DROP TABLE events".to_string(),
            None,
        ),
        (
            Method::DELETE,
            "/v1/products/00000000-0000-0000-0000".to_string(),
            None,
        ),
        (Method::GET, "/v1/categories/%F0%9F%92%A9".to_string(), None),
        (Method::PUT, "/v1/shops/shop-1".to_string(), Some(&receive)),
    ];
    for (method, path, body) in cases {
        let mut request = app.request(method.clone(), &path, token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let error = expect_error(response, StatusCode::BAD_REQUEST).await;
        assert_eq!(error["error"], "invalid_path", "{method} {path}");
    }
    assert_eq!(app.event_count().await, events);
    assert_eq!(app.availability(product).await, (5, 0, 5));
}

#[tokio::test]
async fn a_method_the_path_does_not_take_is_405_in_the_error_shape() {
    let (app, admin, product) = stocked_app().await;
    let events = app.event_count().await;
    let token = Some(admin.token.as_str());
    let cases = [
        (Method::GET, "/v1/register".to_string()),
        // DELETE /v1/me forgets the account; PUT is not taken.
        (Method::PUT, "/v1/me".to_string()),
        (Method::PATCH, format!("/v1/products/{product}")),
        (Method::POST, format!("/v1/inventory/{product}/hold")),
        (Method::GET, "/v1/inventory/lock".to_string()),
    ];
    for (method, path) in cases {
        let response = app
            .request(method.clone(), &path, token)
            .send()
            .await
            .unwrap();
        assert!(
            response.headers().contains_key("allow"),
            "{method} {path} names the methods it takes"
        );
        let error = expect_error(response, StatusCode::METHOD_NOT_ALLOWED).await;
        assert_eq!(error["error"], "method_not_allowed", "{method} {path}");
    }
    assert_eq!(app.event_count().await, events);
}

#[tokio::test]
async fn a_min_position_past_the_end_of_the_log_answers_at_once_from_the_whole_log() {
    // A position no command answered (one from before a restore, say) stands
    // for everything committed: no waiting, no 503, the same answers as
    // without it.
    let (app, _admin, product) = stocked_app().await;
    let beyond = app.latest_position().await + 1_000_000;
    let paths = [
        (
            format!("/v1/products/{product}?min_position={beyond}"),
            StatusCode::OK,
        ),
        (
            format!("/v1/products/{}?min_position={beyond}", Uuid::new_v4()),
            StatusCode::NOT_FOUND,
        ),
        (
            format!("/v1/inventory/{product}/availability?min_position={beyond}"),
            StatusCode::OK,
        ),
        (
            format!("/v1/categories/{}?min_position={beyond}", Uuid::new_v4()),
            StatusCode::NOT_FOUND,
        ),
        (
            format!("/v1/products?min_position={beyond}"),
            StatusCode::OK,
        ),
    ];
    for (path, status) in paths {
        let started = std::time::Instant::now();
        let response = app.get(&path).await;
        assert_eq!(response.status(), status, "{path}");
        assert!(
            !response.headers().contains_key("x-read-model-stale"),
            "{path} is answered from a read model that has every event"
        );
        assert!(
            started.elapsed() < api::read::MAX_WAIT,
            "{path} waited for a position that will never come"
        );
    }
    let products = expect_json(
        app.get(&format!("/v1/products?min_position={beyond}"))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(products["products"][0]["id"], product.to_string());
    // The header form too.
    let response = app
        .request(Method::GET, &format!("/v1/products/{product}"), None)
        .header("X-Min-Position", beyond.to_string())
        .send()
        .await
        .unwrap();
    let body = expect_json(response, StatusCode::OK).await;
    assert_eq!(body["id"], product.to_string());
}

#[tokio::test]
async fn cursors_and_freshness_headers_are_checked_and_an_empty_cursor_is_the_first_page() {
    let (app, _admin, product) = stocked_app().await;
    let head = app.latest_position().await;
    let first = expect_json(
        app.get(&format!("/v1/products?cursor=&min_position={head}"))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(first["products"][0]["id"], product.to_string());
    for path in [
        "/v1/products?cursor=bm90LWEtY3Vyc29y",
        "/v1/products?cursor=!!",
        "/v1/shops?cursor=e30",
    ] {
        let error = expect_error(app.get(path).await, StatusCode::NOT_FOUND).await;
        assert_eq!(error["error"], "cursor_not_found", "{path}");
    }
    // The query parameter wins, but a header that is not an integer is
    // refused either way.
    for query in ["", "?min_position=1"] {
        let response = app
            .request(Method::GET, &format!("/v1/products{query}"), None)
            .header("X-Min-Position", "9223372036854775808")
            .send()
            .await
            .unwrap();
        let error = expect_error(response, StatusCode::BAD_REQUEST).await;
        assert_eq!(error["error"], "invalid_min_position", "{query}");
    }
}

#[tokio::test]
async fn text_with_the_nul_character_is_400_in_the_error_shape_and_writes_nothing() {
    let (app, admin, _product) = stocked_app().await;
    let events = app.event_count().await;
    let bodies = [
        ("/v1/shops", json!({"name": "Nul\u{0}Shop"})),
        ("/v1/categories", json!({"name": "Nul\u{0}"})),
        ("/v1/shops", json!({"name": "Shop", "address": "\u{0}"})),
    ];
    for (path, body) in bodies {
        let response = app.post_json(path, &body, Some(&admin.token)).await;
        let error = expect_error(response, StatusCode::BAD_REQUEST).await;
        assert_eq!(error["error"], "invalid_text", "{path} {body}");
    }
    assert_eq!(app.event_count().await, events, "nothing was written");

    // The event log is the operators' (and auditors'), not the admins'.
    let operator = app
        .bootstrap_staff("operator", domain::metadata::Role::Operator)
        .await;
    let queries = [
        ("/v1/products?search=a%00b", &admin),
        ("/v1/products/search?q=%00", &admin),
        ("/v1/categories/search?q=%00", &admin),
        ("/v1/admin/events?correlation_id=%00", &operator),
    ];
    for (path, caller) in queries {
        let response = app.get_as(path, Some(&caller.token)).await;
        let error = expect_error(response, StatusCode::BAD_REQUEST).await;
        assert_eq!(error["error"], "invalid_text", "{path}");
    }
}
