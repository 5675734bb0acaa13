//! Payments storage: brands' sealed provider credentials, payment attempts,
//! the payments ledger (captures and refunds), and the webhook event log
//! with its exactly-once application.
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

use consign_domain::status::{Lifecycle, OrderStatus, PaymentStatus};
use consign_domain::{
    BrandId, EventType, OrderId, OrganizationId, PaymentAttemptId, PaymentId, Timestamp, WebhookEventId,
};
use serde::Serialize;
use serde_json::json;

use crate::jobs::kinds::{ApplyWebhook, JobKind as _, SendRefund};
use crate::orders::OrderRow;
use crate::orders::changes::lock_order;
use crate::orders::money::{self, order_event};
use crate::{Db, DbError, DbResult, JsonText, NewJob, Page, PageRequest, Scope, Tx};

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

/// The associated data credentials are sealed with: tenant and purpose.
pub fn credentials_aad(organization_id: OrganizationId, brand_id: BrandId, provider: &str) -> String {
    format!("org:{organization_id}/brand:{brand_id}/payment-provider:{provider}")
}

// ---------------------------------------------------------------------------
// Credentials

/// A sealed value as stored (see `consign_payments::Sealed`).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SealedRow {
    /// Owner.
    pub organization_id: OrganizationId,
    /// Brand.
    pub brand_id: BrandId,
    /// `stripe`, `razorpay` or `paypal`.
    pub provider: String,
    /// Which master key sealed it.
    pub key_id: String,
    /// Nonce, hex.
    pub nonce: String,
    /// Ciphertext, hex.
    pub ciphertext: String,
}

/// What may be shown about a brand's provider settings: never a secret.
#[derive(Clone, Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ProviderSettings {
    /// `stripe`, `razorpay` or `paypal`.
    pub provider: String,
    /// The non-secret identifier (Stripe publishable key, Razorpay key id,
    /// PayPal client id), if any.
    pub public_id: Option<String>,
    /// Set at.
    pub created_at: Timestamp,
    /// Last changed at.
    pub updated_at: Timestamp,
}

/// Stores (or replaces) a brand's sealed credentials for a provider.
pub async fn put_credentials(
    db: &Db,
    scope: &Scope,
    brand_id: BrandId,
    provider: &str,
    public_id: Option<&str>,
    sealed: (&str, &str, &str),
) -> DbResult<ProviderSettings> {
    let brand = crate::brands::get(db, scope, brand_id).await?;
    let (key_id, nonce, ciphertext) = sealed;
    let now = Timestamp::now();
    let mut tx = db.begin().await?;
    tx.query(
        "INSERT INTO payment_provider_credentials (organization_id, brand_id, provider, public_id, key_id, nonce, ciphertext, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
         ON CONFLICT (brand_id, provider) DO UPDATE SET public_id = excluded.public_id, key_id = excluded.key_id,
             nonce = excluded.nonce, ciphertext = excluded.ciphertext, updated_at = excluded.updated_at",
    )
    .bind(brand.organization_id)
    .bind(brand_id)
    .bind(provider.to_owned())
    .bind(public_id.map(str::to_owned))
    .bind(key_id.to_owned())
    .bind(nonce.to_owned())
    .bind(ciphertext.to_owned())
    .bind(now)
    .execute()
    .await?;
    let mut audit =
        scope.audit(brand.organization_id, Some(brand_id), "brand.set_payment_provider", "brand", brand_id.to_string());
    // Which provider and its public id only: never the secrets.
    audit.after = Some(json!({"provider": provider, "public_id": public_id}));
    tx.record_audit(audit).await?;
    tx.commit().await?;
    let settings = list_credentials(db, scope, brand_id).await?;
    settings.into_iter().find(|s| s.provider == provider).ok_or(DbError::NotFound)
}

/// The providers a brand has credentials for.
pub async fn list_credentials(db: &Db, scope: &Scope, brand_id: BrandId) -> DbResult<Vec<ProviderSettings>> {
    scope.check_brand(brand_id)?;
    db.read(
        "SELECT provider, public_id, created_at, updated_at FROM payment_provider_credentials
          WHERE brand_id = $1 ORDER BY provider",
    )
    .bind(brand_id)
    .fetch_all()
    .await
}

/// A brand's sealed credentials for a provider. No scope: the storefront,
/// webhooks and jobs act for the brand itself; the value is sealed and its
/// associated data binds it to the brand.
pub async fn sealed_credentials(db: &Db, brand_id: BrandId, provider: &str) -> DbResult<Option<SealedRow>> {
    db.read(
        "SELECT organization_id, brand_id, provider, key_id, nonce, ciphertext FROM payment_provider_credentials
          WHERE brand_id = $1 AND provider = $2",
    )
    .bind(brand_id)
    .bind(provider.to_owned())
    .fetch_optional()
    .await
}

/// Every sealed credential not sealed under `newest_key_id` (for rotation).
pub async fn sealed_under_older_keys(db: &Db, newest_key_id: &str) -> DbResult<Vec<SealedRow>> {
    db.read(
        "SELECT organization_id, brand_id, provider, key_id, nonce, ciphertext FROM payment_provider_credentials
          WHERE key_id <> $1 ORDER BY brand_id, provider",
    )
    .bind(newest_key_id.to_owned())
    .fetch_all()
    .await
}

/// Replaces a sealed value if it is still the one read (`old_key_id`).
/// Answers whether it was replaced.
pub async fn reseal(db: &Db, row: &SealedRow, sealed: (&str, &str, &str)) -> DbResult<bool> {
    let (key_id, nonce, ciphertext) = sealed;
    let mut tx = db.begin().await?;
    let changed = tx
        .query(
            "UPDATE payment_provider_credentials SET key_id = $1, nonce = $2, ciphertext = $3
              WHERE brand_id = $4 AND provider = $5 AND key_id = $6 AND nonce = $7",
        )
        .bind(key_id.to_owned())
        .bind(nonce.to_owned())
        .bind(ciphertext.to_owned())
        .bind(row.brand_id)
        .bind(row.provider.clone())
        .bind(row.key_id.clone())
        .bind(row.nonce.clone())
        .execute()
        .await?;
    tx.commit().await?;
    Ok(changed == 1)
}

// ---------------------------------------------------------------------------
// Attempts

/// One try at paying an order through a provider.
#[derive(Clone, Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct PaymentAttempt {
    /// Id; also the provider-side idempotency key.
    pub id: PaymentAttemptId,
    /// The order.
    pub order_id: OrderId,
    /// `manual`, `stripe`, `razorpay`, `paypal`.
    pub provider: String,
    /// `pending` (not yet at the provider), `requires_action` (the customer
    /// pays on the page), `succeeded`, `failed`.
    pub status: String,
    /// Minor units.
    pub amount: i64,
    /// ISO 4217.
    pub currency: String,
    /// The provider's id (PaymentIntent, Razorpay order, PayPal order).
    pub provider_reference: Option<String>,
    /// What the checkout page needs (client secret, order id and key id,
    /// approval link).
    #[schema(value_type = Option<Object>)]
    pub client_data: Option<JsonText>,
    /// Why it failed.
    pub failure: Option<String>,
    /// Started at.
    pub created_at: Timestamp,
    /// Last changed at.
    pub updated_at: Timestamp,
}

const ATTEMPT_COLUMNS: &str = "id, order_id, provider, status, amount, currency, provider_reference, client_data, failure, created_at, updated_at";

/// The most payment attempts one order may make: each one calls the
/// provider with the brand's credentials, and a customer token must not be
/// able to loop them (a real customer retries a handful of times).
pub const MAX_ATTEMPTS_PER_ORDER: i64 = 10;

/// Starts a payment attempt for what the order still owes. Refused unless
/// the order is open with something outstanding and has made fewer than
/// [`MAX_ATTEMPTS_PER_ORDER`] attempts.
pub async fn create_attempt(db: &Db, scope: &Scope, order_id: OrderId, provider: &str) -> DbResult<PaymentAttempt> {
    let attempt_id = PaymentAttemptId::new();
    let mut tx = db.begin().await?;
    let row = lock_order(&mut tx, scope, order_id).await?;
    if row.status != OrderStatus::Open {
        return Err(DbError::transition(format!("a {} order cannot take payments", row.status)));
    }
    let attempts: i64 =
        tx.query("SELECT COUNT(*) FROM payment_attempts WHERE order_id = $1").bind(order_id).scalar().await?;
    if attempts >= MAX_ATTEMPTS_PER_ORDER {
        return Err(DbError::transition(format!(
            "the order has made {attempts} payment attempts, the most allowed; the shop can take the payment another way"
        )));
    }
    let sums = money::ledger_sums(&mut tx, order_id).await?;
    let outstanding =
        consign_domain::ledger::Balance::of(row.status, row.total, sums.paid, sums.refunded).outstanding();
    if outstanding <= 0 {
        return Err(DbError::transition("the order has nothing left to pay"));
    }
    let now = Timestamp::now();
    tx.query(
        "INSERT INTO payment_attempts (id, organization_id, brand_id, order_id, provider, status, amount, currency, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7, $8, $8)",
    )
    .bind(attempt_id)
    .bind(row.organization_id)
    .bind(row.brand_id)
    .bind(order_id)
    .bind(provider.to_owned())
    .bind(outstanding)
    .bind(row.currency.clone())
    .bind(now)
    .execute()
    .await?;
    let payload = json!({"order_id": order_id, "attempt_id": attempt_id, "provider": provider, "amount": outstanding,
                         "currency": row.currency});
    tx.record_event(order_event(&row, EventType::PaymentAttemptStarted, payload, &scope.principal().actor_id()))
        .await?;
    tx.commit().await?;
    get_attempt(db, attempt_id).await
}

async fn get_attempt(db: &Db, attempt_id: PaymentAttemptId) -> DbResult<PaymentAttempt> {
    db.read_built(format!("SELECT {ATTEMPT_COLUMNS} FROM payment_attempts WHERE id = $1"))
        .bind(attempt_id)
        .fetch_one()
        .await
}

/// One attempt of an order the caller sees.
pub async fn attempt(
    db: &Db,
    scope: &Scope,
    order_id: OrderId,
    attempt_id: PaymentAttemptId,
) -> DbResult<PaymentAttempt> {
    crate::orders::get(db, scope, order_id).await?;
    let attempt = get_attempt(db, attempt_id).await?;
    if attempt.order_id != order_id {
        return Err(DbError::NotFound);
    }
    Ok(attempt)
}

/// Records what the provider made for an attempt: its reference and what
/// the page needs. A pending attempt becomes `requires_action`; one that
/// a webhook already moved on keeps its status.
pub async fn attempt_started(
    db: &Db,
    attempt_id: PaymentAttemptId,
    reference: &str,
    client_data: &serde_json::Value,
) -> DbResult<PaymentAttempt> {
    let mut tx = db.begin().await?;
    tx.query(
        "UPDATE payment_attempts SET provider_reference = COALESCE(provider_reference, $1), client_data = $2,
                status = CASE WHEN status = 'pending' THEN 'requires_action' ELSE status END, updated_at = $3
          WHERE id = $4",
    )
    .bind(reference.to_owned())
    .bind(client_data.to_string())
    .bind(Timestamp::now())
    .bind(attempt_id)
    .execute()
    .await?;
    tx.commit().await?;
    get_attempt(db, attempt_id).await
}

/// Marks an attempt whose provider call failed; the customer may retry with
/// a new attempt.
pub async fn attempt_failed_to_start(db: &Db, attempt_id: PaymentAttemptId, failure: &str) -> DbResult<PaymentAttempt> {
    let mut tx = db.begin().await?;
    tx.query("UPDATE payment_attempts SET status = 'failed', failure = $1, updated_at = $2 WHERE id = $3 AND status = 'pending'")
        .bind(failure.to_owned())
        .bind(Timestamp::now())
        .bind(attempt_id)
        .execute()
        .await?;
    tx.commit().await?;
    get_attempt(db, attempt_id).await
}

/// An order's attempts, oldest first.
pub async fn list_attempts(db: &Db, scope: &Scope, order_id: OrderId) -> DbResult<Vec<PaymentAttempt>> {
    crate::orders::get(db, scope, order_id).await?;
    db.read_built(format!("SELECT {ATTEMPT_COLUMNS} FROM payment_attempts WHERE order_id = $1 ORDER BY id"))
        .bind(order_id)
        .fetch_all()
        .await
}

// ---------------------------------------------------------------------------
// The ledger

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

/// Whether a Razorpay order id is the one Consign stored for this attempt.
pub fn attempt_reference_matches(attempt: &PaymentAttempt, provider_order_id: &str) -> bool {
    attempt.provider_reference.as_deref() == Some(provider_order_id)
}

/// The organization of a brand (for webhooks, which carry only the slug).
pub async fn brand_organization(db: &Db, brand_id: BrandId) -> DbResult<OrganizationId> {
    db.read("SELECT organization_id FROM brands WHERE id = $1").bind(brand_id).scalar().await
}

/// The slug of a brand (provider metadata carries it).
pub async fn brand_slug(db: &Db, brand_id: BrandId) -> DbResult<String> {
    db.read("SELECT slug FROM brands WHERE id = $1").bind(brand_id).scalar().await
}

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
