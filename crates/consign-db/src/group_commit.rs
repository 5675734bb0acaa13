//! Group commit: concurrent write transactions share one database
//! transaction, each inside its own savepoint, with one commit for them all.
//!
//! Why: a commit's fixed cost (PostgreSQL's WAL flush, SQLite's WAL append
//! and the hand-offs to its one writer) is paid once per batch instead of
//! once per request, and a hot row (one SKU's stock, one brand's order
//! counter) is locked once for the batch instead of being handed from
//! transaction to transaction at commit speed.
//!
//! A *lane* is one connection's batches. There is one shared lane: SQLite
//! has one writer anyway, and on PostgreSQL one batching lane per instance
//! means no two batches of an instance wait for each other's row locks (two
//! lanes that each hold a row the other's next member wants would
//! deadlock). With [`PoolSettings::group_commit`](crate::PoolSettings) at 1
//! the batches are single transactions and PostgreSQL gets a lane per
//! connection.
//!
//! On PostgreSQL, writes that touch no row many requests want (a message
//! post locks only its own thread) gain nothing from sharing a batch and
//! lose the overlap of their round trips: they begin with
//! [`Db::begin_alone`](crate::Db::begin_alone) and run in lanes of one
//! transaction each, beside the shared one (all but two of the pool's
//! connections).
//! Such a transaction and a batch can still wait for each other's rows;
//! the deadlock detector then fails one, as below.
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
pub(crate) struct Lane {
    batch: Arc<Mutex<Option<Batch>>>,
    /// Writers waiting for this lane.
    waiting: AtomicUsize,
    /// Most members in one batch: bounds how long the first one waits.
    max_members: usize,
}

impl Lane {
    fn of(max_members: usize) -> Self {
        Self { batch: Arc::default(), waiting: AtomicUsize::new(0), max_members: max_members.max(1) }
    }
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
    /// Lanes that batch, for [`Db::begin`](crate::Db::begin).
    shared: Vec<Lane>,
    /// Lanes of one transaction each, for
    /// [`Db::begin_alone`](crate::Db::begin_alone); empty where writes
    /// alone would only queue for the one writer (SQLite) or where every
    /// lane is already alone.
    alone: Vec<Lane>,
    /// Batches committed, and the transactions they held (for `/metrics`).
    pub(crate) commits: AtomicU64,
    pub(crate) transactions: AtomicU64,
}

/// Which lanes a write transaction may run in.
#[derive(Clone, Copy)]
pub(crate) enum Joining {
    /// A shared batch.
    Shared,
    /// A transaction of its own where the engine gains from it.
    Alone,
}

impl Lanes {
    pub(crate) fn new(pool: &Pool, settings: &PoolSettings) -> Self {
        let max_members = settings.group_commit.max(1) as usize;
        let connections = settings.max_connections.max(1) as usize;
        let (shared, alone) = match pool {
            Pool::Postgres(_) if max_members == 1 => (connections, 0),
            // Two connections stay for reads (and the shared lane's own).
            Pool::Postgres(_) => (1, connections.saturating_sub(2).max(1)),
            Pool::Sqlite { .. } => (1, 0),
        };
        Self {
            shared: (0..shared).map(|_| Lane::of(max_members)).collect(),
            alone: (0..alone).map(|_| Lane::of(1)).collect(),
            commits: AtomicU64::new(0),
            transactions: AtomicU64::new(0),
        }
    }

    /// The lane at `index` ([`Db::join_batch`] numbers the shared lanes
    /// first, then the lone ones).
    fn get(&self, index: usize) -> &Lane {
        match index.checked_sub(self.shared.len()) {
            Some(alone) => &self.alone[alone],
            None => &self.shared[index],
        }
    }
}

impl Db {
    /// Waits for a lane and makes sure it has a batch open.
    pub(crate) async fn join_batch(&self, joining: Joining) -> DbResult<(usize, Held)> {
        let index = match joining {
            Joining::Alone if !self.lanes.alone.is_empty() => self.lanes.shared.len() + least_busy(&self.lanes.alone),
            _ => least_busy(&self.lanes.shared),
        };
        let lane = self.lanes.get(index);
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
        let lane = self.lanes.get(index);
        let full = held.as_ref().is_some_and(|batch| batch.members.len() >= lane.max_members);
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

/// The index of the lane with the fewest writers in it or waiting.
fn least_busy(lanes: &[Lane]) -> usize {
    let load = |lane: &Lane| lane.waiting.load(Ordering::SeqCst) + usize::from(lane.batch.try_lock().is_err());
    (0..lanes.len()).min_by_key(|&index| load(&lanes[index])).unwrap_or(0)
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
