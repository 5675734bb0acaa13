//! Sending a pending refund to its provider and settling it with the
//! provider's answer. The worker's `send_refund` job calls it after the
//! refund's transaction has committed; delivery is at least once, so it is
//! idempotent: a refund already settled is not sent again, and the provider
//! call carries the refund id as its idempotency key.

use consign_db::payments::{self, RefundResult};
use consign_db::{Db, DbError};
use consign_domain::PaymentId;
use consign_payments::{Gateway, PaymentError, PaymentProvider as _, ProviderKind, RefundRequest, RefundState};

use crate::provider_accounts::{self, AccountError};

/// Why a refund was not sent yet. Each is worth another try later. A
/// provider that refuses is not one of these: the refund is settled failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The provider could not be reached, or answered that it may work later.
    #[error("refund {refund_id} not sent yet: {error}")]
    NotYet {
        /// The refund.
        refund_id: PaymentId,
        /// What the provider said.
        error: PaymentError,
    },
    /// The brand's credentials could not be opened.
    #[error(transparent)]
    Account(#[from] AccountError),
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Sends the refund if it is still pending and unsent, and settles it with
/// the provider's answer: succeeded, pending (a webhook settles it later)
/// or failed (refused, or nothing left to refund it with).
pub async fn send_refund(db: &Db, gateway: &Gateway, refund_id: PaymentId) -> Result<(), SendError> {
    let refund = payments::refund_to_send(db, refund_id).await?;
    if refund.status != "pending" || refund.provider_reference.is_some() {
        return Ok(());
    }
    let fail = |failure: String| async move {
        payments::settle_refund(db, refund_id, None, RefundResult::Failed, Some(&failure)).await
    };
    let Some(payment_reference) = refund.payment_reference.clone() else {
        fail("the captured payment has no provider id".into()).await?;
        return Ok(());
    };
    let client = match ProviderKind::parse(&refund.provider) {
        Some(kind) => provider_accounts::provider(db, gateway, refund.brand_id, kind).await?,
        None => None,
    };
    let Some(client) = client else {
        fail("the provider is no longer set up".into()).await?;
        return Ok(());
    };
    let request = RefundRequest {
        refund_id: refund_id.to_string(),
        payment_reference,
        order_id: refund.order_id.to_string(),
        brand_id: refund.brand_id.to_string(),
        amount: refund.amount,
        currency: refund.currency.clone(),
    };
    match client.refund(&request).await {
        Ok(outcome) => {
            let result = match outcome.state {
                RefundState::Succeeded => RefundResult::Succeeded,
                RefundState::Pending => RefundResult::Pending,
                RefundState::Failed => RefundResult::Failed,
            };
            let failure = (result == RefundResult::Failed).then_some("the provider refused the refund");
            payments::settle_refund(db, refund_id, Some(&outcome.reference), result, failure).await?;
            tracing::info!(%refund_id, provider = %refund.provider, ?result, "refund sent");
            Ok(())
        }
        Err(error) if error.is_transient() => Err(SendError::NotYet { refund_id, error }),
        Err(error) => {
            fail(error.to_string()).await?;
            tracing::warn!(%refund_id, provider = %refund.provider, %error, "refund refused");
            Ok(())
        }
    }
}
