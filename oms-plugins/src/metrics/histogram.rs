//! A fixed-bucket latency histogram made of atomic counters.
//!
//! # Buckets
//!
//! The bucket bounds are the Renard R40 preferred numbers (`1.00, 1.06,
//! 1.12, 1.18, 1.25, ... 8.50, 9.00, 9.50` times a power of ten) from 50 µs
//! to 63 s: [`BOUND_COUNT`] bounds plus an overflow bucket. Adjacent bounds
//! differ by a factor of at most 1.0714, so a quantile interpolated inside
//! its bucket is off by at most 7.1 % whatever the distribution (the worst
//! case is every value piled on one bucket edge) and typically by well under
//! 1 %; values below 50 µs share the first bucket, values over 63 s the
//! overflow bucket, and every estimate is clamped to the recorded maximum.
//!
//! Every fourth bound is a Renard R10 number (`1.00, 1.25, 1.60, 2.00,
//! 2.50, 3.15, 4.00, 5.00, 6.30, 8.00`); the Prometheus exposition lists
//! those ([`EXPORT_STEP`]): 62 bounds plus `+Inf`, which keeps a scrape of
//! 1,000 series under 10 MB and its rendering near 1.5 ms, while the
//! in-process percentiles use the full resolution.
//!
//! # Cost
//!
//! [`LatencyHistogram::record_nanos`] is a binary search over 245 `u64`s
//! (8 comparisons) and two relaxed `fetch_add`s, plus a relaxed load (and,
//! only when a new maximum is seen, a `fetch_max`). The count is not kept
//! apart: it is the sum of the buckets, so `_count` and the `+Inf` bucket
//! always agree.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Renard R40 mantissas, in hundredths.
const R40: [u64; 40] = [
    100, 106, 112, 118, 125, 132, 140, 150, 160, 170, 180, 190, 200, 212, 224, 236, 250, 265, 280,
    300, 315, 335, 355, 375, 400, 425, 450, 475, 500, 530, 560, 600, 630, 670, 710, 750, 800, 850,
    900, 950,
];

/// Number of finite bucket bounds.
pub(crate) const BOUND_COUNT: usize = 245;

/// Number of buckets: the finite bounds plus the overflow (`+Inf`) bucket.
pub(crate) const BUCKET_COUNT: usize = BOUND_COUNT + 1;

/// The Prometheus exposition lists every `EXPORT_STEP`-th bound (R10).
pub(crate) const EXPORT_STEP: usize = 4;

/// Upper bounds of the finite buckets, in nanoseconds, strictly increasing:
/// 50 µs, 53 µs, 56 µs, ... 60 s, 63 s.
pub(crate) const BOUNDS_NS: [u64; BOUND_COUNT] = bounds();

const fn bounds() -> [u64; BOUND_COUNT] {
    let mut out = [0; BOUND_COUNT];
    // 500 hundredths * 100 ns = 50 µs: start at the 5.00 mantissa.
    let mut mantissa = 28;
    let mut scale = 100;
    let mut n = 0;
    while n < BOUND_COUNT {
        out[n] = R40[mantissa] * scale;
        n += 1;
        mantissa += 1;
        if mantissa == R40.len() {
            mantissa = 0;
            scale *= 10;
        }
    }
    out
}

const _: () = {
    assert!(BOUNDS_NS[0] == 50_000);
    assert!(BOUNDS_NS[BOUND_COUNT - 1] == 63_000_000_000);
    // The exported subset starts and ends on R10 numbers.
    assert!((BOUND_COUNT - 1).is_multiple_of(EXPORT_STEP));
};

/// Nanoseconds in `d`, saturating at `u64::MAX` (584 years).
#[inline]
pub(crate) fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Index of the bucket `nanos` falls in: the first bound `>= nanos`, or
/// [`BOUND_COUNT`] (overflow) if there is none.
#[inline]
pub(crate) fn bucket_index(nanos: u64) -> usize {
    BOUNDS_NS.partition_point(|&bound| bound < nanos)
}

/// A latency histogram updated with relaxed atomics only.
#[derive(Debug)]
pub(crate) struct LatencyHistogram {
    buckets: [AtomicU64; BUCKET_COUNT],
    sum_nanos: AtomicU64,
    max_nanos: AtomicU64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyHistogram {
    /// An empty histogram.
    pub(crate) fn new() -> Self {
        Self {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_nanos: AtomicU64::new(0),
            max_nanos: AtomicU64::new(0),
        }
    }

    /// Records one value. Lock-free; never panics.
    #[inline]
    pub(crate) fn record_nanos(&self, nanos: u64) {
        if let Some(bucket) = self.buckets.get(bucket_index(nanos)) {
            bucket.fetch_add(1, Relaxed);
        }
        self.sum_nanos.fetch_add(nanos, Relaxed);
        if nanos > self.max_nanos.load(Relaxed) {
            self.max_nanos.fetch_max(nanos, Relaxed);
        }
    }

    /// Records one duration.
    #[inline]
    pub(crate) fn record(&self, d: Duration) {
        self.record_nanos(duration_nanos(d));
    }

    /// A plain copy of the counters. Each counter is read once; concurrent
    /// updates may land in some counters and not yet in others, but the copy
    /// is internally consistent (the count is the sum of its buckets).
    pub(crate) fn counts(&self) -> HistogramCounts {
        HistogramCounts {
            buckets: std::array::from_fn(|i| self.buckets[i].load(Relaxed)),
            sum_nanos: self.sum_nanos.load(Relaxed),
            max_nanos: self.max_nanos.load(Relaxed),
        }
    }
}

/// A point-in-time copy of a [`LatencyHistogram`], which can be merged with
/// others and queried for quantiles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HistogramCounts {
    /// Per-bucket (not cumulative) counts; the last is the overflow bucket.
    pub(crate) buckets: [u64; BUCKET_COUNT],
    /// Sum of the values, ns (wraps after 584 years of total latency).
    pub(crate) sum_nanos: u64,
    /// Largest value, ns.
    pub(crate) max_nanos: u64,
}

impl Default for HistogramCounts {
    fn default() -> Self {
        Self {
            buckets: [0; BUCKET_COUNT],
            sum_nanos: 0,
            max_nanos: 0,
        }
    }
}

impl HistogramCounts {
    /// Number of values.
    pub(crate) fn count(&self) -> u64 {
        self.buckets
            .iter()
            .fold(0u64, |acc, &c| acc.saturating_add(c))
    }

    /// Adds `other`'s values to these.
    pub(crate) fn merge(&mut self, other: &HistogramCounts) {
        for (mine, theirs) in self.buckets.iter_mut().zip(other.buckets.iter()) {
            *mine = mine.saturating_add(*theirs);
        }
        self.sum_nanos = self.sum_nanos.wrapping_add(other.sum_nanos);
        self.max_nanos = self.max_nanos.max(other.max_nanos);
    }

    /// The `q`-quantile (`0 < q <= 1`) in nanoseconds, 0 if empty.
    ///
    /// Finds the bucket holding rank `q * count` (as Prometheus'
    /// `histogram_quantile` does) and interpolates inside it geometrically,
    /// which suits log-spaced buckets; linearly in the first bucket (from
    /// 0) and in the overflow bucket (up to the maximum). The result never
    /// exceeds the recorded maximum.
    pub(crate) fn quantile_nanos(&self, q: f64) -> f64 {
        let total = self.count();
        if total == 0 {
            return 0.0;
        }
        let q = if q.is_nan() { 1.0 } else { q.clamp(0.0, 1.0) };
        let max = self.max_nanos as f64;
        let rank = q * total as f64;
        let mut below = 0u64;
        for (i, &in_bucket) in self.buckets.iter().enumerate() {
            if in_bucket == 0 {
                continue;
            }
            let through = below.saturating_add(in_bucket);
            if (through as f64) >= rank {
                let fraction = ((rank - below as f64) / in_bucket as f64).clamp(0.0, 1.0);
                let upper = BOUNDS_NS.get(i).map(|&b| b as f64);
                let lower = i
                    .checked_sub(1)
                    .and_then(|j| BOUNDS_NS.get(j))
                    .map(|&b| b as f64);
                let estimate = match (lower, upper) {
                    (Some(lo), Some(hi)) => lo * (hi / lo).powf(fraction),
                    (None, Some(hi)) => hi * fraction,
                    (Some(lo), None) => lo + (max - lo).max(0.0) * fraction,
                    (None, None) => max,
                };
                return estimate.min(max);
            }
            below = through;
        }
        max
    }
}

/// Nanoseconds to milliseconds, rounded to the microsecond.
pub(crate) fn nanos_to_ms(nanos: f64) -> f64 {
    (nanos / 1_000.0).round() / 1_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_log_spaced_from_50us_to_past_60s() {
        assert_eq!(BOUNDS_NS[0], 50_000);
        assert!(BOUNDS_NS[BOUND_COUNT - 1] >= 60_000_000_000);
        for pair in BOUNDS_NS.windows(2) {
            let ratio = pair[1] as f64 / pair[0] as f64;
            assert!((1.05..=1.0715).contains(&ratio), "{pair:?}: ratio {ratio}");
        }
    }

    #[test]
    fn bucket_index_uses_upper_inclusive_bounds() {
        assert_eq!(bucket_index(0), 0);
        assert_eq!(bucket_index(50_000), 0);
        assert_eq!(bucket_index(50_001), 1);
        assert_eq!(bucket_index(63_000_000_000), BOUND_COUNT - 1);
        assert_eq!(bucket_index(63_000_000_001), BOUND_COUNT);
        assert_eq!(bucket_index(u64::MAX), BOUND_COUNT);
    }

    #[test]
    fn extreme_values_do_not_panic() {
        let h = LatencyHistogram::new();
        h.record(Duration::ZERO);
        h.record(Duration::MAX);
        h.record_nanos(u64::MAX);
        let c = h.counts();
        assert_eq!(c.count(), 3);
        assert_eq!(c.buckets[0], 1);
        assert_eq!(c.buckets[BOUND_COUNT], 2);
        assert_eq!(c.max_nanos, u64::MAX);
        assert!(c.quantile_nanos(0.99).is_finite());
    }

    #[test]
    fn quantile_of_empty_is_zero() {
        assert_eq!(HistogramCounts::default().quantile_nanos(0.5), 0.0);
    }

    #[test]
    fn point_mass_quantiles_are_clamped_to_max() {
        let h = LatencyHistogram::new();
        for _ in 0..1000 {
            h.record(Duration::from_micros(1_000));
        }
        let c = h.counts();
        let p99 = c.quantile_nanos(0.99);
        assert!(p99 <= 1_000_000.0);
        assert!(p99 >= 1_000_000.0 / 1.0715, "{p99}");
        let p50 = c.quantile_nanos(0.5);
        assert!((p50 / 1_000_000.0 - 1.0).abs() < 0.0715, "{p50}");
    }

    #[test]
    fn worst_case_quantile_error_is_bounded_by_the_bucket_ratio() {
        // 99 % of the values on one bucket edge (just above the lower bound,
        // or exactly on the upper one), 1 % far above so that clamping to
        // the maximum does not help: p50 and p95 are the edge value.
        for i in 1..BOUND_COUNT {
            for value in [BOUNDS_NS[i - 1] + 1, BOUNDS_NS[i]] {
                let h = LatencyHistogram::new();
                for _ in 0..990 {
                    h.record_nanos(value);
                }
                for _ in 0..10 {
                    h.record(Duration::from_secs(3600));
                }
                let c = h.counts();
                for q in [0.5, 0.95] {
                    let err = (c.quantile_nanos(q) / value as f64 - 1.0).abs();
                    assert!(err <= 0.0715, "value {value} ns, q {q}: error {err}");
                }
            }
        }
    }

    #[test]
    fn merge_adds_counts_and_keeps_max() {
        let a = LatencyHistogram::new();
        let b = LatencyHistogram::new();
        a.record(Duration::from_millis(1));
        b.record(Duration::from_millis(3));
        b.record(Duration::from_millis(2));
        let mut m = a.counts();
        m.merge(&b.counts());
        assert_eq!(m.count(), 3);
        assert_eq!(m.sum_nanos, 6_000_000);
        assert_eq!(m.max_nanos, 3_000_000);
    }
}
