//! Fulfillment: shipments take quantities of fulfillment-order items, never
//! more than remains, consume stock, and move the order along.

use consign_testkit::pages::PageClient;
use consign_testkit::{Sku, TestApp};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn partial_and_split_shipments_consume_stock_and_move_the_order_to_delivered() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let shop = app.stocked_brand(&owner, "acme", 2, &[Sku { sku: "TENT", price: 10000, stock: &[2, 5] }]).await;
    let placed = app.checkout(&shop.slug, &[("TENT", 4)], "casey@example.com").await;
    let order = placed.body["order"].clone();
    let order_id = order["id"].as_str().unwrap();
    let item_id = order["items"][0]["id"].as_str().unwrap();
    app.post(
        &format!("/api/v1/orders/{order_id}/payments"),
        &owner.token,
        json!({"amount": 40000, "method": "manual"}),
    )
    .await;
    app.run_jobs().await;

    let fulfillment = app.get(&format!("/api/v1/orders/{order_id}/fulfillment-orders"), &owner.token).await;
    let fos = fulfillment.body["data"].as_array().unwrap().clone();
    assert_eq!(fos.len(), 2, "two warehouses hold the stock: {}", fulfillment.text);
    let fo_for = |warehouse: &str| -> Value { fos.iter().find(|f| f["warehouse_id"] == warehouse).unwrap().clone() };
    let first = fo_for(&shop.warehouses[0]);
    let second = fo_for(&shop.warehouses[1]);
    assert_eq!(first["items"][0]["quantity"], 2);
    assert_eq!(second["items"][0]["quantity"], 2);

    let ship = |fo: &Value, quantity: i64, tracking: &str| {
        let path = format!("/api/v1/fulfillment-orders/{}/shipments", fo["id"].as_str().unwrap());
        let body = json!({"items": [{"order_item_id": item_id, "quantity": quantity}], "carrier": "UPS", "tracking_number": tracking});
        let token = owner.token.clone();
        let app = &app;
        async move { app.post(&path, &token, body).await }
    };
    let too_many = ship(&first, 3, "1Z0").await;
    assert_eq!(too_many.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", too_many.text);

    let parcel = ship(&first, 1, "1Z999AA10123456784").await;
    assert_eq!(parcel.status, StatusCode::CREATED, "{}", parcel.text);
    assert_eq!(parcel.body["carrier"], "ups");
    assert_eq!(parcel.body["tracking_url"], "https://www.ups.com/track?tracknum=1Z999AA10123456784");
    assert_eq!(parcel.body["items"][0]["quantity"], 1);
    let tent = &shop.variants["TENT"];
    assert_eq!(
        app.stock(&owner.token, tent, &shop.warehouses[0]).await,
        (1, 1),
        "shipping consumes on_hand and reserved"
    );
    let partially = app.get(&format!("/api/v1/orders/{order_id}"), &owner.token).await;
    assert_eq!(partially.body["fulfillment_status"], "partially_shipped");

    let rest_first = ship(&first, 1, "1Z2").await;
    let rest_second = ship(&second, 2, "1Z3").await;
    assert_eq!(rest_first.status, StatusCode::CREATED);
    assert_eq!(rest_second.status, StatusCode::CREATED);
    assert_eq!(ship(&second, 1, "1Z4").await.status, StatusCode::CONFLICT, "a shipped fulfillment order takes no more");
    let shipped = app.get(&format!("/api/v1/orders/{order_id}"), &owner.token).await;
    assert_eq!(shipped.body["fulfillment_status"], "shipped");
    assert_eq!(app.stock(&owner.token, tent, &shop.warehouses[1]).await, (3, 0));
    app.assert_stock_invariants().await;
    let cancel = app.post(&format!("/api/v1/orders/{order_id}/cancel"), &owner.token, json!({"reason": "late"})).await;
    assert_eq!(cancel.code(), "invalid_transition");
    let edit = app
        .post(
            &format!("/api/v1/orders/{order_id}/items"),
            &owner.token,
            json!({"items": [{"sku": "TENT", "quantity": 1}]}),
        )
        .await;
    assert_eq!(edit.code(), "invalid_transition");

    let shipments = app.get(&format!("/api/v1/orders/{order_id}/shipments"), &owner.token).await;
    let ids: Vec<String> =
        shipments.body["data"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), 3);
    let backwards =
        app.post(&format!("/api/v1/shipments/{}/status", ids[0]), &owner.token, json!({"status": "delivered"})).await;
    assert_eq!(backwards.code(), "invalid_transition", "ready cannot jump to delivered");
    for shipment in &ids {
        let moved = app
            .post(&format!("/api/v1/shipments/{shipment}/status"), &owner.token, json!({"status": "in_transit"}))
            .await;
        assert_eq!(moved.status, StatusCode::OK, "{}", moved.text);
    }
    for (index, shipment) in ids.iter().enumerate() {
        app.post(&format!("/api/v1/shipments/{shipment}/status"), &owner.token, json!({"status": "delivered"})).await;
        let now = app.get(&format!("/api/v1/orders/{order_id}"), &owner.token).await;
        let expected = if index + 1 == ids.len() { "delivered" } else { "shipped" };
        assert_eq!(now.body["fulfillment_status"], expected);
    }
    let done = app.get(&format!("/api/v1/orders/{order_id}"), &owner.token).await;
    assert_eq!(done.body["status"], "completed");

    let timeline = app.get(&format!("/api/v1/orders/{order_id}/timeline"), &owner.token).await;
    let types: Vec<&str> =
        timeline.body["data"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    for expected in [
        "order.created",
        "order.paid",
        "shipment.created",
        "order.partially_shipped",
        "order.shipped",
        "shipment.delivered",
        "order.delivered",
        "order.completed",
    ] {
        assert!(types.contains(&expected), "{expected} missing from {types:?}");
    }
    let created_at: Vec<&str> =
        timeline.body["data"].as_array().unwrap().iter().map(|e| e["created_at"].as_str().unwrap()).collect();
    assert!(created_at.windows(2).all(|w| w[0] <= w[1]), "oldest first");
}

#[tokio::test]
async fn a_3pl_ships_orders_of_the_brand_it_fulfils_for() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let threepl = app.sign_up("ops@northwind.example", "threepl").await;
    let shop = app.stocked_brand(&owner, "acme", 1, &[Sku { sku: "MUG", price: 1500, stock: &[10] }]).await;
    app.post(
        &format!("/api/v1/brands/{}/fulfillers", shop.brand_id),
        &owner.token,
        json!({"organization_id": threepl.organization_id}),
    )
    .await;
    let placed = app.checkout(&shop.slug, &[("MUG", 2)], "casey@example.com").await;
    let order_id = placed.body["order"]["id"].as_str().unwrap();
    let item_id = placed.body["order"]["items"][0]["id"].as_str().unwrap();
    app.post(&format!("/api/v1/orders/{order_id}/payments"), &owner.token, json!({"amount": 3000, "method": "manual"}))
        .await;
    app.run_jobs().await;

    let listed = app.get("/api/v1/orders?payment_status=paid", &threepl.token).await;
    assert_eq!(listed.body["data"][0]["id"], order_id);
    let fos = app.get(&format!("/api/v1/orders/{order_id}/fulfillment-orders"), &threepl.token).await;
    let fo_id = fos.body["data"][0]["id"].as_str().unwrap();
    let shipped = app
        .post(&format!("/api/v1/fulfillment-orders/{fo_id}/shipments"), &threepl.token, json!({"items": [{"order_item_id": item_id, "quantity": 2}], "carrier": "dhl", "tracking_number": "JD0001"}))
        .await;
    assert_eq!(shipped.status, StatusCode::CREATED, "{}", shipped.text);
    assert!(shipped.body["tracking_url"].as_str().unwrap().contains("JD0001"));
}

#[tokio::test]
async fn shipment_fields_out_of_their_limits_are_422s_naming_each_field_in_the_words_the_pages_use() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let shop = app.stocked_brand(&owner, "acme", 1, &[Sku { sku: "TENT", price: 10000, stock: &[5] }]).await;
    let placed = app.checkout(&shop.slug, &[("TENT", 2)], "casey@example.com").await;
    let order_id = placed.body["order"]["id"].as_str().unwrap().to_owned();
    let item_id = placed.body["order"]["items"][0]["id"].as_str().unwrap().to_owned();
    let payment = json!({"amount": 20000, "method": "manual"});
    app.post(&format!("/api/v1/orders/{order_id}/payments"), &owner.token, payment).await;
    app.run_jobs().await;
    let fulfillment = app.get(&format!("/api/v1/orders/{order_id}/fulfillment-orders"), &owner.token).await;
    let fo_id = fulfillment.body["data"][0]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/fulfillment-orders/{fo_id}/shipments");
    let parcel = |carrier: String, tracking: String| json!({"items": [{"order_item_id": item_id, "quantity": 1}], "carrier": carrier, "tracking_number": tracking});
    let fields = |errors: &Value| -> Vec<(String, String)> {
        let errors = errors.as_array().cloned().unwrap_or_default();
        errors
            .iter()
            .map(|e| (e["field"].as_str().unwrap().to_owned(), e["message"].as_str().unwrap().to_owned()))
            .collect()
    };

    // A too-long carrier in the JSON is a 422 naming it, not a 400 or a 500.
    let long = app.post(&path, &owner.token, parcel("x".repeat(51), "1Z1".into())).await;
    assert_eq!(long.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", long.text);
    assert_eq!(long.code(), "validation_failed");
    assert_eq!(fields(&long.body["errors"]), [("carrier".to_owned(), "must be 1 to 50 characters".to_owned())]);
    // Every invalid field is listed, a blank one too.
    let both = app.post(&path, &owner.token, parcel("   ".into(), "9".repeat(101))).await;
    assert_eq!(both.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", both.text);
    let mut listed = fields(&both.body["errors"]);
    listed.sort();
    assert_eq!(
        listed,
        [
            ("carrier".to_owned(), "must be 1 to 50 characters".to_owned()),
            ("tracking_number".to_owned(), "must be 1 to 100 characters".to_owned()),
        ]
    );
    // The limit counts characters, after trimming: 50 two-byte ones ship.
    let longest = app.post(&path, &owner.token, parcel(format!("  {}  ", "É".repeat(50)), " 1Z2 ".into())).await;
    assert_eq!(longest.status, StatusCode::CREATED, "{}", longest.text);
    assert_eq!(longest.body["carrier"], "é".repeat(50));
    assert_eq!(longest.body["tracking_number"], "1Z2");

    // The order page refuses the same carrier in the same words.
    let mut client = PageClient::signed_in(&app, &owner.email, &owner.password).await;
    let quantity = format!("qty_{item_id}");
    let carrier = "x".repeat(51);
    let refused = client
        .post_and_follow(
            &format!("/admin/orders/{order_id}/shipments"),
            &[("fulfillment_order_id", &fo_id), (&quantity, "1"), ("carrier", &carrier), ("tracking_number", "1Z3")],
        )
        .await;
    assert!(refused.text.contains("carrier: must be 1 to 50 characters"), "{}", refused.text);
}
