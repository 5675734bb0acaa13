//! Staff order endpoints: payments, cancel, expiry, edits, lists, timeline,
//! audit, and their behaviour under concurrency and across tenants.

use consign_db::orders::expiry;
use consign_domain::Timestamp;
use consign_testkit::{Sku, StockedBrand, TestApp, TestUser};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn shop(app: &TestApp) -> (TestUser, StockedBrand) {
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let shop = app
        .stocked_brand(
            &owner,
            "acme",
            2,
            &[Sku { sku: "TENT", price: 10000, stock: &[5, 5] }, Sku { sku: "MUG", price: 1500, stock: &[20, 0] }],
        )
        .await;
    (owner, shop)
}

async fn place(app: &TestApp, shop: &StockedBrand, lines: &[(&str, i64)]) -> Value {
    let placed = app.checkout(&shop.slug, lines, "casey@example.com").await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.text);
    placed.body["order"].clone()
}

fn id(order: &Value) -> &str {
    order["id"].as_str().unwrap()
}

#[tokio::test]
async fn partial_payments_add_up_to_paid_and_paid_orders_get_fulfillment_orders() {
    let app = TestApp::spawn().await;
    let (owner, shop) = shop(&app).await;
    let order = place(&app, &shop, &[("TENT", 7), ("MUG", 2)]).await;
    let total = 7 * 10000 + 2 * 1500;
    let path = format!("/api/v1/orders/{}/payments", id(&order));

    let first =
        app.post(&path, &owner.token, json!({"amount": 30000, "method": "manual", "reference": "wire 1"})).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    assert_eq!(first.body["payment_status"], "partially_paid");
    assert_eq!(first.body["paid"]["amount"], 30000);
    assert_eq!(first.body["outstanding"]["amount"], total - 30000);
    let too_much = app.post(&path, &owner.token, json!({"amount": total, "method": "manual"})).await;
    assert_eq!(too_much.status, StatusCode::UNPROCESSABLE_ENTITY);
    let wrong_currency =
        app.post(&path, &owner.token, json!({"amount": {"amount": 1, "currency": "EUR"}, "method": "manual"})).await;
    assert_eq!(wrong_currency.status, StatusCode::UNPROCESSABLE_ENTITY);

    let rest = app
        .post(&path, &owner.token, json!({"amount": {"amount": total - 30000, "currency": "USD"}, "method": "manual"}))
        .await;
    assert_eq!(rest.body["payment_status"], "paid");
    assert_eq!(rest.body["outstanding"]["amount"], 0);
    assert!(rest.body["reservation_expires_at"].is_null(), "a paid order holds its stock until it ships");

    app.run_jobs().await;
    let fulfillment = app.get(&format!("/api/v1/orders/{}/fulfillment-orders", id(&order)), &owner.token).await;
    let fulfillment_orders = fulfillment.body["data"].as_array().unwrap();
    // TENT 7 = 5 from the first warehouse + 2 from the second; MUG from the first.
    assert_eq!(fulfillment_orders.len(), 2, "{}", fulfillment.text);
    let first_wh = fulfillment_orders.iter().find(|f| f["warehouse_id"] == shop.warehouses[0].as_str()).unwrap();
    let quantities: Vec<i64> =
        first_wh["items"].as_array().unwrap().iter().map(|i| i["quantity"].as_i64().unwrap()).collect();
    assert_eq!(quantities.iter().sum::<i64>(), 5 + 2);
    assert!(first_wh["items"].as_array().unwrap().iter().all(|i| i["remaining"] == i["quantity"]));
    // Running the jobs again changes nothing.
    app.run_jobs().await;
    let again = app.get(&format!("/api/v1/orders/{}/fulfillment-orders", id(&order)), &owner.token).await;
    assert_eq!(again.body["data"].as_array().unwrap().len(), 2);

    let timeline = app.get(&format!("/api/v1/orders/{}/timeline", id(&order)), &owner.token).await;
    let types: Vec<&str> =
        timeline.body["data"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(&types[..4], &["order.created", "payment.captured", "payment.captured", "order.paid"]);
    assert!(types.contains(&"fulfillment_order.created"));
}

#[tokio::test]
async fn cancel_releases_holds_and_records_what_is_due_back() {
    let app = TestApp::spawn().await;
    let (owner, shop) = shop(&app).await;
    let order = place(&app, &shop, &[("TENT", 6)]).await;
    app.post(
        &format!("/api/v1/orders/{}/payments", id(&order)),
        &owner.token,
        json!({"amount": 20000, "method": "manual"}),
    )
    .await;
    let cancelled = app
        .post(&format!("/api/v1/orders/{}/cancel", id(&order)), &owner.token, json!({"reason": "customer asked"}))
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.text);
    assert_eq!(cancelled.body["status"], "cancelled");
    assert_eq!(cancelled.body["refund_due"]["amount"], 20000);
    let tent = &shop.variants["TENT"];
    assert_eq!(app.stock(&owner.token, tent, &shop.warehouses[0]).await, (5, 0));
    assert_eq!(app.stock(&owner.token, tent, &shop.warehouses[1]).await, (5, 0));
    let again =
        app.post(&format!("/api/v1/orders/{}/cancel", id(&order)), &owner.token, json!({"reason": "twice"})).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.code(), "invalid_transition");
    let pay = app
        .post(
            &format!("/api/v1/orders/{}/payments", id(&order)),
            &owner.token,
            json!({"amount": 100, "method": "manual"}),
        )
        .await;
    assert_eq!(pay.code(), "invalid_transition");
    app.assert_stock_invariants().await;
}

#[tokio::test]
async fn concurrent_payment_and_cancel_leave_one_consistent_state() {
    let app = TestApp::spawn().await;
    let (owner, shop) = shop(&app).await;
    for _ in 0..10 {
        let order = place(&app, &shop, &[("MUG", 1)]).await;
        let (pay_path, cancel_path) =
            (format!("/api/v1/orders/{}/payments", id(&order)), format!("/api/v1/orders/{}/cancel", id(&order)));
        let pay = app.post(&pay_path, &owner.token, json!({"amount": 1500, "method": "manual"}));
        let cancel = app.post(&cancel_path, &owner.token, json!({"reason": "race"}));
        let (pay, cancel) = tokio::join!(pay, cancel);
        let after = app.get(&format!("/api/v1/orders/{}", id(&order)), &owner.token).await.body;
        assert_eq!(after["status"], "cancelled", "cancel always applies to an unshipped order");
        if pay.status == StatusCode::CREATED {
            // Paid first, then cancelled: the money is due back.
            assert_eq!(after["paid"]["amount"], 1500);
            assert_eq!(after["refund_due"]["amount"], 1500);
        } else {
            assert_eq!(pay.code(), "invalid_transition", "{}", pay.text);
            assert_eq!(after["paid"]["amount"], 0);
            assert_eq!(after["refund_due"]["amount"], 0);
        }
        assert_eq!(cancel.status, StatusCode::OK);
    }
    assert_eq!(app.stock(&owner.token, &shop.variants["MUG"], &shop.warehouses[0]).await, (20, 0));
    app.assert_stock_invariants().await;
}

#[tokio::test]
async fn unpaid_orders_expire_once_and_give_their_stock_back() {
    let app = TestApp::spawn().await;
    let (owner, shop) = shop(&app).await;
    let unpaid = place(&app, &shop, &[("TENT", 3)]).await;
    let paid = place(&app, &shop, &[("TENT", 2)]).await;
    app.post(
        &format!("/api/v1/orders/{}/payments", id(&paid)),
        &owner.token,
        json!({"amount": 20000, "method": "manual"}),
    )
    .await;

    // Nothing is due yet.
    assert_eq!(expiry::expire_due(app.db(), Timestamp::now(), 100).await.unwrap(), 0);
    // Two sweepers on separate connections, after a bank transfer's hold
    // (3 days) ran out.
    let later = Timestamp::now().plus_seconds(4 * 24 * 3600);
    let other = app.test_db.another_connection().await;
    let (a, b) = tokio::join!(expiry::expire_due(app.db(), later, 100), expiry::expire_due(&other.db, later, 100));
    assert_eq!(a.unwrap() + b.unwrap(), 1, "the unpaid order expired exactly once");

    let expired = app.get(&format!("/api/v1/orders/{}", id(&unpaid)), &owner.token).await;
    assert_eq!(expired.body["status"], "expired");
    assert_eq!(app.get(&format!("/api/v1/orders/{}", id(&paid)), &owner.token).await.body["status"], "open");
    let tent = &shop.variants["TENT"];
    let (_, reserved_first) = app.stock(&owner.token, tent, &shop.warehouses[0]).await;
    assert_eq!(reserved_first, 2, "only the paid order still holds stock");
    app.assert_stock_invariants().await;
    let timeline = app.get(&format!("/api/v1/orders/{}/timeline", id(&unpaid)), &owner.token).await;
    assert!(timeline.text.contains("order.expired"));
}

#[tokio::test]
async fn address_and_item_edits_follow_the_rules() {
    let app = TestApp::spawn().await;
    let (owner, shop) = shop(&app).await;
    let order = place(&app, &shop, &[("TENT", 2)]).await;
    let path = format!("/api/v1/orders/{}", id(&order));
    let address =
        json!({"line1": "9 Elm St", "city": "Portland", "region": "OR", "postal_code": "97201", "country": "US"});

    let stale = app
        .send(
            app.client
                .patch(app.url(&format!("{path}/shipping-address")))
                .bearer_auth(&owner.token)
                .header("if-match", "\"99\"")
                .json(&address),
        )
        .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    let moved = app
        .send(
            app.client
                .patch(app.url(&format!("{path}/shipping-address")))
                .bearer_auth(&owner.token)
                .header("if-match", "\"1\"")
                .json(&address),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.text);
    assert_eq!(moved.body["shipping_address"]["city"], "Portland");
    let bad = app
        .request(
            Method::PATCH,
            &format!("{path}/shipping-address"),
            Some(&owner.token),
            Some(&json!({"line1": "", "city": "X", "postal_code": "1", "country": "usa"})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);

    let edited = app
        .post(
            &format!("{path}/items"),
            &owner.token,
            json!({"items": [{"sku": "TENT", "quantity": 1}, {"sku": "MUG", "quantity": 4}]}),
        )
        .await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.text);
    assert_eq!(edited.body["total"]["amount"], 10000 + 4 * 1500);
    assert_eq!(app.stock(&owner.token, &shop.variants["TENT"], &shop.warehouses[0]).await, (5, 1));
    assert_eq!(app.stock(&owner.token, &shop.variants["MUG"], &shop.warehouses[0]).await, (20, 4));
    let greedy =
        app.post(&format!("{path}/items"), &owner.token, json!({"items": [{"sku": "MUG", "quantity": 21}]})).await;
    assert_eq!(greedy.code(), "insufficient_stock");
    assert_eq!(
        app.stock(&owner.token, &shop.variants["MUG"], &shop.warehouses[0]).await,
        (20, 4),
        "a refused edit changes nothing"
    );
    app.assert_stock_invariants().await;

    let note = app.post(&format!("{path}/notes"), &owner.token, json!({"body": "Gift wrap, please"})).await;
    assert_eq!(note.status, StatusCode::CREATED);
    let audit = app.get(&format!("/api/v1/audit-log?entity_id={}", id(&order)), &owner.token).await;
    let actions: Vec<&str> =
        audit.body["data"].as_array().unwrap().iter().map(|a| a["action"].as_str().unwrap()).collect();
    for action in ["order.update_shipping_address", "order.replace_items", "order.add_note"] {
        assert!(actions.contains(&action), "{action} missing from {actions:?}");
    }
    let address_row =
        audit.body["data"].as_array().unwrap().iter().find(|a| a["action"] == "order.update_shipping_address").unwrap();
    assert_eq!(address_row["before"]["city"], "Springfield");
    assert_eq!(address_row["after"]["city"], "Portland");
    assert_eq!(address_row["actor_id"], owner.user_id.as_str());
    assert_eq!(address_row["ip"], "127.0.0.1");
}

#[tokio::test]
async fn the_order_list_filters_and_paginates() {
    let app = TestApp::spawn().await;
    let (owner, shop) = shop(&app).await;
    let first = place(&app, &shop, &[("MUG", 1)]).await;
    let before_second = Timestamp::now();
    let second = place(&app, &shop, &[("MUG", 1)]).await;
    let third = place(&app, &shop, &[("MUG", 1)]).await;
    app.post(
        &format!("/api/v1/orders/{}/payments", id(&second)),
        &owner.token,
        json!({"amount": 1500, "method": "manual"}),
    )
    .await;
    app.post(&format!("/api/v1/orders/{}/cancel", id(&third)), &owner.token, json!({"reason": "test"})).await;

    let ids = |response: &consign_testkit::TestResponse| -> Vec<String> {
        response.body["data"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap().to_owned()).collect()
    };
    let all = app.get(&format!("/api/v1/orders?brand_id={}", shop.brand_id), &owner.token).await;
    assert_eq!(ids(&all), vec![id(&third), id(&second), id(&first)]);
    let paid = app.get("/api/v1/orders?payment_status=paid", &owner.token).await;
    assert_eq!(ids(&paid), vec![id(&second)]);
    let cancelled = app.get("/api/v1/orders?status=cancelled", &owner.token).await;
    assert_eq!(ids(&cancelled), vec![id(&third)]);
    let unfulfilled = app.get("/api/v1/orders?fulfillment_status=unfulfilled&limit=2", &owner.token).await;
    assert_eq!(ids(&unfulfilled).len(), 2);
    let cursor = unfulfilled.body["next_cursor"].as_str().unwrap();
    let rest =
        app.get(&format!("/api/v1/orders?fulfillment_status=unfulfilled&limit=2&cursor={cursor}"), &owner.token).await;
    assert_eq!(ids(&rest), vec![id(&first)]);
    let by_number = app.get("/api/v1/orders?q=%231002", &owner.token).await;
    assert_eq!(ids(&by_number), vec![id(&second)]);
    let by_email = app.get("/api/v1/orders?q=Casey@Example.com", &owner.token).await;
    assert_eq!(ids(&by_email).len(), 3);
    let since = app.get(&format!("/api/v1/orders?created_after={}", before_second), &owner.token).await;
    assert_eq!(ids(&since), vec![id(&third), id(&second)]);
    let until = app.get(&format!("/api/v1/orders?created_before={}", before_second), &owner.token).await;
    assert_eq!(ids(&until), vec![id(&first)]);
    let any_of = app.get("/api/v1/orders?fulfillment_status=shipped,unfulfilled", &owner.token).await;
    assert_eq!(ids(&any_of).len(), 3, "a comma-separated list is any of them: {}", any_of.text);
    let none_of = app.get("/api/v1/orders?fulfillment_status=shipped,delivered", &owner.token).await;
    assert_eq!(ids(&none_of).len(), 0, "{}", none_of.text);
    for bad in
        ["status=shipped", "created_after=yesterday", "payment_status=free", "fulfillment_status=unfulfilled,nope"]
    {
        assert_eq!(
            app.get(&format!("/api/v1/orders?{bad}"), &owner.token).await.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}"
        );
    }
    let events = app.events_until("/api/v1/events?type=order.cancelled", &owner.token, 1).await;
    assert_eq!(events.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(events.body["data"][0]["aggregate_id"], id(&third));
    let all_events = app.get("/api/v1/events?limit=200", &owner.token).await;
    let first_id = all_events.body["data"][0]["id"].as_str().unwrap();
    let after = app.get(&format!("/api/v1/events?after={first_id}&limit=200"), &owner.token).await;
    // Everything but the first, in the same order (on PostgreSQL a late
    // commit of another test's transaction may reveal more meanwhile).
    let all: Vec<&Value> = all_events.body["data"].as_array().unwrap().iter().collect();
    let rest: Vec<&Value> = after.body["data"].as_array().unwrap().iter().collect();
    assert!(rest.len() + 1 >= all.len() && all.len() > 1, "{} then {}", all.len(), rest.len());
    assert_eq!(rest[..all.len() - 1], all[1..]);
}

#[tokio::test]
async fn the_order_search_finds_a_name_or_email_part_a_sku_and_a_tracking_number_in_the_api_and_the_page() {
    let app = TestApp::spawn().await;
    let (owner, shop) = shop(&app).await;
    let mut placed = Vec::new();
    for (name, email, sku) in [
        ("Dana O'Neil", "dana.oneil@mail.example", "TENT"),
        ("Casey Customer", "casey@example.com", "MUG"),
        ("Robin 100% Banks", "robin_b@bank.example", "MUG"),
    ] {
        let mut body = consign_testkit::checkout_body(&[(sku, 1)], email);
        body["customer"]["name"] = json!(name);
        let order = app.post_anonymous(&format!("/api/v1/storefront/{}/checkout", shop.slug), body).await;
        assert_eq!(order.status, StatusCode::CREATED, "{}", order.text);
        placed.push(order.body["order"].clone());
    }
    let (dana, casey, robin) = (id(&placed[0]), id(&placed[1]), id(&placed[2]));
    app.post(&format!("/api/v1/orders/{casey}/payments"), &owner.token, json!({"amount": 1500, "method": "manual"}))
        .await;
    app.run_jobs().await;
    let fulfillment = app.get(&format!("/api/v1/orders/{casey}/fulfillment-orders"), &owner.token).await;
    let fo_id = fulfillment.body["data"][0]["id"].as_str().unwrap().to_owned();
    let item_id = placed[1]["items"][0]["id"].as_str().unwrap().to_owned();
    let shipment =
        json!({"items": [{"order_item_id": item_id, "quantity": 1}], "carrier": "ups", "tracking_number": "1Z999AA1"});
    let shipped = app.post(&format!("/api/v1/fulfillment-orders/{fo_id}/shipments"), &owner.token, shipment).await;
    assert_eq!(shipped.status, StatusCode::CREATED, "{}", shipped.text);

    let found = |q: &'static str| {
        let app = &app;
        let token = owner.token.clone();
        async move {
            let page = app.get(&format!("/api/v1/orders?q={q}"), &token).await;
            assert_eq!(page.status, StatusCode::OK, "{q}: {}", page.text);
            page.body["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(found("o%27neil").await, [dana], "part of a name, any case, with a quote");
    assert_eq!(found("ONEIL%40MAIL").await, [dana], "part of an email");
    assert_eq!(found("%25").await, [robin], "a % is a character, not a wildcard");
    assert_eq!(found("c_sey").await, Vec::<String>::new(), "an _ is a character, not a wildcard");
    assert_eq!(found("n_b%40").await, [robin]);
    assert_eq!(found("tent").await, [dana], "a SKU, any case");
    assert_eq!(found("1Z999AA1").await, [casey], "a tracking number");
    assert_eq!(found("1Z999").await, Vec::<String>::new(), "a tracking number is matched whole");
    assert_eq!(found("%231002").await, [casey], "a number");
    assert_eq!(found("customer").await, [casey]);
    let too_long = app.get(&format!("/api/v1/orders?q={}", "x".repeat(201)), &owner.token).await;
    assert_eq!(too_long.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", too_long.text);
    assert_eq!(too_long.body["errors"][0]["field"], "q", "{}", too_long.text);

    // Another tenant's search finds none of them.
    let rival = app.sign_up("rival@other.example", "merchant").await;
    let theirs = app.get("/api/v1/orders?q=tent", &rival.token).await;
    assert_eq!(theirs.body["data"], json!([]), "{}", theirs.text);

    // The staff page searches the same way.
    let mut staff = consign_testkit::pages::PageClient::signed_in(&app, &owner.email, &owner.password).await;
    let page = staff.get("/admin/orders?q=1Z999AA1").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains(&format!("/admin/orders/{casey}")), "{}", page.text);
    assert!(!page.text.contains(&format!("/admin/orders/{dana}")), "{}", page.text);
}

#[tokio::test]
async fn another_tenants_orders_answer_404_and_stay_unchanged() {
    let app = TestApp::spawn().await;
    let (owner, shop) = shop(&app).await;
    let order = place(&app, &shop, &[("TENT", 1)]).await;
    app.post(
        &format!("/api/v1/orders/{}/payments", id(&order)),
        &owner.token,
        json!({"amount": 10000, "method": "manual"}),
    )
    .await;
    app.run_jobs().await;
    let fulfillment = app.get(&format!("/api/v1/orders/{}/fulfillment-orders", id(&order)), &owner.token).await;
    let fo_id = fulfillment.body["data"][0]["id"].as_str().unwrap().to_owned();
    let item_id = order["items"][0]["id"].as_str().unwrap().to_owned();
    let shipped = app
        .post(
            &format!("/api/v1/fulfillment-orders/{fo_id}/shipments"),
            &owner.token,
            json!({"items": [{"order_item_id": item_id, "quantity": 1}], "carrier": "ups", "tracking_number": "1Z1"}),
        )
        .await;
    let shipment_id = shipped.body["id"].as_str().unwrap().to_owned();

    let intruder = app.sign_up("admin@intruder.example", "threepl").await;
    let order_path = format!("/api/v1/orders/{}", id(&order));
    let before = app.get(&order_path, &owner.token).await;
    let attempts: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, order_path.clone(), None),
        (Method::POST, format!("{order_path}/cancel"), Some(json!({"reason": "x"}))),
        (Method::POST, format!("{order_path}/payments"), Some(json!({"amount": 1, "method": "manual"}))),
        (
            Method::PATCH,
            format!("{order_path}/shipping-address"),
            Some(json!({"line1": "x", "city": "y", "postal_code": "1", "country": "US"})),
        ),
        (Method::POST, format!("{order_path}/items"), Some(json!({"items": [{"sku": "TENT", "quantity": 1}]}))),
        (Method::POST, format!("{order_path}/notes"), Some(json!({"body": "x"}))),
        (Method::GET, format!("{order_path}/timeline"), None),
        (Method::GET, format!("{order_path}/fulfillment-orders"), None),
        (Method::GET, format!("{order_path}/shipments"), None),
        (
            Method::POST,
            format!("/api/v1/fulfillment-orders/{fo_id}/shipments"),
            Some(
                json!({"items": [{"order_item_id": item_id, "quantity": 1}], "carrier": "ups", "tracking_number": "x"}),
            ),
        ),
        (Method::POST, format!("/api/v1/shipments/{shipment_id}/status"), Some(json!({"status": "in_transit"}))),
        (Method::GET, format!("/api/v1/orders?brand_id={}", shop.brand_id), None),
    ];
    for (method, path, body) in attempts {
        let response = app.request(method.clone(), &path, Some(&intruder.token), body.as_ref()).await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{method} {path}: {}", response.text);
    }
    assert_eq!(app.get("/api/v1/orders", &intruder.token).await.body["data"].as_array().unwrap().len(), 0);
    assert_eq!(app.get("/api/v1/events", &intruder.token).await.body["data"].as_array().unwrap().len(), 0);
    let audit = app.get("/api/v1/audit-log", &intruder.token).await;
    assert!(!audit.text.contains(id(&order)) && !audit.text.contains(&shop.brand_id), "{}", audit.text);
    let after = app.get(&order_path, &owner.token).await;
    assert_eq!(after.body["version"], before.body["version"], "nothing changed");
    assert_eq!(after.body["status"], "open");
    assert_eq!(after.body["fulfillment_status"], "shipped");
}
