//! Staff order pages: the list (every API filter, search, cursor pages,
//! CSV export of the filtered list, streamed) and the order page with its
//! actions: record a payment, ship quantities of a fulfillment order, move a
//! shipment along, edit the address or the items, add a note, cancel. The
//! order's message thread on the same page is `thread.rs`.
//!
//! Each action loads the order through the caller's scope (404 when
//! invisible), asks the policy for `EditCommerce` on its brand, then calls
//! the same storage function as the API; a refusal comes back as a flash
//! message in words.

use askama::Template;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use consign_db::fulfillment::{self, NewShipment};
use consign_db::orders::{self, Order, OrderFilter, changes};
use consign_db::{PageRequest, Scope, events, warehouses, web};
use consign_domain::order::Address;
use consign_domain::policy::Action;
use consign_domain::status::{
    FulfillmentOrderStatus, FulfillmentStatus, Lifecycle, OrderStatus, PaymentStatus, ShipmentStatus,
};
use consign_domain::{FulfillmentOrderId, OrderId, OrderItemId, ShipmentId, Timestamp};
use serde::Deserialize;

use super::dashboard::{BrandOption, brand_options};
use super::view::{self, filled};
use super::{Chrome, PageError, Staff, render, settle};
use crate::AppState;
use crate::error::AppError;

/// The order routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/orders", get(list))
        .route("/admin/orders.csv", get(export_csv))
        .route("/admin/orders/{id}", get(show))
        .route("/admin/orders/{id}/payments", post(record_payment))
        .route("/admin/orders/{id}/cancel", post(cancel))
        .route("/admin/orders/{id}/address", post(edit_address))
        .route("/admin/orders/{id}/items", post(edit_items))
        .route("/admin/orders/{id}/notes", post(add_note))
        .route("/admin/orders/{id}/shipments", post(create_shipment))
        .route("/admin/orders/{id}/shipments/{shipment_id}/status", post(shipment_status))
}

/// The filters of the list, as the form sends them (empty = any).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ListQuery {
    brand_id: Option<String>,
    status: Option<String>,
    payment_status: Option<String>,
    fulfillment_status: Option<String>,
    q: Option<String>,
    created_after: Option<String>,
    created_before: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

fn parse_option<T: std::str::FromStr>(field: &str, value: &Option<String>) -> Result<Option<T>, AppError> {
    filled(value).map(|v| v.parse().map_err(|_| AppError::field(field, "is not one of the choices"))).transpose()
}

/// A date (`2026-11-22`, the start of that day in UTC) or an RFC 3339 time.
fn parse_day(field: &str, value: &Option<String>) -> Result<Option<Timestamp>, AppError> {
    let Some(text) = filled(value) else { return Ok(None) };
    if let Ok(date) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let midnight = date.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc();
        return Ok(Some(Timestamp::from_micros(midnight.timestamp_micros())));
    }
    Timestamp::parse_rfc3339(text).map(Some).ok_or_else(|| AppError::field(field, "must be a date such as 2026-11-22"))
}

impl ListQuery {
    fn filter(&self) -> Result<OrderFilter, AppError> {
        Ok(OrderFilter {
            brand_id: parse_option("brand_id", &self.brand_id)?,
            status: parse_option("status", &self.status)?,
            payment_status: parse_option("payment_status", &self.payment_status)?,
            fulfillment_status: parse_option("fulfillment_status", &self.fulfillment_status)?,
            q: filled(&self.q).map(str::to_owned),
            created_after: parse_day("created_after", &self.created_after)?,
            // "Placed before 2026-11-22" includes that day.
            created_before: parse_day("created_before", &self.created_before)?.map(|t| {
                if filled(&self.created_before).is_some_and(|v| v.len() == 10) { t.plus_seconds(86_400) } else { t }
            }),
        })
    }

    fn limit(&self) -> Result<u32, AppError> {
        match filled(&self.limit) {
            None => Ok(50),
            Some(text) => text
                .parse::<u32>()
                .ok()
                .filter(|l| (1..=200).contains(l))
                .ok_or_else(|| AppError::field("limit", "must be between 1 and 200")),
        }
    }

    /// The query string of these filters (without cursor), for links.
    fn query_string(&self) -> String {
        let pairs = [
            ("brand_id", &self.brand_id),
            ("status", &self.status),
            ("payment_status", &self.payment_status),
            ("fulfillment_status", &self.fulfillment_status),
            ("q", &self.q),
            ("created_after", &self.created_after),
            ("created_before", &self.created_before),
            ("limit", &self.limit),
        ];
        pairs
            .iter()
            .filter_map(|(key, value)| filled(value).map(|v| format!("{key}={}", view::percent_encode(v))))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// One choice of a filter select.
pub struct Choice {
    /// Wire value.
    pub value: &'static str,
    /// In words.
    pub label: String,
    /// Whether chosen.
    pub selected: bool,
}

pub(super) fn choices(all: &[&'static str], current: &Option<String>) -> Vec<Choice> {
    all.iter()
        .map(|value| Choice { value, label: view::words(value), selected: filled(current) == Some(*value) })
        .collect()
}

/// A row of the order list.
pub struct OrderLine {
    id: OrderId,
    number: String,
    brand: String,
    placed: String,
    customer: String,
    email: String,
    total: String,
    status: String,
    payment_status: String,
    fulfillment_status: String,
}

#[derive(Template)]
#[template(path = "admin/orders.html")]
struct ListPage {
    chrome: Chrome,
    brands: Vec<BrandOption>,
    statuses: Vec<Choice>,
    payment_statuses: Vec<Choice>,
    fulfillment_statuses: Vec<Choice>,
    q: String,
    created_after: String,
    created_before: String,
    rows: Vec<OrderLine>,
    query: String,
    next: Option<String>,
    first_page: bool,
    error: Option<String>,
}

const ORDER_STATUSES: &[&str] = &["draft", "open", "completed", "cancelled", "expired"];
const PAYMENT_STATUSES: &[&str] = &["unpaid", "authorized", "paid", "partially_refunded", "refunded", "failed"];
const FULFILLMENT_STATUSES: &[&str] = &["unfulfilled", "partially_shipped", "shipped", "delivered", "returned"];

fn line(order: &Order, brands: &[consign_db::brands::Brand]) -> OrderLine {
    OrderLine {
        id: order.id,
        number: order.number.clone(),
        brand: brands.iter().find(|b| b.id == order.brand_id).map(|b| b.name.clone()).unwrap_or_default(),
        placed: view::time(order.created_at),
        customer: order.customer.name.clone(),
        email: order.customer.email.clone(),
        total: view::money(&order.total),
        status: order.status.to_string(),
        payment_status: order.payment_status.to_string(),
        fulfillment_status: order.fulfillment_status.to_string(),
    }
}

/// `GET /admin/orders`.
pub async fn list(
    State(state): State<AppState>,
    staff: Staff,
    Query(query): Query<ListQuery>,
) -> Result<Response, PageError> {
    let brands = staff.brands(&state).await?;
    let filter = query.filter();
    let mut error = None;
    let mut rows = Vec::new();
    let mut next = None;
    match (&filter, &query.limit()) {
        (Ok(filter), Ok(limit)) => {
            if let Some(brand_id) = filter.brand_id {
                staff.caller.authorize_brand(Action::ViewCommerce, brand_id)?;
            }
            let page = PageRequest { limit: *limit, after: filled(&query.cursor).map(str::to_owned) };
            let found = orders::list(&state.db, staff.caller.scope(), filter, &page).await?;
            rows = found.data.iter().map(|o| line(o, &brands)).collect();
            next = found.next_cursor;
        }
        (Err(problem), _) | (_, Err(problem)) => error = Some(view::describe(problem)),
    }
    let selected_brand = filter.as_ref().ok().and_then(|f| f.brand_id);
    render(&ListPage {
        chrome: staff.chrome("orders", "Orders"),
        brands: brand_options(&brands, selected_brand),
        statuses: choices(ORDER_STATUSES, &query.status),
        payment_statuses: choices(PAYMENT_STATUSES, &query.payment_status),
        fulfillment_statuses: choices(FULFILLMENT_STATUSES, &query.fulfillment_status),
        q: filled(&query.q).unwrap_or_default().to_owned(),
        created_after: filled(&query.created_after).unwrap_or_default().to_owned(),
        created_before: filled(&query.created_before).unwrap_or_default().to_owned(),
        rows,
        query: query.query_string(),
        next,
        first_page: filled(&query.cursor).is_none(),
        error,
    })
}

/// A CSV field, quoted when it must be. Fields that a spreadsheet would run
/// as a formula get a leading apostrophe: OWASP's list, `= + - @` and the
/// TAB, CR and LF a spreadsheet skips before reading the formula.
fn csv_field(text: &str) -> String {
    let text =
        if text.starts_with(['=', '+', '-', '@', '\t', '\r', '\n']) { format!("'{text}") } else { text.to_owned() };
    if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text }
}

fn csv_row(order: &Order) -> String {
    let address = &order.shipping_address;
    let cents = |m: &consign_domain::Money| format!("{}.{:02}", m.amount / 100, (m.amount % 100).abs());
    let fields = [
        order.number.clone(),
        order.id.to_string(),
        order.brand_id.to_string(),
        order.created_at.to_string(),
        order.status.to_string(),
        order.payment_status.to_string(),
        order.fulfillment_status.to_string(),
        order.customer.name.clone(),
        order.customer.email.clone(),
        format!("{}, {} {}, {}", address.line1, address.postal_code, address.city, address.country),
        order.items.iter().map(|i| i.item.quantity).sum::<i64>().to_string(),
        order.total.currency.clone(),
        cents(&order.total),
        cents(&order.paid),
    ];
    let mut row = fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(",");
    row.push_str("\r\n");
    row
}

const CSV_HEADER: &str = "number,id,brand_id,created_at,status,payment_status,fulfillment_status,customer_name,customer_email,shipping_address,units,currency,total,paid\r\n";

/// `GET /admin/orders.csv`: the filtered list, every page, streamed 200
/// orders at a time.
pub async fn export_csv(
    State(state): State<AppState>,
    staff: Staff,
    Query(query): Query<ListQuery>,
) -> Result<Response, PageError> {
    let filter = query.filter()?;
    if let Some(brand_id) = filter.brand_id {
        staff.caller.authorize_brand(Action::ViewCommerce, brand_id)?;
    }
    struct Cursor {
        db: consign_db::Db,
        scope: std::sync::Arc<Scope>,
        filter: OrderFilter,
        after: Option<String>,
        started: bool,
        done: bool,
    }
    let start = Cursor {
        db: state.db.clone(),
        scope: staff.caller.0.clone(),
        filter,
        after: None,
        started: false,
        done: false,
    };
    let stream = futures_util::stream::unfold(start, |mut cursor| async move {
        if cursor.done {
            return None;
        }
        if !cursor.started {
            cursor.started = true;
            return Some((Ok::<Bytes, std::io::Error>(Bytes::from_static(CSV_HEADER.as_bytes())), cursor));
        }
        let page = PageRequest { limit: 200, after: cursor.after.take() };
        match orders::list(&cursor.db, &cursor.scope, &cursor.filter, &page).await {
            Ok(found) => {
                let chunk: String = found.data.iter().map(csv_row).collect();
                cursor.after = found.next_cursor;
                cursor.done = cursor.after.is_none();
                Some((Ok(Bytes::from(chunk)), cursor))
            }
            Err(error) => {
                tracing::error!(error = %error, "CSV export failed part way");
                Some((Err(std::io::Error::other("export failed")), Cursor { done: true, ..cursor }))
            }
        }
    });
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    headers.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"orders.csv\""));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

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
    created: String,
    can_mark_in_transit: bool,
    can_mark_delivered: bool,
}

/// A payment on the order page.
pub struct PaymentView {
    kind: String,
    provider: String,
    amount: String,
    reference: String,
    created: String,
}

/// A timeline entry.
pub struct EventView {
    what: String,
    actor: String,
    at: String,
}

#[derive(Template)]
#[template(path = "admin/order.html")]
struct OrderPage {
    chrome: Chrome,
    order: Order,
    brand: String,
    placed: String,
    status_badge: &'static str,
    payment_badge: &'static str,
    fulfillment_badge: &'static str,
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
    thread: super::thread::ThreadView,
}

fn badge_for_status(status: OrderStatus) -> &'static str {
    match status {
        OrderStatus::Completed => "good",
        OrderStatus::Open | OrderStatus::Draft => "warn",
        OrderStatus::Cancelled | OrderStatus::Expired => "bad",
    }
}

fn badge_for_payment(status: PaymentStatus) -> &'static str {
    match status {
        PaymentStatus::Paid => "good",
        PaymentStatus::Unpaid | PaymentStatus::Authorized | PaymentStatus::PartiallyPaid => "warn",
        _ => "bad",
    }
}

fn badge_for_fulfillment(status: FulfillmentStatus) -> &'static str {
    match status {
        FulfillmentStatus::Delivered | FulfillmentStatus::Shipped => "good",
        FulfillmentStatus::Returned => "bad",
        _ => "warn",
    }
}

/// Loads an order the caller sees and checks it may do `action` on it.
pub(super) async fn authorized(
    state: &AppState,
    staff: &Staff,
    order_id: OrderId,
    action: Action,
) -> Result<Order, AppError> {
    let order = orders::get(&state.db, staff.caller.scope(), order_id).await?;
    if staff.caller.scope().customer_order().is_some() {
        return Err(AppError::NotFound);
    }
    staff.caller.authorize_brand(action, order.brand_id)?;
    Ok(order)
}

pub(super) fn parse_id<T: std::str::FromStr>(text: &str) -> Result<T, PageError> {
    text.parse().map_err(|_| PageError::NotFound)
}

/// `GET /admin/orders/{id}`.
pub async fn show(State(state): State<AppState>, staff: Staff, Path(id): Path<String>) -> Result<Response, PageError> {
    let order_id: OrderId = parse_id(&id)?;
    let order = authorized(&state, &staff, order_id, Action::ViewCommerce).await?;
    let scope = staff.caller.scope();
    let (brand, fulfillment_orders, shipments, payments, timeline, brand_warehouses) = tokio::try_join!(
        consign_db::brands::get(&state.db, scope, order.brand_id),
        fulfillment::for_order(&state.db, scope, order_id),
        fulfillment::shipments_for_order(&state.db, scope, order_id),
        web::payments_for_order(&state.db, scope, order_id),
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
            status: fo.status.to_string(),
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
            status: s.status.to_string(),
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
    let timeline = timeline
        .iter()
        .map(|e| EventView {
            what: view::words(&e.event_type),
            actor: if e.actor.len() > 20 { "staff".to_owned() } else { e.actor.clone() },
            at: view::time(e.created_at),
        })
        .collect();
    let thread = super::thread::load(&state, &staff, &order).await?;
    let unshipped = order.fulfillment_status == FulfillmentStatus::Unfulfilled;
    let outstanding = order.outstanding.amount;
    let page = OrderPage {
        chrome: staff.chrome("orders", format!("Order {}", order.number)),
        brand: brand.name,
        placed: view::time(order.created_at),
        status_badge: badge_for_status(order.status),
        payment_badge: badge_for_payment(order.payment_status),
        fulfillment_badge: badge_for_fulfillment(order.fulfillment_status),
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

pub(super) fn order_path(order_id: OrderId) -> String {
    format!("/admin/orders/{order_id}")
}

/// Parses a decimal amount (`12.50`, `12`) into minor units.
fn parse_amount(text: &str) -> Result<i64, AppError> {
    let bad = || AppError::field("amount", "must be an amount such as 12.50");
    let text = text.trim().replace(',', "");
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.len() > 2 {
        return Err(bad());
    }
    let whole: i64 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| bad())? };
    let fraction: i64 = if fraction.is_empty() { 0 } else { format!("{fraction:0<2}").parse().map_err(|_| bad())? };
    if whole < 0 {
        return Err(bad());
    }
    whole.checked_mul(100).and_then(|w| w.checked_add(fraction)).ok_or_else(bad)
}

/// The payment form.
#[derive(Deserialize)]
pub struct PaymentForm {
    amount: String,
    reference: Option<String>,
}

/// `POST /admin/orders/{id}/payments`.
pub async fn record_payment(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    Form(form): Form<PaymentForm>,
) -> Result<Response, PageError> {
    let order_id: OrderId = parse_id(&id)?;
    let result = async {
        authorized(&state, &staff, order_id, Action::EditCommerce).await?;
        let amount = parse_amount(&form.amount)?;
        let reference = filled(&form.reference);
        if reference.is_some_and(|r| r.chars().count() > 200) {
            return Err(AppError::field("reference", "must be at most 200 characters"));
        }
        Ok(changes::record_payment(&state.db, staff.caller.scope(), order_id, amount, None, reference).await?)
    }
    .await;
    let message = match &result {
        Ok(order) if order.payment_status == PaymentStatus::Paid => {
            "Payment recorded. The order is paid; its fulfillment orders are being prepared.".to_owned()
        }
        Ok(order) => format!("Payment recorded. Still to pay: {}.", view::money(&order.outstanding)),
        Err(_) => String::new(),
    };
    settle(result, &order_path(order_id), message)
}

/// The cancel form.
#[derive(Deserialize)]
pub struct CancelForm {
    reason: String,
}

/// `POST /admin/orders/{id}/cancel`.
pub async fn cancel(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    Form(form): Form<CancelForm>,
) -> Result<Response, PageError> {
    let order_id: OrderId = parse_id(&id)?;
    let result = async {
        authorized(&state, &staff, order_id, Action::EditCommerce).await?;
        let reason = form.reason.trim();
        if reason.is_empty() || reason.chars().count() > 500 {
            return Err(AppError::field("reason", "must be 1 to 500 characters"));
        }
        Ok(changes::cancel(&state.db, staff.caller.scope(), order_id, reason).await?)
    }
    .await;
    settle(result, &order_path(order_id), "Order cancelled; its stock is released.")
}

/// The address form.
#[derive(Deserialize)]
pub struct AddressForm {
    line1: String,
    line2: Option<String>,
    city: String,
    region: Option<String>,
    postal_code: String,
    country: String,
    version: Option<i64>,
}

/// `POST /admin/orders/{id}/address`.
pub async fn edit_address(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    Form(form): Form<AddressForm>,
) -> Result<Response, PageError> {
    let order_id: OrderId = parse_id(&id)?;
    let result = async {
        authorized(&state, &staff, order_id, Action::EditCommerce).await?;
        let address = Address {
            line1: form.line1.trim().to_owned(),
            line2: filled(&form.line2).map(str::to_owned),
            city: form.city.trim().to_owned(),
            region: filled(&form.region).map(str::to_owned),
            postal_code: form.postal_code.trim().to_owned(),
            country: form.country.trim().to_uppercase(),
        };
        let problems = address.problems();
        if !problems.is_empty() {
            return Err(AppError::Validation(
                problems.into_iter().map(|(f, m)| crate::error::FieldError::new(f, m)).collect(),
            ));
        }
        Ok(changes::update_shipping_address(&state.db, staff.caller.scope(), order_id, &address, form.version).await?)
    }
    .await;
    settle(result, &order_path(order_id), "Shipping address updated.")
}

/// The items form: one `SKU quantity` per line.
#[derive(Deserialize)]
pub struct ItemsForm {
    items: String,
}

fn parse_items(text: &str) -> Result<Vec<(String, i64)>, AppError> {
    let mut lines: Vec<(String, i64)> = Vec::new();
    for (number, raw) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let mut parts = raw.split_whitespace();
        let (Some(sku), quantity, None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(AppError::field("items", format!("line {} must be a SKU and a quantity", number + 1)));
        };
        let quantity: i64 = match quantity {
            None => 1,
            Some(q) => q.parse().ok().filter(|q| (1..=1000).contains(q)).ok_or_else(|| {
                AppError::field("items", format!("line {}: the quantity must be 1 to 1000", number + 1))
            })?,
        };
        match lines.iter_mut().find(|(s, _)| s == sku) {
            Some((_, total)) => *total += quantity,
            None => lines.push((sku.to_owned(), quantity)),
        }
    }
    if lines.is_empty() || lines.len() > 100 {
        return Err(AppError::field("items", "list 1 to 100 lines of SKU and quantity"));
    }
    Ok(lines)
}

/// `POST /admin/orders/{id}/items`.
pub async fn edit_items(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    Form(form): Form<ItemsForm>,
) -> Result<Response, PageError> {
    let order_id: OrderId = parse_id(&id)?;
    let result = async {
        authorized(&state, &staff, order_id, Action::EditCommerce).await?;
        let lines = parse_items(&form.items)?;
        Ok(changes::replace_items(&state.db, staff.caller.scope(), order_id, &lines).await?)
    }
    .await;
    settle(result, &order_path(order_id), "Items updated; stock is held again and totals recomputed.")
}

/// The note form.
#[derive(Deserialize)]
pub struct NoteForm {
    body: String,
}

/// `POST /admin/orders/{id}/notes`.
pub async fn add_note(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    Form(form): Form<NoteForm>,
) -> Result<Response, PageError> {
    let order_id: OrderId = parse_id(&id)?;
    let result = async {
        authorized(&state, &staff, order_id, Action::EditCommerce).await?;
        let body = form.body.trim();
        if body.is_empty() || body.chars().count() > 5000 {
            return Err(AppError::field("note", "must be 1 to 5000 characters"));
        }
        Ok(orders::add_note(&state.db, staff.caller.scope(), order_id, body).await?)
    }
    .await;
    settle(result, &order_path(order_id), "Note added.")
}

/// `POST /admin/orders/{id}/shipments`: `fulfillment_order_id`, `carrier`,
/// `tracking_number` and `qty_<order item id>` per line.
pub async fn create_shipment(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let order_id: OrderId = parse_id(&id)?;
    let field =
        |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim().to_owned()).unwrap_or_default();
    let result = async {
        authorized(&state, &staff, order_id, Action::EditCommerce).await?;
        let fulfillment_order_id: FulfillmentOrderId =
            field("fulfillment_order_id").parse().map_err(|_| AppError::NotFound)?;
        let fulfillment_orders = fulfillment::for_order(&state.db, staff.caller.scope(), order_id).await?;
        let fo = fulfillment_orders.iter().find(|fo| fo.id == fulfillment_order_id).ok_or(AppError::NotFound)?;
        let mut items = Vec::new();
        for line in &fo.items {
            let text = field(&format!("qty_{}", line.order_item_id));
            if text.is_empty() {
                continue;
            }
            let quantity: i64 = text
                .parse()
                .ok()
                .filter(|q| *q >= 0)
                .ok_or_else(|| AppError::field("quantity", "must be a whole number"))?;
            if quantity > 0 {
                items.push((line.order_item_id, quantity));
            }
        }
        if items.is_empty() {
            return Err(AppError::field("quantity", "pick at least one unit to ship"));
        }
        let carrier = field("carrier").to_lowercase().replace([' ', '-'], "_");
        let tracking_number = field("tracking_number");
        if carrier.is_empty() || carrier.chars().count() > 50 {
            return Err(AppError::field("carrier", "must be 1 to 50 characters"));
        }
        if tracking_number.is_empty() || tracking_number.chars().count() > 100 {
            return Err(AppError::field("tracking_number", "must be 1 to 100 characters"));
        }
        let shipment = NewShipment { items, carrier, tracking_number };
        Ok(fulfillment::create_shipment(&state.db, staff.caller.scope(), fulfillment_order_id, shipment).await?)
    }
    .await;
    settle(result, &order_path(order_id), "Shipment created.")
}

/// The shipment status form.
#[derive(Deserialize)]
pub struct ShipmentStatusForm {
    status: String,
}

/// `POST /admin/orders/{id}/shipments/{shipment_id}/status`.
pub async fn shipment_status(
    State(state): State<AppState>,
    staff: Staff,
    Path((id, shipment_id)): Path<(String, String)>,
    Form(form): Form<ShipmentStatusForm>,
) -> Result<Response, PageError> {
    let order_id: OrderId = parse_id(&id)?;
    let shipment_id: ShipmentId = parse_id(&shipment_id)?;
    let result = async {
        authorized(&state, &staff, order_id, Action::EditCommerce).await?;
        let shipment = fulfillment::get_shipment(&state.db, staff.caller.scope(), shipment_id).await?;
        if shipment.order_id != order_id {
            return Err(AppError::NotFound);
        }
        let next: ShipmentStatus =
            form.status.parse().map_err(|_| AppError::field("status", "is not a shipment status"))?;
        Ok(fulfillment::set_shipment_status(&state.db, staff.caller.scope(), shipment_id, next).await?)
    }
    .await;
    let message = match &result {
        Ok(shipment) => format!("Shipment marked {}.", view::words(shipment.status.as_str()).to_lowercase()),
        Err(_) => String::new(),
    };
    settle(result, &order_path(order_id), message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_parse_into_minor_units() {
        assert_eq!(parse_amount("12.5").unwrap(), 1250);
        assert_eq!(parse_amount("1,234.56").unwrap(), 123456);
        assert_eq!(parse_amount("7").unwrap(), 700);
        assert!(parse_amount("1.234").is_err());
        assert!(parse_amount("-3").is_err());
        assert!(parse_amount("abc").is_err());
    }

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(csv_field("\t=cmd|' /C calc'!A0"), "'\t=cmd|' /C calc'!A0");
        assert_eq!(csv_field("\r=1+1"), "\"'\r=1+1\"");
        assert_eq!(csv_field("@SUM(A1)"), "'@SUM(A1)");
    }

    #[test]
    fn item_lines_read_sku_and_quantity() {
        assert_eq!(parse_items("TENT 2\nMUG\n\nTENT 1").unwrap(), vec![("TENT".to_owned(), 3), ("MUG".to_owned(), 1)]);
        assert!(parse_items("TENT two").is_err());
        assert!(parse_items("").is_err());
    }
}
