//! A brand's payment-provider credentials: write-only. They are sealed with
//! AES-256-GCM under the master key before they reach storage, and no
//! response, log line or error ever carries them back.

use axum::extract::State;
use axum::http::StatusCode;
use consign_db::Page;
use consign_db::payments::{self, ProviderSettings};
use consign_domain::BrandId;
use consign_domain::policy::Action;
use consign_payments::{Credentials, ProviderKind};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{AppError, AppResult, FieldError, Problem};
use crate::extract::{AppJson, AppPath, Caller, whole_list};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(put_provider)).routes(routes!(list_providers))
}

/// The fields each provider needs, then the optional ones; every one a
/// string (the settings page draws its forms from this too).
pub(crate) fn required_fields(kind: ProviderKind) -> (&'static [&'static str], &'static [&'static str]) {
    match kind {
        ProviderKind::Stripe => (&["secret_key", "webhook_secret"], &["publishable_key"]),
        ProviderKind::Razorpay => (&["key_id", "key_secret", "webhook_secret"], &[]),
        ProviderKind::Paypal => (&["client_id", "client_secret", "webhook_id"], &[]),
        ProviderKind::Manual => (&[], &[]),
    }
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

/// Checks, seals and stores a brand's credentials for a provider (the API
/// above and the settings page): `ManageBrand` on the brand, every field of
/// the provider present, nothing else. Errors never quote a value.
pub(crate) async fn store(
    state: &AppState,
    caller: &Caller,
    brand_id: BrandId,
    provider: &str,
    mut fields: serde_json::Map<String, Value>,
) -> AppResult<ProviderSettings> {
    caller.authorize_brand(Action::ManageBrand, brand_id)?;
    let kind = ProviderKind::parse(provider).filter(|k| k.needs_credentials()).ok_or(AppError::NotFound)?;
    let (required, optional) = required_fields(kind);
    let mut problems = Vec::new();
    for name in required {
        if fields.get(*name).and_then(Value::as_str).is_none_or(|v| v.trim().is_empty()) {
            problems.push(FieldError::new(*name, "is required: a non-empty string"));
        }
    }
    for name in optional {
        if fields.get(*name).is_some_and(|v| !v.is_null() && !v.is_string()) {
            problems.push(FieldError::new(*name, "must be a string"));
        }
    }
    for name in fields.keys() {
        if !required.contains(&name.as_str()) && !optional.contains(&name.as_str()) {
            problems.push(FieldError::new(name.clone(), "is not a field of this provider"));
        }
    }
    if !problems.is_empty() {
        return Err(AppError::Validation(problems));
    }
    fields.insert("provider".into(), Value::String(kind.as_str().into()));
    // Shapes were checked above, so this only fails on a bug; its message is
    // not shown (it could quote a value).
    let credentials: Credentials = serde_json::from_value(Value::Object(fields))
        .map_err(|_| AppError::Internal(anyhow::anyhow!("credentials did not deserialize after validation")))?;
    let keyring = state
        .gateway
        .keyring()
        .map_err(|_| AppError::Unavailable("Credentials cannot be stored: no master key is configured.".into()))?;
    let organization_id = payments::brand_organization(&state.db, brand_id).await?;
    let sealed =
        keyring.seal(&credentials.to_sealable(), &payments::credentials_aad(organization_id, brand_id, kind.as_str()));
    let public_id = credentials.public_id();
    let settings = payments::put_credentials(
        &state.db,
        caller.scope(),
        brand_id,
        kind.as_str(),
        public_id.as_deref(),
        (&sealed.key_id, &sealed.nonce, &sealed.ciphertext),
    )
    .await?;
    Ok(settings)
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
