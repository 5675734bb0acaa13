//! Money jobs: sending refunds to providers, applying stored payment
//! webhook events, and the sweeps that keep money work from stalling. The
//! first two call providers in the worker, never inside a request
//! transaction, through the [`Gateway`] (master key and provider URLs) of
//! [`crate::handlers::Services`]. Sending a refund is a use case of
//! `consign_app::refund_sending`, and brand credentials are opened by
//! `consign_app::provider_accounts`; the jobs here turn their outcomes into
//! a retry or done.
//!
//! A provider that is unavailable fails the job, which is retried; one
//! that refuses is the work's outcome (the refund is settled failed, the
//! capture becomes a failed attempt) and the job is done.
//!
//! Both are idempotent: a refund already settled is not sent again (and the
//! provider call carries the refund id as its idempotency key); an event
//! already processed is skipped by `consign_db::payments::apply_webhook`.

use std::sync::Arc;

use anyhow::Context as _;
use consign_app::{provider_accounts, refund_sending};
use consign_db::Db;
use consign_db::jobs::kinds::{ApplyWebhook, ParkStaleWebhooks, SendRefund, SweepStuckPayments};
use consign_db::payments::{self, LedgerEvent, Outcome};
use consign_domain::Timestamp;
use consign_payments::{EventAction, Gateway, PaymentError, PaymentProvider as _, ProviderKind, RefundState};

use crate::{JobError, JobResult};

/// How old stuck work must be before the sweep re-queues it.
const STUCK_AFTER_SECONDS: i64 = 15 * 60;

/// How long an event may wait for another (a refund for its capture).
const WAIT_LIMIT_SECONDS: i64 = 3 * 24 * 60 * 60;

/// Re-queues pending refunds and webhook events no job is working on, and
/// alerts staff to dead jobs no alert names yet.
pub async fn sweep_stuck(db: Db, _job: SweepStuckPayments) -> JobResult {
    let requeued = payments::requeue_stuck(&db, Timestamp::now().plus_seconds(-STUCK_AFTER_SECONDS))
        .await
        .context("cannot re-queue stuck money work")?;
    let alerted =
        consign_db::alerts::alert_unannounced_dead_jobs(&db).await.context("cannot raise alerts for dead jobs")?;
    if requeued > 0 || alerted > 0 {
        tracing::warn!(requeued, alerted, "stuck money work re-queued, dead jobs announced");
    }
    Ok(())
}

/// Sends a pending refund (`consign_app::refund_sending::send_refund`). A
/// provider that is unavailable makes the job fail and retry (the refund id
/// is the idempotency key, so a retry never refunds twice); one that refuses
/// settles the refund as failed, and the job is done.
pub async fn send_refund(db: Db, gateway: Arc<Gateway>, SendRefund { refund_id }: SendRefund) -> JobResult {
    refund_sending::send_refund(&db, &gateway, refund_id).await.map_err(|error| JobError::Retry(error.into()))
}

fn ledger_event(action: EventAction) -> LedgerEvent {
    match action {
        EventAction::Captured { payment_reference, attempt_reference, order_id, amount, currency } => {
            LedgerEvent::Captured { payment_reference, attempt_reference, order_id, amount, currency }
        }
        EventAction::Failed { attempt_reference, order_id, reason } => {
            LedgerEvent::Failed { attempt_reference, order_id, reason }
        }
        EventAction::Refund { refund_reference, payment_reference, refund_id, amount, currency, state } => {
            LedgerEvent::Refund {
                refund_reference,
                payment_reference,
                refund_id,
                amount,
                currency,
                succeeded: state == RefundState::Succeeded,
            }
        }
        EventAction::Approved { .. } | EventAction::Ignored => LedgerEvent::Ignored,
    }
}

/// Reads a stored event body with its provider's parser.
fn parse(kind: ProviderKind, event_id: &str, body: &[u8]) -> Result<consign_payments::ProviderEvent, PaymentError> {
    match kind {
        ProviderKind::Stripe => consign_payments::stripe::parse_event(body),
        ProviderKind::Paypal => consign_payments::paypal::parse_event(body),
        ProviderKind::Razorpay => {
            // Razorpay names its event in a header; the log kept it.
            let mut headers = consign_payments::Headers::new();
            if let Ok(value) = event_id.parse() {
                headers.insert("x-razorpay-event-id", value);
            }
            consign_payments::razorpay::parse_event(&headers, body)
        }
        ProviderKind::Manual => Err(PaymentError::Unsupported("manual payments have no webhooks")),
    }
}

/// Applies one stored webhook event (see `consign_db::payments::apply_webhook`).
pub async fn apply_webhook(
    db: Db,
    gateway: Arc<Gateway>,
    ApplyWebhook { webhook_event_id: id }: ApplyWebhook,
) -> JobResult {
    let stored = payments::webhook_event(&db, id).await.context("cannot load the webhook event")?;
    if stored.processed_at.is_some() {
        return Ok(());
    }
    let kind = ProviderKind::parse(&stored.provider).context("unknown provider in the webhook log")?;
    let event = match parse(kind, &stored.event_id, stored.payload.as_bytes()) {
        Ok(event) => event,
        Err(error) => {
            payments::park_webhook(&db, id, &format!("unreadable: {error}")).await?;
            return Ok(());
        }
    };
    let action = match event.action {
        EventAction::Approved { attempt_reference } => {
            // PayPal: the buyer approved; Consign captures, and the capture
            // is applied as this event's effect.
            let client = provider_accounts::provider(&db, &gateway, stored.brand_id, kind)
                .await
                .context("cannot open the brand's provider credentials")?;
            let Some(client) = client else {
                payments::park_webhook(&db, id, "the provider is no longer set up").await?;
                return Ok(());
            };
            match client.capture(&attempt_reference).await {
                Ok(action) => action,
                Err(error) if error.is_transient() => {
                    return Err(JobError::Retry(anyhow::anyhow!(
                        "capture of {attempt_reference} not done yet: {error}"
                    )));
                }
                Err(error) => EventAction::Failed { attempt_reference, order_id: None, reason: error.to_string() },
            }
        }
        action => action,
    };
    let outcome = payments::apply_webhook(&db, id, &ledger_event(action)).await?;
    match &outcome {
        Outcome::Parked(detail) => tracing::warn!(webhook_event_id = %id, %detail, "webhook event parked"),
        Outcome::Waiting(detail) => tracing::info!(webhook_event_id = %id, %detail, "webhook event waits"),
        _ => tracing::info!(webhook_event_id = %id, ?outcome, "webhook event processed"),
    }
    Ok(())
}

/// Parks events that waited for another over three days.
pub async fn park_stale(db: Db, _job: ParkStaleWebhooks) -> JobResult {
    let parked = payments::park_stale_waiting(&db, Timestamp::now().plus_seconds(-WAIT_LIMIT_SECONDS)).await?;
    if parked > 0 {
        tracing::warn!(parked, "webhook events parked after waiting too long");
    }
    Ok(())
}
