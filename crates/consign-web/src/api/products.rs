//! The catalog: products and their variants.

use std::collections::{BTreeMap, HashMap};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use consign_db::Page;
use consign_db::brands::{self, Brand};
use consign_db::products::{
    self, CatalogError, NewProduct, NewVariant, ProductChanges, ProductFilter, ProductWithVariants, Variant,
    VariantChanges,
};
use consign_domain::money::Money;
use consign_domain::policy::Action;
use consign_domain::status::ProductStatus;
use consign_domain::text::{SearchText, Sku, Title, VariantOptions};
use consign_domain::{BrandId, ProductId, Timestamp, VariantId};
use garde::Validate;
use serde::{Deserialize, Deserializer};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{AppError, AppResult, FieldError, Problem, text_rule};
use crate::extract::{AppJson, AppPath, AppQuery, Caller, IfMatch, PageQuery, etag};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_product, list_products))
        .routes(routes!(get_product, update_product))
        .routes(routes!(add_variant))
        .routes(routes!(update_variant))
}

fn is_currency(code: &str, _: &()) -> garde::Result {
    if consign_domain::money::is_currency_code(code) {
        Ok(())
    } else {
        Err(garde::Error::new("must be an ISO 4217 code such as USD"))
    }
}

/// [`text_rule`] for a variant's options.
fn are_options(options: &BTreeMap<String, String>, _: &()) -> garde::Result {
    VariantOptions::parse(options.clone()).map(drop).map_err(|error| garde::Error::new(error.to_string()))
}

/// Reads a field that may be absent (outer `None`), `null` (`Some(None)`)
/// or a value: what a PATCH needs to clear a nullable field.
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

fn timestamp(at: DateTime<Utc>) -> Timestamp {
    Timestamp::from_micros(at.timestamp_micros())
}

fn normalize_emails(emails: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(emails.len());
    for email in emails {
        let email = email.trim().to_lowercase();
        if !out.contains(&email) {
            out.push(email);
        }
    }
    out
}

/// A price in a request.
#[derive(Debug, Deserialize, Validate, ToSchema)]
pub struct PriceInput {
    /// Minor units, from 0 to 10^12 (`consign_domain::money::MAX_AMOUNT`).
    #[garde(range(min = 0, max = consign_domain::money::MAX_AMOUNT))]
    #[schema(minimum = 0, maximum = 1000000000000.0)]
    pub amount: i64,
    /// Must be the brand's currency.
    #[garde(custom(is_currency))]
    #[schema(pattern = "^[A-Z]{3}$", example = "USD")]
    pub currency: String,
}

/// A variant in a request.
#[derive(Debug, Deserialize, Validate, ToSchema)]
pub struct VariantInput {
    /// Unique within the brand; surrounding spaces are dropped.
    #[garde(custom(text_rule::<Sku>))]
    #[schema(min_length = 1, max_length = 100, example = "TENT-2P-GRN")]
    pub sku: String,
    /// Title, such as "2-person / Green".
    #[garde(custom(text_rule::<Title>))]
    pub title: String,
    /// Option values by option name, such as `{"size": "L"}`.
    #[serde(default)]
    #[garde(custom(are_options))]
    pub options: BTreeMap<String, String>,
    /// Unit price.
    #[garde(dive)]
    pub price: PriceInput,
}

/// `POST /products`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
pub struct CreateProduct {
    /// The brand that sells it.
    #[garde(skip)]
    pub brand_id: BrandId,
    /// Title.
    #[garde(custom(text_rule::<Title>))]
    pub title: String,
    /// Description.
    #[serde(default)]
    #[garde(length(chars, max = 20000))]
    pub description: String,
    /// `draft` (default), `active` or `archived`.
    #[garde(skip)]
    pub status: Option<ProductStatus>,
    /// When an active product goes on sale (RFC 3339); absent means now.
    #[garde(skip)]
    pub available_at: Option<DateTime<Utc>>,
    /// Emails that may buy before `available_at`.
    #[serde(default)]
    #[garde(length(max = 10000), inner(email))]
    pub early_access_emails: Vec<String>,
    /// At least one variant.
    #[garde(length(min = 1, max = 100), dive)]
    pub variants: Vec<VariantInput>,
}

/// The field path of a request's variant, before its own fields: `prefix`
/// is the path of the variants' list, empty for a lone variant.
fn variant_path(prefix: &str, index: usize) -> String {
    if prefix.is_empty() { String::new() } else { format!("{prefix}[{index}].") }
}

/// Checks what garde cannot: the brand's currency and SKUs unique within
/// the request. `prefix` is the field path of the variants' list.
fn check_variants(brand: &Brand, variants: &[VariantInput], prefix: &str) -> AppResult<()> {
    let mut errors = Vec::new();
    let mut seen: HashMap<Sku, usize> = HashMap::new();
    for (index, variant) in variants.iter().enumerate() {
        let path = variant_path(prefix, index);
        if variant.price.currency != brand.currency {
            errors.push(FieldError::new(
                format!("{path}price.currency"),
                format!("must be the brand's currency, {}", brand.currency),
            ));
        }
        let sku = Sku::parse(&variant.sku).map_err(AppError::invalid(format!("{path}sku")))?;
        if let Some(first) = seen.insert(sku.clone(), index) {
            errors.push(FieldError::new(
                format!("{path}sku"),
                format!("SKU {sku} is already used by {prefix}[{first}] of this request"),
            ));
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(AppError::Validation(errors)) }
}

/// A validated variant for storage; `path` is [`variant_path`].
fn new_variant(input: VariantInput, path: &str) -> AppResult<NewVariant> {
    Ok(NewVariant {
        sku: Sku::parse(&input.sku).map_err(AppError::invalid(format!("{path}sku")))?.into_string(),
        title: Title::parse(&input.title).map_err(AppError::invalid(format!("{path}title")))?.into_string(),
        options: VariantOptions::parse(input.options).map_err(AppError::invalid(format!("{path}options")))?.into_map(),
        price: Money::new(input.price.amount, input.price.currency),
    })
}

fn catalog_error(error: CatalogError) -> AppError {
    match error {
        CatalogError::SkuTaken(sku) => AppError::Conflict(format!("SKU {sku} is already used in this brand.")),
        CatalogError::Db(error) => error.into(),
    }
}

/// Creates a product with its variants (staff who edit the brand's catalog).
#[utoipa::path(post, path = "/products", tag = "catalog", request_body = CreateProduct,
    responses(
        (status = 201, description = "Created; ETag carries its version", body = ProductWithVariants),
        (status = 403, description = "Not allowed to edit this brand's catalog", body = Problem),
        (status = 404, description = "No such brand", body = Problem),
        (status = 409, description = "A SKU is already used in the brand", body = Problem),
        (status = 422, description = "Invalid fields, a SKU twice in the request, or another currency", body = Problem),
    ),
    security(("bearer" = [])))]
async fn create_product(
    State(state): State<AppState>,
    caller: Caller,
    AppJson(request): AppJson<CreateProduct>,
) -> AppResult<impl IntoResponse> {
    caller.authorize_brand(Action::EditCommerce, request.brand_id)?;
    request.validate()?;
    let brand = brands::get(&state.db, caller.scope(), request.brand_id).await?;
    check_variants(&brand, &request.variants, "variants")?;
    let variants = request.variants.into_iter().enumerate();
    let variants = variants.map(|(index, variant)| new_variant(variant, &variant_path("variants", index)));
    let new = NewProduct {
        title: Title::parse(&request.title).map_err(AppError::invalid("title"))?.into_string(),
        description: request.description,
        status: request.status.unwrap_or(ProductStatus::Draft),
        available_at: request.available_at.map(timestamp),
        early_access_emails: normalize_emails(request.early_access_emails),
        variants: variants.collect::<AppResult<_>>()?,
    };
    let product = products::create(&state.db, caller.scope(), &brand, new).await.map_err(catalog_error)?;
    Ok((StatusCode::CREATED, etag(product.product.version), AppJson(product)))
}

/// Filters for `GET /products`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProductQuery {
    /// Only this brand's products.
    pub brand_id: Option<BrandId>,
    /// Title or SKU contains this (case-insensitive).
    pub q: Option<String>,
    /// Only products in this status.
    pub status: Option<ProductStatus>,
    /// Rows per page, 1 to 200 (default 50).
    pub limit: Option<u32>,
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// Products of the brands the caller sees, newest first, with variants.
#[utoipa::path(get, path = "/products", tag = "catalog", params(ProductQuery),
    responses(
        (status = 200, description = "A page of products", body = Page<ProductWithVariants>),
        (status = 404, description = "No such brand", body = Problem),
    ),
    security(("bearer" = [])))]
async fn list_products(
    State(state): State<AppState>,
    caller: Caller,
    AppQuery(query): AppQuery<ProductQuery>,
) -> AppResult<AppJson<Page<ProductWithVariants>>> {
    if let Some(brand_id) = query.brand_id {
        caller.authorize_brand(Action::ViewCommerce, brand_id)?;
    }
    let page = PageQuery { limit: query.limit, cursor: query.cursor }.to_request()?;
    let q = query.q.as_deref().map(SearchText::parse).transpose().map_err(AppError::invalid("q"))?;
    let q = q.map(SearchText::into_string).filter(|q| !q.is_empty());
    let filter = ProductFilter { brand_id: query.brand_id, q, status: query.status };
    Ok(AppJson(products::list(&state.db, caller.scope(), &filter, &page).await?))
}

/// One product with its variants.
#[utoipa::path(get, path = "/products/{id}", tag = "catalog", params(("id" = String, Path, description = "Product id")),
    responses(
        (status = 200, description = "The product; ETag carries its version", body = ProductWithVariants),
        (status = 404, description = "No such product", body = Problem),
    ),
    security(("bearer" = [])))]
async fn get_product(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(product_id): AppPath<ProductId>,
) -> AppResult<impl IntoResponse> {
    let product = products::get(&state.db, caller.scope(), product_id).await?;
    caller.authorize_brand(Action::ViewCommerce, product.product.brand_id)?;
    Ok((etag(product.product.version), AppJson(product)))
}

/// `PATCH /products/{id}`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
pub struct UpdateProduct {
    /// New title.
    #[garde(inner(custom(text_rule::<Title>)))]
    pub title: Option<String>,
    /// New description.
    #[garde(inner(length(chars, max = 20000)))]
    pub description: Option<String>,
    /// New status.
    #[garde(skip)]
    pub status: Option<ProductStatus>,
    /// New sale time; `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[garde(skip)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub available_at: Option<Option<DateTime<Utc>>>,
    /// New early-access list (replaces the old one).
    #[garde(inner(length(max = 10000), inner(email)))]
    pub early_access_emails: Option<Vec<String>>,
}

/// Changes a product. Send `If-Match: "<version>"` to refuse a stale write.
#[utoipa::path(patch, path = "/products/{id}", tag = "catalog", request_body = UpdateProduct,
    params(("id" = String, Path, description = "Product id"),
           ("If-Match" = Option<String>, Header, description = "Expected version, quoted")),
    responses(
        (status = 200, description = "Changed", body = ProductWithVariants),
        (status = 403, description = "Not allowed to edit this brand's catalog", body = Problem),
        (status = 404, description = "No such product", body = Problem),
        (status = 412, description = "Version mismatch", body = Problem),
        (status = 422, description = "Invalid fields", body = Problem),
    ),
    security(("bearer" = [])))]
async fn update_product(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(product_id): AppPath<ProductId>,
    IfMatch(expected_version): IfMatch,
    AppJson(request): AppJson<UpdateProduct>,
) -> AppResult<impl IntoResponse> {
    let current = products::get(&state.db, caller.scope(), product_id).await?;
    caller.authorize_brand(Action::EditCommerce, current.product.brand_id)?;
    request.validate()?;
    let title = request.title.as_deref().map(Title::parse).transpose().map_err(AppError::invalid("title"))?;
    let changes = ProductChanges {
        title: title.map(Title::into_string),
        description: request.description,
        status: request.status,
        available_at: request.available_at.map(|at| at.map(timestamp)),
        early_access_emails: request.early_access_emails.map(normalize_emails),
    };
    let product = products::update(&state.db, caller.scope(), product_id, changes, expected_version).await?;
    Ok((etag(product.product.version), AppJson(product)))
}

/// Adds a variant to a product.
#[utoipa::path(post, path = "/products/{id}/variants", tag = "catalog", request_body = VariantInput,
    params(("id" = String, Path, description = "Product id")),
    responses(
        (status = 201, description = "Created", body = Variant),
        (status = 403, description = "Not allowed to edit this brand's catalog", body = Problem),
        (status = 404, description = "No such product", body = Problem),
        (status = 409, description = "The SKU is already used in the brand", body = Problem),
        (status = 422, description = "Invalid fields or another currency", body = Problem),
    ),
    security(("bearer" = [])))]
async fn add_variant(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(product_id): AppPath<ProductId>,
    AppJson(request): AppJson<VariantInput>,
) -> AppResult<(StatusCode, AppJson<Variant>)> {
    let product = products::get(&state.db, caller.scope(), product_id).await?;
    caller.authorize_brand(Action::EditCommerce, product.product.brand_id)?;
    request.validate()?;
    let brand = brands::get(&state.db, caller.scope(), product.product.brand_id).await?;
    check_variants(&brand, std::slice::from_ref(&request), "")?;
    let variant = products::add_variant(&state.db, caller.scope(), product_id, new_variant(request, "")?)
        .await
        .map_err(catalog_error)?;
    Ok((StatusCode::CREATED, AppJson(variant)))
}

/// `PATCH /variants/{id}`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
pub struct UpdateVariant {
    /// New title.
    #[garde(inner(custom(text_rule::<Title>)))]
    pub title: Option<String>,
    /// New option values (replace the old ones).
    #[garde(inner(custom(are_options)))]
    pub options: Option<BTreeMap<String, String>>,
    /// New price, in the brand's currency.
    #[garde(dive)]
    pub price: Option<PriceInput>,
}

/// Changes a variant's title, options or price. Its SKU stays.
#[utoipa::path(patch, path = "/variants/{id}", tag = "catalog", request_body = UpdateVariant,
    params(("id" = String, Path, description = "Variant id")),
    responses(
        (status = 200, description = "Changed", body = Variant),
        (status = 403, description = "Not allowed to edit this brand's catalog", body = Problem),
        (status = 404, description = "No such variant", body = Problem),
        (status = 422, description = "Invalid fields or another currency", body = Problem),
    ),
    security(("bearer" = [])))]
async fn update_variant(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(variant_id): AppPath<VariantId>,
    AppJson(request): AppJson<UpdateVariant>,
) -> AppResult<AppJson<Variant>> {
    let variant = products::get_variant(&state.db, caller.scope(), variant_id).await?;
    caller.authorize_brand(Action::EditCommerce, variant.brand_id)?;
    request.validate()?;
    if let Some(price) = &request.price {
        let brand = brands::get(&state.db, caller.scope(), variant.brand_id).await?;
        if price.currency != brand.currency {
            return Err(AppError::field("price.currency", format!("must be the brand's currency, {}", brand.currency)));
        }
    }
    let title = request.title.as_deref().map(Title::parse).transpose().map_err(AppError::invalid("title"))?;
    let options = request.options.map(VariantOptions::parse).transpose().map_err(AppError::invalid("options"))?;
    let changes = VariantChanges {
        title: title.map(Title::into_string),
        options: options.map(VariantOptions::into_map),
        price: request.price.map(|p| Money::new(p.amount, p.currency)),
    };
    Ok(AppJson(products::update_variant(&state.db, caller.scope(), variant_id, changes).await?))
}
