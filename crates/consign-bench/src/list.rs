//! Phase 3b: the staff order list, first page, from `--list-clients`
//! concurrent readers, each one request at a time.

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

/// Sends `requests` `GET /api/v1/orders?brand_id=…&limit=50` in all, from
/// `readers` concurrent readers. A page with fewer than
/// `min(50, orders_in_brand)` orders counts as a failure: a fast wrong
/// answer must not look like a fast answer.
pub async fn run(
    api: &Api,
    fixture: &Fixture,
    requests: u64,
    readers: u32,
    orders_in_brand: u64,
) -> anyhow::Result<Outcome> {
    let url = api.url(&format!("/api/v1/orders?brand_id={}&limit=50", fixture.brand_id));
    let expected_len = orders_in_brand.min(50) as usize;
    let next = std::sync::atomic::AtomicU64::new(0);
    let started = Instant::now();
    let read = |reader: u32| {
        let (url, next) = (&url, &next);
        async move {
            let mut outcome =
                Outcome { elapsed: Duration::ZERO, latency: new_histogram(), ok: 0, failures: BTreeMap::new() };
            let mut last_report = Instant::now();
            loop {
                let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if index >= requests {
                    return outcome;
                }
                let sent = Instant::now();
                let result = async {
                    let response = api.client.get(url).bearer_auth(&fixture.token).send().await?;
                    let status = response.status();
                    Ok::<_, reqwest::Error>((status, response.text().await?))
                }
                .await;
                let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                match judge(result, index, expected_len) {
                    None => {
                        outcome.ok += 1;
                        outcome.latency.saturating_record(micros);
                    }
                    Some(key) => *outcome.failures.entry(key).or_default() += 1,
                }
                if reader == 0 && last_report.elapsed() >= Duration::from_secs(5) {
                    last_report = Instant::now();
                    println!("  list: {}/{requests}, {:.0} s", index + 1, started.elapsed().as_secs_f64());
                }
            }
        }
    };
    let parts = futures_util::future::join_all((0..readers.max(1)).map(read)).await;
    let mut outcome =
        Outcome { elapsed: started.elapsed(), latency: new_histogram(), ok: 0, failures: BTreeMap::new() };
    for part in parts {
        outcome.ok += part.ok;
        outcome.latency.add(&part.latency)?;
        for (key, count) in part.failures {
            *outcome.failures.entry(key).or_default() += count;
        }
    }
    Ok(outcome)
}

/// Why an answer does not count, or None for a good one.
fn judge(
    result: Result<(reqwest::StatusCode, String), reqwest::Error>,
    index: u64,
    expected_len: usize,
) -> Option<String> {
    match result {
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
    }
}
