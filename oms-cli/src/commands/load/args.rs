//! `oms-cli load` flags (clap derive).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::config::{parse_duration, parse_fraction};
use super::scenario::{Mix, Scenario};

/// Load-test an OMS server, or compare two results files.
#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = "Examples:\n  \
        oms-cli load --target http://127.0.0.1:8000 --scenario health --users 64 --duration 10s\n  \
        oms-cli load --target http://127.0.0.1:8000 --scenario mixed --mix get-product=70,create-order=20,get-order=10 --rate 2000 --duration 30s --warmup 5s --out run.json --report run.html\n  \
        oms-cli load --target http://127.0.0.1:8000 --scenario get-product --rate 1000 --duration 10s --max-p99 25ms --min-rps 900 --max-error-rate 0.01\n  \
        oms-cli load compare before.json after.json\n\n\
        Exit status: 0 ok, 1 the run could not be made, 2 bad usage, 3 a threshold failed."
)]
pub(crate) struct LoadArgs {
    #[command(subcommand)]
    pub(crate) command: Option<LoadCommand>,
    #[command(flatten)]
    pub(crate) run: RunArgs,
}

/// `oms-cli load` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum LoadCommand {
    /// Print two `--out` results files side by side, with ratios (second / first).
    Compare {
        /// The baseline results (JSON written by `--out`).
        a: PathBuf,
        /// The results to compare with the baseline.
        b: PathBuf,
    },
}

/// One load run.
#[derive(Debug, Clone, Args)]
pub(crate) struct RunArgs {
    /// Base URL of the server (plain HTTP), e.g. http://127.0.0.1:8000; a
    /// path is kept as a prefix (http://host:8000/oms). Repeat it for
    /// several servers on one database: users (or open-loop connections)
    /// are spread round-robin over them, fixtures are seeded through the
    /// first, and every target must have the same prefix.
    #[arg(long, required = true)]
    pub(crate) target: Vec<String>,
    /// Bearer token sent as `Authorization: Bearer <token>` on every request
    /// (seeding fixtures needs the `write` role).
    #[arg(long, env = "OMS_LOAD_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// What each user does: health, get-product, list-products,
    /// create-order, get-order, order-lifecycle (create, confirm, ship) or
    /// mixed (see --mix). Default: health, or mixed when --mix is given.
    #[arg(long, value_parser = Scenario::parse)]
    pub(crate) scenario: Option<Scenario>,
    /// Weights for `--scenario mixed`, e.g.
    /// get-product=70,create-order=20,get-order=10 (the default).
    #[arg(long, value_parser = Mix::parse)]
    pub(crate) mix: Option<Mix>,
    /// Closed loop: N concurrent users, each on its own keep-alive
    /// connection, each sending its next request when the last one is
    /// answered (`--users 1` is the single-user test). The default mode,
    /// with 1 user.
    #[arg(long, conflicts_with = "rate")]
    pub(crate) users: Option<usize>,
    /// Open loop: R requests per second on a fixed schedule, whatever the
    /// server does; latency counts from each request's scheduled send time
    /// (no coordinated omission).
    #[arg(long)]
    pub(crate) rate: Option<f64>,
    /// Open loop: connections that carry the schedule (default 64). Too
    /// few, and requests wait for one: they are counted as late.
    #[arg(long, requires = "rate")]
    pub(crate) connections: Option<usize>,
    /// How long to measure (10s, 500ms, 2m); default 10s unless --requests.
    #[arg(long, value_parser = parse_duration, conflicts_with = "requests")]
    pub(crate) duration: Option<Duration>,
    /// Measure exactly N requests instead of a duration.
    #[arg(long)]
    pub(crate) requests: Option<u64>,
    /// Load applied before measuring; excluded from every result.
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    pub(crate) warmup: Duration,
    /// Per-request timeout (connect + response); a timed-out request is an
    /// error of kind `timeout`.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub(crate) timeout: Duration,
    /// Client worker threads (default: the number of CPUs).
    #[arg(long)]
    pub(crate) threads: Option<usize>,
    /// Products to seed (SKUs `LOAD-<run id>-<n>`, 1e9 units each) for the
    /// scenarios that need them.
    #[arg(long, default_value_t = 100)]
    pub(crate) products: usize,
    /// Orders to seed for get-order.
    #[arg(long, default_value_t = 100)]
    pub(crate) orders: usize,
    /// Lines per order created (create-order, get-order fixtures,
    /// order-lifecycle): one unit each of this many consecutive seeded
    /// products (at most --products).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=100))]
    pub(crate) order_items: u16,
    /// Extra request header, `Name: value` (repeatable).
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    pub(crate) headers: Vec<String>,
    /// Open loop: a request sent more than this after its scheduled time
    /// counts as late.
    #[arg(long, value_parser = parse_duration, default_value = "1ms")]
    pub(crate) late_after: Duration,
    /// Write every result (config, totals, percentiles, statuses, codes,
    /// per-second series, server-side timings) as JSON.
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,
    /// Write the per-second series as CSV.
    #[arg(long, value_name = "FILE")]
    pub(crate) csv: Option<PathBuf>,
    /// Write a self-contained HTML report with SVG charts.
    #[arg(long, value_name = "FILE")]
    pub(crate) report: Option<PathBuf>,
    /// Fail (exit 3) when the client-side p50 is above this.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub(crate) max_p50: Option<Duration>,
    /// Fail (exit 3) when the client-side p90 is above this.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub(crate) max_p90: Option<Duration>,
    /// Fail (exit 3) when the client-side p99 is above this, e.g. 25ms.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub(crate) max_p99: Option<Duration>,
    /// Fail (exit 3) when the client-side p99.9 is above this.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub(crate) max_p999: Option<Duration>,
    /// Fail (exit 3) when throughput is below this many requests/s.
    #[arg(long, value_name = "RPS")]
    pub(crate) min_rps: Option<f64>,
    /// Fail (exit 3) when the error rate is above this (0.01 or 1%).
    #[arg(long, value_parser = parse_fraction, value_name = "FRACTION")]
    pub(crate) max_error_rate: Option<f64>,
    /// No progress bar.
    #[arg(long, short)]
    pub(crate) quiet: bool,
}
