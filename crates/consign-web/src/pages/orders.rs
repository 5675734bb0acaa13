//! Staff order pages: the list (every API filter, search, cursor pages,
//! CSV export of the filtered list, streamed, and bulk actions on the
//! ticked orders: `bulk.rs`) and the order page with its
//! actions: record a payment, ship quantities of a fulfillment order, move a
//! shipment along, edit the address or the items, add a note, cancel. The
//! order's message thread on the same page is `thread.rs`.
//!
//! Each action calls the same use case as the API
//! (`consign_app::order_commands`), which checks the caller and the fields
//! before it stores; a refusal comes back as a flash message in words.

mod bulk;
mod export;
mod forms;
mod list;
mod show;

use axum::Router;
use axum::routing::{get, post};
use consign_domain::OrderId;
use consign_domain::status::{FulfillmentStatus, OrderStatus, PaymentStatus};

use super::PageError;
use super::view::{self, filled};
use crate::AppState;

use export::export_csv;
use forms::{add_note, cancel, create_shipment, edit_address, edit_items, record_payment, shipment_status};
use list::list;
use show::show;

/// The order routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/orders", get(list))
        .route("/admin/orders.csv", get(export_csv))
        .route("/admin/orders/bulk", post(bulk::bulk))
        .route("/admin/orders/bulk-ship", get(bulk::ship_page).post(bulk::ship))
        .route("/admin/orders/{id}", get(show))
        .route("/admin/orders/{id}/payments", post(record_payment))
        .route("/admin/orders/{id}/cancel", post(cancel))
        .route("/admin/orders/{id}/address", post(edit_address))
        .route("/admin/orders/{id}/items", post(edit_items))
        .route("/admin/orders/{id}/notes", post(add_note))
        .route("/admin/orders/{id}/shipments", post(create_shipment))
        .route("/admin/orders/{id}/shipments/{shipment_id}/status", post(shipment_status))
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

/// A status as the pages show it: in words, in the colour of its tone
/// (`good` done, `info` under way, `warn` waiting on someone, `bad` ended
/// badly), the same on the list and the order page.
pub struct Badge {
    /// The status in words.
    pub words: String,
    /// The CSS tone.
    pub tone: &'static str,
}

impl Badge {
    fn of(code: &str, tone: &'static str) -> Self {
        Self { words: view::words(code), tone }
    }

    /// An order's status.
    pub fn order(status: OrderStatus) -> Self {
        let tone = match status {
            OrderStatus::Completed => "good",
            OrderStatus::Draft => "info",
            OrderStatus::Open => "warn",
            OrderStatus::Cancelled | OrderStatus::Expired => "bad",
        };
        Self::of(status.as_str(), tone)
    }

    /// An order's payment status.
    pub fn payment(status: PaymentStatus) -> Self {
        let tone = match status {
            PaymentStatus::Paid => "good",
            PaymentStatus::Authorized | PaymentStatus::PartiallyRefunded => "info",
            PaymentStatus::Unpaid | PaymentStatus::PartiallyPaid => "warn",
            PaymentStatus::Refunded | PaymentStatus::Failed => "bad",
        };
        Self::of(status.as_str(), tone)
    }

    /// An order's fulfillment status.
    pub fn fulfillment(status: FulfillmentStatus) -> Self {
        let tone = match status {
            FulfillmentStatus::Delivered | FulfillmentStatus::Shipped => "good",
            FulfillmentStatus::PartiallyShipped => "info",
            FulfillmentStatus::Unfulfilled => "warn",
            FulfillmentStatus::Returned => "bad",
        };
        Self::of(status.as_str(), tone)
    }
}

pub(super) fn parse_id<T: std::str::FromStr>(text: &str) -> Result<T, PageError> {
    text.parse().map_err(|_| PageError::NotFound)
}

pub(super) fn order_path(order_id: OrderId) -> String {
    format!("/admin/orders/{order_id}")
}
