//! CI gates: `--max-p99 25ms --min-rps 2000 --max-error-rate 0.01`.

use std::time::Duration;

use super::results::{Results, ThresholdResult, fmt_count, fmt_ms, fmt_pct};

/// The limits given on the command line.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Thresholds {
    pub(crate) max_p50: Option<Duration>,
    pub(crate) max_p90: Option<Duration>,
    pub(crate) max_p99: Option<Duration>,
    pub(crate) max_p999: Option<Duration>,
    pub(crate) min_rps: Option<f64>,
    pub(crate) max_error_rate: Option<f64>,
}

impl Thresholds {
    /// Checks each limit against the results, in flag order.
    pub(crate) fn evaluate(&self, r: &Results) -> Vec<ThresholdResult> {
        let mut out = Vec::new();
        let latency = [
            ("max-p50", "p50", self.max_p50, r.latency.p50_us),
            ("max-p90", "p90", self.max_p90, r.latency.p90_us),
            ("max-p99", "p99", self.max_p99, r.latency.p99_us),
            ("max-p999", "p99.9", self.max_p999, r.latency.p999_us),
        ];
        for (flag, label, limit, actual_us) in latency {
            let Some(limit) = limit else { continue };
            let limit_us = limit.as_secs_f64() * 1e6;
            let (passed, actual, message) = if r.latency.count == 0 {
                (
                    false,
                    "none".to_owned(),
                    format!(
                        "{label} unknown: no response was received (--{flag} {})",
                        fmt_ms(limit_us)
                    ),
                )
            } else {
                let actual = actual_us as f64;
                let passed = actual <= limit_us;
                (
                    passed,
                    fmt_ms(actual),
                    format!(
                        "{label} = {} is {} --{flag} {}",
                        fmt_ms(actual),
                        if passed { "within" } else { "above" },
                        fmt_ms(limit_us)
                    ),
                )
            };
            out.push(ThresholdResult {
                name: flag.to_owned(),
                limit: fmt_ms(limit_us),
                actual,
                passed,
                message,
            });
        }
        if let Some(min) = self.min_rps {
            let rps = r.totals.rps;
            let passed = rps >= min;
            out.push(ThresholdResult {
                name: "min-rps".to_owned(),
                limit: fmt_count(min),
                actual: fmt_count(rps),
                passed,
                message: format!(
                    "throughput = {} req/s is {} --min-rps {}",
                    fmt_count(rps),
                    if passed { "at or above" } else { "below" },
                    fmt_count(min)
                ),
            });
        }
        if let Some(max) = self.max_error_rate {
            let rate = r.totals.error_rate;
            // No request at all is a failure too: nothing was shown to work.
            let passed = r.totals.requests + r.totals.unsent > 0 && rate <= max;
            out.push(ThresholdResult {
                name: "max-error-rate".to_owned(),
                limit: fmt_pct(max),
                actual: fmt_pct(rate),
                passed,
                message: format!(
                    "error rate = {} ({} of {}) is {} --max-error-rate {}",
                    fmt_pct(rate),
                    r.totals.errors + r.totals.unsent,
                    r.totals.requests + r.totals.unsent,
                    if passed { "within" } else { "above" },
                    fmt_pct(max)
                ),
            });
        }
        out
    }
}
