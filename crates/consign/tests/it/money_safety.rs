//! Money that must not be lost (issue #11): amounts past the largest one
//! Consign handles are bad input, an order holding money never expires
//! silently, bank transfers hold stock for days and a late payment re-holds
//! it or is owed back, webhooks of a shared provider account reach every
//! brand, a refund that timed out is never made twice, a money job that
//! gives up is failed visibly and can be retried, and anonymous callers
//! cannot make Consign call providers without bound.

use std::time::Duration;

use consign_db::orders::expiry;
use consign_db::{Pool, Scope};
use consign_domain::Timestamp;
use consign_testkit::pages::PageClient;
use consign_testkit::providers::payment_apis::{Providers, secrets, stripe_events};
use consign_testkit::{Sku, StockedBrand, TestApp, TestDb, TestUser, checkout_body};
use consign_web::WebConfig;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::payments::{checkout_with, shop, spawn_with_providers};

/// 10^12 minor units: the largest price, line and order total.
const MAX_AMOUNT: i64 = 1_000_000_000_000;

fn id(value: &Value) -> &str {
    value["id"].as_str().unwrap()
}

fn amount(order: &Value, field: &str) -> i64 {
    order[field]["amount"].as_i64().unwrap()
}

async fn order_state(app: &TestApp, token: &str, order_id: &str) -> Value {
    let got = app.get(&format!("/api/v1/orders/{order_id}"), token).await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.text);
    got.body
}

async fn ledger(app: &TestApp, token: &str, order_id: &str) -> Vec<Value> {
    let got = app.get(&format!("/api/v1/orders/{order_id}/payments?limit=200"), token).await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.text);
    got.body["data"].as_array().unwrap().clone()
}

fn field_errors(response: &consign_testkit::TestResponse) -> Vec<String> {
    response.body["errors"]
        .as_array()
        .map(|errors| errors.iter().filter_map(|e| e["field"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// Runs `sql` (one statement, no parameters) on the writer.
async fn execute(app: &TestApp, sql: &str) {
    match app.db().pool() {
        Pool::Sqlite { writer, .. } => {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned())).execute(writer).await.unwrap();
        }
        Pool::Postgres(pool) => {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned())).execute(pool).await.unwrap();
        }
    }
}

/// Expires every unpaid order whose hold ends within `days` days.
async fn expire_within(app: &TestApp, days: i64) -> usize {
    expiry::expire_due(app.db(), Timestamp::now().plus_seconds(days * 24 * 60 * 60), 100).await.unwrap()
}

async fn record_payment(app: &TestApp, owner: &TestUser, order_id: &str, amount: i64) -> consign_testkit::TestResponse {
    app.post(
        &format!("/api/v1/orders/{order_id}/payments"),
        &owner.token,
        json!({"amount": amount, "method": "manual", "reference": "bank transfer"}),
    )
    .await
}

// ---------------------------------------------------------------------------
// Money at the edges

#[tokio::test]
async fn a_price_past_the_largest_amount_is_refused_naming_the_field() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let shop = app.stocked_brand(&owner, "acme", 1, &[Sku { sku: "TENT", price: 10000, stock: &[5] }]).await;
    let product = json!({"brand_id": shop.brand_id, "title": "Gold tent", "description": "", "status": "active",
                         "variants": [{"sku": "GOLD", "title": "Gold", "options": {},
                                       "price": {"amount": 9_000_000_000_000_000_000_i64, "currency": "USD"}}]});
    let created = app.post("/api/v1/products", &owner.token, product).await;
    assert_eq!(created.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", created.text);
    assert_eq!(created.code(), "validation_failed");
    assert!(field_errors(&created).iter().any(|f| f.contains("price.amount")), "{}", created.text);

    let variant_id = &shop.variants["TENT"];
    let changed = app
        .request(
            Method::PATCH,
            &format!("/api/v1/variants/{variant_id}"),
            Some(&owner.token),
            Some(&json!({"price": {"amount": MAX_AMOUNT + 1, "currency": "USD"}})),
        )
        .await;
    assert_eq!(changed.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", changed.text);
    assert!(field_errors(&changed).iter().any(|f| f.contains("price.amount")), "{}", changed.text);
}

#[tokio::test]
async fn a_huge_allowed_price_times_a_big_quantity_is_bad_input_at_checkout_and_in_an_item_edit() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let shop = app
        .stocked_brand(
            &owner,
            "acme",
            1,
            &[Sku { sku: "YACHT", price: MAX_AMOUNT, stock: &[10] }, Sku { sku: "MUG", price: 1500, stock: &[10] }],
        )
        .await;
    let placed = app.checkout(&shop.slug, &[("YACHT", 2)], "casey@example.com").await;
    assert_eq!(placed.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", placed.text);
    assert_eq!(placed.code(), "validation_failed");
    assert!(field_errors(&placed).iter().any(|f| f.starts_with("items")), "{}", placed.text);
    let also = app.checkout(&shop.slug, &[("YACHT", 1), ("MUG", 1)], "casey@example.com").await;
    assert_eq!(also.status, StatusCode::UNPROCESSABLE_ENTITY, "a total past the largest amount: {}", also.text);

    // The largest amount itself is a valid order; growing it is refused.
    let placed = app.checkout(&shop.slug, &[("YACHT", 1)], "casey@example.com").await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.text);
    let order_id = placed.body["order"]["id"].as_str().unwrap().to_owned();
    assert_eq!(amount(&placed.body["order"], "total"), MAX_AMOUNT);
    let edited = app
        .post(
            &format!("/api/v1/orders/{order_id}/items"),
            &owner.token,
            json!({"items": [{"sku": "YACHT", "quantity": 3}]}),
        )
        .await;
    assert_eq!(edited.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", edited.text);
    assert!(field_errors(&edited).iter().any(|f| f.starts_with("items")), "{}", edited.text);
    let after = order_state(&app, &owner.token, &order_id).await;
    assert_eq!(amount(&after, "total"), MAX_AMOUNT, "nothing changed");
    assert_eq!(after["items"][0]["quantity"], 1);
    app.assert_stock_invariants().await;
}

#[tokio::test]
async fn the_same_sku_on_many_lines_is_held_to_the_per_line_limit() {
    // The per-order unit cap of unpaid checkouts would answer first.
    let rate_limits = consign_web::auth::rate_limit::RateLimits::unlimited();
    let app = TestApp::spawn_with(WebConfig { rate_limits, ..WebConfig::default() }).await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let shop = app.stocked_brand(&owner, "acme", 1, &[Sku { sku: "MUG", price: 1500, stock: &[5000] }]).await;
    let placed = app.checkout(&shop.slug, &[("MUG", 1000), ("MUG", 1)], "casey@example.com").await;
    assert_eq!(placed.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", placed.text);
    assert_eq!(field_errors(&placed), vec!["items[1].quantity".to_owned()], "{}", placed.text);
}

// ---------------------------------------------------------------------------
// Orders holding money, bank-transfer holds, late payments

#[tokio::test]
async fn a_partially_paid_order_shows_it_and_never_expires_with_the_money() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let shop = app.stocked_brand(&owner, "acme", 1, &[Sku { sku: "TENT", price: 10000, stock: &[5] }]).await;
    let placed = app.checkout(&shop.slug, &[("TENT", 2)], "casey@example.com").await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.text);
    let order_id = id(&placed.body["order"]).to_owned();

    let paid = record_payment(&app, &owner, &order_id, 5000).await;
    assert_eq!(paid.status, StatusCode::CREATED, "{}", paid.text);
    assert_eq!(paid.body["payment_status"], "partially_paid", "{}", paid.text);
    assert!(paid.body["reservation_expires_at"].is_null(), "money held: the hold does not run out");

    assert_eq!(expire_within(&app, 365).await, 0);
    let after = order_state(&app, &owner.token, &order_id).await;
    assert_eq!(after["status"], "open");
    assert_eq!(after["payment_status"], "partially_paid");
    assert_eq!((amount(&after, "paid"), amount(&after, "outstanding")), (5000, 15000));
    assert_eq!(app.stock(&owner.token, &shop.variants["TENT"], &shop.warehouses[0]).await, (5, 2), "still held");

    let rest = record_payment(&app, &owner, &order_id, 15000).await;
    assert_eq!(rest.body["payment_status"], "paid", "{}", rest.text);
}

/// Seconds until an unpaid order's stock hold ends.
async fn hold_seconds(app: &TestApp, order: &Value) -> i64 {
    let order_id: consign_domain::OrderId = id(order).parse().unwrap();
    let order = consign_db::orders::get(app.db(), &Scope::system(), order_id).await.unwrap();
    let expires = order.reservation_expires_at.expect("an unpaid order's hold ends");
    (expires.as_micros() - Timestamp::now().as_micros()) / 1_000_000
}

#[tokio::test]
async fn a_bank_transfer_holds_stock_for_days_and_a_card_payment_for_the_brand_hold() {
    let (app, _providers) = spawn_with_providers().await;
    let (owner, shop) = shop(&app, "stripe").await;
    let manual = app.checkout(&shop.slug, &[("MUG", 1)], "casey@example.com").await;
    assert_eq!(manual.status, StatusCode::CREATED, "{}", manual.text);
    let seconds = hold_seconds(&app, &manual.body["order"]).await;
    assert!((3 * 86400 - 120..=3 * 86400).contains(&seconds), "a bank transfer holds for 3 days: {seconds}");
    let (card, _, _) = checkout_with(&app, &shop, &[("MUG", 1)], "stripe").await;
    let seconds = hold_seconds(&app, &card).await;
    assert!((800..=900).contains(&seconds), "a card payment holds for the brand's 15 minutes: {seconds}");

    let set = app
        .request(
            Method::PATCH,
            &format!("/api/v1/brands/{}", shop.brand_id),
            Some(&owner.token),
            Some(&json!({"manual_reservation_ttl_seconds": 5 * 86400})),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text);
    assert_eq!(set.body["manual_reservation_ttl_seconds"], 5 * 86400);
    let manual = app.checkout(&shop.slug, &[("MUG", 1)], "casey@example.com").await;
    let seconds = hold_seconds(&app, &manual.body["order"]).await;
    assert!((5 * 86400 - 120..=5 * 86400).contains(&seconds), "the brand's own bank-transfer hold: {seconds}");
}

#[tokio::test]
async fn a_bank_transfer_after_expiry_holds_the_stock_again_and_pays_the_order() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let shop = app.stocked_brand(&owner, "acme", 1, &[Sku { sku: "TENT", price: 10000, stock: &[3] }]).await;
    let placed = app.checkout(&shop.slug, &[("TENT", 2)], "casey@example.com").await;
    let order_id = id(&placed.body["order"]).to_owned();
    assert_eq!(expire_within(&app, 30).await, 1);
    assert_eq!(app.stock(&owner.token, &shop.variants["TENT"], &shop.warehouses[0]).await, (3, 0));

    let paid = record_payment(&app, &owner, &order_id, 20000).await;
    assert_eq!(paid.status, StatusCode::CREATED, "{}", paid.text);
    assert_eq!(paid.body["status"], "open", "{}", paid.text);
    assert_eq!(paid.body["payment_status"], "paid");
    assert_eq!(amount(&paid.body, "refund_due"), 0);
    assert_eq!(app.stock(&owner.token, &shop.variants["TENT"], &shop.warehouses[0]).await, (3, 2), "held again");
    app.run_jobs().await;
    let fulfillment = app.get(&format!("/api/v1/orders/{order_id}/fulfillment-orders"), &owner.token).await;
    assert!(fulfillment.text.contains(&shop.warehouses[0]), "the paid order is fulfilled: {}", fulfillment.text);
    app.assert_stock_invariants().await;
}

#[tokio::test]
async fn a_bank_transfer_after_expiry_when_the_stock_is_gone_is_owed_back_and_staff_are_alerted() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let shop = app.stocked_brand(&owner, "acme", 1, &[Sku { sku: "TENT", price: 10000, stock: &[1] }]).await;
    let late = app.checkout(&shop.slug, &[("TENT", 1)], "late@example.com").await;
    let order_id = id(&late.body["order"]).to_owned();
    assert_eq!(expire_within(&app, 30).await, 1);
    let other = app.checkout(&shop.slug, &[("TENT", 1)], "quick@example.com").await;
    assert_eq!(other.status, StatusCode::CREATED, "the released unit sold again: {}", other.text);

    let paid = record_payment(&app, &owner, &order_id, 10000).await;
    assert_eq!(paid.status, StatusCode::CREATED, "the money arrived and is recorded: {}", paid.text);
    assert_eq!(paid.body["status"], "expired");
    assert_eq!(amount(&paid.body, "paid"), 10000);
    assert_eq!(amount(&paid.body, "refund_due"), 10000, "owed back, never silently kept");
    assert_eq!(app.stock(&owner.token, &shop.variants["TENT"], &shop.warehouses[0]).await, (1, 1));

    let mut staff = PageClient::signed_in(&app, &owner.email, &owner.password).await;
    let dashboard = staff.get("/admin").await;
    assert_eq!(dashboard.status, StatusCode::OK);
    assert!(dashboard.text.contains("Needs attention"), "{}", dashboard.text);
    assert!(dashboard.text.contains("owed back"), "{}", dashboard.text);
    assert!(dashboard.text.contains(&format!("/admin/orders/{order_id}")));
    let timeline = app.get(&format!("/api/v1/orders/{order_id}/timeline"), &owner.token).await;
    assert!(timeline.text.contains("order.refund_due"), "{}", timeline.text);

    // Staff pay it back by hand and record it.
    let refunded = app
        .post(
            &format!("/api/v1/orders/{order_id}/refunds"),
            &owner.token,
            json!({"amount": 10000, "reason": "sold out before the transfer arrived"}),
        )
        .await;
    assert_eq!(refunded.status, StatusCode::CREATED, "{}", refunded.text);
    assert_eq!(refunded.body["order"]["payment_status"], "refunded");
    assert_eq!(amount(&refunded.body["order"], "refund_due"), 0);
}

/// Sets a SKU's stock in the brand's first warehouse (sold elsewhere).
async fn set_on_hand(app: &TestApp, owner: &TestUser, shop: &StockedBrand, sku: &str, on_hand: i64) {
    let adjusted = app
        .post(
            "/api/v1/inventory/adjustments",
            &owner.token,
            json!({"variant_id": shop.variants[sku], "warehouse_id": shop.warehouses[0], "set_on_hand": on_hand,
                   "reason": "sold in the shop"}),
        )
        .await;
    assert_eq!(adjusted.status, StatusCode::CREATED, "{}", adjusted.text);
}

#[tokio::test]
async fn a_card_capture_after_expiry_reholds_or_is_refunded_through_the_provider() {
    let (app, providers) = spawn_with_providers().await;
    let (owner, shop) = shop(&app, "stripe").await;

    // Stock still there: the capture holds it again and pays the order.
    let (order, payment, _) = checkout_with(&app, &shop, &[("TENT", 1)], "stripe").await;
    let intent = payment["payment_intent_id"].as_str().unwrap().to_owned();
    assert_eq!(expire_within(&app, 1).await, 1);
    let event = stripe_events::succeeded("evt_late_1", &intent, 10000, id(&order));
    let sent = app.stripe_webhook(&shop.slug, &event, secrets::STRIPE_WEBHOOK_SECRET, None).await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.text);
    app.run_jobs().await;
    let reheld = order_state(&app, &owner.token, id(&order)).await;
    assert_eq!(
        (reheld["status"].as_str(), reheld["payment_status"].as_str()),
        (Some("open"), Some("paid")),
        "{reheld}"
    );
    assert_eq!(app.stock(&owner.token, &shop.variants["TENT"], &shop.warehouses[0]).await, (500, 1));
    assert!(providers.refunds_made().is_empty());

    // Stock gone: the capture is refunded through Stripe and staff told.
    let (gone, payment, _) = checkout_with(&app, &shop, &[("MUG", 1)], "stripe").await;
    let intent = payment["payment_intent_id"].as_str().unwrap().to_owned();
    assert_eq!(expire_within(&app, 1).await, 1);
    set_on_hand(&app, &owner, &shop, "MUG", 0).await;
    let event = stripe_events::succeeded("evt_late_2", &intent, 1500, id(&gone));
    app.stripe_webhook(&shop.slug, &event, secrets::STRIPE_WEBHOOK_SECRET, None).await;
    app.run_jobs().await;
    let refunded = order_state(&app, &owner.token, id(&gone)).await;
    assert_eq!(refunded["status"], "expired");
    assert_eq!(refunded["payment_status"], "refunded", "{refunded}");
    assert_eq!(providers.refunds_made().len(), 1);
    let mut staff = PageClient::signed_in(&app, &owner.email, &owner.password).await;
    assert!(staff.get("/admin").await.text.contains(&format!("/admin/orders/{}", id(&gone))));
    app.assert_stock_invariants().await;
}

// ---------------------------------------------------------------------------
// H4: one provider account, several brands

#[tokio::test]
async fn brands_sharing_one_stripe_account_each_receive_the_accounts_events() {
    let (app, _providers) = spawn_with_providers().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let skus = [Sku { sku: "TENT", price: 10000, stock: &[5] }];
    let a = app.stocked_brand(&owner, "brand-a", 1, &skus).await;
    let b = app.stocked_brand(&owner, "brand-b", 1, &skus).await;
    for brand in [&a, &b] {
        assert_eq!(app.set_provider(&owner.token, &brand.brand_id, "stripe").await.status, StatusCode::OK);
    }
    let (order, payment, _) = checkout_with(&app, &b, &[("TENT", 1)], "stripe").await;
    let intent = payment["payment_intent_id"].as_str().unwrap().to_owned();
    // Stripe sends every event of the account to each endpoint on it.
    let event = stripe_events::succeeded("evt_shared", &intent, 10000, id(&order));
    for slug in ["brand-a", "brand-b"] {
        let sent = app.stripe_webhook(slug, &event, secrets::STRIPE_WEBHOOK_SECRET, None).await;
        assert_eq!(sent.status, StatusCode::OK, "{}", sent.text);
        assert_ne!(sent.body["duplicate"], true, "{slug}'s copy is its own: {}", sent.text);
    }
    app.run_jobs().await;
    assert_eq!(order_state(&app, &owner.token, id(&order)).await["payment_status"], "paid");
    let events = app.get("/api/v1/webhook-events", &owner.token).await;
    let outcomes: Vec<(&str, &str)> = events.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (if e["brand_id"] == a.brand_id.as_str() { "a" } else { "b" }, e["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(outcomes.len(), 2, "{}", events.text);
    assert!(outcomes.contains(&("b", "applied")) && outcomes.contains(&("a", "parked")), "{outcomes:?}");
    // A second delivery to either endpoint is still a duplicate.
    let again = app.stripe_webhook("brand-b", &event, secrets::STRIPE_WEBHOOK_SECRET, None).await;
    assert_eq!(again.body["duplicate"], true, "{}", again.text);
}

// ---------------------------------------------------------------------------
// H5: refunds that time out after the provider made them

/// A server whose provider calls time out after `timeout`.
async fn spawn_with_timeout(timeout: Duration) -> (TestApp, Providers) {
    let providers = Providers::start().await;
    let keyring = consign_payments::Keyring::parse(&consign_payments::Keyring::generate_line("test1")).unwrap();
    let mut gateway = consign_payments::Gateway::new(Some(keyring), providers.endpoints());
    gateway.http = reqwest::Client::builder().timeout(timeout).no_proxy().build().unwrap();
    let app =
        TestApp::spawn_with_gateway(TestDb::new().await, WebConfig::default(), std::sync::Arc::new(gateway)).await;
    (app, providers)
}

async fn make_queued_jobs_due(app: &TestApp) {
    execute(app, &format!("UPDATE jobs SET run_at = {} WHERE status = 'queued'", Timestamp::now().as_micros())).await;
}

#[tokio::test]
async fn a_razorpay_refund_that_timed_out_after_razorpay_made_it_is_not_made_again() {
    let (app, providers) = spawn_with_timeout(Duration::from_secs(2)).await;
    let (owner, shop) = shop(&app, "razorpay").await;
    let (order, payment, _) = checkout_with(&app, &shop, &[("MUG", 1)], "razorpay").await;
    let captured = json!({"entity": "event", "event": "payment.captured", "payload": {"payment": {"entity": {
        "id": "pay_1", "order_id": payment["razorpay_order_id"], "amount": 1500, "currency": "USD",
        "notes": {"order_id": id(&order)}}}}});
    let sent = app.razorpay_webhook(&shop.slug, "evt_rzp_paid", &captured, secrets::RAZORPAY_WEBHOOK_SECRET).await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.text);
    app.run_jobs().await;
    let cancelled = app
        .post(&format!("/api/v1/orders/{}/cancel", id(&order)), &owner.token, json!({"reason": "customer asked"}))
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.text);

    providers.answer_refunds_late(true);
    app.run_jobs().await;
    assert_eq!(providers.refunds_made().len(), 1, "Razorpay made the refund");
    assert_eq!(order_state(&app, &owner.token, id(&order)).await["payment_status"], "paid", "no answer yet");

    providers.answer_refunds_late(false);
    make_queued_jobs_due(&app).await;
    app.run_jobs().await;
    let sent = providers.requests("/v1/payments/pay_1/refund");
    assert_eq!(sent.len(), 2, "sent again after the timeout");
    let key = sent[0].headers.get("x-refund-idempotency").expect("an idempotency key");
    assert!(key.len() >= 10);
    assert_eq!(sent[1].headers.get("x-refund-idempotency"), Some(key));
    assert_eq!(providers.refunds_made().len(), 1, "the second request was answered with the first refund");
    let after = order_state(&app, &owner.token, id(&order)).await;
    assert_eq!(after["payment_status"], "refunded");
    assert_eq!(amount(&after, "refunded"), 1500);
}

// ---------------------------------------------------------------------------
// M2: money jobs that keep failing

async fn paid_stripe_order(app: &TestApp, shop: &StockedBrand) -> Value {
    let (order, payment, _) = checkout_with(app, shop, &[("TENT", 1)], "stripe").await;
    let intent = payment["payment_intent_id"].as_str().unwrap().to_owned();
    let event = stripe_events::succeeded(&format!("evt_{intent}"), &intent, 10000, id(&order));
    app.stripe_webhook(&shop.slug, &event, secrets::STRIPE_WEBHOOK_SECRET, None).await;
    app.run_jobs().await;
    order
}

/// Cancels a paid order while Stripe is down, and runs its refund job until
/// it gives up (its attempts fast-forwarded to its last one).
async fn refund_job_that_died(
    app: &TestApp,
    providers: &Providers,
    owner: &TestUser,
    order: &Value,
) -> consign_db::jobs::Job {
    providers.fail_next(usize::MAX);
    let cancelled = app
        .post(&format!("/api/v1/orders/{}/cancel", id(order)), &owner.token, json!({"reason": "customer asked"}))
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.text);
    app.run_jobs().await;
    let jobs = consign_db::jobs::list(app.db(), None, &consign_db::PageRequest::first()).await.unwrap();
    let job = jobs.data.into_iter().find(|job| job.kind == "payments.refund").expect("a refund job");
    assert!(job.max_attempts >= 72, "a money job retries for days, not {} attempts", job.max_attempts);
    execute(
        app,
        &format!(
            "UPDATE jobs SET attempts = max_attempts - 1, run_at = {} WHERE id = '{}'",
            Timestamp::now().as_micros(),
            job.id
        ),
    )
    .await;
    app.run_jobs().await;
    let job = consign_db::jobs::get(app.db(), job.id).await.unwrap();
    assert_eq!(job.status, consign_db::jobs::JobStatus::Dead);
    job
}

#[tokio::test]
async fn a_refund_whose_job_died_is_failed_shown_to_staff_and_can_be_refunded_again() {
    let (app, providers) = spawn_with_providers().await;
    let (owner, shop) = shop(&app, "stripe").await;
    let order = paid_stripe_order(&app, &shop).await;
    refund_job_that_died(&app, &providers, &owner, &order).await;

    let refund = ledger(&app, &owner.token, id(&order)).await.into_iter().find(|e| e["kind"] == "refund").unwrap();
    assert_eq!(refund["status"], "failed", "{refund}");
    assert!(refund["failure"].as_str().unwrap().starts_with("not sent"), "{refund}");
    let state = order_state(&app, &owner.token, id(&order)).await;
    assert_eq!(amount(&state, "refund_due"), 10000, "still owed");
    let mut staff = PageClient::signed_in(&app, &owner.email, &owner.password).await;
    let dashboard = staff.get("/admin").await;
    assert!(dashboard.text.contains("could not be sent to stripe"), "{}", dashboard.text);

    providers.fail_next(0);
    let again = app
        .post(
            &format!("/api/v1/orders/{}/refunds", id(&order)),
            &owner.token,
            json!({"amount": 10000, "reason": "the first refund never went out"}),
        )
        .await;
    assert_eq!(again.status, StatusCode::CREATED, "a dead refund no longer blocks refunding: {}", again.text);
    app.run_jobs().await;
    assert_eq!(order_state(&app, &owner.token, id(&order)).await["payment_status"], "refunded");
    assert_eq!(providers.refunds_made().len(), 1);
}

#[tokio::test]
async fn a_dead_refund_job_retried_from_the_dashboard_sends_the_same_refund_once() {
    let (app, providers) = spawn_with_providers().await;
    let (owner, shop) = shop(&app, "stripe").await;
    let order = paid_stripe_order(&app, &shop).await;
    let job = refund_job_that_died(&app, &providers, &owner, &order).await;

    providers.fail_next(0);
    let mut staff = PageClient::signed_in(&app, &owner.email, &owner.password).await;
    let dashboard = staff.get("/admin").await;
    let marker = "action=\"/admin/alerts/";
    let start = dashboard.text.find(marker).expect("a retry form") + marker.len();
    let alert_id: String = dashboard.text[start..].chars().take_while(|c| *c != '/').collect();
    let retried = staff.post_and_follow(&format!("/admin/alerts/{alert_id}/retry"), &[]).await;
    assert!(retried.text.contains("queued again"), "{}", retried.text);
    assert!(!retried.text.contains("could not be sent"), "the alert is resolved");
    assert_eq!(consign_db::jobs::get(app.db(), job.id).await.unwrap().status, consign_db::jobs::JobStatus::Queued);

    app.run_jobs().await;
    let refunds: Vec<Value> =
        ledger(&app, &owner.token, id(&order)).await.into_iter().filter(|e| e["kind"] == "refund").collect();
    assert_eq!(refunds.len(), 1, "the same refund, reopened");
    assert_eq!(refunds[0]["status"], "succeeded");
    let sent = providers.requests("/v1/refunds");
    assert!(
        sent.iter().all(|r| r.headers.get("idempotency-key") == refunds[0]["id"].as_str().map(str::to_owned).as_ref())
    );
    assert_eq!(providers.refunds_made().len(), 1);
    assert_eq!(order_state(&app, &owner.token, id(&order)).await["payment_status"], "refunded");
}

#[tokio::test]
async fn a_webhook_event_left_without_a_job_is_requeued_by_the_sweep() {
    let (app, _providers) = spawn_with_providers().await;
    let (owner, shop) = shop(&app, "stripe").await;
    let (order, payment, _) = checkout_with(&app, &shop, &[("TENT", 1)], "stripe").await;
    let intent = payment["payment_intent_id"].as_str().unwrap().to_owned();
    let event = stripe_events::succeeded("evt_lost", &intent, 10000, id(&order));
    app.stripe_webhook(&shop.slug, &event, secrets::STRIPE_WEBHOOK_SECRET, None).await;
    // Its job is gone (purged, or lost with a restored backup).
    execute(&app, "DELETE FROM jobs WHERE kind = 'payments.apply_webhook'").await;
    app.run_jobs().await;
    assert_eq!(order_state(&app, &owner.token, id(&order)).await["payment_status"], "unpaid", "nothing applied it");
    let requeued = consign_db::payments::requeue_stuck(app.db(), Timestamp::now().plus_seconds(60)).await.unwrap();
    assert_eq!(requeued, 1);
    app.run_jobs().await;
    assert_eq!(order_state(&app, &owner.token, id(&order)).await["payment_status"], "paid");
    assert_eq!(consign_db::payments::requeue_stuck(app.db(), Timestamp::now().plus_seconds(60)).await.unwrap(), 0);
}

// ---------------------------------------------------------------------------
// M10: provider calls anonymous callers can cause

#[tokio::test]
async fn paypal_tokens_are_reused_until_they_expire() {
    let (app, providers) = spawn_with_providers().await;
    let (_owner, shop) = shop(&app, "paypal").await;
    let body = json!({"id": "WH-FAKE", "event_type": "PAYMENT.CAPTURE.COMPLETED", "resource": {}});
    for _ in 0..20 {
        let sent = app.paypal_webhook(&shop.slug, &body, true).await;
        assert_eq!(sent.status, StatusCode::UNAUTHORIZED, "{}", sent.text);
    }
    assert_eq!(providers.requests("/v1/oauth2/token").len(), 1, "one token for every call");
    assert_eq!(providers.requests("/v1/notifications/verify-webhook-signature").len(), 20);
}

#[tokio::test]
async fn an_order_makes_at_most_ten_payment_attempts() {
    let (app, providers) = spawn_with_providers().await;
    let (_owner, shop) = shop(&app, "stripe").await;
    let mut body = checkout_body(&[("MUG", 1)], "casey@example.com");
    body["payment_provider"] = json!("stripe");
    let placed = app.post_anonymous(&format!("/api/v1/storefront/{}/checkout", shop.slug), body).await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.text);
    let order_id = id(&placed.body["order"]).to_owned();
    let token = placed.body["order_access_token"].as_str().unwrap().to_owned();
    for attempt in 2..=10 {
        let retried = app
            .post(&format!("/api/v1/orders/{order_id}/payment-attempts"), &token, json!({"provider": "stripe"}))
            .await;
        assert_eq!(retried.status, StatusCode::CREATED, "attempt {attempt}: {}", retried.text);
    }
    let refused =
        app.post(&format!("/api/v1/orders/{order_id}/payment-attempts"), &token, json!({"provider": "stripe"})).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.text);
    assert_eq!(providers.requests("/v1/payment_intents").len(), 10);
}

/// Cancels a paid order, lets its refund time out after the provider made
/// it, then runs the job again: the provider answers the first refund.
async fn refund_times_out_then_retries(app: &TestApp, providers: &Providers, owner: &TestUser, order: &Value) {
    let cancelled = app
        .post(&format!("/api/v1/orders/{}/cancel", id(order)), &owner.token, json!({"reason": "customer asked"}))
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.text);
    providers.answer_refunds_late(true);
    app.run_jobs().await;
    providers.answer_refunds_late(false);
    make_queued_jobs_due(app).await;
    app.run_jobs().await;
    assert_eq!(order_state(app, &owner.token, id(order)).await["payment_status"], "refunded");
}

#[tokio::test]
async fn stripe_and_paypal_refunds_that_timed_out_are_answered_again_not_made_again() {
    let (app, providers) = spawn_with_timeout(Duration::from_secs(2)).await;
    let (owner, shop) = shop(&app, "stripe").await;
    let order = paid_stripe_order(&app, &shop).await;
    refund_times_out_then_retries(&app, &providers, &owner, &order).await;
    let sent = providers.requests("/v1/refunds");
    assert_eq!(sent.len(), 2, "sent again after the timeout");
    assert_eq!(sent[0].headers.get("idempotency-key"), sent[1].headers.get("idempotency-key"));
    assert_eq!(providers.refunds_made().len(), 1);

    assert_eq!(app.set_provider(&owner.token, &shop.brand_id, "paypal").await.status, StatusCode::OK);
    let (order, payment, _) = checkout_with(&app, &shop, &[("MUG", 1)], "paypal").await;
    let approved = json!({"id": "WH-APPROVED-LATE", "event_type": "CHECKOUT.ORDER.APPROVED",
                          "resource": {"id": payment["paypal_order_id"]}});
    assert_eq!(app.paypal_webhook(&shop.slug, &approved, false).await.status, StatusCode::OK);
    app.run_jobs().await;
    assert_eq!(order_state(&app, &owner.token, id(&order)).await["payment_status"], "paid");
    refund_times_out_then_retries(&app, &providers, &owner, &order).await;
    let sent = providers.requests("/v2/payments/captures/");
    assert_eq!(sent.len(), 2, "sent again after the timeout");
    assert_eq!(sent[0].headers.get("paypal-request-id"), sent[1].headers.get("paypal-request-id"));
    assert_eq!(providers.refunds_made().len(), 2, "one Stripe refund, one PayPal refund");
}

#[tokio::test]
async fn consign_admin_jobs_requeue_dead_puts_a_dead_refund_back_and_it_is_sent() {
    let (app, providers) = spawn_with_providers().await;
    let (owner, shop) = shop(&app, "stripe").await;
    let order = paid_stripe_order(&app, &shop).await;
    let job = refund_job_that_died(&app, &providers, &owner, &order).await;
    providers.fail_next(0);

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_consign"))
        .args(["admin", "--database-url", &app.test_db.url, "jobs", "requeue", "--dead"])
        .output()
        .expect("run consign admin jobs requeue");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("Requeued 1 job(s)."));
    assert_eq!(consign_db::jobs::get(app.db(), job.id).await.unwrap().status, consign_db::jobs::JobStatus::Queued);
    app.run_jobs().await;
    assert_eq!(order_state(&app, &owner.token, id(&order)).await["payment_status"], "refunded");
    assert_eq!(providers.refunds_made().len(), 1);
}

#[tokio::test]
async fn a_money_job_that_gives_up_reaches_staff_live_by_email_and_on_every_staff_page() {
    use consign_channels::{ChannelsConfig, EmailConfig};
    use consign_testkit::providers::smtp::SmtpServer;

    let smtp = SmtpServer::start().await;
    let providers = Providers::start().await;
    let channels = ChannelsConfig {
        email: Some(EmailConfig {
            smtp_url: smtp.url.clone(),
            from: "support@consign.test".into(),
            inbound_domain: "in.consign.test".into(),
            mailgun_signing_key: None,
        }),
        public_base_url: Some("https://consign.test".into()),
        max_delivery_attempts: 3,
        ..ChannelsConfig::default()
    };
    let config = WebConfig {
        channels: std::sync::Arc::new(channels),
        rate_limits: consign_web::auth::rate_limit::RateLimits::unlimited(),
        ..WebConfig::default()
    };
    let app =
        TestApp::spawn_with_gateway(TestDb::new().await, config, consign_testkit::test_gateway(providers.endpoints()))
            .await;
    let (owner, shop) = shop(&app, "stripe").await;
    let order = paid_stripe_order(&app, &shop).await;
    smtp.take();
    let mut staff_page = PageClient::signed_in(&app, &owner.email, &owner.password).await;
    let orders_page = staff_page.get("/admin/orders").await;
    assert!(orders_page.text.contains("hx-get=\"/admin/alerts/badge\""), "every staff page counts alerts");
    assert!(!staff_page.get("/admin/alerts/badge").await.text.contains("to act on"), "no alert yet");
    let mut socket = crate::live::connect(&app, &owner.token, false, None).await;

    refund_job_that_died(&app, &providers, &owner, &order).await;

    let raised = loop {
        let event = crate::live::next_event(&mut socket).await;
        if event["type"] == "staff_alert.raised" {
            break event;
        }
    };
    assert!(raised["payload"]["message"].as_str().unwrap().contains("could not be sent to stripe"), "{raised}");
    let badge = staff_page.get("/admin/alerts/badge").await;
    assert!(badge.text.contains("1 alert to act on"), "{}", badge.text);

    // The customer is told of the cancellation; staff of the alert.
    let to_staff = || -> Vec<_> {
        smtp.received()
            .into_iter()
            .filter(|mail| mail.header("To").unwrap_or_default().contains(&owner.email))
            .collect()
    };
    // The alert's email job ran with the refund's last attempt; the SMTP
    // server has the message once the job is done.
    app.run_jobs().await;
    let mails = to_staff();
    assert_eq!(mails.len(), 1, "one email to the brand's one staff member");
    assert!(
        mails[0].header("Subject").unwrap_or_default().contains("Action needed at"),
        "{:?}",
        mails[0].header("Subject")
    );
    assert!(mails[0].body().contains("could not be sent to stripe"));
    assert!(mails[0].body().contains("https://consign.test/admin"));

    let dashboard = staff_page.get("/admin").await;
    let marker = "action=\"/admin/alerts/";
    let start = dashboard.text.find(marker).expect("a resolve form") + marker.len();
    let alert_id: String = dashboard.text[start..].chars().take_while(|c| *c != '/').collect();
    staff_page.post_and_follow(&format!("/admin/alerts/{alert_id}/resolve"), &[]).await;
    assert!(!staff_page.get("/admin/alerts/badge").await.text.contains("to act on"), "resolved alerts are not counted");
}
