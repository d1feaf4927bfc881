//! The slow-request log: requests over `metrics.slow_request_ms`, logged at
//! WARN and kept in a bounded ring for `/debug/performance`.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde::Serialize;

/// One slow request.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SlowRequest {
    /// When it arrived (RFC 3339, ms).
    pub at: String,
    /// HTTP method.
    pub method: String,
    /// Route template.
    pub route: String,
    /// Response status.
    pub status: u16,
    /// Total time, ms.
    pub duration_ms: f64,
    /// Database time, ms.
    pub db_ms: f64,
    /// The request id.
    pub request_id: String,
}

/// A bounded ring of the latest slow requests. Only slow requests touch
/// its lock, so it costs nothing on the normal path.
#[derive(Debug)]
pub struct SlowLog {
    capacity: usize,
    ring: Mutex<VecDeque<SlowRequest>>,
}

impl SlowLog {
    /// A ring keeping the latest `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            ring: Mutex::new(VecDeque::with_capacity(capacity.min(1024))),
        }
    }

    /// Adds an entry, evicting the oldest when full.
    pub fn push(&self, entry: SlowRequest) {
        if self.capacity == 0 {
            return;
        }
        let mut ring = self
            .ring
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if ring.len() == self.capacity {
            ring.pop_front();
        }
        ring.push_back(entry);
    }

    /// The entries, newest first.
    pub fn latest(&self) -> Vec<SlowRequest> {
        let ring = self
            .ring
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        ring.iter().rev().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u16) -> SlowRequest {
        SlowRequest {
            at: String::new(),
            method: "GET".into(),
            route: "/x".into(),
            status: n,
            duration_ms: 1.0,
            db_ms: 0.0,
            request_id: n.to_string(),
        }
    }

    #[test]
    fn keeps_the_latest_newest_first() {
        let log = SlowLog::new(2);
        for n in 1..=3 {
            log.push(entry(n));
        }
        let statuses: Vec<_> = log.latest().iter().map(|e| e.status).collect();
        assert_eq!(statuses, vec![3, 2]);
    }
}
