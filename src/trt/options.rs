//! What a TensorRT build can be asked for, as plain data (always compiled): the build plan
//! decides these without TensorRT, and tests check the decisions everywhere. The `safe` layer
//! maps them onto the shim's numbers.

/// Builder flags trtforge sets. Absent ones (kFP16, kINT8 and the precision-constraint flags
/// on TensorRT 11) are refused by the shim when set, never silently dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Flag {
    Fp16,
    Int8,
    GpuFallback,
    DirectIo,
    ObeyPrecisionConstraints,
    PreferPrecisionConstraints,
    SparseWeights,
    VersionCompatible,
    ExcludeLeanRuntime,
}

/// Memory pools with a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pool {
    Workspace,
    DlaManagedSram,
    DlaLocalDram,
    DlaGlobalDram,
}

/// TensorRT's ProfilingVerbosity (what the engine inspector can later say about layers),
/// with TensorRT's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProfilingVerbosity {
    LayerNamesOnly = 0,
    None = 1,
    #[default]
    Detailed = 2,
}

/// Tactic sources (the shim maps them to TensorRT's by name: the numbering changed in 11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TacticSource {
    Cublas,
    CublasLt,
    Cudnn,
    EdgeMaskConvolutions,
    JitConvolutions,
}

/// `nvinfer1::DataType` (the same numbers in TensorRT 8.5 to 11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DataType {
    Float = 0,
    Half = 1,
    Int8 = 2,
    Int32 = 3,
}

/// TensorRT's name for a DataType number, as manifests and messages print it.
pub fn dtype_name(d: i32) -> &'static str {
    match d {
        0 => "float32",
        1 => "float16",
        2 => "int8",
        3 => "int32",
        4 => "bool",
        5 => "uint8",
        6 => "fp8",
        7 => "bfloat16",
        8 => "int64",
        9 => "int4",
        _ => "unknown",
    }
}

/// A network or engine tensor: name, dims (-1 = dynamic) and type name.
#[derive(Debug, Clone, PartialEq)]
pub struct IoTensor {
    pub name: String,
    pub is_input: bool,
    pub dims: Vec<i64>,
    pub dtype: &'static str,
}

/// Shapes of one dynamic input in an optimization profile.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct InputProfile {
    pub name: String,
    pub min: Vec<i64>,
    pub opt: Vec<i64>,
    pub max: Vec<i64>,
}
