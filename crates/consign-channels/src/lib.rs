//! Consign's messaging channels: the provider clients that send a message
//! out (SMTP email, the WhatsApp Cloud API, Twilio SMS) and the checks of
//! the providers' webhook signatures that let an inbound message in.
//!
//! Shared by `consign-web` (webhooks verify here before anything is parsed
//! or stored) and `consign-jobs` (the `messages.deliver` job sends here).
//!
//! Architecture invariants:
//! - Nothing here touches the database or knows Consign's HTTP routes.
//! - Signatures are computed over the exact bytes or fields the provider
//!   signs and compared in constant time.
//! - Secrets never reach logs or error messages: the config types redact
//!   them in `Debug`, and provider errors carry only status and a short body.

pub mod config;
pub mod email;
pub mod signature;
pub mod twilio;
pub mod whatsapp;

pub use config::{ChannelsConfig, EmailConfig, TwilioConfig, WhatsappConfig};

use std::sync::Arc;

/// Why a send did not go through.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The provider refused the message for good (a bad number, a 4xx):
    /// retrying cannot help.
    #[error("rejected: {0}")]
    Rejected(String),
    /// A network error, a timeout or a 5xx/429: worth retrying later.
    #[error("temporary failure: {0}")]
    Temporary(String),
    /// The channel has no provider configured on this installation.
    #[error("{0} is not configured on this installation")]
    NotConfigured(&'static str),
}

/// The provider clients, built once per process from [`ChannelsConfig`].
#[derive(Clone)]
pub struct Channels {
    /// The settings.
    pub config: Arc<ChannelsConfig>,
    http: reqwest::Client,
    smtp: Option<email::SmtpSender>,
}

impl Channels {
    /// Builds the clients. Fails on a malformed SMTP URL.
    pub fn new(config: ChannelsConfig) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(20))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let smtp = match &config.email {
            Some(email) => Some(email::SmtpSender::new(&email.smtp_url)?),
            None => None,
        };
        Ok(Self { config: Arc::new(config), http, smtp })
    }

    /// Clients that send nothing: every channel answers `NotConfigured`.
    pub fn unconfigured() -> Self {
        Self::new(ChannelsConfig::default()).expect("an empty configuration builds")
    }

    /// The SMTP sender, if email is configured.
    pub fn smtp(&self) -> Result<&email::SmtpSender, SendError> {
        self.smtp.as_ref().ok_or(SendError::NotConfigured("email"))
    }

    /// The HTTP client the provider APIs are called with.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }
}

/// The local part of a thread's reply address: `reply+<thread>.<mac>`,
/// where `<thread>` is the thread id's 32 hex digits and `<mac>` the first
/// 10 bytes of HMAC-SHA256(key, thread id) in hex. 59 characters, under the
/// 64 an address's local part may have; unguessable without the key.
pub fn reply_local_part(key: &str, thread_id: &str) -> String {
    let simple: String = thread_id.chars().filter(char::is_ascii_hexdigit).collect::<String>().to_lowercase();
    let mac = signature::hmac_sha256(key.as_bytes(), simple.as_bytes());
    format!("reply+{simple}.{}", hex::encode(&mac[..10]))
}

/// The thread id (as 32 hex digits) a reply address names, if its mac is
/// right. Any case, any domain.
pub fn thread_of_reply_address(key: &str, address: &str) -> Option<String> {
    let local = address.trim().rsplit_once('@').map_or(address, |(local, _)| local).to_lowercase();
    let rest = local.strip_prefix("reply+")?;
    let (thread, _) = rest.split_once('.')?;
    let expected = reply_local_part(key, thread);
    use subtle::ConstantTimeEq as _;
    (expected.len() == local.len() && bool::from(expected.as_bytes().ct_eq(local.as_bytes())))
        .then(|| thread.to_owned())
}
