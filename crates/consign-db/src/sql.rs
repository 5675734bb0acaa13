//! How a statement runs, on either engine, from ordinary functions.
//!
//! A write opens a [`Tx`] with [`Db::begin`], passes `&mut Tx` to plain
//! `async fn`s, and ends with [`Tx::commit`]; dropping it (an early `?`)
//! rolls back. A read runs on the reader pool through [`Db::read`]. Both
//! hand out a [`Statement`]: one SQL text with `$1` placeholders that both
//! engines accept, its binds, and the fetch that runs it. The engine is
//! chosen inside [`Statement`]'s fetch methods, one statement at a time, so
//! nothing else in the crate is written twice; where the SQL itself differs,
//! the caller matches on [`Tx::engine`] around that one statement.
//!
//! A bound value must encode on both engines and a fetched row must decode
//! on both ([`Bind`], [`Row`], [`Column`]), so a type one engine cannot
//! handle fails to compile.

use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{
    Arguments as _, AssertSqlSafe, Decode, Encode, FromRow, PgConnection, Postgres, SqlSafeStr as _, SqlStr, Sqlite,
    SqliteConnection, Type,
};

use crate::group_commit::{self, Held, Joining, Leave, Open};
use crate::{Db, DbError, DbResult, Engine, Pool};

/// A value a statement can bind on both engines. It is copied into the
/// statement's arguments, so a borrowed value need only live for the call.
pub trait Bind<'t>: Encode<'t, Sqlite> + Type<Sqlite> + Encode<'t, Postgres> + Type<Postgres> + Send + 't {}
impl<'t, T> Bind<'t> for T where T: Encode<'t, Sqlite> + Type<Sqlite> + Encode<'t, Postgres> + Type<Postgres> + Send + 't
{}

/// A row type both engines decode (`#[derive(sqlx::FromRow)]`, tuples).
pub trait Row: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin {}
impl<T> Row for T where T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin {}

/// A single column both engines decode.
pub trait Column:
    for<'r> Decode<'r, Sqlite> + Type<Sqlite> + for<'r> Decode<'r, Postgres> + Type<Postgres> + Send + Unpin
{
}
impl<T> Column for T where
    T: for<'r> Decode<'r, Sqlite> + Type<Sqlite> + for<'r> Decode<'r, Postgres> + Type<Postgres> + Send + Unpin
{
}

/// One write transaction, as its caller sees it. Under the hood it is a
/// savepoint in a batch that concurrent writers share (see
/// [`crate::group_commit`]): on SQLite the batch holds the single writer
/// connection (`BEGIN IMMEDIATE`, so writers queue instead of failing), on
/// PostgreSQL a pooled connection of one of the write lanes.
pub struct Tx {
    /// The lane while this transaction runs in it; `None` once it left.
    held: Option<Held>,
    lane: usize,
    /// Whether the savepoint was set (a failed `SAVEPOINT` leaves none).
    savepoint: bool,
    db: Db,
}

impl Db {
    /// Opens a write transaction.
    pub async fn begin(&self) -> DbResult<Tx> {
        self.join(true, Joining::Shared).await
    }

    /// A write transaction for work that locks no row other requests want
    /// at the same time (a message post): on PostgreSQL it runs alone on a
    /// connection instead of queueing for the shared batch, so such writes
    /// overlap their round trips; on SQLite it is [`Db::begin`]. See
    /// `group_commit`.
    pub async fn begin_alone(&self) -> DbResult<Tx> {
        self.join(true, Joining::Alone).await
    }

    /// Joins a batch: with a savepoint of its own for a transaction, without
    /// one for a lone SQLite statement (SQLite undoes a failed statement by
    /// itself, and a lone statement has nothing else to undo).
    async fn join(&self, with_savepoint: bool, joining: Joining) -> DbResult<Tx> {
        // On a task of its own: a caller cancelled while waiting drops the
        // `Tx` the task made, which leaves the lane cleanly.
        let db = self.clone();
        let joined = tokio::spawn(async move {
            let (lane, held) = db.join_batch(joining).await?;
            let mut tx = Tx { held: Some(held), lane, savepoint: false, db };
            if with_savepoint {
                group_commit::savepoint(tx.held.as_mut().expect("just joined"), "SAVEPOINT member").await?;
                tx.savepoint = true;
            }
            Ok(tx)
        });
        joined.await.map_err(|error| DbError::Other(anyhow::anyhow!("beginning a transaction: {error}")))?
    }

    /// A read on the reader pool (outside any transaction).
    pub fn read(&self, sql: &'static str) -> Statement<'_> {
        Statement::new(Sql::Static(sql), self.on_reader())
    }

    /// A read whose text was built at run time from trusted pieces (column
    /// lists, lock clauses, engine-specific syntax), never from input.
    pub fn read_built(&self, sql: String) -> Statement<'_> {
        Statement::new(Sql::Built(sql), self.on_reader())
    }

    /// One writing statement, atomic by itself, for a write that is nothing
    /// more. On SQLite it joins the writers' batch as a transaction of its
    /// own (the one writer is shared anyway); on PostgreSQL it commits
    /// alone, so a hot row it touches (a rate-limit counter) is never held
    /// for a batch. (SQLite event followers are not woken: use a [`Tx`] for
    /// anything that records an event.)
    pub fn write_one(&self, sql: &'static str) -> Statement<'_> {
        let on = match self.pool() {
            Pool::Sqlite { .. } => On::Batched(self),
            Pool::Postgres(pool) => On::PgPool(pool),
        };
        Statement::new(Sql::Static(sql), on)
    }

    fn on_reader(&self) -> On<'_> {
        match self.pool() {
            Pool::Sqlite { reader, .. } => On::SqlitePool(reader),
            Pool::Postgres(pool) => On::PgPool(pool),
        }
    }
}

impl Tx {
    /// A statement in this transaction.
    pub fn query(&mut self, sql: &'static str) -> Statement<'_> {
        Statement::new(Sql::Static(sql), self.on())
    }

    /// A statement whose text was built at run time from trusted pieces.
    pub fn query_built(&mut self, sql: String) -> Statement<'_> {
        Statement::new(Sql::Built(sql), self.on())
    }

    fn on(&mut self) -> On<'_> {
        let batch = self.held.as_mut().and_then(|held| held.as_mut()).expect("an open transaction has its batch");
        match &mut batch.tx {
            Open::Sqlite(tx) => On::SqliteConn(tx),
            Open::Postgres(tx) => On::PgConn(tx),
        }
    }

    /// The engine, for the few statements whose SQL differs.
    pub fn engine(&self) -> Engine {
        self.db.engine()
    }

    /// `" FOR UPDATE"` on PostgreSQL, where rows read before a write must be
    /// locked; empty on SQLite, where the writer holds the whole database.
    pub fn lock_clause(&self) -> &'static str {
        match self.engine() {
            Engine::Sqlite => "",
            Engine::Postgres => " FOR UPDATE",
        }
    }

    /// The database this transaction writes to.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Commits: returns once the batch holding this transaction committed
    /// (and, on SQLite, this process's event followers were woken).
    pub async fn commit(mut self) -> DbResult<()> {
        let held = self.held.take().expect("an open transaction holds its lane");
        let (db, lane) = (self.db.clone(), self.lane);
        // On a task of its own, so a caller cancelled here cannot drop the
        // lane half-way; the wait for the batch is then safe to cancel.
        let leave = Leave::Commit { savepoint: self.savepoint };
        let left = tokio::spawn(async move { db.leave_batch(lane, held, leave).await });
        let outcome = left.await.map_err(|error| DbError::Other(anyhow::anyhow!("committing: {error}")))??;
        group_commit::outcome(outcome).await
    }
}

impl Drop for Tx {
    /// Not committed: rolls back to the savepoint, on a task, since a drop
    /// cannot wait.
    fn drop(&mut self) {
        let Some(mut held) = self.held.take() else { return };
        let leave = Leave::RollBack { savepoint: self.savepoint };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let (db, lane) = (self.db.clone(), self.lane);
                runtime.spawn(async move { db.leave_batch(lane, held, leave).await });
            }
            Err(_) => group_commit::fail_batch(&mut held, "a transaction was dropped outside the runtime"),
        }
    }
}

enum Sql {
    Static(&'static str),
    Built(String),
}

enum On<'c> {
    /// In a transaction of its own (SQLite's `write_one`).
    Batched(&'c Db),
    SqlitePool(&'c sqlx::SqlitePool),
    PgPool(&'c sqlx::PgPool),
    SqliteConn(&'c mut SqliteConnection),
    PgConn(&'c mut PgConnection),
}

enum Args {
    Sqlite(SqliteArguments),
    Postgres(PgArguments),
}

/// One statement: its text, its binds, and where it runs. Built with
/// [`bind`](Self::bind), or with [`push`](Self::push) and
/// [`push_bind`](Self::push_bind) for filters added at run time; run with
/// one of the fetch methods.
pub struct Statement<'c> {
    sql: Sql,
    args: Result<Args, BoxDynError>,
    on: On<'c>,
}

/// Runs one sqlx call on whichever engine the statement is for. `$args` is
/// bound to the engine's arguments and `$executor` to its connection. A
/// statement of its own (`On::Batched`) runs in a [`Tx`] made for it.
macro_rules! run {
    ($statement:expr, |$sql:ident, $args:ident, $executor:ident| $call:expr) => {{
        let Statement { sql, args, on } = $statement;
        let args = args.map_err(sqlx::Error::Encode)?;
        let $sql: SqlStr = match sql {
            Sql::Static(text) => text.into_sql_str(),
            Sql::Built(text) => AssertSqlSafe(text).into_sql_str(),
        };
        match (on, args) {
            (On::Batched(db), args) => {
                let mut tx = db.join(false, Joining::Shared).await?;
                let value = match (tx.on(), args) {
                    (On::SqliteConn($executor), Args::Sqlite($args)) => $call,
                    (On::PgConn($executor), Args::Postgres($args)) => $call,
                    _ => unreachable!("a statement's arguments are made for its own engine"),
                };
                tx.commit().await?;
                value
            }
            (On::SqlitePool($executor), Args::Sqlite($args)) => $call,
            (On::SqliteConn($executor), Args::Sqlite($args)) => $call,
            (On::PgPool($executor), Args::Postgres($args)) => $call,
            (On::PgConn($executor), Args::Postgres($args)) => $call,
            _ => unreachable!("a statement's arguments are made for its own engine"),
        }
    }};
}

impl<'c> Statement<'c> {
    fn new(sql: Sql, on: On<'c>) -> Self {
        let args = match &on {
            On::Batched(db) => match db.engine() {
                Engine::Sqlite => Args::Sqlite(SqliteArguments::default()),
                Engine::Postgres => Args::Postgres(PgArguments::default()),
            },
            On::SqlitePool(_) | On::SqliteConn(_) => Args::Sqlite(SqliteArguments::default()),
            On::PgPool(_) | On::PgConn(_) => Args::Postgres(PgArguments::default()),
        };
        Self { sql, args: Ok(args), on }
    }

    /// Binds the next `$n`.
    pub fn bind<'t, T: Bind<'t>>(mut self, value: T) -> Self {
        self.add(value);
        self
    }

    /// Appends trusted SQL text (never input: bind that).
    pub fn push(&mut self, text: &str) -> &mut Self {
        let sql = match std::mem::replace(&mut self.sql, Sql::Static("")) {
            Sql::Static(start) => format!("{start}{text}"),
            Sql::Built(mut sql) => {
                sql.push_str(text);
                sql
            }
        };
        self.sql = Sql::Built(sql);
        self
    }

    /// Appends the next placeholder and binds `value` to it.
    pub fn push_bind<'t, T: Bind<'t>>(&mut self, value: T) -> &mut Self {
        let n = self.add(value);
        self.push(&format!("${n}"))
    }

    /// Appends `column IN ($n, …)` for the values, or a false condition when
    /// there are none.
    pub fn push_in<'t, T: Bind<'t>>(&mut self, column: &str, values: impl IntoIterator<Item = T>) -> &mut Self {
        let mut values = values.into_iter().peekable();
        if values.peek().is_none() {
            return self.push("1 = 0");
        }
        self.push(column).push(" IN (");
        let mut first = true;
        for value in values {
            if !first {
                self.push(", ");
            }
            first = false;
            self.push_bind(value);
        }
        self.push(")")
    }

    /// Appends `VALUES (…), (…)`: one row per item, whose values `each`
    /// binds in column order (a multi-row insert is one statement).
    pub fn push_values<I>(
        &mut self,
        items: impl IntoIterator<Item = I>,
        mut each: impl FnMut(&mut Values<'_, 'c>, I),
    ) -> &mut Self {
        self.push("VALUES ");
        for (n, item) in items.into_iter().enumerate() {
            self.push(if n == 0 { "(" } else { ", (" });
            each(&mut Values { statement: self, first: true }, item);
            self.push(")");
        }
        self
    }

    /// Binds a value; answers its placeholder number.
    fn add<'t, T: Bind<'t>>(&mut self, value: T) -> usize {
        let Ok(args) = &mut self.args else { return 0 };
        let added = match args {
            Args::Sqlite(args) => args.add(value).map(|()| args.len()),
            Args::Postgres(args) => args.add(value).map(|()| args.len()),
        };
        match added {
            Ok(n) => n,
            Err(error) => {
                self.args = Err(error);
                0
            }
        }
    }

    /// Runs it; answers the rows it changed.
    pub async fn execute(self) -> DbResult<u64> {
        Ok(run!(self, |sql, args, on| sqlx::query_with(sql, args).execute(on).await?.rows_affected()))
    }

    /// The one row it answers (`DbError::NotFound` when none).
    pub async fn fetch_one<T: Row>(self) -> DbResult<T> {
        Ok(run!(self, |sql, args, on| sqlx::query_as_with(sql, args).fetch_one(on).await?))
    }

    /// The row it answers, if any.
    pub async fn fetch_optional<T: Row>(self) -> DbResult<Option<T>> {
        Ok(run!(self, |sql, args, on| sqlx::query_as_with(sql, args).fetch_optional(on).await?))
    }

    /// Every row it answers.
    pub async fn fetch_all<T: Row>(self) -> DbResult<Vec<T>> {
        Ok(run!(self, |sql, args, on| sqlx::query_as_with(sql, args).fetch_all(on).await?))
    }

    /// The first column of the one row it answers.
    pub async fn scalar<T: Column>(self) -> DbResult<T> {
        Ok(run!(self, |sql, args, on| sqlx::query_scalar_with(sql, args).fetch_one(on).await?))
    }

    /// The first column of the row it answers, if any.
    pub async fn scalar_optional<T: Column>(self) -> DbResult<Option<T>> {
        Ok(run!(self, |sql, args, on| sqlx::query_scalar_with(sql, args).fetch_optional(on).await?))
    }

    /// The first column of every row it answers.
    pub async fn scalars<T: Column>(self) -> DbResult<Vec<T>> {
        Ok(run!(self, |sql, args, on| sqlx::query_scalar_with(sql, args).fetch_all(on).await?))
    }
}

/// One row of a [`Statement::push_values`] list.
pub struct Values<'s, 'c> {
    statement: &'s mut Statement<'c>,
    first: bool,
}

impl Values<'_, '_> {
    /// Binds the row's next value.
    pub fn bind<'t, T: Bind<'t>>(&mut self, value: T) -> &mut Self {
        if !self.first {
            self.statement.push(", ");
        }
        self.first = false;
        self.statement.push_bind(value);
        self
    }
}

/// `%text%` with LIKE's wildcards in `text` escaped (escape character `\`).
pub(crate) fn like_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}
