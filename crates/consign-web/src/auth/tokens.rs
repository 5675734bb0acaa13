//! Token formats.
//!
//! - Access tokens are HS256 JWTs naming the user and the session, valid for
//!   a short time (15 minutes by default).
//! - Refresh tokens and API keys are random strings; only their SHA-256 is
//!   stored, and they are compared in constant time.

use consign_domain::{SessionId, Timestamp, UserId};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const ISSUER: &str = "consign";

/// The prefix of every API key.
pub const API_KEY_PREFIX: &str = "csk_";
/// The prefix of every order access token (customers).
pub use consign_app::tokens::ORDER_TOKEN_PREFIX;
/// Characters of an API key after `csk_` used as its lookup prefix.
const API_KEY_LOOKUP_LEN: usize = 12;

/// Signs and checks access tokens.
pub struct AccessTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl_seconds: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    sid: String,
    iss: String,
    iat: i64,
    exp: i64,
}

/// Who an access token speaks for.
#[derive(Debug, PartialEq, Eq)]
pub struct AccessClaims {
    /// The user.
    pub user_id: UserId,
    /// Its session.
    pub session_id: SessionId,
    /// When it expires, in seconds since the epoch (a live socket opened
    /// with it closes then).
    pub expires_at: i64,
}

impl AccessTokens {
    /// Keys from a shared secret; tokens live `ttl_seconds`.
    pub fn new(secret: &[u8], ttl_seconds: i64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl_seconds,
        }
    }

    /// Seconds an access token lives.
    pub fn ttl_seconds(&self) -> i64 {
        self.ttl_seconds
    }

    /// A signed token for a user's session.
    pub fn issue(&self, user_id: UserId, session_id: SessionId) -> anyhow::Result<String> {
        let now = Timestamp::now().as_unix_seconds();
        let claims = Claims {
            sub: user_id.to_string(),
            sid: session_id.to_string(),
            iss: ISSUER.into(),
            iat: now,
            exp: now + self.ttl_seconds,
        };
        Ok(jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?)
    }

    /// The claims of a valid, unexpired token; `None` for anything else.
    pub fn verify(&self, token: &str) -> Option<AccessClaims> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).ok()?;
        Some(AccessClaims {
            user_id: data.claims.sub.parse().ok()?,
            session_id: data.claims.sid.parse().ok()?,
            expires_at: data.claims.exp,
        })
    }
}

/// `n` random bytes from the OS-seeded CSPRNG, as lowercase hex.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::fill(&mut bytes[..]);
    hex::encode(bytes)
}

/// SHA-256 as lowercase hex: how refresh tokens and API keys are stored.
pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Compares two strings in time independent of where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// A new refresh token.
pub fn new_refresh_token() -> String {
    format!("crt_{}", random_hex(32))
}

/// A new API key and its lookup prefix.
pub fn new_api_key() -> (String, String) {
    let secret = random_hex(32);
    let key = format!("{API_KEY_PREFIX}{secret}");
    let lookup = secret[..API_KEY_LOOKUP_LEN].to_owned();
    (key, lookup)
}

/// The lookup prefix of a presented API key, if it has the right form.
pub fn api_key_lookup(key: &str) -> Option<&str> {
    let secret = key.strip_prefix(API_KEY_PREFIX)?;
    (secret.len() == 64 && secret.bytes().all(|b| b.is_ascii_hexdigit())).then(|| &secret[..API_KEY_LOOKUP_LEN])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_access_token_round_trips() {
        let tokens = AccessTokens::new(b"secret-secret-secret-secret-1234", 900);
        let (user_id, session_id) = (UserId::new(), SessionId::new());
        let token = tokens.issue(user_id, session_id).unwrap();
        let claims = tokens.verify(&token).expect("valid");
        assert_eq!((claims.user_id, claims.session_id), (user_id, session_id));
    }

    #[test]
    fn a_token_signed_with_another_key_is_rejected() {
        let ours = AccessTokens::new(b"secret-secret-secret-secret-1234", 900);
        let theirs = AccessTokens::new(b"another-secret-another-secret-12", 900);
        let token = theirs.issue(UserId::new(), SessionId::new()).unwrap();
        assert_eq!(ours.verify(&token), None);
    }

    #[test]
    fn an_expired_token_is_rejected() {
        let tokens = AccessTokens::new(b"secret-secret-secret-secret-1234", -60);
        let token = tokens.issue(UserId::new(), SessionId::new()).unwrap();
        assert_eq!(tokens.verify(&token), None);
    }

    #[test]
    fn api_keys_have_a_recognisable_form() {
        let (key, lookup) = new_api_key();
        assert!(key.starts_with("csk_"));
        assert_eq!(api_key_lookup(&key), Some(lookup.as_str()));
        assert_eq!(api_key_lookup("csk_short"), None);
    }
}
