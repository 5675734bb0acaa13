//! The figures of the staff dashboard: open orders, orders to ship, revenue
//! today and this week per currency, and low stock, for the brands the
//! caller sees (or one of them). Reads only, across orders, payments and
//! stock.

use consign_domain::{BrandId, Timestamp};

use crate::{Db, DbResult, Scope};

/// A sum of money in one currency.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct CurrencyTotal {
    /// ISO 4217 code.
    pub currency: String,
    /// Minor units.
    pub amount: i64,
}

/// A stock level at or under its low-stock threshold.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct LowStock {
    /// The variant.
    pub variant_id: consign_domain::VariantId,
    /// Its SKU.
    pub sku: String,
    /// The warehouse's name.
    pub warehouse: String,
    /// Units that can be sold.
    pub available: i64,
    /// The threshold.
    pub threshold: i64,
}

/// The dashboard's figures, for the brands the caller sees (or one).
#[derive(Clone, Debug, Default)]
pub struct Dashboard {
    /// Orders placed and live.
    pub open_orders: i64,
    /// Paid open orders with goods still to ship.
    pub to_ship: i64,
    /// Payments less refunds since the start of today, per currency.
    pub revenue_today: Vec<CurrencyTotal>,
    /// Payments less refunds since the start of the week, per currency.
    pub revenue_week: Vec<CurrencyTotal>,
    /// Stock levels at or under their threshold, lowest first (at most 10).
    pub low_stock: Vec<LowStock>,
}

/// The dashboard's figures. `day_start` and `week_start` are the caller's
/// idea of midnight today and the start of the week.
pub async fn figures(
    db: &Db,
    scope: &Scope,
    brand_id: Option<BrandId>,
    day_start: Timestamp,
    week_start: Timestamp,
) -> DbResult<Dashboard> {
    if let Some(brand_id) = brand_id {
        scope.check_brand(brand_id)?;
    }
    let mut query = db.read(
        "SELECT s.variant_id, v.sku, w.name AS warehouse,
                s.on_hand - s.reserved - s.unsellable - s.safety_stock AS available,
                s.low_stock_threshold AS threshold
           FROM stock_levels s
           JOIN variants v ON v.id = s.variant_id
           JOIN warehouses w ON w.id = s.warehouse_id
          WHERE s.on_hand - s.reserved - s.unsellable - s.safety_stock <= s.low_stock_threshold",
    );
    scope.push_brand_filter(&mut query, "s.brand_id");
    if let Some(brand_id) = brand_id {
        query.push(" AND s.brand_id = ").push_bind(brand_id);
    }
    query.push(" ORDER BY available, v.sku LIMIT 10");
    let low_stock: Vec<LowStock> = query.fetch_all().await?;
    Ok(Dashboard {
        open_orders: count_orders(db, scope, brand_id, "status = 'open'").await?,
        to_ship: count_orders(
            db,
            scope,
            brand_id,
            "status = 'open' AND payment_status = 'paid' AND fulfillment_status IN ('unfulfilled', 'partially_shipped')",
        )
        .await?,
        revenue_today: revenue_since(db, scope, brand_id, day_start).await?,
        revenue_week: revenue_since(db, scope, brand_id, week_start).await?,
        low_stock,
    })
}

async fn count_orders(db: &Db, scope: &Scope, brand_id: Option<BrandId>, condition: &'static str) -> DbResult<i64> {
    let mut query = db.read_built(format!("SELECT COUNT(*) FROM orders WHERE {condition}"));
    scope.push_brand_filter(&mut query, "brand_id");
    if let Some(brand_id) = brand_id {
        query.push(" AND brand_id = ").push_bind(brand_id);
    }
    query.scalar().await
}

async fn revenue_since(
    db: &Db,
    scope: &Scope,
    brand_id: Option<BrandId>,
    since: Timestamp,
) -> DbResult<Vec<CurrencyTotal>> {
    let mut query = db.read(
        "SELECT currency, CAST(SUM(CASE WHEN kind = 'refund' THEN -amount ELSE amount END) AS BIGINT) AS amount
           FROM payments WHERE created_at >= ",
    );
    query.push_bind(since);
    scope.push_brand_filter(&mut query, "brand_id");
    if let Some(brand_id) = brand_id {
        query.push(" AND brand_id = ").push_bind(brand_id);
    }
    query.push(" GROUP BY currency ORDER BY currency");
    query.fetch_all().await
}

/// How far the caller's brands are set up, for the dashboard's checklist:
/// each step is done when some brand the caller sees has it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SetupProgress {
    /// A warehouse ships for a brand.
    pub warehouse: bool,
    /// A product is on sale.
    pub product: bool,
    /// Some stock is on a shelf.
    pub stock: bool,
    /// An order arrived (the checklist's end).
    pub order: bool,
}

/// The [`SetupProgress`] of the brands the caller sees: four reads that
/// stop at the first row each.
pub async fn setup_progress(db: &Db, scope: &Scope) -> DbResult<SetupProgress> {
    let any = |sql: &'static str, column: &'static str| {
        let mut query = db.read(sql);
        scope.push_brand_filter(&mut query, column);
        query.push(" LIMIT 1");
        async move { Ok::<bool, crate::DbError>(query.fetch_optional::<(i64,)>().await?.is_some()) }
    };
    let (warehouse, product, stock, order) = tokio::try_join!(
        any("SELECT CAST(1 AS BIGINT) FROM brand_warehouses WHERE 1 = 1", "brand_id"),
        any("SELECT CAST(1 AS BIGINT) FROM products WHERE status = 'active'", "brand_id"),
        any("SELECT CAST(1 AS BIGINT) FROM stock_levels WHERE on_hand > 0", "brand_id"),
        any("SELECT CAST(1 AS BIGINT) FROM orders WHERE 1 = 1", "brand_id"),
    )?;
    Ok(SetupProgress { warehouse, product, stock, order })
}
