//! The messaging pages over real HTTP: the thread on the staff order page
//! (reply, internal note, canned response, assign, close and reopen, read
//! on open), the customer's conversation on the order page (never a note),
//! the inbox with its filters and unmatched messages, the dashboard's
//! unread figure, payment credentials on the settings page (write-only),
//! and the staff pages' live socket authenticated by the page session.
//! CSRF and other tenants for these forms are also in `pages.rs`
//! (`every_form`).

use std::time::Duration;

use consign_db::inbound::messages::{self as inbound, Inbound, Received};
use consign_domain::messaging::Channel;
use consign_testkit::pages::PageClient;
use consign_testkit::{Sku, StockedBrand, TestApp, TestUser};
use consign_web::WebConfig;
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

async fn shop(app: &TestApp) -> (TestUser, StockedBrand) {
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let shop = app.stocked_brand(&owner, "acme", 1, &[Sku { sku: "TENT", price: 10000, stock: &[5] }]).await;
    (owner, shop)
}

/// Places an order; answers its id and access token.
async fn place(app: &TestApp, shop: &StockedBrand) -> (String, String) {
    let placed = app.checkout(&shop.slug, &[("TENT", 1)], "casey@example.com").await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.text);
    (
        placed.body["order"]["id"].as_str().unwrap().to_owned(),
        placed.body["order_access_token"].as_str().unwrap().to_owned(),
    )
}

/// The customer writes through the form of the order page.
async fn customer_writes(app: &TestApp, order_id: &str, token: &str, body: &str) -> consign_testkit::TestResponse {
    app.send(
        app.client
            .post(app.url(&format!("/shop/acme/orders/{order_id}/messages")))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(consign_testkit::pages::form_body(&[("token", token), ("body", body)])),
    )
    .await
}

/// The order page as the customer's browser opens it from the link.
async fn tracking_page(app: &TestApp, order_id: &str, token: &str) -> String {
    let link = format!("/shop/acme/orders/{order_id}?token={token}");
    let page = PageClient::new(app).get_following(&link).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    page.text
}

#[tokio::test]
async fn staff_answer_on_the_order_page_and_the_customer_never_sees_a_note() {
    let app = TestApp::spawn().await;
    let (owner, shop) = shop(&app).await;
    let (order_id, token) = place(&app, &shop).await;
    let canned = app
        .post(
            &format!("/api/v1/brands/{}/canned-responses", shop.brand_id),
            &owner.token,
            json!({"name": "Shipping soon", "body": "Hi {{customer.name}}, order {{order.number}} ships this week."}),
        )
        .await;
    assert_eq!(canned.status, StatusCode::CREATED, "{}", canned.text);
    let canned_id = canned.body["id"].as_str().unwrap().to_owned();

    // The customer asks on the order page.
    let sent = customer_writes(&app, &order_id, &token, "Where is my tent?").await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.text);
    let back = sent.header("location").unwrap().to_owned();
    assert_eq!(back, format!("/shop/acme/orders/{order_id}?sent=1#messages-h"), "the token stays out of the address");
    let page = tracking_page(&app, &order_id, &token).await;
    assert!(page.contains("Where is my tent?"), "{page}");

    // Staff see it as unread on the dashboard until they open the order.
    let mut client = PageClient::signed_in(&app, &owner.email, &owner.password).await;
    let figures = client.get("/admin/dashboard/figures").await;
    assert!(figures.text.contains("id=\"unread\">1<"), "{}", figures.text);
    let order_path = format!("/admin/orders/{order_id}");
    let order_page = client.get(&order_path).await;
    assert_eq!(order_page.status, StatusCode::OK);
    for needle in ["Where is my tent?", "Customer", "in the app", "Shipping soon", "Hi Casey Customer, order #1001"] {
        assert!(order_page.text.contains(needle), "{needle} missing from the order page");
    }
    let figures = client.get("/admin/dashboard/figures").await;
    assert!(figures.text.contains("id=\"unread\">0<"), "opening the order read it: {}", figures.text);
    let unread = app.get("/api/v1/messages/unread", &owner.token).await;
    assert_eq!(unread.body["messages"], 0, "the page read it for the same user as the API");

    // A reply with the canned response, and an internal note.
    let replied = client
        .post_and_follow(
            &format!("{order_path}/messages"),
            &[("kind", "reply"), ("channel", "in_app"), ("canned_response_id", &canned_id), ("body", "Thanks!")],
        )
        .await;
    assert!(replied.text.contains("Reply posted to the customer"), "{}", replied.text);
    let noted = client
        .post_and_follow(
            &format!("{order_path}/messages"),
            &[("kind", "note"), ("body", "Customer sounds upset; ship first")],
        )
        .await;
    assert!(noted.text.contains("Internal note added"), "{}", noted.text);
    assert!(noted.text.contains("Staff only") && noted.text.contains("Customer sounds upset"), "{}", noted.text);
    let empty = client.post_and_follow(&format!("{order_path}/messages"), &[("kind", "reply"), ("body", " ")]).await;
    assert!(empty.text.contains("Please check: message"), "{}", empty.text);
    let bad_channel = client
        .post_and_follow(&format!("{order_path}/messages"), &[("kind", "reply"), ("channel", "pigeon"), ("body", "x")])
        .await;
    assert!(bad_channel.text.contains("channel: is not one of the choices"), "{}", bad_channel.text);

    // The customer sees the reply (canned text filled in), never the note.
    let page = tracking_page(&app, &order_id, &token).await;
    assert!(page.contains("Hi Casey Customer, order #1001 ships this week.\n\nThanks!"), "{page}");
    assert!(!page.contains("Customer sounds upset"), "a note leaked to the customer page");
    assert!(!page.contains("Internal note"), "a note leaked to the customer page");

    // Assign to self, close and reopen.
    let me = app.get("/api/v1/me", &owner.token).await;
    let user_id = me.body["id"].as_str().or(me.body["user"]["id"].as_str()).unwrap().to_owned();
    let assigned = client.post_and_follow(&format!("{order_path}/thread/assign"), &[("assignee_id", &user_id)]).await;
    assert!(assigned.text.contains("Thread assigned."), "{}", assigned.text);
    assert!(assigned.text.contains("(you)"), "{}", assigned.text);
    let stranger = client
        .post_and_follow(
            &format!("{order_path}/thread/assign"),
            &[("assignee_id", "0195f0c1-0000-7000-8000-000000000000")],
        )
        .await;
    assert!(stranger.text.contains("must be a staff member who can see this brand"), "{}", stranger.text);
    let closed = client.post_and_follow(&format!("{order_path}/thread/close"), &[]).await;
    assert!(closed.text.contains("Thread closed.") && closed.text.contains("Reopen thread"), "{}", closed.text);
    let again = client.post_and_follow(&format!("{order_path}/thread/close"), &[]).await;
    assert!(again.text.contains("already closed"), "{}", again.text);
    let reopened = client.post_and_follow(&format!("{order_path}/thread/reopen"), &[]).await;
    assert!(reopened.text.contains("Thread reopened.") && reopened.text.contains("Close thread"), "{}", reopened.text);
    let thread = app.get(&format!("/api/v1/orders/{order_id}/thread"), &owner.token).await;
    assert_eq!(thread.body["status"], "open");
    assert_eq!(thread.body["assignee_id"], user_id.as_str());
}

#[tokio::test]
async fn customers_write_only_with_their_own_order_token() {
    let app = TestApp::spawn().await;
    let (owner, shop) = shop(&app).await;
    let (order_id, token) = place(&app, &shop).await;
    let (other_id, other_token) = place(&app, &shop).await;
    for (order, token) in [(&order_id, "cot_wrong"), (&order_id, other_token.as_str()), (&order_id, "")] {
        let forged = customer_writes(&app, order, token, "Let me in").await;
        assert_eq!(forged.status, StatusCode::NOT_FOUND, "{token}: {}", forged.text);
    }
    let elsewhere = app
        .send(
            app.client
                .post(app.url(&format!("/shop/other/orders/{order_id}/messages")))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(consign_testkit::pages::form_body(&[("token", &token), ("body", "x")])),
        )
        .await;
    assert_eq!(elsewhere.status, StatusCode::NOT_FOUND);
    let messages = app.get(&format!("/api/v1/orders/{order_id}/messages"), &owner.token).await;
    assert_eq!(messages.body["data"], json!([]), "nothing was written");
    let empty = customer_writes(&app, &other_id, &other_token, "   ").await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
}

/// Files an inbound email from an unknown sender in the brand's inbox.
async fn unmatched_email(app: &TestApp, brand_id: &str, body: &str) {
    let received = inbound::receive(
        app.db(),
        Inbound {
            channel: Channel::Email,
            brand_id: Some(brand_id.parse().unwrap()),
            thread_id: None,
            sender: "someone@elsewhere.example".into(),
            subject: Some("My order".into()),
            body: body.into(),
            external_id: format!("<{}@mail.example>", body.len()),
            sender_verified: true,
            replay_token: None,
        },
    )
    .await
    .unwrap();
    assert!(matches!(received, Received::Inboxed(_)), "{received:?}");
}

#[tokio::test]
async fn the_inbox_filters_threads_and_links_messages_without_an_order() {
    // Email is configured (replies by email are offered); nothing is sent.
    let email = consign_channels::EmailConfig {
        smtp_url: "smtp://127.0.0.1:1".into(),
        from: "support@consign.test".into(),
        inbound_domain: "in.consign.test".into(),
        mailgun_signing_key: None,
    };
    let channels = consign_channels::ChannelsConfig { email: Some(email), ..Default::default() };
    let app = TestApp::spawn_with(WebConfig { channels: std::sync::Arc::new(channels), ..WebConfig::default() }).await;
    let (owner, shop) = shop(&app).await;
    let (order_id, token) = place(&app, &shop).await;
    let (quiet_id, _) = place(&app, &shop).await;
    customer_writes(&app, &order_id, &token, "Can I change the colour?").await;
    unmatched_email(&app, &shop.brand_id, "Hello, where is my parcel?").await;
    let mut client = PageClient::signed_in(&app, &owner.email, &owner.password).await;

    let inbox = client.get("/admin/inbox").await;
    assert_eq!(inbox.status, StatusCode::OK, "{}", inbox.text);
    assert!(inbox.text.contains("aria-current=\"page\">Inbox"), "in the navigation");
    assert!(inbox.text.contains(&format!("/admin/orders/{order_id}")), "{}", inbox.text);
    assert!(!inbox.text.contains(&format!("/admin/orders/{quiet_id}")), "an order without messages has no thread");
    assert!(inbox.text.contains("Hello, where is my parcel?"), "the unmatched email is listed");
    let has_thread = |text: &str| text.contains(&format!("/admin/orders/{order_id}"));
    for (query, expected) in [
        ("unread=1", true),
        ("status=open", true),
        ("status=closed", false),
        ("channel=in_app", true),
        ("channel=email", false),
        ("assigned=me", false),
        ("assigned=none", true),
        (&format!("brand_id={}", shop.brand_id), true),
    ] {
        let page = client.get(&format!("/admin/inbox?{query}")).await;
        assert_eq!(page.status, StatusCode::OK, "{query}");
        assert_eq!(has_thread(&page.text), expected, "{query}");
    }
    let bad = client.get("/admin/inbox?channel=pigeon").await;
    assert!(bad.text.contains("channel: is not one of the choices"), "{}", bad.text);
    // Reading the order clears the unread filter.
    client.get(&format!("/admin/orders/{order_id}")).await;
    assert!(!has_thread(&client.get("/admin/inbox?unread=1").await.text));

    // Link the stray email to the order by its number.
    let item_id = {
        let items = app.get(&format!("/api/v1/inbox?brand_id={}", shop.brand_id), &owner.token).await;
        items.body["data"][0]["id"].as_str().unwrap().to_owned()
    };
    let link = format!("/admin/inbox/items/{item_id}/link");
    let wrong = client.post_and_follow(&link, &[("brand_id", &shop.brand_id), ("order_number", "#9999")]).await;
    assert!(wrong.text.contains("no order #9999 in this brand"), "{}", wrong.text);
    let linked = client.post_and_follow(&link, &[("brand_id", &shop.brand_id), ("order_number", "#1001")]).await;
    assert!(linked.text.contains("Linked to order #1001"), "{}", linked.text);
    assert!(linked.text.contains("Every inbound message found its order."), "{}", linked.text);
    let twice = client.post_and_follow(&link, &[("brand_id", &shop.brand_id), ("order_number", "1001")]).await;
    assert!(twice.text.contains("already linked"), "{}", twice.text);
    let order_page = client.get(&format!("/admin/orders/{order_id}")).await;
    assert!(order_page.text.contains("Hello, where is my parcel?"), "{}", order_page.text);
    assert!(order_page.text.contains("by email"));
    assert!(
        order_page.text.contains("<option value=\"email\" selected>"),
        "a reply goes out on the customer's last channel by default"
    );

    // Another tenant's staff see none of it and cannot link.
    unmatched_email(&app, &shop.brand_id, "Second stray message, longer").await;
    let rival = app.sign_up("rival@other.example", "merchant").await;
    let other = app.create_brand(&rival, "other").await;
    let mut stranger = PageClient::signed_in(&app, &rival.email, &rival.password).await;
    let theirs = stranger.get("/admin/inbox").await;
    assert!(!theirs.text.contains("Second stray") && !has_thread(&theirs.text), "{}", theirs.text);
    assert_eq!(stranger.get(&format!("/admin/inbox?brand_id={}", shop.brand_id)).await.status, StatusCode::NOT_FOUND);
    let items = app.get(&format!("/api/v1/inbox?brand_id={}", shop.brand_id), &owner.token).await;
    let second = items.body["data"][0]["id"].as_str().unwrap().to_owned();
    let path = format!("/admin/inbox/items/{second}/link");
    let refused = stranger.post(&path, &[("brand_id", &shop.brand_id), ("order_number", "1001")]).await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND, "{}", refused.text);
    let own_brand = other["id"].as_str().unwrap();
    let refused = stranger.post(&path, &[("brand_id", own_brand), ("order_number", "1001")]).await;
    assert!(refused.status == StatusCode::NOT_FOUND || refused.status == StatusCode::SEE_OTHER, "{}", refused.text);
    let items = app.get(&format!("/api/v1/inbox?brand_id={}", shop.brand_id), &owner.token).await;
    assert_eq!(items.body["data"][0]["id"], second.as_str(), "still waiting for its order");
}

#[tokio::test]
async fn payment_credentials_on_the_settings_page_are_write_only() {
    let app = TestApp::spawn().await;
    let (owner, shop) = shop(&app).await;
    let mut client = PageClient::signed_in(&app, &owner.email, &owner.password).await;
    let path = format!("/admin/settings/brands/{}", shop.brand_id);
    let before = client.get(&path).await;
    assert!(before.text.contains("id=\"provider-stripe-state\">Not configured"), "{}", before.text);
    assert!(before.text.contains("for=\"stripe-secret_key\""), "every field has a label");

    let missing = client
        .post_and_follow(&format!("{path}/payment-providers/stripe"), &[("secret_key", "sk_test_SECRET123")])
        .await;
    assert!(missing.text.contains("webhook secret: is required"), "{}", missing.text);
    let saved = client
        .post_and_follow(
            &format!("{path}/payment-providers/stripe"),
            &[
                ("secret_key", "sk_test_SECRET123"),
                ("webhook_secret", "whsec_SECRET456"),
                ("publishable_key", "pk_test_public789"),
            ],
        )
        .await;
    assert!(saved.text.contains("Stripe credentials saved."), "{}", saved.text);
    assert!(saved.text.contains("id=\"provider-stripe-state\">Configured"), "{}", saved.text);
    assert!(saved.text.contains("pk_test_public789"), "the public id is shown");
    for secret in ["sk_test_SECRET123", "whsec_SECRET456"] {
        assert!(!saved.text.contains(secret), "the page shows a secret");
    }
    let listed = app.get(&format!("/api/v1/brands/{}/payment-providers", shop.brand_id), &owner.token).await;
    assert_eq!(listed.body["data"][0]["provider"], "stripe", "{}", listed.text);
    assert!(!listed.text.contains("SECRET"));
    let unknown = client.post(&format!("{path}/payment-providers/bitcoin"), &[("key", "x")]).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    // A brand member may look but not set credentials.
    let member = app.sign_up("member@acme.example", "merchant").await;
    let invited = app
        .post(
            &format!("/api/v1/brands/{}/members", shop.brand_id),
            &owner.token,
            json!({"email": member.email, "role": "brand_member"}),
        )
        .await;
    assert!(invited.status.is_success(), "{}", invited.text);
    let token = invited.body["token"].as_str().unwrap();
    let added =
        app.post_anonymous(&format!("/api/v1/invitations/{token}/accept"), json!({"password": member.password})).await;
    assert!(added.status.is_success(), "{}", added.text);
    let mut member_client = PageClient::signed_in(&app, &member.email, &member.password).await;
    let page = member_client.get(&path).await;
    assert!(page.text.contains("id=\"provider-stripe-state\">Configured"), "{}", page.text);
    assert!(!page.text.contains("payment-providers/stripe\""), "no form for a member");
    let refused = member_client
        .post_and_follow(
            &format!("{path}/payment-providers/razorpay"),
            &[("key_id", "rzp_x"), ("key_secret", "s"), ("webhook_secret", "w")],
        )
        .await;
    assert!(refused.text.contains("Your role does not allow this action."), "{}", refused.text);
    let listed = app.get(&format!("/api/v1/brands/{}/payment-providers", shop.brand_id), &owner.token).await;
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 1, "{}", listed.text);
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn staff_socket(app: &TestApp, cookie: &str, origin: Option<&str>) -> Result<Socket, String> {
    let mut request = format!("{}/admin/live", app.address.replace("http://", "ws://")).into_client_request().unwrap();
    request.headers_mut().insert("cookie", cookie.parse().unwrap());
    if let Some(origin) = origin {
        request.headers_mut().insert("origin", origin.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(socket),
        Err(error) => Err(error.to_string()),
    }
}

/// The next `message.created` frame, within a deadline.
async fn next_message(socket: &mut Socket) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let frame = tokio::time::timeout_at(deadline, socket.next())
            .await
            .expect("a message within the deadline")
            .expect("the socket stays open")
            .expect("a frame");
        if let Frame::Text(text) = frame {
            let event: Value = serde_json::from_str(&text).unwrap();
            if event["type"] == "message.created" {
                return event;
            }
        }
    }
}

#[tokio::test]
async fn the_staff_pages_live_socket_uses_the_page_session() {
    let app = TestApp::spawn().await;
    let (owner, shop) = shop(&app).await;
    let (order_id, token) = place(&app, &shop).await;
    let client = PageClient::signed_in(&app, &owner.email, &owner.password).await;

    let refused = staff_socket(&app, "consign_session=forged", None).await;
    assert!(refused.is_err(), "a socket without a session");
    let cross_site = staff_socket(&app, &client.cookie_header(), Some("http://evil.example")).await;
    assert!(cross_site.as_ref().is_err_and(|e| e.contains("403")), "{:?}", cross_site.as_ref().err());
    let origin = app.address.clone();
    let mut socket = staff_socket(&app, &client.cookie_header(), Some(&origin)).await.expect("same-site socket");

    customer_writes(&app, &order_id, &token, "Is it waterproof?").await;
    let event = next_message(&mut socket).await;
    assert_eq!(event["payload"]["body"], "Is it waterproof?");
    assert_eq!(event["payload"]["order_id"], order_id.as_str());

    // Another tenant's staff socket does not get it.
    let rival = app.sign_up("rival@other.example", "merchant").await;
    app.create_brand(&rival, "other").await;
    let stranger = PageClient::signed_in(&app, &rival.email, &rival.password).await;
    let mut theirs = staff_socket(&app, &stranger.cookie_header(), None).await.expect("their socket");
    customer_writes(&app, &order_id, &token, "Second question").await;
    assert_eq!(next_message(&mut socket).await["payload"]["body"], "Second question");
    let nothing = tokio::time::timeout(Duration::from_millis(500), theirs.next()).await;
    assert!(nothing.is_err(), "another tenant got a frame: {nothing:?}");
}

#[tokio::test]
async fn attachment_links_on_both_pages_serve_only_what_each_may_see() {
    let app = TestApp::spawn().await;
    let (owner, shop) = shop(&app).await;
    let (order_id, token) = place(&app, &shop).await;
    let upload = |bearer: &str, name: &str, bytes: &[u8]| {
        app.client
            .post(app.url(&format!("/api/v1/orders/{order_id}/attachments?file_name={name}")))
            .bearer_auth(bearer)
            .header("content-type", "text/plain")
            .body(bytes.to_vec())
    };
    let receipt = app.send(upload(&owner.token, "receipt.txt", b"paid in full")).await;
    assert_eq!(receipt.status, StatusCode::CREATED, "{}", receipt.text);
    let receipt_id = receipt.body["id"].as_str().unwrap().to_owned();
    let claim = app.send(upload(&owner.token, "claim.txt", b"carrier claim 42")).await;
    let claim_id = claim.body["id"].as_str().unwrap().to_owned();
    let messages = format!("/api/v1/orders/{order_id}/messages");
    let posted = app
        .post(
            &messages,
            &owner.token,
            json!({"body": "Your receipt", "channel": "in_app", "attachment_ids": [receipt_id]}),
        )
        .await;
    assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.text);
    app.post(&messages, &owner.token, json!({"body": "Claim filed", "internal": true, "attachment_ids": [claim_id]}))
        .await;

    // Staff: both files link to the page route, which serves them.
    let mut client = PageClient::signed_in(&app, &owner.email, &owner.password).await;
    let page = client.get(&format!("/admin/orders/{order_id}")).await;
    for id in [&receipt_id, &claim_id] {
        assert!(page.text.contains(&format!("href=\"/admin/attachments/{id}\"")), "{}", page.text);
    }
    let file = client.get(&format!("/admin/attachments/{claim_id}")).await;
    assert_eq!(file.status, StatusCode::OK);
    assert_eq!(file.text, "carrier claim 42");

    // The customer: the receipt only, with the order cookie the link left.
    let mut customer = PageClient::new(&app);
    let page = customer.get_following(&format!("/shop/acme/orders/{order_id}?token={token}")).await.text;
    let link = format!("/shop/acme/orders/{order_id}/attachments/{receipt_id}");
    assert!(page.contains(&format!("href=\"{link}\"")), "{page}");
    assert!(!page.contains(&claim_id), "the note's file is listed for the customer");
    let file = customer.get(&link).await;
    assert_eq!(file.status, StatusCode::OK);
    assert_eq!(file.text, "paid in full");
    assert_eq!(
        customer.get(&format!("/shop/acme/orders/{order_id}/attachments/{claim_id}")).await.status,
        StatusCode::NOT_FOUND
    );
    for forbidden in [format!("{link}?token=cot_wrong"), link.clone()] {
        assert_eq!(app.send(app.client.get(app.url(&forbidden))).await.status, StatusCode::NOT_FOUND, "{forbidden}");
    }
    // Another tenant's staff cannot fetch it through their pages.
    let rival = app.sign_up("rival@other.example", "merchant").await;
    app.create_brand(&rival, "other").await;
    let mut stranger = PageClient::signed_in(&app, &rival.email, &rival.password).await;
    assert_eq!(stranger.get(&format!("/admin/attachments/{receipt_id}")).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_brand_sets_up_its_notification_templates_and_canned_responses_in_the_pages() {
    let app = TestApp::spawn().await;
    let (owner, shop) = shop(&app).await;
    let mut staff = PageClient::signed_in(&app, &owner.email, &owner.password).await;
    let settings = staff.get(&format!("/admin/settings/brands/{}", shop.brand_id)).await;
    let messages = format!("/admin/settings/brands/{}/messages", shop.brand_id);
    assert!(settings.text.contains(&format!("href=\"{messages}\"")), "{}", settings.text);
    let page = staff.get(&messages).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains("id=\"no-canned\""), "{}", page.text);
    let api = format!("/api/v1/brands/{}/notification-templates", shop.brand_id);
    let templates = app.get(&api, &owner.token).await;
    let kind = templates.body["data"][0]["kind"].as_str().unwrap().to_owned();
    let save = |channel: &str| format!("/admin/settings/brands/{}/templates/{kind}/{channel}", shop.brand_id);
    assert!(page.text.contains(&format!("action=\"{}\"", save("email"))), "{}", page.text);

    // The brand's own email wording, saved from the page.
    let saved = staff
        .post_and_follow(
            &save("email"),
            &[("enabled", "on"), ("subject", "Order {{order.number}} news"), ("body", "Hello {{customer.name}}!")],
        )
        .await;
    assert!(saved.text.contains("saved."), "{}", saved.text);
    let templates = app.get(&api, &owner.token).await;
    let email = templates.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["kind"] == kind.as_str() && t["channel"] == "email")
        .unwrap()
        .clone();
    assert_eq!(email["subject"], "Order {{order.number}} news");
    assert_eq!(email["customized"], true);
    // Refusals in words: an email without a subject, an SMS nobody approved.
    let refused = staff.post_and_follow(&save("email"), &[("enabled", "on"), ("subject", " "), ("body", "x")]).await;
    assert!(refused.text.contains("subject") && refused.text.contains("required for email"), "{}", refused.text);
    let sms = staff.post_and_follow(&save("sms"), &[("enabled", "on"), ("body", "Paid!")]).await;
    assert!(sms.text.contains("needs an operator"), "{}", sms.text);

    // A canned response, then offered on the order's thread.
    let added = staff
        .post_and_follow(
            &format!("/admin/settings/brands/{}/canned-responses", shop.brand_id),
            &[("name", "Thanks"), ("body", "Thank you, {{customer.name}}.")],
        )
        .await;
    assert!(added.text.contains("Canned response “Thanks” added."), "{}", added.text);
    let empty = staff
        .post_and_follow(
            &format!("/admin/settings/brands/{}/canned-responses", shop.brand_id),
            &[("name", " "), ("body", "x")],
        )
        .await;
    assert!(empty.text.contains("name") && empty.text.contains("1 to 100 characters"), "{}", empty.text);
    let (order_id, _) = place(&app, &shop).await;
    let order_page = staff.get(&format!("/admin/orders/{order_id}")).await;
    assert!(order_page.text.contains("Thanks"), "the canned response is not offered on the thread");
}
