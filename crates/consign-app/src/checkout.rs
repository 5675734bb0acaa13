//! Checkout: a shopper's cart becomes an order with its stock held, and then,
//! for a card or wallet provider, a payment is started at the provider.
//!
//! The storefront calls the steps in order: [`problems`] (the fields),
//! [`admit`] (the brand's rules before anything is written), [`place_in`]
//! (the order, inside the caller's transaction) and, once that has
//! committed, [`start_payment`]. The edge keeps what is its own between the
//! steps: rate limits, the idempotency key's claim and stored answer (which
//! it writes in the same transaction as the order), the answer's shape.

use consign_db::orders::Order;
use consign_db::orders::checkout::{self as placing, NewCheckout, RequestedLine, StorefrontBrand};
use consign_db::payments::PaymentAttempt;
use consign_db::{Db, DbError, DbResult, Scope, Tx, rate_limits};
use consign_domain::order::{Address, Customer};
use consign_domain::{OrderId, Timestamp};
use consign_payments::{Gateway, Provider, ProviderKind};

use crate::payment_start::{self, StartError};
use crate::provider_accounts::{self, AccountError};

/// A checkout as the shopper sent it, its text trimmed and the email lower
/// case (one customer, however they type it).
pub struct Checkout {
    /// What to buy.
    pub lines: Vec<RequestedLine>,
    /// Who buys.
    pub customer: Customer,
    /// Where to ship.
    pub shipping_address: Address,
    /// The provider's name as sent.
    pub payment_provider: String,
}

impl Checkout {
    /// The checkout with its text in the form it is stored and compared in.
    pub fn normalized(mut self) -> Self {
        for line in &mut self.lines {
            line.sku = line.sku.trim().to_owned();
        }
        self.customer.name = self.customer.name.trim().to_owned();
        self.customer.email = self.customer.email.trim().to_lowercase();
        self.customer.phone = self.customer.phone.map(|phone| phone.trim().to_owned());
        self
    }
}

/// The field problems of a checkout beyond each field's own format (which
/// the edge checks on its request type): the shipping address, the
/// provider's name and the units one order may hold. Empty when it passes.
pub fn problems(checkout: &Checkout, max_units_per_order: i64) -> Vec<(String, String)> {
    let mut problems: Vec<(String, String)> = checkout
        .shipping_address
        .problems()
        .into_iter()
        .map(|(field, message)| (format!("shipping_address.{field}"), message.to_owned()))
        .collect();
    if ProviderKind::parse(&checkout.payment_provider).is_none() {
        problems.push(("payment_provider".into(), "must be one of manual, stripe, razorpay, paypal".into()));
    }
    let units = checkout.lines.iter().fold(0_i64, |sum, line| sum.saturating_add(line.quantity));
    if units > max_units_per_order {
        problems.push(("items".into(), format!("an order holds at most {max_units_per_order} units")));
    }
    problems
}

/// Why a checkout was refused before its order was placed.
#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    /// The customer's email already holds as many unpaid orders at the brand
    /// as allowed; one may check out again once the first of them expires
    /// (or is paid), in this many seconds.
    #[error("too many unpaid orders for this email")]
    TooManyUnpaid {
        /// Seconds until the first hold expires, at least one.
        retry_after_seconds: u64,
    },
    /// The brand takes no payments through the chosen provider.
    #[error("{0} is not set up for this brand")]
    ProviderNotSetUp(ProviderKind),
    /// The brand's provider credentials could not be opened.
    #[error(transparent)]
    Account(#[from] AccountError),
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// A checkout the brand's rules let through, with the provider that will
/// take its payment (opened once, here).
pub struct Admitted {
    brand: StorefrontBrand,
    checkout: Checkout,
    kind: ProviderKind,
    provider: Option<Provider>,
}

impl Admitted {
    /// The provider the customer pays through.
    pub fn provider_kind(&self) -> ProviderKind {
        self.kind
    }

    /// The brand.
    pub fn brand(&self) -> &StorefrontBrand {
        &self.brand
    }
}

/// The brand's rules before anything is written: the customer's email may
/// hold only `unpaid_orders_per_email` unpaid orders at the brand at once
/// (`u32::MAX` for no limit), and the chosen provider must be set up.
/// Concurrent checkouts for one email can pass the unpaid-order check
/// together, which the edge's per-email rate limit keeps to a handful.
pub async fn admit(
    db: &Db,
    gateway: &Gateway,
    brand: StorefrontBrand,
    checkout: Checkout,
    unpaid_orders_per_email: u32,
) -> Result<Admitted, CheckoutError> {
    if unpaid_orders_per_email != u32::MAX {
        let holds = rate_limits::unpaid_holds(db, brand.id, &checkout.customer.email).await?;
        if holds.orders >= i64::from(unpaid_orders_per_email) {
            let now = Timestamp::now().as_micros();
            let wait_micros = holds.first_expiry.map_or(60_000_000, |expiry| (expiry.as_micros() - now).max(0));
            let retry_after_seconds = u64::try_from((wait_micros + 999_999) / 1_000_000).unwrap_or(1).max(1);
            return Err(CheckoutError::TooManyUnpaid { retry_after_seconds });
        }
    }
    let kind = ProviderKind::parse(&checkout.payment_provider).unwrap_or(ProviderKind::Manual);
    let provider = if kind.needs_credentials() {
        if gateway.keyring.is_none() {
            return Err(CheckoutError::ProviderNotSetUp(kind));
        }
        let provider = provider_accounts::provider(db, gateway, brand.id, kind).await?;
        Some(provider.ok_or(CheckoutError::ProviderNotSetUp(kind))?)
    } else {
        None
    };
    Ok(Admitted { brand, checkout, kind, provider })
}

/// Places the admitted checkout's order in `tx` (see
/// `consign_db::orders::checkout`), with the id and access token hash the
/// edge chose, and answers it with its customer's scope.
pub async fn place_in(
    tx: &mut Tx,
    admitted: &Admitted,
    order_id: OrderId,
    access_token_hash: String,
) -> DbResult<(Order, Scope)> {
    let checkout = &admitted.checkout;
    let new = NewCheckout {
        order_id,
        lines: checkout.lines.clone(),
        customer: checkout.customer.clone(),
        shipping_address: checkout.shipping_address.clone(),
        payment_provider: checkout.payment_provider.clone(),
        access_token_hash,
    };
    placing::place_order_in(tx, &admitted.brand, new).await
}

/// Starts the payment of a placed order at its provider, after the order's
/// transaction committed. `None` for a manual payment, which starts nothing.
pub async fn start_payment(
    db: &Db,
    admitted: &Admitted,
    order: &Order,
    customer: &Scope,
) -> Result<Option<PaymentAttempt>, StartError> {
    let Some(provider) = &admitted.provider else {
        return Ok(None);
    };
    let attempt =
        payment_start::start_attempt_with(db, provider, customer, order, &admitted.brand.slug, admitted.kind).await?;
    Ok(Some(attempt))
}

/// What a customer paying by bank transfer is told, on the checkout's
/// answer and the shop's pages alike: how much, to whom, quoting what, and
/// the brand's bank details when it gave them.
pub fn bank_transfer_instructions(order: &Order, brand: &StorefrontBrand) -> String {
    let due = &order.outstanding;
    let mut text = format!(
        "Pay {} {}.{:02} by bank transfer to {} quoting order {}.",
        due.currency,
        due.amount / 100,
        (due.amount % 100).abs(),
        brand.name,
        order.number
    );
    if let Some(details) = brand.bank_details.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
        text.push_str(&format!(" {details}"));
    }
    text
}
