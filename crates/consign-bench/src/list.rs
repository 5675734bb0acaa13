//! Phase 3b: the staff order list, first page, one request at a time.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::Value;

use crate::api::Api;
use crate::report::new_histogram;
use crate::setup::Fixture;

/// What the list requests did.
pub struct Outcome {
    /// Wall time.
    pub elapsed: Duration,
    /// Latency of good answers, in microseconds.
    pub latency: Histogram<u64>,
    /// 200 answers with the page size expected.
    pub ok: u64,
    /// Everything else, by status (or `short page`).
    pub failures: BTreeMap<String, u64>,
}

/// Sends `requests` sequential `GET /api/v1/orders?brand_id=…&limit=50`.
/// A page with fewer than `min(50, orders_in_brand)` orders counts as a
/// failure: a fast wrong answer must not look like a fast answer.
pub async fn run(api: &Api, fixture: &Fixture, requests: u64, orders_in_brand: u64) -> anyhow::Result<Outcome> {
    let url = api.url(&format!("/api/v1/orders?brand_id={}&limit=50", fixture.brand_id));
    let expected_len = orders_in_brand.min(50) as usize;
    let mut outcome = Outcome { elapsed: Duration::ZERO, latency: new_histogram(), ok: 0, failures: BTreeMap::new() };
    let started = Instant::now();
    let mut last_report = Instant::now();
    for index in 0..requests {
        let sent = Instant::now();
        let result = async {
            let response = api.client.get(&url).bearer_auth(&fixture.token).send().await?;
            let status = response.status();
            Ok::<_, reqwest::Error>((status, response.text().await?))
        }
        .await;
        let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
        let failure = match result {
            Ok((status, text)) if status == reqwest::StatusCode::OK => {
                let listed = serde_json::from_str::<Value>(&text)
                    .ok()
                    .and_then(|page| page.get("data").and_then(Value::as_array).map(Vec::len));
                match listed {
                    Some(len) if len == expected_len => None,
                    Some(len) => Some(format!("short page ({len} of {expected_len})")),
                    None => Some("200 without data".to_owned()),
                }
            }
            Ok((status, text)) => {
                if index == 0 {
                    eprintln!("  first failure: {}", crate::api::problem_summary(&text));
                }
                Some(status.as_u16().to_string())
            }
            Err(error) => Some(format!("transport error: {error}")),
        };
        match failure {
            None => {
                outcome.ok += 1;
                outcome.latency.saturating_record(micros);
            }
            Some(key) => *outcome.failures.entry(key).or_default() += 1,
        }
        if last_report.elapsed() >= Duration::from_secs(5) {
            last_report = Instant::now();
            println!("  list: {}/{requests}, {:.0} s", index + 1, started.elapsed().as_secs_f64());
        }
    }
    outcome.elapsed = started.elapsed();
    Ok(outcome)
}
