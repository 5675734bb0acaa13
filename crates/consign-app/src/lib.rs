//! Consign's use cases: what the API, the pages and the worker share, so
//! that none of them wires storage and providers by itself.
//!
//! Today it holds the addresses Consign sends people to ([`links`]) and the
//! order access tokens those addresses carry ([`tokens`]); the workflows
//! that span storage and providers (checkout with its payment, refunds,
//! outbound sends, staff commands) move here as they are re-cut.
//!
//! Architecture invariant: this crate and `consign-web` are the only ones
//! that know Consign's URL paths (checked by the `architecture` test).

pub mod links;
pub mod tokens;
