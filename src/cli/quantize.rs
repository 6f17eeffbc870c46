//! `trtforge quantize RECIPE`: Q/DQ ONNX (explicit INT8) from the calibration ranges, FP32 vs
//! INT8 on the validation images, and with a gate the accuracy-aware precision plan.

use anyhow::Result;
use std::path::PathBuf;
use std::process::ExitCode;
use trtforge::quant::run as quantize;
use trtforge::recipe::{Algorithm, LoadedRecipe, QuantizeOverrides};

#[derive(clap::Args)]
pub struct Args {
    /// Recipe (YAML).
    recipe: PathBuf,
    /// Output folder (default: the recipe's `output`); calibration artifacts are read or written there.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Search a plan keeping mAP@0.5:0.95 within X of FP32 (overrides quantize.max_map_drop).
    #[arg(long)]
    max_map_drop: Option<f64>,
    /// Calibration algorithm (overrides calibration.algorithm; use a separate --out per algorithm).
    #[arg(long, value_parser = ["entropy", "minmax", "percentile", "mse"])]
    algorithm: Option<String>,
    /// Apply an existing precision_plan.json instead of searching.
    #[arg(long, conflicts_with = "max_map_drop")]
    plan: Option<PathBuf>,
    /// Time budget of the search in seconds (overrides quantize.time_budget_s).
    #[arg(long)]
    time_budget: Option<u64>,
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let recipe = LoadedRecipe::load(&a.recipe)?;
    let algorithm = a.algorithm.as_deref().map(|s| match s {
        "minmax" => Algorithm::Minmax,
        "percentile" => Algorithm::Percentile,
        "mse" => Algorithm::Mse,
        _ => Algorithm::Entropy,
    });
    let job = recipe.quantize_job(&QuantizeOverrides {
        out: a.out,
        max_map_drop: a.max_map_drop,
        algorithm,
        plan: a.plan,
        time_budget_s: a.time_budget,
    })?;
    let report = quantize(&job)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.markdown());
        println!("\nwrote {}", report.qdq_model);
    }
    Ok(if report.gate_met == Some(false) {
        ExitCode::from(super::EXIT_FAILURE)
    } else {
        ExitCode::SUCCESS
    })
}
