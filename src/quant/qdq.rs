//! Q/DQ insertion for TensorRT's explicit quantization: symmetric INT8 (zero point 0,
//! scale = amax / 127), weights per output channel from the weight tensors, activations per
//! tensor from the calibration ranges. Q/DQ go where TensorRT's fusions look for them: the
//! data and weight inputs of Conv/ConvTranspose/Gemm/MatMul, and (when enabled) Add
//! residual inputs, Concat inputs (one shared scale), MaxPool and GlobalAveragePool inputs.
//! Nothing else is touched, so every op TensorRT cannot run in INT8 stays in float. The edits
//! are one [`Patch`] over the opset-13 model, so names are fresh and the order topological.

use crate::error::Result;
use crate::onnx::{
    float_tensor, int8_tensor, int_attr, node, tensor, upgrade_opset, Graph, Model, NodeId, Patch,
};
use crate::recipe::QuantOp;
use onnx_protobuf::tensor_proto::DataType;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// What to quantize.
#[derive(Debug, Clone, Default)]
pub struct QdqOptions {
    /// Ops quantized besides Conv/ConvTranspose/Gemm/MatMul.
    pub ops: BTreeSet<QuantOp>,
    /// Layers (by [`crate::onnx::node_key`]) left in float: no Q/DQ on their inputs.
    pub keep_fp: BTreeSet<String>,
    /// Weight scales and bias corrections found by [`super::refine`] (empty: plain max
    /// scales, biases as exported).
    pub edits: Arc<WeightEdits>,
}

/// Changes to the weights of quantized layers only: a layer the plan keeps in float keeps
/// its weights and bias exactly as exported.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WeightEdits {
    /// Per-channel scales replacing amax / 127, by weight initializer name.
    pub scales: HashMap<String, Vec<f32>>,
    /// Per-output-channel amounts to subtract from the bias, by node key.
    pub bias: HashMap<String, Vec<f32>>,
    /// Per-input-channel rescaling of depthwise convs' inputs, by node key.
    pub equalize: HashMap<String, Equalization>,
}

/// A depthwise conv whose input channels each get their own quantization step although
/// TensorRT quantizes activations per tensor: the writer reads the input through a Mul by
/// 1/s_c (shape [1, C, 1, ..]), quantizes that per tensor with `amax`, and multiplies each
/// weight output channel by its input channel's s_c. In float the model is unchanged up to
/// rounding (a
/// depthwise output channel reads one input channel only), and the per-channel weight
/// quantization absorbs s_c exactly, so only the activation's steps change: channel c's is
/// s_c * amax / 127.
#[derive(Debug, Clone, PartialEq)]
pub struct Equalization {
    /// s_c per input channel, in (0, 1].
    pub scales: Vec<f32>,
    /// Range of the rescaled input.
    pub amax: f32,
}

/// One layer that gets (or would get) Q/DQ on its inputs.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct QuantLayer {
    pub node: String,
    pub op: String,
}

/// What [`quantize`] did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct QdqSummary {
    pub opset_from: i64,
    pub opset_to: i64,
    pub quantized: Vec<QuantLayer>,
    /// Layers that could have been quantized but were not, and why.
    pub skipped: Vec<(String, String)>,
    pub qdq_pairs: usize,
}

const WEIGHTED: &[&str] = &["Conv", "ConvTranspose", "Gemm", "MatMul"];

fn op_enabled(op: &str, ops: &BTreeSet<QuantOp>) -> bool {
    WEIGHTED.contains(&op)
        || match op {
            "Add" => ops.contains(&QuantOp::Add),
            "Concat" => ops.contains(&QuantOp::Concat),
            "MaxPool" => ops.contains(&QuantOp::Maxpool),
            "GlobalAveragePool" => ops.contains(&QuantOp::Globalaveragepool),
            _ => false,
        }
}

/// ONNX QuantizeLinear to INT8 with zero point 0: round half to even, saturate.
pub fn quantize_value(x: f32, scale: f32) -> i8 {
    (x / scale).round_ties_even().clamp(-128.0, 127.0) as i8
}

/// Per-channel symmetric INT8 weights along `axis`: (values, scales). `w` must hold exactly
/// the elements `dims` describe and `axis` must be one of its axes (the writer checks both).
pub fn quantize_weights(w: &[f32], dims: &[i64], axis: usize) -> (Vec<i8>, Vec<f32>) {
    let scales = max_scales(w, dims, axis);
    (quantize_with_scales(w, dims, axis, &scales), scales)
}

/// Per-channel amax / 127 along `axis`.
pub fn max_scales(w: &[f32], dims: &[i64], axis: usize) -> Vec<f32> {
    let (channels, ch) = channel_of(dims, axis);
    let mut amax = vec![0f32; channels];
    for (i, &v) in w.iter().enumerate() {
        amax[ch(i)] = amax[ch(i)].max(v.abs());
    }
    // An all-zero channel quantizes to zeros with any scale; 1 keeps the scale valid.
    amax.iter()
        .map(|&a| if a > 0.0 { a / 127.0 } else { 1.0 })
        .collect()
}

/// INT8 values of `w` with one scale per channel along `axis`.
pub fn quantize_with_scales(w: &[f32], dims: &[i64], axis: usize, scales: &[f32]) -> Vec<i8> {
    let (_, ch) = channel_of(dims, axis);
    w.iter()
        .enumerate()
        .map(|(i, &v)| quantize_value(v, scales[ch(i)]))
        .collect()
}

/// Channels along `axis`, and the channel of flat index i.
pub fn channel_of(dims: &[i64], axis: usize) -> (usize, impl Fn(usize) -> usize) {
    let channels = dims[axis] as usize;
    let inner: usize = dims[axis + 1..].iter().product::<i64>() as usize;
    (channels, move |i: usize| (i / inner) % channels)
}

/// A weight to quantize per output channel: its values and the channel axis.
struct Weight {
    name: String,
    dims: Vec<i64>,
    values: Vec<f32>,
    axis: usize,
}

/// What the writer does with one node.
enum Decision {
    /// Not an op the writer quantizes (or another domain).
    Untouched,
    /// Could be quantized but is not, and why.
    Skip(String),
    /// Activation inputs (slot, amax) and, for weighted ops, the weight.
    Quantize {
        slots: Vec<(usize, f32)>,
        weight: Option<Weight>,
    },
}

/// The per-channel axis of a layer's weight of rank `rank` (Gemm honours transB; a 1-D MatMul
/// operand gets one scale per element); an ONNX error for a rank the op does not allow.
fn weight_axis(g: &Graph, id: NodeId, rank: usize) -> Result<Option<usize>> {
    let n = g.node(id);
    let bad = |want: &str| {
        Err(g.error(
            id,
            format!("weight '{}' has rank {rank}, {} needs {want}; the model is malformed: re-export it", n.input[1], n.op_type),
        ))
    };
    match n.op_type.as_str() {
        "Conv" | "ConvTranspose" if rank < 3 => bad("rank 3 or more"),
        "ConvTranspose" => Ok(Some(1)),
        "Gemm" if rank != 2 => bad("rank 2"),
        "Gemm" => Ok(Some(if g.attr_int(id, "transB")?.unwrap_or(0) != 0 {
            0
        } else {
            1
        })),
        "MatMul" if rank == 0 => bad("rank 1 or more"),
        "MatMul" => Ok(Some(rank - 1)),
        _ => Ok(Some(0)),
    }
}

/// Inputs of `id` that get activation Q/DQ, with their amax (`Err(why)`: cannot quantize).
fn activation_slots(
    g: &Graph,
    id: NodeId,
    ranges: &HashMap<String, f32>,
) -> Result<std::result::Result<Vec<(usize, f32)>, String>> {
    let n = g.node(id);
    let amax_of = |t: &str| -> std::result::Result<f32, String> {
        match ranges.get(t) {
            Some(&a) if a > 0.0 && a.is_finite() => Ok(a),
            Some(a) => Err(format!("tensor '{t}' has amax {a}")),
            None => Err(format!("no calibration range for '{t}'")),
        }
    };
    let is_act = |t: &str| !t.is_empty() && !g.is_constant(t);
    g.check_arity(id)?;
    Ok(match n.op_type.as_str() {
        "Conv" | "ConvTranspose" | "Gemm" | "MaxPool" | "GlobalAveragePool" => {
            amax_of(g.input(id, 0)?).map(|a| vec![(0, a)])
        }
        "MatMul" => (|| {
            let mut v = vec![(0, amax_of(&n.input[0])?)];
            if is_act(&n.input[1]) {
                v.push((1, amax_of(&n.input[1])?));
            }
            Ok(v)
        })(),
        "Add" => {
            if !n.input.iter().all(|t| is_act(t)) {
                Err("not a residual Add (a constant operand)".into())
            } else {
                (|| Ok(vec![(0, amax_of(&n.input[0])?), (1, amax_of(&n.input[1])?)]))()
            }
        }
        "Concat" => {
            if !n.input.iter().all(|t| is_act(t)) {
                Err("a constant Concat input".into())
            } else {
                // TensorRT fuses a Concat whose inputs share one scale: take the widest range.
                (|| {
                    let mut a = 0f32;
                    for t in &n.input {
                        a = a.max(amax_of(t)?);
                    }
                    Ok((0..n.input.len()).map(|i| (i, a)).collect())
                })()
            }
        }
        _ => Ok(vec![]),
    })
}

/// Decide what the writer does with node `id` (ignoring `keep_fp`).
fn decide(
    g: &Graph,
    id: NodeId,
    ranges: &HashMap<String, f32>,
    ops: &BTreeSet<QuantOp>,
) -> Result<Decision> {
    let n = g.node(id);
    if !g.is_standard(id) || !op_enabled(&n.op_type, ops) {
        return Ok(Decision::Untouched);
    }
    let slots = match activation_slots(g, id, ranges)? {
        Ok(s) if s.is_empty() => return Ok(Decision::Untouched),
        Ok(s) => s,
        Err(why) => return Ok(Decision::Skip(why)),
    };
    if !WEIGHTED.contains(&n.op_type.as_str()) {
        return Ok(Decision::Quantize {
            slots,
            weight: None,
        });
    }
    let w = g.input(id, 1)?;
    let float_const = g
        .constant(w)
        .filter(|t| tensor::data_type(t) == Some(DataType::FLOAT));
    let weight = match float_const {
        Some(t) => {
            let values = tensor::read_f32(t).map_err(|m| g.error(id, m))?;
            if values.is_empty() {
                return Ok(Decision::Skip(format!("weight '{w}' has no elements")));
            }
            weight_axis(g, id, t.dims.len())?.map(|axis| Weight {
                name: w.to_string(),
                dims: t.dims.clone(),
                values,
                axis,
            })
        }
        None => None,
    };
    if n.op_type != "MatMul" && weight.is_none() {
        // A computed weight: Q/DQ would not fuse into the layer.
        return Ok(Decision::Skip("weight is not a float constant".into()));
    }
    Ok(Decision::Quantize { slots, weight })
}

/// Layers [`quantize`] would put Q/DQ on (ignoring `keep_fp`), in graph order.
pub fn candidates(
    model: &Model,
    ranges: &HashMap<String, f32>,
    ops: &BTreeSet<QuantOp>,
) -> Result<Vec<QuantLayer>> {
    let g = Graph::new(model);
    let mut out = Vec::new();
    for (id, n) in g.nodes() {
        if let Decision::Quantize { .. } = decide(&g, id, ranges, ops)? {
            out.push(QuantLayer {
                node: g.key(id),
                op: n.op_type.clone(),
            });
        }
    }
    Ok(out)
}

/// Write the Q/DQ model. The result keeps the original's inputs, outputs and metadata; its
/// default-domain opset is at least 13 (per-channel DequantizeLinear needs it).
pub fn quantize(
    model: &Model,
    ranges: &HashMap<String, f32>,
    opts: &QdqOptions,
) -> Result<(Model, QdqSummary)> {
    let m = upgrade_opset(model, 13)?;
    let g = Graph::new(&m);
    let mut p = Patch::new(&g);
    let mut summary = QdqSummary {
        opset_from: model.opset(),
        opset_to: m.opset(),
        ..Default::default()
    };
    // (tensor, amax bits) -> DequantizeLinear output; weight/axis -> DequantizeLinear output.
    let mut act_dq: HashMap<(String, u32), String> = HashMap::new();
    let mut w_dq: HashMap<String, String> = HashMap::new();
    for (id, n) in g.nodes() {
        let key = g.key(id);
        // The plan's layers stay in float whatever they are (checked before anything else).
        if g.is_standard(id) && op_enabled(&n.op_type, &opts.ops) && opts.keep_fp.contains(&key) {
            summary
                .skipped
                .push((key, "kept in float by the plan".into()));
            continue;
        }
        let (slots, weight) = match decide(&g, id, ranges, &opts.ops)? {
            Decision::Untouched => continue,
            Decision::Skip(why) => {
                summary.skipped.push((key, why));
                continue;
            }
            Decision::Quantize { slots, weight } => (slots, weight),
        };
        let equalize = match opts.edits.equalize.get(&key) {
            Some(e) => Some(check_equalization(&g, id, weight.as_ref(), e)?),
            None => None,
        };
        for (slot, amax) in slots {
            let t = n.input[slot].clone();
            if let (Some(e), 0) = (equalize, slot) {
                let rank = weight.as_ref().map_or(4, |w| w.dims.len());
                let scaled = insert_channel_rescale(&mut p, id, &t, &e.scales, rank);
                let d = insert_activation_qdq(&mut p, id, &scaled, e.amax);
                summary.qdq_pairs += 1;
                p.set_input(id, 0, &d);
                continue;
            }
            let dq = match act_dq.get(&(t.clone(), amax.to_bits())) {
                Some(d) => d.clone(),
                None => {
                    let d = insert_activation_qdq(&mut p, id, &t, amax);
                    summary.qdq_pairs += 1;
                    act_dq.insert((t, amax.to_bits()), d.clone());
                    d
                }
            };
            p.set_input(id, slot, &dq);
        }
        if let Some(w) = weight {
            let scales = opts
                .edits
                .scales
                .get(&w.name)
                .filter(|s| s.len() == w.dims[w.axis] as usize);
            let dq = if let Some(e) = equalize {
                // Its own copy: the rescaled weight is this layer's alone.
                let (w, scales) = rescale_weight(w, scales.map(Vec::as_slice), &e.scales);
                insert_weight_dq(&mut p, id, &w, scales.as_deref())
            } else {
                let k = format!("{}/{}", w.name, w.axis);
                match w_dq.get(&k) {
                    Some(d) => d.clone(),
                    None => {
                        let d = insert_weight_dq(&mut p, id, &w, scales.map(Vec::as_slice));
                        w_dq.insert(k, d.clone());
                        d
                    }
                }
            };
            p.set_input(id, 1, &dq);
        }
        if let Some(delta) = opts.edits.bias.get(&key) {
            correct_bias(&mut p, &g, id, delta)?;
        }
        summary.quantized.push(QuantLayer {
            node: key,
            op: n.op_type.clone(),
        });
    }
    // The float weights now feed nothing: `apply` drops them, and their IR < 4 input entries.
    Ok((p.apply()?, summary))
}

/// Fold `delta` (one value per output channel, the mean output error) into the bias of
/// Conv/Gemm `id`, as a new initializer (the exported one may be shared). Gemm adds beta * C,
/// so C moves by delta / beta; a layer without a bias gets one (C is optional from opset 11,
/// and the Q/DQ model is at 13). Anything else is left as exported; `refine` computes
/// corrections only where this folds them.
fn correct_bias(p: &mut Patch, g: &Graph, id: NodeId, delta: &[f32]) -> Result<()> {
    let n = g.node(id);
    let slot = 2;
    let per_unit = match n.op_type.as_str() {
        "Conv" => 1.0,
        "Gemm" => match g.attr_float(id, "beta")?.unwrap_or(1.0) {
            b if b != 0.0 => b,
            _ => return Ok(()),
        },
        _ => return Ok(()),
    };
    let old = match g.optional_input(id, slot) {
        Some(b) => match g.constant_f32(b)? {
            Some((dims, v)) if dims.len() == 1 && v.len() == delta.len() => v,
            _ => return Ok(()),
        },
        None => vec![0.0; delta.len()],
    };
    let base = g.optional_input(id, slot).unwrap_or("bias").to_string();
    let name = p.fresh(&format!("{base}_corrected"));
    let v: Vec<f32> = old
        .iter()
        .zip(delta)
        .map(|(b, d)| b - d / per_unit)
        .collect();
    p.add_initializer(float_tensor(&name, &[v.len() as i64], v));
    p.set_input(id, slot, &name);
    Ok(())
}

/// QuantizeLinear + DequantizeLinear of activation `t` before node `id`; returns the
/// dequantized tensor's name.
fn insert_activation_qdq(p: &mut Patch, id: NodeId, t: &str, amax: f32) -> String {
    let (s, z) = (
        p.fresh(&format!("{t}_scale")),
        p.fresh(&format!("{t}_zero_point")),
    );
    let (q, d) = (
        p.fresh(&format!("{t}_quantized")),
        p.fresh(&format!("{t}_dequantized")),
    );
    p.add_initializer(float_tensor(&s, &[], vec![amax / 127.0]));
    p.add_initializer(int8_tensor(&z, &[], &[0]));
    let (qn, dn) = (
        p.fresh(&format!("{t}_QuantizeLinear")),
        p.fresh(&format!("{t}_DequantizeLinear")),
    );
    p.insert_before(id, node("QuantizeLinear", &qn, &[t, &s, &z], &[&q], vec![]));
    p.insert_before(
        id,
        node("DequantizeLinear", &dn, &[&q, &s, &z], &[&d], vec![]),
    );
    d
}

/// The input channels of node `id` when it is a depthwise Conv with weight dims `w_dims`:
/// each output channel reads one input channel (weight [C_out, 1, k..], group = input
/// channels > 1, C_out a multiple of it). Only such a conv can take an [`Equalization`].
pub fn depthwise_inputs(g: &Graph, id: NodeId, w_dims: &[i64]) -> Result<Option<usize>> {
    let group = g.attr_int(id, "group")?.unwrap_or(1);
    Ok((g.node(id).op_type == "Conv"
        && w_dims.len() >= 3
        && w_dims[1] == 1
        && group > 1
        && w_dims[0] % group == 0)
        .then_some(group as usize))
}

/// `e` when it fits depthwise conv `id` whose weight is `w` (one scale per input channel,
/// a whole number of output channels per input channel); an internal error otherwise (the
/// edits come from `refine`, which only equalizes such convs).
fn check_equalization<'e>(
    g: &Graph,
    id: NodeId,
    w: Option<&Weight>,
    e: &'e Equalization,
) -> Result<&'e Equalization> {
    let inputs = match w {
        Some(w) => depthwise_inputs(g, id, &w.dims)?,
        None => None,
    };
    let fits = inputs == Some(e.scales.len())
        && e.scales.iter().all(|s| *s > 0.0 && *s <= 1.0)
        && e.amax > 0.0
        && e.amax.is_finite();
    if fits {
        Ok(e)
    } else {
        Err(g.error(
            id,
            "an equalization that does not fit this layer (not a depthwise Conv with that many channels); this is a bug in trtforge".to_string(),
        ))
    }
}

/// Mul of activation `t` by 1/s_c per channel (axis 1 of a rank-`rank` tensor) before node
/// `id`; returns the product's name.
fn insert_channel_rescale(p: &mut Patch, id: NodeId, t: &str, s: &[f32], rank: usize) -> String {
    let (c, out, mul) = (
        p.fresh(&format!("{t}_channel_scale")),
        p.fresh(&format!("{t}_equalized")),
        p.fresh(&format!("{t}_Equalize")),
    );
    let mut dims = vec![1i64; rank.max(2)];
    dims[1] = s.len() as i64;
    p.add_initializer(float_tensor(&c, &dims, s.iter().map(|v| 1.0 / v).collect()));
    p.insert_before(id, node("Mul", &mul, &[t, &c], &[&out], vec![]));
    out
}

/// Depthwise weight `w` with output channel o multiplied by s of its input channel (o / the
/// multiplier), and its weight scales (when edited) likewise.
fn rescale_weight(w: Weight, scales: Option<&[f32]>, s: &[f32]) -> (Weight, Option<Vec<f32>>) {
    let per_in = (w.dims[0] as usize / s.len()).max(1);
    let (_, ch) = channel_of(&w.dims, 0);
    let values = w
        .values
        .iter()
        .enumerate()
        .map(|(i, v)| v * s[ch(i) / per_in])
        .collect();
    let scales = scales.map(|sc| {
        sc.iter()
            .enumerate()
            .map(|(o, v)| v * s[o / per_in])
            .collect()
    });
    (Weight { values, ..w }, scales)
}

/// INT8 copy of weight `w` (with `scales`, else the max scales) and its per-channel
/// DequantizeLinear before node `id`; returns the dequantized tensor's name.
fn insert_weight_dq(p: &mut Patch, id: NodeId, w: &Weight, scales: Option<&[f32]>) -> String {
    let (qv, scales) = match scales {
        Some(s) => (
            quantize_with_scales(&w.values, &w.dims, w.axis, s),
            s.to_vec(),
        ),
        None => quantize_weights(&w.values, &w.dims, w.axis),
    };
    let name = &w.name;
    let (qn, s, z) = (
        p.fresh(&format!("{name}_quantized")),
        p.fresh(&format!("{name}_scale")),
        p.fresh(&format!("{name}_zero_point")),
    );
    let d = p.fresh(&format!("{name}_dequantized"));
    let c = scales.len() as i64;
    p.add_initializer(int8_tensor(&qn, &w.dims, &qv));
    p.add_initializer(float_tensor(&s, &[c], scales));
    p.add_initializer(int8_tensor(&z, &[c], &vec![0; c as usize]));
    let dn = p.fresh(&format!("{name}_DequantizeLinear"));
    p.insert_before(
        id,
        node(
            "DequantizeLinear",
            &dn,
            &[&qn, &s, &z],
            &[&d],
            vec![int_attr("axis", w.axis as i64)],
        ),
    );
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_matches_onnx_quantize_linear() {
        assert_eq!(quantize_value(2.5, 1.0), 2);
        assert_eq!(quantize_value(3.5, 1.0), 4);
        assert_eq!(quantize_value(-2.5, 1.0), -2);
        assert_eq!(quantize_value(1000.0, 1.0), 127);
        assert_eq!(quantize_value(-1000.0, 1.0), -128);
    }

    #[test]
    fn per_channel_scales_follow_the_axis() {
        // 2 x 3 weight: axis 0 has amax 3 and 6; axis 1 has 4, 5, 6.
        let w = [1.0, -3.0, 2.0, 4.0, 5.0, -6.0];
        let (q, s) = quantize_weights(&w, &[2, 3], 0);
        assert_eq!(s, vec![3.0 / 127.0, 6.0 / 127.0]);
        assert_eq!(q[1], -127);
        assert_eq!(q[5], -127);
        let (_, s1) = quantize_weights(&w, &[2, 3], 1);
        assert_eq!(s1, vec![4.0 / 127.0, 5.0 / 127.0, 6.0 / 127.0]);
    }
}
