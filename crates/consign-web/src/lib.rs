//! Consign's HTTP edge: the JSON API under `/api/v1`, the ops endpoints and
//! the API reference.
//!
//! A request passes, outermost first: request id → timeout → catch-panic →
//! metrics and access log → authentication (bearer token → `Caller`) →
//! idempotency (POST with `Idempotency-Key`) → the route's handler, which
//! checks the authorization policy and calls `consign-db` with the caller's
//! scope.
//!
//! Architecture invariant: only this crate knows about HTTP.

pub mod api;
pub mod auth;
pub mod error;
pub mod extract;
pub mod files;
pub mod live;
pub mod middleware;
pub mod ops;
pub mod pages;
pub mod payments;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, StatusCode};
use axum::response::IntoResponse;
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
    /// Refresh-token lifetime.
    pub refresh_token_ttl_seconds: i64,
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
    /// Mark page cookies `Secure` (pages served over HTTPS).
    pub secure_cookies: bool,
    /// Messaging channel providers (webhook secrets, provider settings).
    pub channels: Arc<consign_channels::ChannelsConfig>,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            body_limit_bytes: 1024 * 1024,
            allow_signup: true,
            access_token_ttl_seconds: 15 * 60,
            refresh_token_ttl_seconds: 30 * 24 * 60 * 60,
            login_attempts_per_ip_per_minute: 30,
            login_attempts_per_account_per_minute: 10,
            rate_limits: RateLimits::default(),
            request_timeout: Duration::from_secs(30),
            trust_forwarded_for: false,
            trusted_proxies: 1,
            files_url: None,
            attachment_max_bytes: 10 * 1024 * 1024,
            secure_cookies: false,
            channels: Arc::default(),
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
    /// `consign_channels::order_access_token`), shared through the database.
    pub order_token_key: Arc<String>,
}

impl AppState {
    /// Builds the state. The JWT signing secret is `jwt_secret` if given,
    /// else one generated once and kept in the database, so every instance
    /// sharing the database accepts every other's tokens.
    pub async fn new(db: Db, config: WebConfig, jwt_secret: Option<String>) -> anyhow::Result<Self> {
        let secret = match jwt_secret {
            Some(secret) => secret,
            None => consign_db::secrets::get_or_create(&db, "jwt_signing_key", &auth::tokens::random_hex(32)).await?,
        };
        let order_token_key = consign_db::secrets::get_or_create(
            &db,
            consign_channels::ORDER_TOKEN_KEY_SECRET,
            &auth::tokens::random_hex(32),
        )
        .await?;
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
            gateway: Arc::new(consign_payments::Gateway::new(None, consign_payments::Endpoints::default())),
            config: Arc::new(config),
            live: live::LiveHub::new(db.clone()),
            order_token_key: Arc::new(order_token_key),
            db,
        })
    }
}

impl AppState {
    /// The same state talking to payment providers through `gateway` (the
    /// master key and provider URLs from configuration).
    pub fn with_gateway(mut self, gateway: Arc<consign_payments::Gateway>) -> Self {
        self.gateway = gateway;
        self
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Consign API", description = "Order management for brands and 3PLs. See SPEC.md §3 for conventions."),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Signup, login, sessions"),
        (name = "brands", description = "Brands, members, fulfilment partners"),
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

/// The OpenAPI document, generated from the route annotations.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, api) = routes().split_for_parts();
    api
}

fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest("/api/v1", api::router().route("/live", axum::routing::get(live::live)))
        .merge(ops::router())
}

/// The whole application as one router.
pub fn app(state: AppState) -> Router {
    let (router, api) = routes().split_for_parts();
    let request_id = HeaderName::from_static("x-request-id");
    let timeout = state.config.request_timeout;
    let body_limit = state.config.body_limit_bytes;
    router
        .merge(SwaggerUi::new("/docs").url("/openapi.json", api))
        .merge(pages::router(state.clone()))
        .fallback(|| async { AppError::NotFound.into_response() })
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
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

/// Serves until `shutdown` resolves, then stops accepting, lets in-flight
/// requests finish for at most `grace`, and returns.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let service = app(state).into_make_service_with_connect_info::<SocketAddr>();
    let mut stop_for_server = stop_rx.clone();
    // Without TCP_NODELAY a response written in pieces (a streamed CSV, a
    // WebSocket frame after its header) waits on the client's delayed ACK:
    // 40 ms for a seven-row export, measured by the pages benchmark.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
    });
    let server = axum::serve(listener, service).with_graceful_shutdown(async move {
        let _ = stop_for_server.wait_for(|stop| *stop).await;
    });
    let mut server = std::pin::pin!(server.into_future());
    tokio::select! {
        result = &mut server => return Ok(result?),
        () = shutdown => {}
    }
    tracing::info!("shutting down: no new connections; finishing in-flight requests");
    let _ = stop_tx.send(true);
    match tokio::time::timeout(grace, server).await {
        Ok(result) => result.map_err(anyhow::Error::from),
        Err(_) => {
            tracing::warn!(grace_seconds = grace.as_secs(), "in-flight requests did not finish in time");
            Ok(())
        }
    }
}
