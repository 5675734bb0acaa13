//! `Idempotency-Key` records (docs/api.md), kept per caller for 24 hours.
//!
//! The primary key (caller, key) makes the first request the only one that
//! can claim a key, on one instance or many: the claim is an
//! `INSERT … ON CONFLICT DO NOTHING`. A claim stays `in_flight` until its
//! request finishes: a claim whose holder died is never taken over, because
//! its work may have committed; it answers "in progress" until the record
//! expires. A request that failed on our side `release`s its claim, and
//! the next request with the same body runs again, keeping the time of the
//! first claim (checkout derives its order id from it, so a re-run cannot
//! place a second order).

use consign_domain::Timestamp;

use crate::{Db, DbResult, Statement, Tx};

/// How long a key is remembered.
pub const RETENTION_SECONDS: i64 = 24 * 60 * 60;

/// A stored response to replay.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct StoredResponse {
    /// HTTP status.
    pub response_status: i64,
    /// Its content type.
    pub response_content_type: Option<String>,
    /// Its body: the ciphertext when `response_key_id` is set.
    pub response_body: Vec<u8>,
    /// The master key that sealed the body, if it is sealed.
    pub response_key_id: Option<String>,
    /// The seal's nonce (hex), if it is sealed.
    pub response_nonce: Option<String>,
}

/// What happened when a request tried to claim a key.
#[derive(Debug)]
pub enum Claim {
    /// This request holds the key now and must finish or release it.
    Claimed {
        /// When the key was first claimed: the same for every run of one
        /// request (a run after a release keeps it).
        first_claimed_at: Timestamp,
    },
    /// Another request with the same key and body finished: replay this.
    Replay(StoredResponse),
    /// The key was used with another request.
    Mismatch,
    /// Another request with the key is still running, or its holder died.
    InFlight,
}

/// A new key's claim: the first request to insert it holds it.
const CLAIM: &str = "INSERT INTO idempotency_keys (scope_key, idempotency_key, request_hash, state, locked_until, expires_at, created_at)
     VALUES ($1, $2, $3, 'in_flight', $4, $5, $6)
     ON CONFLICT (scope_key, idempotency_key) DO NOTHING";

/// Tries to claim `key` for a request whose fingerprint is `request_hash`.
pub async fn claim(db: &Db, caller: &str, key: &str, request_hash: &str, lease_seconds: i64) -> DbResult<Claim> {
    #[derive(sqlx::FromRow)]
    struct Row {
        request_hash: String,
        state: String,
        response_status: Option<i64>,
        response_content_type: Option<String>,
        response_body: Option<Vec<u8>>,
        response_key_id: Option<String>,
        response_nonce: Option<String>,
        expires_at: Timestamp,
        created_at: Timestamp,
    }
    let now = Timestamp::now();
    let lease_until = now.plus_seconds(lease_seconds);
    let expires_at = now.plus_seconds(RETENTION_SECONDS);
    // The common case, a new key, is one statement and no transaction.
    let inserted = db
        .write_one(CLAIM)
        .bind(caller.to_owned())
        .bind(key.to_owned())
        .bind(request_hash.to_owned())
        .bind(lease_until)
        .bind(expires_at)
        .bind(now)
        .execute()
        .await?;
    if inserted == 1 {
        return Ok(Claim::Claimed { first_claimed_at: now });
    }
    let mut tx = db.begin().await?;
    let row: Row = tx
        .query(
            "SELECT request_hash, state, response_status, response_content_type, response_body, response_key_id,
                    response_nonce, expires_at, created_at
               FROM idempotency_keys WHERE scope_key = $1 AND idempotency_key = $2",
        )
        .bind(caller.to_owned())
        .bind(key.to_owned())
        .fetch_one()
        .await?;
    let claim = if row.expires_at <= now {
        // Forgotten (past 24 hours): this request takes the key over as
        // new, unless another request just did.
        let taken = tx
            .query(
                "UPDATE idempotency_keys SET request_hash = $1, state = 'in_flight', response_status = NULL,
                        response_content_type = NULL, response_body = NULL, response_key_id = NULL,
                        response_nonce = NULL, locked_until = $2, expires_at = $3, created_at = $4
                  WHERE scope_key = $5 AND idempotency_key = $6 AND expires_at <= $4",
            )
            .bind(request_hash.to_owned())
            .bind(lease_until)
            .bind(expires_at)
            .bind(now)
            .bind(caller.to_owned())
            .bind(key.to_owned())
            .execute()
            .await?;
        // Another request took it over first: it is in flight now.
        if taken == 1 { Claim::Claimed { first_claimed_at: now } } else { Claim::InFlight }
    } else if row.request_hash != request_hash {
        Claim::Mismatch
    } else if row.state == "released" {
        // The same request failed on our side before: run it again,
        // as the same first claim.
        let taken = tx
            .query(
                "UPDATE idempotency_keys SET state = 'in_flight', locked_until = $1
                  WHERE scope_key = $2 AND idempotency_key = $3 AND state = 'released'",
            )
            .bind(lease_until)
            .bind(caller.to_owned())
            .bind(key.to_owned())
            .execute()
            .await?;
        if taken == 1 { Claim::Claimed { first_claimed_at: row.created_at } } else { Claim::InFlight }
    } else if row.state == "in_flight" {
        Claim::InFlight
    } else {
        Claim::Replay(StoredResponse {
            response_status: row.response_status.unwrap_or(200),
            response_content_type: row.response_content_type,
            response_body: row.response_body.unwrap_or_default(),
            response_key_id: row.response_key_id,
            response_nonce: row.response_nonce,
        })
    };
    tx.commit().await?;
    Ok(claim)
}

/// Whether no request has used `key` yet (a read, on the reader pool). A
/// route that claims its key in its own transaction ([`claim_in`]) asks
/// this first; a key already used goes through [`claim`].
pub async fn is_unused(db: &Db, caller: &str, key: &str) -> DbResult<bool> {
    let found: Option<i64> = db
        .read("SELECT created_at FROM idempotency_keys WHERE scope_key = $1 AND idempotency_key = $2")
        .bind(caller.to_owned())
        .bind(key.to_owned())
        .scalar_optional()
        .await?;
    Ok(found.is_none())
}

/// Claims an unused key inside the transaction of the change it guards,
/// so the claim, the change and (with [`complete_in`]) the stored answer
/// commit together. Answers false when another request claimed it first.
pub async fn claim_in(
    tx: &mut Tx,
    caller: &str,
    key: &str,
    request_hash: &str,
    lease_seconds: i64,
    claimed_at: Timestamp,
) -> DbResult<bool> {
    let inserted = tx
        .query(CLAIM)
        .bind(caller.to_owned())
        .bind(key.to_owned())
        .bind(request_hash.to_owned())
        .bind(claimed_at.plus_seconds(lease_seconds))
        .bind(claimed_at.plus_seconds(RETENTION_SECONDS))
        .bind(claimed_at)
        .execute()
        .await?;
    Ok(inserted == 1)
}

/// Stores the answer to a key for replay. The key is in flight (claimed by
/// this request), or has no row yet when its request was refused before it
/// claimed (a 422 is an answer too). A key another request finished, or
/// holds for another body, is left as it is.
const COMPLETE: &str = "INSERT INTO idempotency_keys (scope_key, idempotency_key, request_hash, state, response_status,
        response_content_type, response_body, response_key_id, response_nonce, locked_until, expires_at, created_at)
     VALUES ($1, $2, $3, 'done', $4, $5, $6, $7, $8, $9, $10, $9)
     ON CONFLICT (scope_key, idempotency_key) DO UPDATE SET state = 'done',
        response_status = excluded.response_status, response_content_type = excluded.response_content_type,
        response_body = excluded.response_body, response_key_id = excluded.response_key_id,
        response_nonce = excluded.response_nonce
     WHERE idempotency_keys.state = 'in_flight' AND idempotency_keys.request_hash = excluded.request_hash";

/// Stores the response of a key for replay (see [`COMPLETE`]).
pub async fn complete(db: &Db, caller: &str, key: &str, request_hash: &str, response: &StoredResponse) -> DbResult<()> {
    bind_completion(db.write_one(COMPLETE), caller, key, request_hash, response).execute().await?;
    Ok(())
}

/// [`complete`] inside the transaction of the change it answers.
pub async fn complete_in(
    tx: &mut Tx,
    caller: &str,
    key: &str,
    request_hash: &str,
    response: &StoredResponse,
) -> DbResult<()> {
    bind_completion(tx.query(COMPLETE), caller, key, request_hash, response).execute().await?;
    Ok(())
}

fn bind_completion<'c>(
    statement: Statement<'c>,
    caller: &str,
    key: &str,
    request_hash: &str,
    response: &StoredResponse,
) -> Statement<'c> {
    let now = Timestamp::now();
    statement
        .bind(caller.to_owned())
        .bind(key.to_owned())
        .bind(request_hash.to_owned())
        .bind(response.response_status)
        .bind(response.response_content_type.clone())
        .bind(response.response_body.clone())
        .bind(response.response_key_id.clone())
        .bind(response.response_nonce.clone())
        .bind(now)
        .bind(now.plus_seconds(RETENTION_SECONDS))
}

/// Gives a claimed key up (the request failed on our side), so a retry with
/// the same body can run it again.
pub async fn release(db: &Db, caller: &str, key: &str) -> DbResult<()> {
    let mut tx = db.begin().await?;
    tx.query(
        "UPDATE idempotency_keys SET state = 'released'
          WHERE scope_key = $1 AND idempotency_key = $2 AND state = 'in_flight'",
    )
    .bind(caller.to_owned())
    .bind(key.to_owned())
    .execute()
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes records past their 24 hours. Returns how many.
pub async fn purge_expired(db: &Db) -> DbResult<u64> {
    let mut tx = db.begin().await?;
    let deleted = tx
        .query("DELETE FROM idempotency_keys WHERE expires_at <= $1")
        .bind(Timestamp::now().as_micros())
        .execute()
        .await?;
    tx.commit().await?;
    Ok(deleted)
}
