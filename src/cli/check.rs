//! `trtforge check RECIPE`: parse and validate a recipe against its model and data.

use anyhow::Result;
use std::path::PathBuf;
use std::process::ExitCode;
use trtforge::recipe::LoadedRecipe;

#[derive(clap::Args)]
pub struct Args {
    /// Recipe (YAML).
    recipe: PathBuf,
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let recipe = LoadedRecipe::load(&a.recipe)?;
    let report = trtforge::recipe::check(&recipe)?;
    // The recipe's checks need no runtime; the model must also load in ONNX Runtime, which
    // every later step runs it in (a missing runtime is only a warning, inside check_loads).
    trtforge::exec::check_loads(recipe.checked_model()?.as_ref())?;
    if recipe.recipe.builder.precision_plan.is_some() {
        trtforge::build::plan::check_precision_plan(&recipe.build_job()?)?;
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("recipe   {}: ok", recipe.path.display());
        println!("model    {} (opset {})", report.model, report.opset);
        println!("input    {} {:?}", report.input, report.shape);
        if let Some(n) = report.calibration_images {
            println!("calib    {n} images");
        }
        for w in &report.warnings {
            eprintln!("warning: {w}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
