//! The live scenario (`--scenario live`): many WebSocket clients on one
//! instance, messages posted at a steady rate, and how long each takes to
//! reach every subscriber allowed to see it.
//!
//! Layout: `--live-brands` brands, each with `--live-staff-per-brand` staff
//! sockets, and one customer socket per order for the rest of
//! `--live-clients`. Each message is posted by an order's customer and
//! should reach that customer's socket and every staff socket of the brand.
//! Delivery latency runs from just before the POST to the frame's arrival
//! (both ends read one clock: this process), so it includes the time the
//! write waited for the database. Fan-out latency runs from the message's
//! `created_at`, taken inside its transaction, to the frame's arrival (the
//! wall clock of one machine): the hub's share alone.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use consign_domain::Timestamp;
use futures_util::StreamExt as _;
use hdrhistogram::Histogram;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde_json::json;
use tokio::sync::{Semaphore, watch};
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

use crate::api::Api;
use crate::cli::Args;
use crate::report::{Latency, Machine, new_histogram, round2};
use crate::setup;
use crate::target::Target;

/// One order with its customer's token.
struct Order {
    brand: usize,
    id: String,
    token: String,
}

/// What the live run measured.
#[derive(Debug, Serialize)]
pub struct LiveSummary {
    bench: &'static str,
    machine: Machine,
    engine: &'static str,
    sockets: usize,
    staff_sockets: usize,
    customer_sockets: usize,
    target_messages_per_second: u32,
    messages_sent: u64,
    messages_failed: u64,
    sent_per_second: f64,
    deliveries_expected: u64,
    deliveries_received: u64,
    delivery_latency: Latency,
    fan_out_latency: Latency,
    server_rss_mib_idle: Option<f64>,
    server_rss_mib_connected: Option<f64>,
    server_rss_mib_after: Option<f64>,
}

impl LiveSummary {
    /// Prints the summary and its JSON line.
    pub fn print(&self) {
        println!("\n== Summary ==");
        println!(
            "  {} sockets ({} staff, {} customers) on {}",
            self.sockets, self.staff_sockets, self.customer_sockets, self.engine
        );
        println!(
            "  sent {} messages ({} failed) at {:.1}/s (target {}/s)",
            self.messages_sent, self.messages_failed, self.sent_per_second, self.target_messages_per_second
        );
        println!("  deliveries {}/{}", self.deliveries_received, self.deliveries_expected);
        println!("  delivery latency: {}", self.delivery_latency.line());
        println!("  fan-out latency:  {}", self.fan_out_latency.line());
        let mib = |v: Option<f64>| v.map_or_else(|| "?".to_owned(), |v| format!("{v:.1} MiB"));
        println!(
            "  server RSS: idle {}, with sockets {}, after the run {}",
            mib(self.server_rss_mib_idle),
            mib(self.server_rss_mib_connected),
            mib(self.server_rss_mib_after)
        );
        println!("{}", serde_json::to_string(self).unwrap_or_default());
    }

    /// Whether every message was accepted and delivered.
    pub fn clean(&self) -> bool {
        self.messages_failed == 0 && self.deliveries_received == self.deliveries_expected
    }
}

/// Runs the live scenario against `target`.
pub async fn run(args: &Args, target: &Target) -> anyhow::Result<LiveSummary> {
    let machine = Machine::detect();
    let brands = args.live_brands as usize;
    let staff_per_brand = args.live_staff_per_brand as usize;
    let staff_sockets = brands * staff_per_brand;
    let customers = (args.live_clients as usize).checked_sub(staff_sockets).filter(|c| *c >= brands).context(
        "--live-clients must exceed --live-brands × --live-staff-per-brand by at least one customer per brand",
    )?;
    let timeout = Duration::from_secs(args.request_timeout_seconds);
    let api = Api::new(&target.base_url, 256, timeout)?;

    println!("\n== 1. Setup: {brands} brands, {customers} orders ==");
    let started = Instant::now();
    let mut fixtures = Vec::new();
    for _ in 0..brands {
        fixtures.push(setup::run(&api, 1, customers as u64, 1, &args.stock_reason).await?);
    }
    let orders = place_orders(&api, &fixtures, customers).await?;
    println!("  {} orders placed in {:.1} s", orders.len(), started.elapsed().as_secs_f64());
    let rss_idle = target.server_rss_mib();

    println!("\n== 2. Connect {} sockets ==", staff_sockets + orders.len());
    let clock = Instant::now();
    let (stop_tx, stop_rx) = watch::channel(false);
    let received = Arc::new(AtomicU64::new(0));
    let ws_base = target.base_url.replacen("http", "ws", 1);
    let mut sockets = Vec::new();
    let connect_started = Instant::now();
    for (brand, fixture) in fixtures.iter().enumerate() {
        for _ in 0..staff_per_brand {
            let mut request = format!("{ws_base}/api/v1/live").into_client_request()?;
            request.headers_mut().insert("authorization", format!("Bearer {}", fixture.token).parse()?);
            sockets.push((brand, request));
        }
    }
    for order in &orders {
        let request = format!("{ws_base}/api/v1/live?access_token={}", order.token).into_client_request()?;
        sockets.push((order.brand, request));
    }
    let total_sockets = sockets.len();
    let mut readers = Vec::with_capacity(total_sockets);
    let gate = Arc::new(Semaphore::new(64));
    let mut connecting = Vec::with_capacity(total_sockets);
    for (_, request) in sockets {
        let gate = gate.clone();
        connecting.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await;
            tokio_tungstenite::connect_async(request).await.map(|(socket, _)| socket)
        }));
    }
    for handle in connecting {
        let socket = handle.await?.context("a WebSocket handshake failed")?;
        let mut stop = stop_rx.clone();
        let received = received.clone();
        readers.push(tokio::spawn(async move {
            let mut histogram = new_histogram();
            let mut fan_out = new_histogram();
            let (_, mut read) = socket.split();
            loop {
                tokio::select! {
                    _ = stop.changed() => break,
                    frame = read.next() => match frame {
                        Some(Ok(Frame::Text(text))) => {
                            if let Some((sent, created)) = sent_at(&text) {
                                let now = clock.elapsed().as_micros() as u64;
                                let _ = histogram.record(now.saturating_sub(sent).max(1));
                                let since_commit = Timestamp::now().as_micros().saturating_sub(created.as_micros());
                                let _ = fan_out.record((since_commit.max(1)) as u64);
                                received.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Some(Ok(_)) => {}
                        _ => break,
                    },
                }
            }
            (histogram, fan_out)
        }));
    }
    println!("  {total_sockets} connected in {:.1} s", connect_started.elapsed().as_secs_f64());
    let rss_connected = target.server_rss_mib();

    let rate = args.live_rate.max(1);
    let total = u64::from(rate) * u64::from(args.live_seconds);
    println!("\n== 3. Post {total} messages at {rate}/s ==");
    let failed = Arc::new(AtomicU64::new(0));
    let in_flight = Arc::new(Semaphore::new(512));
    let orders = Arc::new(orders);
    let send_started = Instant::now();
    let mut posts = Vec::with_capacity(total as usize);
    for i in 0..total {
        tokio::time::sleep_until((send_started + Duration::from_secs_f64(i as f64 / f64::from(rate))).into()).await;
        let permit = in_flight.clone().acquire_owned().await?;
        let (api, orders, failed) = (api.clone(), orders.clone(), failed.clone());
        posts.push(tokio::spawn(async move {
            let _permit = permit;
            let order = &orders[i as usize % orders.len()];
            let sent = clock.elapsed().as_micros();
            let path = format!("/api/v1/orders/{}/messages", order.id);
            let body = json!({"body": format!("bench {sent}")});
            let posted = api
                .call(
                    "POST /api/v1/orders/{id}/messages",
                    Method::POST,
                    &path,
                    Some(&order.token),
                    Some(&body),
                    StatusCode::CREATED,
                )
                .await;
            if posted.is_err() {
                failed.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for post in posts {
        post.await?;
    }
    let send_seconds = send_started.elapsed().as_secs_f64();
    let failed = failed.load(Ordering::Relaxed);
    let sent = total - failed;
    let expected = sent * (1 + staff_per_brand as u64);
    // Wait, with a deadline, for the last frames.
    let deadline = Instant::now() + Duration::from_secs(30);
    while received.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop_tx.send(true);
    let mut histogram: Histogram<u64> = new_histogram();
    let mut fan_out: Histogram<u64> = new_histogram();
    for reader in readers {
        let (delivery, hub) = reader.await?;
        histogram.add(delivery).context("merging latency histograms")?;
        fan_out.add(hub).context("merging latency histograms")?;
    }
    Ok(LiveSummary {
        bench: "consign-bench live",
        machine,
        engine: target.engine,
        sockets: total_sockets,
        staff_sockets,
        customer_sockets: total_sockets - staff_sockets,
        target_messages_per_second: rate,
        messages_sent: sent,
        messages_failed: failed,
        sent_per_second: round2(sent as f64 / send_seconds.max(f64::MIN_POSITIVE)),
        deliveries_expected: expected,
        deliveries_received: received.load(Ordering::Relaxed),
        delivery_latency: Latency::of(&histogram),
        fan_out_latency: Latency::of(&fan_out),
        server_rss_mib_idle: rss_idle,
        server_rss_mib_connected: rss_connected,
        server_rss_mib_after: target.server_rss_mib(),
    })
}

/// The send time a bench message carries (the `payload.body` of a
/// `message.created` frame, `bench <micros>`) and the message's `created_at`.
fn sent_at(frame: &str) -> Option<(u64, Timestamp)> {
    let event: serde_json::Value = serde_json::from_str(frame).ok()?;
    if event["type"] != "message.created" {
        return None;
    }
    let sent = event["payload"]["body"].as_str()?.strip_prefix("bench ")?.parse().ok()?;
    Some((sent, Timestamp::parse_rfc3339(event["payload"]["created_at"].as_str()?)?))
}

/// Places `count` single-item orders spread over the brands.
async fn place_orders(api: &Api, fixtures: &[setup::Fixture], count: usize) -> anyhow::Result<Vec<Order>> {
    let gate = Arc::new(Semaphore::new(32));
    let mut handles = Vec::with_capacity(count);
    for i in 0..count {
        let brand = i % fixtures.len();
        let fixture = &fixtures[brand];
        let (api, gate) = (api.clone(), gate.clone());
        let path = format!("/api/v1/storefront/{}/checkout", fixture.brand_slug);
        let body = json!({
            "items": [{"sku": fixture.variants[0].sku, "quantity": 1}],
            "customer": {"name": "Bench Customer", "email": format!("live-{i}@example.com"), "phone": null},
            "shipping_address": {"line1": "1 Main St", "line2": null, "city": "Springfield", "region": "IL",
                                 "postal_code": "62701", "country": "US"},
            "payment_provider": "manual"
        });
        handles.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await?;
            let placed = api
                .call(
                    "POST /api/v1/storefront/{slug}/checkout",
                    Method::POST,
                    &path,
                    None,
                    Some(&body),
                    StatusCode::CREATED,
                )
                .await?;
            let text = |pointer: &str| placed.pointer(pointer).and_then(|v| v.as_str()).map(str::to_owned);
            Ok::<_, anyhow::Error>(Order {
                brand,
                id: text("/order/id").context("the checkout answered no order id")?,
                token: text("/order_access_token").context("the checkout answered no order access token")?,
            })
        }));
    }
    let mut orders = Vec::with_capacity(count);
    for handle in handles {
        orders.push(handle.await??);
    }
    Ok(orders)
}
