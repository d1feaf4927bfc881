//! What the `builtin` metrics recorder costs, against the recorder one
//! writes first: a `Mutex<HashMap<String, Vec<f64>>>` that keeps every
//! sample and sorts them to answer percentiles.
//!
//! - `metrics_per_request`: one `record_request` (50 series: 10 route
//!   templates x 5 statuses, cycled) plus one `record_statement`, the
//!   telemetry hoop's share of every request. The naive recorder formats
//!   its key, takes the one lock and pushes the sample; its sample vectors
//!   are dropped every 2^20 requests (outside the timing) to bound the
//!   bench's memory, so their growth is amortised as in a real process.
//! - `metrics_exposition_1000_series`: the builtin `render_prometheus` at
//!   1,000 series (100 routes x 10 statuses), against the naive recorder
//!   sorting a copy of each series' samples (1,000 per series, 1,000,000 in
//!   all: a modest uptime) for p50/p95/p99 and writing them out.
//!
//! Run with `cargo bench --bench metrics` (`-- --quick` for a fast pass).

#![allow(missing_docs)]

mod support;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use oms::core::metrics::{MetricsRecorder, RequestRecord};
use oms::plugins::metrics::BuiltinRecorder;

/// The naive recorder: every sample kept, percentiles by sorting.
#[derive(Default)]
struct NaiveRecorder {
    samples: Mutex<HashMap<String, Vec<f64>>>,
}

impl NaiveRecorder {
    fn push(&self, key: String, ms: f64) {
        self.samples
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key)
            .or_default()
            .push(ms);
    }

    fn record_request(&self, r: &RequestRecord<'_>) {
        let key = format!("{} {} {}", r.method, r.route, r.status);
        self.push(key, r.duration.as_secs_f64() * 1e3);
    }

    fn record_statement(&self, elapsed: Duration, failed: bool) {
        let key = if failed {
            "db_statement_failed"
        } else {
            "db_statement"
        };
        self.push(key.to_owned(), elapsed.as_secs_f64() * 1e3);
    }

    /// p50/p95/p99 of every series (nearest rank), one line each.
    fn render_percentiles(&self) -> String {
        let samples = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        let mut keys: Vec<&String> = samples.keys().collect();
        keys.sort_unstable();
        let mut out = String::with_capacity(keys.len() * 96);
        for key in keys {
            let mut sorted = samples[key].clone();
            sorted.sort_unstable_by(f64::total_cmp);
            let rank = |q: f64| {
                let n = sorted.len();
                let i = ((q * n as f64).ceil() as usize).clamp(1, n.max(1)) - 1;
                sorted.get(i).copied().unwrap_or(0.0)
            };
            let _ = writeln!(
                out,
                "{key} count={} p50={} p95={} p99={}",
                sorted.len(),
                rank(0.50),
                rank(0.95),
                rank(0.99)
            );
        }
        out
    }

    fn clear(&self) {
        *self.samples.lock().unwrap_or_else(PoisonError::into_inner) = HashMap::new();
    }
}

const ROUTES: [&str; 10] = [
    "/v1/products",
    "/v1/products/{sku}",
    "/v1/products/{sku}/stock",
    "/v1/orders",
    "/v1/orders/{id}",
    "/v1/orders/{id}/events",
    "/v1/orders/{id}/cancel",
    "/v1/orders/{id}/ship",
    "/v1/audit",
    "/health",
];
const STATUSES: [u16; 5] = [200, 201, 304, 404, 500];

/// Durations from 50 µs to about 50 ms, spread log-uniformly (xorshift).
fn durations(n: usize) -> Vec<Duration> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let unit = (x >> 11) as f64 / (1u64 << 53) as f64;
            Duration::from_nanos((50_000.0 * 1000f64.powf(unit)) as u64)
        })
        .collect()
}

fn request<'a>(route: &'a str, status: u16, duration: Duration) -> RequestRecord<'a> {
    RequestRecord {
        method: if status == 201 { "POST" } else { "GET" },
        route,
        status,
        duration,
        db_time: duration / 2,
        db_statements: 1,
    }
}

fn per_request(c: &mut Criterion) {
    oms::link();
    let series: Vec<(&str, u16)> = ROUTES
        .iter()
        .flat_map(|&route| STATUSES.iter().map(move |&status| (route, status)))
        .collect();
    assert_eq!(series.len(), 50);
    let durations = durations(4096);
    let record = |i: u64| {
        let (route, status) = series[(i % 50) as usize];
        let duration = durations[(i % 4096) as usize];
        (request(route, status, duration), duration / 3)
    };

    let mut group = c.benchmark_group("metrics_per_request");
    group.throughput(Throughput::Elements(1));
    group.bench_function("builtin", |b| {
        b.iter_custom(|iters| {
            let recorder = BuiltinRecorder::new();
            for i in 0..50 {
                recorder.record_request(&record(i).0);
            }
            let start = Instant::now();
            for i in 0..iters {
                let (req, statement) = record(i);
                recorder.record_request(black_box(&req));
                recorder.record_statement(black_box(statement), false);
            }
            let elapsed = start.elapsed();
            assert_eq!(recorder.series_count(), 50);
            elapsed
        });
    });
    group.bench_function("naive_mutex_hashmap", |b| {
        const RESET_EVERY: u64 = 1 << 20;
        b.iter_custom(|iters| {
            let recorder = NaiveRecorder::default();
            for i in 0..50 {
                recorder.record_request(&record(i).0);
            }
            let mut elapsed = Duration::ZERO;
            let mut start = Instant::now();
            for i in 0..iters {
                if i > 0 && i % RESET_EVERY == 0 {
                    elapsed += start.elapsed();
                    recorder.clear();
                    start = Instant::now();
                }
                let (req, statement) = record(i);
                recorder.record_request(black_box(&req));
                recorder.record_statement(black_box(statement), false);
            }
            elapsed + start.elapsed()
        });
    });
    group.finish();
}

fn exposition(c: &mut Criterion) {
    oms::link();
    const SAMPLES_PER_SERIES: usize = 1000;
    let routes: Vec<String> = (0..100)
        .map(|i| format!("/v1/resource{i}/{{id}}"))
        .collect();
    let statuses = [200, 201, 204, 304, 400, 404, 409, 422, 500, 503];
    let durations = durations(SAMPLES_PER_SERIES);
    let builtin = BuiltinRecorder::new();
    let naive = NaiveRecorder::default();
    for route in &routes {
        for &status in &statuses {
            for &duration in &durations {
                let req = request(route, status, duration);
                builtin.record_request(&req);
                naive.record_request(&req);
            }
        }
    }
    for &duration in &durations {
        builtin.record_statement(duration, false);
        naive.record_statement(duration, false);
    }
    assert_eq!(builtin.series_count(), 1000);
    eprintln!(
        "metrics exposition at 1000 series x {SAMPLES_PER_SERIES} samples: builtin Prometheus text {} bytes, naive percentile text {} bytes",
        builtin.render_prometheus().len(),
        naive.render_percentiles().len()
    );

    let mut group = c.benchmark_group("metrics_exposition_1000_series");
    group.bench_function("builtin_render_prometheus", |b| {
        b.iter(|| black_box(builtin.render_prometheus()));
    });
    group.bench_function("naive_sort_percentiles", |b| {
        b.iter(|| black_box(naive.render_percentiles()));
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = support::criterion();
    targets = per_request, exposition
}

criterion_main!(benches);
