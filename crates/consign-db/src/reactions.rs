//! What follows each domain event, decided in one exhaustive match.
//!
//! Every event goes through [`Tx::record_event`]: it inserts the event row
//! and then writes, in the same transaction, what the event causes: the
//! `system` message on the order's thread that tells the customer what
//! happened, and the notification job (the customer's, or the thread's
//! staff digest). A new event type does not compile until [`reaction`] says
//! what it causes; outbound webhooks will add their delivery here.

use consign_domain::messaging::{Channel, SenderRole};
use consign_domain::{EventId, EventType, OrderId};
use serde_json::Value;

use crate::messages::write::{MessageInsert, post_message};
use crate::notifications::plan::{Plan, enqueue_notification};
use crate::{DbResult, NewEvent, Tx};

/// What one event causes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reaction {
    /// The `system` message posted to the order's thread, for the customer.
    pub system_message: Option<&'static str>,
    /// Who is notified.
    pub notify: Option<Plan>,
}

impl Reaction {
    const NONE: Reaction = Reaction { system_message: None, notify: None };

    /// Posts `text` on the order's thread and notifies the customer.
    const fn tell_and_notify(text: &'static str) -> Self {
        Reaction { system_message: Some(text), notify: Some(Plan::Customer) }
    }
}

/// What `event` causes.
pub fn reaction(event: &NewEvent) -> Reaction {
    use EventType as E;
    match event.event_type {
        E::OrderCreated | E::OrderLinkRequested => Reaction { system_message: None, notify: Some(Plan::Customer) },
        E::OrderPaid => Reaction::tell_and_notify("Payment received. Your order is confirmed."),
        // The reason is staff text, kept for staff (the event, the audit
        // log): it never goes to the customer.
        E::OrderCancelled => Reaction::tell_and_notify("This order was cancelled."),
        E::OrderRefunded => Reaction::tell_and_notify("Your payment was refunded."),
        E::OrderPartiallyRefunded => Reaction::tell_and_notify("Part of your payment was refunded."),
        E::PaymentFailed => Reaction {
            system_message: Some("A payment attempt failed. You can try again from your order page."),
            notify: None,
        },
        // The tracking link is added to the text when there is one.
        E::ShipmentInTransit => Reaction::tell_and_notify("Your parcel is on its way."),
        E::OrderDelivered => Reaction::tell_and_notify("Your order was delivered."),
        E::MessageCreated => Reaction { system_message: None, notify: message_notice(&event.payload) },
        E::OrderRefundDue
        | E::OrderReopened
        | E::OrderExpired
        | E::OrderAddressUpdated
        | E::OrderItemsUpdated
        | E::OrderNoteAdded
        | E::OrderUnfulfilled
        | E::OrderPartiallyShipped
        | E::OrderShipped
        | E::OrderReturned
        | E::OrderCompleted
        | E::PaymentAttemptStarted
        | E::PaymentCaptured
        | E::RefundRequested
        | E::RefundFailed
        | E::RefundRetried
        | E::FulfillmentOrderCreated
        | E::ShipmentCreated
        | E::ShipmentDraft
        | E::ShipmentReady
        | E::ShipmentDelivered
        | E::ShipmentException
        | E::ShipmentCancelled
        | E::MessageRead
        | E::MessageDeliveryUpdated
        | E::ThreadAssigned
        | E::ThreadClosed
        | E::ThreadReopened
        | E::ProductCreated
        | E::ProductUpdated
        | E::VariantCreated
        | E::VariantUpdated
        | E::InventoryAdjusted
        | E::WarehouseCreated
        | E::BrandWarehousesUpdated
        | E::AccessRevoked
        // Staff alerts announce themselves: the live event and the
        // `notifications.staff_alert` job enqueued with the alert.
        | E::StaffAlertRaised => Reaction::NONE,
    }
}

/// Who a new message notifies. Internal notes and system messages notify no
/// one (the event behind a system message notifies by itself); a staff
/// reply sent on email, SMS or WhatsApp is its own notification.
fn message_notice(message: &Value) -> Option<Plan> {
    let text = |key: &str| message.get(key).and_then(Value::as_str);
    if message.get("internal").and_then(Value::as_bool) != Some(false) {
        return None;
    }
    match (text("sender_role")?, text("channel")?) {
        ("customer", _) => Some(Plan::StaffDigest { thread_id: text("thread_id")?.to_owned() }),
        ("brand" | "threepl" | "platform", "in_app") => Some(Plan::Customer),
        _ => None,
    }
}

impl Tx {
    /// Records a domain event and what it causes ([`reaction`]), in this
    /// transaction.
    pub async fn record_event(&mut self, event: NewEvent) -> DbResult<EventId> {
        let id = self.insert_event_row(&event).await?;
        let reaction = reaction(&event);
        if let Some(text) = reaction.system_message
            && let Some(message) = system_message(&event, text)
        {
            // A system message records its own `message.created`, which
            // causes nothing more; boxing breaks the async recursion.
            Box::pin(post_message(self, message)).await?;
        }
        if let Some(plan) = reaction.notify {
            enqueue_notification(self, &event, id, plan).await?;
        }
        Ok(id)
    }
}

/// The `system` message `event` posts on its order's thread.
fn system_message(event: &NewEvent, text: &str) -> Option<MessageInsert> {
    let tracking_url = event.payload.get("tracking_url").and_then(Value::as_str).filter(|url| !url.is_empty());
    let body = match (event.event_type, tracking_url) {
        (EventType::ShipmentInTransit, Some(url)) => format!("{text} Track it here: {url}"),
        _ => text.to_owned(),
    };
    let order_id: OrderId = crate::tx::order_of(event)?.parse().ok()?;
    Some(MessageInsert {
        organization_id: event.organization_id,
        brand_id: event.brand_id?,
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

#[cfg(test)]
mod tests {
    use consign_domain::{BrandId, OrganizationId};
    use serde_json::json;

    use super::*;

    fn event(event_type: EventType, payload: Value) -> NewEvent {
        NewEvent {
            organization_id: OrganizationId::new(),
            brand_id: Some(BrandId::new()),
            event_type,
            aggregate_type: "order",
            aggregate_id: OrderId::new().to_string(),
            payload,
            actor: "system".into(),
        }
    }

    fn message(role: &str, channel: &str, internal: bool) -> NewEvent {
        event(
            EventType::MessageCreated,
            json!({"sender_role": role, "channel": channel, "internal": internal, "thread_id": "t1"}),
        )
    }

    #[test]
    fn order_events_notify_the_customer_and_others_nobody() {
        assert_eq!(reaction(&event(EventType::ShipmentInTransit, json!({}))).notify, Some(Plan::Customer));
        assert_eq!(reaction(&event(EventType::OrderCreated, json!({}))).notify, Some(Plan::Customer));
        assert_eq!(reaction(&event(EventType::InventoryAdjusted, json!({}))), Reaction::NONE);
        assert_eq!(reaction(&event(EventType::OrderNoteAdded, json!({"note": "x"}))), Reaction::NONE);
    }

    #[test]
    fn every_event_that_notifies_a_customer_has_a_template_and_no_hidden_event_tells_one() {
        use consign_domain::events::CustomerView;
        for kind in EventType::ALL.iter().copied().filter(|kind| *kind != EventType::MessageCreated) {
            let reaction = reaction(&event(kind, json!({})));
            if reaction.notify == Some(Plan::Customer) {
                assert!(crate::notifications::CUSTOMER_KINDS.contains(&kind.as_str()), "{kind} has no template");
            }
            if reaction.notify.is_some() || reaction.system_message.is_some() {
                assert_ne!(kind.customer_view(), CustomerView::Hidden, "{kind} tells a customer of a hidden event");
            }
        }
    }

    #[test]
    fn only_visible_staff_replies_in_the_app_notify_the_customer() {
        assert_eq!(reaction(&message("brand", "in_app", false)).notify, Some(Plan::Customer));
        assert_eq!(reaction(&message("threepl", "in_app", true)).notify, None, "an internal note");
        assert_eq!(reaction(&message("brand", "email", false)).notify, None, "the reply is its own email");
        assert_eq!(reaction(&message("system", "in_app", false)).notify, None);
        assert_eq!(
            reaction(&message("customer", "sms", false)).notify,
            Some(Plan::StaffDigest { thread_id: "t1".into() })
        );
    }

    #[test]
    fn a_shipment_on_its_way_links_its_tracking_page_and_a_cancellation_keeps_its_reason() {
        let shipped = event(EventType::ShipmentInTransit, json!({"tracking_url": "https://t.example/1"}));
        let text = reaction(&shipped).system_message.expect("a message");
        let message = system_message(&shipped, text).expect("for the order");
        assert_eq!(message.body, "Your parcel is on its way. Track it here: https://t.example/1");
        let cancelled = event(EventType::OrderCancelled, json!({"reason": "fraud suspected"}));
        let message = system_message(&cancelled, reaction(&cancelled).system_message.unwrap()).unwrap();
        assert!(!message.body.contains("fraud"));
    }
}
