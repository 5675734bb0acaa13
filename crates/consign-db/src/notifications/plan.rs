//! Which events notify whom, decided in the event's own transaction so a
//! notification exists if and only if its change committed.

use consign_domain::{BrandId, EventId, ThreadId, Timestamp};
use serde_json::Value;

use super::DEFAULT_STAFF_DIGEST_SECONDS;
use crate::jobs::kinds::{NotifyCustomer, StaffDigest};
use crate::{DbResult, NewEvent, NewJob, Tx};

/// Who an event notifies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// The order's customer, by the brand's template for the event.
    Customer,
    /// The thread's staff, in the digest of the current window.
    StaffDigest {
        /// The thread the customer wrote in.
        thread_id: String,
    },
}

/// Who `event` notifies, if anyone. Internal notes and system messages
/// notify no one (the event behind a system message notifies by itself);
/// a staff reply sent on email, SMS or WhatsApp is its own notification.
pub fn plan(event: &NewEvent) -> Option<Plan> {
    match event.event_type {
        "message.created" => {
            let text = |key: &str| event.payload.get(key).and_then(Value::as_str);
            if event.payload.get("internal").and_then(Value::as_bool) != Some(false) {
                return None;
            }
            match (text("sender_role")?, text("channel")?) {
                ("customer", _) => Some(Plan::StaffDigest { thread_id: text("thread_id")?.to_owned() }),
                ("brand" | "threepl" | "platform", "in_app") => Some(Plan::Customer),
                _ => None,
            }
        }
        kind if kind != "message.reply" && super::CUSTOMER_KINDS.contains(&kind) => Some(Plan::Customer),
        _ => None,
    }
}

/// The kind a customer notification of an event is sent as.
pub fn customer_kind(event_type: &str) -> &str {
    if event_type == "message.created" { "message.reply" } else { event_type }
}

/// Enqueues, in the event's transaction, the job that notifies whom
/// `event` concerns, if anyone.
pub(crate) async fn plan_notifications(tx: &mut Tx, event: &NewEvent, id: EventId) -> DbResult<()> {
    let Some(plan) = plan(event) else { return Ok(()) };
    let job = match (plan, event.brand_id) {
        (Plan::Customer, _) => NewJob::of(&NotifyCustomer { event_id: id }),
        (Plan::StaffDigest { thread_id }, Some(brand_id)) => {
            // Message events write their thread's id, so this fails only
            // for a bug, which should not pass as a digest that never runs.
            let thread_id: ThreadId =
                thread_id.parse().map_err(|_| anyhow::anyhow!("a message event names thread `{thread_id}`"))?;
            let window: Option<i64> = tx
                .query("SELECT staff_digest_seconds FROM notification_settings WHERE brand_id = $1")
                .bind(brand_id)
                .scalar_optional()
                .await?;
            digest_job(thread_id, brand_id, window.unwrap_or(DEFAULT_STAFF_DIGEST_SECONDS), Timestamp::now())
        }
        (Plan::StaffDigest { .. }, None) => return Ok(()),
    };
    tx.enqueue_job(job).await?;
    Ok(())
}

/// The digest job of the window `now` falls in: one per thread and window
/// (the dedupe key), run when the window closes, covering the thread's
/// customer messages up to then.
fn digest_job(thread_id: ThreadId, brand_id: BrandId, window_seconds: i64, now: Timestamp) -> NewJob {
    let window = window_seconds.max(1) * 1_000_000;
    let until = (now.as_micros() / window + 1) * window;
    NewJob { run_at: Timestamp::from_micros(until), ..NewJob::of(&StaffDigest { brand_id, thread_id, until }) }
}

#[cfg(test)]
mod tests {
    use consign_domain::OrganizationId;
    use serde_json::json;

    use super::*;

    fn event(event_type: &'static str, payload: Value) -> NewEvent {
        NewEvent {
            organization_id: OrganizationId::new(),
            brand_id: Some(BrandId::new()),
            event_type,
            aggregate_type: "order",
            aggregate_id: "o".into(),
            payload,
            actor: "system".into(),
        }
    }

    fn message(role: &str, channel: &str, internal: bool) -> NewEvent {
        event(
            "message.created",
            json!({"sender_role": role, "channel": channel, "internal": internal, "thread_id": "t1"}),
        )
    }

    #[test]
    fn order_events_notify_the_customer_and_others_nobody() {
        assert_eq!(plan(&event("shipment.in_transit", json!({}))), Some(Plan::Customer));
        assert_eq!(plan(&event("order.created", json!({}))), Some(Plan::Customer));
        assert_eq!(plan(&event("stock.adjusted", json!({}))), None);
        assert_eq!(plan(&event("message.reply", json!({}))), None);
    }

    #[test]
    fn only_visible_staff_replies_in_the_app_notify_the_customer() {
        assert_eq!(plan(&message("brand", "in_app", false)), Some(Plan::Customer));
        assert_eq!(plan(&message("threepl", "in_app", true)), None, "an internal note");
        assert_eq!(plan(&message("brand", "email", false)), None, "the reply is its own email");
        assert_eq!(plan(&message("system", "in_app", false)), None);
        assert_eq!(plan(&message("customer", "sms", false)), Some(Plan::StaffDigest { thread_id: "t1".into() }));
    }

    #[test]
    fn messages_of_one_window_share_one_digest() {
        let (brand, thread) = (BrandId::new(), ThreadId::new());
        let first = digest_job(thread, brand, 60, Timestamp::from_micros(120_000_001));
        let later = digest_job(thread, brand, 60, Timestamp::from_micros(179_999_999));
        let next = digest_job(thread, brand, 60, Timestamp::from_micros(180_000_000));
        assert_eq!(first.dedupe_key, later.dedupe_key);
        assert_eq!(first.run_at, Timestamp::from_micros(180_000_000));
        assert_ne!(first.dedupe_key, next.dedupe_key);
    }
}
