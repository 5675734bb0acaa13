//! Consign's background worker: it claims the jobs business transactions
//! queued in the `jobs` table and runs their handlers.
//!
//! [`Runner`] is the worker: handlers are registered by job kind, periodic
//! jobs by kind and interval, and [`Runner::run`] loops until shutdown. The
//! handlers themselves are listed in [`handlers::register_all`].
//!
//! Architecture invariants:
//! - Delivery is at least once: a worker that dies mid-job leaves it to be
//!   reaped and run again. Every handler must be idempotent.
//! - Exactly-once decisions belong to the database, never to this process:
//!   claiming (`consign_db::jobs::claim`), and periodic slots (a
//!   `dedupe_key` per slot), so any number of instances may run a worker.
//! - Nothing here knows HTTP; handlers get a `Db` and a JSON payload.

pub mod deliver;
pub mod handlers;
pub mod notify;
pub mod outbound;
pub mod payments;
mod runner;

pub use runner::{Handler, Runner, RunnerConfig, backoff};
