//! How the customer pays, as the API answers it: the checkout's and a
//! payment retry's `payment` object. The attempt itself is started by
//! `consign_app::payment_start::start_attempt`, and a brand's provider
//! client is opened by `consign_app::provider_accounts`; this module only
//! shapes a stored attempt (or a manual payment) for the page.

use consign_db::orders::Order;
use consign_db::orders::checkout::StorefrontBrand;
use consign_db::payments;
use consign_domain::{Money, PaymentAttemptId};
use consign_payments::ProviderKind;
use serde::Serialize;
use utoipa::ToSchema;

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
    pub fn manual(order: &Order, brand: &StorefrontBrand) -> Self {
        let text = consign_app::checkout::bank_transfer_instructions(order, brand);
        Self::new(ProviderKind::Manual, "pending", order.outstanding.clone(), text)
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
