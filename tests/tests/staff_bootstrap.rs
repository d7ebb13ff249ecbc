//! `shop users create`: bootstrapping staff accounts from the command line,
//! run as the real binary against the real database of a running server.

use reqwest::StatusCode;
use serde_json::{json, Value};
use testkit::{customer_body, expect_json, spawn_app, TestApp};

const OPERATOR_PASSWORD: &str = "the operator chose this one";
const STRANGER_PASSWORD: &str = "a stranger chose this one";

/// Runs `shop users create --role admin --username NAME` (plus `extra`) on
/// the app's database; the exit status and what it printed.
async fn users_create(app: &TestApp, username: &str, extra: &[&str]) -> (bool, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_shop-under-test"))
        .args(["users", "create", "--role", "admin", "--username", username])
        .args(["--password", OPERATOR_PASSWORD])
        .args(["--database-url", &app.db.url])
        .args(extra)
        // The in-process server's master key: it reads what this writes.
        .env("SHOP_MASTER_KEY", testkit::master_key())
        .env_remove("SHOP_USER_PASSWORD")
        .output()
        .await
        .expect("run shop users create");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

async fn login_status(app: &TestApp, username: &str, password: &str) -> StatusCode {
    app.login(username, password).await.status()
}

async fn role_of(app: &TestApp, username: &str, password: &str) -> String {
    let session = app.sign_in(username, password).await;
    let me: Value = expect_json(app.me(Some(&session.token)).await, StatusCode::OK).await;
    me["role"].as_str().unwrap_or_default().to_string()
}

async fn register_stranger(app: &TestApp, username: &str) {
    let mut body = customer_body(username);
    body["password"] = json!(STRANGER_PASSWORD);
    expect_json(app.register(&body).await, StatusCode::CREATED).await;
}

#[tokio::test]
async fn bootstrapping_staff_never_promotes_an_account_registered_by_someone_else() {
    let app = spawn_app().await;
    // A stranger registers the name the operator will bootstrap, in another
    // letter case.
    register_stranger(&app, "ADMIN").await;

    let (ok, output) = users_create(&app, "admin", &[]).await;
    assert!(!ok, "an existing username must be refused: {output}");
    assert!(
        output.contains("--promote"),
        "the refusal says how to promote explicitly: {output}"
    );

    // Nothing changed: the stranger is still a customer with their password.
    assert_eq!(role_of(&app, "ADMIN", STRANGER_PASSWORD).await, "customer");
    assert_eq!(
        login_status(&app, "admin", OPERATOR_PASSWORD).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn promoting_an_existing_account_explicitly_sets_the_operators_password() {
    let app = spawn_app().await;
    register_stranger(&app, "Admin").await;

    let (ok, output) = users_create(&app, "admin", &["--promote"]).await;
    assert!(ok, "promotion asked for explicitly succeeds: {output}");
    assert!(output.contains("promoted"), "{output}");

    // The password the stranger chose no longer signs in; the operator's
    // does, as an admin.
    assert_eq!(
        login_status(&app, "Admin", STRANGER_PASSWORD).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(role_of(&app, "admin", OPERATOR_PASSWORD).await, "admin");
}

#[tokio::test]
async fn bootstrapping_a_new_username_creates_the_staff_account() {
    let app = spawn_app().await;
    let (ok, output) = users_create(&app, "boss", &[]).await;
    assert!(ok, "{output}");
    assert!(output.contains("created admin boss"), "{output}");
    assert_eq!(role_of(&app, "boss", OPERATOR_PASSWORD).await, "admin");
}
