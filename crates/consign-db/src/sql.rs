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

use crate::{Db, DbResult, Engine, Pool};

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

/// One open write transaction. On SQLite it holds the single writer
/// connection (`BEGIN IMMEDIATE`, so writers queue instead of failing); on
/// PostgreSQL a pooled connection.
pub struct Tx {
    inner: TxInner,
    db: Db,
}

enum TxInner {
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

impl Db {
    /// Opens a write transaction.
    pub async fn begin(&self) -> DbResult<Tx> {
        let inner = match self.pool() {
            Pool::Sqlite { writer, .. } => TxInner::Sqlite(writer.begin_with("BEGIN IMMEDIATE").await?),
            Pool::Postgres(pool) => TxInner::Postgres(pool.begin().await?),
        };
        Ok(Tx { inner, db: self.clone() })
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

    /// One writing statement outside a transaction: it is atomic by itself,
    /// and saves the `BEGIN`/`COMMIT` round trips. (SQLite event followers
    /// are not woken: use a [`Tx`] for anything that records an event.)
    pub fn write_one(&self, sql: &'static str) -> Statement<'_> {
        let on = match self.pool() {
            Pool::Sqlite { writer, .. } => On::SqlitePool(writer),
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
        match &mut self.inner {
            TxInner::Sqlite(tx) => On::SqliteConn(tx),
            TxInner::Postgres(tx) => On::PgConn(tx),
        }
    }

    /// The engine, for the few statements whose SQL differs.
    pub fn engine(&self) -> Engine {
        match self.inner {
            TxInner::Sqlite(_) => Engine::Sqlite,
            TxInner::Postgres(_) => Engine::Postgres,
        }
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

    /// Commits, then wakes this process's event followers (SQLite).
    pub async fn commit(self) -> DbResult<()> {
        match self.inner {
            TxInner::Sqlite(tx) => tx.commit().await?,
            TxInner::Postgres(tx) => tx.commit().await?,
        }
        self.db.committed();
        Ok(())
    }
}

enum Sql {
    Static(&'static str),
    Built(String),
}

enum On<'c> {
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
/// bound to the engine's arguments and `$executor` to its connection.
macro_rules! run {
    ($statement:expr, |$sql:ident, $args:ident, $executor:ident| $call:expr) => {{
        let Statement { sql, args, on } = $statement;
        let args = args.map_err(sqlx::Error::Encode)?;
        let $sql: SqlStr = match sql {
            Sql::Static(text) => text.into_sql_str(),
            Sql::Built(text) => AssertSqlSafe(text).into_sql_str(),
        };
        match (on, args) {
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
        let args = match on {
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
