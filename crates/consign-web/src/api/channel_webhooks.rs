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
//! Then `consign_db::inbound::messages::receive` finds the order.

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, OriginalUri, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use consign_channels::{signature, twilio, whatsapp};
use consign_db::deliveries;
use consign_db::inbound::messages::{self as inbound, Inbound, Received, ReplayToken};
use consign_domain::messaging::{Channel, DeliveryStatus, strip_quoted_reply};
use consign_domain::{BrandId, Timestamp};
use std::collections::HashMap;
use utoipa_axum::router::OpenApiRouter;

use crate::AppState;
use crate::error::{AppError, AppResult};

/// How far a Mailgun timestamp may be from now.
const MAILGUN_TOLERANCE_SECONDS: i64 = 5 * 60;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        // A forwarded email carries its attachments; the API's smaller
        // default limit would refuse it (see `mailgun_fields`).
        .route("/webhooks/email/mailgun", post(mailgun).layer(axum::extract::DefaultBodyLimit::max(MAILGUN_BODY_LIMIT)))
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
    consign_db::inbound::brand_by_slug(&state.db, slug).await?.ok_or(AppError::NotFound)
}

fn outcome(received: &Received) -> &'static str {
    match received {
        Received::Posted(_) => "posted",
        Received::Inboxed(_) => "inboxed",
        Received::Duplicate => "duplicate",
        Received::Unroutable => "unroutable",
        Received::Replayed => "replayed",
    }
}

fn done(received: &Received) -> Response {
    (StatusCode::OK, axum::Json(serde_json::json!({"result": outcome(received)}))).into_response()
}

/// The most text a Mailgun post may carry: the whole body of a
/// form-encoded post, or the text fields of a multipart one (the message's
/// text and headers, never its attachments).
const MAILGUN_TEXT_LIMIT: usize = 2 * 1024 * 1024;

/// The most a multipart Mailgun post may be: Mailgun takes messages of up
/// to 25 MB, whose attachments are read past (after the signature holds),
/// never kept.
const MAILGUN_BODY_LIMIT: usize = 30 * 1024 * 1024;

/// Whether a Mailgun post's signature fields hold.
fn mailgun_signed(key: &str, fields: &[(String, String)]) -> bool {
    let (timestamp, token, sig) = (
        field(fields, "timestamp").unwrap_or_default(),
        field(fields, "token").unwrap_or_default(),
        field(fields, "signature").unwrap_or_default(),
    );
    let now = Timestamp::now().as_unix_seconds();
    !token.is_empty() && signature::mailgun_valid(key, timestamp, token, sig, now, MAILGUN_TOLERANCE_SECONDS)
}

/// The text fields of a Mailgun post, once its signature holds. Routes
/// forward a message as `multipart/form-data` when it has attachments and
/// form-encoded when it has none. A form-encoded body is read up to
/// `MAILGUN_TEXT_LIMIT`; a multipart one field by field, in order, and the
/// signature fields (which come before the attachments) are checked as soon
/// as they are in: an attachment before a valid signature is refused
/// unread. Attachment parts are not kept (Mailgun stores them, and the
/// message's text says what was attached).
async fn mailgun_fields(state: &AppState, key: &str, request: Request) -> AppResult<Vec<(String, String)>> {
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    if !multipart {
        let body = axum::body::to_bytes(request.into_body(), MAILGUN_TEXT_LIMIT)
            .await
            .map_err(|_| AppError::PayloadTooLarge)?;
        let fields = form(&body);
        return if mailgun_signed(key, &fields) { Ok(fields) } else { Err(AppError::SignatureInvalid) };
    }
    let failed = |error: axum::extract::multipart::MultipartError| {
        if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::PayloadTooLarge
        } else {
            AppError::field("", "malformed multipart body")
        }
    };
    let mut parts =
        Multipart::from_request(request, state).await.map_err(|_| AppError::field("", "malformed multipart body"))?;
    let mut fields = Vec::new();
    let mut text_bytes = 0usize;
    let mut signed = false;
    while let Some(mut part) = parts.next_field().await.map_err(failed)? {
        let Some(name) = part.name().map(str::to_owned) else { continue };
        if part.file_name().is_some() {
            if !signed {
                return Err(AppError::SignatureInvalid);
            }
            while part.chunk().await.map_err(failed)?.is_some() {}
            continue;
        }
        let mut value = Vec::new();
        while let Some(chunk) = part.chunk().await.map_err(failed)? {
            text_bytes = text_bytes.saturating_add(chunk.len());
            if text_bytes > MAILGUN_TEXT_LIMIT {
                return Err(if signed { AppError::PayloadTooLarge } else { AppError::SignatureInvalid });
            }
            value.extend_from_slice(&chunk);
        }
        let value = String::from_utf8(value).map_err(|_| AppError::field(name.clone(), "must be UTF-8 text"))?;
        fields.push((name, value));
        if !signed && ["timestamp", "token", "signature"].iter().all(|name| field(&fields, name).is_some()) {
            if !mailgun_signed(key, &fields) {
                return Err(AppError::SignatureInvalid);
            }
            signed = true;
        }
    }
    if signed { Ok(fields) } else { Err(AppError::SignatureInvalid) }
}

/// Whether Mailgun's checks vouch for the sender's domain: SPF or DKIM
/// passed (`X-Mailgun-Spf`, `X-Mailgun-Dkim-Check-Result`).
fn mailgun_sender_verified(fields: &[(String, String)]) -> bool {
    ["X-Mailgun-Spf", "X-Mailgun-Dkim-Check-Result"]
        .iter()
        .any(|name| field(fields, name).is_some_and(|result| result.trim().eq_ignore_ascii_case("pass")))
}

/// Mailgun routes' inbound email (form-encoded or multipart).
async fn mailgun(State(state): State<AppState>, request: Request) -> AppResult<Response> {
    let config = state.config.channels.email.as_ref().ok_or(AppError::NotFound)?;
    let key = config.mailgun_signing_key.as_ref().ok_or(AppError::NotFound)?;
    let fields = mailgun_fields(&state, key.expose(), request).await?;
    let token = field(&fields, "token").unwrap_or_default();
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
    // Which thread or brand the recipient names. A reply address routes
    // to its thread whatever SPF and DKIM say: its token is a secret only
    // the customer was sent, which a forger of the sender cannot know.
    let reply_key = state.instance_secret(consign_app::instance_secrets::REPLY_KEY_SECRET).await?;
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
            brand_id = consign_db::inbound::brand_by_slug(&state.db, &local.to_lowercase()).await?;
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
            sender_verified: mailgun_sender_verified(&fields),
            replay_token: Some(ReplayToken { provider: "mailgun", token: token.to_owned() }),
        },
    )
    .await?;
    tracing::info!(result = outcome(&received), "inbound email");
    if let Received::Replayed = received {
        return Err(AppError::SignatureInvalid);
    }
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
                    // The carrier delivers the number; the webhook is signed.
                    sender_verified: true,
                    replay_token: None,
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
            // The carrier delivers the number; the webhook is signed.
            sender_verified: true,
            replay_token: None,
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
