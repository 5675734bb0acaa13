//! Request rate limits: signup and login shared by every instance on one
//! database, the client address behind trusted proxies, login that the
//! account's owner can still pass while an attacker is locked out, and the
//! per-caller limits of search, message posts and uploads.

use consign_db::Engine;
use consign_testkit::{Sku, TestApp, TestResponse, in_one_window};
use consign_web::WebConfig;
use consign_web::auth::rate_limit::{Limit, RateLimits};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn signup_body(email: &str) -> Value {
    json!({"email": email, "password": "correct horse battery", "name": "Test User",
           "organization": {"name": format!("{email} org"), "kind": "merchant"}})
}

async fn post_from(app: &TestApp, path: &str, forwarded_for: &str, body: &Value) -> TestResponse {
    app.send(app.client.post(app.url(path)).header("x-forwarded-for", forwarded_for).json(body)).await
}

fn assert_rate_limited(response: &TestResponse) {
    assert_eq!(response.status, StatusCode::TOO_MANY_REQUESTS, "{}", response.text);
    assert_eq!(response.code(), "rate_limited");
    assert_eq!(response.header("content-type"), Some("application/problem+json"));
    let retry_after: u64 = response.header("retry-after").expect("Retry-After").parse().expect("seconds");
    assert!(retry_after >= 1);
}

/// A second instance on the same database (PostgreSQL); on SQLite one
/// instance owns the file, so the "second" is the first again.
async fn second_instance(first: &TestApp, config: WebConfig) -> Option<TestApp> {
    match first.test_db.engine() {
        Engine::Postgres => Some(TestApp::spawn_on(first.test_db.another_connection().await, config).await),
        Engine::Sqlite => None,
    }
}

#[tokio::test]
async fn signup_and_login_limits_are_shared_by_every_instance_on_the_database() {
    let config = WebConfig {
        login_attempts_per_ip_per_minute: 4,
        rate_limits: RateLimits { signup_per_ip: Limit::per(3, 3_600), ..RateLimits::default() },
        ..WebConfig::default()
    };
    // One clock minute lies inside one clock hour, so the signup budget (per
    // hour) and the login budget (per minute) are both spent in one window.
    let (signups, late_signups, logins, late_logins) = in_one_window(60, || async {
        let first = TestApp::spawn_with(config.clone()).await;
        let second = second_instance(&first, config.clone()).await;
        let instances: Vec<&TestApp> = match &second {
            Some(second) => vec![&first, second],
            None => vec![&first],
        };
        // Three signups from one address, spread over the instances, spend
        // the budget; the fourth is refused wherever it lands.
        let mut signups = Vec::new();
        for i in 0..3 {
            let app = instances[i % instances.len()];
            signups.push(app.post_anonymous("/api/v1/auth/signup", signup_body(&format!("user{i}@example.com"))).await);
        }
        let mut late_signups = Vec::new();
        for app in &instances {
            late_signups.push(app.post_anonymous("/api/v1/auth/signup", signup_body("late@example.com")).await);
        }
        // Logins from one address: four spread over the instances, then 429.
        let mut logins = Vec::new();
        for i in 0..4 {
            let app = instances[i % instances.len()];
            let login = json!({"email": format!("nobody{i}@example.com"), "password": "wrong-password"});
            logins.push(app.post_anonymous("/api/v1/auth/login", login).await);
        }
        let mut late_logins = Vec::new();
        for app in &instances {
            let login = json!({"email": "user0@example.com", "password": "correct horse battery"});
            late_logins.push(app.post_anonymous("/api/v1/auth/login", login).await);
        }
        (signups, late_signups, logins, late_logins)
    })
    .await;
    for response in &signups {
        assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
    }
    late_signups.iter().for_each(assert_rate_limited);
    for response in &logins {
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{}", response.text);
    }
    late_logins.iter().for_each(assert_rate_limited);
}

#[tokio::test]
async fn the_client_address_is_the_hop_the_trusted_proxy_appended_not_the_one_the_client_sent() {
    let config = WebConfig { trust_forwarded_for: true, login_attempts_per_ip_per_minute: 5, ..WebConfig::default() };
    // One client behind one proxy, rotating the header it sends itself: the
    // proxy appends the real address on the right.
    let (answers, other) = in_one_window(60, || async {
        let app = TestApp::spawn_with(config.clone()).await;
        let mut answers = Vec::new();
        for n in 0..8 {
            let login = json!({"email": format!("victim{n}@example.com"), "password": "guess-guess"});
            answers.push(post_from(&app, "/api/v1/auth/login", &format!("1.2.3.{n}, 203.0.113.7"), &login).await);
        }
        // Another real client behind the same proxy is not affected.
        let login = json!({"email": "someone@example.com", "password": "guess-guess"});
        let other = post_from(&app, "/api/v1/auth/login", "1.2.3.4, 203.0.113.8", &login).await;
        (answers, other)
    })
    .await;
    for answer in &answers[..5] {
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.text);
    }
    answers[5..].iter().for_each(assert_rate_limited);
    assert_eq!(other.status, StatusCode::UNAUTHORIZED);

    // Two proxies: the client is the second entry from the right.
    let config = WebConfig {
        trust_forwarded_for: true,
        trusted_proxies: 2,
        login_attempts_per_ip_per_minute: 2,
        ..WebConfig::default()
    };
    let statuses = in_one_window(60, || async {
        let app = TestApp::spawn_with(config.clone()).await;
        let mut statuses = Vec::new();
        for n in 0..3 {
            let login = json!({"email": format!("victim{n}@example.com"), "password": "guess-guess"});
            let hops = format!("9.9.9.{n}, 198.51.100.7, 10.0.0.{n}");
            statuses.push(post_from(&app, "/api/v1/auth/login", &hops, &login).await.status);
        }
        statuses
    })
    .await;
    assert_eq!(statuses, [StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED, StatusCode::TOO_MANY_REQUESTS]);
}

#[tokio::test]
async fn the_owner_still_logs_in_from_another_address_while_an_attacker_is_locked_out() {
    let config = WebConfig {
        trust_forwarded_for: true,
        login_attempts_per_account_per_minute: 10,
        login_attempts_per_ip_per_minute: 100,
        ..WebConfig::default()
    };
    let (attempts, attacker, owner, guesses) = in_one_window(60, || async {
        let app = TestApp::spawn_with(config.clone()).await;
        let victim = app.sign_up("victim@example.com", "merchant").await;
        let wrong = json!({"email": "victim@example.com", "password": "not-the-password"});
        let right = json!({"email": "victim@example.com", "password": victim.password});
        let mut attempts = Vec::new();
        for _ in 0..10 {
            attempts.push(post_from(&app, "/api/v1/auth/login", "192.0.2.66", &wrong).await);
        }
        // The attacker's address is then refused, even with the right password.
        let attacker = [
            post_from(&app, "/api/v1/auth/login", "192.0.2.66", &wrong).await,
            post_from(&app, "/api/v1/auth/login", "192.0.2.66", &right).await,
        ];
        // The owner, from an address without failures, logs in.
        let owner = post_from(&app, "/api/v1/auth/login", "198.51.100.20", &right).await;
        // Another address that guesses wrong once is stopped after that guess.
        let guesses = [
            post_from(&app, "/api/v1/auth/login", "198.51.100.99", &wrong).await,
            post_from(&app, "/api/v1/auth/login", "198.51.100.99", &wrong).await,
        ];
        (attempts, attacker, owner, guesses)
    })
    .await;
    for attempt in &attempts {
        assert_eq!(attempt.status, StatusCode::UNAUTHORIZED, "{}", attempt.text);
    }
    attacker.iter().for_each(assert_rate_limited);
    assert_eq!(owner.status, StatusCode::OK, "{}", owner.text);
    assert!(owner.body["access_token"].is_string());
    assert_eq!(guesses[0].status, StatusCode::UNAUTHORIZED);
    assert_rate_limited(&guesses[1]);
}

#[tokio::test]
async fn a_taken_email_is_refused_without_naming_it() {
    let app = TestApp::spawn().await;
    app.sign_up("taken@example.com", "merchant").await;
    let again = app.post_anonymous("/api/v1/auth/signup", signup_body("taken@example.com")).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text);
    assert!(!again.text.contains("taken@example.com"));
    assert!(!again.body["detail"].as_str().unwrap().contains("exists"), "{}", again.text);
}

#[tokio::test]
async fn searches_message_posts_and_uploads_are_limited_per_caller() {
    let config = WebConfig {
        rate_limits: RateLimits {
            searches_per_caller: Limit::per(2, 60),
            messages_per_caller: Limit::per(2, 60),
            uploads_per_caller: Limit::per(1, 600),
            ..RateLimits::default()
        },
        ..WebConfig::default()
    };
    // Budgets count in fixed windows (one minute lies inside one of the
    // uploads' ten), so every budget here is spent inside one window.
    let answers = in_one_window(60, || async {
        let app = TestApp::spawn_with(config.clone()).await;
        let owner = app.sign_up("owner@acme.example", "merchant").await;
        let shop = app.stocked_brand(&owner, "acme", 1, &[Sku { sku: "MUG", price: 1500, stock: &[10] }]).await;
        let placed = app.checkout(&shop.slug, &[("MUG", 1)], "casey@example.com").await;
        assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.text);
        let order_id = placed.body["order"]["id"].as_str().unwrap().to_owned();
        let customer = placed.body["order_access_token"].as_str().unwrap().to_owned();
        let mut answers = Vec::new();
        for _ in 0..3 {
            answers.push(app.get("/api/v1/messages/search?q=hello", &owner.token).await);
        }
        let messages = format!("/api/v1/orders/{order_id}/messages");
        for _ in 0..3 {
            answers.push(app.post(&messages, &customer, json!({"body": "hello"})).await);
        }
        // Staff have their own budget.
        answers.push(app.post(&messages, &owner.token, json!({"body": "hi there"})).await);
        let upload = |token: &str| {
            app.client
                .post(app.url(&format!("/api/v1/orders/{order_id}/attachments?file_name=note.txt")))
                .bearer_auth(token)
                .header("content-type", "text/plain")
                .body("a note")
        };
        answers.push(app.send(upload(&customer)).await);
        answers.push(app.send(upload(&customer)).await);
        answers
    })
    .await;
    let [search_1, search_2, search_3, post_1, post_2, post_3, reply, upload_1, upload_2] = &answers[..] else {
        panic!("nine answers");
    };
    for search in [search_1, search_2] {
        assert_eq!(search.status, StatusCode::OK, "{}", search.text);
    }
    assert_rate_limited(search_3);
    for posted in [post_1, post_2, reply] {
        assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.text);
    }
    assert_rate_limited(post_3);
    assert_eq!(upload_1.status, StatusCode::CREATED, "{}", upload_1.text);
    assert_rate_limited(upload_2);
}
