//! `/admin/settings/brands/{id}/messages`: what a brand says to its
//! customers, set up in the pages: its notification templates (each kind
//! and channel, the built-in wording until the brand writes its own) and
//! its canned responses for the order thread. Saving goes through the use
//! cases the API shares (`actions::brand_messages`).

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use consign_db::brands::{self, Brand};
use consign_db::messages::canned;
use consign_db::notifications;
use consign_domain::BrandId;
use consign_domain::policy::Action;
use serde::Deserialize;

use super::orders::parse_id;
use super::view::{self, filled};
use super::{Chrome, PageError, PageForm, Staff, render, settle};
use crate::AppState;
use crate::actions::brand_messages::{self, TemplateInput};

/// The brand messages routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/settings/brands/{id}/messages", get(page))
        .route("/admin/settings/brands/{id}/templates/{kind}/{channel}", post(save_template))
        .route("/admin/settings/brands/{id}/canned-responses", post(add_canned))
}

/// A template on the page.
pub struct TemplateRow {
    kind: String,
    /// The kind in words.
    label: String,
    channel: String,
    enabled: bool,
    subject: String,
    body: String,
    customized: bool,
    /// An id-safe name of the row (`order-paid-email`).
    slug: String,
}

/// A canned response on the page.
pub struct CannedRow {
    name: String,
    body: String,
}

#[derive(Template)]
#[template(path = "admin/brand_messages.html")]
struct MessagesPage {
    chrome: Chrome,
    brand: Brand,
    templates: Vec<TemplateRow>,
    canned: Vec<CannedRow>,
    may_manage: bool,
}

fn messages_path(brand_id: BrandId) -> String {
    format!("/admin/settings/brands/{brand_id}/messages")
}

/// `GET /admin/settings/brands/{id}/messages`.
pub async fn page(State(state): State<AppState>, staff: Staff, Path(id): Path<String>) -> Result<Response, PageError> {
    let brand_id: BrandId = parse_id(&id)?;
    staff.caller.authorize_brand(Action::ViewBrand, brand_id)?;
    let scope = staff.caller.scope();
    let brand = brands::get(&state.db, scope, brand_id).await?;
    let templates = notifications::templates(&state.db, scope, brand_id)
        .await?
        .into_iter()
        .map(|t| TemplateRow {
            label: view::words(&t.kind),
            slug: format!("{}-{}", t.kind.replace('.', "-"), t.channel),
            channel: t.channel.to_string(),
            kind: t.kind,
            enabled: t.enabled,
            subject: t.subject,
            body: t.body,
            customized: t.customized,
        })
        .collect();
    let canned = canned::list(&state.db, scope, brand_id)
        .await?
        .into_iter()
        .map(|c| CannedRow { name: c.name, body: c.body })
        .collect();
    render(&MessagesPage {
        chrome: staff.chrome("settings", format!("Messages · {}", brand.name)),
        may_manage: scope.grants().allows_on_brand(Action::ManageBrand, brand_id),
        brand,
        templates,
        canned,
    })
}

/// A template form.
#[derive(Deserialize)]
pub struct TemplateForm {
    enabled: Option<String>,
    subject: Option<String>,
    body: String,
}

/// `POST /admin/settings/brands/{id}/templates/{kind}/{channel}`.
pub async fn save_template(
    State(state): State<AppState>,
    staff: Staff,
    Path((id, kind, channel)): Path<(String, String, String)>,
    PageForm(form): PageForm<TemplateForm>,
) -> Result<Response, PageError> {
    let brand_id: BrandId = parse_id(&id)?;
    let input = TemplateInput {
        enabled: filled(&form.enabled).is_some(),
        subject: form.subject.unwrap_or_default(),
        body: form.body,
    };
    let result = brand_messages::save_template(&state, &staff.caller, brand_id, &kind, &channel, input).await;
    let saved = format!("{} by {channel} saved.", view::words(&kind));
    settle(result, &messages_path(brand_id), saved)
}

/// The canned response form.
#[derive(Deserialize)]
pub struct CannedForm {
    name: String,
    body: String,
}

/// `POST /admin/settings/brands/{id}/canned-responses`.
pub async fn add_canned(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    PageForm(form): PageForm<CannedForm>,
) -> Result<Response, PageError> {
    let brand_id: BrandId = parse_id(&id)?;
    let result = brand_messages::create_canned(&state, &staff.caller, brand_id, &form.name, &form.body).await;
    settle(result, &messages_path(brand_id), format!("Canned response “{}” added.", form.name.trim()))
}
