//! Staff order endpoints: list, detail, cancel, payments, address and item
//! edits, notes, timeline, fulfillment orders and shipments of an order.
//! A customer's order access token may read its own order here too.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use consign_app::order_commands::{self, ManualPayment};
use consign_db::fulfillment::{self, FulfillmentOrder, Shipment};
use consign_db::orders::{self, Note, Order, OrderFilter};
use consign_db::{Page, events};
use consign_domain::order::Address;
use consign_domain::policy::Action;
use consign_domain::status::{FulfillmentStatus, OrderStatus, PaymentStatus};
use consign_domain::text::SearchText;
use consign_domain::{BrandId, OrderId, Timestamp};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{AppError, AppResult, Problem};
use crate::extract::{AppJson, AppPath, AppQuery, Caller, IfMatch, PageQuery, etag, status_list};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_orders))
        .routes(routes!(get_order))
        .routes(routes!(cancel_order))
        .routes(routes!(record_payment))
        .routes(routes!(update_shipping_address))
        .routes(routes!(replace_items))
        .routes(routes!(add_note))
        .routes(routes!(rotate_access_token))
        .routes(routes!(timeline))
        .routes(routes!(fulfillment_orders))
        .routes(routes!(shipments))
}

/// Filters of `GET /orders`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrderQuery {
    /// One brand.
    pub brand_id: Option<BrandId>,
    /// `draft`, `open`, `completed`, `cancelled`, `expired`.
    pub status: Option<OrderStatus>,
    /// `unpaid`, `authorized`, `paid`, `partially_refunded`, `refunded`, `failed`.
    pub payment_status: Option<PaymentStatus>,
    /// One or more of `unfulfilled`, `partially_shipped`, `shipped`,
    /// `delivered`, `returned`, comma-separated (`unfulfilled,partially_shipped`:
    /// what is left to ship).
    pub fulfillment_status: Option<String>,
    /// Search: an order number (`1001` or `#1001`), part of the customer's
    /// name or email (any case), or a SKU or tracking number (whole).
    pub q: Option<String>,
    /// RFC 3339: placed at or after.
    pub created_after: Option<String>,
    /// RFC 3339: placed before.
    pub created_before: Option<String>,
    /// Rows per page, 1 to 200.
    pub limit: Option<u32>,
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
}

fn parse_time(field: &str, value: Option<&str>) -> AppResult<Option<Timestamp>> {
    value
        .map(|v| Timestamp::parse_rfc3339(v).ok_or_else(|| AppError::field(field, "must be an RFC 3339 time")))
        .transpose()
}

/// Orders of the brands the caller sees, newest first.
#[utoipa::path(get, path = "/orders", tag = "orders", params(OrderQuery),
    responses((status = 200, description = "A page of orders", body = Page<Order>), (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn list_orders(
    State(state): State<AppState>,
    caller: Caller,
    AppQuery(query): AppQuery<OrderQuery>,
) -> AppResult<AppJson<Page<Order>>> {
    if let Some(brand_id) = query.brand_id {
        caller.authorize_brand(Action::ViewCommerce, brand_id)?;
    }
    let q = query.q.as_deref().map(SearchText::parse).transpose().map_err(AppError::invalid("q"))?;
    let filter = OrderFilter {
        brand_id: query.brand_id,
        status: query.status,
        payment_status: query.payment_status,
        fulfillment_status: status_list::<FulfillmentStatus>(
            "fulfillment_status",
            query.fulfillment_status.as_deref(),
        )?,
        q: q.map(SearchText::into_string).filter(|q| !q.is_empty()),
        created_after: parse_time("created_after", query.created_after.as_deref())?,
        created_before: parse_time("created_before", query.created_before.as_deref())?,
    };
    let page = PageQuery { limit: query.limit, cursor: query.cursor }.to_request()?;
    Ok(AppJson(orders::list(&state.db, caller.scope(), &filter, &page).await?))
}

/// One order (staff, or the customer holding its access token).
#[utoipa::path(get, path = "/orders/{id}", tag = "orders", params(("id" = String, Path, description = "Order id")),
    responses((status = 200, description = "The order; ETag carries its version", body = Order), (status = 404, body = Problem)),
    security(("bearer" = [])))]
async fn get_order(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(order_id): AppPath<OrderId>,
) -> AppResult<impl IntoResponse> {
    let order = orders::get(&state.db, caller.scope(), order_id).await?;
    Ok((etag(order.version), AppJson(order)))
}

/// `POST /orders/{id}/cancel`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CancelRequest {
    /// Why.
    pub reason: String,
}

/// Cancels an order: releases its stock; records a refund due when paid.
#[utoipa::path(post, path = "/orders/{id}/cancel", tag = "orders", request_body = CancelRequest,
    params(("id" = String, Path, description = "Order id")),
    responses((status = 200, body = Order), (status = 404, body = Problem), (status = 409, description = "invalid_transition", body = Problem)),
    security(("bearer" = [])))]
async fn cancel_order(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(order_id): AppPath<OrderId>,
    AppJson(request): AppJson<CancelRequest>,
) -> AppResult<AppJson<Order>> {
    Ok(AppJson(order_commands::cancel(&state.db, caller.scope(), order_id, &request.reason).await?))
}

/// An amount: minor units, or `{amount, currency}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum AmountInput {
    /// Minor units in the order's currency.
    Minor(i64),
    /// Money.
    Money(consign_domain::Money),
}

/// `POST /orders/{id}/payments`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PaymentRequest {
    /// What was received.
    pub amount: AmountInput,
    /// `manual`.
    pub method: String,
    /// A bank reference or receipt number.
    pub reference: Option<String>,
}

/// Records a manual payment; the order is `paid` when payments cover its
/// total, and then gets fulfillment orders.
#[utoipa::path(post, path = "/orders/{id}/payments", tag = "orders", request_body = PaymentRequest,
    params(("id" = String, Path, description = "Order id")),
    responses((status = 201, body = Order), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn record_payment(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(order_id): AppPath<OrderId>,
    AppJson(request): AppJson<PaymentRequest>,
) -> AppResult<(StatusCode, AppJson<Order>)> {
    let (amount, currency) = match &request.amount {
        AmountInput::Minor(amount) => (*amount, None),
        AmountInput::Money(money) => (money.amount, Some(money.currency.as_str())),
    };
    let payment = ManualPayment { amount, currency, method: &request.method, reference: request.reference.as_deref() };
    let order = order_commands::record_payment(&state.db, caller.scope(), order_id, payment).await?;
    Ok((StatusCode::CREATED, AppJson(order)))
}

/// Replaces the shipping address of an order that has not shipped.
#[utoipa::path(patch, path = "/orders/{id}/shipping-address", tag = "orders", request_body = Address,
    params(("id" = String, Path, description = "Order id"), ("If-Match" = Option<String>, Header, description = "Expected version")),
    responses((status = 200, body = Order), (status = 404, body = Problem), (status = 409, body = Problem), (status = 412, body = Problem)),
    security(("bearer" = [])))]
async fn update_shipping_address(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(order_id): AppPath<OrderId>,
    IfMatch(version): IfMatch,
    AppJson(address): AppJson<Address>,
) -> AppResult<impl IntoResponse> {
    let order = order_commands::update_shipping_address(&state.db, caller.scope(), order_id, &address, version).await?;
    Ok((etag(order.version), AppJson(order)))
}

/// A line of an item edit.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ItemLine {
    /// SKU.
    pub sku: String,
    /// Units.
    pub quantity: i64,
}

/// `POST /orders/{id}/items`: the order's new list of items.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ReplaceItems {
    /// The new lines.
    pub items: Vec<ItemLine>,
}

/// Replaces an order's items: stock is held again and totals recomputed.
/// Refused once anything has shipped.
#[utoipa::path(post, path = "/orders/{id}/items", tag = "orders", request_body = ReplaceItems,
    params(("id" = String, Path, description = "Order id")),
    responses((status = 200, body = Order), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn replace_items(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(order_id): AppPath<OrderId>,
    AppJson(request): AppJson<ReplaceItems>,
) -> AppResult<AppJson<Order>> {
    let lines: Vec<(String, i64)> = request.items.into_iter().map(|line| (line.sku, line.quantity)).collect();
    Ok(AppJson(order_commands::replace_items(&state.db, caller.scope(), order_id, &lines).await?))
}

/// `POST /orders/{id}/notes`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NoteRequest {
    /// Text.
    pub body: String,
}

/// Adds a staff note.
#[utoipa::path(post, path = "/orders/{id}/notes", tag = "orders", request_body = NoteRequest,
    params(("id" = String, Path, description = "Order id")),
    responses((status = 201, body = Note), (status = 404, body = Problem)),
    security(("bearer" = [])))]
async fn add_note(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(order_id): AppPath<OrderId>,
    AppJson(request): AppJson<NoteRequest>,
) -> AppResult<(StatusCode, AppJson<Note>)> {
    let note = order_commands::add_note(&state.db, caller.scope(), order_id, &request.body).await?;
    Ok((StatusCode::CREATED, AppJson(note)))
}

/// A new order access token.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct AccessTokenResponse {
    /// The customer's new `cot_…` token; the previous one no longer works.
    pub order_access_token: String,
}

/// Rotates the customer's order access token (for example after a link
/// leaked): the old token, and every link carrying it, stops working at
/// once. Staff only. Tokens also lapse 90 days after the order closes.
#[utoipa::path(post, path = "/orders/{id}/access-token", tag = "orders",
    params(("id" = String, Path, description = "Order id")),
    responses((status = 200, body = AccessTokenResponse), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
async fn rotate_access_token(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(order_id): AppPath<OrderId>,
) -> AppResult<AppJson<AccessTokenResponse>> {
    if caller.scope().customer_order().is_some() {
        return Err(AppError::Forbidden);
    }
    order_commands::authorize(&state.db, caller.scope(), order_id, Action::EditCommerce).await?;
    let key = state.order_token_key.clone();
    let id = order_id.to_string();
    let token_of = |version| consign_app::tokens::order_access_token_version(&key, &id, version);
    let version = orders::rotate_access_token(&state.db, caller.scope(), order_id, |version| {
        crate::auth::tokens::sha256_hex(&token_of(version))
    })
    .await?;
    Ok(AppJson(AccessTokenResponse { order_access_token: token_of(version) }))
}

/// The order's domain events, oldest first, a page at a time. A customer's
/// order access token sees only customer-facing events and fields (see
/// `consign_db::events::customer_view`).
#[utoipa::path(get, path = "/orders/{id}/timeline", tag = "orders",
    params(("id" = String, Path, description = "Order id"), PageQuery),
    responses((status = 200, body = Page<events::Event>), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn timeline(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(order_id): AppPath<OrderId>,
    AppQuery(page): AppQuery<PageQuery>,
) -> AppResult<AppJson<Page<events::Event>>> {
    Ok(AppJson(events::timeline_page(&state.db, caller.scope(), order_id, &page.to_request()?).await?))
}

/// The order's fulfillment orders, one per warehouse.
#[utoipa::path(get, path = "/orders/{id}/fulfillment-orders", tag = "fulfillment",
    params(("id" = String, Path, description = "Order id"), PageQuery),
    responses((status = 200, description = "A page of fulfillment orders", body = Page<FulfillmentOrder>), (status = 404, body = Problem)),
    security(("bearer" = [])))]
async fn fulfillment_orders(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(order_id): AppPath<OrderId>,
    AppQuery(page): AppQuery<PageQuery>,
) -> AppResult<AppJson<Page<FulfillmentOrder>>> {
    let rows = fulfillment::for_order(&state.db, caller.scope(), order_id).await?;
    Ok(AppJson(page.page_of(rows, |fulfillment_order| fulfillment_order.id.to_string())?))
}

/// The order's shipments.
#[utoipa::path(get, path = "/orders/{id}/shipments", tag = "fulfillment",
    params(("id" = String, Path, description = "Order id"), PageQuery),
    responses((status = 200, description = "A page of shipments", body = Page<Shipment>), (status = 404, body = Problem)),
    security(("bearer" = [])))]
async fn shipments(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(order_id): AppPath<OrderId>,
    AppQuery(page): AppQuery<PageQuery>,
) -> AppResult<AppJson<Page<Shipment>>> {
    let rows = fulfillment::shipments_for_order(&state.db, caller.scope(), order_id).await?;
    Ok(AppJson(page.page_of(rows, |shipment| shipment.id.to_string())?))
}
