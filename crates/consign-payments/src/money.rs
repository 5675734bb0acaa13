//! Amounts as providers write them. Stripe and Razorpay take integer minor
//! units; PayPal takes a decimal string whose number of decimals depends on
//! the currency.

/// Currencies without minor units (ISO 4217 exponent 0) among those the
/// providers support.
const ZERO_DECIMAL: &[&str] = &[
    "BIF", "CLP", "DJF", "GNF", "HUF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "TWD", "UGX", "VND", "VUV", "XAF",
    "XOF", "XPF",
];

/// Decimals of a currency's minor unit.
pub fn exponent(currency: &str) -> u32 {
    if ZERO_DECIMAL.contains(&currency.to_ascii_uppercase().as_str()) { 0 } else { 2 }
}

/// `1999` USD → `"19.99"`; `500` JPY → `"500"`.
pub fn to_decimal(amount: i64, currency: &str) -> String {
    let exponent = exponent(currency);
    if exponent == 0 {
        return amount.to_string();
    }
    let unit = 10_i64.pow(exponent);
    let sign = if amount < 0 { "-" } else { "" };
    let amount = amount.unsigned_abs();
    let unit = unit.unsigned_abs();
    format!("{sign}{}.{:0width$}", amount / unit, amount % unit, width = exponent as usize)
}

/// `"19.99"` USD → `1999`. `None` for anything that is not a plain decimal
/// with at most the currency's decimals.
pub fn from_decimal(value: &str, currency: &str) -> Option<i64> {
    let exponent = exponent(currency) as usize;
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || fraction.len() > exponent {
        return None;
    }
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let padded = format!("{fraction:0<exponent$}");
    let whole: i64 = whole.parse().ok()?;
    let fraction: i64 = if padded.is_empty() { 0 } else { padded.parse().ok()? };
    whole.checked_mul(10_i64.pow(exponent as u32))?.checked_add(fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_follow_the_currency() {
        assert_eq!(to_decimal(1999, "USD"), "19.99");
        assert_eq!(to_decimal(5, "EUR"), "0.05");
        assert_eq!(to_decimal(500, "JPY"), "500");
        assert_eq!(from_decimal("19.99", "USD"), Some(1999));
        assert_eq!(from_decimal("19.9", "USD"), Some(1990));
        assert_eq!(from_decimal("20", "USD"), Some(2000));
        assert_eq!(from_decimal("500", "JPY"), Some(500));
        assert_eq!(from_decimal("5.5", "JPY"), None);
        assert_eq!(from_decimal("1.234", "USD"), None);
        assert_eq!(from_decimal("-1", "USD"), None);
    }
}
