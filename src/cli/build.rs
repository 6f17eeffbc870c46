//! `trtforge build RECIPE [--json]`: validate, plan (CPU), then build with TensorRT when it is
//! compiled in and loadable; otherwise say what is missing and exit with EXIT_UNAVAILABLE.

use super::EXIT_UNAVAILABLE;
use std::path::PathBuf;
use std::process::ExitCode;
use trtforge::recipe::LoadedRecipe;

#[derive(clap::Args)]
pub struct BuildArgs {
    /// Recipe YAML.
    pub recipe: PathBuf,
    /// Machine-readable output on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: BuildArgs) -> anyhow::Result<ExitCode> {
    let loaded = LoadedRecipe::load(&args.recipe)?;
    let plan = trtforge::trt::plan::plan(&loaded)?;
    for s in &plan.steps {
        log::info!("{s}");
    }
    let trt = trtforge::trt::probe();
    if let Err(missing) = trt.require() {
        if args.json {
            let out = serde_json::json!({
                "status": "unavailable",
                "plan": plan,
                "tensorrt": trt,
                "missing": missing.to_string(),
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        } else {
            println!("build plan for {}", plan.recipe.display());
            for s in &plan.steps {
                println!("  done: {s}");
            }
            println!(
                "  next: build {} engine -> {}",
                plan.precision_name(),
                plan.engine.display()
            );
        }
        eprintln!("error: cannot build the engine here: {missing}");
        return Ok(ExitCode::from(EXIT_UNAVAILABLE));
    }
    build_with_tensorrt(&loaded, &plan, args.json)
}

#[cfg(feature = "tensorrt")]
fn build_with_tensorrt(
    loaded: &LoadedRecipe,
    plan: &trtforge::trt::plan::BuildPlan,
    json: bool,
) -> anyhow::Result<ExitCode> {
    // The calibration stream and cache store are wired in by the calibration work; without
    // them an INT8 calibrator build stops with an Unavailable error naming the fix.
    let m = trtforge::trt::build_engine(loaded, plan, trtforge::trt::CalibrationInputs::default())?;
    if json {
        println!(
            "{}",
            serde_json::json!({ "status": "built", "engine": plan.engine, "manifest": m })
        );
    } else {
        println!(
            "built {} ({} engine, TensorRT {}, {} cc {}) in {:.1} s",
            plan.engine.display(),
            m.precision,
            m.tensorrt,
            m.gpu_name,
            m.compute_capability,
            m.build_seconds
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(not(feature = "tensorrt"))]
fn build_with_tensorrt(
    _: &LoadedRecipe,
    _: &trtforge::trt::plan::BuildPlan,
    _: bool,
) -> anyhow::Result<ExitCode> {
    // `require()` already refused a build without the feature.
    unreachable!("TensorRT availability is checked before building")
}
