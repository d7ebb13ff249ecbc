//! Liveness and readiness of the real server.

use std::time::Duration;

use api::startup::{AppConfig, AppState, Application};
use serde_json::Value;
use sqlx::postgres::PgPoolOptions;
use testkit::spawn_app;

#[tokio::test]
async fn live_and_ready_answer_200_on_a_migrated_database() {
    let app = spawn_app().await;
    let live = app.get("/health/live").await;
    assert_eq!(live.status(), 200);
    let ready = app.get("/health/ready").await;
    assert_eq!(ready.status(), 200);
}

#[tokio::test]
async fn ready_answers_503_in_the_error_shape_when_the_database_is_unreachable() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let pool = PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(1))
        .connect_lazy(&format!("postgres://postgres@127.0.0.1:{port}/none"))
        .unwrap();
    let state = AppState::new(pool, AppConfig::with_random_secret());
    let app = Application::build("127.0.0.1:0".parse().unwrap(), state)
        .await
        .unwrap();
    let address = app.local_addr().unwrap();
    tokio::spawn(app.run_until_stopped(std::future::pending()));

    let response = reqwest::get(format!("http://{address}/health/ready"))
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "database_unavailable");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));

    let live = reqwest::get(format!("http://{address}/health/live"))
        .await
        .unwrap();
    assert_eq!(live.status(), 200, "the process itself is alive");
}

#[tokio::test]
async fn an_unknown_path_is_404_in_the_error_shape() {
    let app = spawn_app().await;
    let response = app.get("/v1/nothing-here").await;
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "not_found");
}
