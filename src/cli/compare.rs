//! `trtforge compare OLD.json NEW.json`: side-by-side table; exit 1 on a regression beyond
//! the thresholds, exit 2 when the runs are not comparable (different device, power mode,
//! engine/model or batch) and --force was not given.

use anyhow::Context;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use trtforge::report::compare::{self, Thresholds};
use trtforge::report::BenchReport;

#[derive(Args)]
pub struct CompareArgs {
    old: PathBuf,
    new: PathBuf,
    /// Allowed latency increase (and throughput decrease), e.g. 5%.
    #[arg(long, default_value = "5%")]
    max_latency_regression: String,
    /// Allowed J/inference increase, e.g. 5%.
    #[arg(long, default_value = "5%")]
    max_energy_regression: String,
    /// Compare runs from different devices, power modes or engines anyway.
    #[arg(long)]
    force: bool,
    #[arg(long)]
    json: bool,
}

fn pct(s: &str) -> anyhow::Result<f64> {
    let v: f64 = s
        .trim()
        .trim_end_matches('%')
        .parse()
        .with_context(|| format!("'{s}' is not a percentage (example: 5%)"))?;
    anyhow::ensure!(
        v >= 0.0 && v.is_finite(),
        "'{s}': the threshold must be 0% or more"
    );
    Ok(v)
}

pub fn run(a: CompareArgs) -> anyhow::Result<ExitCode> {
    let old = BenchReport::load(&a.old)?;
    let new = BenchReport::load(&a.new)?;
    let th = Thresholds {
        latency_pct: pct(&a.max_latency_regression)?,
        energy_pct: pct(&a.max_energy_regression)?,
    };
    let c = match compare::compare(&old, &new, th, a.force) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&c)?);
    } else {
        for m in &c.mismatches {
            println!("warning: runs differ ({m}); compared because of --force");
        }
        println!(
            "{:<20} {:>12} {:>12} {:>9}",
            "metric", "old", "new", "change"
        );
        let f = |v: Option<f64>| v.map(|x| format!("{x:.4}")).unwrap_or_else(|| "n/a".into());
        for r in &c.rows {
            println!(
                "{:<20} {:>12} {:>12} {:>9}  {}{}",
                r.metric,
                f(r.old),
                f(r.new),
                r.change_pct
                    .map(|x| format!("{x:+.2}%"))
                    .unwrap_or_else(|| "".into()),
                r.unit,
                if r.regression { "  REGRESSION" } else { "" }
            );
        }
        if c.has_regression() {
            println!("{} regression(s):", c.regressions.len());
            for r in &c.regressions {
                println!("  {r}");
            }
        } else {
            println!("no regression beyond the thresholds");
        }
    }
    Ok(if c.has_regression() {
        ExitCode::from(super::EXIT_FAILURE)
    } else {
        ExitCode::SUCCESS
    })
}
