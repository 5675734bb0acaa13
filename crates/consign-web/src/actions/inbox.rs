//! Linking an unassigned inbox item to an order, the use case shared by
//! the API and the pages: the item becomes the customer's message in the
//! order's thread, and a second link of the same item is refused (409) in
//! the reader's words. The caller checks the policy (`EditCommerce` on the
//! order's brand) first.

use consign_db::DbError;
use consign_db::Scope;
use consign_db::inbound::inbox;
use consign_db::messages::Message;
use consign_domain::{InboxItemId, OrderId};

use crate::AppState;
use crate::error::{AppError, AppResult};

/// Posts the item into the order's thread and returns the message.
pub async fn link(state: &AppState, scope: &Scope, item_id: InboxItemId, order_id: OrderId) -> AppResult<Message> {
    inbox::link(&state.db, scope, item_id, order_id).await.map_err(link_error)
}

/// A second link of one item is a conflict, said in the reader's words
/// (storage conflicts are otherwise shown without their engine's words).
fn link_error(error: DbError) -> AppError {
    match error {
        DbError::Conflict { .. } => AppError::Conflict("This message is already linked to an order.".into()),
        other => other.into(),
    }
}
