//! `Idempotency-Key` records (SPEC §3), kept per tenant for 24 hours.
//!
//! The primary key (tenant, key) makes the first request the only one that
//! can claim a key, on one instance or many: the claim is an
//! `INSERT … ON CONFLICT DO NOTHING`. A claim that its holder never finished
//! (the process died) can be taken over once its lease runs out.

use consign_domain::Timestamp;

use crate::{Db, DbResult, db_write};

/// How long a key is remembered.
pub const RETENTION_SECONDS: i64 = 24 * 60 * 60;

/// A stored response to replay.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct StoredResponse {
    /// HTTP status.
    pub response_status: i64,
    /// Its content type.
    pub response_content_type: Option<String>,
    /// Its body.
    pub response_body: Vec<u8>,
}

/// What happened when a request tried to claim a key.
#[derive(Debug)]
pub enum Claim {
    /// This request holds the key now and must finish or release it.
    Claimed,
    /// Another request with the same key and body finished: replay this.
    Replay(StoredResponse),
    /// The key was used with another request.
    Mismatch,
    /// Another request with the key is still running.
    InFlight,
}

/// Tries to claim `key` for a request whose fingerprint is `request_hash`.
pub async fn claim(db: &Db, tenant: &str, key: &str, request_hash: &str, lease_seconds: i64) -> DbResult<Claim> {
    #[derive(sqlx::FromRow)]
    struct Row {
        request_hash: String,
        state: String,
        response_status: Option<i64>,
        response_content_type: Option<String>,
        response_body: Option<Vec<u8>>,
        locked_until: Timestamp,
        expires_at: Timestamp,
    }
    let now = Timestamp::now();
    let lease_until = now.plus_seconds(lease_seconds);
    let expires_at = now.plus_seconds(RETENTION_SECONDS);
    Ok(db_write!(db, |tx| {
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (scope_key, idempotency_key, request_hash, state, locked_until, expires_at, created_at)
             VALUES ($1, $2, $3, 'in_flight', $4, $5, $6)
             ON CONFLICT (scope_key, idempotency_key) DO NOTHING",
        )
        .bind(tenant.to_owned())
        .bind(key.to_owned())
        .bind(request_hash.to_owned())
        .bind(lease_until)
        .bind(expires_at)
        .bind(now)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        if inserted == 1 {
            Claim::Claimed
        } else {
            let row: Row = sqlx::query_as(
                "SELECT request_hash, state, response_status, response_content_type, response_body, locked_until, expires_at
                   FROM idempotency_keys WHERE scope_key = $1 AND idempotency_key = $2",
            )
            .bind(tenant.to_owned())
            .bind(key.to_owned())
            .fetch_one(&mut **tx)
            .await?;
            let abandoned = row.state == "in_flight" && row.locked_until <= now;
            if row.expires_at <= now || abandoned {
                // Forgotten (past 24 hours) or abandoned by a holder that
                // died: this request takes the key over.
                sqlx::query(
                    "UPDATE idempotency_keys SET request_hash = $1, state = 'in_flight', response_status = NULL,
                            response_content_type = NULL, response_body = NULL, locked_until = $2, expires_at = $3, created_at = $4
                      WHERE scope_key = $5 AND idempotency_key = $6",
                )
                .bind(request_hash.to_owned())
                .bind(lease_until)
                .bind(expires_at)
                .bind(now)
                .bind(tenant.to_owned())
                .bind(key.to_owned())
                .execute(&mut **tx)
                .await?;
                Claim::Claimed
            } else if row.request_hash != request_hash {
                Claim::Mismatch
            } else if row.state == "in_flight" {
                Claim::InFlight
            } else {
                Claim::Replay(StoredResponse {
                    response_status: row.response_status.unwrap_or(200),
                    response_content_type: row.response_content_type,
                    response_body: row.response_body.unwrap_or_default(),
                })
            }
        }
    }))
}

/// Stores the response of a claimed key for replay.
pub async fn complete(db: &Db, tenant: &str, key: &str, response: &StoredResponse) -> DbResult<()> {
    db_write!(db, |tx| {
        sqlx::query(
            "UPDATE idempotency_keys SET state = 'done', response_status = $1, response_content_type = $2, response_body = $3
              WHERE scope_key = $4 AND idempotency_key = $5",
        )
        .bind(response.response_status)
        .bind(response.response_content_type.clone())
        .bind(response.response_body.clone())
        .bind(tenant.to_owned())
        .bind(key.to_owned())
        .execute(&mut **tx)
        .await?;
    });
    Ok(())
}

/// Gives a claimed key up (the request failed on our side), so a retry can
/// run it again.
pub async fn release(db: &Db, tenant: &str, key: &str) -> DbResult<()> {
    db_write!(db, |tx| {
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE scope_key = $1 AND idempotency_key = $2 AND state = 'in_flight'",
        )
        .bind(tenant.to_owned())
        .bind(key.to_owned())
        .execute(&mut **tx)
        .await?;
    });
    Ok(())
}

/// Deletes records past their 24 hours. Returns how many.
pub async fn purge_expired(db: &Db) -> DbResult<u64> {
    Ok(db_write!(db, |tx| {
        sqlx::query("DELETE FROM idempotency_keys WHERE expires_at <= $1")
            .bind(Timestamp::now().as_micros())
            .execute(&mut **tx)
            .await?
            .rows_affected()
    }))
}
