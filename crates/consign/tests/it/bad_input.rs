//! Bad input never yields a 5xx: malformed JSON, wrong types, missing
//! fields and huge bodies answer 4xx problem+json on every endpoint with a
//! body.

use consign_testkit::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::json;

/// A well-formed id of nothing: bodies are read before ids are looked up.
const SOME_ID: &str = "01a20095-c351-734f-bb2e-855cbbbec971";

fn body_endpoints(brand: &str) -> Vec<(Method, String)> {
    vec![
        (Method::POST, "/api/v1/auth/signup".into()),
        (Method::POST, "/api/v1/auth/login".into()),
        (Method::POST, "/api/v1/auth/refresh".into()),
        (Method::POST, "/api/v1/brands".into()),
        (Method::PATCH, format!("/api/v1/brands/{brand}")),
        (Method::POST, format!("/api/v1/brands/{brand}/members")),
        (Method::POST, format!("/api/v1/brands/{brand}/fulfillers")),
        (Method::POST, "/api/v1/api-keys".into()),
        (Method::POST, "/api/v1/storefront/acme/checkout".into()),
        (Method::POST, format!("/api/v1/orders/{SOME_ID}/cancel")),
        (Method::POST, format!("/api/v1/orders/{SOME_ID}/payments")),
        (Method::PATCH, format!("/api/v1/orders/{SOME_ID}/shipping-address")),
        (Method::POST, format!("/api/v1/orders/{SOME_ID}/items")),
        (Method::POST, format!("/api/v1/orders/{SOME_ID}/notes")),
        (Method::POST, format!("/api/v1/fulfillment-orders/{SOME_ID}/shipments")),
        (Method::POST, format!("/api/v1/shipments/{SOME_ID}/status")),
        (Method::POST, format!("/api/v1/orders/{SOME_ID}/refunds")),
        (Method::POST, format!("/api/v1/orders/{SOME_ID}/payment-attempts")),
        (Method::POST, format!("/api/v1/orders/{SOME_ID}/payment-attempts/{SOME_ID}/razorpay-callback")),
        (Method::PUT, format!("/api/v1/brands/{brand}/payment-providers/stripe")),
    ]
}

async fn assert_problem(
    app: &TestApp,
    method: &Method,
    path: &str,
    token: &str,
    body: Vec<u8>,
    what: &str,
) -> StatusCode {
    let response = app
        .send(
            app.client
                .request(method.clone(), app.url(path))
                .bearer_auth(token)
                .header("content-type", "application/json")
                .body(body),
        )
        .await;
    assert!(
        response.status.is_client_error(),
        "{what} to {method} {path} answered {}: {}",
        response.status,
        response.text
    );
    assert_eq!(response.header("content-type"), Some("application/problem+json"), "{what} to {method} {path}");
    assert!(!response.code().is_empty(), "{what} to {method} {path} has a code");
    response.status
}

#[tokio::test]
async fn every_endpoint_answers_bad_bodies_with_4xx_problems() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let brand = app.create_brand(&owner, "acme").await;
    let brand_id = brand["id"].as_str().unwrap();
    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(2 * 1024 * 1024));
    for (method, path) in body_endpoints(brand_id) {
        let malformed =
            assert_problem(&app, &method, &path, &owner.token, b"{\"name\": ".to_vec(), "malformed JSON").await;
        assert_eq!(malformed, StatusCode::BAD_REQUEST);
        assert_problem(&app, &method, &path, &owner.token, b"[1, 2, 3]".to_vec(), "an array").await;
        let wrong_types = json!({"email": 5, "password": [], "name": {}, "slug": 1, "currency": true,
                                 "brand_id": 7, "organization_id": false, "role": 3, "refresh_token": 9,
                                 "organization": "x", "reservation_ttl_seconds": "soon",
                                 "items": "none", "customer": 1, "shipping_address": [], "payment_provider": 5,
                                 "reason": 1, "amount": "lots", "method": 2, "line1": 3, "city": 4, "postal_code": 5,
                                 "country": 6, "body": 7, "carrier": 8, "tracking_number": 9, "status": 10});
        let status =
            assert_problem(&app, &method, &path, &owner.token, wrong_types.to_string().into_bytes(), "wrong types")
                .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{method} {path}");
        assert_problem(&app, &method, &path, &owner.token, huge.clone().into_bytes(), "a 2 MiB body").await;
        assert_problem(&app, &method, &path, &owner.token, b"\xff\xfe".to_vec(), "not UTF-8").await;
    }
}

#[tokio::test]
async fn validation_errors_name_each_field() {
    let app = TestApp::spawn().await;
    let response = app
        .post_anonymous(
            "/api/v1/auth/signup",
            json!({"email": "not-an-email", "password": "short", "name": "", "organization": {"name": "", "kind": "merchant"}}),
        )
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(response.code(), "validation_failed");
    let fields: Vec<&str> =
        response.body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    for expected in ["email", "password", "name", "organization.name"] {
        assert!(fields.contains(&expected), "{expected} missing from {fields:?}");
    }
    let wrong_kind = app
        .post_anonymous(
            "/api/v1/auth/signup",
            json!({"email": "a@example.com", "password": "long enough", "name": "A", "organization": {"name": "O", "kind": "bank"}}),
        )
        .await;
    assert_eq!(wrong_kind.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(wrong_kind.body["errors"][0]["field"], "organization.kind");
}

#[tokio::test]
async fn the_body_limit_is_configurable() {
    let app = TestApp::spawn_with(consign_web::WebConfig { body_limit_bytes: 256, ..Default::default() }).await;
    let response =
        app.post_anonymous("/api/v1/auth/login", json!({"email": "a@example.com", "password": "p".repeat(400)})).await;
    assert_eq!(response.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(response.code(), "payload_too_large");
}

#[tokio::test]
async fn unknown_ids_and_routes_are_404_problems() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    for path in ["/api/v1/brands/not-an-id", "/api/v1/brands/01a20095-c351-734f-bb2e-855cbbbec971", "/api/v1/nothing"] {
        let response = app.get(path, &owner.token).await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(response.header("content-type"), Some("application/problem+json"));
    }
    let anonymous = app.request(Method::GET, "/api/v1/me", None, None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.code(), "unauthenticated");
}

#[tokio::test]
async fn a_login_next_with_control_characters_falls_back_to_the_dashboard() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    for next in ["/admin\u{1}", "/admin/orders\u{7f}", "/admin\r\nSet-Cookie: x=y"] {
        let mut client = consign_testkit::pages::PageClient::new(&app);
        let form = client.get("/admin/login").await;
        let token = consign_testkit::pages::attribute_after(&form.text, "name=\"_csrf\"", "value").unwrap();
        let login = client
            .post_raw(
                "/admin/login",
                &[("email", &owner.email), ("password", &owner.password), ("_csrf", &token), ("next", next)],
            )
            .await;
        assert_eq!(login.status, StatusCode::SEE_OTHER, "{next:?}: {}", login.text);
        assert_eq!(login.header("location"), Some("/admin"), "{next:?}");
    }
}

#[tokio::test]
async fn a_unique_conflict_does_not_name_the_schema() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let brand_id = app.create_brand(&owner, "acme").await["id"].as_str().unwrap().to_owned();
    // Two invitations of the same new person race: both see no user with
    // the email, and the later insert hits the unique index.
    let path = format!("/api/v1/brands/{brand_id}/members");
    let invite = || {
        app.post(
            &path,
            &owner.token,
            json!({"email": "new@acme.example", "name": "New", "password": "a long password", "role": "brand_member"}),
        )
    };
    let answers = futures_util::future::join_all((0..4).map(|_| invite())).await;
    for answer in &answers {
        assert!(
            answer.status == StatusCode::CREATED || answer.status == StatusCode::CONFLICT,
            "{}: {}",
            answer.status,
            answer.text
        );
        assert!(!answer.text.contains("UNIQUE") && !answer.text.contains("users"), "{}", answer.text);
    }
    assert!(answers.iter().any(|a| a.status == StatusCode::CONFLICT), "the race was not run: {answers:?}");
}
