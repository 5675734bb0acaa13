//! The provider webhook log and its exactly-once application: store once,
//! apply in one transaction that re-reads its row, wait for the event it
//! depends on, or park it for staff.

use consign_domain::status::{Lifecycle, OrderStatus, PaymentStatus};
use consign_domain::{
    BrandId, EventType, OrderId, OrganizationId, PaymentAttemptId, PaymentId, Timestamp, WebhookEventId,
};
use serde::Serialize;
use serde_json::json;

use crate::jobs::kinds::{ApplyWebhook, JobKind as _};
use crate::orders::OrderRow;
use crate::orders::changes::lock_order;
use crate::orders::money::{self, order_event};
use crate::{Db, DbResult, NewJob, Page, PageRequest, Scope, Tx};

use super::*;

/// A stored webhook event, as staff see it.
#[derive(Clone, Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct WebhookEvent {
    /// Id.
    pub id: WebhookEventId,
    /// The brand it was sent for.
    pub brand_id: BrandId,
    /// `stripe`, `razorpay`, `paypal`.
    pub provider: String,
    /// The provider's event id.
    pub event_id: String,
    /// The provider's event type.
    pub event_type: String,
    /// The raw body as received.
    pub payload: String,
    /// Received at.
    pub received_at: Timestamp,
    /// Applied, ignored or parked at.
    pub processed_at: Option<Timestamp>,
    /// `pending`, `waiting`, `applied`, `ignored`, `parked`.
    pub outcome: String,
    /// What a waiting event waits for (a provider payment id).
    pub waiting_on: Option<String>,
    /// Times processing ran.
    pub attempts: i64,
    /// Why it was ignored, is waiting or was parked.
    pub detail: Option<String>,
}

const WEBHOOK_COLUMNS: &str = "id, brand_id, provider, event_id, event_type, payload, received_at, processed_at, outcome, waiting_on, attempts, detail";

/// Stores a verified webhook event and enqueues its application, once per
/// brand and provider event id. Answers the stored row's id and whether it was a
/// duplicate.
pub async fn accept_webhook(
    db: &Db,
    organization_id: OrganizationId,
    brand_id: BrandId,
    provider: &str,
    event_id: &str,
    event_type: &str,
    payload: &str,
) -> DbResult<(WebhookEventId, bool)> {
    let id = WebhookEventId::new();
    let mut tx = db.begin().await?;
    let inserted = tx
        .query(
            "INSERT INTO webhook_events (id, organization_id, brand_id, provider, event_id, event_type, payload, received_at, outcome)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending')
             ON CONFLICT (brand_id, provider, event_id) DO NOTHING",
        )
        .bind(id)
        .bind(organization_id)
        .bind(brand_id)
        .bind(provider.to_owned())
        .bind(event_id.to_owned())
        .bind(event_type.to_owned())
        .bind(payload.to_owned())
        .bind(Timestamp::now())
        .execute()
        .await?
        == 1;
    if inserted {
        tx.enqueue(&ApplyWebhook { webhook_event_id: id }).await?;
    }
    tx.commit().await?;
    if inserted {
        return Ok((id, false));
    }
    let existing: WebhookEventId = db
        .read("SELECT id FROM webhook_events WHERE brand_id = $1 AND provider = $2 AND event_id = $3")
        .bind(brand_id)
        .bind(provider.to_owned())
        .bind(event_id.to_owned())
        .scalar()
        .await?;
    Ok((existing, true))
}

/// A stored event, for the job that applies it.
pub async fn webhook_event(db: &Db, id: WebhookEventId) -> DbResult<WebhookEvent> {
    db.read_built(format!("SELECT {WEBHOOK_COLUMNS} FROM webhook_events WHERE id = $1")).bind(id).fetch_one().await
}

/// Filters of the webhook event log.
#[derive(Clone, Debug, Default)]
pub struct WebhookFilter {
    /// One outcome, such as `parked`.
    pub outcome: Option<String>,
    /// One brand.
    pub brand_id: Option<BrandId>,
    /// One provider.
    pub provider: Option<String>,
}

/// The webhook event log of the brands the caller sees, newest first.
pub async fn list_webhook_events(
    db: &Db,
    scope: &Scope,
    filter: &WebhookFilter,
    page: &PageRequest,
) -> DbResult<Page<WebhookEvent>> {
    let mut query = db.read_built(format!("SELECT {WEBHOOK_COLUMNS} FROM webhook_events WHERE 1 = 1"));
    scope.push_brand_filter(&mut query, "brand_id");
    if let Some(outcome) = &filter.outcome {
        query.push(" AND outcome = ").push_bind(outcome.clone());
    }
    if let Some(brand_id) = filter.brand_id {
        query.push(" AND brand_id = ").push_bind(brand_id);
    }
    if let Some(provider) = &filter.provider {
        query.push(" AND provider = ").push_bind(provider.clone());
    }
    if let Some(after) = &page.after {
        query.push(" AND id < ").push_bind(after.clone());
    }
    query.push(" ORDER BY id DESC LIMIT ").push_bind(page.fetch_limit());
    let rows: Vec<WebhookEvent> = query.fetch_all().await?;
    Ok(Page::from_rows(rows, page, |e| e.id.to_string()))
}

/// What a webhook event asks of the ledger, reduced from the provider's
/// own shapes by `consign-payments`.
#[derive(Clone, Debug)]
pub enum LedgerEvent {
    /// Money captured.
    Captured {
        /// The provider's id of the capture.
        payment_reference: String,
        /// The attempt's provider reference.
        attempt_reference: Option<String>,
        /// Consign's order id from the metadata.
        order_id: Option<String>,
        /// Minor units.
        amount: i64,
        /// ISO 4217.
        currency: String,
    },
    /// An attempt failed.
    Failed {
        /// The attempt's provider reference.
        attempt_reference: String,
        /// Consign's order id from the metadata.
        order_id: Option<String>,
        /// Why.
        reason: String,
    },
    /// A refund settled or failed.
    Refund {
        /// The provider's refund id.
        refund_reference: String,
        /// The provider's id of the capture it refunds.
        payment_reference: String,
        /// Consign's refund id, when Consign made it.
        refund_id: Option<String>,
        /// Minor units.
        amount: i64,
        /// ISO 4217.
        currency: String,
        /// Succeeded (else failed).
        succeeded: bool,
    },
    /// Nothing to do.
    Ignored,
}

/// What applying an event did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It changed the ledger or an attempt.
    Applied,
    /// Nothing to do: a duplicate in effect, or a type Consign ignores.
    Ignored(String),
    /// It needs another event first; it is re-armed when that applies.
    Waiting(String),
    /// It can never apply; staff look at it.
    Parked(String),
    /// It was processed before (a second delivery of the job).
    AlreadyProcessed,
}

#[derive(sqlx::FromRow)]
struct EventHead {
    brand_id: BrandId,
    provider: String,
    processed_at: Option<Timestamp>,
}

/// Applies a stored event once: in one transaction that re-reads the event
/// row (locked on PostgreSQL), changes the order's ledger, and records the
/// outcome. Safe to call any number of times for one event.
pub async fn apply_webhook(db: &Db, id: WebhookEventId, event: &LedgerEvent) -> DbResult<Outcome> {
    let mut tx = db.begin().await?;
    let head = event_head(&mut tx, id).await?;
    if head.processed_at.is_some() {
        tx.commit().await?;
        return Ok(Outcome::AlreadyProcessed);
    }
    let outcome = apply_event(&mut tx, id, &head, event).await?;
    record_outcome(&mut tx, id, &outcome).await?;
    tx.commit().await?;
    Ok(outcome)
}

/// Re-reads a stored event's row, locked on PostgreSQL.
async fn event_head(tx: &mut Tx, id: WebhookEventId) -> DbResult<EventHead> {
    let sql = format!("SELECT brand_id, provider, processed_at FROM webhook_events WHERE id = $1{}", tx.lock_clause());
    tx.query_built(sql).bind(id).fetch_one().await
}

/// Does what an unprocessed event asks and answers how it went.
async fn apply_event(tx: &mut Tx, id: WebhookEventId, head: &EventHead, event: &LedgerEvent) -> DbResult<Outcome> {
    Ok(match event {
        LedgerEvent::Ignored => Outcome::Ignored("event type not acted on".into()),
        LedgerEvent::Captured { payment_reference, attempt_reference, order_id, amount, currency } => {
            apply_capture(
                tx,
                head,
                payment_reference,
                attempt_reference.as_deref(),
                order_id.as_deref(),
                *amount,
                currency,
            )
            .await?
        }
        LedgerEvent::Failed { attempt_reference, order_id, reason } => {
            apply_failure(tx, head, attempt_reference, order_id.as_deref(), reason).await?
        }
        LedgerEvent::Refund { refund_reference, payment_reference, refund_id, amount, currency, succeeded } => {
            match find_our_refund(tx, head, refund_id.as_deref(), refund_reference).await? {
                Some((our_refund_id, order_id)) => {
                    apply_our_refund(tx, our_refund_id, order_id, refund_reference, *succeeded).await?
                }
                None if !*succeeded => Outcome::Ignored("a failed refund Consign did not make".into()),
                None => {
                    apply_provider_refund(tx, id, head, refund_reference, payment_reference, *amount, currency).await?
                }
            }
        }
    })
}

/// A capture: recorded once on the order it names, in the order's currency
/// and for a positive amount, else parked.
async fn apply_capture(
    tx: &mut Tx,
    head: &EventHead,
    payment_reference: &str,
    attempt_reference: Option<&str>,
    order_id: Option<&str>,
    amount: i64,
    currency: &str,
) -> DbResult<Outcome> {
    let Some((order_id, attempt_id)) =
        find_order(tx, head.brand_id, &head.provider, attempt_reference, order_id).await?
    else {
        return Ok(Outcome::Parked("no order of this brand matches the payment".into()));
    };
    let row = lock_order(tx, &Scope::system(), order_id).await?;
    let exists: Option<PaymentId> = tx
        .query("SELECT id FROM payments WHERE provider = $1 AND kind = 'payment' AND provider_reference = $2")
        .bind(head.provider.clone())
        .bind(payment_reference.to_owned())
        .scalar_optional()
        .await?;
    if exists.is_some() {
        return Ok(Outcome::Ignored("capture already recorded".into()));
    }
    if currency != row.currency {
        return Ok(Outcome::Parked(format!("captured in {currency}, the order is in {}", row.currency)));
    }
    if consign_domain::money::within_limit(amount).is_none_or(|amount| amount == 0) {
        return Ok(Outcome::Parked("captured amount is not positive or beyond the largest amount".into()));
    }
    record_capture(tx, head, &row, attempt_id, payment_reference, amount, currency).await?;
    rearm_waiting(tx, head, payment_reference).await?;
    Ok(Outcome::Applied)
}

/// Records a checked capture on the locked order (and its attempt), then
/// settles the order: a late capture holds the stock again when it is still
/// there, and is owed back when it is not.
async fn record_capture(
    tx: &mut Tx,
    head: &EventHead,
    row: &OrderRow,
    attempt_id: Option<PaymentAttemptId>,
    payment_reference: &str,
    amount: i64,
    currency: &str,
) -> DbResult<()> {
    let provider = head.provider.as_str();
    // A capture after the hold ran out holds the stock again when it is
    // still there.
    let late = row.status == OrderStatus::Expired;
    let reopened = late && money::reopen_expired(tx, row, "system").await?;
    let payment_id = PaymentId::new();
    let now = Timestamp::now();
    tx.query(
        "INSERT INTO payments (id, organization_id, brand_id, order_id, provider, kind, amount, currency, status,
                               attempt_id, provider_reference, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, 'payment', $6, $7, 'captured', $8, $9, $10, $10)",
    )
    .bind(payment_id)
    .bind(row.organization_id)
    .bind(row.brand_id)
    .bind(row.id)
    .bind(provider.to_owned())
    .bind(amount)
    .bind(currency.to_owned())
    .bind(attempt_id)
    .bind(payment_reference.to_owned())
    .bind(now)
    .execute()
    .await?;
    if let Some(attempt_id) = attempt_id {
        tx.query("UPDATE payment_attempts SET status = 'succeeded', failure = NULL, updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(attempt_id)
            .execute()
            .await?;
    }
    let payload = json!({"order_id": row.id, "payment_id": payment_id, "attempt_id": attempt_id,
                         "provider": provider, "provider_reference": payment_reference,
                         "amount": amount, "currency": currency});
    tx.record_event(order_event(row, EventType::PaymentCaptured, payload, "system")).await?;
    // A capture on a cancelled order, or an expired one whose stock is
    // gone, is owed back at once.
    let settled = money::settle(tx, row, "system", true).await?;
    if late && !reopened {
        money::owed_back_after_expiry(tx, row, settled.balance.refund_due(), provider).await?;
    }
    Ok(())
}

/// Re-arms the events that waited for this capture: they may apply now.
async fn rearm_waiting(tx: &mut Tx, head: &EventHead, payment_reference: &str) -> DbResult<()> {
    let waiting: Vec<(WebhookEventId, i64)> = tx
        .query(
            "SELECT id, attempts FROM webhook_events
              WHERE brand_id = $1 AND provider = $2 AND waiting_on = $3 AND outcome = 'waiting'",
        )
        .bind(head.brand_id)
        .bind(head.provider.clone())
        .bind(payment_reference.to_owned())
        .fetch_all()
        .await?;
    for (waiting_id, attempts) in waiting {
        tx.query("UPDATE webhook_events SET outcome = 'pending', waiting_on = NULL WHERE id = $1")
            .bind(waiting_id)
            .execute()
            .await?;
        // Keyed by the event's attempts as well: its first job is done,
        // and each wake-up needs a job of its own.
        tx.enqueue_job(NewJob {
            dedupe_key: Some(format!("{}:{waiting_id}:{attempts}", ApplyWebhook::KIND)),
            ..NewJob::of(&ApplyWebhook { webhook_event_id: waiting_id })
        })
        .await?;
    }
    Ok(())
}

/// A failed attempt: marks the attempt (and an unpaid order) failed, unless
/// the attempt already succeeded or failed.
async fn apply_failure(
    tx: &mut Tx,
    head: &EventHead,
    attempt_reference: &str,
    order_id: Option<&str>,
    reason: &str,
) -> DbResult<Outcome> {
    let Some((order_id, attempt_id)) =
        find_order(tx, head.brand_id, &head.provider, Some(attempt_reference), order_id).await?
    else {
        return Ok(Outcome::Parked("no order of this brand matches the attempt".into()));
    };
    let row = lock_order(tx, &Scope::system(), order_id).await?;
    let attempt_status: Option<String> = match attempt_id {
        Some(attempt_id) => {
            tx.query("SELECT status FROM payment_attempts WHERE id = $1").bind(attempt_id).scalar_optional().await?
        }
        None => None,
    };
    if attempt_status.as_deref() == Some("succeeded") {
        return Ok(Outcome::Ignored("the attempt already succeeded".into()));
    }
    if attempt_status.as_deref() == Some("failed") {
        return Ok(Outcome::Ignored("the attempt already failed".into()));
    }
    let now = Timestamp::now();
    if let Some(attempt_id) = attempt_id {
        tx.query("UPDATE payment_attempts SET status = 'failed', failure = $1, updated_at = $2 WHERE id = $3")
            .bind(reason.to_owned())
            .bind(now)
            .bind(attempt_id)
            .execute()
            .await?;
    }
    if row.paid == 0 && row.payment_status.allows(PaymentStatus::Failed) {
        tx.query("UPDATE orders SET payment_status = 'failed', version = version + 1, updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(order_id)
            .execute()
            .await?;
    }
    let payload = json!({"order_id": order_id, "attempt_id": attempt_id, "provider": head.provider,
                         "reason": reason});
    tx.record_event(order_event(&row, EventType::PaymentFailed, payload, "system")).await?;
    Ok(Outcome::Applied)
}

/// Consign's own refund an event reports: by its id in the metadata, else
/// by the provider's id.
async fn find_our_refund(
    tx: &mut Tx,
    head: &EventHead,
    refund_id: Option<&str>,
    refund_reference: &str,
) -> DbResult<Option<(PaymentId, OrderId)>> {
    tx.query(
        "SELECT id, order_id FROM payments
          WHERE kind = 'refund' AND provider = $1 AND brand_id = $2
            AND (id = $3 OR provider_reference = $4)",
    )
    .bind(head.provider.clone())
    .bind(head.brand_id)
    .bind(refund_id.unwrap_or_default().to_owned())
    .bind(refund_reference.to_owned())
    .fetch_optional()
    .await
}

/// Consign's own refund settled or failed at the provider: settles it once.
async fn apply_our_refund(
    tx: &mut Tx,
    our_refund_id: PaymentId,
    order_id: OrderId,
    refund_reference: &str,
    succeeded: bool,
) -> DbResult<Outcome> {
    let row = lock_order(tx, &Scope::system(), order_id).await?;
    let result = if succeeded { RefundResult::Succeeded } else { RefundResult::Failed };
    let failure = (!succeeded).then_some("the provider reports the refund failed");
    let changed = settle_refund_in_tx(tx, &row, our_refund_id, Some(refund_reference), result, failure).await?;
    Ok(if changed { Outcome::Applied } else { Outcome::Ignored("refund already settled".into()) })
}

/// A refund made at the provider (its dashboard): it needs its capture, and
/// waits for it when that has not arrived yet.
async fn apply_provider_refund(
    tx: &mut Tx,
    id: WebhookEventId,
    head: &EventHead,
    refund_reference: &str,
    payment_reference: &str,
    amount: i64,
    currency: &str,
) -> DbResult<Outcome> {
    let capture: Option<(PaymentId, OrderId, i64)> = tx
        .query(
            "SELECT id, order_id, amount FROM payments
              WHERE provider = $1 AND kind = 'payment' AND provider_reference = $2 AND brand_id = $3",
        )
        .bind(head.provider.clone())
        .bind(payment_reference.to_owned())
        .bind(head.brand_id)
        .fetch_optional()
        .await?;
    let Some((capture_id, order_id, captured)) = capture else {
        tx.query("UPDATE webhook_events SET waiting_on = $1 WHERE id = $2")
            .bind(payment_reference.to_owned())
            .bind(id)
            .execute()
            .await?;
        return Ok(Outcome::Waiting(format!("waits for the capture {payment_reference}")));
    };
    let row = lock_order(tx, &Scope::system(), order_id).await?;
    let taken: i64 = tx
        .query(
            "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM payments
              WHERE parent_id = $1 AND kind = 'refund' AND status IN ('pending', 'succeeded')",
        )
        .bind(capture_id)
        .scalar()
        .await?;
    if currency != row.currency {
        return Ok(Outcome::Parked(format!("refunded in {currency}, the order is in {}", row.currency)));
    }
    if amount <= 0 || taken.saturating_add(amount) > captured {
        return Ok(Outcome::Parked(format!(
            "refund of {amount} exceeds what is left of the capture ({})",
            captured - taken
        )));
    }
    record_provider_refund(tx, head, &row, capture_id, refund_reference, amount, currency).await?;
    Ok(Outcome::Applied)
}

/// Records a checked provider refund against its capture on the locked
/// order: what exceeds what the order owes back becomes a discount, then the
/// order is settled.
async fn record_provider_refund(
    tx: &mut Tx,
    head: &EventHead,
    row: &OrderRow,
    capture_id: PaymentId,
    refund_reference: &str,
    amount: i64,
    currency: &str,
) -> DbResult<()> {
    let sums = money::ledger_sums(tx, row.id).await?;
    let owed = consign_domain::ledger::Balance::of(row.status, row.total, sums.paid, sums.refunded).refund_due()
        - sums.pending;
    let credit = amount - owed.max(0);
    let now = Timestamp::now();
    if credit > 0 {
        tx.query(
            "UPDATE orders SET discount_total = discount_total + $1, total = total - $1, updated_at = $2 WHERE id = $3",
        )
        .bind(credit)
        .bind(now)
        .bind(row.id)
        .execute()
        .await?;
    }
    tx.query(
        "INSERT INTO payments (id, organization_id, brand_id, order_id, provider, kind, amount, currency, status,
                               parent_id, provider_reference, reason, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, 'refund', $6, $7, 'succeeded', $8, $9, 'refunded at the provider', $10, $10)",
    )
    .bind(PaymentId::new())
    .bind(row.organization_id)
    .bind(row.brand_id)
    .bind(row.id)
    .bind(head.provider.clone())
    .bind(amount)
    .bind(currency.to_owned())
    .bind(capture_id)
    .bind(refund_reference.to_owned())
    .bind(now)
    .execute()
    .await?;
    money::settle(tx, row, "system", false).await?;
    Ok(())
}

/// Records how applying went on the event's row: every outcome but
/// `waiting` marks it processed.
async fn record_outcome(tx: &mut Tx, id: WebhookEventId, outcome: &Outcome) -> DbResult<()> {
    let (label, detail, processed) = match outcome {
        Outcome::Applied => ("applied", None, true),
        Outcome::Ignored(detail) => ("ignored", Some(detail.clone()), true),
        Outcome::Parked(detail) => ("parked", Some(detail.clone()), true),
        Outcome::Waiting(detail) => ("waiting", Some(detail.clone()), false),
        Outcome::AlreadyProcessed => ("applied", None, true),
    };
    tx.query(
        "UPDATE webhook_events SET outcome = $1, detail = $2, attempts = attempts + 1,
                processed_at = CASE WHEN $3 THEN $4 ELSE NULL END
          WHERE id = $5",
    )
    .bind(label)
    .bind(detail)
    .bind(processed)
    .bind(Timestamp::now())
    .bind(id)
    .execute()
    .await?;
    Ok(())
}

/// Parks an event that cannot be read (a body the provider parser refuses).
pub async fn park_webhook(db: &Db, id: WebhookEventId, detail: &str) -> DbResult<()> {
    let mut tx = db.begin().await?;
    tx.query(
        "UPDATE webhook_events SET outcome = 'parked', detail = $1, attempts = attempts + 1, processed_at = $2
          WHERE id = $3 AND processed_at IS NULL",
    )
    .bind(detail.to_owned())
    .bind(Timestamp::now())
    .bind(id)
    .execute()
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Parks events that have waited since before `received_before`: what they
/// wait for is not coming. Answers how many.
pub async fn park_stale_waiting(db: &Db, received_before: Timestamp) -> DbResult<u64> {
    let mut tx = db.begin().await?;
    let parked = tx
        .query(
            "UPDATE webhook_events SET outcome = 'parked', processed_at = $1,
                    detail = 'waited too long for ' || COALESCE(waiting_on, 'another event')
              WHERE outcome = 'waiting' AND received_at < $2",
        )
        .bind(Timestamp::now())
        .bind(received_before)
        .execute()
        .await?;
    tx.commit().await?;
    Ok(parked)
}
