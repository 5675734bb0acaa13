//! The one way a message is written, on either engine: find or open the
//! order's thread, update its counters, insert the immutable message and
//! its `message.created` event, all in the caller's transaction.

use consign_domain::messaging::{Channel, SenderRole, ThreadStatus};
use consign_domain::{BrandId, EventType, MessageId, OrderId, OrganizationId, ThreadId, Timestamp};
use serde_json::json;

use super::Message;
use crate::{DbResult, JsonText, NewEvent, Tx};

/// A message about to be written.
#[derive(Clone, Debug)]
pub struct MessageInsert {
    /// The order's organization.
    pub organization_id: OrganizationId,
    /// The order's brand.
    pub brand_id: BrandId,
    /// The order.
    pub order_id: OrderId,
    /// The text.
    pub body: String,
    /// Where it came from or goes out on.
    pub channel: Channel,
    /// Who wrote it.
    pub sender_role: SenderRole,
    /// The user, key, email address or phone number that wrote it.
    pub sender_id: Option<String>,
    /// Staff only.
    pub internal: bool,
    /// Snapshots of the attached files.
    pub attachments: serde_json::Value,
    /// The provider's id of an inbound message (de-duplication).
    pub external_id: Option<String>,
    /// The event's actor.
    pub actor: String,
}

/// What a message changes on its thread. `$1` selects the thread (see the
/// callers' `WHERE`), `$2` says the customer wrote (reopens, notes the
/// channel `$3` and the first customer message), `$4` is now, `$5` says a
/// staff reply (the first response time).
const THREAD_UPDATE: &str = "UPDATE message_threads SET
    status = CASE WHEN $2 THEN 'open' ELSE status END,
    resolved_at = CASE WHEN $2 THEN NULL ELSE resolved_at END,
    last_customer_channel = CASE WHEN $2 THEN $3 ELSE last_customer_channel END,
    first_customer_message_at = CASE WHEN $2 THEN COALESCE(first_customer_message_at, $4)
                                     ELSE first_customer_message_at END,
    first_response_at = CASE WHEN $5 AND first_customer_message_at IS NOT NULL
                             THEN COALESCE(first_response_at, $4) ELSE first_response_at END,
    last_message_at = $4, version = version + 1, updated_at = $4";

/// Writes the message (opening the thread on the first one) and its event,
/// in the caller's transaction. A customer message reopens a closed thread;
/// the first staff reply after a customer message sets the thread's first
/// response time.
pub(crate) async fn post_message(tx: &mut Tx, m: MessageInsert) -> DbResult<Message> {
    let now = Timestamp::now();
    let from_customer = m.sender_role == SenderRole::Customer;
    let staff_reply = m.sender_role.is_staff() && !m.internal;
    // `$1` is the order id or the thread id, as `filter` says.
    let update = |filter: &str| format!("{THREAD_UPDATE} {filter} RETURNING id, status");
    // The usual message is one statement: its thread exists and it does not
    // reopen it, so the update leaves the status as it was. Otherwise (an
    // order's first message, or a customer writing to a closed thread) the
    // thread is read locked, opened when missing (a concurrent first message
    // may open it in between, hence the second read), then updated.
    let usual: Option<(ThreadId, ThreadStatus)> = tx
        .query_built(update("WHERE order_id = $1 AND (status = 'open' OR NOT $2)"))
        .bind(m.order_id)
        .bind(from_customer)
        .bind(m.channel)
        .bind(now)
        .bind(staff_reply)
        .fetch_optional()
        .await?;
    let (thread_id, status) = match usual {
        Some(thread) => thread,
        None => {
            let sql = format!("SELECT id, status FROM message_threads WHERE order_id = $1{}", tx.lock_clause());
            let found: Option<(ThreadId, ThreadStatus)> =
                tx.query_built(sql.clone()).bind(m.order_id).fetch_optional().await?;
            let (thread_id, status) = match found {
                Some(thread) => thread,
                None => {
                    tx.query(
                        "INSERT INTO message_threads (id, organization_id, brand_id, order_id, status, last_message_at, created_at, updated_at)
                         VALUES ($1, $2, $3, $4, 'open', $5, $5, $5) ON CONFLICT (order_id) DO NOTHING",
                    )
                    .bind(ThreadId::new())
                    .bind(m.organization_id)
                    .bind(m.brand_id)
                    .bind(m.order_id)
                    .bind(now)
                    .execute()
                    .await?;
                    tx.query_built(sql).bind(m.order_id).fetch_one().await?
                }
            };
            tx.query_built(update("WHERE id = $1"))
                .bind(thread_id)
                .bind(from_customer)
                .bind(m.channel)
                .bind(now)
                .bind(staff_reply)
                .execute()
                .await?;
            (thread_id, status)
        }
    };
    let message = Message {
        id: MessageId::new(),
        order_id: m.order_id,
        thread_id,
        brand_id: m.brand_id,
        body: m.body,
        channel: m.channel,
        sender_role: m.sender_role,
        sender_id: m.sender_id,
        internal: m.internal,
        attachments: JsonText(m.attachments),
        read_by: Vec::new(),
        created_at: now,
    };
    tx.query(
        "INSERT INTO messages (id, organization_id, brand_id, order_id, thread_id, body, channel, sender_role,
                               sender_id, internal, attachments, external_id, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(message.id)
    .bind(m.organization_id)
    .bind(m.brand_id)
    .bind(m.order_id)
    .bind(thread_id)
    .bind(message.body.clone())
    .bind(message.channel)
    .bind(message.sender_role)
    .bind(message.sender_id.clone())
    .bind(message.internal)
    .bind(message.attachments.0.to_string())
    .bind(m.external_id.clone())
    .bind(now)
    .execute()
    .await?;
    let event = |event_type, payload| NewEvent {
        organization_id: m.organization_id,
        brand_id: Some(m.brand_id),
        event_type,
        aggregate_type: "message_thread",
        aggregate_id: thread_id.to_string(),
        payload,
        actor: m.actor.clone(),
    };
    if from_customer && status == ThreadStatus::Closed {
        tx.record_event(event(EventType::ThreadReopened, json!({"order_id": m.order_id, "thread_id": thread_id})))
            .await?;
    }
    let payload = serde_json::to_value(&message).unwrap_or_default();
    tx.record_event(event(EventType::MessageCreated, payload)).await?;
    Ok(message)
}
