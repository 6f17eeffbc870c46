//! Raising the default-domain opset of a model exported at opset 9 to 12 to 13 (per-channel
//! DequantizeLinear needs 13), as one [`Patch`].
//!
//! Invariant: the upgraded model computes exactly what the original computed in ONNX Runtime,
//! or the upgrade is refused with an error naming the node, the model and the fix. Every
//! default-domain op whose inputs, attributes or meaning differ between its version at opsets
//! 9-12 and its version at 13 is listed below with what is done about it:
//!
//! | op | what differs before 13 | done |
//! | --- | --- | --- |
//! | Split, Squeeze, Unsqueeze, ReduceSum | `split` / `axes` attribute, an input at 13 | moved ([`inputs`]) |
//! | Slice (opset 9) | `starts`/`ends`/`axes` attributes, inputs from 10 | moved |
//! | TopK (opset 9) | `k` attribute, input `K` from 10 | moved |
//! | Clip (opset 9-10) | `min`/`max` attributes (default ±FLT_MAX), inputs from 11 | moved, defaults written out |
//! | Pad (opset 9-10) | `pads`/`value` attributes, inputs from 11 | moved |
//! | Dropout (opset 9-11) | `ratio` attribute, an input from 12 | moved |
//! | Resize (opset 11-12) | `roi`/`scales` required (empty when unused), optional at 13, where an empty `scales` next to `sizes` is refused | empty constants become omitted inputs ([`resize`]) |
//! | Resize (opset 10), Upsample | asymmetric coordinates, ONNX Runtime's own nearest rounding | Resize-13 with the same coordinates and rounding |
//! | Resize `tf_half_pixel_for_nn` | removed at 13 | refused |
//! | Softmax, LogSoftmax, Hardmax | 2-D flattening at `axis` (default 1) before 13, one axis at 13 | kept when axis is the last (-1, or rank - 1 of a declared rank), else refused |
//! | Scatter | deprecated at 11 | refused (ScatterElements is its replacement) |
//!
//! Ops whose versions differ by type support only (bfloat16, more integer types: Add, Mul,
//! Concat, Gather, Reshape, Transpose, Cast, Clip and Pad at 11-12, Slice at 10-12, ...), or
//! that only gained attributes and optional inputs whose defaults are the old behaviour
//! (TopK `largest`/`sorted`, MaxPool and AveragePool `ceil_mode`/`dilations`, ArgMax
//! `select_last_index`, DepthToSpace `mode`, Gemm's optional C, QuantizeLinear and
//! DequantizeLinear `axis` next to a per-tensor scale, Constant's `value_*`), are left as
//! they are. The reductions other than ReduceSum (ReduceMean, ReduceMax, ReduceMin, ...) keep
//! `axes` as an attribute until opset 18: nothing moves. Ops inside subgraphs (If, Loop,
//! Scan bodies) are not rewritten, so a subgraph holding an op that changes is refused.

mod inputs;
mod resize;

use super::{Graph, Model, NodeId, Patch};
use crate::error::{Error, Result};
use onnx_protobuf::{GraphProto, NodeProto};

/// The lowest opset [`upgrade_opset`] accepts (Upsample-9 and the changes listed above).
pub const MIN_OPSET: i64 = 9;

/// The model at opset `to` (13). A model already there is returned unchanged.
pub fn upgrade_opset(model: &Model, to: i64) -> Result<Model> {
    let from = model.opset();
    if from >= to {
        return Ok(model.clone());
    }
    if from < MIN_OPSET {
        return Err(Error::Onnx {
            path: model.path.clone(),
            msg: format!(
                "opset {from}: quantize upgrades opsets {MIN_OPSET} to 12 only; re-export the model with opset 13"
            ),
        });
    }
    let g = Graph::new(model);
    let mut p = Patch::new(&g);
    for (id, n) in g.nodes().filter(|(id, _)| g.is_standard(*id)) {
        refuse_changed_ops_in_subgraphs(&g, id, from)?;
        inputs::move_attributes(&mut p, id, from)?;
        resize::upgrade(&mut p, id, from)?;
        match n.op_type.as_str() {
            "Softmax" | "LogSoftmax" | "Hardmax" => {
                // Before 13 these flatten to 2-D at `axis` (default 1); from 13 they act on
                // one axis (default -1). The two agree when the axis is the last one: -1, or
                // rank - 1 for an input whose rank the model declares (FastestDet's axis 3 on
                // a 4-D tensor). Anything else would change the result.
                let axis = g.attr_int(id, "axis")?;
                let rank = n.input.first().and_then(|t| g.declared_rank(t));
                let last = match (axis.unwrap_or(1), rank) {
                    (-1, _) => true,
                    (a, Some(r)) => {
                        let r = r as i64;
                        (if a < 0 { a + r } else { a }) == r - 1
                    }
                    (_, None) => false,
                };
                if !last {
                    let rank = rank.map_or("undeclared".to_string(), |r| r.to_string());
                    return Err(g.error(
                        id,
                        format!("axis {axis:?} on an input of rank {rank} is not the last axis, so it changes meaning at opset 13; re-export the model with opset 13"),
                    ));
                }
            }
            "Scatter" => {
                return Err(g.error(
                    id,
                    "Scatter is deprecated since opset 11; re-export the model with opset 13 (it writes ScatterElements)",
                ))
            }
            _ => {}
        }
    }
    // Opset 13 needs IR version 7.
    p.set_opset(to, 7);
    p.apply()
}

/// Whether `op` of a model at opset `from` is rewritten or refused by the upgrade.
fn changes(op: &str, from: i64) -> bool {
    match op {
        "Split" | "Squeeze" | "Unsqueeze" | "ReduceSum" | "Resize" | "Upsample" | "Softmax"
        | "LogSoftmax" | "Hardmax" => true,
        "Slice" | "TopK" => from < 10,
        "Clip" | "Pad" | "Scatter" => from < 11,
        "Dropout" => from < 12,
        _ => false,
    }
}

/// Subgraph bodies are copied as they are, so an op in them that changes at 13 would be left
/// at its old signature: refused, naming the outer node and the op inside.
fn refuse_changed_ops_in_subgraphs(g: &Graph, id: NodeId, from: i64) -> Result<()> {
    fn find(graphs: &[&GraphProto], from: i64) -> Option<NodeProto> {
        for sub in graphs {
            for n in &sub.node {
                if (n.domain.is_empty() || n.domain == "ai.onnx") && changes(&n.op_type, from) {
                    return Some(n.clone());
                }
                let inner: Vec<&GraphProto> = subgraphs(n).collect();
                if let Some(hit) = find(&inner, from) {
                    return Some(hit);
                }
            }
        }
        None
    }
    let own: Vec<&GraphProto> = subgraphs(g.node(id)).collect();
    match find(&own, from) {
        Some(inner) => Err(g.error(
            id,
            format!(
                "its subgraph holds node '{}' ({}), which changes at opset 13 and is not upgraded inside subgraphs; re-export the model with opset 13",
                super::node_key(&inner),
                inner.op_type
            ),
        )),
        None => Ok(()),
    }
}

fn subgraphs(n: &NodeProto) -> impl Iterator<Item = &GraphProto> {
    n.attribute
        .iter()
        .flat_map(|a| a.g.as_ref().into_iter().chain(a.graphs.iter()))
}

/// The base name of the initializers made for node `n`: its name, else its first output (not
/// the `node_of_` key: rewritten models keep the names they have always had).
fn base_name(n: &NodeProto) -> String {
    match (n.name.is_empty(), n.output.first()) {
        (true, Some(o)) => o.clone(),
        _ => n.name.clone(),
    }
}
