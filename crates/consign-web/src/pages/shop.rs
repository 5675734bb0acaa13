//! A brand's customer pages under `/shop/{slug}`, white-label: the brand's
//! name, logo and colours on every page. Product list and product page
//! (variant picker, availability refreshed live), a cart kept in the
//! browser, checkout (the page's script posts to the storefront API with an
//! `Idempotency-Key`, so a double click never makes two orders), the
//! confirmation page and the order page reached with the order access
//! token, with its conversation (`shop_thread.rs`) and live updates of
//! the order's state, shipments and messages.
//!
//! These pages are public; an order's pages need its token, checked exactly
//! as the API checks it (`orders::scope_for_access_token`), and the order
//! must belong to the brand of the URL.

use askama::Template;
use axum::Router;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use consign_db::brands::{self, BrandTheme};
use consign_db::orders::checkout::{self, StorefrontBrand};
use consign_db::orders::{self, Order};
use consign_db::{PageRequest, fulfillment, products, stock};
use consign_domain::status::OrderStatus;
use consign_domain::{ProductId, Timestamp};
use serde::Deserialize;

use super::shop_access::{customer_order, enter_with_link, order_path, token_of};
use super::shop_thread::CustomerThread;
use super::view::{self, filled};
use super::{PageError, render};
use crate::AppState;
use crate::auth::rate_limit::{Bucket, ip_key};
use crate::pages::PageForm;

/// The customer routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/shop/{slug}", get(catalog))
        .route("/shop/{slug}/products/{id}", get(product))
        .route("/shop/{slug}/products/{id}/availability", get(availability))
        .route("/shop/{slug}/cart", get(cart))
        .route("/shop/{slug}/cart/lines", get(cart_lines))
        .route("/shop/{slug}/checkout", get(checkout_page))
        .route("/shop/{slug}/orders/{id}/confirmation", get(confirmation))
        .route("/shop/{slug}/orders/{id}", get(tracking))
        .route("/shop/{slug}/order-lookup", get(lookup_page).post(lookup))
}

/// The brand frame of every customer page.
pub struct ShopChrome {
    /// The brand's name.
    pub name: String,
    /// Its slug, for links.
    pub slug: String,
    /// Its currency.
    pub currency: String,
    /// Logo and colours.
    pub theme: BrandTheme,
    /// The page title.
    pub title: String,
    /// The live socket of the page, if it has live parts.
    pub live_url: Option<String>,
}

pub(super) async fn brand(state: &AppState, slug: &str) -> Result<(StorefrontBrand, BrandTheme), PageError> {
    let brand = checkout::storefront_brand(&state.db, slug).await?;
    let theme = brands::theme(&state.db, brand.id).await?;
    Ok((brand, theme))
}

fn chrome(brand: &StorefrontBrand, theme: BrandTheme, title: impl Into<String>) -> ShopChrome {
    ShopChrome {
        name: brand.name.clone(),
        slug: brand.slug.clone(),
        currency: brand.currency.clone(),
        theme,
        title: title.into(),
        live_url: None,
    }
}

#[derive(Template)]
#[template(path = "shop/not_found.html")]
struct NotFoundPage {
    shop: ShopChrome,
    /// Whether order links can be sent (email and the public address are
    /// configured), so the lookup form is offered.
    lookup: bool,
}

/// Whether this installation can email a customer the link to their order.
fn can_send_links(state: &AppState) -> bool {
    state.config.channels.email.is_some() && state.config.channels.public_base_url.is_some()
}

/// The 404 page of a shop: in the brand's frame when `slug` names a brand,
/// else a plain page that links nowhere a customer cannot go.
pub async fn not_found(state: &AppState, slug: &str) -> Response {
    let page = match brand(state, &slug.to_lowercase()).await {
        Ok((brand, theme)) => {
            render(&NotFoundPage { shop: chrome(&brand, theme, "Page not found"), lookup: can_send_links(state) })
        }
        Err(PageError::NotFound) => Err(PageError::NotFound),
        Err(error) => return error.into_response(),
    };
    let mut response = match page {
        Ok(response) => response,
        Err(_) => super::plain_page(
            StatusCode::NOT_FOUND,
            "No shop here",
            "There is no shop at this address. Check the link you were given.",
            "",
        ),
    };
    *response.status_mut() = StatusCode::NOT_FOUND;
    response
}

#[derive(Template)]
#[template(path = "shop/order_lookup.html")]
struct LookupPage {
    shop: ShopChrome,
    /// The lookup was sent (its answer does not say whether it matched).
    sent: bool,
    /// Why the form was refused.
    error: Option<&'static str>,
    /// Whether order links can be sent at all.
    lookup: bool,
}

/// `?sent=1` after a lookup.
#[derive(Deserialize)]
pub struct LookupQuery {
    sent: Option<String>,
}

/// `GET /shop/{slug}/order-lookup`: find an order by its email and number.
pub async fn lookup_page(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    Query(query): Query<LookupQuery>,
) -> Result<Response, PageError> {
    let (brand, theme) = brand(&state, &slug).await?;
    let sent = filled(&query.sent).is_some();
    render(&LookupPage {
        shop: chrome(&brand, theme, "Find your order"),
        sent,
        error: None,
        lookup: can_send_links(&state),
    })
}

/// The order lookup form.
#[derive(Deserialize)]
pub struct LookupForm {
    email: String,
    number: String,
}

/// `POST /shop/{slug}/order-lookup`: sends the order's link to the order's
/// own email when the email and number match one of the brand's orders.
/// The answer is the same whether or not they did, and the form is rate
/// limited per address like the login, so it tells no one who ordered.
pub async fn lookup(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    PageForm(form): PageForm<LookupForm>,
) -> Result<Response, PageError> {
    let (brand, theme) = brand(&state, &slug).await?;
    if !can_send_links(&state) {
        return Err(PageError::NotFound);
    }
    let ip = crate::extract::client_ip(&state, &headers, peer);
    state.limiter.check(Bucket::OrderLookupFromIp, &ip_key(ip)).await?;
    let number = form.number.trim().trim_start_matches('#').parse::<i64>().ok();
    let email = form.email.trim();
    let back = format!("/shop/{}/order-lookup", brand.slug);
    let (Some(number), true) = (number, email.contains('@')) else {
        let error = "Give the email you ordered with and the order number from your confirmation, such as #1001.";
        let page = LookupPage {
            shop: chrome(&brand, theme, "Find your order"),
            sent: false,
            error: Some(error),
            lookup: true,
        };
        let mut response = render(&page)?;
        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
        return Ok(response);
    };
    orders::request_link(&state.db, brand.id, number, email).await?;
    Ok(axum::response::Redirect::to(&format!("{back}?sent=1")).into_response())
}

/// Puts a shop route's 404 (an unknown product or order) in the brand's frame.
pub async fn branded_not_found(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let slug = request.uri().path().strip_prefix("/shop/").and_then(|rest| rest.split('/').next()).map(str::to_owned);
    let response = next.run(request).await;
    match slug {
        Some(slug) if response.status() == StatusCode::NOT_FOUND => not_found(&state, &slug).await,
        _ => response,
    }
}

/// A product card.
pub struct ProductCard {
    id: ProductId,
    title: String,
    price: String,
    available: i64,
    on_sale: bool,
}

#[derive(Template)]
#[template(path = "shop/catalog.html")]
struct CatalogPage {
    shop: ShopChrome,
    products: Vec<ProductCard>,
    next: Option<String>,
}

/// `?cursor=`.
#[derive(Deserialize)]
pub struct CursorQuery {
    cursor: Option<String>,
}

/// `GET /shop/{slug}`.
pub async fn catalog(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    Query(query): Query<CursorQuery>,
) -> Result<Response, PageError> {
    let (brand, theme) = brand(&state, &slug).await?;
    let page = PageRequest { limit: 48, after: filled(&query.cursor).map(str::to_owned) };
    let found = products::active_for_storefront(&state.db, brand.id, &page).await?;
    let variant_ids: Vec<_> = found.data.iter().flat_map(|p| p.variants.iter().map(|v| v.id)).collect();
    let available = stock::available_by_variant(&state.db, brand.id, &variant_ids).await?;
    let now = Timestamp::now();
    let products = found
        .data
        .iter()
        .map(|entry| {
            let lowest = entry.variants.iter().min_by_key(|v| v.price.amount);
            ProductCard {
                id: entry.product.id,
                title: entry.product.title.clone(),
                price: lowest.map(|v| view::money(&v.price)).unwrap_or_default(),
                available: entry.variants.iter().map(|v| available.get(&v.id).copied().unwrap_or(0)).sum(),
                on_sale: entry.product.available_at.is_none_or(|at| at <= now),
            }
        })
        .collect();
    render(&CatalogPage { shop: chrome(&brand, theme, &brand.name), products, next: found.next_cursor })
}

/// A variant in the picker.
pub struct VariantChoice {
    sku: String,
    title: String,
    price: String,
    price_minor: i64,
    available: i64,
    /// "In stock", "Only 3 left", "Sold out".
    stock: String,
}

#[derive(Template)]
#[template(path = "shop/product.html")]
struct ProductPage {
    shop: ShopChrome,
    id: ProductId,
    title: String,
    description: String,
    on_sale: bool,
    available_from: Option<view::When>,
    /// What the variants differ by ("Size", "Size and colour"), for the
    /// picker's label; "Option" when they say nothing.
    option_label: String,
    variants: Vec<VariantChoice>,
}

#[derive(Template)]
#[template(path = "shop/availability.html")]
struct AvailabilityFragment {
    shop: ShopChrome,
    id: ProductId,
    variants: Vec<VariantChoice>,
}

async fn variants_of(
    state: &AppState,
    brand: &StorefrontBrand,
    product_id: &str,
) -> Result<(products::ProductWithVariants, Vec<VariantChoice>), PageError> {
    let product_id: ProductId = product_id.parse().map_err(|_| PageError::NotFound)?;
    let product = products::storefront_product(&state.db, brand.id, product_id).await?;
    let ids: Vec<_> = product.variants.iter().map(|v| v.id).collect();
    let available = stock::available_by_variant(&state.db, brand.id, &ids).await?;
    let choices = product
        .variants
        .iter()
        .map(|v| VariantChoice {
            sku: v.sku.clone(),
            title: v.title.clone(),
            price: view::money(&v.price),
            price_minor: v.price.amount,
            available: available.get(&v.id).copied().unwrap_or(0),
            stock: view::stock_words(available.get(&v.id).copied().unwrap_or(0)),
        })
        .collect();
    Ok((product, choices))
}

/// `GET /shop/{slug}/products/{id}`.
pub async fn product(
    State(state): State<AppState>,
    Path((slug, id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let (brand, theme) = brand(&state, &slug).await?;
    let (product, variants) = variants_of(&state, &brand, &id).await?;
    let now = Timestamp::now();
    render(&ProductPage {
        shop: chrome(&brand, theme, &product.product.title),
        id: product.product.id,
        title: product.product.title.clone(),
        description: product.product.description.clone(),
        on_sale: product.product.available_at.is_none_or(|at| at <= now),
        available_from: product.product.available_at.map(view::time),
        option_label: option_label(&product),
        variants,
    })
}

/// The names of the options a product's variants differ by, in words.
fn option_label(product: &products::ProductWithVariants) -> String {
    let mut names: Vec<String> = Vec::new();
    for variant in &product.variants {
        for name in variant.options.keys() {
            let name = view::words(name);
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    match names.as_slice() {
        [] => "Option".to_owned(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {}", rest.join(", "), last.to_lowercase()),
    }
}

/// `?sku=…` (repeated): the SKUs in a cart.
const MOST_CART_LINES: usize = 100;

/// A cart line as the server sees it now.
#[derive(serde::Serialize)]
pub struct CartLineNow {
    sku: String,
    title: String,
    price: i64,
    available: i64,
    stock: String,
    /// So few are left that the cart says so.
    few_left: bool,
    on_sale: bool,
}

/// `GET /shop/{slug}/cart/lines?sku=…&sku=…`: the current title, price and
/// stock of the cart's SKUs, so a cart kept in the browser shows today's
/// prices and never more than can be bought. An SKU no longer sold is left
/// out.
pub async fn cart_lines(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Result<Response, PageError> {
    let (brand, _) = brand(&state, &slug).await?;
    let skus: Vec<String> = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(key, _)| key == "sku")
        .map(|(_, sku)| sku.trim().to_uppercase())
        .filter(|sku| !sku.is_empty() && sku.len() <= 100)
        .take(MOST_CART_LINES)
        .collect();
    let variants = products::storefront_variants_by_sku(&state.db, brand.id, &skus).await?;
    let ids: Vec<_> = variants.iter().map(|v| v.variant_id).collect();
    let available = stock::available_by_variant(&state.db, brand.id, &ids).await?;
    let now = Timestamp::now();
    let lines: Vec<CartLineNow> = variants
        .into_iter()
        .map(|v| {
            let units = available.get(&v.variant_id).copied().unwrap_or(0);
            CartLineNow {
                title: format!("{} · {}", v.product_title, v.variant_title),
                price: v.price_amount,
                available: units,
                stock: view::stock_words(units),
                few_left: units <= view::FEW_LEFT,
                on_sale: v.available_at.is_none_or(|at| at <= now),
                sku: v.sku,
            }
        })
        .collect();
    let mut response = axum::Json(lines).into_response();
    response.headers_mut().insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `GET /shop/{slug}/products/{id}/availability`: the live part of the
/// product page.
pub async fn availability(
    State(state): State<AppState>,
    Path((slug, id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let (brand, theme) = brand(&state, &slug).await?;
    let (product, variants) = variants_of(&state, &brand, &id).await?;
    render(&AvailabilityFragment { shop: chrome(&brand, theme, ""), id: product.product.id, variants })
}

#[derive(Template)]
#[template(path = "shop/cart.html")]
struct CartPage {
    shop: ShopChrome,
}

/// `GET /shop/{slug}/cart`: the cart lives in the browser; the script draws it.
pub async fn cart(State(state): State<AppState>, Path(slug): Path<String>) -> Result<Response, PageError> {
    let (brand, theme) = brand(&state, &slug).await?;
    render(&CartPage { shop: chrome(&brand, theme, "Your cart") })
}

/// A payment provider offered at checkout.
pub struct ProviderChoice {
    code: &'static str,
    label: &'static str,
    help: &'static str,
}

#[derive(Template)]
#[template(path = "shop/checkout.html")]
struct CheckoutPage {
    shop: ShopChrome,
    providers: Vec<ProviderChoice>,
    /// Every country an address may be in, by name.
    countries: Vec<(&'static str, &'static str)>,
}

/// `GET /shop/{slug}/checkout`.
pub async fn checkout_page(State(state): State<AppState>, Path(slug): Path<String>) -> Result<Response, PageError> {
    let (brand, theme) = brand(&state, &slug).await?;
    let providers = vec![ProviderChoice {
        code: "manual",
        label: "Bank transfer",
        help: "You get the payment instructions on the next page; we ship once the payment arrives.",
    }];
    render(&CheckoutPage {
        shop: chrome(&brand, theme, "Checkout"),
        providers,
        countries: consign_domain::order::countries(),
    })
}

/// `?token=`: the order access token of a link (traded for the order
/// cookie at once, see `shop_access.rs`); `sent` after the customer wrote.
#[derive(Deserialize)]
pub struct TokenQuery {
    pub(super) token: Option<String>,
    sent: Option<String>,
}

/// An order line for the customer.
pub struct LineView {
    title: String,
    sku: String,
    quantity: i64,
    total: String,
}

fn lines(order: &Order) -> Vec<LineView> {
    order
        .items
        .iter()
        .map(|i| LineView {
            title: i.item.title.clone(),
            sku: i.item.sku.clone(),
            quantity: i.item.quantity,
            total: view::money(&i.total),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "shop/confirmation.html")]
struct ConfirmationPage {
    shop: ShopChrome,
    order: Order,
    lines: Vec<LineView>,
    total: String,
    instructions: Option<String>,
    tracking_link: String,
    hold_until: Option<view::When>,
}

/// `GET /shop/{slug}/orders/{id}/confirmation`, reached once with
/// `?token=` from the checkout.
pub async fn confirmation(
    State(state): State<AppState>,
    Path((slug, id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
) -> Result<Response, PageError> {
    let (brand, theme) = brand(&state, &slug).await?;
    let token = token_of(&headers, query.token.as_deref());
    let (order, _) = customer_order(&state, &brand, &id, token.as_deref()).await?;
    let order_path = order_path(&brand.slug, order.id);
    if let Some(token) = query.token {
        let page = format!("{order_path}/confirmation");
        return Ok(enter_with_link(&state, &headers, &order_path, &page, token.trim()));
    }
    let instructions = (order.payment_provider == "manual" && order.outstanding.amount > 0)
        .then(|| consign_app::checkout::bank_transfer_instructions(&order, &brand));
    render(&ConfirmationPage {
        shop: chrome(&brand, theme, format!("Order {} placed", order.number)),
        lines: lines(&order),
        total: view::money(&order.total),
        instructions,
        tracking_link: order_path,
        hold_until: order.reservation_expires_at.map(view::time),
        order,
    })
}

/// A shipment for the customer.
pub struct ShipmentLine {
    carrier: String,
    tracking_number: String,
    tracking_url: Option<String>,
    status: String,
    units: i64,
}

#[derive(Template)]
#[template(path = "shop/order.html")]
struct TrackingPage {
    shop: ShopChrome,
    order: Order,
    lines: Vec<LineView>,
    total: String,
    paid: String,
    outstanding: String,
    instructions: Option<String>,
    status_text: String,
    shipments: Vec<ShipmentLine>,
    thread: CustomerThread,
    /// The order token, carried by the message form.
    token: String,
    /// This page, which its live parts reload.
    self_url: String,
    /// The customer's message was just sent.
    sent: bool,
}

/// `GET /shop/{slug}/orders/{id}`: the customer's order page, reached once
/// with `?token=` from a link.
pub async fn tracking(
    State(state): State<AppState>,
    Path((slug, id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
) -> Result<Response, PageError> {
    let (brand, theme) = brand(&state, &slug).await?;
    let token = token_of(&headers, query.token.as_deref()).unwrap_or_default().trim().to_owned();
    let (order, scope) = customer_order(&state, &brand, &id, Some(&token)).await?;
    let order_path = order_path(&brand.slug, order.id);
    if query.token.is_some() {
        let page = if query.sent.is_some() { format!("{order_path}?sent=1") } else { order_path.clone() };
        return Ok(enter_with_link(&state, &headers, &order_path, &page, &token));
    }
    let shipments = fulfillment::shipments_for_order(&state.db, &scope, order.id).await?;
    let thread = super::shop_thread::load(&state, &scope, &order, &brand.name, &brand.slug).await?;
    let status_text = match order.status {
        OrderStatus::Cancelled => "This order was cancelled.".to_owned(),
        OrderStatus::Expired => "This order expired before it was paid.".to_owned(),
        OrderStatus::Completed => "Delivered. Thank you!".to_owned(),
        _ => format!(
            "{} · {}",
            view::words(order.payment_status.as_str()),
            view::words(order.fulfillment_status.as_str())
        ),
    };
    let instructions =
        (order.status == OrderStatus::Open && order.payment_provider == "manual" && order.outstanding.amount > 0)
            .then(|| consign_app::checkout::bank_transfer_instructions(&order, &brand));
    let mut shop = chrome(&brand, theme, format!("Order {}", order.number));
    // The customer's socket, with the order cookie as its credential.
    shop.live_url = Some(format!("{order_path}/live"));
    render(&TrackingPage {
        shop,
        thread,
        self_url: order_path,
        token,
        sent: query.sent.is_some(),
        lines: lines(&order),
        total: view::money(&order.total),
        paid: view::money(&order.paid),
        outstanding: view::money(&order.outstanding),
        instructions,
        status_text,
        shipments: shipments
            .iter()
            .map(|s| ShipmentLine {
                carrier: s.carrier.clone(),
                tracking_number: s.tracking_number.clone(),
                tracking_url: s.tracking_url.clone(),
                status: view::words(s.status.as_str()),
                units: s.items.iter().map(|i| i.quantity).sum(),
            })
            .collect(),
        order,
    })
}
