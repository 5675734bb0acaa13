//! Settling an order's money after any change, inside the change's
//! transaction (the order row already locked).
//!
//! The `payments` table is the ledger and the source of truth: `paid` is the
//! sum of captured payments, `refunded` the sum of succeeded refunds, and
//! refunds in flight are `pending` rows. [`settle`] re-reads those
//! sums, derives the balance with [`consign_domain::ledger::Balance`],
//! writes `paid`, `refunded`, `refund_due` and `payment_status` to the order,
//! records the payment-status events, and — when asked — refunds what is
//! owed back through the providers that captured it (a pending refund row
//! and a `payments.refund` job each; the provider is called by the job,
//! never inside the transaction). Manual captures are refunded by staff,
//! who record it with `POST /orders/{id}/refunds`.
//!
//! Every order change (an item edit, a cancellation, a payment or refund,
//! a provider webhook, and later returns, exchanges and claims) first
//! changes the ledger or the order's total and status, then calls
//! `settle`. That is the one place the amounts are derived.

use consign_domain::ledger::Balance;
use consign_domain::status::{OrderStatus, PaymentStatus};
use consign_domain::{EventType, OrderId, PaymentId, Timestamp};
use serde_json::json;

use super::{ORDER_COLUMNS, OrderRow};
use crate::jobs::kinds::{AnnounceAlert, FulfillOrder, SendRefund};
use crate::{DbResult, NewEvent, Tx};

/// The ledger's sums for one order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct LedgerSums {
    /// Captured.
    pub paid: i64,
    /// Refunded (succeeded).
    pub refunded: i64,
    /// Refunds in flight.
    pub pending: i64,
}

/// What settling found.
#[derive(Clone, Debug)]
pub struct Settled {
    /// The balance after the change.
    pub balance: Balance,
    /// Refunds in flight after the change.
    pub pending: i64,
    /// The payment status after the change.
    pub payment_status: PaymentStatus,
    /// Refunds this settlement started.
    pub refunds: Vec<PaymentId>,
}

#[derive(sqlx::FromRow)]
struct Capture {
    id: PaymentId,
    provider: String,
    remaining: i64,
}

/// An order event by `actor`.
pub(crate) fn order_event(row: &OrderRow, event_type: EventType, payload: serde_json::Value, actor: &str) -> NewEvent {
    NewEvent {
        organization_id: row.organization_id,
        brand_id: Some(row.brand_id),
        event_type,
        aggregate_type: "order",
        aggregate_id: row.id.to_string(),
        payload,
        actor: actor.to_owned(),
    }
}

/// The ledger's sums for an order.
pub(crate) async fn ledger_sums(tx: &mut Tx, order_id: OrderId) -> DbResult<LedgerSums> {
    tx.query(
        "SELECT CAST(COALESCE(SUM(CASE WHEN kind = 'payment' AND status = 'captured' THEN amount ELSE 0 END), 0) AS BIGINT) AS paid,
                CAST(COALESCE(SUM(CASE WHEN kind = 'refund' AND status = 'succeeded' THEN amount ELSE 0 END), 0) AS BIGINT) AS refunded,
                CAST(COALESCE(SUM(CASE WHEN kind = 'refund' AND status = 'pending' THEN amount ELSE 0 END), 0) AS BIGINT) AS pending
           FROM payments WHERE order_id = $1",
    )
    .bind(order_id)
    .fetch_one()
    .await
}

/// Starts refunds of up to `amount` against the order's captures, newest
/// first: provider captures get a pending refund and a job; manual ones a
/// succeeded refund when `manual_done` (staff say they paid it back), else
/// nothing. Returns the refunds made and the amount they cover.
pub(crate) async fn allocate_refunds(
    tx: &mut Tx,
    row: &OrderRow,
    amount: i64,
    reason: &str,
    manual_done: bool,
) -> DbResult<(Vec<PaymentId>, i64)> {
    let captures: Vec<Capture> = tx
        .query(
            "SELECT p.id, p.provider,
                    p.amount - CAST(COALESCE((SELECT SUM(r.amount) FROM payments r
                                               WHERE r.parent_id = p.id AND r.kind = 'refund'
                                                 AND r.status IN ('pending', 'succeeded')), 0) AS BIGINT) AS remaining
               FROM payments p
              WHERE p.order_id = $1 AND p.kind = 'payment' AND p.status = 'captured'
              ORDER BY p.id DESC",
        )
        .bind(row.id)
        .fetch_all()
        .await?;
    let now = Timestamp::now();
    let mut left = amount;
    let mut made = Vec::new();
    for capture in captures {
        if left <= 0 {
            break;
        }
        let manual = capture.provider == "manual";
        if capture.remaining <= 0 || (manual && !manual_done) {
            continue;
        }
        let take = left.min(capture.remaining);
        let refund_id = PaymentId::new();
        tx.query(
            "INSERT INTO payments (id, organization_id, brand_id, order_id, provider, kind, amount, currency, status,
                                   parent_id, reason, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, 'refund', $6, $7, $8, $9, $10, $11, $11)",
        )
        .bind(refund_id)
        .bind(row.organization_id)
        .bind(row.brand_id)
        .bind(row.id)
        .bind(capture.provider.clone())
        .bind(take)
        .bind(row.currency.clone())
        .bind(if manual { "succeeded" } else { "pending" })
        .bind(capture.id)
        .bind(reason.to_owned())
        .bind(now)
        .execute()
        .await?;
        if !manual {
            tx.enqueue(&SendRefund { refund_id }).await?;
        }
        made.push(refund_id);
        left -= take;
    }
    Ok((made, amount - left))
}

/// Reopens an expired order that took a payment: holds its stock again and
/// makes it `open`, with an `order.reopened` event. Answers `false`,
/// changing nothing, when the stock is gone.
pub(crate) async fn reopen_expired(tx: &mut Tx, row: &OrderRow, actor: &str) -> DbResult<bool> {
    let status = consign_domain::status::Lifecycle::check(row.status, OrderStatus::Open)?;
    if !super::reservations::rehold(tx, row.organization_id, row.brand_id, row.id).await? {
        return Ok(false);
    }
    tx.query("UPDATE orders SET status = $1, version = version + 1, updated_at = $2 WHERE id = $3")
        .bind(status)
        .bind(Timestamp::now())
        .bind(row.id)
        .execute()
        .await?;
    let payload = json!({"order_id": row.id, "from": row.status, "to": status,
                         "reason": "a payment arrived after the stock hold ran out"});
    tx.record_event(order_event(row, EventType::OrderReopened, payload, actor)).await?;
    Ok(true)
}

/// Alerts staff that an expired order whose stock was gone took money that
/// is owed back (`refund_due`); `provider` says who returns it.
pub(crate) async fn owed_back_after_expiry(
    tx: &mut Tx,
    row: &OrderRow,
    refund_due: i64,
    provider: &str,
) -> DbResult<()> {
    let payload = json!({"order_id": row.id, "refund_due": refund_due, "currency": row.currency,
                         "reason": "the payment arrived after the order expired and its stock was gone"});
    tx.record_event(order_event(row, EventType::OrderRefundDue, payload, "system")).await?;
    let action = if provider == "manual" {
        "Pay it back by hand and record it with a refund"
    } else {
        "A refund through the provider has started; check it completes"
    };
    raise_alert(
        tx,
        crate::alerts::NewAlert {
            organization_id: Some(row.organization_id),
            brand_id: Some(row.brand_id),
            kind: crate::alerts::REFUND_DUE,
            subject_type: "order",
            subject_id: row.id.to_string(),
            job_id: None,
            message: format!(
                "Order #{} took {refund_due} {} after it expired, and its stock was gone: the money is owed back. {action}.",
                row.number, row.currency
            ),
        },
    )
    .await
}

/// Raises a staff alert unless one is open for the same subject (see
/// [`crate::alerts`]).
pub(crate) async fn raise_alert(tx: &mut Tx, alert: crate::alerts::NewAlert) -> DbResult<()> {
    let alert_id = consign_domain::StaffAlertId::new();
    let raised = tx
        .query(
            "INSERT INTO staff_alerts (id, organization_id, brand_id, kind, subject_type, subject_id, job_id, message, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (kind, subject_id) WHERE resolved_at IS NULL DO NOTHING",
        )
        .bind(alert_id)
        .bind(alert.organization_id)
        .bind(alert.brand_id)
        .bind(alert.kind)
        .bind(alert.subject_type)
        .bind(&alert.subject_id)
        .bind(alert.job_id)
        .bind(&alert.message)
        .bind(Timestamp::now())
        .execute()
        .await?
        == 1;
    // A new alert is announced: the staff pages' live socket shows it at
    // once, and the job emails the brand's staff.
    if raised && let Some(organization_id) = alert.organization_id {
        tx.record_event(NewEvent {
            organization_id,
            brand_id: alert.brand_id,
            event_type: EventType::StaffAlertRaised,
            aggregate_type: "staff_alert",
            aggregate_id: alert_id.to_string(),
            payload: json!({
                "kind": alert.kind,
                "subject_type": alert.subject_type,
                "subject_id": alert.subject_id,
                "message": alert.message,
            }),
            actor: "system".into(),
        })
        .await?;
        tx.enqueue(&AnnounceAlert { alert_id }).await?;
    }
    Ok(())
}

/// Re-derives the order's money from the ledger (see the module docs).
/// `before` is the row as locked at the start of the change (its payment
/// status is the one transitions start from).
pub(crate) async fn settle(tx: &mut Tx, before: &OrderRow, actor: &str, auto_refund: bool) -> DbResult<Settled> {
    let sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1");
    let row: OrderRow = tx.query_built(sql).bind(before.id).fetch_one().await?;
    let mut sums = ledger_sums(tx, row.id).await?;
    let mut refunds = Vec::new();
    if auto_refund {
        let balance = Balance::of(row.status, row.total, sums.paid, sums.refunded);
        let unsent = balance.refund_due() - sums.pending;
        if unsent > 0 {
            let reason = if row.status == OrderStatus::Cancelled { "order cancelled" } else { "order total lowered" };
            let (made, covered) = allocate_refunds(tx, &row, unsent, reason, false).await?;
            refunds = made;
            sums.pending += covered;
        }
    }
    let balance = Balance::of(row.status, row.total, sums.paid, sums.refunded);
    let payment_status = balance.payment_status(before.payment_status);
    let now = Timestamp::now();
    // An open order that holds money keeps its stock until it ships or is
    // cancelled: it never expires with the money.
    let holds_money = row.status == OrderStatus::Open && balance.held() > 0;
    tx.query(
        "UPDATE orders SET paid = $1, refunded = $2, refund_due = $3, payment_status = $4,
                reservation_expires_at = CASE WHEN $5 THEN NULL ELSE reservation_expires_at END,
                version = version + 1, updated_at = $6
          WHERE id = $7",
    )
    .bind(balance.paid)
    .bind(balance.refunded)
    .bind(balance.refund_due())
    .bind(payment_status)
    .bind(holds_money)
    .bind(now)
    .bind(row.id)
    .execute()
    .await?;
    if payment_status != before.payment_status {
        let payload = json!({
            "order_id": row.id, "from": before.payment_status, "to": payment_status,
            "paid": balance.paid, "refunded": balance.refunded, "currency": row.currency,
        });
        let event_type = match payment_status {
            PaymentStatus::Paid => Some(EventType::OrderPaid),
            PaymentStatus::PartiallyRefunded => Some(EventType::OrderPartiallyRefunded),
            PaymentStatus::Refunded => Some(EventType::OrderRefunded),
            _ => None,
        };
        if let Some(event_type) = event_type {
            tx.record_event(order_event(&row, event_type, payload, actor)).await?;
        }
        if payment_status == PaymentStatus::Paid && row.status == OrderStatus::Open {
            tx.enqueue(&FulfillOrder { order_id: row.id }).await?;
        }
    } else if row.payment_status == PaymentStatus::PartiallyRefunded && balance.refunded != before.refunded {
        // Another partial refund: the status stays, the amount moved.
        let payload = json!({"order_id": row.id, "refunded": balance.refunded, "currency": row.currency});
        tx.record_event(order_event(&row, EventType::OrderPartiallyRefunded, payload, actor)).await?;
    }
    Ok(Settled { balance, pending: sums.pending, payment_status, refunds })
}
