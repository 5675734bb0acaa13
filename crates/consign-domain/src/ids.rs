//! Typed identifiers. Every id is a UUID v7 (time ordered, so ids sort by
//! creation) shown to clients as an opaque string.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The error for a string that is not a valid id.
#[derive(Debug, thiserror::Error)]
#[error("not a valid id")]
pub struct InvalidId;

macro_rules! id_type {
    ($(#[$doc:meta] $name:ident),* $(,)?) => {$(
        #[$doc]
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(transparent)]
        #[schema(value_type = String, example = "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b")]
        pub struct $name(Uuid);

        impl $name {
            /// A new id, ordered after every id made before it.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.as_hyphenated().fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0.as_hyphenated())
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, InvalidId> {
                Uuid::try_parse(s).map(Self).map_err(|_| InvalidId)
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(s: String) -> Result<Self, InvalidId> {
                s.parse()
            }
        }
    )*};
}

id_type! {
    /// An organization: a 3PL or a merchant.
    OrganizationId,
    /// A brand (a store) owned by an organization.
    BrandId,
    /// A staff user or platform admin.
    UserId,
    /// A brand-scoped API key.
    ApiKeyId,
    /// A refresh-token family: one login session and all its rotations.
    SessionId,
    /// One refresh token within a session.
    RefreshTokenId,
    /// A product.
    ProductId,
    /// A product variant (the thing with a SKU).
    VariantId,
    /// A warehouse (stock location).
    WarehouseId,
    /// An order.
    OrderId,
    /// A line of an order.
    OrderItemId,
    /// Stock held for an order item in one warehouse.
    ReservationId,
    /// A payment or refund.
    PaymentId,
    /// One warehouse's share of an order.
    FulfillmentOrderId,
    /// A line of a fulfillment order.
    FulfillmentOrderItemId,
    /// A parcel.
    ShipmentId,
    /// A line of a parcel.
    ShipmentItemId,
    /// A domain event.
    EventId,
    /// A stock ledger entry.
    MovementId,
    /// An audit-log entry.
    AuditId,
    /// A queued job.
    JobId,
    /// Something staff must act on (a money job that gave up).
    StaffAlertId,
    /// One notification to one recipient on one channel.
    NotificationId,
    /// A note on an order.
    NoteId,
    /// One try at paying an order through a provider.
    PaymentAttemptId,
    /// A provider webhook delivery kept in the webhook event log.
    WebhookEventId,
    /// An order's message thread.
    ThreadId,
    /// A message in a thread.
    MessageId,
    /// A brand's saved reply.
    CannedResponseId,
    /// A file attached to a message.
    AttachmentId,
    /// An inbound message that matched no order.
    InboxItemId,
    /// An invitation to join an organization or a brand.
    InvitationId,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_their_string_form() {
        let id = BrandId::new();
        assert_eq!(id.to_string().parse::<BrandId>().unwrap(), id);
    }

    #[test]
    fn later_ids_sort_after_earlier_ones_as_strings() {
        let first = UserId::new();
        let second = UserId::new();
        assert!(first.to_string() < second.to_string());
    }

    #[test]
    fn garbage_is_not_an_id() {
        assert!("not-an-id".parse::<OrganizationId>().is_err());
    }
}
