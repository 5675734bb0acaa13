//! Notifications over real protocols: customers are emailed (and texted
//! where the brand turns SMS on) about their order's events and about staff
//! replies written in the app, from the brand's templates, with a link to
//! their order page that works; staff get one digest email per thread and
//! window however many messages the customer sends; internal notes never
//! reach a notification; every send is in the order's delivery log.

use std::sync::Arc;
use std::time::Duration;

use consign_channels::config::Secret;
use consign_channels::{ChannelsConfig, EmailConfig, TwilioConfig};
use consign_testkit::providers::http::RecordingServer;
use consign_testkit::providers::smtp::{ReceivedEmail, SmtpServer};
use consign_testkit::{Sku, TestApp, TestUser};
use consign_web::WebConfig;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const PUBLIC: &str = "https://consign.test";

struct Shop {
    app: TestApp,
    smtp: SmtpServer,
    twilio: RecordingServer,
    owner: TestUser,
    brand_id: String,
    order_id: String,
    customer: String,
    total: i64,
}

async fn shop() -> Shop {
    let smtp = SmtpServer::start().await;
    let twilio = RecordingServer::start(201, r#"{"sid": "SM0042", "status": "queued"}"#).await;
    let channels = ChannelsConfig {
        email: Some(EmailConfig {
            smtp_url: smtp.url.clone(),
            from: "support@consign.test".into(),
            inbound_domain: "in.consign.test".into(),
            mailgun_signing_key: None,
        }),
        whatsapp: None,
        twilio: Some(TwilioConfig {
            base_url: twilio.url.clone(),
            account_sid: "AC123".into(),
            auth_token: Secret("twilio-auth-token".into()),
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
    let stocked = app.stocked_brand(&owner, "acme", 1, &[Sku { sku: "MUG", price: 1500, stock: &[10] }]).await;
    let placed = app.checkout("acme", &[("MUG", 2)], "casey@example.com").await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.text);
    Shop {
        order_id: placed.body["order"]["id"].as_str().unwrap().to_owned(),
        customer: placed.body["order_access_token"].as_str().unwrap().to_owned(),
        total: placed.body["order"]["total"]["amount"].as_i64().unwrap(),
        brand_id: stocked.brand_id,
        app,
        smtp,
        twilio,
        owner,
    }
}

async fn put(app: &TestApp, path: &str, token: &str, body: Value) -> consign_testkit::TestResponse {
    app.request(Method::PUT, path, Some(token), Some(&body)).await
}

/// Runs due jobs until `count` emails arrived (or 10 s passed).
async fn emails_after_jobs(s: &Shop, count: usize) -> Vec<ReceivedEmail> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        s.app.run_jobs().await;
        let received = s.smtp.received();
        if received.len() >= count || tokio::time::Instant::now() > deadline {
            return received;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn subjects(mails: &[ReceivedEmail]) -> Vec<String> {
    mails.iter().map(|m| m.header("Subject").unwrap_or_default()).collect()
}

#[tokio::test]
async fn notifications_tell_the_customer_of_order_events_and_replies_by_email_and_sms() {
    let s = shop().await;
    let templates = format!("/api/v1/brands/{}/notification-templates", s.brand_id);
    let sms = put(
        &s.app,
        &format!("{templates}/shipment.in_transit/sms"),
        &s.owner.token,
        json!({"enabled": true, "body": "{{brand.name}}: {{order.number}} shipped {{tracking.url}}"}),
    )
    .await;
    assert_eq!(sms.status, StatusCode::OK, "{}", sms.text);
    let paid_email = put(
        &s.app,
        &format!("{templates}/order.paid/email"),
        &s.owner.token,
        json!({"enabled": true, "subject": "Paid: {{order.number}}", "body": "Thanks {{customer.name}}!"}),
    )
    .await;
    assert_eq!(paid_email.status, StatusCode::OK, "{}", paid_email.text);

    // The confirmation links to the order page with a token that works.
    let mails = emails_after_jobs(&s, 1).await;
    assert_eq!(subjects(&mails), ["Your order #1001 at Brand acme"]);
    assert_eq!(mails[0].rcpt_to, ["casey@example.com"]);
    let body = mails[0].body();
    let link = format!("{PUBLIC}/shop/acme/orders/{}?token=", s.order_id);
    let at = body.find(&link).unwrap_or_else(|| panic!("no order link in {body}"));
    let token: String =
        body[at + link.len()..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    assert_eq!(token, s.customer, "the link carries the customer's own token");
    let link = format!("/shop/acme/orders/{}?token={token}", s.order_id);
    let page = consign_testkit::pages::PageClient::new(&s.app).get_following(&link).await;
    assert_eq!(page.status, StatusCode::OK);

    // Paid, from the brand's own template.
    let paid = s
        .app
        .post(
            &format!("/api/v1/orders/{}/payments", s.order_id),
            &s.owner.token,
            json!({"amount": s.total, "method": "manual"}),
        )
        .await;
    assert_eq!(paid.body["payment_status"], "paid", "{}", paid.text);
    let mails = emails_after_jobs(&s, 2).await;
    assert_eq!(subjects(&mails)[1], "Paid: #1001");
    assert!(mails[1].body().contains("Thanks Casey Customer!"));

    // Shipped: an email and, since the brand turned it on, an SMS, both
    // with the tracking link.
    let fos = s.app.get(&format!("/api/v1/orders/{}/fulfillment-orders", s.order_id), &s.owner.token).await;
    let fo = &fos.body["data"][0];
    let shipment = s
        .app
        .post(
            &format!("/api/v1/fulfillment-orders/{}/shipments", fo["id"].as_str().unwrap()),
            &s.owner.token,
            json!({"items": [{"order_item_id": fo["items"][0]["order_item_id"], "quantity": 2}],
                   "carrier": "ups", "tracking_number": "1Z999"}),
        )
        .await;
    assert_eq!(shipment.status, StatusCode::CREATED, "{}", shipment.text);
    let moved = s
        .app
        .post(
            &format!("/api/v1/shipments/{}/status", shipment.body["id"].as_str().unwrap()),
            &s.owner.token,
            json!({"status": "in_transit"}),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.text);
    let mails = emails_after_jobs(&s, 3).await;
    assert_eq!(subjects(&mails)[2], "Order #1001 is on its way");
    let tracking = "https://www.ups.com/track?tracknum=1Z999";
    assert!(mails[2].body().contains(tracking), "{}", mails[2].body());
    let texts = s.twilio.wait_for(1).await;
    assert_eq!(texts.len(), 1, "SMS is on for shipments only");
    let form = texts[0].form();
    let field = |name: &str| form.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()).unwrap();
    assert_eq!(field("To"), "+15550100");
    assert_eq!(field("Body"), format!("Brand acme: #1001 shipped {tracking}"));

    // A staff reply in the app is emailed, answerable into the thread; an
    // internal note tells no one.
    let messages = format!("/api/v1/orders/{}/messages", s.order_id);
    let note = s.app.post(&messages, &s.owner.token, json!({"body": "VIP customer, be nice", "internal": true})).await;
    assert_eq!(note.status, StatusCode::CREATED, "{}", note.text);
    let reply = s.app.post(&messages, &s.owner.token, json!({"body": "It arrives Friday.", "channel": "in_app"})).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let mails = emails_after_jobs(&s, 4).await;
    assert_eq!(mails.len(), 4, "{:?}", subjects(&mails));
    assert_eq!(subjects(&mails)[3], "New reply about your order #1001");
    assert!(mails[3].body().contains("It arrives Friday."));
    let reply_to = mails[3].header("Reply-To").unwrap();
    assert!(reply_to.starts_with("reply+") && reply_to.ends_with("@in.consign.test"), "{reply_to}");
    assert!(mails.iter().all(|m| !m.body().contains("VIP")), "a note leaked into an email");

    // The delivery log.
    let log_path = format!("/api/v1/orders/{}/notifications", s.order_id);
    let log = s.app.get(&log_path, &s.owner.token).await;
    assert_eq!(log.status, StatusCode::OK, "{}", log.text);
    let rows: Vec<(String, String, String)> = log.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["kind"].as_str().unwrap().into(),
                n["channel"].as_str().unwrap().into(),
                n["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    let sent = |kind: &str, channel: &str| (kind.to_owned(), channel.to_owned(), "sent".to_owned());
    assert_eq!(rows.len(), 5, "{rows:?}");
    for row in [
        sent("order.created", "email"),
        sent("order.paid", "email"),
        sent("shipment.in_transit", "email"),
        sent("shipment.in_transit", "sms"),
        sent("message.reply", "email"),
    ] {
        assert!(rows.contains(&row), "{row:?} missing from {rows:?}");
    }
    assert_eq!(s.app.get(&log_path, &s.customer).await.status, StatusCode::FORBIDDEN);

    // Running the jobs again sends nothing twice.
    s.app.run_jobs().await;
    assert_eq!(s.smtp.received().len(), 4);
    assert_eq!(s.twilio.recorded().len(), 1);
}

#[tokio::test]
async fn notifications_staff_get_one_digest_per_thread_and_window() {
    let s = shop().await;
    emails_after_jobs(&s, 1).await;
    s.smtp.take();
    let settings = format!("/api/v1/brands/{}/notification-settings", s.brand_id);
    let refused = put(&s.app, &settings, &s.owner.token, json!({"staff_digest_seconds": 0})).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.text);
    let saved = put(&s.app, &settings, &s.owner.token, json!({"staff_digest_seconds": 1})).await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.text);
    assert_eq!(s.app.get(&settings, &s.owner.token).await.body["staff_digest_seconds"], 1);

    let messages = format!("/api/v1/orders/{}/messages", s.order_id);
    let asked = ["Where is my order?", "Is it shipped yet?", "Hello??"];
    for text in asked {
        let posted = s.app.post(&messages, &s.customer, json!({"body": text})).await;
        assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.text);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let digests = loop {
        s.app.run_jobs().await;
        let received = s.smtp.received();
        let covered = asked.iter().all(|text| received.iter().any(|m| m.body().contains(text)));
        if covered || tokio::time::Instant::now() > deadline {
            break received;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for text in asked {
        assert!(digests.iter().any(|m| m.body().contains(text)), "{text} is in no digest: {:?}", subjects(&digests));
    }
    // Three messages within a second make one digest, or two when they
    // straddle the window's edge: never one email per message.
    assert!(digests.len() < asked.len(), "{:?}", subjects(&digests));
    for mail in &digests {
        assert_eq!(mail.rcpt_to, ["owner@acme.example"]);
        assert!(mail.header("Subject").unwrap().contains("on order #1001"), "{:?}", mail.header("Subject"));
        assert!(mail.body().contains(&format!("{PUBLIC}/admin/orders/{}", s.order_id)));
    }

    // Once the thread is assigned, only the assignee is told.
    let colleague = s.app.sign_up("ops@northwind.example", "threepl").await;
    let linked = s
        .app
        .post(
            &format!("/api/v1/brands/{}/fulfillers", s.brand_id),
            &s.owner.token,
            json!({"organization_id": colleague.organization_id}),
        )
        .await;
    assert!(linked.status.is_success(), "{}", linked.text);
    let assigned = s
        .app
        .post(
            &format!("/api/v1/orders/{}/thread/assign", s.order_id),
            &s.owner.token,
            json!({"assignee_id": colleague.user_id}),
        )
        .await;
    assert_eq!(assigned.status, StatusCode::OK, "{}", assigned.text);
    s.smtp.take();
    s.app.post(&messages, &s.customer, json!({"body": "Anyone there?"})).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mails = loop {
        s.app.run_jobs().await;
        let received = s.smtp.received();
        if !received.is_empty() || tokio::time::Instant::now() > deadline {
            break received;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(mails.len(), 1, "{:?}", subjects(&mails));
    assert_eq!(mails[0].rcpt_to, ["ops@northwind.example"]);
    assert!(mails[0].body().contains("Anyone there?"));
    assert!(!mails[0].body().contains("Hello??"), "a message is in one digest only");
}

#[tokio::test]
async fn notifications_templates_are_validated_and_for_brand_admins() {
    let s = shop().await;
    let templates = format!("/api/v1/brands/{}/notification-templates", s.brand_id);
    let listed = s.app.get(&templates, &s.owner.token).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    let all = listed.body["data"].as_array().unwrap();
    assert_eq!(all.len(), 9 * 3, "every kind on email, SMS and WhatsApp");
    let email_on = all.iter().filter(|t| t["channel"] == "email").all(|t| t["enabled"] == true);
    let others_off = all.iter().filter(|t| t["channel"] != "email").all(|t| t["enabled"] == false);
    assert!(email_on && others_off, "{}", listed.text);

    for (path, body, field) in [
        ("order.lost/email", json!({"enabled": true, "subject": "s", "body": "b"}), "kind"),
        ("order.paid/fax", json!({"enabled": true, "subject": "s", "body": "b"}), "channel"),
        ("order.paid/in_app", json!({"enabled": true, "subject": "s", "body": "b"}), "channel"),
        ("order.paid/email", json!({"enabled": true, "subject": "", "body": "b"}), "subject"),
        ("order.paid/sms", json!({"enabled": true, "body": ""}), "body"),
    ] {
        let refused = put(&s.app, &format!("{templates}/{path}"), &s.owner.token, body).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {}", refused.text);
        assert_eq!(refused.body["errors"][0]["field"], field, "{path}: {}", refused.text);
    }
    let unknown = put(
        &s.app,
        &format!("{templates}/order.paid/sms"),
        &s.owner.token,
        json!({"enabled": true, "body": "x", "extra": 1}),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", unknown.text);

    let stranger = s.app.sign_up("someone@else.example", "merchant").await;
    let hidden =
        put(&s.app, &format!("{templates}/order.paid/sms"), &stranger.token, json!({"enabled": true, "body": "x"}))
            .await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    assert_eq!(s.app.get(&templates, &stranger.token).await.status, StatusCode::NOT_FOUND);
    assert_eq!(s.app.get(&templates, &s.customer).await.status, StatusCode::FORBIDDEN);
    let log = s.app.get(&format!("/api/v1/orders/{}/notifications", s.order_id), &stranger.token).await;
    assert_eq!(log.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_customer_who_lost_the_link_gets_it_by_email_and_nobody_else_learns_anything() {
    let smtp = consign_testkit::providers::smtp::SmtpServer::start().await;
    let email = consign_channels::EmailConfig {
        smtp_url: smtp.url.clone(),
        from: "support@consign.test".into(),
        inbound_domain: "in.consign.test".into(),
        mailgun_signing_key: None,
    };
    let channels = consign_channels::ChannelsConfig {
        email: Some(email),
        public_base_url: Some("https://consign.test".into()),
        ..Default::default()
    };
    let app = TestApp::spawn_with(consign_web::WebConfig {
        channels: std::sync::Arc::new(channels),
        ..consign_web::WebConfig::default()
    })
    .await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    app.stocked_brand(&owner, "acme", 1, &[consign_testkit::Sku { sku: "MUG", price: 1500, stock: &[10] }]).await;
    let placed = app.checkout("acme", &[("MUG", 1)], "casey@example.com").await;
    let order_id = placed.body["order"]["id"].as_str().unwrap().to_owned();
    app.run_jobs().await;
    smtp.wait_for(1).await;
    smtp.take();

    // The shop's 404 and its lookup page offer the form.
    let lost = app.send(app.client.get(app.url("/shop/acme/orders/nowhere"))).await;
    assert!(lost.text.contains("id=\"order-lookup\""), "{}", lost.text);
    let lookup = |email: &'static str, number: &'static str| {
        let body = format!("email={}&number={}", email.replace('@', "%40"), number.replace('#', "%23"));
        app.client
            .post(app.url("/shop/acme/order-lookup"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
    };
    // A wrong email or number answers exactly as a match does, and sends nothing.
    for (email, number) in [("someone@else.example", "#1001"), ("casey@example.com", "#1002")] {
        let answer = app.send(lookup(email, number)).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text);
        assert_eq!(answer.header("location"), Some("/shop/acme/order-lookup?sent=1"));
    }
    let bad = app.send(lookup("not-an-email", "x")).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.text.contains("id=\"lookup-error\""), "{}", bad.text);
    // The right pair, in another case and with the '#': the link goes to
    // the order's own address.
    let answer = app.send(lookup("Casey@Example.com", "#1001")).await;
    assert_eq!(answer.header("location"), Some("/shop/acme/order-lookup?sent=1"));
    app.run_jobs().await;
    let mails = smtp.wait_for(1).await;
    assert_eq!(mails.len(), 1, "one email, for the one match");
    assert_eq!(mails[0].rcpt_to, ["casey@example.com"]);
    assert!(mails[0].header("Subject").unwrap().contains("The link to your order #1001"));
    assert!(mails[0].body().contains(&format!("/shop/acme/orders/{order_id}?token=cot_")), "{}", mails[0].body());
    let page = app.send(app.client.get(app.url("/shop/acme/order-lookup?sent=1"))).await;
    assert!(page.text.contains("id=\"lookup-sent\""));
    // The customer's timeline says the link was sent, and nothing more.
    let token = placed.body["order_access_token"].as_str().unwrap();
    let timeline = app.get(&format!("/api/v1/orders/{order_id}/timeline"), token).await;
    let requested: Vec<&Value> =
        timeline.body["data"].as_array().unwrap().iter().filter(|e| e["type"] == "order.link_requested").collect();
    assert_eq!(requested.len(), 1, "{}", timeline.text);
    assert_eq!(requested[0]["payload"], json!({"number": 1001}));
}
