//! The summary table (stdout), `--out` JSON and `--csv` series.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use anyhow::Context;

use super::results::{Latency, Results, fmt_count, fmt_int, fmt_ms, fmt_pct};

fn latency_row(out: &mut String, label: &str, l: &Latency, note: &str) {
    if l.count == 0 {
        let _ = writeln!(out, "{label:<12} {:>9}  {note}", "-");
        return;
    }
    let _ = writeln!(
        out,
        "{label:<12} {:>9}{:>9}{:>9}{:>9}{:>9}{:>9}{:>9}  {note}",
        fmt_ms(l.min_us as f64),
        fmt_ms(l.p50_us as f64),
        fmt_ms(l.p90_us as f64),
        fmt_ms(l.p99_us as f64),
        fmt_ms(l.p999_us as f64),
        fmt_ms(l.max_us as f64),
        fmt_ms(l.mean_us),
    );
}

fn bytes(n: u64) -> String {
    let n = n as f64;
    if n >= 1e9 {
        format!("{:.2} GB", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.1} MB", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.1} kB", n / 1e3)
    } else {
        format!("{n} B")
    }
}

/// The end-of-run summary.
pub(crate) fn summary(r: &Results) -> String {
    let mut out = String::new();
    let c = &r.config;
    let _ = writeln!(
        out,
        "oms-cli load: {} against {}",
        c.scenario_text(),
        c.target
    );
    let _ = writeln!(
        out,
        "  {}, {}, {} client thread{}{}",
        c.mode_text(),
        c.length_text(),
        c.threads,
        if c.threads == 1 { "" } else { "s" },
        if r.interrupted { "  [interrupted]" } else { "" }
    );
    if r.fixtures.products > 0 {
        let _ = writeln!(
            out,
            "  fixtures: {} products ({}*){} in {:.2}s",
            r.fixtures.products,
            r.fixtures.sku_prefix,
            if r.fixtures.orders > 0 {
                format!(", {} orders", r.fixtures.orders)
            } else {
                String::new()
            },
            r.fixtures.seconds
        );
    }
    let _ = writeln!(out);
    let t = &r.totals;
    let _ = writeln!(
        out,
        "{:<12} {} in {:.2}s = {} req/s{}",
        "requests",
        fmt_int(t.requests),
        t.elapsed_s,
        fmt_count(t.rps),
        if t.warmup_requests > 0 {
            format!("  (+{} in warmup, not counted)", fmt_int(t.warmup_requests))
        } else {
            String::new()
        }
    );
    let mut causes: Vec<(String, u64)> = r
        .error_codes
        .iter()
        .map(|(code, n)| (code.clone(), *n))
        .chain(r.transport_errors.iter().map(|(k, n)| (k.clone(), *n)))
        .collect();
    if t.unsent > 0 {
        causes.push(("unsent".to_owned(), t.unsent));
    }
    causes.sort_by_key(|c| std::cmp::Reverse(c.1));
    let _ = writeln!(
        out,
        "{:<12} {} ({}){}",
        "errors",
        fmt_int(t.errors + t.unsent),
        fmt_pct(t.error_rate),
        if causes.is_empty() {
            String::new()
        } else {
            format!(
                ": {}",
                causes
                    .iter()
                    .map(|(k, n)| format!("{k} {}", fmt_int(*n)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    );
    let _ = writeln!(out, "{:<12} {}", "received", bytes(t.bytes_received));
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<12} {:>9}{:>9}{:>9}{:>9}{:>9}{:>9}{:>9}",
        "latency", "min", "p50", "p90", "p99", "p99.9", "max", "mean"
    );
    let client_note = if r.schedule.is_some() {
        "from scheduled send time"
    } else {
        "from send"
    };
    latency_row(&mut out, "client", &r.latency, client_note);
    latency_row(
        &mut out,
        "server",
        &r.server.response_time,
        &format!("X-Response-Time, {} responses", fmt_int(r.server.responses)),
    );
    latency_row(&mut out, "database", &r.server.db_time, "X-DB-Time");
    if let Some(s) = &r.schedule {
        latency_row(&mut out, "send lag", &s.lag, "actual - scheduled send time");
    }
    if r.operations.len() > 1 || r.operations.iter().any(|o| o.name != c.scenario) {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<14} {:>10} {:>8} {:>9}{:>9}{:>9}{:>9}",
            "operation", "requests", "errors", "p50", "p90", "p99", "max"
        );
        for op in &r.operations {
            let l = &op.latency;
            let _ = writeln!(
                out,
                "{:<14} {:>10} {:>8} {:>9}{:>9}{:>9}{:>9}",
                op.name,
                fmt_int(op.requests),
                fmt_int(op.errors),
                fmt_ms(l.p50_us as f64),
                fmt_ms(l.p90_us as f64),
                fmt_ms(l.p99_us as f64),
                fmt_ms(l.max_us as f64),
            );
        }
    }
    let _ = writeln!(out);
    let statuses = r
        .statuses
        .iter()
        .map(|(s, n)| format!("{s} {}", fmt_int(*n)))
        .collect::<Vec<_>>()
        .join(", ");
    let _ = writeln!(
        out,
        "{:<12} {}",
        "statuses",
        if statuses.is_empty() {
            "-".to_owned()
        } else {
            statuses
        }
    );
    if let Some(s) = &r.schedule {
        let _ = writeln!(
            out,
            "{:<12} {} req/s: {} due, {} sent, {} unsent, {} late (> {}ms after their time)",
            "schedule",
            fmt_count(s.rate),
            fmt_int(s.expected),
            fmt_int(s.sent),
            fmt_int(s.unsent),
            fmt_int(s.late),
            s.late_after_ms
        );
    }
    out
}

/// Warnings about the run's validity, one per line.
pub(crate) fn warnings(r: &Results) -> Vec<String> {
    let mut w = Vec::new();
    if let Some(s) = &r.schedule {
        if s.sent > 0 && s.late as f64 > 0.01 * s.sent as f64 {
            w.push(format!(
                "{} of {} requests ({}) were sent more than {}ms after they were due: every \
                 connection was busy (raise --connections) or the client ran out of CPU; their \
                 latency counts from when they were due",
                fmt_int(s.late),
                fmt_int(s.sent),
                fmt_pct(s.late as f64 / s.sent as f64),
                s.late_after_ms
            ));
        }
        if s.unsent > 0 {
            w.push(format!(
                "{} requests due in the measured time were never sent (the run ended first); \
                 they count as errors",
                fmt_int(s.unsent)
            ));
        }
    }
    let answered = r.totals.requests - r.totals.transport_errors;
    if answered > 0 && r.server.responses == 0 {
        w.push("no response carried X-Response-Time: server-side figures are empty".to_owned());
    }
    w
}

/// Writes `--out`.
pub(crate) fn write_json(r: &Results, path: &Path) -> anyhow::Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut w = std::io::BufWriter::new(file);
    serde_json::to_writer_pretty(&mut w, r)
        .with_context(|| format!("cannot write {}", path.display()))?;
    writeln!(w)?;
    w.flush()
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Reads a `--out` file back.
pub(crate) fn read_json(path: &Path) -> anyhow::Result<Results> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not an `oms-cli load --out` results file",
            path.display()
        )
    })
}

/// The CSV header of [`csv`].
pub(crate) const CSV_HEADER: &str = "second,requests,errors,rps,p50_ms,p90_ms,p99_ms,max_ms";

/// The per-second series as CSV.
pub(crate) fn csv(r: &Results) -> String {
    let mut out = String::from(CSV_HEADER);
    out.push('\n');
    let ms = |us: u64| us as f64 / 1e3;
    for p in &r.series {
        let _ = writeln!(
            out,
            "{},{},{},{:.1},{:.3},{:.3},{:.3},{:.3}",
            p.second,
            p.requests,
            p.errors,
            p.rps,
            ms(p.p50_us),
            ms(p.p90_us),
            ms(p.p99_us),
            ms(p.max_us)
        );
    }
    out
}

/// Writes `--csv`.
pub(crate) fn write_csv(r: &Results, path: &Path) -> anyhow::Result<()> {
    std::fs::write(path, csv(r)).with_context(|| format!("cannot write {}", path.display()))
}
