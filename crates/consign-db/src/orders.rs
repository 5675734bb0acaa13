//! Orders: the records, reads and lists. Placing an order is in
//! [`checkout`], changes after placement in [`changes`], unpaid-order expiry
//! in [`expiry`], and the stock an order holds in [`reservations`].
//!
//! Invariants, held by every function that writes an order:
//! - status fields move only through their lifecycles (`consign_domain::status`);
//! - `paid` and `refunded` are the sums of the `payments` ledger, and
//!   `refund_due` and the shown `outstanding` follow from them and the total
//!   ([`consign_domain::ledger`]); every money change settles through
//!   [`money::settle`], so they always add up;
//! - numbers are gapless per brand: allocated in the order's own transaction.

pub mod changes;
pub mod checkout;
pub mod expiry;
pub mod money;
pub mod reservations;

use consign_domain::order::{Address, Customer};
use consign_domain::status::{FulfillmentStatus, OrderStatus, PaymentStatus};
use consign_domain::{BrandId, EventType, Money, NoteId, OrderId, OrderItemId, OrganizationId, Timestamp, VariantId};
use serde::Serialize;

use crate::{Db, DbError, DbResult, Page, PageRequest, Scope};

/// Columns of `orders`, in [`OrderRow`] order.
pub(crate) const ORDER_COLUMNS: &str = "id, organization_id, brand_id, number, status, payment_status, fulfillment_status,
    customer_name, customer_email, customer_phone, shipping_address, currency, subtotal, discount_total, shipping_total,
    tax_total, total, paid, refunded, refund_due, payment_provider, reservation_expires_at, version, created_at, updated_at";

/// An `orders` row.
#[derive(Clone, Debug, sqlx::FromRow)]
pub(crate) struct OrderRow {
    pub id: OrderId,
    pub organization_id: OrganizationId,
    pub brand_id: BrandId,
    pub number: i64,
    pub status: OrderStatus,
    pub payment_status: PaymentStatus,
    pub fulfillment_status: FulfillmentStatus,
    pub customer_name: String,
    pub customer_email: String,
    pub customer_phone: Option<String>,
    pub shipping_address: String,
    pub currency: String,
    pub subtotal: i64,
    pub discount_total: i64,
    pub shipping_total: i64,
    pub tax_total: i64,
    pub total: i64,
    pub paid: i64,
    pub refunded: i64,
    pub refund_due: i64,
    pub payment_provider: String,
    pub reservation_expires_at: Option<Timestamp>,
    pub version: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A line of an order, with its price snapshot.
#[derive(Clone, Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct OrderItem {
    /// Id.
    pub id: OrderItemId,
    #[serde(skip)]
    #[sqlx(rename = "order_id")]
    pub(crate) order_id: OrderId,
    /// The variant bought.
    pub variant_id: VariantId,
    /// Its SKU at the time.
    pub sku: String,
    /// Its title at the time.
    pub title: String,
    /// How many.
    pub quantity: i64,
    /// Unit price snapshot, minor units.
    #[serde(skip)]
    pub(crate) unit_price: i64,
    /// Line total, minor units.
    #[serde(skip)]
    pub(crate) total: i64,
    /// Where the price came from (`price_book`, `regional`, `agreement`, `bespoke`).
    pub price_source: String,
}

/// An order item as the API shows it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct OrderItemView {
    /// The item.
    #[serde(flatten)]
    pub item: OrderItem,
    /// Unit price.
    pub unit_price: Money,
    /// Line total.
    pub total: Money,
}

/// An order as the API shows it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Order {
    /// Id.
    pub id: OrderId,
    /// Human number, such as `#1001`.
    pub number: String,
    /// The brand.
    pub brand_id: BrandId,
    /// Overall status.
    pub status: OrderStatus,
    /// Money status.
    pub payment_status: PaymentStatus,
    /// Goods status.
    pub fulfillment_status: FulfillmentStatus,
    /// Lines.
    pub items: Vec<OrderItemView>,
    /// Customer snapshot.
    pub customer: Customer,
    /// Shipping address snapshot.
    pub shipping_address: Address,
    /// Sum of line totals.
    pub subtotal: Money,
    /// Discounts.
    pub discount_total: Money,
    /// Shipping charged.
    pub shipping_total: Money,
    /// Tax charged.
    pub tax_total: Money,
    /// What the customer pays.
    pub total: Money,
    /// Captured so far.
    pub paid: Money,
    /// Refunded so far.
    pub refunded: Money,
    /// Owed back to the customer (a cancelled paid order, a lowered total).
    pub refund_due: Money,
    /// Still to pay.
    pub outstanding: Money,
    /// The payment provider chosen at checkout.
    pub payment_provider: String,
    /// When an unpaid order's stock hold runs out.
    pub reservation_expires_at: Option<Timestamp>,
    /// Optimistic-concurrency version.
    pub version: i64,
    /// Placed at.
    pub created_at: Timestamp,
    /// Last changed at.
    pub updated_at: Timestamp,
}

impl OrderRow {
    pub(crate) fn money(&self, amount: i64) -> Money {
        Money::new(amount, self.currency.clone())
    }

    pub(crate) fn into_order(self, items: Vec<OrderItem>) -> Order {
        let items = items
            .into_iter()
            .map(|item| OrderItemView { unit_price: self.money(item.unit_price), total: self.money(item.total), item })
            .collect();
        Order {
            id: self.id,
            number: format!("#{}", self.number),
            brand_id: self.brand_id,
            status: self.status,
            payment_status: self.payment_status,
            fulfillment_status: self.fulfillment_status,
            items,
            customer: Customer {
                name: self.customer_name.clone(),
                email: self.customer_email.clone(),
                phone: self.customer_phone.clone(),
            },
            shipping_address: serde_json::from_str(&self.shipping_address).unwrap_or(Address {
                line1: String::new(),
                line2: None,
                city: String::new(),
                region: None,
                postal_code: String::new(),
                country: String::new(),
            }),
            subtotal: self.money(self.subtotal),
            discount_total: self.money(self.discount_total),
            shipping_total: self.money(self.shipping_total),
            tax_total: self.money(self.tax_total),
            total: self.money(self.total),
            paid: self.money(self.paid),
            refunded: self.money(self.refunded),
            refund_due: self.money(self.refund_due),
            outstanding: self.money(
                consign_domain::ledger::Balance::of(self.status, self.total, self.paid, self.refunded).outstanding(),
            ),
            payment_provider: self.payment_provider.clone(),
            reservation_expires_at: self.reservation_expires_at,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

const ITEM_COLUMNS: &str = "id, order_id, variant_id, sku, title, quantity, unit_price, total, price_source";

/// One order the caller sees (staff through its brand, a customer through
/// its token).
pub async fn get(db: &Db, scope: &Scope, order_id: OrderId) -> DbResult<Order> {
    let row: OrderRow =
        db.read_built(format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1")).bind(order_id).fetch_one().await?;
    scope.check_order(row.id, row.brand_id)?;
    let items: Vec<OrderItem> = db
        .read_built(format!("SELECT {ITEM_COLUMNS} FROM order_items WHERE order_id = $1 ORDER BY position"))
        .bind(order_id)
        .fetch_all()
        .await?;
    Ok(row.into_order(items))
}

/// Filters of `GET /orders`.
#[derive(Clone, Debug, Default)]
pub struct OrderFilter {
    /// One brand.
    pub brand_id: Option<BrandId>,
    /// Overall status.
    pub status: Option<OrderStatus>,
    /// Money status.
    pub payment_status: Option<PaymentStatus>,
    /// Goods status: any of these (none: any).
    pub fulfillment_status: Vec<FulfillmentStatus>,
    /// Search: an order number (`1001` or `#1001`), or part of the
    /// customer's name or email, or a SKU or tracking number (whole).
    pub q: Option<String>,
    /// Placed at or after.
    pub created_after: Option<Timestamp>,
    /// Placed before.
    pub created_before: Option<Timestamp>,
}

/// Orders the caller sees, newest first. Two queries per page whatever its
/// size: the orders, then all their items.
pub async fn list(db: &Db, scope: &Scope, filter: &OrderFilter, page: &PageRequest) -> DbResult<Page<Order>> {
    let rows: Vec<OrderRow> = {
        let mut query = db.read_built(format!("SELECT {ORDER_COLUMNS} FROM orders WHERE 1 = 1"));
        scope.push_brand_filter(&mut query, "brand_id");
        if let Some(brand_id) = filter.brand_id {
            query.push(" AND brand_id = ").push_bind(brand_id);
        }
        if let Some(status) = filter.status {
            query.push(" AND status = ").push_bind(status);
        }
        if let Some(status) = filter.payment_status {
            query.push(" AND payment_status = ").push_bind(status);
        }
        if !filter.fulfillment_status.is_empty() {
            query.push(" AND ").push_in("fulfillment_status", filter.fulfillment_status.iter().copied());
        }
        if let Some(q) = filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
            push_search(&mut query, q);
        }
        if let Some(after) = filter.created_after {
            query.push(" AND created_at >= ").push_bind(after);
        }
        if let Some(before) = filter.created_before {
            query.push(" AND created_at < ").push_bind(before);
        }
        if let Some(after) = &page.after {
            query.push(" AND id < ").push_bind(after.clone());
        }
        query.push(" ORDER BY id DESC LIMIT ").push_bind(page.fetch_limit());
        query.fetch_all().await?
    };
    let page = Page::from_rows(rows, page, |o| o.id.to_string());
    let mut items: Vec<OrderItem> = if page.data.is_empty() {
        Vec::new()
    } else {
        let mut query = db.read_built(format!("SELECT {ITEM_COLUMNS} FROM order_items WHERE "));
        query.push_in("order_id", page.data.iter().map(|order| order.id));
        query.push(" ORDER BY order_id, position");
        query.fetch_all().await?
    };
    Ok(page.map(|row| {
        let (mine, rest): (Vec<OrderItem>, Vec<OrderItem>) =
            std::mem::take(&mut items).into_iter().partition(|i| i.order_id == row.id);
        items = rest;
        row.into_order(mine)
    }))
}

/// Narrows `query` (over `orders`) to the search `q`. A number finds that
/// order. Anything else matches part of the customer's name or email, any
/// case, or a line's SKU or a shipment's tracking number, whole; those two
/// go through their own indexes, the rest reads the caller's orders newest
/// first until the page is full.
fn push_search(query: &mut crate::sql::Statement<'_>, q: &str) {
    if let Ok(number) = q.trim_start_matches('#').parse::<i64>() {
        query.push(" AND number = ").push_bind(number);
        return;
    }
    let pattern = crate::sql::like_pattern(&q.to_lowercase());
    query.push(" AND (lower(customer_name) LIKE ").push_bind(pattern.clone()).push(" ESCAPE '\\'");
    query.push(" OR customer_email LIKE ").push_bind(pattern).push(" ESCAPE '\\'");
    query.push(" OR id IN (SELECT order_id FROM order_items WHERE sku = ").push_bind(q.to_uppercase()).push(")");
    query.push(" OR id IN (SELECT order_id FROM shipments WHERE tracking_number = ").push_bind(q.to_owned()).push("))");
}

/// A staff note on an order.
#[derive(Clone, Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Note {
    /// Id.
    pub id: NoteId,
    /// The order.
    pub order_id: OrderId,
    /// Text.
    pub body: String,
    /// Who wrote it.
    pub author: String,
    /// When.
    pub created_at: Timestamp,
}

/// Adds a staff note.
pub async fn add_note(db: &Db, scope: &Scope, order_id: OrderId, body: &str) -> DbResult<Note> {
    let order = get(db, scope, order_id).await?;
    if scope.customer_order().is_some() {
        return Err(DbError::NotFound);
    }
    let organization_id = organization_of(db, order_id).await?;
    let note = Note {
        id: NoteId::new(),
        order_id,
        body: body.to_owned(),
        author: scope.principal().actor_id(),
        created_at: Timestamp::now(),
    };
    let mut tx = db.begin().await?;
    tx.query(
        "INSERT INTO order_notes (id, organization_id, brand_id, order_id, body, author, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(note.id)
    .bind(organization_id)
    .bind(order.brand_id)
    .bind(order_id)
    .bind(note.body.clone())
    .bind(note.author.clone())
    .bind(note.created_at)
    .execute()
    .await?;
    tx.record_event(crate::NewEvent {
        organization_id,
        brand_id: Some(order.brand_id),
        event_type: EventType::OrderNoteAdded,
        aggregate_type: "order",
        aggregate_id: order_id.to_string(),
        payload: serde_json::json!({"note_id": note.id, "body": note.body}),
        actor: note.author.clone(),
    })
    .await?;
    tx.record_audit(scope.audit(
        organization_id,
        Some(order.brand_id),
        "order.add_note",
        "order",
        order_id.to_string(),
    ))
    .await?;
    tx.commit().await?;
    Ok(note)
}

pub(crate) async fn organization_of(db: &Db, order_id: OrderId) -> DbResult<OrganizationId> {
    db.read("SELECT organization_id FROM orders WHERE id = $1").bind(order_id).scalar().await
}

/// How long an order access token holds after the order stops being live
/// (completed, cancelled or expired), counted from its last change: long
/// enough for a late refund or a question about a delivery, and the link
/// in every email sent while the order was live keeps working until then.
pub const ACCESS_TOKEN_DAYS_AFTER_CLOSE: i64 = 90;

/// The scope of an order access token, by the token's SHA-256; none for a
/// rotated-out token, or once the order closed
/// [`ACCESS_TOKEN_DAYS_AFTER_CLOSE`] days ago.
pub async fn scope_for_access_token(db: &Db, token_hash: &str) -> DbResult<Scope> {
    let order: Option<(OrderId, String, Timestamp)> = db
        .read("SELECT id, status, updated_at FROM orders WHERE access_token_hash = $1")
        .bind(token_hash.to_owned())
        .fetch_optional()
        .await?;
    let (order_id, status, updated_at) = order.ok_or(DbError::NotFound)?;
    let closed = matches!(status.as_str(), "completed" | "cancelled" | "expired");
    let lapsed_before = Timestamp::now().plus_seconds(-ACCESS_TOKEN_DAYS_AFTER_CLOSE * 24 * 60 * 60);
    if closed && updated_at < lapsed_before {
        return Err(DbError::NotFound);
    }
    Ok(Scope::for_customer(order_id))
}

/// The order's current access token version (see
/// `consign_app::tokens::order_access_token_version`).
pub async fn access_token_version(db: &Db, order_id: OrderId) -> DbResult<i64> {
    db.read("SELECT access_token_version FROM orders WHERE id = $1").bind(order_id).scalar().await
}

/// Replaces the order's access token with the next version's, for staff of
/// the order (a customer cannot rotate its own link). `hash_of(version)`
/// answers the SHA-256 of that version's token. The old token stops
/// working at once. Answers the new version.
pub async fn rotate_access_token(
    db: &Db,
    scope: &Scope,
    order_id: OrderId,
    hash_of: impl FnOnce(i64) -> String,
) -> DbResult<i64> {
    if scope.customer_order().is_some() {
        return Err(DbError::NotFound);
    }
    let order = get(db, scope, order_id).await?;
    let organization_id = organization_of(db, order_id).await?;
    let mut tx = db.begin().await?;
    let sql = format!("SELECT access_token_version FROM orders WHERE id = $1{}", tx.lock_clause());
    let current: i64 = tx.query_built(sql).bind(order_id).scalar().await?;
    let next = current + 1;
    let hash = hash_of(next);
    tx.query("UPDATE orders SET access_token_version = $1, access_token_hash = $2 WHERE id = $3")
        .bind(next)
        .bind(hash)
        .bind(order_id)
        .execute()
        .await?;
    let mut audit =
        scope.audit(organization_id, Some(order.brand_id), "order.rotate_access_token", "order", order_id.to_string());
    audit.after = Some(serde_json::json!({"access_token_version": next}));
    tx.record_audit(audit).await?;
    // The customer sockets opened with the old token close.
    let revoked = crate::access::AccessRevoked { order_id: Some(order_id), ..Default::default() };
    crate::access::record_revoked(&mut tx, organization_id, revoked).await?;
    tx.commit().await?;
    Ok(next)
}

/// A customer who lost the link to their order asks for it by email and
/// number (the shop's order lookup): when a brand's order has that number
/// and was placed with that email, `order.link_requested` is recorded and
/// its notification sends the link to the order's own address, never to
/// whoever asked. Answers whether an order matched, for the log only: the
/// shop answers the same either way, so the lookup tells no one whether an
/// address ordered.
pub async fn request_link(db: &Db, brand_id: BrandId, number: i64, email: &str) -> DbResult<bool> {
    let found: Option<(OrderId, OrganizationId)> = db
        .read(
            "SELECT id, organization_id FROM orders WHERE brand_id = $1 AND number = $2 AND lower(customer_email) = $3",
        )
        .bind(brand_id)
        .bind(number)
        .bind(email.trim().to_lowercase())
        .fetch_optional()
        .await?;
    let Some((order_id, organization_id)) = found else { return Ok(false) };
    let mut tx = db.begin().await?;
    tx.record_event(crate::NewEvent {
        organization_id,
        brand_id: Some(brand_id),
        event_type: EventType::OrderLinkRequested,
        aggregate_type: "order",
        aggregate_id: order_id.to_string(),
        payload: serde_json::json!({"order_id": order_id, "number": number}),
        actor: "customer".to_owned(),
    })
    .await?;
    tx.commit().await?;
    Ok(true)
}
