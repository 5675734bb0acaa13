//! Stripe: PaymentIntents, Refunds and signed webhooks, over its REST API
//! (form-encoded requests, `Authorization: Bearer <secret key>`,
//! `Idempotency-Key` on every create).

use secrecy::{ExposeSecret as _, SecretString};
use serde_json::Value;

use crate::signature::{STRIPE_TOLERANCE_SECONDS, verify_stripe};
use crate::{
    CreatedPayment, EventAction, Headers, PaymentError, PaymentProvider, PaymentRequest, ProviderEvent, ProviderKind,
    RefundOutcome, RefundRequest, RefundState, read_json,
};

/// A Stripe account's client.
pub struct Stripe {
    pub(crate) base: String,
    pub(crate) http: reqwest::Client,
    pub(crate) secret_key: SecretString,
    pub(crate) webhook_secret: SecretString,
    pub(crate) publishable_key: Option<String>,
}

impl std::fmt::Debug for Stripe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stripe").field("base", &self.base).finish_non_exhaustive()
    }
}

impl Stripe {
    async fn post(&self, path: &str, idempotency_key: &str, form: &[(String, String)]) -> Result<Value, PaymentError> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(self.secret_key.expose_secret())
            .header("Idempotency-Key", idempotency_key)
            .form(form)
            .send()
            .await;
        read_json(ProviderKind::Stripe, response).await
    }
}

fn field(name: &str, value: impl ToString) -> (String, String) {
    (name.to_owned(), value.to_string())
}

fn upper(currency: &Value) -> String {
    currency.as_str().unwrap_or_default().to_ascii_uppercase()
}

impl PaymentProvider for Stripe {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Stripe
    }

    async fn create_payment(&self, request: &PaymentRequest) -> Result<CreatedPayment, PaymentError> {
        let form = vec![
            field("amount", request.amount),
            field("currency", request.currency.to_ascii_lowercase()),
            field("automatic_payment_methods[enabled]", "true"),
            field("description", format!("Order {} ({})", request.order_number, request.brand_slug)),
            field("metadata[order_id]", &request.order_id),
            field("metadata[brand_id]", &request.brand_id),
            field("metadata[brand_slug]", &request.brand_slug),
            field("metadata[attempt_id]", &request.attempt_id),
        ];
        let intent = self.post("/v1/payment_intents", &request.attempt_id, &form).await?;
        let reference = intent["id"].as_str().ok_or_else(|| PaymentError::Malformed("no PaymentIntent id".into()))?;
        Ok(CreatedPayment {
            reference: reference.to_owned(),
            client: serde_json::json!({
                "payment_intent_id": reference,
                "client_secret": intent["client_secret"],
                "publishable_key": self.publishable_key,
            }),
        })
    }

    async fn refund(&self, request: &RefundRequest) -> Result<RefundOutcome, PaymentError> {
        let form = vec![
            field("payment_intent", &request.payment_reference),
            field("amount", request.amount),
            field("metadata[refund_id]", &request.refund_id),
            field("metadata[order_id]", &request.order_id),
            field("metadata[brand_id]", &request.brand_id),
        ];
        let refund = self.post("/v1/refunds", &request.refund_id, &form).await?;
        let reference = refund["id"].as_str().ok_or_else(|| PaymentError::Malformed("no refund id".into()))?;
        Ok(RefundOutcome { reference: reference.to_owned(), state: refund_state(&refund["status"]) })
    }

    async fn verify_webhook(&self, headers: &Headers, body: &[u8], now: i64) -> Result<(), PaymentError> {
        let header = headers
            .get("stripe-signature")
            .and_then(|v| v.to_str().ok())
            .ok_or(PaymentError::SignatureInvalid("no Stripe-Signature header"))?;
        verify_stripe(self.webhook_secret.expose_secret().as_bytes(), header, body, now, STRIPE_TOLERANCE_SECONDS)
    }

    fn parse_event(&self, _headers: &Headers, body: &[u8]) -> Result<ProviderEvent, PaymentError> {
        parse_event(body)
    }

    async fn capture(&self, _attempt_reference: &str) -> Result<EventAction, PaymentError> {
        Err(PaymentError::Unsupported("Stripe PaymentIntents capture on their own"))
    }
}

fn refund_state(status: &Value) -> RefundState {
    match status.as_str() {
        Some("succeeded") => RefundState::Succeeded,
        Some("failed" | "canceled") => RefundState::Failed,
        _ => RefundState::Pending,
    }
}

fn text(value: &Value) -> Option<String> {
    value.as_str().filter(|s| !s.is_empty()).map(str::to_owned)
}

/// Reads a Stripe event body (`{id, type, data: {object}}`).
pub fn parse_event(body: &[u8]) -> Result<ProviderEvent, PaymentError> {
    let event: Value = serde_json::from_slice(body).map_err(|_| PaymentError::Malformed("not JSON".into()))?;
    let event_id = text(&event["id"]).ok_or_else(|| PaymentError::Malformed("no event id".into()))?;
    let event_type = text(&event["type"]).ok_or_else(|| PaymentError::Malformed("no event type".into()))?;
    let object = &event["data"]["object"];
    let malformed = |what: &str| PaymentError::Malformed(format!("{event_type}: no {what}"));
    let action = match event_type.as_str() {
        "payment_intent.succeeded" => {
            let id = text(&object["id"]).ok_or_else(|| malformed("id"))?;
            EventAction::Captured {
                payment_reference: id.clone(),
                attempt_reference: Some(id),
                order_id: text(&object["metadata"]["order_id"]),
                amount: object["amount_received"].as_i64().ok_or_else(|| malformed("amount_received"))?,
                currency: upper(&object["currency"]),
            }
        }
        "payment_intent.payment_failed" => EventAction::Failed {
            attempt_reference: text(&object["id"]).ok_or_else(|| malformed("id"))?,
            order_id: text(&object["metadata"]["order_id"]),
            reason: text(&object["last_payment_error"]["message"]).unwrap_or_else(|| "payment failed".into()),
        },
        "refund.created" | "refund.updated" | "refund.failed" => {
            let state =
                if event_type == "refund.failed" { RefundState::Failed } else { refund_state(&object["status"]) };
            if state == RefundState::Pending {
                EventAction::Ignored
            } else {
                EventAction::Refund {
                    refund_reference: text(&object["id"]).ok_or_else(|| malformed("id"))?,
                    payment_reference: text(&object["payment_intent"]).ok_or_else(|| malformed("payment_intent"))?,
                    refund_id: text(&object["metadata"]["refund_id"]),
                    amount: object["amount"].as_i64().ok_or_else(|| malformed("amount"))?,
                    currency: upper(&object["currency"]),
                    state,
                }
            }
        }
        _ => EventAction::Ignored,
    };
    Ok(ProviderEvent { event_id, event_type, action })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_succeeded_payment_intent_is_a_capture_in_minor_units() {
        let body = br#"{"id":"evt_1","type":"payment_intent.succeeded","data":{"object":{"id":"pi_1","amount_received":1999,"currency":"usd","metadata":{"order_id":"o1"}}}}"#;
        let event = parse_event(body).unwrap();
        assert_eq!(
            event.action,
            EventAction::Captured {
                payment_reference: "pi_1".into(),
                attempt_reference: Some("pi_1".into()),
                order_id: Some("o1".into()),
                amount: 1999,
                currency: "USD".into()
            }
        );
    }

    #[test]
    fn unknown_event_types_are_ignored_and_garbage_is_malformed() {
        let body = br#"{"id":"evt_2","type":"customer.created","data":{"object":{}}}"#;
        assert_eq!(parse_event(body).unwrap().action, EventAction::Ignored);
        assert!(parse_event(b"nope").is_err());
        assert!(
            parse_event(br#"{"id":"evt_3","type":"payment_intent.succeeded","data":{"object":{"id":"pi"}}}"#).is_err()
        );
    }
}
