//! Order access tokens (`cot_…`): staff rotate them, and they lapse some
//! time after the order closed, while links stay valid as long as the
//! order is live.

use consign_testkit::{Sku, TestApp};
use reqwest::StatusCode;
use serde_json::json;

/// Sets an order's status and last change, as time passing would.
async fn age_order(app: &TestApp, order_id: &str, status: &str, days_ago: u64) {
    let at = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap()
        - std::time::Duration::from_secs(days_ago * 24 * 60 * 60))
    .as_micros() as i64;
    let sql = "UPDATE orders SET status = $1, updated_at = $2 WHERE id = $3";
    match app.db().pool() {
        consign_db::Pool::Sqlite { writer, .. } => {
            sqlx::query(sql).bind(status).bind(at).bind(order_id).execute(writer).await.unwrap();
        }
        consign_db::Pool::Postgres(pool) => {
            sqlx::query(sql).bind(status).bind(at).bind(order_id).execute(pool).await.unwrap();
        }
    }
}

#[tokio::test]
async fn staff_rotate_an_order_access_token_and_the_old_one_stops_working() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let shop = app.stocked_brand(&owner, "acme", 1, &[Sku { sku: "MUG", price: 1500, stock: &[10] }]).await;
    let placed = app.checkout(&shop.slug, &[("MUG", 1)], "casey@example.com").await;
    let order_id = placed.body["order"]["id"].as_str().unwrap().to_owned();
    let old = placed.body["order_access_token"].as_str().unwrap().to_owned();
    let order_path = format!("/api/v1/orders/{order_id}");
    let rotate_path = format!("/api/v1/orders/{order_id}/access-token");
    assert_eq!(app.get(&order_path, &old).await.status, StatusCode::OK);

    let by_customer = app.post(&rotate_path, &old, json!({})).await;
    assert_eq!(by_customer.status, StatusCode::FORBIDDEN, "{}", by_customer.text);
    let stranger = app.sign_up("eve@elsewhere.example", "merchant").await;
    assert_eq!(app.post(&rotate_path, &stranger.token, json!({})).await.status, StatusCode::NOT_FOUND);

    let rotated = app.post(&rotate_path, &owner.token, json!({})).await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    let new = rotated.body["order_access_token"].as_str().unwrap().to_owned();
    assert!(new.starts_with("cot_") && new != old, "{new}");
    let refused = app.get(&order_path, &old).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.text);
    assert_eq!(app.get(&order_path, &new).await.status, StatusCode::OK);

    let again = app.post(&rotate_path, &owner.token, json!({})).await;
    let newest = again.body["order_access_token"].as_str().unwrap().to_owned();
    assert_ne!(newest, new);
    assert_eq!(app.get(&order_path, &new).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get(&order_path, &newest).await.status, StatusCode::OK);
}

#[tokio::test]
async fn an_order_access_token_lapses_ninety_days_after_the_order_closed() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let shop = app.stocked_brand(&owner, "acme", 1, &[Sku { sku: "MUG", price: 1500, stock: &[10] }]).await;
    let placed = app.checkout(&shop.slug, &[("MUG", 1)], "casey@example.com").await;
    let order_id = placed.body["order"]["id"].as_str().unwrap().to_owned();
    let token = placed.body["order_access_token"].as_str().unwrap().to_owned();
    let order_path = format!("/api/v1/orders/{order_id}");

    // A live order's link holds however old it is.
    age_order(&app, &order_id, "open", 400).await;
    assert_eq!(app.get(&order_path, &token).await.status, StatusCode::OK);
    // A closed one's, for 90 days after its last change.
    age_order(&app, &order_id, "completed", 89).await;
    assert_eq!(app.get(&order_path, &token).await.status, StatusCode::OK);
    for status in ["completed", "cancelled", "expired"] {
        age_order(&app, &order_id, status, 91).await;
        let lapsed = app.get(&order_path, &token).await;
        assert_eq!(lapsed.status, StatusCode::UNAUTHORIZED, "{status}: {}", lapsed.text);
    }
    // Staff still see the order.
    assert_eq!(app.get(&order_path, &owner.token).await.status, StatusCode::OK);
}
