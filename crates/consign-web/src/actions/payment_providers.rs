//! A brand's payment-provider credentials, the use case shared by the API
//! and the pages: which fields each provider takes, and checking, sealing
//! (AES-256-GCM under the master key) and storing them. Write-only: no
//! answer, log line or error carries a value back.
//! `api::payment_providers` answers with it in JSON, `pages::providers` on
//! the brand's settings page.

use consign_db::payments::{self, ProviderSettings};
use consign_domain::BrandId;
use consign_domain::policy::Action;
use consign_payments::{Credentials, ProviderKind};
use serde_json::Value;

use crate::AppState;
use crate::error::{AppError, AppResult, FieldError};
use crate::extract::Caller;

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

/// Checks, seals and stores a brand's credentials for a provider (for
/// `PUT /api/v1/brands/{id}/payment-providers/{provider}` and the settings
/// page): `ManageBrand` on the brand, every field of the provider present,
/// nothing else. Errors never quote a value.
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
