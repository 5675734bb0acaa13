//! Inventory: adjustments by delta and by count, never below zero, a ledger
//! that sums to on_hand even under concurrent writers, levels and movements
//! as the brand's 3PL sees them, and the storefront's helpers.

use consign_testkit::{TestApp, TestResponse};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::catalog::{create_product, create_warehouse, shop};

async fn adjust(app: &TestApp, token: &str, body: Value) -> TestResponse {
    app.post("/api/v1/inventory/adjustments", token, body).await
}

/// Every movement of a variant, following cursors with small pages.
async fn all_movements(app: &TestApp, token: &str, variant_id: &str) -> Vec<Value> {
    let mut movements = Vec::new();
    let mut path = format!("/api/v1/inventory/movements?variant_id={variant_id}&limit=3");
    loop {
        let page = app.get(&path, token).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        movements.extend(page.body["data"].as_array().unwrap().iter().cloned());
        match page.body["next_cursor"].as_str() {
            Some(cursor) => {
                path = format!("/api/v1/inventory/movements?variant_id={variant_id}&limit=3&cursor={cursor}")
            }
            None => return movements,
        }
    }
}

async fn on_hand(app: &TestApp, token: &str, variant_id: &str, warehouse_id: &str) -> i64 {
    let levels =
        app.get(&format!("/api/v1/inventory/levels?variant_id={variant_id}&warehouse_id={warehouse_id}"), token).await;
    assert_eq!(levels.status, StatusCode::OK, "{}", levels.text);
    levels.body["data"][0]["on_hand"].as_i64().unwrap()
}

#[tokio::test]
async fn adjustments_by_delta_and_by_count_move_on_hand_and_write_the_ledger() {
    let app = TestApp::spawn().await;
    let shop = shop(&app, "acme").await;
    let product = create_product(&app, &shop.owner.token, &shop.brand_id, "Tent", &["TENT-1"]).await;
    let variant_id = product["variants"][0]["id"].as_str().unwrap();
    let token = &shop.owner.token;

    let received = adjust(
        &app,
        token,
        json!({"variant_id": variant_id, "warehouse_id": shop.ewr, "delta": 10, "reason": "received", "reference": "PO-17"}),
    )
    .await;
    assert_eq!(received.status, StatusCode::CREATED, "{}", received.text);
    let level = &received.body;
    assert_eq!(level["variant_id"], variant_id);
    assert_eq!(level["sku"], "TENT-1");
    assert_eq!(level["warehouse_id"], shop.ewr.as_str());
    assert_eq!((level["on_hand"].as_i64(), level["reserved"].as_i64()), (Some(10), Some(0)));
    assert_eq!((level["unsellable"].as_i64(), level["safety_stock"].as_i64()), (Some(0), Some(0)));
    assert_eq!((level["incoming"].as_i64(), level["available"].as_i64()), (Some(0), Some(10)));

    let damaged = adjust(
        &app,
        token,
        json!({"variant_id": variant_id, "warehouse_id": shop.ewr, "delta": -3, "reason": "damaged"}),
    )
    .await;
    assert_eq!(damaged.body["on_hand"], 7);
    let counted = adjust(
        &app,
        token,
        json!({"variant_id": variant_id, "warehouse_id": shop.ewr, "set_on_hand": 20, "reason": "cycle count"}),
    )
    .await;
    assert_eq!(counted.status, StatusCode::CREATED, "{}", counted.text);
    assert_eq!(counted.body["on_hand"], 20);

    let movements = all_movements(&app, token, variant_id).await;
    let deltas: Vec<i64> = movements.iter().map(|m| m["delta"].as_i64().unwrap()).collect();
    assert_eq!(deltas, [13, -3, 10], "newest first; a count records the difference");
    let afters: Vec<i64> = movements.iter().map(|m| m["on_hand_after"].as_i64().unwrap()).collect();
    assert_eq!(afters, [20, 7, 10]);
    assert_eq!(movements[2]["reason"], "received");
    assert_eq!(movements[2]["reference"], "PO-17");
    assert_eq!(movements[2]["actor"], shop.owner.user_id.as_str());
    assert_eq!(movements[0]["reference"], Value::Null);
    assert_eq!(movements[0]["warehouse_id"], shop.ewr.as_str());
}

#[tokio::test]
async fn stock_never_goes_below_zero_and_a_refusal_writes_nothing() {
    let app = TestApp::spawn().await;
    let shop = shop(&app, "acme").await;
    let product = create_product(&app, &shop.owner.token, &shop.brand_id, "Tent", &["TENT-1"]).await;
    let variant_id = product["variants"][0]["id"].as_str().unwrap();
    let token = &shop.owner.token;

    let from_nothing =
        adjust(&app, token, json!({"variant_id": variant_id, "warehouse_id": shop.ewr, "delta": -1, "reason": "lost"}))
            .await;
    assert_eq!(from_nothing.status, StatusCode::CONFLICT, "{}", from_nothing.text);
    assert_eq!(from_nothing.code(), "insufficient_stock");
    assert_eq!(from_nothing.header("content-type"), Some("application/problem+json"));
    assert!(from_nothing.body["detail"].as_str().unwrap().contains("TENT-1"), "{}", from_nothing.text);
    let levels = app.get(&format!("/api/v1/inventory/levels?variant_id={variant_id}"), token).await;
    assert_eq!(levels.body["data"], json!([]), "a refused adjustment creates no level");

    adjust(&app, token, json!({"variant_id": variant_id, "warehouse_id": shop.ewr, "delta": 5, "reason": "received"}))
        .await;
    let too_many = adjust(
        &app,
        token,
        json!({"variant_id": variant_id, "warehouse_id": shop.ewr, "delta": -6, "reason": "picked"}),
    )
    .await;
    assert_eq!(too_many.status, StatusCode::CONFLICT);
    assert_eq!(too_many.code(), "insufficient_stock");
    assert_eq!(on_hand(&app, token, variant_id, &shop.ewr).await, 5);
    let emptied = adjust(
        &app,
        token,
        json!({"variant_id": variant_id, "warehouse_id": shop.ewr, "delta": -5, "reason": "picked"}),
    )
    .await;
    assert_eq!(emptied.status, StatusCode::CREATED);
    assert_eq!(emptied.body["on_hand"], 0);
    assert_eq!(all_movements(&app, token, variant_id).await.len(), 2);
}

#[tokio::test]
async fn adjustment_input_is_validated() {
    let app = TestApp::spawn().await;
    let shop = shop(&app, "acme").await;
    let product = create_product(&app, &shop.owner.token, &shop.brand_id, "Tent", &["TENT-1"]).await;
    let variant_id = product["variants"][0]["id"].as_str().unwrap();
    let base = json!({"variant_id": variant_id, "warehouse_id": shop.ewr, "reason": "count"});
    let cases = [
        ("both", json!({"delta": 1, "set_on_hand": 1}), "delta"),
        ("neither", json!({}), "delta"),
        ("zero", json!({"delta": 0}), "delta"),
        ("negative count", json!({"set_on_hand": -1}), "set_on_hand"),
        ("huge delta", json!({"delta": i64::MAX}), "delta"),
        ("huge count", json!({"set_on_hand": i64::MAX}), "set_on_hand"),
        ("empty reason", json!({"delta": 1, "reason": ""}), "reason"),
        ("blank reason", json!({"delta": 1, "reason": "   "}), "reason"),
        ("long reason", json!({"delta": 1, "reason": "x".repeat(201)}), "reason"),
        ("no reason", json!({"delta": 1, "reason": null}), "reason"),
    ];
    for (what, extra, field) in cases {
        let mut body = base.clone();
        for (key, value) in extra.as_object().unwrap() {
            if value.is_null() {
                body.as_object_mut().unwrap().remove(key);
            } else {
                body[key] = value.clone();
            }
        }
        let response = adjust(&app, &shop.owner.token, body).await;
        assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY, "{what}: {}", response.text);
        assert_eq!(response.code(), "validation_failed", "{what}");
        // A missing field is reported by the JSON extractor at the root,
        // with the field named in the message.
        let error = &response.body["errors"][0];
        let named = error["field"] == field || error["message"].as_str().unwrap_or_default().contains(field);
        assert!(named, "{what}: {}", response.text);
    }
    let longest_reason =
        json!({"variant_id": variant_id, "warehouse_id": shop.ewr, "delta": 1, "reason": "x".repeat(200)});
    assert_eq!(adjust(&app, &shop.owner.token, longest_reason).await.status, StatusCode::CREATED);
    let unknown_warehouse = json!({"variant_id": variant_id, "warehouse_id": "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b",
                                   "delta": 1, "reason": "count"});
    assert_eq!(adjust(&app, &shop.owner.token, unknown_warehouse).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_ledger_sums_to_on_hand_after_a_sequence_of_adjustments() {
    let app = TestApp::spawn().await;
    let shop = shop(&app, "acme").await;
    let product = create_product(&app, &shop.owner.token, &shop.brand_id, "Tent", &["TENT-1"]).await;
    let variant_id = product["variants"][0]["id"].as_str().unwrap();
    let token = &shop.threepl.token;

    let steps = [
        json!({"delta": 12}),
        json!({"delta": -4}),
        json!({"set_on_hand": 30}),
        json!({"delta": -31}), // refused
        json!({"delta": -30}),
        json!({"set_on_hand": 3}),
        json!({"delta": 9}),
        json!({"set_on_hand": 11}),
    ];
    for step in steps {
        let mut body = json!({"variant_id": variant_id, "warehouse_id": shop.lax, "reason": "sequence"});
        for (key, value) in step.as_object().unwrap() {
            body[key] = value.clone();
        }
        let response = adjust(&app, token, body).await;
        assert!(matches!(response.status, StatusCode::CREATED | StatusCode::CONFLICT), "{}", response.text);
    }
    let movements = all_movements(&app, token, variant_id).await;
    assert_eq!(movements.len(), 7, "the refused step left no movement");
    let sum: i64 = movements.iter().map(|m| m["delta"].as_i64().unwrap()).sum();
    assert_eq!(sum, 11);
    assert_eq!(on_hand(&app, token, variant_id, &shop.lax).await, sum);
    assert_eq!(movements[0]["on_hand_after"], 11);
}

#[tokio::test]
async fn twenty_concurrent_adjustments_of_one_end_at_exactly_twenty() {
    let app = TestApp::spawn().await;
    let shop = shop(&app, "acme").await;
    let product = create_product(&app, &shop.owner.token, &shop.brand_id, "Tent", &["TENT-1"]).await;
    let variant_id = product["variants"][0]["id"].as_str().unwrap();

    let requests = (0..20).map(|i| {
        let token = if i % 2 == 0 { &shop.owner.token } else { &shop.threepl.token };
        adjust(
            &app,
            token,
            json!({"variant_id": variant_id, "warehouse_id": shop.ewr, "delta": 1, "reason": format!("unit {i}")}),
        )
    });
    let responses = futures_util::future::join_all(requests).await;
    for response in &responses {
        assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
    }
    assert_eq!(on_hand(&app, &shop.owner.token, variant_id, &shop.ewr).await, 20);
    let movements = all_movements(&app, &shop.owner.token, variant_id).await;
    assert_eq!(movements.len(), 20);
    let mut afters: Vec<i64> = movements.iter().map(|m| m["on_hand_after"].as_i64().unwrap()).collect();
    afters.sort_unstable();
    assert_eq!(afters, (1..=20).collect::<Vec<i64>>(), "each adjustment saw the one before it");
}

#[tokio::test]
async fn the_3pl_fulfiller_adjusts_stock_and_reads_levels_of_the_brand_it_fulfils() {
    let app = TestApp::spawn().await;
    let shop = shop(&app, "acme").await;
    let tent = create_product(&app, &shop.owner.token, &shop.brand_id, "Tent", &["TENT-1", "TENT-2"]).await;
    let poles = create_product(&app, &shop.owner.token, &shop.brand_id, "Poles", &["POLE-1"]).await;
    let token = &shop.threepl.token;
    let mut expected = 0;
    for product in [&tent, &poles] {
        for variant in product["variants"].as_array().unwrap() {
            for warehouse in [&shop.ewr, &shop.lax] {
                let response = adjust(
                    &app,
                    token,
                    json!({"variant_id": variant["id"], "warehouse_id": warehouse, "set_on_hand": 4, "reason": "initial count"}),
                )
                .await;
                assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
                expected += 1;
            }
        }
    }

    let brand_levels = app.get(&format!("/api/v1/inventory/levels?brand_id={}", shop.brand_id), token).await;
    assert_eq!(brand_levels.status, StatusCode::OK, "{}", brand_levels.text);
    assert_eq!(brand_levels.body["data"].as_array().unwrap().len(), expected);
    let by_sku = app.get("/api/v1/inventory/levels?sku=TENT-2", token).await;
    let rows = by_sku.body["data"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r["sku"] == "TENT-2" && r["available"] == 4));
    let in_lax = app.get(&format!("/api/v1/inventory/levels?sku=TENT-2&warehouse_id={}", shop.lax), token).await;
    assert_eq!(in_lax.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(in_lax.body["data"][0]["warehouse_id"], shop.lax.as_str());

    // Pages of two cover every level exactly once.
    let mut seen = Vec::new();
    let mut path = "/api/v1/inventory/levels?limit=2".to_owned();
    loop {
        let page = app.get(&path, token).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        for row in page.body["data"].as_array().unwrap() {
            seen.push(format!("{}/{}", row["variant_id"], row["warehouse_id"]));
        }
        match page.body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/inventory/levels?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((seen.len(), unique.len()), (expected, expected));

    // The merchant sees the same stock; a warehouse serving neither its
    // brand nor its organization is not its to adjust, its own is.
    let merchant_view =
        app.get(&format!("/api/v1/inventory/levels?brand_id={}", shop.brand_id), &shop.owner.token).await;
    assert_eq!(merchant_view.body["data"].as_array().unwrap().len(), expected);
    let unlinked = create_warehouse(&app, &shop.threepl, "UNL").await;
    let tent_1 = tent["variants"][0]["id"].as_str().unwrap();
    let refused = adjust(
        &app,
        &shop.owner.token,
        json!({"variant_id": tent_1, "warehouse_id": unlinked, "delta": 1, "reason": "count"}),
    )
    .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    let by_3pl =
        adjust(&app, token, json!({"variant_id": tent_1, "warehouse_id": unlinked, "delta": 1, "reason": "count"}))
            .await;
    assert_eq!(by_3pl.status, StatusCode::CREATED, "the 3PL's own warehouse: {}", by_3pl.text);
}

#[tokio::test]
async fn the_storefront_sees_active_products_and_what_its_warehouses_can_sell() {
    let app = TestApp::spawn().await;
    let shop = shop(&app, "acme").await;
    let token = &shop.owner.token;
    let active = create_product(&app, token, &shop.brand_id, "Tent", &["TENT-1", "TENT-2"]).await;
    let draft = app
        .post("/api/v1/products", token, {
            let mut body = crate::catalog::product_body(&shop.brand_id, "Draft", &["DRAFT-1"]);
            body["status"] = json!("draft");
            body["early_access_emails"] = json!(["vip@example.com"]);
            body
        })
        .await;
    assert_eq!(draft.status, StatusCode::CREATED);
    let scheduled = app
        .post("/api/v1/products", token, {
            let mut body = crate::catalog::product_body(&shop.brand_id, "Drop", &["DROP-1"]);
            body["available_at"] = json!("2099-01-01T00:00:00Z");
            body["early_access_emails"] = json!(["vip@example.com"]);
            body
        })
        .await;
    assert_eq!(scheduled.status, StatusCode::CREATED);
    let tent_1 = active["variants"][0]["id"].as_str().unwrap();
    let tent_2 = active["variants"][1]["id"].as_str().unwrap();
    let unserved = create_warehouse(&app, &shop.threepl, "UNS").await;
    for (variant, warehouse, count) in [(tent_1, &shop.ewr, 5), (tent_1, &shop.lax, 3), (tent_1, &unserved, 100)] {
        let response = adjust(
            &app,
            &shop.threepl.token,
            json!({"variant_id": variant, "warehouse_id": warehouse, "set_on_hand": count, "reason": "count"}),
        )
        .await;
        assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
    }

    // The brand's slug, as shoppers reach it.
    let brand = app.get(&format!("/api/v1/brands/{}", shop.brand_id), token).await;
    let slug = brand.body["slug"].as_str().unwrap();
    let page = app.request(reqwest::Method::GET, &format!("/api/v1/storefront/{slug}/products"), None, None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let products = page.body["data"].as_array().unwrap();
    let titles: Vec<&str> = products.iter().map(|p| p["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["Drop", "Tent"], "active products, scheduled or not");
    assert!(!page.text.contains("vip@example.com"), "no private data");
    assert_eq!(products[0]["on_sale"], false);
    assert_eq!(products[1]["on_sale"], true);
    let tent = &products[1]["variants"];
    assert_eq!(tent.as_array().unwrap().len(), 2);
    let available =
        |id: &str| tent.as_array().unwrap().iter().find(|v| v["id"] == id).unwrap()["available"].as_i64().unwrap();
    assert_eq!(available(tent_1), 8, "EWR and LAX serve the brand; UNS does not");
    assert_eq!(available(tent_2), 0);
}
