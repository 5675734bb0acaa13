//! Authentication: passwords, access tokens, refresh tokens, API keys, the
//! middleware that turns a bearer token into a [`Caller`](crate::extract::Caller),
//! and the login rate limiter.

pub mod middleware;
pub mod password;
pub mod rate_limit;
pub mod tokens;
