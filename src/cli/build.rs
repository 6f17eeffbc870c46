//! `trtforge build RECIPE [--json]`: the library's build pipeline ([`trtforge::build`]), then
//! the outcome printed. Without TensorRT every CPU step still runs, then it exits with
//! EXIT_UNAVAILABLE (3).

use super::EXIT_UNAVAILABLE;
use std::path::PathBuf;
use std::process::ExitCode;
use trtforge::build::{BuildOptions, Outcome};
use trtforge::recipe::LoadedRecipe;

#[derive(clap::Args)]
pub struct BuildArgs {
    /// Recipe YAML.
    pub recipe: PathBuf,
    /// Machine-readable output on stdout.
    #[arg(long)]
    pub json: bool,
    /// Recalibrate even when a calibration cache exists (a stale one is otherwise refused).
    #[arg(long)]
    pub force_calibration: bool,
    /// Compute a missing calibration cache on CPU (ONNX Runtime) even when TensorRT is here.
    #[arg(long)]
    pub cpu_calibration: bool,
    /// Write the engine here instead of builder.engine / `<output>/<recipe>.engine`
    /// (trtexec's --saveEngine); its manifest and layer information go beside it.
    #[arg(long)]
    pub engine: Option<PathBuf>,
    /// Build for the loaded TensorRT even when the recipe's target.tensorrt names another
    /// version (the manifest records the one used).
    #[arg(long)]
    pub allow_tensorrt_mismatch: bool,
}

fn warn_skipped(calibration: Option<&trtforge::build::CalibrationStep>) {
    for s in calibration.iter().flat_map(|c| &c.skipped) {
        eprintln!("warning: skipped unreadable image {s}");
    }
}

pub fn run(args: BuildArgs) -> anyhow::Result<ExitCode> {
    let loaded = LoadedRecipe::load(&args.recipe)?;
    let opts = BuildOptions {
        force_calibration: args.force_calibration,
        cpu_calibration: args.cpu_calibration,
        allow_tensorrt_mismatch: args.allow_tensorrt_mismatch,
    };
    let mut job = loaded.build_job()?;
    if let Some(engine) = args.engine {
        job.engine = engine;
    }
    match trtforge::build::run(&job, opts)? {
        #[cfg(feature = "tensorrt")]
        Outcome::Built {
            plan,
            manifest: m,
            calibration,
        } => {
            warn_skipped(calibration.as_ref());
            if args.json {
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
        Outcome::Unavailable {
            plan,
            calibration,
            tensorrt,
            missing,
        } => {
            warn_skipped(calibration.as_ref());
            if args.json {
                let out = serde_json::json!({
                    "status": "unavailable",
                    "plan": plan,
                    "calibration": calibration,
                    "tensorrt": tensorrt,
                    "missing": missing,
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
            Ok(ExitCode::from(EXIT_UNAVAILABLE))
        }
    }
}
