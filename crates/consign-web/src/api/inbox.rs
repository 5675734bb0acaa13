//! The unassigned inbox (inbound messages that matched no order) and the
//! delivery status of replies sent on email, WhatsApp or SMS.

use axum::extract::State;
use consign_db::Page;
use consign_db::deliveries::{self, Delivery};
use consign_db::inbound::inbox::{self, InboxItem};
use consign_db::messages::{self, Message};
use consign_domain::policy::Action;
use consign_domain::{BrandId, InboxItemId, MessageId, OrderId};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::actions;
use crate::error::{AppResult, Problem};
use crate::extract::{AppJson, AppPath, AppQuery, Caller, PageQuery};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_inbox)).routes(routes!(link_item)).routes(routes!(get_delivery))
}

/// Filters of `GET /inbox`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InboxQuery {
    /// One brand.
    pub brand_id: Option<BrandId>,
    /// Rows per page, 1 to 200.
    pub limit: Option<u32>,
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// Inbound messages that matched no order, newest first.
#[utoipa::path(get, path = "/inbox", tag = "messages", params(InboxQuery),
    responses((status = 200, description = "A page of inbox items", body = Page<InboxItem>), (status = 404, body = Problem)),
    security(("bearer" = [])))]
async fn list_inbox(
    State(state): State<AppState>,
    caller: Caller,
    AppQuery(query): AppQuery<InboxQuery>,
) -> AppResult<AppJson<Page<InboxItem>>> {
    if let Some(brand_id) = query.brand_id {
        caller.authorize_brand(Action::ViewCommerce, brand_id)?;
    }
    let page = PageQuery { limit: query.limit, cursor: query.cursor }.to_request()?;
    Ok(AppJson(inbox::list(&state.db, caller.scope(), query.brand_id, &page).await?))
}

/// `POST /inbox/{id}/link`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    /// An order of the brand that received the message.
    pub order_id: OrderId,
}

/// Posts an inbox item into an order's thread as the customer's message.
#[utoipa::path(post, path = "/inbox/{id}/link", tag = "messages", request_body = LinkRequest,
    params(("id" = String, Path, description = "Inbox item id")),
    responses((status = 200, body = Message), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn link_item(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(item_id): AppPath<InboxItemId>,
    AppJson(request): AppJson<LinkRequest>,
) -> AppResult<AppJson<Message>> {
    let brand_id = messages::order_brand(&state.db, caller.scope(), request.order_id).await?;
    caller.authorize_brand(Action::EditCommerce, brand_id)?;
    Ok(AppJson(actions::inbox::link(&state, caller.scope(), item_id, request.order_id).await?))
}

/// Where a reply sent on email, WhatsApp or SMS is: `queued`, `sent`,
/// `delivered` or `failed`.
#[utoipa::path(get, path = "/orders/{id}/messages/{message_id}/delivery", tag = "messages",
    params(("id" = String, Path, description = "Order id"), ("message_id" = String, Path, description = "Message id")),
    responses((status = 200, body = Delivery), (status = 404, body = Problem)),
    security(("bearer" = [])))]
async fn get_delivery(
    State(state): State<AppState>,
    caller: Caller,
    AppPath((order_id, message_id)): AppPath<(OrderId, MessageId)>,
) -> AppResult<AppJson<Delivery>> {
    let brand_id = messages::order_brand(&state.db, caller.scope(), order_id).await?;
    if caller.scope().customer_order().is_none() {
        caller.authorize_brand(Action::ViewCommerce, brand_id)?;
    }
    Ok(AppJson(deliveries::get(&state.db, caller.scope(), order_id, message_id).await?))
}
