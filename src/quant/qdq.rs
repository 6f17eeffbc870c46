//! Q/DQ insertion for TensorRT's explicit quantization: symmetric INT8 (zero point 0,
//! scale = amax / 127), weights per output channel from the weight tensors, activations per
//! tensor from the calibration ranges. Q/DQ go where TensorRT's fusions look for them: the
//! data and weight inputs of Conv/ConvTranspose/Gemm/MatMul, and (when enabled) Add
//! residual inputs, Concat inputs (one shared scale), MaxPool and GlobalAveragePool inputs.
//! Nothing else is touched, so every op TensorRT cannot run in INT8 stays in float.

use crate::error::{Error, Result};
use crate::onnx::synth::{int_attr, node};
use crate::onnx::Model;
use crate::recipe::QuantOp;
use onnx_protobuf::{tensor_proto::DataType, AttributeProto, NodeProto, TensorProto};
use std::collections::{BTreeSet, HashMap, HashSet};

/// What to quantize.
#[derive(Debug, Clone, Default)]
pub struct QdqOptions {
    /// Ops quantized besides Conv/ConvTranspose/Gemm/MatMul.
    pub ops: BTreeSet<QuantOp>,
    /// Layers (by [`node_key`]) left in float: no Q/DQ on their inputs.
    pub keep_fp: BTreeSet<String>,
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

/// A node's stable name: its name, or its first output when unnamed.
pub fn node_key(n: &NodeProto) -> String {
    if n.name.is_empty() {
        n.output.first().cloned().unwrap_or_default()
    } else {
        n.name.clone()
    }
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

/// Float values of a constant tensor (float_data or little-endian raw_data).
pub fn float_values(t: &TensorProto) -> Option<Vec<f32>> {
    if t.data_type != DataType::FLOAT as i32 {
        return None;
    }
    if !t.raw_data.is_empty() {
        Some(
            t.raw_data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        )
    } else {
        Some(t.float_data.clone())
    }
}

/// ONNX QuantizeLinear to INT8 with zero point 0: round half to even, saturate.
pub fn quantize_value(x: f32, scale: f32) -> i8 {
    (x / scale).round_ties_even().clamp(-128.0, 127.0) as i8
}

/// Per-channel symmetric INT8 weights along `axis`: (values, scales).
pub fn quantize_weights(w: &[f32], dims: &[i64], axis: usize) -> (Vec<i8>, Vec<f32>) {
    let channels = dims[axis] as usize;
    let inner: usize = dims[axis + 1..].iter().product::<i64>() as usize;
    let ch = |i: usize| (i / inner) % channels;
    let mut amax = vec![0f32; channels];
    for (i, &v) in w.iter().enumerate() {
        amax[ch(i)] = amax[ch(i)].max(v.abs());
    }
    // An all-zero channel quantizes to zeros with any scale; 1 keeps the scale valid.
    let scales: Vec<f32> = amax
        .iter()
        .map(|&a| if a > 0.0 { a / 127.0 } else { 1.0 })
        .collect();
    let q = w
        .iter()
        .enumerate()
        .map(|(i, &v)| quantize_value(v, scales[ch(i)]))
        .collect();
    (q, scales)
}

/// The output-channel axis of a layer's weight (rank-2 Gemm honours transB).
fn weight_axis(n: &NodeProto, rank: usize) -> usize {
    match n.op_type.as_str() {
        "ConvTranspose" => 1,
        "Gemm" => {
            let trans_b = n.attribute.iter().any(|a| a.name == "transB" && a.i != 0);
            if trans_b {
                0
            } else {
                1
            }
        }
        "MatMul" => rank - 1,
        _ => 0,
    }
}

/// Inputs of `n` that get activation Q/DQ, with their amax (None: cannot quantize, with why).
fn activation_slots(
    n: &NodeProto,
    consts: &HashMap<String, TensorProto>,
    ranges: &HashMap<String, f32>,
) -> std::result::Result<Vec<(usize, f32)>, String> {
    let amax_of = |t: &str| -> std::result::Result<f32, String> {
        match ranges.get(t) {
            Some(&a) if a > 0.0 && a.is_finite() => Ok(a),
            Some(a) => Err(format!("tensor '{t}' has amax {a}")),
            None => Err(format!("no calibration range for '{t}'")),
        }
    };
    let is_act = |t: &str| !t.is_empty() && !consts.contains_key(t);
    match n.op_type.as_str() {
        "Conv" | "ConvTranspose" | "Gemm" | "MaxPool" | "GlobalAveragePool" => {
            Ok(vec![(0, amax_of(&n.input[0])?)])
        }
        "MatMul" => {
            let mut v = vec![(0, amax_of(&n.input[0])?)];
            if is_act(&n.input[1]) {
                v.push((1, amax_of(&n.input[1])?));
            }
            Ok(v)
        }
        "Add" => {
            if n.input.len() != 2 || !n.input.iter().all(|t| is_act(t)) {
                return Err("not a residual Add (a constant operand)".into());
            }
            Ok(vec![(0, amax_of(&n.input[0])?), (1, amax_of(&n.input[1])?)])
        }
        "Concat" => {
            if !n.input.iter().all(|t| is_act(t)) {
                return Err("a constant Concat input".into());
            }
            // TensorRT fuses a Concat whose inputs share one scale: take the widest range.
            let mut a = 0f32;
            for t in &n.input {
                a = a.max(amax_of(t)?);
            }
            Ok((0..n.input.len()).map(|i| (i, a)).collect())
        }
        _ => Ok(vec![]),
    }
}

/// Constant tensors by name (initializers and Constant nodes), owned.
fn constants(model: &Model) -> HashMap<String, TensorProto> {
    crate::onnx::constant_tensors(model)
        .into_iter()
        .map(|(k, v)| (k, v.clone()))
        .collect()
}

/// Layers [`quantize`] would put Q/DQ on (ignoring `keep_fp`), in graph order.
pub fn candidates(
    model: &Model,
    ranges: &HashMap<String, f32>,
    ops: &BTreeSet<QuantOp>,
) -> Vec<QuantLayer> {
    let consts = constants(model);
    model
        .proto
        .graph
        .node
        .iter()
        .filter(|n| op_enabled(&n.op_type, ops) && n.domain.is_empty())
        .filter(|n| activation_slots(n, &consts, ranges).is_ok_and(|s| !s.is_empty()))
        .filter(|n| {
            !WEIGHTED.contains(&n.op_type.as_str())
                || n.op_type == "MatMul"
                || consts.contains_key(&n.input[1])
        })
        .map(|n| QuantLayer {
            node: node_key(n),
            op: n.op_type.clone(),
        })
        .collect()
}

fn scalar_f32(name: &str, v: f32) -> TensorProto {
    let mut t = TensorProto::new();
    t.name = name.into();
    t.data_type = DataType::FLOAT as i32;
    t.float_data = vec![v];
    t
}

fn int8_tensor(name: &str, dims: &[i64], v: &[i8]) -> TensorProto {
    let mut t = TensorProto::new();
    t.name = name.into();
    t.dims = dims.to_vec();
    t.data_type = DataType::INT8 as i32;
    t.raw_data = v.iter().map(|&x| x as u8).collect();
    t
}

fn int64_tensor(name: &str, v: &[i64]) -> TensorProto {
    let mut t = TensorProto::new();
    t.name = name.into();
    t.dims = vec![v.len() as i64];
    t.data_type = DataType::INT64 as i32;
    t.int64_data = v.to_vec();
    t
}

/// Write the Q/DQ model. The result keeps the original's inputs, outputs and metadata; its
/// default-domain opset is at least 13 (per-channel DequantizeLinear needs it).
pub fn quantize(
    model: &Model,
    ranges: &HashMap<String, f32>,
    opts: &QdqOptions,
) -> Result<(Model, QdqSummary)> {
    let mut m = model.clone();
    let opset_from = m.opset();
    upgrade_opset(&mut m, 13)?;
    let consts = constants(&m);
    let mut summary = QdqSummary {
        opset_from,
        opset_to: m.opset(),
        ..Default::default()
    };
    let mut used_names: HashSet<String> = m
        .proto
        .graph
        .node
        .iter()
        .flat_map(|n| {
            n.output
                .iter()
                .cloned()
                .chain(std::iter::once(n.name.clone()))
        })
        .chain(m.proto.graph.initializer.iter().map(|t| t.name.clone()))
        .chain(m.proto.graph.input.iter().map(|v| v.name.clone()))
        .collect();
    let mut fresh = |base: String| -> String {
        let mut name = base.clone();
        let mut k = 1;
        while !used_names.insert(name.clone()) {
            name = format!("{base}_{k}");
            k += 1;
        }
        name
    };
    let mut new_inits: Vec<TensorProto> = Vec::new();
    let mut nodes: Vec<NodeProto> = Vec::new();
    // (tensor, amax bits) -> DequantizeLinear output; weight name -> DequantizeLinear output.
    let mut act_dq: HashMap<(String, u32), String> = HashMap::new();
    let mut w_dq: HashMap<String, String> = HashMap::new();
    let old_nodes = std::mem::take(&mut m.proto.graph.mut_or_insert_default().node);
    for mut n in old_nodes {
        let key = node_key(&n);
        if !n.domain.is_empty() || !op_enabled(&n.op_type, &opts.ops) {
            nodes.push(n);
            continue;
        }
        if opts.keep_fp.contains(&key) {
            summary
                .skipped
                .push((key, "kept in float by the plan".into()));
            nodes.push(n);
            continue;
        }
        let slots = match activation_slots(&n, &consts, ranges) {
            Ok(s) => s,
            Err(why) => {
                summary.skipped.push((key, why));
                nodes.push(n);
                continue;
            }
        };
        let weighted = WEIGHTED.contains(&n.op_type.as_str());
        let weight = if weighted && n.input.len() > 1 {
            consts
                .get(&n.input[1])
                .and_then(|t| float_values(t).map(|v| (t.clone(), v)))
        } else {
            None
        };
        if weighted && n.op_type != "MatMul" && weight.is_none() {
            summary
                .skipped
                .push((key, "weight is not a float constant".into()));
            nodes.push(n);
            continue;
        }
        for (slot, amax) in slots {
            let t = n.input[slot].clone();
            let dq = act_dq
                .entry((t.clone(), amax.to_bits()))
                .or_insert_with(|| {
                    let (s, z) = (
                        fresh(format!("{t}_scale")),
                        fresh(format!("{t}_zero_point")),
                    );
                    let (q, d) = (
                        fresh(format!("{t}_quantized")),
                        fresh(format!("{t}_dequantized")),
                    );
                    new_inits.push(scalar_f32(&s, amax / 127.0));
                    new_inits.push(int8_tensor(&z, &[], &[0]));
                    let (qn, dn) = (
                        fresh(format!("{t}_QuantizeLinear")),
                        fresh(format!("{t}_DequantizeLinear")),
                    );
                    nodes.push(node("QuantizeLinear", &qn, &[&t, &s, &z], &[&q], vec![]));
                    nodes.push(node("DequantizeLinear", &dn, &[&q, &s, &z], &[&d], vec![]));
                    summary.qdq_pairs += 1;
                    d
                });
            n.input[slot] = dq.clone();
        }
        if let Some((wt, values)) = weight {
            let wname = n.input[1].clone();
            let axis = weight_axis(&n, wt.dims.len());
            let dq = w_dq.entry(format!("{wname}/{axis}")).or_insert_with(|| {
                let (qv, scales) = quantize_weights(&values, &wt.dims, axis);
                let (qn, s, z) = (
                    fresh(format!("{wname}_quantized")),
                    fresh(format!("{wname}_scale")),
                    fresh(format!("{wname}_zero_point")),
                );
                let d = fresh(format!("{wname}_dequantized"));
                let c = scales.len() as i64;
                new_inits.push(int8_tensor(&qn, &wt.dims, &qv));
                let mut st = scalar_f32(&s, 0.0);
                st.dims = vec![c];
                st.float_data = scales;
                new_inits.push(st);
                new_inits.push(int8_tensor(&z, &[c], &vec![0; c as usize]));
                let dn = fresh(format!("{wname}_DequantizeLinear"));
                nodes.push(node(
                    "DequantizeLinear",
                    &dn,
                    &[&qn, &s, &z],
                    &[&d],
                    vec![int_attr("axis", axis as i64)],
                ));
                d
            });
            n.input[1] = dq.clone();
        }
        summary.quantized.push(QuantLayer {
            node: key,
            op: n.op_type.clone(),
        });
        nodes.push(n);
    }
    // Float weights now only feed DequantizeLinear through their INT8 copies: drop the unused.
    let used: HashSet<String> = nodes
        .iter()
        .flat_map(|n| n.input.iter().cloned())
        .chain(m.proto.graph.output.iter().map(|o| o.name.clone()))
        .collect();
    nodes.retain(|n| n.op_type != "Constant" || n.output.iter().any(|o| used.contains(o)));
    let g = m.proto.graph.mut_or_insert_default();
    g.node = nodes;
    g.initializer.retain(|t| used.contains(&t.name));
    g.initializer.extend(new_inits);
    let inits: HashSet<String> = g.initializer.iter().map(|t| t.name.clone()).collect();
    // IR < 4 listed initializers as inputs; drop those that are gone.
    let real: HashSet<String> = model
        .proto
        .graph
        .input
        .iter()
        .filter(|i| {
            !model
                .proto
                .graph
                .initializer
                .iter()
                .any(|t| t.name == i.name)
        })
        .map(|i| i.name.clone())
        .collect();
    g.input
        .retain(|i| real.contains(&i.name) || inits.contains(&i.name));
    Ok((m, summary))
}

fn take_ints_attr(n: &mut NodeProto, name: &str) -> Option<Vec<i64>> {
    let pos = n.attribute.iter().position(|a| a.name == name)?;
    let a: AttributeProto = n.attribute.remove(pos);
    Some(a.ints)
}

/// Raise the default-domain opset to `to` (13): ops whose signature changed between opset
/// 11/12 and 13 are rewritten (Split's `split`, Squeeze/Unsqueeze's and ReduceSum's `axes`
/// move from attributes to inputs); ops whose meaning changed and cannot be rewritten
/// without shapes are refused with the reason.
pub fn upgrade_opset(m: &mut Model, to: i64) -> Result<()> {
    let from = m.opset();
    if from >= to {
        return Ok(());
    }
    if from < 11 {
        return Err(Error::Onnx {
            path: m.path.clone(),
            msg: format!("opset {from}: quantize upgrades opsets 11 and 12 only; re-export the model with opset >= 11"),
        });
    }
    let path = m.path.clone();
    let mut extra = Vec::new();
    let g = m.proto.graph.mut_or_insert_default();
    for n in g
        .node
        .iter_mut()
        .filter(|n| n.domain.is_empty() || n.domain == "ai.onnx")
    {
        let key = node_key(n);
        let moved = match n.op_type.as_str() {
            "Split" => Some(("split", 1)),
            "Squeeze" | "Unsqueeze" | "ReduceSum" => Some(("axes", 1)),
            _ => None,
        };
        if let Some((attr, slot)) = moved {
            if let Some(v) = take_ints_attr(n, attr) {
                let name = format!("{key}_{attr}");
                extra.push(int64_tensor(&name, &v));
                while n.input.len() < slot {
                    n.input.push(String::new());
                }
                n.input.insert(slot, name);
            }
        }
        match n.op_type.as_str() {
            "Softmax" | "LogSoftmax" | "Hardmax" => {
                // Before 13 these flatten to 2-D at `axis` (default 1); from 13 they act on
                // one axis (default -1). Only axis = -1 means the same in both.
                let axis = n.attribute.iter().find(|a| a.name == "axis").map(|a| a.i);
                if axis != Some(-1) {
                    return Err(Error::Onnx {
                        path,
                        msg: format!(
                            "node '{key}' ({}) with axis {axis:?} changes meaning at opset 13; re-export the model with opset 13",
                            n.op_type
                        ),
                    });
                }
            }
            "Resize"
                if n.attribute.iter().any(|a| {
                    a.name == "coordinate_transformation_mode" && a.s == b"tf_half_pixel_for_nn"
                }) =>
            {
                return Err(Error::Onnx {
                    path,
                    msg: format!("node '{key}': Resize mode tf_half_pixel_for_nn does not exist at opset 13; re-export with opset 13"),
                });
            }
            "Upsample" => {
                return Err(Error::Onnx {
                    path,
                    msg: format!("node '{key}': Upsample is deprecated; re-export the model with Resize (opset 13)"),
                })
            }
            _ => {}
        }
    }
    g.initializer.extend(extra);
    for o in m.proto.opset_import.iter_mut() {
        if o.domain.is_empty() || o.domain == "ai.onnx" {
            o.version = to;
        }
    }
    // Opset 13 needs IR version 7.
    m.proto.ir_version = m.proto.ir_version.max(7);
    Ok(())
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
