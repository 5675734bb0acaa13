//! Bulk actions on the orders ticked in the list: record each one's
//! outstanding amount as paid, export them as CSV, or ship them (a page
//! that asks one tracking number per order, then ships everything left to
//! ship). Each order goes through the same use case as its own page
//! (`consign_app::order_commands`), so the rules, the audit and the events
//! are the same; one order refused does not stop the others, and the flash
//! says which were done and why the others were not.

use askama::Template;
use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use consign_app::order_commands::{self, ManualPayment, Parcel};
use consign_db::fulfillment::{self, FulfillmentOrder};
use consign_db::orders::{self, Order};
use consign_domain::OrderId;
use consign_domain::status::{FulfillmentOrderStatus, OrderStatus};

use super::export::{CSV_HEADER, csv_download, csv_row};
use crate::AppState;
use crate::error::AppError;
use crate::pages::view::{self, Flash};
use crate::pages::{Chrome, PageError, PageForm, Staff, render};

/// The most orders one bulk action takes: a page of the list.
const MOST_ORDERS: usize = 200;

/// The form fields, as sent (`order_id` repeats).
type Fields = Vec<(String, String)>;

fn field<'a>(fields: &'a Fields, name: &str) -> Option<&'a str> {
    fields.iter().find(|(key, _)| key == name).map(|(_, value)| value.trim()).filter(|value| !value.is_empty())
}

/// The ticked orders the caller sees, in the order ticked; an id that is
/// not an order of theirs is left out.
async fn ticked(state: &AppState, staff: &Staff, fields: &Fields) -> Result<Vec<Order>, PageError> {
    let ids: Vec<OrderId> =
        fields.iter().filter(|(key, _)| key == "order_id").filter_map(|(_, v)| v.parse().ok()).collect();
    if ids.is_empty() {
        return Err(PageError::Refused("Tick at least one order first.".into()));
    }
    if ids.len() > MOST_ORDERS {
        return Err(PageError::Refused(format!("Pick at most {MOST_ORDERS} orders at a time.")));
    }
    let mut found = Vec::with_capacity(ids.len());
    for id in ids {
        match orders::get(&state.db, staff.caller.scope(), id).await {
            Ok(order) => found.push(order),
            Err(consign_db::DbError::NotFound) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(found)
}

/// Where to go back to: the list as it was filtered (a path of the list
/// only, never elsewhere).
fn back(fields: &Fields) -> String {
    match field(fields, "back") {
        Some(path) if path.starts_with("/admin/orders") && !path.contains("//") && path.is_ascii() => path.to_owned(),
        _ => "/admin/orders".to_owned(),
    }
}

/// The flash of a bulk action: what was done, then each order left alone
/// with its reason.
fn summary(done: usize, what: &str, skipped: &[(String, String)]) -> Flash {
    let orders = |n: usize| if n == 1 { "1 order".to_owned() } else { format!("{n} orders") };
    let mut text = format!("{what} {}.", orders(done));
    if !skipped.is_empty() {
        let reasons: Vec<String> = skipped.iter().map(|(number, why)| format!("{number}: {why}")).collect();
        text.push_str(&format!(" Not done for {}: {}.", orders(skipped.len()), reasons.join("; ")));
    }
    if done == 0 { Flash::error(text) } else { Flash::notice(text) }
}

fn refusal(error: AppError) -> Result<String, PageError> {
    match error {
        AppError::Internal(error) => Err(PageError::Internal(error)),
        other => Ok(view::describe(&other)),
    }
}

/// `POST /admin/orders/bulk`: `action` is `record_payment` (with an
/// optional `reference`), `export` or `ship` (to the shipping page).
pub async fn bulk(
    State(state): State<AppState>,
    staff: Staff,
    PageForm(fields): PageForm<Fields>,
) -> Result<Response, PageError> {
    let orders = ticked(&state, &staff, &fields).await?;
    match field(&fields, "action") {
        Some("record_payment") => {
            record_payments(&state, &staff, &orders, field(&fields, "reference"), &back(&fields)).await
        }
        Some("export") => {
            let rows: String = orders.iter().map(csv_row).collect();
            Ok(csv_download(Body::from(format!("{CSV_HEADER}{rows}"))))
        }
        Some("ship") => {
            let ids: Vec<String> = orders.iter().map(|o| format!("order_id={}", o.id)).collect();
            Ok(axum::response::IntoResponse::into_response(axum::response::Redirect::to(&format!(
                "/admin/orders/bulk-ship?{}",
                ids.join("&")
            ))))
        }
        _ => Err(PageError::Refused("Choose what to do with the ticked orders.".into())),
    }
}

/// Records each open order's outstanding amount as a manual payment.
async fn record_payments(
    state: &AppState,
    staff: &Staff,
    orders: &[Order],
    reference: Option<&str>,
    back: &str,
) -> Result<Response, PageError> {
    let (mut done, mut skipped) = (0, Vec::new());
    for order in orders {
        if order.status != OrderStatus::Open || order.outstanding.amount <= 0 {
            skipped.push((order.number.clone(), "nothing is outstanding".to_owned()));
            continue;
        }
        let payment = ManualPayment {
            amount: order.outstanding.amount,
            currency: Some(&order.outstanding.currency),
            method: "manual",
            reference,
        };
        match order_commands::record_payment(&state.db, staff.caller.scope(), order.id, payment).await {
            Ok(_) => done += 1,
            Err(error) => skipped.push((order.number.clone(), refusal(error.into())?)),
        }
    }
    Ok(view::redirect_with(back, summary(done, "Payment recorded in full on", &skipped)))
}

/// An order on the shipping page.
pub struct ShipLine {
    id: OrderId,
    number: String,
    ship_to: String,
    address: String,
    units: i64,
    /// Why it cannot be shipped from here, if it cannot.
    blocked: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "admin/bulk_ship.html")]
struct ShipPage {
    chrome: Chrome,
    lines: Vec<ShipLine>,
}

/// The fulfillment orders of an order that can ship now (not held or
/// scheduled) with units left to ship.
fn to_ship(fulfillment_orders: &[FulfillmentOrder]) -> Vec<&FulfillmentOrder> {
    use FulfillmentOrderStatus::{InProgress, Open};
    fulfillment_orders
        .iter()
        .filter(|fo| matches!(fo.status, Open | InProgress) && fo.items.iter().any(|i| i.remaining > 0))
        .collect()
}

/// `GET /admin/orders/bulk-ship?order_id=…`: the ticked orders with what
/// is left to ship, a tracking number field for each and one carrier.
pub async fn ship_page(
    State(state): State<AppState>,
    staff: Staff,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Result<Response, PageError> {
    let fields: Fields = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect();
    let mut lines = Vec::new();
    for order in ticked(&state, &staff, &fields).await? {
        let fulfillment_orders = fulfillment::for_order(&state.db, staff.caller.scope(), order.id).await?;
        let open = to_ship(&fulfillment_orders);
        let units = open.iter().flat_map(|fo| &fo.items).map(|i| i.remaining).sum();
        let blocked = match open.len() {
            0 if fulfillment_orders.is_empty() => Some("not paid yet: nothing to ship"),
            0 => Some("nothing left to ship"),
            1 => None,
            _ => Some("ships from several warehouses: ship it from its page"),
        };
        lines.push(ShipLine {
            id: order.id,
            number: order.number.clone(),
            ship_to: order.customer.name.clone(),
            address: order.shipping_address.one_line(),
            units,
            blocked,
        });
    }
    render(&ShipPage { chrome: staff.chrome("orders", "Ship orders"), lines })
}

/// `POST /admin/orders/bulk-ship`: ships everything left of each order
/// given a `tracking_{order id}`, with the one `carrier`.
pub async fn ship(
    State(state): State<AppState>,
    staff: Staff,
    PageForm(fields): PageForm<Fields>,
) -> Result<Response, PageError> {
    let carrier = field(&fields, "carrier").unwrap_or_default().to_owned();
    let (mut done, mut skipped) = (0, Vec::new());
    for order in ticked(&state, &staff, &fields).await? {
        let Some(tracking_number) = field(&fields, &format!("tracking_{}", order.id)) else {
            skipped.push((order.number.clone(), "no tracking number".to_owned()));
            continue;
        };
        let fulfillment_orders = fulfillment::for_order(&state.db, staff.caller.scope(), order.id).await?;
        let [fo] = to_ship(&fulfillment_orders)[..] else {
            skipped.push((order.number.clone(), "nothing to ship here, or more than one warehouse".to_owned()));
            continue;
        };
        let items: Vec<_> =
            fo.items.iter().filter(|i| i.remaining > 0).map(|i| (i.order_item_id, i.remaining)).collect();
        let parcel = Parcel { items: &items, carrier: &carrier, tracking_number };
        match order_commands::create_shipment(&state.db, staff.caller.scope(), fo.id, parcel).await {
            Ok(_) => done += 1,
            Err(error) => skipped.push((order.number.clone(), refusal(error.into())?)),
        }
    }
    Ok(view::redirect_with("/admin/orders", summary(done, "Shipped", &skipped)))
}
