//! Command-line options. Defaults are the "full" run; the README shows a
//! smaller one to try first.

use clap::{Parser, ValueEnum};

/// Benchmarks Consign: storefront checkout throughput and the latency of the
/// staff order list, live fan-out, message search or page render time
/// (`--scenario`), against a running server (`--url`) or one it starts
/// itself (`--spawn`).
#[derive(Debug, Parser)]
#[command(name = "consign-bench", version, about)]
pub struct Args {
    /// Base URL of a running Consign, such as `http://127.0.0.1:8080`.
    #[arg(long, conflicts_with = "spawn", required_unless_present = "spawn")]
    pub url: Option<String>,
    /// Start the `consign` binary found next to this one (build it with
    /// `cargo build --release -p consign`) on `--database-url`, and stop it
    /// at the end.
    #[arg(long)]
    pub spawn: bool,
    /// With `--spawn`: the database to create, use and drop (default: a
    /// fresh SQLite file in a temporary directory; a `postgres://…/NAME` URL
    /// creates database NAME and drops it at the end). With `--url`: the
    /// database that server uses, which enables the SQL fill.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Keep the spawned server's database (and temporary directory) instead
    /// of deleting it at the end.
    #[arg(long)]
    pub keep_database: bool,
    /// With `--spawn` on PostgreSQL: drop the named database first if it
    /// already exists (say, left by an interrupted run).
    #[arg(long)]
    pub replace_database: bool,
    /// Concurrent checkout clients (tokio tasks sharing one keep-alive HTTP client).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub clients: u32,
    /// Checkouts to time, in total across clients.
    #[arg(long, default_value_t = 20_000)]
    pub checkouts: u64,
    /// Orders the brand should have before the order-list phase; topped up
    /// by `--fill`.
    #[arg(long, default_value_t = 100_000)]
    pub orders: u64,
    /// `GET /api/v1/orders?brand_id=…&limit=50` requests to time, in total.
    #[arg(long, default_value_t = 2_000)]
    pub list_requests: u64,
    /// Concurrent readers of the order list, each one request at a time.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub list_clients: u32,
    /// Distinct SKUs (one product and variant each).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub skus: u32,
    /// Distinct SKUs per checkout (quantity 1 each).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub items_per_order: u32,
    /// How to top the database up to `--orders`: `sql` inserts rows directly
    /// (needs the database URL), `api` places more checkouts, `auto` picks
    /// `sql` when the database URL is known.
    #[arg(long, value_enum, default_value_t = FillMode::Auto)]
    pub fill: FillMode,
    /// Concurrent clients for `--fill api`.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub fill_clients: u32,
    /// The `reason` sent with the stock adjustments of the setup phase.
    #[arg(long, default_value = "restock")]
    pub stock_reason: String,
    /// What to measure: `commerce` (checkouts and the order list), `live`
    /// (WebSocket fan-out of messages), `search` (message search over
    /// `--search-messages` messages on `--orders` orders; `--list-requests`
    /// searches per kind) or `pages` (render time of every demo page,
    /// `--page-rounds` times each).
    #[arg(long, value_enum, default_value_t = Scenario::Commerce)]
    pub scenario: Scenario,
    /// Live: WebSocket clients in all (staff plus one customer per order).
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u32).range(2..=100_000))]
    pub live_clients: u32,
    /// Live: brands (tenants) the clients are spread over.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub live_brands: u32,
    /// Live: staff sockets per brand (each sees every message of its brand).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(0..=10_000))]
    pub live_staff_per_brand: u32,
    /// Live: messages posted per second.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub live_rate: u32,
    /// Live: seconds of posting.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=3_600))]
    pub live_seconds: u32,
    /// Pages: times each page is fetched.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub page_rounds: u32,
    /// Search: messages to write before searching.
    #[arg(long, default_value_t = 1_000_000)]
    pub search_messages: u64,
    /// Per-request timeout, in seconds.
    #[arg(long, default_value_t = 60)]
    pub request_timeout_seconds: u64,
}

/// Which benchmark to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// Checkout throughput and order-list latency.
    Commerce,
    /// WebSocket delivery latency of messages to many clients.
    Live,
    /// Message search latency over many messages (`--search-messages`).
    Search,
    /// Server-side render time of every page of the demo data (a spawned
    /// server gets the demo data; a running one must have it).
    Pages,
}

/// How the order-list phase gets its orders.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FillMode {
    /// `sql` when the database URL is known, else `api`.
    Auto,
    /// Bulk `INSERT`s into the server's database.
    Sql,
    /// More storefront checkouts.
    Api,
}

impl Args {
    /// Rejects combinations that cannot run, before anything starts.
    pub fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.items_per_order <= self.skus,
            "--items-per-order ({}) cannot exceed --skus ({}): each order takes distinct SKUs",
            self.items_per_order,
            self.skus
        );
        if self.fill == FillMode::Sql && self.url.is_some() && self.database_url.is_none() {
            anyhow::bail!("--fill sql with --url needs --database-url (the database that server uses)");
        }
        Ok(())
    }
}
