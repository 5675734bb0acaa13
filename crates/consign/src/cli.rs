//! Command-line interface. Every setting is a flag and an environment
//! variable; the README lists them all.

use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};
use consign_channels::{ChannelsConfig, EmailConfig, TwilioConfig, WhatsappConfig};
use consign_jobs::RunnerConfig;
use consign_web::WebConfig;
use consign_web::auth::rate_limit::{Limit, RateLimits};

/// Consign: order management for brands and 3PLs.
#[derive(Debug, Parser)]
#[command(name = "consign", version, about)]
pub struct Cli {
    /// Log format.
    #[arg(long, env = "CONSIGN_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// Log filter, such as `info` or `consign_web=debug,info`.
    #[arg(long, env = "CONSIGN_LOG", default_value = "info", global = true)]
    pub log_level: String,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Log output format.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server and the background worker (migrates first; with
    /// `--demo`, seeds demo data on an empty database and opens signup).
    /// Plain `consign` with no arguments is `consign serve --demo`.
    Serve(Box<ServeArgs>),
    /// Apply database migrations and exit.
    Migrate(DatabaseArgs),
    /// Load the demo data (a 3PL, a merchant, a brand) if it is not there.
    Seed(DatabaseArgs),
    /// Administration tasks.
    Admin {
        /// Database.
        #[command(flatten)]
        database: DatabaseArgs,
        /// Task.
        #[command(subcommand)]
        command: AdminCommand,
    },
}

/// Administration tasks.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a platform admin (or make an existing user one).
    CreatePlatformAdmin {
        /// Email.
        #[arg(long)]
        email: String,
        /// Display name.
        #[arg(long, default_value = "Platform admin")]
        name: String,
        /// Password (at least 8 characters).
        #[arg(
            long,
            env = "CONSIGN_ADMIN_PASSWORD",
            hide_env_values = true,
            required_unless_present = "password_stdin"
        )]
        password: Option<String>,
        /// Read the password from the first line of standard input instead
        /// (kept out of `ps` and shell history).
        #[arg(long, conflicts_with = "password")]
        password_stdin: bool,
    },
    /// Re-seal every stored provider credential under the newest master key
    /// (`--generate` first adds a new key to the key file).
    RotateKeys {
        /// Master keys.
        #[command(flatten)]
        keys: MasterKeyArgs,
        /// Add a freshly generated key to the key file first (it becomes the
        /// newest). With `CONSIGN_MASTER_KEY`, add the key there yourself.
        #[arg(long, default_value_t = false)]
        generate: bool,
    },
    /// Approve a brand's outbound messaging: it may then turn on SMS and
    /// WhatsApp, and its own template texts are used before its first paid
    /// order.
    ApproveMessaging {
        /// The brand's slug.
        #[arg(long)]
        brand: String,
    },
    /// Set a user's password and end its sessions.
    ResetPassword {
        /// Email.
        #[arg(long)]
        email: String,
        /// New password (at least 8 characters).
        #[arg(long, env = "CONSIGN_NEW_PASSWORD", hide_env_values = true, required_unless_present = "password_stdin")]
        password: Option<String>,
        /// Read the password from the first line of standard input instead
        /// (kept out of `ps` and shell history).
        #[arg(long, conflicts_with = "password")]
        password_stdin: bool,
    },
    /// Background jobs.
    Jobs {
        /// Task.
        #[command(subcommand)]
        command: JobsCommand,
    },
}

/// Background job tasks.
#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Put a dead job, or every dead job, back in the queue with its
    /// attempts reset. A dead refund is reopened and sent again under the
    /// same idempotency key.
    Requeue {
        /// The job's id.
        #[arg(required_unless_present = "dead", conflicts_with = "dead")]
        id: Option<String>,
        /// Every dead job.
        #[arg(long, default_value_t = false)]
        dead: bool,
    },
}

/// Database connection settings.
#[derive(Debug, Args)]
pub struct DatabaseArgs {
    /// `sqlite://path` (created if missing) or `postgres://…`.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://./data/consign.db")]
    pub database_url: String,
    /// Most database connections (SQLite: readers; it always has one writer).
    #[arg(long, env = "CONSIGN_DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: u32,
    /// Most concurrent write transactions that share one commit (1: none
    /// share; every transaction commits alone).
    #[arg(long, env = "CONSIGN_DB_GROUP_COMMIT", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub db_group_commit: u32,
}

/// Where the master keys that seal provider credentials come from.
#[derive(Debug, Args)]
pub struct MasterKeyArgs {
    /// Master keys, `id:hex64[,id:hex64…]`, oldest first (a bare 64-digit hex
    /// key is `k1`). Takes precedence over the key file.
    #[arg(long, env = "CONSIGN_MASTER_KEY", hide_env_values = true)]
    pub master_key: Option<String>,
    /// The key file, created with one random key (mode 0600) on first start
    /// when `CONSIGN_MASTER_KEY` is not set.
    #[arg(long, env = "CONSIGN_MASTER_KEY_FILE", default_value = "./data/master.key")]
    pub master_key_file: std::path::PathBuf,
}

/// Payment providers' API base URLs (tests and sandboxes point them elsewhere).
#[derive(Debug, Args)]
pub struct ProviderArgs {
    /// Stripe API base URL.
    #[arg(long, env = "CONSIGN_STRIPE_API_BASE", default_value = "https://api.stripe.com")]
    pub stripe_api_base: String,
    /// Razorpay API base URL.
    #[arg(long, env = "CONSIGN_RAZORPAY_API_BASE", default_value = "https://api.razorpay.com")]
    pub razorpay_api_base: String,
    /// PayPal API base URL (sandbox: `https://api-m.sandbox.paypal.com`).
    #[arg(long, env = "CONSIGN_PAYPAL_API_BASE", default_value = "https://api-m.paypal.com")]
    pub paypal_api_base: String,
}

/// `serve` settings.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Database.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Master keys.
    #[command(flatten)]
    pub keys: MasterKeyArgs,
    /// Payment providers.
    #[command(flatten)]
    pub providers: ProviderArgs,
    /// Address to listen on.
    #[arg(long, env = "CONSIGN_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,
    /// A demo installation: seed demo data (with its printed logins) on an
    /// empty database, and open signup unless `--allow-signup` says otherwise.
    /// Off by default, so a production start never creates known logins.
    #[arg(long, env = "CONSIGN_DEMO", default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    pub demo: bool,
    /// Allow `POST /api/v1/auth/signup` (default: only with `--demo`).
    #[arg(long, env = "CONSIGN_ALLOW_SIGNUP", action = ArgAction::Set)]
    pub allow_signup: Option<bool>,
    /// Largest request body, in bytes.
    #[arg(long, env = "CONSIGN_BODY_LIMIT_BYTES", default_value_t = 1024 * 1024)]
    pub body_limit_bytes: usize,
    /// JWT signing secret; by default one is generated and kept in the database.
    #[arg(long, env = "CONSIGN_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Access-token lifetime, in seconds.
    #[arg(long, env = "CONSIGN_ACCESS_TOKEN_TTL_SECONDS", default_value_t = 900)]
    pub access_token_ttl_seconds: i64,
    /// Refresh-token lifetime, in seconds.
    #[arg(long, env = "CONSIGN_REFRESH_TOKEN_TTL_SECONDS", default_value_t = 30 * 24 * 3600)]
    pub refresh_token_ttl_seconds: i64,
    /// A session unused this long ends (API refresh tokens and staff page
    /// sessions), in seconds.
    #[arg(long, env = "CONSIGN_SESSION_IDLE_SECS", default_value_t = 2 * 24 * 3600)]
    pub session_idle_secs: i64,
    /// A session ends this long after login however active, in seconds.
    #[arg(long, env = "CONSIGN_SESSION_MAX_LIFETIME_SECS", default_value_t = 30 * 24 * 3600)]
    pub session_max_lifetime_secs: i64,
    /// Login attempts per minute from one IP.
    #[arg(long, env = "CONSIGN_LOGIN_ATTEMPTS_PER_IP_PER_MINUTE", default_value_t = 30)]
    pub login_attempts_per_ip_per_minute: u32,
    /// Login attempts per minute for one account.
    #[arg(long, env = "CONSIGN_LOGIN_ATTEMPTS_PER_ACCOUNT_PER_MINUTE", default_value_t = 10)]
    pub login_attempts_per_account_per_minute: u32,
    /// Longest a request may run, in seconds.
    #[arg(long, env = "CONSIGN_REQUEST_TIMEOUT_SECONDS", default_value_t = 30)]
    pub request_timeout_seconds: u64,
    /// On SIGTERM, how long in-flight requests may take to finish, in seconds.
    #[arg(long, env = "CONSIGN_SHUTDOWN_GRACE_SECONDS", default_value_t = 20)]
    pub shutdown_grace_seconds: u64,
    /// Take the client IP from `X-Forwarded-For` (only behind your own proxy).
    #[arg(long, env = "CONSIGN_TRUST_FORWARDED_FOR", default_value_t = false, action = ArgAction::Set)]
    pub trust_forwarded_for: bool,
    /// How many proxies of yours append to `X-Forwarded-For`: the client's
    /// address is that many entries from the right.
    #[arg(long, env = "CONSIGN_TRUSTED_PROXIES", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub trusted_proxies: u16,
    /// Request rate limits and checkout hold limits.
    #[command(flatten)]
    pub rate_limits: RateLimitArgs,
    /// Where attachments are kept: `file://<dir>` or `s3://<bucket>/<prefix>`
    /// (S3 credentials and endpoint from the usual `AWS_*` variables).
    #[arg(long, env = "CONSIGN_FILES_URL", default_value = "file://./data/files")]
    pub files_url: String,
    /// Largest attachment accepted, in bytes.
    #[arg(long, env = "CONSIGN_ATTACHMENT_MAX_BYTES", default_value_t = 10 * 1024 * 1024)]
    pub attachment_max_bytes: usize,
    /// Most bytes of attachments one order may hold.
    #[arg(long, env = "CONSIGN_ATTACHMENT_ORDER_QUOTA_BYTES", default_value_t = 100 * 1024 * 1024)]
    pub attachment_order_quota_bytes: u64,
    /// Most bytes of attachments one brand may hold, across its orders.
    #[arg(long, env = "CONSIGN_ATTACHMENT_BRAND_QUOTA_BYTES", default_value_t = 20 * 1024 * 1024 * 1024)]
    pub attachment_brand_quota_bytes: u64,
    /// Hours after which an uploaded file never sent in a message is deleted.
    #[arg(long, env = "CONSIGN_UNSENT_UPLOAD_TTL_HOURS", default_value_t = 24, value_parser = clap::value_parser!(u64).range(1..))]
    pub unsent_upload_ttl_hours: u64,
    /// Mark page cookies `Secure` (serve the pages over HTTPS). Behind a
    /// trusted proxy, `X-Forwarded-Proto: https` turns it on per request.
    #[arg(long, env = "CONSIGN_SECURE_COOKIES", default_value_t = false, action = ArgAction::Set)]
    pub secure_cookies: bool,
    /// Longest a client may take to send a request's headers, in seconds;
    /// also how long an idle keep-alive connection is kept.
    #[arg(long, env = "CONSIGN_HEADER_READ_TIMEOUT_SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub header_read_timeout_seconds: u64,
    /// Most client connections served at once; more wait until one closes.
    #[arg(long, env = "CONSIGN_MAX_CONNECTIONS", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// When set, `/metrics` requires `Authorization: Bearer <token>`.
    #[arg(long, env = "CONSIGN_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Live WebSockets (`/api/v1/live`, `/admin/live`) one client IP may
    /// hold open at once; more are refused with 429.
    #[arg(long, env = "CONSIGN_LIVE_SOCKETS_PER_IP", default_value_t = 20)]
    pub live_sockets_per_ip: usize,
    /// Run the background worker beside the API (`false`: an API-only instance).
    #[arg(long, env = "CONSIGN_WORKER", default_value_t = true, action = ArgAction::Set)]
    pub worker: bool,
    /// Most background jobs this instance runs at once.
    #[arg(long, env = "CONSIGN_WORKER_CONCURRENCY", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub worker_concurrency: u16,
    /// Messaging channel providers.
    #[command(flatten)]
    pub channels: ChannelArgs,
}

/// Request rate limits, each written `hits/window` (such as `20/10m`; units
/// `s`, `m`, `h`, `d`) or `off`, counted in the database so that every
/// instance on it shares them.
#[derive(Debug, Args)]
pub struct RateLimitArgs {
    /// Signups from one client IP.
    #[arg(long, env = "CONSIGN_SIGNUP_LIMIT_PER_IP", default_value_t = RateLimits::default().signup_per_ip)]
    pub signup_limit_per_ip: Limit,
    /// Checkouts from one client IP.
    #[arg(long, env = "CONSIGN_CHECKOUT_LIMIT_PER_IP", default_value_t = RateLimits::default().checkout_per_ip)]
    pub checkout_limit_per_ip: Limit,
    /// Checkouts for one customer email at one brand.
    #[arg(long, env = "CONSIGN_CHECKOUT_LIMIT_PER_EMAIL", default_value_t = RateLimits::default().checkout_per_email)]
    pub checkout_limit_per_email: Limit,
    /// Unpaid open orders one customer email may hold at one brand.
    #[arg(long, env = "CONSIGN_UNPAID_ORDERS_PER_EMAIL", default_value_t = RateLimits::default().unpaid_orders_per_email)]
    pub unpaid_orders_per_email: u32,
    /// Units one order may hold (the sum of its lines).
    #[arg(long, env = "CONSIGN_MAX_UNITS_PER_ORDER", default_value_t = RateLimits::default().max_units_per_order,
          value_parser = clap::value_parser!(i64).range(1..))]
    pub max_units_per_order: i64,
    /// Attachment uploads by one caller (user, API key or order token).
    #[arg(long, env = "CONSIGN_UPLOAD_LIMIT_PER_CALLER", default_value_t = RateLimits::default().uploads_per_caller)]
    pub upload_limit_per_caller: Limit,
    /// Message searches by one caller.
    #[arg(long, env = "CONSIGN_SEARCH_LIMIT_PER_CALLER", default_value_t = RateLimits::default().searches_per_caller)]
    pub search_limit_per_caller: Limit,
    /// Messages posted by one caller.
    #[arg(long, env = "CONSIGN_MESSAGE_LIMIT_PER_CALLER", default_value_t = RateLimits::default().messages_per_caller)]
    pub message_limit_per_caller: Limit,
}

impl RateLimitArgs {
    /// The limits.
    pub fn limits(&self) -> RateLimits {
        RateLimits {
            signup_per_ip: self.signup_limit_per_ip,
            checkout_per_ip: self.checkout_limit_per_ip,
            checkout_per_email: self.checkout_limit_per_email,
            unpaid_orders_per_email: self.unpaid_orders_per_email,
            max_units_per_order: self.max_units_per_order,
            uploads_per_caller: self.upload_limit_per_caller,
            searches_per_caller: self.search_limit_per_caller,
            messages_per_caller: self.message_limit_per_caller,
        }
    }
}

/// Email, WhatsApp and SMS providers. A channel is on when its required
/// settings are given.
#[derive(Debug, Args)]
pub struct ChannelArgs {
    /// The URL providers reach this installation at (Twilio signs it; status callbacks use it).
    #[arg(long, env = "CONSIGN_PUBLIC_BASE_URL")]
    pub public_base_url: Option<String>,
    /// Tries per outbound message before it is `failed`.
    #[arg(long, env = "CONSIGN_MAX_DELIVERY_ATTEMPTS", default_value_t = 6)]
    pub max_delivery_attempts: i64,
    /// Let every brand turn on SMS and WhatsApp. Off: only brands approved
    /// with `consign admin approve-messaging` may.
    #[arg(long, env = "CONSIGN_ALLOW_BRAND_SMS", default_value_t = false, action = ArgAction::Set)]
    pub allow_brand_sms: bool,
    /// Messages (notifications and staff replies) one customer address or
    /// phone gets per hour, from all brands together.
    #[arg(long, env = "CONSIGN_OUTBOUND_PER_RECIPIENT_PER_HOUR",
          default_value_t = ChannelsConfig::DEFAULT_OUTBOUND_PER_RECIPIENT_PER_HOUR,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub outbound_per_recipient_per_hour: u32,
    /// Messages one brand sends to its customers per day.
    #[arg(long, env = "CONSIGN_OUTBOUND_PER_BRAND_PER_DAY",
          default_value_t = ChannelsConfig::DEFAULT_OUTBOUND_PER_BRAND_PER_DAY,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub outbound_per_brand_per_day: u32,
    /// SMTP relay: `smtp://host:port` or `smtps://user:pass@host`.
    #[arg(long, env = "CONSIGN_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// From address of outbound email.
    #[arg(long, env = "CONSIGN_EMAIL_FROM")]
    pub email_from: Option<String>,
    /// Domain of reply addresses and brands' inbound addresses.
    #[arg(long, env = "CONSIGN_INBOUND_EMAIL_DOMAIN")]
    pub inbound_email_domain: Option<String>,
    /// Mailgun webhook signing key.
    #[arg(long, env = "CONSIGN_MAILGUN_SIGNING_KEY", hide_env_values = true)]
    pub mailgun_signing_key: Option<String>,
    /// WhatsApp Cloud API base URL.
    #[arg(long, env = "CONSIGN_WHATSAPP_BASE_URL", default_value = "https://graph.facebook.com")]
    pub whatsapp_base_url: String,
    /// WhatsApp Cloud API version.
    #[arg(long, env = "CONSIGN_WHATSAPP_API_VERSION", default_value = "v21.0")]
    pub whatsapp_api_version: String,
    /// WhatsApp sending phone number id.
    #[arg(long, env = "CONSIGN_WHATSAPP_PHONE_NUMBER_ID")]
    pub whatsapp_phone_number_id: Option<String>,
    /// WhatsApp access token.
    #[arg(long, env = "CONSIGN_WHATSAPP_ACCESS_TOKEN", hide_env_values = true)]
    pub whatsapp_access_token: Option<String>,
    /// WhatsApp app secret (webhook signatures).
    #[arg(long, env = "CONSIGN_WHATSAPP_APP_SECRET", hide_env_values = true)]
    pub whatsapp_app_secret: Option<String>,
    /// WhatsApp webhook verify token.
    #[arg(long, env = "CONSIGN_WHATSAPP_VERIFY_TOKEN", hide_env_values = true)]
    pub whatsapp_verify_token: Option<String>,
    /// Twilio API base URL.
    #[arg(long, env = "CONSIGN_TWILIO_BASE_URL", default_value = "https://api.twilio.com")]
    pub twilio_base_url: String,
    /// Twilio account SID.
    #[arg(long, env = "CONSIGN_TWILIO_ACCOUNT_SID")]
    pub twilio_account_sid: Option<String>,
    /// Twilio auth token.
    #[arg(long, env = "CONSIGN_TWILIO_AUTH_TOKEN", hide_env_values = true)]
    pub twilio_auth_token: Option<String>,
    /// Twilio sending number (E.164).
    #[arg(long, env = "CONSIGN_TWILIO_FROM_NUMBER")]
    pub twilio_from_number: Option<String>,
}

impl ChannelArgs {
    /// The providers' settings.
    pub fn config(&self) -> ChannelsConfig {
        use consign_channels::config::Secret;
        let email = match (&self.smtp_url, &self.email_from, &self.inbound_email_domain) {
            (Some(smtp_url), Some(from), Some(domain)) => Some(EmailConfig {
                smtp_url: smtp_url.clone(),
                from: from.clone(),
                inbound_domain: domain.clone(),
                mailgun_signing_key: self.mailgun_signing_key.clone().map(Secret),
            }),
            _ => None,
        };
        let whatsapp = match (
            &self.whatsapp_phone_number_id,
            &self.whatsapp_access_token,
            &self.whatsapp_app_secret,
            &self.whatsapp_verify_token,
        ) {
            (Some(id), Some(token), Some(secret), Some(verify)) => Some(WhatsappConfig {
                base_url: self.whatsapp_base_url.clone(),
                api_version: self.whatsapp_api_version.clone(),
                phone_number_id: id.clone(),
                access_token: Secret(token.clone()),
                app_secret: Secret(secret.clone()),
                verify_token: Secret(verify.clone()),
            }),
            _ => None,
        };
        let twilio = match (&self.twilio_account_sid, &self.twilio_auth_token, &self.twilio_from_number) {
            (Some(sid), Some(token), Some(from)) => Some(TwilioConfig {
                base_url: self.twilio_base_url.clone(),
                account_sid: sid.clone(),
                auth_token: Secret(token.clone()),
                from_number: from.clone(),
            }),
            _ => None,
        };
        ChannelsConfig {
            email,
            whatsapp,
            twilio,
            public_base_url: self.public_base_url.clone(),
            max_delivery_attempts: self.max_delivery_attempts,
            allow_brand_sms: self.allow_brand_sms,
            outbound_per_recipient_per_hour: self.outbound_per_recipient_per_hour,
            outbound_per_brand_per_day: self.outbound_per_brand_per_day,
        }
    }
}

impl MasterKeyArgs {
    /// The keyring: `CONSIGN_MASTER_KEY`, else the key file (created on first use).
    pub fn keyring(&self) -> anyhow::Result<consign_payments::Keyring> {
        Ok(match &self.master_key {
            Some(keys) => consign_payments::Keyring::parse(keys)?,
            None => consign_payments::Keyring::load_or_create(&self.master_key_file)?,
        })
    }
}

impl ServeArgs {
    /// The payment gateway: keyring and provider URLs.
    pub fn gateway(&self) -> anyhow::Result<consign_payments::Gateway> {
        let endpoints = consign_payments::Endpoints {
            stripe: self.providers.stripe_api_base.trim_end_matches('/').to_owned(),
            razorpay: self.providers.razorpay_api_base.trim_end_matches('/').to_owned(),
            paypal: self.providers.paypal_api_base.trim_end_matches('/').to_owned(),
        };
        Ok(consign_payments::Gateway::new(Some(self.keys.keyring()?), endpoints))
    }

    /// The HTTP edge's settings.
    pub fn web_config(&self) -> WebConfig {
        WebConfig {
            body_limit_bytes: self.body_limit_bytes,
            allow_signup: self.allow_signup.unwrap_or(self.demo),
            access_token_ttl_seconds: self.access_token_ttl_seconds,
            refresh_token_ttl_seconds: self.refresh_token_ttl_seconds,
            session_idle_timeout_seconds: self.session_idle_secs,
            session_max_lifetime_seconds: self.session_max_lifetime_secs,
            login_attempts_per_ip_per_minute: self.login_attempts_per_ip_per_minute,
            login_attempts_per_account_per_minute: self.login_attempts_per_account_per_minute,
            rate_limits: self.rate_limits.limits(),
            request_timeout: Duration::from_secs(self.request_timeout_seconds),
            trust_forwarded_for: self.trust_forwarded_for,
            trusted_proxies: usize::from(self.trusted_proxies),
            files_url: Some(self.files_url.clone()),
            attachment_max_bytes: self.attachment_max_bytes,
            attachment_order_quota_bytes: self.attachment_order_quota_bytes,
            attachment_brand_quota_bytes: self.attachment_brand_quota_bytes,
            secure_cookies: self.secure_cookies,
            live_sockets_per_ip: self.live_sockets_per_ip,
            channels: std::sync::Arc::new(self.channels.config()),
            header_read_timeout: Duration::from_secs(self.header_read_timeout_seconds),
            max_connections: self.max_connections,
            metrics_token: self.metrics_token.clone().filter(|token| !token.is_empty()),
        }
    }

    /// The background worker's settings.
    pub fn runner_config(&self) -> RunnerConfig {
        RunnerConfig {
            concurrency: usize::from(self.worker_concurrency),
            shutdown_grace: Duration::from_secs(self.shutdown_grace_seconds),
            ..RunnerConfig::default()
        }
    }
}
