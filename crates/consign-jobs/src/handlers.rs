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

/// Registers every handler and periodic job on `runner`.
pub fn register_all(runner: &mut Runner) {
    runner.register(MAINTENANCE_PURGE, maintenance_purge);
    runner.every(MAINTENANCE_PURGE, Duration::from_secs(60 * 60), json!({}));
}

/// Deletes expired idempotency keys and jobs done over a week ago. Deleting
/// what is already gone is a no-op, so running it twice is harmless.
async fn maintenance_purge(db: Db, _payload: Value) -> anyhow::Result<()> {
    let idempotency_keys =
        consign_db::idempotency::purge_expired(&db).await.context("cannot purge expired idempotency keys")?;
    let done_jobs = consign_db::jobs::purge_done(&db, Timestamp::now().plus_seconds(-DONE_JOB_RETENTION_SECONDS))
        .await
        .context("cannot purge done jobs")?;
    tracing::info!(idempotency_keys, done_jobs, "purged expired records");
    Ok(())
}
