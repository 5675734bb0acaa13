//! Timestamps. Stored as microseconds since the Unix epoch (the same integer
//! on SQLite and PostgreSQL, so ordering and range filters behave alike) and
//! shown to clients as RFC 3339 in UTC.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Serialize, Serializer};

/// A point in time, UTC, microsecond precision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, utoipa::ToSchema)]
#[schema(value_type = String, format = DateTime)]
pub struct Timestamp(i64);

/// The error for an integer outside chrono's range.
#[derive(Debug, thiserror::Error)]
#[error("timestamp out of range")]
pub struct TimestampOutOfRange;

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        Self(Utc::now().timestamp_micros())
    }

    /// From microseconds since the epoch.
    pub fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    /// Microseconds since the epoch, as stored.
    pub fn as_micros(self) -> i64 {
        self.0
    }

    /// This time plus some seconds.
    pub fn plus_seconds(self, seconds: i64) -> Self {
        Self(self.0.saturating_add(seconds.saturating_mul(1_000_000)))
    }

    /// Whole seconds since the epoch.
    pub fn as_unix_seconds(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }

    /// As a chrono value.
    pub fn to_datetime(self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.0).unwrap_or_default()
    }

    /// Parses RFC 3339.
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        DateTime::parse_from_rfc3339(text).ok().map(|t| Self(t.with_timezone(&Utc).timestamp_micros()))
    }
}

impl From<i64> for Timestamp {
    fn from(micros: i64) -> Self {
        Self(micros)
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_datetime().to_rfc3339_opts(SecondsFormat::Micros, true))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_as_rfc3339_utc() {
        let t = Timestamp::from_micros(1_700_000_000_123_456);
        assert_eq!(t.to_string(), "2023-11-14T22:13:20.123456Z");
        assert_eq!(Timestamp::parse_rfc3339(&t.to_string()), Some(t));
    }
}
