//! Group commit: concurrent write transactions share one database
//! transaction, each inside its own savepoint, with one commit for them all.
//!
//! Why: a commit's fixed cost (PostgreSQL's WAL flush, SQLite's WAL append
//! and the hand-offs to its one writer) is paid once per batch instead of
//! once per request, and a hot row (one SKU's stock, one brand's order
//! counter) is locked once for the batch instead of being handed from
//! transaction to transaction at commit speed.
//!
//! A *lane* is one connection's batches. There is one lane: SQLite has one
//! writer anyway, and on PostgreSQL one lane per instance means no two
//! batches of an instance wait for each other's row locks (two lanes that
//! each hold a row the other's next member wants would deadlock). With
//! [`PoolSettings::group_commit`](crate::PoolSettings) at 1 the batches are
//! single transactions and PostgreSQL gets a lane per connection.
//!
//! Several instances on one PostgreSQL each have their lane; two of their
//! batches can still come to wait for each other, and PostgreSQL's deadlock
//! detector then fails one member's statement (its request answers 503 and
//! may be retried), as it would for two ordinary transactions taking rows
//! in opposite orders.
//!
//! How one [`Tx`](crate::Tx) goes through its lane:
//! - `begin` waits for the lane, opens a batch if none is open, and sets the
//!   savepoint `member`.
//! - `commit` releases the savepoint. If another writer already waits for
//!   the lane and the batch is not full, the lane passes to it and this one
//!   waits for the batch's commit; otherwise it commits the batch and tells
//!   every member. So `commit` returns only once the work is durable, as a
//!   transaction of its own would.
//! - A `Tx` dropped without `commit` (an early `?`) rolls back to its
//!   savepoint: its own work is undone, the batch's is kept. An order number
//!   taken inside a rolled-back savepoint is given back with it, so numbers
//!   stay gapless.
//!
//! The invariant that keeps a batch from being stranded: the lane is let go
//! with a batch open only to a writer already waiting for it. Every step
//! that holds the lane runs on a task of its own, so a request cancelled
//! half-way (a client that hung up) cannot drop the lane in the middle.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use sqlx::{Postgres, Sqlite};
use tokio::sync::{Mutex, OwnedMutexGuard, oneshot};

use crate::{Db, DbError, DbResult, Pool, PoolSettings};

/// One connection's batches.
#[derive(Default)]
pub(crate) struct Lane {
    batch: Arc<Mutex<Option<Batch>>>,
    /// Writers waiting for this lane.
    waiting: AtomicUsize,
}

/// The lane, held by the one writer running in it now.
pub(crate) type Held = OwnedMutexGuard<Option<Batch>>;

/// An open database transaction and the members whose savepoints it holds.
pub(crate) struct Batch {
    pub(crate) tx: Open,
    /// Each committed member, told when the batch commits.
    members: Vec<oneshot::Sender<Result<(), String>>>,
}

/// The database transaction itself.
pub(crate) enum Open {
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

/// How a member leaves its lane.
#[derive(Clone, Copy)]
pub(crate) enum Leave {
    /// Keep the work (`savepoint: false`: a lone SQLite statement, which
    /// undoes itself if it fails, so it needs none).
    Commit { savepoint: bool },
    /// Roll back to the savepoint (`false`: it was never set).
    RollBack { savepoint: bool },
}

/// The lanes of one [`Db`].
pub(crate) struct Lanes {
    lanes: Vec<Lane>,
    /// Most members in one batch: bounds how long the first one waits.
    max_members: usize,
    /// Batches committed, and the transactions they held (for `/metrics`).
    pub(crate) commits: AtomicU64,
    pub(crate) transactions: AtomicU64,
}

impl Lanes {
    pub(crate) fn new(pool: &Pool, settings: &PoolSettings) -> Self {
        let max_members = settings.group_commit.max(1) as usize;
        let count = match pool {
            Pool::Postgres(_) if max_members == 1 => settings.max_connections.max(1) as usize,
            _ => 1,
        };
        Self {
            lanes: (0..count).map(|_| Lane::default()).collect(),
            max_members,
            commits: AtomicU64::new(0),
            transactions: AtomicU64::new(0),
        }
    }
}

impl Db {
    /// Waits for a lane and makes sure it has a batch open.
    pub(crate) async fn join_batch(&self) -> DbResult<(usize, Held)> {
        let index = self.least_busy_lane();
        let lane = &self.lanes.lanes[index];
        lane.waiting.fetch_add(1, Ordering::SeqCst);
        let mut held = lane.batch.clone().lock_owned().await;
        lane.waiting.fetch_sub(1, Ordering::SeqCst);
        if held.is_none() {
            let tx = match self.pool() {
                Pool::Sqlite { writer, .. } => Open::Sqlite(writer.begin_with("BEGIN IMMEDIATE").await?),
                Pool::Postgres(pool) => Open::Postgres(pool.begin().await?),
            };
            *held = Some(Batch { tx, members: Vec::new() });
        }
        Ok((index, held))
    }

    fn least_busy_lane(&self) -> usize {
        let load = |lane: &Lane| lane.waiting.load(Ordering::SeqCst) + usize::from(lane.batch.try_lock().is_err());
        let lanes = &self.lanes.lanes;
        (0..lanes.len()).min_by_key(|&index| load(&lanes[index])).unwrap_or(0)
    }

    /// Ends a member's part and passes the lane on or commits the batch.
    /// Answers, for a commit, where the batch's outcome will arrive.
    pub(crate) async fn leave_batch(
        &self,
        index: usize,
        mut held: Held,
        leave: Leave,
    ) -> DbResult<oneshot::Receiver<Result<(), String>>> {
        let (told, outcome) = oneshot::channel();
        let step = match leave {
            Leave::Commit { savepoint: true } => savepoint(&mut held, "RELEASE member").await,
            Leave::Commit { savepoint: false } => Ok(()),
            Leave::RollBack { savepoint: false } => Ok(()),
            Leave::RollBack { savepoint: true } => savepoint(&mut held, "ROLLBACK TO member; RELEASE member").await,
        };
        if let Err(error) = step {
            // The batch can no longer tell this member's work from the
            // others': none of it commits.
            fail_batch(&mut held, &error.to_string());
            return Err(error);
        }
        if matches!(leave, Leave::Commit { .. }) {
            held.as_mut().expect("a member's batch is open").members.push(told);
        }
        let lane = &self.lanes.lanes[index];
        let full = held.as_ref().is_some_and(|batch| batch.members.len() >= self.lanes.max_members);
        if lane.waiting.load(Ordering::SeqCst) == 0 || full {
            self.commit_batch(&mut held).await;
        }
        Ok(outcome)
    }

    async fn commit_batch(&self, held: &mut Held) {
        let Some(Batch { tx, members }) = held.take() else { return };
        if members.is_empty() {
            // Every member rolled back: nothing to keep.
            drop(tx);
            return;
        }
        let result = match tx {
            Open::Sqlite(tx) => tx.commit().await,
            Open::Postgres(tx) => tx.commit().await,
        };
        let result = result.map_err(|error| error.to_string());
        if result.is_ok() {
            self.committed();
            self.lanes.commits.fetch_add(1, Ordering::Relaxed);
            self.lanes.transactions.fetch_add(members.len() as u64, Ordering::Relaxed);
        }
        for member in members {
            let _ = member.send(result.clone());
        }
    }
}

/// Runs a savepoint statement in the batch.
pub(crate) async fn savepoint(held: &mut Held, sql: &'static str) -> DbResult<()> {
    let batch = held.as_mut().expect("a member's batch is open");
    match &mut batch.tx {
        Open::Sqlite(tx) => sqlx::raw_sql(sql).execute(&mut **tx).await.map(|_| ())?,
        Open::Postgres(tx) => sqlx::raw_sql(sql).execute(&mut **tx).await.map(|_| ())?,
    }
    Ok(())
}

/// Rolls the whole batch back and tells its members.
pub(crate) fn fail_batch(held: &mut Held, why: &str) {
    if let Some(Batch { tx, members }) = held.take() {
        drop(tx);
        for member in members {
            let _ = member.send(Err(format!("the batch this write shared was rolled back: {why}")));
        }
    }
}

/// What a member's `commit` answers once its batch is done.
pub(crate) async fn outcome(outcome: oneshot::Receiver<Result<(), String>>) -> DbResult<()> {
    match outcome.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(why)) => Err(DbError::Other(anyhow::anyhow!("commit failed: {why}"))),
        Err(_) => Err(DbError::Other(anyhow::anyhow!("commit failed: the batch was abandoned"))),
    }
}
