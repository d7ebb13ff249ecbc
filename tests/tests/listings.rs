//! Catalog queries answered from the read model.

use api::staff::{create_staff, StaffAccount, StaffOutcome};
use domain::metadata::Role;
use serde_json::{json, Value};
use testkit::{spawn_app, TestApp};

struct Admin<'a> {
    app: &'a TestApp,
    token: String,
    position: i64,
}

impl<'a> Admin<'a> {
    async fn new(app: &'a TestApp) -> Self {
        let StaffOutcome::Created(id) = create_staff(
            &app.state,
            StaffAccount {
                role: Role::Admin,
                username: "catalog-admin".into(),
                password: "correct horse battery".into(),
                fullname: None,
                email: None,
                phone: None,
                promote: false,
            },
        )
        .await
        .unwrap() else {
            panic!("admin existed")
        };
        let token = app.state.tokens.issue(id.as_uuid(), Role::Admin).unwrap().0;
        Admin {
            app,
            token,
            position: 0,
        }
    }

    async fn send(&mut self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let response = self
            .app
            .client
            .request(method, self.app.url(path))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        let answer: Value = response.json().await.unwrap();
        self.position = self.position.max(answer["position"].as_i64().unwrap_or(0));
        answer
    }

    async fn category(&mut self, name: &str, parent: Option<&str>) -> String {
        let answer = self
            .send(
                reqwest::Method::POST,
                "/v1/categories",
                json!({"name": name, "parent_category_id": parent}),
            )
            .await;
        answer["id"].as_str().unwrap().to_string()
    }

    async fn product(
        &mut self,
        name: &str,
        description: &str,
        price: i64,
        category: &str,
    ) -> String {
        let sku = name.to_uppercase().replace(' ', "-");
        let answer = self
            .send(
                reqwest::Method::POST,
                "/v1/products",
                json!({"name": name, "description": description, "price": price, "sku": sku, "category_id": category}),
            )
            .await;
        answer["id"].as_str().unwrap().to_string()
    }

    /// GET `path` once the catalog has caught up with everything sent so far.
    async fn read(&self, path: &str) -> Value {
        let sep = if path.contains('?') { '&' } else { '?' };
        let response = self
            .app
            .get(&format!("{path}{sep}min_position={}", self.position))
            .await;
        assert_eq!(response.status(), 200, "{path}");
        assert!(response.headers().get("x-read-model-stale").is_none());
        response.json().await.unwrap()
    }
}

fn names(page: &Value) -> Vec<String> {
    page["products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn listings_filter_search_sort_and_page_through_the_catalog() {
    let app = spawn_app().await;
    let mut admin = Admin::new(&app).await;
    let tools = admin.category("Tools", None).await;
    let saws = admin.category("Saws", Some(&tools)).await;
    let garden = admin.category("Garden", None).await;
    let hammer = admin
        .product("Claw hammer", "Forged steel hammer", 1500, &tools)
        .await;
    admin
        .product("Hand saw", "Sharp saw for wood", 2500, &saws)
        .await;
    admin
        .product("Rake", "Garden rake with steel teeth", 900, &garden)
        .await;
    let gone = admin
        .product("Old hoe", "Discontinued hoe", 500, &garden)
        .await;
    admin
        .send(
            reqwest::Method::DELETE,
            &format!("/v1/products/{gone}"),
            json!({}),
        )
        .await;
    admin
        .send(
            reqwest::Method::POST,
            &format!("/v1/inventory/{hammer}/receive"),
            json!({"quantity": 3}),
        )
        .await;

    let all = admin.read("/v1/products").await;
    assert_eq!(
        names(&all),
        ["Claw hammer", "Hand saw", "Rake"],
        "discontinued is hidden"
    );
    assert_eq!(all["next_cursor"], Value::Null);

    // A category includes its sub-categories.
    let tools_page = admin
        .read(&format!("/v1/products?category_id={tools}"))
        .await;
    assert_eq!(names(&tools_page), ["Claw hammer", "Hand saw"]);

    let cheap_first = admin.read("/v1/products?sort=price").await;
    assert_eq!(names(&cheap_first), ["Rake", "Claw hammer", "Hand saw"]);
    let dear_first = admin.read("/v1/products?sort=-price&max_price=2000").await;
    assert_eq!(names(&dear_first), ["Claw hammer", "Rake"]);
    let in_stock = admin.read("/v1/products?in_stock=true").await;
    assert_eq!(names(&in_stock), ["Claw hammer"]);
    assert_eq!(in_stock["products"][0]["available"], 3);

    // Full-text search, ranked; and its own endpoint.
    let steel = admin.read("/v1/products/search?q=steel").await;
    let mut found = names(&steel);
    found.sort();
    assert_eq!(found, ["Claw hammer", "Rake"]);
    let wood = admin.read("/v1/products?search=wood").await;
    assert_eq!(names(&wood), ["Hand saw"]);

    // Keyset pages of one product each cover everything once.
    let mut seen = Vec::new();
    let mut path = "/v1/products?limit=1&sort=newest".to_string();
    loop {
        let page = admin.read(&path).await;
        seen.extend(names(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/products?limit=1&sort=newest&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, ["Rake", "Hand saw", "Claw hammer"]);

    // Categories: flat, tree, one with its path and children, search.
    let flat = admin.read("/v1/categories").await;
    assert_eq!(flat.as_array().unwrap().len(), 3);
    let tree = admin.read("/v1/categories?tree=true").await;
    let tools_node = tree
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "Tools")
        .unwrap();
    assert_eq!(tools_node["children"][0]["name"], "Saws");
    let saws_detail = admin.read(&format!("/v1/categories/{saws}")).await;
    assert_eq!(saws_detail["path"][0]["name"], "Tools");
    let tools_detail = admin.read(&format!("/v1/categories/{tools}")).await;
    assert_eq!(tools_detail["children"][0]["name"], "Saws");
    let search = admin.read("/v1/categories/search?q=AW").await;
    assert_eq!(search[0]["name"], "Saws");

    // Moving a category moves its products' subtree membership with it.
    admin
        .send(
            reqwest::Method::PUT,
            &format!("/v1/categories/{saws}"),
            json!({"parent_category_id": garden}),
        )
        .await;
    let garden_page = admin
        .read(&format!("/v1/products?category_id={garden}"))
        .await;
    assert_eq!(names(&garden_page), ["Hand saw", "Rake"]);

    // Bad query input is a 400 in the error shape; a cursor this list did
    // not give out is 404.
    for (bad, status) in [
        ("/v1/products?limit=1000", 400),
        ("/v1/products?sort=popular", 400),
        ("/v1/products?min_price=abc", 400),
        ("/v1/products?cursor=nonsense", 404),
    ] {
        let response = app.get(bad).await;
        assert_eq!(response.status(), status, "{bad}");
        let body: Value = response.json().await.unwrap();
        assert!(body["error"].is_string(), "{bad}: {body}");
    }
}
