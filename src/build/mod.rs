//! The engine-build pipeline of `trtforge build`: recipe -> CPU plan (model checks, Q/DQ
//! detection, precision plan) -> calibration decision -> TensorRT build -> engine + manifest.
//! The TensorRT calls themselves are [`crate::trt`]'s.
//!
//! INT8 through the calibrator (precision int8/best, no Q/DQ nodes) gets its scales from the
//! calibration cache in the recipe's output folder:
//! - a fresh cache (provenance matches) is reused, whatever made it (CPU or TensorRT);
//! - a stale one is refused, naming the field that changed, unless `force_calibration`;
//! - with no usable cache: with TensorRT, its own calibrator runs through the bridge, fed by
//!   the same image stream `trtforge calibrate` reads, and its cache is stored with
//!   provenance; without TensorRT (or with `cpu_calibration`, or for the percentile/MSE
//!   algorithms that TensorRT's calibrators do not implement) the cache is computed on CPU
//!   by [`crate::calib::calibrate`], so the TensorRT build (here or on the Jetson) only reads it.

pub mod calibration;
pub mod manifest;
pub mod plan;
pub mod settings;
pub mod timing_cache;

#[cfg(feature = "tensorrt")]
mod engine;

#[cfg(feature = "tensorrt")]
pub use engine::{
    build_engine, build_serialized, calibration_bindings, layer_info_path, Built, CalibrationInputs,
};

pub use manifest::{load_checked_engine, manifest_path, summarize_layers, Manifest, Runtime};

use crate::calib::calibrate::{calibrate, CalibrateOptions};
use crate::error::{Error, Result};
use crate::recipe::{Algorithm, BuildJob};
use crate::trt::TensorRtStatus;
use calibration::{CacheState, CalibrationPrep};
use plan::{BuildPlan, Int8Source};
use serde::Serialize;
use std::path::PathBuf;

/// Command-line choices of `trtforge build`.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuildOptions {
    /// Recalibrate even when a calibration cache exists (a stale one is otherwise refused).
    pub force_calibration: bool,
    /// Compute a missing calibration cache on CPU (ONNX Runtime) even when TensorRT is here.
    pub cpu_calibration: bool,
    /// Build for the loaded TensorRT even when the recipe's `target.tensorrt` names another.
    pub allow_tensorrt_mismatch: bool,
}

/// How the calibration cache for the build was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CalibrationAction {
    /// A fresh cache was there.
    Reused,
    /// Computed on CPU with ONNX Runtime before the build.
    CalibratedOnCpu,
    /// TensorRT's calibrator runs during the build, through the bridge.
    Tensorrt,
}

/// What happened to the calibration cache before the TensorRT step.
#[derive(Debug, Clone, Serialize)]
pub struct CalibrationStep {
    pub cache: PathBuf,
    pub state: CacheState,
    pub action: CalibrationAction,
    pub network_batch: usize,
    pub images: usize,
    /// Unreadable images skipped by a CPU calibration (`path: reason`).
    #[serde(skip)]
    pub skipped: Vec<String>,
}

/// The end of `trtforge build`.
pub enum Outcome {
    /// The engine and its manifest are written.
    #[cfg(feature = "tensorrt")]
    Built {
        plan: BuildPlan,
        manifest: Box<Manifest>,
        calibration: Option<CalibrationStep>,
    },
    /// Every CPU step is done, but a step needs what this machine lacks.
    Unavailable {
        plan: BuildPlan,
        calibration: Option<CalibrationStep>,
        tensorrt: TensorRtStatus,
        missing: String,
    },
}

/// Plan, decide the calibration, and build with TensorRT when it is compiled in and loadable.
pub fn run(job: &BuildJob, opts: BuildOptions) -> Result<Outcome> {
    let mut plan = plan::plan(job)?;
    let tensorrt = crate::trt::probe();
    let trt_missing = tensorrt.require().err();
    let unavailable = |plan, calibration, tensorrt, missing: String| {
        Ok(Outcome::Unavailable {
            plan,
            calibration,
            tensorrt,
            missing,
        })
    };

    let mut prep: Option<CalibrationPrep> = None;
    let mut step: Option<CalibrationStep> = None;
    let calibration = match plan.int8 {
        Int8Source::Calibrator => calibration::prepare(job, &plan, opts.force_calibration)?,
        _ => None,
    };
    if let Some(p) = calibration {
        let trt_algorithm = matches!(
            p.job.calibration.algorithm,
            Algorithm::Entropy | Algorithm::Minmax
        );
        let mut skipped = vec![];
        let action = match p.state {
            CacheState::Fresh => CalibrationAction::Reused,
            _ if trt_missing.is_none() && trt_algorithm && !opts.cpu_calibration => {
                CalibrationAction::Tensorrt
            }
            _ => {
                let copts = CalibrateOptions {
                    force: true, // `prepare` already refused a stale cache unless forced
                    ..Default::default()
                };
                // Images are fed: the whole input contract must fit the model.
                crate::recipe::check_contract(&job.origin, &job.model, &job.input)?;
                match calibrate(&p.job, &copts) {
                    Ok(report) => {
                        plan.steps.push(format!(
                            "calibrated on CPU: {} images, {} tensors -> {}",
                            report.images, report.tensors, report.cache
                        ));
                        skipped = report.skipped;
                    }
                    // ONNX Runtime missing: the cache is a step this machine cannot do either.
                    Err(e @ Error::Unavailable { .. }) => {
                        let missing = format!("calibration cache: {e}");
                        return unavailable(plan, None, tensorrt, missing);
                    }
                    Err(e) => return Err(e),
                }
                CalibrationAction::CalibratedOnCpu
            }
        };
        match action {
            CalibrationAction::Reused => plan.steps.push(format!(
                "calibration cache {} is fresh (provenance matches): reused",
                calibration::display_path(&p.cache_path())
            )),
            CalibrationAction::Tensorrt => plan.steps.push(format!(
                "calibration: TensorRT's calibrator will read {} images in batches of {}",
                p.set.len(),
                p.network_batch
            )),
            CalibrationAction::CalibratedOnCpu => {}
        }
        step = Some(CalibrationStep {
            cache: p.cache_path(),
            state: p.state,
            action,
            network_batch: p.network_batch,
            images: p.set.len(),
            skipped,
        });
        prep = Some(p);
    }
    if let Some(path) = plan.fp16_model.clone() {
        match write_fp16_model(job, &path) {
            Ok(line) => plan.steps.push(line),
            Err(e @ Error::Unavailable { .. }) => {
                let missing = format!("FP16 model for TensorRT 11: {e}");
                return unavailable(plan, step, tensorrt, missing);
            }
            Err(e) => return Err(e),
        }
    }
    for s in &plan.steps {
        log::info!("{s}");
    }
    if let Some(missing) = trt_missing {
        return unavailable(plan, step, tensorrt, missing.to_string());
    }
    build_with_tensorrt(job, plan, prep, step, tensorrt, opts)
}

/// TensorRT 11 networks are strongly typed: an fp16/best build parses the model rewritten to
/// FP16 ([`crate::quant::fp16`]), with the layers `builder.layer_precisions` pins to fp32
/// kept in FP32. Checked in ONNX Runtime by the rewrite; returns the report line.
fn write_fp16_model(job: &BuildJob, path: &std::path::Path) -> Result<String> {
    let graph = crate::onnx::Graph::new(&job.model);
    let keys: Vec<String> = graph.nodes().map(|(id, _)| graph.key(id)).collect();
    let mut keep = std::collections::BTreeSet::new();
    for l in job
        .builder
        .layer_precisions
        .iter()
        .filter(|l| l.precision == crate::recipe::LayerType::Fp32)
    {
        let rule = settings::LayerRule {
            pattern: l.layers.clone(),
            dtype: crate::trt::DataType::Float,
            source: "builder.layer_precisions".into(),
        };
        for (i, _) in settings::resolve_pins(std::slice::from_ref(&rule), &keys)? {
            keep.insert(keys[i].clone());
        }
    }
    let (model, summary) = crate::quant::to_fp16(&job.model, &keep)?;
    crate::exec::check_loads(&model)?;
    model.save(path)?;
    Ok(format!(
        "FP16 model for TensorRT 11: {} nodes FP16, {} kept FP32, {} casts -> {}",
        summary.nodes_converted(),
        summary.nodes_kept(),
        summary.casts_inserted,
        calibration::display_path(path)
    ))
}

#[cfg(feature = "tensorrt")]
fn build_with_tensorrt(
    job: &BuildJob,
    plan: BuildPlan,
    prep: Option<CalibrationPrep>,
    step: Option<CalibrationStep>,
    _tensorrt: TensorRtStatus,
    opts: BuildOptions,
) -> Result<Outcome> {
    let mut calib = CalibrationInputs::default();
    if let Some(p) = &prep {
        // Even with a fresh cache the calibrator needs a source; TensorRT then never asks it.
        let (source, cache) = p.bridge_inputs(0)?;
        calib.source = Some(Box::new(source));
        calib.cache = Some(Box::new(cache));
    }
    let manifest = build_engine(job, &plan, calib, opts.allow_tensorrt_mismatch)?;
    Ok(Outcome::Built {
        plan,
        manifest: Box::new(manifest),
        calibration: step,
    })
}

#[cfg(not(feature = "tensorrt"))]
fn build_with_tensorrt(
    _: &BuildJob,
    plan: BuildPlan,
    _: Option<CalibrationPrep>,
    step: Option<CalibrationStep>,
    tensorrt: TensorRtStatus,
    _: BuildOptions,
) -> Result<Outcome> {
    // `require()` refuses a build without the feature; this is only reached if it did not.
    Ok(Outcome::Unavailable {
        plan,
        calibration: step,
        missing: "this trtforge was built without the `tensorrt` feature".into(),
        tensorrt,
    })
}
