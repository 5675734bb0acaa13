//! Every error under `/api/` is `application/problem+json` (docs/api.md), the
//! ones our handlers return and also those answered below them in plain
//! text or with no body: an extractor of axum's (a raw webhook body over the
//! limit, a WebSocket handshake without its headers) or a layer (the request
//! timeout). Such a response keeps its status and headers; its text becomes
//! the problem's `detail`.

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::error::Problem;
use crate::openapi::PROBLEM_JSON;

/// The most of a plain-text error body kept as the problem's detail.
const DETAIL_LIMIT: usize = 4 * 1024;

/// The middleware function.
pub async fn problem_errors(request: Request, next: Next) -> Response {
    let is_api = request.uri().path().starts_with("/api/");
    let response = next.run(request).await;
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with(PROBLEM_JSON));
    if !is_api || !(status.is_client_error() || status.is_server_error()) || is_problem {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = match to_bytes(body, DETAIL_LIMIT).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => String::new(),
    };
    let code = code_for(status);
    // A 500 from below our handlers says nothing a client should read.
    let detail = if text.is_empty() || status == StatusCode::INTERNAL_SERVER_ERROR {
        status.canonical_reason().unwrap_or("Error").to_owned()
    } else {
        text
    };
    let problem = Problem {
        type_: format!("urn:consign:problem:{code}"),
        title: status.canonical_reason().unwrap_or("Error").to_owned(),
        status: status.as_u16(),
        detail,
        code: code.to_owned(),
        errors: Vec::new(),
    };
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

/// The stable `code` of a status, the same `AppError` gives it.
fn code_for(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY | StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            "validation_failed"
        }
        StatusCode::UNAUTHORIZED => "unauthenticated",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => "not_found",
        StatusCode::CONFLICT => "conflict",
        StatusCode::PRECONDITION_FAILED => "precondition_failed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT | StatusCode::REQUEST_TIMEOUT => "unavailable",
        _ if status.is_server_error() => "internal_error",
        _ => "bad_request",
    }
}
