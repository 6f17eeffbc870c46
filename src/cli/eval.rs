//! `trtforge eval RECIPE`: detection mAP of the model on a labelled image set (ONNX Runtime).

use anyhow::Result;
use std::path::PathBuf;
use std::process::ExitCode;
use trtforge::eval::run::evaluate;
use trtforge::recipe::{EvalOverrides, LoadedRecipe};

#[derive(clap::Args)]
pub struct Args {
    /// Recipe (YAML): model, input contract, decoder and default eval set.
    recipe: PathBuf,
    /// Evaluate this model instead of the recipe's (same contract and decoder).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Images (folder or list file).
    #[arg(long)]
    images: Option<PathBuf>,
    /// YOLO-format labels folder (default: the recipe's, or `labels/` beside the images).
    #[arg(long)]
    labels: Option<PathBuf>,
    #[arg(long)]
    limit: Option<usize>,
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let recipe = LoadedRecipe::load(&a.recipe)?;
    let job = recipe.eval_job(&EvalOverrides {
        model: a.model,
        images: a.images,
        labels: a.labels,
        limit: a.limit,
    })?;
    let report = evaluate(&job)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(ExitCode::SUCCESS)
}
