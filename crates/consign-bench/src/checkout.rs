//! Phase 2 (and the `api` fill): a fixed number of storefront checkouts
//! spread over concurrent clients, each timed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{Value, json};

use crate::api::Api;
use crate::report::new_histogram;
use crate::setup::Fixture;

/// What a batch of checkouts did.
pub struct Outcome {
    /// Wall time from the first request to the last answer.
    pub elapsed: Duration,
    /// Latency of the 201 answers, in microseconds.
    pub latency: Histogram<u64>,
    /// 201 answers.
    pub created: u64,
    /// Every other answer, by `status code` (or transport error kind).
    pub failures: BTreeMap<String, u64>,
    /// A few failure bodies, to show what went wrong.
    pub samples: Vec<String>,
}

impl Outcome {
    /// Placed orders per second.
    pub fn per_second(&self) -> f64 {
        self.created as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    /// How many `insufficient_stock` answers came back (there should be none).
    pub fn insufficient_stock(&self) -> u64 {
        self.failures.iter().filter(|(key, _)| key.contains("insufficient_stock")).map(|(_, count)| count).sum()
    }
}

/// The checkout body for the `index`-th order: `items_per_order` distinct
/// SKUs, rotating through the catalog so stock drains evenly.
pub fn body(fixture: &Fixture, index: u64, items_per_order: u32) -> Value {
    let skus = fixture.variants.len() as u64;
    let start = index % skus;
    let items: Vec<Value> = (0..u64::from(items_per_order))
        .map(|offset| json!({"sku": fixture.variants[((start + offset) % skus) as usize].sku, "quantity": 1}))
        .collect();
    json!({
        "items": items,
        "customer": {"name": format!("Bench Customer {index}"), "email": format!("customer{index}@bench.example.com"), "phone": "+15555550100"},
        "shipping_address": {
            "line1": "1 Benchmark Way", "line2": "Unit 5", "city": "Portland",
            "region": "OR", "postal_code": "97201", "country": "US",
        },
        "payment_provider": "manual",
    })
}

/// Places `total` checkouts with `clients` concurrent tasks. `first_index`
/// keeps customer emails distinct across batches. Prints progress every
/// five seconds under `label`.
pub async fn run(
    api: &Api,
    fixture: &Fixture,
    total: u64,
    clients: u32,
    first_index: u64,
    items_per_order: u32,
    label: &str,
) -> anyhow::Result<Outcome> {
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let url = api.url(&format!("/api/v1/storefront/{}/checkout", fixture.brand_slug));
    let fixture = Arc::new(fixture.clone());
    let started = Instant::now();

    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (client, url, fixture) = (api.client.clone(), url.clone(), fixture.clone());
        let (next, done, failed) = (next.clone(), done.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            let mut part = Outcome {
                elapsed: Duration::ZERO,
                latency: new_histogram(),
                created: 0,
                failures: BTreeMap::new(),
                samples: Vec::new(),
            };
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= total {
                    break;
                }
                let body = body(&fixture, first_index + index, items_per_order);
                let key = format!("bench-{}", uuid::Uuid::now_v7().simple());
                let sent = Instant::now();
                match send(&client, &url, key, &body).await {
                    Ok((status, _)) if status == reqwest::StatusCode::CREATED => {
                        let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                        part.created += 1;
                        part.latency.saturating_record(micros);
                    }
                    Ok((status, text)) => {
                        let code = serde_json::from_str::<Value>(&text)
                            .ok()
                            .and_then(|problem| problem["code"].as_str().map(str::to_owned))
                            .unwrap_or_default();
                        let key = if code.is_empty() {
                            status.as_u16().to_string()
                        } else {
                            format!("{} {code}", status.as_u16())
                        };
                        record_failure(&mut part, key, &crate::api::problem_summary(&text));
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(error) => {
                        record_failure(&mut part, transport_kind(&error), &error.to_string());
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            part
        }));
    }

    let progress = {
        let (done, failed, label) = (done.clone(), failed.clone(), label.to_owned());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            tick.tick().await;
            let mut last = (Instant::now(), 0);
            loop {
                tick.tick().await;
                let now_done = done.load(Ordering::Relaxed);
                let rate = (now_done - last.1) as f64 / last.0.elapsed().as_secs_f64();
                last = (Instant::now(), now_done);
                println!(
                    "  {label}: {now_done}/{total} ({:.0}%), {rate:.0}/s now, {} failed, {:.0} s",
                    now_done as f64 * 100.0 / total.max(1) as f64,
                    failed.load(Ordering::Relaxed),
                    started.elapsed().as_secs_f64()
                );
            }
        })
    };

    let mut outcome = Outcome {
        elapsed: Duration::ZERO,
        latency: new_histogram(),
        created: 0,
        failures: BTreeMap::new(),
        samples: Vec::new(),
    };
    for task in tasks {
        let part = task.await?;
        outcome.latency.add(&part.latency)?;
        outcome.created += part.created;
        for (key, count) in part.failures {
            *outcome.failures.entry(key).or_default() += count;
        }
        for sample in part.samples {
            if outcome.samples.len() < 5 {
                outcome.samples.push(sample);
            }
        }
    }
    outcome.elapsed = started.elapsed();
    progress.abort();
    Ok(outcome)
}

/// One checkout, its answer read to the end (the answer is complete only then).
async fn send(
    client: &reqwest::Client,
    url: &str,
    key: String,
    body: &Value,
) -> Result<(reqwest::StatusCode, String), reqwest::Error> {
    let response = client.post(url).header("idempotency-key", key).json(body).send().await?;
    let status = response.status();
    Ok((status, response.text().await?))
}

fn record_failure(part: &mut Outcome, key: String, detail: &str) {
    if part.samples.len() < 5 {
        part.samples.push(format!("{key}: {detail}"));
    }
    *part.failures.entry(key).or_default() += 1;
}

fn transport_kind(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connect"
    } else if error.is_body() || error.is_decode() {
        "body"
    } else {
        "request"
    };
    format!("transport error: {kind}")
}
