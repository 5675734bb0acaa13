//! Consign's background worker: it claims the jobs business transactions
//! queued in the `jobs` table and runs their handlers.
//!
//! [`Runner`] is the worker: handlers are registered by job kind (a payload
//! type of `consign_db::jobs::kinds`), periodic jobs by kind and interval,
//! and [`Runner::run`] loops until shutdown. Every handler and periodic job
//! is registered in one place, [`handlers::register_every_job`], which both
//! the binary and the test kit call.
//!
//! Architecture invariants:
//! - Delivery is at least once: a worker that dies mid-job leaves it to be
//!   reaped and run again. Every handler must be idempotent.
//! - Exactly-once decisions belong to the database, never to this process:
//!   claiming (`consign_db::jobs::claim`), and periodic slots (a
//!   `dedupe_key` per slot), so any number of instances may run a worker.
//! - Every kind of `consign_db::jobs::kinds::ALL` has exactly one handler.
//! - Nothing here knows HTTP; handlers get a `Db`, their typed payload and
//!   the [`handlers::Services`] they call.

pub mod accounts;
pub mod deliver;
pub mod handlers;
pub mod money_jobs;
pub mod notify;
mod runner;

pub use runner::{Handler, JobError, JobResult, Runner, RunnerConfig, backoff};
