//! Writes that ride along in business transactions, on either engine: the
//! domain event row (outbox), the audit row and follow-up jobs. What an
//! event causes is decided one level up, in `reactions.rs`. Because they
//! commit or roll back with the change itself, an event or job exists if and
//! only if its change does.

use consign_domain::{AuditId, BrandId, EventId, EventType, JobId, OrganizationId, Timestamp};
use serde_json::Value;

use crate::jobs::kinds::JobKind;
use crate::{DbResult, Tx};

/// A domain event to record.
#[derive(Clone, Debug)]
pub struct NewEvent {
    /// The owning organization.
    pub organization_id: OrganizationId,
    /// The brand, when the event belongs to one.
    pub brand_id: Option<BrandId>,
    /// Such as `order.created`.
    pub event_type: EventType,
    /// Such as `order`.
    pub aggregate_type: &'static str,
    /// The id of the thing that changed.
    pub aggregate_id: String,
    /// What changed.
    pub payload: Value,
    /// Who did it (user id, API key id or `system`/`customer`).
    pub actor: String,
}

/// An audit-log row to record.
#[derive(Clone, Debug)]
pub struct AuditEntry {
    /// The owning organization.
    pub organization_id: OrganizationId,
    /// The brand, if any.
    pub brand_id: Option<BrandId>,
    /// Who did it.
    pub actor_id: String,
    /// Such as `order.cancel`.
    pub action: &'static str,
    /// Such as `order`.
    pub entity_type: &'static str,
    /// The entity's id.
    pub entity_id: String,
    /// State before, if it existed.
    pub before: Option<Value>,
    /// State after, if it still exists.
    pub after: Option<Value>,
    /// Client IP, for requests.
    pub ip: Option<String>,
    /// Client user agent, for requests.
    pub user_agent: Option<String>,
}

/// A job to run after the transaction commits, as stored. Made from a
/// typed job with [`NewJob::of`]; override `dedupe_key` or `run_at` with
/// struct update syntax where a site needs its own.
#[derive(Clone, Debug)]
pub struct NewJob {
    /// The handler's name, such as `fulfillment.create_for_order`.
    pub kind: &'static str,
    /// Its input.
    pub payload: Value,
    /// Jobs with the same key are enqueued once.
    pub dedupe_key: Option<String>,
    /// Not before this time.
    pub run_at: Timestamp,
}

impl NewJob {
    /// `job` to run now, under its kind's dedupe key.
    pub fn of<J: JobKind>(job: &J) -> Self {
        // The payloads are structs of ids and numbers, which always
        // serialize; a failure here is a bug in a payload type.
        let payload = serde_json::to_value(job).unwrap_or_else(|error| panic!("a `{}` payload: {error}", J::KIND));
        Self { kind: J::KIND, payload, dedupe_key: job.dedupe_key(), run_at: Timestamp::now() }
    }

    /// An untyped job of `kind` to run now, without a dedupe key. For
    /// kinds that are not in [`crate::jobs::kinds`] (tests of the queue
    /// itself); everything else uses [`NewJob::of`].
    pub fn now(kind: &'static str, payload: Value) -> Self {
        Self { kind, payload, dedupe_key: None, run_at: Timestamp::now() }
    }
}

/// The order an event is about: the aggregate itself, or the `order_id` its
/// payload names (shipments, fulfillment orders, messages).
pub(crate) fn order_of(event: &NewEvent) -> Option<String> {
    if event.aggregate_type == "order" {
        return Some(event.aggregate_id.clone());
    }
    event.payload.get("order_id").and_then(Value::as_str).map(str::to_owned)
}

/// The ride-along writes of every business transaction.
impl Tx {
    /// Inserts the event row only; [`Tx::record_event`] (in
    /// `reactions.rs`) is the entry point, which also writes what follows
    /// the event. Its position follows commit order (see `events::tail` and
    /// `engine::Primitives::insert_event`).
    pub(crate) async fn insert_event_row(&mut self, event: &NewEvent) -> DbResult<EventId> {
        let sql = self.engine().primitives().insert_event();
        let id = EventId::new();
        self.query(sql)
            .bind(id)
            .bind(event.organization_id)
            .bind(event.brand_id)
            .bind(event.event_type.as_str())
            .bind(event.aggregate_type)
            .bind(event.aggregate_id.clone())
            .bind(event.payload.to_string())
            .bind(event.actor.clone())
            .bind(Timestamp::now())
            .bind(order_of(event))
            .execute()
            .await?;
        Ok(id)
    }

    /// Records an audit row.
    pub async fn record_audit(&mut self, entry: AuditEntry) -> DbResult<()> {
        self.query(
            "INSERT INTO audit_log (id, organization_id, brand_id, actor_id, action, entity_type, entity_id,
                                    before_state, after_state, ip, user_agent, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(AuditId::new())
        .bind(entry.organization_id)
        .bind(entry.brand_id)
        .bind(entry.actor_id)
        .bind(entry.action)
        .bind(entry.entity_type)
        .bind(entry.entity_id)
        .bind(entry.before.map(|v| v.to_string()))
        .bind(entry.after.map(|v| v.to_string()))
        .bind(entry.ip)
        .bind(entry.user_agent)
        .bind(Timestamp::now())
        .execute()
        .await?;
        Ok(())
    }

    /// Enqueues `job` to run now under its kind's dedupe key. Answers
    /// `false` when a job with that key already exists (it is left as it
    /// is).
    pub async fn enqueue<J: JobKind>(&mut self, job: &J) -> DbResult<bool> {
        self.enqueue_job(NewJob::of(job)).await
    }

    /// Enqueues a job as stored: a typed one with its own dedupe key or
    /// `run_at` (`NewJob { run_at, ..NewJob::of(&job) }`). Answers `false`
    /// when a job with the same `dedupe_key` already exists (it is left as
    /// it is).
    pub async fn enqueue_job(&mut self, job: NewJob) -> DbResult<bool> {
        let now = Timestamp::now();
        let inserted = self
            .query(
                "INSERT INTO jobs (id, kind, payload, dedupe_key, status, attempts, max_attempts, run_at, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, 'queued', 0, $7, $5, $6, $6)
                 ON CONFLICT (dedupe_key) DO NOTHING",
            )
            .bind(JobId::new())
            .bind(job.kind)
            .bind(job.payload.to_string())
            .bind(job.dedupe_key)
            .bind(job.run_at)
            .bind(now)
            .bind(crate::jobs::max_attempts(job.kind))
            .execute()
            .await?;
        Ok(inserted == 1)
    }
}
