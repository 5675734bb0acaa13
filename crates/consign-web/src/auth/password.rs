//! argon2id password hashing. Hashing costs tens of milliseconds of CPU, so
//! it runs on the blocking pool, never on the async workers.

use argon2::{Argon2, PasswordHasher, PasswordVerifier};

/// Hashes a password into a PHC string (argon2id, default parameters).
pub async fn hash(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|e| anyhow::anyhow!("password hashing failed: {e}"))
    })
    .await?
}

/// Checks a password against a PHC string. With no stored hash (unknown
/// user) it still spends the same work on a fixed hash, so response time does
/// not reveal which emails exist.
pub async fn verify(password: String, stored: Option<String>) -> anyhow::Result<bool> {
    tokio::task::spawn_blocking(move || {
        let stored = stored.unwrap_or_else(|| DECOY_HASH.to_owned());
        let matches = Argon2::default().verify_password(password.as_bytes(), stored.as_str()).is_ok();
        Ok(matches && stored != DECOY_HASH)
    })
    .await?
}

/// A real argon2id hash of a random string nobody knows.
const DECOY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$YzW3Cpbtnzy/3yaAXyMyo8pYk8jTmE40BGWvPo6dpXY";

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_nothing_else() {
        let hash = hash("correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify("correct horse".into(), Some(hash.clone())).await.unwrap());
        assert!(!verify("wrong horse".into(), Some(hash)).await.unwrap());
    }

    #[tokio::test]
    async fn an_unknown_user_never_verifies() {
        assert!(!verify("anything".into(), None).await.unwrap());
    }
}
