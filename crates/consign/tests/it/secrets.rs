//! Secrets at rest: instance secrets sealed with the master key (and old
//! clear ones sealed on start, keeping their value), the SQLite file
//! readable by its owner only, a weak JWT secret refused, admin passwords
//! from standard input.

use std::sync::Arc;

use consign_db::Engine;
use consign_testkit::{TestApp, TestDb, test_gateway};
use consign_web::{AppState, WebConfig};
use reqwest::StatusCode;
use serde_json::json;

/// `(name, value, key_id)` of every instance secret.
async fn instance_secrets(db: &consign_db::Db) -> Vec<(String, String, Option<String>)> {
    const SQL: &str = "SELECT name, value, key_id FROM instance_secrets ORDER BY name";
    match db.pool() {
        consign_db::Pool::Sqlite { writer, .. } => sqlx::query_as(SQL).fetch_all(writer).await.unwrap(),
        consign_db::Pool::Postgres(pool) => sqlx::query_as(SQL).fetch_all(pool).await.unwrap(),
    }
}

async fn store_in_the_clear(db: &consign_db::Db, name: &str, value: &str) {
    const SQL: &str = "INSERT INTO instance_secrets (name, value, created_at) VALUES ($1, $2, 0)";
    match db.pool() {
        consign_db::Pool::Sqlite { writer, .. } => {
            sqlx::query(SQL).bind(name).bind(value).execute(writer).await.unwrap();
        }
        consign_db::Pool::Postgres(pool) => {
            sqlx::query(SQL).bind(name).bind(value).execute(pool).await.unwrap();
        }
    }
}

#[tokio::test]
async fn a_fresh_start_keeps_no_instance_secret_in_the_clear() {
    let app = TestApp::spawn().await;
    let secrets = instance_secrets(app.db()).await;
    let names: Vec<&str> = secrets.iter().map(|(name, _, _)| name.as_str()).collect();
    assert!(names.contains(&"jwt_signing_key") && names.contains(&"order_token_key"), "{names:?}");
    for (name, value, key_id) in &secrets {
        assert_eq!(key_id.as_deref(), Some("test1"), "{name} is not sealed");
        // A secret is 32 random bytes as 64 hex digits; sealed, it is longer.
        assert_ne!(value.len(), 64, "{name} looks stored in the clear");
    }
}

#[tokio::test]
async fn secrets_stored_in_the_clear_are_sealed_on_start_and_keep_their_value() {
    let test_db = TestDb::new().await;
    let old_key = "ab".repeat(32);
    store_in_the_clear(&test_db.db, "order_token_key", &old_key).await;
    let app = TestApp::spawn_on(test_db, WebConfig::default()).await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    app.stocked_brand(&owner, "acme", 1, &[consign_testkit::Sku { sku: "MUG", price: 1500, stock: &[5] }]).await;
    let placed = app.checkout("acme", &[("MUG", 1)], "casey@example.com").await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.text);
    let order_id = placed.body["order"]["id"].as_str().unwrap();
    // Tokens made before the upgrade stay valid: the key kept its value.
    assert_eq!(placed.body["order_access_token"], consign_app::tokens::order_access_token(&old_key, order_id));
    let secrets = instance_secrets(app.db()).await;
    let (_, value, key_id) = secrets.iter().find(|(name, _, _)| name == "order_token_key").unwrap();
    assert!(key_id.is_some(), "sealed on start");
    assert!(!value.contains(&old_key));
}

#[tokio::test]
async fn the_sqlite_database_file_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let test_db = TestDb::new().await;
    if test_db.engine() != Engine::Sqlite {
        return;
    }
    let path = test_db.url.trim_start_matches("sqlite://").to_owned();
    for file in [path.clone(), format!("{path}-wal"), format!("{path}-shm")] {
        let mode = std::fs::metadata(&file).unwrap_or_else(|e| panic!("{file}: {e}")).permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{file} has mode {:o}", mode & 0o777);
    }
}

#[tokio::test]
async fn a_jwt_secret_shorter_than_32_bytes_is_refused() {
    let test_db = TestDb::new().await;
    let gateway = test_gateway(consign_payments::Endpoints::default());
    let short =
        AppState::new(test_db.db.clone(), WebConfig::default(), Some("too-short".into()), gateway.clone()).await;
    let error = short.err().expect("a short secret is refused").to_string();
    assert!(error.contains("at least 32 bytes"), "{error}");
    let long =
        AppState::new(test_db.db.clone(), WebConfig::default(), Some("x".repeat(32)), Arc::clone(&gateway)).await;
    assert!(long.is_ok());
}

#[tokio::test]
async fn admin_passwords_can_come_from_standard_input() {
    use std::io::Write as _;
    let app = TestApp::spawn().await;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_consign"))
        .args(["admin", "create-platform-admin", "--email", "root@example.com", "--password-stdin"])
        .env("DATABASE_URL", &app.test_db.url)
        .env("CONSIGN_LOG", "warn")
        .env_remove("CONSIGN_ADMIN_PASSWORD")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run consign admin");
    child.stdin.take().unwrap().write_all(b"a long stdin password\n").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let login = app
        .post_anonymous("/api/v1/auth/login", json!({"email": "root@example.com", "password": "a long stdin password"}))
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text);
}
