//! The public storefront: checkout and the customer's view of an order.
//! No staff authentication; the customer proves who they are with the order
//! access token that checkout returns.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use consign_app::checkout::Checkout;
use consign_db::orders::checkout::{self, RequestedLine};
use consign_db::orders::{self, Order};
use consign_db::{DbError, Page, Scope, orders::scope_for_access_token, products, stock};
use consign_domain::OrderId;
use consign_domain::order::{Address, Customer};
use consign_payments::ProviderKind;
use garde::Validate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::rate_limit::{Bucket, ip_key};
use crate::auth::tokens;
use crate::error::{AppError, AppResult, FieldError, Problem};
use crate::extract::{AppJson, AppPath, AppQuery, Caller, PageQuery};
use crate::middleware::idempotency::IdempotentRequest;
use crate::payment_instructions::PaymentInstructions;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(catalog)).routes(routes!(checkout)).routes(routes!(customer_order))
}

/// A variant as shoppers see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct StorefrontVariant {
    /// Id.
    pub id: consign_domain::VariantId,
    /// SKU, what checkout takes.
    pub sku: String,
    /// Title.
    pub title: String,
    /// Option values, such as `{"size": "L"}`.
    pub options: std::collections::BTreeMap<String, String>,
    /// Price.
    pub price: consign_domain::Money,
    /// Units the brand's warehouses can sell now.
    pub available: i64,
}

/// A product as shoppers see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct StorefrontProduct {
    /// Id.
    pub id: consign_domain::ProductId,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// When it goes on sale, for an upcoming drop.
    pub available_at: Option<consign_domain::Timestamp>,
    /// Whether anyone may buy it now (early-access customers may buy a drop
    /// before then).
    pub on_sale: bool,
    /// Its variants with their availability.
    pub variants: Vec<StorefrontVariant>,
}

/// The brand's active products with live availability, newest first.
#[utoipa::path(get, path = "/storefront/{brand_slug}/products", tag = "storefront",
    params(("brand_slug" = String, Path, description = "The brand's slug"), PageQuery),
    responses((status = 200, body = Page<StorefrontProduct>), (status = 404, description = "No such brand", body = Problem)))]
async fn catalog(
    State(state): State<AppState>,
    AppPath(brand_slug): AppPath<String>,
    AppQuery(page): AppQuery<PageQuery>,
) -> AppResult<AppJson<Page<StorefrontProduct>>> {
    let brand = checkout::storefront_brand(&state.db, &brand_slug.to_ascii_lowercase()).await?;
    let products = products::active_for_storefront(&state.db, brand.id, &page.to_request()?).await?;
    let variant_ids: Vec<_> = products.data.iter().flat_map(|p| p.variants.iter().map(|v| v.id)).collect();
    let available = stock::available_by_variant(&state.db, brand.id, &variant_ids).await?;
    let now = consign_domain::Timestamp::now();
    Ok(AppJson(products.map(|entry| {
        StorefrontProduct {
            id: entry.product.id,
            on_sale: entry.product.available_at.is_none_or(|at| at <= now),
            title: entry.product.title,
            description: entry.product.description,
            available_at: entry.product.available_at,
            variants: entry
                .variants
                .into_iter()
                .map(|v| StorefrontVariant {
                    available: available.get(&v.id).copied().unwrap_or(0),
                    id: v.id,
                    sku: v.sku,
                    title: v.title,
                    options: v.options,
                    price: v.price,
                })
                .collect(),
        }
    })))
}

/// A line of a checkout.
#[derive(Debug, Deserialize, Validate, ToSchema)]
pub struct CheckoutLine {
    /// The variant's SKU.
    #[garde(length(chars, min = 1, max = 100))]
    pub sku: String,
    /// Units, 1 to 1000.
    #[garde(range(min = 1, max = 1000))]
    #[schema(minimum = 1, maximum = 1000)]
    pub quantity: i64,
}

/// The customer at checkout.
#[derive(Debug, Deserialize, Validate, ToSchema)]
pub struct CheckoutCustomer {
    /// Full name.
    #[garde(length(chars, min = 1, max = 200))]
    pub name: String,
    /// Email.
    #[garde(email, length(max = 254))]
    pub email: String,
    /// Phone.
    #[garde(inner(length(chars, min = 3, max = 32)))]
    pub phone: Option<String>,
}

/// `POST /storefront/{brand_slug}/checkout`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
pub struct CheckoutRequest {
    /// What to buy.
    #[garde(length(min = 1, max = 100), dive)]
    pub items: Vec<CheckoutLine>,
    /// Who buys.
    #[garde(dive)]
    pub customer: CheckoutCustomer,
    /// Where to ship.
    #[garde(skip)]
    pub shipping_address: Address,
    /// `manual` (bank transfer or cash), `stripe`, `razorpay` or `paypal`
    /// (when the brand has set the provider up).
    #[garde(skip)]
    pub payment_provider: String,
}

/// The answer to checkout.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckoutResponse {
    /// The order, `open` and `unpaid`, its stock held.
    pub order: Order,
    /// How to pay.
    pub payment: PaymentInstructions,
    /// Send as `Authorization: Bearer` to read this order and its messages.
    pub order_access_token: String,
}

/// Places an order. Stock is held until the brand's reservation TTL; an
/// unpaid order then expires and gives it back. So that nobody can hold a
/// drop that real customers want, checkouts are limited per client IP and
/// per customer email, one customer email may hold only a few unpaid orders
/// at a brand at once (429 with `Retry-After`: the seconds until the first
/// of them expires), and one order holds at most a configured number of
/// units (422).
#[utoipa::path(post, path = "/storefront/{brand_slug}/checkout", tag = "storefront", request_body = CheckoutRequest,
    params(("brand_slug" = String, Path, description = "The brand's slug"),
           ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses(
        (status = 201, description = "Order placed", body = CheckoutResponse),
        (status = 404, description = "No such brand", body = Problem),
        (status = 409, description = "insufficient_stock: the problem names each short SKU", body = Problem),
        (status = 422, description = "Invalid fields, unknown SKU, not for sale, too many units", body = Problem),
        (status = 429, description = "Too many checkouts from this address or for this email, or too many unpaid orders for this email; see Retry-After", body = Problem),
    ))]
async fn checkout(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    AppPath(brand_slug): AppPath<String>,
    idempotent: Option<axum::Extension<IdempotentRequest>>,
    AppJson(request): AppJson<CheckoutRequest>,
) -> AppResult<(StatusCode, AppJson<CheckoutResponse>)> {
    let mut problems: Vec<FieldError> = match request.validate() {
        Ok(()) => Vec::new(),
        Err(report) => match AppError::from(report) {
            AppError::Validation(errors) => errors,
            _ => Vec::new(),
        },
    };
    let limits = state.limiter.limits();
    let checkout = Checkout {
        lines: request.items.into_iter().map(|l| RequestedLine { sku: l.sku, quantity: l.quantity }).collect(),
        customer: Customer {
            name: request.customer.name,
            email: request.customer.email,
            phone: request.customer.phone,
        },
        shipping_address: request.shipping_address,
        payment_provider: request.payment_provider,
    }
    .normalized();
    let more = consign_app::checkout::problems(&checkout, limits.max_units_per_order);
    problems.extend(more.into_iter().map(|(field, message)| FieldError::new(field, message)));
    if !problems.is_empty() {
        return Err(AppError::Validation(problems));
    }
    let ip = crate::extract::client_ip(&state, &headers, peer);
    state.limiter.check(Bucket::CheckoutFromIp, &ip_key(ip)).await?;
    let brand = checkout::storefront_brand(&state.db, &brand_slug.to_ascii_lowercase()).await?;
    let email_key = format!("{}|{}", brand.id, checkout.customer.email);
    state.limiter.check(Bucket::CheckoutForEmail, &email_key).await?;
    let admitted =
        consign_app::checkout::admit(&state.db, &state.gateway, brand, checkout, limits.unpaid_orders_per_email)
            .await?;
    // With an idempotency key, a run after a failure on our side (the order
    // committed, the payment provider then failed) makes the same order id,
    // so it conflicts with the order placed instead of placing a second.
    let idempotent = idempotent.map(|axum::Extension(request)| request);
    let order_id = match &idempotent {
        Some(request) => request
            .stable_uuid("checkout")
            .to_string()
            .parse()
            .map_err(|_| AppError::Internal(anyhow::anyhow!("a UUID did not parse as an order id")))?,
        None => OrderId::new(),
    };
    let token = consign_app::tokens::order_access_token(&state.order_token_key, &order_id.to_string());
    // The key's claim, the order and (for a manual payment, whose answer is
    // known before the commit) the stored answer are one transaction.
    let mut tx = state.db.begin().await?;
    if let Some(idempotent) = &idempotent {
        idempotent.claim_in(&mut tx).await?;
    }
    let (order, customer) =
        consign_app::checkout::place_in(&mut tx, &admitted, order_id, tokens::sha256_hex(&token)).await?;
    if admitted.provider_kind() == ProviderKind::Manual {
        let payment = PaymentInstructions::manual(&order, admitted.brand());
        let response = CheckoutResponse { order, payment, order_access_token: token };
        if let Some(idempotent) = &idempotent {
            let body = serde_json::to_vec(&response).map_err(|error| AppError::Internal(error.into()))?;
            idempotent.store_in(&mut tx, &state, StatusCode::CREATED, &body).await?;
        }
        tx.commit().await?;
        return Ok((StatusCode::CREATED, AppJson(response)));
    }
    tx.commit().await?;
    // The order has committed; only now is the provider asked for a payment.
    let attempt = consign_app::checkout::start_payment(&state.db, &admitted, &order, &customer)
        .await?
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("a card provider started no payment")))?;
    let payment = PaymentInstructions::of_attempt(&attempt);
    Ok((StatusCode::CREATED, AppJson(CheckoutResponse { order, payment, order_access_token: token })))
}

/// `?token=` for the customer's order page.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TokenQuery {
    /// The order access token (or send it as a bearer token).
    pub token: Option<String>,
}

/// The customer's view of their order.
#[utoipa::path(get, path = "/storefront/orders/{id}", tag = "storefront",
    params(("id" = String, Path, description = "Order id"), TokenQuery),
    responses(
        (status = 200, description = "The order", body = Order),
        (status = 404, description = "No such order for this token", body = Problem),
    ))]
async fn customer_order(
    State(state): State<AppState>,
    caller: Option<Caller>,
    AppPath(order_id): AppPath<OrderId>,
    AppQuery(query): AppQuery<TokenQuery>,
) -> AppResult<AppJson<Order>> {
    let scope: Scope = match (query.token, caller) {
        (Some(token), _) => {
            scope_for_access_token(&state.db, &tokens::sha256_hex(&token)).await.map_err(|e| match e {
                DbError::NotFound => AppError::NotFound,
                other => other.into(),
            })?
        }
        (None, Some(caller)) => caller.scope().clone(),
        (None, None) => return Err(AppError::Unauthenticated("Send the order access token.")),
    };
    if scope.customer_order() != Some(order_id) {
        return Err(AppError::NotFound);
    }
    Ok(AppJson(orders::get(&state.db, &scope, order_id).await?))
}
