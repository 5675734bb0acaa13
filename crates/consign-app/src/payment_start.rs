//! Starting a payment at a provider: after checkout, or when the customer
//! or staff try again. It runs after the order's transaction has committed,
//! never inside it (the outbox rule): the attempt row is written first, then
//! the provider is asked, then the answer is stored on the attempt.

use consign_db::orders::Order;
use consign_db::payments::{self, PaymentAttempt};
use consign_db::{Db, DbError, Scope};
use consign_payments::{Gateway, PaymentProvider as _, PaymentRequest, Provider, ProviderKind};

use crate::provider_accounts::{self, AccountError};

/// Why no attempt could be started. A provider that fails is not one of
/// these: it leaves a `failed` attempt, which the customer may retry.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The brand has no credentials for the provider.
    #[error("the provider is not set up for this brand")]
    NotSetUp,
    /// The brand's credentials could not be opened.
    #[error(transparent)]
    Account(#[from] AccountError),
    /// Storage failed, or refused the attempt (the order owes nothing, is
    /// closed, or made too many attempts).
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Starts a payment attempt for what the order owes and asks the provider
/// for the payment. Returns the stored attempt: `requires_action` with what
/// the customer's page needs, or `failed` with why.
pub async fn start_attempt(
    db: &Db,
    gateway: &Gateway,
    scope: &Scope,
    order: &Order,
    brand_slug: &str,
    kind: ProviderKind,
) -> Result<PaymentAttempt, StartError> {
    let provider = provider_accounts::provider(db, gateway, order.brand_id, kind).await?.ok_or(StartError::NotSetUp)?;
    start_attempt_with(db, &provider, scope, order, brand_slug, kind).await
}

/// [`start_attempt`] with the brand's provider client already opened (a
/// checkout opens it before placing the order, to refuse a provider that
/// is not set up before any stock is held).
pub async fn start_attempt_with(
    db: &Db,
    provider: &Provider,
    scope: &Scope,
    order: &Order,
    brand_slug: &str,
    kind: ProviderKind,
) -> Result<PaymentAttempt, StartError> {
    let attempt = payments::create_attempt(db, scope, order.id, kind.as_str()).await?;
    let request = PaymentRequest {
        attempt_id: attempt.id.to_string(),
        order_id: order.id.to_string(),
        order_number: order.number.clone(),
        brand_id: order.brand_id.to_string(),
        brand_slug: brand_slug.to_owned(),
        amount: attempt.amount,
        currency: attempt.currency.clone(),
    };
    let attempt = match provider.create_payment(&request).await {
        Ok(created) => payments::attempt_started(db, attempt.id, &created.reference, &created.client).await?,
        Err(error) => {
            tracing::warn!(order_id = %order.id, attempt_id = %attempt.id, provider = %kind, %error, "payment attempt could not start");
            payments::attempt_failed_to_start(db, attempt.id, &error.to_string()).await?
        }
    };
    Ok(attempt)
}
