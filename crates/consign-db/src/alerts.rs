//! Staff alerts: what a person must act on because Consign gave up or
//! cannot act alone. A money job that used its attempts (`job_dead`), money
//! owed back that no provider returns by itself (`refund_due`: a bank
//! transfer that arrived after the order's stock was gone). An alert stays
//! on the dashboard until staff retry the job or resolve it; at most one
//! alert per subject is open at a time.
//!
//! When a [`SendRefund`] job dies its refund becomes `failed` ("not
//! sent: …"), so the money it held can be refunded again; retrying the job
//! ([`retry_job`]) reopens that refund instead, under the same idempotency
//! key, so a provider that did receive the first request never refunds
//! twice.

use consign_domain::{BrandId, JobId, OrganizationId, StaffAlertId, Timestamp, UserId};
use serde::Serialize;

use crate::jobs::ClaimedJob;
use crate::jobs::kinds::{ApplyWebhook, JobKind, SendRefund};
use crate::{Db, DbError, DbResult, Scope};

/// A money job used its attempts.
pub const JOB_DEAD: &str = "job_dead";

/// Money is owed back and staff must return it (a manual payment).
pub const REFUND_DUE: &str = "refund_due";

/// An alert as staff see it.
#[derive(Clone, Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct StaffAlert {
    /// Id.
    pub id: StaffAlertId,
    /// The brand it concerns, if any.
    pub brand_id: Option<BrandId>,
    /// `job_dead` or `refund_due`.
    pub kind: String,
    /// `job` or `order`.
    pub subject_type: String,
    /// The job's or the order's id.
    pub subject_id: String,
    /// The job to retry, if any.
    pub job_id: Option<JobId>,
    /// What happened and what to do, in words.
    pub message: String,
    /// Raised at.
    pub created_at: Timestamp,
}

/// An alert to raise.
#[derive(Clone, Debug)]
pub struct NewAlert {
    /// Owner; `None` for a job of no tenant.
    pub organization_id: Option<OrganizationId>,
    /// Brand, if any.
    pub brand_id: Option<BrandId>,
    /// [`JOB_DEAD`] or [`REFUND_DUE`].
    pub kind: &'static str,
    /// `job` or `order`.
    pub subject_type: &'static str,
    /// The subject's id.
    pub subject_id: String,
    /// The job to retry, if any.
    pub job_id: Option<JobId>,
    /// In words.
    pub message: String,
}

/// Raises an alert unless one is already open for the same subject.
pub async fn raise(db: &Db, alert: NewAlert) -> DbResult<()> {
    let mut tx = db.begin().await?;
    crate::orders::money::raise_alert(&mut tx, alert).await?;
    tx.commit().await?;
    Ok(())
}

/// The open alerts of the brands the caller sees, newest first.
pub async fn open(db: &Db, scope: &Scope, brand_id: Option<BrandId>, limit: i64) -> DbResult<Vec<StaffAlert>> {
    if scope.brand_filter().is_none() && brand_id.is_none() {
        // Only the CLI acts for the whole installation; it lists jobs itself.
        return Ok(Vec::new());
    }
    let mut query = db.read(
        "SELECT id, brand_id, kind, subject_type, subject_id, job_id, message, created_at FROM staff_alerts
          WHERE resolved_at IS NULL",
    );
    scope.push_brand_filter(&mut query, "brand_id");
    if let Some(brand_id) = brand_id {
        query.push(" AND brand_id = ").push_bind(brand_id);
    }
    query.push(" ORDER BY id DESC LIMIT ").push_bind(limit);
    query.fetch_all().await
}

/// An open alert the caller sees.
async fn get_open(db: &Db, scope: &Scope, alert_id: StaffAlertId) -> DbResult<StaffAlert> {
    let alert: StaffAlert = db
        .read(
            "SELECT id, brand_id, kind, subject_type, subject_id, job_id, message, created_at FROM staff_alerts
              WHERE id = $1 AND resolved_at IS NULL",
        )
        .bind(alert_id)
        .fetch_one()
        .await?;
    match alert.brand_id {
        Some(brand_id) => scope.check_brand(brand_id)?,
        None if scope.brand_filter().is_none() => {}
        None => return Err(DbError::NotFound),
    }
    Ok(alert)
}

/// A new alert, as emailed to the people who must act on it.
#[derive(Clone, Debug)]
pub struct AlertNotice {
    /// The alert.
    pub alert: StaffAlert,
    /// Its brand's name, for the sender and the subject.
    pub brand_name: String,
    /// The brand's members and its organization's members: (user, email).
    pub recipients: Vec<(UserId, String)>,
}

/// What [`AnnounceAlert`](crate::jobs::kinds::AnnounceAlert) sends for an
/// alert; `None` once it is resolved or when it concerns no brand (only the
/// CLI sees those).
pub async fn notice(db: &Db, alert_id: StaffAlertId) -> DbResult<Option<AlertNotice>> {
    let head: Option<(Option<OrganizationId>, String)> = db
        .read(
            "SELECT a.organization_id, b.name FROM staff_alerts a JOIN brands b ON b.id = a.brand_id
              WHERE a.id = $1 AND a.resolved_at IS NULL",
        )
        .bind(alert_id)
        .fetch_optional()
        .await?;
    let Some((organization_id, brand_name)) = head else { return Ok(None) };
    let alert: StaffAlert = db
        .read(
            "SELECT id, brand_id, kind, subject_type, subject_id, job_id, message, created_at FROM staff_alerts
              WHERE id = $1",
        )
        .bind(alert_id)
        .fetch_one()
        .await?;
    let recipients: Vec<(UserId, String)> = db
        .read(
            "SELECT id, email FROM users WHERE id IN (
                 SELECT user_id FROM brand_memberships WHERE brand_id = $1
                 UNION SELECT user_id FROM org_memberships WHERE organization_id = $2)
              ORDER BY email",
        )
        .bind(alert.brand_id)
        .bind(organization_id)
        .fetch_all()
        .await?;
    Ok(Some(AlertNotice { alert, brand_name, recipients }))
}

/// Marks an alert the caller sees as dealt with.
pub async fn resolve(db: &Db, scope: &Scope, alert_id: StaffAlertId) -> DbResult<()> {
    get_open(db, scope, alert_id).await?;
    let mut tx = db.begin().await?;
    tx.query("UPDATE staff_alerts SET resolved_at = $1 WHERE id = $2 AND resolved_at IS NULL")
        .bind(Timestamp::now())
        .bind(alert_id)
        .execute()
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Retries the dead job of an alert the caller sees (see [`retry_job`]) and
/// resolves the alert.
pub async fn retry(db: &Db, scope: &Scope, alert_id: StaffAlertId) -> DbResult<bool> {
    let alert = get_open(db, scope, alert_id).await?;
    let Some(job_id) = alert.job_id else {
        return Err(DbError::transition("this alert has no job to retry"));
    };
    retry_job(db, job_id).await
}

/// Puts a dead job back in the queue. A dead refund job first reopens its
/// refund (back to `pending`, sent again under the same idempotency key),
/// unless the money was refunded another way meanwhile. Resolves the job's
/// open alerts. Answers `false` when the job is not dead.
pub async fn retry_job(db: &Db, job_id: JobId) -> DbResult<bool> {
    let job = crate::jobs::get(db, job_id).await?;
    if job.status != crate::jobs::JobStatus::Dead {
        return Ok(false);
    }
    if let Some(SendRefund { refund_id }) = payload_of(&job.kind, &job.payload) {
        crate::payments::reopen_refund(db, refund_id).await?;
    }
    let requeued = crate::jobs::requeue(db, job_id).await?;
    let mut tx = db.begin().await?;
    tx.query("UPDATE staff_alerts SET resolved_at = $1 WHERE job_id = $2 AND resolved_at IS NULL")
        .bind(Timestamp::now())
        .bind(job_id)
        .execute()
        .await?;
    tx.commit().await?;
    Ok(requeued)
}

/// The payload of a job of kind `J`, or `None` for another kind (or a
/// payload that does not parse, which leaves nothing to look up).
fn payload_of<J: JobKind>(kind: &str, payload: &serde_json::Value) -> Option<J> {
    if kind != J::KIND {
        return None;
    }
    J::deserialize(payload).ok()
}

/// What a dead job was about: its tenant, and for a refund the refund.
async fn job_owner(
    db: &Db,
    kind: &str,
    payload: &serde_json::Value,
) -> DbResult<(Option<(OrganizationId, BrandId)>, String)> {
    if let Some(SendRefund { refund_id }) = payload_of(kind, payload) {
        let refund = crate::payments::refund_to_send(db, refund_id).await?;
        let what = format!(
            "A refund of {} {} on order {} could not be sent to {}",
            refund.amount, refund.currency, refund.order_id, refund.provider
        );
        return Ok((Some((refund.organization_id, refund.brand_id)), what));
    }
    if let Some(ApplyWebhook { webhook_event_id: event_id }) = payload_of(kind, payload) {
        let owner: Option<(OrganizationId, BrandId, String, String)> = db
            .read("SELECT organization_id, brand_id, provider, event_type FROM webhook_events WHERE id = $1")
            .bind(event_id)
            .fetch_optional()
            .await?;
        if let Some((organization_id, brand_id, provider, event_type)) = owner {
            let what = format!("A {provider} webhook ({event_type}) could not be applied");
            return Ok((Some((organization_id, brand_id)), what));
        }
    }
    Ok((None, format!("A {kind} job could not run")))
}

/// Records that a job died: a dead refund's refund becomes `failed` (so its
/// money can be refunded again) and staff get an alert with a retry.
pub async fn job_died(db: &Db, job: &ClaimedJob, error: &str) -> DbResult<()> {
    let payload = job.payload_json().unwrap_or_default();
    let (owner, what) = job_owner(db, &job.kind, &payload).await?;
    if let Some(SendRefund { refund_id }) = payload_of(&job.kind, &payload) {
        crate::payments::give_up_refund(db, refund_id, job.attempts, error).await?;
    }
    let error: String = error.chars().take(300).collect();
    raise(
        db,
        NewAlert {
            organization_id: owner.map(|(organization_id, _)| organization_id),
            brand_id: owner.map(|(_, brand_id)| brand_id),
            kind: JOB_DEAD,
            subject_type: "job",
            subject_id: job.id.to_string(),
            job_id: Some(job.id),
            message: format!(
                "{what} after {} attempts (last error: {error}). Retry once the cause is fixed.",
                job.attempts
            ),
        },
    )
    .await
}

/// Raises alerts for dead jobs that have none yet (a job that died when its
/// worker did, through the reaper). Answers how many.
pub async fn alert_unannounced_dead_jobs(db: &Db) -> DbResult<usize> {
    let dead: Vec<ClaimedJob> = db
        .read(
            "SELECT j.id, j.kind, j.payload, j.attempts, j.max_attempts, j.run_at, j.updated_at AS locked_until
               FROM jobs j
              WHERE j.status = 'dead' AND NOT EXISTS (SELECT 1 FROM staff_alerts a WHERE a.job_id = j.id)
              ORDER BY j.id LIMIT 100",
        )
        .fetch_all()
        .await?;
    for job in &dead {
        job_died(db, job, "the worker running it stopped too many times").await?;
    }
    Ok(dead.len())
}
