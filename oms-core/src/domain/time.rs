//! Timestamps: stored as epoch milliseconds, served as RFC 3339 UTC with
//! milliseconds (`2026-11-28T14:00:00.123Z`).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serializer;

/// Now, in milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// Epoch milliseconds as a UTC timestamp (the epoch itself if out of range).
pub(crate) fn from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// Formats `at` as the API does: `2026-11-28T14:00:00.123Z`.
pub fn format_timestamp(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// serde `serialize_with` for API timestamps.
pub(crate) fn serialize<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_timestamp(at))
}
