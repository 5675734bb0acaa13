//! Provider webhooks in, and the webhook event log for staff.
//!
//! `POST /webhooks/{provider}/{brand_slug}` verifies the delivery over its
//! raw bytes exactly as the provider documents (Stripe-Signature,
//! X-Razorpay-Signature, PayPal's verify-webhook-signature call), stores the
//! event raw in the log, de-duplicated by the provider's event id, and
//! answers 200 at once. A job applies it from the log. A bad signature is a
//! 401 `signature_invalid` and stores nothing but a log line.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use consign_db::orders::checkout;
use consign_db::payments::{self, WebhookEvent, WebhookFilter};
use consign_db::{DbError, Page};
use consign_domain::BrandId;
use consign_domain::policy::Action;
use consign_payments::{PaymentError, PaymentProvider as _, ProviderKind};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{AppError, AppResult, Problem};
use crate::extract::{AppJson, AppPath, AppQuery, Caller, PageQuery};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(receive)).routes(routes!(list_events))
}

/// The answer to an accepted delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct Received {
    /// Always true.
    pub received: bool,
    /// This event id was received before (nothing new was stored).
    pub duplicate: bool,
}

/// Receives a provider webhook for a brand.
#[utoipa::path(post, path = "/webhooks/{provider}/{brand_slug}", tag = "payments",
    request_body(content = Object, description = "The provider's event, as it sends it"),
    params(("provider" = String, Path, description = "stripe, razorpay or paypal"),
           ("brand_slug" = String, Path, description = "The brand's slug")),
    responses((status = 200, body = Received),
               (status = 400, description = "Not an event of this provider", body = Problem),
               (status = 401, description = "signature_invalid", body = Problem),
               (status = 404, description = "No such brand, or the provider is not set up", body = Problem)))]
async fn receive(
    State(state): State<AppState>,
    AppPath((provider, brand_slug)): AppPath<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<AppJson<Received>> {
    let kind = ProviderKind::parse(&provider).filter(|k| k.needs_credentials()).ok_or(AppError::NotFound)?;
    let brand = checkout::storefront_brand(&state.db, &brand_slug).await?;
    let client = consign_app::provider_accounts::provider(&state.db, &state.gateway, brand.id, kind)
        .await?
        .ok_or(AppError::NotFound)?;
    let now = consign_domain::Timestamp::now().as_micros() / 1_000_000;
    match client.verify_webhook(&headers, &body, now).await {
        Ok(()) => {}
        Err(PaymentError::Unavailable { detail, .. }) => {
            return Err(AppError::Unavailable(format!("The provider could not verify the delivery: {detail}")));
        }
        Err(error) => {
            tracing::warn!(provider = %kind, brand = %brand.slug, reason = %error, "webhook rejected: signature invalid");
            return Err(AppError::SignatureInvalid);
        }
    }
    let event = client
        .parse_event(&headers, &body)
        .map_err(|error| AppError::BadRequest { detail: format!("Not a {kind} event: {error}"), errors: vec![] })?;
    let payload = std::str::from_utf8(&body)
        .map_err(|_| AppError::BadRequest { detail: "The body is not UTF-8.".into(), errors: vec![] })?;
    let (id, duplicate) = payments::accept_webhook(
        &state.db,
        brand.organization_id,
        brand.id,
        kind.as_str(),
        &event.event_id,
        &event.event_type,
        payload,
    )
    .await?;
    tracing::info!(provider = %kind, brand = %brand.slug, webhook_event_id = %id, event_type = %event.event_type, duplicate, "webhook accepted");
    Ok(AppJson(Received { received: true, duplicate }))
}

/// Filters of `GET /webhook-events`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventLogQuery {
    /// `pending`, `waiting`, `applied`, `ignored` or `parked`.
    pub outcome: Option<String>,
    /// One brand.
    pub brand_id: Option<BrandId>,
    /// `stripe`, `razorpay` or `paypal`.
    pub provider: Option<String>,
    /// Rows per page, 1 to 200.
    pub limit: Option<u32>,
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// The webhook event log of the brands the caller sees, newest first;
/// `?outcome=parked` lists the events that can never apply.
#[utoipa::path(get, path = "/webhook-events", tag = "payments", params(EventLogQuery),
    responses((status = 200, body = Page<WebhookEvent>), (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn list_events(
    State(state): State<AppState>,
    caller: Caller,
    AppQuery(query): AppQuery<EventLogQuery>,
) -> AppResult<AppJson<Page<WebhookEvent>>> {
    if let Some(brand_id) = query.brand_id {
        caller.authorize_brand(Action::ViewCommerce, brand_id)?;
    }
    if let Some(outcome) = &query.outcome
        && !["pending", "waiting", "applied", "ignored", "parked"].contains(&outcome.as_str())
    {
        return Err(AppError::field("outcome", "must be pending, waiting, applied, ignored or parked"));
    }
    let filter = WebhookFilter { outcome: query.outcome, brand_id: query.brand_id, provider: query.provider };
    let page = PageQuery { limit: query.limit, cursor: query.cursor }.to_request()?;
    let events =
        payments::list_webhook_events(&state.db, caller.scope(), &filter, &page).await.map_err(|e| match e {
            DbError::NotFound => AppError::NotFound,
            other => other.into(),
        })?;
    Ok(AppJson(events))
}
