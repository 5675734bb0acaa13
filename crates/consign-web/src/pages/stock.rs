//! Stock pages: a brand's stock levels per warehouse with an adjustment
//! form, one variant's levels and ledger (history), the warehouses of the
//! caller's organizations, and which of them a brand ships from (a section
//! of the brand's settings page).

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use consign_app::warehouse_allocation;
use consign_db::brands::Brand;
use consign_db::stock::{self, AdjustError, LevelFilter, MovementFilter, NewAdjustment, StockChange};
use consign_db::warehouses::{self, Allocation, NewWarehouse};
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
use crate::pages::PageForm;

/// The stock and warehouse routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/stock", get(levels))
        .route("/admin/stock/adjust", post(adjust))
        .route("/admin/stock/history", get(history))
        .route("/admin/warehouses", get(warehouse_list).post(create_warehouse))
        .route("/admin/settings/brands/{id}/warehouses", post(save_brand_warehouses))
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
    PageForm(form): PageForm<AdjustForm>,
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
    at: view::When,
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
    let actors: Vec<String> = movements.data.iter().map(|m| m.actor.clone()).collect();
    let people = consign_db::users::actor_names(&state.db, &actors).await?;
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
            actor: view::actor_words(&m.actor, &people),
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
    created: view::When,
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
    /// The brands a new warehouse may start shipping for.
    brands: Vec<Brand>,
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
    let brands =
        staff.brands(&state).await?.into_iter().filter(|b| grants.allows_on_brand(Action::ManageBrand, b.id)).collect();
    render(&WarehousesPage {
        brands,
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
    /// A brand that ships from it from now on, after its other warehouses.
    brand_id: Option<String>,
}

/// `POST /admin/warehouses`.
pub async fn create_warehouse(
    State(state): State<AppState>,
    staff: Staff,
    PageForm(form): PageForm<WarehouseForm>,
) -> Result<Response, PageError> {
    let result = async {
        let named: Option<OrganizationId> =
            filled(&form.organization_id).map(|v| v.parse().map_err(|_| AppError::NotFound)).transpose()?;
        let organization_id = staff.caller.authorize_organization(Action::ManageWarehouses, named)?;
        let name = DisplayName::parse(&form.name).map_err(AppError::invalid("name"))?;
        let code = WarehouseCode::parse(&form.code).map_err(AppError::invalid("code"))?;
        let brand_id: Option<BrandId> =
            filled(&form.brand_id).map(|v| v.parse().map_err(|_| AppError::NotFound)).transpose()?;
        let new = NewWarehouse { organization_id, name: name.as_str(), code: code.as_str() };
        let created = warehouses::create(&state.db, staff.caller.scope(), new).await.map_err(|error| match error {
            DbError::Conflict { .. } => {
                AppError::Conflict(format!("Your organization already has a warehouse with code {code}."))
            }
            other => other.into(),
        })?;
        let Some(brand_id) = brand_id else { return Ok("Warehouse created.".to_owned()) };
        // Last in the brand's allocation order: it ships what the others
        // cannot until someone reorders them.
        let mut allocation: Vec<Allocation> = warehouses::for_brand(&state.db, staff.caller.scope(), brand_id)
            .await?
            .iter()
            .map(|w| Allocation { warehouse_id: w.warehouse_id, priority: w.priority })
            .collect();
        let priority = allocation.iter().map(|a| a.priority + 1).max().unwrap_or(1);
        allocation.push(Allocation { warehouse_id: created.id, priority });
        warehouse_allocation::set(&state.db, staff.caller.scope(), brand_id, &allocation).await?;
        Ok(format!("Warehouse created; the brand ships from it (priority {priority})."))
    }
    .await;
    let done = result.as_ref().cloned().unwrap_or_default();
    settle(result, "/admin/warehouses", done)
}

/// A warehouse a brand may ship from, with its place in the allocation
/// order if it is used.
pub struct WarehouseChoice {
    pub(crate) id: WarehouseId,
    pub(crate) name: String,
    pub(crate) code: String,
    /// Empty when the brand does not ship from it.
    pub(crate) priority: String,
}

/// The warehouses the brand ships from, in allocation order, then the
/// others the caller sees that it could ship from (its organization's and
/// its 3PLs').
pub(super) async fn brand_choices(
    state: &AppState,
    staff: &Staff,
    brand: &Brand,
) -> Result<Vec<WarehouseChoice>, PageError> {
    let scope = staff.caller.scope();
    let linked = warehouses::for_brand(&state.db, scope, brand.id).await?;
    let mut eligible = warehouses::fulfillers(&state.db, scope, brand.id).await?;
    eligible.push(brand.organization_id);
    let all = PageRequest { limit: 200, after: None };
    let visible = warehouses::list(&state.db, scope, &warehouses::WarehouseFilter::default(), &all).await?.data;
    let mut choices: Vec<WarehouseChoice> = linked
        .iter()
        .map(|w| WarehouseChoice {
            id: w.warehouse_id,
            name: w.name.clone(),
            code: w.code.clone(),
            priority: w.priority.to_string(),
        })
        .collect();
    let mut others: Vec<WarehouseChoice> = visible
        .into_iter()
        .filter(|w| eligible.contains(&w.organization_id) && !linked.iter().any(|l| l.warehouse_id == w.id))
        .map(|w| WarehouseChoice { id: w.id, name: w.name, code: w.code, priority: String::new() })
        .collect();
    others.sort_by(|a, b| a.name.cmp(&b.name));
    choices.extend(others);
    Ok(choices)
}

/// `POST /admin/settings/brands/{id}/warehouses`: a `priority_<warehouse
/// id>` field per warehouse; a blank one means the brand does not ship
/// from it.
pub async fn save_brand_warehouses(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    PageForm(fields): PageForm<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let brand_id: BrandId = id.parse().map_err(|_| PageError::NotFound)?;
    let result = async {
        let mut allocation = Vec::new();
        for (name, value) in &fields {
            let (Some(warehouse), priority) = (name.strip_prefix("priority_"), value.trim()) else { continue };
            if priority.is_empty() {
                continue;
            }
            let warehouse_id: WarehouseId = warehouse.parse().map_err(|_| AppError::NotFound)?;
            let priority =
                priority.parse::<i64>().map_err(|_| AppError::field("priority", "must be a whole number, or blank"))?;
            allocation.push(Allocation { warehouse_id, priority });
        }
        allocation.sort_by_key(|a| a.priority);
        warehouse_allocation::set(&state.db, staff.caller.scope(), brand_id, &allocation).await.map_err(|error| {
            // The form has no list indexes: name the field as the page does.
            AppError::from(error.renamed_all(|field| match field.rsplit_once('.') {
                Some((_, "priority")) => "priority".to_owned(),
                Some((_, "warehouse_id")) => "warehouse".to_owned(),
                _ => field.to_owned(),
            }))
        })
    }
    .await;
    settle(result, &format!("/admin/settings/brands/{brand_id}#warehouses"), "Warehouses saved.")
}
