//! Consign's use cases: what the API, the pages and the worker share, so
//! that none of them wires storage and providers by itself.
//!
//! - [`checkout`]: a storefront checkout's rules, its order placed and its
//!   payment started.
//! - [`links`]: the addresses Consign sends people to, and [`tokens`], the
//!   order access tokens those addresses carry; [`account_tokens`], the
//!   password reset and invitation links of account emails.
//! - [`instance_secrets`]: the keys every instance sharing the database
//!   agrees on (JWT signing, order tokens, reply addresses), kept sealed.
//! - [`outbound`]: the one send pipeline of staff replies and
//!   notifications: the outbound limits, the send by channel, the retry rule.
//! - [`provider_accounts`]: a brand's sealed provider credentials opened
//!   into a provider client.
//! - [`payment_start`]: a payment attempt started at the provider after
//!   checkout (or on a retry).
//! - [`refund_sending`]: a pending refund sent to its provider and settled.
//! - [`order_commands`]: the staff commands on an order (cancel, note,
//!   payment, address, items, shipments), each checking the caller, the
//!   fields and then storing; [`messaging`], a message posted to an
//!   order's thread; [`warehouse_allocation`], the warehouses a brand
//!   ships from.
//!
//! Functions here return their own error types (or `DbError`); each edge
//! maps them to its own answers (an `AppError`, a job retry).
//!
//! Architecture invariant: this crate and `consign-web` are the only ones
//! that know Consign's URL paths (checked by the `architecture` test).

pub mod account_tokens;
pub mod checkout;
pub mod instance_secrets;
pub mod links;
pub mod messaging;
pub mod order_commands;
pub mod outbound;
pub mod payment_start;
pub mod provider_accounts;
pub mod refund_sending;
pub mod tokens;
pub mod warehouse_allocation;
