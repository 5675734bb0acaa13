//! Static assets, compiled into the binary: the stylesheet, htmx and the
//! small scripts of the pages. Nothing is loaded from elsewhere.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::AppState;

/// htmx (vendored; version and licence in `assets/README.md`).
const HTMX: &[u8] = include_bytes!("../../assets/htmx.min.js");
/// The stylesheet of every page.
const CSS: &[u8] = include_bytes!("../../assets/app.css");
/// The staff pages' script: live updates and small helpers.
const ADMIN_JS: &[u8] = include_bytes!("../../assets/admin.js");
/// The live socket of the staff pages and the customer's order page.
const LIVE_JS: &[u8] = include_bytes!("../../assets/live.js");
/// The customer pages' script: cart, checkout, order page.
const SHOP_JS: &[u8] = include_bytes!("../../assets/shop.js");
const TIMES_JS: &[u8] = include_bytes!("../../assets/times.js");

/// `/assets/…`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/assets/htmx.min.js", get(|| async { asset(HTMX, "text/javascript; charset=utf-8") }))
        .route("/assets/app.css", get(|| async { asset(CSS, "text/css; charset=utf-8") }))
        .route("/assets/admin.js", get(|| async { asset(ADMIN_JS, "text/javascript; charset=utf-8") }))
        .route("/assets/live.js", get(|| async { asset(LIVE_JS, "text/javascript; charset=utf-8") }))
        .route("/assets/shop.js", get(|| async { asset(SHOP_JS, "text/javascript; charset=utf-8") }))
        .route("/assets/times.js", get(|| async { asset(TIMES_JS, "text/javascript; charset=utf-8") }))
}

fn asset(body: &'static [u8], content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}
