//! Inventory: stock adjustments, stock levels and the stock ledger.

use axum::extract::State;
use axum::http::StatusCode;
use consign_db::Page;
use consign_db::products;
use consign_db::stock::{
    self, AdjustError, LevelFilter, Movement, MovementFilter, NewAdjustment, StockChange, StockLevel,
};
use consign_domain::policy::Action;
use consign_domain::text::{AdjustmentReason, Reference};
use consign_domain::{BrandId, VariantId, WarehouseId};
use garde::Validate;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{AppError, AppResult, Problem, text_rule};
use crate::extract::{AppJson, AppQuery, Caller, PageQuery};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_adjustment)).routes(routes!(list_levels)).routes(routes!(list_movements))
}

/// The most units one adjustment may move or count: far beyond any real
/// stock, and far enough from `i64::MAX` that `on_hand + delta` cannot
/// overflow in SQL.
const MAX_UNITS: i64 = 1_000_000_000;

/// `POST /inventory/adjustments`: exactly one of `delta` and `set_on_hand`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
pub struct CreateAdjustment {
    /// The variant.
    #[garde(skip)]
    pub variant_id: VariantId,
    /// The warehouse.
    #[garde(skip)]
    pub warehouse_id: WarehouseId,
    /// Units to add (negative: take out). Not 0; at most a billion either way.
    #[garde(inner(range(min = -MAX_UNITS, max = MAX_UNITS)))]
    #[schema(minimum = -1_000_000_000, maximum = 1_000_000_000)]
    pub delta: Option<i64>,
    /// A counted `on_hand` to set; the ledger records the difference.
    #[garde(inner(range(min = 0, max = MAX_UNITS)))]
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub set_on_hand: Option<i64>,
    /// Why, for the ledger: 1 to 200 characters.
    #[garde(custom(text_rule::<AdjustmentReason>))]
    pub reason: String,
    /// An outside reference, such as a receipt or count sheet number.
    #[garde(inner(custom(text_rule::<Reference>)))]
    pub reference: Option<String>,
}

/// Adjusts a variant's stock in a warehouse and answers the level after.
/// The caller must see the variant's brand; the warehouse must serve the
/// brand or belong to one of the caller's organizations.
#[utoipa::path(post, path = "/inventory/adjustments", tag = "inventory", request_body = CreateAdjustment,
    responses(
        (status = 201, description = "Adjusted; the stock level after", body = StockLevel),
        (status = 403, description = "Not allowed to edit this brand's stock", body = Problem),
        (status = 404, description = "No such variant or warehouse", body = Problem),
        (status = 409, description = "`insufficient_stock`: on_hand would go below reserved or zero", body = Problem),
        (status = 422, description = "Invalid fields", body = Problem),
    ),
    security(("bearer" = [])))]
async fn create_adjustment(
    State(state): State<AppState>,
    caller: Caller,
    AppJson(request): AppJson<CreateAdjustment>,
) -> AppResult<(StatusCode, AppJson<StockLevel>)> {
    let variant = products::get_variant(&state.db, caller.scope(), request.variant_id).await?;
    caller.authorize_brand(Action::EditCommerce, variant.brand_id)?;
    request.validate()?;
    let change = match (request.delta, request.set_on_hand) {
        (Some(0), None) => return Err(AppError::field("delta", "must not be 0")),
        (Some(delta), None) => StockChange::Delta(delta),
        (None, Some(target)) => StockChange::SetOnHand(target),
        _ => return Err(AppError::field("delta", "send exactly one of delta and set_on_hand")),
    };
    let reason = AdjustmentReason::parse(&request.reason).map_err(AppError::invalid("reason"))?;
    let reference =
        request.reference.as_deref().map(Reference::parse).transpose().map_err(AppError::invalid("reference"))?;
    let adjustment = NewAdjustment {
        variant_id: request.variant_id,
        warehouse_id: request.warehouse_id,
        change,
        reason: reason.as_str(),
        reference: reference.as_ref().map(Reference::as_str).filter(|r| !r.is_empty()),
    };
    let level = stock::adjust(&state.db, caller.scope(), adjustment).await.map_err(|error| match error {
        AdjustError::InsufficientStock { sku, on_hand, reserved, requested } => AppError::InsufficientStock {
            detail: format!(
                "SKU {sku} has {on_hand} on hand with {reserved} reserved in this warehouse; \
                     on_hand cannot become {requested} (it may not go below the reserved quantity or zero)."
            ),
            skus: vec![sku],
        },
        AdjustError::Db(error) => error.into(),
    })?;
    Ok((StatusCode::CREATED, AppJson(level)))
}

/// Filters for `GET /inventory/levels`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LevelQuery {
    /// Only this brand.
    pub brand_id: Option<BrandId>,
    /// Only this exact SKU.
    pub sku: Option<String>,
    /// Only this warehouse.
    pub warehouse_id: Option<WarehouseId>,
    /// Only this variant.
    pub variant_id: Option<VariantId>,
    /// Rows per page, 1 to 200 (default 50).
    pub limit: Option<u32>,
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// Stock levels of the brands the caller sees.
#[utoipa::path(get, path = "/inventory/levels", tag = "inventory", params(LevelQuery),
    responses(
        (status = 200, description = "A page of stock levels", body = Page<StockLevel>),
        (status = 404, description = "No such brand", body = Problem),
    ),
    security(("bearer" = [])))]
async fn list_levels(
    State(state): State<AppState>,
    caller: Caller,
    AppQuery(query): AppQuery<LevelQuery>,
) -> AppResult<AppJson<Page<StockLevel>>> {
    if let Some(brand_id) = query.brand_id {
        caller.authorize_brand(Action::ViewCommerce, brand_id)?;
    }
    let page = PageQuery { limit: query.limit, cursor: query.cursor }.to_request()?;
    let filter = LevelFilter {
        brand_id: query.brand_id,
        sku: query.sku.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()),
        warehouse_id: query.warehouse_id,
        variant_id: query.variant_id,
    };
    Ok(AppJson(stock::levels(&state.db, caller.scope(), &filter, &page).await?))
}

/// Filters for `GET /inventory/movements`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MovementQuery {
    /// Only this brand.
    pub brand_id: Option<BrandId>,
    /// Only this variant.
    pub variant_id: Option<VariantId>,
    /// Only this warehouse.
    pub warehouse_id: Option<WarehouseId>,
    /// Rows per page, 1 to 200 (default 50).
    pub limit: Option<u32>,
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// The stock ledger of the brands the caller sees, newest first.
#[utoipa::path(get, path = "/inventory/movements", tag = "inventory", params(MovementQuery),
    responses(
        (status = 200, description = "A page of movements", body = Page<Movement>),
        (status = 404, description = "No such brand", body = Problem),
    ),
    security(("bearer" = [])))]
async fn list_movements(
    State(state): State<AppState>,
    caller: Caller,
    AppQuery(query): AppQuery<MovementQuery>,
) -> AppResult<AppJson<Page<Movement>>> {
    if let Some(brand_id) = query.brand_id {
        caller.authorize_brand(Action::ViewCommerce, brand_id)?;
    }
    let page = PageQuery { limit: query.limit, cursor: query.cursor }.to_request()?;
    let filter =
        MovementFilter { brand_id: query.brand_id, variant_id: query.variant_id, warehouse_id: query.warehouse_id };
    Ok(AppJson(stock::movements(&state.db, caller.scope(), &filter, &page).await?))
}
