//! The notification jobs: [`NotifyCustomer`] tells an order's customer of
//! one event through every channel the brand's templates enable;
//! [`StaffDigest`] emails the thread's staff the customer messages of one
//! digest window; [`AnnounceAlert`] emails staff a new alert.
//!
//! Each recipient and channel is one row of the delivery log, found again
//! by its dedupe key when the job is retried, so a retry sends only what
//! has not gone out. Each is sent by `consign_app::outbound::send`: a
//! temporary failure fails the job with [`JobError::Retry`] (the queue
//! retries with backoff) until `max_delivery_attempts`; a refusal is final.
//! A channel this installation has not configured is skipped without a row.
//! Before its first try each customer notification passes the outbound
//! limits; one refused is logged `failed` with the reason. A brand's
//! customized wording is used only once it has a paid order or an
//! operator's approval: before that its customers get the built-in texts,
//! so a brand created a minute ago cannot mail (or text) words of its
//! choosing to whatever addresses it types into checkout.

use std::sync::Arc;

use anyhow::Context as _;
use consign_app::outbound::{self, Outbound, Outcome, Source};
use consign_channels::Channels;
use consign_channels::email::OutboundEmail;
use consign_db::Db;
use consign_db::jobs::kinds::{AnnounceAlert, NotifyCustomer, StaffDigest};
use consign_db::notifications::plan::customer_kind;
use consign_db::notifications::work::{self, NewNotification};
use consign_db::notifications::{Notification, default_template};
use consign_domain::messaging::{Channel, TemplateValues, render_template};
use consign_domain::{BrandId, ThreadId, Timestamp};
use consign_payments::Keyring;
use serde_json::Value;

use crate::{JobError, JobResult};

/// Runs one [`NotifyCustomer`] job.
pub async fn notify_customer(
    channels: Arc<Channels>,
    keyring: Keyring,
    db: Db,
    NotifyCustomer { event_id }: NotifyCustomer,
) -> JobResult {
    let notice = work::customer_notice(&db, event_id).await.context("cannot load the event")?;
    let kind = customer_kind(&notice.event_type);
    let mut templates =
        work::enabled_templates(&db, notice.brand_id, kind).await.context("cannot load the templates")?;
    if templates.iter().any(|t| t.customized) && !own_wording_allowed(&db, notice.brand_id).await? {
        for template in templates.iter_mut().filter(|t| t.customized) {
            if let Some(built_in) = default_template(&template.kind, template.channel) {
                template.subject = built_in.subject;
                template.body = built_in.body;
                template.customized = false;
            }
        }
    }
    let order_url = match &channels.config.public_base_url {
        Some(base) => {
            let key =
                consign_app::instance_secrets::get(&db, &keyring, consign_app::tokens::ORDER_TOKEN_KEY_SECRET).await?;
            let order_id = notice.order_id.to_string();
            let token = consign_app::tokens::order_access_token_version(&key, &order_id, notice.access_token_version);
            Some(consign_app::links::order_page(base, &notice.brand_slug, &order_id, &token))
        }
        None => None,
    };
    let text = |key: &str| notice.payload.0.get(key).and_then(Value::as_str).map(str::to_owned);
    let values = TemplateValues {
        order_number: format!("#{}", notice.order_number),
        customer_name: notice.customer_name.clone(),
        customer_email: notice.customer_email.clone(),
        tracking_url: text("tracking_url").or_else(|| notice.tracking_url.clone()),
        brand_name: notice.brand_name.clone(),
        order_url,
        message_body: text("body"),
    };
    let mut outcome = Ok(());
    for template in templates.iter().filter(|t| configured(&channels, t.channel)) {
        let Some(recipient) = notice.recipient(template.channel) else { continue };
        let row = work::queue(
            &db,
            NewNotification {
                organization_id: notice.organization_id,
                brand_id: notice.brand_id,
                order_id: notice.order_id,
                kind: kind.to_owned(),
                audience: "customer",
                user_id: None,
                channel: template.channel,
                recipient: recipient.to_owned(),
                subject: render_template(&template.subject, &values),
                body: render_template(&template.body, &values),
                dedupe_key: format!("{event_id}:{}", template.channel),
            },
        )
        .await
        .context("cannot log the notification")?;
        let sender = Sender { brand_id: notice.brand_id, name: &notice.brand_name, thread: notice.thread_id };
        if let Err(error) = deliver(&channels, &keyring, &db, &row, &sender).await {
            outcome = Err(error);
        }
    }
    outcome
}

/// Runs one [`StaffDigest`] job.
pub async fn staff_digest(channels: Arc<Channels>, keyring: Keyring, db: Db, job: StaffDigest) -> JobResult {
    let (thread_id, until) = (job.thread_id, Timestamp::from_micros(job.until));
    let digest = work::digest(&db, thread_id, until).await.context("cannot load the digest")?;
    if digest.messages.is_empty() || !configured(&channels, Channel::Email) {
        work::mark_digested(&db, thread_id, until).await.context("cannot record the digest")?;
        return Ok(());
    }
    let count = digest.messages.len();
    let subject = format!(
        "{} new message{} on order #{} ({})",
        count,
        if count == 1 { "" } else { "s" },
        digest.order_number,
        digest.brand_name
    );
    let mut body = format!("{} wrote about order #{}:\n\n", digest.customer_name, digest.order_number);
    for (channel, text) in &digest.messages {
        body.push_str(&format!("[{channel}] {text}\n\n"));
    }
    if let Some(base) = &channels.config.public_base_url {
        body.push_str(&format!("Answer: {}\n", consign_app::links::staff_order(base, &digest.order_id.to_string())));
    }
    let mut outcome = Ok(());
    for (user_id, email) in &digest.recipients {
        let row = work::queue(
            &db,
            NewNotification {
                organization_id: digest.organization_id,
                brand_id: digest.brand_id,
                order_id: digest.order_id,
                kind: "staff.digest".into(),
                audience: "staff",
                user_id: Some(*user_id),
                channel: Channel::Email,
                recipient: email.clone(),
                subject: subject.clone(),
                body: body.clone(),
                dedupe_key: format!("digest:{thread_id}:{}:{user_id}", until.as_micros()),
            },
        )
        .await
        .context("cannot log the notification")?;
        let sender = Sender { brand_id: digest.brand_id, name: &digest.brand_name, thread: None };
        if let Err(error) = deliver(&channels, &keyring, &db, &row, &sender).await {
            outcome = Err(error);
        }
    }
    outcome?;
    work::mark_digested(&db, thread_id, until).await.context("cannot record the digest")?;
    Ok(())
}

/// Runs one [`AnnounceAlert`] job: emails a new staff alert (a
/// money job that gave up, money owed back) to the brand's staff, so it is
/// seen without opening the dashboard. Each email carries a Message-ID of
/// the alert and the user, so a retried job that sent some of them is
/// recognisable as the same email; a resolved alert is not sent.
pub async fn staff_alert(channels: Arc<Channels>, db: Db, AnnounceAlert { alert_id }: AnnounceAlert) -> JobResult {
    let Some(config) = channels.config.email.as_ref() else { return Ok(()) };
    let Some(notice) = consign_db::alerts::notice(&db, alert_id).await.context("cannot load the alert")? else {
        return Ok(());
    };
    let subject = format!("Action needed at {}: {}", notice.brand_name, notice.alert.kind.replace('_', " "));
    let mut body = format!("{}\n\n", notice.alert.message);
    if let Some(base) = &channels.config.public_base_url {
        body.push_str(&format!("Retry or resolve it on the dashboard: {}/admin\n", base.trim_end_matches('/')));
    }
    let smtp = channels.smtp().map_err(|error| anyhow::anyhow!("{error}"))?;
    for (user_id, email) in &notice.recipients {
        let message = OutboundEmail {
            from_name: "Consign".to_owned(),
            from_address: config.from.clone(),
            to: email.clone(),
            reply_to: config.from.clone(),
            subject: subject.clone(),
            body: body.clone(),
            message_id: format!("<alert.{alert_id}.{user_id}@{}>", config.inbound_domain),
            in_reply_to: None,
        };
        smtp.send(&message).await.map_err(|error| anyhow::anyhow!("cannot email the alert: {error}"))?;
    }
    tracing::info!(%alert_id, recipients = notice.recipients.len(), "staff alert emailed");
    Ok(())
}

/// Whether the brand's own template texts may be used: it has a paid
/// order, or an operator approved its messaging.
async fn own_wording_allowed(db: &Db, brand_id: consign_domain::BrandId) -> anyhow::Result<bool> {
    Ok(consign_db::notifications::messaging_approved(db, brand_id).await?
        || consign_db::notifications::has_paid_order(db, brand_id).await?)
}

fn configured(channels: &Channels, channel: Channel) -> bool {
    let config = &channels.config;
    match channel {
        Channel::Email => config.email.is_some(),
        Channel::Sms => config.twilio.is_some(),
        Channel::Whatsapp => config.whatsapp.is_some(),
        Channel::InApp => false,
    }
}

/// Who a notification is from.
struct Sender<'a> {
    /// The brand: its outbound limits apply to its customer notifications.
    brand_id: BrandId,
    /// The brand's name, shown as the sender.
    name: &'a str,
    /// The order's thread: the customer's answer lands there.
    thread: Option<ThreadId>,
}

/// Sends one logged notification if it is still queued and records the
/// outcome. A customer notification passes the outbound limits on its
/// first try; a staff one goes to the brand's own people and passes none.
/// Errs for a temporary failure worth a retry, or storage failing.
async fn deliver(
    channels: &Channels,
    keyring: &Keyring,
    db: &Db,
    row: &Notification,
    sender: &Sender<'_>,
) -> JobResult {
    if !work::is_pending(row) {
        return Ok(());
    }
    let message = Outbound {
        source: Source::Notification(row.id),
        channel: row.channel,
        recipient: &row.recipient,
        subject: &row.subject,
        body: &row.body,
        brand_id: sender.brand_id,
        sender_name: sender.name,
        reply_thread: sender.thread,
        to_customer: row.audience == "customer",
        attempts: row.attempts,
    };
    match outbound::send(channels, db, keyring, &message).await? {
        Outcome::Refused(reason) => {
            work::record_failure(db, row.id, &reason, true).await.context("cannot record the refusal")?;
            tracing::warn!(notification_id = %row.id, %reason, "notification not sent");
            Ok(())
        }
        Outcome::Sent { provider_id } => {
            work::mark_sent(db, row.id, &provider_id).await.context("cannot record the send")?;
            tracing::info!(notification_id = %row.id, kind = %row.kind, channel = %row.channel, "notification sent");
            Ok(())
        }
        Outcome::Failed { reason, is_final } => {
            work::record_failure(db, row.id, &reason, is_final).await.context("cannot record the failure")?;
            if is_final {
                tracing::warn!(notification_id = %row.id, error = %reason, "notification failed for good");
                Ok(())
            } else {
                Err(JobError::Retry(anyhow::anyhow!("{reason}")))
            }
        }
    }
}
