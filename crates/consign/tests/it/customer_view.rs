//! What a customer sees: an allow-list view of its order's events
//! on every customer path, the timeline as a paged list, and every staff
//! route refused to an order access token.

use consign_testkit::{Sku, TestApp, TestUser};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::live::{connect, events_until_message};

/// One word the search index keeps whole, written only by staff.
const SECRET: &str = "quokka7731";

struct Placed {
    owner: TestUser,
    slug: String,
    brand_id: String,
    order_id: String,
    token: String,
}

async fn placed(app: &TestApp) -> Placed {
    let owner = app.sign_up("owner@acme.example", "merchant").await;
    let shop = app.stocked_brand(&owner, "acme", 1, &[Sku { sku: "MUG", price: 1500, stock: &[10] }]).await;
    let placed = app.checkout(&shop.slug, &[("MUG", 1)], "casey@example.com").await;
    Placed {
        owner,
        slug: shop.slug.clone(),
        brand_id: shop.brand_id.clone(),
        order_id: placed.body["order"]["id"].as_str().unwrap().to_owned(),
        token: placed.body["order_access_token"].as_str().unwrap().to_owned(),
    }
}

async fn post_ok(app: &TestApp, path: &str, token: &str, body: Value) -> Value {
    let posted = app.post(path, token, body).await;
    assert!(posted.status.is_success(), "{path}: {} {}", posted.status, posted.text);
    posted.body
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn a_staff_note_cancel_reason_or_internal_message_reaches_no_customer_path() {
    let app = TestApp::spawn().await;
    let p = placed(&app).await;
    let orders = format!("/api/v1/orders/{}", p.order_id);
    let mut live = connect(&app, &p.token, true, None).await;

    post_ok(&app, &format!("{orders}/notes"), &p.owner.token, json!({"body": format!("{SECRET}: do not ship")})).await;
    let internal = json!({"body": format!("{SECRET} internal"), "internal": true});
    post_ok(&app, &format!("{orders}/messages"), &p.owner.token, internal).await;
    post_ok(&app, &format!("{orders}/cancel"), &p.owner.token, json!({"reason": format!("{SECRET} risk")})).await;
    post_ok(&app, &format!("{orders}/messages"), &p.owner.token, json!({"body": "Your order is cancelled."})).await;

    // Staff see all of it: the secret was really written.
    let staff = app.get(&format!("{orders}/timeline"), &p.owner.token).await;
    assert!(types(staff.body["data"].as_array().unwrap()).contains(&"order.note_added"), "{}", staff.text);
    assert!(staff.text.contains(SECRET));
    let staff_search = app.get(&format!("/api/v1/messages/search?q={SECRET}"), &p.owner.token).await;
    assert_eq!(staff_search.body["data"].as_array().unwrap().len(), 1, "{}", staff_search.text);

    // The live socket.
    let streamed = events_until_message(&mut live, "Your order is cancelled.").await;
    assert!(types(&streamed).contains(&"order.cancelled"), "{streamed:?}");
    for event in &streamed {
        assert!(!event.to_string().contains(SECRET), "streamed to the customer: {event}");
        assert_ne!(event["type"], "order.note_added");
    }

    // The timeline.
    let timeline = app.get(&format!("{orders}/timeline"), &p.token).await;
    assert_eq!(timeline.status, StatusCode::OK, "{}", timeline.text);
    assert!(!timeline.text.contains(SECRET), "{}", timeline.text);
    let seen = timeline.body["data"].as_array().unwrap();
    assert_eq!(types(seen)[0], "order.created");
    assert!(types(seen).contains(&"order.cancelled") && !types(seen).contains(&"order.note_added"), "{seen:?}");
    assert!(seen.iter().all(|e| e["actor"] == "staff" || e["actor"] == "system" || e["actor"] == "customer"));

    // The `?after=` replay from the customer's first event.
    let first = seen[0]["id"].as_str().unwrap();
    let mut replay = connect(&app, &p.token, true, Some(first)).await;
    post_ok(&app, &format!("{orders}/messages"), &p.owner.token, json!({"body": "Refund on its way."})).await;
    let replayed = events_until_message(&mut replay, "Refund on its way.").await;
    assert!(types(&replayed).contains(&"order.cancelled"), "the replay covers the cancel: {replayed:?}");
    for event in &replayed {
        assert!(!event.to_string().contains(SECRET), "replayed to the customer: {event}");
    }

    // The storefront's order view, the customer's search, the shop's page.
    let view = app
        .request(Method::GET, &format!("/api/v1/storefront/orders/{}?token={}", p.order_id, p.token), None, None)
        .await;
    assert_eq!(view.status, StatusCode::OK);
    assert!(!view.text.contains(SECRET), "{}", view.text);
    let search = app.get(&format!("/api/v1/messages/search?q={SECRET}"), &p.token).await;
    assert_eq!(search.status, StatusCode::OK);
    assert!(!search.text.contains(SECRET), "{}", search.text);
    let link = format!("/shop/{}/orders/{}?token={}", p.slug, p.order_id, p.token);
    let page = consign_testkit::pages::PageClient::new(&app).get_following(&link).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("Your order is cancelled."), "the page shows the thread");
    assert!(!page.text.contains(SECRET), "{}", page.text);
}

#[tokio::test]
async fn an_order_access_token_on_a_staff_route_is_forbidden() {
    let app = TestApp::spawn().await;
    let p = placed(&app).await;
    let order = format!("/api/v1/orders/{}", p.order_id);
    let brand = format!("/api/v1/brands/{}", p.brand_id);
    let staff_routes: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/api/v1/orders".into(), None),
        (Method::GET, "/api/v1/brands".into(), None),
        (Method::GET, "/api/v1/audit-log".into(), None),
        (Method::GET, "/api/v1/events".into(), None),
        (Method::GET, "/api/v1/me".into(), None),
        (Method::GET, "/api/v1/api-keys".into(), None),
        (Method::GET, "/api/v1/inbox".into(), None),
        (Method::GET, "/api/v1/threads".into(), None),
        (Method::GET, "/api/v1/products".into(), None),
        (Method::GET, "/api/v1/warehouses".into(), None),
        (Method::GET, "/api/v1/inventory/levels".into(), None),
        (Method::GET, "/api/v1/webhook-events".into(), None),
        (Method::GET, brand.clone(), None),
        (Method::GET, format!("{brand}/members"), None),
        (Method::GET, format!("{brand}/notification-templates"), None),
        (Method::GET, format!("{order}/fulfillment-orders"), None),
        (Method::GET, format!("{order}/payments"), None),
        (Method::GET, format!("{order}/notifications"), None),
        (Method::POST, format!("{order}/notes"), Some(json!({"body": "mine"}))),
        (Method::POST, format!("{order}/cancel"), Some(json!({"reason": "mine"}))),
        (Method::POST, format!("{order}/refunds"), Some(json!({"amount": 1, "reason": "mine"}))),
        (Method::POST, format!("{order}/thread/close"), None),
        (Method::POST, "/api/v1/auth/logout".into(), None),
        (Method::POST, "/api/v1/api-keys".into(), Some(json!({"brand_id": p.brand_id, "name": "x"}))),
    ];
    for (method, path, body) in &staff_routes {
        let answer = app.request(method.clone(), path, Some(&p.token), body.as_ref()).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{method} {path}: {}", answer.text);
        assert_eq!(answer.code(), "forbidden", "{method} {path}");
        assert!(answer.header("content-type").unwrap_or_default().starts_with("application/problem+json"));
    }
    // The customer's own routes still answer.
    for path in
        [order.clone(), format!("{order}/timeline"), format!("{order}/messages"), "/api/v1/messages/unread".into()]
    {
        let answer = app.get(&path, &p.token).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}: {}", answer.text);
    }
    let view = app.get(&format!("/api/v1/storefront/orders/{}", p.order_id), &p.token).await;
    assert_eq!(view.status, StatusCode::OK);
}

/// Every page of the timeline, following `next_cursor` at `limit`.
async fn all_pages(app: &TestApp, path: &str, token: &str, limit: u32) -> Vec<Value> {
    let mut events = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = match &cursor {
            Some(cursor) => format!("{path}?limit={limit}&cursor={cursor}"),
            None => format!("{path}?limit={limit}"),
        };
        let page = app.get(&query, token).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        let data = page.body["data"].as_array().unwrap();
        assert!(data.len() <= limit as usize);
        events.extend(data.iter().cloned());
        match page.body["next_cursor"].as_str() {
            Some(next) => {
                assert_eq!(data.len(), limit as usize, "only the last page is short");
                cursor = Some(next.to_owned());
            }
            None => return events,
        }
    }
}

#[tokio::test]
async fn the_timeline_is_a_paged_list_for_staff_and_customer() {
    let app = TestApp::spawn().await;
    let p = placed(&app).await;
    let orders = format!("/api/v1/orders/{}", p.order_id);
    // Staff notes between customer-facing events: a customer's page must
    // skip them and still be full.
    for body in ["one", "two", "three"] {
        post_ok(&app, &format!("{orders}/notes"), &p.owner.token, json!({"body": body})).await;
        post_ok(&app, &format!("{orders}/payments"), &p.owner.token, json!({"amount": 500, "method": "manual"})).await;
    }
    post_ok(&app, &format!("{orders}/notes"), &p.owner.token, json!({"body": "four"})).await;
    let path = format!("{orders}/timeline");
    for token in [&p.owner.token, &p.token] {
        let whole = app.get(&path, token).await;
        assert!(whole.body["next_cursor"].is_null(), "{}", whole.text);
        let whole = whole.body["data"].as_array().unwrap().clone();
        let ids = |events: &[Value]| events.iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
        for limit in [1, 2] {
            assert_eq!(ids(&all_pages(&app, &path, token, limit).await), ids(&whole), "limit {limit}");
        }
    }
    let customer = app.get(&path, &p.token).await;
    let customer = customer.body["data"].as_array().unwrap();
    assert_eq!(
        types(customer),
        ["order.created", "payment.captured", "payment.captured", "payment.captured", "order.paid"]
    );
    let staff = app.get(&path, &p.owner.token).await;
    let staff = staff.body["data"].as_array().unwrap();
    assert_eq!(types(staff).iter().filter(|t| **t == "order.note_added").count(), 4, "{staff:?}");
    assert_eq!(staff.len(), 9, "{staff:?}");
    assert_eq!(app.get(&format!("{path}?limit=0"), &p.token).await.status, StatusCode::UNPROCESSABLE_ENTITY);
}
