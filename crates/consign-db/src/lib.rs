//! Consign's storage: one API over SQLite and PostgreSQL.
//!
//! Every query is written once, with `$1` placeholders that both engines
//! accept, and run through [`sql`]: a write is a [`Tx`] passed through
//! ordinary functions (`db.begin()` … `tx.commit()`), a read is
//! `db.read(…)`. Where SQL must differ (the DDL, the job claim, the event
//! horizon, search), the function matches on the engine around that one
//! statement.
//!
//! Architecture invariants:
//! - Every function that reads or writes tenant data takes a [`Scope`], and
//!   a row outside the scope is reported as [`DbError::NotFound`], exactly as
//!   if it did not exist.
//! - On SQLite every write runs on the single writer connection inside
//!   `BEGIN IMMEDIATE`, so concurrent writers queue instead of failing with
//!   "database is locked"; reads use a separate pool.
//! - Concurrent write transactions share one database transaction and one
//!   commit, each in its own savepoint (`group_commit`); a `commit()`
//!   returns only once the shared commit is durable.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

pub mod access;
pub mod alerts;
pub mod api_keys;
pub mod audit;
pub mod brands;
pub mod dashboard;
pub mod deliveries;
mod engine;
mod error;
pub mod events;
pub mod fulfillment;
mod group_commit;
pub mod idempotency;
pub mod inbound;
pub mod invitations;
pub mod jobs;
mod json_text;
pub mod messages;
pub mod notifications;
pub mod orders;
pub mod page;
pub mod payments;
pub mod products;
pub mod rate_limits;
pub mod reactions;
pub mod schema;
pub mod scope;
pub mod secrets;
pub mod sessions;
pub mod sql;
pub mod stock;
pub mod tx;
pub mod users;
pub mod warehouses;

pub use error::DbError;
pub use json_text::JsonText;
pub use page::{Page, PageRequest};
pub use scope::{Origin, Principal, Scope};
pub use sql::{Statement, Tx};
pub use tx::{AuditEntry, NewEvent, NewJob};

/// Result of a storage call.
pub type DbResult<T, E = DbError> = Result<T, E>;

/// Which engine a [`Db`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// Embedded SQLite (the default).
    Sqlite,
    /// PostgreSQL (production, several instances).
    Postgres,
}

/// Pool sizes and timeouts.
#[derive(Clone, Debug)]
pub struct PoolSettings {
    /// Most connections (SQLite: readers; the writer is always one).
    pub max_connections: u32,
    /// How long a caller waits for a free connection.
    pub acquire_timeout: Duration,
    /// Most write transactions that share one commit (see `group_commit`);
    /// 1 turns group commit off, and then on PostgreSQL every transaction
    /// has a connection of its own, as many at once as the pool allows.
    pub group_commit: u32,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self { max_connections: 16, acquire_timeout: Duration::from_secs(10), group_commit: 32 }
    }
}

#[doc(hidden)]
pub enum Pool {
    Sqlite { writer: SqlitePool, reader: SqlitePool },
    Postgres(PgPool),
}

/// A handle on the database. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: Arc<Pool>,
    /// Signalled after each SQLite write commits (see `events::EventWaker`).
    commits: Arc<tokio::sync::watch::Sender<u64>>,
    /// Where write transactions share commits.
    lanes: Arc<group_commit::Lanes>,
}

impl Db {
    /// Connects by URL scheme: `sqlite://path` (created if missing) or
    /// `postgres://…`. Any other scheme is an error, never a new file.
    pub async fn connect(url: &str, settings: &PoolSettings) -> anyhow::Result<Self> {
        let pool = if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .with_context(|| "invalid SQLite database URL")?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
                .pragma("temp_store", "memory");
            if let Some(dir) = sqlite_parent_dir(url) {
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("cannot create data directory {}", dir.display()))?;
            }
            if let Some(file) = sqlite_file(url) {
                owner_only_file(&file)
                    .with_context(|| format!("cannot create the database file {}", file.display()))?;
            }
            // A connection to a local file does not go stale, so the pool's
            // ping before every acquire (a hop to SQLite's worker thread,
            // measured as the largest cost of a short request) is skipped.
            let writer = SqlitePoolOptions::new()
                .max_connections(1)
                .test_before_acquire(false)
                .acquire_timeout(settings.acquire_timeout)
                .connect_with(options.clone())
                .await
                .context("cannot open the SQLite database")?;
            let reader = SqlitePoolOptions::new()
                .max_connections(settings.max_connections.max(1))
                .test_before_acquire(false)
                .acquire_timeout(settings.acquire_timeout)
                .connect_with(options.read_only(true))
                .await
                .context("cannot open the SQLite database for reading")?;
            Pool::Sqlite { writer, reader }
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let options = PgConnectOptions::from_str(url).context("invalid PostgreSQL URL")?;
            let pool = PgPoolOptions::new()
                .max_connections(settings.max_connections.max(1))
                .acquire_timeout(settings.acquire_timeout)
                .connect_with(options)
                .await
                .context("cannot connect to PostgreSQL")?;
            Pool::Postgres(pool)
        } else {
            anyhow::bail!("unsupported database URL scheme: use sqlite://… or postgres://…");
        };
        let lanes = group_commit::Lanes::new(&pool, settings);
        Ok(Self { pool: Arc::new(pool), commits: Arc::new(tokio::sync::watch::Sender::new(0)), lanes: Arc::new(lanes) })
    }

    /// Wakes this process's event followers after a SQLite commit.
    #[doc(hidden)]
    pub fn committed(&self) {
        self.commits.send_modify(|count| *count = count.wrapping_add(1));
    }

    pub(crate) fn commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.commits.subscribe()
    }

    /// Applies every pending migration. Safe to run from several instances
    /// at once on PostgreSQL (the migrator takes an advisory lock).
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match self.pool() {
            Pool::Sqlite { writer, .. } => {
                sqlx::migrate!("./migrations/sqlite").run(writer).await?;
            }
            Pool::Postgres(pool) => {
                sqlx::migrate!("./migrations/postgres").run(pool).await?;
            }
        }
        Ok(())
    }

    /// The engine behind this handle.
    pub fn engine(&self) -> Engine {
        match self.pool() {
            Pool::Sqlite { .. } => Engine::Sqlite,
            Pool::Postgres(_) => Engine::Postgres,
        }
    }

    /// Answers whether the database takes a query now (for `/readyz`).
    pub async fn ping(&self) -> DbResult<()> {
        self.read("SELECT 1").execute().await?;
        Ok(())
    }

    /// Connections in use and idle, summed over pools, and how many write
    /// transactions shared how many commits (for `/metrics`).
    pub fn pool_stats(&self) -> PoolStats {
        let (size, idle) = match self.pool() {
            Pool::Sqlite { writer, reader } => (writer.size() + reader.size(), writer.num_idle() + reader.num_idle()),
            Pool::Postgres(pool) => (pool.size(), pool.num_idle()),
        };
        PoolStats {
            size,
            idle: idle as u32,
            commits: self.lanes.commits.load(std::sync::atomic::Ordering::Relaxed),
            transactions: self.lanes.transactions.load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// Closes every connection; in-flight queries finish first. On SQLite
    /// this also checkpoints the WAL.
    pub async fn close(&self) {
        match self.pool() {
            Pool::Sqlite { writer, reader } => {
                reader.close().await;
                writer.close().await;
            }
            Pool::Postgres(pool) => pool.close().await,
        }
    }

    #[doc(hidden)]
    pub fn pool(&self) -> &Pool {
        &self.pool
    }
}

/// Pool occupancy.
#[derive(Clone, Copy, Debug)]
pub struct PoolStats {
    /// Open connections.
    pub size: u32,
    /// Of which idle.
    pub idle: u32,
    /// Batches of write transactions committed since start.
    pub commits: u64,
    /// Write transactions those batches committed.
    pub transactions: u64,
}

/// The database file of a `sqlite://` URL (none in memory).
fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = path.split('?').next()?;
    (!path.is_empty() && !path.starts_with(":memory:")).then(|| std::path::PathBuf::from(path))
}

/// Creates the database file readable by its owner only (0600), or makes
/// an existing one (and its `-wal` and `-shm`) so: it holds password
/// hashes, sessions and sealed secrets. SQLite gives the `-wal` and `-shm`
/// files it creates the database file's mode.
fn owner_only_file(path: &std::path::Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => return Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(error) => return Err(error),
    }
    #[cfg(unix)]
    for suffix in ["", "-wal", "-shm"] {
        use std::os::unix::fs::PermissionsExt as _;
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let Ok(metadata) = std::fs::metadata(&file) else { continue };
        let mode = metadata.permissions().mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode & 0o700))?;
        }
    }
    Ok(())
}

fn sqlite_parent_dir(url: &str) -> Option<std::path::PathBuf> {
    let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = path.split('?').next()?;
    if path.is_empty() || path.starts_with(":memory:") {
        return None;
    }
    let parent = std::path::Path::new(path).parent()?;
    (!parent.as_os_str().is_empty()).then(|| parent.to_path_buf())
}
