//! A ready-made [`AuditEvent`] for examples, tests and benchmarks.

use uuid::Uuid;

use super::AuditEvent;

impl AuditEvent {
    /// A plausible event: a fresh UUID v7 id, now, an anonymous
    /// `GET /health` answered 200. Change the fields you care about.
    ///
    /// ```
    /// let event = oms_core::audit::AuditEvent::example();
    /// assert_eq!(event.status, 200);
    /// assert_ne!(event.id, oms_core::audit::AuditEvent::example().id);
    /// ```
    pub fn example() -> Self {
        AuditEvent {
            id: Uuid::now_v7(),
            at_ms: chrono::Utc::now().timestamp_millis(),
            request_id: Uuid::now_v7().simple().to_string(),
            actor: "anonymous".to_owned(),
            method: "GET".to_owned(),
            route: "/health".to_owned(),
            path: "/health".to_owned(),
            status: 200,
            duration_us: 150,
            db_us: 40,
            client_ip: "127.0.0.1".to_owned(),
            user_agent: "curl/8.5.0".to_owned(),
            request_bytes: 0,
            response_bytes: 64,
        }
    }
}
