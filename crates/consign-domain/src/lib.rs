//! Consign's domain: the types and rules every other crate shares.
//!
//! Architecture invariant: this crate does no IO. It knows nothing of HTTP,
//! SQL or the clock's source; callers hand it what it needs.

pub mod events;
pub mod ids;
pub mod ledger;
pub mod messaging;
pub mod money;
pub mod order;
pub mod policy;
pub mod roles;
#[cfg(feature = "sqlx")]
mod sql;
pub mod status;
pub mod text;
pub mod time;

pub use events::EventType;
pub use ids::*;
pub use money::Money;
pub use time::Timestamp;
