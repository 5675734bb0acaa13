//! The order's money model: what is due, what is held, what is owed either
//! way, and which payment status that makes.
//!
//! Every money change of an order — a payment, a refund, an item edit, a
//! cancellation, and later returns, exchanges and claims — changes one of
//! three inputs: the amount `due` (the order's total, or nothing once it is
//! cancelled or expired), money `paid` (captured) or money `refunded`
//! (refunds that succeeded). Everything else is derived here, so the
//! amounts add up by construction:
//!
//! ```text
//! held        = paid - refunded
//! outstanding = max(due - held, 0)      what the customer still owes
//! refund_due  = max(held - due, 0)      what the brand owes back (refunds in flight included)
//! held + outstanding - refund_due == due
//! ```
//!
//! A later kind of order change only has to say how it moves `due` (a
//! return lowers it by the returned lines less fees; an exchange by the
//! difference; a claim by what is credited): settlement is the same.

use crate::status::{Lifecycle, OrderStatus, PaymentStatus};

/// An order's money, in minor units of its currency.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Balance {
    /// What the customer must pay for what they keep.
    pub due: i64,
    /// Captured.
    pub paid: i64,
    /// Refunded (succeeded refunds only).
    pub refunded: i64,
}

impl Balance {
    /// The balance of an order with this status and total.
    pub fn of(status: OrderStatus, total: i64, paid: i64, refunded: i64) -> Self {
        Self { due: due(status, total), paid, refunded }
    }

    /// What the brand holds. Saturating: amounts are capped at
    /// [`crate::money::MAX_AMOUNT`] where they enter, so this never
    /// saturates in practice, and a corrupt row cannot panic a request.
    pub fn held(&self) -> i64 {
        self.paid.saturating_sub(self.refunded)
    }

    /// What the customer still owes.
    pub fn outstanding(&self) -> i64 {
        self.due.saturating_sub(self.held()).max(0)
    }

    /// What the brand owes back, including refunds in flight.
    pub fn refund_due(&self) -> i64 {
        self.held().saturating_sub(self.due).max(0)
    }

    /// The payment status these amounts make, reached from `current` only
    /// by a transition its lifecycle allows; otherwise `current` stays
    /// (statuses never move backwards, the amounts are what count).
    pub fn payment_status(&self, current: PaymentStatus) -> PaymentStatus {
        let target = if self.refunded > 0 && self.refunded >= self.paid {
            PaymentStatus::Refunded
        } else if self.refunded > 0 {
            PaymentStatus::PartiallyRefunded
        } else if self.paid > 0 && self.held() >= self.due {
            // Covered; also a cancelled order that took money (due is 0),
            // so that refunding it moves on to `refunded`.
            PaymentStatus::Paid
        } else if self.paid > 0 {
            // Money is held but does not cover the total: visible as such,
            // so an order holding money never looks unpaid.
            PaymentStatus::PartiallyPaid
        } else {
            current
        };
        if target == current || current.allows(target) { target } else { current }
    }
}

/// What an order with this status must be paid.
pub fn due(status: OrderStatus, total: i64) -> i64 {
    match status {
        OrderStatus::Cancelled | OrderStatus::Expired => 0,
        OrderStatus::Draft | OrderStatus::Open | OrderStatus::Completed => total.max(0),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_covered_order_is_paid_and_owes_nothing_either_way() {
        let balance = Balance::of(OrderStatus::Open, 5000, 5000, 0);
        assert_eq!((balance.outstanding(), balance.refund_due()), (0, 0));
        assert_eq!(balance.payment_status(PaymentStatus::Unpaid), PaymentStatus::Paid);
    }

    #[test]
    fn a_cancelled_paid_order_owes_everything_back_until_refunded() {
        let balance = Balance::of(OrderStatus::Cancelled, 5000, 5000, 0);
        assert_eq!(balance.refund_due(), 5000);
        assert_eq!(balance.payment_status(PaymentStatus::Paid), PaymentStatus::Paid);
        let refunded = Balance { refunded: 5000, ..balance };
        assert_eq!(refunded.refund_due(), 0);
        assert_eq!(refunded.payment_status(PaymentStatus::Paid), PaymentStatus::Refunded);
    }

    #[test]
    fn money_taken_by_a_cancelled_order_reaches_refunded_once_it_goes_back() {
        let late = Balance::of(OrderStatus::Cancelled, 5000, 5000, 0);
        let status = late.payment_status(PaymentStatus::Unpaid);
        assert_eq!(status, PaymentStatus::Paid);
        assert_eq!(Balance { refunded: 5000, ..late }.payment_status(status), PaymentStatus::Refunded);
    }

    #[test]
    fn money_short_of_the_total_is_partially_paid_until_the_rest_arrives() {
        let balance = Balance::of(OrderStatus::Open, 5000, 2000, 0);
        assert_eq!(balance.outstanding(), 3000);
        let status = balance.payment_status(PaymentStatus::Unpaid);
        assert_eq!(status, PaymentStatus::PartiallyPaid);
        assert_eq!(Balance { paid: 5000, ..balance }.payment_status(status), PaymentStatus::Paid);
    }

    #[test]
    fn a_raised_total_leaves_an_outstanding_amount_without_unpaying_the_order() {
        let balance = Balance::of(OrderStatus::Open, 7000, 5000, 0);
        assert_eq!(balance.outstanding(), 2000);
        assert_eq!(balance.payment_status(PaymentStatus::Paid), PaymentStatus::Paid);
    }

    proptest! {
        #[test]
        fn the_amounts_always_add_up(total in 0i64..1_000_000, paid in 0i64..1_000_000, refunded_share in 0i64..=100,
                                     cancelled in any::<bool>()) {
            let refunded = paid * refunded_share / 100;
            let status = if cancelled { OrderStatus::Cancelled } else { OrderStatus::Open };
            let balance = Balance::of(status, total, paid, refunded);
            prop_assert_eq!(balance.held() + balance.outstanding() - balance.refund_due(), balance.due);
            prop_assert!(balance.outstanding() >= 0 && balance.refund_due() >= 0);
            prop_assert!(balance.outstanding() == 0 || balance.refund_due() == 0);
        }

        #[test]
        fn the_payment_status_never_moves_backwards(paid in 0i64..10_000, refunded in 0i64..10_000, due in 0i64..10_000) {
            let balance = Balance { due, paid, refunded: refunded.min(paid) };
            for current in [PaymentStatus::Unpaid, PaymentStatus::Failed, PaymentStatus::Paid, PaymentStatus::PartiallyPaid,
                            PaymentStatus::PartiallyRefunded, PaymentStatus::Refunded] {
                let next = balance.payment_status(current);
                prop_assert!(next == current || current.allows(next), "{current} -> {next}");
            }
        }
    }
}
