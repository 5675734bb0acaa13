//! The working day in the pages: dashboard tiles count what the lists they
//! link to show, and staff act on many ticked orders at once (record their
//! payments, export them, ship them with a tracking number each).

use consign_testkit::pages::PageClient;
use consign_testkit::{Sku, StockedBrand, TestApp, TestUser};

use crate::pages::shop;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn place(app: &TestApp, shop: &StockedBrand, lines: &[(&str, i64)]) -> Value {
    let placed = app.checkout(&shop.slug, lines, "casey@example.com").await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.text);
    placed.body["order"].clone()
}

fn id(order: &Value) -> String {
    order["id"].as_str().unwrap().to_owned()
}

async fn pay(app: &TestApp, owner: &TestUser, order: &Value) {
    let amount = order["total"]["amount"].as_i64().unwrap();
    let paid = app
        .post(
            &format!("/api/v1/orders/{}/payments", id(order)),
            &owner.token,
            json!({"amount": amount, "method": "manual"}),
        )
        .await;
    assert_eq!(paid.status, StatusCode::CREATED, "{}", paid.text);
}

/// The order ids ticked-able on a list page, in its order.
fn listed(html: &str) -> Vec<String> {
    html.split("name=\"order_id\" value=\"").skip(1).map(|rest| rest[..rest.find('"').unwrap()].to_owned()).collect()
}

/// The flash a redirect set, decoded as the next page shows it.
async fn flash_after(client: &mut PageClient<'_>, response: &consign_testkit::TestResponse) -> String {
    assert_eq!(response.status, StatusCode::SEE_OTHER, "{}", response.text);
    let page = client.get(response.header("location").unwrap()).await;
    let start = page.text.find("id=\"flash\"").unwrap_or_else(|| panic!("no flash in {}", page.text));
    let text = &page.text[start..];
    let text = &text[text.find('>').unwrap() + 1..];
    text[..text.find("</div>").unwrap()].to_owned()
}

#[tokio::test]
async fn every_dashboard_tile_counts_what_the_list_it_opens_shows() {
    let app = TestApp::spawn().await;
    let (owner, shop) = shop(&app).await;
    let _unpaid = place(&app, &shop, &[("MUG", 1)]).await;
    let partly_shipped = place(&app, &shop, &[("MUG", 2)]).await;
    let paid = place(&app, &shop, &[("TENT", 1)]).await;
    let cancelled = place(&app, &shop, &[("MUG", 1)]).await;
    pay(&app, &owner, &partly_shipped).await;
    pay(&app, &owner, &paid).await;
    app.post(&format!("/api/v1/orders/{}/cancel", id(&cancelled)), &owner.token, json!({"reason": "test"})).await;
    app.run_jobs().await;
    let fulfillment =
        app.get(&format!("/api/v1/orders/{}/fulfillment-orders", id(&partly_shipped)), &owner.token).await;
    let fo_id = fulfillment.body["data"][0]["id"].as_str().unwrap().to_owned();
    let item_id = partly_shipped["items"][0]["id"].as_str().unwrap();
    let one = json!({"items": [{"order_item_id": item_id, "quantity": 1}], "carrier": "ups", "tracking_number": "1Z1"});
    let shipped = app.post(&format!("/api/v1/fulfillment-orders/{fo_id}/shipments"), &owner.token, one).await;
    assert_eq!(shipped.status, StatusCode::CREATED, "{}", shipped.text);

    let mut staff = PageClient::signed_in(&app, &owner.email, &owner.password).await;
    let figures = staff.get("/admin/dashboard/figures").await.text;
    let mut tiles = 0;
    for tile in figures.split("<a class=\"card\" href=\"").skip(1) {
        let href = tile[..tile.find('"').unwrap()].replace("&amp;", "&");
        if !href.starts_with("/admin/orders") {
            continue;
        }
        let figure = tile.split("class=\"figure\"").nth(1).unwrap();
        let count: usize =
            figure[figure.find('>').unwrap() + 1..figure.find("</div>").unwrap()].trim().parse().unwrap();
        let list = staff.get(&href).await;
        assert_eq!(list.status, StatusCode::OK, "{href}");
        assert_eq!(listed(&list.text).len(), count, "the tile of {href} says {count}");
        tiles += 1;
    }
    assert_eq!(tiles, 2, "{figures}");
    assert!(figures.contains("id=\"to-ship\">2<"), "a partly shipped paid order is still to ship: {figures}");
    assert!(figures.contains("id=\"open-orders\">3<"), "{figures}");

    // The list says each status in words, in its tone's colour.
    let list = staff.get("/admin/orders").await.text;
    for badge in [
        "badge info\">Partially shipped<",
        "badge warn\">Unfulfilled<",
        "badge good\">Paid<",
        "badge warn\">Unpaid<",
        "badge bad\">Cancelled<",
        "badge warn\">Open<",
    ] {
        assert!(list.contains(badge), "{badge} missing from {list}");
    }
    assert!(!list.contains(">partially_shipped<") && !list.contains(">unpaid<"), "a raw status code is shown");

    // The built-in views are tabs; the one shown is marked, and "To ship"
    // lists what the dashboard's tile counts.
    assert!(list.contains("href=\"/admin/orders\" aria-current=\"page\">All<"), "{list}");
    let to_ship = list.split("<a href=\"").find(|a| a.contains(">To ship<")).unwrap();
    let to_ship = to_ship[..to_ship.find('"').unwrap()].replace("&amp;", "&").replace("&#38;", "&");
    let shown = staff.get(&to_ship).await.text;
    assert!(shown.contains("aria-current=\"page\">To ship<"), "{shown}");
    assert_eq!(listed(&shown).len(), 2, "{to_ship}");
}

#[tokio::test]
async fn staff_record_payments_export_and_ship_many_ticked_orders_and_hear_about_each_one_left() {
    let app = TestApp::spawn().await;
    let (owner, shop) = shop(&app).await;
    let first = place(&app, &shop, &[("MUG", 1)]).await;
    let second = place(&app, &shop, &[("TENT", 1), ("MUG", 2)]).await;
    let already_paid = place(&app, &shop, &[("MUG", 1)]).await;
    pay(&app, &owner, &already_paid).await;
    let rival = app.sign_up("rival@other.example", "merchant").await;
    let rival_shop = app.stocked_brand(&rival, "other", 1, &[Sku { sku: "CUP", price: 900, stock: &[5] }]).await;
    let theirs = place(&app, &rival_shop, &[("CUP", 1)]).await;
    let mut staff = PageClient::signed_in(&app, &owner.email, &owner.password).await;
    let list = staff.get("/admin/orders").await;
    assert_eq!(listed(&list.text).len(), 3, "every row can be ticked");
    assert!(list.text.contains("id=\"bulk-pay\"") && list.text.contains("id=\"tick-all\""), "{}", list.text);

    // Payments in full, with one reference; the paid order and another
    // tenant's order are left alone.
    let (a, b, c, x) = (id(&first), id(&second), id(&already_paid), id(&theirs));
    let fields = [
        ("order_id", a.as_str()),
        ("order_id", b.as_str()),
        ("order_id", c.as_str()),
        ("order_id", x.as_str()),
        ("action", "record_payment"),
        ("reference", "WIRE-77"),
        ("back", "/admin/orders?status=open"),
    ];
    let paid = staff.post("/admin/orders/bulk", &fields).await;
    assert_eq!(paid.header("location"), Some("/admin/orders?status=open"));
    let flash = flash_after(&mut staff, &paid).await;
    assert_eq!(flash, "Payment recorded in full on 2 orders. Not done for 1 order: #1003: nothing is outstanding.");
    for order in [&a, &b] {
        let got = app.get(&format!("/api/v1/orders/{order}"), &owner.token).await;
        assert_eq!(got.body["payment_status"], "paid", "{}", got.text);
    }
    let untouched = app.get(&format!("/api/v1/orders/{x}"), &rival.token).await;
    assert_eq!(untouched.body["payment_status"], "unpaid", "another tenant's order was paid");
    let payments = app.get(&format!("/api/v1/orders/{a}/payments"), &owner.token).await;
    assert!(payments.text.contains("WIRE-77"), "{}", payments.text);

    // The ticked orders as CSV, with the whole address.
    let export = staff
        .post("/admin/orders/bulk", &[("order_id", a.as_str()), ("order_id", b.as_str()), ("action", "export")])
        .await;
    assert_eq!(export.status, StatusCode::OK);
    assert_eq!(export.header("content-type"), Some("text/csv; charset=utf-8"));
    let lines: Vec<&str> = export.text.lines().collect();
    assert_eq!(lines.len(), 3, "{}", export.text);
    assert!(lines[1].starts_with("#1001,") && lines[2].starts_with("#1002,"), "{}", export.text);
    assert!(lines[1].contains("\"1 Main St, 62701 Springfield, IL, US\""), "{}", export.text);

    // Shipping: one tracking number per order; an unpaid one cannot ship.
    app.run_jobs().await;
    let unpaid = place(&app, &shop, &[("MUG", 1)]).await;
    let u = id(&unpaid);
    let ship = staff
        .post(
            "/admin/orders/bulk",
            &[("order_id", a.as_str()), ("order_id", b.as_str()), ("order_id", u.as_str()), ("action", "ship")],
        )
        .await;
    assert_eq!(ship.status, StatusCode::SEE_OTHER);
    let page = staff.get(ship.header("location").unwrap()).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(
        page.text.contains(&format!("name=\"tracking_{a}\"")) && page.text.contains(&format!("name=\"tracking_{b}\""))
    );
    assert!(
        !page.text.contains(&format!("name=\"tracking_{u}\"")) && page.text.contains("not paid yet"),
        "{}",
        page.text
    );
    let (ta, tb, tu) = (format!("tracking_{a}"), format!("tracking_{b}"), format!("tracking_{u}"));
    let fields = [
        ("order_id", a.as_str()),
        ("order_id", b.as_str()),
        ("order_id", u.as_str()),
        ("carrier", "ups"),
        (ta.as_str(), "1ZBULK1"),
        (tb.as_str(), ""),
        (tu.as_str(), "1ZBULK3"),
    ];
    let shipped = staff.post("/admin/orders/bulk-ship", &fields).await;
    let flash = flash_after(&mut staff, &shipped).await;
    assert_eq!(
        flash,
        "Shipped 1 order. Not done for 2 orders: #1002: no tracking number; \
         #1004: nothing to ship here, or more than one warehouse."
    );
    let got = app.get(&format!("/api/v1/orders/{a}"), &owner.token).await;
    assert_eq!(got.body["fulfillment_status"], "shipped", "{}", got.text);
    let found = app.get("/api/v1/orders?q=1ZBULK1", &owner.token).await;
    assert_eq!(found.body["data"][0]["id"], a.as_str(), "{}", found.text);
    let got = app.get(&format!("/api/v1/orders/{b}"), &owner.token).await;
    assert_eq!(got.body["fulfillment_status"], "unfulfilled", "{}", got.text);

    // A carrier the shipment refuses is said in words, per order.
    let bad =
        staff.post("/admin/orders/bulk-ship", &[("order_id", b.as_str()), ("carrier", ""), (tb.as_str(), "1Z2")]).await;
    let flash = flash_after(&mut staff, &bad).await;
    assert!(flash.starts_with("Shipped 0 orders. Not done for 1 order: #1002: "), "{flash}");
    assert!(flash.contains("carrier"), "{flash}");

    // Nothing ticked is refused in words.
    let nothing = staff.post("/admin/orders/bulk", &[("action", "record_payment")]).await;
    assert_eq!(nothing.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(nothing.text.contains("Tick at least one order first."), "{}", nothing.text);
}
