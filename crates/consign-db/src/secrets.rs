//! Installation-wide secrets kept in the database, so that every instance
//! sharing it agrees on them (the JWT signing key).

use consign_domain::Timestamp;

use crate::{Db, DbResult, db_write};

/// Returns the secret called `name`, storing `candidate` first if there is
/// none yet. Concurrent first starts agree on whichever insert won.
pub async fn get_or_create(db: &Db, name: &str, candidate: &str) -> DbResult<String> {
    Ok(db_write!(db, |tx| {
        sqlx::query(
            "INSERT INTO instance_secrets (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name.to_owned())
        .bind(candidate.to_owned())
        .bind(Timestamp::now().as_micros())
        .execute(&mut **tx)
        .await?;
        sqlx::query_scalar("SELECT value FROM instance_secrets WHERE name = $1")
            .bind(name.to_owned())
            .fetch_one(&mut **tx)
            .await?
    }))
}
