//! Outbound deliveries, one per staff reply sent on email, WhatsApp or SMS:
//! queued with the reply, sent by the job, moved forward by the provider's
//! status callbacks.
//!
//! Provider calls never happen here nor inside a request's transaction: a
//! reply's transaction writes its `queued` delivery and enqueues
//! [`DeliverMessage`]; the job sends and records the outcome.

use consign_domain::messaging::{Channel, DeliveryStatus};
use consign_domain::{BrandId, EventType, MessageId, OrderId, OrganizationId, ThreadId, Timestamp};
use serde::Serialize;
use serde_json::json;

use crate::jobs::kinds::DeliverMessage;
use crate::messages::{Message, order_ref};
use crate::{Db, DbError, DbResult, NewEvent, Scope, Tx};

/// Where a message sent on email, WhatsApp or SMS is.
#[derive(Clone, Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Delivery {
    /// The message.
    pub message_id: MessageId,
    /// `email`, `whatsapp` or `sms`.
    pub channel: Channel,
    /// The customer's address or phone number.
    pub recipient: String,
    /// `queued`, `sent`, `delivered` or `failed`.
    pub status: DeliveryStatus,
    /// The provider's id of the sent message.
    pub provider_message_id: Option<String>,
    /// Sends tried so far.
    pub attempts: i64,
    /// Why the last try failed.
    pub last_error: Option<String>,
    /// Last change.
    pub updated_at: Timestamp,
}

/// Writes the `queued` delivery of `message` to the order's customer and
/// enqueues the job that sends it, in the reply's transaction. Fails with a
/// validation error when the customer has no address for the channel.
pub(crate) async fn queue_delivery(tx: &mut Tx, message: &Message, organization_id: OrganizationId) -> DbResult<()> {
    let (email, phone): (String, Option<String>) = tx
        .query("SELECT customer_email, customer_phone FROM orders WHERE id = $1")
        .bind(message.order_id)
        .fetch_one()
        .await?;
    let recipient = match message.channel {
        Channel::Email => Some(email).filter(|e| !e.trim().is_empty()),
        Channel::Sms | Channel::Whatsapp => phone.filter(|p| !crate::inbound::phone_digits(p).is_empty()),
        Channel::InApp => return Ok(()),
    };
    let Some(recipient) = recipient else {
        return Err(DbError::invalid("channel", format!("the customer has no address for {}", message.channel)));
    };
    tx.query(
        "INSERT INTO message_deliveries (message_id, organization_id, channel, recipient, status, attempts, updated_at)
         VALUES ($1, $2, $3, $4, 'queued', 0, $5)",
    )
    .bind(message.id)
    .bind(organization_id)
    .bind(message.channel)
    .bind(recipient)
    .bind(Timestamp::now())
    .execute()
    .await?;
    tx.enqueue(&DeliverMessage { message_id: message.id }).await?;
    Ok(())
}

const DELIVERY_COLUMNS: &str =
    "d.message_id, d.channel, d.recipient, d.status, d.provider_message_id, d.attempts, d.last_error, d.updated_at";

/// The delivery of a message of an order the caller sees (404 for a
/// message that was not sent out, or a note).
pub async fn get(db: &Db, scope: &Scope, order_id: OrderId, message_id: MessageId) -> DbResult<Delivery> {
    order_ref(db, scope, order_id).await?;
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM message_deliveries d JOIN messages m ON m.id = d.message_id
          WHERE d.message_id = $1 AND m.order_id = $2 AND m.internal = FALSE"
    );
    db.read_built(sql).bind(message_id).bind(order_id).fetch_one().await
}

/// The deliveries of an order's messages the caller sees, by message.
pub async fn of_order(db: &Db, scope: &Scope, order_id: OrderId) -> DbResult<Vec<Delivery>> {
    order_ref(db, scope, order_id).await?;
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM message_deliveries d JOIN messages m ON m.id = d.message_id
          WHERE m.order_id = $1 AND m.internal = FALSE"
    );
    db.read_built(sql).bind(order_id).fetch_all().await
}

/// What the deliver job needs to send one message.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SendWork {
    /// The message.
    pub message_id: MessageId,
    /// The channel.
    pub channel: Channel,
    /// The customer's address or phone.
    pub recipient: String,
    /// Where the delivery is.
    pub status: DeliveryStatus,
    /// Tries so far.
    pub attempts: i64,
    /// The text.
    pub body: String,
    /// The order's thread.
    pub thread_id: ThreadId,
    /// The order's number (without `#`).
    pub order_number: i64,
    /// The brand (its outbound limits and approval apply).
    pub brand_id: BrandId,
    /// The brand's name.
    pub brand_name: String,
    /// The brand's slug.
    pub brand_slug: String,
    /// The customer's name.
    pub customer_name: String,
    /// The `Message-ID` of the latest earlier email in the thread: the
    /// customer's (its provider id) or ours (`None` here, see
    /// [`previous_email`]).
    #[sqlx(skip)]
    pub previous_email: Option<PreviousEmail>,
}

/// The email a new one answers.
#[derive(Clone, Debug)]
pub enum PreviousEmail {
    /// A customer's email: its `Message-Id` as received.
    Inbound(String),
    /// One we sent: our message id (the `Message-ID` is derived from it).
    Outbound(MessageId),
}

/// Loads a delivery's work, system-wide (the job has no caller).
pub async fn work(db: &Db, message_id: MessageId) -> DbResult<SendWork> {
    let mut work: SendWork = db
        .read(
            "SELECT d.message_id, d.channel, d.recipient, d.status, d.attempts, m.body, m.thread_id,
                    o.number AS order_number, b.id AS brand_id, b.name AS brand_name, b.slug AS brand_slug,
                    o.customer_name
               FROM message_deliveries d
               JOIN messages m ON m.id = d.message_id
               JOIN orders o ON o.id = m.order_id
               JOIN brands b ON b.id = m.brand_id
              WHERE d.message_id = $1",
        )
        .bind(message_id)
        .fetch_one()
        .await?;
    if work.channel == Channel::Email {
        let previous: Option<(MessageId, String, Option<String>)> = db
            .read(
                "SELECT id, sender_role, external_id FROM messages
                  WHERE thread_id = $1 AND channel = 'email' AND internal = FALSE AND id < $2
                  ORDER BY id DESC LIMIT 1",
            )
            .bind(work.thread_id)
            .bind(message_id)
            .fetch_optional()
            .await?;
        work.previous_email = previous.map(|(id, role, external_id)| match (role.as_str(), external_id) {
            ("customer", Some(external_id)) => PreviousEmail::Inbound(external_id),
            _ => PreviousEmail::Outbound(id),
        });
    }
    Ok(work)
}

/// Records a successful send: `queued` becomes `sent` with the provider's
/// id. Answers `false` if the delivery had already moved on.
pub async fn mark_sent(db: &Db, message_id: MessageId, provider_message_id: &str) -> DbResult<bool> {
    let mut tx = db.begin().await?;
    let updated = tx
        .query(
            "UPDATE message_deliveries SET status = 'sent', provider_message_id = $1, attempts = attempts + 1,
                    last_error = NULL, updated_at = $2
              WHERE message_id = $3 AND status = 'queued'",
        )
        .bind(provider_message_id.to_owned())
        .bind(Timestamp::now())
        .bind(message_id)
        .execute()
        .await?;
    if updated == 1 {
        record_change(&mut tx, message_id).await?;
    }
    tx.commit().await?;
    Ok(updated == 1)
}

/// Records a failed try; `give_up` makes the delivery `failed`.
pub async fn record_failure(db: &Db, message_id: MessageId, error: &str, give_up: bool) -> DbResult<()> {
    let error: String = error.chars().take(1000).collect();
    let mut tx = db.begin().await?;
    let updated = tx
        .query(
            "UPDATE message_deliveries SET attempts = attempts + 1, last_error = $1,
                    status = CASE WHEN $2 THEN 'failed' ELSE status END, updated_at = $3
              WHERE message_id = $4 AND status = 'queued'",
        )
        .bind(error)
        .bind(give_up)
        .bind(Timestamp::now())
        .bind(message_id)
        .execute()
        .await?;
    if updated == 1 {
        record_change(&mut tx, message_id).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Records `message.delivery_updated` with the delivery as it now is, so
/// the staff thread shows the change live. Staff only: a delivery names the
/// customer's address and the provider's error.
async fn record_change(tx: &mut Tx, message_id: MessageId) -> DbResult<()> {
    let (organization_id, brand_id, order_id, thread_id, channel, status, attempts, last_error): (
        OrganizationId,
        BrandId,
        OrderId,
        ThreadId,
        Channel,
        DeliveryStatus,
        i64,
        Option<String>,
    ) = tx
        .query(
            "SELECT d.organization_id, m.brand_id, m.order_id, m.thread_id, d.channel, d.status, d.attempts, d.last_error
               FROM message_deliveries d JOIN messages m ON m.id = d.message_id WHERE d.message_id = $1",
        )
        .bind(message_id)
        .fetch_one()
        .await?;
    tx.record_event(NewEvent {
        organization_id,
        brand_id: Some(brand_id),
        event_type: EventType::MessageDeliveryUpdated,
        aggregate_type: "message",
        aggregate_id: message_id.to_string(),
        payload: json!({"order_id": order_id, "thread_id": thread_id, "message_id": message_id, "channel": channel,
                        "status": status, "attempts": attempts, "last_error": last_error}),
        actor: "system".to_owned(),
    })
    .await?;
    Ok(())
}

/// Applies a provider's status callback. The status only moves forward
/// (`DeliveryStatus::may_become`), whatever order callbacks arrive in.
/// Answers the status after the callback, or `None` for an unknown
/// provider message id.
pub async fn apply_status(
    db: &Db,
    channel: Channel,
    provider_message_id: &str,
    next: DeliveryStatus,
    error: Option<&str>,
) -> DbResult<Option<DeliveryStatus>> {
    let error: Option<String> = error.map(|e| e.chars().take(1000).collect());
    let mut tx = db.begin().await?;
    let sql = format!(
        "SELECT message_id, status FROM message_deliveries WHERE channel = $1 AND provider_message_id = $2{}",
        tx.lock_clause()
    );
    let current: Option<(MessageId, DeliveryStatus)> =
        tx.query_built(sql).bind(channel).bind(provider_message_id.to_owned()).fetch_optional().await?;
    let after = match current {
        None => None,
        Some((_, status)) if !status.may_become(next) => Some(status),
        Some((message_id, status)) => {
            // Conditional on the status read, so a concurrent callback
            // cannot be overwritten by an older one.
            let updated = tx
                .query(
                    "UPDATE message_deliveries SET status = $1, last_error = COALESCE($2, last_error), updated_at = $3
                      WHERE message_id = $4 AND status = $5",
                )
                .bind(next)
                .bind(error)
                .bind(Timestamp::now())
                .bind(message_id)
                .bind(status)
                .execute()
                .await?;
            if updated == 1 {
                record_change(&mut tx, message_id).await?;
            }
            Some(if updated == 1 { next } else { status })
        }
    };
    tx.commit().await?;
    Ok(after)
}
