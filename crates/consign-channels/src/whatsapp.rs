//! The WhatsApp Cloud API: text messages out through the messages
//! endpoint, and the shapes of its webhook (inbound messages and status
//! updates).

use serde::Deserialize;
use serde_json::json;

use crate::{Channels, SendError};

/// Sends a text message to `to` (digits of the phone number, no `+`).
/// Answers the `wamid` Meta gives it.
pub async fn send_text(channels: &Channels, to: &str, body: &str) -> Result<String, SendError> {
    let config = channels.config.whatsapp.as_ref().ok_or(SendError::NotConfigured("WhatsApp"))?;
    let url =
        format!("{}/{}/{}/messages", config.base_url.trim_end_matches('/'), config.api_version, config.phone_number_id);
    let to: String = to.chars().filter(char::is_ascii_digit).collect();
    let response = channels
        .http()
        .post(url)
        .bearer_auth(config.access_token.expose())
        .json(&json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            "type": "text",
            "text": {"preview_url": false, "body": body},
        }))
        .send()
        .await
        .map_err(|error| SendError::Temporary(format!("WhatsApp: {}", error.without_url())))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if !status.is_success() {
        return Err(crate::twilio::classify("WhatsApp", status, &text));
    }
    let value: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    value["messages"][0]["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| SendError::Temporary("WhatsApp answered without a message id".into()))
}

/// A webhook notification (`object: whatsapp_business_account`).
#[derive(Debug, Default, Deserialize)]
pub struct Notification {
    /// One entry per business account.
    #[serde(default)]
    pub entry: Vec<Entry>,
}

/// An account's changes.
#[derive(Debug, Default, Deserialize)]
pub struct Entry {
    /// The changes.
    #[serde(default)]
    pub changes: Vec<Change>,
}

/// One change (`field: messages`).
#[derive(Debug, Default, Deserialize)]
pub struct Change {
    /// The change's content.
    #[serde(default)]
    pub value: ChangeValue,
}

/// Inbound messages and status updates.
#[derive(Debug, Default, Deserialize)]
pub struct ChangeValue {
    /// Messages customers sent.
    #[serde(default)]
    pub messages: Vec<InboundMessage>,
    /// What happened to messages we sent.
    #[serde(default)]
    pub statuses: Vec<StatusUpdate>,
}

/// A message a customer sent.
#[derive(Debug, Deserialize)]
pub struct InboundMessage {
    /// The `wamid`.
    pub id: String,
    /// The sender's phone number, digits only.
    pub from: String,
    /// `text`, `image`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// The text of a `text` message.
    pub text: Option<TextBody>,
}

/// A text message's content.
#[derive(Debug, Deserialize)]
pub struct TextBody {
    /// The text.
    pub body: String,
}

/// A status update of a message we sent.
#[derive(Debug, Deserialize)]
pub struct StatusUpdate {
    /// The `wamid` we got when sending.
    pub id: String,
    /// `sent`, `delivered`, `read` or `failed`.
    pub status: String,
}
