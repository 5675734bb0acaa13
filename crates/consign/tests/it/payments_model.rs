//! The money model as a whole: webhooks duplicated and shuffled end in the
//! state of their in-order, de-duplicated sequence; random sequences of
//! edits, payments, refunds and cancellations always leave amounts that add
//! up with the ledger.

use consign_testkit::TestApp;
use consign_testkit::providers::payment_apis::{secrets, stripe_events};
use proptest::prelude::*;
use rand::SeedableRng as _;
use rand::seq::SliceRandom as _;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::payments::{checkout_with, shop, spawn_with_providers};

/// What the events of one order are, in the order the provider sent them.
fn events_for(index: usize, total: i64, order_id: &str, rng: &mut rand::rngs::StdRng) -> Vec<Value> {
    let intent = format!("pi_{}", index + 1);
    let mut events = Vec::new();
    if rng.random_bool(0.4) {
        events.push(stripe_events::failed(&format!("evt_{index}_fail"), &intent, order_id));
    }
    if rng.random_bool(0.85) {
        events.push(stripe_events::succeeded(&format!("evt_{index}_paid"), &intent, total, order_id));
        let refunds = rng.random_range(0..=2);
        for (k, share) in [30, 20].into_iter().take(refunds).enumerate() {
            let amount = total * share / 100;
            events.push(stripe_events::refund(
                &format!("evt_{index}_refund_{k}"),
                &format!("re_{index}_{k}"),
                &intent,
                amount,
                None,
                "succeeded",
            ));
        }
        if rng.random_bool(0.2) {
            // A failure reported after the success.
            events.push(stripe_events::failed(&format!("evt_{index}_late_fail"), &intent, order_id));
        }
    }
    events
}

/// Everything the events can change, per order, in placing order.
async fn state(app: &TestApp, token: &str, order_ids: &[String]) -> Vec<Value> {
    let mut states = Vec::new();
    for order_id in order_ids {
        let order = app.get(&format!("/api/v1/orders/{order_id}"), token).await.body;
        let ledger = app.get(&format!("/api/v1/orders/{order_id}/payments"), token).await.body;
        let mut entries: Vec<Value> = ledger["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| json!([e["kind"], e["amount"], e["status"], e["provider_reference"]]))
            .collect();
        entries.sort_by_key(|e| e.to_string());
        let attempts = app.get(&format!("/api/v1/orders/{order_id}/payment-attempts"), token).await.body;
        let attempts: Vec<Value> = attempts["data"].as_array().unwrap().iter().map(|a| a["status"].clone()).collect();
        states.push(json!({
            "status": order["status"], "payment_status": order["payment_status"], "total": order["total"],
            "paid": order["paid"], "refunded": order["refunded"], "refund_due": order["refund_due"],
            "outstanding": order["outstanding"], "ledger": entries, "attempts": attempts,
        }));
    }
    states
}

async fn place_orders(app: &TestApp, count: usize) -> (String, Vec<(String, i64)>) {
    let (owner, shop) = shop(app, "stripe").await;
    let mut orders = Vec::new();
    for index in 0..count {
        let quantity = (index % 3 + 1) as i64;
        let (order, payment, _) = checkout_with(app, &shop, &[("MUG", quantity)], "stripe").await;
        assert_eq!(payment["payment_intent_id"], format!("pi_{}", index + 1));
        orders.push((order["id"].as_str().unwrap().to_owned(), order["total"]["amount"].as_i64().unwrap()));
    }
    (owner.token, orders)
}

async fn deliver(app: &TestApp, event: &Value) {
    let sent = app.stripe_webhook("acme", event, secrets::STRIPE_WEBHOOK_SECRET, None).await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.text);
}

#[tokio::test]
async fn a_thousand_duplicated_shuffled_events_end_in_the_state_of_the_in_order_sequence() {
    const ORDERS: usize = 30;
    const DELIVERIES: usize = 1000;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed_0005);

    // The reference: each event once, in order, applied before the next.
    let (reference, _reference_providers) = spawn_with_providers().await;
    let (reference_token, reference_orders) = place_orders(&reference, ORDERS).await;
    // The same events for the other instance: its local Stripe numbers its
    // PaymentIntents the same way, so only the order ids differ.
    let (shuffled, _shuffled_providers) = spawn_with_providers().await;
    let (shuffled_token, shuffled_orders) = place_orders(&shuffled, ORDERS).await;

    let mut in_order = Vec::new();
    let mut per_order_shuffled = Vec::new();
    for (index, ((reference_id, total), (shuffled_id, _))) in reference_orders.iter().zip(&shuffled_orders).enumerate()
    {
        let events = events_for(index, *total, reference_id, &mut rng);
        let rewritten: Vec<Value> = events
            .iter()
            .map(|e| serde_json::from_str(&e.to_string().replace(reference_id.as_str(), shuffled_id)).unwrap())
            .collect();
        in_order.extend(events);
        per_order_shuffled.extend(rewritten);
    }
    assert!(in_order.len() > ORDERS, "{} distinct events", in_order.len());

    for event in &in_order {
        deliver(&reference, event).await;
        reference.run_jobs().await;
    }

    let mut deliveries = per_order_shuffled.clone();
    while deliveries.len() < DELIVERIES {
        let copy = per_order_shuffled[rng.random_range(0..per_order_shuffled.len())].clone();
        deliveries.push(copy);
    }
    deliveries.shuffle(&mut rng);
    for event in &deliveries {
        deliver(&shuffled, event).await;
    }
    shuffled.run_jobs().await;

    let reference_ids: Vec<String> = reference_orders.into_iter().map(|(id, _)| id).collect();
    let shuffled_ids: Vec<String> = shuffled_orders.into_iter().map(|(id, _)| id).collect();
    let expected = state(&reference, &reference_token, &reference_ids).await;
    let actual = state(&shuffled, &shuffled_token, &shuffled_ids).await;
    for (index, (expected, actual)) in expected.iter().zip(&actual).enumerate() {
        assert_eq!(actual, expected, "order {index} differs");
    }
    // Every distinct event is in the log once, and none is left waiting.
    let log = shuffled.get("/api/v1/webhook-events?outcome=waiting", &shuffled_token).await;
    assert_eq!(log.body["data"].as_array().unwrap().len(), 0, "{}", log.text);
    let mut all = 0;
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/webhook-events?limit=200&cursor={c}"),
            None => "/api/v1/webhook-events?limit=200".to_owned(),
        };
        let page = shuffled.get(&path, &shuffled_token).await.body;
        all += page["data"].as_array().unwrap().len();
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(all, per_order_shuffled.len());
}

#[tokio::test]
async fn a_refund_that_arrives_before_its_capture_waits_and_then_applies() {
    let (app, _providers) = spawn_with_providers().await;
    let (token, orders) = place_orders(&app, 1).await;
    let (order_id, total) = &orders[0];
    deliver(&app, &stripe_events::refund("evt_r", "re_1", "pi_1", 1000, None, "succeeded")).await;
    app.run_jobs().await;
    let waiting = app.get("/api/v1/webhook-events?outcome=waiting", &token).await;
    assert_eq!(waiting.body["data"][0]["waiting_on"], "pi_1", "{}", waiting.text);
    deliver(&app, &stripe_events::succeeded("evt_p", "pi_1", *total, order_id)).await;
    app.run_jobs().await;
    let order = app.get(&format!("/api/v1/orders/{order_id}"), &token).await.body;
    assert_eq!(order["payment_status"], "partially_refunded");
    assert_eq!(order["refunded"]["amount"], 1000);
    let applied = app.get("/api/v1/webhook-events?outcome=applied", &token).await;
    assert_eq!(applied.body["data"].as_array().unwrap().len(), 2);
}

/// One step of a random order history.
#[derive(Clone, Debug)]
enum Step {
    /// Pay this percentage of what is outstanding (at least 1).
    Pay(i64),
    /// Refund this percentage of what can be refunded (at least 1).
    Refund(i64),
    /// Replace the items with this many mugs and tents.
    Edit(i64, i64),
    /// Cancel.
    Cancel,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (1i64..=100).prop_map(Step::Pay),
        2 => (1i64..=100).prop_map(Step::Refund),
        2 => (0i64..=3, 0i64..=2).prop_map(|(mugs, tents)| Step::Edit(mugs, tents)),
        1 => Just(Step::Cancel),
    ]
}

/// The amounts add up, and agree with the ledger.
async fn check(app: &TestApp, token: &str, order_id: &str) -> Result<(), String> {
    let order = app.get(&format!("/api/v1/orders/{order_id}"), token).await.body;
    let ledger = app.get(&format!("/api/v1/orders/{order_id}/payments"), token).await.body;
    let sum = |kind: &str, status: &str| -> i64 {
        ledger["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == kind && e["status"] == status)
            .map(|e| e["amount"].as_i64().unwrap())
            .sum()
    };
    let amount = |field: &str| order[field]["amount"].as_i64().unwrap();
    let (paid, refunded, total) = (amount("paid"), amount("refunded"), amount("total"));
    let (outstanding, refund_due) = (amount("outstanding"), amount("refund_due"));
    let due = if order["status"] == "cancelled" { 0 } else { total };
    let problems = [
        (paid == sum("payment", "captured"), "paid is the sum of captures"),
        (refunded == sum("refund", "succeeded"), "refunded is the sum of succeeded refunds"),
        (refunded <= paid, "never refunded more than captured"),
        (paid - refunded + outstanding - refund_due == due, "held + outstanding - refund_due = due"),
        (outstanding >= 0 && refund_due >= 0, "no negative amounts"),
        (outstanding == 0 || refund_due == 0, "owed one way at most"),
        (total >= 0, "the total is never negative"),
    ];
    match problems.iter().find(|(ok, _)| !ok) {
        Some((_, what)) => Err(format!("{what}: {order}")),
        None => Ok(()),
    }
}

async fn run_history(app: &TestApp, token: &str, steps: &[Step]) -> Result<(), String> {
    let placed = app.checkout("acme", &[("MUG", 2), ("TENT", 1)], "casey@example.com").await;
    let order_id = placed.body["order"]["id"].as_str().unwrap().to_owned();
    for step in steps {
        let order = app.get(&format!("/api/v1/orders/{order_id}"), token).await.body;
        let outstanding = order["outstanding"]["amount"].as_i64().unwrap();
        let refundable = order["paid"]["amount"].as_i64().unwrap() - order["refunded"]["amount"].as_i64().unwrap();
        let response = match step {
            Step::Pay(share) => {
                let amount = (outstanding * share / 100).max(1);
                app.post(
                    &format!("/api/v1/orders/{order_id}/payments"),
                    token,
                    json!({"amount": amount, "method": "manual"}),
                )
                .await
            }
            Step::Refund(share) => {
                let amount = (refundable * share / 100).max(1);
                app.post(
                    &format!("/api/v1/orders/{order_id}/refunds"),
                    token,
                    json!({"amount": amount, "reason": "test"}),
                )
                .await
            }
            Step::Edit(mugs, tents) => {
                let mut items = Vec::new();
                if *mugs > 0 {
                    items.push(json!({"sku": "MUG", "quantity": mugs}));
                }
                if *tents > 0 {
                    items.push(json!({"sku": "TENT", "quantity": tents}));
                }
                if items.is_empty() {
                    items.push(json!({"sku": "MUG", "quantity": 1}));
                }
                app.post(&format!("/api/v1/orders/{order_id}/items"), token, json!({"items": items})).await
            }
            Step::Cancel => {
                app.post(&format!("/api/v1/orders/{order_id}/cancel"), token, json!({"reason": "test"})).await
            }
        };
        // Refusals (paying a cancelled order, refunding nothing) are fine;
        // server errors are not.
        if response.status.is_server_error() {
            return Err(format!("{step:?} answered {}: {}", response.status, response.text));
        }
        check(app, token, &order_id).await.map_err(|e| format!("after {step:?}: {e}"))?;
    }
    Ok(())
}

#[test]
fn random_edits_payments_refunds_and_cancellations_always_add_up() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (app, _providers, token) = runtime.block_on(async {
        let (app, providers) = spawn_with_providers().await;
        let (owner, _shop) = shop(&app, "manual").await;
        (app, providers, owner.token)
    });
    let config = ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let result = runner.run(&proptest::collection::vec(step(), 1..10), |steps| {
        runtime.block_on(run_history(&app, &token, &steps)).map_err(TestCaseError::fail)
    });
    if let Err(error) = result {
        panic!("{error}");
    }
}
