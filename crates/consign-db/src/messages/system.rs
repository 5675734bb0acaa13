//! The `system` messages that order lifecycle events post to the order's
//! thread, so the customer's conversation shows what happened to the order
//! next to what was said about it.

use consign_domain::messaging::{Channel, SenderRole};
use consign_domain::{BrandId, OrderId};
use serde_json::Value;

use super::write::MessageInsert;
use crate::NewEvent;

/// The message an event posts, if it is one customers are told about.
pub(crate) fn message_for(event: &NewEvent) -> Option<MessageInsert> {
    let text = |key: &str| event.payload.get(key).and_then(Value::as_str).filter(|s| !s.is_empty());
    let body = match event.event_type {
        "order.paid" => "Payment received. Your order is confirmed.".to_owned(),
        // The reason is staff text, kept for staff (the event, the audit
        // log): it never goes to the customer.
        "order.cancelled" => "This order was cancelled.".to_owned(),
        "order.refunded" => "Your payment was refunded.".to_owned(),
        "order.partially_refunded" => "Part of your payment was refunded.".to_owned(),
        "payment.failed" => "A payment attempt failed. You can try again from your order page.".to_owned(),
        "shipment.in_transit" => match text("tracking_url") {
            Some(url) => format!("Your parcel is on its way. Track it here: {url}"),
            None => "Your parcel is on its way.".to_owned(),
        },
        "order.delivered" => "Your order was delivered.".to_owned(),
        _ => return None,
    };
    let brand_id: BrandId = event.brand_id?;
    let order_id: OrderId = crate::tx::order_of(event)?.parse().ok()?;
    Some(MessageInsert {
        organization_id: event.organization_id,
        brand_id,
        order_id,
        body,
        channel: Channel::InApp,
        sender_role: SenderRole::System,
        sender_id: None,
        internal: false,
        attachments: Value::Array(Vec::new()),
        external_id: None,
        actor: event.actor.clone(),
    })
}
