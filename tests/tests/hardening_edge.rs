//! The server at its edge: what a database restart, slow or idle clients,
//! floods and proxies do to its answers.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api::postgres_cluster::PrivateCluster;
use api::startup::{AppConfig, AppState, Application};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};
use testkit::{
    assert_error_shape, customer_body, eventually, expect_error, fresh_database, spawn_app_on,
    TestApp, TestDatabase,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use uuid::Uuid;

/// The server with `config` on `pool` (a pool on `db`), without projectors:
/// a read with `min_position` past what they applied waits its full bound.
async fn serve_with(config: AppConfig, db: TestDatabase, pool: PgPool) -> TestApp {
    let state = AppState::new(pool, config);
    let app = Application::build("127.0.0.1:0".parse().expect("address"), state.clone())
        .await
        .expect("bind the server");
    let address = format!("http://{}", app.local_addr().expect("local address"));
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    TestApp {
        address,
        client: reqwest::Client::new(),
        db,
        state,
        payment_callbacks: false,
    }
}

/// [`serve_with`] on a fresh database and its pool.
async fn spawn_with(config: AppConfig) -> TestApp {
    let db = fresh_database().await;
    let pool = db.pool.clone();
    serve_with(config, db, pool).await
}

/// The server's `host:port`.
fn host_of(app: &TestApp) -> String {
    app.address.trim_start_matches("http://").to_string()
}

/// Raises the soft limit of open files to `wanted` (at most the hard limit).
fn allow_open_files(wanted: u64) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("read the open-file limit");
    if soft < wanted {
        setrlimit(Resource::RLIMIT_NOFILE, wanted.min(hard), hard)
            .expect("raise the open-file limit");
    }
}

/// A folder of this test run for what a test keeps on disk.
fn scratch(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("hardening_edge")
        .join(format!("{name}-{}", Uuid::new_v4().simple()))
}

/// A fresh, migrated database on `cluster`.
async fn database_on(cluster: &PrivateCluster) -> TestDatabase {
    let name = "shop".to_string();
    let mut admin = sqlx::PgConnection::connect_with(
        &PgConnectOptions::from_str(&cluster.url("postgres"))
            .expect("admin url")
            .disable_statement_logging(),
    )
    .await
    .expect("connect to the private cluster");
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut admin)
        .await
        .expect("create the database");
    let url = cluster.url(&name);
    let pool = PgPoolOptions::new()
        .max_connections(20)
        .acquire_timeout(Duration::from_secs(2))
        .connect_with(
            PgConnectOptions::from_str(&url)
                .expect("url")
                .disable_statement_logging(),
        )
        .await
        .expect("connect to the database");
    api::startup::migrate(&pool).await.expect("migrate");
    TestDatabase { name, url, pool }
}

/// What the load saw.
#[derive(Default)]
struct Seen {
    /// Every status, with whether a 503 carried `Retry-After`.
    statuses: Vec<(StatusCode, bool, String)>,
    /// The categories whose creation was answered 201.
    acknowledged: Vec<Uuid>,
}

impl Seen {
    fn count(&self, f: impl Fn(StatusCode) -> bool) -> usize {
        self.statuses.iter().filter(|(s, _, _)| f(*s)).count()
    }
}

/// Who the load acts as.
struct Actors {
    admin: String,
    customer: String,
    product: Uuid,
}

/// One round of mixed reads and commands.
async fn one_round(app: &TestApp, actors: &Actors, seen: &Mutex<Seen>) {
    let (admin, customer) = (Some(actors.admin.as_str()), Some(actors.customer.as_str()));
    let name = format!("Category {}", Uuid::new_v4().simple());
    let order = json!({
        "items": [{"product_id": actors.product, "quantity": 1}],
        "shipping_address": testkit::shipping_address(),
        "payment": {"method": "card", "token": "tok_visa"},
    });
    let item = json!({"product_id": actors.product, "quantity": 1});
    use reqwest::Method;
    let requests = [
        app.request(Method::POST, "/v1/categories", admin)
            .json(&json!({"name": name})),
        app.request(Method::POST, "/v1/orders", customer)
            .json(&order),
        app.request(Method::POST, "/v1/cart/items", customer)
            .json(&item),
        app.request(Method::GET, "/v1/categories", None),
        app.request(Method::GET, "/v1/products?min_position=1", None),
        app.request(Method::GET, "/v1/products/search?q=tea", None),
        app.request(
            Method::GET,
            &format!("/v1/products/{}", actors.product),
            None,
        ),
        app.request(
            Method::GET,
            &format!("/v1/inventory/{}/availability", actors.product),
            None,
        ),
        app.request(Method::GET, "/v1/me", admin),
        app.request(Method::GET, "/v1/cart", customer),
        app.request(Method::GET, "/v1/orders", customer),
        app.request(Method::GET, "/v1/wallet", customer),
        app.request(Method::GET, "/v1/notifications", customer),
        app.request(Method::GET, "/v1/admin/events?limit=5", admin),
        app.request(Method::GET, "/v1/admin/projections", admin),
        app.request(Method::GET, "/health/ready", None),
        app.request(Method::POST, "/v1/login", None)
            .json(&json!({"username": "nobody", "password": "wrong"})),
    ];
    for request in requests {
        let Ok(response) = request.send().await else {
            continue;
        };
        let status = response.status();
        let retry_after = response.headers().contains_key("retry-after");
        let text = response.text().await.unwrap_or_default();
        let mut seen = seen.lock().unwrap();
        if status == StatusCode::CREATED {
            let body = serde_json::from_str::<Value>(&text).unwrap_or_default();
            let id = ["id", "order_id"]
                .iter()
                .find_map(|field| body[field].as_str().and_then(|s| Uuid::parse_str(s).ok()));
            if let Some(id) = id {
                seen.acknowledged.push(id);
            }
        }
        seen.statuses.push((status, retry_after, text));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_postgresql_restart_under_load_gives_503_never_500() {
    let cluster = PrivateCluster::start(&scratch("restart"))
        .await
        .expect("start a private cluster");
    let db = database_on(&cluster).await;
    let pool = db.pool.clone();
    let app = Arc::new(spawn_app_on(db).await);
    let (admin, products) = app.stocked_catalog(&[(500, 100_000)]).await;
    let customer = app.register_customer("alice").await;
    let actors = Arc::new(Actors {
        admin: admin.token,
        customer: customer.token,
        product: products[0],
    });
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = (0..4)
        .map(|_| {
            let (app, actors, seen, stop) =
                (app.clone(), actors.clone(), seen.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    one_round(&app, &actors, &seen).await;
                }
            })
        })
        .collect();
    let patience = Duration::from_secs(60);
    eventually(
        "commands answered before the restart",
        patience,
        async || seen.lock().unwrap().acknowledged.len() >= 10,
    )
    .await;

    cluster.stop().await.expect("fast shutdown");
    let before = seen
        .lock()
        .unwrap()
        .count(|s| s == StatusCode::SERVICE_UNAVAILABLE);
    eventually("503s while the database is down", patience, async || {
        seen.lock()
            .unwrap()
            .count(|s| s == StatusCode::SERVICE_UNAVAILABLE)
            > before + 10
    })
    .await;
    cluster
        .start_again()
        .await
        .expect("start the cluster again");
    let acknowledged = seen.lock().unwrap().acknowledged.len();
    eventually(
        "commands answered after the restart",
        patience,
        async || seen.lock().unwrap().acknowledged.len() >= acknowledged + 10,
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.expect("a load task");
    }

    let seen = std::mem::take(&mut *seen.lock().unwrap());
    let mut counts = std::collections::BTreeMap::new();
    for (status, _, _) in &seen.statuses {
        *counts.entry(status.as_u16()).or_insert(0) += 1;
    }
    println!("answers by status: {counts:?}");
    let errors: Vec<_> = seen
        .statuses
        .iter()
        .filter(|(s, _, _)| s.is_server_error() && *s != StatusCode::SERVICE_UNAVAILABLE)
        .collect();
    assert!(errors.is_empty(), "5xx other than 503: {errors:?}");
    let bare: Vec<_> = seen
        .statuses
        .iter()
        .filter(|(s, retry, _)| *s == StatusCode::SERVICE_UNAVAILABLE && !retry)
        .collect();
    assert!(bare.is_empty(), "503 without Retry-After: {bare:?}");
    for id in &seen.acknowledged {
        let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_id = $1")
            .bind(id.to_string())
            .fetch_one(&pool)
            .await
            .expect("count the events");
        assert!(stored >= 1, "{id} was answered 201 but is not stored");
    }
    cluster.stop().await.expect("stop the private cluster");
}

#[tokio::test]
async fn two_thousand_idle_connections_do_not_stop_a_normal_request() {
    allow_open_files(8_192);
    let mut config = AppConfig::with_random_secret();
    config.limits.header_read_timeout = Duration::from_secs(1);
    let app = spawn_with(config).await;
    let host = host_of(&app);
    let mut idle = Vec::new();
    for i in 0..2_000 {
        let mut stream = TcpStream::connect(&host).await.expect("connect");
        if i % 2 == 1 {
            // Half a request head, never finished.
            stream
                .write_all(b"GET /health/live HTTP/1.1\r\nHost: shop\r\n")
                .await
                .expect("send half a header");
        }
        idle.push(stream);
    }

    let answer = tokio::time::timeout(Duration::from_secs(5), app.get("/health/live"))
        .await
        .expect("a normal request is answered promptly");
    assert_eq!(answer.status(), StatusCode::OK);

    eventually(
        "the server to close the idle connections",
        Duration::from_secs(30),
        async || {
            let mut open = 0;
            for stream in &mut idle {
                let mut buf = [0u8; 1024];
                loop {
                    match stream.try_read(&mut buf) {
                        Ok(0) => break,
                        Ok(_) => continue,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            open += 1;
                            break;
                        }
                        Err(_) => break,
                    }
                }
            }
            if open == 0 {
                Ok(())
            } else {
                Err(format!("{open} still open"))
            }
        },
    )
    .await;
}

#[tokio::test]
async fn a_request_past_the_timeout_is_answered_408_or_closed() {
    let mut config = AppConfig::with_random_secret();
    config.limits.request_timeout = Duration::from_secs(1);
    let app = spawn_with(config).await;
    let mut stream = TcpStream::connect(host_of(&app)).await.expect("connect");
    // The head and a part of the body, then nothing more.
    stream
        .write_all(
            b"POST /v1/register HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"username\": ",
        )
        .await
        .expect("send part of a request");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(15), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer).to_string();
    match read {
        Ok(_) if answer.is_empty() => {}
        Ok(_) => {
            assert!(answer.starts_with("HTTP/1.1 408"), "not 408: {answer}");
            let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
            assert_error_shape(&serde_json::from_str(body).expect("a JSON body"));
        }
        Err(_) => panic!("no answer and the connection still open after 15 s: {answer:?}"),
    }
    // Nothing was registered.
    assert_eq!(app.event_count().await, 0);
}

#[tokio::test]
async fn requests_past_the_concurrency_limit_are_shed_with_503_and_retry_after() {
    let mut config = AppConfig::with_random_secret();
    config.limits.max_concurrent_requests = 2;
    let app = spawn_with(config).await;
    app.bootstrap_admin().await;
    let head = app.latest_position().await;
    // No projector runs: these two wait for the catalog for their full bound.
    let waiting: Vec<_> = (0..2)
        .map(|_| {
            let request = app
                .request(reqwest::Method::GET, "/v1/products", None)
                .query(&[("min_position", head)]);
            tokio::spawn(request.send())
        })
        .collect();
    let shed = eventually("a request to be shed", Duration::from_secs(4), async || {
        let response = app.get("/health/live").await;
        (response.status() == StatusCode::SERVICE_UNAVAILABLE).then_some(response)
    })
    .await;
    assert_eq!(
        shed.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some(api::error::RETRY_AFTER_SECONDS)
    );
    let body = expect_error(shed, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(body["error"], "overloaded");
    for request in waiting {
        let response = request.await.expect("join").expect("an answer");
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(app.get("/health/live").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn register_is_rate_limited_with_429_and_retry_after() {
    let mut config = AppConfig::with_random_secret();
    config.limits.register_attempts_per_minute = 3;
    let app = spawn_with(config).await;
    for i in 0..3 {
        let response = app.register(&customer_body(&format!("early{i}"))).await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let events = app.event_count().await;
    let refused = app.register(&customer_body("late")).await;
    let retry_after: u64 = refused
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After in seconds");
    assert!(
        (1..=60).contains(&retry_after),
        "Retry-After: {retry_after}"
    );
    let body = expect_error(refused, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(body["error"], "too_many_sign_ups");
    assert_eq!(
        app.event_count().await,
        events,
        "the refused sign-up wrote events"
    );
}

#[tokio::test]
async fn a_read_waiting_for_min_position_does_not_hold_a_pool_connection() {
    let db = fresh_database().await;
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(30))
        .connect(&db.url)
        .await
        .expect("a small pool");
    let app = serve_with(AppConfig::with_random_secret(), db, pool).await;
    app.bootstrap_admin().await;
    let head = app.latest_position().await;
    // No projector runs: each of these waits for the catalog for its bound.
    let waiting: Vec<_> = (0..20)
        .map(|_| {
            let request = app
                .request(reqwest::Method::GET, "/v1/products", None)
                .query(&[("min_position", head)]);
            tokio::spawn(request.send())
        })
        .collect();
    // While they wait, reads that need the pool are answered promptly.
    for _ in 0..5 {
        let answer = tokio::time::timeout(Duration::from_millis(500), app.get("/v1/categories"))
            .await
            .expect("a read answered while others wait for min_position");
        assert_eq!(answer.status(), StatusCode::OK);
    }
    for request in waiting {
        let response = request.await.expect("join").expect("an answer");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["x-read-model-stale"], "true");
    }
}

/// POST /v1/login for `username` as a client whose proxy forwards it from
/// `client` (`X-Forwarded-For`).
async fn login_from(
    app: &TestApp,
    client: &str,
    username: &str,
    password: &str,
) -> reqwest::Response {
    app.request(reqwest::Method::POST, "/v1/login", None)
        .header("X-Forwarded-For", client)
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .expect("send the sign-in")
}

/// The `Retry-After` of an answer, in seconds.
fn retry_after(response: &reqwest::Response) -> Option<u64> {
    response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// The server behind a proxy on loopback (the test client's address).
fn behind_a_proxy() -> AppConfig {
    let mut config = AppConfig::with_random_secret();
    config.trusted_proxies = vec![api::config::parse_proxy("127.0.0.1").expect("an address")];
    config
}

#[tokio::test]
async fn behind_a_trusted_proxy_one_clients_bad_sign_ins_do_not_lock_out_another() {
    let mut config = behind_a_proxy();
    config.login_attempts_per_minute = 3;
    let app = spawn_with(config).await;
    app.register(&customer_body("alice")).await;
    for i in 0..3 {
        let response = login_from(&app, "203.0.113.1", &format!("nobody{i}"), "wrong").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let locked = login_from(&app, "203.0.113.1", "nobody", "wrong").await;
    assert!(retry_after(&locked).is_some(), "429 without Retry-After");
    expect_error(locked, StatusCode::TOO_MANY_REQUESTS).await;

    let other = login_from(&app, "198.51.100.2", "alice", testkit::PASSWORD).await;
    assert_eq!(
        other.status(),
        StatusCode::OK,
        "another client was locked out"
    );
}

#[tokio::test]
async fn an_untrusted_peer_cannot_choose_its_address_with_x_forwarded_for() {
    // No trusted proxy: the peer is the client, whatever it says.
    let mut config = AppConfig::with_random_secret();
    config.login_attempts_per_minute = 3;
    let app = spawn_with(config).await;
    for i in 0..3 {
        let response = login_from(&app, &format!("203.0.113.{i}"), "nobody", "wrong").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    for i in 3..6 {
        let response = login_from(&app, &format!("203.0.113.{i}"), "nobody", "wrong").await;
        expect_error(response, StatusCode::TOO_MANY_REQUESTS).await;
    }
}

#[tokio::test]
async fn too_many_failed_sign_ins_for_one_username_are_limited_whatever_the_address() {
    let mut config = behind_a_proxy();
    config.login_failures_per_account = 3;
    let app = spawn_with(config).await;
    app.register(&customer_body("alice")).await;
    app.register(&customer_body("bob")).await;
    // Guesses from ever new addresses.
    for i in 0..4 {
        let response = login_from(&app, &format!("203.0.113.{i}"), "alice", "wrong guess").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    // Now even the right password is refused, from anywhere, in any case.
    for (i, name) in ["alice", "ALICE"].into_iter().enumerate() {
        let client = format!("198.51.100.{i}");
        let refused = login_from(&app, &client, name, testkit::PASSWORD).await;
        assert!(retry_after(&refused).is_some_and(|s| (1..=60).contains(&s)));
        let body = expect_error(refused, StatusCode::TOO_MANY_REQUESTS).await;
        assert_eq!(body["error"], "too_many_failed_sign_ins");
    }
    // Another account is not affected.
    let bob = login_from(&app, "203.0.113.1", "bob", testkit::PASSWORD).await;
    assert_eq!(bob.status(), StatusCode::OK);
}

#[tokio::test]
async fn guessing_coupon_codes_is_throttled_with_429_and_retry_after() {
    let mut config = AppConfig::with_random_secret();
    config.limits.coupon_attempts_per_minute = 5;
    let app = spawn_with(config).await;
    let alice = app.register_customer("alice").await;
    let bob = app.register_customer("bob").await;
    let guess = |token: String, i: usize| {
        let request = app
            .request(reqwest::Method::POST, "/v1/cart/coupon", Some(&token))
            .json(&json!({"code": format!("GUESS{i}")}));
        async move { request.send().await.expect("send") }
    };
    for i in 0..5 {
        let response = guess(alice.token.clone(), i).await;
        assert_ne!(
            response.status(),
            StatusCode::TOO_MANY_REQUESTS,
            "guess {i}"
        );
        assert!(response.status().is_client_error());
    }
    let events = app.event_count().await;
    let throttled = guess(alice.token.clone(), 5).await;
    assert!(retry_after(&throttled).is_some_and(|s| (1..=60).contains(&s)));
    let body = expect_error(throttled, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(body["error"], "too_many_coupon_attempts");
    assert_eq!(app.event_count().await, events);
    // Another customer has a limit of their own.
    let other = guess(bob.token.clone(), 0).await;
    assert_ne!(other.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn card_tokenizations_top_ups_and_orders_are_rate_limited_per_customer() {
    let mut config = AppConfig::with_random_secret();
    config.limits.payment_attempts_per_minute = 3;
    config.limits.orders_per_minute = 2;
    let app = spawn_with(config).await;
    let alice = app.register_customer("alice").await;
    let bob = app.register_customer("bob").await;
    let card = json!({"card_number": "4242424242424242", "expiry": "12/39", "cvc": "123"});
    let top_up = json!({"amount": 0, "payment": {"method": "card", "token": "tok_visa"}});
    // Tokenizations and top-ups (here refused for their amount) share one
    // allowance.
    for _ in 0..2 {
        let response = app
            .post_json("/v1/payments/tokens", &card, Some(&alice.token))
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let response = app
        .post_json("/v1/wallet/top-up", &top_up, Some(&alice.token))
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    for (path, body) in [
        ("/v1/payments/tokens", &card),
        ("/v1/wallet/top-up", &top_up),
    ] {
        let throttled = app.post_json(path, body, Some(&alice.token)).await;
        assert!(retry_after(&throttled).is_some(), "{path}: no Retry-After");
        let body = expect_error(throttled, StatusCode::TOO_MANY_REQUESTS).await;
        assert_eq!(body["error"], "too_many_payment_attempts");
    }
    let response = app
        .post_json("/v1/payments/tokens", &card, Some(&bob.token))
        .await;
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "bob has his own allowance"
    );

    // Orders of an empty cart are refused, and still counted.
    let order = json!({"shipping_address": testkit::shipping_address(), "payment": {"method": "card", "token": "tok_visa"}});
    for _ in 0..2 {
        let response = app.place_order(&alice.token, &order, None).await;
        assert_ne!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    }
    let events = app.event_count().await;
    let throttled = app.place_order(&alice.token, &order, None).await;
    assert!(retry_after(&throttled).is_some());
    let body = expect_error(throttled, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(body["error"], "too_many_orders");
    assert_eq!(app.event_count().await, events);
}
