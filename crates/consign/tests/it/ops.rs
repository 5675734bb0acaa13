//! Ops endpoints, request ids, OpenAPI, docs, graceful shutdown.

use std::time::{Duration, Instant};

use consign_testkit::TestApp;
use reqwest::{Method, StatusCode};

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = TestApp::spawn().await;
    let health = app.request(Method::GET, "/healthz", None, None).await;
    assert_eq!(health.status, StatusCode::OK);
    let ready = app.request(Method::GET, "/readyz", None, None).await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.body["status"], "ok");
}

#[tokio::test]
async fn readiness_fails_when_the_database_is_gone() {
    let app = TestApp::spawn().await;
    app.db().close().await;
    let ready = app.request(Method::GET, "/readyz", None, None).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    let health = app.request(Method::GET, "/healthz", None, None).await;
    assert_eq!(health.status, StatusCode::OK);
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_a_given_one_is_kept() {
    let app = TestApp::spawn().await;
    let generated = app.request(Method::GET, "/healthz", None, None).await;
    assert!(generated.header("x-request-id").is_some_and(|id| id.len() >= 16));
    let given = app.send(app.client.get(app.url("/healthz")).header("x-request-id", "trace-me-123")).await;
    assert_eq!(given.header("x-request-id"), Some("trace-me-123"));
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status_and_show_the_pool() {
    let app = TestApp::spawn().await;
    app.request(Method::GET, "/healthz", None, None).await;
    app.request(Method::GET, "/api/v1/me", None, None).await;
    let metrics = app.request(Method::GET, "/metrics", None, None).await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(
        metrics.text.contains(r#"http_requests_total{method="GET",route="/healthz",status="200"}"#),
        "{}",
        metrics.text
    );
    assert!(metrics.text.contains(r#"route="/api/v1/me",status="401""#));
    assert!(metrics.text.contains("http_request_duration_seconds_bucket"));
    assert!(metrics.text.contains("db_pool_connections"));
}

#[tokio::test]
async fn openapi_covers_every_api_route_with_schemas() {
    let app = TestApp::spawn().await;
    let spec = app.request(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(spec.status, StatusCode::OK);
    assert!(spec.body["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = spec.body["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/v1/auth/signup", "post"),
        ("/api/v1/auth/login", "post"),
        ("/api/v1/auth/refresh", "post"),
        ("/api/v1/auth/logout", "post"),
        ("/api/v1/me", "get"),
        ("/api/v1/brands", "post"),
        ("/api/v1/brands", "get"),
        ("/api/v1/brands/{id}", "get"),
        ("/api/v1/brands/{id}", "patch"),
        ("/api/v1/brands/{id}/members", "post"),
        ("/api/v1/brands/{id}/fulfillers", "post"),
        ("/api/v1/api-keys", "post"),
        ("/api/v1/api-keys/{id}", "delete"),
        ("/api/v1/products", "post"),
        ("/api/v1/inventory/adjustments", "post"),
        ("/api/v1/inventory/levels", "get"),
        ("/api/v1/storefront/{brand_slug}/products", "get"),
        ("/api/v1/storefront/{brand_slug}/checkout", "post"),
        ("/api/v1/storefront/orders/{id}", "get"),
        ("/api/v1/orders", "get"),
        ("/api/v1/orders/{id}", "get"),
        ("/api/v1/orders/{id}/cancel", "post"),
        ("/api/v1/orders/{id}/payments", "post"),
        ("/api/v1/orders/{id}/timeline", "get"),
        ("/api/v1/fulfillment-orders/{id}/shipments", "post"),
        ("/api/v1/shipments/{id}/status", "post"),
        ("/api/v1/events", "get"),
        ("/api/v1/audit-log", "get"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
    ] {
        let operation = &paths.get(path).unwrap_or_else(|| panic!("{path} missing"))[method];
        assert!(operation.is_object(), "{method} {path} missing");
        assert!(operation["responses"].as_object().is_some_and(|r| !r.is_empty()), "{method} {path} has no responses");
        if method == "post" && path != "/api/v1/auth/logout" {
            assert!(operation["requestBody"].is_object(), "{method} {path} has no request body schema");
        }
    }
    assert!(spec.body["components"]["schemas"]["Problem"].is_object());
}

#[tokio::test]
async fn the_docs_page_and_its_assets_are_served_from_the_binary() {
    let app = TestApp::spawn().await;
    let page = app.request(Method::GET, "/docs/", None, None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("swagger-ui"));
    assert!(!page.text.contains("https://"), "the page must not load anything from the internet");
    for asset in ["/docs/swagger-ui.css", "/docs/swagger-ui-bundle.js", "/docs/swagger-initializer.js"] {
        let response = app.request(Method::GET, asset, None, None).await;
        assert_eq!(response.status, StatusCode::OK, "{asset}");
        assert!(response.text.len() > 100, "{asset} is empty");
    }
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let app = TestApp::spawn().await;
    let user = app.sign_up("ada@example.com", "merchant").await;
    let body = serde_json::json!({"email": user.email, "password": user.password}).to_string();
    let (head, tail) = body.split_at(body.len() / 2);

    // A login whose body is only half sent: the handler is waiting for it.
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let request = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{head}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    // Another request served on a second connection shows the server has
    // been scheduled since the first one's headers arrived.
    assert_eq!(app.request(Method::GET, "/healthz", None, None).await.status, StatusCode::OK);

    let address_for_check = app.url("/healthz");
    let client = app.client.clone();
    let stopping = tokio::spawn(app.stop());
    // New connections are refused once shutdown starts.
    let deadline = Instant::now() + Duration::from_secs(5);
    while client.get(&address_for_check).send().await.is_ok() {
        assert!(Instant::now() < deadline, "the server still accepts new requests");
        tokio::task::yield_now().await;
    }

    // The in-flight request still completes.
    stream.write_all(tail.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response)).await.unwrap().unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("access_token"));
    tokio::time::timeout(Duration::from_secs(10), stopping).await.unwrap().unwrap();
}

#[tokio::test]
async fn invented_methods_are_counted_under_one_label() {
    let app = TestApp::spawn().await;
    for index in 0..100 {
        let method = Method::from_bytes(format!("INVENTED{index}").as_bytes()).unwrap();
        app.request(method, "/healthz", None, None).await;
    }
    let metrics = app.request(Method::GET, "/metrics", None, None).await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(!metrics.text.contains("INVENTED"), "{}", metrics.text);
    assert!(metrics.text.contains(r#"method="OTHER""#), "{}", metrics.text);
}

#[tokio::test]
async fn metrics_need_the_configured_token() {
    let config = consign_web::WebConfig { metrics_token: Some("scrape-me-please".into()), ..Default::default() };
    let app = TestApp::spawn_with(config).await;
    let anonymous = app.request(Method::GET, "/metrics", None, None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.code(), "unauthenticated");
    let wrong = app.request(Method::GET, "/metrics", Some("scrape-me-pleasE"), None).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let user = app.sign_up("ada@example.com", "merchant").await;
    assert_eq!(app.request(Method::GET, "/metrics", Some(&user.token), None).await.status, StatusCode::UNAUTHORIZED);
    let scraper = app.request(Method::GET, "/metrics", Some("scrape-me-please"), None).await;
    assert_eq!(scraper.status, StatusCode::OK);
    assert!(scraper.text.contains("http_requests_total"));
}

/// Reads until the server closes the connection, or fails at `deadline`.
async fn read_until_closed(stream: &mut tokio::net::TcpStream, deadline: tokio::time::Instant) -> String {
    use tokio::io::AsyncReadExt;
    let mut received = Vec::new();
    match tokio::time::timeout_at(deadline, stream.read_to_end(&mut received)).await {
        Ok(_) => String::from_utf8_lossy(&received).into_owned(),
        Err(_) => panic!("the server kept the connection open: {}", String::from_utf8_lossy(&received)),
    }
}

#[tokio::test]
async fn clients_that_trickle_their_headers_or_idle_are_cut_off() {
    use tokio::io::AsyncWriteExt;

    let config = consign_web::WebConfig { header_read_timeout: Duration::from_secs(1), ..Default::default() };
    let app = TestApp::spawn_with(config).await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut slow = Vec::new();
    for _ in 0..50 {
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        stream.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
        slow.push(stream);
    }
    // A keep-alive connection that finished its request and then says nothing.
    let mut idle = tokio::net::TcpStream::connect(&address).await.unwrap();
    idle.write_all(format!("GET /healthz HTTP/1.1\r\nhost: {address}\r\n\r\n").as_bytes()).await.unwrap();

    assert_eq!(app.request(Method::GET, "/healthz", None, None).await.status, StatusCode::OK);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    for stream in &mut slow {
        let answer = read_until_closed(stream, deadline).await;
        assert!(!answer.contains("200 OK"), "{answer}");
    }
    let answer = read_until_closed(&mut idle, deadline).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // The server still serves everyone else, on a new connection: the
    // shared client's pooled one sat idle past the timeout and may be
    // cut just as it is reused.
    let fresh = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let served = fresh.get(app.url("/healthz")).send().await.expect("a new connection is served");
    assert_eq!(served.status().as_u16(), 200);
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_for_a_free_slot() {
    use tokio::io::AsyncWriteExt;

    let config = consign_web::WebConfig { max_connections: 2, ..Default::default() };
    let app = TestApp::spawn_with(config).await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut holders = Vec::new();
    for _ in 0..2 {
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        stream.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
        holders.push(stream);
    }
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = app.url("/healthz");
    let mut waiting = tokio::spawn(async move { client.get(url).send().await.map(|r| r.status()) });
    // Both slots are taken: the third connection is not served while they are.
    let early = tokio::time::timeout(Duration::from_millis(500), &mut waiting).await;
    assert!(early.is_err(), "a connection beyond the cap was served: {early:?}");
    drop(holders.pop());
    let status = tokio::time::timeout(Duration::from_secs(10), waiting).await.unwrap().unwrap().unwrap();
    assert_eq!(status, StatusCode::OK);
}
