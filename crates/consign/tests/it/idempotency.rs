//! `Idempotency-Key` (SPEC §3): replay, body mismatch, in-flight requests,
//! and exactly one effect under concurrency, on one instance and across two
//! sharing a database.

use consign_testkit::{TestApp, TestResponse};
use consign_web::WebConfig;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn post_with_key(app: &TestApp, path: &str, token: &str, key: &str, body: &Value) -> TestResponse {
    app.send(app.client.post(app.url(path)).bearer_auth(token).header("idempotency-key", key).json(body)).await
}

async fn brand_count(app: &TestApp, token: &str) -> usize {
    app.get("/api/v1/brands?limit=200", token).await.body["data"].as_array().unwrap().len()
}

#[tokio::test]
async fn the_same_key_and_body_replays_the_first_response() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let body = json!({"name": "Acme", "slug": "acme", "currency": "USD"});
    let first = post_with_key(&app, "/api/v1/brands", &owner.token, "key-1", &body).await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(first.header("idempotent-replayed"), None);
    let second = post_with_key(&app, "/api/v1/brands", &owner.token, "key-1", &body).await;
    assert_eq!(second.status, StatusCode::CREATED);
    assert_eq!(second.header("idempotent-replayed"), Some("true"));
    assert_eq!(second.text, first.text, "the replay is the first body, byte for byte");
    assert_eq!(brand_count(&app, &owner.token).await, 1);
}

#[tokio::test]
async fn the_same_key_with_another_body_is_refused() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let first = post_with_key(
        &app,
        "/api/v1/brands",
        &owner.token,
        "key-1",
        &json!({"name": "A", "slug": "aaa", "currency": "USD"}),
    )
    .await;
    assert_eq!(first.status, StatusCode::CREATED);
    let other = post_with_key(
        &app,
        "/api/v1/brands",
        &owner.token,
        "key-1",
        &json!({"name": "B", "slug": "bbb", "currency": "USD"}),
    )
    .await;
    assert_eq!(other.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(other.code(), "idempotency_key_reused");
    assert_eq!(brand_count(&app, &owner.token).await, 1);
}

#[tokio::test]
async fn errors_are_replayed_too_but_keys_are_per_tenant() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let invalid = json!({"name": "", "slug": "x", "currency": "usd"});
    let first = post_with_key(&app, "/api/v1/brands", &owner.token, "key-1", &invalid).await;
    assert_eq!(first.status, StatusCode::UNPROCESSABLE_ENTITY);
    let again = post_with_key(&app, "/api/v1/brands", &owner.token, "key-1", &invalid).await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));

    // Another tenant may use the same key for its own request.
    let other = app.sign_up("owner@other.example", "merchant").await;
    let theirs = post_with_key(
        &app,
        "/api/v1/brands",
        &other.token,
        "key-1",
        &json!({"name": "O", "slug": "other", "currency": "USD"}),
    )
    .await;
    assert_eq!(theirs.status, StatusCode::CREATED);
    assert_eq!(theirs.header("idempotent-replayed"), None);
}

async fn race(apps: &[&TestApp], token: &str) -> Vec<TestResponse> {
    let body = json!({"name": "Race", "slug": "race", "currency": "USD"});
    let requests = (0..20).map(|i| post_with_key(apps[i % apps.len()], "/api/v1/brands", token, "race-key", &body));
    futures_util::future::join_all(requests).await
}

fn assert_one_effect(responses: &[TestResponse]) {
    let mut created_ids = Vec::new();
    for response in responses {
        match response.status {
            StatusCode::CREATED => created_ids.push(response.body["id"].as_str().unwrap().to_owned()),
            StatusCode::CONFLICT => assert_eq!(response.code(), "idempotency_request_in_progress", "{}", response.text),
            other => panic!("unexpected {other}: {}", response.text),
        }
    }
    assert!(!created_ids.is_empty());
    created_ids.dedup();
    assert_eq!(created_ids.len(), 1, "every success is the same brand");
}

#[tokio::test]
async fn twenty_concurrent_requests_with_one_key_have_one_effect() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let responses = race(&[&app], &owner.token).await;
    assert_one_effect(&responses);
    assert_eq!(brand_count(&app, &owner.token).await, 1);
}

#[tokio::test]
async fn one_key_has_one_effect_across_two_instances_sharing_a_database() {
    let first = TestApp::spawn().await;
    let second = TestApp::spawn_on(first.test_db.another_connection().await, WebConfig::default()).await;
    let owner = first.sign_up("owner@acme.example", "merchant").await;
    // A token from one instance works on the other: they share the signing key.
    assert_eq!(second.get("/api/v1/me", &owner.token).await.status, StatusCode::OK);
    let responses = race(&[&first, &second], &owner.token).await;
    assert_one_effect(&responses);
    assert_eq!(brand_count(&first, &owner.token).await, 1);
    let replay = post_with_key(
        &second,
        "/api/v1/brands",
        &owner.token,
        "race-key",
        &json!({"name": "Race", "slug": "race", "currency": "USD"}),
    )
    .await;
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
}
