//! Posting to an order's thread, shared by the API (staff and the customer
//! holding the order's token) and the order page's reply and note forms.
//!
//! Two steps, like checkout's, because the edge keeps its per-caller rate
//! limit between them: [`authorize`] checks the caller on the order (and
//! hands back a [`MayPost`] for `EditCommerce`), then [`draft`] applies the
//! message's rules (a canned response filled in before the text, the
//! channel a reply goes out on, the text) and [`post_in`] stores it in the
//! caller's transaction; [`post`] does both in a transaction of its own.

use consign_db::messages::canned;
use consign_db::messages::threads;
use consign_db::messages::{self, Draft, Message, NewMessage};
use consign_db::{Db, DbError, Scope, Tx};
use consign_domain::messaging::Channel;
use consign_domain::policy::Action;
use consign_domain::{AttachmentId, CannedResponseId, OrderId};

use crate::order_commands::{CommandError, staff_may};

/// Checks the caller on the order's thread: it must see the order (a
/// customer's scope already holds only its own order), and staff need
/// `action` on its brand (`NotFound` unseen, `Forbidden` not allowed).
pub async fn authorize(db: &Db, scope: &Scope, order_id: OrderId, action: Action) -> Result<(), CommandError> {
    let brand_id = messages::order_brand(db, scope, order_id).await?;
    if scope.customer_order().is_none() {
        staff_may(scope, action, brand_id)?;
    }
    Ok(())
}

/// The caller may post to this order's thread: only [`may_post`] makes one,
/// so [`post`] cannot be reached without the check.
pub struct MayPost {
    order_id: OrderId,
}

/// [`authorize`] for posting (`EditCommerce`).
pub async fn may_post(db: &Db, scope: &Scope, order_id: OrderId) -> Result<MayPost, CommandError> {
    authorize(db, scope, order_id, Action::EditCommerce).await?;
    Ok(MayPost { order_id })
}

/// A message as the edge read it.
pub struct Post {
    /// The text; blank when a canned response or files stand in for it.
    pub body: String,
    /// Where a staff reply goes out; `None` for the default.
    pub channel: Option<Channel>,
    /// A staff-only note.
    pub internal: bool,
    /// Files uploaded to the order, to attach.
    pub attachment_ids: Vec<AttachmentId>,
    /// A saved reply of the brand (staff only), filled in for the order
    /// and put before the text.
    pub canned_response_id: Option<CannedResponseId>,
}

/// Posts the message as the caller, in a transaction of its own: [`draft`]
/// and then [`post_in`].
pub async fn post(db: &Db, scope: &Scope, may: MayPost, post: Post) -> Result<Message, CommandError> {
    let draft = draft(db, scope, may, post).await?;
    // A post locks only its own thread: alone, it need not queue for the
    // shared batch (see `Db::begin_alone`).
    let mut tx = db.begin_alone().await?;
    let message = post_in(&mut tx, draft).await?;
    tx.commit().await?;
    Ok(message)
}

/// The message's rules, read before anything is written. Without a
/// channel, a note or a customer's message stays in the app and a staff
/// reply goes out where the customer wrote last (in the app before the
/// customer wrote at all).
pub async fn draft(db: &Db, scope: &Scope, may: MayPost, post: Post) -> Result<Draft, CommandError> {
    let order_id = may.order_id;
    let mut body = post.body;
    if let Some(canned_id) = post.canned_response_id {
        if scope.customer_order().is_some() {
            return Err(CommandError::field("canned_response_id", "is for staff replies"));
        }
        let text = canned::render_for_order(db, scope, canned_id, order_id).await.map_err(|error| match error {
            DbError::NotFound => CommandError::field("canned_response_id", "no such canned response"),
            other => other.into(),
        })?;
        body = if body.trim().is_empty() { text } else { format!("{text}\n\n{}", body.trim()) };
    }
    let channel = match post.channel {
        Some(channel) => channel,
        None if post.internal || scope.customer_order().is_some() => Channel::InApp,
        None => match threads::get(db, scope, order_id).await {
            Ok(thread) => thread.last_customer_channel.unwrap_or(Channel::InApp),
            Err(DbError::NotFound) => Channel::InApp,
            Err(other) => return Err(other.into()),
        },
    };
    let new = NewMessage { body, channel, internal: post.internal, attachment_ids: post.attachment_ids };
    Ok(messages::draft(db, scope, order_id, new).await?)
}

/// Writes a drafted message in `tx`, which the API shares with the
/// request's idempotency key so that the key's claim, the message and the
/// stored answer are one commit.
pub async fn post_in(tx: &mut Tx, draft: Draft) -> Result<Message, CommandError> {
    Ok(messages::post_in(tx, draft).await?)
}
