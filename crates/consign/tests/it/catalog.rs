//! The catalog and warehouses: products with variants, SKU and currency
//! rules, If-Match, warehouses and each brand's allocation order, tenancy
//! and bad input on every endpoint with an id or a body.

use consign_testkit::{TestApp, TestUser};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A merchant with a brand, a 3PL that fulfils for it, and the 3PL's two
/// warehouses serving the brand (EWR first, then LAX).
pub(crate) struct Shop {
    /// The merchant's org admin.
    pub owner: TestUser,
    /// The brand.
    pub brand_id: String,
    /// The 3PL's org admin.
    pub threepl: TestUser,
    /// The 3PL's first warehouse (priority 1).
    pub ewr: String,
    /// The 3PL's second warehouse (priority 2).
    pub lax: String,
}

/// Sets up a [`Shop`]; `name` keeps emails and slugs apart within one test.
pub(crate) async fn shop(app: &TestApp, name: &str) -> Shop {
    let owner = app.sign_up(&format!("owner@{name}.example"), "merchant").await;
    let brand = app.create_brand(&owner, name).await;
    let brand_id = brand["id"].as_str().unwrap().to_owned();
    let threepl = app.sign_up(&format!("ops@{name}-3pl.example"), "threepl").await;
    let linked = app
        .post(
            &format!("/api/v1/brands/{brand_id}/fulfillers"),
            &owner.token,
            json!({"organization_id": threepl.organization_id}),
        )
        .await;
    assert_eq!(linked.status, StatusCode::NO_CONTENT, "{}", linked.text);
    let ewr = create_warehouse(app, &threepl, "EWR").await;
    let lax = create_warehouse(app, &threepl, "LAX").await;
    let put = app
        .request(
            Method::PUT,
            &format!("/api/v1/brands/{brand_id}/warehouses"),
            Some(&threepl.token),
            Some(&json!({"warehouses": [{"warehouse_id": ewr, "priority": 1}, {"warehouse_id": lax, "priority": 2}]})),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text);
    Shop { owner, brand_id, threepl, ewr, lax }
}

/// Creates a warehouse in the user's only organization; returns its id.
pub(crate) async fn create_warehouse(app: &TestApp, user: &TestUser, code: &str) -> String {
    let response =
        app.post("/api/v1/warehouses", &user.token, json!({"name": format!("Warehouse {code}"), "code": code})).await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
    response.body["id"].as_str().unwrap().to_owned()
}

/// A product body with one variant per SKU, priced in USD.
pub(crate) fn product_body(brand_id: &str, title: &str, skus: &[&str]) -> Value {
    let variants: Vec<Value> = skus
        .iter()
        .enumerate()
        .map(|(i, sku)| {
            json!({"sku": sku, "title": format!("Option {i}"), "options": {"size": format!("S{i}")},
                   "price": {"amount": 1000 + i as i64, "currency": "USD"}})
        })
        .collect();
    json!({"brand_id": brand_id, "title": title, "description": "Good gear.", "status": "active", "variants": variants})
}

/// Creates a product; returns its JSON.
pub(crate) async fn create_product(app: &TestApp, token: &str, brand_id: &str, title: &str, skus: &[&str]) -> Value {
    let response = app.post("/api/v1/products", token, product_body(brand_id, title, skus)).await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
    response.body
}

fn titles(page: &Value) -> Vec<String> {
    page["data"].as_array().unwrap().iter().map(|p| p["title"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn products_are_created_with_variants_and_listed_with_filters_and_pages() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let brand_id = app.create_brand(&owner, "acme").await["id"].as_str().unwrap().to_owned();

    let created = app
        .post(
            "/api/v1/products",
            &owner.token,
            json!({"brand_id": brand_id, "title": "Trail Tent", "description": "Two people.", "status": "active",
                   "available_at": "2030-01-01T00:00:00Z", "early_access_emails": ["VIP@Example.com"],
                   "variants": [
                       {"sku": "TENT-GRN", "title": "Green", "options": {"color": "green"}, "price": {"amount": 34900, "currency": "USD"}},
                       {"sku": "TENT-SND", "title": "Sand", "options": {"color": "sand"}, "price": {"amount": 0, "currency": "USD"}}
                   ]}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.header("etag"), Some("\"1\""));
    let product = &created.body;
    assert_eq!(product["brand_id"], brand_id.as_str());
    assert_eq!(product["status"], "active");
    assert_eq!(product["version"], 1);
    assert_eq!(product["available_at"], "2030-01-01T00:00:00.000000Z");
    assert_eq!(product["early_access_emails"], json!(["vip@example.com"]));
    let variants = product["variants"].as_array().unwrap();
    assert_eq!(variants.len(), 2);
    assert_eq!(variants[0]["sku"], "TENT-GRN");
    assert_eq!(variants[0]["product_id"], product["id"]);
    assert_eq!(variants[0]["options"], json!({"color": "green"}));
    assert_eq!(variants[0]["price"], json!({"amount": 34900, "currency": "USD"}));
    assert!(variants[1]["created_at"].is_string() && variants[1]["updated_at"].is_string());

    create_product(&app, &owner.token, &brand_id, "Down Jacket", &["JKT-S", "JKT-M"]).await;
    let draft = app
        .post("/api/v1/products", &owner.token, {
            let mut body = product_body(&brand_id, "Prototype Stove", &["STOVE-1"]);
            body["status"] = json!("draft");
            body
        })
        .await;
    assert_eq!(draft.status, StatusCode::CREATED);
    create_product(&app, &owner.token, &brand_id, "Trekking Poles", &["POLE-CBN"]).await;

    let all = app.get(&format!("/api/v1/products?brand_id={brand_id}"), &owner.token).await;
    assert_eq!(titles(&all.body), ["Trekking Poles", "Prototype Stove", "Down Jacket", "Trail Tent"]);
    assert_eq!(all.body["data"][2]["variants"].as_array().unwrap().len(), 2, "variants come with each product");
    let by_title = app.get("/api/v1/products?q=tReK", &owner.token).await;
    assert_eq!(titles(&by_title.body), ["Trekking Poles"]);
    let by_sku = app.get("/api/v1/products?q=jkt-", &owner.token).await;
    assert_eq!(titles(&by_sku.body), ["Down Jacket"]);
    let wildcard = app.get("/api/v1/products?q=%25", &owner.token).await;
    assert_eq!(titles(&wildcard.body), Vec::<String>::new(), "% is matched literally");
    let drafts = app.get(&format!("/api/v1/products?brand_id={brand_id}&status=draft"), &owner.token).await;
    assert_eq!(titles(&drafts.body), ["Prototype Stove"]);
    let bad_status = app.get("/api/v1/products?status=sold", &owner.token).await;
    assert_eq!(bad_status.status, StatusCode::UNPROCESSABLE_ENTITY);

    let mut seen = Vec::new();
    let mut path = format!("/api/v1/products?brand_id={brand_id}&limit=3");
    loop {
        let page = app.get(&path, &owner.token).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body["data"].as_array().unwrap().len() <= 3);
        seen.extend(titles(&page.body));
        match page.body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/products?brand_id={brand_id}&limit=3&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, titles(&all.body));

    let id = product["id"].as_str().unwrap();
    let fetched = app.get(&format!("/api/v1/products/{id}"), &owner.token).await;
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(fetched.header("etag"), Some("\"1\""));
    assert_eq!(fetched.body, *product);
}

#[tokio::test]
async fn a_sku_already_used_in_the_brand_is_a_conflict_naming_it() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let brand_id = app.create_brand(&owner, "acme").await["id"].as_str().unwrap().to_owned();
    let first = create_product(&app, &owner.token, &brand_id, "Tent", &["TENT-1"]).await;

    let taken =
        app.post("/api/v1/products", &owner.token, product_body(&brand_id, "Tent again", &["NEW-1", "TENT-1"])).await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.text);
    assert_eq!(taken.code(), "conflict");
    assert!(taken.body["detail"].as_str().unwrap().contains("TENT-1"), "{}", taken.text);
    let added = app
        .post(
            &format!("/api/v1/products/{}/variants", first["id"].as_str().unwrap()),
            &owner.token,
            json!({"sku": "TENT-1", "title": "Dup", "price": {"amount": 1, "currency": "USD"}}),
        )
        .await;
    assert_eq!(added.status, StatusCode::CONFLICT);
    assert!(added.body["detail"].as_str().unwrap().contains("TENT-1"));

    let twice = app.post("/api/v1/products", &owner.token, product_body(&brand_id, "Twice", &["X-1", "X-1"])).await;
    assert_eq!(twice.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(twice.body["errors"][0]["field"], "variants[1].sku");

    // Nothing of the refused products was written, so NEW-1 is still free.
    let list = app.get(&format!("/api/v1/products?brand_id={brand_id}"), &owner.token).await;
    assert_eq!(titles(&list.body), ["Tent"]);
    create_product(&app, &owner.token, &brand_id, "New", &["NEW-1"]).await;
    // Another brand may use the same SKU.
    let sister = app.create_brand(&owner, "acme-kids").await["id"].as_str().unwrap().to_owned();
    create_product(&app, &owner.token, &sister, "Kids tent", &["TENT-1"]).await;
}

#[tokio::test]
async fn prices_must_be_in_the_brands_currency_and_not_negative() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let brand_id = app.create_brand(&owner, "acme").await["id"].as_str().unwrap().to_owned();

    let mut euro = product_body(&brand_id, "Tent", &["T-1", "T-2"]);
    euro["variants"][1]["price"]["currency"] = json!("EUR");
    let response = app.post("/api/v1/products", &owner.token, euro).await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(response.code(), "validation_failed");
    assert_eq!(response.body["errors"][0]["field"], "variants[1].price.currency");

    let mut negative = product_body(&brand_id, "Tent", &["T-1"]);
    negative["variants"][0]["price"]["amount"] = json!(-1);
    let response = app.post("/api/v1/products", &owner.token, negative).await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(response.body["errors"][0]["field"], "variants[0].price.amount");

    for (field, value) in [("variants", json!([])), ("status", json!("sold")), ("title", json!(""))] {
        let mut body = product_body(&brand_id, "Tent", &["T-1"]);
        body[field] = value;
        let response = app.post("/api/v1/products", &owner.token, body).await;
        assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY, "{field}: {}", response.text);
    }
    let mut blank_sku = product_body(&brand_id, "Tent", &["  "]);
    blank_sku["variants"][0]["title"] = json!("x");
    let response = app.post("/api/v1/products", &owner.token, blank_sku).await;
    assert_eq!(response.body["errors"][0]["field"], "variants[0].sku");

    let product = create_product(&app, &owner.token, &brand_id, "Tent", &["T-1"]).await;
    let variant_id = product["variants"][0]["id"].as_str().unwrap();
    let response = app
        .request(
            Method::PATCH,
            &format!("/api/v1/variants/{variant_id}"),
            Some(&owner.token),
            Some(&json!({"price": {"amount": 5, "currency": "GBP"}})),
        )
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(response.body["errors"][0]["field"], "price.currency");
    let list = app.get(&format!("/api/v1/products?brand_id={brand_id}"), &owner.token).await;
    assert_eq!(list.body["data"][0]["variants"][0]["price"]["amount"], 1000, "the refused price was not applied");
}

#[tokio::test]
async fn a_stale_if_match_on_a_product_is_412_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let brand_id = app.create_brand(&owner, "acme").await["id"].as_str().unwrap().to_owned();
    let product = create_product(&app, &owner.token, &brand_id, "Tent", &["T-1"]).await;
    let path = format!("/api/v1/products/{}", product["id"].as_str().unwrap());
    let patch = |version: &str, body: Value| {
        app.send(app.client.patch(app.url(&path)).bearer_auth(&owner.token).header("if-match", version).json(&body))
    };

    let first =
        patch("\"1\"", json!({"title": "Tent v2", "status": "archived", "available_at": "2031-05-01T10:00:00Z"})).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert_eq!(first.header("etag"), Some("\"2\""));
    assert_eq!(first.body["version"], 2);
    assert_eq!(first.body["status"], "archived");
    assert_eq!(first.body["variants"].as_array().unwrap().len(), 1);

    let stale = patch("\"1\"", json!({"title": "Stale"})).await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(stale.code(), "precondition_failed");
    let current = app.get(&path, &owner.token).await;
    assert_eq!(current.body["title"], "Tent v2");
    assert_eq!(current.body["version"], 2);

    // `null` clears the schedule; leaving a field out keeps it.
    let cleared = patch("\"2\"", json!({"available_at": null, "early_access_emails": ["a@example.com"]})).await;
    assert_eq!(cleared.status, StatusCode::OK, "{}", cleared.text);
    assert_eq!(cleared.body["available_at"], Value::Null);
    assert_eq!(cleared.body["title"], "Tent v2");
    assert_eq!(cleared.body["early_access_emails"], json!(["a@example.com"]));
    let unconditional =
        app.request(Method::PATCH, &path, Some(&owner.token), Some(&json!({"description": "New"}))).await;
    assert_eq!(unconditional.body["version"], 4);
    let bad_email =
        app.request(Method::PATCH, &path, Some(&owner.token), Some(&json!({"early_access_emails": ["nope"]}))).await;
    assert_eq!(bad_email.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn variants_are_added_and_changed_but_keep_their_sku() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let brand_id = app.create_brand(&owner, "acme").await["id"].as_str().unwrap().to_owned();
    let product = create_product(&app, &owner.token, &brand_id, "Jacket", &["JKT-S"]).await;
    let product_id = product["id"].as_str().unwrap();

    let added = app
        .post(
            &format!("/api/v1/products/{product_id}/variants"),
            &owner.token,
            json!({"sku": " JKT-M ", "title": "M", "options": {"size": "M"}, "price": {"amount": 22900, "currency": "USD"}}),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.text);
    assert_eq!(added.body["sku"], "JKT-M", "surrounding spaces are dropped");
    assert_eq!(added.body["product_id"], product_id);
    let variant_id = added.body["id"].as_str().unwrap();

    let changed = app
        .request(
            Method::PATCH,
            &format!("/api/v1/variants/{variant_id}"),
            Some(&owner.token),
            Some(&json!({"title": "Medium", "price": {"amount": 19900, "currency": "USD"}, "sku": "IGNORED"})),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    assert_eq!(changed.body["title"], "Medium");
    assert_eq!(changed.body["price"]["amount"], 19900);
    assert_eq!(changed.body["sku"], "JKT-M");
    assert_eq!(changed.body["options"], json!({"size": "M"}));

    let fetched = app.get(&format!("/api/v1/products/{product_id}"), &owner.token).await;
    let skus: Vec<&str> =
        fetched.body["variants"].as_array().unwrap().iter().map(|v| v["sku"].as_str().unwrap()).collect();
    assert_eq!(skus, ["JKT-S", "JKT-M"], "variants keep the order they were added in");
    assert_eq!(fetched.body["variants"][1]["title"], "Medium");
}

#[tokio::test]
async fn warehouses_are_created_by_org_admins_with_codes_unique_per_organization() {
    let app = TestApp::spawn().await;
    let threepl = app.sign_up("ops@northwind.example", "threepl").await;
    let other = app.sign_up("ops@southwind.example", "threepl").await;

    let created = app
        .post(
            "/api/v1/warehouses",
            &threepl.token,
            json!({"name": "Newark", "code": "EWR", "organization_id": threepl.organization_id}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.body["organization_id"], threepl.organization_id.as_str());
    assert_eq!(created.body["code"], "EWR");
    let taken = app.post("/api/v1/warehouses", &threepl.token, json!({"name": "Newark 2", "code": "EWR"})).await;
    assert_eq!(taken.status, StatusCode::CONFLICT);
    assert!(taken.body["detail"].as_str().unwrap().contains("EWR"));
    // Codes are unique per organization, not globally.
    create_warehouse(&app, &other, "EWR").await;
    let bad_code = app.post("/api/v1/warehouses", &threepl.token, json!({"name": "X", "code": "ewr 1"})).await;
    assert_eq!(bad_code.status, StatusCode::UNPROCESSABLE_ENTITY);
    let foreign = app
        .post(
            "/api/v1/warehouses",
            &other.token,
            json!({"name": "Sneaky", "code": "SNK", "organization_id": threepl.organization_id}),
        )
        .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);

    let lax = create_warehouse(&app, &threepl, "LAX").await;
    let listed = app.get("/api/v1/warehouses?limit=1", &threepl.token).await;
    assert_eq!(listed.body["data"][0]["id"], lax.as_str(), "newest first");
    let cursor = listed.body["next_cursor"].as_str().unwrap();
    let next = app.get(&format!("/api/v1/warehouses?limit=1&cursor={cursor}"), &threepl.token).await;
    assert_eq!(next.body["data"][0]["code"], "EWR");
    assert_eq!(next.body["next_cursor"], Value::Null);
    let theirs = app.get("/api/v1/warehouses", &other.token).await;
    assert_eq!(theirs.body["data"].as_array().unwrap().len(), 1, "only their own: {}", theirs.text);
}

#[tokio::test]
async fn a_brand_admin_or_the_admin_of_its_3pl_sets_the_allocation_order() {
    let app = TestApp::spawn().await;
    let shop = shop(&app, "acme").await;
    let path = format!("/api/v1/brands/{}/warehouses", shop.brand_id);

    // The 3PL set EWR then LAX; the merchant now sees both warehouses.
    let listed = app.get(&path, &shop.owner.token).await;
    assert_eq!(listed.status, StatusCode::OK);
    let codes: Vec<&str> =
        listed.body["data"].as_array().unwrap().iter().map(|w| w["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["EWR", "LAX"]);
    let visible = app.get("/api/v1/warehouses", &shop.owner.token).await;
    assert_eq!(visible.body["data"].as_array().unwrap().len(), 2, "{}", visible.text);

    // The brand admin reorders, adding its own warehouse.
    let own = create_warehouse(&app, &shop.owner, "HOME").await;
    let reordered = app
        .request(
            Method::PUT,
            &path,
            Some(&shop.owner.token),
            Some(&json!({"warehouses": [
                {"warehouse_id": shop.ewr, "priority": 20},
                {"warehouse_id": shop.lax, "priority": 5},
                {"warehouse_id": own, "priority": 10}
            ]})),
        )
        .await;
    assert_eq!(reordered.status, StatusCode::OK, "{}", reordered.text);
    let codes: Vec<&str> =
        reordered.body["data"].as_array().unwrap().iter().map(|w| w["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["LAX", "HOME", "EWR"]);
    let listed = app.get(&format!("/api/v1/brands/{}/warehouses", shop.brand_id), &shop.owner.token).await;
    let order: Vec<&str> =
        listed.body["data"].as_array().unwrap().iter().map(|w| w["warehouse_id"].as_str().unwrap()).collect();
    assert_eq!(order, [shop.lax.as_str(), own.as_str(), shop.ewr.as_str()]);

    // A warehouse of an unrelated organization may not serve the brand.
    let stranger = app.sign_up("ops@stranger.example", "threepl").await;
    let foreign = create_warehouse(&app, &stranger, "FOR").await;
    let refused = app
        .request(
            Method::PUT,
            &path,
            Some(&shop.owner.token),
            Some(&json!({"warehouses": [{"warehouse_id": shop.ewr, "priority": 1}, {"warehouse_id": foreign, "priority": 2}]})),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.text);
    assert_eq!(refused.body["errors"][0]["field"], "warehouses[1].warehouse_id");
    let twice = app
        .request(
            Method::PUT,
            &path,
            Some(&shop.owner.token),
            Some(&json!({"warehouses": [{"warehouse_id": shop.ewr, "priority": 1}, {"warehouse_id": shop.ewr, "priority": 2}]})),
        )
        .await;
    assert_eq!(twice.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.get(&path, &shop.owner.token).await.body, reordered.body, "refused writes changed nothing");

    // A brand member may look but not change; the unrelated 3PL sees nothing.
    let clerk = app
        .invite_new_user(
            &shop.owner,
            &format!("/api/v1/brands/{}/members", shop.brand_id),
            "clerk@acme.example",
            "brand_member",
        )
        .await
        .token;
    assert_eq!(app.get(&path, &clerk).await.status, StatusCode::OK);
    let forbidden = app.request(Method::PUT, &path, Some(&clerk), Some(&json!({"warehouses": []}))).await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    let hidden = app.request(Method::PUT, &path, Some(&stranger.token), Some(&json!({"warehouses": []}))).await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);

    // The fulfilling 3PL's admin may replace it, here with nothing.
    let emptied = app.request(Method::PUT, &path, Some(&shop.threepl.token), Some(&json!({"warehouses": []}))).await;
    assert_eq!(emptied.status, StatusCode::OK, "{}", emptied.text);
    assert_eq!(emptied.body, json!({"data": [], "next_cursor": null}));
}

/// Every endpoint of this slice that takes an id, as (method, path, body);
/// the placeholders are the victim's ids.
fn id_endpoints() -> Vec<(Method, &'static str, Option<Value>)> {
    vec![
        (Method::GET, "/api/v1/products/{product}", None),
        (Method::PATCH, "/api/v1/products/{product}", Some(json!({"title": "Pwned"}))),
        (
            Method::POST,
            "/api/v1/products/{product}/variants",
            Some(json!({"sku": "STOLEN", "title": "x", "price": {"amount": 1, "currency": "USD"}})),
        ),
        (Method::PATCH, "/api/v1/variants/{variant}", Some(json!({"title": "Pwned"}))),
        (Method::GET, "/api/v1/brands/{brand}/warehouses", None),
        (Method::PUT, "/api/v1/brands/{brand}/warehouses", Some(json!({"warehouses": []}))),
        (
            Method::POST,
            "/api/v1/inventory/adjustments",
            Some(json!({"variant_id": "{variant}", "warehouse_id": "{warehouse}", "delta": 5, "reason": "theft"})),
        ),
        (
            Method::POST,
            "/api/v1/inventory/adjustments",
            Some(
                json!({"variant_id": "{variant}", "warehouse_id": "{warehouse}", "set_on_hand": 0, "reason": "theft"}),
            ),
        ),
        (Method::GET, "/api/v1/products?brand_id={brand}", None),
        (Method::GET, "/api/v1/inventory/levels?brand_id={brand}", None),
        (Method::GET, "/api/v1/inventory/movements?brand_id={brand}", None),
        (
            Method::POST,
            "/api/v1/products",
            Some(json!({"brand_id": "{brand}", "title": "Planted", "status": "active",
                        "variants": [{"sku": "PLANT", "title": "x", "price": {"amount": 1, "currency": "USD"}}]})),
        ),
    ]
}

#[tokio::test]
async fn another_tenants_catalog_and_stock_answer_404_and_stay_unchanged() {
    let app = TestApp::spawn().await;
    let victim = shop(&app, "victim").await;
    let product = create_product(&app, &victim.owner.token, &victim.brand_id, "Tent", &["TENT-1"]).await;
    let product_id = product["id"].as_str().unwrap();
    let variant_id = product["variants"][0]["id"].as_str().unwrap();
    let stocked = app
        .post(
            "/api/v1/inventory/adjustments",
            &victim.threepl.token,
            json!({"variant_id": variant_id, "warehouse_id": victim.ewr, "delta": 7, "reason": "count"}),
        )
        .await;
    assert_eq!(stocked.status, StatusCode::CREATED, "{}", stocked.text);
    let fill = |text: &str| {
        text.replace("{product}", product_id)
            .replace("{variant}", variant_id)
            .replace("{brand}", &victim.brand_id)
            .replace("{warehouse}", &victim.ewr)
    };

    // Intruders: an admin of another merchant, and of a 3PL that does not
    // fulfil for the victim (adjusting in its own warehouse).
    let merchant = app.sign_up("admin@intruder.example", "merchant").await;
    let threepl = app.sign_up("admin@other3pl.example", "threepl").await;
    let own_warehouse = create_warehouse(&app, &threepl, "MINE").await;
    for intruder in [&merchant, &threepl] {
        for (method, path, body) in id_endpoints() {
            let path = fill(path);
            let body = body.map(|b| serde_json::from_str::<Value>(&fill(&b.to_string())).unwrap());
            let response = app.request(method.clone(), &path, Some(&intruder.token), body.as_ref()).await;
            assert_eq!(response.status, StatusCode::NOT_FOUND, "{method} {path}: {}", response.text);
            assert_eq!(response.code(), "not_found", "{method} {path}");
        }
        let in_own_warehouse = app
            .post(
                "/api/v1/inventory/adjustments",
                &intruder.token,
                json!({"variant_id": variant_id, "warehouse_id": own_warehouse, "delta": 5, "reason": "theft"}),
            )
            .await;
        assert_eq!(in_own_warehouse.status, StatusCode::NOT_FOUND);
        for list in
            ["/api/v1/products", "/api/v1/inventory/levels", "/api/v1/inventory/movements", "/api/v1/warehouses"]
        {
            let listed = app.get(list, &intruder.token).await;
            assert_eq!(listed.status, StatusCode::OK, "{list}");
            for secret in [product_id, variant_id, &victim.ewr] {
                assert!(!listed.text.contains(secret), "{list} leaks {secret}");
            }
        }
    }

    // Nothing changed.
    let after = app.get(&format!("/api/v1/products/{product_id}"), &victim.owner.token).await;
    assert_eq!(after.body, product);
    let warehouses = app.get(&format!("/api/v1/brands/{}/warehouses", victim.brand_id), &victim.owner.token).await;
    assert_eq!(warehouses.body["data"].as_array().unwrap().len(), 2);
    let levels = app.get(&format!("/api/v1/inventory/levels?variant_id={variant_id}"), &victim.owner.token).await;
    assert_eq!(levels.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(levels.body["data"][0]["on_hand"], 7);
    let movements = app.get(&format!("/api/v1/inventory/movements?variant_id={variant_id}"), &victim.owner.token).await;
    assert_eq!(movements.body["data"].as_array().unwrap().len(), 1);
    let products = app.get(&format!("/api/v1/products?brand_id={}", victim.brand_id), &victim.owner.token).await;
    assert_eq!(titles(&products.body), ["Tent"]);
}

#[tokio::test]
async fn bad_bodies_on_catalog_and_inventory_endpoints_answer_4xx_problems() {
    let app = TestApp::spawn().await;
    let shop = shop(&app, "acme").await;
    let product = create_product(&app, &shop.owner.token, &shop.brand_id, "Tent", &["TENT-1"]).await;
    let product_id = product["id"].as_str().unwrap();
    let variant_id = product["variants"][0]["id"].as_str().unwrap();
    let endpoints = [
        (Method::POST, "/api/v1/products".to_owned()),
        (Method::PATCH, format!("/api/v1/products/{product_id}")),
        (Method::POST, format!("/api/v1/products/{product_id}/variants")),
        (Method::PATCH, format!("/api/v1/variants/{variant_id}")),
        (Method::POST, "/api/v1/warehouses".to_owned()),
        (Method::PUT, format!("/api/v1/brands/{}/warehouses", shop.brand_id)),
        (Method::POST, "/api/v1/inventory/adjustments".to_owned()),
    ];
    let wrong_types = json!({"brand_id": 7, "title": 5, "description": [], "status": 1, "available_at": "soon",
                             "early_access_emails": "x", "variants": {}, "sku": 3, "options": [], "price": "free",
                             "name": false, "code": 9, "organization_id": true, "warehouses": "all",
                             "variant_id": 1, "warehouse_id": [], "delta": "many", "set_on_hand": "x",
                             "reason": 4, "reference": {}});
    let bodies: [(&str, Vec<u8>, Option<StatusCode>); 4] = [
        ("malformed JSON", b"{\"title\": ".to_vec(), Some(StatusCode::BAD_REQUEST)),
        ("an array", b"[1, 2, 3]".to_vec(), None),
        ("wrong types", wrong_types.to_string().into_bytes(), Some(StatusCode::UNPROCESSABLE_ENTITY)),
        ("not UTF-8", b"\xff\xfe".to_vec(), None),
    ];
    for (method, path) in &endpoints {
        for (what, body, expected) in &bodies {
            let response = app
                .send(
                    app.client
                        .request(method.clone(), app.url(path))
                        .bearer_auth(&shop.owner.token)
                        .header("content-type", "application/json")
                        .body(body.clone()),
                )
                .await;
            assert!(
                response.status.is_client_error(),
                "{what} to {method} {path}: {} {}",
                response.status,
                response.text
            );
            assert_eq!(response.header("content-type"), Some("application/problem+json"), "{what} to {method} {path}");
            if let Some(expected) = expected {
                assert_eq!(response.status, *expected, "{what} to {method} {path}: {}", response.text);
            }
        }
    }
    let after = app.get(&format!("/api/v1/products/{product_id}"), &shop.owner.token).await;
    assert_eq!(after.body, product);
}
