//! The staff inbox: the message threads of every order the staff member
//! sees, newest first, filtered by brand, unread, assigned to me, the
//! customer's channel and open/closed (`messages::threads::list`, as
//! `GET /api/v1/threads`); below them, inbound email/WhatsApp/SMS that
//! matched no order (`consign_db::inbound::inbox`), each with a form that links it to
//! an order by number. The list reloads itself when the live socket
//! reports a message or thread event, and every 30 seconds, because an
//! inbound message that matched no order writes no event.

use std::collections::HashMap;

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use consign_db::inbound::inbox;
use consign_db::messages::threads::{self, ThreadFilter};
use consign_db::orders::{self, OrderFilter};
use consign_db::{PageRequest, brands};
use consign_domain::messaging::ThreadStatus;
use consign_domain::policy::Action;
use consign_domain::{BrandId, InboxItemId, OrderId, UserId};
use serde::Deserialize;

use super::dashboard::{BrandOption, brand_options};
use super::orders::{Choice, choices, parse_id};
use super::thread::channel_words;
use super::view::{self, filled};
use super::{Chrome, PageError, Staff, render, settle};
use crate::AppState;
use crate::actions;
use crate::error::AppError;
use crate::pages::PageForm;

/// The inbox routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/admin/inbox", get(page)).route("/admin/inbox/items/{id}/link", post(link))
}

/// The filters, as the form sends them (empty = any).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct InboxQuery {
    brand_id: Option<String>,
    status: Option<String>,
    assigned: Option<String>,
    unread: Option<String>,
    channel: Option<String>,
    cursor: Option<String>,
}

impl InboxQuery {
    fn filter(&self, staff: &Staff) -> Result<ThreadFilter, AppError> {
        let me = || staff.caller.scope().user_id().ok_or_else(|| AppError::field("assigned", "`me` needs a user"));
        let (assignee_id, unassigned): (Option<UserId>, bool) = match filled(&self.assigned) {
            None => (None, false),
            Some("me") => (Some(me()?), false),
            Some("none") => (None, true),
            Some(_) => return Err(AppError::field("assigned", "is not one of the choices")),
        };
        Ok(ThreadFilter {
            brand_id: choice("brand", &self.brand_id)?,
            status: choice("status", &self.status)?,
            assignee_id,
            unassigned,
            unread: filled(&self.unread).is_some(),
            channel: choice("channel", &self.channel)?,
        })
    }

    /// The query string of these filters (without cursor), for links.
    fn query_string(&self) -> String {
        [
            ("brand_id", &self.brand_id),
            ("status", &self.status),
            ("assigned", &self.assigned),
            ("unread", &self.unread),
            ("channel", &self.channel),
        ]
        .iter()
        .filter_map(|(key, value)| filled(value).map(|v| format!("{key}={}", view::percent_encode(v))))
        .collect::<Vec<_>>()
        .join("&")
    }
}

/// A filter's value, parsed; empty means any.
fn choice<T: std::str::FromStr>(field: &'static str, value: &Option<String>) -> Result<Option<T>, AppError> {
    filled(value).map(|v| v.parse().map_err(|_| AppError::field(field, "is not one of the choices"))).transpose()
}

/// A thread in the list.
pub struct ThreadRow {
    order_id: OrderId,
    order_number: String,
    customer: String,
    brand: String,
    open: bool,
    status: String,
    channel: String,
    assignee: String,
    last_message: view::When,
    unread: i64,
}

/// An inbound message that matched no order.
pub struct ItemRow {
    id: InboxItemId,
    brand_id: BrandId,
    brand: String,
    channel: &'static str,
    sender: String,
    /// False when no provider check vouched for the sender.
    sender_verified: bool,
    subject: String,
    body: String,
    received: view::When,
}

#[derive(Template)]
#[template(path = "admin/inbox.html")]
struct InboxPage {
    chrome: Chrome,
    brands: Vec<BrandOption>,
    statuses: Vec<Choice>,
    channels: Vec<Choice>,
    assigned: Vec<Choice>,
    unread: bool,
    rows: Vec<ThreadRow>,
    items: Vec<ItemRow>,
    query: String,
    next: Option<String>,
    first_page: bool,
    error: Option<String>,
}

const STATUSES: &[&str] = &["open", "closed"];
const CHANNELS: &[&str] = &["in_app", "email", "whatsapp", "sms"];

/// `GET /admin/inbox`.
pub async fn page(
    State(state): State<AppState>,
    staff: Staff,
    Query(query): Query<InboxQuery>,
) -> Result<Response, PageError> {
    let scope = staff.caller.scope();
    let brands = staff.brands(&state).await?;
    let brand_name = |id: BrandId| brands.iter().find(|b| b.id == id).map(|b| b.name.clone()).unwrap_or_default();
    let mut error = None;
    let mut rows = Vec::new();
    let mut next = None;
    let mut selected_brand = None;
    match query.filter(&staff) {
        Ok(filter) => {
            if let Some(brand_id) = filter.brand_id {
                staff.caller.authorize_brand(Action::ViewCommerce, brand_id)?;
            }
            selected_brand = filter.brand_id;
            let page = PageRequest { limit: 50, after: filled(&query.cursor).map(str::to_owned) };
            let found = threads::list(&state.db, scope, &filter, &page).await?;
            let names = assignee_names(&state, &staff, found.data.iter().map(|t| t.brand_id)).await?;
            rows = found
                .data
                .iter()
                .map(|t| ThreadRow {
                    order_id: t.order_id,
                    order_number: t.order_number.clone(),
                    customer: t.customer_name.clone(),
                    brand: brand_name(t.brand_id),
                    open: t.status == ThreadStatus::Open,
                    status: view::words(t.status.as_str()),
                    channel: t.last_customer_channel.map(channel_words).unwrap_or("").to_owned(),
                    assignee: match t.assignee_id {
                        None => "No one".to_owned(),
                        Some(id) if Some(id) == scope.user_id() => "You".to_owned(),
                        Some(id) => names.get(&id).cloned().unwrap_or_else(|| "Someone".to_owned()),
                    },
                    last_message: view::time(t.last_message_at),
                    unread: t.unread,
                })
                .collect();
            next = found.next_cursor;
        }
        Err(problem) => error = Some(view::describe(&problem)),
    }
    let items = inbox::list(&state.db, scope, selected_brand, &PageRequest { limit: 50, after: None })
        .await?
        .data
        .into_iter()
        .map(|item| ItemRow {
            id: item.id,
            brand_id: item.brand_id,
            brand: brand_name(item.brand_id),
            channel: channel_words(item.channel),
            sender: item.sender,
            sender_verified: item.sender_verified,
            subject: item.subject.unwrap_or_default(),
            body: shorten(&item.body, 400),
            received: view::time(item.created_at),
        })
        .collect();
    let assigned = vec![
        Choice { value: "me", label: "Me".into(), selected: filled(&query.assigned) == Some("me") },
        Choice { value: "none", label: "No one".into(), selected: filled(&query.assigned) == Some("none") },
    ];
    render(&InboxPage {
        chrome: staff.chrome("inbox", "Inbox"),
        brands: brand_options(&brands, selected_brand),
        statuses: choices(STATUSES, &query.status),
        channels: choices(CHANNELS, &query.channel),
        assigned,
        unread: filled(&query.unread).is_some(),
        rows,
        items,
        query: query.query_string(),
        next,
        first_page: filled(&query.cursor).is_none(),
        error,
    })
}

/// The names of the staff of these brands, to show who a thread is
/// assigned to.
async fn assignee_names(
    state: &AppState,
    staff: &Staff,
    brand_ids: impl Iterator<Item = BrandId>,
) -> Result<HashMap<UserId, String>, PageError> {
    let mut brand_ids: Vec<BrandId> = brand_ids.collect();
    brand_ids.sort_by_key(ToString::to_string);
    brand_ids.dedup();
    let mut names = HashMap::new();
    for brand_id in brand_ids {
        for person in brands::staff_of_brand(&state.db, staff.caller.scope(), brand_id).await? {
            names.insert(person.id, person.name);
        }
    }
    Ok(names)
}

/// At most `limit` characters, with an ellipsis when cut.
fn shorten(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(limit).collect();
    cut.push('…');
    cut
}

/// The link form: the item's brand (where the order is looked up) and the
/// order's number.
#[derive(Deserialize)]
pub struct LinkForm {
    brand_id: String,
    order_number: String,
}

/// `POST /admin/inbox/items/{id}/link`: posts the inbound message into the
/// thread of the brand's order with that number, as the customer's.
pub async fn link(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    PageForm(form): PageForm<LinkForm>,
) -> Result<Response, PageError> {
    let item_id: InboxItemId = parse_id(&id)?;
    let brand_id: BrandId = parse_id(&form.brand_id)?;
    let result = async {
        staff.caller.authorize_brand(Action::EditCommerce, brand_id)?;
        let number = form.order_number.trim().trim_start_matches('#');
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AppError::field("order_number", "must be an order number such as 1001"));
        }
        let filter = OrderFilter { brand_id: Some(brand_id), q: Some(number.to_owned()), ..OrderFilter::default() };
        let page = PageRequest { limit: 1, after: None };
        let order = orders::list(&state.db, staff.caller.scope(), &filter, &page)
            .await?
            .data
            .into_iter()
            .next()
            .ok_or_else(|| AppError::field("order_number", format!("no order #{number} in this brand")))?;
        actions::inbox::link(&state, staff.caller.scope(), item_id, order.id).await?;
        Ok(order.number)
    }
    .await;
    let done = match &result {
        Ok(number) => format!("Linked to order {number}: the message is in its thread."),
        Err(_) => String::new(),
    };
    settle(result, "/admin/inbox", done)
}
