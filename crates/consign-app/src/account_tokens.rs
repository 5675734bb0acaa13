//! The links of account emails: a password reset and an invitation.
//!
//! Both tokens are derived (HMAC-SHA256 under the instance's account key)
//! rather than random, so the job that emails one makes it again from what
//! the database holds; no table keeps a usable link, and no job payload
//! carries one.
//!
//! - An invitation token (`cin_…`) signs the invitation's id. The database
//!   keeps only its SHA-256, as for tokens made before this was derived.
//! - A password reset token (`prt_{user}.{expires}.{signature}`) signs the
//!   user, the expiry and the user's current password hash: setting a
//!   password (with this link or any other way) spends every link sent
//!   before, so each works once and none outlives a password change.

use consign_channels::signature::{hmac_sha256, same};

/// The name of the instance secret the account tokens are derived with.
pub const ACCOUNT_TOKEN_KEY_SECRET: &str = "account_token_key";

/// How an invitation token starts.
pub const INVITATION_TOKEN_PREFIX: &str = "cin_";

/// How a password reset token starts.
pub const PASSWORD_RESET_PREFIX: &str = "prt_";

/// How long a password reset link works.
pub const PASSWORD_RESET_TTL_SECONDS: i64 = 60 * 60;

/// The invitation's token.
pub fn invitation_token(key: &str, invitation_id: &str) -> String {
    let signed = hmac_sha256(key.as_bytes(), format!("invitation:{invitation_id}").as_bytes());
    format!("{INVITATION_TOKEN_PREFIX}{}", hex::encode(signed))
}

fn reset_signature(key: &str, user_id: &str, expires_at: i64, password_hash: &str) -> Vec<u8> {
    hmac_sha256(key.as_bytes(), format!("password-reset:{user_id}:{expires_at}:{password_hash}").as_bytes())
}

/// A password reset token for the user whose password hash is
/// `password_hash` now, working until `expires_at` (Unix seconds).
pub fn password_reset_token(key: &str, user_id: &str, expires_at: i64, password_hash: &str) -> String {
    let signature = hex::encode(reset_signature(key, user_id, expires_at, password_hash));
    format!("{PASSWORD_RESET_PREFIX}{user_id}.{expires_at}.{signature}")
}

/// What a password reset token claims, unchecked: the user and the expiry.
/// `None` when it is not shaped like one.
pub fn password_reset_claims(token: &str) -> Option<(&str, i64)> {
    let mut parts = token.strip_prefix(PASSWORD_RESET_PREFIX)?.split('.');
    let (user_id, expires_at, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || user_id.is_empty() {
        return None;
    }
    Some((user_id, expires_at.parse().ok()?))
}

/// Whether `token` is a reset link of this user, still unspent (the
/// password hash is the one it was made for) and unexpired at `now`
/// (Unix seconds). Compared in constant time.
pub fn password_reset_valid(key: &str, token: &str, password_hash: &str, now: i64) -> bool {
    let Some((user_id, expires_at)) = password_reset_claims(token) else { return false };
    let Some(presented) = token.rsplit('.').next().and_then(|hex_text| hex::decode(hex_text).ok()) else {
        return false;
    };
    now < expires_at && same(&reset_signature(key, user_id, expires_at, password_hash), &presented)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reset_link_works_until_it_expires_or_the_password_changes() {
        let token = password_reset_token("key", "u1", 1_000, "hash-a");
        assert_eq!(password_reset_claims(&token), Some(("u1", 1_000)));
        assert!(password_reset_valid("key", &token, "hash-a", 999));
        assert!(!password_reset_valid("key", &token, "hash-a", 1_000), "expired");
        assert!(!password_reset_valid("key", &token, "hash-b", 999), "spent by a password change");
        assert!(!password_reset_valid("other key", &token, "hash-a", 999));
        let longer = token.replace(".1000.", ".9000.");
        assert!(!password_reset_valid("key", &longer, "hash-a", 999), "the expiry is signed");
        let someone_else = token.replace("prt_u1.", "prt_u2.");
        assert!(!password_reset_valid("key", &someone_else, "hash-a", 999), "the user is signed");
        for malformed in ["", "prt_", "prt_u1.x.00", "prt_u1.1000", "prt_u1.1000.zz", "cin_abc", "prt_.1000.00"] {
            assert!(!password_reset_valid("key", malformed, "hash-a", 999), "{malformed}");
        }
    }

    #[test]
    fn an_invitation_token_is_the_same_for_its_invitation_and_only_for_it() {
        let token = invitation_token("key", "i1");
        assert!(token.starts_with(INVITATION_TOKEN_PREFIX));
        assert_eq!(token, invitation_token("key", "i1"));
        assert_ne!(token, invitation_token("key", "i2"));
        assert_ne!(token, invitation_token("other key", "i1"));
    }
}
