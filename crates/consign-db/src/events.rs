//! Reading domain events: an order's timeline and the tenant's event feed.
//! Events are written by [`crate::Tx::record_event`] inside the
//! transaction of the change they describe.

use consign_domain::events::CustomerView;
use consign_domain::{BrandId, EventId, EventType, OrderId, Timestamp};
use serde::Serialize;

use crate::{Db, DbResult, Engine, JsonText, Page, PageRequest, Scope, Statement};

/// A domain event.
#[derive(Clone, Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Event {
    /// Id; ids increase with time.
    pub id: EventId,
    /// Such as `order.paid`.
    #[sqlx(rename = "type")]
    #[serde(rename = "type")]
    pub event_type: String,
    /// `order`, `shipment`, `fulfillment_order`, …
    pub aggregate_type: String,
    /// The id of what changed.
    pub aggregate_id: String,
    /// The brand.
    pub brand_id: Option<BrandId>,
    /// What changed.
    pub payload: JsonText,
    /// Who did it.
    pub actor: String,
    /// When.
    pub created_at: Timestamp,
}

const EVENT_COLUMNS: &str = "id, type, aggregate_type, aggregate_id, brand_id, payload, actor, created_at";

/// The event types a customer may see at all, for narrowing reads.
fn customer_event_types() -> impl Iterator<Item = &'static str> {
    EventType::customer_visible().map(EventType::as_str)
}

/// How a customer (an order access token) sees an event: the payload fields
/// its type allows ([`EventType::customer_view`], the one allow-list, used
/// by the timeline, the live feed and its `?after=` replay), or `None` when
/// the event is not for customers. A message event is shown only for a
/// message that says it is visible (`internal: false`), and staff actors are
/// shown as `staff`, never by id.
pub fn customer_view(event: &Event) -> Option<Event> {
    let kind: EventType = event.event_type.parse().ok()?;
    let payload = match kind.customer_view() {
        CustomerView::Hidden => return None,
        // The message as the customer's own message list shows it.
        CustomerView::VisibleMessage => {
            if event.payload.0.get("internal").and_then(serde_json::Value::as_bool) != Some(false) {
                return None;
            }
            event.payload.0.clone()
        }
        CustomerView::Fields(fields) => {
            let mut kept = serde_json::Map::new();
            for field in fields {
                if let Some(value) = event.payload.0.get(*field) {
                    kept.insert((*field).to_owned(), value.clone());
                }
            }
            serde_json::Value::Object(kept)
        }
    };
    let actor = match event.actor.as_str() {
        "system" | "customer" => event.actor.clone(),
        _ => "staff".to_owned(),
    };
    Some(Event { payload: JsonText(payload), actor, ..event.clone() })
}

/// An order's events and those of its fulfillment orders and shipments,
/// oldest first: every one for staff, the [`customer_view`] for a customer.
pub async fn timeline(db: &Db, scope: &Scope, order_id: OrderId) -> DbResult<Vec<Event>> {
    let mut events = Vec::new();
    let mut after = None;
    loop {
        let page = timeline_page(db, scope, order_id, &PageRequest { limit: 200, after }).await?;
        events.extend(page.data);
        match page.next_cursor {
            Some(cursor) => after = Some(cursor),
            None => return Ok(events),
        }
    }
}

/// One page of [`timeline`], oldest first; the cursor is the last event id
/// of the page.
pub async fn timeline_page(db: &Db, scope: &Scope, order_id: OrderId, page: &PageRequest) -> DbResult<Page<Event>> {
    let brand_id: BrandId = db.read("SELECT brand_id FROM orders WHERE id = $1").bind(order_id).scalar().await?;
    scope.check_order(order_id, brand_id)?;
    let customer = scope.customer_order().is_some();
    // A customer's events are narrowed by type in SQL; a note among its
    // messages is only known from the payload, so a short read continues
    // until the page is full.
    let mut visible = Vec::new();
    let mut after = page.after.clone();
    loop {
        let mut query = db.read_built(format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE aggregate_id IN (
                 SELECT CAST("
        ));
        query.push_bind(order_id.to_string());
        query.push(" AS TEXT) UNION ALL SELECT id FROM fulfillment_orders WHERE order_id = ");
        query.push_bind(order_id.to_string());
        query.push(" UNION ALL SELECT id FROM shipments WHERE order_id = ");
        query.push_bind(order_id.to_string());
        query.push(")");
        if customer {
            query.push(" AND ").push_in("type", customer_event_types());
        }
        if let Some(after) = &after {
            query.push(" AND id > ").push_bind(after.clone());
        }
        query.push(" ORDER BY id LIMIT ").push_bind(page.fetch_limit());
        let rows: Vec<Event> = query.fetch_all().await?;
        let exhausted = (rows.len() as i64) < page.fetch_limit();
        after = rows.last().map(|e| e.id.to_string()).or(after);
        visible.extend(rows.into_iter().filter_map(|e| if customer { customer_view(&e) } else { Some(e) }));
        if exhausted || visible.len() > page.limit as usize {
            return Ok(Page::from_rows(visible, page, |e| e.id.to_string()));
        }
    }
}

/// Filters of the event feed.
#[derive(Clone, Debug, Default)]
pub struct EventFilter {
    /// Exact type, such as `order.paid`.
    pub event_type: Option<String>,
    /// Only events after this one (an event id), in commit order.
    pub after: Option<String>,
}

/// Events of the brands the caller sees, in commit order, at most `limit`.
/// `after` names the last event already seen; the feed continues from its
/// position (see [`tail`]), so a follower never misses a late commit.
pub async fn feed(db: &Db, scope: &Scope, filter: &EventFilter, limit: i64) -> DbResult<Vec<Event>> {
    let after = match &filter.after {
        Some(id) => Some(
            position_of(db, id).await?.ok_or_else(|| crate::DbError::invalid("after", "is not a known event id"))?,
        ),
        None => None,
    };
    let mut query = db.read_built(format!("SELECT {EVENT_COLUMNS} FROM events WHERE 1 = 1"));
    scope.push_brand_filter(&mut query, "brand_id");
    if let Some(event_type) = &filter.event_type {
        query.push(" AND type = ").push_bind(event_type.clone());
    }
    push_after(&mut query, db.engine(), after);
    query.push(" ORDER BY txid, seq LIMIT ").push_bind(limit);
    query.fetch_all().await
}

/// Where an event sits in commit order: `(txid, seq)`. On SQLite `txid` is
/// always 0 and `seq` counts commits; on PostgreSQL `txid` is the writing
/// transaction's id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, sqlx::FromRow)]
pub struct Position {
    /// The writing transaction (PostgreSQL) or 0.
    pub txid: i64,
    /// The event's sequence number.
    pub seq: i64,
}

/// The position of an event, if it exists.
pub async fn position_of(db: &Db, event_id: &str) -> DbResult<Option<Position>> {
    db.read("SELECT txid, seq FROM events WHERE id = $1").bind(event_id.to_owned()).fetch_optional().await
}

/// Adds "after this position, and only final rows" to an event query:
/// read in `(txid, seq)` order, final rows never skip an event (see
/// `engine::Primitives::final_events`).
fn push_after(query: &mut Statement<'_>, engine: Engine, after: Option<Position>) {
    query.push(engine.primitives().final_events());
    if let Some(after) = after {
        query.push(" AND (txid, seq) > (").push_bind(after.txid).push(", ").push_bind(after.seq).push(")");
    }
}

/// An event with what the live feed needs to route it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct TailEvent {
    /// The event.
    #[sqlx(flatten)]
    pub event: Event,
    /// Its position.
    #[sqlx(flatten)]
    pub position: Position,
    /// Its organization.
    pub organization_id: consign_domain::OrganizationId,
    /// The order it is about, if any.
    pub order_id: Option<OrderId>,
}

/// Limits of a [`tail`] read.
#[derive(Clone, Debug, Default)]
pub struct TailFilter {
    /// Only these brands (None: all).
    pub brands: Option<Vec<BrandId>>,
    /// Only this order's events.
    pub order_id: Option<OrderId>,
}

/// Events after `after`, in commit order: the source of the live feed.
/// System-level (no scope): the caller routes each event to the
/// subscribers allowed to see it, or narrows the read with `filter`.
pub async fn tail(db: &Db, after: Position, limit: i64, filter: &TailFilter) -> DbResult<Vec<TailEvent>> {
    let mut query =
        db.read_built(format!("SELECT {EVENT_COLUMNS}, txid, seq, organization_id, order_id FROM events WHERE 1 = 1"));
    if let Some(brands) = &filter.brands {
        query.push(" AND brand_id IN (NULL");
        for brand in brands {
            query.push(", ").push_bind(brand.to_string());
        }
        query.push(")");
    }
    if let Some(order_id) = filter.order_id {
        query.push(" AND order_id = ").push_bind(order_id.to_string());
    }
    push_after(&mut query, db.engine(), Some(after));
    query.push(" ORDER BY txid, seq LIMIT ").push_bind(limit);
    query.fetch_all().await
}

/// Whether events after `after` have committed but are not final yet: on
/// PostgreSQL, a transaction older than theirs is still running. A
/// follower then looks again soon rather than at the next wake-up, which
/// their own notifications have already spent. Always false on SQLite.
pub async fn held_back(db: &Db, after: Position) -> DbResult<bool> {
    if db.engine() != Engine::Postgres {
        return Ok(false);
    }
    db.read("SELECT EXISTS (SELECT 1 FROM events WHERE (txid, seq) > ($1, $2))")
        .bind(after.txid)
        .bind(after.seq)
        .scalar()
        .await
}

/// The position of the newest final event: where a new follower starts.
pub async fn head(db: &Db) -> DbResult<Position> {
    let mut query = db.read("SELECT txid, seq FROM events WHERE 1 = 1");
    push_after(&mut query, db.engine(), None);
    query.push(" ORDER BY txid DESC, seq DESC LIMIT 1");
    let head: Option<Position> = query.fetch_optional().await?;
    Ok(head.unwrap_or_default())
}

/// Wakes a follower of the event tail when new events may have committed:
/// on PostgreSQL through `LISTEN consign_events` (the events trigger
/// notifies on commit, from any instance); on SQLite when this process's
/// writer commits. Wake-ups only say "look again": the follower re-reads
/// from its position, so a lost notification (a dropped listener
/// connection, another process writing the SQLite file) costs latency,
/// never an event, and `wait` also returns after `max`.
pub struct EventWaker {
    inner: Waker,
}

enum Waker {
    Sqlite(tokio::sync::watch::Receiver<u64>),
    Postgres { pool: sqlx::PgPool, listener: Option<sqlx::postgres::PgListener> },
}

impl EventWaker {
    /// A waker for this database.
    pub fn new(db: &Db) -> Self {
        // `LISTEN` needs a connection of its own from the PostgreSQL pool
        // (`PgListener`), which no `Statement` gives: the native pool stays.
        let inner = match db.pool() {
            crate::Pool::Sqlite { .. } => Waker::Sqlite(db.commits()),
            crate::Pool::Postgres(pool) => Waker::Postgres { pool: pool.clone(), listener: None },
        };
        Self { inner }
    }

    /// Returns when events may have been written, or after `max`.
    pub async fn wait(&mut self, max: std::time::Duration) {
        match &mut self.inner {
            Waker::Sqlite(commits) => {
                let _ = tokio::time::timeout(max, commits.changed()).await;
            }
            Waker::Postgres { pool, listener } => {
                if listener.is_none() {
                    match sqlx::postgres::PgListener::connect_with(pool).await {
                        Ok(mut fresh) => match fresh.listen("consign_events").await {
                            // Events committed while no one listened are
                            // found by the re-read that follows.
                            Ok(()) => {
                                *listener = Some(fresh);
                                return;
                            }
                            Err(error) => tracing::warn!(%error, "cannot LISTEN for events"),
                        },
                        Err(error) => tracing::warn!(%error, "cannot connect the event listener"),
                    }
                    tokio::time::sleep(max).await;
                    return;
                }
                let Some(active) = listener.as_mut() else { return };
                match tokio::time::timeout(max, active.try_recv()).await {
                    Ok(Ok(Some(_))) | Err(_) => {}
                    // The connection dropped (None) or failed: listen anew
                    // on the next call; the caller re-reads meanwhile.
                    Ok(Ok(None)) | Ok(Err(_)) => *listener = None,
                }
            }
        }
    }
}
