//! The audit record of one request.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One request as the audit log keeps it. Never holds bodies, the
/// `Authorization` header or query strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Unique, time-ordered (UUID v7).
    pub id: Uuid,
    /// When the request arrived, milliseconds since the Unix epoch (UTC).
    pub at_ms: i64,
    /// The request's `X-Request-Id`.
    pub request_id: String,
    /// The caller's token name, or `anonymous`.
    pub actor: String,
    /// HTTP method.
    pub method: String,
    /// Route template, e.g. `/v1/orders/{id}` (`<unmatched>` for 404s).
    pub route: String,
    /// Request path without the query string.
    pub path: String,
    /// Response status code.
    pub status: u16,
    /// Time spent handling the request, microseconds.
    pub duration_us: u64,
    /// Time spent in the database, microseconds.
    pub db_us: u64,
    /// The peer address's IP.
    pub client_ip: String,
    /// `User-Agent`, truncated to 256 bytes.
    pub user_agent: String,
    /// Request body size in bytes (as declared or read).
    pub request_bytes: u64,
    /// Response body size in bytes.
    pub response_bytes: u64,
}
