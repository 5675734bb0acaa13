//! Inbound messages from email, WhatsApp and SMS: find the order they are
//! about and post them to its thread as the customer, or keep them in the
//! brand's inbox for staff to link.
//!
//! Routing, first match wins:
//! 1. a thread named by the webhook (the per-thread email reply address,
//!    whose token the caller verified): that thread, whoever wrote;
//! 2. an order number (`#1001`) in the subject, then in the text, of an
//!    order of the brand whose customer is the sender;
//! 3. the sender's most recent order in the brand: open ones first, else
//!    the latest of any status.
//!
//! An order number alone never routes a stranger's message into an order's
//! thread: a sender who is not the order's customer lands in the inbox.
//!
//! The provider's message id is stored as `external_id`, unique per channel
//! in `messages` and in `inbox_items`, so the same inbound delivered twice,
//! even concurrently, is stored once.

use consign_domain::messaging::{Channel, SenderRole, find_order_number};
use consign_domain::{BrandId, InboxItemId, OrderId, OrganizationId, ThreadId, Timestamp};

use super::{phone_digits, phone_digits_sql};
use crate::messages::Message;
use crate::messages::write::{MessageInsert, MessageTx};
use crate::{Db, DbError, DbResult, db_read, db_write};

/// A message a customer sent through a provider.
#[derive(Clone, Debug)]
pub struct Inbound {
    /// Where it came in.
    pub channel: Channel,
    /// The brand whose webhook received it, if the webhook names one.
    pub brand_id: Option<BrandId>,
    /// The thread its reply address names, if any.
    pub thread_id: Option<ThreadId>,
    /// The sender's email address or phone number.
    pub sender: String,
    /// Email subject.
    pub subject: Option<String>,
    /// The text (quoted history already cut off).
    pub body: String,
    /// The provider's id of the message.
    pub external_id: String,
}

/// What became of an inbound message.
#[derive(Clone, Debug)]
pub enum Received {
    /// Posted to its order's thread.
    Posted(Box<Message>),
    /// Kept in the brand's inbox.
    Inboxed(InboxItemId),
    /// Already stored: a redelivery.
    Duplicate,
    /// No brand to keep it for (no thread, no brand on the webhook).
    Unroutable,
}

#[derive(sqlx::FromRow)]
struct Target {
    id: OrderId,
    organization_id: OrganizationId,
    brand_id: BrandId,
}

/// Routes and stores one inbound message (system-wide: webhooks have no
/// caller; the webhook's signature is the authority).
pub async fn receive(db: &Db, inbound: Inbound) -> DbResult<Received> {
    let body = inbound.body.trim().to_owned();
    if body.is_empty() {
        return Ok(Received::Unroutable);
    }
    let body: String = body.chars().take(10_000).collect();
    let seen: Option<i64> = db_read!(db, |conn| {
        sqlx::query_scalar(
            "SELECT CAST(1 AS BIGINT) FROM messages WHERE channel = $1 AND external_id = $2
             UNION ALL SELECT 1 FROM inbox_items WHERE channel = $1 AND external_id = $2 LIMIT 1",
        )
        .bind(inbound.channel)
        .bind(&inbound.external_id)
        .fetch_optional(conn)
        .await?
    });
    if seen.is_some() {
        return Ok(Received::Duplicate);
    }
    let target = find_order(db, &inbound).await?;
    let brand_id = match (&target, inbound.brand_id) {
        (Some(target), _) => target.brand_id,
        (None, Some(brand_id)) => brand_id,
        (None, None) => return Ok(Received::Unroutable),
    };
    let stored = match target {
        Some(target) => {
            let insert = MessageInsert {
                organization_id: target.organization_id,
                brand_id: target.brand_id,
                order_id: target.id,
                body,
                channel: inbound.channel,
                sender_role: SenderRole::Customer,
                sender_id: Some(inbound.sender.clone()),
                internal: false,
                attachments: serde_json::json!([]),
                external_id: Some(inbound.external_id.clone()),
                actor: "customer".into(),
            };
            let result: DbResult<Message> = async { Ok(db_write!(db, |tx| tx.post_message(insert).await?)) }.await;
            result.map(|message| Received::Posted(Box::new(message)))
        }
        None => {
            let id = InboxItemId::new();
            let result: DbResult<()> = async {
                db_write!(db, |tx| {
                    sqlx::query(
                        "INSERT INTO inbox_items (id, organization_id, brand_id, channel, sender, subject, body, external_id, created_at)
                         SELECT $1, organization_id, id, $2, $3, $4, $5, $6, $7 FROM brands WHERE id = $8",
                    )
                    .bind(id)
                    .bind(inbound.channel)
                    .bind(&inbound.sender)
                    .bind(&inbound.subject)
                    .bind(&body)
                    .bind(&inbound.external_id)
                    .bind(Timestamp::now())
                    .bind(brand_id)
                    .execute(&mut **tx)
                    .await?;
                });
                Ok(())
            }
            .await;
            result.map(|()| Received::Inboxed(id))
        }
    };
    match stored {
        // Lost a race with a concurrent delivery of the same message.
        Err(DbError::Conflict { .. }) => Ok(Received::Duplicate),
        other => other,
    }
}

fn is_phone_channel(channel: Channel) -> bool {
    matches!(channel, Channel::Sms | Channel::Whatsapp)
}

async fn find_order(db: &Db, inbound: &Inbound) -> DbResult<Option<Target>> {
    if let Some(thread_id) = inbound.thread_id {
        let target: Option<Target> = db_read!(db, |conn| {
            sqlx::query_as("SELECT order_id AS id, organization_id, brand_id FROM message_threads WHERE id = $1")
                .bind(thread_id)
                .fetch_optional(conn)
                .await?
        });
        if let Some(target) = target
            && inbound.brand_id.is_none_or(|brand| brand == target.brand_id)
        {
            return Ok(Some(target));
        }
    }
    let Some(brand_id) = inbound.brand_id else { return Ok(None) };
    let phone = is_phone_channel(inbound.channel);
    let sender = if phone { phone_digits(&inbound.sender) } else { inbound.sender.trim().to_lowercase() };
    if sender.is_empty() {
        return Ok(None);
    }
    let sender_matches = if phone {
        format!("{} = $2", phone_digits_sql("customer_phone"))
    } else {
        "LOWER(customer_email) = $2".into()
    };
    let number = inbound.subject.as_deref().and_then(find_order_number).or_else(|| find_order_number(&inbound.body));
    if let Some(number) = number {
        let sql = format!(
            "SELECT id, organization_id, brand_id FROM orders WHERE brand_id = $1 AND {sender_matches} AND number = $3"
        );
        let found: Option<Target> = db_read!(db, |conn| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(brand_id)
                .bind(&sender)
                .bind(number)
                .fetch_optional(conn)
                .await?
        });
        if found.is_some() {
            return Ok(found);
        }
    }
    let sql = format!(
        "SELECT id, organization_id, brand_id FROM orders WHERE brand_id = $1 AND {sender_matches} AND status <> 'draft'
          ORDER BY CASE WHEN status = 'open' THEN 0 ELSE 1 END, created_at DESC, id DESC LIMIT 1"
    );
    Ok(db_read!(db, |conn| {
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(brand_id).bind(&sender).fetch_optional(conn).await?
    }))
}
