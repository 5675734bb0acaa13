//! Messaging channels over real protocols: email out through a local SMTP
//! server and in through a Mailgun-signed webhook; SMS out through a local
//! Twilio API and in through Twilio-signed webhooks; WhatsApp's handshake
//! and signed notifications; duplicates, the inbox, delivery statuses and
//! retries.

use std::sync::Arc;

use base64::Engine as _;
use consign_channels::config::Secret;
use consign_channels::{ChannelsConfig, EmailConfig, TwilioConfig, WhatsappConfig};
use consign_testkit::providers::http::RecordingServer;
use consign_testkit::providers::smtp::SmtpServer;
use consign_testkit::{Sku, TestApp, TestUser};
use consign_web::WebConfig;
use hmac::{KeyInit, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};

const PUBLIC: &str = "https://consign.test";
const MAILGUN_KEY: &str = "mailgun-signing-key";
const TWILIO_TOKEN: &str = "twilio-auth-token";
const WA_SECRET: &str = "whatsapp-app-secret";

struct Setup {
    app: TestApp,
    smtp: SmtpServer,
    twilio: RecordingServer,
    whatsapp: RecordingServer,
    owner: TestUser,
    colleague: TestUser,
    order_id: String,
    customer: String,
    brand_id: String,
}

async fn setup() -> Setup {
    let smtp = SmtpServer::start().await;
    let twilio = RecordingServer::start(201, r#"{"sid": "SM0001", "status": "queued"}"#).await;
    let whatsapp =
        RecordingServer::start(200, r#"{"messaging_product": "whatsapp", "messages": [{"id": "wamid.OUT1"}]}"#).await;
    let channels = ChannelsConfig {
        email: Some(EmailConfig {
            smtp_url: smtp.url.clone(),
            from: "support@consign.test".into(),
            inbound_domain: "in.consign.test".into(),
            mailgun_signing_key: Some(Secret(MAILGUN_KEY.into())),
        }),
        whatsapp: Some(WhatsappConfig {
            base_url: whatsapp.url.clone(),
            api_version: "v21.0".into(),
            phone_number_id: "1234567".into(),
            access_token: Secret("wa-token".into()),
            app_secret: Secret(WA_SECRET.into()),
            verify_token: Secret("verify-me".into()),
        }),
        twilio: Some(TwilioConfig {
            base_url: twilio.url.clone(),
            account_sid: "AC123".into(),
            auth_token: Secret(TWILIO_TOKEN.into()),
            from_number: "+15550199".into(),
        }),
        public_base_url: Some(PUBLIC.into()),
        max_delivery_attempts: 3,
        // These tests are about what is sent, not about who may send it.
        allow_brand_sms: true,
        outbound_per_recipient_per_hour: 0,
        outbound_per_brand_per_day: 0,
    };
    let app = TestApp::spawn_with(WebConfig { channels: Arc::new(channels), ..WebConfig::default() }).await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let shop = app.stocked_brand(&owner, "acme", 1, &[Sku { sku: "MUG", price: 1500, stock: &[10] }]).await;
    let colleague = app.sign_up("ops@northwind.example", "threepl").await;
    let linked = app
        .post(
            &format!("/api/v1/brands/{}/fulfillers", shop.brand_id),
            &owner.token,
            json!({"organization_id": colleague.organization_id}),
        )
        .await;
    assert!(linked.status.is_success(), "{}", linked.text);
    let placed = app.checkout(&shop.slug, &[("MUG", 1)], "casey@example.com").await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.text);
    // The order confirmation goes out first (see notifications.rs); the
    // tests here count what comes after it.
    app.run_jobs().await;
    let confirmation = smtp.wait_for(1).await;
    assert_eq!(confirmation.len(), 1, "the order confirmation");
    assert!(confirmation[0].header("Subject").unwrap().starts_with("Your order #1001"));
    smtp.take();
    Setup {
        order_id: placed.body["order"]["id"].as_str().unwrap().to_owned(),
        customer: placed.body["order_access_token"].as_str().unwrap().to_owned(),
        brand_id: shop.brand_id,
        app,
        smtp,
        twilio,
        whatsapp,
        owner,
        colleague,
    }
}

fn hmac256(key: &str, message: &[u8]) -> Vec<u8> {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn now_unix() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn form_body(fields: &[(&str, &str)]) -> String {
    fields.iter().map(|(n, v)| format!("{}={}", encode(n), encode(v))).collect::<Vec<_>>().join("&")
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Mailgun's signature: hex HMAC-SHA256 of timestamp + token.
async fn mailgun_post(app: &TestApp, fields: &[(&str, &str)], token: &str, key: &str) -> consign_testkit::TestResponse {
    let timestamp = now_unix().to_string();
    let signature = hex::encode(hmac256(key, format!("{timestamp}{token}").as_bytes()));
    let mut all: Vec<(&str, &str)> = fields.to_vec();
    all.extend([("timestamp", timestamp.as_str()), ("token", token), ("signature", signature.as_str())]);
    app.send(
        app.client
            .post(app.url("/api/v1/webhooks/email/mailgun"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(&all)),
    )
    .await
}

/// Twilio's signature: base64 HMAC-SHA1 of URL + sorted name/value pairs.
async fn twilio_post(app: &TestApp, path: &str, fields: &[(&str, &str)], token: &str) -> consign_testkit::TestResponse {
    let mut sorted = fields.to_vec();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut signed = format!("{PUBLIC}{path}");
    for (name, value) in &sorted {
        signed.push_str(name);
        signed.push_str(value);
    }
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(signed.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    app.send(
        app.client
            .post(app.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-twilio-signature", signature)
            .body(form_body(fields)),
    )
    .await
}

async fn messages(s: &Setup) -> Vec<Value> {
    let page = s.app.get(&format!("/api/v1/orders/{}/messages", s.order_id), &s.owner.token).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    page.body["data"].as_array().unwrap().clone()
}

async fn delivery(s: &Setup, message_id: &str) -> Value {
    let got = s.app.get(&format!("/api/v1/orders/{}/messages/{message_id}/delivery", s.order_id), &s.owner.token).await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.text);
    got.body
}

async fn reply(s: &Setup, token: &str, body: &str, channel: &str) -> Value {
    let posted = s
        .app
        .post(&format!("/api/v1/orders/{}/messages", s.order_id), token, json!({"body": body, "channel": channel}))
        .await;
    assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.text);
    posted.body
}

#[tokio::test]
async fn channels_a_customer_and_two_staff_talk_across_in_app_email_and_sms() {
    let s = setup().await;
    // The customer asks in the app; staff answer by email.
    let asked = s
        .app
        .post(&format!("/api/v1/orders/{}/messages", s.order_id), &s.customer, json!({"body": "Where is it?"}))
        .await;
    assert_eq!(asked.status, StatusCode::CREATED, "{}", asked.text);
    let emailed = reply(&s, &s.owner.token, "It ships tomorrow.", "email").await;
    let email_id = emailed["id"].as_str().unwrap();
    assert_eq!(delivery(&s, email_id).await["status"], "queued");
    s.app.run_jobs().await;
    let mails = s.smtp.wait_for(1).await;
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.rcpt_to, ["casey@example.com"]);
    assert_eq!(mail.header("To").unwrap(), "casey@example.com");
    assert!(mail.header("From").unwrap().contains("<support@consign.test>"), "{:?}", mail.header("From"));
    let reply_to = mail.header("Reply-To").unwrap();
    assert!(reply_to.starts_with("reply+") && reply_to.ends_with("@in.consign.test"), "{reply_to}");
    assert!(mail.header("Subject").unwrap().contains("#1001"));
    assert!(mail.header("Message-ID").is_some());
    assert!(mail.body().contains("It ships tomorrow."));
    let sent = delivery(&s, email_id).await;
    assert_eq!(sent["status"], "sent");
    assert_eq!(sent["recipient"], "casey@example.com");

    // The customer replies to the email: it lands in the same thread,
    // quoted history stripped. A bad signature stores nothing; a replayed
    // token is refused; the same Message-Id twice is stored once.
    let inbound = [
        ("recipient", reply_to.as_str()),
        ("sender", "casey@example.com"),
        ("from", "Casey <casey@example.com>"),
        ("subject", "Re: Your order #1001"),
        ("body-plain", "Thanks! Can it come Friday?\n\nOn Mon, Acme wrote:\n> It ships tomorrow."),
        ("Message-Id", "<abc@mail.example.com>"),
    ];
    let forged = mailgun_post(&s.app, &inbound, "tok-1", "wrong-key").await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    assert_eq!(forged.code(), "signature_invalid");
    assert_eq!(messages(&s).await.len(), 2);
    let good = mailgun_post(&s.app, &inbound, "tok-2", MAILGUN_KEY).await;
    assert_eq!(good.status, StatusCode::OK, "{}", good.text);
    assert_eq!(good.body["result"], "posted");
    let again = mailgun_post(&s.app, &inbound, "tok-3", MAILGUN_KEY).await;
    assert_eq!(again.body["result"], "duplicate");
    let replayed = mailgun_post(&s.app, &inbound, "tok-2", MAILGUN_KEY).await;
    assert_eq!(replayed.status, StatusCode::UNAUTHORIZED);
    let all = messages(&s).await;
    assert_eq!(all.len(), 3);
    assert_eq!(all[2]["body"], "Thanks! Can it come Friday?");
    assert_eq!(all[2]["channel"], "email");
    assert_eq!(all[2]["sender_role"], "customer");

    // The customer then texts; the second staff member answers on SMS by
    // default (the customer's last channel) through Twilio.
    let sms_path = "/api/v1/webhooks/sms/twilio/acme";
    let sms = [("MessageSid", "SMin1"), ("From", "+15550100"), ("To", "+15550199"), ("Body", "Friday works?")];
    let bad = twilio_post(&s.app, sms_path, &sms, "not-the-token").await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert_eq!(bad.code(), "signature_invalid");
    let texted = twilio_post(&s.app, sms_path, &sms, TWILIO_TOKEN).await;
    assert_eq!(texted.status, StatusCode::OK, "{}", texted.text);
    assert_eq!(messages(&s).await.len(), 4);
    let answer = s
        .app
        .post(&format!("/api/v1/orders/{}/messages", s.order_id), &s.colleague.token, json!({"body": "Yes, Friday."}))
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    assert_eq!(answer.body["channel"], "sms");
    s.app.run_jobs().await;
    let calls = s.twilio.wait_for(1).await;
    let call = &calls[0];
    assert_eq!(call.path, "/2010-04-01/Accounts/AC123/Messages.json");
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("AC123:{TWILIO_TOKEN}"));
    assert_eq!(call.header("authorization").unwrap(), format!("Basic {basic}"));
    let form = call.form();
    let get = |name: &str| form.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    assert_eq!(get("To").unwrap(), "+15550100");
    assert_eq!(get("From").unwrap(), "+15550199");
    assert_eq!(get("Body").unwrap(), "Yes, Friday.");
    assert_eq!(get("StatusCallback").unwrap(), format!("{PUBLIC}/api/v1/webhooks/sms/twilio/acme/status"));
    let answer_id = answer.body["id"].as_str().unwrap();
    assert_eq!(delivery(&s, answer_id).await["provider_message_id"], "SM0001");

    // Status callbacks move forward only.
    let status_path = "/api/v1/webhooks/sms/twilio/acme/status";
    let delivered =
        twilio_post(&s.app, status_path, &[("MessageSid", "SM0001"), ("MessageStatus", "delivered")], TWILIO_TOKEN)
            .await;
    assert_eq!(delivered.status, StatusCode::NO_CONTENT, "{}", delivered.text);
    twilio_post(&s.app, status_path, &[("MessageSid", "SM0001"), ("MessageStatus", "sent")], TWILIO_TOKEN).await;
    assert_eq!(delivery(&s, answer_id).await["status"], "delivered");

    // The customer sees the conversation, in order.
    let seen = s.app.get(&format!("/api/v1/orders/{}/messages", s.order_id), &s.customer).await;
    let bodies: Vec<&str> = seen.body["data"].as_array().unwrap().iter().map(|m| m["body"].as_str().unwrap()).collect();
    assert_eq!(
        bodies,
        ["Where is it?", "It ships tomorrow.", "Thanks! Can it come Friday?", "Friday works?", "Yes, Friday."]
    );
}

#[tokio::test]
async fn channels_the_same_sms_delivered_concurrently_is_stored_once() {
    let s = setup().await;
    let path = "/api/v1/webhooks/sms/twilio/acme";
    let sms = [("MessageSid", "SMdup"), ("From", "+1 555 0100"), ("Body", "Hello?")];
    let attempts = (0..6).map(|_| twilio_post(&s.app, path, &sms, TWILIO_TOKEN));
    let answers = futures_util::future::join_all(attempts).await;
    assert!(answers.iter().all(|a| a.status == StatusCode::OK), "{answers:?}");
    assert_eq!(messages(&s).await.len(), 1);
}

#[tokio::test]
async fn channels_unmatched_inbound_goes_to_the_inbox_and_staff_link_it() {
    let s = setup().await;
    let stranger = [("MessageSid", "SMx"), ("From", "+4915112345"), ("Body", "Is #1001 mine?")];
    let got = twilio_post(&s.app, "/api/v1/webhooks/sms/twilio/acme", &stranger, TWILIO_TOKEN).await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.text);
    assert!(messages(&s).await.is_empty(), "an order number alone does not route a stranger's message");
    let inbox = s.app.get(&format!("/api/v1/inbox?brand_id={}", s.brand_id), &s.owner.token).await;
    assert_eq!(inbox.status, StatusCode::OK, "{}", inbox.text);
    let items = inbox.body["data"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["sender"], "+4915112345");
    let item_id = items[0]["id"].as_str().unwrap();
    let customer_inbox = s.app.get("/api/v1/inbox", &s.customer).await;
    assert_eq!(customer_inbox.status, StatusCode::FORBIDDEN, "a staff route refuses an order token");
    let link = format!("/api/v1/inbox/{item_id}/link");
    let linked = s.app.post(&link, &s.owner.token, json!({"order_id": s.order_id})).await;
    assert_eq!(linked.status, StatusCode::OK, "{}", linked.text);
    assert_eq!(linked.body["sender_role"], "customer");
    assert_eq!(linked.body["channel"], "sms");
    let twice = s.app.post(&link, &s.owner.token, json!({"order_id": s.order_id})).await;
    assert_eq!(twice.status, StatusCode::CONFLICT);
    assert_eq!(messages(&s).await.len(), 1);
    let after = s.app.get(&format!("/api/v1/inbox?brand_id={}", s.brand_id), &s.owner.token).await;
    assert!(after.body["data"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn channels_failed_sends_are_retried_then_failed() {
    let s = setup().await;
    s.twilio.answer_with(vec![(500, "{}")]);
    let sent = reply(&s, &s.owner.token, "Your parcel is late", "sms").await;
    let id = sent["id"].as_str().unwrap().to_owned();
    for round in 0..3 {
        // Make the retry due now instead of waiting out the backoff.
        sqlx_due_now(&s.app).await;
        s.app.run_jobs().await;
        let state = delivery(&s, &id).await;
        assert_eq!(state["attempts"], round + 1, "{state}");
    }
    let state = delivery(&s, &id).await;
    assert_eq!(state["status"], "failed");
    assert!(state["last_error"].as_str().unwrap().contains("500"));
    assert_eq!(s.twilio.recorded().len(), 3);
}

async fn sqlx_due_now(app: &TestApp) {
    let now = consign_domain_now();
    match app.db().pool() {
        consign_db::Pool::Sqlite { writer, .. } => {
            sqlx::query("UPDATE jobs SET run_at = $1 WHERE status = 'queued'").bind(now).execute(writer).await.unwrap();
        }
        consign_db::Pool::Postgres(pool) => {
            sqlx::query("UPDATE jobs SET run_at = $1 WHERE status = 'queued'").bind(now).execute(pool).await.unwrap();
        }
    }
}

fn consign_domain_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as i64
}

#[tokio::test]
async fn channels_whatsapp_handshake_signed_notifications_and_sends() {
    let s = setup().await;
    let path = "/api/v1/webhooks/whatsapp/acme";
    let ok = s
        .app
        .client
        .get(s.app.url(&format!("{path}?hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=42")))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.text().await.unwrap(), "42");
    let wrong = s
        .app
        .client
        .get(s.app.url(&format!("{path}?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=42")))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);

    let notification = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"phone_number_id": "1234567"},
        "messages": [{"from": "15550100", "id": "wamid.IN1", "timestamp": "1700000000", "type": "text", "text": {"body": "Any news?"}}]}}]}]})
    .to_string();
    let post = |body: String, secret: &str| {
        let signature = format!("sha256={}", hex::encode(hmac256(secret, body.as_bytes())));
        s.app
            .client
            .post(s.app.url(path))
            .header("content-type", "application/json")
            .header("x-hub-signature-256", signature)
            .body(body)
    };
    let bad = s.app.send(post(notification.clone(), "wrong")).await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert!(messages(&s).await.is_empty());
    let good = s.app.send(post(notification.clone(), WA_SECRET)).await;
    assert_eq!(good.status, StatusCode::OK, "{}", good.text);
    let all = messages(&s).await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["channel"], "whatsapp");

    let answer = reply(&s, &s.owner.token, "Out for delivery", "whatsapp").await;
    s.app.run_jobs().await;
    let calls = s.whatsapp.wait_for(1).await;
    assert_eq!(calls[0].path, "/v21.0/1234567/messages");
    assert_eq!(calls[0].header("authorization").unwrap(), "Bearer wa-token");
    let sent: Value = serde_json::from_slice(&calls[0].body).unwrap();
    assert_eq!(sent["messaging_product"], "whatsapp");
    assert_eq!(sent["to"], "15550100");
    assert_eq!(sent["type"], "text");
    assert_eq!(sent["text"]["body"], "Out for delivery");
    let id = answer["id"].as_str().unwrap();
    let status =
        json!({"entry": [{"changes": [{"value": {"statuses": [{"id": "wamid.OUT1", "status": "delivered"}]}}]}]})
            .to_string();
    assert_eq!(s.app.send(post(status, WA_SECRET)).await.status, StatusCode::OK);
    assert_eq!(delivery(&s, id).await["status"], "delivered");
}

#[tokio::test]
async fn channels_mailgun_multipart_posts_with_attachments_are_read() {
    let s = setup().await;
    let timestamp = now_unix().to_string();
    let signature = hex::encode(hmac256(MAILGUN_KEY, format!("{timestamp}tok-mp").as_bytes()));
    let fields = [
        ("recipient", "acme@in.consign.test"),
        ("sender", "casey@example.com"),
        ("subject", "Photo of the damage, order #1001"),
        ("body-plain", "The mug arrived broken, photo attached."),
        ("Message-Id", "<mp@mail.example.com>"),
        ("attachment-count", "1"),
        ("X-Mailgun-Spf", "Pass"),
        ("timestamp", timestamp.as_str()),
        ("token", "tok-mp"),
        ("signature", signature.as_str()),
    ];
    let boundary = "consign-test-boundary";
    let mut body = String::new();
    for (name, value) in fields {
        body.push_str(&format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"));
    }
    body.push_str(&format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"attachment-1\"; filename=\"mug.jpg\"\r\n\
         Content-Type: image/jpeg\r\n\r\n\u{00ff}\u{00d8}binary\r\n--{boundary}--\r\n"
    ));
    let posted = s
        .app
        .send(
            s.app
                .client
                .post(s.app.url("/api/v1/webhooks/email/mailgun"))
                .header("content-type", format!("multipart/form-data; boundary={boundary}"))
                .body(body),
        )
        .await;
    assert_eq!(posted.status, StatusCode::OK, "{}", posted.text);
    assert_eq!(posted.body["result"], "posted");
    let all = messages(&s).await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["body"], "The mug arrived broken, photo attached.");
    assert_eq!(all[0]["channel"], "email");
}

/// A signed Mailgun form, to send as it is (and again, as Mailgun retries).
fn signed_mailgun_form(fields: &[(&str, &str)], token: &str, timestamp: &str) -> String {
    let signature = hex::encode(hmac256(MAILGUN_KEY, format!("{timestamp}{token}").as_bytes()));
    let mut all: Vec<(&str, &str)> = fields.to_vec();
    all.extend([("timestamp", timestamp), ("token", token), ("signature", signature.as_str())]);
    form_body(&all)
}

async fn post_mailgun_form(app: &TestApp, body: String) -> consign_testkit::TestResponse {
    app.send(
        app.client
            .post(app.url("/api/v1/webhooks/email/mailgun"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body),
    )
    .await
}

/// Runs one statement on the test database, whichever engine it is.
async fn execute(app: &TestApp, sql: &str) {
    match app.db().pool() {
        consign_db::Pool::Sqlite { writer, .. } => {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned())).execute(writer).await.unwrap();
        }
        consign_db::Pool::Postgres(pool) => {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned())).execute(pool).await.unwrap();
        }
    }
}

async fn inbox(s: &Setup) -> Vec<Value> {
    let inbox = s.app.get(&format!("/api/v1/inbox?brand_id={}", s.brand_id), &s.owner.token).await;
    assert_eq!(inbox.status, StatusCode::OK, "{}", inbox.text);
    inbox.body["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn channels_a_mailgun_timestamp_that_overflows_is_refused() {
    let s = setup().await;
    for timestamp in ["-9223372036854775808", "9223372036854775807"] {
        let body =
            signed_mailgun_form(&[("recipient", "acme@in.consign.test"), ("body-plain", "hi")], "tok-o", timestamp);
        let refused = post_mailgun_form(&s.app, body).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{timestamp}: {}", refused.text);
        assert_eq!(refused.code(), "signature_invalid");
    }
}

#[tokio::test]
async fn channels_a_mailgun_retry_after_a_failed_attempt_is_stored() {
    let s = setup().await;
    let fields = [
        ("recipient", "acme@in.consign.test"),
        ("sender", "stranger@elsewhere.example"),
        ("subject", "A question"),
        ("body-plain", "Do you ship to Norway?"),
        ("Message-Id", "<retry@mail.example.com>"),
        ("X-Mailgun-Spf", "Pass"),
    ];
    let body = signed_mailgun_form(&fields, "tok-retry", &now_unix().to_string());
    // The first attempt fails after the signature held (the inbox insert
    // breaks); Mailgun then retries the very same post.
    match s.app.db().engine() {
        consign_db::Engine::Sqlite => {
            execute(
                &s.app,
                "CREATE TRIGGER inbox_fails BEFORE INSERT ON inbox_items BEGIN SELECT RAISE(ABORT, 'injected'); END",
            )
            .await;
        }
        consign_db::Engine::Postgres => {
            execute(
                &s.app,
                "CREATE FUNCTION inbox_fails() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected'; END $$;
                 CREATE TRIGGER inbox_fails BEFORE INSERT ON inbox_items FOR EACH ROW EXECUTE FUNCTION inbox_fails();",
            )
            .await;
        }
    }
    let failed = post_mailgun_form(&s.app, body.clone()).await;
    assert_eq!(failed.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", failed.text);
    match s.app.db().engine() {
        consign_db::Engine::Sqlite => execute(&s.app, "DROP TRIGGER inbox_fails").await,
        consign_db::Engine::Postgres => execute(&s.app, "DROP TRIGGER inbox_fails ON inbox_items").await,
    }
    let retried = post_mailgun_form(&s.app, body.clone()).await;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.text);
    assert_eq!(retried.body["result"], "inboxed");
    let items = inbox(&s).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["body"], "Do you ship to Norway?");
    // Once stored, the token is spent: a replay is refused.
    let replayed = post_mailgun_form(&s.app, body).await;
    assert_eq!(replayed.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn channels_an_email_whose_sender_fails_spf_and_dkim_goes_to_the_inbox_unverified() {
    let s = setup().await;
    let spoofed = [
        ("recipient", "acme@in.consign.test"),
        ("sender", "casey@example.com"),
        ("from", "Casey <casey@example.com>"),
        ("subject", "Order #1001: new address"),
        ("body-plain", "Please ship to 1 Attacker Road instead."),
        ("Message-Id", "<spoof@mail.example.com>"),
        ("X-Mailgun-Spf", "Fail"),
        ("X-Mailgun-Dkim-Check-Result", "Fail"),
    ];
    let got = mailgun_post(&s.app, &spoofed, "tok-spoof", MAILGUN_KEY).await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.text);
    assert_eq!(got.body["result"], "inboxed");
    assert!(messages(&s).await.is_empty(), "not posted in the customer's thread");
    let items = inbox(&s).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["sender"], "casey@example.com");
    assert_eq!(items[0]["sender_verified"], false);
    // Staff see the warning on the inbox page.
    let mut client = consign_testkit::pages::PageClient::signed_in(&s.app, &s.owner.email, &s.owner.password).await;
    let page = client.get("/admin/inbox").await;
    assert!(page.text.contains("unverified sender"), "{}", page.text);

    // With no SPF or DKIM result at all, the same.
    let unchecked = [
        ("recipient", "acme@in.consign.test"),
        ("sender", "casey@example.com"),
        ("body-plain", "No checks on this one."),
        ("Message-Id", "<unchecked@mail.example.com>"),
    ];
    let got = mailgun_post(&s.app, &unchecked, "tok-unchecked", MAILGUN_KEY).await;
    assert_eq!(got.body["result"], "inboxed", "{}", got.text);

    // A DKIM pass (or an SPF pass) vouches for the sender.
    let signed = [
        ("recipient", "acme@in.consign.test"),
        ("sender", "casey@example.com"),
        ("body-plain", "Is it on its way?"),
        ("Message-Id", "<dkim@mail.example.com>"),
        ("X-Mailgun-Spf", "SoftFail"),
        ("X-Mailgun-Dkim-Check-Result", "Pass"),
    ];
    let got = mailgun_post(&s.app, &signed, "tok-dkim", MAILGUN_KEY).await;
    assert_eq!(got.body["result"], "posted", "{}", got.text);
    let all = messages(&s).await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["body"], "Is it on its way?");
}

fn multipart_body(boundary: &str, fields: &[(&str, &str)], attachment_first: bool) -> String {
    let attachment = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"attachment-1\"; filename=\"big.bin\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n{}\r\n",
        "x".repeat(64 * 1024)
    );
    let mut body = String::new();
    if attachment_first {
        body.push_str(&attachment);
    }
    for (name, value) in fields {
        body.push_str(&format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"));
    }
    if !attachment_first {
        body.push_str(&attachment);
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    body
}

#[tokio::test]
async fn channels_mailgun_checks_the_signature_before_reading_attachments_and_bounds_forms() {
    let s = setup().await;
    let timestamp = now_unix().to_string();
    let signature = hex::encode(hmac256(MAILGUN_KEY, format!("{timestamp}tok-order").as_bytes()));
    let fields = [
        ("recipient", "acme@in.consign.test"),
        ("sender", "casey@example.com"),
        ("body-plain", "See attached."),
        ("Message-Id", "<order@mail.example.com>"),
        ("X-Mailgun-Spf", "Pass"),
        ("timestamp", timestamp.as_str()),
        ("token", "tok-order"),
        ("signature", signature.as_str()),
    ];
    let boundary = "consign-test-boundary";
    let send = |body: String| {
        s.app.send(
            s.app
                .client
                .post(s.app.url("/api/v1/webhooks/email/mailgun"))
                .header("content-type", format!("multipart/form-data; boundary={boundary}"))
                .body(body),
        )
    };
    // An attachment before the signature fields is refused, unread.
    let refused = send(multipart_body(boundary, &fields, true)).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.text);
    assert_eq!(refused.code(), "signature_invalid");
    assert!(messages(&s).await.is_empty());
    // After them, it is read past.
    let read = send(multipart_body(boundary, &fields, false)).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text);
    assert_eq!(read.body["result"], "posted");

    // A form-encoded post carries text only: a large one is refused.
    let huge = "x".repeat(3 * 1024 * 1024);
    let body = signed_mailgun_form(
        &[("recipient", "acme@in.consign.test"), ("body-plain", huge.as_str())],
        "tok-huge",
        &now_unix().to_string(),
    );
    let too_large = post_mailgun_form(&s.app, body).await;
    assert_eq!(too_large.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", too_large.text);
    assert_eq!(too_large.code(), "payload_too_large");
}

/// The delivery badge of the message whose body is `body` on the staff
/// order page, or None.
fn delivery_badge(page: &str, body: &str) -> Option<String> {
    let message = page.find(body)?;
    let meta = page[..message].rfind("class=\"message-meta\"")?;
    let part = &page[meta..message];
    let start = part.find("delivery\">")? + "delivery\">".len();
    let end = part[start..].find("</span>")?;
    Some(part[start..start + end].to_owned())
}

#[tokio::test]
async fn channels_the_staff_thread_shows_how_each_reply_is_getting_there_live() {
    let s = setup().await;
    let mut staff = consign_testkit::pages::PageClient::signed_in(&s.app, &s.owner.email, &s.owner.password).await;
    let order_page = format!("/admin/orders/{}", s.order_id);
    let page = staff.get(&order_page).await;
    // Every channel is configured here; the customer has a phone number.
    for offered in ["value=\"in_app\"", "value=\"email\"", "value=\"sms\"", "value=\"whatsapp\""] {
        assert!(page.text.contains(offered), "{offered} is not offered");
    }
    let mut socket = crate::live::connect(&s.app, &s.owner.token, false, None).await;

    // A reply by email, from the page: queued until the job sends it.
    let posted = staff
        .post(&format!("{order_page}/messages"), &[("kind", "reply"), ("body", "Packed today."), ("channel", "email")])
        .await;
    assert_eq!(posted.status, StatusCode::SEE_OTHER, "{}", posted.text);
    let page = staff.get(&order_page).await;
    assert!(page.text.contains("Reply queued to go by email."), "the flash says what happened");
    assert_eq!(delivery_badge(&page.text, "Packed today.").as_deref(), Some("Queued"));
    s.app.run_jobs().await;
    s.smtp.wait_for(1).await;
    let event = loop {
        let event = crate::live::next_event(&mut socket).await;
        if event["type"] == "message.delivery_updated" {
            break event;
        }
    };
    assert_eq!(event["payload"]["status"], "sent", "{event}");
    assert_eq!(event["payload"]["order_id"], s.order_id.as_str());
    let page = staff.get(&order_page).await;
    assert_eq!(delivery_badge(&page.text, "Packed today.").as_deref(), Some("Sent"));

    // A reply by SMS that the provider keeps refusing ends failed, with why.
    s.twilio.answer_with(vec![(500, "{}")]);
    reply(&s, &s.owner.token, "Your parcel is late", "sms").await;
    for _ in 0..3 {
        sqlx_due_now(&s.app).await;
        s.app.run_jobs().await;
    }
    let page = staff.get(&order_page).await;
    let badge = delivery_badge(&page.text, "Your parcel is late").expect("a delivery badge");
    assert!(badge.starts_with("Failed: ") && badge.contains("500"), "{badge}");

    // The customer's page shows no delivery state, and no event of it.
    let link = format!("/shop/acme/orders/{}?token={}", s.order_id, s.customer);
    let customer_page = consign_testkit::pages::PageClient::new(&s.app).get_following(&link).await;
    assert!(!customer_page.text.contains("Failed: "), "the customer sees a delivery failure");
    let timeline = s.app.get(&format!("/api/v1/orders/{}/timeline", s.order_id), &s.customer).await;
    assert!(!timeline.text.contains("message.delivery_updated"), "{}", timeline.text);
}

#[tokio::test]
async fn channels_only_configured_channels_are_offered_on_the_thread() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    app.stocked_brand(&owner, "acme", 1, &[Sku { sku: "MUG", price: 1500, stock: &[10] }]).await;
    let placed = app.checkout("acme", &[("MUG", 1)], "casey@example.com").await;
    let order_id = placed.body["order"]["id"].as_str().unwrap();
    let mut staff = consign_testkit::pages::PageClient::signed_in(&app, &owner.email, &owner.password).await;
    let page = staff.get(&format!("/admin/orders/{order_id}")).await;
    assert!(page.text.contains("value=\"in_app\""), "{}", page.text);
    for unconfigured in ["value=\"email\"", "value=\"sms\"", "value=\"whatsapp\""] {
        assert!(!page.text.contains(unconfigured), "{unconfigured} is offered with no provider configured");
    }
}
