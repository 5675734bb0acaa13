//! A brand's payment providers on its settings page, write-only: the page
//! shows which providers are configured (and their public id), never a
//! secret; a form per provider takes new credentials, which are checked,
//! sealed under the master key and stored by the same use case as
//! `PUT /api/v1/brands/{id}/payment-providers/{provider}`
//! (`actions::payment_providers::store`, `ManageBrand`).

use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::post;
use consign_db::payments::{self, ProviderSettings};
use consign_domain::BrandId;
use consign_payments::ProviderKind;
use serde_json::Value;

use super::orders::parse_id;
use super::view;
use super::{PageError, Staff, settle};
use crate::AppState;
use crate::actions::payment_providers::{required_fields, store};
use crate::pages::PageForm;

/// The provider routes.
pub fn router() -> axum::Router<AppState> {
    Router::new().route("/admin/settings/brands/{id}/payment-providers/{provider}", post(save))
}

/// A credential field of a provider's form.
pub struct FieldView {
    pub(crate) name: &'static str,
    pub(crate) label: String,
    pub(crate) required: bool,
}

/// A provider on the settings page.
pub struct ProviderView {
    pub(crate) code: &'static str,
    pub(crate) label: &'static str,
    /// When its credentials were last saved; empty when not configured.
    pub(crate) configured: String,
    /// Its public identifier, if it has one.
    pub(crate) public_id: String,
    pub(crate) fields: Vec<FieldView>,
}

fn label_of(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::Stripe => "Stripe",
        ProviderKind::Razorpay => "Razorpay",
        ProviderKind::Paypal => "PayPal",
        ProviderKind::Manual => "Bank transfer",
    }
}

/// The providers that take credentials, with what is configured.
pub async fn views(state: &AppState, staff: &Staff, brand_id: BrandId) -> Result<Vec<ProviderView>, PageError> {
    let configured: Vec<ProviderSettings> =
        payments::list_credentials(&state.db, staff.caller.scope(), brand_id).await?;
    Ok(ProviderKind::ALL
        .into_iter()
        .filter(|kind| kind.needs_credentials())
        .map(|kind| {
            let settings = configured.iter().find(|s| s.provider == kind.as_str());
            let (required, optional) = required_fields(kind);
            ProviderView {
                code: kind.as_str(),
                label: label_of(kind),
                configured: settings.map(|s| view::time_text(s.updated_at)).unwrap_or_default(),
                public_id: settings.and_then(|s| s.public_id.clone()).unwrap_or_default(),
                fields: required
                    .iter()
                    .map(|&name| FieldView { name, label: view::words(name), required: true })
                    .chain(optional.iter().map(|&name| FieldView {
                        name,
                        label: format!("{} (optional)", view::words(name)),
                        required: false,
                    }))
                    .collect(),
            }
        })
        .collect())
}

/// `POST /admin/settings/brands/{id}/payment-providers/{provider}`: the
/// provider's fields; empty optional fields are left out.
pub async fn save(
    State(state): State<AppState>,
    staff: Staff,
    Path((id, provider)): Path<(String, String)>,
    PageForm(fields): PageForm<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let brand_id: BrandId = parse_id(&id)?;
    let credentials: serde_json::Map<String, Value> = fields
        .into_iter()
        .filter(|(name, value)| name != super::session::CSRF_FIELD && !value.trim().is_empty())
        .map(|(name, value)| (name, Value::String(value.trim().to_owned())))
        .collect();
    let result = store(&state, &staff.caller, brand_id, &provider, credentials).await;
    let label = ProviderKind::parse(&provider).map(label_of).unwrap_or("Provider");
    settle(
        result,
        &format!("/admin/settings/brands/{brand_id}#payments-h"),
        format!("{label} credentials saved. They are stored encrypted and never shown again."),
    )
}
