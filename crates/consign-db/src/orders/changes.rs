//! Changes to a placed order: payments, cancellation, address and item
//! edits. Each runs in one transaction that first locks the order row (on
//! PostgreSQL; SQLite's writer is already exclusive), so concurrent changes
//! to one order apply one after another and each sees the other's result.

use consign_domain::order::Address;
use consign_domain::status::{FulfillmentStatus, Lifecycle, OrderStatus, PaymentStatus};
use consign_domain::{OrderId, OrderItemId, PaymentId, Timestamp};
use serde::Serialize;
use serde_json::json;
use sqlx::QueryBuilder;

use super::reservations::{Hold, StockTx};
use super::{Order, OrderRow, get};
use crate::{Db, DbError, DbResult, NewEvent, NewJob, Scope, TxExt, db_write};

/// Loads and locks an order inside a transaction, checking the scope.
macro_rules! lock_order {
    ($tx:expr, $scope:expr, $order_id:expr) => {{
        let sql = format!("SELECT {} FROM orders WHERE id = $1{}", $crate::orders::ORDER_COLUMNS, $tx.lock_clause());
        let row: $crate::orders::OrderRow =
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind($order_id).fetch_one(&mut **$tx).await?;
        $scope.check_order(row.id, row.brand_id)?;
        row
    }};
}
pub(crate) use lock_order;

fn event(row: &OrderRow, event_type: &'static str, payload: serde_json::Value, scope: &Scope) -> NewEvent {
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

/// Records a manual payment (bank transfer, cash). Partial payments add up;
/// when they cover the total the order is `paid`, its stock hold lasts until
/// shipping, and fulfillment orders are created (by a job, retried until it
/// succeeds). Paying more than is outstanding is refused.
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
    db_write!(db, |tx| {
        let row = lock_order!(tx, scope, order_id);
        if currency.is_some_and(|c| c != row.currency) {
            return Err(DbError::invalid("amount.currency", format!("must be the order's currency, {}", row.currency)));
        }
        if row.status != OrderStatus::Open {
            return Err(DbError::transition(format!("a {} order cannot take payments", row.status)));
        }
        let outstanding = row.total - row.paid;
        if amount > outstanding {
            return Err(DbError::invalid("amount", format!("exceeds the outstanding {outstanding}")));
        }
        let paid = row.paid + amount;
        let covered = paid >= row.total;
        let payment_status = if covered { row.payment_status.check(PaymentStatus::Paid)? } else { row.payment_status };
        let payment_id = PaymentId::new();
        let now = Timestamp::now();
        sqlx::query(
            "INSERT INTO payments (id, organization_id, brand_id, order_id, provider, kind, amount, currency, status, reference, created_at)
             VALUES ($1, $2, $3, $4, 'manual', 'payment', $5, $6, 'captured', $7, $8)",
        )
        .bind(payment_id)
        .bind(row.organization_id)
        .bind(row.brand_id)
        .bind(order_id)
        .bind(amount)
        .bind(row.currency.clone())
        .bind(reference.map(str::to_owned))
        .bind(now)
        .execute(&mut **tx)
        .await?;
        sqlx::query(
            "UPDATE orders SET paid = $1, payment_status = $2,
                    reservation_expires_at = CASE WHEN $3 THEN NULL ELSE reservation_expires_at END,
                    version = version + 1, updated_at = $4
              WHERE id = $5",
        )
        .bind(paid)
        .bind(payment_status)
        .bind(covered)
        .bind(now)
        .bind(order_id)
        .execute(&mut **tx)
        .await?;
        let payload = json!({"payment_id": payment_id, "amount": amount, "currency": row.currency, "paid": paid,
                             "method": "manual", "reference": reference});
        tx.record_event(event(&row, "payment.captured", payload.clone(), scope)).await?;
        if covered {
            tx.record_event(event(&row, "order.paid", payload, scope)).await?;
            tx.enqueue_job(NewJob {
                dedupe_key: Some(format!("fulfillment.create_for_order:{order_id}")),
                ..NewJob::now("fulfillment.create_for_order", json!({"order_id": order_id}))
            })
            .await?;
        }
        let mut audit =
            scope.audit(row.organization_id, Some(row.brand_id), "order.record_payment", "order", order_id.to_string());
        audit.before = Some(money_state(&row));
        audit.after = Some(json!({"paid": paid, "payment_status": payment_status}));
        tx.record_audit(audit).await?;
    });
    get(db, scope, order_id).await
}

/// Cancels an open order: releases its stock, cancels its fulfillment
/// orders and, when money was taken, records it as due back. An order with
/// anything shipped cannot be cancelled.
pub async fn cancel(db: &Db, scope: &Scope, order_id: OrderId, reason: &str) -> DbResult<Order> {
    db_write!(db, |tx| {
        let row = lock_order!(tx, scope, order_id);
        let status = row.status.check(OrderStatus::Cancelled)?;
        if row.fulfillment_status != FulfillmentStatus::Unfulfilled {
            return Err(DbError::transition("an order with shipped items cannot be cancelled"));
        }
        let released = tx.release(order_id).await?;
        let now = Timestamp::now();
        sqlx::query("UPDATE fulfillment_orders SET status = 'cancelled', version = version + 1, updated_at = $1 WHERE order_id = $2 AND status <> 'cancelled'")
            .bind(now)
            .bind(order_id)
            .execute(&mut **tx)
            .await?;
        let refund_due = row.paid - row.refunded;
        sqlx::query(
            "UPDATE orders SET status = $1, refund_due = $2, reservation_expires_at = NULL, version = version + 1, updated_at = $3
              WHERE id = $4",
        )
        .bind(status)
        .bind(refund_due)
        .bind(now)
        .bind(order_id)
        .execute(&mut **tx)
        .await?;
        let payload = json!({"reason": reason, "released_units": released, "refund_due": refund_due});
        tx.record_event(event(&row, "order.cancelled", payload, scope)).await?;
        let mut audit =
            scope.audit(row.organization_id, Some(row.brand_id), "order.cancel", "order", order_id.to_string());
        audit.before = Some(money_state(&row));
        audit.after = Some(json!({"status": status, "refund_due": refund_due, "reason": reason}));
        tx.record_audit(audit).await?;
    });
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
    db_write!(db, |tx| {
        let row = lock_order!(tx, scope, order_id);
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
        sqlx::query("UPDATE orders SET shipping_address = $1, version = version + 1, updated_at = $2 WHERE id = $3")
            .bind(after.clone())
            .bind(Timestamp::now())
            .bind(order_id)
            .execute(&mut **tx)
            .await?;
        tx.record_event(event(&row, "order.address_updated", json!({"shipping_address": address}), scope)).await?;
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
    });
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
/// shipped. On a paid order the new total may not exceed what was paid; a
/// lower total records the difference as due back.
pub async fn replace_items(db: &Db, scope: &Scope, order_id: OrderId, lines: &[(String, i64)]) -> DbResult<Order> {
    if lines.is_empty() {
        return Err(DbError::invalid("items", "must list at least one item; cancel the order instead"));
    }
    db_write!(db, |tx| {
        let row = lock_order!(tx, scope, order_id);
        if row.status != OrderStatus::Open {
            return Err(DbError::transition(format!("a {} order cannot change its items", row.status)));
        }
        if row.fulfillment_status != FulfillmentStatus::Unfulfilled {
            return Err(DbError::transition("the order has shipped items; its items can no longer change"));
        }
        let old: Vec<super::OrderItem> = sqlx::query_as(
            "SELECT id, order_id, variant_id, sku, title, quantity, unit_price, total, price_source FROM order_items WHERE order_id = $1 ORDER BY position",
        )
        .bind(order_id)
        .fetch_all(&mut **tx)
        .await?;
        let mut query = QueryBuilder::new(
            "SELECT v.id AS variant_id, v.sku, p.title, v.price_amount FROM variants v JOIN products p ON p.id = v.product_id WHERE v.brand_id = ",
        );
        query.push_bind(row.brand_id).push(" AND v.sku IN (");
        let mut skus = query.separated(", ");
        for (sku, _) in lines {
            skus.push_bind(sku.clone());
        }
        query.push(")");
        let variants: Vec<PricedVariant> = query.build_query_as().fetch_all(&mut **tx).await?;

        tx.release(order_id).await?;
        sqlx::query("DELETE FROM reservations WHERE order_id = $1").bind(order_id).execute(&mut **tx).await?;
        sqlx::query("DELETE FROM fulfillment_order_items WHERE fulfillment_order_id IN (SELECT id FROM fulfillment_orders WHERE order_id = $1)")
            .bind(order_id)
            .execute(&mut **tx)
            .await?;
        sqlx::query("DELETE FROM fulfillment_orders WHERE order_id = $1").bind(order_id).execute(&mut **tx).await?;
        sqlx::query("DELETE FROM order_items WHERE order_id = $1").bind(order_id).execute(&mut **tx).await?;

        let now = Timestamp::now();
        let mut holds = Vec::new();
        let mut subtotal = 0;
        for (position, (sku, quantity)) in lines.iter().enumerate() {
            let variant = variants.iter().find(|v| v.sku == *sku).ok_or_else(|| {
                DbError::invalid(format!("items[{position}].sku"), format!("no product has the SKU {sku}"))
            })?;
            let previous = old.iter().find(|i| i.sku == *sku);
            let unit_price = previous.map_or(variant.price_amount, |i| i.unit_price);
            let title = previous.map_or_else(|| variant.title.clone(), |i| i.title.clone());
            let item_id = OrderItemId::new();
            sqlx::query(
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
            .bind(unit_price * quantity)
            .bind(previous.map_or("price_book".to_owned(), |i| i.price_source.clone()))
            .bind(position as i64)
            .bind(now)
            .execute(&mut **tx)
            .await?;
            subtotal += unit_price * quantity;
            holds.push(Hold {
                order_item_id: item_id,
                variant_id: variant.variant_id,
                sku: sku.clone(),
                quantity: *quantity,
            });
        }
        tx.hold(row.organization_id, row.brand_id, order_id, &holds).await?;

        let total = subtotal + row.shipping_total + row.tax_total - row.discount_total;
        let is_paid = matches!(row.payment_status, PaymentStatus::Paid | PaymentStatus::PartiallyRefunded);
        if is_paid && total > row.paid {
            return Err(DbError::invalid(
                "items",
                "the new total exceeds what was paid; take the difference as a separate order",
            ));
        }
        let refund_due = if is_paid { row.refund_due + (row.total - total).max(0) } else { row.refund_due };
        sqlx::query(
            "UPDATE orders SET subtotal = $1, total = $2, refund_due = $3, version = version + 1, updated_at = $4 WHERE id = $5",
        )
        .bind(subtotal)
        .bind(total)
        .bind(refund_due)
        .bind(now)
        .bind(order_id)
        .execute(&mut **tx)
        .await?;
        if is_paid {
            tx.enqueue_job(NewJob::now("fulfillment.create_for_order", json!({"order_id": order_id}))).await?;
        }
        let after: Vec<_> = lines.iter().map(|(sku, quantity)| json!({"sku": sku, "quantity": quantity})).collect();
        let before: Vec<_> = old.iter().map(|i| json!({"sku": i.sku, "quantity": i.quantity})).collect();
        tx.record_event(event(&row, "order.items_updated", json!({"items": after, "total": total}), scope)).await?;
        let mut audit =
            scope.audit(row.organization_id, Some(row.brand_id), "order.replace_items", "order", order_id.to_string());
        audit.before = Some(json!({"items": before, "total": row.total}));
        audit.after = Some(json!({"items": after, "total": total}));
        tx.record_audit(audit).await?;
    });
    get(db, scope, order_id).await
}
