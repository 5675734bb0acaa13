//! A forgotten password: `/admin/forgot-password` asks for the email and,
//! when an account uses it, has a reset link emailed to it
//! (`consign_jobs::accounts`); `/admin/reset-password/{token}` sets the new
//! password. The link (`consign_app::account_tokens`) works once, for an
//! hour, and is bound to the password it replaces, so a password change of
//! any kind spends it. Setting the password ends every session of the user.
//!
//! The request answers the same whether or not an account has the email,
//! and is limited per IP (the login's limit) and per email (a few an hour,
//! past which nothing more is sent, silently); opening or sending a reset
//! link counts against the same per-IP limit. Like the invitation page,
//! the reset page is public: the token in its path is the credential and
//! the form's CSRF defence. Without email (or a public address to link
//! to), the page says who can reset a password instead.

use std::net::SocketAddr;

use askama::Template;
use axum::Router;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use consign_app::account_tokens;
use consign_db::jobs::{self, kinds::EmailPasswordReset};
use consign_db::users::{self, ResetSubject};
use consign_domain::{Timestamp, UserId};
use serde::Deserialize;

use super::view::{self, Flash};
use super::{PageError, render};
use crate::AppState;
use crate::auth::password;
use crate::auth::rate_limit::{Bucket, ip_key};
use crate::error::AppError;
use crate::pages::PageForm;

/// The forgotten-password routes (public).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/forgot-password", get(request_form).post(request))
        .route("/admin/reset-password/{token}", get(reset_form).post(reset))
}

/// Whether reset links can be emailed from this installation.
fn can_email(state: &AppState) -> bool {
    state.config.channels.email.is_some() && state.config.channels.public_base_url.is_some()
}

#[derive(Template)]
#[template(path = "admin/forgot_password.html")]
struct RequestPage {
    can_email: bool,
    sent: bool,
    flash: Option<Flash>,
}

/// `?sent=1` after a request.
#[derive(Deserialize)]
pub struct SentQuery {
    sent: Option<String>,
}

/// `GET /admin/forgot-password`.
pub async fn request_form(
    State(state): State<AppState>,
    Query(query): Query<SentQuery>,
) -> Result<Response, PageError> {
    render(&RequestPage { can_email: can_email(&state), sent: view::filled(&query.sent).is_some(), flash: None })
}

/// The request form.
#[derive(Deserialize)]
pub struct RequestForm {
    email: String,
}

/// `POST /admin/forgot-password`: queues the email when an account has the
/// address, then says the same thing either way.
pub async fn request(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    PageForm(form): PageForm<RequestForm>,
) -> Result<Response, PageError> {
    if !can_email(&state) {
        return Err(PageError::NotFound);
    }
    let ip = crate::extract::client_ip(&state, &headers, peer);
    state.limiter.check(Bucket::PasswordResetFromIp, &ip_key(ip)).await?;
    let email = form.email.trim().to_lowercase();
    if !email.contains('@') || email.len() > 254 {
        let flash = Some(Flash::error("Give the email address you sign in with."));
        let mut response = render(&RequestPage { can_email: true, sent: false, flash })?;
        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
        return Ok(response);
    }
    // Past its limit an address gets nothing more, and the answer does not
    // change: a 429 here would tell that the account exists.
    let within_limit = match state.limiter.check(Bucket::PasswordResetForAccount, &email).await {
        Ok(()) => true,
        Err(AppError::RateLimited { .. }) => false,
        Err(error) => return Err(error.into()),
    };
    if within_limit && let Some(user) = users::get_by_email(&state.db, &email).await? {
        let expires_at = Timestamp::now().as_micros() / 1_000_000 + account_tokens::PASSWORD_RESET_TTL_SECONDS;
        jobs::enqueue_kind(&state.db, &EmailPasswordReset { user_id: user.id, expires_at }).await?;
    }
    Ok(Redirect::to("/admin/forgot-password?sent=1").into_response())
}

#[derive(Template)]
#[template(path = "admin/reset_password.html")]
struct ResetPage {
    token: String,
    email: String,
    flash: Option<Flash>,
}

/// The user a reset token is a valid, unspent link of; else a refusal that
/// says what to do. Every try counts against the IP's reset budget.
async fn subject_of(state: &AppState, ip: std::net::IpAddr, token: &str) -> Result<ResetSubject, PageError> {
    state.limiter.check(Bucket::PasswordResetFromIp, &ip_key(ip)).await?;
    let refused = || {
        PageError::Refused(
            "This password reset link is not valid any more: it was used, or it expired. Ask for a new one.".into(),
        )
    };
    let (user_id, _) = account_tokens::password_reset_claims(token).ok_or_else(refused)?;
    let user_id: UserId = user_id.parse().map_err(|_| refused())?;
    let user = users::reset_subject(&state.db, user_id).await?.ok_or_else(refused)?;
    let key = state.instance_secret(account_tokens::ACCOUNT_TOKEN_KEY_SECRET).await?;
    let now = Timestamp::now().as_micros() / 1_000_000;
    if account_tokens::password_reset_valid(&key, token, &user.password_hash, now) { Ok(user) } else { Err(refused()) }
}

/// `GET /admin/reset-password/{token}`.
pub async fn reset_form(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Result<Response, PageError> {
    let user = subject_of(&state, crate::extract::client_ip(&state, &headers, peer), &token).await?;
    render(&ResetPage { token, email: user.email, flash: None })
}

/// The new password form.
#[derive(Deserialize)]
pub struct ResetForm {
    new_password: String,
    confirm_password: String,
}

/// `POST /admin/reset-password/{token}`: sets the password (once, even for
/// two racing requests) and opens the login page; a refusal shows the form
/// again.
pub async fn reset(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(token): Path<String>,
    PageForm(form): PageForm<ResetForm>,
) -> Result<Response, PageError> {
    let user = subject_of(&state, crate::extract::client_ip(&state, &headers, peer), &token).await?;
    if let Err(error) = super::account::check_new_password(&form.new_password, &form.confirm_password) {
        let flash = Some(Flash::error(view::describe(&error)));
        let mut response = render(&ResetPage { token, email: user.email, flash })?;
        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
        return Ok(response);
    }
    let hash = password::hash(form.new_password).await.map_err(|error| PageError::Internal(error.into()))?;
    if !users::replace_password(&state.db, user.id, Some(&user.password_hash), &hash).await? {
        return Err(PageError::Refused(
            "This password reset link was just used. Ask for a new one if you need it.".into(),
        ));
    }
    Ok(view::redirect_with(
        "/admin/login",
        Flash::notice(format!("Password changed. Sign in as {} with the new one.", user.email)),
    ))
}
