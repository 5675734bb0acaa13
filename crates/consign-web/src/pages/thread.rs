//! The order's message thread on the staff order page: the messages in
//! order (sender role, channel, internal notes marked, attachment links),
//! and the forms to reply on a channel, add an internal note, insert a
//! canned response, assign the thread and close or reopen it.
//!
//! Authorization is the API's: the order is loaded through the caller's
//! scope (404 when invisible), reading needs `ViewCommerce` and every form
//! `EditCommerce` on the order's brand (`consign_app::order_commands::
//! authorize`); a reply or note is posted by the use case the API posts
//! with (`consign_app::messaging`). Opening the page marks the thread read for the
//! staff member. New messages arrive over the live socket (`live.js`),
//! which makes htmx reload the message list.

use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use consign_app::messaging::{self, Post};
use consign_app::order_commands;
use consign_db::deliveries::{self, Delivery};
use consign_db::messages::canned;
use consign_db::messages::threads::{self, Thread};
use consign_db::messages::{self, Message};
use consign_db::orders::Order;
use consign_db::{DbError, PageRequest, brands};
use consign_domain::messaging::{Channel, DeliveryStatus, SenderRole, ThreadStatus};
use consign_domain::policy::Action;
use consign_domain::{AttachmentId, CannedResponseId, OrderId, UserId};
use serde::Deserialize;
use serde_json::Value;

use super::orders::{order_path, parse_id};
use super::view::{self, filled};
use super::{PageError, Staff, settle};
use crate::AppState;
use crate::auth::rate_limit::{Bucket, caller_key};
use crate::error::AppError;
use crate::pages::PageForm;

/// The thread routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/orders/{id}/messages", post(post_message))
        .route("/admin/orders/{id}/thread/assign", post(assign))
        .route("/admin/orders/{id}/thread/close", post(close))
        .route("/admin/orders/{id}/thread/reopen", post(reopen))
        .route("/admin/attachments/{id}", get(attachment))
}

/// A file on a message.
pub struct AttachmentLink {
    /// Where it downloads.
    pub url: String,
    /// The name given at upload.
    pub name: String,
}

/// The files of a message, from its `attachments` snapshot; `base` is the
/// download path the id is appended to.
pub fn attachment_links(message: &Message, base: &str) -> Vec<AttachmentLink> {
    let Value::Array(files) = &message.attachments.0 else { return Vec::new() };
    files
        .iter()
        .filter_map(|file| {
            let id = file.get("id")?.as_str()?;
            let name = file.get("file_name").and_then(Value::as_str).unwrap_or("file");
            Some(AttachmentLink { url: format!("{base}{id}"), name: name.to_owned() })
        })
        .collect()
}

/// Who wrote a message, in words.
pub fn sender_words(role: SenderRole) -> &'static str {
    match role {
        SenderRole::Customer => "Customer",
        SenderRole::Brand => "Brand staff",
        SenderRole::Threepl => "3PL staff",
        SenderRole::Platform => "Platform",
        SenderRole::System => "Consign",
    }
}

/// A channel in words.
pub fn channel_words(channel: Channel) -> &'static str {
    match channel {
        Channel::InApp => "in the app",
        Channel::Email => "by email",
        Channel::Whatsapp => "on WhatsApp",
        Channel::Sms => "by SMS",
    }
}

/// A message as the staff page shows it.
pub struct MessageView {
    pub(crate) id: String,
    pub(crate) sender: &'static str,
    /// `customer`, `staff`, `system` or `note`: the style of the bubble.
    pub(crate) kind: &'static str,
    pub(crate) channel: &'static str,
    pub(crate) internal: bool,
    pub(crate) mine: bool,
    pub(crate) seen_by_customer: bool,
    /// How a reply sent on email, WhatsApp or SMS is getting there.
    pub(crate) delivery: Option<DeliveryView>,
    pub(crate) body: String,
    pub(crate) at: view::When,
    pub(crate) attachments: Vec<AttachmentLink>,
}

/// A delivery's state in words, with the badge style that goes with it.
pub struct DeliveryView {
    pub(crate) words: String,
    /// `good`, `warn` or `bad`.
    pub(crate) tone: &'static str,
}

impl DeliveryView {
    fn of(delivery: &Delivery) -> Self {
        let reason = delivery.last_error.as_deref().unwrap_or("no reason given");
        match delivery.status {
            DeliveryStatus::Queued if delivery.attempts > 0 => {
                Self { words: format!("Not sent yet, will retry: {reason}"), tone: "warn" }
            }
            DeliveryStatus::Queued => Self { words: "Queued".into(), tone: "warn" },
            DeliveryStatus::Sent => Self { words: "Sent".into(), tone: "good" },
            DeliveryStatus::Delivered => Self { words: "Delivered".into(), tone: "good" },
            DeliveryStatus::Failed => Self { words: format!("Failed: {reason}"), tone: "bad" },
        }
    }
}

/// A choice of a select.
pub struct SelectOption {
    pub(crate) value: String,
    pub(crate) label: String,
    pub(crate) selected: bool,
}

/// A canned response, filled in for this order.
pub struct CannedView {
    pub(crate) id: CannedResponseId,
    pub(crate) name: String,
    pub(crate) text: String,
}

/// Everything the thread part of the order page needs.
pub struct ThreadView {
    /// The order, for form actions.
    pub(crate) order_id: OrderId,
    /// Whether the thread exists (it opens with its first message).
    pub(crate) exists: bool,
    pub(crate) open: bool,
    pub(crate) status: String,
    pub(crate) assignee: String,
    pub(crate) messages: Vec<MessageView>,
    pub(crate) channels: Vec<SelectOption>,
    pub(crate) canned: Vec<CannedView>,
    pub(crate) staff: Vec<SelectOption>,
    pub(crate) may_write: bool,
}

/// Loads the thread of an order the caller may see (checked by the order
/// page before), and marks it read for the caller when something was
/// unread.
pub async fn load(state: &AppState, staff: &Staff, order: &Order) -> Result<ThreadView, PageError> {
    let scope = staff.caller.scope();
    let thread = match threads::get(&state.db, scope, order.id).await {
        Ok(thread) => Some(thread),
        Err(DbError::NotFound) => None,
        Err(error) => return Err(error.into()),
    };
    let mut list = all_messages(state, staff, order.id).await?;
    let deliveries = deliveries::of_order(&state.db, scope, order.id).await?;
    if let (Some(thread), Some(last)) = (&thread, list.last())
        && thread.unread > 0
    {
        messages::mark_read(&state.db, scope, order.id, last.id).await?;
    }
    let may_write = scope.grants().allows_on_brand(Action::EditCommerce, order.brand_id);
    // Everyone who sees the order sees who the thread is assigned to; the
    // canned responses are only for those who may reply.
    let people = brands::staff_of_brand(&state.db, scope, order.brand_id).await?;
    let mut canned_replies = Vec::new();
    if may_write {
        for reply in canned::list(&state.db, scope, order.brand_id).await? {
            let text = canned::render_for_order(&state.db, scope, reply.id, order.id).await?;
            canned_replies.push(CannedView { id: reply.id, name: reply.name, text });
        }
    }
    let me = scope.principal().actor_id();
    let assignee_id = thread.as_ref().and_then(|t| t.assignee_id);
    let assignee = match assignee_id {
        None => "No one".to_owned(),
        Some(id) => people
            .iter()
            .find(|p| p.id == id)
            .map(|p| if p.id.to_string() == me { format!("{} (you)", p.name) } else { p.name.clone() })
            .unwrap_or_else(|| "A former staff member".to_owned()),
    };
    // Only channels this installation can send on are offered (and the
    // phone ones only with a phone number); a reply defaults to the channel
    // the customer last wrote on, if it is one of them.
    let configured = &state.config.channels;
    let phone = order.customer.phone.is_some();
    let channels: Vec<Channel> = [
        (Channel::InApp, true),
        (Channel::Email, configured.email.is_some()),
        (Channel::Whatsapp, phone && configured.whatsapp.is_some()),
        (Channel::Sms, phone && configured.twilio.is_some()),
    ]
    .into_iter()
    .filter_map(|(channel, offered)| offered.then_some(channel))
    .collect();
    let default_channel = thread
        .as_ref()
        .and_then(|t| t.last_customer_channel)
        .filter(|c| channels.contains(c))
        .unwrap_or(Channel::InApp);
    // Only the customer's receipts matter here: a reply shows "seen" once
    // the customer has read it.
    list.iter_mut().for_each(|m| m.read_by.retain(|r| r.role == SenderRole::Customer));
    Ok(ThreadView {
        order_id: order.id,
        exists: thread.is_some(),
        open: thread.as_ref().is_none_or(|t: &Thread| t.status == ThreadStatus::Open),
        status: thread.as_ref().map(|t| view::words(t.status.as_str())).unwrap_or_else(|| "No messages yet".into()),
        assignee,
        messages: list
            .iter()
            .map(|m| {
                let delivery = deliveries.iter().find(|d| d.message_id == m.id).map(DeliveryView::of);
                MessageView { delivery, ..message_view(m, &me) }
            })
            .collect(),
        channels: channels
            .into_iter()
            .map(|c| SelectOption {
                value: c.as_str().to_owned(),
                label: format!("Reply {}", channel_words(c)),
                selected: c == default_channel,
            })
            .collect(),
        canned: canned_replies,
        staff: std::iter::once(SelectOption {
            value: String::new(),
            label: "No one".into(),
            selected: assignee_id.is_none(),
        })
        .chain(people.iter().map(|p| SelectOption {
            value: p.id.to_string(),
            label: format!("{} <{}>", p.name, p.email),
            selected: Some(p.id) == assignee_id,
        }))
        .collect(),
        may_write,
    })
}

/// Every message of the thread, oldest first (pages of 200 until the end).
async fn all_messages(state: &AppState, staff: &Staff, order_id: OrderId) -> Result<Vec<Message>, PageError> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = PageRequest { limit: 200, after };
        let found = messages::list(&state.db, staff.caller.scope(), order_id, &page).await?;
        all.extend(found.data);
        match found.next_cursor {
            Some(cursor) => after = Some(cursor),
            None => return Ok(all),
        }
    }
}

fn message_view(message: &Message, me: &str) -> MessageView {
    let kind = if message.internal {
        "note"
    } else {
        match message.sender_role {
            SenderRole::Customer => "customer",
            SenderRole::System => "system",
            _ => "staff",
        }
    };
    MessageView {
        id: message.id.to_string(),
        sender: sender_words(message.sender_role),
        kind,
        channel: channel_words(message.channel),
        internal: message.internal,
        mine: message.sender_id.as_deref() == Some(me),
        seen_by_customer: message.sender_role.is_staff() && !message.read_by.is_empty(),
        delivery: None,
        body: message.body.clone(),
        at: view::time(message.created_at),
        attachments: attachment_links(message, "/admin/attachments/"),
    }
}

/// The reply and note form: `kind` is `reply` or `note`.
#[derive(Deserialize)]
pub struct MessageForm {
    kind: String,
    body: String,
    channel: Option<String>,
    canned_response_id: Option<String>,
}

/// `POST /admin/orders/{id}/messages`: a reply to the customer on the chosen
/// channel (a canned response, filled in, goes before the text), or an
/// internal note.
pub async fn post_message(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    PageForm(form): PageForm<MessageForm>,
) -> Result<Response, PageError> {
    let order_id: OrderId = parse_id(&id)?;
    let internal = form.kind == "note";
    let result = async {
        let scope = staff.caller.scope();
        let may = messaging::may_post(&state.db, scope, order_id).await?;
        state.limiter.check(Bucket::MessagePost, &caller_key(&staff.caller)).await?;
        let canned_response_id: Option<CannedResponseId> = filled(&form.canned_response_id)
            .filter(|_| !internal)
            .map(|id| id.parse().map_err(|_| AppError::field("canned_response", "no such canned response")))
            .transpose()?;
        let channel: Option<Channel> = if internal {
            None
        } else {
            let channel = filled(&form.channel).unwrap_or("in_app");
            Some(channel.parse().map_err(|_| AppError::field("channel", "is not one of the choices"))?)
        };
        let post = Post {
            body: form.body.trim().to_owned(),
            channel,
            internal,
            attachment_ids: Vec::new(),
            canned_response_id,
        };
        messaging::post(&state.db, scope, may, post)
            .await
            .map_err(|error| error.renamed("body", "message").renamed("canned_response_id", "canned_response").into())
    }
    .await;
    let done = match &result {
        Ok(message) if message.internal => "Internal note added to the thread.".to_owned(),
        Ok(message) if message.channel == Channel::InApp => "Reply posted to the customer's order page.".to_owned(),
        // Sending happens after the answer: the thread shows how it went.
        Ok(message) => format!("Reply queued to go {}.", channel_words(message.channel)),
        Err(_) => String::new(),
    };
    settle(result, &format!("{}#thread-h", order_path(order_id)), done)
}

/// The assign form: a user id, or empty for no one.
#[derive(Deserialize)]
pub struct AssignForm {
    assignee_id: Option<String>,
}

/// `POST /admin/orders/{id}/thread/assign`.
pub async fn assign(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    PageForm(form): PageForm<AssignForm>,
) -> Result<Response, PageError> {
    let order_id: OrderId = parse_id(&id)?;
    let result = async {
        order_commands::authorize(&state.db, staff.caller.scope(), order_id, Action::EditCommerce).await?;
        let assignee: Option<UserId> = filled(&form.assignee_id)
            .map(|v| v.parse().map_err(|_| AppError::field("assignee", "is not one of the choices")))
            .transpose()?;
        Ok(threads::assign(&state.db, staff.caller.scope(), order_id, assignee).await?)
    }
    .await;
    let done = match &result {
        Ok(thread) if thread.assignee_id.is_none() => "The thread is assigned to no one.",
        _ => "Thread assigned.",
    };
    settle(result, &format!("{}#thread-h", order_path(order_id)), done)
}

async fn set_status(state: &AppState, staff: &Staff, id: &str, close: bool) -> Result<Response, PageError> {
    let order_id: OrderId = parse_id(id)?;
    let result = async {
        order_commands::authorize(&state.db, staff.caller.scope(), order_id, Action::EditCommerce).await?;
        let scope = staff.caller.scope();
        Ok(if close {
            threads::close(&state.db, scope, order_id).await?
        } else {
            threads::reopen(&state.db, scope, order_id).await?
        })
    }
    .await;
    let done = if close { "Thread closed." } else { "Thread reopened." };
    settle(result, &format!("{}#thread-h", order_path(order_id)), done)
}

/// `POST /admin/orders/{id}/thread/close`.
pub async fn close(State(state): State<AppState>, staff: Staff, Path(id): Path<String>) -> Result<Response, PageError> {
    set_status(&state, &staff, &id, true).await
}

/// `POST /admin/orders/{id}/thread/reopen`.
pub async fn reopen(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    set_status(&state, &staff, &id, false).await
}

/// `GET /admin/attachments/{id}`: a file of a message, for staff who see
/// its brand (the page session does not reach `/api`).
pub async fn attachment(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id: AttachmentId = parse_id(&id)?;
    Ok(crate::files::file_response(&state, &staff.caller, id).await?)
}
