//! Who may do what: bearer tokens, roles, strict bodies and the sign-in
//! rate limit, against the real server.

use api::auth::TokenKeys;
use chrono::{Duration, Utc};
use domain::metadata::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use testkit::{
    customer_body, expect_error, expect_json, shipping_address, spawn_app,
    spawn_app_without_payment_callbacks, test_workflow_settings, uuid_field, TestApp, PASSWORD,
};
use uuid::Uuid;

/// Unpadded base64url, as JWTs use it.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
        }
    }
    out
}

fn segment(value: &Value) -> String {
    base64url(value.to_string().as_bytes())
}

/// Claims an admin's token would carry, valid for 15 minutes.
fn admin_claims(id: Uuid) -> Value {
    let now = Utc::now().timestamp();
    json!({"sub": id, "role": "admin", "iat": now, "exp": now + 900})
}

/// Tokens that must not get anyone in, each with what is wrong with it.
fn bad_tokens(app: &TestApp, admin: Uuid, customer_token: &str) -> Vec<(&'static str, String)> {
    let (expired, _) = app
        .state
        .tokens
        .issue_with_ttl(admin, Role::Admin, Duration::minutes(-10))
        .unwrap();
    let (valid, _) = app.state.tokens.issue(admin, Role::Admin).unwrap();
    let parts: Vec<&str> = valid.split('.').collect();
    // Change a character in the middle of the signature (the last one may
    // only carry padding bits).
    let mut signature: Vec<char> = parts[2].chars().collect();
    let middle = signature.len() / 2;
    signature[middle] = if signature[middle] == 'A' { 'B' } else { 'A' };
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        signature.into_iter().collect::<String>()
    );
    // A customer's token whose payload is rewritten to say admin.
    let customer_parts: Vec<&str> = customer_token.split('.').collect();
    let promoted = format!(
        "{}.{}.{}",
        customer_parts[0],
        segment(&admin_claims(admin)),
        customer_parts[2]
    );
    let unsigned = format!(
        "{}.{}.",
        segment(&json!({"alg": "none", "typ": "JWT"})),
        segment(&admin_claims(admin))
    );
    let (foreign, _) = TokenKeys::new(b"somebody else's secret", Duration::minutes(15))
        .issue(admin, Role::Admin)
        .unwrap();
    vec![
        ("expired", expired),
        ("tampered signature", tampered),
        ("payload promoted to admin", promoted),
        ("alg none", unsigned),
        ("signed with another secret", foreign),
        ("not a JWT", "not-a-token".to_string()),
    ]
}

#[tokio::test]
async fn a_missing_expired_tampered_or_unsigned_token_is_401_in_the_error_shape() {
    let app = spawn_app().await;
    let admin = app.bootstrap_admin().await;
    let customer = app.register_customer("mallory").await;
    let events = app.event_count().await;
    let category = json!({"name": "Forbidden fruit"});

    // No Authorization header at all, and headers that are not bearer tokens.
    let missing = app.post_json("/v1/categories", &category, None).await;
    assert_eq!(
        expect_error(missing, StatusCode::UNAUTHORIZED).await["error"],
        "unauthorized"
    );
    expect_error(app.me(None).await, StatusCode::UNAUTHORIZED).await;
    for header in ["Basic YWRtaW46YWRtaW4=", "Bearer", "Bearer ", "bearer"] {
        let response = app
            .request(Method::GET, "/v1/me", None)
            .header("Authorization", header)
            .send()
            .await
            .unwrap();
        expect_error(response, StatusCode::UNAUTHORIZED).await;
    }

    for (what, token) in bad_tokens(&app, admin.id, &customer.token) {
        let response = app
            .post_json("/v1/categories", &category, Some(&token))
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what} token");
        let body = expect_error(response, StatusCode::UNAUTHORIZED).await;
        assert_eq!(body["error"], "unauthorized", "{what} token");

        let response = app.me(Some(&token)).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what} token");
        expect_error(response, StatusCode::UNAUTHORIZED).await;
    }
    assert_eq!(app.event_count().await, events, "nothing is written");

    // The real tokens still work.
    let me = expect_json(app.me(Some(&customer.token)).await, StatusCode::OK).await;
    assert_eq!(me["role"], "customer");
    let created = app
        .post_json("/v1/categories", &category, Some(&admin.token))
        .await;
    expect_json(created, StatusCode::CREATED).await;
}

#[tokio::test]
async fn a_customer_calling_admin_commands_is_403_and_nothing_is_written() {
    let app = spawn_app().await;
    let admin = app.bootstrap_admin().await;
    let category = app.create_category(&admin.token, "Books", None).await;
    let product = app
        .create_product(
            &admin.token,
            &json!({
                "name": "A book", "price": 1200, "sku": "BOOK-1",
                "category_id": category,
            }),
        )
        .await;
    expect_json(app.receive(&admin.token, product, 5).await, StatusCode::OK).await;
    let customer = app.register_customer("eve").await;
    let token = Some(customer.token.as_str());
    let events = app.event_count().await;

    let attempts: Vec<(Method, String, Value)> = vec![
        (
            Method::POST,
            "/v1/products".to_string(),
            json!({"name": "Free book", "price": 1, "sku": "FREE-1", "category_id": category}),
        ),
        (
            Method::POST,
            format!("/v1/inventory/{product}/receive"),
            json!({"quantity": 100}),
        ),
        (
            Method::POST,
            "/v1/categories".to_string(),
            json!({"name": "Mine"}),
        ),
        (
            Method::PUT,
            format!("/v1/products/{product}"),
            json!({"price": 1}),
        ),
        (
            Method::PUT,
            format!("/v1/inventory/{product}/hold"),
            json!({"quantity": 5, "owner_id": customer.id}),
        ),
        (
            Method::POST,
            format!("/v1/inventory/{product}/adjust"),
            json!({"delta": -5, "reason": "mine now"}),
        ),
        (
            Method::POST,
            "/v1/inventory/lock".to_string(),
            json!({"order_id": Uuid::new_v4(), "items": [{"product_id": product, "quantity": 5}]}),
        ),
    ];
    for (method, path, body) in attempts {
        let response = app
            .request(method.clone(), &path, token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let body = expect_error(response, StatusCode::FORBIDDEN).await;
        assert_eq!(body["error"], "forbidden", "{method} {path}");
    }
    let response = app.delete(&format!("/v1/products/{product}"), token).await;
    expect_error(response, StatusCode::FORBIDDEN).await;

    assert_eq!(app.event_count().await, events, "nothing is written");
    assert_eq!(app.availability(product).await, (5, 0, 5));
}

#[tokio::test]
async fn a_body_with_a_field_the_endpoint_does_not_take_is_refused_and_writes_nothing() {
    let app = spawn_app().await;
    let admin = app.bootstrap_admin().await;
    let category = app.create_category(&admin.token, "Books", None).await;
    let product = app
        .create_product(
            &admin.token,
            &json!({"name": "A book", "price": 1200, "sku": "BOOK-1", "category_id": category}),
        )
        .await;
    expect_json(app.receive(&admin.token, product, 5).await, StatusCode::OK).await;
    let events = app.event_count().await;

    let hold = app
        .put_json(
            &format!("/v1/inventory/{product}/hold"),
            &json!({"quantity": 1, "owner_id": Uuid::new_v4(), "price": 0}),
            Some(&admin.token),
        )
        .await;
    let status = hold.status();
    assert!(status.is_client_error(), "hold with a price: {status}");
    expect_error(hold, status).await;
    assert_eq!(app.availability(product).await, (5, 0, 5));

    let mut register = customer_body("trudy");
    register["role"] = json!("admin");
    let response = app.register(&register).await;
    let status = response.status();
    assert!(
        status.is_client_error(),
        "registration with a role: {status}"
    );
    expect_error(response, status).await;
    assert_eq!(app.event_count().await, events, "nothing is written");
    let login = app.login("trudy", PASSWORD).await;
    expect_error(login, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn the_twenty_first_bad_sign_in_within_a_minute_from_one_address_is_429() {
    let app = spawn_app().await;
    let registered = app.register(&customer_body("victim")).await;
    expect_json(registered, StatusCode::CREATED).await;

    // Sent at once, so all 21 reach the limiter within well under the 3 s
    // in which it gives one attempt back (20 a minute), however slowly the
    // password checks behind it run on a loaded machine.
    let attempts = (0..21).map(|_| app.login("victim", "wrong password!"));
    let mut refused = 0;
    for response in futures::future::join_all(attempts).await {
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            let body = expect_error(response, StatusCode::TOO_MANY_REQUESTS).await;
            assert_eq!(body["error"], "too_many_attempts");
            refused += 1;
        } else {
            let body = expect_error(response, StatusCode::UNAUTHORIZED).await;
            assert_eq!(body["error"], "invalid_credentials");
        }
    }
    assert_eq!(refused, 1, "20 attempts are checked, the 21st is refused");

    // The limit is per address: from another one, the right password works.
    let elsewhere = reqwest::Client::builder()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let response = elsewhere
        .post(app.url("/v1/login"))
        .json(&json!({"username": "victim", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let body = expect_json(response, StatusCode::OK).await;
    assert!(body["token"].is_string());
}

#[tokio::test]
async fn a_customer_is_refused_with_403_before_the_body_is_even_read() {
    let app = spawn_app().await;
    let customer = app.register_customer("mallory").await;
    let before = app.event_count().await;
    for (method, path) in [
        (Method::POST, "/v1/products".to_string()),
        (Method::POST, "/v1/categories".to_string()),
        (Method::POST, "/v1/coupons".to_string()),
        (
            Method::POST,
            format!("/v1/inventory/{}/receive", Uuid::new_v4()),
        ),
        (Method::PUT, format!("/v1/orders/{}/status", Uuid::new_v4())),
    ] {
        let response = app
            .request(method, &path, Some(&customer.token))
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap();
        expect_error(response, StatusCode::FORBIDDEN).await;
    }
    assert_eq!(app.event_count().await, before);
}

/// The value of `name` in `response`'s headers, or "" when it has none.
fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().expect("a visible header").to_string())
        .unwrap_or_default()
}

/// The directives of a content security policy, each as written.
fn directives(csp: &str) -> Vec<String> {
    csp.split(';')
        .map(|d| d.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|d| !d.is_empty())
        .collect()
}

/// What every answer carries: `nosniff`, and, unless it says otherwise on
/// purpose, no caching and no framing.
fn assert_base_headers(what: &str, response: &reqwest::Response) {
    assert_eq!(
        header(response, "x-content-type-options"),
        "nosniff",
        "{what}"
    );
    assert_eq!(header(response, "x-frame-options"), "DENY", "{what}");
    assert_eq!(header(response, "referrer-policy"), "no-referrer", "{what}");
    let csp = directives(&header(response, "content-security-policy"));
    assert!(
        csp.iter().any(|d| d == "frame-ancestors 'none'"),
        "{what}: {csp:?}"
    );
    assert!(
        csp.iter().any(|d| d == "default-src 'none'"),
        "{what}: {csp:?}"
    );
}

#[tokio::test]
async fn every_answer_carries_the_fitting_security_headers() {
    let app = spawn_app_without_payment_callbacks(test_workflow_settings()).await;
    let (_admin, products) = app.stocked_catalog(&[(1000, 5)]).await;
    let alice = app.register_customer("alice").await;
    let body = json!({
        "shipping_address": shipping_address(),
        "items": [{"product_id": products[0], "quantity": 1}],
        "payment": {"method": "card", "token": "tok_visa"},
    });
    let order = expect_json(
        app.place_order(&alice.token, &body, None).await,
        StatusCode::CREATED,
    )
    .await;
    let order_id = uuid_field(&order, "id");
    app.wait_for_workflows().await;
    app.capture_payment(order_id, order["total"].as_i64().unwrap())
        .await;
    app.wait_for_workflows().await;

    // JSON: private data, public data, a command's answer, errors (of a
    // handler, of the auth extractor, of the router's fallback).
    let invoice_path = format!("/v1/orders/{order_id}/invoice");
    let operator = app.bootstrap_staff("operator", Role::Operator).await;
    let json_answers = [
        ("GET /v1/me", app.me(Some(&alice.token)).await, 200),
        (
            "GET /v1/cart",
            app.get_as("/v1/cart", Some(&alice.token)).await,
            200,
        ),
        (
            "GET /v1/orders/{id}",
            app.get_as(&format!("/v1/orders/{order_id}"), Some(&alice.token))
                .await,
            200,
        ),
        (
            "GET invoice as JSON",
            app.get_as(&invoice_path, Some(&alice.token)).await,
            200,
        ),
        (
            "GET /v1/admin/projections",
            app.get_as("/v1/admin/projections", Some(&operator.token))
                .await,
            200,
        ),
        (
            "GET /v1/admin/projections as a customer",
            app.get_as("/v1/admin/projections", Some(&alice.token))
                .await,
            403,
        ),
        ("GET /v1/products", app.get("/v1/products").await, 200),
        (
            "POST /v1/cart/items",
            app.add_to_cart(&alice.token, products[0], 1).await,
            200,
        ),
        (
            "GET /v1/orders/{unknown}",
            app.get_as(
                &format!("/v1/orders/{}", Uuid::new_v4()),
                Some(&alice.token),
            )
            .await,
            404,
        ),
        ("GET /v1/me without a token", app.me(None).await, 401),
        ("GET /nowhere", app.get("/nowhere").await, 404),
        ("GET /openapi.json", app.get("/openapi.json").await, 200),
    ];
    for (what, response, status) in &json_answers {
        assert_eq!(response.status().as_u16(), *status, "{what}");
        assert!(
            header(response, "content-type").starts_with("application/json"),
            "{what}"
        );
        assert_base_headers(what, response);
        assert_eq!(header(response, "cache-control"), "no-store", "{what}");
    }

    // The printable invoice: its own strict policy, never stored.
    let page = app
        .request(Method::GET, &invoice_path, Some(&alice.token))
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(header(&page, "content-type").starts_with("text/html"));
    assert_base_headers("the invoice page", &page);
    assert_eq!(header(&page, "cache-control"), "no-store");
    let csp = directives(&header(&page, "content-security-policy"));
    for directive in [
        "style-src 'unsafe-inline'",
        "base-uri 'none'",
        "form-action 'none'",
    ] {
        assert!(csp.iter().any(|d| d == directive), "{directive}: {csp:?}");
    }
    assert!(
        !csp.iter().any(|d| d.starts_with("script-src")),
        "the invoice page runs no script: {csp:?}"
    );
    let html = page.text().await.unwrap();
    assert!(!html.contains("<script"), "{html}");

    // The docs page keeps the policy Redoc needs; its script stays cached.
    let docs = app.get("/docs").await;
    assert_eq!(docs.status(), StatusCode::OK);
    assert_base_headers("/docs", &docs);
    assert!(directives(&header(&docs, "content-security-policy"))
        .iter()
        .any(|d| d == "script-src 'self'"));
    let script = app.get("/docs/redoc.standalone.js").await;
    assert_eq!(script.status(), StatusCode::OK);
    assert_eq!(header(&script, "x-content-type-options"), "nosniff");
    assert!(header(&script, "cache-control").contains("max-age="));
}
