//! Signatures over raw bytes, compared in constant time.
//!
//! - Stripe: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…]`, each `v1`
//!   an HMAC-SHA256 of `"<t>.<body>"` with the endpoint's secret; any
//!   matching `v1` is enough, and `t` must be within the tolerance of now.
//! - Razorpay webhooks: `X-Razorpay-Signature`, the hex HMAC-SHA256 of the
//!   raw body with the webhook secret.
//! - Razorpay checkout callbacks: the hex HMAC-SHA256 of
//!   `"<razorpay_order_id>|<razorpay_payment_id>"` with the key secret.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::PaymentError;

type HmacSha256 = Hmac<Sha256>;

/// Stripe's default tolerance between a signature's time and now.
pub const STRIPE_TOLERANCE_SECONDS: i64 = 300;

fn mac(secret: &[u8], parts: &[&[u8]]) -> HmacSha256 {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(secret).expect("HMAC accepts any key length");
    for part in parts {
        Mac::update(&mut mac, part);
    }
    mac
}

/// Hex HMAC-SHA256 of the concatenated parts.
pub fn hmac_hex(secret: &[u8], parts: &[&[u8]]) -> String {
    hex::encode(mac(secret, parts).finalize().into_bytes())
}

/// Whether `signature_hex` is the HMAC-SHA256 of the parts (constant time).
pub fn hmac_matches(secret: &[u8], parts: &[&[u8]], signature_hex: &str) -> bool {
    match hex::decode(signature_hex.trim()) {
        Ok(signature) => mac(secret, parts).verify_slice(&signature).is_ok(),
        Err(_) => false,
    }
}

/// The `Stripe-Signature` value Stripe would send for `body` at `timestamp`.
pub fn stripe_header(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let t = timestamp.to_string();
    format!("t={t},v1={}", hmac_hex(secret, &[t.as_bytes(), b".", body]))
}

/// Verifies a `Stripe-Signature` header against the raw body.
pub fn verify_stripe(secret: &[u8], header: &str, body: &[u8], now: i64, tolerance: i64) -> Result<(), PaymentError> {
    let mut timestamp: Option<&str> = None;
    let mut signatures = Vec::new();
    for item in header.split(',') {
        match item.trim().split_once('=') {
            Some(("t", value)) => timestamp = Some(value),
            Some(("v1", value)) => signatures.push(value),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(PaymentError::SignatureInvalid("no timestamp in Stripe-Signature"))?;
    let seconds: i64 = timestamp.parse().map_err(|_| PaymentError::SignatureInvalid("bad timestamp"))?;
    if signatures.is_empty() {
        return Err(PaymentError::SignatureInvalid("no v1 signature in Stripe-Signature"));
    }
    let matched = signatures.iter().any(|s| hmac_matches(secret, &[timestamp.as_bytes(), b".", body], s));
    if !matched {
        return Err(PaymentError::SignatureInvalid("no v1 signature matches"));
    }
    if (now - seconds).abs() > tolerance {
        return Err(PaymentError::SignatureInvalid("timestamp outside the tolerance"));
    }
    Ok(())
}

/// Verifies Razorpay's `X-Razorpay-Signature` over the raw body.
pub fn verify_razorpay_webhook(secret: &[u8], signature: &str, body: &[u8]) -> Result<(), PaymentError> {
    if hmac_matches(secret, &[body], signature) {
        Ok(())
    } else {
        Err(PaymentError::SignatureInvalid("X-Razorpay-Signature does not match"))
    }
}

/// Verifies a Razorpay checkout callback: the signature must be the HMAC of
/// `"<order_id>|<payment_id>"` under the key secret, for the order id
/// Consign stored (never the one the browser sent alone).
pub fn verify_razorpay_callback(
    key_secret: &[u8],
    stored_order_id: &str,
    payment_id: &str,
    signature: &str,
) -> Result<(), PaymentError> {
    if hmac_matches(key_secret, &[stored_order_id.as_bytes(), b"|", payment_id.as_bytes()], signature) {
        Ok(())
    } else {
        Err(PaymentError::SignatureInvalid("the checkout callback signature does not match"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec_test";

    #[test]
    fn a_stripe_signature_made_for_the_body_verifies_and_any_v1_may_match() {
        let body = br#"{"id":"evt_1"}"#;
        let header = stripe_header(SECRET, 1_700_000_000, body);
        assert!(verify_stripe(SECRET, &header, body, 1_700_000_100, 300).is_ok());
        let rotated = format!("t=1700000000,v1={},{}", "00".repeat(32), header.split_once(',').unwrap().1);
        assert!(verify_stripe(SECRET, &rotated, body, 1_700_000_000, 300).is_ok());
    }

    #[test]
    fn a_stripe_signature_fails_for_another_body_secret_or_an_old_timestamp() {
        let body = br#"{"id":"evt_1"}"#;
        let header = stripe_header(SECRET, 1_700_000_000, body);
        assert!(verify_stripe(SECRET, &header, br#"{"id":"evt_2"}"#, 1_700_000_000, 300).is_err());
        assert!(verify_stripe(b"other", &header, body, 1_700_000_000, 300).is_err());
        assert!(verify_stripe(SECRET, &header, body, 1_700_000_301, 300).is_err());
        assert!(verify_stripe(SECRET, "v1=abc", body, 1_700_000_000, 300).is_err());
        assert!(verify_stripe(SECRET, "t=1700000000", body, 1_700_000_000, 300).is_err());
    }

    #[test]
    fn razorpay_callback_signatures_bind_the_stored_order_id() {
        let signature = hmac_hex(b"key_secret", &[b"order_1", b"|", b"pay_1"]);
        assert!(verify_razorpay_callback(b"key_secret", "order_1", "pay_1", &signature).is_ok());
        assert!(verify_razorpay_callback(b"key_secret", "order_2", "pay_1", &signature).is_err());
        assert!(verify_razorpay_callback(b"key_secret", "order_1", "pay_1", "not hex").is_err());
    }

    #[test]
    fn razorpay_webhook_signatures_cover_the_raw_body() {
        let body = br#"{"event":"payment.captured"}"#;
        let signature = hmac_hex(b"hook", &[body]);
        assert!(verify_razorpay_webhook(b"hook", &signature, body).is_ok());
        assert!(verify_razorpay_webhook(b"hook", &signature, br#"{"event":"payment.captured" }"#).is_err());
    }
}
