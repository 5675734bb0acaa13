//! The signed-in staff member's own account: changing the password.

use std::net::SocketAddr;

use askama::Template;
use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use consign_db::users;
use serde::Deserialize;

use super::view::{self, Flash};
use super::{Chrome, PageError, Staff, render};
use crate::AppState;
use crate::auth::password;
use crate::error::AppError;
use crate::pages::PageForm;

/// The account routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/admin/account", get(page)).route("/admin/account/password", post(change_password))
}

#[derive(Template)]
#[template(path = "admin/account.html")]
struct AccountPage {
    chrome: Chrome,
}

/// `GET /admin/account`.
pub async fn page(staff: Staff) -> Result<Response, PageError> {
    render(&AccountPage { chrome: staff.chrome("account", "Your account") })
}

/// The password form.
#[derive(Deserialize)]
pub struct PasswordForm {
    current_password: String,
    new_password: String,
    confirm_password: String,
}

/// The rules of a new password, typed twice (here and on the reset page).
pub(super) fn check_new_password(new_password: &str, confirm_password: &str) -> Result<(), AppError> {
    if !(8..=256).contains(&new_password.chars().count()) {
        return Err(AppError::field("new_password", "must have 8 to 256 characters"));
    }
    if new_password != confirm_password {
        return Err(AppError::field("confirm_password", "is not the same as the new password"));
    }
    Ok(())
}

/// `POST /admin/account/password`: checks the current password (wrong
/// guesses count as failed logins, with the login's limits), sets the new
/// one and ends every session of the user, this one included.
pub async fn change_password(
    State(state): State<AppState>,
    staff: Staff,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    PageForm(form): PageForm<PasswordForm>,
) -> Result<Response, PageError> {
    let ip = crate::extract::client_ip(&state, &headers, peer);
    let result: Result<(), AppError> = async {
        state.limiter.check_login(ip, &staff.email).await?;
        let stored = users::credentials_by_email(&state.db, &staff.email).await?;
        let user_id = stored.as_ref().map(|c| c.id).ok_or(AppError::NotFound)?;
        let matches = password::verify(form.current_password.clone(), stored.map(|c| c.password_hash))
            .await
            .map_err(|error| AppError::Internal(error.into()))?;
        if !matches {
            state.limiter.record_login_failure(ip, &staff.email).await?;
            return Err(AppError::field("current_password", "is not your password"));
        }
        check_new_password(&form.new_password, &form.confirm_password)?;
        let hash = password::hash(form.new_password.clone()).await.map_err(|error| AppError::Internal(error.into()))?;
        users::set_password(&state.db, user_id, &hash).await?;
        Ok(())
    }
    .await;
    match result {
        Ok(()) => Ok(view::redirect_with(
            "/admin/login",
            Flash::notice("Password changed. Sign in with the new one; your other sessions have ended too."),
        )),
        Err(AppError::Internal(error)) => Err(PageError::Internal(error)),
        Err(error) => Ok(view::redirect_with("/admin/account", Flash::error(view::describe(&error)))),
    }
}
