//! Payment providers behind one interface.
//!
//! - [`PaymentProvider`] is the one trait; [`Provider`] implements it for
//!   `manual`, Stripe, Razorpay and PayPal by dispatching to a small typed
//!   client per provider ([`stripe`], [`razorpay`], [`paypal`]).
//! - [`signature`] verifies webhook and checkout-callback signatures over raw
//!   bytes, in constant time.
//! - [`keyring`] seals brands' provider credentials with AES-256-GCM under a
//!   master key, with key ids for rotation.
//! - [`Gateway`] is what the web edge and the worker share: the keyring, the
//!   providers' base URLs (configuration, so tests point them at local
//!   servers) and one HTTP client.
//!
//! Architecture invariants:
//! - No storage and no HTTP server here: callers load sealed credentials and
//!   store outcomes; this crate only talks to providers.
//! - Credentials are [`secrecy::SecretString`]s: they never appear in
//!   `Debug` output, logs or error messages. Provider errors carry the
//!   provider's status and error code, never a request's headers.
//! - Every provider payment carries Consign's order id, brand id and brand
//!   slug in the provider's metadata, and is created with a provider-side
//!   idempotency key (the attempt id), so a retry never charges twice.

pub mod keyring;
pub mod money;
pub mod paypal;
pub mod razorpay;
pub mod signature;
pub mod stripe;

use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

pub use keyring::{Keyring, KeyringError, Sealed};

/// The providers Consign knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// Bank transfer or cash, recorded by staff.
    Manual,
    /// Stripe PaymentIntents.
    Stripe,
    /// Razorpay Orders.
    Razorpay,
    /// PayPal Orders v2.
    Paypal,
}

impl ProviderKind {
    /// Every provider, `manual` first.
    pub const ALL: [ProviderKind; 4] =
        [ProviderKind::Manual, ProviderKind::Stripe, ProviderKind::Razorpay, ProviderKind::Paypal];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Manual => "manual",
            ProviderKind::Stripe => "stripe",
            ProviderKind::Razorpay => "razorpay",
            ProviderKind::Paypal => "paypal",
        }
    }

    /// Parses the wire name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    /// Whether the provider needs credentials (every one but `manual`).
    pub fn needs_credentials(self) -> bool {
        self != ProviderKind::Manual
    }
}

impl std::fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A brand's credentials for one provider, as stored (sealed) and as the
/// brand sets them. Every secret is a [`SecretString`].
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = "provider", rename_all = "snake_case")]
pub enum Credentials {
    /// Stripe: the secret API key and the webhook endpoint's signing secret.
    Stripe {
        /// `sk_…`.
        #[serde(serialize_with = "expose")]
        secret_key: SecretString,
        /// `whsec_…`.
        #[serde(serialize_with = "expose")]
        webhook_secret: SecretString,
        /// `pk_…`, given to the checkout page.
        publishable_key: Option<String>,
    },
    /// Razorpay: the key pair and the webhook secret.
    Razorpay {
        /// `rzp_…`, public: the checkout page needs it.
        key_id: String,
        /// The key secret (also signs checkout callbacks).
        #[serde(serialize_with = "expose")]
        key_secret: SecretString,
        /// The webhook secret.
        #[serde(serialize_with = "expose")]
        webhook_secret: SecretString,
    },
    /// PayPal: the REST app's client credentials and the webhook's id.
    Paypal {
        /// Client id.
        client_id: String,
        /// Client secret.
        #[serde(serialize_with = "expose")]
        client_secret: SecretString,
        /// The id PayPal gave the webhook, needed to verify its deliveries.
        webhook_id: String,
    },
}

fn expose<S: serde::Serializer>(secret: &SecretString, serializer: S) -> Result<S::Ok, S::Error> {
    use secrecy::ExposeSecret as _;
    serializer.serialize_str(secret.expose_secret())
}

impl Credentials {
    /// The provider these are for.
    pub fn kind(&self) -> ProviderKind {
        match self {
            Credentials::Stripe { .. } => ProviderKind::Stripe,
            Credentials::Razorpay { .. } => ProviderKind::Razorpay,
            Credentials::Paypal { .. } => ProviderKind::Paypal,
        }
    }

    /// What may be shown about them: the non-secret identifier, if any.
    pub fn public_id(&self) -> Option<String> {
        match self {
            Credentials::Stripe { publishable_key, .. } => publishable_key.clone(),
            Credentials::Razorpay { key_id, .. } => Some(key_id.clone()),
            Credentials::Paypal { client_id, .. } => Some(client_id.clone()),
        }
    }

    /// The JSON that is sealed. Only for [`Keyring::seal`].
    pub fn to_sealable(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads what [`Credentials::to_sealable`] wrote.
    pub fn from_sealable(bytes: &[u8]) -> Result<Self, PaymentError> {
        serde_json::from_slice(bytes).map_err(|_| PaymentError::Config("stored credentials are unreadable".into()))
    }
}

/// Base URLs of the providers' APIs.
#[derive(Clone, Debug)]
pub struct Endpoints {
    /// Default `https://api.stripe.com`.
    pub stripe: String,
    /// Default `https://api.razorpay.com`.
    pub razorpay: String,
    /// Default `https://api-m.paypal.com` (sandbox: `https://api-m.sandbox.paypal.com`).
    pub paypal: String,
}

impl Default for Endpoints {
    fn default() -> Self {
        Self {
            stripe: "https://api.stripe.com".into(),
            razorpay: "https://api.razorpay.com".into(),
            paypal: "https://api-m.paypal.com".into(),
        }
    }
}

/// What the web edge and the worker share to talk to providers.
#[derive(Clone, Debug)]
pub struct Gateway {
    /// Seals and opens credentials; `None` when no master key is configured
    /// (then only `manual` works).
    pub keyring: Option<Keyring>,
    /// Where each provider's API is.
    pub endpoints: Endpoints,
    /// One client for every provider call.
    pub http: reqwest::Client,
    /// PayPal access tokens, reused until they expire.
    pub paypal_tokens: paypal::TokenCache,
}

impl Gateway {
    /// A gateway with these settings; provider calls time out after 20 s.
    pub fn new(keyring: Option<Keyring>, endpoints: Endpoints) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .connect_timeout(Duration::from_secs(5))
            .no_proxy()
            .build()
            .unwrap_or_default();
        Self { keyring, endpoints, http, paypal_tokens: paypal::TokenCache::default() }
    }

    /// The keyring, or a configuration error naming what is missing.
    pub fn keyring(&self) -> Result<&Keyring, PaymentError> {
        self.keyring.as_ref().ok_or_else(|| PaymentError::Config("no master key is configured".into()))
    }

    /// A provider client for these credentials.
    pub fn provider(&self, credentials: Credentials) -> Provider {
        match credentials {
            Credentials::Stripe { secret_key, webhook_secret, publishable_key } => Provider::Stripe(stripe::Stripe {
                base: self.endpoints.stripe.clone(),
                http: self.http.clone(),
                secret_key,
                webhook_secret,
                publishable_key,
            }),
            Credentials::Razorpay { key_id, key_secret, webhook_secret } => Provider::Razorpay(razorpay::Razorpay {
                base: self.endpoints.razorpay.clone(),
                http: self.http.clone(),
                key_id,
                key_secret,
                webhook_secret,
            }),
            Credentials::Paypal { client_id, client_secret, webhook_id } => Provider::Paypal(paypal::Paypal {
                base: self.endpoints.paypal.clone(),
                http: self.http.clone(),
                client_id,
                client_secret,
                webhook_id,
                tokens: self.paypal_tokens.clone(),
            }),
        }
    }
}

/// What went wrong talking to a provider.
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    /// The provider could not be reached or answered 5xx/429: try again.
    #[error("{provider} is unavailable: {detail}")]
    Unavailable {
        /// Which.
        provider: ProviderKind,
        /// Status or transport error, never a request.
        detail: String,
    },
    /// The provider refused the request (4xx): retrying will not help.
    #[error("{provider} refused the request: {detail}")]
    Refused {
        /// Which.
        provider: ProviderKind,
        /// The provider's error code and message.
        detail: String,
    },
    /// A webhook or callback signature does not hold.
    #[error("signature invalid: {0}")]
    SignatureInvalid(&'static str),
    /// A webhook body that is not what the provider sends.
    #[error("malformed event: {0}")]
    Malformed(String),
    /// Missing or unusable configuration (no master key, bad credentials).
    #[error("{0}")]
    Config(String),
    /// The provider cannot do this (a refund through `manual`).
    #[error("{0}")]
    Unsupported(&'static str),
}

impl PaymentError {
    /// Whether retrying the same call later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, PaymentError::Unavailable { .. })
    }
}

/// A payment to create with a provider.
#[derive(Clone, Debug)]
pub struct PaymentRequest {
    /// Consign's attempt id: the provider-side idempotency key.
    pub attempt_id: String,
    /// Consign's order id.
    pub order_id: String,
    /// The order's number, such as `#1001`.
    pub order_number: String,
    /// The brand's id.
    pub brand_id: String,
    /// The brand's slug.
    pub brand_slug: String,
    /// Minor units.
    pub amount: i64,
    /// ISO 4217, upper case.
    pub currency: String,
}

/// A payment the provider created, and what the checkout page needs.
#[derive(Clone, Debug)]
pub struct CreatedPayment {
    /// The provider's id of it (PaymentIntent, Razorpay order, PayPal order).
    pub reference: String,
    /// For the page: Stripe client secret, Razorpay order and key id, PayPal
    /// approval link.
    pub client: serde_json::Value,
}

/// A refund to make through a provider.
#[derive(Clone, Debug)]
pub struct RefundRequest {
    /// Consign's refund id: the idempotency key, and carried in metadata.
    pub refund_id: String,
    /// The captured payment to refund (PaymentIntent, Razorpay payment,
    /// PayPal capture).
    pub payment_reference: String,
    /// Consign's order id.
    pub order_id: String,
    /// The brand's id.
    pub brand_id: String,
    /// Minor units.
    pub amount: i64,
    /// ISO 4217.
    pub currency: String,
}

/// Where a refund stands at the provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefundState {
    /// Done.
    Succeeded,
    /// Accepted, settles later (a webhook tells).
    Pending,
    /// Refused.
    Failed,
}

/// The provider's answer to a refund.
#[derive(Clone, Debug)]
pub struct RefundOutcome {
    /// The provider's refund id.
    pub reference: String,
    /// Its state.
    pub state: RefundState,
}

/// A verified webhook event, reduced to what Consign acts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderEvent {
    /// The provider's event id (de-duplication key).
    pub event_id: String,
    /// The provider's event type, such as `payment_intent.succeeded`.
    pub event_type: String,
    /// What it means for Consign.
    pub action: EventAction,
}

/// What an event asks Consign to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventAction {
    /// Money was captured.
    Captured {
        /// The captured payment (refunds name it).
        payment_reference: String,
        /// The attempt's provider reference (PaymentIntent, Razorpay or PayPal order).
        attempt_reference: Option<String>,
        /// Consign's order id from the metadata, if present.
        order_id: Option<String>,
        /// Minor units.
        amount: i64,
        /// ISO 4217, upper case.
        currency: String,
    },
    /// A payment attempt failed.
    Failed {
        /// The attempt's provider reference.
        attempt_reference: String,
        /// Consign's order id from the metadata, if present.
        order_id: Option<String>,
        /// Why, in the provider's words.
        reason: String,
    },
    /// A refund settled (or failed).
    Refund {
        /// The provider's refund id.
        refund_reference: String,
        /// The captured payment it refunds.
        payment_reference: String,
        /// Consign's refund id, when Consign made it.
        refund_id: Option<String>,
        /// Minor units.
        amount: i64,
        /// ISO 4217, upper case.
        currency: String,
        /// Succeeded or failed.
        state: RefundState,
    },
    /// The buyer approved a PayPal order: Consign must capture it.
    Approved {
        /// The PayPal order id.
        attempt_reference: String,
    },
    /// Nothing to do (an event type Consign does not act on).
    Ignored,
}

/// Headers of a webhook delivery, by lower-case name.
pub type Headers = reqwest::header::HeaderMap;

/// The one interface every provider implements.
pub trait PaymentProvider {
    /// Which provider.
    fn kind(&self) -> ProviderKind;

    /// Creates a payment for an attempt (idempotent on the attempt id).
    fn create_payment(
        &self,
        request: &PaymentRequest,
    ) -> impl Future<Output = Result<CreatedPayment, PaymentError>> + Send;

    /// Refunds part or all of a captured payment (idempotent on the refund id).
    fn refund(&self, request: &RefundRequest) -> impl Future<Output = Result<RefundOutcome, PaymentError>> + Send;

    /// Checks a webhook delivery's signature over the raw body. `now` is the
    /// Unix time in seconds (for timestamp tolerance).
    fn verify_webhook(
        &self,
        headers: &Headers,
        body: &[u8],
        now: i64,
    ) -> impl Future<Output = Result<(), PaymentError>> + Send;

    /// Reads a verified webhook body. The event id may come from a header
    /// (Razorpay), so headers are given too.
    fn parse_event(&self, headers: &Headers, body: &[u8]) -> Result<ProviderEvent, PaymentError>;

    /// Captures an approved payment (PayPal); others capture on their own.
    fn capture(&self, attempt_reference: &str) -> impl Future<Output = Result<EventAction, PaymentError>> + Send;
}

/// Every provider, dispatched statically.
#[derive(Debug)]
pub enum Provider {
    /// Stripe.
    Stripe(stripe::Stripe),
    /// Razorpay.
    Razorpay(razorpay::Razorpay),
    /// PayPal.
    Paypal(paypal::Paypal),
}

impl PaymentProvider for Provider {
    fn kind(&self) -> ProviderKind {
        match self {
            Provider::Stripe(_) => ProviderKind::Stripe,
            Provider::Razorpay(_) => ProviderKind::Razorpay,
            Provider::Paypal(_) => ProviderKind::Paypal,
        }
    }

    async fn create_payment(&self, request: &PaymentRequest) -> Result<CreatedPayment, PaymentError> {
        match self {
            Provider::Stripe(p) => p.create_payment(request).await,
            Provider::Razorpay(p) => p.create_payment(request).await,
            Provider::Paypal(p) => p.create_payment(request).await,
        }
    }

    async fn refund(&self, request: &RefundRequest) -> Result<RefundOutcome, PaymentError> {
        match self {
            Provider::Stripe(p) => p.refund(request).await,
            Provider::Razorpay(p) => p.refund(request).await,
            Provider::Paypal(p) => p.refund(request).await,
        }
    }

    async fn verify_webhook(&self, headers: &Headers, body: &[u8], now: i64) -> Result<(), PaymentError> {
        match self {
            Provider::Stripe(p) => p.verify_webhook(headers, body, now).await,
            Provider::Razorpay(p) => p.verify_webhook(headers, body, now).await,
            Provider::Paypal(p) => p.verify_webhook(headers, body, now).await,
        }
    }

    fn parse_event(&self, headers: &Headers, body: &[u8]) -> Result<ProviderEvent, PaymentError> {
        match self {
            Provider::Stripe(p) => p.parse_event(headers, body),
            Provider::Razorpay(p) => p.parse_event(headers, body),
            Provider::Paypal(p) => p.parse_event(headers, body),
        }
    }

    async fn capture(&self, attempt_reference: &str) -> Result<EventAction, PaymentError> {
        match self {
            Provider::Stripe(p) => p.capture(attempt_reference).await,
            Provider::Razorpay(p) => p.capture(attempt_reference).await,
            Provider::Paypal(p) => p.capture(attempt_reference).await,
        }
    }
}

/// Turns a provider's HTTP answer into JSON or a typed error.
pub(crate) async fn read_json(
    provider: ProviderKind,
    response: Result<reqwest::Response, reqwest::Error>,
) -> Result<serde_json::Value, PaymentError> {
    let response = response.map_err(|error| PaymentError::Unavailable {
        provider,
        detail: if error.is_timeout() { "timed out".into() } else { "could not be reached".into() },
    })?;
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or(serde_json::Value::Null);
    if status.is_success() {
        return Ok(body);
    }
    let detail = format!("HTTP {}: {}", status.as_u16(), error_summary(&body));
    if status.is_server_error() || status.as_u16() == 429 {
        Err(PaymentError::Unavailable { provider, detail })
    } else {
        Err(PaymentError::Refused { provider, detail })
    }
}

/// The provider's own error code and message, whichever shape it uses.
fn error_summary(body: &serde_json::Value) -> String {
    let error = &body["error"];
    let code = error["code"].as_str().or(body["name"].as_str()).or(error.as_str()).unwrap_or("error");
    let message =
        error["message"].as_str().or(error["description"].as_str()).or(body["message"].as_str()).unwrap_or("");
    let message: String = message.chars().take(200).collect();
    format!("{code} {message}").trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_show_their_secrets_in_debug_output() {
        let credentials = Credentials::Stripe {
            secret_key: SecretString::from("sk_test_very_secret"),
            webhook_secret: SecretString::from("whsec_also_secret"),
            publishable_key: None,
        };
        let shown = format!("{credentials:?}");
        assert!(!shown.contains("very_secret") && !shown.contains("also_secret"), "{shown}");
        let sealed = credentials.to_sealable();
        let back = Credentials::from_sealable(&sealed).unwrap();
        assert_eq!(back.kind(), ProviderKind::Stripe);
    }

    #[test]
    fn provider_names_round_trip() {
        for kind in ProviderKind::ALL {
            assert_eq!(ProviderKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(ProviderKind::parse("bitcoin"), None);
    }
}
