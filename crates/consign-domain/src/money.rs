//! Money: integer minor units with an ISO 4217 currency (docs/api.md).

use serde::{Deserialize, Serialize};

/// An amount of money, such as `{ "amount": 1999, "currency": "USD" }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Money {
    /// Minor units (cents for USD).
    pub amount: i64,
    /// ISO 4217 code, upper case.
    #[schema(example = "USD")]
    pub currency: String,
}

impl Money {
    /// An amount in a currency.
    pub fn new(amount: i64, currency: impl Into<String>) -> Self {
        Self { amount, currency: currency.into() }
    }
}

/// Whether `code` looks like an ISO 4217 currency code.
pub fn is_currency_code(code: &str) -> bool {
    code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase())
}

/// The largest amount of money Consign handles, in minor units: a price, a
/// line, an order's total (10^12: ten billion in a two-decimal currency).
/// Larger is bad input (422), and every sum of money is computed with
/// checked arithmetic against it, so no total can overflow `i64`.
pub const MAX_AMOUNT: i64 = 1_000_000_000_000;

/// `amount` if it is a usable amount: from 0 to [`MAX_AMOUNT`].
pub fn within_limit(amount: i64) -> Option<i64> {
    (0..=MAX_AMOUNT).contains(&amount).then_some(amount)
}

/// A line's total, `unit_price × quantity`, or `None` past [`MAX_AMOUNT`].
pub fn line_total(unit_price: i64, quantity: i64) -> Option<i64> {
    unit_price.checked_mul(quantity).and_then(within_limit)
}

/// The sum of amounts, or `None` past [`MAX_AMOUNT`] (or below zero).
pub fn sum(amounts: impl IntoIterator<Item = i64>) -> Option<i64> {
    amounts.into_iter().try_fold(0i64, |total, amount| total.checked_add(amount)).and_then(within_limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_past_the_largest_amount_is_refused_rather_than_wrapped() {
        assert_eq!(line_total(1999, 3), Some(5997));
        assert_eq!(line_total(9_000_000_000_000_000_000, 2), None);
        assert_eq!(line_total(MAX_AMOUNT, 2), None);
        assert_eq!(sum([MAX_AMOUNT, 1]), None);
        assert_eq!(sum([i64::MAX, i64::MAX]), None);
        assert_eq!(sum([1, 2, 3]), Some(6));
    }
}
