//! A thin JSON client for the setup calls. Any unexpected answer is an
//! error naming the endpoint; a 404 or 405 says the server may predate it,
//! since the benchmark drives endpoints that land at different times.

use std::time::Duration;

use anyhow::Context as _;
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// The API under test.
#[derive(Clone)]
pub struct Api {
    /// The shared keep-alive client; the load phases use it directly.
    pub client: reqwest::Client,
    /// Base URL without a trailing slash, such as `http://127.0.0.1:8080`.
    pub base: String,
}

impl Api {
    /// A client keeping up to `idle_per_host` connections alive.
    pub fn new(base: &str, idle_per_host: usize, timeout: Duration) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(idle_per_host)
            .tcp_nodelay(true)
            .timeout(timeout)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Self { client, base: base.trim_end_matches('/').to_owned() })
    }

    /// The absolute URL of an API path such as `/api/v1/orders`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends one request and returns its JSON body when the status is
    /// `expect`. `endpoint` names the route for error messages
    /// (`"POST /api/v1/warehouses"`); `path` is the concrete path. POSTs get
    /// a fresh `Idempotency-Key`.
    pub async fn call(
        &self,
        endpoint: &str,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        expect: StatusCode,
    ) -> anyhow::Result<Value> {
        let mut request = self.client.request(method.clone(), self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if method == Method::POST {
            request = request.header("idempotency-key", format!("bench-{}", uuid::Uuid::now_v7().simple()));
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.with_context(|| format!("endpoint {endpoint}: request failed"))?;
        let status = response.status();
        let text = response.text().await.with_context(|| format!("endpoint {endpoint}: reading the answer failed"))?;
        if status != expect {
            return Err(unexpected(endpoint, status, &text));
        }
        serde_json::from_str(&text)
            .with_context(|| format!("endpoint {endpoint} answered {status} with a body that is not JSON"))
    }
}

/// The error for an answer other than the expected one.
pub fn unexpected(endpoint: &str, status: StatusCode, body: &str) -> anyhow::Error {
    let detail = problem_summary(body);
    if status == StatusCode::NOT_FOUND || status == StatusCode::METHOD_NOT_ALLOWED {
        anyhow::anyhow!(
            "endpoint {endpoint} answered {}: is this Consign version recent enough? ({detail})",
            status.as_u16()
        )
    } else {
        anyhow::anyhow!("endpoint {endpoint} answered {}: {detail}", status.as_u16())
    }
}

/// `code: detail` of a problem+json body, or the start of any other body.
pub fn problem_summary(body: &str) -> String {
    match serde_json::from_str::<Value>(body) {
        Ok(problem) if problem.get("code").is_some() => {
            let code = problem["code"].as_str().unwrap_or("?");
            let detail = problem["detail"].as_str().or_else(|| problem["title"].as_str()).unwrap_or("");
            let fields = problem["errors"]
                .as_array()
                .map(|errors| {
                    errors
                        .iter()
                        .map(|e| {
                            format!("{}: {}", e["field"].as_str().unwrap_or("?"), e["message"].as_str().unwrap_or("?"))
                        })
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .unwrap_or_default();
            if fields.is_empty() { format!("{code}: {detail}") } else { format!("{code}: {detail} [{fields}]") }
        }
        _ => body.chars().take(300).collect(),
    }
}

/// A string field of a JSON answer, or an error naming it.
pub fn field<'a>(value: &'a Value, pointer: &str, endpoint: &str) -> anyhow::Result<&'a str> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .with_context(|| format!("endpoint {endpoint} answered without `{pointer}`: {value}"))
}
