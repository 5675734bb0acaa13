//! The order page's actions: record a payment, cancel, edit the address
//! or the items, add a note, ship, move a shipment along. Each reads its
//! form, calls the use case the API calls (`consign_app::order_commands`)
//! and answers with a flash message.

use axum::extract::{Path, State};
use axum::response::Response;
use consign_app::order_commands::{self, CommandError, ManualPayment, Parcel};
use consign_db::fulfillment;
use consign_domain::order::Address;
use consign_domain::policy::Action;
use consign_domain::status::{PaymentStatus, ShipmentStatus};
use consign_domain::{FulfillmentOrderId, OrderId, ShipmentId};
use serde::Deserialize;

use crate::AppState;
use crate::error::{AppError, FieldError};
use crate::pages::view::{self, filled};
use crate::pages::{PageError, Staff, settle};

use super::{order_path, parse_id};
use crate::pages::PageForm;

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
    PageForm(form): PageForm<PaymentForm>,
) -> Result<Response, PageError> {
    let order_id: OrderId = parse_id(&id)?;
    let result = async {
        let amount = parse_amount(&form.amount)?;
        let payment = ManualPayment { amount, currency: None, method: "manual", reference: filled(&form.reference) };
        Ok(order_commands::record_payment(&state.db, staff.caller.scope(), order_id, payment).await?)
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
    PageForm(form): PageForm<CancelForm>,
) -> Result<Response, PageError> {
    let order_id: OrderId = parse_id(&id)?;
    let result = order_commands::cancel(&state.db, staff.caller.scope(), order_id, &form.reason).await;
    let result = result.map_err(AppError::from);
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
    PageForm(form): PageForm<AddressForm>,
) -> Result<Response, PageError> {
    let order_id: OrderId = parse_id(&id)?;
    let address = Address {
        line1: form.line1.trim().to_owned(),
        line2: filled(&form.line2).map(str::to_owned),
        city: form.city.trim().to_owned(),
        region: filled(&form.region).map(str::to_owned),
        postal_code: form.postal_code.trim().to_owned(),
        country: form.country.trim().to_uppercase(),
    };
    let scope = staff.caller.scope();
    let result = order_commands::update_shipping_address(&state.db, scope, order_id, &address, form.version).await;
    let result = result.map_err(AppError::from);
    settle(result, &order_path(order_id), "Shipping address updated.")
}

/// The items form: one `SKU quantity` per line.
#[derive(Deserialize)]
pub struct ItemsForm {
    items: String,
}

/// The items form's lines as the use case takes them, and the line number
/// in the text of each, for the words of a refusal.
struct FormItems {
    lines: Vec<(String, i64)>,
    numbers: Vec<usize>,
}

/// Reads the form's lines, each a SKU and a quantity (1 when left out).
/// Only the layout is checked here; the SKU and the limits are the use
/// case's rules.
fn parse_items(text: &str) -> Result<FormItems, AppError> {
    let mut lines = Vec::new();
    let mut numbers = Vec::new();
    for (index, raw) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let number = index + 1;
        let mut parts = raw.split_whitespace();
        let (Some(sku), quantity, None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(AppError::field("items", format!("line {number} must be a SKU and a quantity")));
        };
        let quantity: i64 = match quantity {
            None => 1,
            Some(q) => q.parse().map_err(|_| quantity_refused(number))?,
        };
        lines.push((sku.to_owned(), quantity));
        numbers.push(number);
    }
    Ok(FormItems { lines, numbers })
}

fn quantity_refused(number: usize) -> AppError {
    AppError::field("items", format!("line {number}: the quantity must be 1 to 1000"))
}

/// The use case's refusal of `items[i]` in the form's words: by line number.
fn items_refused(error: CommandError, numbers: &[usize]) -> AppError {
    let CommandError::Invalid(problems) = error else { return error.into() };
    let line = |path: &str| path.parse::<usize>().ok().and_then(|index| numbers.get(index)).copied().unwrap_or(0);
    let words = problems.into_iter().map(|problem| {
        let message = match problem.field.strip_prefix("items[").and_then(|rest| rest.split_once("].")) {
            Some((index, "sku")) => format!("line {}: the SKU {}", line(index), problem.message),
            Some((index, _)) => format!("line {}: the quantity must be 1 to 1000", line(index)),
            None => "list 1 to 100 lines of SKU and quantity".to_owned(),
        };
        FieldError::new("items", message)
    });
    AppError::Validation(words.collect())
}

/// `POST /admin/orders/{id}/items`.
pub async fn edit_items(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    PageForm(form): PageForm<ItemsForm>,
) -> Result<Response, PageError> {
    let order_id: OrderId = parse_id(&id)?;
    let result = async {
        let items = parse_items(&form.items)?;
        let replaced = order_commands::replace_items(&state.db, staff.caller.scope(), order_id, &items.lines).await;
        replaced.map_err(|error| items_refused(error, &items.numbers))
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
    PageForm(form): PageForm<NoteForm>,
) -> Result<Response, PageError> {
    let order_id: OrderId = parse_id(&id)?;
    let result = order_commands::add_note(&state.db, staff.caller.scope(), order_id, &form.body).await;
    let result = result.map_err(|error| AppError::from(error.renamed("body", "note")));
    settle(result, &order_path(order_id), "Note added.")
}

/// `POST /admin/orders/{id}/shipments`: `fulfillment_order_id`, `carrier`,
/// `tracking_number` and `qty_<order item id>` per line.
pub async fn create_shipment(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    PageForm(fields): PageForm<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let order_id: OrderId = parse_id(&id)?;
    let field =
        |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim().to_owned()).unwrap_or_default();
    let result = async {
        order_commands::authorize(&state.db, staff.caller.scope(), order_id, Action::EditCommerce).await?;
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
        let (carrier, tracking_number) = (field("carrier"), field("tracking_number"));
        let parcel = Parcel { items: &items, carrier: &carrier, tracking_number: &tracking_number };
        let scope = staff.caller.scope();
        Ok(order_commands::create_shipment(&state.db, scope, fulfillment_order_id, parcel).await?)
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
    PageForm(form): PageForm<ShipmentStatusForm>,
) -> Result<Response, PageError> {
    let order_id: OrderId = parse_id(&id)?;
    let shipment_id: ShipmentId = parse_id(&shipment_id)?;
    let result = async {
        let next: ShipmentStatus =
            form.status.parse().map_err(|_| AppError::field("status", "is not a shipment status"))?;
        let scope = staff.caller.scope();
        Ok(order_commands::set_shipment_status(&state.db, scope, shipment_id, Some(order_id), next).await?)
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
    fn item_lines_read_sku_and_quantity_with_their_line_numbers() {
        let items = parse_items("TENT 2\nMUG\n\nTENT 1").unwrap();
        assert_eq!(items.lines, vec![("TENT".to_owned(), 2), ("MUG".to_owned(), 1), ("TENT".to_owned(), 1)]);
        assert_eq!(items.numbers, vec![1, 2, 4]);
        assert!(parse_items("TENT two").is_err());
        assert!(parse_items("TENT 1 2").is_err());
    }

    #[test]
    fn refused_item_lines_are_named_by_their_line_number() {
        let refused = CommandError::Invalid(vec![
            consign_app::order_commands::FieldProblem::new("items[1].sku", "must be 1 to 100 characters"),
            consign_app::order_commands::FieldProblem::new("items[2].quantity", "greater than 1000"),
        ]);
        let AppError::Validation(errors) = items_refused(refused, &[1, 3, 4]) else { panic!("a validation error") };
        let messages: Vec<&str> = errors.iter().map(|error| error.message.as_str()).collect();
        assert_eq!(messages, ["line 3: the SKU must be 1 to 100 characters", "line 4: the quantity must be 1 to 1000"]);
        assert!(errors.iter().all(|error| error.field == "items"));
    }
}
