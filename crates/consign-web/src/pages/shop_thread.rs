//! The conversation on the customer's order page: the order's messages as
//! the customer may see them (never an internal note: `messages::list`
//! filters them in SQL for a customer scope), a form to write, and the
//! files of visible messages. Everything goes through the customer scope
//! of the order access token, exactly as `/api/v1/orders/{id}/messages`
//! with that token. The form carries the token in its body, which is also
//! what makes a forged post from another site impossible (it cannot know
//! it); the files are read with the order cookie (`shop_access.rs`).

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use consign_db::messages::threads;
use consign_db::messages::{self, NewMessage};
use consign_db::orders::Order;
use consign_db::{DbError, PageRequest, Scope};
use consign_domain::AttachmentId;
use consign_domain::messaging::{Channel, SenderRole};
use consign_domain::text::MessageBody;
use serde::Deserialize;

use super::PageError;
use super::orders::parse_id;
use super::shop::{TokenQuery, brand};
use super::shop_access::{customer_order, order_path, token_of};
use super::thread::{AttachmentLink, attachment_links};
use super::view;
use crate::AppState;
use crate::auth::rate_limit::Bucket;
use crate::pages::PageForm;

/// The customer's message routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/shop/{slug}/orders/{id}/messages", post(write))
        .route("/shop/{slug}/orders/{id}/attachments/{attachment_id}", get(attachment))
}

/// A message as the customer sees it.
pub struct CustomerMessage {
    pub(crate) id: String,
    pub(crate) sender: String,
    /// `customer`, `staff` or `system`: the style of the bubble.
    pub(crate) kind: &'static str,
    pub(crate) body: String,
    pub(crate) at: view::When,
    pub(crate) attachments: Vec<AttachmentLink>,
}

/// The conversation part of the order page.
pub struct CustomerThread {
    pub(crate) messages: Vec<CustomerMessage>,
    /// Where the form posts.
    pub(crate) action: String,
}

/// The order's visible messages, oldest first; marks the brand's replies
/// read by the customer when some were unread.
pub async fn load(
    state: &AppState,
    scope: &Scope,
    order: &Order,
    brand_name: &str,
    slug: &str,
) -> Result<CustomerThread, PageError> {
    let mut list = Vec::new();
    let mut after = None;
    loop {
        let found = messages::list(&state.db, scope, order.id, &PageRequest { limit: 200, after }).await?;
        list.extend(found.data);
        match found.next_cursor {
            Some(cursor) => after = Some(cursor),
            None => break,
        }
    }
    if let Some(last) = list.last() {
        match threads::get(&state.db, scope, order.id).await {
            Ok(thread) if thread.unread > 0 => {
                messages::mark_read(&state.db, scope, order.id, last.id).await?;
            }
            Ok(_) | Err(DbError::NotFound) => {}
            Err(error) => return Err(error.into()),
        }
    }
    let base = format!("/shop/{slug}/orders/{}/attachments/", order.id);
    let messages = list
        .iter()
        .map(|m| CustomerMessage {
            id: m.id.to_string(),
            sender: match m.sender_role {
                SenderRole::Customer => "You".to_owned(),
                SenderRole::System => "Order update".to_owned(),
                _ => brand_name.to_owned(),
            },
            kind: match m.sender_role {
                SenderRole::Customer => "customer",
                SenderRole::System => "system",
                _ => "staff",
            },
            body: m.body.clone(),
            at: view::time(m.created_at),
            attachments: attachment_links(m, &base),
        })
        .collect();
    Ok(CustomerThread { messages, action: format!("/shop/{slug}/orders/{}/messages", order.id) })
}

/// The customer's message form.
#[derive(Deserialize)]
pub struct WriteForm {
    token: String,
    body: String,
}

/// `POST /shop/{slug}/orders/{id}/messages`: the customer writes in the
/// app; back to the order page, at the conversation.
pub async fn write(
    State(state): State<AppState>,
    Path((slug, id)): Path<(String, String)>,
    PageForm(form): PageForm<WriteForm>,
) -> Result<Response, PageError> {
    let (brand, _) = brand(&state, &slug).await?;
    let token = form.token.trim();
    let (order, scope) = customer_order(&state, &brand, &id, Some(token)).await?;
    let body = MessageBody::parse(&form.body).map_err(|error| PageError::Refused(format!("Your message {error}.")))?;
    state.limiter.check(Bucket::MessagePost, &format!("order:{}", order.id)).await?;
    let new =
        NewMessage { body: body.into_string(), channel: Channel::InApp, internal: false, attachment_ids: Vec::new() };
    messages::post(&state.db, &scope, order.id, new).await?;
    let to = format!("{}?sent=1#messages-h", order_path(&brand.slug, order.id));
    Ok(Redirect::to(&to).into_response())
}

/// `GET /shop/{slug}/orders/{id}/attachments/{attachment_id}`: a file of a
/// message the customer can see, with the order cookie (or `?token=`).
pub async fn attachment(
    State(state): State<AppState>,
    Path((slug, id, attachment_id)): Path<(String, String, String)>,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
) -> Result<Response, PageError> {
    let (brand, _) = brand(&state, &slug).await?;
    let token = token_of(&headers, query.token.as_deref());
    let (order, scope) = customer_order(&state, &brand, &id, token.as_deref()).await?;
    let attachment_id: AttachmentId = parse_id(&attachment_id)?;
    let file = messages::attachments::get(&state.db, &scope, attachment_id).await?;
    if file.order_id != order.id {
        return Err(PageError::NotFound);
    }
    let caller = crate::extract::Caller(std::sync::Arc::new(scope));
    Ok(crate::files::file_response(&state, &caller, attachment_id).await?)
}
