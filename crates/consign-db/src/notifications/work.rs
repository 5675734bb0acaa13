//! What the notification jobs read and write, system-wide (a job has no
//! caller): the event's order and brand, the digest's messages and
//! recipients, and the delivery log rows.

use consign_domain::messaging::{Channel, DeliveryStatus};
use consign_domain::{BrandId, EventId, NotificationId, OrderId, OrganizationId, ThreadId, Timestamp, UserId};

use super::{COLUMNS, Notification, Template, effective};
use crate::{Db, DbResult, JsonText};

/// An event about to be told to its order's customer.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CustomerNotice {
    /// Such as `order.paid` or `message.created`.
    pub event_type: String,
    /// The event's payload (a message's body, a shipment's tracking URL).
    pub payload: JsonText,
    /// The organization.
    pub organization_id: OrganizationId,
    /// The brand.
    pub brand_id: BrandId,
    /// The order.
    pub order_id: OrderId,
    /// Its number (without `#`).
    pub order_number: i64,
    /// The customer.
    pub customer_name: String,
    /// The customer's email.
    pub customer_email: String,
    /// The customer's phone, if given.
    pub customer_phone: Option<String>,
    /// The brand's name.
    pub brand_name: String,
    /// The brand's storefront slug.
    pub brand_slug: String,
    /// The order's thread, once it has one.
    pub thread_id: Option<ThreadId>,
    /// The latest tracking page of the order's shipments.
    pub tracking_url: Option<String>,
    /// The version of the order's access token, for the order page link.
    pub access_token_version: i64,
}

impl CustomerNotice {
    /// The customer's address on `channel`.
    pub fn recipient(&self, channel: Channel) -> Option<&str> {
        match channel {
            Channel::Email => Some(self.customer_email.as_str()),
            Channel::Sms | Channel::Whatsapp => self.customer_phone.as_deref(),
            Channel::InApp => None,
        }
        .filter(|address| !address.trim().is_empty())
    }
}

/// Loads the event a customer job tells about, with its order and brand.
pub async fn customer_notice(db: &Db, event_id: EventId) -> DbResult<CustomerNotice> {
    db.read(
        "SELECT e.type AS event_type, e.payload, o.organization_id, o.brand_id, o.id AS order_id,
                o.number AS order_number, o.customer_name, o.customer_email, o.customer_phone,
                b.name AS brand_name, b.slug AS brand_slug,
                (SELECT t.id FROM message_threads t WHERE t.order_id = o.id) AS thread_id,
                (SELECT s.tracking_url FROM shipments s WHERE s.order_id = o.id AND s.tracking_url IS NOT NULL
                  ORDER BY s.id DESC LIMIT 1) AS tracking_url,
                o.access_token_version
           FROM events e
           JOIN orders o ON o.id = e.order_id
           JOIN brands b ON b.id = o.brand_id
          WHERE e.id = $1",
    )
    .bind(event_id)
    .fetch_one()
    .await
}

/// The brand's enabled templates for `kind`, one per channel that sends it.
pub async fn enabled_templates(db: &Db, brand_id: BrandId, kind: &str) -> DbResult<Vec<Template>> {
    Ok(effective(db, brand_id, &[kind]).await?.into_iter().filter(|t| t.enabled).collect())
}

/// A notification about to be logged and sent.
#[derive(Clone, Debug)]
pub struct NewNotification {
    /// The organization.
    pub organization_id: OrganizationId,
    /// The brand.
    pub brand_id: BrandId,
    /// The order.
    pub order_id: OrderId,
    /// Such as `order.paid` or `staff.digest`.
    pub kind: String,
    /// `customer` or `staff`.
    pub audience: &'static str,
    /// The staff member.
    pub user_id: Option<UserId>,
    /// The channel.
    pub channel: Channel,
    /// The address or phone.
    pub recipient: String,
    /// Subject.
    pub subject: String,
    /// Text.
    pub body: String,
    /// The same key always names the same notification, so a retried job
    /// finds the row it wrote instead of sending again.
    pub dedupe_key: String,
}

/// Logs a notification as `queued`, or answers the row already logged
/// under its dedupe key (whatever its status).
pub async fn queue(db: &Db, new: NewNotification) -> DbResult<Notification> {
    let mut tx = db.begin().await?;
    let now = Timestamp::now();
    tx.query(
        "INSERT INTO notifications (id, organization_id, brand_id, order_id, kind, audience, user_id, channel,
                                    recipient, subject, body, status, attempts, dedupe_key, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'queued', 0, $12, $13, $13)
         ON CONFLICT (dedupe_key) DO NOTHING",
    )
    .bind(NotificationId::new())
    .bind(new.organization_id)
    .bind(new.brand_id)
    .bind(new.order_id)
    .bind(new.kind.clone())
    .bind(new.audience)
    .bind(new.user_id)
    .bind(new.channel)
    .bind(new.recipient.clone())
    .bind(new.subject.clone())
    .bind(new.body.clone())
    .bind(new.dedupe_key.clone())
    .bind(now)
    .execute()
    .await?;
    let notification: Notification = tx
        .query_built(format!("SELECT {COLUMNS} FROM notifications WHERE dedupe_key = $1"))
        .bind(new.dedupe_key.clone())
        .fetch_one()
        .await?;
    tx.commit().await?;
    Ok(notification)
}

/// Records a send: `queued` becomes `sent`.
pub async fn mark_sent(db: &Db, id: NotificationId, provider_message_id: &str) -> DbResult<()> {
    let mut tx = db.begin().await?;
    tx.query(
        "UPDATE notifications SET status = 'sent', provider_message_id = $1, attempts = attempts + 1,
                last_error = NULL, updated_at = $2
          WHERE id = $3 AND status = 'queued'",
    )
    .bind(provider_message_id.to_owned())
    .bind(Timestamp::now())
    .bind(id)
    .execute()
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Records a failed try; `give_up` makes it `failed`.
pub async fn record_failure(db: &Db, id: NotificationId, error: &str, give_up: bool) -> DbResult<()> {
    let error: String = error.chars().take(1000).collect();
    let mut tx = db.begin().await?;
    tx.query(
        "UPDATE notifications SET attempts = attempts + 1, last_error = $1,
                status = CASE WHEN $2 THEN 'failed' ELSE status END, updated_at = $3
          WHERE id = $4 AND status = 'queued'",
    )
    .bind(error)
    .bind(give_up)
    .bind(Timestamp::now())
    .bind(id)
    .execute()
    .await?;
    tx.commit().await?;
    Ok(())
}

/// A thread's customer messages waiting for their staff digest.
#[derive(Clone, Debug)]
pub struct Digest {
    /// The thread's organization.
    pub organization_id: OrganizationId,
    /// The brand.
    pub brand_id: BrandId,
    /// The order.
    pub order_id: OrderId,
    /// Its number (without `#`).
    pub order_number: i64,
    /// The customer.
    pub customer_name: String,
    /// The brand's name.
    pub brand_name: String,
    /// The messages, oldest first: (channel, text).
    pub messages: Vec<(Channel, String)>,
    /// Who is told: the thread's assignee, else the brand's staff
    /// (members of the brand and of its organization).
    pub recipients: Vec<(UserId, String)>,
}

#[derive(sqlx::FromRow)]
struct DigestHead {
    organization_id: OrganizationId,
    brand_id: BrandId,
    order_id: OrderId,
    order_number: i64,
    customer_name: String,
    brand_name: String,
    assignee_id: Option<UserId>,
    staff_notified_at: Option<Timestamp>,
}

/// The customer messages of a thread written after its last digest and up
/// to `until`, and who should read them.
pub async fn digest(db: &Db, thread_id: ThreadId, until: Timestamp) -> DbResult<Digest> {
    let head: DigestHead = db
        .read(
            "SELECT t.organization_id, t.brand_id, t.order_id, o.number AS order_number, o.customer_name,
                    b.name AS brand_name, t.assignee_id, t.staff_notified_at
               FROM message_threads t JOIN orders o ON o.id = t.order_id JOIN brands b ON b.id = t.brand_id
              WHERE t.id = $1",
        )
        .bind(thread_id)
        .fetch_one()
        .await?;
    let messages: Vec<(Channel, String)> = db
        .read(
            "SELECT channel, body FROM messages
              WHERE thread_id = $1 AND sender_role = 'customer' AND created_at > $2 AND created_at <= $3
              ORDER BY created_at, id",
        )
        .bind(thread_id)
        .bind(head.staff_notified_at.unwrap_or(Timestamp::from_micros(0)))
        .bind(until)
        .fetch_all()
        .await?;
    let recipients: Vec<(UserId, String)> = match head.assignee_id {
        Some(assignee) => db.read("SELECT id, email FROM users WHERE id = $1").bind(assignee).fetch_all().await?,
        None => {
            db.read(
                "SELECT id, email FROM users WHERE id IN (
                     SELECT user_id FROM brand_memberships WHERE brand_id = $1
                     UNION SELECT user_id FROM org_memberships WHERE organization_id = $2)
                  ORDER BY email",
            )
            .bind(head.brand_id)
            .bind(head.organization_id)
            .fetch_all()
            .await?
        }
    };
    Ok(Digest {
        organization_id: head.organization_id,
        brand_id: head.brand_id,
        order_id: head.order_id,
        order_number: head.order_number,
        customer_name: head.customer_name,
        brand_name: head.brand_name,
        messages,
        recipients,
    })
}

/// Records that the thread's customer messages up to `until` were digested.
pub async fn mark_digested(db: &Db, thread_id: ThreadId, until: Timestamp) -> DbResult<()> {
    let mut tx = db.begin().await?;
    tx.query(
        "UPDATE message_threads SET staff_notified_at = $1
          WHERE id = $2 AND (staff_notified_at IS NULL OR staff_notified_at < $1)",
    )
    .bind(until)
    .bind(thread_id)
    .execute()
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Whether a notification still has to be sent.
pub fn is_pending(notification: &Notification) -> bool {
    notification.status == DeliveryStatus::Queued
}
