//! The few things the engines do differently in behaviour, not only in SQL
//! spelling, behind one small trait: how a job claim keeps concurrent
//! claimers apart, how an event takes its place in commit order, which
//! event rows are final, and whether other instances' commits wake a live
//! follower.
//!
//! Two implementations: [`Postgres`] (row locks that skip each other, the
//! snapshot horizon, `LISTEN/NOTIFY`) and [`SingleWriter`], the portable
//! fallback for an engine whose writes are serialized (SQLite today). A
//! PostgreSQL-compatible distributed engine (Citus first, see
//! ARCHITECTURE.md) is a third implementation of this trait, not a change
//! to the modules that use it.

use crate::Engine;

/// What differs between engines beyond dialect.
pub(crate) trait Primitives: Sync {
    /// Appended to the inner `SELECT` of a job claim: how concurrent
    /// claimers take disjoint rows without waiting for each other.
    fn claim_lock(&self) -> &'static str;

    /// The statement inserting an event, binding `$1..$10` (id,
    /// organization, brand, type, aggregate type, aggregate id, payload,
    /// actor, created at, order id), with its position in commit order.
    fn insert_event(&self) -> &'static str;

    /// Added to every read of the event tail: keeps it to rows no
    /// transaction still running can come to sort before.
    fn final_events(&self) -> &'static str;
}

/// PostgreSQL: many writers at once.
pub(crate) struct Postgres;

impl Primitives for Postgres {
    // Claimers lock disjoint rows and skip each other's; the claim's outer
    // `status` check re-reads a row another claimer changed after our
    // snapshot.
    fn claim_lock(&self) -> &'static str {
        " FOR UPDATE SKIP LOCKED"
    }

    // `seq` and `txid` are filled by column defaults: the sequence and the
    // writing transaction's id.
    fn insert_event(&self) -> &'static str {
        "INSERT INTO events (id, organization_id, brand_id, type, aggregate_type, aggregate_id, payload, actor, created_at, order_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    }

    // Transaction ids and sequence numbers are handed out before commit, so
    // a later commit can hold a smaller position. Rows of transactions older
    // than the oldest one of ours still running in the statement's snapshot
    // are final: reading only those, in `(txid, seq)` order, never skips an
    // event. The snapshot's running list covers the whole cluster, so a
    // transaction is passed over only when `pg_stat_activity` shows it
    // belongs to another database (it never writes our events): another
    // application's long transaction on a shared cluster does not hold back
    // our feed. The activity view is read later than the snapshot; a
    // transaction it no longer shows is kept as running, which only delays.
    fn final_events(&self) -> &'static str {
        " AND txid < (SELECT coalesce(
             (SELECT min(running::text::bigint) FROM pg_snapshot_xip(pg_current_snapshot()) AS running
              WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity AS other
                  WHERE other.datname <> current_database()
                    AND other.backend_xid::text::bigint = running::text::bigint % 4294967296)),
             pg_snapshot_xmax(pg_current_snapshot())::text::bigint))"
    }
}

/// An engine that runs one write transaction at a time (SQLite's
/// `BEGIN IMMEDIATE`): commit order is the order writes start in, so no
/// lock, horizon or notification is needed.
pub(crate) struct SingleWriter;

impl Primitives for SingleWriter {
    fn claim_lock(&self) -> &'static str {
        ""
    }

    // The next `seq`, taken inside the one write transaction, is in commit
    // order; `txid` stays 0.
    fn insert_event(&self) -> &'static str {
        "INSERT INTO events (id, organization_id, brand_id, type, aggregate_type, aggregate_id, payload, actor, created_at, order_id, seq)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, (SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE txid = 0))"
    }

    fn final_events(&self) -> &'static str {
        ""
    }
}

impl Engine {
    /// This engine's behaviour where engines differ.
    pub(crate) fn primitives(self) -> &'static dyn Primitives {
        match self {
            Engine::Sqlite => &SingleWriter,
            Engine::Postgres => &Postgres,
        }
    }
}
