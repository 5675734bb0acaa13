//! Phase 3a, `sql` mode: tops the brand up to `--orders` orders with bulk
//! `INSERT`s into the server's own database, through consign-db's pools and
//! statements, so one code path serves SQLite and PostgreSQL.
//!
//! The rows are what the benchmark's own checkouts become once their
//! reservations run out: `expired`, `unpaid`, `unfulfilled` orders with
//! their items (snapshots of the catalog's SKUs, titles and prices), no
//! payment, no live reservation, so nothing else in the schema has to point
//! at them. Their numbers continue the brand's sequence: each batch takes
//! its range from `order_counters` in the same transaction.

use std::str::FromStr as _;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use consign_db::{Db, PoolSettings};
use consign_domain::{BrandId, OrderId, OrderItemId, OrganizationId, Timestamp, VariantId};

use crate::setup::Fixture;

/// Orders per transaction: big enough to be fast, small enough to show
/// progress and stay far below either engine's bound-parameter limit
/// (26 per order row).
const ORDERS_PER_BATCH: u64 = 500;
/// Item rows per `INSERT` (13 parameters each).
const ITEMS_PER_STATEMENT: usize = 1_000;

/// What the fill did.
pub struct Outcome {
    /// Orders the brand had before.
    pub before: u64,
    /// Orders inserted.
    pub added: u64,
    /// Wall time.
    pub elapsed: Duration,
}

/// Opens the server's database (a small pool of our own).
pub async fn connect(database_url: &str) -> anyhow::Result<Db> {
    let settings = PoolSettings { max_connections: 2, ..PoolSettings::default() };
    Db::connect(database_url, &settings).await.context("cannot open the server's database for the fill")
}

/// Orders of the brand in the database.
pub async fn count_orders(db: &Db, brand_id: BrandId) -> anyhow::Result<u64> {
    let count: i64 = db.read("SELECT COUNT(*) FROM orders WHERE brand_id = $1").bind(brand_id).scalar().await?;
    Ok(u64::try_from(count).unwrap_or(0))
}

/// Inserts orders until the brand has `target`.
pub async fn sql(db: &Db, fixture: &Fixture, target: u64, items_per_order: u32) -> anyhow::Result<Outcome> {
    let brand_id = BrandId::from_str(&fixture.brand_id).context("the brand id is not an id")?;
    let organization_id =
        OrganizationId::from_str(&fixture.organization_id).context("the organization id is not an id")?;
    let variants: Vec<(VariantId, &str, &str, i64)> = fixture
        .variants
        .iter()
        .map(|v| Ok((VariantId::from_str(&v.id)?, v.sku.as_str(), v.title.as_str(), v.price)))
        .collect::<Result<_, consign_domain::ids::InvalidId>>()
        .context("a variant id is not an id")?;
    let address = serde_json::json!({
        "line1": "1 Benchmark Way", "line2": "Unit 5", "city": "Portland",
        "region": "OR", "postal_code": "97201", "country": "US",
    })
    .to_string();

    let before = count_orders(db, brand_id).await?;
    let to_add = target.saturating_sub(before);
    let started = Instant::now();
    let mut last_report = Instant::now();
    let mut added = 0;
    while added < to_add {
        let batch = ORDERS_PER_BATCH.min(to_add - added);
        let first_index = before + added;
        {
            let mut tx = db.begin().await?;
            // Reserve `batch` numbers; the first order of a brand creates its
            // counter, so create it here too if no checkout has.
            let mut last: Option<i64> = tx
                .query("UPDATE order_counters SET last_number = last_number + $2 WHERE brand_id = $1 RETURNING last_number")
                .bind(brand_id)
                .bind(batch as i64)
                .scalar_optional()
                .await?;
            if last.is_none() {
                last = tx
                    .query(
                        "INSERT INTO order_counters (brand_id, organization_id, last_number) VALUES ($1, $2, $3) RETURNING last_number",
                    )
                    .bind(brand_id)
                    .bind(organization_id)
                    .bind(1000 + batch as i64)
                    .scalar_optional()
                    .await?;
            }
            let last = last.context("order_counters gave no number")?;
            let first_number = last - batch as i64 + 1;

            let mut orders = Vec::with_capacity(batch as usize);
            let mut items = Vec::new();
            for offset in 0..batch {
                let index = first_index + offset;
                let id = OrderId::new();
                let now = Timestamp::now();
                let start = (index % variants.len() as u64) as usize;
                let mut subtotal = 0;
                for position in 0..items_per_order as usize {
                    let (variant_id, sku, title, price) = variants[(start + position) % variants.len()];
                    subtotal += price;
                    items.push((OrderItemId::new(), id, variant_id, sku, title, price, position as i64, now));
                }
                orders.push((id, first_number + offset as i64, index, subtotal, now));
            }

            let mut query = tx.query(
                "INSERT INTO orders (id, organization_id, brand_id, number, status, payment_status, fulfillment_status, \
                 customer_name, customer_email, customer_phone, shipping_address, currency, subtotal, discount_total, \
                 shipping_total, tax_total, total, paid, refunded, refund_due, payment_provider, access_token_hash, \
                 reservation_expires_at, version, created_at, updated_at) ",
            );
            query.push_values(&orders, |row, (id, number, index, subtotal, now)| {
                row.bind(*id)
                    .bind(organization_id)
                    .bind(brand_id)
                    .bind(*number)
                    .bind("expired")
                    .bind("unpaid")
                    .bind("unfulfilled")
                    .bind(format!("Bench Customer {index}"))
                    .bind(format!("customer{index}@bench.example.com"))
                    .bind("+15555550100")
                    .bind(address.clone())
                    .bind(fixture.currency.clone())
                    .bind(*subtotal)
                    .bind(0i64)
                    .bind(0i64)
                    .bind(0i64)
                    .bind(*subtotal)
                    .bind(0i64)
                    .bind(0i64)
                    .bind(0i64)
                    .bind("manual")
                    .bind(None::<String>)
                    .bind(None::<i64>)
                    .bind(1i64)
                    .bind(*now)
                    .bind(*now);
            });
            query.execute().await?;

            for chunk in items.chunks(ITEMS_PER_STATEMENT) {
                let mut query = tx.query(
                    "INSERT INTO order_items (id, organization_id, brand_id, order_id, variant_id, sku, title, quantity, \
                     unit_price, total, price_source, position, created_at) ",
                );
                query.push_values(chunk, |row, (id, order_id, variant_id, sku, title, price, position, now)| {
                    row.bind(*id)
                        .bind(organization_id)
                        .bind(brand_id)
                        .bind(*order_id)
                        .bind(*variant_id)
                        .bind(sku.to_string())
                        .bind(title.to_string())
                        .bind(1i64)
                        .bind(*price)
                        .bind(*price)
                        .bind("price_book")
                        .bind(*position)
                        .bind(*now);
                });
                query.execute().await?;
            }
            tx.commit().await?;
        }
        added += batch;
        if last_report.elapsed() >= Duration::from_secs(5) || added == to_add {
            last_report = Instant::now();
            println!(
                "  fill: {added}/{to_add} orders inserted, {:.0}/s, {:.0} s",
                added as f64 / started.elapsed().as_secs_f64(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    // PostgreSQL plans from statistics that autovacuum would refresh soon
    // after a bulk load; refresh them now so the list is timed on the plan
    // a live database would use. SQLite keeps none unless asked (`ANALYZE`
    // is not part of Consign's setup), so it is left as the server has it.
    if db.engine() == consign_db::Engine::Postgres {
        db.write_one("ANALYZE orders").execute().await?;
        db.write_one("ANALYZE order_items").execute().await?;
    }
    Ok(Outcome { before, added, elapsed: started.elapsed() })
}

#[cfg(test)]
mod tests {
    use consign_domain::ProductId;
    use consign_testkit::TestDb;

    use super::*;
    use crate::setup::Variant;

    /// A brand with two SKUs, made directly in the database (the API for
    /// products may not exist on every branch this runs on).
    async fn brand_with_catalog(db: &Db) -> anyhow::Result<Fixture> {
        let organization_id = OrganizationId::new();
        let brand_id = BrandId::new();
        let product_id = ProductId::new();
        let now = Timestamp::now();
        let mut variants = Vec::new();
        let mut tx = db.begin().await?;
        {
            tx.query("INSERT INTO organizations (id, name, kind, created_at, updated_at) VALUES ($1, 'Bench', 'merchant', $2, $2)")
                .bind(organization_id)
                .bind(now)
                .execute()
                .await?;
            tx.query(
                "INSERT INTO brands (id, organization_id, name, slug, currency, created_at, updated_at) \
                 VALUES ($1, $2, 'Bench', $3, 'USD', $4, $4)",
            )
            .bind(brand_id)
            .bind(organization_id)
            .bind(format!("bench-{}", uuid::Uuid::now_v7().simple()))
            .bind(now)
            .execute()
            .await?;
            tx.query(
                "INSERT INTO products (id, organization_id, brand_id, title, status, created_at, updated_at) \
                 VALUES ($1, $2, $3, 'Bench Tee', 'active', $4, $4)",
            )
            .bind(product_id)
            .bind(organization_id)
            .bind(brand_id)
            .bind(now)
            .execute()
            .await?;
            for n in 0..2 {
                let variant_id = VariantId::new();
                tx.query(
                    "INSERT INTO variants (id, organization_id, brand_id, product_id, sku, title, price_amount, currency, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, 'Default', 1500, 'USD', $6, $6)",
                )
                .bind(variant_id)
                .bind(organization_id)
                .bind(brand_id)
                .bind(product_id)
                .bind(format!("SKU-{n}"))
                .bind(now)
                .execute()
                .await?;
                variants.push(Variant {
                    id: variant_id.to_string(),
                    sku: format!("SKU-{n}"),
                    title: "Bench Tee".into(),
                    price: 1500,
                });
            }
        }
        tx.commit().await?;
        Ok(Fixture {
            email: String::new(),
            password: String::new(),
            token: String::new(),
            organization_id: organization_id.to_string(),
            brand_id: brand_id.to_string(),
            brand_slug: String::new(),
            currency: "USD".into(),
            variants,
        })
    }

    async fn numbers(db: &Db, brand_id: BrandId) -> anyhow::Result<Vec<i64>> {
        Ok(db.read("SELECT number FROM orders WHERE brand_id = $1 ORDER BY number").bind(brand_id).scalars().await?)
    }

    #[tokio::test]
    async fn the_sql_fill_tops_the_brand_up_and_continues_its_order_numbers() -> anyhow::Result<()> {
        let test_db = TestDb::new().await;
        let db = &test_db.db;
        let fixture = brand_with_catalog(db).await?;
        let brand_id = BrandId::from_str(&fixture.brand_id)?;

        // No checkout yet: the fill starts the sequence at #1001.
        let first = sql(db, &fixture, 700, 2).await?;
        assert_eq!((first.before, first.added), (0, 700));
        assert_eq!(numbers(db, brand_id).await?, (1001..=1700).collect::<Vec<_>>());

        // Already at the target: nothing to add.
        assert_eq!(sql(db, &fixture, 650, 2).await?.added, 0);

        // Another 300 continue after the counter's last number.
        let second = sql(db, &fixture, 1000, 2).await?;
        assert_eq!((second.before, second.added), (700, 300));
        assert_eq!(numbers(db, brand_id).await?, (1001..=2000).collect::<Vec<_>>());
        let items: i64 =
            db.read("SELECT COUNT(*) FROM order_items WHERE brand_id = $1").bind(brand_id).scalar().await?;
        assert_eq!(items, 2000);
        Ok(())
    }
}
