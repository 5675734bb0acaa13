//! Catalog pages: a brand's products (search, status filter, cursor
//! pages), a product with its variants; create, edit and archive products,
//! add and edit variants. The policy and storage calls are the API's.

use std::collections::BTreeMap;

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use consign_db::PageRequest;
use consign_db::brands::Brand;
use consign_db::products::{
    self, CatalogError, NewProduct, NewVariant, ProductChanges, ProductFilter, ProductWithVariants, VariantChanges,
};
use consign_domain::policy::Action;
use consign_domain::status::ProductStatus;
use consign_domain::text::{Sku, Title, VariantOptions};
use consign_domain::{BrandId, Money, ProductId, VariantId};
use serde::Deserialize;

use super::dashboard::{BrandOption, brand_options};
use super::orders::Choice;
use super::view::{self, filled};
use super::{Chrome, PageError, Staff, render, settle};
use crate::AppState;
use crate::error::AppError;
use crate::pages::PageForm;

/// The catalog routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/products", get(list).post(create))
        .route("/admin/products/{id}", get(show).post(update))
        .route("/admin/products/{id}/archive", post(archive))
        .route("/admin/products/{id}/variants", post(add_variant))
        .route("/admin/variants/{id}", post(update_variant))
}

const PRODUCT_STATUSES: &[&str] = &["draft", "active", "archived"];

fn status_choices(current: Option<&str>) -> Vec<Choice> {
    PRODUCT_STATUSES
        .iter()
        .map(|value| Choice { value, label: view::words(value), selected: current == Some(*value) })
        .collect()
}

fn catalog_error(error: CatalogError) -> AppError {
    match error {
        CatalogError::SkuTaken(sku) => AppError::Conflict(format!("SKU {sku} is already used in this brand.")),
        CatalogError::Db(error) => error.into(),
    }
}

/// A product row of the list.
pub struct ProductLine {
    id: ProductId,
    title: String,
    status: String,
    variants: usize,
    skus: String,
    price: String,
}

#[derive(Template)]
#[template(path = "admin/products.html")]
struct ListPage {
    chrome: Chrome,
    brand: Brand,
    brands: Vec<BrandOption>,
    statuses: Vec<Choice>,
    new_statuses: Vec<Choice>,
    q: String,
    rows: Vec<ProductLine>,
    next: Option<String>,
    query: String,
    may_edit: bool,
}

/// `?brand_id=&q=&status=&cursor=`.
#[derive(Deserialize)]
pub struct ListQuery {
    brand_id: Option<String>,
    q: Option<String>,
    status: Option<String>,
    cursor: Option<String>,
}

fn parse<T: std::str::FromStr>(value: Option<&str>) -> Result<Option<T>, PageError> {
    value.map(|v| v.parse().map_err(|_| PageError::NotFound)).transpose()
}

/// `GET /admin/products`.
pub async fn list(
    State(state): State<AppState>,
    staff: Staff,
    Query(query): Query<ListQuery>,
) -> Result<Response, PageError> {
    let asked: Option<BrandId> = parse(filled(&query.brand_id))?;
    let (brand, brands) = staff.pick_brand(&state, asked).await?;
    staff.caller.authorize_brand(Action::ViewCommerce, brand.id)?;
    let status: Option<ProductStatus> = filled(&query.status).and_then(|s| s.parse().ok());
    let filter = ProductFilter { brand_id: Some(brand.id), q: filled(&query.q).map(str::to_owned), status };
    let page = PageRequest { limit: 50, after: filled(&query.cursor).map(str::to_owned) };
    let found = products::list(&state.db, staff.caller.scope(), &filter, &page).await?;
    let rows = found
        .data
        .iter()
        .map(|p| ProductLine {
            id: p.product.id,
            title: p.product.title.clone(),
            status: p.product.status.to_string(),
            variants: p.variants.len(),
            skus: p.variants.iter().map(|v| v.sku.as_str()).collect::<Vec<_>>().join(", "),
            price: p
                .variants
                .iter()
                .map(|v| v.price.amount)
                .min()
                .map(|m| view::format_money(m, &brand.currency))
                .unwrap_or_default(),
        })
        .collect();
    let mut query_string = format!("brand_id={}", brand.id);
    for (key, value) in [("q", filled(&query.q)), ("status", filled(&query.status))] {
        if let Some(value) = value {
            query_string.push_str(&format!("&{key}={}", view::percent_encode(value)));
        }
    }
    render(&ListPage {
        chrome: staff.chrome("catalog", "Products"),
        brands: brand_options(&brands, Some(brand.id)),
        statuses: status_choices(filled(&query.status)),
        new_statuses: status_choices(Some("active")),
        q: filled(&query.q).unwrap_or_default().to_owned(),
        rows,
        next: found.next_cursor,
        query: query_string,
        may_edit: staff.caller.scope().grants().allows_on_brand(Action::EditCommerce, brand.id),
        brand,
    })
}

/// `size=L; colour=Red` (or one per line) into option values.
fn parse_options(text: &str) -> Result<BTreeMap<String, String>, AppError> {
    let mut options = BTreeMap::new();
    for part in text.split([';', '\n']).map(str::trim).filter(|p| !p.is_empty()) {
        let Some((name, value)) = part.split_once('=') else {
            return Err(AppError::field("options", "write them as name=value, separated by ;"));
        };
        options.insert(name.trim().to_owned(), value.trim().to_owned());
    }
    Ok(VariantOptions::parse(options).map_err(AppError::invalid("options"))?.into_map())
}

fn options_text(options: &BTreeMap<String, String>) -> String {
    options.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
}

fn parse_price(text: &str, currency: &str) -> Result<Money, AppError> {
    let bad = || AppError::field("price", "must be an amount such as 12.50");
    let text = text.trim().replace(',', "");
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    if whole.is_empty() || fraction.len() > 2 || whole.starts_with('-') {
        return Err(bad());
    }
    let whole: i64 = whole.parse().map_err(|_| bad())?;
    let fraction: i64 = if fraction.is_empty() { 0 } else { format!("{fraction:0<2}").parse().map_err(|_| bad())? };
    let amount = whole.checked_mul(100).and_then(|w| w.checked_add(fraction)).ok_or_else(bad)?;
    Ok(Money::new(amount, currency))
}

fn check_text(field: &'static str, value: &str, min: usize, max: usize) -> Result<String, AppError> {
    let value = value.trim();
    let count = value.chars().count();
    if count < min || count > max || value.chars().any(|c| c.is_control() && c != '\n' && c != '\r') {
        return Err(AppError::field(field, format!("must be {min} to {max} characters")));
    }
    Ok(value.to_owned())
}

/// The new-product form: a product and its first variant.
#[derive(Deserialize)]
pub struct NewProductForm {
    brand_id: String,
    title: String,
    description: Option<String>,
    status: String,
    sku: String,
    variant_title: Option<String>,
    price: String,
    options: Option<String>,
}

/// `POST /admin/products`.
pub async fn create(
    State(state): State<AppState>,
    staff: Staff,
    PageForm(form): PageForm<NewProductForm>,
) -> Result<Response, PageError> {
    let brand_id: BrandId = form.brand_id.parse().map_err(|_| PageError::NotFound)?;
    let brand = consign_db::brands::get(&state.db, staff.caller.scope(), brand_id).await?;
    let back = format!("/admin/products?brand_id={brand_id}");
    let result = async {
        staff.caller.authorize_brand(Action::EditCommerce, brand_id)?;
        let title = Title::parse(&form.title).map_err(AppError::invalid("title"))?.into_string();
        let sku = Sku::parse(&form.sku).map_err(AppError::invalid("sku"))?.into_string();
        let status: ProductStatus = form.status.parse().map_err(|_| AppError::field("status", "is not a status"))?;
        let new = NewProduct {
            title: title.clone(),
            description: check_text("description", form.description.as_deref().unwrap_or_default(), 0, 10_000)?,
            status,
            available_at: None,
            early_access_emails: Vec::new(),
            variants: vec![NewVariant {
                sku,
                title: filled(&form.variant_title).unwrap_or("Default").to_owned(),
                options: parse_options(form.options.as_deref().unwrap_or_default())?,
                price: parse_price(&form.price, &brand.currency)?,
            }],
        };
        products::create(&state.db, staff.caller.scope(), &brand, new).await.map_err(catalog_error)
    }
    .await;
    match result {
        Ok(product) => Ok(view::redirect_with(
            &format!("/admin/products/{}", product.product.id),
            view::Flash::notice(format!("Product {} created.", product.product.title)),
        )),
        Err(error) => settle(Err::<(), _>(error), &back, ""),
    }
}

/// A variant on the product page.
pub struct VariantView {
    id: VariantId,
    sku: String,
    title: String,
    options: String,
    price: String,
    price_input: String,
}

#[derive(Template)]
#[template(path = "admin/product.html")]
struct ProductPage {
    chrome: Chrome,
    brand: Brand,
    product: ProductWithVariants,
    statuses: Vec<Choice>,
    variants: Vec<VariantView>,
    may_edit: bool,
    archived: bool,
}

async fn load(state: &AppState, staff: &Staff, id: &str, action: Action) -> Result<ProductWithVariants, AppError> {
    let product_id: ProductId = id.parse().map_err(|_| AppError::NotFound)?;
    let product = products::get(&state.db, staff.caller.scope(), product_id).await?;
    staff.caller.authorize_brand(action, product.product.brand_id)?;
    Ok(product)
}

/// `GET /admin/products/{id}`.
pub async fn show(State(state): State<AppState>, staff: Staff, Path(id): Path<String>) -> Result<Response, PageError> {
    let product = load(&state, &staff, &id, Action::ViewCommerce).await?;
    let brand = consign_db::brands::get(&state.db, staff.caller.scope(), product.product.brand_id).await?;
    let variants = product
        .variants
        .iter()
        .map(|v| VariantView {
            id: v.id,
            sku: v.sku.clone(),
            title: v.title.clone(),
            options: options_text(&v.options),
            price: view::money(&v.price),
            price_input: format!("{}.{:02}", v.price.amount / 100, v.price.amount % 100),
        })
        .collect();
    render(&ProductPage {
        chrome: staff.chrome("catalog", product.product.title.clone()),
        statuses: status_choices(Some(product.product.status.as_str())),
        variants,
        may_edit: staff.caller.scope().grants().allows_on_brand(Action::EditCommerce, brand.id),
        archived: product.product.status == ProductStatus::Archived,
        brand,
        product,
    })
}

/// The product form.
#[derive(Deserialize)]
pub struct ProductForm {
    title: String,
    description: Option<String>,
    status: String,
    version: Option<i64>,
}

/// `POST /admin/products/{id}`.
pub async fn update(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    PageForm(form): PageForm<ProductForm>,
) -> Result<Response, PageError> {
    let back = format!("/admin/products/{id}");
    let result = async {
        let product = load(&state, &staff, &id, Action::EditCommerce).await?;
        let changes = ProductChanges {
            title: Some(Title::parse(&form.title).map_err(AppError::invalid("title"))?.into_string()),
            description: Some(check_text("description", form.description.as_deref().unwrap_or_default(), 0, 10_000)?),
            status: Some(form.status.parse().map_err(|_| AppError::field("status", "is not a status"))?),
            ..ProductChanges::default()
        };
        Ok(products::update(&state.db, staff.caller.scope(), product.product.id, changes, form.version).await?)
    }
    .await;
    settle(result, &back, "Product saved.")
}

/// `POST /admin/products/{id}/archive`.
pub async fn archive(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let back = format!("/admin/products/{id}");
    let result = async {
        let product = load(&state, &staff, &id, Action::EditCommerce).await?;
        let changes = ProductChanges { status: Some(ProductStatus::Archived), ..ProductChanges::default() };
        Ok(products::update(&state.db, staff.caller.scope(), product.product.id, changes, None).await?)
    }
    .await;
    settle(result, &back, "Product archived: it is no longer sold.")
}

/// The variant forms.
#[derive(Deserialize)]
pub struct VariantForm {
    sku: Option<String>,
    title: String,
    price: String,
    options: Option<String>,
}

/// `POST /admin/products/{id}/variants`.
pub async fn add_variant(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    PageForm(form): PageForm<VariantForm>,
) -> Result<Response, PageError> {
    let back = format!("/admin/products/{id}");
    let result = async {
        let product = load(&state, &staff, &id, Action::EditCommerce).await?;
        let brand = consign_db::brands::get(&state.db, staff.caller.scope(), product.product.brand_id).await?;
        let new = NewVariant {
            sku: Sku::parse(form.sku.as_deref().unwrap_or_default()).map_err(AppError::invalid("sku"))?.into_string(),
            title: Title::parse(&form.title).map_err(AppError::invalid("title"))?.into_string(),
            options: parse_options(form.options.as_deref().unwrap_or_default())?,
            price: parse_price(&form.price, &brand.currency)?,
        };
        products::add_variant(&state.db, staff.caller.scope(), product.product.id, new).await.map_err(catalog_error)
    }
    .await;
    settle(result, &back, "Variant added.")
}

/// `POST /admin/variants/{id}`.
pub async fn update_variant(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    PageForm(form): PageForm<VariantForm>,
) -> Result<Response, PageError> {
    let variant_id: VariantId = id.parse().map_err(|_| PageError::NotFound)?;
    let variant = products::get_variant(&state.db, staff.caller.scope(), variant_id).await?;
    let back = format!("/admin/products/{}", variant.product_id);
    let result = async {
        staff.caller.authorize_brand(Action::EditCommerce, variant.brand_id)?;
        let changes = VariantChanges {
            title: Some(Title::parse(&form.title).map_err(AppError::invalid("title"))?.into_string()),
            options: Some(parse_options(form.options.as_deref().unwrap_or_default())?),
            price: Some(parse_price(&form.price, &variant.price.currency)?),
        };
        Ok(products::update_variant(&state.db, staff.caller.scope(), variant_id, changes).await?)
    }
    .await;
    settle(result, &back, "Variant saved.")
}
