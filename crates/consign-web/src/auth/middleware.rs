//! Turns `Authorization: Bearer …` into a [`Caller`] in the request's
//! extensions. A request without the header passes on anonymous (handlers
//! that need a caller answer 401); a header that does not verify is a 401
//! right here.

use std::sync::Arc;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use consign_db::{DbError, Origin, api_keys, users};

use crate::AppState;
use crate::auth::tokens::{self, api_key_lookup};
use crate::error::AppError;
use crate::extract::Caller;

/// The middleware function.
pub async fn authenticate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    // The bearer token of `/metrics` is the scraper's metrics token, not a
    // caller's: the handler checks it.
    if request.uri().path() == "/metrics" {
        return next.run(request).await;
    }
    let Some(value) = request.headers().get(header::AUTHORIZATION) else {
        return next.run(request).await;
    };
    let token = match value.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")) {
        Some(token) => token.trim().to_owned(),
        None => {
            return AppError::Unauthenticated("Use Authorization: Bearer <token>.").into_response();
        }
    };
    let origin = Origin {
        ip: request.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(peer)| peer.ip().to_string()),
        user_agent: request
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(512).collect()),
    };
    match resolve(&state, &token, origin).await {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(error) => error.into_response(),
    }
}

pub(crate) async fn resolve(state: &AppState, token: &str, origin: Origin) -> Result<Caller, AppError> {
    const INVALID: AppError = AppError::Unauthenticated("The token is invalid, expired or revoked.");
    let scope = if token.starts_with(tokens::API_KEY_PREFIX) {
        let lookup = api_key_lookup(token).ok_or(INVALID)?;
        let presented = tokens::sha256_hex(token);
        api_keys::authenticate(&state.db, lookup, |stored| tokens::constant_time_eq(stored, &presented)).await
    } else if token.starts_with(tokens::ORDER_TOKEN_PREFIX) {
        consign_db::orders::scope_for_access_token(&state.db, &tokens::sha256_hex(token)).await
    } else {
        let claims = state.access_tokens.verify(token).ok_or(INVALID)?;
        users::scope_for_session(&state.db, claims.user_id, claims.session_id).await
    };
    match scope {
        Ok(scope) => Ok(Caller(Arc::new(scope.with_origin(origin)))),
        Err(DbError::NotFound) => Err(INVALID),
        Err(other) => Err(other.into()),
    }
}
