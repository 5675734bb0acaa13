//! The search scenario (`--scenario search`): a brand with
//! `--search-messages` messages over `--orders` orders, written straight
//! into the server's database, then the latency of
//! `GET /api/v1/messages/search` for common words, rare words, and words
//! with filters.

use std::str::FromStr as _;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use consign_domain::{BrandId, MessageId, OrderId, OrganizationId, ThreadId, Timestamp};
use reqwest::{Method, StatusCode};
use serde::Serialize;

use crate::api::Api;
use crate::cli::Args;
use crate::report::{Latency, Machine, new_histogram, round2};
use crate::target::Target;
use crate::{fill, setup};

/// Words messages are made of; the rare ones are `ref<n>`.
const COMMON: &[&str] = &[
    "where",
    "is",
    "my",
    "order",
    "parcel",
    "shipped",
    "tracking",
    "delivery",
    "refund",
    "return",
    "size",
    "colour",
    "address",
    "change",
    "late",
    "thanks",
    "please",
    "courier",
    "label",
    "warehouse",
    "damaged",
    "box",
    "today",
    "tomorrow",
    "week",
    "help",
    "payment",
    "invoice",
    "cancel",
    "exchange",
];
/// Rows per `INSERT` (9 parameters each).
const ROWS_PER_STATEMENT: usize = 500;

/// What the search run measured.
#[derive(Debug, Serialize)]
pub struct SearchSummary {
    bench: &'static str,
    machine: Machine,
    engine: &'static str,
    messages: u64,
    orders: u64,
    fill_seconds: f64,
    common_word: Latency,
    rare_word: Latency,
    word_with_filters: Latency,
    failures: u64,
}

impl SearchSummary {
    /// Prints the summary and its JSON line.
    pub fn print(&self) {
        println!("\n== Summary ==");
        println!(
            "  {} messages over {} orders on {} (filled in {:.1} s)",
            self.messages, self.orders, self.engine, self.fill_seconds
        );
        println!("  common word:       {}", self.common_word.line());
        println!("  rare word:         {}", self.rare_word.line());
        println!("  word with filters: {}", self.word_with_filters.line());
        println!("{}", serde_json::to_string(self).unwrap_or_default());
    }

    /// Whether every search answered 200.
    pub fn clean(&self) -> bool {
        self.failures == 0
    }
}

/// A deterministic pseudo-random sequence (no dependency needed for this).
struct Words(u64);

impl Words {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn body(&mut self) -> String {
        let len = 6 + self.next() % 10;
        let mut words: Vec<String> =
            (0..len).map(|_| COMMON[(self.next() % COMMON.len() as u64) as usize].to_owned()).collect();
        words.push(format!("ref{}", self.next() % 100_000));
        words.join(" ")
    }
}

/// Runs the search scenario.
pub async fn run(args: &Args, target: &Target) -> anyhow::Result<SearchSummary> {
    let machine = Machine::detect();
    let url = target
        .database_url
        .as_deref()
        .context("the search scenario writes its messages with SQL: it needs the database URL")?;
    let api = Api::new(&target.base_url, 4, Duration::from_secs(args.request_timeout_seconds))?;
    println!("\n== 1. Setup and fill: {} orders, {} messages ==", args.orders, args.search_messages);
    let mut fixture = setup::run(&api, 1, 1, 1, &args.stock_reason).await?;
    let db = fill::connect(url).await?;
    let started = Instant::now();
    fill::sql(&db, &fixture, args.orders, 1).await?;
    fill_messages(&db, &fixture, args.search_messages).await?;
    // A live database has statistics (autovacuum, SQLite's optimizer
    // defaults); a bulk load has none until someone gathers them, and
    // PostgreSQL would plan the first searches blind.
    if db.engine() == consign_db::Engine::Postgres {
        db.write_one("ANALYZE").execute().await?;
    }
    let fill_seconds = started.elapsed().as_secs_f64();
    db.close().await;
    println!("  filled in {fill_seconds:.1} s");
    setup::login(&api, &mut fixture).await?;

    println!("\n== 2. Search: {} requests per kind ==", args.list_requests);
    let mut words = Words(0x5eed_1234_abcd_ef01);
    let mut failures = 0;
    let mut time = async |query: String| -> anyhow::Result<Latency> {
        let mut histogram = new_histogram();
        for _ in 0..args.list_requests {
            let path = query
                .replace("{rare}", &format!("ref{}", words.next() % 100_000))
                .replace("{common}", COMMON[(words.next() % COMMON.len() as u64) as usize]);
            let path = format!("/api/v1/messages/search?brand_id={}&limit=50&{path}", fixture.brand_id);
            let sent = Instant::now();
            let answer = api
                .call("GET /api/v1/messages/search", Method::GET, &path, Some(&fixture.token), None, StatusCode::OK)
                .await;
            let _ = histogram.record(sent.elapsed().as_micros().max(1) as u64);
            if answer.is_err() {
                failures += 1;
            }
        }
        let latency = Latency::of(&histogram);
        println!("  {query}: {}", latency.line());
        Ok(latency)
    };
    let common_word = time("q={common}".to_owned()).await?;
    let rare_word = time("q={rare}".to_owned()).await?;
    let word_with_filters = time("q={common}&sender_role=customer&unread=true&thread_status=open".to_owned()).await?;
    Ok(SearchSummary {
        bench: "consign-bench search",
        machine,
        engine: target.engine,
        messages: args.search_messages,
        orders: args.orders,
        fill_seconds: round2(fill_seconds),
        common_word,
        rare_word,
        word_with_filters,
        failures,
    })
}

/// One thread per order and `count` customer messages spread over them.
async fn fill_messages(db: &consign_db::Db, fixture: &setup::Fixture, count: u64) -> anyhow::Result<()> {
    let brand_id = BrandId::from_str(&fixture.brand_id).context("the brand id is not an id")?;
    let organization_id =
        OrganizationId::from_str(&fixture.organization_id).context("the organization id is not an id")?;
    let orders: Vec<OrderId> =
        db.read("SELECT id FROM orders WHERE brand_id = $1 ORDER BY id").bind(brand_id).scalars().await?;
    anyhow::ensure!(!orders.is_empty(), "the brand has no orders to talk about");
    let now = Timestamp::now();
    let threads: Vec<ThreadId> = orders.iter().map(|_| ThreadId::new()).collect();
    for chunk in orders.iter().zip(&threads).collect::<Vec<_>>().chunks(ROWS_PER_STATEMENT) {
        {
            let mut tx = db.begin().await?;
            let mut query = tx.query(
                "INSERT INTO message_threads (id, organization_id, brand_id, order_id, status, first_customer_message_at, last_message_at, created_at, updated_at) ",
            );
            query.push_values(chunk, |row, (order, thread)| {
                row.bind(thread.to_string())
                    .bind(organization_id.to_string())
                    .bind(brand_id.to_string())
                    .bind(order.to_string())
                    .bind("open")
                    .bind(now)
                    .bind(now)
                    .bind(now)
                    .bind(now);
            });
            query.execute().await?;
            tx.commit().await?;
        }
    }
    let mut words = Words(0x0dd_ba11_cafe_f00d);
    let mut written = 0u64;
    let mut last_report = Instant::now();
    while written < count {
        let batch = (count - written).min(10 * ROWS_PER_STATEMENT as u64);
        let rows: Vec<(MessageId, usize, String)> = (0..batch)
            .map(|i| (MessageId::new(), ((written + i) % orders.len() as u64) as usize, words.body()))
            .collect();
        {
            let mut tx = db.begin().await?;
            for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                let mut query = tx.query(
                    "INSERT INTO messages (id, organization_id, brand_id, order_id, thread_id, body, channel, sender_role, created_at) ",
                );
                query.push_values(chunk, |row, (id, order, body)| {
                    row.bind(id.to_string())
                        .bind(organization_id.to_string())
                        .bind(brand_id.to_string())
                        .bind(orders[*order].to_string())
                        .bind(threads[*order].to_string())
                        .bind(body.clone())
                        .bind("in_app")
                        .bind("customer")
                        .bind(now);
                });
                query.execute().await?;
            }
            tx.commit().await?;
        }
        written += batch;
        if last_report.elapsed() > Duration::from_secs(5) {
            println!("  {written}/{count} messages");
            last_report = Instant::now();
        }
    }
    Ok(())
}
