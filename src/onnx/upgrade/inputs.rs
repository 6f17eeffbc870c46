//! Attributes that became inputs on the way to opset 13: each becomes a constant initializer
//! read at the input slot the newer op gives it, with exactly the value the attribute had (an
//! absent optional attribute whose old default differs from the new input's default is
//! written out, so nothing changes meaning).

use super::super::{attr, float16_tensor, float_tensor, int64_tensor, Graph, NodeId, Patch};
use super::base_name;
use crate::error::Result;
use onnx_protobuf::{tensor_proto::DataType, TensorProto};

/// Move the attributes of node `id` (of a model at opset `from`) that are inputs at 13.
pub(super) fn move_attributes(p: &mut Patch, id: NodeId, from: i64) -> Result<()> {
    let g = p.graph();
    let n = g.node(id);
    let base = base_name(n);
    let ints = |name: &str| -> Result<Option<TensorProto>> {
        Ok(g.attr_ints(id, name)?
            .map(|v| int64_tensor(&format!("{base}_{name}"), v)))
    };
    let (taken, new): (&[&str], Vec<Option<TensorProto>>) = match n.op_type.as_str() {
        "Split" => (&["split"], vec![ints("split")?]),
        "Squeeze" | "Unsqueeze" | "ReduceSum" => (&["axes"], vec![ints("axes")?]),
        // Slice-1 (opset 9): the same clamping and negative indices as Slice-10, as attributes.
        "Slice" if from < 10 => (
            &["starts", "ends", "axes"],
            vec![
                Some(required(ints("starts")?, g, id, "starts")?),
                Some(required(ints("ends")?, g, id, "ends")?),
                ints("axes")?,
            ],
        ),
        "TopK" if from < 10 => {
            let k = g
                .attr_int(id, "k")?
                .map(|k| int64_tensor(&format!("{base}_k"), &[k]));
            (&["k"], vec![Some(required(k, g, id, "k")?)])
        }
        "Clip" if from < 11 => {
            // Clip-6 clamps to ±FLT_MAX when a bound is absent (infinities become finite);
            // Clip-11 without a bound does not clamp: write the old defaults out.
            let lo = g.attr_float(id, "min")?.unwrap_or(f32::MIN);
            let hi = g.attr_float(id, "max")?.unwrap_or(f32::MAX);
            let ty = elem_type(g, g.input(id, 0)?);
            (
                &["min", "max"],
                vec![
                    Some(scalar(g, id, ty, &format!("{base}_min"), lo)?),
                    Some(scalar(g, id, ty, &format!("{base}_max"), hi)?),
                ],
            )
        }
        "Pad" if from < 11 => {
            let pads = required(ints("pads")?, g, id, "pads")?;
            // Omitted, `constant_value` is 0 as `value` was; -0.0 is written (it pads with -0).
            let value = match g.attr_float(id, "value")? {
                Some(v) if v.to_bits() != 0 => Some(scalar(
                    g,
                    id,
                    elem_type(g, g.input(id, 0)?),
                    &format!("{base}_value"),
                    v,
                )?),
                _ => None,
            };
            (&["pads", "value"], vec![Some(pads), value])
        }
        "Dropout" if from < 12 => {
            // Dropout-7 (opset 9) gives a mask of the data's type, later ones a bool mask.
            if let Some(mask) = n.output.get(1).filter(|m| !m.is_empty()) {
                if from < 10 && (!g.consumers(mask).is_empty() || g.is_graph_output(mask)) {
                    return Err(g.error(
                        id,
                        "its mask output changes type at opset 10; re-export the model with opset 13",
                    ));
                }
            }
            // Inference ignores the ratio (Dropout is the identity without training_mode);
            // it is kept as the input it became, a float whatever the data type.
            let ratio = g
                .attr_float(id, "ratio")?
                .map(|r| float_tensor(&format!("{base}_ratio"), &[], vec![r]));
            (&["ratio"], vec![ratio])
        }
        _ => return Ok(()),
    };
    if new.iter().all(Option::is_none) {
        return Ok(());
    }
    g.check_arity(id)?;
    if g.optional_input(id, 1).is_some() {
        return Err(g.error(
            id,
            format!(
                "has both an input 1 and the `{}` attribute; the model is malformed: re-export it",
                taken.join("`/`")
            ),
        ));
    }
    let mut names = Vec::with_capacity(new.len());
    for t in new {
        names.push(match t {
            Some(mut t) => {
                t.name = p.fresh(&t.name);
                let name = t.name.clone();
                p.add_initializer(t);
                name
            }
            None => String::new(),
        });
    }
    let node = p.node_mut(id);
    for a in taken {
        attr::take(node, a);
    }
    // The data input stays input 0; the moved values follow it in the newer op's order.
    node.input.resize(1, String::new());
    node.input.extend(names);
    while node.input.last().is_some_and(String::is_empty) {
        node.input.pop();
    }
    Ok(())
}

fn required(t: Option<TensorProto>, g: &Graph, id: NodeId, name: &str) -> Result<TensorProto> {
    t.ok_or_else(|| {
        g.error(
            id,
            format!("has no `{name}` attribute, which its opset requires; the model is malformed: re-export it"),
        )
    })
}

/// The element type of `tensor` when the model declares it (graph inputs, outputs, value
/// infos, constants); 0 when it does not.
fn elem_type(g: &Graph, tensor: &str) -> i32 {
    if let Some(t) = g.constant(tensor) {
        return t.data_type;
    }
    let pg = g.proto();
    pg.input
        .iter()
        .chain(&pg.value_info)
        .chain(&pg.output)
        .find(|v| v.name == tensor)
        .and_then(|v| v.type_.as_ref())
        .map_or(0, |t| t.tensor_type().elem_type)
}

/// A scalar of the data's float type. An undeclared type is taken as FLOAT (what detection
/// exports at these opsets compute in); a wrong guess is caught when the written model is
/// loaded, naming this node.
fn scalar(g: &Graph, id: NodeId, ty: i32, name: &str, v: f32) -> Result<TensorProto> {
    match ty {
        t if t == DataType::FLOAT16 as i32 => Ok(float16_tensor(name, &[], &[v])),
        t if t == DataType::FLOAT as i32 || t == 0 => Ok(float_tensor(name, &[], vec![v])),
        t => Err(g.error(
            id,
            format!(
                "computes in {}, for which the upgrade writes no constant; re-export the model with opset 13",
                super::super::dtype_name(t)
            ),
        )),
    }
}
