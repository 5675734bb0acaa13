//! The one way a message goes out to a person: a staff reply on an order
//! thread (the worker's `messages.deliver`) or a notification (the
//! worker's notification jobs). [`send`] checks the outbound limits, sends
//! through the channel's provider and decides whether a failure is the
//! message's last; the caller records the [`Outcome`] in its own log (the
//! message's delivery, the notification's row) and maps it to a job result.
//!
//! The limits keep the installation's SMTP sender and Twilio account from
//! being turned into a spam or SMS-pumping relay. Every message to a
//! customer passes them on its first try:
//!
//! - SMS and WhatsApp go out only for brands an operator approved, unless
//!   the installation allows every brand (`allow_brand_sms`).
//! - One recipient (address or phone) gets at most so many messages per
//!   hour from the whole installation, and one brand sends at most so many
//!   per day. The counters are `consign_db::rate_limits`, shared by every
//!   worker on the database.
//!
//! A refused message is recorded `failed` with the reason and never sent.
//! Once sent, a message that failed is retried or given up by one rule,
//! `is_final`.

use consign_channels::email::OutboundEmail;
use consign_channels::{Channels, ChannelsConfig, SendError, twilio, whatsapp};
use consign_db::deliveries::PreviousEmail;
use consign_db::rate_limits::{self, Window};
use consign_db::{Db, DbError};
use consign_domain::messaging::Channel;
use consign_domain::{BrandId, MessageId, NotificationId, ThreadId, Timestamp};
use consign_payments::Keyring;

use crate::instance_secrets::{self, REPLY_KEY_SECRET};

/// One message to send, as its job loaded it.
pub struct Outbound<'a> {
    /// What is sent: a staff reply or a notification.
    pub source: Source<'a>,
    /// The channel it goes out on.
    pub channel: Channel,
    /// The address or phone number.
    pub recipient: &'a str,
    /// The email's subject (other channels have none).
    pub subject: &'a str,
    /// The text.
    pub body: &'a str,
    /// The brand it is from: its limits and approval apply.
    pub brand_id: BrandId,
    /// The email's sender name.
    pub sender_name: &'a str,
    /// The order thread an emailed answer should land in: the reply-to is
    /// then that thread's signed address. `None`: answers go to the
    /// installation's sender address.
    pub reply_thread: Option<ThreadId>,
    /// Whether it goes to a customer, so the outbound limits apply. A staff
    /// digest goes to the brand's own people and passes none.
    pub to_customer: bool,
    /// Tries before this one.
    pub attempts: i64,
}

/// What is sent. Its id derives the email's `Message-ID`, so that a copy
/// sent again on retry (a worker died between the send and its record) is
/// recognisable as the same email by the recipient's mail system.
pub enum Source<'a> {
    /// A staff reply on an order thread, delivered as a message.
    Reply {
        /// The message.
        message_id: MessageId,
        /// The brand's slug: the SMS's delivery status is reported to the
        /// brand's status webhook, which updates the delivery.
        brand_slug: &'a str,
        /// The latest earlier email in the thread, which this one answers
        /// (`In-Reply-To`), so mail clients thread them.
        previous_email: Option<&'a PreviousEmail>,
    },
    /// A row of the notification log. Its SMS status is not tracked.
    Notification(NotificationId),
}

/// How a send ended, for the caller to record.
#[derive(Debug)]
pub enum Outcome {
    /// The provider took the message.
    Sent {
        /// The provider's id of the sent message.
        provider_id: String,
    },
    /// The outbound limits refused it: it was not sent and never will be.
    Refused(String),
    /// The provider (or the channel's setup) failed it.
    Failed {
        /// What went wrong, as recorded.
        reason: String,
        /// Whether it was the last try: a refusal by the provider, or a
        /// temporary failure on the last allowed try. Otherwise the job is
        /// retried.
        is_final: bool,
    },
}

/// Sends `message` once: the outbound limits on its first try if it goes
/// to a customer, then its channel's provider. Fails only when storage
/// fails while counting the limits; every other failure is an
/// [`Outcome::Failed`].
pub async fn send(channels: &Channels, db: &Db, keyring: &Keyring, message: &Outbound<'_>) -> Result<Outcome, DbError> {
    if message.to_customer
        && message.attempts == 0
        && let Some(reason) =
            refusal(&channels.config, db, message.brand_id, message.channel, message.recipient).await?
    {
        return Ok(Outcome::Refused(reason));
    }
    Ok(match send_by_channel(channels, db, keyring, message).await {
        Ok(provider_id) => Outcome::Sent { provider_id },
        Err(error) => Outcome::Failed {
            is_final: is_final(&error, message.attempts, &channels.config),
            reason: error.to_string(),
        },
    })
}

async fn send_by_channel(
    channels: &Channels,
    db: &Db,
    keyring: &Keyring,
    message: &Outbound<'_>,
) -> Result<String, SendError> {
    match message.channel {
        Channel::Email => {
            let config = channels.config.email.as_ref().ok_or(SendError::NotConfigured("email"))?;
            let domain = &config.inbound_domain;
            let reply_to = match message.reply_thread {
                Some(thread) => {
                    let key = instance_secrets::get(db, keyring, REPLY_KEY_SECRET)
                        .await
                        .map_err(|error| SendError::Temporary(format!("{error:#}")))?;
                    format!("{}@{domain}", consign_channels::reply_local_part(&key, &thread.to_string()))
                }
                None => config.from.clone(),
            };
            let (message_id, in_reply_to) = match &message.source {
                Source::Reply { message_id, previous_email, .. } => (
                    reply_message_id(*message_id, domain),
                    previous_email.map(|previous| match previous {
                        PreviousEmail::Inbound(id) => id.clone(),
                        PreviousEmail::Outbound(id) => reply_message_id(*id, domain),
                    }),
                ),
                Source::Notification(id) => (format!("<n{}@{domain}>", simple(&id.to_string())), None),
            };
            let email = OutboundEmail {
                from_name: message.sender_name.to_owned(),
                from_address: config.from.clone(),
                to: message.recipient.to_owned(),
                reply_to,
                subject: message.subject.to_owned(),
                body: message.body.to_owned(),
                message_id,
                in_reply_to,
            };
            channels.smtp()?.send(&email).await
        }
        Channel::Sms => {
            let callback = match &message.source {
                Source::Reply { brand_slug, .. } => channels
                    .config
                    .public_base_url
                    .as_ref()
                    .map(|base| crate::links::twilio_status_callback(base, brand_slug)),
                Source::Notification(_) => None,
            };
            twilio::send_sms(channels, message.recipient, message.body, callback.as_deref()).await
        }
        Channel::Whatsapp => whatsapp::send_text(channels, message.recipient, message.body).await,
        Channel::InApp => Err(SendError::Rejected(match message.source {
            Source::Reply { .. } => "in-app messages are not sent out".into(),
            Source::Notification(_) => "in-app notifications are not sent out".into(),
        })),
    }
}

/// The `Message-ID` of a staff reply's email.
fn reply_message_id(message_id: MessageId, domain: &str) -> String {
    format!("<{}@{domain}>", simple(&message_id.to_string()))
}

/// An id without its dashes, as `Message-ID`s carry it.
fn simple(id: &str) -> String {
    id.replace('-', "")
}

/// Why a message to `recipient` must not be sent, or `None` when it may.
/// Counts the message against its recipient's and brand's limits, so it is
/// asked once per message (on its first try).
async fn refusal(
    config: &ChannelsConfig,
    db: &Db,
    brand_id: BrandId,
    channel: Channel,
    recipient: &str,
) -> Result<Option<String>, DbError> {
    if matches!(channel, Channel::Sms | Channel::Whatsapp)
        && !config.allow_brand_sms
        && !consign_db::notifications::messaging_approved(db, brand_id).await?
    {
        return Ok(Some(format!("not sent: {channel} needs an operator's approval for this brand")));
    }
    let now = Timestamp::now();
    let recipient_key = format!("outbound_recipient:{}", recipient.trim().to_lowercase());
    let received = rate_limits::hit(db, &recipient_key, Window::containing(now, 3_600)).await?;
    let per_recipient = config.per_recipient_per_hour();
    if received > i64::from(per_recipient) {
        return Ok(Some(format!("not sent: this recipient already got {per_recipient} messages this hour")));
    }
    let sent = rate_limits::hit(db, &format!("outbound_brand:{brand_id}"), Window::containing(now, 86_400)).await?;
    let per_brand = config.per_brand_per_day();
    if sent > i64::from(per_brand) {
        return Ok(Some(format!("not sent: the brand already sent {per_brand} messages today")));
    }
    Ok(None)
}

/// Whether a failed send is the message's last: a refusal (a 4xx, an
/// unconfigured channel) is, and so is a temporary failure on its
/// `max_delivery_attempts`-th try (`attempts` counts the tries before this
/// one). A final failure is recorded as the message's outcome and ends the
/// job `done`: an undeliverable message is the customer's address or the
/// provider's answer, not a broken job for staff to retry. Any other
/// failure is retried by the queue.
fn is_final(error: &SendError, attempts: i64, config: &ChannelsConfig) -> bool {
    !matches!(error, SendError::Temporary(_)) || attempts + 1 >= config.max_attempts()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_final_at_once_and_a_temporary_failure_on_the_last_try() {
        let config = ChannelsConfig { max_delivery_attempts: 3, ..ChannelsConfig::default() };
        assert!(is_final(&SendError::Rejected("bad number".into()), 0, &config));
        assert!(is_final(&SendError::NotConfigured("email"), 0, &config));
        assert!(!is_final(&SendError::Temporary("timeout".into()), 1, &config));
        assert!(is_final(&SendError::Temporary("timeout".into()), 2, &config));
    }

    #[test]
    fn a_reply_message_id_is_the_message_id_without_dashes() {
        let id: MessageId = "0190c5d2-7a3b-7c00-8000-000000000001".parse().unwrap();
        assert_eq!(reply_message_id(id, "in.example"), "<0190c5d27a3b7c008000000000000001@in.example>");
    }
}
