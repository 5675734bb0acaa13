//! The job queue and its worker: jobs ride on their transaction, run once
//! per success across runners and connections, retry with backoff until
//! dead, survive a dead worker, fire each periodic slot once, and shut down
//! without dropping a running handler.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use consign_db::jobs::kinds::{self, FulfillOrder, JobKind as _, PurgeMaintenance};
use consign_db::jobs::{self, JobStatus};
use consign_db::{Db, DbError, DbResult, NewJob, PageRequest};
use consign_domain::{JobId, Timestamp};
use consign_jobs::{JobError, Runner, RunnerConfig};
use consign_testkit::{TestApp, TestDb};
use serde_json::{Value, json};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::time::Instant;

/// A job kind whose handler counts its runs by the payload's `name`.
const RECORD: &str = "test.record";

/// Runs per job name.
type Runs = Arc<Mutex<HashMap<String, usize>>>;

fn config() -> RunnerConfig {
    RunnerConfig { poll_interval: Duration::from_millis(10), ..RunnerConfig::default() }
}

/// A runner whose `test.record` handler counts into `runs`.
fn recording_runner(db: &Db, config: RunnerConfig, runs: &Runs) -> Runner {
    let mut runner = Runner::new(db.clone(), config);
    let runs = runs.clone();
    runner.register(RECORD, move |_db, payload: Value| {
        let runs = runs.clone();
        async move {
            let name = payload["name"].as_str().context("the payload has no name")?.to_owned();
            *runs.lock().unwrap().entry(name).or_default() += 1;
            Ok(())
        }
    });
    runner
}

fn runs_of(runs: &Runs, name: &str) -> usize {
    runs.lock().unwrap().get(name).copied().unwrap_or(0)
}

fn record_job(name: &str) -> NewJob {
    NewJob::now(RECORD, json!({"name": name}))
}

/// Enqueues in a business transaction that commits, or fails after the
/// enqueue and so rolls back.
async fn enqueue_in_transaction(db: &Db, names: &[String], commit: bool) -> DbResult<()> {
    let mut tx = db.begin().await?;
    for name in names {
        tx.enqueue_job(record_job(name)).await?;
    }
    if !commit {
        return Err(DbError::Conflict { constraint: "the business change failed".into() });
    }
    tx.commit().await
}

/// Enqueues outside a transaction and answers the new job's id.
async fn enqueue(db: &Db, job: NewJob) -> JobId {
    // A unique dedupe key finds the row again.
    let key = job.dedupe_key.clone().unwrap_or_else(|| JobId::new().to_string());
    assert!(jobs::enqueue(db, NewJob { dedupe_key: Some(key.clone()), ..job }).await.unwrap());
    let listed = jobs::list(db, None, &PageRequest { limit: 200, after: None }).await.unwrap().data;
    listed.into_iter().find(|job| job.dedupe_key.as_ref() == Some(&key)).expect("the job just enqueued").id
}

fn micros_after(time: Timestamp, micros: i64) -> Timestamp {
    Timestamp::from_micros(time.as_micros() + micros)
}

/// Polls `check` until it holds, failing the test after a deadline.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A stop signal for runners spawned with [`spawn_run`].
fn stop_signal() -> (watch::Sender<bool>, impl Fn() -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) {
    let (stop, stopped) = watch::channel(false);
    let until_stopped = move || {
        let mut stopped = stopped.clone();
        Box::pin(async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }) as std::pin::Pin<Box<dyn Future<Output = ()> + Send>>
    };
    (stop, until_stopped)
}

fn spawn_run(runner: Runner, shutdown: impl Future<Output = ()> + Send + 'static) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move { runner.run(shutdown).await })
}

#[tokio::test]
async fn a_job_enqueued_in_a_rolled_back_transaction_never_runs_and_a_committed_one_runs_once() {
    let test_db = TestDb::new().await;
    let db = &test_db.db;
    let runs = Runs::default();
    let runner = recording_runner(db, config(), &runs);

    let rolled_back = enqueue_in_transaction(db, &["rolled back".to_owned()], false).await;
    assert!(matches!(rolled_back, Err(DbError::Conflict { .. })));
    enqueue_in_transaction(db, &["committed".to_owned()], true).await.unwrap();

    assert_eq!(runner.run_pending().await.unwrap(), 1);
    assert_eq!(runner.run_pending().await.unwrap(), 0, "nothing is left to run");
    assert_eq!(runs_of(&runs, "committed"), 1);
    assert_eq!(runs_of(&runs, "rolled back"), 0);
    let counts = jobs::counts(db).await.unwrap();
    assert_eq!((counts.queued, counts.running, counts.done, counts.dead), (0, 0, 1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_jobs_worked_by_four_runners_over_two_connections_each_run_exactly_once() {
    let test_db = TestDb::new().await;
    let other_instance = test_db.another_connection().await;
    let names: Vec<String> = (0..200).map(|n| format!("job-{n}")).collect();
    enqueue_in_transaction(&test_db.db, &names, true).await.unwrap();

    let runs = Runs::default();
    let (stop, until_stopped) = stop_signal();
    let workers: Vec<_> = [&test_db.db, &test_db.db, &other_instance.db, &other_instance.db]
        .into_iter()
        .map(|db| spawn_run(recording_runner(db, config(), &runs), until_stopped()))
        .collect();
    let db = &test_db.db;
    eventually("every job to be done", || async move { jobs::counts(db).await.unwrap().done == 200 }).await;
    stop.send(true).unwrap();
    for worker in workers {
        tokio::time::timeout(Duration::from_secs(30), worker).await.expect("the worker stops").unwrap();
    }

    let runs = runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 200, "every job ran");
    let repeated: Vec<_> = runs.iter().filter(|(_, count)| **count != 1).collect();
    assert!(repeated.is_empty(), "jobs ran more than once: {repeated:?}");
    let counts = jobs::counts(db).await.unwrap();
    assert_eq!((counts.queued, counts.running, counts.done, counts.dead), (0, 0, 200, 0));
}

fn failing_runner(db: &Db, config: RunnerConfig, attempts: &Arc<Mutex<usize>>) -> Runner {
    let mut runner = Runner::new(db.clone(), config);
    let attempts = attempts.clone();
    runner.register("test.fail", move |_db, _payload| {
        let attempts = attempts.clone();
        async move {
            *attempts.lock().unwrap() += 1;
            anyhow::bail!("the carrier said no")
        }
    });
    runner
}

#[tokio::test]
async fn a_failed_job_is_queued_again_after_a_backoff_with_its_error_kept() {
    let test_db = TestDb::new().await;
    let db = &test_db.db;
    let attempts = Arc::new(Mutex::new(0));
    let runner = failing_runner(db, config(), &attempts);
    let job_id = enqueue(db, NewJob::now("test.fail", json!({}))).await;
    let enqueued = jobs::get(db, job_id).await.unwrap();

    let before = Timestamp::now();
    assert_eq!(runner.run_pending().await.unwrap(), 1);
    let after = Timestamp::now();
    let job = jobs::get(db, job_id).await.unwrap();
    assert_eq!(job.status, JobStatus::Queued);
    assert_eq!(job.attempts, 1);
    assert_eq!(job.last_error.as_deref(), Some("the carrier said no"));
    assert_eq!(job.locked_until, None);
    // The first retry waits 2 s ± 20 %.
    assert!(job.run_at > enqueued.run_at);
    assert!(job.run_at >= micros_after(before, 1_600_000), "{} is too early", job.run_at);
    assert!(job.run_at <= micros_after(after, 2_400_000), "{} is too late", job.run_at);
    assert_eq!(runner.run_pending().await.unwrap(), 0, "the retry is not due yet");
    assert_eq!(*attempts.lock().unwrap(), 1);
}

#[tokio::test]
async fn a_job_that_keeps_failing_is_retried_until_it_goes_dead_after_its_max_attempts() {
    let test_db = TestDb::new().await;
    let db = &test_db.db;
    let attempts = Arc::new(Mutex::new(0));
    // No backoff, so every retry is due at once.
    let no_backoff = RunnerConfig { retry_base: Duration::ZERO, ..config() };
    let runner = failing_runner(db, no_backoff, &attempts);
    let job_id = enqueue(db, NewJob::now("test.fail", json!({}))).await;

    assert_eq!(runner.run_pending().await.unwrap(), 10);
    let job = jobs::get(db, job_id).await.unwrap();
    assert_eq!(job.status, JobStatus::Dead);
    assert_eq!((job.attempts, job.max_attempts), (10, 10));
    assert_eq!(job.last_error.as_deref(), Some("the carrier said no"));
    assert_eq!(*attempts.lock().unwrap(), 10);
    assert_eq!(runner.run_pending().await.unwrap(), 0, "a dead job does not run again");
    let dead = jobs::list(db, Some(JobStatus::Dead), &PageRequest::first()).await.unwrap();
    assert_eq!(dead.data.iter().map(|job| job.id).collect::<Vec<_>>(), vec![job_id]);
}

#[tokio::test]
async fn a_job_of_an_unknown_kind_fails_with_an_error_naming_the_kind() {
    let test_db = TestDb::new().await;
    let db = &test_db.db;
    let runner = recording_runner(db, config(), &Runs::default());
    let job_id = enqueue(db, NewJob::now("nobody.handles.this", json!({}))).await;

    assert_eq!(runner.run_pending().await.unwrap(), 1);
    let job = jobs::get(db, job_id).await.unwrap();
    assert_eq!(job.status, JobStatus::Queued);
    assert_eq!(job.last_error.as_deref(), Some("no handler is registered for job kind `nobody.handles.this`"));
}

#[tokio::test]
async fn a_panicking_handler_fails_its_job_and_the_runner_goes_on() {
    let test_db = TestDb::new().await;
    let db = &test_db.db;
    let runs = Runs::default();
    let mut runner = recording_runner(db, config(), &runs);
    runner.register("test.panic", |_db, _payload| async { panic!("boom") });
    let panicking = enqueue(db, NewJob::now("test.panic", json!({}))).await;
    enqueue(db, record_job("after")).await;

    assert_eq!(runner.run_pending().await.unwrap(), 2);
    let job = jobs::get(db, panicking).await.unwrap();
    assert_eq!(job.status, JobStatus::Queued);
    assert_eq!(job.last_error.as_deref(), Some("the handler panicked: boom"));
    assert_eq!(runs_of(&runs, "after"), 1);
}

#[tokio::test]
async fn a_job_whose_worker_died_is_reaped_after_its_lease_and_run_again() {
    let test_db = TestDb::new().await;
    let db = &test_db.db;
    let runs = Runs::default();
    let runner = recording_runner(db, config(), &runs);

    // Two workers claim a job each and die: one with a lease that has long
    // to go, one with a lease that runs out at once.
    enqueue(db, record_job("held")).await;
    let held = jobs::claim(db, "worker-with-time-left", 1, Duration::from_secs(3600)).await.unwrap();
    enqueue(db, record_job("abandoned")).await;
    let abandoned = jobs::claim(db, "crashed-worker", 1, Duration::from_millis(20)).await.unwrap();
    assert_eq!((held.len(), abandoned.len()), (1, 1));
    assert_eq!(jobs::get(db, abandoned[0].id).await.unwrap().status, JobStatus::Running);

    let (runner, runs) = (&runner, &runs);
    eventually("the abandoned job to run again", || async move {
        runner.run_pending().await.unwrap();
        runs_of(runs, "abandoned") > 0
    })
    .await;
    assert_eq!(runs_of(runs, "abandoned"), 1);
    let job = jobs::get(db, abandoned[0].id).await.unwrap();
    assert_eq!((job.status, job.attempts), (JobStatus::Done, 2));
    assert_eq!(runs_of(runs, "held"), 0, "a job within its lease is left to its worker");
    assert_eq!(jobs::get(db, held[0].id).await.unwrap().status, JobStatus::Running);

    // The crashed worker comes back and tries to record its old claim: the
    // job is no longer its to finish.
    assert!(!jobs::complete(db, &abandoned[0]).await.unwrap());
    assert_eq!(jobs::fail(db, &abandoned[0], "late", Timestamp::now()).await.unwrap(), None);
    assert_eq!(jobs::get(db, abandoned[0].id).await.unwrap().status, JobStatus::Done);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn periodic_jobs_of_one_slot_are_enqueued_once_when_runners_tick_together() {
    let test_db = TestDb::new().await;
    let other_instance = test_db.another_connection().await;
    let runs = Runs::default();
    let runners: Vec<Runner> = [&test_db.db, &test_db.db, &other_instance.db, &other_instance.db]
        .into_iter()
        .map(|db| {
            let mut runner = recording_runner(db, config(), &runs);
            runner.every(RECORD, Duration::from_secs(24 * 60 * 60), json!({"name": "daily"}));
            runner
        })
        .collect();

    let inserted = futures_util::future::join_all(runners.iter().map(Runner::enqueue_periodic)).await;
    let inserted: usize = inserted.into_iter().map(Result::unwrap).sum();
    assert_eq!(inserted, 1);
    let queued = jobs::list(&test_db.db, Some(JobStatus::Queued), &PageRequest::first()).await.unwrap().data;
    assert_eq!(queued.len(), 1);
    let slot = Timestamp::now().as_unix_seconds() / 86_400 * 86_400;
    assert_eq!(queued[0].dedupe_key.as_deref(), Some(format!("{RECORD}@{slot}").as_str()));
    assert_eq!(queued[0].run_at, Timestamp::from_micros(slot * 1_000_000), "due from the start of its slot");

    assert_eq!(runners[0].run_pending().await.unwrap(), 1);
    assert_eq!(runs_of(&runs, "daily"), 1);
    // Later ticks in the same slot, even by a runner that never ticked,
    // find it done and enqueue nothing.
    let mut late = recording_runner(&other_instance.db, config(), &runs);
    late.every(RECORD, Duration::from_secs(24 * 60 * 60), json!({"name": "daily"}));
    assert_eq!(late.enqueue_periodic().await.unwrap(), 0);
    assert_eq!(runners[1].enqueue_periodic().await.unwrap(), 0);
    assert_eq!(jobs::counts(&test_db.db).await.unwrap().queued, 0);
}

/// A runner whose `test.gate` handler says when it started, then waits for
/// a permit before it records its run.
fn gated_runner(db: &Db, config: RunnerConfig, started: &Arc<Notify>, gate: &Arc<Semaphore>, runs: &Runs) -> Runner {
    let mut runner = recording_runner(db, config, runs);
    let (started, gate, runs) = (started.clone(), gate.clone(), runs.clone());
    runner.register("test.gate", move |_db, payload: Value| {
        let (started, gate, runs) = (started.clone(), gate.clone(), runs.clone());
        async move {
            started.notify_one();
            let _permit = gate.acquire().await?;
            *runs.lock().unwrap().entry(payload["name"].as_str().unwrap_or_default().to_owned()).or_default() += 1;
            Ok(())
        }
    });
    runner
}

#[tokio::test]
async fn shutdown_stops_claiming_and_waits_for_the_running_handler() {
    let test_db = TestDb::new().await;
    let db = &test_db.db;
    let (started, gate, runs) = (Arc::new(Notify::new()), Arc::new(Semaphore::new(0)), Runs::default());
    // A long poll interval: after its first claim the runner only wakes for
    // shutdown or a finished job.
    let config = RunnerConfig { concurrency: 2, poll_interval: Duration::from_secs(3600), ..config() };
    let runner = gated_runner(db, config, &started, &gate, &runs);
    let running = enqueue(db, NewJob::now("test.gate", json!({"name": "running"}))).await;
    let (stop, until_stopped) = stop_signal();
    let mut worker = spawn_run(runner, until_stopped());
    tokio::time::timeout(Duration::from_secs(30), started.notified()).await.expect("the handler starts");

    stop.send(true).unwrap();
    let late = enqueue(db, record_job("late")).await;
    assert!(!worker.is_finished());
    gate.add_permits(1);
    tokio::time::timeout(Duration::from_secs(30), &mut worker).await.expect("the worker stops").unwrap();

    assert_eq!(runs_of(&runs, "running"), 1, "the running handler finished");
    assert_eq!(jobs::get(db, running).await.unwrap().status, JobStatus::Done, "and its job was recorded");
    assert_eq!(runs_of(&runs, "late"), 0, "nothing was claimed after shutdown");
    let late = jobs::get(db, late).await.unwrap();
    assert_eq!((late.status, late.attempts), (JobStatus::Queued, 0));
}

#[tokio::test]
async fn shutdown_gives_up_on_a_handler_that_outlasts_the_grace_period() {
    let test_db = TestDb::new().await;
    let db = &test_db.db;
    let (started, gate, runs) = (Arc::new(Notify::new()), Arc::new(Semaphore::new(0)), Runs::default());
    let config = RunnerConfig { shutdown_grace: Duration::from_millis(50), ..config() };
    let runner = gated_runner(db, config, &started, &gate, &runs);
    let stuck = enqueue(db, NewJob::now("test.gate", json!({"name": "stuck"}))).await;
    let (stop, until_stopped) = stop_signal();
    let worker = spawn_run(runner, until_stopped());
    tokio::time::timeout(Duration::from_secs(30), started.notified()).await.expect("the handler starts");

    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(30), worker).await.expect("the worker stops despite the handler").unwrap();
    assert_eq!(runs_of(&runs, "stuck"), 0);
    // Its lease still stands; once it runs out, another worker retries it.
    assert_eq!(jobs::get(db, stuck).await.unwrap().status, JobStatus::Running);
}

#[tokio::test]
async fn a_handler_that_outlives_its_lease_keeps_the_job_by_renewing_it() {
    let test_db = TestDb::new().await;
    let db = &test_db.db;
    let (started, gate, runs) = (Arc::new(Notify::new()), Arc::new(Semaphore::new(0)), Runs::default());
    let config = RunnerConfig { lease: Duration::from_millis(300), ..config() };
    let runner = gated_runner(db, config, &started, &gate, &runs);
    let slow = enqueue(db, NewJob::now("test.gate", json!({"name": "slow"}))).await;
    let (stop, until_stopped) = stop_signal();
    let worker = spawn_run(runner, until_stopped());
    tokio::time::timeout(Duration::from_secs(30), started.notified()).await.expect("the handler starts");

    // Several leases go by while the handler runs; the job is never
    // reaped, because its lease keeps being renewed.
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until {
        assert_eq!(jobs::reap(db).await.unwrap(), 0, "the running job was reaped");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    gate.add_permits(1);
    eventually(
        "the slow job to be done",
        || async move { jobs::get(db, slow).await.unwrap().status == JobStatus::Done },
    )
    .await;
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(30), worker).await.expect("the worker stops").unwrap();
    let job = jobs::get(db, slow).await.unwrap();
    assert_eq!((job.attempts, job.last_error), (1, None));
    assert_eq!(runs_of(&runs, "slow"), 1);
}

#[tokio::test]
async fn enqueue_skips_a_job_whose_dedupe_key_is_taken() {
    let test_db = TestDb::new().await;
    let db = &test_db.db;
    let keyed = |name: &str| NewJob { dedupe_key: Some("order-42-confirmation".into()), ..record_job(name) };
    assert!(jobs::enqueue(db, keyed("first")).await.unwrap());
    assert!(!jobs::enqueue(db, keyed("second")).await.unwrap());

    let runs = Runs::default();
    assert_eq!(recording_runner(db, config(), &runs).run_pending().await.unwrap(), 1);
    assert_eq!((runs_of(&runs, "first"), runs_of(&runs, "second")), (1, 0));
}

#[tokio::test]
async fn jobs_are_listed_newest_first_and_counted_by_status() {
    let test_db = TestDb::new().await;
    let db = &test_db.db;
    let first = enqueue(db, record_job("one")).await;
    let second = enqueue(db, record_job("two")).await;
    let future = enqueue(db, NewJob { run_at: Timestamp::now().plus_seconds(3600), ..record_job("later") }).await;
    let runs = Runs::default();
    assert_eq!(recording_runner(db, config(), &runs).run_pending().await.unwrap(), 2, "only due jobs run");

    let counts = jobs::counts(db).await.unwrap();
    assert_eq!((counts.queued, counts.running, counts.done, counts.dead), (1, 0, 2, 0));
    let page = jobs::list(db, None, &PageRequest { limit: 2, after: None }).await.unwrap();
    assert_eq!(page.data.iter().map(|job| job.id).collect::<Vec<_>>(), vec![future, second]);
    let rest = jobs::list(db, None, &PageRequest { limit: 2, after: page.next_cursor }).await.unwrap();
    assert_eq!(rest.data.iter().map(|job| job.id).collect::<Vec<_>>(), vec![first]);
    assert_eq!(rest.next_cursor, None);
    let done = jobs::list(db, Some(JobStatus::Done), &PageRequest::first()).await.unwrap();
    assert_eq!(done.data.len(), 2);
    assert_eq!(done.data[0].payload, json!({"name": "two"}));

    // Done jobs go when purged; queued ones stay.
    assert_eq!(jobs::purge_done(db, Timestamp::now().plus_seconds(1)).await.unwrap(), 2);
    let counts = jobs::counts(db).await.unwrap();
    assert_eq!((counts.queued, counts.done), (1, 0));
}

#[tokio::test]
async fn the_hourly_maintenance_job_is_registered_and_runs() {
    let app = TestApp::spawn().await;
    let db = app.db();
    let runner = app.runner();

    let periodic = runner.enqueue_periodic().await.unwrap();
    assert!(periodic >= 1);
    let queued = jobs::list(db, Some(JobStatus::Queued), &PageRequest::first()).await.unwrap().data;
    assert_eq!(queued.len(), periodic);
    assert!(queued.iter().any(|job| job.kind == PurgeMaintenance::KIND));
    assert_eq!(runner.run_pending().await.unwrap(), periodic);
    for queued in &queued {
        let job = jobs::get(db, queued.id).await.unwrap();
        assert_eq!(job.status, JobStatus::Done, "{}: {:?}", job.kind, job.last_error);
    }
}

#[tokio::test]
async fn every_job_kind_has_exactly_one_handler_in_the_worker_the_binary_runs() {
    let app = TestApp::spawn().await;
    // The test kit's runner is built by `register_every_job`, as the
    // binary's is; registering a kind twice panics there.
    let handled = app.runner().kinds();
    let mut known: Vec<&str> = kinds::ALL.iter().map(|(kind, _)| *kind).collect();
    known.sort_unstable();
    assert_eq!(handled, known);
}

#[tokio::test]
async fn a_job_whose_payload_does_not_parse_goes_dead_at_once_with_the_reason() {
    let app = TestApp::spawn().await;
    let db = app.db();
    let job_id = enqueue(db, NewJob::now(FulfillOrder::KIND, json!({"order_id": "not an id"}))).await;

    assert_eq!(app.runner().run_pending().await.unwrap(), 1);
    let job = jobs::get(db, job_id).await.unwrap();
    assert_eq!((job.status, job.attempts), (JobStatus::Dead, 1), "{:?}", job.last_error);
    let error = job.last_error.unwrap_or_default();
    assert!(error.starts_with("the payload is not a `fulfillment.create_for_order` job's"), "{error}");
}

#[tokio::test]
async fn a_handler_that_gives_up_sends_its_job_dead_without_retrying() {
    let test_db = TestDb::new().await;
    let db = &test_db.db;
    let attempts = Arc::new(Mutex::new(0));
    let mut runner = Runner::new(db.clone(), RunnerConfig { retry_base: Duration::ZERO, ..config() });
    let counted = attempts.clone();
    runner.handle(move |_db, _job: PurgeMaintenance| {
        let counted = counted.clone();
        async move {
            *counted.lock().unwrap() += 1;
            Err(JobError::GiveUp(anyhow::anyhow!("this can never work")))
        }
    });
    let job_id = enqueue(db, NewJob::of(&PurgeMaintenance {})).await;

    assert_eq!(runner.run_pending().await.unwrap(), 1);
    let job = jobs::get(db, job_id).await.unwrap();
    assert_eq!((job.status, job.attempts), (JobStatus::Dead, 1));
    assert_eq!(job.last_error.as_deref(), Some("this can never work"));
    assert_eq!(*attempts.lock().unwrap(), 1);
}
