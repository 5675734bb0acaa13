//! Storefront checkout: allocation, holds, insufficient stock, idempotency,
//! the customer's token, and the concurrency guarantees (no overselling,
//! gapless numbers).

use std::collections::HashSet;

use consign_testkit::{Sku, TestApp, checkout_body};
use consign_web::WebConfig;
use consign_web::auth::rate_limit::RateLimits;
use reqwest::{Method, StatusCode};

#[tokio::test]
async fn checkout_holds_stock_by_warehouse_priority_and_splits_a_line() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let shop = app.stocked_brand(&owner, "acme", 2, &[Sku { sku: "TENT", price: 19900, stock: &[3, 5] }]).await;

    let placed = app.checkout(&shop.slug, &[("TENT", 4)], "Casey@Example.com").await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.text);
    let order = &placed.body["order"];
    assert_eq!(order["status"], "open");
    assert_eq!(order["payment_status"], "unpaid");
    assert_eq!(order["fulfillment_status"], "unfulfilled");
    assert_eq!(order["number"], "#1001");
    assert_eq!(order["items"][0]["unit_price"]["amount"], 19900);
    assert_eq!(order["total"]["amount"], 4 * 19900);
    assert_eq!(order["customer"]["email"], "casey@example.com");
    assert!(order["reservation_expires_at"].is_string());
    assert_eq!(placed.body["payment"]["provider"], "manual");
    assert!(placed.body["order_access_token"].as_str().unwrap().starts_with("cot_"));

    // The first warehouse gives all it has, the second the rest.
    let tent = &shop.variants["TENT"];
    assert_eq!(app.stock(&owner.token, tent, &shop.warehouses[0]).await, (3, 3));
    assert_eq!(app.stock(&owner.token, tent, &shop.warehouses[1]).await, (5, 1));
    app.assert_stock_invariants().await;
}

#[tokio::test]
async fn insufficient_stock_names_every_short_sku_and_holds_nothing() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let shop = app
        .stocked_brand(
            &owner,
            "acme",
            1,
            &[
                Sku { sku: "TENT", price: 100, stock: &[1] },
                Sku { sku: "STOVE", price: 100, stock: &[0] },
                Sku { sku: "MUG", price: 100, stock: &[9] },
            ],
        )
        .await;
    let refused = app.checkout(&shop.slug, &[("TENT", 2), ("STOVE", 1), ("MUG", 1)], "a@example.com").await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert_eq!(refused.code(), "insufficient_stock");
    assert!(refused.body["detail"].as_str().unwrap().contains("TENT"));
    assert!(refused.body["detail"].as_str().unwrap().contains("STOVE"));
    assert!(!refused.body["detail"].as_str().unwrap().contains("MUG"));
    assert_eq!(app.stock(&owner.token, &shop.variants["MUG"], &shop.warehouses[0]).await, (9, 0));
    let orders = app.get("/api/v1/orders", &owner.token).await;
    assert_eq!(orders.body["data"].as_array().unwrap().len(), 0);

    // The number it would have taken is still free.
    let placed = app.checkout(&shop.slug, &[("MUG", 1)], "a@example.com").await;
    assert_eq!(placed.body["order"]["number"], "#1001");
}

#[tokio::test]
async fn unknown_skus_bad_addresses_and_unknown_brands_are_refused() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let shop = app.stocked_brand(&owner, "acme", 1, &[Sku { sku: "TENT", price: 100, stock: &[5] }]).await;
    let unknown = app.checkout(&shop.slug, &[("NOPE", 1)], "a@example.com").await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(unknown.body["errors"][0]["field"], "items[0].sku");

    let mut body = checkout_body(&[("TENT", 1)], "a@example.com");
    body["shipping_address"]["country"] = "United States".into();
    body["items"][0]["quantity"] = 0.into();
    let invalid = app.post_anonymous(&format!("/api/v1/storefront/{}/checkout", shop.slug), body).await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> =
        invalid.body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert!(fields.contains(&"shipping_address.country"), "{fields:?}");
    assert!(fields.contains(&"items[0].quantity"), "{fields:?}");

    let nowhere = app.checkout("no-such-brand", &[("TENT", 1)], "a@example.com").await;
    assert_eq!(nowhere.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_retried_checkout_with_the_same_key_places_one_order() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let shop = app.stocked_brand(&owner, "acme", 1, &[Sku { sku: "TENT", price: 100, stock: &[5] }]).await;
    let send = || {
        app.send(
            app.client
                .post(app.url(&format!("/api/v1/storefront/{}/checkout", shop.slug)))
                .header("idempotency-key", "checkout-123")
                .json(&checkout_body(&[("TENT", 2)], "a@example.com")),
        )
    };
    let first = send().await;
    let second = send().await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(second.status, StatusCode::CREATED);
    assert_eq!(second.header("idempotent-replayed"), Some("true"));
    assert_eq!(first.body["order"]["id"], second.body["order"]["id"]);
    assert_eq!(app.stock(&owner.token, &shop.variants["TENT"], &shop.warehouses[0]).await, (5, 2));
}

#[tokio::test]
async fn the_order_access_token_reads_its_own_order_and_nothing_else() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let shop = app.stocked_brand(&owner, "acme", 1, &[Sku { sku: "TENT", price: 100, stock: &[5] }]).await;
    let mine = app.checkout(&shop.slug, &[("TENT", 1)], "me@example.com").await;
    let theirs = app.checkout(&shop.slug, &[("TENT", 1)], "them@example.com").await;
    let token = mine.body["order_access_token"].as_str().unwrap();
    let my_id = mine.body["order"]["id"].as_str().unwrap();
    let their_id = theirs.body["order"]["id"].as_str().unwrap();

    let own = app.request(Method::GET, &format!("/api/v1/storefront/orders/{my_id}?token={token}"), None, None).await;
    assert_eq!(own.status, StatusCode::OK);
    assert_eq!(own.body["id"], my_id);
    assert_eq!(app.get(&format!("/api/v1/orders/{my_id}"), token).await.status, StatusCode::OK);
    assert_eq!(app.get(&format!("/api/v1/storefront/orders/{my_id}"), token).await.status, StatusCode::OK);

    let other =
        app.request(Method::GET, &format!("/api/v1/storefront/orders/{their_id}?token={token}"), None, None).await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("/api/v1/orders/{their_id}"), token).await.status, StatusCode::NOT_FOUND);
    // Staff routes refuse the token outright, even on its own order.
    assert_eq!(app.get("/api/v1/orders", token).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.get("/api/v1/brands", token).await.status, StatusCode::FORBIDDEN);
    let cancel =
        app.post(&format!("/api/v1/orders/{my_id}/cancel"), token, serde_json::json!({"reason": "mine"})).await;
    assert_eq!(cancel.status, StatusCode::FORBIDDEN, "a customer cannot act as staff");
    let pay = app
        .post(
            &format!("/api/v1/orders/{my_id}/payments"),
            token,
            serde_json::json!({"amount": 100, "method": "manual"}),
        )
        .await;
    assert_eq!(pay.status, StatusCode::FORBIDDEN);
    let wrong =
        app.request(Method::GET, &format!("/api/v1/storefront/orders/{my_id}?token=cot_nope"), None, None).await;
    assert_eq!(wrong.status, StatusCode::NOT_FOUND);
}

/// These tests are about concurrency, not abuse: hundreds of checkouts
/// from one address (and one email) are what they need.
fn without_checkout_limits() -> WebConfig {
    WebConfig { rate_limits: RateLimits::unlimited(), ..WebConfig::default() }
}

#[tokio::test]
async fn two_hundred_concurrent_checkouts_for_ten_units_sell_exactly_ten() {
    let app = TestApp::spawn_with(without_checkout_limits()).await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    // Ten units across two warehouses, so allocation must also split.
    let shop = app.stocked_brand(&owner, "acme", 2, &[Sku { sku: "DROP", price: 5000, stock: &[6, 4] }]).await;
    let emails: Vec<String> = (0..200).map(|i| format!("buyer{i}@example.com")).collect();
    let checkouts = emails.iter().map(|email| app.checkout(&shop.slug, &[("DROP", 1)], email));
    let responses = futures_util::future::join_all(checkouts).await;
    let created: Vec<_> = responses.iter().filter(|r| r.status == StatusCode::CREATED).collect();
    let refused =
        responses.iter().filter(|r| r.status == StatusCode::CONFLICT && r.code() == "insufficient_stock").count();
    assert_eq!(created.len(), 10, "exactly the stock is sold");
    assert_eq!(refused, 190);
    let numbers: HashSet<String> =
        created.iter().map(|r| r.body["order"]["number"].as_str().unwrap().to_owned()).collect();
    let expected: HashSet<String> = (1001..=1010).map(|n| format!("#{n}")).collect();
    assert_eq!(numbers, expected, "numbers are gapless and unique");
    let drop = &shop.variants["DROP"];
    assert_eq!(app.stock(&owner.token, drop, &shop.warehouses[0]).await, (6, 6));
    assert_eq!(app.stock(&owner.token, drop, &shop.warehouses[1]).await, (4, 4));
    app.assert_stock_invariants().await;
}

#[tokio::test]
async fn order_numbers_stay_gapless_under_a_hundred_concurrent_checkouts() {
    let app = TestApp::spawn_with(without_checkout_limits()).await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let shop = app
        .stocked_brand(
            &owner,
            "acme",
            2,
            &[Sku { sku: "A", price: 100, stock: &[500, 500] }, Sku { sku: "B", price: 250, stock: &[0, 500] }],
        )
        .await;
    let checkouts = (0..100).map(|i| {
        let lines: &[(&str, i64)] = if i % 2 == 0 { &[("A", 2), ("B", 1)] } else { &[("B", 3)] };
        app.checkout(&shop.slug, lines, "many@example.com")
    });
    let responses = futures_util::future::join_all(checkouts).await;
    let mut numbers: Vec<i64> = responses
        .iter()
        .map(|r| {
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
            r.body["order"]["number"].as_str().unwrap()[1..].parse().unwrap()
        })
        .collect();
    numbers.sort();
    assert_eq!(numbers, (1001..=1100).collect::<Vec<_>>());
    app.assert_stock_invariants().await;
}

#[tokio::test]
async fn a_scheduled_drop_sells_only_to_early_access_customers_before_its_time() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let shop = app.stocked_brand(&owner, "acme", 1, &[Sku { sku: "TENT", price: 100, stock: &[5] }]).await;
    let products = app.get(&format!("/api/v1/products?brand_id={}", shop.brand_id), &owner.token).await;
    let product_id = products.body["data"][0]["id"].as_str().unwrap();
    let scheduled = app
        .request(
            Method::PATCH,
            &format!("/api/v1/products/{product_id}"),
            Some(&owner.token),
            Some(&serde_json::json!({"available_at": "2099-01-01T00:00:00Z", "early_access_emails": ["vip@example.com"]})),
        )
        .await;
    assert_eq!(scheduled.status, StatusCode::OK, "{}", scheduled.text);

    let early = app.checkout(&shop.slug, &[("TENT", 1)], "someone@example.com").await;
    assert_eq!(early.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(early.body["errors"][0]["message"].as_str().unwrap().contains("not on sale yet"));
    let vip = app.checkout(&shop.slug, &[("TENT", 1)], "VIP@example.com").await;
    assert_eq!(vip.status, StatusCode::CREATED, "{}", vip.text);

    let catalog = app.request(Method::GET, &format!("/api/v1/storefront/{}/products", shop.slug), None, None).await;
    assert_eq!(catalog.body["data"][0]["on_sale"], false);
    assert_eq!(catalog.body["data"][0]["variants"][0]["available"], 4);

    let archived = app
        .request(
            Method::PATCH,
            &format!("/api/v1/products/{product_id}"),
            Some(&owner.token),
            Some(&serde_json::json!({"status": "archived"})),
        )
        .await;
    assert_eq!(archived.status, StatusCode::OK);
    let gone = app.checkout(&shop.slug, &[("TENT", 1)], "VIP@example.com").await;
    assert_eq!(gone.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(gone.body["errors"][0]["message"].as_str().unwrap().contains("not for sale"));
}

/// A counter from `/metrics`.
async fn metric(app: &TestApp, name: &str) -> u64 {
    let metrics = app.request(Method::GET, "/metrics", None, None).await;
    assert_eq!(metrics.status, StatusCode::OK);
    let line = metrics.text.lines().find(|line| line.split_whitespace().next() == Some(name));
    line.and_then(|line| line.split_whitespace().nth(1)).map_or(0, |value| value.parse().unwrap())
}

/// Group commit: concurrent checkouts share commits, and each is answered
/// only once its order is durable, so every answered order reads back.
#[tokio::test]
async fn concurrent_checkouts_share_commits_and_each_reads_back_once_answered() {
    let app = TestApp::spawn_with(without_checkout_limits()).await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let shop = app.stocked_brand(&owner, "acme", 1, &[Sku { sku: "TEE", price: 900, stock: &[1000] }]).await;
    let commits_before = metric(&app, "db_commits_total").await;
    let transactions_before = metric(&app, "db_transactions_committed_total").await;
    let emails: Vec<String> = (0..64).map(|i| format!("buyer{i}@example.com")).collect();
    let responses =
        futures_util::future::join_all(emails.iter().map(|email| app.checkout(&shop.slug, &[("TEE", 1)], email))).await;
    for response in &responses {
        assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
        let id = response.body["order"]["id"].as_str().unwrap();
        let order = app.get(&format!("/api/v1/orders/{id}"), &owner.token).await;
        assert_eq!(order.status, StatusCode::OK, "an answered checkout's order is committed");
    }
    let commits = metric(&app, "db_commits_total").await - commits_before;
    let transactions = metric(&app, "db_transactions_committed_total").await - transactions_before;
    assert!(transactions >= 64, "every checkout committed a transaction ({transactions})");
    assert!(commits < transactions, "{transactions} transactions took {commits} commits: none were shared");
    app.assert_stock_invariants().await;
}
