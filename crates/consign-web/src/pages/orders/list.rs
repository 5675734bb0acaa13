//! `GET /admin/orders`: the staff order list, with every API filter,
//! search and cursor pages.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use consign_db::PageRequest;
use consign_db::orders::{self, Order, OrderFilter};
use consign_domain::policy::Action;
use consign_domain::text::SearchText;
use consign_domain::{OrderId, Timestamp};
use serde::Deserialize;

use crate::AppState;
use crate::error::AppError;
use crate::extract::status_list;
use crate::pages::dashboard::{BrandOption, brand_options};
use crate::pages::view::{self, filled};
use crate::pages::{Chrome, PageError, Staff, render};

use super::{Badge, Choice, choices};

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
    pub(super) fn filter(&self) -> Result<OrderFilter, AppError> {
        Ok(OrderFilter {
            brand_id: parse_option("brand_id", &self.brand_id)?,
            status: parse_option("status", &self.status)?,
            payment_status: parse_option("payment_status", &self.payment_status)?,
            fulfillment_status: status_list("fulfillment_status", filled(&self.fulfillment_status))?,
            q: filled(&self.q)
                .map(|q| SearchText::parse(q).map(SearchText::into_string))
                .transpose()
                .map_err(AppError::invalid("q"))?,
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

/// A view of the list above it: the built-in ones, and those this browser
/// saved (`admin.js` adds them).
pub struct Tab {
    label: &'static str,
    query: &'static str,
    current: bool,
}

/// The built-in views: what staff look at every day.
const TABS: &[(&str, &str)] = &[
    ("All", ""),
    ("Unpaid", "status=open&payment_status=unpaid"),
    ("To ship", "status=open&payment_status=paid&fulfillment_status=unfulfilled%2Cpartially_shipped"),
    ("Shipped", "fulfillment_status=shipped"),
    ("Cancelled", "status=cancelled"),
];

/// A row of the order list.
pub struct OrderLine {
    id: OrderId,
    number: String,
    brand: String,
    placed: view::When,
    customer: String,
    email: String,
    total: String,
    status: Badge,
    payment_status: Badge,
    fulfillment_status: Badge,
}

#[derive(Template)]
#[template(path = "admin/orders.html")]
struct ListPage {
    chrome: Chrome,
    brands: Vec<BrandOption>,
    statuses: Vec<Choice>,
    payment_statuses: Vec<Choice>,
    fulfillment_statuses: Vec<Choice>,
    tabs: Vec<Tab>,
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
/// The fulfillment filter's choices; the first is the dashboard's "to ship".
const FULFILLMENT_STATUSES: &[&str] =
    &["unfulfilled,partially_shipped", "unfulfilled", "partially_shipped", "shipped", "delivered", "returned"];

fn line(order: &Order, brands: &[consign_db::brands::Brand]) -> OrderLine {
    OrderLine {
        id: order.id,
        number: order.number.clone(),
        brand: brands.iter().find(|b| b.id == order.brand_id).map(|b| b.name.clone()).unwrap_or_default(),
        placed: view::time(order.created_at),
        customer: order.customer.name.clone(),
        email: order.customer.email.clone(),
        total: view::money(&order.total),
        status: Badge::order(order.status),
        payment_status: Badge::payment(order.payment_status),
        fulfillment_status: Badge::fulfillment(order.fulfillment_status),
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
    let mut fulfillment_statuses = choices(FULFILLMENT_STATUSES, &query.fulfillment_status);
    fulfillment_statuses[0].label = "To ship (unfulfilled or partly shipped)".to_owned();
    render(&ListPage {
        chrome: staff.chrome("orders", "Orders"),
        brands: brand_options(&brands, selected_brand),
        statuses: choices(ORDER_STATUSES, &query.status),
        payment_statuses: choices(PAYMENT_STATUSES, &query.payment_status),
        fulfillment_statuses,
        tabs: TABS
            .iter()
            .map(|(label, tab)| Tab { label, query: tab, current: query.query_string() == *tab })
            .collect(),
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
