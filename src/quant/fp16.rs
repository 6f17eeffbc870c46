//! FP16 (mixed precision) written into the ONNX model, for strongly typed TensorRT networks:
//! TensorRT 11 has no kFP16 flag and no per-layer precision, so the types in the ONNX are the
//! precisions the engine runs. This is our AutoCast (TensorRT Model Optimizer's
//! `modelopt.onnx.autocast`), driven by the precision plan instead of by a calibration run.
//!
//! [`to_fp16`] makes FP16 every FLOAT node output except those of nodes kept in FP32, gives
//! the constants that converted nodes read FP16 copies (clamped to ±65504), and inserts a
//! Cast wherever an FP16 tensor meets an FP32 reader or the other way round: one Cast per
//! tensor and target type, shared by all its readers. The graph's inputs and outputs keep the
//! types they were declared with (Casts at the boundary), so callers feed and get what they
//! did before. Nodes stay in FP32 when:
//! - the plan keeps them (`keep_fp32`, by [`crate::onnx::node_key`]);
//! - an op rule says so ([`op_rule`]: Q/DQ, ops that exponentiate or accumulate, ops with no
//!   FP16 rule yet, custom domains, subgraphs);
//! - they compute only from constants and shapes (no activation reaches them): shape and
//!   constant arithmetic stays exact, and both ONNX Runtime and TensorRT fold it anyway.
//!
//! Input slots the ONNX spec types as float whatever the data type is stay FP32 (Resize's
//! roi and scales). Ops that accept any type and keep the meaning of their input whatever it
//! is (Shape, Size, Cast) read the tensor as it is. Element types come from the op (a table of
//! type rules), else from the model's value infos; a node whose types are unknown and that
//! would need converting is refused. Value infos of tensors that became FP16 are updated. The
//! written model is loaded into ONNX Runtime before it is returned: a model it refuses is an
//! error, never a result. That proves the types are consistent, not the FP16 accuracy: on
//! CPUs without FP16 arithmetic ONNX Runtime wraps FP16 nodes in Casts of its own and folds
//! them with ours, so it runs the model with FP32 activations (only the FP16 constants are
//! really rounded). tests/fp16.rs measures the accuracy with an emulation of FP16 storage.

use crate::error::{Error, Result};
use crate::onnx::{
    attr, float16_tensor, int_attr, node, node_reads, tensor, Graph, Model, NodeId, Patch,
};
use half::f16;
use onnx_protobuf::{tensor_proto::DataType, NodeProto};
use std::collections::{BTreeSet, HashMap, HashSet};

const F32: i32 = DataType::FLOAT as i32;
const F16: i32 = DataType::FLOAT16 as i32;
const I64: i32 = DataType::INT64 as i32;
const BOOL: i32 = DataType::BOOL as i32;
const U8: i32 = DataType::UINT8 as i32;

/// Why a node stays in FP32.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "by", content = "rule")]
pub enum KeepReason {
    /// Named in `keep_fp32` (the precision plan).
    Plan,
    /// An op rule, with its justification.
    OpRule(String),
}

/// A node [`to_fp16`] left in FP32.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeptNode {
    pub node: String,
    pub op: String,
    pub why: KeepReason,
}

/// What [`to_fp16`] did. Nodes that touch no FLOAT tensor (integer shape arithmetic) are in
/// neither list.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Fp16Summary {
    /// Nodes now running on FP16 tensors, by node key, in graph order.
    pub converted: Vec<String>,
    /// Nodes left in FP32, and why.
    pub kept: Vec<KeptNode>,
    pub casts_inserted: usize,
    /// Float constants (initializers and Constant values) given FP16 values.
    pub initializers_converted: usize,
    /// Finite constant values beyond ±65504, clamped to it.
    pub values_clamped: usize,
    /// Non-zero constant values below FP16's smallest subnormal (~6e-8) that became 0.
    pub values_flushed: usize,
}

impl Fp16Summary {
    pub fn nodes_converted(&self) -> usize {
        self.converted.len()
    }
    pub fn nodes_kept(&self) -> usize {
        self.kept.len()
    }
    /// The kept nodes whose reason is the plan.
    pub fn kept_by_plan(&self) -> impl Iterator<Item = &KeptNode> {
        self.kept.iter().filter(|k| k.why == KeepReason::Plan)
    }
}

/// What the op table says about an op in the default domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpRule {
    /// Runs in FP16; the listed input slots stay FP32 (the spec types them float).
    Convert { fp32_slots: &'static [usize] },
    /// Reads any type with the same meaning (fp16 values are exact in fp32): reads tensors
    /// as they are, writes the types the model says.
    AnyType,
    /// Stays in FP32, for the reason given.
    Keep(&'static str),
}

const QDQ: &str = "Q/DQ: scales and the float side stay FP32 (ONNX types them float before \
opset 19, TensorRT's Q/DQ scales are FP32; TensorRT's DequantizeLinear can still output FP16)";
const ACCUMULATES: &str = "accuracy: it exponentiates or accumulates sums or variances, which \
overflow FP16 (max 65504) or lose its 11-bit precision";
const RANKS: &str = "ranks scores: FP16 ties reorder the selected elements";
const NMS: &str = "NonMaxSuppression takes tensor(float) boxes and scores only";
const UPSAMPLE: &str =
    "deprecated Upsample: scales are tensor(float); AutoCast keeps it in FP32 too";
const RANGE: &str = "computes indices or coordinates: FP16 loses integers above 2048";
const NO_RULE: &str = "no FP16 rule for this op yet (add it to the op table once checked)";
const CONSTANT_MATH: &str = "computes from constants and shapes only: kept exact in FP32 \
(ONNX Runtime and TensorRT fold it)";
const SUBGRAPH: &str = "has subgraphs, which the FP16 rewrite does not enter";
const CUSTOM: &str = "custom domain: its types are its own";

/// Ops that exponentiate or accumulate: kept FP32 (overflow past 65504, lost precision).
const ACCUMULATING: &[&str] = &[
    "Exp",
    "Pow",
    "Log",
    "Softplus",
    "LogSoftmax",
    "ReduceSum",
    "ReduceSumSquare",
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSum",
    "ReduceLogSumExp",
    "ReduceProd",
    "CumSum",
    "LayerNormalization",
    "InstanceNormalization",
    "GroupNormalization",
    "LpNormalization",
    "MeanVarianceNormalization",
];

/// Ops converted to FP16 with every FLOAT input slot (besides Resize). Every one accepts
/// tensor(float16) for its type T in all opsets, reads and writes T in each float slot, and
/// keeps FP16's range: activations, convolutions, pooling, data movement, max/min reductions.
const CONVERT: &[&str] = &[
    "Abs",
    "Add",
    "AveragePool",
    "BatchNormalization",
    "Ceil",
    "Clip",
    "Concat",
    "Conv",
    "ConvTranspose",
    "DepthToSpace",
    "Div",
    "Elu",
    "Erf",
    "Expand",
    "Flatten",
    "Floor",
    "Gather",
    "GatherElements",
    "GatherND",
    "Gelu",
    "Gemm",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "HardSigmoid",
    "HardSwish",
    "Identity",
    "LeakyRelu",
    "MatMul",
    "Max",
    "MaxPool",
    "Mean",
    "Min",
    "Mish",
    "Mul",
    "Neg",
    "PRelu",
    "Pad",
    "Reciprocal",
    "ReduceMax",
    "ReduceMean",
    "ReduceMin",
    "Relu",
    "Reshape",
    "Round",
    "Selu",
    "Sigmoid",
    "Sign",
    "Slice",
    "Softmax",
    "Softsign",
    "SpaceToDepth",
    "Split",
    "Sqrt",
    "Squeeze",
    "Sub",
    "Sum",
    "Tanh",
    "Tile",
    "Transpose",
    "Unsqueeze",
    "Where",
];

/// The op table (default domain only; other domains stay FP32).
pub fn op_rule(op: &str) -> OpRule {
    match op {
        // roi (T2, independent of X) and scales (tensor(float)); opset 10's scales is slot 1.
        "Resize" => OpRule::Convert {
            fp32_slots: &[1, 2],
        },
        op if CONVERT.contains(&op) => OpRule::Convert { fp32_slots: &[] },
        "Shape" | "Size" | "Cast" => OpRule::AnyType,
        "QuantizeLinear" | "DequantizeLinear" | "DynamicQuantizeLinear" => OpRule::Keep(QDQ),
        op if ACCUMULATING.contains(&op) => OpRule::Keep(ACCUMULATES),
        "TopK" | "ArgMax" | "ArgMin" => OpRule::Keep(RANKS),
        "NonMaxSuppression" => OpRule::Keep(NMS),
        "Upsample" => OpRule::Keep(UPSAMPLE),
        "Range" => OpRule::Keep(RANGE),
        _ => OpRule::Keep(NO_RULE),
    }
}

/// Ops whose outputs all have the type of their first input.
fn follows_first(op: &str) -> bool {
    CONVERT.contains(&op)
        || ACCUMULATING.contains(&op)
        || matches!(
            op,
            "Resize"
                | "Upsample"
                | "Range"
                | "Mod"
                | "Einsum"
                | "Trilu"
                | "ScatterND"
                | "ScatterElements"
                | "Compress"
                | "ReverseSequence"
                | "LRN"
                | "Hardmax"
                | "ThresholdedRelu"
                | "Celu"
                | "Shrink"
                | "Sin"
                | "Cos"
                | "Tan"
                | "Asin"
                | "Acos"
                | "Atan"
                | "Sinh"
                | "Cosh"
                | "Asinh"
                | "Acosh"
                | "Atanh"
        )
}

fn is_standard(n: &NodeProto) -> bool {
    n.domain.is_empty() || n.domain == "ai.onnx"
}

fn has_subgraph(n: &NodeProto) -> bool {
    n.attribute
        .iter()
        .any(|a| a.g.is_some() || !a.graphs.is_empty())
}

/// Element types of a node's outputs by the op's type rule (`None`: the rule does not say).
fn output_types(n: &NodeProto, ty: &HashMap<String, i32>) -> Vec<Option<i32>> {
    let nout = n.output.len();
    if !is_standard(n) {
        return vec![None; nout];
    }
    let t = |i: usize| {
        n.input
            .get(i)
            .filter(|s| !s.is_empty())
            .and_then(|s| ty.get(s).copied())
    };
    let first = n
        .input
        .iter()
        .find(|s| !s.is_empty())
        .and_then(|s| ty.get(s).copied());
    let int_of = |name: &str| attr::int(n, name).ok().flatten().filter(|&v| v != 0);
    let one = |v: Option<i32>| {
        let mut o = vec![None; nout];
        if let Some(x) = o.first_mut() {
            *x = v;
        }
        o
    };
    let all = |v: Option<i32>| vec![v; nout];
    match n.op_type.as_str() {
        "Constant" => one(constant_node_type(n)),
        "Cast" => one(int_of("to").map(|v| v as i32)),
        "CastLike" => one(t(1)),
        "Shape" | "Size" | "NonZero" | "ArgMax" | "ArgMin" | "NonMaxSuppression" => one(Some(I64)),
        "Equal" | "Less" | "LessOrEqual" | "Greater" | "GreaterOrEqual" | "Not" | "And" | "Or"
        | "Xor" | "IsNaN" | "IsInf" => one(Some(BOOL)),
        "ConstantOfShape" => one(Some(
            attr::tensor(n, "value")
                .ok()
                .flatten()
                .map_or(F32, |v| v.data_type),
        )),
        "QuantizeLinear" => one(int_of("output_dtype")
            .map(|v| v as i32)
            .or(t(2))
            .or(Some(U8))),
        "DequantizeLinear" => one(int_of("output_dtype").map(|v| v as i32).or(t(1))),
        "DynamicQuantizeLinear" => vec![Some(U8), Some(F32), Some(U8)]
            .into_iter()
            .take(nout)
            .collect(),
        "MaxPool" | "TopK" | "Unique" => {
            let mut o = vec![Some(I64); nout];
            if let Some(x) = o.first_mut() {
                *x = first;
            }
            o
        }
        "Dropout" => {
            let mut o = vec![Some(BOOL); nout];
            if let Some(x) = o.first_mut() {
                *x = first;
            }
            o
        }
        "Where" => one(t(1)),
        "OneHot" => one(t(2)),
        "EyeLike" | "RandomNormalLike" | "RandomUniformLike" | "Bernoulli" => {
            one(int_of("dtype").map(|v| v as i32).or(first))
        }
        "RandomNormal" | "RandomUniform" => one(int_of("dtype").map(|v| v as i32).or(Some(F32))),
        op if follows_first(op) => all(first),
        _ => vec![None; nout],
    }
}

fn constant_node_type(n: &NodeProto) -> Option<i32> {
    let a = n.attribute.first()?;
    Some(match a.name.as_str() {
        "value" => a.t.as_ref()?.data_type,
        "value_float" | "value_floats" => F32,
        "value_int" | "value_ints" => I64,
        "value_string" | "value_strings" => DataType::STRING as i32,
        "sparse_value" => a.sparse_tensor.as_ref()?.values.as_ref()?.data_type,
        _ => return None,
    })
}

/// Element type of every tensor whose type is known: graph inputs, constants, then node
/// outputs by the op's type rule, else as the model declares them (value infos, outputs).
fn infer_types(g: &Graph) -> HashMap<String, i32> {
    let p = g.proto();
    let declared: HashMap<&str, i32> = p
        .input
        .iter()
        .chain(&p.value_info)
        .chain(&p.output)
        .filter_map(|v| {
            let t = v.type_.as_ref()?.tensor_type();
            (t.elem_type != 0).then_some((v.name.as_str(), t.elem_type))
        })
        .collect();
    let mut ty: HashMap<String, i32> = HashMap::new();
    for i in &p.input {
        if let Some(&t) = declared.get(i.name.as_str()) {
            ty.insert(i.name.clone(), t);
        }
    }
    for t in &p.initializer {
        ty.insert(t.name.clone(), t.data_type);
    }
    // Models are topologically sorted, so one pass normally settles everything; repeat for
    // one that is not.
    for _ in 0..p.node.len().max(1) {
        let mut changed = false;
        for n in &p.node {
            let rule = output_types(n, &ty);
            for (o, t) in n.output.iter().zip(rule) {
                if o.is_empty() || ty.contains_key(o) {
                    continue;
                }
                if let Some(t) = t.or_else(|| declared.get(o.as_str()).copied()) {
                    ty.insert(o.clone(), t);
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    ty
}

/// Tensors whose values depend on a graph input's values (Shape and Size outputs depend only
/// on shapes).
fn data_dependent(g: &Graph, consts: &HashSet<String>) -> HashSet<String> {
    let p = g.proto();
    let mut dep: HashSet<String> = p
        .input
        .iter()
        .filter(|i| !consts.contains(&i.name))
        .map(|i| i.name.clone())
        .collect();
    for _ in 0..p.node.len().max(1) {
        let before = dep.len();
        for n in &p.node {
            if is_standard(n) && matches!(n.op_type.as_str(), "Shape" | "Size") {
                continue;
            }
            if node_reads(n).iter().any(|t| dep.contains(t)) {
                dep.extend(n.output.iter().filter(|o| !o.is_empty()).cloned());
            }
        }
        if dep.len() == before {
            break;
        }
    }
    dep
}

/// What the rewrite does with one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Touches no FLOAT tensor: left as it is.
    Untouched,
    /// Reads tensors in whatever type they have.
    AnyType,
    /// FLOAT inputs read as FP32, outputs FP32.
    Keep,
    /// Runs in FP16, except the listed input slots (FP32).
    Convert(&'static [usize]),
}

/// A float tensor's type as a reader wants it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Want {
    F16,
    F32,
    AsIs,
}

/// Convert `model` to FP16 except the nodes in `keep_fp32` (node keys) and those the op rules
/// keep (see the module documentation). The result keeps the model's inputs, outputs (names
/// and types) and metadata and loads in ONNX Runtime; ONNX Runtime must be available.
pub fn to_fp16(model: &Model, keep_fp32: &BTreeSet<String>) -> Result<(Model, Fp16Summary)> {
    let g = Graph::new(model);
    let err = |msg: String| Error::Onnx {
        path: model.path.clone(),
        msg,
    };
    let keys: HashSet<String> = g.nodes().map(|(id, _)| g.key(id)).collect();
    if let Some(k) = keep_fp32.iter().find(|k| !keys.contains(*k)) {
        return Err(err(format!(
            "keep_fp32 names node '{k}', which the model does not have (a node's key is its \
             name, or node_of_<first output> when it has none); fix the precision plan"
        )));
    }
    let p0 = g.proto();
    // Before IR 4 every initializer had to be listed as an input too: those are still weights.
    // From IR 4 on, an initializer listed as an input is a default a caller may override, so
    // it is read like an activation (a Cast at run time), never rewritten.
    let ir3 = model.proto.ir_version < 4;
    let listed_inputs: HashSet<&str> = p0.input.iter().map(|i| i.name.as_str()).collect();
    let consts: HashSet<String> = g
        .constants()
        .filter(|(name, _)| ir3 || !listed_inputs.contains(name))
        .map(|(name, _)| name.to_string())
        .collect();
    let float_const =
        |t: &str| consts.contains(t) && g.constant(t).is_some_and(|c| c.data_type == F32);
    let ty = infer_types(&g);
    let is_float = |t: &str| ty.get(t) == Some(&F32);
    let data = data_dependent(&g, &consts);
    let mut summary = Fp16Summary::default();

    // 1. A role for every node.
    let mut roles: Vec<Role> = Vec::with_capacity(g.len());
    for (id, n) in g.nodes() {
        let key = g.key(id);
        let reads = node_reads(n);
        let involved = reads.iter().any(|t| is_float(t)) || n.output.iter().any(|o| is_float(o));
        let keep = |why: KeepReason, s: &mut Fp16Summary| {
            s.kept.push(KeptNode {
                node: key.clone(),
                op: n.op_type.clone(),
                why,
            });
            Role::Keep
        };
        // Constant nodes are constants: their values are rewritten where they are read.
        let role = if !involved || n.op_type == "Constant" && is_standard(n) {
            Role::Untouched
        } else if keep_fp32.contains(&key) {
            keep(KeepReason::Plan, &mut summary)
        } else if !is_standard(n) {
            keep(KeepReason::OpRule(CUSTOM.into()), &mut summary)
        } else if has_subgraph(n) {
            keep(KeepReason::OpRule(SUBGRAPH.into()), &mut summary)
        } else {
            match op_rule(&n.op_type) {
                OpRule::AnyType => Role::AnyType,
                OpRule::Keep(why) => keep(KeepReason::OpRule(why.into()), &mut summary),
                OpRule::Convert { .. } if !reads.iter().any(|t| data.contains(t)) => {
                    keep(KeepReason::OpRule(CONSTANT_MATH.into()), &mut summary)
                }
                OpRule::Convert { fp32_slots } => {
                    let unknown = n
                        .input
                        .iter()
                        .chain(&n.output)
                        .find(|t| !t.is_empty() && !ty.contains_key(*t));
                    if let Some(t) = unknown {
                        return Err(g.error(
                            id,
                            format!(
                                "cannot tell the element type of '{t}', so cannot convert it \
                                 to FP16 safely; add value_info for it (onnx shape inference) \
                                 or keep the node in FP32"
                            ),
                        ));
                    }
                    summary.converted.push(key.clone());
                    Role::Convert(fp32_slots)
                }
            }
        };
        roles.push(role);
    }
    let role_of = |t: &str| g.producer(t).map(|id| roles[id.0]);
    // A FLOAT tensor written by a converted node is FP16 now.
    let native_f16 = |t: &str| is_float(t) && matches!(role_of(t), Some(Role::Convert(_)));

    // 2. What each reader wants of each FLOAT tensor.
    let mut reads: Vec<(NodeId, usize, String, Want)> = Vec::new();
    let mut const_wants: HashMap<String, HashSet<Want>> = HashMap::new();
    for (id, n) in g.nodes() {
        let role = roles[id.0];
        for (slot, t) in n.input.iter().enumerate() {
            if t.is_empty() || !is_float(t) {
                continue;
            }
            let want = match role {
                Role::Convert(fp32) if !fp32.contains(&slot) => Want::F16,
                Role::AnyType => Want::AsIs,
                _ => Want::F32,
            };
            if float_const(t) {
                // A constant is FP32 unless rewritten: reading it as it is reads FP32.
                let w = if want == Want::AsIs { Want::F32 } else { want };
                const_wants.entry(t.clone()).or_default().insert(w);
            }
            reads.push((id, slot, t.clone(), want));
        }
        // Subgraphs read outer tensors by name: those must keep their name and type.
        if !has_subgraph(n) {
            continue;
        }
        let mut bare = n.clone();
        bare.input.clear();
        for t in &node_reads(&bare) {
            if native_f16(t) {
                return Err(g.error(
                    id,
                    format!(
                        "its subgraph reads '{t}', which the FP16 rewrite would change to \
                         float16; keep the node writing it in FP32"
                    ),
                ));
            }
            if float_const(t) {
                const_wants.entry(t.clone()).or_default().insert(Want::F32);
            }
        }
    }

    let mut p = Patch::new(&g);
    // Tensors that keep their name and now hold FP16.
    let mut now_f16: HashSet<String> = HashSet::new();

    // 3. FP16 constants: rewritten in place when nothing reads them as FP32, else a copy.
    let mut const_f16: HashMap<String, String> = HashMap::new();
    let mut names: Vec<&String> = const_wants.keys().collect();
    names.sort();
    for name in names {
        let wants = &const_wants[name];
        if !wants.contains(&Want::F16) {
            continue;
        }
        let c = g.constant(name).expect("a float constant");
        let values = tensor::read_f32(c).map_err(err)?;
        let mut clamped = Vec::with_capacity(values.len());
        for v in values {
            let x = if v.is_finite() && v.abs() > f16::MAX.to_f32() {
                summary.values_clamped += 1;
                v.signum() * f16::MAX.to_f32()
            } else {
                v
            };
            if x != 0.0 && x.is_finite() && f16::from_f32(x).to_f32() == 0.0 {
                summary.values_flushed += 1;
            }
            clamped.push(x);
        }
        let in_place = !wants.contains(&Want::F32) && !g.is_graph_output(name);
        let target = if in_place {
            name.clone()
        } else {
            p.fresh(&format!("{name}_fp16"))
        };
        let t = float16_tensor(&target, &c.dims, &clamped);
        if in_place {
            p.replace_constant(t)?;
            now_f16.insert(name.clone());
        } else {
            p.add_initializer(t);
        }
        summary.initializers_converted += 1;
        const_f16.insert(name.clone(), target);
    }

    // 4. Graph outputs written in FP16: the node writes a new name, a Cast writes the output.
    let mut renamed: HashMap<String, String> = HashMap::new();
    let mut casts: HashMap<(String, Want), String> = HashMap::new();
    for o in &p0.output {
        let name = &o.name;
        if !native_f16(name) || renamed.contains_key(name) {
            continue;
        }
        let producer = g.producer(name).expect("native_f16 has a producer");
        let half = p.fresh(&format!("{name}_fp16"));
        let slot = g
            .node(producer)
            .output
            .iter()
            .position(|x| x == name)
            .expect("the producer writes it");
        p.node_mut(producer).output[slot] = half.clone();
        let cast_name = p.fresh(&format!("{name}_Cast_fp32"));
        // Inserted before its producer; the topological order moves it right after.
        p.insert_before(producer, cast(&cast_name, &half, name, F32));
        summary.casts_inserted += 1;
        casts.insert((name.clone(), Want::F32), name.clone());
        renamed.insert(name.clone(), half);
    }

    // 5. Every read gets its tensor in the type it wants, through one shared Cast per
    //    (tensor, type).
    for (id, slot, t, want) in reads {
        let name = if float_const(&t) {
            match want {
                Want::F16 => const_f16[&t].clone(),
                _ => t.clone(),
            }
        } else {
            let native = if native_f16(&t) { Want::F16 } else { Want::F32 };
            let stored = renamed.get(&t).cloned().unwrap_or_else(|| t.clone());
            if want == Want::AsIs || want == native {
                stored
            } else if let Some(c) = casts.get(&(t.clone(), want)) {
                c.clone()
            } else {
                let (suffix, to) = match want {
                    Want::F16 => ("fp16", F16),
                    _ => ("fp32", F32),
                };
                let out = p.fresh(&format!("{t}_{suffix}"));
                let cast_name = p.fresh(&format!("{t}_Cast_{suffix}"));
                p.insert_before(id, cast(&cast_name, &stored, &out, to));
                summary.casts_inserted += 1;
                casts.insert((t.clone(), want), out.clone());
                out
            }
        };
        if name != t {
            p.set_input(id, slot, &name);
        }
    }
    for (id, n) in g.nodes() {
        if matches!(roles[id.0], Role::Convert(_)) {
            for o in n
                .output
                .iter()
                .filter(|o| is_float(o) && !renamed.contains_key(*o))
            {
                now_f16.insert(o.clone());
            }
        }
    }

    // 6. Write, declare the new types, and have ONNX Runtime load the result.
    let mut out = p.apply()?;
    let graph = out.proto.graph.mut_or_insert_default();
    let set_f16 = |v: &mut onnx_protobuf::ValueInfoProto| {
        if now_f16.contains(&v.name) {
            if let Some(tt) = v.type_.as_mut().and_then(|t| match &mut t.value {
                Some(onnx_protobuf::type_proto::Value::TensorType(tt)) => Some(tt),
                _ => None,
            }) {
                tt.elem_type = F16;
            }
        }
    };
    graph.value_info.iter_mut().for_each(set_f16);
    // Only IR < 4 weights listed as inputs can have changed among the inputs.
    graph.input.iter_mut().for_each(set_f16);
    check_loads(&out)?;
    Ok((out, summary))
}

fn cast(name: &str, input: &str, output: &str, to: i32) -> NodeProto {
    node(
        "Cast",
        name,
        &[input],
        &[output],
        vec![int_attr("to", i64::from(to))],
    )
}

/// Refuse a written model ONNX Runtime does not load, naming its error.
fn check_loads(m: &Model) -> Result<()> {
    match crate::exec::OrtSession::from_model(m, &[]) {
        Ok(_) => Ok(()),
        Err(e @ Error::Unavailable { .. }) => Err(e),
        Err(e) => Err(Error::Onnx {
            path: m.path.clone(),
            msg: format!(
                "the FP16 model does not load in ONNX Runtime ({e}); keep the node it names in \
                 FP32 (keep_fp32) and report the model to trtforge"
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::synth::tiny_detector;

    #[test]
    fn types_follow_the_op_rules() {
        let m = tiny_detector(16);
        let g = Graph::new(&m);
        let ty = infer_types(&g);
        for t in [
            "images",
            "stem.weight",
            "stem.out",
            "pruned_act.out",
            "scores",
        ] {
            assert_eq!(ty.get(t), Some(&F32), "{t}");
        }
        let shape = node("Shape", "s", &["stem.out"], &["shape"], vec![]);
        assert_eq!(output_types(&shape, &ty), vec![Some(I64)]);
        let c = node("Cast", "c", &["shape"], &["f"], vec![int_attr("to", 1)]);
        assert_eq!(output_types(&c, &ty), vec![Some(F32)]);
        let mp = node("MaxPool", "m", &["stem.out"], &["a", "b"], vec![]);
        assert_eq!(output_types(&mp, &ty), vec![Some(F32), Some(I64)]);
        let custom = node("Mystery", "x", &["stem.out"], &["y"], vec![]);
        assert_eq!(output_types(&custom, &ty), vec![None]);
    }

    #[test]
    fn op_rules_keep_spec_float_slots_and_risky_ops() {
        assert_eq!(
            op_rule("Resize"),
            OpRule::Convert {
                fp32_slots: &[1, 2]
            }
        );
        assert_eq!(op_rule("Conv"), OpRule::Convert { fp32_slots: &[] });
        assert_eq!(op_rule("Shape"), OpRule::AnyType);
        assert!(matches!(op_rule("DequantizeLinear"), OpRule::Keep(_)));
        assert!(matches!(op_rule("Exp"), OpRule::Keep(_)));
        assert!(matches!(op_rule("SomethingNew"), OpRule::Keep(NO_RULE)));
    }
}
