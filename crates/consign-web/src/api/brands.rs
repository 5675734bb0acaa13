//! Brands, their members and their fulfilment partners.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use consign_db::brands::{self, Brand, BrandChanges, BrandMember, Fulfiller, NewBrand};
use consign_db::invitations::{self, Invitation, InvitedRole};
use consign_db::{DbError, Page};
use consign_domain::policy::Action;
use consign_domain::roles::BrandRole;
use consign_domain::text::{DisplayName, Slug};
use consign_domain::{BrandId, InvitationId, OrganizationId, UserId};
use garde::Validate;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::actions::invitations::{CreatedInvitation, invite};
use crate::error::{AppError, AppResult, Problem, text_rule};
use crate::extract::{AppJson, AppPath, AppQuery, Caller, IfMatch, PageQuery, etag};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_brand, list_brands))
        .routes(routes!(get_brand, update_brand))
        .routes(routes!(add_member, list_members))
        .routes(routes!(change_member, remove_member))
        .routes(routes!(list_invitations))
        .routes(routes!(revoke_invitation))
        .routes(routes!(add_fulfiller, list_fulfillers))
        .routes(routes!(remove_fulfiller))
}

fn is_currency(code: &str, _: &()) -> garde::Result {
    if consign_domain::money::is_currency_code(code) {
        Ok(())
    } else {
        Err(garde::Error::new("must be an ISO 4217 code such as USD"))
    }
}

/// `POST /brands`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
pub struct CreateBrand {
    /// Display name.
    #[garde(custom(text_rule::<DisplayName>))]
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// URL name, unique; stored lower-case (`Acme` becomes `acme`).
    #[garde(custom(text_rule::<Slug>))]
    #[schema(pattern = "^[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]$", min_length = 2, max_length = 64)]
    pub slug: String,
    /// ISO 4217 currency.
    #[garde(custom(is_currency))]
    #[schema(pattern = "^[A-Z]{3}$", example = "USD")]
    pub currency: String,
    /// The owning organization; may be left out by a member of exactly one.
    #[garde(skip)]
    pub organization_id: Option<OrganizationId>,
}

/// Creates a brand in the caller's organization (org admins only).
#[utoipa::path(post, path = "/brands", tag = "brands", request_body = CreateBrand,
    responses(
        (status = 201, description = "Created", body = Brand),
        (status = 403, description = "Not an org admin", body = Problem),
        (status = 409, description = "Slug taken", body = Problem),
        (status = 422, description = "Invalid fields", body = Problem),
    ),
    security(("bearer" = [])))]
async fn create_brand(
    State(state): State<AppState>,
    caller: Caller,
    AppJson(request): AppJson<CreateBrand>,
) -> AppResult<impl IntoResponse> {
    request.validate()?;
    let organization_id = caller.authorize_organization(Action::CreateBrand, request.organization_id)?;
    let name = DisplayName::parse(&request.name).map_err(AppError::invalid("name"))?;
    let slug = Slug::parse(&request.slug).map_err(AppError::invalid("slug"))?;
    let brand = brands::create(
        &state.db,
        caller.scope(),
        NewBrand { organization_id, name: name.as_str(), slug: slug.as_str(), currency: &request.currency },
    )
    .await
    .map_err(|e| match e {
        DbError::Conflict { .. } => AppError::Conflict("A brand with this slug already exists.".into()),
        other => other.into(),
    })?;
    Ok((StatusCode::CREATED, etag(brand.version), AppJson(brand)))
}

/// The brands the caller can see, newest first.
#[utoipa::path(get, path = "/brands", tag = "brands", params(PageQuery),
    responses((status = 200, description = "A page of brands", body = Page<Brand>)),
    security(("bearer" = [])))]
async fn list_brands(
    State(state): State<AppState>,
    caller: Caller,
    AppQuery(page): AppQuery<PageQuery>,
) -> AppResult<AppJson<Page<Brand>>> {
    Ok(AppJson(brands::list(&state.db, caller.scope(), &page.to_request()?).await?))
}

/// One brand.
#[utoipa::path(get, path = "/brands/{id}", tag = "brands", params(("id" = String, Path, description = "Brand id")),
    responses(
        (status = 200, description = "The brand; ETag carries its version", body = Brand),
        (status = 404, description = "No such brand", body = Problem),
    ),
    security(("bearer" = [])))]
async fn get_brand(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(brand_id): AppPath<BrandId>,
) -> AppResult<impl IntoResponse> {
    let brand = brands::get(&state.db, caller.scope(), brand_id).await?;
    Ok((etag(brand.version), AppJson(brand)))
}

/// `PATCH /brands/{id}`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
pub struct UpdateBrand {
    /// New name.
    #[garde(inner(custom(text_rule::<DisplayName>)))]
    pub name: Option<String>,
    /// New currency.
    #[garde(inner(custom(is_currency)))]
    pub currency: Option<String>,
    /// How long checkout holds stock for an unpaid order, 60 s to 7 days.
    #[garde(inner(range(min = 60, max = 604800)))]
    #[schema(minimum = 60, maximum = 604800)]
    pub reservation_ttl_seconds: Option<i64>,
    /// How long checkout holds stock for an order paid by bank transfer
    /// (`manual`), 60 s to 30 days; 3 days by default.
    #[garde(inner(range(min = 60, max = 2_592_000)))]
    #[schema(minimum = 60, maximum = 2592000)]
    pub manual_reservation_ttl_seconds: Option<i64>,
    /// What a customer paying by bank transfer needs (account holder,
    /// account or IBAN, bank), added to the payment instructions; `""`
    /// removes it. At most 1,000 characters.
    #[garde(inner(length(chars, max = 1000)))]
    #[schema(max_length = 1000)]
    pub bank_details: Option<String>,
}

/// Changes a brand. Send `If-Match: "<version>"` to refuse a stale write.
#[utoipa::path(patch, path = "/brands/{id}", tag = "brands", request_body = UpdateBrand,
    params(("id" = String, Path, description = "Brand id"),
           ("If-Match" = Option<String>, Header, description = "Expected version, quoted")),
    responses(
        (status = 200, description = "Changed", body = Brand),
        (status = 403, description = "Not a brand admin", body = Problem),
        (status = 404, description = "No such brand", body = Problem),
        (status = 412, description = "Version mismatch", body = Problem),
    ),
    security(("bearer" = [])))]
async fn update_brand(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(brand_id): AppPath<BrandId>,
    IfMatch(expected_version): IfMatch,
    AppJson(request): AppJson<UpdateBrand>,
) -> AppResult<impl IntoResponse> {
    caller.authorize_brand(Action::ManageBrand, brand_id)?;
    request.validate()?;
    let name = request.name.as_deref().map(DisplayName::parse).transpose().map_err(AppError::invalid("name"))?;
    let changes = BrandChanges {
        name: name.as_ref().map(DisplayName::as_str),
        currency: request.currency.as_deref(),
        reservation_ttl_seconds: request.reservation_ttl_seconds,
        manual_reservation_ttl_seconds: request.manual_reservation_ttl_seconds,
        bank_details: request.bank_details.as_deref(),
    };
    let brand = brands::update(&state.db, caller.scope(), brand_id, changes, expected_version).await?;
    Ok((etag(brand.version), AppJson(brand)))
}

/// `POST /brands/{id}/members`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct InviteBrandMember {
    /// The invitee's email.
    pub email: String,
    /// `brand_admin` or `brand_member`.
    pub role: BrandRole,
}

/// Invites someone to the brand. The answer is the same whether or not the
/// email has an account (an existing user accepts with its password); its
/// `token` is shown only now.
#[utoipa::path(post, path = "/brands/{id}/members", tag = "brands", request_body = InviteBrandMember,
    params(("id" = String, Path, description = "Brand id")),
    responses(
        (status = 201, description = "Invited; `token` is shown only now", body = CreatedInvitation),
        (status = 403, description = "Not a brand admin", body = Problem),
        (status = 404, description = "No such brand", body = Problem),
        (status = 422, description = "Invalid fields", body = Problem),
    ),
    security(("bearer" = [])))]
async fn add_member(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(brand_id): AppPath<BrandId>,
    AppJson(request): AppJson<InviteBrandMember>,
) -> AppResult<(StatusCode, AppJson<CreatedInvitation>)> {
    caller.authorize_brand(Action::ManageBrandMembers, brand_id)?;
    let brand = brands::get(&state.db, caller.scope(), brand_id).await?;
    let role = InvitedRole::Brand(brand_id, request.role);
    let created = invite(&state, caller.scope(), brand.organization_id, role, &request.email).await?;
    Ok((StatusCode::CREATED, AppJson(created)))
}

/// The brand's members, by user id.
#[utoipa::path(get, path = "/brands/{id}/members", tag = "brands",
    params(("id" = String, Path, description = "Brand id"), PageQuery),
    responses(
        (status = 200, description = "A page of members", body = Page<BrandMember>),
        (status = 404, description = "No such brand", body = Problem),
        (status = 422, description = "Invalid paging", body = Problem),
    ),
    security(("bearer" = [])))]
async fn list_members(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(brand_id): AppPath<BrandId>,
    AppQuery(page): AppQuery<PageQuery>,
) -> AppResult<AppJson<Page<BrandMember>>> {
    caller.authorize_brand(Action::ViewBrand, brand_id)?;
    let page = page.to_request()?;
    Ok(AppJson(brands::list_members_page(&state.db, caller.scope(), brand_id, &page).await?))
}

/// `PATCH /brands/{id}/members/{user_id}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChangeBrandMember {
    /// The new role: `brand_admin` or `brand_member`.
    pub role: BrandRole,
}

/// Changes a brand member's role; it takes effect at the member's next
/// request, and its live sockets are closed to reconnect with the new scope.
#[utoipa::path(patch, path = "/brands/{id}/members/{user_id}", tag = "brands", request_body = ChangeBrandMember,
    params(("id" = String, Path, description = "Brand id"), ("user_id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "Changed", body = BrandMember),
        (status = 403, description = "Not a brand admin", body = Problem),
        (status = 404, description = "No such brand or member", body = Problem),
        (status = 422, description = "Invalid fields", body = Problem),
    ),
    security(("bearer" = [])))]
async fn change_member(
    State(state): State<AppState>,
    caller: Caller,
    AppPath((brand_id, user_id)): AppPath<(BrandId, UserId)>,
    AppJson(request): AppJson<ChangeBrandMember>,
) -> AppResult<AppJson<BrandMember>> {
    caller.authorize_brand(Action::ManageBrandMembers, brand_id)?;
    Ok(AppJson(brands::set_member_role(&state.db, caller.scope(), brand_id, user_id, request.role).await?))
}

/// Removes a brand member. Its access ends at once: its sessions are
/// revoked when nothing else gives it access to the brand's organization,
/// and its live sockets are closed.
#[utoipa::path(delete, path = "/brands/{id}/members/{user_id}", tag = "brands",
    params(("id" = String, Path, description = "Brand id"), ("user_id" = String, Path, description = "User id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "Not a brand admin", body = Problem),
        (status = 404, description = "No such brand or member", body = Problem),
    ),
    security(("bearer" = [])))]
async fn remove_member(
    State(state): State<AppState>,
    caller: Caller,
    AppPath((brand_id, user_id)): AppPath<(BrandId, UserId)>,
) -> AppResult<StatusCode> {
    caller.authorize_brand(Action::ManageBrandMembers, brand_id)?;
    brands::remove_member(&state.db, caller.scope(), brand_id, user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The brand's pending invitations, newest first (brand admins).
#[utoipa::path(get, path = "/brands/{id}/invitations", tag = "brands",
    params(("id" = String, Path, description = "Brand id"), PageQuery),
    responses(
        (status = 200, description = "A page of pending invitations", body = Page<Invitation>),
        (status = 403, description = "Not a brand admin", body = Problem),
        (status = 404, description = "No such brand", body = Problem),
        (status = 422, description = "Invalid paging", body = Problem),
    ),
    security(("bearer" = [])))]
async fn list_invitations(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(brand_id): AppPath<BrandId>,
    AppQuery(page): AppQuery<PageQuery>,
) -> AppResult<AppJson<Page<Invitation>>> {
    caller.authorize_brand(Action::ManageBrandMembers, brand_id)?;
    let page = page.to_request()?;
    let brand = brands::get(&state.db, caller.scope(), brand_id).await?;
    Ok(AppJson(
        invitations::list_pending(&state.db, caller.scope(), brand.organization_id, Some(brand_id), &page).await?,
    ))
}

/// Withdraws a pending invitation to the brand; its token stops working.
#[utoipa::path(delete, path = "/brands/{id}/invitations/{invitation_id}", tag = "brands",
    params(("id" = String, Path, description = "Brand id"), ("invitation_id" = String, Path, description = "Invitation id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "Not a brand admin", body = Problem),
        (status = 404, description = "No such pending invitation", body = Problem),
    ),
    security(("bearer" = [])))]
async fn revoke_invitation(
    State(state): State<AppState>,
    caller: Caller,
    AppPath((brand_id, invitation_id)): AppPath<(BrandId, InvitationId)>,
) -> AppResult<StatusCode> {
    caller.authorize_brand(Action::ManageBrandMembers, brand_id)?;
    let invitation = invitations::get(&state.db, caller.scope(), invitation_id).await?;
    if invitation.brand_id != Some(brand_id) {
        return Err(AppError::NotFound);
    }
    invitations::revoke(&state.db, caller.scope(), invitation_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /brands/{id}/fulfillers`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AddFulfiller {
    /// The 3PL organization that will fulfil for the brand.
    pub organization_id: OrganizationId,
}

/// Lets a 3PL organization fulfil for the brand: its staff then see the
/// brand's orders, stock and messages.
#[utoipa::path(post, path = "/brands/{id}/fulfillers", tag = "brands", request_body = AddFulfiller,
    params(("id" = String, Path, description = "Brand id")),
    responses(
        (status = 204, description = "Linked"),
        (status = 403, description = "Not a brand admin", body = Problem),
        (status = 404, description = "No such brand or organization", body = Problem),
        (status = 422, description = "The organization is not a 3PL", body = Problem),
    ),
    security(("bearer" = [])))]
async fn add_fulfiller(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(brand_id): AppPath<BrandId>,
    AppJson(request): AppJson<AddFulfiller>,
) -> AppResult<StatusCode> {
    caller.authorize_brand(Action::ManageBrand, brand_id)?;
    brands::add_fulfiller(&state.db, caller.scope(), brand_id, request.organization_id).await.map_err(|e| match e {
        DbError::Conflict { .. } => AppError::field("organization_id", "is not a 3PL organization"),
        DbError::NotFound => AppError::field("organization_id", "no such organization"),
        other => other.into(),
    })?;
    Ok(StatusCode::NO_CONTENT)
}

/// The 3PL organizations that fulfil for the brand.
#[utoipa::path(get, path = "/brands/{id}/fulfillers", tag = "brands",
    params(("id" = String, Path, description = "Brand id"), PageQuery),
    responses(
        (status = 200, description = "A page of linked 3PLs", body = Page<Fulfiller>),
        (status = 404, description = "No such brand", body = Problem),
        (status = 422, description = "Invalid paging", body = Problem),
    ),
    security(("bearer" = [])))]
async fn list_fulfillers(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(brand_id): AppPath<BrandId>,
    AppQuery(page): AppQuery<PageQuery>,
) -> AppResult<AppJson<Page<Fulfiller>>> {
    caller.authorize_brand(Action::ViewBrand, brand_id)?;
    let page = page.to_request()?;
    Ok(AppJson(brands::list_fulfillers(&state.db, caller.scope(), brand_id, &page).await?))
}

/// Unlinks a 3PL: its staff stop seeing the brand's orders, stock and
/// messages at their next request, and their live sockets are closed.
#[utoipa::path(delete, path = "/brands/{id}/fulfillers/{organization_id}", tag = "brands",
    params(("id" = String, Path, description = "Brand id"),
           ("organization_id" = String, Path, description = "The 3PL organization")),
    responses(
        (status = 204, description = "Unlinked"),
        (status = 403, description = "Not a brand admin", body = Problem),
        (status = 404, description = "No such brand, or the organization is not linked", body = Problem),
    ),
    security(("bearer" = [])))]
async fn remove_fulfiller(
    State(state): State<AppState>,
    caller: Caller,
    AppPath((brand_id, organization_id)): AppPath<(BrandId, OrganizationId)>,
) -> AppResult<StatusCode> {
    caller.authorize_brand(Action::ManageBrand, brand_id)?;
    brands::remove_fulfiller(&state.db, caller.scope(), brand_id, organization_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
