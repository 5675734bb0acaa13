//! Local payment providers: one small axum server that speaks the parts of
//! Stripe's, Razorpay's and PayPal's APIs Consign calls (their paths do not
//! overlap), records every request for tests to inspect, honours each
//! provider's idempotency key the way the provider does, and helpers that
//! send webhooks signed the way each provider signs them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use consign_payments::signature;
use serde_json::{Value, json};

use crate::{TestApp, TestResponse};

/// Secrets the test brands use.
pub mod secrets {
    /// Stripe secret key.
    pub const STRIPE_SECRET_KEY: &str = "sk_test_consign_local";
    /// Stripe webhook signing secret.
    pub const STRIPE_WEBHOOK_SECRET: &str = "whsec_consign_local";
    /// Razorpay key id.
    pub const RAZORPAY_KEY_ID: &str = "rzp_test_consign";
    /// Razorpay key secret.
    pub const RAZORPAY_KEY_SECRET: &str = "rzp_secret_consign_local";
    /// Razorpay webhook secret.
    pub const RAZORPAY_WEBHOOK_SECRET: &str = "rzp_webhook_consign_local";
    /// PayPal client id.
    pub const PAYPAL_CLIENT_ID: &str = "paypal-client-consign";
    /// PayPal client secret.
    pub const PAYPAL_CLIENT_SECRET: &str = "paypal-secret-consign-local";
    /// PayPal webhook id.
    pub const PAYPAL_WEBHOOK_ID: &str = "WH-CONSIGN-LOCAL";
    /// What the local PayPal signs transmissions with (real PayPal uses a
    /// certificate; only its verify call can tell, here as there).
    pub const PAYPAL_SIGNING_KEY: &str = "paypal-transmission-key";
}

/// One request a provider received.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// Path, such as `/v1/payment_intents`.
    pub path: String,
    /// Headers, lower-case names.
    pub headers: HashMap<String, String>,
    /// The body: form fields or JSON, as text.
    pub body: String,
}

impl Recorded {
    /// A form field (Stripe).
    pub fn form(&self, name: &str) -> Option<String> {
        url_decode_pairs(&self.body).into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// The body as JSON (Razorpay, PayPal).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

fn url_decode_pairs(body: &str) -> Vec<(String, String)> {
    body.split('&').filter_map(|pair| pair.split_once('=')).map(|(k, v)| (decode(k), decode(v))).collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Default)]
struct Inner {
    requests: Vec<Recorded>,
    next_id: u64,
    /// Idempotency key → the answer first given.
    answers: HashMap<String, Value>,
    /// Requests to answer 503 before behaving (a provider outage).
    fail_next: usize,
    /// Status the next refunds report (`succeeded`/`processed`/`COMPLETED` by default).
    refunds_pending: bool,
    /// A hold on the next Stripe payment intent: told when it arrives,
    /// answered once released.
    hold: Option<(tokio::sync::oneshot::Sender<()>, tokio::sync::oneshot::Receiver<()>)>,
    /// Refunds made (a replayed idempotency key makes none), by path.
    refunds_made: Vec<String>,
    /// Make refunds, then answer only after the client gave up waiting (a
    /// timeout after the provider processed the request).
    answer_refunds_late: bool,
}

/// A provider request held back (see [`Providers::hold_next_payment_intent`]).
pub struct Hold {
    arrived: tokio::sync::oneshot::Receiver<()>,
    release: tokio::sync::oneshot::Sender<()>,
}

impl Hold {
    /// Waits until the held request has reached the provider.
    pub async fn arrived(&mut self) {
        let _ = (&mut self.arrived).await;
    }

    /// Lets the provider answer it.
    pub fn release(self) {
        let _ = self.release.send(());
    }
}

/// The local providers. Cheap to clone.
#[derive(Clone)]
pub struct Providers {
    /// Base URL, such as `http://127.0.0.1:41235`, for every provider.
    pub base: String,
    inner: Arc<Mutex<Inner>>,
}

impl Providers {
    /// Starts the server on `127.0.0.1:0`.
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/v1/payment_intents", post(stripe_payment_intent))
            .route("/v1/refunds", post(stripe_refund))
            .route("/v1/orders", post(razorpay_order))
            .route("/v1/payments/{id}/refund", post(razorpay_refund))
            .route("/v1/oauth2/token", post(paypal_token))
            .route("/v2/checkout/orders", post(paypal_order))
            .route("/v2/checkout/orders/{id}/capture", post(paypal_capture))
            .route("/v2/payments/captures/{id}/refund", post(paypal_refund))
            .route("/v1/notifications/verify-webhook-signature", post(paypal_verify))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind providers");
        let address = listener.local_addr().expect("providers address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { base: format!("http://{address}"), inner }
    }

    /// Endpoints pointing every provider here.
    pub fn endpoints(&self) -> consign_payments::Endpoints {
        consign_payments::Endpoints {
            stripe: self.base.clone(),
            razorpay: self.base.clone(),
            paypal: self.base.clone(),
        }
    }

    /// Every request received so far whose path starts with `prefix`.
    pub fn requests(&self, prefix: &str) -> Vec<Recorded> {
        self.inner.lock().unwrap().requests.iter().filter(|r| r.path.starts_with(prefix)).cloned().collect()
    }

    /// Answers the next `count` requests with 503.
    pub fn fail_next(&self, count: usize) {
        self.inner.lock().unwrap().fail_next = count;
    }

    /// Holds the next Stripe payment intent unanswered until the returned
    /// hold is released: a provider slow to answer, without a clock.
    pub fn hold_next_payment_intent(&self) -> Hold {
        let (arrived_tx, arrived) = tokio::sync::oneshot::channel();
        let (release, release_rx) = tokio::sync::oneshot::channel();
        self.inner.lock().unwrap().hold = Some((arrived_tx, release_rx));
        Hold { arrived, release }
    }

    /// Makes refunds report `pending` (settled later by webhook) or done.
    pub fn refunds_pending(&self, pending: bool) {
        self.inner.lock().unwrap().refunds_pending = pending;
    }

    /// Makes each new refund, then holds the answer far longer than any
    /// client waits: the client times out after the provider processed it.
    pub fn answer_refunds_late(&self, late: bool) {
        self.inner.lock().unwrap().answer_refunds_late = late;
    }

    /// The refunds each provider actually made, as the paths they were
    /// made on (a request answered from its idempotency key makes none).
    pub fn refunds_made(&self) -> Vec<String> {
        self.inner.lock().unwrap().refunds_made.clone()
    }
}

/// How long a late answer is held: past any client's timeout in the tests.
const LATE_ANSWER: std::time::Duration = std::time::Duration::from_secs(120);

/// [`handle`] for a refund: records that a refund was made when it was,
/// and holds the answer while [`Providers::answer_refunds_late`] is on.
async fn handle_refund(
    inner: &Arc<Mutex<Inner>>,
    path: String,
    headers: &HeaderMap,
    body: &Bytes,
    idempotency_header: &str,
    make: impl FnOnce(&mut Inner, u64) -> Value,
) -> Response {
    let mut made = false;
    let response = handle(inner, path.clone(), headers, body, Some(idempotency_header), |state, id| {
        made = true;
        state.refunds_made.push(path);
        make(state, id)
    });
    let late = made && inner.lock().unwrap().answer_refunds_late;
    if late {
        tokio::time::sleep(LATE_ANSWER).await;
    }
    response
}

type Shared = State<Arc<Mutex<Inner>>>;

/// Records the request; answers 503 while an outage is on, the first
/// answer again for a repeated idempotency key, else `make(next id)`.
fn handle(
    inner: &Arc<Mutex<Inner>>,
    path: String,
    headers: &HeaderMap,
    body: &Bytes,
    idempotency_header: Option<&str>,
    make: impl FnOnce(&mut Inner, u64) -> Value,
) -> Response {
    let mut state = inner.lock().unwrap();
    let headers: HashMap<String, String> =
        headers.iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned())).collect();
    let body_text = String::from_utf8_lossy(body).into_owned();
    state.requests.push(Recorded { path: path.clone(), headers: headers.clone(), body: body_text });
    if state.fail_next > 0 {
        state.fail_next -= 1;
        return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(json!({"error": {"message": "try later"}})))
            .into_response();
    }
    let key = idempotency_header.and_then(|h| headers.get(h)).map(|k| format!("{path}:{k}"));
    if let Some(answer) = key.as_ref().and_then(|k| state.answers.get(k)) {
        return axum::Json(answer.clone()).into_response();
    }
    state.next_id += 1;
    let id = state.next_id;
    let answer = make(&mut state, id);
    if let Some(key) = key {
        state.answers.insert(key, answer.clone());
    }
    axum::Json(answer).into_response()
}

fn authorized(headers: &HeaderMap, expected: &str) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected)
}

fn basic(user: &str, password: &str) -> String {
    use std::fmt::Write as _;
    // Base64 without a dependency: RFC 4648 alphabet, padded.
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let input = format!("{user}:{password}").into_bytes();
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                let _ = write!(out, "{}", ALPHABET[((n >> shift) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    format!("Basic {out}")
}

fn unauthorized() -> Response {
    (StatusCode::UNAUTHORIZED, axum::Json(json!({"error": {"code": "unauthorized", "message": "bad key"}})))
        .into_response()
}

async fn stripe_payment_intent(State(inner): Shared, headers: HeaderMap, body: Bytes) -> Response {
    if !authorized(&headers, &format!("Bearer {}", secrets::STRIPE_SECRET_KEY)) {
        return unauthorized();
    }
    let hold = inner.lock().unwrap().hold.take();
    if let Some((arrived, release)) = hold {
        let _ = arrived.send(());
        let _ = release.await;
    }
    let form: HashMap<String, String> = url_decode_pairs(&String::from_utf8_lossy(&body)).into_iter().collect();
    handle(&inner, "/v1/payment_intents".into(), &headers, &body, Some("idempotency-key"), |_, id| {
        let amount: i64 = form.get("amount").and_then(|a| a.parse().ok()).unwrap_or(0);
        json!({"id": format!("pi_{id}"), "object": "payment_intent", "amount": amount,
               "currency": form.get("currency"), "status": "requires_payment_method",
               "client_secret": format!("pi_{id}_secret_local"),
               "metadata": {"order_id": form.get("metadata[order_id]"), "brand_id": form.get("metadata[brand_id]"),
                            "brand_slug": form.get("metadata[brand_slug]")}})
    })
}

async fn stripe_refund(State(inner): Shared, headers: HeaderMap, body: Bytes) -> Response {
    if !authorized(&headers, &format!("Bearer {}", secrets::STRIPE_SECRET_KEY)) {
        return unauthorized();
    }
    let form: HashMap<String, String> = url_decode_pairs(&String::from_utf8_lossy(&body)).into_iter().collect();
    handle_refund(&inner, "/v1/refunds".into(), &headers, &body, "idempotency-key", |state, id| {
        json!({"id": format!("re_{id}"), "object": "refund", "amount": form.get("amount").and_then(|a| a.parse::<i64>().ok()),
               "payment_intent": form.get("payment_intent"),
               "status": if state.refunds_pending { "pending" } else { "succeeded" },
               "metadata": {"refund_id": form.get("metadata[refund_id]")}})
    })
    .await
}

async fn razorpay_order(State(inner): Shared, headers: HeaderMap, body: Bytes) -> Response {
    if !authorized(&headers, &basic(secrets::RAZORPAY_KEY_ID, secrets::RAZORPAY_KEY_SECRET)) {
        return unauthorized();
    }
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    // Razorpay de-duplicates by receipt: a second order with the same
    // receipt is the first one again.
    let receipt = request["receipt"].as_str().unwrap_or_default().to_owned();
    let mut headers_with_receipt = headers.clone();
    if let Ok(value) = receipt.parse() {
        headers_with_receipt.insert("x-local-receipt", value);
    }
    handle(&inner, "/v1/orders".into(), &headers_with_receipt, &body, Some("x-local-receipt"), |_, id| {
        json!({"id": format!("order_{id}"), "entity": "order", "amount": request["amount"], "currency": request["currency"],
               "receipt": receipt, "status": "created", "notes": request["notes"]})
    })
}

async fn razorpay_refund(
    State(inner): Shared,
    Path(payment): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !authorized(&headers, &basic(secrets::RAZORPAY_KEY_ID, secrets::RAZORPAY_KEY_SECRET)) {
        return unauthorized();
    }
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    // Razorpay's `X-Refund-Idempotency`: the same key answers the first
    // refund again (real Razorpay also refuses the key with another body).
    handle_refund(
        &inner,
        format!("/v1/payments/{payment}/refund"),
        &headers,
        &body,
        "x-refund-idempotency",
        |state, id| {
            json!({"id": format!("rfnd_{id}"), "entity": "refund", "amount": request["amount"], "payment_id": payment,
               "receipt": request["receipt"],
               "status": if state.refunds_pending { "pending" } else { "processed" }, "notes": request["notes"]})
        },
    )
    .await
}

async fn paypal_token(State(inner): Shared, headers: HeaderMap, body: Bytes) -> Response {
    if !authorized(&headers, &basic(secrets::PAYPAL_CLIENT_ID, secrets::PAYPAL_CLIENT_SECRET)) {
        return unauthorized();
    }
    handle(
        &inner,
        "/v1/oauth2/token".into(),
        &headers,
        &body,
        None,
        |_, id| json!({"access_token": format!("A21-local-{id}"), "token_type": "Bearer", "expires_in": 32400}),
    )
}

fn paypal_bearer(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("Bearer A21-local-"))
}

async fn paypal_order(State(inner): Shared, headers: HeaderMap, body: Bytes) -> Response {
    if !paypal_bearer(&headers) {
        return unauthorized();
    }
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let base = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("localhost").to_owned();
    handle(&inner, "/v2/checkout/orders".into(), &headers, &body, Some("paypal-request-id"), |_, id| {
        let order = format!("PAYPAL-ORDER-{id}");
        json!({"id": order, "status": "CREATED", "purchase_units": request["purchase_units"],
               "links": [{"rel": "self", "href": format!("http://{base}/v2/checkout/orders/{order}")},
                         {"rel": "approve", "href": format!("https://www.paypal.example/checkoutnow?token={order}")}]})
    })
}

async fn paypal_capture(State(inner): Shared, Path(order): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    if !paypal_bearer(&headers) {
        return unauthorized();
    }
    // The amount and ids come from the order as it was created.
    let created = inner
        .lock()
        .unwrap()
        .answers
        .iter()
        .find(|(k, v)| k.starts_with("/v2/checkout/orders:") && v["id"] == order.as_str())
        .map(|(_, v)| v.clone())
        .unwrap_or(Value::Null);
    handle(
        &inner,
        format!("/v2/checkout/orders/{order}/capture"),
        &headers,
        &body,
        Some("paypal-request-id"),
        |_, id| {
            let unit = &created["purchase_units"][0];
            json!({"id": order, "status": "COMPLETED", "purchase_units": [{
            "reference_id": unit["reference_id"],
            "payments": {"captures": [{"id": format!("CAPTURE-{id}"), "status": "COMPLETED", "amount": unit["amount"],
                                       "custom_id": unit["custom_id"], "invoice_id": unit["invoice_id"]}]}}]})
        },
    )
}

async fn paypal_refund(State(inner): Shared, Path(capture): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    if !paypal_bearer(&headers) {
        return unauthorized();
    }
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    handle_refund(
        &inner,
        format!("/v2/payments/captures/{capture}/refund"),
        &headers,
        &body,
        "paypal-request-id",
        |state, id| {
            json!({"id": format!("REFUND-{id}"), "status": if state.refunds_pending { "PENDING" } else { "COMPLETED" },
               "amount": request["amount"], "invoice_id": request["invoice_id"],
               "links": [{"rel": "up", "href": format!("/v2/payments/captures/{capture}")}]})
        },
    )
    .await
}

async fn paypal_verify(State(inner): Shared, headers: HeaderMap, body: Bytes) -> Response {
    if !paypal_bearer(&headers) {
        return unauthorized();
    }
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    handle(&inner, "/v1/notifications/verify-webhook-signature".into(), &headers, &body, None, |_, _| {
        let event = request["webhook_event"].to_string();
        let expected = paypal_signature(
            request["transmission_id"].as_str().unwrap_or_default(),
            request["transmission_time"].as_str().unwrap_or_default(),
            request["webhook_id"].as_str().unwrap_or_default(),
            &event,
        );
        let ok = request["transmission_sig"].as_str() == Some(expected.as_str())
            && request["webhook_id"] == secrets::PAYPAL_WEBHOOK_ID;
        json!({"verification_status": if ok { "SUCCESS" } else { "FAILURE" }})
    })
}

/// The local PayPal's transmission signature: over the transmission id and
/// time, the webhook id and the event as JSON (PayPal signs the same parts
/// with its certificate's key and a CRC of the body).
fn paypal_signature(transmission_id: &str, time: &str, webhook_id: &str, event_json: &str) -> String {
    signature::hmac_hex(
        secrets::PAYPAL_SIGNING_KEY.as_bytes(),
        &[transmission_id.as_bytes(), b"|", time.as_bytes(), b"|", webhook_id.as_bytes(), b"|", event_json.as_bytes()],
    )
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

impl TestApp {
    /// Sets the brand's credentials for `provider` to the local secrets.
    pub async fn set_provider(&self, token: &str, brand_id: &str, provider: &str) -> TestResponse {
        let body = match provider {
            "stripe" => {
                json!({"secret_key": secrets::STRIPE_SECRET_KEY, "webhook_secret": secrets::STRIPE_WEBHOOK_SECRET,
                               "publishable_key": "pk_test_consign"})
            }
            "razorpay" => json!({"key_id": secrets::RAZORPAY_KEY_ID, "key_secret": secrets::RAZORPAY_KEY_SECRET,
                                 "webhook_secret": secrets::RAZORPAY_WEBHOOK_SECRET}),
            _ => json!({"client_id": secrets::PAYPAL_CLIENT_ID, "client_secret": secrets::PAYPAL_CLIENT_SECRET,
                        "webhook_id": secrets::PAYPAL_WEBHOOK_ID}),
        };
        self.request(
            reqwest::Method::PUT,
            &format!("/api/v1/brands/{brand_id}/payment-providers/{provider}"),
            Some(token),
            Some(&body),
        )
        .await
    }

    /// Posts a Stripe event signed as Stripe signs it (`t=…,v1=…` over
    /// `"t.body"` with the endpoint secret), at `timestamp` (now if `None`).
    pub async fn stripe_webhook(
        &self,
        slug: &str,
        event: &Value,
        secret: &str,
        timestamp: Option<i64>,
    ) -> TestResponse {
        let body = event.to_string();
        let header = signature::stripe_header(secret.as_bytes(), timestamp.unwrap_or_else(unix_now), body.as_bytes());
        self.send(
            self.client
                .post(self.url(&format!("/api/v1/webhooks/stripe/{slug}")))
                .header("content-type", "application/json")
                .header("stripe-signature", header)
                .body(body),
        )
        .await
    }

    /// Posts a Razorpay event signed as Razorpay signs it (hex HMAC-SHA256
    /// of the raw body with the webhook secret), with its event id header.
    pub async fn razorpay_webhook(&self, slug: &str, event_id: &str, event: &Value, secret: &str) -> TestResponse {
        let body = event.to_string();
        let signed = signature::hmac_hex(secret.as_bytes(), &[body.as_bytes()]);
        self.send(
            self.client
                .post(self.url(&format!("/api/v1/webhooks/razorpay/{slug}")))
                .header("content-type", "application/json")
                .header("x-razorpay-signature", signed)
                .header("x-razorpay-event-id", event_id)
                .body(body),
        )
        .await
    }

    /// Posts a PayPal event with transmission headers, signed by the local
    /// PayPal (`forged`: with a wrong signature).
    pub async fn paypal_webhook(&self, slug: &str, event: &Value, forged: bool) -> TestResponse {
        let body = event.to_string();
        let transmission_id = format!("tx-{}", uuid::Uuid::now_v7().simple());
        let time = "2026-11-22T03:00:00Z";
        let reparsed: Value = serde_json::from_str(&body).unwrap();
        let mut signed = paypal_signature(&transmission_id, time, secrets::PAYPAL_WEBHOOK_ID, &reparsed.to_string());
        if forged {
            // Another first digit: always a different signature (replacing
            // the first two with "00" left one in 256 unchanged).
            let other = if signed.starts_with('0') { "1" } else { "0" };
            signed.replace_range(..1, other);
        }
        self.send(
            self.client
                .post(self.url(&format!("/api/v1/webhooks/paypal/{slug}")))
                .header("content-type", "application/json")
                .header("paypal-auth-algo", "SHA256withRSA")
                .header("paypal-cert-url", "https://api.paypal.example/certs/local")
                .header("paypal-transmission-id", transmission_id)
                .header("paypal-transmission-sig", signed)
                .header("paypal-transmission-time", time)
                .body(body),
        )
        .await
    }
}

/// Stripe event bodies.
pub mod stripe_events {
    use serde_json::{Value, json};

    /// `payment_intent.succeeded` for a PaymentIntent.
    pub fn succeeded(event_id: &str, intent: &str, amount: i64, order_id: &str) -> Value {
        json!({"id": event_id, "object": "event", "type": "payment_intent.succeeded",
               "data": {"object": {"id": intent, "object": "payment_intent", "amount": amount, "amount_received": amount,
                                   "currency": "usd", "status": "succeeded", "metadata": {"order_id": order_id}}}})
    }

    /// `payment_intent.payment_failed`.
    pub fn failed(event_id: &str, intent: &str, order_id: &str) -> Value {
        json!({"id": event_id, "object": "event", "type": "payment_intent.payment_failed",
               "data": {"object": {"id": intent, "object": "payment_intent", "status": "requires_payment_method",
                                   "last_payment_error": {"message": "Your card was declined."},
                                   "metadata": {"order_id": order_id}}}})
    }

    /// `refund.updated` with a final status, for a refund made at Stripe
    /// (`refund_id: None`) or by Consign.
    pub fn refund(
        event_id: &str,
        refund: &str,
        intent: &str,
        amount: i64,
        refund_id: Option<&str>,
        status: &str,
    ) -> Value {
        json!({"id": event_id, "object": "event", "type": "refund.updated",
               "data": {"object": {"id": refund, "object": "refund", "amount": amount, "currency": "usd",
                                   "payment_intent": intent, "status": status,
                                   "metadata": refund_id.map(|id| json!({"refund_id": id})).unwrap_or(json!({}))}}})
    }
}
