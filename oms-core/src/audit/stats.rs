//! [`AuditStats`]: the audit pipeline's counters, and the small latency
//! reservoir behind `flush_p99_ms`.

use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

/// A point-in-time view of an [`AuditPipeline`](super::AuditPipeline), as
/// `GET /debug/performance` shows it under `audit`.
///
/// Event counters are totals since start. With several sinks, `written`,
/// `spilled` and `replayed` count deliveries (one per event and sink); the
/// per-sink figures are in [`sinks`](Self::sinks).
///
/// ```
/// let stats = oms_core::audit::AuditStats::default();
/// let json = serde_json::to_value(&stats).unwrap();
/// assert_eq!(json["enqueued"], 0);
/// assert_eq!(json["flush_p99_ms"], 0.0);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AuditStats {
    /// Events accepted into the queue.
    pub enqueued: u64,
    /// Events stored by a sink (written directly or replayed from a spill
    /// file), counted once per sink.
    pub written: u64,
    /// Events refused: queue full with `on_full = "drop"`, or recorded
    /// after shutdown began.
    pub dropped: u64,
    /// Failed `write_batch` calls (every attempt counts, replays included).
    pub failed: u64,
    /// Events appended to a spill file, counted once per sink.
    pub spilled: u64,
    /// Events replayed from a spill file into their sink (also in
    /// `written`).
    pub replayed: u64,
    /// Events lost because, during shutdown, neither the sink nor the spill
    /// file would take them. Zero unless the spill directory is unwritable.
    pub lost: u64,
    /// Events in the queue right now.
    pub queue_depth: usize,
    /// The queue's capacity (`audit.queue_capacity`).
    pub capacity: usize,
    /// Batches taken from the queue.
    pub batches: u64,
    /// Mean events per batch.
    pub batch_size_avg: f64,
    /// Largest batch so far.
    pub batch_size_max: u64,
    /// Median time to deliver a batch to every sink (retries and spilling
    /// included), over the latest batches, in milliseconds.
    pub flush_p50_ms: f64,
    /// 99th percentile of the same.
    pub flush_p99_ms: f64,
    /// Per-sink figures, in configuration order.
    pub sinks: Vec<SinkStats>,
}

/// One sink's share of [`AuditStats`].
///
/// ```
/// let s = oms_core::audit::SinkStats { name: "database".into(), healthy: true, ..Default::default() };
/// assert_eq!(serde_json::to_value(&s).unwrap()["name"], "database");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SinkStats {
    /// The sink's plugin name.
    pub name: String,
    /// False while batches go to its spill file (after a failure, until
    /// the spill file has been replayed).
    pub healthy: bool,
    /// Events it stored.
    pub written: u64,
    /// Its failed `write_batch` calls.
    pub failed: u64,
    /// Events appended to its spill file.
    pub spilled: u64,
    /// Events replayed from its spill file.
    pub replayed: u64,
    /// Unreadable lines skipped while replaying its spill file (a line torn
    /// by a crash mid-append).
    pub corrupt_lines: u64,
}

/// How many of the latest flush durations are kept.
const RESERVOIR: usize = 1024;

/// The latest [`RESERVOIR`] flush durations in microseconds, a ring.
/// Written by the workers once per batch, never on the request path.
#[derive(Debug)]
pub(crate) struct LatencyRing {
    inner: Mutex<Ring>,
}

#[derive(Debug)]
struct Ring {
    samples: Vec<u32>,
    next: usize,
}

impl Default for LatencyRing {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Ring {
                samples: Vec::with_capacity(RESERVOIR),
                next: 0,
            }),
        }
    }
}

impl LatencyRing {
    /// Adds one sample.
    pub(crate) fn record(&self, elapsed: Duration) {
        let micros = u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX);
        let mut ring = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if ring.samples.len() < RESERVOIR {
            ring.samples.push(micros);
        } else {
            let at = ring.next;
            ring.samples[at] = micros;
        }
        ring.next = (ring.next + 1) % RESERVOIR;
    }

    /// The `q` quantiles (0.0..=1.0) of the kept samples, in milliseconds;
    /// zeros when there are none.
    pub(crate) fn quantiles_ms<const N: usize>(&self, q: [f64; N]) -> [f64; N] {
        let mut samples = {
            let ring = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            ring.samples.clone()
        };
        let mut out = [0.0; N];
        if samples.is_empty() {
            return out;
        }
        samples.sort_unstable();
        for (slot, q) in out.iter_mut().zip(q) {
            let rank = (q * samples.len() as f64).ceil() as usize;
            let idx = rank.clamp(1, samples.len()) - 1;
            *slot = f64::from(samples[idx]) / 1000.0;
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_of_a_ring() {
        let ring = LatencyRing::default();
        assert_eq!(ring.quantiles_ms([0.5, 0.99]), [0.0, 0.0]);
        for ms in 1..=100 {
            ring.record(Duration::from_millis(ms));
        }
        assert_eq!(ring.quantiles_ms([0.5, 0.99]), [50.0, 99.0]);
        // Old samples fall out once the ring is full.
        for _ in 0..RESERVOIR {
            ring.record(Duration::from_millis(7));
        }
        assert_eq!(ring.quantiles_ms([0.99]), [7.0]);
    }
}
