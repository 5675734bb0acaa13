//! `GET /admin/live`: the live WebSocket of the staff pages. The page
//! session cookie is scoped to `/admin`, so the browser never sends it to
//! `/api/v1/live`; this route sits behind the staff middleware and hands
//! the session's caller to the same hub (`crate::live::subscribe`), with
//! the same audience rules as a bearer token.

use axum::extract::ws::WebSocketUpgrade;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::Staff;
use crate::AppState;

/// `?after=<last event id>` to resume.
#[derive(Deserialize)]
pub struct LiveQuery {
    after: Option<String>,
}

/// Whether a browser's handshake comes from a page of this site. A
/// WebSocket handshake is not subject to CORS and carries cookies, so a
/// page elsewhere could otherwise open a socket as the signed-in staff
/// member (`SameSite=Lax` already stops that in current browsers; this is
/// the second line). Clients that send no `Origin` are not browsers.
pub(super) fn same_origin(state: &AppState, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else { return true };
    let origin_host = origin.split_once("://").map(|(_, host)| host).unwrap_or(origin);
    let header_value = |name| headers.get(name).and_then(|v: &axum::http::HeaderValue| v.to_str().ok());
    let mut hosts = vec![header_value(header::HOST.as_str())];
    if state.config.trust_forwarded_for {
        hosts.push(header_value("x-forwarded-host"));
    }
    hosts.into_iter().flatten().any(|host| host.eq_ignore_ascii_case(origin_host))
}

/// `GET /admin/live`.
pub async fn live(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    staff: Staff,
    headers: HeaderMap,
    Query(query): Query<LiveQuery>,
    upgrade: WebSocketUpgrade,
) -> Response {
    if !same_origin(&state, &headers) {
        return (StatusCode::FORBIDDEN, "This socket is for pages of this site.").into_response();
    }
    // The page session's socket ends when the session is revoked (logout,
    // password reset; see `consign_db::access`).
    let ip = crate::extract::client_ip(&state, &headers, peer);
    match crate::live::subscribe(state, &staff.caller, ip, query.after.as_deref(), None, upgrade).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}
