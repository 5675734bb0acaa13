//! Full-text search over message bodies, on the database's own index:
//! FTS5 (porter stemming) on SQLite, a GIN index over
//! `to_tsvector('english', body)` on PostgreSQL. Both match every word of
//! the query, stemmed, and stop at a page however common the word. Tenant scope and note visibility apply as in every
//! other read.

use consign_domain::messaging::{Channel, SenderRole, ThreadStatus};
use consign_domain::text::SearchText;
use consign_domain::{BrandId, OrderId};

use super::{MESSAGE_COLUMNS, Message, attach_receipts};
use crate::{Db, DbError, DbResult, Engine, Page, PageRequest, Scope, Statement};

/// Filters of `GET /messages/search`.
#[derive(Clone, Debug, Default)]
pub struct SearchFilter {
    /// Words that must all appear (stemmed).
    pub q: Option<String>,
    /// Status of the message's thread.
    pub thread_status: Option<ThreadStatus>,
    /// Only messages the caller has not read.
    pub unread: bool,
    /// Channel.
    pub channel: Option<Channel>,
    /// Sender role.
    pub sender_role: Option<SenderRole>,
    /// One brand.
    pub brand_id: Option<BrandId>,
    /// One order.
    pub order_id: Option<OrderId>,
}

/// FTS5 query syntax for plain words: each word quoted, so operators and
/// punctuation in user input are just text.
fn fts5_query(q: &str) -> String {
    q.split_whitespace().map(|word| format!("\"{}\"", word.replace('"', "\"\""))).collect::<Vec<_>>().join(" ")
}

/// Messages in scope a text search looks at first (newest first).
const WINDOW: i64 = 2000;

/// Messages matching the filter, newest first.
pub async fn search(db: &Db, scope: &Scope, filter: &SearchFilter, page: &PageRequest) -> DbResult<Page<Message>> {
    let q = filter.q.as_deref().map(SearchText::parse).transpose();
    let q = q.map_err(|error| DbError::invalid("q", error.to_string()))?;
    let q = q.as_ref().map(SearchText::as_str).filter(|q| !q.is_empty());
    let reader = scope.principal().actor_id();
    // A text search runs on the engine's own index (FTS5 or a tsvector),
    // each with its own plan; everything else is one query.
    let rows: Vec<Message> = match (db.engine(), q) {
        (Engine::Postgres, Some(q)) => postgres_text_search(db, scope, filter, q, page, &reader).await?,
        (Engine::Sqlite, Some(q)) => sqlite_text_search(db, scope, filter, q, page, &reader).await?,
        (_, None) => {
            let mut query = db.read_built(format!("SELECT {MESSAGE_COLUMNS} FROM messages m"));
            push_filters(&mut query, scope, filter, &reader);
            if let Some(after) = &page.after {
                query.push(" AND m.id < ").push_bind(after.clone());
            }
            query.push(" ORDER BY m.id DESC LIMIT ").push_bind(page.fetch_limit());
            query.fetch_all().await?
        }
    };
    let mut page = Page::from_rows(rows, page, |m| m.id.to_string());
    attach_receipts(db, &mut page.data).await?;
    Ok(page)
}

/// A text search on SQLite. Walking the FTS5 index newest first stops
/// after one page however common the word, but only when the scope holds a
/// page of matches: for a small scope (one order, a small brand) it visits
/// every match of the word in every tenant. So the scope's own messages are
/// walked first, newest first on the scope's index, each one matched by
/// rowid: all of an order's (one order is small), else the newest
/// `WINDOW`. Only a larger scope whose window does not fill a page walks
/// the index, which its many matches then stop early. Either way the page
/// is the newest matches, as message ids and rowids grow together (ids are
/// made in the single writer's transaction).
async fn sqlite_text_search(
    db: &Db,
    scope: &Scope,
    filter: &SearchFilter,
    q: &str,
    page: &PageRequest,
    reader: &str,
) -> DbResult<Vec<Message>> {
    let fts = fts5_query(q);
    let one_order = scope.customer_order().is_some() || filter.order_id.is_some();
    let mut driven =
        db.read_built(format!("SELECT {MESSAGE_COLUMNS} FROM (SELECT m.rowid AS message_rowid, m.* FROM messages m"));
    push_filters(&mut driven, scope, filter, reader);
    if let Some(after) = &page.after {
        driven.push(" AND m.id < ").push_bind(after.clone());
    }
    driven.push(" ORDER BY m.id DESC");
    if !one_order {
        driven.push(" LIMIT ").push_bind(WINDOW);
    }
    driven
        .push(") m WHERE EXISTS (SELECT 1 FROM messages_fts WHERE messages_fts MATCH ")
        .push_bind(fts.clone())
        .push(" AND messages_fts.rowid = m.message_rowid) ORDER BY m.id DESC LIMIT ")
        .push_bind(page.fetch_limit());
    let rows: Vec<Message> = driven.fetch_all().await?;
    if one_order || rows.len() as i64 == page.fetch_limit() {
        return Ok(rows);
    }
    // Did the window hold the whole scope? Then its matches are all there are.
    let mut in_scope = db.read("SELECT COUNT(*) FROM (SELECT 1 FROM messages m");
    push_filters(&mut in_scope, scope, filter, reader);
    if let Some(after) = &page.after {
        in_scope.push(" AND m.id < ").push_bind(after.clone());
    }
    in_scope.push(" LIMIT ").push_bind(WINDOW + 1).push(")");
    let scope_size: i64 = in_scope.scalar().await?;
    if scope_size <= WINDOW {
        return Ok(rows);
    }
    // CROSS JOIN keeps the index as the outer loop: SQLite never reorders
    // it, and the other order re-runs the match per message.
    let mut walk = db.read_built(format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages_fts CROSS JOIN messages m ON m.rowid = messages_fts.rowid"
    ));
    push_filters(&mut walk, scope, filter, reader);
    walk.push(" AND messages_fts MATCH ").push_bind(fts);
    if let Some(after) = &page.after {
        walk.push(" AND messages_fts.rowid < (SELECT rowid FROM messages WHERE id = ")
            .push_bind(after.clone())
            .push(")");
    }
    walk.push(" ORDER BY messages_fts.rowid DESC LIMIT ").push_bind(page.fetch_limit());
    walk.fetch_all().await
}

/// A text search on PostgreSQL. The planner cannot tell a rare word from
/// a common one (a word missing from its statistics counts as 0.5 % of
/// rows), and walking the messages newest first for a word that matches a
/// handful of a million reads them all. So the newest `WINDOW` messages in
/// scope are matched first, which fills a page for any common word; only
/// when they do not is the GIN index asked for every match, which is then
/// a short list to sort. Either way the page is the newest matches.
async fn postgres_text_search(
    db: &Db,
    scope: &Scope,
    filter: &SearchFilter,
    q: &str,
    page: &PageRequest,
    reader: &str,
) -> DbResult<Vec<Message>> {
    let in_scope = |query: &mut Statement<'_>| {
        query.push("SELECT m.* FROM messages m");
        push_filters(query, scope, filter, reader);
        if let Some(after) = &page.after {
            query.push(" AND m.id < ").push_bind(after.clone());
        }
    };
    let matches = |query: &mut Statement<'_>| {
        query.push("to_tsvector('english', m.body) @@ plainto_tsquery('english', ").push_bind(q.to_owned()).push(")");
    };
    let mut window = db.read_built(format!("SELECT {MESSAGE_COLUMNS} FROM ("));
    in_scope(&mut window);
    window.push(" ORDER BY m.id DESC LIMIT ").push_bind(WINDOW).push(") m WHERE ");
    matches(&mut window);
    window.push(" ORDER BY m.id DESC LIMIT ").push_bind(page.fetch_limit());
    let rows: Vec<Message> = window.fetch_all().await?;
    if rows.len() as i64 == page.fetch_limit() {
        return Ok(rows);
    }
    // OFFSET 0 keeps the planner from folding the ORDER BY … LIMIT into the
    // match, which would bring the newest-first walk back.
    let mut every = db.read_built(format!("SELECT {MESSAGE_COLUMNS} FROM ("));
    in_scope(&mut every);
    every.push(" AND ");
    matches(&mut every);
    every.push(" OFFSET 0) m ORDER BY m.id DESC LIMIT ").push_bind(page.fetch_limit());
    every.fetch_all().await
}

/// The joins and conditions of a search but its words: scope, note
/// visibility, and the filters. Ends inside the `WHERE`, ready for more
/// `AND`s.
fn push_filters(query: &mut Statement<'_>, scope: &Scope, filter: &SearchFilter, reader: &str) {
    if filter.thread_status.is_some() {
        query.push(" JOIN message_threads t ON t.id = m.thread_id");
    }
    query.push(" WHERE 1 = 1");
    match scope.customer_order() {
        Some(order_id) => {
            query.push(" AND m.internal = FALSE AND m.order_id = ").push_bind(order_id.to_string());
        }
        None => scope.push_brand_filter(query, "m.brand_id"),
    }
    if let Some(order_id) = filter.order_id {
        query.push(" AND m.order_id = ").push_bind(order_id.to_string());
    }
    if let Some(brand_id) = filter.brand_id {
        query.push(" AND m.brand_id = ").push_bind(brand_id.to_string());
    }
    if let Some(status) = filter.thread_status {
        query.push(" AND t.status = ").push_bind(status.as_str().to_owned());
    }
    if let Some(channel) = filter.channel {
        query.push(" AND m.channel = ").push_bind(channel.as_str().to_owned());
    }
    if let Some(role) = filter.sender_role {
        query.push(" AND m.sender_role = ").push_bind(role.as_str().to_owned());
    }
    if filter.unread {
        query
            .push(" AND (m.sender_id IS NULL OR m.sender_id <> ")
            .push_bind(reader.to_owned())
            .push(") AND NOT EXISTS (SELECT 1 FROM message_reads r WHERE r.message_id = m.id AND r.reader_id = ")
            .push_bind(reader.to_owned())
            .push(")");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn fts5_queries_quote_every_word() {
        assert_eq!(super::fts5_query(r#"where "is" OR my*"#), r#""where" """is""" "OR" "my*""#);
    }
}
