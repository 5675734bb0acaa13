//! The account emails: [`EmailInvitation`] sends an invitee the link to
//! accept, [`EmailPasswordReset`] sends a user the link to choose a new
//! password. Both links are made here, when the email goes out, from the
//! instance's account key (`consign_app::account_tokens`), so neither the
//! job payload nor any table holds one. Nothing is sent, and the job ends,
//! when this installation sends no email or has no public address to link
//! to. Each email's Message-ID names what it is about, so a retried job
//! that sent it already is recognisable as the same email.

use std::sync::Arc;

use anyhow::Context as _;
use consign_app::{account_tokens, instance_secrets, links};
use consign_channels::Channels;
use consign_channels::email::OutboundEmail;
use consign_db::jobs::kinds::{EmailInvitation, EmailPasswordReset};
use consign_db::{Db, invitations, users};
use consign_payments::Keyring;

use crate::JobResult;

/// What an email says and where it goes.
struct AccountEmail {
    to: String,
    subject: String,
    body: String,
    /// The Message-ID's local part.
    about: String,
}

/// The instance's public address and the account key, or `None` when no
/// email can be sent from here.
async fn sending(channels: &Channels, db: &Db, keyring: &Keyring) -> anyhow::Result<Option<(String, String)>> {
    let (Some(_), Some(base)) = (&channels.config.email, &channels.config.public_base_url) else { return Ok(None) };
    let key = instance_secrets::get(db, keyring, account_tokens::ACCOUNT_TOKEN_KEY_SECRET).await?;
    Ok(Some((base.clone(), key)))
}

async fn send(channels: &Channels, email: AccountEmail) -> JobResult {
    let config = channels.config.email.as_ref().context("email is not configured")?;
    let smtp = channels.smtp().map_err(|error| anyhow::anyhow!("{error}"))?;
    let message = OutboundEmail {
        from_name: "Consign".to_owned(),
        from_address: config.from.clone(),
        to: email.to,
        reply_to: config.from.clone(),
        subject: email.subject,
        body: email.body,
        message_id: format!("<{}@{}>", email.about, config.inbound_domain),
        in_reply_to: None,
    };
    smtp.send(&message).await.map_err(|error| anyhow::anyhow!("cannot send the account email: {error}"))?;
    Ok(())
}

/// Runs one [`EmailInvitation`] job: a pending invitation's link to its
/// invitee.
pub async fn email_invitation(
    channels: Arc<Channels>,
    keyring: Keyring,
    db: Db,
    EmailInvitation { invitation_id }: EmailInvitation,
) -> JobResult {
    let Some((base, key)) = sending(&channels, &db, &keyring).await? else { return Ok(()) };
    let Some(notice) = invitations::pending_notice(&db, invitation_id).await.context("cannot load the invitation")?
    else {
        return Ok(());
    };
    let link = links::invitation(&base, &account_tokens::invitation_token(&key, &invitation_id.to_string()));
    let place = match &notice.brand_name {
        Some(brand) => format!("{brand} (of {})", notice.organization_name),
        None => notice.organization_name.clone(),
    };
    let inviter = notice.invited_by_name.as_deref().unwrap_or("Someone");
    let role = notice.role.replace('_', " ");
    let until = notice.expires_at.to_datetime().format("%Y-%m-%d %H:%M UTC");
    let body = format!(
        "{inviter} invited you to join {place} on Consign as {role}.\n\n\
         Accept the invitation here:\n{link}\n\n\
         The link works until {until}. If you did not expect this invitation, ignore this email.\n"
    );
    send(
        &channels,
        AccountEmail {
            to: notice.email,
            subject: format!("You are invited to {place} on Consign"),
            body,
            about: format!("invitation.{invitation_id}"),
        },
    )
    .await?;
    tracing::info!(%invitation_id, "invitation emailed");
    Ok(())
}

/// Runs one [`EmailPasswordReset`] job: a link bound to the user's current
/// password, working until the job's expiry.
pub async fn email_password_reset(
    channels: Arc<Channels>,
    keyring: Keyring,
    db: Db,
    EmailPasswordReset { user_id, expires_at }: EmailPasswordReset,
) -> JobResult {
    let Some((base, key)) = sending(&channels, &db, &keyring).await? else { return Ok(()) };
    let Some(user) = users::reset_subject(&db, user_id).await.context("cannot load the user")? else { return Ok(()) };
    let token = account_tokens::password_reset_token(&key, &user_id.to_string(), expires_at, &user.password_hash);
    let link = links::password_reset(&base, &token);
    let minutes = account_tokens::PASSWORD_RESET_TTL_SECONDS / 60;
    let body = format!(
        "Hello {},\n\nSomeone asked to reset the password of your Consign account. Choose a new one here:\n{link}\n\n\
         The link works once, for {minutes} minutes. If you did not ask, ignore this email: your password stays as it is.\n",
        user.name
    );
    send(
        &channels,
        AccountEmail {
            to: user.email,
            subject: "Reset your Consign password".to_owned(),
            body,
            about: format!("password-reset.{user_id}.{expires_at}"),
        },
    )
    .await?;
    tracing::info!(%user_id, "password reset emailed");
    Ok(())
}
