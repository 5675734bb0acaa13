//! Stock held for orders: allocation across warehouses, holding, release
//! and consumption.
//!
//! Allocation follows the brand's warehouse priority (`brand_warehouses`,
//! lowest number first; with none configured, every warehouse with stock in
//! id order) and splits a line across warehouses when no single one can
//! serve it. The stock rows are read with a row lock on PostgreSQL (in
//! variant, warehouse order, so concurrent checkouts cannot deadlock) and
//! under SQLite's single writer, then changed with conditional updates that
//! re-check availability: `0 <= reserved <= on_hand` and `available >= 0`
//! hold at every commit, whatever runs concurrently.

use std::collections::HashMap;

use consign_domain::{BrandId, OrderId, OrderItemId, OrganizationId, ReservationId, Timestamp, VariantId, WarehouseId};

use crate::{DbError, DbResult, Tx};

/// One order line to hold stock for.
#[derive(Clone, Debug)]
pub(crate) struct Hold {
    pub order_item_id: OrderItemId,
    pub variant_id: VariantId,
    pub sku: String,
    pub quantity: i64,
}

/// Stock held for one line in one warehouse.
#[derive(Clone, Debug, sqlx::FromRow)]
pub(crate) struct Held {
    pub order_item_id: OrderItemId,
    pub variant_id: VariantId,
    pub warehouse_id: WarehouseId,
    pub quantity: i64,
}

#[derive(sqlx::FromRow)]
struct Level {
    variant_id: VariantId,
    warehouse_id: WarehouseId,
    available: i64,
    priority: Option<i64>,
}

/// Allocates and reserves stock for every line, or fails with
/// `InsufficientStock` naming every short SKU. The caller records the
/// returned holds with [`record_holds`] once the order's rows exist; until
/// the transaction commits, nothing is visible.
///
/// A one-line order whose first warehouse can serve it all, the common
/// case, takes one statement ([`hold_whole_line`]); anything else reads the
/// stock rows under lock, plans the split and reserves it in one statement.
pub(crate) async fn hold(tx: &mut Tx, brand_id: BrandId, lines: &[Hold]) -> DbResult<Vec<Held>> {
    if let [line] = lines
        && let Some(held) = hold_whole_line(tx, brand_id, line).await?
    {
        return Ok(vec![held]);
    }
    let levels = locked_levels(tx, brand_id, lines).await?;
    let plan = plan(levels, lines)?;
    reserve(tx, &plan, lines).await?;
    Ok(plan)
}

/// Reserves a whole line in the brand's first warehouse (by priority) that
/// has any of it, when that warehouse has enough: the same choice the
/// planner makes, in one statement. `None` when it has too little (or none
/// has any), and the caller plans a split instead. The availability is
/// checked again on the updated row itself, so a concurrent checkout that
/// took the stock first makes this `None` rather than oversell.
async fn hold_whole_line(tx: &mut Tx, brand_id: BrandId, line: &Hold) -> DbResult<Option<Held>> {
    let warehouse_id: Option<WarehouseId> = tx
        .query(
            "UPDATE stock_levels SET reserved = reserved + $1, updated_at = $2
              WHERE variant_id = $3
                AND on_hand - reserved - unsellable - safety_stock >= $1
                AND warehouse_id = (
                    SELECT sl.warehouse_id FROM stock_levels sl
                      LEFT JOIN brand_warehouses bw ON bw.brand_id = $4 AND bw.warehouse_id = sl.warehouse_id
                     WHERE sl.variant_id = $3 AND sl.on_hand - sl.reserved - sl.unsellable - sl.safety_stock > 0
                       AND (bw.warehouse_id IS NOT NULL
                            OR NOT EXISTS (SELECT 1 FROM brand_warehouses linked WHERE linked.brand_id = $4))
                     ORDER BY coalesce(bw.priority, 0), sl.warehouse_id
                     LIMIT 1)
              RETURNING warehouse_id",
        )
        .bind(line.quantity)
        .bind(Timestamp::now())
        .bind(line.variant_id)
        .bind(brand_id)
        .scalar_optional()
        .await?;
    Ok(warehouse_id.map(|warehouse_id| Held {
        order_item_id: line.order_item_id,
        variant_id: line.variant_id,
        warehouse_id,
        quantity: line.quantity,
    }))
}

/// The stock rows of the lines' variants in the brand's warehouses (every
/// warehouse when the brand links none), locked on PostgreSQL in variant,
/// warehouse order, then sorted by the brand's priority.
async fn locked_levels(tx: &mut Tx, brand_id: BrandId, lines: &[Hold]) -> DbResult<Vec<Level>> {
    let lock_clause = tx.lock_clause();
    let mut query = tx.query(
        "SELECT sl.variant_id, sl.warehouse_id,
                sl.on_hand - sl.reserved - sl.unsellable - sl.safety_stock AS available,
                (SELECT bw.priority FROM brand_warehouses bw
                  WHERE bw.brand_id = ",
    );
    query.push_bind(brand_id);
    query.push(" AND bw.warehouse_id = sl.warehouse_id) AS priority FROM stock_levels sl WHERE ");
    query.push_in("sl.variant_id", lines.iter().map(|line| line.variant_id));
    query.push(" AND (EXISTS (SELECT 1 FROM brand_warehouses bw WHERE bw.brand_id = ");
    query.push_bind(brand_id);
    query.push(
        " AND bw.warehouse_id = sl.warehouse_id) OR NOT EXISTS (SELECT 1 FROM brand_warehouses bw WHERE bw.brand_id = ",
    );
    query.push_bind(brand_id);
    query.push(")) ORDER BY sl.variant_id, sl.warehouse_id");
    query.push(lock_clause);
    let mut levels: Vec<Level> = query.fetch_all().await?;
    levels.sort_by_key(|l| (l.priority.unwrap_or(0), l.warehouse_id));
    Ok(levels)
}

/// Takes each line greedily from the warehouses in priority order, or
/// fails naming every SKU that cannot be served in full.
fn plan(levels: Vec<Level>, lines: &[Hold]) -> DbResult<Vec<Held>> {
    let mut by_variant: HashMap<VariantId, Vec<(WarehouseId, i64)>> = HashMap::new();
    for level in levels {
        by_variant.entry(level.variant_id).or_default().push((level.warehouse_id, level.available.max(0)));
    }
    let mut plan = Vec::new();
    let mut short = Vec::new();
    for line in lines {
        let mut needed = line.quantity;
        for (warehouse_id, available) in by_variant.get_mut(&line.variant_id).into_iter().flatten() {
            if needed == 0 {
                break;
            }
            let take = needed.min(*available);
            if take > 0 {
                *available -= take;
                needed -= take;
                plan.push(Held {
                    order_item_id: line.order_item_id,
                    variant_id: line.variant_id,
                    warehouse_id: *warehouse_id,
                    quantity: take,
                });
            }
        }
        if needed > 0 && !short.contains(&line.sku) {
            short.push(line.sku.clone());
        }
    }
    if short.is_empty() { Ok(plan) } else { Err(DbError::InsufficientStock { skus: short }) }
}

/// Reserves every planned hold in one statement, each re-checking the
/// row's availability; a hold the row can no longer serve fails the lot,
/// naming its SKU.
async fn reserve(tx: &mut Tx, plan: &[Held], lines: &[Hold]) -> DbResult<()> {
    if plan.is_empty() {
        return Ok(());
    }
    let mut update = tx.query("WITH planned (variant_id, warehouse_id, quantity) AS (");
    update.push_values(plan, |row, held| {
        row.bind(held.variant_id).bind(held.warehouse_id).bind(held.quantity);
    });
    update.push(") UPDATE stock_levels SET reserved = stock_levels.reserved + planned.quantity, updated_at = ");
    update.push_bind(Timestamp::now());
    update.push(
        " FROM planned
         WHERE stock_levels.variant_id = planned.variant_id AND stock_levels.warehouse_id = planned.warehouse_id
           AND stock_levels.on_hand - stock_levels.reserved - stock_levels.unsellable - stock_levels.safety_stock
               >= planned.quantity
         RETURNING stock_levels.variant_id, stock_levels.warehouse_id",
    );
    let reserved: Vec<(VariantId, WarehouseId)> = update.fetch_all().await?;
    let short: Vec<String> = plan
        .iter()
        .filter(|held| !reserved.contains(&(held.variant_id, held.warehouse_id)))
        .filter_map(|held| lines.iter().find(|line| line.order_item_id == held.order_item_id))
        .map(|line| line.sku.clone())
        .collect();
    if short.is_empty() { Ok(()) } else { Err(DbError::InsufficientStock { skus: short }) }
}

/// Writes the reservation rows of holds made by [`hold`], in one statement.
pub(crate) async fn record_holds(
    tx: &mut Tx,
    organization_id: OrganizationId,
    brand_id: BrandId,
    order_id: OrderId,
    holds: &[Held],
) -> DbResult<()> {
    if holds.is_empty() {
        return Ok(());
    }
    let now = Timestamp::now();
    let mut insert = tx.query(
        "INSERT INTO reservations (id, organization_id, brand_id, order_id, order_item_id, variant_id,
                                   warehouse_id, quantity, status, created_at, updated_at) VALUES ",
    );
    for (index, held) in holds.iter().enumerate() {
        if index > 0 {
            insert.push(", ");
        }
        insert.push("(").push_bind(ReservationId::new());
        insert.push(", ").push_bind(organization_id);
        insert.push(", ").push_bind(brand_id);
        insert.push(", ").push_bind(order_id);
        insert.push(", ").push_bind(held.order_item_id);
        insert.push(", ").push_bind(held.variant_id);
        insert.push(", ").push_bind(held.warehouse_id);
        insert.push(", ").push_bind(held.quantity);
        insert.push(", ").push_bind("active");
        insert.push(", ").push_bind(now);
        insert.push(", ").push_bind(now);
        insert.push(")");
    }
    insert.execute().await?;
    Ok(())
}

/// Holds stock again for every item of an order whose hold was released
/// (it expired), and records the holds. Answers `false`, having changed
/// nothing, when the stock is no longer there.
pub(crate) async fn rehold(
    tx: &mut Tx,
    organization_id: OrganizationId,
    brand_id: BrandId,
    order_id: OrderId,
) -> DbResult<bool> {
    let items: Vec<(OrderItemId, VariantId, String, i64)> = tx
        .query("SELECT id, variant_id, sku, quantity FROM order_items WHERE order_id = $1 ORDER BY position")
        .bind(order_id)
        .fetch_all()
        .await?;
    let lines: Vec<Hold> = items
        .into_iter()
        .map(|(order_item_id, variant_id, sku, quantity)| Hold { order_item_id, variant_id, sku, quantity })
        .collect();
    // `hold` decides from the stock rows it read under lock (the single
    // writer on SQLite), so a shortage is found before any row is changed
    // and this transaction stays clean.
    match hold(tx, brand_id, &lines).await {
        Ok(held) => {
            record_holds(tx, organization_id, brand_id, order_id, &held).await?;
            Ok(true)
        }
        Err(DbError::InsufficientStock { .. }) => Ok(false),
        Err(error) => Err(error),
    }
}

/// Gives back everything the order still holds. Returns the units released.
pub(crate) async fn release(tx: &mut Tx, order_id: OrderId) -> DbResult<i64> {
    let now = Timestamp::now();
    let released: Vec<Held> = tx
        .query(
            "UPDATE reservations SET status = 'released', updated_at = $1
              WHERE order_id = $2 AND status = 'active'
          RETURNING order_item_id, variant_id, warehouse_id, quantity",
        )
        .bind(now)
        .bind(order_id)
        .fetch_all()
        .await?;
    let mut units = 0;
    for held in &released {
        tx.query(
            "UPDATE stock_levels SET reserved = reserved - $1, updated_at = $2
              WHERE variant_id = $3 AND warehouse_id = $4",
        )
        .bind(held.quantity)
        .bind(now)
        .bind(held.variant_id)
        .bind(held.warehouse_id)
        .execute()
        .await?;
        units += held.quantity;
    }
    Ok(units)
}

/// Ships `quantity` of a line from a warehouse: the hold is consumed and
/// `on_hand` and `reserved` both go down, with a ledger row.
pub(crate) async fn consume(tx: &mut Tx, held: &Held, actor: &str, reference: &str) -> DbResult<()> {
    let now = Timestamp::now();
    let consumed = tx
        .query(
            "UPDATE reservations
                SET quantity = quantity - $1,
                    status = CASE WHEN quantity - $1 = 0 THEN 'consumed' ELSE status END,
                    updated_at = $2
              WHERE order_item_id = $3 AND warehouse_id = $4 AND status = 'active' AND quantity >= $1",
        )
        .bind(held.quantity)
        .bind(now)
        .bind(held.order_item_id)
        .bind(held.warehouse_id)
        .execute()
        .await?;
    if consumed != 1 {
        return Err(DbError::transition("the shipped quantity is not held in this warehouse"));
    }
    let level: Option<(i64, OrganizationId, BrandId)> = tx
        .query(
            "UPDATE stock_levels SET on_hand = on_hand - $1, reserved = reserved - $1, updated_at = $2
              WHERE variant_id = $3 AND warehouse_id = $4 AND reserved >= $1
          RETURNING on_hand, organization_id, brand_id",
        )
        .bind(held.quantity)
        .bind(now)
        .bind(held.variant_id)
        .bind(held.warehouse_id)
        .fetch_optional()
        .await?;
    let (on_hand_after, organization_id, brand_id) =
        level.ok_or_else(|| DbError::transition("the stock level no longer holds this quantity"))?;
    tx.query(
        "INSERT INTO stock_movements (id, organization_id, brand_id, variant_id, warehouse_id, delta,
                                      on_hand_after, reason, actor, reference, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'shipment', $8, $9, $10)",
    )
    .bind(consign_domain::MovementId::new())
    .bind(organization_id)
    .bind(brand_id)
    .bind(held.variant_id)
    .bind(held.warehouse_id)
    .bind(-held.quantity)
    .bind(on_hand_after)
    .bind(actor.to_owned())
    .bind(reference.to_owned())
    .bind(now)
    .execute()
    .await?;
    Ok(())
}
