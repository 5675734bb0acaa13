//! Reading domain events: an order's timeline and the tenant's event feed.
//! Events are written by [`crate::TxExt::record_event`] inside the
//! transaction of the change they describe.

use consign_domain::{BrandId, EventId, OrderId, Timestamp};
use serde::Serialize;
use sqlx::QueryBuilder;

use crate::{Db, DbResult, JsonText, Scope, db_read};

/// A domain event (SPEC §4 "Event").
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

/// An order's events and those of its fulfillment orders and shipments,
/// oldest first.
pub async fn timeline(db: &Db, scope: &Scope, order_id: OrderId) -> DbResult<Vec<Event>> {
    let brand_id: BrandId = db_read!(db, |conn| {
        sqlx::query_scalar("SELECT brand_id FROM orders WHERE id = $1").bind(order_id).fetch_one(conn).await?
    });
    scope.check_order(order_id, brand_id)?;
    Ok(db_read!(db, |conn| {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE aggregate_id IN (
                 SELECT CAST($1 AS TEXT) UNION ALL SELECT id FROM fulfillment_orders WHERE order_id = $1
                 UNION ALL SELECT id FROM shipments WHERE order_id = $1)
              ORDER BY id"
        )))
        .bind(order_id.to_string())
        .fetch_all(conn)
        .await?
    }))
}

/// Filters of the event feed.
#[derive(Clone, Debug, Default)]
pub struct EventFilter {
    /// Exact type, such as `order.paid`.
    pub event_type: Option<String>,
    /// Only events after this id (for following the feed).
    pub after: Option<String>,
}

/// Events of the brands the caller sees, oldest first, at most `limit`.
pub async fn feed(db: &Db, scope: &Scope, filter: &EventFilter, limit: i64) -> DbResult<Vec<Event>> {
    Ok(db_read!(db, |conn| {
        let mut query = QueryBuilder::new(format!("SELECT {EVENT_COLUMNS} FROM events WHERE 1 = 1"));
        scope.push_brand_filter(&mut query, "brand_id");
        if let Some(event_type) = &filter.event_type {
            query.push(" AND type = ").push_bind(event_type.clone());
        }
        if let Some(after) = &filter.after {
            query.push(" AND id > ").push_bind(after.clone());
        }
        query.push(" ORDER BY id LIMIT ").push_bind(limit);
        query.build_query_as().fetch_all(conn).await?
    }))
}
