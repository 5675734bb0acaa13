//! The use cases the JSON API and the web pages share: what happens when
//! someone signs up, invites, accepts an invitation, changes or removes an
//! organization member, links an inbox item to an order, or stores a
//! payment provider's credentials, in one place so the two front ends
//! cannot drift apart (same checks, same refusals, same words).
//!
//! Neither front end owns them: `api::*` and `pages::*` both call in here,
//! and neither calls the other. Each function takes the caller's `Scope`
//! or `Caller` and answers `AppResult`; each front end turns that into its
//! own answer (problem+json, or a flash message on the page). One file per
//! capability.

pub mod brand_messages;
pub mod inbox;
pub mod invitations;
pub mod organizations;
pub mod payment_providers;
pub mod signup;
