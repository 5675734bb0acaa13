//! Turns `Authorization: Bearer …` into a [`Caller`] in the request's
//! extensions. A request without the header passes on anonymous (handlers
//! that need a caller answer 401); a header that does not verify is a 401
//! right here, and an order access token on a route that is not for
//! customers is a 403 right here (see [`customer_may_call`]).

use std::sync::Arc;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{Method, header};
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
        Ok(caller) if caller.scope().customer_order().is_some() && !customer_may_call(&request) => {
            AppError::Forbidden.into_response()
        }
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

/// The API routes an order access token (`cot_…`) may call: its order, that
/// order's messages, thread, timeline, attachments and payment attempts, the
/// customer's message search and unread count, the storefront and the live
/// feed. Every other API route is staff's and answers 403 to it, in
/// this one place rather than in each handler; which order the token may see
/// is still the storage scope's to decide (another order is a 404).
const CUSTOMER_ROUTES: &[(Method, &str)] = &[
    (Method::GET, "/api/v1/orders/{id}"),
    (Method::GET, "/api/v1/orders/{id}/messages"),
    (Method::POST, "/api/v1/orders/{id}/messages"),
    (Method::POST, "/api/v1/orders/{id}/messages/{message_id}/read"),
    (Method::GET, "/api/v1/orders/{id}/thread"),
    (Method::GET, "/api/v1/orders/{id}/timeline"),
    (Method::POST, "/api/v1/orders/{id}/attachments"),
    (Method::GET, "/api/v1/attachments/{id}"),
    (Method::GET, "/api/v1/orders/{id}/payment-attempts"),
    (Method::POST, "/api/v1/orders/{id}/payment-attempts"),
    (Method::POST, "/api/v1/orders/{id}/payment-attempts/{attempt_id}/razorpay-callback"),
    (Method::GET, "/api/v1/messages/search"),
    (Method::GET, "/api/v1/messages/unread"),
    (Method::GET, "/api/v1/live"),
];

/// Whether an order access token may call this request's route. Routes
/// outside the API (pages, ops) and requests that matched no route (a 404
/// follows) are not this check's business.
fn customer_may_call(request: &Request) -> bool {
    let Some(route) = request.extensions().get::<MatchedPath>().map(MatchedPath::as_str) else { return true };
    if !route.starts_with("/api/") || route.starts_with("/api/v1/storefront/") {
        return true;
    }
    CUSTOMER_ROUTES.iter().any(|(method, allowed)| method == request.method() && *allowed == route)
}
