//! `Idempotency-Key` (docs/api.md): replay, body mismatch, in-flight requests,
//! and exactly one effect under concurrency, on one instance and across two
//! sharing a database; keys per caller, sealed stored responses, and a
//! request cut off after it committed that is never run twice.

use std::time::Duration;

use consign_testkit::providers::payment_apis::Providers;
use consign_testkit::{Sku, TestApp, TestDb, TestResponse, checkout_body, test_gateway};
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

#[tokio::test]
async fn a_checkout_cut_off_after_it_committed_is_answered_from_its_first_run() {
    let providers = Providers::start().await;
    let gateway = test_gateway(providers.endpoints());
    let setup = TestApp::spawn_with_gateway(TestDb::new().await, WebConfig::default(), gateway.clone()).await;
    let owner = setup.sign_up("owner@acme.example", "merchant").await;
    let shop = setup.stocked_brand(&owner, "acme", 1, &[Sku { sku: "MUG", price: 1500, stock: &[10] }]).await;
    assert_eq!(setup.set_provider(&owner.token, &shop.brand_id, "stripe").await.status, StatusCode::OK);
    // The same database behind an instance whose requests time out after a
    // second, and a Stripe that does not answer until told to.
    let config = WebConfig { request_timeout: Duration::from_secs(1), ..WebConfig::default() };
    let app = TestApp::spawn_with_gateway(setup.test_db.another_connection().await, config, gateway).await;
    let mut stripe = providers.hold_next_payment_intent();
    let mut body = checkout_body(&[("MUG", 1)], "casey@example.com");
    body["payment_provider"] = json!("stripe");
    let checkout = || {
        app.send(
            app.client.post(app.url("/api/v1/storefront/acme/checkout")).header("idempotency-key", "k-1").json(&body),
        )
    };

    let cut_off = checkout().await;
    assert_eq!(cut_off.status, StatusCode::SERVICE_UNAVAILABLE, "{}", cut_off.text);
    tokio::time::timeout(Duration::from_secs(20), stripe.arrived()).await.expect("the order reached the provider");
    stripe.release();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let retried = loop {
        let retried = checkout().await;
        if retried.status != StatusCode::CONFLICT {
            break retried;
        }
        assert_eq!(retried.code(), "idempotency_request_in_progress", "{}", retried.text);
        assert!(tokio::time::Instant::now() < deadline, "the first run never finished: {}", retried.text);
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(retried.status, StatusCode::CREATED, "{}", retried.text);
    assert_eq!(retried.header("idempotent-replayed"), Some("true"));
    let orders = setup.get("/api/v1/orders", &owner.token).await;
    let orders = orders.body["data"].as_array().unwrap().clone();
    assert_eq!(orders.len(), 1, "one order for one key: {orders:?}");
    assert_eq!(orders[0]["id"], retried.body["order"]["id"]);
    assert_eq!(providers.requests("/v1/payment_intents").len(), 1);
    let (_, reserved) = setup.stock(&owner.token, &shop.variants["MUG"], &shop.warehouses[0]).await;
    assert_eq!(reserved, 1);
}

#[tokio::test]
async fn another_caller_with_the_same_key_never_gets_the_first_callers_response() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let brand = app.create_brand(&owner, "acme").await;
    let brand_id = brand["id"].as_str().unwrap();
    let integration = app.post("/api/v1/api-keys", &owner.token, json!({"brand_id": brand_id, "name": "WMS"})).await;
    let integration = integration.body["key"].as_str().unwrap().to_owned();

    let body = json!({"brand_id": brand_id, "name": "Shop"});
    let first = post_with_key(&app, "/api/v1/api-keys", &owner.token, "k1", &body).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let secret = first.body["key"].as_str().unwrap().to_owned();

    // The integration of the same organization sends the same request with
    // the same key: it is its own request, refused on its own merits.
    let theirs = post_with_key(&app, "/api/v1/api-keys", &integration, "k1", &body).await;
    assert_eq!(theirs.status, StatusCode::FORBIDDEN, "{}", theirs.text);
    assert_eq!(theirs.header("idempotent-replayed"), None);
    assert!(!theirs.text.contains(&secret[4..]), "{}", theirs.text);
    // The owner still gets its own answer back.
    let again = post_with_key(&app, "/api/v1/api-keys", &owner.token, "k1", &body).await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.text, first.text);
}

#[tokio::test]
async fn the_query_string_is_part_of_the_request() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let body = json!({"name": "Acme", "slug": "acme", "currency": "USD"});
    let first = post_with_key(&app, "/api/v1/brands?x=1", &owner.token, "k-query", &body).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let other = post_with_key(&app, "/api/v1/brands?x=2", &owner.token, "k-query", &body).await;
    assert_eq!(other.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", other.text);
    assert_eq!(other.code(), "idempotency_key_reused");
}

/// Every stored response body, as the database holds it.
async fn stored_bodies(app: &TestApp) -> Vec<Vec<u8>> {
    const SQL: &str = "SELECT response_body FROM idempotency_keys WHERE response_body IS NOT NULL";
    match app.db().pool() {
        consign_db::Pool::Sqlite { writer, .. } => sqlx::query_scalar(SQL).fetch_all(writer).await.unwrap(),
        consign_db::Pool::Postgres(pool) => sqlx::query_scalar(SQL).fetch_all(pool).await.unwrap(),
    }
}

#[tokio::test]
async fn stored_responses_that_carry_tokens_are_sealed_and_still_replay() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let login = json!({"email": owner.email, "password": owner.password});
    let first = app
        .send(app.client.post(app.url("/api/v1/auth/login")).header("idempotency-key", "login-1").json(&login))
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let refresh_token = first.body["refresh_token"].as_str().unwrap().to_owned();
    let access_token = first.body["access_token"].as_str().unwrap().to_owned();

    let bodies = stored_bodies(&app).await;
    assert_eq!(bodies.len(), 1);
    for body in &bodies {
        let text = String::from_utf8_lossy(body);
        assert!(!text.contains("refresh_token") && !text.contains(&refresh_token), "stored in the clear: {text}");
        assert!(!text.contains(&access_token), "stored in the clear: {text}");
    }
    let replay = app
        .send(app.client.post(app.url("/api/v1/auth/login")).header("idempotency-key", "login-1").json(&login))
        .await;
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.text, first.text);
}

#[tokio::test]
async fn an_unauthenticated_post_is_answered_401_whatever_key_it_reuses() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let body = json!({"name": "Acme", "slug": "acme", "currency": "USD"});
    let anonymous = |key: &'static str| {
        app.send(app.client.post(app.url("/api/v1/brands")).header("idempotency-key", key).json(&body))
    };
    // A refusal of the caller is not stored: the same key and body answer
    // 401 again, never a replay, and a signed-in caller may still use it.
    for _ in 0..2 {
        let refused = anonymous("k-anon").await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.text);
        assert_eq!(refused.header("idempotent-replayed"), None);
    }
    // A key spent anonymously on another route (a checkout's, say) does not
    // turn this route's 401 into a 422.
    let spent = app
        .send(app.client.post(app.url("/api/v1/auth/login")).header("idempotency-key", "k-spent").json(&json!({
            "email": owner.email, "password": owner.password
        })))
        .await;
    assert_eq!(spent.status, StatusCode::OK, "{}", spent.text);
    let other_route = anonymous("k-spent").await;
    assert_eq!(other_route.status, StatusCode::UNAUTHORIZED, "{}", other_route.text);
    let signed_in = post_with_key(&app, "/api/v1/brands", &owner.token, "k-anon", &body).await;
    assert_eq!(signed_in.status, StatusCode::CREATED, "{}", signed_in.text);
}

/// Checkout claims its key inside the order's own transaction: twenty
/// concurrent checkouts with one key, across two instances, place one order,
/// and every other answer is that order replayed or a 409 while it ran.
#[tokio::test]
async fn twenty_concurrent_checkouts_with_one_key_place_one_order() {
    let unlimited =
        || WebConfig { rate_limits: consign_web::auth::rate_limit::RateLimits::unlimited(), ..WebConfig::default() };
    let first = TestApp::spawn_with(unlimited()).await;
    let second = TestApp::spawn_on(first.test_db.another_connection().await, unlimited()).await;
    let owner = first.sign_up("owner@acme.example", "merchant").await;
    let shop = first.stocked_brand(&owner, "acme", 1, &[Sku { sku: "MUG", price: 1200, stock: &[50] }]).await;
    let body = checkout_body(&[("MUG", 1)], "casey@example.com");
    let path = format!("/api/v1/storefront/{}/checkout", shop.slug);
    let requests = (0..20).map(|i| {
        let app = if i % 2 == 0 { &first } else { &second };
        app.client.post(app.url(&path)).header("idempotency-key", "one-checkout").json(&body).send()
    });
    let mut order_ids = Vec::new();
    for response in futures_util::future::join_all(requests).await {
        let response = response.expect("the server answers");
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        match status {
            StatusCode::CREATED => order_ids.push(body["order"]["id"].as_str().unwrap().to_owned()),
            StatusCode::CONFLICT => assert_eq!(body["code"], "idempotency_request_in_progress", "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(!order_ids.is_empty());
    order_ids.dedup();
    assert_eq!(order_ids.len(), 1, "every success is the same order");
    let orders = first.get(&format!("/api/v1/orders?brand_id={}", shop.brand_id), &owner.token).await;
    assert_eq!(orders.body["data"].as_array().unwrap().len(), 1, "one order was placed");
    let replay =
        first.client.post(first.url(&path)).header("idempotency-key", "one-checkout").json(&body).send().await.unwrap();
    assert_eq!(replay.status(), StatusCode::CREATED);
    assert_eq!(replay.headers().get("idempotent-replayed").and_then(|v| v.to_str().ok()), Some("true"));
    let replayed: Value = replay.json().await.unwrap();
    assert_eq!(replayed["order"]["id"].as_str(), Some(order_ids[0].as_str()));
    assert!(replayed["order_access_token"].as_str().is_some_and(|t| t.starts_with("cot_")));
    first.assert_stock_invariants().await;
}

/// A message post claims its key in the message's own transaction too:
/// twenty concurrent posts with one key, across two instances, post one
/// message, and a replay answers that message.
#[tokio::test]
async fn twenty_concurrent_message_posts_with_one_key_post_one_message() {
    let unlimited =
        || WebConfig { rate_limits: consign_web::auth::rate_limit::RateLimits::unlimited(), ..WebConfig::default() };
    let first = TestApp::spawn_with(unlimited()).await;
    let second = TestApp::spawn_on(first.test_db.another_connection().await, unlimited()).await;
    let owner = first.sign_up("owner@acme.example", "merchant").await;
    let shop = first.stocked_brand(&owner, "acme", 1, &[Sku { sku: "MUG", price: 1200, stock: &[5] }]).await;
    let placed = first.checkout(&shop.slug, &[("MUG", 1)], "casey@example.com").await;
    let order_id = placed.body["order"]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/orders/{order_id}/messages");
    let body = json!({"body": "Packed and ready.", "channel": "in_app"});
    let requests = (0..20).map(|i| {
        let app = if i % 2 == 0 { &first } else { &second };
        app.client
            .post(app.url(&path))
            .bearer_auth(&owner.token)
            .header("idempotency-key", "one-reply")
            .json(&body)
            .send()
    });
    let mut message_ids = Vec::new();
    for response in futures_util::future::join_all(requests).await {
        let response = response.expect("the server answers");
        let status = response.status();
        let answer: Value = response.json().await.unwrap();
        match status {
            StatusCode::CREATED => message_ids.push(answer["id"].as_str().unwrap().to_owned()),
            StatusCode::CONFLICT => assert_eq!(answer["code"], "idempotency_request_in_progress", "{answer}"),
            other => panic!("unexpected {other}: {answer}"),
        }
    }
    assert!(!message_ids.is_empty());
    message_ids.dedup();
    assert_eq!(message_ids.len(), 1, "every success is the same message");
    let thread = first.get(&path, &owner.token).await;
    let bodies: Vec<&str> = thread.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|message| message["body"].as_str())
        .filter(|text| *text == "Packed and ready.")
        .collect();
    assert_eq!(bodies.len(), 1, "one message was posted: {}", thread.body);
    let replay = post_with_key(&second, &path, &owner.token, "one-reply", &body).await;
    assert_eq!(replay.status, StatusCode::CREATED);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.body["id"].as_str(), Some(message_ids[0].as_str()));
}
