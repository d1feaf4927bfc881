//! `oms-cli load`: a load generator for OMS servers.
//!
//! - `args`: the flags; `config`: the validated plan.
//! - `scenario`: scenarios, operations, `--mix`; `workload`: the requests.
//! - `fixtures`: the run's own products and orders, seeded via the API.
//! - `client`: hyper 1 `http1` connections; `runner`: closed and open loop.
//! - `stats`: HDR histograms per worker, merged; `results`: the data model.
//! - `output`: summary, JSON, CSV; `report`: HTML with SVG charts;
//!   `compare`: two runs side by side; `thresholds`: CI gates.

pub(crate) mod args;
mod client;
mod compare;
mod config;
mod fixtures;
mod output;
mod progress;
mod report;
mod results;
mod runner;
mod scenario;
mod stats;
mod thresholds;
mod workload;

use std::process::ExitCode;

use args::{LoadArgs, LoadCommand, RunArgs};

/// Exit status when a threshold fails (1 is an error, 2 bad usage).
const THRESHOLD_FAILED: u8 = 3;

/// Runs `oms-cli load` or `oms-cli load compare`.
pub(crate) fn run(args: LoadArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(LoadCommand::Compare { a, b }) => compare::run(&a, &b),
        None => load(&args.run),
    }
}

fn load(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let plan = config::Plan::from_args(args)?;
    let runtime = super::runtime(plan.threads)?;
    let mut results = runtime.block_on(runner::execute(&plan))?;
    // Workers still finishing a timed-out request must not hold the exit.
    runtime.shutdown_background();
    results.thresholds = plan.thresholds.evaluate(&results);

    print!("{}", output::summary(&results));
    for w in output::warnings(&results) {
        eprintln!("warning: {w}");
    }
    if let Some(path) = &plan.out {
        output::write_json(&results, path)?;
    }
    if let Some(path) = &plan.csv {
        output::write_csv(&results, path)?;
    }
    if let Some(path) = &plan.report {
        report::write(&results, path)?;
    }
    let mut failed = false;
    for t in &results.thresholds {
        if t.passed {
            println!("threshold passed: {}", t.message);
        } else {
            failed = true;
            eprintln!("threshold FAILED: {}", t.message);
        }
    }
    Ok(if failed {
        ExitCode::from(THRESHOLD_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}
