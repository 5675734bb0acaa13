//! The page an invitation link opens: `/admin/invitations/{token}`. A new
//! user chooses a name and a password; someone with an account enters its
//! password. Accepting is the use case the API shares
//! (`actions::invitations::accept_invitation`), and then the login page
//! opens. The page is public: the token in its path is the credential and,
//! as on the customer's message form, also the form's CSRF defence, since
//! another site cannot know it.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::view::{self, Flash};
use super::{PageError, render};
use crate::AppState;
use crate::actions::invitations::{accept_invitation, invitee_has_account};
use crate::auth::tokens;
use crate::error::AppError;
use crate::pages::PageForm;

#[derive(Template)]
#[template(path = "admin/invitation.html")]
struct InvitationPage {
    token: String,
    email: String,
    joining: String,
    role: String,
    has_account: bool,
    name: String,
    flash: Option<Flash>,
}

async fn show(state: &AppState, token: &str, name: &str, flash: Option<Flash>) -> Result<Response, PageError> {
    let token_hash = tokens::sha256_hex(token.trim());
    let Some(invitation) = consign_db::invitations::pending_by_token(&state.db, &token_hash).await? else {
        return Err(PageError::Refused(
            "This invitation link is not valid any more: it was used, revoked or has expired. Ask for a new one."
                .into(),
        ));
    };
    let joining = match invitation.brand_id {
        Some(_) => "a brand",
        None => "an organization",
    };
    render(&InvitationPage {
        has_account: invitee_has_account(state, &invitation).await?,
        token: token.to_owned(),
        joining: joining.to_owned(),
        role: view::words(&invitation.role).to_lowercase(),
        email: invitation.email,
        name: name.to_owned(),
        flash,
    })
}

/// `GET /admin/invitations/{token}`.
pub async fn form(State(state): State<AppState>, Path(token): Path<String>) -> Result<Response, PageError> {
    show(&state, &token, "", None).await
}

/// The acceptance form.
#[derive(Deserialize)]
pub struct AcceptForm {
    name: Option<String>,
    password: String,
}

/// `POST /admin/invitations/{token}`: accepts, then opens the login page;
/// a refusal shows the form again, with the name as typed.
pub async fn submit(
    State(state): State<AppState>,
    Path(token): Path<String>,
    PageForm(form): PageForm<AcceptForm>,
) -> Result<Response, PageError> {
    match accept_invitation(&state, &token, form.name.as_deref(), form.password).await {
        Ok((user, _)) => Ok(view::redirect_with(
            "/admin/login",
            Flash::notice(format!("Welcome, {}: you joined. Sign in with {}.", user.name, user.email)),
        )),
        Err(AppError::NotFound) => show(&state, &token, "", None).await,
        Err(AppError::Internal(error)) => Err(PageError::Internal(error)),
        Err(error) => {
            let flash = Flash::error(match &error {
                AppError::Unauthenticated(_) => "That is not the password of this account.".to_owned(),
                other => view::describe(other),
            });
            let mut response = show(&state, &token, form.name.as_deref().unwrap_or_default(), Some(flash)).await?;
            *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(response)
        }
    }
}
