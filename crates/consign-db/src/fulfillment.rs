//! Fulfillment orders (one per warehouse holding an order's stock) and the
//! shipments that take quantities of their items.
//!
//! Shipping consumes the hold: `on_hand` and `reserved` go down together,
//! with a ledger row. A fulfillment order item never ships more than it
//! has: the conditional update on `shipped_quantity` decides under
//! concurrency. The order's `fulfillment_status` is recomputed from its
//! items after every shipment change.

use consign_domain::order::tracking_url;
use consign_domain::status::{FulfillmentOrderStatus, FulfillmentStatus, Lifecycle, OrderStatus, ShipmentStatus};
use consign_domain::{
    BrandId, EventType, FulfillmentOrderId, FulfillmentOrderItemId, OrderId, OrderItemId, OrganizationId, ShipmentId,
    Timestamp, VariantId, WarehouseId,
};
use serde::Serialize;
use serde_json::json;

use crate::orders::OrderRow;
use crate::orders::changes::lock_order;
use crate::orders::reservations::Held;
use crate::{Db, DbError, DbResult, NewEvent, Scope, Tx};

/// Recomputes an order's `fulfillment_status` (and `completed`) from its
/// fulfillment order items and shipments, recording an event when it moves.
async fn sync_order_fulfillment(tx: &mut Tx, order: &OrderRow, scope: &Scope) -> DbResult<()> {
    let (ordered, shipped): (i64, i64) = tx
        .query(
            "SELECT (SELECT CAST(COALESCE(SUM(quantity), 0) AS BIGINT) FROM order_items WHERE order_id = $1),
                    (SELECT CAST(COALESCE(SUM(si.quantity), 0) AS BIGINT) FROM shipment_items si JOIN shipments s ON s.id = si.shipment_id
                      WHERE s.order_id = $1 AND s.status <> 'cancelled')",
        )
        .bind(order.id)
        .fetch_one()
        .await?;
    let (live, delivered): (i64, i64) = tx
        .query(
            "SELECT COUNT(*), CAST(COALESCE(SUM(CASE WHEN status = 'delivered' THEN 1 ELSE 0 END), 0) AS BIGINT) FROM shipments
              WHERE order_id = $1 AND status <> 'cancelled'",
        )
        .bind(order.id)
        .fetch_one()
        .await?;
    let target = if shipped == 0 {
        FulfillmentStatus::Unfulfilled
    } else if shipped < ordered {
        FulfillmentStatus::PartiallyShipped
    } else if live > 0 && delivered == live {
        FulfillmentStatus::Delivered
    } else {
        FulfillmentStatus::Shipped
    };
    if target == order.fulfillment_status {
        return Ok(());
    }
    let completed = target == FulfillmentStatus::Delivered
        && matches!(order.payment_status, consign_domain::status::PaymentStatus::Paid)
        && order.status == OrderStatus::Open;
    let status = if completed { OrderStatus::Completed } else { order.status };
    tx.query(
        "UPDATE orders SET fulfillment_status = $1, status = $2, version = version + 1, updated_at = $3 WHERE id = $4",
    )
    .bind(target)
    .bind(status)
    .bind(Timestamp::now())
    .bind(order.id)
    .execute()
    .await?;
    let event_type = match target {
        FulfillmentStatus::PartiallyShipped => EventType::OrderPartiallyShipped,
        FulfillmentStatus::Shipped => EventType::OrderShipped,
        FulfillmentStatus::Delivered => EventType::OrderDelivered,
        FulfillmentStatus::Returned => EventType::OrderReturned,
        FulfillmentStatus::Unfulfilled => EventType::OrderUnfulfilled,
    };
    tx.record_event(NewEvent {
        organization_id: order.organization_id,
        brand_id: Some(order.brand_id),
        event_type,
        aggregate_type: "order",
        aggregate_id: order.id.to_string(),
        payload: json!({"fulfillment_status": target, "shipped_units": shipped, "ordered_units": ordered}),
        actor: scope.principal().actor_id(),
    })
    .await?;
    if completed {
        tx.record_event(NewEvent {
            organization_id: order.organization_id,
            brand_id: Some(order.brand_id),
            event_type: EventType::OrderCompleted,
            aggregate_type: "order",
            aggregate_id: order.id.to_string(),
            payload: json!({}),
            actor: scope.principal().actor_id(),
        })
        .await?;
    }
    Ok(())
}

/// A line of a fulfillment order.
#[derive(Clone, Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct FulfillmentOrderItem {
    /// Id.
    pub id: FulfillmentOrderItemId,
    #[serde(skip)]
    pub(crate) fulfillment_order_id: FulfillmentOrderId,
    /// The order line.
    pub order_item_id: OrderItemId,
    /// Its variant.
    pub variant_id: VariantId,
    /// Units to ship from this warehouse.
    pub quantity: i64,
    /// Units shipped.
    pub shipped_quantity: i64,
    /// Units left to ship.
    pub remaining: i64,
}

/// One warehouse's share of an order.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct FulfillmentOrder {
    /// Id.
    pub id: FulfillmentOrderId,
    /// The order.
    pub order_id: OrderId,
    /// The warehouse that ships it.
    pub warehouse_id: WarehouseId,
    /// Status.
    pub status: FulfillmentOrderStatus,
    /// Lines.
    pub items: Vec<FulfillmentOrderItem>,
    /// Version.
    pub version: i64,
    /// Created at.
    pub created_at: Timestamp,
    /// Changed at.
    pub updated_at: Timestamp,
}

#[derive(sqlx::FromRow)]
struct FulfillmentOrderRow {
    id: FulfillmentOrderId,
    organization_id: OrganizationId,
    brand_id: BrandId,
    order_id: OrderId,
    warehouse_id: WarehouseId,
    status: FulfillmentOrderStatus,
    version: i64,
    created_at: Timestamp,
    updated_at: Timestamp,
}

const FO_COLUMNS: &str =
    "id, organization_id, brand_id, order_id, warehouse_id, status, version, created_at, updated_at";
const FO_ITEM_COLUMNS: &str = "id, fulfillment_order_id, order_item_id, variant_id, quantity, shipped_quantity, quantity - shipped_quantity AS remaining";

/// Creates the fulfillment orders of a paid order, one per warehouse that
/// holds its stock. Idempotent: an order that has them is left alone. Run
/// by the `fulfillment.create_for_order` job.
pub async fn create_for_order(db: &Db, order_id: OrderId) -> DbResult<usize> {
    let scope = Scope::system();
    let mut tx = db.begin().await?;
    let order = lock_order(&mut tx, &scope, order_id).await?;
    let existing: i64 = tx
        .query("SELECT COUNT(*) FROM fulfillment_orders WHERE order_id = $1 AND status <> 'cancelled'")
        .bind(order_id)
        .scalar()
        .await?;
    if existing > 0 || order.status != OrderStatus::Open {
        tx.commit().await?;
        return Ok(0);
    }
    let held: Vec<Held> = tx
        .query(
            "SELECT order_item_id, variant_id, warehouse_id, quantity FROM reservations
              WHERE order_id = $1 AND status = 'active' ORDER BY warehouse_id, order_item_id",
        )
        .bind(order_id)
        .fetch_all()
        .await?;
    let now = Timestamp::now();
    let mut created = 0;
    let mut current: Option<(WarehouseId, FulfillmentOrderId)> = None;
    for line in &held {
        let fulfillment_order_id = match current {
            Some((warehouse_id, id)) if warehouse_id == line.warehouse_id => id,
            _ => {
                let id = FulfillmentOrderId::new();
                tx.query(
                    "INSERT INTO fulfillment_orders (id, organization_id, brand_id, order_id, warehouse_id, status, version, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, 'open', 1, $6, $6)",
                )
                .bind(id)
                .bind(order.organization_id)
                .bind(order.brand_id)
                .bind(order_id)
                .bind(line.warehouse_id)
                .bind(now)
                .execute()
                .await?;
                tx.record_event(NewEvent {
                    organization_id: order.organization_id,
                    brand_id: Some(order.brand_id),
                    event_type: EventType::FulfillmentOrderCreated,
                    aggregate_type: "fulfillment_order",
                    aggregate_id: id.to_string(),
                    payload: json!({"order_id": order_id, "warehouse_id": line.warehouse_id}),
                    actor: "system".into(),
                })
                .await?;
                created += 1;
                current = Some((line.warehouse_id, id));
                id
            }
        };
        tx.query(
            "INSERT INTO fulfillment_order_items (id, organization_id, brand_id, fulfillment_order_id, order_item_id, variant_id, quantity, shipped_quantity)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 0)",
        )
        .bind(FulfillmentOrderItemId::new())
        .bind(order.organization_id)
        .bind(order.brand_id)
        .bind(fulfillment_order_id)
        .bind(line.order_item_id)
        .bind(line.variant_id)
        .bind(line.quantity)
        .execute()
        .await?;
    }
    tx.commit().await?;
    Ok(created)
}

/// The fulfillment orders of an order the caller sees.
pub async fn for_order(db: &Db, scope: &Scope, order_id: OrderId) -> DbResult<Vec<FulfillmentOrder>> {
    let brand_id: BrandId = db.read("SELECT brand_id FROM orders WHERE id = $1").bind(order_id).scalar().await?;
    scope.check_order(order_id, brand_id)?;
    let rows: Vec<FulfillmentOrderRow> = db
        .read_built(format!("SELECT {FO_COLUMNS} FROM fulfillment_orders WHERE order_id = $1 ORDER BY id"))
        .bind(order_id)
        .fetch_all()
        .await?;
    let items: Vec<FulfillmentOrderItem> = db
        .read_built(format!(
            "SELECT {FO_ITEM_COLUMNS} FROM fulfillment_order_items
              WHERE fulfillment_order_id IN (SELECT id FROM fulfillment_orders WHERE order_id = $1) ORDER BY id"
        ))
        .bind(order_id)
        .fetch_all()
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| FulfillmentOrder {
            items: items.iter().filter(|i| i.fulfillment_order_id == row.id).cloned().collect(),
            id: row.id,
            order_id: row.order_id,
            warehouse_id: row.warehouse_id,
            status: row.status,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
        .collect())
}

/// A parcel.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Shipment {
    /// Id.
    pub id: ShipmentId,
    /// The order.
    pub order_id: OrderId,
    /// The fulfillment order it ships from.
    pub fulfillment_order_id: FulfillmentOrderId,
    /// Status.
    pub status: ShipmentStatus,
    /// Carrier code, such as `ups`.
    pub carrier: String,
    /// Tracking number.
    pub tracking_number: String,
    /// The carrier's tracking page, for known carriers.
    pub tracking_url: Option<String>,
    /// What it carries.
    pub items: Vec<ShipmentItem>,
    /// Version.
    pub version: i64,
    /// Created at.
    pub created_at: Timestamp,
    /// Changed at.
    pub updated_at: Timestamp,
}

/// Units of an order line in a shipment.
#[derive(Clone, Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ShipmentItem {
    /// The order line.
    pub order_item_id: OrderItemId,
    /// Units.
    pub quantity: i64,
}

#[derive(sqlx::FromRow)]
struct ShipmentRow {
    id: ShipmentId,
    organization_id: OrganizationId,
    brand_id: BrandId,
    order_id: OrderId,
    fulfillment_order_id: FulfillmentOrderId,
    status: ShipmentStatus,
    carrier: String,
    tracking_number: String,
    tracking_url: Option<String>,
    version: i64,
    created_at: Timestamp,
    updated_at: Timestamp,
}

const SHIPMENT_COLUMNS: &str =
    "id, organization_id, brand_id, order_id, fulfillment_order_id, status, carrier, tracking_number,
    tracking_url, version, created_at, updated_at";

/// A shipment to create.
pub struct NewShipment {
    /// (order line, units) pairs.
    pub items: Vec<(OrderItemId, i64)>,
    /// Carrier code, lowercased.
    pub carrier: String,
    /// Tracking number.
    pub tracking_number: String,
}

/// Ships quantities of a fulfillment order's items: never more than
/// remains; consumes the stock hold; moves the fulfillment order and the
/// order's `fulfillment_status` along.
pub async fn create_shipment(
    db: &Db,
    scope: &Scope,
    fulfillment_order_id: FulfillmentOrderId,
    shipment: NewShipment,
) -> DbResult<Shipment> {
    if shipment.items.is_empty() {
        return Err(DbError::invalid("items", "must ship at least one item"));
    }
    let shipment_id = ShipmentId::new();
    let mut tx = db.begin().await?;
    let sql = format!("SELECT {FO_COLUMNS} FROM fulfillment_orders WHERE id = $1{}", tx.lock_clause());
    let fo: FulfillmentOrderRow = tx.query_built(sql).bind(fulfillment_order_id).fetch_one().await?;
    if !scope.grants().sees_brand(fo.brand_id) {
        return Err(DbError::NotFound);
    }
    let order = lock_order(&mut tx, scope, fo.order_id).await?;
    if order.status != OrderStatus::Open {
        return Err(DbError::transition(format!("a {} order cannot ship", order.status)));
    }
    if !matches!(fo.status, FulfillmentOrderStatus::Open | FulfillmentOrderStatus::InProgress) {
        return Err(DbError::transition(format!("a {} fulfillment order cannot ship", fo.status)));
    }
    let now = Timestamp::now();
    let url = tracking_url(&shipment.carrier, &shipment.tracking_number);
    tx.query(
        "INSERT INTO shipments (id, organization_id, brand_id, order_id, fulfillment_order_id, status, carrier, tracking_number,
                                tracking_url, address, version, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, 'ready', $6, $7, $8, $9, 1, $10, $10)",
    )
    .bind(shipment_id)
    .bind(fo.organization_id)
    .bind(fo.brand_id)
    .bind(fo.order_id)
    .bind(fulfillment_order_id)
    .bind(shipment.carrier.clone())
    .bind(shipment.tracking_number.clone())
    .bind(url.clone())
    .bind(order.shipping_address.clone())
    .bind(now)
    .execute()
    .await?;
    let actor = scope.principal().actor_id();
    for (index, (order_item_id, quantity)) in shipment.items.iter().enumerate() {
        let field = format!("items[{index}].quantity");
        if *quantity <= 0 {
            return Err(DbError::invalid(field, "must be greater than zero"));
        }
        let line: Option<(FulfillmentOrderItemId, VariantId)> = tx
            .query(
                "UPDATE fulfillment_order_items SET shipped_quantity = shipped_quantity + $1
                  WHERE fulfillment_order_id = $2 AND order_item_id = $3 AND shipped_quantity + $1 <= quantity
              RETURNING id, variant_id",
            )
            .bind(*quantity)
            .bind(fulfillment_order_id)
            .bind(*order_item_id)
            .fetch_optional()
            .await?;
        let (fo_item_id, variant_id) =
            line.ok_or_else(|| DbError::invalid(field, "is more than remains to ship of this item here"))?;
        tx.query(
            "INSERT INTO shipment_items (id, organization_id, brand_id, shipment_id, fulfillment_order_item_id, order_item_id, quantity)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(consign_domain::ShipmentItemId::new())
        .bind(fo.organization_id)
        .bind(fo.brand_id)
        .bind(shipment_id)
        .bind(fo_item_id)
        .bind(*order_item_id)
        .bind(*quantity)
        .execute()
        .await?;
        let held =
            Held { order_item_id: *order_item_id, variant_id, warehouse_id: fo.warehouse_id, quantity: *quantity };
        crate::orders::reservations::consume(&mut tx, &held, &actor, &shipment_id.to_string()).await?;
    }
    let left: i64 = tx
        .query("SELECT CAST(COALESCE(SUM(quantity - shipped_quantity), 0) AS BIGINT) FROM fulfillment_order_items WHERE fulfillment_order_id = $1")
        .bind(fulfillment_order_id)
        .scalar()
        .await?;
    let fo_status = fo.status.check(if left == 0 {
        FulfillmentOrderStatus::Shipped
    } else {
        FulfillmentOrderStatus::InProgress
    })?;
    tx.query("UPDATE fulfillment_orders SET status = $1, version = version + 1, updated_at = $2 WHERE id = $3")
        .bind(fo_status)
        .bind(now)
        .bind(fulfillment_order_id)
        .execute()
        .await?;
    tx.record_event(NewEvent {
        organization_id: fo.organization_id,
        brand_id: Some(fo.brand_id),
        event_type: EventType::ShipmentCreated,
        aggregate_type: "shipment",
        aggregate_id: shipment_id.to_string(),
        payload: json!({"order_id": fo.order_id, "fulfillment_order_id": fulfillment_order_id, "carrier": shipment.carrier,
                        "tracking_number": shipment.tracking_number, "tracking_url": url,
                        "items": shipment.items.iter().map(|(id, q)| json!({"order_item_id": id, "quantity": q})).collect::<Vec<_>>()}),
        actor: actor.clone(),
    })
    .await?;
    sync_order_fulfillment(&mut tx, &order, scope).await?;
    tx.record_audit(scope.audit(
        fo.organization_id,
        Some(fo.brand_id),
        "shipment.create",
        "shipment",
        shipment_id.to_string(),
    ))
    .await?;
    tx.commit().await?;
    get_shipment(db, scope, shipment_id).await
}

/// One shipment the caller sees.
pub async fn get_shipment(db: &Db, scope: &Scope, shipment_id: ShipmentId) -> DbResult<Shipment> {
    let row: ShipmentRow = db
        .read_built(format!("SELECT {SHIPMENT_COLUMNS} FROM shipments WHERE id = $1"))
        .bind(shipment_id)
        .fetch_one()
        .await?;
    scope.check_order(row.order_id, row.brand_id)?;
    let items: Vec<ShipmentItem> = db
        .read("SELECT order_item_id, quantity FROM shipment_items WHERE shipment_id = $1 ORDER BY id")
        .bind(shipment_id)
        .fetch_all()
        .await?;
    Ok(shipment_from(row, items))
}

fn shipment_from(row: ShipmentRow, items: Vec<ShipmentItem>) -> Shipment {
    Shipment {
        id: row.id,
        order_id: row.order_id,
        fulfillment_order_id: row.fulfillment_order_id,
        status: row.status,
        carrier: row.carrier,
        tracking_number: row.tracking_number,
        tracking_url: row.tracking_url,
        items,
        version: row.version,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

/// The shipments of an order the caller sees.
pub async fn shipments_for_order(db: &Db, scope: &Scope, order_id: OrderId) -> DbResult<Vec<Shipment>> {
    let brand_id: BrandId = db.read("SELECT brand_id FROM orders WHERE id = $1").bind(order_id).scalar().await?;
    scope.check_order(order_id, brand_id)?;
    let rows: Vec<ShipmentRow> = db
        .read_built(format!("SELECT {SHIPMENT_COLUMNS} FROM shipments WHERE order_id = $1 ORDER BY id"))
        .bind(order_id)
        .fetch_all()
        .await?;
    #[derive(sqlx::FromRow)]
    struct Line {
        shipment_id: ShipmentId,
        order_item_id: OrderItemId,
        quantity: i64,
    }
    let lines: Vec<Line> = db
        .read(
            "SELECT si.shipment_id, si.order_item_id, si.quantity FROM shipment_items si JOIN shipments s ON s.id = si.shipment_id
              WHERE s.order_id = $1 ORDER BY si.id",
        )
        .bind(order_id)
        .fetch_all()
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let items = lines
                .iter()
                .filter(|l| l.shipment_id == row.id)
                .map(|l| ShipmentItem { order_item_id: l.order_item_id, quantity: l.quantity })
                .collect();
            shipment_from(row, items)
        })
        .collect())
}

/// Moves a shipment along its lifecycle (`in_transit`, `delivered`,
/// `exception`); the order follows (`delivered`, `completed`).
pub async fn set_shipment_status(
    db: &Db,
    scope: &Scope,
    shipment_id: ShipmentId,
    next: ShipmentStatus,
) -> DbResult<Shipment> {
    if next == ShipmentStatus::Cancelled {
        return Err(DbError::transition(
            "a shipment whose stock has left cannot be cancelled; record a return instead",
        ));
    }
    let mut tx = db.begin().await?;
    let sql = format!("SELECT {SHIPMENT_COLUMNS} FROM shipments WHERE id = $1{}", tx.lock_clause());
    let row: ShipmentRow = tx.query_built(sql).bind(shipment_id).fetch_one().await?;
    if !scope.grants().sees_brand(row.brand_id) {
        return Err(DbError::NotFound);
    }
    let status = row.status.check(next)?;
    let order = lock_order(&mut tx, scope, row.order_id).await?;
    tx.query("UPDATE shipments SET status = $1, version = version + 1, updated_at = $2 WHERE id = $3")
        .bind(status)
        .bind(Timestamp::now())
        .bind(shipment_id)
        .execute()
        .await?;
    let event_type = match status {
        ShipmentStatus::InTransit => EventType::ShipmentInTransit,
        ShipmentStatus::Delivered => EventType::ShipmentDelivered,
        ShipmentStatus::Exception => EventType::ShipmentException,
        ShipmentStatus::Ready => EventType::ShipmentReady,
        ShipmentStatus::Draft => EventType::ShipmentDraft,
        ShipmentStatus::Cancelled => EventType::ShipmentCancelled,
    };
    tx.record_event(NewEvent {
        organization_id: row.organization_id,
        brand_id: Some(row.brand_id),
        event_type,
        aggregate_type: "shipment",
        aggregate_id: shipment_id.to_string(),
        payload: json!({"order_id": row.order_id, "from": row.status, "to": status, "tracking_url": row.tracking_url}),
        actor: scope.principal().actor_id(),
    })
    .await?;
    let mut audit = scope.audit(
        row.organization_id,
        Some(row.brand_id),
        "shipment.set_status",
        "shipment",
        shipment_id.to_string(),
    );
    audit.before = Some(json!({"status": row.status}));
    audit.after = Some(json!({"status": status}));
    tx.record_audit(audit).await?;
    sync_order_fulfillment(&mut tx, &order, scope).await?;
    tx.commit().await?;
    get_shipment(db, scope, shipment_id).await
}
