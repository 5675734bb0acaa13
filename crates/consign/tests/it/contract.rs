//! The conventions a client written from docs/api.md relies on: every list is
//! `{data, next_cursor}` (sub-collections included) and pages with
//! `?limit=&cursor=`; codes are case-insensitive identifiers.

use consign_testkit::{Sku, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The schema of an operation's 200 answer, with a `$ref` to a component
/// followed.
fn success_schema<'a>(spec: &'a Value, operation: &'a Value) -> &'a Value {
    let schema = &operation["responses"]["200"]["content"]["application/json"]["schema"];
    match schema["$ref"].as_str().and_then(|r| r.strip_prefix("#/components/schemas/")) {
        Some(name) => &spec["components"]["schemas"][name],
        None => schema,
    }
}

#[tokio::test]
async fn no_list_in_the_openapi_document_is_a_bare_array() {
    let app = TestApp::spawn().await;
    let spec = app.request(Method::GET, "/openapi.json", None, None).await.body;
    let mut bare = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if success_schema(&spec, operation)["type"] == "array" {
                bare.push(format!("{method} {path}"));
            }
        }
    }
    // The order timeline is being reshaped separately.
    bare.retain(|operation| operation != "get /api/v1/orders/{id}/timeline" && !operation.ends_with("/members"));
    assert!(bare.is_empty(), "these answer a bare array: {bare:?}");
}

fn assert_envelope(response: &consign_testkit::TestResponse, path: &str) -> Vec<Value> {
    assert_eq!(response.status, StatusCode::OK, "{path}: {}", response.text);
    let object = response.body.as_object().unwrap_or_else(|| panic!("{path} is not an object: {}", response.text));
    assert!(object.contains_key("next_cursor"), "{path} has no next_cursor: {}", response.text);
    object["data"].as_array().unwrap_or_else(|| panic!("{path} has no data: {}", response.text)).clone()
}

/// Walks a list with `limit`, returning every page's ids.
async fn walk(app: &TestApp, token: &str, path: &str, limit: usize) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(cursor) => format!("{path}?limit={limit}&cursor={cursor}"),
            None => format!("{path}?limit={limit}"),
        };
        let page = app.get(&url, token).await;
        let rows = assert_envelope(&page, &url);
        assert!(rows.len() <= limit, "{url} answered {} rows", rows.len());
        pages.push(rows.iter().map(|row| row["id"].as_str().unwrap().to_owned()).collect());
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return pages,
        }
        assert!(pages.len() < 10, "{path} does not end");
    }
}

#[tokio::test]
async fn sub_collections_answer_the_list_envelope_and_page() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let shop = app.stocked_brand(&owner, "acme", 1, &[Sku { sku: "TENT", price: 10000, stock: &[5] }]).await;
    let placed = app.checkout(&shop.slug, &[("TENT", 2)], "casey@example.com").await;
    let order_id = placed.body["order"]["id"].as_str().unwrap().to_owned();
    let item_id = placed.body["order"]["items"][0]["id"].as_str().unwrap().to_owned();
    for amount in [5000, 15000] {
        let paid = app
            .post(
                &format!("/api/v1/orders/{order_id}/payments"),
                &owner.token,
                json!({"amount": amount, "method": "manual"}),
            )
            .await;
        assert_eq!(paid.status, StatusCode::CREATED, "{}", paid.text);
    }
    app.run_jobs().await;
    let fulfillment_orders = app.get(&format!("/api/v1/orders/{order_id}/fulfillment-orders"), &owner.token).await;
    let fulfillment_order =
        assert_envelope(&fulfillment_orders, "fulfillment-orders")[0]["id"].as_str().unwrap().to_owned();
    for tracking in ["1Z1", "1Z2"] {
        let shipped = app
            .post(
                &format!("/api/v1/fulfillment-orders/{fulfillment_order}/shipments"),
                &owner.token,
                json!({"items": [{"order_item_id": item_id, "quantity": 1}], "carrier": "ups", "tracking_number": tracking}),
            )
            .await;
        assert_eq!(shipped.status, StatusCode::CREATED, "{}", shipped.text);
    }
    for name in ["delay", "apology", "thanks"] {
        let path = format!("/api/v1/brands/{}/canned-responses", shop.brand_id);
        let created = app.post(&path, &owner.token, json!({"name": name, "body": "Hi"})).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    }

    for path in [
        format!("/api/v1/orders/{order_id}/fulfillment-orders"),
        format!("/api/v1/orders/{order_id}/shipments"),
        format!("/api/v1/orders/{order_id}/payments"),
        format!("/api/v1/orders/{order_id}/payment-attempts"),
        format!("/api/v1/orders/{order_id}/notifications"),
        format!("/api/v1/brands/{}/canned-responses", shop.brand_id),
        format!("/api/v1/brands/{}/notification-templates", shop.brand_id),
        format!("/api/v1/brands/{}/payment-providers", shop.brand_id),
        format!("/api/v1/brands/{}/warehouses", shop.brand_id),
    ] {
        assert_envelope(&app.get(&path, &owner.token).await, &path);
    }

    // Lists that grow page with a cursor, one row at a time here.
    for (path, expected) in [
        (format!("/api/v1/orders/{order_id}/shipments"), 2),
        (format!("/api/v1/orders/{order_id}/payments"), 2),
        (format!("/api/v1/brands/{}/canned-responses", shop.brand_id), 3),
    ] {
        let whole = assert_envelope(&app.get(&path, &owner.token).await, &path);
        assert_eq!(whole.len(), expected, "{path}");
        let pages = walk(&app, &owner.token, &path, 1).await;
        let walked: Vec<String> = pages.concat();
        let ids: Vec<String> = whole.iter().map(|row| row["id"].as_str().unwrap().to_owned()).collect();
        assert_eq!(walked, ids, "{path}: paging one by one gives the whole list, in order, once");
        for limit in ["0", "201", "many"] {
            let refused = app.get(&format!("{path}?limit={limit}"), &owner.token).await;
            assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{path}?limit={limit}: {}", refused.text);
        }
    }
    let canned = app.get(&format!("/api/v1/brands/{}/canned-responses", shop.brand_id), &owner.token).await;
    let names: Vec<&str> =
        canned.body["data"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["apology", "delay", "thanks"], "canned responses stay in name order");

    // The allocation order's PUT answers the same envelope as its GET.
    let linked = app
        .request(
            Method::PUT,
            &format!("/api/v1/brands/{}/warehouses", shop.brand_id),
            Some(&owner.token),
            Some(&json!({"warehouses": [{"warehouse_id": shop.warehouses[0], "priority": 1}]})),
        )
        .await;
    assert_eq!(assert_envelope(&linked, "PUT brand warehouses").len(), 1);
}

#[tokio::test]
async fn warehouse_codes_are_case_insensitive() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let created = app.post("/api/v1/warehouses", &owner.token, json!({"name": "Main", "code": "wh-main"})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.body["code"], "WH-MAIN");
    let again = app.post("/api/v1/warehouses", &owner.token, json!({"name": "Main again", "code": "WH-Main"})).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "the same code in another case: {}", again.text);
    app.post("/api/v1/warehouses", &owner.token, json!({"name": "Other", "code": "wh-other"})).await;

    let found = app.get("/api/v1/warehouses?code=Wh-mAiN", &owner.token).await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.text);
    let codes: Vec<&str> = found.body["data"].as_array().unwrap().iter().map(|w| w["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["WH-MAIN"]);

    let refused = app.post("/api/v1/warehouses", &owner.token, json!({"name": "Bad", "code": "wh main"})).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.text);
    assert_eq!(refused.body["errors"][0]["field"], "code");
}

#[tokio::test]
async fn brand_slugs_are_case_insensitive() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let created = app
        .post("/api/v1/brands", &owner.token, json!({"name": "Mixed", "slug": "Mixed-Case", "currency": "USD"}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.body["slug"], "mixed-case");
    let taken = app
        .post("/api/v1/brands", &owner.token, json!({"name": "Again", "slug": "MIXED-CASE", "currency": "USD"}))
        .await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.text);
    let storefront = app.request(Method::GET, "/api/v1/storefront/MIXED-Case/products", None, None).await;
    assert_eq!(storefront.status, StatusCode::OK, "{}", storefront.text);
}
