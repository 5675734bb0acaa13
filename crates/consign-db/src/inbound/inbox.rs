//! The brand's inbox: inbound messages that matched no order, until staff
//! link each to the order it is about.

use consign_domain::messaging::{Channel, SenderRole};
use consign_domain::{BrandId, InboxItemId, MessageId, OrderId, Timestamp};
use serde::Serialize;
use serde_json::json;

use crate::messages::write::{MessageInsert, post_message};
use crate::messages::{Message, order_ref};
use crate::{Db, DbError, DbResult, Page, PageRequest, Scope};

/// An inbound message waiting for an order.
#[derive(Clone, Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct InboxItem {
    /// Id.
    pub id: InboxItemId,
    /// The brand that received it.
    pub brand_id: BrandId,
    /// `email`, `whatsapp` or `sms`.
    pub channel: Channel,
    /// The sender's address or phone number.
    pub sender: String,
    /// Email subject.
    pub subject: Option<String>,
    /// The text.
    pub body: String,
    /// Whether the provider vouched for the sender (for email: SPF or DKIM
    /// passed). An unverified sender may not be who it claims to be.
    pub sender_verified: bool,
    /// The message it became once linked.
    pub linked_message_id: Option<MessageId>,
    /// Received at.
    pub created_at: Timestamp,
}

const ITEM_COLUMNS: &str =
    "id, brand_id, channel, sender, subject, body, sender_verified, linked_message_id, created_at";

/// Unlinked items of the brands the caller sees (or of one brand), newest
/// first. Customers have no inbox.
pub async fn list(db: &Db, scope: &Scope, brand_id: Option<BrandId>, page: &PageRequest) -> DbResult<Page<InboxItem>> {
    if scope.customer_order().is_some() {
        return Err(DbError::NotFound);
    }
    let mut query = db.read_built(format!("SELECT {ITEM_COLUMNS} FROM inbox_items WHERE linked_message_id IS NULL"));
    scope.push_brand_filter(&mut query, "brand_id");
    if let Some(brand_id) = brand_id {
        query.push(" AND brand_id = ").push_bind(brand_id.to_string());
    }
    if let Some(after) = &page.after {
        query.push(" AND id < ").push_bind(after.clone());
    }
    query.push(" ORDER BY id DESC LIMIT ").push_bind(page.fetch_limit());
    let rows: Vec<InboxItem> = query.fetch_all().await?;
    Ok(Page::from_rows(rows, page, |item| item.id.to_string()))
}

/// Posts an inbox item into an order's thread as the customer's message,
/// once: linking an item twice is a conflict. The order must belong to
/// the item's brand.
pub async fn link(db: &Db, scope: &Scope, item_id: InboxItemId, order_id: OrderId) -> DbResult<Message> {
    if scope.customer_order().is_some() {
        return Err(DbError::NotFound);
    }
    let order = order_ref(db, scope, order_id).await?;
    let actor = scope.principal().actor_id();
    let mut tx = db.begin().await?;
    let sql = format!("SELECT {ITEM_COLUMNS}, external_id FROM inbox_items WHERE id = $1{}", tx.lock_clause());
    let (item, external_id): (InboxItem, Option<String>) = {
        let row: InboxItemRow = tx.query_built(sql).bind(item_id).fetch_one().await?;
        (row.item, row.external_id)
    };
    if !scope.grants().sees_brand(item.brand_id) {
        return Err(DbError::NotFound);
    }
    if item.linked_message_id.is_some() {
        return Err(DbError::Conflict { constraint: "inbox item already linked".into() });
    }
    if item.brand_id != order.brand_id {
        return Err(DbError::invalid("order_id", "must be an order of the brand that received the message"));
    }
    let body = match &item.subject {
        Some(subject) if !subject.trim().is_empty() && item.channel == Channel::Email => {
            format!("{}\n\n{}", subject.trim(), item.body)
        }
        _ => item.body.clone(),
    };
    let message = post_message(
        &mut tx,
        MessageInsert {
            organization_id: order.organization_id,
            brand_id: order.brand_id,
            order_id: order.id,
            body,
            channel: item.channel,
            sender_role: SenderRole::Customer,
            sender_id: Some(item.sender.clone()),
            internal: false,
            attachments: json!([]),
            external_id,
            actor: actor.clone(),
        },
    )
    .await?;
    tx.query("UPDATE inbox_items SET linked_message_id = $1 WHERE id = $2 AND linked_message_id IS NULL")
        .bind(message.id)
        .bind(item_id)
        .execute()
        .await?;
    let mut audit =
        scope.audit(order.organization_id, Some(order.brand_id), "inbox.link", "inbox_item", item_id.to_string());
    audit.after = Some(json!({"order_id": order.id, "message_id": message.id}));
    tx.record_audit(audit).await?;
    tx.commit().await?;
    Ok(message)
}

#[derive(sqlx::FromRow)]
struct InboxItemRow {
    #[sqlx(flatten)]
    item: InboxItem,
    external_id: Option<String>,
}
