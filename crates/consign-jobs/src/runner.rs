//! The worker loop: reap, enqueue periodic jobs, claim, run, record.
//!
//! A handler is registered for a job kind (a payload type of
//! `consign_db::jobs::kinds`) with [`Runner::handle`]; the runner parses the
//! stored payload into that type and tells the handler's [`JobError`] apart:
//! a transient failure is retried with backoff until the kind's max
//! attempts, a permanent one goes `dead` at once.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use anyhow::anyhow;
use consign_db::jobs::kinds::JobKind;
use consign_db::jobs::{self, ClaimedJob, JobStatus};
use consign_db::{Db, DbResult, NewJob};
use consign_domain::Timestamp;
use futures_util::future::BoxFuture;
use serde_json::Value;
use tokio::task::{JoinError, JoinHandle, JoinSet};
use tokio::time::Instant;

/// A registered handler: takes the database and the job's stored payload.
pub type Handler = Arc<dyn Fn(Db, Value) -> BoxFuture<'static, JobResult> + Send + Sync>;

/// What a handler answers.
pub type JobResult = Result<(), JobError>;

/// Why a job failed, which decides what the runner does with it. Either way
/// the error is kept in the job's `last_error`, so keep secrets out of it.
///
/// A failure a handler has already recorded as the outcome of its work (a
/// refund the provider refused, a message that cannot be delivered) is not
/// a `JobError`: the job did its work and ends `done`.
#[derive(Debug)]
pub enum JobError {
    /// Transient (a provider or the database unavailable): the job runs
    /// again after a backoff, until it has used its kind's max attempts.
    /// What `?` on an `anyhow::Error` gives.
    Retry(anyhow::Error),
    /// Permanent: running it again cannot help (its payload does not
    /// parse), so the job goes `dead` at once, for staff to look at.
    GiveUp(anyhow::Error),
}

impl From<anyhow::Error> for JobError {
    fn from(error: anyhow::Error) -> Self {
        Self::Retry(error)
    }
}

/// A storage error is transient: the database may be back on the next try.
impl From<consign_db::DbError> for JobError {
    fn from(error: consign_db::DbError) -> Self {
        Self::Retry(error.into())
    }
}

/// How a [`Runner`] works.
#[derive(Clone, Debug)]
pub struct RunnerConfig {
    /// Most jobs run at once by this runner.
    pub concurrency: usize,
    /// How long to wait before looking for due jobs again when none were
    /// left; also how often leases are reaped and periodic jobs enqueued.
    pub poll_interval: Duration,
    /// How long a claim holds a job. A running handler renews it every
    /// third of a lease; a job whose worker died is retried after it.
    pub lease: Duration,
    /// Backoff after the first failure; it doubles with every attempt.
    pub retry_base: Duration,
    /// Longest backoff (before jitter).
    pub retry_cap: Duration,
    /// On shutdown, how long running handlers may take to finish.
    pub shutdown_grace: Duration,
    /// Names this worker in logs.
    pub worker_id: String,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            concurrency: 4,
            poll_interval: Duration::from_secs(1),
            lease: Duration::from_secs(5 * 60),
            retry_base: Duration::from_secs(1),
            retry_cap: Duration::from_secs(60 * 60),
            shutdown_grace: Duration::from_secs(20),
            worker_id: format!("worker-{}-{:08x}", std::process::id(), rand::random::<u32>()),
        }
    }
}

/// A job enqueued once per time slot.
struct Periodic {
    kind: &'static str,
    interval_seconds: i64,
    payload: Value,
    /// The last slot this runner enqueued (or found enqueued), so it asks
    /// the database once per slot rather than once per poll.
    last_slot: AtomicI64,
}

/// Runs queued jobs with the handlers registered for their kinds.
pub struct Runner {
    db: Db,
    config: Arc<RunnerConfig>,
    handlers: HashMap<&'static str, Handler>,
    periodic: Vec<Periodic>,
}

impl Runner {
    /// A runner with no handlers yet.
    pub fn new(db: Db, config: RunnerConfig) -> Self {
        Self { db, config: Arc::new(config), handlers: HashMap::new(), periodic: Vec::new() }
    }

    /// Registers the handler for jobs of kind `J`. The runner parses each
    /// job's payload into a `J`; one that does not parse cannot run, ever,
    /// so the job goes `dead` without calling the handler.
    ///
    /// # Panics
    ///
    /// When `J` already has a handler: that is a wiring mistake, caught at
    /// start-up.
    pub fn handle<J, F, Fut>(&mut self, handler: F)
    where
        J: JobKind,
        F: Fn(Db, J) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = JobResult> + Send + 'static,
    {
        self.insert(
            J::KIND,
            Arc::new(move |db, payload| -> BoxFuture<'static, JobResult> {
                match serde_json::from_value::<J>(payload) {
                    Ok(job) => Box::pin(handler(db, job)),
                    Err(error) => {
                        let error = anyhow!("the payload is not a `{}` job's: {error}", J::KIND);
                        Box::pin(std::future::ready(Err(JobError::GiveUp(error))))
                    }
                }
            }),
        );
    }

    /// Registers an untyped handler for jobs of `kind`, taking the payload
    /// as JSON; every error it answers is retried. For kinds that are not
    /// in `consign_db::jobs::kinds`, such as the queue's own tests; the
    /// worker's jobs use [`Runner::handle`].
    ///
    /// # Panics
    ///
    /// When `kind` already has a handler.
    pub fn register<F, Fut>(&mut self, kind: &'static str, handler: F)
    where
        F: Fn(Db, Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.insert(
            kind,
            Arc::new(move |db, payload| {
                let run = handler(db, payload);
                Box::pin(async move { Ok(run.await?) })
            }),
        );
    }

    fn insert(&mut self, kind: &'static str, handler: Handler) {
        let previous = self.handlers.insert(kind, handler);
        assert!(previous.is_none(), "two handlers are registered for job kind `{kind}`");
    }

    /// The kinds this runner has handlers for, sorted.
    pub fn kinds(&self) -> Vec<&'static str> {
        let mut kinds: Vec<&'static str> = self.handlers.keys().copied().collect();
        kinds.sort_unstable();
        kinds
    }

    /// Enqueues a `kind` job with `payload` once per `interval`, in slots
    /// aligned on the Unix epoch (an hourly job runs at each full hour). The
    /// job's `dedupe_key` names its slot, so however many instances tick,
    /// each slot is enqueued once.
    ///
    /// # Panics
    ///
    /// When `interval` is under a second.
    pub fn every(&mut self, kind: &'static str, interval: Duration, payload: Value) {
        assert!(interval >= Duration::from_secs(1), "periodic job `{kind}` must run at most once a second");
        let interval_seconds = i64::try_from(interval.as_secs()).unwrap_or(i64::MAX);
        self.periodic.push(Periodic { kind, interval_seconds, payload, last_slot: AtomicI64::new(i64::MIN) });
    }

    /// Enqueues `job` once per `interval`, like [`Runner::every`]; its kind
    /// needs a handler of its own ([`Runner::handle`]).
    ///
    /// # Panics
    ///
    /// When `interval` is under a second.
    pub fn every_kind<J: JobKind>(&mut self, interval: Duration, job: J) {
        self.every(J::KIND, interval, NewJob::of(&job).payload);
    }

    /// The settings this runner works with.
    pub fn config(&self) -> &RunnerConfig {
        &self.config
    }

    /// Enqueues the current slot of every periodic job this runner has not
    /// enqueued yet. Answers how many jobs it inserted (a slot another
    /// instance enqueued first counts for nothing).
    pub async fn enqueue_periodic(&self) -> DbResult<usize> {
        let now = Timestamp::now();
        let mut inserted = 0;
        for periodic in &self.periodic {
            let slot = slot_start(now, periodic.interval_seconds);
            if periodic.last_slot.load(Ordering::Relaxed) == slot {
                continue;
            }
            let job = NewJob {
                kind: periodic.kind,
                payload: periodic.payload.clone(),
                dedupe_key: Some(format!("{}@{slot}", periodic.kind)),
                run_at: Timestamp::from_micros(slot.saturating_mul(1_000_000)),
            };
            if jobs::enqueue(&self.db, job).await? {
                inserted += 1;
            }
            periodic.last_slot.store(slot, Ordering::Relaxed);
        }
        Ok(inserted)
    }

    /// Runs every due job now, waiting for each, until none is due; for
    /// tests and one-off commands. Expired leases are reaped first, but
    /// periodic jobs are not enqueued. Answers how many runs it made (a job
    /// that failed and came due again counts once per run).
    pub async fn run_pending(&self) -> anyhow::Result<usize> {
        let limit = i64::try_from(self.config.concurrency.max(1)).unwrap_or(i64::MAX);
        let mut ran = 0;
        loop {
            jobs::reap(&self.db).await?;
            let claimed = jobs::claim(&self.db, &self.config.worker_id, limit, self.config.lease).await?;
            if claimed.is_empty() {
                return Ok(ran);
            }
            ran += claimed.len();
            futures_util::future::join_all(claimed.into_iter().map(|job| self.job_task(job))).await;
        }
    }

    /// Works until `shutdown` completes: reaps expired leases and enqueues
    /// periodic jobs every poll interval, claims as many due jobs as it has
    /// free slots, and runs each in its own task. On shutdown it claims
    /// nothing more and gives running handlers `shutdown_grace` to finish;
    /// the ones that do not are dropped, and another worker retries them
    /// after their lease.
    ///
    /// Database errors are logged and retried on the next poll: the worker
    /// outlives an outage.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) {
        let config = &self.config;
        let kinds = self.kinds();
        tracing::info!(worker_id = %config.worker_id, concurrency = config.concurrency, ?kinds, "worker started");
        let mut shutdown = std::pin::pin!(shutdown);
        let mut running = JoinSet::new();
        let mut next_maintenance = Instant::now();
        loop {
            if Instant::now() >= next_maintenance {
                self.maintain().await;
                next_maintenance = Instant::now() + config.poll_interval;
            }
            let free = config.concurrency.saturating_sub(running.len());
            let mut claimed_a_full_batch = false;
            if free > 0 {
                let limit = i64::try_from(free).unwrap_or(i64::MAX);
                match jobs::claim(&self.db, &config.worker_id, limit, config.lease).await {
                    Ok(claimed) => {
                        claimed_a_full_batch = claimed.len() == free;
                        for job in claimed {
                            running.spawn(self.job_task(job));
                        }
                    }
                    Err(error) => tracing::warn!(%error, "cannot claim jobs; trying again after the poll interval"),
                }
            }
            // A full batch suggests more jobs are due: look again at once.
            let wait = if claimed_a_full_batch { Duration::ZERO } else { config.poll_interval };
            tokio::select! {
                // Shutdown first, so a busy queue cannot delay it.
                biased;
                () = &mut shutdown => break,
                Some(finished) = running.join_next(), if !running.is_empty() => log_task_panic(finished),
                () = tokio::time::sleep(wait) => {}
            }
        }
        tracing::info!(running = running.len(), "worker stopping: no new jobs; waiting for running ones");
        let drained = tokio::time::timeout(config.shutdown_grace, async {
            while let Some(finished) = running.join_next().await {
                log_task_panic(finished);
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                abandoned = running.len(),
                grace_seconds = config.shutdown_grace.as_secs_f64(),
                "running jobs did not finish in time; they will be retried once their lease runs out"
            );
            running.shutdown().await;
        }
        tracing::info!("worker stopped");
    }

    /// Once per poll: put jobs of dead workers back, enqueue periodic jobs.
    async fn maintain(&self) {
        match jobs::reap(&self.db).await {
            Ok(0) => {}
            Ok(reaped) => tracing::warn!(reaped, "jobs whose worker stopped were put back in the queue"),
            Err(error) => tracing::warn!(%error, "cannot reap expired job leases"),
        }
        if let Err(error) = self.enqueue_periodic().await {
            tracing::warn!(%error, "cannot enqueue periodic jobs");
        }
    }

    /// Everything one claimed job needs, owned, so it can run in a task.
    fn job_task(&self, job: ClaimedJob) -> impl Future<Output = ()> + Send + 'static {
        let handler = self.handlers.get(job.kind.as_str()).cloned();
        execute(self.db.clone(), Arc::clone(&self.config), handler, job)
    }
}

/// Runs one claimed job and records how it went.
async fn execute(db: Db, config: Arc<RunnerConfig>, handler: Option<Handler>, job: ClaimedJob) {
    let started = Instant::now();
    let outcome = match (handler, job.payload_json()) {
        // Retried: during a rolling upgrade an older worker can claim a
        // kind only newer ones know, and a newer worker will take it.
        (None, _) => Err(JobError::Retry(anyhow!("no handler is registered for job kind `{}`", job.kind))),
        (Some(_), Err(error)) => Err(JobError::GiveUp(anyhow!("the stored payload is not JSON: {error}"))),
        (Some(handler), Ok(payload)) => supervise(&db, &config, &job, handler(db.clone(), payload)).await,
    };
    let elapsed_ms = started.elapsed().as_millis();
    // Log lines name the job, never its payload: payloads may hold
    // customer data.
    match outcome {
        Ok(()) => match jobs::complete(&db, &job).await {
            Ok(true) => {
                tracing::debug!(job_id = %job.id, kind = %job.kind, attempt = job.attempts, elapsed_ms, "job done");
            }
            Ok(false) => tracing::warn!(
                job_id = %job.id, kind = %job.kind, attempt = job.attempts, elapsed_ms,
                "job finished after its lease ran out; another worker may run it again"
            ),
            Err(error) => tracing::error!(
                job_id = %job.id, kind = %job.kind, %error,
                "cannot record a finished job; it will run again once its lease runs out"
            ),
        },
        Err(JobError::GiveUp(error)) => {
            let message = format!("{error:#}");
            match jobs::give_up(&db, &job, &message).await {
                Ok(true) => {
                    tracing::error!(
                        job_id = %job.id, kind = %job.kind, attempt = job.attempts, elapsed_ms, error = %message,
                        "job failed for good and is dead"
                    );
                    announce_death(&db, &job, &message).await;
                }
                Ok(false) => tracing::warn!(
                    job_id = %job.id, kind = %job.kind, attempt = job.attempts, error = %message,
                    "job failed after its lease ran out; another worker may run it again"
                ),
                Err(db_error) => tracing::error!(
                    job_id = %job.id, kind = %job.kind, error = %message, %db_error,
                    "cannot record a failed job; it will run again once its lease runs out"
                ),
            }
        }
        Err(JobError::Retry(error)) => {
            let message = format!("{error:#}");
            let delay = backoff(job.attempts, config.retry_base, config.retry_cap);
            let retry_at = Timestamp::from_micros(
                Timestamp::now().as_micros().saturating_add(i64::try_from(delay.as_micros()).unwrap_or(i64::MAX)),
            );
            match jobs::fail(&db, &job, &message, retry_at).await {
                Ok(Some(JobStatus::Dead)) => {
                    tracing::error!(
                        job_id = %job.id, kind = %job.kind, attempt = job.attempts, elapsed_ms, error = %message,
                        "job failed for the last time and is dead"
                    );
                    announce_death(&db, &job, &message).await;
                }
                Ok(Some(_)) => tracing::warn!(
                    job_id = %job.id, kind = %job.kind, attempt = job.attempts, elapsed_ms, error = %message,
                    %retry_at, "job failed; it will be retried"
                ),
                Ok(None) => tracing::warn!(
                    job_id = %job.id, kind = %job.kind, attempt = job.attempts, error = %message,
                    "job failed after its lease ran out; another worker may run it again"
                ),
                Err(db_error) => tracing::error!(
                    job_id = %job.id, kind = %job.kind, error = %message, %db_error,
                    "cannot record a failed job; it will run again once its lease runs out"
                ),
            }
        }
    }
}

/// Raises the alert of a job that just went `dead`: staff see it on the
/// dashboard and can retry it. If this fails, the periodic sweep raises it
/// later.
async fn announce_death(db: &Db, job: &ClaimedJob, message: &str) {
    if let Err(error) = consign_db::alerts::job_died(db, job, message).await {
        tracing::error!(job_id = %job.id, kind = %job.kind, %error, "cannot raise the dead job's alert");
    }
}

/// Runs a handler in its own task, so a panic fails the job instead of the
/// worker, and renews the lease while it runs. A panic is retried like any
/// error the handler did not call permanent.
async fn supervise(
    db: &Db,
    config: &RunnerConfig,
    job: &ClaimedJob,
    handler: BoxFuture<'static, JobResult>,
) -> JobResult {
    let mut task = AbortOnDrop(tokio::spawn(handler));
    let renew_every = (config.lease / 3).max(Duration::from_millis(1));
    let mut renewal = tokio::time::interval_at(Instant::now() + renew_every, renew_every);
    // After a slow renewal, renew once, not once per missed tick.
    renewal.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            joined = &mut task.0 => {
                return joined
                    .unwrap_or_else(|error| Err(JobError::Retry(anyhow!("the handler {}", describe_join_error(error)))));
            }
            _ = renewal.tick() => match jobs::heartbeat(db, job, config.lease).await {
                Ok(true) => {}
                Ok(false) => tracing::warn!(
                    job_id = %job.id, kind = %job.kind,
                    "job outlived its lease; another worker may be running it too"
                ),
                Err(error) => tracing::warn!(job_id = %job.id, kind = %job.kind, %error, "cannot renew a job's lease"),
            },
        }
    }
}

/// Aborts the handler's task when the job's task is dropped (shutdown past
/// its grace), rather than leaving it to run unsupervised.
struct AbortOnDrop(JoinHandle<JobResult>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn describe_join_error(error: JoinError) -> String {
    if !error.is_panic() {
        return "was cancelled".to_owned();
    }
    let panic = error.into_panic();
    let message = panic
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned());
    format!("panicked: {message}")
}

fn log_task_panic(finished: Result<(), JoinError>) {
    // `execute` handles its own errors and runs handlers in tasks of their
    // own, so only a bug in it lands here.
    if let Err(error) = finished {
        tracing::error!(%error, "a job task ended abnormally");
    }
}

/// How long to wait before retrying after failed attempt number `attempts`
/// (from 1): `base × 2^attempts`, at most `cap`, then ±20 % at random so
/// jobs that failed together do not retry together.
pub fn backoff(attempts: i64, base: Duration, cap: Duration) -> Duration {
    let exponent = u32::try_from(attempts.clamp(0, 32)).unwrap_or(32);
    let delay = base.saturating_mul(2u32.saturating_pow(exponent)).min(cap);
    delay.mul_f64(rand::random_range(0.8..=1.2))
}

/// The start, in Unix seconds, of the `interval_seconds` slot holding `now`.
fn slot_start(now: Timestamp, interval_seconds: i64) -> i64 {
    let interval = interval_seconds.max(1);
    now.as_unix_seconds().div_euclid(interval) * interval
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_per_attempt_within_twenty_percent() {
        let base = Duration::from_secs(1);
        let cap = Duration::from_secs(3600);
        for (attempts, expected) in [(1, 2.0), (2, 4.0), (5, 32.0), (10, 1024.0)] {
            for _ in 0..100 {
                let delay = backoff(attempts, base, cap).as_secs_f64();
                assert!(delay >= expected * 0.8 - 1e-9 && delay <= expected * 1.2 + 1e-9, "{attempts}: {delay}");
            }
        }
    }

    #[test]
    fn backoff_stops_growing_at_the_cap() {
        let cap = Duration::from_secs(3600);
        for attempts in [12, 40, i64::MAX] {
            let delay = backoff(attempts, Duration::from_secs(1), cap).as_secs_f64();
            assert!((2880.0..=4320.0).contains(&delay), "{attempts}: {delay}");
        }
    }

    #[test]
    fn backoff_is_not_the_same_every_time() {
        let delays: std::collections::HashSet<u128> =
            (0..50).map(|_| backoff(3, Duration::from_secs(1), Duration::from_secs(3600)).as_micros()).collect();
        assert!(delays.len() > 1);
    }

    #[test]
    fn slots_are_aligned_on_the_epoch() {
        let at = |seconds: i64| Timestamp::from_micros(seconds * 1_000_000 + 123);
        assert_eq!(slot_start(at(7200), 3600), 7200);
        assert_eq!(slot_start(at(10_799), 3600), 7200);
        assert_eq!(slot_start(at(10_800), 3600), 10_800);
        assert_eq!(slot_start(at(59), 60), 0);
    }
}
