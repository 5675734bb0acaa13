//! Lifecycles: every status enum and, in one place, which
//! transitions each allows. Storage moves a status only through
//! [`Lifecycle::check`], so an illegal move is an `invalid_transition`
//! error, never a silent write.

use crate::roles::string_enum;

/// The error for a transition its lifecycle does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot go from {from} to {to}")]
pub struct InvalidTransition {
    /// Current status.
    pub from: &'static str,
    /// Requested status.
    pub to: &'static str,
}

/// A status with a transition table.
pub trait Lifecycle: Copy + PartialEq + Sized {
    /// Whether `self -> next` is allowed.
    fn allows(self, next: Self) -> bool;
    /// The wire form.
    fn name(self) -> &'static str;

    /// `Ok` when the transition is allowed.
    fn check(self, next: Self) -> Result<Self, InvalidTransition> {
        if self.allows(next) { Ok(next) } else { Err(InvalidTransition { from: self.name(), to: next.name() }) }
    }
}

string_enum! {
    /// A product's status.
    ProductStatus {
        /// Being prepared; not sold.
        Draft = "draft",
        /// On sale (from `available_at`, if set).
        Active = "active",
        /// No longer sold.
        Archived = "archived",
    }
}

string_enum! {
    /// An order's overall status.
    OrderStatus {
        /// Staff-made, not yet placed.
        Draft = "draft",
        /// Placed and live.
        Open = "open",
        /// Paid and fully delivered or closed.
        Completed = "completed",
        /// Cancelled by staff or customer.
        Cancelled = "cancelled",
        /// Unpaid until its reservation ran out.
        Expired = "expired",
    }
}

impl Lifecycle for OrderStatus {
    fn allows(self, next: Self) -> bool {
        use OrderStatus::*;
        matches!(
            (self, next),
            (Draft, Open)
                | (Draft, Cancelled)
                | (Open, Completed)
                | (Open, Cancelled)
                | (Open, Expired)
                // A payment that arrives after the hold ran out re-holds the
                // stock when it is still there.
                | (Expired, Open)
        )
    }
    fn name(self) -> &'static str {
        self.as_str()
    }
}

string_enum! {
    /// An order's money status.
    PaymentStatus {
        /// Nothing captured.
        Unpaid = "unpaid",
        /// Authorized, not captured.
        Authorized = "authorized",
        /// The total is covered.
        Paid = "paid",
        /// Some of the total is captured, not all of it (a bank transfer
        /// short of the total, a total raised by an edit before any payment
        /// covered it).
        PartiallyPaid = "partially_paid",
        /// Some of the payment went back.
        PartiallyRefunded = "partially_refunded",
        /// All of it went back.
        Refunded = "refunded",
        /// The payment attempt failed.
        Failed = "failed",
    }
}

impl Lifecycle for PaymentStatus {
    fn allows(self, next: Self) -> bool {
        use PaymentStatus::*;
        matches!(
            (self, next),
            (Unpaid, Authorized | Paid | PartiallyPaid | Failed)
                | (Failed, Authorized | Paid | PartiallyPaid | Failed)
                | (Authorized, Paid | PartiallyPaid | Failed | Unpaid)
                | (PartiallyPaid, Paid | PartiallyRefunded | Refunded)
                | (Paid, PartiallyRefunded | Refunded)
                | (PartiallyRefunded, PartiallyRefunded | Refunded)
        )
    }
    fn name(self) -> &'static str {
        self.as_str()
    }
}

string_enum! {
    /// An order's goods status, derived from its shipments.
    FulfillmentStatus {
        /// Nothing shipped.
        Unfulfilled = "unfulfilled",
        /// Some items shipped.
        PartiallyShipped = "partially_shipped",
        /// Every item shipped.
        Shipped = "shipped",
        /// Every shipment delivered.
        Delivered = "delivered",
        /// Goods came back.
        Returned = "returned",
    }
}

impl Lifecycle for FulfillmentStatus {
    fn allows(self, next: Self) -> bool {
        use FulfillmentStatus::*;
        matches!(
            (self, next),
            (Unfulfilled, PartiallyShipped | Shipped)
                | (PartiallyShipped, PartiallyShipped | Shipped)
                | (Shipped, Delivered | Returned)
                | (Delivered, Returned)
        )
    }
    fn name(self) -> &'static str {
        self.as_str()
    }
}

string_enum! {
    /// A fulfillment order: one warehouse's work for one order.
    FulfillmentOrderStatus {
        /// Ready to be worked.
        Open = "open",
        /// Partly shipped.
        InProgress = "in_progress",
        /// Everything shipped.
        Shipped = "shipped",
        /// Done.
        Closed = "closed",
        /// Held by staff.
        OnHold = "on_hold",
        /// Waiting for its `fulfill_at`.
        Scheduled = "scheduled",
        /// Cancelled with its order.
        Cancelled = "cancelled",
    }
}

impl Lifecycle for FulfillmentOrderStatus {
    fn allows(self, next: Self) -> bool {
        use FulfillmentOrderStatus::*;
        matches!(
            (self, next),
            (Open, InProgress | Shipped | OnHold | Scheduled | Cancelled)
                | (InProgress, InProgress | Shipped | OnHold | Cancelled)
                | (Shipped, Closed)
                | (OnHold, Open | InProgress | Cancelled)
                | (Scheduled, Open | Cancelled)
        )
    }
    fn name(self) -> &'static str {
        self.as_str()
    }
}

string_enum! {
    /// A parcel.
    ShipmentStatus {
        /// Being prepared.
        Draft = "draft",
        /// Packed, label printed.
        Ready = "ready",
        /// With the carrier.
        InTransit = "in_transit",
        /// Delivered.
        Delivered = "delivered",
        /// Cancelled before it left.
        Cancelled = "cancelled",
        /// The carrier reports a problem.
        Exception = "exception",
    }
}

impl Lifecycle for ShipmentStatus {
    fn allows(self, next: Self) -> bool {
        use ShipmentStatus::*;
        matches!(
            (self, next),
            (Draft, Ready | InTransit | Cancelled)
                | (Ready, InTransit | Cancelled)
                | (InTransit, Delivered | Exception)
                | (Exception, InTransit | Delivered | Cancelled)
        )
    }
    fn name(self) -> &'static str {
        self.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_order_can_be_cancelled_but_a_cancelled_one_cannot_reopen() {
        assert!(OrderStatus::Open.check(OrderStatus::Cancelled).is_ok());
        let error = OrderStatus::Cancelled.check(OrderStatus::Open).unwrap_err();
        assert_eq!(error.to_string(), "cannot go from cancelled to open");
    }

    #[test]
    fn payment_status_only_moves_forward() {
        assert!(PaymentStatus::Unpaid.allows(PaymentStatus::Paid));
        assert!(!PaymentStatus::Paid.allows(PaymentStatus::Unpaid));
        assert!(!PaymentStatus::Refunded.allows(PaymentStatus::Paid));
    }

    #[test]
    fn a_delivered_shipment_is_final() {
        for next in [ShipmentStatus::Draft, ShipmentStatus::InTransit, ShipmentStatus::Cancelled] {
            assert!(!ShipmentStatus::Delivered.allows(next));
        }
    }
}
