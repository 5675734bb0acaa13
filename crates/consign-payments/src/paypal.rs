//! PayPal: OAuth2 client credentials, Orders v2 (create, capture), capture
//! refunds, and webhook verification through PayPal's
//! verify-webhook-signature call. Amounts are decimal strings
//! ([`crate::money`]); `PayPal-Request-Id` is the idempotency key.
//!
//! Consign's ids ride in the purchase unit: `custom_id` is the order id,
//! `invoice_id` the attempt id and `reference_id` `brand:<id>:<slug>`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::money::{from_decimal, to_decimal};
use crate::{
    CreatedPayment, EventAction, Headers, PaymentError, PaymentProvider, PaymentRequest, ProviderEvent, ProviderKind,
    RefundOutcome, RefundRequest, RefundState, read_json,
};

/// A PayPal REST app's client.
pub struct Paypal {
    pub(crate) base: String,
    pub(crate) http: reqwest::Client,
    pub(crate) client_id: String,
    pub(crate) client_secret: SecretString,
    pub(crate) webhook_id: String,
    pub(crate) tokens: TokenCache,
}

/// How long before PayPal's `expires_in` a cached token is dropped, so a
/// token is never sent as it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);

/// PayPal access tokens, per REST app, kept until shortly before they
/// expire: PayPal asks clients to reuse a token rather than fetch one per
/// call, and an unauthenticated caller (a forged webhook) must not make
/// Consign fetch one each time. Shared by every client of one [`crate::Gateway`].
#[derive(Clone, Default)]
pub struct TokenCache(Arc<Mutex<HashMap<String, (SecretString, Instant)>>>);

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenCache { .. }")
    }
}

impl TokenCache {
    fn get(&self, key: &str) -> Option<SecretString> {
        let tokens = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        tokens.get(key).filter(|(_, expires)| *expires > Instant::now()).map(|(token, _)| token.clone())
    }

    fn put(&self, key: String, token: SecretString, lifetime: Duration) {
        let mut tokens = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        tokens.retain(|_, (_, expires)| *expires > now);
        tokens.insert(key, (token, now + lifetime));
    }

    fn forget(&self, key: &str) {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(key);
    }
}

impl std::fmt::Debug for Paypal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Paypal").field("base", &self.base).field("client_id", &self.client_id).finish_non_exhaustive()
    }
}

fn text(value: &Value) -> Option<String> {
    value.as_str().filter(|s| !s.is_empty()).map(str::to_owned)
}

impl Paypal {
    /// Names this app's credentials in the token cache without keeping the
    /// secret itself as a key.
    fn cache_key(&self) -> String {
        let digest = Sha256::new()
            .chain_update(self.base.as_bytes())
            .chain_update([0])
            .chain_update(self.client_id.as_bytes())
            .chain_update([0])
            .chain_update(self.client_secret.expose_secret().as_bytes())
            .finalize();
        hex::encode(digest)
    }

    /// An access token: the cached one, else one by the client-credentials
    /// grant, cached until shortly before its `expires_in`.
    async fn access_token(&self) -> Result<SecretString, PaymentError> {
        let key = self.cache_key();
        if let Some(token) = self.tokens.get(&key) {
            return Ok(token);
        }
        let response = self
            .http
            .post(format!("{}/v1/oauth2/token", self.base))
            .basic_auth(&self.client_id, Some(self.client_secret.expose_secret()))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await;
        let answer = read_json(ProviderKind::Paypal, response).await?;
        let token = text(&answer["access_token"])
            .map(SecretString::from)
            .ok_or_else(|| PaymentError::Malformed("no access_token".into()))?;
        let lifetime = Duration::from_secs(answer["expires_in"].as_u64().unwrap_or(0)).saturating_sub(TOKEN_MARGIN);
        if !lifetime.is_zero() {
            self.tokens.put(key, token.clone(), lifetime);
        }
        Ok(token)
    }

    async fn post(&self, path: &str, request_id: Option<&str>, body: &Value) -> Result<Value, PaymentError> {
        let token = self.access_token().await?;
        let mut request = self.http.post(format!("{}{path}", self.base)).bearer_auth(token.expose_secret()).json(body);
        if let Some(request_id) = request_id {
            request = request.header("PayPal-Request-Id", request_id);
        }
        let response = request.send().await;
        if response.as_ref().is_ok_and(|r| r.status() == reqwest::StatusCode::UNAUTHORIZED) {
            // Revoked or rotated early: the next call fetches a new one.
            self.tokens.forget(&self.cache_key());
        }
        read_json(ProviderKind::Paypal, response).await
    }
}

/// A completed capture in a capture response or a `PAYMENT.CAPTURE.*`
/// resource, as a capture action.
fn capture_action(capture: &Value, order_reference: Option<String>) -> Option<EventAction> {
    let currency = text(&capture["amount"]["currency_code"])?;
    let amount = from_decimal(capture["amount"]["value"].as_str()?, &currency)?;
    Some(EventAction::Captured {
        payment_reference: text(&capture["id"])?,
        attempt_reference: order_reference.or_else(|| text(&capture["supplementary_data"]["related_ids"]["order_id"])),
        order_id: text(&capture["custom_id"]),
        amount,
        currency,
    })
}

impl PaymentProvider for Paypal {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Paypal
    }

    async fn create_payment(&self, request: &PaymentRequest) -> Result<CreatedPayment, PaymentError> {
        let body = json!({
            "intent": "CAPTURE",
            "purchase_units": [{
                "reference_id": format!("brand:{}:{}", request.brand_id, request.brand_slug),
                "custom_id": request.order_id,
                "invoice_id": request.attempt_id,
                "description": format!("Order {} ({})", request.order_number, request.brand_slug),
                "amount": {"currency_code": request.currency, "value": to_decimal(request.amount, &request.currency)},
            }],
        });
        let order = self.post("/v2/checkout/orders", Some(&request.attempt_id), &body).await?;
        let reference = text(&order["id"]).ok_or_else(|| PaymentError::Malformed("no PayPal order id".into()))?;
        let approve = order["links"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|link| matches!(link["rel"].as_str(), Some("approve" | "payer-action")))
            .and_then(|link| text(&link["href"]));
        Ok(CreatedPayment { client: json!({"paypal_order_id": reference, "approval_url": approve}), reference })
    }

    async fn refund(&self, request: &RefundRequest) -> Result<RefundOutcome, PaymentError> {
        let body = json!({
            "amount": {"currency_code": request.currency, "value": to_decimal(request.amount, &request.currency)},
            "custom_id": request.order_id,
            "invoice_id": request.refund_id,
        });
        let path = format!("/v2/payments/captures/{}/refund", request.payment_reference);
        let refund = self.post(&path, Some(&request.refund_id), &body).await?;
        let reference = text(&refund["id"]).ok_or_else(|| PaymentError::Malformed("no refund id".into()))?;
        let state = match refund["status"].as_str() {
            Some("COMPLETED") => RefundState::Succeeded,
            Some("CANCELLED" | "FAILED") => RefundState::Failed,
            _ => RefundState::Pending,
        };
        Ok(RefundOutcome { reference, state })
    }

    async fn verify_webhook(&self, headers: &Headers, body: &[u8], _now: i64) -> Result<(), PaymentError> {
        let header = |name: &'static str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .ok_or(PaymentError::SignatureInvalid("a PayPal transmission header is missing"))
        };
        let event: Value =
            serde_json::from_slice(body).map_err(|_| PaymentError::SignatureInvalid("the body is not JSON"))?;
        let request = json!({
            "auth_algo": header("paypal-auth-algo")?,
            "cert_url": header("paypal-cert-url")?,
            "transmission_id": header("paypal-transmission-id")?,
            "transmission_sig": header("paypal-transmission-sig")?,
            "transmission_time": header("paypal-transmission-time")?,
            "webhook_id": self.webhook_id,
            "webhook_event": event,
        });
        let answer = self.post("/v1/notifications/verify-webhook-signature", None, &request).await?;
        if answer["verification_status"] == "SUCCESS" {
            Ok(())
        } else {
            Err(PaymentError::SignatureInvalid("PayPal did not verify the signature"))
        }
    }

    fn parse_event(&self, _headers: &Headers, body: &[u8]) -> Result<ProviderEvent, PaymentError> {
        parse_event(body)
    }

    async fn capture(&self, attempt_reference: &str) -> Result<EventAction, PaymentError> {
        let path = format!("/v2/checkout/orders/{attempt_reference}/capture");
        let order = self.post(&path, Some(&format!("capture-{attempt_reference}")), &json!({})).await?;
        let capture = &order["purchase_units"][0]["payments"]["captures"][0];
        match capture["status"].as_str() {
            Some("COMPLETED") => capture_action(capture, Some(attempt_reference.to_owned()))
                .ok_or_else(|| PaymentError::Malformed("capture without id or amount".into())),
            Some("DECLINED" | "FAILED") => Ok(EventAction::Failed {
                attempt_reference: attempt_reference.to_owned(),
                order_id: text(&capture["custom_id"]),
                reason: "PayPal declined the capture".into(),
            }),
            _ => Err(PaymentError::Unavailable { provider: ProviderKind::Paypal, detail: "capture pending".into() }),
        }
    }
}

/// Reads a PayPal webhook body (`{id, event_type, resource}`).
pub fn parse_event(body: &[u8]) -> Result<ProviderEvent, PaymentError> {
    let event: Value = serde_json::from_slice(body).map_err(|_| PaymentError::Malformed("not JSON".into()))?;
    let event_id = text(&event["id"]).ok_or_else(|| PaymentError::Malformed("no event id".into()))?;
    let event_type = text(&event["event_type"]).ok_or_else(|| PaymentError::Malformed("no event type".into()))?;
    let resource = &event["resource"];
    let malformed = |what: &str| PaymentError::Malformed(format!("{event_type}: no {what}"));
    let action = match event_type.as_str() {
        "CHECKOUT.ORDER.APPROVED" => {
            EventAction::Approved { attempt_reference: text(&resource["id"]).ok_or_else(|| malformed("id"))? }
        }
        "PAYMENT.CAPTURE.COMPLETED" => capture_action(resource, None).ok_or_else(|| malformed("capture"))?,
        "PAYMENT.CAPTURE.DENIED" | "PAYMENT.CAPTURE.DECLINED" => EventAction::Failed {
            attempt_reference: text(&resource["supplementary_data"]["related_ids"]["order_id"])
                .ok_or_else(|| malformed("order id"))?,
            order_id: text(&resource["custom_id"]),
            reason: "PayPal denied the capture".into(),
        },
        "PAYMENT.CAPTURE.REFUNDED" | "PAYMENT.REFUND.FAILED" => {
            // The resource is the refund; its `up` link names the capture.
            let capture = resource["links"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|link| link["rel"] == "up")
                .and_then(|link| text(&link["href"]))
                .and_then(|href| href.rsplit('/').next().map(str::to_owned))
                .ok_or_else(|| malformed("capture link"))?;
            let currency = text(&resource["amount"]["currency_code"]).ok_or_else(|| malformed("currency"))?;
            EventAction::Refund {
                refund_reference: text(&resource["id"]).ok_or_else(|| malformed("id"))?,
                payment_reference: capture,
                refund_id: text(&resource["invoice_id"]),
                amount: resource["amount"]["value"]
                    .as_str()
                    .and_then(|v| from_decimal(v, &currency))
                    .ok_or_else(|| malformed("amount"))?,
                currency,
                state: if event_type == "PAYMENT.CAPTURE.REFUNDED" {
                    RefundState::Succeeded
                } else {
                    RefundState::Failed
                },
            }
        }
        _ => EventAction::Ignored,
    };
    Ok(ProviderEvent { event_id, event_type, action })
}
