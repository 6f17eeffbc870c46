//! The recipe schema: everything a build depends on. Field names are the YAML keys.
//! Unknown keys are errors (`deny_unknown_fields` everywhere). The input contract and the
//! image-set policies are the data module's types, used here as recipe sections.

pub use crate::data::{
    ChannelOrder, InputContract, InputDtype, Interpolation, OnUnreadable, Order, ResizeMode,
};
use crate::trt::TrtVersion;
pub use crate::trt::{ProfilingVerbosity, TacticSource};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    /// ONNX model, relative to the recipe's folder.
    pub model: PathBuf,
    pub input: InputContract,
    #[serde(default)]
    pub calibration: Option<Calibration>,
    #[serde(default)]
    pub precision: Precision,
    #[serde(default)]
    pub target: Target,
    #[serde(default)]
    pub builder: Builder,
    /// Folder for artifacts, relative to the recipe's folder.
    #[serde(default = "default_output")]
    pub output: PathBuf,
    /// How to decode the model's outputs into detections (for `eval`).
    #[serde(default)]
    pub decoder: Option<Decoder>,
    /// Default evaluation set (for `eval`); flags override it.
    #[serde(default)]
    pub eval: Option<EvalSet>,
    /// Explicit quantization (Q/DQ ONNX) and the accuracy-aware plan (`trtforge quantize`).
    #[serde(default)]
    pub quantize: Option<Quantize>,
}

fn default_output() -> PathBuf {
    PathBuf::from("../build")
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    /// A folder of images, or a text file listing one image path per line.
    pub images: PathBuf,
    /// Use at most this many images (after ordering).
    #[serde(default)]
    pub limit: Option<usize>,
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    #[serde(default)]
    pub order: Order,
    /// Seed for `order: shuffled`.
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub algorithm: Algorithm,
    /// Percentile for `percentile` (default 99.99).
    #[serde(default)]
    pub percentile: Option<f64>,
    /// Histogram bins (default 2048).
    #[serde(default)]
    pub bins: Option<usize>,
    /// Flag tensors whose chosen threshold clips more than this share of values (default 0.001).
    #[serde(default)]
    pub max_clip_share: Option<f64>,
    /// Algorithm for graph inputs, whose range the contract already fixes (default minmax).
    #[serde(default)]
    pub input_algorithm: Option<Algorithm>,
    #[serde(default)]
    pub on_unreadable: OnUnreadable,
    /// Drop NaN/Inf activations (counted and reported) instead of failing.
    #[serde(default)]
    pub drop_nonfinite: bool,
}

fn default_batch() -> usize {
    1
}

impl Calibration {
    /// A calibration section naming only its images (every other field at its default),
    /// as `--images DIR` makes one for a recipe without a calibration section.
    pub fn with_images(images: PathBuf) -> Self {
        Calibration {
            images,
            limit: None,
            batch_size: default_batch(),
            order: Order::default(),
            seed: 0,
            algorithm: Algorithm::default(),
            percentile: None,
            bins: None,
            max_clip_share: None,
            input_algorithm: None,
            on_unreadable: OnUnreadable::default(),
            drop_nonfinite: false,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    #[default]
    Entropy,
    Minmax,
    Percentile,
    Mse,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    Fp32,
    Fp16,
    Int8,
    /// FP16 + INT8, TensorRT picks per layer.
    Best,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Target {
    #[serde(default)]
    pub device: Device,
    /// DLA core index when `device: dla`.
    #[serde(default)]
    pub dla_core: Option<u32>,
    /// Let layers DLA cannot run fall back to the GPU.
    #[serde(default = "yes")]
    pub gpu_fallback: bool,
    /// TensorRT version the artifacts are for, `major.minor[.patch]` (default 10.3: JetPack 6.1/6.2).
    #[serde(default = "default_trt")]
    pub tensorrt: TrtVersion,
}

fn yes() -> bool {
    true
}
fn default_trt() -> TrtVersion {
    TrtVersion {
        major: 10,
        minor: 3,
        patch: 0,
    }
}

impl Default for Target {
    fn default() -> Self {
        Target {
            device: Device::Gpu,
            dla_core: None,
            gpu_fallback: true,
            tensorrt: default_trt(),
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    #[default]
    Gpu,
    Dla,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Builder {
    /// Workspace memory pool limit in MiB.
    #[serde(default)]
    pub workspace_mib: Option<u64>,
    /// Timing cache file, relative to the recipe's folder.
    #[serde(default)]
    pub timing_cache: Option<PathBuf>,
    /// Builder optimization level 0..5 (TensorRT 8.6+).
    #[serde(default)]
    pub optimization_level: Option<u32>,
    /// Optimization profile per dynamic input.
    #[serde(default)]
    pub profiles: BTreeMap<String, ShapeProfile>,
    /// `precision_plan.json` of `trtforge quantize`, relative to the recipe's folder: on the
    /// calibrator path its layers are pinned to FP16 (precision constraints obeyed).
    #[serde(default)]
    pub precision_plan: Option<PathBuf>,
    /// Where the engine goes (trtexec's --saveEngine), relative to the recipe's folder
    /// (default: `<output>/<recipe name>.engine`).
    #[serde(default)]
    pub engine: Option<PathBuf>,
    /// Per-layer precisions (trtexec's --layerPrecisions): the first entry whose pattern matches
    /// a layer name wins (`*` any characters, `?` one). Precision constraints are then obeyed.
    #[serde(default)]
    pub layer_precisions: Vec<LayerPrecision>,
    /// What the engine inspector can tell about layers later (default detailed).
    #[serde(default)]
    pub profiling_verbosity: ProfilingVerbosity,
    /// Write the engine inspector's JSON beside the engine as `<engine>.layers.json`
    /// (trtexec's --dumpLayerInfo; default true).
    #[serde(default)]
    pub dump_layer_info: Option<bool>,
    /// Tactic sources to enable and disable (trtexec's --tacticSources).
    #[serde(default)]
    pub tactic_sources: TacticSources,
    /// DLA memory pool limits in MiB (trtexec's --memPoolSize dlaSRAM/dlaLocalDRAM/dlaGlobalDRAM).
    #[serde(default)]
    pub dla_sram_mib: Option<u64>,
    #[serde(default)]
    pub dla_local_dram_mib: Option<u64>,
    #[serde(default)]
    pub dla_global_dram_mib: Option<u64>,
    /// A version-compatible engine (TensorRT 8.6+), optionally without the lean runtime.
    #[serde(default)]
    pub version_compatible: bool,
    #[serde(default)]
    pub exclude_lean_runtime: bool,
    /// Hardware compatibility level (TensorRT 8.6+).
    #[serde(default)]
    pub hardware_compatibility: HardwareCompatibility,
    /// Use 2:4 structured sparsity where the weights have it (kSPARSE_WEIGHTS).
    #[serde(default)]
    pub sparsity: bool,
}

/// One `builder.layer_precisions` entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LayerPrecision {
    /// A layer name or a pattern (`*`, `?`); the ONNX parser names layers after their nodes.
    pub layers: String,
    pub precision: LayerType,
}

/// The precision a layer can be pinned to.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LayerType {
    Fp32,
    Fp16,
    Int8,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct TacticSources {
    #[serde(default)]
    pub enable: Vec<TacticSource>,
    #[serde(default)]
    pub disable: Vec<TacticSource>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum HardwareCompatibility {
    #[default]
    None,
    AmperePlus,
    /// TensorRT 10.16+.
    SameComputeCapability,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ShapeProfile {
    pub min: Vec<i64>,
    pub opt: Vec<i64>,
    pub max: Vec<i64>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Decoder {
    Yolox,
    Nanodet,
    Fastestdet,
    /// YOLOv8 / YOLO11 anchor-free head, output 1x(4+nc)xN.
    Yolov8,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EvalSet {
    pub images: PathBuf,
    pub labels: PathBuf,
    #[serde(default)]
    pub limit: Option<usize>,
    /// Score threshold before NMS (default 0.001, as COCO evaluation expects).
    #[serde(default)]
    pub score_threshold: Option<f32>,
    /// NMS IoU threshold (default 0.65).
    #[serde(default)]
    pub iou_threshold: Option<f32>,
}

/// Options of `trtforge quantize`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Quantize {
    /// Ops quantized besides Conv/ConvTranspose/Gemm/MatMul: any of `add`, `concat`,
    /// `maxpool`, `globalaveragepool`.
    #[serde(default)]
    pub ops: Vec<QuantOp>,
    /// Validation images (must not share any image, by content, with the calibration set).
    #[serde(default)]
    pub validation: Option<ValidationSet>,
    /// Largest mAP@0.5:0.95 drop from FP32 the plan may leave (default 0.015).
    #[serde(default)]
    pub max_map_drop: Option<f64>,
    /// Smallest share of MACs that must stay INT8 (default 0.8).
    #[serde(default)]
    pub min_int8_macs: Option<f64>,
    /// Calibration images the sensitivity proxy (output error with one layer in float) runs
    /// on (default 8).
    #[serde(default)]
    pub sensitivity_images: Option<usize>,
    /// Time budget of the accuracy-aware search in seconds (default 600).
    #[serde(default)]
    pub time_budget_s: Option<u64>,
    /// Layer-wise refinements before the plan: `auto` (the default) tries all four in turn
    /// and keeps each that lowers the all-INT8 model's output error on the selection images;
    /// a list applies those (still measured and reported); `[]` none.
    #[serde(default)]
    pub refine: Option<RefineSetting>,
    /// Calibration images the refinements are computed on (default 8).
    #[serde(default)]
    pub refine_images: Option<usize>,
}

/// `quantize.refine`: `auto` or an explicit list.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(untagged)]
pub enum RefineSetting {
    Mode(RefineMode),
    List(Vec<Refinement>),
}

/// The valid names, for the error a misspelt one gets.
const REFINE_EXPECTED: &str =
    "expected auto, [] or a list of range_choice, weight_scales, bias_correction, depthwise_equalization";

/// By hand rather than derived: serde's untagged enums only say "did not match any
/// variant", which names neither the bad word nor the good ones.
impl<'de> Deserialize<'de> for RefineSetting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{Error, IntoDeserializer};
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Word(String),
            List(Vec<String>),
        }
        let parse = |word: &str| -> Result<Refinement, D::Error> {
            Refinement::deserialize(word.into_deserializer()).map_err(
                |_: serde::de::value::Error| {
                    D::Error::custom(format!("unknown refinement '{word}'; {REFINE_EXPECTED}"))
                },
            )
        };
        match Raw::deserialize(d).map_err(|_| D::Error::custom(REFINE_EXPECTED))? {
            Raw::Word(w) if w == "auto" => Ok(RefineSetting::Mode(RefineMode::Auto)),
            Raw::Word(w) => Err(D::Error::custom(format!(
                "unknown setting '{w}'; {REFINE_EXPECTED}"
            ))),
            Raw::List(l) => l
                .iter()
                .map(|w| parse(w))
                .collect::<Result<_, _>>()
                .map(RefineSetting::List),
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RefineMode {
    Auto,
}

/// A layer-wise refinement of the Q/DQ model (see `quant::refine`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Refinement {
    /// Per activation: the calibrated range or another algorithm's, whichever minimises the
    /// error of the layers that read it.
    RangeChoice,
    /// Per weight channel: the scale minimising the layer's output error.
    WeightScales,
    /// Per output channel: the mean output error, subtracted from the bias.
    BiasCorrection,
    /// Per input channel of a depthwise conv: its own quantization step, realised by an
    /// exact rescaling (a Mul before the input's Q/DQ, the inverse folded into the weights).
    DepthwiseEqualization,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum QuantOp {
    Add,
    Concat,
    Maxpool,
    Globalaveragepool,
}

/// Held-out images with YOLO labels, ordered by file name, `skip` first then `limit`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ValidationSet {
    pub images: PathBuf,
    /// YOLO label folder (default: `labels` beside the images folder).
    #[serde(default)]
    pub labels: Option<PathBuf>,
    #[serde(default)]
    pub skip: usize,
    #[serde(default)]
    pub limit: Option<usize>,
    /// Share of these images held out to confirm the plan (default 0.5): the search chooses
    /// layers on the rest, and the gate and the reported mAP are judged on this part only.
    /// 0 judges on the images the plan was chosen on (not recommended).
    #[serde(default)]
    pub confirm: Option<f64>,
}
