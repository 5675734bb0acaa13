//! Unpaid orders whose stock hold ran out become `expired` and give their
//! stock back. An order that took any money never expires here (settling
//! its money clears its hold's end): it stays open, `partially_paid`, for
//! the rest or for staff to cancel and refund. Safe with many workers on one database: each order flips
//! from `open` with a conditional update, so its hold is released once.

use consign_domain::{OrderId, Timestamp};
use serde_json::json;

use super::reservations::StockTx;
use crate::{Db, DbResult, NewEvent, TxExt, db_read, db_write};

/// Expires up to `limit` due orders. Returns how many this call expired.
pub async fn expire_due(db: &Db, now: Timestamp, limit: i64) -> DbResult<usize> {
    let due: Vec<OrderId> = db_read!(db, |conn| {
        sqlx::query_scalar(
            "SELECT id FROM orders WHERE reservation_expires_at <= $1 AND status = 'open'
                AND payment_status IN ('unpaid', 'failed') AND paid = 0 ORDER BY reservation_expires_at LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(conn)
        .await?
    });
    let mut expired = 0;
    for order_id in due {
        let flipped = db_write!(db, |tx| {
            let row: Option<(consign_domain::OrganizationId, consign_domain::BrandId)> = sqlx::query_as(
                "UPDATE orders SET status = 'expired', reservation_expires_at = NULL, version = version + 1, updated_at = $1
                  WHERE id = $2 AND status = 'open' AND payment_status IN ('unpaid', 'failed') AND paid = 0
                    AND reservation_expires_at <= $1
              RETURNING organization_id, brand_id",
            )
            .bind(now)
            .bind(order_id)
            .fetch_optional(&mut **tx)
            .await?;
            match row {
                None => false,
                Some((organization_id, brand_id)) => {
                    let released = tx.release(order_id).await?;
                    tx.record_event(NewEvent {
                        organization_id,
                        brand_id: Some(brand_id),
                        event_type: "order.expired",
                        aggregate_type: "order",
                        aggregate_id: order_id.to_string(),
                        payload: json!({"released_units": released}),
                        actor: "system".into(),
                    })
                    .await?;
                    true
                }
            }
        });
        expired += usize::from(flipped);
    }
    Ok(expired)
}
