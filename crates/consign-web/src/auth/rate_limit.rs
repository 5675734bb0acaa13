//! Login attempts are limited per client IP and per account, so neither one
//! address nor a botnet aimed at one account can guess passwords quickly.
//! The limits are per instance (in memory).

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Keyed limiters for login.
pub struct LoginLimiter {
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    per_account: DefaultKeyedRateLimiter<String>,
}

impl LoginLimiter {
    /// `per_minute` attempts per IP and per account, with that much burst.
    pub fn new(per_ip_per_minute: u32, per_account_per_minute: u32) -> Self {
        let quota = |n: u32| Quota::per_minute(NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN));
        Self {
            per_ip: RateLimiter::keyed(quota(per_ip_per_minute)),
            per_account: RateLimiter::keyed(quota(per_account_per_minute)),
        }
    }

    /// `Ok` if an attempt may go ahead, else the seconds to wait.
    pub fn check(&self, ip: Option<IpAddr>, account: &str) -> Result<(), u64> {
        let clock = DefaultClock::default();
        let wait = |not_until: governor::NotUntil<_>| not_until.wait_time_from(clock.now()).as_secs().max(1);
        if let Some(ip) = ip {
            self.per_ip.check_key(&ip).map_err(wait)?;
        }
        self.per_account.check_key(&account.to_owned()).map_err(wait)?;
        Ok(())
    }

    /// Forgets keys that are back to full capacity (bounded memory).
    pub fn shrink(&self) {
        self.per_ip.retain_recent();
        self.per_account.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_account_limit_holds_across_addresses() {
        let limiter = LoginLimiter::new(100, 3);
        for i in 0..3 {
            assert!(limiter.check(Some(IpAddr::from([10, 0, 0, i])), "a@example.com").is_ok());
        }
        let wait = limiter.check(Some(IpAddr::from([10, 0, 0, 9])), "a@example.com").unwrap_err();
        assert!(wait >= 1);
        assert!(limiter.check(Some(IpAddr::from([10, 0, 0, 9])), "b@example.com").is_ok());
    }
}
