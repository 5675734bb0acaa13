//! Payment attempts: one per try at paying an order through a provider,
//! opened before the provider is called and finished with its answer.

use consign_domain::status::OrderStatus;
use consign_domain::{EventType, OrderId, PaymentAttemptId, Timestamp};
use serde::Serialize;
use serde_json::json;

use crate::orders::changes::lock_order;
use crate::orders::money::{self, order_event};
use crate::{Db, DbError, DbResult, JsonText, Scope};

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

/// Whether a Razorpay order id is the one Consign stored for this attempt.
pub fn attempt_reference_matches(attempt: &PaymentAttempt, provider_order_id: &str) -> bool {
    attempt.provider_reference.as_deref() == Some(provider_order_id)
}
