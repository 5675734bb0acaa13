//! Demo data: a 3PL, a merchant with a brand the 3PL fulfils for, and a
//! login for each; the 3PL's two warehouses serving the brand; a small
//! outdoor-gear catalog with stock in both; an order in every state. Enough
//! for a newcomer to look at.
//!
//! Everything goes through the same storage functions the API uses, so the
//! demo has its events, audit rows and stock ledger like real data.

use std::collections::BTreeMap;

use consign_db::brands::{self, Brand, NewBrand};
use consign_db::fulfillment::{self, NewShipment};
use consign_db::orders::checkout::{self, NewCheckout, RequestedLine};
use consign_db::orders::{changes, expiry};
use consign_db::products::{self, NewProduct, NewVariant};
use consign_db::stock::{self, NewAdjustment, StockChange};
use consign_db::users::{self, NewSignup};
use consign_db::warehouses::{self, Allocation, NewWarehouse};
use consign_db::{Db, Scope};
use consign_domain::OrganizationId;
use consign_domain::Timestamp;
use consign_domain::money::Money;
use consign_domain::order::{Address, Customer};
use consign_domain::roles::OrganizationKind;
use consign_domain::status::ProductStatus;
use consign_domain::status::ShipmentStatus;
use consign_web::auth::{password, tokens};

/// The demo password of every demo user.
const DEMO_PASSWORD: &str = "consign-demo";
const THREEPL_EMAIL: &str = "ops@northwind.example";
const MERCHANT_EMAIL: &str = "owner@acme.example";
/// The demo brand's slug: its shop is `/shop/acme`.
pub const DEMO_SHOP: &str = "acme";

/// A login printed after seeding.
pub struct DemoLogin {
    /// Who this is.
    pub role: &'static str,
    /// Email.
    pub email: &'static str,
}

/// Seeds the demo when the database has no users at all.
pub async fn demo_if_empty(db: &Db) -> anyhow::Result<Option<Vec<DemoLogin>>> {
    if users::count(db).await? > 0 {
        return Ok(None);
    }
    demo(db).await
}

/// The demo logins, if the demo data is there.
pub async fn demo_logins(db: &Db) -> anyhow::Result<Option<Vec<DemoLogin>>> {
    Ok(users::get_by_email(db, THREEPL_EMAIL).await?.map(|_| logins()))
}

fn logins() -> Vec<DemoLogin> {
    vec![
        DemoLogin { role: "3PL operator (Northwind Logistics)", email: THREEPL_EMAIL },
        DemoLogin { role: "Brand owner (Acme Outdoor)", email: MERCHANT_EMAIL },
    ]
}

/// Seeds the demo unless its users exist.
pub async fn demo(db: &Db) -> anyhow::Result<Option<Vec<DemoLogin>>> {
    if users::get_by_email(db, THREEPL_EMAIL).await?.is_some() {
        return Ok(None);
    }
    let hash = password::hash(DEMO_PASSWORD.to_owned()).await?;
    let (_, threepl) = users::sign_up(
        db,
        NewSignup {
            email: THREEPL_EMAIL,
            name: "Nora Northwind",
            password_hash: &hash,
            organization_name: "Northwind Logistics",
            organization_kind: OrganizationKind::Threepl,
        },
    )
    .await?;
    let (_, merchant) = users::sign_up(
        db,
        NewSignup {
            email: MERCHANT_EMAIL,
            name: "Ada Acme",
            password_hash: &hash,
            organization_name: "Acme Outdoor Co.",
            organization_kind: OrganizationKind::Merchant,
        },
    )
    .await?;
    let system = Scope::system();
    let brand = brands::create(
        db,
        &system,
        NewBrand { organization_id: merchant.id, name: "Acme Outdoor", slug: DEMO_SHOP, currency: "USD" },
    )
    .await?;
    brands::add_fulfiller(db, &system, brand.id, threepl.id).await?;
    catalog(db, &system, &brand, threepl.id).await?;
    orders(db, &brand.slug).await?;
    Ok(Some(logins()))
}

/// A demo product: title, description, the option its variants differ by,
/// and its variants as (SKU, option value, price in cents).
type DemoProduct = (&'static str, &'static str, &'static str, &'static [(&'static str, &'static str, i64)]);

const CATALOG: &[DemoProduct] = &[
    (
        "Trailhead 2P Tent",
        "A two-person, three-season backpacking tent that pitches in five minutes.",
        "color",
        &[("TENT-2P-GRN", "Forest Green", 34900), ("TENT-2P-SND", "Sand", 34900)],
    ),
    (
        "Summit Down Jacket",
        "800-fill responsibly sourced down; packs into its own pocket.",
        "size",
        &[("JKT-DWN-S", "S", 22900), ("JKT-DWN-M", "M", 22900), ("JKT-DWN-L", "L", 23900)],
    ),
    (
        "Ridge 40L Backpack",
        "A 40-litre pack with a ventilated back panel and a rain cover.",
        "color",
        &[("PACK-40-BLK", "Black", 15900), ("PACK-40-ORG", "Orange", 15900)],
    ),
    (
        "Alpine Trekking Poles",
        "Collapsible poles with cork grips, sold as a pair.",
        "material",
        &[("POLE-ALU", "Aluminium", 6900), ("POLE-CBN", "Carbon", 11900)],
    ),
];

/// The 3PL's warehouses, the brand's allocation order, the catalog and an
/// initial count in each warehouse.
async fn catalog(db: &Db, system: &Scope, brand: &Brand, threepl: OrganizationId) -> anyhow::Result<()> {
    let mut linked = Vec::new();
    for (priority, (code, name)) in [("EWR", "Newark, NJ"), ("LAX", "Los Angeles, CA")].into_iter().enumerate() {
        let warehouse = warehouses::create(db, system, NewWarehouse { organization_id: threepl, name, code }).await?;
        linked.push(Allocation { warehouse_id: warehouse.id, priority: priority as i64 + 1 });
    }
    warehouses::set_for_brand(db, system, brand.id, &linked).await?;
    for (index, (title, description, option, variants)) in CATALOG.iter().enumerate() {
        let new = NewProduct {
            title: (*title).to_owned(),
            description: (*description).to_owned(),
            status: ProductStatus::Active,
            available_at: None,
            early_access_emails: Vec::new(),
            variants: variants
                .iter()
                .map(|(sku, value, cents)| NewVariant {
                    sku: (*sku).to_owned(),
                    title: (*value).to_owned(),
                    options: BTreeMap::from([((*option).to_owned(), (*value).to_owned())]),
                    price: Money::new(*cents, brand.currency.clone()),
                })
                .collect(),
        };
        let product = products::create(db, system, brand, new).await?;
        for (offset, variant) in product.variants.iter().enumerate() {
            for (warehouse_index, allocation) in linked.iter().enumerate() {
                // Varied but deterministic counts; LAX carries less than EWR.
                let count = 40 - 5 * index as i64 - 3 * offset as i64 - 12 * warehouse_index as i64;
                let adjustment = NewAdjustment {
                    variant_id: variant.id,
                    warehouse_id: allocation.warehouse_id,
                    change: StockChange::SetOnHand(count),
                    reason: "initial count",
                    reference: None,
                };
                stock::adjust(db, system, adjustment).await?;
            }
        }
    }
    Ok(())
}

/// Prints the demo logins.
pub fn print_logins(logins: &[DemoLogin]) {
    println!("Log in with password `{DEMO_PASSWORD}` as:");
    for login in logins {
        println!("  {:<40} {}", login.role, login.email);
    }
}

/// One demo order a state: open and unpaid, paid, partly shipped, in
/// transit, delivered (completed), cancelled and expired, each reached
/// through the same storage calls the API and the worker make.
async fn orders(db: &Db, slug: &str) -> anyhow::Result<()> {
    let system = Scope::system();
    let brand = checkout::storefront_brand(db, slug).await?;
    let customers = [
        ("Riley Expired", "riley@example.com", "TENT-2P-GRN", 1),
        ("Morgan Open", "morgan@example.com", "PACK-40-BLK", 1),
        ("Jordan Paid", "jordan@example.com", "JKT-DWN-M", 2),
        ("Taylor Partial", "taylor@example.com", "POLE-ALU", 3),
        ("Alex Transit", "alex@example.com", "JKT-DWN-S", 1),
        ("Sam Delivered", "sam@example.com", "PACK-40-ORG", 1),
        ("Casey Cancelled", "casey@example.com", "POLE-CBN", 1),
    ];
    let mut placed = Vec::new();
    for (name, email, sku, quantity) in customers {
        let order = checkout::place_order(
            db,
            &brand,
            NewCheckout {
                lines: vec![RequestedLine { sku: sku.to_owned(), quantity }],
                customer: Customer { name: name.to_owned(), email: email.to_owned(), phone: None },
                shipping_address: Address {
                    line1: "500 Market St".into(),
                    line2: None,
                    city: "San Francisco".into(),
                    region: Some("CA".into()),
                    postal_code: "94105".into(),
                    country: "US".into(),
                },
                payment_provider: "manual".into(),
                order_id: consign_domain::OrderId::new(),
                // Nobody holds these tokens: demo customers cannot sign in.
                access_token_hash: tokens::sha256_hex(&tokens::random_hex(32)),
            },
        )
        .await?;
        if placed.is_empty() {
            // The first order's hold runs out: sweep as if a bank transfer's
            // hold (3 days) had passed.
            expiry::expire_due(db, Timestamp::now().plus_seconds(4 * 24 * 3600), 10).await?;
        }
        placed.push(order);
    }
    for order in &placed[2..6] {
        changes::record_payment(db, &system, order.id, order.total.amount, None, Some("demo transfer")).await?;
        fulfillment::create_for_order(db, order.id).await?;
    }
    changes::cancel(db, &system, placed[6].id, "Customer changed their mind").await?;
    for (order, quantity, status) in [
        (&placed[3], 1, None),
        (&placed[4], 1, Some(ShipmentStatus::InTransit)),
        (&placed[5], 1, Some(ShipmentStatus::Delivered)),
    ] {
        let fulfillment_order = &fulfillment::for_order(db, &system, order.id).await?[0];
        let item = &fulfillment_order.items[0];
        let shipment = fulfillment::create_shipment(
            db,
            &system,
            fulfillment_order.id,
            NewShipment {
                items: vec![(item.order_item_id, quantity)],
                carrier: "ups".into(),
                tracking_number: format!("1Z999AA1{}", order.number.trim_start_matches('#')),
            },
        )
        .await?;
        if let Some(status) = status {
            fulfillment::set_shipment_status(db, &system, shipment.id, ShipmentStatus::InTransit).await?;
            if status == ShipmentStatus::Delivered {
                fulfillment::set_shipment_status(db, &system, shipment.id, status).await?;
            }
        }
    }
    Ok(())
}
