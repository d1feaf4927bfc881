//! `--report`: one self-contained HTML page (inline CSS and SVG, no script,
//! nothing fetched) with charts of latency over time, throughput over time
//! and the latency distribution, client and server side.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;

use super::results::{Latency, Quantile, Results, fmt_count, fmt_int, fmt_ms, fmt_pct};

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 320.0;
const LEFT: f64 = 76.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 48.0;

/// Escapes text for HTML and SVG.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The smallest "nice" number (1, 2, 2.5, 5 x 10^k) at or above `v`.
fn nice_ceil(v: f64) -> f64 {
    if !(v.is_finite() && v > 0.0) {
        return 1.0;
    }
    let mag = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * mag >= v * (1.0 - 1e-9) {
            return m * mag;
        }
    }
    10.0 * mag
}

struct Line {
    name: String,
    color: &'static str,
    dashed: bool,
    points: Vec<(f64, f64)>,
}

struct Chart {
    id: &'static str,
    title: String,
    x_label: String,
    y_label: String,
    x_ticks: Vec<(f64, String)>,
    x_range: (f64, f64),
    y_fmt: fn(f64) -> String,
    lines: Vec<Line>,
    markers: bool,
}

impl Chart {
    fn svg(&self) -> String {
        let mut s = String::new();
        let plot_w = WIDTH - LEFT - RIGHT;
        let plot_h = HEIGHT - TOP - BOTTOM;
        let (x0, x1) = self.x_range;
        let x_span = if x1 > x0 { x1 - x0 } else { 1.0 };
        let y_max_data = self
            .lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.1))
            .fold(0.0f64, f64::max);
        let y_max = nice_ceil(y_max_data);
        let px = |x: f64| LEFT + (x - x0) / x_span * plot_w;
        let py = |y: f64| TOP + plot_h - (y / y_max).clamp(0.0, 1.0) * plot_h;
        let _ = write!(
            s,
            r#"<svg class="chart" id="{}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{}">"#,
            self.id,
            esc(&self.title)
        );
        let _ = write!(
            s,
            r#"<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="white"/><text class="title" x="{LEFT}" y="24">{}</text>"#,
            esc(&self.title)
        );
        // Grid and y ticks.
        for i in 0..=5 {
            let v = y_max * f64::from(i) / 5.0;
            let y = py(v);
            let _ = write!(
                s,
                r#"<line class="grid" x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}"/><text class="tick" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                LEFT + plot_w,
                LEFT - 6.0,
                y + 4.0,
                esc(&(self.y_fmt)(v))
            );
        }
        for (x, label) in &self.x_ticks {
            let xp = px(*x);
            let _ = write!(
                s,
                r#"<line class="grid" x1="{xp:.1}" y1="{TOP}" x2="{xp:.1}" y2="{:.1}"/><text class="tick" x="{xp:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                TOP + plot_h,
                TOP + plot_h + 16.0,
                esc(label)
            );
        }
        let _ = write!(
            s,
            r#"<line class="axis" x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}"/><line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{:.1}"/>"#,
            TOP + plot_h,
            LEFT + plot_w,
            TOP + plot_h,
            TOP + plot_h
        );
        let _ = write!(
            s,
            r#"<text class="label" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text><text class="label" transform="translate(16 {:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
            LEFT + plot_w / 2.0,
            HEIGHT - 8.0,
            esc(&self.x_label),
            TOP + plot_h / 2.0,
            esc(&self.y_label)
        );
        // Data.
        for line in &self.lines {
            if line.points.is_empty() {
                continue;
            }
            let mut d = String::new();
            for (i, (x, y)) in line.points.iter().enumerate() {
                let _ = write!(
                    d,
                    "{}{:.1},{:.1}",
                    if i == 0 { "M" } else { " L" },
                    px(*x),
                    py(*y)
                );
            }
            let _ = write!(
                s,
                r#"<path class="data" data-series="{}" d="{d}" fill="none" stroke="{}" stroke-width="2"{}/>"#,
                esc(&line.name),
                line.color,
                if line.dashed {
                    r#" stroke-dasharray="6 4""#
                } else {
                    ""
                }
            );
            if self.markers && line.points.len() <= 120 {
                for (x, y) in &line.points {
                    let _ = write!(
                        s,
                        r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{}"><title>{}: {}</title></circle>"#,
                        px(*x),
                        py(*y),
                        line.color,
                        esc(&line.name),
                        esc(&(self.y_fmt)(*y))
                    );
                }
            }
        }
        // Legend, top right.
        let mut lx = WIDTH - RIGHT;
        for line in self.lines.iter().rev() {
            let w = 30.0 + 7.0 * line.name.chars().count() as f64;
            lx -= w + 12.0;
            let _ = write!(
                s,
                r#"<line x1="{lx:.1}" y1="20" x2="{:.1}" y2="20" stroke="{}" stroke-width="3"{}/><text class="legend" x="{:.1}" y="24">{}</text>"#,
                lx + 22.0,
                line.color,
                if line.dashed {
                    r#" stroke-dasharray="6 4""#
                } else {
                    ""
                },
                lx + 27.0,
                esc(&line.name)
            );
        }
        s.push_str("</svg>");
        s
    }
}

/// Axis labels: `0`, `0.25ms`, `20ms`, `1.5s`.
fn fmt_ms_axis(us: f64) -> String {
    let trim = |v: f64, unit: &str| {
        let t = format!("{v:.3}");
        let t = t.trim_end_matches('0').trim_end_matches('.');
        format!("{t}{unit}")
    };
    if us == 0.0 {
        "0".to_owned()
    } else if us >= 1e6 {
        trim(us / 1e6, "s")
    } else {
        trim(us / 1e3, "ms")
    }
}

fn fmt_rate_axis(v: f64) -> String {
    fmt_count(v)
}

fn time_ticks(n: usize) -> (Vec<(f64, String)>, (f64, f64)) {
    let last = n.max(1) as f64;
    let step = nice_ceil(last / 10.0).max(1.0);
    let mut ticks = Vec::new();
    let mut t = 0.0;
    while t <= last + 1e-9 {
        ticks.push((t, format!("{t}s")));
        t += step;
    }
    (ticks, (0.0, last))
}

/// Percentile (0..=100) to the spectrum's x: log10(1 / (1 - p)).
fn spectrum_x(p: f64, cap: f64) -> f64 {
    if p >= 100.0 {
        cap
    } else {
        (-(1.0 - p / 100.0).log10()).min(cap)
    }
}

/// The points a distribution of `count` values can resolve: percentiles
/// up to 1 - 1/count, then the maximum at `cap`.
fn spectrum_points(d: &[Quantile], count: u64, cap: f64) -> Vec<(f64, f64)> {
    let resolution = (count.max(1) as f64).log10();
    d.iter()
        .filter(|q| q.percentile >= 100.0 || spectrum_x(q.percentile, cap) <= resolution + 1e-9)
        .map(|q| (spectrum_x(q.percentile, cap), q.latency_us as f64))
        .collect()
}

fn charts(r: &Results) -> Vec<Chart> {
    let (ticks, range) = time_ticks(r.series.len());
    // Points sit at the middle of their second.
    let at = |i: u64| i as f64 + 0.5;
    let latency_over_time = Chart {
        id: "latency-over-time",
        title: "Latency over time (client side, per second)".to_owned(),
        x_label: "time since the measured phase started".to_owned(),
        y_label: "latency".to_owned(),
        x_ticks: ticks.clone(),
        x_range: range,
        y_fmt: fmt_ms_axis,
        markers: true,
        lines: vec![
            Line {
                name: "p50".to_owned(),
                color: "#2563eb",
                dashed: false,
                points: r
                    .series
                    .iter()
                    .map(|p| (at(p.second), p.p50_us as f64))
                    .collect(),
            },
            Line {
                name: "p90".to_owned(),
                color: "#16a34a",
                dashed: false,
                points: r
                    .series
                    .iter()
                    .map(|p| (at(p.second), p.p90_us as f64))
                    .collect(),
            },
            Line {
                name: "p99".to_owned(),
                color: "#ea580c",
                dashed: false,
                points: r
                    .series
                    .iter()
                    .map(|p| (at(p.second), p.p99_us as f64))
                    .collect(),
            },
            Line {
                name: "max".to_owned(),
                color: "#dc2626",
                dashed: true,
                points: r
                    .series
                    .iter()
                    .map(|p| (at(p.second), p.max_us as f64))
                    .collect(),
            },
        ],
    };
    let throughput = Chart {
        id: "throughput-over-time",
        title: "Throughput over time".to_owned(),
        x_label: "time since the measured phase started".to_owned(),
        y_label: "requests per second".to_owned(),
        x_ticks: ticks,
        x_range: range,
        y_fmt: fmt_rate_axis,
        markers: true,
        lines: vec![
            Line {
                name: "requests/s".to_owned(),
                color: "#2563eb",
                dashed: false,
                points: r.series.iter().map(|p| (at(p.second), p.rps)).collect(),
            },
            Line {
                name: "errors/s".to_owned(),
                color: "#dc2626",
                dashed: false,
                points: r
                    .series
                    .iter()
                    .map(|p| {
                        let share = if p.requests == 0 {
                            0.0
                        } else {
                            p.errors as f64 / p.requests as f64
                        };
                        (at(p.second), p.rps * share)
                    })
                    .collect(),
            },
        ],
    };
    let client = spectrum_points(&r.distribution, r.latency.count, 9.0);
    let server = spectrum_points(&r.server.distribution, r.server.responses, 9.0);
    let top = client
        .iter()
        .chain(&server)
        .map(|p| p.0)
        .filter(|x| *x < 9.0)
        .fold(1.0f64, f64::max)
        .ceil();
    let cap = top + 0.3;
    let labels = ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%", "99.9999%"];
    let mut dist_ticks: Vec<(f64, String)> = labels
        .iter()
        .enumerate()
        .take_while(|(i, _)| (*i as f64) <= top)
        .map(|(i, l)| (i as f64, (*l).to_owned()))
        .collect();
    dist_ticks.push((cap, "max".to_owned()));
    let distribution = Chart {
        id: "latency-distribution",
        title: "Latency distribution by percentile: client vs server".to_owned(),
        x_label: "percentile (log scale)".to_owned(),
        y_label: "latency".to_owned(),
        x_ticks: dist_ticks,
        x_range: (0.0, cap),
        y_fmt: fmt_ms_axis,
        markers: true,
        lines: vec![
            Line {
                name: "client".to_owned(),
                color: "#2563eb",
                dashed: false,
                points: spectrum_points(&r.distribution, r.latency.count, cap),
            },
            Line {
                name: "server (X-Response-Time)".to_owned(),
                color: "#9333ea",
                dashed: true,
                points: spectrum_points(&r.server.distribution, r.server.responses, cap),
            },
        ],
    };
    vec![latency_over_time, throughput, distribution]
}

fn latency_cells(l: &Latency) -> String {
    if l.count == 0 {
        return r#"<td colspan="7">-</td>"#.to_owned();
    }
    [
        l.min_us as f64,
        l.p50_us as f64,
        l.p90_us as f64,
        l.p99_us as f64,
        l.p999_us as f64,
        l.max_us as f64,
        l.mean_us,
    ]
    .iter()
    .map(|v| format!("<td>{}</td>", fmt_ms(*v)))
    .collect()
}

/// The report page.
pub(crate) fn html(r: &Results) -> String {
    let c = &r.config;
    let t = &r.totals;
    let mut h = String::new();
    let _ = write!(
        h,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>oms-cli load: {scenario} against {target}</title>
<style>
body {{ font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #111827; background: #f3f4f6; margin: 0; }}
main {{ max-width: 1000px; margin: 0 auto; padding: 24px; }}
h1 {{ font-size: 22px; margin: 0 0 4px; }}
h2 {{ font-size: 16px; margin: 28px 0 8px; }}
.sub {{ color: #4b5563; margin: 0 0 16px; }}
.cards {{ display: flex; flex-wrap: wrap; gap: 12px; }}
.card {{ background: #fff; border-radius: 8px; padding: 12px 16px; min-width: 140px; box-shadow: 0 1px 2px rgba(0,0,0,.08); }}
.card b {{ display: block; font-size: 22px; }}
.card span {{ color: #6b7280; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }}
.bad {{ color: #b91c1c; }} .good {{ color: #15803d; }}
table {{ border-collapse: collapse; background: #fff; border-radius: 8px; overflow: hidden; box-shadow: 0 1px 2px rgba(0,0,0,.08); }}
th, td {{ padding: 6px 12px; text-align: right; border-bottom: 1px solid #e5e7eb; }}
th:first-child, td:first-child {{ text-align: left; }}
th {{ background: #f9fafb; font-weight: 600; }}
.chart {{ width: 100%; height: auto; background: #fff; border-radius: 8px; box-shadow: 0 1px 2px rgba(0,0,0,.08); margin: 8px 0; }}
.chart .title {{ font-size: 15px; font-weight: 600; fill: #111827; }}
.chart .grid {{ stroke: #e5e7eb; stroke-width: 1; }}
.chart .axis {{ stroke: #6b7280; stroke-width: 1; }}
.chart .tick, .chart .legend {{ font-size: 12px; fill: #374151; }}
.chart .label {{ font-size: 12px; fill: #6b7280; }}
.warn {{ background: #fef3c7; border-left: 4px solid #d97706; padding: 8px 12px; margin: 8px 0; }}
footer {{ color: #6b7280; margin-top: 32px; font-size: 12px; }}
</style></head><body><main>
<h1>{scenario} against {target}</h1>
<p class="sub">{mode} · {length} · {threads} client threads · started {started}{interrupted}</p>
"#,
        scenario = esc(&c.scenario_text()),
        target = esc(&c.target),
        mode = esc(&c.mode_text()),
        length = esc(&c.length_text()),
        threads = c.threads,
        started = esc(&r.started_at),
        interrupted = if r.interrupted {
            " · <b class=\"bad\">interrupted</b>"
        } else {
            ""
        },
    );
    let err_class = if t.errors + t.unsent > 0 {
        "bad"
    } else {
        "good"
    };
    let _ = write!(
        h,
        r#"<div class="cards">
<div class="card"><span>throughput</span><b>{rps}</b>req/s</div>
<div class="card"><span>requests</span><b>{requests}</b>in {elapsed:.2}s</div>
<div class="card"><span>errors</span><b class="{err_class}">{rate}</b>{errors} of {total}</div>
<div class="card"><span>p50</span><b>{p50}</b>client</div>
<div class="card"><span>p99</span><b>{p99}</b>client</div>
<div class="card"><span>p99 server</span><b>{sp99}</b>X-Response-Time</div>
</div>
"#,
        rps = fmt_count(t.rps),
        requests = fmt_int(t.requests),
        elapsed = t.elapsed_s,
        rate = fmt_pct(t.error_rate),
        errors = fmt_int(t.errors + t.unsent),
        total = fmt_int(t.requests + t.unsent),
        p50 = fmt_ms(r.latency.p50_us as f64),
        p99 = fmt_ms(r.latency.p99_us as f64),
        sp99 = if r.server.responses > 0 {
            fmt_ms(r.server.response_time.p99_us as f64)
        } else {
            "-".to_owned()
        },
    );
    for w in super::output::warnings(r) {
        let _ = write!(h, r#"<p class="warn">{}</p>"#, esc(&w));
    }
    if !r.thresholds.is_empty() {
        h.push_str("<h2>Thresholds</h2><table><tr><th>threshold</th><th>limit</th><th>actual</th><th>result</th></tr>");
        for th in &r.thresholds {
            let _ = write!(
                h,
                r#"<tr><td>--{}</td><td>{}</td><td>{}</td><td class="{}">{}</td></tr>"#,
                esc(&th.name),
                esc(&th.limit),
                esc(&th.actual),
                if th.passed { "good" } else { "bad" },
                if th.passed { "passed" } else { "FAILED" }
            );
        }
        h.push_str("</table>");
    }
    h.push_str("<h2>Charts</h2>\n");
    for chart in charts(r) {
        h.push_str(&chart.svg());
        h.push('\n');
    }
    h.push_str("<h2>Latency</h2><table><tr><th></th><th>min</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th><th>mean</th></tr>");
    let mut rows = vec![
        ("client", &r.latency),
        ("server (X-Response-Time)", &r.server.response_time),
        ("database (X-DB-Time)", &r.server.db_time),
    ];
    if let Some(s) = &r.schedule {
        rows.push(("send lag (open loop)", &s.lag));
    }
    for (name, l) in rows {
        let _ = write!(h, "<tr><td>{}</td>{}</tr>", esc(name), latency_cells(l));
    }
    h.push_str("</table>");
    if !r.operations.is_empty() {
        h.push_str("<h2>Operations</h2><table><tr><th>operation</th><th>requests</th><th>errors</th><th>min</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th><th>mean</th></tr>");
        for op in &r.operations {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td>{}</tr>",
                esc(&op.name),
                fmt_int(op.requests),
                fmt_int(op.errors),
                latency_cells(&op.latency)
            );
        }
        h.push_str("</table>");
    }
    h.push_str("<h2>Responses</h2><table><tr><th>status or error</th><th>count</th></tr>");
    for (s, n) in &r.statuses {
        let _ = write!(
            h,
            "<tr><td>HTTP {}</td><td>{}</td></tr>",
            esc(s),
            fmt_int(*n)
        );
    }
    for (code, n) in &r.error_codes {
        let _ = write!(
            h,
            "<tr><td>code <code>{}</code></td><td>{}</td></tr>",
            esc(code),
            fmt_int(*n)
        );
    }
    for (kind, n) in &r.transport_errors {
        let _ = write!(
            h,
            "<tr><td>no response: {}</td><td>{}</td></tr>",
            esc(kind),
            fmt_int(*n)
        );
    }
    if t.unsent > 0 {
        let _ = write!(
            h,
            "<tr><td>unsent (due, never sent)</td><td>{}</td></tr>",
            fmt_int(t.unsent)
        );
    }
    h.push_str("</table>");
    if let Some(s) = &r.schedule {
        let _ = write!(
            h,
            "<h2>Schedule</h2><table><tr><th>rate</th><th>connections</th><th>due</th><th>sent</th><th>late (&gt; {}ms)</th><th>unsent</th></tr><tr><td>{} req/s</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr></table>",
            s.late_after_ms,
            fmt_count(s.rate),
            s.connections,
            fmt_int(s.expected),
            fmt_int(s.sent),
            fmt_int(s.late),
            fmt_int(s.unsent)
        );
    }
    h.push_str("<h2>Configuration</h2><table>");
    let rows: Vec<(&str, String)> = vec![
        ("target", c.target.clone()),
        ("scenario", c.scenario_text()),
        ("mode", c.mode_text()),
        ("length", c.length_text()),
        ("timeout", format!("{}s", c.timeout_s)),
        ("client threads", c.threads.to_string()),
        (
            "token",
            if c.auth {
                "yes".to_owned()
            } else {
                "no".to_owned()
            },
        ),
        ("run id", c.run_id.clone()),
        (
            "fixtures",
            if r.fixtures.products > 0 {
                format!(
                    "{} products ({}*), {} orders, seeded in {:.2}s",
                    r.fixtures.products,
                    r.fixtures.sku_prefix,
                    r.fixtures.orders,
                    r.fixtures.seconds
                )
            } else {
                "none".to_owned()
            },
        ),
        ("warmup requests (excluded)", fmt_int(t.warmup_requests)),
    ];
    for (k, v) in rows {
        let _ = write!(h, "<tr><td>{}</td><td>{}</td></tr>", esc(k), esc(&v));
    }
    h.push_str("</table>");
    let _ = writeln!(
        h,
        "<footer>{} {} · latency is client-side unless marked server; {}</footer></main></body></html>",
        esc(&r.tool),
        esc(&r.version),
        if r.schedule.is_some() {
            "open loop: latency counts from each request's scheduled send time"
        } else {
            "closed loop: latency counts from each request's send time"
        }
    );
    h
}

/// Writes `--report`.
pub(crate) fn write(r: &Results, path: &Path) -> anyhow::Result<()> {
    std::fs::write(path, html(r)).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_numbers() {
        assert_eq!(nice_ceil(0.0), 1.0);
        assert_eq!(nice_ceil(7.0), 10.0);
        assert_eq!(nice_ceil(1.0), 1.0);
        assert_eq!(nice_ceil(1.1), 2.0);
        assert_eq!(nice_ceil(2.2), 2.5);
        assert_eq!(nice_ceil(430.0), 500.0);
    }

    #[test]
    fn axis_labels() {
        assert_eq!(fmt_ms_axis(0.0), "0");
        assert_eq!(fmt_ms_axis(100_000.0), "100ms");
        assert_eq!(fmt_ms_axis(2_500.0), "2.5ms");
        assert_eq!(fmt_ms_axis(250.0), "0.25ms");
        assert_eq!(fmt_ms_axis(1_500_000.0), "1.5s");
    }

    #[test]
    fn spectrum_stops_at_the_resolution_of_the_sample() {
        let d: Vec<Quantile> = [0.0, 90.0, 99.0, 99.9, 99.99, 100.0]
            .iter()
            .map(|p| Quantile {
                percentile: *p,
                latency_us: 1,
            })
            .collect();
        let xs: Vec<f64> = spectrum_points(&d, 1000, 5.0).iter().map(|p| p.0).collect();
        assert_eq!(xs.len(), 5, "{xs:?}");
        assert_eq!(xs.last(), Some(&5.0));
    }

    #[test]
    fn escaping() {
        assert_eq!(
            esc(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn spectrum_axis() {
        assert!((spectrum_x(90.0, 9.0) - 1.0).abs() < 1e-9);
        assert!((spectrum_x(99.9, 9.0) - 3.0).abs() < 1e-9);
        assert_eq!(spectrum_x(100.0, 5.3), 5.3);
        assert_eq!(spectrum_x(0.0, 5.3), 0.0);
    }
}
