//! Order messaging: the thread of an order (staff, or the customer with its
//! order access token), read receipts, thread status and assignment, the
//! staff inbox, search, unread counts and canned responses.

use axum::extract::State;
use axum::http::StatusCode;
use consign_app::messaging::{self, Post};
use consign_db::Page;
use consign_db::messages::canned::{self, CannedResponse};
use consign_db::messages::search::{self, SearchFilter};
use consign_db::messages::threads::{self, ResponseTimes, Thread, ThreadFilter, UnreadSummary};
use consign_db::messages::{self, Message};
use consign_domain::messaging::{Channel, SenderRole, ThreadStatus};
use consign_domain::policy::Action;
use consign_domain::text::MessageBody;
use consign_domain::{AttachmentId, BrandId, CannedResponseId, MessageId, OrderId, Timestamp, UserId};
use garde::Validate;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::actions::brand_messages;
use crate::auth::rate_limit::{Bucket, caller_key};
use crate::error::{AppError, AppResult, Problem, text_rule};
use crate::extract::{AppJson, AppPath, AppQuery, Caller, PageQuery};
use crate::middleware::idempotency::IdempotentRequest;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_messages, post_message))
        .routes(routes!(mark_read))
        .routes(routes!(get_thread))
        .routes(routes!(close_thread))
        .routes(routes!(reopen_thread))
        .routes(routes!(assign_thread))
        .routes(routes!(list_threads))
        .routes(routes!(search_messages))
        .routes(routes!(unread))
        .routes(routes!(list_canned, create_canned))
        .routes(routes!(response_times))
}

/// Checks the caller on the order's thread (`consign_app::messaging`).
async fn authorize(state: &AppState, caller: &Caller, order_id: OrderId, action: Action) -> AppResult<()> {
    Ok(messaging::authorize(&state.db, caller.scope(), order_id, action).await?)
}

/// The order's messages, oldest first. Customers never see internal notes.
#[utoipa::path(get, path = "/orders/{id}/messages", tag = "messages",
    params(("id" = String, Path, description = "Order id"), PageQuery),
    responses((status = 200, description = "A page of messages", body = Page<Message>), (status = 404, body = Problem)),
    security(("bearer" = [])))]
async fn list_messages(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(order_id): AppPath<OrderId>,
    AppQuery(page): AppQuery<PageQuery>,
) -> AppResult<AppJson<Page<Message>>> {
    authorize(&state, &caller, order_id, Action::ViewCommerce).await?;
    Ok(AppJson(messages::list(&state.db, caller.scope(), order_id, &page.to_request()?).await?))
}

/// A message's text may be blank: a canned response or attachments stand
/// in for it. Written, it is a [`MessageBody`]; storage checks the text as
/// sent, the canned response's included.
fn is_body(body: &str, _: &()) -> garde::Result {
    if body.trim().is_empty() { Ok(()) } else { text_rule::<MessageBody>(body, &()) }
}

/// `POST /orders/{id}/messages`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostMessageRequest {
    /// The text. Optional when a canned response or attachments are given.
    #[garde(custom(is_body))]
    #[serde(default)]
    pub body: String,
    /// Staff: where the reply goes out (default: the channel the customer
    /// used last, else `in_app`). Customers write `in_app`.
    #[garde(skip)]
    pub channel: Option<Channel>,
    /// A staff-only note.
    #[garde(skip)]
    #[serde(default)]
    pub internal: bool,
    /// Files uploaded to this order with `POST /orders/{id}/attachments`.
    #[garde(length(max = 10))]
    #[serde(default)]
    pub attachment_ids: Vec<AttachmentId>,
    /// Staff: a saved reply of the brand, filled in for this order and
    /// put before `body`.
    #[garde(skip)]
    pub canned_response_id: Option<CannedResponseId>,
}

/// Posts a message as the caller: a customer, or staff (reply or internal
/// note).
#[utoipa::path(post, path = "/orders/{id}/messages", tag = "messages", request_body = PostMessageRequest,
    params(("id" = String, Path, description = "Order id")),
    responses((status = 201, body = Message), (status = 404, body = Problem), (status = 422, body = Problem),
              (status = 429, description = "Too many messages from this caller; see Retry-After", body = Problem)),
    security(("bearer" = [])))]
async fn post_message(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(order_id): AppPath<OrderId>,
    idempotent: Option<axum::Extension<IdempotentRequest>>,
    AppJson(request): AppJson<PostMessageRequest>,
) -> AppResult<(StatusCode, AppJson<Message>)> {
    let may = messaging::may_post(&state.db, caller.scope(), order_id).await?;
    state.limiter.check(Bucket::MessagePost, &caller_key(&caller)).await?;
    request.validate()?;
    let post = Post {
        body: request.body,
        channel: request.channel,
        internal: request.internal,
        attachment_ids: request.attachment_ids,
        canned_response_id: request.canned_response_id,
    };
    let draft = messaging::draft(&state.db, caller.scope(), may, post).await?;
    // The key's claim, the message and the stored answer are one commit,
    // alone: a post locks only its own thread (see `Db::begin_alone`).
    let idempotent = idempotent.map(|axum::Extension(request)| request);
    let mut tx = state.db.begin_alone().await?;
    if let Some(idempotent) = &idempotent {
        idempotent.claim_in(&mut tx).await?;
    }
    let message = messaging::post_in(&mut tx, draft).await?;
    if let Some(idempotent) = &idempotent {
        let body = serde_json::to_vec(&message).map_err(|error| AppError::Internal(error.into()))?;
        idempotent.store_in(&mut tx, &state, StatusCode::CREATED, &body).await?;
    }
    tx.commit().await?;
    Ok((StatusCode::CREATED, AppJson(message)))
}

/// Marks the message, and every earlier one the caller can see, as read by
/// the caller.
#[utoipa::path(post, path = "/orders/{id}/messages/{message_id}/read", tag = "messages",
    params(("id" = String, Path, description = "Order id"), ("message_id" = String, Path, description = "Message id")),
    responses((status = 200, description = "The message with its receipts", body = Message), (status = 404, body = Problem)),
    security(("bearer" = [])))]
async fn mark_read(
    State(state): State<AppState>,
    caller: Caller,
    AppPath((order_id, message_id)): AppPath<(OrderId, MessageId)>,
) -> AppResult<AppJson<Message>> {
    authorize(&state, &caller, order_id, Action::ViewCommerce).await?;
    Ok(AppJson(messages::mark_read(&state.db, caller.scope(), order_id, message_id).await?))
}

/// The order's thread: status, assignee, response times and the caller's
/// unread count. 404 until the first message.
#[utoipa::path(get, path = "/orders/{id}/thread", tag = "messages",
    params(("id" = String, Path, description = "Order id")),
    responses((status = 200, body = Thread), (status = 404, body = Problem)),
    security(("bearer" = [])))]
async fn get_thread(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(order_id): AppPath<OrderId>,
) -> AppResult<AppJson<Thread>> {
    authorize(&state, &caller, order_id, Action::ViewCommerce).await?;
    Ok(AppJson(threads::get(&state.db, caller.scope(), order_id).await?))
}

/// Closes the thread (staff). A new customer message reopens it.
#[utoipa::path(post, path = "/orders/{id}/thread/close", tag = "messages",
    params(("id" = String, Path, description = "Order id")),
    responses((status = 200, body = Thread), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
async fn close_thread(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(order_id): AppPath<OrderId>,
) -> AppResult<AppJson<Thread>> {
    authorize(&state, &caller, order_id, Action::EditCommerce).await?;
    Ok(AppJson(threads::close(&state.db, caller.scope(), order_id).await?))
}

/// Reopens a closed thread (staff).
#[utoipa::path(post, path = "/orders/{id}/thread/reopen", tag = "messages",
    params(("id" = String, Path, description = "Order id")),
    responses((status = 200, body = Thread), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
async fn reopen_thread(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(order_id): AppPath<OrderId>,
) -> AppResult<AppJson<Thread>> {
    authorize(&state, &caller, order_id, Action::EditCommerce).await?;
    Ok(AppJson(threads::reopen(&state.db, caller.scope(), order_id).await?))
}

/// `POST /orders/{id}/thread/assign`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignRequest {
    /// A staff member who sees the brand, or null to unassign.
    pub assignee_id: Option<UserId>,
}

/// Assigns the thread to a staff member, or to no one.
#[utoipa::path(post, path = "/orders/{id}/thread/assign", tag = "messages", request_body = AssignRequest,
    params(("id" = String, Path, description = "Order id")),
    responses((status = 200, body = Thread), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn assign_thread(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(order_id): AppPath<OrderId>,
    AppJson(request): AppJson<AssignRequest>,
) -> AppResult<AppJson<Thread>> {
    authorize(&state, &caller, order_id, Action::EditCommerce).await?;
    Ok(AppJson(threads::assign(&state.db, caller.scope(), order_id, request.assignee_id).await?))
}

/// Filters of `GET /threads`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ThreadQuery {
    /// One brand.
    pub brand_id: Option<BrandId>,
    /// `open` or `closed`.
    pub status: Option<ThreadStatus>,
    /// `me`, `none`, or a user id.
    pub assigned_to: Option<String>,
    /// Only threads with messages the caller has not read.
    pub unread: Option<bool>,
    /// The channel the customer used last.
    pub channel: Option<Channel>,
    /// Rows per page, 1 to 200.
    pub limit: Option<u32>,
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// The staff inbox: threads of the brands the caller sees, newest first.
#[utoipa::path(get, path = "/threads", tag = "messages", params(ThreadQuery),
    responses((status = 200, description = "A page of threads", body = Page<Thread>), (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn list_threads(
    State(state): State<AppState>,
    caller: Caller,
    AppQuery(query): AppQuery<ThreadQuery>,
) -> AppResult<AppJson<Page<Thread>>> {
    if let Some(brand_id) = query.brand_id {
        caller.authorize_brand(Action::ViewCommerce, brand_id)?;
    }
    let (assignee_id, unassigned) = match query.assigned_to.as_deref() {
        None => (None, false),
        Some("none") => (None, true),
        Some("me") => {
            (Some(caller.scope().user_id().ok_or_else(|| AppError::field("assigned_to", "`me` needs a user"))?), false)
        }
        Some(id) => {
            (Some(id.parse().map_err(|_| AppError::field("assigned_to", "must be me, none or a user id"))?), false)
        }
    };
    let filter = ThreadFilter {
        brand_id: query.brand_id,
        status: query.status,
        assignee_id,
        unassigned,
        unread: query.unread.unwrap_or(false),
        channel: query.channel,
    };
    let page = PageQuery { limit: query.limit, cursor: query.cursor }.to_request()?;
    Ok(AppJson(threads::list(&state.db, caller.scope(), &filter, &page).await?))
}

/// Filters of `GET /messages/search`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Words that must all appear (stemmed: "shipping" finds "shipped").
    pub q: Option<String>,
    /// `open` or `closed`.
    pub thread_status: Option<ThreadStatus>,
    /// Only messages the caller has not read.
    pub unread: Option<bool>,
    /// `in_app`, `email`, `whatsapp`, `sms`.
    pub channel: Option<Channel>,
    /// `customer`, `brand`, `threepl`, `platform`, `system`.
    pub sender_role: Option<SenderRole>,
    /// One brand.
    pub brand_id: Option<BrandId>,
    /// One order.
    pub order_id: Option<OrderId>,
    /// Rows per page, 1 to 200.
    pub limit: Option<u32>,
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// Searches the messages the caller may see, newest first.
#[utoipa::path(get, path = "/messages/search", tag = "messages", params(SearchQuery),
    responses((status = 200, description = "A page of messages", body = Page<Message>), (status = 422, body = Problem),
              (status = 429, description = "Too many searches from this caller; see Retry-After", body = Problem)),
    security(("bearer" = [])))]
async fn search_messages(
    State(state): State<AppState>,
    caller: Caller,
    AppQuery(query): AppQuery<SearchQuery>,
) -> AppResult<AppJson<Page<Message>>> {
    if let Some(brand_id) = query.brand_id
        && caller.scope().customer_order().is_none()
    {
        caller.authorize_brand(Action::ViewCommerce, brand_id)?;
    }
    let filter = SearchFilter {
        q: query.q,
        thread_status: query.thread_status,
        unread: query.unread.unwrap_or(false),
        channel: query.channel,
        sender_role: query.sender_role,
        brand_id: query.brand_id,
        order_id: query.order_id,
    };
    let page = PageQuery { limit: query.limit, cursor: query.cursor }.to_request()?;
    state.limiter.check(Bucket::Search, &caller_key(&caller)).await?;
    Ok(AppJson(search::search(&state.db, caller.scope(), &filter, &page).await?))
}

/// What the caller has not read yet (staff: customer messages across their
/// brands; a customer: replies on its order).
#[utoipa::path(get, path = "/messages/unread", tag = "messages",
    responses((status = 200, body = UnreadSummary)),
    security(("bearer" = [])))]
async fn unread(State(state): State<AppState>, caller: Caller) -> AppResult<AppJson<UnreadSummary>> {
    Ok(AppJson(threads::unread_summary(&state.db, caller.scope()).await?))
}

/// A brand's canned responses, by name.
#[utoipa::path(get, path = "/brands/{id}/canned-responses", tag = "messages",
    params(("id" = String, Path, description = "Brand id"), PageQuery),
    responses((status = 200, description = "A page of canned responses", body = Page<CannedResponse>), (status = 404, body = Problem)),
    security(("bearer" = [])))]
async fn list_canned(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(brand_id): AppPath<BrandId>,
    AppQuery(page): AppQuery<PageQuery>,
) -> AppResult<AppJson<Page<CannedResponse>>> {
    caller.authorize_brand(Action::ViewCommerce, brand_id)?;
    let rows = canned::list(&state.db, caller.scope(), brand_id).await?;
    Ok(AppJson(page.page_of(rows, |canned| canned.name.clone())?))
}

/// `POST /brands/{id}/canned-responses`. The fields are checked by the
/// use case the brand's messages page shares (`actions::brand_messages`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CannedRequest {
    /// A short name, unique per brand.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// The text; placeholders: `{{order.number}}`, `{{customer.name}}`,
    /// `{{customer.email}}`, `{{tracking.url}}`, `{{brand.name}}`.
    #[schema(min_length = 1, max_length = 5000)]
    pub body: String,
}

/// Saves a canned response for the brand (brand admins).
#[utoipa::path(post, path = "/brands/{id}/canned-responses", tag = "messages", request_body = CannedRequest,
    params(("id" = String, Path, description = "Brand id")),
    responses((status = 201, body = CannedResponse), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn create_canned(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(brand_id): AppPath<BrandId>,
    AppJson(request): AppJson<CannedRequest>,
) -> AppResult<(StatusCode, AppJson<CannedResponse>)> {
    let canned = brand_messages::create_canned(&state, &caller, brand_id, &request.name, &request.body).await?;
    Ok((StatusCode::CREATED, AppJson(canned)))
}

/// Period of `GET /analytics/response-times`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PeriodQuery {
    /// One brand (default: every brand the caller sees).
    pub brand_id: Option<BrandId>,
    /// RFC 3339 start (default: 30 days ago).
    pub from: Option<String>,
    /// RFC 3339 end, exclusive (default: now).
    pub to: Option<String>,
}

/// First-response and resolution times of threads whose first customer
/// message falls in the period.
#[utoipa::path(get, path = "/analytics/response-times", tag = "messages", params(PeriodQuery),
    responses((status = 200, body = ResponseTimes), (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn response_times(
    State(state): State<AppState>,
    caller: Caller,
    AppQuery(query): AppQuery<PeriodQuery>,
) -> AppResult<AppJson<ResponseTimes>> {
    if let Some(brand_id) = query.brand_id {
        caller.authorize_brand(Action::ViewCommerce, brand_id)?;
    }
    let time = |field: &str, value: Option<&str>, default: Timestamp| -> AppResult<Timestamp> {
        match value {
            Some(v) => Timestamp::parse_rfc3339(v).ok_or_else(|| AppError::field(field, "must be an RFC 3339 time")),
            None => Ok(default),
        }
    };
    let now = Timestamp::now();
    let to = time("to", query.to.as_deref(), now)?;
    let from =
        time("from", query.from.as_deref(), Timestamp::from_micros(to.as_micros() - 30 * 24 * 3600 * 1_000_000))?;
    Ok(AppJson(threads::response_times(&state.db, caller.scope(), query.brand_id, from, to).await?))
}
