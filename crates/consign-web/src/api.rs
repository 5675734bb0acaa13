//! The JSON API under `/api/v1`. Each module owns one resource: its routes,
//! request and response types, and handlers.

pub mod api_keys;
pub mod attachments;
pub mod auth;
pub mod brands;
pub mod channel_webhooks;
pub mod events;
pub mod fulfillment;
pub mod inbox;
pub mod inventory;
pub mod invitations;
pub mod me;
pub mod messages;
pub mod notifications;
pub mod order_payments;
pub mod orders;
pub mod organizations;
pub mod payment_providers;
pub mod products;
pub mod storefront;
pub mod warehouses;
pub mod webhooks;

use utoipa_axum::router::OpenApiRouter;

use crate::AppState;

/// Every `/api/v1` route, with its OpenAPI description.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(auth::router())
        .merge(me::router())
        .merge(organizations::router())
        .merge(invitations::router())
        .merge(brands::router())
        .merge(api_keys::router())
        .merge(storefront::router())
        .merge(orders::router())
        .merge(fulfillment::router())
        .merge(events::router())
        .merge(messages::router())
        .merge(notifications::router())
        .merge(attachments::router())
        .merge(products::router())
        .merge(warehouses::router())
        .merge(inventory::router())
        .merge(order_payments::router())
        .merge(payment_providers::router())
        .merge(inbox::router())
        .merge(webhooks::router())
        .merge(channel_webhooks::router())
}
