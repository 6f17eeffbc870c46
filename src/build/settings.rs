//! What the TensorRT build will ask for, decided without TensorRT (always compiled, so each
//! rule is tested on every machine): the precision flags for the loaded library's version,
//! layer pins, the DLA, memory pools, optimization profiles and the calibration profile.
//! `build::engine` (feature `tensorrt`) only carries the settings out.
//!
//! The rules, with their source:
//! - TensorRT 8.5 to 10.x build weakly typed networks: Q/DQ nodes need kINT8, and `best`
//!   adds kFP16 so the layers the Q/DQ nodes leave alone may run FP16 (trtexec `--best`);
//!   a Q/DQ model is INT8 where its nodes say whatever the precision (`fp16` adds kFP16).
//! - TensorRT 11 networks are always strongly typed, without kFP16/kINT8 or per-layer
//!   precision: FP16 comes from the model itself (the FP16 rewrite, [`crate::quant::fp16`]),
//!   INT8 from its Q/DQ nodes.
//! - DLA (trtexec's `setUpDLA` path): the core must exist; FP32 is not permitted there, so an
//!   FP32 build becomes FP16 as trtexec does; GPU fallback, else kDIRECT_IO; DLA builds prefer
//!   precision constraints unless pins require obeying them.
//! - Layer pins (trtexec's `--layerPrecisions`) are obeyed: kOBEY_PRECISION_CONSTRAINTS.

use super::plan::{BuildPlan, Int8Source};
use crate::error::{Error, Result};
use crate::recipe::{
    Algorithm, BuildJob, Device, HardwareCompatibility, LayerType, Precision, RecipeOrigin,
};
use crate::trt::{DataType, Flag, InputProfile, IoTensor, Pool, ProfilingVerbosity};
use crate::trt::{TacticSource, TrtVersion};
use serde::Serialize;
use std::path::PathBuf;

/// Which TensorRT calibrator runs during the build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CalibratorKind {
    Entropy2,
    MinMax,
}

/// One layer pin: layers whose name matches `pattern` (`*`, `?`, `[...]`) run in `dtype`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerRule {
    pub pattern: String,
    pub dtype: DataType,
    /// Where the rule comes from, for errors.
    pub source: String,
}

/// Everything the TensorRT build is asked for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EngineSettings {
    /// The loaded library's version: the rules above follow it.
    pub library: TrtVersion,
    /// The ONNX file the parser reads (the FP16 rewrite on TensorRT 11 fp16/best builds).
    pub model: PathBuf,
    pub strongly_typed: bool,
    /// Flags turned on, in this order.
    pub flags: Vec<Flag>,
    pub pools: Vec<(Pool, u64)>,
    /// `Some(core)`: the DLA is the default device.
    pub dla_core: Option<u32>,
    pub optimization_level: Option<u32>,
    pub profiling_verbosity: ProfilingVerbosity,
    pub tactics_enable: Vec<TacticSource>,
    pub tactics_disable: Vec<TacticSource>,
    /// TensorRT's HardwareCompatibilityLevel number, when not the default.
    pub hardware_compatibility: Option<u32>,
    /// One optimization profile (empty: static shapes).
    pub profiles: Vec<InputProfile>,
    pub calibrator: Option<CalibratorKind>,
    /// Recipe `builder.layer_precisions` first (first match wins), then the precision plan.
    pub layer_rules: Vec<LayerRule>,
    pub dump_layer_info: bool,
    /// Decisions worth a line in the report.
    pub notes: Vec<String>,
}

const MIB: u64 = 1 << 20;

/// Refuse a library whose major.minor differs from the recipe's `target.tensorrt`: artifacts
/// are made for one version (engines and caches do not move across versions).
pub fn check_library(
    origin: &RecipeOrigin,
    target: TrtVersion,
    library: TrtVersion,
    allow_mismatch: bool,
) -> Result<()> {
    if (target.major, target.minor) == (library.major, library.minor) || allow_mismatch {
        return Ok(());
    }
    Err(origin.field_error(
        "target.tensorrt",
        format!(
            "the recipe targets TensorRT {target} but the loaded library is TensorRT {library}; \
             set target.tensorrt: '{}.{}' (engines do not move between versions), or pass \
             --allow-tensorrt-mismatch to build for the loaded one anyway",
            library.major, library.minor
        ),
    ))
}

fn dtype_of(t: LayerType) -> DataType {
    match t {
        LayerType::Fp32 => DataType::Float,
        LayerType::Fp16 => DataType::Half,
        LayerType::Int8 => DataType::Int8,
    }
}

/// Decide the build's settings for `library` from the job and its CPU plan.
pub fn settings(job: &BuildJob, plan: &BuildPlan, library: TrtVersion) -> Result<EngineSettings> {
    let b = &job.builder;
    let origin = &job.origin;
    let mut notes = vec![];
    let strongly_typed = library.always_strongly_typed();
    let dla = job.target.device == Device::Dla;
    if dla && !library.has_jetson_dla() {
        return Err(origin.field_error(
            "target.device",
            format!(
                "TensorRT {library} has no DLA on Jetson (JetPack 7: Thor has none and the 10.16 \
                 Orin build has none); use device: gpu"
            ),
        ));
    }

    let mut flags: Vec<Flag> = vec![];
    let mut model = plan.model.clone();
    let calibrator = match plan.int8 {
        Int8Source::Calibrator if !library.has_calibrator() => {
            return Err(origin.field_error(
                "precision",
                format!(
                    "TensorRT {library} has no calibrator: INT8 needs a Q/DQ model (export one \
                     with `trtforge quantize`)"
                ),
            ))
        }
        Int8Source::Calibrator => {
            let minmax = job.calibration.as_ref().map(|c| c.calibration.algorithm)
                == Some(Algorithm::Minmax);
            Some(if minmax {
                CalibratorKind::MinMax
            } else {
                CalibratorKind::Entropy2
            })
        }
        _ => None,
    };
    let wants_fp16 = matches!(job.precision, Precision::Fp16 | Precision::Best);
    if strongly_typed {
        if wants_fp16 {
            model = plan.fp16_model.clone().ok_or_else(|| {
                Error::internal("TensorRT 11 FP16 build without the FP16 rewrite of the model")
            })?;
            notes.push(format!(
                "TensorRT {library} is strongly typed: FP16 comes from {}",
                model.display()
            ));
        }
    } else {
        if wants_fp16 {
            flags.push(Flag::Fp16);
        }
        if plan.int8 != Int8Source::None {
            flags.push(Flag::Int8);
        }
    }

    let layer_rules = layer_rules(job, plan, library)?;
    if !layer_rules.is_empty() && !strongly_typed {
        // A pin to a precision the flags do not allow would be ignored by TensorRT.
        if layer_rules.iter().any(|r| r.dtype == DataType::Half) && !flags.contains(&Flag::Fp16) {
            flags.push(Flag::Fp16);
        }
        if layer_rules.iter().any(|r| r.dtype == DataType::Int8) && !flags.contains(&Flag::Int8) {
            return Err(origin.field_error(
                "builder.layer_precisions",
                "an int8 pin needs INT8 scales: precision int8 or best with a calibration section, or a Q/DQ model",
            ));
        }
        flags.push(Flag::ObeyPrecisionConstraints);
    }

    let bytes = |field: &str, mib: u64| {
        mib.checked_mul(MIB)
            .ok_or_else(|| origin.field_error(field, format!("{mib} MiB is out of range")))
    };
    let mut pools = vec![];
    if let Some(mib) = b.workspace_mib {
        pools.push((Pool::Workspace, bytes("builder.workspace_mib", mib)?));
    }
    let dla_pools = [
        ("builder.dla_sram_mib", b.dla_sram_mib, Pool::DlaManagedSram),
        (
            "builder.dla_local_dram_mib",
            b.dla_local_dram_mib,
            Pool::DlaLocalDram,
        ),
        (
            "builder.dla_global_dram_mib",
            b.dla_global_dram_mib,
            Pool::DlaGlobalDram,
        ),
    ];
    for (field, mib, pool) in dla_pools {
        match mib {
            Some(_) if !dla => {
                return Err(origin.field_error(
                    field,
                    "DLA memory pools apply to DLA builds only (target.device: dla)",
                ))
            }
            Some(m) => pools.push((pool, bytes(field, m)?)),
            None => {}
        }
    }

    let dla_core = if dla {
        let core = job.target.dla_core.unwrap_or(0);
        if calibrator == Some(CalibratorKind::MinMax) {
            return Err(origin.field_error(
                "calibration.algorithm",
                "TensorRT's DLA takes entropy calibration only (IInt8EntropyCalibrator2); use algorithm: entropy",
            ));
        }
        if !strongly_typed && !flags.contains(&Flag::Fp16) && !flags.contains(&Flag::Int8) {
            flags.push(Flag::Fp16);
            notes.push("FP32 is not permitted on the DLA: FP16 (as trtexec does)".into());
        }
        if !flags.contains(&Flag::ObeyPrecisionConstraints) && !strongly_typed {
            flags.push(Flag::PreferPrecisionConstraints);
        }
        flags.push(if job.target.gpu_fallback {
            Flag::GpuFallback
        } else {
            Flag::DirectIo
        });
        Some(core)
    } else {
        None
    };

    if b.sparsity {
        flags.push(Flag::SparseWeights);
    }
    if b.exclude_lean_runtime && !b.version_compatible {
        return Err(origin.field_error(
            "builder.exclude_lean_runtime",
            "applies to version-compatible engines only: set builder.version_compatible: true",
        ));
    }
    if b.version_compatible {
        flags.push(Flag::VersionCompatible);
        if b.exclude_lean_runtime {
            flags.push(Flag::ExcludeLeanRuntime);
        }
    }
    let hardware_compatibility = match b.hardware_compatibility {
        HardwareCompatibility::None => None,
        _ if dla => {
            return Err(origin.field_error(
                "builder.hardware_compatibility",
                "hardware compatibility does not apply to DLA engines; use none",
            ))
        }
        HardwareCompatibility::AmperePlus => Some(1),
        HardwareCompatibility::SameComputeCapability
            if (library.major, library.minor) < (10, 16) =>
        {
            return Err(origin.field_error(
                "builder.hardware_compatibility",
                format!("same-compute-capability needs TensorRT 10.16+, this is {library}"),
            ))
        }
        HardwareCompatibility::SameComputeCapability => Some(2),
    };
    let profiles: Vec<InputProfile> = b
        .profiles
        .iter()
        .map(|(name, p)| InputProfile {
            name: name.clone(),
            min: p.min.clone(),
            opt: p.opt.clone(),
            max: p.max.clone(),
        })
        .collect();

    Ok(EngineSettings {
        library,
        model,
        strongly_typed,
        flags,
        pools,
        dla_core,
        optimization_level: b.optimization_level,
        profiling_verbosity: b.profiling_verbosity,
        tactics_enable: b.tactic_sources.enable.clone(),
        tactics_disable: b.tactic_sources.disable.clone(),
        hardware_compatibility,
        profiles,
        calibrator,
        layer_rules,
        dump_layer_info: b.dump_layer_info.unwrap_or(true),
        notes,
    })
}

/// The recipe's `builder.layer_precisions`, then the precision plan's FP16 layers.
fn layer_rules(job: &BuildJob, plan: &BuildPlan, library: TrtVersion) -> Result<Vec<LayerRule>> {
    let mut rules: Vec<LayerRule> = job
        .builder
        .layer_precisions
        .iter()
        .map(|l| LayerRule {
            pattern: l.layers.clone(),
            dtype: dtype_of(l.precision),
            source: "builder.layer_precisions".into(),
        })
        .collect();
    for r in &rules {
        glob::Pattern::new(&r.pattern).map_err(|e| {
            job.origin.field_error(
                "builder.layer_precisions",
                format!("'{}' is not a layer pattern: {e}", r.pattern),
            )
        })?;
    }
    if library.always_strongly_typed() {
        // Precision lives in the model: FP32 pins are kept out of the FP16 rewrite (plan), and
        // FP16 pins are what an fp16/best rewrite already does.
        let fp16_build = matches!(job.precision, Precision::Fp16 | Precision::Best);
        if let Some(r) = rules
            .iter()
            .find(|r| r.dtype == DataType::Int8 || (r.dtype == DataType::Half && !fp16_build))
        {
            return Err(job.origin.field_error(
                "builder.layer_precisions",
                format!(
                    "TensorRT {library} is strongly typed: '{}' cannot be pinned to {}; INT8 comes from Q/DQ nodes (`trtforge quantize`), FP16 from precision fp16 or best",
                    r.pattern,
                    if r.dtype == DataType::Int8 { "int8" } else { "fp16" }
                ),
            ));
        }
        return Ok(vec![]);
    }
    let plan_source = job
        .builder
        .precision_plan
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    rules.extend(plan.fp16_layers.iter().map(|l| LayerRule {
        pattern: glob::Pattern::escape(l),
        dtype: DataType::Half,
        source: plan_source.clone(),
    }));
    Ok(rules)
}

/// The pin of each layer (index into `layers`), by the first rule that matches its name.
/// A rule that matches no layer is an error: a misspelt name would otherwise change nothing.
pub fn resolve_pins(rules: &[LayerRule], layers: &[String]) -> Result<Vec<(usize, DataType)>> {
    let patterns: Vec<glob::Pattern> = rules
        .iter()
        .map(|r| {
            glob::Pattern::new(&r.pattern)
                .map_err(|e| Error::Invalid(format!("{}: '{}': {e}", r.source, r.pattern)))
        })
        .collect::<Result<_>>()?;
    let mut used = vec![false; rules.len()];
    let mut pins = vec![];
    for (i, name) in layers.iter().enumerate() {
        if let Some(k) = patterns.iter().position(|p| p.matches(name)) {
            used[k] = true;
            pins.push((i, rules[k].dtype));
        }
    }
    if let Some(k) = used.iter().position(|u| !u) {
        let sample: Vec<&str> = layers.iter().take(5).map(String::as_str).collect();
        return Err(Error::Invalid(format!(
            "{}: '{}' matches no layer of the parsed network (layers are named after their ONNX nodes, e.g. {}); fix the name or the pattern",
            rules[k].source,
            rules[k].pattern,
            sample.join(", ")
        )));
    }
    Ok(pins)
}

/// The shape TensorRT calibrates input `t` with: its static dims, else the calibration
/// profile's opt (the build's one profile).
pub fn calibration_shape(t: &IoTensor, profiles: &[InputProfile]) -> Result<Vec<usize>> {
    let dims: Vec<i64> = if t.dims.iter().all(|d| *d > 0) {
        t.dims.clone()
    } else {
        profiles
            .iter()
            .find(|p| p.name == t.name)
            .map(|p| p.opt.clone())
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "input '{}' has dynamic dims {:?}: add builder.profiles.{} (min, opt, max); the calibrator reads opt",
                    t.name, t.dims, t.name
                ))
            })?
    };
    Ok(dims.iter().map(|d| *d as usize).collect())
}

/// Every network input has an optimization profile when it has a dynamic dimension, and
/// every profile names a network input with its rank.
pub fn check_network_inputs(inputs: &[IoTensor], profiles: &[InputProfile]) -> Result<()> {
    for t in inputs.iter().filter(|t| t.dims.iter().any(|d| *d < 0)) {
        if !profiles.iter().any(|p| p.name == t.name) {
            return Err(Error::Invalid(format!(
                "input '{}' has dynamic dims {:?}: add builder.profiles.{} with min, opt and max shapes",
                t.name, t.dims, t.name
            )));
        }
    }
    for p in profiles {
        let Some(t) = inputs.iter().find(|t| t.name == p.name) else {
            let names: Vec<&str> = inputs.iter().map(|t| t.name.as_str()).collect();
            return Err(Error::Invalid(format!(
                "builder.profiles.{}: the network has no such input (inputs: {})",
                p.name,
                names.join(", ")
            )));
        };
        let fits = t.dims.len() == p.opt.len()
            && t.dims
                .iter()
                .zip(&p.min)
                .zip(&p.max)
                .all(|((d, lo), hi)| *d < 0 || (lo == d && hi == d));
        if !fits {
            return Err(Error::Invalid(format!(
                "builder.profiles.{}: min {:?} / max {:?} do not fit the input's dims {:?} (static dims must be equal, ranks too)",
                p.name, p.min, p.max, t.dims
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
