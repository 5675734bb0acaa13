//! Schema introspection, for the tests that hold the schema to its rules.

use crate::{Db, DbResult, Pool};

/// Every table of the live schema with its column names, sorted.
pub async fn columns(db: &Db) -> DbResult<Vec<(String, Vec<String>)>> {
    let rows: Vec<(String, String)> = match db.pool() {
        Pool::Sqlite { reader, .. } => {
            sqlx::query_as(
                "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p
                  WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' ORDER BY m.name, p.name",
            )
            .fetch_all(reader)
            .await?
        }
        Pool::Postgres(pool) => {
            sqlx::query_as(
                "SELECT table_name::text, column_name::text FROM information_schema.columns
                  WHERE table_schema = current_schema() ORDER BY table_name, column_name",
            )
            .fetch_all(pool)
            .await?
        }
    };
    let mut tables: Vec<(String, Vec<String>)> = Vec::new();
    for (table, column) in rows {
        match tables.last_mut() {
            Some((name, columns)) if *name == table => columns.push(column),
            _ => tables.push((table, vec![column])),
        }
    }
    Ok(tables)
}

/// The tables and column names a migration file creates, ignoring types and
/// constraints: what must match between the two engines' migrations.
pub fn ddl_shape(sql: &str) -> Vec<(String, Vec<String>)> {
    let mut shape = Vec::new();
    let mut current: Option<(String, Vec<String>)> = None;
    for line in sql.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("CREATE TABLE ") {
            let name = rest.split_whitespace().next().unwrap_or_default().trim_end_matches('(');
            current = Some((name.to_owned(), Vec::new()));
        } else if line.starts_with(");") {
            if let Some(done) = current.take() {
                shape.push(done);
            }
        } else if let Some((_, columns)) = current.as_mut() {
            let first = line.split_whitespace().next().unwrap_or_default();
            let constraint = ["PRIMARY", "UNIQUE", "CHECK", "FOREIGN", "CONSTRAINT", "--", ""].contains(&first);
            if !constraint {
                columns.push(first.to_owned());
            }
        } else if let Some(rest) = line.strip_prefix("ALTER TABLE ") {
            shape.push((rest.to_owned(), Vec::new()));
        }
    }
    shape
}
