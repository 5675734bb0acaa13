//! Changes to a placed order: payments, cancellation, address and item
//! edits. Each runs in one transaction that first locks the order row (on
//! PostgreSQL; SQLite's writer is already exclusive), so concurrent changes
//! to one order apply one after another and each sees the other's result.

use consign_domain::ledger::Balance;
use consign_domain::money;
use consign_domain::order::Address;
use consign_domain::status::{FulfillmentStatus, Lifecycle, OrderStatus, PaymentStatus};
use consign_domain::{EventType, OrderId, OrderItemId, PaymentId, Timestamp};
use serde::Serialize;
use serde_json::json;

use super::checkout::too_much;
use super::reservations::{self, Hold};
use super::{ORDER_COLUMNS, Order, OrderRow, get, money as ledger};
use crate::jobs::kinds::FulfillOrder;
use crate::{Db, DbError, DbResult, NewEvent, NewJob, Scope, Tx};

/// Loads and locks an order inside a transaction, checking the scope.
pub(crate) async fn lock_order(tx: &mut Tx, scope: &Scope, order_id: OrderId) -> DbResult<OrderRow> {
    let sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1{}", tx.lock_clause());
    let row: OrderRow = tx.query_built(sql).bind(order_id).fetch_one().await?;
    scope.check_order(row.id, row.brand_id)?;
    Ok(row)
}

fn event(row: &OrderRow, event_type: EventType, payload: serde_json::Value, scope: &Scope) -> NewEvent {
    NewEvent {
        organization_id: row.organization_id,
        brand_id: Some(row.brand_id),
        event_type,
        aggregate_type: "order",
        aggregate_id: row.id.to_string(),
        payload,
        actor: scope.principal().actor_id(),
    }
}

#[derive(Serialize)]
struct MoneyState {
    status: OrderStatus,
    payment_status: PaymentStatus,
    total: i64,
    paid: i64,
    refunded: i64,
    refund_due: i64,
}

fn money_state(row: &OrderRow) -> serde_json::Value {
    serde_json::to_value(MoneyState {
        status: row.status,
        payment_status: row.payment_status,
        total: row.total,
        paid: row.paid,
        refunded: row.refunded,
        refund_due: row.refund_due,
    })
    .unwrap_or_default()
}

/// Records a manual payment (bank transfer, cash). Partial payments add up
/// (`partially_paid`); when they cover the total the order is `paid`, its
/// stock hold lasts until shipping, and fulfillment orders are created (by a
/// job, retried until it succeeds). Paying more than is outstanding is
/// refused. A payment on an expired order holds its stock again and reopens
/// it; when the stock is gone the order stays expired, the money is owed
/// back (`refund_due`) and staff are alerted to return it.
pub async fn record_payment(
    db: &Db,
    scope: &Scope,
    order_id: OrderId,
    amount: i64,
    currency: Option<&str>,
    reference: Option<&str>,
) -> DbResult<Order> {
    if amount <= 0 {
        return Err(DbError::invalid("amount", "must be greater than zero"));
    }
    let mut tx = db.begin().await?;
    let row = lock_order(&mut tx, scope, order_id).await?;
    if currency.is_some_and(|c| c != row.currency) {
        return Err(DbError::invalid("amount.currency", format!("must be the order's currency, {}", row.currency)));
    }
    if !matches!(row.status, OrderStatus::Open | OrderStatus::Expired) {
        return Err(DbError::transition(format!("a {} order cannot take payments", row.status)));
    }
    let sums = ledger::ledger_sums(&mut tx, order_id).await?;
    // A transfer that arrives after the hold ran out pays for the order
    // it was meant for: it may cover what the order would owe if open.
    let outstanding = Balance::of(OrderStatus::Open, row.total, sums.paid, sums.refunded).outstanding();
    if amount > outstanding {
        return Err(DbError::invalid("amount", format!("exceeds the outstanding {outstanding}")));
    }
    let late = row.status == OrderStatus::Expired;
    let reopened = late && ledger::reopen_expired(&mut tx, &row, &scope.principal().actor_id()).await?;
    let payment_id = PaymentId::new();
    let now = Timestamp::now();
    tx.query(
        "INSERT INTO payments (id, organization_id, brand_id, order_id, provider, kind, amount, currency, status, reference, created_at, updated_at)
         VALUES ($1, $2, $3, $4, 'manual', 'payment', $5, $6, 'captured', $7, $8, $8)",
    )
    .bind(payment_id)
    .bind(row.organization_id)
    .bind(row.brand_id)
    .bind(order_id)
    .bind(amount)
    .bind(row.currency.clone())
    .bind(reference.map(str::to_owned))
    .bind(now)
    .execute()
    .await?;
    let payload = json!({"order_id": order_id, "payment_id": payment_id, "amount": amount, "currency": row.currency,
                             "paid": sums.paid + amount, "method": "manual", "provider": "manual", "reference": reference});
    tx.record_event(event(&row, EventType::PaymentCaptured, payload, scope)).await?;
    let settled = ledger::settle(&mut tx, &row, &scope.principal().actor_id(), false).await?;
    if late && !reopened {
        ledger::owed_back_after_expiry(&mut tx, &row, settled.balance.refund_due(), "manual").await?;
    }
    let mut audit =
        scope.audit(row.organization_id, Some(row.brand_id), "order.record_payment", "order", order_id.to_string());
    audit.before = Some(money_state(&row));
    audit.after = Some(json!({"paid": settled.balance.paid, "payment_status": settled.payment_status}));
    tx.record_audit(audit).await?;
    tx.commit().await?;
    get(db, scope, order_id).await
}

/// Refunds `amount` of what an order's payments captured, newest capture
/// first: through its provider for provider payments (a pending refund and
/// a job that calls the provider), at once for manual ones (staff paid it
/// back by hand). What is owed back (`refund_due`) is settled first; a
/// refund beyond it is a goodwill credit that lowers the order's total.
/// Never more than was captured and not yet refunded or being refunded,
/// however many refunds run at once: the order row is locked.
pub async fn refund(
    db: &Db,
    scope: &Scope,
    order_id: OrderId,
    amount: i64,
    reason: &str,
) -> DbResult<(Order, Vec<PaymentId>)> {
    if amount <= 0 {
        return Err(DbError::invalid("amount", "must be greater than zero"));
    }
    let mut tx = db.begin().await?;
    let row = lock_order(&mut tx, scope, order_id).await?;
    let sums = ledger::ledger_sums(&mut tx, order_id).await?;
    let refundable = sums.paid - sums.refunded - sums.pending;
    if amount > refundable {
        return Err(DbError::invalid(
            "amount",
            format!("exceeds what can still be refunded ({refundable}: captured, less refunded and in flight)"),
        ));
    }
    let owed = Balance::of(row.status, row.total, sums.paid, sums.refunded).refund_due() - sums.pending;
    let credit = amount - owed.max(0);
    if credit > 0 {
        // A goodwill refund: the customer keeps the goods and pays less.
        tx.query(
            "UPDATE orders SET discount_total = discount_total + $1, total = total - $1, updated_at = $2 WHERE id = $3",
        )
        .bind(credit)
        .bind(Timestamp::now())
        .bind(order_id)
        .execute()
        .await?;
    }
    let (refunds, covered) = ledger::allocate_refunds(&mut tx, &row, amount, reason, true).await?;
    if covered != amount {
        return Err(DbError::invalid("amount", "exceeds what the order's payments can refund"));
    }
    let payload = json!({"order_id": order_id, "amount": amount, "currency": row.currency, "reason": reason,
                             "refund_ids": refunds, "credit": credit.max(0)});
    tx.record_event(event(&row, EventType::RefundRequested, payload, scope)).await?;
    let settled = ledger::settle(&mut tx, &row, &scope.principal().actor_id(), false).await?;
    let mut audit = scope.audit(row.organization_id, Some(row.brand_id), "order.refund", "order", order_id.to_string());
    audit.before = Some(money_state(&row));
    audit.after = Some(json!({"amount": amount, "reason": reason, "refunded": settled.balance.refunded,
                                  "refund_pending": settled.pending, "payment_status": settled.payment_status}));
    tx.record_audit(audit).await?;
    tx.commit().await?;
    Ok((get(db, scope, order_id).await?, refunds))
}

/// Cancels an open order: releases its stock, cancels its fulfillment
/// orders and, when money was taken, records it as due back and refunds
/// provider payments (by a job). An order with anything shipped cannot be
/// cancelled.
pub async fn cancel(db: &Db, scope: &Scope, order_id: OrderId, reason: &str) -> DbResult<Order> {
    let mut tx = db.begin().await?;
    let row = lock_order(&mut tx, scope, order_id).await?;
    let status = row.status.check(OrderStatus::Cancelled)?;
    if row.fulfillment_status != FulfillmentStatus::Unfulfilled {
        return Err(DbError::transition("an order with shipped items cannot be cancelled"));
    }
    let released = reservations::release(&mut tx, order_id).await?;
    let now = Timestamp::now();
    tx.query("UPDATE fulfillment_orders SET status = 'cancelled', version = version + 1, updated_at = $1 WHERE order_id = $2 AND status <> 'cancelled'")
        .bind(now)
        .bind(order_id)
        .execute()
        .await?;
    tx.query("UPDATE orders SET status = $1, reservation_expires_at = NULL, updated_at = $2 WHERE id = $3")
        .bind(status)
        .bind(now)
        .bind(order_id)
        .execute()
        .await?;
    let settled = ledger::settle(&mut tx, &row, &scope.principal().actor_id(), true).await?;
    let refund_due = settled.balance.refund_due();
    let payload = json!({"order_id": order_id, "reason": reason, "released_units": released, "refund_due": refund_due,
                             "refunds_started": settled.refunds});
    tx.record_event(event(&row, EventType::OrderCancelled, payload, scope)).await?;
    let mut audit = scope.audit(row.organization_id, Some(row.brand_id), "order.cancel", "order", order_id.to_string());
    audit.before = Some(money_state(&row));
    audit.after = Some(json!({"status": status, "refund_due": refund_due, "reason": reason}));
    tx.record_audit(audit).await?;
    tx.commit().await?;
    get(db, scope, order_id).await
}

/// Replaces the shipping address of an order that has not shipped.
pub async fn update_shipping_address(
    db: &Db,
    scope: &Scope,
    order_id: OrderId,
    address: &Address,
    expected_version: Option<i64>,
) -> DbResult<Order> {
    let mut tx = db.begin().await?;
    let row = lock_order(&mut tx, scope, order_id).await?;
    if expected_version.is_some_and(|v| v != row.version) {
        return Err(DbError::VersionMismatch);
    }
    if !matches!(row.status, OrderStatus::Open | OrderStatus::Draft) {
        return Err(DbError::transition(format!("a {} order cannot change its address", row.status)));
    }
    if row.fulfillment_status != FulfillmentStatus::Unfulfilled {
        return Err(DbError::transition("the order has shipped items; its address can no longer change"));
    }
    let after = serde_json::to_string(address).map_err(anyhow::Error::from)?;
    tx.query("UPDATE orders SET shipping_address = $1, version = version + 1, updated_at = $2 WHERE id = $3")
        .bind(after.clone())
        .bind(Timestamp::now())
        .bind(order_id)
        .execute()
        .await?;
    tx.record_event(event(&row, EventType::OrderAddressUpdated, json!({"shipping_address": address}), scope)).await?;
    let mut audit = scope.audit(
        row.organization_id,
        Some(row.brand_id),
        "order.update_shipping_address",
        "order",
        order_id.to_string(),
    );
    audit.before = serde_json::from_str(&row.shipping_address).ok();
    audit.after = serde_json::from_str(&after).ok();
    tx.record_audit(audit).await?;
    tx.commit().await?;
    get(db, scope, order_id).await
}

#[derive(sqlx::FromRow)]
struct PricedVariant {
    variant_id: consign_domain::VariantId,
    sku: String,
    title: String,
    price_amount: i64,
}

/// Replaces an order's items with a new list. Every hold is released and
/// taken again for the new list (so a line can grow only if stock allows),
/// and the totals are recomputed. Lines that keep their SKU keep their price
/// snapshot; new lines take the current price. Refused once anything has
/// shipped. The money settles (see [`super::money`]): a higher total leaves
/// an outstanding amount, a lower one on a paid order is refunded.
pub async fn replace_items(db: &Db, scope: &Scope, order_id: OrderId, lines: &[(String, i64)]) -> DbResult<Order> {
    if lines.is_empty() {
        return Err(DbError::invalid("items", "must list at least one item; cancel the order instead"));
    }
    let lines = &super::checkout::sum_lines(lines.iter().map(|(sku, quantity)| (sku.as_str(), *quantity)))?;
    let mut tx = db.begin().await?;
    let row = lock_order(&mut tx, scope, order_id).await?;
    if row.status != OrderStatus::Open {
        return Err(DbError::transition(format!("a {} order cannot change its items", row.status)));
    }
    if row.fulfillment_status != FulfillmentStatus::Unfulfilled {
        return Err(DbError::transition("the order has shipped items; its items can no longer change"));
    }
    let old: Vec<super::OrderItem> = tx
        .query(
            "SELECT id, order_id, variant_id, sku, title, quantity, unit_price, total, price_source FROM order_items WHERE order_id = $1 ORDER BY position",
        )
        .bind(order_id)
        .fetch_all()
        .await?;
    let mut query = tx.query(
        "SELECT v.id AS variant_id, v.sku, p.title, v.price_amount FROM variants v JOIN products p ON p.id = v.product_id WHERE v.brand_id = ",
    );
    query.push_bind(row.brand_id).push(" AND ");
    query.push_in("v.sku", lines.iter().map(|(sku, _)| sku.clone()));
    let variants: Vec<PricedVariant> = query.fetch_all().await?;

    reservations::release(&mut tx, order_id).await?;
    tx.query("DELETE FROM reservations WHERE order_id = $1").bind(order_id).execute().await?;
    tx.query("DELETE FROM fulfillment_order_items WHERE fulfillment_order_id IN (SELECT id FROM fulfillment_orders WHERE order_id = $1)")
        .bind(order_id)
        .execute()
        .await?;
    tx.query("DELETE FROM fulfillment_orders WHERE order_id = $1").bind(order_id).execute().await?;
    tx.query("DELETE FROM order_items WHERE order_id = $1").bind(order_id).execute().await?;

    let now = Timestamp::now();
    let mut holds = Vec::new();
    let mut line_totals = Vec::new();
    for (position, (sku, quantity)) in lines.iter().enumerate() {
        let variant = variants.iter().find(|v| v.sku == *sku).ok_or_else(|| {
            DbError::invalid(format!("items[{position}].sku"), format!("no product has the SKU {sku}"))
        })?;
        let previous = old.iter().find(|i| i.sku == *sku);
        let unit_price = previous.map_or(variant.price_amount, |i| i.unit_price);
        let title = previous.map_or_else(|| variant.title.clone(), |i| i.title.clone());
        let line_total = money::line_total(unit_price, *quantity).ok_or_else(|| {
            DbError::invalid(format!("items[{position}].quantity"), too_much(sku, unit_price, *quantity))
        })?;
        line_totals.push(line_total);
        let item_id = OrderItemId::new();
        tx.query(
            "INSERT INTO order_items (id, organization_id, brand_id, order_id, variant_id, sku, title, quantity,
                                          unit_price, total, price_source, position, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(item_id)
        .bind(row.organization_id)
        .bind(row.brand_id)
        .bind(order_id)
        .bind(variant.variant_id)
        .bind(sku.clone())
        .bind(title)
        .bind(*quantity)
        .bind(unit_price)
        .bind(line_total)
        .bind(previous.map_or("price_book".to_owned(), |i| i.price_source.clone()))
        .bind(position as i64)
        .bind(now)
        .execute()
        .await?;
        holds.push(Hold {
            order_item_id: item_id,
            variant_id: variant.variant_id,
            sku: sku.clone(),
            quantity: *quantity,
        });
    }
    let held = reservations::hold(&mut tx, row.brand_id, &holds).await?;
    reservations::record_holds(&mut tx, row.organization_id, row.brand_id, order_id, &held).await?;

    // A discount (goodwill credits included) never makes the total negative.
    let too_large =
        || DbError::invalid("items", format!("the order's total exceeds the largest amount ({})", money::MAX_AMOUNT));
    let subtotal = money::sum(line_totals).ok_or_else(too_large)?;
    let gross = money::sum([subtotal, row.shipping_total, row.tax_total]).ok_or_else(too_large)?;
    let discount = row.discount_total.clamp(0, gross);
    let total = gross - discount;
    let is_paid = matches!(row.payment_status, PaymentStatus::Paid | PaymentStatus::PartiallyRefunded);
    tx.query("UPDATE orders SET subtotal = $1, discount_total = $2, total = $3, updated_at = $4 WHERE id = $5")
        .bind(subtotal)
        .bind(discount)
        .bind(total)
        .bind(now)
        .bind(order_id)
        .execute()
        .await?;
    // A higher total leaves an outstanding amount to pay (a new payment
    // attempt); a lower one is owed back and refunded through the
    // providers that captured it.
    let settled = ledger::settle(&mut tx, &row, &scope.principal().actor_id(), true).await?;
    if is_paid {
        // Without the kind's dedupe key: the order's first fulfillment job
        // is done, and the changed items need fulfillment orders again.
        tx.enqueue_job(NewJob { dedupe_key: None, ..NewJob::of(&FulfillOrder { order_id }) }).await?;
    }
    let after: Vec<_> = lines.iter().map(|(sku, quantity)| json!({"sku": sku, "quantity": quantity})).collect();
    let before: Vec<_> = old.iter().map(|i| json!({"sku": i.sku, "quantity": i.quantity})).collect();
    let payload = json!({"order_id": order_id, "items": after, "total": total,
                             "outstanding": settled.balance.outstanding(), "refund_due": settled.balance.refund_due(),
                             "refunds_started": settled.refunds});
    tx.record_event(event(&row, EventType::OrderItemsUpdated, payload, scope)).await?;
    let mut audit =
        scope.audit(row.organization_id, Some(row.brand_id), "order.replace_items", "order", order_id.to_string());
    audit.before = Some(json!({"items": before, "total": row.total}));
    audit.after = Some(json!({"items": after, "total": total}));
    tx.record_audit(audit).await?;
    tx.commit().await?;
    get(db, scope, order_id).await
}
