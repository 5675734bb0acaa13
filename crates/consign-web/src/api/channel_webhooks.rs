//! Provider webhooks: unauthenticated routes whose signature is checked
//! over the raw request before anything is parsed into Consign's terms or
//! stored. A bad signature is 401 `signature_invalid` and stores nothing.
//!
//! How an inbound message finds its brand:
//! - email (Mailgun routes, one URL for the installation): the recipient
//!   `reply+<thread token>@<inbound domain>` names the thread; otherwise
//!   `<brand slug>@<inbound domain>` names the brand;
//! - WhatsApp and SMS: the brand's own webhook path,
//!   `/webhooks/whatsapp/{brand_slug}` and `/webhooks/sms/twilio/{brand_slug}`
//!   (each brand's number points at its path).
//!
//! Then `consign_db::channels::inbound::receive` finds the order.

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, OriginalUri, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use consign_channels::{signature, twilio, whatsapp};
use consign_db::channels::deliveries;
use consign_db::channels::inbound::{self, Inbound, Received};
use consign_domain::messaging::{Channel, DeliveryStatus, strip_quoted_reply};
use consign_domain::{BrandId, Timestamp};
use std::collections::HashMap;
use utoipa_axum::router::OpenApiRouter;

use crate::AppState;
use crate::error::{AppError, AppResult};

/// How far a Mailgun timestamp may be from now.
const MAILGUN_TOLERANCE_SECONDS: i64 = 5 * 60;

/// The instance secret that signs per-thread reply addresses (the same
/// name the deliver job uses).
const REPLY_KEY_SECRET: &str = "reply_address_key";

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        // A forwarded email carries its attachments (Mailgun accepts up to
        // 25 MB); the API's smaller default limit would refuse it.
        .route("/webhooks/email/mailgun", post(mailgun).layer(axum::extract::DefaultBodyLimit::max(30 * 1024 * 1024)))
        .route("/webhooks/whatsapp/{brand_slug}", get(whatsapp_verify).post(whatsapp_notify))
        .route("/webhooks/sms/twilio/{brand_slug}", post(twilio_inbound))
        .route("/webhooks/sms/twilio/{brand_slug}/status", post(twilio_status))
}

fn form(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

async fn brand(state: &AppState, slug: &str) -> AppResult<BrandId> {
    consign_db::channels::brand_by_slug(&state.db, slug).await?.ok_or(AppError::NotFound)
}

fn outcome(received: &Received) -> &'static str {
    match received {
        Received::Posted(_) => "posted",
        Received::Inboxed(_) => "inboxed",
        Received::Duplicate => "duplicate",
        Received::Unroutable => "unroutable",
    }
}

fn done(received: &Received) -> Response {
    (StatusCode::OK, axum::Json(serde_json::json!({"result": outcome(received)}))).into_response()
}

/// The text fields of a Mailgun post. Routes forward a message as
/// `multipart/form-data` when it has attachments and form-encoded when it
/// has none; attachment parts are not kept (Mailgun stores them, and the
/// message's text says what was attached).
async fn mailgun_fields(state: &AppState, request: Request) -> AppResult<Vec<(String, String)>> {
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    if !multipart {
        let body = Bytes::from_request(request, state).await.map_err(|_| AppError::field("", "unreadable body"))?;
        return Ok(form(&body));
    }
    let malformed = |_| AppError::field("", "malformed multipart body");
    let mut parts =
        Multipart::from_request(request, state).await.map_err(|_| AppError::field("", "malformed multipart body"))?;
    let mut fields = Vec::new();
    while let Some(part) = parts.next_field().await.map_err(malformed)? {
        let Some(name) = part.name().map(str::to_owned) else { continue };
        if part.file_name().is_some() {
            continue;
        }
        fields.push((name, part.text().await.map_err(malformed)?));
    }
    Ok(fields)
}

/// Mailgun routes' inbound email (form-encoded or multipart).
async fn mailgun(State(state): State<AppState>, request: Request) -> AppResult<Response> {
    let config = state.config.channels.email.as_ref().ok_or(AppError::NotFound)?;
    let key = config.mailgun_signing_key.as_ref().ok_or(AppError::NotFound)?;
    let fields = mailgun_fields(&state, request).await?;
    let (timestamp, token, sig) = (
        field(&fields, "timestamp").unwrap_or_default(),
        field(&fields, "token").unwrap_or_default(),
        field(&fields, "signature").unwrap_or_default(),
    );
    let now = Timestamp::now().as_unix_seconds();
    if token.is_empty()
        || !signature::mailgun_valid(key.expose(), timestamp, token, sig, now, MAILGUN_TOLERANCE_SECONDS)
    {
        return Err(AppError::SignatureInvalid);
    }
    if !consign_db::channels::remember_webhook_token(&state.db, "mailgun", token).await? {
        return Err(AppError::SignatureInvalid);
    }
    let sender = field(&fields, "sender")
        .filter(|s| !s.is_empty())
        .or_else(|| field(&fields, "from"))
        .map(address_of)
        .unwrap_or_default();
    let message_id = field(&fields, "Message-Id").unwrap_or(token).to_owned();
    let text = field(&fields, "body-plain").unwrap_or_default();
    let mut body_text = strip_quoted_reply(text);
    if body_text.is_empty() {
        body_text = field(&fields, "stripped-text").unwrap_or_default().trim().to_owned();
    }
    // Which thread or brand the recipient names.
    let reply_key = state.instance_secret(REPLY_KEY_SECRET).await?;
    let mut thread_id = None;
    let mut brand_id = None;
    for recipient in field(&fields, "recipient").unwrap_or_default().split(',') {
        let address = address_of(recipient);
        let Some((local, domain)) = address.rsplit_once('@') else { continue };
        if !domain.eq_ignore_ascii_case(&config.inbound_domain) {
            continue;
        }
        if let Some(thread) = consign_channels::thread_of_reply_address(&reply_key, &address) {
            thread_id = thread.parse().ok();
            break;
        }
        if brand_id.is_none() {
            brand_id = consign_db::channels::brand_by_slug(&state.db, &local.to_lowercase()).await?;
        }
    }
    let received = inbound::receive(
        &state.db,
        Inbound {
            channel: Channel::Email,
            brand_id,
            thread_id,
            sender,
            subject: field(&fields, "subject").map(str::to_owned),
            body: body_text,
            external_id: message_id,
        },
    )
    .await?;
    tracing::info!(result = outcome(&received), "inbound email");
    Ok(done(&received))
}

/// `Name <a@b>` → `a@b`, lower-cased.
fn address_of(text: &str) -> String {
    let text = text.trim();
    let inner = match (text.rfind('<'), text.rfind('>')) {
        (Some(open), Some(close)) if close > open => &text[open + 1..close],
        _ => text,
    };
    inner.trim().to_lowercase()
}

/// WhatsApp's subscription handshake: echo `hub.challenge` when the verify
/// token matches.
async fn whatsapp_verify(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> AppResult<Response> {
    let config = state.config.channels.whatsapp.as_ref().ok_or(AppError::NotFound)?;
    brand(&state, &slug).await?;
    let presented = query.get("hub.verify_token").map(String::as_bytes).unwrap_or_default();
    let expected = config.verify_token.expose().as_bytes();
    use subtle::ConstantTimeEq as _;
    let token_ok = presented.len() == expected.len() && bool::from(presented.ct_eq(expected));
    if query.get("hub.mode").map(String::as_str) != Some("subscribe") || !token_ok {
        return Err(AppError::Forbidden);
    }
    Ok(query.get("hub.challenge").cloned().unwrap_or_default().into_response())
}

/// WhatsApp notifications: inbound text messages and status updates.
async fn whatsapp_notify(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<Response> {
    let config = state.config.channels.whatsapp.as_ref().ok_or(AppError::NotFound)?;
    let header = headers.get("x-hub-signature-256").and_then(|v| v.to_str().ok());
    if !signature::whatsapp_valid(config.app_secret.expose(), &body, header) {
        return Err(AppError::SignatureInvalid);
    }
    let brand_id = brand(&state, &slug).await?;
    let notification: whatsapp::Notification = serde_json::from_slice(&body)
        .map_err(|_| AppError::BadRequest { detail: "not a WhatsApp notification".into(), errors: Vec::new() })?;
    for change in notification.entry.iter().flat_map(|entry| &entry.changes) {
        for message in &change.value.messages {
            let Some(text) = message.text.as_ref().filter(|_| message.kind == "text") else { continue };
            let received = inbound::receive(
                &state.db,
                Inbound {
                    channel: Channel::Whatsapp,
                    brand_id: Some(brand_id),
                    thread_id: None,
                    sender: format!("+{}", message.from.trim_start_matches('+')),
                    subject: None,
                    body: text.body.clone(),
                    external_id: message.id.clone(),
                },
            )
            .await?;
            tracing::info!(result = outcome(&received), "inbound WhatsApp message");
        }
        for status in &change.value.statuses {
            let next = match status.status.as_str() {
                "sent" => DeliveryStatus::Sent,
                "delivered" | "read" => DeliveryStatus::Delivered,
                "failed" => DeliveryStatus::Failed,
                _ => continue,
            };
            deliveries::apply_status(&state.db, Channel::Whatsapp, &status.id, next, None).await?;
        }
    }
    Ok(StatusCode::OK.into_response())
}

/// Checks `X-Twilio-Signature` against the public URL Twilio called (the
/// request's original path: a nested router's `Uri` lacks `/api/v1`).
fn twilio_verified(state: &AppState, uri: &Uri, headers: &HeaderMap, fields: &[(String, String)]) -> AppResult<()> {
    let channels = &state.config.channels;
    let config = channels.twilio.as_ref().ok_or(AppError::NotFound)?;
    let base = channels.public_base_url.as_deref().ok_or(AppError::NotFound)?;
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let header = headers.get("x-twilio-signature").and_then(|v| v.to_str().ok());
    if signature::twilio_valid(config.auth_token.expose(), &url, fields, header) {
        Ok(())
    } else {
        Err(AppError::SignatureInvalid)
    }
}

/// Twilio's incoming SMS. Answers empty TwiML (no automatic reply).
async fn twilio_inbound(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<Response> {
    let fields = form(&body);
    twilio_verified(&state, &uri, &headers, &fields)?;
    let brand_id = brand(&state, &slug).await?;
    let (Some(sid), Some(from)) = (field(&fields, "MessageSid"), field(&fields, "From")) else {
        return Err(AppError::field("MessageSid", "MessageSid and From are required"));
    };
    let received = inbound::receive(
        &state.db,
        Inbound {
            channel: Channel::Sms,
            brand_id: Some(brand_id),
            thread_id: None,
            sender: from.to_owned(),
            subject: None,
            body: field(&fields, "Body").unwrap_or_default().to_owned(),
            external_id: sid.to_owned(),
        },
    )
    .await?;
    tracing::info!(result = outcome(&received), "inbound SMS");
    Ok(([("content-type", "text/xml")], "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>")
        .into_response())
}

/// Twilio's status callback for an SMS we sent.
async fn twilio_status(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<Response> {
    let fields = form(&body);
    twilio_verified(&state, &uri, &headers, &fields)?;
    brand(&state, &slug).await?;
    if let (Some(sid), Some(next)) =
        (field(&fields, "MessageSid"), field(&fields, "MessageStatus").and_then(twilio::delivery_status))
    {
        let error = field(&fields, "ErrorCode").map(|code| format!("Twilio error {code}"));
        deliveries::apply_status(&state.db, Channel::Sms, sid, next, error.as_deref()).await?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
