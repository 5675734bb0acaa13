//! Brands, their members and their fulfilment partners.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use consign_db::brands::{self, Brand, BrandChanges, BrandMember, NewBrand};
use consign_db::{DbError, Page, users};
use consign_domain::policy::Action;
use consign_domain::roles::BrandRole;
use consign_domain::{BrandId, OrganizationId};
use garde::Validate;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::password;
use crate::error::{AppError, AppResult, Problem};
use crate::extract::{AppJson, AppPath, AppQuery, Caller, IfMatch, PageQuery, etag};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_brand, list_brands))
        .routes(routes!(get_brand, update_brand))
        .routes(routes!(add_member, list_members))
        .routes(routes!(add_fulfiller))
}

fn is_currency(code: &str, _: &()) -> garde::Result {
    if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(garde::Error::new("must be an ISO 4217 code such as USD"))
    }
}

/// Any case is accepted: a slug is an identifier in URLs, stored and looked
/// up lower-case.
fn is_slug(slug: &str, _: &()) -> garde::Result {
    let valid = (2..=64).contains(&slug.len())
        && slug.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !slug.starts_with('-')
        && !slug.ends_with('-');
    if valid { Ok(()) } else { Err(garde::Error::new("must be 2 to 64 letters, digits or inner hyphens")) }
}

/// `POST /brands`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
pub struct CreateBrand {
    /// Display name.
    #[garde(length(chars, min = 1, max = 200))]
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// URL name, unique; stored lower-case (`Acme` becomes `acme`).
    #[garde(custom(is_slug))]
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
    let brand = brands::create(
        &state.db,
        caller.scope(),
        NewBrand {
            organization_id,
            name: request.name.trim(),
            slug: &request.slug.to_ascii_lowercase(),
            currency: &request.currency,
        },
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
    #[garde(inner(length(chars, min = 1, max = 200)))]
    pub name: Option<String>,
    /// New currency.
    #[garde(inner(custom(is_currency)))]
    pub currency: Option<String>,
    /// How long checkout holds stock for an unpaid order, 60 s to 7 days.
    #[garde(inner(range(min = 60, max = 604800)))]
    #[schema(minimum = 60, maximum = 604800)]
    pub reservation_ttl_seconds: Option<i64>,
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
    let changes = BrandChanges {
        name: request.name.as_deref().map(str::trim),
        currency: request.currency.as_deref(),
        reservation_ttl_seconds: request.reservation_ttl_seconds,
    };
    let brand = brands::update(&state.db, caller.scope(), brand_id, changes, expected_version).await?;
    Ok((etag(brand.version), AppJson(brand)))
}

/// `POST /brands/{id}/members`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
pub struct AddMember {
    /// The user's email.
    #[garde(email)]
    pub email: String,
    /// `brand_admin` or `brand_member`.
    #[garde(skip)]
    pub role: BrandRole,
    /// For a user that does not exist yet: its name.
    #[garde(inner(length(chars, min = 1, max = 200)))]
    pub name: Option<String>,
    /// For a user that does not exist yet: its first password.
    #[garde(inner(length(chars, min = 8, max = 256)))]
    pub password: Option<String>,
}

/// Gives a user a role in the brand. An unknown email is created as a new
/// user when `name` and `password` are given.
#[utoipa::path(post, path = "/brands/{id}/members", tag = "brands", request_body = AddMember,
    params(("id" = String, Path, description = "Brand id")),
    responses(
        (status = 201, description = "Added", body = BrandMember),
        (status = 403, description = "Not a brand admin", body = Problem),
        (status = 404, description = "No such brand, or unknown email without name and password", body = Problem),
    ),
    security(("bearer" = [])))]
async fn add_member(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(brand_id): AppPath<BrandId>,
    AppJson(request): AppJson<AddMember>,
) -> AppResult<(StatusCode, AppJson<BrandMember>)> {
    caller.authorize_brand(Action::ManageBrandMembers, brand_id)?;
    request.validate()?;
    let email = request.email.trim().to_lowercase();
    let user = match users::get_by_email(&state.db, &email).await? {
        Some(user) => user,
        None => {
            let (Some(name), Some(password)) = (request.name, request.password) else {
                return Err(AppError::field("email", "no user has this email; send name and password to create one"));
            };
            let hash = password::hash(password).await?;
            users::create(&state.db, &email, name.trim(), &hash, false).await?
        }
    };
    let member = brands::put_member(&state.db, caller.scope(), brand_id, user.id, request.role).await?;
    Ok((StatusCode::CREATED, AppJson(member)))
}

/// The brand's members.
#[utoipa::path(get, path = "/brands/{id}/members", tag = "brands",
    params(("id" = String, Path, description = "Brand id")),
    responses(
        (status = 200, description = "Members", body = Vec<BrandMember>),
        (status = 404, description = "No such brand", body = Problem),
    ),
    security(("bearer" = [])))]
async fn list_members(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(brand_id): AppPath<BrandId>,
) -> AppResult<AppJson<Vec<BrandMember>>> {
    caller.authorize_brand(Action::ViewBrand, brand_id)?;
    Ok(AppJson(brands::list_members(&state.db, caller.scope(), brand_id).await?))
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
