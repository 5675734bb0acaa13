//! Placing an order from the public storefront: one transaction that checks
//! the catalog, holds stock, numbers the order and records its event.

use std::collections::HashMap;

use consign_domain::money;
use consign_domain::order::{Address, Customer, MAX_LINE_QUANTITY};
use consign_domain::status::{FulfillmentStatus, OrderStatus, PaymentStatus, ProductStatus};
use consign_domain::{BrandId, EventType, OrderId, OrderItemId, OrganizationId, Timestamp, VariantId};
use serde_json::json;

use super::reservations::{self, Held, Hold};
use super::{Order, OrderItem, OrderRow};
use crate::{Db, DbError, DbResult, NewEvent, Scope, Tx};

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
    /// Where to send a bank transfer, in the brand's words.
    pub bank_details: Option<String>,
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
    db.read(
        "SELECT id, organization_id, name, slug, currency, reservation_ttl_seconds, manual_reservation_ttl_seconds,
                bank_details
           FROM brands WHERE slug = $1",
    )
    .bind(slug.to_owned())
    .fetch_one()
    .await
}

#[derive(Clone, sqlx::FromRow)]
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

/// A line that passed the catalog checks: its new item's id, what it
/// sells, how many and its total.
struct Line {
    item_id: OrderItemId,
    sellable: Sellable,
    quantity: i64,
    total: i64,
}

/// Places an order: `open`, `unpaid`, its stock held for the brand's hold
/// of the payment method ([`StorefrontBrand::hold_seconds`]). Fails with `Invalid` for an unknown or
/// unsellable SKU and `InsufficientStock` naming every short SKU.
pub async fn place_order(db: &Db, brand: &StorefrontBrand, checkout: NewCheckout) -> DbResult<Order> {
    let mut tx = db.begin().await?;
    let order = place(&mut tx, brand, checkout).await?;
    tx.commit().await?;
    Ok(order)
}

/// [`place_order`] inside a transaction the caller commits (the storefront
/// commits the idempotency key's claim and answer with it), with the scope
/// of the new order's customer: what its access token will open, handed to
/// the placer so the payment that follows needs no lookup by token.
pub async fn place_order_in(tx: &mut Tx, brand: &StorefrontBrand, checkout: NewCheckout) -> DbResult<(Order, Scope)> {
    let order = place(tx, brand, checkout).await?;
    let customer = Scope::for_customer(order.id);
    Ok((order, customer))
}

async fn place(tx: &mut Tx, brand: &StorefrontBrand, checkout: NewCheckout) -> DbResult<Order> {
    let quantities = sum_lines(checkout.lines.iter().map(|line| (line.sku.as_str(), line.quantity)))?;
    let now = Timestamp::now();
    let shipping_address = serde_json::to_string(&checkout.shipping_address).map_err(anyhow::Error::from)?;
    let lines = check_sellable(tx, brand.id, &quantities, &checkout.customer.email, now).await?;
    let subtotal = subtotal(&lines)?;
    // Stock first: a short SKU fails here, before anything is written.
    let held = hold_stock(tx, brand.id, &lines).await?;
    // Gapless numbers: the counter row is locked by this transaction until
    // it commits or rolls back, so it is taken as late as possible to keep
    // concurrent checkouts of one brand moving.
    let number = next_number(tx, brand).await?;
    let row = new_order_row(brand, &checkout, number, subtotal, shipping_address, now);
    insert_order(tx, &row, &checkout.access_token_hash).await?;
    let items = order_items(row.id, &lines);
    insert_items(tx, &row, &items).await?;
    reservations::record_holds(tx, row.organization_id, row.brand_id, row.id, &held).await?;
    record_created(tx, &row).await?;
    // Built from what was written, not read back: one round trip fewer.
    Ok(row.into_order(items))
}

/// Checks every requested line against the brand's catalog, in request
/// order: the SKU exists, is for sale (or on early access for this
/// customer's email) and its line total fits. Gives each line its new
/// item's id.
async fn check_sellable(
    tx: &mut Tx,
    brand_id: BrandId,
    quantities: &[(String, i64)],
    customer_email: &str,
    now: Timestamp,
) -> DbResult<Vec<Line>> {
    let mut query = tx.query(
        "SELECT v.id AS variant_id, v.sku, p.title AS product_title, v.title AS variant_title, v.price_amount,
                p.status, p.available_at, p.early_access_emails
           FROM variants v JOIN products p ON p.id = v.product_id
          WHERE v.brand_id = ",
    );
    query.push_bind(brand_id).push(" AND ");
    query.push_in("v.sku", quantities.iter().map(|(sku, _)| sku.clone()));
    let found: Vec<Sellable> = query.fetch_all().await?;
    let found: HashMap<&str, &Sellable> = found.iter().map(|s| (s.sku.as_str(), s)).collect();
    let mut lines = Vec::new();
    for (index, (sku, quantity)) in quantities.iter().enumerate() {
        let field = format!("items[{index}].sku");
        let sellable =
            found.get(sku.as_str()).ok_or_else(|| DbError::invalid(&field, format!("no product has the SKU {sku}")))?;
        if sellable.status != ProductStatus::Active {
            return Err(DbError::invalid(field, format!("{sku} is not for sale")));
        }
        if sellable.available_at.is_some_and(|at| at > now) {
            let early: Vec<String> = serde_json::from_str(&sellable.early_access_emails).unwrap_or_default();
            if !early.iter().any(|e| e.eq_ignore_ascii_case(customer_email)) {
                return Err(DbError::invalid(field, format!("{sku} is not on sale yet")));
            }
        }
        let total = money::line_total(sellable.price_amount, *quantity).ok_or_else(|| {
            DbError::invalid(format!("items[{index}].quantity"), too_much(sku, sellable.price_amount, *quantity))
        })?;
        lines.push(Line { item_id: OrderItemId::new(), sellable: (*sellable).clone(), quantity: *quantity, total });
    }
    Ok(lines)
}

/// The sum of the line totals, refused past the largest amount.
fn subtotal(lines: &[Line]) -> DbResult<i64> {
    money::sum(lines.iter().map(|line| line.total)).ok_or_else(|| {
        DbError::invalid("items", format!("the order's total exceeds the largest amount ({})", money::MAX_AMOUNT))
    })
}

/// Holds the stock of every line (see [`reservations::hold`]).
async fn hold_stock(tx: &mut Tx, brand_id: BrandId, lines: &[Line]) -> DbResult<Vec<Held>> {
    let holds: Vec<Hold> = lines
        .iter()
        .map(|line| Hold {
            order_item_id: line.item_id,
            variant_id: line.sellable.variant_id,
            sku: line.sellable.sku.clone(),
            quantity: line.quantity,
        })
        .collect();
    reservations::hold(tx, brand_id, &holds).await
}

/// Takes the brand's next order number (the first is 1001), locking its
/// counter row until the transaction ends.
async fn next_number(tx: &mut Tx, brand: &StorefrontBrand) -> DbResult<i64> {
    tx.query(
        "INSERT INTO order_counters (brand_id, organization_id, last_number) VALUES ($1, $2, 1001)
         ON CONFLICT (brand_id) DO UPDATE SET last_number = order_counters.last_number + 1
         RETURNING last_number",
    )
    .bind(brand.id)
    .bind(brand.organization_id)
    .scalar()
    .await
}

/// The new order's row: `open`, `unpaid`, `unfulfilled`, version 1, its
/// stock held for the payment method's hold from `now`.
fn new_order_row(
    brand: &StorefrontBrand,
    checkout: &NewCheckout,
    number: i64,
    subtotal: i64,
    shipping_address: String,
    now: Timestamp,
) -> OrderRow {
    let expires_at = now.plus_seconds(brand.hold_seconds(&checkout.payment_provider));
    OrderRow {
        id: checkout.order_id,
        organization_id: brand.organization_id,
        brand_id: brand.id,
        number,
        status: OrderStatus::Open,
        payment_status: PaymentStatus::Unpaid,
        fulfillment_status: FulfillmentStatus::Unfulfilled,
        customer_name: checkout.customer.name.clone(),
        customer_email: checkout.customer.email.clone(),
        customer_phone: checkout.customer.phone.clone(),
        shipping_address,
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
    }
}

/// Writes the new order's row, with the hash of its access token.
async fn insert_order(tx: &mut Tx, row: &OrderRow, access_token_hash: &str) -> DbResult<()> {
    tx.query(
        "INSERT INTO orders (id, organization_id, brand_id, number, status, payment_status, fulfillment_status,
                             customer_name, customer_email, customer_phone, shipping_address, currency,
                             subtotal, total, payment_provider, access_token_hash, reservation_expires_at,
                             version, created_at, updated_at)
         VALUES ($1, $2, $3, $4, 'open', 'unpaid', 'unfulfilled', $5, $6, $7, $8, $9, $10, $10, $11, $12, $13, 1, $14, $14)",
    )
    .bind(row.id)
    .bind(row.organization_id)
    .bind(row.brand_id)
    .bind(row.number)
    .bind(row.customer_name.clone())
    .bind(row.customer_email.clone())
    .bind(row.customer_phone.clone())
    .bind(row.shipping_address.clone())
    .bind(row.currency.clone())
    .bind(row.subtotal)
    .bind(row.payment_provider.clone())
    .bind(access_token_hash.to_owned())
    .bind(row.reservation_expires_at)
    .bind(row.created_at)
    .execute()
    .await?;
    Ok(())
}

/// The order's items, with their price snapshots and titles.
fn order_items(order_id: OrderId, lines: &[Line]) -> Vec<OrderItem> {
    lines
        .iter()
        .map(|line| {
            let sellable = &line.sellable;
            OrderItem {
                id: line.item_id,
                order_id,
                variant_id: sellable.variant_id,
                sku: sellable.sku.clone(),
                title: if sellable.variant_title.is_empty() || sellable.variant_title == sellable.product_title {
                    sellable.product_title.clone()
                } else {
                    format!("{} — {}", sellable.product_title, sellable.variant_title)
                },
                quantity: line.quantity,
                unit_price: sellable.price_amount,
                total: line.total,
                price_source: "price_book".to_owned(),
            }
        })
        .collect()
}

/// Writes the order's items, in request order. All lines in one statement:
/// one round trip whatever the count.
async fn insert_items(tx: &mut Tx, row: &OrderRow, items: &[OrderItem]) -> DbResult<()> {
    let mut insert = tx.query(
        "INSERT INTO order_items (id, organization_id, brand_id, order_id, variant_id, sku, title, quantity,
                                  unit_price, total, price_source, position, created_at) VALUES ",
    );
    for (position, item) in items.iter().enumerate() {
        if position > 0 {
            insert.push(", ");
        }
        insert.push("(").push_bind(item.id);
        insert.push(", ").push_bind(row.organization_id);
        insert.push(", ").push_bind(row.brand_id);
        insert.push(", ").push_bind(row.id);
        insert.push(", ").push_bind(item.variant_id);
        insert.push(", ").push_bind(item.sku.clone());
        insert.push(", ").push_bind(item.title.clone());
        insert.push(", ").push_bind(item.quantity);
        insert.push(", ").push_bind(item.unit_price);
        insert.push(", ").push_bind(item.total);
        insert.push(", ").push_bind(item.price_source.clone());
        insert.push(", ").push_bind(position as i64);
        insert.push(", ").push_bind(row.created_at);
        insert.push(")");
    }
    insert.execute().await?;
    Ok(())
}

/// Records the `order.created` event, placed by the customer.
async fn record_created(tx: &mut Tx, row: &OrderRow) -> DbResult<()> {
    tx.record_event(NewEvent {
        organization_id: row.organization_id,
        brand_id: Some(row.brand_id),
        event_type: EventType::OrderCreated,
        aggregate_type: "order",
        aggregate_id: row.id.to_string(),
        payload: json!({"number": format!("#{}", row.number), "total": row.subtotal, "currency": row.currency,
                        "customer_email": row.customer_email, "reservation_expires_at": row.reservation_expires_at}),
        actor: "customer".into(),
    })
    .await?;
    Ok(())
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
