//! Storage rules checked against the real schema.

use consign_testkit::TestDb;

/// Tables that belong to no tenant (global users, sessions, install secrets).
const GLOBAL_TABLES: &[&str] = &[
    "organizations",
    "users",
    "sessions",
    "refresh_tokens",
    "web_sessions",
    "instance_secrets",
    "idempotency_keys",
    "jobs",
    "webhook_replays",
    "rate_limits",
    "_sqlx_migrations",
];

#[tokio::test]
async fn every_tenant_table_carries_its_organization() {
    let test_db = TestDb::new().await;
    let tables = consign_db::schema::columns(&test_db.db).await.unwrap();
    assert!(!tables.is_empty());
    for (table, columns) in &tables {
        // SQLite's full-text index keeps its postings in shadow tables.
        if GLOBAL_TABLES.contains(&table.as_str()) || table.starts_with("messages_fts_") {
            continue;
        }
        assert!(columns.iter().any(|c| c == "organization_id"), "{table} has no organization_id: {columns:?}");
    }
}

#[tokio::test]
async fn sqlite_and_postgres_migrations_define_the_same_tables_and_columns() {
    // The two migration folders must describe the same schema. Compare the
    // CREATE TABLE column lists of each file, engine-neutral.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../consign-db/migrations");
    let list = |engine: &str| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(root.join(engine))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(list("sqlite"), list("postgres"), "migration file names differ");
    for name in list("sqlite") {
        let shape = |engine: &str| {
            consign_db::schema::ddl_shape(&std::fs::read_to_string(root.join(engine).join(&name)).unwrap())
        };
        assert_eq!(shape("sqlite"), shape("postgres"), "{name} differs between engines");
    }
}
