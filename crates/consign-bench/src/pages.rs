//! The pages scenario (`--scenario pages`): server-side render time of every
//! page of the demo data, for staff (signed in through the login form, as
//! each demo user) and for customers (the shop, its product pages, and the
//! confirmation and order page of an order placed for the run).
//!
//! Each page is fetched `--page-rounds` times, one request at a time, so
//! the figure is the time to render one page, not throughput. The time
//! runs from sending the request to the last byte of the body.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use reqwest::header::{COOKIE, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde_json::{Value, json};

use crate::api::{Api, field};
use crate::cli::Args;
use crate::report::{Latency, Machine, new_histogram};
use crate::target::Target;

/// The demo users (`consign seed`) and their password.
const DEMO_USERS: &[&str] = &["owner@acme.example", "ops@northwind.example"];
const DEMO_PASSWORD: &str = "consign-demo";

/// One page's render times.
#[derive(Debug, Serialize)]
pub struct PageTime {
    path: String,
    /// The demo user it was rendered for; none for customer pages.
    user: Option<&'static str>,
    latency: Latency,
}

/// What the pages run measured.
#[derive(Debug, Serialize)]
pub struct PagesSummary {
    bench: &'static str,
    machine: Machine,
    engine: &'static str,
    pages: usize,
    rounds: u32,
    /// Every request of every page together.
    all: Latency,
    /// The page with the highest p99.
    slowest: Option<PageTime>,
    failures: u64,
    per_page: Vec<PageTime>,
}

impl PagesSummary {
    /// Prints the summary and its JSON line.
    pub fn print(&self) {
        println!("\n== Summary ==");
        println!("  {} pages × {} rounds on {}", self.pages, self.rounds, self.engine);
        println!("  every page: {}", self.all.line());
        if let Some(slowest) = &self.slowest {
            let user = slowest.user.unwrap_or("customer");
            println!("  slowest:    {} ({user}) {}", slowest.path, slowest.latency.line());
        }
        println!("  failures:   {}", self.failures);
        println!("{}", serde_json::to_string(self).unwrap_or_default());
    }

    /// Whether every page answered 200.
    pub fn clean(&self) -> bool {
        self.failures == 0
    }
}

/// A signed-in staff member's cookies.
struct Session {
    cookies: BTreeMap<String, String>,
}

impl Session {
    fn header(&self) -> String {
        self.cookies.iter().map(|(name, value)| format!("{name}={value}")).collect::<Vec<_>>().join("; ")
    }

    fn keep(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all(SET_COOKIE) {
            let Some((name, rest)) = value.to_str().ok().and_then(|text| text.split_once('=')) else { continue };
            let value = rest.split(';').next().unwrap_or_default();
            if value.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    /// Signs in through the login form, as a browser does.
    async fn sign_in(api: &Api, email: &str) -> anyhow::Result<Self> {
        let mut session = Self { cookies: BTreeMap::new() };
        let form = api.client.get(api.url("/admin/login")).send().await.context("GET /admin/login failed")?;
        session.keep(&form);
        let html = form.text().await.context("reading the login form failed")?;
        let csrf = value_after(&html, "name=\"_csrf\"").context("the login form has no _csrf field")?;
        let answer = api
            .client
            .post(api.url("/admin/login"))
            .header(COOKIE, session.header())
            .form(&[("email", email), ("password", DEMO_PASSWORD), ("_csrf", &csrf)])
            .send()
            .await
            .context("POST /admin/login failed")?;
        anyhow::ensure!(
            answer.status() == StatusCode::SEE_OTHER,
            "signing in as {email} answered {} (does the server have the demo data?)",
            answer.status()
        );
        session.keep(&answer);
        Ok(session)
    }
}

/// The `value="…"` of the first tag containing `marker`.
fn value_after(html: &str, marker: &str) -> Option<String> {
    let tag = &html[html.find(marker)?..];
    let tag = &tag[..tag.find('>')?];
    let value = &tag[tag.find("value=\"")? + 7..];
    Some(value[..value.find('"')?].to_owned())
}

/// A page to time, with the session it needs (an index into `DEMO_USERS`,
/// or past them the customer's); none for the shop's public pages.
struct Page {
    path: String,
    session: Option<usize>,
}

/// Runs the pages scenario.
pub async fn run(args: &Args, target: &Target) -> anyhow::Result<PagesSummary> {
    let machine = Machine::detect();
    let api = Api::new(&target.base_url, 2, Duration::from_secs(args.request_timeout_seconds))?;
    println!("\n== 1. Sign in and list the pages ==");
    let mut sessions = Vec::new();
    let mut pages = Vec::new();
    for (index, email) in DEMO_USERS.iter().enumerate() {
        sessions.push(Session::sign_in(&api, email).await?);
        pages.extend(staff_pages(&api, email).await?.into_iter().map(|path| Page { path, session: Some(index) }));
    }
    let (customer_paths, customer) = customer_pages(&api).await?;
    sessions.push(customer);
    let customer = Some(sessions.len() - 1);
    pages.extend(customer_paths.into_iter().map(|path| Page { path, session: customer }));
    println!("  {} pages", pages.len());

    println!("\n== 2. Render each page {} times ==", args.page_rounds);
    let mut all = new_histogram();
    let mut per_page = Vec::new();
    let mut failures = 0u64;
    for page in &pages {
        let mut histogram = new_histogram();
        for _ in 0..args.page_rounds {
            let mut request = api.client.get(api.url(&page.path));
            if let Some(session) = page.session {
                request = request.header(COOKIE, sessions[session].header());
            }
            let started = Instant::now();
            let answer = request.send().await;
            let status = answer.as_ref().map(reqwest::Response::status).ok();
            let body = match answer {
                Ok(answer) => answer.bytes().await.ok(),
                Err(_) => None,
            };
            let micros = started.elapsed().as_micros() as u64;
            if status != Some(StatusCode::OK) || body.is_none() {
                failures += 1;
                eprintln!("  {} answered {status:?}", page.path);
                continue;
            }
            histogram.saturating_record(micros.max(1));
            all.saturating_record(micros.max(1));
        }
        let user = page.session.and_then(|session| DEMO_USERS.get(session).copied());
        per_page.push(PageTime { path: page.path.clone(), user, latency: Latency::of(&histogram) });
    }
    per_page.sort_by(|a, b| b.latency.p99_ms.total_cmp(&a.latency.p99_ms));
    for page in per_page.iter().take(10) {
        println!("  {:<70} {:<22} {}", page.path, page.user.unwrap_or("customer"), page.latency.line());
    }
    let slowest = per_page.first().map(|page| PageTime {
        path: page.path.clone(),
        user: page.user,
        latency: page.latency.clone(),
    });
    Ok(PagesSummary {
        bench: "pages",
        machine,
        engine: target.engine,
        pages: pages.len(),
        rounds: args.page_rounds,
        all: Latency::of(&all),
        slowest,
        failures,
        per_page,
    })
}

/// Every staff page this demo user can open: the fixed pages, each order,
/// each product and its variants' stock history, each brand's settings.
async fn staff_pages(api: &Api, email: &str) -> anyhow::Result<Vec<String>> {
    let login = json!({"email": email, "password": DEMO_PASSWORD});
    let tokens = api
        .call("POST /api/v1/auth/login", Method::POST, "/api/v1/auth/login", None, Some(&login), StatusCode::OK)
        .await?;
    let token = field(&tokens, "/access_token", "POST /api/v1/auth/login")?;
    let mut paths: Vec<String> = [
        "/admin",
        "/admin/orders",
        "/admin/orders?status=open",
        "/admin/orders.csv",
        "/admin/products",
        "/admin/stock",
        "/admin/warehouses",
        "/admin/settings",
        "/admin/inbox",
        "/admin/inbox?unread=1",
    ]
    .map(String::from)
    .to_vec();
    let ids = |list: &Value| -> Vec<String> {
        list["data"].as_array().into_iter().flatten().filter_map(|row| row["id"].as_str().map(String::from)).collect()
    };
    let orders =
        api.call("GET /api/v1/orders", Method::GET, "/api/v1/orders?limit=200", Some(token), None, StatusCode::OK);
    paths.extend(ids(&orders.await?).into_iter().map(|id| format!("/admin/orders/{id}")));
    let products =
        api.call("GET /api/v1/products", Method::GET, "/api/v1/products?limit=200", Some(token), None, StatusCode::OK);
    let products = products.await?;
    paths.extend(ids(&products).into_iter().map(|id| format!("/admin/products/{id}")));
    let variants = products["data"].as_array().into_iter().flatten().flat_map(|product| {
        product["variants"].as_array().into_iter().flatten().filter_map(|variant| variant["id"].as_str())
    });
    paths.extend(variants.map(|id| format!("/admin/stock/history?variant_id={id}")));
    let brands = api.call("GET /api/v1/brands", Method::GET, "/api/v1/brands", Some(token), None, StatusCode::OK);
    paths.extend(ids(&brands.await?).into_iter().map(|id| format!("/admin/settings/brands/{id}")));
    Ok(paths)
}

/// The demo shop's pages, and the confirmation and order page of an order
/// placed now, with the customer's session: the order cookie its link
/// leaves (its access token is only ever shown to its customer).
async fn customer_pages(api: &Api) -> anyhow::Result<(Vec<String>, Session)> {
    let slug = "acme";
    let catalog_path = format!("/api/v1/storefront/{slug}/products");
    let catalog =
        api.call("GET /api/v1/storefront/{slug}/products", Method::GET, &catalog_path, None, None, StatusCode::OK);
    let catalog = catalog.await?;
    let products = catalog["data"].as_array().context("the storefront answered without `data`")?;
    let mut paths = vec![format!("/shop/{slug}"), format!("/shop/{slug}/cart"), format!("/shop/{slug}/checkout")];
    let mut sku = None;
    for product in products {
        let id = product["id"].as_str().context("a storefront product without `id`")?;
        paths.push(format!("/shop/{slug}/products/{id}"));
        let on_sale = product["on_sale"].as_bool() == Some(true);
        let in_stock = product["variants"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|variant| on_sale && variant["available"].as_i64().is_some_and(|available| available > 0));
        if let Some(variant) = in_stock {
            sku = sku.or_else(|| variant["sku"].as_str().map(String::from));
        }
    }
    let sku = sku.context("no demo product has stock for the order page")?;
    let order = json!({
        "items": [{"sku": sku, "quantity": 1}],
        "customer": {"name": "Bench Customer", "email": "bench@example.com", "phone": "+15550100"},
        "shipping_address": {"line1": "1 Main St", "city": "Springfield", "region": "IL",
                             "postal_code": "62701", "country": "US"},
        "payment_provider": "manual",
    });
    let checkout_path = format!("/api/v1/storefront/{slug}/checkout");
    let endpoint = "POST /api/v1/storefront/{slug}/checkout";
    let placed = api.call(endpoint, Method::POST, &checkout_path, None, Some(&order), StatusCode::CREATED).await?;
    let id = field(&placed, "/order/id", endpoint)?;
    let token = field(&placed, "/order_access_token", endpoint)?;
    paths.push(format!("/shop/{slug}/orders/{id}/confirmation"));
    paths.push(format!("/shop/{slug}/orders/{id}"));
    let customer = Session { cookies: BTreeMap::from([("consign_order".to_owned(), token.to_owned())]) };
    Ok((paths, customer))
}
