//! Order access tokens: what lets a customer without an account read and
//! act on one order (its page, its thread, its live feed).

use consign_channels::signature::hmac_sha256;

/// How an order access token starts (the auth middleware tells them from
/// JWTs and API keys by it).
pub const ORDER_TOKEN_PREFIX: &str = "cot_";

/// The name of the instance secret order access tokens are derived with.
pub const ORDER_TOKEN_KEY_SECRET: &str = "order_token_key";

/// An order's access token: `cot_` and the hex HMAC-SHA256 of the order id
/// under the instance's key. Derived rather than random so that a
/// notification sent days later can link to the order page, while the
/// database still stores only its SHA-256.
pub fn order_access_token(key: &str, order_id: &str) -> String {
    order_access_token_version(key, order_id, 0)
}

/// The order's access token after `version` rotations (staff rotate it
/// when a link leaked): version 0 is the original token, so links sent
/// before any rotation hold; a later version signs `{order_id}.{version}`.
pub fn order_access_token_version(key: &str, order_id: &str, version: i64) -> String {
    let signed = if version == 0 { order_id.to_owned() } else { format!("{order_id}.{version}") };
    format!("{ORDER_TOKEN_PREFIX}{}", hex::encode(hmac_sha256(key.as_bytes(), signed.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotation_changes_the_token_and_the_original_stays_derivable() {
        let first = order_access_token("key", "o1");
        assert!(first.starts_with(ORDER_TOKEN_PREFIX));
        assert_eq!(first, order_access_token_version("key", "o1", 0));
        assert_ne!(first, order_access_token_version("key", "o1", 1));
        assert_ne!(first, order_access_token("other key", "o1"));
    }
}
