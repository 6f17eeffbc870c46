//! `trtforge build RECIPE [--json]`: validate -> CPU steps (inspection, calibration cache) ->
//! build with TensorRT when it is compiled in and loadable -> engine + manifest. Without
//! TensorRT every CPU step still runs, then it exits with EXIT_UNAVAILABLE (3).
//!
//! INT8 through the calibrator (precision int8/best, no Q/DQ nodes) gets its scales from the
//! calibration cache in the recipe's output folder:
//! - a fresh cache (provenance matches) is reused, whatever made it (CPU or TensorRT);
//! - a stale one is refused, naming the field that changed, unless `--force-calibration`;
//! - with no usable cache: with TensorRT, its own calibrator runs through the bridge, fed by
//!   the same image stream `trtforge calibrate` reads, and its cache is stored with provenance;
//!   without TensorRT (or with `--cpu-calibration`, or for the percentile/MSE algorithms that
//!   TensorRT's calibrators do not implement) the cache is computed on CPU by
//!   `trtforge::calib::calibrate::calibrate` (ONNX Runtime), so the later TensorRT build (here or
//!   on the Jetson) only reads it.

use super::EXIT_UNAVAILABLE;
use std::path::PathBuf;
use std::process::ExitCode;
use trtforge::calib::calibrate::{calibrate, CalibrateOptions};
use trtforge::error::Error;
use trtforge::recipe::{Algorithm, LoadedRecipe};
use trtforge::trt::calib_io::{self, CacheState, CalibrationPrep};
use trtforge::trt::plan::{BuildPlan, Int8Source};

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
}

/// What happened to the calibration cache before the TensorRT step.
#[derive(serde::Serialize)]
struct CalibrationStep {
    cache: PathBuf,
    state: CacheState,
    /// `reused`, `calibrated-on-cpu`, or `tensorrt` (its calibrator runs during the build).
    action: &'static str,
    network_batch: usize,
    images: usize,
}

pub fn run(args: BuildArgs) -> anyhow::Result<ExitCode> {
    let loaded = LoadedRecipe::load(&args.recipe)?;
    let mut plan = trtforge::trt::plan::plan(&loaded)?;
    let trt = trtforge::trt::probe();
    let trt_missing = trt.require().err();

    let mut prep: Option<CalibrationPrep> = None;
    let mut step: Option<CalibrationStep> = None;
    if plan.int8 == Int8Source::Calibrator {
        let p = calib_io::prepare(&loaded, &plan, args.force_calibration)?;
        let trt_algorithm = matches!(
            p.calibration.algorithm,
            Algorithm::Entropy | Algorithm::Minmax
        );
        let action = match p.state {
            CacheState::Fresh => "reused",
            _ if trt_missing.is_none() && trt_algorithm && !args.cpu_calibration => "tensorrt",
            _ => {
                let opts = CalibrateOptions {
                    force: true, // `prepare` already refused a stale cache unless forced
                    ..Default::default()
                };
                match calibrate(&loaded, &opts) {
                    Ok(report) => {
                        plan.steps.push(format!(
                            "calibrated on CPU: {} images, {} tensors -> {}",
                            report.images, report.tensors, report.cache
                        ));
                        for s in &report.skipped {
                            eprintln!("warning: skipped unreadable image {s}");
                        }
                    }
                    // ONNX Runtime missing: the cache is a step this machine cannot do either.
                    Err(e @ Error::Unavailable { .. }) => {
                        return unavailable(
                            &args,
                            &plan,
                            &trt,
                            None,
                            &format!("calibration cache: {e}"),
                        )
                    }
                    Err(e) => return Err(e.into()),
                }
                "calibrated-on-cpu"
            }
        };
        if p.state == CacheState::Fresh {
            plan.steps.push(format!(
                "calibration cache {} is fresh (provenance matches): reused",
                calib_io::display_path(&p.cache_path())
            ));
        } else if action == "tensorrt" {
            plan.steps.push(format!(
                "calibration: TensorRT's calibrator will read {} images in batches of {}",
                p.set.len(),
                p.network_batch
            ));
        }
        step = Some(CalibrationStep {
            cache: p.cache_path(),
            state: p.state,
            action,
            network_batch: p.network_batch,
            images: p.set.len(),
        });
        prep = Some(p);
    }
    for s in &plan.steps {
        log::info!("{s}");
    }
    if let Some(missing) = trt_missing {
        return unavailable(&args, &plan, &trt, step.as_ref(), &missing.to_string());
    }
    build_with_tensorrt(&loaded, &plan, prep, args.json)
}

/// Report the CPU steps done, say what is missing, exit 3.
fn unavailable(
    args: &BuildArgs,
    plan: &BuildPlan,
    trt: &trtforge::trt::TensorRtStatus,
    calibration: Option<&CalibrationStep>,
    missing: &str,
) -> anyhow::Result<ExitCode> {
    if args.json {
        let out = serde_json::json!({
            "status": "unavailable",
            "plan": plan,
            "calibration": calibration,
            "tensorrt": trt,
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

#[cfg(feature = "tensorrt")]
fn build_with_tensorrt(
    loaded: &LoadedRecipe,
    plan: &BuildPlan,
    prep: Option<CalibrationPrep>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let mut calib = trtforge::trt::CalibrationInputs::default();
    if let Some(p) = &prep {
        // Even with a fresh cache the calibrator needs a source; TensorRT then never asks it.
        let (source, cache) = p.bridge_inputs(loaded, 0)?;
        calib.source = Some(Box::new(source));
        calib.cache = Some(Box::new(cache));
    }
    let m = trtforge::trt::build_engine(loaded, plan, calib)?;
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
    _: &BuildPlan,
    _: Option<CalibrationPrep>,
    _: bool,
) -> anyhow::Result<ExitCode> {
    // `require()` already refused a build without the feature.
    unreachable!("TensorRT availability is checked before building")
}
