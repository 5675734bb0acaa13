//! Razorpay: Orders, Payments, Refunds and signed webhooks (JSON requests,
//! HTTP Basic with the key id and secret). An order's `receipt` is
//! Consign's attempt id; a refund carries Consign's refund id in
//! Razorpay's `X-Refund-Idempotency` header.

use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Value, json};

use crate::signature::{verify_razorpay_callback, verify_razorpay_webhook};
use crate::{
    CreatedPayment, EventAction, Headers, PaymentError, PaymentProvider, PaymentRequest, ProviderEvent, ProviderKind,
    RefundOutcome, RefundRequest, RefundState, read_json,
};

/// A Razorpay account's client.
pub struct Razorpay {
    pub(crate) base: String,
    pub(crate) http: reqwest::Client,
    pub(crate) key_id: String,
    pub(crate) key_secret: SecretString,
    pub(crate) webhook_secret: SecretString,
}

impl std::fmt::Debug for Razorpay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Razorpay").field("base", &self.base).field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

/// Razorpay's idempotency header for refunds: the same key with the same
/// body answers the first refund again instead of refunding twice.
pub const REFUND_IDEMPOTENCY_HEADER: &str = "X-Refund-Idempotency";

impl Razorpay {
    async fn post(&self, path: &str, idempotency_key: Option<&str>, body: &Value) -> Result<Value, PaymentError> {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .basic_auth(&self.key_id, Some(self.key_secret.expose_secret()))
            .json(body);
        if let Some(key) = idempotency_key {
            request = request.header(REFUND_IDEMPOTENCY_HEADER, key);
        }
        read_json(ProviderKind::Razorpay, request.send().await).await
    }

    /// Checks a checkout callback (`razorpay_payment_id`,
    /// `razorpay_signature`) against the Razorpay order id Consign stored.
    pub fn verify_callback(
        &self,
        stored_order_id: &str,
        payment_id: &str,
        signature: &str,
    ) -> Result<(), PaymentError> {
        verify_razorpay_callback(self.key_secret.expose_secret().as_bytes(), stored_order_id, payment_id, signature)
    }
}

fn text(value: &Value) -> Option<String> {
    value.as_str().filter(|s| !s.is_empty()).map(str::to_owned)
}

impl PaymentProvider for Razorpay {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Razorpay
    }

    async fn create_payment(&self, request: &PaymentRequest) -> Result<CreatedPayment, PaymentError> {
        let body = json!({
            "amount": request.amount,
            "currency": request.currency,
            "receipt": request.attempt_id,
            "notes": {
                "order_id": request.order_id,
                "brand_id": request.brand_id,
                "brand_slug": request.brand_slug,
                "attempt_id": request.attempt_id,
            },
        });
        // An order moves no money; its `receipt` (the attempt id) ties it to
        // the attempt.
        let order = self.post("/v1/orders", None, &body).await?;
        let reference = text(&order["id"]).ok_or_else(|| PaymentError::Malformed("no Razorpay order id".into()))?;
        Ok(CreatedPayment {
            client: json!({"razorpay_order_id": reference, "key_id": self.key_id, "amount": request.amount,
                           "currency": request.currency}),
            reference,
        })
    }

    async fn refund(&self, request: &RefundRequest) -> Result<RefundOutcome, PaymentError> {
        let body = json!({
            "amount": request.amount,
            "receipt": request.refund_id,
            "notes": {"refund_id": request.refund_id, "order_id": request.order_id, "brand_id": request.brand_id},
        });
        // The refund id (a UUID, within Razorpay's 10+ characters of
        // letters, digits and hyphens) is the idempotency key: a refund that
        // timed out after Razorpay made it is answered again, not repeated.
        let path = format!("/v1/payments/{}/refund", request.payment_reference);
        let refund = self.post(&path, Some(&request.refund_id), &body).await?;
        let reference = text(&refund["id"]).ok_or_else(|| PaymentError::Malformed("no refund id".into()))?;
        Ok(RefundOutcome { reference, state: refund_state(&refund["status"]) })
    }

    async fn verify_webhook(&self, headers: &Headers, body: &[u8], _now: i64) -> Result<(), PaymentError> {
        let signature = headers
            .get("x-razorpay-signature")
            .and_then(|v| v.to_str().ok())
            .ok_or(PaymentError::SignatureInvalid("no X-Razorpay-Signature header"))?;
        verify_razorpay_webhook(self.webhook_secret.expose_secret().as_bytes(), signature, body)
    }

    fn parse_event(&self, headers: &Headers, body: &[u8]) -> Result<ProviderEvent, PaymentError> {
        parse_event(headers, body)
    }

    async fn capture(&self, _attempt_reference: &str) -> Result<EventAction, PaymentError> {
        Err(PaymentError::Unsupported("Razorpay payments are captured automatically"))
    }
}

fn refund_state(status: &Value) -> RefundState {
    match status.as_str() {
        Some("processed") => RefundState::Succeeded,
        Some("failed") => RefundState::Failed,
        _ => RefundState::Pending,
    }
}

/// Reads a Razorpay webhook: the event id is the `x-razorpay-event-id`
/// header (Razorpay's de-duplication key).
pub fn parse_event(headers: &Headers, body: &[u8]) -> Result<ProviderEvent, PaymentError> {
    let event: Value = serde_json::from_slice(body).map_err(|_| PaymentError::Malformed("not JSON".into()))?;
    let event_id = headers
        .get("x-razorpay-event-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| PaymentError::Malformed("no x-razorpay-event-id header".into()))?;
    let event_type = text(&event["event"]).ok_or_else(|| PaymentError::Malformed("no event type".into()))?;
    let payment = &event["payload"]["payment"]["entity"];
    let refund = &event["payload"]["refund"]["entity"];
    let malformed = |what: &str| PaymentError::Malformed(format!("{event_type}: no {what}"));
    let action = match event_type.as_str() {
        "payment.captured" => EventAction::Captured {
            payment_reference: text(&payment["id"]).ok_or_else(|| malformed("payment id"))?,
            attempt_reference: text(&payment["order_id"]),
            order_id: text(&payment["notes"]["order_id"]),
            amount: payment["amount"].as_i64().ok_or_else(|| malformed("amount"))?,
            currency: payment["currency"].as_str().unwrap_or_default().to_ascii_uppercase(),
        },
        "payment.failed" => EventAction::Failed {
            attempt_reference: text(&payment["order_id"]).ok_or_else(|| malformed("order_id"))?,
            order_id: text(&payment["notes"]["order_id"]),
            reason: text(&payment["error_description"]).unwrap_or_else(|| "payment failed".into()),
        },
        "refund.processed" | "refund.failed" => EventAction::Refund {
            refund_reference: text(&refund["id"]).ok_or_else(|| malformed("refund id"))?,
            payment_reference: text(&refund["payment_id"]).ok_or_else(|| malformed("payment_id"))?,
            refund_id: text(&refund["notes"]["refund_id"]).or_else(|| text(&refund["receipt"])),
            amount: refund["amount"].as_i64().ok_or_else(|| malformed("amount"))?,
            currency: refund["currency"].as_str().unwrap_or_default().to_ascii_uppercase(),
            state: if event_type == "refund.processed" { RefundState::Succeeded } else { RefundState::Failed },
        },
        _ => EventAction::Ignored,
    };
    Ok(ProviderEvent { event_id, event_type, action })
}
