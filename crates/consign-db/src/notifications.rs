//! Notifications: customers hear about their order's events and about
//! staff replies written in the app; staff hear about new customer
//! messages, at most one email per thread per digest window.
//!
//! Nothing is sent inside a request. Recording an event (`Tx::record_event`)
//! asks `reactions::reaction` whether it notifies anyone and, in the same
//! transaction, enqueues [`NotifyCustomer`](crate::jobs::kinds::NotifyCustomer)
//! or [`StaffDigest`](crate::jobs::kinds::StaffDigest); the jobs render the
//! brand's templates, write one `notifications` row per recipient and
//! channel (the delivery log) and send through the providers.

use consign_domain::messaging::{Channel, DeliveryStatus};
use consign_domain::{BrandId, NotificationId, OrderId, OrganizationId, Timestamp, UserId};
use serde::Serialize;

use crate::{Db, DbError, DbResult, Scope};

pub mod plan;
pub mod work;

/// The digest window of a brand that has not chosen one.
pub const DEFAULT_STAFF_DIGEST_SECONDS: i64 = 300;

/// What a customer can be notified of (each has a template): the events
/// whose reaction notifies the customer, plus `message.reply` (a staff reply
/// written in the app).
pub const CUSTOMER_KINDS: &[&str] = &[
    "order.created",
    "order.link_requested",
    "order.paid",
    "shipment.in_transit",
    "order.delivered",
    "order.cancelled",
    "order.refunded",
    "order.partially_refunded",
    "message.reply",
];

/// The channels a notification goes out on.
pub const CHANNELS: [Channel; 3] = [Channel::Email, Channel::Sms, Channel::Whatsapp];

/// A brand's template for one kind and channel, saved or built in.
#[derive(Clone, Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Template {
    /// Such as `shipment.in_transit`.
    pub kind: String,
    /// `email`, `sms` or `whatsapp`.
    pub channel: Channel,
    /// Whether this channel sends this kind.
    pub enabled: bool,
    /// The email subject (unused for SMS and WhatsApp).
    pub subject: String,
    /// The text, with placeholders (`{{order.number}}`, `{{customer.name}}`,
    /// `{{order.url}}`, `{{tracking.url}}`, `{{message.body}}`, `{{brand.name}}`).
    pub body: String,
    /// `false` while the built-in text is in use.
    pub customized: bool,
}

/// The built-in template: email on with its own wording, SMS and WhatsApp
/// off with a short text.
pub fn default_template(kind: &str, channel: Channel) -> Option<Template> {
    let (subject, email, short) = match kind {
        "order.created" => (
            "Your order {{order.number}} at {{brand.name}}",
            "Hi {{customer.name}},\n\nThank you for your order {{order.number}}. Follow it and write to us here:\n{{order.url}}\n\n{{brand.name}}",
            "{{brand.name}}: we have your order {{order.number}}. Follow it here: {{order.url}}",
        ),
        "order.link_requested" => (
            "The link to your order {{order.number}} at {{brand.name}}",
            "Hi {{customer.name}},\n\nHere is your order {{order.number}}: follow it and write to us there.\n{{order.url}}\n\nIf you did not ask for this link, you can ignore this email.\n\n{{brand.name}}",
            "{{brand.name}}: your order {{order.number}}: {{order.url}}",
        ),
        "order.paid" => (
            "Payment received for order {{order.number}}",
            "Hi {{customer.name}},\n\nWe received your payment. Your order {{order.number}} is confirmed.\n{{order.url}}\n\n{{brand.name}}",
            "{{brand.name}}: payment received, order {{order.number}} is confirmed.",
        ),
        "shipment.in_transit" => (
            "Order {{order.number}} is on its way",
            "Hi {{customer.name}},\n\nYour parcel is on its way. Track it here:\n{{tracking.url}}\n\nYour order: {{order.url}}\n\n{{brand.name}}",
            "{{brand.name}}: order {{order.number}} is on its way. Track it: {{tracking.url}}",
        ),
        "order.delivered" => (
            "Order {{order.number}} was delivered",
            "Hi {{customer.name}},\n\nYour order {{order.number}} was delivered. Questions? Reply to this email.\n\n{{brand.name}}",
            "{{brand.name}}: order {{order.number}} was delivered.",
        ),
        "order.cancelled" => (
            "Order {{order.number}} was cancelled",
            "Hi {{customer.name}},\n\nYour order {{order.number}} was cancelled. Questions? Reply to this email.\n{{order.url}}\n\n{{brand.name}}",
            "{{brand.name}}: order {{order.number}} was cancelled.",
        ),
        "order.refunded" => (
            "Refund for order {{order.number}}",
            "Hi {{customer.name}},\n\nYour payment for order {{order.number}} was refunded.\n{{order.url}}\n\n{{brand.name}}",
            "{{brand.name}}: your payment for order {{order.number}} was refunded.",
        ),
        "order.partially_refunded" => (
            "Partial refund for order {{order.number}}",
            "Hi {{customer.name}},\n\nPart of your payment for order {{order.number}} was refunded.\n{{order.url}}\n\n{{brand.name}}",
            "{{brand.name}}: part of your payment for order {{order.number}} was refunded.",
        ),
        "message.reply" => (
            "New reply about your order {{order.number}}",
            "{{message.body}}\n\nReply to this email or on your order page:\n{{order.url}}\n\n{{brand.name}}",
            "{{brand.name}} replied about order {{order.number}}: {{message.body}}",
        ),
        _ => return None,
    };
    let (enabled, body) = match channel {
        Channel::Email => (true, email),
        Channel::Sms | Channel::Whatsapp => (false, short),
        Channel::InApp => return None,
    };
    Some(Template {
        kind: kind.to_owned(),
        channel,
        enabled,
        subject: subject.to_owned(),
        body: body.to_owned(),
        customized: false,
    })
}

/// The templates of `kinds` in force for a brand: saved ones, else built in.
pub(crate) async fn effective(db: &Db, brand_id: BrandId, kinds: &[&str]) -> DbResult<Vec<Template>> {
    let saved: Vec<Template> = db
        .read(
            "SELECT kind, channel, enabled, subject, body, TRUE AS customized
               FROM notification_templates WHERE brand_id = $1",
        )
        .bind(brand_id)
        .fetch_all()
        .await?;
    Ok(kinds
        .iter()
        .flat_map(|kind| CHANNELS.map(|channel| (*kind, channel)))
        .filter_map(|(kind, channel)| {
            saved
                .iter()
                .find(|t| t.kind == kind && t.channel == channel)
                .cloned()
                .or_else(|| default_template(kind, channel))
        })
        .collect())
}

/// Every template of a brand, kind by kind.
pub async fn templates(db: &Db, scope: &Scope, brand_id: BrandId) -> DbResult<Vec<Template>> {
    scope.check_brand(brand_id)?;
    effective(db, brand_id, CUSTOMER_KINDS).await
}

/// A template as staff save it.
#[derive(Clone, Debug)]
pub struct TemplateChange {
    /// Whether the channel sends this kind.
    pub enabled: bool,
    /// Email subject.
    pub subject: String,
    /// Text.
    pub body: String,
}

/// Saves a brand's template for a kind and channel.
pub async fn save_template(
    db: &Db,
    scope: &Scope,
    brand_id: BrandId,
    kind: &str,
    channel: Channel,
    change: TemplateChange,
) -> DbResult<Template> {
    scope.check_brand(brand_id)?;
    if default_template(kind, channel).is_none() {
        return Err(if CUSTOMER_KINDS.contains(&kind) {
            DbError::invalid("channel", "must be email, sms or whatsapp")
        } else {
            DbError::invalid("kind", format!("must be one of {}", CUSTOMER_KINDS.join(", ")))
        });
    }
    let organization_id = brand_organization(db, brand_id).await?;
    let mut tx = db.begin().await?;
    tx.query(
        "INSERT INTO notification_templates (brand_id, organization_id, kind, channel, enabled, subject, body, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (brand_id, kind, channel)
         DO UPDATE SET enabled = excluded.enabled, subject = excluded.subject, body = excluded.body,
                       updated_at = excluded.updated_at",
    )
    .bind(brand_id)
    .bind(organization_id)
    .bind(kind.to_owned())
    .bind(channel)
    .bind(change.enabled)
    .bind(change.subject.clone())
    .bind(change.body.clone())
    .bind(Timestamp::now())
    .execute()
    .await?;
    tx.record_audit(scope.audit(
        organization_id,
        Some(brand_id),
        "notification_template.save",
        "notification_template",
        format!("{kind}:{channel}"),
    ))
    .await?;
    tx.commit().await?;
    Ok(Template {
        kind: kind.to_owned(),
        channel,
        enabled: change.enabled,
        subject: change.subject,
        body: change.body,
        customized: true,
    })
}

/// A brand's notification settings.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Settings {
    /// Staff get at most one email per thread per this many seconds.
    pub staff_digest_seconds: i64,
}

/// A brand's notification settings (defaults when never saved).
pub async fn settings(db: &Db, scope: &Scope, brand_id: BrandId) -> DbResult<Settings> {
    scope.check_brand(brand_id)?;
    let saved: Option<i64> = db
        .read("SELECT staff_digest_seconds FROM notification_settings WHERE brand_id = $1")
        .bind(brand_id)
        .scalar_optional()
        .await?;
    Ok(Settings { staff_digest_seconds: saved.unwrap_or(DEFAULT_STAFF_DIGEST_SECONDS) })
}

/// Saves a brand's notification settings.
pub async fn save_settings(db: &Db, scope: &Scope, brand_id: BrandId, settings: Settings) -> DbResult<Settings> {
    scope.check_brand(brand_id)?;
    if !(1..=86_400).contains(&settings.staff_digest_seconds) {
        return Err(DbError::invalid("staff_digest_seconds", "must be between 1 and 86400"));
    }
    let organization_id = brand_organization(db, brand_id).await?;
    let mut tx = db.begin().await?;
    tx.query(
        "INSERT INTO notification_settings (brand_id, organization_id, staff_digest_seconds, updated_at)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (brand_id) DO UPDATE SET staff_digest_seconds = excluded.staff_digest_seconds,
                                              updated_at = excluded.updated_at",
    )
    .bind(brand_id)
    .bind(organization_id)
    .bind(settings.staff_digest_seconds)
    .bind(Timestamp::now())
    .execute()
    .await?;
    tx.record_audit(scope.audit(
        organization_id,
        Some(brand_id),
        "notification_settings.save",
        "brand",
        brand_id.to_string(),
    ))
    .await?;
    tx.commit().await?;
    Ok(settings)
}

async fn brand_organization(db: &Db, brand_id: BrandId) -> DbResult<OrganizationId> {
    db.read("SELECT organization_id FROM brands WHERE id = $1").bind(brand_id).scalar().await
}

/// One notification to one recipient on one channel: the delivery log.
#[derive(Clone, Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Notification {
    /// Id.
    pub id: NotificationId,
    /// The order it is about.
    pub order_id: OrderId,
    /// Such as `shipment.in_transit`, `message.reply` or `staff.digest`.
    pub kind: String,
    /// `customer` or `staff`.
    pub audience: String,
    /// The staff member, for staff notifications.
    pub user_id: Option<UserId>,
    /// `email`, `sms` or `whatsapp`.
    pub channel: Channel,
    /// The address or phone number.
    pub recipient: String,
    /// The email subject.
    pub subject: String,
    /// The text sent.
    pub body: String,
    /// `queued`, `sent` or `failed`.
    pub status: DeliveryStatus,
    /// Sends tried.
    pub attempts: i64,
    /// Why the last try failed.
    pub last_error: Option<String>,
    /// The provider's id of the sent message.
    pub provider_message_id: Option<String>,
    /// Created at.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

const COLUMNS: &str = "id, order_id, kind, audience, user_id, channel, recipient, subject, body, status, attempts,
                       last_error, provider_message_id, created_at, updated_at";

/// The notifications about an order, oldest first (staff only: customers
/// never see staff digests).
pub async fn for_order(db: &Db, scope: &Scope, order_id: OrderId) -> DbResult<Vec<Notification>> {
    let brand_id: BrandId = db.read("SELECT brand_id FROM orders WHERE id = $1").bind(order_id).scalar().await?;
    scope.check_brand(brand_id)?;
    db.read_built(format!("SELECT {COLUMNS} FROM notifications WHERE order_id = $1 ORDER BY created_at, id"))
        .bind(order_id)
        .fetch_all()
        .await
}

/// Whether an operator approved the brand's outbound messaging (SMS and
/// WhatsApp, and its own templates before its first paid order).
pub async fn messaging_approved(db: &Db, brand_id: BrandId) -> DbResult<bool> {
    let approved_at: Option<Option<i64>> =
        db.read("SELECT messaging_approved_at FROM brands WHERE id = $1").bind(brand_id).scalar_optional().await?;
    Ok(approved_at.flatten().is_some())
}

/// Approves a brand's outbound messaging, by its slug (an operator's
/// decision: `consign admin approve-messaging`). Answers the brand's id.
pub async fn approve_messaging(db: &Db, brand_slug: &str) -> DbResult<BrandId> {
    let mut tx = db.begin().await?;
    let brand_id: BrandId = tx
        .query(
            "UPDATE brands SET messaging_approved_at = COALESCE(messaging_approved_at, $1) WHERE slug = $2
             RETURNING id",
        )
        .bind(Timestamp::now())
        .bind(brand_slug.to_owned())
        .scalar()
        .await?;
    tx.commit().await?;
    Ok(brand_id)
}

/// Whether the brand has taken real money: at least one paid order. Until
/// then its customized templates are not used (a brand made a minute ago
/// cannot mail its own text to addresses typed into its checkout).
pub async fn has_paid_order(db: &Db, brand_id: BrandId) -> DbResult<bool> {
    db.read(
        "SELECT EXISTS (SELECT 1 FROM orders
                         WHERE brand_id = $1 AND payment_status IN ('paid', 'partially_refunded', 'refunded'))",
    )
    .bind(brand_id)
    .scalar()
    .await
}
