//! An order's money, under `/orders/{id}/`: its ledger of payments and
//! refunds (`payments`), refunds (`refunds`), and payment attempts
//! (`payment-attempts`: listed, retried, and Razorpay's checkout callback).
//! Customers holding the order access token may list and retry attempts.

use axum::extract::State;
use axum::http::StatusCode;
use consign_db::Page;
use consign_db::orders::{self, Order, changes};
use consign_db::payments::{self, LedgerEntry, PaymentAttempt};
use consign_domain::policy::Action;
use consign_domain::text::Reason;
use consign_domain::{OrderId, PaymentAttemptId, PaymentId};
use consign_payments::{Provider, ProviderKind};
use garde::Validate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::orders::AmountInput;
use crate::AppState;
use crate::error::{AppError, AppResult, Problem, text_rule};
use crate::extract::{AppJson, AppPath, AppQuery, Caller, PageQuery};
use crate::payment_instructions::PaymentInstructions;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(refund))
        .routes(routes!(ledger))
        .routes(routes!(list_attempts, retry))
        .routes(routes!(razorpay_callback))
}

/// Loads the order (404 if invisible) and, for staff, checks the policy.
/// A customer passes for their own order only.
async fn order_for(state: &AppState, caller: &Caller, order_id: OrderId, action: Action) -> AppResult<Order> {
    let order = orders::get(&state.db, caller.scope(), order_id).await?;
    if caller.scope().customer_order() != Some(order_id) {
        caller.authorize_brand(action, order.brand_id)?;
    }
    Ok(order)
}

/// `POST /orders/{id}/refunds`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
pub struct RefundRequest {
    /// How much: minor units, or `{amount, currency}`.
    #[garde(skip)]
    pub amount: AmountInput,
    /// Why.
    #[garde(custom(text_rule::<Reason>))]
    pub reason: String,
}

/// The answer to a refund.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefundResponse {
    /// The order after the refund.
    pub order: Order,
    /// The refunds made (one per captured payment drawn on); provider
    /// refunds are `pending` until the provider confirms.
    pub refunds: Vec<PaymentId>,
}

/// Refunds part or all of what was captured, through the provider that
/// captured it (manual payments: recorded as paid back by staff).
#[utoipa::path(post, path = "/orders/{id}/refunds", tag = "payments", request_body = RefundRequest,
    params(("id" = String, Path, description = "Order id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 201, body = RefundResponse), (status = 404, body = Problem),
               (status = 422, description = "More than can be refunded", body = Problem)),
    security(("bearer" = [])))]
async fn refund(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(order_id): AppPath<OrderId>,
    AppJson(request): AppJson<RefundRequest>,
) -> AppResult<(StatusCode, AppJson<RefundResponse>)> {
    let order = orders::get(&state.db, caller.scope(), order_id).await?;
    caller.authorize_brand(Action::EditCommerce, order.brand_id)?;
    request.validate()?;
    let amount = match &request.amount {
        AmountInput::Minor(amount) => *amount,
        AmountInput::Money(money) => {
            if money.currency != order.total.currency {
                return Err(AppError::field(
                    "amount.currency",
                    format!("must be the order's currency, {}", order.total.currency),
                ));
            }
            money.amount
        }
    };
    let reason = Reason::parse(&request.reason).map_err(AppError::invalid("reason"))?;
    let (order, refunds) = changes::refund(&state.db, caller.scope(), order_id, amount, reason.as_str()).await?;
    Ok((StatusCode::CREATED, AppJson(RefundResponse { order, refunds })))
}

/// The order's payments and refunds, oldest first.
#[utoipa::path(get, path = "/orders/{id}/payments", tag = "payments",
    params(("id" = String, Path, description = "Order id"), PageQuery),
    responses((status = 200, description = "A page of ledger entries", body = Page<LedgerEntry>), (status = 404, body = Problem)),
    security(("bearer" = [])))]
async fn ledger(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(order_id): AppPath<OrderId>,
    AppQuery(page): AppQuery<PageQuery>,
) -> AppResult<AppJson<Page<LedgerEntry>>> {
    let order = orders::get(&state.db, caller.scope(), order_id).await?;
    caller.authorize_brand(Action::ViewCommerce, order.brand_id)?;
    let rows = payments::ledger(&state.db, caller.scope(), order_id).await?;
    Ok(AppJson(page.page_of(rows, |entry| entry.id.to_string())?))
}

/// The order's payment attempts, oldest first (staff, or the customer with
/// the order access token).
#[utoipa::path(get, path = "/orders/{id}/payment-attempts", tag = "payments",
    params(("id" = String, Path, description = "Order id"), PageQuery),
    responses((status = 200, description = "A page of payment attempts", body = Page<PaymentAttempt>), (status = 404, body = Problem)),
    security(("bearer" = [])))]
async fn list_attempts(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(order_id): AppPath<OrderId>,
    AppQuery(page): AppQuery<PageQuery>,
) -> AppResult<AppJson<Page<PaymentAttempt>>> {
    order_for(&state, &caller, order_id, Action::ViewCommerce).await?;
    let rows = payments::list_attempts(&state.db, caller.scope(), order_id).await?;
    Ok(AppJson(page.page_of(rows, |attempt| attempt.id.to_string())?))
}

/// `POST /orders/{id}/payment-attempts`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RetryRequest {
    /// `stripe`, `razorpay` or `paypal`.
    pub provider: String,
}

/// A new payment attempt for what the order still owes: after a failed
/// payment, or after an edit raised the total. An order makes at most 10
/// attempts (each one calls the provider with the brand's credentials).
#[utoipa::path(post, path = "/orders/{id}/payment-attempts", tag = "payments", request_body = RetryRequest,
    params(("id" = String, Path, description = "Order id")),
    responses((status = 201, body = PaymentInstructions), (status = 404, body = Problem),
               (status = 409, description = "Nothing left to pay, the order is closed, or it made 10 attempts", body = Problem),
               (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn retry(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(order_id): AppPath<OrderId>,
    AppJson(request): AppJson<RetryRequest>,
) -> AppResult<(StatusCode, AppJson<PaymentInstructions>)> {
    let order = order_for(&state, &caller, order_id, Action::EditCommerce).await?;
    let kind = ProviderKind::parse(&request.provider).filter(|k| k.needs_credentials()).ok_or_else(|| {
        AppError::field("provider", "must be stripe, razorpay or paypal (manual payments are recorded by staff)")
    })?;
    let brand_slug = payments::brand_slug(&state.db, order.brand_id).await?;
    let attempt =
        consign_app::payment_start::start_attempt(&state.db, &state.gateway, caller.scope(), &order, &brand_slug, kind)
            .await?;
    Ok((StatusCode::CREATED, AppJson(PaymentInstructions::of_attempt(&attempt))))
}

/// What Razorpay Checkout hands the page after a payment.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RazorpayCallback {
    /// `pay_…`.
    pub razorpay_payment_id: String,
    /// `order_…`, as the page saw it (checked against the stored one).
    pub razorpay_order_id: Option<String>,
    /// Hex HMAC-SHA256 of `order_id|payment_id` with the key secret.
    pub razorpay_signature: String,
}

/// The verified callback.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallbackResponse {
    /// Always true (a bad signature is a 401).
    pub verified: bool,
    /// The attempt; it succeeds when Razorpay's `payment.captured` webhook
    /// is applied.
    pub attempt: PaymentAttempt,
}

/// Checks Razorpay's checkout callback signature against the Razorpay order
/// id Consign stored for the attempt. The money moves on the webhook.
#[utoipa::path(post, path = "/orders/{id}/payment-attempts/{attempt_id}/razorpay-callback", tag = "payments",
    request_body = RazorpayCallback,
    params(("id" = String, Path, description = "Order id"), ("attempt_id" = String, Path, description = "Attempt id")),
    responses((status = 200, body = CallbackResponse), (status = 401, description = "signature_invalid", body = Problem),
               (status = 404, body = Problem)),
    security(("bearer" = [])))]
async fn razorpay_callback(
    State(state): State<AppState>,
    caller: Caller,
    AppPath((order_id, attempt_id)): AppPath<(OrderId, PaymentAttemptId)>,
    AppJson(request): AppJson<RazorpayCallback>,
) -> AppResult<AppJson<CallbackResponse>> {
    let order = order_for(&state, &caller, order_id, Action::EditCommerce).await?;
    let attempt = payments::attempt(&state.db, caller.scope(), order_id, attempt_id).await?;
    if attempt.provider != "razorpay" {
        return Err(AppError::NotFound);
    }
    let Some(stored) = attempt.provider_reference.clone() else {
        return Err(AppError::InvalidTransition("the attempt has no Razorpay order yet".into()));
    };
    let Some(Provider::Razorpay(razorpay)) =
        consign_app::provider_accounts::provider(&state.db, &state.gateway, order.brand_id, ProviderKind::Razorpay)
            .await?
    else {
        return Err(AppError::NotFound);
    };
    let page_matches = request.razorpay_order_id.as_deref().is_none_or(|sent| sent == stored);
    if !page_matches
        || razorpay.verify_callback(&stored, &request.razorpay_payment_id, &request.razorpay_signature).is_err()
    {
        tracing::warn!(%order_id, %attempt_id, "Razorpay checkout callback rejected: signature invalid");
        return Err(AppError::SignatureInvalid);
    }
    Ok(AppJson(CallbackResponse { verified: true, attempt }))
}
