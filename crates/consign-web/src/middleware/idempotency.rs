//! `Idempotency-Key` on every POST (SPEC §3).
//!
//! The first request with a key claims it in the database and runs; its
//! response (anything but a 5xx) is stored and replayed to every later
//! request with the same key and the same body, with
//! `Idempotent-Replayed: true`. The same key with another body is a 422, and
//! a second request while the first still runs is a 409. Keys belong to the
//! caller's tenant and live 24 hours. Because the claim is a row in the
//! shared database, this holds across instances.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use consign_db::idempotency::{self, Claim, StoredResponse};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::AppError;
use crate::extract::Caller;

/// The request header.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// The response header on a replay.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";
/// How long a claim holds before another request may take it over, should
/// its holder have died.
const LEASE_SECONDS: i64 = 120;

/// The middleware function.
pub async fn idempotency(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let Some(key) = request.headers().get(IDEMPOTENCY_KEY).cloned() else {
        return next.run(request).await;
    };
    match run(&state, key, request, next).await {
        Ok(response) | Err(response) => response,
    }
}

async fn run(state: &AppState, key: HeaderValue, request: Request, next: Next) -> Result<Response, Response> {
    let key = match key.to_str() {
        Ok(key) if !key.is_empty() && key.len() <= 255 => key.to_owned(),
        _ => {
            return Err(AppError::field("Idempotency-Key", "must be 1 to 255 visible ASCII characters").into_response());
        }
    };
    let tenant = match request.extensions().get::<Caller>() {
        Some(caller) => caller.scope().tenant_key(),
        None => "public".to_owned(),
    };
    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, state.config.body_limit_bytes.max(state.config.attachment_max_bytes))
        .await
        .map_err(|_| AppError::PayloadTooLarge.into_response())?;
    let fingerprint = {
        let mut hasher = Sha256::new();
        hasher.update(parts.method.as_str().as_bytes());
        hasher.update(b" ");
        hasher.update(parts.uri.path().as_bytes());
        hasher.update(b"\n");
        hasher.update(&bytes);
        hex::encode(hasher.finalize())
    };
    let claim = idempotency::claim(&state.db, &tenant, &key, &fingerprint, LEASE_SECONDS)
        .await
        .map_err(|e| AppError::from(e).into_response())?;
    match claim {
        Claim::Mismatch => return Err(AppError::IdempotencyKeyReused.into_response()),
        Claim::InFlight => return Err(AppError::IdempotencyInProgress.into_response()),
        Claim::Replay(stored) => return Ok(replay(stored)),
        Claim::Claimed => {}
    }
    let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    if response.status().is_server_error() {
        // Our failure is not the request's answer: let a retry run it again.
        if let Err(error) = idempotency::release(&state.db, &tenant, &key).await {
            tracing::error!(error = %error, "could not release an idempotency key");
        }
        return Ok(response);
    }
    let (parts, body) = response.into_parts();
    let bytes = match to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(error) => {
            let _ = idempotency::release(&state.db, &tenant, &key).await;
            return Err(AppError::Internal(anyhow::anyhow!("reading response body: {error}")).into_response());
        }
    };
    let stored = StoredResponse {
        response_status: i64::from(parts.status.as_u16()),
        response_content_type: parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned),
        response_body: bytes.to_vec(),
    };
    if let Err(error) = idempotency::complete(&state.db, &tenant, &key, &stored).await {
        tracing::error!(error = %error, "could not store an idempotent response");
    }
    Ok(Response::from_parts(parts, Body::from(bytes)))
}

fn replay(stored: StoredResponse) -> Response {
    let status =
        u16::try_from(stored.response_status).ok().and_then(|s| StatusCode::from_u16(s).ok()).unwrap_or(StatusCode::OK);
    let mut response = (status, stored.response_body).into_response();
    let headers = response.headers_mut();
    if let Some(content_type) = stored.response_content_type.and_then(|c| HeaderValue::from_str(&c).ok()) {
        headers.insert(header::CONTENT_TYPE, content_type);
    }
    headers.insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    response
}
