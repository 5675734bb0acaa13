//! `GET /admin/orders/{id}`: the order page, with its items, payments,
//! fulfillment orders, shipments and timeline.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use consign_app::order_commands;
use consign_db::fulfillment::{self};
use consign_db::orders::Order;
use consign_db::{events, warehouses};
use consign_domain::policy::Action;
use consign_domain::status::{FulfillmentOrderStatus, FulfillmentStatus, Lifecycle, OrderStatus, ShipmentStatus};
use consign_domain::{FulfillmentOrderId, OrderId, OrderItemId, ShipmentId};

use crate::AppState;
use crate::pages::view::{self};
use crate::pages::{Chrome, PageError, Staff, render};

use super::Badge;
use super::parse_id;

/// An order line on the order page.
pub struct ItemView {
    sku: String,
    title: String,
    quantity: i64,
    unit_price: String,
    total: String,
}

/// A fulfillment order on the order page.
pub struct FulfillmentView {
    id: FulfillmentOrderId,
    warehouse: String,
    status: String,
    can_ship: bool,
    lines: Vec<FulfillmentLineView>,
}

/// A line of a fulfillment order.
pub struct FulfillmentLineView {
    order_item_id: OrderItemId,
    sku: String,
    quantity: i64,
    shipped: i64,
    remaining: i64,
}

/// A shipment on the order page.
pub struct ShipmentView {
    id: ShipmentId,
    status: String,
    carrier: String,
    tracking_number: String,
    tracking_url: Option<String>,
    units: i64,
    created: view::When,
    can_mark_in_transit: bool,
    can_mark_delivered: bool,
}

/// A payment on the order page.
pub struct PaymentView {
    kind: String,
    provider: String,
    amount: String,
    reference: String,
    created: view::When,
}

/// A timeline entry.
pub struct EventView {
    what: String,
    actor: String,
    at: view::When,
}

#[derive(Template)]
#[template(path = "admin/order.html")]
struct OrderPage {
    chrome: Chrome,
    order: Order,
    brand: String,
    placed: view::When,
    status_badge: Badge,
    payment_badge: Badge,
    fulfillment_badge: Badge,
    items: Vec<ItemView>,
    items_text: String,
    subtotal: String,
    total: String,
    paid: String,
    refunded: String,
    refund_due: String,
    outstanding: String,
    outstanding_input: String,
    payments: Vec<PaymentView>,
    fulfillments: Vec<FulfillmentView>,
    shipments: Vec<ShipmentView>,
    timeline: Vec<EventView>,
    can_edit: bool,
    can_pay: bool,
    can_cancel: bool,
    may_edit: bool,
    address_line2: String,
    address_region: String,
    thread: crate::pages::thread::ThreadView,
}

/// `GET /admin/orders/{id}`.
pub async fn show(State(state): State<AppState>, staff: Staff, Path(id): Path<String>) -> Result<Response, PageError> {
    let order_id: OrderId = parse_id(&id)?;
    let order = order_commands::authorize(&state.db, staff.caller.scope(), order_id, Action::ViewCommerce).await?;
    let scope = staff.caller.scope();
    let (brand, fulfillment_orders, shipments, payments, timeline, brand_warehouses) = tokio::try_join!(
        consign_db::brands::get(&state.db, scope, order.brand_id),
        fulfillment::for_order(&state.db, scope, order_id),
        fulfillment::shipments_for_order(&state.db, scope, order_id),
        consign_db::payments::payments_for_order(&state.db, scope, order_id),
        events::timeline(&state.db, scope, order_id),
        warehouses::for_brand(&state.db, scope, order.brand_id),
    )?;
    let may_edit = staff.caller.scope().grants().allows_on_brand(Action::EditCommerce, order.brand_id);
    let sku_of = |item_id: OrderItemId| {
        order.items.iter().find(|i| i.item.id == item_id).map(|i| i.item.sku.clone()).unwrap_or_default()
    };
    let order_open = order.status == OrderStatus::Open;
    let fulfillments = fulfillment_orders
        .iter()
        .map(|fo| FulfillmentView {
            id: fo.id,
            warehouse: brand_warehouses
                .iter()
                .find(|w| w.warehouse_id == fo.warehouse_id)
                .map(|w| format!("{} ({})", w.name, w.code))
                .unwrap_or_else(|| fo.warehouse_id.to_string()),
            status: view::words(fo.status.as_str()),
            can_ship: may_edit
                && order_open
                && matches!(fo.status, FulfillmentOrderStatus::Open | FulfillmentOrderStatus::InProgress)
                && fo.items.iter().any(|i| i.remaining > 0),
            lines: fo
                .items
                .iter()
                .map(|i| FulfillmentLineView {
                    order_item_id: i.order_item_id,
                    sku: sku_of(i.order_item_id),
                    quantity: i.quantity,
                    shipped: i.shipped_quantity,
                    remaining: i.remaining,
                })
                .collect(),
        })
        .collect();
    let shipments = shipments
        .iter()
        .map(|s| ShipmentView {
            id: s.id,
            status: view::words(s.status.as_str()),
            carrier: s.carrier.clone(),
            tracking_number: s.tracking_number.clone(),
            tracking_url: s.tracking_url.clone(),
            units: s.items.iter().map(|i| i.quantity).sum(),
            created: view::time(s.created_at),
            can_mark_in_transit: may_edit && s.status.allows(ShipmentStatus::InTransit),
            can_mark_delivered: may_edit && s.status.allows(ShipmentStatus::Delivered),
        })
        .collect();
    let payments = payments
        .iter()
        .map(|p| PaymentView {
            kind: view::words(&p.kind),
            provider: p.provider.clone(),
            amount: view::format_money(p.amount, &p.currency),
            reference: p.reference.clone().unwrap_or_default(),
            created: view::time(p.created_at),
        })
        .collect();
    let actors: Vec<String> = timeline.iter().map(|e| e.actor.clone()).collect();
    let names = consign_db::users::actor_names(&state.db, &actors).await?;
    let timeline = timeline
        .iter()
        .map(|e| EventView {
            what: view::words(&e.event_type),
            actor: view::actor_words(&e.actor, &names),
            at: view::time(e.created_at),
        })
        .collect();
    let thread = crate::pages::thread::load(&state, &staff, &order).await?;
    let unshipped = order.fulfillment_status == FulfillmentStatus::Unfulfilled;
    let outstanding = order.outstanding.amount;
    let page = OrderPage {
        chrome: staff.chrome("orders", format!("Order {}", order.number)),
        brand: brand.name,
        placed: view::time(order.created_at),
        status_badge: Badge::order(order.status),
        payment_badge: Badge::payment(order.payment_status),
        fulfillment_badge: Badge::fulfillment(order.fulfillment_status),
        items: order
            .items
            .iter()
            .map(|i| ItemView {
                sku: i.item.sku.clone(),
                title: i.item.title.clone(),
                quantity: i.item.quantity,
                unit_price: view::money(&i.unit_price),
                total: view::money(&i.total),
            })
            .collect(),
        items_text: order
            .items
            .iter()
            .map(|i| format!("{} {}", i.item.sku, i.item.quantity))
            .collect::<Vec<_>>()
            .join("\n"),
        subtotal: view::money(&order.subtotal),
        total: view::money(&order.total),
        paid: view::money(&order.paid),
        refunded: view::money(&order.refunded),
        refund_due: view::money(&order.refund_due),
        outstanding: view::money(&order.outstanding),
        outstanding_input: format!("{}.{:02}", outstanding / 100, outstanding % 100),
        payments,
        fulfillments,
        shipments,
        timeline,
        can_edit: may_edit && order_open && unshipped,
        can_pay: may_edit && order_open && outstanding > 0,
        can_cancel: may_edit && matches!(order.status, OrderStatus::Open | OrderStatus::Draft),
        may_edit,
        address_line2: order.shipping_address.line2.clone().unwrap_or_default(),
        address_region: order.shipping_address.region.clone().unwrap_or_default(),
        thread,
        order,
    };
    render(&page)
}
