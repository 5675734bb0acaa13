//! Notification settings and the delivery log: a brand's templates per kind
//! and channel, its staff digest window, and what was sent about an order.

use axum::extract::State;
use consign_db::Page;
use consign_db::notifications::{self, Notification, Settings, Template};
use consign_domain::policy::Action;
use consign_domain::{BrandId, OrderId};
use garde::Validate;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::actions::brand_messages::{self, TemplateInput};
use crate::error::{AppResult, Problem};
use crate::extract::{AppJson, AppPath, AppQuery, Caller, PageQuery, whole_list};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_templates))
        .routes(routes!(put_template))
        .routes(routes!(get_settings, put_settings))
        .routes(routes!(order_notifications))
}

/// Every notification template of a brand: its own or the built-in one,
/// for each kind and channel.
#[utoipa::path(get, path = "/brands/{id}/notification-templates", tag = "notifications",
    params(("id" = String, Path, description = "Brand id")),
    responses((status = 200, description = "Every template, in one page", body = Page<Template>), (status = 404, body = Problem)),
    security(("bearer" = [])))]
async fn list_templates(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(brand_id): AppPath<BrandId>,
) -> AppResult<AppJson<Page<Template>>> {
    caller.authorize_brand(Action::ViewBrand, brand_id)?;
    Ok(AppJson(whole_list(notifications::templates(&state.db, caller.scope(), brand_id).await?)))
}

/// `PUT /brands/{id}/notification-templates/{kind}/{channel}`. The fields
/// are checked by the use case the brand's messages page shares
/// (`actions::brand_messages`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateRequest {
    /// Whether this channel sends this kind (SMS and WhatsApp are off until
    /// a brand turns them on).
    pub enabled: bool,
    /// Email subject (required for email); placeholders allowed.
    #[serde(default)]
    #[schema(max_length = 300)]
    pub subject: String,
    /// The text; placeholders: `{{order.number}}`, `{{customer.name}}`,
    /// `{{customer.email}}`, `{{order.url}}`, `{{tracking.url}}`,
    /// `{{message.body}}`, `{{brand.name}}`.
    #[schema(min_length = 1, max_length = 5000)]
    pub body: String,
}

/// Saves a brand's template for one kind and channel (brand admins). SMS
/// and WhatsApp can be turned on only for a brand an operator approved
/// (`consign admin approve-messaging`), unless the installation lets every
/// brand (`CONSIGN_ALLOW_BRAND_SMS`): texts cost the operator money and
/// are the favourite of pumping fraud. A brand's own wording is used once
/// it has a paid order or an operator's approval; until then customers get
/// the built-in texts.
#[utoipa::path(put, path = "/brands/{id}/notification-templates/{kind}/{channel}", tag = "notifications",
    request_body = TemplateRequest,
    params(("id" = String, Path, description = "Brand id"),
           ("kind" = String, Path, description = "Such as order.paid, shipment.in_transit, message.reply"),
           ("channel" = String, Path, description = "email, sms or whatsapp")),
    responses((status = 200, body = Template), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn put_template(
    State(state): State<AppState>,
    caller: Caller,
    AppPath((brand_id, kind, channel)): AppPath<(BrandId, String, String)>,
    AppJson(request): AppJson<TemplateRequest>,
) -> AppResult<AppJson<Template>> {
    let input = TemplateInput { enabled: request.enabled, subject: request.subject, body: request.body };
    Ok(AppJson(brand_messages::save_template(&state, &caller, brand_id, &kind, &channel, input).await?))
}

/// A brand's notification settings.
#[utoipa::path(get, path = "/brands/{id}/notification-settings", tag = "notifications",
    params(("id" = String, Path, description = "Brand id")),
    responses((status = 200, body = Settings), (status = 404, body = Problem)),
    security(("bearer" = [])))]
async fn get_settings(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(brand_id): AppPath<BrandId>,
) -> AppResult<AppJson<Settings>> {
    caller.authorize_brand(Action::ViewBrand, brand_id)?;
    Ok(AppJson(notifications::settings(&state.db, caller.scope(), brand_id).await?))
}

/// `PUT /brands/{id}/notification-settings`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsRequest {
    /// Staff get at most one email per thread per this many seconds
    /// (1 to 86400; default 300).
    #[garde(range(min = 1, max = 86_400))]
    pub staff_digest_seconds: i64,
}

/// Saves a brand's notification settings (brand admins).
#[utoipa::path(put, path = "/brands/{id}/notification-settings", tag = "notifications",
    request_body = SettingsRequest,
    params(("id" = String, Path, description = "Brand id")),
    responses((status = 200, body = Settings), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn put_settings(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(brand_id): AppPath<BrandId>,
    AppJson(request): AppJson<SettingsRequest>,
) -> AppResult<AppJson<Settings>> {
    caller.authorize_brand(Action::ManageBrand, brand_id)?;
    request.validate()?;
    let settings = Settings { staff_digest_seconds: request.staff_digest_seconds };
    Ok(AppJson(notifications::save_settings(&state.db, caller.scope(), brand_id, settings).await?))
}

/// What was sent about an order, to its customer and its staff, with each
/// delivery's status (staff only).
#[utoipa::path(get, path = "/orders/{id}/notifications", tag = "notifications",
    params(("id" = String, Path, description = "Order id"), PageQuery),
    responses((status = 200, description = "A page of notifications, oldest first", body = Page<Notification>), (status = 404, body = Problem)),
    security(("bearer" = [])))]
async fn order_notifications(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(order_id): AppPath<OrderId>,
    AppQuery(page): AppQuery<PageQuery>,
) -> AppResult<AppJson<Page<Notification>>> {
    let rows = notifications::for_order(&state.db, caller.scope(), order_id).await?;
    Ok(AppJson(page.page_of(rows, |notification| notification.id.to_string())?))
}
