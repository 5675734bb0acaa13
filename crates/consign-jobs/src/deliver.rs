//! `messages.deliver`: sends one staff reply through its channel's provider
//! and records `sent` with the provider's id, or the failure.
//!
//! A temporary failure (network, 5xx, 429) fails the job with
//! [`JobError::Retry`], so the queue retries it with backoff; after
//! `max_delivery_attempts` tries, or at once for a final refusal (a 4xx, an
//! unconfigured channel), the delivery is `failed` and the job ends `done`
//! (see [`crate::outbound::is_final`]). The send and its record are two steps: a
//! worker dying between them sends again on retry (at least once), which is
//! why the email's `Message-ID` is derived from the message id, so the
//! recipient's mail system can recognise the copy. Before its first try a
//! reply passes the outbound limits of [`crate::outbound`]; one refused is
//! `failed` with the reason and never sent.

use std::sync::Arc;

use anyhow::Context as _;
use consign_channels::email::OutboundEmail;
use consign_channels::{Channels, SendError, twilio, whatsapp};
use consign_db::Db;
use consign_db::deliveries::{self, PreviousEmail, SendWork};
use consign_db::jobs::kinds::DeliverMessage;
use consign_domain::MessageId;
use consign_domain::messaging::{Channel, DeliveryStatus};
use consign_payments::Keyring;

use crate::{JobError, JobResult};

/// The name of the instance secret that signs per-thread reply addresses.
pub const REPLY_KEY_SECRET: &str = "reply_address_key";

/// Runs one [`DeliverMessage`] job.
pub async fn deliver(
    channels: Arc<Channels>,
    keyring: Keyring,
    db: Db,
    DeliverMessage { message_id }: DeliverMessage,
) -> JobResult {
    let work = deliveries::work(&db, message_id).await.context("cannot load the delivery")?;
    if work.status != DeliveryStatus::Queued {
        return Ok(());
    }
    if work.attempts == 0
        && let Some(reason) =
            crate::outbound::refusal(&channels.config, &db, work.brand_id, work.channel, &work.recipient).await?
    {
        deliveries::record_failure(&db, message_id, &reason, true).await.context("cannot record the refusal")?;
        tracing::warn!(%message_id, %reason, "message not sent");
        return Ok(());
    }
    match send(&channels, &keyring, &db, &work).await {
        Ok(provider_id) => {
            deliveries::mark_sent(&db, message_id, &provider_id).await.context("cannot record the send")?;
            tracing::info!(%message_id, channel = %work.channel, "message sent");
            Ok(())
        }
        Err(error) => {
            let is_final = crate::outbound::is_final(&error, work.attempts, &channels.config);
            deliveries::record_failure(&db, message_id, &error.to_string(), is_final)
                .await
                .context("cannot record the failure")?;
            if is_final {
                tracing::warn!(%message_id, channel = %work.channel, "delivery failed for good");
                Ok(())
            } else {
                Err(JobError::Retry(anyhow::anyhow!("{error}")))
            }
        }
    }
}

async fn send(channels: &Channels, keyring: &Keyring, db: &Db, work: &SendWork) -> Result<String, SendError> {
    match work.channel {
        Channel::Email => {
            let config = channels.config.email.as_ref().ok_or(SendError::NotConfigured("email"))?;
            let key = secret(db, keyring, REPLY_KEY_SECRET)
                .await
                .map_err(|error| SendError::Temporary(format!("{error:#}")))?;
            let domain = &config.inbound_domain;
            let message_id_header = |id: MessageId| format!("<{}@{domain}>", id.to_string().replace('-', ""));
            let email = OutboundEmail {
                from_name: work.brand_name.clone(),
                from_address: config.from.clone(),
                to: work.recipient.clone(),
                reply_to: format!("{}@{domain}", consign_channels::reply_local_part(&key, &work.thread_id.to_string())),
                subject: format!("Your order #{} from {}", work.order_number, work.brand_name),
                body: work.body.clone(),
                message_id: message_id_header(work.message_id),
                in_reply_to: work.previous_email.as_ref().map(|previous| match previous {
                    PreviousEmail::Inbound(id) => id.clone(),
                    PreviousEmail::Outbound(id) => message_id_header(*id),
                }),
            };
            channels.smtp()?.send(&email).await
        }
        Channel::Sms => {
            let callback = channels
                .config
                .public_base_url
                .as_ref()
                .map(|base| consign_app::links::twilio_status_callback(base, &work.brand_slug));
            twilio::send_sms(channels, &work.recipient, &work.body, callback.as_deref()).await
        }
        Channel::Whatsapp => whatsapp::send_text(channels, &work.recipient, &work.body).await,
        Channel::InApp => Err(SendError::Rejected("in-app messages are not sent out".into())),
    }
}

/// An instance secret (the key of per-thread reply addresses, of order
/// access tokens), shared by every instance, made on first use and stored
/// sealed under the master keyring.
pub async fn secret(db: &Db, keyring: &Keyring, name: &str) -> anyhow::Result<String> {
    let candidate = hex::encode(rand::random::<[u8; 32]>());
    let aad = consign_payments::keyring::instance_secret_aad(name);
    Ok(consign_db::secrets::get_or_create_sealed(
        db,
        name,
        &candidate,
        |plaintext| {
            let sealed = keyring.seal(plaintext.as_bytes(), &aad);
            consign_db::secrets::SealedSecret {
                key_id: sealed.key_id,
                nonce: sealed.nonce,
                ciphertext: sealed.ciphertext,
            }
        },
        |stored| {
            let sealed = consign_payments::Sealed {
                key_id: stored.key_id.clone(),
                nonce: stored.nonce.clone(),
                ciphertext: stored.ciphertext.clone(),
            };
            Ok(String::from_utf8(keyring.open(&sealed, &aad)?)?)
        },
    )
    .await?)
}
