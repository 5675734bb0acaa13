//! Webhook signatures, each as its provider documents it, verified in
//! constant time over exactly what the provider signs.

use base64::Engine as _;
use hmac::{KeyInit, Mac};
use sha1::Sha1;
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = hmac::Hmac<Sha256>;
type HmacSha1 = hmac::Hmac<Sha1>;

/// HMAC-SHA256 of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn hmac_sha1(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha1::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// Whether two byte strings are equal, in constant time.
pub fn same(expected: &[u8], presented: &[u8]) -> bool {
    expected.len() == presented.len() && bool::from(expected.ct_eq(presented))
}

/// Mailgun: `signature` is the hex HMAC-SHA256 of `timestamp` followed by
/// `token`, under the webhook signing key; the timestamp must be within
/// `tolerance_seconds` of `now` (the caller also refuses a token seen
/// before).
pub fn mailgun_valid(
    signing_key: &str,
    timestamp: &str,
    token: &str,
    signature: &str,
    now_unix: i64,
    tolerance_seconds: i64,
) -> bool {
    let Ok(sent_at) = timestamp.parse::<i64>() else { return false };
    // `abs_diff`: a timestamp near `i64::MIN` must not overflow the check.
    if now_unix.abs_diff(sent_at) > tolerance_seconds.unsigned_abs() {
        return false;
    }
    let Ok(presented) = hex::decode(signature.trim()) else { return false };
    let expected = hmac_sha256(signing_key.as_bytes(), format!("{timestamp}{token}").as_bytes());
    same(&expected, &presented)
}

/// WhatsApp Cloud API (Meta): `X-Hub-Signature-256: sha256=<hex>`, the
/// HMAC-SHA256 of the raw body under the app secret.
pub fn whatsapp_valid(app_secret: &str, body: &[u8], header: Option<&str>) -> bool {
    let Some(hex_signature) = header.and_then(|h| h.trim().strip_prefix("sha256=")) else { return false };
    let Ok(presented) = hex::decode(hex_signature) else { return false };
    same(&hmac_sha256(app_secret.as_bytes(), body), &presented)
}

/// Twilio: `X-Twilio-Signature` is the base64 HMAC-SHA1, under the auth
/// token, of the full URL Twilio called followed by every POST parameter's
/// name and value, sorted by name.
pub fn twilio_valid(auth_token: &str, url: &str, params: &[(String, String)], header: Option<&str>) -> bool {
    let Some(header) = header else { return false };
    let Ok(presented) = base64::engine::general_purpose::STANDARD.decode(header.trim()) else { return false };
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    // A stable sort keeps repeated names in the order they were sent.
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut signed = url.to_owned();
    for (name, value) in sorted {
        signed.push_str(name);
        signed.push_str(value);
    }
    same(&hmac_sha1(auth_token.as_bytes(), signed.as_bytes()), &presented)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailgun_signatures_check_key_and_age() {
        let signature = hex::encode(hmac_sha256(b"key", b"1700000000abc"));
        assert!(mailgun_valid("key", "1700000000", "abc", &signature, 1_700_000_100, 300));
        assert!(!mailgun_valid("other", "1700000000", "abc", &signature, 1_700_000_100, 300));
        assert!(!mailgun_valid("key", "1700000000", "abd", &signature, 1_700_000_100, 300));
        assert!(!mailgun_valid("key", "1700000000", "abc", &signature, 1_700_001_000, 300), "too old");
        assert!(!mailgun_valid("key", "1700000000", "abc", "zz", 1_700_000_100, 300));
        assert!(!mailgun_valid("key", "-9223372036854775808", "abc", &signature, 1_700_000_100, 300), "no overflow");
        assert!(!mailgun_valid("key", "9223372036854775807", "abc", &signature, -1_700_000_100, 300), "no overflow");
    }

    #[test]
    fn whatsapp_signatures_cover_the_raw_body() {
        let header = format!("sha256={}", hex::encode(hmac_sha256(b"secret", b"{\"a\":1}")));
        assert!(whatsapp_valid("secret", b"{\"a\":1}", Some(&header)));
        assert!(!whatsapp_valid("secret", b"{\"a\": 1}", Some(&header)));
        assert!(!whatsapp_valid("secret", b"{\"a\":1}", None));
        assert!(!whatsapp_valid("secret", b"{\"a\":1}", Some("sha1=00")));
    }

    #[test]
    fn twilio_signatures_sort_parameters_by_name() {
        let params = vec![("To".to_owned(), "+1".to_owned()), ("Body".to_owned(), "hi".to_owned())];
        let signed = "https://x.example/hookBodyhiTo+1";
        let header = base64::engine::general_purpose::STANDARD.encode(hmac_sha1(b"token", signed.as_bytes()));
        assert!(twilio_valid("token", "https://x.example/hook", &params, Some(&header)));
        assert!(!twilio_valid("token", "https://x.example/other", &params, Some(&header)));
        assert!(!twilio_valid("wrong", "https://x.example/hook", &params, Some(&header)));
    }
}
