//! Email out through SMTP (lettre), with the headers that keep a
//! conversation together: a per-thread `Reply-To`, our own `Message-ID`,
//! and `In-Reply-To`/`References` naming the previous message.

use lettre::message::{Mailbox, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::SendError;

/// An email ready to send.
#[derive(Clone, Debug)]
pub struct OutboundEmail {
    /// Display name of the sender (the brand's name).
    pub from_name: String,
    /// The From address.
    pub from_address: String,
    /// The customer's address.
    pub to: String,
    /// The thread's reply address.
    pub reply_to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
    /// Our `Message-ID`, with angle brackets.
    pub message_id: String,
    /// The message this one answers, with angle brackets.
    pub in_reply_to: Option<String>,
}

/// A pooled SMTP connection to the configured relay.
#[derive(Clone)]
pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl SmtpSender {
    /// A sender for `smtp://host:port` (plain, or STARTTLS with
    /// `?tls=required`) or `smtps://user:pass@host` (TLS).
    pub fn new(url: &str) -> anyhow::Result<Self> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|_| anyhow::anyhow!("CONSIGN_SMTP_URL is not a valid smtp:// or smtps:// URL"))?
            .timeout(Some(std::time::Duration::from_secs(20)))
            .build();
        Ok(Self { transport })
    }

    /// Sends the email; answers its `Message-ID`.
    pub async fn send(&self, email: &OutboundEmail) -> Result<String, SendError> {
        let mailbox = |name: Option<String>, address: &str, what: &str| -> Result<Mailbox, SendError> {
            let address = address.parse().map_err(|_| SendError::Rejected(format!("invalid {what} address")))?;
            Ok(Mailbox::new(name, address))
        };
        let mut builder = lettre::Message::builder()
            .from(mailbox(Some(email.from_name.clone()), &email.from_address, "from")?)
            .to(mailbox(None, &email.to, "recipient")?)
            .reply_to(mailbox(None, &email.reply_to, "reply-to")?)
            .subject(email.subject.clone())
            .message_id(Some(email.message_id.clone()));
        if let Some(previous) = &email.in_reply_to {
            builder = builder.in_reply_to(previous.clone()).references(previous.clone());
        }
        let message = builder
            .header(ContentType::TEXT_PLAIN)
            .body(email.body.clone())
            .map_err(|error| SendError::Rejected(format!("cannot build the email: {error}")))?;
        match self.transport.send(message).await {
            Ok(_) => Ok(email.message_id.clone()),
            // A permanent (5xx) SMTP answer will not change on retry.
            Err(error) if error.is_permanent() => {
                Err(SendError::Rejected(format!("SMTP refused the message: {error}")))
            }
            Err(error) => Err(SendError::Temporary(format!("SMTP: {error}"))),
        }
    }
}
