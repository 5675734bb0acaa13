//! Every job kind, once: its stored name, its payload, how often it may
//! fail and the dedupe key it is enqueued under.
//!
//! The enqueueing side is here in `consign-db` (jobs ride on business
//! transactions), the handlers are in `consign-jobs`; both name a kind
//! only through its payload type, so a kind cannot be misspelt on one side.
//! `consign_jobs::handlers::register_every_job` handles exactly the kinds of
//! [`ALL`], which a test checks.
//!
//! The `KIND` strings are stored in `jobs.kind` and the payloads in
//! `jobs.payload`: rows queued by an older release must still parse, so
//! never rename a kind, and change a payload only by adding fields serde
//! can default.

use consign_domain::{
    BrandId, EventId, InvitationId, MessageId, OrderId, PaymentId, StaffAlertId, ThreadId, UserId, WebhookEventId,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Runs a job gets before it goes `dead`, unless its kind says otherwise.
pub const DEFAULT_MAX_ATTEMPTS: i64 = 10;

/// Runs a money job gets: with the runner's backoff capped at an hour,
/// about four days of retries, so an outage of a provider or of the
/// database never leaves a refund unsent or a capture unapplied for good.
const MONEY_MAX_ATTEMPTS: i64 = 100;

/// A kind of job: its payload type, which is what gets stored and what the
/// handler receives.
pub trait JobKind: Serialize + DeserializeOwned + Send + 'static {
    /// The stored name, such as `fulfillment.create_for_order`.
    const KIND: &'static str;

    /// Runs it gets before it goes `dead`.
    const MAX_ATTEMPTS: i64 = DEFAULT_MAX_ATTEMPTS;

    /// Jobs with the same key are enqueued once (a later enqueue is
    /// skipped, whatever the first one's status). `None`: every enqueue
    /// makes a job.
    fn dedupe_key(&self) -> Option<String> {
        None
    }
}

/// Every kind with its max attempts, each once.
pub const ALL: &[(&str, i64)] = &[
    entry::<FulfillOrder>(),
    entry::<SendRefund>(),
    entry::<ApplyWebhook>(),
    entry::<ParkStaleWebhooks>(),
    entry::<SweepStuckPayments>(),
    entry::<DeliverMessage>(),
    entry::<NotifyCustomer>(),
    entry::<StaffDigest>(),
    entry::<AnnounceAlert>(),
    entry::<EmailInvitation>(),
    entry::<EmailPasswordReset>(),
    entry::<ExpireReservations>(),
    entry::<PurgeMaintenance>(),
    entry::<PurgeUnsentUploads>(),
];

const fn entry<J: JobKind>() -> (&'static str, i64) {
    (J::KIND, J::MAX_ATTEMPTS)
}

/// Makes a paid order's fulfillment orders; an order that has them is left
/// alone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FulfillOrder {
    /// The paid order.
    pub order_id: OrderId,
}

impl JobKind for FulfillOrder {
    const KIND: &'static str = "fulfillment.create_for_order";

    fn dedupe_key(&self) -> Option<String> {
        Some(format!("{}:{}", Self::KIND, self.order_id))
    }
}

/// Sends one pending refund to the provider that captured the payment. The
/// refund id is the provider's idempotency key, so a retry never refunds
/// twice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendRefund {
    /// The refund (a `payments` row of kind `refund`).
    pub refund_id: PaymentId,
}

impl JobKind for SendRefund {
    const KIND: &'static str = "payments.refund";
    const MAX_ATTEMPTS: i64 = MONEY_MAX_ATTEMPTS;

    fn dedupe_key(&self) -> Option<String> {
        Some(format!("{}:{}", Self::KIND, self.refund_id))
    }
}

/// Applies one stored payment-provider webhook event to the ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyWebhook {
    /// The event in the webhook log.
    pub webhook_event_id: WebhookEventId,
}

impl JobKind for ApplyWebhook {
    const KIND: &'static str = "payments.apply_webhook";
    const MAX_ATTEMPTS: i64 = MONEY_MAX_ATTEMPTS;

    fn dedupe_key(&self) -> Option<String> {
        Some(format!("{}:{}", Self::KIND, self.webhook_event_id))
    }
}

/// Hourly: parks webhook events that waited too long for another (a refund
/// for its capture).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParkStaleWebhooks {}

impl JobKind for ParkStaleWebhooks {
    const KIND: &'static str = "payments.park_stale_webhooks";
}

/// Every ten minutes: re-queues refunds and webhook events no job is
/// working on, and raises alerts for dead jobs that have none.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepStuckPayments {}

impl JobKind for SweepStuckPayments {
    const KIND: &'static str = "payments.sweep_stuck";
}

/// Sends one staff reply through its channel's provider and records the
/// outcome on its delivery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliverMessage {
    /// The reply; its delivery row says where it goes.
    pub message_id: MessageId,
}

impl JobKind for DeliverMessage {
    const KIND: &'static str = "messages.deliver";

    fn dedupe_key(&self) -> Option<String> {
        Some(format!("{}:{}", Self::KIND, self.message_id))
    }
}

/// Tells an order's customer of one event, through every channel the
/// brand's templates enable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyCustomer {
    /// The event.
    pub event_id: EventId,
}

impl JobKind for NotifyCustomer {
    const KIND: &'static str = "notifications.customer";

    fn dedupe_key(&self) -> Option<String> {
        Some(format!("{}:{}", Self::KIND, self.event_id))
    }
}

/// Emails a thread's staff the customer messages of one digest window; it
/// runs when the window closes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffDigest {
    /// The thread's brand.
    pub brand_id: BrandId,
    /// The thread the customer wrote in.
    pub thread_id: ThreadId,
    /// The window's end, in Unix microseconds: the digest covers messages
    /// up to then.
    pub until: i64,
}

impl JobKind for StaffDigest {
    const KIND: &'static str = "notifications.staff_digest";

    /// One digest per thread and window.
    fn dedupe_key(&self) -> Option<String> {
        Some(format!("{}:{}:{}", Self::KIND, self.thread_id, self.until))
    }
}

/// Emails a new staff alert (a money job that gave up, money owed back) to
/// the brand's staff.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnounceAlert {
    /// The alert.
    pub alert_id: StaffAlertId,
}

impl JobKind for AnnounceAlert {
    const KIND: &'static str = "notifications.staff_alert";

    fn dedupe_key(&self) -> Option<String> {
        Some(format!("{}:{}", Self::KIND, self.alert_id))
    }
}

/// Emails an invitation's link to the invitee (when this installation
/// sends email); a spent, revoked or expired invitation is not sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailInvitation {
    /// The invitation.
    pub invitation_id: InvitationId,
}

impl JobKind for EmailInvitation {
    const KIND: &'static str = "accounts.email_invitation";

    fn dedupe_key(&self) -> Option<String> {
        Some(format!("{}:{}", Self::KIND, self.invitation_id))
    }
}

/// Emails a user a password reset link that works until `expires_at`
/// (Unix seconds). The link is made when the email is sent, from the
/// user's current password, so the payload holds nothing that could
/// reset it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailPasswordReset {
    /// Who asked.
    pub user_id: UserId,
    /// Until when the link works.
    pub expires_at: i64,
}

/// One email per request (two in the same second are the same email).
impl JobKind for EmailPasswordReset {
    const KIND: &'static str = "accounts.email_password_reset";
}

/// Every thirty seconds: expires unpaid orders whose stock hold ran out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpireReservations {}

impl JobKind for ExpireReservations {
    const KIND: &'static str = "orders.expire_reservations";
}

/// Hourly: deletes expired idempotency keys, old done jobs, old webhook
/// replay tokens and past rate-limit counters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgeMaintenance {}

impl JobKind for PurgeMaintenance {
    const KIND: &'static str = "maintenance.purge";
}

/// Hourly: deletes uploads never attached to a sent message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgeUnsentUploads {}

impl JobKind for PurgeUnsentUploads {
    const KIND: &'static str = "uploads.purge_unsent";
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::jobs::max_attempts;

    /// The payload as stored, and back.
    fn round_trip<J: JobKind + PartialEq + std::fmt::Debug>(job: &J, stored: Value) {
        assert_eq!(serde_json::to_value(job).unwrap(), stored, "{}", J::KIND);
        let parsed: J = serde_json::from_str(&stored.to_string()).unwrap();
        assert_eq!(&parsed, job, "{}", J::KIND);
    }

    #[test]
    fn every_kind_is_listed_once() {
        let mut kinds: Vec<&str> = ALL.iter().map(|(kind, _)| *kind).collect();
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(kinds.len(), ALL.len());
    }

    #[test]
    fn money_jobs_retry_for_days_and_the_others_ten_times() {
        assert_eq!(max_attempts("payments.refund"), 100);
        assert_eq!(max_attempts("payments.apply_webhook"), 100);
        assert_eq!(max_attempts("messages.deliver"), 10);
        assert_eq!(max_attempts("a.kind.nobody.knows"), 10);
    }

    /// The payloads are what the untyped `json!` enqueues wrote, so rows
    /// queued before payloads were typed still run.
    #[test]
    fn payloads_keep_the_stored_json_shape() {
        let (order_id, refund_id, event_id) = (OrderId::new(), PaymentId::new(), WebhookEventId::new());
        round_trip(&FulfillOrder { order_id }, json!({"order_id": order_id.to_string()}));
        round_trip(&SendRefund { refund_id }, json!({"refund_id": refund_id.to_string()}));
        round_trip(&ApplyWebhook { webhook_event_id: event_id }, json!({"webhook_event_id": event_id.to_string()}));
        let message_id = MessageId::new();
        round_trip(&DeliverMessage { message_id }, json!({"message_id": message_id.to_string()}));
        let event_id = EventId::new();
        round_trip(&NotifyCustomer { event_id }, json!({"event_id": event_id.to_string()}));
        let alert_id = StaffAlertId::new();
        round_trip(&AnnounceAlert { alert_id }, json!({"alert_id": alert_id.to_string()}));
        let (brand_id, thread_id) = (BrandId::new(), ThreadId::new());
        round_trip(
            &StaffDigest { brand_id, thread_id, until: 180_000_000 },
            json!({"brand_id": brand_id.to_string(), "thread_id": thread_id.to_string(), "until": 180_000_000}),
        );
        let (invitation_id, user_id) = (InvitationId::new(), UserId::new());
        round_trip(&EmailInvitation { invitation_id }, json!({"invitation_id": invitation_id.to_string()}));
        round_trip(
            &EmailPasswordReset { user_id, expires_at: 1_800_000_000 },
            json!({"user_id": user_id.to_string(), "expires_at": 1_800_000_000}),
        );
        round_trip(&ExpireReservations {}, json!({}));
        round_trip(&PurgeMaintenance {}, json!({}));
        round_trip(&PurgeUnsentUploads {}, json!({}));
        round_trip(&ParkStaleWebhooks {}, json!({}));
        round_trip(&SweepStuckPayments {}, json!({}));
    }

    #[test]
    fn dedupe_keys_are_the_ones_enqueued_before() {
        let order_id = OrderId::new();
        assert_eq!(FulfillOrder { order_id }.dedupe_key(), Some(format!("fulfillment.create_for_order:{order_id}")));
        let refund_id = PaymentId::new();
        assert_eq!(SendRefund { refund_id }.dedupe_key(), Some(format!("payments.refund:{refund_id}")));
        let thread_id = ThreadId::new();
        let digest = StaffDigest { brand_id: BrandId::new(), thread_id, until: 42 };
        assert_eq!(digest.dedupe_key(), Some(format!("notifications.staff_digest:{thread_id}:42")));
        assert_eq!(PurgeMaintenance {}.dedupe_key(), None, "periodic slots are keyed by the runner");
    }
}
