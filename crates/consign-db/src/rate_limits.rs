//! Rate-limit counters in the database, so every instance sharing it
//! counts against the same limit: fixed windows, one row per key and
//! window, bumped by a single upsert that answers the new count.
//!
//! A fixed window lets a client spend up to twice the limit across a window
//! boundary; that is the price of one statement per check, and limits here
//! are about orders of magnitude (ten, not a thousand), not exact budgets.

use consign_domain::{BrandId, Timestamp};

use crate::{Db, DbResult};

/// One window of a counter: where it starts and when it ends (both in
/// microseconds since the epoch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Start of the window.
    pub start: i64,
    /// End of the window (exclusive).
    pub end: i64,
}

impl Window {
    /// The fixed window of `seconds` that contains `now`.
    pub fn containing(now: Timestamp, seconds: u32) -> Self {
        let length = i64::from(seconds.max(1)) * 1_000_000;
        let start = now.as_micros() - now.as_micros().rem_euclid(length);
        Self { start, end: start + length }
    }

    /// Whole seconds from `now` until the window ends, at least one.
    pub fn seconds_left(&self, now: Timestamp) -> u64 {
        let micros = (self.end - now.as_micros()).max(0);
        u64::try_from((micros + 999_999) / 1_000_000).unwrap_or(1).max(1)
    }
}

/// Adds one hit to `key` in `window` and answers the count including it.
pub async fn hit(db: &Db, key: &str, window: Window) -> DbResult<i64> {
    db.write_one(
        "INSERT INTO rate_limits (key, window_start, hits, expires_at) VALUES ($1, $2, 1, $3)
         ON CONFLICT (key, window_start) DO UPDATE SET hits = rate_limits.hits + 1
         RETURNING hits",
    )
    .bind(key.to_owned())
    .bind(window.start)
    .bind(window.end)
    .scalar()
    .await
}

/// The hits of `key` in `window` so far, without adding one.
pub async fn count(db: &Db, key: &str, window: Window) -> DbResult<i64> {
    let hits: Option<i64> = db
        .read("SELECT hits FROM rate_limits WHERE key = $1 AND window_start = $2")
        .bind(key.to_owned())
        .bind(window.start)
        .scalar_optional()
        .await?;
    Ok(hits.unwrap_or(0))
}

/// What one customer email holds at a brand: its open unpaid orders (each
/// holding stock) and when the first of those holds runs out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnpaidHolds {
    /// Open unpaid orders.
    pub orders: i64,
    /// The earliest `reservation_expires_at` among them.
    pub first_expiry: Option<Timestamp>,
}

/// The open unpaid orders of `email` at `brand_id` (checkout limits them
/// per customer, so one buyer cannot hold a whole drop).
pub async fn unpaid_holds(db: &Db, brand_id: BrandId, email: &str) -> DbResult<UnpaidHolds> {
    let (orders, first_expiry): (i64, Option<Timestamp>) = db
        .read(
            "SELECT COUNT(*), MIN(reservation_expires_at) FROM orders
              WHERE brand_id = $1 AND customer_email = $2 AND status = 'open' AND payment_status = 'unpaid'",
        )
        .bind(brand_id)
        .bind(email.to_owned())
        .fetch_one()
        .await?;
    Ok(UnpaidHolds { orders, first_expiry })
}

/// Deletes the counters of windows that ended before `now`.
pub async fn purge_expired(db: &Db, now: Timestamp) -> DbResult<u64> {
    let mut tx = db.begin().await?;
    let deleted = tx.query("DELETE FROM rate_limits WHERE expires_at <= $1").bind(now.as_micros()).execute().await?;
    tx.commit().await?;
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_contains_its_instant_and_counts_down_to_its_end() {
        let now = Timestamp::from_micros(125_500_000);
        let window = Window::containing(now, 60);
        assert_eq!(window, Window { start: 120_000_000, end: 180_000_000 });
        assert_eq!(window.seconds_left(now), 55);
        assert_eq!(window.seconds_left(Timestamp::from_micros(179_999_999)), 1);
    }
}
