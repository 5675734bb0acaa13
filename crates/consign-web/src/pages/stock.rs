//! Stock pages: a brand's stock levels per warehouse with an adjustment
//! form, one variant's levels and ledger (history), and the warehouses of
//! the caller's organizations.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use consign_db::brands::Brand;
use consign_db::stock::{self, AdjustError, LevelFilter, MovementFilter, NewAdjustment, StockChange};
use consign_db::warehouses::{self, NewWarehouse};
use consign_db::{DbError, PageRequest, products};
use consign_domain::policy::Action;
use consign_domain::text::{AdjustmentReason, DisplayName, Reference, WarehouseCode};
use consign_domain::{BrandId, OrganizationId, VariantId, WarehouseId};
use serde::Deserialize;

use super::dashboard::{BrandOption, brand_options};
use super::view::{self, filled};
use super::{Chrome, PageError, Staff, render, settle};
use crate::AppState;
use crate::error::AppError;

/// The stock and warehouse routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/stock", get(levels))
        .route("/admin/stock/adjust", post(adjust))
        .route("/admin/stock/history", get(history))
        .route("/admin/warehouses", get(warehouse_list).post(create_warehouse))
}

/// A stock level row.
pub struct LevelRow {
    variant_id: VariantId,
    sku: String,
    warehouse: String,
    on_hand: i64,
    reserved: i64,
    unsellable: i64,
    available: i64,
    low: bool,
}

/// A choice in a select.
pub struct Option2 {
    id: String,
    label: String,
}

#[derive(Template)]
#[template(path = "admin/stock.html")]
struct LevelsPage {
    chrome: Chrome,
    brand: Brand,
    brands: Vec<BrandOption>,
    sku: String,
    rows: Vec<LevelRow>,
    variants: Vec<Option2>,
    warehouses: Vec<Option2>,
    next: Option<String>,
    may_edit: bool,
    back: String,
}

/// `?brand_id=&sku=&cursor=`.
#[derive(Deserialize)]
pub struct LevelsQuery {
    brand_id: Option<String>,
    sku: Option<String>,
    cursor: Option<String>,
}

async fn rows_for(
    state: &AppState,
    staff: &Staff,
    filter: &LevelFilter,
    page: &PageRequest,
    warehouse_names: &[(WarehouseId, String)],
) -> Result<(Vec<LevelRow>, Option<String>), PageError> {
    let found = stock::levels(&state.db, staff.caller.scope(), filter, page).await?;
    let rows = found
        .data
        .iter()
        .map(|l| LevelRow {
            variant_id: l.variant_id,
            sku: l.sku.clone(),
            warehouse: warehouse_names
                .iter()
                .find(|(id, _)| *id == l.warehouse_id)
                .map(|(_, name)| name.clone())
                .unwrap_or_else(|| l.warehouse_id.to_string()),
            on_hand: l.on_hand,
            reserved: l.reserved,
            unsellable: l.unsellable,
            available: l.available,
            low: l.available <= 0,
        })
        .collect();
    Ok((rows, found.next_cursor))
}

async fn brand_warehouses(
    state: &AppState,
    staff: &Staff,
    brand_id: BrandId,
) -> Result<Vec<(WarehouseId, String)>, PageError> {
    Ok(warehouses::for_brand(&state.db, staff.caller.scope(), brand_id)
        .await?
        .into_iter()
        .map(|w| (w.warehouse_id, format!("{} ({})", w.name, w.code)))
        .collect())
}

/// `GET /admin/stock`.
pub async fn levels(
    State(state): State<AppState>,
    staff: Staff,
    Query(query): Query<LevelsQuery>,
) -> Result<Response, PageError> {
    let asked: Option<BrandId> =
        filled(&query.brand_id).map(|v| v.parse().map_err(|_| PageError::NotFound)).transpose()?;
    let (brand, brands) = staff.pick_brand(&state, asked).await?;
    staff.caller.authorize_brand(Action::ViewCommerce, brand.id)?;
    let names = brand_warehouses(&state, &staff, brand.id).await?;
    let filter =
        LevelFilter { brand_id: Some(brand.id), sku: filled(&query.sku).map(str::to_owned), ..LevelFilter::default() };
    let page = PageRequest { limit: 100, after: filled(&query.cursor).map(str::to_owned) };
    let (rows, next) = rows_for(&state, &staff, &filter, &page, &names).await?;
    let catalog = products::list(
        &state.db,
        staff.caller.scope(),
        &products::ProductFilter { brand_id: Some(brand.id), ..Default::default() },
        &PageRequest { limit: 200, after: None },
    )
    .await?;
    let variants = catalog
        .data
        .iter()
        .flat_map(|p| {
            p.variants
                .iter()
                .map(|v| Option2 { id: v.id.to_string(), label: format!("{} · {}", v.sku, p.product.title) })
        })
        .collect();
    render(&LevelsPage {
        chrome: staff.chrome("stock", "Stock"),
        brands: brand_options(&brands, Some(brand.id)),
        sku: filled(&query.sku).unwrap_or_default().to_owned(),
        rows,
        variants,
        warehouses: names.into_iter().map(|(id, label)| Option2 { id: id.to_string(), label }).collect(),
        next,
        may_edit: staff.caller.scope().grants().allows_on_brand(Action::EditCommerce, brand.id),
        back: format!("/admin/stock?brand_id={}", brand.id),
        brand,
    })
}

/// The adjustment form: a delta or a new on-hand count.
#[derive(Deserialize)]
pub struct AdjustForm {
    variant_id: String,
    warehouse_id: String,
    delta: Option<String>,
    set_on_hand: Option<String>,
    reason: String,
    reference: Option<String>,
    back: Option<String>,
}

/// `POST /admin/stock/adjust`.
pub async fn adjust(
    State(state): State<AppState>,
    staff: Staff,
    Form(form): Form<AdjustForm>,
) -> Result<Response, PageError> {
    let variant_id: VariantId = form.variant_id.parse().map_err(|_| PageError::NotFound)?;
    let warehouse_id: WarehouseId = form.warehouse_id.parse().map_err(|_| PageError::NotFound)?;
    let variant = products::get_variant(&state.db, staff.caller.scope(), variant_id).await?;
    let back = match filled(&form.back) {
        Some(back) if back.starts_with("/admin/") && !back.contains("//") => back.to_owned(),
        _ => format!("/admin/stock/history?variant_id={variant_id}"),
    };
    let result = async {
        staff.caller.authorize_brand(Action::EditCommerce, variant.brand_id)?;
        let number = |field: &'static str, text: &str| {
            text.trim().parse::<i64>().map_err(|_| AppError::field(field, "must be a whole number"))
        };
        let change = match (filled(&form.delta), filled(&form.set_on_hand)) {
            (Some(delta), None) => match number("delta", delta)? {
                0 => return Err(AppError::field("delta", "must not be 0")),
                delta => StockChange::Delta(delta),
            },
            (None, Some(target)) => StockChange::SetOnHand(number("set_on_hand", target)?),
            _ => return Err(AppError::field("delta", "give either a change or a new on-hand count")),
        };
        let reason = AdjustmentReason::parse(&form.reason).map_err(AppError::invalid("reason"))?;
        let reference =
            filled(&form.reference).map(Reference::parse).transpose().map_err(AppError::invalid("reference"))?;
        let adjustment = NewAdjustment {
            variant_id,
            warehouse_id,
            change,
            reason: reason.as_str(),
            reference: reference.as_ref().map(Reference::as_str),
        };
        stock::adjust(&state.db, staff.caller.scope(), adjustment).await.map_err(|error| match error {
            AdjustError::InsufficientStock { sku, on_hand, reserved, requested } => AppError::InsufficientStock {
                detail: format!(
                    "SKU {sku} has {on_hand} on hand with {reserved} reserved here; on hand cannot become {requested} \
                     (not below what is reserved, nor below zero)."
                ),
                skus: vec![sku],
            },
            AdjustError::Db(DbError::NotFound) => {
                AppError::field("warehouse_id", "is not a warehouse this brand's stock can be kept in")
            }
            AdjustError::Db(error) => error.into(),
        })
    }
    .await;
    let message = match &result {
        Ok(level) => {
            format!("Stock of {} adjusted: {} on hand, {} available.", level.sku, level.on_hand, level.available)
        }
        Err(_) => String::new(),
    };
    settle(result, &back, message)
}

/// A ledger row.
pub struct MovementRow {
    at: String,
    warehouse: String,
    delta: String,
    on_hand_after: i64,
    reason: String,
    reference: String,
    actor: String,
}

#[derive(Template)]
#[template(path = "admin/stock_history.html")]
struct HistoryPage {
    chrome: Chrome,
    sku: String,
    title: String,
    variant_id: VariantId,
    product_id: String,
    rows: Vec<LevelRow>,
    movements: Vec<MovementRow>,
    warehouses: Vec<Option2>,
    may_edit: bool,
    back: String,
}

/// `?variant_id=`.
#[derive(Deserialize)]
pub struct HistoryQuery {
    variant_id: String,
}

/// `GET /admin/stock/history?variant_id=`.
pub async fn history(
    State(state): State<AppState>,
    staff: Staff,
    Query(query): Query<HistoryQuery>,
) -> Result<Response, PageError> {
    let variant_id: VariantId = query.variant_id.parse().map_err(|_| PageError::NotFound)?;
    let variant = products::get_variant(&state.db, staff.caller.scope(), variant_id).await?;
    staff.caller.authorize_brand(Action::ViewCommerce, variant.brand_id)?;
    let names = brand_warehouses(&state, &staff, variant.brand_id).await?;
    let filter = LevelFilter { variant_id: Some(variant_id), ..LevelFilter::default() };
    let (rows, _) = rows_for(&state, &staff, &filter, &PageRequest { limit: 200, after: None }, &names).await?;
    let movements = stock::movements(
        &state.db,
        staff.caller.scope(),
        &MovementFilter { variant_id: Some(variant_id), ..MovementFilter::default() },
        &PageRequest { limit: 100, after: None },
    )
    .await?;
    let movements = movements
        .data
        .iter()
        .map(|m| MovementRow {
            at: view::time(m.created_at),
            warehouse: names
                .iter()
                .find(|(id, _)| *id == m.warehouse_id)
                .map(|(_, n)| n.clone())
                .unwrap_or_else(|| m.warehouse_id.to_string()),
            delta: if m.delta > 0 { format!("+{}", m.delta) } else { m.delta.to_string() },
            on_hand_after: m.on_hand_after,
            reason: m.reason.clone(),
            reference: m.reference.clone().unwrap_or_default(),
            actor: if m.actor.len() > 20 { "staff".to_owned() } else { m.actor.clone() },
        })
        .collect();
    render(&HistoryPage {
        chrome: staff.chrome("stock", format!("Stock of {}", variant.sku)),
        title: variant.title.clone(),
        product_id: variant.product_id.to_string(),
        rows,
        movements,
        warehouses: names.into_iter().map(|(id, label)| Option2 { id: id.to_string(), label }).collect(),
        may_edit: staff.caller.scope().grants().allows_on_brand(Action::EditCommerce, variant.brand_id),
        back: format!("/admin/stock/history?variant_id={variant_id}"),
        variant_id,
        sku: variant.sku,
    })
}

/// A warehouse row.
pub struct WarehouseRow {
    name: String,
    code: String,
    created: String,
}

/// An organization the caller may add warehouses to.
pub struct OrgChoice {
    id: OrganizationId,
    name: String,
}

#[derive(Template)]
#[template(path = "admin/warehouses.html")]
struct WarehousesPage {
    chrome: Chrome,
    rows: Vec<WarehouseRow>,
    organizations: Vec<OrgChoice>,
}

/// `GET /admin/warehouses`.
pub async fn warehouse_list(State(state): State<AppState>, staff: Staff) -> Result<Response, PageError> {
    let found = warehouses::list(
        &state.db,
        staff.caller.scope(),
        &warehouses::WarehouseFilter::default(),
        &PageRequest { limit: 200, after: None },
    )
    .await?;
    let grants = staff.caller.scope().grants();
    let user_id = staff.caller.scope().user_id();
    let mut organizations = Vec::new();
    if let Some(user_id) = user_id {
        for (organization, _) in consign_db::users::organizations_of(&state.db, user_id).await? {
            if grants.allows_in_organization(Action::ManageWarehouses, organization.id) {
                organizations.push(OrgChoice { id: organization.id, name: organization.name });
            }
        }
    }
    render(&WarehousesPage {
        chrome: staff.chrome("warehouses", "Warehouses"),
        rows: found
            .data
            .iter()
            .map(|w| WarehouseRow { name: w.name.clone(), code: w.code.clone(), created: view::time(w.created_at) })
            .collect(),
        organizations,
    })
}

/// The new-warehouse form.
#[derive(Deserialize)]
pub struct WarehouseForm {
    name: String,
    code: String,
    organization_id: Option<String>,
}

/// `POST /admin/warehouses`.
pub async fn create_warehouse(
    State(state): State<AppState>,
    staff: Staff,
    Form(form): Form<WarehouseForm>,
) -> Result<Response, PageError> {
    let result = async {
        let named: Option<OrganizationId> =
            filled(&form.organization_id).map(|v| v.parse().map_err(|_| AppError::NotFound)).transpose()?;
        let organization_id = staff.caller.authorize_organization(Action::ManageWarehouses, named)?;
        let name = DisplayName::parse(&form.name).map_err(AppError::invalid("name"))?;
        let code = WarehouseCode::parse(&form.code).map_err(AppError::invalid("code"))?;
        let new = NewWarehouse { organization_id, name: name.as_str(), code: code.as_str() };
        warehouses::create(&state.db, staff.caller.scope(), new).await.map_err(|error| match error {
            DbError::Conflict { .. } => {
                AppError::Conflict(format!("Your organization already has a warehouse with code {code}."))
            }
            other => other.into(),
        })
    }
    .await;
    settle(result, "/admin/warehouses", "Warehouse created.")
}
