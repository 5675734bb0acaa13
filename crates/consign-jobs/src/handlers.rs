//! Every job handler, registered in one list: [`register_every_job`].
//!
//! A handler is an `async fn(Db, Payload, …) -> JobResult`, where the
//! payload is the kind's type from `consign_db::jobs::kinds` and `…` are the
//! [`Services`] it calls. It may run more than once for one job (a worker
//! can die after the work and before recording it), so it must be
//! idempotent. Its error is logged and kept in `jobs.last_error`: keep
//! secrets out of error messages.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use consign_channels::Channels;
use consign_db::Db;
use consign_db::jobs::kinds::{
    ExpireReservations, FulfillOrder, ParkStaleWebhooks, PurgeMaintenance, PurgeUnsentUploads, SweepStuckPayments,
};
use consign_domain::Timestamp;
use consign_payments::{Gateway, Keyring};
use futures_util::future::BoxFuture;

use crate::{JobResult, Runner, accounts, deliver, money_jobs, notify};

/// How long finished jobs are kept, for staff to look back at.
const DONE_JOB_RETENTION_SECONDS: i64 = 7 * 24 * 60 * 60;

/// How often unpaid orders past their hold are swept.
const EXPIRY_INTERVAL: Duration = Duration::from_secs(30);

/// How often stuck money work is looked for.
const STUCK_SWEEP_INTERVAL: Duration = Duration::from_secs(10 * 60);

const HOURLY: Duration = Duration::from_secs(60 * 60);

/// Deletes a stored file by its storage key. The file store belongs to
/// `consign-web`, which the worker does not know, so the binary hands the
/// deletion in.
pub type DeleteFile = Arc<dyn Fn(String) -> BoxFuture<'static, anyhow::Result<()>> + Send + Sync>;

/// What the handlers call besides the database (which the [`Runner`]
/// passes to each): the binary and the test kit build it from their
/// configuration.
#[derive(Clone)]
pub struct Services {
    /// Payment providers, for refunds and PayPal captures.
    pub gateway: Arc<Gateway>,
    /// The master keyring the instance secrets (reply-address and
    /// order-token keys) are sealed with.
    pub keyring: Keyring,
    /// The email, SMS and WhatsApp clients and their settings.
    pub channels: Arc<Channels>,
    /// Deletes an upload's stored bytes.
    pub delete_file: DeleteFile,
    /// How old an upload never attached to a sent message must be before
    /// it is deleted (anyone with an order's link can upload, so unsent
    /// files must not pile up).
    pub unsent_upload_ttl: Duration,
}

/// Registers the handler of every job kind, once each, and every periodic
/// job. The binary's worker and the test kit's `run_jobs` both use this,
/// so tests run the handlers production runs.
pub fn register_every_job(runner: &mut Runner, services: Services) {
    let Services { gateway, keyring, channels, delete_file, unsent_upload_ttl } = services;

    // Orders and housekeeping.
    runner.handle(create_fulfillment_orders);
    runner.handle(expire_orders);
    runner.every_kind(EXPIRY_INTERVAL, ExpireReservations {});
    runner.handle(maintenance_purge);
    runner.every_kind(HOURLY, PurgeMaintenance {});
    runner.handle(move |db, job| purge_unsent_uploads(db, delete_file.clone(), unsent_upload_ttl, job));
    runner.every_kind(HOURLY, PurgeUnsentUploads {});

    // Money.
    let with = gateway.clone();
    runner.handle(move |db, job| money_jobs::send_refund(db, with.clone(), job));
    runner.handle(move |db, job| money_jobs::apply_webhook(db, gateway.clone(), job));
    runner.handle(money_jobs::park_stale);
    runner.every_kind(HOURLY, ParkStaleWebhooks {});
    runner.handle(money_jobs::sweep_stuck);
    runner.every_kind(STUCK_SWEEP_INTERVAL, SweepStuckPayments {});

    // Messages and notifications.
    let (with, key) = (channels.clone(), keyring.clone());
    runner.handle(move |db, job| deliver::deliver(with.clone(), key.clone(), db, job));
    let (with, key) = (channels.clone(), keyring.clone());
    runner.handle(move |db, job| notify::notify_customer(with.clone(), key.clone(), db, job));
    let (with, key) = (channels.clone(), keyring.clone());
    runner.handle(move |db, job| notify::staff_digest(with.clone(), key.clone(), db, job));
    let with = channels.clone();
    runner.handle(move |db, job| notify::staff_alert(with.clone(), db, job));

    // Accounts.
    let (with, key) = (channels.clone(), keyring.clone());
    runner.handle(move |db, job| accounts::email_invitation(with.clone(), key.clone(), db, job));
    runner.handle(move |db, job| accounts::email_password_reset(channels.clone(), keyring.clone(), db, job));
}

/// Deletes unsent uploads older than `ttl`, record first: once the record
/// is gone no message can claim the file, so its bytes are never missing
/// under a sent message (a file whose deletion fails is only left over).
async fn purge_unsent_uploads(db: Db, delete_file: DeleteFile, ttl: Duration, _job: PurgeUnsentUploads) -> JobResult {
    let before = Timestamp::now().plus_seconds(-i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX));
    let mut purged = 0u64;
    loop {
        let batch = consign_db::messages::attachments::unsent_before(&db, before, 500)
            .await
            .context("cannot list unsent uploads")?;
        if batch.is_empty() {
            break;
        }
        for file in batch {
            if !consign_db::messages::attachments::purge_unsent(&db, file.id)
                .await
                .context("cannot delete an unsent upload")?
            {
                continue;
            }
            purged += 1;
            if let Err(error) = delete_file(file.storage_key).await {
                tracing::warn!(error = %format!("{error:#}"), attachment_id = %file.id, "could not delete an unsent upload's file");
            }
        }
    }
    tracing::info!(purged, "purged unsent uploads");
    Ok(())
}

/// Makes the fulfillment orders of a paid order. Idempotent: an order that
/// has them is left alone.
async fn create_fulfillment_orders(db: Db, FulfillOrder { order_id }: FulfillOrder) -> JobResult {
    let created = consign_db::fulfillment::create_for_order(&db, order_id)
        .await
        .with_context(|| format!("cannot create fulfillment orders for order {order_id}"))?;
    tracing::info!(%order_id, created, "fulfillment orders created");
    Ok(())
}

/// Expires unpaid orders whose stock hold ran out, in batches until none is
/// due. Each order flips once whatever else runs, so overlapping sweeps are
/// harmless.
async fn expire_orders(db: Db, _job: ExpireReservations) -> JobResult {
    const BATCH: i64 = 500;
    loop {
        let expired = consign_db::orders::expiry::expire_due(&db, Timestamp::now(), BATCH)
            .await
            .context("cannot expire unpaid orders")?;
        if expired > 0 {
            tracing::info!(expired, "unpaid orders expired");
        }
        if (expired as i64) < BATCH {
            return Ok(());
        }
    }
}

/// Deletes expired idempotency keys, jobs done over a week ago, webhook
/// replay tokens over a day old and the counters of rate-limit windows that
/// have passed. Deleting what is already gone is a no-op, so running it
/// twice is harmless.
async fn maintenance_purge(db: Db, _job: PurgeMaintenance) -> JobResult {
    let idempotency_keys =
        consign_db::idempotency::purge_expired(&db).await.context("cannot purge expired idempotency keys")?;
    let done_jobs = consign_db::jobs::purge_done(&db, Timestamp::now().plus_seconds(-DONE_JOB_RETENTION_SECONDS))
        .await
        .context("cannot purge done jobs")?;
    // Far older than any webhook signature still accepted.
    let webhook_tokens = consign_db::inbound::purge_webhook_tokens(&db, Timestamp::now().plus_seconds(-24 * 60 * 60))
        .await
        .context("cannot purge webhook tokens")?;
    let rate_limit_counters = consign_db::rate_limits::purge_expired(&db, Timestamp::now())
        .await
        .context("cannot purge rate-limit counters")?;
    tracing::info!(idempotency_keys, done_jobs, webhook_tokens, rate_limit_counters, "purged expired records");
    Ok(())
}
