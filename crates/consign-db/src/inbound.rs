//! What arrives from the messaging providers: inbound customer messages
//! routed to their order's thread ([`messages`]) or to the brand's inbox
//! ([`inbox`]), and the webhook tokens already seen (replay protection).
//! What goes out to them is `crate::deliveries`.

use consign_domain::Timestamp;

use crate::{Db, DbResult};

pub mod inbox;
pub mod messages;

/// Records a webhook token (such as Mailgun's signed `token`). Answers
/// `false` when the token was seen before: a replayed request.
pub async fn remember_webhook_token(db: &Db, provider: &str, token: &str) -> DbResult<bool> {
    let mut tx = db.begin().await?;
    let inserted = tx
        .query(
            "INSERT INTO webhook_replays (provider, token, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (provider, token) DO NOTHING",
        )
        .bind(provider.to_owned())
        .bind(token.to_owned())
        .bind(Timestamp::now())
        .execute()
        .await?;
    tx.commit().await?;
    Ok(inserted == 1)
}

/// Forgets webhook tokens recorded before `before` (older than any
/// signature still accepted).
pub async fn purge_webhook_tokens(db: &Db, before: Timestamp) -> DbResult<u64> {
    let mut tx = db.begin().await?;
    let deleted = tx.query("DELETE FROM webhook_replays WHERE created_at < $1").bind(before).execute().await?;
    tx.commit().await?;
    Ok(deleted)
}

/// The digits of a phone number, so `+1 (555) 0100` matches `15550100`.
pub fn phone_digits(phone: &str) -> String {
    phone.chars().filter(char::is_ascii_digit).collect()
}

/// SQL for the digits of a phone column (both engines have `REPLACE`).
pub(crate) fn phone_digits_sql(column: &str) -> String {
    let mut sql = column.to_owned();
    for ch in ["+", " ", "-", "(", ")", "."] {
        sql = format!("REPLACE({sql}, '{ch}', '')");
    }
    sql
}

/// The brand with this slug, if any (webhook paths name brands by slug).
pub async fn brand_by_slug(db: &Db, slug: &str) -> DbResult<Option<consign_domain::BrandId>> {
    db.read("SELECT id FROM brands WHERE slug = $1").bind(slug.to_owned()).scalar_optional().await
}
