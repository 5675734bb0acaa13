//! Cross-cutting request handling, applied once to every route.

pub mod idempotency;
pub mod observe;
pub mod problems;
