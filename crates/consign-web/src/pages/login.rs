//! Staff login and logout.
//!
//! The login form has no session yet, so its CSRF defence is a
//! double-submit token: a random value in a `SameSite=Strict` cookie scoped
//! to the form, repeated in a hidden field; a POST whose field does not match
//! its cookie is refused. Attempts go through the API's login rate limiter,
//! and the password check is the API's (`auth::password`).

use std::net::SocketAddr;

use askama::Template;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use consign_db::{sessions, users};
use consign_domain::Timestamp;
use serde::Deserialize;

use super::session::{self, SESSION_COOKIE};
use super::view::{self, Flash};
use super::{PageError, Staff, render};
use crate::AppState;
use crate::auth::{password, tokens};
use crate::error::AppError;
use crate::pages::PageForm;

const LOGIN_CSRF_COOKIE: &str = "consign_login_csrf";

#[derive(Template)]
#[template(path = "admin/login.html")]
struct LoginPage {
    csrf: String,
    next: String,
    email: String,
    flash: Option<Flash>,
    /// Whether new accounts may sign up here.
    signup: bool,
}

/// `?next=` after login.
#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// Only a path inside the admin app may be a `next`: never another site,
/// and only visible ASCII (a control character cannot go into the
/// `Location` header, and a path from our own links is percent-encoded).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with("/admin")
                && !path.contains("//")
                && !path.contains('\\')
                && path.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            path.to_owned()
        }
        _ => "/admin".to_owned(),
    }
}

/// `GET /admin/login`.
pub async fn form(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<NextQuery>,
) -> Result<Response, PageError> {
    show(&state, &headers, query.next.as_deref(), "", Flash::from_headers(&headers))
}

fn show(
    state: &AppState,
    headers: &HeaderMap,
    next: Option<&str>,
    email: &str,
    flash: Option<Flash>,
) -> Result<Response, PageError> {
    let csrf = tokens::random_hex(32);
    let page = LoginPage {
        csrf: csrf.clone(),
        next: safe_next(next),
        email: email.to_owned(),
        flash: flash.clone(),
        signup: state.config.allow_signup,
    };
    let mut response = render(&page)?;
    set_form_cookie(state, headers, &mut response, LOGIN_CSRF_COOKIE, "/admin/login", &csrf);
    if flash.is_some() {
        response.headers_mut().append(header::SET_COOKIE, view::clear_flash());
    }
    Ok(response)
}

/// Sets a form's double-submit CSRF cookie (`SameSite=Strict`, scoped to
/// the form's `path`), for the forms that have no session yet.
pub(super) fn set_form_cookie(
    state: &AppState,
    headers: &HeaderMap,
    response: &mut Response,
    name: &str,
    path: &str,
    value: &str,
) {
    let secure = if session::secure(state, headers) { "; Secure" } else { "" };
    let cookie = format!("{name}={value}; Path={path}; Max-Age=3600; HttpOnly; SameSite=Strict{secure}");
    response.headers_mut().append(header::SET_COOKIE, HeaderValue::from_str(&cookie).expect("ASCII cookie"));
}

/// Whether a form's CSRF field matches its double-submit cookie.
pub(super) fn form_cookie_matches(headers: &HeaderMap, name: &str, field: &str) -> bool {
    let cookie = view::cookie(headers, name).unwrap_or_default();
    !cookie.is_empty() && tokens::constant_time_eq(&cookie, field)
}

/// The login form.
#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    #[serde(rename = "_csrf")]
    csrf: String,
    next: Option<String>,
}

/// `POST /admin/login`.
pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    PageForm(form): PageForm<LoginForm>,
) -> Result<Response, PageError> {
    if !form_cookie_matches(&headers, LOGIN_CSRF_COOKIE, &form.csrf) {
        let mut response = show(
            &state,
            &headers,
            form.next.as_deref(),
            &form.email,
            Some(Flash::error("The form had expired. Please sign in again.")),
        )?;
        *response.status_mut() = axum::http::StatusCode::FORBIDDEN;
        return Ok(response);
    }
    let email = form.email.trim().to_lowercase();
    let ip = crate::extract::client_ip(&state, &headers, peer);
    if let Err(error) = state.limiter.check_login(ip, &email).await {
        let AppError::RateLimited { retry_after_seconds } = error else { return Err(error.into()) };
        let text = format!("Too many attempts. Try again in {retry_after_seconds} seconds.");
        let mut response = show(&state, &headers, form.next.as_deref(), &email, Some(Flash::error(text)))?;
        *response.status_mut() = axum::http::StatusCode::TOO_MANY_REQUESTS;
        return Ok(response);
    }
    let credentials = users::credentials_by_email(&state.db, &email).await?;
    let (user_id, stored) = match credentials {
        Some(c) => (Some(c.id), Some(c.password_hash)),
        None => (None, None),
    };
    let verified = password::verify(form.password, stored).await.map_err(AppError::from)?;
    let Some(user_id) = user_id.filter(|_| verified) else {
        state.limiter.record_login_failure(ip, &email).await?;
        let mut response =
            show(&state, &headers, form.next.as_deref(), &email, Some(Flash::error("Wrong email or password.")))?;
        *response.status_mut() = axum::http::StatusCode::UNAUTHORIZED;
        return Ok(response);
    };
    let mut response = enter(&state, &headers, user_id, &safe_next(form.next.as_deref())).await?;
    response.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_static("consign_login_csrf=; Path=/admin/login; Max-Age=0; HttpOnly; SameSite=Strict"),
    );
    Ok(response)
}

/// Signs `user_id` in: a new page session, and a redirect to `to` that
/// sets its cookie (after a login, or a signup in the pages).
pub(super) async fn enter(
    state: &AppState,
    headers: &HeaderMap,
    user_id: consign_domain::UserId,
    to: &str,
) -> Result<Response, PageError> {
    let cookie_value = tokens::random_hex(32);
    let now = Timestamp::now();
    let expires_at = state.config.session_limits().expiry(now, now);
    sessions::start_page_session(
        &state.db,
        user_id,
        &tokens::sha256_hex(&cookie_value),
        &tokens::random_hex(32),
        expires_at,
    )
    .await?;
    let mut response = Redirect::to(to).into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, session::session_cookie(state, &cookie_value, session::secure(state, headers)));
    Ok(response)
}

/// `POST /admin/logout`: ends the page session and its auth session.
pub async fn logout(State(state): State<AppState>, headers: HeaderMap, _staff: Staff) -> Result<Response, PageError> {
    if let Some(cookie) = view::cookie(&headers, SESSION_COOKIE) {
        sessions::end_page_session(&state.db, &tokens::sha256_hex(&cookie)).await?;
    }
    let mut response = view::redirect_with("/admin/login", Flash::notice("You are signed out."));
    response.headers_mut().append(header::SET_COOKIE, session::clear_session_cookie());
    Ok(response)
}
