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
//! thread: a sender who is not the order's customer lands in the inbox, and
//! so does a sender the provider does not vouch for (rules 2 and 3 trust
//! the sender's address; rule 1 trusts only the reply address's token, a
//! secret sent to the customer, whoever the sender claims to be).
//!
//! The provider's message id is stored as `external_id`, unique per channel
//! in `messages` and in `inbox_items`, so the same inbound delivered twice,
//! even concurrently, is stored once.

use consign_domain::messaging::{Channel, SenderRole, find_order_number};
use consign_domain::text::MessageBody;
use consign_domain::{BrandId, InboxItemId, OrderId, OrganizationId, ThreadId, Timestamp};

use super::{phone_digits, phone_digits_sql};
use crate::messages::Message;
use crate::messages::write::{MessageInsert, post_message};
use crate::{Db, DbError, DbResult, Tx};

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
    /// Whether the provider vouches for the sender: for email, an SPF or
    /// DKIM pass; WhatsApp and SMS come from the carrier's number. Only a
    /// verified sender is looked up among the brand's customers (rules 2
    /// and 3): anyone can write `From: victim@example.com`, and a message
    /// filed in the victim's thread would look like the customer's own.
    pub sender_verified: bool,
    /// The provider's one-time delivery token, if it sends one (Mailgun):
    /// recorded in the transaction that stores the message, so a replay
    /// is refused but a retry after a failed attempt is not.
    pub replay_token: Option<ReplayToken>,
}

/// A webhook's one-time token (see [`Inbound::replay_token`]).
#[derive(Clone, Debug)]
pub struct ReplayToken {
    /// The provider, such as `mailgun`.
    pub provider: &'static str,
    /// The token.
    pub token: String,
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
    /// Its replay token was used before: nothing was stored.
    Replayed,
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
    if let Some(replay) = &inbound.replay_token
        && token_seen(db, replay).await?
    {
        return Ok(Received::Replayed);
    }
    let body = inbound.body.trim().to_owned();
    if body.is_empty() {
        return nothing_stored(db, &inbound, Received::Unroutable).await;
    }
    // Too long a text is cut, not refused: the customer has sent it already.
    let body: String = body.chars().take(MessageBody::MAX_CHARS).collect();
    let seen: Option<i64> = db
        .read(
            "SELECT CAST(1 AS BIGINT) FROM messages WHERE channel = $1 AND external_id = $2
             UNION ALL SELECT 1 FROM inbox_items WHERE channel = $1 AND external_id = $2 LIMIT 1",
        )
        .bind(inbound.channel)
        .bind(inbound.external_id.clone())
        .scalar_optional()
        .await?;
    if seen.is_some() {
        return nothing_stored(db, &inbound, Received::Duplicate).await;
    }
    let target = find_order(db, &inbound).await?;
    let brand_id = match (&target, inbound.brand_id) {
        (Some(target), _) => target.brand_id,
        (None, Some(brand_id)) => brand_id,
        (None, None) => return nothing_stored(db, &inbound, Received::Unroutable).await,
    };
    let (provider, token) = match &inbound.replay_token {
        Some(replay) => (replay.provider, Some(replay.token.clone())),
        None => ("", None),
    };
    // Each write below records the replay token first, in the same
    // transaction: when the token was taken meanwhile, nothing is written;
    // when the write fails, the token is rolled back with it, so the
    // provider's retry is accepted.
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
            post_to_thread(db, provider, token.as_deref(), insert)
                .await
                .map(|message| message.map_or(Received::Replayed, |message| Received::Posted(Box::new(message))))
        }
        None => {
            let id = InboxItemId::new();
            keep_in_inbox(db, provider, token.as_deref(), id, brand_id, &inbound, &body)
                .await
                .map(|fresh| if fresh { Received::Inboxed(id) } else { Received::Replayed })
        }
    };
    match stored {
        // Lost a race with a concurrent delivery of the same message.
        Err(DbError::Conflict { .. }) => nothing_stored(db, &inbound, Received::Duplicate).await,
        other => other,
    }
}

const REMEMBER_TOKEN: &str = "INSERT INTO webhook_replays (provider, token, created_at) VALUES ($1, $2, $3)
                              ON CONFLICT (provider, token) DO NOTHING";

/// Records the replay token, if any; answers `false` when it was taken
/// before (nothing may be stored then).
async fn remember_token(tx: &mut Tx, provider: &'static str, token: Option<&str>) -> DbResult<bool> {
    match token {
        Some(token) => {
            Ok(tx.query(REMEMBER_TOKEN).bind(provider).bind(token.to_owned()).bind(Timestamp::now()).execute().await?
                == 1)
        }
        None => Ok(true),
    }
}

/// Posts the message to its order's thread, in one transaction with its
/// replay token; `None` when the token was taken meanwhile.
async fn post_to_thread(
    db: &Db,
    provider: &'static str,
    token: Option<&str>,
    insert: MessageInsert,
) -> DbResult<Option<Message>> {
    let mut tx = db.begin().await?;
    let message =
        if remember_token(&mut tx, provider, token).await? { Some(post_message(&mut tx, insert).await?) } else { None };
    tx.commit().await?;
    Ok(message)
}

/// Keeps the message in the brand's inbox as item `id`, in one transaction
/// with its replay token; `false` when the token was taken meanwhile.
async fn keep_in_inbox(
    db: &Db,
    provider: &'static str,
    token: Option<&str>,
    id: InboxItemId,
    brand_id: BrandId,
    inbound: &Inbound,
    body: &str,
) -> DbResult<bool> {
    let mut tx = db.begin().await?;
    let fresh = remember_token(&mut tx, provider, token).await?;
    if fresh {
        tx.query(
            "INSERT INTO inbox_items (id, organization_id, brand_id, channel, sender, subject, body, external_id,
                                      sender_verified, created_at)
             SELECT $1, organization_id, id, $2, $3, $4, $5, $6, $7, $8 FROM brands WHERE id = $9",
        )
        .bind(id)
        .bind(inbound.channel)
        .bind(inbound.sender.clone())
        .bind(inbound.subject.clone())
        .bind(body.to_owned())
        .bind(inbound.external_id.clone())
        .bind(inbound.sender_verified)
        .bind(Timestamp::now())
        .bind(brand_id)
        .execute()
        .await?;
    }
    tx.commit().await?;
    Ok(fresh)
}

async fn token_seen(db: &Db, replay: &ReplayToken) -> DbResult<bool> {
    let seen: Option<i64> = db
        .read("SELECT CAST(1 AS BIGINT) FROM webhook_replays WHERE provider = $1 AND token = $2")
        .bind(replay.provider)
        .bind(replay.token.clone())
        .scalar_optional()
        .await?;
    Ok(seen.is_some())
}

/// The answer for a delivery that stores nothing (a redelivery, nothing to
/// route): its token is still used up, so it cannot be replayed with other
/// fields (the signature covers only the token and timestamp).
async fn nothing_stored(db: &Db, inbound: &Inbound, received: Received) -> DbResult<Received> {
    match &inbound.replay_token {
        Some(replay) if !super::remember_webhook_token(db, replay.provider, &replay.token).await? => {
            Ok(Received::Replayed)
        }
        _ => Ok(received),
    }
}

fn is_phone_channel(channel: Channel) -> bool {
    matches!(channel, Channel::Sms | Channel::Whatsapp)
}

async fn find_order(db: &Db, inbound: &Inbound) -> DbResult<Option<Target>> {
    if let Some(thread_id) = inbound.thread_id {
        let target: Option<Target> = db
            .read("SELECT order_id AS id, organization_id, brand_id FROM message_threads WHERE id = $1")
            .bind(thread_id)
            .fetch_optional()
            .await?;
        if let Some(target) = target
            && inbound.brand_id.is_none_or(|brand| brand == target.brand_id)
        {
            return Ok(Some(target));
        }
    }
    let Some(brand_id) = inbound.brand_id else { return Ok(None) };
    if !inbound.sender_verified {
        return Ok(None);
    }
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
        let found: Option<Target> =
            db.read_built(sql).bind(brand_id).bind(sender.clone()).bind(number).fetch_optional().await?;
        if found.is_some() {
            return Ok(found);
        }
    }
    let sql = format!(
        "SELECT id, organization_id, brand_id FROM orders WHERE brand_id = $1 AND {sender_matches} AND status <> 'draft'
          ORDER BY CASE WHEN status = 'open' THEN 0 ELSE 1 END, created_at DESC, id DESC LIMIT 1"
    );
    db.read_built(sql).bind(brand_id).bind(sender).fetch_optional().await
}
