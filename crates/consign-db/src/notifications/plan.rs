//! The notification jobs an event enqueues, in the event's own transaction
//! so a notification exists if and only if its change committed. Which
//! events notify whom is decided in `reactions.rs`.

use consign_domain::{BrandId, EventId, ThreadId, Timestamp};

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

/// The kind a customer notification of an event is sent as.
pub fn customer_kind(event_type: &str) -> &str {
    if event_type == "message.created" { "message.reply" } else { event_type }
}

/// Enqueues, in the event's transaction, the job that notifies whom
/// `plan` names (decided by `reactions::reaction`).
pub(crate) async fn enqueue_notification(tx: &mut Tx, event: &NewEvent, id: EventId, plan: Plan) -> DbResult<()> {
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
    use super::*;

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
