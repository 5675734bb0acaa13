//! Test support: a real Consign server on `127.0.0.1:0` over a fresh
//! database, and a small typed client for it.
//!
//! The database comes from `CONSIGN_TEST_DATABASE_URL`: unset, each test gets
//! its own SQLite file in a temporary directory; `postgres://…`, each test
//! gets its own freshly created PostgreSQL database on that server.

pub mod providers;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub mod browser;
pub mod pages;

use consign_db::{Db, Engine, PoolSettings};
use consign_web::{AppState, WebConfig};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// A fresh, migrated database for one test.
pub struct TestDb {
    /// The handle.
    pub db: Db,
    /// Its URL, for a second instance on the same database.
    pub url: String,
    /// The master key (`id:hex`) of servers spawned on it with
    /// [`TestApp::spawn_on`]: instances sharing a database share the key its
    /// instance secrets are sealed with.
    pub master_key: String,
    sqlite_dir: Option<PathBuf>,
}

impl TestDb {
    /// Creates and migrates a database (see the module docs for which).
    pub async fn new() -> Self {
        let base = std::env::var("CONSIGN_TEST_DATABASE_URL").unwrap_or_default();
        let (url, sqlite_dir) = if base.starts_with("postgres") {
            (create_postgres_database(&base).await, None)
        } else {
            let dir = std::env::temp_dir().join(format!("consign-test-{}", uuid::Uuid::now_v7().simple()));
            std::fs::create_dir_all(&dir).expect("create temp dir");
            (format!("sqlite://{}", dir.join("consign.db").display()), Some(dir))
        };
        let db = Db::connect(&url, &PoolSettings { max_connections: 8, ..PoolSettings::default() })
            .await
            .expect("connect to the test database");
        db.migrate().await.expect("migrate the test database");
        Self { db, url, master_key: consign_payments::Keyring::generate_line("test1"), sqlite_dir }
    }

    /// A second handle on the same database, as another instance would have.
    pub async fn another_connection(&self) -> Self {
        let db = Db::connect(&self.url, &PoolSettings { max_connections: 8, ..PoolSettings::default() })
            .await
            .expect("connect to the test database again");
        Self { db, url: self.url.clone(), master_key: self.master_key.clone(), sqlite_dir: None }
    }

    /// Which engine the suite runs on.
    pub fn engine(&self) -> Engine {
        self.db.engine()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(dir) = &self.sqlite_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

async fn create_postgres_database(base: &str) -> String {
    use sqlx::Connection;
    let name = format!("consign_test_{}", uuid::Uuid::now_v7().simple());
    let mut admin = sqlx::PgConnection::connect(base).await.expect("connect to PostgreSQL");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("create a test database");
    let _ = admin.close().await;
    match base.rfind('/') {
        Some(slash) if slash > "postgres://".len() => {
            let (prefix, rest) = base.split_at(slash);
            let query = rest.find('?').map(|q| &rest[q..]).unwrap_or("");
            format!("{prefix}/{name}{query}")
        }
        _ => format!("{}/{name}", base.trim_end_matches('/')),
    }
}

/// A running server and a client for it.
pub struct TestApp {
    /// Base URL, such as `http://127.0.0.1:41234`.
    pub address: String,
    /// The database behind it.
    pub test_db: TestDb,
    /// HTTP client (no redirects, no proxy).
    pub client: reqwest::Client,
    /// The payment gateway the server and `run_jobs` use (a random master
    /// key; provider URLs as given, unreachable by default).
    pub gateway: Arc<consign_payments::Gateway>,
    /// The provider clients its jobs send through.
    pub channels: std::sync::Arc<consign_channels::Channels>,
    /// The server's file store (attachments), for `run_jobs`.
    pub files: consign_web::files::FileStore,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// How old an unsent upload is when `run_jobs` deletes it (the server's
/// default).
pub const UNSENT_UPLOAD_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// A signed-up user: its tokens and its organization.
#[derive(Clone, Debug)]
pub struct TestUser {
    /// Email.
    pub email: String,
    /// Password.
    pub password: String,
    /// Access token.
    pub token: String,
    /// Refresh token.
    pub refresh_token: String,
    /// User id.
    pub user_id: String,
    /// Organization id.
    pub organization_id: String,
}

/// A response read whole.
#[derive(Debug)]
pub struct TestResponse {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: reqwest::header::HeaderMap,
    /// Body as JSON (`Null` when empty or not JSON).
    pub body: Value,
    /// Body as text.
    pub text: String,
}

impl TestResponse {
    /// The problem+json `code`, if any.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or_default()
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl TestApp {
    /// A server with default settings.
    pub async fn spawn() -> Self {
        Self::spawn_with(WebConfig::default()).await
    }

    /// A server with these settings over a fresh database.
    pub async fn spawn_with(config: WebConfig) -> Self {
        Self::spawn_on(TestDb::new().await, config).await
    }

    /// A server over an existing database.
    pub async fn spawn_on(test_db: TestDb, config: WebConfig) -> Self {
        let gateway = test_gateway_with_keys(consign_payments::Endpoints::default(), &test_db.master_key);
        Self::spawn_with_gateway(test_db, config, gateway).await
    }

    /// A server over an existing database talking to payment providers
    /// through `gateway` (see [`test_gateway`] and [`providers`]).
    pub async fn spawn_with_gateway(
        test_db: TestDb,
        config: WebConfig,
        gateway: Arc<consign_payments::Gateway>,
    ) -> Self {
        let channels = std::sync::Arc::new(
            consign_channels::Channels::new((*config.channels).clone()).expect("build channel clients"),
        );
        let state = AppState::new(test_db.db.clone(), config, None, gateway.clone()).await.expect("build app state");
        let files = state.files.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address: SocketAddr = listener.local_addr().expect("local addr");
        let (shutdown, stop) = oneshot::channel::<()>();
        let server = tokio::spawn(consign_web::serve(
            listener,
            state,
            async move {
                let _ = stop.await;
            },
            Duration::from_secs(5),
        ));
        let client =
            reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).no_proxy().build().expect("client");
        Self {
            address: format!("http://{address}"),
            test_db,
            client,
            gateway,
            channels,
            files,
            shutdown: Some(shutdown),
            server: Some(server),
        }
    }

    /// The storage handle, for arranging and checking state directly.
    pub fn db(&self) -> &Db {
        &self.test_db.db
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("server result");
        }
    }

    /// Full URL of a path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// Sends a request with an optional bearer token and JSON body.
    pub async fn request(&self, method: Method, path: &str, token: Option<&str>, body: Option<&Value>) -> TestResponse {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        read(request.send().await.expect("send request")).await
    }

    /// Sends a prepared request.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> TestResponse {
        read(request.send().await.expect("send request")).await
    }

    /// GET with a token.
    pub async fn get(&self, path: &str, token: &str) -> TestResponse {
        self.request(Method::GET, path, Some(token), None).await
    }

    /// POST JSON with a token.
    pub async fn post(&self, path: &str, token: &str, body: Value) -> TestResponse {
        self.request(Method::POST, path, Some(token), Some(&body)).await
    }

    /// POST JSON without a token.
    pub async fn post_anonymous(&self, path: &str, body: Value) -> TestResponse {
        self.request(Method::POST, path, None, Some(&body)).await
    }

    /// Signs up a user with a new organization of `kind`.
    pub async fn sign_up(&self, email: &str, kind: &str) -> TestUser {
        let password = "correct horse battery".to_owned();
        let response = self
            .post_anonymous(
                "/api/v1/auth/signup",
                json!({"email": email, "password": password, "name": "Test User",
                       "organization": {"name": format!("{email} org"), "kind": kind}}),
            )
            .await;
        assert_eq!(response.status, StatusCode::CREATED, "signup failed: {}", response.text);
        TestUser {
            email: email.to_owned(),
            password,
            token: response.body["access_token"].as_str().unwrap().to_owned(),
            refresh_token: response.body["refresh_token"].as_str().unwrap().to_owned(),
            user_id: response.body["user"]["id"].as_str().unwrap().to_owned(),
            organization_id: response.body["organization"]["id"].as_str().unwrap().to_owned(),
        }
    }

    /// Invites `email` as `role` through `invite_path`
    /// (`/api/v1/organizations/{id}/members` or `/api/v1/brands/{id}/members`)
    /// as `admin`, accepts the invitation as a new user and logs in.
    pub async fn invite_new_user(&self, admin: &TestUser, invite_path: &str, email: &str, role: &str) -> TestUser {
        let invited = self.post(invite_path, &admin.token, json!({"email": email, "role": role})).await;
        assert_eq!(invited.status, StatusCode::CREATED, "invite failed: {}", invited.text);
        let token = invited.body["token"].as_str().expect("invitation token");
        let password = "invited member password".to_owned();
        let accepted = self
            .post_anonymous(
                &format!("/api/v1/invitations/{token}/accept"),
                json!({"name": "Invited User", "password": password}),
            )
            .await;
        assert_eq!(accepted.status, StatusCode::CREATED, "accept failed: {}", accepted.text);
        let login = self.post_anonymous("/api/v1/auth/login", json!({"email": email, "password": password})).await;
        assert_eq!(login.status, StatusCode::OK, "login failed: {}", login.text);
        TestUser {
            email: email.to_owned(),
            password,
            token: login.body["access_token"].as_str().unwrap().to_owned(),
            refresh_token: login.body["refresh_token"].as_str().unwrap().to_owned(),
            user_id: accepted.body["user"]["id"].as_str().unwrap().to_owned(),
            organization_id: invited.body["organization_id"].as_str().unwrap().to_owned(),
        }
    }

    /// Creates a brand as `user` (an org admin) and returns its JSON.
    pub async fn create_brand(&self, user: &TestUser, slug: &str) -> Value {
        let response = self
            .post(
                "/api/v1/brands",
                &user.token,
                json!({"name": format!("Brand {slug}"), "slug": slug, "currency": "USD"}),
            )
            .await;
        assert_eq!(response.status, StatusCode::CREATED, "create brand failed: {}", response.text);
        response.body
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

async fn read(response: reqwest::Response) -> TestResponse {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("read body");
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    TestResponse { status, headers, body, text }
}

/// A brand with warehouses, products and stock, made through the API.
#[derive(Clone, Debug)]
pub struct StockedBrand {
    /// Brand id.
    pub brand_id: String,
    /// Brand slug (for the storefront).
    pub slug: String,
    /// Warehouse ids in allocation priority order.
    pub warehouses: Vec<String>,
    /// SKU → variant id.
    pub variants: std::collections::HashMap<String, String>,
}

/// One SKU to stock: its price in cents and its on-hand count per warehouse
/// (in the brand's priority order).
pub struct Sku<'a> {
    /// SKU.
    pub sku: &'a str,
    /// Unit price, minor units.
    pub price: i64,
    /// On hand in each warehouse.
    pub stock: &'a [i64],
}

impl TestApp {
    /// Creates a brand owned by `owner` with `warehouse_count` warehouses
    /// (priority = creation order), one active product per SKU, and stock.
    pub async fn stocked_brand(
        &self,
        owner: &TestUser,
        slug: &str,
        warehouse_count: usize,
        skus: &[Sku<'_>],
    ) -> StockedBrand {
        let brand = self.create_brand(owner, slug).await;
        let brand_id = brand["id"].as_str().unwrap().to_owned();
        let mut warehouses = Vec::new();
        for index in 0..warehouse_count {
            let code = format!("{}-W{index}", slug.to_uppercase());
            let response = self
                .post("/api/v1/warehouses", &owner.token, json!({"name": format!("Warehouse {index}"), "code": code}))
                .await;
            assert_eq!(response.status, StatusCode::CREATED, "create warehouse: {}", response.text);
            warehouses.push(response.body["id"].as_str().unwrap().to_owned());
        }
        let order: Vec<Value> = warehouses
            .iter()
            .enumerate()
            .map(|(priority, id)| json!({"warehouse_id": id, "priority": priority + 1}))
            .collect();
        let linked = self
            .request(
                Method::PUT,
                &format!("/api/v1/brands/{brand_id}/warehouses"),
                Some(&owner.token),
                Some(&json!({"warehouses": order})),
            )
            .await;
        assert!(linked.status.is_success(), "link warehouses: {}", linked.text);
        let mut variants = std::collections::HashMap::new();
        for sku in skus {
            let product = self
                .post(
                    "/api/v1/products",
                    &owner.token,
                    json!({"brand_id": brand_id, "title": format!("Product {}", sku.sku), "description": "", "status": "active",
                           "variants": [{"sku": sku.sku, "title": sku.sku, "options": {}, "price": {"amount": sku.price, "currency": "USD"}}]}),
                )
                .await;
            assert_eq!(product.status, StatusCode::CREATED, "create product: {}", product.text);
            let variant_id = product.body["variants"][0]["id"].as_str().unwrap().to_owned();
            for (warehouse_id, on_hand) in warehouses.iter().zip(sku.stock) {
                let adjusted = self
                    .post(
                        "/api/v1/inventory/adjustments",
                        &owner.token,
                        json!({"variant_id": variant_id, "warehouse_id": warehouse_id, "set_on_hand": on_hand, "reason": "initial count"}),
                    )
                    .await;
                assert_eq!(adjusted.status, StatusCode::CREATED, "adjust stock: {}", adjusted.text);
            }
            variants.insert(sku.sku.to_owned(), variant_id);
        }
        StockedBrand { brand_id, slug: slug.to_owned(), warehouses, variants }
    }

    /// `GET` an event feed page (`/api/v1/events?…`) until it holds at
    /// least `count` events, or 10 s passed. On PostgreSQL the feed shows
    /// an event once every older transaction on its database has ended
    /// (see `consign_db::events`).
    pub async fn events_until(&self, path: &str, token: &str, count: usize) -> TestResponse {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let page = self.get(path, token).await;
            let seen = page.body["data"].as_array().map_or(0, Vec::len);
            if seen >= count || tokio::time::Instant::now() > deadline {
                return page;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A storefront checkout of (sku, quantity) lines.
    pub async fn checkout(&self, slug: &str, lines: &[(&str, i64)], email: &str) -> TestResponse {
        self.post_anonymous(&format!("/api/v1/storefront/{slug}/checkout"), checkout_body(lines, email)).await
    }

    /// A stock level as `(on_hand, reserved)`, read through the API.
    pub async fn stock(&self, token: &str, variant_id: &str, warehouse_id: &str) -> (i64, i64) {
        let levels = self
            .get(&format!("/api/v1/inventory/levels?variant_id={variant_id}&warehouse_id={warehouse_id}"), token)
            .await;
        assert_eq!(levels.status, StatusCode::OK, "levels: {}", levels.text);
        let level = &levels.body["data"][0];
        (level["on_hand"].as_i64().unwrap_or(0), level["reserved"].as_i64().unwrap_or(0))
    }

    /// Runs every due background job now (fulfillment orders after payment,
    /// …) with the production handlers, until none is left.
    pub async fn run_jobs(&self) -> usize {
        self.runner().run_pending().await.expect("run jobs")
    }

    /// A worker with every production handler and periodic job, registered
    /// by the same `register_every_job` the binary calls, over this app's
    /// database, providers and file store.
    pub fn runner(&self) -> consign_jobs::Runner {
        let mut runner = consign_jobs::Runner::new(self.db().clone(), consign_jobs::RunnerConfig::default());
        let files = self.files.clone();
        let delete_file: consign_jobs::handlers::DeleteFile = Arc::new(move |key| {
            let files = files.clone();
            Box::pin(async move { files.delete(&key).await })
        });
        let services = consign_jobs::handlers::Services {
            gateway: self.gateway.clone(),
            keyring: self.gateway.keyring().expect("the test gateway has a keyring").clone(),
            channels: self.channels.clone(),
            delete_file,
            unsent_upload_ttl: UNSENT_UPLOAD_TTL,
        };
        consign_jobs::handlers::register_every_job(&mut runner, services);
        runner
    }

    /// Fails the test if any stock invariant is broken.
    pub async fn assert_stock_invariants(&self) {
        let violations = consign_db::schema::stock_violations(self.db()).await.expect("check invariants");
        assert!(violations.is_empty(), "stock invariants broken: {violations:#?}");
    }
}

/// A gateway with a fresh random master key and these provider URLs.
pub fn test_gateway(endpoints: consign_payments::Endpoints) -> Arc<consign_payments::Gateway> {
    test_gateway_with_keys(endpoints, &consign_payments::Keyring::generate_line("test1"))
}

/// A gateway with these master keys (`id:hex,…`) and provider URLs.
pub fn test_gateway_with_keys(endpoints: consign_payments::Endpoints, keys: &str) -> Arc<consign_payments::Gateway> {
    let keyring = consign_payments::Keyring::parse(keys).expect("test keys parse");
    Arc::new(consign_payments::Gateway::new(Some(keyring), endpoints))
}

/// The JSON of a storefront checkout.
pub fn checkout_body(lines: &[(&str, i64)], email: &str) -> Value {
    let items: Vec<Value> = lines.iter().map(|(sku, quantity)| json!({"sku": sku, "quantity": quantity})).collect();
    json!({
        "items": items,
        "customer": {"name": "Casey Customer", "email": email, "phone": "+15550100"},
        "shipping_address": {"line1": "1 Main St", "line2": null, "city": "Springfield", "region": "IL",
                             "postal_code": "62701", "country": "US"},
        "payment_provider": "manual"
    })
}

/// Runs `attempt` until one run starts and ends in the same fixed window of
/// `window_seconds` (how Consign's rate limits count), and returns that run's
/// result. A limit test spends a budget inside one window; a run that
/// crossed into the next window saw a fresh budget, so it proves nothing and
/// is repeated (on whatever fresh app `attempt` spawns). Never waits.
pub async fn in_one_window<T, F, Fut>(window_seconds: u64, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let window = || {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("the clock is after 1970");
        now.as_secs() / window_seconds
    };
    loop {
        let started = window();
        let result = attempt().await;
        if window() == started {
            return result;
        }
    }
}
