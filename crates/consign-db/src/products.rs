//! The catalog: products and their variants (the things with a SKU and a
//! price), and what of them the public storefront shows.
//!
//! Options and the early-access list are JSON in TEXT columns; prices are
//! BIGINT minor units with the brand's currency beside them. Every mutation
//! writes its domain event and audit row in the same transaction.

use std::collections::BTreeMap;

use crate::brands::Brand;
use crate::{AuditEntry, Db, DbError, DbResult, NewEvent, Page, PageRequest, Scope, Tx};
use consign_domain::money::Money;
use consign_domain::status::ProductStatus;
use consign_domain::{BrandId, EventType, OrganizationId, ProductId, Timestamp, VariantId};
use serde::Serialize;
use serde_json::json;

/// A product, without its variants.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Product {
    /// Id.
    pub id: ProductId,
    /// The owning organization (the brand's).
    pub organization_id: OrganizationId,
    /// The brand that sells it.
    pub brand_id: BrandId,
    /// Title.
    pub title: String,
    /// Description (plain text or Markdown; shown as given).
    pub description: String,
    /// `draft`, `active` or `archived`.
    pub status: ProductStatus,
    /// When an active product goes on sale; `null` means now.
    pub available_at: Option<Timestamp>,
    /// Emails that may buy before `available_at`.
    pub early_access_emails: Vec<String>,
    /// Optimistic-concurrency version.
    pub version: i64,
    /// When created.
    pub created_at: Timestamp,
    /// When last changed.
    pub updated_at: Timestamp,
}

/// A variant: one sellable thing with a SKU and a price.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Variant {
    /// Id.
    pub id: VariantId,
    /// Its product.
    pub product_id: ProductId,
    /// The product's brand.
    pub brand_id: BrandId,
    /// Stock-keeping unit, unique within the brand.
    pub sku: String,
    /// Title, such as "Large / Blue".
    pub title: String,
    /// Option values by option name, such as `{"size": "L"}`.
    pub options: BTreeMap<String, String>,
    /// Unit price in the brand's currency.
    pub price: Money,
    /// When created.
    pub created_at: Timestamp,
    /// When last changed.
    pub updated_at: Timestamp,
}

/// A product with its variants, in position order: the API's product shape.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ProductWithVariants {
    /// The product.
    #[serde(flatten)]
    pub product: Product,
    /// Its variants.
    pub variants: Vec<Variant>,
}

/// A storage failure of the catalog, or a SKU another variant holds.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// Another variant of the brand already has this SKU.
    #[error("SKU {0} is already used by another variant of this brand")]
    SkuTaken(String),
    /// Anything else.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for CatalogError {
    fn from(error: sqlx::Error) -> Self {
        CatalogError::Db(error.into())
    }
}

/// A new variant. Its currency is the caller's to check against the brand's.
#[derive(Clone, Debug)]
pub struct NewVariant {
    /// SKU, unique within the brand.
    pub sku: String,
    /// Title.
    pub title: String,
    /// Option values by option name.
    pub options: BTreeMap<String, String>,
    /// Unit price.
    pub price: Money,
}

/// A new product with at least one variant.
#[derive(Clone, Debug)]
pub struct NewProduct {
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Initial status.
    pub status: ProductStatus,
    /// When it goes on sale, if scheduled.
    pub available_at: Option<Timestamp>,
    /// Who may buy before `available_at`.
    pub early_access_emails: Vec<String>,
    /// Its variants, in display order.
    pub variants: Vec<NewVariant>,
}

/// Changes to a product; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct ProductChanges {
    /// New title.
    pub title: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New status.
    pub status: Option<ProductStatus>,
    /// `Some(None)` clears the schedule.
    pub available_at: Option<Option<Timestamp>>,
    /// New early-access list (replaces the old one).
    pub early_access_emails: Option<Vec<String>>,
}

/// Changes to a variant; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct VariantChanges {
    /// New title.
    pub title: Option<String>,
    /// New option values (replace the old ones).
    pub options: Option<BTreeMap<String, String>>,
    /// New price; the caller checks it is in the brand's currency.
    pub price: Option<Money>,
}

/// Filters of [`list`].
#[derive(Clone, Debug, Default)]
pub struct ProductFilter {
    /// Only this brand's products.
    pub brand_id: Option<BrandId>,
    /// Title or SKU contains this, case-insensitively.
    pub q: Option<String>,
    /// Only products in this status.
    pub status: Option<ProductStatus>,
}

// Column lists as macros, so that `concat!` makes whole queries `&'static str`.
macro_rules! product_columns {
    () => {
        "id, organization_id, brand_id, title, description, status, available_at,
         early_access_emails, version, created_at, updated_at"
    };
}

macro_rules! variant_columns {
    () => {
        "id, organization_id, product_id, brand_id, sku, title, options, price_amount, currency, created_at, updated_at"
    };
}

#[derive(sqlx::FromRow)]
struct ProductRow {
    id: ProductId,
    organization_id: OrganizationId,
    brand_id: BrandId,
    title: String,
    description: String,
    status: String,
    available_at: Option<Timestamp>,
    early_access_emails: String,
    version: i64,
    created_at: Timestamp,
    updated_at: Timestamp,
}

impl ProductRow {
    fn into_product(self) -> DbResult<Product> {
        Ok(Product {
            id: self.id,
            organization_id: self.organization_id,
            brand_id: self.brand_id,
            title: self.title,
            description: self.description,
            status: self.status.parse().map_err(|_| corrupt("product status"))?,
            available_at: self.available_at,
            early_access_emails: serde_json::from_str(&self.early_access_emails)
                .map_err(|_| corrupt("early_access_emails"))?,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct VariantRow {
    id: VariantId,
    organization_id: OrganizationId,
    product_id: ProductId,
    brand_id: BrandId,
    sku: String,
    title: String,
    options: String,
    price_amount: i64,
    currency: String,
    created_at: Timestamp,
    updated_at: Timestamp,
}

impl VariantRow {
    fn into_variant(self) -> DbResult<Variant> {
        Ok(Variant {
            id: self.id,
            product_id: self.product_id,
            brand_id: self.brand_id,
            sku: self.sku,
            title: self.title,
            options: serde_json::from_str(&self.options).map_err(|_| corrupt("variant options"))?,
            price: Money::new(self.price_amount, self.currency),
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

fn corrupt(what: &str) -> DbError {
    DbError::Other(anyhow::anyhow!("corrupt catalog row: {what}"))
}

fn to_json<T: Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or_default()
}

/// Groups variants under their products, keeping the products' order.
fn attach(products: Vec<ProductRow>, variants: Vec<VariantRow>) -> DbResult<Vec<ProductWithVariants>> {
    let mut out: Vec<ProductWithVariants> = products
        .into_iter()
        .map(|row| Ok(ProductWithVariants { product: row.into_product()?, variants: Vec::new() }))
        .collect::<DbResult<_>>()?;
    for variant in variants {
        let variant = variant.into_variant()?;
        if let Some(product) = out.iter_mut().find(|p| p.product.id == variant.product_id) {
            product.variants.push(variant);
        }
    }
    Ok(out)
}

/// Inserts one variant row in the caller's transaction. A taken SKU
/// becomes [`CatalogError::SkuTaken`] naming it.
async fn insert_variant(
    tx: &mut Tx,
    variant: &Variant,
    organization_id: OrganizationId,
    position: i64,
) -> Result<(), CatalogError> {
    tx.query(
        "INSERT INTO variants (id, organization_id, brand_id, product_id, sku, title, options, price_amount,
                               currency, position, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(variant.id)
    .bind(organization_id)
    .bind(variant.brand_id)
    .bind(variant.product_id)
    .bind(variant.sku.clone())
    .bind(variant.title.clone())
    .bind(to_json(&variant.options).to_string())
    .bind(variant.price.amount)
    .bind(variant.price.currency.clone())
    .bind(position)
    .bind(variant.created_at)
    .bind(variant.updated_at)
    .execute()
    .await
    .map_err(|error| match error {
        DbError::Conflict { .. } => CatalogError::SkuTaken(variant.sku.clone()),
        other => CatalogError::Db(other),
    })?;
    Ok(())
}

/// Creates a product with its variants in the brand, with its event and
/// audit row, all in one transaction. A SKU the brand already uses is
/// [`CatalogError::SkuTaken`] and nothing is written.
pub async fn create(
    db: &Db,
    scope: &Scope,
    brand: &Brand,
    new: NewProduct,
) -> Result<ProductWithVariants, CatalogError> {
    scope.check_brand(brand.id)?;
    let now = Timestamp::now();
    let product = Product {
        id: ProductId::new(),
        organization_id: brand.organization_id,
        brand_id: brand.id,
        title: new.title,
        description: new.description,
        status: new.status,
        available_at: new.available_at,
        early_access_emails: new.early_access_emails,
        version: 1,
        created_at: now,
        updated_at: now,
    };
    let variants: Vec<Variant> = new
        .variants
        .into_iter()
        .map(|v| Variant {
            id: VariantId::new(),
            product_id: product.id,
            brand_id: brand.id,
            sku: v.sku,
            title: v.title,
            options: v.options,
            price: v.price,
            created_at: now,
            updated_at: now,
        })
        .collect();
    let created = ProductWithVariants { product, variants };
    let snapshot = to_json(&created);
    let product = &created.product;
    let mut tx = db.begin().await?;
    tx.query(
        "INSERT INTO products (id, organization_id, brand_id, title, description, status, available_at,
                               early_access_emails, version, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $9)",
    )
    .bind(product.id)
    .bind(product.organization_id)
    .bind(product.brand_id)
    .bind(product.title.clone())
    .bind(product.description.clone())
    .bind(product.status.as_str())
    .bind(product.available_at)
    .bind(to_json(&product.early_access_emails).to_string())
    .bind(now)
    .execute()
    .await?;
    for (position, variant) in created.variants.iter().enumerate() {
        insert_variant(&mut tx, variant, product.organization_id, position as i64).await?;
    }
    tx.record_event(NewEvent {
        organization_id: product.organization_id,
        brand_id: Some(product.brand_id),
        event_type: EventType::ProductCreated,
        aggregate_type: "product",
        aggregate_id: product.id.to_string(),
        payload: snapshot.clone(),
        actor: scope.principal().actor_id(),
    })
    .await?;
    tx.record_audit(AuditEntry {
        after: Some(snapshot),
        ..scope.audit(
            product.organization_id,
            Some(product.brand_id),
            "product.create",
            "product",
            product.id.to_string(),
        )
    })
    .await?;
    tx.commit().await?;
    Ok(created)
}

/// The products the caller sees, newest first, each with its variants.
/// Variants of the whole page come in one query. A `brand_id` filter naming
/// a brand the caller cannot see is `NotFound`.
pub async fn list(
    db: &Db,
    scope: &Scope,
    filter: &ProductFilter,
    page: &PageRequest,
) -> DbResult<Page<ProductWithVariants>> {
    if let Some(brand_id) = filter.brand_id {
        scope.check_brand(brand_id)?;
    }
    let mut query = db.read(concat!("SELECT ", product_columns!(), " FROM products p WHERE 1 = 1"));
    scope.push_brand_filter(&mut query, "p.brand_id");
    if let Some(brand_id) = filter.brand_id {
        query.push(" AND p.brand_id = ").push_bind(brand_id);
    }
    if let Some(status) = filter.status {
        query.push(" AND p.status = ").push_bind(status.as_str());
    }
    if let Some(q) = filter.q.as_deref().filter(|q| !q.is_empty()) {
        let pattern = crate::sql::like_pattern(q);
        query.push(" AND (lower(p.title) LIKE lower(").push_bind(pattern.clone()).push(") ESCAPE '\\'");
        query.push(" OR EXISTS (SELECT 1 FROM variants v WHERE v.product_id = p.id AND lower(v.sku) LIKE lower(");
        query.push_bind(pattern).push(") ESCAPE '\\'))");
    }
    if let Some(after) = &page.after {
        query.push(" AND p.id < ").push_bind(after.clone());
    }
    query.push(" ORDER BY p.id DESC LIMIT ").push_bind(page.fetch_limit());
    let rows: Vec<ProductRow> = query.fetch_all().await?;
    let ids: Vec<ProductId> = rows.iter().take(page.limit as usize).map(|r| r.id).collect();
    let variants: Vec<VariantRow> = if ids.is_empty() {
        Vec::new()
    } else {
        let mut query = db.read(concat!("SELECT ", variant_columns!(), " FROM variants v WHERE "));
        query.push_in("v.product_id", ids);
        query.push(" ORDER BY v.product_id, v.position, v.id");
        query.fetch_all().await?
    };
    let products = attach(rows, variants)?;
    Ok(Page::from_rows(products, page, |p| p.product.id.to_string()))
}

/// One product the caller sees, with its variants.
pub async fn get(db: &Db, scope: &Scope, product_id: ProductId) -> DbResult<ProductWithVariants> {
    let row: ProductRow = db
        .read(concat!("SELECT ", product_columns!(), " FROM products p WHERE p.id = $1"))
        .bind(product_id)
        .fetch_one()
        .await?;
    scope.check_brand(row.brand_id)?;
    let variants: Vec<VariantRow> = db
        .read(concat!(
            "SELECT ",
            variant_columns!(),
            " FROM variants v WHERE v.product_id = $1 ORDER BY v.position, v.id"
        ))
        .bind(product_id)
        .fetch_all()
        .await?;
    attach(vec![row], variants)?.pop().ok_or(DbError::NotFound)
}

/// Applies changes when the product is at `expected_version` (if given);
/// a stale version is `VersionMismatch`. Writes `product.updated` and an
/// audit row with the product before and after.
pub async fn update(
    db: &Db,
    scope: &Scope,
    product_id: ProductId,
    changes: ProductChanges,
    expected_version: Option<i64>,
) -> DbResult<ProductWithVariants> {
    let current = get(db, scope, product_id).await?;
    let before = &current.product;
    if expected_version.is_some_and(|v| v != before.version) {
        return Err(DbError::VersionMismatch);
    }
    let title = changes.title.unwrap_or_else(|| before.title.clone());
    let description = changes.description.unwrap_or_else(|| before.description.clone());
    let status = changes.status.unwrap_or(before.status);
    let available_at = changes.available_at.unwrap_or(before.available_at);
    let emails = changes.early_access_emails.unwrap_or_else(|| before.early_access_emails.clone());
    let mut tx = db.begin().await?;
    let updated: Option<ProductRow> = tx
        .query(concat!(
            "UPDATE products SET title = $1, description = $2, status = $3, available_at = $4,
                    early_access_emails = $5, version = version + 1, updated_at = $6
              WHERE id = $7 AND version = $8
          RETURNING ",
            product_columns!()
        ))
        .bind(title.clone())
        .bind(description.clone())
        .bind(status.as_str())
        .bind(available_at)
        .bind(to_json(&emails).to_string())
        .bind(Timestamp::now())
        .bind(product_id)
        .bind(before.version)
        .fetch_optional()
        .await?;
    // Nothing updated: someone else changed it between our read and our
    // write, so the caller's view is stale either way.
    let Some(updated) = updated else { return Err(DbError::VersionMismatch) };
    let after = updated.into_product()?;
    tx.record_event(NewEvent {
        organization_id: before.organization_id,
        brand_id: Some(before.brand_id),
        event_type: EventType::ProductUpdated,
        aggregate_type: "product",
        aggregate_id: product_id.to_string(),
        payload: json!({"before": to_json(before), "after": to_json(&after)}),
        actor: scope.principal().actor_id(),
    })
    .await?;
    tx.record_audit(AuditEntry {
        before: Some(to_json(before)),
        after: Some(to_json(&after)),
        ..scope.audit(
            before.organization_id,
            Some(before.brand_id),
            "product.update",
            "product",
            product_id.to_string(),
        )
    })
    .await?;
    tx.commit().await?;
    Ok(ProductWithVariants { product: after, variants: current.variants })
}

/// One variant the caller sees.
pub async fn get_variant(db: &Db, scope: &Scope, variant_id: VariantId) -> DbResult<Variant> {
    variant_row(db, scope, variant_id).await?.into_variant()
}

async fn variant_row(db: &Db, scope: &Scope, variant_id: VariantId) -> DbResult<VariantRow> {
    let row: VariantRow = db
        .read(concat!("SELECT ", variant_columns!(), " FROM variants v WHERE v.id = $1"))
        .bind(variant_id)
        .fetch_one()
        .await?;
    scope.check_brand(row.brand_id)?;
    Ok(row)
}

/// Adds a variant at the end of a product the caller sees, with
/// `variant.created` and an audit row.
pub async fn add_variant(
    db: &Db,
    scope: &Scope,
    product_id: ProductId,
    new: NewVariant,
) -> Result<Variant, CatalogError> {
    let product = get(db, scope, product_id).await?.product;
    let now = Timestamp::now();
    let variant = Variant {
        id: VariantId::new(),
        product_id,
        brand_id: product.brand_id,
        sku: new.sku,
        title: new.title,
        options: new.options,
        price: new.price,
        created_at: now,
        updated_at: now,
    };
    let snapshot = to_json(&variant);
    let mut tx = db.begin().await?;
    let position: i64 = tx
        .query("SELECT CAST(COALESCE(MAX(position), -1) + 1 AS BIGINT) FROM variants WHERE product_id = $1")
        .bind(product_id)
        .scalar()
        .await?;
    insert_variant(&mut tx, &variant, product.organization_id, position).await?;
    tx.record_event(NewEvent {
        organization_id: product.organization_id,
        brand_id: Some(product.brand_id),
        event_type: EventType::VariantCreated,
        aggregate_type: "product",
        aggregate_id: product_id.to_string(),
        payload: snapshot.clone(),
        actor: scope.principal().actor_id(),
    })
    .await?;
    tx.record_audit(AuditEntry {
        after: Some(snapshot),
        ..scope.audit(
            product.organization_id,
            Some(product.brand_id),
            "variant.create",
            "variant",
            variant.id.to_string(),
        )
    })
    .await?;
    tx.commit().await?;
    Ok(variant)
}

/// Changes a variant the caller sees, with `variant.updated` and an audit
/// row holding it before and after.
pub async fn update_variant(
    db: &Db,
    scope: &Scope,
    variant_id: VariantId,
    changes: VariantChanges,
) -> DbResult<Variant> {
    let row = variant_row(db, scope, variant_id).await?;
    let organization_id = row.organization_id;
    let before = row.into_variant()?;
    let mut after = before.clone();
    if let Some(title) = changes.title {
        after.title = title;
    }
    if let Some(options) = changes.options {
        after.options = options;
    }
    if let Some(price) = changes.price {
        after.price = price;
    }
    after.updated_at = Timestamp::now();
    let mut tx = db.begin().await?;
    tx.query(
        "UPDATE variants SET title = $1, options = $2, price_amount = $3, currency = $4, updated_at = $5
          WHERE id = $6",
    )
    .bind(after.title.clone())
    .bind(to_json(&after.options).to_string())
    .bind(after.price.amount)
    .bind(after.price.currency.clone())
    .bind(after.updated_at)
    .bind(variant_id)
    .execute()
    .await?;
    tx.record_event(NewEvent {
        organization_id,
        brand_id: Some(before.brand_id),
        event_type: EventType::VariantUpdated,
        aggregate_type: "product",
        aggregate_id: before.product_id.to_string(),
        payload: json!({"before": to_json(&before), "after": to_json(&after)}),
        actor: scope.principal().actor_id(),
    })
    .await?;
    tx.record_audit(AuditEntry {
        before: Some(to_json(&before)),
        after: Some(to_json(&after)),
        ..scope.audit(organization_id, Some(before.brand_id), "variant.update", "variant", variant_id.to_string())
    })
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// The storefront's catalog: the brand's `active` products, newest first,
/// with their variants, whatever their `available_at` (the storefront shows
/// an upcoming drop as not yet on sale).
///
/// Takes no scope because the storefront is public, so it returns only
/// public data: the early-access list is always empty here.
pub async fn active_for_storefront(
    db: &Db,
    brand_id: BrandId,
    page: &PageRequest,
) -> DbResult<Page<ProductWithVariants>> {
    let filter = ProductFilter { brand_id: Some(brand_id), q: None, status: Some(ProductStatus::Active) };
    let mut products = list(db, &Scope::system(), &filter, page).await?;
    for product in &mut products.data {
        product.product.early_access_emails.clear();
    }
    Ok(products)
}

/// One active product of a brand, for its public product page. Public data
/// only: the early-access list is emptied. Another brand's product, or one
/// not active, is `NotFound`.
pub async fn storefront_product(db: &Db, brand_id: BrandId, product_id: ProductId) -> DbResult<ProductWithVariants> {
    let mut product = get(db, &Scope::system(), product_id).await?;
    if product.product.brand_id != brand_id || product.product.status != ProductStatus::Active {
        return Err(DbError::NotFound);
    }
    product.product.early_access_emails.clear();
    Ok(product)
}

/// A variant as a shop's cart shows it again.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CartVariant {
    /// The variant.
    pub variant_id: VariantId,
    /// Its SKU.
    pub sku: String,
    /// Its product's title.
    pub product_title: String,
    /// Its own title.
    pub variant_title: String,
    /// Unit price, minor units.
    pub price_amount: i64,
    /// The price's currency.
    pub currency: String,
    /// When its product goes on sale, if later.
    pub available_at: Option<Timestamp>,
}

/// The variants of a brand's active products with these SKUs, for the
/// cart to show current prices. Public data only; an unknown SKU, another
/// brand's or an inactive product's is left out.
pub async fn storefront_variants_by_sku(db: &Db, brand_id: BrandId, skus: &[String]) -> DbResult<Vec<CartVariant>> {
    if skus.is_empty() {
        return Ok(Vec::new());
    }
    let mut query = db.read(
        "SELECT v.id AS variant_id, v.sku, p.title AS product_title, v.title AS variant_title,
                v.price_amount, v.currency, p.available_at
           FROM variants v JOIN products p ON p.id = v.product_id
          WHERE p.status = 'active' AND v.brand_id = ",
    );
    query.push_bind(brand_id).push(" AND ").push_in("v.sku", skus.iter().cloned());
    query.fetch_all().await
}
