//! Request rate limits: how often one client IP, account or caller may
//! sign up, log in, check out, upload, search and post messages.
//!
//! The counters live in the database (`consign_db::rate_limits`), so every
//! instance sharing a PostgreSQL database counts against the same limit
//! (per-instance memory would multiply each limit by the number of
//! instances behind the load balancer). A route asks with one call,
//! `state.limiter.check(Bucket::Search, &caller_key(&caller)).await?`, which
//! counts the request and answers 429 `rate_limited` with `Retry-After`
//! once the bucket's limit for the current window is spent.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use consign_db::Db;
use consign_db::rate_limits::{self, Window};
use consign_domain::Timestamp;

use crate::error::{AppError, AppResult};
use crate::extract::Caller;

/// At most `hits` requests per `window_seconds` (a fixed window).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    /// Requests allowed per window.
    pub hits: u32,
    /// The window's length, in seconds.
    pub window_seconds: u32,
}

impl Limit {
    /// No limit: nothing is counted (and nothing written).
    pub const OFF: Limit = Limit { hits: u32::MAX, window_seconds: 1 };

    /// `hits` per `window_seconds`.
    pub const fn per(hits: u32, window_seconds: u32) -> Self {
        Self { hits, window_seconds }
    }

    fn is_off(self) -> bool {
        self.hits == u32::MAX
    }
}

/// Parses `30/1m` (30 per minute; units `s`, `m`, `h`, `d`, default
/// seconds) or `off`, as the command line writes a limit.
impl FromStr for Limit {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("off") {
            return Ok(Limit::OFF);
        }
        let malformed = || format!("`{text}` is not a limit such as 30/1m, 10/1h or off");
        let (hits, window) = text.split_once('/').ok_or_else(malformed)?;
        let hits: u32 = hits.trim().parse().map_err(|_| malformed())?;
        let window = window.trim();
        let (number, unit) = match window.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
            Some((at, _)) => window.split_at(at),
            None => (window, "s"),
        };
        let number: u32 = if number.is_empty() { 1 } else { number.parse().map_err(|_| malformed())? };
        let unit = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3_600,
            "d" => 86_400,
            _ => return Err(malformed()),
        };
        let window_seconds = number.checked_mul(unit).filter(|s| *s > 0).ok_or_else(malformed)?;
        Ok(Limit { hits: hits.min(u32::MAX - 1), window_seconds })
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_off() { write!(f, "off") } else { write!(f, "{}/{}s", self.hits, self.window_seconds) }
    }
}

/// Every request rate limit, and the limits on what an unpaid checkout may
/// hold. The defaults suit a public installation; tests and benchmarks
/// lower or lift them.
#[derive(Clone, Debug)]
pub struct RateLimits {
    /// Signups from one client IP.
    pub signup_per_ip: Limit,
    /// Checkouts from one client IP.
    pub checkout_per_ip: Limit,
    /// Checkouts for one customer email at one brand.
    pub checkout_per_email: Limit,
    /// Unpaid open orders one customer email may hold at one brand.
    pub unpaid_orders_per_email: u32,
    /// Units one unpaid order may hold (the sum of its lines).
    pub max_units_per_order: i64,
    /// Attachment uploads by one caller (user, API key or order token).
    pub uploads_per_caller: Limit,
    /// Message searches by one caller.
    pub searches_per_caller: Limit,
    /// Messages posted by one caller.
    pub messages_per_caller: Limit,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            signup_per_ip: Limit::per(10, 3_600),
            checkout_per_ip: Limit::per(20, 600),
            checkout_per_email: Limit::per(10, 3_600),
            unpaid_orders_per_email: 5,
            max_units_per_order: 100,
            uploads_per_caller: Limit::per(60, 600),
            searches_per_caller: Limit::per(120, 60),
            messages_per_caller: Limit::per(60, 60),
        }
    }
}

impl RateLimits {
    /// No request limits and no hold limits: for load tests and for tests
    /// of something else than abuse.
    pub fn unlimited() -> Self {
        Self {
            signup_per_ip: Limit::OFF,
            checkout_per_ip: Limit::OFF,
            checkout_per_email: Limit::OFF,
            unpaid_orders_per_email: u32::MAX,
            max_units_per_order: i64::MAX,
            uploads_per_caller: Limit::OFF,
            searches_per_caller: Limit::OFF,
            messages_per_caller: Limit::OFF,
        }
    }
}

/// Password reset emails one account gets: 5 an hour.
pub const PASSWORD_RESETS_PER_ACCOUNT: Limit = Limit::per(5, 3600);

/// What is being limited; each bucket counts its own keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bucket {
    /// Login attempts from one IP (every attempt).
    LoginFromIp,
    /// Failed logins of one account (from anywhere).
    LoginFailures,
    /// Failed logins of one account from one IP.
    LoginFailuresFromIp,
    /// Signups from one IP.
    Signup,
    /// Checkouts from one IP.
    CheckoutFromIp,
    /// Checkouts for one customer email at one brand.
    CheckoutForEmail,
    /// Uploads by one caller.
    Upload,
    /// Searches by one caller.
    Search,
    /// Message posts by one caller.
    MessagePost,
    /// The shop's order lookup, per IP: with the login's limit, as both
    /// let an address guess.
    OrderLookupFromIp,
    /// Password reset requests from one IP, with the login's limit.
    PasswordResetFromIp,
    /// Password reset emails to one account: [`PASSWORD_RESETS_PER_ACCOUNT`],
    /// so nobody can fill someone's inbox.
    PasswordResetForAccount,
}

impl Bucket {
    fn name(self) -> &'static str {
        match self {
            Bucket::LoginFromIp => "login_ip",
            Bucket::LoginFailures => "login_failed",
            Bucket::LoginFailuresFromIp => "login_failed_ip",
            Bucket::Signup => "signup_ip",
            Bucket::CheckoutFromIp => "checkout_ip",
            Bucket::CheckoutForEmail => "checkout_email",
            Bucket::Upload => "upload",
            Bucket::Search => "search",
            Bucket::MessagePost => "message_post",
            Bucket::OrderLookupFromIp => "order_lookup_ip",
            Bucket::PasswordResetFromIp => "password_reset_ip",
            Bucket::PasswordResetForAccount => "password_reset_account",
        }
    }
}

/// Counts requests per bucket and key in the database.
pub struct RateLimiter {
    db: Db,
    limits: RateLimits,
    login_per_ip: Limit,
    login_failures_per_account: Limit,
}

impl RateLimiter {
    /// A limiter over `db` with these limits; logins from one IP and failed
    /// logins of one account are limited per minute.
    pub fn new(db: Db, limits: RateLimits, login_per_ip_per_minute: u32, login_failures_per_minute: u32) -> Self {
        Self {
            db,
            limits,
            login_per_ip: Limit::per(login_per_ip_per_minute.max(1), 60),
            login_failures_per_account: Limit::per(login_failures_per_minute.max(1), 60),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &RateLimits {
        &self.limits
    }

    fn limit(&self, bucket: Bucket) -> Limit {
        let limits = &self.limits;
        match bucket {
            Bucket::LoginFromIp | Bucket::OrderLookupFromIp | Bucket::PasswordResetFromIp => self.login_per_ip,
            Bucket::LoginFailures | Bucket::LoginFailuresFromIp => self.login_failures_per_account,
            Bucket::PasswordResetForAccount => PASSWORD_RESETS_PER_ACCOUNT,
            Bucket::Signup => limits.signup_per_ip,
            Bucket::CheckoutFromIp => limits.checkout_per_ip,
            Bucket::CheckoutForEmail => limits.checkout_per_email,
            Bucket::Upload => limits.uploads_per_caller,
            Bucket::Search => limits.searches_per_caller,
            Bucket::MessagePost => limits.messages_per_caller,
        }
    }

    /// Counts one request of `key` in `bucket`; 429 `rate_limited` (with
    /// the seconds until the window ends) once the limit is spent. A refused
    /// request counts too, so hammering does not shorten the wait.
    pub async fn check(&self, bucket: Bucket, key: &str) -> AppResult<()> {
        let limit = self.limit(bucket);
        if limit.is_off() {
            return Ok(());
        }
        let now = Timestamp::now();
        let window = Window::containing(now, limit.window_seconds);
        let hits = rate_limits::hit(&self.db, &counter_key(bucket, key), window).await?;
        if hits > i64::from(limit.hits) {
            return Err(AppError::RateLimited { retry_after_seconds: window.seconds_left(now) });
        }
        Ok(())
    }

    /// Whether a login attempt for `account` from `ip` may go ahead.
    ///
    /// Every attempt counts against its IP. An account's budget counts only
    /// FAILED attempts, and once it is spent only addresses that have not
    /// failed for this account in the window may still try: an attacker
    /// guessing from its own addresses is stopped, while the owner, from an
    /// address with no failures, still logs in with the right password
    /// (locking the owner out was the attacker's win). A distributed
    /// attacker thus gets at most one more guess per address per window,
    /// each also spent from that address's own budget.
    pub async fn check_login(&self, ip: IpAddr, account: &str) -> AppResult<()> {
        self.check(Bucket::LoginFromIp, &ip_key(ip)).await?;
        let limit = self.login_failures_per_account;
        let now = Timestamp::now();
        let window = Window::containing(now, limit.window_seconds);
        let failures = rate_limits::count(&self.db, &counter_key(Bucket::LoginFailures, account), window).await?;
        if failures >= i64::from(limit.hits) {
            let pair = login_pair_key(ip, account);
            let failures_from_here =
                rate_limits::count(&self.db, &counter_key(Bucket::LoginFailuresFromIp, &pair), window).await?;
            if failures_from_here > 0 {
                return Err(AppError::RateLimited { retry_after_seconds: window.seconds_left(now) });
            }
        }
        Ok(())
    }

    /// Records a failed login of `account` from `ip`.
    pub async fn record_login_failure(&self, ip: IpAddr, account: &str) -> AppResult<()> {
        let window = Window::containing(Timestamp::now(), self.login_failures_per_account.window_seconds);
        rate_limits::hit(&self.db, &counter_key(Bucket::LoginFailures, account), window).await?;
        let pair = login_pair_key(ip, account);
        rate_limits::hit(&self.db, &counter_key(Bucket::LoginFailuresFromIp, &pair), window).await?;
        Ok(())
    }
}

fn counter_key(bucket: Bucket, key: &str) -> String {
    format!("{}:{key}", bucket.name())
}

fn login_pair_key(ip: IpAddr, account: &str) -> String {
    format!("{}|{account}", ip_key(ip))
}

/// The key of a client address. An IPv6 client usually holds a whole /64,
/// so its addresses count together; an IPv4 address is its own key.
pub fn ip_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// The key of an authenticated caller: its user, API key or order.
pub fn caller_key(caller: &Caller) -> String {
    match caller.scope().principal() {
        consign_db::Principal::User { user_id, .. } => format!("user:{user_id}"),
        consign_db::Principal::ApiKey { key_id } => format!("key:{key_id}"),
        consign_db::Principal::Customer { order_id } => format!("order:{order_id}"),
        consign_db::Principal::System => "system".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_read_as_the_command_line_writes_them() {
        assert_eq!("30/1m".parse::<Limit>(), Ok(Limit::per(30, 60)));
        assert_eq!("10/h".parse::<Limit>(), Ok(Limit::per(10, 3_600)));
        assert_eq!("5/90".parse::<Limit>(), Ok(Limit::per(5, 90)));
        assert_eq!("off".parse::<Limit>(), Ok(Limit::OFF));
        assert!("ten/1m".parse::<Limit>().is_err());
        assert!("10/0s".parse::<Limit>().is_err());
        assert!("10".parse::<Limit>().is_err());
    }

    #[test]
    fn an_ipv6_client_counts_by_its_64_prefix() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(ip_key(a), ip_key(b));
        assert_eq!(ip_key("::ffff:10.0.0.1".parse().unwrap()), "10.0.0.1");
    }
}
