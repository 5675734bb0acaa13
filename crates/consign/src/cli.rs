//! Command-line interface. Every setting is a flag and an environment
//! variable; the README lists them all.

use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};
use consign_jobs::RunnerConfig;
use consign_web::WebConfig;

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
    /// Run the HTTP server and the background worker (migrates first; seeds demo data on an empty database).
    Serve(ServeArgs),
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
        #[arg(long, env = "CONSIGN_ADMIN_PASSWORD")]
        password: String,
    },
    /// Set a user's password and end its sessions.
    ResetPassword {
        /// Email.
        #[arg(long)]
        email: String,
        /// New password (at least 8 characters).
        #[arg(long, env = "CONSIGN_NEW_PASSWORD")]
        password: String,
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
}

/// `serve` settings.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Database.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Address to listen on.
    #[arg(long, env = "CONSIGN_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,
    /// Seed demo data on an empty database.
    #[arg(long, env = "CONSIGN_DEMO", default_value_t = true, action = ArgAction::Set)]
    pub demo: bool,
    /// Allow `POST /api/v1/auth/signup`.
    #[arg(long, env = "CONSIGN_ALLOW_SIGNUP", default_value_t = true, action = ArgAction::Set)]
    pub allow_signup: bool,
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
    /// Mark page cookies `Secure` (serve the pages over HTTPS). Behind a
    /// trusted proxy, `X-Forwarded-Proto: https` turns it on per request.
    #[arg(long, env = "CONSIGN_SECURE_COOKIES", default_value_t = false, action = ArgAction::Set)]
    pub secure_cookies: bool,
    /// Run the background worker beside the API (`false`: an API-only instance).
    #[arg(long, env = "CONSIGN_WORKER", default_value_t = true, action = ArgAction::Set)]
    pub worker: bool,
    /// Most background jobs this instance runs at once.
    #[arg(long, env = "CONSIGN_WORKER_CONCURRENCY", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub worker_concurrency: u16,
}

impl ServeArgs {
    /// The HTTP edge's settings.
    pub fn web_config(&self) -> WebConfig {
        WebConfig {
            body_limit_bytes: self.body_limit_bytes,
            allow_signup: self.allow_signup,
            access_token_ttl_seconds: self.access_token_ttl_seconds,
            refresh_token_ttl_seconds: self.refresh_token_ttl_seconds,
            login_attempts_per_ip_per_minute: self.login_attempts_per_ip_per_minute,
            login_attempts_per_account_per_minute: self.login_attempts_per_account_per_minute,
            request_timeout: Duration::from_secs(self.request_timeout_seconds),
            trust_forwarded_for: self.trust_forwarded_for,
            secure_cookies: self.secure_cookies,
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
