//! `consign-bench`: storefront checkout throughput and staff order-list
//! latency, measured over HTTP against a running Consign (`--url`) or one
//! this program starts on a fresh database (`--spawn`); `--scenario live`,
//! `search` and `pages` measure WebSocket fan-out, message search and page
//! render time instead (`live.rs`, `search.rs`, `pages.rs`).
//!
//! Commerce phases: (1) setup through the API, (2) timed concurrent checkouts,
//! (3) top the brand up to `--orders` orders and time the order list,
//! (4) a summary, also as one JSON line. It is a program that prints
//! numbers, not a test: nothing here passes or fails on speed. It exits
//! non-zero only when requests got wrong answers.

mod api;
mod checkout;
mod cli;
mod fill;
mod list;
mod live;
mod pages;
mod report;
mod search;
mod setup;
mod target;

use std::str::FromStr as _;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser as _;
use consign_domain::BrandId;

use crate::api::Api;
use crate::cli::{Args, FillMode, Scenario};
use crate::report::{CheckoutSummary, FillSummary, Latency, ListSummary, Machine, Summary, round2};
use crate::target::Target;

fn main() {
    let args = Args::parse();
    // A failed run ends with one readable line, not a backtrace.
    let clean = match bench(&args) {
        Ok(clean) => clean,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::exit(1);
        }
    };
    if !clean {
        eprintln!("some requests got a wrong answer (see failures above); the numbers are not comparable");
        std::process::exit(2);
    }
}

/// Starts (or finds) the server, runs the scenario and prints its summary,
/// stops the server. Answers whether every request got a right answer.
fn bench(args: &Args) -> anyhow::Result<bool> {
    args.check()?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(async {
            let mut target = Target::start(args).await?;
            let result = match args.scenario {
                Scenario::Commerce => run(args, &target).await.map(|summary| {
                    summary.print();
                    summary.clean()
                }),
                Scenario::Live => live::run(args, &target).await.map(|summary| {
                    summary.print();
                    summary.clean()
                }),
                Scenario::Search => search::run(args, &target).await.map(|summary| {
                    summary.print();
                    summary.clean()
                }),
                Scenario::Pages => pages::run(args, &target).await.map(|summary| {
                    summary.print();
                    summary.clean()
                }),
            };
            target.stop().await;
            result
        })
}

async fn run(args: &Args, target: &Target) -> anyhow::Result<Summary> {
    let machine = Machine::detect();
    println!(
        "consign-bench {}: {} CPUs, {:.1} GiB; {}",
        env!("CARGO_PKG_VERSION"),
        machine.cpus,
        machine.memory_gib,
        target.describe()
    );
    let fill_mode = match (args.fill, &target.database_url) {
        (FillMode::Auto | FillMode::Sql, Some(_)) => FillMode::Sql,
        (FillMode::Sql, None) => anyhow::bail!("--fill sql needs the database URL"),
        _ => FillMode::Api,
    };
    // The probe checkout is order one; the timed checkouts follow it.
    let orders_after_checkouts = args.checkouts + 1;
    let api_fill = match fill_mode {
        FillMode::Api => args.orders.saturating_sub(orders_after_checkouts),
        _ => 0,
    };
    let timeout = Duration::from_secs(args.request_timeout_seconds);
    let api = Api::new(&target.base_url, args.clients.max(args.fill_clients) as usize, timeout)?;

    println!("\n== 1. Setup ==");
    let started = Instant::now();
    let mut fixture =
        setup::run(&api, args.skus, args.checkouts + api_fill, args.items_per_order, &args.stock_reason).await?;
    println!("  setup done in {:.1} s", started.elapsed().as_secs_f64());

    println!("\n== 2. Checkouts: {} with {} concurrent clients ==", args.checkouts, args.clients);
    let checkouts =
        checkout::run(&api, &fixture, args.checkouts, args.clients, 0, args.items_per_order, "checkout").await?;
    let checkout_latency = Latency::of(&checkouts.latency);
    println!(
        "  {}/{} created in {:.2} s = {:.1} checkouts/s",
        checkouts.created,
        args.checkouts,
        checkouts.elapsed.as_secs_f64(),
        checkouts.per_second()
    );
    println!("  {}", checkout_latency.line());
    println!("  failures: {}", report::failures_line(&checkouts.failures));
    for sample in &checkouts.samples {
        println!("    e.g. {sample}");
    }
    if checkouts.insufficient_stock() > 0 {
        println!(
            "  WARNING: {} checkouts answered 409 insufficient_stock although every SKU was stocked for all of them",
            checkouts.insufficient_stock()
        );
    }

    println!(
        "\n== 3. Order list: top up to {} orders, then {} requests from {} readers ==",
        args.orders, args.list_requests, args.list_clients
    );
    let (fill, orders_in_brand) = match fill_mode {
        FillMode::Sql => {
            let url = target.database_url.as_deref().context("the SQL fill needs the database URL")?;
            let db = fill::connect(url).await?;
            let outcome = fill::sql(&db, &fixture, args.orders, args.items_per_order).await?;
            let brand_id = BrandId::from_str(&fixture.brand_id).context("the brand id is not an id")?;
            let orders_in_brand = fill::count_orders(&db, brand_id).await?;
            db.close().await;
            let seconds = outcome.elapsed.as_secs_f64();
            (
                FillSummary {
                    mode: "sql",
                    before: outcome.before,
                    added: outcome.added,
                    seconds: round2(seconds),
                    per_second: round2(outcome.added as f64 / seconds.max(f64::MIN_POSITIVE)),
                },
                orders_in_brand,
            )
        }
        _ => {
            let before = checkouts.created + 1;
            let outcome = checkout::run(
                &api,
                &fixture,
                api_fill,
                args.fill_clients,
                args.checkouts,
                args.items_per_order,
                "fill",
            )
            .await?;
            if !outcome.failures.is_empty() {
                println!("  fill failures: {}", report::failures_line(&outcome.failures));
            }
            let seconds = outcome.elapsed.as_secs_f64();
            (
                FillSummary {
                    mode: "api",
                    before,
                    added: outcome.created,
                    seconds: round2(seconds),
                    per_second: round2(outcome.per_second()),
                },
                before + outcome.created,
            )
        }
    };
    println!("  fill ({}): {} orders added in {:.1} s", fill.mode, fill.added, fill.seconds);
    // The checkouts may have outlived the first access token.
    setup::login(&api, &mut fixture).await?;
    let newest = newest_order_number(&api, &fixture).await?;
    println!("  the brand has {orders_in_brand} orders; the list's newest is {newest}");
    let listed = list::run(&api, &fixture, args.list_requests, args.list_clients, orders_in_brand).await?;
    let list_latency = Latency::of(&listed.latency);
    println!("  {}/{} ok in {:.2} s", listed.ok, args.list_requests, listed.elapsed.as_secs_f64());
    println!("  {}", list_latency.line());
    println!("  failures: {}", report::failures_line(&listed.failures));

    let list_seconds = listed.elapsed.as_secs_f64();
    Ok(Summary {
        bench: "consign-bench",
        version: env!("CARGO_PKG_VERSION"),
        machine,
        server_on_same_machine: target.is_local(),
        engine: target.engine,
        clients: args.clients,
        skus: args.skus,
        items_per_order: args.items_per_order,
        checkout: CheckoutSummary {
            requested: args.checkouts,
            created: checkouts.created,
            seconds: round2(checkouts.elapsed.as_secs_f64()),
            per_second: round2(checkouts.per_second()),
            latency: checkout_latency,
            failures: checkouts.failures,
        },
        fill,
        list: ListSummary {
            orders_in_brand,
            requested: args.list_requests,
            ok: listed.ok,
            seconds: round2(list_seconds),
            per_second: round2(listed.ok as f64 / list_seconds.max(f64::MIN_POSITIVE)),
            latency: list_latency,
            failures: listed.failures,
        },
    })
}

/// The number of the first order the list shows, as a check that the fill's
/// rows are what the API serves.
async fn newest_order_number(api: &Api, fixture: &setup::Fixture) -> anyhow::Result<String> {
    const ORDERS: &str = "GET /api/v1/orders?brand_id=…";
    let path = format!("/api/v1/orders?brand_id={}&limit=1", fixture.brand_id);
    let page =
        api.call(ORDERS, reqwest::Method::GET, &path, Some(&fixture.token), None, reqwest::StatusCode::OK).await?;
    Ok(page.pointer("/data/0/number").and_then(serde_json::Value::as_str).unwrap_or("none").to_owned())
}
