//! Threads: one per order, opened by its first message. Status, assignment,
//! unread counts (per thread and per reader) and response times.

use consign_domain::messaging::{Channel, ThreadStatus};
use consign_domain::{BrandId, EventType, OrderId, ThreadId, Timestamp, UserId};
use serde::Serialize;
use serde_json::json;

use super::{Participant, order_ref};
use crate::{Db, DbError, DbResult, NewEvent, Page, PageRequest, Scope};

/// An order's conversation, as the caller sees it.
#[derive(Clone, Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Thread {
    /// Id.
    pub id: ThreadId,
    /// The order.
    pub order_id: OrderId,
    /// The order's number, such as `#1001`.
    #[sqlx(skip)]
    pub order_number: String,
    #[serde(skip)]
    #[schema(ignore)]
    number: i64,
    /// The customer's name.
    pub customer_name: String,
    /// The order's brand.
    pub brand_id: BrandId,
    /// `open` or `closed`.
    pub status: ThreadStatus,
    /// The staff member it is assigned to.
    pub assignee_id: Option<UserId>,
    /// The channel the customer wrote on last: where replies go by default.
    pub last_customer_channel: Option<Channel>,
    /// The customer's first message.
    pub first_customer_message_at: Option<Timestamp>,
    /// The first staff reply after it.
    pub first_response_at: Option<Timestamp>,
    /// When it was last closed.
    pub resolved_at: Option<Timestamp>,
    /// The latest message.
    pub last_message_at: Timestamp,
    /// Messages the caller has not read (for staff: customer messages; for
    /// the customer: staff replies).
    pub unread: i64,
    /// Optimistic-concurrency version.
    pub version: i64,
    /// Opened at.
    pub created_at: Timestamp,
}

/// How many messages a reader has not read yet, as SQL over `m` (messages)
/// for reader `$reader`: staff count customer messages, the customer counts
/// staff replies that are not notes.
fn unread_condition(customer: bool, reader: &str) -> String {
    let who = if customer {
        "m.sender_role IN ('brand', 'threepl', 'platform') AND m.internal = FALSE"
    } else {
        "m.sender_role = 'customer'"
    };
    let reader = reader.replace('\'', "''");
    format!(
        "{who} AND NOT EXISTS (SELECT 1 FROM message_reads r WHERE r.message_id = m.id AND r.reader_id = '{reader}')"
    )
}

fn thread_select(customer: bool, reader: &str) -> String {
    format!(
        "SELECT t.id, t.order_id, o.number, o.customer_name, t.brand_id, t.status, t.assignee_id, t.last_customer_channel,
                t.first_customer_message_at, t.first_response_at, t.resolved_at, t.last_message_at, t.version, t.created_at,
                (SELECT COUNT(*) FROM messages m WHERE m.thread_id = t.id AND {}) AS unread
           FROM message_threads t JOIN orders o ON o.id = t.order_id",
        unread_condition(customer, reader)
    )
}

fn finish(mut thread: Thread) -> Thread {
    thread.order_number = format!("#{}", thread.number);
    thread
}

/// The thread of an order (404 until its first message).
pub async fn get(db: &Db, scope: &Scope, order_id: OrderId) -> DbResult<Thread> {
    let order = order_ref(db, scope, order_id).await?;
    let reader = Participant::of(scope, order.brand_id);
    let sql = format!("{} WHERE t.order_id = $1", thread_select(reader.is_customer(), &reader.id));
    let thread: Thread = db.read_built(sql).bind(order_id).fetch_one().await?;
    Ok(finish(thread))
}

/// Filters of the staff inbox.
#[derive(Clone, Debug, Default)]
pub struct ThreadFilter {
    /// One brand.
    pub brand_id: Option<BrandId>,
    /// `open` or `closed`.
    pub status: Option<ThreadStatus>,
    /// Assigned to this user.
    pub assignee_id: Option<UserId>,
    /// Only threads with no one assigned.
    pub unassigned: bool,
    /// Only threads with messages the caller has not read.
    pub unread: bool,
    /// The customer's last channel.
    pub channel: Option<Channel>,
}

/// The inbox: threads of the brands the caller sees, newest first, each
/// with the caller's unread count.
pub async fn list(db: &Db, scope: &Scope, filter: &ThreadFilter, page: &PageRequest) -> DbResult<Page<Thread>> {
    if scope.customer_order().is_some() {
        return Err(DbError::NotFound);
    }
    let reader = scope.principal().actor_id();
    let mut query = db.read_built(format!("SELECT * FROM ({}) t WHERE 1 = 1", thread_select(false, &reader)));
    scope.push_brand_filter(&mut query, "t.brand_id");
    if let Some(brand_id) = filter.brand_id {
        query.push(" AND t.brand_id = ").push_bind(brand_id.to_string());
    }
    if let Some(status) = filter.status {
        query.push(" AND t.status = ").push_bind(status.as_str());
    }
    if let Some(assignee) = filter.assignee_id {
        query.push(" AND t.assignee_id = ").push_bind(assignee.to_string());
    }
    if filter.unassigned {
        query.push(" AND t.assignee_id IS NULL");
    }
    if filter.unread {
        query.push(" AND t.unread > 0");
    }
    if let Some(channel) = filter.channel {
        query.push(" AND t.last_customer_channel = ").push_bind(channel.as_str());
    }
    if let Some(after) = &page.after {
        query.push(" AND t.id < ").push_bind(after.clone());
    }
    query.push(" ORDER BY t.id DESC LIMIT ").push_bind(page.fetch_limit());
    let rows: Vec<Thread> = query.fetch_all().await?;
    Ok(Page::from_rows(rows.into_iter().map(finish).collect(), page, |t| t.id.to_string()))
}

/// What a staff member has not read yet, across the brands they see.
#[derive(Clone, Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct UnreadSummary {
    /// Customer messages not read.
    pub messages: i64,
    /// Threads with at least one of them.
    pub threads: i64,
}

/// The caller's unread counts.
pub async fn unread_summary(db: &Db, scope: &Scope) -> DbResult<UnreadSummary> {
    unread_summary_in(db, scope, None).await
}

/// The caller's unread counts, in one brand when `brand_id` is given (the
/// dashboard's brand picker); a brand outside the scope counts nothing.
pub async fn unread_summary_in(db: &Db, scope: &Scope, brand_id: Option<BrandId>) -> DbResult<UnreadSummary> {
    let reader = scope.principal().actor_id();
    let customer = scope.customer_order().is_some();
    let mut query = db.read_built(format!(
        "SELECT COUNT(*) AS messages, COUNT(DISTINCT m.thread_id) AS threads FROM messages m WHERE {}",
        unread_condition(customer, &reader)
    ));
    match scope.customer_order() {
        Some(order_id) => {
            query.push(" AND m.order_id = ").push_bind(order_id.to_string());
        }
        None => scope.push_brand_filter(&mut query, "m.brand_id"),
    }
    if let Some(brand_id) = brand_id {
        query.push(" AND m.brand_id = ").push_bind(brand_id.to_string());
    }
    query.fetch_one().await
}

enum Change {
    Close,
    Reopen,
    Assign(Option<UserId>),
}

async fn change(db: &Db, scope: &Scope, order_id: OrderId, change: Change) -> DbResult<Thread> {
    let order = order_ref(db, scope, order_id).await?;
    let actor = Participant::of(scope, order.brand_id);
    if actor.is_customer() {
        return Err(DbError::NotFound);
    }
    if let Change::Assign(Some(user_id)) = &change {
        // The assignee must be able to see the brand.
        let sees: Option<i64> = db
            .read(
                "SELECT CAST(1 AS BIGINT) FROM brand_memberships WHERE user_id = $1 AND brand_id = $2
                 UNION ALL SELECT 1 FROM org_memberships m JOIN brands b ON b.organization_id = m.organization_id
                  WHERE m.user_id = $1 AND b.id = $2
                 UNION ALL SELECT 1 FROM org_memberships m JOIN brand_fulfillers f ON f.organization_id = m.organization_id
                  WHERE m.user_id = $1 AND f.brand_id = $2
                 LIMIT 1",
            )
            .bind(*user_id)
            .bind(order.brand_id)
            .scalar_optional()
            .await?;
        if sees.is_none() {
            return Err(DbError::invalid("assignee_id", "must be a staff member who can see this brand"));
        }
    }
    let mut tx = db.begin().await?;
    let sql = format!("SELECT id, status, assignee_id FROM message_threads WHERE order_id = $1{}", tx.lock_clause());
    let (thread_id, status, assignee): (ThreadId, ThreadStatus, Option<UserId>) =
        tx.query_built(sql).bind(order_id).fetch_one().await?;
    let now = Timestamp::now();
    let (event_type, payload) = match change {
        Change::Close | Change::Reopen => {
            let target = if matches!(change, Change::Close) { ThreadStatus::Closed } else { ThreadStatus::Open };
            if status == target {
                return Err(DbError::transition(format!("the thread is already {target}")));
            }
            tx.query(
                "UPDATE message_threads SET status = $1, resolved_at = $2, version = version + 1, updated_at = $3 WHERE id = $4",
            )
            .bind(target)
            .bind((target == ThreadStatus::Closed).then_some(now))
            .bind(now)
            .bind(thread_id)
            .execute()
            .await?;
            let event_type =
                if target == ThreadStatus::Closed { EventType::ThreadClosed } else { EventType::ThreadReopened };
            (event_type, json!({"order_id": order_id, "thread_id": thread_id, "status": target}))
        }
        Change::Assign(user_id) => {
            tx.query(
                "UPDATE message_threads SET assignee_id = $1, version = version + 1, updated_at = $2 WHERE id = $3",
            )
            .bind(user_id)
            .bind(now)
            .bind(thread_id)
            .execute()
            .await?;
            (
                EventType::ThreadAssigned,
                json!({"order_id": order_id, "thread_id": thread_id, "assignee_id": user_id, "previous": assignee}),
            )
        }
    };
    tx.record_event(NewEvent {
        organization_id: order.organization_id,
        brand_id: Some(order.brand_id),
        event_type,
        aggregate_type: "message_thread",
        aggregate_id: thread_id.to_string(),
        payload: payload.clone(),
        actor: actor.id.clone(),
    })
    .await?;
    let mut audit = scope.audit(
        order.organization_id,
        Some(order.brand_id),
        event_type.as_str(),
        "message_thread",
        thread_id.to_string(),
    );
    audit.after = Some(payload);
    tx.record_audit(audit).await?;
    tx.commit().await?;
    get(db, scope, order_id).await
}

/// Closes the thread (staff). A new customer message reopens it.
pub async fn close(db: &Db, scope: &Scope, order_id: OrderId) -> DbResult<Thread> {
    change(db, scope, order_id, Change::Close).await
}

/// Reopens a closed thread (staff).
pub async fn reopen(db: &Db, scope: &Scope, order_id: OrderId) -> DbResult<Thread> {
    change(db, scope, order_id, Change::Reopen).await
}

/// Assigns the thread to a staff member who sees the brand, or to no one.
pub async fn assign(db: &Db, scope: &Scope, order_id: OrderId, assignee: Option<UserId>) -> DbResult<Thread> {
    change(db, scope, order_id, Change::Assign(assignee)).await
}

/// Response-time figures of threads opened in a period (for analytics).
#[derive(Clone, Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ResponseTimes {
    /// Threads with a customer message in the period.
    pub threads: i64,
    /// Of those, threads staff have answered.
    pub answered: i64,
    /// Mean seconds from the customer's first message to the first staff reply.
    pub mean_first_response_seconds: Option<f64>,
    /// Longest such wait, in seconds.
    pub max_first_response_seconds: Option<f64>,
    /// Threads closed.
    pub resolved: i64,
    /// Mean seconds from the customer's first message to closing.
    pub mean_resolution_seconds: Option<f64>,
}

/// Response times of the caller's brands (or one brand) for threads whose
/// first customer message falls in `[from, to)`.
pub async fn response_times(
    db: &Db,
    scope: &Scope,
    brand_id: Option<BrandId>,
    from: Timestamp,
    to: Timestamp,
) -> DbResult<ResponseTimes> {
    if scope.customer_order().is_some() {
        return Err(DbError::NotFound);
    }
    let mut query = db.read(
        "SELECT COUNT(*) AS threads,
                    COUNT(first_response_at) AS answered,
                    CAST(AVG(first_response_at - first_customer_message_at) AS DOUBLE PRECISION) / 1000000.0
                        AS mean_first_response_seconds,
                    CAST(MAX(first_response_at - first_customer_message_at) AS DOUBLE PRECISION) / 1000000.0
                        AS max_first_response_seconds,
                    COUNT(resolved_at) AS resolved,
                    CAST(AVG(resolved_at - first_customer_message_at) AS DOUBLE PRECISION) / 1000000.0
                        AS mean_resolution_seconds
           FROM message_threads WHERE first_customer_message_at >= ",
    );
    query.push_bind(from).push(" AND first_customer_message_at < ").push_bind(to);
    scope.push_brand_filter(&mut query, "brand_id");
    if let Some(brand_id) = brand_id {
        query.push(" AND brand_id = ").push_bind(brand_id.to_string());
    }
    query.fetch_one().await
}
