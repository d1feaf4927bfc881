//! The validated plan of a load run, built from the flags.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use hyper::Uri;
use hyper::header::{HeaderName, HeaderValue};

use super::args::RunArgs;
use super::results::ConfigInfo;
use super::scenario::{Mix, Scenario};
use super::thresholds::Thresholds;

/// Parses `10s`, `500ms`, `250us`, `2m`, `1h`, `1.5s`; a bare number is
/// seconds (clap value parser).
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let bad = || format!("bad duration {s:?}: expected a number and a unit, e.g. 10s, 500ms, 2m");
    let value: f64 = number.parse().map_err(|_| bad())?;
    let secs = match unit.trim() {
        "" | "s" | "sec" | "secs" => value,
        "ms" => value / 1e3,
        "us" | "µs" => value / 1e6,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(bad()),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| bad())
}

/// Parses a fraction `0.01` or a percentage `1%`, in 0..=1 (clap value parser).
pub(crate) fn parse_fraction(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let value = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|_| format!("bad fraction {s:?}: expected e.g. 0.01 or 1%"))?;
    if !(0.0..=1.0).contains(&value) {
        return Err(format!(
            "bad fraction {s:?}: must be between 0 and 1 (0% and 100%)"
        ));
    }
    Ok(value)
}

/// The soft limit on open files, where the system says (Linux).
fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_open_file_limit(&limits)
}

fn parse_open_file_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Where the load goes: a plain-HTTP base URL.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The URL as given, without a trailing slash.
    pub(crate) url: String,
    host: String,
    port: u16,
    /// The `Host` header.
    pub(crate) authority: String,
    /// Path prefix, empty or starting with `/`, no trailing slash.
    pub(crate) prefix: String,
}

impl Target {
    /// Parses `http://host[:port][/prefix]`.
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        let text = s.trim();
        let uri: Uri = text
            .parse()
            .map_err(|e| format!("bad --target {s:?}: {e}; expected e.g. http://127.0.0.1:8000"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(format!(
                    "bad --target {s:?}: https is not supported; give the server's plain HTTP address"
                ));
            }
            Some(other) => return Err(format!("bad --target {s:?}: unsupported scheme {other:?}")),
            None => {
                return Err(format!(
                    "bad --target {s:?}: expected a URL such as http://127.0.0.1:8000"
                ));
            }
        }
        let authority = uri
            .authority()
            .ok_or_else(|| format!("bad --target {s:?}: no host"))?;
        if authority.as_str().contains('@') {
            return Err(format!(
                "bad --target {s:?}: credentials in the URL are not supported; use --token"
            ));
        }
        if uri.query().is_some() {
            return Err(format!("bad --target {s:?}: a query string is not allowed"));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let prefix = uri.path().trim_end_matches('/').to_owned();
        Ok(Self {
            url: text.trim_end_matches('/').to_owned(),
            host,
            port: authority.port_u16().unwrap_or(80),
            authority: authority.as_str().to_owned(),
            prefix,
        })
    }

    /// Resolves the host once; every connection goes to that address.
    pub(crate) async fn resolve(&self) -> anyhow::Result<SocketAddr> {
        tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .with_context(|| format!("cannot resolve {}", self.host))?
            .next()
            .with_context(|| format!("{} resolves to no address", self.host))
    }
}

/// Closed or open loop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Mode {
    /// N users, each waiting for its answer before the next request.
    Closed { users: usize },
    /// A fixed arrival rate over a pool of connections.
    Open { rate: f64, connections: usize },
}

impl Mode {
    /// Connections (= concurrent workers).
    pub(crate) const fn workers(self) -> usize {
        match self {
            Self::Closed { users } => users,
            Self::Open { connections, .. } => connections,
        }
    }
}

/// When the measured phase ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// After this long.
    Duration(Duration),
    /// After exactly this many requests.
    Requests(u64),
}

/// Everything a run needs, validated.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// The first target: seeds the fixtures, gives the `Host` header.
    pub(crate) target: Target,
    /// Every target, the first included; worker `i` uses `targets[i % n]`.
    pub(crate) targets: Vec<Target>,
    pub(crate) token: Option<String>,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) scenario: Scenario,
    pub(crate) mix: Option<Mix>,
    pub(crate) mode: Mode,
    pub(crate) stop: Stop,
    pub(crate) warmup: Duration,
    pub(crate) timeout: Duration,
    pub(crate) threads: usize,
    pub(crate) products: usize,
    pub(crate) orders: usize,
    /// Lines per created order.
    pub(crate) order_items: usize,
    pub(crate) late_after: Duration,
    pub(crate) run_id: String,
    pub(crate) thresholds: Thresholds,
    pub(crate) progress: bool,
    pub(crate) out: Option<PathBuf>,
    pub(crate) csv: Option<PathBuf>,
    pub(crate) report: Option<PathBuf>,
}

impl Plan {
    /// Validates the flags.
    pub(crate) fn from_args(a: &RunArgs) -> anyhow::Result<Self> {
        let targets = a
            .target
            .iter()
            .map(|t| Target::parse(t))
            .collect::<Result<Vec<_>, _>>()
            .map_err(anyhow::Error::msg)?;
        let Some(target) = targets.first().cloned() else {
            bail!("--target is required, e.g. --target http://127.0.0.1:8000");
        };
        if let Some(other) = targets.iter().find(|t| t.prefix != target.prefix) {
            bail!(
                "every --target must have the same path prefix: {} has {:?}, {} has {:?}",
                target.url,
                target.prefix,
                other.url,
                other.prefix
            );
        }
        let (scenario, mix) = match (a.scenario, a.mix.clone()) {
            (None, None) => (Scenario::Health, None),
            (None | Some(Scenario::Mixed), Some(mix)) => (Scenario::Mixed, Some(mix)),
            (Some(Scenario::Mixed), None) => (
                Scenario::Mixed,
                Some(Mix::parse(Mix::DEFAULT).map_err(anyhow::Error::msg)?),
            ),
            (Some(other), Some(_)) => {
                bail!("--mix applies to --scenario mixed, not to --scenario {other}")
            }
            (Some(other), None) => (other, None),
        };
        let mode = match (a.users, a.rate) {
            (Some(_), Some(_)) => {
                bail!("choose one of --users (closed loop) and --rate (open loop)")
            }
            (users, None) => {
                let users = users.unwrap_or(1);
                if users == 0 {
                    bail!("--users must be at least 1");
                }
                Mode::Closed { users }
            }
            (None, Some(rate)) => {
                if !(rate.is_finite() && rate > 0.0) {
                    bail!("--rate must be a positive number of requests per second, got {rate}");
                }
                let connections = a.connections.unwrap_or(64);
                if connections == 0 {
                    bail!("--connections must be at least 1");
                }
                Mode::Open { rate, connections }
            }
        };
        if let Some(limit) = open_file_limit() {
            // Each connection is a file; leave room for the rest.
            let needed = mode.workers() as u64 + 64;
            if needed > limit {
                bail!(
                    "{} connections need about {needed} open files, but this process may open only {limit} \
                     (raise it first, e.g. `ulimit -n {}`)",
                    mode.workers(),
                    (needed * 2).next_power_of_two()
                );
            }
        }
        let stop = match (a.duration, a.requests) {
            (Some(_), Some(_)) => bail!("choose one of --duration and --requests"),
            (Some(d), None) => {
                if d.is_zero() {
                    bail!("--duration must be more than 0");
                }
                Stop::Duration(d)
            }
            (None, Some(0)) => bail!("--requests must be at least 1"),
            (None, Some(n)) => Stop::Requests(n),
            (None, None) => Stop::Duration(Duration::from_secs(10)),
        };
        if a.timeout.is_zero() {
            bail!("--timeout must be more than 0");
        }
        let threads = match a.threads {
            Some(0) => bail!("--threads must be at least 1"),
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        };
        let needs_products =
            scenario.needs_products() || mix.as_ref().is_some_and(Mix::needs_products);
        let needs_orders = scenario.needs_orders() || mix.as_ref().is_some_and(Mix::needs_orders);
        if needs_products && a.products == 0 {
            bail!("scenario {scenario} needs products: --products must be at least 1");
        }
        if needs_orders && a.orders == 0 {
            bail!("scenario {scenario} needs orders: --orders must be at least 1");
        }
        let mut headers = Vec::new();
        for h in &a.headers {
            let Some((name, value)) = h.split_once(':') else {
                bail!("bad --header {h:?}: expected \"Name: value\"");
            };
            let name = HeaderName::from_bytes(name.trim().as_bytes())
                .with_context(|| format!("bad --header {h:?}: invalid name"))?;
            let value = HeaderValue::from_str(value.trim())
                .with_context(|| format!("bad --header {h:?}: invalid value"))?;
            headers.push((name, value));
        }
        if let Some(t) = &a.token {
            if t.trim().is_empty() {
                bail!("--token is empty");
            }
            HeaderValue::from_str(&format!("Bearer {}", t.trim()))
                .context("--token holds characters that cannot go in a header")?;
        }
        let thresholds = Thresholds {
            max_p50: a.max_p50,
            max_p90: a.max_p90,
            max_p99: a.max_p99,
            max_p999: a.max_p999,
            min_rps: a.min_rps,
            max_error_rate: a.max_error_rate,
        };
        if let Some(r) = thresholds.min_rps
            && !(r.is_finite() && r >= 0.0)
        {
            bail!("--min-rps must be a number >= 0, got {r}");
        }
        Ok(Self {
            target,
            targets,
            token: a.token.as_deref().map(|t| t.trim().to_owned()),
            headers,
            scenario,
            mix,
            mode,
            stop,
            warmup: a.warmup,
            timeout: a.timeout,
            threads,
            products: if needs_products { a.products } else { 0 },
            orders: if needs_orders { a.orders } else { 0 },
            order_items: usize::from(a.order_items).min(a.products.max(1)),
            late_after: a.late_after,
            run_id: format!("{:08x}", rand::random::<u32>()),
            thresholds,
            progress: !a.quiet && std::io::stderr().is_terminal(),
            out: a.out.clone(),
            csv: a.csv.clone(),
            report: a.report.clone(),
        })
    }

    /// The configuration as results record it.
    pub(crate) fn info(&self) -> ConfigInfo {
        let (mode, users, rate, connections) = match self.mode {
            Mode::Closed { users } => ("closed", Some(users), None, users),
            Mode::Open { rate, connections } => ("open", None, Some(rate), connections),
        };
        let (duration_s, requests) = match self.stop {
            Stop::Duration(d) => (Some(d.as_secs_f64()), None),
            Stop::Requests(n) => (None, Some(n)),
        };
        ConfigInfo {
            target: self
                .targets
                .iter()
                .map(|t| t.url.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            scenario: self.scenario.name().to_owned(),
            mix: self.mix.as_ref().map(ToString::to_string),
            mode: mode.to_owned(),
            users,
            rate,
            connections,
            duration_s,
            requests,
            warmup_s: self.warmup.as_secs_f64(),
            timeout_s: self.timeout.as_secs_f64(),
            threads: self.threads,
            late_after_ms: self.late_after.as_secs_f64() * 1e3,
            auth: self.token.is_some(),
            run_id: self.run_id.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration(" 25ms "), Ok(Duration::from_millis(25)));
        for bad in ["", "s", "ten", "10 parsecs", "-1s", "1.2.3s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fractions() {
        assert_eq!(parse_fraction("0.01"), Ok(0.01));
        assert_eq!(parse_fraction("1%"), Ok(0.01));
        assert_eq!(parse_fraction("0"), Ok(0.0));
        assert!(parse_fraction("2").is_err());
        assert!(parse_fraction("-0.1").is_err());
        assert!(parse_fraction("lots").is_err());
    }

    #[test]
    fn open_file_limits() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(parse_open_file_limit(limits), Some(1024));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_open_file_limit(unlimited), None);
    }

    #[test]
    fn targets() {
        let t = Target::parse("http://127.0.0.1:18080/").expect("target");
        assert_eq!(t.url, "http://127.0.0.1:18080");
        assert_eq!(t.authority, "127.0.0.1:18080");
        assert_eq!(t.prefix, "");
        assert_eq!((t.host.as_str(), t.port), ("127.0.0.1", 18080));
        let t = Target::parse("http://localhost/oms/").expect("target");
        assert_eq!(
            (t.host.as_str(), t.port, t.prefix.as_str()),
            ("localhost", 80, "/oms")
        );
        let t = Target::parse("http://[::1]:8000").expect("target");
        assert_eq!(t.host, "::1");
        for (bad, want) in [
            ("https://x", "https is not supported"),
            ("127.0.0.1:8000", "expected a URL"),
            ("http://u:p@h:1", "credentials"),
            ("http://h:1/?a=b", "query"),
            ("ftp://h", "unsupported scheme"),
        ] {
            let err = Target::parse(bad).expect_err(bad);
            assert!(err.contains(want), "{bad}: {err}");
        }
    }

    fn plan(argv: &[&str]) -> anyhow::Result<Plan> {
        use clap::Parser;
        let cli = crate::args::Cli::try_parse_from(argv).expect("parse");
        let crate::args::Command::Load(load) = cli.command else {
            panic!("not a load command");
        };
        Plan::from_args(&load.run)
    }

    #[test]
    fn several_targets() {
        let p = plan(&[
            "oms-cli",
            "load",
            "--target",
            "http://127.0.0.1:1/oms",
            "--target",
            "http://127.0.0.1:2/oms/",
        ])
        .expect("plan");
        assert_eq!(p.target.url, "http://127.0.0.1:1/oms");
        let urls: Vec<_> = p.targets.iter().map(|t| t.url.as_str()).collect();
        assert_eq!(urls, ["http://127.0.0.1:1/oms", "http://127.0.0.1:2/oms"]);
        assert_eq!(
            p.info().target,
            "http://127.0.0.1:1/oms http://127.0.0.1:2/oms"
        );
        let err = plan(&[
            "oms-cli",
            "load",
            "--target",
            "http://127.0.0.1:1/oms",
            "--target",
            "http://127.0.0.1:2",
        ])
        .expect_err("prefixes differ");
        assert!(err.to_string().contains("same path prefix"), "{err}");
    }
}
