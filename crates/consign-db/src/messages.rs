//! Customer messaging: one thread per order,
//! immutable messages, internal notes, read receipts.
//!
//! Who may see what is decided here, for every read path:
//! - staff see the threads of the brands their scope sees, notes included;
//! - a customer (order access token) sees its own order's thread, never an
//!   internal note: every customer query carries `internal = FALSE`.
//!
//! Writes go through [`write::post_message`], also used by order
//! events (their `system` messages, see `crate::reactions`) and inbound channels.

use consign_domain::messaging::{Channel, SenderRole};
use consign_domain::policy::BrandAccess;
use consign_domain::text::MessageBody;
use consign_domain::{BrandId, EventType, MessageId, OrderId, OrganizationId, ThreadId, Timestamp};
use serde::Serialize;
use serde_json::json;

use crate::{Db, DbError, DbResult, JsonText, NewEvent, Page, PageRequest, Principal, Scope, Tx};

pub mod canned;
pub mod search;
pub mod threads;
pub mod write;

use crate::deliveries::queue_delivery;
use write::{MessageInsert, post_message};

/// A message.
#[derive(Clone, Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Message {
    /// Id; ids increase with time.
    pub id: MessageId,
    /// The order the thread is about.
    pub order_id: OrderId,
    /// The order's thread.
    pub thread_id: ThreadId,
    /// The order's brand.
    pub brand_id: BrandId,
    /// The text.
    pub body: String,
    /// `in_app`, `email`, `whatsapp` or `sms`.
    pub channel: Channel,
    /// `customer`, `brand`, `threepl`, `platform` or `system`.
    pub sender_role: SenderRole,
    /// The staff user or API key; the address or phone of an inbound
    /// message; empty for the customer in the app and for the system.
    pub sender_id: Option<String>,
    /// A note for staff only.
    pub internal: bool,
    /// `[{id, file_name, content_type, size}]`.
    pub attachments: JsonText,
    /// Who has read it.
    #[sqlx(skip)]
    pub read_by: Vec<ReadReceipt>,
    /// Written at.
    pub created_at: Timestamp,
}

/// One reader's receipt.
#[derive(Clone, Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ReadReceipt {
    /// The user or API key, or `customer`.
    pub reader_id: String,
    /// The reader's sender role.
    pub role: SenderRole,
    /// First read at.
    pub read_at: Timestamp,
    #[serde(skip)]
    #[schema(ignore)]
    message_id: MessageId,
}

pub(crate) const MESSAGE_COLUMNS: &str = "m.id, m.order_id, m.thread_id, m.brand_id, m.body, m.channel, m.sender_role, m.sender_id, m.internal, m.attachments, m.created_at";

/// Who is writing or reading, as the thread records it.
#[derive(Clone, Debug)]
pub(crate) struct Participant {
    pub role: SenderRole,
    /// The id recorded as sender and reader.
    pub id: String,
}

impl Participant {
    /// The caller as a participant of a brand's threads: a customer, the
    /// brand's own staff or integration, a 3PL fulfilling for it, or a
    /// platform admin.
    pub(crate) fn of(scope: &Scope, brand_id: BrandId) -> Self {
        let id = scope.principal().actor_id();
        let role = match scope.principal() {
            Principal::Customer { .. } => SenderRole::Customer,
            Principal::System => SenderRole::System,
            Principal::User { .. } | Principal::ApiKey { .. } => match scope.grants().brand_access(brand_id) {
                Some(BrandAccess::Fulfiller) => SenderRole::Threepl,
                Some(_) => SenderRole::Brand,
                None => SenderRole::Platform,
            },
        };
        Self { role, id }
    }

    pub(crate) fn is_customer(&self) -> bool {
        self.role == SenderRole::Customer
    }
}

/// The order a thread belongs to, checked against the scope.
#[derive(sqlx::FromRow)]
pub(crate) struct OrderRef {
    pub id: OrderId,
    pub organization_id: OrganizationId,
    pub brand_id: BrandId,
}

pub(crate) async fn order_ref(db: &Db, scope: &Scope, order_id: OrderId) -> DbResult<OrderRef> {
    let order: OrderRef =
        db.read("SELECT id, organization_id, brand_id FROM orders WHERE id = $1").bind(order_id).fetch_one().await?;
    scope.check_order(order.id, order.brand_id)?;
    Ok(order)
}

/// Loads the read receipts of `messages` in one query.
pub(crate) async fn attach_receipts(db: &Db, messages: &mut [Message]) -> DbResult<()> {
    let (Some(first), Some(last)) = (messages.first(), messages.last()) else { return Ok(()) };
    let (low, high) = if first.id <= last.id { (first.id, last.id) } else { (last.id, first.id) };
    let thread_ids: Vec<ThreadId> = {
        let mut ids: Vec<ThreadId> = messages.iter().map(|m| m.thread_id).collect();
        ids.sort_by_key(ToString::to_string);
        ids.dedup();
        ids
    };
    let mut query = db.read("SELECT message_id, reader_id, role, read_at FROM message_reads WHERE message_id >= ");
    query.push_bind(low.to_string()).push(" AND message_id <= ").push_bind(high.to_string());
    query.push(" AND ").push_in("thread_id", thread_ids.iter().map(ToString::to_string));
    query.push(" ORDER BY read_at");
    let receipts: Vec<ReadReceipt> = query.fetch_all().await?;
    for receipt in receipts {
        if let Some(message) = messages.iter_mut().find(|m| m.id == receipt.message_id) {
            message.read_by.push(receipt);
        }
    }
    Ok(())
}

/// The messages of an order's thread, oldest first. A customer never sees
/// internal notes.
pub async fn list(db: &Db, scope: &Scope, order_id: OrderId, page: &PageRequest) -> DbResult<Page<Message>> {
    let order = order_ref(db, scope, order_id).await?;
    let customer = Participant::of(scope, order.brand_id).is_customer();
    let mut query = db.read_built(format!("SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.order_id = "));
    query.push_bind(order_id.to_string());
    if customer {
        query.push(" AND m.internal = FALSE");
    }
    if let Some(after) = &page.after {
        query.push(" AND m.id > ").push_bind(after.clone());
    }
    query.push(" ORDER BY m.id LIMIT ").push_bind(page.fetch_limit());
    let rows: Vec<Message> = query.fetch_all().await?;
    let mut page = Page::from_rows(rows, page, |m| m.id.to_string());
    attach_receipts(db, &mut page.data).await?;
    Ok(page)
}

/// A message to post through the API.
#[derive(Clone, Debug)]
pub struct NewMessage {
    /// The text, a [`MessageBody`]; blank only when files are attached.
    pub body: String,
    /// The channel: staff pick where a reply goes out; customers write in
    /// the app.
    pub channel: Channel,
    /// A staff-only note.
    pub internal: bool,
    /// Files uploaded to this order and not yet attached.
    pub attachment_ids: Vec<consign_domain::AttachmentId>,
}

/// Posts a message to an order's thread as the caller.
pub async fn post(db: &Db, scope: &Scope, order_id: OrderId, new: NewMessage) -> DbResult<Message> {
    let draft = draft(db, scope, order_id, new).await?;
    let mut tx = db.begin().await?;
    let message = post_in(&mut tx, draft).await?;
    tx.commit().await?;
    Ok(message)
}

/// A message that passed its checks against the order, ready to be written
/// by [`post_in`].
pub struct Draft {
    order: OrderRef,
    author: Participant,
    body: String,
    channel: Channel,
    internal: bool,
    attachment_ids: Vec<String>,
}

/// Checks a message against its order and author, reading on the reader
/// (before any write transaction begins): the text, who may write a note,
/// which channel.
pub async fn draft(db: &Db, scope: &Scope, order_id: OrderId, new: NewMessage) -> DbResult<Draft> {
    let body = if new.body.trim().is_empty() && !new.attachment_ids.is_empty() {
        String::new()
    } else {
        MessageBody::parse(&new.body).map_err(|error| DbError::invalid("body", error.to_string()))?.into_string()
    };
    let order = order_ref(db, scope, order_id).await?;
    let author = Participant::of(scope, order.brand_id);
    if author.is_customer() && new.internal {
        return Err(DbError::invalid("internal", "customers cannot write internal notes"));
    }
    if author.is_customer() && new.channel != Channel::InApp {
        return Err(DbError::invalid("channel", "customers write in the app: use in_app"));
    }
    if new.internal && new.channel != Channel::InApp {
        return Err(DbError::invalid("channel", "internal notes stay in the app: use in_app"));
    }
    let attachment_ids: Vec<String> = new.attachment_ids.iter().map(ToString::to_string).collect();
    Ok(Draft { order, author, body, channel: new.channel, internal: new.internal, attachment_ids })
}

/// Writes a [`Draft`] in `tx` (which a caller may share with the request's
/// idempotency key): the message, its delivery for a reply that goes out,
/// its files claimed.
pub async fn post_in(tx: &mut Tx, draft: Draft) -> DbResult<Message> {
    let Draft { order, author, body, channel, internal, attachment_ids } = draft;
    // The files must have been uploaded to this order and not be sent yet.
    let mut files: Vec<(String, String, String, i64)> = Vec::new();
    if !attachment_ids.is_empty() {
        let mut query = tx.query(
            "SELECT id, file_name, content_type, size FROM attachments WHERE message_id IS NULL AND order_id = ",
        );
        query.push_bind(order.id.to_string()).push(" AND ").push_in("id", attachment_ids.iter().cloned());
        query.push(" ORDER BY id");
        files = query.fetch_all().await?;
    }
    if files.len() != attachment_ids.len() {
        return Err(DbError::invalid("attachment_ids", "each must be a file uploaded to this order and not yet sent"));
    }
    let attachments = files
        .into_iter()
        .map(|(id, file_name, content_type, size)| {
            json!({"id": id, "file_name": file_name, "content_type": content_type, "size": size})
        })
        .collect();
    let message = post_message(
        tx,
        MessageInsert {
            organization_id: order.organization_id,
            brand_id: order.brand_id,
            order_id: order.id,
            body: body.clone(),
            channel,
            sender_role: author.role,
            sender_id: (!author.is_customer()).then(|| author.id.clone()),
            internal,
            attachments,
            external_id: None,
            actor: author.id.clone(),
        },
    )
    .await?;
    // A staff reply on email, WhatsApp or SMS goes out through the
    // deliver job; the provider is never called inside this transaction.
    if !message.internal && message.sender_role.is_staff() && message.channel != Channel::InApp {
        queue_delivery(tx, &message, order.organization_id).await?;
    }
    // Claimed only if still unsent: the SELECT above takes no lock on
    // PostgreSQL, so a concurrent post may have claimed a file since.
    for id in &attachment_ids {
        let claimed = tx
            .query("UPDATE attachments SET message_id = $1 WHERE id = $2 AND message_id IS NULL")
            .bind(message.id)
            .bind(id.clone())
            .execute()
            .await?;
        if claimed != 1 {
            return Err(DbError::invalid(
                "attachment_ids",
                "each must be a file uploaded to this order and not yet sent",
            ));
        }
    }
    Ok(message)
}

/// Marks a message, and every earlier one in its thread the caller can see
/// and did not write, as read by the caller. Answers the message with its
/// receipts.
pub async fn mark_read(db: &Db, scope: &Scope, order_id: OrderId, message_id: MessageId) -> DbResult<Message> {
    let order = order_ref(db, scope, order_id).await?;
    let reader = Participant::of(scope, order.brand_id);
    let customer = reader.is_customer();
    let mut tx = db.begin().await?;
    let target: (ThreadId, bool) = tx
        .query("SELECT thread_id, internal FROM messages WHERE id = $1 AND order_id = $2")
        .bind(message_id)
        .bind(order_id)
        .fetch_one()
        .await?;
    if customer && target.1 {
        return Err(DbError::NotFound);
    }
    let now = Timestamp::now();
    // Newly read messages, split by visibility so the customer's feed
    // never learns the id of a note.
    let newly_read: Vec<(MessageId, bool)> = tx
        .query(
            "SELECT id, internal FROM messages m
              WHERE m.thread_id = $1 AND m.id <= $2 AND ($3 = FALSE OR m.internal = FALSE)
                AND (m.sender_id IS NULL OR m.sender_id <> $4)
                AND NOT EXISTS (SELECT 1 FROM message_reads r WHERE r.message_id = m.id AND r.reader_id = $4)",
        )
        .bind(target.0)
        .bind(message_id)
        .bind(customer)
        .bind(reader.id.clone())
        .fetch_all()
        .await?;
    if !newly_read.is_empty() {
        tx.query(
            "INSERT INTO message_reads (message_id, reader_id, organization_id, thread_id, role, read_at)
             SELECT m.id, $4, m.organization_id, m.thread_id, $5, $6 FROM messages m
              WHERE m.thread_id = $1 AND m.id <= $2 AND ($3 = FALSE OR m.internal = FALSE)
                AND (m.sender_id IS NULL OR m.sender_id <> $4)
             ON CONFLICT (message_id, reader_id) DO NOTHING",
        )
        .bind(target.0)
        .bind(message_id)
        .bind(customer)
        .bind(reader.id.clone())
        .bind(reader.role)
        .bind(now)
        .execute()
        .await?;
        let (internal, visible): (Vec<_>, Vec<_>) = newly_read.into_iter().partition(|(_, internal)| *internal);
        let ids = |list: Vec<(MessageId, bool)>| list.into_iter().map(|(id, _)| id).collect::<Vec<_>>();
        tx.record_event(NewEvent {
            organization_id: order.organization_id,
            brand_id: Some(order.brand_id),
            event_type: EventType::MessageRead,
            aggregate_type: "message_thread",
            aggregate_id: target.0.to_string(),
            payload: json!({"order_id": order_id, "thread_id": target.0, "reader_id": reader.id, "role": reader.role,
                            "read_at": now, "message_ids": ids(visible), "internal_message_ids": ids(internal)}),
            actor: reader.id.clone(),
        })
        .await?;
    }
    tx.commit().await?;
    let mut message: Message = db
        .read_built(format!("SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.id = $1"))
        .bind(message_id)
        .fetch_one()
        .await?;
    attach_receipts(db, std::slice::from_mut(&mut message)).await?;
    Ok(message)
}

/// The brand of an order the caller sees (404 otherwise), for the policy
/// check that precedes a message call.
pub async fn order_brand(db: &Db, scope: &Scope, order_id: OrderId) -> DbResult<BrandId> {
    Ok(order_ref(db, scope, order_id).await?.brand_id)
}

/// Files attached to messages: their records (the bytes live in the file
/// store of `consign-web`).
pub mod attachments {
    use consign_domain::{AttachmentId, BrandId, MessageId, OrderId, Timestamp};
    use serde::Serialize;

    use super::{Participant, order_ref};
    use crate::{Db, DbError, DbResult, Scope};

    /// An uploaded file.
    #[derive(Clone, Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
    pub struct Attachment {
        /// Id, named in `attachment_ids` of a new message.
        pub id: AttachmentId,
        /// The order it was uploaded to.
        pub order_id: OrderId,
        /// The order's brand.
        pub brand_id: BrandId,
        /// The message it is attached to, once sent.
        pub message_id: Option<MessageId>,
        /// The name given at upload.
        pub file_name: String,
        /// Its media type.
        pub content_type: String,
        /// Bytes.
        pub size: i64,
        /// Where the bytes are kept in the file store.
        #[serde(skip)]
        #[schema(ignore)]
        pub storage_key: String,
        /// Uploaded at.
        pub created_at: Timestamp,
    }

    const COLUMNS: &str = "id, order_id, brand_id, message_id, file_name, content_type, size, storage_key, created_at";

    /// A file just stored, to record.
    #[derive(Clone, Debug)]
    pub struct NewAttachment<'a> {
        /// Its id (also part of its storage key).
        pub id: AttachmentId,
        /// The name given at upload.
        pub file_name: &'a str,
        /// Its media type.
        pub content_type: &'a str,
        /// Bytes.
        pub size: i64,
        /// Where the bytes are kept in the file store.
        pub storage_key: &'a str,
    }

    /// How many bytes of files an order, and a brand, may hold (uploaded
    /// files count whether or not they were sent).
    #[derive(Clone, Copy, Debug)]
    pub struct Quotas {
        /// Per order.
        pub order_bytes: u64,
        /// Per brand, across its orders.
        pub brand_bytes: u64,
    }

    /// Whether an order takes files: not once it is cancelled or expired
    /// (a completed order still does, for a photo of what arrived broken).
    fn refuse_closed(status: &str) -> DbResult<()> {
        if matches!(status, "cancelled" | "expired") {
            return Err(DbError::transition(format!("the order is {status}: it takes no more files")));
        }
        Ok(())
    }

    fn quota_error(what: &str, limit: u64) -> DbError {
        DbError::invalid("body", format!("the {what}'s files would exceed its storage quota of {limit} bytes"))
    }

    /// Checks, before the bytes are read, that the caller may upload to the
    /// order: that it is still live and neither it nor its brand is over
    /// quota (`incoming`: the declared size, if any). The quota is checked
    /// again, for the real size, when the file is recorded.
    pub async fn check_upload(
        db: &Db,
        scope: &Scope,
        order_id: OrderId,
        quotas: Quotas,
        incoming: u64,
    ) -> DbResult<()> {
        let order = order_ref(db, scope, order_id).await?;
        let (status, order_used, brand_used): (String, i64, i64) = db
            .read(
                "SELECT o.status,
                        (SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM attachments WHERE order_id = o.id),
                        (SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM attachments WHERE brand_id = o.brand_id)
                   FROM orders o WHERE o.id = $1",
            )
            .bind(order.id)
            .fetch_one()
            .await?;
        refuse_closed(&status)?;
        let incoming = incoming.max(1);
        if order_used.unsigned_abs().saturating_add(incoming) > quotas.order_bytes {
            return Err(quota_error("order", quotas.order_bytes));
        }
        if brand_used.unsigned_abs().saturating_add(incoming) > quotas.brand_bytes {
            return Err(quota_error("brand", quotas.brand_bytes));
        }
        Ok(())
    }

    /// Records a file stored for an order the caller sees, if the order is
    /// live and the file fits the quotas. The order row is locked first
    /// (PostgreSQL), so concurrent uploads to one order cannot both fit in
    /// the last of its room.
    pub async fn create(
        db: &Db,
        scope: &Scope,
        order_id: OrderId,
        file: NewAttachment<'_>,
        quotas: Quotas,
    ) -> DbResult<Attachment> {
        let NewAttachment { id, file_name, content_type, size, storage_key } = file;
        let order = order_ref(db, scope, order_id).await?;
        let uploader = Participant::of(scope, order.brand_id);
        let incoming = size.unsigned_abs();
        let mut tx = db.begin().await?;
        let sql = format!("SELECT status FROM orders WHERE id = $1{}", tx.lock_clause());
        let status: String = tx.query_built(sql).bind(order.id).scalar().await?;
        refuse_closed(&status)?;
        let (order_used, brand_used): (i64, i64) = tx
            .query(
                "SELECT (SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM attachments WHERE order_id = $1),
                        (SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM attachments WHERE brand_id = $2)",
            )
            .bind(order.id)
            .bind(order.brand_id)
            .fetch_one()
            .await?;
        if order_used.unsigned_abs().saturating_add(incoming) > quotas.order_bytes {
            return Err(quota_error("order", quotas.order_bytes));
        }
        if brand_used.unsigned_abs().saturating_add(incoming) > quotas.brand_bytes {
            return Err(quota_error("brand", quotas.brand_bytes));
        }
        tx.query(
            "INSERT INTO attachments (id, organization_id, brand_id, order_id, file_name, content_type, size, storage_key,
                                      uploaded_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(id)
        .bind(order.organization_id)
        .bind(order.brand_id)
        .bind(order.id)
        .bind(file_name.to_owned())
        .bind(content_type.to_owned())
        .bind(size)
        .bind(storage_key.to_owned())
        .bind(uploader.id.clone())
        .bind(Timestamp::now())
        .execute()
        .await?;
        tx.commit().await?;
        get(db, scope, id).await
    }

    /// A file the caller may download: staff of the brand; the customer for
    /// files of its order that are on a visible message, or that it
    /// uploaded and has not sent yet.
    pub async fn get(db: &Db, scope: &Scope, id: AttachmentId) -> DbResult<Attachment> {
        let row: AttachmentRow = db
            .read_built(format!(
                "SELECT a.{}, a.uploaded_by, m.internal FROM attachments a LEFT JOIN messages m ON m.id = a.message_id
                  WHERE a.id = $1",
                COLUMNS.replace(", ", ", a.")
            ))
            .bind(id)
            .fetch_one()
            .await?;
        let AttachmentRow { attachment, uploaded_by, internal } = row;
        scope.check_order(attachment.order_id, attachment.brand_id)?;
        if scope.customer_order().is_some() {
            let visible = match internal {
                Some(internal) => !internal,
                None => uploaded_by == "customer",
            };
            if !visible {
                return Err(DbError::NotFound);
            }
        }
        Ok(attachment)
    }

    /// A file left unsent, removed by [`purge_unsent`].
    #[derive(Clone, Debug, sqlx::FromRow)]
    pub struct Unsent {
        /// Its id.
        pub id: AttachmentId,
        /// Where its bytes are kept.
        pub storage_key: String,
    }

    /// Files uploaded before `before` and never attached to a message, at
    /// most `limit` of them, oldest first (system-wide: the clean-up job).
    pub async fn unsent_before(db: &Db, before: Timestamp, limit: i64) -> DbResult<Vec<Unsent>> {
        db.read(
            "SELECT id, storage_key FROM attachments WHERE message_id IS NULL AND created_at < $1
              ORDER BY created_at LIMIT $2",
        )
        .bind(before)
        .bind(limit)
        .fetch_all()
        .await
    }

    /// Deletes the record of a file that is still unsent; answers whether
    /// it did (a message may have claimed the file meanwhile, and keeps it).
    pub async fn purge_unsent(db: &Db, id: AttachmentId) -> DbResult<bool> {
        let mut tx = db.begin().await?;
        let deleted =
            tx.query("DELETE FROM attachments WHERE id = $1 AND message_id IS NULL").bind(id).execute().await?;
        tx.commit().await?;
        Ok(deleted == 1)
    }

    #[derive(sqlx::FromRow)]
    struct AttachmentRow {
        #[sqlx(flatten)]
        attachment: Attachment,
        uploaded_by: String,
        internal: Option<bool>,
    }
}
