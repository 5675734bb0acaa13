//! Every job handler, registered in one list.
//!
//! A handler is an `async fn(Db, serde_json::Value) -> anyhow::Result<()>`.
//! It may run more than once for one job (a worker can die after the work
//! and before recording it), so it must be idempotent. Its error is logged
//! and kept in `jobs.last_error`: keep secrets out of error messages.

use std::time::Duration;

use anyhow::Context as _;
use consign_db::Db;
use consign_domain::Timestamp;
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

/// Registers the channel handlers (`messages.deliver` and the
/// notifications) with the provider clients they send through.
pub fn register_channels(runner: &mut Runner, channels: std::sync::Arc<consign_channels::Channels>) {
    let with = channels.clone();
    runner.register(consign_db::channels::DELIVER_JOB, move |db, payload| {
        crate::deliver::deliver(with.clone(), db, payload)
    });
    let with = channels.clone();
    runner.register(consign_db::notifications::CUSTOMER_JOB, move |db, payload| {
        crate::notify::notify_customer(with.clone(), db, payload)
    });
    runner.register(consign_db::notifications::STAFF_DIGEST_JOB, move |db, payload| {
        crate::notify::staff_digest(channels.clone(), db, payload)
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
