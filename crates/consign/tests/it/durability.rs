//! Nothing is acknowledged before it is durable. A burst of checkouts runs
//! against the real binary, which is killed with SIGKILL in the middle of
//! it; after a restart on the same database every checkout that was
//! answered 201 is there, with its number, its lines and its stock hold,
//! and the stock invariants hold.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use consign_testkit::{Sku, TestApp, checkout_body};
use reqwest::StatusCode;
use serde_json::Value;

use crate::demo::ServeProcess;

/// Clients checking out at once.
const CLIENTS: usize = 16;

/// Acknowledged checkouts before the kill.
const KILL_AFTER: usize = 150;

#[tokio::test]
async fn every_checkout_answered_201_survives_a_kill_9_of_the_server() {
    // The brand is made through an in-process server on the same database;
    // the binary shares its master key, so it opens the same instance
    // secrets (the staff token stays valid across the restart).
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    app.stocked_brand(&owner, "acme", 1, &[Sku { sku: "MUG", price: 1500, stock: &[100_000] }]).await;
    let env = [
        ("CONSIGN_MASTER_KEY", app.test_db.master_key.as_str()),
        ("CONSIGN_CHECKOUT_LIMIT_PER_IP", "off"),
        ("CONSIGN_CHECKOUT_LIMIT_PER_EMAIL", "off"),
    ];
    let mut server = ServeProcess::start_with_env(&app.test_db.url, &[], &env);

    let acknowledged: Arc<Mutex<Vec<Value>>> = Arc::default();
    let (count, mut counted) = tokio::sync::watch::channel(0usize);
    let count = Arc::new(count);
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = format!("{}/api/v1/storefront/acme/checkout", server.address);
    let mut burst = tokio::task::JoinSet::new();
    for n in 0..CLIENTS {
        let (client, url, acknowledged, count) = (client.clone(), url.clone(), acknowledged.clone(), count.clone());
        burst.spawn(async move {
            for attempt in 0.. {
                let body = checkout_body(&[("MUG", 1)], &format!("buyer{n}-{attempt}@example.com"));
                // Once the server is gone every call fails: the client stops.
                let Ok(answer) = client.post(&url).json(&body).send().await else { return };
                if answer.status() != StatusCode::CREATED {
                    continue;
                }
                let Ok(body) = answer.json::<Value>().await else { return };
                let mut acknowledged = acknowledged.lock().unwrap();
                acknowledged.push(body["order"].clone());
                count.send_replace(acknowledged.len());
            }
        });
    }
    tokio::time::timeout(std::time::Duration::from_secs(60), counted.wait_for(|n| *n >= KILL_AFTER))
        .await
        .unwrap_or_else(|_| panic!("the burst never reached {KILL_AFTER} checkouts"))
        .unwrap();
    // Killed while the clients are still sending.
    server.kill_9();
    while burst.join_next().await.is_some() {}
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= KILL_AFTER);

    let restarted = ServeProcess::start_with_env(&app.test_db.url, &[], &env);
    let mut numbers = HashSet::new();
    for order in &acknowledged {
        let id = order["id"].as_str().unwrap();
        let found = client
            .get(format!("{}/api/v1/orders/{id}", restarted.address))
            .bearer_auth(&owner.token)
            .send()
            .await
            .unwrap();
        assert_eq!(found.status(), StatusCode::OK, "acknowledged order {id} was lost");
        let found: Value = found.json().await.unwrap();
        assert_eq!(found["number"], order["number"]);
        assert_eq!(found["total"], order["total"]);
        assert_eq!(found["items"].as_array().map(Vec::len), Some(1), "{found}");
        assert!(numbers.insert(found["number"].to_string()), "numbers are unique: {}", found["number"]);
    }
    app.assert_stock_invariants().await;
}
