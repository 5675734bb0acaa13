//! The staff dashboard: what needs attention (staff alerts: a money job
//! that gave up, with a retry; money owed back by hand), open orders, orders
//! to ship, revenue today and this week, unread customer messages,
//! low-stock SKUs. The figures refresh themselves: htmx polls the fragment
//! at `/admin/dashboard/figures`, and reloads it at once when the live
//! socket (`live.js`) reports an event. Every staff page's header counts
//! the open alerts, refreshed the same way by a new alert's event.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use chrono::{Datelike, Duration, TimeZone, Utc};
use consign_db::alerts;
use consign_db::brands::Brand;
use consign_db::dashboard::{self, CurrencyTotal, LowStock};
use consign_db::messages::threads;
use consign_domain::policy::Action;
use consign_domain::{BrandId, StaffAlertId, Timestamp};
use serde::Deserialize;

use super::view::{self, filled};
use super::{Chrome, PageError, Staff, render, settle};
use crate::AppState;

/// A brand in a picker.
pub struct BrandOption {
    /// Id.
    pub id: BrandId,
    /// Name.
    pub name: String,
    /// Whether it is the chosen one.
    pub selected: bool,
}

/// The brand options of a picker.
pub fn brand_options(brands: &[consign_db::brands::Brand], selected: Option<BrandId>) -> Vec<BrandOption> {
    brands.iter().map(|b| BrandOption { id: b.id, name: b.name.clone(), selected: Some(b.id) == selected }).collect()
}

/// The dashboard's figures, ready to show.
pub struct Figures {
    query: String,
    brand_param: String,
    open_orders: i64,
    to_ship: i64,
    revenue_today: String,
    revenue_week: String,
    unread_messages: Option<i64>,
    low_stock: Vec<LowStock>,
    alerts: Vec<AlertRow>,
    csrf: String,
    updated: view::When,
}

/// A staff alert on the dashboard.
pub struct AlertRow {
    id: StaffAlertId,
    message: String,
    raised: view::When,
    /// The order it concerns, for a link.
    order_id: Option<String>,
    /// Whether it has a dead job to retry.
    can_retry: bool,
}

/// How many open alerts the dashboard shows.
const ALERTS_SHOWN: i64 = 20;

#[derive(Template)]
#[template(path = "admin/dashboard.html")]
struct DashboardPage {
    chrome: Chrome,
    brands: Vec<BrandOption>,
    figures: Figures,
    /// The setup steps, until the first order arrives.
    setup: Option<Vec<SetupStep>>,
}

/// One step of the setup checklist.
pub struct SetupStep {
    /// What to do.
    label: &'static str,
    /// Where it is done.
    href: String,
    done: bool,
}

/// The setup checklist of a new organization, until its first order: each
/// step links to the page where it is done, and says when it is.
async fn setup_steps(state: &AppState, staff: &Staff, brands: &[Brand]) -> Result<Option<Vec<SetupStep>>, PageError> {
    let progress = dashboard::setup_progress(&state.db, staff.caller.scope()).await?;
    if progress.order {
        return Ok(None);
    }
    let shop = brands.first().map(|brand| format!("/shop/{}", brand.slug)).unwrap_or_else(|| "/admin/settings".into());
    let step = |label, href: &str, done| SetupStep { label, href: href.to_owned(), done };
    Ok(Some(vec![
        step("Create your brand", "/admin/settings", !brands.is_empty()),
        step("Add a warehouse that ships for it", "/admin/warehouses", progress.warehouse),
        step("Add a product and its variants, and put it on sale", "/admin/products", progress.product),
        step("Put stock on the shelf", "/admin/stock", progress.stock),
        step("Open your shop and place a first order", &shop, false),
    ]))
}

#[derive(Template)]
#[template(path = "admin/dashboard_figures.html")]
struct FiguresFragment {
    figures: Figures,
}

/// `?brand_id=`.
#[derive(Deserialize)]
pub struct BrandQuery {
    brand_id: Option<String>,
}

fn brand_from(query: &BrandQuery) -> Result<Option<BrandId>, PageError> {
    filled(&query.brand_id).map(|id| id.parse().map_err(|_| PageError::NotFound)).transpose()
}

fn totals(totals: &[CurrencyTotal]) -> String {
    if totals.is_empty() {
        return view::format_money(0, "USD");
    }
    totals.iter().map(|t| view::format_money(t.amount, &t.currency)).collect::<Vec<_>>().join(" + ")
}

async fn figures_for(state: &AppState, staff: &Staff, brand_id: Option<BrandId>) -> Result<Figures, PageError> {
    if let Some(brand_id) = brand_id {
        staff.caller.authorize_brand(Action::ViewCommerce, brand_id)?;
    }
    let now = Utc::now();
    let midnight = Utc.from_utc_datetime(&now.date_naive().and_hms_opt(0, 0, 0).expect("midnight exists"));
    let monday = midnight - Duration::days(i64::from(now.weekday().num_days_from_monday()));
    let day_start = Timestamp::from_micros(midnight.timestamp_micros());
    let week_start = Timestamp::from_micros(monday.timestamp_micros());
    let (figures, unread, alerts) = tokio::try_join!(
        dashboard::figures(&state.db, staff.caller.scope(), brand_id, day_start, week_start),
        threads::unread_summary_in(&state.db, staff.caller.scope(), brand_id),
        alerts::open(&state.db, staff.caller.scope(), brand_id, ALERTS_SHOWN),
    )?;
    let alerts = alerts
        .into_iter()
        .map(|alert| AlertRow {
            id: alert.id,
            message: alert.message,
            raised: view::time(alert.created_at),
            order_id: (alert.subject_type == "order").then_some(alert.subject_id),
            can_retry: alert.job_id.is_some(),
        })
        .collect();
    let brand_param = brand_id.map(|id| format!("&brand_id={id}")).unwrap_or_default();
    Ok(Figures {
        query: brand_id.map(|id| format!("?brand_id={id}")).unwrap_or_default(),
        brand_param,
        open_orders: figures.open_orders,
        to_ship: figures.to_ship,
        revenue_today: totals(&figures.revenue_today),
        revenue_week: totals(&figures.revenue_week),
        unread_messages: Some(unread.messages),
        low_stock: figures.low_stock,
        alerts,
        csrf: staff.csrf.clone(),
        updated: view::time(Timestamp::now()),
    })
}

/// `GET /admin`.
pub async fn page(
    State(state): State<AppState>,
    staff: Staff,
    Query(query): Query<BrandQuery>,
) -> Result<Response, PageError> {
    let brand_id = brand_from(&query)?;
    let brands = staff.brands(&state).await?;
    let figures = figures_for(&state, &staff, brand_id).await?;
    let setup = setup_steps(&state, &staff, &brands).await?;
    render(&DashboardPage {
        chrome: staff.chrome("dashboard", "Dashboard"),
        brands: brand_options(&brands, brand_id),
        figures,
        setup,
    })
}

/// `GET /admin/dashboard/figures`: the live part of the dashboard.
pub async fn figures(
    State(state): State<AppState>,
    staff: Staff,
    Query(query): Query<BrandQuery>,
) -> Result<Response, PageError> {
    let brand_id = brand_from(&query)?;
    render(&FiguresFragment { figures: figures_for(&state, &staff, brand_id).await? })
}

/// How many open alerts the header's badge counts before it says "20+".
const ALERTS_COUNTED: usize = 20;

#[derive(Template)]
#[template(path = "admin/alert_badge.html")]
struct AlertBadge {
    count: usize,
    capped: bool,
}

/// `GET /admin/alerts/badge`: the header's count of open alerts, on every
/// staff page; it refreshes when the live socket reports a new alert.
pub async fn alert_badge(State(state): State<AppState>, staff: Staff) -> Result<Response, PageError> {
    let open = alerts::open(&state.db, staff.caller.scope(), None, ALERTS_COUNTED as i64).await?;
    render(&AlertBadge { count: open.len(), capped: open.len() >= ALERTS_COUNTED })
}

/// The alert a form acts on.
async fn alert_for(state: &AppState, staff: &Staff, alert_id: &str) -> Result<alerts::StaffAlert, PageError> {
    let alert_id: StaffAlertId = alert_id.parse().map_err(|_| PageError::NotFound)?;
    let open = alerts::open(&state.db, staff.caller.scope(), None, i64::MAX).await?;
    let alert = open.into_iter().find(|alert| alert.id == alert_id).ok_or(PageError::NotFound)?;
    if let Some(brand_id) = alert.brand_id {
        staff.caller.authorize_brand(Action::EditCommerce, brand_id)?;
    }
    Ok(alert)
}

/// `POST /admin/alerts/{id}/retry`: puts the alert's dead job back in the
/// queue (a dead refund is sent again under its idempotency key).
pub async fn retry_alert(
    State(state): State<AppState>,
    staff: Staff,
    axum::extract::Path(alert_id): axum::extract::Path<String>,
) -> Result<Response, PageError> {
    let alert = alert_for(&state, &staff, &alert_id).await?;
    let result = alerts::retry(&state.db, staff.caller.scope(), alert.id).await.map_err(crate::error::AppError::from);
    settle(result, "/admin", "The job is queued again.")
}

/// `POST /admin/alerts/{id}/resolve`: marks the alert as dealt with.
pub async fn resolve_alert(
    State(state): State<AppState>,
    staff: Staff,
    axum::extract::Path(alert_id): axum::extract::Path<String>,
) -> Result<Response, PageError> {
    let alert = alert_for(&state, &staff, &alert_id).await?;
    let result = alerts::resolve(&state.db, staff.caller.scope(), alert.id).await.map_err(crate::error::AppError::from);
    settle(result, "/admin", "Alert resolved.")
}
