//! The results of a run: what `--out` writes, `compare` reads, and the
//! summary, CSV and HTML report show. Latencies are integer microseconds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Everything about one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Results {
    /// `oms-cli load`.
    pub(crate) tool: String,
    /// The tool's version.
    pub(crate) version: String,
    /// When the measured phase started (RFC 3339 UTC).
    pub(crate) started_at: String,
    /// Stopped early by Ctrl-C.
    #[serde(default)]
    pub(crate) interrupted: bool,
    pub(crate) config: ConfigInfo,
    pub(crate) fixtures: FixtureInfo,
    pub(crate) totals: Totals,
    /// Client-side latency of every response (all operations).
    pub(crate) latency: Latency,
    /// Client-side latency by percentile, for charts.
    pub(crate) distribution: Vec<Quantile>,
    /// Per HTTP operation.
    pub(crate) operations: Vec<OpResult>,
    /// Responses per HTTP status.
    pub(crate) statuses: BTreeMap<String, u64>,
    /// Error responses per problem+json `code`.
    pub(crate) error_codes: BTreeMap<String, u64>,
    /// Requests that got no response, per kind (connect, timeout, closed, io).
    pub(crate) transport_errors: BTreeMap<String, u64>,
    /// The server's own timings (`X-Response-Time`, `X-DB-Time`).
    pub(crate) server: ServerSide,
    /// Open loop only: how well the schedule was kept.
    pub(crate) schedule: Option<Schedule>,
    /// One point per second of the measured phase.
    pub(crate) series: Vec<SecondPoint>,
    /// The thresholds given, each passed or failed.
    #[serde(default)]
    pub(crate) thresholds: Vec<ThresholdResult>,
}

/// The run's configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ConfigInfo {
    pub(crate) target: String,
    pub(crate) scenario: String,
    pub(crate) mix: Option<String>,
    /// `closed` or `open`.
    pub(crate) mode: String,
    pub(crate) users: Option<usize>,
    pub(crate) rate: Option<f64>,
    pub(crate) connections: usize,
    pub(crate) duration_s: Option<f64>,
    pub(crate) requests: Option<u64>,
    pub(crate) warmup_s: f64,
    pub(crate) timeout_s: f64,
    pub(crate) threads: usize,
    pub(crate) late_after_ms: f64,
    pub(crate) auth: bool,
    pub(crate) run_id: String,
}

impl ConfigInfo {
    /// `closed loop, 64 users` / `open loop, 2000 req/s on 64 connections`.
    pub(crate) fn mode_text(&self) -> String {
        match (self.users, self.rate) {
            (Some(u), _) => format!("closed loop, {u} user{}", if u == 1 { "" } else { "s" }),
            (None, Some(r)) => format!(
                "open loop, {} req/s on {} connections",
                fmt_count(r),
                self.connections
            ),
            (None, None) => self.mode.clone(),
        }
    }

    /// `10s (+2s warmup)` / `200 requests`.
    pub(crate) fn length_text(&self) -> String {
        let main = match (self.duration_s, self.requests) {
            (Some(d), _) => format!("{d}s"),
            (None, Some(n)) => format!("{} requests", fmt_int(n)),
            (None, None) => "?".to_owned(),
        };
        if self.warmup_s > 0.0 {
            format!("{main} (+{}s warmup)", self.warmup_s)
        } else {
            main
        }
    }

    /// The scenario, with its mix.
    pub(crate) fn scenario_text(&self) -> String {
        match &self.mix {
            Some(m) => format!("{} ({m})", self.scenario),
            None => self.scenario.clone(),
        }
    }
}

/// What the run created on the server before measuring.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct FixtureInfo {
    pub(crate) run_id: String,
    /// `LOAD-<run id>-`.
    pub(crate) sku_prefix: String,
    pub(crate) products: usize,
    pub(crate) orders: usize,
    pub(crate) seconds: f64,
}

/// Counts for the measured phase.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Totals {
    /// Requests sent and finished (answered or failed).
    pub(crate) requests: u64,
    /// Answered with a status below 400.
    pub(crate) ok: u64,
    /// `http_errors + transport_errors`.
    pub(crate) errors: u64,
    /// Answered with a status of 400 or more.
    pub(crate) http_errors: u64,
    /// Got no response (connect, timeout, closed, io).
    pub(crate) transport_errors: u64,
    /// Open loop: due in the measured phase but never sent.
    pub(crate) unsent: u64,
    /// `(errors + unsent) / (requests + unsent)`.
    pub(crate) error_rate: f64,
    /// Measured time, from its start to the last response.
    pub(crate) elapsed_s: f64,
    /// `requests / elapsed_s`.
    pub(crate) rps: f64,
    /// Response body bytes.
    pub(crate) bytes_received: u64,
    /// Requests made during the warmup (not in any other figure).
    pub(crate) warmup_requests: u64,
}

/// A latency distribution's summary, in microseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Latency {
    pub(crate) count: u64,
    pub(crate) min_us: u64,
    pub(crate) mean_us: f64,
    pub(crate) stdev_us: f64,
    pub(crate) p50_us: u64,
    pub(crate) p75_us: u64,
    pub(crate) p90_us: u64,
    pub(crate) p99_us: u64,
    pub(crate) p999_us: u64,
    pub(crate) p9999_us: u64,
    pub(crate) max_us: u64,
}

/// One point of a percentile spectrum.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct Quantile {
    /// 0..=100.
    pub(crate) percentile: f64,
    pub(crate) latency_us: u64,
}

/// One HTTP operation's figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct OpResult {
    pub(crate) name: String,
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    pub(crate) latency: Latency,
}

/// The server's view, from its timing headers.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct ServerSide {
    /// Responses that carried `X-Response-Time`.
    pub(crate) responses: u64,
    /// `X-Response-Time`: handling time inside the server process.
    pub(crate) response_time: Latency,
    /// `X-DB-Time`: time in database calls.
    pub(crate) db_time: Latency,
    /// `X-Response-Time` by percentile.
    pub(crate) distribution: Vec<Quantile>,
}

/// How the open-loop schedule was kept.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Schedule {
    pub(crate) rate: f64,
    pub(crate) connections: usize,
    /// Requests due in the measured phase.
    pub(crate) expected: u64,
    /// Requests sent.
    pub(crate) sent: u64,
    /// Sent more than `late_after_ms` after their scheduled time.
    pub(crate) late: u64,
    /// Due but never sent (the run ended first).
    pub(crate) unsent: u64,
    pub(crate) late_after_ms: f64,
    /// Delay between scheduled and actual send.
    pub(crate) lag: Latency,
}

/// One second of the measured phase (by completion time).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct SecondPoint {
    /// Seconds since the measured phase started.
    pub(crate) second: u64,
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    /// Requests per second over this second (the last one may be partial).
    pub(crate) rps: f64,
    pub(crate) p50_us: u64,
    pub(crate) p90_us: u64,
    pub(crate) p99_us: u64,
    pub(crate) max_us: u64,
}

/// One threshold's verdict.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ThresholdResult {
    /// The flag without dashes: `max-p99`.
    pub(crate) name: String,
    pub(crate) limit: String,
    pub(crate) actual: String,
    pub(crate) passed: bool,
    pub(crate) message: String,
}

/// Microseconds as a short duration: `0.412ms`, `12.3ms`, `1.25s`.
pub(crate) fn fmt_ms(us: f64) -> String {
    let ms = us / 1e3;
    if ms < 1.0 {
        format!("{ms:.3}ms")
    } else if ms < 10.0 {
        format!("{ms:.2}ms")
    } else if ms < 1000.0 {
        format!("{ms:.1}ms")
    } else {
        format!("{:.2}s", ms / 1e3)
    }
}

/// An integer with thousands separators.
pub(crate) fn fmt_int(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A count or rate: thousands separators, one decimal unless whole.
pub(crate) fn fmt_count(v: f64) -> String {
    if !v.is_finite() || v < 0.0 {
        return format!("{v}");
    }
    let whole = v.trunc();
    let tenth = ((v - whole) * 10.0).round();
    if tenth == 0.0 {
        fmt_int(whole as u64)
    } else if tenth >= 10.0 {
        fmt_int(whole as u64 + 1)
    } else {
        format!("{}.{}", fmt_int(whole as u64), tenth as u64)
    }
}

/// A fraction as a percentage: `0.25%`.
pub(crate) fn fmt_pct(f: f64) -> String {
    format!("{:.2}%", f * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(fmt_ms(412.0), "0.412ms");
        assert_eq!(fmt_ms(1234.0), "1.23ms");
        assert_eq!(fmt_ms(12_345.0), "12.3ms");
        assert_eq!(fmt_ms(1_250_000.0), "1.25s");
        assert_eq!(fmt_int(0), "0");
        assert_eq!(fmt_int(999), "999");
        assert_eq!(fmt_int(1000), "1,000");
        assert_eq!(fmt_int(1_234_567), "1,234,567");
        assert_eq!(fmt_count(2000.0), "2,000");
        assert_eq!(fmt_count(12345.64), "12,345.6");
        assert_eq!(fmt_count(9.97), "10");
        assert_eq!(fmt_pct(0.0125), "1.25%");
    }
}
