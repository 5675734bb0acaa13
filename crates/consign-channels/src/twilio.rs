//! Twilio's Messages API: SMS out, and the meaning of its status callbacks.

use consign_domain::messaging::DeliveryStatus;

use crate::{Channels, SendError};

/// Sends an SMS to `to` (E.164). `status_callback` is where Twilio reports
/// what became of it. Answers the message SID.
pub async fn send_sms(
    channels: &Channels,
    to: &str,
    body: &str,
    status_callback: Option<&str>,
) -> Result<String, SendError> {
    let config = channels.config.twilio.as_ref().ok_or(SendError::NotConfigured("SMS"))?;
    let url =
        format!("{}/2010-04-01/Accounts/{}/Messages.json", config.base_url.trim_end_matches('/'), config.account_sid);
    let mut form = vec![("To", to), ("From", config.from_number.as_str()), ("Body", body)];
    if let Some(callback) = status_callback {
        form.push(("StatusCallback", callback));
    }
    let response = channels
        .http()
        .post(url)
        .basic_auth(&config.account_sid, Some(config.auth_token.expose()))
        .form(&form)
        .send()
        .await
        .map_err(|error| SendError::Temporary(format!("Twilio: {}", error.without_url())))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if !status.is_success() {
        return Err(classify("Twilio", status, &text));
    }
    let value: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    value["sid"].as_str().map(str::to_owned).ok_or_else(|| SendError::Temporary("Twilio answered without a sid".into()))
}

/// A provider's error answer: 429 and 5xx are worth retrying, other 4xx are
/// final. Keeps a short excerpt of the body (never a credential: we send
/// those, providers do not echo them).
pub(crate) fn classify(provider: &str, status: reqwest::StatusCode, body: &str) -> SendError {
    let excerpt: String = body.chars().take(200).collect();
    let message = format!("{provider} answered {}: {excerpt}", status.as_u16());
    if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        SendError::Temporary(message)
    } else {
        SendError::Rejected(message)
    }
}

/// The delivery status a Twilio `MessageStatus` means, if any (`accepted`,
/// `queued` and `sending` change nothing: the message is already queued).
pub fn delivery_status(message_status: &str) -> Option<DeliveryStatus> {
    match message_status {
        "sent" => Some(DeliveryStatus::Sent),
        "delivered" | "read" => Some(DeliveryStatus::Delivered),
        "undelivered" | "failed" | "canceled" => Some(DeliveryStatus::Failed),
        _ => None,
    }
}
