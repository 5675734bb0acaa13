//! Payments through local providers: checkout with Stripe, Razorpay and
//! PayPal, what Consign sent them, verified webhooks applied exactly once in
//! any order, refunds (also concurrent), cancel and edits that settle their
//! money, credentials that never come back out, and a crash between
//! accepting a webhook and applying it.

use consign_testkit::providers::payment_apis::{Providers, Recorded, secrets, stripe_events};
use consign_testkit::{Sku, StockedBrand, TestApp, TestDb, TestUser, checkout_body, test_gateway};
use consign_web::WebConfig;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub(crate) async fn spawn_with_providers() -> (TestApp, Providers) {
    let providers = Providers::start().await;
    // Some tests here place dozens of orders for one email from one address.
    let config =
        WebConfig { rate_limits: consign_web::auth::rate_limit::RateLimits::unlimited(), ..WebConfig::default() };
    let app = TestApp::spawn_with_gateway(TestDb::new().await, config, test_gateway(providers.endpoints())).await;
    (app, providers)
}

pub(crate) async fn shop(app: &TestApp, provider: &str) -> (TestUser, StockedBrand) {
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let shop = app
        .stocked_brand(
            &owner,
            "acme",
            1,
            &[Sku { sku: "TENT", price: 10000, stock: &[500] }, Sku { sku: "MUG", price: 1500, stock: &[500] }],
        )
        .await;
    if provider != "manual" {
        let set = app.set_provider(&owner.token, &shop.brand_id, provider).await;
        assert_eq!(set.status, StatusCode::OK, "{}", set.text);
    }
    (owner, shop)
}

/// A storefront checkout paying with `provider`: (order, payment, token).
pub(crate) async fn checkout_with(
    app: &TestApp,
    shop: &StockedBrand,
    lines: &[(&str, i64)],
    provider: &str,
) -> (Value, Value, String) {
    let mut body = checkout_body(lines, "casey@example.com");
    body["payment_provider"] = json!(provider);
    let placed = app.post_anonymous(&format!("/api/v1/storefront/{}/checkout", shop.slug), body).await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.text);
    (
        placed.body["order"].clone(),
        placed.body["payment"].clone(),
        placed.body["order_access_token"].as_str().unwrap().to_owned(),
    )
}

fn id(value: &Value) -> &str {
    value["id"].as_str().unwrap()
}

async fn order(app: &TestApp, token: &str, order_id: &str) -> Value {
    let got = app.get(&format!("/api/v1/orders/{order_id}"), token).await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.text);
    got.body
}

async fn ledger(app: &TestApp, token: &str, order_id: &str) -> Vec<Value> {
    let got = app.get(&format!("/api/v1/orders/{order_id}/payments"), token).await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.text);
    got.body["data"].as_array().unwrap().clone()
}

fn amount(order: &Value, field: &str) -> i64 {
    order[field]["amount"].as_i64().unwrap()
}

/// Sends a Stripe event signed with the brand's webhook secret; expects 200.
async fn stripe_event(app: &TestApp, slug: &str, event: &Value) -> Value {
    let sent = app.stripe_webhook(slug, event, secrets::STRIPE_WEBHOOK_SECRET, None).await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.text);
    sent.body
}

fn single(requests: Vec<Recorded>) -> Recorded {
    assert_eq!(requests.len(), 1, "{requests:#?}");
    requests.into_iter().next().unwrap()
}

#[tokio::test]
async fn stripe_checkout_sends_ids_amount_and_idempotency_key_and_answers_the_client_secret() {
    let (app, providers) = spawn_with_providers().await;
    let (_owner, shop) = shop(&app, "stripe").await;
    let (order, payment, token) = checkout_with(&app, &shop, &[("TENT", 1), ("MUG", 2)], "stripe").await;

    assert_eq!(payment["provider"], "stripe");
    assert_eq!(payment["status"], "requires_action");
    assert_eq!(payment["client_secret"], "pi_1_secret_local");
    assert_eq!(payment["publishable_key"], "pk_test_consign");
    assert_eq!(payment["amount"]["amount"], 13000);
    let sent = single(providers.requests("/v1/payment_intents"));
    assert_eq!(sent.form("amount").as_deref(), Some("13000"), "minor units");
    assert_eq!(sent.form("currency").as_deref(), Some("usd"));
    assert_eq!(sent.form("metadata[order_id]").as_deref(), order["id"].as_str());
    assert_eq!(sent.form("metadata[brand_id]").as_deref(), Some(shop.brand_id.as_str()));
    assert_eq!(sent.form("metadata[brand_slug]").as_deref(), Some("acme"));
    assert_eq!(sent.headers.get("idempotency-key").map(String::as_str), payment["attempt_id"].as_str());
    assert_eq!(sent.headers.get("authorization").unwrap(), &format!("Bearer {}", secrets::STRIPE_SECRET_KEY));

    // The customer sees the attempt with the order access token.
    let attempts = app.get(&format!("/api/v1/orders/{}/payment-attempts", id(&order)), &token).await;
    assert_eq!(attempts.status, StatusCode::OK, "{}", attempts.text);
    assert_eq!(attempts.body["data"][0]["provider_reference"], "pi_1");
    assert_eq!(attempts.body["data"][0]["status"], "requires_action");
}

#[tokio::test]
async fn a_provider_the_brand_has_not_set_up_is_refused_before_any_order_is_placed() {
    let (app, providers) = spawn_with_providers().await;
    let (owner, shop) = shop(&app, "manual").await;
    let mut body = checkout_body(&[("TENT", 1)], "casey@example.com");
    body["payment_provider"] = json!("stripe");
    let refused = app.post_anonymous("/api/v1/storefront/acme/checkout", body.clone()).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.text);
    assert_eq!(refused.body["errors"][0]["field"], "payment_provider");
    body["payment_provider"] = json!("bitcoin");
    let unknown = app.post_anonymous("/api/v1/storefront/acme/checkout", body).await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    let orders = app.get(&format!("/api/v1/orders?brand_id={}", shop.brand_id), &owner.token).await;
    assert_eq!(orders.body["data"].as_array().unwrap().len(), 0);
    assert!(providers.requests("/").is_empty());
}

#[tokio::test]
async fn a_provider_outage_at_checkout_leaves_a_failed_attempt_the_customer_can_retry() {
    let (app, providers) = spawn_with_providers().await;
    let (_owner, shop) = shop(&app, "stripe").await;
    providers.fail_next(1);
    let (order, payment, token) = checkout_with(&app, &shop, &[("TENT", 1)], "stripe").await;
    assert_eq!(payment["status"], "failed", "{payment}");
    assert!(payment["error"].as_str().unwrap().contains("unavailable"), "{payment}");
    let retried = app
        .post(&format!("/api/v1/orders/{}/payment-attempts", id(&order)), &token, json!({"provider": "stripe"}))
        .await;
    assert_eq!(retried.status, StatusCode::CREATED, "{}", retried.text);
    assert_eq!(retried.body["status"], "requires_action");
    assert_ne!(retried.body["attempt_id"], payment["attempt_id"], "a retry is a new attempt");
    let attempts = app.get(&format!("/api/v1/orders/{}/payment-attempts", id(&order)), &token).await;
    let statuses: Vec<&str> =
        attempts.body["data"].as_array().unwrap().iter().map(|a| a["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["failed", "requires_action"]);
}

#[tokio::test]
async fn a_stripe_payment_is_applied_once_however_often_its_webhook_arrives() {
    let (app, _providers) = spawn_with_providers().await;
    let (owner, shop) = shop(&app, "stripe").await;
    let (order, _payment, _token) = checkout_with(&app, &shop, &[("TENT", 2)], "stripe").await;
    let event = stripe_events::succeeded("evt_paid", "pi_1", 20000, id(&order));

    let first = stripe_event(&app, "acme", &event).await;
    assert_eq!(first["duplicate"], false);
    let again = stripe_event(&app, "acme", &event).await;
    assert_eq!(again["duplicate"], true);
    app.run_jobs().await;
    stripe_event(&app, "acme", &event).await;
    app.run_jobs().await;

    let paid = order_state(&app, &owner.token, id(&order)).await;
    assert_eq!(paid["payment_status"], "paid");
    assert_eq!(amount(&paid, "paid"), 20000);
    assert_eq!(amount(&paid, "outstanding"), 0);
    let entries = ledger(&app, &owner.token, id(&order)).await;
    assert_eq!(entries.len(), 1, "{entries:#?}");
    assert_eq!(entries[0]["provider_reference"], "pi_1");
    let attempts = app.get(&format!("/api/v1/orders/{}/payment-attempts", id(&order)), &owner.token).await;
    assert_eq!(attempts.body["data"][0]["status"], "succeeded");

    let timeline = app.get(&format!("/api/v1/orders/{}/timeline", id(&order)), &owner.token).await;
    let events = timeline.body["data"].as_array().unwrap();
    for kind in ["payment.captured", "order.paid"] {
        let found: Vec<&Value> = events.iter().filter(|e| e["type"] == kind).collect();
        assert_eq!(found.len(), 1, "{kind} once: {}", timeline.text);
        assert_eq!(found[0]["payload"]["order_id"], order["id"], "{kind} names its order");
    }
    let log = app.get("/api/v1/webhook-events?outcome=applied", &owner.token).await;
    assert_eq!(log.body["data"].as_array().unwrap().len(), 1, "{}", log.text);
    assert!(log.body["data"][0]["processed_at"].is_string());
}

async fn order_state(app: &TestApp, token: &str, order_id: &str) -> Value {
    order(app, token, order_id).await
}

#[tokio::test]
async fn forged_stale_or_unsigned_webhooks_are_refused_and_nothing_is_stored() {
    let (app, _providers) = spawn_with_providers().await;
    let (owner, shop) = shop(&app, "stripe").await;
    app.set_provider(&owner.token, &shop.brand_id, "razorpay").await;
    app.set_provider(&owner.token, &shop.brand_id, "paypal").await;
    let (order, _, _) = checkout_with(&app, &shop, &[("TENT", 1)], "stripe").await;
    // The checkout's own work (its customer notification) runs first, so
    // that the queue is empty before the webhooks arrive.
    app.run_jobs().await;
    let event = stripe_events::succeeded("evt_forged", "pi_1", 10000, id(&order));

    let wrong_secret = app.stripe_webhook("acme", &event, "whsec_attacker", None).await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let stale = app.stripe_webhook("acme", &event, secrets::STRIPE_WEBHOOK_SECRET, Some(now - 301)).await;
    let unsigned = app.send(app.client.post(app.url("/api/v1/webhooks/stripe/acme")).body(event.to_string())).await;
    // A body changed after signing.
    let signed = consign_payments::signature::stripe_header(
        secrets::STRIPE_WEBHOOK_SECRET.as_bytes(),
        now,
        event.to_string().as_bytes(),
    );
    let tampered = app
        .send(
            app.client
                .post(app.url("/api/v1/webhooks/stripe/acme"))
                .header("stripe-signature", signed)
                .body(event.to_string().replace("10000", "1")),
        )
        .await;
    let razorpay = app
        .razorpay_webhook("acme", "rzp_evt_1", &json!({"event": "payment.captured", "payload": {}}), "not-the-secret")
        .await;
    let paypal = app
        .paypal_webhook("acme", &json!({"id": "WH-1", "event_type": "PAYMENT.CAPTURE.COMPLETED", "resource": {}}), true)
        .await;
    for (name, response) in [
        ("wrong secret", wrong_secret),
        ("stale", stale),
        ("unsigned", unsigned),
        ("tampered", tampered),
        ("razorpay", razorpay),
        ("paypal", paypal),
    ] {
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{name}: {}", response.text);
        assert_eq!(response.code(), "signature_invalid", "{name}");
        assert_eq!(response.header("content-type"), Some("application/problem+json"));
    }
    let log = app.get("/api/v1/webhook-events", &owner.token).await;
    assert_eq!(log.body["data"].as_array().unwrap().len(), 0, "{}", log.text);
    assert_eq!(app.run_jobs().await, 0, "nothing was queued");
    assert_eq!(order_state(&app, &owner.token, id(&order)).await["payment_status"], "unpaid");
}

#[tokio::test]
async fn a_failed_payment_is_retried_with_a_new_attempt_on_the_same_order() {
    let (app, providers) = spawn_with_providers().await;
    let (owner, shop) = shop(&app, "stripe").await;
    let (order, first, token) = checkout_with(&app, &shop, &[("MUG", 1)], "stripe").await;
    stripe_event(&app, "acme", &stripe_events::failed("evt_fail", "pi_1", id(&order))).await;
    app.run_jobs().await;
    let failed = order_state(&app, &owner.token, id(&order)).await;
    assert_eq!(failed["payment_status"], "failed");

    let retry = app
        .post(&format!("/api/v1/orders/{}/payment-attempts", id(&order)), &token, json!({"provider": "stripe"}))
        .await;
    assert_eq!(retry.status, StatusCode::CREATED, "{}", retry.text);
    assert_eq!(retry.body["payment_intent_id"], "pi_2");
    assert_ne!(retry.body["attempt_id"], first["attempt_id"]);
    let keys: Vec<String> =
        providers.requests("/v1/payment_intents").iter().map(|r| r.headers["idempotency-key"].clone()).collect();
    assert_eq!(keys.len(), 2);
    assert_ne!(keys[0], keys[1]);

    stripe_event(&app, "acme", &stripe_events::succeeded("evt_ok", "pi_2", 1500, id(&order))).await;
    app.run_jobs().await;
    let paid = order_state(&app, &owner.token, id(&order)).await;
    assert_eq!(paid["payment_status"], "paid");
    let attempts = app.get(&format!("/api/v1/orders/{}/payment-attempts", id(&order)), &token).await;
    let statuses: Vec<&str> =
        attempts.body["data"].as_array().unwrap().iter().map(|a| a["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["failed", "succeeded"]);
    let timeline = app.get(&format!("/api/v1/orders/{}/timeline", id(&order)), &owner.token).await;
    let failed_event =
        timeline.body["data"].as_array().unwrap().iter().find(|e| e["type"] == "payment.failed").cloned();
    assert_eq!(failed_event.expect("payment.failed recorded")["payload"]["order_id"], order["id"]);
    // Nothing left to pay: no more attempts.
    let more = app
        .post(&format!("/api/v1/orders/{}/payment-attempts", id(&order)), &token, json!({"provider": "stripe"}))
        .await;
    assert_eq!(more.status, StatusCode::CONFLICT);
}

async fn paid_stripe_order(
    app: &TestApp,
    shop: &StockedBrand,
    lines: &[(&str, i64)],
    total: i64,
    intent: &str,
) -> Value {
    let (order, _, _) = checkout_with(app, shop, lines, "stripe").await;
    stripe_event(app, &shop.slug, &stripe_events::succeeded(&format!("evt_{intent}"), intent, total, id(&order))).await;
    app.run_jobs().await;
    order
}

#[tokio::test]
async fn cancelling_a_paid_order_refunds_through_the_provider_by_a_job() {
    let (app, providers) = spawn_with_providers().await;
    let (owner, shop) = shop(&app, "stripe").await;
    let order = paid_stripe_order(&app, &shop, &[("TENT", 1)], 10000, "pi_1").await;

    let cancelled = app
        .post(&format!("/api/v1/orders/{}/cancel", id(&order)), &owner.token, json!({"reason": "customer asked"}))
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.text);
    assert_eq!(amount(&cancelled.body, "refund_due"), 10000);
    assert!(providers.requests("/v1/refunds").is_empty(), "no provider call inside the request");
    let pending = ledger(&app, &owner.token, id(&order)).await;
    let refund = pending.iter().find(|e| e["kind"] == "refund").expect("a pending refund").clone();
    assert_eq!(refund["status"], "pending");

    app.run_jobs().await;
    let sent = single(providers.requests("/v1/refunds"));
    assert_eq!(sent.form("payment_intent").as_deref(), Some("pi_1"));
    assert_eq!(sent.form("amount").as_deref(), Some("10000"));
    assert_eq!(sent.headers.get("idempotency-key").map(String::as_str), refund["id"].as_str());
    assert_eq!(sent.form("metadata[order_id]").as_deref(), order["id"].as_str());
    let after = order_state(&app, &owner.token, id(&order)).await;
    assert_eq!(after["payment_status"], "refunded");
    assert_eq!(amount(&after, "refunded"), 10000);
    assert_eq!(amount(&after, "refund_due"), 0);

    // Stripe's own refund.updated for it changes nothing more.
    stripe_event(
        &app,
        "acme",
        &stripe_events::refund("evt_re", "re_2", "pi_1", 10000, refund["id"].as_str(), "succeeded"),
    )
    .await;
    app.run_jobs().await;
    assert_eq!(amount(&order_state(&app, &owner.token, id(&order)).await, "refunded"), 10000);
    let timeline = app.get(&format!("/api/v1/orders/{}/timeline", id(&order)), &owner.token).await;
    let refunded = timeline.body["data"].as_array().unwrap().iter().filter(|e| e["type"] == "order.refunded").count();
    assert_eq!(refunded, 1, "{}", timeline.text);
}

#[tokio::test]
async fn a_refund_the_provider_cannot_take_now_is_retried_and_never_sent_twice() {
    let (app, providers) = spawn_with_providers().await;
    let (owner, shop) = shop(&app, "stripe").await;
    let order = paid_stripe_order(&app, &shop, &[("TENT", 1)], 10000, "pi_1").await;
    let refund = app
        .post(
            &format!("/api/v1/orders/{}/refunds", id(&order)),
            &owner.token,
            json!({"amount": 2500, "reason": "dent"}),
        )
        .await;
    assert_eq!(refund.status, StatusCode::CREATED, "{}", refund.text);
    providers.fail_next(1);
    app.run_jobs().await;
    assert_eq!(providers.requests("/v1/refunds").len(), 1);
    assert_eq!(amount(&order_state(&app, &owner.token, id(&order)).await, "refunded"), 0, "not yet");
    // Due again after its backoff: run it as the worker would.
    let job =
        consign_db::jobs::kinds::SendRefund { refund_id: refund.body["refunds"][0].as_str().unwrap().parse().unwrap() };
    // Without the kind's dedupe key, which the first job holds.
    consign_db::jobs::enqueue(app.db(), consign_db::NewJob { dedupe_key: None, ..consign_db::NewJob::of(&job) })
        .await
        .unwrap();
    app.run_jobs().await;
    let sent = providers.requests("/v1/refunds");
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].headers["idempotency-key"], sent[1].headers["idempotency-key"]);
    let after = order_state(&app, &owner.token, id(&order)).await;
    assert_eq!(amount(&after, "refunded"), 2500);
    assert_eq!(after["payment_status"], "partially_refunded");
    assert_eq!(amount(&after, "total"), 7500, "a goodwill refund lowers what the customer pays");
    assert_eq!(amount(&after, "outstanding"), 0);
}

#[tokio::test]
async fn concurrent_refunds_never_exceed_what_was_captured() {
    let (app, _providers) = spawn_with_providers().await;
    let (owner, shop) = shop(&app, "stripe").await;
    let order = paid_stripe_order(&app, &shop, &[("TENT", 1)], 10000, "pi_1").await;
    let path = format!("/api/v1/orders/{}/refunds", id(&order));
    let requests =
        (0..8).map(|_| app.post(&path, &owner.token, json!({"amount": 3000, "reason": "race"}))).collect::<Vec<_>>();
    let answers = futures_util::future::join_all(requests).await;
    let accepted = answers.iter().filter(|a| a.status == StatusCode::CREATED).count();
    let refused = answers.iter().filter(|a| a.status == StatusCode::UNPROCESSABLE_ENTITY).count();
    assert_eq!((accepted, refused), (3, 5), "{:#?}", answers.iter().map(|a| &a.text).collect::<Vec<_>>());
    app.run_jobs().await;
    let entries = ledger(&app, &owner.token, id(&order)).await;
    let refunded: i64 = entries.iter().filter(|e| e["kind"] == "refund").map(|e| e["amount"].as_i64().unwrap()).sum();
    assert_eq!(refunded, 9000);
    let after = order_state(&app, &owner.token, id(&order)).await;
    assert_eq!(amount(&after, "refunded"), 9000);
    let too_much = app.post(&path, &owner.token, json!({"amount": 1001, "reason": "more"})).await;
    assert_eq!(too_much.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(too_much.body["errors"][0]["field"], "amount");
}

#[tokio::test]
async fn an_edit_that_raises_the_total_asks_for_the_difference_and_one_that_lowers_it_refunds() {
    let (app, providers) = spawn_with_providers().await;
    let (owner, shop) = shop(&app, "stripe").await;
    let order = paid_stripe_order(&app, &shop, &[("MUG", 2)], 3000, "pi_1").await;
    let items = format!("/api/v1/orders/{}/items", id(&order));

    let raised = app.post(&items, &owner.token, json!({"items": [{"sku": "MUG", "quantity": 4}]})).await;
    assert_eq!(raised.status, StatusCode::OK, "{}", raised.text);
    assert_eq!(amount(&raised.body, "total"), 6000);
    assert_eq!(amount(&raised.body, "outstanding"), 3000);
    assert_eq!(raised.body["payment_status"], "paid", "the status does not move backwards");
    let attempt = app
        .post(&format!("/api/v1/orders/{}/payment-attempts", id(&order)), &owner.token, json!({"provider": "stripe"}))
        .await;
    assert_eq!(attempt.status, StatusCode::CREATED, "{}", attempt.text);
    assert_eq!(attempt.body["amount"]["amount"], 3000, "the difference only");
    assert_eq!(providers.requests("/v1/payment_intents").last().unwrap().form("amount").as_deref(), Some("3000"));
    stripe_event(&app, "acme", &stripe_events::succeeded("evt_more", "pi_2", 3000, id(&order))).await;
    app.run_jobs().await;
    let covered = order_state(&app, &owner.token, id(&order)).await;
    assert_eq!((amount(&covered, "paid"), amount(&covered, "outstanding")), (6000, 0));

    let lowered = app.post(&items, &owner.token, json!({"items": [{"sku": "MUG", "quantity": 1}]})).await;
    assert_eq!(lowered.status, StatusCode::OK, "{}", lowered.text);
    assert_eq!(amount(&lowered.body, "refund_due"), 4500);
    app.run_jobs().await;
    let refunds = providers.requests("/v1/refunds");
    let refunded: i64 = refunds.iter().map(|r| r.form("amount").unwrap().parse::<i64>().unwrap()).sum();
    assert_eq!(refunded, 4500, "newest capture first, across captures");
    let settled = order_state(&app, &owner.token, id(&order)).await;
    assert_eq!(amount(&settled, "refunded"), 4500);
    assert_eq!(amount(&settled, "refund_due"), 0);
    assert_eq!(amount(&settled, "paid") - amount(&settled, "refunded"), amount(&settled, "total"));
}

#[tokio::test]
async fn razorpay_orders_carry_the_receipt_and_the_checkout_callback_is_checked_against_the_stored_order() {
    let (app, providers) = spawn_with_providers().await;
    let (owner, shop) = shop(&app, "razorpay").await;
    let (order, payment, token) = checkout_with(&app, &shop, &[("MUG", 1)], "razorpay").await;
    assert_eq!(payment["razorpay_order_id"], "order_1");
    assert_eq!(payment["key_id"], secrets::RAZORPAY_KEY_ID);
    let sent = single(providers.requests("/v1/orders")).json();
    assert_eq!(sent["amount"], 1500);
    assert_eq!(sent["currency"], "USD");
    assert_eq!(sent["receipt"], payment["attempt_id"]);
    assert_eq!(sent["notes"]["order_id"], order["id"]);
    assert_eq!(sent["notes"]["brand_id"], shop.brand_id.as_str());
    assert_eq!(sent["notes"]["brand_slug"], "acme");

    let callback = format!(
        "/api/v1/orders/{}/payment-attempts/{}/razorpay-callback",
        id(&order),
        payment["attempt_id"].as_str().unwrap()
    );
    let good = consign_payments::signature::hmac_hex(secrets::RAZORPAY_KEY_SECRET.as_bytes(), &[b"order_1|pay_9"]);
    let for_other_order =
        consign_payments::signature::hmac_hex(secrets::RAZORPAY_KEY_SECRET.as_bytes(), &[b"order_77|pay_9"]);
    let refused = app
        .post(&callback, &token, json!({"razorpay_payment_id": "pay_9", "razorpay_order_id": "order_77", "razorpay_signature": for_other_order}))
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.text);
    assert_eq!(refused.code(), "signature_invalid");
    let accepted = app
        .post(
            &callback,
            &token,
            json!({"razorpay_payment_id": "pay_9", "razorpay_order_id": "order_1", "razorpay_signature": good}),
        )
        .await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.text);

    // The money moves on Razorpay's signed webhook, de-duplicated by its event id.
    let captured = json!({"entity": "event", "event": "payment.captured", "payload": {"payment": {"entity": {
        "id": "pay_9", "order_id": "order_1", "amount": 1500, "currency": "INR", "notes": {"order_id": id(&order)}}}}});
    let mut in_usd = captured.clone();
    in_usd["payload"]["payment"]["entity"]["currency"] = json!("USD");
    for _ in 0..2 {
        let sent = app.razorpay_webhook("acme", "evt_rzp_1", &in_usd, secrets::RAZORPAY_WEBHOOK_SECRET).await;
        assert_eq!(sent.status, StatusCode::OK, "{}", sent.text);
    }
    app.run_jobs().await;
    let paid = order_state(&app, &owner.token, id(&order)).await;
    assert_eq!(paid["payment_status"], "paid");
    assert_eq!(ledger(&app, &owner.token, id(&order)).await.len(), 1);

    // A capture in another currency can never apply: parked and listed.
    let (other, _, _) = checkout_with(&app, &shop, &[("MUG", 1)], "razorpay").await;
    let mut wrong = captured.clone();
    wrong["payload"]["payment"]["entity"]["id"] = json!("pay_10");
    wrong["payload"]["payment"]["entity"]["order_id"] = json!("order_2");
    wrong["payload"]["payment"]["entity"]["notes"]["order_id"] = other["id"].clone();
    app.razorpay_webhook("acme", "evt_rzp_2", &wrong, secrets::RAZORPAY_WEBHOOK_SECRET).await;
    app.run_jobs().await;
    let parked = app.get("/api/v1/webhook-events?outcome=parked", &owner.token).await;
    assert_eq!(parked.body["data"].as_array().unwrap().len(), 1, "{}", parked.text);
    assert_eq!(parked.body["data"][0]["event_id"], "evt_rzp_2");
    assert_eq!(order_state(&app, &owner.token, id(&other)).await["payment_status"], "unpaid");

    // A refund through Razorpay.
    app.post(
        &format!("/api/v1/orders/{}/refunds", id(&order)),
        &owner.token,
        json!({"amount": 500, "reason": "chipped"}),
    )
    .await;
    app.run_jobs().await;
    let refund = single(providers.requests("/v1/payments/pay_9/refund")).json();
    assert_eq!(refund["amount"], 500);
    assert!(refund["receipt"].is_string());
}

#[tokio::test]
async fn paypal_orders_answer_an_approval_link_and_approval_captures_once() {
    let (app, providers) = spawn_with_providers().await;
    let (owner, shop) = shop(&app, "paypal").await;
    let (order, payment, _token) = checkout_with(&app, &shop, &[("TENT", 1), ("MUG", 1)], "paypal").await;
    assert_eq!(payment["paypal_order_id"], "PAYPAL-ORDER-2");
    assert!(payment["approval_url"].as_str().unwrap().contains("PAYPAL-ORDER-2"));
    let created = single(providers.requests("/v2/checkout/orders"));
    let unit = &created.json()["purchase_units"][0];
    assert_eq!(unit["amount"], json!({"currency_code": "USD", "value": "115.00"}), "decimal, not minor units");
    assert_eq!(unit["custom_id"], order["id"]);
    assert_eq!(unit["invoice_id"], payment["attempt_id"]);
    assert_eq!(unit["reference_id"], format!("brand:{}:acme", shop.brand_id));
    assert_eq!(created.headers.get("paypal-request-id").map(String::as_str), payment["attempt_id"].as_str());
    assert!(!providers.requests("/v1/oauth2/token").is_empty(), "client credentials first");

    let approved =
        json!({"id": "WH-APPROVED", "event_type": "CHECKOUT.ORDER.APPROVED", "resource": {"id": "PAYPAL-ORDER-2"}});
    let forged = app.paypal_webhook("acme", &approved, true).await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED, "{}", forged.text);
    let sent = app.paypal_webhook("acme", &approved, false).await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.text);
    app.run_jobs().await;
    let paid = order_state(&app, &owner.token, id(&order)).await;
    assert_eq!(paid["payment_status"], "paid", "{paid}");
    assert_eq!(amount(&paid, "paid"), 11500);
    let capture_id = ledger(&app, &owner.token, id(&order)).await[0]["provider_reference"].as_str().unwrap().to_owned();

    // PayPal's own PAYMENT.CAPTURE.COMPLETED for the same capture: no second payment.
    let completed = json!({"id": "WH-COMPLETED", "event_type": "PAYMENT.CAPTURE.COMPLETED", "resource": {
        "id": capture_id, "status": "COMPLETED", "amount": {"currency_code": "USD", "value": "115.00"},
        "custom_id": id(&order), "supplementary_data": {"related_ids": {"order_id": "PAYPAL-ORDER-2"}}}});
    assert_eq!(app.paypal_webhook("acme", &completed, false).await.status, StatusCode::OK);
    app.run_jobs().await;
    assert_eq!(ledger(&app, &owner.token, id(&order)).await.len(), 1);

    app.post(&format!("/api/v1/orders/{}/cancel", id(&order)), &owner.token, json!({"reason": "changed mind"})).await;
    app.run_jobs().await;
    let refund = single(providers.requests(&format!("/v2/payments/captures/{capture_id}/refund")));
    assert_eq!(refund.json()["amount"], json!({"currency_code": "USD", "value": "115.00"}));
    assert_eq!(order_state(&app, &owner.token, id(&order)).await["payment_status"], "refunded");
}

#[tokio::test]
async fn an_event_accepted_before_a_crash_is_applied_by_the_next_instance() {
    let providers = Providers::start().await;
    let gateway = test_gateway(providers.endpoints());
    let test_db = TestDb::new().await;
    let url = test_db.url.clone();
    let first = TestApp::spawn_with_gateway(test_db, WebConfig::default(), gateway.clone()).await;
    let (owner, shop) = shop(&first, "stripe").await;
    let (order, _, _) = checkout_with(&first, &shop, &[("TENT", 1)], "stripe").await;
    // Accepted and answered 200; no worker runs on this instance.
    stripe_event(&first, "acme", &stripe_events::succeeded("evt_crash", "pi_1", 10000, id(&order))).await;
    assert_eq!(order_state(&first, &owner.token, id(&order)).await["payment_status"], "unpaid");
    let second_db = first.test_db.another_connection().await;
    assert_eq!(second_db.url, url);

    // A new instance on the same database, with the same master key; the
    // first never ran a worker, so only what the database holds carries over.
    let second = TestApp::spawn_with_gateway(second_db, WebConfig::default(), gateway).await;
    assert!(second.run_jobs().await >= 1);
    let login =
        second.post_anonymous("/api/v1/auth/login", json!({"email": owner.email, "password": owner.password})).await;
    let token = login.body["access_token"].as_str().unwrap().to_owned();
    let after = order_state(&second, &token, id(&order)).await;
    assert_eq!(after["payment_status"], "paid");
    assert_eq!(amount(&after, "paid"), 10000);
}

#[tokio::test]
async fn credentials_are_write_only_sealed_and_never_shown() {
    let (app, _providers) = spawn_with_providers().await;
    let (owner, shop) = shop(&app, "manual").await;
    let set = app.set_provider(&owner.token, &shop.brand_id, "stripe").await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text);
    assert_eq!(set.body["provider"], "stripe");
    assert_eq!(set.body["public_id"], "pk_test_consign");
    let listed = app.get(&format!("/api/v1/brands/{}/payment-providers", shop.brand_id), &owner.token).await;
    let audit = app.get(&format!("/api/v1/audit-log?entity_id={}", shop.brand_id), &owner.token).await;
    for text in [&set.text, &listed.text, &audit.text] {
        assert!(!text.contains(secrets::STRIPE_SECRET_KEY) && !text.contains(secrets::STRIPE_WEBHOOK_SECRET), "{text}");
    }
    let row = consign_db::payments::sealed_credentials(app.db(), shop.brand_id.parse().unwrap(), "stripe")
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(row.key_id, "test1");
    let plaintext_hex = hex_of(secrets::STRIPE_SECRET_KEY);
    assert!(!row.ciphertext.contains(&plaintext_hex), "stored sealed, not in the clear");

    let missing = app
        .request(
            Method::PUT,
            &format!("/api/v1/brands/{}/payment-providers/stripe", shop.brand_id),
            Some(&owner.token),
            Some(&json!({"secret_key": "sk_x"})),
        )
        .await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(missing.body["errors"][0]["field"], "webhook_secret");
    assert!(!missing.text.contains("sk_x"));
    let unknown = app
        .request(
            Method::PUT,
            &format!("/api/v1/brands/{}/payment-providers/bitcoin", shop.brand_id),
            Some(&owner.token),
            Some(&json!({})),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let stranger = app.sign_up("mallory@evil.example", "merchant").await;
    let other = app.set_provider(&stranger.token, &shop.brand_id, "stripe").await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
}

fn hex_of(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn rotate_keys_reseals_credentials_under_the_newest_key_and_they_still_work() {
    let providers = Providers::start().await;
    let old = consign_payments::Keyring::generate_line("k1");
    let new = consign_payments::Keyring::generate_line("k2");
    let test_db = TestDb::new().await;
    let url = test_db.url.clone();
    let before = consign_testkit::test_gateway_with_keys(providers.endpoints(), &old);
    let app = TestApp::spawn_with_gateway(test_db, WebConfig::default(), before).await;
    let (_owner, shop) = shop(&app, "stripe").await;
    let brand_id = shop.brand_id.parse().unwrap();
    let sealed = |db: consign_db::Db| async move {
        consign_db::payments::sealed_credentials(&db, brand_id, "stripe").await.unwrap().unwrap()
    };
    assert_eq!(sealed(app.db().clone()).await.key_id, "k1");

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_consign"))
        .args(["admin", "rotate-keys"])
        .env("DATABASE_URL", &url)
        .env("CONSIGN_MASTER_KEY", format!("{old},{new}"))
        .env("CONSIGN_LOG", "warn")
        .output()
        .expect("run consign admin rotate-keys");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("Re-sealed 1 credential(s) under key k2"), "{stdout}");
    assert!(!stdout.contains(secrets::STRIPE_SECRET_KEY));
    let after = sealed(app.db().clone()).await;
    assert_eq!(after.key_id, "k2");

    // An instance holding only the new key takes Stripe payments.
    let second_db = app.test_db.another_connection().await;
    let newer = TestApp::spawn_with_gateway(
        second_db,
        WebConfig::default(),
        consign_testkit::test_gateway_with_keys(providers.endpoints(), &new),
    )
    .await;
    let (_, payment, _) = checkout_with(&newer, &shop, &[("MUG", 1)], "stripe").await;
    assert_eq!(payment["status"], "requires_action", "{payment}");
}

#[tokio::test]
async fn a_capture_that_arrives_after_the_order_was_cancelled_is_refunded_at_once() {
    let (app, providers) = spawn_with_providers().await;
    let (owner, shop) = shop(&app, "stripe").await;
    let (order, _, _) = checkout_with(&app, &shop, &[("TENT", 1)], "stripe").await;
    let cancelled =
        app.post(&format!("/api/v1/orders/{}/cancel", id(&order)), &owner.token, json!({"reason": "too slow"})).await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.text);
    stripe_event(&app, "acme", &stripe_events::succeeded("evt_late", "pi_1", 10000, id(&order))).await;
    app.run_jobs().await;
    let sent = single(providers.requests("/v1/refunds"));
    assert_eq!(sent.form("amount").as_deref(), Some("10000"));
    let after = order_state(&app, &owner.token, id(&order)).await;
    assert_eq!(after["status"], "cancelled");
    assert_eq!((amount(&after, "paid"), amount(&after, "refunded"), amount(&after, "refund_due")), (10000, 10000, 0));
    assert_eq!(after["payment_status"], "refunded");
}
