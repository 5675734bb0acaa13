//! Phase 1: a merchant, a brand, two warehouses, the catalog and its stock,
//! all through the public API, then one probe checkout and one probe order
//! list so that a server lacking an endpoint fails here, clearly, rather
//! than 20,000 times in the load phase.

use std::time::Instant;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::api::{Api, field};

/// Everything the load phases need to know about what setup created.
#[derive(Clone, Debug)]
pub struct Fixture {
    /// Staff user's email and password (to log in again if needed).
    pub email: String,
    /// Staff user's password.
    pub password: String,
    /// Staff bearer token.
    pub token: String,
    /// The merchant organization.
    pub organization_id: String,
    /// The brand.
    pub brand_id: String,
    /// Its storefront slug.
    pub brand_slug: String,
    /// Its currency.
    pub currency: String,
    /// The SKUs on sale.
    pub variants: Vec<Variant>,
}

/// A SKU on sale.
#[derive(Clone, Debug)]
pub struct Variant {
    /// Variant id.
    pub id: String,
    /// SKU.
    pub sku: String,
    /// The order item's title: product and variant title.
    pub title: String,
    /// Unit price, minor units.
    pub price: i64,
}

/// Stock put on every SKU in the primary warehouse: enough for every
/// checkout this run can place (timed, fill and probes), plus a margin.
pub fn stock_per_sku(checkouts: u64, items_per_order: u32, skus: u32) -> i64 {
    let lines = (checkouts + 1) * u64::from(items_per_order);
    let per_sku = lines.div_ceil(u64::from(skus));
    i64::try_from(per_sku + per_sku / 10 + 100).unwrap_or(i64::MAX)
}

/// Creates the tenant, catalog and stock. `checkouts` is every checkout the
/// run will place.
pub async fn run(
    api: &Api,
    skus: u32,
    checkouts: u64,
    items_per_order: u32,
    stock_reason: &str,
) -> anyhow::Result<Fixture> {
    let run_id = uuid::Uuid::now_v7().simple().to_string();
    let short = &run_id[run_id.len() - 10..];
    let email = format!("bench-{short}@example.com");
    let password = "consign-bench-password".to_owned();

    const SIGNUP: &str = "POST /api/v1/auth/signup";
    let signup = api
        .call(
            SIGNUP,
            Method::POST,
            "/api/v1/auth/signup",
            None,
            Some(&json!({
                "email": email, "password": password, "name": "Bench Admin",
                "organization": {"name": format!("Bench Merchant {short}"), "kind": "merchant"},
            })),
            StatusCode::CREATED,
        )
        .await?;
    let token = field(&signup, "/access_token", SIGNUP)?.to_owned();
    let organization_id = field(&signup, "/organization/id", SIGNUP)?.to_owned();
    let auth = Some(token.as_str());

    const BRANDS: &str = "POST /api/v1/brands";
    let brand_slug = format!("bench-{short}");
    let currency = "USD".to_owned();
    let brand = api
        .call(
            BRANDS,
            Method::POST,
            "/api/v1/brands",
            auth,
            Some(&json!({"name": format!("Bench Brand {short}"), "slug": brand_slug, "currency": currency})),
            StatusCode::CREATED,
        )
        .await?;
    let brand_id = field(&brand, "/id", BRANDS)?.to_owned();
    println!("  merchant {email}, brand {brand_slug} ({brand_id})");

    const WAREHOUSES: &str = "POST /api/v1/warehouses";
    let mut warehouse_ids = Vec::new();
    for (name, code) in [("Bench Primary", "BENCH-A"), ("Bench Overflow", "BENCH-B")] {
        let warehouse = api
            .call(
                WAREHOUSES,
                Method::POST,
                "/api/v1/warehouses",
                auth,
                Some(&json!({"name": name, "code": code})),
                StatusCode::CREATED,
            )
            .await?;
        warehouse_ids.push(field(&warehouse, "/id", WAREHOUSES)?.to_owned());
    }
    const BRAND_WAREHOUSES: &str = "PUT /api/v1/brands/{id}/warehouses";
    let assignment: Vec<Value> = warehouse_ids
        .iter()
        .enumerate()
        .map(|(index, id)| json!({"warehouse_id": id, "priority": index + 1}))
        .collect();
    let path = format!("/api/v1/brands/{brand_id}/warehouses");
    expect_success(api, BRAND_WAREHOUSES, Method::PUT, &path, auth, &json!({"warehouses": assignment})).await?;
    println!("  warehouses {} (priority 1) and {} (priority 2)", warehouse_ids[0], warehouse_ids[1]);

    const PRODUCTS: &str = "POST /api/v1/products";
    let started = Instant::now();
    let mut variants = Vec::new();
    for n in 0..skus {
        let sku = format!("BENCH-{n:05}");
        let title = format!("Bench Tee {n}");
        let price = 1_500 + i64::from(n % 40) * 125;
        let product = api
            .call(
                PRODUCTS,
                Method::POST,
                "/api/v1/products",
                auth,
                Some(&json!({
                    "brand_id": brand_id, "title": title,
                    "description": "A product made by consign-bench.", "status": "active",
                    "variants": [{"sku": sku, "title": "Default", "options": {}, "price": {"amount": price, "currency": currency}}],
                })),
                StatusCode::CREATED,
            )
            .await?;
        let variant_id = product
            .pointer("/variants")
            .and_then(Value::as_array)
            .and_then(|variants| variants.iter().find(|v| v["sku"] == sku.as_str()))
            .and_then(|v| v["id"].as_str())
            .ok_or_else(|| anyhow::anyhow!("endpoint {PRODUCTS} answered without variant {sku}: {product}"))?;
        // What checkout writes as the order item's title for this variant.
        let title = format!("{title} — Default");
        variants.push(Variant { id: variant_id.to_owned(), sku, title, price });
    }
    println!("  {skus} products with one variant each ({:.1} s)", started.elapsed().as_secs_f64());

    const ADJUSTMENTS: &str = "POST /api/v1/inventory/adjustments";
    let per_sku = stock_per_sku(checkouts, items_per_order, skus);
    // The overflow warehouse holds a little of everything, so the brand
    // really has two locations, but priority sends every checkout to the
    // primary one while it has stock.
    for variant in &variants {
        for (warehouse_id, on_hand) in [(&warehouse_ids[0], per_sku), (&warehouse_ids[1], 100)] {
            api.call(
                ADJUSTMENTS,
                Method::POST,
                "/api/v1/inventory/adjustments",
                auth,
                Some(&json!({
                    "variant_id": variant.id, "warehouse_id": warehouse_id,
                    "set_on_hand": on_hand, "reason": stock_reason,
                })),
                StatusCode::CREATED,
            )
            .await?;
        }
    }
    println!("  stock: {per_sku} on hand per SKU in the primary warehouse, 100 in the overflow one");

    let fixture = Fixture { email, password, token, organization_id, brand_id, brand_slug, currency, variants };
    probe(api, &fixture, items_per_order).await?;
    Ok(fixture)
}

/// One checkout and one order list, each checked for its shape.
async fn probe(api: &Api, fixture: &Fixture, items_per_order: u32) -> anyhow::Result<()> {
    const CHECKOUT: &str = "POST /api/v1/storefront/{brand_slug}/checkout";
    let path = format!("/api/v1/storefront/{}/checkout", fixture.brand_slug);
    let body = crate::checkout::body(fixture, u64::MAX, items_per_order);
    let answer = api.call(CHECKOUT, Method::POST, &path, None, Some(&body), StatusCode::CREATED).await?;
    let number = answer.pointer("/order/number").and_then(Value::as_str).unwrap_or("?").to_owned();
    field(&answer, "/order/id", CHECKOUT)?;
    field(&answer, "/order_access_token", CHECKOUT)?;

    const ORDERS: &str = "GET /api/v1/orders?brand_id=…";
    let path = format!("/api/v1/orders?brand_id={}&limit=50", fixture.brand_id);
    let list = api.call(ORDERS, Method::GET, &path, Some(&fixture.token), None, StatusCode::OK).await?;
    let listed = list.get("data").and_then(Value::as_array).map(Vec::len);
    anyhow::ensure!(listed == Some(1), "endpoint {ORDERS} should list the probe order alone, answered {list}");
    println!("  probe checkout placed order {number}; the order list shows it");
    Ok(())
}

async fn expect_success(
    api: &Api,
    endpoint: &str,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: &Value,
) -> anyhow::Result<()> {
    let mut request = api.client.request(method, api.url(path)).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    let status = response.status();
    if !status.is_success() {
        let text = response.text().await.unwrap_or_default();
        return Err(crate::api::unexpected(endpoint, status, &text));
    }
    Ok(())
}

/// Logs in again: a fresh access token for a phase that starts late.
pub async fn login(api: &Api, fixture: &mut Fixture) -> anyhow::Result<()> {
    const LOGIN: &str = "POST /api/v1/auth/login";
    let answer = api
        .call(
            LOGIN,
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(&json!({"email": fixture.email, "password": fixture.password})),
            StatusCode::OK,
        )
        .await?;
    fixture.token = field(&answer, "/access_token", LOGIN)?.to_owned();
    Ok(())
}
