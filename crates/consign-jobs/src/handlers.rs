//! Every job handler, registered in one list.
//!
//! A handler is an `async fn(Db, serde_json::Value) -> anyhow::Result<()>`.
//! It may run more than once for one job (a worker can die after the work
//! and before recording it), so it must be idempotent. Its error is logged
//! and kept in `jobs.last_error`: keep secrets out of error messages.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use consign_db::Db;
use consign_domain::Timestamp;
use futures_util::future::BoxFuture;
use serde_json::{Value, json};

use crate::Runner;

/// Kind of the hourly clean-up job.
pub const MAINTENANCE_PURGE: &str = "maintenance.purge";

/// How long finished jobs are kept, for staff to look back at.
const DONE_JOB_RETENTION_SECONDS: i64 = 7 * 24 * 60 * 60;

/// Kind of the job that makes a paid order's fulfillment orders.
pub const FULFILLMENT_CREATE_FOR_ORDER: &str = "fulfillment.create_for_order";

/// Kind of the periodic sweep that expires unpaid orders.
pub const ORDERS_EXPIRE: &str = "orders.expire_reservations";

/// How often unpaid orders past their hold are swept.
const EXPIRY_INTERVAL: Duration = Duration::from_secs(30);

/// Registers every handler and periodic job on `runner`.
pub fn register_all(runner: &mut Runner) {
    runner.register(MAINTENANCE_PURGE, maintenance_purge);
    runner.every(MAINTENANCE_PURGE, Duration::from_secs(60 * 60), json!({}));
    runner.register(FULFILLMENT_CREATE_FOR_ORDER, create_fulfillment_orders);
    runner.register(ORDERS_EXPIRE, expire_orders);
    runner.every(ORDERS_EXPIRE, EXPIRY_INTERVAL, json!({}));
}

/// Kind of the hourly job that deletes uploads never sent in a message.
pub const UPLOADS_PURGE_UNSENT: &str = "uploads.purge_unsent";

/// Deletes a stored file by its storage key. The file store belongs to
/// `consign-web`, which the worker does not know, so the binary hands the
/// deletion in.
pub type DeleteFile = Arc<dyn Fn(String) -> BoxFuture<'static, anyhow::Result<()>> + Send + Sync>;

/// Registers the hourly clean-up of files uploaded more than `ttl` ago and
/// never attached to a message (anyone with an order's link can upload,
/// so unsent files must not pile up).
pub fn register_uploads(runner: &mut Runner, delete_file: DeleteFile, ttl: Duration) {
    runner.register(UPLOADS_PURGE_UNSENT, move |db, _payload| purge_unsent_uploads(db, delete_file.clone(), ttl));
    runner.every(UPLOADS_PURGE_UNSENT, Duration::from_secs(60 * 60), json!({}));
}

/// Deletes unsent uploads older than `ttl`, record first: once the record
/// is gone no message can claim the file, so its bytes are never missing
/// under a sent message (a file whose deletion fails is only left over).
async fn purge_unsent_uploads(db: Db, delete_file: DeleteFile, ttl: Duration) -> anyhow::Result<()> {
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

/// Registers the channel handlers (`messages.deliver` and the
/// notifications) with the provider clients they send through and the
/// keyring the instance secrets (reply-address and order-token keys) are
/// sealed with.
pub fn register_channels(
    runner: &mut Runner,
    channels: std::sync::Arc<consign_channels::Channels>,
    keyring: consign_payments::Keyring,
) {
    let (with, key) = (channels.clone(), keyring.clone());
    runner.register(consign_db::channels::DELIVER_JOB, move |db, payload| {
        crate::deliver::deliver(with.clone(), key.clone(), db, payload)
    });
    let (with, key) = (channels.clone(), keyring.clone());
    runner.register(consign_db::notifications::CUSTOMER_JOB, move |db, payload| {
        crate::notify::notify_customer(with.clone(), key.clone(), db, payload)
    });
    let (with, key) = (channels.clone(), keyring.clone());
    runner.register(consign_db::notifications::STAFF_DIGEST_JOB, move |db, payload| {
        crate::notify::staff_digest(with.clone(), key.clone(), db, payload)
    });
    runner.register(consign_db::alerts::NOTICE_JOB, move |db, payload| {
        crate::notify::staff_alert(channels.clone(), db, payload)
    });
}

/// Makes the fulfillment orders of a paid order. Idempotent: an order that
/// has them is left alone.
async fn create_fulfillment_orders(db: Db, payload: Value) -> anyhow::Result<()> {
    let order_id: consign_domain::OrderId = payload["order_id"]
        .as_str()
        .context("payload has no order_id")?
        .parse()
        .context("payload's order_id is not an id")?;
    let created = consign_db::fulfillment::create_for_order(&db, order_id)
        .await
        .with_context(|| format!("cannot create fulfillment orders for order {order_id}"))?;
    tracing::info!(%order_id, created, "fulfillment orders created");
    Ok(())
}

/// Expires unpaid orders whose stock hold ran out, in batches until none is
/// due. Each order flips once whatever else runs, so overlapping sweeps are
/// harmless.
async fn expire_orders(db: Db, _payload: Value) -> anyhow::Result<()> {
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
/// have passed. Deleting
/// what is already gone is a no-op, so running it twice is harmless.
async fn maintenance_purge(db: Db, _payload: Value) -> anyhow::Result<()> {
    let idempotency_keys =
        consign_db::idempotency::purge_expired(&db).await.context("cannot purge expired idempotency keys")?;
    let done_jobs = consign_db::jobs::purge_done(&db, Timestamp::now().plus_seconds(-DONE_JOB_RETENTION_SECONDS))
        .await
        .context("cannot purge done jobs")?;
    // Far older than any webhook signature still accepted.
    let webhook_tokens = consign_db::channels::purge_webhook_tokens(&db, Timestamp::now().plus_seconds(-24 * 60 * 60))
        .await
        .context("cannot purge webhook tokens")?;
    let rate_limit_counters = consign_db::rate_limits::purge_expired(&db, Timestamp::now())
        .await
        .context("cannot purge rate-limit counters")?;
    tracing::info!(idempotency_keys, done_jobs, webhook_tokens, rate_limit_counters, "purged expired records");
    Ok(())
}
