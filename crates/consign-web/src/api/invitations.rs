//! Invitations: how someone joins an organization or a brand.
//!
//! `POST /organizations/{id}/members` and `POST /brands/{id}/members` make
//! one (see [`crate::actions::invitations::invite`]); the answer carries the one-time token, shown only
//! then, for the admin to pass on. Whether a user with the email exists is
//! never revealed: both cases answer alike. The invitee accepts with
//! `POST /invitations/{token}/accept`: a new user chooses its name and
//! password; an existing one proves it is that user with its password.
//! Inviting and accepting are use cases the pages share, in
//! `actions::invitations`; this module is their JSON face.

use axum::extract::State;
use axum::http::StatusCode;
use consign_db::invitations::Invitation;
use consign_db::users::User;
use consign_domain::text::DisplayName;
use garde::Validate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::actions::invitations::accept_invitation;
use crate::error::{AppResult, Problem, text_rule};
use crate::extract::{AppJson, AppPath};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(accept))
}

/// `POST /invitations/{token}/accept`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
pub struct AcceptInvitation {
    /// For a new account: its display name. Ignored for an existing one.
    #[garde(inner(custom(text_rule::<DisplayName>)))]
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
