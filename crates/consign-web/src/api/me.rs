//! `GET /me`: the caller and what it belongs to.

use axum::extract::State;
use consign_db::users::{self, Organization, User};
use consign_domain::BrandId;
use consign_domain::roles::OrgRole;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{AppError, AppResult, Problem};
use crate::extract::{AppJson, Caller};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(me))
}

/// An organization membership.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizationMembership {
    /// The organization.
    pub organization: Organization,
    /// The user's role there.
    pub role: OrgRole,
}

/// A brand the user can see, and how.
#[derive(Debug, Serialize, ToSchema)]
pub struct BrandAccessView {
    /// The brand.
    pub brand_id: BrandId,
    /// `admin`, `member` or `fulfiller`.
    pub access: String,
}

/// The caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeResponse {
    /// The user.
    pub user: User,
    /// Organizations it belongs to.
    pub memberships: Vec<OrganizationMembership>,
    /// Brands it can see.
    pub brands: Vec<BrandAccessView>,
}

/// The signed-in user with its memberships.
#[utoipa::path(get, path = "/me", tag = "auth",
    responses(
        (status = 200, description = "The caller", body = MeResponse),
        (status = 401, description = "Not signed in", body = Problem),
    ),
    security(("bearer" = [])))]
async fn me(State(state): State<AppState>, caller: Caller) -> AppResult<AppJson<MeResponse>> {
    let user_id =
        caller.scope().user_id().ok_or(AppError::Unauthenticated("/me is for users; an API key has no user."))?;
    let user = users::get(&state.db, user_id).await?;
    let memberships = users::organizations_of(&state.db, user_id)
        .await?
        .into_iter()
        .map(|(organization, role)| OrganizationMembership { organization, role })
        .collect();
    let brands = caller
        .scope()
        .grants()
        .brands
        .iter()
        .map(|grant| BrandAccessView { brand_id: grant.brand_id, access: format!("{:?}", grant.access).to_lowercase() })
        .collect();
    Ok(AppJson(MeResponse { user, memberships, brands }))
}
