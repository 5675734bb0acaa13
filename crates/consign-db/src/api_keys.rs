//! Brand-scoped API keys for integrations.
//!
//! A key is `csk_<prefix><secret>`; only its SHA-256 is stored, with the
//! prefix as the lookup index, and the presented hash is compared in
//! constant time.

use crate::{Db, DbError, DbResult, Page, PageRequest, Scope, brands};
use consign_domain::{ApiKeyId, BrandId, OrganizationId, Timestamp, UserId};
use serde::Serialize;

/// An API key as listed (never with its secret).
#[derive(Clone, Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ApiKey {
    /// Id.
    pub id: ApiKeyId,
    /// The brand it acts for.
    pub brand_id: BrandId,
    /// A label.
    pub name: String,
    /// The start of the key, to recognise it: `csk_<prefix>…`.
    pub prefix: String,
    /// When created.
    pub created_at: Timestamp,
    /// When revoked, if it was.
    pub revoked_at: Option<Timestamp>,
}

/// Stores a new key for a brand the caller sees.
pub async fn create(
    db: &Db,
    scope: &Scope,
    brand_id: BrandId,
    name: &str,
    prefix: &str,
    key_hash: &str,
) -> DbResult<ApiKey> {
    let brand = brands::get(db, scope, brand_id).await?;
    let key = ApiKey {
        id: ApiKeyId::new(),
        brand_id,
        name: name.to_owned(),
        prefix: prefix.to_owned(),
        created_at: Timestamp::now(),
        revoked_at: None,
    };
    let mut tx = db.begin().await?;
    tx.query(
        "INSERT INTO api_keys (id, organization_id, brand_id, name, prefix, key_hash, created_by, created_at, revoked_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL)",
    )
    .bind(key.id.to_string())
    .bind(brand.organization_id.to_string())
    .bind(brand_id.to_string())
    .bind(key.name.clone())
    .bind(key.prefix.clone())
    .bind(key_hash.to_owned())
    .bind(scope.user_id().map(|u: UserId| u.to_string()))
    .bind(key.created_at.as_micros())
    .execute()
    .await?;
    let mut audit = scope.audit(brand.organization_id, Some(brand_id), "api_key.create", "api_key", key.id.to_string());
    audit.after = Some(serde_json::json!({"name": key.name, "prefix": key.prefix}));
    tx.record_audit(audit).await?;
    tx.commit().await?;
    Ok(key)
}

/// Keys of the brands the caller sees, optionally of one brand.
pub async fn list(db: &Db, scope: &Scope, brand_id: Option<BrandId>, page: &PageRequest) -> DbResult<Page<ApiKey>> {
    let mut query = db.read("SELECT id, brand_id, name, prefix, created_at, revoked_at FROM api_keys WHERE 1 = 1");
    scope.push_brand_filter(&mut query, "brand_id");
    if let Some(brand_id) = brand_id {
        query.push(" AND brand_id = ").push_bind(brand_id.to_string());
    }
    if let Some(after) = &page.after {
        query.push(" AND id < ").push_bind(after.clone());
    }
    query.push(" ORDER BY id DESC LIMIT ").push_bind(page.fetch_limit());
    let rows: Vec<ApiKey> = query.fetch_all().await?;
    Ok(Page::from_rows(rows, page, |k| k.id.to_string()))
}

/// One key the caller sees.
pub async fn get(db: &Db, scope: &Scope, key_id: ApiKeyId) -> DbResult<ApiKey> {
    let key: ApiKey = db
        .read("SELECT id, brand_id, name, prefix, created_at, revoked_at FROM api_keys WHERE id = $1")
        .bind(key_id.to_string())
        .fetch_one()
        .await?;
    scope.check_brand(key.brand_id)?;
    Ok(key)
}

/// Revokes a key; it stops working at once. Idempotent.
pub async fn revoke(db: &Db, scope: &Scope, key_id: ApiKeyId) -> DbResult<ApiKey> {
    let key = get(db, scope, key_id).await?;
    let mut tx = db.begin().await?;
    let revoked = tx
        .query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(Timestamp::now().as_micros())
        .bind(key_id.to_string())
        .execute()
        .await?;
    if revoked == 1 {
        let organization_id: OrganizationId =
            tx.query("SELECT organization_id FROM api_keys WHERE id = $1").bind(key_id).scalar().await?;
        tx.record_audit(scope.audit(
            organization_id,
            Some(key.brand_id),
            "api_key.revoke",
            "api_key",
            key_id.to_string(),
        ))
        .await?;
        // Its live sockets end too, on every instance.
        let revoked = crate::access::AccessRevoked { api_key_id: Some(key_id), ..Default::default() };
        crate::access::record_revoked(&mut tx, organization_id, revoked).await?;
    }
    tx.commit().await?;
    get(db, scope, key_id).await
}

/// The scope of a live key whose prefix and hash match, or `NotFound`.
/// `hashes_equal` is the caller's constant-time comparison.
pub async fn authenticate(db: &Db, prefix: &str, hashes_equal: impl Fn(&str) -> bool) -> DbResult<Scope> {
    #[derive(sqlx::FromRow)]
    struct Row {
        id: ApiKeyId,
        brand_id: BrandId,
        organization_id: OrganizationId,
        key_hash: String,
    }
    let row: Option<Row> = db
        .read("SELECT id, brand_id, organization_id, key_hash FROM api_keys WHERE prefix = $1 AND revoked_at IS NULL")
        .bind(prefix.to_owned())
        .fetch_optional()
        .await?;
    match row {
        Some(row) if hashes_equal(&row.key_hash) => Ok(Scope::for_api_key(row.id, row.brand_id, row.organization_id)),
        _ => Err(DbError::NotFound),
    }
}
