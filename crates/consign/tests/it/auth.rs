//! Signup, login, refresh rotation, logout, API keys, rate limits.

use consign_testkit::{TestApp, in_one_window};
use consign_web::WebConfig;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn signup_makes_an_org_admin_who_can_see_themself() {
    let app = TestApp::spawn().await;
    let user = app.sign_up("ada@example.com", "merchant").await;
    let me = app.get("/api/v1/me", &user.token).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["user"]["email"], "ada@example.com");
    assert_eq!(me.body["memberships"][0]["role"], "org_admin");
    assert_eq!(me.body["memberships"][0]["organization"]["kind"], "merchant");
    assert!(me.body["user"].get("password_hash").is_none());
}

#[tokio::test]
async fn a_taken_email_is_a_conflict_whatever_its_case() {
    let app = TestApp::spawn().await;
    app.sign_up("ada@example.com", "merchant").await;
    let again = app
        .post_anonymous(
            "/api/v1/auth/signup",
            json!({"email": "ADA@example.com", "password": "another password", "name": "Ada",
                   "organization": {"name": "Other", "kind": "threepl"}}),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.code(), "conflict");
}

#[tokio::test]
async fn signup_can_be_switched_off() {
    let app = TestApp::spawn_with(WebConfig { allow_signup: false, ..WebConfig::default() }).await;
    let response = app
        .post_anonymous(
            "/api/v1/auth/signup",
            json!({"email": "a@example.com", "password": "long enough", "name": "A",
                   "organization": {"name": "O", "kind": "merchant"}}),
        )
        .await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);
    assert_eq!(response.code(), "forbidden");
}

#[tokio::test]
async fn login_gives_tokens_and_a_wrong_password_does_not() {
    let app = TestApp::spawn().await;
    let user = app.sign_up("ada@example.com", "merchant").await;
    let ok =
        app.post_anonymous("/api/v1/auth/login", json!({"email": "Ada@Example.com", "password": user.password})).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.body["expires_in"], 900);
    let token = ok.body["access_token"].as_str().unwrap();
    assert_eq!(app.get("/api/v1/me", token).await.status, StatusCode::OK);

    let wrong = app
        .post_anonymous("/api/v1/auth/login", json!({"email": "ada@example.com", "password": "not it at all"}))
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.code(), "unauthenticated");
    let unknown =
        app.post_anonymous("/api/v1/auth/login", json!({"email": "nobody@example.com", "password": "whatever1"})).await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.body["detail"], wrong.body["detail"], "unknown emails must look like wrong passwords");
}

#[tokio::test]
async fn refresh_rotates_and_reusing_a_spent_token_revokes_the_family() {
    let app = TestApp::spawn().await;
    let user = app.sign_up("ada@example.com", "merchant").await;

    let first = app.post_anonymous("/api/v1/auth/refresh", json!({"refresh_token": user.refresh_token})).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let rotated = first.body["refresh_token"].as_str().unwrap().to_owned();
    let new_access = first.body["access_token"].as_str().unwrap().to_owned();
    assert_ne!(rotated, user.refresh_token);
    assert_eq!(app.get("/api/v1/me", &new_access).await.status, StatusCode::OK);

    // The spent token comes back: someone copied it. The whole session dies.
    let reuse = app.post_anonymous("/api/v1/auth/refresh", json!({"refresh_token": user.refresh_token})).await;
    assert_eq!(reuse.status, StatusCode::UNAUTHORIZED);
    let after = app.post_anonymous("/api/v1/auth/refresh", json!({"refresh_token": rotated})).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED, "the rotated token belongs to the revoked family");
    assert_eq!(app.get("/api/v1/me", &new_access).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get("/api/v1/me", &user.token).await.status, StatusCode::UNAUTHORIZED);

    // Another login is a new family and works.
    let login = app.post_anonymous("/api/v1/auth/login", json!({"email": user.email, "password": user.password})).await;
    assert_eq!(login.status, StatusCode::OK);
}

#[tokio::test]
async fn concurrent_refreshes_with_one_token_rotate_at_most_once() {
    let app = TestApp::spawn().await;
    let user = app.sign_up("ada@example.com", "merchant").await;
    let attempts =
        (0..8).map(|_| app.post_anonymous("/api/v1/auth/refresh", json!({"refresh_token": user.refresh_token})));
    let results = futures_util::future::join_all(attempts).await;
    let rotated = results.iter().filter(|r| r.status == StatusCode::OK).count();
    assert!(rotated <= 1, "{rotated} refreshes succeeded with one token");
    assert!(results.iter().all(|r| r.status == StatusCode::OK || r.status == StatusCode::UNAUTHORIZED));
}

#[tokio::test]
async fn logout_ends_the_session() {
    let app = TestApp::spawn().await;
    let user = app.sign_up("ada@example.com", "merchant").await;
    let logout = app.request(Method::POST, "/api/v1/auth/logout", Some(&user.token), None).await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get("/api/v1/me", &user.token).await.status, StatusCode::UNAUTHORIZED);
    let refresh = app.post_anonymous("/api/v1/auth/refresh", json!({"refresh_token": user.refresh_token})).await;
    assert_eq!(refresh.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn tampered_foreign_and_expired_tokens_are_rejected() {
    let app = TestApp::spawn().await;
    let user = app.sign_up("ada@example.com", "merchant").await;

    // Flip one character of the signature.
    let mut tampered = user.token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(app.get("/api/v1/me", &tampered).await.status, StatusCode::UNAUTHORIZED);

    // Swap the payload for another user's: the signature no longer matches.
    let other = app.sign_up("eve@example.com", "merchant").await;
    let parts: Vec<&str> = user.token.split('.').collect();
    let other_parts: Vec<&str> = other.token.split('.').collect();
    let forged = format!("{}.{}.{}", parts[0], other_parts[1], parts[2]);
    assert_eq!(app.get("/api/v1/me", &forged).await.status, StatusCode::UNAUTHORIZED);

    for garbage in ["", "not-a-jwt", "a.b.c", "csk_nothex"] {
        let response = app.get("/api/v1/me", garbage).await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "token {garbage:?}");
        assert_eq!(response.code(), "unauthenticated");
    }

    // A server whose tokens expire at once.
    let expiring = TestApp::spawn_with(WebConfig { access_token_ttl_seconds: -30, ..WebConfig::default() }).await;
    let user = expiring.sign_up("ada@example.com", "merchant").await;
    let response = expiring.get("/api/v1/me", &user.token).await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn api_keys_act_for_their_brand_and_stop_when_revoked() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@example.com", "merchant").await;
    let brand = app.create_brand(&owner, "acme").await;
    let other_brand = app.create_brand(&owner, "other").await;
    let brand_id = brand["id"].as_str().unwrap();

    let created = app.post("/api/v1/api-keys", &owner.token, json!({"brand_id": brand_id, "name": "WMS"})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let key = created.body["key"].as_str().unwrap().to_owned();
    let key_id = created.body["id"].as_str().unwrap().to_owned();
    assert!(key.starts_with("csk_"));

    // The key sees its brand and nothing else.
    let own = app.get(&format!("/api/v1/brands/{brand_id}"), &key).await;
    assert_eq!(own.status, StatusCode::OK);
    let other = app.get(&format!("/api/v1/brands/{}", other_brand["id"].as_str().unwrap()), &key).await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
    let list = app.get("/api/v1/brands", &key).await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);

    // The secret is never listed again.
    let keys = app.get(&format!("/api/v1/api-keys?brand_id={brand_id}"), &owner.token).await;
    assert_eq!(keys.status, StatusCode::OK);
    assert!(!keys.text.contains(&key[4..]), "the listed key must not contain the secret");

    // An integration cannot mint keys for itself.
    let escalate = app.post("/api/v1/api-keys", &key, json!({"brand_id": brand_id, "name": "more"})).await;
    assert_eq!(escalate.status, StatusCode::FORBIDDEN);

    let revoked = app.request(Method::DELETE, &format!("/api/v1/api-keys/{key_id}"), Some(&owner.token), None).await;
    assert_eq!(revoked.status, StatusCode::OK);
    assert!(revoked.body["revoked_at"].is_string());
    assert_eq!(app.get(&format!("/api/v1/brands/{brand_id}"), &key).await.status, StatusCode::UNAUTHORIZED);

    // A key of the right shape that was never issued.
    let fake = format!("csk_{}", "ab".repeat(32));
    assert_eq!(app.get("/api/v1/brands", &fake).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn login_is_rate_limited_per_account_with_retry_after() {
    let config = WebConfig { login_attempts_per_account_per_minute: 3, ..WebConfig::default() };
    let (attempts, limited) = in_one_window(60, || async {
        let app = TestApp::spawn_with(config.clone()).await;
        app.sign_up("ada@example.com", "merchant").await;
        let attempt =
            || app.post_anonymous("/api/v1/auth/login", json!({"email": "ada@example.com", "password": "guess-guess"}));
        let mut attempts = Vec::new();
        for _ in 0..3 {
            attempts.push(attempt().await.status);
        }
        (attempts, attempt().await)
    })
    .await;
    assert_eq!(attempts, [StatusCode::UNAUTHORIZED; 3]);
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.code(), "rate_limited");
    let retry_after: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!(retry_after >= 1);
}

#[tokio::test]
async fn login_is_rate_limited_per_ip_across_accounts() {
    let config = WebConfig { login_attempts_per_ip_per_minute: 4, ..WebConfig::default() };
    let (attempts, limited) = in_one_window(60, || async {
        let app = TestApp::spawn_with(config.clone()).await;
        let mut attempts = Vec::new();
        for i in 0..4 {
            let login = json!({"email": format!("user{i}@example.com"), "password": "whatever1"});
            attempts.push(app.post_anonymous("/api/v1/auth/login", login).await.status);
        }
        let fresh = json!({"email": "fresh@example.com", "password": "whatever1"});
        (attempts, app.post_anonymous("/api/v1/auth/login", fresh).await.status)
    })
    .await;
    assert_eq!(attempts, [StatusCode::UNAUTHORIZED; 4]);
    assert_eq!(limited, StatusCode::TOO_MANY_REQUESTS);
}
