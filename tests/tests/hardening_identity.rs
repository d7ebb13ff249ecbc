//! Identity and personal data: tokens end when their account changes or is
//! revoked, the server (not the client) chooses correlation ids, staff ids
//! stay hidden from customers, and operators see personal data redacted.

use std::time::Duration;

use api::staff::{create_staff, StaffAccount, StaffOutcome};
use api::startup::{AppConfig, AppState, DEFAULT_TOKEN_CHECK_CACHE};
use domain::metadata::Role;
use reqwest::StatusCode;
use serde_json::json;
use testkit::{
    customer_body, eventually, expect_error, expect_json, shipping_address, spawn_app, uuid_field,
    TestApp, PASSWORD,
};

/// How long a test waits for a server to notice an account's change: its
/// token check cache time, and then some for a slow machine.
fn cache_time_and_slack() -> Duration {
    DEFAULT_TOKEN_CHECK_CACHE + Duration::from_secs(10)
}

/// What `shop users ...` builds: its own state on the server's database
/// (another process, so nothing it does reaches the server's memory).
fn command_line(app: &TestApp) -> AppState {
    AppState::new(app.db.pool.clone(), AppConfig::with_random_secret())
}

async fn create_category(app: &TestApp, token: &str, name: &str) -> reqwest::Response {
    app.post_json("/v1/categories", &json!({ "name": name }), Some(token))
        .await
}

#[tokio::test]
async fn a_demoted_staff_token_no_longer_grants_its_old_role() {
    let app = spawn_app().await;
    let admin = app.bootstrap_admin().await;
    // The server has read the account (and remembers it) once the token works.
    expect_json(
        create_category(&app, &admin.token, "Before").await,
        StatusCode::CREATED,
    )
    .await;

    // `shop users create --role customer --username admin --promote`.
    let outcome = create_staff(
        &command_line(&app),
        StaffAccount {
            role: Role::Customer,
            username: admin.username.clone(),
            password: PASSWORD.to_string(),
            fullname: None,
            email: None,
            phone: None,
            promote: true,
        },
    )
    .await
    .expect("demote the admin");
    assert!(matches!(outcome, StaffOutcome::Promoted(_)), "{outcome:?}");

    eventually(
        "the old admin token to be refused",
        cache_time_and_slack(),
        async || {
            let response = create_category(&app, &admin.token, "After").await;
            match response.status() {
                StatusCode::UNAUTHORIZED => Ok(()),
                other => Err(format!("status {other}")),
            }
        },
    )
    .await;
    let refused = expect_error(
        create_category(&app, &admin.token, "After").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(refused["error"], "unauthorized", "{refused}");

    // Signing in again gives a token of the new role only.
    let again = app.sign_in(&admin.username, PASSWORD).await;
    expect_error(
        create_category(&app, &again.token, "After").await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let me = expect_json(app.me(Some(&again.token)).await, StatusCode::OK).await;
    assert_eq!(me["role"], "customer", "{me}");
}

#[tokio::test]
async fn revoking_a_users_tokens_ends_them() {
    let app = spawn_app().await;
    let alice = app.register_customer("alice").await;
    let bob = app.register_customer("bob").await;
    expect_json(app.me(Some(&alice.token)).await, StatusCode::OK).await;

    // `shop users revoke alice`, in letter case of its own.
    api::app::revoke_tokens::revoke_tokens(&command_line(&app), "ALICE")
        .await
        .expect("revoke alice's tokens");

    eventually(
        "alice's old token to be refused",
        cache_time_and_slack(),
        async || {
            let status = app.me(Some(&alice.token)).await.status();
            if status == StatusCode::UNAUTHORIZED {
                Ok(())
            } else {
                Err(format!("status {status}"))
            }
        },
    )
    .await;
    expect_error(app.me(Some(&alice.token)).await, StatusCode::UNAUTHORIZED).await;
    // Nobody else's tokens end, and alice signs in again.
    expect_json(app.me(Some(&bob.token)).await, StatusCode::OK).await;
    let again = app.sign_in("alice", PASSWORD).await;
    expect_json(app.me(Some(&again.token)).await, StatusCode::OK).await;

    // An unknown username is refused, and changes nothing.
    let events = app.event_count().await;
    let unknown = api::app::revoke_tokens::revoke_tokens(&command_line(&app), "nobody")
        .await
        .expect_err("nobody has no tokens");
    assert_eq!(
        api::error::ApiError::from(unknown).status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.event_count().await, events);
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

#[tokio::test]
async fn a_client_cannot_choose_the_correlation_id_of_its_events() {
    let app = spawn_app().await;
    let alice = app.register(&customer_body("alice")).await;
    let alices = header(&alice, "x-correlation-id").expect("alice's correlation id");
    expect_json(alice, StatusCode::CREATED).await;

    // Mallory names her request after alice's.
    let mallory = app
        .request(reqwest::Method::POST, "/v1/register", None)
        .header("X-Request-Id", &alices)
        .json(&customer_body("mallory"))
        .send()
        .await
        .expect("send request");
    assert_eq!(header(&mallory, "x-request-id"), Some(alices.clone()));
    let mallorys = header(&mallory, "x-correlation-id").expect("mallory's correlation id");
    assert_ne!(mallorys, alices);
    expect_json(mallory, StatusCode::CREATED).await;

    let auditor = app.bootstrap_staff("auditor", Role::Auditor).await;
    let events = |correlation: String| {
        let app = &app;
        let token = auditor.token.clone();
        async move {
            let page = expect_json(
                app.get_as(
                    &format!("/v1/admin/events?correlation_id={correlation}"),
                    Some(&token),
                )
                .await,
                StatusCode::OK,
            )
            .await;
            page["events"].as_array().cloned().unwrap_or_default()
        }
    };
    let filed_under_alices = events(alices.clone()).await;
    assert_eq!(filed_under_alices.len(), 1, "{filed_under_alices:?}");
    assert_eq!(
        filed_under_alices[0]["payload"]["CustomerRegistered"]["username"],
        "alice"
    );
    assert!(filed_under_alices[0]["client_request_id"].is_null());
    let mallorys_events = events(mallorys.clone()).await;
    assert_eq!(mallorys_events.len(), 1, "{mallorys_events:?}");
    assert_eq!(mallorys_events[0]["client_request_id"], alices.as_str());
}

/// Alice, registered, with an order placed to her address; the events of
/// her account and her order as `reader` reads them in the event log.
async fn alices_events_as(app: &TestApp, reader: &str) -> (serde_json::Value, serde_json::Value) {
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
    let page = |query: String| async move {
        expect_json(
            app.get_as(&format!("/v1/admin/events?{query}"), Some(reader))
                .await,
            StatusCode::OK,
        )
        .await
    };
    let account = page(format!("aggregate_type=Customer&aggregate_id={}", alice.id)).await;
    let order = page(format!(
        "aggregate_type=Order&aggregate_id={order_id}&limit=1"
    ))
    .await;
    (account, order)
}

#[tokio::test]
async fn operators_see_events_with_personal_data_redacted() {
    let app = spawn_app().await;
    let operator = app.bootstrap_staff("operator", Role::Operator).await;
    let (account, order) = alices_events_as(&app, &operator.token).await;

    let registered = &account["events"][0];
    assert_eq!(registered["event_type"], "CustomerRegistered", "{account}");
    let fields = &registered["payload"]["CustomerRegistered"];
    for personal in ["username", "fullname", "email", "phone"] {
        assert_eq!(fields[personal], "[redacted]", "{personal}: {account}");
    }
    assert_eq!(fields["password_hash"], "[redacted]");
    // What is not personal stays readable.
    assert_eq!(fields["role"], "customer");
    assert!(fields["customer_id"].is_string(), "{account}");

    let placed = &order["events"][0];
    assert_eq!(placed["event_type"], "OrderPlaced", "{order}");
    assert_eq!(
        placed["payload"]["OrderPlaced"]["shipping_address"],
        "[redacted]"
    );
    assert!(
        placed["payload"]["OrderPlaced"]["total"].is_object(),
        "{order}"
    );
    for page in [&account, &order] {
        let text = page.to_string();
        for personal in ["alice", "Ada Lovelace", "7946", "St James", "SW1Y"] {
            assert!(!text.contains(personal), "{personal} leaked: {text}");
        }
    }
}

#[tokio::test]
async fn auditors_see_events_with_personal_data() {
    let app = spawn_app().await;
    let auditor = app.bootstrap_staff("auditor", Role::Auditor).await;
    let (account, order) = alices_events_as(&app, &auditor.token).await;

    let fields = &account["events"][0]["payload"]["CustomerRegistered"];
    assert_eq!(fields["username"], "alice", "{account}");
    assert_eq!(fields["fullname"], "Ada Lovelace");
    assert_eq!(fields["email"], "alice@example.com");
    assert!(fields["phone"].as_str().is_some_and(|p| p.contains("7946")));
    // Secrets stay secret for everyone.
    assert_eq!(fields["password_hash"], "[redacted]");
    let address = &order["events"][0]["payload"]["OrderPlaced"]["shipping_address"];
    assert_eq!(address["line1"], "12 St James's Square", "{order}");
}

#[tokio::test]
async fn admins_cannot_read_the_event_log_or_projection_status() {
    let app = spawn_app().await;
    let admin = app.bootstrap_admin().await;
    let operator = app.bootstrap_staff("operator", Role::Operator).await;
    let auditor = app.bootstrap_staff("auditor", Role::Auditor).await;
    let events = "/v1/admin/events";
    let projections = "/v1/admin/projections";

    for path in [events, projections] {
        let refused = expect_error(
            app.get_as(path, Some(&admin.token)).await,
            StatusCode::FORBIDDEN,
        )
        .await;
        assert_eq!(refused["error"], "forbidden", "{path}: {refused}");
        expect_json(
            app.get_as(path, Some(&operator.token)).await,
            StatusCode::OK,
        )
        .await;
    }
    // API.md: the event log is the operators' and the auditors', the
    // projectors' status the operators' alone.
    expect_json(
        app.get_as(events, Some(&auditor.token)).await,
        StatusCode::OK,
    )
    .await;
    expect_error(
        app.get_as(projections, Some(&auditor.token)).await,
        StatusCode::FORBIDDEN,
    )
    .await;
}

#[tokio::test]
async fn a_customer_sees_only_the_role_of_staff_in_their_order_history() {
    let app = spawn_app().await;
    let (admin, products) = app.stocked_catalog(&[(1000, 5)]).await;
    let auditor = app.bootstrap_staff("auditor", Role::Auditor).await;
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
    // The admin cancels it: an event whose actor is the admin's account.
    expect_json(
        app.post_json(
            &format!("/v1/orders/{order_id}/cancel"),
            &json!({}),
            Some(&admin.token),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let path = format!("/v1/orders/{order_id}/history");
    let actors = |history: serde_json::Value| -> Vec<String> {
        history
            .as_array()
            .expect("a list of events")
            .iter()
            .map(|e| e["actor"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let full = format!("admin:{}", admin.id);

    let told_alice = expect_json(app.get_as(&path, Some(&alice.token)).await, StatusCode::OK).await;
    let text = told_alice.to_string();
    assert!(!text.contains(&admin.id.to_string()), "{text}");
    let alices = actors(told_alice);
    assert!(alices.contains(&"admin".to_string()), "{alices:?}");
    assert!(alices.contains(&"customer".to_string()), "{alices:?}");
    assert!(
        alices
            .iter()
            .all(|a| !a.contains(':') || a.starts_with("system:")),
        "{alices:?}"
    );

    for staff in [&admin, &auditor] {
        let told = expect_json(app.get_as(&path, Some(&staff.token)).await, StatusCode::OK).await;
        let staffs = actors(told);
        assert!(staffs.contains(&full), "{staffs:?}");
        assert!(
            staffs.contains(&format!("customer:{}", alice.id)),
            "{staffs:?}"
        );
    }
}

#[tokio::test]
async fn an_account_id_cannot_be_derived_from_its_username_without_the_installation_secret() {
    let app = spawn_app().await;
    let registered = expect_json(
        app.register(&customer_body("alice")).await,
        StatusCode::CREATED,
    )
    .await;
    let id = uuid_field(&registered, "customer_id");
    let anyone_can_compute = domain::values::derived_id("customer", "alice");
    assert_ne!(id, anyone_can_compute);

    // Another installation (its own database, its own secret) gives the same
    // username another id.
    let elsewhere = spawn_app().await;
    let there = expect_json(
        elsewhere.register(&customer_body("alice")).await,
        StatusCode::CREATED,
    )
    .await;
    assert_ne!(uuid_field(&there, "customer_id"), id);

    // Here, the id is the account's in every letter case.
    assert_eq!(app.sign_in("ALICE", PASSWORD).await.id, id);
    let events = app.event_count().await;
    let twice = expect_error(
        app.register(&customer_body("Alice")).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(twice["error"], "username_taken");
    assert_eq!(app.event_count().await, events);
}

#[tokio::test]
async fn an_account_registered_under_the_legacy_derivation_still_signs_in_and_cannot_be_registered_twice(
) {
    use domain::customer::{CustomerCommand, Email, Fullname, Phone, Username};
    use domain::metadata::{Actor, CommandMetadata};

    let app = spawn_app().await;
    // Registered as accounts were before ids were keyed.
    let username = Username::parse("Legacy").unwrap();
    let legacy = username.customer_id();
    let register = CustomerCommand::Register {
        customer_id: legacy,
        username,
        password_hash: api::app::register::hash(&app.state, PASSWORD.to_string())
            .await
            .unwrap(),
        fullname: Fullname::parse("Old Timer").unwrap(),
        email: Email::parse("legacy@example.com").unwrap(),
        phone: Phone::parse("+44 20 7946 0001").unwrap(),
        role: Role::Customer,
    };
    let meta = CommandMetadata::new(Actor::Anonymous, "before", "Register");
    app.state
        .customers
        .execute(&legacy.to_string(), register, &meta)
        .await
        .expect("register under the legacy id");

    let session = app.sign_in("legacy", PASSWORD).await;
    assert_eq!(session.id, legacy.as_uuid());
    let me = expect_json(app.me(Some(&session.token)).await, StatusCode::OK).await;
    assert_eq!(me["username"], "Legacy", "{me}");

    let events = app.event_count().await;
    let twice = expect_error(
        app.register(&customer_body("LEGACY")).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(twice["error"], "username_taken");
    let staff = create_staff(
        &app.state,
        StaffAccount {
            role: Role::Admin,
            username: "legacy".to_string(),
            password: PASSWORD.to_string(),
            fullname: None,
            email: None,
            phone: None,
            promote: false,
        },
    )
    .await;
    assert!(
        matches!(
            staff,
            Err(api::staff::CreateStaffError::UsernameTaken { .. })
        ),
        "{staff:?}"
    );
    assert_eq!(app.event_count().await, events);
}
