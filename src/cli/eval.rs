//! `trtforge eval RECIPE`: detection mAP of the model on a labelled image set (ONNX Runtime,
//! or with --engine the TensorRT engine on the device).

use anyhow::Result;
use std::path::PathBuf;
use std::process::ExitCode;
use trtforge::eval::run::{evaluate, evaluate_with};
use trtforge::recipe::{EvalOverrides, LoadedRecipe};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    input: super::args::RecipeImages,
    /// YOLO-format labels folder (default: the recipe's, or `labels/` beside the images).
    #[arg(long)]
    labels: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let i = a.input;
    let job = LoadedRecipe::load(&i.recipe)?.eval_job(&EvalOverrides {
        model: i.model,
        images: i.images,
        labels: a.labels,
        limit: i.limit,
    })?;
    let report = match &i.engine {
        Some(e) => super::engine::with_engine(e, job.input.shape[0], |x| {
            evaluate_with(&job, x, &e.display().to_string())
        })?,
        None => evaluate(&job)?,
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(ExitCode::SUCCESS)
}
