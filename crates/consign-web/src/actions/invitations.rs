//! Invitations, the use case shared by the API and the pages: making one
//! (the token is shown once, and the answer is the same whether or not the
//! email has an account), and accepting one (a new user chooses a name and
//! a password; an existing one proves it is that user with its password).
//! `api::organizations`, `api::brands` and `api::invitations` answer with
//! it in JSON; `pages::settings` and `pages::invitation` in pages.

use consign_app::account_tokens;
use consign_db::invitations::{self, Invitation, InvitedRole, Invitee, NewInvitation};
use consign_db::users::{self, User};
use consign_db::{DbError, Scope};
use consign_domain::text::DisplayName;
use consign_domain::{InvitationId, OrganizationId};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::{password, tokens};
use crate::error::{AppError, AppResult};

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
/// with its token, which is also emailed to the invitee when this
/// installation sends email (`consign_jobs::accounts`). The answer is the same whether or not a user has the
/// email, so inviting cannot be used to find out who has an account.
pub async fn invite(
    state: &AppState,
    scope: &Scope,
    organization_id: OrganizationId,
    role: InvitedRole,
    email: &str,
) -> AppResult<CreatedInvitation> {
    let email = invited_email(email)?;
    let id = InvitationId::new();
    let key = state.instance_secret(account_tokens::ACCOUNT_TOKEN_KEY_SECRET).await?;
    let token = account_tokens::invitation_token(&key, &id.to_string());
    let invitation = invitations::create(
        &state.db,
        scope,
        NewInvitation { id, organization_id, role, email: &email, token_hash: &tokens::sha256_hex(&token) },
    )
    .await?;
    Ok(CreatedInvitation { invitation, token })
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
    let (name_given, password_hash);
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
            let Some(name) = name.filter(|n| !n.trim().is_empty()) else {
                return Err(AppError::field("name", "is required to create your account"));
            };
            name_given = DisplayName::parse(name).map_err(AppError::invalid("name"))?;
            if !(8..=256).contains(&password.chars().count()) {
                return Err(AppError::field("password", "must be 8 to 256 characters"));
            }
            password_hash = password::hash(password).await?;
            Invitee::New { name: name_given.as_str(), password_hash: &password_hash }
        }
    };
    invitations::accept(&state.db, &token_hash, invitee).await.map_err(|e| match e {
        DbError::Conflict { .. } => AppError::Conflict(
            "An account with this email was created meanwhile: accept again with its password.".into(),
        ),
        other => other.into(),
    })
}
