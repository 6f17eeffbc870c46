//! Raising the default-domain opset to 13 (per-channel DequantizeLinear needs it), as a
//! [`Patch`]: ops whose signature changed between opsets 11/12 and 13 are rewritten (Split's
//! `split`, Squeeze/Unsqueeze's and ReduceSum's `axes` move from attributes to inputs); ops
//! whose meaning changed and cannot be rewritten without shapes are refused with the reason.

use super::{attr, int64_tensor, Graph, Model, Patch};
use crate::error::{Error, Result};

/// The model at opset `to` (13). A model already there is returned unchanged.
pub fn upgrade_opset(model: &Model, to: i64) -> Result<Model> {
    let from = model.opset();
    if from >= to {
        return Ok(model.clone());
    }
    if from < 11 {
        return Err(Error::Onnx {
            path: model.path.clone(),
            msg: format!("opset {from}: quantize upgrades opsets 11 and 12 only; re-export the model with opset >= 11"),
        });
    }
    let g = Graph::new(model);
    let mut p = Patch::new(&g);
    for (id, n) in g.nodes().filter(|(id, _)| g.is_standard(*id)) {
        // New initializers are named after the node's name, else its first output (not the
        // `node_of_` key: rewritten models keep the names they have always had).
        let base = match (n.name.is_empty(), n.output.first()) {
            (true, Some(o)) => o.clone(),
            _ => n.name.clone(),
        };
        let moved = match n.op_type.as_str() {
            "Split" => Some("split"),
            "Squeeze" | "Unsqueeze" | "ReduceSum" => Some("axes"),
            _ => None,
        };
        if let Some(name) = moved {
            if let Some(values) = g.attr_ints(id, name)? {
                g.check_arity(id)?;
                if g.optional_input(id, 1).is_some() {
                    return Err(g.error(
                        id,
                        format!("has both an input 1 and a `{name}` attribute; the model is malformed: re-export it"),
                    ));
                }
                let t = p.fresh(&format!("{base}_{name}"));
                p.add_initializer(int64_tensor(&t, values));
                let node = p.node_mut(id);
                attr::take(node, name);
                // The moved attribute becomes input 1 (after the data input).
                if node.input.is_empty() {
                    node.input.push(String::new());
                }
                node.input.insert(1, t);
            }
        }
        match n.op_type.as_str() {
            "Softmax" | "LogSoftmax" | "Hardmax" => {
                // Before 13 these flatten to 2-D at `axis` (default 1); from 13 they act on
                // one axis (default -1). Only axis = -1 means the same in both.
                let axis = g.attr_int(id, "axis")?;
                if axis != Some(-1) {
                    return Err(g.error(
                        id,
                        format!("axis {axis:?} changes meaning at opset 13; re-export the model with opset 13"),
                    ));
                }
            }
            "Resize"
                if g.attr_string(id, "coordinate_transformation_mode")?
                    == Some(b"tf_half_pixel_for_nn".as_slice()) =>
            {
                return Err(g.error(
                    id,
                    "Resize mode tf_half_pixel_for_nn does not exist at opset 13; re-export with opset 13",
                ));
            }
            "Upsample" => {
                return Err(g.error(
                    id,
                    "Upsample is deprecated; re-export the model with Resize (opset 13)",
                ))
            }
            _ => {}
        }
    }
    // Opset 13 needs IR version 7.
    p.set_opset(to, 7);
    p.apply()
}
