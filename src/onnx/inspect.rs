//! `trtforge inspect`: a graph summary with MACs at the input size and a lint for pruned
//! models whose channel counts waste tensor-core work.

use super::{attr, node_key, Graph, Model, ShapeSource};
use crate::error::{Error, Result};
use onnx_protobuf::{tensor_proto::DataType, ValueInfoProto};
use protobuf::Enum;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// FP16 tensor cores work on channel multiples of 8, INT8 ones on multiples of 32.
pub const FP16_ALIGN: i64 = 8;
pub const INT8_ALIGN: i64 = 32;

#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    pub model: String,
    pub ir_version: i64,
    pub opset: i64,
    pub opset_imports: BTreeMap<String, i64>,
    pub producer: String,
    pub inputs: Vec<TensorInfo>,
    pub outputs: Vec<TensorInfo>,
    pub nodes: usize,
    /// Op type -> count, sorted by name.
    pub ops: BTreeMap<String, usize>,
    /// Weights: initializers (not graph inputs' defaults counted twice) and Constant tensors.
    pub params: u64,
    pub param_bytes: u64,
    /// Total MACs of Conv/ConvTranspose/Gemm/MatMul at `input_shapes`; None when shapes could
    /// not be computed (ONNX Runtime missing), see `shape_source`.
    pub macs: Option<u64>,
    pub input_shapes: BTreeMap<String, Vec<usize>>,
    pub shape_source: String,
    pub layers: Vec<LayerMacs>,
    pub alignment: Vec<AlignmentFinding>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TensorInfo {
    pub name: String,
    pub dtype: String,
    /// Each dimension is a number, or the symbolic name of a dynamic dimension ("?" if unnamed).
    pub shape: Vec<serde_json::Value>,
    pub dynamic: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct LayerMacs {
    pub node: String,
    pub op: String,
    pub output_shape: Vec<usize>,
    pub macs: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct AlignmentFinding {
    pub node: String,
    pub op: String,
    pub out_channels: i64,
    /// Channel count padded to a multiple of 8 (FP16) and 32 (INT8).
    pub fp16_padded: i64,
    pub int8_padded: i64,
    pub macs: Option<u64>,
    /// MACs spent on padding channels, in FP16 and INT8.
    pub wasted_macs_fp16: Option<u64>,
    pub wasted_macs_int8: Option<u64>,
}

/// Data type name as ONNX spells it.
pub fn dtype_name(t: i32) -> String {
    match DataType::from_i32(t) {
        Some(d) => format!("{d:?}").to_lowercase(),
        None => format!("type{t}"),
    }
}

fn dtype_size(t: i32) -> u64 {
    use DataType::*;
    match DataType::from_i32(t) {
        Some(UINT8 | INT8 | BOOL | FLOAT8E4M3FN | FLOAT8E4M3FNUZ | FLOAT8E5M2 | FLOAT8E5M2FNUZ) => {
            1
        }
        Some(UINT16 | INT16 | FLOAT16 | BFLOAT16) => 2,
        Some(FLOAT | INT32 | UINT32) => 4,
        Some(DOUBLE | INT64 | UINT64 | COMPLEX64) => 8,
        Some(COMPLEX128) => 16,
        _ => 0,
    }
}

fn tensor_info(v: &ValueInfoProto) -> TensorInfo {
    use onnx_protobuf::tensor_shape_proto::dimension::Value as Dim;
    use onnx_protobuf::type_proto::Value as Ty;
    let (dtype, dims) = match &v.type_.value {
        Some(Ty::TensorType(t)) => (
            dtype_name(t.elem_type),
            t.shape
                .dim
                .iter()
                .map(|d| d.value.clone())
                .collect::<Vec<_>>(),
        ),
        _ => ("unknown".into(), vec![]),
    };
    let mut dynamic = false;
    let shape = dims
        .into_iter()
        .map(|d| match d {
            Some(Dim::DimValue(n)) if n > 0 => serde_json::Value::from(n),
            Some(Dim::DimParam(p)) if !p.is_empty() => {
                dynamic = true;
                serde_json::Value::from(p)
            }
            _ => {
                dynamic = true;
                serde_json::Value::from("?")
            }
        })
        .collect();
    TensorInfo {
        name: v.name.clone(),
        dtype,
        shape,
        dynamic,
    }
}

/// The concrete shape of a real input: `overrides` first, else its declared static shape.
pub fn input_shape(
    model: &Model,
    name: &str,
    overrides: &BTreeMap<String, Vec<usize>>,
) -> Result<Vec<usize>> {
    if let Some(s) = overrides.get(name) {
        return Ok(s.clone());
    }
    let v = Graph::new(model)
        .real_inputs()
        .into_iter()
        .find(|v| v.name == name)
        .ok_or_else(|| Error::Contract(format!("{}: no input '{name}'", model.path.display())))?;
    let info = tensor_info(v);
    info.shape
        .iter()
        .map(|d| d.as_u64().map(|n| n as usize))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| {
            Error::Contract(format!(
                "{}: input '{name}' has dynamic dimensions {:?}; give a concrete shape with --shape {name}:1x3x640x640",
                model.path.display(),
                info.shape
            ))
        })
}

/// Element count, saturating (a hostile model's dims must not overflow a statistic).
fn elements(dims: &[i64]) -> u64 {
    dims.iter()
        .map(|&d| d.max(0) as u64)
        .fold(1u64, u64::saturating_mul)
}

/// Inspect without running anything; MACs need shapes from [`inspect_with_shapes`].
pub fn inspect(model: &Model) -> Inspection {
    let graph = Graph::new(model);
    let g = graph.proto();
    let mut ops = BTreeMap::new();
    for n in &g.node {
        *ops.entry(n.op_type.clone()).or_insert(0usize) += 1;
    }
    let (mut params, mut param_bytes) = (0u64, 0u64);
    for (_, t) in graph.constants() {
        let n = elements(&t.dims);
        params = params.saturating_add(n);
        param_bytes = param_bytes.saturating_add(n.saturating_mul(dtype_size(t.data_type)));
    }
    let mut warnings = support_warnings(model);
    if model.opset() < 13 {
        warnings.push(format!(
            "opset {} < 13: per-channel Q/DQ needs opset 13; `trtforge quantize` upgrades it",
            model.opset()
        ));
    }
    Inspection {
        model: model.path.display().to_string(),
        ir_version: model.proto.ir_version,
        opset: model.opset(),
        opset_imports: model
            .proto
            .opset_import
            .iter()
            .map(|o| {
                let d = if o.domain.is_empty() {
                    "ai.onnx".to_string()
                } else {
                    o.domain.clone()
                };
                (d, o.version)
            })
            .collect(),
        producer: format!(
            "{} {}",
            model.proto.producer_name, model.proto.producer_version
        )
        .trim()
        .to_string(),
        inputs: graph.real_inputs().into_iter().map(tensor_info).collect(),
        outputs: g.output.iter().map(tensor_info).collect(),
        nodes: g.node.len(),
        ops,
        params,
        param_bytes,
        macs: None,
        input_shapes: BTreeMap::new(),
        shape_source: "not computed".into(),
        layers: vec![],
        alignment: alignment_findings(&graph, None),
        warnings,
    }
}

/// Full inspection: the shape of every tensor at the given input shapes comes from `shapes`
/// (ONNX Runtime runs the model once on zeros: exact for every op, unlike a hand-written
/// shape inference).
pub fn inspect_with_shapes(
    model: &Model,
    overrides: &BTreeMap<String, Vec<usize>>,
    shapes: &dyn ShapeSource,
) -> Result<Inspection> {
    let mut ins = inspect(model);
    let graph = Graph::new(model);
    let mut input_shapes = BTreeMap::new();
    for v in graph.real_inputs() {
        input_shapes.insert(v.name.clone(), input_shape(model, &v.name, overrides)?);
    }
    for name in overrides.keys() {
        if !input_shapes.contains_key(name) {
            return Err(Error::Contract(format!(
                "{}: --shape names '{name}', which is not an input (inputs: {})",
                model.path.display(),
                input_shapes.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
    }
    let mut shapes = shapes.tensor_shapes(model, &input_shapes)?;
    for (n, s) in &input_shapes {
        shapes.insert(n.clone(), s.clone());
    }
    let layers = layer_macs(&graph, &shapes);
    ins.macs = Some(layers.iter().map(|l| l.macs).sum());
    ins.alignment = alignment_findings(&graph, Some(&layers));
    ins.layers = layers;
    ins.input_shapes = input_shapes;
    ins.shape_source = "onnxruntime".into();
    Ok(ins)
}

fn layer_macs(graph: &Graph, shapes: &HashMap<String, Vec<usize>>) -> Vec<LayerMacs> {
    let dims_of = |name: &str| -> Option<Vec<usize>> {
        shapes.get(name).cloned().or_else(|| {
            graph
                .constant(name)
                .map(|t| t.dims.iter().map(|&d| d.max(0) as usize).collect())
        })
    };
    let prod = |d: &[usize]| d.iter().map(|&x| x as u64).fold(1u64, u64::saturating_mul);
    let mut out = Vec::new();
    for (_, n) in graph.nodes() {
        let (Some(o), Some(a)) = (
            n.output.first().and_then(|o| dims_of(o)),
            n.input.first().and_then(|a| dims_of(a)),
        ) else {
            continue;
        };
        let w = n.input.get(1).and_then(|w| dims_of(w));
        let macs = match (n.op_type.as_str(), w) {
            // Each output element is a dot product over (Cin/groups) * kernel.
            ("Conv", Some(w)) if w.len() >= 2 => prod(&o).saturating_mul(prod(&w[1..])),
            // Each input element is scattered over (Cout/groups) * kernel outputs.
            ("ConvTranspose", Some(w)) if w.len() >= 2 => prod(&a).saturating_mul(prod(&w[1..])),
            ("Gemm", Some(_)) => {
                let trans_a = attr::int(n, "transA").ok().flatten().unwrap_or(0) != 0;
                let k = if trans_a { a.first() } else { a.get(1) };
                prod(&o).saturating_mul(k.copied().unwrap_or(0) as u64)
            }
            ("MatMul", Some(_)) => prod(&o).saturating_mul(a.last().copied().unwrap_or(0) as u64),
            _ => continue,
        };
        out.push(LayerMacs {
            node: node_key(n),
            op: n.op_type.clone(),
            output_shape: o,
            macs,
        });
    }
    out
}

fn round_up(c: i64, m: i64) -> i64 {
    (c + m - 1) / m * m
}

/// Every Conv/ConvTranspose whose output channels are not a multiple of 8 (FP16) or 32
/// (INT8), with the MACs spent on padding when MACs are known.
fn alignment_findings(graph: &Graph, layers: Option<&[LayerMacs]>) -> Vec<AlignmentFinding> {
    let mut out = Vec::new();
    for (_, n) in graph.nodes() {
        let groups = attr::int(n, "group").ok().flatten().unwrap_or(1).max(1);
        let cout = match n.op_type.as_str() {
            "Conv" => n
                .input
                .get(1)
                .and_then(|w| graph.constant(w))
                .and_then(|t| t.dims.first().copied()),
            "ConvTranspose" => n
                .input
                .get(1)
                .and_then(|w| graph.constant(w))
                .and_then(|t| t.dims.get(1).map(|c| c * groups)),
            _ => None,
        };
        let Some(c) = cout else { continue };
        if c <= 0 || c % INT8_ALIGN == 0 {
            continue;
        }
        let label = node_key(n);
        let macs = layers.and_then(|ls| ls.iter().find(|l| l.node == label).map(|l| l.macs));
        let wasted = |m: i64| macs.map(|x| x * (round_up(c, m) - c) as u64 / c as u64);
        out.push(AlignmentFinding {
            node: label,
            op: n.op_type.clone(),
            out_channels: c,
            fp16_padded: round_up(c, FP16_ALIGN),
            int8_padded: round_up(c, INT8_ALIGN),
            macs,
            wasted_macs_fp16: wasted(FP16_ALIGN),
            wasted_macs_int8: wasted(INT8_ALIGN),
        });
    }
    out
}

/// Ops the TensorRT ONNX parser rejects (onnx-tensorrt's operator matrix, 8.5 to 10.x).
const TRT_UNSUPPORTED: &[&str] = &[
    "Bernoulli",
    "BitShift",
    "BitwiseAnd",
    "BitwiseNot",
    "BitwiseOr",
    "BitwiseXor",
    "Col2Im",
    "ConcatFromSequence",
    "ImageDecoder",
    "MelWeightMatrix",
    "Multinomial",
    "Optional",
    "OptionalGetElement",
    "OptionalHasElement",
    "RegexFullMatch",
    "SequenceAt",
    "SequenceConstruct",
    "SequenceEmpty",
    "SequenceErase",
    "SequenceInsert",
    "SequenceLength",
    "SequenceMap",
    "SplitToSequence",
    "StringConcat",
    "StringNormalizer",
    "StringSplit",
    "TfIdfVectorizer",
    "Unique",
    "STFT",
];

/// Ops DLA runs (TensorRT's DLA supported-layers list, mapped to ONNX); others fall back to GPU.
const DLA_OPS: &[&str] = &[
    "Conv",
    "ConvTranspose",
    "Gemm",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "Relu",
    "LeakyRelu",
    "PRelu",
    "Sigmoid",
    "Tanh",
    "Clip",
    "Add",
    "Sub",
    "Mul",
    "Max",
    "Min",
    "BatchNormalization",
    "LRN",
    "Concat",
    "Resize",
    "Upsample",
    "Softmax",
    "Slice",
    "Reshape",
    "Flatten",
    "Transpose",
    "Identity",
    "Dropout",
    "Constant",
    "QuantizeLinear",
    "DequantizeLinear",
];

fn support_warnings(model: &Model) -> Vec<String> {
    let mut trt = BTreeMap::<&str, usize>::new();
    let mut dla = BTreeMap::<&str, usize>::new();
    for n in &model.proto.graph.node {
        let op = n.op_type.as_str();
        let custom_domain = !n.domain.is_empty() && n.domain != "ai.onnx";
        if custom_domain || TRT_UNSUPPORTED.contains(&op) {
            *trt.entry(op).or_default() += 1;
        }
        if !DLA_OPS.contains(&op) {
            *dla.entry(op).or_default() += 1;
        }
    }
    let mut w: Vec<String> = trt
        .iter()
        .map(|(op, n)| format!("{op} x{n}: not supported by TensorRT's ONNX parser (needs a plugin or a graph rewrite)"))
        .collect();
    if !dla.is_empty() {
        let list: Vec<String> = dla.iter().map(|(op, n)| format!("{op} x{n}")).collect();
        w.push(format!(
            "not DLA-capable, falls back to GPU on a DLA target: {}",
            list.join(", ")
        ));
    }
    w
}
