//! Attachments: upload a file to an order (then name it in a new message's
//! `attachment_ids`), and download it through this authorized endpoint only.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use consign_db::messages::{self, attachments::Attachment, attachments::NewAttachment};
use consign_domain::policy::Action;
use consign_domain::{AttachmentId, OrderId};
use http_body_util::BodyExt as _;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::rate_limit::{Bucket, caller_key};
use crate::error::{AppError, AppResult, Problem};
use crate::extract::{AppJson, AppPath, AppQuery, Caller};
use crate::files::{FileWriter, file_response};

/// Media types accepted, with the leading bytes each must start with (an
/// empty list: text, checked for UTF-8 instead).
const ALLOWED: &[(&str, &[&[u8]])] = &[
    ("image/png", &[b"\x89PNG\r\n\x1a\n"]),
    ("image/jpeg", &[b"\xff\xd8\xff"]),
    ("image/gif", &[b"GIF87a", b"GIF89a"]),
    ("image/webp", &[b"RIFF"]),
    ("application/pdf", &[b"%PDF-"]),
    ("text/plain", &[]),
    ("text/csv", &[]),
];

/// The leading bytes read before the media type's signature is checked
/// (the longest signature, PNG's).
const HEAD_BYTES: usize = 8;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    // The upload reads its body as a stream, bounded by
    // `WebConfig::attachment_max_bytes` as it goes (see `receive`), so no
    // body limit layer applies to it.
    OpenApiRouter::new().routes(routes!(upload)).routes(routes!(download))
}

/// Query of the upload.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// The file's name, as the reader will see it.
    pub file_name: String,
}

/// Uploads a file to an order: the raw bytes as the body, its media type as
/// `Content-Type` (PNG, JPEG, GIF, WebP, PDF, plain text or CSV), at most
/// the configured size (10 MiB by default; 413 past it). A cancelled or
/// expired order takes no files (409 `invalid_transition`); a file that
/// would take the order or its brand past its storage quota is 422
/// `validation_failed` on `body`. A file never sent in a message is
/// deleted after a while (`CONSIGN_UNSENT_UPLOAD_TTL_HOURS`).
#[utoipa::path(post, path = "/orders/{id}/attachments", tag = "messages",
    params(("id" = String, Path, description = "Order id"), UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = Attachment), (status = 404, body = Problem), (status = 409, body = Problem),
              (status = 413, body = Problem), (status = 422, body = Problem),
              (status = 429, description = "Too many uploads from this caller; see Retry-After", body = Problem)),
    security(("bearer" = [])))]
async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(order_id): AppPath<OrderId>,
    AppQuery(query): AppQuery<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> AppResult<(StatusCode, AppJson<Attachment>)> {
    let brand_id = messages::order_brand(&state.db, caller.scope(), order_id).await?;
    if caller.scope().customer_order().is_none() {
        caller.authorize_brand(Action::EditCommerce, brand_id)?;
    }
    state.limiter.check(Bucket::Upload, &caller_key(&caller)).await?;
    let file_name = query.file_name.trim();
    if file_name.is_empty()
        || file_name.chars().count() > 200
        || file_name.contains(['/', '\\'])
        || file_name.chars().any(char::is_control)
    {
        return Err(AppError::field(
            "file_name",
            "must be 1 to 200 characters, without path separators or control characters",
        ));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
        .unwrap_or_default();
    let Some((_, magic)) = ALLOWED.iter().find(|(allowed, _)| *allowed == content_type) else {
        return Err(AppError::field(
            "content_type",
            "must be image/png, image/jpeg, image/gif, image/webp, application/pdf, text/plain or text/csv",
        ));
    };
    let max_bytes = state.config.attachment_max_bytes;
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > u64::try_from(max_bytes).unwrap_or(u64::MAX)) {
        return Err(AppError::PayloadTooLarge);
    }
    let quotas = state.config.attachment_quotas();
    messages::attachments::check_upload(&state.db, caller.scope(), order_id, quotas, declared.unwrap_or(0)).await?;
    let id = AttachmentId::new();
    let key = format!("attachments/{brand_id}/{id}");
    let mut writer = state.files.writer(&key).await?;
    let size = match receive(body, max_bytes, &content_type, magic, &mut writer).await {
        Ok(size) => size,
        Err(error) => {
            writer.abort().await;
            return Err(error);
        }
    };
    writer.finish().await?;
    let size = i64::try_from(size).unwrap_or(i64::MAX);
    let file = NewAttachment { id, file_name, content_type: &content_type, size, storage_key: &key };
    match messages::attachments::create(&state.db, caller.scope(), order_id, file, quotas).await {
        Ok(attachment) => Ok((StatusCode::CREATED, AppJson(attachment))),
        Err(error) => {
            // Refused (over quota, the order closed meanwhile) or failed:
            // the bytes must not outlive the missing record.
            if let Err(delete) = state.files.delete(&key).await {
                tracing::warn!(error = %delete, "could not delete the file of a refused upload");
            }
            Err(error.into())
        }
    }
}

/// Streams an upload's body into the file store, checking it on the way:
/// it stops at the first byte past `max_bytes` (413), so nothing larger is
/// ever read, and at the first bytes that do not match the media type.
/// Answers the size.
async fn receive(
    mut body: Body,
    max_bytes: usize,
    content_type: &str,
    magic: &[&[u8]],
    writer: &mut FileWriter,
) -> AppResult<usize> {
    let not_this_type = || AppError::field("body", format!("the bytes are not {content_type}"));
    let mut size = 0usize;
    let mut head: Vec<u8> = Vec::with_capacity(HEAD_BYTES);
    let mut text = magic.is_empty().then(Utf8Stream::default);
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|_| AppError::BadRequest { detail: "The body could not be read.".into(), errors: Vec::new() })?;
        let Ok(chunk) = frame.into_data() else { continue };
        size = size.saturating_add(chunk.len());
        if size > max_bytes {
            return Err(AppError::PayloadTooLarge);
        }
        if head.len() < HEAD_BYTES {
            let wanted = (HEAD_BYTES - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..wanted]);
            if head.len() == HEAD_BYTES && !magic.is_empty() && !magic.iter().any(|prefix| head.starts_with(prefix)) {
                return Err(not_this_type());
            }
        }
        if let Some(text) = &mut text
            && !text.feed(&chunk)
        {
            return Err(not_this_type());
        }
        writer.write(chunk).await?;
    }
    if size == 0 {
        return Err(AppError::field("body", "the file is empty"));
    }
    let matches = match text {
        Some(text) => text.finish(),
        None => magic.iter().any(|prefix| head.starts_with(prefix)),
    };
    if !matches {
        return Err(not_this_type());
    }
    Ok(size)
}

/// UTF-8 validation over a body that arrives in pieces: a character split
/// between two pieces is carried over to the next.
#[derive(Default)]
struct Utf8Stream {
    carry: Vec<u8>,
}

impl Utf8Stream {
    /// Checks the next piece; false at the first invalid byte.
    fn feed(&mut self, chunk: &[u8]) -> bool {
        let joined;
        let bytes = if self.carry.is_empty() {
            chunk
        } else {
            joined = [std::mem::take(&mut self.carry).as_slice(), chunk].concat();
            joined.as_slice()
        };
        match std::str::from_utf8(bytes) {
            Ok(_) => true,
            // Cut short at the end of the piece: the rest comes next.
            Err(error) if error.error_len().is_none() => {
                self.carry = bytes[error.valid_up_to()..].to_vec();
                true
            }
            Err(_) => false,
        }
    }

    /// True when no character was left incomplete at the end.
    fn finish(self) -> bool {
        self.carry.is_empty()
    }
}

/// Downloads a file: staff of the brand, or the customer for files on
/// messages it can see.
#[utoipa::path(get, path = "/attachments/{id}", tag = "messages",
    params(("id" = String, Path, description = "Attachment id")),
    responses((status = 200, description = "The file", content_type = "application/octet-stream"),
              (status = 404, body = Problem)),
    security(("bearer" = [])))]
async fn download(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<AttachmentId>,
) -> AppResult<impl IntoResponse> {
    file_response(&state, &caller, id).await
}
