//! Order messaging over HTTP: the conversation of a customer and two staff
//! members, internal notes that never reach the customer, read receipts,
//! unread counts, thread status and assignment, canned responses, system
//! messages from order events, search, and tenant isolation.

use consign_testkit::{Sku, StockedBrand, TestApp, TestUser};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A brand, its owner, a 3PL fulfilling for it, and one placed order with
/// its customer token.
struct Conversation {
    owner: TestUser,
    threepl: TestUser,
    shop: StockedBrand,
    order_id: String,
    customer: String,
}

async fn conversation(app: &TestApp) -> Conversation {
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let threepl = app.sign_up("ops@northwind.example", "threepl").await;
    let shop = app.stocked_brand(&owner, "acme", 1, &[Sku { sku: "MUG", price: 1500, stock: &[10] }]).await;
    let linked = app
        .post(
            &format!("/api/v1/brands/{}/fulfillers", shop.brand_id),
            &owner.token,
            json!({"organization_id": threepl.organization_id}),
        )
        .await;
    assert!(linked.status.is_success(), "{}", linked.text);
    let placed = app.checkout(&shop.slug, &[("MUG", 2)], "casey@example.com").await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.text);
    Conversation {
        order_id: placed.body["order"]["id"].as_str().unwrap().to_owned(),
        customer: placed.body["order_access_token"].as_str().unwrap().to_owned(),
        owner,
        threepl,
        shop,
    }
}

fn messages_path(order_id: &str) -> String {
    format!("/api/v1/orders/{order_id}/messages")
}

async fn post_message(app: &TestApp, token: &str, order_id: &str, body: Value) -> Value {
    let posted = app.post(&messages_path(order_id), token, body).await;
    assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.text);
    posted.body
}

fn bodies(page: &Value) -> Vec<String> {
    page["data"].as_array().unwrap().iter().map(|m| m["body"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn a_customer_and_two_staff_members_talk_on_the_order_and_notes_stay_internal() {
    let app = TestApp::spawn().await;
    let c = conversation(&app).await;

    let question = post_message(&app, &c.customer, &c.order_id, json!({"body": "Where is my order?"})).await;
    assert_eq!(question["sender_role"], "customer");
    assert_eq!(question["channel"], "in_app");
    assert_eq!(question["internal"], false);
    assert_eq!(question["order_id"], c.order_id.as_str());
    assert!(question["thread_id"].is_string());

    let thread = app.get(&format!("/api/v1/orders/{}/thread", c.order_id), &c.owner.token).await;
    assert_eq!(thread.body["status"], "open");
    assert_eq!(thread.body["unread"], 1);
    assert_eq!(thread.body["order_number"], "#1001");
    assert!(thread.body["first_response_at"].is_null());

    let note = post_message(
        &app,
        &c.threepl.token,
        &c.order_id,
        json!({"body": "Carrier pickup delayed, do not promise Friday", "internal": true}),
    )
    .await;
    assert_eq!(note["sender_role"], "threepl");
    assert_eq!(note["internal"], true);
    let reply =
        post_message(&app, &c.owner.token, &c.order_id, json!({"body": "It leaves the warehouse tomorrow."})).await;
    assert_eq!(reply["sender_role"], "brand");
    assert_eq!(reply["sender_id"], c.owner.user_id.as_str());

    // Staff see the whole thread, the customer never sees the note.
    let staff_view = app.get(&messages_path(&c.order_id), &c.threepl.token).await;
    assert_eq!(
        bodies(&staff_view.body),
        ["Where is my order?", "Carrier pickup delayed, do not promise Friday", "It leaves the warehouse tomorrow."]
    );
    let customer_view = app.get(&messages_path(&c.order_id), &c.customer).await;
    assert_eq!(bodies(&customer_view.body), ["Where is my order?", "It leaves the warehouse tomorrow."]);
    let found = app.get("/api/v1/messages/search?q=carrier", &c.customer).await;
    assert_eq!(found.status, StatusCode::OK);
    assert!(bodies(&found.body).is_empty(), "search must not show notes to customers: {}", found.text);
    let note_id = note["id"].as_str().unwrap();
    let read_note = app
        .request(Method::POST, &format!("{}/{note_id}/read", messages_path(&c.order_id)), Some(&c.customer), None)
        .await;
    assert_eq!(read_note.status, StatusCode::NOT_FOUND);
    let forged =
        app.post(&messages_path(&c.order_id), &c.customer, json!({"body": "let me in", "internal": true})).await;
    assert_eq!(forged.status, StatusCode::UNPROCESSABLE_ENTITY);

    // The first reply sets the response time; receipts and unread counts.
    let thread = app.get(&format!("/api/v1/orders/{}/thread", c.order_id), &c.owner.token).await;
    assert!(thread.body["first_response_at"].is_string());
    let customer_thread = app.get(&format!("/api/v1/orders/{}/thread", c.order_id), &c.customer).await;
    assert_eq!(customer_thread.body["unread"], 1, "one staff reply, the note does not count");
    let reply_id = reply["id"].as_str().unwrap();
    let read = app
        .request(Method::POST, &format!("{}/{reply_id}/read", messages_path(&c.order_id)), Some(&c.customer), None)
        .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text);
    assert_eq!(read.body["read_by"][0]["reader_id"], "customer");
    assert_eq!(read.body["read_by"][0]["role"], "customer");
    let customer_thread = app.get(&format!("/api/v1/orders/{}/thread", c.order_id), &c.customer).await;
    assert_eq!(customer_thread.body["unread"], 0);
    let unread = app.get("/api/v1/messages/unread", &c.owner.token).await;
    assert_eq!(unread.body, json!({"messages": 1, "threads": 1}));
    let question_id = question["id"].as_str().unwrap();
    app.request(
        Method::POST,
        &format!("{}/{question_id}/read", messages_path(&c.order_id)),
        Some(&c.owner.token),
        None,
    )
    .await;
    let unread = app.get("/api/v1/messages/unread", &c.owner.token).await;
    assert_eq!(unread.body, json!({"messages": 0, "threads": 0}));
    let unread_3pl = app.get("/api/v1/messages/unread", &c.threepl.token).await;
    assert_eq!(unread_3pl.body, json!({"messages": 1, "threads": 1}), "receipts are per reader");

    // Close, and a new customer message reopens.
    let closed = app
        .request(Method::POST, &format!("/api/v1/orders/{}/thread/close", c.order_id), Some(&c.owner.token), None)
        .await;
    assert_eq!(closed.body["status"], "closed");
    assert!(closed.body["resolved_at"].is_string());
    let again = app
        .request(Method::POST, &format!("/api/v1/orders/{}/thread/close", c.order_id), Some(&c.owner.token), None)
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.code(), "invalid_transition");
    let by_customer = app
        .request(Method::POST, &format!("/api/v1/orders/{}/thread/close", c.order_id), Some(&c.customer), None)
        .await;
    assert_eq!(by_customer.status, StatusCode::FORBIDDEN, "a staff route refuses an order token");
    post_message(&app, &c.customer, &c.order_id, json!({"body": "Thanks! One more question."})).await;
    let thread = app.get(&format!("/api/v1/orders/{}/thread", c.order_id), &c.owner.token).await;
    assert_eq!(thread.body["status"], "open");

    // Assignment, to staff who can see the brand only.
    let assign_path = format!("/api/v1/orders/{}/thread/assign", c.order_id);
    let assigned = app.post(&assign_path, &c.owner.token, json!({"assignee_id": c.threepl.user_id})).await;
    assert_eq!(assigned.status, StatusCode::OK, "{}", assigned.text);
    assert_eq!(assigned.body["assignee_id"], c.threepl.user_id.as_str());
    let mine = app.get("/api/v1/threads?assigned_to=me", &c.threepl.token).await;
    assert_eq!(mine.body["data"].as_array().unwrap().len(), 1);
    let outsider = app.sign_up("eve@elsewhere.example", "merchant").await;
    let refused = app.post(&assign_path, &c.owner.token, json!({"assignee_id": outsider.user_id})).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let unassigned = app.post(&assign_path, &c.owner.token, json!({"assignee_id": null})).await;
    assert!(unassigned.body["assignee_id"].is_null());

    let times = app.get("/api/v1/analytics/response-times", &c.owner.token).await;
    assert_eq!(times.status, StatusCode::OK, "{}", times.text);
    assert_eq!(times.body["threads"], 1);
    assert_eq!(times.body["answered"], 1);
    assert_eq!(times.body["resolved"], 0, "reopened by the customer");
    assert!(times.body["mean_first_response_seconds"].as_f64().unwrap() >= 0.0);

    // Every change is on the timeline of events and in the audit log.
    let events = app.events_until("/api/v1/events?type=thread.assigned", &c.owner.token, 2).await;
    assert_eq!(events.body["data"].as_array().unwrap().len(), 2, "{}", events.text);
}

#[tokio::test]
async fn other_tenants_and_other_orders_get_404_and_change_nothing() {
    let app = TestApp::spawn().await;
    let c = conversation(&app).await;
    let note = post_message(&app, &c.owner.token, &c.order_id, json!({"body": "vip", "internal": true})).await;
    let other = app.checkout(&c.shop.slug, &[("MUG", 1)], "other@example.com").await;
    let other_order = other.body["order"]["id"].as_str().unwrap();
    let other_customer = other.body["order_access_token"].as_str().unwrap();
    let intruder = app.sign_up("eve@elsewhere.example", "merchant").await;

    for token in [intruder.token.as_str(), other_customer] {
        let list = app.get(&messages_path(&c.order_id), token).await;
        assert_eq!(list.status, StatusCode::NOT_FOUND, "{}", list.text);
        let post = app.post(&messages_path(&c.order_id), token, json!({"body": "hi"})).await;
        assert_eq!(post.status, StatusCode::NOT_FOUND);
        let thread = app.get(&format!("/api/v1/orders/{}/thread", c.order_id), token).await;
        assert_eq!(thread.status, StatusCode::NOT_FOUND);
        let read = app
            .request(
                Method::POST,
                &format!("{}/{}/read", messages_path(&c.order_id), note["id"].as_str().unwrap()),
                Some(token),
                None,
            )
            .await;
        assert_eq!(read.status, StatusCode::NOT_FOUND);
        let found = app.get("/api/v1/messages/search?q=vip", token).await;
        assert!(bodies(&found.body).is_empty());
    }
    // A message id of one order under another order's path.
    let crossed = app
        .request(
            Method::POST,
            &format!("{}/{}/read", messages_path(other_order), note["id"].as_str().unwrap()),
            Some(&c.owner.token),
            None,
        )
        .await;
    assert_eq!(crossed.status, StatusCode::NOT_FOUND);
    let threads = app.get("/api/v1/threads", &intruder.token).await;
    assert_eq!(threads.body["data"].as_array().unwrap().len(), 0);
    let canned = app.get(&format!("/api/v1/brands/{}/canned-responses", c.shop.brand_id), &intruder.token).await;
    assert_eq!(canned.status, StatusCode::NOT_FOUND);

    let staff_view = app.get(&messages_path(&c.order_id), &c.owner.token).await;
    assert_eq!(bodies(&staff_view.body), ["vip"], "nothing was added by the intruders");
}

#[tokio::test]
async fn bad_message_input_is_refused_with_the_field_named() {
    let app = TestApp::spawn().await;
    let c = conversation(&app).await;
    let path = messages_path(&c.order_id);
    for (body, field) in [
        (json!({"body": "   "}), "body"),
        (json!({"body": "x".repeat(10_001)}), "body"),
        (json!({"body": "hi", "channel": "pigeon"}), ""),
        (json!({"body": "hi", "internal": true, "channel": "email"}), "channel"),
        (json!({"body": "hi", "attachment_ids": ["01890000-0000-7000-8000-000000000000"]}), "attachment_ids"),
    ] {
        let refused = app.post(&path, &c.owner.token, body.clone()).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {}", refused.text);
        if !field.is_empty() {
            assert_eq!(refused.body["errors"][0]["field"], field, "{}", refused.text);
        }
    }
    let by_sms = app.post(&path, &c.customer, json!({"body": "hi", "channel": "sms"})).await;
    assert_eq!(by_sms.status, StatusCode::UNPROCESSABLE_ENTITY);
    let search = app.get(&format!("/api/v1/messages/search?q={}", "a".repeat(201)), &c.owner.token).await;
    assert_eq!(search.status, StatusCode::UNPROCESSABLE_ENTITY);
    let weird = app.get("/api/v1/messages/search?q=%22OR%20NEAR(*%20%5E", &c.owner.token).await;
    assert_eq!(weird.status, StatusCode::OK, "search syntax in user input is just text: {}", weird.text);
}

#[tokio::test]
async fn order_events_post_system_messages_with_the_tracking_link() {
    let app = TestApp::spawn().await;
    let c = conversation(&app).await;
    let paid = app
        .post(
            &format!("/api/v1/orders/{}/payments", c.order_id),
            &c.owner.token,
            json!({"amount": 3000, "method": "manual"}),
        )
        .await;
    assert_eq!(paid.body["payment_status"], "paid", "{}", paid.text);
    app.run_jobs().await;
    let fos = app.get(&format!("/api/v1/orders/{}/fulfillment-orders", c.order_id), &c.owner.token).await;
    let fo = &fos.body["data"][0];
    let shipment = app
        .post(
            &format!("/api/v1/fulfillment-orders/{}/shipments", fo["id"].as_str().unwrap()),
            &c.threepl.token,
            json!({"items": [{"order_item_id": fo["items"][0]["order_item_id"], "quantity": 2}], "carrier": "ups", "tracking_number": "1Z999"}),
        )
        .await;
    assert_eq!(shipment.status, StatusCode::CREATED, "{}", shipment.text);
    let shipment_id = shipment.body["id"].as_str().unwrap();
    for status in ["in_transit", "delivered"] {
        let moved = app
            .post(&format!("/api/v1/shipments/{shipment_id}/status"), &c.threepl.token, json!({"status": status}))
            .await;
        assert_eq!(moved.status, StatusCode::OK, "{}", moved.text);
    }
    let seen = app.get(&messages_path(&c.order_id), &c.customer).await;
    let messages = seen.body["data"].as_array().unwrap();
    assert!(messages.iter().all(|m| m["sender_role"] == "system"));
    let texts = bodies(&seen.body);
    assert_eq!(texts.len(), 3, "{texts:?}");
    assert!(texts[0].starts_with("Payment received"));
    assert!(texts[1].contains("https://www.ups.com/track?tracknum=1Z999"), "{}", texts[1]);
    assert_eq!(texts[2], "Your order was delivered.");

    let other = app.checkout(&c.shop.slug, &[("MUG", 1)], "other@example.com").await;
    let other_id = other.body["order"]["id"].as_str().unwrap();
    app.post(&format!("/api/v1/orders/{other_id}/cancel"), &c.owner.token, json!({"reason": "out of season"})).await;
    let cancelled = app.get(&messages_path(other_id), &c.owner.token).await;
    // The reason is staff text: the customer is told only that it was cancelled.
    assert_eq!(bodies(&cancelled.body), ["This order was cancelled."]);
}

#[tokio::test]
async fn canned_responses_fill_in_the_order() {
    let app = TestApp::spawn().await;
    let c = conversation(&app).await;
    let path = format!("/api/v1/brands/{}/canned-responses", c.shop.brand_id);
    let created = app
        .post(
            &path,
            &c.owner.token,
            json!({"name": "eta", "body": "Hi {{customer.name}}, {{order.number}} ships today."}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let duplicate = app.post(&path, &c.owner.token, json!({"name": "eta", "body": "again"})).await;
    assert_eq!(duplicate.status, StatusCode::UNPROCESSABLE_ENTITY);
    let listed = app.get(&path, &c.threepl.token).await;
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 1);

    let reply = post_message(
        &app,
        &c.threepl.token,
        &c.order_id,
        json!({"canned_response_id": created.body["id"], "body": "Sorry for the wait."}),
    )
    .await;
    assert_eq!(reply["body"], "Hi Casey Customer, #1001 ships today.\n\nSorry for the wait.");
    let by_customer =
        app.post(&messages_path(&c.order_id), &c.customer, json!({"canned_response_id": created.body["id"]})).await;
    assert_eq!(by_customer.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn search_matches_stemmed_words_with_every_filter_inside_the_tenant() {
    let app = TestApp::spawn().await;
    let c = conversation(&app).await;
    post_message(&app, &c.customer, &c.order_id, json!({"body": "Has my parcel shipped yet?"})).await;
    post_message(&app, &c.owner.token, &c.order_id, json!({"body": "Shipping label printed", "internal": true})).await;
    post_message(&app, &c.owner.token, &c.order_id, json!({"body": "Your parcel ships tomorrow"})).await;
    // Another tenant says the same words.
    let other_owner = app.sign_up("owner@globex.example", "merchant").await;
    let globex = app.stocked_brand(&other_owner, "globex", 1, &[Sku { sku: "CUP", price: 900, stock: &[3] }]).await;
    let theirs = app.checkout(&globex.slug, &[("CUP", 1)], "pat@example.com").await;
    let their_token = theirs.body["order_access_token"].as_str().unwrap();
    post_message(&app, their_token, theirs.body["order"]["id"].as_str().unwrap(), json!({"body": "parcel shipping?"}))
        .await;

    let search = |query: &str| {
        let path = format!("/api/v1/messages/search?{query}");
        let token = c.owner.token.clone();
        let app = &app;
        async move { app.get(&path, &token).await }
    };
    let mut ship = bodies(&search("q=shipping").await.body);
    ship.sort();
    assert_eq!(ship, ["Has my parcel shipped yet?", "Shipping label printed", "Your parcel ships tomorrow"]);
    assert_eq!(bodies(&search("q=parcel%20tomorrow").await.body), ["Your parcel ships tomorrow"]);
    assert_eq!(bodies(&search("q=ship&sender_role=customer").await.body), ["Has my parcel shipped yet?"]);
    assert_eq!(bodies(&search("q=ship&unread=true").await.body), ["Has my parcel shipped yet?"]);
    assert_eq!(bodies(&search("q=ship&channel=email").await.body), Vec::<String>::new());
    assert_eq!(bodies(&search("q=ship&thread_status=closed").await.body), Vec::<String>::new());
    assert_eq!(bodies(&search("q=ship&thread_status=open").await.body).len(), 3);
    let first = search("q=ship&limit=2").await;
    assert_eq!(first.body["data"].as_array().unwrap().len(), 2);
    let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    let second = search(&format!("q=ship&limit=2&cursor={cursor}")).await;
    assert_eq!(second.body["data"].as_array().unwrap().len(), 1);
    assert!(second.body["next_cursor"].is_null());
    let pages = [bodies(&first.body), bodies(&second.body)].concat();
    assert_eq!(
        pages,
        ["Your parcel ships tomorrow", "Shipping label printed", "Has my parcel shipped yet?"],
        "newest first"
    );
    let customer = app.get("/api/v1/messages/search?q=ship", &c.customer).await;
    let mut theirs_seen = bodies(&customer.body);
    theirs_seen.sort();
    assert_eq!(theirs_seen, ["Has my parcel shipped yet?", "Your parcel ships tomorrow"]);
}

#[tokio::test]
async fn attachments_are_checked_stored_and_served_only_to_those_who_may_see_them() {
    let app = TestApp::spawn().await;
    let c = conversation(&app).await;
    let upload = |token: &str, order_id: &str, name: &str, content_type: &str, bytes: Vec<u8>| {
        app.client
            .post(app.url(&format!("/api/v1/orders/{order_id}/attachments?file_name={name}")))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(bytes)
    };
    let png = [b"\x89PNG\r\n\x1a\n".as_slice(), &[7u8; 64]].concat();
    let uploaded = app.send(upload(&c.customer, &c.order_id, "box.png", "image/png", png.clone())).await;
    assert_eq!(uploaded.status, StatusCode::CREATED, "{}", uploaded.text);
    assert_eq!(uploaded.body["size"], png.len());
    let photo = uploaded.body["id"].as_str().unwrap().to_owned();

    for (name, content_type, bytes, status) in [
        ("x.exe", "application/x-msdownload", b"MZ".to_vec(), StatusCode::UNPROCESSABLE_ENTITY),
        ("fake.png", "image/png", b"not a png".to_vec(), StatusCode::UNPROCESSABLE_ENTITY),
        ("empty.txt", "text/plain", Vec::new(), StatusCode::UNPROCESSABLE_ENTITY),
        ("big.txt", "text/plain", vec![b'a'; 10 * 1024 * 1024 + 1], StatusCode::PAYLOAD_TOO_LARGE),
    ] {
        let refused = app.send(upload(&c.owner.token, &c.order_id, name, content_type, bytes)).await;
        assert_eq!(refused.status, status, "{name}: {}", refused.text);
    }

    let message =
        post_message(&app, &c.customer, &c.order_id, json!({"body": "It arrived broken", "attachment_ids": [photo]}))
            .await;
    assert_eq!(message["attachments"][0]["id"], photo.as_str());
    assert_eq!(message["attachments"][0]["content_type"], "image/png");
    let reused =
        app.post(&messages_path(&c.order_id), &c.customer, json!({"body": "again", "attachment_ids": [photo]})).await;
    assert_eq!(reused.status, StatusCode::UNPROCESSABLE_ENTITY, "a file is sent once");

    let download =
        |token: &str, id: &str| app.client.get(app.url(&format!("/api/v1/attachments/{id}"))).bearer_auth(token);
    for token in [c.customer.as_str(), c.owner.token.as_str(), c.threepl.token.as_str()] {
        let response = download(token, &photo).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "image/png");
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        assert_eq!(response.bytes().await.unwrap().as_ref(), png.as_slice());
    }

    // A file on an internal note stays with staff.
    let log = app.send(upload(&c.owner.token, &c.order_id, "carrier.txt", "text/plain", b"claim 42".to_vec())).await;
    let log_id = log.body["id"].as_str().unwrap().to_owned();
    post_message(
        &app,
        &c.owner.token,
        &c.order_id,
        json!({"body": "claim filed", "internal": true, "attachment_ids": [log_id]}),
    )
    .await;
    assert_eq!(download(&c.customer, &log_id).send().await.unwrap().status(), StatusCode::NOT_FOUND);
    assert_eq!(download(&c.owner.token, &log_id).send().await.unwrap().status(), StatusCode::OK);

    // Other tenants and other orders.
    let intruder = app.sign_up("eve@elsewhere.example", "merchant").await;
    assert_eq!(download(&intruder.token, &photo).send().await.unwrap().status(), StatusCode::NOT_FOUND);
    let other = app.checkout(&c.shop.slug, &[("MUG", 1)], "other@example.com").await;
    let other_token = other.body["order_access_token"].as_str().unwrap();
    assert_eq!(download(other_token, &photo).send().await.unwrap().status(), StatusCode::NOT_FOUND);
    let stolen = app.send(upload(&intruder.token, &c.order_id, "x.txt", "text/plain", b"hi".to_vec())).await;
    assert_eq!(stolen.status, StatusCode::NOT_FOUND);
    let borrowed = app
        .post(
            &messages_path(other.body["order"]["id"].as_str().unwrap()),
            other_token,
            json!({"body": "mine?", "attachment_ids": [photo]}),
        )
        .await;
    assert_eq!(borrowed.status, StatusCode::UNPROCESSABLE_ENTITY, "a file of another order cannot be attached");
}

#[tokio::test]
async fn a_customer_search_finds_exactly_its_orders_matches_among_many_of_other_tenants() {
    // Seventy posts by one staff member: lift the per-caller post limit.
    let rate_limits = consign_web::auth::rate_limit::RateLimits::unlimited();
    let app = TestApp::spawn_with(consign_web::WebConfig { rate_limits, ..consign_web::WebConfig::default() }).await;
    let c = conversation(&app).await;
    // Another tenant's order says the word many times, newer than ours too.
    let other_owner = app.sign_up("owner@globex.example", "merchant").await;
    let globex = app.stocked_brand(&other_owner, "globex", 1, &[Sku { sku: "CUP", price: 900, stock: &[3] }]).await;
    let theirs = app.checkout(&globex.slug, &[("CUP", 1)], "pat@example.com").await;
    let their_order = theirs.body["order"]["id"].as_str().unwrap().to_owned();
    for index in 0..60 {
        post_message(&app, &other_owner.token, &their_order, json!({"body": format!("parcel update {index}")})).await;
    }
    post_message(&app, &c.customer, &c.order_id, json!({"body": "Where is my parcel?"})).await;
    post_message(&app, &c.owner.token, &c.order_id, json!({"body": "Parcel is late", "internal": true})).await;
    post_message(&app, &c.owner.token, &c.order_id, json!({"body": "Hello again"})).await;
    post_message(&app, &c.owner.token, &c.order_id, json!({"body": "Your parcel ships today"})).await;
    for index in 60..70 {
        post_message(&app, &other_owner.token, &their_order, json!({"body": format!("parcel update {index}")})).await;
    }

    let found = app.get("/api/v1/messages/search?q=parcel", &c.customer).await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.text);
    assert_eq!(bodies(&found.body), ["Your parcel ships today", "Where is my parcel?"]);
    let first = app.get("/api/v1/messages/search?q=parcel&limit=1", &c.customer).await;
    assert_eq!(bodies(&first.body), ["Your parcel ships today"]);
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let second = app.get(&format!("/api/v1/messages/search?q=parcel&limit=1&cursor={cursor}"), &c.customer).await;
    assert_eq!(bodies(&second.body), ["Where is my parcel?"]);
    assert!(second.body["next_cursor"].is_null(), "{}", second.text);

    // Staff filtering on the order see the note too; the other tenant's
    // staff page through all of theirs, newest first.
    let order = app.get(&format!("/api/v1/messages/search?q=parcel&order_id={}", c.order_id), &c.owner.token).await;
    assert_eq!(bodies(&order.body), ["Your parcel ships today", "Parcel is late", "Where is my parcel?"]);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/api/v1/messages/search?q=parcel&limit=30&cursor={cursor}"),
            None => "/api/v1/messages/search?q=parcel&limit=30".to_owned(),
        };
        let page = app.get(&path, &other_owner.token).await;
        seen.extend(bodies(&page.body));
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let expected: Vec<String> = (0..70).rev().map(|index| format!("parcel update {index}")).collect();
    assert_eq!(seen, expected);
}
