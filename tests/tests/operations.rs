//! Operator and auditor endpoints.

use api::staff::{create_staff, StaffAccount, StaffOutcome};
use domain::metadata::Role;
use serde_json::{json, Value};
use testkit::{eventually, spawn_app, TestApp};

async fn staff_token(app: &TestApp, role: Role, username: &str) -> String {
    let outcome = create_staff(
        &app.state,
        StaffAccount {
            role,
            username: username.to_string(),
            password: "correct horse battery".to_string(),
            fullname: None,
            email: None,
            phone: None,
            promote: false,
        },
    )
    .await
    .expect("create a staff account");
    let StaffOutcome::Created(id) = outcome else {
        panic!("the account existed already");
    };
    app.state.tokens.issue(id.as_uuid(), role).unwrap().0
}

#[tokio::test]
async fn an_auditor_follows_a_request_by_its_correlation_id_without_seeing_secrets() {
    let app = spawn_app().await;
    let register = app
        .client
        .post(app.url("/v1/register"))
        .header("x-request-id", "signup-42")
        .json(&json!({
            "username": "ada", "password": "analytical engine", "fullname": "Ada Lovelace",
            "email": "ada@example.com", "phone": "+44 20 7946 0000"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(register.status(), 201);
    let correlation = register
        .headers()
        .get("x-correlation-id")
        .and_then(|v| v.to_str().ok())
        .expect("the request's correlation id")
        .to_string();

    let auditor = staff_token(&app, Role::Auditor, "auditor").await;
    let page: Value = app
        .client
        .get(app.url(&format!("/v1/admin/events?correlation_id={correlation}")))
        .bearer_auth(&auditor)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let events = page["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{page}");
    let event = &events[0];
    assert_eq!(event["event_type"], "CustomerRegistered");
    assert_eq!(event["correlation_id"], correlation.as_str());
    assert_eq!(event["client_request_id"], "signup-42");
    assert_eq!(event["actor"], "anonymous");
    assert_eq!(event["command"], "Register");
    assert_eq!(
        event["payload"]["CustomerRegistered"]["password_hash"],
        "[redacted]"
    );
    assert!(
        !page.to_string().contains("argon2"),
        "a hash leaked: {page}"
    );
}

#[tokio::test]
async fn operators_see_every_projector_and_customers_may_not() {
    let app = spawn_app().await;
    let operator = staff_token(&app, Role::Operator, "ops").await;
    // Wait until the projectors have registered their checkpoints.
    let list = eventually(
        "the projectors to register their checkpoints",
        std::time::Duration::from_secs(10),
        async || {
            let list: Value = app
                .client
                .get(app.url("/v1/admin/projections"))
                .bearer_auth(&operator)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            // The read models' projectors, the outbox, the audit seal, the
            // fulfilment workflow and the hold expiry projector.
            if list.as_array().is_some_and(|l| l.len() == 6) {
                Ok(list)
            } else {
                Err(list)
            }
        },
    )
    .await;
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec![
            "audit_seal",
            "catalog",
            "fulfilment",
            "hold_expiry",
            "notifications",
            "orders"
        ]
    );
    for field in [
        "version",
        "position",
        "lag_events",
        "lag_seconds",
        "state",
        "dead_letters",
    ] {
        assert!(list[0].get(field).is_some(), "missing {field}: {list}");
    }

    let customer = staff_token(&app, Role::Customer, "shopper").await;
    let refused = app
        .client
        .get(app.url("/v1/admin/projections"))
        .bearer_auth(&customer)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
}

/// The value of one sample line of a Prometheus text page.
fn sample(page: &str, metric: &str, label: &str) -> Option<f64> {
    page.lines()
        .find(|l| l.starts_with(metric) && l.contains(label))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn metrics_show_projector_lag_rising_while_paused_and_falling_after_resume() {
    let app = spawn_app().await;
    let admin = staff_token(&app, Role::Admin, "boss").await;
    let scrape = || async {
        let response = app.get("/metrics").await;
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    };
    // The projectors have registered.
    eventually(
        "catalog to register, so that it can be paused",
        std::time::Duration::from_secs(10),
        async || {
            projections::admin::pause(&app.db.pool, "catalog")
                .await
                .is_ok()
        },
    )
    .await;
    for n in 0..20 {
        let created = app
            .client
            .post(app.url("/v1/categories"))
            .bearer_auth(&admin)
            .json(&json!({"name": format!("Paused {n}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
    }
    let page = scrape().await;
    let lag = sample(&page, "projector_lag_events", "projector=\"catalog\"").unwrap();
    assert!(lag >= 20.0, "lag {lag}:\n{page}");
    assert!(page.contains("http_requests_total"), "{page}");
    assert!(page.contains("commands_total"), "{page}");
    assert!(
        page.contains("http_request_duration_seconds_bucket"),
        "{page}"
    );

    projections::admin::resume(&app.db.pool, "catalog")
        .await
        .unwrap();
    eventually(
        "the lag to fall",
        std::time::Duration::from_secs(10),
        async || {
            let page = scrape().await;
            if sample(&page, "projector_lag_events", "projector=\"catalog\"") == Some(0.0) {
                Ok(())
            } else {
                Err(format!("\n{page}"))
            }
        },
    )
    .await;
}
