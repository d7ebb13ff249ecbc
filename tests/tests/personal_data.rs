//! Personal data (issue 17): personal fields encrypted with per-customer
//! keys, forgetting a customer (crypto-shredding), the data export, events
//! of an older version read as the current one, and the master key checked
//! at start-up. The real server on a fresh database each.

use std::time::Duration;

use domain::metadata::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use testkit::server_process::ServerProcess;
use testkit::{eventually_every, expect_error, expect_json, uuid_field, Session, TestApp};
use uuid::Uuid;

/// Someone's personal data, each value unique to this test run.
struct Person {
    username: String,
    fullname: String,
    email: String,
    phone: String,
    address_name: String,
    line1: String,
    city: String,
    postal_code: String,
}

impl Person {
    fn new(tag: &str) -> Person {
        let unique = Uuid::new_v4().simple().to_string();
        let digits: String = Uuid::new_v4()
            .as_u128()
            .to_string()
            .chars()
            .take(10)
            .collect();
        Person {
            username: format!("{tag}-{}", &unique[..12]),
            fullname: format!("Fullname{}", &unique[..10]),
            email: format!("mail{}@example.com", &unique[..10]),
            phone: format!("+44{digits}"),
            address_name: format!("Recipient{}", &unique[10..20]),
            line1: format!("{} Streetname{}", 7, &unique[..8]),
            city: format!("Cityname{}", &unique[8..16]),
            postal_code: format!("PC{}", &unique[16..22]).to_uppercase(),
        }
    }

    /// Every value that must not survive the person being forgotten.
    fn values(&self) -> Vec<&str> {
        vec![
            &self.username,
            &self.fullname,
            &self.email,
            &self.phone,
            &self.address_name,
            &self.line1,
            &self.city,
            &self.postal_code,
        ]
    }

    fn registration(&self) -> Value {
        json!({
            "username": self.username,
            "password": testkit::PASSWORD,
            "fullname": self.fullname,
            "email": self.email,
            "phone": self.phone,
        })
    }

    fn address(&self) -> Value {
        json!({
            "name": self.address_name,
            "line1": self.line1,
            "city": self.city,
            "postal_code": self.postal_code,
            "country": "gb",
        })
    }
}

async fn register(app: &TestApp, person: &Person) -> Session {
    expect_json(
        app.register(&person.registration()).await,
        StatusCode::CREATED,
    )
    .await;
    app.sign_in(&person.username, testkit::PASSWORD).await
}

/// Places a card order of one `product` shipped to `person`, and lets the
/// workflows pay it (the simulated gateway calls back) and notify.
async fn order(app: &TestApp, customer: &Session, person: &Person, product: Uuid) -> Value {
    let body = json!({
        "shipping_address": person.address(),
        "items": [{"product_id": product, "quantity": 2}],
        "payment": {"method": "card", "token": "tok_visa"},
    });
    let placed = expect_json(
        app.place_order(&customer.token, &body, None).await,
        StatusCode::CREATED,
    )
    .await;
    let id = uuid_field(&placed, "id");
    app.settled_order(customer, id).await
}

/// Rebuilds projector `name` through the operators' endpoint, and waits for it.
async fn rebuild(app: &TestApp, operator: &Session, name: &str) {
    let path = format!("/v1/admin/projections/{name}/rebuild");
    expect_json(
        app.post_json(&path, &json!({}), Some(&operator.token))
            .await,
        StatusCode::ACCEPTED,
    )
    .await;
    eventually_every(
        Duration::from_millis(100),
        format!("the rebuild of {name} to finish"),
        Duration::from_secs(300),
        async || {
            let progress = expect_json(
                app.get_as(&path, Some(&operator.token)).await,
                StatusCode::OK,
            )
            .await;
            progress["state"] == "done"
        },
    )
    .await;
}

async fn forget(app: &TestApp, admin: &Session, customer: Uuid) -> Value {
    let answer = expect_json(
        app.post_json(
            &format!("/v1/admin/customers/{customer}/forget"),
            &json!({}),
            Some(&admin.token),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    app.wait_for_workflows().await;
    answer
}

/// Every `(table, column)` of every table of the database whose type holds
/// text: text, varchar, char, json, jsonb, bytea and arrays of them.
async fn text_columns(pool: &PgPool) -> Vec<(String, String, String, String)> {
    sqlx::query_as(
        "SELECT c.table_schema, c.table_name, c.column_name, c.data_type
           FROM information_schema.columns c
           JOIN information_schema.tables t
             ON t.table_schema = c.table_schema AND t.table_name = c.table_name
          WHERE t.table_type = 'BASE TABLE'
            AND c.table_schema NOT IN ('pg_catalog', 'information_schema')
            AND (c.data_type IN ('text', 'character varying', 'character', 'json', 'jsonb', 'bytea',
                                 'ARRAY', 'USER-DEFINED'))
          ORDER BY 1, 2, 3",
    )
    .fetch_all(pool)
    .await
    .expect("list the columns")
}

/// Where `needle` appears in plain text (in any letter case): `schema.table.column`.
async fn found_in(pool: &PgPool, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (schema, table, column, data_type) in text_columns(pool).await {
        let condition = if data_type == "bytea" {
            format!("position(convert_to(lower($1), 'UTF8') in \"{column}\") > 0 OR position(convert_to($1, 'UTF8') in \"{column}\") > 0")
        } else {
            format!("strpos(lower(\"{column}\"::text), lower($1)) > 0")
        };
        let sql = format!("SELECT count(*) FROM \"{schema}\".\"{table}\" WHERE {condition}");
        let count: i64 = sqlx::query_scalar(&sql)
            .bind(needle)
            .fetch_one(pool)
            .await
            .unwrap_or_else(|e| panic!("search {schema}.{table}.{column}: {e}"));
        if count > 0 {
            found.push(format!("{schema}.{table}.{column}"));
        }
    }
    found
}

/// A customer who registered, ordered, was notified, had the read models
/// rebuilt, and was forgotten; and another customer who was not.
struct Forgotten {
    app: TestApp,
    admin: Session,
    operator: Session,
    person: Person,
    customer: Session,
    other_person: Person,
    other: Session,
    order_before: Value,
    history_before: Value,
}

async fn forgotten_customer() -> Forgotten {
    let app = testkit::spawn_app().await;
    let (admin, products) = app.stocked_catalog(&[(1250, 10)]).await;
    let operator = app.bootstrap_staff("operator", Role::Operator).await;
    let person = Person::new("forget");
    let other_person = Person::new("keep");
    let customer = register(&app, &person).await;
    let other = register(&app, &other_person).await;
    let order_before = order(&app, &customer, &person, products[0]).await;
    order(&app, &other, &other_person, products[0]).await;
    assert_eq!(order_before["status"], "paid", "{order_before}");
    let id = uuid_field(&order_before, "id");
    let notifications: i64 =
        sqlx::query_scalar("SELECT count(*) FROM notifications WHERE customer_id = $1")
            .bind(customer.id)
            .fetch_one(&app.db.pool)
            .await
            .expect("count notifications");
    assert!(notifications >= 2, "placed and paid are notified");
    let history_before = expect_json(
        app.get_as(&format!("/v1/orders/{id}/history"), Some(&admin.token))
            .await,
        StatusCode::OK,
    )
    .await;
    rebuild(&app, &operator, "orders").await;
    rebuild(&app, &operator, "catalog").await;
    forget(&app, &admin, customer.id).await;
    Forgotten {
        app,
        admin,
        operator,
        person,
        customer,
        other_person,
        other,
        order_before,
        history_before,
    }
}

#[tokio::test]
async fn after_a_customer_is_forgotten_none_of_their_personal_data_is_in_plain_text_anywhere_in_the_database(
) {
    let f = forgotten_customer().await;
    let columns = text_columns(&f.app.db.pool).await;
    for table in [
        "events",
        "snapshots",
        "rm_orders",
        "notifications",
        "notification_contacts",
    ] {
        assert!(
            columns.iter().any(|(_, t, _, _)| t == table),
            "{table} is searched"
        );
    }
    assert!(columns
        .iter()
        .any(|(_, t, _, _)| t == "projector_dead_letters"));
    for value in f.person.values() {
        let found = found_in(&f.app.db.pool, value).await;
        assert!(found.is_empty(), "{value:?} is still in {found:?}");
    }
    // The other customer's data is there, encrypted in the events and plain
    // in the read models (the search finds what is there).
    let found = found_in(&f.app.db.pool, &f.other_person.email).await;
    assert!(
        found
            .iter()
            .any(|c| c.ends_with("notification_contacts.email")),
        "{found:?}"
    );
    assert!(
        !found.iter().any(|c| c.ends_with("events.payload")),
        "personal fields are stored encrypted: {found:?}"
    );
}

#[tokio::test]
async fn a_forgotten_customers_order_history_and_invoice_read_erased_with_lines_and_amounts_unchanged(
) {
    let f = forgotten_customer().await;
    let app = &f.app;
    let id = uuid_field(&f.order_before, "id");
    let erased = domain::personal::ERASED;
    let check_order = |order: &Value| {
        assert_eq!(order["shipping_address"]["line1"], erased, "{order}");
        assert_eq!(order["shipping_address"]["name"], "", "{order}");
        for field in [
            "items",
            "subtotal",
            "discount",
            "total",
            "currency",
            "status",
            "created_at",
        ] {
            assert_eq!(order[field], f.order_before[field], "{field}");
        }
    };
    let order = expect_json(app.order(&f.admin.token, id, &[]).await, StatusCode::OK).await;
    check_order(&order);

    let history = expect_json(
        app.get_as(&format!("/v1/orders/{id}/history"), Some(&f.admin.token))
            .await,
        StatusCode::OK,
    )
    .await;
    let events = history.as_array().or_else(|| history["events"].as_array());
    let events = events.expect("a list of events");
    let before = f
        .history_before
        .as_array()
        .or_else(|| f.history_before["events"].as_array())
        .expect("a list of events");
    assert_eq!(events.len(), before.len());
    let placed = &events[0]["payload"]["OrderPlaced"];
    assert_eq!(placed["shipping_address"], erased, "{placed}");
    assert_eq!(
        placed["lines"],
        before[0]["payload"]["OrderPlaced"]["lines"]
    );
    assert_eq!(
        placed["total"],
        before[0]["payload"]["OrderPlaced"]["total"]
    );
    assert_eq!(
        before[0]["payload"]["OrderPlaced"]["shipping_address"]["line1"],
        f.person.line1.as_str(),
        "before, the history showed the address decrypted"
    );
    let as_of = expect_json(
        app.order(&f.admin.token, id, &[("version", "1".to_string())])
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(as_of["shipping_address"]["line1"], erased, "{as_of}");

    let invoice = expect_json(
        app.get_as(&format!("/v1/orders/{id}/invoice"), Some(&f.admin.token))
            .await,
        StatusCode::OK,
    )
    .await;
    let text = invoice.to_string();
    assert!(text.contains(erased), "{text}");
    for value in f.person.values() {
        assert!(!text.contains(value), "{value} in the invoice {text}");
    }
    assert_eq!(invoice["total"], f.order_before["total"], "{invoice}");

    let verification = projections::audit::verify(&app.db.pool)
        .await
        .expect("verify the audit trail");
    assert!(verification.first_broken.is_none(), "{verification:?}");
    assert!(verification.broken_seals.is_empty(), "{verification:?}");

    rebuild(app, &f.operator, "orders").await;
    let order = expect_json(app.order(&f.admin.token, id, &[]).await, StatusCode::OK).await;
    check_order(&order);
}

#[tokio::test]
async fn a_forgotten_customer_cannot_sign_in_and_another_customer_is_untouched() {
    let f = forgotten_customer().await;
    let app = &f.app;
    expect_error(
        app.login(&f.person.username, testkit::PASSWORD).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    // The token issued before no longer works.
    let me = app.me(Some(&f.customer.token)).await;
    assert!(
        matches!(
            me.status(),
            StatusCode::UNAUTHORIZED | StatusCode::NOT_FOUND
        ),
        "{}",
        me.status()
    );
    // The username stays taken.
    expect_error(
        app.register(&f.person.registration()).await,
        StatusCode::CONFLICT,
    )
    .await;

    let other = app
        .sign_in(&f.other_person.username, testkit::PASSWORD)
        .await;
    assert_eq!(other.id, f.other.id);
    let me = expect_json(app.me(Some(&other.token)).await, StatusCode::OK).await;
    assert_eq!(me["fullname"], f.other_person.fullname.as_str());
    assert_eq!(me["email"], f.other_person.email.as_str());
    let orders = expect_json(
        app.get_as("/v1/orders", Some(&other.token)).await,
        StatusCode::OK,
    )
    .await;
    let order = &orders["orders"][0];
    assert_eq!(
        order["shipping_address"]["line1"],
        f.other_person.line1.as_str()
    );
    let contacts: (String, String) =
        sqlx::query_as("SELECT email, phone FROM notification_contacts WHERE customer_id = $1")
            .bind(other.id)
            .fetch_one(&app.db.pool)
            .await
            .expect("the other customer's contact");
    assert_eq!(
        contacts,
        (f.other_person.email.clone(), f.other_person.phone.clone())
    );
}

#[tokio::test]
async fn pending_notifications_to_a_forgotten_customer_are_dropped() {
    let f = forgotten_customer().await;
    let statuses: Vec<(String, String)> =
        sqlx::query_as("SELECT status, recipient FROM notifications WHERE customer_id = $1")
            .bind(f.customer.id)
            .fetch_all(&f.app.db.pool)
            .await
            .expect("the notifications");
    assert!(!statuses.is_empty());
    for (status, recipient) in statuses {
        assert_ne!(status, "pending");
        assert_eq!(recipient, domain::personal::ERASED);
    }
}

#[tokio::test]
async fn a_customer_can_forget_themselves_with_their_password_only() {
    let app = testkit::spawn_app().await;
    let person = Person::new("self");
    let customer = register(&app, &person).await;
    let wrong = app
        .request(reqwest::Method::DELETE, "/v1/me", Some(&customer.token))
        .json(&json!({"password": "not the password at all"}))
        .send()
        .await
        .expect("send");
    expect_error(wrong, StatusCode::UNAUTHORIZED).await;
    let right = app
        .request(reqwest::Method::DELETE, "/v1/me", Some(&customer.token))
        .json(&json!({"password": testkit::PASSWORD}))
        .send()
        .await
        .expect("send");
    expect_json(right, StatusCode::OK).await;
    expect_error(
        app.login(&person.username, testkit::PASSWORD).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
}

#[tokio::test]
async fn the_export_holds_exactly_the_customers_data() {
    let app = testkit::spawn_app().await;
    let (admin, products) = app.stocked_catalog(&[(900, 10)]).await;
    let person = Person::new("export");
    let other_person = Person::new("other");
    let customer = register(&app, &person).await;
    let other = register(&app, &other_person).await;
    let mine = order(&app, &customer, &person, products[0]).await;
    order(&app, &other, &other_person, products[0]).await;

    let export = expect_json(
        app.get_as("/v1/me/export", Some(&customer.token)).await,
        StatusCode::OK,
    )
    .await;
    let profile = &export["profile"];
    assert_eq!(profile["customer_id"], customer.id.to_string());
    assert_eq!(profile["username"], person.username.as_str());
    assert_eq!(profile["fullname"], person.fullname.as_str());
    assert_eq!(profile["email"], person.email.as_str());
    assert_eq!(profile["phone"], person.phone.as_str());
    let orders = export["orders"].as_array().expect("orders");
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0]["id"], mine["id"]);
    assert_eq!(
        orders[0]["shipping_address"]["line1"],
        person.line1.as_str()
    );
    let notifications = export["notifications"].as_array().expect("notifications");
    assert!(!notifications.is_empty());
    assert!(notifications.iter().all(
        |n| n["recipient"] == person.email.as_str() || n["recipient"] == person.phone.as_str()
    ));
    let text = export.to_string();
    for value in other_person.values() {
        assert!(
            !text.contains(value),
            "{value} of another customer in {text}"
        );
    }

    let by_admin = expect_json(
        app.get_as(
            &format!("/v1/admin/customers/{}/export", customer.id),
            Some(&admin.token),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(by_admin["profile"], export["profile"]);
    assert_eq!(by_admin["orders"], export["orders"]);
    expect_error(
        app.get_as(
            &format!("/v1/admin/customers/{}/export", customer.id),
            Some(&other.token),
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    expect_error(
        app.get_as(
            &format!("/v1/admin/customers/{}/export", Uuid::new_v4()),
            Some(&admin.token),
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn a_role_change_stored_as_version_1_is_read_as_version_2_everywhere() {
    let app = testkit::spawn_app().await;
    let auditor = app.bootstrap_staff("auditor", Role::Auditor).await;
    let person = Person::new("legacy");
    let customer = register(&app, &person).await;
    // An event as the code before version 2.0 stored it.
    let payload = json!({"RoleChanged": {
        "customer_id": customer.id, "old_role": "customer", "new_role": "operator"}});
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                             payload, metadata)
         VALUES ('Customer', $1, 2, 'RoleChanged', '1.0', $2, '{}')",
    )
    .bind(customer.id.to_string())
    .bind(&payload)
    .execute(&app.db.pool)
    .await
    .expect("store a version 1.0 event");

    // Commands load it: the account is now an operator.
    let session = app.sign_in(&person.username, testkit::PASSWORD).await;
    let me = expect_json(app.me(Some(&session.token)).await, StatusCode::OK).await;
    assert_eq!(me["role"], "operator");
    // Replaying the stream from its events alone reads it too.
    let replayed: domain::customer::Customer =
        projections::event_store::load_aggregate(&app.db.pool, &customer.id.to_string(), None)
            .await
            .expect("replay")
            .expect("the customer");
    assert_eq!(replayed.role(), Some(Role::Operator));
    // The auditors' log shows it as version 2.0.
    let log = expect_json(
        app.get_as(
            &format!(
                "/v1/admin/events?aggregate_type=Customer&aggregate_id={}",
                customer.id
            ),
            Some(&auditor.token),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let changed = log["events"]
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["event_type"] == "RoleChanged")
        .expect("the role change")
        .clone();
    assert_eq!(changed["event_version"], "2.0");
    assert_eq!(
        changed["payload"]["RoleChanged"],
        json!({"customer_id": customer.id, "from": "customer", "to": "operator"})
    );
    // The projectors' log reads it as the current version (once no
    // transaction older than the insert is still open).
    let event = eventually_every(
        Duration::from_millis(50),
        "the role change in the log",
        Duration::from_secs(60),
        async || {
            let events = projections::event_store::log::read_after(
                &app.db.pool,
                projections::event_store::log::Checkpoint::START,
                1000,
            )
            .await
            .expect("read the log");
            events
                .into_iter()
                .find(|e| e.event_type == "RoleChanged")
                .ok_or("not yet")
        },
    )
    .await;
    assert_eq!(event.event_version, "2.0");
    let decoded: domain::customer::CustomerEvent = event.decode().expect("decode");
    assert!(matches!(
        decoded,
        domain::customer::CustomerEvent::RoleChanged {
            to: Role::Operator,
            ..
        }
    ));
    // The stored event itself is untouched, and the chain holds.
    let stored: String = sqlx::query_scalar(
        "SELECT event_version FROM events WHERE aggregate_id = $1 AND sequence = 2",
    )
    .bind(customer.id.to_string())
    .fetch_one(&app.db.pool)
    .await
    .expect("the stored version");
    assert_eq!(stored, "1.0");
    let verification = projections::audit::verify(&app.db.pool)
        .await
        .expect("verify");
    assert!(verification.first_broken.is_none(), "{verification:?}");
}

/// Runs `shop serve` on `db` with `env`; it must exit by itself. Answers its
/// exit success and standard error.
async fn serve_refused(url: &str, data_dir: &std::path::Path, env: &[(&str, &str)]) -> String {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_shop-under-test"));
    command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("DATABASE_URL", url)
        .env("SHOP_DATA_DIR", data_dir)
        .env_remove("SHOP_MASTER_KEY")
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    for (key, value) in env {
        command.env(key, value);
    }
    let output = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("shop serve exits by itself instead of serving")
        .expect("run shop serve");
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(!output.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        stderr
            .trim()
            .lines()
            .filter(|l| l.starts_with("shop:"))
            .count(),
        1,
        "one sentence: {stderr}"
    );
    stderr
}

#[tokio::test]
async fn a_wrong_malformed_or_missing_master_key_makes_the_server_refuse_to_start_with_one_sentence(
) {
    let db = testkit::fresh_database().await;
    let data_dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(".data")
        .join(format!("keys-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&data_dir).expect("a data folder");

    let malformed = serve_refused(&db.url, &data_dir, &[("SHOP_MASTER_KEY", "not-a-key")]).await;
    assert!(
        malformed.contains("SHOP_MASTER_KEY is malformed"),
        "{malformed}"
    );

    // A server with the kit's key records it and serves.
    let mut server = ServerProcess::start(env!("CARGO_BIN_EXE_shop-under-test"), &db.url);
    testkit::server_process::until_live(&reqwest::Client::new(), &server.address()).await;
    server.terminate().await;

    let other = projections::keys::MasterKey::generate_text();
    let wrong = serve_refused(&db.url, &data_dir, &[("SHOP_MASTER_KEY", &other)]).await;
    assert!(
        wrong.contains("is not the one this database's personal data keys were wrapped with"),
        "{wrong}"
    );

    // No key configured and none in the data folder, but the database has keys.
    let missing = serve_refused(&db.url, &data_dir, &[]).await;
    assert!(
        missing.contains("SHOP_MASTER_KEY is not set and the data folder holds no master key"),
        "{missing}"
    );
    assert!(!data_dir.join("master-key").exists());
    let _ = std::fs::remove_dir_all(&data_dir);
}

#[tokio::test]
async fn rotating_the_master_key_rewraps_the_keys_so_only_the_new_key_opens_them() {
    let app = testkit::spawn_app().await;
    let person = Person::new("rotate");
    register(&app, &person).await;
    let old = testkit::master_key();
    let new = projections::keys::MasterKey::generate_text();
    let wrapped_before: Vec<u8> =
        sqlx::query_scalar("SELECT wrapped_key FROM personal_data_keys LIMIT 1")
            .fetch_one(&app.db.pool)
            .await
            .expect("a data key");
    let events_before: i64 = app.event_count().await;
    let rotated = tokio::process::Command::new(env!("CARGO_BIN_EXE_shop-under-test"))
        .args(["keys", "rotate"])
        .env("DATABASE_URL", &app.db.url)
        .env("SHOP_MASTER_KEY", old)
        .env("SHOP_NEW_MASTER_KEY", &new)
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("run shop keys rotate");
    let stderr = String::from_utf8_lossy(&rotated.stderr);
    assert!(rotated.status.success(), "{stderr}");
    let wrapped_after: Vec<u8> =
        sqlx::query_scalar("SELECT wrapped_key FROM personal_data_keys LIMIT 1")
            .fetch_one(&app.db.pool)
            .await
            .expect("a data key");
    assert_ne!(wrapped_before, wrapped_after);
    assert_eq!(
        app.event_count().await,
        events_before,
        "no event is touched"
    );

    let data_dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(".data")
        .join(format!("rotate-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&data_dir).expect("a data folder");
    let refused = serve_refused(&app.db.url, &data_dir, &[("SHOP_MASTER_KEY", old)]).await;
    assert!(refused.contains("is not the one"), "{refused}");
    let mut server = ServerProcess::start_with(
        env!("CARGO_BIN_EXE_shop-under-test"),
        &app.db.url,
        &[("SHOP_MASTER_KEY", &new)],
    );
    let client = reqwest::Client::new();
    testkit::server_process::until_live(&client, &server.address()).await;
    let login = client
        .post(format!("{}/v1/login", server.address()))
        .json(&json!({"username": person.username, "password": testkit::PASSWORD}))
        .send()
        .await
        .expect("sign in");
    assert_eq!(login.status(), StatusCode::OK);
    let token = expect_json(login, StatusCode::OK).await["token"]
        .as_str()
        .expect("a token")
        .to_string();
    let me = client
        .get(format!("{}/v1/me", server.address()))
        .bearer_auth(token)
        .send()
        .await
        .expect("me");
    let me = expect_json(me, StatusCode::OK).await;
    assert_eq!(me["email"], person.email.as_str());
    server.terminate().await;
    let _ = std::fs::remove_dir_all(&data_dir);
}
