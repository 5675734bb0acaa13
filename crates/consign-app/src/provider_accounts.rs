//! A brand's payment provider accounts: its sealed credentials opened, and
//! a provider client built from them. Checkout, the callbacks and webhooks
//! and the money jobs all open credentials here, so the keyring and its
//! additional data are used one way.

use consign_db::{Db, DbError, payments};
use consign_domain::BrandId;
use consign_payments::{Credentials, Gateway, PaymentError, Provider, ProviderKind, Sealed};

/// Why a brand's provider account could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// No master key is configured, so sealed credentials cannot be opened.
    #[error(transparent)]
    NoKeyring(PaymentError),
    /// The sealed credentials do not open or do not parse (another key, a
    /// damaged row). The message names the key id at most, never key
    /// material or plaintext.
    #[error("cannot open the brand's provider credentials: {0}")]
    Unreadable(String),
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// The brand's credentials for `kind`, opened. `None` when it has none.
pub async fn credentials(
    db: &Db,
    gateway: &Gateway,
    brand_id: BrandId,
    kind: ProviderKind,
) -> Result<Option<Credentials>, AccountError> {
    let Some(row) = payments::sealed_credentials(db, brand_id, kind.as_str()).await? else {
        return Ok(None);
    };
    let keyring = gateway.keyring().map_err(AccountError::NoKeyring)?;
    let sealed = Sealed { key_id: row.key_id, nonce: row.nonce, ciphertext: row.ciphertext };
    let aad = payments::credentials_aad(row.organization_id, row.brand_id, &row.provider);
    let plaintext = keyring.open(&sealed, &aad).map_err(|e| AccountError::Unreadable(e.to_string()))?;
    let credentials = Credentials::from_sealable(&plaintext).map_err(|e| AccountError::Unreadable(e.to_string()))?;
    Ok(Some(credentials))
}

/// A provider client for the brand, or `None` when it has no credentials.
pub async fn provider(
    db: &Db,
    gateway: &Gateway,
    brand_id: BrandId,
    kind: ProviderKind,
) -> Result<Option<Provider>, AccountError> {
    Ok(credentials(db, gateway, brand_id, kind).await?.map(|c| gateway.provider(c)))
}
