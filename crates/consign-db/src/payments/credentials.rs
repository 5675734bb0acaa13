//! Brands' provider credentials, sealed: this module stores and lists
//! them and never sees one in the clear.

use consign_domain::{BrandId, OrganizationId, Timestamp};
use serde::Serialize;
use serde_json::json;

use crate::{Db, DbError, DbResult, Scope};

/// The associated data credentials are sealed with: tenant and purpose.
pub fn credentials_aad(organization_id: OrganizationId, brand_id: BrandId, provider: &str) -> String {
    format!("org:{organization_id}/brand:{brand_id}/payment-provider:{provider}")
}

// ---------------------------------------------------------------------------
// Credentials

/// A sealed value as stored (see `consign_payments::Sealed`).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SealedRow {
    /// Owner.
    pub organization_id: OrganizationId,
    /// Brand.
    pub brand_id: BrandId,
    /// `stripe`, `razorpay` or `paypal`.
    pub provider: String,
    /// Which master key sealed it.
    pub key_id: String,
    /// Nonce, hex.
    pub nonce: String,
    /// Ciphertext, hex.
    pub ciphertext: String,
}

/// What may be shown about a brand's provider settings: never a secret.
#[derive(Clone, Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ProviderSettings {
    /// `stripe`, `razorpay` or `paypal`.
    pub provider: String,
    /// The non-secret identifier (Stripe publishable key, Razorpay key id,
    /// PayPal client id), if any.
    pub public_id: Option<String>,
    /// Set at.
    pub created_at: Timestamp,
    /// Last changed at.
    pub updated_at: Timestamp,
}

/// Stores (or replaces) a brand's sealed credentials for a provider.
pub async fn put_credentials(
    db: &Db,
    scope: &Scope,
    brand_id: BrandId,
    provider: &str,
    public_id: Option<&str>,
    sealed: (&str, &str, &str),
) -> DbResult<ProviderSettings> {
    let brand = crate::brands::get(db, scope, brand_id).await?;
    let (key_id, nonce, ciphertext) = sealed;
    let now = Timestamp::now();
    let mut tx = db.begin().await?;
    tx.query(
        "INSERT INTO payment_provider_credentials (organization_id, brand_id, provider, public_id, key_id, nonce, ciphertext, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
         ON CONFLICT (brand_id, provider) DO UPDATE SET public_id = excluded.public_id, key_id = excluded.key_id,
             nonce = excluded.nonce, ciphertext = excluded.ciphertext, updated_at = excluded.updated_at",
    )
    .bind(brand.organization_id)
    .bind(brand_id)
    .bind(provider.to_owned())
    .bind(public_id.map(str::to_owned))
    .bind(key_id.to_owned())
    .bind(nonce.to_owned())
    .bind(ciphertext.to_owned())
    .bind(now)
    .execute()
    .await?;
    let mut audit =
        scope.audit(brand.organization_id, Some(brand_id), "brand.set_payment_provider", "brand", brand_id.to_string());
    // Which provider and its public id only: never the secrets.
    audit.after = Some(json!({"provider": provider, "public_id": public_id}));
    tx.record_audit(audit).await?;
    tx.commit().await?;
    let settings = list_credentials(db, scope, brand_id).await?;
    settings.into_iter().find(|s| s.provider == provider).ok_or(DbError::NotFound)
}

/// The providers a brand has credentials for.
pub async fn list_credentials(db: &Db, scope: &Scope, brand_id: BrandId) -> DbResult<Vec<ProviderSettings>> {
    scope.check_brand(brand_id)?;
    db.read(
        "SELECT provider, public_id, created_at, updated_at FROM payment_provider_credentials
          WHERE brand_id = $1 ORDER BY provider",
    )
    .bind(brand_id)
    .fetch_all()
    .await
}

/// A brand's sealed credentials for a provider. No scope: the storefront,
/// webhooks and jobs act for the brand itself; the value is sealed and its
/// associated data binds it to the brand.
pub async fn sealed_credentials(db: &Db, brand_id: BrandId, provider: &str) -> DbResult<Option<SealedRow>> {
    db.read(
        "SELECT organization_id, brand_id, provider, key_id, nonce, ciphertext FROM payment_provider_credentials
          WHERE brand_id = $1 AND provider = $2",
    )
    .bind(brand_id)
    .bind(provider.to_owned())
    .fetch_optional()
    .await
}

/// Every sealed credential not sealed under `newest_key_id` (for rotation).
pub async fn sealed_under_older_keys(db: &Db, newest_key_id: &str) -> DbResult<Vec<SealedRow>> {
    db.read(
        "SELECT organization_id, brand_id, provider, key_id, nonce, ciphertext FROM payment_provider_credentials
          WHERE key_id <> $1 ORDER BY brand_id, provider",
    )
    .bind(newest_key_id.to_owned())
    .fetch_all()
    .await
}

/// Replaces a sealed value if it is still the one read (`old_key_id`).
/// Answers whether it was replaced.
pub async fn reseal(db: &Db, row: &SealedRow, sealed: (&str, &str, &str)) -> DbResult<bool> {
    let (key_id, nonce, ciphertext) = sealed;
    let mut tx = db.begin().await?;
    let changed = tx
        .query(
            "UPDATE payment_provider_credentials SET key_id = $1, nonce = $2, ciphertext = $3
              WHERE brand_id = $4 AND provider = $5 AND key_id = $6 AND nonce = $7",
        )
        .bind(key_id.to_owned())
        .bind(nonce.to_owned())
        .bind(ciphertext.to_owned())
        .bind(row.brand_id)
        .bind(row.provider.clone())
        .bind(row.key_id.clone())
        .bind(row.nonce.clone())
        .execute()
        .await?;
    tx.commit().await?;
    Ok(changed == 1)
}

// ---------------------------------------------------------------------------
// Attempts
