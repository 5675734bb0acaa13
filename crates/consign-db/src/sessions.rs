//! Login sessions: the API's rotating refresh tokens, and the staff pages'
//! cookie sessions bound to the same session rows (`page_sessions.rs`).
//!
//! A session is a family of refresh tokens: each refresh spends one token
//! and issues the next. Presenting a spent token again means it leaked, so
//! the whole family is revoked (and with it every access token that names the
//! session). Only SHA-256 hashes of tokens are stored.

use consign_domain::{RefreshTokenId, SessionId, Timestamp, UserId};

use crate::access::{self, AccessRevoked};
use crate::{Db, DbResult};

mod page_sessions;

pub use page_sessions::{PageSession, end_page_session, extend_page_session, page_session, start_page_session};

/// Starts a session for a user with its first refresh token.
pub async fn start(db: &Db, user_id: UserId, token_hash: &str, expires_at: Timestamp) -> DbResult<SessionId> {
    let session_id = SessionId::new();
    let now = Timestamp::now().as_micros();
    let mut tx = db.begin().await?;
    tx.query("INSERT INTO sessions (id, user_id, revoked_at, created_at) VALUES ($1, $2, NULL, $3)")
        .bind(session_id.to_string())
        .bind(user_id.to_string())
        .bind(now)
        .execute()
        .await?;
    tx.query(
        "INSERT INTO refresh_tokens (id, session_id, user_id, token_hash, expires_at, used_at, created_at)
         VALUES ($1, $2, $3, $4, $5, NULL, $6)",
    )
    .bind(RefreshTokenId::new().to_string())
    .bind(session_id.to_string())
    .bind(user_id.to_string())
    .bind(token_hash.to_owned())
    .bind(expires_at.as_micros())
    .bind(now)
    .execute()
    .await?;
    tx.commit().await?;
    Ok(session_id)
}

/// What presenting a refresh token did.
#[derive(Debug, PartialEq, Eq)]
pub enum Rotation {
    /// The token was live: it is now spent and `new` replaces it.
    Rotated {
        /// The user.
        user_id: UserId,
        /// The session, unchanged across rotations.
        session_id: SessionId,
    },
    /// The token was already spent: the whole session is now revoked.
    ReuseDetected,
    /// Unknown, expired, or its session was revoked.
    Invalid,
}

/// How long a session lasts: it ends when unused for `idle_seconds` (each
/// refresh token expires that long after it is issued) and, however active,
/// `max_lifetime_seconds` after it started.
#[derive(Clone, Copy, Debug)]
pub struct SessionLimits {
    /// Longest time between two uses.
    pub idle_seconds: i64,
    /// Longest a session lasts from its start.
    pub max_lifetime_seconds: i64,
}

impl SessionLimits {
    /// When a token issued now in a session started at `started` expires.
    pub fn expiry(&self, started: Timestamp, now: Timestamp) -> Timestamp {
        let idle = now.plus_seconds(self.idle_seconds);
        let end = started.plus_seconds(self.max_lifetime_seconds);
        if idle.as_micros() < end.as_micros() { idle } else { end }
    }
}

/// Spends `presented_hash` and stores `new_hash` in its place, in one
/// transaction. Two concurrent refreshes with one token: one rotates, the
/// other is reuse and revokes the family. The new token expires after the
/// idle time, and never after the session's maximum lifetime; a session
/// past either is over (`Invalid`).
pub async fn rotate(db: &Db, presented_hash: &str, new_hash: &str, limits: SessionLimits) -> DbResult<Rotation> {
    #[derive(sqlx::FromRow)]
    struct Row {
        id: String,
        session_id: String,
        user_id: String,
        expires_at: i64,
        used_at: Option<i64>,
        revoked_at: Option<i64>,
        started_at: i64,
    }
    let now = Timestamp::now().as_micros();
    let mut tx = db.begin().await?;
    let row: Option<Row> = tx
        .query(
            "SELECT t.id, t.session_id, t.user_id, t.expires_at, t.used_at, s.revoked_at, s.created_at AS started_at
               FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id
              WHERE t.token_hash = $1",
        )
        .bind(presented_hash.to_owned())
        .fetch_optional()
        .await?;
    let ended = |row: &Row| {
        let end = Timestamp::from_micros(row.started_at).plus_seconds(limits.max_lifetime_seconds);
        row.revoked_at.is_some() || row.expires_at <= now || end.as_micros() <= now
    };
    let rotation = match row {
        None => Rotation::Invalid,
        Some(row) if ended(&row) => Rotation::Invalid,
        Some(row) => {
            // The conditional update is the arbiter under concurrency:
            // only one request can flip used_at from NULL.
            let spent = match row.used_at {
                Some(_) => 0,
                None => {
                    tx.query("UPDATE refresh_tokens SET used_at = $1 WHERE id = $2 AND used_at IS NULL")
                        .bind(now)
                        .bind(row.id.clone())
                        .execute()
                        .await?
                }
            };
            if spent == 0 {
                let revoked = tx
                    .query("UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                    .bind(now)
                    .bind(row.session_id.clone())
                    .execute()
                    .await?;
                if revoked == 1 {
                    let user_id: UserId = row.user_id.parse().map_err(|_| anyhow::anyhow!("corrupt user id"))?;
                    let session_id = row.session_id.parse().map_err(|_| anyhow::anyhow!("corrupt session id"))?;
                    let revoked = AccessRevoked { session_id: Some(session_id), ..AccessRevoked::default() };
                    access::record_revoked_of_user(&mut tx, user_id, revoked).await?;
                }
                Rotation::ReuseDetected
            } else {
                tx.query(
                    "INSERT INTO refresh_tokens (id, session_id, user_id, token_hash, expires_at, used_at, created_at)
                     VALUES ($1, $2, $3, $4, $5, NULL, $6)",
                )
                .bind(RefreshTokenId::new().to_string())
                .bind(row.session_id.clone())
                .bind(row.user_id.clone())
                .bind(new_hash.to_owned())
                .bind(limits.expiry(Timestamp::from_micros(row.started_at), Timestamp::from_micros(now)).as_micros())
                .bind(now)
                .execute()
                .await?;
                Rotation::Rotated {
                    user_id: row.user_id.parse().map_err(|_| anyhow::anyhow!("corrupt user id"))?,
                    session_id: row.session_id.parse().map_err(|_| anyhow::anyhow!("corrupt session id"))?,
                }
            }
        }
    };
    tx.commit().await?;
    Ok(rotation)
}

/// Ends a session (logout), and with it the session's live sockets on every
/// instance (`access.revoked`). Idempotent.
pub async fn revoke(db: &Db, session_id: SessionId) -> DbResult<()> {
    let mut tx = db.begin().await?;
    let revoked = tx
        .query("UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(Timestamp::now().as_micros())
        .bind(session_id.to_string())
        .execute()
        .await?;
    if revoked == 1 {
        let user_id: UserId = tx.query("SELECT user_id FROM sessions WHERE id = $1").bind(session_id).scalar().await?;
        let revoked = AccessRevoked { session_id: Some(session_id), ..AccessRevoked::default() };
        access::record_revoked_of_user(&mut tx, user_id, revoked).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Ends every live session of a user (`$1` now, `$2` the user), and with
/// them every page session bound to them. For the transactions that take a
/// user's access away (see `users::remove_org_member`).
pub(crate) const REVOKE_ALL_OF_USER_SQL: &str =
    "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL";

/// Forgets a user's page sessions (`$1` the user): they are dead once their
/// sessions are revoked, and need not wait for expiry to be cleaned up.
pub(crate) const DELETE_PAGE_SESSIONS_OF_USER_SQL: &str = "DELETE FROM web_sessions WHERE user_id = $1";

/// How many ways a user still reaches an organization (`$1` the user, `$2`
/// the organization): its membership, a brand membership in one of its
/// brands, or a 3PL organization linked to one of its brands. Zero means
/// the user has lost all access to it, and its sessions end.
pub(crate) const REMAINING_ACCESS_SQL: &str = "
    SELECT (SELECT COUNT(*) FROM org_memberships WHERE user_id = $1 AND organization_id = $2)
         + (SELECT COUNT(*) FROM brand_memberships WHERE user_id = $1 AND organization_id = $2)
         + (SELECT COUNT(*) FROM org_memberships m
              JOIN brand_fulfillers f ON f.organization_id = m.organization_id
              JOIN brands b ON b.id = f.brand_id
             WHERE m.user_id = $1 AND b.organization_id = $2)";

/// Ends every session of a user, API and pages alike. Idempotent.
pub async fn revoke_all_of_user(db: &Db, user_id: UserId) -> DbResult<()> {
    let mut tx = db.begin().await?;
    tx.query(REVOKE_ALL_OF_USER_SQL).bind(Timestamp::now().as_micros()).bind(user_id.to_string()).execute().await?;
    tx.query(DELETE_PAGE_SESSIONS_OF_USER_SQL).bind(user_id.to_string()).execute().await?;
    tx.commit().await?;
    Ok(())
}
