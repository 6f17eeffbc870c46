//! `build_engine`: the TensorRT part of `trtforge build` (feature `tensorrt`). Builds from a
//! [`BuildPlan`], writes the engine atomically and its manifest next to it.

use super::manifest::{self, LayerSummary, Manifest, TargetDesc, TensorDesc};
use super::plan::{BuildPlan, Int8Source};
use crate::cuda::{DeviceBindings, Gpu};
use crate::error::{Error, Result};
use crate::recipe::{Algorithm, BuildJob, Device, Precision};
use crate::trt::*;
use crate::trt::{BatchSource, CacheStore, CalibratorState};
use std::time::Instant;

/// What the calibration side supplies: the calibration stream and the provenance-checked
/// cache ([`super::calibration`]). Only needed when the plan's INT8 source is the calibrator.
#[derive(Default)]
pub struct CalibrationInputs {
    pub source: Option<Box<dyn BatchSource>>,
    pub cache: Option<Box<dyn CacheStore>>,
}

fn read_text(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim_matches(['\0', '\n', ' ']).to_string())
        .filter(|s| !s.is_empty())
}

/// Per-layer precision and device counts from the inspector's JSON (detailed verbosity).
/// Precision is the first output's `Format/Datatype`; a layer counts as DLA when its type or
/// name says so (TensorRT reports DLA subgraphs as one foreign node).
pub fn summarize_layers(json: &str) -> LayerSummary {
    let mut s = LayerSummary::default();
    let Ok(v) = serde_json::from_str::<serde_json::Value>(json) else {
        return s;
    };
    let Some(layers) = v.get("Layers").and_then(|l| l.as_array()) else {
        return s;
    };
    for l in layers {
        s.layers += 1;
        let prec = l
            .pointer("/Outputs/0/Format~1Datatype")
            .and_then(|x| x.as_str())
            .unwrap_or("unknown")
            .to_string();
        *s.by_precision.entry(prec).or_default() += 1;
        let text = format!(
            "{} {}",
            l.get("LayerType").and_then(|x| x.as_str()).unwrap_or(""),
            l.get("Name").and_then(|x| x.as_str()).unwrap_or("")
        );
        let dev = if text.contains("DLA") { "dla" } else { "gpu" };
        *s.by_device.entry(dev.to_string()).or_default() += 1;
    }
    s
}

/// Build the engine described by `plan`, write it and its manifest; returns the manifest.
pub fn build_engine(
    job: &BuildJob,
    plan: &BuildPlan,
    calib: CalibrationInputs,
) -> Result<Manifest> {
    let r = job;
    let started = Instant::now();
    let gpu = Gpu::open(0)?;
    let logger = Logger::to_log()?;
    let builder = Builder::new(&logger)?;
    #[cfg(trt_has_strongly_typed)]
    let strongly_typed = plan.int8 == Int8Source::ExplicitQdq;
    #[cfg(not(trt_has_strongly_typed))]
    let strongly_typed = false;
    let network = builder.network(strongly_typed)?;
    network.parse_onnx(&logger, &plan.model)?;
    let config = builder.config()?;
    if !strongly_typed {
        // A strongly typed network takes its types from the model, not from builder flags.
        config.set_precision(match r.precision {
            Precision::Fp32 => BuildPrecision::Fp32,
            Precision::Fp16 => BuildPrecision::Fp16,
            Precision::Int8 => BuildPrecision::Int8,
            Precision::Best => BuildPrecision::Best,
        })?;
    }
    if !plan.fp16_layers.is_empty() {
        // INT8 with a precision plan: FP16 must be enabled for the pinned layers, and the
        // builder must obey the pins instead of choosing INT8 where it measures faster.
        config.set_precision(BuildPrecision::Best)?;
        config.set_constraints(Constraints::Obey)?;
        for layer in &plan.fp16_layers {
            // The ONNX parser names each layer after its node.
            if network.set_precision_where_exact(layer, DATA_TYPE_HALF)? == 0 {
                return Err(Error::Invalid(format!(
                    "precision plan: the parsed network has no layer named '{layer}'; \
                     rerun `trtforge quantize` for this model"
                )));
            }
        }
    }
    if let Some(mib) = r.builder.workspace_mib {
        config.set_workspace_mib(mib)?;
    }
    config.set_dla(
        if r.target.device == Device::Dla {
            r.target.dla_core
        } else {
            None
        },
        r.target.gpu_fallback,
    )?;
    if let Some(level) = r.builder.optimization_level {
        config.set_optimization_level(level)?;
    }
    config.set_detailed_profiling()?;
    let timing_path = r.builder.timing_cache.clone();
    if let Some(p) = &timing_path {
        let bytes = std::fs::read(p).ok();
        config.set_timing_cache(bytes.as_deref())?;
    }
    if !r.builder.profiles.is_empty() {
        let shapes: Vec<_> = r
            .builder
            .profiles
            .iter()
            .map(|(n, p)| InputProfile {
                name: n.clone(),
                min: p.min.clone(),
                opt: p.opt.clone(),
                max: p.max.clone(),
            })
            .collect();
        builder.add_profile(&config, &shapes, plan.int8 == Int8Source::Calibrator)?;
    }
    let mut session = if plan.int8 == Int8Source::Calibrator {
        let source = calib.source.ok_or_else(|| Error::Unavailable {
            what: "the calibration stream".into(),
            why: "INT8 with the calibrator needs calibration batches and none were supplied".into(),
            fix: "Run `trtforge calibrate` for this recipe first (its cache is reused), or give the recipe a Q/DQ model".into(),
        })?;
        let minmax =
            r.calibration.as_ref().map(|c| c.calibration.algorithm) == Some(Algorithm::Minmax);
        let state = CalibratorState::new(
            source,
            calib.cache,
            Box::new(DeviceBindings::new(gpu.clone())),
        );
        Some(CalibrationSession::new(state, minmax)?)
    } else {
        None
    };
    let (engine_bytes, summary) = builder.build(&network, &config, session.as_mut())?;
    if let Some(p) = &timing_path {
        crate::util::write_atomic(p, &config.timing_cache()?)?;
    }
    crate::util::write_atomic(&plan.engine, &engine_bytes)?;
    let build_seconds = started.elapsed().as_secs_f64();

    let runtime = TrtRuntime::new(&logger)?;
    let engine = runtime.deserialize(&engine_bytes)?;
    let io = engine.io_tensors()?;
    let desc = |t: &IoTensor| TensorDesc {
        name: t.name.clone(),
        shape: t.dims.clone(),
        dtype: t.dtype.to_string(),
    };
    let layers = engine.layer_info_json().ok().map(|j| summarize_layers(&j));
    let (_, lib_version) = versions();
    let (maj, min) = gpu.compute_capability()?;
    let cuda = crate::cuda::probe();
    let m = Manifest {
        tool_version: crate::TOOL_VERSION.into(),
        onnx_sha256: plan.onnx_sha256.clone(),
        recipe_sha256: plan.recipe_sha256.clone(),
        precision: plan.precision_name().into(),
        target: TargetDesc {
            device: if r.target.device == Device::Dla {
                "dla"
            } else {
                "gpu"
            }
            .into(),
            dla_core: r.target.dla_core,
            gpu_fallback: r.target.gpu_fallback,
        },
        tensorrt: lib_version,
        cuda_runtime: cuda.runtime.version,
        cuda_driver: cuda.driver.version,
        gpu_name: gpu.name()?,
        compute_capability: format!("{maj}.{min}"),
        l4t_release: read_text("/etc/nv_tegra_release")
            .map(|s| s.lines().next().unwrap_or("").to_string()),
        module_model: read_text("/proc/device-tree/model"),
        inputs: io.iter().filter(|t| t.is_input).map(desc).collect(),
        outputs: io.iter().filter(|t| !t.is_input).map(desc).collect(),
        layers,
        calibration_cache_sha256: summary.and_then(|s| s.cache_sha256),
        build_seconds,
        engine_sha256: crate::util::sha256_hex(&engine_bytes),
    };
    m.write(&manifest::manifest_path(&plan.engine))?;
    Ok(m)
}
