//! Floods and hoarding: signup and checkout floods are answered 429 while
//! the server stays healthy and its memory bounded, password hashing runs a
//! few at a time however many arrive, and one client cannot hold a drop.
//!
//! The floods are bounded (a few hundred requests over loopback); the
//! server runs in this test process, so `/proc/self/status` is its memory.

use std::time::Duration;

use consign_testkit::{Sku, TestApp, TestResponse, checkout_body};
use consign_web::WebConfig;
use consign_web::auth::rate_limit::{Limit, RateLimits};
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// How much the server's peak resident memory may grow during a flood.
const MEMORY_BOUND_KIB: u64 = 200 * 1024;
/// The same while a hundred and fifty passwords are hashed: a few argon2
/// blocks (19 MiB each) at a time plus the allocator's per-thread arenas.
/// Unbounded, the 150 hashes ran at once and held about 2.8 GiB.
const HASHING_MEMORY_BOUND_KIB: u64 = 1024 * 1024;
/// The longest `GET /healthz` may take while a flood runs.
const HEALTH_DEADLINE: Duration = Duration::from_secs(5);

/// A field of `/proc/self/status`, in KiB (`VmRSS`: resident now;
/// `VmHWM`: the peak so far).
fn memory_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

/// Runs `flood` while polling `/healthz` until it ends; answers the flood's
/// responses, after checking that every health check answered 200 within
/// [`HEALTH_DEADLINE`] and that peak memory grew less than the bound.
async fn during_flood<F>(app: &TestApp, bound_kib: u64, flood: F) -> Vec<TestResponse>
where
    F: Future<Output = Vec<TestResponse>>,
{
    let resident_before = memory_kib("VmRSS");
    let health_client = reqwest::Client::builder().no_proxy().timeout(HEALTH_DEADLINE).build().unwrap();
    let (done_tx, mut done_rx) = tokio::sync::watch::channel(false);
    let health_url = app.url("/healthz");
    let health = tokio::spawn(async move {
        let mut checks = 0;
        loop {
            let answer = health_client.get(&health_url).send().await;
            let status = answer.map(|a| a.status()).map_err(|e| e.to_string());
            assert_eq!(status, Ok(StatusCode::OK), "health check {checks} during the flood");
            checks += 1;
            if *done_rx.borrow_and_update() {
                return checks;
            }
            let _ = tokio::time::timeout(Duration::from_millis(50), done_rx.changed()).await;
        }
    });
    let responses = flood.await;
    done_tx.send(true).unwrap();
    let checks = health.await.expect("health checks held");
    assert!(checks >= 1);
    let growth = memory_kib("VmHWM").saturating_sub(resident_before);
    assert!(growth < bound_kib, "peak memory grew {growth} KiB during the flood");
    responses
}

fn count(responses: &[TestResponse], status: StatusCode) -> usize {
    responses.iter().filter(|r| r.status == status).count()
}

fn signup_body(email: &str) -> Value {
    json!({"email": email, "password": "correct horse battery", "name": "Flood",
           "organization": {"name": "Flood org", "kind": "merchant"}})
}

#[tokio::test]
async fn a_signup_flood_from_one_address_is_answered_429_while_the_server_stays_healthy() {
    let app = TestApp::spawn().await;
    let flood = join_all(
        (0..300).map(|i| app.post_anonymous("/api/v1/auth/signup", signup_body(&format!("flood{i}@example.com")))),
    );
    let responses = during_flood(&app, MEMORY_BOUND_KIB, flood).await;
    let created = count(&responses, StatusCode::CREATED);
    let limited = count(&responses, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        created + limited,
        300,
        "only 201 and 429: {:?}",
        responses.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert!(created <= 10, "the per-address signup limit held: {created} signed up");
    assert!(
        responses
            .iter()
            .filter(|r| r.status == StatusCode::TOO_MANY_REQUESTS)
            .all(|r| r.code() == "rate_limited" && r.header("retry-after").is_some())
    );
}

#[tokio::test]
async fn a_signup_flood_from_many_addresses_hashes_a_few_passwords_at_a_time_in_bounded_memory() {
    let app = TestApp::spawn_with(WebConfig { trust_forwarded_for: true, ..WebConfig::default() }).await;
    let flood = join_all((0..150).map(|i| {
        let request = app
            .client
            .post(app.url("/api/v1/auth/signup"))
            .header("x-forwarded-for", format!("10.{}.{}.1", i / 250, i % 250))
            .json(&signup_body(&format!("many{i}@example.com")));
        app.send(request)
    }));
    let responses = during_flood(&app, HASHING_MEMORY_BOUND_KIB, flood).await;
    let created = count(&responses, StatusCode::CREATED);
    let busy = count(&responses, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        created + busy,
        150,
        "only 201 and 429 (busy): {:?}",
        responses.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert!(created >= 1);
    // Whatever was refused was refused as busy, with a retry hint.
    assert!(
        responses
            .iter()
            .filter(|r| r.status == StatusCode::TOO_MANY_REQUESTS)
            .all(|r| r.code() == "rate_limited" && r.header("retry-after") == Some("1"))
    );
    // A few run at a time behind a short queue: the rest were turned away
    // at once instead of piling up (all 150 arrive within one hash's time).
    assert!(busy >= 1, "every one of 150 concurrent hashes was let in");
}

#[tokio::test]
async fn a_checkout_flood_from_one_address_is_answered_429_while_the_server_stays_healthy() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let shop = app.stocked_brand(&owner, "acme", 1, &[Sku { sku: "MUG", price: 1500, stock: &[1000] }]).await;
    let emails: Vec<String> = (0..200).map(|i| format!("buyer{i}@example.com")).collect();
    let flood = join_all(emails.iter().map(|email| app.checkout(&shop.slug, &[("MUG", 1)], email)));
    let responses = during_flood(&app, MEMORY_BOUND_KIB, flood).await;
    let created = count(&responses, StatusCode::CREATED);
    let limited = count(&responses, StatusCode::TOO_MANY_REQUESTS);
    let others: Vec<(StatusCode, String)> = responses
        .iter()
        .filter(|r| r.status != StatusCode::CREATED && r.status != StatusCode::TOO_MANY_REQUESTS)
        .map(|r| (r.status, r.text.chars().take(200).collect()))
        .collect();
    assert_eq!(created + limited, 200, "{others:?}");
    assert!(created <= 20, "the per-address checkout limit held: {created} placed");
    app.assert_stock_invariants().await;
}

async fn checkout_from(app: &TestApp, slug: &str, address: &str, email: &str, units: i64) -> TestResponse {
    let request = app
        .client
        .post(app.url(&format!("/api/v1/storefront/{slug}/checkout")))
        .header("x-forwarded-for", address)
        .json(&checkout_body(&[("DROP", units)], email));
    app.send(request).await
}

#[tokio::test]
async fn a_checkout_loop_from_one_address_is_throttled_before_it_sells_out_the_drop() {
    let app = TestApp::spawn_with(WebConfig { trust_forwarded_for: true, ..WebConfig::default() }).await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let shop = app.stocked_brand(&owner, "acme", 1, &[Sku { sku: "DROP", price: 5000, stock: &[30] }]).await;
    let mut held = 0;
    let mut throttled = None;
    for i in 0..30 {
        let answer = checkout_from(&app, &shop.slug, "198.51.100.1", &format!("bot{i}@example.com"), 1).await;
        match answer.status {
            StatusCode::CREATED => held += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                throttled = Some(answer);
                break;
            }
            other => panic!("unexpected {other}: {}", answer.text),
        }
    }
    let throttled = throttled.expect("the loop was throttled");
    assert_eq!(throttled.code(), "rate_limited");
    assert!(held < 30, "the loop held {held} of 30 units");
    let customer = checkout_from(&app, &shop.slug, "198.51.100.2", "real@example.com", 1).await;
    assert_eq!(customer.status, StatusCode::CREATED, "a real customer still buys: {}", customer.text);
}

#[tokio::test]
async fn one_email_holds_a_few_unpaid_orders_and_one_order_a_bounded_quantity() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let shop = app.stocked_brand(&owner, "acme", 1, &[Sku { sku: "DROP", price: 1500, stock: &[500] }]).await;

    let too_many = app.checkout(&shop.slug, &[("DROP", 101)], "bulk@example.com").await;
    assert_eq!(too_many.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", too_many.text);
    assert_eq!(too_many.body["errors"][0]["field"], "items");

    let mut orders = Vec::new();
    for _ in 0..5 {
        let placed = app.checkout(&shop.slug, &[("DROP", 1)], "hoarder@example.com").await;
        assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.text);
        orders.push(placed.body["order"].clone());
    }
    let sixth = app.checkout(&shop.slug, &[("DROP", 1)], "hoarder@example.com").await;
    assert_eq!(sixth.status, StatusCode::TOO_MANY_REQUESTS, "{}", sixth.text);
    assert_eq!(sixth.code(), "rate_limited");
    // Retry when the first hold runs out (a bank transfer's: three days).
    let retry_after: u64 = sixth.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=3 * 24 * 3600).contains(&retry_after), "{retry_after}");
    // Other customers are not affected.
    assert_eq!(app.checkout(&shop.slug, &[("DROP", 1)], "other@example.com").await.status, StatusCode::CREATED);

    // Paying one of them makes room for another.
    let first = orders[0]["id"].as_str().unwrap();
    let amount = orders[0]["total"]["amount"].as_i64().unwrap();
    let paid = app
        .post(&format!("/api/v1/orders/{first}/payments"), &owner.token, json!({"amount": amount, "method": "manual"}))
        .await;
    assert_eq!(paid.status, StatusCode::CREATED, "{}", paid.text);
    assert_eq!(app.checkout(&shop.slug, &[("DROP", 1)], "hoarder@example.com").await.status, StatusCode::CREATED);
}

/// A shop whose notifications go through local SMTP and Twilio doubles.
struct Relay {
    app: TestApp,
    smtp: consign_testkit::providers::smtp::SmtpServer,
    twilio: consign_testkit::providers::http::RecordingServer,
    owner: consign_testkit::TestUser,
    shop: consign_testkit::StockedBrand,
}

async fn relay(outbound_per_brand_per_day: u32, limits: RateLimits) -> Relay {
    use consign_channels::config::Secret;
    use consign_channels::{ChannelsConfig, EmailConfig, TwilioConfig};
    let smtp = consign_testkit::providers::smtp::SmtpServer::start().await;
    let twilio =
        consign_testkit::providers::http::RecordingServer::start(201, r#"{"sid": "SM0042", "status": "queued"}"#).await;
    let channels = ChannelsConfig {
        email: Some(EmailConfig {
            smtp_url: smtp.url.clone(),
            from: "support@consign.test".into(),
            inbound_domain: "in.consign.test".into(),
            mailgun_signing_key: None,
        }),
        twilio: Some(TwilioConfig {
            base_url: twilio.url.clone(),
            account_sid: "AC123".into(),
            auth_token: Secret("twilio-auth-token".into()),
            from_number: "+15550199".into(),
        }),
        public_base_url: Some("https://consign.test".into()),
        max_delivery_attempts: 3,
        outbound_per_brand_per_day,
        ..ChannelsConfig::default()
    };
    let config = WebConfig { channels: std::sync::Arc::new(channels), rate_limits: limits, ..WebConfig::default() };
    let app = TestApp::spawn_with(config).await;
    let owner = app.sign_up("owner@bank-security.example", "merchant").await;
    let shop = app.stocked_brand(&owner, "acme", 1, &[Sku { sku: "DROP", price: 100, stock: &[100_000] }]).await;
    Relay { app, smtp, twilio, owner, shop }
}

async fn put_template(relay: &Relay, kind_channel: &str, body: Value) -> TestResponse {
    let path = format!("/api/v1/brands/{}/notification-templates/{kind_channel}", relay.shop.brand_id);
    relay.app.request(reqwest::Method::PUT, &path, Some(&relay.owner.token), Some(&body)).await
}

/// Runs jobs until the queue is empty (each run may enqueue more).
async fn drain_jobs(app: &TestApp) {
    for _ in 0..20 {
        if app.run_jobs().await == 0 {
            return;
        }
    }
}

async fn notification_log(relay: &Relay, order_id: &str) -> Vec<Value> {
    let log = relay.app.get(&format!("/api/v1/orders/{order_id}/notifications"), &relay.owner.token).await;
    assert_eq!(log.status, StatusCode::OK, "{}", log.text);
    log.body.as_array().cloned().or_else(|| log.body["data"].as_array().cloned()).unwrap_or_default()
}

#[tokio::test]
async fn a_checkout_loop_cannot_relay_a_new_brands_own_words_and_sends_are_capped_per_brand() {
    let limits = RateLimits { checkout_per_ip: Limit::per(20, 86_400), ..RateLimits::default() };
    let relay = relay(15, limits).await;
    let phishing = json!({"enabled": true, "subject": "Your account is locked",
                          "body": "Log in at https://evil.example to unlock it, {{customer.name}}."});
    let saved = put_template(&relay, "order.created/email", phishing).await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.text);

    let mut placed = Vec::new();
    let mut limited = 0;
    for i in 0..50 {
        let answer = relay.app.checkout(&relay.shop.slug, &[("DROP", 1)], &format!("victim{i}@example.com")).await;
        match answer.status {
            StatusCode::CREATED => placed.push(answer.body["order"]["id"].as_str().unwrap().to_owned()),
            StatusCode::TOO_MANY_REQUESTS => limited += 1,
            other => panic!("unexpected {other}: {}", answer.text),
        }
    }
    assert_eq!(placed.len(), 20, "the checkout loop is throttled");
    assert_eq!(limited, 30);

    drain_jobs(&relay.app).await;
    let mails = relay.smtp.wait_for(15).await;
    assert_eq!(mails.len(), 15, "the brand's daily cap holds");
    for mail in &mails {
        assert!(!mail.body().contains("evil.example"), "a new brand's own text went out: {}", mail.body());
        assert!(mail.body().contains("Thank you for your order"), "{}", mail.body());
    }
    // The orders past the cap show why nothing was sent.
    let mut failed = Vec::new();
    for order_id in &placed {
        let log = notification_log(&relay, order_id).await;
        assert_eq!(log.len(), 1, "{log:?}");
        if log[0]["status"] == "failed" {
            failed.push(log[0]["last_error"].as_str().unwrap_or_default().to_owned());
        }
    }
    assert_eq!(failed.len(), 5, "{failed:?}");
    assert!(failed.iter().all(|reason| reason.contains("the brand already sent")), "{failed:?}");
    assert!(relay.twilio.recorded().is_empty());
}

#[tokio::test]
async fn one_recipient_gets_a_bounded_number_of_messages_per_hour() {
    let relay = relay(0, RateLimits::default()).await;
    let placed = relay.app.checkout(&relay.shop.slug, &[("DROP", 1)], "casey@example.com").await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.text);
    let order_id = placed.body["order"]["id"].as_str().unwrap().to_owned();
    // The confirmation, then twelve staff replies written in the app.
    for n in 0..12 {
        let reply = relay
            .app
            .post(
                &format!("/api/v1/orders/{order_id}/messages"),
                &relay.owner.token,
                json!({"body": format!("Update {n}"), "channel": "in_app"}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    }
    drain_jobs(&relay.app).await;
    let mails = relay.smtp.wait_for(10).await;
    assert_eq!(mails.len(), 10, "ten messages an hour reach one recipient");
    let log = notification_log(&relay, &order_id).await;
    let failed: Vec<&Value> = log.iter().filter(|n| n["status"] == "failed").collect();
    assert_eq!(failed.len(), 3, "{log:?}");
    assert!(failed.iter().all(|n| n["last_error"].as_str().unwrap().contains("this recipient")));
}

#[tokio::test]
async fn sms_and_whatsapp_wait_for_an_operators_approval() {
    let relay = relay(0, RateLimits::default()).await;
    let sms = json!({"enabled": true, "body": "{{brand.name}}: order {{order.number}} received"});
    let refused = put_template(&relay, "order.created/sms", sms.clone()).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.text);
    assert_eq!(refused.body["errors"][0]["field"], "enabled");

    // A staff reply by SMS from an unapproved brand is logged, not sent.
    let placed = relay.app.checkout(&relay.shop.slug, &[("DROP", 1)], "casey@example.com").await;
    let order_id = placed.body["order"]["id"].as_str().unwrap().to_owned();
    let reply = relay
        .app
        .post(
            &format!("/api/v1/orders/{order_id}/messages"),
            &relay.owner.token,
            json!({"body": "Hello", "channel": "sms"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    drain_jobs(&relay.app).await;
    assert!(relay.twilio.recorded().is_empty(), "an unapproved brand texted");
    let message_id = reply.body["id"].as_str().unwrap();
    let delivery =
        relay.app.get(&format!("/api/v1/orders/{order_id}/messages/{message_id}/delivery"), &relay.owner.token).await;
    assert_eq!(delivery.body["status"], "failed", "{}", delivery.text);
    assert!(delivery.body["last_error"].as_str().unwrap().contains("approval"), "{}", delivery.text);

    // The operator approves the brand; now it may.
    consign_db::notifications::approve_messaging(relay.app.db(), "acme").await.unwrap();
    let allowed = put_template(&relay, "order.created/sms", sms).await;
    assert_eq!(allowed.status, StatusCode::OK, "{}", allowed.text);
    let second = relay.app.checkout(&relay.shop.slug, &[("DROP", 1)], "dana@example.com").await;
    assert_eq!(second.status, StatusCode::CREATED);
    drain_jobs(&relay.app).await;
    let texts = relay.twilio.wait_for(1).await;
    assert_eq!(texts.len(), 1);
}
