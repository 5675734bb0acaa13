//! Calls to payment providers from a request: opening a brand's sealed
//! credentials into a provider client (to start a payment, to verify a
//! webhook or a checkout callback), and starting a payment attempt after
//! the order's transaction has committed (never inside it).

use consign_db::orders::Order;
use consign_db::{Scope, payments};
use consign_domain::{BrandId, Money, PaymentAttemptId};
use consign_payments::{Credentials, PaymentProvider as _, PaymentRequest, Provider, ProviderKind, Sealed};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{AppError, AppResult};

/// Whether the brand can take payments through `kind` now.
pub async fn is_configured(state: &AppState, brand_id: BrandId, kind: ProviderKind) -> AppResult<bool> {
    if !kind.needs_credentials() {
        return Ok(true);
    }
    if state.gateway.keyring.is_none() {
        return Ok(false);
    }
    Ok(payments::sealed_credentials(&state.db, brand_id, kind.as_str()).await?.is_some())
}

/// The brand's credentials for `kind`, opened. `None` when it has none.
pub async fn credentials(state: &AppState, brand_id: BrandId, kind: ProviderKind) -> AppResult<Option<Credentials>> {
    let Some(row) = payments::sealed_credentials(&state.db, brand_id, kind.as_str()).await? else {
        return Ok(None);
    };
    let keyring = state.gateway.keyring().map_err(|e| AppError::Unavailable(e.to_string()))?;
    let sealed = Sealed { key_id: row.key_id, nonce: row.nonce, ciphertext: row.ciphertext };
    let aad = payments::credentials_aad(row.organization_id, row.brand_id, &row.provider);
    // The error names the key id at most, never key material or plaintext.
    let plaintext = keyring.open(&sealed, &aad).map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))?;
    let credentials = Credentials::from_sealable(&plaintext).map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))?;
    Ok(Some(credentials))
}

/// A provider client for the brand, or `None` when it has no credentials.
pub async fn provider(state: &AppState, brand_id: BrandId, kind: ProviderKind) -> AppResult<Option<Provider>> {
    Ok(credentials(state, brand_id, kind).await?.map(|c| state.gateway.provider(c)))
}

/// How the customer pays: what the checkout page needs for the provider.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentInstructions {
    /// `manual`, `stripe`, `razorpay` or `paypal`.
    pub provider: String,
    /// `pending` (manual: until staff record the payment),
    /// `requires_action` (the customer pays on the page) or `failed` (the
    /// provider could not be reached; retry with a new attempt).
    pub status: String,
    /// What to pay.
    pub amount: Money,
    /// Words for the customer.
    pub instructions: String,
    /// The attempt (providers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt_id: Option<PaymentAttemptId>,
    /// Stripe: the PaymentIntent's client secret, for Stripe.js.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// Stripe: the PaymentIntent id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_intent_id: Option<String>,
    /// Stripe: the brand's publishable key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publishable_key: Option<String>,
    /// Razorpay: the order id for Checkout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub razorpay_order_id: Option<String>,
    /// Razorpay: the brand's key id for Checkout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// PayPal: the order id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paypal_order_id: Option<String>,
    /// PayPal: where the customer approves the payment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval_url: Option<String>,
    /// Why the attempt could not start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl PaymentInstructions {
    fn new(provider: ProviderKind, status: &str, amount: Money, instructions: String) -> Self {
        Self {
            provider: provider.as_str().into(),
            status: status.into(),
            amount,
            instructions,
            attempt_id: None,
            client_secret: None,
            payment_intent_id: None,
            publishable_key: None,
            razorpay_order_id: None,
            key_id: None,
            paypal_order_id: None,
            approval_url: None,
            error: None,
        }
    }

    /// Manual payment: bank transfer, recorded by staff.
    pub fn manual(order: &Order, brand_name: &str) -> Self {
        Self::new(
            ProviderKind::Manual,
            "pending",
            order.outstanding.clone(),
            format!(
                "Pay {} {:.2} by bank transfer to {} quoting order {}.",
                order.outstanding.currency,
                order.outstanding.amount as f64 / 100.0,
                brand_name,
                order.number
            ),
        )
    }

    /// The instructions of a stored attempt (to show it again).
    pub fn of_attempt(attempt: &payments::PaymentAttempt) -> Self {
        let kind = ProviderKind::parse(&attempt.provider).unwrap_or(ProviderKind::Manual);
        let text = |key: &str| -> Option<String> {
            attempt.client_data.as_ref().and_then(|c| c.0.get(key)).and_then(|v| v.as_str()).map(str::to_owned)
        };
        let instructions = match kind {
            ProviderKind::Stripe => "Pay with Stripe on the checkout page.",
            ProviderKind::Razorpay => "Pay with Razorpay Checkout on the checkout page.",
            ProviderKind::Paypal => "Approve the payment on PayPal.",
            ProviderKind::Manual => "Pay by bank transfer.",
        };
        let mut shown =
            Self::new(kind, &attempt.status, Money::new(attempt.amount, attempt.currency.clone()), instructions.into());
        shown.attempt_id = Some(attempt.id);
        shown.client_secret = text("client_secret");
        shown.payment_intent_id = text("payment_intent_id");
        shown.publishable_key = text("publishable_key");
        shown.razorpay_order_id = text("razorpay_order_id");
        shown.key_id = text("key_id");
        shown.paypal_order_id = text("paypal_order_id");
        shown.approval_url = text("approval_url");
        shown.error = attempt.failure.clone();
        shown
    }
}

/// Starts a payment attempt for what the order owes and asks the provider
/// for the payment (after every transaction has committed). A provider
/// that fails leaves a `failed` attempt; the customer may retry.
pub async fn start_attempt(
    state: &AppState,
    scope: &Scope,
    order: &Order,
    brand_slug: &str,
    kind: ProviderKind,
) -> AppResult<PaymentInstructions> {
    let provider = provider(state, order.brand_id, kind)
        .await?
        .ok_or_else(|| AppError::field("payment_provider", "is not set up for this brand"))?;
    let attempt = payments::create_attempt(&state.db, scope, order.id, kind.as_str()).await?;
    let request = PaymentRequest {
        attempt_id: attempt.id.to_string(),
        order_id: order.id.to_string(),
        order_number: order.number.clone(),
        brand_id: order.brand_id.to_string(),
        brand_slug: brand_slug.to_owned(),
        amount: attempt.amount,
        currency: attempt.currency.clone(),
    };
    let attempt = match provider.create_payment(&request).await {
        Ok(created) => payments::attempt_started(&state.db, attempt.id, &created.reference, &created.client).await?,
        Err(error) => {
            tracing::warn!(order_id = %order.id, attempt_id = %attempt.id, provider = %kind, %error, "payment attempt could not start");
            payments::attempt_failed_to_start(&state.db, attempt.id, &error.to_string()).await?
        }
    };
    Ok(PaymentInstructions::of_attempt(&attempt))
}
