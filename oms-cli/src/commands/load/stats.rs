//! Measurement: HDR histograms (microseconds) per worker, merged at the
//! end; a per-second series and live counters shared with the progress bar.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Deserialize;

use super::client::{Failure, Reply};
use super::results::{Latency, OpResult, Quantile, SecondPoint};
use super::scenario::Op;

/// The largest latency tracked (one hour); larger values are clamped.
const MAX_US: u64 = 3_600_000_000;
/// Significant figures: 3 for the run's histograms, 2 for each second's.
const FULL_SIGFIG: u8 = 3;
const SERIES_SIGFIG: u8 = 2;
/// Live counters are published every this many requests per worker (a
/// relaxed atomic add: cheap enough to do every time, and the progress bar
/// stays exact at low rates).
const PUBLISH_EVERY: u64 = 1;

/// An empty histogram that grows to the largest value recorded, so that a
/// worker whose latencies stay in milliseconds holds tens of kilobytes,
/// not the couple of hundred a fixed one-hour range takes (it matters with
/// thousands of users).
fn histogram(sigfig: u8) -> Histogram<u64> {
    let mut h =
        Histogram::new_with_bounds(1, 2, sigfig).expect("constant histogram bounds are valid");
    h.auto(true);
    h
}

/// Records `us`, clamped to the tracked range.
fn record(h: &mut Histogram<u64>, us: u64) {
    // Growing to MAX_US always fits in memory, so this cannot fail; were
    // it to, losing one value is better than stopping the run.
    let _ = h.record(us.min(MAX_US));
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// One operation's figures in one worker.
struct OpStats {
    requests: u64,
    errors: u64,
    latency: Histogram<u64>,
}

/// The second being filled by a worker.
struct SecondAcc {
    index: u64,
    requests: u64,
    errors: u64,
    latency: Histogram<u64>,
}

#[derive(Deserialize)]
struct ProblemCode<'a> {
    #[serde(borrow)]
    code: Option<Cow<'a, str>>,
}

/// What one worker measured.
pub(crate) struct WorkerStats {
    ops: [Option<Box<OpStats>>; Op::COUNT],
    server: Histogram<u64>,
    db: Histogram<u64>,
    statuses: Vec<u64>,
    codes: HashMap<String, u64>,
    transport: [u64; Failure::ALL.len()],
    lag: Option<Histogram<u64>>,
    late: u64,
    late_after_us: u64,
    bytes: u64,
    warmup: u64,
    second: SecondAcc,
    /// Completions after this second count in it (the end of a timed run).
    last_second: Option<u64>,
    /// The latest completion, since the measured phase started.
    last_done: Duration,
    unpublished: u64,
    unpublished_errors: u64,
}

impl WorkerStats {
    /// Empty. `open_loop` adds the schedule-lag histogram.
    pub(crate) fn new(open_loop: bool, late_after: Duration, last_second: Option<u64>) -> Self {
        Self {
            ops: std::array::from_fn(|_| None),
            server: histogram(FULL_SIGFIG),
            db: histogram(FULL_SIGFIG),
            statuses: vec![0; 600],
            codes: HashMap::new(),
            transport: [0; Failure::ALL.len()],
            lag: open_loop.then(|| histogram(FULL_SIGFIG)),
            late: 0,
            late_after_us: micros(late_after),
            bytes: 0,
            warmup: 0,
            second: SecondAcc {
                index: 0,
                requests: 0,
                errors: 0,
                latency: histogram(SERIES_SIGFIG),
            },
            last_second,
            last_done: Duration::ZERO,
            unpublished: 0,
            unpublished_errors: 0,
        }
    }

    /// Counts a warmup request (nothing else is kept of it).
    pub(crate) fn warmup(&mut self) {
        self.warmup += 1;
    }

    /// Records one measured request. `latency` is from its send time
    /// (closed loop) or its scheduled time (open loop); `done` is its
    /// completion, since the measured phase started.
    pub(crate) fn record(
        &mut self,
        live: &Live,
        op: Op,
        latency: Duration,
        done: Duration,
        result: &Result<Reply, Failure>,
    ) {
        let us = micros(latency);
        let stats = self.ops[op.index()].get_or_insert_with(|| {
            Box::new(OpStats {
                requests: 0,
                errors: 0,
                latency: histogram(FULL_SIGFIG),
            })
        });
        stats.requests += 1;
        let error = match result {
            Ok(reply) => {
                record(&mut stats.latency, us);
                self.statuses[usize::from(reply.status.min(599))] += 1;
                if let Some(s) = reply.server_us {
                    record(&mut self.server, s);
                }
                if let Some(d) = reply.db_us {
                    record(&mut self.db, d);
                }
                self.bytes += reply.bytes;
                if reply.status >= 400 {
                    let code = reply
                        .body
                        .as_deref()
                        .and_then(|b| serde_json::from_slice::<ProblemCode<'_>>(b).ok())
                        .and_then(|p| p.code);
                    let code = code.as_deref().unwrap_or("(no code)");
                    match self.codes.get_mut(code) {
                        Some(n) => *n += 1,
                        None => {
                            self.codes.insert(code.to_owned(), 1);
                        }
                    }
                    true
                } else {
                    false
                }
            }
            Err(failure) => {
                self.transport[failure.index()] += 1;
                true
            }
        };
        if error {
            stats.errors += 1;
        }

        let mut second = done.as_secs();
        if let Some(last) = self.last_second {
            second = second.min(last);
        }
        if second != self.second.index {
            self.flush_second(live);
            self.second.index = second;
        }
        self.second.requests += 1;
        if error {
            self.second.errors += 1;
            self.unpublished_errors += 1;
        }
        if result.is_ok() {
            record(&mut self.second.latency, us);
        }
        self.last_done = self.last_done.max(done);
        self.unpublished += 1;
        if self.unpublished >= PUBLISH_EVERY {
            self.publish(live);
        }
    }

    /// Records how late an open-loop request was sent.
    pub(crate) fn record_lag(&mut self, lag: Duration) {
        let us = micros(lag);
        if let Some(h) = self.lag.as_mut() {
            record(h, us);
        }
        if us > self.late_after_us {
            self.late += 1;
        }
    }

    fn publish(&mut self, live: &Live) {
        live.completed
            .fetch_add(self.unpublished, Ordering::Relaxed);
        live.errors
            .fetch_add(self.unpublished_errors, Ordering::Relaxed);
        self.unpublished = 0;
        self.unpublished_errors = 0;
    }

    fn flush_second(&mut self, live: &Live) {
        if self.second.requests > 0 {
            live.absorb(&self.second);
            self.second.requests = 0;
            self.second.errors = 0;
            self.second.latency.reset();
        }
        self.publish(live);
    }

    /// Publishes what is pending; call once the worker is done.
    pub(crate) fn finish(mut self, live: &Live) -> Self {
        self.flush_second(live);
        self
    }
}

#[derive(Default)]
struct SecondAgg {
    requests: u64,
    errors: u64,
    latency: Option<Histogram<u64>>,
}

#[derive(Default)]
struct Collector {
    seconds: Vec<SecondAgg>,
    so_far: Option<Histogram<u64>>,
}

/// Shared by the workers and the progress bar.
#[derive(Default)]
pub(crate) struct Live {
    /// Measured requests finished so far.
    pub(crate) completed: AtomicU64,
    /// Of which errors.
    pub(crate) errors: AtomicU64,
    collector: Mutex<Collector>,
}

impl Live {
    fn absorb(&self, acc: &SecondAcc) {
        let Ok(mut c) = self.collector.lock() else {
            return;
        };
        let index = usize::try_from(acc.index)
            .unwrap_or(usize::MAX)
            .min(1 << 24);
        if c.seconds.len() <= index {
            c.seconds.resize_with(index + 1, SecondAgg::default);
        }
        let agg = &mut c.seconds[index];
        agg.requests += acc.requests;
        agg.errors += acc.errors;
        let _ = agg
            .latency
            .get_or_insert_with(|| histogram(SERIES_SIGFIG))
            .add(&acc.latency);
        let _ = c
            .so_far
            .get_or_insert_with(|| histogram(SERIES_SIGFIG))
            .add(&acc.latency);
    }

    /// p99 of the seconds flushed so far, in microseconds.
    pub(crate) fn p99_so_far(&self) -> Option<u64> {
        let c = self.collector.lock().ok()?;
        let h = c.so_far.as_ref()?;
        (!h.is_empty()).then(|| h.value_at_quantile(0.99))
    }

    /// The per-second series: every second from 0 to the last, empty ones
    /// included (a stalled server shows as zeros). `elapsed` is the measured
    /// time; it sizes the last, partial second.
    pub(crate) fn series(&self, elapsed: Duration, min_len: usize) -> Vec<SecondPoint> {
        let Ok(c) = self.collector.lock() else {
            return Vec::new();
        };
        let len = c.seconds.len().max(min_len);
        let elapsed = elapsed.as_secs_f64();
        (0..len)
            .map(|i| {
                let agg = c.seconds.get(i);
                let requests = agg.map_or(0, |a| a.requests);
                let span = (elapsed - i as f64).clamp(1e-3, 1.0);
                let span = if i + 1 == len && min_len < len {
                    span
                } else {
                    1.0
                };
                let q = |p: f64| {
                    agg.and_then(|a| a.latency.as_ref())
                        .filter(|h| !h.is_empty())
                        .map_or(0, |h| h.value_at_quantile(p))
                };
                SecondPoint {
                    second: i as u64,
                    requests,
                    errors: agg.map_or(0, |a| a.errors),
                    rps: requests as f64 / span,
                    p50_us: q(0.5),
                    p90_us: q(0.9),
                    p99_us: q(0.99),
                    max_us: q(1.0),
                }
            })
            .collect()
    }
}

/// The workers' figures, merged.
pub(crate) struct Merged {
    pub(crate) latency: Histogram<u64>,
    pub(crate) ops: Vec<(Op, u64, u64, Histogram<u64>)>,
    pub(crate) server: Histogram<u64>,
    pub(crate) db: Histogram<u64>,
    pub(crate) lag: Option<Histogram<u64>>,
    pub(crate) late: u64,
    pub(crate) statuses: BTreeMap<String, u64>,
    pub(crate) codes: BTreeMap<String, u64>,
    pub(crate) transport: BTreeMap<String, u64>,
    pub(crate) requests: u64,
    pub(crate) http_errors: u64,
    pub(crate) transport_errors: u64,
    pub(crate) bytes: u64,
    pub(crate) warmup: u64,
    pub(crate) last_done: Duration,
}

/// Merges every worker's histograms and counts.
pub(crate) fn merge(workers: Vec<WorkerStats>) -> Merged {
    let mut m = Merged {
        latency: histogram(FULL_SIGFIG),
        ops: Vec::new(),
        server: histogram(FULL_SIGFIG),
        db: histogram(FULL_SIGFIG),
        lag: None,
        late: 0,
        statuses: BTreeMap::new(),
        codes: BTreeMap::new(),
        transport: BTreeMap::new(),
        requests: 0,
        http_errors: 0,
        transport_errors: 0,
        bytes: 0,
        warmup: 0,
        last_done: Duration::ZERO,
    };
    let mut ops: [Option<(u64, u64, Histogram<u64>)>; Op::COUNT] = std::array::from_fn(|_| None);
    let mut statuses = vec![0u64; 600];
    let mut transport = [0u64; Failure::ALL.len()];
    for w in workers {
        for (slot, stats) in ops.iter_mut().zip(w.ops) {
            let Some(stats) = stats else { continue };
            let (requests, errors, h) = slot.get_or_insert_with(|| (0, 0, histogram(FULL_SIGFIG)));
            *requests += stats.requests;
            *errors += stats.errors;
            let _ = h.add(&stats.latency);
        }
        let _ = m.server.add(&w.server);
        let _ = m.db.add(&w.db);
        if let Some(lag) = &w.lag {
            let _ = m.lag.get_or_insert_with(|| histogram(FULL_SIGFIG)).add(lag);
        }
        m.late += w.late;
        for (total, n) in statuses.iter_mut().zip(&w.statuses) {
            *total += n;
        }
        for (code, n) in w.codes {
            *m.codes.entry(code).or_default() += n;
        }
        for (total, n) in transport.iter_mut().zip(w.transport) {
            *total += n;
        }
        m.bytes += w.bytes;
        m.warmup += w.warmup;
        m.last_done = m.last_done.max(w.last_done);
    }
    for (op, slot) in Op::ALL.into_iter().zip(ops) {
        if let Some((requests, errors, h)) = slot {
            let _ = m.latency.add(&h);
            m.requests += requests;
            m.ops.push((op, requests, errors, h));
        }
    }
    for (status, n) in statuses.into_iter().enumerate() {
        if n > 0 {
            m.statuses.insert(status.to_string(), n);
            if status >= 400 {
                m.http_errors += n;
            }
        }
    }
    for (kind, n) in Failure::ALL.into_iter().zip(transport) {
        if n > 0 {
            m.transport.insert(kind.name().to_owned(), n);
            m.transport_errors += n;
        }
    }
    m
}

/// A histogram's summary.
pub(crate) fn latency(h: &Histogram<u64>) -> Latency {
    if h.is_empty() {
        return Latency::default();
    }
    Latency {
        count: h.len(),
        min_us: h.min(),
        mean_us: h.mean(),
        stdev_us: h.stdev(),
        p50_us: h.value_at_quantile(0.5),
        p75_us: h.value_at_quantile(0.75),
        p90_us: h.value_at_quantile(0.9),
        p99_us: h.value_at_quantile(0.99),
        p999_us: h.value_at_quantile(0.999),
        p9999_us: h.value_at_quantile(0.9999),
        max_us: h.max(),
    }
}

/// The percentile spectrum: 0, then log-spaced towards 99.999, then 100.
pub(crate) fn distribution(h: &Histogram<u64>) -> Vec<Quantile> {
    if h.is_empty() {
        return Vec::new();
    }
    let mut out: Vec<Quantile> = (0..=40)
        .map(|k| {
            let p = 1.0 - 10f64.powf(-f64::from(k) / 8.0);
            Quantile {
                percentile: (p * 100.0 * 1e4).round() / 1e4,
                latency_us: h.value_at_quantile(p),
            }
        })
        .collect();
    out.push(Quantile {
        percentile: 100.0,
        latency_us: h.max(),
    });
    out
}

/// Per-operation results, in [`Op`] order.
pub(crate) fn operations(m: &Merged) -> Vec<OpResult> {
    m.ops
        .iter()
        .map(|(op, requests, errors, h)| OpResult {
            name: op.name().to_owned(),
            requests: *requests,
            errors: *errors,
            latency: latency(h),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(
        status: u16,
        server_us: Option<u64>,
        body: Option<&'static str>,
    ) -> Result<Reply, Failure> {
        Ok(Reply {
            status,
            server_us,
            db_us: server_us.map(|s| s / 2),
            body: body.map(|b| bytes::Bytes::from_static(b.as_bytes())),
            bytes: 10,
        })
    }

    #[test]
    fn workers_merge_into_totals_codes_and_series() {
        let live = Live::default();
        let mut a = WorkerStats::new(false, Duration::from_millis(1), Some(1));
        let mut b = WorkerStats::new(false, Duration::from_millis(1), Some(1));
        for i in 0..100u64 {
            a.record(
                &live,
                Op::GetProduct,
                Duration::from_micros(100 + i),
                Duration::from_millis(i * 10),
                &reply(200, Some(50), None),
            );
        }
        b.record(
            &live,
            Op::CreateOrder,
            Duration::from_millis(5),
            Duration::from_millis(1500),
            &reply(
                409,
                Some(4000),
                Some(r#"{"status":409,"code":"insufficient_stock"}"#),
            ),
        );
        b.record(
            &live,
            Op::CreateOrder,
            Duration::from_millis(5),
            Duration::from_millis(2500),
            &reply(500, None, Some("oops")),
        );
        b.record(
            &live,
            Op::CreateOrder,
            Duration::from_millis(5),
            Duration::from_millis(2600),
            &Err(Failure::Timeout),
        );
        let a = a.finish(&live);
        let b = b.finish(&live);
        assert_eq!(live.completed.load(Ordering::Relaxed), 103);
        assert_eq!(live.errors.load(Ordering::Relaxed), 3);
        let m = merge(vec![a, b]);
        assert_eq!(m.requests, 103);
        assert_eq!(m.latency.len(), 102);
        assert_eq!(m.http_errors, 2);
        assert_eq!(m.transport_errors, 1);
        assert_eq!(m.statuses.get("200"), Some(&100));
        assert_eq!(m.codes.get("insufficient_stock"), Some(&1));
        assert_eq!(m.codes.get("(no code)"), Some(&1));
        assert_eq!(m.transport.get("timeout"), Some(&1));
        assert_eq!(m.server.len(), 101);
        assert_eq!(m.ops.len(), 2);
        let l = latency(&m.latency);
        assert!((140..=160).contains(&l.p50_us), "{l:?}");
        assert!(l.max_us >= 5000);
        // Completions past the last second (2) are counted in it.
        let series = live.series(Duration::from_secs(2), 2);
        assert_eq!(series.len(), 2);
        assert_eq!(series[0].requests, 100);
        assert_eq!(series[1].requests, 3);
        assert_eq!(series[1].errors, 3);
        assert!(series[0].p99_us >= 190);
        let d = distribution(&m.latency);
        assert_eq!(d.first().map(|q| q.percentile), Some(0.0));
        assert_eq!(d.last().map(|q| q.percentile), Some(100.0));
        assert!(d.windows(2).all(|w| w[0].latency_us <= w[1].latency_us));
    }

    #[test]
    fn lag_counts_late_requests() {
        let mut w = WorkerStats::new(true, Duration::from_millis(1), None);
        w.record_lag(Duration::from_micros(300));
        w.record_lag(Duration::from_micros(1000));
        w.record_lag(Duration::from_millis(7));
        assert_eq!(w.late, 1);
        let m = merge(vec![w]);
        assert_eq!(m.lag.map(|h| h.len()), Some(3));
    }

    #[test]
    fn empty_seconds_are_zeros() {
        let live = Live::default();
        let mut w = WorkerStats::new(false, Duration::ZERO, None);
        w.record(
            &live,
            Op::Health,
            Duration::from_micros(10),
            Duration::from_millis(100),
            &reply(200, None, None),
        );
        w.record(
            &live,
            Op::Health,
            Duration::from_micros(10),
            Duration::from_millis(3100),
            &reply(200, None, None),
        );
        let _ = w.finish(&live);
        let s = live.series(Duration::from_millis(3200), 0);
        assert_eq!(
            s.iter().map(|p| p.requests).collect::<Vec<_>>(),
            [1, 0, 0, 1]
        );
        assert!((s[3].rps - 5.0).abs() < 1e-6, "{:?}", s[3]);
    }
}
