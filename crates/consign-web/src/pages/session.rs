//! Staff page sessions and CSRF protection.
//!
//! The session cookie (`consign_session`, `HttpOnly`, `SameSite=Lax`,
//! `Path=/admin`, `Secure` when configured or behind a TLS proxy) holds 32
//! random bytes; the database keeps only their SHA-256 (`web_sessions`),
//! bound to a row of `sessions`, so logout and password resets end it.
//!
//! CSRF: each page session has a random synchronizer token. Every form
//! carries it as `_csrf`, htmx and scripts send it as `X-CSRF-Token`; this
//! middleware refuses any state-changing request under `/admin` without the
//! right one, before the handler runs. `SameSite=Lax` is a second line.
//! The login form, which has no session yet, uses a double-submit cookie
//! instead (see `login.rs`).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use consign_db::{DbError, Origin, sessions, users};
use consign_domain::Timestamp;

use super::view::{self, Flash};
use super::{PageError, Staff};
use crate::AppState;
use crate::auth::tokens;
use crate::extract::Caller;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "consign_session";
/// The form field that carries the CSRF token.
pub const CSRF_FIELD: &str = "_csrf";
/// The header that carries the CSRF token (htmx, scripts).
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The largest staff form accepted.
const FORM_LIMIT_BYTES: usize = 256 * 1024;

/// Whether cookies must be `Secure` for this request.
pub fn secure(state: &AppState, headers: &HeaderMap) -> bool {
    state.config.secure_cookies
        || (state.config.trust_forwarded_for
            && headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()) == Some("https"))
}

/// The `Set-Cookie` of a new session. The browser may keep it for the
/// session's maximum lifetime; the server ends it sooner when it idles.
pub fn session_cookie(state: &AppState, value: &str, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let max_age = state.config.session_max_lifetime_seconds;
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; Path=/admin; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"
    ))
    .expect("cookie is ASCII")
}

/// The `Set-Cookie` that removes the session cookie.
pub fn clear_session_cookie() -> HeaderValue {
    HeaderValue::from_static("consign_session=; Path=/admin; Max-Age=0; HttpOnly; SameSite=Lax")
}

/// Where the request came from, for the audit log.
fn origin(request: &Request) -> Origin {
    Origin {
        ip: request.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(peer)| peer.ip().to_string()),
        user_agent: request
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(512).collect()),
    }
}

/// The staff middleware: no live session → the login page; a
/// state-changing request without the session's CSRF token → 403; else the
/// [`Staff`] goes into the request for the handler.
pub async fn require_staff(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let origin = origin(&request);
    let staff = match load(&state, request.headers().clone(), origin).await {
        Ok(Some(staff)) => staff,
        Ok(None) => return to_login(&request),
        Err(error) => return error.into_response(),
    };
    let request = if is_safe(request.method()) {
        request
    } else {
        match check_csrf(request, &staff.csrf).await {
            Ok(request) => request,
            Err(response) => return response,
        }
    };
    let had_flash = staff.flash.is_some();
    let mut request = request;
    request.extensions_mut().insert(staff);
    let mut response = next.run(request).await;
    // The message was shown: remove it, unless this answer sets a new one.
    let sets_flash = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.starts_with(view::FLASH_COOKIE)));
    if had_flash && !sets_flash {
        response.headers_mut().append(header::SET_COOKIE, view::clear_flash());
    }
    response
}

async fn load(state: &AppState, headers: HeaderMap, origin: Origin) -> Result<Option<Staff>, PageError> {
    let Some(cookie) = view::cookie(&headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let cookie_hash = tokens::sha256_hex(&cookie);
    let Some(session) = sessions::page_session(&state.db, &cookie_hash).await? else {
        return Ok(None);
    };
    // Use keeps the session alive for another idle period, within its
    // maximum lifetime. Written at most every tenth of the idle time (and
    // at least once a minute), not on every request.
    let limits = state.config.session_limits();
    let extended = limits.expiry(session.created_at, Timestamp::now());
    let step = (limits.idle_seconds / 10).clamp(0, 60) * 1_000_000;
    if extended.as_micros() - session.expires_at.as_micros() > step {
        sessions::extend_page_session(&state.db, &cookie_hash, extended).await?;
    }
    let scope = match users::scope_for_session(&state.db, session.user_id, session.session_id).await {
        Ok(scope) => scope,
        Err(DbError::NotFound) => return Ok(None),
        Err(error) => return Err(error.into()),
    };
    Ok(Some(Staff {
        caller: Caller(Arc::new(scope.with_origin(origin))),
        csrf: session.csrf_token,
        email: session.email,
        name: session.name,
        flash: Flash::from_headers(&headers),
    }))
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// To the login page, coming back here afterwards when it was a page view.
fn to_login(request: &Request) -> Response {
    let target = if request.method() == Method::GET {
        let path = request.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/admin");
        format!("/admin/login?next={}", view::percent_encode(path))
    } else {
        "/admin/login".to_owned()
    };
    let mut response = Redirect::to(&target).into_response();
    // htmx follows redirects inside the page; ask it to load the login page.
    if request.headers().contains_key("hx-request")
        && let Ok(value) = HeaderValue::from_str(&target)
    {
        response.headers_mut().insert("hx-redirect", value);
    }
    response
}

/// Checks the CSRF token of a state-changing request: the header, or the
/// `_csrf` field of a URL-encoded form (the body is read and put back).
async fn check_csrf(request: Request, expected: &str) -> Result<Request, Response> {
    if let Some(sent) = request.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok()) {
        return if tokens::constant_time_eq(sent, expected) { Ok(request) } else { Err(csrf_refused()) };
    }
    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, FORM_LIMIT_BYTES)
        .await
        .map_err(|_| (StatusCode::PAYLOAD_TOO_LARGE, "The form is too large.").into_response())?;
    let sent = form_urlencoded_field(&bytes, CSRF_FIELD);
    match sent {
        Some(sent) if tokens::constant_time_eq(&sent, expected) => Ok(Request::from_parts(parts, Body::from(bytes))),
        _ => Err(csrf_refused()),
    }
}

/// One field of a URL-encoded body.
pub fn form_urlencoded_field(body: &[u8], name: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .and_then(|(_, value)| view::percent_decode(&value.replace('+', " ")))
}

fn csrf_refused() -> Response {
    let mut response = super::error_page(
        StatusCode::FORBIDDEN,
        "Form expired",
        "This form is out of date or came from another site. Reload the page and try again.",
    );
    *response.status_mut() = StatusCode::FORBIDDEN;
    response
}
