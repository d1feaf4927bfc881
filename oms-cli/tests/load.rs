//! `oms-cli load` against a real `oms-cli serve` (spawned on 127.0.0.1:0
//! with a temporary SQLite database, killed when the test ends).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn oms_cli() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_oms-cli"));
    cmd.env_remove("RUST_LOG").env_remove("OMS_LOAD_TOKEN");
    cmd
}

fn repo_config() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../oms.toml")
}

/// A running server; killed on drop.
struct Server {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start() -> Self {
        Self::start_with(&repo_config())
    }

    fn start_with(config: &Path) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = format!("sqlite://{}?mode=rwc", dir.path().join("oms.db").display());
        let mut child = oms_cli()
            .args(["serve", "--config"])
            .arg(config)
            .args([
                "--bind",
                "127.0.0.1:0",
                "--workers",
                "2",
                "--log-level",
                "warn",
            ])
            .args(["--database-url", &db])
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn server");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let deadline = Instant::now() + Duration::from_secs(60);
        let addr = loop {
            assert!(Instant::now() < deadline, "server did not start");
            let line = lines.next().expect("server exited early").expect("read");
            if let Some(rest) = line.strip_prefix("listening on ") {
                break rest.rsplit("://").next().unwrap_or(rest).trim().to_owned();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Self {
            child,
            url: format!("http://{addr}"),
            dir,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `oms-cli load --target <this server> --quiet <args>`.
    fn load(&self, args: &[&str]) -> Output {
        run_load(&self.url, args)
    }
}

fn run_load(url: &str, args: &[&str]) -> Output {
    oms_cli()
        .args(["load", "--target", url, "--quiet", "--timeout", "5s"])
        .args(args)
        .output()
        .expect("run oms-cli load")
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(out: &Output) {
    assert!(out.status.success(), "{}", text(out));
}

fn json(path: &Path) -> Value {
    let raw = std::fs::read_to_string(path).expect("read json");
    serde_json::from_str(&raw).expect("valid json")
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not an integer: {v}"))
}

#[test]
fn users_mode_sends_exactly_the_requested_count() {
    let server = Server::start();
    let out_path = server.path("users.json");
    let out = server.load(&[
        "--scenario",
        "health",
        "--users",
        "8",
        "--requests",
        "200",
        "--warmup",
        "300ms",
        "--out",
        out_path.to_str().expect("path"),
    ]);
    ok(&out);
    let r = json(&out_path);
    assert_eq!(u(&r["totals"]["requests"]), 200, "{r:#}");
    assert_eq!(u(&r["statuses"]["200"]), 200);
    assert_eq!(u(&r["latency"]["count"]), 200);
    assert!(
        u(&r["totals"]["warmup_requests"]) > 0,
        "warmup ran and was excluded"
    );
    assert_eq!(r["config"]["mode"], "closed");
    assert_eq!(u(&r["config"]["users"]), 8);
    // The server's own timings were collected for every response.
    assert_eq!(u(&r["server"]["responses"]), 200);
    assert!(u(&r["server"]["response_time"]["p50_us"]) <= u(&r["latency"]["p99_us"]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("requests     200 in"), "{stdout}");
    assert!(stdout.contains("closed loop, 8 users"), "{stdout}");

    // The single-user test.
    let out = server.load(&[
        "--users",
        "1",
        "--requests",
        "25",
        "--out",
        out_path.to_str().expect("path"),
    ]);
    ok(&out);
    let r = json(&out_path);
    assert_eq!(u(&r["totals"]["requests"]), 25);
    assert_eq!(u(&r["config"]["users"]), 1);
}

#[test]
fn rate_mode_keeps_the_schedule() {
    let server = Server::start();
    let out_path = server.path("rate.json");
    let out = server.load(&[
        "--scenario",
        "health",
        "--rate",
        "200",
        "--duration",
        "2s",
        "--connections",
        "16",
        "--out",
        out_path.to_str().expect("path"),
    ]);
    ok(&out);
    let r = json(&out_path);
    let requests = u(&r["totals"]["requests"]);
    assert!(
        (380..=400).contains(&requests),
        "about 400 requests, got {requests}: {}",
        text(&out)
    );
    let schedule = &r["schedule"];
    assert_eq!(u(&schedule["expected"]), 400, "{schedule:#}");
    assert_eq!(u(&schedule["sent"]) + u(&schedule["unsent"]), 400);
    assert_eq!(u(&schedule["connections"]), 16);
    assert!(u(&schedule["lag"]["count"]) == requests);
    let rps = r["totals"]["rps"].as_f64().expect("rps");
    assert!((180.0..=205.0).contains(&rps), "{rps}");
    // Two whole seconds in the series, about 200 each.
    let series = r["series"].as_array().expect("series");
    assert_eq!(series.len(), 2, "{series:?}");
    for p in series {
        assert!((170..=215).contains(&u(&p["requests"])), "{p}");
    }

    // With --requests the open loop sends exactly that many.
    let out = server.load(&[
        "--rate",
        "400",
        "--requests",
        "120",
        "--out",
        out_path.to_str().expect("path"),
    ]);
    ok(&out);
    let r = json(&out_path);
    assert_eq!(u(&r["totals"]["requests"]), 120);
    assert_eq!(u(&r["schedule"]["expected"]), 120);
    assert_eq!(u(&r["schedule"]["unsent"]), 0);
}

#[test]
fn bad_flags_are_refused_with_clear_messages() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--scenario", "get-products"],
            "unknown scenario \"get-products\"",
        ),
        (
            &["--mix", "get-product=70,create-ordr=30"],
            "unknown scenario \"create-ordr\" in mix",
        ),
        (
            &["--mix", "get-product=70,create-order=0"],
            "bad weight \"0\" for create-order",
        ),
        (&["--mix", "get-product=seventy"], "bad weight \"seventy\""),
        (&["--mix", "get-product"], "expected NAME=WEIGHT"),
        (
            &["--scenario", "health", "--mix", "health=1"],
            "--mix applies to --scenario mixed",
        ),
        (&["--users", "4", "--rate", "10"], "--rate"),
        (&["--users", "0"], "--users must be at least 1"),
        (&["--rate", "0"], "--rate must be a positive number"),
        (&["--duration", "ten"], "bad duration \"ten\""),
        (&["--duration", "1s", "--requests", "5"], "--requests"),
        (&["--max-error-rate", "5"], "must be between 0 and 1"),
        (&["--connections", "8"], "--rate"),
    ];
    for (args, want) in cases {
        // Nothing listens there: every case must fail before connecting.
        let out = run_load("http://127.0.0.1:9", args);
        assert!(!out.status.success(), "{args:?} accepted: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(want),
            "{args:?}: want {want:?} in:\n{stderr}"
        );
    }
    let out = oms_cli()
        .args(["load", "--users", "2"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--target"));

    let out = run_load("https://127.0.0.1:9", &[]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("https is not supported"),
        "{}",
        text(&out)
    );
    // A server that is not there: a clear error, exit 1.
    let out = run_load("http://127.0.0.1:9", &["--requests", "5"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot reach http://127.0.0.1:9"),
        "{}",
        text(&out)
    );
}

#[test]
fn thresholds_fail_the_exit_status_and_say_which() {
    let server = Server::start();
    let out = server.load(&[
        "--users",
        "2",
        "--requests",
        "50",
        "--max-p99",
        "1us",
        "--min-rps",
        "100000000",
        "--max-error-rate",
        "0.01",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("threshold FAILED: p99 = ") && stderr.contains("above --max-p99 0.001ms"),
        "{stderr}"
    );
    assert!(
        stderr.contains("threshold FAILED: throughput = ")
            && stderr.contains("below --min-rps 100,000,000"),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("threshold passed: error rate = 0.00%"),
        "{stdout}"
    );

    let out = server.load(&[
        "--users",
        "2",
        "--requests",
        "50",
        "--max-p99",
        "5s",
        "--min-rps",
        "1",
        "--max-error-rate",
        "1%",
    ]);
    ok(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.matches("threshold passed").count(), 3, "{stdout}");
}

#[test]
fn error_responses_are_counted_by_status_and_code() {
    let server = Server::start();
    let out_path = server.path("errors.json");
    // Under a path prefix the server does not have, every call is a 404.
    let target = format!("{}/no-such-prefix", server.url);
    let out = run_load(
        &target,
        &[
            "--users",
            "2",
            "--requests",
            "40",
            "--max-error-rate",
            "0.01",
            "--out",
            out_path.to_str().expect("path"),
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let r = json(&out_path);
    assert_eq!(u(&r["statuses"]["404"]), 40, "{r:#}");
    assert_eq!(u(&r["error_codes"]["not_found"]), 40);
    assert_eq!(u(&r["totals"]["http_errors"]), 40);
    assert_eq!(r["totals"]["error_rate"].as_f64(), Some(1.0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("threshold FAILED: error rate = 100.00%"),
        "{stderr}"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("not_found 40"),
        "{}",
        text(&out)
    );
}

#[test]
fn every_scenario_runs_and_json_and_csv_round_trip() {
    let server = Server::start();
    let out_path = server.path("mixed.json");
    let csv_path = server.path("mixed.csv");
    for scenario in [
        "get-product",
        "list-products",
        "create-order",
        "get-order",
        "order-lifecycle",
    ] {
        let out = server.load(&[
            "--scenario",
            scenario,
            "--users",
            "3",
            "--requests",
            "30",
            "--products",
            "5",
            "--orders",
            "5",
        ]);
        ok(&out);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("errors       0 (0.00%)"),
            "{scenario}: {}",
            text(&out)
        );
    }
    let out = server.load(&[
        "--mix",
        "get-product=60,create-order=20,get-order=10,order-lifecycle=10",
        "--rate",
        "150",
        "--duration",
        "2s",
        "--products",
        "10",
        "--orders",
        "10",
        "--out",
        out_path.to_str().expect("path"),
        "--csv",
        csv_path.to_str().expect("path"),
    ]);
    ok(&out);
    let r = json(&out_path);
    for key in [
        "config",
        "fixtures",
        "totals",
        "latency",
        "distribution",
        "operations",
        "statuses",
        "error_codes",
        "transport_errors",
        "server",
        "schedule",
        "series",
    ] {
        assert!(!r[key].is_null(), "missing {key}: {r:#}");
    }
    assert_eq!(r["config"]["scenario"], "mixed");
    assert_eq!(
        r["config"]["mix"],
        "get-product=60,create-order=20,get-order=10,order-lifecycle=10"
    );
    assert_eq!(u(&r["fixtures"]["products"]), 10);
    assert_eq!(u(&r["fixtures"]["orders"]), 10);
    let prefix = r["fixtures"]["sku_prefix"].as_str().expect("prefix");
    assert!(
        prefix.starts_with("LOAD-") && prefix.ends_with('-'),
        "{prefix}"
    );
    let ops: Vec<&str> = r["operations"]
        .as_array()
        .expect("ops")
        .iter()
        .filter_map(|o| o["name"].as_str())
        .collect();
    for op in [
        "get-product",
        "create-order",
        "get-order",
        "confirm-order",
        "ship-order",
    ] {
        assert!(ops.contains(&op), "{op} missing from {ops:?}");
    }
    let total = u(&r["totals"]["requests"]);
    let series = r["series"].as_array().expect("series");
    assert_eq!(series.iter().map(|p| u(&p["requests"])).sum::<u64>(), total);
    assert_eq!(
        u(&r["statuses"]["200"]) + u(&r["statuses"]["201"]),
        total,
        "{:#}",
        r["statuses"]
    );

    // The CSV is the same series.
    let csv = std::fs::read_to_string(&csv_path).expect("csv");
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("second,requests,errors,rps,p50_ms,p90_ms,p99_ms,max_ms")
    );
    let rows: Vec<Vec<f64>> = lines
        .map(|l| {
            l.split(',')
                .map(|f| f.parse::<f64>().expect("number"))
                .collect()
        })
        .collect();
    assert_eq!(rows.len(), series.len());
    for (row, p) in rows.iter().zip(series) {
        assert_eq!(row.len(), 8);
        assert_eq!(row[0] as u64, u(&p["second"]));
        assert_eq!(row[1] as u64, u(&p["requests"]));
        assert_eq!(row[2] as u64, u(&p["errors"]));
        assert!(
            (row[6] * 1000.0 - u(&p["p99_us"]) as f64).abs() <= 1.0,
            "{row:?} vs {p}"
        );
        assert!(row[4] <= row[6] && row[6] <= row[7], "{row:?}");
    }

    // The tool reads its own JSON back: compare a run with itself.
    let out = oms_cli()
        .args(["load", "compare"])
        .arg(&out_path)
        .arg(&out_path)
        .output()
        .expect("compare");
    ok(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("throughput (req/s)") && stdout.contains("1.00x"),
        "{stdout}"
    );
}

#[test]
fn compare_prints_both_runs_and_the_ratios() {
    let server = Server::start();
    let a = server.path("a.json");
    let b = server.path("b.json");
    ok(&server.load(&[
        "--users",
        "2",
        "--requests",
        "100",
        "--out",
        a.to_str().expect("path"),
    ]));
    // b: the same run, edited to twice the throughput and half the p99.
    let mut r = json(&a);
    let rps = r["totals"]["rps"].as_f64().expect("rps");
    r["totals"]["rps"] = Value::from(rps * 2.0);
    let p99 = u(&r["latency"]["p99_us"]).max(2);
    r["latency"]["p99_us"] = Value::from(p99 / 2);
    std::fs::write(&b, serde_json::to_string(&r).expect("json")).expect("write");

    let out = oms_cli()
        .args(["load", "compare"])
        .arg(&a)
        .arg(&b)
        .output()
        .expect("compare");
    ok(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("a.json") && stdout.contains("b.json"),
        "{stdout}"
    );
    let line = |name: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} line in\n{stdout}"))
            .to_owned()
    };
    let throughput = line("throughput (req/s)");
    assert!(
        throughput.contains("2.00x") && throughput.contains("better"),
        "{throughput}"
    );
    let p99_line = line("latency p99 ");
    assert!(
        p99_line.contains("0.5") && p99_line.contains("better"),
        "{p99_line}"
    );
    assert!(line("latency p50").contains("1.00x"), "{stdout}");

    let missing = oms_cli()
        .args(["load", "compare"])
        .arg(&a)
        .arg(server.path("nope.json"))
        .output()
        .expect("compare");
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nope.json"));
}

#[test]
fn report_is_self_contained_html_with_svg_charts() {
    let server = Server::start();
    let report = server.path("report.html");
    ok(&server.load(&[
        "--scenario",
        "get-product",
        "--rate",
        "100",
        "--duration",
        "2s",
        "--products",
        "5",
        "--max-p99",
        "10s",
        "--report",
        report.to_str().expect("path"),
    ]));
    let html = std::fs::read_to_string(&report).expect("report");
    assert!(html.starts_with("<!DOCTYPE html>"));
    let charts: Vec<&str> = html
        .split("<svg")
        .skip(1)
        .map(|s| s.split("</svg>").next().unwrap_or(""))
        .collect();
    assert!(charts.len() >= 3, "{} charts", charts.len());
    for id in [
        "latency-over-time",
        "throughput-over-time",
        "latency-distribution",
    ] {
        let chart = charts
            .iter()
            .find(|c| c.contains(&format!("id=\"{id}\"")))
            .unwrap_or_else(|| panic!("no {id} chart"));
        let path = chart
            .split("<path class=\"data\"")
            .nth(1)
            .unwrap_or_else(|| panic!("{id}: no data path"));
        let d = path
            .split("d=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .expect("d attribute");
        assert!(d.starts_with('M') && d.contains(" L"), "{id}: {d}");
    }
    // Nothing is fetched: no scripts, stylesheets, images or fonts from anywhere.
    for needle in ["<script", "src=", "href=", "url(", "@import", "<link"] {
        assert!(!html.contains(needle), "report contains {needle}");
    }
    assert!(html.contains("--max-p99") && html.contains("passed"));
}

#[test]
fn token_is_sent_as_a_bearer_header() {
    // A server with auth on and one write key.
    let out = oms_cli()
        .args(["keys", "generate", "--name", "load", "--roles", "write"])
        .output()
        .expect("keys");
    ok(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let token = stdout.lines().next().expect("token").trim().to_owned();
    let snippet = &stdout[stdout.find("[[auth.keys]]").expect("snippet")..];
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("oms.toml");
    std::fs::write(&config, format!("[auth]\nenabled = true\n{snippet}")).expect("config");
    let server = Server::start_with(&config);

    let out = server.load(&[
        "--scenario",
        "get-product",
        "--requests",
        "10",
        "--products",
        "3",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unauthenticated") && stderr.contains("--token"),
        "{stderr}"
    );

    let out = server.load(&[
        "--scenario",
        "get-product",
        "--requests",
        "10",
        "--products",
        "3",
        "--token",
        &token,
    ]);
    ok(&out);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("statuses     200 10"),
        "{}",
        text(&out)
    );
}

/// A plain HTTP/1.1 server that answers every request with `200 {}` after
/// `delay`, one request at a time per connection. Its threads end with the
/// test process.
fn slow_server(delay: Duration) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || answer_slowly(stream, delay));
        }
    });
    format!("http://{addr}")
}

fn answer_slowly(mut stream: TcpStream, delay: Duration) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        // GET requests only: no body to skip.
        buf.drain(..head_end);
        std::thread::sleep(delay);
        let reply = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nx-response-time: 50.000ms\r\nx-db-time: 0.000ms\r\n\r\n{}";
        if stream.write_all(reply).is_err() {
            return;
        }
    }
}

#[test]
fn open_loop_does_not_hide_a_slow_server() {
    // 2 connections x 50ms per answer = at most 40 req/s, asked for 100:
    // requests queue for a free connection and their wait is latency.
    let url = slow_server(Duration::from_millis(50));
    let dir = tempfile::tempdir().expect("tempdir");
    let out_path = dir.path().join("slow.json");
    let out = run_load(
        &url,
        &[
            "--rate",
            "100",
            "--duration",
            "2s",
            "--connections",
            "2",
            "--out",
            out_path.to_str().expect("path"),
        ],
    );
    ok(&out);
    let r = json(&out_path);
    let sent = u(&r["schedule"]["sent"]);
    let unsent = u(&r["schedule"]["unsent"]);
    assert_eq!(u(&r["schedule"]["expected"]), 200);
    assert_eq!(sent + unsent, 200);
    assert!((60..=90).contains(&sent), "about 80 sent: {sent}");
    assert!(
        u(&r["schedule"]["late"]) * 10 >= sent * 8,
        "{:#}",
        r["schedule"]
    );
    // The server says 50ms; the client-side latency counts the queue, which
    // grows to over a second by the end.
    // (HDR histograms keep 3 significant digits.)
    let server_p99 = u(&r["server"]["response_time"]["p99_us"]);
    assert!((50_000..=50_050).contains(&server_p99), "{server_p99}");
    assert!(u(&r["latency"]["p50_us"]) > 300_000, "{:#}", r["latency"]);
    assert!(u(&r["latency"]["max_us"]) > 900_000, "{:#}", r["latency"]);
    // Never sent is an error, and the run says so.
    assert!(r["totals"]["error_rate"].as_f64().expect("rate") > 0.5);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("were sent more than 1ms after they were due"),
        "{stderr}"
    );
    assert!(stderr.contains("were never sent"), "{stderr}");

    // The closed loop on the same server measures the service time.
    let out = run_load(
        &url,
        &[
            "--users",
            "2",
            "--requests",
            "20",
            "--out",
            out_path.to_str().expect("path"),
        ],
    );
    ok(&out);
    let r = json(&out_path);
    let p99 = u(&r["latency"]["p99_us"]);
    assert!((50_000..200_000).contains(&p99), "{p99}");
}
