//! Attachment uploads as anyone holding an order's link can send them: the
//! size limit holds while the body streams in, closed orders and full
//! quotas refuse files, unsent files are cleaned up, file names cannot
//! break the download, and one file goes on one message only.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use consign_testkit::{Sku, TestApp, TestResponse, TestUser};
use consign_web::WebConfig;
use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// A shop, its owner, and one placed order with its customer token.
struct Shop {
    owner: TestUser,
    slug: String,
    order_id: String,
    customer: String,
}

async fn shop(app: &TestApp) -> Shop {
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let shop = app.stocked_brand(&owner, "acme", 1, &[Sku { sku: "MUG", price: 1500, stock: &[50] }]).await;
    let (order_id, customer) = place(app, &shop.slug).await;
    Shop { owner, slug: shop.slug, order_id, customer }
}

async fn place(app: &TestApp, slug: &str) -> (String, String) {
    let placed = app.checkout(slug, &[("MUG", 1)], "casey@example.com").await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.text);
    (
        placed.body["order"]["id"].as_str().unwrap().to_owned(),
        placed.body["order_access_token"].as_str().unwrap().to_owned(),
    )
}

async fn upload(app: &TestApp, token: &str, order_id: &str, name: &str, bytes: Vec<u8>) -> TestResponse {
    app.send(
        app.client
            .post(app.url(&format!("/api/v1/orders/{order_id}/attachments?file_name={}", encode(name))))
            .bearer_auth(token)
            .header("content-type", "text/plain")
            .body(bytes),
    )
    .await
}

/// Percent-encodes a query value, every byte outside the unreserved set.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn download(app: &TestApp, token: &str, id: &str) -> reqwest::Response {
    app.client.get(app.url(&format!("/api/v1/attachments/{id}"))).bearer_auth(token).send().await.unwrap()
}

/// Runs one statement with one text parameter on the test database.
async fn execute(app: &TestApp, sql: &'static str, first: &str, second: &str) {
    match app.db().pool() {
        consign_db::Pool::Sqlite { writer, .. } => {
            sqlx::query(sql).bind(first).bind(second).execute(writer).await.unwrap();
        }
        consign_db::Pool::Postgres(pool) => {
            sqlx::query(sql).bind(first).bind(second).execute(pool).await.unwrap();
        }
    }
}

#[tokio::test]
async fn an_upload_past_the_limit_is_refused_while_it_is_still_being_sent() {
    let app = TestApp::spawn_with(WebConfig { attachment_max_bytes: 1024 * 1024, ..WebConfig::default() }).await;
    let s = shop(&app).await;
    // 90 MiB sent chunked (no Content-Length to refuse it by), over a raw
    // socket so the answer can be read while the body is still going out.
    const TOTAL: usize = 90 * 1024 * 1024;
    const PIECE: usize = 64 * 1024;
    let address = app.address.trim_start_matches("http://").to_owned();
    let stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let head = format!(
        "POST /api/v1/orders/{}/attachments?file_name=big.txt HTTP/1.1\r\nHost: {address}\r\n\
         Authorization: Bearer {}\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n",
        s.order_id, s.customer
    );
    writer.write_all(head.as_bytes()).await.unwrap();
    let sent = Arc::new(AtomicUsize::new(0));
    let sending = tokio::spawn({
        let sent = sent.clone();
        async move {
            let piece = [format!("{PIECE:x}\r\n").into_bytes(), vec![b'a'; PIECE], b"\r\n".to_vec()].concat();
            while sent.load(Ordering::SeqCst) < TOTAL {
                if writer.write_all(&piece).await.is_err() {
                    return;
                }
                sent.fetch_add(PIECE, Ordering::SeqCst);
            }
            let _ = writer.write_all(b"0\r\n\r\n").await;
        }
    });
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = reader.read(&mut buffer).await.unwrap();
        assert!(read > 0, "the server closed without answering");
        answer.extend_from_slice(&buffer[..read]);
    }
    let sent_when_answered = sent.load(Ordering::SeqCst);
    let answer = String::from_utf8_lossy(&answer).to_lowercase();
    assert!(answer.starts_with("http/1.1 413"), "{answer}");
    assert!(answer.contains("content-type: application/problem+json"), "{answer}");
    assert!(
        sent_when_answered < TOTAL / 2,
        "the 413 came after {sent_when_answered} of {TOTAL} bytes: the body was read past the limit"
    );
    drop(reader);
    sending.await.unwrap();
}

#[tokio::test]
async fn an_upload_declaring_a_length_past_the_limit_is_refused_before_its_body() {
    let app = TestApp::spawn_with(WebConfig { attachment_max_bytes: 1024, ..WebConfig::default() }).await;
    let s = shop(&app).await;
    let refused = upload(&app, &s.customer, &s.order_id, "big.txt", vec![b'a'; 1025]).await;
    assert_eq!(refused.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", refused.text);
    assert_eq!(refused.code(), "payload_too_large");
    let fits = upload(&app, &s.customer, &s.order_id, "fits.txt", vec![b'a'; 1024]).await;
    assert_eq!(fits.status, StatusCode::CREATED, "{}", fits.text);
    // Text is checked for UTF-8 across the pieces it arrives in.
    let split = "é".repeat(400).into_bytes();
    let text = upload(&app, &s.customer, &s.order_id, "accents.txt", split).await;
    assert_eq!(text.status, StatusCode::CREATED, "{}", text.text);
    let broken = upload(&app, &s.customer, &s.order_id, "broken.txt", [b"ok".as_slice(), &[0xff, 0xfe]].concat()).await;
    assert_eq!(broken.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", broken.text);
}

#[tokio::test]
async fn cancelled_and_expired_orders_take_no_files() {
    let app = TestApp::spawn().await;
    let s = shop(&app).await;
    let cancelled = app
        .post(&format!("/api/v1/orders/{}/cancel", s.order_id), &s.owner.token, json!({"reason": "customer asked"}))
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.text);
    for token in [s.customer.as_str(), s.owner.token.as_str()] {
        let refused = upload(&app, token, &s.order_id, "late.txt", b"too late".to_vec()).await;
        assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.text);
        assert_eq!(refused.code(), "invalid_transition");
        assert!(refused.body["detail"].as_str().unwrap().contains("cancelled"), "{}", refused.text);
    }

    let (expired_id, expired_token) = place(&app, &s.slug).await;
    execute(&app, "UPDATE orders SET status = $1 WHERE id = $2", "expired", &expired_id).await;
    let refused = upload(&app, &expired_token, &expired_id, "late.txt", b"too late".to_vec()).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.text);
}

#[tokio::test]
async fn uploads_past_the_order_or_brand_quota_are_refused() {
    let app = TestApp::spawn_with(WebConfig {
        attachment_order_quota_bytes: 1000,
        attachment_brand_quota_bytes: 1500,
        ..WebConfig::default()
    })
    .await;
    let s = shop(&app).await;
    let first = upload(&app, &s.customer, &s.order_id, "one.txt", vec![b'a'; 600]).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let over_order = upload(&app, &s.customer, &s.order_id, "two.txt", vec![b'a'; 600]).await;
    assert_eq!(over_order.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", over_order.text);
    assert_eq!(over_order.code(), "validation_failed");
    let message = over_order.body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("order") && message.contains("quota"), "{message}");
    let small = upload(&app, &s.customer, &s.order_id, "small.txt", vec![b'a'; 400]).await;
    assert_eq!(small.status, StatusCode::CREATED, "the order still has room for this: {}", small.text);

    let (other_id, other_token) = place(&app, &s.slug).await;
    let over_brand = upload(&app, &other_token, &other_id, "three.txt", vec![b'a'; 600]).await;
    assert_eq!(over_brand.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", over_brand.text);
    let message = over_brand.body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("brand") && message.contains("quota"), "{message}");
}

#[tokio::test]
async fn unsent_uploads_are_deleted_after_a_day_and_sent_ones_are_kept() {
    let app = TestApp::spawn().await;
    let s = shop(&app).await;
    let sent = upload(&app, &s.customer, &s.order_id, "sent.txt", b"kept".to_vec()).await;
    let sent_id = sent.body["id"].as_str().unwrap().to_owned();
    let unsent = upload(&app, &s.customer, &s.order_id, "unsent.txt", b"dropped".to_vec()).await;
    let unsent_id = unsent.body["id"].as_str().unwrap().to_owned();
    let fresh = upload(&app, &s.customer, &s.order_id, "fresh.txt", b"too young".to_vec()).await;
    let fresh_id = fresh.body["id"].as_str().unwrap().to_owned();
    let posted = app
        .post(
            &format!("/api/v1/orders/{}/messages", s.order_id),
            &s.customer,
            json!({"body": "see file", "attachment_ids": [sent_id]}),
        )
        .await;
    assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.text);
    let day_and_an_hour_ago = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap()
        - std::time::Duration::from_secs(25 * 60 * 60))
    .as_micros() as i64;
    for id in [&sent_id, &unsent_id] {
        match app.db().pool() {
            consign_db::Pool::Sqlite { writer, .. } => {
                sqlx::query("UPDATE attachments SET created_at = $1 WHERE id = $2")
                    .bind(day_and_an_hour_ago)
                    .bind(id)
                    .execute(writer)
                    .await
                    .unwrap();
            }
            consign_db::Pool::Postgres(pool) => {
                sqlx::query("UPDATE attachments SET created_at = $1 WHERE id = $2")
                    .bind(day_and_an_hour_ago)
                    .bind(id)
                    .execute(pool)
                    .await
                    .unwrap();
            }
        }
    }
    let brand_id =
        consign_db::messages::order_brand(app.db(), &consign_db::Scope::system(), s.order_id.parse().unwrap())
            .await
            .unwrap();
    let unsent_key = format!("attachments/{brand_id}/{unsent_id}");
    assert!(app.files.get(&unsent_key).await.is_ok(), "stored at first");

    consign_db::jobs::enqueue_kind(app.db(), &consign_db::jobs::kinds::PurgeUnsentUploads {}).await.unwrap();
    app.run_jobs().await;

    assert_eq!(download(&app, &s.owner.token, &unsent_id).await.status(), StatusCode::NOT_FOUND);
    assert!(app.files.get(&unsent_key).await.is_err(), "the bytes are gone too");
    assert_eq!(download(&app, &s.owner.token, &sent_id).await.status(), StatusCode::OK, "a sent file stays");
    assert_eq!(download(&app, &s.owner.token, &fresh_id).await.status(), StatusCode::OK, "a recent one stays");
}

#[tokio::test]
async fn file_names_with_control_characters_are_refused_and_any_stored_name_downloads() {
    let app = TestApp::spawn().await;
    let s = shop(&app).await;
    for name in ["a\u{1}.txt", "tab\there.txt", "line\nbreak.txt", "del\u{7f}.txt", "c1\u{85}.txt"] {
        let refused = upload(&app, &s.customer, &s.order_id, name, b"hello".to_vec()).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{name:?}: {}", refused.text);
        assert_eq!(refused.body["errors"][0]["field"], "file_name");
    }
    // A name stored before the check, or any other odd name, still downloads.
    let stored = upload(&app, &s.customer, &s.order_id, "plain.txt", b"hello".to_vec()).await;
    let id = stored.body["id"].as_str().unwrap().to_owned();
    execute(&app, "UPDATE attachments SET file_name = $1 WHERE id = $2", "bad\u{1}\"näme\".txt", &id).await;
    let response = download(&app, &s.owner.token, &id).await;
    assert_eq!(response.status(), StatusCode::OK);
    let disposition = response.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert_eq!(disposition, "attachment; filename=\"bad__n_me_.txt\"; filename*=UTF-8''bad%01%22n%C3%A4me%22.txt");
    assert_eq!(response.bytes().await.unwrap().as_ref(), b"hello");
    let unicode = upload(&app, &s.customer, &s.order_id, "Überweisung 2026.txt", b"hello".to_vec()).await;
    assert_eq!(unicode.status, StatusCode::CREATED, "{}", unicode.text);
    let response = download(&app, &s.owner.token, unicode.body["id"].as_str().unwrap()).await;
    assert_eq!(
        response.headers()["content-disposition"],
        "attachment; filename=\"_berweisung 2026.txt\"; filename*=UTF-8''%C3%9Cberweisung%202026.txt"
    );
}

#[tokio::test]
async fn one_file_goes_on_one_message_even_when_two_posts_race_for_it() {
    let app = TestApp::spawn().await;
    let s = shop(&app).await;
    let messages_path = format!("/api/v1/orders/{}/messages", s.order_id);
    for round in 0..8 {
        let uploaded = upload(&app, &s.owner.token, &s.order_id, "label.txt", b"label".to_vec()).await;
        let file = uploaded.body["id"].as_str().unwrap().to_owned();
        let visible = app.post(&messages_path, &s.owner.token, json!({"body": "label", "attachment_ids": [file]}));
        let note = app.post(
            &messages_path,
            &s.owner.token,
            json!({"body": "label (note)", "internal": true, "attachment_ids": [file]}),
        );
        let (visible, note) = tokio::join!(visible, note);
        let created: Vec<&TestResponse> =
            [&visible, &note].into_iter().filter(|r| r.status == StatusCode::CREATED).collect();
        assert_eq!(created.len(), 1, "round {round}: {} / {}", visible.text, note.text);
        let refused = if visible.status == StatusCode::CREATED { &note } else { &visible };
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "round {round}: {}", refused.text);
        // The file belongs to the message that won, as the customer sees it.
        let attached = download(&app, &s.customer, &file).await.status();
        let expected = if visible.status == StatusCode::CREATED { StatusCode::OK } else { StatusCode::NOT_FOUND };
        assert_eq!(attached, expected, "round {round}");
    }
}
