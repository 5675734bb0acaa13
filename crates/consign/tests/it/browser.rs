//! The pages in a real browser: headless Chromium driven over WebDriver
//! (`consign_testkit::browser`). A customer buys and sees the confirmation;
//! a staff member signs in, records the payment and ships; the customer's
//! order page shows the tracking link. A new organization sets itself up
//! from the dashboard's checklist and ships its first order in bulk. In
//! another scenario a customer and
//! a staff member, each in their own browser, talk on the order's thread
//! and every message arrives live, without a reload. Screenshots of the
//! main pages land in `target/screenshots/`.
//!
//! Every wait polls with a deadline. Without Chromium these tests fail with
//! the command that installs it.

use consign_testkit::browser::Browser;
use consign_testkit::{Sku, TestApp};
use serde_json::json;

#[tokio::test]
async fn a_customer_buys_staff_ship_and_the_customer_sees_the_tracking_link() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    app.stocked_brand(
        &owner,
        "acme",
        1,
        &[Sku { sku: "TENT-2P", price: 24900, stock: &[6] }, Sku { sku: "MUG-ENAMEL", price: 1800, stock: &[30] }],
    )
    .await;
    let browser = Browser::start(1280, 900).await;

    // The customer finds the tent and puts two in the cart.
    browser.goto(&app.url("/shop/acme")).await;
    browser.wait_for_text("main h1", "Brand acme").await;
    browser.screenshot("shop-catalog").await;
    let tent_link = browser
        .execute(
            "return [...document.querySelectorAll('.product h2 a')].find(a => a.textContent.includes('TENT-2P')).href;",
            vec![],
        )
        .await;
    browser.goto(tent_link.as_str().unwrap()).await;
    browser.wait_for_text("#stock-line", "In stock").await;
    browser.fill("#quantity", "2").await;
    browser.click("#add").await;
    browser.wait_for_text("#added", "Added 2").await;
    browser.wait_for_text("#cart-count", "2").await;
    browser.screenshot("shop-product").await;
    browser.goto(&app.url("/shop/acme/cart")).await;
    browser.wait_for_text("#cart", "TENT-2P").await;
    browser.wait_for_text("#cart", "$498.00").await;
    // The cart's Remove button is readable: its text is not the colour of
    // its background (the shop's button rule once painted both brand).
    let remove = browser
        .execute(
            "var s = getComputedStyle(document.querySelector('#cart button.secondary')); \
             return [s.color, s.backgroundColor];",
            vec![],
        )
        .await;
    assert_ne!(remove[0], remove[1], "the cart's Remove button is invisible: {remove}");
    browser.screenshot("shop-cart").await;

    // Checkout; a double click places one order.
    browser.click("#to-checkout").await;
    browser.wait_for_text("#summary", "TENT-2P").await;
    for (field, value) in [
        ("#name", "Casey Customer"),
        ("#email", "casey@example.com"),
        ("#line1", "1 Main St"),
        ("#city", "Springfield"),
        ("#region", "IL"),
        ("#postal_code", "62701"),
    ] {
        browser.fill(field, value).await;
    }
    browser.select("#country", "US").await;
    browser.screenshot("shop-checkout").await;
    browser.execute("var b = document.getElementById('place-order'); b.click(); b.click(); return true;", vec![]).await;
    browser.wait_for_url("/confirmation").await;
    let address = browser.execute("return location.href;", vec![]).await;
    assert!(!address.to_string().contains("token="), "the token stays in the address bar: {address}");
    browser.wait_for_text("#confirmation", "Thank you!").await;
    let instructions = browser.text("#payment-instructions").await;
    assert!(instructions.contains("by bank transfer to Brand acme"), "{instructions}");
    browser.screenshot("shop-confirmation").await;
    let orders = app.get("/api/v1/orders", &owner.token).await;
    assert_eq!(orders.body["data"].as_array().unwrap().len(), 1, "a double click placed one order");
    let tracking_url = browser
        .execute("return document.getElementById('tracking-link').href;", vec![])
        .await
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        browser.execute("return localStorage.getItem('consign_cart_acme');", vec![]).await,
        json!(null),
        "the cart is emptied after the order"
    );
    browser.goto(&tracking_url).await;
    browser.wait_for_text("#no-shipments", "Not shipped yet").await;

    // Staff sign in, record the payment and ship.
    browser.goto(&app.url("/admin/orders")).await;
    browser.wait_for_url("/admin/login").await;
    browser.fill("#email", &owner.email).await;
    browser.fill("#password", &owner.password).await;
    browser.screenshot("admin-login").await;
    browser.click("#sign-in").await;
    browser.wait_for_url("/admin/orders").await;
    browser.wait_for_text("#orders", "Casey Customer").await;
    browser.screenshot("admin-orders").await;
    browser.click("#orders tbody a").await;
    browser.wait_for_text("#payment-status", "Unpaid").await;
    // Times read in the viewer's zone; the UTC text stays as the title.
    let placed = browser
        .execute(
            "var t = document.querySelector('time[datetime]'); \
             return [t.dataset.local || '', t.title, t.textContent, t.getAttribute('datetime')];",
            vec![],
        )
        .await;
    assert_eq!(placed[0], json!("true"), "{placed}");
    assert!(placed[1].as_str().unwrap().ends_with(" UTC") && placed[2] != placed[1], "{placed}");
    browser.fill("#reference", "WIRE-7781").await;
    browser.click("#record-payment").await;
    browser.wait_for_text("#flash", "The order is paid").await;
    browser.wait_for_text("#payment-status", "Paid").await;
    app.run_jobs().await;
    let order_page = browser.url().await;
    browser.goto(&order_page).await;
    browser.fill("input[name=carrier]", "ups").await;
    browser.fill("input[name=tracking_number]", "1Z999AA10123456784").await;
    browser.click(".create-shipment").await;
    browser.wait_for_text("#flash", "Shipment created.").await;
    browser.wait_for_text("#fulfillment-status", "Shipped").await;
    browser.click(".mark-in-transit").await;
    browser.wait_for_text("#flash", "Shipment marked in transit.").await;
    browser.screenshot("admin-order").await;
    browser.goto(&app.url("/admin")).await;
    browser.wait_for_text("#open-orders", "1").await;
    browser.screenshot("admin-dashboard").await;

    // The customer's page shows the tracking link.
    browser.goto(&tracking_url).await;
    browser.wait_for_text("#shipments", "In transit").await;
    let href = browser.execute("return document.querySelector('.tracking-link').href;", vec![]).await;
    assert_eq!(href, json!("https://www.ups.com/track?tracknum=1Z999AA10123456784"));
    browser.screenshot("shop-order-tracking").await;

    // Phone width: nothing wider than the screen.
    browser.resize(390, 844).await;
    for (path, name) in [("/admin/orders", "admin-orders-phone"), ("/shop/acme", "shop-catalog-phone")] {
        browser.goto(&app.url(path)).await;
        browser.find("main h1").await;
        let fits =
            browser.execute("return document.documentElement.scrollWidth <= window.innerWidth + 1;", vec![]).await;
        assert_eq!(fits, json!(true), "{path} is wider than a phone");
        browser.screenshot(name).await;
    }
    browser.quit().await;
    app.assert_stock_invariants().await;
}

/// A new organization, with nothing made by the test but through the
/// pages: sign up, follow the dashboard's checklist (brand, warehouse,
/// product, stock), a customer buys in the shop, staff tick the order to
/// record its payment and ship it, and the customer sees the parcel.
#[tokio::test]
async fn a_new_organization_sets_up_from_the_checklist_a_customer_buys_and_staff_ship_in_bulk() {
    let app = TestApp::spawn().await;
    let staff = Browser::start(1280, 1000).await;
    let done_steps =
        || async { staff.execute("return document.querySelectorAll('#setup li.done').length;", vec![]).await };

    // Sign up from the login page; the dashboard's checklist greets them.
    staff.goto(&app.url("/admin/login")).await;
    staff.click("#sign-up").await;
    staff.wait_for_url("/admin/signup").await;
    staff.fill("#name", "Ingrid Fjord").await;
    staff.fill("#email", "ingrid@fjord.example").await;
    staff.fill("#password", "fjord supply password").await;
    staff.fill("#organization_name", "Fjord Supply").await;
    staff.screenshot("admin-signup").await;
    staff.click("#create-account").await;
    staff.wait_for_text("#setup", "Set up your shop").await;
    staff.wait_for_text("#flash", "Welcome, Ingrid Fjord").await;
    assert_eq!(done_steps().await, json!(0));
    staff.screenshot("admin-setup-checklist").await;

    // 1. The brand.
    staff.click("#setup-1").await;
    staff.wait_for_url("/admin/settings").await;
    staff.fill("#nb-name", "Fjord").await;
    staff.fill("#nb-slug", "fjord").await;
    staff.click("form[action='/admin/settings/brands'] button[type=submit]").await;
    staff.wait_for_text("#flash", "Fjord").await;
    staff.goto(&app.url("/admin")).await;
    staff.wait_for_text("#setup", "Set up your shop").await;
    assert_eq!(done_steps().await, json!(1));

    // 2. A warehouse that ships for it (the only brand is chosen already).
    staff.click("#setup-2").await;
    staff.wait_for_url("/admin/warehouses").await;
    staff.fill("#wh-name", "Bergen").await;
    staff.fill("#wh-code", "brg-1").await;
    staff.click("form[method=post][action='/admin/warehouses'] button[type=submit]").await;
    staff.wait_for_text("main", "BRG-1").await;

    // 3. A product with a variant, on sale.
    staff.goto(&app.url("/admin")).await;
    staff.click("#setup-3").await;
    staff.wait_for_url("/admin/products").await;
    staff.click("details.card summary").await;
    staff.fill("#new-title", "Storm parka").await;
    staff.fill("#new-sku", "PARKA-M").await;
    staff.fill("#new-price", "129.00").await;
    staff.fill("#new-options", "size=M").await;
    staff.click("form[method=post][action='/admin/products'] button[type=submit]").await;
    staff.wait_for_text("main", "PARKA-M").await;

    // 4. Stock on the shelf.
    staff.goto(&app.url("/admin")).await;
    staff.click("#setup-4").await;
    staff.wait_for_url("/admin/stock").await;
    staff.click("details.card summary").await;
    staff.fill("#adj-delta", "+5").await;
    staff.fill("#adj-reason", "First count").await;
    staff.click("form[action='/admin/stock/adjust'] button[type=submit]").await;
    staff.wait_for_text("main", "PARKA-M").await;
    staff.goto(&app.url("/admin")).await;
    staff.wait_for_text("#setup", "Set up your shop").await;
    assert_eq!(done_steps().await, json!(4));
    let shop = staff.execute("return document.getElementById('setup-5').href;", vec![]).await;
    assert_eq!(shop, json!(app.url("/shop/fjord")));

    // 5. A customer buys in the shop.
    let customer = Browser::start(1100, 900).await;
    customer.goto(shop.as_str().unwrap()).await;
    customer.wait_for_text("main h1", "Fjord").await;
    customer.click(".product h2 a").await;
    customer.wait_for_text("#stock-line", "Only 5 left").await;
    customer.click("#add").await;
    customer.wait_for_text("#cart-count", "1").await;
    customer.goto(&app.url("/shop/fjord/checkout")).await;
    customer.wait_for_text("#summary", "Storm parka").await;
    for (field, value) in [
        ("#name", "Kari Nordmann"),
        ("#email", "kari@example.com"),
        ("#line1", "Bryggen 1"),
        ("#city", "Bergen"),
        ("#postal_code", "5003"),
    ] {
        customer.fill(field, value).await;
    }
    customer.select("#country", "NO").await;
    customer.click("#place-order").await;
    customer.wait_for_text("#confirmation", "Thank you!").await;
    customer.click("#tracking-link").await;
    customer.wait_for_text("#no-shipments", "Not shipped yet").await;
    let order_page = customer.url().await;
    assert!(!order_page.contains("token="), "{order_page}");

    // The checklist is gone once the order is in.
    staff.goto(&app.url("/admin")).await;
    staff.wait_for_text("#open-orders", "1").await;
    assert_eq!(staff.execute("return document.getElementById('setup') === null;", vec![]).await, json!(true));

    // Staff tick the order, record its payment, then ship it.
    staff.goto(&app.url("/admin/orders")).await;
    staff.wait_for_text("#orders", "Kari Nordmann").await;
    staff.click("#orders input[name=order_id]").await;
    staff.fill("#reference", "WIRE-2001").await;
    staff.click("#bulk-pay").await;
    staff.wait_for_text("#flash", "Payment recorded in full on 1 order.").await;
    app.run_jobs().await;
    staff.click("#orders input[name=order_id]").await;
    staff.click("#bulk-ship").await;
    staff.wait_for_url("/admin/orders/bulk-ship").await;
    staff.fill("#carrier", "dhl").await;
    staff.fill("#ship-lines input[name^=tracking_]", "JD014600006281230704").await;
    staff.screenshot("admin-bulk-ship").await;
    staff.click("#ship-all").await;
    staff.wait_for_text("#flash", "Shipped 1 order.").await;

    // A filter of one's own becomes a tab of this browser.
    staff.goto(&app.url("/admin/orders?q=Kari")).await;
    staff.wait_for_text("#orders", "Kari Nordmann").await;
    staff.execute("window.prompt = function () { return 'Kari orders'; }; return true;", vec![]).await;
    staff.click("#save-view").await;
    staff.wait_for_text("#order-tabs a[aria-current=page]", "Kari orders").await;

    // The customer's page shows the parcel, without the token in its address.
    customer.goto(&order_page).await;
    customer.wait_for_text("#shipments", "JD014600006281230704").await;
    customer.quit().await;
    staff.quit().await;
    app.assert_stock_invariants().await;
}

/// The cart never holds more than is left, and a cart kept in the browser
/// is brought up to date with the server's prices and stock when shown.
#[tokio::test]
async fn the_cart_holds_no_more_than_is_left_and_shows_todays_prices() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    app.stocked_brand(
        &owner,
        "acme",
        1,
        &[Sku { sku: "LAMP", price: 5000, stock: &[3] }, Sku { sku: "MUG", price: 1800, stock: &[30] }],
    )
    .await;
    let browser = Browser::start(1100, 900).await;
    browser.goto(&app.url("/shop/acme")).await;
    let lamp = browser
        .execute(
            "return [...document.querySelectorAll('.product h2 a')].find(a => a.textContent.includes('LAMP')).href;",
            vec![],
        )
        .await;
    browser.goto(lamp.as_str().unwrap()).await;
    browser.wait_for_text("#stock-line", "Only 3 left").await;
    browser.fill("#quantity", "5").await;
    browser.execute("document.getElementById('add').click(); return true;", vec![]).await;
    browser.wait_for_text("#added", "Only 3 left: added 3 to your cart.").await;
    browser.execute("document.getElementById('add').click(); return true;", vec![]).await;
    browser.wait_for_text("#added", "Your cart already has all 3 there are.").await;

    // A cart kept from before: a mug at an old price, and a SKU gone since.
    browser
        .execute(
            "var cart = JSON.parse(localStorage.getItem('consign_cart_acme')); \
             cart.push({sku: 'MUG', title: 'Old mug', price: 100, quantity: 40}); \
             cart.push({sku: 'GONE', title: 'Old thing', price: 100, quantity: 1}); \
             localStorage.setItem('consign_cart_acme', JSON.stringify(cart)); return true;",
            vec![],
        )
        .await;
    browser.goto(&app.url("/shop/acme/cart")).await;
    browser.wait_for_text("#cart", "The price is now $18.00 (it was $1.00).").await;
    let cart = browser.wait_for_text("#cart", "No longer sold").await;
    assert!(cart.contains("In stock: your quantity is now 30."), "{cart}");
    assert!(cart.contains("Only 3 left."), "{cart}");
    assert!(cart.contains("Product MUG · MUG"), "the title is today's: {cart}");
    let kept = browser.execute("return localStorage.getItem('consign_cart_acme');", vec![]).await;
    let kept: serde_json::Value = serde_json::from_str(kept.as_str().unwrap()).unwrap();
    let mug = kept.as_array().unwrap().iter().find(|l| l["sku"] == "MUG").unwrap().clone();
    assert_eq!((mug["price"].as_i64(), mug["quantity"].as_i64()), (Some(1800), Some(30)), "{kept}");
    browser.screenshot("shop-cart-updated").await;
    browser.quit().await;
}

/// Marks the page so a later check can tell it was not reloaded.
async fn mark_page(browser: &Browser) {
    browser.execute("window.__consignStay = true; return true;", vec![]).await;
}

async fn assert_not_reloaded(browser: &Browser, what: &str) {
    let stayed = browser.execute("return window.__consignStay === true;", vec![]).await;
    assert_eq!(stayed, json!(true), "{what}: the page was reloaded");
}

#[tokio::test]
async fn a_customer_and_staff_talk_on_the_order_thread_live() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    app.stocked_brand(&owner, "acme", 1, &[Sku { sku: "TENT-2P", price: 24900, stock: &[6] }]).await;
    let placed = app.checkout("acme", &[("TENT-2P", 1)], "casey@example.com").await;
    let order_id = placed.body["order"]["id"].as_str().unwrap().to_owned();
    let token = placed.body["order_access_token"].as_str().unwrap().to_owned();
    let tracking_url = app.url(&format!("/shop/acme/orders/{order_id}?token={token}"));
    let customer = Browser::start(1100, 900).await;
    let staff = Browser::start(1280, 1000).await;

    // Staff sign in and keep the order open.
    staff.goto(&app.url(&format!("/admin/orders/{order_id}"))).await;
    staff.wait_for_url("/admin/login").await;
    staff.fill("#email", &owner.email).await;
    staff.fill("#password", &owner.password).await;
    staff.click("#sign-in").await;
    staff.wait_for_url(&format!("/admin/orders/{order_id}")).await;
    staff.wait_for_text("#no-messages", "No messages yet").await;
    staff.find("body[data-live-state=connected]").await;
    mark_page(&staff).await;

    // The customer asks on the tracking page.
    customer.goto(&tracking_url).await;
    customer.wait_for_text("#no-messages", "No messages yet").await;
    customer.fill("#message-body", "Does the tent fit two people and a dog?").await;
    customer.click("#send-message").await;
    customer.wait_for_url("sent=1").await;
    customer.wait_for_text("#messages", "Does the tent fit two people and a dog?").await;
    customer.find("body[data-live-state=connected]").await;
    mark_page(&customer).await;

    // It arrives on the staff page without a reload; staff reply and note.
    staff.wait_for_text("#messages", "Does the tent fit two people and a dog?").await;
    assert_not_reloaded(&staff, "staff order page").await;
    staff.fill("#reply-body", "Yes: two people, and the porch takes the dog.").await;
    staff.click("#send-reply").await;
    staff.wait_for_text("#flash", "Reply posted").await;
    staff.fill("#note-body", "Offered the footprint as an add-on").await;
    staff.click("#add-note").await;
    staff.wait_for_text("#flash", "Internal note added").await;
    staff.wait_for_text("#messages", "Staff only").await;
    staff.screenshot("admin-order-thread").await;

    // The customer's page shows the reply live, never the note.
    customer.wait_for_text("#messages", "the porch takes the dog").await;
    assert_not_reloaded(&customer, "customer order page").await;
    let thread = customer.text("#conversation").await;
    assert!(!thread.contains("footprint"), "the note reached the customer: {thread}");
    customer.screenshot("shop-order-thread").await;

    // The inbox refreshes live when the customer writes again.
    staff.goto(&app.url("/admin/inbox")).await;
    staff.wait_for_text("#threads", "#1001").await;
    staff.find("body[data-live-state=connected]").await;
    mark_page(&staff).await;
    customer.fill("#message-body", "Great, thank you!").await;
    customer.click("#send-message").await;
    customer.wait_for_text("#messages", "Great, thank you!").await;
    staff.find("#threads tbody tr.unread").await;
    assert_not_reloaded(&staff, "inbox").await;
    staff.screenshot("admin-inbox").await;
    customer.find("body[data-live-state=connected]").await;
    mark_page(&customer).await;

    // Staff take the payment and ship; the tracking link appears live.
    staff.goto(&app.url(&format!("/admin/orders/{order_id}"))).await;
    staff.fill("#reference", "WIRE-1").await;
    staff.click("#record-payment").await;
    staff.wait_for_text("#flash", "The order is paid").await;
    app.run_jobs().await;
    staff.goto(&app.url(&format!("/admin/orders/{order_id}"))).await;
    staff.fill("input[name=carrier]", "ups").await;
    staff.fill("input[name=tracking_number]", "1Z999AA10123456784").await;
    staff.click(".create-shipment").await;
    staff.wait_for_text("#flash", "Shipment created.").await;
    customer.wait_for_text("#shipments", "track 1Z999AA10123456784").await;
    assert_not_reloaded(&customer, "customer order page after shipping").await;
    let href = customer.execute("return document.querySelector('.tracking-link').href;", vec![]).await;
    assert_eq!(href, json!("https://www.ups.com/track?tracknum=1Z999AA10123456784"));

    // Phone width: the inbox and the thread fit.
    staff.resize(390, 844).await;
    for (path, name) in [
        ("/admin/inbox".to_owned(), "admin-inbox-phone"),
        (format!("/admin/orders/{order_id}"), "admin-order-thread-phone"),
    ] {
        staff.goto(&app.url(&path)).await;
        staff.find("main h1").await;
        let wide = staff
            .execute(
                "return [...document.querySelectorAll('main *')].filter(e => e.getBoundingClientRect().right > \
                 window.innerWidth + 1 && !e.closest('.table-wrap')).map(e => e.tagName + '#' + e.id + '.' + \
                 e.className).slice(0, 5);",
                vec![],
            )
            .await;
        let fits = staff.execute("return document.documentElement.scrollWidth <= window.innerWidth + 1;", vec![]).await;
        assert_eq!(fits, json!(true), "{path} is wider than a phone: {wide}");
        staff.screenshot(name).await;
    }
    customer.resize(390, 844).await;
    customer.goto(&tracking_url).await;
    customer.find("#message-form").await;
    let fits = customer.execute("return document.documentElement.scrollWidth <= window.innerWidth + 1;", vec![]).await;
    assert_eq!(fits, json!(true), "the customer's order page is wider than a phone");
    customer.quit().await;
    staff.quit().await;
}
