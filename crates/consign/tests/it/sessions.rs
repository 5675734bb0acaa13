//! Sessions end after an idle time and after a maximum lifetime however
//! active, for the API's refresh tokens and the staff pages alike.
//!
//! The idle cases let the idle time pass by moving the session's expiry
//! back by it in the database (what the clock moving on would do); the
//! lifetime cases keep the session busy and poll until it ends, with a
//! deadline.

use std::time::{Duration, Instant};

use consign_testkit::pages::PageClient;
use consign_testkit::{TestApp, TestResponse};
use consign_web::WebConfig;
use reqwest::StatusCode;
use serde_json::json;

const IDLE_SECONDS: i64 = 3;
const DEADLINE: Duration = Duration::from_secs(20);

/// Lets the idle time pass for every session: each expiry moves back by
/// more than the idle time.
async fn let_idle_time_pass(app: &TestApp, table: &str) {
    let sql = format!("UPDATE {table} SET expires_at = expires_at - {}", (IDLE_SECONDS + 1) * 1_000_000);
    let sql = sqlx::AssertSqlSafe(sql);
    match app.db().pool() {
        consign_db::Pool::Sqlite { writer, .. } => sqlx::raw_sql(sql).execute(writer).await.map(drop),
        consign_db::Pool::Postgres(pool) => sqlx::raw_sql(sql).execute(pool).await.map(drop),
    }
    .expect("move the expiry back");
}

async fn refresh(app: &TestApp, token: &str) -> TestResponse {
    app.post_anonymous("/api/v1/auth/refresh", json!({"refresh_token": token})).await
}

fn idle_config() -> WebConfig {
    WebConfig { session_idle_timeout_seconds: IDLE_SECONDS, ..WebConfig::default() }
}

fn short_lifetime_config() -> WebConfig {
    WebConfig { session_max_lifetime_seconds: 4, ..WebConfig::default() }
}

fn to_login(page: &TestResponse) -> bool {
    page.status == StatusCode::SEE_OTHER && page.header("location").is_some_and(|l| l.starts_with("/admin/login"))
}

#[tokio::test]
async fn a_refresh_token_left_unused_for_the_idle_time_is_refused() {
    let app = TestApp::spawn_with(idle_config()).await;
    let user = app.sign_up("owner@acme.example", "merchant").await;
    let used = refresh(&app, &user.refresh_token).await;
    assert_eq!(used.status, StatusCode::OK, "in use, the session lives on: {}", used.text);
    let next = used.body["refresh_token"].as_str().unwrap().to_owned();

    let_idle_time_pass(&app, "refresh_tokens").await;
    let idle = refresh(&app, &next).await;
    assert_eq!(idle.status, StatusCode::UNAUTHORIZED, "{}", idle.text);
}

#[tokio::test]
async fn an_active_session_ends_at_its_maximum_lifetime() {
    let app = TestApp::spawn_with(short_lifetime_config()).await;
    let user = app.sign_up("owner@acme.example", "merchant").await;
    let mut token = user.refresh_token.clone();
    let mut rotations = 0;
    let started = Instant::now();
    loop {
        let answer = refresh(&app, &token).await;
        if answer.status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        token = answer.body["refresh_token"].as_str().unwrap().to_owned();
        rotations += 1;
        assert!(started.elapsed() < DEADLINE, "refreshing kept the session alive past its lifetime");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(rotations > 0, "the session worked before it ended");
}

#[tokio::test]
async fn a_page_session_left_idle_ends() {
    let app = TestApp::spawn_with(idle_config()).await;
    let user = app.sign_up("owner@acme.example", "merchant").await;
    let mut client = PageClient::signed_in(&app, &user.email, &user.password).await;
    assert_eq!(client.get("/admin").await.status, StatusCode::OK);

    let_idle_time_pass(&app, "web_sessions").await;
    let idle = client.get("/admin").await;
    assert!(to_login(&idle), "{} {:?}", idle.status, idle.header("location"));
}

#[tokio::test]
async fn a_busy_page_session_ends_at_its_maximum_lifetime() {
    let app = TestApp::spawn_with(short_lifetime_config()).await;
    let user = app.sign_up("owner@acme.example", "merchant").await;
    let mut client = PageClient::signed_in(&app, &user.email, &user.password).await;
    let started = Instant::now();
    loop {
        let page = client.get("/admin").await;
        if to_login(&page) {
            break;
        }
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        assert!(started.elapsed() < DEADLINE, "page views kept the session alive past its lifetime");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
