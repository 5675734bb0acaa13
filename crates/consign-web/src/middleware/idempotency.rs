//! `Idempotency-Key` on every POST (docs/api.md).
//!
//! The first request with a key claims it in the database and runs; its
//! response (anything but a 5xx, 401, 403 or 429) is stored and replayed to every later
//! request with the same key and the same request (method, path, query and
//! body), with `Idempotent-Replayed: true`. The same key with another
//! request is a 422, and a second request while the first still runs is a
//! 409. Because the claim is a row in the shared database, this holds
//! across instances.
//!
//! - Keys belong to the caller (one user, one API key, one order token; see
//!   `Scope::caller_key`), so a replay only ever goes back to the principal
//!   whose request made it. Anonymous requests share one namespace per route; the
//!   ones that answer secrets (signup, login, refresh) carry the caller's
//!   own credential in the body, which the replay must match.
//! - Stored responses are sealed with the master keyring: they can hold
//!   access and refresh tokens, API key secrets and order access tokens.
//! - The handler runs to its end on its own task. A client that hangs up,
//!   or the request timeout, drops the wait, not the work, and the answer
//!   is stored for the retry; a request that committed is never run twice.
//! - On the busiest routes ([`CLAIMED_BY_THE_HANDLER`]) a new key is not
//!   claimed here: the handler claims it in the transaction of its change
//!   and stores its answer there too ([`IdempotentRequest::claim_in`],
//!   [`IdempotentRequest::store_in`]), so one commit holds all three.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::MatchedPath;
use consign_db::Tx;
use consign_db::idempotency::{self, Claim, StoredResponse};
use consign_domain::Timestamp;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::{AppError, AppResult};
use crate::extract::Caller;

/// The request header.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// The response header on a replay.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";
/// Recorded with a claim for operators; a claim is never taken over, since
/// its request may have committed (see `consign_db::idempotency`).
const LEASE_SECONDS: i64 = 120;

/// Routes whose handler claims a new key in its own transaction and stores
/// its answer there (`claim_in`, `store_in`). A route listed here must call
/// `claim_in` before its change.
const CLAIMED_BY_THE_HANDLER: &[&str] = &["/api/v1/storefront/{brand_slug}/checkout", "/api/v1/orders/{id}/messages"];

/// A request that holds its idempotency key, in the request's extensions.
#[derive(Clone, Debug)]
pub struct IdempotentRequest {
    caller: String,
    key: String,
    request_hash: String,
    first_claimed_at: Timestamp,
    /// The key is new and the handler claims it (`claim_in`).
    claim_in_handler: bool,
    /// The handler settled the key itself: it stored its answer
    /// (`store_in`), or another request claimed the key first. Nothing is
    /// left to store or release.
    settled: Arc<AtomicBool>,
}

impl IdempotentRequest {
    /// On a route that claims in its handler: claims a new key in `tx`,
    /// before the change it guards. A key claimed by the middleware already
    /// is left alone. Another request with the key that claimed it first
    /// makes this one a 409, as if the middleware had seen it in flight.
    pub async fn claim_in(&self, tx: &mut Tx) -> AppResult<()> {
        if !self.claim_in_handler {
            return Ok(());
        }
        let claimed = idempotency::claim_in(
            tx,
            &self.caller,
            &self.key,
            &self.request_hash,
            LEASE_SECONDS,
            self.first_claimed_at,
        )
        .await?;
        if claimed {
            Ok(())
        } else {
            self.settled.store(true, Ordering::SeqCst);
            Err(AppError::IdempotencyInProgress)
        }
    }

    /// Stores the answer in `tx`, so it commits with the change it answers;
    /// `body` must be the exact JSON the handler then sends.
    pub async fn store_in(&self, tx: &mut Tx, state: &AppState, status: StatusCode, body: &[u8]) -> AppResult<()> {
        let stored = stored_response(state, &self.caller, &self.key, status, Some("application/json".to_owned()), body);
        idempotency::complete_in(tx, &self.caller, &self.key, &self.request_hash, &stored).await?;
        self.settled.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// A UUID v7 that every run of this request gets alike: the time of the
    /// key's first claim, then a hash of the caller, the key and `purpose`.
    /// An id made this way makes a re-run conflict with what the first run
    /// wrote instead of writing it twice.
    pub fn stable_uuid(&self, purpose: &str) -> uuid::Uuid {
        let digest = Sha256::digest(format!("{purpose}\n{}\n{}", self.caller, self.key).as_bytes());
        let mut random = [0u8; 10];
        random.copy_from_slice(&digest[..10]);
        let millis = u64::try_from(self.first_claimed_at.as_micros() / 1000).unwrap_or_default();
        uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid()
    }
}

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
    // Anonymous keys are namespaced by route as well, so a key spent on a
    // public route (signup, checkout) never answers for another route.
    let caller = match request.extensions().get::<Caller>() {
        Some(caller) => caller.scope().caller_key(),
        None => format!("public:{}", request.uri().path()),
    };
    let (mut parts, body) = request.into_parts();
    let bytes = to_bytes(body, state.config.body_limit_bytes.max(state.config.attachment_max_bytes))
        .await
        .map_err(|_| AppError::PayloadTooLarge.into_response())?;
    let fingerprint = {
        let mut hasher = Sha256::new();
        hasher.update(parts.method.as_str().as_bytes());
        hasher.update(b" ");
        let target = parts.uri.path_and_query().map_or_else(|| parts.uri.path(), |target| target.as_str());
        hasher.update(target.as_bytes());
        hasher.update(b"\n");
        hasher.update(&bytes);
        hex::encode(hasher.finalize())
    };
    let claimed_by_the_handler =
        parts.extensions.get::<MatchedPath>().is_some_and(|path| CLAIMED_BY_THE_HANDLER.contains(&path.as_str()));
    let claim_in_handler = claimed_by_the_handler
        && idempotency::is_unused(&state.db, &caller, &key).await.map_err(|e| AppError::from(e).into_response())?;
    let first_claimed_at = if claim_in_handler {
        Timestamp::now()
    } else {
        let claim = idempotency::claim(&state.db, &caller, &key, &fingerprint, LEASE_SECONDS)
            .await
            .map_err(|e| AppError::from(e).into_response())?;
        match claim {
            Claim::Mismatch => return Err(AppError::IdempotencyKeyReused.into_response()),
            Claim::InFlight => return Err(AppError::IdempotencyInProgress.into_response()),
            Claim::Replay(stored) => return Ok(replay(state, &caller, &key, stored)),
            Claim::Claimed { first_claimed_at } => first_claimed_at,
        }
    };
    let claimed = IdempotentRequest {
        caller,
        key,
        request_hash: fingerprint,
        first_claimed_at,
        claim_in_handler,
        settled: Arc::new(AtomicBool::new(false)),
    };
    parts.extensions.insert(claimed.clone());
    let request = Request::from_parts(parts, Body::from(bytes));
    let work = tokio::spawn(run_and_store(state.clone(), claimed.clone(), request, next));
    match work.await {
        Ok(response) => Ok(response),
        Err(error) => {
            // The handler panicked: nothing is stored; a retry may run it.
            release(state, &claimed).await;
            Err(AppError::Internal(anyhow::anyhow!("handler failed: {error}")).into_response())
        }
    }
}

/// Runs the handler and stores its answer, or gives the key up after a 5xx.
async fn run_and_store(state: AppState, claimed: IdempotentRequest, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if claimed.settled.load(Ordering::SeqCst) {
        return response;
    }
    let refused_before_running =
        matches!(response.status(), StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS);
    if response.status().is_server_error() || refused_before_running {
        // Our failure, or a refusal of the caller rather than of the request
        // (authentication, permission, rate limit), is not the request's
        // answer: let a retry run it again, as Stripe does.
        release(&state, &claimed).await;
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = match to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(error) => {
            release(&state, &claimed).await;
            return AppError::Internal(anyhow::anyhow!("reading response body: {error}")).into_response();
        }
    };
    let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let stored = stored_response(&state, &claimed.caller, &claimed.key, parts.status, content_type, &bytes);
    if let Err(error) =
        idempotency::complete(&state.db, &claimed.caller, &claimed.key, &claimed.request_hash, &stored).await
    {
        tracing::error!(error = %error, "could not store an idempotent response");
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// A response as it is kept: sealed with the master keyring.
fn stored_response(
    state: &AppState,
    caller: &str,
    key: &str,
    status: StatusCode,
    content_type: Option<String>,
    body: &[u8],
) -> StoredResponse {
    let (response_body, response_key_id, response_nonce) = match &state.gateway.keyring {
        Some(keyring) => {
            let sealed = keyring.seal(body, &aad(caller, key));
            (hex::decode(&sealed.ciphertext).unwrap_or_default(), Some(sealed.key_id), Some(sealed.nonce))
        }
        // Only a state built without a master key (never `consign serve`).
        None => (body.to_vec(), None, None),
    };
    StoredResponse {
        response_status: i64::from(status.as_u16()),
        response_content_type: content_type,
        response_body,
        response_key_id,
        response_nonce,
    }
}

async fn release(state: &AppState, claimed: &IdempotentRequest) {
    if let Err(error) = idempotency::release(&state.db, &claimed.caller, &claimed.key).await {
        tracing::error!(error = %error, "could not release an idempotency key");
    }
}

/// What a stored response is sealed to: a body copied to another caller's
/// or another key's row does not open.
fn aad(caller: &str, key: &str) -> String {
    format!("idempotency:{caller}:{key}")
}

fn replay(state: &AppState, caller: &str, key: &str, stored: StoredResponse) -> Response {
    let status =
        u16::try_from(stored.response_status).ok().and_then(|s| StatusCode::from_u16(s).ok()).unwrap_or(StatusCode::OK);
    let body = match (stored.response_key_id, stored.response_nonce) {
        (Some(key_id), Some(nonce)) => {
            let sealed = consign_payments::Sealed { key_id, nonce, ciphertext: hex::encode(&stored.response_body) };
            let keyring = match state.gateway.keyring() {
                Ok(keyring) => keyring,
                Err(error) => return AppError::Unavailable(error.to_string()).into_response(),
            };
            match keyring.open(&sealed, &aad(caller, key)) {
                Ok(body) => body,
                Err(error) => return AppError::Internal(anyhow::anyhow!("stored response: {error}")).into_response(),
            }
        }
        _ => stored.response_body,
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    if let Some(content_type) = stored.response_content_type.and_then(|c| HeaderValue::from_str(&c).ok()) {
        headers.insert(header::CONTENT_TYPE, content_type);
    }
    headers.insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    response
}
