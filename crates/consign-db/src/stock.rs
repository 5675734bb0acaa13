//! Stock: one level per (variant, warehouse) and the ledger of every change
//! of `on_hand`.
//!
//! Invariants, held by conditional updates and the table's CHECKs rather
//! than by reading first: `0 <= reserved <= on_hand`, and the movements of a
//! (variant, warehouse) sum to its `on_hand`. Adjustments here never write
//! `reserved`; only the reservation code does.
//!
//! `available = max(0, on_hand - reserved - unsellable - safety_stock)`,
//! computed in SQL with `CASE` so both engines agree.

use std::collections::HashMap;

use crate::{AuditEntry, Db, DbError, DbResult, NewEvent, Page, PageRequest, Scope};
use consign_domain::{BrandId, EventType, MovementId, OrganizationId, Timestamp, VariantId, WarehouseId};
use serde::Serialize;
use serde_json::json;

/// A stock level of one variant in one warehouse.
#[derive(Clone, Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct StockLevel {
    /// The variant.
    pub variant_id: VariantId,
    /// Its SKU.
    pub sku: String,
    /// Its brand.
    pub brand_id: BrandId,
    /// The warehouse.
    pub warehouse_id: WarehouseId,
    /// Units physically there.
    pub on_hand: i64,
    /// Units held for orders not yet shipped.
    pub reserved: i64,
    /// Units damaged or in quality control.
    pub unsellable: i64,
    /// Units kept back from sale.
    pub safety_stock: i64,
    /// Units expected on inbound shipments.
    pub incoming: i64,
    /// What can be sold: `max(0, on_hand - reserved - unsellable - safety_stock)`.
    pub available: i64,
    /// When last changed.
    pub updated_at: Timestamp,
}

/// A ledger entry: one change of `on_hand`.
#[derive(Clone, Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Movement {
    /// Id.
    pub id: MovementId,
    /// The brand of the variant.
    pub brand_id: BrandId,
    /// The variant.
    pub variant_id: VariantId,
    /// The warehouse.
    pub warehouse_id: WarehouseId,
    /// The change (negative takes stock out).
    pub delta: i64,
    /// `on_hand` right after this change.
    pub on_hand_after: i64,
    /// Why.
    pub reason: String,
    /// Who (user id, API key id or `system`).
    pub actor: String,
    /// An outside reference, such as a receipt number.
    pub reference: Option<String>,
    /// When.
    pub created_at: Timestamp,
}

/// How an adjustment changes `on_hand`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StockChange {
    /// Add (or, negative, take out) this many units.
    Delta(i64),
    /// Set `on_hand` to a counted value; the ledger records the difference.
    SetOnHand(i64),
}

/// A manual stock adjustment.
#[derive(Clone, Debug)]
pub struct NewAdjustment<'a> {
    /// The variant.
    pub variant_id: VariantId,
    /// The warehouse.
    pub warehouse_id: WarehouseId,
    /// The change.
    pub change: StockChange,
    /// Why, for the ledger.
    pub reason: &'a str,
    /// An outside reference.
    pub reference: Option<&'a str>,
}

/// Why an adjustment failed.
#[derive(Debug, thiserror::Error)]
pub enum AdjustError {
    /// The change would take `on_hand` below zero or below what is reserved.
    #[error("on_hand of {sku} would be {requested}, below reserved ({reserved}) or zero")]
    InsufficientStock {
        /// The variant's SKU.
        sku: String,
        /// `on_hand` now.
        on_hand: i64,
        /// `reserved` now.
        reserved: i64,
        /// The `on_hand` the change asked for.
        requested: i64,
    },
    /// Anything else; `NotFound` when the variant or warehouse is not the
    /// caller's to adjust.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for AdjustError {
    fn from(error: sqlx::Error) -> Self {
        AdjustError::Db(error.into())
    }
}

/// Filters of [`levels`].
#[derive(Clone, Debug, Default)]
pub struct LevelFilter {
    /// Only this brand.
    pub brand_id: Option<BrandId>,
    /// Only this exact SKU.
    pub sku: Option<String>,
    /// Only this warehouse.
    pub warehouse_id: Option<WarehouseId>,
    /// Only this variant.
    pub variant_id: Option<VariantId>,
}

/// Filters of [`movements`].
#[derive(Clone, Debug, Default)]
pub struct MovementFilter {
    /// Only this brand.
    pub brand_id: Option<BrandId>,
    /// Only this variant.
    pub variant_id: Option<VariantId>,
    /// Only this warehouse.
    pub warehouse_id: Option<WarehouseId>,
}

// As macros, so that `concat!` makes whole queries `&'static str`.
macro_rules! available {
    () => {
        "CASE WHEN s.on_hand - s.reserved - s.unsellable - s.safety_stock > 0
              THEN s.on_hand - s.reserved - s.unsellable - s.safety_stock ELSE 0 END"
    };
}

macro_rules! level_select {
    () => {
        concat!(
            "SELECT s.variant_id, v.sku, s.brand_id, s.warehouse_id, s.on_hand, s.reserved, s.unsellable,
                    s.safety_stock, s.incoming, ",
            available!(),
            " AS available, s.updated_at
               FROM stock_levels s JOIN variants v ON v.id = s.variant_id"
        )
    };
}

#[derive(sqlx::FromRow)]
struct VariantRef {
    brand_id: BrandId,
    sku: String,
}

#[derive(sqlx::FromRow)]
struct WarehouseRef {
    organization_id: OrganizationId,
    linked: bool,
}

/// Adjusts `on_hand` of a variant in a warehouse, creating the level when
/// missing, and writes the movement, `inventory.adjusted` and an audit row
/// in the same transaction. Answers the level after.
///
/// The caller must see the variant's brand, and the warehouse must serve
/// that brand or belong to one of the caller's organizations; otherwise
/// `NotFound`. A change that would take `on_hand` below `reserved` (or
/// zero) is [`AdjustError::InsufficientStock`] and writes nothing.
///
/// Concurrency: the first statement upserts the level and, on PostgreSQL,
/// locks its row (SQLite writes are serialized anyway), so the `on_hand`
/// it returns is the one the change applies to; the change itself is one
/// conditional `UPDATE … WHERE on_hand + delta >= reserved`, so neither a
/// concurrent adjustment nor a reservation can break `reserved <= on_hand`.
pub async fn adjust(db: &Db, scope: &Scope, adjustment: NewAdjustment<'_>) -> Result<StockLevel, AdjustError> {
    let NewAdjustment { variant_id, warehouse_id, change, reason, reference } = adjustment;
    let variant: VariantRef =
        db.read("SELECT brand_id, sku FROM variants WHERE id = $1").bind(variant_id).fetch_one().await?;
    scope.check_brand(variant.brand_id)?;
    let warehouse: Option<WarehouseRef> = db
        .read(
            "SELECT w.organization_id,
                    EXISTS (SELECT 1 FROM brand_warehouses bw WHERE bw.brand_id = $2 AND bw.warehouse_id = w.id) AS linked
               FROM warehouses w WHERE w.id = $1",
        )
        .bind(warehouse_id)
        .bind(variant.brand_id)
        .fetch_optional()
        .await?;
    let Some(warehouse) = warehouse else { return Err(DbError::NotFound.into()) };
    if !warehouse.linked {
        scope.check_organization(warehouse.organization_id)?;
    }
    let organization_id = warehouse.organization_id;
    let brand_id = variant.brand_id;
    let now = Timestamp::now();
    let mut tx = db.begin().await?;
    let (before, reserved): (i64, i64) = tx
        .query(
            "INSERT INTO stock_levels (organization_id, brand_id, variant_id, warehouse_id, on_hand, reserved,
                                       unsellable, safety_stock, incoming, low_stock_threshold, updated_at)
             VALUES ($1, $2, $3, $4, 0, 0, 0, 0, 0, 0, $5)
             ON CONFLICT (variant_id, warehouse_id) DO UPDATE SET updated_at = excluded.updated_at
             RETURNING on_hand, reserved",
        )
        .bind(organization_id)
        .bind(brand_id)
        .bind(variant_id)
        .bind(warehouse_id)
        .bind(now)
        .fetch_one()
        .await?;
    let delta = match change {
        StockChange::Delta(delta) => delta,
        StockChange::SetOnHand(target) => target.saturating_sub(before),
    };
    let requested = before.saturating_add(delta);
    let after: Option<i64> = tx
        .query(
            "UPDATE stock_levels SET on_hand = on_hand + $1, updated_at = $2
              WHERE variant_id = $3 AND warehouse_id = $4 AND on_hand + $1 >= reserved AND on_hand + $1 >= 0
          RETURNING on_hand",
        )
        .bind(delta)
        .bind(now)
        .bind(variant_id)
        .bind(warehouse_id)
        .scalar_optional()
        .await?;
    // Returning drops the transaction: the upsert above rolls back too.
    let Some(after) = after else {
        return Err(AdjustError::InsufficientStock { sku: variant.sku, on_hand: before, reserved, requested });
    };
    let movement_id = MovementId::new();
    tx.query(
        "INSERT INTO stock_movements (id, organization_id, brand_id, variant_id, warehouse_id, delta, on_hand_after,
                                      reason, actor, reference, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(movement_id)
    .bind(organization_id)
    .bind(brand_id)
    .bind(variant_id)
    .bind(warehouse_id)
    .bind(delta)
    .bind(after)
    .bind(reason.to_owned())
    .bind(scope.principal().actor_id())
    .bind(reference.map(str::to_owned))
    .bind(now)
    .execute()
    .await?;
    let payload = json!({
        "movement_id": movement_id, "variant_id": variant_id, "sku": variant.sku, "warehouse_id": warehouse_id,
        "delta": delta, "on_hand_after": after, "reason": reason, "reference": reference,
    });
    tx.record_event(NewEvent {
        organization_id,
        brand_id: Some(brand_id),
        event_type: EventType::InventoryAdjusted,
        aggregate_type: "stock_level",
        aggregate_id: variant_id.to_string(),
        payload: payload.clone(),
        actor: scope.principal().actor_id(),
    })
    .await?;
    tx.record_audit(AuditEntry {
        before: Some(json!({"on_hand": before, "reserved": reserved})),
        after: Some(payload),
        ..scope.audit(
            organization_id,
            Some(brand_id),
            "inventory.adjust",
            "stock_level",
            format!("{variant_id}.{warehouse_id}"),
        )
    })
    .await?;
    let level: StockLevel = tx
        .query(concat!(level_select!(), " WHERE s.variant_id = $1 AND s.warehouse_id = $2"))
        .bind(variant_id)
        .bind(warehouse_id)
        .fetch_one()
        .await?;
    tx.commit().await?;
    Ok(level)
}

/// Stock levels of the brands the caller sees, newest variant first, in one
/// query. A `brand_id` filter naming a brand the caller cannot see is
/// `NotFound`. The cursor is `<variant_id>.<warehouse_id>` of the last row.
pub async fn levels(db: &Db, scope: &Scope, filter: &LevelFilter, page: &PageRequest) -> DbResult<Page<StockLevel>> {
    if let Some(brand_id) = filter.brand_id {
        scope.check_brand(brand_id)?;
    }
    let mut query = db.read(concat!(level_select!(), " WHERE 1 = 1"));
    scope.push_brand_filter(&mut query, "s.brand_id");
    if let Some(brand_id) = filter.brand_id {
        query.push(" AND s.brand_id = ").push_bind(brand_id);
    }
    if let Some(sku) = &filter.sku {
        query.push(" AND v.sku = ").push_bind(sku.clone());
    }
    if let Some(warehouse_id) = filter.warehouse_id {
        query.push(" AND s.warehouse_id = ").push_bind(warehouse_id);
    }
    if let Some(variant_id) = filter.variant_id {
        query.push(" AND s.variant_id = ").push_bind(variant_id);
    }
    if let Some(after) = &page.after {
        let (variant, warehouse) = after.split_once('.').unwrap_or((after.as_str(), ""));
        query.push(" AND (s.variant_id < ").push_bind(variant.to_owned());
        query.push(" OR (s.variant_id = ").push_bind(variant.to_owned());
        query.push(" AND s.warehouse_id < ").push_bind(warehouse.to_owned()).push("))");
    }
    query.push(" ORDER BY s.variant_id DESC, s.warehouse_id DESC LIMIT ").push_bind(page.fetch_limit());
    let rows: Vec<StockLevel> = query.fetch_all().await?;
    Ok(Page::from_rows(rows, page, |l| format!("{}.{}", l.variant_id, l.warehouse_id)))
}

/// Ledger entries of the brands the caller sees, newest first. A `brand_id`
/// filter naming a brand the caller cannot see is `NotFound`.
pub async fn movements(
    db: &Db,
    scope: &Scope,
    filter: &MovementFilter,
    page: &PageRequest,
) -> DbResult<Page<Movement>> {
    if let Some(brand_id) = filter.brand_id {
        scope.check_brand(brand_id)?;
    }
    let mut query = db.read(
        "SELECT id, brand_id, variant_id, warehouse_id, delta, on_hand_after, reason, actor, reference, created_at
           FROM stock_movements WHERE 1 = 1",
    );
    scope.push_brand_filter(&mut query, "brand_id");
    if let Some(brand_id) = filter.brand_id {
        query.push(" AND brand_id = ").push_bind(brand_id);
    }
    if let Some(variant_id) = filter.variant_id {
        query.push(" AND variant_id = ").push_bind(variant_id);
    }
    if let Some(warehouse_id) = filter.warehouse_id {
        query.push(" AND warehouse_id = ").push_bind(warehouse_id);
    }
    if let Some(after) = &page.after {
        query.push(" AND id < ").push_bind(after.clone());
    }
    query.push(" ORDER BY id DESC LIMIT ").push_bind(page.fetch_limit());
    let rows: Vec<Movement> = query.fetch_all().await?;
    Ok(Page::from_rows(rows, page, |m| m.id.to_string()))
}

/// Units available to sell per variant, summed over the warehouses serving
/// the brand (`brand_warehouses`); each level counts
/// `max(0, on_hand - reserved - unsellable - safety_stock)`. Every asked
/// variant is in the answer, 0 when it has no stock.
///
/// No scope: the storefront is public, and the answer is only counts of
/// the brand's own variants (variants of other brands count 0).
pub async fn available_by_variant(
    db: &Db,
    brand_id: BrandId,
    variant_ids: &[VariantId],
) -> DbResult<HashMap<VariantId, i64>> {
    let mut available: HashMap<VariantId, i64> = variant_ids.iter().map(|id| (*id, 0)).collect();
    if variant_ids.is_empty() {
        return Ok(available);
    }
    let mut query = db.read(concat!(
        "SELECT s.variant_id, CAST(SUM(",
        available!(),
        ") AS BIGINT)
           FROM stock_levels s
           JOIN brand_warehouses bw ON bw.brand_id = s.brand_id AND bw.warehouse_id = s.warehouse_id
          WHERE s.brand_id = "
    ));
    query.push_bind(brand_id).push(" AND ");
    query.push_in("s.variant_id", available.keys().copied());
    query.push(" GROUP BY s.variant_id");
    let rows: Vec<(VariantId, i64)> = query.fetch_all().await?;
    available.extend(rows);
    Ok(available)
}
