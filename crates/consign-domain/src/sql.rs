//! SQL encodings (feature `sqlx`): ids travel as text, timestamps as
//! microseconds since the epoch, on every engine.

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Encode, Type};

use crate::Timestamp;

macro_rules! sql_as {
    ($ty:ty, $repr:ty, |$value:ident| $to_repr:expr, |$raw:ident| $from_repr:expr) => {
        impl<DB: Database> Type<DB> for $ty
        where
            $repr: Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <$repr as Type<DB>>::type_info()
            }
            fn compatible(ty: &DB::TypeInfo) -> bool {
                <$repr as Type<DB>>::compatible(ty)
            }
        }

        impl<'q, DB: Database> Encode<'q, DB> for $ty
        where
            $repr: Encode<'q, DB>,
        {
            fn encode_by_ref(&self, buf: &mut DB::ArgumentBuffer) -> Result<IsNull, BoxDynError> {
                let $value = self;
                <$repr as Encode<'q, DB>>::encode($to_repr, buf)
            }
        }

        impl<'r, DB: Database> Decode<'r, DB> for $ty
        where
            $repr: Decode<'r, DB>,
        {
            fn decode(value: DB::ValueRef<'r>) -> Result<Self, BoxDynError> {
                let $raw = <$repr as Decode<'r, DB>>::decode(value)?;
                Ok($from_repr)
            }
        }
    };
}

sql_as!(Timestamp, i64, |t| t.as_micros(), |micros| Timestamp::from_micros(micros));

macro_rules! sql_ids {
    ($($id:ty),*) => {$(
        sql_as!($id, String, |id| id.to_string(), |text| text.parse::<$id>()?);
    )*};
}

sql_ids!(
    crate::OrganizationId,
    crate::BrandId,
    crate::UserId,
    crate::ApiKeyId,
    crate::SessionId,
    crate::RefreshTokenId,
    crate::ProductId,
    crate::VariantId,
    crate::WarehouseId,
    crate::OrderId,
    crate::OrderItemId,
    crate::ReservationId,
    crate::PaymentId,
    crate::FulfillmentOrderId,
    crate::FulfillmentOrderItemId,
    crate::ShipmentId,
    crate::ShipmentItemId,
    crate::EventId,
    crate::MovementId,
    crate::AuditId,
    crate::JobId,
    crate::StaffAlertId,
    crate::NotificationId,
    crate::NoteId,
    crate::PaymentAttemptId,
    crate::WebhookEventId,
    crate::ThreadId,
    crate::MessageId,
    crate::CannedResponseId,
    crate::AttachmentId,
    crate::InboxItemId,
    crate::InvitationId
);

macro_rules! sql_text_enums {
    ($($ty:ty),*) => {$(
        sql_as!($ty, String, |value| value.as_str().to_owned(), |text| text.parse::<$ty>()?);
    )*};
}

sql_text_enums!(
    crate::roles::OrganizationKind,
    crate::roles::OrgRole,
    crate::roles::BrandRole,
    crate::status::ProductStatus,
    crate::status::OrderStatus,
    crate::status::PaymentStatus,
    crate::status::FulfillmentStatus,
    crate::status::FulfillmentOrderStatus,
    crate::status::ShipmentStatus,
    crate::messaging::Channel,
    crate::messaging::SenderRole,
    crate::messaging::ThreadStatus,
    crate::messaging::DeliveryStatus
);
