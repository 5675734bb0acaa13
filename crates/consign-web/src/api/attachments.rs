//! Attachments: upload a file to an order (then name it in a new message's
//! `attachment_ids`), and download it through this authorized endpoint only.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use consign_db::messages::{self, attachments::Attachment, attachments::NewAttachment};
use consign_domain::policy::Action;
use consign_domain::{AttachmentId, OrderId};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::rate_limit::{Bucket, caller_key};
use crate::error::{AppError, AppResult, Problem};
use crate::extract::{AppJson, AppPath, AppQuery, Caller};

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

/// The most any instance accepts; `WebConfig::attachment_max_bytes` sets
/// the limit below it.
const CEILING_BYTES: usize = 100 * 1024 * 1024;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload))
        .layer(axum::extract::DefaultBodyLimit::max(CEILING_BYTES))
        .routes(routes!(download))
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
/// the configured size (10 MiB by default).
#[utoipa::path(post, path = "/orders/{id}/attachments", tag = "messages",
    params(("id" = String, Path, description = "Order id"), UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = Attachment), (status = 404, body = Problem), (status = 413, body = Problem),
              (status = 422, body = Problem),
              (status = 429, description = "Too many uploads from this caller; see Retry-After", body = Problem)),
    security(("bearer" = [])))]
async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(order_id): AppPath<OrderId>,
    AppQuery(query): AppQuery<UploadQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<(StatusCode, AppJson<Attachment>)> {
    let brand_id = messages::order_brand(&state.db, caller.scope(), order_id).await?;
    if caller.scope().customer_order().is_none() {
        caller.authorize_brand(Action::EditCommerce, brand_id)?;
    }
    state.limiter.check(Bucket::Upload, &caller_key(&caller)).await?;
    let file_name = query.file_name.trim();
    if file_name.is_empty() || file_name.chars().count() > 200 || file_name.contains(['/', '\\', '\0']) {
        return Err(AppError::field("file_name", "must be 1 to 200 characters, without path separators"));
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
    if body.len() > state.config.attachment_max_bytes {
        return Err(AppError::PayloadTooLarge);
    }
    if body.is_empty() {
        return Err(AppError::field("body", "the file is empty"));
    }
    let matches = if magic.is_empty() {
        std::str::from_utf8(&body).is_ok()
    } else {
        magic.iter().any(|prefix| body.starts_with(prefix))
    };
    if !matches {
        return Err(AppError::field("body", format!("the bytes are not {content_type}")));
    }
    let id = AttachmentId::new();
    let key = format!("attachments/{brand_id}/{id}");
    let size = i64::try_from(body.len()).unwrap_or(i64::MAX);
    state.files.put(&key, body).await?;
    let file = NewAttachment { id, file_name, content_type: &content_type, size, storage_key: &key };
    let attachment = messages::attachments::create(&state.db, caller.scope(), order_id, file).await?;
    Ok((StatusCode::CREATED, AppJson(attachment)))
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

/// The file as a download, if the caller may see it; shared with the
/// staff and customer pages, whose credentials are not bearer tokens.
pub(crate) async fn file_response(state: &AppState, caller: &Caller, id: AttachmentId) -> AppResult<Response> {
    let attachment = messages::attachments::get(&state.db, caller.scope(), id).await?;
    if caller.scope().customer_order().is_none() {
        caller.authorize_brand(Action::ViewCommerce, attachment.brand_id)?;
    }
    let bytes = state.files.get(&attachment.storage_key).await?;
    let disposition = format!("attachment; filename=\"{}\"", attachment.file_name.replace(['"', '\r', '\n'], "_"));
    Ok((
        [
            (header::CONTENT_TYPE, attachment.content_type),
            (header::CONTENT_DISPOSITION, disposition),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
            (header::CACHE_CONTROL, "private, no-store".to_owned()),
        ],
        bytes,
    )
        .into_response())
}
