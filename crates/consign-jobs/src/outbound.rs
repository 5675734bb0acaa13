//! What may go out to a customer: the limits every outbound message
//! (customer notifications and staff replies alike) passes before a
//! provider is called, so that the installation's SMTP sender and Twilio
//! account cannot be turned into a spam or SMS-pumping relay.
//!
//! - SMS and WhatsApp go out only for brands an operator approved, unless
//!   the installation allows every brand (`allow_brand_sms`).
//! - One recipient (address or phone) gets at most so many messages per
//!   hour from the whole installation, and one brand sends at most so many
//!   per day. The counters are `consign_db::rate_limits`, shared by every
//!   worker on the database.
//!
//! A refused message is logged `failed` with the reason and never sent.
//!
//! Once sent, a message that failed is retried or given up by one rule,
//! [`is_final`].

use consign_channels::{ChannelsConfig, SendError};
use consign_db::Db;
use consign_db::rate_limits::{self, Window};
use consign_domain::messaging::Channel;
use consign_domain::{BrandId, Timestamp};

/// Why a message to `recipient` must not be sent, or `None` when it may.
/// Counts the message against its recipient's and brand's limits, so call
/// it once per message (on its first try).
pub async fn refusal(
    config: &ChannelsConfig,
    db: &Db,
    brand_id: BrandId,
    channel: Channel,
    recipient: &str,
) -> anyhow::Result<Option<String>> {
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
/// one). A final failure is recorded as the delivery's outcome and ends the
/// job `done`: an undeliverable message is the customer's address or the
/// provider's answer, not a broken job for staff to retry. Any other
/// failure is retried by the queue.
pub fn is_final(error: &SendError, attempts: i64, config: &ChannelsConfig) -> bool {
    !matches!(error, SendError::Temporary(_)) || attempts + 1 >= config.max_attempts()
}
