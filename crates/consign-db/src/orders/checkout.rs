//! Placing an order from the public storefront: one transaction that checks
//! the catalog, holds stock, numbers the order and records its event.

use std::collections::HashMap;

use consign_domain::money;
use consign_domain::order::{Address, Customer, MAX_LINE_QUANTITY};
use consign_domain::status::{FulfillmentStatus, OrderStatus, PaymentStatus, ProductStatus};
use consign_domain::{BrandId, OrderId, OrderItemId, OrganizationId, Timestamp, VariantId};
use serde_json::json;
use sqlx::QueryBuilder;

use super::reservations::{Hold, StockTx};
use super::{Order, OrderItem, OrderRow};
use crate::{Db, DbError, DbResult, NewEvent, TxExt, db_read, db_write};

/// A line as the customer asks for it.
#[derive(Clone, Debug)]
pub struct RequestedLine {
    /// SKU.
    pub sku: String,
    /// How many (> 0).
    pub quantity: i64,
}

/// A checkout request, validated for shape by the caller.
#[derive(Clone, Debug)]
pub struct NewCheckout {
    /// Lines; the same SKU twice is summed.
    pub lines: Vec<RequestedLine>,
    /// The customer.
    pub customer: Customer,
    /// Where to ship.
    pub shipping_address: Address,
    /// `manual` for now.
    pub payment_provider: String,
    /// The new order's id, chosen by the caller (its access token is
    /// derived from it).
    pub order_id: OrderId,
    /// SHA-256 of the order access token made for the customer.
    pub access_token_hash: String,
}

/// The brand a storefront slug names, as checkout needs it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct StorefrontBrand {
    /// Id.
    pub id: BrandId,
    /// Owner.
    pub organization_id: OrganizationId,
    /// Name.
    pub name: String,
    /// Slug.
    pub slug: String,
    /// Currency.
    pub currency: String,
    /// Stock hold for unpaid orders paid through a card provider.
    pub reservation_ttl_seconds: i64,
    /// Stock hold for unpaid orders paid by bank transfer (`manual`).
    pub manual_reservation_ttl_seconds: i64,
}

impl StorefrontBrand {
    /// How long an unpaid order paying through `provider` holds its stock:
    /// a bank transfer takes days, a card payment minutes.
    pub fn hold_seconds(&self, provider: &str) -> i64 {
        if provider == "manual" { self.manual_reservation_ttl_seconds } else { self.reservation_ttl_seconds }
    }
}

/// A brand by its public slug. Storefront data is public by nature, so no
/// scope: only what a shopper may see is returned.
pub async fn storefront_brand(db: &Db, slug: &str) -> DbResult<StorefrontBrand> {
    Ok(db_read!(db, |conn| {
        sqlx::query_as(
            "SELECT id, organization_id, name, slug, currency, reservation_ttl_seconds, manual_reservation_ttl_seconds
               FROM brands WHERE slug = $1",
        )
        .bind(slug.to_owned())
        .fetch_one(conn)
        .await?
    }))
}

#[derive(sqlx::FromRow)]
struct Sellable {
    variant_id: VariantId,
    sku: String,
    product_title: String,
    variant_title: String,
    price_amount: i64,
    status: ProductStatus,
    available_at: Option<Timestamp>,
    early_access_emails: String,
}

/// Places an order: `open`, `unpaid`, its stock held for the brand's hold
/// of the payment method ([`StorefrontBrand::hold_seconds`]). Fails with `Invalid` for an unknown or
/// unsellable SKU and `InsufficientStock` naming every short SKU.
pub async fn place_order(db: &Db, brand: &StorefrontBrand, checkout: NewCheckout) -> DbResult<Order> {
    let quantities = sum_lines(checkout.lines.iter().map(|line| (line.sku.as_str(), line.quantity)))?;
    let now = Timestamp::now();
    let order_id = checkout.order_id;
    let customer = checkout.customer;
    let shipping_address = serde_json::to_string(&checkout.shipping_address).map_err(anyhow::Error::from)?;
    let (row, items) = db_write!(db, |tx| {
        let mut query = QueryBuilder::new(
            "SELECT v.id AS variant_id, v.sku, p.title AS product_title, v.title AS variant_title, v.price_amount,
                    p.status, p.available_at, p.early_access_emails
               FROM variants v JOIN products p ON p.id = v.product_id
              WHERE v.brand_id = ",
        );
        query.push_bind(brand.id).push(" AND v.sku IN (");
        let mut skus = query.separated(", ");
        for (sku, _) in &quantities {
            skus.push_bind(sku.clone());
        }
        query.push(")");
        let found: Vec<Sellable> = query.build_query_as().fetch_all(&mut **tx).await?;
        let found: HashMap<&str, &Sellable> = found.iter().map(|s| (s.sku.as_str(), s)).collect();

        let mut lines = Vec::new();
        let mut holds = Vec::new();
        for (index, (sku, quantity)) in quantities.iter().enumerate() {
            let field = format!("items[{index}].sku");
            let sellable = found
                .get(sku.as_str())
                .ok_or_else(|| DbError::invalid(&field, format!("no product has the SKU {sku}")))?;
            if sellable.status != ProductStatus::Active {
                return Err(DbError::invalid(field, format!("{sku} is not for sale")));
            }
            if sellable.available_at.is_some_and(|at| at > now) {
                let early: Vec<String> = serde_json::from_str(&sellable.early_access_emails).unwrap_or_default();
                if !early.iter().any(|e| e.eq_ignore_ascii_case(&customer.email)) {
                    return Err(DbError::invalid(field, format!("{sku} is not on sale yet")));
                }
            }
            let item_id = OrderItemId::new();
            holds.push(Hold {
                order_item_id: item_id,
                variant_id: sellable.variant_id,
                sku: sku.clone(),
                quantity: *quantity,
            });
            let line_total = money::line_total(sellable.price_amount, *quantity).ok_or_else(|| {
                DbError::invalid(format!("items[{index}].quantity"), too_much(sku, sellable.price_amount, *quantity))
            })?;
            lines.push((item_id, *sellable, *quantity, line_total));
        }
        let subtotal = money::sum(lines.iter().map(|(_, _, _, total)| *total)).ok_or_else(|| {
            DbError::invalid("items", format!("the order's total exceeds the largest amount ({})", money::MAX_AMOUNT))
        })?;

        // Stock first: a short SKU fails here, before anything is written.
        let held = tx.hold(brand.id, &holds).await?;

        // Gapless numbers: the counter row is locked by this transaction
        // until it commits or rolls back, so it is taken as late as
        // possible to keep concurrent checkouts of one brand moving.
        let number: i64 = sqlx::query_scalar(
            "INSERT INTO order_counters (brand_id, organization_id, last_number) VALUES ($1, $2, 1001)
             ON CONFLICT (brand_id) DO UPDATE SET last_number = order_counters.last_number + 1
             RETURNING last_number",
        )
        .bind(brand.id)
        .bind(brand.organization_id)
        .fetch_one(&mut **tx)
        .await?;

        let expires_at = now.plus_seconds(brand.hold_seconds(&checkout.payment_provider));
        sqlx::query(
            "INSERT INTO orders (id, organization_id, brand_id, number, status, payment_status, fulfillment_status,
                                 customer_name, customer_email, customer_phone, shipping_address, currency,
                                 subtotal, total, payment_provider, access_token_hash, reservation_expires_at,
                                 version, created_at, updated_at)
             VALUES ($1, $2, $3, $4, 'open', 'unpaid', 'unfulfilled', $5, $6, $7, $8, $9, $10, $10, $11, $12, $13, 1, $14, $14)",
        )
        .bind(order_id)
        .bind(brand.organization_id)
        .bind(brand.id)
        .bind(number)
        .bind(customer.name.clone())
        .bind(customer.email.clone())
        .bind(customer.phone.clone())
        .bind(shipping_address.clone())
        .bind(brand.currency.clone())
        .bind(subtotal)
        .bind(checkout.payment_provider.clone())
        .bind(checkout.access_token_hash.clone())
        .bind(expires_at)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        let items: Vec<OrderItem> = lines
            .iter()
            .map(|(item_id, sellable, quantity, line_total)| OrderItem {
                id: *item_id,
                order_id,
                variant_id: sellable.variant_id,
                sku: sellable.sku.clone(),
                title: if sellable.variant_title.is_empty() || sellable.variant_title == sellable.product_title {
                    sellable.product_title.clone()
                } else {
                    format!("{} — {}", sellable.product_title, sellable.variant_title)
                },
                quantity: *quantity,
                unit_price: sellable.price_amount,
                total: *line_total,
                price_source: "price_book".to_owned(),
            })
            .collect();
        // All lines in one statement: one round trip whatever the count.
        let mut insert = QueryBuilder::new(
            "INSERT INTO order_items (id, organization_id, brand_id, order_id, variant_id, sku, title, quantity,
                                      unit_price, total, price_source, position, created_at) ",
        );
        insert.push_values(items.iter().enumerate(), |mut row, (position, item)| {
            row.push_bind(item.id)
                .push_bind(brand.organization_id)
                .push_bind(brand.id)
                .push_bind(order_id)
                .push_bind(item.variant_id)
                .push_bind(item.sku.clone())
                .push_bind(item.title.clone())
                .push_bind(item.quantity)
                .push_bind(item.unit_price)
                .push_bind(item.total)
                .push_bind(item.price_source.clone())
                .push_bind(position as i64)
                .push_bind(now);
        });
        insert.build().execute(&mut **tx).await?;
        tx.record_holds(brand.organization_id, brand.id, order_id, &held).await?;
        tx.record_event(NewEvent {
            organization_id: brand.organization_id,
            brand_id: Some(brand.id),
            event_type: "order.created",
            aggregate_type: "order",
            aggregate_id: order_id.to_string(),
            payload: json!({"number": format!("#{number}"), "total": subtotal, "currency": brand.currency,
                            "customer_email": customer.email, "reservation_expires_at": expires_at}),
            actor: "customer".into(),
        })
        .await?;
        let row = OrderRow {
            id: order_id,
            organization_id: brand.organization_id,
            brand_id: brand.id,
            number,
            status: OrderStatus::Open,
            payment_status: PaymentStatus::Unpaid,
            fulfillment_status: FulfillmentStatus::Unfulfilled,
            customer_name: customer.name.clone(),
            customer_email: customer.email.clone(),
            customer_phone: customer.phone.clone(),
            shipping_address: shipping_address.clone(),
            currency: brand.currency.clone(),
            subtotal,
            discount_total: 0,
            shipping_total: 0,
            tax_total: 0,
            total: subtotal,
            paid: 0,
            refunded: 0,
            refund_due: 0,
            payment_provider: checkout.payment_provider.clone(),
            reservation_expires_at: Some(expires_at),
            version: 1,
            created_at: now,
            updated_at: now,
        };
        (row, items)
    });
    // Built from what was written, not read back: one round trip fewer.
    Ok(row.into_order(items))
}

/// Sums the quantities of lines naming the same SKU, in first-seen order.
/// A summed quantity past [`MAX_LINE_QUANTITY`] is refused on the field of
/// the line that took it over.
pub(crate) fn sum_lines<'a>(lines: impl IntoIterator<Item = (&'a str, i64)>) -> DbResult<Vec<(String, i64)>> {
    let mut quantities: Vec<(String, i64)> = Vec::new();
    for (index, (sku, quantity)) in lines.into_iter().enumerate() {
        let summed = match quantities.iter_mut().find(|(seen, _)| seen == sku) {
            Some((_, summed)) => {
                *summed = summed.saturating_add(quantity);
                *summed
            }
            None => {
                quantities.push((sku.to_owned(), quantity));
                quantity
            }
        };
        if summed > MAX_LINE_QUANTITY {
            return Err(DbError::invalid(
                format!("items[{index}].quantity"),
                format!("an order holds at most {MAX_LINE_QUANTITY} of {sku}"),
            ));
        }
    }
    Ok(quantities)
}

/// Why a line's total is refused.
pub(crate) fn too_much(sku: &str, unit_price: i64, quantity: i64) -> String {
    format!("{quantity} × {unit_price} of {sku} exceeds the largest amount an order may total ({})", money::MAX_AMOUNT)
}
