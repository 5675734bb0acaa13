//! Installation-wide secrets kept in the database, so that every instance
//! sharing it agrees on them: the JWT signing key, the order-token key,
//! the reply-address key. They are stored sealed under the master keyring
//! (the callers seal and open: this crate knows no keyring), and a secret
//! stored in the clear by an older version is sealed the first time it is
//! read.

use consign_domain::Timestamp;

use crate::{Db, DbError, DbResult};

/// A sealed secret as stored: which master key, the nonce and the
/// ciphertext (hex, as the keyring gives them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedSecret {
    /// The master key's id.
    pub key_id: String,
    /// The nonce, hex.
    pub nonce: String,
    /// Ciphertext and tag, hex.
    pub ciphertext: String,
}

/// Returns the secret called `name` in the clear. When there is none yet,
/// `candidate` is stored, sealed by `seal`; concurrent first starts agree
/// on whichever insert won. `open` gives back what `seal` sealed.
pub async fn get_or_create_sealed(
    db: &Db,
    name: &str,
    candidate: &str,
    seal: impl Fn(&str) -> SealedSecret,
    open: impl Fn(&SealedSecret) -> anyhow::Result<String>,
) -> DbResult<String> {
    #[derive(sqlx::FromRow)]
    struct Row {
        value: String,
        key_id: Option<String>,
        nonce: Option<String>,
    }
    let sealed_candidate = seal(candidate);
    let mut tx = db.begin().await?;
    tx.query(
        "INSERT INTO instance_secrets (name, value, key_id, nonce, created_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name.to_owned())
    .bind(sealed_candidate.ciphertext.clone())
    .bind(sealed_candidate.key_id.clone())
    .bind(sealed_candidate.nonce.clone())
    .bind(Timestamp::now().as_micros())
    .execute()
    .await?;
    let row: Row = tx
        .query("SELECT value, key_id, nonce FROM instance_secrets WHERE name = $1")
        .bind(name.to_owned())
        .fetch_one()
        .await?;
    if row.key_id.is_none() {
        // Stored in the clear before secrets were sealed: seal it now,
        // keeping its value (tokens made with it stay valid).
        let sealed = seal(&row.value);
        tx.query("UPDATE instance_secrets SET value = $1, key_id = $2, nonce = $3 WHERE name = $4 AND key_id IS NULL")
            .bind(sealed.ciphertext)
            .bind(sealed.key_id)
            .bind(sealed.nonce)
            .bind(name.to_owned())
            .execute()
            .await?;
    }
    tx.commit().await?;
    match (row.key_id, row.nonce) {
        (Some(key_id), Some(nonce)) => open(&SealedSecret { key_id, nonce, ciphertext: row.value })
            .map_err(|error| DbError::Other(error.context(format!("cannot open the instance secret {name}")))),
        _ => Ok(row.value),
    }
}

/// The instance secrets sealed under a key other than `newest_key_id`, by
/// name (for `consign admin rotate-keys`).
pub async fn sealed_under_older_keys(db: &Db, newest_key_id: &str) -> DbResult<Vec<(String, SealedSecret)>> {
    let rows: Vec<(String, String, String, String)> = db
        .read(
            "SELECT name, key_id, nonce, value FROM instance_secrets
              WHERE key_id IS NOT NULL AND nonce IS NOT NULL AND key_id <> $1 ORDER BY name",
        )
        .bind(newest_key_id.to_owned())
        .fetch_all()
        .await?;
    Ok(rows
        .into_iter()
        .map(|(name, key_id, nonce, ciphertext)| (name, SealedSecret { key_id, nonce, ciphertext }))
        .collect())
}

/// Replaces the sealed value of `name` with `fresh`, unless it changed
/// since `old` was read. Answers whether it was replaced.
pub async fn reseal(db: &Db, name: &str, old: &SealedSecret, fresh: &SealedSecret) -> DbResult<bool> {
    let mut tx = db.begin().await?;
    let replaced = tx
        .query(
            "UPDATE instance_secrets SET value = $1, key_id = $2, nonce = $3
              WHERE name = $4 AND key_id = $5 AND nonce = $6",
        )
        .bind(fresh.ciphertext.clone())
        .bind(fresh.key_id.clone())
        .bind(fresh.nonce.clone())
        .bind(name.to_owned())
        .bind(old.key_id.clone())
        .bind(old.nonce.clone())
        .execute()
        .await?
        == 1;
    tx.commit().await?;
    Ok(replaced)
}
