//! Schema introspection, for the tests that hold the schema to its rules.

use crate::{Db, DbResult, Engine};

/// Every table of the live schema with its column names, sorted.
pub async fn columns(db: &Db) -> DbResult<Vec<(String, Vec<String>)>> {
    let sql = match db.engine() {
        Engine::Sqlite => {
            "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p
              WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' ORDER BY m.name, p.name"
        }
        Engine::Postgres => {
            "SELECT table_name::text, column_name::text FROM information_schema.columns
              WHERE table_schema = current_schema() ORDER BY table_name, column_name"
        }
    };
    let rows: Vec<(String, String)> = db.read(sql).fetch_all().await?;
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
            // Only added columns change the shape; defaults and the like may
            // differ between engines.
            let mut words = rest.split_whitespace();
            if let (Some(table), Some("ADD"), Some("COLUMN"), Some(column)) =
                (words.next(), words.next(), words.next(), words.next())
            {
                shape.push((table.to_owned(), vec![column.to_owned()]));
            }
        }
    }
    shape
}

/// Every broken stock invariant, in words (empty when all hold):
/// `0 <= reserved <= on_hand`; the ledger sums to `on_hand`; `reserved` is
/// the sum of active reservations. For tests and the reconciliation job.
pub async fn stock_violations(db: &Db) -> DbResult<Vec<String>> {
    const SQL: &str = "
        SELECT 'level ' || variant_id || '@' || warehouse_id || ': on_hand ' || on_hand || ', reserved ' || reserved
          FROM stock_levels WHERE reserved < 0 OR reserved > on_hand OR on_hand < 0
        UNION ALL
        SELECT 'ledger ' || sl.variant_id || '@' || sl.warehouse_id || ': on_hand ' || sl.on_hand || ' but movements sum to '
               || COALESCE((SELECT SUM(m.delta) FROM stock_movements m WHERE m.variant_id = sl.variant_id AND m.warehouse_id = sl.warehouse_id), 0)
          FROM stock_levels sl
         WHERE sl.on_hand <> COALESCE((SELECT SUM(m.delta) FROM stock_movements m WHERE m.variant_id = sl.variant_id AND m.warehouse_id = sl.warehouse_id), 0)
        UNION ALL
        SELECT 'holds ' || sl.variant_id || '@' || sl.warehouse_id || ': reserved ' || sl.reserved || ' but active holds sum to '
               || COALESCE((SELECT SUM(r.quantity) FROM reservations r WHERE r.variant_id = sl.variant_id AND r.warehouse_id = sl.warehouse_id AND r.status = 'active'), 0)
          FROM stock_levels sl
         WHERE sl.reserved <> COALESCE((SELECT SUM(r.quantity) FROM reservations r WHERE r.variant_id = sl.variant_id AND r.warehouse_id = sl.warehouse_id AND r.status = 'active'), 0)";
    db.read(SQL).scalars().await
}
