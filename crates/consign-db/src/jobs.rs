//! The job queue's storage: enqueue, claim, finish, and the clean-up that
//! keeps the queue moving when a worker dies.
//!
//! Every kind of job is a payload type in [`kinds`] that names its stored
//! kind, its max attempts and its dedupe key. Jobs are usually enqueued
//! inside a business transaction ([`crate::Tx::enqueue`]), so a job exists
//! if and only if the change that asked for it committed; [`enqueue_kind`]
//! is for code outside one.
//!
//! A job's states: `queued` → (claimed) `running` → `done`; a failure puts it
//! back to `queued` with a later `run_at` ([`fail`]), or to `dead` once it
//! has used its `max_attempts`, or at once when retrying cannot help
//! ([`give_up`]). A worker holds a claimed job for a lease
//! (`locked_until`); if it dies, [`reap`] puts the job back in the queue
//! after the lease runs out. Delivery is therefore at least once, and every
//! handler must be idempotent.
//!
//! Several instances may share the database. Claiming is the one decision
//! that must be exclusive: PostgreSQL locks the chosen rows with
//! `FOR UPDATE SKIP LOCKED`, so concurrent claimers take disjoint rows
//! without waiting for each other; SQLite runs the same statement inside
//! `BEGIN IMMEDIATE`, which lets one writer in at a time. Every later write
//! about a claimed job names the attempt it claimed ([`ClaimedJob`]), so a
//! worker whose lease ran out cannot finish a job another worker now holds.
//!
//! Times come from the application clock (`Timestamp::now`), like every
//! other timestamp Consign writes; instances are expected to keep their
//! clocks in sync (NTP), and leases are minutes long, far above any skew.

use std::time::Duration;

use consign_domain::{JobId, Timestamp};
use serde::Serialize;
use serde_json::Value;

use crate::{Db, DbResult, NewJob, Page, PageRequest};

pub mod kinds;

/// How many runs a job of `kind` gets before it goes `dead`: its
/// [`kinds::JobKind::MAX_ATTEMPTS`], read from [`kinds::ALL`]. A kind not
/// listed (a test's, or one a newer release enqueued) gets the default.
pub fn max_attempts(kind: &str) -> i64 {
    kinds::ALL.iter().find(|(known, _)| *known == kind).map_or(kinds::DEFAULT_MAX_ATTEMPTS, |(_, attempts)| *attempts)
}

/// Longest `last_error` kept, in characters: an error chain can be long,
/// and the column is for a person to read.
const MAX_ERROR_CHARS: usize = 2000;

/// Where a job is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Waiting for `run_at` and a free worker.
    Queued,
    /// Claimed by a worker until `locked_until`.
    Running,
    /// Finished successfully.
    Done,
    /// Failed `max_attempts` times; kept for a person to look at.
    Dead,
}

impl JobStatus {
    /// The stored and wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Done => "done",
            Self::Dead => "dead",
        }
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for JobStatus {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "queued" => Ok(Self::Queued),
            "running" => Ok(Self::Running),
            "done" => Ok(Self::Done),
            "dead" => Ok(Self::Dead),
            other => anyhow::bail!("unknown job status `{other}`"),
        }
    }
}

/// A job as stored, for staff visibility.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Job {
    /// Id.
    pub id: JobId,
    /// The handler's name, such as `maintenance.purge`.
    pub kind: String,
    /// Its input (the stored text as a string if it is not JSON).
    pub payload: Value,
    /// Jobs with the same key are enqueued once.
    pub dedupe_key: Option<String>,
    /// Where it is in its life.
    pub status: JobStatus,
    /// Runs started so far.
    pub attempts: i64,
    /// Runs allowed before it goes `dead`.
    pub max_attempts: i64,
    /// Not before this time.
    pub run_at: Timestamp,
    /// While `running`: when the worker's lease runs out.
    pub locked_until: Option<Timestamp>,
    /// The last failure's message.
    pub last_error: Option<String>,
    /// When enqueued.
    pub created_at: Timestamp,
    /// When last changed.
    pub updated_at: Timestamp,
}

#[derive(sqlx::FromRow)]
struct JobRow {
    id: JobId,
    kind: String,
    payload: String,
    dedupe_key: Option<String>,
    status: String,
    attempts: i64,
    max_attempts: i64,
    run_at: Timestamp,
    locked_until: Option<Timestamp>,
    last_error: Option<String>,
    created_at: Timestamp,
    updated_at: Timestamp,
}

const JOB_COLUMNS: &str = "id, kind, payload, dedupe_key, status, attempts, max_attempts, run_at, locked_until, last_error, created_at, updated_at";

impl TryFrom<JobRow> for Job {
    type Error = anyhow::Error;

    fn try_from(row: JobRow) -> anyhow::Result<Self> {
        // A payload that is not JSON is shown as the text it is rather than
        // hiding the row: this view exists to find broken jobs.
        let payload = serde_json::from_str(&row.payload).unwrap_or(Value::String(row.payload));
        Ok(Self {
            id: row.id,
            kind: row.kind,
            payload,
            dedupe_key: row.dedupe_key,
            status: row.status.parse()?,
            attempts: row.attempts,
            max_attempts: row.max_attempts,
            run_at: row.run_at,
            locked_until: row.locked_until,
            last_error: row.last_error,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// A job a worker has claimed and must now finish with [`complete`] or
/// [`fail`] (or [`give_up`]) before `locked_until`.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ClaimedJob {
    /// Id.
    pub id: JobId,
    /// The handler's name.
    pub kind: String,
    /// Its input as stored (JSON text); see [`ClaimedJob::payload_json`].
    pub payload: String,
    /// This run's number, from 1. Together with `id` it names this claim:
    /// a later claim of the same job has a higher number.
    pub attempts: i64,
    /// Runs allowed before the job goes `dead`.
    pub max_attempts: i64,
    /// When it was due.
    pub run_at: Timestamp,
    /// When this claim's lease runs out.
    pub locked_until: Timestamp,
}

impl ClaimedJob {
    /// The payload as JSON. An error means the row was written by something
    /// other than [`enqueue`] or `enqueue_job`; the runner gives the job up
    /// with it rather than stalling the queue.
    pub fn payload_json(&self) -> serde_json::Result<Value> {
        serde_json::from_str(&self.payload)
    }

    /// Whether this run is the job's last chance.
    pub fn is_last_attempt(&self) -> bool {
        self.attempts >= self.max_attempts
    }
}

/// Jobs per status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct JobCounts {
    /// Waiting (due or not).
    pub queued: i64,
    /// Claimed by a worker.
    pub running: i64,
    /// Finished and not purged yet.
    pub done: i64,
    /// Out of attempts.
    pub dead: i64,
}

/// Enqueues a job outside any transaction. Answers `false` when a job with
/// the same `dedupe_key` already exists (it is not touched).
pub async fn enqueue(db: &Db, job: NewJob) -> DbResult<bool> {
    let mut tx = db.begin().await?;
    let inserted = tx.enqueue_job(job).await?;
    tx.commit().await?;
    Ok(inserted)
}

/// Enqueues `job` to run now under its kind's dedupe key, outside any
/// transaction (see [`enqueue`]).
pub async fn enqueue_kind<J: kinds::JobKind>(db: &Db, job: &J) -> DbResult<bool> {
    enqueue(db, NewJob::of(job)).await
}

/// The columns a claim returns, in [`ClaimedJob`]'s shape.
const CLAIM_RETURNING: &str = "RETURNING id, kind, payload, attempts, max_attempts, run_at, locked_until";

/// Claims up to `limit` due jobs, oldest `run_at` first, for `lease`: each
/// goes to `running` with one more attempt and `locked_until = now + lease`.
/// Concurrent claimers, in this process or another, never get the same job.
pub async fn claim(db: &Db, worker_id: &str, limit: i64, lease: Duration) -> DbResult<Vec<ClaimedJob>> {
    if limit <= 0 {
        return Ok(Vec::new());
    }
    // The engines differ only in the row lock (`engine::Primitives`).
    let sql = format!(
        "UPDATE jobs SET status = 'running', attempts = attempts + 1, locked_until = $1, updated_at = $2
         WHERE status = 'queued' AND id IN (
             SELECT id FROM jobs WHERE status = 'queued' AND run_at <= $2
              ORDER BY run_at, id LIMIT $3{lock}) {CLAIM_RETURNING}",
        lock = db.engine().primitives().claim_lock()
    );
    let now = Timestamp::now();
    let locked_until = plus(now, lease);
    let mut tx = db.begin().await?;
    let mut jobs: Vec<ClaimedJob> = tx.query_built(sql).bind(locked_until).bind(now).bind(limit).fetch_all().await?;
    tx.commit().await?;
    // RETURNING follows no order; hand the jobs out oldest first.
    jobs.sort_by_key(|job| (job.run_at, job.id));
    if !jobs.is_empty() {
        tracing::debug!(worker_id, claimed = jobs.len(), "jobs claimed");
    }
    Ok(jobs)
}

/// Extends a running job's lease to `now + lease`, for a handler that runs
/// longer than a lease. Answers `false` when the claim is no longer held
/// (the lease ran out and the job was reaped, maybe claimed again).
pub async fn heartbeat(db: &Db, job: &ClaimedJob, lease: Duration) -> DbResult<bool> {
    let now = Timestamp::now();
    let mut tx = db.begin().await?;
    let updated = tx
        .query(
            "UPDATE jobs SET locked_until = $1, updated_at = $2
              WHERE id = $3 AND status = 'running' AND attempts = $4",
        )
        .bind(plus(now, lease))
        .bind(now)
        .bind(job.id)
        .bind(job.attempts)
        .execute()
        .await?;
    tx.commit().await?;
    Ok(updated == 1)
}

/// Marks a claimed job `done`. Answers `false` when the claim is no longer
/// held (see [`heartbeat`]); the job is then left to its new holder.
pub async fn complete(db: &Db, job: &ClaimedJob) -> DbResult<bool> {
    let mut tx = db.begin().await?;
    let updated = tx
        .query(
            "UPDATE jobs SET status = 'done', locked_until = NULL, updated_at = $1
              WHERE id = $2 AND status = 'running' AND attempts = $3",
        )
        .bind(Timestamp::now())
        .bind(job.id)
        .bind(job.attempts)
        .execute()
        .await?;
    tx.commit().await?;
    Ok(updated == 1)
}

/// Records a claimed job's failure: back to `queued` to run again at
/// `retry_at`, or `dead` when it has used its attempts. `error` is kept in
/// `last_error` either way. Answers the new status, or `None` when the claim
/// is no longer held (see [`heartbeat`]).
pub async fn fail(db: &Db, job: &ClaimedJob, error: &str, retry_at: Timestamp) -> DbResult<Option<JobStatus>> {
    let error: String = error.chars().take(MAX_ERROR_CHARS).collect();
    let mut tx = db.begin().await?;
    let status: Option<String> = tx
        .query(
            "UPDATE jobs SET status = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'queued' END,
                             run_at = CASE WHEN attempts >= max_attempts THEN run_at ELSE $1 END,
                             locked_until = NULL, last_error = $2, updated_at = $3
              WHERE id = $4 AND status = 'running' AND attempts = $5
          RETURNING status",
        )
        .bind(retry_at)
        .bind(error)
        .bind(Timestamp::now())
        .bind(job.id)
        .bind(job.attempts)
        .scalar_optional()
        .await?;
    tx.commit().await?;
    Ok(status.map(|status| status.parse()).transpose()?)
}

/// Records a claimed job's permanent failure: it goes `dead` at once,
/// whatever attempts it has left, with `error` in `last_error`. For a job
/// that can never succeed (a payload that does not parse), so it does not
/// retry for days first. Answers `false` when the claim is no longer held
/// (see [`heartbeat`]).
pub async fn give_up(db: &Db, job: &ClaimedJob, error: &str) -> DbResult<bool> {
    let error: String = error.chars().take(MAX_ERROR_CHARS).collect();
    // One statement, atomic by itself: no transaction needed.
    let updated = db
        .write_one(
            "UPDATE jobs SET status = 'dead', locked_until = NULL, last_error = $1, updated_at = $2
              WHERE id = $3 AND status = 'running' AND attempts = $4",
        )
        .bind(error)
        .bind(Timestamp::now())
        .bind(job.id)
        .bind(job.attempts)
        .execute()
        .await?;
    Ok(updated == 1)
}

/// Puts running jobs whose lease ran out (their worker died or stalled)
/// back in the queue, due at once; one that has used its attempts goes
/// `dead` instead, so a job that kills its worker every time stops. Answers
/// how many jobs it touched.
pub async fn reap(db: &Db) -> DbResult<u64> {
    let now = Timestamp::now();
    let mut tx = db.begin().await?;
    let touched = tx
        .query(
            "UPDATE jobs SET status = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'queued' END,
                             locked_until = NULL, updated_at = $1,
                             last_error = 'the worker running it stopped before its lease ran out'
              WHERE status = 'running' AND locked_until <= $1",
        )
        .bind(now)
        .execute()
        .await?;
    tx.commit().await?;
    Ok(touched)
}

/// Deletes `done` jobs last changed before `older_than`. `dead` jobs stay
/// until a person deals with them. Answers how many were deleted.
pub async fn purge_done(db: &Db, older_than: Timestamp) -> DbResult<u64> {
    let mut tx = db.begin().await?;
    let deleted =
        tx.query("DELETE FROM jobs WHERE status = 'done' AND updated_at < $1").bind(older_than).execute().await?;
    tx.commit().await?;
    Ok(deleted)
}

/// One job.
pub async fn get(db: &Db, job_id: JobId) -> DbResult<Job> {
    let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1");
    let row: JobRow = db.read_built(sql).bind(job_id).fetch_one().await?;
    Ok(Job::try_from(row)?)
}

/// Jobs, newest first, optionally only those with `status`.
pub async fn list(db: &Db, status: Option<JobStatus>, page: &PageRequest) -> DbResult<Page<Job>> {
    let mut query = db.read_built(format!("SELECT {JOB_COLUMNS} FROM jobs WHERE 1 = 1"));
    if let Some(status) = status {
        query.push(" AND status = ").push_bind(status.as_str());
    }
    if let Some(after) = &page.after {
        query.push(" AND id < ").push_bind(after.clone());
    }
    query.push(" ORDER BY id DESC LIMIT ").push_bind(page.fetch_limit());
    let rows: Vec<JobRow> = query.fetch_all().await?;
    let jobs = rows.into_iter().map(Job::try_from).collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Page::from_rows(jobs, page, |job| job.id.to_string()))
}

/// How many jobs are in each status.
pub async fn counts(db: &Db) -> DbResult<JobCounts> {
    let rows: Vec<(String, i64)> = db.read("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetch_all().await?;
    let mut counts = JobCounts::default();
    for (status, count) in rows {
        match status.parse()? {
            JobStatus::Queued => counts.queued = count,
            JobStatus::Running => counts.running = count,
            JobStatus::Done => counts.done = count,
            JobStatus::Dead => counts.dead = count,
        }
    }
    Ok(counts)
}

fn plus(time: Timestamp, duration: Duration) -> Timestamp {
    let micros = i64::try_from(duration.as_micros()).unwrap_or(i64::MAX);
    Timestamp::from_micros(time.as_micros().saturating_add(micros))
}

/// Puts a `dead` job back in the queue, due now, with its attempts reset.
/// Answers `false` when the job is not dead (already requeued, or never
/// died). For a person who fixed the cause; see [`crate::alerts::retry_job`],
/// which also reopens what the job's death closed.
pub async fn requeue(db: &Db, job_id: JobId) -> DbResult<bool> {
    let now = Timestamp::now();
    let mut tx = db.begin().await?;
    let updated = tx
        .query(
            "UPDATE jobs SET status = 'queued', attempts = 0, run_at = $1, locked_until = NULL, updated_at = $1
              WHERE id = $2 AND status = 'dead'",
        )
        .bind(now)
        .bind(job_id)
        .execute()
        .await?;
    tx.commit().await?;
    Ok(updated == 1)
}

/// The ids of every `dead` job, oldest first.
pub async fn dead_ids(db: &Db) -> DbResult<Vec<JobId>> {
    db.read("SELECT id FROM jobs WHERE status = 'dead' ORDER BY id").scalars().await
}
