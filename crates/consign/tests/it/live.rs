//! The live WebSocket: what each caller may see, resuming without gaps,
//! and delivery across two instances sharing one database, also after the
//! listener's database connection is cut.

use std::time::Duration;

use consign_testkit::{Sku, TestApp, TestUser};
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

pub(crate) type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub(crate) const DEADLINE: Duration = Duration::from_secs(15);

/// Opens `/api/v1/live` with a bearer header, or with `?access_token=` when
/// `in_query` (as a browser would).
pub(crate) async fn connect(app: &TestApp, token: &str, in_query: bool, after: Option<&str>) -> Socket {
    let mut url = format!("{}/api/v1/live?", app.address.replace("http://", "ws://"));
    if in_query {
        url.push_str(&format!("access_token={token}&"));
    }
    if let Some(after) = after {
        url.push_str(&format!("after={after}"));
    }
    let mut request = url.into_client_request().unwrap();
    if !in_query {
        request.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    let (socket, response) = tokio_tungstenite::connect_async(request).await.expect("WebSocket handshake");
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    socket
}

/// The next event frame, waiting at most [`DEADLINE`].
pub(crate) async fn next_event(socket: &mut Socket) -> Value {
    loop {
        let frame = tokio::time::timeout(DEADLINE, socket.next())
            .await
            .expect("an event within the deadline")
            .expect("the socket stays open")
            .expect("a frame");
        if let Frame::Text(text) = frame {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

/// Events up to and including the first `message.created` whose body is
/// `marker`; fails at the deadline.
pub(crate) async fn events_until_message(socket: &mut Socket, marker: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    loop {
        let event = next_event(socket).await;
        let done = event["type"] == "message.created" && event["payload"]["body"] == marker;
        seen.push(event);
        if done {
            return seen;
        }
    }
}

fn message_bodies(events: &[Value]) -> Vec<&str> {
    events.iter().filter(|e| e["type"] == "message.created").map(|e| e["payload"]["body"].as_str().unwrap()).collect()
}

struct Shop {
    owner: TestUser,
    order_id: String,
    customer: String,
}

async fn shop(app: &TestApp) -> Shop {
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let shop = app.stocked_brand(&owner, "acme", 1, &[Sku { sku: "MUG", price: 1500, stock: &[10] }]).await;
    let placed = app.checkout(&shop.slug, &[("MUG", 1)], "casey@example.com").await;
    Shop {
        owner,
        order_id: placed.body["order"]["id"].as_str().unwrap().to_owned(),
        customer: placed.body["order_access_token"].as_str().unwrap().to_owned(),
    }
}

async fn say(app: &TestApp, token: &str, order_id: &str, body: Value) {
    let posted = app.post(&format!("/api/v1/orders/{order_id}/messages"), token, body).await;
    assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.text);
}

#[tokio::test]
async fn each_socket_gets_what_its_caller_may_see_and_no_internal_note_reaches_the_customer() {
    let app = TestApp::spawn().await;
    let s = shop(&app).await;
    let intruder = app.sign_up("eve@elsewhere.example", "merchant").await;
    let theirs = shop_of(&app, &intruder).await;
    let mut staff = connect(&app, &s.owner.token, false, None).await;
    let mut customer = connect(&app, &s.customer, true, None).await;
    let mut outsider = connect(&app, &intruder.token, false, None).await;

    say(&app, &s.customer, &s.order_id, json!({"body": "Where is it?"})).await;
    say(&app, &s.owner.token, &s.order_id, json!({"body": "secret: courier is late", "internal": true})).await;
    say(&app, &s.owner.token, &s.order_id, json!({"body": "Tomorrow!"})).await;

    let staff_events = events_until_message(&mut staff, "Tomorrow!").await;
    assert_eq!(message_bodies(&staff_events), ["Where is it?", "secret: courier is late", "Tomorrow!"]);
    let customer_events = events_until_message(&mut customer, "Tomorrow!").await;
    assert_eq!(message_bodies(&customer_events), ["Where is it?", "Tomorrow!"]);
    assert!(customer_events.iter().all(|e| !e.to_string().contains("secret")), "{customer_events:?}");

    // Read receipts travel too, without the ids of notes for the customer.
    let listed = app.get(&format!("/api/v1/orders/{}/messages", s.order_id), &s.customer).await;
    let last = listed.body["data"][1]["id"].as_str().unwrap().to_owned();
    let read = app
        .request(
            reqwest::Method::POST,
            &format!("/api/v1/orders/{}/messages/{last}/read", s.order_id),
            Some(&s.customer),
            None,
        )
        .await;
    assert_eq!(read.status, StatusCode::OK);
    let receipt = next_event(&mut staff).await;
    assert_eq!(receipt["type"], "message.read");
    assert_eq!(receipt["payload"]["reader_id"], "customer");

    // The outsider saw nothing of it. (On PostgreSQL its own checkout's
    // events may still come first: they become final, and are streamed,
    // only once every older transaction has finished.)
    say(&app, &intruder.token, &theirs, json!({"body": "mine"})).await;
    let outsider_events = events_until_message(&mut outsider, "mine").await;
    assert_eq!(message_bodies(&outsider_events), ["mine"]);
    for event in &outsider_events {
        let text = event.to_string();
        assert!(!text.contains(&s.order_id) && !text.contains("secret"), "another tenant's event: {text}");
    }
}

#[tokio::test]
async fn a_transaction_left_open_in_another_database_of_the_cluster_does_not_hold_back_the_feed() {
    let app = TestApp::spawn().await;
    let cluster = std::env::var("CONSIGN_TEST_DATABASE_URL").unwrap_or_default();
    if !cluster.starts_with("postgres") {
        return; // SQLite: one file, no cluster to share.
    }
    // Another application on the same PostgreSQL cluster: a transaction
    // with an id, left open in its own database for the whole test.
    use sqlx::Connection;
    let mut neighbour = sqlx::PgConnection::connect(&cluster).await.expect("connect to the cluster's own database");
    let mut open = neighbour.begin().await.expect("begin");
    sqlx::query("SELECT pg_current_xact_id()").execute(&mut *open).await.expect("take a transaction id");

    let s = shop(&app).await;
    let mut staff = connect(&app, &s.owner.token, false, None).await;
    say(&app, &s.customer, &s.order_id, json!({"body": "Still there?"})).await;
    let seen = events_until_message(&mut staff, "Still there?").await;
    assert_eq!(message_bodies(&seen), ["Still there?"]);
    open.rollback().await.expect("roll back");
}

async fn shop_of(app: &TestApp, owner: &TestUser) -> String {
    let shop = app.stocked_brand(owner, "elsewhere", 1, &[Sku { sku: "CUP", price: 900, stock: &[3] }]).await;
    let placed = app.checkout(&shop.slug, &[("CUP", 1)], "pat@example.com").await;
    placed.body["order"]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_reconnecting_client_resumes_after_its_last_event_without_gaps_or_repeats() {
    let app = TestApp::spawn().await;
    let s = shop(&app).await;
    let mut socket = connect(&app, &s.customer, true, None).await;
    say(&app, &s.customer, &s.order_id, json!({"body": "one"})).await;
    let first = events_until_message(&mut socket, "one").await;
    let last_id = first.last().unwrap()["id"].as_str().unwrap().to_owned();
    socket.close(None).await.unwrap();

    for body in ["two", "three", "four"] {
        say(&app, &s.owner.token, &s.order_id, json!({"body": body})).await;
    }
    let mut resumed = connect(&app, &s.customer, true, Some(&last_id)).await;
    say(&app, &s.customer, &s.order_id, json!({"body": "five"})).await;
    let events = events_until_message(&mut resumed, "five").await;
    assert_eq!(message_bodies(&events), ["two", "three", "four", "five"]);

    let unknown = tokio_tungstenite::connect_async(format!(
        "{}/api/v1/live?access_token={}&after=nope",
        app.address.replace("http://", "ws://"),
        s.customer
    ))
    .await;
    assert!(unknown.is_err(), "an unknown resume point is refused before the upgrade");
    let anonymous =
        tokio_tungstenite::connect_async(format!("{}/api/v1/live", app.address.replace("http://", "ws://"))).await;
    assert!(anonymous.is_err(), "no token, no socket");
}

#[tokio::test]
async fn a_message_posted_on_one_instance_reaches_a_socket_on_another_also_after_the_listener_is_cut() {
    let first = TestApp::spawn().await;
    let second = TestApp::spawn_on(first.test_db.another_connection().await, Default::default()).await;
    let s = shop(&first).await;
    let mut socket = connect(&second, &s.owner.token, false, None).await;

    say(&first, &s.customer, &s.order_id, json!({"body": "via the first instance"})).await;
    let events = events_until_message(&mut socket, "via the first instance").await;
    assert_eq!(message_bodies(&events), ["via the first instance"]);

    if first.test_db.engine() == consign_db::Engine::Postgres {
        // Cut every LISTEN connection of this database: the second instance
        // must reconnect and re-read the outbox from where it was.
        let consign_db::Pool::Postgres(pool) = first.db().pool() else { unreachable!() };
        let cut: Vec<i32> = sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
        )
        .fetch_all(pool)
        .await
        .unwrap();
        assert!(!cut.is_empty(), "the second instance listens for events");
        for pid in cut {
            sqlx::query("SELECT pg_terminate_backend($1)").bind(pid).execute(pool).await.unwrap();
        }
    }
    for body in ["after the cut 1", "after the cut 2"] {
        say(&first, &s.owner.token, &s.order_id, json!({"body": body})).await;
    }
    let events = events_until_message(&mut socket, "after the cut 2").await;
    assert_eq!(message_bodies(&events), ["after the cut 1", "after the cut 2"]);
}

/// Reads until the server closes the socket; answers the events that came
/// first and the close code. Fails at the deadline (a socket left open).
async fn until_closed(socket: &mut Socket) -> (Vec<Value>, Option<u16>) {
    let mut events = Vec::new();
    loop {
        let frame = tokio::time::timeout(DEADLINE, socket.next()).await.expect("the server closes the socket in time");
        match frame {
            Some(Ok(Frame::Text(text))) => events.push(serde_json::from_str(&text).unwrap()),
            Some(Ok(Frame::Close(close))) => return (events, close.map(|c| u16::from(c.code))),
            Some(Ok(_)) => {}
            None | Some(Err(_)) => return (events, None),
        }
    }
}

/// Posts a customer message, then asserts the socket closes with 4001
/// without ever carrying it.
async fn assert_closed_before(app: &TestApp, s: &Shop, socket: &mut Socket, marker: &str) {
    say(app, &s.customer, &s.order_id, json!({"body": marker})).await;
    let (events, code) = until_closed(socket).await;
    assert_eq!(code, Some(4001), "closed as revoked; events first: {events:?}");
    assert!(events.iter().all(|e| !e.to_string().contains(marker)), "{events:?}");
}

#[tokio::test]
async fn a_socket_closes_when_its_session_logs_out_and_gets_nothing_after() {
    let app = TestApp::spawn().await;
    let s = shop(&app).await;
    let colleague = app.sign_up("ops@acme.example", "merchant").await;
    let theirs = shop_of(&app, &colleague).await;
    let mut socket = connect(&app, &s.owner.token, false, None).await;
    let mut other_user = connect(&app, &colleague.token, false, None).await;

    let logout = app.request(reqwest::Method::POST, "/api/v1/auth/logout", Some(&s.owner.token), None).await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT);
    assert_closed_before(&app, &s, &mut socket, "after logout").await;

    // Another user's socket is not affected.
    say(&app, &colleague.token, &theirs, json!({"body": "still here"})).await;
    let events = events_until_message(&mut other_user, "still here").await;
    assert_eq!(message_bodies(&events), ["still here"]);
}

#[tokio::test]
async fn a_page_logout_closes_the_staff_pages_socket() {
    let app = TestApp::spawn().await;
    let s = shop(&app).await;
    let mut client = consign_testkit::pages::PageClient::signed_in(&app, &s.owner.email, &s.owner.password).await;
    let mut request = format!("{}/admin/live", app.address.replace("http://", "ws://")).into_client_request().unwrap();
    request.headers_mut().insert("cookie", client.cookie_header().parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.expect("WebSocket handshake");
    say(&app, &s.customer, &s.order_id, json!({"body": "before"})).await;
    assert_eq!(message_bodies(&events_until_message(&mut socket, "before").await), ["before"]);

    let logout = client.post("/admin/logout", &[]).await;
    assert_eq!(logout.status, StatusCode::SEE_OTHER, "{}", logout.text);
    assert_closed_before(&app, &s, &mut socket, "after page logout").await;
}

#[tokio::test]
async fn a_password_reset_closes_every_socket_of_the_user() {
    let app = TestApp::spawn().await;
    let s = shop(&app).await;
    let mut socket = connect(&app, &s.owner.token, false, None).await;
    // The same path as `consign admin reset-password`.
    let hash = consign_web::auth::password::hash("a new password 123".to_owned()).await.unwrap();
    consign_db::users::set_password(app.db(), s.owner.user_id.parse().unwrap(), &hash).await.unwrap();
    assert_closed_before(&app, &s, &mut socket, "after reset").await;
}

#[tokio::test]
async fn a_socket_closes_when_its_refresh_family_is_revoked_by_reuse() {
    let app = TestApp::spawn().await;
    let s = shop(&app).await;
    let mut socket = connect(&app, &s.owner.token, true, None).await;
    let refresh = |token: &str| {
        let body = json!({"refresh_token": token});
        let app = &app;
        async move { app.post_anonymous("/api/v1/auth/refresh", body).await }
    };
    assert_eq!(refresh(&s.owner.refresh_token).await.status, StatusCode::OK);
    assert_eq!(refresh(&s.owner.refresh_token).await.status, StatusCode::UNAUTHORIZED, "reuse revokes the family");
    assert_closed_before(&app, &s, &mut socket, "after reuse").await;
}

#[tokio::test]
async fn a_socket_closes_when_its_api_key_is_revoked() {
    let app = TestApp::spawn().await;
    let s = shop(&app).await;
    let brands = app.get("/api/v1/brands", &s.owner.token).await;
    let brand_id = brands.body["data"][0]["id"].as_str().unwrap().to_owned();
    let created = app.post("/api/v1/api-keys", &s.owner.token, json!({"brand_id": brand_id, "name": "WMS"})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let key = created.body["key"].as_str().unwrap();
    let mut socket = connect(&app, key, false, None).await;
    say(&app, &s.customer, &s.order_id, json!({"body": "before"})).await;
    assert_eq!(message_bodies(&events_until_message(&mut socket, "before").await), ["before"]);

    let key_path = format!("/api/v1/api-keys/{}", created.body["id"].as_str().unwrap());
    let revoked = app.request(reqwest::Method::DELETE, &key_path, Some(&s.owner.token), None).await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.text);
    assert_closed_before(&app, &s, &mut socket, "after revoke").await;
}

#[tokio::test]
async fn a_socket_opened_with_an_access_token_closes_when_the_token_expires() {
    let config = consign_web::WebConfig { access_token_ttl_seconds: 1, ..Default::default() };
    let app = TestApp::spawn_with(config).await;
    let user = app.sign_up("owner@acme.example", "merchant").await;
    let mut socket = connect(&app, &user.token, true, None).await;
    let (_, code) = until_closed(&mut socket).await;
    assert_eq!(code, Some(4001));
}

#[tokio::test]
async fn a_logout_on_one_instance_closes_the_socket_on_another() {
    let first = TestApp::spawn().await;
    let second = TestApp::spawn_on(first.test_db.another_connection().await, Default::default()).await;
    let s = shop(&first).await;
    let mut socket = connect(&second, &s.owner.token, false, None).await;
    say(&first, &s.customer, &s.order_id, json!({"body": "before"})).await;
    assert_eq!(message_bodies(&events_until_message(&mut socket, "before").await), ["before"]);

    let logout = first.request(reqwest::Method::POST, "/api/v1/auth/logout", Some(&s.owner.token), None).await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT);
    assert_closed_before(&first, &s, &mut socket, "after logout").await;
}

#[tokio::test]
async fn one_client_ip_holds_at_most_its_cap_of_sockets() {
    let app = TestApp::spawn_with(consign_web::WebConfig { live_sockets_per_ip: 2, ..Default::default() }).await;
    let s = shop(&app).await;
    let mut first = connect(&app, &s.customer, true, None).await;
    let _second = connect(&app, &s.owner.token, false, None).await;
    let url = format!("{}/api/v1/live?access_token={}", app.address.replace("http://", "ws://"), s.customer);
    let Err(refused) = tokio_tungstenite::connect_async(url.clone()).await else { panic!("a third socket is refused") };
    let tokio_tungstenite::tungstenite::Error::Http(response) = refused else { panic!("{refused:?}") };
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    // The handshake client keeps the body only when it came with the head.
    if let Some(body) = response.body().as_deref().filter(|b| !b.is_empty()) {
        let problem: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(problem["code"], "rate_limited", "{problem}");
    }

    // A closed socket frees its place.
    first.close(None).await.unwrap();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        match tokio_tungstenite::connect_async(url.clone()).await {
            Ok(_) => break,
            Err(tokio_tungstenite::tungstenite::Error::Http(response))
                if response.status() == StatusCode::TOO_MANY_REQUESTS =>
            {
                assert!(tokio::time::Instant::now() < deadline, "the closed socket's place was never freed");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(other) => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn a_client_message_over_the_size_limit_closes_the_socket() {
    let app = TestApp::spawn().await;
    let s = shop(&app).await;
    let mut socket = connect(&app, &s.customer, true, None).await;
    socket.send(Frame::Text("x".repeat(5 * 1024).into())).await.unwrap();
    let (events, code) = until_closed(&mut socket).await;
    assert!(code.is_none_or(|code| code == 1009), "closed as too big: {code:?} after {events:?}");
}

#[tokio::test]
async fn the_order_pages_socket_needs_the_order_cookie_and_every_customer_socket_closes_when_the_link_is_rotated() {
    let app = TestApp::spawn().await;
    let s = shop(&app).await;
    let page_socket = format!("{}/shop/acme/orders/{}/live", app.address.replace("http://", "ws://"), s.order_id);
    let Err(tokio_tungstenite::tungstenite::Error::Http(refused)) =
        tokio_tungstenite::connect_async(page_socket.clone()).await
    else {
        panic!("a page socket without the order cookie is refused")
    };
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);

    let mut request = page_socket.into_client_request().unwrap();
    request.headers_mut().insert("cookie", format!("consign_order={}", s.customer).parse().unwrap());
    let (mut page, _) = tokio_tungstenite::connect_async(request).await.expect("the page socket opens with the cookie");
    let mut api = connect(&app, &s.customer, true, None).await;
    say(&app, &s.owner.token, &s.order_id, json!({"body": "before"})).await;
    for socket in [&mut page, &mut api] {
        assert_eq!(message_bodies(&events_until_message(socket, "before").await), ["before"]);
    }

    let rotated = app.post(&format!("/api/v1/orders/{}/access-token", s.order_id), &s.owner.token, json!({})).await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    say(&app, &s.owner.token, &s.order_id, json!({"body": "after rotation"})).await;
    for socket in [&mut page, &mut api] {
        let (events, code) = until_closed(socket).await;
        assert_eq!(code, Some(4001), "closed as revoked; events first: {events:?}");
        assert!(events.iter().all(|e| !e.to_string().contains("after rotation")), "{events:?}");
    }
}
