//! Accounts, catalog and inventory end to end: the real server, the real
//! event store, and SQL on what it wrote.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use testkit::{customer_body, expect_error, expect_json, spawn_app, uuid_field, TestApp};
use uuid::Uuid;

/// A product body in `category` with `sku`.
fn product_body(name: &str, sku: &str, category: Uuid, shop: Option<Uuid>) -> Value {
    json!({
        "name": name,
        "description": format!("{name}, in the catalog since today"),
        "price": 1999,
        "sku": sku,
        "image_url": "https://img.example.com/p.png",
        "category_id": category,
        "shop_id": shop,
    })
}

/// GET `path` once the read models have every event so far; expects 200.
async fn get_ok(app: &TestApp, path: &str) -> Value {
    expect_json(app.get_fresh(path).await, StatusCode::OK).await
}

/// What the catalog tests start from: a signed-in admin, categories
/// (Clothing > Shirts > T-shirts, and Sale), a shop, and two products
/// (a tee in T-shirts from the shop, a mug in Clothing).
struct Catalog {
    admin: testkit::Session,
    root: Uuid,
    sale: Uuid,
    child: Uuid,
    grandchild: Uuid,
    shop: Uuid,
    tee: Uuid,
    mug: Uuid,
}

async fn catalog(app: &TestApp) -> Catalog {
    let admin = app.bootstrap_admin().await;
    let root = app.create_category(&admin.token, "Clothing", None).await;
    let sale = app.create_category(&admin.token, "Sale", None).await;
    let child = app
        .create_category(&admin.token, "Shirts", Some(root))
        .await;
    let grandchild = app
        .create_category(&admin.token, "T-shirts", Some(child))
        .await;
    let shop = app.create_shop(&admin.token, "Corner Shop").await;
    let tee = app
        .create_product(
            &admin.token,
            &product_body("Red tee", "tee-red-m", grandchild, Some(shop)),
        )
        .await;
    let mug = app
        .create_product(&admin.token, &product_body("Mug", "MUG-1", root, None))
        .await;
    Catalog {
        admin,
        root,
        sale,
        child,
        grandchild,
        shop,
        tee,
        mug,
    }
}

/// [`catalog`] with 10 tees and 3 mugs in stock.
async fn stocked(app: &TestApp) -> Catalog {
    let c = catalog(app).await;
    expect_json(app.receive(&c.admin.token, c.tee, 10).await, StatusCode::OK).await;
    expect_json(app.receive(&c.admin.token, c.mug, 3).await, StatusCode::OK).await;
    assert_eq!(app.availability(c.tee).await, (10, 0, 10));
    c
}

#[tokio::test]
async fn an_admin_made_by_the_cli_signs_in_as_admin() {
    let app = spawn_app().await;
    // An admin made by `shop users create --role admin` signs in.
    let admin = app.bootstrap_admin().await;
    let token = Some(admin.token.as_str());
    let me = expect_json(app.me(token).await, StatusCode::OK).await;
    assert_eq!(me["role"], "admin");
    assert_eq!(uuid_field(&me, "customer_id"), admin.id);
}

#[tokio::test]
async fn categories_form_a_tree_that_can_be_moved_and_renamed_but_never_into_a_cycle() {
    let app = spawn_app().await;
    // A category tree: root > child > grandchild, then the child moves under
    // another root and the grandchild is renamed.
    let Catalog {
        admin,
        sale,
        child,
        grandchild,
        ..
    } = catalog(&app).await;
    let token = Some(admin.token.as_str());
    let category = get_ok(&app, &format!("/v1/categories/{grandchild}")).await;
    assert_eq!(category["name"], "T-shirts");
    assert_eq!(uuid_field(&category, "parent_category_id"), child);

    let moved = app
        .put_json(
            &format!("/v1/categories/{child}"),
            &json!({"parent_category_id": sale}),
            token,
        )
        .await;
    expect_json(moved, StatusCode::OK).await;
    let category = get_ok(&app, &format!("/v1/categories/{child}")).await;
    assert_eq!(uuid_field(&category, "parent_category_id"), sale);

    let renamed = app
        .put_json(
            &format!("/v1/categories/{grandchild}"),
            &json!({"name": "Tees"}),
            token,
        )
        .await;
    expect_json(renamed, StatusCode::OK).await;
    let category = get_ok(&app, &format!("/v1/categories/{grandchild}")).await;
    assert_eq!(category["name"], "Tees");
    assert_eq!(uuid_field(&category, "parent_category_id"), child);
    let path: Vec<Uuid> = category["path"]
        .as_array()
        .expect("a category has its path")
        .iter()
        .map(|a| uuid_field(a, "id"))
        .collect();
    assert_eq!(path, [sale, child], "ancestors, root first, after the move");
    let top = get_ok(&app, &format!("/v1/categories/{sale}")).await;
    let children: Vec<Uuid> = top["children"]
        .as_array()
        .expect("a category has its children")
        .iter()
        .map(|c| uuid_field(c, "id"))
        .collect();
    assert_eq!(children, [child]);

    // Sale > Shirts > Tees: putting Sale under Tees would be a cycle.
    let cycle = app
        .put_json(
            &format!("/v1/categories/{sale}"),
            &json!({"parent_category_id": grandchild}),
            token,
        )
        .await;
    let body = expect_error(cycle, StatusCode::CONFLICT).await;
    assert_eq!(body["error"], "category_cycle");
}

#[tokio::test]
async fn a_shop_and_its_product_are_stored_as_given_with_the_sku_upper_case() {
    let app = spawn_app().await;
    let Catalog {
        admin,
        grandchild,
        shop,
        tee,
        ..
    } = catalog(&app).await;
    let token = Some(admin.token.as_str());
    let updated = app
        .put_json(
            &format!("/v1/shops/{shop}"),
            &json!({"address": "1 Main Street"}),
            token,
        )
        .await;
    expect_json(updated, StatusCode::OK).await;
    let stored = get_ok(&app, &format!("/v1/shops/{shop}")).await;
    assert_eq!(stored["name"], "Corner Shop");
    assert_eq!(stored["address"], "1 Main Street");

    let product = get_ok(&app, &format!("/v1/products/{tee}")).await;
    assert_eq!(product["name"], "Red tee");
    assert_eq!(product["sku"], "TEE-RED-M", "SKUs are stored upper case");
    assert_eq!(product["price"], 1999);
    assert_eq!(product["currency"], "USD");
    assert_eq!(uuid_field(&product, "category_id"), grandchild);
    assert_eq!(uuid_field(&product, "shop_id"), shop);
    assert_eq!(product["available"], 0);
}

#[tokio::test]
async fn received_stock_is_available_when_read_at_the_receipts_position() {
    let app = spawn_app().await;
    let Catalog {
        admin, tee, mug, ..
    } = catalog(&app).await;
    // Stock arrives; reading at the receipt's position sees it.
    let received = expect_json(app.receive(&admin.token, tee, 10).await, StatusCode::OK).await;
    let position = received["position"]
        .as_i64()
        .expect("a command answers its position");
    let product = app.get_at(&format!("/v1/products/{tee}"), position).await;
    assert_eq!(expect_json(product, StatusCode::OK).await["available"], 10);
    expect_json(app.receive(&admin.token, mug, 3).await, StatusCode::OK).await;
    assert_eq!(app.availability(tee).await, (10, 0, 10));
    assert_eq!(app.availability(mug).await, (3, 0, 3));
}

#[tokio::test]
async fn a_customer_registers_and_signs_in_with_the_username_in_any_letter_case() {
    let app = spawn_app().await;
    // A customer registers and signs in.
    let registered = app.register(&customer_body("Grace.Hopper")).await;
    let body = expect_json(registered, StatusCode::CREATED).await;
    assert_eq!(body["status"], "Success");
    let customer_id = uuid_field(&body, "customer_id");
    let customer = app.sign_in("Grace.Hopper", testkit::PASSWORD).await;
    assert_eq!(customer.id, customer_id);
    let me = expect_json(app.me(Some(&customer.token)).await, StatusCode::OK).await;
    assert_eq!(uuid_field(&me, "customer_id"), customer_id);
    assert_eq!(me["username"], "Grace.Hopper");
    assert_eq!(me["fullname"], "Ada Lovelace");
    assert_eq!(me["email"], "Grace.Hopper@example.com");
    assert_eq!(me["phone"], "+442079460000");
    assert_eq!(me["role"], "customer");
    // The username signs in in any letter case, as the same account.
    let same = app.sign_in("GRACE.HOPPER", testkit::PASSWORD).await;
    assert_eq!(same.id, customer_id);
}

#[tokio::test]
async fn a_repeated_hold_writes_nothing_and_releasing_it_gives_the_stock_back() {
    let app = spawn_app().await;
    let Catalog { admin, tee, .. } = stocked(&app).await;
    let token = Some(admin.token.as_str());
    // A hold takes stock out of what is available; the same hold again
    // changes nothing; releasing it gives the stock back.
    let owner = Uuid::new_v4();
    let hold_path = format!("/v1/inventory/{tee}/hold");
    let hold = json!({"quantity": 4, "owner_id": owner});
    let held = expect_json(app.put_json(&hold_path, &hold, token).await, StatusCode::OK).await;
    uuid_field(&held, "hold_id");
    assert!(held["expires_at"].is_string(), "a hold expires: {held}");
    assert_eq!(app.availability(tee).await, (10, 4, 6));
    let events = app.event_count().await;
    let again = expect_json(app.put_json(&hold_path, &hold, token).await, StatusCode::OK).await;
    assert_eq!(again["hold_id"], held["hold_id"]);
    assert_eq!(again["expires_at"], held["expires_at"]);
    assert_eq!(
        app.event_count().await,
        events,
        "a repeated hold writes nothing"
    );
    assert_eq!(app.availability(tee).await, (10, 4, 6));
    let released = app
        .delete(&format!("/v1/inventory/{tee}/hold/{owner}"), token)
        .await;
    expect_json(released, StatusCode::OK).await;
    assert_eq!(app.availability(tee).await, (10, 0, 10));
}

#[tokio::test]
async fn an_order_decrements_the_stock_once() {
    let app = spawn_app().await;
    let Catalog { admin, tee, .. } = stocked(&app).await;
    let token = Some(admin.token.as_str());
    let decrement_path = format!("/v1/inventory/{tee}/decrement");
    let decrement = json!({"quantity": 3, "order_id": Uuid::new_v4()});
    let first = app.put_json(&decrement_path, &decrement, token).await;
    let first = expect_json(first, StatusCode::OK).await;
    assert_eq!(app.availability(tee).await, (7, 0, 7));
    let events = app.event_count().await;
    let repeat = app.put_json(&decrement_path, &decrement, token).await;
    let repeat = expect_json(repeat, StatusCode::OK).await;
    assert_eq!(repeat["position"], first["position"]);
    assert_eq!(
        app.event_count().await,
        events,
        "a repeated decrement writes nothing"
    );
    assert_eq!(app.availability(tee).await, (7, 0, 7));
}

#[tokio::test]
async fn an_order_lock_holds_every_line_or_none() {
    let app = spawn_app().await;
    let Catalog {
        admin, tee, mug, ..
    } = stocked(&app).await;
    let token = Some(admin.token.as_str());
    // An order lock is all lines or none: the mug line cannot fit, so the
    // tee line it held first is let go again.
    let too_many = json!({
        "order_id": Uuid::new_v4(),
        "items": [
            {"product_id": tee, "quantity": 2},
            {"product_id": mug, "quantity": 5},
        ],
    });
    let refused = app.post_json("/v1/inventory/lock", &too_many, token).await;
    let refused = expect_json(refused, StatusCode::OK).await;
    assert_eq!(refused["locked"], false);
    assert!(refused["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert_eq!(
        app.availability(tee).await,
        (10, 0, 10),
        "no hold is left behind"
    );
    assert_eq!(app.availability(mug).await, (3, 0, 3));

    let order = Uuid::new_v4();
    let fits = json!({
        "order_id": order,
        "items": [
            {"product_id": tee, "quantity": 2},
            {"product_id": mug, "quantity": 3},
        ],
    });
    let locked = app.post_json("/v1/inventory/lock", &fits, token).await;
    assert_eq!(expect_json(locked, StatusCode::OK).await["locked"], true);
    assert_eq!(app.availability(tee).await, (10, 2, 8));
    assert_eq!(app.availability(mug).await, (3, 3, 0));
    let events = app.event_count().await;
    let relocked = app.post_json("/v1/inventory/lock", &fits, token).await;
    assert_eq!(expect_json(relocked, StatusCode::OK).await["locked"], true);
    assert_eq!(
        app.event_count().await,
        events,
        "locking an order again writes nothing"
    );
    assert_eq!(app.availability(tee).await, (10, 2, 8));
}

#[tokio::test]
async fn a_username_is_taken_in_every_letter_case() {
    let app = spawn_app().await;
    expect_json(
        app.register(&customer_body("Grace.Hopper")).await,
        StatusCode::CREATED,
    )
    .await;
    let events = app.event_count().await;
    let twice = app.register(&customer_body("gRACE.hOPPER")).await;
    let body = expect_error(twice, StatusCode::CONFLICT).await;
    assert_eq!(body["error"], "username_taken");
    assert_eq!(app.event_count().await, events);
}

#[tokio::test]
async fn every_event_names_its_actor_request_cause_and_command() {
    let app = spawn_app().await;
    let Catalog {
        admin,
        root,
        child,
        shop,
        tee,
        mug,
        ..
    } = stocked(&app).await;
    let token = Some(admin.token.as_str());
    expect_json(
        app.register(&customer_body("Grace.Hopper")).await,
        StatusCode::CREATED,
    )
    .await;
    let hold = json!({"quantity": 4, "owner_id": Uuid::new_v4()});
    let hold_path = format!("/v1/inventory/{tee}/hold");
    expect_json(app.put_json(&hold_path, &hold, token).await, StatusCode::OK).await;
    let decrement = json!({"quantity": 3, "order_id": Uuid::new_v4()});
    let decrement_path = format!("/v1/inventory/{tee}/decrement");
    expect_json(
        app.put_json(&decrement_path, &decrement, token).await,
        StatusCode::OK,
    )
    .await;
    let lock = json!({
        "order_id": Uuid::new_v4(),
        "items": [{"product_id": tee, "quantity": 2}, {"product_id": mug, "quantity": 3}],
    });
    let locked = app.post_json("/v1/inventory/lock", &lock, token).await;
    assert_eq!(expect_json(locked, StatusCode::OK).await["locked"], true);
    // The client's request id is echoed back and kept beside the server's
    // correlation id (its answer's X-Correlation-Id), which names every
    // event the request causes.
    let traced = app
        .request(Method::POST, "/v1/products", token)
        .header("X-Request-Id", "abc-123")
        .json(&product_body("Cap", "CAP-1", child, Some(shop)))
        .send()
        .await
        .expect("send request");
    let header = |response: &reqwest::Response, name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    assert_eq!(header(&traced, "x-request-id").as_deref(), Some("abc-123"));
    let correlation = header(&traced, "x-correlation-id")
        .and_then(|v| Uuid::parse_str(&v).ok())
        .expect("the server's correlation id, a UUID");
    let cap = uuid_field(&expect_json(traced, StatusCode::CREATED).await, "id");
    let caused: Vec<(String, String, Value)> = sqlx::query_as(
        "SELECT aggregate_type, aggregate_id, metadata::jsonb FROM events
          WHERE metadata::jsonb->>'correlation_id' = $1 ORDER BY global_position",
    )
    .bind(correlation.to_string())
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    let aggregates: Vec<&str> = caused.iter().map(|(t, _, _)| t.as_str()).collect();
    assert_eq!(
        aggregates,
        ["SkuClaim", "Product"],
        "the claim, then the product"
    );
    assert_eq!(caused[1].1, cap.to_string());
    for (_, _, metadata) in &caused {
        assert_eq!(metadata["actor"], format!("admin:{}", admin.id));
        assert_eq!(metadata["client_request_id"], "abc-123");
    }

    // A request id that is not a sensible token is not kept: the answer's
    // X-Request-Id is the correlation id, which names the events all the
    // same.
    let renamed = app
        .request(Method::PUT, &format!("/v1/categories/{root}"), token)
        .header("X-Request-Id", "not a good id; <script>")
        .json(&json!({"name": "Apparel"}))
        .send()
        .await
        .expect("send request");
    let echoed = header(&renamed, "x-request-id")
        .and_then(|v| Uuid::parse_str(&v).ok())
        .expect("a fresh UUID is echoed");
    assert_eq!(
        header(&renamed, "x-correlation-id"),
        Some(echoed.to_string())
    );
    let position = expect_json(renamed, StatusCode::OK).await["position"].clone();
    let (correlation, client): (String, Option<String>) = sqlx::query_as(
        "SELECT metadata::jsonb->>'correlation_id', metadata::jsonb->>'client_request_id'
           FROM events WHERE global_position = $1",
    )
    .bind(position.as_i64().unwrap())
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(correlation, echoed.to_string());
    assert_eq!(client, None);

    // Every stored event says who caused it, in which request, because of
    // what, by which command.
    let all: Vec<(String, String, Value)> = sqlx::query_as(
        "SELECT aggregate_type, event_type, metadata::jsonb FROM events ORDER BY global_position",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert!(
        all.len() >= 20,
        "the story above wrote events: {}",
        all.len()
    );
    for (aggregate, event, metadata) in &all {
        for key in ["actor", "correlation_id", "causation_id", "command"] {
            assert!(
                metadata[key].as_str().is_some_and(|v| !v.trim().is_empty()),
                "{aggregate}/{event} has no {key}: {metadata}"
            );
        }
    }
    let actors: Vec<&str> = all
        .iter()
        .filter_map(|(_, _, m)| m["actor"].as_str())
        .collect();
    assert_eq!(actors[0], "system:cli", "the admin was made by the CLI");
    assert!(
        actors.contains(&"anonymous"),
        "registration has no signed-in actor"
    );
}

#[tokio::test]
async fn a_sku_already_used_in_any_letter_case_is_409_and_writes_no_product_event() {
    let app = spawn_app().await;
    let admin = app.bootstrap_admin().await;
    let category = app.create_category(&admin.token, "Mugs", None).await;
    app.create_product(
        &admin.token,
        &product_body("Mug", "Mug-Blue-1", category, None),
    )
    .await;
    let products = app.event_count_of("Product").await;
    let events = app.event_count().await;

    for sku in ["Mug-Blue-1", "MUG-BLUE-1", "mug-blue-1", " mug-blue-1 "] {
        let response = app
            .post_json(
                "/v1/products",
                &product_body("Another mug", sku, category, None),
                Some(&admin.token),
            )
            .await;
        let body = expect_error(response, StatusCode::CONFLICT).await;
        assert_eq!(body["error"], "sku_taken", "{sku:?}");
    }
    assert_eq!(app.event_count_of("Product").await, products);
    assert_eq!(app.event_count().await, events, "nothing at all is written");
}

#[tokio::test]
async fn creating_a_category_twice_with_one_idempotency_key_answers_the_same_id_and_writes_one_event(
) {
    let app = spawn_app().await;
    let admin = app.bootstrap_admin().await;
    let before = app.event_count_of("Category").await;
    let body = json!({"name": "Garden"});
    let mut answers = Vec::new();
    for _ in 0..2 {
        let response = app
            .request(Method::POST, "/v1/categories", Some(&admin.token))
            .header("Idempotency-Key", "create-garden-1")
            .json(&body)
            .send()
            .await
            .unwrap();
        answers.push(expect_json(response, StatusCode::CREATED).await);
    }
    assert_eq!(answers[0]["id"], answers[1]["id"]);
    assert_eq!(answers[0]["position"], answers[1]["position"]);
    assert_eq!(app.event_count_of("Category").await, before + 1);

    // The same key with another body is refused and writes nothing.
    let events = app.event_count().await;
    let response = app
        .request(Method::POST, "/v1/categories", Some(&admin.token))
        .header("Idempotency-Key", "create-garden-1")
        .json(&json!({"name": "Kitchen"}))
        .send()
        .await
        .unwrap();
    let body = expect_error(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["error"], "idempotency_key_reused");
    assert_eq!(app.event_count().await, events);
    let garden = uuid_field(&answers[0], "id");
    let stored = get_ok(&app, &format!("/v1/categories/{garden}")).await;
    assert_eq!(stored["name"], "Garden");
}

#[tokio::test]
async fn a_product_idempotency_key_reused_with_another_sku_is_422_and_claims_nothing() {
    let app = spawn_app().await;
    let admin = app.bootstrap_admin().await;
    let category = app.create_category(&admin.token, "Mugs", None).await;
    let send = |sku: &'static str| {
        app.request(Method::POST, "/v1/products", Some(&admin.token))
            .header("Idempotency-Key", "mug-import-7")
            .json(&product_body("Mug", sku, category, None))
            .send()
    };
    let first = expect_json(send("MUG-7").await.unwrap(), StatusCode::CREATED).await;
    let replay = expect_json(send("MUG-7").await.unwrap(), StatusCode::CREATED).await;
    assert_eq!(first, replay);

    let events = app.event_count().await;
    let other = send("MUG-8").await.unwrap();
    let body = expect_error(other, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["error"], "idempotency_key_reused");
    assert_eq!(
        app.event_count().await,
        events,
        "no SKU claim is left behind"
    );

    // MUG-8 is still free for another product.
    app.create_product(
        &admin.token,
        &product_body("Mug 8", "MUG-8", category, None),
    )
    .await;

    // The product gives MUG-7 up; replaying its creation answers as before
    // and does not take MUG-7 back.
    let id = uuid_field(&first, "id");
    let changed = app
        .put_json(
            &format!("/v1/products/{id}"),
            &json!({"sku": "MUG-9"}),
            Some(&admin.token),
        )
        .await;
    expect_json(changed, StatusCode::OK).await;
    let events = app.event_count().await;
    let replay = expect_json(send("MUG-7").await.unwrap(), StatusCode::CREATED).await;
    assert_eq!(replay, first);
    assert_eq!(app.event_count().await, events, "a replay writes nothing");
    app.create_product(
        &admin.token,
        &product_body("Mug 7", "mug-7", category, None),
    )
    .await;
}

#[tokio::test]
async fn a_product_update_refused_for_one_field_changes_no_field_and_writes_nothing() {
    let app = spawn_app().await;
    let admin = app.bootstrap_admin().await;
    let category = app.create_category(&admin.token, "Mugs", None).await;
    let product = app
        .create_product(&admin.token, &product_body("Mug", "MUG-1", category, None))
        .await;
    let events = app.event_count().await;

    let refused = app
        .put_json(
            &format!("/v1/products/{product}"),
            &json!({"name": "Better mug", "sku": "MUG-2", "price": 0}),
            Some(&admin.token),
        )
        .await;
    let body = expect_error(refused, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["error"], "price_not_positive");
    assert_eq!(app.event_count().await, events, "nothing is written");
    let stored = get_ok(&app, &format!("/v1/products/{product}")).await;
    assert_eq!(stored["name"], "Mug");
    assert_eq!(stored["sku"], "MUG-1");
    assert_eq!(stored["price"], 1999);

    // A good update of the same fields goes through, all of it.
    let accepted = app
        .put_json(
            &format!("/v1/products/{product}"),
            &json!({"name": "Better mug", "sku": "MUG-2", "price": 2499}),
            Some(&admin.token),
        )
        .await;
    expect_json(accepted, StatusCode::OK).await;
    let stored = get_ok(&app, &format!("/v1/products/{product}")).await;
    assert_eq!(stored["name"], "Better mug");
    assert_eq!(stored["sku"], "MUG-2");
    assert_eq!(stored["price"], 2499);
    // MUG-1 was given up with the change.
    app.create_product(
        &admin.token,
        &product_body("Old mug", "MUG-1", category, None),
    )
    .await;
}

#[tokio::test]
async fn a_category_update_refused_for_its_move_does_not_rename_it() {
    let app = spawn_app().await;
    let admin = app.bootstrap_admin().await;
    let root = app.create_category(&admin.token, "Home", None).await;
    let child = app
        .create_category(&admin.token, "Kitchen", Some(root))
        .await;
    let events = app.event_count().await;

    let refused = app
        .put_json(
            &format!("/v1/categories/{root}"),
            &json!({"name": "House", "parent_category_id": child}),
            Some(&admin.token),
        )
        .await;
    let body = expect_error(refused, StatusCode::CONFLICT).await;
    assert_eq!(body["error"], "category_cycle");
    assert_eq!(app.event_count().await, events, "nothing is written");
    let stored = get_ok(&app, &format!("/v1/categories/{root}")).await;
    assert_eq!(stored["name"], "Home");
    assert!(stored["parent_category_id"].is_null());
}
