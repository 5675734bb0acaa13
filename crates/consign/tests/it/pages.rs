//! The web pages over real HTTP: staff login and sessions, CSRF on every
//! form, the same tenancy as the API, the staff actions on an order, the
//! customer pages, and every page of the demo data. The browser scenarios
//! are in `browser.rs`; render time is `consign-bench --scenario pages`.

use consign_testkit::pages::{PageClient, attribute_after, form_body};
use consign_testkit::{Sku, StockedBrand, TestApp, TestDb, TestUser};
use consign_web::WebConfig;
use reqwest::StatusCode;
use serde_json::Value;

pub(crate) async fn shop(app: &TestApp) -> (TestUser, StockedBrand) {
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let shop = app
        .stocked_brand(
            &owner,
            "acme",
            1,
            &[Sku { sku: "TENT", price: 10000, stock: &[5] }, Sku { sku: "MUG", price: 1500, stock: &[20] }],
        )
        .await;
    (owner, shop)
}

async fn place(app: &TestApp, shop: &StockedBrand, lines: &[(&str, i64)]) -> Value {
    let placed = app.checkout(&shop.slug, lines, "casey@example.com").await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.text);
    placed.body
}

#[tokio::test]
async fn staff_sign_in_with_a_secure_cookie_and_sign_out_ends_the_session() {
    let app = TestApp::spawn_with(WebConfig { secure_cookies: true, ..WebConfig::default() }).await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;

    let mut client = PageClient::new(&app);
    let wrong = client.login(&owner.email, "not the password").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.text.contains("Wrong email or password."), "{}", wrong.text);

    let login = client.login(&owner.email, &owner.password).await;
    assert_eq!(login.status, StatusCode::SEE_OTHER);
    assert_eq!(login.header("location"), Some("/admin"));
    let cookie = login
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("consign_session="))
        .expect("a session cookie");
    for flag in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/admin"] {
        assert!(cookie.contains(flag), "cookie lacks {flag}: {cookie}");
    }
    let dashboard = client.get("/admin").await;
    assert_eq!(dashboard.status, StatusCode::OK);
    assert!(dashboard.text.contains("Open orders"));
    assert_eq!(dashboard.header("x-frame-options"), Some("DENY"));
    client.csrf = attribute_after(&dashboard.text, "name=\"csrf-token\"", "content").unwrap();
    let session_cookie = client.cookie("consign_session").unwrap().to_owned();

    let logout = client.post("/admin/logout", &[]).await;
    assert_eq!(logout.status, StatusCode::SEE_OTHER);
    assert_eq!(client.cookie("consign_session"), None, "the cookie is cleared");
    // The old cookie no longer works, even if someone kept it.
    let replay =
        app.send(app.client.get(app.url("/admin")).header("cookie", format!("consign_session={session_cookie}"))).await;
    assert_eq!(replay.status, StatusCode::SEE_OTHER);
    assert!(replay.header("location").unwrap().starts_with("/admin/login"));
}

#[tokio::test]
async fn the_login_form_refuses_a_post_without_its_csrf_token() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let mut client = PageClient::new(&app);
    client.get("/admin/login").await;
    let forged = client.post_raw("/admin/login", &[("email", &owner.email), ("password", &owner.password)]).await;
    assert!(forged.status.is_client_error(), "{}", forged.status);
    let wrong = client
        .post_raw("/admin/login", &[("email", &owner.email), ("password", &owner.password), ("_csrf", "0000")])
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    assert!(client.cookie("consign_session").is_none());
}

#[tokio::test]
async fn signed_out_requests_go_to_the_login_page_and_come_back_after() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let mut client = PageClient::new(&app);
    for path in
        ["/admin", "/admin/orders?status=open", "/admin/products", "/admin/stock", "/admin/settings", "/admin/inbox"]
    {
        let response = client.get(path).await;
        assert_eq!(response.status, StatusCode::SEE_OTHER, "{path}");
        assert!(response.header("location").unwrap().starts_with("/admin/login?next="), "{path}");
    }
    let post = client.post_raw("/admin/orders/0195f0c1-0000-7000-8000-000000000000/cancel", &[("reason", "x")]).await;
    assert_eq!(post.status, StatusCode::SEE_OTHER);
    assert_eq!(post.header("location"), Some("/admin/login"));

    // `next` brings the user back, but never to another site.
    let form = client.get("/admin/login?next=%2Fadmin%2Forders%3Fstatus%3Dopen").await;
    let token = attribute_after(&form.text, "name=\"_csrf\"", "value").unwrap();
    let login = client
        .post_raw(
            "/admin/login",
            &[
                ("email", &owner.email),
                ("password", &owner.password),
                ("_csrf", &token),
                ("next", "/admin/orders?status=open"),
            ],
        )
        .await;
    assert_eq!(login.header("location"), Some("/admin/orders?status=open"));
    let mut other = PageClient::new(&app);
    let form = other.get("/admin/login").await;
    let token = attribute_after(&form.text, "name=\"_csrf\"", "value").unwrap();
    let login = other
        .post_raw(
            "/admin/login",
            &[
                ("email", &owner.email),
                ("password", &owner.password),
                ("_csrf", &token),
                ("next", "//evil.example/admin"),
            ],
        )
        .await;
    assert_eq!(login.header("location"), Some("/admin"));
}

/// Every state-changing staff form, with fields that would pass.
fn every_form(
    order_id: &str,
    shipment_id: &str,
    product_id: &str,
    variant_id: &str,
    brand_id: &str,
    warehouse_id: &str,
) -> Vec<(String, Vec<(&'static str, String)>)> {
    let o = |suffix: &str| format!("/admin/orders/{order_id}{suffix}");
    let tracking_field: &'static str = Box::leak(format!("tracking_{order_id}").into_boxed_str());
    vec![
        (o("/payments"), vec![("amount", "1.00".into())]),
        (o("/cancel"), vec![("reason", "forged".into())]),
        (
            o("/address"),
            vec![
                ("line1", "2 Elm St".into()),
                ("city", "Springfield".into()),
                ("postal_code", "62701".into()),
                ("country", "US".into()),
            ],
        ),
        (o("/items"), vec![("items", "MUG 1".into())]),
        (o("/notes"), vec![("body", "forged".into())]),
        (
            o("/shipments"),
            vec![("fulfillment_order_id", "x".into()), ("carrier", "ups".into()), ("tracking_number", "1Z".into())],
        ),
        (o(&format!("/shipments/{shipment_id}/status")), vec![("status", "in_transit".into())]),
        (o("/messages"), vec![("kind", "reply".into()), ("channel", "in_app".into()), ("body", "forged".into())]),
        (o("/messages"), vec![("kind", "note".into()), ("body", "forged".into())]),
        (o("/thread/assign"), vec![("assignee_id", "".into())]),
        (o("/thread/close"), vec![]),
        (o("/thread/reopen"), vec![]),
        (
            "/admin/inbox/items/0195f0c1-0000-7000-8000-000000000000/link".into(),
            vec![("brand_id", brand_id.into()), ("order_number", "1001".into())],
        ),
        (
            format!("/admin/settings/brands/{brand_id}/payment-providers/stripe"),
            vec![("secret_key", "sk_forged".into()), ("webhook_secret", "whsec_forged".into())],
        ),
        ("/admin/logout".into(), vec![]),
        ("/admin/orders/bulk".into(), vec![("order_id", order_id.into()), ("action", "record_payment".into())]),
        (
            format!("/admin/settings/brands/{brand_id}/bank-transfer"),
            vec![("bank_details", "Forged".into()), ("hold_days", "3".into())],
        ),
        (
            format!("/admin/settings/brands/{brand_id}/templates/order.paid/email"),
            vec![("enabled", "on".into()), ("subject", "Forged".into()), ("body", "forged".into())],
        ),
        (
            format!("/admin/settings/brands/{brand_id}/canned-responses"),
            vec![("name", "Forged".into()), ("body", "forged".into())],
        ),
        (
            "/admin/orders/bulk-ship".into(),
            vec![("order_id", order_id.into()), ("carrier", "ups".into()), (tracking_field, "1Z".into())],
        ),
        (
            "/admin/account/password".into(),
            vec![
                ("current_password", "correct horse battery".into()),
                ("new_password", "forged new password".into()),
                ("confirm_password", "forged new password".into()),
            ],
        ),
        (
            format!("/admin/settings/brands/{brand_id}/warehouses"),
            vec![("priority_0195f0c1-0000-7000-8000-000000000000", "1".into())],
        ),
        (
            "/admin/products".into(),
            vec![
                ("brand_id", brand_id.into()),
                ("title", "Forged".into()),
                ("status", "draft".into()),
                ("sku", "FORGED".into()),
                ("variant_title", "One".into()),
                ("price", "1.00".into()),
            ],
        ),
        (
            format!("/admin/products/{product_id}"),
            vec![("title", "Forged".into()), ("description", "".into()), ("status", "active".into())],
        ),
        (format!("/admin/products/{product_id}/archive"), vec![]),
        (
            format!("/admin/products/{product_id}/variants"),
            vec![("sku", "FORGED-2".into()), ("title", "Two".into()), ("price", "1.00".into())],
        ),
        (format!("/admin/variants/{variant_id}"), vec![("title", "Forged".into()), ("price", "1.00".into())]),
        (
            "/admin/stock/adjust".into(),
            vec![
                ("variant_id", variant_id.into()),
                ("warehouse_id", warehouse_id.into()),
                ("delta", "5".into()),
                ("reason", "forged".into()),
            ],
        ),
        ("/admin/warehouses".into(), vec![("name", "Forged".into()), ("code", "FORGED".into())]),
        (
            format!("/admin/settings/brands/{brand_id}"),
            vec![
                ("name", "Forged".into()),
                ("reservation_ttl_seconds", "900".into()),
                ("primary_color", "#000000".into()),
                ("accent_color", "#000000".into()),
            ],
        ),
        (
            format!("/admin/settings/brands/{brand_id}/members"),
            vec![("email", "someone@example.com".into()), ("role", "brand_member".into())],
        ),
        (format!("/admin/settings/brands/{brand_id}/api-keys"), vec![("name", "Forged".into())]),
        (
            "/admin/settings/brands".into(),
            vec![("name", "Forged".into()), ("slug", "forged".into()), ("currency", "USD".into())],
        ),
    ]
}

#[tokio::test]
async fn every_staff_form_refuses_a_post_without_or_with_a_wrong_csrf_token() {
    let app = TestApp::spawn().await;
    let (owner, shop) = shop(&app).await;
    let order = place(&app, &shop, &[("MUG", 1)]).await;
    let order_id = order["order"]["id"].as_str().unwrap();
    let product = app.get(&format!("/api/v1/products?brand_id={}", shop.brand_id), &owner.token).await;
    let product_id = product.body["data"][0]["id"].as_str().unwrap().to_owned();
    let variant_id = &shop.variants["MUG"];
    let mut client = PageClient::signed_in(&app, &owner.email, &owner.password).await;
    let before = app.get(&format!("/api/v1/orders/{order_id}"), &owner.token).await;

    let forms = every_form(
        order_id,
        "0195f0c1-0000-7000-8000-000000000000",
        &product_id,
        variant_id,
        &shop.brand_id,
        &shop.warehouses[0],
    );
    for (path, fields) in &forms {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let missing = client.post_raw(path, &fields).await;
        assert_eq!(missing.status, StatusCode::FORBIDDEN, "{path} without a token: {}", missing.text);
        assert!(missing.text.contains("Reload the page"), "{path}");
        let mut wrong = fields.clone();
        wrong.push(("_csrf", "f00d"));
        let wrong = client.post_raw(path, &wrong).await;
        assert_eq!(wrong.status, StatusCode::FORBIDDEN, "{path} with a wrong token");
        // Another session's token does not work either.
        let header = app
            .send(
                app.client
                    .post(app.url(path))
                    .header("cookie", client.cookie_header())
                    .header("x-csrf-token", "a".repeat(64))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(form_body(&fields)),
            )
            .await;
        assert_eq!(header.status, StatusCode::FORBIDDEN, "{path} with a wrong header");
    }
    // Nothing changed, and the session still works.
    let after = app.get(&format!("/api/v1/orders/{order_id}"), &owner.token).await;
    assert_eq!(before.body, after.body);
    assert_eq!(client.get("/admin").await.status, StatusCode::OK);
    // The same form with the token goes through (the pages are not simply shut).
    let note = client.post(&format!("/admin/orders/{order_id}/notes"), &[("body", "Called the customer")]).await;
    assert_eq!(note.status, StatusCode::SEE_OTHER, "{}", note.text);
}

#[tokio::test]
async fn staff_of_another_tenant_get_404_on_its_pages_and_forms() {
    let app = TestApp::spawn().await;
    let (owner, shop) = shop(&app).await;
    let order = place(&app, &shop, &[("MUG", 1)]).await;
    let order_id = order["order"]["id"].as_str().unwrap();
    let product = app.get(&format!("/api/v1/products?brand_id={}", shop.brand_id), &owner.token).await;
    let product_id = product.body["data"][0]["id"].as_str().unwrap().to_owned();
    let variant_id = shop.variants["MUG"].clone();
    let rival = app.sign_up("rival@other.example", "merchant").await;
    app.create_brand(&rival, "other").await;
    let mut client = PageClient::signed_in(&app, &rival.email, &rival.password).await;

    for path in [
        format!("/admin/orders/{order_id}"),
        format!("/admin/products/{product_id}"),
        format!("/admin/stock/history?variant_id={variant_id}"),
        format!("/admin/settings/brands/{}", shop.brand_id),
        format!("/admin/orders?brand_id={}", shop.brand_id),
        format!("/admin/orders.csv?brand_id={}", shop.brand_id),
        format!("/admin/products?brand_id={}", shop.brand_id),
    ] {
        let page = client.get(&path).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}: {}", page.text);
    }
    // The rival's own lists do not show the order.
    let list = client.get("/admin/orders").await;
    assert!(!list.text.contains(order_id));
    let csv = client.get("/admin/orders.csv").await;
    assert_eq!(csv.text.lines().count(), 1, "header only: {}", csv.text);

    let forms = every_form(
        order_id,
        "0195f0c1-0000-7000-8000-000000000000",
        &product_id,
        &variant_id,
        &shop.brand_id,
        &shop.warehouses[0],
    );
    let before = app.get(&format!("/api/v1/orders/{order_id}"), &owner.token).await;
    for (path, fields) in forms.iter().filter(|(p, f)| {
        p.contains(order_id)
            || p.contains(&product_id)
            || p.contains(&variant_id)
            || p.contains(&shop.brand_id)
            || f.iter().any(|(k, v)| *k == "brand_id" && v == &shop.brand_id)
    }) {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let response = client.post(path, &fields).await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{path}: {}", response.text);
    }
    // A stock adjustment naming the other tenant's variant is refused too.
    let adjust = client
        .post(
            "/admin/stock/adjust",
            &[("variant_id", &variant_id), ("warehouse_id", &shop.warehouses[0]), ("delta", "5"), ("reason", "x")],
        )
        .await;
    assert_eq!(adjust.status, StatusCode::NOT_FOUND, "{}", adjust.text);
    let after = app.get(&format!("/api/v1/orders/{order_id}"), &owner.token).await;
    assert_eq!(before.body, after.body);
}

#[tokio::test]
async fn staff_record_a_payment_ship_and_deliver_from_the_order_page() {
    let app = TestApp::spawn().await;
    let (owner, shop) = shop(&app).await;
    let order = place(&app, &shop, &[("TENT", 2), ("MUG", 1)]).await;
    let order_id = order["order"]["id"].as_str().unwrap().to_owned();
    let path = format!("/admin/orders/{order_id}");
    let mut client = PageClient::signed_in(&app, &owner.email, &owner.password).await;

    let page = client.get(&path).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains("Record payment"));
    assert!(page.text.contains("$215.00"), "{}", page.text);

    // A refusal comes back in words.
    let too_much = client.post_and_follow(&format!("{path}/payments"), &[("amount", "999.00")]).await;
    assert!(too_much.text.contains("class=\"flash error\""), "{}", too_much.text);
    let garbage = client.post_and_follow(&format!("{path}/payments"), &[("amount", "lots")]).await;
    assert!(garbage.text.contains("amount: must be an amount such as 12.50"), "{}", garbage.text);

    let paid =
        client.post_and_follow(&format!("{path}/payments"), &[("amount", "215.00"), ("reference", "wire 42")]).await;
    assert!(paid.text.contains("The order is paid"), "{}", paid.text);
    assert!(paid.text.contains("wire 42"));
    // Editing the address of a paid, unshipped order is still allowed.
    let moved = client
        .post_and_follow(
            &format!("{path}/address"),
            &[("line1", "9 Elm St"), ("city", "Shelbyville"), ("postal_code", "62565"), ("country", "us")],
        )
        .await;
    assert!(moved.text.contains("9 Elm St"), "{}", moved.text);
    app.run_jobs().await;

    let page = client.get(&path).await;
    let fulfillment_order_id =
        attribute_after(&page.text, "name=\"fulfillment_order_id\"", "value").expect("a fulfillment order");
    let items = app.get(&format!("/api/v1/orders/{order_id}"), &owner.token).await;
    let tent_item = items.body["items"].as_array().unwrap().iter().find(|i| i["sku"] == "TENT").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mug_item = items.body["items"].as_array().unwrap().iter().find(|i| i["sku"] == "MUG").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let tent_field = format!("qty_{tent_item}");
    let mug_field = format!("qty_{mug_item}");
    // More than remains is refused, in words.
    let over = client
        .post_and_follow(
            &format!("{path}/shipments"),
            &[
                ("fulfillment_order_id", &fulfillment_order_id),
                (&tent_field, "3"),
                (&mug_field, "0"),
                ("carrier", "ups"),
                ("tracking_number", "1Z999"),
            ],
        )
        .await;
    assert!(over.text.contains("class=\"flash error\""), "{}", over.text);
    // Ship part, then the rest.
    let first = client
        .post_and_follow(
            &format!("{path}/shipments"),
            &[
                ("fulfillment_order_id", &fulfillment_order_id),
                (&tent_field, "1"),
                (&mug_field, "0"),
                ("carrier", "UPS"),
                ("tracking_number", "1Z999"),
            ],
        )
        .await;
    assert!(first.text.contains("Shipment created."), "{}", first.text);
    assert!(first.text.contains("Partially shipped") || first.text.contains("partially_shipped"));
    assert!(first.text.contains("https://www.ups.com/track?tracknum=1Z999"), "a tracking link");
    // Nothing shipped can be edited: the item form is gone and a forced post is refused in words.
    assert!(!first.text.contains("Save items"));
    let refused = client.post_and_follow(&format!("{path}/items"), &[("items", "MUG 1")]).await;
    assert!(refused.text.contains("Not allowed"), "{}", refused.text);

    let second = client
        .post_and_follow(
            &format!("{path}/shipments"),
            &[
                ("fulfillment_order_id", &fulfillment_order_id),
                (&tent_field, "1"),
                (&mug_field, "1"),
                ("carrier", "usps"),
                ("tracking_number", "9400"),
            ],
        )
        .await;
    assert!(second.text.contains("Shipment created."), "{}", second.text);
    let shipments = app.get(&format!("/api/v1/orders/{order_id}/shipments"), &owner.token).await;
    for shipment in shipments.body["data"].as_array().unwrap() {
        let id = shipment["id"].as_str().unwrap();
        let moved = client.post_and_follow(&format!("{path}/shipments/{id}/status"), &[("status", "in_transit")]).await;
        assert!(moved.text.contains("Shipment marked in transit."), "{}", moved.text);
        let delivered =
            client.post_and_follow(&format!("{path}/shipments/{id}/status"), &[("status", "delivered")]).await;
        assert!(delivered.text.contains("Shipment marked delivered."), "{}", delivered.text);
        let again = client.post_and_follow(&format!("{path}/shipments/{id}/status"), &[("status", "in_transit")]).await;
        assert!(again.text.contains("Not allowed"), "{}", again.text);
    }
    let done = app.get(&format!("/api/v1/orders/{order_id}"), &owner.token).await;
    assert_eq!(done.body["fulfillment_status"], "delivered");
    assert_eq!(done.body["status"], "completed");
    let page = client.get(&path).await;
    assert!(
        page.text.contains("Shipment delivered")
            || page.text.contains("shipment delivered")
            || page.text.contains("Shipment.delivered")
    );
    app.assert_stock_invariants().await;
}

#[tokio::test]
async fn staff_edit_items_and_cancel_with_refusals_in_words() {
    let app = TestApp::spawn().await;
    let (owner, shop) = shop(&app).await;
    let order = place(&app, &shop, &[("MUG", 1)]).await;
    let order_id = order["order"]["id"].as_str().unwrap().to_owned();
    let path = format!("/admin/orders/{order_id}");
    let mut client = PageClient::signed_in(&app, &owner.email, &owner.password).await;

    let short = client.post_and_follow(&format!("{path}/items"), &[("items", "TENT 50")]).await;
    assert!(short.text.contains("Not enough stock for: TENT"), "{}", short.text);
    let edited = client.post_and_follow(&format!("{path}/items"), &[("items", "MUG 2\nTENT 1")]).await;
    assert!(edited.text.contains("Items updated"), "{}", edited.text);
    assert!(edited.text.contains("$130.00"), "{}", edited.text);
    let empty = client.post_and_follow(&format!("{path}/cancel"), &[("reason", "")]).await;
    assert!(empty.text.contains("reason: must be 1 to 500 characters"), "{}", empty.text);
    let cancelled = client.post_and_follow(&format!("{path}/cancel"), &[("reason", "customer asked")]).await;
    assert!(cancelled.text.contains("Order cancelled"), "{}", cancelled.text);
    let again = client.post_and_follow(&format!("{path}/cancel"), &[("reason", "twice")]).await;
    assert!(again.text.contains("Not allowed"), "{}", again.text);
    app.assert_stock_invariants().await;
}

#[tokio::test]
async fn the_order_list_filters_pages_and_exports_csv() {
    let app = TestApp::spawn().await;
    let (owner, shop) = shop(&app).await;
    let mut numbers = Vec::new();
    for _ in 0..5 {
        numbers.push(place(&app, &shop, &[("MUG", 1)]).await["order"]["number"].as_str().unwrap().to_owned());
    }
    let first_id = {
        let list = app.get("/api/v1/orders?limit=200", &owner.token).await;
        list.body["data"].as_array().unwrap().last().unwrap()["id"].as_str().unwrap().to_owned()
    };
    let mut client = PageClient::signed_in(&app, &owner.email, &owner.password).await;
    client.post(&format!("/admin/orders/{first_id}/payments"), &[("amount", "15.00")]).await;

    let page = client.get("/admin/orders?limit=2").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains(&numbers[4]) && page.text.contains(&numbers[3]) && !page.text.contains(&numbers[2]));
    let next = attribute_after(&page.text, "rel=\"next\"", "href").expect("a next link").replace("&amp;", "&");
    let second = client.get(&next).await;
    assert!(second.text.contains(&numbers[2]) && !second.text.contains(&numbers[4]), "{}", second.text);

    let paid = client.get("/admin/orders?payment_status=paid").await;
    assert!(paid.text.contains(&numbers[0]) && !paid.text.contains(&numbers[1]));
    let search = client.get(&format!("/admin/orders?q={}", numbers[1].trim_start_matches('#'))).await;
    assert!(search.text.contains(&numbers[1]) && !search.text.contains(&numbers[2]));
    let today = consign_domain::Timestamp::now().to_string()[..10].to_owned();
    let dated = client.get(&format!("/admin/orders?created_after={today}&created_before={today}")).await;
    assert!(dated.text.contains(&numbers[0]));
    let bad = client.get("/admin/orders?status=bogus").await;
    assert_eq!(bad.status, StatusCode::OK);
    assert!(bad.text.contains("status: is not one of the choices"), "{}", bad.text);

    let csv = client.get(&format!("/admin/orders.csv?brand_id={}&status=open", shop.brand_id)).await;
    assert_eq!(csv.status, StatusCode::OK);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    let lines: Vec<&str> = csv.text.lines().collect();
    assert!(lines[0].starts_with("number,id,brand_id"));
    assert_eq!(lines.len(), 6, "{}", csv.text);
    let paid_csv = client.get("/admin/orders.csv?payment_status=paid").await;
    assert_eq!(paid_csv.text.lines().count(), 2);
    assert!(paid_csv.text.contains(",15.00,15.00"), "{}", paid_csv.text);
}

#[tokio::test]
async fn customer_pages_show_the_brand_and_need_the_order_token() {
    let app = TestApp::spawn().await;
    let (owner, shop) = shop(&app).await;
    let mut client = PageClient::signed_in(&app, &owner.email, &owner.password).await;
    let themed = client
        .post(
            &format!("/admin/settings/brands/{}", shop.brand_id),
            &[
                ("name", "Acme Outdoor"),
                ("reservation_ttl_seconds", "900"),
                ("logo_url", "https://cdn.example/acme.png"),
                ("primary_color", "#0a5c36"),
                ("accent_color", "#c2410c"),
            ],
        )
        .await;
    assert_eq!(themed.status, StatusCode::SEE_OTHER, "{}", themed.text);

    let catalog = app.send(app.client.get(app.url("/shop/acme"))).await;
    assert_eq!(catalog.status, StatusCode::OK);
    for needle in ["Acme Outdoor", "https://cdn.example/acme.png", "#0a5c36", "#c2410c", "Product TENT"] {
        assert!(catalog.text.contains(needle), "{needle} missing");
    }
    let product_id = {
        let start = catalog.text.find("/shop/acme/products/").unwrap() + "/shop/acme/products/".len();
        catalog.text[start..start + 36].to_owned()
    };
    let product = app.send(app.client.get(app.url(&format!("/shop/acme/products/{product_id}")))).await;
    assert_eq!(product.status, StatusCode::OK);
    assert!(product.text.contains("data-available="), "{}", product.text);
    for path in ["/shop/acme/cart", "/shop/acme/checkout", &format!("/shop/acme/products/{product_id}/availability")] {
        let page = app.send(app.client.get(app.url(path))).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
    }
    assert_eq!(app.send(app.client.get(app.url("/shop/nobody"))).await.status, StatusCode::NOT_FOUND);

    let placed = place(&app, &shop, &[("TENT", 1)]).await;
    let order_id = placed["order"]["id"].as_str().unwrap();
    let token = placed["order_access_token"].as_str().unwrap();
    // The link's token is traded for a cookie of the order's pages, and the
    // address the customer then sees, shares or logs carries no token.
    let order_path = format!("/shop/acme/orders/{order_id}");
    let mut customer = PageClient::new(&app);
    let entered = customer.get(&format!("{order_path}/confirmation?token={token}")).await;
    assert_eq!(entered.status, StatusCode::SEE_OTHER, "{}", entered.text);
    assert_eq!(entered.header("location"), Some(format!("{order_path}/confirmation").as_str()));
    assert_eq!(entered.header("referrer-policy"), Some("no-referrer"));
    let cookie = entered.header("set-cookie").unwrap_or_default();
    for part in
        [format!("consign_order={token}"), format!("Path={order_path};"), "HttpOnly".into(), "SameSite=Lax".into()]
    {
        assert!(cookie.contains(&part), "{part} missing from {cookie}");
    }
    let confirmation = customer.get(&format!("{order_path}/confirmation")).await;
    assert_eq!(confirmation.status, StatusCode::OK);
    assert!(confirmation.text.contains("by bank transfer to Acme Outdoor"), "{}", confirmation.text);
    assert!(confirmation.text.contains(&format!("href=\"{order_path}\"")), "{}", confirmation.text);
    let tracking = customer.get(&order_path).await;
    assert_eq!(tracking.status, StatusCode::OK);
    assert_eq!(tracking.header("referrer-policy"), Some("same-origin"));
    assert!(tracking.text.contains(&format!("data-live-url=\"{order_path}/live\"")), "{}", tracking.text);
    assert!(!tracking.text.contains("token="), "a link or socket of the page carries the token: {}", tracking.text);
    for bad in [
        order_path.clone(),
        format!("{order_path}?token=cot_wrong"),
        format!("{order_path}/confirmation?token=cot_wrong"),
    ] {
        assert_eq!(app.send(app.client.get(app.url(&bad))).await.status, StatusCode::NOT_FOUND, "{bad}");
    }
    // Another brand's URL with a good token shows nothing either.
    let rival = app.sign_up("rival@other.example", "merchant").await;
    app.create_brand(&rival, "other").await;
    let elsewhere = app.send(app.client.get(app.url(&format!("/shop/other/orders/{order_id}?token={token}")))).await;
    assert_eq!(elsewhere.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn every_page_of_the_demo_data_renders() {
    let test_db = TestDb::new().await;
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_consign"))
        .args(["seed", "--database-url", &test_db.url])
        .output()
        .expect("run consign seed");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let app = TestApp::spawn_on(test_db, WebConfig::default()).await;
    let mut client = PageClient::signed_in(&app, "ops@northwind.example", "consign-demo").await;
    let login = app
        .post_anonymous(
            "/api/v1/auth/login",
            serde_json::json!({"email": "ops@northwind.example", "password": "consign-demo"}),
        )
        .await;
    let token = login.body["access_token"].as_str().unwrap().to_owned();
    let orders = app.get("/api/v1/orders?limit=200", &token).await;
    let mut paths: Vec<String> = vec![
        "/admin".into(),
        "/admin/orders".into(),
        "/admin/orders?status=open".into(),
        "/admin/orders.csv".into(),
        "/admin/products".into(),
        "/admin/stock".into(),
        "/admin/warehouses".into(),
        "/admin/settings".into(),
        "/admin/inbox".into(),
        "/admin/inbox?unread=1".into(),
    ];
    for order in orders.body["data"].as_array().unwrap() {
        paths.push(format!("/admin/orders/{}", order["id"].as_str().unwrap()));
    }
    let products = app.get("/api/v1/products?limit=200", &token).await;
    for product in products.body["data"].as_array().unwrap() {
        paths.push(format!("/admin/products/{}", product["id"].as_str().unwrap()));
    }
    let brands = app.get("/api/v1/brands", &token).await;
    for brand in brands.body["data"].as_array().unwrap() {
        let slug = brand["slug"].as_str().unwrap();
        paths.push(format!("/shop/{slug}"));
        paths.push(format!("/admin/settings/brands/{}", brand["id"].as_str().unwrap()));
    }
    // Render time is measured by `consign-bench --scenario pages`, not here.
    for path in &paths {
        let page = client.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.text);
        assert!(page.text.len() > 200, "{path} is nearly empty: {}", page.text);
    }
}

#[tokio::test]
async fn the_root_leads_to_the_staff_app_and_unknown_addresses_answer_pages() {
    let app = TestApp::spawn().await;
    let (owner, _shop) = shop(&app).await;
    let root = app.send(app.client.get(app.url("/"))).await;
    assert_eq!(root.status, StatusCode::SEE_OTHER);
    assert_eq!(root.header("location"), Some("/admin"));

    // Under a shop, in the brand's frame, with the way back to its products
    // and nothing that leads a customer into the staff app.
    let unknown_id = "01a23bbc-1769-70d1-bef9-b57f63a224ad";
    for path in [
        "/shop/acme/nowhere".to_owned(),
        format!("/shop/ACME/products/{unknown_id}"),
        format!("/shop/acme/orders/{unknown_id}?token=cot_wrong"),
    ] {
        let page = app.send(app.client.get(app.url(&path))).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
        assert!(page.header("content-type").unwrap_or_default().starts_with("text/html"), "{path}");
        for needle in ["We cannot find that page", "Brand acme", "href=\"/shop/acme\""] {
            assert!(page.text.contains(needle), "{path}: {needle} missing from {}", page.text);
        }
        assert!(!page.text.contains("/admin"), "{path} links to the staff app");
    }
    let nobody = app.send(app.client.get(app.url("/shop/nobody/cart"))).await;
    assert_eq!(nobody.status, StatusCode::NOT_FOUND);
    assert!(nobody.text.contains("No shop here"), "{}", nobody.text);
    assert!(!nobody.text.contains("/admin"), "{}", nobody.text);

    // Under the staff app, a page with the way to the dashboard.
    let mut staff = PageClient::signed_in(&app, &owner.email, &owner.password).await;
    let page = staff.get("/admin/nowhere").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.header("content-type").unwrap_or_default().starts_with("text/html"));
    assert!(page.text.contains("href=\"/admin\""), "{}", page.text);

    // The API keeps its problem answers.
    let api = app.send(app.client.get(app.url("/api/v1/nowhere"))).await;
    assert_eq!(api.status, StatusCode::NOT_FOUND);
    assert_eq!(api.header("content-type"), Some("application/problem+json"));
}

/// The codes of the warehouses a brand ships from, in allocation order,
/// with the whole answer.
async fn brand_warehouses(app: &TestApp, owner: &TestUser, brand_id: &str) -> (Vec<String>, Value) {
    let linked = app.get(&format!("/api/v1/brands/{brand_id}/warehouses"), &owner.token).await;
    let codes =
        linked.body["data"].as_array().unwrap().iter().map(|w| w["code"].as_str().unwrap().to_owned()).collect();
    (codes, linked.body)
}

#[tokio::test]
async fn a_new_brand_gets_its_warehouses_and_stock_in_the_pages() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@trail.example", "merchant").await;
    let brand = app.create_brand(&owner, "trail").await;
    let brand_id = brand["id"].as_str().unwrap().to_owned();
    let mut staff = PageClient::signed_in(&app, &owner.email, &owner.password).await;

    // No warehouse yet: the stock page says what to do instead of a form
    // that cannot be sent, and a form sent without one is refused in words.
    let stock = staff.get(&format!("/admin/stock?brand_id={brand_id}")).await;
    assert!(stock.text.contains("id=\"no-brand-warehouses\""), "{}", stock.text);
    let settings = staff.get(&format!("/admin/settings/brands/{brand_id}")).await;
    assert!(settings.text.contains("id=\"no-warehouses\""), "{}", settings.text);
    let refused = staff.post("/admin/stock/adjust", &[("reason", "count"), ("set_on_hand", "5")]).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.text.contains("without its variant field"), "{}", refused.text);
    assert!(!refused.text.contains("deserialize"), "{}", refused.text);

    // A warehouse created for the brand ships for it at once; a second,
    // created for no brand, is offered on the brand's page, unused.
    let created = staff
        .post_and_follow("/admin/warehouses", &[("name", "Main"), ("code", "main"), ("brand_id", &brand_id)])
        .await;
    assert!(created.text.contains("the brand ships from it (priority 1)"), "{}", created.text);
    staff.post_and_follow("/admin/warehouses", &[("name", "Overflow"), ("code", "over"), ("brand_id", "")]).await;
    let (codes, linked) = brand_warehouses(&app, &owner, &brand_id).await;
    assert_eq!(codes, ["MAIN"]);
    let listed = app.get("/api/v1/warehouses?code=over", &owner.token).await;
    let overflow = listed.body["data"][0]["id"].as_str().unwrap().to_owned();
    let main = linked["data"][0]["warehouse_id"].as_str().unwrap().to_owned();
    let settings = staff.get(&format!("/admin/settings/brands/{brand_id}")).await;
    assert!(settings.text.contains(&format!("name=\"priority_{overflow}\" value=\"\"")), "{}", settings.text);

    // Both, overflow first; a priority that is not a number is refused in
    // words and changes nothing.
    let path = format!("/admin/settings/brands/{brand_id}/warehouses");
    let bad = staff
        .post_and_follow(&path, &[(&format!("priority_{main}"), "first"), (&format!("priority_{overflow}"), "1")])
        .await;
    assert!(bad.text.contains("must be a whole number"), "{}", bad.text);
    let saved = staff
        .post_and_follow(&path, &[(&format!("priority_{main}"), "2"), (&format!("priority_{overflow}"), "1")])
        .await;
    assert!(saved.text.contains("Warehouses saved."), "{}", saved.text);
    let (codes, _) = brand_warehouses(&app, &owner, &brand_id).await;
    assert_eq!(codes, ["OVER", "MAIN"]);

    // Now the stock page has its form, and a count lands.
    let product = app
        .post(
            "/api/v1/products",
            &owner.token,
            serde_json::json!({"brand_id": brand_id, "title": "Pack", "status": "active",
                               "variants": [{"sku": "PACK", "title": "Pack", "price": {"amount": 5000, "currency": "USD"}}]}),
        )
        .await;
    let variant_id = product.body["variants"][0]["id"].as_str().unwrap().to_owned();
    let stock = staff.get(&format!("/admin/stock?brand_id={brand_id}")).await;
    assert!(stock.text.contains("action=\"/admin/stock/adjust\""), "{}", stock.text);
    let counted = staff
        .post_and_follow(
            "/admin/stock/adjust",
            &[("variant_id", &variant_id), ("warehouse_id", &main), ("set_on_hand", "7"), ("reason", "first count")],
        )
        .await;
    assert_eq!(counted.status, StatusCode::OK, "{}", counted.text);
    let levels = app.get(&format!("/api/v1/inventory/levels?variant_id={variant_id}"), &owner.token).await;
    assert!(levels.text.contains("\"on_hand\":7"), "{}", levels.text);
    // The history names who counted, not "staff".
    let history = staff.get(&format!("/admin/stock/history?variant_id={variant_id}")).await;
    assert!(history.text.contains("<td>Test User</td>"), "{}", history.text);

    // So does the order's timeline: the customer, Consign, and the staff
    // member who recorded the payment by name.
    let placed = app.checkout("trail", &[("PACK", 1)], "casey@example.com").await;
    let order_id = placed.body["order"]["id"].as_str().unwrap();
    staff
        .post_and_follow(&format!("/admin/orders/{order_id}/payments"), &[("amount", "50.00"), ("reference", "W-1")])
        .await;
    let order = staff.get(&format!("/admin/orders/{order_id}")).await;
    for who in ["· The customer</span>", "· Test User</span>"] {
        assert!(order.text.contains(who), "{who} missing from the timeline: {}", order.text);
    }
}

/// The status of an API login with this password.
async fn login_status(app: &TestApp, email: &str, password: &str) -> StatusCode {
    app.post_anonymous("/api/v1/auth/login", serde_json::json!({"email": email, "password": password})).await.status
}

#[tokio::test]
async fn staff_change_their_own_password_and_every_session_ends() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let mut staff = PageClient::signed_in(&app, &owner.email, &owner.password).await;
    let mut elsewhere = PageClient::signed_in(&app, &owner.email, &owner.password).await;
    let dashboard = staff.get("/admin").await;
    assert!(dashboard.text.contains("href=\"/admin/account\""), "the header links to the account");
    let page = staff.get("/admin/account").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("Change your password"));

    let path = "/admin/account/password";
    let form = |current: &'static str, new: &'static str, again: &'static str| {
        [("current_password", current), ("new_password", new), ("confirm_password", again)]
    };
    let with_current = |new: &'static str, again: &'static str| {
        [("current_password", owner.password.as_str()), ("new_password", new), ("confirm_password", again)]
    };
    let wrong = staff.post_and_follow(path, &form("not it", "a new long one", "a new long one")).await;
    assert!(wrong.text.contains("is not your password"), "{}", wrong.text);
    let short = staff.post_and_follow(path, &with_current("short", "short")).await;
    assert!(short.text.contains("8 to 256 characters"), "{}", short.text);
    let mismatch = staff.post_and_follow(path, &with_current("a new long one", "another long one")).await;
    assert!(mismatch.text.contains("is not the same as the new password"), "{}", mismatch.text);
    // Nothing changed so far: the old password still logs in.
    assert_eq!(login_status(&app, &owner.email, &owner.password).await, StatusCode::OK);

    let changed = staff.post(path, &with_current("a new long one", "a new long one")).await;
    assert_eq!(changed.status, StatusCode::SEE_OTHER);
    assert_eq!(changed.header("location"), Some("/admin/login"));
    // Both sessions ended; the old password no longer works, the new one does.
    for client in [&mut staff, &mut elsewhere] {
        let after = client.get("/admin").await;
        assert_eq!(after.status, StatusCode::SEE_OTHER);
        assert!(after.header("location").unwrap().starts_with("/admin/login"));
    }
    assert_eq!(login_status(&app, &owner.email, &owner.password).await, StatusCode::UNAUTHORIZED);
    assert_eq!(login_status(&app, &owner.email, "a new long one").await, StatusCode::OK);
}

#[tokio::test]
async fn a_new_account_signs_up_in_the_pages_and_a_refused_form_keeps_what_was_typed() {
    let app = TestApp::spawn().await;
    app.sign_up("taken@acme.example", "merchant").await;
    let mut browser = PageClient::new(&app);
    let login = browser.get("/admin/login").await;
    assert!(login.text.contains("href=\"/admin/signup\""), "{}", login.text);
    let form = browser.get("/admin/signup").await;
    assert_eq!(form.status, StatusCode::OK);
    let csrf = attribute_after(&form.text, "name=\"_csrf\"", "value").unwrap();
    let fields = |email: &'static str, password: &'static str| {
        vec![
            ("_csrf", csrf.clone()),
            ("name", "Ingrid Fjord".to_owned()),
            ("email", email.to_owned()),
            ("password", password.to_owned()),
            ("organization_name", "Fjord Supply".to_owned()),
            ("kind", "threepl".to_owned()),
        ]
    };
    let send = |fields: Vec<(&'static str, String)>| {
        let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        form_body(&pairs)
    };
    let post = |body: String, with_cookie: bool| {
        let mut request = app
            .client
            .post(app.url("/admin/signup"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if with_cookie {
            request = request.header("cookie", format!("consign_signup_csrf={csrf}"));
        }
        app.send(request)
    };

    let forged = post(send(fields("new@fjord.example", "a long password")), false).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "a form without its cookie is refused");
    let refused = post(send(fields("not-an-email", "short")), true).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.text);
    for kept in
        ["value=\"Ingrid Fjord\"", "value=\"not-an-email\"", "value=\"Fjord Supply\"", "value=\"threepl\" checked"]
    {
        assert!(refused.text.contains(kept), "{kept} was lost: {}", refused.text);
    }
    assert!(refused.text.contains("email") && refused.text.contains("8 to 256 characters"), "{}", refused.text);
    assert!(!refused.text.contains("value=\"short\""), "the password is typed again, not echoed");
    let taken = post(send(fields("taken@acme.example", "a long password")), true).await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.text);
    assert!(taken.text.contains("cannot be used to sign up") && !taken.text.contains("taken@acme.example is"));

    let signed_up = post(send(fields("new@fjord.example", "a long password")), true).await;
    assert_eq!(signed_up.status, StatusCode::SEE_OTHER, "{}", signed_up.text);
    assert_eq!(signed_up.header("location"), Some("/admin"));
    let session = signed_up
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("consign_session="))
        .expect("a page session")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let dashboard = app.send(app.client.get(app.url("/admin")).header("cookie", session)).await;
    assert_eq!(dashboard.status, StatusCode::OK);
    assert!(
        dashboard.text.contains("Set up your shop") && dashboard.text.contains("Ingrid Fjord"),
        "{}",
        dashboard.text
    );
    let login = app.post_anonymous(
        "/api/v1/auth/login",
        serde_json::json!({"email": "new@fjord.example", "password": "a long password"}),
    );
    assert_eq!(login.await.status, StatusCode::OK);

    // Where signup is off, the page says how to join instead.
    let closed = TestApp::spawn_with(WebConfig { allow_signup: false, ..WebConfig::default() }).await;
    let mut visitor = PageClient::new(&closed);
    assert!(!visitor.get("/admin/login").await.text.contains("/admin/signup"));
    let page = visitor.get("/admin/signup").await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.text.contains("does not take new accounts"), "{}", page.text);
}

#[tokio::test]
async fn a_brand_sets_its_bank_transfer_details_and_hold_in_the_pages_and_customers_are_told() {
    let app = TestApp::spawn().await;
    let (owner, shop) = shop(&app).await;
    let mut staff = PageClient::signed_in(&app, &owner.email, &owner.password).await;
    let form = format!("/admin/settings/brands/{}/bank-transfer", shop.brand_id);
    let settings = staff.get(&format!("/admin/settings/brands/{}", shop.brand_id)).await;
    assert!(settings.text.contains(&format!("action=\"{form}\"")), "{}", settings.text);
    let details = "Account holder Acme Ltd, IBAN GB33 BUKB 2020 1555 5555 55, Barclays.";

    let refused = staff.post_and_follow(&form, &[("bank_details", &"x".repeat(1001)), ("hold_days", "0")]).await;
    assert!(refused.text.contains("hold_days") && refused.text.contains("1 to 30"), "{}", refused.text);
    assert!(refused.text.contains("bank_details") && refused.text.contains("1000 characters"), "{}", refused.text);
    let saved = staff.post_and_follow(&form, &[("bank_details", details), ("hold_days", "5")]).await;
    assert!(saved.text.contains("Bank transfer saved.") && saved.text.contains("IBAN GB33"), "{}", saved.text);
    let brand = app.get(&format!("/api/v1/brands/{}", shop.brand_id), &owner.token).await;
    assert_eq!(brand.body["bank_details"], details);
    assert_eq!(brand.body["manual_reservation_ttl_seconds"], 5 * 24 * 60 * 60);

    // The checkout's answer and the confirmation page carry the details.
    let placed = place(&app, &shop, &[("MUG", 1)]).await;
    let instructions = placed["payment"]["instructions"].as_str().unwrap();
    assert_eq!(instructions, format!("Pay USD 15.00 by bank transfer to Brand acme quoting order #1001. {details}"));
    let held_until = placed["order"]["reservation_expires_at"].as_str().unwrap();
    assert!(
        held_until > consign_domain::Timestamp::now().plus_seconds(4 * 24 * 3600).to_string().as_str(),
        "{held_until}"
    );
    let link = format!(
        "/shop/acme/orders/{}/confirmation?token={}",
        placed["order"]["id"].as_str().unwrap(),
        placed["order_access_token"].as_str().unwrap()
    );
    let confirmation = PageClient::new(&app).get_following(&link).await;
    assert!(confirmation.text.contains("IBAN GB33 BUKB 2020 1555 5555 55"), "{}", confirmation.text);

    // The API removes them with "".
    let request = app
        .client
        .patch(app.url(&format!("/api/v1/brands/{}", shop.brand_id)))
        .bearer_auth(&owner.token)
        .json(&serde_json::json!({"bank_details": ""}));
    let cleared = app.send(request).await;
    assert_eq!(cleared.status, StatusCode::OK, "{}", cleared.text);
    assert_eq!(cleared.body["bank_details"], Value::Null);
}

#[tokio::test]
async fn the_shop_names_the_options_says_how_few_are_left_and_gives_the_cart_todays_prices() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let shop = app
        .stocked_brand(
            &owner,
            "acme",
            1,
            &[Sku { sku: "LAMP", price: 5000, stock: &[3] }, Sku { sku: "MUG", price: 1500, stock: &[20] }],
        )
        .await;
    let warehouse = &shop.warehouses[0];
    let jacket = app
        .post(
            "/api/v1/products",
            &owner.token,
            serde_json::json!({"brand_id": shop.brand_id, "title": "Jacket", "description": "", "status": "active",
                "variants": [
                    {"sku": "JKT-M-RED", "title": "M red", "options": {"size": "M", "colour": "red"}, "price": {"amount": 9900, "currency": "USD"}},
                    {"sku": "JKT-L-RED", "title": "L red", "options": {"size": "L", "colour": "red"}, "price": {"amount": 9900, "currency": "USD"}}]}),
        )
        .await;
    assert_eq!(jacket.status, StatusCode::CREATED, "{}", jacket.text);
    let jacket_id = jacket.body["id"].as_str().unwrap();
    let variant = jacket.body["variants"][0]["id"].as_str().unwrap();
    let adjust =
        serde_json::json!({"variant_id": variant, "warehouse_id": warehouse, "set_on_hand": 9, "reason": "count"});
    assert_eq!(app.post("/api/v1/inventory/adjustments", &owner.token, adjust).await.status, StatusCode::CREATED);

    let page = app.send(app.client.get(app.url(&format!("/shop/acme/products/{jacket_id}")))).await;
    assert!(page.text.contains("<label for=\"variant\">Colour and size</label>"), "{}", page.text);
    assert!(page.text.contains("M red: In stock") && page.text.contains("L red: Sold out"), "{}", page.text);
    assert!(!page.text.contains("9 available"), "a well-stocked shelf's count is shown");

    let lines = app.send(app.client.get(app.url("/shop/acme/cart/lines?sku=LAMP&sku=mug&sku=GONE&sku=CUP"))).await;
    assert_eq!(lines.status, StatusCode::OK, "{}", lines.text);
    let lines = lines.body.as_array().unwrap().clone();
    assert_eq!(lines.len(), 2, "unknown SKUs are left out: {lines:?}");
    let lamp = lines.iter().find(|l| l["sku"] == "LAMP").unwrap();
    assert_eq!(lamp["price"], 5000);
    assert_eq!(lamp["available"], 3);
    assert_eq!(lamp["stock"], "Only 3 left");
    assert_eq!(lamp["few_left"], true);
    let mug = lines.iter().find(|l| l["sku"] == "MUG").unwrap();
    assert_eq!((mug["stock"].as_str(), mug["few_left"].as_bool()), (Some("In stock"), Some(false)));
    assert_eq!(mug["title"], "Product MUG · MUG");

    // Another brand's SKU is not this shop's.
    let rival = app.sign_up("rival@other.example", "merchant").await;
    app.stocked_brand(&rival, "other", 1, &[Sku { sku: "CUP", price: 900, stock: &[5] }]).await;
    let theirs = app.send(app.client.get(app.url("/shop/acme/cart/lines?sku=CUP"))).await;
    assert_eq!(theirs.body, serde_json::json!([]));
}

#[tokio::test]
async fn a_product_gets_its_variants_and_options_in_the_pages() {
    let app = TestApp::spawn().await;
    let (owner, shop) = shop(&app).await;
    let mut staff = PageClient::signed_in(&app, &owner.email, &owner.password).await;
    let created = staff
        .post(
            "/admin/products",
            &[
                ("brand_id", shop.brand_id.as_str()),
                ("title", "Rain jacket"),
                ("status", "active"),
                ("sku", "JKT-M"),
                ("variant_title", "M"),
                ("price", "89.50"),
                ("options", "size=M; colour=navy"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.text);
    let product_page = created.header("location").unwrap().to_owned();
    assert!(product_page.starts_with("/admin/products/"), "{product_page}");
    let added = staff
        .post_and_follow(
            &format!("{product_page}/variants"),
            &[("sku", "JKT-L"), ("title", "L"), ("price", "92.00"), ("options", "size=L; colour=navy")],
        )
        .await;
    assert!(added.text.contains("JKT-L"), "{}", added.text);
    let product_id = product_page.trim_start_matches("/admin/products/");
    let api = app.get(&format!("/api/v1/products/{product_id}"), &owner.token).await;
    let variants = api.body["variants"].as_array().unwrap();
    assert_eq!(variants.len(), 2, "{}", api.text);
    assert_eq!(variants[1]["price"]["amount"], 9200);
    assert_eq!(variants[1]["options"], serde_json::json!({"size": "L", "colour": "navy"}));
    let refused = staff
        .post_and_follow(&format!("{product_page}/variants"), &[("sku", "JKT-XL"), ("title", "XL"), ("price", "lots")])
        .await;
    assert!(refused.text.contains("price"), "the bad price is named: {}", refused.text);
}
