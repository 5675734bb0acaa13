//! Warehouses, and which of them serve a brand in what order.

use axum::extract::State;
use axum::http::StatusCode;
use consign_db::warehouses::{self, Allocation, BrandWarehouse, NewWarehouse, Warehouse, WarehouseFilter};
use consign_db::{DbError, Page};
use consign_domain::policy::Action;
use consign_domain::text::{DisplayName, WarehouseCode};
use consign_domain::{BrandId, OrganizationId, WarehouseId};
use garde::Validate;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{AppError, AppResult, Problem, text_rule};
use crate::extract::{AppJson, AppPath, AppQuery, Caller, PageQuery, whole_list};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_warehouse, list_warehouses))
        .routes(routes!(set_brand_warehouses, list_brand_warehouses))
}

/// `POST /warehouses`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
pub struct CreateWarehouse {
    /// Display name.
    #[garde(custom(text_rule::<DisplayName>))]
    pub name: String,
    /// Short code, unique within the organization. Case-insensitive: it is
    /// stored upper-case (`wh-main` becomes `WH-MAIN`).
    #[garde(custom(text_rule::<WarehouseCode>))]
    #[schema(pattern = "^[A-Za-z0-9_-]{1,32}$", example = "EWR")]
    pub code: String,
    /// The organization that runs it; may be left out by a member of exactly one.
    #[garde(skip)]
    pub organization_id: Option<OrganizationId>,
}

/// Creates a warehouse in an organization (org admins only).
#[utoipa::path(post, path = "/warehouses", tag = "warehouses", request_body = CreateWarehouse,
    responses(
        (status = 201, description = "Created", body = Warehouse),
        (status = 403, description = "Not an org admin", body = Problem),
        (status = 404, description = "No such organization", body = Problem),
        (status = 409, description = "Code taken in the organization", body = Problem),
        (status = 422, description = "Invalid fields", body = Problem),
    ),
    security(("bearer" = [])))]
async fn create_warehouse(
    State(state): State<AppState>,
    caller: Caller,
    AppJson(request): AppJson<CreateWarehouse>,
) -> AppResult<(StatusCode, AppJson<Warehouse>)> {
    request.validate()?;
    let organization_id = caller.authorize_organization(Action::ManageWarehouses, request.organization_id)?;
    let name = DisplayName::parse(&request.name).map_err(AppError::invalid("name"))?;
    let code = WarehouseCode::parse(&request.code).map_err(AppError::invalid("code"))?;
    let new = NewWarehouse { organization_id, name: name.as_str(), code: code.as_str() };
    let warehouse = warehouses::create(&state.db, caller.scope(), new).await.map_err(|e| match e {
        DbError::Conflict { .. } => {
            AppError::Conflict(format!("The organization already has a warehouse with code {code}."))
        }
        other => other.into(),
    })?;
    Ok((StatusCode::CREATED, AppJson(warehouse)))
}

/// Filters for `GET /warehouses`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WarehouseQuery {
    /// Only the warehouse with this code, in any case.
    pub code: Option<String>,
    /// Rows per page, 1 to 200 (default 50).
    pub limit: Option<u32>,
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// Warehouses of the caller's organizations and of the brands it sees,
/// newest first.
#[utoipa::path(get, path = "/warehouses", tag = "warehouses", params(WarehouseQuery),
    responses((status = 200, description = "A page of warehouses", body = Page<Warehouse>)),
    security(("bearer" = [])))]
async fn list_warehouses(
    State(state): State<AppState>,
    caller: Caller,
    AppQuery(query): AppQuery<WarehouseQuery>,
) -> AppResult<AppJson<Page<Warehouse>>> {
    let page = PageQuery { limit: query.limit, cursor: query.cursor }.to_request()?;
    let filter = WarehouseFilter { code: query.code.filter(|code| !code.trim().is_empty()) };
    Ok(AppJson(warehouses::list(&state.db, caller.scope(), &filter, &page).await?))
}

/// One warehouse of a brand's allocation order.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AllocationInput {
    /// The warehouse.
    pub warehouse_id: WarehouseId,
    /// Lower is allocated first, 0 to 1000000.
    #[schema(minimum = 0, maximum = 1000000)]
    pub priority: i64,
}

/// `PUT /brands/{id}/warehouses`. The rules are
/// `consign_app::warehouse_allocation::set`'s.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SetBrandWarehouses {
    /// The brand's warehouses (at most 100); replaces the list it had.
    #[schema(max_items = 100)]
    pub warehouses: Vec<AllocationInput>,
}

/// Replaces the warehouses serving a brand and their priorities. Allowed to
/// a brand admin and to an org admin of a 3PL that fulfils for the brand.
/// Every warehouse must belong to the brand's organization or to one of its
/// fulfillers.
#[utoipa::path(put, path = "/brands/{id}/warehouses", tag = "warehouses", request_body = SetBrandWarehouses,
    params(("id" = String, Path, description = "Brand id")),
    responses(
        (status = 200, description = "The brand's warehouses, in allocation order, in one page", body = Page<BrandWarehouse>),
        (status = 403, description = "Neither a brand admin nor an admin of its 3PL", body = Problem),
        (status = 404, description = "No such brand", body = Problem),
        (status = 422, description = "Invalid fields, or a warehouse that may not serve the brand", body = Problem),
    ),
    security(("bearer" = [])))]
async fn set_brand_warehouses(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(brand_id): AppPath<BrandId>,
    AppJson(request): AppJson<SetBrandWarehouses>,
) -> AppResult<AppJson<Page<BrandWarehouse>>> {
    let allocation: Vec<Allocation> = request
        .warehouses
        .iter()
        .map(|entry| Allocation { warehouse_id: entry.warehouse_id, priority: entry.priority })
        .collect();
    let linked = consign_app::warehouse_allocation::set(&state.db, caller.scope(), brand_id, &allocation).await?;
    Ok(AppJson(whole_list(linked)))
}

/// The warehouses serving a brand, in allocation order.
#[utoipa::path(get, path = "/brands/{id}/warehouses", tag = "warehouses",
    params(("id" = String, Path, description = "Brand id")),
    responses(
        (status = 200, description = "The brand's warehouses, lowest priority number first, in one page", body = Page<BrandWarehouse>),
        (status = 404, description = "No such brand", body = Problem),
    ),
    security(("bearer" = [])))]
async fn list_brand_warehouses(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(brand_id): AppPath<BrandId>,
) -> AppResult<AppJson<Page<BrandWarehouse>>> {
    caller.authorize_brand(Action::ViewBrand, brand_id)?;
    Ok(AppJson(whole_list(warehouses::for_brand(&state.db, caller.scope(), brand_id).await?)))
}
