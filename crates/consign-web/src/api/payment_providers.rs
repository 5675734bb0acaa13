//! A brand's payment-provider credentials: write-only. They are sealed with
//! AES-256-GCM under the master key before they reach storage, and no
//! response, log line or error ever carries them back. Checking, sealing
//! and storing them is the use case the settings page shares, in
//! `actions::payment_providers`; this module is its JSON face.

use axum::extract::State;
use axum::http::StatusCode;
use consign_db::Page;
use consign_db::payments::{self, ProviderSettings};
use consign_domain::BrandId;
use consign_domain::policy::Action;
use consign_payments::ProviderKind;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::actions::payment_providers::store;
use crate::error::{AppError, AppResult, Problem};
use crate::extract::{AppJson, AppPath, Caller, whole_list};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(put_provider)).routes(routes!(list_providers))
}

/// Sets a brand's credentials for `stripe` (`secret_key`, `webhook_secret`,
/// optional `publishable_key`), `razorpay` (`key_id`, `key_secret`,
/// `webhook_secret`) or `paypal` (`client_id`, `client_secret`,
/// `webhook_id`). Write-only: the answer shows the provider and its public
/// id, never a secret.
#[utoipa::path(put, path = "/brands/{id}/payment-providers/{provider}", tag = "payments",
    request_body(content = Object, description = "The provider's credentials"),
    params(("id" = String, Path, description = "Brand id"), ("provider" = String, Path, description = "stripe, razorpay or paypal")),
    responses((status = 200, body = ProviderSettings), (status = 404, body = Problem), (status = 422, body = Problem),
               (status = 503, description = "No master key is configured", body = Problem)),
    security(("bearer" = [])))]
async fn put_provider(
    State(state): State<AppState>,
    caller: Caller,
    AppPath((brand_id, provider)): AppPath<(BrandId, String)>,
    AppJson(body): AppJson<Value>,
) -> AppResult<(StatusCode, AppJson<ProviderSettings>)> {
    let Value::Object(fields) = body else {
        caller.authorize_brand(Action::ManageBrand, brand_id)?;
        ProviderKind::parse(&provider).filter(|k| k.needs_credentials()).ok_or(AppError::NotFound)?;
        return Err(AppError::field("", "must be an object of the provider's credentials"));
    };
    Ok((StatusCode::OK, AppJson(store(&state, &caller, brand_id, &provider, fields).await?)))
}

/// The providers a brand has set up (no secrets).
#[utoipa::path(get, path = "/brands/{id}/payment-providers", tag = "payments",
    params(("id" = String, Path, description = "Brand id")),
    responses((status = 200, description = "Every provider set up, in one page", body = Page<ProviderSettings>), (status = 404, body = Problem)),
    security(("bearer" = [])))]
async fn list_providers(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(brand_id): AppPath<BrandId>,
) -> AppResult<AppJson<Page<ProviderSettings>>> {
    caller.authorize_brand(Action::ViewBrand, brand_id)?;
    Ok(AppJson(whole_list(payments::list_credentials(&state.db, caller.scope(), brand_id).await?)))
}
