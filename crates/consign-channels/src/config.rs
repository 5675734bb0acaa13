//! Provider settings. Every secret is redacted in `Debug`.

use std::fmt;

/// Every channel's settings; a channel left `None` is off.
#[derive(Clone, Debug, Default)]
pub struct ChannelsConfig {
    /// SMTP out, Mailgun in.
    pub email: Option<EmailConfig>,
    /// The WhatsApp Cloud API.
    pub whatsapp: Option<WhatsappConfig>,
    /// Twilio SMS.
    pub twilio: Option<TwilioConfig>,
    /// The URL the providers reach this installation at, such as
    /// `https://consign.example.com`: Twilio signs the full URL it calls,
    /// and status callbacks are addressed from it.
    pub public_base_url: Option<String>,
    /// A failed send is retried until this many attempts, then `failed`.
    pub max_delivery_attempts: i64,
    /// Whether every brand may turn on SMS and WhatsApp; when not, only
    /// brands an operator approved may.
    pub allow_brand_sms: bool,
    /// Messages (notifications and staff replies) one customer address or
    /// phone gets per hour, from all brands; 0: the default.
    pub outbound_per_recipient_per_hour: u32,
    /// Messages one brand sends to customers per day; 0: the default.
    pub outbound_per_brand_per_day: u32,
}

impl ChannelsConfig {
    /// The default number of attempts per outbound message.
    pub const DEFAULT_MAX_DELIVERY_ATTEMPTS: i64 = 6;

    /// The default of `outbound_per_recipient_per_hour`.
    pub const DEFAULT_OUTBOUND_PER_RECIPIENT_PER_HOUR: u32 = 10;
    /// The default of `outbound_per_brand_per_day`.
    pub const DEFAULT_OUTBOUND_PER_BRAND_PER_DAY: u32 = 2_000;

    /// Messages one recipient may get per hour.
    pub fn per_recipient_per_hour(&self) -> u32 {
        match self.outbound_per_recipient_per_hour {
            0 => Self::DEFAULT_OUTBOUND_PER_RECIPIENT_PER_HOUR,
            n => n,
        }
    }

    /// Messages one brand may send to customers per day.
    pub fn per_brand_per_day(&self) -> u32 {
        match self.outbound_per_brand_per_day {
            0 => Self::DEFAULT_OUTBOUND_PER_BRAND_PER_DAY,
            n => n,
        }
    }

    /// The attempts limit, never below one.
    pub fn max_attempts(&self) -> i64 {
        if self.max_delivery_attempts <= 0 { Self::DEFAULT_MAX_DELIVERY_ATTEMPTS } else { self.max_delivery_attempts }
    }
}

/// A secret string: shown as `***` in `Debug`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Secret {
    /// The value, for signing and authenticating only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Email settings.
#[derive(Clone)]
pub struct EmailConfig {
    /// `smtp://host:port`, `smtps://user:pass@host`, or with `?tls=required`.
    pub smtp_url: String,
    /// The From address, such as `support@consign.example`. The brand's
    /// name is shown as its display name.
    pub from: String,
    /// The domain of per-thread reply addresses (`reply+<token>@domain`) and
    /// of brands' inbound addresses (`<brand slug>@domain`), routed to the
    /// Mailgun webhook.
    pub inbound_domain: String,
    /// Mailgun's webhook signing key.
    pub mailgun_signing_key: Option<Secret>,
}

impl fmt::Debug for EmailConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The SMTP URL may carry a password.
        f.debug_struct("EmailConfig")
            .field("smtp_url", &redact_url(&self.smtp_url))
            .field("from", &self.from)
            .field("inbound_domain", &self.inbound_domain)
            .field("mailgun_signing_key", &self.mailgun_signing_key)
            .finish()
    }
}

fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://***@{}", &url[..scheme], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

/// WhatsApp Cloud API settings.
#[derive(Clone, Debug)]
pub struct WhatsappConfig {
    /// Such as `https://graph.facebook.com`.
    pub base_url: String,
    /// Such as `v21.0`.
    pub api_version: String,
    /// The sending number's id.
    pub phone_number_id: String,
    /// The bearer token of the messages endpoint.
    pub access_token: Secret,
    /// The app secret that signs webhooks (`X-Hub-Signature-256`).
    pub app_secret: Secret,
    /// The token the verification handshake must present.
    pub verify_token: Secret,
}

/// Twilio settings.
#[derive(Clone, Debug)]
pub struct TwilioConfig {
    /// Such as `https://api.twilio.com`.
    pub base_url: String,
    /// The account SID (basic-auth user).
    pub account_sid: String,
    /// The auth token (basic-auth password, and the webhook signing key).
    pub auth_token: Secret,
    /// The sending number, E.164.
    pub from_number: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_smtp_passwords_never_show_in_debug() {
        let email = EmailConfig {
            smtp_url: "smtps://user:hunter2@mail.example:465".into(),
            from: "support@example.com".into(),
            inbound_domain: "in.example.com".into(),
            mailgun_signing_key: Some(Secret("key-abc".into())),
        };
        let shown = format!("{email:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("key-abc"), "{shown}");
        assert!(shown.contains("mail.example:465"));
    }
}
