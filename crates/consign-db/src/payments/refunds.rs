//! The payments ledger as staff read it (the API's ledger entries, the
//! order page's payment records), and refunds: what the refund job sends,
//! how its outcome settles, and what happens when the job gives up.

use consign_domain::{
    BrandId, EventType, OrderId, OrganizationId, PaymentAttemptId, PaymentId, Timestamp, WebhookEventId,
};
use serde::Serialize;
use serde_json::json;

use crate::jobs::kinds::{ApplyWebhook, JobKind as _, SendRefund};
use crate::orders::changes::lock_order;
use crate::orders::money::{self, order_event};
use crate::{Db, DbError, DbResult, NewJob, Scope};

use super::*;

/// A captured payment or a refund.
#[derive(Clone, Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct LedgerEntry {
    /// Id (for a refund, also its provider idempotency key).
    pub id: PaymentId,
    /// The order.
    pub order_id: OrderId,
    /// `payment` or `refund`.
    pub kind: String,
    /// `manual`, `stripe`, `razorpay`, `paypal`.
    pub provider: String,
    /// Minor units.
    pub amount: i64,
    /// ISO 4217.
    pub currency: String,
    /// `captured` (payments); `pending`, `succeeded`, `failed` (refunds).
    pub status: String,
    /// For a refund, the payment it refunds.
    pub parent_id: Option<PaymentId>,
    /// The attempt a capture paid.
    pub attempt_id: Option<PaymentAttemptId>,
    /// The provider's id of the capture or refund.
    pub provider_reference: Option<String>,
    /// A staff reference (manual payments).
    pub reference: Option<String>,
    /// Why (refunds).
    pub reason: Option<String>,
    /// Why it failed.
    pub failure: Option<String>,
    /// Recorded at.
    pub created_at: Timestamp,
}

const LEDGER_COLUMNS: &str = "id, order_id, kind, provider, amount, currency, status, parent_id, attempt_id, provider_reference, reference, reason, failure, created_at";

/// An order's payments and refunds, oldest first.
pub async fn ledger(db: &Db, scope: &Scope, order_id: OrderId) -> DbResult<Vec<LedgerEntry>> {
    crate::orders::get(db, scope, order_id).await?;
    db.read_built(format!("SELECT {LEDGER_COLUMNS} FROM payments WHERE order_id = $1 ORDER BY id"))
        .bind(order_id)
        .fetch_all()
        .await
}

/// A payment or refund of an order, as the staff order page lists it.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct PaymentRecord {
    /// `manual`, …
    pub provider: String,
    /// `payment` or `refund`.
    pub kind: String,
    /// Minor units.
    pub amount: i64,
    /// Currency.
    pub currency: String,
    /// Provider status.
    pub status: String,
    /// Bank reference or receipt.
    pub reference: Option<String>,
    /// When.
    pub created_at: Timestamp,
}

/// The payments and refunds of an order the caller sees, oldest first.
pub async fn payments_for_order(db: &Db, scope: &Scope, order_id: OrderId) -> DbResult<Vec<PaymentRecord>> {
    let order = crate::orders::get(db, scope, order_id).await?;
    db.read(
        "SELECT provider, kind, amount, currency, status, reference, created_at
           FROM payments WHERE order_id = $1 AND brand_id = $2 ORDER BY created_at, id",
    )
    .bind(order_id)
    .bind(order.brand_id)
    .fetch_all()
    .await
}

/// What the refund job needs to send a refund.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct RefundToSend {
    /// The refund.
    pub id: PaymentId,
    /// Owner.
    pub organization_id: OrganizationId,
    /// Brand.
    pub brand_id: BrandId,
    /// Order.
    pub order_id: OrderId,
    /// Provider.
    pub provider: String,
    /// Minor units.
    pub amount: i64,
    /// ISO 4217.
    pub currency: String,
    /// `pending`, `succeeded`, `failed`.
    pub status: String,
    /// The provider's refund id, once known.
    pub provider_reference: Option<String>,
    /// The provider's id of the captured payment it refunds.
    pub payment_reference: Option<String>,
}

/// A refund and the capture it refunds.
pub async fn refund_to_send(db: &Db, refund_id: PaymentId) -> DbResult<RefundToSend> {
    db.read(
        "SELECT r.id, r.organization_id, r.brand_id, r.order_id, r.provider, r.amount, r.currency, r.status,
                r.provider_reference, p.provider_reference AS payment_reference
           FROM payments r LEFT JOIN payments p ON p.id = r.parent_id
          WHERE r.id = $1 AND r.kind = 'refund'",
    )
    .bind(refund_id)
    .fetch_one()
    .await
}

/// Where a provider says a refund is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefundResult {
    /// Done.
    Succeeded,
    /// Accepted; a webhook settles it.
    Pending,
    /// Refused.
    Failed,
}

/// Records a provider's answer about a refund Consign made. Idempotent: a
/// refund already settled (by a webhook, or an earlier run) is left alone.
pub async fn settle_refund(
    db: &Db,
    refund_id: PaymentId,
    reference: Option<&str>,
    result: RefundResult,
    failure: Option<&str>,
) -> DbResult<()> {
    let order_id: OrderId = db.read("SELECT order_id FROM payments WHERE id = $1").bind(refund_id).scalar().await?;
    let scope = Scope::system();
    let mut tx = db.begin().await?;
    let row = lock_order(&mut tx, &scope, order_id).await?;
    settle_refund_in_tx(&mut tx, &row, refund_id, reference, result, failure).await?;
    tx.commit().await?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Webhook event log

/// How the failure of a refund whose job gave up begins: such a refund was
/// maybe never received by its provider, and retrying its job reopens it.
const NOT_SENT: &str = "not sent: ";

/// Fails a pending refund whose job used its attempts, so the money it held
/// can be refunded again (`POST /orders/{id}/refunds`) or the job retried
/// ([`reopen_refund`]). A refund a provider already settled is left alone.
pub async fn give_up_refund(db: &Db, refund_id: PaymentId, attempts: i64, error: &str) -> DbResult<()> {
    let error: String = error.chars().take(300).collect();
    let failure = format!("{NOT_SENT}the provider could not be reached in {attempts} attempts ({error})");
    settle_refund(db, refund_id, None, RefundResult::Failed, Some(&failure)).await
}

/// Puts a refund that failed because its job gave up back to `pending`, to
/// be sent again under the same id (the provider's idempotency key), when
/// the order can still refund that much. Answers whether it reopened it.
pub async fn reopen_refund(db: &Db, refund_id: PaymentId) -> DbResult<bool> {
    let order_id: OrderId = db.read("SELECT order_id FROM payments WHERE id = $1").bind(refund_id).scalar().await?;
    let scope = Scope::system();
    let mut tx = db.begin().await?;
    let row = lock_order(&mut tx, &scope, order_id).await?;
    let amount: Option<i64> = tx
        .query(
            "SELECT amount FROM payments WHERE id = $1 AND kind = 'refund' AND status = 'failed' AND failure LIKE $2",
        )
        .bind(refund_id)
        .bind(format!("{NOT_SENT}%"))
        .scalar_optional()
        .await?;
    let Some(amount) = amount else {
        tx.commit().await?;
        return Ok(false);
    };
    let sums = money::ledger_sums(&mut tx, order_id).await?;
    if amount > sums.paid - sums.refunded - sums.pending {
        return Err(DbError::transition(
            "the order's money was refunded another way meanwhile; this refund stays failed",
        ));
    }
    tx.query("UPDATE payments SET status = 'pending', failure = NULL, updated_at = $1 WHERE id = $2")
        .bind(Timestamp::now())
        .bind(refund_id)
        .execute()
        .await?;
    let payload = json!({"order_id": order_id, "refund_id": refund_id});
    tx.record_event(order_event(&row, EventType::RefundRetried, payload, "system")).await?;
    money::settle(&mut tx, &row, "system", false).await?;
    tx.commit().await?;
    Ok(true)
}

/// Re-queues money work that has no job left to do it: a provider refund
/// still `pending` and never answered, or a webhook event still `pending`,
/// whose job finished or vanished without settling it (older than
/// `older_than`, so work just enqueued is not doubled). Dead jobs are left
/// to staff (`crate::alerts`). Answers how many jobs it enqueued.
pub async fn requeue_stuck(db: &Db, older_than: Timestamp) -> DbResult<usize> {
    let now = Timestamp::now();
    let mut tx = db.begin().await?;
    let refunds: Vec<PaymentId> = tx
        .query(
            "SELECT p.id FROM payments p
              WHERE p.kind = 'refund' AND p.status = 'pending' AND p.provider <> 'manual'
                AND p.provider_reference IS NULL AND p.updated_at < $1
                AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.dedupe_key LIKE $2 || p.id || '%'
                                   AND j.status IN ('queued', 'running', 'dead'))
              ORDER BY p.id LIMIT 500",
        )
        .bind(older_than)
        .bind(format!("{}:", SendRefund::KIND))
        .scalars()
        .await?;
    let events: Vec<WebhookEventId> = tx
        .query(
            "SELECT e.id FROM webhook_events e
              WHERE e.outcome = 'pending' AND e.processed_at IS NULL AND e.received_at < $1
                AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.dedupe_key LIKE $2 || e.id || '%'
                                   AND j.status IN ('queued', 'running', 'dead'))
              ORDER BY e.id LIMIT 500",
        )
        .bind(older_than)
        .bind(format!("{}:", ApplyWebhook::KIND))
        .scalars()
        .await?;
    // A sweep's job gets a key of its own (the work's first job is done or
    // gone), still starting with the kind's key, which the queries above
    // look for.
    for refund_id in &refunds {
        let job = SendRefund { refund_id: *refund_id };
        tx.enqueue_job(NewJob {
            dedupe_key: Some(format!("{}:{refund_id}:swept@{}", SendRefund::KIND, now.as_micros())),
            ..NewJob::of(&job)
        })
        .await?;
    }
    for event_id in &events {
        let job = ApplyWebhook { webhook_event_id: *event_id };
        tx.enqueue_job(NewJob {
            dedupe_key: Some(format!("{}:{event_id}:swept@{}", ApplyWebhook::KIND, now.as_micros())),
            ..NewJob::of(&job)
        })
        .await?;
    }
    tx.commit().await?;
    Ok(refunds.len() + events.len())
}
