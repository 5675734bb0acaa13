//! An organization's members, the use case shared by the API and the
//! pages: changing a member's role and removing a member, under the rule
//! that an organization always keeps at least one org admin. Storage
//! refuses the change that would break the rule; this says so in the words
//! both front ends show (a 409). The caller checks the policy
//! (`ManageOrganizationMembers`) first.

use consign_db::DbError;
use consign_db::Scope;
use consign_db::users::{self, LAST_ORG_ADMIN, OrgMember};
use consign_domain::roles::OrgRole;
use consign_domain::{OrganizationId, UserId};

use crate::AppState;
use crate::error::{AppError, AppResult};

/// Gives a member another role; refused (409) when it would leave the
/// organization without an org admin.
pub async fn change_member_role(
    state: &AppState,
    scope: &Scope,
    organization_id: OrganizationId,
    user_id: UserId,
    role: OrgRole,
) -> AppResult<OrgMember> {
    users::set_org_role(&state.db, scope, organization_id, user_id, role).await.map_err(last_admin_refusal)
}

/// Removes a member from the organization and its brands; refused (409)
/// for the last org admin.
pub async fn remove_member(
    state: &AppState,
    scope: &Scope,
    organization_id: OrganizationId,
    user_id: UserId,
) -> AppResult<()> {
    users::remove_org_member(&state.db, scope, organization_id, user_id).await.map_err(last_admin_refusal)
}

/// What a refused change to the last org admin answers. Only the last-admin
/// constraint gets these words: any other storage error keeps its usual
/// mapping.
fn last_admin_refusal(error: DbError) -> AppError {
    match error {
        DbError::Conflict { constraint } if constraint == LAST_ORG_ADMIN => AppError::Conflict(
            "An organization keeps at least one org admin: make someone else org admin first.".into(),
        ),
        other => other.into(),
    }
}
