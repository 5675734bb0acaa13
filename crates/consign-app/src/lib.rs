//! Consign's use cases: what the API, the pages and the worker share, so
//! that none of them wires storage and providers by itself.
//!
//! - [`links`]: the addresses Consign sends people to, and [`tokens`], the
//!   order access tokens those addresses carry.
//! - [`provider_accounts`]: a brand's payment provider set up or not, its
//!   sealed credentials opened into a provider client.
//! - [`payment_start`]: a payment attempt started at the provider after
//!   checkout (or on a retry).
//! - [`refund_sending`]: a pending refund sent to its provider and settled.
//!
//! The other workflows that span storage and providers (outbound sends,
//! staff commands) move here as they are re-cut. Functions here return
//! their own error types (or `DbError`); each edge maps them to its own
//! answers (an `AppError`, a job retry).
//!
//! Architecture invariant: this crate and `consign-web` are the only ones
//! that know Consign's URL paths (checked by the `architecture` test).

pub mod links;
pub mod payment_start;
pub mod provider_accounts;
pub mod refund_sending;
pub mod tokens;
