//! The TensorRT part of `trtforge build` (feature `tensorrt`): carry out [`EngineSettings`]
//! in trtexec's order (samples/common/sampleEngines.cpp: builder, network, parser; config;
//! build; then the runtime), and write the engine, its layer information and its manifest.
//!
//! [`build_serialized`] does the TensorRT calls and writes no artifact (only the shared
//! timing-cache file), so tests drive it against the TensorRT test double; [`build_engine`]
//! adds the GPU, the version checks and the files.

use super::manifest::{self, summarize_layers, Manifest, TargetDesc, TensorDesc};
use super::plan::BuildPlan;
use super::settings::{self, CalibratorKind, EngineSettings};
use super::timing_cache;
use crate::cuda::{DeviceBindings, Gpu};
use crate::data::InputContract;
use crate::error::{Error, Result};
use crate::recipe::BuildJob;
use crate::trt::bridge::{CalibrationSummary, InputBinding, InputType};
use crate::trt::*;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What the calibration side supplies: the calibration stream and the provenance-checked
/// cache ([`super::calibration`]), and where batches go (device memory on the Jetson).
#[derive(Default)]
pub struct CalibrationInputs {
    pub source: Option<Box<dyn BatchSource>>,
    pub cache: Option<Box<dyn CacheStore>>,
    pub memory: Option<Box<dyn BindingMemory>>,
}

/// A built engine, in memory.
pub struct Built {
    pub engine: Vec<u8>,
    /// The engine inspector's JSON (as detailed as the profiling verbosity allows).
    pub layer_info: Option<String>,
    pub io: Vec<IoTensor>,
    pub calibration: Option<CalibrationSummary>,
    /// Layers pinned by `builder.layer_precisions` and the precision plan.
    pub pinned_layers: usize,
    pub build_seconds: f64,
}

/// The recipe field behind a builder flag, for "not in this TensorRT" errors.
fn flag_field(f: Flag) -> &'static str {
    match f {
        Flag::Fp16 | Flag::Int8 => "precision",
        Flag::GpuFallback | Flag::DirectIo => "target.gpu_fallback",
        Flag::ObeyPrecisionConstraints => "builder.layer_precisions",
        Flag::PreferPrecisionConstraints => "target.device",
        Flag::SparseWeights => "builder.sparsity",
        Flag::VersionCompatible => "builder.version_compatible",
        Flag::ExcludeLeanRuntime => "builder.exclude_lean_runtime",
    }
}

/// The calibrator's bindings: every network input at its calibration shape and type, checked
/// against the recipe's input contract (channels, height, width) and the stream's batch.
pub fn calibration_bindings(
    inputs: &[IoTensor],
    profiles: &[InputProfile],
    contract: &InputContract,
    batch: usize,
) -> Result<Vec<InputBinding>> {
    inputs
        .iter()
        .map(|t| {
            let shape = settings::calibration_shape(t, profiles)?;
            let dtype = match t.dtype {
                "float32" => InputType::F32,
                "float16" => InputType::F16,
                other => {
                    return Err(Error::Contract(format!(
                        "network input '{}' is {other}: the calibrator feeds float32 or float16 images",
                        t.name
                    )))
                }
            };
            if t.name != contract.tensor {
                return Err(Error::Contract(format!(
                    "network input '{}' is not the recipe's input.tensor '{}': calibration feeds one image input",
                    t.name, contract.tensor
                )));
            }
            if shape.len() != 4 || shape[1..] != contract.shape[1..] {
                return Err(Error::Contract(format!(
                    "network input '{}' calibrates at {shape:?} but input.shape is {:?}: fix input.shape (C, H, W) or the profile's opt",
                    t.name, contract.shape
                )));
            }
            if shape[0] != batch {
                return Err(Error::Contract(format!(
                    "network input '{}' calibrates with batch {} but the stream serves {batch}",
                    t.name, shape[0]
                )));
            }
            Ok(InputBinding {
                name: t.name.clone(),
                shape,
                dtype,
            })
        })
        .collect()
}

/// Parse, configure and build per `s`, then deserialize the plan (with builder, network and
/// config already freed) to read its tensors and layers. Writes only the timing cache.
pub fn build_serialized(
    s: &EngineSettings,
    contract: &InputContract,
    timing_cache: Option<&Path>,
    calib: CalibrationInputs,
    logger: &Logger,
) -> Result<Built> {
    let started = Instant::now();
    let builder = Builder::new(logger)?;
    if let Some(core) = s.dla_core {
        let n = builder.nb_dla_cores()?;
        if core >= n {
            return Err(Error::Invalid(format!(
                "target.dla_core {core}: this device has {n} DLA core(s) (Orin Nano has none); use device: gpu{}",
                if n > 0 { format!(" or a core below {n}") } else { String::new() }
            )));
        }
    }
    let mut network = builder.network(s.strongly_typed)?;
    network.parse_onnx(logger, &s.model)?;
    let inputs = network.inputs()?;
    settings::check_network_inputs(&inputs, &s.profiles)?;
    let pins = settings::resolve_pins(&s.layer_rules, &network.layer_names()?)?;
    for &(layer, dtype) in &pins {
        network
            .set_layer_precision(layer, dtype)
            .map_err(|e| unsupported_field("builder.layer_precisions", e))?;
    }

    let config = builder.config()?;
    for &f in &s.flags {
        config
            .set_flag(f, true)
            .map_err(|e| unsupported_field(flag_field(f), e))?;
    }
    for &(pool, bytes) in &s.pools {
        config.set_memory_pool(pool, bytes)?;
    }
    config.set_device(s.dla_core)?;
    if let Some(level) = s.optimization_level {
        config
            .set_optimization_level(level)
            .map_err(|e| unsupported_field("builder.optimization_level", e))?;
    }
    config.set_profiling_verbosity(s.profiling_verbosity)?;
    if !s.tactics_enable.is_empty() || !s.tactics_disable.is_empty() {
        config
            .set_tactic_sources(&s.tactics_enable, &s.tactics_disable)
            .map_err(|e| unsupported_field("builder.tactic_sources", e))?;
    }
    if let Some(level) = s.hardware_compatibility {
        config
            .set_hardware_compatibility(level)
            .map_err(|e| unsupported_field("builder.hardware_compatibility", e))?;
    }
    if let Some(path) = timing_cache {
        let bytes = timing_cache::read(path)?;
        config.set_timing_cache(bytes.as_deref()).map_err(|e| {
            Error::Invalid(format!(
                "{}: not a usable TensorRT timing cache ({e}); delete it to start a new one",
                path.display()
            ))
        })?;
    }
    // One profile; it is the calibration profile too when the calibrator runs.
    let calibrates = s.calibrator.is_some();
    if !s.profiles.is_empty() {
        let profile = builder.profile(&s.profiles)?;
        config.add_profile(&profile, calibrates)?;
    }
    let mut session = match s.calibrator {
        None => None,
        Some(kind) => {
            let missing = |what: &str| {
                Error::Unavailable {
                what: format!("the calibration {what}"),
                why: "INT8 through the calibrator needs calibration batches and none were supplied".into(),
                fix: "Run `trtforge calibrate` for this recipe first (its cache is reused), or give the recipe a Q/DQ model".into(),
            }
            };
            let source = calib.source.ok_or_else(|| missing("stream"))?;
            let memory = calib.memory.ok_or_else(|| missing("buffers"))?;
            let bindings =
                calibration_bindings(&inputs, &s.profiles, contract, source.batch_size())?;
            let state = CalibratorState::new(source, calib.cache, memory, bindings)?;
            Some(CalibrationSession::new(
                state,
                kind == CalibratorKind::MinMax,
            )?)
        }
    };
    let (plan, calibration) = builder.build(&network, &config, session.as_mut())?;
    if let Some(path) = timing_cache {
        timing_cache::store(path, |file| {
            let (bytes, combined) = config.merge_timing_cache(file)?;
            if !combined {
                log::warn!(
                    "timing cache {}: made on another device or TensorRT version; kept as it is, without this build's entries",
                    path.display()
                );
            }
            Ok(bytes)
        })?;
    }
    let engine = plan.as_slice().to_vec();
    drop(plan);
    // Free the build side before the engine exists twice in memory (4 and 8 GB Orins).
    drop(session);
    drop(config);
    drop(network);
    drop(builder);
    let build_seconds = started.elapsed().as_secs_f64();

    let runtime = TrtRuntime::new(logger)?;
    if let Some(core) = s.dla_core {
        runtime.set_dla_core(core)?;
    }
    let deserialized = runtime.deserialize(&engine)?;
    let io = deserialized.io_tensors()?;
    let layer_info = deserialized.layer_info_json().ok();
    Ok(Built {
        engine,
        layer_info,
        io,
        calibration,
        pinned_layers: pins.len(),
        build_seconds,
    })
}

/// `<engine>.layers.json`: the inspector's JSON (trtexec's --dumpLayerInfo).
pub fn layer_info_path(engine: &Path) -> PathBuf {
    let mut s = engine.as_os_str().to_owned();
    s.push(".layers.json");
    PathBuf::from(s)
}

fn read_text(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim_matches(['\0', '\n', ' ']).to_string())
        .filter(|s| !s.is_empty())
}

/// Load TensorRT, check its version against the recipe, build per the plan on GPU 0, and
/// write the engine, `<engine>.layers.json` and the manifest (all or none).
pub fn build_engine(
    job: &BuildJob,
    plan: &BuildPlan,
    mut calib: CalibrationInputs,
    allow_tensorrt_mismatch: bool,
) -> Result<Manifest> {
    let library = load(&Libraries::from_env())?;
    settings::check_library(
        &job.origin,
        job.target.tensorrt,
        library,
        allow_tensorrt_mismatch,
    )?;
    let s = settings::settings(job, plan, library)?;
    for n in &s.notes {
        log::info!("{n}");
    }
    let gpu = Gpu::open(0)?;
    if s.calibrator.is_some() && calib.memory.is_none() {
        calib.memory = Some(Box::new(DeviceBindings::new(gpu.clone())));
    }
    let logger = Logger::to_log()?;
    let timing = job.builder.timing_cache.as_deref();
    let built = build_serialized(&s, &job.input, timing, calib, &logger)?;

    let desc = |t: &IoTensor| TensorDesc {
        name: t.name.clone(),
        shape: t.dims.clone(),
        dtype: t.dtype.to_string(),
    };
    let (maj, min) = gpu.compute_capability()?;
    let cuda = crate::cuda::probe();
    let m = Manifest {
        tool_version: crate::TOOL_VERSION.into(),
        onnx_sha256: plan.onnx_sha256.clone(),
        recipe_sha256: plan.recipe_sha256.clone(),
        precision: plan.precision_name().into(),
        target: TargetDesc {
            device: if s.dla_core.is_some() { "dla" } else { "gpu" }.into(),
            dla_core: s.dla_core,
            gpu_fallback: job.target.gpu_fallback,
        },
        tensorrt: library.to_string(),
        cuda_runtime: cuda.runtime.version,
        cuda_driver: cuda.driver.version,
        gpu_name: gpu.name()?,
        compute_capability: format!("{maj}.{min}"),
        l4t_release: read_text("/etc/nv_tegra_release")
            .map(|s| s.lines().next().unwrap_or("").to_string()),
        module_model: read_text("/proc/device-tree/model"),
        inputs: built.io.iter().filter(|t| t.is_input).map(desc).collect(),
        outputs: built.io.iter().filter(|t| !t.is_input).map(desc).collect(),
        layers: built
            .layer_info
            .as_deref()
            .and_then(|j| summarize_layers(j, s.dla_core.is_some())),
        settings: serde_json::to_value(&s).ok(),
        calibration_cache_sha256: built
            .calibration
            .as_ref()
            .and_then(|c| c.cache_sha256.clone()),
        build_seconds: built.build_seconds,
        engine_sha256: crate::util::sha256_hex(&built.engine),
    };
    write_artifacts(&plan.engine, &built, &m, s.dump_layer_info)?;
    Ok(m)
}

/// Engine, layer information, manifest: each replaced atomically; when one fails, the ones
/// already written are removed, so no engine is left without its manifest.
fn write_artifacts(engine: &Path, built: &Built, m: &Manifest, layers: bool) -> Result<()> {
    let mut files: Vec<(PathBuf, Vec<u8>)> = vec![(engine.to_path_buf(), built.engine.clone())];
    if let (true, Some(j)) = (layers, &built.layer_info) {
        files.push((layer_info_path(engine), j.clone().into_bytes()));
    }
    let text = crate::error::to_json_pretty(m)? + "\n";
    files.push((manifest::manifest_path(engine), text.into_bytes()));
    for (i, (path, bytes)) in files.iter().enumerate() {
        if let Err(e) = crate::util::write_atomic(path, bytes) {
            for (done, _) in &files[..i] {
                let _ = std::fs::remove_file(done);
            }
            return Err(e);
        }
    }
    Ok(())
}
