//! `messages.deliver`: sends one staff reply through
//! `consign_app::outbound::send` and records `sent` with the provider's id,
//! or the failure.
//!
//! A temporary failure (network, 5xx, 429) fails the job with
//! [`JobError::Retry`], so the queue retries it with backoff; after
//! `max_delivery_attempts` tries, or at once for a final refusal (a 4xx, an
//! unconfigured channel), the delivery is `failed` and the job ends `done`.
//! The send and its record are two steps: a worker dying between them sends
//! again on retry (at least once), which is why the email's `Message-ID` is
//! derived from the message id, so the recipient's mail system can
//! recognise the copy. Before its first try a reply passes the outbound
//! limits; one refused is `failed` with the reason and never sent.

use std::sync::Arc;

use anyhow::Context as _;
use consign_app::outbound::{self, Outbound, Outcome, Source};
use consign_channels::Channels;
use consign_db::Db;
use consign_db::deliveries;
use consign_db::jobs::kinds::DeliverMessage;
use consign_domain::messaging::DeliveryStatus;
use consign_payments::Keyring;

use crate::{JobError, JobResult};

/// Runs one [`DeliverMessage`] job.
pub async fn deliver(
    channels: Arc<Channels>,
    keyring: Keyring,
    db: Db,
    DeliverMessage { message_id }: DeliverMessage,
) -> JobResult {
    let work = deliveries::work(&db, message_id).await.context("cannot load the delivery")?;
    if work.status != DeliveryStatus::Queued {
        return Ok(());
    }
    let subject = format!("Your order #{} from {}", work.order_number, work.brand_name);
    let message = Outbound {
        source: Source::Reply {
            message_id: work.message_id,
            brand_slug: &work.brand_slug,
            previous_email: work.previous_email.as_ref(),
        },
        channel: work.channel,
        recipient: &work.recipient,
        subject: &subject,
        body: &work.body,
        brand_id: work.brand_id,
        sender_name: &work.brand_name,
        reply_thread: Some(work.thread_id),
        to_customer: true,
        attempts: work.attempts,
    };
    match outbound::send(&channels, &db, &keyring, &message).await? {
        Outcome::Refused(reason) => {
            deliveries::record_failure(&db, message_id, &reason, true).await.context("cannot record the refusal")?;
            tracing::warn!(%message_id, %reason, "message not sent");
            Ok(())
        }
        Outcome::Sent { provider_id } => {
            deliveries::mark_sent(&db, message_id, &provider_id).await.context("cannot record the send")?;
            tracing::info!(%message_id, channel = %work.channel, "message sent");
            Ok(())
        }
        Outcome::Failed { reason, is_final } => {
            deliveries::record_failure(&db, message_id, &reason, is_final)
                .await
                .context("cannot record the failure")?;
            if is_final {
                tracing::warn!(%message_id, channel = %work.channel, "delivery failed for good");
                Ok(())
            } else {
                Err(JobError::Retry(anyhow::anyhow!("{reason}")))
            }
        }
    }
}
