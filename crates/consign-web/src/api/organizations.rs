//! An organization's members and invitations. Any member may list the
//! members; only org admins invite, change roles and remove, and an
//! organization always keeps at least one org admin (409 otherwise).

use axum::extract::State;
use axum::http::StatusCode;
use consign_db::Page;
use consign_db::invitations::{self, Invitation, InvitedRole};
use consign_db::users::{self, OrgMember};
use consign_domain::policy::Action;
use consign_domain::roles::OrgRole;
use consign_domain::{InvitationId, OrganizationId, UserId};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::actions::invitations::{CreatedInvitation, invite};
use crate::actions::organizations;
use crate::error::{AppError, AppResult, Problem};
use crate::extract::{AppJson, AppPath, AppQuery, Caller, PageQuery};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_members, invite_member))
        .routes(routes!(change_member, remove_member))
        .routes(routes!(list_invitations))
        .routes(routes!(revoke_invitation))
}

/// The organization's members, by user id.
#[utoipa::path(get, path = "/organizations/{id}/members", tag = "organizations",
    params(("id" = String, Path, description = "Organization id"), PageQuery),
    responses(
        (status = 200, description = "A page of members", body = Page<OrgMember>),
        (status = 404, description = "No such organization, or not yours", body = Problem),
        (status = 422, description = "Invalid paging", body = Problem),
    ),
    security(("bearer" = [])))]
async fn list_members(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(organization_id): AppPath<OrganizationId>,
    AppQuery(page): AppQuery<PageQuery>,
) -> AppResult<AppJson<Page<OrgMember>>> {
    caller.authorize_organization(Action::ViewOrganizationMembers, Some(organization_id))?;
    let page = page.to_request()?;
    Ok(AppJson(users::list_org_members(&state.db, caller.scope(), organization_id, &page).await?))
}

/// `POST /organizations/{id}/members`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct InviteOrgMember {
    /// The invitee's email.
    pub email: String,
    /// `org_admin` or `org_member`.
    pub role: OrgRole,
}

/// Invites someone to the organization. The answer is the same whether or
/// not the email has an account; its `token` is shown only now.
#[utoipa::path(post, path = "/organizations/{id}/members", tag = "organizations", request_body = InviteOrgMember,
    params(("id" = String, Path, description = "Organization id")),
    responses(
        (status = 201, description = "Invited; `token` is shown only now", body = CreatedInvitation),
        (status = 403, description = "Not an org admin", body = Problem),
        (status = 404, description = "No such organization, or not yours", body = Problem),
        (status = 422, description = "Invalid fields", body = Problem),
    ),
    security(("bearer" = [])))]
async fn invite_member(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(organization_id): AppPath<OrganizationId>,
    AppJson(request): AppJson<InviteOrgMember>,
) -> AppResult<(StatusCode, AppJson<CreatedInvitation>)> {
    caller.authorize_organization(Action::ManageOrganizationMembers, Some(organization_id))?;
    let created =
        invite(&state, caller.scope(), organization_id, InvitedRole::Organization(request.role), &request.email)
            .await?;
    Ok((StatusCode::CREATED, AppJson(created)))
}

/// `PATCH /organizations/{id}/members/{user_id}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChangeOrgMember {
    /// The new role: `org_admin` or `org_member`.
    pub role: OrgRole,
}

/// Changes a member's role; it takes effect at the member's next request,
/// and its live sockets are closed to reconnect with the new scope.
#[utoipa::path(patch, path = "/organizations/{id}/members/{user_id}", tag = "organizations",
    request_body = ChangeOrgMember,
    params(("id" = String, Path, description = "Organization id"), ("user_id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "Changed", body = OrgMember),
        (status = 403, description = "Not an org admin", body = Problem),
        (status = 404, description = "No such organization or member", body = Problem),
        (status = 409, description = "It would leave the organization without an org admin", body = Problem),
        (status = 422, description = "Invalid fields", body = Problem),
    ),
    security(("bearer" = [])))]
async fn change_member(
    State(state): State<AppState>,
    caller: Caller,
    AppPath((organization_id, user_id)): AppPath<(OrganizationId, UserId)>,
    AppJson(request): AppJson<ChangeOrgMember>,
) -> AppResult<AppJson<OrgMember>> {
    caller.authorize_organization(Action::ManageOrganizationMembers, Some(organization_id))?;
    let member =
        organizations::change_member_role(&state, caller.scope(), organization_id, user_id, request.role).await?;
    Ok(AppJson(member))
}

/// Removes a member from the organization and from its brands. Its access
/// ends at once: its sessions are revoked when nothing else gives it access
/// to the organization, and its live sockets are closed.
#[utoipa::path(delete, path = "/organizations/{id}/members/{user_id}", tag = "organizations",
    params(("id" = String, Path, description = "Organization id"), ("user_id" = String, Path, description = "User id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "Not an org admin", body = Problem),
        (status = 404, description = "No such organization or member", body = Problem),
        (status = 409, description = "The last org admin cannot be removed", body = Problem),
    ),
    security(("bearer" = [])))]
async fn remove_member(
    State(state): State<AppState>,
    caller: Caller,
    AppPath((organization_id, user_id)): AppPath<(OrganizationId, UserId)>,
) -> AppResult<StatusCode> {
    caller.authorize_organization(Action::ManageOrganizationMembers, Some(organization_id))?;
    organizations::remove_member(&state, caller.scope(), organization_id, user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The organization's pending invitations, newest first (org admins).
#[utoipa::path(get, path = "/organizations/{id}/invitations", tag = "organizations",
    params(("id" = String, Path, description = "Organization id"), PageQuery),
    responses(
        (status = 200, description = "A page of pending invitations", body = Page<Invitation>),
        (status = 403, description = "Not an org admin", body = Problem),
        (status = 404, description = "No such organization, or not yours", body = Problem),
        (status = 422, description = "Invalid paging", body = Problem),
    ),
    security(("bearer" = [])))]
async fn list_invitations(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(organization_id): AppPath<OrganizationId>,
    AppQuery(page): AppQuery<PageQuery>,
) -> AppResult<AppJson<Page<Invitation>>> {
    caller.authorize_organization(Action::ManageOrganizationMembers, Some(organization_id))?;
    let page = page.to_request()?;
    Ok(AppJson(invitations::list_pending(&state.db, caller.scope(), organization_id, None, &page).await?))
}

/// Withdraws a pending invitation to the organization; its token stops
/// working.
#[utoipa::path(delete, path = "/organizations/{id}/invitations/{invitation_id}", tag = "organizations",
    params(("id" = String, Path, description = "Organization id"),
           ("invitation_id" = String, Path, description = "Invitation id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "Not an org admin", body = Problem),
        (status = 404, description = "No such pending invitation", body = Problem),
    ),
    security(("bearer" = [])))]
async fn revoke_invitation(
    State(state): State<AppState>,
    caller: Caller,
    AppPath((organization_id, invitation_id)): AppPath<(OrganizationId, InvitationId)>,
) -> AppResult<StatusCode> {
    caller.authorize_organization(Action::ManageOrganizationMembers, Some(organization_id))?;
    let invitation = invitations::get(&state.db, caller.scope(), invitation_id).await?;
    if invitation.organization_id != organization_id || invitation.brand_id.is_some() {
        return Err(AppError::NotFound);
    }
    invitations::revoke(&state.db, caller.scope(), invitation_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
