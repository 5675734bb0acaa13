//! Staff page sessions: the cookie sessions of the staff web app.
//!
//! A page session is a cookie bound to a row of `sessions`, the same
//! session table the API's tokens name: logging out, a password reset or a
//! revoked session ends the page session too, and the caller's scope is
//! built by [`crate::users::scope_for_session`] exactly as for the API.
//! The cookie itself is never stored: callers pass its SHA-256, the row's
//! id in `web_sessions`.

use consign_domain::{SessionId, Timestamp, UserId};

use crate::{Db, DbResult};

/// A live page session, found by the SHA-256 of its cookie.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct PageSession {
    /// The user.
    pub user_id: UserId,
    /// The auth session it is bound to.
    pub session_id: SessionId,
    /// The synchronizer token every form of this session carries.
    pub csrf_token: String,
    /// The user's email, for the page header.
    pub email: String,
    /// The user's name.
    pub name: String,
    /// When it started.
    pub created_at: Timestamp,
    /// When it ends unless used again (see [`extend_page_session`]).
    pub expires_at: Timestamp,
}

/// Starts a page session: a new auth session for the user and the page
/// session bound to it, in one transaction.
pub async fn start_page_session(
    db: &Db,
    user_id: UserId,
    cookie_hash: &str,
    csrf_token: &str,
    expires_at: Timestamp,
) -> DbResult<SessionId> {
    let session_id = SessionId::new();
    let now = Timestamp::now();
    let mut tx = db.begin().await?;
    tx.query("INSERT INTO sessions (id, user_id, revoked_at, created_at) VALUES ($1, $2, NULL, $3)")
        .bind(session_id.to_string())
        .bind(user_id.to_string())
        .bind(now)
        .execute()
        .await?;
    tx.query(
        "INSERT INTO web_sessions (id, session_id, user_id, csrf_token, expires_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(cookie_hash.to_owned())
    .bind(session_id.to_string())
    .bind(user_id.to_string())
    .bind(csrf_token.to_owned())
    .bind(expires_at)
    .bind(now)
    .execute()
    .await?;
    tx.commit().await?;
    Ok(session_id)
}

/// The live page session of a cookie: not expired, its auth session not
/// revoked.
pub async fn page_session(db: &Db, cookie_hash: &str) -> DbResult<Option<PageSession>> {
    db.read(
        "SELECT w.user_id, w.session_id, w.csrf_token, u.email, u.name, w.created_at, w.expires_at
           FROM web_sessions w
           JOIN sessions s ON s.id = w.session_id
           JOIN users u ON u.id = w.user_id
          WHERE w.id = $1 AND w.expires_at > $2 AND s.revoked_at IS NULL",
    )
    .bind(cookie_hash.to_owned())
    .bind(Timestamp::now())
    .fetch_optional()
    .await
}

/// Moves a page session's end to `expires_at` (its idle time counted from
/// now, within its maximum lifetime), never earlier.
pub async fn extend_page_session(db: &Db, cookie_hash: &str, expires_at: Timestamp) -> DbResult<()> {
    db.write_one("UPDATE web_sessions SET expires_at = $1 WHERE id = $2 AND expires_at < $1")
        .bind(expires_at)
        .bind(cookie_hash.to_owned())
        .execute()
        .await?;
    Ok(())
}

/// Ends a page session and revokes its auth session (logout). Idempotent.
pub async fn end_page_session(db: &Db, cookie_hash: &str) -> DbResult<()> {
    let now = Timestamp::now();
    let mut tx = db.begin().await?;
    let session_id: Option<String> = tx
        .query("SELECT session_id FROM web_sessions WHERE id = $1")
        .bind(cookie_hash.to_owned())
        .scalar_optional()
        .await?;
    if let Some(session_id) = session_id {
        let revoked = tx
            .query("UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(session_id.clone())
            .execute()
            .await?;
        if revoked == 1 {
            // The page's live socket (`/admin/live`) ends too.
            let user_id: UserId =
                tx.query("SELECT user_id FROM sessions WHERE id = $1").bind(session_id.clone()).scalar().await?;
            let session_id = session_id.parse().map_err(|_| anyhow::anyhow!("corrupt session id"))?;
            let revoked = crate::access::AccessRevoked { session_id: Some(session_id), ..Default::default() };
            crate::access::record_revoked_of_user(&mut tx, user_id, revoked).await?;
        }
        // Expired page sessions go too, so the table does not grow.
        tx.query("DELETE FROM web_sessions WHERE id = $1 OR expires_at <= $2")
            .bind(cookie_hash.to_owned())
            .bind(now)
            .execute()
            .await?;
    }
    tx.commit().await?;
    Ok(())
}
