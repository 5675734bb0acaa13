//! Operations endpoints: liveness, readiness, Prometheus metrics. The
//! OpenAPI document and the `/docs` page are mounted in [`crate::app`].

use std::sync::OnceLock;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use metrics_util::MetricKindMask;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{AppError, AppResult, Problem};
use crate::extract::AppJson;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(readyz)).routes(routes!(metrics))
}

/// How long a request series stays after its last update: a route nobody
/// called for an hour leaves the scrape until it is called again.
const IDLE_SERIES_TIMEOUT: Duration = Duration::from_secs(60 * 60);

/// The process-wide Prometheus recorder, installed on first use.
pub fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let buckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
            let recorder = PrometheusBuilder::new()
                .idle_timeout(MetricKindMask::COUNTER | MetricKindMask::HISTOGRAM, Some(IDLE_SERIES_TIMEOUT))
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets)
                .map(PrometheusBuilder::build_recorder)
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
            let handle = recorder.handle();
            // Fails only if another recorder is installed; then ours just
            // renders nothing, which metrics tests would show.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Health status.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, body = Health)))]
async fn healthz() -> AppJson<Health> {
    AppJson(Health { status: "ok" })
}

/// The process can serve: the database answers.
#[utoipa::path(get, path = "/readyz", tag = "ops",
    responses((status = 200, body = Health), (status = 503, description = "Database unreachable", body = Problem)))]
async fn readyz(State(state): State<AppState>) -> AppResult<impl IntoResponse> {
    match state.db.ping().await {
        Ok(()) => Ok(AppJson(Health { status: "ok" }).into_response()),
        Err(error) => {
            tracing::warn!(error = %error, "readiness check failed");
            let mut response = AppError::Internal(anyhow::anyhow!("database unreachable")).into_response();
            *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            Ok(response)
        }
    }
}

/// Prometheus metrics: request counts and latency by route and status, and
/// database pool occupancy. With a metrics token configured, only a
/// `Authorization: Bearer <token>` request sees them (traffic per route is
/// business information).
#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"),
              (status = 401, description = "A metrics token is configured and was not given", body = Problem)))]
async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> AppResult<impl IntoResponse> {
    if let Some(expected) = &state.config.metrics_token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .unwrap_or_default();
        if !crate::auth::tokens::constant_time_eq(presented, expected) {
            return Err(AppError::Unauthenticated("Use Authorization: Bearer <metrics token>."));
        }
    }
    let stats = state.db.pool_stats();
    metrics::gauge!("db_pool_connections", "state" => "open").set(f64::from(stats.size));
    metrics::gauge!("db_pool_connections", "state" => "idle").set(f64::from(stats.idle));
    metrics::gauge!("db_pool_connections", "state" => "in_use").set(f64::from(stats.size.saturating_sub(stats.idle)));
    // Group commit: write transactions per commit is their ratio.
    metrics::counter!("db_commits_total").absolute(stats.commits);
    metrics::counter!("db_transactions_committed_total").absolute(stats.transactions);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render()))
}
