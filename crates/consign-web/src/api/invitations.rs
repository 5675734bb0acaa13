//! Invitations: how someone joins an organization or a brand.
//!
//! `POST /organizations/{id}/members` and `POST /brands/{id}/members` make
//! one (see [`invite`]); the answer carries the one-time token, shown only
//! then, for the admin to pass on. Whether a user with the email exists is
//! never revealed: both cases answer alike. The invitee accepts with
//! `POST /invitations/{token}/accept`: a new user chooses its name and
//! password; an existing one proves it is that user with its password.

use axum::extract::State;
use axum::http::StatusCode;
use consign_db::invitations::{self, Invitation, InvitedRole, Invitee, NewInvitation};
use consign_db::users::{self, User};
use consign_db::{DbError, Scope};
use consign_domain::OrganizationId;
use garde::Validate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::{password, tokens};
use crate::error::{AppError, AppResult, Problem};
use crate::extract::{AppJson, AppPath};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(accept))
}

/// The prefix of invitation tokens.
pub const INVITATION_TOKEN_PREFIX: &str = "cin_";

/// A new invitation with its token, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedInvitation {
    /// The invitation as listed.
    #[serde(flatten)]
    pub invitation: Invitation,
    /// The one-time token (`cin_…`): pass it to the invitee, who accepts
    /// with `POST /invitations/{token}/accept`. It cannot be shown again.
    pub token: String,
}

/// Checks an invited email: what a person would type, lowercased.
pub fn invited_email(email: &str) -> AppResult<String> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        })
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid { Ok(email) } else { Err(AppError::field("email", "must be an email address")) }
}

/// Records an invitation (the caller has checked the policy) and returns it
/// with its token. The answer is the same whether or not a user has the
/// email, so inviting cannot be used to find out who has an account.
pub async fn invite(
    state: &AppState,
    scope: &Scope,
    organization_id: OrganizationId,
    role: InvitedRole,
    email: &str,
) -> AppResult<CreatedInvitation> {
    let email = invited_email(email)?;
    let token = format!("{INVITATION_TOKEN_PREFIX}{}", tokens::random_hex(32));
    let invitation = invitations::create(
        &state.db,
        scope,
        NewInvitation { organization_id, role, email: &email, token_hash: &tokens::sha256_hex(&token) },
    )
    .await?;
    Ok(CreatedInvitation { invitation, token })
}

/// `POST /invitations/{token}/accept`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
pub struct AcceptInvitation {
    /// For a new account: its display name. Ignored for an existing one.
    #[garde(inner(length(chars, min = 1, max = 200)))]
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    /// For a new account: its password (8 to 256 characters). For an
    /// existing account: its current password, to prove it is yours.
    #[garde(length(chars, min = 1, max = 256))]
    #[schema(min_length = 1, max_length = 256)]
    pub password: String,
}

/// An accepted invitation.
#[derive(Debug, Serialize, ToSchema)]
pub struct AcceptedInvitation {
    /// The user who joined (created now, or the existing account).
    pub user: User,
    /// The invitation, now `accepted`.
    pub invitation: Invitation,
}

/// Accepts an invitation: creates the account if the email has none, and
/// the membership. Log in afterwards with the email and password.
#[utoipa::path(post, path = "/invitations/{token}/accept", tag = "invitations", request_body = AcceptInvitation,
    params(("token" = String, Path, description = "The invitation token, `cin_…`")),
    responses(
        (status = 201, description = "Joined", body = AcceptedInvitation),
        (status = 401, description = "The email has an account and this is not its password", body = Problem),
        (status = 404, description = "Unknown, used, revoked or expired invitation", body = Problem),
        (status = 409, description = "An account with the email was created meanwhile; accept with its password", body = Problem),
        (status = 422, description = "Invalid fields", body = Problem),
    ))]
async fn accept(
    State(state): State<AppState>,
    AppPath(token): AppPath<String>,
    AppJson(request): AppJson<AcceptInvitation>,
) -> AppResult<(StatusCode, AppJson<AcceptedInvitation>)> {
    request.validate()?;
    let (user, invitation) = accept_invitation(&state, &token, request.name.as_deref(), request.password).await?;
    Ok((StatusCode::CREATED, AppJson(AcceptedInvitation { user, invitation })))
}

/// Whether the account an invitation is for exists already (the invitee
/// then accepts with its password instead of choosing a name and one).
pub async fn invitee_has_account(state: &AppState, invitation: &Invitation) -> AppResult<bool> {
    Ok(users::get_by_email(&state.db, &invitation.email).await?.is_some())
}

/// Accepts the invitation a token names, for the API and the page alike.
pub async fn accept_invitation(
    state: &AppState,
    token: &str,
    name: Option<&str>,
    password: String,
) -> AppResult<(User, Invitation)> {
    let token_hash = tokens::sha256_hex(token.trim());
    let invitation = invitations::pending_by_token(&state.db, &token_hash).await?.ok_or(AppError::NotFound)?;
    let password_hash;
    let invitee = match users::credentials_by_email(&state.db, &invitation.email).await? {
        Some(credentials) => {
            if !password::verify(password, Some(credentials.password_hash)).await? {
                return Err(AppError::Unauthenticated(
                    "This email has an account: send its current password to accept.",
                ));
            }
            Invitee::Existing(credentials.id)
        }
        None => {
            let name = name.map(str::trim).filter(|n| !n.is_empty());
            let Some(name) = name else {
                return Err(AppError::field("name", "is required to create your account"));
            };
            if name.chars().count() > 200 {
                return Err(AppError::field("name", "must be 1 to 200 characters"));
            }
            if !(8..=256).contains(&password.chars().count()) {
                return Err(AppError::field("password", "must be 8 to 256 characters"));
            }
            password_hash = password::hash(password).await?;
            Invitee::New { name, password_hash: &password_hash }
        }
    };
    invitations::accept(&state.db, &token_hash, invitee).await.map_err(|e| match e {
        DbError::Conflict { .. } => AppError::Conflict(
            "An account with this email was created meanwhile: accept again with its password.".into(),
        ),
        other => other.into(),
    })
}
