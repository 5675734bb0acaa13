//! Consign's HTTP edge: the JSON API under `/api/v1`, the ops endpoints and
//! the API reference.
//!
//! A request passes, outermost first: request id → problem+json for every
//! `/api/` error → timeout → catch-panic → metrics and access log →
//! authentication (bearer token → `Caller`) → idempotency (POST with
//! `Idempotency-Key`) → the route's handler, which checks the authorization
//! policy and calls `consign-db` with the caller's scope.
//!
//! Architecture invariant: only this crate knows about HTTP.

pub mod actions;
pub mod api;
pub mod auth;
pub mod error;
pub mod extract;
pub mod files;
pub mod live;
pub mod middleware;
pub mod openapi;
pub mod ops;
pub mod pages;
pub mod payment_instructions;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, StatusCode};
use axum::response::IntoResponse;
use consign_app::instance_secrets;
use consign_db::Db;
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

use crate::auth::rate_limit::{RateLimiter, RateLimits};
use crate::auth::tokens::AccessTokens;
use crate::error::AppError;

/// Settings of the HTTP edge.
#[derive(Clone, Debug)]
pub struct WebConfig {
    /// Largest request body accepted.
    pub body_limit_bytes: usize,
    /// Whether `POST /auth/signup` is open.
    pub allow_signup: bool,
    /// Access-token lifetime.
    pub access_token_ttl_seconds: i64,
    /// Refresh-token lifetime (at most the idle timeout applies).
    pub refresh_token_ttl_seconds: i64,
    /// A session (API refresh family or page session) unused this long ends.
    pub session_idle_timeout_seconds: i64,
    /// A session ends this long after login, however active.
    pub session_max_lifetime_seconds: i64,
    /// Login attempts per minute per client IP.
    pub login_attempts_per_ip_per_minute: u32,
    /// Failed login attempts per minute per account (see
    /// `RateLimiter::check_login` for how an address without failures still
    /// gets through).
    pub login_attempts_per_account_per_minute: u32,
    /// Request rate limits of signup, checkout, uploads, search and message
    /// posts, and the limits on unpaid checkouts.
    pub rate_limits: RateLimits,
    /// Longest a request may run.
    pub request_timeout: Duration,
    /// Take the client IP from `X-Forwarded-For` (only behind a proxy you run).
    pub trust_forwarded_for: bool,
    /// How many proxies of yours append to `X-Forwarded-For`: the client is
    /// that many hops from the right (1: the right-most entry).
    pub trusted_proxies: usize,
    /// Where attachments are kept (`file://<dir>` or `s3://<bucket>/<prefix>`);
    /// `None`: a directory under the system's temporary directory.
    pub files_url: Option<String>,
    /// Largest attachment accepted.
    pub attachment_max_bytes: usize,
    /// Most bytes of attachments one order may hold.
    pub attachment_order_quota_bytes: u64,
    /// Most bytes of attachments one brand may hold, across its orders.
    pub attachment_brand_quota_bytes: u64,
    /// Mark page cookies `Secure` (pages served over HTTPS).
    pub secure_cookies: bool,
    /// Live WebSockets one client IP may hold open at once.
    pub live_sockets_per_ip: usize,
    /// Messaging channel providers (webhook secrets, provider settings).
    pub channels: Arc<consign_channels::ChannelsConfig>,
    /// Longest a client may take to send a request's headers. It also bounds
    /// how long an idle keep-alive connection waits for its next request.
    pub header_read_timeout: Duration,
    /// Most connections served at once; further ones wait in the listen queue
    /// until one closes.
    pub max_connections: u32,
    /// When set, `/metrics` answers only `Authorization: Bearer <token>`.
    pub metrics_token: Option<String>,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            body_limit_bytes: 1024 * 1024,
            allow_signup: true,
            access_token_ttl_seconds: 15 * 60,
            refresh_token_ttl_seconds: 30 * 24 * 60 * 60,
            session_idle_timeout_seconds: 2 * 24 * 60 * 60,
            session_max_lifetime_seconds: 30 * 24 * 60 * 60,
            login_attempts_per_ip_per_minute: 30,
            login_attempts_per_account_per_minute: 10,
            rate_limits: RateLimits::default(),
            request_timeout: Duration::from_secs(30),
            trust_forwarded_for: false,
            trusted_proxies: 1,
            files_url: None,
            attachment_max_bytes: 10 * 1024 * 1024,
            attachment_order_quota_bytes: 100 * 1024 * 1024,
            attachment_brand_quota_bytes: 20 * 1024 * 1024 * 1024,
            secure_cookies: false,
            live_sockets_per_ip: 20,
            channels: Arc::default(),
            header_read_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            metrics_token: None,
        }
    }
}

impl WebConfig {
    /// How long sessions last: the idle timeout (no longer than a refresh
    /// token lives) and the maximum lifetime.
    pub fn session_limits(&self) -> consign_db::sessions::SessionLimits {
        consign_db::sessions::SessionLimits {
            idle_seconds: self.session_idle_timeout_seconds.min(self.refresh_token_ttl_seconds),
            max_lifetime_seconds: self.session_max_lifetime_seconds,
        }
    }
}

impl WebConfig {
    /// The attachment storage quotas.
    pub fn attachment_quotas(&self) -> consign_db::messages::attachments::Quotas {
        consign_db::messages::attachments::Quotas {
            order_bytes: self.attachment_order_quota_bytes,
            brand_bytes: self.attachment_brand_quota_bytes,
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub db: Db,
    /// Settings.
    pub config: Arc<WebConfig>,
    /// Access-token signer.
    pub access_tokens: Arc<AccessTokens>,
    /// Request rate limits, counted in the database.
    pub limiter: Arc<RateLimiter>,
    /// Metrics renderer.
    pub metrics: PrometheusHandle,
    /// Payment providers: the keyring, their base URLs, an HTTP client.
    pub gateway: Arc<consign_payments::Gateway>,
    /// Live event delivery to WebSocket clients.
    pub live: live::LiveHub,
    /// Attachment bytes.
    pub files: files::FileStore,
    /// The key order access tokens are derived with (see
    /// `consign_app::tokens::order_access_token`), shared through the database.
    pub order_token_key: Arc<String>,
}

/// Shortest `CONSIGN_JWT_SECRET` accepted: HS256 keys shorter than the hash
/// can be brute-forced offline from one token.
pub const MIN_JWT_SECRET_BYTES: usize = 32;

impl AppState {
    /// Builds the state. The JWT signing secret is `jwt_secret` if given
    /// (at least [`MIN_JWT_SECRET_BYTES`]), else one generated once and kept
    /// in the database, sealed with the gateway's master keyring like the
    /// other instance secrets, so every instance sharing the database
    /// accepts every other's tokens.
    pub async fn new(
        db: Db,
        config: WebConfig,
        jwt_secret: Option<String>,
        gateway: Arc<consign_payments::Gateway>,
    ) -> anyhow::Result<Self> {
        let keyring = gateway.keyring().map_err(|e| anyhow::anyhow!("instance secrets: {e}"))?;
        let secret = match jwt_secret {
            Some(secret) => {
                anyhow::ensure!(
                    secret.len() >= MIN_JWT_SECRET_BYTES,
                    "CONSIGN_JWT_SECRET must be at least {MIN_JWT_SECRET_BYTES} bytes (it is {}); \
                     leave it unset to have one generated and kept in the database",
                    secret.len()
                );
                secret
            }
            None => instance_secrets::get(&db, keyring, "jwt_signing_key").await?,
        };
        let order_token_key = instance_secrets::get(&db, keyring, consign_app::tokens::ORDER_TOKEN_KEY_SECRET).await?;
        let files_url = config
            .files_url
            .clone()
            .unwrap_or_else(|| format!("file://{}", std::env::temp_dir().join("consign-files").display()));
        Ok(Self {
            files: files::FileStore::open(&files_url)?,
            access_tokens: Arc::new(AccessTokens::new(secret.as_bytes(), config.access_token_ttl_seconds)),
            limiter: Arc::new(RateLimiter::new(
                db.clone(),
                config.rate_limits.clone(),
                config.login_attempts_per_ip_per_minute,
                config.login_attempts_per_account_per_minute,
            )),
            metrics: ops::prometheus(),
            gateway,
            config: Arc::new(config),
            live: live::LiveHub::new(db.clone()),
            order_token_key: Arc::new(order_token_key),
            db,
        })
    }

    /// The same state talking to payment providers through `gateway` (the
    /// master key and provider URLs from configuration). The instance
    /// secrets stay as they were opened.
    pub fn with_gateway(mut self, gateway: Arc<consign_payments::Gateway>) -> Self {
        self.gateway = gateway;
        self
    }

    /// An instance secret (see `consign_app::instance_secrets`) opened
    /// with this state's keyring.
    pub(crate) async fn instance_secret(&self, name: &str) -> Result<String, AppError> {
        let keyring = self.gateway.keyring().map_err(|e| AppError::Unavailable(e.to_string()))?;
        instance_secrets::get(&self.db, keyring, name).await.map_err(|error| AppError::Internal(error.into()))
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Consign API", description = "Order management for brands and 3PLs. Money is `{amount, currency}` in integer minor units; times are RFC 3339 in UTC; errors are `application/problem+json` with a stable `code`; lists take `limit` (at most 200) and `cursor` and answer `{data, next_cursor}`; every POST accepts `Idempotency-Key`; `If-Match` with a `version` refuses a stale write (412). The conventions in full are in the repository's docs/api.md."),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Signup, login, sessions"),
        (name = "organizations", description = "Organization members and invitations"),
        (name = "invitations", description = "Accepting an invitation to an organization or a brand"),
        (name = "brands", description = "Brands, members, invitations, fulfilment partners"),
        (name = "api-keys", description = "Brand API keys"),
        (name = "storefront", description = "Public checkout and the customer's order"),
        (name = "orders", description = "Orders and their changes"),
        (name = "fulfillment", description = "Fulfillment orders and shipments"),
        (name = "payments", description = "Payment attempts, refunds, provider credentials and provider webhooks"),
        (name = "events", description = "Domain events and the audit log"),
        (name = "messages", description = "Order threads, read receipts, inbox, search, canned responses"),
        (name = "notifications", description = "Customer and staff notifications: templates, digest window, delivery log"),
        (name = "catalog", description = "Products and variants"),
        (name = "warehouses", description = "Warehouses and each brand's allocation order"),
        (name = "inventory", description = "Stock adjustments, levels and the stock ledger"),
        (name = "ops", description = "Health, readiness, metrics"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

/// The OpenAPI document, generated from the route annotations, with the
/// problem responses every operation can answer (`openapi::document_problems`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, mut api) = routes().split_for_parts();
    openapi::document_problems(&mut api);
    api
}

fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest("/api/v1", api::router().route("/live", axum::routing::get(live::live)))
        .merge(ops::router())
}

/// The whole application as one router.
pub fn app(state: AppState) -> Router {
    let (router, mut api) = routes().split_for_parts();
    openapi::document_problems(&mut api);
    let request_id = HeaderName::from_static("x-request-id");
    let timeout = state.config.request_timeout;
    let body_limit = state.config.body_limit_bytes;
    router
        .merge(SwaggerUi::new("/docs").url("/openapi.json", api))
        .merge(pages::router(state.clone()))
        .fallback(pages::not_found)
        .method_not_allowed_fallback(|| async {
            let mut response = AppError::NotFound.into_response();
            *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
            response
        })
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::idempotency::idempotency))
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::middleware::authenticate))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn(middleware::observe::observe))
        .layer(CatchPanicLayer::custom(|_| AppError::Internal(anyhow::anyhow!("handler panicked")).into_response()))
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, timeout))
        .layer(axum::middleware::from_fn(middleware::problems::problem_errors))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

/// Serves until `shutdown` resolves, then stops accepting, lets in-flight
/// requests finish for at most `grace`, and returns.
///
/// Connections are HTTP/1.1 served by hyper with a timer, so a client that
/// trickles its headers (or idles between requests) is cut off after
/// `header_read_timeout`; at most `max_connections` are served at once.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> anyhow::Result<()> {
    let max_connections = state.config.max_connections.max(1);
    let header_read_timeout = state.config.header_read_timeout;
    // Each connection holds a permit until it closes: all permits back means
    // every connection has finished.
    let connections = Arc::new(tokio::sync::Semaphore::new(max_connections as usize));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let accepting = accept_connections(listener, app(state), connections.clone(), stop_rx, header_read_timeout);
    let mut accepting = std::pin::pin!(accepting);
    tokio::select! {
        result = &mut accepting => return result,
        () = shutdown => {}
    }
    tracing::info!("shutting down: no new connections; finishing in-flight requests");
    let _ = stop_tx.send(true);
    let result = accepting.await;
    if tokio::time::timeout(grace, connections.acquire_many(max_connections)).await.is_err() {
        tracing::warn!(grace_seconds = grace.as_secs(), "in-flight requests did not finish in time");
    }
    result
}

/// Accepts connections until `stop`, each served on its own task.
async fn accept_connections(
    listener: tokio::net::TcpListener,
    router: Router,
    connections: Arc<tokio::sync::Semaphore>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    header_read_timeout: Duration,
) -> anyhow::Result<()> {
    loop {
        // At the cap nothing is accepted: new clients wait in the kernel's
        // listen queue instead of costing a task and a file descriptor each.
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => permit?,
            () = stopped(&mut stop) => return Ok(()),
        };
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    if !is_connection_error(&error) {
                        // Out of file descriptors and the like: give the
                        // process a moment rather than spinning on it.
                        tracing::error!(%error, "cannot accept a connection");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    continue;
                }
            },
            () = stopped(&mut stop) => return Ok(()),
        };
        // Without TCP_NODELAY a response written in pieces (a streamed CSV, a
        // WebSocket frame after its header) waits on the client's delayed
        // ACK: 40 ms for a seven-row export, measured by the pages benchmark.
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
            tower::ServiceExt::oneshot(router.clone(), request)
        });
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(header_read_timeout);
            let connection = builder.serve_connection(hyper_util::rt::TokioIo::new(tcp), service).with_upgrades();
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                }
                () = stopped(&mut stop) => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
}

/// Resolves once `stop` turns true (or its sender is gone).
async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Errors of one connection, not of the listener.
fn is_connection_error(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}
