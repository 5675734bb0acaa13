//! How a customer holds an order's pages without its token in every URL.
//!
//! The link in an email or after checkout carries the order access token
//! once (`?token=cot_…`). That first request trades it for a cookie scoped
//! to the order's own pages (`Path=/shop/{slug}/orders/{id}`, `HttpOnly`,
//! `SameSite=Lax`) and redirects to the same page without the token, so
//! the token is not left in the address bar, the history, a `Referer` or
//! a proxy's access log line of every later request. The order's pages,
//! its files and its live socket (`…/live`) then read the cookie. The
//! token is checked exactly as the API checks it
//! (`orders::scope_for_access_token`): a rotated or lapsed token fails here
//! too, cookie or not, and the order must belong to the brand of the URL.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use consign_db::orders::checkout::StorefrontBrand;
use consign_db::orders::{self, ACCESS_TOKEN_DAYS_AFTER_CLOSE, Order};
use consign_db::{DbError, Scope};
use consign_domain::OrderId;
use serde::Deserialize;

use super::PageError;
use super::shop::brand;
use super::view;
use crate::AppState;
use crate::auth::tokens;

/// The cookie that holds an order's access token for its pages.
pub const ORDER_COOKIE: &str = "consign_order";

/// The customer's live socket route.
pub fn router() -> Router<AppState> {
    Router::new().route("/shop/{slug}/orders/{id}/live", get(live))
}

/// The address of an order's pages, under which its cookie is sent.
pub(super) fn order_path(slug: &str, order_id: OrderId) -> String {
    format!("/shop/{slug}/orders/{order_id}")
}

/// The token of a request to an order's pages: the link's `?token=` when
/// given, else the order cookie.
pub(super) fn token_of(headers: &HeaderMap, link_token: Option<&str>) -> Option<String> {
    link_token.map(str::to_owned).or_else(|| view::cookie(headers, ORDER_COOKIE))
}

/// The order behind a token, if it belongs to this brand; else 404.
pub(super) async fn customer_order(
    state: &AppState,
    brand: &StorefrontBrand,
    id: &str,
    token: Option<&str>,
) -> Result<(Order, Scope), PageError> {
    let order_id: OrderId = id.parse().map_err(|_| PageError::NotFound)?;
    let token = token.map(str::trim).filter(|t| !t.is_empty()).ok_or(PageError::NotFound)?;
    let scope = match orders::scope_for_access_token(&state.db, &tokens::sha256_hex(token)).await {
        Ok(scope) => scope,
        Err(DbError::NotFound) => return Err(PageError::NotFound),
        Err(error) => return Err(error.into()),
    };
    if scope.customer_order() != Some(order_id) {
        return Err(PageError::NotFound);
    }
    let order = orders::get(&state.db, &scope, order_id).await?;
    if order.brand_id != brand.id {
        return Err(PageError::NotFound);
    }
    Ok((order, scope))
}

/// The answer to a link that carried a valid token: the cookie, and a
/// redirect to `page` (a path under the order's, with its own query but
/// not the token). The redirect itself leaks nothing onwards.
pub(super) fn enter_with_link(
    state: &AppState,
    headers: &HeaderMap,
    order_path: &str,
    page: &str,
    token: &str,
) -> Response {
    let secure = if super::session::secure(state, headers) { "; Secure" } else { "" };
    let max_age = ACCESS_TOKEN_DAYS_AFTER_CLOSE * 24 * 60 * 60;
    let cookie =
        format!("{ORDER_COOKIE}={token}; Path={order_path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}");
    let mut response = Redirect::to(page).into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        headers.append(header::SET_COOKIE, value);
    }
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `?after=<last event id>` to resume.
#[derive(Deserialize)]
pub struct LiveQuery {
    after: Option<String>,
}

/// `GET /shop/{slug}/orders/{id}/live`: the order page's live socket, with
/// the order cookie as its credential (the same audience as the order
/// token on `/api/v1/live`). It closes when the token is rotated.
pub async fn live(
    State(state): State<AppState>,
    Path((slug, id)): Path<(String, String)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(query): Query<LiveQuery>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, PageError> {
    if !super::socket::same_origin(&state, &headers) {
        return Ok((StatusCode::FORBIDDEN, "This socket is for pages of this site.").into_response());
    }
    let (brand, _) = brand(&state, &slug).await?;
    let token = token_of(&headers, None);
    let (_, scope) = customer_order(&state, &brand, &id, token.as_deref()).await?;
    let caller = crate::extract::Caller(std::sync::Arc::new(scope));
    let ip = crate::extract::client_ip(&state, &headers, peer);
    Ok(crate::live::subscribe(state, &caller, ip, query.after.as_deref(), None, upgrade).await?)
}
