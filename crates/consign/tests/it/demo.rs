//! The demo data `consign seed` (and `serve` on an empty database) loads.

use consign_testkit::{TestApp, TestDb};
use consign_web::WebConfig;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn seed_loads_a_living_demo_with_an_order_in_every_state() {
    let test_db = TestDb::new().await;
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_consign"))
        .args(["seed", "--database-url", &test_db.url])
        .output()
        .expect("run consign seed");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("ops@northwind.example"));

    let app = TestApp::spawn_on(test_db, WebConfig::default()).await;
    let login = app
        .post_anonymous("/api/v1/auth/login", json!({"email": "ops@northwind.example", "password": "consign-demo"}))
        .await;
    assert_eq!(login.status, StatusCode::OK);
    let token = login.body["access_token"].as_str().unwrap();
    let orders = app.get("/api/v1/orders?limit=200", token).await;
    let states: Vec<(String, String, String)> = orders.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let field = |name: &str| o[name].as_str().unwrap().to_owned();
            (field("status"), field("payment_status"), field("fulfillment_status"))
        })
        .collect();
    for status in ["open", "completed", "cancelled", "expired"] {
        assert!(states.iter().any(|s| s.0 == status), "no {status} order in {states:?}");
    }
    for fulfillment in ["unfulfilled", "partially_shipped", "shipped", "delivered"] {
        assert!(states.iter().any(|s| s.2 == fulfillment), "no {fulfillment} order in {states:?}");
    }
    let levels = app.get("/api/v1/inventory/levels?limit=200", token).await;
    assert!(levels.body["data"].as_array().unwrap().len() >= 18, "stock in two warehouses");
    app.assert_stock_invariants().await;

    // Seeding again changes nothing.
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_consign"))
        .args(["seed", "--database-url", &app.test_db.url])
        .output()
        .expect("run consign seed again");
    assert!(String::from_utf8_lossy(&again.stdout).contains("already there"));
}
