//! Money: integer minor units with an ISO 4217 currency (SPEC §3).

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
