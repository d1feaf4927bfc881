//! `oms-cli doctor`: check the database's invariants and report every
//! violation.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use oms_core::db::Database;
use oms_core::domain::{DoctorReport, check_invariants};
use oms_core::plugin::{PoolContext, PoolPlugin};

use crate::args::DoctorArgs;

/// Exit status when the checks ran and found violations.
const VIOLATIONS: u8 = 2;

/// Connects with the configured pool plugin (no migrations, no audit, no
/// server), runs the checks on one snapshot and prints the report.
/// Exit 0 when consistent, 2 when violations were found; errors are 1.
pub(crate) fn run(args: &DoctorArgs) -> anyhow::Result<ExitCode> {
    let config = args.config.load()?;
    // Quiet by default: the report is the output.
    crate::logging::init("warn");
    let url = config.database.effective_url(&config.base_dir);
    refuse_missing_sqlite_file(&url)?;
    let report = super::runtime(1)?.block_on(async {
        let plugin = oms_core::plugin::find::<PoolPlugin>(&config.database.pool)?;
        let pool = (plugin.build)(PoolContext {
            config: &config,
            url,
            observer: Arc::new(|_, _| {}),
        })
        .await?;
        let db = Database::new(pool, config.orders.max_attempts);
        let report = check_invariants(&db, args.max_listed).await;
        db.pool().close().await;
        report.context("running the checks")
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(if report.is_consistent() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(VIOLATIONS)
    })
}

/// The pool would create a missing SQLite file (`mode=rwc`): a doctor must
/// not, and an empty file would only fail later with "no such table".
fn refuse_missing_sqlite_file(url: &str) -> anyhow::Result<()> {
    let Some(rest) = url.strip_prefix("sqlite:") else {
        return Ok(());
    };
    let path = rest.trim_start_matches("//");
    let path = path.split('?').next().unwrap_or(path);
    if path.is_empty() || path.starts_with(":memory:") || url.contains("mode=memory") {
        return Ok(());
    }
    if !std::path::Path::new(path).exists() {
        bail!("no SQLite database at {path}");
    }
    Ok(())
}

/// The human form: one line per check, then the violations listed.
fn render(report: &DoctorReport) -> String {
    let mut out = String::new();
    let width = report
        .checks
        .iter()
        .map(|c| c.check.as_str().len())
        .max()
        .unwrap_or(0);
    for c in &report.checks {
        let verdict = match c.violations {
            0 => "ok".to_owned(),
            1 => "1 violation".to_owned(),
            n => format!("{n} violations"),
        };
        out.push_str(&format!(
            "{:<width$}  {verdict:<14}  {}\n",
            c.check.as_str(),
            c.description
        ));
    }
    let total = report.violations();
    if total == 0 {
        out.push_str(&format!(
            "\n{} checks on {}: consistent\n",
            report.checks.len(),
            report.backend
        ));
        return out;
    }
    out.push_str(&format!("\n{total} violation(s) on {}:\n", report.backend));
    for c in report.checks.iter().filter(|c| c.violations > 0) {
        for v in &c.listed {
            out.push_str(&format!("  [{}] {v}\n", c.check));
        }
        let hidden = c.violations.saturating_sub(c.listed.len() as u64);
        if hidden > 0 {
            out.push_str(&format!(
                "  [{}] ... and {hidden} more (--max-listed)\n",
                c.check
            ));
        }
    }
    out
}
