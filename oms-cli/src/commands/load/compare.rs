//! `oms-cli load compare a.json b.json`: two runs side by side, with the
//! ratio b / a and which way it went.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use super::output::read_json;
use super::results::{Latency, Results, fmt_count, fmt_int, fmt_ms, fmt_pct};

/// Prints the comparison.
pub(crate) fn run(a: &Path, b: &Path) -> anyhow::Result<ExitCode> {
    let ra = read_json(a)?;
    let rb = read_json(b)?;
    print!("{}", render(&ra, &rb, &label(a), &label(b)));
    Ok(ExitCode::SUCCESS)
}

fn label(p: &Path) -> String {
    let name = p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    if name.chars().count() > 22 {
        format!("{}…", name.chars().take(21).collect::<String>())
    } else {
        name
    }
}

#[derive(Clone, Copy)]
enum Better {
    Higher,
    Lower,
}

struct Table {
    out: String,
}

impl Table {
    fn text(&mut self, name: &str, a: &str, b: &str) {
        let _ = writeln!(self.out, "{name:<22} {a:>22} {b:>22}");
    }

    fn number(&mut self, name: &str, a: f64, b: f64, fmt: impl Fn(f64) -> String, better: Better) {
        let (ratio, verdict) = if a > 0.0 && a.is_finite() && b.is_finite() {
            let r = b / a;
            let verdict = match better {
                _ if (r - 1.0).abs() < 0.05 => "",
                Better::Higher if r > 1.0 => "better",
                Better::Lower if r < 1.0 => "better",
                _ => "worse",
            };
            (format!("{r:.2}x"), verdict)
        } else if a == b {
            ("=".to_owned(), "")
        } else {
            ("-".to_owned(), "")
        };
        let _ = writeln!(
            self.out,
            "{name:<22} {:>22} {:>22} {ratio:>9}  {verdict}",
            fmt(a),
            fmt(b)
        );
    }

    fn latency(&mut self, prefix: &str, a: &Latency, b: &Latency, all: bool) {
        if a.count == 0 && b.count == 0 {
            return;
        }
        let ms = |v: f64| fmt_ms(v);
        let mut rows: Vec<(&str, f64, f64)> = vec![
            ("p50", a.p50_us as f64, b.p50_us as f64),
            ("p90", a.p90_us as f64, b.p90_us as f64),
            ("p99", a.p99_us as f64, b.p99_us as f64),
        ];
        if all {
            rows.push(("p99.9", a.p999_us as f64, b.p999_us as f64));
            rows.push(("max", a.max_us as f64, b.max_us as f64));
            rows.push(("mean", a.mean_us, b.mean_us));
        }
        for (name, va, vb) in rows {
            self.number(&format!("{prefix} {name}"), va, vb, ms, Better::Lower);
        }
    }
}

/// The side-by-side table.
pub(crate) fn render(a: &Results, b: &Results, name_a: &str, name_b: &str) -> String {
    let mut t = Table { out: String::new() };
    let _ = writeln!(t.out, "{:<22} {name_a:>22} {name_b:>22} {:>9}", "", "b/a");
    t.text("target", &a.config.target, &b.config.target);
    t.text(
        "scenario",
        &a.config.scenario_text(),
        &b.config.scenario_text(),
    );
    t.text("mode", &a.config.mode_text(), &b.config.mode_text());
    t.text("length", &a.config.length_text(), &b.config.length_text());
    t.text("started", &a.started_at, &b.started_at);
    t.number(
        "requests",
        a.totals.requests as f64,
        b.totals.requests as f64,
        |v| fmt_int(v as u64),
        Better::Higher,
    );
    t.number(
        "throughput (req/s)",
        a.totals.rps,
        b.totals.rps,
        fmt_count,
        Better::Higher,
    );
    t.number(
        "error rate",
        a.totals.error_rate,
        b.totals.error_rate,
        fmt_pct,
        Better::Lower,
    );
    t.latency("latency", &a.latency, &b.latency, true);
    t.latency(
        "server",
        &a.server.response_time,
        &b.server.response_time,
        false,
    );
    t.latency("database", &a.server.db_time, &b.server.db_time, false);
    if let (Some(sa), Some(sb)) = (&a.schedule, &b.schedule) {
        t.number(
            "late",
            sa.late as f64,
            sb.late as f64,
            |v| fmt_int(v as u64),
            Better::Lower,
        );
        t.number(
            "unsent",
            sa.unsent as f64,
            sb.unsent as f64,
            |v| fmt_int(v as u64),
            Better::Lower,
        );
    }
    for oa in &a.operations {
        let Some(ob) = b.operations.iter().find(|o| o.name == oa.name) else {
            continue;
        };
        if a.operations.len() == 1 && b.operations.len() == 1 {
            break;
        }
        t.number(
            &format!("{} req", oa.name),
            oa.requests as f64,
            ob.requests as f64,
            |v| fmt_int(v as u64),
            Better::Higher,
        );
        t.latency(&oa.name, &oa.latency, &ob.latency, false);
    }
    t.out
}
