//! Unpaid orders whose stock hold ran out become `expired` and give their
//! stock back. An order that took any money never expires here (settling
//! its money clears its hold's end): it stays open, `partially_paid`, for
//! the rest or for staff to cancel and refund. Safe with many workers on one database: each order flips
//! from `open` with a conditional update, so its hold is released once.

use consign_domain::{BrandId, EventType, OrderId, OrganizationId, Timestamp};
use serde_json::json;

use super::reservations;
use crate::{Db, DbResult, NewEvent, Tx};

/// Expires up to `limit` due orders. Returns how many this call expired.
pub async fn expire_due(db: &Db, now: Timestamp, limit: i64) -> DbResult<usize> {
    let due: Vec<OrderId> = db
        .read(
            "SELECT id FROM orders WHERE reservation_expires_at <= $1 AND status = 'open'
                AND payment_status IN ('unpaid', 'failed') AND paid = 0 ORDER BY reservation_expires_at LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .scalars()
        .await?;
    let mut expired = 0;
    for order_id in due {
        let mut tx = db.begin().await?;
        let flipped = expire(&mut tx, order_id, now).await?;
        tx.commit().await?;
        expired += usize::from(flipped);
    }
    Ok(expired)
}

/// Flips one due order to `expired` and releases its stock, with its event.
/// Answers `false`, changing nothing, when it is no longer due (another
/// worker expired it, or it was paid or changed meanwhile).
async fn expire(tx: &mut Tx, order_id: OrderId, now: Timestamp) -> DbResult<bool> {
    let row: Option<(OrganizationId, BrandId)> = tx
        .query(
            "UPDATE orders SET status = 'expired', reservation_expires_at = NULL, version = version + 1, updated_at = $1
              WHERE id = $2 AND status = 'open' AND payment_status IN ('unpaid', 'failed') AND paid = 0
                AND reservation_expires_at <= $1
          RETURNING organization_id, brand_id",
        )
        .bind(now)
        .bind(order_id)
        .fetch_optional()
        .await?;
    let Some((organization_id, brand_id)) = row else { return Ok(false) };
    let released = reservations::release(tx, order_id).await?;
    tx.record_event(NewEvent {
        organization_id,
        brand_id: Some(brand_id),
        event_type: EventType::OrderExpired,
        aggregate_type: "order",
        aggregate_id: order_id.to_string(),
        payload: json!({"released_units": released}),
        actor: "system".into(),
    })
    .await?;
    Ok(true)
}
