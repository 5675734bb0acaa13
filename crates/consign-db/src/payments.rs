//! Payments storage, one file per job: brands' sealed provider credentials
//! (`credentials.rs`), payment attempts (`attempts.rs`), the payments
//! ledger and refunds (`refunds.rs`), and the webhook event log with its
//! exactly-once application (`webhooks.rs`). This file keeps what they
//! share: finding an order and settling a refund inside its transaction.
//!
//! This module never talks to a provider and never sees a credential in
//! the clear: callers seal and open credentials (`consign-payments`), call
//! providers outside any transaction, and hand the outcome back here.
//!
//! Exactly once: a webhook event is stored once per brand (`UNIQUE
//! (brand_id, provider, event_id)`: brands sharing one provider account
//! each get the account's events, with the same ids), applied in one transaction that re-reads its row and skips
//! it when already processed, and a provider's capture or refund id is
//! recorded once (`UNIQUE (provider, kind, provider_reference)` on
//! `payments`). Events may arrive in any order: one that needs another
//! first (a refund before its capture) waits and is re-armed when that one
//! applies; one that can never apply is parked for staff.

use consign_domain::{BrandId, EventType, OrderId, OrganizationId, PaymentAttemptId, PaymentId, Timestamp};
use serde_json::json;

use crate::orders::OrderRow;
use crate::orders::money::{self, order_event};
use crate::{Db, DbResult, Tx};

mod attempts;
mod credentials;
mod refunds;
mod webhooks;

pub use attempts::*;
pub use credentials::*;
pub use refunds::*;
pub use webhooks::*;

/// Settles a pending refund inside an order transaction (the order locked).
/// Answers whether the refund left `pending`.
async fn settle_refund_in_tx(
    tx: &mut Tx,
    row: &OrderRow,
    refund_id: PaymentId,
    reference: Option<&str>,
    result: RefundResult,
    failure: Option<&str>,
) -> DbResult<bool> {
    let status: String = tx.query("SELECT status FROM payments WHERE id = $1").bind(refund_id).scalar().await?;
    if status != "pending" {
        return Ok(false);
    }
    let next = match result {
        RefundResult::Succeeded => "succeeded",
        RefundResult::Pending => "pending",
        RefundResult::Failed => "failed",
    };
    tx.query(
        "UPDATE payments SET status = $1, provider_reference = COALESCE(provider_reference, $2), failure = $3, updated_at = $4
          WHERE id = $5",
    )
    .bind(next)
    .bind(reference.map(str::to_owned))
    .bind(failure.map(str::to_owned))
    .bind(Timestamp::now())
    .bind(refund_id)
    .execute()
    .await?;
    let changed = next != "pending";
    if next == "failed" {
        let payload = json!({"order_id": row.id, "refund_id": refund_id, "failure": failure});
        tx.record_event(order_event(row, EventType::RefundFailed, payload, "system")).await?;
    }
    if changed {
        money::settle(tx, row, "system", false).await?;
    }
    Ok(changed)
}

/// Finds the order (and attempt) an event names: by the attempt's provider
/// reference, else by Consign's order id in the metadata; only within the
/// brand the webhook was sent for.
async fn find_order(
    tx: &mut Tx,
    brand_id: BrandId,
    provider: &str,
    attempt_reference: Option<&str>,
    order_id: Option<&str>,
) -> DbResult<Option<(OrderId, Option<PaymentAttemptId>)>> {
    let by_attempt: Option<(OrderId, PaymentAttemptId)> = match attempt_reference {
        Some(reference) => {
            tx.query(
                "SELECT order_id, id FROM payment_attempts WHERE provider = $1 AND provider_reference = $2 AND brand_id = $3",
            )
            .bind(provider.to_owned())
            .bind(reference.to_owned())
            .bind(brand_id)
            .fetch_optional()
            .await?
        }
        None => None,
    };
    if let Some((order_id, attempt_id)) = by_attempt {
        return Ok(Some((order_id, Some(attempt_id))));
    }
    let Some(order_id) = order_id.and_then(|id| id.parse::<OrderId>().ok()) else { return Ok(None) };
    let found: Option<OrderId> = tx
        .query("SELECT id FROM orders WHERE id = $1 AND brand_id = $2")
        .bind(order_id)
        .bind(brand_id)
        .scalar_optional()
        .await?;
    Ok(found.map(|order_id| (order_id, None)))
}

/// The organization of a brand (for webhooks, which carry only the slug).
pub async fn brand_organization(db: &Db, brand_id: BrandId) -> DbResult<OrganizationId> {
    db.read("SELECT organization_id FROM brands WHERE id = $1").bind(brand_id).scalar().await
}

/// The slug of a brand (provider metadata carries it).
pub async fn brand_slug(db: &Db, brand_id: BrandId) -> DbResult<String> {
    db.read("SELECT slug FROM brands WHERE id = $1").bind(brand_id).scalar().await
}
