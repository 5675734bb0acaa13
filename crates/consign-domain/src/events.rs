//! Every kind of domain event Consign records, in one enum.
//!
//! The stored and wire name (`order.paid`) is [`EventType::as_str`]. Each
//! type also says, here and nowhere else, who may see it: which events staff
//! sockets stream, and which payload fields a customer (an order access
//! token) may read on the timeline, the live feed and its replay. Adding an
//! event means adding a variant; the exhaustive matches below, and the one
//! in `consign_db::reactions` (what follows the event), make every decision
//! about it explicit.

use std::fmt;
use std::str::FromStr;

/// What a customer sees of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CustomerView {
    /// Nothing: the event is internal or carries staff text.
    Hidden,
    /// The event with only these payload fields.
    Fields(&'static [&'static str]),
    /// A message: shown whole, but only when the message says it is
    /// visible (`internal: false`).
    VisibleMessage,
}

macro_rules! event_types {
    ($($variant:ident => $name:literal, $doc:literal;)*) => {
        /// A kind of domain event.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventType {
            $(#[doc = $doc] $variant,)*
        }

        impl EventType {
            /// Every event type, for the catalog and for checks.
            pub const ALL: &'static [EventType] = &[$(EventType::$variant,)*];

            /// The stored and wire name, such as `order.paid`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(EventType::$variant => $name,)*
                }
            }

            /// One sentence on when it is recorded, for the event catalog.
            pub const fn description(self) -> &'static str {
                match self {
                    $(EventType::$variant => $doc,)*
                }
            }
        }
    };
}

// A table, not logic: one line per event keeps the name, the variant and
// its description side by side, and the two lookups above exhaustive.
event_types! {
    OrderCreated => "order.created", "A storefront or staff checkout placed the order and held its stock.";
    OrderLinkRequested => "order.link_requested", "Someone asked the shop for the order's link by its email and number; it is sent to the order's email.";
    OrderPaid => "order.paid", "The order's captured payments cover its total.";
    OrderPartiallyRefunded => "order.partially_refunded", "Part of the order's payments was refunded.";
    OrderRefunded => "order.refunded", "All of the order's payments were refunded.";
    OrderRefundDue => "order.refund_due", "The order holds more money than it owes and a refund is due.";
    OrderReopened => "order.reopened", "A payment reached a cancelled or expired order and reopened it.";
    OrderCancelled => "order.cancelled", "Staff cancelled the order and released its stock.";
    OrderExpired => "order.expired", "The unpaid order's stock hold ran out.";
    OrderAddressUpdated => "order.address_updated", "The shipping address changed.";
    OrderItemsUpdated => "order.items_updated", "Staff replaced the order's items.";
    OrderNoteAdded => "order.note_added", "Staff added an internal note.";
    OrderUnfulfilled => "order.unfulfilled", "No unit of the order is shipped any more.";
    OrderPartiallyShipped => "order.partially_shipped", "Some of the order's units are shipped.";
    OrderShipped => "order.shipped", "Every unit of the order is shipped.";
    OrderDelivered => "order.delivered", "Every unit of the order is delivered.";
    OrderReturned => "order.returned", "The order's units came back.";
    OrderCompleted => "order.completed", "The order is paid and delivered.";
    PaymentAttemptStarted => "payment.attempt_started", "A payment attempt was opened with a provider.";
    PaymentCaptured => "payment.captured", "A payment was captured or recorded.";
    PaymentFailed => "payment.failed", "A payment attempt failed.";
    RefundRequested => "refund.requested", "A refund was requested.";
    RefundFailed => "refund.failed", "A provider refused a refund.";
    RefundRetried => "refund.retried", "Staff retried a failed refund.";
    FulfillmentOrderCreated => "fulfillment_order.created", "A warehouse was asked to ship part of a paid order.";
    ShipmentCreated => "shipment.created", "A shipment was recorded for an order.";
    ShipmentDraft => "shipment.draft", "A shipment went back to draft.";
    ShipmentReady => "shipment.ready", "A shipment is packed and ready for the carrier.";
    ShipmentInTransit => "shipment.in_transit", "The carrier has the shipment.";
    ShipmentDelivered => "shipment.delivered", "The shipment was delivered.";
    ShipmentException => "shipment.exception", "The carrier reported a problem with the shipment.";
    ShipmentCancelled => "shipment.cancelled", "The shipment was cancelled.";
    MessageCreated => "message.created", "A message or internal note was posted on an order's thread.";
    MessageRead => "message.read", "Someone read messages of a thread.";
    MessageDeliveryUpdated => "message.delivery_updated", "A reply's delivery to the customer was sent, delivered, failed or will be retried.";
    ThreadAssigned => "thread.assigned", "A thread was assigned to a staff member.";
    ThreadClosed => "thread.closed", "A thread was closed.";
    ThreadReopened => "thread.reopened", "A thread was reopened.";
    ProductCreated => "product.created", "A product was created.";
    ProductUpdated => "product.updated", "A product changed.";
    VariantCreated => "variant.created", "A variant was added to a product.";
    VariantUpdated => "variant.updated", "A variant changed.";
    InventoryAdjusted => "inventory.adjusted", "Stock on hand changed at a warehouse.";
    WarehouseCreated => "warehouse.created", "A warehouse was created.";
    BrandWarehousesUpdated => "brand.warehouses_updated", "The warehouses a brand ships from changed.";
    AccessRevoked => "access.revoked", "A session, API key or user lost access; live sockets close.";
    StaffAlertRaised => "staff_alert.raised", "Something needs a person: a money job gave up or a webhook is stuck.";
}

/// Fields of a payment status change.
const PAYMENT_STATUS: &[&str] = &["order_id", "from", "to", "paid", "refunded", "currency"];
/// Fields of a fulfillment status change.
const FULFILLMENT_STATUS: &[&str] = &["fulfillment_status", "shipped_units", "ordered_units"];
/// Fields of a shipment status change.
const SHIPMENT_STATUS: &[&str] = &["order_id", "from", "to", "tracking_url"];
/// Fields of a thread status change.
const THREAD_STATUS: &[&str] = &["order_id", "thread_id", "status"];

impl EventType {
    /// What a customer may see of it. Staff notes, cancel and refund
    /// reasons, refund failures' causes, payment references, warehouses and
    /// assignees are staff text or internal and never listed here.
    pub const fn customer_view(self) -> CustomerView {
        use CustomerView::{Fields, Hidden, VisibleMessage};
        match self {
            Self::OrderCreated => Fields(&["number", "total", "currency", "reservation_expires_at"]),
            // The customer is told the link was sent; who asked is not known.
            Self::OrderLinkRequested => Fields(&["number"]),
            Self::OrderPaid | Self::OrderPartiallyRefunded | Self::OrderRefunded => Fields(PAYMENT_STATUS),
            Self::OrderCancelled => Fields(&["order_id", "refund_due"]),
            Self::OrderExpired | Self::OrderCompleted => Fields(&[]),
            Self::OrderAddressUpdated => Fields(&["shipping_address"]),
            Self::OrderItemsUpdated => Fields(&["order_id", "items", "total", "outstanding", "refund_due"]),
            Self::OrderPartiallyShipped | Self::OrderShipped | Self::OrderDelivered | Self::OrderReturned => {
                Fields(FULFILLMENT_STATUS)
            }
            Self::PaymentAttemptStarted => Fields(&["order_id", "attempt_id", "provider", "amount", "currency"]),
            Self::PaymentCaptured => {
                Fields(&["order_id", "payment_id", "attempt_id", "provider", "amount", "currency"])
            }
            Self::PaymentFailed => Fields(&["order_id", "attempt_id", "provider"]),
            Self::RefundRequested => Fields(&["order_id", "amount", "currency"]),
            Self::RefundFailed => Fields(&["order_id"]),
            Self::ShipmentCreated => Fields(&["order_id", "carrier", "tracking_number", "tracking_url", "items"]),
            Self::ShipmentReady
            | Self::ShipmentInTransit
            | Self::ShipmentDelivered
            | Self::ShipmentException
            | Self::ShipmentCancelled => Fields(SHIPMENT_STATUS),
            Self::MessageCreated => VisibleMessage,
            Self::MessageRead => Fields(&["order_id", "thread_id", "reader_id", "role", "read_at", "message_ids"]),
            Self::ThreadClosed | Self::ThreadReopened => Fields(THREAD_STATUS),
            Self::OrderRefundDue
            | Self::OrderReopened
            | Self::OrderNoteAdded
            | Self::OrderUnfulfilled
            | Self::RefundRetried
            | Self::FulfillmentOrderCreated
            | Self::ShipmentDraft
            | Self::ThreadAssigned
            | Self::MessageDeliveryUpdated
            | Self::ProductCreated
            | Self::ProductUpdated
            | Self::VariantCreated
            | Self::VariantUpdated
            | Self::InventoryAdjusted
            | Self::WarehouseCreated
            | Self::BrandWarehousesUpdated
            | Self::AccessRevoked
            | Self::StaffAlertRaised => Hidden,
        }
    }

    /// Whether staff live sockets stream it (within the brands they see).
    /// Catalog and stock changes are read from their lists, and
    /// `access.revoked` is acted on by the hub, never sent.
    pub const fn streams_to_staff(self) -> bool {
        match self {
            Self::RefundRequested
            | Self::RefundFailed
            | Self::RefundRetried
            | Self::ProductCreated
            | Self::ProductUpdated
            | Self::VariantCreated
            | Self::VariantUpdated
            | Self::InventoryAdjusted
            | Self::WarehouseCreated
            | Self::BrandWarehousesUpdated
            | Self::AccessRevoked => false,
            Self::OrderCreated
            | Self::OrderLinkRequested
            | Self::OrderPaid
            | Self::OrderPartiallyRefunded
            | Self::OrderRefunded
            | Self::OrderRefundDue
            | Self::OrderReopened
            | Self::OrderCancelled
            | Self::OrderExpired
            | Self::OrderAddressUpdated
            | Self::OrderItemsUpdated
            | Self::OrderNoteAdded
            | Self::OrderUnfulfilled
            | Self::OrderPartiallyShipped
            | Self::OrderShipped
            | Self::OrderDelivered
            | Self::OrderReturned
            | Self::OrderCompleted
            | Self::PaymentAttemptStarted
            | Self::PaymentCaptured
            | Self::PaymentFailed
            | Self::FulfillmentOrderCreated
            | Self::ShipmentCreated
            | Self::ShipmentDraft
            | Self::ShipmentReady
            | Self::ShipmentInTransit
            | Self::ShipmentDelivered
            | Self::ShipmentException
            | Self::ShipmentCancelled
            | Self::MessageCreated
            | Self::MessageRead
            | Self::MessageDeliveryUpdated
            | Self::ThreadAssigned
            | Self::ThreadClosed
            | Self::ThreadReopened
            | Self::StaffAlertRaised => true,
        }
    }

    /// The types a customer may see at all, for narrowing reads in SQL.
    pub fn customer_visible() -> impl Iterator<Item = EventType> {
        Self::ALL.iter().copied().filter(|kind| kind.customer_view() != CustomerView::Hidden)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event name that is not one of [`EventType::ALL`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown event type `{0}`")]
pub struct UnknownEventType(pub String);

impl FromStr for EventType {
    type Err = UnknownEventType;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL.iter().copied().find(|kind| kind.as_str() == name).ok_or_else(|| UnknownEventType(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_unique_and_parses_back() {
        let mut names: Vec<_> = EventType::ALL.iter().map(|kind| kind.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), EventType::ALL.len());
        for kind in EventType::ALL {
            assert_eq!(kind.as_str().parse::<EventType>(), Ok(*kind));
            let (family, action) = kind.as_str().split_once('.').expect("a family and an action");
            assert!(!family.is_empty() && !action.is_empty() && !kind.description().is_empty());
        }
        assert!("order.teleported".parse::<EventType>().is_err());
    }

    #[test]
    fn staff_text_is_never_in_a_customer_view() {
        assert_eq!(EventType::OrderNoteAdded.customer_view(), CustomerView::Hidden);
        assert_eq!(EventType::AccessRevoked.customer_view(), CustomerView::Hidden);
        let CustomerView::Fields(fields) = EventType::OrderCancelled.customer_view() else { panic!("shown") };
        assert!(!fields.contains(&"reason"));
        let CustomerView::Fields(fields) = EventType::RefundFailed.customer_view() else { panic!("shown") };
        assert!(!fields.contains(&"error"));
    }
}
