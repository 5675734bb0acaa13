//! Request metrics and the access log.
//!
//! Every response is counted by method, route template and status, and its
//! latency recorded in a histogram. Every label takes a bounded set of
//! values (a method outside the standard ones is `OTHER`, a path no route
//! matches is `unmatched`), so no client can grow the series without end. One log line per request carries the
//! request id; the internal cause of a 500 is logged here, not sent. Headers
//! and bodies are never logged, so tokens and passwords cannot leak.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use crate::error::InternalErrorDetail;

/// The middleware function.
pub async fn observe(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let request_id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    let labels =
        [("method", method_label(&method).to_owned()), ("route", route.clone()), ("status", status.to_string())];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(elapsed.as_secs_f64());
    let millis = elapsed.as_secs_f64() * 1000.0;
    if let Some(InternalErrorDetail(detail)) = response.extensions().get::<InternalErrorDetail>() {
        tracing::error!(%request_id, %method, %route, status, millis, error = %detail, "request failed");
    } else {
        tracing::info!(%request_id, %method, %route, status, millis, "request");
    }
    response
}

/// The method as a metrics label. hyper accepts any token as a method, and
/// each new label value would be a new series kept in memory.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}
